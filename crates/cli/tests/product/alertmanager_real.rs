//! A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, which `.ci/run`
//! installs) in front of a real amends server: the configuration `docs/alerts.md` gives
//! passes `amtool check-config` as written, and, pointed at the server, Alertmanager
//! delivers per-instance alerts for one element (what an `up == 0` rule raises) as one
//! incident with one acknowledgement per customer, resolved once the last alert ends.

use crate::support;

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::{CUSTOMERS, PLANS, TOPOLOGY, TestServer, eventually};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const AMTOOL: &str = "/usr/bin/amtool";

/// The YAML block of docs/alerts.md, as written.
fn documented_config() -> String {
    let page = include_str!("../../../../docs/alerts.md");
    let block = page.split("```yaml\n").nth(1).expect("docs/alerts.md has a YAML block");
    block.split("```").next().unwrap().to_string()
}

fn check_config(path: &Path) -> std::process::Output {
    Command::new(AMTOOL).arg("check-config").arg(path).output().expect("amtool runs")
}

/// Whether Debian's Alertmanager is installed; without it the test is skipped with a
/// message, except in CI, where that fails it.
fn have_alertmanager(test: &str) -> bool {
    if Path::new(ALERTMANAGER).exists() && Path::new(AMTOOL).exists() {
        return true;
    }
    support::skip_without(
        test,
        "Debian's prometheus-alertmanager",
        "apt-get install prometheus-alertmanager; .ci/run does",
    );
    false
}

#[test]
fn the_documented_configuration_passes_amtool_check_config() {
    if !have_alertmanager("the_documented_configuration_passes_amtool_check_config") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, documented_config()).unwrap();
    let out = check_config(&path);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The check can fail: the configuration the page gave before (no `route:`) does not pass.
    let without_route: String =
        documented_config().split("\nreceivers:").nth(1).map(|rest| format!("receivers:{rest}")).unwrap();
    std::fs::write(&path, without_route).unwrap();
    assert!(!check_config(&path).status.success(), "a configuration without a route fails");
}

struct Alertmanager {
    child: Child,
    api: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Alertmanager with the documented configuration pointed at `server`, its timings
/// shortened so the test does not wait minutes.
fn alertmanager(dir: &Path, server: &TestServer) -> Alertmanager {
    let config = documented_config()
        .replace("https://amends.example.net", &server.base)
        .replace("amends_...", &server.operator)
        .replace("group_wait: 10s", "group_wait: 1s")
        .replace("group_interval: 1m", "group_interval: 1s");
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, config).unwrap();
    assert!(check_config(&path).status.success());
    let port = free_port();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", path.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager starts");
    Alertmanager { child, api: format!("http://127.0.0.1:{port}/api/v2/alerts") }
}

/// Three `up == 0` alerts for hub1, one per scraped instance, firing (or ended at `ended`).
fn instance_alerts(ended: Option<jiff::Timestamp>) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = ["hub1-a:9100", "hub1-b:9100", "hub1-c:9100"]
        .iter()
        .map(|instance| {
            let mut a = json!({
                "labels": { "alertname": "InstanceDown", "element": "hub1", "instance": instance, "job": "node" },
                "annotations": { "summary": "Hub 1 is not answering" },
                "startsAt": "2026-12-01T10:00:00Z",
            });
            if let Some(ended) = ended {
                a["endsAt"] = json!(ended.to_string());
            }
            a
        })
        .collect();
    json!(alerts)
}

/// How many times each customer was told `kind` about the incident (on however many
/// channels each time).
async fn told(s: &TestServer, incident: &str, kind: &str) -> BTreeMap<String, usize> {
    let mut by_customer: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for n in s.engine.store().notices_for_incident(incident, 1000).await.unwrap() {
        if n.kind == kind {
            by_customer.entry(n.customer_id.to_string()).or_default().insert(n.seq);
        }
    }
    by_customer.into_iter().map(|(c, times)| (c, times.len())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_instance_alerts_through_a_real_alertmanager_make_one_incident() {
    if !have_alertmanager("per_instance_alerts_through_a_real_alertmanager_make_one_incident") {
        return;
    }
    let s = TestServer::start().await;
    s.clock.set(jiff::Timestamp::now());
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let am = alertmanager(dir.path(), &s);

    // Alertmanager takes the alerts once it is up.
    eventually("Alertmanager takes the alerts", async || {
        let r = s.http.post(&am.api).json(&instance_alerts(None)).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let incident = eventually("one incident from the three alerts", async || {
        let incidents = s.engine.store().incidents(false).await.unwrap();
        let joined = s.engine.store().incident_alerts().await.unwrap();
        (incidents.len() == 1 && joined.len() == 3).then(|| incidents[0].incident_id.clone())
    })
    .await;
    s.tick().await;
    let once: BTreeMap<String, usize> = ["C1", "C2", "C5"].iter().map(|c| (c.to_string(), 1)).collect();
    assert_eq!(
        told(&s, &incident, "acknowledgement").await,
        once,
        "one acknowledgement per customer under hub1"
    );
    assert_eq!(s.engine.store().incidents(false).await.unwrap().len(), 1);

    // They end: Alertmanager sends the resolutions, and the incident resolves once.
    let ended = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5);
    let r = s.http.post(&am.api).json(&instance_alerts(Some(ended))).send().await.unwrap();
    assert!(r.status().is_success());
    eventually("the incident resolved by its last alert", async || {
        let i = s.engine.store().incident(&incident).await.unwrap()?;
        i.resolved_at.map(|_| ())
    })
    .await;
    s.tick().await;
    assert_eq!(told(&s, &incident, "restored").await, once, "one restoration notice per customer");
    drop(am);
    s.stop().await.unwrap();
}
