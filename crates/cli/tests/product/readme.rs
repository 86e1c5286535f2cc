//! Every command the README shows runs as written (issue 17, item 9): its code blocks
//! are read from the file itself, in order, and each `amends` line (and `cargo run
//! --release -- ...`, which the README says is the same) runs through `sh` on the real
//! clock, in a fresh directory holding the inputs the examples name: `book/`,
//! `agents.csv`, `facts.json` (the one docs/policies.md shows), `events.ndjson` and the
//! repository's `policies/`. A new example runs here the day it is written.
//!
//! Three are not run here, each for its reason, and the list is checked so it cannot
//! grow unseen: the demo (tests/e2e.rs runs the README's first command), `serve` (it
//! does not exit; every HTTP test runs it) and `bench` (minutes of work; its figures are
//! in the README's Performance section).

use std::path::Path;
use std::process::Command;

const NOT_RUN_HERE: [&str; 3] = ["demo", "serve", "bench"];

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The lines of every fenced block of `markdown` whose language is `lang` (any, if
/// `None`), with `\` continuations joined.
fn blocks(markdown: &str, lang: Option<&str>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Inside a fence: whether its block is kept, and its lines so far.
    let mut fence: Option<(bool, Vec<String>)> = None;
    let mut pending = String::new();
    for line in markdown.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match fence.take() {
                Some((true, block)) => out.push(block),
                Some((false, _)) => {}
                None => fence = Some((lang.is_none_or(|l| info.trim() == l), Vec::new())),
            }
            continue;
        }
        let Some((_, block)) = fence.as_mut() else { continue };
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => block.push(std::mem::take(&mut pending) + line),
        }
    }
    out
}

/// The README's commands, as `sh` will run them.
fn commands(readme: &str) -> (Vec<String>, Vec<String>) {
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    for line in blocks(readme, None).into_iter().flatten() {
        let line = line.trim();
        let command = match line.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("amends {rest}"),
            None if line.starts_with("amends ") => line.to_string(),
            None => continue,
        };
        let sub = command.split_whitespace().nth(1).unwrap_or_default();
        if NOT_RUN_HERE.contains(&sub) {
            skipped.push(sub.to_string());
        } else {
            run.push(command);
        }
    }
    (run, skipped)
}

fn write_inputs(dir: &Path) {
    let book = dir.join("book");
    std::fs::create_dir_all(&book).unwrap();
    std::fs::write(
        book.join("plans.csv"),
        "plan_id,name,monthly_price_minor,currency\nfibre,Fibre 500,4500,GBP\n",
    )
    .unwrap();
    std::fs::write(
        book.join("topology.csv"),
        "element_id,parent_id,kind,name\nroot,,region,London\nhub-7,root,hub,Hub 7 Camden\n",
    )
    .unwrap();
    std::fs::write(
        book.join("customers.csv"),
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
         C1,Ana Lima,ana@example.com,+447700900123,en-GB,Europe/London,fibre,hub-7,MODEM-0000042,1,2024-01-01T00:00:00Z,active\n\
         C2,Bo Chan,bo@example.com,,es,Europe/Madrid,fibre,hub-7,,15,2024-01-01T00:00:00Z,active\n",
    )
    .unwrap();
    std::fs::write(dir.join("agents.csv"), "id,name,role,lead,active\nann,Ann Agent,agent,,\n").unwrap();
    let policies_doc = std::fs::read_to_string(repo().join("docs/policies.md")).unwrap();
    let facts = blocks(&policies_doc, Some("json")).into_iter().next().expect("docs/policies.md shows facts");
    std::fs::write(dir.join("facts.json"), facts.join("\n")).unwrap();
    std::fs::write(
        dir.join("events.ndjson"),
        "{\"device_id\": \"MODEM-0000042\", \"state\": \"offline\", \"at\": \"2026-11-23T10:00:00Z\", \"reason\": \"dying_gasp\"}\n\
         {\"device_id\": \"MODEM-0000042\", \"state\": \"online\", \"at\": \"2026-11-23T10:42:13.250Z\"}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(repo().join("policies"), dir.join("policies")).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_amends"), bin.join("amends")).unwrap();
}

#[test]
fn every_command_the_readme_shows_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (run, mut skipped) = commands(&readme);
    skipped.sort();
    skipped.dedup();
    assert_eq!(skipped, ["bench", "demo", "serve"], "only these are left to other tests");
    assert!(run.len() >= 20, "the README shows more than this: {run:#?}");

    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let path = format!("{}:{}", dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
    for command in &run {
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(command).current_dir(dir.path()).env("PATH", &path);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AMENDS_")) {
            sh.env_remove(key);
        }
        let out = sh.output().unwrap();
        assert!(
            out.status.success(),
            "the README's `{command}` failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the examples promise, read back: the customer was told, and credited.
    let outbox = std::fs::read_to_string(dir.path().join("amends-data/outbox.txt")).unwrap();
    assert!(outbox.contains("ana@example.com"), "{outbox}");
    let credits = std::fs::read_to_string(dir.path().join("credits.csv")).unwrap();
    assert!(credits.lines().any(|l| l.contains("C1")), "{credits}");
}
