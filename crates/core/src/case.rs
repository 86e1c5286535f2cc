//! Individual recovery cases: one customer, one owner at a time, and the playbook the best
//! providers follow after a mishap (a wrong order, a missed visit, a customer still offline
//! after an incident), whether the fault was the company's or the customer's.
//!
//! The playbook has five steps, each recorded with who did it and when ([`Case::playbook`]):
//!
//! 1. **Acknowledge** with empathy: a first response within `first_response_target`.
//! 2. **Own and fix**: a verified fix within `resolution_target`. One owner at a time; a
//!    hand-over is offered with a note and takes effect only when the new owner accepts.
//! 3. **Lessen** the inconvenience: compensation from the policy engine, applied by the app
//!    through the credit ledger and recorded here, and goodwill the owner adds within the
//!    limit of their role.
//! 4. **Manage the memory**: an apology or a thank-you note once the fix is verified.
//! 5. **Extend** the relationship: a follow-up `follow_up_after` the fix, with an optional
//!    gift, sent by amends.
//!
//! A case is the fold of its events: [`Case::replay`] rebuilds it from the log and
//! [`Case::apply`] adds one event, refusing any that the state does not allow, so a corrupt
//! log is found rather than trusted. Operators act through [`Command`]s:
//! [`Case::decide`] checks one against the case, the actor and the [`CaseRules`] and returns
//! the events to append; on error nothing is returned, so nothing changes. amends' own steps
//! are "what is due" functions ([`Case::due_escalations`], [`Case::due_follow_up`]) whose
//! effect the fold remembers: asked again after their events are appended, they return
//! nothing, so re-running a step (after a crash, or twice in a row) never repeats it.
//!
//! Clocks measure the customer's time: from their first contact (which may be before the
//! case was opened) to the verified fix, never reduced by pauses; re-opening continues the
//! same clock (the customer was never really fixed). Targets are measured on the same time
//! less the pauses, counted up to `pause_total_max`: a pause that runs longer than that no
//! longer stops the target clock. See [`Case::customer_time`] and [`Case::target_time`].
//!
//! Concurrency: event `i` of a case is meant to be stored at sequence `i` (the case's
//! [`Case::version`] is the next one), so two writers deciding on the same version cannot
//! both append: a unique (case, sequence) turns the second into a retry instead of a fork.

use crate::id::IncidentId;
use crate::money::{Currency, Money};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The actor id of amends' own steps (escalations, follow-ups); no person may use it, so
/// the log always tells a person's action from an automatic one.
pub const AMENDS: &str = "amends";
/// Longest id (actor, customer, incident, appointment, credit key), in bytes.
pub const ID_BYTES_MAX: usize = 128;
/// Longest note, reason, message, summary or gift, in bytes: as long as an incident's
/// message (`incident::MESSAGE_BYTES_MAX`).
pub const NOTE_BYTES_MAX: usize = 2_000;
/// Longest explanation of a compensation, in bytes: the policy engine's arithmetic for a
/// few lines, with room to spare.
pub const EXPLANATION_BYTES_MAX: usize = 4_000;
/// Longest apology or thank-you note, in bytes: a letter, not a message.
pub const MEMORY_NOTE_BYTES_MAX: usize = 8_000;
/// Most events one case may hold. A case lives days, not years; this bounds a loop of
/// offered and declined hand-overs or of short pauses, and the memory of a replay.
pub const EVENTS_MAX: usize = 1_000;
/// How far before the case's opening the customer's first contact may be: a typo of a year
/// would otherwise make every target missed and every clock huge.
pub const FIRST_CONTACT_LOOKBACK_DAYS_MAX: i64 = 31;
/// Longest duration any of the [`CaseRules`] may set: a quarter of a year.
pub const RULE_DURATION_MAX: SignedDuration = SignedDuration::from_hours(90 * 24);
/// Highest goodwill limit a role may be given, in minor units: a typo of a few zeros
/// should be refused, not let an agent give away a month of revenue.
pub const GOODWILL_LIMIT_MINOR_MAX: i64 = 10_000_000;

/// What an agent may give as goodwill per case by default, in minor units of the case's
/// currency (20.00 in a currency with cents): a gesture, within reach without asking.
pub const GOODWILL_AGENT_MINOR: i64 = 2_000;
/// A lead's default goodwill limit per case (100.00 with cents).
pub const GOODWILL_LEAD_MINOR: i64 = 10_000;
/// An admin's default goodwill limit per case (500.00 with cents).
pub const GOODWILL_ADMIN_MINOR: i64 = 50_000;

/// `as_str`, `parse`, `ALL` and `Display` for a field-less enum, with the names serde uses.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// The submodules use `names!`, so they come after it.
mod decide;
mod event;
mod playbook;
mod state;
#[cfg(test)]
mod tests;

pub use decide::{Command, DueEscalations, OpenCase};
pub use event::{CaseEvent, Change};
pub use playbook::{Due, Playbook, PlaybookStep, Step};
pub use state::{
    Case, Compensation, Done, Escalation, FollowUp, Gesture, MemoryNote, Pause, PendingHandover,
};

/// What a person may do. Agents own cases; leads and admins may act on any case without
/// owning it (which is why a case is handed over to agents only, and escalations go to a
/// lead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Lead,
    Admin,
}

names!(Role { Agent => "agent", Lead => "lead", Admin => "admin" });

/// A person acting on a case, as the app resolved them from its directory of people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: Role,
}

impl Actor {
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Actor { id: id.into(), role }
    }
}

/// Where a case comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseSource {
    /// The customer got in touch (a call, a chat, an email).
    Contact,
    /// An incident left this customer without service (say, still down after it resolved).
    Incident { incident_id: IncidentId },
    /// A booked visit went wrong (a no-show, a late cancellation).
    Appointment { appointment_id: String },
    /// Opened by a person for any other reason.
    Manual,
}

/// Whose fault the mishap was. Recorded for reporting only: the procedure is the same
/// either way, and no rule here reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Company,
    Customer,
    Unknown,
}

names!(Fault { Company => "company", Customer => "customer", Unknown => "unknown" });

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    /// Waiting on something outside the owner's hands, with a reason; see [`Case::target_time`].
    Paused,
    /// The fix is verified; the customer's clock has stopped.
    Fixed,
    Closed,
}

names!(Status { Open => "open", Paused => "paused", Fixed => "fixed", Closed => "closed" });

/// A target the case is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
}

names!(Target { FirstResponse => "first_response", Resolution => "resolution" });

/// The kind of note that manages the memory of a mishap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    Apology,
    ThankYou,
}

names!(MemoryKind { Apology => "apology", ThankYou => "thank_you" });

/// The most goodwill each role may bring a case's total to, in minor units of the case's
/// currency. The total counts everyone's goodwill: an agent cannot add 20.00 after a lead
/// added 100.00, only a lead or an admin can add more. Compensation from the policy engine
/// is an entitlement and is not limited by role.
///
/// Minor units differ in worth between currencies (2,000 is 20.00 USD but 2,000 JPY); the
/// app passes the rules for the case's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoodwillLimits {
    pub agent_minor: i64,
    pub lead_minor: i64,
    pub admin_minor: i64,
}

impl Default for GoodwillLimits {
    fn default() -> Self {
        GoodwillLimits {
            agent_minor: GOODWILL_AGENT_MINOR,
            lead_minor: GOODWILL_LEAD_MINOR,
            admin_minor: GOODWILL_ADMIN_MINOR,
        }
    }
}

impl GoodwillLimits {
    pub fn limit_minor(&self, role: Role) -> i64 {
        match role {
            Role::Agent => self.agent_minor,
            Role::Lead => self.lead_minor,
            Role::Admin => self.admin_minor,
        }
    }
}

/// The targets and limits of a case. Passed to every decision rather than stored, so a
/// change of rules applies to open cases from then on; the log records what happened, not
/// the rules of the day, and replays without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseRules {
    /// From the first contact to the first response.
    pub first_response_target: SignedDuration,
    /// From the first contact to the verified fix, less pauses.
    pub resolution_target: SignedDuration,
    /// How long before a target's deadline the owner's lead hears of it.
    pub escalate_before: SignedDuration,
    /// How long after the fix a case may be re-opened rather than a new one opened.
    pub reopen_window: SignedDuration,
    /// The most pause time that stops the target clock, over the whole case.
    pub pause_total_max: SignedDuration,
    /// How long after the fix the follow-up goes out.
    pub follow_up_after: SignedDuration,
    pub goodwill: GoodwillLimits,
}

impl Default for CaseRules {
    /// - first response in 1 hour: a person has written back while the customer still
    ///   remembers why they called (helpdesks' "urgent" response target);
    /// - fix in 48 hours: a missed visit re-booked for the next day fits, with a day spare;
    /// - escalation 15 minutes before a deadline: enough for a lead to step in on the first
    ///   response, and a quarter of its target;
    /// - re-open within 7 days: a fault that comes back within the week is the same fault;
    /// - pauses up to 72 hours: waiting for the customer over a long weekend, no longer;
    /// - follow-up after 3 days: "a few days later", inside the re-open window, so a fault
    ///   that came back is usually known before the follow-up asks how things are.
    fn default() -> Self {
        CaseRules {
            first_response_target: SignedDuration::from_hours(1),
            resolution_target: SignedDuration::from_hours(48),
            escalate_before: SignedDuration::from_mins(15),
            reopen_window: SignedDuration::from_hours(7 * 24),
            pause_total_max: SignedDuration::from_hours(72),
            follow_up_after: SignedDuration::from_hours(3 * 24),
            goodwill: GoodwillLimits::default(),
        }
    }
}

impl CaseRules {
    /// Checks every duration is positive and at most [`RULE_DURATION_MAX`], that an
    /// escalation comes before each deadline, that the first response is due no later than
    /// the fix, and that goodwill limits are within [`GOODWILL_LIMIT_MINOR_MAX`] and grow
    /// with the role. Returns the first problem.
    pub fn check(&self) -> Result<(), CaseError> {
        let durations = [
            ("first_response_target", self.first_response_target),
            ("resolution_target", self.resolution_target),
            ("escalate_before", self.escalate_before),
            ("reopen_window", self.reopen_window),
            ("pause_total_max", self.pause_total_max),
            ("follow_up_after", self.follow_up_after),
        ];
        for (field, value) in durations {
            if !value.is_positive() {
                return Err(CaseError::RuleNotPositive { field, value });
            }
            if value > RULE_DURATION_MAX {
                return Err(CaseError::RuleTooLong { field, value });
            }
        }
        for (target, value) in [
            ("first_response_target", self.first_response_target),
            ("resolution_target", self.resolution_target),
        ] {
            if self.escalate_before >= value {
                return Err(CaseError::EscalationTooEarly {
                    target,
                    value,
                    escalate_before: self.escalate_before,
                });
            }
        }
        if self.first_response_target > self.resolution_target {
            return Err(CaseError::ResponseAfterResolution {
                first_response: self.first_response_target,
                resolution: self.resolution_target,
            });
        }
        let mut below = 0;
        for &role in Role::ALL {
            let limit = self.goodwill.limit_minor(role);
            if !(0..=GOODWILL_LIMIT_MINOR_MAX).contains(&limit) {
                return Err(CaseError::GoodwillLimitOutOfRange { role, limit });
            }
            if limit < below {
                return Err(CaseError::GoodwillLimitBelowLowerRole { role, limit, below });
            }
            below = limit;
        }
        Ok(())
    }
}

/// Everything that can be wrong with a command, an event or the rules. Each message names
/// the field or the action and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    #[error("{field}: {bytes} bytes, longer than {max}")]
    TooLong { field: &'static str, bytes: usize, max: usize },
    #[error("{field}: {value:?} has a control character")]
    ControlCharacter { field: &'static str, value: String },
    #[error("{field}: {found}; control characters are not allowed")]
    ForbiddenCharacter { field: &'static str, found: String },
    #[error("{field}: {value:?} is reserved for amends' own steps")]
    ReservedId { field: &'static str, value: String },
    #[error("{event}: by {by}, but only amends records it")]
    AutomaticOnly { event: &'static str, by: String },
    #[error("{event}: by amends, but only a person records it")]
    PeopleOnly { event: &'static str },
    #[error("{field}: {value} must be positive")]
    NotPositive { field: &'static str, value: i64 },
    #[error(
        "{actor} may not act on this case: it is owned by {owner} (only the owner, a lead or an admin may)"
    )]
    NotOwner { actor: String, owner: String },
    #[error("{field}: {id} is {role}, not an agent; cases are owned by agents")]
    NotAnAgent { field: &'static str, id: String, role: Role },
    #[error("hand-over to {to} refused: {to} already owns the case")]
    HandoverToOwner { to: String },
    #[error("hand-over to {to} refused: a hand-over to {pending} is already waiting for acceptance")]
    HandoverPending { to: String, pending: String },
    #[error("{action} refused: no hand-over is waiting for acceptance")]
    NoHandoverPending { action: &'static str },
    #[error("{actor} may not {action} the hand-over: it was offered to {offered}")]
    NotOfferedTo { actor: String, action: &'static str, offered: String },
    #[error("{action} refused: a hand-over to {to} is waiting for acceptance; settle or withdraw it first")]
    HandoverUnsettled { action: &'static str, to: String },
    #[error("{action} refused: the case is {status}{}", next_step(action, *status))]
    WrongStatus { action: &'static str, status: Status },
    #[error("{action} refused: the customer has had no first response yet")]
    NoFirstResponse { action: &'static str },
    #[error("first response: already sent at {at}")]
    AlreadyResponded { at: Timestamp },
    #[error("pause refused: the case was paused for {used:#} already, the most is {max:#}")]
    PauseLimitReached { used: SignedDuration, max: SignedDuration },
    #[error(
        "goodwill of {asked} refused: {role} may bring a case's goodwill to at most {limit}, and {already} was given already"
    )]
    GoodwillAboveLimit { role: Role, limit: Money, asked: Money, already: Money },
    #[error("currency: {got} is not the case's currency ({case})")]
    CurrencyMismatch { got: Currency, case: Currency },
    #[error("credit_key: {key} was recorded with {recorded}, not {asked}")]
    CompensationConflict { key: String, recorded: Money, asked: Money },
    #[error("{kind} note: already sent at {at}")]
    MemoryNoteAlreadySent { kind: MemoryKind, at: Timestamp },
    #[error("follow-up: already sent at {at}")]
    FollowUpAlreadySent { at: Timestamp },
    #[error("follow-up: not due until {due_at}")]
    FollowUpNotDue { due_at: Timestamp },
    #[error("escalation of {target}: already escalated at {at}")]
    AlreadyEscalated { target: Target, at: Timestamp },
    #[error("reopen refused: fixed at {fixed_at}, more than {window:#} before now ({now}); open a new case")]
    ReopenWindowPassed { fixed_at: Timestamp, window: SignedDuration, now: Timestamp },
    #[error("now ({now}) is before the case's last event ({last})")]
    ClockBehind { now: Timestamp, last: Timestamp },
    #[error("first_contact_at: {first_contact_at} is after {at}, when the case was opened")]
    FirstContactAfterOpening { first_contact_at: Timestamp, at: Timestamp },
    #[error(
        "first_contact_at: {first_contact_at} is more than {FIRST_CONTACT_LOOKBACK_DAYS_MAX} days before now ({now})"
    )]
    FirstContactTooEarly { first_contact_at: Timestamp, now: Timestamp },
    #[error("the case holds {EVENTS_MAX} events, the most it may")]
    TooManyEvents,
    #[error("the log is empty: a case starts with an opened event")]
    EmptyLog,
    #[error("a case starts with an opened event, not {event}")]
    NotOpenedFirst { event: &'static str },
    #[error("the case is already opened")]
    AlreadyOpened,
    #[error("at: {at} is before the previous event ({previous})")]
    OutOfOrder { at: Timestamp, previous: Timestamp },
    #[error("event {index} ({event}): {problem}")]
    Replay { index: usize, event: &'static str, problem: Box<CaseError> },
    #[error("rules.{field}: {value:#} must be positive")]
    RuleNotPositive { field: &'static str, value: SignedDuration },
    #[error("rules.{field}: {value:#} is longer than {:#}", RULE_DURATION_MAX)]
    RuleTooLong { field: &'static str, value: SignedDuration },
    #[error("rules.escalate_before: {escalate_before:#} must be shorter than rules.{target} ({value:#})")]
    EscalationTooEarly { target: &'static str, value: SignedDuration, escalate_before: SignedDuration },
    #[error(
        "rules.first_response_target: {first_response:#} must not be longer than rules.resolution_target ({resolution:#})"
    )]
    ResponseAfterResolution { first_response: SignedDuration, resolution: SignedDuration },
    #[error("rules.goodwill.{role}_minor: {limit} is not between 0 and {GOODWILL_LIMIT_MINOR_MAX}")]
    GoodwillLimitOutOfRange { role: Role, limit: i64 },
    #[error("rules.goodwill.{role}_minor: {limit} is below the limit of a lower role ({below})")]
    GoodwillLimitBelowLowerRole { role: Role, limit: i64, below: i64 },
}

/// What to do instead of `action`, which a case in `status` refuses: a refusal names the
/// way forward, not only the state ("record the fix first", not "the case is open").
fn next_step(action: &str, status: Status) -> &'static str {
    use Status::{Closed, Fixed, Open, Paused};
    match (action, status) {
        ("close", Open) => "; record the fix first",
        ("close", Paused) => "; resume it and record the fix first",
        ("close", Closed) => "; there is nothing to do",
        ("reopen", Open | Paused) => "; only a fixed or closed case reopens",
        ("fix", Paused) => "; resume it first",
        ("fix", Fixed) => "; close it, or reopen it if the fault is back",
        ("pause", Paused) => "; it is paused already",
        ("pause", Fixed) => "; it is fixed: reopen it if the fault is back",
        ("resume", Open | Fixed) => "; it is not paused",
        ("memory note" | "follow-up", Open | Paused) => "; that comes after the fix: record the fix first",
        (_, Closed) => "; reopen it first (or open a new case)",
        _ => "",
    }
}

/// `text`, trimmed, if it is not empty (when `required`) and at most `max` bytes.
fn check_text(field: &'static str, text: &str, max: usize, required: bool) -> Result<String, CaseError> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(CaseError::Empty { field });
    }
    if text.len() > max {
        return Err(CaseError::TooLong { field, bytes: text.len(), max });
    }
    if let Some(found) = crate::text::forbidden_in_text(text) {
        return Err(CaseError::ForbiddenCharacter { field, found: found.to_string() });
    }
    Ok(text.to_string())
}

/// An id: not empty, at most [`ID_BYTES_MAX`] bytes, no control characters, no surrounding
/// spaces (ids are compared byte for byte, so `" agent-1"` would be another person).
fn check_id(field: &'static str, id: &str) -> Result<(), CaseError> {
    if id.trim().is_empty() {
        return Err(CaseError::Empty { field });
    }
    if id.len() > ID_BYTES_MAX {
        return Err(CaseError::TooLong { field, bytes: id.len(), max: ID_BYTES_MAX });
    }
    if crate::text::forbidden_in_line(id).is_some() || id.trim() != id {
        return Err(CaseError::ControlCharacter { field, value: id.to_string() });
    }
    Ok(())
}

/// A person's id: an id that is not [`AMENDS`].
fn check_person(field: &'static str, id: &str) -> Result<(), CaseError> {
    check_id(field, id)?;
    if id == AMENDS {
        return Err(CaseError::ReservedId { field, value: id.to_string() });
    }
    Ok(())
}

fn check_positive(field: &'static str, value: i64) -> Result<(), CaseError> {
    if value <= 0 {
        return Err(CaseError::NotPositive { field, value });
    }
    Ok(())
}

/// `t + d`, at the end of time rather than an error (only for absurd durations).
fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}

/// `to - from`, zero when `to` is not after `from`.
fn elapsed(from: Timestamp, to: Timestamp) -> SignedDuration {
    if to > from { to.duration_since(from) } else { SignedDuration::ZERO }
}

/// Serialises a [`Currency`] as its ISO 4217 code, and reads one back only if amends knows it.
mod currency_code {
    use crate::money::Currency;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(currency: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(currency.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}
