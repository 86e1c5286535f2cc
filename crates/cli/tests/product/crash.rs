//! Never twice, never lost, shown by killing the process: `amends incident resolve` (which
//! records the resolution, then writes restoration notices, credits and credit notices)
//! is killed with SIGKILL at chosen points (`AMENDS_FAILPOINTS`), then the steps are run
//! again. Each kill must land where it was aimed (what is on record is some of the run's
//! work, never none and never all of it), and the ledger and the outbox must come out
//! exactly as in a run that was never interrupted.

use crate::binary;

use amends_recovery::failpoint;
use binary::{amends, copy_db, ok};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

const CUSTOMERS: u64 = 4_000;
/// Notices per fan-out batch in the killed runs: eight batches of restoration notices, then
/// eight of credit notices, so a kill can fall between two batches of either.
const BATCH: u64 = 500;
const T_DECLARE: &str = "2026-11-23T12:00:00Z";
const T_RESOLVE: &str = "2026-11-23T15:30:00Z";

/// `amends` with the small fan-out batches, no failpoint armed.
fn run(root: &Path, db: &Path, now: &str) -> std::process::Command {
    let mut cmd = amends(db, now);
    cmd.arg("--config").arg(root.join("amends.toml")).env_remove(failpoint::ENV);
    cmd
}

/// A database with the book imported and the incident declared and fanned out.
fn prepared(root: &Path, name: &str) -> PathBuf {
    let db = root.join(name);
    ok(run(root, &db, T_DECLARE).args(["import", "--dir"]).arg(root.join("book")).output().unwrap());
    ok(run(root, &db, T_DECLARE)
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

/// How far the resolution's work got: what is on record of each of its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Landed {
    /// The resolution is in the timeline.
    resolved: bool,
    /// Restoration notices queued.
    restored: u64,
    /// Ledger rows.
    credits: u64,
    /// Credit notices queued.
    credit_notices: u64,
    /// The incident is marked credited (the credit step's last write).
    credited: bool,
}

impl Landed {
    /// Its steps' writes counted together: the resolution, each notice and credit, the mark.
    fn writes(&self) -> u64 {
        u64::from(self.resolved)
            + self.restored
            + self.credits
            + self.credit_notices
            + u64::from(self.credited)
    }
}

/// What is on record of the resolution's steps, given the database's `outcome`.
fn landed(db: &Path, (credits, counts): &(Value, Value)) -> Landed {
    let of_kind = |kind: &str| -> u64 {
        counts
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| c["count"].as_u64().unwrap())
            .sum()
    };
    let shown: Value = serde_json::from_str(&ok(amends(db, T_RESOLVE)
        .args(["incident", "show", "INC-000001"])
        .output()
        .unwrap()))
    .unwrap();
    Landed {
        resolved: shown["incident"]["state"] == "resolved",
        restored: of_kind("restored"),
        credits: credits.as_array().unwrap().len() as u64,
        credit_notices: of_kind("credit"),
        credited: !shown["incident"]["credited_at"].is_null(),
    }
}

/// Where each kill must land: the point, how many passes, and what is then on record.
fn kills() -> Vec<(&'static str, u64, Landed)> {
    let l = |resolved, restored, credits, credit_notices| Landed {
        resolved,
        restored,
        credits,
        credit_notices,
        credited: false,
    };
    let (all, batches) = (CUSTOMERS, CUSTOMERS / BATCH);
    vec![
        // Recorded, nothing that follows from it written.
        (failpoint::RESOLUTION_RECORDED, 1, l(true, 0, 0, 0)),
        // Between two batches of restoration notices.
        (failpoint::FANOUT_BATCH, 3, l(true, 3 * BATCH, 0, 0)),
        // After the last batch of restoration notices, before the credit step.
        (failpoint::FANOUT_BATCH, batches, l(true, all, 0, 0)),
        // The ledger written, no credit notice yet.
        (failpoint::CREDITS_WRITTEN, 1, l(true, all, all, 0)),
        // Between two batches of credit notices.
        (failpoint::FANOUT_BATCH, batches + 5, l(true, all, all, 5 * BATCH)),
        // Every notice and credit written, the incident not yet marked credited.
        (failpoint::FANOUT_BATCH, 2 * batches, l(true, all, all, all)),
    ]
}

#[test]
fn killed_mid_resolution_then_rerun_gives_the_same_ledger_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    binary::write_email_book(&root.join("book"), CUSTOMERS as usize);
    std::fs::write(root.join("amends.toml"), format!("[delivery]\nfanout_batch_rows = {BATCH}\n")).unwrap();

    let template = prepared(root, "prepared.db");
    let before = landed(&template, &outcome(&template));
    assert_eq!(
        before,
        Landed { resolved: false, restored: 0, credits: 0, credit_notices: 0, credited: false }
    );

    // Uninterrupted, and in the default batches (their size changes nothing but the pace).
    let reference = root.join("reference.db");
    copy_db(&template, &reference);
    ok(amends(&reference, T_RESOLVE)
        .args(["incident", "resolve", "INC-000001"])
        .env_remove(failpoint::ENV)
        .output()
        .unwrap());
    let expected = outcome(&reference);
    let complete = landed(&reference, &expected);
    assert_eq!(
        complete,
        Landed {
            resolved: true,
            restored: CUSTOMERS,
            credits: CUSTOMERS,
            credit_notices: CUSTOMERS,
            credited: true
        }
    );

    for (i, (point, at, aimed)) in kills().into_iter().enumerate() {
        let db = root.join(format!("killed{i}.db"));
        copy_db(&template, &db);
        let out = run(root, &db, T_RESOLVE)
            .args(["incident", "resolve", "INC-000001"])
            .env(failpoint::ENV, format!("{point}={at}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{point}={at}: {}\n{stderr}", out.status);
        assert!(stderr.contains(&format!("failpoint {point} reached")), "{point}={at}: {stderr}");

        // The kill landed mid-run, exactly where it was aimed.
        let got = landed(&db, &outcome(&db));
        eprintln!("killed at {point}={at}: {got:?}");
        assert!(
            before.writes() < got.writes() && got.writes() < complete.writes(),
            "{point}={at} landed outside the run: {got:?}"
        );
        assert_eq!(got, aimed, "{point}={at}");

        // Resolve again if the first attempt died before recording it, then run the steps.
        let again = run(root, &db, T_RESOLVE).args(["incident", "resolve", "INC-000001"]).output().unwrap();
        if !again.status.success() {
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already resolved"), "{err}");
        }
        ok(run(root, &db, T_RESOLVE).arg("tick").output().unwrap());
        let after = outcome(&db);
        assert_eq!(after, expected, "killed at {point}={at}");
        assert_eq!(landed(&db, &after), complete, "killed at {point}={at}");
    }
}

#[test]
fn a_fanout_batch_out_of_bounds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for rows in [0, 50_001] {
        let config = dir.path().join("amends.toml");
        std::fs::write(&config, format!("[delivery]\nfanout_batch_rows = {rows}\n")).unwrap();
        let out = amends(&dir.path().join("a.db"), T_DECLARE)
            .arg("--config")
            .arg(&config)
            .args(["incident", "list"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("fanout_batch_rows") && err.contains("1 to 50000"), "{err}");
    }
}
