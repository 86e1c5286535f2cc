//! The events a case is made of: what happened, when, and who did it.

use super::{CaseSource, Fault, MemoryKind, Target, currency_code};
use crate::id::CustomerId;
use crate::money::Currency;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One thing that happened to a case. Every event carries when it happened and who did it
/// (a person's id, or [`super::AMENDS`] for an automatic step). In JSON the change's fields
/// sit beside `at` and `by`, tagged by `type`:
/// `{"at":"2026-11-23T12:00:00Z","by":"agent-3","type":"paused","reason":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    pub at: Timestamp,
    pub by: String,
    #[serde(flatten)]
    pub change: Change,
}

/// What an event changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    Opened {
        customer_id: CustomerId,
        /// The first owner, an agent.
        owner: String,
        source: CaseSource,
        fault: Fault,
        summary: String,
        /// When the customer first got in touch (or was first affected): their time starts
        /// here, which may be before the case was opened.
        first_contact_at: Timestamp,
        /// The customer's currency: compensation and goodwill are in it.
        #[serde(with = "currency_code")]
        currency: Currency,
    },
    /// The acknowledgement: the first response to the customer.
    FirstResponse {
        message: String,
    },
    HandoverOffered {
        to: String,
        note: String,
    },
    /// By the new owner, who owns the case from this event on.
    HandoverAccepted {
        note: String,
    },
    /// By the agent it was offered to; the owner keeps the case.
    HandoverDeclined {
        note: String,
    },
    /// By the owner (or a lead or an admin): the offer no longer stands.
    HandoverWithdrawn {
        note: String,
    },
    Paused {
        reason: String,
    },
    Resumed,
    /// Compensation the policy engine proposed from the case's facts, written to the credit
    /// ledger by the app under `credit_key` before this event is appended.
    Compensated {
        credit_key: String,
        amount_minor: i64,
        #[serde(with = "currency_code")]
        currency: Currency,
        explanation: String,
    },
    /// A gesture the owner (or a lead or an admin) added within their role's limit.
    Goodwill {
        amount_minor: i64,
        #[serde(with = "currency_code")]
        currency: Currency,
        note: String,
    },
    /// The verified fix: stops the customer's clock.
    Fixed {
        note: String,
    },
    MemoryNote {
        kind: MemoryKind,
        text: String,
    },
    /// By amends, once, `follow_up_after` the fix.
    FollowUp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gift: Option<String>,
    },
    Closed,
    Reopened {
        reason: String,
    },
    /// By amends, to the owner's lead, once per target.
    Escalated {
        target: Target,
        to: String,
    },
}

impl Change {
    /// Who records this change: amends alone (escalations, follow-ups), people alone
    /// (everything else), or either (opening a case, recording compensation).
    pub(super) fn recorded_by(&self) -> RecordedBy {
        match self {
            Change::Escalated { .. } | Change::FollowUp { .. } => RecordedBy::Amends,
            Change::Opened { .. } | Change::Compensated { .. } => RecordedBy::Either,
            _ => RecordedBy::People,
        }
    }

    /// The `type` tag, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Opened { .. } => "opened",
            Change::FirstResponse { .. } => "first_response",
            Change::HandoverOffered { .. } => "handover_offered",
            Change::HandoverAccepted { .. } => "handover_accepted",
            Change::HandoverDeclined { .. } => "handover_declined",
            Change::HandoverWithdrawn { .. } => "handover_withdrawn",
            Change::Paused { .. } => "paused",
            Change::Resumed => "resumed",
            Change::Compensated { .. } => "compensated",
            Change::Goodwill { .. } => "goodwill",
            Change::Fixed { .. } => "fixed",
            Change::MemoryNote { .. } => "memory_note",
            Change::FollowUp { .. } => "follow_up",
            Change::Closed => "closed",
            Change::Reopened { .. } => "reopened",
            Change::Escalated { .. } => "escalated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordedBy {
    Amends,
    People,
    Either,
}

impl CaseEvent {
    pub fn new(at: Timestamp, by: impl Into<String>, change: Change) -> Self {
        CaseEvent { at, by: by.into(), change }
    }

    /// A key unique within the case for the events of automatic steps
    /// (`escalated:first_response`, `follow_up`), which happen at most once per case; the
    /// app may store it under a unique constraint as a second guard against a repeat.
    /// `None` for the events of people.
    pub fn trigger_key(&self) -> Option<String> {
        match &self.change {
            Change::Escalated { target, .. } => Some(format!("escalated:{target}")),
            Change::FollowUp { .. } => Some("follow_up".to_string()),
            _ => None,
        }
    }
}
