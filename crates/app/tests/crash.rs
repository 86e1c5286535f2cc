//! Never twice, never lost, shown by killing the process: `amends incident resolve` (which
//! records the resolution, then writes restoration notices, credits and credit notices)
//! is killed with SIGKILL at several points, then the steps are run again. The ledger and
//! the outbox must come out exactly as in a run that was never interrupted.

use binary::{amends, copy_db, ok};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[path = "support/binary.rs"]
mod binary;

const CUSTOMERS: usize = 8_000;
const T_DECLARE: &str = "2026-11-23T12:00:00Z";
const T_RESOLVE: &str = "2026-11-23T15:30:00Z";

/// A database with the book imported and the incident declared and fanned out.
fn prepared(root: &Path, name: &str) -> PathBuf {
    let db = root.join(name);
    ok(amends(&db, T_DECLARE).args(["import", "--dir"]).arg(root.join("book")).output().unwrap());
    ok(amends(&db, T_DECLARE)
        .args(["incident", "declare", "--element", "hub", "--cause", "Cut", "--etr", "2026-11-23T18:00:00Z"])
        .args(["--next-update-by", "2026-11-23T17:00:00Z", "--started-at", "2026-11-23T11:00:00Z"])
        .output()
        .unwrap());
    db
}

/// The ledger without its write times, and the outbox's counts by kind and status.
fn outcome(db: &Path) -> (Value, Value) {
    let mut credits: Value = serde_json::from_str(&ok(amends(db, T_RESOLVE)
        .args(["credits", "export", "--format", "json"])
        .output()
        .unwrap()))
    .unwrap();
    for c in credits.as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("created_at");
    }
    let counts =
        serde_json::from_str(&ok(amends(db, T_RESOLVE).args(["notices", "counts"]).output().unwrap()))
            .unwrap();
    (credits, counts)
}

#[test]
fn killed_mid_resolution_then_rerun_gives_the_same_ledger_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    binary::write_email_book(&dir.path().join("book"), CUSTOMERS);

    let template = prepared(dir.path(), "prepared.db");
    let reference = dir.path().join("reference.db");
    copy_db(&template, &reference);
    let started = Instant::now();
    ok(amends(&reference, T_RESOLVE).args(["incident", "resolve", "INC-000001"]).output().unwrap());
    let full = started.elapsed();
    let expected = outcome(&reference);
    assert_eq!(expected.0.as_array().unwrap().len(), CUSTOMERS);

    // Kill at several fractions of an uninterrupted run (whatever the machine's speed).
    for (i, fraction) in [0.1, 0.3, 0.5, 0.7, 0.9].into_iter().enumerate() {
        let db = dir.path().join(format!("killed{i}.db"));
        copy_db(&template, &db);
        let mut child = amends(&db, T_RESOLVE)
            .args(["incident", "resolve", "INC-000001"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(full.as_secs_f64() * fraction));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
        child.wait().unwrap();
        let (credits, counts) = outcome(&db);
        eprintln!(
            "killed at {:.0}%: {} credits, outbox {counts}",
            fraction * 100.0,
            credits.as_array().unwrap().len()
        );

        // Resolve again if the first attempt died before recording it, then run the steps.
        let again = amends(&db, T_RESOLVE).args(["incident", "resolve", "INC-000001"]).output().unwrap();
        if !again.status.success() {
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already resolved"), "{err}");
        }
        ok(amends(&db, T_RESOLVE).arg("tick").output().unwrap());
        assert_eq!(outcome(&db), expected, "killed at {:.0}% of the run", fraction * 100.0);
    }
}
