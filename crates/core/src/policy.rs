//! Compensation policies and their evaluation.
//!
//! A policy is read from TOML and evaluated by a pure function: policy plus facts gives
//! credit lines, each with the amount and the arithmetic in plain words. The built-in
//! default prorates the monthly price by the outage's elapsed time over the length of the
//! billing cycle it falls in, one line per cycle, rounded once per line.

use crate::cycle::{cycle_containing, split_by_cycle};
use crate::interval::{Interval, subtract};
use crate::money::{Money, Rounding, format_minor, format_quotient, group_thousands};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// The built-in default policy: the very file shipped as `policies/prorated.toml`.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../policies/prorated.toml");

/// Bounds that keep a typo in a policy file from paying out a fortune.
pub const MIN_DURATION_MINUTES_MAX: u32 = 60 * 24 * 31;
pub const GOODWILL_BONUS_MINOR_MAX: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {file}: {message}")]
    Parse { file: String, message: String },
    #[error("policy {file}: {field} {problem}")]
    Invalid { file: String, field: &'static str, problem: String },
    #[error("billing cycle arithmetic failed for {0}: {1}")]
    Calendar(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    Prorated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub version: u32,
    pub kind: PolicyKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub min_duration_minutes: u32,
    #[serde(default)]
    pub goodwill_bonus_minor: i64,
    #[serde(default)]
    pub rounding: Rounding,
}

impl Policy {
    /// Parses and checks a policy; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)
            .map_err(|e| PolicyError::Parse { file: file.to_string(), message: e.to_string() })?;
        let invalid = |field, problem: &str| PolicyError::Invalid {
            file: file.to_string(),
            field,
            problem: problem.into(),
        };
        if policy.id.is_empty() || policy.id.contains('/') {
            return Err(invalid("id", "must be non-empty and contain no '/'"));
        }
        if policy.version == 0 {
            return Err(invalid("version", "must be 1 or more"));
        }
        if policy.min_duration_minutes > MIN_DURATION_MINUTES_MAX {
            return Err(invalid("min_duration_minutes", "is more than 31 days"));
        }
        if !(0..=GOODWILL_BONUS_MINOR_MAX).contains(&policy.goodwill_bonus_minor) {
            return Err(invalid("goodwill_bonus_minor", "must be between 0 and 1000000"));
        }
        Ok(policy)
    }

    pub fn builtin() -> Policy {
        Policy::from_toml("builtin prorated", DEFAULT_POLICY_TOML).expect("the built-in policy parses")
    }
}

/// What the policy needs to know about one customer and one event.
#[derive(Debug, Clone)]
pub struct CreditFacts<'a> {
    pub monthly_price: Money,
    pub billing_day: u8,
    pub zone_name: &'a str,
    pub zone: &'a TimeZone,
    pub active_since: Timestamp,
    /// The event's outage for this customer.
    pub outage: Interval,
    /// Outage time already credited by earlier events: counted once, so left out here.
    pub already_credited: &'a [Interval],
    /// When the credit is issued: it lands on the statement of the cycle holding this.
    pub issued_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditLine {
    /// `prorated` or `goodwill`.
    pub rule: String,
    pub cycle_start: Option<Date>,
    pub seconds: i64,
    pub cycle_seconds: i64,
    pub amount_minor: i64,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub lines: Vec<CreditLine>,
    pub total_minor: i64,
    pub currency: String,
    /// The statement the credit lands on: the one issued at the end of the billing cycle
    /// holding `issued_at` (the customer's next bill), named by its date.
    pub statement: Date,
    /// All lines' explanations and the total, in plain words.
    pub explanation: String,
}

/// Evaluates `policy` for one customer and one event. Pure and deterministic.
pub fn evaluate(policy: &Policy, facts: &CreditFacts<'_>) -> Result<Evaluation, PolicyError> {
    let calendar = |e: jiff::Error| PolicyError::Calendar(facts.zone_name.to_string(), e.to_string());
    let statement =
        cycle_containing(facts.issued_at, facts.billing_day, facts.zone).map_err(calendar)?.end_date;
    let lines = credit_lines(policy, facts).map_err(calendar)?;
    let total_minor = lines.iter().map(|l| l.amount_minor).sum();
    let total = Money::new(total_minor, facts.monthly_price.currency);
    let mut explanation: Vec<String> = lines.iter().map(|l| l.explanation.clone()).collect();
    if lines.is_empty() {
        explanation.push(no_credit_reason(policy, facts));
    } else {
        explanation.push(format!("Total {total}, on the statement of {statement}."));
    }
    Ok(Evaluation {
        lines,
        total_minor,
        currency: facts.monthly_price.currency.code().to_string(),
        statement,
        explanation: explanation.join(" "),
    })
}

/// The customer's own outage: only time they were a customer counts.
fn customer_outage(facts: &CreditFacts<'_>) -> Option<Interval> {
    Interval::new(facts.outage.start().max(facts.active_since), facts.outage.end())
}

fn credit_lines(policy: &Policy, facts: &CreditFacts<'_>) -> Result<Vec<CreditLine>, jiff::Error> {
    let Some(outage) = customer_outage(facts) else { return Ok(Vec::new()) };
    if outage.seconds() < i64::from(policy.min_duration_minutes) * 60 {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for piece in subtract(outage, facts.already_credited) {
        for (cycle, part) in split_by_cycle(piece, facts.billing_day, facts.zone)? {
            lines.push(prorated_line(policy, facts, cycle.start_date, cycle.seconds(), part));
        }
    }
    merge_same_cycle(&mut lines, policy, facts);
    if !lines.is_empty() && policy.goodwill_bonus_minor > 0 {
        let bonus = Money::new(policy.goodwill_bonus_minor, facts.monthly_price.currency);
        lines.push(CreditLine {
            rule: "goodwill".into(),
            cycle_start: None,
            seconds: 0,
            cycle_seconds: 0,
            amount_minor: policy.goodwill_bonus_minor,
            explanation: format!("Goodwill bonus: {bonus}."),
        });
    }
    Ok(lines)
}

/// Pieces of one outage split by an earlier, overlapping event can fall in the same cycle;
/// they make one line, rounded once.
fn merge_same_cycle(lines: &mut Vec<CreditLine>, policy: &Policy, facts: &CreditFacts<'_>) {
    let mut merged: Vec<CreditLine> = Vec::with_capacity(lines.len());
    for line in lines.drain(..) {
        match merged.last_mut() {
            Some(last) if last.cycle_start == line.cycle_start => {
                let seconds = last.seconds + line.seconds;
                *last = prorated_amount(
                    policy,
                    facts,
                    last.cycle_start,
                    seconds,
                    last.cycle_seconds,
                    "Outage time",
                );
            }
            _ => merged.push(line),
        }
    }
    *lines = merged;
}

fn prorated_line(
    policy: &Policy,
    facts: &CreditFacts<'_>,
    cycle_start: Date,
    cycle_seconds: i64,
    part: Interval,
) -> CreditLine {
    let what = format!("Outage {}", describe_interval(part, facts.zone));
    prorated_amount(policy, facts, Some(cycle_start), part.seconds(), cycle_seconds, &what)
}

fn prorated_amount(
    policy: &Policy,
    facts: &CreditFacts<'_>,
    cycle_start: Option<Date>,
    seconds: i64,
    cycle_seconds: i64,
    what: &str,
) -> CreditLine {
    let price = facts.monthly_price;
    let numerator = i128::from(price.minor) * i128::from(seconds);
    let amount = policy.rounding.divide(numerator, i128::from(cycle_seconds));
    let amount_minor = i64::try_from(amount).unwrap_or(i64::MAX);
    let exponent = price.currency.exponent();
    let (used, total, unit) = span_pair(seconds, cycle_seconds);
    let cycle = cycle_start.map(|d| format!(" starting {d}")).unwrap_or_default();
    let explanation = format!(
        "{what}, {used} {unit} of the {total}-{unit} billing cycle{cycle}; {} x {used} / {total} = {}, {} to {}.",
        price,
        format_quotient(numerator, i128::from(cycle_seconds), exponent, 4),
        policy.rounding.describe(),
        Money::new(amount_minor, price.currency),
    );
    CreditLine { rule: "prorated".into(), cycle_start, seconds, cycle_seconds, amount_minor, explanation }
}

/// Shows both durations in minutes when both are whole minutes, else in seconds.
fn span_pair(seconds: i64, cycle_seconds: i64) -> (String, String, &'static str) {
    let fmt = |n: i64| group_thousands(n.unsigned_abs());
    if seconds % 60 == 0 && cycle_seconds % 60 == 0 {
        (fmt(seconds / 60), fmt(cycle_seconds / 60), "min")
    } else {
        (fmt(seconds), fmt(cycle_seconds), "s")
    }
}

/// `2026-11-23 10:00-19:00 UTC`, or with both dates when it spans days.
pub fn describe_interval(interval: Interval, _zone: &TimeZone) -> String {
    let start = interval.start().to_zoned(TimeZone::UTC);
    let end = interval.end().to_zoned(TimeZone::UTC);
    if start.date() == end.date() {
        format!("{} {}-{} UTC", start.date(), start.strftime("%H:%M"), end.strftime("%H:%M"))
    } else {
        format!(
            "{} {} UTC to {} {} UTC",
            start.date(),
            start.strftime("%H:%M"),
            end.date(),
            end.strftime("%H:%M")
        )
    }
}

fn no_credit_reason(policy: &Policy, facts: &CreditFacts<'_>) -> String {
    match customer_outage(facts) {
        None => "No credit: the outage ended before the customer's service began.".into(),
        Some(o) if o.seconds() < i64::from(policy.min_duration_minutes) * 60 => format!(
            "No credit: the outage lasted {} min, under the policy's {}-min threshold.",
            format_minor(o.seconds() / 60, 0),
            policy.min_duration_minutes
        ),
        Some(_) => {
            "No credit: this outage time was already credited for an earlier, overlapping incident.".into()
        }
    }
}

#[cfg(test)]
mod tests;
