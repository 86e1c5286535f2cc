//! Incidents: states, checks on operator input, and the rule that never lets an estimate
//! lapse in silence.

use crate::topology::{ElementIdx, Topology};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest public cause or update message, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 2_000;
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
    pub etr: Timestamp,
    pub next_update_by: Timestamp,
    /// When service was lost, if before the declaration; defaults to the declaration.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default = "default_state")]
    pub state: IncidentState,
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
    check_future("etr", Some(d.etr), now, &mut errors);
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
    check_future("etr", u.etr, now, &mut errors);
    check_future("next_update_by", u.next_update_by, now, &mut errors);
    if let Some(s) = u.state
        && !s.is_operator_state()
    {
        errors.push(IncidentError::BadState(s));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks the closing message of a resolution.
pub fn check_resolution(current: IncidentState, message: &str) -> Result<(), Vec<IncidentError>> {
    let mut errors = Vec::new();
    if !current.is_open() {
        errors.push(IncidentError::AlreadyResolved);
    }
    check_text("message", message, false, &mut errors);
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
    pub next_update_by: Timestamp,
}

/// How long after a lapse amends promises the next word by default.
pub const LAPSE_FOLLOW_UP: SignedDuration = SignedDuration::from_mins(60);

/// The update due at `now` for an open incident whose estimate or promised update time
/// has passed, if any. A passed ETR wins over a passed "next update by", unless its lapse
/// was already posted (`already_posted` answers for a trigger key), in which case the
/// promised update time still counts: silence never lasts longer than `follow_up`.
pub fn due_automatic_update(
    state: IncidentState,
    etr: Option<Timestamp>,
    next_update_by: Option<Timestamp>,
    now: Timestamp,
    follow_up: SignedDuration,
    already_posted: impl Fn(&str) -> bool,
) -> Option<AutomaticUpdate> {
    if !state.is_open() {
        return None;
    }
    let next = now.checked_add(follow_up).ok()?;
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
            etr: ts("2026-11-23T16:00:00Z"),
            next_update_by: ts("2026-11-23T13:00:00Z"),
            started_at: None,
            state: IncidentState::Acknowledged,
        }
    }

    #[test]
    fn declaration_errors_are_all_reported() {
        let now = ts("2026-11-23T12:00:00Z");
        assert_eq!(check_declaration(now, &decl(), &topo()), Ok(vec![0]));
        let bad = Declaration {
            elements: vec!["nope".into()],
            cause: " ".into(),
            etr: ts("2026-11-23T11:00:00Z"),
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
    fn watchdog_never_lets_an_estimate_lapse_in_silence() {
        let etr = ts("2026-11-23T16:00:00Z");
        let nub = ts("2026-11-23T13:00:00Z");
        let f = LAPSE_FOLLOW_UP;
        let open = IncidentState::Identified;
        assert_eq!(
            due_automatic_update(open, Some(etr), Some(nub), ts("2026-11-23T12:59:59Z"), f, |_| false),
            None
        );
        let overdue =
            due_automatic_update(open, Some(etr), Some(nub), ts("2026-11-23T13:00:00Z"), f, |_| false)
                .unwrap();
        assert_eq!(overdue.kind, UpdateKind::UpdateOverdue);
        assert_eq!(overdue.trigger_key, "update_overdue:2026-11-23T13:00:00Z");
        assert_eq!(overdue.next_update_by, ts("2026-11-23T14:00:00Z"));
        assert_eq!(overdue.etr, Some(etr));
        let lapsed = due_automatic_update(
            open,
            Some(etr),
            Some(ts("2026-11-23T17:00:00Z")),
            ts("2026-11-23T16:30:00Z"),
            f,
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
                |_| false,
            ),
            None
        );
        // An ETR whose lapse was already posted (say an update carried it back) does not
        // hide a passed "next update by".
        let posted = |key: &str| key == "etr_lapsed:2026-11-23T16:00:00Z";
        let overdue =
            due_automatic_update(open, Some(etr), Some(nub), ts("2026-11-23T16:30:00Z"), f, posted).unwrap();
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
            check_resolution(IncidentState::Identified, &long),
            Err(vec![IncidentError::TooLong("message")])
        );
        assert_eq!(check_resolution(IncidentState::Resolved, ""), Err(vec![IncidentError::AlreadyResolved]));
    }
}
