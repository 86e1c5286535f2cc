use super::*;
use crate::money::Currency;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use std::sync::Arc;

const OFCOM: &str = include_str!("../../../../policies/uk-ofcom-automatic-compensation.toml");
const OFGEM: &str = include_str!("../../../../policies/uk-ofgem-power-cuts.toml");
const NY: &str = include_str!("../../../../policies/us-ny-psc-outage-credit.toml");
const TKG: &str = include_str!("../../../../policies/de-tkg-58.toml");
const DAYS: &str = include_str!("../../../../policies/days-of-service.toml");
const FLAT: &str = include_str!("../../../../policies/flat-per-account.toml");
const SLA: &str = include_str!("../../../../policies/sla-tiers.toml");

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::from_toml("test.toml", text).unwrap()
}

fn customer(zone: &str, currency: &str, price: i64) -> CustomerFacts {
    CustomerFacts {
        id: "C1".into(),
        segment: "residential".into(),
        jurisdiction: "GB-EAW".into(),
        zone_name: zone.into(),
        zone: TimeZone::get(zone).unwrap(),
        currency: Currency::parse(currency).unwrap(),
        billing_day: 1,
        active_from: ts("2019-01-01T00:00:00Z"),
        prices: vec![PricePoint { from: Date::constant(2019, 1, 1), monthly_price_minor: price }],
        attributes: Arc::default(),
    }
}

fn outage(id: &str, start: &str, end: &str, reported: Option<&str>) -> Event {
    Event {
        id: id.into(),
        what: EventKind::Outage {
            span: crate::interval::Interval::new(ts(start), ts(end)).unwrap(),
            reported_at: reported.map(ts),
        },
        attributes: Arc::default(),
    }
}

fn run(p: &Policy, customer: CustomerFacts, events: Vec<Event>) -> Evaluation {
    evaluate(p, &Facts { customer, events }).unwrap()
}

#[test]
fn the_worked_example_of_the_issue() {
    // 30-day cycle (November): 43,200 minutes; 10:00-19:00 UTC = 540 minutes.
    let e = run(
        &Policy::builtin(),
        customer("UTC", "USD", 7999),
        vec![outage("F1", "2026-11-23T10:00:00Z", "2026-11-23T19:00:00Z", None)],
    );
    assert_eq!(e.total_minor, 100);
    assert_eq!(
        e.lines[0].explanation(),
        "Outage 2026-11-23 10:00-19:00 UTC, 540 min of the 43,200-min billing cycle starting 2026-11-01; \
         79.99 USD x 540 / 43,200 = 0.999875, rounded half-up to 1.00 USD."
    );
    assert_eq!(&*e.lines[0].events[0], "F1");
}

#[test]
fn the_price_in_force_in_each_cycle_is_used() {
    let mut c = customer("UTC", "USD", 3000);
    c.prices.push(PricePoint { from: Date::constant(2026, 11, 1), monthly_price_minor: 6000 });
    let e =
        run(&Policy::builtin(), c, vec![outage("F1", "2026-10-31T12:00:00Z", "2026-11-01T12:00:00Z", None)]);
    // October: 3000 x 720 / 44,640 = 48.387 -> 48; November: 6000 x 720 / 43,200 = 100.
    assert_eq!(e.lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(), vec![48, 100]);
}

#[test]
fn elapsed_time_across_a_clock_change() {
    // New York falls back at 2026-11-01 06:00Z. 00:30 to 03:30 local is four hours elapsed.
    let mut c = customer("America/New_York", "USD", 7999);
    c.billing_day = 15;
    let e =
        run(&Policy::builtin(), c, vec![outage("F1", "2026-11-01T04:30:00Z", "2026-11-01T08:30:00Z", None)]);
    // The cycle Oct 15 - Nov 15 holds the extra hour: 44,700 min; 7999 x 240 / 44,700 = 42.9 -> 43.
    assert_eq!(e.total_minor, 43);
    assert!(e.lines[0].explanation().contains("240 min of the 44,700-min billing cycle"));
}

#[test]
fn the_start_due_wednesday_example() {
    let facts = Facts::from_json(
        r#"{"customer": {"id": "C1", "jurisdiction": "GB-EAW", "timezone": "Europe/London", "currency": "GBP",
            "billing_day": 1, "active_from": "2020-01-01T00:00:00Z", "prices": [{"from": "2025-01-01", "monthly_price_minor": 3000}]},
            "events": [{"id": "P1", "kind": "provision", "promised_date": "2025-07-09", "live_date": "2025-07-11"}]}"#,
    )
    .unwrap();
    let e = evaluate(&policy(OFCOM), &facts).unwrap();
    assert_eq!(e.total_minor, 1248);
    assert_eq!(
        e.lines[0].explanation(),
        "Delayed start of service: service promised for 2025-07-09 (Wed) went live 2025-07-11 (Fri), \
         2 calendar days; 2 x 6.24 = 12.48, rounded half-up to 12.48 GBP."
    );
}

#[test]
fn rates_change_on_1_april_by_the_date_the_issue_arose() {
    let p = policy(OFCOM);
    let c = customer("Europe/London", "GBP", 3000);
    // Reported Monday 31 March 2025 (the 2024 year: 9.76), fixed in April: old rate.
    let march = run(
        &p,
        c.clone(),
        vec![outage("F1", "2025-03-31T08:00:00Z", "2025-04-04T12:00:00Z", Some("2025-03-31T09:00:00Z"))],
    );
    // Deadline: end of Wed 2 April; fixed Fri 4 April: 1 + 1 full day (Thu) = 2 x 9.76.
    assert_eq!(march.total_minor, 1952);
    // The same a day later is reported in the 2025 year: 9.98.
    let april = run(
        &p,
        c,
        vec![outage("F1", "2025-04-01T08:00:00Z", "2025-04-05T12:00:00Z", Some("2025-04-01T09:00:00Z"))],
    );
    assert_eq!(april.total_minor, 1996);
}

#[test]
fn a_missed_appointment_and_a_late_cancellation_pay_once_each() {
    let facts = |outcome: &str, extra: &str| {
        Facts::from_json(&format!(
            r#"{{"customer": {{"id": "C1", "jurisdiction": "GB-EAW", "timezone": "Europe/London", "currency": "GBP",
            "billing_day": 1, "active_from": "2020-01-01T00:00:00Z", "prices": [{{"from": "2025-01-01", "monthly_price_minor": 3000}}]}},
            "events": [{{"id": "A1", "kind": "appointment", "window_start": "2025-06-10T07:00:00Z", "window_end": "2025-06-10T11:00:00Z",
            "outcome": "{outcome}"{extra}}}]}}"#
        ))
        .unwrap()
    };
    let p = policy(OFCOM);
    assert_eq!(evaluate(&p, &facts("no_show", "")).unwrap().total_minor, 3119);
    assert_eq!(evaluate(&p, &facts("kept", "")).unwrap().total_minor, 0);
    let late = r#", "cancelled_at": "2025-06-09T07:00:01Z", "cancelled_by": "provider""#;
    assert_eq!(evaluate(&p, &facts("cancelled", late)).unwrap().total_minor, 3119);
    let in_time = r#", "cancelled_at": "2025-06-09T07:00:00Z", "cancelled_by": "provider""#;
    assert_eq!(evaluate(&p, &facts("cancelled", in_time)).unwrap().total_minor, 0);
    let by_customer = r#", "cancelled_at": "2025-06-10T06:00:00Z", "cancelled_by": "customer""#;
    assert_eq!(evaluate(&p, &facts("cancelled", by_customer)).unwrap().total_minor, 0);
}

#[test]
fn on_request_lines_are_reported_but_not_totalled() {
    let p = policy(NY);
    let c = customer("America/New_York", "USD", 6000);
    // 5 hours, no subscriber count: 1 period of 24 h or part, 1/30 of 60.00 = 2.00, on request.
    let e = run(&p, c, vec![outage("F1", "2025-01-10T10:00:00Z", "2025-01-10T15:00:00Z", None)]);
    assert_eq!((e.total_minor, e.on_request_minor), (0, 200));
    assert!(!e.lines[0].automatic);
}

#[test]
fn a_cap_per_billing_cycle_and_a_tenure_bonus() {
    let p = policy(
        r#"
id = "goodwill"
version = 1
[[rules]]
id = "flat"
event = "outage"
pay = { basis = "once", amount = { minor = 500 } }
[[rules]]
id = "loyalty"
event = "outage"
when = "customer.tenure_days >= 3 * 365"
only_with = ["flat"]
pay = { basis = "once", amount = { minor = 200 } }
[[caps]]
per = "billing-cycle"
amount = { minor = 1200 }
"#,
    );
    let events = vec![
        outage("F1", "2025-03-02T10:00:00Z", "2025-03-02T11:00:00Z", None),
        outage("F2", "2025-03-05T10:00:00Z", "2025-03-05T11:00:00Z", None),
        outage("F3", "2025-04-05T10:00:00Z", "2025-04-05T11:00:00Z", None),
    ];
    let loyal = run(&p, customer("UTC", "EUR", 3000), events.clone());
    // March: 500 + 500 + 200 (capped from 200 + 200 at 1200); April: 500 + 200.
    assert_eq!(
        loyal.lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(),
        vec![500, 500, 500, 200, 0, 200]
    );
    assert_eq!(loyal.total_minor, 1900);
    assert!(
        loyal.lines[4]
            .explanation()
            .contains("Capped at 12.00 EUR for the billing cycle starting 2025-03-01")
    );
    let mut new = customer("UTC", "EUR", 3000);
    new.active_from = ts("2024-01-01T00:00:00Z");
    assert_eq!(run(&p, new, events).total_minor, 1500);
}

#[test]
fn excluded_segments_earn_nothing_and_say_why() {
    let mut c = customer("UTC", "EUR", 3000);
    c.segment = "staff".into();
    let e = run(&policy(FLAT), c, vec![outage("F1", "2025-03-02T10:00:00Z", "2025-03-02T12:00:00Z", None)]);
    assert_eq!(e.total_minor, 0);
    assert_eq!(e.notes, vec!["The policy excludes the \"staff\" segment.".to_string()]);
}

#[test]
fn a_currency_mismatch_is_an_error() {
    let err = evaluate(&policy(OFGEM), &Facts { customer: customer("UTC", "EUR", 3000), events: vec![] })
        .unwrap_err();
    assert!(err.to_string().contains("pays in GBP; customer C1 is billed in EUR"), "{err}");
}

fn refuse(text: &str) -> String {
    Policy::from_toml("p.toml", text).unwrap_err().to_string()
}

#[test]
fn bad_policies_are_refused_with_file_line_and_column() {
    let head = "id = \"p\"\nversion = 1\n";
    let rule = "[[rules]]\nid = \"r\"\nevent = \"outage\"\npay = { basis = \"prorated\" }\n";
    let e = refuse(&format!("{head}bonus = 3\n{rule}"));
    assert!(e.starts_with("p.toml:3:1: unknown field `bonus`"), "{e}");
    let e = refuse(&format!("{head}version2 = \"x\"\n{rule}"));
    assert!(e.starts_with("p.toml:3:1:"), "{e}");
    let e = refuse(&format!("id = \"p\"\nversion = \"one\"\n{rule}"));
    assert!(e.starts_with("p.toml:2:11:") && e.contains("invalid type"), "{e}");
    let e = refuse(&format!("{head}currency = \"XYZ\"\n{rule}"));
    assert!(e.starts_with("p.toml:3:12:") && e.contains("XYZ"), "{e}");
    let e = refuse(&format!("{head}when = 'customer.segment == '\n{rule}"));
    assert!(e.starts_with("p.toml:3:") && e.contains("when: Syntax error"), "{e}");
    let rates = "[[rates]]\nfrom = \"2025-01-01\"\nuntil = \"2025-06-01\"\namounts = { a = 1 }\n\
                 [[rates]]\nfrom = \"2025-05-01\"\namounts = { a = 2 }\n";
    let e = refuse(&format!("{head}{rates}{rule}"));
    assert!(e.starts_with("p.toml:7:1:") && e.contains("overlaps"), "{e}");
    let e = refuse(&format!(
        "{head}[[rules]]\nid = \"r\"\nevent = \"outage\"\npay = {{ basis = \"once\", amount = {{ rate = \"x\" }} }}\n"
    ));
    assert!(e.contains("rate \"x\" is not defined"), "{e}");
    let e = refuse(&format!(
        "{head}[[rules]]\nid = \"r\"\nevent = \"appointment\"\npay = {{ basis = \"prorated\" }}\n"
    ));
    assert!(e.contains("applies to outages only"), "{e}");
    let e = refuse(&format!(
        "{head}[[rules]]\nid = \"r\"\nevent = \"outage\"\nonly_with = [\"later\"]\npay = {{ basis = \"prorated\" }}\n"
    ));
    assert!(e.contains("not an earlier rule"), "{e}");
    let e = refuse(&format!(
        "{head}[[rules]]\nid = \"r\"\nevent = \"outage\"\nwhen = \"[1].map(x, x) == [1]\"\npay = {{ basis = \"prorated\" }}\n"
    ));
    assert!(e.contains("comprehension macro `map` is not allowed"), "{e}");
    let e = refuse(&format!("{head}[calendar]\nholidays = {{ GB = [\"2025-13-01\"] }}\n{rule}"));
    assert!(e.starts_with("p.toml:3:1:") && e.contains("not a date"), "{e}");
}

/// Issue 18, item 5: an expression that could run away is refused at load, and the error
/// says where (file, line, column), which policy and rule, and which limit.
#[test]
fn a_runaway_expression_names_the_policy_the_rule_and_the_limit() {
    let head = "id = \"loyalty\"\nversion = 1\n";
    let rule = |key: &str, expr: &str| {
        format!(
            "{head}[[rules]]\nid = \"goodwill\"\nevent = \"outage\"\n{key} = '{expr}'\npay = {{ basis = \"prorated\" }}\n"
        )
    };
    let e = refuse(&rule("when", "[1,2,3]. exists(customer, customer == 2)"));
    assert!(e.starts_with("p.toml:6:"), "{e}");
    assert!(e.contains("policy loyalty, rule \"goodwill\": when: "), "{e}");
    assert!(e.contains("the comprehension macro `exists` is not allowed"), "{e}");

    let deep = vec!["\"ab\""; 40].join(" + ") + " == \"\"";
    let e = refuse(&rule("when", &deep));
    assert!(e.starts_with("p.toml:6:"), "{e}");
    assert!(e.contains("policy loyalty, rule \"goodwill\": when: "), "{e}");
    assert!(e.contains("deeper than 32 levels"), "{e}");

    let costly = vec!["event.id"; 28].join(" + ") + " != \"\"";
    let e = refuse(&rule("automatic", &costly));
    assert!(e.contains("policy loyalty, rule \"goodwill\": automatic: "), "{e}");
    assert!(e.contains(&format!("over the limit of {}", 16 << 20)), "{e}");

    // The policy's own condition has no rule.
    let e = refuse(&format!(
        "{head}when = 'customer.id.size() > 0 && [1]. filter(x, x > 0) == [1]'\n\
         [[rules]]\nid = \"r\"\nevent = \"outage\"\npay = {{ basis = \"prorated\" }}\n"
    ));
    assert!(e.starts_with("p.toml:3:"), "{e}");
    assert!(e.contains("policy loyalty: when: the comprehension macro `filter`"), "{e}");
}

#[test]
fn every_shipped_policy_loads() {
    for text in [OFCOM, OFGEM, NY, TKG, DAYS, FLAT, SLA, DEFAULT_POLICY_TOML] {
        policy(text);
    }
}

// ---- properties ----------------------------------------------------------------------

fn shipped() -> Vec<Policy> {
    [DEFAULT_POLICY_TOML, OFCOM, OFGEM, NY, TKG, DAYS, FLAT, SLA].iter().map(|t| policy(t)).collect()
}

fn customer_for(p: &Policy) -> CustomerFacts {
    match p.currency.map(|c| c.code().to_string()).as_deref() {
        Some("USD") => customer("America/New_York", "USD", 7999),
        Some("EUR") => customer("Europe/Berlin", "EUR", 4499),
        Some("GBP") => customer("Europe/London", "GBP", 3000),
        _ => customer("Europe/London", "GBP", 3000),
    }
}

fn span(start: i64, secs: i64) -> (String, String) {
    let s = Timestamp::from_second(start).unwrap();
    let e = Timestamp::from_second(start + secs).unwrap();
    (s.to_string(), e.to_string())
}

fn one_outage(start: i64, secs: i64) -> Vec<Event> {
    let (s, e) = span(start, secs);
    // Reported a minute in, so report-based rules apply too.
    let r = Timestamp::from_second(start + 60.min(secs - 1)).unwrap().to_string();
    vec![outage("F1", &s, &e, Some(&r))]
}

fn totals(p: &Policy, events: Vec<Event>) -> (i64, i64) {
    let e = run(p, customer_for(p), events);
    (e.total_minor, e.on_request_minor)
}

const START_2025: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const YEAR: i64 = 365 * 86_400;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_negative_monotonic_in_duration_and_deterministic(
        offset in 0..YEAR, secs in 120i64..(40 * 86_400), extra in 0i64..(10 * 86_400)
    ) {
        for p in shipped() {
            let start = START_2025 + offset;
            let short = totals(&p, one_outage(start, secs));
            let long = totals(&p, one_outage(start, secs + extra));
            prop_assert!(short.0 >= 0 && short.1 >= 0);
            prop_assert!(long.0 + long.1 >= short.0 + short.1, "{}: {short:?} then {long:?}", p.id);
            prop_assert_eq!(short, totals(&p, one_outage(start, secs)));
        }
    }

    #[test]
    fn splitting_an_outage_into_touching_pieces_changes_nothing(
        offset in 0..YEAR, secs in 120i64..(20 * 86_400), cut in 1i64..1000
    ) {
        for p in shipped() {
            let start = START_2025 + offset;
            let whole = totals(&p, one_outage(start, secs));
            let at = 61 + (secs - 62) * cut / 1000;
            let mut pieces = one_outage(start, at);
            let (s, e) = span(start + at, secs - at);
            pieces.push(outage("F2", &s, &e, None));
            prop_assert_eq!(whole, totals(&p, pieces), "{}", p.id);
        }
    }

    #[test]
    fn a_cap_is_never_exceeded(offset in 0..YEAR, secs in 120i64..(60 * 86_400)) {
        let p = policy(OFGEM);
        let (s, e) = span(START_2025 + offset, secs);
        let mut event = outage("F1", &s, &e, None);
        event.attributes = Arc::new([("weather".to_string(), facts::Attribute::Text("severe_2".into()))].into());
        let ev = run(&p, customer_for(&p), vec![event]);
        prop_assert!(ev.total_minor <= 200_000);
    }

    #[test]
    fn prorated_amounts_are_exact_to_the_rounding(price in 0i64..10_000_000, secs in 1i64..(28 * 86_400)) {
        let c = customer("UTC", "USD", price);
        let (s, e) = span(1_738_368_000, secs); // 2025-02-01: a 28-day cycle
        let ev = run(&Policy::builtin(), c, vec![outage("F1", &s, &e, None)]);
        let cycle = 28 * 86_400i128;
        let exact = i128::from(price) * i128::from(secs);
        // Half-up: the amount is the nearest integer, halves up.
        let amount = i128::from(ev.total_minor);
        prop_assert!(2 * (amount * cycle - exact) <= cycle && 2 * (exact - amount * cycle) < cycle);
    }
}

/// What a notice may promise about a credit rests on this (issue 17, item 6).
#[test]
fn a_policy_says_whether_it_pays_outages_without_a_claim() {
    let policy = |name: &str, text: &str| Policy::from_toml(name, text).unwrap();
    assert!(policy("prorated", DEFAULT_POLICY_TOML).pays_outages_automatically());
    assert!(policy("ofcom", OFCOM).pays_outages_automatically());
    assert!(!policy("tkg", TKG).pays_outages_automatically(), "paid on request");
    assert!(!policy("ny", NY).pays_outages_automatically(), "automatic only under a condition");
    let set = PolicySet::new(vec![
        Assignment::everyone(policy("prorated", DEFAULT_POLICY_TOML)),
        Assignment { segments: vec!["business".into()], ..Assignment::everyone(policy("tkg", TKG)) },
    ])
    .unwrap();
    assert!(set.pays_outages_automatically("residential", "", "fast"));
    assert!(!set.pays_outages_automatically("business", "", "fast"), "one of their policies needs a claim");
}

/// Nothing paid is never silent (issue 17, item 16): a `when` that is false, a count of
/// no whole period, and an amount that rounds to zero each leave a note saying why.
#[test]
fn a_zero_says_why() {
    let p = policy(
        r#"
id = "zeros"
version = 1

[[rules]]
id = "prorated"
event = "outage"
pay = { basis = "prorated" }

[[rules]]
id = "storms"
description = "Storm bonus"
event = "outage"
when = "customer.segment == 'business'"
pay = { basis = "once", amount = { minor = 500 } }

[[rules]]
id = "days"
description = "Per full day"
event = "outage"
pay = { basis = "periods", every = "calendar-day", count = "complete", amount = { minor = 100 } }

[[rules]]
id = "tiny"
description = "A tiny fixed sum"
event = "outage"
pay = { basis = "once", amount = { minor = 0 } }
"#,
    );
    let e = run(
        &p,
        customer("UTC", "USD", 7999),
        vec![outage("F1", "2026-11-23T10:00:00Z", "2026-11-23T10:00:10Z", None)],
    );
    assert_eq!((e.total_minor, e.lines.len()), (0, 0), "{e:?}");
    let notes = e.notes.join("\n");
    for why in [
        "Outage 2026-11-23 10:00:00-10:00:10 UTC, 10 s of the 2,592,000-s billing cycle",
        "rounded half-up to 0.00 USD. Nothing is paid.",
        "Storm bonus: `customer.segment == 'business'` is false for outage F1.",
        "Per full day: ",
        "0 full days; nothing is paid.",
        "A tiny fixed sum: ",
    ] {
        assert!(notes.contains(why), "no {why:?} in:\n{notes}");
    }
}

/// The auditor's explanation (issue 17, item 18): every instant in UTC, even for a customer
/// in New York; an outage counted from later than it began shows when it began; a value
/// taken once is not written twice ("= 2.666333... = 2.666333...").
#[test]
fn the_auditors_explanation_is_in_utc_and_says_each_figure_once() {
    let p = policy(
        r#"
id = "ny"
version = 1

[[rules]]
id = "per-day"
description = "1/30 per 24 h counted from the report"
event = "outage"
counted_from = 'has(event.reported_at) ? timestamp(event.reported_at) : timestamp(event.start)'
pay = { basis = "periods", every = "24h", count = "complete", amount = { price_fraction = "1/30" } }

[[rules]]
id = "deadline"
description = "Not fixed in 4 h"
event = "outage"
pay = { basis = "deadline", deadline = { after = "4h" }, first = { minor = 500 } }
"#,
    );
    let e = run(
        &p,
        customer("America/New_York", "USD", 7999),
        vec![outage("F1", "2026-11-23T14:00:00Z", "2026-11-25T18:12:00Z", Some("2026-11-23T17:59:00Z"))],
    );
    let text: Vec<String> = e.lines.iter().map(|l| l.explanation()).collect();
    assert_eq!(
        text[0],
        "1/30 per 24 h counted from the report: outage 2026-11-23 14:00 UTC to 2026-11-25 18:12 UTC, \
         counted from 2026-11-23 17:59 UTC, 2 complete 24h periods; \
         2 x (1/30 of 79.99 = 2.666333...) = 5.332666..., rounded half-up to 5.33 USD.",
    );
    assert!(text[1].contains("restored 2026-11-25 18:12 UTC"), "{}", text[1]);
    for t in &text {
        assert!(!t.contains("EST") && !t.contains("EDT"), "{t}");
    }
}

/// "Each 24-hour period in which the outage lasts at least 4 hours" (issue 17, item 17):
/// its own count, so exactly 4 h counts and the total is rounded once (two rules, or a
/// started count with a one-second trick, paid a cent too much or nothing at 4 h).
#[test]
fn periods_with_at_least_a_threshold_count_once_and_round_once() {
    let p = policy(
        r#"
id = "ny-periods"
version = 1

[[rules]]
id = "per-period"
description = "1/30 for each 24 h with at least 4 h out"
event = "outage"
pay = { basis = "periods", every = "24h", count = { at_least = "4h" }, amount = { price_fraction = "1/30" } }
"#,
    );
    let total = |end: &str| {
        let e = run(
            &p,
            customer("America/New_York", "USD", 7999),
            vec![outage("F1", "2026-11-23T10:00:00Z", end, None)],
        );
        (e.total_minor, e.lines.first().map(|l| l.explanation()).unwrap_or_else(|| e.notes.join(" ")))
    };
    // Exactly 4 h: one period. 3 h 59 min: none, and the note says so.
    assert_eq!(total("2026-11-23T14:00:00Z").0, 267);
    let (paid, note) = total("2026-11-23T13:59:00Z");
    assert_eq!(paid, 0);
    assert!(note.contains("0 24h periods with at least 4h without service; nothing is paid"), "{note}");
    // 28 h: two periods, 2 x 7999 / 30 = 533.27, rounded once to 533 (not 2 x 267 = 534).
    let (paid, text) = total("2026-11-24T14:00:00Z");
    assert_eq!(paid, 533);
    assert!(
        text.contains(
            "2 24h periods with at least 4h without service; 2 x (1/30 of 79.99 = 2.666333...) = 5.332666..."
        ),
        "{text}"
    );
    // 27 h 59 min: the second period has 3 h 59 min, under the threshold.
    assert_eq!(total("2026-11-24T13:59:00Z").0, 267);
}

#[test]
fn calendar_days_with_at_least_a_threshold_are_the_customers_days() {
    let p = policy(
        r#"
id = "days"
version = 1

[[rules]]
id = "per-day"
description = "5.00 for each local day with at least 3 h out"
event = "outage"
pay = { basis = "periods", every = "calendar-day", count = { at_least = "3h" }, amount = { minor = 500 } }
"#,
    );
    // 22:00 to 03:00 New York time (EST, UTC-5): 2 h on the 23rd, 3 h on the 24th.
    let e = run(
        &p,
        customer("America/New_York", "USD", 7999),
        vec![outage("F1", "2026-11-24T03:00:00Z", "2026-11-24T08:00:00Z", None)],
    );
    assert_eq!(e.total_minor, 500, "{e:?}");
    let refused = refuse(
        r#"
id = "bad"
version = 1

[[rules]]
id = "r"
event = "outage"
pay = { basis = "periods", every = "2h", count = { at_least = "3h" }, amount = { minor = 1 } }
"#,
    );
    assert!(
        refused.contains("count at_least \"3h\" is longer than the period it is counted in"),
        "{refused}"
    );
    let refused = refuse(
        r#"
id = "bad"
version = 1

[[rules]]
id = "r"
event = "outage"
pay = { basis = "periods", every = "2h", count = "most", amount = { minor = 1 } }
"#,
    );
    assert!(refused.contains("count \"most\" is not one of"), "{refused}");
}

/// An amount that depends on the facts (issue 17, item 17): `multiply` doubles for medical
/// priority in one rule, rounded once, and says so; without it, two mirrored rules.
#[test]
fn multiply_scales_a_line_by_an_expression_before_its_one_rounding() {
    let p = policy(
        r#"
id = "medical"
version = 1

[[rules]]
id = "per-day"
description = "1/30 per started 24 h"
event = "outage"
multiply = 'has(customer.attributes.medical_priority) && customer.attributes.medical_priority ? 2 : 1'
pay = { basis = "periods", every = "24h", amount = { price_fraction = "1/30" } }
"#,
    );
    let facts = |medical: bool| {
        let mut c = customer("UTC", "USD", 7999);
        c.attributes = Arc::new([("medical_priority".to_string(), Attribute::Bool(medical))].into());
        run(&p, c, vec![outage("F1", "2026-11-23T10:00:00Z", "2026-11-23T12:00:00Z", None)])
    };
    // 7999 / 30 = 266.63 once; doubled exactly, 533.27, rounded once to 533 (not 2 x 267).
    assert_eq!(facts(false).total_minor, 267);
    let doubled = facts(true);
    assert_eq!(doubled.total_minor, 533);
    let text = doubled.lines[0].explanation();
    assert!(
        text.ends_with("x 2 by `has(customer.attributes.medical_priority) && customer.attributes.medical_priority ? 2 : 1` = 5.332666..., rounded half-up to 5.33 USD."),
        "{text}"
    );

    let wild = policy(
        r#"
id = "wild"
version = 1

[[rules]]
id = "r"
event = "outage"
multiply = 'event.duration_minutes'
pay = { basis = "once", amount = { minor = 100 } }
"#,
    );
    let err = evaluate(
        &wild,
        &Facts {
            customer: customer("UTC", "USD", 7999),
            events: vec![outage("F1", "2026-11-23T10:00:00Z", "2026-11-23T12:00:00Z", None)],
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("multiply `event.duration_minutes` gave 120, outside 0..=100"), "{err}");
    let refused = refuse(
        r#"
id = "bad"
version = 1

[[rules]]
id = "r"
event = "outage"
multiply = '2'
pay = { basis = "prorated" }
"#,
    );
    assert!(refused.contains("multiply does not apply to prorated lines"), "{refused}");
}
