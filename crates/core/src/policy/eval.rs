//! Evaluation: policy plus facts gives lines. Pure, deterministic and exact.
//!
//! Outages are first merged into episodes: overlapping or touching outages of one customer
//! are one stretch without service, so they count once, and splitting an outage into
//! touching pieces changes nothing. Only time since the customer's `active_from` counts.
//! Each rule then turns episodes (or appointments, or provisions) into lines; each line is
//! computed as an exact ratio and rounded once, by the policy's rounding.

use super::amount::{Amount, AmountError, AmountInputs, Ratio, Valued};
use super::expr::{self, Expr};
use super::facts::{Attributes, Event, EventKind, Facts, Outcome, Party};
use super::model::{
    Automatic, CapPeriod, Count, Deadline, EventKindName, MULTIPLY_MAX, Pay, Period, Policy, PolicyError,
    RateDate, Rule,
};
use crate::cycle::{BillingCycle, cycle_containing, split_by_cycle};
use crate::id::CustomerId;
use crate::interval::Interval;
use crate::money::{Currency, Money, Rounding, format_quotient, group_thousands};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::cell::OnceCell;
use std::sync::Arc;

/// The result of one evaluation: what is owed, line by line, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub customer_id: CustomerId,
    #[serde(serialize_with = "currency_code")]
    pub currency: Currency,
    /// The sum of the automatic lines: what amounts credits without being asked.
    pub total_minor: i64,
    /// The sum of the lines paid only on request.
    pub on_request_minor: i64,
    pub lines: Vec<Line>,
    /// Why something earned nothing (excluded, under a threshold, restored in time...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub rule: Arc<str>,
    pub rule_index: usize,
    pub events: Vec<Arc<str>>,
    pub amount_minor: i64,
    pub automatic: bool,
    /// When the entitlement arose: the start of the billing cycle or of the event. Caps per
    /// period count lines by it.
    pub anchor: Timestamp,
    /// The time without service the line pays for, when it pays for an outage: what the
    /// customer's version of the explanation tells them (see [`Basis`]).
    seconds_out: Option<i64>,
    detail: Detail,
    cap_note: Option<String>,
}

/// The numbers of a line a customer's explanation is written from, in their language
/// and zone ([`crate::credit_words`]): no words, so the ledger can keep them with the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Basis {
    /// Seconds without service the line pays for (outage lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_out: Option<i64>,
    /// A prorated line's fraction: the monthly price over the billing cycle's seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prorated: Option<ProratedBasis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProratedBasis {
    pub price_minor: i64,
    pub cycle_seconds: i64,
}

/// How a line was reached. The prorated case keeps numbers, not text, because it is the
/// hot path of a credit run over millions of customers; the words are written on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Detail {
    Text(String),
    Prorated(Box<ProratedDetail>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProratedDetail {
    pieces: Vec<Interval>,
    seconds: i64,
    cycle: BillingCycle,
    price: Money,
    rounding: Rounding,
}

impl Line {
    /// The line's arithmetic in plain words.
    pub fn explanation(&self) -> String {
        let mut text = match &self.detail {
            Detail::Text(t) => t.clone(),
            Detail::Prorated(p) => p.explain(self.amount_minor),
        };
        if let Some(note) = &self.cap_note {
            text.push(' ');
            text.push_str(note);
        }
        text
    }

    /// The numbers the customer's explanation is written from.
    pub fn basis(&self) -> Basis {
        match &self.detail {
            Detail::Prorated(p) => Basis {
                seconds_out: Some(p.seconds),
                prorated: Some(ProratedBasis {
                    price_minor: p.price.minor,
                    cycle_seconds: p.cycle.seconds(),
                }),
            },
            Detail::Text(_) => Basis { seconds_out: self.seconds_out, prorated: None },
        }
    }
}

impl Serialize for Line {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Line", 6)?;
        st.serialize_field("rule", &*self.rule)?;
        st.serialize_field("events", &self.events.iter().map(|e| &**e).collect::<Vec<&str>>())?;
        st.serialize_field("amount_minor", &self.amount_minor)?;
        st.serialize_field("automatic", &self.automatic)?;
        st.serialize_field("explanation", &self.explanation())?;
        st.serialize_field("basis", &self.basis())?;
        st.end()
    }
}

impl ProratedDetail {
    fn explain(&self, amount_minor: i64) -> String {
        let what = match self.pieces.as_slice() {
            [one] => format!("Outage {}", describe_interval(*one)),
            many => format!(
                "Outages {}",
                many.iter().map(|p| describe_interval(*p)).collect::<Vec<_>>().join(" and ")
            ),
        };
        let cycle_seconds = self.cycle.seconds();
        let (used, total, unit) = span_pair(self.seconds, cycle_seconds);
        let numerator = i128::from(self.price.minor) * i128::from(self.seconds);
        format!(
            "{what}, {used} {unit} of the {total}-{unit} billing cycle starting {}; {} x {used} / {total} = {}, {} to {}.",
            self.cycle.start_date,
            self.price,
            format_quotient(numerator, i128::from(cycle_seconds), self.price.currency.exponent(), 4),
            self.rounding.describe(),
            Money::new(amount_minor, self.price.currency),
        )
    }
}

fn currency_code<S: serde::Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.code())
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
/// With seconds when either end is not on a whole minute, so a short outage never reads
/// `10:00-10:00`.
pub fn describe_interval(interval: Interval) -> String {
    let seconds = interval.start().as_second() % 60 != 0 || interval.end().as_second() % 60 != 0;
    let start = interval.start().to_zoned(TimeZone::UTC);
    let end = interval.end().to_zoned(TimeZone::UTC);
    let (from, to) = (clock_time(&start, seconds), clock_time(&end, seconds));
    if start.date() == end.date() {
        format!("{} {from}-{to} UTC", start.date())
    } else {
        format!("{} {from} UTC to {} {to} UTC", start.date(), end.date())
    }
}

/// Overlapping or touching outages of one customer, as one stretch without service.
#[derive(Debug, Clone)]
struct Episode {
    span: Interval,
    events: Vec<Arc<str>>,
    /// The earliest event of the episode: its attributes speak for the episode.
    first: usize,
    reported_at: Option<Timestamp>,
}

fn episodes(facts: &Facts) -> Vec<Episode> {
    let active_from = facts.customer.active_from;
    let mut outages: Vec<(usize, Interval, Option<Timestamp>)> = facts
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e.what {
            EventKind::Outage { span, reported_at } => {
                Interval::new(span.start().max(active_from), span.end()).map(|s| (i, s, reported_at))
            }
            _ => None,
        })
        .collect();
    outages.sort_by(|a, b| {
        a.1.start().cmp(&b.1.start()).then_with(|| facts.events[a.0].id.cmp(&facts.events[b.0].id))
    });
    let mut out: Vec<Episode> = Vec::with_capacity(outages.len());
    for (i, span, reported_at) in outages {
        let id = facts.events[i].id.clone();
        match out.last_mut() {
            Some(last) if span.start() <= last.span.end() => {
                let end = last.span.end().max(span.end());
                last.span = Interval::new(last.span.start(), end).expect("a union of intervals is one");
                last.events.push(id);
                last.reported_at = match (last.reported_at, reported_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            _ => out.push(Episode { span, events: vec![id], first: i, reported_at }),
        }
    }
    out
}

/// Evaluates `policy` for the customer and events in `facts`.
pub fn evaluate(policy: &Policy, facts: &Facts) -> Result<Evaluation, PolicyError> {
    let c = &facts.customer;
    let mut ev = Evaluation {
        customer_id: c.id.clone().into(),
        currency: c.currency,
        total_minor: 0,
        on_request_minor: 0,
        lines: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(currency) = policy.currency
        && currency != c.currency
    {
        return Err(PolicyError::eval(
            &policy.id,
            format!("the policy pays in {currency}; customer {} is billed in {}", c.id, c.currency),
        ));
    }
    if let Some(reason) = excluded(policy, &c.segment) {
        ev.notes.push(reason);
        return Ok(ev);
    }
    let episodes = episodes(facts);
    let scope = Scope::new(policy, facts, &episodes);
    if let Some(when) = &policy.when
        && !scope.test(when, View::None)?
    {
        ev.notes.push(format!("The policy does not apply: `{}` is false for this customer.", when.source));
        return Ok(ev);
    }
    let mut run = Run { policy, facts, scope: &scope, lines: Vec::new(), notes: Vec::new() };
    for (index, rule) in policy.rules.iter().enumerate() {
        match rule.event {
            EventKindName::Outage => run.outage_rule(index, rule, &episodes)?,
            EventKindName::Appointment | EventKindName::Provision => run.event_rule(index, rule)?,
        }
    }
    run.apply_period_caps()?;
    let overflow = || PolicyError::eval(&policy.id, "the total is too large");
    for line in &run.lines {
        let total = if line.automatic { &mut ev.total_minor } else { &mut ev.on_request_minor };
        *total = total.checked_add(line.amount_minor).ok_or_else(overflow)?;
    }
    ev.lines = run.lines;
    ev.notes.extend(run.notes);
    Ok(ev)
}

fn excluded(policy: &Policy, segment: &str) -> Option<String> {
    if policy.exclude_segments.iter().any(|s| s == segment) {
        return Some(format!("The policy excludes the {segment:?} segment."));
    }
    if !policy.only_segments.is_empty() && !policy.only_segments.iter().any(|s| s == segment) {
        return Some(format!(
            "The policy applies only to the {} segments, not {segment:?}.",
            policy.only_segments.join(", ")
        ));
    }
    None
}

/// The values CEL expressions read, built on first use and at most once per evaluation:
/// a policy whose expressions never come into play (an appointment rule for a customer with
/// only outages) pays nothing for them.
struct Scope<'a> {
    policy: &'a Policy,
    facts: &'a Facts,
    episodes: &'a [Episode],
    ctx: OnceCell<cel::Context<'a, 'a>>,
    episode_views: Vec<OnceCell<cel::Value>>,
    event_views: Vec<OnceCell<cel::Value>>,
}

/// What `event` is in an expression: nothing (policy-level `when`), an episode or an event.
#[derive(Clone, Copy)]
enum View {
    None,
    Episode(usize),
    Event(usize),
}

#[derive(Serialize)]
struct CustomerView<'a> {
    id: &'a str,
    segment: &'a str,
    jurisdiction: &'a str,
    timezone: &'a str,
    currency: &'a str,
    billing_day: u8,
    active_from: String,
    /// Whole days from `active_from` to the earliest event (0 without events).
    tenure_days: i64,
    attributes: &'a Attributes,
}

#[derive(Serialize, Default)]
struct EventView<'a> {
    id: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_by: Option<Party>,
    /// Minutes between a cancellation and the window's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    notice_minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promised_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days_late: Option<i64>,
    attributes: Option<&'a Attributes>,
}

fn to_value(v: &impl Serialize) -> Result<cel::Value, String> {
    cel::to_value(v).map_err(|e| e.to_string())
}

impl<'a> Scope<'a> {
    fn new(policy: &'a Policy, facts: &'a Facts, episodes: &'a [Episode]) -> Scope<'a> {
        let cells = |n: usize| {
            if policy.uses_expressions { (0..n).map(|_| OnceCell::new()).collect() } else { Vec::new() }
        };
        Scope {
            policy,
            facts,
            episodes,
            ctx: OnceCell::new(),
            episode_views: cells(episodes.len()),
            event_views: cells(facts.events.len()),
        }
    }

    fn fail(&self, m: String) -> PolicyError {
        PolicyError::eval(&self.policy.id, m)
    }

    fn context(&self) -> Result<&cel::Context<'a, 'a>, PolicyError> {
        if let Some(ctx) = self.ctx.get() {
            return Ok(ctx);
        }
        let c = &self.facts.customer;
        let earliest = self.facts.events.iter().filter_map(|e| event_start(e, &c.zone)).min();
        let tenure_days = earliest.map_or(0, |t| (t.as_second() - c.active_from.as_second()).max(0) / 86_400);
        let customer = CustomerView {
            id: &c.id,
            segment: &c.segment,
            jurisdiction: &c.jurisdiction,
            timezone: &c.zone_name,
            currency: c.currency.code(),
            billing_day: c.billing_day,
            active_from: c.active_from.to_string(),
            tenure_days,
            attributes: &c.attributes,
        };
        let mut ctx = expr::context();
        ctx.add_variable_from_value("customer", to_value(&customer).map_err(|m| self.fail(m))?);
        Ok(self.ctx.get_or_init(|| ctx))
    }

    fn view(&self, which: View) -> Result<Option<&cel::Value>, PolicyError> {
        let cell = match which {
            View::None => return Ok(None),
            View::Episode(i) => &self.episode_views[i],
            View::Event(i) => &self.event_views[i],
        };
        if cell.get().is_none() {
            let value = match which {
                View::Episode(i) => self.episode_view(i),
                View::Event(i) => event_view(&self.facts.events[i]),
                View::None => unreachable!("returned above"),
            };
            let _ = cell.set(value.map_err(|m| self.fail(m))?);
        }
        Ok(cell.get())
    }

    fn episode_view(&self, i: usize) -> Result<cel::Value, String> {
        let ep = &self.episodes[i];
        let first = &self.facts.events[ep.first];
        to_value(&EventView {
            id: &first.id,
            kind: "outage",
            start: Some(ep.span.start().to_string()),
            end: Some(ep.span.end().to_string()),
            reported_at: ep.reported_at.map(|r| r.to_string()),
            duration_minutes: Some(ep.span.seconds() / 60),
            attributes: Some(&first.attributes),
            ..EventView::default()
        })
    }

    fn with_event<T>(
        &self,
        which: View,
        f: impl FnOnce(&cel::Context<'_, '_>) -> Result<T, String>,
    ) -> Result<T, PolicyError> {
        let ctx = self.context()?;
        let result = match self.view(which)? {
            Some(v) => {
                let mut inner = ctx.new_inner_scope();
                inner.add_variable_from_value("event", v.clone());
                f(&inner)
            }
            None => f(ctx),
        };
        result.map_err(|m| self.fail(m))
    }

    fn test(&self, e: &Expr, which: View) -> Result<bool, PolicyError> {
        self.with_event(which, |ctx| e.eval_bool(ctx))
    }
}

fn event_start(e: &Event, zone: &TimeZone) -> Option<Timestamp> {
    match &e.what {
        EventKind::Outage { span, .. } => Some(span.start()),
        EventKind::Appointment { window, .. } => Some(window.start()),
        EventKind::Provision { promised, .. } => promised.to_zoned(zone.clone()).ok().map(|z| z.timestamp()),
    }
}

fn event_view(e: &Event) -> Result<cel::Value, String> {
    let mut v =
        EventView { id: &e.id, kind: e.what.name(), attributes: Some(&e.attributes), ..EventView::default() };
    match &e.what {
        EventKind::Outage { span, reported_at } => {
            v.start = Some(span.start().to_string());
            v.end = Some(span.end().to_string());
            v.reported_at = reported_at.map(|r| r.to_string());
            v.duration_minutes = Some(span.seconds() / 60);
        }
        EventKind::Appointment { window, outcome, cancelled } => {
            v.window_start = Some(window.start().to_string());
            v.window_end = Some(window.end().to_string());
            v.outcome = Some(*outcome);
            if let Some((at, by)) = cancelled {
                v.cancelled_at = Some(at.to_string());
                v.cancelled_by = Some(*by);
                v.notice_minutes = Some((window.start().as_second() - at.as_second()).div_euclid(60));
            }
        }
        EventKind::Provision { promised, live } => {
            v.promised_date = Some(promised.to_string());
            v.live_date = Some(live.to_string());
            v.days_late = Some(days_between(*promised, *live).max(0));
        }
    }
    to_value(&v)
}

fn days_between(a: Date, b: Date) -> i64 {
    a.until(b).map(|s| i64::from(s.get_days())).unwrap_or(0)
}

/// One thing a rule pays for: an outage episode, an appointment or a provision.
struct Unit<'u> {
    events: &'u [Arc<str>],
    /// The counted part of an outage (after `counted_from` and `active_from`).
    counted: Option<Interval>,
    /// The whole episode, when the unit is an outage.
    outage: Option<Interval>,
    reported_at: Option<Timestamp>,
    /// The date that chooses rates and prices, in the customer's zone.
    anchor: Timestamp,
    event: &'u Event,
    automatic: bool,
    /// What `event` is in the rule's expressions for this unit.
    view: View,
}

impl Unit<'_> {
    fn payable(&self) -> Payable {
        Payable {
            events: self.events.to_vec(),
            automatic: self.automatic,
            anchor: self.anchor,
            seconds_out: self.counted.map(|c| c.seconds()),
            view: self.view,
        }
    }
}

/// What a line is for: its events, whether it pays without a claim, the instant that
/// anchors it, and the time without service it pays for (outages).
struct Payable {
    events: Vec<Arc<str>>,
    automatic: bool,
    anchor: Timestamp,
    seconds_out: Option<i64>,
    /// What `event` is for the rule's `multiply`.
    view: View,
}

struct Run<'a, 's> {
    policy: &'a Policy,
    facts: &'a Facts,
    scope: &'s Scope<'a>,
    lines: Vec<Line>,
    notes: Vec<String>,
}

impl Run<'_, '_> {
    fn fail(&self, m: impl Into<String>) -> PolicyError {
        PolicyError::eval(&self.policy.id, m)
    }

    fn zone(&self) -> &TimeZone {
        &self.facts.customer.zone
    }

    fn local_date(&self, t: Timestamp) -> Date {
        self.zone().to_datetime(t).date()
    }

    fn day_start(&self, d: Date) -> Result<Timestamp, PolicyError> {
        d.to_zoned(self.zone().clone()).map(|z| z.timestamp()).map_err(|e| self.fail(e.to_string()))
    }

    fn cycle(&self, t: Timestamp) -> Result<BillingCycle, PolicyError> {
        cycle_containing(t, self.facts.customer.billing_day, self.zone())
            .map_err(|e| self.fail(e.to_string()))
    }

    fn automatic(&self, rule: &Rule, view: View) -> Result<bool, PolicyError> {
        match &rule.automatic {
            Automatic::Always(b) => Ok(*b),
            Automatic::When(e) => self.scope.test(e, view),
        }
    }

    fn paid_by_earlier(&self, rule: &Rule, events: &[Arc<str>]) -> bool {
        rule.only_with.is_empty()
            || self.lines.iter().any(|l| {
                rule.only_with.contains(&l.rule_index)
                    && l.amount_minor > 0
                    && l.events.iter().any(|e| events.contains(e))
            })
    }

    fn outage_rule(&mut self, index: usize, rule: &Rule, episodes: &[Episode]) -> Result<(), PolicyError> {
        let mut units = Vec::with_capacity(episodes.len());
        for (i, ep) in episodes.iter().enumerate() {
            let view = View::Episode(i);
            if ep.span.seconds() < rule.min_duration_seconds {
                self.notes.push(format!(
                    "{}: outage {} lasted {} min, under the rule's {} min.",
                    rule.description,
                    ep.events.join(", "),
                    ep.span.seconds() / 60,
                    rule.min_duration_seconds / 60
                ));
                continue;
            }
            if let Some(when) = &rule.when
                && !self.scope.test(when, view)?
            {
                self.notes.push(format!(
                    "{}: `{}` is false for outage {}.",
                    rule.description,
                    when.source,
                    ep.events.join(", ")
                ));
                continue;
            }
            if !self.paid_by_earlier(rule, &ep.events) {
                continue;
            }
            let counted = match &rule.counted_from {
                Some(e) => {
                    let from = self.scope.with_event(view, |ctx| e.eval_timestamp(ctx))?;
                    Interval::new(from.max(ep.span.start()), ep.span.end())
                }
                None => Some(ep.span),
            };
            let Some(counted) = counted else {
                self.notes.push(format!(
                    "{}: no time of outage {} is counted.",
                    rule.description,
                    ep.events.join(", ")
                ));
                continue;
            };
            let anchor = match (rule.rate_date, ep.reported_at) {
                (RateDate::Reported, Some(r)) => r,
                _ => ep.span.start(),
            };
            let automatic = self.automatic(rule, view)?;
            units.push(Unit {
                events: &ep.events,
                counted: Some(counted),
                outage: Some(ep.span),
                reported_at: ep.reported_at,
                anchor,
                event: &self.facts.events[ep.first],
                automatic,
                view,
            });
        }
        match &rule.pay {
            Pay::Prorated | Pay::Availability { .. } => self.per_cycle(index, rule, &units),
            _ => units.iter().try_for_each(|u| self.unit_line(index, rule, u)),
        }
    }

    fn event_rule(&mut self, index: usize, rule: &Rule) -> Result<(), PolicyError> {
        let facts = self.facts;
        for (i, event) in facts.events.iter().enumerate() {
            let anchor = match (&event.what, rule.event) {
                (EventKind::Appointment { window, .. }, EventKindName::Appointment) => window.start(),
                (EventKind::Provision { promised, .. }, EventKindName::Provision) => {
                    self.day_start(*promised)?
                }
                _ => continue,
            };
            let view = View::Event(i);
            if let Some(when) = &rule.when
                && !self.scope.test(when, view)?
            {
                self.notes
                    .push(format!("{}: `{}` is false for {}.", rule.description, when.source, event.id));
                continue;
            }
            let events = std::slice::from_ref(&event.id);
            if !self.paid_by_earlier(rule, events) {
                continue;
            }
            let automatic = self.automatic(rule, view)?;
            let unit = Unit {
                events,
                counted: None,
                outage: None,
                reported_at: None,
                anchor,
                event,
                automatic,
                view,
            };
            self.unit_line(index, rule, &unit)?;
        }
        Ok(())
    }

    fn value(&self, amount: &Amount, anchor: Timestamp) -> Result<Valued, PolicyError> {
        let c = &self.facts.customer;
        let date = self.local_date(anchor);
        let cycle = self.cycle(anchor)?;
        let rate = |name: &str| self.policy.rate_on(name, date).map_err(AmountError::NoRate);
        let inputs = AmountInputs {
            price: Money::new(c.price_on(cycle.start_date), c.currency),
            cycle_days: i128::from(days_between(cycle.start_date, cycle.end_date)),
            rate: &rate,
        };
        amount.value(&inputs).map_err(|e| self.fail(e.to_string()))
    }

    fn round(&self, value: Ratio) -> Result<i64, PolicyError> {
        let minor = self.policy.rounding.divide(value.num(), value.den());
        i64::try_from(minor.max(0)).map_err(|_| self.fail("an amount is too large"))
    }

    fn money(&self, minor: i64) -> Money {
        Money::new(minor, self.facts.customer.currency)
    }

    /// One line for one unit, by a basis that pays per event.
    fn unit_line(&mut self, index: usize, rule: &Rule, unit: &Unit<'_>) -> Result<(), PolicyError> {
        let exp = self.facts.customer.currency.exponent();
        let (value, text) = match &rule.pay {
            Pay::Once { amount } => {
                let v = self.value(amount, unit.anchor)?;
                (v.value, format!("{}: {}: {}", rule.description, what(unit), v.text))
            }
            Pay::Periods { every, count, amount } => {
                let n = self.count_periods(unit, every, *count)?;
                if n == 0 {
                    let none = describe_count(0, every, *count);
                    self.notes.push(format!(
                        "{}: {}, {none}; nothing is paid.",
                        rule.description,
                        what(unit)
                    ));
                    return Ok(());
                }
                let v = self.value(amount, unit.anchor)?;
                let total = v.value.mul_int(i128::from(n)).map_err(|e| self.fail(e.to_string()))?;
                let periods = describe_count(n, every, *count);
                (
                    total,
                    format!(
                        "{}: {}, {periods}; {}",
                        rule.description,
                        what(unit),
                        times_text(n, &v, total, exp)
                    ),
                )
            }
            Pay::Deadline { deadline, first, then } => {
                match self.deadline(rule, unit, deadline, first, then)? {
                    Some(found) => found,
                    None => return Ok(()),
                }
            }
            Pay::DayTiers { tiers } => return self.day_tiers(index, rule, unit, tiers),
            Pay::Prorated | Pay::Availability { .. } => {
                unreachable!("per-cycle bases are handled by per_cycle")
            }
        };
        self.push_line(index, rule, unit.payable(), value, text, 0).map(drop)
    }

    fn push_line(
        &mut self,
        index: usize,
        rule: &Rule,
        payable: Payable,
        value: Ratio,
        text: String,
        already: i64,
    ) -> Result<i64, PolicyError> {
        let (value, text) = self.multiplied(rule, payable.view, value, text)?;
        let mut amount = self.round(value)?;
        let mut text = format!("{text}, {} to {}.", self.policy.rounding.describe(), self.money(amount));
        if let Some(cap) = &rule.cap {
            let cap_minor = self.round(self.value(cap, payable.anchor)?.value)?;
            let room = (cap_minor - already).max(0);
            if amount > room {
                text.push_str(&format!(" Capped at {} per event.", self.money(cap_minor)));
                amount = room;
            }
        }
        if amount == 0 {
            self.notes.push(format!("{text} Nothing is paid."));
            return Ok(0);
        }
        self.lines.push(Line {
            rule: rule.id.clone(),
            rule_index: index,
            events: payable.events,
            amount_minor: amount,
            automatic: payable.automatic,
            anchor: payable.anchor,
            seconds_out: payable.seconds_out,
            detail: Detail::Text(text),
            cap_note: None,
        });
        Ok(amount)
    }

    /// `value` times the rule's `multiply`, said in `text` when it is not 1.
    fn multiplied(
        &self,
        rule: &Rule,
        view: View,
        value: Ratio,
        text: String,
    ) -> Result<(Ratio, String), PolicyError> {
        let Some(e) = &rule.multiply else { return Ok((value, text)) };
        let factor = self.scope.with_event(view, |ctx| e.eval_int(ctx))?;
        if !(0..=MULTIPLY_MAX).contains(&factor) {
            return Err(self.fail(format!(
                "{}: multiply `{}` gave {factor}, outside 0..={MULTIPLY_MAX}",
                rule.id, e.source
            )));
        }
        if factor == 1 {
            return Ok((value, text));
        }
        let exp = self.facts.customer.currency.exponent();
        let product = value.mul_int(i128::from(factor)).map_err(|e| self.fail(e.to_string()))?;
        Ok((product, format!("{text}; x {factor} by `{}` = {}", e.source, product.show(exp))))
    }

    fn count_periods(&self, unit: &Unit<'_>, every: &Period, count: Count) -> Result<i64, PolicyError> {
        match (&unit.event.what, unit.counted) {
            (EventKind::Provision { promised, live }, _) => Ok(days_between(*promised, *live).max(0)),
            (_, Some(span)) => self.periods_in(span, every, count),
            _ => Ok(0),
        }
    }

    /// How many `every` periods `span` holds: whole ones, or every one begun.
    fn periods_in(&self, span: Interval, every: &Period, count: Count) -> Result<i64, PolicyError> {
        Ok(match (every, count) {
            (Period::Elapsed { seconds, .. }, Count::Complete) => span.seconds() / seconds,
            (Period::Elapsed { seconds, .. }, Count::Started) => (span.seconds() + seconds - 1) / seconds,
            (Period::CalendarDay, Count::Complete) => {
                let (first, end) = self.full_days(span)?;
                days_between(first, end).max(0)
            }
            (Period::CalendarDay, Count::Started) => {
                days_between(self.local_date(span.start()), self.last_local_date(span)) + 1
            }
            (Period::Elapsed { seconds, .. }, Count::AtLeast { seconds: least }) => {
                let d = span.seconds();
                d / seconds + i64::from(d % seconds >= least)
            }
            (Period::CalendarDay, Count::AtLeast { seconds: least }) => {
                let mut n = 0;
                let mut day = self.local_date(span.start());
                while day <= self.last_local_date(span) {
                    let next = day.tomorrow().map_err(|e| self.fail(e.to_string()))?;
                    let whole = Interval::new(self.day_start(day)?, self.day_start(next)?);
                    let within = whole.and_then(|w| w.clip(&span)).map_or(0, |i| i.seconds());
                    n += i64::from(within >= least);
                    day = next;
                }
                n
            }
        })
    }

    /// The customer's date of the last instant of `span`.
    fn last_local_date(&self, span: Interval) -> Date {
        self.local_date(span.end().checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap_or(span.end()))
    }

    /// The customer's full calendar days inside `span`: `[first, end)`.
    fn full_days(&self, span: Interval) -> Result<(Date, Date), PolicyError> {
        let start_date = self.local_date(span.start());
        let first = if self.day_start(start_date)? == span.start() {
            start_date
        } else {
            start_date.tomorrow().map_err(|e| self.fail(e.to_string()))?
        };
        Ok((first, self.local_date(span.end())))
    }

    fn report_date(&self, unit: &Unit<'_>) -> Option<Date> {
        unit.reported_at.map(|r| self.local_date(r))
    }

    fn deadline(
        &mut self,
        rule: &Rule,
        unit: &Unit<'_>,
        deadline: &Deadline,
        first: &Amount,
        then: &Option<(Amount, Period, Count)>,
    ) -> Result<Option<(Ratio, String)>, PolicyError> {
        let span = unit.counted.expect("deadlines apply to outages");
        let c = &self.facts.customer;
        let (due, due_text) = match deadline {
            Deadline::Elapsed { seconds, text } => {
                let due = span
                    .start()
                    .checked_add(jiff::SignedDuration::from_secs(*seconds))
                    .map_err(|e| self.fail(e.to_string()))?;
                (due, format!("Not restored within {text} of {}", describe_instant(span.start())))
            }
            Deadline::WorkingDaysAfterReport(n) | Deadline::CalendarDaysAfterReport(n) => {
                let Some(reported) = self.report_date(unit) else {
                    self.notes.push(format!(
                        "{}: outage {} was not reported.",
                        rule.description,
                        unit.events.join(", ")
                    ));
                    return Ok(None);
                };
                let (day, kind) = match deadline {
                    Deadline::WorkingDaysAfterReport(_) => (
                        self.policy
                            .calendar
                            .working_days_after(reported, *n, &c.jurisdiction)
                            .map_err(|m| self.fail(m))?,
                        "working",
                    ),
                    _ => (
                        reported
                            .checked_add(jiff::Span::new().days(i64::from(*n)))
                            .map_err(|e| self.fail(e.to_string()))?,
                        "calendar",
                    ),
                };
                let due = self.day_start(day.tomorrow().map_err(|e| self.fail(e.to_string()))?)?;
                let text = format!(
                    "reported {reported} ({}); due fixed by the end of {day} ({}), the {} {kind} day after",
                    weekday(reported),
                    weekday(day),
                    ordinal(*n)
                );
                (due, text)
            }
        };
        if span.end() <= due {
            self.notes.push(format!(
                "{}: outage {} ended within the deadline.",
                rule.description,
                unit.events.join(", ")
            ));
            return Ok(None);
        }
        let exp = c.currency.exponent();
        let fixed = format!("restored {}", describe_instant(span.end()));
        let first_v = self.value(first, unit.anchor)?;
        let Some((amount, every, count)) = then else {
            return Ok(Some((
                first_v.value,
                format!("{}: {due_text}; {fixed}: {}", rule.description, first_v.text),
            )));
        };
        let late = Interval::new(due, span.end()).expect("the end is after the deadline");
        let n = self.periods_in(late, every, *count)?;
        let then_v = self.value(amount, unit.anchor)?;
        let further = then_v.value.mul_int(i128::from(n)).map_err(|e| self.fail(e.to_string()))?;
        let total = first_v.value.plus(further).map_err(|e| self.fail(e.to_string()))?;
        let text = if first_v.value == then_v.value && first_v.text == then_v.text {
            format!(
                "{}: {due_text}; {fixed}: 1 payment for the missed deadline + {} = {}",
                rule.description,
                describe_count(n, every, *count),
                times_text(n + 1, &first_v, total, exp)
            )
        } else {
            format!(
                "{}: {due_text}; {fixed}: {} + {} x {} = {}",
                rule.description,
                first_v.factor(),
                describe_count(n, every, *count),
                then_v.factor(),
                total.show(exp)
            )
        };
        Ok(Some((total, text)))
    }

    fn day_tiers(
        &mut self,
        index: usize,
        rule: &Rule,
        unit: &Unit<'_>,
        tiers: &[(u32, Amount)],
    ) -> Result<(), PolicyError> {
        let span = unit.counted.expect("day tiers apply to outages");
        let Some(reported) = self.report_date(unit) else {
            self.notes.push(format!(
                "{}: outage {} was not reported.",
                rule.description,
                unit.events.join(", ")
            ));
            return Ok(());
        };
        let (first_full, end_full) = self.full_days(span)?;
        let exp = self.facts.customer.currency.exponent();
        let day = |n: u32| reported.checked_add(jiff::Span::new().days(i64::from(n)));
        // A rule's cap is per event: the tiers of one outage share it.
        let mut paid = 0;
        for (i, (from_day, amount)) in tiers.iter().enumerate() {
            let lo = day(*from_day).map_err(|e| self.fail(e.to_string()))?.max(first_full);
            let hi = match tiers.get(i + 1) {
                Some((next, _)) => day(*next).map_err(|e| self.fail(e.to_string()))?.min(end_full),
                None => end_full,
            };
            let n = days_between(lo, hi);
            if n <= 0 {
                continue;
            }
            let v = self.value(amount, unit.anchor)?;
            let total = v.value.mul_int(i128::from(n)).map_err(|e| self.fail(e.to_string()))?;
            let last = hi.yesterday().map_err(|e| self.fail(e.to_string()))?;
            let first_n = days_between(reported, lo);
            let last_n = days_between(reported, last);
            let days = if n == 1 {
                format!("day {first_n} ({lo})")
            } else {
                format!("days {first_n} to {last_n} ({lo} to {last})")
            };
            let text = format!(
                "{}: reported {reported}; full {days} after the report without service: {}",
                rule.description,
                times_text(n, &v, total, exp)
            );
            paid += self.push_line(index, rule, unit.payable(), total, text, paid)?;
        }
        Ok(())
    }

    /// Prorated and availability rules: one line per billing cycle (and per automatic or
    /// on-request), over every counted episode in it.
    fn per_cycle(&mut self, index: usize, rule: &Rule, units: &[Unit<'_>]) -> Result<(), PolicyError> {
        struct Group {
            cycle: BillingCycle,
            automatic: bool,
            pieces: Vec<Interval>,
            events: Vec<Arc<str>>,
            seconds: i64,
        }
        let c = &self.facts.customer;
        let mut groups: Vec<Group> = Vec::new();
        for unit in units {
            let span = unit.counted.expect("per-cycle bases apply to outages");
            let split = split_by_cycle(span, c.billing_day, &c.zone).map_err(|e| self.fail(e.to_string()))?;
            for (cycle, part) in split {
                let found =
                    groups.iter_mut().find(|g| g.cycle.start == cycle.start && g.automatic == unit.automatic);
                let group = match found {
                    Some(g) => g,
                    None => {
                        groups.push(Group {
                            cycle,
                            automatic: unit.automatic,
                            pieces: Vec::new(),
                            events: Vec::new(),
                            seconds: 0,
                        });
                        groups.last_mut().expect("just pushed")
                    }
                };
                group.pieces.push(part);
                group.seconds += part.seconds();
                for e in unit.events {
                    if !group.events.contains(e) {
                        group.events.push(e.clone());
                    }
                }
            }
        }
        for g in groups {
            let price = Money::new(c.price_on(g.cycle.start_date), c.currency);
            match &rule.pay {
                Pay::Prorated => {
                    let numerator = i128::from(price.minor) * i128::from(g.seconds);
                    let value = Ratio::new(numerator, i128::from(g.cycle.seconds()))
                        .ok_or_else(|| self.fail("an empty billing cycle"))?;
                    let amount_minor = self.round(value)?;
                    let detail = ProratedDetail {
                        pieces: g.pieces,
                        seconds: g.seconds,
                        cycle: g.cycle,
                        price,
                        rounding: self.policy.rounding,
                    };
                    if amount_minor == 0 {
                        self.notes.push(format!("{} Nothing is paid.", detail.explain(0)));
                        continue;
                    }
                    self.lines.push(Line {
                        rule: rule.id.clone(),
                        rule_index: index,
                        events: g.events,
                        amount_minor,
                        automatic: g.automatic,
                        anchor: g.cycle.start,
                        seconds_out: Some(g.seconds),
                        detail: Detail::Prorated(Box::new(detail)),
                        cap_note: None,
                    });
                }
                Pay::Availability { tiers } => {
                    let cycle_seconds = i128::from(g.cycle.seconds());
                    let up = Ratio::new(cycle_seconds - i128::from(g.seconds), cycle_seconds)
                        .ok_or_else(|| self.fail("an empty billing cycle"))?;
                    let tier = tiers.iter().find(|t| up.compare(t.below) == Ok(std::cmp::Ordering::Less));
                    let (used, total, unit) = span_pair(g.seconds, g.cycle.seconds());
                    let availability = format_quotient(up.num() * 100, up.den(), 0, 4);
                    let Some(tier) = tier else {
                        self.notes.push(format!(
                            "{}: availability {availability}% in the billing cycle starting {} is not below any tier.",
                            rule.description, g.cycle.start_date
                        ));
                        continue;
                    };
                    let v = self.value(&tier.amount, g.cycle.start)?;
                    let text = format!(
                        "{}: {used} {unit} without service in the {total}-{unit} billing cycle starting {}, availability {availability}%, below {}%: {}",
                        rule.description, g.cycle.start_date, tier.below_text, v.text
                    );
                    let payable = Payable {
                        events: g.events,
                        automatic: g.automatic,
                        anchor: g.cycle.start,
                        seconds_out: Some(g.seconds),
                        view: View::None,
                    };
                    self.push_line(index, rule, payable, v.value, text, 0)?;
                }
                _ => unreachable!("only per-cycle bases come here"),
            }
        }
        Ok(())
    }

    /// Caps per billing cycle or calendar year, over the lines in the order they were made.
    fn apply_period_caps(&mut self) -> Result<(), PolicyError> {
        for cap in &self.policy.caps {
            let mut used: Vec<(Date, i64)> = Vec::new();
            for i in 0..self.lines.len() {
                let line = &self.lines[i];
                if !cap.rules.is_empty() && !cap.rules.contains(&line.rule_index) {
                    continue;
                }
                let (key, period) = match cap.per {
                    CapPeriod::BillingCycle => {
                        let cycle = self.cycle(line.anchor)?;
                        (cycle.start_date, format!("the billing cycle starting {}", cycle.start_date))
                    }
                    CapPeriod::CalendarYear => {
                        let year = self.local_date(line.anchor).year();
                        (Date::new(year, 1, 1).map_err(|e| self.fail(e.to_string()))?, format!("{year}"))
                    }
                };
                let limit = self.round(self.value(&cap.amount, line.anchor)?.value)?;
                let slot = match used.iter().position(|(k, _)| *k == key) {
                    Some(p) => p,
                    None => {
                        used.push((key, 0));
                        used.len() - 1
                    }
                };
                let room = (limit - used[slot].1).max(0);
                let line = &mut self.lines[i];
                if line.amount_minor > room {
                    let note = format!(
                        "Capped at {} for {period}: {} of it paid.",
                        Money::new(limit, self.facts.customer.currency),
                        Money::new(room, self.facts.customer.currency)
                    );
                    line.cap_note = Some(note);
                    line.amount_minor = room;
                }
                used[slot].1 += line.amount_minor;
            }
        }
        Ok(())
    }
}

/// What a line pays for, as the auditor reads it: every instant in UTC. An outage counted
/// from later than it began (`counted_from`) shows both.
fn what(unit: &Unit<'_>) -> String {
    match (&unit.event.what, unit.counted) {
        (EventKind::Appointment { window, outcome, cancelled }, _) => {
            let how = match (outcome, cancelled) {
                (Outcome::NoShow, _) => "missed (no-show)".to_string(),
                (Outcome::Cancelled, Some((at, by))) => {
                    let by = match by {
                        Party::Provider => "the provider",
                        Party::Customer => "the customer",
                    };
                    format!("cancelled by {by} at {}", describe_instant(*at))
                }
                _ => "kept".to_string(),
            };
            format!("appointment {} on {} {how}", unit.event.id, describe_instant(window.start()))
        }
        (EventKind::Provision { promised, live }, _) => {
            format!(
                "service promised for {promised} ({}) went live {live} ({})",
                weekday(*promised),
                weekday(*live)
            )
        }
        (_, Some(counted)) => match unit.outage {
            Some(outage) if outage != counted => {
                format!(
                    "outage {}, counted from {}",
                    describe_interval(outage),
                    describe_instant(counted.start())
                )
            }
            _ => format!("outage {}", describe_interval(counted)),
        },
        _ => String::new(),
    }
}

fn describe_count(n: i64, every: &Period, count: Count) -> String {
    let plural = |word: &str| if n == 1 { word.to_string() } else { format!("{word}s") };
    match (every, count) {
        (Period::CalendarDay, Count::Complete) => format!("{n} full {}", plural("day")),
        (Period::CalendarDay, Count::Started) => format!("{n} calendar {}", plural("day")),
        (Period::Elapsed { text, .. }, Count::Complete) => {
            format!("{n} complete {text} {}", plural("period"))
        }
        (Period::Elapsed { text, .. }, Count::Started) => {
            format!("{n} {text} {} or part thereof", plural("period"))
        }
        (Period::CalendarDay, Count::AtLeast { seconds }) => {
            format!("{n} calendar {} with at least {} without service", plural("day"), compact(seconds))
        }
        (Period::Elapsed { text, .. }, Count::AtLeast { seconds }) => {
            format!("{n} {text} {} with at least {} without service", plural("period"), compact(seconds))
        }
    }
}

/// A duration as a policy writes it: `4h`, `1h30m`, `90s`.
fn compact(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut text = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            text.push_str(&format!("{n}{unit}"));
        }
    }
    text
}

/// An instant in UTC, to the minute, or to the second when it is not on a whole minute.
fn describe_instant(t: Timestamp) -> String {
    let z = t.to_zoned(TimeZone::UTC);
    format!("{} {} UTC", z.date(), clock_time(&z, t.as_second() % 60 != 0))
}

fn clock_time(z: &jiff::Zoned, seconds: bool) -> String {
    z.strftime(if seconds { "%H:%M:%S" } else { "%H:%M" }).to_string()
}

/// `n` times a value: `3 x 1.00 = 3.00`; a worked value in parentheses, `3 x (1/30 of
/// 79.99 = 2.666333...) = 7.998999...`, and alone when once (never the same figure twice).
fn times_text(n: i64, v: &Valued, total: Ratio, exp: u8) -> String {
    let worked = v.factor() != v.text;
    if n == 1 && worked { v.text.clone() } else { format!("{n} x {} = {}", v.factor(), total.show(exp)) }
}

fn weekday(d: Date) -> &'static str {
    use jiff::civil::Weekday::*;
    match d.weekday() {
        Monday => "Mon",
        Tuesday => "Tue",
        Wednesday => "Wed",
        Thursday => "Thu",
        Friday => "Fri",
        Saturday => "Sat",
        Sunday => "Sun",
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
