//! Incidents: states, checks on operator input, and the rule that never lets an estimate
//! lapse in silence.

use crate::book::Locale;
use crate::topology::{ElementIdx, Topology};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Longest public cause or update message, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 2_000;
/// Most languages one entry of the timeline may be written in besides its own.
pub const TRANSLATIONS_MAX: usize = 32;
/// Most elements one incident may name.
pub const ELEMENTS_MAX: usize = 1_000;
/// How far before its declaration an outage may have started: a typo of a year would
/// otherwise credit every customer for a year of cycles.
pub const LOOKBACK_DAYS_MAX: i64 = 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Opened by telemetry, not yet confirmed by a person (a later issue).
    Detected,
    Acknowledged,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 5] = [
        IncidentState::Detected,
        IncidentState::Acknowledged,
        IncidentState::Identified,
        IncidentState::Monitoring,
        IncidentState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Detected => "detected",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Identified => "identified",
            IncidentState::Monitoring => "monitoring",
            IncidentState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        self != IncidentState::Resolved
    }

    /// States an operator may declare or move an incident to: `detected` belongs to
    /// telemetry, `resolved` to resolve.
    pub fn is_operator_state(self) -> bool {
        matches!(self, IncidentState::Acknowledged | IncidentState::Identified | IncidentState::Monitoring)
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of entry an incident's timeline holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    /// The acknowledgement: customers are told. Seq 0 of a declared incident; for a
    /// detected one held for an operator's confirmation, the confirmation (or its lapse).
    Declared,
    /// Seq 0 of a detected incident held for an operator's confirmation: no notices yet.
    Detected,
    /// Detection merged this incident into another (named in the message); it goes on there.
    Merged,
    /// Posted by an operator: a new ETR, a new state, a message.
    Update,
    /// Posted by amends when the ETR passed with the incident still open.
    EtrLapsed,
    /// Posted by amends when the "next update by" time passed with no update.
    UpdateOverdue,
    Resolved,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Declared => "declared",
            UpdateKind::Detected => "detected",
            UpdateKind::Merged => "merged",
            UpdateKind::Update => "update",
            UpdateKind::EtrLapsed => "etr_lapsed",
            UpdateKind::UpdateOverdue => "update_overdue",
            UpdateKind::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Declared,
            Self::Detected,
            Self::Merged,
            Self::Update,
            Self::EtrLapsed,
            Self::UpdateOverdue,
            Self::Resolved,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error("elements: at least one element is needed")]
    NoElements,
    #[error("elements: more than {ELEMENTS_MAX} elements")]
    TooManyElements,
    #[error("elements: {0:?} is not an element of the topology")]
    UnknownElement(String),
    #[error("{0}: must not be empty")]
    Empty(&'static str),
    #[error("{0}: longer than {MESSAGE_BYTES_MAX} bytes")]
    TooLong(&'static str),
    #[error("{field}: {value} is not after now ({now})")]
    NotInFuture { field: &'static str, value: Timestamp, now: Timestamp },
    #[error("started_at: {started_at} is after now ({now})")]
    StartInFuture { started_at: Timestamp, now: Timestamp },
    #[error(
        "state: {0} is not a state an operator sets (acknowledged, identified or monitoring; resolve to resolve)"
    )]
    BadState(IncidentState),
    #[error("started_at: {started_at} is more than {LOOKBACK_DAYS_MAX} days before now ({now})")]
    StartTooEarly { started_at: Timestamp, now: Timestamp },
    #[error("incident is already resolved")]
    AlreadyResolved,
    #[error("update: nothing to change (give a message, an etr, a next_update_by or a state)")]
    EmptyUpdate,
    #[error("translations: more than {TRANSLATIONS_MAX} locales")]
    TooManyTranslations,
    #[error("translations.{locale}: {problem}")]
    BadTranslation { locale: String, problem: String },
    #[error("attributes.{0}: set by amends itself (the customers the incident affected)")]
    ReservedAttribute(&'static str),
    #[error("{field}: {found}; control characters are not allowed")]
    ForbiddenCharacter { field: String, found: String },
}

/// The operator's text in other languages, keyed by locale tag (`es`, `fr-CA`). A customer
/// reads the translation for their locale, else for their language, else the text as
/// given (see [`translation_for`]).
pub type Translations = BTreeMap<String, LocalText>;

/// One language's version of an entry's text. Only what the entry itself says can be
/// translated: a cause where the entry sets the cause, a message where it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalText {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Operator text in other languages as it is kept: one text per locale tag.
pub type ByLocale = BTreeMap<String, String>;

/// The text a customer with `locale` reads: their exact locale first, then their
/// language, as templates are chosen; `None`: the text as the operator wrote it.
pub fn for_locale<'a>(texts: &'a ByLocale, locale: &Locale) -> Option<&'a str> {
    texts.get(locale.as_str()).or_else(|| texts.get(locale.language())).map(String::as_str)
}

/// The translated causes (`cause`) or messages (`message`), trimmed as the originals are.
pub fn split(t: &Translations, field: fn(&LocalText) -> &Option<String>) -> ByLocale {
    t.iter()
        .filter_map(|(locale, text)| Some((locale.clone(), field(text).as_ref()?.trim().to_string())))
        .collect()
}

/// Checks translations of an entry whose own cause and message are `cause` and `message`
/// (`None`: the entry does not set it). Each problem names its locale and field.
fn check_translations(
    t: &Translations,
    cause: Option<&str>,
    message: Option<&str>,
    errors: &mut Vec<IncidentError>,
) {
    if t.len() > TRANSLATIONS_MAX {
        errors.push(IncidentError::TooManyTranslations);
    }
    let bad =
        |locale: &str, problem: String| IncidentError::BadTranslation { locale: locale.into(), problem };
    for (locale, text) in t {
        if let Err(e) = Locale::parse(locale) {
            errors.push(bad(locale, format!("not a locale tag ({e})")));
        }
        if text.cause.is_none() && text.message.is_none() {
            errors.push(bad(locale, "gives neither a cause nor a message".into()));
        }
        for (field, given, original) in [("cause", &text.cause, cause), ("message", &text.message, message)] {
            let Some(given) = given else { continue };
            match original {
                None | Some("") => {
                    errors.push(bad(locale, format!("{field}: this entry has no {field} to translate")))
                }
                Some(_) if given.trim().is_empty() => {
                    errors.push(bad(locale, format!("{field}: must not be empty")))
                }
                Some(_) if given.len() > MESSAGE_BYTES_MAX => {
                    errors.push(bad(locale, format!("{field}: longer than {MESSAGE_BYTES_MAX} bytes")))
                }
                Some(_) => {
                    let found = if field == "cause" {
                        crate::text::forbidden_in_line(given)
                    } else {
                        crate::text::forbidden_in_text(given)
                    };
                    if let Some(found) = found {
                        errors.push(bad(
                            locale,
                            format!("{field}: {found}; control characters are not allowed"),
                        ))
                    }
                }
            }
        }
    }
}

/// An operator's declaration of an incident. Unknown fields are refused, so a misspelt
/// `etr` is an error rather than silently missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub elements: Vec<String>,
    /// The public cause, as customers will read it.
    pub cause: String,
    /// What is being done about it.
    pub message: String,
    /// When service should be back; `None`: no estimate yet (customers are told one will
    /// follow, by `next_update_by`).
    #[serde(default)]
    pub etr: Option<Timestamp>,
    pub next_update_by: Timestamp,
    /// When service was lost, if before the declaration; defaults to the declaration.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default = "default_state")]
    pub state: IncidentState,
    /// The cause and message in other languages.
    #[serde(default)]
    pub translations: Translations,
    /// Facts of the outage policies read as `event.attributes` (`storm = true`, `cause =
    /// "commercial_power"`); `customers_affected` is the server's own.
    #[serde(default, deserialize_with = "crate::policy::facts::deserialize_attributes")]
    pub attributes: crate::policy::Attributes,
}

fn default_state() -> IncidentState {
    IncidentState::Acknowledged
}

fn check_text(field: &'static str, text: &str, required: bool, errors: &mut Vec<IncidentError>) {
    if required && text.trim().is_empty() {
        errors.push(IncidentError::Empty(field));
    }
    if text.len() > MESSAGE_BYTES_MAX {
        errors.push(IncidentError::TooLong(field));
    }
    // A cause is one line; a message may hold paragraphs.
    let found = if field == "cause" {
        crate::text::forbidden_in_line(text)
    } else {
        crate::text::forbidden_in_text(text)
    };
    if let Some(found) = found {
        errors.push(IncidentError::ForbiddenCharacter { field: field.to_string(), found: found.to_string() });
    }
}

fn check_future(
    field: &'static str,
    value: Option<Timestamp>,
    now: Timestamp,
    errors: &mut Vec<IncidentError>,
) {
    if let Some(value) = value
        && value <= now
    {
        errors.push(IncidentError::NotInFuture { field, value, now });
    }
}

/// Checks a declaration against the topology and the clock; returns the element indices.
/// Every problem is reported, not only the first.
pub fn check_declaration(
    now: Timestamp,
    d: &Declaration,
    topology: &Topology,
) -> Result<Vec<ElementIdx>, Vec<IncidentError>> {
    let mut errors = Vec::new();
    if d.elements.is_empty() {
        errors.push(IncidentError::NoElements);
    }
    if d.elements.len() > ELEMENTS_MAX {
        errors.push(IncidentError::TooManyElements);
    }
    let mut idx = Vec::with_capacity(d.elements.len());
    for e in &d.elements {
        match topology.index_of(e) {
            Some(i) => idx.push(i),
            None => errors.push(IncidentError::UnknownElement(e.clone())),
        }
    }
    check_text("cause", &d.cause, true, &mut errors);
    check_text("message", &d.message, false, &mut errors);
    check_translations(&d.translations, Some(d.cause.trim()), Some(d.message.trim()), &mut errors);
    if d.attributes.contains_key(crate::policy::facts::CUSTOMERS_AFFECTED) {
        errors.push(IncidentError::ReservedAttribute(crate::policy::facts::CUSTOMERS_AFFECTED));
    }
    check_future("etr", d.etr, now, &mut errors);
    check_future("next_update_by", Some(d.next_update_by), now, &mut errors);
    if let Some(s) = d.started_at
        && s > now
    {
        errors.push(IncidentError::StartInFuture { started_at: s, now });
    }
    if let Some(s) = d.started_at
        && s < now.checked_sub(SignedDuration::from_hours(24 * LOOKBACK_DAYS_MAX)).unwrap_or(now)
    {
        errors.push(IncidentError::StartTooEarly { started_at: s, now });
    }
    if !d.state.is_operator_state() {
        errors.push(IncidentError::BadState(d.state));
    }
    if errors.is_empty() { Ok(idx) } else { Err(errors) }
}

/// An operator's update to an open incident. Absent fields keep their value; unknown
/// fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub etr: Option<Timestamp>,
    #[serde(default)]
    pub next_update_by: Option<Timestamp>,
    #[serde(default)]
    pub state: Option<IncidentState>,
    /// A new public cause (a detected incident opens with a generic one).
    #[serde(default)]
    pub cause: Option<String>,
    /// The message, and the new cause, in other languages.
    #[serde(default)]
    pub translations: Translations,
}

pub fn check_update(
    now: Timestamp,
    current: IncidentState,
    u: &UpdateRequest,
) -> Result<(), Vec<IncidentError>> {
    let mut errors = Vec::new();
    if !current.is_open() {
        errors.push(IncidentError::AlreadyResolved);
    }
    let nothing = u.message.trim().is_empty()
        && u.etr.is_none()
        && u.next_update_by.is_none()
        && u.state.is_none()
        && u.cause.is_none();
    if nothing {
        errors.push(IncidentError::EmptyUpdate);
    }
    check_text("message", &u.message, false, &mut errors);
    if let Some(cause) = &u.cause {
        check_text("cause", cause, true, &mut errors);
    }
    check_translations(
        &u.translations,
        u.cause.as_deref().map(str::trim),
        Some(u.message.trim()),
        &mut errors,
    );
    check_future("etr", u.etr, now, &mut errors);
    check_future("next_update_by", u.next_update_by, now, &mut errors);
    if let Some(s) = u.state
        && !s.is_operator_state()
    {
        errors.push(IncidentError::BadState(s));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks the closing message of a resolution and its translations.
pub fn check_resolution(
    current: IncidentState,
    message: &str,
    translations: &Translations,
) -> Result<(), Vec<IncidentError>> {
    let mut errors = Vec::new();
    if !current.is_open() {
        errors.push(IncidentError::AlreadyResolved);
    }
    check_text("message", message, false, &mut errors);
    check_translations(translations, None, Some(message.trim()), &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// An update amends posts by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomaticUpdate {
    pub kind: UpdateKind,
    /// Unique per incident: the same lapse is only ever posted once.
    pub trigger_key: String,
    /// The ETR after the update (`None`: being revised).
    pub etr: Option<Timestamp>,
    /// The next word promised; `None` when this is the last update customers can get
    /// before the restoration, which is all it promises.
    pub next_update_by: Option<Timestamp>,
}

/// How long after a lapse amends promises the next word by default.
pub const LAPSE_FOLLOW_UP: SignedDuration = SignedDuration::from_mins(60);
/// The longest amends waits between its own updates, however long the outage lasts.
pub const FOLLOW_UP_LONGEST: SignedDuration = SignedDuration::from_hours(8);

/// How automatic updates are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The first automatic update promises the next word within this; each one after it
    /// twice as long as the one before (up to [`FOLLOW_UP_LONGEST`]), so a long outage is
    /// not told "still working on it" every hour.
    pub follow_up: SignedDuration,
    /// Most updates a customer gets about one incident on one channel. The update that
    /// reaches it promises only the restoration notice, since no other word could follow.
    pub updates_cap: u32,
}

impl Pacing {
    /// The wait promised by the automatic update that follows `automatic` earlier ones.
    pub fn follow_up_after(&self, automatic: u32) -> SignedDuration {
        let longest = FOLLOW_UP_LONGEST.max(self.follow_up);
        let factor = 1_i32.checked_shl(automatic.min(30)).unwrap_or(i32::MAX);
        self.follow_up.checked_mul(factor).map_or(longest, |d| d.min(longest))
    }

    /// Whether an update that follows `updates` earlier ones is the last a customer can
    /// get before the restoration: it may promise no further word.
    pub fn is_last(&self, updates: u32) -> bool {
        updates.saturating_add(1) >= self.updates_cap
    }
}

/// What an incident's timeline has told customers so far, as far as pacing goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Told {
    /// Entries sent as updates (an operator's, or amends' own).
    pub updates: u32,
    /// Those of them amends posted by itself.
    pub automatic: u32,
}

impl Told {
    /// Counts the update entries among `kinds`, a timeline's kinds in order.
    pub fn count(kinds: impl IntoIterator<Item = UpdateKind>) -> Told {
        kinds.into_iter().fold(Told::default(), |told, kind| match kind {
            UpdateKind::Update => Told { updates: told.updates + 1, ..told },
            UpdateKind::EtrLapsed | UpdateKind::UpdateOverdue => {
                Told { updates: told.updates + 1, automatic: told.automatic + 1 }
            }
            _ => told,
        })
    }
}

/// The update due at `now` for an open incident whose estimate or promised update time
/// has passed, if any. A passed ETR wins over a passed "next update by", unless its lapse
/// was already posted (`already_posted` answers for a trigger key), in which case the
/// promised update time still counts: silence never outlasts a promise. Once customers
/// have had as many updates as the cap allows, the last of them promised only the
/// restoration notice, and nothing more is due.
pub fn due_automatic_update(
    state: IncidentState,
    etr: Option<Timestamp>,
    next_update_by: Option<Timestamp>,
    now: Timestamp,
    pacing: Pacing,
    told: Told,
    already_posted: impl Fn(&str) -> bool,
) -> Option<AutomaticUpdate> {
    if !state.is_open() || told.updates >= pacing.updates_cap {
        return None;
    }
    let next = now.checked_add(pacing.follow_up_after(told.automatic)).ok()?;
    let next = (!pacing.is_last(told.updates)).then_some(next);
    if let Some(etr) = etr
        && etr <= now
        && !already_posted(&format!("etr_lapsed:{etr}"))
    {
        return Some(AutomaticUpdate {
            kind: UpdateKind::EtrLapsed,
            trigger_key: format!("etr_lapsed:{etr}"),
            etr: None,
            next_update_by: next,
        });
    }
    match next_update_by {
        Some(nub) if nub <= now => Some(AutomaticUpdate {
            kind: UpdateKind::UpdateOverdue,
            trigger_key: format!("update_overdue:{nub}"),
            etr,
            next_update_by: next,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Element;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn topo() -> Topology {
        Topology::build(vec![Element {
            id: "hub".into(),
            parent_id: None,
            kind: "hub".into(),
            name: "Hub".into(),
        }])
        .unwrap()
    }

    fn decl() -> Declaration {
        Declaration {
            elements: vec!["hub".into()],
            cause: "Fibre cut".into(),
            message: "Crews are splicing".into(),
            etr: Some(ts("2026-11-23T16:00:00Z")),
            next_update_by: ts("2026-11-23T13:00:00Z"),
            started_at: None,
            state: IncidentState::Acknowledged,
            translations: Translations::new(),
            attributes: Default::default(),
        }
    }

    fn text(cause: Option<&str>, message: Option<&str>) -> LocalText {
        LocalText { cause: cause.map(Into::into), message: message.map(Into::into) }
    }

    #[test]
    fn translations_are_checked_against_what_the_entry_says() {
        let now = ts("2026-11-23T12:00:00Z");
        let translated = |t: Vec<(&str, LocalText)>| Declaration {
            translations: t.into_iter().map(|(l, t)| (l.to_string(), t)).collect(),
            ..decl()
        };
        let good = translated(vec![
            ("es", text(Some("Corte"), Some("Empalmando"))),
            ("fr-CA", text(None, Some("x"))),
        ]);
        assert!(check_declaration(now, &good, &topo()).is_ok());
        let bad = translated(vec![
            ("es_ES", text(Some("Corte"), None)),
            ("fr", text(Some(" "), None)),
            ("de", text(None, None)),
        ]);
        let errors: Vec<String> =
            check_declaration(now, &bad, &topo()).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("translations.de: gives neither"), "{errors:?}");
        assert_eq!(
            errors[1],
            "translations.es_ES: not a locale tag (locale \"es_ES\" is not a locale like en-US or fr)"
        );
        assert_eq!(errors[2], "translations.fr: cause: must not be empty");

        // An update translates only what it says: no cause, nothing to translate.
        let update = UpdateRequest {
            message: "Still splicing".into(),
            translations: [("es".to_string(), text(Some("Corte"), Some("Aún empalmando")))].into(),
            ..UpdateRequest::default()
        };
        let errors = check_update(now, IncidentState::Identified, &update).unwrap_err();
        assert_eq!(errors[0].to_string(), "translations.es: cause: this entry has no cause to translate");
        let many = UpdateRequest {
            message: "x".into(),
            translations: (0..=TRANSLATIONS_MAX)
                .map(|i| (format!("x{i:02}"), text(None, Some("y"))))
                .collect(),
            ..UpdateRequest::default()
        };
        assert!(
            check_update(now, IncidentState::Identified, &many)
                .unwrap_err()
                .contains(&IncidentError::TooManyTranslations)
        );
    }

    #[test]
    fn a_customer_reads_their_locale_then_their_language_then_the_original() {
        let texts: ByLocale = [("es", "Corte"), ("fr-CA", "Coupure (CA)"), ("fr", "Coupure")]
            .map(|(l, t)| (l.to_string(), t.to_string()))
            .into();
        let read = |l: &str| for_locale(&texts, &Locale::parse(l).unwrap());
        assert_eq!(read("es-MX"), Some("Corte"));
        assert_eq!(read("fr-CA"), Some("Coupure (CA)"));
        assert_eq!(read("fr-FR"), Some("Coupure"));
        assert_eq!(read("en-US"), None);
        let original = LocalText { cause: Some("  Corte  ".into()), message: None };
        assert_eq!(split(&[("es".to_string(), original)].into(), |t| &t.cause)["es"], "Corte");
    }

    /// A cause is one line and a message may hold paragraphs; neither an escape sequence
    /// nor a bidirectional override (issue 18, item 13).
    #[test]
    fn control_characters_are_refused_in_what_customers_read() {
        let now = ts("2026-11-23T12:00:00Z");
        let bad = Declaration {
            cause: "Fibre\ncut".into(),
            message: "Crews \u{1b}[31mon site".into(),
            translations: [(
                "es".to_string(),
                LocalText {
                    cause: Some("Corte\u{202e}".into()),
                    message: Some("En camino.\n\nGracias.".into()),
                },
            )]
            .into(),
            ..decl()
        };
        let text: Vec<String> =
            check_declaration(now, &bad, &topo()).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "cause: holds U+000A (line feed) at character 6; control characters are not allowed",
                "message: holds U+001B (escape) at character 7; control characters are not allowed",
                "translations.es: cause: holds U+202E (a bidirectional override) at character 6; control characters are not allowed",
            ]
        );
        let fine = Declaration { message: "On site.\n\nBack soon.".into(), ..decl() };
        assert!(check_declaration(now, &fine, &topo()).is_ok());
    }

    #[test]
    fn declaration_errors_are_all_reported() {
        let now = ts("2026-11-23T12:00:00Z");
        assert_eq!(check_declaration(now, &decl(), &topo()), Ok(vec![0]));
        // No estimate yet is a declaration too: the next update is still promised.
        assert_eq!(check_declaration(now, &Declaration { etr: None, ..decl() }, &topo()), Ok(vec![0]));
        let bad = Declaration {
            elements: vec!["nope".into()],
            cause: " ".into(),
            etr: Some(ts("2026-11-23T11:00:00Z")),
            ..decl()
        };
        let errs = check_declaration(now, &bad, &topo()).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "elements: \"nope\" is not an element of the topology",
                "cause: must not be empty",
                "etr: 2026-11-23T11:00:00Z is not after now (2026-11-23T12:00:00Z)",
            ]
        );
    }

    #[test]
    fn an_update_may_name_a_new_cause_but_not_an_empty_one() {
        let now = ts("2026-11-23T12:00:00Z");
        let named = UpdateRequest { cause: Some("A power cut".into()), ..Default::default() };
        assert_eq!(check_update(now, IncidentState::Detected, &named), Ok(()));
        let blank = UpdateRequest { cause: Some("  ".into()), ..Default::default() };
        assert_eq!(
            check_update(now, IncidentState::Detected, &blank),
            Err(vec![IncidentError::Empty("cause")])
        );
    }

    #[test]
    fn updates() {
        let now = ts("2026-11-23T12:00:00Z");
        assert_eq!(
            check_update(
                now,
                IncidentState::Resolved,
                &UpdateRequest { message: "x".into(), ..Default::default() }
            ),
            Err(vec![IncidentError::AlreadyResolved])
        );
        assert_eq!(
            check_update(now, IncidentState::Acknowledged, &UpdateRequest::default()),
            Err(vec![IncidentError::EmptyUpdate])
        );
        assert!(
            check_update(
                now,
                IncidentState::Acknowledged,
                &UpdateRequest { etr: Some(ts("2026-11-23T18:00:00Z")), ..Default::default() }
            )
            .is_ok()
        );
    }

    #[test]
    fn automatic_updates_space_out_and_the_last_one_promises_only_the_restoration() {
        let pacing = Pacing { follow_up: LAPSE_FOLLOW_UP, updates_cap: 4 };
        let now = ts("2026-11-23T13:00:00Z");
        let due = |automatic, updates| {
            let told = Told { updates, automatic };
            due_automatic_update(IncidentState::Identified, None, Some(now), now, pacing, told, |_| false)
        };
        let hours = |h| Some(now + SignedDuration::from_hours(h));
        assert_eq!(due(0, 0).unwrap().next_update_by, hours(1));
        assert_eq!(due(1, 1).unwrap().next_update_by, hours(2));
        assert_eq!(due(1, 2).unwrap().next_update_by, hours(2), "an operator's update does not count");
        assert_eq!(due(3, 3).unwrap().next_update_by, None, "the last update the cap allows");
        assert_eq!(due(4, 4), None, "the last update promised nothing more");
        assert_eq!(pacing.follow_up_after(3), FOLLOW_UP_LONGEST);
        assert_eq!(pacing.follow_up_after(u32::MAX), FOLLOW_UP_LONGEST);
        let slow = Pacing { follow_up: SignedDuration::from_hours(12), updates_cap: 4 };
        assert_eq!(slow.follow_up_after(5), SignedDuration::from_hours(12), "never shorter than asked");
        use UpdateKind::*;
        let told = Told::count([Declared, Update, EtrLapsed, Merged, UpdateOverdue, Resolved]);
        assert_eq!(told, Told { updates: 3, automatic: 2 });
    }

    #[test]
    fn watchdog_never_lets_an_estimate_lapse_in_silence() {
        let etr = ts("2026-11-23T16:00:00Z");
        let nub = ts("2026-11-23T13:00:00Z");
        let f = Pacing { follow_up: LAPSE_FOLLOW_UP, updates_cap: 6 };
        let open = IncidentState::Identified;
        assert_eq!(
            due_automatic_update(
                open,
                Some(etr),
                Some(nub),
                ts("2026-11-23T12:59:59Z"),
                f,
                Told::default(),
                |_| false
            ),
            None
        );
        let overdue = due_automatic_update(
            open,
            Some(etr),
            Some(nub),
            ts("2026-11-23T13:00:00Z"),
            f,
            Told::default(),
            |_| false,
        )
        .unwrap();
        assert_eq!(overdue.kind, UpdateKind::UpdateOverdue);
        assert_eq!(overdue.trigger_key, "update_overdue:2026-11-23T13:00:00Z");
        assert_eq!(overdue.next_update_by, Some(ts("2026-11-23T14:00:00Z")));
        assert_eq!(overdue.etr, Some(etr));
        let lapsed = due_automatic_update(
            open,
            Some(etr),
            Some(ts("2026-11-23T17:00:00Z")),
            ts("2026-11-23T16:30:00Z"),
            f,
            Told::default(),
            |_| false,
        )
        .unwrap();
        assert_eq!(lapsed.kind, UpdateKind::EtrLapsed);
        assert_eq!(lapsed.trigger_key, "etr_lapsed:2026-11-23T16:00:00Z");
        assert_eq!(lapsed.etr, None);
        assert_eq!(
            due_automatic_update(
                IncidentState::Resolved,
                Some(etr),
                Some(nub),
                ts("2027-01-01T00:00:00Z"),
                f,
                Told::default(),
                |_| false,
            ),
            None
        );
        // An ETR whose lapse was already posted (say an update carried it back) does not
        // hide a passed "next update by".
        let posted = |key: &str| key == "etr_lapsed:2026-11-23T16:00:00Z";
        let overdue = due_automatic_update(
            open,
            Some(etr),
            Some(nub),
            ts("2026-11-23T16:30:00Z"),
            f,
            Told::default(),
            posted,
        )
        .unwrap();
        assert_eq!(overdue.kind, UpdateKind::UpdateOverdue);
        assert_eq!(overdue.trigger_key, "update_overdue:2026-11-23T13:00:00Z");
    }

    #[test]
    fn states_and_bounds_an_operator_may_not_set() {
        let now = ts("2026-11-23T12:00:00Z");
        let detected = Declaration { state: IncidentState::Detected, ..decl() };
        assert_eq!(
            check_declaration(now, &detected, &topo()),
            Err(vec![IncidentError::BadState(IncidentState::Detected)])
        );
        let ancient = Declaration { started_at: Some(ts("2025-11-23T12:00:00Z")), ..decl() };
        let errs = check_declaration(now, &ancient, &topo()).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "started_at: 2025-11-23T12:00:00Z is more than 31 days before now (2026-11-23T12:00:00Z)"
        );
        let long = "x".repeat(MESSAGE_BYTES_MAX + 1);
        assert_eq!(
            check_resolution(IncidentState::Identified, &long, &Translations::new()),
            Err(vec![IncidentError::TooLong("message")])
        );
        assert_eq!(
            check_resolution(IncidentState::Resolved, "", &Translations::new()),
            Err(vec![IncidentError::AlreadyResolved])
        );
    }
}
