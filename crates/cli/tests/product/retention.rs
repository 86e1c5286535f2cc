//! Content that must not be kept: with `[delivery] keep_content_days`, the binary replaces
//! a final notice's subject and body by their SHA-256 once it is old enough, and leaves
//! what is still to be sent alone.

use crate::binary;

use binary::{amends, ok};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

fn notices(db: &Path, config: &Path, now: &str, customer: &str) -> Vec<Value> {
    let out = ok(amends(db, now)
        .arg("--config")
        .arg(config)
        .args(["notices", "list", "--customer", customer])
        .output()
        .unwrap());
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn final_notices_keep_only_a_hash_after_the_retention_period() {
    let dir = tempfile::tempdir().unwrap();
    binary::write_email_book(&dir.path().join("book"), 4);
    let config = dir.path().join("amends.toml");
    std::fs::write(&config, "outbox_file = \"outbox.txt\"\n[delivery]\nkeep_content_days = 30\n").unwrap();
    let db = dir.path().join("a.db");
    let run = |now: &str, args: &[&str]| {
        ok(amends(&db, now).arg("--config").arg(&config).current_dir(dir.path()).args(args).output().unwrap())
    };
    run("2026-11-23T12:00:00Z", &["import", "--dir", "book"]);
    run(
        "2026-11-23T12:00:00Z",
        &[
            "incident",
            "declare",
            "--element",
            "n0",
            "--cause",
            "Cut",
            "--etr",
            "2027-03-01T00:00:00Z",
            "--next-update-by",
            "2027-02-01T00:00:00Z",
        ],
    );
    run("2026-11-23T12:00:00Z", &["deliver"]); // C000000's acknowledgement is sent
    run(
        "2026-11-23T12:30:00Z",
        &[
            "incident",
            "update",
            "INC-000001",
            "--message",
            "Still on it",
            "--next-update-by",
            "2027-02-01T00:00:00Z",
        ],
    );

    let before = notices(&db, &config, "2026-11-23T12:30:00Z", "C000000");
    let (ack, update) = (&before[0], &before[1]);
    assert_eq!((ack["status"].as_str(), update["status"].as_str()), (Some("sent"), Some("queued")));
    let subject = ack["subject"].as_str().unwrap();
    let body = ack["body"].as_str().unwrap();
    assert!(body.contains("Cut"), "{body}");

    // 29 days on: nothing is forgotten yet. 31 days on: the sent one is, the queued one is
    // not (no promise lapses meanwhile, so nothing supersedes it).
    let tick = run("2026-12-22T12:00:00Z", &["tick"]);
    assert_eq!(serde_json::from_str::<Value>(&tick).unwrap()["contents_forgotten"], 0, "{tick}");
    let tick = run("2026-12-24T12:00:00Z", &["tick"]);
    assert_eq!(serde_json::from_str::<Value>(&tick).unwrap()["contents_forgotten"], 1, "{tick}");
    let after = notices(&db, &config, "2026-12-24T12:00:00Z", "C000000");
    let expected = hex::encode(Sha256::digest(format!("{subject}\n{body}")));
    assert_eq!(
        (after[0]["subject"].as_str(), after[0]["body"].as_str(), after[0]["content_sha256"].as_str()),
        (Some(""), Some(""), Some(expected.as_str()))
    );
    assert_eq!(after[0]["status"], "sent");
    assert_eq!(after[1]["body"], update["body"], "a notice still to send keeps its content");
    let again = run("2026-12-25T12:00:00Z", &["tick"]);
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap()["contents_forgotten"], 0, "{again}");
}
