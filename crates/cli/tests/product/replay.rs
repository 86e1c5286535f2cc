//! `amends replay` through the real binary: a book imported into a fresh database, a file of
//! device events (out of order, one sent twice, one malformed, one for an unknown device),
//! and the NDJSON records and downtime CSV it prints, checked against times worked out by
//! hand.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nbasic,Basic,4999,USD\n";
/// One node with two amplifiers: a1 serves four modems, a2 three.
const TOPOLOGY: &str = "element_id,parent_id,kind,name
n1,,node,Node 1
a1,n1,amplifier,Amp 1
a2,n1,amplifier,Amp 2
";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana,ana@example.com,,en-US,UTC,basic,a1,M1,1,2020-01-01T00:00:00Z,active
C2,Bo,bo@example.com,,en-US,UTC,basic,a1,M2,1,2020-01-01T00:00:00Z,active
C3,Cy,cy@example.com,,en-US,UTC,basic,a1,M3,1,2020-01-01T00:00:00Z,active
C4,Di,di@example.com,,en-US,UTC,basic,a1,M4,1,2020-01-01T00:00:00Z,active
C5,Ed,ed@example.com,,en-US,UTC,basic,a1,,1,2020-01-01T00:00:00Z,active
C6,Fa,fa@example.com,,en-US,UTC,basic,a2,M6,1,2020-01-01T00:00:00Z,active
C7,Gu,gu@example.com,,en-US,UTC,basic,a2,M7,1,2020-01-01T00:00:00Z,active
C8,Ha,ha@example.com,,en-US,UTC,basic,a2,M8,1,2020-01-01T00:00:00Z,active
";

/// Amplifier a1 fails: M1 to M3 drop at 10:00:00-10:00:20 (M2 with a dying gasp), M4 stays
/// up. M1 comes back at 10:30, which leaves two offline, fewer than the three an element
/// needs: a1 is back, and M2 and M3, still offline, are listed for follow-up. Lines arrive
/// slightly out of order; M1's drop is sent twice; M6 flaps within the hold-down.
const EVENTS: &str = r#"{"device_id":"M2","state":"offline","at":"2026-11-23T10:00:10Z","reason":"dying_gasp"}
{"device_id":"M1","state":"offline","at":"2026-11-23T10:00:00Z"}
{"device_id":"M1","state":"offline","at":"2026-11-23T10:00:00Z"}
{"device_id":"M3","state":"offline","at":"2026-11-23T10:00:20Z"}
this is not json
{"device_id":"M9","state":"offline","at":"2026-11-23T10:00:30Z"}
{"device_id":"M4","state":"online","at":"2026-11-23T10:00:40Z"}
{"device_id":"M6","state":"offline","at":"2026-11-23T10:05:00Z"}
{"device_id":"M6","state":"online","at":"2026-11-23T10:05:30Z"}
{"device_id":"M1","state":"online","at":"2026-11-23T10:30:00Z"}
{"device_id":"M2","state":"online","at":"2026-11-23T10:40:00Z"}
{"device_id":"M3","state":"online","at":"2026-11-23T11:00:00Z"}
"#;

fn amends(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amends"))
        .arg("--database")
        .arg(dir.join("amends.db"))
        .args(["--now", "2026-11-23T12:00:00Z"])
        .args(args)
        .env_remove("AMENDS_DATABASE_URL")
        .env_remove("AMENDS_CONFIG")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = amends(dir, args);
    assert!(out.status.success(), "amends {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    std::fs::write(book.join("plans.csv"), PLANS).unwrap();
    std::fs::write(book.join("topology.csv"), TOPOLOGY).unwrap();
    std::fs::write(book.join("customers.csv"), CUSTOMERS).unwrap();
    std::fs::write(dir.path().join("events.ndjson"), EVENTS).unwrap();
    ok(dir.path(), &["import", "--dir", book.to_str().unwrap()]);
    dir
}

fn records(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn of_type<'a>(records: &'a [Value], t: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

#[test]
fn replay_detects_the_amplifier_and_gives_each_customer_their_own_downtime() {
    let dir = setup();
    let csv = dir.path().join("downtime.csv");
    let events = dir.path().join("events.ndjson");
    let out = ok(
        dir.path(),
        &["replay", "--events", events.to_str().unwrap(), "--downtime-csv", csv.to_str().unwrap()],
    );
    let r = records(&out);

    let opened = of_type(&r, "opened");
    assert_eq!(opened.len(), 1, "{out}");
    // M1's hold-down ends at 10:01:00, but a1 needs three devices: M3's ends at 10:01:20.
    assert_eq!(opened[0]["at"], "2026-11-23T10:01:20Z");
    assert_eq!(opened[0]["element"], "a1");
    assert_eq!(opened[0]["incident"], "T1");
    assert_eq!(opened[0]["devices_offline"], 3);
    assert_eq!(opened[0]["devices_total"], 4);
    // Three customers with an offline modem, and C5, who has no modem (presumed affected).
    assert_eq!(opened[0]["customers_affected"], 4);

    let resolved = of_type(&r, "resolved");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["at"], "2026-11-23T10:30:00Z");
    assert_eq!(resolved[0]["devices_still_offline"], 2);
    let still: Vec<&str> =
        of_type(&r, "still_offline").iter().map(|s| s["customer_id"].as_str().unwrap()).collect();
    assert_eq!(still, ["C2", "C3"]);

    let rejected = of_type(&r, "rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 5);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("not an event object"));

    let summary = of_type(&r, "summary");
    let s = summary[0];
    assert_eq!(s["lines"], 12);
    assert_eq!(s["rejected"], 1);
    assert_eq!(s["unknown_devices"], 1);
    assert_eq!(s["unknown_sample"][0], "M9");
    assert_eq!(s["duplicates"], 1);
    assert_eq!(s["momentary"], 1, "M6 was back within the hold-down");
    assert_eq!(s["incidents_opened"], 1);
    assert_eq!(s["incidents_open_at_end"], 0);

    // Each customer's own downtime, within the incident (10:00:00 to 10:30:00); C5 has no
    // modem, so the incident's span is presumed.
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        csv,
        "customer_id,incident_id,start,end,minutes
C1,T1,2026-11-23T10:00:00Z,2026-11-23T10:30:00Z,30
C2,T1,2026-11-23T10:00:10Z,2026-11-23T10:30:00Z,29.83...
C3,T1,2026-11-23T10:00:20Z,2026-11-23T10:30:00Z,29.66...
C5,T1,2026-11-23T10:00:00Z,2026-11-23T10:30:00Z,30
"
    );
}

#[test]
fn replay_thresholds_can_be_tried_from_the_command_line() {
    let dir = setup();
    let events = dir.path().join("events.ndjson");
    // Four devices needed: a1 never counts as out, so there is no incident.
    let out = ok(dir.path(), &["replay", "--events", events.to_str().unwrap(), "--min-devices", "4"]);
    let r = records(&out);
    assert!(of_type(&r, "opened").is_empty(), "{out}");
    assert_eq!(of_type(&r, "summary")[0]["confirmed"], 3);

    let bad = amends(dir.path(), &["replay", "--events", events.to_str().unwrap(), "--min-fraction", "1.5"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("detection.min_fraction = 1.5"), "{err}");
}

#[test]
fn replay_refuses_events_from_the_future() {
    let dir = setup();
    let events = dir.path().join("future.ndjson");
    std::fs::write(&events, "{\"device_id\":\"M1\",\"state\":\"offline\",\"at\":\"2027-01-01T00:00:00Z\"}\n")
        .unwrap();
    let r = records(&ok(dir.path(), &["replay", "--events", events.to_str().unwrap()]));
    let rejected = of_type(&r, "rejected");
    assert_eq!(rejected[0]["line"], 1);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("more than 300 s after the clock"));
}
