//! Never twice, never lost, for missed visits, shown by killing the process: `amends tick`
//! finds 300 no-shows at once and, for each, records it, credits the Ofcom payment, holds
//! the earliest slots, opens a case and queues the apology. It is killed with SIGKILL at
//! chosen steps of chosen visits (`AMENDS_FAILPOINTS=appointment.step=N`), which must be
//! where the kill landed, and ticked again; the ledger, the visits, the holds, the cases
//! and the outbox must come out exactly as in a run that was never interrupted.

use crate::binary;

use amends_core::case::{Actor, Role};
use amends_recovery::appointments::BookRequest;
use amends_recovery::failpoint::{self, APPOINTMENT_STEP, APPOINTMENT_STEPS};
use amends_server::settings::{Overrides, Settings};
use amends_store::{AppointmentFilter, CaseFilter, NoticeFilter};
use binary::{amends, copy_db, ok};
use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

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
    cmd.env_remove(failpoint::ENV);
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
        database: Some(amends_server::settings::DatabaseSetting(db.display().to_string())),
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
        engine.store().close().await;
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

/// How far the check got: visits recorded as missed, Ofcom payments, cases opened, cases
/// with the payment recorded on them, apologies queued, visits marked checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Landed {
    missed: u64,
    credits: u64,
    cases: u64,
    compensated: u64,
    apologies: u64,
    checked: u64,
}

/// A case's version once everything the check records on it is recorded (each visit's
/// case is the same steps, so the same version).
fn full_case_version(outcome: &Value) -> i64 {
    let versions: Vec<i64> =
        outcome["cases"].as_array().unwrap().iter().map(|c| c[3].as_i64().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    versions[0]
}

impl Landed {
    /// `full`: a case's version once the payment is recorded on it.
    fn of(outcome: &Value, full: i64) -> Landed {
        let count = |list: &str, keep: &dyn Fn(&Value) -> bool| {
            outcome[list].as_array().unwrap().iter().filter(|v| keep(v)).count() as u64
        };
        Landed {
            missed: count("visits", &|v| !v[2].is_null()),
            credits: count("credits", &|_| true),
            cases: count("cases", &|_| true),
            compensated: count("cases", &|c| c[3].as_i64() == Some(full)),
            apologies: count("notices", &|n| n[0].as_str().unwrap().contains("/appointment_missed/")),
            checked: count("visits", &|v| v[3] == true),
        }
    }

    /// Where a kill after step `step` (1 to 7) of visit `visit + 1` lands: `visit` visits
    /// made good, and the steps of the next one up to `step`.
    fn after(visit: u64, step: u64) -> Landed {
        let done = |s: u64| visit + u64::from(step >= s);
        Landed {
            missed: done(1),
            credits: done(2),
            cases: done(4),
            compensated: done(5),
            apologies: done(6),
            checked: done(7),
        }
    }

    fn writes(&self) -> u64 {
        self.missed + self.credits + self.cases + self.compensated + self.apologies + self.checked
    }
}

#[test]
fn killed_while_making_good_missed_visits_then_ticked_again_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_files(root);
    let template = prepared(root);

    let reference = root.join("reference.db");
    copy_db(&template, &reference);
    ok(run(root, &reference, T_CHECK).arg("tick").output().unwrap());
    let expected = outcome(&reference);
    let full = full_case_version(&expected);
    let before = Landed::of(&outcome(&template), full);
    assert_eq!(before, Landed::after(0, 0), "nothing checked before the tick");
    let complete = Landed::of(&expected, full);
    let visits = VISITS as u64;
    assert_eq!(complete, Landed::after(visits, 0), "every visit made good");
    assert_eq!(expected["credits"].as_array().unwrap().len(), VISITS, "one Ofcom payment per visit");
    assert_eq!(expected["cases"].as_array().unwrap().len(), VISITS);
    ok(run(root, &reference, T_CHECK).arg("tick").output().unwrap());
    assert_eq!(outcome(&reference), expected, "a second tick changes nothing");

    // (visits already made good, the step of the next one after which it is killed)
    let kills = [(0, 1), (41, 2), (150, 4), (222, 5), (visits - 1, 6), (120, 7)];
    for (i, (visit, step)) in kills.into_iter().enumerate() {
        let at = visit * APPOINTMENT_STEPS + step;
        let db = root.join(format!("killed{i}.db"));
        copy_db(&template, &db);
        let out = run(root, &db, T_CHECK)
            .arg("tick")
            .env(failpoint::ENV, format!("{APPOINTMENT_STEP}={at}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "step {at}: {}\n{stderr}", out.status);
        assert!(stderr.contains(&format!("failpoint {APPOINTMENT_STEP} reached")), "{stderr}");

        // The kill landed mid-run, after that step of that visit.
        let got = Landed::of(&outcome(&db), full);
        eprintln!("killed after step {step} of visit {}: {got:?}", visit + 1);
        assert!(
            before.writes() < got.writes() && got.writes() < complete.writes(),
            "step {at} landed outside the run: {got:?}"
        );
        assert_eq!(got, Landed::after(visit, step), "killed after step {step} of visit {}", visit + 1);

        ok(run(root, &db, T_CHECK).arg("tick").output().unwrap());
        assert_eq!(outcome(&db), expected, "killed after step {step} of visit {}", visit + 1);
    }
}
