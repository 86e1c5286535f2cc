use super::*;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn gbp(minor: i64) -> Money {
    Money::new(minor, Currency::parse("GBP").unwrap())
}

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap()
}

fn rules(effective: Effective, billing: Billing) -> CancellationRules {
    CancellationRules { effective, billing, ..CancellationRules::default() }
}

fn locale(s: &str) -> Locale {
    Locale::parse(s).unwrap()
}

/// The final bill of a 30.00 GBP plan billed on the 1st in `zone` (and credits), or the
/// error.
fn bill_in(
    zone: &Zone,
    price: i64,
    day: u8,
    at: &str,
    credits: i64,
    effective: Effective,
    billing: Billing,
) -> Result<FinalBill, CancellationError> {
    let inputs = BillInputs {
        price: gbp(price),
        billing_day: day,
        zone,
        requested_at: ts(at),
        unbilled_credits_minor: credits,
    };
    final_bill(&rules(effective, billing), &inputs)
}

fn london_bill(at: &str, effective: Effective, billing: Billing) -> FinalBill {
    bill_in(&zone("Europe/London"), 3000, 1, at, 0, effective, billing).unwrap()
}

/// `(code, minor)` of every line.
fn lines(bill: &FinalBill) -> Vec<(LineCode, i64)> {
    bill.lines.iter().map(|l| (l.code, l.minor)).collect()
}

use Billing::{InAdvance, InArrears};
use Effective::{EndOfCycle, Immediately};

#[test]
fn refund_explains_itself_in_the_customer_zone() {
    let bill = london_bill("2026-12-12T14:03:00Z", Immediately, InAdvance);
    assert_eq!(bill.cycle, CycleSpan { start: ts("2026-12-01T00:00:00Z"), end: ts("2027-01-01T00:00:00Z") });
    assert_eq!(bill.effective_at, ts("2026-12-12T14:03:00Z"));
    assert_eq!(lines(&bill), [(LineCode::UnusedRefund, -1879)]);
    assert_eq!(bill.total_minor, -1879);
    assert_eq!(
        bill.lines[0].explanation,
        "Refund for the unused 1,677,420 s of the 2,678,400 s billing cycle \
         (2026-12-12 14:03 GMT to 2027-01-01 00:00 GMT, Europe/London) of the 30.00 GBP monthly price, \
         billed in advance: 30.00 GBP x 1,677,420 / 2,678,400 = 18.788306..., rounded half-up to 18.79 GBP."
    );
    assert!(bill.notes.is_empty());
}

#[test]
fn used_charge_explains_itself() {
    let bill = london_bill("2026-12-12T14:03:00Z", Immediately, InArrears);
    assert_eq!(lines(&bill), [(LineCode::UsedCharge, 1121)]);
    assert_eq!(
        bill.lines[0].explanation,
        "Charge for the used 1,000,980 s of the 2,678,400 s billing cycle \
         (2026-12-01 00:00 GMT to 2026-12-12 14:03 GMT, Europe/London) of the 30.00 GBP monthly price, \
         billed in arrears: 30.00 GBP x 1,000,980 / 2,678,400 = 11.211693..., rounded half-up to 11.21 GBP."
    );
}

#[test]
fn refund_charge_and_credits_total() {
    let london = zone("Europe/London");
    let at = "2026-12-12T14:03:00Z";
    let refund = bill_in(&london, 3000, 1, at, 500, Immediately, InAdvance).unwrap();
    assert_eq!(lines(&refund), [(LineCode::UnusedRefund, -1879), (LineCode::Credits, -500)]);
    assert_eq!(refund.total_minor, -2379);
    assert_eq!(
        refund.lines[1].explanation,
        "Credits in your account not yet on a bill: 5.00 GBP, taken off."
    );
    let charge = bill_in(&london, 3000, 1, at, 500, Immediately, InArrears).unwrap();
    assert_eq!(lines(&charge), [(LineCode::UsedCharge, 1121), (LineCode::Credits, -500)]);
    assert_eq!(charge.total_minor, 621);
    // Credits larger than the charge: the customer is owed the difference.
    let owed = bill_in(&london, 3000, 1, at, 5000, Immediately, InArrears).unwrap();
    assert_eq!(owed.total_minor, 1121 - 5000);
    // The unused refund and the used charge at one instant make up the price.
    assert_eq!(-refund.lines[0].minor + charge.lines[0].minor, 3000);
}

#[test]
fn proration_is_exact_at_the_cycle_boundaries() {
    // At the cycle's first instant: nothing used, so all of an in-advance cycle back.
    let start = london_bill("2026-12-01T00:00:00Z", Immediately, InAdvance);
    assert_eq!(lines(&start), [(LineCode::UnusedRefund, -3000)]);
    assert!(start.lines[0].explanation.contains("2,678,400 s of the 2,678,400 s"), "{start:?}");
    assert!(start.lines[0].explanation.ends_with("= 30.00, rounded half-up to 30.00 GBP."), "{start:?}");
    let start = london_bill("2026-12-01T00:00:00Z", Immediately, InArrears);
    assert_eq!(lines(&start), []);
    assert_eq!(start.total_minor, 0);
    assert!(start.notes[0].contains("none of it was used"), "{start:?}");
    // At its last second: 1 s of 2,678,400 s of 30.00 GBP is 0.0011 minor units.
    let last = london_bill("2026-12-31T23:59:59Z", Immediately, InAdvance);
    assert_eq!(lines(&last), [(LineCode::UnusedRefund, 0)]);
    assert_eq!(last.total_minor, 0);
    let last = london_bill("2026-12-31T23:59:59Z", Immediately, InArrears);
    assert_eq!(lines(&last), [(LineCode::UsedCharge, 3000)]);
    // At the end exactly, the next cycle has begun (and was billed at that instant).
    let next = london_bill("2027-01-01T00:00:00Z", Immediately, InAdvance);
    assert_eq!(next.cycle.start, ts("2027-01-01T00:00:00Z"));
    assert_eq!(lines(&next), [(LineCode::UnusedRefund, -3000)]);
}

#[test]
fn request_is_kept_to_the_second() {
    let a = london_bill("2026-12-12T14:03:00.999Z", Immediately, InAdvance);
    let b = london_bill("2026-12-12T14:03:00Z", Immediately, InAdvance);
    assert_eq!(a, b);
    let seconds = london_bill("2026-12-12T14:03:07Z", Immediately, InAdvance);
    assert!(seconds.lines[0].explanation.contains("(2026-12-12 14:03:07 GMT to"), "{seconds:?}");
}

#[test]
fn end_of_cycle() {
    let at = "2026-12-12T14:03:00Z";
    let advance = london_bill(at, EndOfCycle, InAdvance);
    assert_eq!(advance.effective_at, ts("2027-01-01T00:00:00Z"));
    assert_eq!(lines(&advance), []);
    assert_eq!(advance.total_minor, 0);
    assert_eq!(
        advance.notes,
        ["Service continues to the end of the billing cycle (2027-01-01 00:00 GMT); the cycle was \
          billed in advance, so nothing of it is refunded."]
    );
    let arrears = london_bill(at, EndOfCycle, InArrears);
    assert_eq!(arrears.effective_at, ts("2027-01-01T00:00:00Z"));
    assert_eq!(lines(&arrears), [(LineCode::UsedCharge, 3000)]);
    assert!(arrears.lines[0].explanation.contains("used 2,678,400 s of the 2,678,400 s"));
    let with_credits = bill_in(&zone("Europe/London"), 3000, 1, at, 250, EndOfCycle, InAdvance).unwrap();
    assert_eq!(lines(&with_credits), [(LineCode::Credits, -250)]);
    assert_eq!(with_credits.total_minor, -250);
}

#[test]
fn february_cycle() {
    let utc = zone("UTC");
    // 2027-02-01 to 2027-03-01: 28 days. Half of it unused: exactly half the price.
    let bill = bill_in(&utc, 3000, 1, "2027-02-15T00:00:00Z", 0, Immediately, InAdvance).unwrap();
    assert_eq!(bill.cycle.end, ts("2027-03-01T00:00:00Z"));
    assert_eq!(lines(&bill), [(LineCode::UnusedRefund, -1500)]);
    assert!(bill.lines[0].explanation.contains("1,209,600 s of the 2,419,200 s"), "{bill:?}");
    // Billed on the 28th: the cycle from 28 Jan to 28 Feb is 31 days, 28 Feb to 28 Mar 28.
    let jan = bill_in(&utc, 3100, 28, "2027-02-27T00:00:00Z", 0, Immediately, InAdvance).unwrap();
    assert_eq!(jan.cycle.start, ts("2027-01-28T00:00:00Z"));
    assert_eq!(lines(&jan), [(LineCode::UnusedRefund, -100)]);
    let feb = bill_in(&utc, 2800, 28, "2027-03-27T00:00:00Z", 0, Immediately, InAdvance).unwrap();
    assert_eq!(feb.cycle.start, ts("2027-02-28T00:00:00Z"));
    assert_eq!(lines(&feb), [(LineCode::UnusedRefund, -100)]);
    // A leap year's February has 29 days.
    let leap = bill_in(&utc, 2900, 1, "2028-02-28T00:00:00Z", 0, Immediately, InAdvance).unwrap();
    assert_eq!(lines(&leap), [(LineCode::UnusedRefund, -200)]);
}

#[test]
fn daylight_saving_months_in_london() {
    // March 2026: the clocks go forward on the 29th, so the cycle is 31 days less an hour,
    // and ends at midnight BST (23:00 UTC).
    let march = london_bill("2026-03-15T00:00:00Z", Immediately, InAdvance);
    assert_eq!(march.cycle.end, ts("2026-03-31T23:00:00Z"));
    // 16 days 23 hours of 2,674,800 s: 1643.34 minor units (a 31-day month would give 1645).
    assert_eq!(lines(&march), [(LineCode::UnusedRefund, -1643)]);
    assert!(
        march.lines[0].explanation.contains(
            "1,465,200 s of the 2,674,800 s billing cycle (2026-03-15 00:00 GMT to 2026-04-01 00:00 BST"
        ),
        "{march:?}"
    );
    // October 2026: the clocks go back on the 25th and 01:30 happens twice. The two are an
    // hour apart in elapsed time, and the explanation tells them apart.
    let first = london_bill("2026-10-25T00:30:00Z", Immediately, InAdvance);
    let second = london_bill("2026-10-25T01:30:00Z", Immediately, InAdvance);
    assert_eq!(first.cycle, second.cycle);
    assert_eq!(first.cycle.end.duration_since(first.cycle.start).as_secs(), 31 * 86_400 + 3_600);
    assert!(first.lines[0].explanation.contains("(2026-10-25 01:30 BST to"), "{first:?}");
    assert!(second.lines[0].explanation.contains("(2026-10-25 01:30 GMT to"), "{second:?}");
    // 7 days less 30 min and less 90 min to the end: 603,000 s and 599,400 s of 2,682,000 s.
    assert!(first.lines[0].explanation.contains("603,000 s of the 2,682,000 s"), "{first:?}");
    assert_eq!(lines(&first), [(LineCode::UnusedRefund, -674)]);
    assert_eq!(lines(&second), [(LineCode::UnusedRefund, -670)]);
}

#[test]
fn rounding_is_half_up_once_per_line() {
    let utc = zone("UTC");
    let at = "2027-02-15T00:00:00Z";
    // Half of 29.97 is 14.985: half up gives 14.99 (half-even and down would give 14.98),
    // for the refund and the charge alike.
    let refund = bill_in(&utc, 2997, 1, at, 0, Immediately, InAdvance).unwrap();
    assert_eq!(lines(&refund), [(LineCode::UnusedRefund, -1499)]);
    assert!(refund.lines[0].explanation.ends_with("= 14.985, rounded half-up to 14.99 GBP."), "{refund:?}");
    let charge = bill_in(&utc, 2997, 1, at, 0, Immediately, InArrears).unwrap();
    assert_eq!(lines(&charge), [(LineCode::UsedCharge, 1499)]);
    // Both exact halves: together one minor unit more than the price, as ROUNDING says.
    assert_eq!(-refund.total_minor + charge.total_minor, 2997 + 1);
    // Just under a half rounds down.
    let under = bill_in(&utc, 2997, 1, "2027-02-15T00:00:01Z", 0, Immediately, InAdvance).unwrap();
    assert_eq!(lines(&under), [(LineCode::UnusedRefund, -1498)]);
}

#[test]
fn zero_decimal_and_three_decimal_currencies() {
    let utc = zone("UTC");
    let inputs = |code: &str, minor: i64| BillInputs {
        price: Money::new(minor, Currency::parse(code).unwrap()),
        billing_day: 1,
        zone: &utc,
        requested_at: ts("2027-02-22T00:00:00Z"),
        unbilled_credits_minor: 0,
    };
    let r = CancellationRules::default();
    // A quarter of February unused.
    let jpy = final_bill(&r, &inputs("JPY", 4999)).unwrap();
    assert_eq!(jpy.total_minor, -1250);
    assert!(jpy.lines[0].explanation.ends_with("= 1,249.75, rounded half-up to 1,250 JPY."), "{jpy:?}");
    let kwd = final_bill(&r, &inputs("KWD", 10_001)).unwrap();
    assert_eq!(kwd.total_minor, -2500);
    assert!(kwd.lines[0].explanation.ends_with("= 2.50025, rounded half-up to 2.500 KWD."), "{kwd:?}");
}

#[test]
fn bad_bill_inputs_name_the_field() {
    let utc = zone("UTC");
    let at = "2027-02-15T00:00:00Z";
    let err =
        |price, day, credits| bill_in(&utc, price, day, at, credits, Immediately, InAdvance).unwrap_err();
    assert_eq!(err(3000, 29, 0), CancellationError::BillingDay { value: 29 });
    assert_eq!(err(3000, 0, 0).to_string(), "billing_day: 0 is outside 1 to 28");
    assert_eq!(err(-1, 1, 0).to_string(), "price_minor: -1 is negative");
    assert_eq!(err(3000, 1, -5).to_string(), "unbilled_credits_minor: -5 is negative");
    // Credits that overflow the total are an error, not a wrapped number.
    assert_eq!(err(i64::MAX, 1, i64::MAX), CancellationError::Overflow(Overflow));
}

#[test]
fn reasons_parse_or_name_the_field() {
    let r = CancellationRules::default();
    let parse = |id: Option<&str>, text: Option<&str>| Reason::parse(&r, id, text);
    assert_eq!(parse(None, None), Ok(None));
    assert_eq!(parse(Some(""), Some("  ")), Ok(None));
    assert_eq!(parse(Some("moving"), None), Ok(Some(Reason { id: "moving".into(), text: None })));
    assert_eq!(parse(Some("moving"), Some(" ")), Ok(Some(Reason { id: "moving".into(), text: None })));
    assert_eq!(
        parse(Some("other"), Some("  the dog ate the router \n")),
        Ok(Some(Reason { id: "other".into(), text: Some("the dog ate the router".into()) }))
    );
    assert_eq!(
        parse(Some("Moving"), None).unwrap_err().to_string(),
        "reason: \"Moving\" is not a reason offered (one of too_expensive, service_quality, outages, \
         moving, switching_provider, no_longer_needed, other)"
    );
    assert_eq!(
        parse(Some("moving"), Some("to Mars")).unwrap_err().to_string(),
        "reason_text: free text goes only with the reason \"other\", not \"moving\""
    );
    assert_eq!(
        parse(None, Some("no reason given but text")).unwrap_err().to_string(),
        "reason_text: free text goes only with the reason \"other\", not no reason"
    );
    // The bound is in characters, not bytes.
    let at_max = "é".repeat(REASON_TEXT_CHARS_MAX);
    assert!(parse(Some("other"), Some(&at_max)).is_ok());
    let over = "é".repeat(REASON_TEXT_CHARS_MAX + 1);
    assert_eq!(parse(Some("other"), Some(&over)), Err(CancellationError::TextTooLong { chars: 501 }));
    assert_eq!(
        parse(Some("other"), Some("bell\u{7}")).unwrap_err().to_string(),
        "reason_text: holds control characters other than line breaks and tabs"
    );
    let none = CancellationRules { reasons: vec![], ..CancellationRules::default() };
    assert_eq!(
        Reason::parse(&none, Some("other"), None).unwrap_err().to_string(),
        "reason: \"other\" is not a reason offered (no reasons are offered)"
    );
    // Without `other` among the reasons, there is no free text at all.
    let no_other = CancellationRules { reasons: vec!["moving".into()], ..CancellationRules::default() };
    assert!(matches!(
        Reason::parse(&no_other, Some("other"), Some("x")),
        Err(CancellationError::UnknownReason { .. })
    ));
}

fn offer_rules(text: &[(&str, &str)]) -> CancellationRules {
    CancellationRules {
        retention_offer: Some(RetentionOffer {
            id: "half_price".into(),
            text: text.iter().map(|(l, t)| (l.to_string(), t.to_string())).collect(),
        }),
        ..CancellationRules::default()
    }
}

#[test]
fn rules_check_names_the_first_bad_field() {
    assert_eq!(CancellationRules::default().check(), Ok(()));
    let field_of = |r: CancellationRules| match r.check() {
        Err(CancellationError::Rule { field, problem }) => format!("{field}: {problem}"),
        other => panic!("{other:?}"),
    };
    let reasons = |ids: &[&str]| CancellationRules {
        reasons: ids.iter().map(|s| s.to_string()).collect(),
        ..CancellationRules::default()
    };
    assert!(
        field_of(reasons(&["moving", "Too Expensive"]))
            .starts_with("reasons[1]: \"Too Expensive\" is not an id")
    );
    assert!(field_of(reasons(&["1st"])).starts_with("reasons[0]: \"1st\" is not an id"));
    assert_eq!(field_of(reasons(&["moving", "other", "moving"])), "reasons[2]: \"moving\" is listed twice");
    let many: Vec<String> = (0..=REASONS_MAX).map(|i| format!("r{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(field_of(reasons(&many)), "reasons: 17 reasons, more than 16");
    assert_eq!(reasons(&[]).check(), Ok(()));

    assert_eq!(offer_rules(&[("en", "Stay for half price")]).check(), Ok(()));
    assert_eq!(field_of(offer_rules(&[])), "retention_offer.text: gives no text; give at least one locale");
    assert!(field_of(offer_rules(&[("EN", "x")])).starts_with("retention_offer.text.EN: not a locale tag"));
    assert_eq!(field_of(offer_rules(&[("en", " ")])), "retention_offer.text.en: is empty");
    let long = "x".repeat(OFFER_TEXT_CHARS_MAX + 1);
    assert_eq!(
        field_of(offer_rules(&[("fr", &long)])),
        "retention_offer.text.fr: 501 characters, more than 500"
    );
    let mut bad_id = offer_rules(&[("en", "x")]);
    bad_id.retention_offer.as_mut().unwrap().id = "half price".into();
    assert!(field_of(bad_id).starts_with("retention_offer.id: \"half price\" is not an id"));
}

#[test]
fn rules_read_from_settings() {
    let read = |s: &str| toml::from_str::<CancellationRules>(s);
    assert_eq!(read("").unwrap(), CancellationRules::default());
    let r = read(
        r#"
        effective = "end_of_cycle"
        billing = "in_arrears"
        reasons = ["moving", "other"]

        [retention_offer]
        id = "half_price"
        text = { en = "Stay for half price", fr = "Restez pour moitie prix" }
        "#,
    )
    .unwrap();
    assert_eq!(r.effective, EndOfCycle);
    assert_eq!(r.billing, InArrears);
    assert_eq!(r.reasons, ["moving", "other"]);
    assert_eq!(r.retention_offer.as_ref().unwrap().text.len(), 2);
    assert_eq!(r.check(), Ok(()));
    // Misspelt fields and values, and a second offer, are refused.
    assert!(read("efective = \"immediately\"").unwrap_err().to_string().contains("efective"));
    assert!(read("billing = \"monthly\"").unwrap_err().to_string().contains("monthly"));
    assert!(read("[retention_offer]\nid = \"a\"\ntext = {}\ncode = 1").is_err());
    assert!(
        read("[[retention_offer]]\nid = \"a\"\ntext = {}\n[[retention_offer]]\nid = \"b\"\ntext = {}")
            .is_err()
    );
}

#[test]
fn offer_is_shown_at_most_once_and_in_the_customer_language() {
    assert_eq!(retention_offer_to_show(&CancellationRules::default(), false, &locale("en")), None);
    let r = offer_rules(&[("en", "Stay"), ("fr", "Restez"), ("fr-CA", "Restez (CA)")]);
    assert_eq!(retention_offer_to_show(&r, false, &locale("fr-CA")), Some(("half_price", "Restez (CA)")));
    assert_eq!(retention_offer_to_show(&r, false, &locale("fr-FR")), Some(("half_price", "Restez")));
    assert_eq!(retention_offer_to_show(&r, false, &locale("de")), Some(("half_price", "Stay")));
    assert_eq!(retention_offer_to_show(&r, true, &locale("en")), None);
    // No English: the first locale in sorted order; English as `en-GB` before others.
    let r = offer_rules(&[("es", "Quedate"), ("de", "Bleiben")]);
    assert_eq!(retention_offer_to_show(&r, false, &locale("ja")), Some(("half_price", "Bleiben")));
    let r = offer_rules(&[("es", "Quedate"), ("en-GB", "Stay, mate"), ("de", "Bleiben")]);
    assert_eq!(retention_offer_to_show(&r, false, &locale("ja")), Some(("half_price", "Stay, mate")));
}

fn request<'a>(zone: &'a Zone, locale: &'a Locale, shown_before: bool) -> CancelRequest<'a> {
    CancelRequest {
        customer_id: "cust-1",
        status: CustomerStatus::Active,
        channel: RequestChannel::Web,
        reason_id: Some("other"),
        reason_text: Some("moving abroad"),
        locale,
        offer_shown_before: shown_before,
        bill: BillInputs {
            price: gbp(3000),
            billing_day: 1,
            zone,
            requested_at: ts("2026-12-12T14:03:00.250Z"),
            unbilled_credits_minor: 500,
        },
        sequence: 42,
    }
}

#[test]
fn one_request_cancels_and_records_every_step() {
    let (london, en) = (zone("Europe/London"), locale("en-GB"));
    let r = offer_rules(&[("en", "Stay for half price")]);
    let done = cancel(&r, &request(&london, &en, false)).unwrap();
    assert_eq!(done.reference, "CXL-8735-4903");
    assert_eq!(done.offer, Some(("half_price".to_string(), "Stay for half price".to_string())));
    assert_eq!(done.bill.total_minor, -2379);
    let at = ts("2026-12-12T14:03:00Z");
    let reason = Reason { id: "other".into(), text: Some("moving abroad".into()) };
    let want = [
        Step::Requested { channel: RequestChannel::Web },
        Step::ReasonGiven { reason: reason.clone() },
        Step::RetentionOfferShown { offer_id: "half_price".into() },
        Step::FinalBillComputed { total_minor: -2379 },
        Step::Confirmed { reference: "CXL-8735-4903".into(), effective_at: at },
    ];
    assert_eq!(done.audit, want.map(|step| AuditStep { at, step }));
    assert_eq!(done.reason, Some(reason));
    assert_eq!(customer_steps(&done.audit), 1);
    let ease = Ease { cancel_steps: customer_steps(&done.audit), sign_up_steps: 1 };
    assert!(ease.as_easy_as_joining());
    assert!(!Ease { cancel_steps: 3, sign_up_steps: 1 }.as_easy_as_joining());

    // The same customer never sees the offer again; skipping the reason is recorded.
    assert!(offer_shown_before(&done.audit));
    let again = CancelRequest { reason_id: None, reason_text: None, ..request(&london, &en, true) };
    let again = cancel(&r, &again).unwrap();
    assert_eq!(again.offer, None);
    assert_eq!(again.reason, None);
    let kinds: Vec<&Step> = again.audit.iter().map(|s| &s.step).collect();
    assert_eq!(kinds[1], &Step::ReasonSkipped);
    assert!(!offer_shown_before(&again.audit));
    assert_eq!(again.audit.len(), 4);
}

#[test]
fn bad_requests_are_refused_before_anything_is_built() {
    let (london, en) = (zone("Europe/London"), locale("en"));
    let r = CancellationRules::default();
    let cancelled = CancelRequest { status: CustomerStatus::Cancelled, ..request(&london, &en, false) };
    assert_eq!(
        cancel(&r, &cancelled).unwrap_err().to_string(),
        "customer cust-1: the account is already cancelled"
    );
    let bad_reason = CancelRequest { reason_id: Some("bored"), ..request(&london, &en, false) };
    assert!(matches!(cancel(&r, &bad_reason), Err(CancellationError::UnknownReason { .. })));
    let bad_id = CancelRequest { customer_id: " cust-1", ..request(&london, &en, false) };
    assert!(cancel(&r, &bad_id).unwrap_err().to_string().starts_with("customer_id \" cust-1\""));
    let mut bad_day = request(&london, &en, false);
    bad_day.bill.billing_day = 31;
    assert_eq!(cancel(&r, &bad_day), Err(CancellationError::BillingDay { value: 31 }));
}

#[test]
fn audit_steps_serialize_tagged_in_snake_case() {
    let step = AuditStep {
        at: ts("2026-12-12T14:03:00Z"),
        step: Step::RetentionOfferShown { offer_id: "half_price".into() },
    };
    let json = serde_json::to_string(&step).unwrap();
    assert_eq!(
        json,
        r#"{"at":"2026-12-12T14:03:00Z","step":{"kind":"retention_offer_shown","offer_id":"half_price"}}"#
    );
    assert_eq!(serde_json::from_str::<AuditStep>(&json).unwrap(), step);
    let skipped = serde_json::to_string(&Step::ReasonSkipped).unwrap();
    assert_eq!(skipped, r#"{"kind":"reason_skipped"}"#);
    let requested = serde_json::to_value(Step::Requested { channel: RequestChannel::Phone }).unwrap();
    assert_eq!(requested, serde_json::json!({"kind": "requested", "channel": "phone"}));
    assert!(serde_json::from_str::<Step>(r#"{"kind":"requested","channel":"web","extra":1}"#).is_err());
    let bill = london_bill("2026-12-12T14:03:00Z", Immediately, InAdvance);
    let bill = serde_json::to_value(&bill).unwrap();
    assert_eq!(bill["currency"], "GBP");
    assert_eq!(bill["lines"][0]["code"], "unused_refund");
    assert_eq!(bill["lines"][0]["minor"], -1879);
}

#[test]
fn channels_and_references() {
    for c in RequestChannel::ALL {
        assert_eq!(RequestChannel::parse(c.as_str()), Ok(c));
    }
    assert_eq!(
        RequestChannel::parse("fax").unwrap_err().to_string(),
        "channel \"fax\" is not web, app, api, phone, chat, email or store"
    );
    assert_eq!(reference(42), "CXL-8735-4903");
    assert_eq!(parse_reference("reference", "CXL-8735-4903"), Ok(42));
    // A cancellation confirmed before references were scrambled is still found.
    assert_eq!(parse_reference("reference", "CXL-00000427"), Ok(42));
    let refuse = |s: &str| parse_reference("reference", s).unwrap_err().to_string();
    assert_eq!(
        refuse("CXL-8735-4902"),
        "reference: \"CXL-8735-4902\" is not a cancellation reference (like CXL-8735-4903)"
    );
    assert!(parse_reference("reference", "APT-8735-4903").is_err());
    assert!(parse_reference("reference", "CXL-8735-4092").is_err());
}

/// A time zone for the properties, with and without clock changes.
fn zones() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["UTC", "Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata"])
}

proptest! {
    /// For every instant of a cycle, the unused refund (billed in advance) and the used
    /// charge (billed in arrears) add up to the price, save one minor unit when both
    /// exact amounts are halves (ROUNDING rounds each half up).
    #[test]
    fn refund_and_charge_make_up_the_price(
        zone_name in zones(),
        day in 1u8..=28,
        price in 0i64..100_000_000,
        second in 1_577_836_800i64..2_051_222_400, // 2020 to 2035
        credits in 0i64..1_000_000,
    ) {
        let z = zone(zone_name);
        let at = Timestamp::from_second(second).unwrap();
        let inputs = BillInputs {
            price: gbp(price),
            billing_day: day,
            zone: &z,
            requested_at: at,
            unbilled_credits_minor: credits,
        };
        let refund = final_bill(&rules(Immediately, InAdvance), &inputs).unwrap();
        let charge = final_bill(&rules(Immediately, InArrears), &inputs).unwrap();
        let cycle = cycle_containing(at, day, &z.tz).unwrap();
        prop_assert_eq!(refund.cycle, CycleSpan { start: cycle.start, end: cycle.end });
        prop_assert!(cycle.start <= at && at < cycle.end);
        let minor_of = |b: &FinalBill, code| b.lines.iter().find(|l| l.code == code).map_or(0, |l| l.minor);
        let back = -minor_of(&refund, LineCode::UnusedRefund);
        let used = minor_of(&charge, LineCode::UsedCharge);
        prop_assert!((0..=price).contains(&back) && (0..=price).contains(&used));
        let whole = i128::from(cycle.seconds());
        let unused = i128::from(cycle.end.as_second() - second);
        let tie = 2 * ((i128::from(price) * unused) % whole) == whole;
        prop_assert_eq!(back + used, price + i64::from(tie), "unused {} of {}", unused, whole);
        // Totals are the sums of the lines, credits taken off both.
        for bill in [&refund, &charge] {
            prop_assert_eq!(bill.total_minor, bill.lines.iter().map(|l| l.minor).sum::<i64>());
            prop_assert_eq!(minor_of(bill, LineCode::Credits), -credits);
            prop_assert_eq!(bill.effective_at, at);
        }
    }

    /// A later request in the same cycle never refunds more, nor charges less.
    #[test]
    fn later_requests_refund_less_and_charge_more(
        zone_name in zones(),
        day in 1u8..=28,
        price in 0i64..100_000_000,
        second in 1_577_836_800i64..2_051_222_400,
        later in 0i64..3_000_000,
    ) {
        let z = zone(zone_name);
        let bill = |s: i64, billing| {
            let inputs = BillInputs {
                price: gbp(price),
                billing_day: day,
                zone: &z,
                requested_at: Timestamp::from_second(s).unwrap(),
                unbilled_credits_minor: 0,
            };
            final_bill(&rules(Immediately, billing), &inputs).unwrap()
        };
        let (a, b) = (bill(second, InAdvance), bill(second + later, InAdvance));
        prop_assume!(a.cycle == b.cycle);
        prop_assert!(a.total_minor <= b.total_minor);
        prop_assert!(bill(second, InArrears).total_minor <= bill(second + later, InArrears).total_minor);
    }
}
