use super::*;
use crate::money::Currency;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

struct Case {
    price: i64,
    billing_day: u8,
    zone: &'static str,
    active_since: &'static str,
    start: &'static str,
    end: &'static str,
    earlier: Vec<(&'static str, &'static str)>,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            price: 7999,
            billing_day: 1,
            zone: "UTC",
            active_since: "2020-01-01T00:00:00Z",
            start: "2026-11-23T10:00:00Z",
            end: "2026-11-23T19:00:00Z",
            earlier: vec![],
        }
    }
}

fn run(policy: &Policy, case: &Case) -> Evaluation {
    let zone = TimeZone::get(case.zone).unwrap();
    let earlier: Vec<Interval> =
        case.earlier.iter().map(|(a, b)| Interval::new(ts(a), ts(b)).unwrap()).collect();
    let outage = Interval::new(ts(case.start), ts(case.end)).unwrap();
    evaluate(
        policy,
        &CreditFacts {
            monthly_price: usd(case.price),
            billing_day: case.billing_day,
            zone_name: case.zone,
            zone: &zone,
            active_since: ts(case.active_since),
            outage,
            already_credited: &earlier,
            issued_at: outage.end(),
        },
    )
    .unwrap()
}

#[test]
fn the_worked_example_of_the_brief() {
    // 30-day cycle (November): 43,200 minutes; 9 hours out = 540 minutes.
    let e = run(&Policy::builtin(), &Case { billing_day: 1, ..Case::default() });
    assert_eq!(e.total_minor, 100);
    assert_eq!(e.lines.len(), 1);
    assert_eq!(
        e.lines[0].explanation,
        "Outage 2026-11-23 10:00-19:00 UTC, 540 min of the 43,200-min billing cycle starting 2026-11-01; \
         79.99 USD x 540 / 43,200 = 0.999875, rounded half-up to 1.00 USD."
    );
    assert_eq!(e.statement, Date::constant(2026, 12, 1));
    assert!(e.explanation.ends_with("Total 1.00 USD, on the statement of 2026-12-01."));
}

#[test]
fn crossing_a_cycle_boundary_gives_one_line_per_cycle() {
    let e = run(
        &Policy::builtin(),
        &Case {
            billing_day: 1,
            start: "2026-10-31T20:00:00Z",
            end: "2026-11-01T04:00:00Z",
            ..Case::default()
        },
    );
    assert_eq!(e.lines.len(), 2);
    // October: 31 days = 44,640 min, 240 min out: 7999*240/44640 = 43.0053... -> 43
    assert_eq!(e.lines[0].cycle_start, Some(Date::constant(2026, 10, 1)));
    assert_eq!(
        (e.lines[0].seconds, e.lines[0].cycle_seconds, e.lines[0].amount_minor),
        (14_400, 2_678_400, 43)
    );
    // November: 30 days = 43,200 min, 240 min out: 7999*240/43200 = 44.438... -> 44
    assert_eq!(e.lines[1].cycle_start, Some(Date::constant(2026, 11, 1)));
    assert_eq!(e.lines[1].amount_minor, 44);
    assert_eq!(e.total_minor, 87);
}

#[test]
fn elapsed_time_across_a_clock_change() {
    // New York falls back at 2026-11-01 06:00Z (02:00 EDT -> 01:00 EST). From 00:30 local to
    // 03:30 local is four hours of elapsed time, not three.
    let e = run(
        &Policy::builtin(),
        &Case {
            billing_day: 15,
            zone: "America/New_York",
            start: "2026-11-01T04:30:00Z",
            end: "2026-11-01T08:30:00Z",
            ..Case::default()
        },
    );
    assert_eq!(e.lines[0].seconds, 4 * 3600);
    // The cycle Oct 15 - Nov 15 holds the extra hour: 31 days + 1 h = 44,700 min.
    assert_eq!(e.lines[0].cycle_seconds, 31 * 86_400 + 3600);
    // 7999 * 240 / 44,700 = 42.947... -> 43
    assert_eq!(e.total_minor, 43);
}

#[test]
fn threshold_bonus_and_tenure() {
    let policy = Policy::from_toml(
        "t.toml",
        "id = \"p\"\nversion = 2\nkind = \"prorated\"\nmin_duration_minutes = 600\ngoodwill_bonus_minor = 500\n",
    )
    .unwrap();
    let short = run(&policy, &Case::default());
    assert_eq!(short.total_minor, 0);
    assert!(short.explanation.contains("under the policy's 600-min threshold"), "{}", short.explanation);
    let long = run(&policy, &Case { end: "2026-11-23T20:00:00Z", ..Case::default() });
    // 600 min of 43,200: 7999 * 600 / 43200 = 111.09 -> 111, plus 500 goodwill.
    assert_eq!(long.lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(), vec![111, 500]);
    // A customer who joined mid-outage is compensated only for their own time.
    let joined = run(&Policy::builtin(), &Case { active_since: "2026-11-23T16:00:00Z", ..Case::default() });
    assert_eq!(joined.lines[0].seconds, 3 * 3600);
}

#[test]
fn overlapping_events_are_counted_once() {
    let e = run(
        &Policy::builtin(),
        &Case {
            earlier: vec![
                ("2026-11-23T08:00:00Z", "2026-11-23T12:00:00Z"),
                ("2026-11-23T15:00:00Z", "2026-11-23T16:00:00Z"),
            ],
            ..Case::default()
        },
    );
    // 10-19 minus 8-12 minus 15-16 = 12-15 and 16-19: 6 h, in one cycle, one line.
    assert_eq!(e.lines.len(), 1);
    assert_eq!(e.lines[0].seconds, 6 * 3600);
    let all = run(
        &Policy::builtin(),
        &Case { earlier: vec![("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z")], ..Case::default() },
    );
    assert_eq!(all.total_minor, 0);
    assert!(all.explanation.contains("already credited"));
}

#[test]
fn bad_policies_name_the_problem() {
    let err =
        Policy::from_toml("p.toml", "id = \"x\"\nversion = 1\nkind = \"prorated\"\nbonus = 3\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("policy p.toml: TOML parse error at line 4, column 1"), "{text}");
    assert!(text.contains("unknown field `bonus`"), "{text}");
    let err = Policy::from_toml(
        "p.toml",
        "id = \"x\"\nversion = 1\nkind = \"prorated\"\ngoodwill_bonus_minor = -1\n",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "policy p.toml: goodwill_bonus_minor must be between 0 and 1000000");
}

fn eval_secs(price: i64, day: u8, zone: &TimeZone, start: i64, secs: i64, policy: &Policy) -> Evaluation {
    let start = Timestamp::from_second(start).unwrap();
    let outage = Interval::new(start, Timestamp::from_second(start.as_second() + secs).unwrap()).unwrap();
    evaluate(
        policy,
        &CreditFacts {
            monthly_price: usd(price),
            billing_day: day,
            zone_name: "zone",
            zone,
            active_since: Timestamp::from_second(0).unwrap(),
            outage,
            already_credited: &[],
            issued_at: outage.end(),
        },
    )
    .unwrap()
}

const ZONES: [&str; 4] = ["UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_negative_and_monotonic_in_duration(
        price in 0i64..10_000_000, day in 1u8..=28, zone in 0usize..4,
        start in 1_700_000_000i64..1_900_000_000, secs in 1i64..5_000_000, more in 0i64..500_000,
    ) {
        let zone = TimeZone::get(ZONES[zone]).unwrap();
        let policy = Policy::builtin();
        let a = eval_secs(price, day, &zone, start, secs, &policy);
        let b = eval_secs(price, day, &zone, start, secs + more, &policy);
        prop_assert!(a.total_minor >= 0);
        // Rounding once per line can cost at most one minor unit per extra line.
        let slack = b.lines.len() as i64 - 1;
        prop_assert!(a.total_minor <= b.total_minor + slack, "{} > {}", a.total_minor, b.total_minor);
        // Never more than the price of every cycle touched.
        prop_assert!(b.total_minor <= price * b.lines.len() as i64);
    }

    #[test]
    fn identical_on_replay(price in 0i64..10_000_000, day in 1u8..=28, start in 1_700_000_000i64..1_900_000_000, secs in 1i64..5_000_000) {
        let zone = TimeZone::get("Europe/Paris").unwrap();
        let policy = Policy::builtin();
        prop_assert_eq!(eval_secs(price, day, &zone, start, secs, &policy), eval_secs(price, day, &zone, start, secs, &policy));
    }

    #[test]
    fn cycle_split_lines_cover_the_outage_exactly(day in 1u8..=28, zone in 0usize..4, start in 1_700_000_000i64..1_900_000_000, secs in 1i64..10_000_000) {
        let zone = TimeZone::get(ZONES[zone]).unwrap();
        let e = eval_secs(10_000, day, &zone, start, secs, &Policy::builtin());
        prop_assert_eq!(e.lines.iter().map(|l| l.seconds).sum::<i64>(), secs);
        for w in e.lines.windows(2) {
            prop_assert!(w[0].cycle_start < w[1].cycle_start);
        }
        for l in &e.lines {
            // Each line's amount is its own share, rounded half-up once.
            let exact = Rounding::HalfUp.divide(10_000 * i128::from(l.seconds), i128::from(l.cycle_seconds));
            prop_assert_eq!(i128::from(l.amount_minor), exact);
            prop_assert!(l.seconds <= l.cycle_seconds);
        }
    }
}
