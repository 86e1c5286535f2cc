//! End to end through the real binary: leaving is as easy as joining. A customer signs up
//! in one command and cancels in one, skipping the reason question; the confirmation
//! carries a reference, the prorated final bill and the one retention offer, and the
//! steps are counted next to the sign-up's. Cancelling again, or with a reason that is not
//! offered, is refused and changes nothing.

use crate::binary;

use binary::Env;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfibre,Fibre,3100,GBP\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,London\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Amy Clarke,amy@example.co.uk,,en-GB,Europe/London,fibre,root,M1,1,2020-01-01T00:00:00Z,active
";
const SETTINGS: &str = r#"provider_name = "Example Fibre"

[cancellation]
effective = "immediately"
billing = "in_advance"
reasons = ["too_expensive", "moving", "other"]

[cancellation.retention_offer]
id = "half_price_3m"
text = { en = "three months at half price if you stay: reply to this email." }
"#;

fn setup() -> Env {
    let env = Env::configured(SETTINGS);
    env.import_book("2026-12-01T09:00:00Z", PLANS, TOPOLOGY, CUSTOMERS);
    env
}

#[test]
fn a_customer_joins_in_one_step_and_leaves_in_one_with_a_skipped_reason() {
    let env = setup();
    let run = |now: &str, args: &[&str]| env.json(now, args);
    let fail = |now: &str, args: &[&str]| env.fails(now, args);
    // Joining: one command.
    let joined = run(
        "2026-12-01T09:00:00Z",
        &[
            "customer",
            "join",
            "--id",
            "C9",
            "--name",
            "Dev Patel",
            "--email",
            "dev@example.co.uk",
            "--locale",
            "en-GB",
            "--timezone",
            "Europe/London",
            "--plan",
            "fibre",
            "--element",
            "root",
            "--billing-day",
            "1",
            "--channel",
            "web",
        ],
    );
    assert_eq!((joined["customer_id"].as_str(), joined["steps"].as_i64()), (Some("C9"), Some(1)));
    let dup = fail(
        "2026-12-01T09:00:00Z",
        &[
            "customer",
            "join",
            "--id",
            "C9",
            "--name",
            "X",
            "--locale",
            "en-GB",
            "--timezone",
            "UTC",
            "--plan",
            "fibre",
            "--element",
            "root",
            "--billing-day",
            "1",
        ],
    );
    assert!(dup.contains("C9"), "{dup}");

    // A reason that is not offered: refused, naming the choices; nothing changes.
    let bad = fail("2026-12-12T14:03:00Z", &["customer", "cancel", "C9", "--reason", "rude_staff"]);
    assert!(bad.contains("rude_staff") && bad.contains("too_expensive, moving, other"), "{bad}");

    // Leaving: one command, the reason skipped. 31.00 GBP a month billed in advance on
    // the 1st; cancelled at 14:03 on 12 December, the unused part is refunded.
    let done = run("2026-12-12T14:03:00Z", &["customer", "cancel", "C9", "--channel", "web"]);
    let reference = done["reference"].as_str().unwrap();
    assert!(reference.starts_with("CXL-"), "{done}");
    assert_eq!(done["reason"], serde_json::Value::Null);
    assert_eq!(done["ease"]["cancel_steps"], 1);
    assert_eq!(done["ease"]["sign_up_steps"], 1);
    let kinds: Vec<&str> =
        done["audit"].as_array().unwrap().iter().map(|s| s["step"]["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["requested", "reason_skipped", "retention_offer_shown", "final_bill_computed", "confirmed"]
    );
    // 1,677,420 s of the 2,678,400 s December cycle unused: 31.00 x 1,677,420 / 2,678,400 = 19.4145..., 19.41.
    assert_eq!(done["final_bill"]["total_minor"], -1941, "{}", done["final_bill"]);
    assert_eq!(done["retention_offer"]["id"], "half_price_3m");
    assert_eq!(done["effective_at"], "2026-12-12T14:03:00Z");

    // Twice is refused, naming the first.
    let again = fail("2026-12-12T15:00:00Z", &["customer", "cancel", "C9"]);
    assert!(again.contains("already cancelled") && again.contains(reference), "{again}");

    // The confirmation reached the customer at once, once.
    env.ok("2026-12-12T14:03:00Z", &["deliver"]);
    env.ok("2026-12-12T14:03:00Z", &["deliver"]);
    let outbox = env.outbox();
    assert_eq!(outbox.matches(&format!("Your service is cancelled ({reference})")).count(), 1, "{outbox}");
    // The customer's version: no minus sign, no seconds (the ledger keeps those).
    assert!(outbox.contains("We will refund you £19.41:"), "{outbox}");
    assert!(
        outbox.contains("We will refund £19.41 for the 19 days and 10 hours you paid for and will not use."),
        "{outbox}"
    );
    assert!(!outbox.contains("-£19.41") && !outbox.contains("2,678,400 s"), "{outbox}");
    assert!(outbox.contains("three months at half price"), "{outbox}");
}

#[test]
fn leaving_at_the_end_of_the_cycle_keeps_the_customer_served_until_then() {
    let env =
        Env::configured(&SETTINGS.replace(r#"effective = "immediately""#, r#"effective = "end_of_cycle""#));
    env.import_book("2026-12-01T09:00:00Z", PLANS, TOPOLOGY, CUSTOMERS);
    let done = env.json("2026-12-12T14:03:00Z", &["customer", "cancel", "C1"]);
    let reference = done["reference"].as_str().unwrap().to_string();
    // The cycle billed in advance on 1 December runs to 1 January: nothing to refund.
    assert_eq!(done["effective_at"], "2027-01-01T00:00:00Z");
    assert_eq!(done["final_bill"]["total_minor"], 0, "{}", done["final_bill"]);
    // Until then Amy is a customer like any other, and cannot cancel twice.
    let again = env.fails("2026-12-20T10:00:00Z", &["customer", "cancel", "C1"]);
    assert!(again.contains("already cancelled") && again.contains(&reference), "{again}");
    let outage = |now: &str| {
        env.ok(
            now,
            &[
                "incident",
                "declare",
                "--element",
                "root",
                "--cause",
                "A cut cable",
                "--etr",
                "2027-02-01T00:00:00Z",
                "--next-update-by",
                "2027-02-01T00:00:00Z",
            ],
        );
        env.ok(now, &["tick"]);
        let notices = env.json(now, &["notices", "list", "--customer", "C1"]);
        notices.as_array().unwrap().iter().filter(|n| n["kind"] == "acknowledgement").count()
    };
    assert_eq!(outage("2026-12-20T10:00:00Z"), 1, "told of an outage before the cycle ends");
    // From the end of the cycle, the cancellation has taken effect: no more outage news.
    env.ok("2027-01-01T00:00:00Z", &["tick"]);
    assert_eq!(outage("2027-01-02T10:00:00Z"), 1, "not told of the second outage");
}
