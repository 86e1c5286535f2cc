//! The policy language: TOML read into checked types. Everything a policy says is checked
//! here, once, when it is loaded, and every problem names the file, line and column, so
//! evaluation never meets a malformed rule.

use super::amount::{Amount, AmountSpec};
use super::calendar::{BusinessCalendar, CalendarSpec};
use super::expr::{Expr, ExprError};
use crate::money::{Currency, Rounding};
use jiff::civil::Date;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use toml::Spanned;

pub const RULES_MAX: usize = 64;
pub const RATE_PERIODS_MAX: usize = 200;
pub const TIERS_MAX: usize = 20;
pub const POLICY_BYTES_MAX: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A problem at a place in the policy file.
    #[error("{file}:{line}:{column}: {message}")]
    At { file: String, line: usize, column: usize, message: String },
    /// A problem while evaluating a (valid) policy against facts.
    #[error("policy {policy}: {message}")]
    Eval { policy: String, message: String },
}

impl PolicyError {
    pub fn eval(policy: &str, message: impl Into<String>) -> PolicyError {
        PolicyError::Eval { policy: policy.to_string(), message: message.into() }
    }
}

/// A compiled policy, ready to evaluate. Cheap to clone (rules are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: String,
    pub version: u32,
    pub description: Option<String>,
    pub currency: Option<Currency>,
    pub rounding: Rounding,
    pub when: Option<Expr>,
    pub only_segments: Vec<String>,
    pub exclude_segments: Vec<String>,
    pub calendar: BusinessCalendar,
    pub rates: Vec<RatePeriod>,
    pub rules: Arc<[Rule]>,
    pub caps: Vec<PeriodCap>,
    /// Whether any expression reads the facts: evaluation skips building CEL values if not.
    pub uses_expressions: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatePeriod {
    pub from: Date,
    /// Exclusive; `None` runs until the next period's `from`, or for ever.
    pub until: Option<Date>,
    pub amounts: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKindName {
    Outage,
    Appointment,
    Provision,
}

/// Which date of an event chooses the rates in force ("the date the issue arose").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateDate {
    Start,
    Reported,
    WindowStart,
    Promised,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Automatic {
    Always(bool),
    When(Expr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: String,
    pub event: EventKindName,
    pub when: Option<Expr>,
    pub automatic: Automatic,
    pub rate_date: RateDate,
    /// Outages shorter than this (elapsed, whole episode) earn nothing under this rule.
    pub min_duration_seconds: i64,
    /// The counted part of an outage starts no earlier than this instant.
    pub counted_from: Option<Expr>,
    /// Indices of earlier rules: this rule pays for an event only if one of them did.
    pub only_with: Vec<usize>,
    /// The most this rule pays per event.
    pub cap: Option<Amount>,
    /// A whole factor from an expression (`customer.attributes.medical_priority ? 2 : 1`),
    /// applied to the line's exact value before its one rounding: an amount that depends
    /// on the facts without mirrored rules. 0 to [`MULTIPLY_MAX`].
    pub multiply: Option<Expr>,
    pub pay: Pay,
}

/// The largest factor `multiply` may give.
pub const MULTIPLY_MAX: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    /// Every period begun counts ("per 24 hours or part thereof").
    #[default]
    Started,
    /// Only whole periods count ("for each further complete 12 hours").
    Complete,
    /// Each period in which the outage lasts at least this many seconds counts ("each
    /// 24-hour period in which the outage lasts at least 4 hours"): one count, one
    /// rounding, and exactly the threshold counts.
    AtLeast { seconds: i64 },
}

/// `count` as written: `"started"`, `"complete"` or `{ at_least = "4h" }`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum CountToml {
    Word(String),
    AtLeast { at_least: String },
}

impl Default for CountToml {
    fn default() -> Self {
        CountToml::Word("started".into())
    }
}

impl CountToml {
    fn check(&self, every: &Period) -> Result<Count, String> {
        match self {
            CountToml::Word(w) if w == "started" => Ok(Count::Started),
            CountToml::Word(w) if w == "complete" => Ok(Count::Complete),
            CountToml::Word(w) => {
                Err(format!("count {w:?} is not one of \"started\", \"complete\" or {{ at_least = \"4h\" }}"))
            }
            CountToml::AtLeast { at_least } => {
                let seconds = duration(at_least)?;
                let longest = match every {
                    Period::Elapsed { seconds, .. } => *seconds,
                    Period::CalendarDay => 23 * 3600,
                };
                if seconds > longest {
                    return Err(format!(
                        "count at_least {at_least:?} is longer than the period it is counted in"
                    ));
                }
                Ok(Count::AtLeast { seconds })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    Elapsed { seconds: i64, text: String },
    CalendarDay,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deadline {
    /// Elapsed time from the (counted) start.
    Elapsed { seconds: i64, text: String },
    /// The end of the Nth working day after the day of the report.
    WorkingDaysAfterReport(u32),
    /// The end of the Nth calendar day after the day of the report.
    CalendarDaysAfterReport(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pay {
    Prorated,
    Once {
        amount: Amount,
    },
    Periods {
        every: Period,
        count: Count,
        amount: Amount,
    },
    Deadline {
        deadline: Deadline,
        first: Amount,
        then: Option<(Amount, Period, Count)>,
    },
    /// Full calendar days of outage numbered from the day of the report (day 0).
    DayTiers {
        tiers: Vec<(u32, Amount)>,
    },
    /// Percentage tiers by availability over each billing cycle, lowest `below` first.
    Availability {
        tiers: Vec<AvailabilityTier>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityTier {
    /// Availability (a fraction, not a percentage) under which this tier applies.
    pub below: super::amount::Ratio,
    pub below_text: String,
    pub amount: Amount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapPeriod {
    BillingCycle,
    CalendarYear,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCap {
    pub per: CapPeriod,
    pub amount: Amount,
    /// Rule indices the cap covers; empty means all.
    pub rules: Vec<usize>,
}

// ---- the file format ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    id: Spanned<String>,
    version: Spanned<u32>,
    description: Option<String>,
    currency: Option<Spanned<String>>,
    #[serde(default)]
    rounding: Rounding,
    when: Option<Spanned<String>>,
    #[serde(default)]
    only_segments: Vec<String>,
    #[serde(default)]
    exclude_segments: Vec<String>,
    calendar: Option<Spanned<CalendarSpec>>,
    #[serde(default)]
    rates: Vec<Spanned<RatesToml>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleToml>>,
    #[serde(default)]
    caps: Vec<Spanned<CapToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesToml {
    from: String,
    until: Option<String>,
    amounts: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AutomaticToml {
    Always(bool),
    When(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    id: String,
    description: Option<String>,
    event: EventKindName,
    when: Option<Spanned<String>>,
    automatic: Option<Spanned<AutomaticToml>>,
    rate_date: Option<RateDate>,
    min_duration: Option<String>,
    counted_from: Option<Spanned<String>>,
    #[serde(default)]
    only_with: Vec<String>,
    cap: Option<AmountSpec>,
    multiply: Option<Spanned<String>>,
    pay: PayToml,
}

#[derive(Deserialize)]
#[serde(tag = "basis", rename_all = "kebab-case", deny_unknown_fields)]
enum PayToml {
    Prorated {},
    Once {
        amount: AmountSpec,
    },
    Periods {
        every: String,
        #[serde(default)]
        count: CountToml,
        amount: AmountSpec,
    },
    Deadline {
        deadline: DeadlineToml,
        first: AmountSpec,
        then: Option<AmountSpec>,
        every: Option<String>,
        #[serde(default = "complete")]
        count: CountToml,
    },
    DayTiers {
        tiers: Vec<DayTierToml>,
    },
    Availability {
        tiers: Vec<AvailabilityTierToml>,
    },
}

fn complete() -> CountToml {
    CountToml::Word("complete".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadlineToml {
    after: Option<String>,
    working_days_after_report: Option<u32>,
    calendar_days_after_report: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayTierToml {
    from_day: u32,
    amount: AmountSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityTierToml {
    below_percent: String,
    amount: AmountSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapToml {
    per: CapPeriod,
    amount: AmountSpec,
    #[serde(default)]
    rules: Vec<String>,
}

// ---- checking ---------------------------------------------------------------------------

/// Positions in the policy text, for errors.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn at(&self, offset: usize, message: impl Into<String>) -> PolicyError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        PolicyError::At { file: self.file.to_string(), line, column, message: message.into() }
    }

    fn span<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> PolicyError {
        self.at(s.span().start, message)
    }

    /// An expression error inside a TOML string: the string's own position, moved by the
    /// expression's line and column.
    fn expr(&self, s: &Spanned<String>, what: &str, e: ExprError) -> PolicyError {
        let quote = 1 + usize::from(
            self.text[s.span().start..].starts_with("'''")
                || self.text[s.span().start..].starts_with("\"\"\""),
        ) * 2;
        let base = s.span().start + quote;
        let mut offset = base;
        for _ in 1..e.line {
            offset = self.text[offset..].find('\n').map_or(offset, |i| offset + i + 1);
        }
        self.at(offset + e.column.saturating_sub(1), format!("{what}: {}", e.message))
    }
}

/// `12h`, `30m`, `1h 30m`: jiff's friendly durations, in hours, minutes and seconds
/// (elapsed time; a "day" of calendar time is `calendar-day`, not a duration).
fn duration(text: &str) -> Result<i64, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like \"12h\", \"30m\" or \"1h 30m\")"))?;
    let seconds = d.as_secs();
    if seconds <= 0 || d.subsec_nanos() != 0 || seconds > 366 * 86_400 {
        return Err(format!("{text:?} must be a positive whole number of seconds, at most 366 days"));
    }
    Ok(seconds)
}

fn period(text: &str) -> Result<Period, String> {
    if text == "calendar-day" {
        Ok(Period::CalendarDay)
    } else {
        Ok(Period::Elapsed { seconds: duration(text)?, text: text.to_string() })
    }
}

fn date(text: &str, field: &str) -> Result<Date, String> {
    text.parse().map_err(|_| format!("{field} {text:?} is not a date (YYYY-MM-DD)"))
}

const CUSTOMER: &[&str] = &["customer"];
const CUSTOMER_AND_EVENT: &[&str] = &["customer", "event"];

impl Policy {
    /// Whether whatever this policy pays for an outage is paid without a claim: every
    /// outage rule is `automatic = true` (a rule paid on request, or automatic only under a
    /// condition, makes it false). What a notice may promise rests on it.
    pub fn pays_outages_automatically(&self) -> bool {
        self.rules
            .iter()
            .filter(|r| r.event == EventKindName::Outage)
            .all(|r| matches!(r.automatic, Automatic::Always(true)))
    }

    /// Parses and checks a policy; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let src = Source { file, text };
        if text.len() > POLICY_BYTES_MAX {
            return Err(src.at(0, format!("the file is larger than {POLICY_BYTES_MAX} bytes")));
        }
        let doc: PolicyToml = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            src.at(offset, e.message().trim_end().to_string())
        })?;
        let id = doc.id.get_ref();
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(src.span(&doc.id, "id must be 1 to 64 letters, digits, '-' or '_'"));
        }
        if *doc.version.get_ref() == 0 {
            return Err(src.span(&doc.version, "version must be 1 or more"));
        }
        let currency = match &doc.currency {
            Some(c) => Some(Currency::parse(c.get_ref()).map_err(|e| src.span(c, e.to_string()))?),
            None => None,
        };
        let when = match &doc.when {
            Some(w) => Some(
                Expr::compile(w.get_ref(), CUSTOMER)
                    .map_err(|e| src.expr(w, &format!("policy {id}: when"), e))?,
            ),
            None => None,
        };
        let calendar = match &doc.calendar {
            Some(c) => {
                BusinessCalendar::check(c.get_ref()).map_err(|m| src.span(c, format!("calendar: {m}")))?
            }
            None => BusinessCalendar::default(),
        };
        let rates = rate_periods(&src, &doc.rates)?;
        let rate_names: Vec<String> = rates.iter().flat_map(|r| r.amounts.keys().cloned()).collect();
        let rate_known = |name: &str| rate_names.iter().any(|n| n == name);
        if doc.rules.is_empty() || doc.rules.len() > RULES_MAX {
            return Err(src.at(0, format!("a policy needs 1 to {RULES_MAX} [[rules]]")));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(doc.rules.len());
        for spanned in &doc.rules {
            let rule = rule(&src, id, spanned, &rules, &rate_known)?;
            rules.push(rule);
        }
        let caps = doc
            .caps
            .iter()
            .map(|c| {
                let spec = c.get_ref();
                let amount =
                    Amount::check(&spec.amount, &rate_known).map_err(|m| src.span(c, format!("cap: {m}")))?;
                let rules = spec
                    .rules
                    .iter()
                    .map(|name| {
                        rules
                            .iter()
                            .position(|r| &*r.id == name)
                            .ok_or_else(|| src.span(c, format!("cap: no rule {name:?}")))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(PeriodCap { per: spec.per, amount, rules })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        check_rates_cover(&src, &doc, &rates, &rules, &caps)?;
        let uses_expressions = when.is_some()
            || rules.iter().any(|r| {
                r.when.is_some()
                    || r.counted_from.is_some()
                    || r.multiply.is_some()
                    || matches!(r.automatic, Automatic::When(_))
            });
        let policy = Policy {
            id: id.clone(),
            version: *doc.version.get_ref(),
            description: doc.description,
            currency,
            rounding: doc.rounding,
            when,
            only_segments: doc.only_segments,
            exclude_segments: doc.exclude_segments,
            calendar,
            rates,
            rules: rules.into(),
            caps,
            uses_expressions,
        };
        Ok(policy)
    }

    /// The rate `name` in force on `date`.
    pub fn rate_on(&self, name: &str, date: Date) -> Result<i64, String> {
        // The latest period begun by `date`, if it has not ended: an open period runs only
        // until the next one begins, so a closed later period is never bridged by an
        // earlier open one.
        let period = self
            .rates
            .iter()
            .rev()
            .find(|p| p.from <= date)
            .filter(|p| p.until.is_none_or(|u| date < u))
            .ok_or_else(|| format!("no rates are in force on {date}"))?;
        period
            .amounts
            .get(name)
            .copied()
            .ok_or_else(|| format!("rate {name:?} is not set for {}", period.from))
    }
}

fn rate_periods(src: &Source<'_>, raw: &[Spanned<RatesToml>]) -> Result<Vec<RatePeriod>, PolicyError> {
    if raw.len() > RATE_PERIODS_MAX {
        return Err(src.at(0, format!("at most {RATE_PERIODS_MAX} [[rates]] periods")));
    }
    let mut periods: Vec<(RatePeriod, &Spanned<RatesToml>)> = Vec::with_capacity(raw.len());
    for spanned in raw {
        let r = spanned.get_ref();
        let from = date(&r.from, "from").map_err(|m| src.span(spanned, m))?;
        let until =
            r.until.as_deref().map(|u| date(u, "until")).transpose().map_err(|m| src.span(spanned, m))?;
        if until.is_some_and(|u| u <= from) {
            return Err(src.span(spanned, "rates: `until` must be after `from`"));
        }
        if let Some((name, v)) =
            r.amounts.iter().find(|(_, v)| !(0..=super::amount::AMOUNT_MINOR_MAX).contains(*v))
        {
            return Err(src.span(spanned, format!("rates: {name} = {v} is out of range")));
        }
        periods.push((RatePeriod { from, until, amounts: r.amounts.clone() }, spanned));
    }
    periods.sort_by_key(|(p, _)| p.from);
    for pair in periods.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        if a.from == b.from || a.until.is_some_and(|u| u > b.from) {
            return Err(src.span(
                pair[1].1,
                format!("rates: the period from {} overlaps the period from {}", b.from, a.from),
            ));
        }
    }
    Ok(periods.into_iter().map(|(p, _)| p).collect())
}

/// Every rate a rule or cap reads must be set in every rate period, so that evaluation can
/// only fail for a date outside all periods, never for a half-filled table.
fn check_rates_cover(
    src: &Source<'_>,
    doc: &PolicyToml,
    rates: &[RatePeriod],
    rules: &[Rule],
    caps: &[PeriodCap],
) -> Result<(), PolicyError> {
    for (rule, spanned) in rules.iter().zip(&doc.rules) {
        let mut names = Vec::new();
        for amount in rule_amounts(rule).into_iter().chain(caps.iter().map(|c| &c.amount)) {
            amount.rates(&mut names);
        }
        for name in names {
            if let Some(p) = rates.iter().find(|p| !p.amounts.contains_key(name)) {
                return Err(src.span(
                    spanned,
                    format!("rule {}: rate {name:?} is missing from the period from {}", rule.id, p.from),
                ));
            }
        }
    }
    Ok(())
}

fn rule_amounts(rule: &Rule) -> Vec<&Amount> {
    let mut out: Vec<&Amount> = rule.cap.iter().collect();
    match &rule.pay {
        Pay::Prorated => {}
        Pay::Once { amount } | Pay::Periods { amount, .. } => out.push(amount),
        Pay::Deadline { first, then, .. } => {
            out.push(first);
            out.extend(then.as_ref().map(|(a, _, _)| a));
        }
        Pay::DayTiers { tiers } => out.extend(tiers.iter().map(|(_, a)| a)),
        Pay::Availability { tiers } => out.extend(tiers.iter().map(|t| &t.amount)),
    }
    out
}

fn rule(
    src: &Source<'_>,
    policy: &str,
    spanned: &Spanned<RuleToml>,
    earlier: &[Rule],
    rate_known: &dyn Fn(&str) -> bool,
) -> Result<Rule, PolicyError> {
    let r = spanned.get_ref();
    let bad = |m: String| src.span(spanned, format!("rule {:?}: {m}", r.id));
    if r.id.is_empty() || r.id.len() > 64 {
        return Err(bad("id must be 1 to 64 characters".into()));
    }
    if earlier.iter().any(|e| *e.id == *r.id) {
        return Err(bad("another rule has this id".into()));
    }
    // An expression's errors name the policy and the rule: its limits are per expression.
    let what = |key: &str| format!("policy {policy}, rule {:?}: {key}", r.id);
    let amount = |spec: &AmountSpec| Amount::check(spec, rate_known).map_err(&bad);
    let amount_text = |spec: &AmountSpec| Amount::check(spec, rate_known);
    let when = match &r.when {
        Some(w) => {
            Some(Expr::compile(w.get_ref(), CUSTOMER_AND_EVENT).map_err(|e| src.expr(w, &what("when"), e))?)
        }
        None => None,
    };
    let automatic = match &r.automatic {
        None => Automatic::Always(true),
        Some(a) => match a.get_ref() {
            AutomaticToml::Always(b) => Automatic::Always(*b),
            AutomaticToml::When(source) => Automatic::When(
                Expr::compile(source, CUSTOMER_AND_EVENT)
                    .map_err(|e| src.at(a.span().start, format!("{}: {}", what("automatic"), e.message)))?,
            ),
        },
    };
    let counted_from = match &r.counted_from {
        Some(c) if r.event == EventKindName::Outage => Some(
            Expr::compile(c.get_ref(), CUSTOMER_AND_EVENT)
                .map_err(|e| src.expr(c, &what("counted_from"), e))?,
        ),
        Some(c) => return Err(src.span(c, "counted_from applies to outages only")),
        None => None,
    };
    let pay = pay(&r.pay, r.event, &amount_text).map_err(&bad)?;
    let multiply = match (&r.multiply, &pay) {
        (Some(m), Pay::Prorated) => {
            return Err(
                src.span(m, "multiply does not apply to prorated lines (a fraction of the price already)")
            );
        }
        // Availability is judged over a whole billing cycle, not one event.
        (Some(m), Pay::Availability { .. }) => {
            Some(Expr::compile(m.get_ref(), CUSTOMER).map_err(|e| src.expr(m, &what("multiply"), e))?)
        }
        (Some(m), _) => Some(
            Expr::compile(m.get_ref(), CUSTOMER_AND_EVENT).map_err(|e| src.expr(m, &what("multiply"), e))?,
        ),
        (None, _) => None,
    };
    if r.cap.is_some() && matches!(pay, Pay::Prorated | Pay::Availability { .. }) {
        return Err(bad("`cap` is per event; prorated and availability lines are per billing cycle: use [[caps]] per = \"billing-cycle\"".into()));
    }
    if matches!(pay, Pay::Availability { .. })
        && matches!(r.automatic.as_ref().map(|a| a.get_ref()), Some(AutomaticToml::When(_)))
    {
        return Err(bad(
            "availability is over the whole billing cycle: `automatic` must be true or false".into()
        ));
    }
    let rate_date = r.rate_date.unwrap_or(match r.event {
        EventKindName::Outage => RateDate::Start,
        EventKindName::Appointment => RateDate::WindowStart,
        EventKindName::Provision => RateDate::Promised,
    });
    let fits = match rate_date {
        RateDate::Start | RateDate::Reported => r.event == EventKindName::Outage,
        RateDate::WindowStart => r.event == EventKindName::Appointment,
        RateDate::Promised => r.event == EventKindName::Provision,
    };
    if !fits {
        return Err(bad(format!("rate_date {rate_date:?} does not fit {:?} events", r.event)));
    }
    let min_duration_seconds = match &r.min_duration {
        Some(_) if r.event != EventKindName::Outage => {
            return Err(bad("min_duration applies to outages only".into()));
        }
        Some(text) => duration(text).map_err(&bad)?,
        None => 0,
    };
    let only_with = r
        .only_with
        .iter()
        .map(|name| {
            earlier
                .iter()
                .position(|e| &*e.id == name)
                .ok_or_else(|| bad(format!("only_with names {name:?}, which is not an earlier rule")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        id: r.id.as_str().into(),
        description: r.description.clone().unwrap_or_else(|| r.id.clone()),
        event: r.event,
        when,
        automatic,
        rate_date,
        min_duration_seconds,
        counted_from,
        only_with,
        cap: r.cap.as_ref().map(amount).transpose()?,
        multiply,
        pay,
    })
}

fn pay(
    p: &PayToml,
    event: EventKindName,
    amount: &dyn Fn(&AmountSpec) -> Result<Amount, String>,
) -> Result<Pay, String> {
    let outage_only = |basis: &str| {
        if event == EventKindName::Outage {
            Ok(())
        } else {
            Err(format!("basis {basis:?} applies to outages only"))
        }
    };
    Ok(match p {
        PayToml::Prorated {} => {
            outage_only("prorated")?;
            Pay::Prorated
        }
        PayToml::Once { amount: a } => Pay::Once { amount: amount(a)? },
        PayToml::Periods { every, count, amount: a } => {
            let every = period(every)?;
            match (event, &every) {
                (EventKindName::Appointment, _) => {
                    return Err("basis \"periods\" does not apply to appointments".into());
                }
                (EventKindName::Provision, Period::Elapsed { .. }) => {
                    return Err("a provision is counted in calendar days: every = \"calendar-day\"".into());
                }
                _ => {}
            }
            let count = count.check(&every)?;
            Pay::Periods { every, count, amount: amount(a)? }
        }
        PayToml::Deadline { deadline, first, then, every, count } => {
            outage_only("deadline")?;
            let deadline = match (
                deadline.after.as_deref(),
                deadline.working_days_after_report,
                deadline.calendar_days_after_report,
            ) {
                (Some(after), None, None) => {
                    Deadline::Elapsed { seconds: duration(after)?, text: after.to_string() }
                }
                (None, Some(n), None) if (1..=super::calendar::WORKING_DAYS_MAX).contains(&n) => {
                    Deadline::WorkingDaysAfterReport(n)
                }
                (None, None, Some(n)) if (1..=366).contains(&n) => Deadline::CalendarDaysAfterReport(n),
                _ => {
                    return Err("deadline takes exactly one of after = \"12h\", working_days_after_report = N (1..=60) or calendar_days_after_report = N (1..=366)".into());
                }
            };
            let then = match (then, every) {
                (Some(a), Some(e)) => {
                    let every = period(e)?;
                    let count = count.check(&every)?;
                    Some((amount(a)?, every, count))
                }
                (None, None) => None,
                _ => return Err("`then` and `every` go together".into()),
            };
            Pay::Deadline { deadline, first: amount(first)?, then }
        }
        PayToml::DayTiers { tiers } => {
            outage_only("day-tiers")?;
            if tiers.is_empty() || tiers.len() > TIERS_MAX {
                return Err(format!("day-tiers needs 1 to {TIERS_MAX} tiers"));
            }
            if tiers.windows(2).any(|w| w[0].from_day >= w[1].from_day) {
                return Err("day-tiers must be in increasing order of from_day".into());
            }
            Pay::DayTiers {
                tiers: tiers
                    .iter()
                    .map(|t| Ok((t.from_day, amount(&t.amount)?)))
                    .collect::<Result<_, String>>()?,
            }
        }
        PayToml::Availability { tiers } => {
            outage_only("availability")?;
            if tiers.is_empty() || tiers.len() > TIERS_MAX {
                return Err(format!("availability needs 1 to {TIERS_MAX} tiers"));
            }
            let mut out = Vec::with_capacity(tiers.len());
            for t in tiers {
                let percent = super::amount::Ratio::parse_decimal(&t.below_percent)
                    .filter(|p| p.compare(super::amount::Ratio::int(100)) != Ok(std::cmp::Ordering::Greater))
                    .ok_or_else(|| {
                        format!("below_percent {:?} is not a decimal from 0 to 100", t.below_percent)
                    })?;
                let below = percent
                    .times(super::amount::Ratio::new(1, 100).expect("non-zero"))
                    .map_err(|e| e.to_string())?;
                out.push(AvailabilityTier {
                    below,
                    below_text: t.below_percent.clone(),
                    amount: amount(&t.amount)?,
                });
            }
            // The lowest threshold that applies wins: try them from the lowest up.
            out.sort_by(|a, b| a.below.compare(b.below).unwrap_or(std::cmp::Ordering::Equal));
            Pay::Availability { tiers: out }
        }
    })
}
