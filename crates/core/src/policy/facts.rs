//! Facts: what a policy is evaluated against. One customer and the events that may earn
//! them compensation (outages, appointments, provisioning). This is the public interface
//! of `amends policy eval`, read from JSON, and what the server builds from its book.

use crate::interval::Interval;
use crate::money::Currency;
use crate::money::PRICE_MINOR_MAX;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bounds on one evaluation's input: one customer's history, not a data warehouse.
pub const EVENTS_MAX: usize = 10_000;
pub const PRICES_MAX: usize = 1_000;
pub const ATTRIBUTES_MAX: usize = 64;
pub const ATTRIBUTE_TEXT_MAX: usize = 256;
/// An attribute's name (the book allows 32 bytes).
pub const ATTRIBUTE_NAME_MAX: usize = 128;
/// The customer's `id`, `segment` and `jurisdiction` (as an event's `id`).
pub const TEXT_MAX: usize = 128;
/// The longest event amends will evaluate: about three years.
pub const EVENT_DAYS_MAX: i64 = 1_100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("facts: {field}: {message}")]
pub struct FactsError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FactsError {
    FactsError { field: field.into(), message: message.into() }
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub customer: CustomerFacts,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone)]
pub struct CustomerFacts {
    pub id: String,
    pub segment: String,
    pub jurisdiction: String,
    pub zone_name: String,
    pub zone: TimeZone,
    pub currency: Currency,
    /// 1 to 28: the day of the month each billing cycle starts, in `zone`.
    pub billing_day: u8,
    pub active_from: Timestamp,
    /// Sorted by `from`, at least one.
    pub prices: Vec<PricePoint>,
    /// What the provider knows of the customer that policies may read
    /// (`customer.attributes.medical_priority`): from the book's `attr.` columns.
    pub attributes: Arc<Attributes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricePoint {
    pub from: Date,
    pub monthly_price_minor: i64,
}

impl CustomerFacts {
    /// The monthly price in force on `date`: the latest change on or before it, or the
    /// first price when `date` precedes them all (a customer who joined mid-cycle).
    pub fn price_on(&self, date: Date) -> i64 {
        let i = self.prices.partition_point(|p| p.from <= date);
        self.prices[i.saturating_sub(1)].monthly_price_minor
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Arc<str>,
    pub what: EventKind,
    pub attributes: Arc<Attributes>,
}

pub type Attributes = BTreeMap<String, Attribute>;

/// Attribute values are scalars: text, integers and booleans. No floats (money and
/// counts are exact) and no lists (so no expression can iterate over facts).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Attribute {
    Text(String),
    Int(i64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Kept,
    NoShow,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Provider,
    Customer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Outage {
        span: Interval,
        reported_at: Option<Timestamp>,
    },
    Appointment {
        window: Interval,
        outcome: Outcome,
        cancelled: Option<(Timestamp, Party)>,
    },
    /// A new service promised for one date that went live on another.
    Provision {
        promised: Date,
        live: Date,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Outage { .. } => "outage",
            EventKind::Appointment { .. } => "appointment",
            EventKind::Provision { .. } => "provision",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsWire {
    customer: serde_json::Value,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerWire {
    id: String,
    #[serde(default = "residential")]
    segment: String,
    #[serde(default)]
    jurisdiction: String,
    timezone: String,
    currency: String,
    billing_day: u8,
    active_from: String,
    prices: Vec<PriceWire>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

fn residential() -> String {
    "residential".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceWire {
    from: String,
    monthly_price_minor: i64,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum EventWire {
    Outage {
        id: String,
        start: String,
        end: String,
        reported_at: Option<String>,
        #[serde(default)]
        attributes: serde_json::Map<String, serde_json::Value>,
    },
    Appointment {
        id: String,
        window_start: String,
        window_end: String,
        outcome: Outcome,
        cancelled_at: Option<String>,
        cancelled_by: Option<Party>,
        #[serde(default)]
        attributes: serde_json::Map<String, serde_json::Value>,
    },
    Provision {
        id: String,
        promised_date: String,
        live_date: String,
        #[serde(default)]
        attributes: serde_json::Map<String, serde_json::Value>,
    },
}

fn timestamp(field: &str, s: &str) -> Result<Timestamp, FactsError> {
    s.parse().map_err(|_| err(field, format!("{s:?} is not an RFC 3339 instant (like 2025-07-09T10:00:00Z)")))
}

fn date(field: &str, s: &str) -> Result<Date, FactsError> {
    s.parse().map_err(|_| err(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

/// `start` to `end`, with `end` after `start` and the whole no longer than the bound.
fn span(field: &str, start: Timestamp, end: Timestamp, end_name: &str) -> Result<Interval, FactsError> {
    let interval = Interval::new(start, end).ok_or_else(|| {
        err(format!("{field}.{end_name}"), format!("{end} is not after the start, {start}"))
    })?;
    if interval.seconds() > EVENT_DAYS_MAX * 86_400 {
        return Err(err(field, format!("lasts more than {EVENT_DAYS_MAX} days")));
    }
    Ok(interval)
}

impl Facts {
    /// Reads facts in the JSON format of `amends policy eval`. Errors name the field.
    pub fn from_json(text: &str) -> Result<Facts, FactsError> {
        let wire: FactsWire = serde_json::from_str(text).map_err(|e| err("(document)", e.to_string()))?;
        let customer = customer(wire.customer)?;
        if wire.events.len() > EVENTS_MAX {
            return Err(err("events", format!("{} events; at most {EVENTS_MAX}", wire.events.len())));
        }
        let mut events = Vec::with_capacity(wire.events.len());
        for (i, raw) in wire.events.into_iter().enumerate() {
            let field = format!("events[{i}]");
            let parsed: EventWire = serde_json::from_value(raw).map_err(|e| err(&field, e.to_string()))?;
            events.push(event(&field, parsed)?);
        }
        let mut seen = std::collections::HashSet::new();
        for (i, e) in events.iter().enumerate() {
            if !seen.insert(e.id.clone()) {
                return Err(err(format!("events[{i}].id"), format!("{:?} is used twice", e.id)));
            }
        }
        Ok(Facts { customer, events })
    }
}

fn customer(raw: serde_json::Value) -> Result<CustomerFacts, FactsError> {
    let w: CustomerWire = serde_json::from_value(raw).map_err(|e| err("customer", e.to_string()))?;
    let zone = TimeZone::get(&w.timezone)
        .map_err(|_| err("customer.timezone", format!("{:?} is not an IANA time zone", w.timezone)))?;
    let currency = Currency::parse(&w.currency).map_err(|e| err("customer.currency", e.to_string()))?;
    for (field, text) in
        [("customer.id", &w.id), ("customer.segment", &w.segment), ("customer.jurisdiction", &w.jurisdiction)]
    {
        if text.len() > TEXT_MAX {
            return Err(err(field, format!("{} bytes; at most {TEXT_MAX} bytes", text.len())));
        }
    }
    if !(1..=28).contains(&w.billing_day) {
        return Err(err("customer.billing_day", format!("{} is not a day from 1 to 28", w.billing_day)));
    }
    if w.prices.is_empty() || w.prices.len() > PRICES_MAX {
        return Err(err("customer.prices", format!("needs 1 to {PRICES_MAX} prices")));
    }
    let mut prices = Vec::with_capacity(w.prices.len());
    for (i, p) in w.prices.iter().enumerate() {
        let field = format!("customer.prices[{i}]");
        if !(0..=PRICE_MINOR_MAX).contains(&p.monthly_price_minor) {
            return Err(err(
                format!("{field}.monthly_price_minor"),
                format!("{} is outside 0..={PRICE_MINOR_MAX}", p.monthly_price_minor),
            ));
        }
        let from = date(&format!("{field}.from"), &p.from)?;
        if prices.last().is_some_and(|last: &PricePoint| last.from >= from) {
            return Err(err(format!("{field}.from"), "prices must be in increasing order of `from`"));
        }
        prices.push(PricePoint { from, monthly_price_minor: p.monthly_price_minor });
    }
    Ok(CustomerFacts {
        id: w.id,
        segment: w.segment,
        jurisdiction: w.jurisdiction,
        zone_name: w.timezone,
        zone,
        currency,
        billing_day: w.billing_day,
        active_from: timestamp("customer.active_from", &w.active_from)?,
        prices,
        attributes: Arc::new(attributes_of("customer", w.attributes)?),
    })
}

fn event(field: &str, wire: EventWire) -> Result<Event, FactsError> {
    let at = |name: &str, s: &str| timestamp(&format!("{field}.{name}"), s);
    let (id, what, attributes) = match wire {
        EventWire::Outage { id, start, end, reported_at, attributes } => {
            let span = span(field, at("start", &start)?, at("end", &end)?, "end")?;
            let reported_at = reported_at.map(|r| at("reported_at", &r)).transpose()?;
            if reported_at.is_some_and(|r| r >= span.end()) {
                return Err(err(format!("{field}.reported_at"), "is not before the end of the outage"));
            }
            (id, EventKind::Outage { span, reported_at }, attributes)
        }
        EventWire::Appointment {
            id,
            window_start,
            window_end,
            outcome,
            cancelled_at,
            cancelled_by,
            attributes,
        } => {
            let window = span(
                field,
                at("window_start", &window_start)?,
                at("window_end", &window_end)?,
                "window_end",
            )?;
            let cancelled = match (outcome, cancelled_at, cancelled_by) {
                (Outcome::Cancelled, Some(when), Some(by)) => Some((at("cancelled_at", &when)?, by)),
                (Outcome::Cancelled, None, _) => {
                    return Err(err(
                        format!("{field}.cancelled_at"),
                        "is required when the outcome is cancelled",
                    ));
                }
                (Outcome::Cancelled, _, None) => {
                    return Err(err(
                        format!("{field}.cancelled_by"),
                        "is required when the outcome is cancelled",
                    ));
                }
                (_, None, None) => None,
                (_, _, _) => {
                    return Err(err(
                        field,
                        "cancelled_at and cancelled_by are only for a cancelled appointment",
                    ));
                }
            };
            (id, EventKind::Appointment { window, outcome, cancelled }, attributes)
        }
        EventWire::Provision { id, promised_date, live_date, attributes } => {
            let promised = date(&format!("{field}.promised_date"), &promised_date)?;
            let live = date(&format!("{field}.live_date"), &live_date)?;
            if (live - promised).get_days() > EVENT_DAYS_MAX as i32 {
                return Err(err(field, format!("is late by more than {EVENT_DAYS_MAX} days")));
            }
            (id, EventKind::Provision { promised, live }, attributes)
        }
    };
    if id.is_empty() || id.len() > 128 {
        return Err(err(format!("{field}.id"), "must be 1 to 128 characters"));
    }
    Ok(Event { id: id.into(), what, attributes: Arc::new(attributes_of(field, attributes)?) })
}

/// The attribute the server gives every incident's outage: how many customers it
/// affected. An operator may not set it.
pub const CUSTOMERS_AFFECTED: &str = "customers_affected";

/// An attribute written as text (a CSV cell, `--attribute storm=true`): `true` and
/// `false` are booleans, a whole number without leading zeros an integer, anything else
/// text (so `02139` stays text). `Err` names the problem.
pub fn attribute_from_text(text: &str) -> Result<Attribute, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let whole = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    Ok(match text {
        "true" => Attribute::Bool(true),
        "false" => Attribute::Bool(false),
        _ if whole => Attribute::Int(text.parse().map_err(|_| "is too large an integer".to_string())?),
        _ if text.len() > ATTRIBUTE_TEXT_MAX => {
            return Err(format!("is longer than {ATTRIBUTE_TEXT_MAX} bytes"));
        }
        _ => Attribute::Text(text.to_string()),
    })
}

/// Reads attributes (an operator's declaration) as facts' are checked.
pub fn deserialize_attributes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
    let raw = serde_json::Map::deserialize(d)?;
    attributes_of("attributes", raw).map_err(serde::de::Error::custom)
}

/// Attributes kept as a JSON object of scalars (the book's `attributes` column), checked
/// as facts' are; errors name `field`.
pub fn attributes_from_json(field: &str, text: &str) -> Result<Attributes, FactsError> {
    let raw = serde_json::from_str(text).map_err(|e| err(format!("{field}.attributes"), e.to_string()))?;
    attributes_of(field, raw)
}

fn attributes_of(
    field: &str,
    raw: serde_json::Map<String, serde_json::Value>,
) -> Result<Attributes, FactsError> {
    if raw.len() > ATTRIBUTES_MAX {
        return Err(err(format!("{field}.attributes"), format!("at most {ATTRIBUTES_MAX} attributes")));
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        if name.len() > ATTRIBUTE_NAME_MAX {
            return Err(err(
                format!("{field}.attributes"),
                format!("the name {name:?} is longer than {ATTRIBUTE_NAME_MAX} bytes"),
            ));
        }
        let here = || format!("{field}.attributes.{name}");
        let value = match value {
            serde_json::Value::String(s) if s.len() <= ATTRIBUTE_TEXT_MAX => Attribute::Text(s),
            serde_json::Value::String(_) => {
                return Err(err(here(), format!("text longer than {ATTRIBUTE_TEXT_MAX} bytes")));
            }
            serde_json::Value::Bool(b) => Attribute::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Attribute::Int(i),
                None => {
                    return Err(err(here(), format!("{n} is not an integer (numbers in facts are exact)")));
                }
            },
            _ => return Err(err(here(), "must be text, an integer or true/false")),
        };
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: &str = r#"{"id": "C1", "segment": "residential", "jurisdiction": "GB-EAW",
        "timezone": "Europe/London", "currency": "GBP", "billing_day": 1,
        "active_from": "2020-01-01T00:00:00Z",
        "prices": [{"from": "2025-01-01", "monthly_price_minor": 3000}, {"from": "2025-06-01", "monthly_price_minor": 3500}]}"#;

    fn facts(events: &str) -> Result<Facts, FactsError> {
        Facts::from_json(&format!(r#"{{"customer": {CUSTOMER}, "events": [{events}]}}"#))
    }

    #[test]
    fn a_customer_may_have_attributes_checked_as_an_event_s_are() {
        let with = |attributes: &str| {
            Facts::from_json(&format!(
                r#"{{"customer": {}, "attributes": {attributes}}}}}"#,
                CUSTOMER.strip_suffix('}').unwrap()
            ))
        };
        let f = with(r#"{"medical_priority": true, "floors": 3}"#).unwrap();
        assert_eq!(f.customer.attributes["medical_priority"], Attribute::Bool(true));
        assert_eq!(f.customer.attributes["floors"], Attribute::Int(3));
        assert!(facts("").unwrap().customer.attributes.is_empty());
        let e = with(r#"{"x": 1.5}"#).unwrap_err();
        assert_eq!(e.field, "customer.attributes.x", "{e}");
    }

    #[test]
    fn the_issue_s_example_reads() {
        let f = facts(
            r#"{"id": "F1", "kind": "outage", "start": "2025-07-01T10:00:00Z", "end": "2025-07-01T19:00:00Z",
                "reported_at": "2025-07-01T10:30:00Z", "attributes": {"weather": "normal", "customers_affected": 1500}},
               {"id": "A1", "kind": "appointment", "window_start": "2025-07-02T08:00:00Z", "window_end": "2025-07-02T12:00:00Z",
                "outcome": "cancelled", "cancelled_at": "2025-07-01T20:00:00Z", "cancelled_by": "provider"},
               {"id": "P1", "kind": "provision", "promised_date": "2025-07-09", "live_date": "2025-07-11"}"#,
        )
        .unwrap();
        assert_eq!(f.events.len(), 3);
        assert_eq!(f.events[0].attributes["customers_affected"], Attribute::Int(1500));
        assert_eq!(f.customer.price_on("2025-05-31".parse().unwrap()), 3000);
        assert_eq!(f.customer.price_on("2025-06-01".parse().unwrap()), 3500);
        assert_eq!(f.customer.price_on("2024-06-01".parse().unwrap()), 3000);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |events: &str| facts(events).unwrap_err().to_string();
        assert!(
            e(r#"{"id": "F1", "kind": "outage", "start": "2025-07-01T10:00:00Z", "end": "2025-07-01T09:00:00Z"}"#)
                .contains("events[0].end"),
        );
        assert!(e(r#"{"id": "F1", "kind": "flood"}"#).contains("unknown variant `flood`"));
        assert!(
            e(r#"{"id": "F1", "kind": "outage", "start": "2025-07-01T10:00:00Z"}"#)
                .contains("missing field `end`")
        );
        assert!(
            e(r#"{"id": "F1", "kind": "outage", "start": "2025-07-01T10:00:00Z", "end": "2025-07-02T10:00:00Z", "attributes": {"x": 1.5}}"#)
                .contains("events[0].attributes.x")
        );
        assert!(
            e(r#"{"id": "A1", "kind": "appointment", "window_start": "2025-07-02T08:00:00Z", "window_end": "2025-07-02T12:00:00Z", "outcome": "cancelled"}"#)
                .contains("events[0].cancelled_at")
        );
        // What an expression may read is bounded, so its cost is (expr.rs,
        // FACT_VALUE_BYTES_MAX): text the customer is described by, and attribute names.
        let long = "x".repeat(TEXT_MAX + 1);
        for (from, field) in [
            ("\"id\": \"C1\"", "customer.id"),
            ("\"segment\": \"residential\"", "customer.segment"),
            ("\"jurisdiction\": \"GB-EAW\"", "customer.jurisdiction"),
        ] {
            let key = from.split(':').next().unwrap();
            let c = CUSTOMER.replace(from, &format!("{key}: \"{long}\""));
            let e = Facts::from_json(&format!(r#"{{"customer": {c}}}"#)).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(&format!("at most {TEXT_MAX} bytes")), "{e}");
        }
        let name = "n".repeat(ATTRIBUTE_NAME_MAX + 1);
        let e = e(&format!(
            r#"{{"id": "F1", "kind": "outage", "start": "2025-07-01T10:00:00Z", "end": "2025-07-02T10:00:00Z", "attributes": {{"{name}": 1}}}}"#
        ));
        assert!(
            e.contains(&format!(
                "events[0].attributes: the name {name:?} is longer than {ATTRIBUTE_NAME_MAX} bytes"
            )),
            "{e}"
        );
        let c = CUSTOMER.replace("Europe/London", "Mars/Base");
        let bad_zone = Facts::from_json(&format!(r#"{{"customer": {c}}}"#)).unwrap_err();
        assert_eq!(bad_zone.field, "customer.timezone");
    }
}
