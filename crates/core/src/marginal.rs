//! The marginal credit: what one event adds to what a policy owes a customer.
//!
//! Overlapping outages count once per customer. An event's credit is the policy evaluated
//! over the customer's earlier events plus this one, less the same policy over the earlier
//! ones alone (never below zero). Credited in order, a customer's credits add up to what
//! the policy owes for all their events together, whatever order or how often the step
//! runs: `tests` checks it over generated outages.

use crate::credit_words::CreditedLine;
use crate::money::Money;
use crate::policy::facts::{CustomerFacts, Event, Facts};
use crate::policy::{Evaluation, Policy, PolicyError, evaluate};
use jiff::civil::Date;

/// One customer's credit under one policy, with everything the ledger row and the notice
/// need already rendered: shared by every customer it fits.
#[derive(Debug)]
pub struct PricedCredit {
    pub amount_minor: i64,
    pub currency: String,
    /// The statement the credit lands on: the one closing the billing cycle that holds the
    /// resolution (the customer's next bill), named by its date.
    pub statement: Date,
    /// The auditor's explanation: exact, in UTC, the policy's own words (the ledger's).
    pub explanation: String,
    pub lines_json: String,
    /// The lines of this event, as the customer's explanation is written from them.
    pub lines: Vec<CreditedLine>,
    /// Lines payable only on request, reported but not credited.
    pub on_request_minor: i64,
    /// The auditor's explanation of those lines, exact and in UTC like `explanation`.
    pub on_request_explanation: String,
    /// Those lines as JSON, as `lines_json` holds the credited ones.
    pub on_request_lines_json: String,
}

/// The marginal credit of the event `this_id` (its facts `this`) for `customer`: the
/// policy over `earlier` and `this`, less the policy over `earlier` alone.
pub fn marginal(
    policy: &Policy,
    customer: CustomerFacts,
    earlier: Vec<Event>,
    this: Vec<Event>,
    this_id: &str,
    statement: Date,
) -> Result<PricedCredit, PolicyError> {
    let before = if earlier.is_empty() {
        None
    } else {
        Some(evaluate(policy, &Facts { customer: customer.clone(), events: earlier.clone() })?)
    };
    let mut events = earlier;
    events.extend(this);
    let after = evaluate(policy, &Facts { customer, events })?;
    Ok(price(this_id, after, before.as_ref(), statement))
}

/// The credit of `this` from the evaluations `after` (with it) and `before` (without),
/// with the auditor's explanation of its own lines and of what earlier credits paid.
pub fn price(this: &str, after: Evaluation, before: Option<&Evaluation>, statement: Date) -> PricedCredit {
    let already = before.map_or(0, |b| b.total_minor);
    let amount_minor = (after.total_minor - already).max(0);
    let mine: Vec<_> = after.lines.iter().filter(|l| l.events.iter().any(|e| &**e == this)).collect();
    let show = |minor: i64| Money::new(minor, after.currency).to_string();
    let mut words: Vec<String> = mine.iter().filter(|l| l.automatic).map(|l| l.explanation()).collect();
    // What earlier credits already paid for the same lines (same rule, same cycle or
    // episode), so the words add up: these lines, less that, is this credit.
    let related: i64 = before.map_or(0, |b| {
        b.lines
            .iter()
            .filter(|l| {
                l.automatic && mine.iter().any(|m| m.rule_index == l.rule_index && m.anchor == l.anchor)
            })
            .map(|l| l.amount_minor)
            .sum()
    });
    if related > 0 && !words.is_empty() {
        words.push(format!("Less {} already credited for earlier overlapping outages.", show(related)));
    }
    let lines_total: i64 = mine.iter().filter(|l| l.automatic).map(|l| l.amount_minor).sum();
    if lines_total - related != amount_minor {
        words.push(format!("The policy's caps over earlier outages leave {}.", show(amount_minor)));
    }
    if amount_minor > 0 {
        words.push(format!("Total {}, on the statement of {statement}.", show(amount_minor)));
    } else if words.is_empty() {
        words.extend(after.notes.iter().cloned());
        if words.is_empty() {
            words.push("No credit is owed for this outage under this policy.".into());
        }
    }
    let on_request: Vec<_> = mine.iter().filter(|l| !l.automatic).collect();
    let on_request_minor: i64 = on_request.iter().map(|l| l.amount_minor).sum::<i64>();
    let mut on_request_words: Vec<String> = on_request.iter().map(|l| l.explanation()).collect();
    if on_request_minor > 0 {
        words.push(format!("A further {} is payable on request.", show(on_request_minor)));
        on_request_words.push(format!("Total {}, payable on request.", show(on_request_minor)));
    }
    PricedCredit {
        amount_minor,
        currency: after.currency.code().to_string(),
        statement,
        explanation: words.join(" "),
        lines_json: serde_json::to_string(&mine).unwrap_or_else(|_| "[]".into()),
        lines: mine
            .iter()
            .map(|l| CreditedLine { amount_minor: l.amount_minor, automatic: l.automatic, basis: l.basis() })
            .collect(),
        on_request_minor,
        on_request_explanation: on_request_words.join(" "),
        on_request_lines_json: serde_json::to_string(&on_request).unwrap_or_else(|_| "[]".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::Interval;
    use crate::money::Currency;
    use crate::policy::PricePoint;
    use crate::policy::facts::EventKind;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;
    use std::sync::Arc;

    const NY: &str = include_str!("../../../policies/us-ny-psc-outage-credit.toml");
    const OFCOM: &str = include_str!("../../../policies/uk-ofcom-automatic-compensation.toml");

    fn customer(price: i64) -> CustomerFacts {
        customer_in(price, "USD", "America/New_York", "US-NY")
    }

    fn customer_in(price: i64, currency: &str, zone: &str, jurisdiction: &str) -> CustomerFacts {
        CustomerFacts {
            id: "C1".into(),
            segment: "residential".into(),
            jurisdiction: jurisdiction.into(),
            zone_name: zone.into(),
            zone: TimeZone::get(zone).unwrap(),
            currency: Currency::parse(currency).unwrap(),
            billing_day: 1,
            active_from: "2019-01-01T00:00:00Z".parse().unwrap(),
            prices: vec![PricePoint { from: Date::constant(2019, 1, 1), monthly_price_minor: price }],
            attributes: Arc::default(),
        }
    }

    /// Outage `i` of a customer: `start` and `minutes` from 2026-11-02 00:00 UTC.
    fn outage(i: usize, start: i64, minutes: i64) -> Event {
        let from: Timestamp = "2026-11-02T00:00:00Z".parse().unwrap();
        let at = |m: i64| from.checked_add(jiff::SignedDuration::from_mins(m)).unwrap();
        Event {
            id: format!("INC-{i}").into(),
            what: EventKind::Outage {
                span: Interval::new(at(start), at(start + minutes)).unwrap(),
                reported_at: None,
            },
            attributes: Arc::default(),
        }
    }

    fn owed(policy: &Policy, customer: &CustomerFacts, events: &[Event]) -> i64 {
        evaluate(policy, &Facts { customer: customer.clone(), events: events.to_vec() }).unwrap().total_minor
    }

    /// Each outage credited in `order`, against those credited before it.
    fn credited(policy: &Policy, customer: &CustomerFacts, events: &[Event], order: &[usize]) -> Vec<i64> {
        let statement = Date::constant(2026, 12, 1);
        let mut earlier = Vec::new();
        order
            .iter()
            .map(|&i| {
                let this = events[i].clone();
                let id = this.id.to_string();
                let credit =
                    marginal(policy, customer.clone(), earlier.clone(), vec![this.clone()], &id, statement)
                        .unwrap();
                earlier.push(this);
                credit.amount_minor
            })
            .collect()
    }

    fn outages() -> impl Strategy<Value = Vec<Event>> {
        // Up to six outages, each up to three days long, starting within twenty days:
        // overlapping, nested, adjacent and apart.
        prop::collection::vec((0i64..20 * 1440, 1i64..3 * 1440), 1..6).prop_map(|spans| {
            spans.into_iter().enumerate().map(|(i, (start, minutes))| outage(i, start, minutes)).collect()
        })
    }

    proptest! {
        /// Credited in resolution order, a customer's credits add up, to the cent, to what
        /// the policy owes for all their outages together, each credit at least zero.
        #[test]
        fn credits_add_up_to_what_the_policy_owes_for_all(events in outages(), price in 1i64..50_000) {
            let schemes = [
                (None, customer(price)),
                (Some(NY), customer(price)),
                (Some(OFCOM), customer_in(price, "GBP", "Europe/London", "GB-EAW")),
            ];
            for (text, customer) in schemes {
                let policy = text.map_or_else(Policy::builtin, |t| Policy::from_toml("p.toml", t).unwrap());
                let order: Vec<usize> = (0..events.len()).collect();
                let credits = credited(&policy, &customer, &events, &order);
                prop_assert!(credits.iter().all(|&c| c >= 0), "{credits:?}");
                prop_assert_eq!(credits.iter().sum::<i64>(), owed(&policy, &customer, &events), "{}", policy.id);
            }
        }

        /// In whatever order the outages are credited, the total is the same.
        #[test]
        fn the_total_does_not_depend_on_the_order(events in outages(), seed in any::<u64>()) {
            let policy = Policy::builtin();
            let customer = customer(7999);
            let mut order: Vec<usize> = (0..events.len()).collect();
            // A permutation from the seed (Fisher-Yates with a small LCG).
            let mut state = seed;
            for i in (1..order.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (state >> 33) as usize % (i + 1));
            }
            let forward: i64 = credited(&policy, &customer, &events, &(0..events.len()).collect::<Vec<_>>()).iter().sum();
            let shuffled: i64 = credited(&policy, &customer, &events, &order).iter().sum();
            prop_assert_eq!(forward, shuffled);
        }
    }

    #[test]
    fn a_second_overlapping_outage_adds_only_its_own_time() {
        let (policy, customer) = (Policy::builtin(), customer(7999));
        let first = outage(0, 0, 120);
        let second = outage(1, 60, 120); // an hour of it overlaps the first
        let statement = Date::constant(2026, 12, 1);
        let alone =
            marginal(&policy, customer.clone(), vec![], vec![first.clone()], "INC-0", statement).unwrap();
        let after =
            marginal(&policy, customer.clone(), vec![first], vec![second], "INC-1", statement).unwrap();
        let both_hours = owed(&policy, &customer, &[outage(0, 0, 180)]);
        assert_eq!(alone.amount_minor + after.amount_minor, both_hours);
        assert!(after.explanation.contains("already credited"), "{}", after.explanation);
    }
}
