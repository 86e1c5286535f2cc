//! The case as the fold of its events, and its clocks.

use super::event::{CaseEvent, Change, RecordedBy};
use super::{
    AMENDS, CaseError, CaseRules, CaseSource, EVENTS_MAX, Fault, MemoryKind, Status, Target, currency_code,
    elapsed, plus,
};
use crate::id::CustomerId;
use crate::money::{Currency, Money};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// Who did something and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Done {
    pub at: Timestamp,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingHandover {
    pub to: String,
    pub note: String,
    pub offered: Done,
}

/// One pause; `until` is `None` while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    pub from: Timestamp,
    pub until: Option<Timestamp>,
    pub reason: String,
    pub by: String,
}

impl Pause {
    /// How much of this pause lies before `end`.
    fn length_before(&self, end: Timestamp) -> SignedDuration {
        elapsed(self.from, self.until.map_or(end, |until| until.min(end)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compensation {
    pub credit_key: String,
    pub amount_minor: i64,
    pub explanation: String,
    pub done: Done,
}

/// A goodwill gesture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gesture {
    pub amount_minor: i64,
    pub note: String,
    pub done: Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryNote {
    pub kind: MemoryKind,
    pub text: String,
    pub done: Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUp {
    pub gift: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    pub target: Target,
    pub to: String,
    pub at: Timestamp,
}

/// Refuses an automatic step recorded by a person, and a person's step recorded by amends.
fn check_recorder(e: &CaseEvent) -> Result<(), CaseError> {
    let event = e.change.name();
    match (e.change.recorded_by(), e.by == AMENDS) {
        (RecordedBy::Amends, false) => Err(CaseError::AutomaticOnly { event, by: e.by.clone() }),
        (RecordedBy::People, true) => Err(CaseError::PeopleOnly { event }),
        _ => Ok(()),
    }
}

/// A recovery case: the fold of its events. Built only by [`Case::replay`] and grown by
/// [`Case::apply`], so every value of it is one a valid log produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub(super) customer_id: CustomerId,
    pub(super) source: CaseSource,
    pub(super) fault: Fault,
    pub(super) summary: String,
    #[serde(with = "currency_code")]
    pub(super) currency: Currency,
    pub(super) opened: Done,
    pub(super) first_contact_at: Timestamp,
    pub(super) owner: String,
    pub(super) status: Status,
    pub(super) pending_handover: Option<PendingHandover>,
    pub(super) first_response: Option<Done>,
    /// The first fix ever: it meets the first-response target if nothing else did.
    pub(super) first_fixed_at: Option<Timestamp>,
    /// The verified fix that stands: `None` while open, paused, or re-opened and unfixed.
    pub(super) fixed: Option<Done>,
    pub(super) closed: Option<Done>,
    pub(super) reopens: u32,
    pub(super) pauses: Vec<Pause>,
    pub(super) compensations: Vec<Compensation>,
    pub(super) goodwill: Vec<Gesture>,
    pub(super) memory_notes: Vec<MemoryNote>,
    pub(super) follow_up: Option<FollowUp>,
    pub(super) escalations: Vec<Escalation>,
    pub(super) version: usize,
    pub(super) last_at: Timestamp,
}

impl Case {
    /// Rebuilds a case from its log. The log must start with the one `opened` event, be in
    /// time order (equal instants allowed) and hold only changes the state allows at their
    /// point; the error names the index and type of the first event that does not.
    pub fn replay(events: &[CaseEvent]) -> Result<Case, CaseError> {
        let (first, rest) = events.split_first().ok_or(CaseError::EmptyLog)?;
        let at = |index: usize, event: &'static str| {
            move |problem| CaseError::Replay { index, event, problem: Box::new(problem) }
        };
        let mut case = Case::start(first).map_err(at(0, first.change.name()))?;
        for (i, e) in rest.iter().enumerate() {
            case.apply(e).map_err(at(i + 1, e.change.name()))?;
        }
        Ok(case)
    }

    fn start(e: &CaseEvent) -> Result<Case, CaseError> {
        check_recorder(e)?;
        let Change::Opened { customer_id, owner, source, fault, summary, first_contact_at, currency } =
            &e.change
        else {
            return Err(CaseError::NotOpenedFirst { event: e.change.name() });
        };
        if *first_contact_at > e.at {
            return Err(CaseError::FirstContactAfterOpening {
                first_contact_at: *first_contact_at,
                at: e.at,
            });
        }
        Ok(Case {
            customer_id: customer_id.clone(),
            source: source.clone(),
            fault: *fault,
            summary: summary.clone(),
            currency: *currency,
            opened: Done { at: e.at, by: e.by.clone() },
            first_contact_at: *first_contact_at,
            owner: owner.clone(),
            status: Status::Open,
            pending_handover: None,
            first_response: None,
            first_fixed_at: None,
            fixed: None,
            closed: None,
            reopens: 0,
            pauses: Vec::new(),
            compensations: Vec::new(),
            goodwill: Vec::new(),
            memory_notes: Vec::new(),
            follow_up: None,
            escalations: Vec::new(),
            version: 1,
            last_at: e.at,
        })
    }

    /// Adds one event, or changes nothing and says why the case does not allow it. Checks
    /// what the state decides (status, who may accept a hand-over, once-only steps, the
    /// same credit key twice, time order), not what the rules or a person's role decide:
    /// those are [`Case::decide`]'s, at the time, and a log replays without them.
    pub fn apply(&mut self, e: &CaseEvent) -> Result<(), CaseError> {
        if self.version >= EVENTS_MAX {
            return Err(CaseError::TooManyEvents);
        }
        if e.at < self.last_at {
            return Err(CaseError::OutOfOrder { at: e.at, previous: self.last_at });
        }
        check_recorder(e)?;
        self.check(&e.by, &e.change)?;
        self.change(e);
        self.version += 1;
        self.last_at = e.at;
        Ok(())
    }

    fn expect(&self, action: &'static str, allowed: &[Status]) -> Result<(), CaseError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(CaseError::WrongStatus { action, status: self.status })
        }
    }

    /// Whether the state allows `change` by `by` now.
    pub(super) fn check(&self, by: &str, change: &Change) -> Result<(), CaseError> {
        use Status::{Closed, Fixed, Open, Paused};
        const NOT_CLOSED: &[Status] = &[Open, Paused, Fixed];
        let pending = |action| self.pending_handover.as_ref().ok_or(CaseError::NoHandoverPending { action });
        let offered_to_by = |action| {
            let p = pending(action)?;
            if p.to != by {
                return Err(CaseError::NotOfferedTo { actor: by.into(), action, offered: p.to.clone() });
            }
            Ok(())
        };
        let same_currency = |got: &Currency| {
            if *got != self.currency {
                return Err(CaseError::CurrencyMismatch { got: *got, case: self.currency });
            }
            Ok(())
        };
        match change {
            Change::Opened { .. } => Err(CaseError::AlreadyOpened),
            Change::FirstResponse { .. } => {
                self.expect("first response", NOT_CLOSED)?;
                match &self.first_response {
                    Some(done) => Err(CaseError::AlreadyResponded { at: done.at }),
                    None => Ok(()),
                }
            }
            Change::HandoverOffered { to, .. } => {
                self.expect("hand-over", NOT_CLOSED)?;
                if let Some(p) = &self.pending_handover {
                    return Err(CaseError::HandoverPending { to: to.clone(), pending: p.to.clone() });
                }
                if *to == self.owner {
                    return Err(CaseError::HandoverToOwner { to: to.clone() });
                }
                Ok(())
            }
            Change::HandoverAccepted { .. } => offered_to_by("accept"),
            Change::HandoverDeclined { .. } => offered_to_by("decline"),
            Change::HandoverWithdrawn { .. } => pending("withdraw").map(|_| ()),
            Change::Paused { .. } => {
                self.expect("pause", &[Open])?;
                if self.first_response.is_none() {
                    return Err(CaseError::NoFirstResponse { action: "pause" });
                }
                Ok(())
            }
            Change::Resumed => self.expect("resume", &[Paused]),
            Change::Compensated { credit_key, amount_minor, currency, .. } => {
                same_currency(currency)?;
                super::check_positive("amount_minor", *amount_minor)?;
                match self.compensations.iter().find(|c| c.credit_key == *credit_key) {
                    Some(c) => Err(CaseError::CompensationConflict {
                        key: credit_key.clone(),
                        recorded: Money::new(c.amount_minor, self.currency),
                        asked: Money::new(*amount_minor, *currency),
                    }),
                    None => Ok(()),
                }
            }
            Change::Goodwill { amount_minor, currency, .. } => {
                self.expect("goodwill", NOT_CLOSED)?;
                same_currency(currency)?;
                super::check_positive("amount_minor", *amount_minor)
            }
            Change::Fixed { .. } => self.expect("fix", &[Open]),
            Change::MemoryNote { kind, .. } => {
                self.expect("memory note", &[Fixed, Closed])?;
                match self.memory_note(*kind) {
                    Some(note) => Err(CaseError::MemoryNoteAlreadySent { kind: *kind, at: note.done.at }),
                    None => Ok(()),
                }
            }
            Change::FollowUp { .. } => {
                self.expect("follow-up", &[Fixed, Closed])?;
                match &self.follow_up {
                    Some(f) => Err(CaseError::FollowUpAlreadySent { at: f.at }),
                    None => Ok(()),
                }
            }
            Change::Closed => {
                self.expect("close", &[Fixed])?;
                match &self.pending_handover {
                    Some(p) => Err(CaseError::HandoverUnsettled { action: "close", to: p.to.clone() }),
                    None => Ok(()),
                }
            }
            Change::Reopened { .. } => self.expect("reopen", &[Fixed, Closed]),
            Change::Escalated { target, .. } => {
                self.expect("escalation", NOT_CLOSED)?;
                match self.escalation(*target) {
                    Some(e) => Err(CaseError::AlreadyEscalated { target: *target, at: e.at }),
                    None => Ok(()),
                }
            }
        }
    }

    /// Applies a change [`Case::check`] allowed.
    fn change(&mut self, e: &CaseEvent) {
        let done = || Done { at: e.at, by: e.by.clone() };
        match &e.change {
            Change::Opened { .. } => {}
            Change::FirstResponse { .. } => self.first_response = Some(done()),
            Change::HandoverOffered { to, note } => {
                self.pending_handover =
                    Some(PendingHandover { to: to.clone(), note: note.clone(), offered: done() })
            }
            Change::HandoverAccepted { .. } => {
                if let Some(p) = self.pending_handover.take() {
                    self.owner = p.to;
                }
            }
            Change::HandoverDeclined { .. } | Change::HandoverWithdrawn { .. } => {
                self.pending_handover = None
            }
            Change::Paused { reason } => {
                self.status = Status::Paused;
                self.pauses.push(Pause { from: e.at, until: None, reason: reason.clone(), by: e.by.clone() });
            }
            Change::Resumed => {
                self.status = Status::Open;
                if let Some(p) = self.pauses.last_mut() {
                    p.until = Some(e.at);
                }
            }
            Change::Compensated { credit_key, amount_minor, explanation, .. } => {
                self.compensations.push(Compensation {
                    credit_key: credit_key.clone(),
                    amount_minor: *amount_minor,
                    explanation: explanation.clone(),
                    done: done(),
                })
            }
            Change::Goodwill { amount_minor, note, .. } => {
                self.goodwill.push(Gesture { amount_minor: *amount_minor, note: note.clone(), done: done() })
            }
            Change::Fixed { .. } => {
                self.status = Status::Fixed;
                self.fixed = Some(done());
                self.first_fixed_at.get_or_insert(e.at);
            }
            Change::MemoryNote { kind, text } => {
                self.memory_notes.push(MemoryNote { kind: *kind, text: text.clone(), done: done() })
            }
            Change::FollowUp { gift } => self.follow_up = Some(FollowUp { gift: gift.clone(), at: e.at }),
            Change::Closed => {
                self.status = Status::Closed;
                self.closed = Some(done());
            }
            Change::Reopened { .. } => {
                self.status = Status::Open;
                self.fixed = None;
                self.closed = None;
                self.reopens += 1;
            }
            Change::Escalated { target, to } => {
                self.escalations.push(Escalation { target: *target, to: to.clone(), at: e.at })
            }
        }
    }

    pub fn customer_id(&self) -> &CustomerId {
        &self.customer_id
    }

    pub fn source(&self) -> &CaseSource {
        &self.source
    }

    pub fn fault(&self) -> Fault {
        self.fault
    }

    pub fn summary(&self) -> &str {
        &self.summary
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn opened(&self) -> &Done {
        &self.opened
    }

    pub fn first_contact_at(&self) -> Timestamp {
        self.first_contact_at
    }

    /// The one owner, an agent; changes only when a hand-over is accepted.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn pending_handover(&self) -> Option<&PendingHandover> {
        self.pending_handover.as_ref()
    }

    pub fn first_response(&self) -> Option<&Done> {
        self.first_response.as_ref()
    }

    /// The verified fix that stands (the latest): `None` while open, paused, or re-opened.
    pub fn fixed(&self) -> Option<&Done> {
        self.fixed.as_ref()
    }

    pub fn fixed_at(&self) -> Option<Timestamp> {
        self.fixed.as_ref().map(|d| d.at)
    }

    pub fn closed(&self) -> Option<&Done> {
        self.closed.as_ref()
    }

    /// How many times the case was re-opened.
    pub fn reopens(&self) -> u32 {
        self.reopens
    }

    pub fn pauses(&self) -> &[Pause] {
        &self.pauses
    }

    pub fn compensations(&self) -> &[Compensation] {
        &self.compensations
    }

    pub fn goodwill(&self) -> &[Gesture] {
        &self.goodwill
    }

    /// All goodwill given so far, in minor units of the case's currency.
    pub fn goodwill_total_minor(&self) -> i64 {
        self.goodwill.iter().fold(0i64, |sum, g| sum.saturating_add(g.amount_minor))
    }

    pub fn memory_notes(&self) -> &[MemoryNote] {
        &self.memory_notes
    }

    pub fn memory_note(&self, kind: MemoryKind) -> Option<&MemoryNote> {
        self.memory_notes.iter().find(|n| n.kind == kind)
    }

    pub fn follow_up(&self) -> Option<&FollowUp> {
        self.follow_up.as_ref()
    }

    pub fn escalations(&self) -> &[Escalation] {
        &self.escalations
    }

    pub fn escalation(&self, target: Target) -> Option<&Escalation> {
        self.escalations.iter().find(|e| e.target == target)
    }

    /// How many events the case holds: the sequence number its next event is stored at.
    pub fn version(&self) -> usize {
        self.version
    }

    /// When the latest event happened; no later event may be earlier.
    pub fn last_at(&self) -> Timestamp {
        self.last_at
    }

    /// Where the customer's time ends as of `now`: the fix that stands, or `now`.
    fn customer_end(&self, now: Timestamp) -> Timestamp {
        self.fixed_at().map_or(now, |fixed| fixed.min(now))
    }

    /// The customer's time as of `now`: from their first contact to the fix that stands, or
    /// to `now` while there is none. Pauses do not reduce it (the customer waited all the
    /// same), and a re-opened case continues from the first contact: the time between a fix
    /// and its re-opening counts, as the customer was never really fixed. Zero before the
    /// first contact; never decreases as `now` grows.
    pub fn customer_time(&self, now: Timestamp) -> SignedDuration {
        elapsed(self.first_contact_at, self.customer_end(now))
    }

    /// The time paused as of `now` (a running pause up to `now`), within the customer's time.
    pub fn paused_time(&self, now: Timestamp) -> SignedDuration {
        let end = self.customer_end(now);
        self.pauses.iter().fold(SignedDuration::ZERO, |sum, p| sum.saturating_add(p.length_before(end)))
    }

    /// The pause time that stops the target clock: at most `pause_total_max`. Beyond it a
    /// pause, even one still running, counts as the customer's time again.
    pub fn counted_pause(&self, now: Timestamp, rules: &CaseRules) -> SignedDuration {
        self.paused_time(now).min(rules.pause_total_max.max(SignedDuration::ZERO))
    }

    /// The time the targets are measured on: the customer's time less the counted pauses.
    /// Never negative, never more than [`Case::customer_time`].
    pub fn target_time(&self, now: Timestamp, rules: &CaseRules) -> SignedDuration {
        self.customer_time(now).saturating_sub(self.counted_pause(now, rules)).max(SignedDuration::ZERO)
    }

    fn target_of(target: Target, rules: &CaseRules) -> SignedDuration {
        match target {
            Target::FirstResponse => rules.first_response_target,
            Target::Resolution => rules.resolution_target,
        }
    }

    /// When `target` falls due as of `now`: the first contact plus the target, plus (for
    /// the resolution) the counted pauses, which move it later while a pause runs. A case
    /// is paused only after the first response, so pauses never move that deadline.
    pub fn deadline(&self, target: Target, now: Timestamp, rules: &CaseRules) -> Timestamp {
        let base = plus(self.first_contact_at, Self::target_of(target, rules));
        match target {
            Target::FirstResponse => base,
            Target::Resolution => plus(base, self.counted_pause(now, rules)),
        }
    }

    /// When `target` was met, if it stands met: the first response, or the first fix when
    /// it came before any response (a fix is the best answer); the fix that stands for the
    /// resolution (a re-opened case has not met it).
    pub fn met_at(&self, target: Target) -> Option<Timestamp> {
        match target {
            Target::FirstResponse => {
                match (self.first_response.as_ref().map(|d| d.at), self.first_fixed_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Target::Resolution => self.fixed_at(),
        }
    }

    /// Whether `target` was met within its target time (`None`: not met).
    pub fn met_within_target(&self, target: Target, rules: &CaseRules) -> Option<bool> {
        let at = self.met_at(target)?;
        Some(self.target_time(at, rules) <= Self::target_of(target, rules))
    }

    /// What is left of `target` as of `now`, negative once passed.
    pub fn remaining(&self, target: Target, now: Timestamp, rules: &CaseRules) -> SignedDuration {
        Self::target_of(target, rules).saturating_sub(self.target_time(now, rules))
    }
}
