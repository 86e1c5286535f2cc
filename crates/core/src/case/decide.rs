//! Operators' commands, checked into events, and amends' own steps as "what is due".

use super::event::{CaseEvent, Change};
use super::state::Case;
use super::{
    AMENDS, Actor, CaseError, CaseRules, CaseSource, EVENTS_MAX, EXPLANATION_BYTES_MAX,
    FIRST_CONTACT_LOOKBACK_DAYS_MAX, Fault, MEMORY_NOTE_BYTES_MAX, MemoryKind, NOTE_BYTES_MAX, Role, Status,
    Target, check_id, check_person, check_positive, check_text, plus,
};
use crate::id::CustomerId;
use crate::money::{Currency, Money};
use jiff::{SignedDuration, Timestamp};

/// What a person asks to be done to a case. Texts are trimmed before they are checked
/// and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The first response to the customer (the acknowledgement), once.
    Respond {
        message: String,
    },
    /// Offers the case to `to`, an agent the app resolved from an id; takes effect when
    /// they accept.
    OfferHandover {
        to: Actor,
        note: String,
    },
    /// By the agent offered the case; the note may be empty.
    AcceptHandover {
        note: String,
    },
    /// By the agent offered the case; the note says why.
    DeclineHandover {
        note: String,
    },
    /// Takes back an offer nobody answered, so the case is not stuck with it.
    WithdrawHandover {
        note: String,
    },
    /// Stops the target clock while waiting on something outside the owner's hands; needs
    /// a first response first (a case is not paused to dodge its acknowledgement).
    Pause {
        reason: String,
    },
    Resume,
    /// Records compensation the app already wrote to the ledger under `credit_key`.
    /// Recording the same key with the same amount again is a no-op (no events), so the
    /// app may retry after a crash between the ledger and the case; a different amount or
    /// currency under the same key is [`CaseError::CompensationConflict`]. Allowed in any
    /// status: the ledger holds it already, the case must not lose it.
    RecordCompensation {
        credit_key: String,
        amount_minor: i64,
        currency: Currency,
        explanation: String,
    },
    /// A goodwill gesture in the case's currency, within the actor's role limit.
    AddGoodwill {
        amount_minor: i64,
        note: String,
    },
    /// The verified fix. A paused case is resumed first, at the same instant (two events),
    /// so the log shows the pause ended.
    Fix {
        note: String,
    },
    /// An apology or thank-you note, once the fix is verified; once per kind.
    SendMemoryNote {
        kind: MemoryKind,
        text: String,
    },
    /// Only a fixed case, with no hand-over waiting.
    Close,
    /// A fixed or closed case, within `reopen_window` of its fix.
    Reopen {
        reason: String,
    },
}

/// What opening a case needs; see [`Case::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCase {
    pub customer_id: CustomerId,
    /// The first owner; must be an agent.
    pub owner: Actor,
    pub source: CaseSource,
    pub fault: Fault,
    pub summary: String,
    /// When the customer first got in touch (or was first affected); at most `now`, and at
    /// most [`FIRST_CONTACT_LOOKBACK_DAYS_MAX`] days before it.
    pub first_contact_at: Timestamp,
    pub currency: Currency,
}

/// The escalations due at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueEscalations {
    /// To append: one per target about to be missed, to the owner's lead.
    pub events: Vec<CaseEvent>,
    /// Targets about to be missed while the owner has no lead: nothing is recorded, so
    /// they are due again on the next run, and the app should raise them to its operators
    /// (a missing lead is a configuration problem, never a reason to stay silent).
    pub without_lead: Vec<Target>,
}

impl Case {
    /// The `opened` event of a new case, opened by `by` (a person's id, or [`AMENDS`] for
    /// a case amends opens itself, say for a customer still down after an incident).
    /// Replay it (`Case::replay(&[event])`) for the case.
    pub fn open(by: &str, request: &OpenCase, now: Timestamp) -> Result<CaseEvent, CaseError> {
        check_id("by", by)?;
        check_id("customer_id", &request.customer_id)?;
        check_person("owner", &request.owner.id)?;
        if request.owner.role != Role::Agent {
            return Err(CaseError::NotAnAgent {
                field: "owner",
                id: request.owner.id.clone(),
                role: request.owner.role,
            });
        }
        match &request.source {
            CaseSource::Incident { incident_id } => check_id("source.incident_id", incident_id)?,
            CaseSource::Appointment { appointment_id } => check_id("source.appointment_id", appointment_id)?,
            CaseSource::Contact | CaseSource::Manual => {}
        }
        let summary = check_text("summary", &request.summary, NOTE_BYTES_MAX, true)?;
        let first_contact_at = request.first_contact_at;
        if first_contact_at > now {
            return Err(CaseError::FirstContactAfterOpening { first_contact_at, at: now });
        }
        let lookback = SignedDuration::from_hours(24 * FIRST_CONTACT_LOOKBACK_DAYS_MAX);
        if first_contact_at < plus(now, -lookback) {
            return Err(CaseError::FirstContactTooEarly { first_contact_at, now });
        }
        Ok(CaseEvent::new(
            now,
            by,
            Change::Opened {
                customer_id: request.customer_id.clone(),
                owner: request.owner.id.clone(),
                source: request.source.clone(),
                fault: request.fault,
                summary,
                first_contact_at,
                currency: request.currency,
            },
        ))
    }

    /// Whether `actor` may act on the case: its owner, or any lead or admin.
    pub fn may_act(&self, actor: &Actor) -> bool {
        actor.id == self.owner || matches!(actor.role, Role::Lead | Role::Admin)
    }

    /// Checks `command` by `actor` at `now` under `rules` and returns the events to append,
    /// all at `now` and by the actor. Nothing is changed: on error there is nothing to
    /// append. Only the owner, a lead or an admin may act, except that only the agent a
    /// hand-over was offered to may accept or decline it.
    ///
    /// `rules` are trusted to have passed [`CaseRules::check`] (at load).
    pub fn decide(
        &self,
        actor: &Actor,
        command: Command,
        now: Timestamp,
        rules: &CaseRules,
    ) -> Result<Vec<CaseEvent>, CaseError> {
        check_person("actor", &actor.id)?;
        if now < self.last_at {
            return Err(CaseError::ClockBehind { now, last: self.last_at });
        }
        let answers_handover =
            matches!(command, Command::AcceptHandover { .. } | Command::DeclineHandover { .. });
        if !answers_handover && !self.may_act(actor) {
            return Err(CaseError::NotOwner { actor: actor.id.clone(), owner: self.owner.clone() });
        }
        let changes = self.changes(actor, command, now, rules)?;
        self.events(&actor.id, now, changes)
    }

    /// Compensation recorded by amends itself, when the app applies the policy engine's
    /// proposal without a person: the same checks and the same no-op on a retry as
    /// [`Command::RecordCompensation`], by [`AMENDS`] at `now`.
    pub fn compensation_by_amends(
        &self,
        now: Timestamp,
        credit_key: &str,
        amount_minor: i64,
        currency: Currency,
        explanation: &str,
    ) -> Result<Vec<CaseEvent>, CaseError> {
        if now < self.last_at {
            return Err(CaseError::ClockBehind { now, last: self.last_at });
        }
        let changes = self.compensation(AMENDS, credit_key, amount_minor, currency, explanation)?;
        self.events(AMENDS, now, changes)
    }

    /// `changes` as events by `by` at `now`, once the fold has accepted them all: the fold
    /// has the last word, so nothing decided here is refused on replay.
    fn events(&self, by: &str, now: Timestamp, changes: Vec<Change>) -> Result<Vec<CaseEvent>, CaseError> {
        if self.version + changes.len() > EVENTS_MAX {
            return Err(CaseError::TooManyEvents);
        }
        let events: Vec<CaseEvent> =
            changes.into_iter().map(|change| CaseEvent::new(now, by, change)).collect();
        let mut next = self.clone();
        for e in &events {
            next.apply(e)?;
        }
        Ok(events)
    }

    /// The compensation under `credit_key`: nothing if it is recorded already with the same
    /// amount and currency, [`CaseError::CompensationConflict`] if with another.
    fn compensation(
        &self,
        by: &str,
        credit_key: &str,
        amount_minor: i64,
        currency: Currency,
        explanation: &str,
    ) -> Result<Vec<Change>, CaseError> {
        check_id("credit_key", credit_key)?;
        check_positive("amount_minor", amount_minor)?;
        let explanation = check_text("explanation", explanation, EXPLANATION_BYTES_MAX, true)?;
        let recorded = self.compensations.iter().find(|c| c.credit_key == credit_key);
        if recorded.is_some_and(|c| c.amount_minor == amount_minor && currency == self.currency) {
            return Ok(Vec::new());
        }
        let change =
            Change::Compensated { credit_key: credit_key.to_string(), amount_minor, currency, explanation };
        self.check(by, &change)?;
        Ok(vec![change])
    }

    /// The changes `command` makes: the state first (so a closed case says so before a
    /// note is found too long), then the input, then the rules.
    fn changes(
        &self,
        actor: &Actor,
        command: Command,
        now: Timestamp,
        rules: &CaseRules,
    ) -> Result<Vec<Change>, CaseError> {
        let t = |text: &str| text.trim().to_string();
        let allowed = |change: &Change| self.check(&actor.id, change);
        let note = |field, text: &str| check_text(field, text, NOTE_BYTES_MAX, true).map(drop);
        let change = match command {
            Command::Respond { message } => {
                let change = Change::FirstResponse { message: t(&message) };
                allowed(&change)?;
                note("message", &message)?;
                change
            }
            Command::OfferHandover { to, note: text } => {
                let change = Change::HandoverOffered { to: to.id.clone(), note: t(&text) };
                allowed(&change)?;
                check_person("to", &to.id)?;
                if to.role != Role::Agent {
                    return Err(CaseError::NotAnAgent { field: "to", id: to.id, role: to.role });
                }
                note("note", &text)?;
                change
            }
            Command::AcceptHandover { note: text } => {
                let change = Change::HandoverAccepted { note: t(&text) };
                allowed(&change)?;
                check_text("note", &text, NOTE_BYTES_MAX, false)?;
                change
            }
            Command::DeclineHandover { note: text } => {
                let change = Change::HandoverDeclined { note: t(&text) };
                allowed(&change)?;
                note("note", &text)?;
                change
            }
            Command::WithdrawHandover { note: text } => {
                let change = Change::HandoverWithdrawn { note: t(&text) };
                allowed(&change)?;
                note("note", &text)?;
                change
            }
            Command::Pause { reason } => {
                let change = Change::Paused { reason: t(&reason) };
                allowed(&change)?;
                note("reason", &reason)?;
                let used = self.paused_time(now);
                if used >= rules.pause_total_max {
                    return Err(CaseError::PauseLimitReached { used, max: rules.pause_total_max });
                }
                change
            }
            Command::Resume => {
                allowed(&Change::Resumed)?;
                Change::Resumed
            }
            Command::RecordCompensation { credit_key, amount_minor, currency, explanation } => {
                return self.compensation(&actor.id, &credit_key, amount_minor, currency, &explanation);
            }
            Command::AddGoodwill { amount_minor, note: text } => {
                let change = Change::Goodwill { amount_minor, currency: self.currency, note: t(&text) };
                allowed(&change)?;
                note("note", &text)?;
                let limit = rules.goodwill.limit_minor(actor.role);
                let already = self.goodwill_total_minor();
                if already.checked_add(amount_minor).is_none_or(|total| total > limit) {
                    let money = |minor| Money::new(minor, self.currency);
                    return Err(CaseError::GoodwillAboveLimit {
                        role: actor.role,
                        limit: money(limit),
                        asked: money(amount_minor),
                        already: money(already),
                    });
                }
                change
            }
            Command::Fix { note: text } => {
                let change = Change::Fixed { note: t(&text) };
                if self.status == Status::Paused {
                    note("note", &text)?;
                    return Ok(vec![Change::Resumed, change]);
                }
                allowed(&change)?;
                note("note", &text)?;
                change
            }
            Command::SendMemoryNote { kind, text } => {
                let change = Change::MemoryNote { kind, text: t(&text) };
                allowed(&change)?;
                check_text("text", &text, MEMORY_NOTE_BYTES_MAX, true)?;
                change
            }
            Command::Close => {
                allowed(&Change::Closed)?;
                Change::Closed
            }
            Command::Reopen { reason } => {
                let change = Change::Reopened { reason: t(&reason) };
                allowed(&change)?;
                note("reason", &reason)?;
                if let Some(fixed_at) = self.fixed_at()
                    && now > plus(fixed_at, rules.reopen_window)
                {
                    return Err(CaseError::ReopenWindowPassed { fixed_at, window: rules.reopen_window, now });
                }
                change
            }
        };
        Ok(vec![change])
    }

    /// The escalations due at `now`: for each target not met, not escalated yet, with at
    /// most `escalate_before` left, an `escalated` event by [`AMENDS`] to `lead_of_owner`
    /// (the app looks up the owner's lead). Never to the customer. Once per target and
    /// case: after the events are appended, this returns nothing for them again. Nothing
    /// for a closed case, or when `now` is before the case's last event (the next run
    /// catches up).
    pub fn due_escalations(
        &self,
        now: Timestamp,
        rules: &CaseRules,
        lead_of_owner: Option<&str>,
    ) -> DueEscalations {
        let mut due = DueEscalations::default();
        if self.status == Status::Closed || now < self.last_at {
            return due;
        }
        let lead = lead_of_owner.filter(|lead| check_person("lead", lead).is_ok());
        for &target in Target::ALL {
            if self.met_at(target).is_some() || self.escalation(target).is_some() {
                continue;
            }
            if self.remaining(target, now, rules) > rules.escalate_before {
                continue;
            }
            match lead {
                Some(lead) => due.events.push(CaseEvent::new(
                    now,
                    AMENDS,
                    Change::Escalated { target, to: lead.to_string() },
                )),
                None => due.without_lead.push(target),
            }
        }
        due
    }

    /// When the follow-up fell due, if it is due at `now` and not sent: `follow_up_after`
    /// the fix that stands. Once per case: not again after it was sent (even if the case
    /// was re-opened and fixed again), and not while a re-opened case is unfixed.
    pub fn due_follow_up(&self, now: Timestamp, rules: &CaseRules) -> Option<Timestamp> {
        if self.follow_up.is_some() || now < self.last_at {
            return None;
        }
        let due = plus(self.fixed_at()?, rules.follow_up_after);
        (due <= now).then_some(due)
    }

    /// The follow-up event, by [`AMENDS`] at `now`, with the gift or offer the app chose
    /// (`None`: none). Refused unless [`Case::due_follow_up`] says it is due.
    pub fn follow_up_event(
        &self,
        now: Timestamp,
        rules: &CaseRules,
        gift: Option<&str>,
    ) -> Result<CaseEvent, CaseError> {
        if now < self.last_at {
            return Err(CaseError::ClockBehind { now, last: self.last_at });
        }
        let change = Change::FollowUp { gift: None };
        self.check(AMENDS, &change)?;
        if let Some(fixed_at) = self.fixed_at() {
            let due_at = plus(fixed_at, rules.follow_up_after);
            if due_at > now {
                return Err(CaseError::FollowUpNotDue { due_at });
            }
        }
        let gift = gift.map(|g| check_text("gift", g, NOTE_BYTES_MAX, true)).transpose()?;
        if self.version >= EVENTS_MAX {
            return Err(CaseError::TooManyEvents);
        }
        Ok(CaseEvent::new(now, AMENDS, Change::FollowUp { gift }))
    }
}
