//! The playbook view: the five steps of a recovery, what is done and what is due.

use super::state::{Case, Done};
use super::{AMENDS, CaseRules, Status, Target, elapsed, plus};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::fmt;

/// The five steps of a recovery, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A first response with empathy, within the first-response target.
    Acknowledge,
    /// One owner fixes it, verified, within the resolution target.
    OwnAndFix,
    /// Compensation and goodwill.
    Lessen,
    /// An apology or thank-you note after the fix.
    Memory,
    /// The follow-up after the fix, with an optional gift.
    Extend,
}

names!(Step {
    Acknowledge => "acknowledge",
    OwnAndFix => "own_and_fix",
    Lessen => "lessen",
    Memory => "memory",
    Extend => "extend",
});

/// What a step still needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    /// The deadline (acknowledge, own and fix), or when amends sends it (extend); `None`:
    /// no deadline.
    pub at: Option<Timestamp>,
    /// Whether `at` has passed.
    pub passed: bool,
    /// Whether amends does it rather than a person.
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaybookStep {
    pub step: Step,
    /// Who did it and when: the first response, the fix that stands, the first
    /// compensation or goodwill, the first memory note, the follow-up.
    pub done: Option<Done>,
    /// For acknowledge and own and fix once done: whether within the target.
    pub within_target: Option<bool>,
    /// What it still needs, if anything now or later.
    pub due: Option<Due>,
}

/// A case's playbook as of one instant, as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Playbook {
    pub status: Status,
    pub owner: String,
    /// The five steps, in order.
    pub steps: Vec<PlaybookStep>,
    /// The first step a person has to do now: what the owner does next.
    pub next: Option<Step>,
    pub customer_time: SignedDuration,
    pub target_time: SignedDuration,
}

impl Case {
    /// The playbook as of `now`.
    pub fn playbook(&self, now: Timestamp, rules: &CaseRules) -> Playbook {
        let open = self.status != Status::Closed;
        let by_person =
            |at: Option<Timestamp>| Due { at, passed: at.is_some_and(|at| at <= now), automatic: false };
        let acknowledge = PlaybookStep {
            step: Step::Acknowledge,
            done: self.first_response.clone(),
            within_target: self
                .first_response
                .as_ref()
                .map(|d| elapsed(self.first_contact_at, d.at) <= rules.first_response_target),
            due: (open && self.met_at(Target::FirstResponse).is_none())
                .then(|| by_person(Some(self.deadline(Target::FirstResponse, now, rules)))),
        };
        let own_and_fix = PlaybookStep {
            step: Step::OwnAndFix,
            done: self.fixed.clone(),
            within_target: self.met_within_target(Target::Resolution, rules),
            due: (open && self.fixed.is_none())
                .then(|| by_person(Some(self.deadline(Target::Resolution, now, rules)))),
        };
        let compensated = self.compensations.first().map(|c| &c.done);
        let gave = self.goodwill.first().map(|g| &g.done);
        let lessened = match (compensated, gave) {
            (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
            (a, b) => a.or(b),
        };
        let lessen = PlaybookStep {
            step: Step::Lessen,
            done: lessened.cloned(),
            within_target: None,
            due: (open && lessened.is_none()).then(|| by_person(None)),
        };
        let memory = PlaybookStep {
            step: Step::Memory,
            done: self.memory_notes.first().map(|n| n.done.clone()),
            within_target: None,
            due: (self.memory_notes.is_empty() && self.fixed.is_some()).then(|| by_person(None)),
        };
        let extend = PlaybookStep {
            step: Step::Extend,
            done: self.follow_up.as_ref().map(|f| Done { at: f.at, by: AMENDS.to_string() }),
            within_target: None,
            due: match (&self.follow_up, self.fixed_at()) {
                (None, Some(fixed_at)) => {
                    let at = plus(fixed_at, rules.follow_up_after);
                    Some(Due { at: Some(at), passed: at <= now, automatic: true })
                }
                _ => None,
            },
        };
        let steps = vec![acknowledge, own_and_fix, lessen, memory, extend];
        let next = steps.iter().find(|s| s.due.as_ref().is_some_and(|d| !d.automatic)).map(|s| s.step);
        Playbook {
            status: self.status,
            owner: self.owner.clone(),
            steps,
            next,
            customer_time: self.customer_time(now),
            target_time: self.target_time(now, rules),
        }
    }
}
