//! The Alertmanager receiver against a real server on 127.0.0.1 over a fresh SQLite
//! file: real webhook payloads in, incidents, notices and credits out.
//!
//! The clock moves only when a test moves it, and the test runs the worker's steps.

use crate::support;

use amends_recovery::{FanoutReport, TickReport};
use amends_sources::alerts::ALERTS_PER_PAYLOAD_MAX;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{CUSTOMERS, PLANS, TOPOLOGY, TestServer, ts};

const ROUTE: &str = "/v1/alerts/alertmanager";

/// A webhook exactly as Alertmanager 0.27 posts it for a group with one firing alert.
const FIRING: &str = r#"{
  "receiver": "amends",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "HubDown",
        "element": "hub1",
        "instance": "hub1.north.example.net:9100",
        "job": "node",
        "severity": "critical"
      },
      "annotations": {
        "summary": "Fibre cut near Hub 1",
        "description": "Hub 1 has not answered for 5 minutes.",
        "runbook_url": "https://runbooks.example.net/hub-down"
      },
      "startsAt": "2026-11-23T11:52:30.123456789Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1",
      "fingerprint": "9c6e1a5b1f0e4d2a"
    }
  ],
  "groupLabels": { "alertname": "HubDown" },
  "commonLabels": {
    "alertname": "HubDown",
    "element": "hub1",
    "instance": "hub1.north.example.net:9100",
    "job": "node",
    "severity": "critical"
  },
  "commonAnnotations": {
    "summary": "Fibre cut near Hub 1",
    "description": "Hub 1 has not answered for 5 minutes.",
    "runbook_url": "https://runbooks.example.net/hub-down"
  },
  "externalURL": "http://alertmanager.example.net:9093",
  "version": "4",
  "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HubDown\"}",
  "truncatedAlerts": 0
}"#;

const FINGERPRINT: &str = "9c6e1a5b1f0e4d2a";

fn firing() -> Value {
    serde_json::from_str(FIRING).expect("the payload is JSON")
}

/// The same group once the alert has ended, as Alertmanager sends it with `send_resolved`.
fn resolved() -> Value {
    let mut p = firing();
    p["status"] = json!("resolved");
    p["alerts"][0]["status"] = json!("resolved");
    p["alerts"][0]["endsAt"] = json!("2026-11-23T13:40:00Z");
    p
}

/// A payload of the given alerts, the rest as Alertmanager fills it.
fn payload(alerts: Vec<Value>) -> Value {
    let mut p = firing();
    p["alerts"] = Value::Array(alerts);
    p
}

fn alert(fingerprint: &str, labels: Value) -> Value {
    let mut a = firing()["alerts"][0].clone();
    a["fingerprint"] = json!(fingerprint);
    a["labels"] = labels;
    a
}

async fn start() -> TestServer {
    let s = TestServer::start().await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    let r = s.post("/v1/import", Some(&s.admin), &book).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s
}

fn counts(opened: u64, updated: u64, resolved: u64, unchanged: u64, ignored: u64) -> Value {
    json!({
        "opened": opened, "joined": 0, "updated": updated, "resolved": resolved,
        "unchanged": unchanged, "ignored": ignored,
    })
}

fn ignored(index: usize, fingerprint: &str, reason: &str) -> Value {
    json!({ "index": index, "fingerprint": fingerprint, "outcome": "ignored", "reason": reason })
}

/// (customer, notice kind) of every notice of the incident.
async fn notices(s: &TestServer, incident: &str) -> BTreeSet<(String, String)> {
    let rows = s.engine.store().notices_for_incident(incident, 1_000).await.expect("notices");
    rows.into_iter().map(|n| (n.customer_id.into(), n.kind)).collect()
}

fn each(customers: &[&str], kind: &str) -> BTreeSet<(String, String)> {
    customers.iter().map(|c| (c.to_string(), kind.to_string())).collect()
}

fn fanned(updates: u64, notices_queued: u64) -> FanoutReport {
    FanoutReport { updates, notices_queued, ..FanoutReport::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_opens_one_incident_and_acknowledges_the_customers_below_its_element() {
    let s = start().await;
    let r = s.post(ROUTE, Some(&s.operator), &firing()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let opened =
        json!({ "index": 0, "fingerprint": FINGERPRINT, "incident_id": "INC-000001", "outcome": "opened" });
    assert_eq!(r.body, json!({ "counts": counts(1, 0, 0, 0, 0), "alerts": [opened] }));

    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    assert_eq!(
        r.body["incident"],
        json!({
            "incident_id": "INC-000001",
            "element_ids": ["hub1"],
            "cause": "Fibre cut near Hub 1",
            "causes": {},
            "state": "acknowledged",
            "etr": null,
            "next_update_by": "2026-11-23T13:00:00Z",
            "started_at": "2026-11-23T11:52:30Z",
            "resolved_at": null,
            "credited_at": null,
            "attributes": null,
        })
    );
    let declared = &r.body["timeline"][0];
    assert_eq!((&declared["kind"], &declared["at"]), (&json!("declared"), &json!("2026-11-23T12:00:00Z")));
    assert_eq!(declared["message"], "Hub 1 has not answered for 5 minutes.");

    // C1 (by email and SMS), C2 and C5: C3 is cancelled and C4 is under hub2.
    assert_eq!(s.tick().await, TickReport { fanout: fanned(1, 4), ..TickReport::default() });
    assert_eq!(notices(&s, "INC-000001").await, each(&["C1", "C2", "C5"], "acknowledgement"));

    // Alertmanager sends the group again at every repeat_interval: nothing new.
    s.clock.set(ts("2026-11-23T12:10:00Z"));
    let r = s.post(ROUTE, Some(&s.operator), &firing()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["counts"], counts(0, 0, 0, 1, 0));
    assert_eq!(r.body["alerts"][0]["incident_id"], "INC-000001");
    assert_eq!(r.body["alerts"][0]["outcome"], "unchanged");
    assert_eq!(s.engine.store().incidents(false).await.expect("incidents").len(), 1);
    assert_eq!(s.tick().await, TickReport::default());
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_alert_resolves_its_incident_and_restoration_and_credits_follow() {
    let s = start().await;
    assert_eq!(s.post(ROUTE, Some(&s.operator), &firing()).await.status, 200);
    s.tick().await;
    s.deliver().await;

    s.clock.set(ts("2026-11-23T13:45:00Z"));
    let r = s.post(ROUTE, Some(&s.operator), &resolved()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["counts"], counts(0, 0, 1, 0, 0));
    assert_eq!(r.body["alerts"][0]["outcome"], "resolved");
    // Service came back when the alert ended (13:40), not when the webhook came (13:45).
    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    assert_eq!(
        (&r.body["incident"]["state"], &r.body["incident"]["resolved_at"]),
        (&json!("resolved"), &json!("2026-11-23T13:40:00Z"))
    );
    assert_eq!(r.body["timeline"][1]["message"], "Resolved by monitoring: Fibre cut near Hub 1");

    let report = s.tick().await;
    assert_eq!(report.fanout, fanned(1, 4));
    assert_eq!((report.credits.incidents, report.credits.credits_written), (1, 3));
    // C2 has only a phone, and SMS carries no credit notice by default.
    assert_eq!(report.credits.notices_queued, 2);
    let mut expected = each(&["C1", "C2", "C5"], "acknowledgement");
    expected.extend(each(&["C1", "C2", "C5"], "restored"));
    expected.extend(each(&["C1", "C2", "C5"], "credit"));
    assert_eq!(notices(&s, "INC-000001").await, expected);
    let r = s.get("/v1/credits?incident=INC-000001", Some(&s.read)).await;
    let credited: BTreeSet<&str> =
        r.body.as_array().expect("credits").iter().filter_map(|c| c["customer_id"].as_str()).collect();
    assert_eq!(credited, BTreeSet::from(["C1", "C2", "C5"]));

    // Sent again (the other Alertmanager of a pair): a no-op, said so.
    let r = s.post(ROUTE, Some(&s.operator), &resolved()).await;
    assert_eq!(r.body["counts"], counts(0, 0, 0, 1, 0));
    assert_eq!(r.body["alerts"][0]["reason"], "already resolved");
    // A late copy of the firing alert does not reopen it.
    let r = s.post(ROUTE, Some(&s.operator), &firing()).await;
    assert_eq!(r.body["counts"], counts(0, 0, 0, 1, 0));
    assert_eq!(s.tick().await, TickReport::default());
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_description_posts_one_update_and_a_new_start_opens_a_new_incident() {
    let s = start().await;
    assert_eq!(s.post(ROUTE, Some(&s.operator), &firing()).await.status, 200);
    s.tick().await;

    s.clock.set(ts("2026-11-23T12:20:00Z"));
    let mut changed = firing();
    changed["alerts"][0]["annotations"]["description"] = json!("Crews are splicing the fibre.");
    for expected in [counts(0, 1, 0, 0, 0), counts(0, 0, 0, 1, 0)] {
        let r = s.post(ROUTE, Some(&s.operator), &changed).await;
        assert_eq!(r.body["counts"], expected, "{}", r.body);
    }
    // A plain update goes by email; C2, who has only a phone, gets no update by SMS by default.
    let plain_update = FanoutReport { declined: 1, ..fanned(1, 2) };
    assert_eq!(s.tick().await, TickReport { fanout: plain_update, ..TickReport::default() });
    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    let update = &r.body["timeline"][1];
    assert_eq!(
        (&update["kind"], &update["message"]),
        (&json!("update"), &json!("Crews are splicing the fibre."))
    );
    assert_eq!(r.body["timeline"].as_array().map(Vec::len), Some(2));

    // Resolved, then the same alert fires again later: a new outage, a new incident.
    s.clock.set(ts("2026-11-23T13:00:00Z"));
    assert_eq!(s.post(ROUTE, Some(&s.operator), &resolved()).await.body["counts"], counts(0, 0, 1, 0, 0));
    s.clock.set(ts("2026-11-23T15:00:00Z"));
    let mut again = firing();
    again["alerts"][0]["startsAt"] = json!("2026-11-23T14:55:00Z");
    let r = s.post(ROUTE, Some(&s.operator), &again).await;
    assert_eq!(r.body["counts"], counts(1, 0, 0, 0, 0));
    assert_eq!(r.body["alerts"][0]["incident_id"], "INC-000002");
    let sources = s.engine.store().incident_sources().await.expect("sources");
    let keys: Vec<&str> = sources.iter().map(|src| src.source_key.as_str()).collect();
    assert_eq!(keys, [format!("alertmanager:{FINGERPRINT}"), format!("alertmanager:{FINGERPRINT}/2")]);
    // A late resolution of the first occurrence leaves the second open.
    let r = s.post(ROUTE, Some(&s.operator), &resolved()).await;
    assert_eq!(r.body["alerts"][0]["outcome"], "unchanged");
    assert_eq!(r.body["alerts"][0]["incident_id"], "INC-000002");
    let open = s.engine.store().incidents(true).await.expect("incidents");
    assert_eq!(open.iter().map(|i| i.incident_id.as_str()).collect::<Vec<_>>(), ["INC-000002"]);
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_amends_cannot_use_are_listed_and_the_others_go_on() {
    let s = start().await;
    let mut gone = alert("00000000000000aa", json!({ "alertname": "HubDown", "element": "hub2" }));
    gone["status"] = json!("resolved");
    let body = payload(vec![
        alert("1111111111111111", json!({ "alertname": "DiskFull", "instance": "db1:9100" })),
        alert("2222222222222222", json!({ "alertname": "HubDown", "element": "hub9" })),
        alert("3333333333333333", json!({ "alertname": "HubDown", "element": "hub2" })),
        alert("not/a/fingerprint", json!({ "alertname": "HubDown", "element": "hub2" })),
        gone,
    ]);
    let r = s.post(ROUTE, Some(&s.operator), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["counts"], counts(1, 0, 0, 0, 4));
    assert_eq!(
        r.body["alerts"],
        json!([
            ignored(0, "1111111111111111", "labels: no \"element\" label naming an element"),
            ignored(1, "2222222222222222", "labels.element: \"hub9\" is not an element of the book"),
            {
                "index": 2, "fingerprint": "3333333333333333",
                "incident_id": "INC-000001", "outcome": "opened",
            },
            ignored(3, "not/a/fingerprint", "fingerprint: must be 1 to 64 letters or digits"),
            ignored(4, "00000000000000aa", "no incident was opened from this alert"),
        ])
    );
    // Only C4 is under hub2.
    s.tick().await;
    assert_eq!(notices(&s, "INC-000001").await, each(&["C4"], "acknowledgement"));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_incident_is_not_the_receivers() {
    let s = start().await;
    let declaration = json!({
        "elements": ["hub1"], "cause": "Fibre cut", "message": "",
        "etr": "2026-11-23T16:00:00Z", "next_update_by": "2026-11-23T13:00:00Z",
    });
    assert_eq!(s.post("/v1/incidents", Some(&s.operator), &declaration).await.status, 201);
    let r = s.post(ROUTE, Some(&s.operator), &resolved()).await;
    assert_eq!(r.body["counts"], counts(0, 0, 0, 0, 1));
    assert_eq!(s.engine.incident("INC-000001").await.expect("the incident").state.as_str(), "acknowledged");
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_and_tokens_are_refused_and_nothing_is_recorded() {
    let s = start().await;
    let one = firing()["alerts"][0].clone();
    let r = s.post(ROUTE, Some(&s.operator), &payload(vec![one; ALERTS_PER_PAYLOAD_MAX + 1])).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid");
    assert_eq!(r.body["error"]["message"], "alerts: 1001 alerts; at most 1000 per payload");

    let mut bad = firing();
    bad["alerts"][0]["status"] = json!("pending");
    let r = s.post(ROUTE, Some(&s.operator), &bad).await;
    assert_eq!((r.status, &r.body["error"]["code"]), (400, &json!("malformed")));
    let message = r.body["error"]["message"].as_str().expect("a message");
    assert!(message.contains("alerts[0].status"), "{message}");

    let mut bad = firing();
    bad["alerts"][0]["startsAt"] = json!("yesterday");
    let r = s.post(ROUTE, Some(&s.operator), &bad).await;
    let message = r.body["error"]["message"].as_str().expect("a message");
    assert!(r.status == 400 && message.contains("alerts[0].startsAt"), "{message}");

    let r = s.post(ROUTE, Some(&s.read), &firing()).await;
    assert_eq!(r.status, 403);
    assert!(s.engine.store().incidents(false).await.expect("incidents").is_empty());
    s.stop().await.expect("a clean stop");
}

/// An `up == 0` rule alerts once per scraped instance: three alerts naming hub1 (each its own
/// fingerprint), then a node of hub1 alerting too. Issue 16, case 7: each opened an incident
/// and every customer heard twice. Now one incident gathers them, each customer is told
/// once, and it resolves when the last of them does, at the latest end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_about_one_place_make_one_incident_resolved_by_the_last() {
    let s = start().await;
    let instance = |fp: &str, element: &str, instance: &str| {
        alert(fp, json!({ "alertname": "InstanceDown", "element": element, "instance": instance }))
    };
    let body = payload(vec![
        instance("a000000000000001", "hub1", "hub1-a:9100"),
        instance("a000000000000002", "hub1", "hub1-b:9100"),
        instance("a000000000000003", "hub1", "hub1-c:9100"),
    ]);
    let r = s.post(ROUTE, Some(&s.operator), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let outcomes: Vec<(&str, &str)> = r.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["outcome"].as_str().unwrap(), a["incident_id"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("opened", "INC-000001"), ("joined", "INC-000001"), ("joined", "INC-000001")]);
    // A node below it alerts in a later payload; the resends change nothing.
    let r = s
        .post(ROUTE, Some(&s.operator), &payload(vec![instance("b000000000000001", "node1", "node1:9100")]))
        .await;
    assert_eq!(r.body["alerts"][0]["outcome"], "joined", "{}", r.body);
    let r = s.post(ROUTE, Some(&s.operator), &body).await;
    assert_eq!(r.body["counts"]["unchanged"], 3, "{}", r.body);
    s.tick().await;
    assert_eq!(s.engine.store().incidents(false).await.unwrap().len(), 1);
    assert_eq!(notices(&s, "INC-000001").await, each(&["C1", "C2", "C5"], "acknowledgement"));

    // Three of the four end: still open. The last ends: resolved at the latest end.
    s.clock.set(ts("2026-11-23T14:00:00Z"));
    let ended = |fp: &str, element: &str, end: &str| {
        let mut a = instance(fp, element, "x");
        a["status"] = json!("resolved");
        a["endsAt"] = json!(end);
        a
    };
    let some = payload(vec![
        ended("a000000000000001", "hub1", "2026-11-23T13:10:00Z"),
        ended("a000000000000003", "hub1", "2026-11-23T13:30:00Z"),
        ended("b000000000000001", "node1", "2026-11-23T13:20:00Z"),
    ]);
    let r = s.post(ROUTE, Some(&s.operator), &some).await;
    assert_eq!(r.body["counts"]["resolved"], 0, "{}", r.body);
    assert_eq!(r.body["alerts"][2]["reason"], "1 other alert(s) of this incident still fire");
    assert!(s.engine.store().incident("INC-000001").await.unwrap().unwrap().resolved_at.is_none());
    let last = payload(vec![ended("a000000000000002", "hub1", "2026-11-23T13:25:00Z")]);
    let r = s.post(ROUTE, Some(&s.operator), &last).await;
    assert_eq!(r.body["counts"]["resolved"], 1, "{}", r.body);
    let incident = s.engine.store().incident("INC-000001").await.unwrap().unwrap();
    assert_eq!(incident.resolved_at, Some(ts("2026-11-23T13:30:00Z")), "back when the last alert ended");
    s.tick().await;
    let mut told = each(&["C1", "C2", "C5"], "acknowledgement");
    told.extend(each(&["C1", "C2", "C5"], "restored"));
    told.extend(each(&["C1", "C2", "C5"], "credit"));
    assert_eq!(notices(&s, "INC-000001").await, told, "each told once of each");
    s.stop().await.expect("a clean stop");
}

/// A node alerting first, then its hub: the hub's alert joins and widens the incident, so
/// the hub's other customers are told of it too, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_above_an_open_incident_widens_it() {
    let s = start().await;
    let node = alert("c000000000000001", json!({ "alertname": "NodeDown", "element": "node1" }));
    s.post(ROUTE, Some(&s.operator), &payload(vec![node])).await;
    s.tick().await;
    assert_eq!(notices(&s, "INC-000001").await, each(&["C1"], "acknowledgement"));
    let hub = alert("c000000000000002", json!({ "alertname": "HubDown", "element": "hub1" }));
    let r = s.post(ROUTE, Some(&s.operator), &payload(vec![hub])).await;
    assert_eq!(r.body["alerts"][0]["outcome"], "joined", "{}", r.body);
    let incident = s.engine.store().incident("INC-000001").await.unwrap().unwrap();
    assert_eq!(incident.element_ids, ["hub1"]);
    s.stop().await.expect("a clean stop");
}

/// Issue 16, case 7: an alert with a misspelt label was answered "ignored" and forgotten.
/// Now it is kept, by fingerprint, with its labels and the reason, for an operator to see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_alerts_are_listed_for_an_operator() {
    let s = start().await;
    let typo = alert("d000000000000001", json!({ "alertname": "HubDown", "elemnt": "hub1" }));
    let unknown = alert("d000000000000002", json!({ "alertname": "HubDown", "element": "hub-9" }));
    s.post(ROUTE, Some(&s.operator), &payload(vec![typo.clone(), unknown])).await;
    s.clock.set(ts("2026-11-23T12:05:00Z"));
    s.post(ROUTE, Some(&s.operator), &payload(vec![typo])).await;
    let r = s.get("/v1/alerts/ignored", Some(&s.read)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "alerts": [
            {
                "fingerprint": "d000000000000001",
                "labels": { "alertname": "HubDown", "elemnt": "hub1" },
                "reason": "labels: no \"element\" label naming an element",
                "first_at": "2026-11-23T12:00:00Z", "last_at": "2026-11-23T12:05:00Z", "times": 2,
            },
            {
                "fingerprint": "d000000000000002",
                "labels": { "alertname": "HubDown", "element": "hub-9" },
                "reason": "labels.element: \"hub-9\" is not an element of the book",
                "first_at": "2026-11-23T12:00:00Z", "last_at": "2026-11-23T12:00:00Z", "times": 1,
            },
        ]})
    );
    assert_eq!(s.get("/v1/alerts/ignored", None).await.status, 401);
    s.stop().await.expect("a clean stop");
}
