//! End to end through the real binary: a visit booked with its confirmation, the
//! technician who never came detected on a controlled clock (`--now`), and everything the
//! customer is owed done by amends with no human action: the apology, the Ofcom
//! compensation for a UK customer, the earliest slots held for them ahead of new
//! bookings, and a case for the visit's owner. Ticking again repeats none of it.

use crate::binary;

use binary::Env;
use serde_json::Value;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfibre,Fibre,3500,GBP\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,London\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment,jurisdiction
C1,Amy Clarke,amy@example.co.uk,,en-GB,Europe/London,fibre,root,M1,1,2020-01-01T00:00:00Z,active,residential,GB-EAW
C2,Ben Shaw,ben@example.co.uk,,en-GB,Europe/London,fibre,root,M2,1,2020-01-01T00:00:00Z,active,residential,GB-EAW
";
const AGENTS: &str = "id,name,role,lead,active\nlee,Lee Lead,lead,,\nann,Ann Agent,agent,lee,true\n";

fn setup() -> Env {
    let ofcom = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/uk-ofcom-automatic-compensation.toml");
    let settings = format!(
        r#"provider_name = "Example Fibre"

[[policies]]
file = "{ofcom}"
jurisdictions = ["GB-EAW", "GB-SCT", "GB-NIR"]

[appointments]
zone = "Europe/London"
windows = ["08:00-12:00", "12:00-16:00"]
technicians = ["T1", "T2"]
grace_minutes = 30
offer_slots = 3
hold_hours = 48
calendar_domain = "example.co.uk"
"#
    );
    let env = Env::configured(&settings);
    let t0 = "2026-12-01T09:00:00Z";
    env.import_book(t0, PLANS, TOPOLOGY, CUSTOMERS);
    env.import_agents(t0, AGENTS);
    env
}

/// The `.ics` files the file channel wrote for a visit, decoded, in the order sent.
fn calendar_files(outbox: &str, reference: &str) -> Vec<String> {
    use base64::Engine;
    let marker = format!("--- {reference}.ics base64 ---\n");
    outbox
        .split(&marker)
        .skip(1)
        .map(|rest| {
            let encoded: String = rest.lines().take_while(|l| !l.is_empty()).collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap()
        })
        .collect()
}

/// `amends appointment book` by Ann, for a customer, a technician and a window.
fn booking<'a>(customer: &'a str, technician: &'a str, start: &'a str, end: &'a str) -> [&'a str; 12] {
    let (c, t) = (customer, technician);
    ["appointment", "book", "--as", "ann", "--customer", c, "--technician", t, "--start", start, "--end", end]
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_no_show_is_detected_and_made_good_with_no_human_action_and_never_twice() {
    let env = setup();
    // Thursday 3 December 2026, 08:00 to 12:00 in London (GMT, so the same in UTC).
    let booked = env
        .json("2026-12-01T09:00:00Z", &booking("C1", "T1", "2026-12-03T08:00:00Z", "2026-12-03T12:00:00Z"));
    let reference = booked["reference"].as_str().unwrap().to_string();
    assert!(reference.starts_with("APT-"), "{booked}");
    assert_eq!(booked["owner"], "ann");
    env.ok("2026-12-01T09:00:00Z", &["deliver"]);
    let outbox = env.outbox();
    assert!(
        outbox.contains("Subject: Your visit is booked for Thursday 3 December at 08:00 – 12:00 GMT"),
        "{outbox}"
    );
    assert!(
        outbox.contains(&format!("Attachment: {reference}.ics (text/calendar; charset=utf-8")),
        "{outbox}"
    );
    let ics = calendar_files(&outbox, &reference).remove(0);
    for line in [
        format!("UID:{reference}@example.co.uk"),
        "DTSTART:20261203T080000Z".into(),
        "DTEND:20261203T120000Z".into(),
        "STATUS:CONFIRMED".into(),
    ] {
        assert!(ics.contains(&format!("{line}\r\n")), "{line} in:\n{ics}");
    }

    // Nobody comes. One minute before the grace is over, nothing has happened.
    env.ok("2026-12-03T12:29:00Z", &["tick"]);
    let early = env.json("2026-12-03T12:29:00Z", &["appointment", "show", &reference]);
    assert_eq!(early["status"], "booked");
    assert_eq!(early["failure"], Value::Null);

    // At the end of the grace, the tick finds the no-show and does everything at once.
    env.ok("2026-12-03T12:30:00Z", &["tick"]);
    let missed = env.json("2026-12-03T12:30:00Z", &["appointment", "show", &reference]);
    assert_eq!(missed["status"], "missed");
    assert_eq!(missed["missed_at"], "2026-12-03T12:30:00Z");
    assert_eq!(missed["failure"]["kind"], "no_show");
    // Ofcom's missed-appointment payment for 2026-27: 32.31 GBP, automatically.
    let credits = missed["credits"].as_array().unwrap();
    assert_eq!(credits.len(), 1, "{credits:?}");
    assert_eq!(credits[0]["amount_minor"], 3231);
    assert_eq!(credits[0]["policy_id"], "uk-ofcom-automatic-compensation");
    assert!(credits[0]["explanation"].as_str().unwrap().contains("32.31 GBP"), "{}", credits[0]);
    // The earliest free slots after now, held for Amy: the 12:00 window has started, so
    // Friday's 08:00 (T1 and T2 both free: offered as one time) and 12:00, Monday's 08:00.
    let holds: Vec<(&str, &str)> = missed["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["start"].as_str().unwrap(), h["technician_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        holds,
        [("2026-12-04T08:00:00Z", "T1"), ("2026-12-04T12:00:00Z", "T1"), ("2026-12-07T08:00:00Z", "T1")]
    );
    // A case for the visit's owner, opened by amends.
    let cases = env.json("2026-12-03T12:30:00Z", &["case", "list", "--customer", "C1"]);
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["owner"], "ann");
    let case = env.json("2026-12-03T12:30:00Z", &["case", "show", cases[0]["case_id"].as_str().unwrap()]);
    assert_eq!(case["source"]["appointment_id"], reference.as_str());
    // Its "lessen" step is done: the compensation amends paid is recorded on it.
    let compensated: Vec<&Value> =
        case["events"].as_array().unwrap().iter().filter(|e| e["type"] == "compensated").collect();
    assert_eq!(compensated.len(), 1, "{case}");
    assert_eq!((&compensated[0]["by"], &compensated[0]["amount_minor"]), (&"amends".into(), &3231.into()));

    // Ticks again, later and later: nothing is done twice.
    for now in ["2026-12-03T12:31:00Z", "2026-12-03T18:00:00Z", "2026-12-04T07:00:00Z"] {
        env.ok(now, &["tick"]);
    }
    let again = env.json("2026-12-04T07:00:00Z", &["appointment", "show", &reference]);
    assert_eq!(again["credits"], missed["credits"]);
    assert_eq!(again["holds"], missed["holds"]);
    assert_eq!(again["notices"].as_array().unwrap().len(), missed["notices"].as_array().unwrap().len());
    assert_eq!(
        env.json("2026-12-04T07:00:00Z", &["case", "list", "--customer", "C1"]).as_array().unwrap().len(),
        1
    );

    // Amy heard it once: sorry, what was credited, the times kept for her.
    env.ok("2026-12-04T07:00:00Z", &["deliver"]);
    env.ok("2026-12-04T07:00:00Z", &["deliver"]);
    let outbox = env.outbox();
    assert_eq!(count(&outbox, &format!("We are sorry: we missed your visit ({reference})")), 1, "{outbox}");
    assert_eq!(count(&outbox, "We have credited £32.31 to your account"), 1, "{outbox}");
    assert!(outbox.contains("Friday 4 December at 08:00 – 12:00 GMT"), "{outbox}");

    // The held slot goes to Amy's rebooking, not to someone else's new booking.
    let refused = env
        .fails("2026-12-04T07:00:00Z", &booking("C2", "T1", "2026-12-04T08:00:00Z", "2026-12-04T12:00:00Z"));
    assert!(refused.contains("held until") && refused.contains(&reference), "{refused}");
    let rebooked = env.json(
        "2026-12-04T07:00:00Z",
        &[
            &booking("C1", "T1", "2026-12-04T08:00:00Z", "2026-12-04T12:00:00Z")[..],
            &["--rebooked-from", &reference],
        ]
        .concat(),
    );
    assert_eq!(rebooked["rebooked_from"], reference.as_str());
}

#[test]
fn a_late_provider_cancellation_counts_as_a_missed_visit_and_bad_bookings_change_nothing() {
    let env = setup();
    let book = |now: &str, customer: &str, start: &str, end: &str| {
        env.json(now, &booking(customer, "T2", start, end))
    };
    let a = book("2026-12-01T09:00:00Z", "C1", "2026-12-02T12:00:00Z", "2026-12-02T16:00:00Z");
    let reference = a["reference"].as_str().unwrap();
    // In the past, on top of the same technician, too long: refused, nothing written.
    for (start, end, words) in [
        ("2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z", "is not after now"),
        ("2026-12-02T13:00:00Z", "2026-12-02T15:00:00Z", "overlaps the same technician's appointment"),
        ("2026-12-05T06:00:00Z", "2026-12-05T20:00:00Z", "longer than 12 hours"),
    ] {
        let err = env.fails("2026-12-01T09:00:00Z", &booking("C2", "T2", start, end));
        assert!(err.contains(words), "{err}");
    }
    let listed = env.json("2026-12-01T09:00:00Z", &["appointment", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // The provider cancels with 20 hours' notice: handled at once, in the same command.
    let cancelled = env.json(
        "2026-12-01T16:00:00Z",
        &["appointment", "act", reference, "--as", "ann", "cancel-by-provider"],
    );
    assert_eq!(cancelled["status"], "cancelled_by_provider");
    assert_eq!(cancelled["failure"]["kind"], "late_cancellation");
    assert_eq!(cancelled["credits"][0]["amount_minor"], 3231);
    assert!(cancelled["checked_at"].is_string(), "{cancelled}");
    env.ok("2026-12-02T18:00:00Z", &["tick"]);
    let after = env.json("2026-12-02T18:00:00Z", &["appointment", "show", reference]);
    assert_eq!(after["credits"].as_array().unwrap().len(), 1);
    // A visit that happened is no failure.
    let b = book("2026-12-01T09:00:00Z", "C2", "2026-12-02T08:00:00Z", "2026-12-02T12:00:00Z");
    let b_ref = b["reference"].as_str().unwrap();
    env.json("2026-12-02T09:15:00Z", &["appointment", "act", b_ref, "--as", "ann", "arrive"]);
    env.json("2026-12-02T10:15:00Z", &["appointment", "act", b_ref, "--as", "ann", "complete"]);
    env.ok("2026-12-02T18:00:00Z", &["tick"]);
    let done = env.json("2026-12-02T18:00:00Z", &["appointment", "show", b_ref]);
    assert_eq!((done["status"].as_str(), done["failure"].is_null()), (Some("completed"), true));
    assert!(done["credits"].as_array().unwrap().is_empty());
    let typo = env.fails("2026-12-02T18:00:00Z", &["appointment", "show", "APT-2858-5589"]);
    assert!(typo.contains("\"APT-2858-5589\" is not an appointment reference"), "{typo}");
    let err = env.fails("2026-12-02T18:00:00Z", &["appointment", "act", b_ref, "--as", "ann", "arrive"]);
    assert!(err.contains("cannot record an arrival: it is completed"), "{err}");

    // The customer's own cancellation: told at once, with the event cancelled in their
    // calendar (same UID, a later sequence); the check at the window's end tells nothing
    // twice.
    let c = book("2026-12-01T09:00:00Z", "C2", "2026-12-04T08:00:00Z", "2026-12-04T12:00:00Z");
    let c_ref = c["reference"].as_str().unwrap();
    env.ok("2026-12-01T09:00:00Z", &["deliver"]);
    env.json("2026-12-01T10:00:00Z", &["appointment", "act", c_ref, "--as", "ann", "cancel-by-customer"]);
    for now in ["2026-12-01T10:00:00Z", "2026-12-04T13:00:00Z"] {
        env.ok(now, &["tick"]);
        env.ok(now, &["deliver"]);
    }
    let outbox = env.outbox();
    assert_eq!(count(&outbox, &format!("Your visit is cancelled ({c_ref})")), 1, "{outbox}");
    assert!(outbox.contains("As you asked, your visit"), "{outbox}");
    let files = calendar_files(&outbox, c_ref);
    assert_eq!(files.len(), 2, "the booking's and the cancellation's");
    assert!(files[0].contains("\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\n"), "{}", files[0]);
    assert!(files[1].contains("\r\nSEQUENCE:1\r\nSTATUS:CANCELLED\r\n"), "{}", files[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_no_show_the_customer_rebooks_a_held_slot_from_their_page_in_one_click() {
    let env = setup();
    let booked = env
        .json("2026-12-01T09:00:00Z", &booking("C1", "T1", "2026-12-03T08:00:00Z", "2026-12-03T12:00:00Z"));
    let reference = booked["reference"].as_str().unwrap().to_string();
    env.ok("2026-12-03T12:30:00Z", &["tick"]);
    env.ok("2026-12-03T12:30:00Z", &["deliver"]);
    // The apology's email carries the customer's page link.
    let outbox = env.outbox();
    let at = outbox.rfind("/my?token=").unwrap_or_else(|| panic!("no page link in:\n{outbox}"));
    let path = outbox[at..].split_whitespace().next().unwrap().to_string();
    let server = env.serve("2026-12-03T13:00:00Z");
    let http = crate::support::no_redirects();
    let html = http.get(format!("{}{path}", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("We did not come") && html.contains(&reference), "{html}");
    assert!(html.contains("We are holding these times for you"), "{html}");
    assert!(html.contains("name=\"start\" value=\"2026-12-04T08:00:00Z\""), "the first held slot: {html}");
    let at = html.find("name=\"form\" value=\"").unwrap() + "name=\"form\" value=\"".len();
    let form = html[at..].split('"').next().unwrap().to_string();

    let rebook = format!("{}/my/rebook?{}", server.base, path.split_once('?').unwrap().1);
    let fields = [("form", form.as_str()), ("visit", reference.as_str()), ("start", "2026-12-04T08:00:00Z")];
    let taken = http.post(&rebook).form(&fields).send().await.unwrap();
    assert_eq!(taken.status(), 303);
    assert!(taken.headers()["location"].to_str().unwrap().ends_with("&done=rebooked"));
    let again = http.post(&rebook).form(&fields).send().await.unwrap();
    assert_eq!(again.status(), 422, "pressed twice, booked once");
    let other = [("form", form.as_str()), ("visit", "APT-000000-0"), ("start", "2026-12-04T12:00:00Z")];
    assert_eq!(http.post(&rebook).form(&other).send().await.unwrap().status(), 422, "not their visit");

    let visits = env.json("2026-12-03T13:00:00Z", &["appointment", "list", "--customer", "C1"]);
    let rebooked: Vec<&Value> =
        visits.as_array().unwrap().iter().filter(|v| v["status"] == "booked").collect();
    assert_eq!(rebooked.len(), 1, "{visits}");
    assert_eq!(rebooked[0]["window_start"], "2026-12-04T08:00:00Z");
    assert_eq!(rebooked[0]["technician_id"], "T1");
    drop(server);
}

/// A policy that pays for a visit nobody came to only when the customer asks.
const VISIT_ON_REQUEST: &str = r#"id = "visit-on-request"
version = 1
currency = "GBP"

[[rules]]
id = "missed"
event = "appointment"
when = 'event.outcome == "no_show"'
automatic = false
pay = { basis = "once", amount = { minor = 1500 } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_policy_pays_on_request_for_a_missed_visit_is_claimed_on_the_page_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("visit-on-request.toml");
    std::fs::write(&policy, VISIT_ON_REQUEST).unwrap();
    let settings = format!(
        "provider_name = \"Example Fibre\"\n\n[[policies]]\nfile = \"{}\"\n\n[appointments]\n\
         zone = \"Europe/London\"\nwindows = [\"08:00-12:00\"]\ntechnicians = [\"T1\"]\n",
        policy.display()
    );
    let env = Env::configured(&settings);
    env.import_book("2026-12-01T09:00:00Z", PLANS, TOPOLOGY, CUSTOMERS);
    env.import_agents("2026-12-01T09:00:00Z", AGENTS);
    env.json("2026-12-01T09:00:00Z", &booking("C1", "T1", "2026-12-03T08:00:00Z", "2026-12-03T12:00:00Z"));
    env.ok("2026-12-03T12:30:00Z", &["tick"]);
    env.ok("2026-12-03T12:30:00Z", &["tick"]);
    env.ok("2026-12-03T12:30:00Z", &["deliver"]);
    let credits =
        env.json("2026-12-03T12:30:00Z", &["credits", "export", "--format", "json", "--customer", "C1"]);
    assert_eq!(credits.as_array().map(Vec::len), Some(0), "nothing credited unasked: {credits}");

    let outbox = env.outbox();
    let told = "Your terms also give you £15.00 for this, paid when you ask: claim it on your page below";
    assert_eq!(outbox.matches(told).count(), 1, "the apology tells them where to claim it:\n{outbox}");
    assert!(!outbox.contains("We have credited"), "nothing said to be credited:\n{outbox}");
    let at = outbox.rfind("/my?token=").unwrap_or_else(|| panic!("no page link in:\n{outbox}"));
    let path = outbox[at..].split_whitespace().next().unwrap().to_string();
    let server = env.serve("2026-12-03T13:00:00Z");
    let http = crate::support::no_redirects();
    let page = format!("{}{path}", server.base);
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("Claim £15.00").count(), 1, "offered once, with its amount: {html}");
    let at = html.find("name=\"form\" value=\"").unwrap() + "name=\"form\" value=\"".len();
    let form = html[at..].split('"').next().unwrap().to_string();
    let at = html.find("name=\"offer\" value=\"").unwrap() + "name=\"offer\" value=\"".len();
    // As a browser sends it: minijinja writes each `/` of the key as `&#x2f;`.
    let offer = html[at..].split('"').next().unwrap().replace("&#x2f;", "/");

    let claim = format!("{}/my/claim?{}", server.base, path.split_once('?').unwrap().1);
    for _ in 0..2 {
        let pressed =
            http.post(&claim).form(&[("form", form.as_str()), ("offer", &offer)]).send().await.unwrap();
        assert_eq!(pressed.status(), 303);
    }
    let credits =
        env.json("2026-12-03T13:00:00Z", &["credits", "export", "--format", "json", "--customer", "C1"]);
    let credits = credits.as_array().unwrap();
    assert_eq!(credits.len(), 1, "pressed twice, claimed once: {credits:?}");
    assert_eq!(credits[0]["key"], format!("{offer}/claimed"));
    assert_eq!(credits[0]["amount_minor"], 1500);
    let after = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(!after.contains("Claim £15.00"), "no button once claimed: {after}");
    drop(server);
}
