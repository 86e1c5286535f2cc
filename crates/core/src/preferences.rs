//! A customer's notice preferences: which channels each kind of notice may use, and the
//! quiet hours during which notices wait, in the customer's own time zone.
//!
//! Stored as one JSON document per customer, read with [`Preferences::from_json`] and
//! changed one field at a time with [`PreferencesChange`] (an API `PATCH`). Topics the
//! customer never chose about follow [`default_allows`], so a better default reaches every
//! customer who did not decide otherwise. Unknown fields, topics and channels are refused
//! with the field and the value (`quiet_hours.start "25:00" is not a time HH:MM`), so a
//! typo never silently turns a notice off.
//!
//! Quiet hours are a daily window of wall-clock time, `[start, end)`, usually crossing
//! midnight (`22:00`-`07:00`). A notice held by them goes when the window ends, computed in
//! the customer's zone with its clock changes (see [`Preferences::held_until`]).

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::locale::Locale;
use crate::notice::NoticeKind;

/// Longest preferences document or change accepted, in bytes: a full document with every
/// topic, channel and quiet hours is under 1 KiB.
pub const PREFERENCES_BYTES_MAX: usize = 16 * 1024;

/// How a notice reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a customer chooses about: the notice kinds, with an update that moves the
/// estimated time of restoration told apart from one that does not (many want the first
/// by SMS and not the second), and the notices of an individual case as one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Acknowledgement,
    Update,
    EtrChange,
    Restored,
    Credit,
    StillDown,
    /// Every notice of an individual recovery case: the owner's response, a new owner, the
    /// apology or thank-you note, the follow-up.
    Case,
    /// A booked visit and, if it fails, the apology with what is held for the customer.
    Appointment,
    /// The confirmation of the customer's own request to cancel.
    Account,
    /// Satisfaction surveys. Declining them on every channel is opting out of surveys.
    Survey,
}

impl Topic {
    pub const ALL: [Topic; 10] = [
        Topic::Acknowledgement,
        Topic::Update,
        Topic::EtrChange,
        Topic::Restored,
        Topic::Credit,
        Topic::StillDown,
        Topic::Case,
        Topic::Appointment,
        Topic::Account,
        Topic::Survey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Acknowledgement => "acknowledgement",
            Topic::Update => "update",
            Topic::EtrChange => "etr_change",
            Topic::Restored => "restored",
            Topic::Credit => "credit",
            Topic::StillDown => "still_down",
            Topic::Case => "case",
            Topic::Appointment => "appointment",
            Topic::Account => "account",
            Topic::Survey => "survey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The topic a notice belongs to: an update whose ETR changed is an [`Topic::EtrChange`].
    pub fn of(kind: NoticeKind, etr_changed: bool) -> Topic {
        match kind {
            NoticeKind::Acknowledgement => Topic::Acknowledgement,
            NoticeKind::Update if etr_changed => Topic::EtrChange,
            NoticeKind::Update => Topic::Update,
            NoticeKind::Restored => Topic::Restored,
            NoticeKind::Credit => Topic::Credit,
            NoticeKind::StillDown => Topic::StillDown,
            NoticeKind::CaseResponse
            | NoticeKind::CaseOwner
            | NoticeKind::CaseNote
            | NoticeKind::CaseFollowUp => Topic::Case,
            NoticeKind::AppointmentBooked
            | NoticeKind::AppointmentCancelled
            | NoticeKind::AppointmentMissed => Topic::Appointment,
            NoticeKind::AccountCancelled | NoticeKind::PageLink => Topic::Account,
            NoticeKind::Survey => Topic::Survey,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The topics SMS carries by default: an SMS costs the provider money and interrupts the
/// customer, so only the news that changes their day (we know, the new estimate, it is
/// back) goes by default, and a case: a case is a conversation the customer started with
/// one person, and that person's words must reach the customer on the channel they have,
/// which for some is only a phone. A visit (booked, or missed with what is held for them)
/// and the confirmation of a cancellation are about the customer's own day and account,
/// so they go by SMS too; a survey does not. Email and webhooks carry every topic by
/// default.
pub const DEFAULT_SMS_TOPICS: [Topic; 6] = [
    Topic::Acknowledgement,
    Topic::EtrChange,
    Topic::Restored,
    Topic::Case,
    Topic::Appointment,
    Topic::Account,
];

/// Whether `channel` carries `topic` for a customer who has not chosen about `topic`.
pub fn default_allows(topic: Topic, channel: Channel) -> bool {
    match channel {
        Channel::Email | Channel::Webhook => true,
        Channel::Sms => DEFAULT_SMS_TOPICS.contains(&topic),
    }
}

/// The channels that carry `topic` by default.
pub fn default_channels(topic: Topic) -> BTreeSet<Channel> {
    Channel::ALL.into_iter().filter(|&c| default_allows(topic, c)).collect()
}

/// A daily window of local wall-clock time, `[start, end)`, to the minute. `start > end`
/// crosses midnight (`22:00`-`07:00`, the common case). Built with [`QuietHours::new`],
/// which refuses `start == end`; a value built by hand with equal times holds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: Time,
    pub end: Time,
}

/// The most clock changes a zone makes within one quiet window; none makes more than two a
/// day, so reaching this bound means bad zone data, and the notice goes rather than waits.
const TRANSITIONS_PER_WINDOW_MAX: usize = 8;

impl QuietHours {
    /// Refuses times with seconds (the window is to the minute) and an empty window.
    pub fn new(start: Time, end: Time) -> Result<Self, PreferencesError> {
        for (field, t) in [("quiet_hours.start", start), ("quiet_hours.end", end)] {
            if t.second() != 0 || t.subsec_nanosecond() != 0 {
                return Err(bad(field, &Json::from(t.to_string()), "is not a time HH:MM"));
            }
        }
        if start == end {
            let problem = "is also the start: give two different times, or null for no quiet hours";
            return Err(bad("quiet_hours.end", &Json::from(hh_mm(end)), problem));
        }
        Ok(QuietHours { start, end })
    }

    /// From `"HH:MM"` strings, as in the JSON document.
    pub fn parse(start: &str, end: &str) -> Result<Self, PreferencesError> {
        let time =
            |field, s: &str| parse_hh_mm(s).ok_or_else(|| bad(field, &Json::from(s), "is not a time HH:MM"));
        QuietHours::new(time("quiet_hours.start", start)?, time("quiet_hours.end", end)?)
    }

    /// Whether the wall-clock time `t` is inside the window.
    pub fn contains(&self, t: Time) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start <= t && t < self.end,
            std::cmp::Ordering::Greater => t >= self.start || t < self.end,
            std::cmp::Ordering::Equal => false,
        }
    }

    /// The first instant after `now` (inside the window) at which the window ends.
    ///
    /// Walks the zone's offsets from `now`: between two clock changes, wall time moves with
    /// the instant, so the end is one subtraction away. At a clock change the window ends
    /// if the clock lands outside it, or if it jumps forward over the end (a DST gap: the
    /// end time never shows, the first instant after the gap stands for it, so a notice
    /// never waits a second night). A clock set back repeats an hour, and the first time
    /// the end shows (the earlier of the two) ends the window.
    fn ends_after(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (mut from, mut offset) = (now, tz.to_offset(now));
        let mut transitions = tz.following(now);
        for _ in 0..TRANSITIONS_PER_WINDOW_MAX {
            let end = self.next_end(offset.to_datetime(from))?;
            let at = offset.to_timestamp(end).ok()?;
            let Some(change) = transitions.next().filter(|t| t.timestamp() <= at) else {
                return Some(at);
            };
            let landed = change.offset().to_datetime(change.timestamp());
            if end <= landed || !self.contains(landed.time()) {
                return Some(change.timestamp());
            }
            (from, offset) = (change.timestamp(), change.offset());
        }
        None
    }

    /// The first wall-clock end strictly after `local`.
    fn next_end(&self, local: DateTime) -> Option<DateTime> {
        let today = local.date().to_datetime(self.end);
        if today > local { Some(today) } else { Some(local.date().tomorrow().ok()?.to_datetime(self.end)) }
    }
}

impl Serialize for QuietHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut doc = s.serialize_struct("QuietHours", 2)?;
        doc.serialize_field("start", &hh_mm(self.start))?;
        doc.serialize_field("end", &hh_mm(self.end))?;
        doc.end()
    }
}

/// A customer's choices. Serialized as the stored JSON document:
/// `{"channels": {"credit": ["email"]}, "quiet_hours": {"start": "22:00", "end": "07:00"},
/// "urgent": ["restored"], "language": "de"}`; every field may be left out. Read through
/// [`Preferences::from_json`] (also behind `Deserialize`), which refuses unknown fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct Preferences {
    /// Explicit choices; a topic absent here follows [`default_allows`].
    channels: BTreeMap<Topic, BTreeSet<Channel>>,
    quiet_hours: Option<QuietHours>,
    /// Topics the customer lets through quiet hours.
    urgent: BTreeSet<Topic>,
    /// The language they chose for their messages and page, over the book's; `None`: the
    /// book's.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "locale_tag")]
    language: Option<Locale>,
}

fn locale_tag<S: Serializer>(locale: &Option<Locale>, s: S) -> Result<S::Ok, S::Error> {
    match locale {
        Some(l) => s.serialize_str(l.as_str()),
        None => s.serialize_none(),
    }
}

impl Preferences {
    /// Reads a stored document (or an API body); see [`PreferencesChange::from_json`] for
    /// the format: a document is a change applied to the defaults.
    pub fn from_json(s: &str) -> Result<Self, PreferencesError> {
        let mut prefs = Preferences::default();
        prefs.apply(PreferencesChange::from_json(s)?);
        Ok(prefs)
    }

    pub fn allows(&self, topic: Topic, channel: Channel) -> bool {
        match self.channels.get(&topic) {
            Some(chosen) => chosen.contains(&channel),
            None => default_allows(topic, channel),
        }
    }

    /// The channels that carry `topic`: the customer's choice, else the default.
    pub fn channels_for(&self, topic: Topic) -> BTreeSet<Channel> {
        self.channels.get(&topic).cloned().unwrap_or_else(|| default_channels(topic))
    }

    /// Every topic with the channels that carry it, as a page or API shows them.
    pub fn effective_channels(&self) -> BTreeMap<Topic, BTreeSet<Channel>> {
        Topic::ALL.into_iter().map(|t| (t, self.channels_for(t))).collect()
    }

    /// Only the explicit choices (what is stored).
    pub fn chosen_channels(&self) -> &BTreeMap<Topic, BTreeSet<Channel>> {
        &self.channels
    }

    pub fn quiet_hours(&self) -> Option<QuietHours> {
        self.quiet_hours
    }

    pub fn urgent(&self) -> &BTreeSet<Topic> {
        &self.urgent
    }

    /// The language they chose, if they chose one.
    pub fn language(&self) -> Option<&Locale> {
        self.language.as_ref()
    }

    /// The language to write to them in: the one they chose, else `book`'s.
    pub fn language_or<'a>(&'a self, book: &'a Locale) -> &'a Locale {
        self.language.as_ref().unwrap_or(book)
    }

    /// When a notice about `topic` that is ready at `now` may go, if not now: `None` when
    /// there are no quiet hours, the topic is urgent, or the customer's wall clock (in
    /// `tz`) is outside the window; otherwise the first instant at which the window ends.
    ///
    /// Clock changes are honoured: an end time skipped by a DST gap ends the window at the
    /// first instant after the gap; an end time shown twice (the clock set back) ends it
    /// the first time it shows after `now`. The hold is never longer than a day plus the
    /// clock change. Which channels quiet hours apply to is the caller's choice.
    pub fn held_until(&self, topic: Topic, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let quiet = self.quiet_hours?;
        if self.urgent.contains(&topic) || !quiet.contains(tz.to_datetime(now).time()) {
            return None;
        }
        quiet.ends_after(now, tz)
    }

    /// Applies a partial update: each topic named replaces that topic's channels (or
    /// returns it to the default), and quiet hours and urgent topics replace theirs when
    /// given.
    pub fn apply(&mut self, change: PreferencesChange) {
        for (topic, channels) in change.channels {
            match channels {
                Some(channels) => {
                    self.channels.insert(topic, channels);
                }
                None => {
                    self.channels.remove(&topic);
                }
            }
        }
        if let Some(quiet_hours) = change.quiet_hours {
            self.quiet_hours = quiet_hours;
        }
        if let Some(urgent) = change.urgent {
            self.urgent = urgent;
        }
        if let Some(language) = change.language {
            self.language = language;
        }
    }

    /// An unsubscribe link's effect: removes `channel` (every channel when `None`) from
    /// `topic` (every topic when `None`). The result is stored as an explicit choice, so a
    /// later change of the defaults never re-subscribes the customer.
    pub fn opt_out(&mut self, topic: Option<Topic>, channel: Option<Channel>) {
        let topics = topic.map_or(Topic::ALL.to_vec(), |t| vec![t]);
        for topic in topics {
            let mut channels = self.channels_for(topic);
            match channel {
                Some(channel) => {
                    channels.remove(&channel);
                }
                None => channels.clear(),
            }
            self.channels.insert(topic, channels);
        }
    }
}

impl TryFrom<Json> for Preferences {
    type Error = PreferencesError;

    fn try_from(v: Json) -> Result<Self, Self::Error> {
        let mut prefs = Preferences::default();
        prefs.apply(PreferencesChange::from_value(&v)?);
        Ok(prefs)
    }
}

/// A partial update of [`Preferences`], as an API `PATCH` body: the same fields as the
/// document, each optional.
///
/// - `channels`: `{"credit": ["email"]}` replaces the credit topic's channels and leaves the
///   other topics alone; `{"credit": null}` returns it to the default.
/// - `quiet_hours`: `{"start": "22:00", "end": "07:00"}` sets them, `null` removes them.
/// - `urgent`: a list of topics, replacing the previous list.
/// - `language`: `"de"` or `"pt-BR"` writes to them in that language; `null` returns to the
///   book's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_json::Value")]
pub struct PreferencesChange {
    /// `Some(channels)` replaces the topic's channels; `None` returns it to the default.
    pub channels: BTreeMap<Topic, Option<BTreeSet<Channel>>>,
    /// `Some(None)` removes the quiet hours.
    pub quiet_hours: Option<Option<QuietHours>>,
    pub urgent: Option<BTreeSet<Topic>>,
    /// `Some(None)` returns to the book's language.
    pub language: Option<Option<Locale>>,
}

impl PreferencesChange {
    pub fn from_json(s: &str) -> Result<Self, PreferencesError> {
        if s.len() > PREFERENCES_BYTES_MAX {
            return Err(PreferencesError::TooLong { bytes: s.len() });
        }
        let v: Json = serde_json::from_str(s).map_err(|e| PreferencesError::Json(e.to_string()))?;
        Self::from_value(&v)
    }

    /// Checks every field by hand rather than with derived serde, so that an error names
    /// the field and quotes the value.
    pub fn from_value(v: &Json) -> Result<Self, PreferencesError> {
        let fields = v.as_object().ok_or_else(|| bad("preferences", v, "is not a JSON object"))?;
        let mut change = PreferencesChange::default();
        for (name, value) in fields {
            match name.as_str() {
                "channels" => change.channels = parse_channels(value)?,
                "quiet_hours" => change.quiet_hours = Some(parse_quiet_hours(value)?),
                "urgent" => change.urgent = Some(parse_list("urgent", value)?),
                "language" => change.language = Some(parse_language(value)?),
                _ => {
                    let problem = "is not a field: expected channels, quiet_hours, urgent or language";
                    return Err(bad("preferences", &Json::from(name.as_str()), problem));
                }
            }
        }
        Ok(change)
    }
}

impl TryFrom<Json> for PreferencesChange {
    type Error = PreferencesError;

    fn try_from(v: Json) -> Result<Self, Self::Error> {
        Self::from_value(&v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    #[error("preferences are not JSON: {0}")]
    Json(String),
    #[error("preferences are {bytes} bytes, more than the {PREFERENCES_BYTES_MAX} accepted")]
    TooLong { bytes: usize },
    /// `value` is the JSON text of the bad value, cut to [`QUOTE_CHARS_MAX`] characters.
    #[error("{field} {value} {problem}")]
    Field { field: String, value: String, problem: String },
    #[error("{field} is missing")]
    Missing { field: &'static str },
}

/// `"de"` or `null`.
fn parse_language(v: &Json) -> Result<Option<Locale>, PreferencesError> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => {
            Locale::parse(s).map(Some).map_err(|_| bad("language", v, "is not a language like de or pt-BR"))
        }
        _ => Err(bad("language", v, "is not a language like de or pt-BR, or null")),
    }
}

/// Longest quote of a bad value in an error, in characters.
pub const QUOTE_CHARS_MAX: usize = 64;

fn bad(field: impl Into<String>, value: &Json, problem: impl Into<String>) -> PreferencesError {
    let mut quoted = value.to_string();
    if let Some((cut, _)) = quoted.char_indices().nth(QUOTE_CHARS_MAX) {
        quoted.truncate(cut);
        quoted.push('…');
    }
    PreferencesError::Field { field: field.into(), value: quoted, problem: problem.into() }
}

/// The two closed vocabularies of the document, so one list parser serves both.
trait Word: Copy + Ord + 'static {
    const WHAT: &'static str;
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;

    fn find(s: &str) -> Option<Self> {
        Self::all().iter().copied().find(|w| w.name() == s)
    }

    /// `is not a channel: expected email, sms or webhook`.
    fn refusal() -> String {
        let names: Vec<&str> = Self::all().iter().map(|w| w.name()).collect();
        let (last, rest) = names.split_last().unwrap_or((&"", &[]));
        format!("is not a {}: expected {} or {last}", Self::WHAT, rest.join(", "))
    }
}

impl Word for Topic {
    const WHAT: &'static str = "topic";
    fn all() -> &'static [Self] {
        &Topic::ALL
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Word for Channel {
    const WHAT: &'static str = "channel";
    fn all() -> &'static [Self] {
        &Channel::ALL
    }
    fn name(self) -> &'static str {
        self.as_str()
    }
}

fn parse_list<W: Word>(field: &str, v: &Json) -> Result<BTreeSet<W>, PreferencesError> {
    let items = v.as_array().ok_or_else(|| bad(field, v, format!("is not a list of {}s", W::WHAT)))?;
    let word = |(i, item): (usize, &Json)| {
        item.as_str().and_then(W::find).ok_or_else(|| bad(format!("{field}[{i}]"), item, W::refusal()))
    };
    items.iter().enumerate().map(word).collect()
}

fn parse_channels(v: &Json) -> Result<BTreeMap<Topic, Option<BTreeSet<Channel>>>, PreferencesError> {
    let topics = v.as_object().ok_or_else(|| bad("channels", v, "is not an object of topic: [channels]"))?;
    let entry = |(name, list): (&String, &Json)| {
        let topic =
            Topic::find(name).ok_or_else(|| bad("channels", &Json::from(name.as_str()), Topic::refusal()))?;
        let channels = match list {
            Json::Null => None,
            _ => Some(parse_list(&format!("channels.{topic}"), list)?),
        };
        Ok((topic, channels))
    };
    topics.iter().map(entry).collect()
}

fn parse_quiet_hours(v: &Json) -> Result<Option<QuietHours>, PreferencesError> {
    let fields = match v {
        Json::Null => return Ok(None),
        Json::Object(fields) => fields,
        _ => return Err(bad("quiet_hours", v, r#"is not {"start": "HH:MM", "end": "HH:MM"} or null"#)),
    };
    if let Some(name) = fields.keys().find(|k| !matches!(k.as_str(), "start" | "end")) {
        return Err(bad("quiet_hours", &Json::from(name.as_str()), "is not a field: expected start and end"));
    }
    let time = |field: &'static str, key: &str| {
        let v = fields.get(key).ok_or(PreferencesError::Missing { field })?;
        v.as_str().and_then(parse_hh_mm).ok_or_else(|| bad(field, v, "is not a time HH:MM"))
    };
    QuietHours::new(time("quiet_hours.start", "start")?, time("quiet_hours.end", "end")?).map(Some)
}

/// Exactly `HH:MM`, 24-hour, `00:00` to `23:59`.
fn parse_hh_mm(s: &str) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let (hour, minute) = (two(0), two(3));
    if hour > 23 || minute > 59 {
        return None;
    }
    Time::new(hour as i8, minute as i8, 0, 0).ok()
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn quiet(start: &str, end: &str) -> Preferences {
        Preferences::from_json(&format!(r#"{{"quiet_hours": {{"start": "{start}", "end": "{end}"}}}}"#))
            .unwrap()
    }

    const TOPIC: &str = "is not a topic: expected acknowledgement, update, etr_change, restored, credit, still_down, case, appointment, account or survey";

    fn refusal(json: &str) -> String {
        Preferences::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn a_chosen_language_wins_over_the_books_until_set_back_with_null() {
        let book = Locale::parse("es-ES").unwrap();
        let mut p = Preferences::from_json(r#"{"language": "de"}"#).unwrap();
        assert_eq!(p.language_or(&book).as_str(), "de");
        let stored = serde_json::to_string(&p).unwrap();
        assert!(stored.contains(r#""language":"de""#), "{stored}");
        assert_eq!(Preferences::from_json(&stored).unwrap(), p, "stored and read back");
        p.apply(PreferencesChange::from_json(r#"{"urgent": []}"#).unwrap());
        assert_eq!(p.language_or(&book).as_str(), "de", "a change that names no language keeps it");
        p.apply(PreferencesChange::from_json(r#"{"language": null}"#).unwrap());
        assert_eq!(p.language_or(&book), &book);
        assert!(!serde_json::to_string(&p).unwrap().contains("language"), "no choice: nothing stored");
        assert_eq!(
            refusal(r#"{"language": "Deutsch"}"#),
            r#"language "Deutsch" is not a language like de or pt-BR"#
        );
        assert_eq!(refusal(r#"{"language": 7}"#), "language 7 is not a language like de or pt-BR, or null");
    }

    #[test]
    fn defaults_send_everything_by_email_and_webhook_and_only_news_by_sms() {
        let p = Preferences::default();
        for topic in Topic::ALL {
            assert!(p.allows(topic, Channel::Email), "{topic}");
            assert!(p.allows(topic, Channel::Webhook), "{topic}");
        }
        let sms: Vec<Topic> = Topic::ALL.into_iter().filter(|&t| p.allows(t, Channel::Sms)).collect();
        // A case is a conversation with one person: their words go by SMS too, as do a
        // visit and a cancellation's confirmation; a survey does not.
        assert_eq!(
            sms,
            [
                Topic::Acknowledgement,
                Topic::EtrChange,
                Topic::Restored,
                Topic::Case,
                Topic::Appointment,
                Topic::Account
            ]
        );
        assert_eq!(p.quiet_hours(), None);
        assert!(p.urgent().is_empty());
        assert_eq!(
            p.effective_channels()[&Topic::Credit],
            BTreeSet::from([Channel::Email, Channel::Webhook])
        );
        assert_eq!(Preferences::from_json("{}").unwrap(), p);
    }

    #[test]
    fn notices_map_to_topics() {
        let check = |kind, etr_changed, want| assert_eq!(Topic::of(kind, etr_changed), want, "{kind}");
        check(NoticeKind::Acknowledgement, false, Topic::Acknowledgement);
        check(NoticeKind::Update, false, Topic::Update);
        check(NoticeKind::Update, true, Topic::EtrChange);
        check(NoticeKind::Restored, true, Topic::Restored);
        check(NoticeKind::Credit, false, Topic::Credit);
        check(NoticeKind::StillDown, false, Topic::StillDown);
        for kind in
            [NoticeKind::CaseResponse, NoticeKind::CaseOwner, NoticeKind::CaseNote, NoticeKind::CaseFollowUp]
        {
            check(kind, false, Topic::Case);
            check(kind, true, Topic::Case);
        }
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::from_str::<Channel>(&format!("\"{c}\"")).unwrap(), c);
        }
        assert_eq!(Topic::parse("Update"), None);
        assert_eq!(Channel::parse("fax"), None);
    }

    #[test]
    fn documents_round_trip() {
        let json = concat!(
            r#"{"channels":{"update":[],"credit":["email","sms"]},"#,
            r#""quiet_hours":{"start":"22:00","end":"07:30"},"urgent":["restored"]}"#
        );
        let p = Preferences::from_json(json).unwrap();
        assert!(!p.allows(Topic::Update, Channel::Email));
        assert!(p.allows(Topic::Credit, Channel::Sms));
        assert!(!p.allows(Topic::Credit, Channel::Webhook));
        assert!(p.allows(Topic::Restored, Channel::Sms), "untouched topics keep the defaults");
        let stored = serde_json::to_string(&p).unwrap();
        assert_eq!(stored, json);
        assert_eq!(Preferences::from_json(&stored).unwrap(), p);
        assert_eq!(serde_json::from_str::<Preferences>(&stored).unwrap(), p);
        assert_eq!(
            serde_json::to_string(&Preferences::default()).unwrap(),
            r#"{"channels":{},"quiet_hours":null,"urgent":[]}"#
        );
    }

    #[test]
    fn bad_documents_name_the_field_and_quote_the_value() {
        let check = |json: &str, want: &str| assert_eq!(refusal(json), want, "{json}");
        check(
            r#"{"quiet_hours": {"start": "25:00", "end": "07:00"}}"#,
            r#"quiet_hours.start "25:00" is not a time HH:MM"#,
        );
        check(
            r#"{"quiet_hours": {"start": "22:00", "end": "7:00"}}"#,
            r#"quiet_hours.end "7:00" is not a time HH:MM"#,
        );
        check(r#"{"quiet_hours": {"start": "22:00", "end": 7}}"#, r#"quiet_hours.end 7 is not a time HH:MM"#);
        check(r#"{"quiet_hours": {"start": "22:00"}}"#, "quiet_hours.end is missing");
        check(
            r#"{"quiet_hours": {"start": "22:00", "end": "22:00"}}"#,
            concat!(
                r#"quiet_hours.end "22:00" is also the start: "#,
                "give two different times, or null for no quiet hours"
            ),
        );
        check(
            r#"{"quiet_hours": {"start": "22:00", "end": "07:00", "zone": "UTC"}}"#,
            r#"quiet_hours "zone" is not a field: expected start and end"#,
        );
        check(
            r#"{"quiet_hours": "22-07"}"#,
            r#"quiet_hours "22-07" is not {"start": "HH:MM", "end": "HH:MM"} or null"#,
        );
        check(r#"{"channels": {"outage": ["email"]}}"#, &format!(r#"channels "outage" {TOPIC}"#));
        check(
            r#"{"channels": {"credit": ["email", "pigeon"]}}"#,
            r#"channels.credit[1] "pigeon" is not a channel: expected email, sms or webhook"#,
        );
        check(r#"{"channels": {"credit": "email"}}"#, r#"channels.credit "email" is not a list of channels"#);
        check(r#"{"channels": []}"#, "channels [] is not an object of topic: [channels]");
        check(r#"{"urgent": ["restored", "everything"]}"#, &format!(r#"urgent[1] "everything" {TOPIC}"#));
        check(
            r#"{"colour": "blue"}"#,
            r#"preferences "colour" is not a field: expected channels, quiet_hours, urgent or language"#,
        );
        check("[1]", "preferences [1] is not a JSON object");
        assert!(refusal("{").starts_with("preferences are not JSON: EOF while parsing"), "{}", refusal("{"));
        let long = format!(r#"{{"urgent": ["{}"]}}"#, "x".repeat(100));
        assert_eq!(refusal(&long), format!(r#"urgent[0] "{}… {}"#, "x".repeat(63), TOPIC));
        let huge = format!(r#"{{"urgent": [], "x": "{}"}}"#, " ".repeat(PREFERENCES_BYTES_MAX));
        assert_eq!(
            refusal(&huge),
            format!("preferences are {} bytes, more than the 16384 accepted", huge.len())
        );
        let via_serde =
            serde_json::from_str::<Preferences>(r#"{"urgent": ["now"]}"#).unwrap_err().to_string();
        assert!(via_serde.starts_with(r#"urgent[0] "now" is not a topic"#), "{via_serde}");
    }

    #[test]
    fn quiet_hours_are_to_the_minute_and_never_empty() {
        let t = |h, m, s| Time::new(h, m, s, 0).unwrap();
        assert!(QuietHours::new(t(22, 0, 0), t(7, 0, 0)).is_ok());
        assert_eq!(
            QuietHours::new(t(22, 0, 30), t(7, 0, 0)).unwrap_err().to_string(),
            r#"quiet_hours.start "22:00:30" is not a time HH:MM"#
        );
        assert!(QuietHours::new(t(7, 0, 0), t(7, 0, 0)).is_err());
        assert_eq!(
            QuietHours::parse("24:00", "07:00").unwrap_err().to_string(),
            r#"quiet_hours.start "24:00" is not a time HH:MM"#
        );
        let night = QuietHours::parse("22:00", "07:00").unwrap();
        assert!(night.contains(t(22, 0, 0)) && night.contains(t(3, 0, 0)) && night.contains(t(6, 59, 59)));
        assert!(
            !night.contains(t(7, 0, 0)) && !night.contains(t(12, 0, 0)) && !night.contains(t(21, 59, 59))
        );
        let day = QuietHours::parse("09:00", "17:00").unwrap();
        assert!(day.contains(t(9, 0, 0)) && !day.contains(t(17, 0, 0)) && !day.contains(t(3, 0, 0)));
        let by_hand = QuietHours { start: t(7, 0, 0), end: t(7, 0, 0) };
        assert!(!by_hand.contains(t(7, 0, 0)), "an empty window built by hand holds nothing");
    }

    #[test]
    fn a_change_touches_only_what_it_names() {
        let mut p = Preferences::from_json(
            r#"{"channels": {"credit": ["email"]}, "quiet_hours": {"start": "22:00", "end": "07:00"},
                "urgent": ["restored"]}"#,
        )
        .unwrap();
        let before = p.clone();
        p.apply(PreferencesChange::from_json("{}").unwrap());
        assert_eq!(p, before);
        p.apply(PreferencesChange::from_json(r#"{"channels": {"update": ["sms"]}}"#).unwrap());
        assert_eq!(p.channels_for(Topic::Update), BTreeSet::from([Channel::Sms]));
        assert_eq!(p.channels_for(Topic::Credit), BTreeSet::from([Channel::Email]), "other topics stay");
        assert_eq!(p.quiet_hours(), before.quiet_hours());
        p.apply(PreferencesChange::from_json(r#"{"channels": {"credit": null}, "urgent": []}"#).unwrap());
        assert_eq!(p.channels_for(Topic::Credit), default_channels(Topic::Credit));
        assert!(p.urgent().is_empty());
        assert_eq!(p.quiet_hours(), before.quiet_hours());
        p.apply(PreferencesChange::from_json(r#"{"quiet_hours": null}"#).unwrap());
        assert_eq!(p.quiet_hours(), None);
        assert_eq!(
            serde_json::from_str::<PreferencesChange>(r#"{"quiet_hours": null}"#).unwrap().quiet_hours,
            Some(None)
        );
        assert!(PreferencesChange::from_json(r#"{"channels": {"credit": ["fax"]}}"#).is_err());
    }

    #[test]
    fn opting_out_removes_channels_and_sticks() {
        let mut p = Preferences::default();
        p.opt_out(Some(Topic::Update), Some(Channel::Email));
        assert!(!p.allows(Topic::Update, Channel::Email));
        assert!(p.allows(Topic::Update, Channel::Webhook));
        assert!(p.allows(Topic::Credit, Channel::Email));
        p.opt_out(None, Some(Channel::Sms));
        assert!(Topic::ALL.into_iter().all(|t| !p.allows(t, Channel::Sms)));
        assert!(p.allows(Topic::Restored, Channel::Email));
        // Stored explicitly, so the next document read back keeps it.
        assert_eq!(Preferences::from_json(&serde_json::to_string(&p).unwrap()).unwrap(), p);
        p.opt_out(Some(Topic::Credit), None);
        assert!(p.channels_for(Topic::Credit).is_empty());
        p.opt_out(None, None);
        assert!(p.effective_channels().values().all(BTreeSet::is_empty));
    }

    #[test]
    fn holds_until_the_window_ends_in_the_customers_zone() {
        let ny = zone("America/New_York");
        let check = |p: &Preferences, now: &str, want: Option<&str>| {
            assert_eq!(p.held_until(Topic::Update, ts(now), &ny), want.map(ts), "at {now}");
        };
        let night = quiet("22:00", "07:00");
        check(&night, "2026-01-15T03:30:00Z", Some("2026-01-15T12:00:00Z")); // 22:30 EST -> 07:00
        check(&night, "2026-01-15T10:00:00Z", Some("2026-01-15T12:00:00Z")); // 05:00 EST
        check(&night, "2026-01-15T12:00:00Z", None); // 07:00: the window is over
        check(&night, "2026-01-15T02:59:59Z", None); // 21:59:59
        check(&night, "2026-07-15T02:30:00Z", Some("2026-07-15T11:00:00Z")); // 22:30 EDT -> 07:00 EDT
        check(&quiet("09:00", "17:00"), "2026-01-15T15:00:00Z", Some("2026-01-15T22:00:00Z"));
        check(&Preferences::default(), "2026-01-15T03:30:00Z", None);
        let mut urgent = night.clone();
        urgent.apply(PreferencesChange::from_json(r#"{"urgent": ["restored"]}"#).unwrap());
        assert_eq!(urgent.held_until(Topic::Restored, ts("2026-01-15T03:30:00Z"), &ny), None);
        assert!(urgent.held_until(Topic::Update, ts("2026-01-15T03:30:00Z"), &ny).is_some());
    }

    #[test]
    fn holds_follow_clock_changes() {
        let ny = zone("America/New_York");
        let check = |p: &Preferences, tz: &TimeZone, now: &str, want: &str| {
            assert_eq!(p.held_until(Topic::Update, ts(now), tz), Some(ts(want)), "at {now}");
        };
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; an end at 02:30 never shows, so the
        // window ends at the jump.
        check(&quiet("22:00", "02:30"), &ny, "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z");
        // 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 shows twice.
        let to_half_past_one = quiet("23:00", "01:30");
        check(&to_half_past_one, &ny, "2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z"); // the earlier
        check(&to_half_past_one, &ny, "2026-11-01T06:10:00Z", "2026-11-01T06:30:00Z"); // 01:10 EST
        // 01:50 EDT is inside 01:45-01:20; the clock goes back to 01:00, still inside, and
        // the window ends at 01:20 EST that night, not the next.
        check(&quiet("01:45", "01:20"), &ny, "2026-11-01T05:50:00Z", "2026-11-01T06:20:00Z");
        // Lord Howe moves by half an hour: 2026-10-04 02:00 (+10:30) jumps to 02:30 (+11).
        check(
            &quiet("22:00", "02:15"),
            &zone("Australia/Lord_Howe"),
            "2026-10-03T14:30:00Z",
            "2026-10-03T15:30:00Z",
        );
        // Samoa skipped 2011-12-30 entirely: 23:00 on the 29th (-10) -> the jump at midnight.
        check(
            &quiet("22:00", "07:00"),
            &zone("Pacific/Apia"),
            "2011-12-30T09:00:00Z",
            "2011-12-30T10:00:00Z",
        );
    }

    /// Whether the clock of `tz` jumps forward at exactly `t`.
    fn jumps_forward_at(tz: &TimeZone, t: Timestamp) -> bool {
        let before = tz.to_offset(t - SignedDuration::from_nanos(1));
        tz.following(t - SignedDuration::from_nanos(1))
            .next()
            .is_some_and(|c| c.timestamp() == t && c.offset().seconds() > before.seconds())
    }

    const ZONES: [&str; 6] =
        ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Tokyo", "UTC"];

    fn check_hold(start: u16, end: u16, zone_name: &str, now: Timestamp) -> Result<(), TestCaseError> {
        let time = |m: u16| Time::new((m / 60) as i8, (m % 60) as i8, 0, 0).unwrap();
        let Ok(q) = QuietHours::new(time(start), time(end)) else { return Ok(()) };
        let mut p = Preferences::default();
        p.apply(PreferencesChange { quiet_hours: Some(Some(q)), ..PreferencesChange::default() });
        let tz = zone(zone_name);
        let held = p.held_until(Topic::Credit, now, &tz);
        if !q.contains(tz.to_datetime(now).time()) {
            prop_assert_eq!(held, None, "outside the window is never held");
            return Ok(());
        }
        let until = held.expect("inside the window is held");
        prop_assert!(until > now);
        prop_assert!(until.duration_since(now) <= SignedDuration::from_hours(25), "{until} from {now}");
        let landed = tz.to_datetime(until).time();
        prop_assert!(
            !q.contains(landed) || jumps_forward_at(&tz, until),
            "{until} is {landed} in {zone_name}"
        );
        let just_before = until - SignedDuration::from_secs(1);
        if just_before >= now {
            prop_assert!(q.contains(tz.to_datetime(just_before).time()), "the window ended before {until}");
        }
        let hour_before = until - SignedDuration::from_hours(1);
        if hour_before >= now && !jumps_forward_at(&tz, until) {
            prop_assert!(q.contains(tz.to_datetime(hour_before).time()), "the window ended before {until}");
        }
        Ok(())
    }

    /// An instant within a day of one of the zone's clock changes in `year`, where the
    /// interesting cases are; a plain instant when the zone has none.
    fn near_a_change(zone_name: &str, year: i16, which: usize, offset_s: i64) -> Timestamp {
        let start = jiff::civil::date(year, 1, 1).at(0, 0, 0, 0).to_zoned(TimeZone::UTC).unwrap().timestamp();
        let change = zone(zone_name).following(start).nth(which).map_or(start, |c| c.timestamp());
        change + SignedDuration::from_secs(offset_s)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn holds_are_short_and_end_outside_the_window(
            start in 0u16..1440,
            end in 0u16..1440,
            zone_name in prop::sample::select(ZONES.to_vec()),
            now_s in 631_152_000i64..2_208_988_800,
        ) {
            check_hold(start, end, zone_name, Timestamp::from_second(now_s).unwrap())?;
        }

        #[test]
        fn holds_across_clock_changes_are_short_and_end_outside_the_window(
            start in 0u16..1440,
            end in 0u16..1440,
            zone_name in prop::sample::select(ZONES.to_vec()),
            year in 1995i16..2035,
            which in 0usize..2,
            offset_s in -26 * 3600i64..26 * 3600,
        ) {
            check_hold(start, end, zone_name, near_a_change(zone_name, year, which, offset_s))?;
        }

        #[test]
        fn documents_read_back_identically(
            chosen in prop::collection::btree_map(
                prop::sample::select(Topic::ALL.to_vec()),
                prop::collection::btree_set(prop::sample::select(Channel::ALL.to_vec()), 0..3),
                0..Topic::ALL.len() + 1,
            ),
            window in prop::option::of((0u16..1440, 0u16..1440)),
            urgent in prop::collection::btree_set(prop::sample::select(Topic::ALL.to_vec()), 0..Topic::ALL.len() + 1),
            language in prop::option::of(prop::sample::select(vec!["de", "pt-BR", "es-419", "fr"])),
        ) {
            let time = |m: u16| Time::new((m / 60) as i8, (m % 60) as i8, 0, 0).unwrap();
            let quiet_hours = window.and_then(|(s, e)| QuietHours::new(time(s), time(e)).ok());
            let language = language.map(|l| Locale::parse(l).unwrap());
            let p = Preferences { channels: chosen, quiet_hours, urgent, language };
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(Preferences::from_json(&json).unwrap(), p);
        }
    }
}
