//! Never twice, never lost, for delivery, shown by killing the process: `amends deliver`
//! sends a large batch of acknowledgements to a real SMTP server (in this test process)
//! and is killed with SIGKILL while sends are in flight; a second run, once the dead
//! run's claims have lapsed, delivers the rest. The server's log is the witness: every
//! notice arrives exactly once, and every notice is recorded as sent.
//!
//! The kill is placed while the server holds new transactions at MAIL FROM and after
//! every message it accepted is on record. Outside that moment there is a window SMTP
//! itself cannot close (RFC 1047): a message the server has accepted whose reply the
//! client never read. amends sends such a message again with the same Message-ID, which
//! receiving servers use to drop the repeat; `docs/notices.md` says so.

use crate::{binary, smtp_server};

use binary::{amends, ok};
use serde_json::Value;
use smtp_server::{Behaviour, Received, SmtpServer};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 3_000;
const T_DECLARE: &str = "2026-11-23T12:00:00Z";
const T_FIRST_RUN: &str = "2026-11-23T12:01:00Z";
/// Past the first run's claims (their lease is five minutes).
const T_SECOND_RUN: &str = "2026-11-23T12:07:00Z";

fn deliver(db: &Path, now: &str, server: &SmtpServer) -> Command {
    let mut cmd = amends(db, now);
    cmd.args(["deliver", "--smtp-url", &server.url(), "--smtp-from", "outages@amends.example"]);
    cmd
}

/// How many of the outbox's notices have `status` on record.
fn on_record(db: &Path, status: &str) -> u64 {
    let counts: Value =
        serde_json::from_str(&ok(amends(db, T_FIRST_RUN).args(["notices", "counts"]).output().unwrap()))
            .unwrap();
    counts
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

fn notice_key(message: &Received) -> String {
    let text = String::from_utf8_lossy(&message.data);
    let line = text.lines().find_map(|l| l.strip_prefix("X-Amends-Notice-Key: "));
    line.unwrap_or_else(|| panic!("a message without its key: {text}")).trim().to_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_mid_delivery_then_rerun_sends_every_notice_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    binary::write_email_book(&dir.path().join("book"), CUSTOMERS);
    let db = dir.path().join("a.db");
    ok(amends(&db, T_DECLARE).args(["import", "--dir"]).arg(dir.path().join("book")).output().unwrap());
    ok(amends(&db, T_DECLARE)
        .args(["incident", "declare", "--element", "hub", "--cause", "Cut", "--etr", "2026-11-23T18:00:00Z"])
        .args(["--next-update-by", "2026-11-23T17:00:00Z"])
        .output()
        .unwrap());

    let paused = Arc::new(AtomicBool::new(false));
    let mut server = SmtpServer::start(Behaviour { paused: paused.clone(), ..Behaviour::default() });
    let mut log: Vec<Received> = Vec::new();
    let mut first =
        deliver(&db, T_FIRST_RUN, &server).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();

    // A third of the batch in, hold new transactions; wait until each accepted message is
    // on record (so the kill falls outside RFC 1047's window), with sends still in flight.
    wait_for("a third of the batch", || {
        log.extend(server.drain());
        log.len() >= CUSTOMERS / 3
    });
    paused.store(true, Ordering::SeqCst);
    wait_for("the accepted messages on record", || {
        log.extend(server.drain());
        on_record(&db, "sent") == log.len() as u64
    });
    let claimed = on_record(&db, "sending");
    assert!(claimed > 0, "nothing was in flight at the kill");
    first.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
    let status = first.wait().unwrap();
    // Still running when killed (a run that had finished would have exited on its own).
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    paused.store(false, Ordering::SeqCst);
    let before_restart = log.len();
    eprintln!("killed with {before_restart} messages accepted and {claimed} claimed, not yet sent");
    // The kill landed mid-run: some notices sent and on record, not all.
    let sent = on_record(&db, "sent");
    assert_eq!(sent, before_restart as u64, "every message the server accepted is on record");
    assert!(0 < sent && sent < CUSTOMERS as u64, "{sent} of {CUSTOMERS} sent at the kill");

    let report: Value =
        serde_json::from_str(&ok(deliver(&db, T_SECOND_RUN, &server).output().unwrap())).unwrap();
    assert_eq!(report["sent"], (CUSTOMERS - before_restart) as u64, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    wait_for("the second run's messages", || {
        log.extend(server.drain());
        log.len() >= CUSTOMERS
    });

    let mut times: HashMap<String, usize> = HashMap::new();
    for message in &log {
        *times.entry(notice_key(message)).or_default() += 1;
    }
    let repeated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "sent more than once: {repeated:?}");
    assert_eq!(times.len(), CUSTOMERS, "every notice reached the server");
    let reached: BTreeSet<&str> = log.iter().flat_map(|m| m.rcpt_to.iter().map(String::as_str)).collect();
    let everyone: Vec<String> = (0..CUSTOMERS).map(|i| format!("c{i}@example.com")).collect();
    assert_eq!(reached, everyone.iter().map(String::as_str).collect(), "the witness misses someone");
    assert_eq!(on_record(&db, "sent"), CUSTOMERS as u64);
}
