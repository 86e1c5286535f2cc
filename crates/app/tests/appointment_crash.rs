//! Never twice, never lost, for missed visits, shown by killing the process: `amends tick`
//! finds 300 no-shows at once and, for each, records it, credits the Ofcom payment, holds
//! the earliest slots, opens a case and queues the apology. It is killed with SIGKILL at
//! several points and ticked again; the ledger, the visits, the holds, the cases and the
//! outbox must come out exactly as in a run that was never interrupted.

use amends::recovery::appointments::BookRequest;
use amends::settings::{Overrides, Settings};
use amends_core::case::{Actor, Role};
use amends_store::{AppointmentFilter, CaseFilter, NoticeFilter};
use binary::{amends, copy_db, ok};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[path = "support/binary.rs"]
mod binary;

const VISITS: usize = 300;
const T_BOOK: &str = "2026-12-01T09:00:00Z";
/// The visits' window ends at 12:00 and the grace is 30 minutes.
const T_CHECK: &str = "2026-12-03T12:30:00Z";

fn write_files(root: &Path) {
    let book = root.join("book");
    std::fs::create_dir_all(&book).unwrap();
    std::fs::write(book.join("plans.csv"), "plan_id,name,monthly_price_minor,currency\nf,Fibre,3500,GBP\n")
        .unwrap();
    std::fs::write(book.join("topology.csv"), "element_id,parent_id,kind,name\nroot,,region,London\n")
        .unwrap();
    let mut customers = String::from(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment,jurisdiction\n",
    );
    for i in 0..VISITS {
        customers.push_str(&format!(
            "C{i},Customer {i},c{i}@example.co.uk,,en-GB,Europe/London,f,root,,1,2020-01-01T00:00:00Z,active,residential,GB-EAW\n"
        ));
    }
    std::fs::write(book.join("customers.csv"), customers).unwrap();
    std::fs::write(root.join("agents.csv"), "id,name,role,lead,active\nann,Ann Agent,agent,,\n").unwrap();
    let ofcom = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/uk-ofcom-automatic-compensation.toml");
    std::fs::write(
        root.join("amends.toml"),
        format!(
            "[[policies]]\nfile = \"{ofcom}\"\njurisdictions = [\"GB-EAW\"]\n\n[appointments]\nzone = \"Europe/London\"\n\
             windows = [\"08:00-12:00\", \"12:00-16:00\"]\ntechnicians = [\"T1\", \"T2\", \"T3\"]\noffer_slots = 2\n"
        ),
    )
    .unwrap();
}

fn run(root: &Path, db: &Path, now: &str) -> std::process::Command {
    let mut cmd = amends(db, now);
    cmd.arg("--config").arg(root.join("amends.toml")).arg("--outbox-file").arg(root.join("outbox.txt"));
    cmd
}

/// A database with the book, Ann, and one visit per customer on Thursday 08:00-12:00.
fn prepared(root: &Path) -> PathBuf {
    let db = root.join("prepared.db");
    ok(run(root, &db, T_BOOK).args(["import", "--dir"]).arg(root.join("book")).output().unwrap());
    ok(run(root, &db, T_BOOK)
        .args(["agents", "import", "--file"])
        .arg(root.join("agents.csv"))
        .output()
        .unwrap());
    let overrides = Overrides {
        config: Some(root.join("amends.toml")),
        database: Some(amends::settings::DatabaseSetting(db.display().to_string())),
        now: Some(T_BOOK.parse().unwrap()),
        ..Overrides::default()
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let settings = Settings::resolve(&overrides).unwrap();
        let engine = settings.engine_with(settings.clock()).await.unwrap();
        let ann = Actor::new("ann", Role::Agent);
        for i in 0..VISITS {
            let request = BookRequest {
                customer_id: format!("C{i}"),
                technician_id: None,
                start: "2026-12-03T08:00:00Z".parse().unwrap(),
                end: "2026-12-03T12:00:00Z".parse().unwrap(),
                owner: None,
                rebooked_from: None,
            };
            engine.book_appointment(&ann, request).await.unwrap();
        }
        // Its connections close (and SQLite checkpoints) before the files are copied: a
        // copy taken while the last one closes is torn (found as a flake in this test).
        engine.store.close().await;
    });
    db
}

/// Everything the check writes, without the instants of writing.
fn outcome(db: &Path) -> Value {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = amends_store::open(&db.display().to_string()).await.unwrap();
        let credits: Vec<Value> = store
            .credits(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .map(|c| json!([c.key, c.amount_minor, c.explanation]))
            .collect();
        let filter = AppointmentFilter { limit: 1_000, ..AppointmentFilter::default() };
        let mut visits = Vec::new();
        for a in store.appointments(&filter).await.unwrap() {
            let holds: Vec<Value> = store
                .holds_for(&a.reference)
                .await
                .unwrap()
                .into_iter()
                .map(|h| json!([h.technician_id, h.window_start, h.until]))
                .collect();
            visits.push(json!([a.reference, a.status, a.missed_at, a.checked_at.is_some(), holds]));
        }
        let cases: Vec<Value> = store
            .cases(&CaseFilter { limit: 1_000, ..CaseFilter::default() })
            .await
            .unwrap()
            .into_iter()
            .map(|c| json!([c.customer_id, c.source_id, c.owner, c.version]))
            .collect();
        let notices: Vec<Value> = store
            .notices(&NoticeFilter { limit: 10_000, ..NoticeFilter::default() })
            .await
            .unwrap()
            .into_iter()
            .map(|n| json!([n.key, n.status, n.body]))
            .collect();
        json!({ "credits": credits, "visits": visits, "cases": cases, "notices": notices })
    })
}

#[test]
fn killed_while_making_good_missed_visits_then_ticked_again_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_files(root);
    let template = prepared(root);

    let reference = root.join("reference.db");
    copy_db(&template, &reference);
    let started = Instant::now();
    ok(run(root, &reference, T_CHECK).arg("tick").output().unwrap());
    let full = started.elapsed();
    let expected = outcome(&reference);
    assert_eq!(expected["credits"].as_array().unwrap().len(), VISITS, "one Ofcom payment per visit");
    assert_eq!(expected["cases"].as_array().unwrap().len(), VISITS);
    ok(run(root, &reference, T_CHECK).arg("tick").output().unwrap());
    assert_eq!(outcome(&reference), expected, "a second tick changes nothing");

    for (i, fraction) in [0.15, 0.35, 0.55, 0.75, 0.9].into_iter().enumerate() {
        let db = root.join(format!("killed{i}.db"));
        copy_db(&template, &db);
        let mut child =
            run(root, &db, T_CHECK).arg("tick").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_secs_f64(full.as_secs_f64() * fraction));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let partial = outcome(&db);
        eprintln!(
            "killed at {:.0}%: {} credits, {} cases",
            fraction * 100.0,
            partial["credits"].as_array().unwrap().len(),
            partial["cases"].as_array().unwrap().len()
        );
        ok(run(root, &db, T_CHECK).arg("tick").output().unwrap());
        assert_eq!(outcome(&db), expected, "killed at {:.0}% of the run", fraction * 100.0);
    }
}
