//! Never twice, never lost, for detection, shown by killing the process: `amends serve`
//! takes device events, detects an outage and tells its customers; it is killed with
//! SIGKILL and started again over the same database, rebuilds detection from its event
//! log, and goes on to resolve and credit the outage. The result must be one incident, one
//! acknowledgement per customer, and the same notices and credits as a run never killed.

use crate::support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::eventually;

const NOW: &str = "2026-11-23T12:00:00Z";

fn amends(db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amends"));
    cmd.arg("--database").arg(db).args(["--now", NOW]).env_remove("AMENDS_DATABASE_URL");
    cmd.env("AMENDS_OUTBOX_FILE", db.with_extension("outbox"));
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("amends runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// node1: C1..C5 with modems M1..M5 and C6 without one; node2: C7 with M7.
fn write_book(dir: &Path) {
    std::fs::write(
        dir.join("plans.csv"),
        "plan_id,name,monthly_price_minor,currency\nbasic,Basic,7200,USD\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("topology.csv"),
        "element_id,parent_id,kind,name\nregion,,region,Region\nnode1,region,node,Node 1\nnode2,region,node,Node 2\n",
    )
    .unwrap();
    let mut customers = String::from(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n",
    );
    for n in [1, 2, 3, 4, 5, 6, 7] {
        let element = if n <= 6 { "node1" } else { "node2" };
        let device = if n == 6 { String::new() } else { format!("M{n}") };
        customers.push_str(&format!(
            "C{n},Customer {n},c{n}@example.com,,en,UTC,basic,{element},{device},1,2024-01-01T00:00:00Z,active\n"
        ));
    }
    std::fs::write(dir.join("customers.csv"), customers).unwrap();
}

/// A running `amends serve` and its address.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = amends(db)
            .args(["serve", "--listen", "127.0.0.1:0", "--poll-seconds", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amends serve starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let line = lines.next().expect("amends serve says where it listens").unwrap();
            if let Some(rest) = line.split("serving the API on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining its log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    /// Kills it with SIGKILL, and checks it was still running (not exited on its own).
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }
}

fn event(device: &str, state: &str, at: &str) -> String {
    let reason = if state == "offline" { ", \"reason\": \"dying_gasp\"" } else { "" };
    format!("{{\"device_id\": \"{device}\", \"state\": \"{state}\", \"at\": \"{at}\"{reason}}}")
}

async fn post(http: &reqwest::Client, server: &Server, token: &str, lines: &[String]) -> Value {
    let r = http
        .post(format!("{}/v1/telemetry/events", server.base))
        .bearer_auth(token)
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn get(http: &reqwest::Client, server: &Server, token: &str, path: &str) -> Value {
    let r = http.get(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Notices of the incident as (customer, kind) pairs, sorted.
async fn notices(http: &reqwest::Client, server: &Server, token: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in 1..=7 {
        let rows = get(http, server, token, &format!("/v1/customers/C{c}/notices")).await;
        for n in rows.as_array().unwrap() {
            out.push((n["customer_id"].as_str().unwrap().into(), n["kind"].as_str().unwrap().into()));
        }
    }
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(c, k)| (c.to_string(), k.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_detecting_the_restarted_server_goes_on_without_repeating_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("amends.db");
    write_book(dir.path());
    run(amends(&db).args(["import", "--dir"]).arg(dir.path()));
    let token = run(amends(&db).args(["token", "create", "--scope", "operator"])).trim().to_string();
    let http = amends_channels::http_client_builder().unwrap().no_proxy().build().unwrap();

    let server = Server::start(&db);
    let offline: Vec<String> =
        (1..=4).map(|n| event(&format!("M{n}"), "offline", "2026-11-23T06:00:00Z")).collect();
    assert_eq!(post(&http, &server, &token, &offline).await["accepted"], 4);
    let acknowledged = pairs(&[
        ("C1", "acknowledgement"),
        ("C2", "acknowledgement"),
        ("C3", "acknowledgement"),
        ("C4", "acknowledgement"),
        ("C6", "acknowledgement"),
    ]);
    eventually("acknowledgements", async || {
        (notices(&http, &server, &token).await == acknowledged).then_some(())
    })
    .await;
    server.kill();

    // Started again: detection is rebuilt from the log; nothing is recorded twice.
    let server = Server::start(&db);
    // The first events again (a source retrying after the crash) are duplicates.
    assert_eq!(post(&http, &server, &token, &offline).await["duplicates"], 4);
    let restored: Vec<String> =
        (1..=3).map(|n| event(&format!("M{n}"), "online", "2026-11-23T11:00:00Z")).collect();
    post(&http, &server, &token, &restored).await;
    let done = pairs(&[
        ("C1", "acknowledgement"),
        ("C1", "credit"),
        ("C1", "restored"),
        ("C2", "acknowledgement"),
        ("C2", "credit"),
        ("C2", "restored"),
        ("C3", "acknowledgement"),
        ("C3", "credit"),
        ("C3", "restored"),
        ("C4", "acknowledgement"),
        ("C4", "credit"),
        ("C4", "still_down"),
        ("C6", "acknowledgement"),
        ("C6", "credit"),
        ("C6", "restored"),
    ]);
    eventually("restoration, still-down and credit notices", async || {
        (notices(&http, &server, &token).await == done).then_some(())
    })
    .await;
    let incidents = get(&http, &server, &token, "/v1/incidents").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    let credits = get(&http, &server, &token, "/v1/credits").await;
    let amounts: Vec<(String, i64)> = credits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["customer_id"].as_str().unwrap().into(), c["amount_minor"].as_i64().unwrap()))
        .collect();
    // Five hours each of 720 in November, of 72.00: 50 cents.
    let expected: Vec<(String, i64)> =
        ["C1", "C2", "C3", "C4", "C6"].iter().map(|c| (c.to_string(), 50)).collect();
    assert_eq!(amounts, expected, "{}", json!(credits));
    server.kill();
}
