//! Compensation policies: a declarative language, and its evaluation.
//!
//! A policy is a TOML file (the language is documented in `docs/policies.md`). It is read
//! and checked once ([`Policy::from_toml`]: every problem names the file, line and column),
//! then evaluated by a pure function, [`evaluate`]: policy plus [`Facts`] (one customer
//! and their events) gives [`Line`]s, each with the rule, the events it covers, the exact
//! amount rounded once, whether it is paid automatically, and its arithmetic in words.
//!
//! - [`amount`]: exact ratios and the amounts a policy can state.
//! - [`calendar`]: weekends and holidays per jurisdiction, working days.
//! - [`expr`]: conditions in CEL, bounded so that no policy can run away.
//! - [`facts`]: the facts format, and its checks.
//! - [`model`]: the language itself and its checks.
//! - [`eval`]: episodes, rules, lines, caps.
//! - [`assign`]: which policies apply to which customers.

pub mod amount;
pub mod assign;
pub mod calendar;
pub mod eval;
pub mod expr;
pub mod facts;
pub mod model;

pub use assign::{Assignment, PolicySet};
pub use eval::{Basis, Evaluation, Line, ProratedBasis, describe_interval, evaluate};
pub use facts::{
    Attribute, Attributes, CustomerFacts, Event, EventKind, Facts, FactsError, PricePoint,
    attributes_from_json,
};
pub use model::{Policy, PolicyError};

/// The built-in default policy: the very file shipped as `policies/prorated.toml`.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../policies/prorated.toml");

impl Policy {
    pub fn builtin() -> Policy {
        Policy::from_toml("policies/prorated.toml", DEFAULT_POLICY_TOML).expect("the built-in policy parses")
    }
}

#[cfg(test)]
mod tests;
