//! The domain core of amends: pure functions over plain data.
//!
//! Nothing in this crate does I/O: no SQL, no HTTP, no files, no clock. Callers pass the
//! current instant in. That keeps every rule here easy to test and to reason about, and
//! lets the same code run in the server, the CLI, the demo and the benchmark.
//!
//! - [`money`]: currencies, integer minor units, exact rounding.
//! - [`interval`]: half-open time intervals, union and subtraction.
//! - [`topology`]: the element tree, "at or below" as a pre-order range check.
//! - [`id`]: typed ids (customer, incident, case), each the text it is stored as.
//! - [`book`]: plans, elements and customers, parsed once and trusted after.
//! - [`impact`]: who an incident affects.
//! - [`cycle`]: billing cycles in the customer's time zone.
//! - [`policy`]: compensation policies and their evaluation into explained credit lines.
//! - [`credit_words`]: the customer's version of a credit's explanation, in their language.
//! - [`incident`]: incident states, validation of operator input, the ETR watchdog rule.
//! - [`notice`]: notice kinds, deterministic keys, templates and rendering.
//! - [`preferences`]: which channels a customer wants for which notices, and quiet hours.
//! - [`sms`]: SMS encodings and segment counting.
//! - [`telemetry`]: outage detection from device events, per-device downtime.
//! - [`case`]: individual recovery cases: one owner, the five-step playbook, the
//!   customer's clocks, escalation and follow-up, as an event log and its checks.
//! - [`appointment`]: booked visits, no-shows and late cancellations, rebooking offers,
//!   and the `.ics` file of a confirmation.
//! - [`survey`]: who is surveyed (sampled by the system, never by the person rated), scores,
//!   and the report that keeps incident-caused cases apart from an agent's own.

pub mod appointment;
pub mod book;
pub mod cancellation;
pub mod case;
pub mod cldr;
pub mod credit_words;
pub mod cycle;
pub mod field;
pub mod id;
pub mod impact;
pub mod incident;
pub mod interval;
pub mod locale;
pub mod marginal;
pub mod money;
pub mod notice;
pub mod policy;
pub mod preferences;
pub mod reference;
pub mod sms;
pub mod survey;
pub mod telemetry;
pub mod text;
pub mod topology;
