//! Detection in a real server: device events in over HTTP and from a real NATS JetStream
//! server (`AMENDS_TEST_NATS_URL`, by default nats://127.0.0.1:4222), incidents, impacts, notices and credits out, over a fresh
//! SQLite file.
//!
//! The clock is a manual one and stands still; events carry their own times, so the
//! outcome does not depend on how fast anything runs. The server's tasks work in the
//! background, so the tests wait for an outcome (with a generous bound), never for a time.

use crate::support;

use amends_server::DetectionStart;
use amends_sources::detection::ServiceConfig;
use amends_sources::detection::nats::NatsSource;
use amends_sources::telemetry::DetectionSettings;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::{TestServer, Worker, eventually};

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nbasic,Basic,7200,USD\n";

/// region ─┬─ node1: C1..C5 with modems M1..M5, C6 without a device
///         └─ node2: C7, C8, C9 with modems M7..M9
const TOPOLOGY: &str = "element_id,parent_id,kind,name\n\
region,,region,Region\n\
node1,region,node,Node 1\n\
node2,region,node,Node 2\n";

fn customers() -> String {
    customer_rows(9, |n| if n <= 6 { "node1" } else { "node2" })
}

/// C1..C`last` on the element `element_of` gives, each with modem M<n>, but C6 with none.
fn customer_rows(last: u32, element_of: impl Fn(u32) -> &'static str) -> String {
    let mut csv = String::from(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n",
    );
    for n in 1..=last {
        let device = if n == 6 { String::new() } else { format!("M{n}") };
        csv.push_str(&format!(
            "C{n},Customer {n},c{n}@example.com,,en,UTC,basic,{},{device},1,2024-01-01T00:00:00Z,active\n",
            element_of(n)
        ));
    }
    csv
}

fn detection(nats: Option<NatsSource>) -> DetectionStart {
    let config = ServiceConfig::from_settings(&DetectionSettings::default()).expect("default settings");
    DetectionStart { config, nats }
}

async fn server(nats: Option<NatsSource>) -> TestServer {
    server_with(nats, TOPOLOGY, &customers()).await
}

async fn server_with(nats: Option<NatsSource>, topology: &str, customers: &str) -> TestServer {
    // What the server's tasks log shows with a failing test's output.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn,amends=info").try_init();
    let s = TestServer::start_with(Worker::Detecting(Box::new(detection(nats)))).await;
    let book = json!({ "plans_csv": PLANS, "topology_csv": topology, "customers_csv": customers });
    let r = s.post("/v1/import", Some(&s.admin), &book).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s
}

fn event(device: &str, state: &str, at: &str, gasp: bool) -> String {
    let mut e = json!({ "device_id": device, "state": state, "at": at });
    if gasp {
        e["reason"] = json!("dying_gasp");
    }
    e.to_string()
}

async fn post_events(s: &TestServer, lines: &[String]) -> Value {
    let req = s
        .request(reqwest::Method::POST, "/v1/telemetry/events", Some(&s.operator))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"));
    let r = s.send(req).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Kinds of notice queued per customer for the incident, e.g. {"C1": ["acknowledgement"]}.
async fn notices(s: &TestServer, incident: &str) -> BTreeMap<String, Vec<String>> {
    let rows = s.engine.store().notices_for_incident(incident, 1000).await.unwrap();
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in rows {
        by_customer.entry(n.customer_id.to_string()).or_default().push(n.kind);
    }
    for kinds in by_customer.values_mut() {
        kinds.sort();
    }
    by_customer
}

fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(c, kinds)| (c.to_string(), kinds.iter().map(|k| k.to_string()).collect())).collect()
}

/// The acknowledgements of a node1 outage with M1..M4 offline: their four customers and
/// C6, who has no device; not C5 (online) nor node2.
fn node1_acknowledged() -> BTreeMap<String, Vec<String>> {
    expect(&[
        ("C1", &["acknowledgement"]),
        ("C2", &["acknowledgement"]),
        ("C3", &["acknowledgement"]),
        ("C4", &["acknowledgement"]),
        ("C6", &["acknowledgement"]),
    ])
}

async fn the_incident(s: &TestServer) -> Value {
    eventually("a detected incident", async || {
        let r = s.get("/v1/incidents", Some(&s.read)).await;
        r.body.as_array().and_then(|a| a.first().cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outage_over_http_is_told_restored_followed_up_and_credited_per_customer() {
    let s = server(None).await;
    let agents = json!({ "agents": [
        { "id": "lee", "name": "Lee Lead", "role": "lead" },
        { "id": "ann", "name": "Ann Agent", "role": "agent", "lead": "lee" },
    ]});
    let put = s.send(s.request(reqwest::Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    // 06:00: four of node1's five modems send a dying gasp; a bad line, an unknown device
    // and an event from the future are refused by index, the rest applied.
    let mut batch: Vec<String> =
        (1..=4).map(|n| event(&format!("M{n}"), "offline", "2026-11-23T06:00:00Z", true)).collect();
    batch.push("{\"device_id\": \"M5\", \"state\": \"sideways\", \"at\": \"2026-11-23T06:00:00Z\"}".into());
    batch.push(event("NOPE", "offline", "2026-11-23T06:00:00Z", true));
    batch.push(event("M7", "offline", "2026-11-24T06:00:00Z", true));
    let report = post_events(&s, &batch).await;
    assert_eq!(report["accepted"], 4, "{report}");
    let rejected: Vec<u64> =
        report["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(rejected, [4, 5, 6], "{report}");
    // The same events again are duplicates: applied once.
    let again = post_events(&s, &batch[..4]).await;
    assert_eq!((again["accepted"].clone(), again["duplicates"].clone()), (json!(4), json!(4)));

    let incident = the_incident(&s).await;
    let id = incident["incident_id"].as_str().unwrap().to_string();
    assert_eq!(incident["element_ids"], json!(["node1"]));
    assert_eq!(incident["started_at"], "2026-11-23T06:00:00Z");
    let told = node1_acknowledged();
    eventually("acknowledgements", async || (notices(&s, &id).await == told).then_some(())).await;

    // 08:00: C1's modem is back: C1 alone hears it; the node is still out (3 of 5).
    post_events(&s, &[event("M1", "online", "2026-11-23T08:00:00Z", false)]).await;
    let mut expected = told.clone();
    expected.insert("C1".into(), vec!["acknowledgement".into(), "restored".into()]);
    eventually("C1's restoration notice", async || (notices(&s, &id).await == expected).then_some(())).await;

    // The operator names the cause and gives an estimate: those told and still out hear
    // it (not C1, who is back); the incident's cause is the operator's now.
    let update = json!({ "cause": "A power failure at the Node 1 cabinet", "etr": "2026-11-23T14:00:00Z",
        "message": "A crew is on site." });
    let r = s.post(&format!("/v1/incidents/{id}/updates"), Some(&s.operator), &update).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["cause"], "A power failure at the Node 1 cabinet");
    for c in ["C2", "C3", "C4", "C6"] {
        expected.get_mut(c).unwrap().push("update".into());
    }
    eventually("the operator's update", async || (notices(&s, &id).await == expected).then_some(())).await;
    let c2 = s.engine.store().notices_for_customer("C2").await.unwrap();
    let told = c2.iter().find(|n| n.kind == "update").unwrap();
    assert!(told.body.contains("A crew is on site."), "{}", told.body);

    // 11:00: M2 and M3 are back, M4 is not: the node is back, the incident resolved; C4
    // is told their equipment still looks offline and is listed for follow-up.
    post_events(
        &s,
        &[
            event("M2", "online", "2026-11-23T11:00:00Z", false),
            event("M3", "online", "2026-11-23T11:00:00Z", false),
        ],
    )
    .await;
    let resolved = expect(&[
        ("C1", &["acknowledgement", "credit", "restored"]),
        ("C2", &["acknowledgement", "credit", "restored", "update"]),
        ("C3", &["acknowledgement", "credit", "restored", "update"]),
        ("C4", &["acknowledgement", "credit", "still_down", "update"]),
        ("C6", &["acknowledgement", "credit", "restored", "update"]),
    ]);
    eventually("restored, still-down and credit notices", async || {
        (notices(&s, &id).await == resolved).then_some(())
    })
    .await;
    let incident = s.get(&format!("/v1/incidents/{id}"), Some(&s.read)).await.body;
    assert_eq!(incident["incident"]["resolved_at"], "2026-11-23T11:00:00Z", "{incident}");

    let follow_up = s.get(&format!("/v1/incidents/{id}/impacts?follow_up=true"), Some(&s.read)).await.body;
    let listed: Vec<&str> =
        follow_up.as_array().unwrap().iter().map(|i| i["customer_id"].as_str().unwrap()).collect();
    assert_eq!(listed, ["C4"]);

    // C4 was told a case is open for them: it is, owned by the one agent, opened by
    // amends, its time counted from when C4 went offline; a later pass opens no other.
    let ann = amends_recovery::tokens::create_for_agent(
        s.engine.store().as_ref(),
        "ann",
        "test",
        s.engine.clock().now(),
    )
    .await
    .unwrap()
    .unwrap();
    let cases = s.get("/v1/cases?customer=C4", Some(&ann)).await.body;
    assert_eq!(cases.as_array().unwrap().len(), 1, "{cases}");
    let case = &cases[0];
    assert_eq!(
        (&case["owner"], &case["source"], &case["source_id"]),
        (&json!("ann"), &json!("incident"), &json!(id))
    );
    assert_eq!(case["first_contact_at"], "2026-11-23T06:00:00Z");
    let view = s.get(&format!("/v1/cases/{}", case["case_id"].as_str().unwrap()), Some(&ann)).await.body;
    assert_eq!(view["events"][0]["by"], "amends");
    let told: Vec<&str> =
        view["customer_notices"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert!(
        told.contains(&"still_down") && told.contains(&"credit"),
        "the owner sees what C4 was told: {told:?}"
    );
    // What C4 was credited for the outage is the case's compensation, recorded by amends.
    let credit = &view["customer_credits"][0];
    let compensated = &view["events"][1];
    assert_eq!((&compensated["type"], &compensated["by"]), (&json!("compensated"), &json!("amends")));
    assert_eq!(
        (&compensated["credit_key"], &compensated["amount_minor"]),
        (&credit["key"], &credit["amount_minor"])
    );
    s.engine.tick().await.unwrap();
    let cases = s.get("/v1/cases?customer=C4", Some(&ann)).await.body;
    assert_eq!(cases.as_array().unwrap().len(), 1);
    let again = s.get(&format!("/v1/cases/{}", case["case_id"].as_str().unwrap()), Some(&ann)).await.body;
    let compensated =
        again["events"].as_array().unwrap().iter().filter(|e| e["type"] == "compensated").count();
    assert_eq!(compensated, 1, "recorded once: {}", again["events"]);

    // Each customer is credited for their own downtime: C1 two hours, C2 and C3 five,
    // C4 and C6 the whole five hours of the incident. 72.00 a month, November has 30 days:
    // 7200 * 2h / 720h = 20 cents, 7200 * 5h / 720h = 50.
    let credits = s.engine.store().credits(&Default::default()).await.unwrap();
    let owed: BTreeMap<&str, i64> =
        credits.iter().map(|c| (c.customer_id.as_str(), c.amount_minor)).collect();
    assert_eq!(owed, BTreeMap::from([("C1", 20), ("C2", 50), ("C3", 50), ("C4", 50), ("C6", 50)]));
    s.stop().await.unwrap();
}

/// A stream, subject and consumer of this test's own on the shared NATS server at `url`.
fn nats_source(url: String) -> NatsSource {
    let tag = format!("{}{}", std::process::id(), rand_tag());
    NatsSource {
        url,
        subject: format!("amends-test.{tag}.events"),
        stream: format!("AMENDS_TEST_{tag}"),
        consumer: format!("amends-test-{tag}"),
    }
}

fn rand_tag() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        % 1_000_000_007
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_nats_jetstream_open_an_incident_and_are_acknowledged_once_applied() {
    let Some(url) = support::nats_url_or_skip("events_from_nats_jetstream").await else { return };
    let source = nats_source(url);
    let s = server(Some(source.clone())).await;
    let client = async_nats::connect(&source.url).await.expect("NATS answered a moment ago");
    let js = async_nats::jetstream::new(client);
    // The server creates the stream; wait for it rather than racing it.
    eventually("the JetStream stream", async || js.get_stream(&source.stream).await.ok()).await;
    // One message with two events, three with one each (one event twice), one that is
    // not an event at all: five messages.
    let two = format!(
        "{}\n{}",
        event("M1", "offline", "2026-11-23T06:00:00Z", true),
        event("M2", "offline", "2026-11-23T06:00:00Z", true)
    );
    let mut payloads = vec![two];
    for n in 3..=4 {
        payloads.push(event(&format!("M{n}"), "offline", "2026-11-23T06:00:00Z", true));
    }
    payloads.push(event("M4", "offline", "2026-11-23T06:00:00Z", true)); // sent twice
    payloads.push("not json".into());
    for p in payloads {
        js.publish(source.subject.clone(), p.into()).await.unwrap().await.expect("stored by JetStream");
    }

    let incident = the_incident(&s).await;
    let id = incident["incident_id"].as_str().unwrap().to_string();
    assert_eq!(incident["element_ids"], json!(["node1"]));
    let told = node1_acknowledged();
    eventually("acknowledgements", async || (notices(&s, &id).await == told).then_some(())).await;
    let logged =
        s.engine.store().device_events(support::ts("2026-11-23T00:00:00Z"), None, 100).await.unwrap();
    assert_eq!(logged.len(), 4);

    // Every message was acknowledged (or, the bad one, terminated) after it was applied:
    // nothing is left pending or unacknowledged on the consumer.
    let mut stream = js.get_stream(&source.stream).await.unwrap();
    let info = eventually("every message acknowledged", async || {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&source.consumer).await.ok()?;
        let info = consumer.info().await.ok()?.clone();
        (info.num_ack_pending == 0 && info.num_pending == 0).then_some(info)
    })
    .await;
    assert_eq!(info.delivered.stream_sequence, 5);
    s.stop().await.unwrap();
    stream.info().await.unwrap();
    js.delete_stream(&source.stream).await.unwrap();
}

/// An incident an older amends opened under its `telemetry:<element>:<start>` key is found
/// again when detection is rebuilt (here by an import of the same book), instead of being
/// opened a second time and its customers acknowledged twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_opened_under_the_older_key_is_found_again_on_a_rebuild() {
    let s = server(None).await;
    let batch: Vec<String> =
        (1..=4).map(|n| event(&format!("M{n}"), "offline", "2026-11-23T06:00:00Z", true)).collect();
    post_events(&s, &batch).await;
    let incident = the_incident(&s).await;
    let id = incident["incident_id"].as_str().unwrap().to_string();
    eventually("acknowledgements", async || (notices(&s, &id).await == node1_acknowledged()).then_some(()))
        .await;
    let key = s.engine.store().sources_of(&id).await.unwrap()[0].source_key.clone();
    // As the older amends keyed it: the element and the outage's start.
    let older = "telemetry:node1:2026-11-23T06:00:00Z";
    assert!(s.engine.store().rekey_source(&key, older).await.unwrap());

    // The same book again: detection rebuilds from the log.
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": customers() });
    let r = s.post("/v1/import", Some(&s.admin), &book).await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the incident re-keyed", async || {
        let sources = s.engine.store().sources_of(&id).await.ok()?;
        (sources.first()?.source_key == key).then_some(())
    })
    .await;
    // A batch after the rebuild has been taken in: the rebuild is over.
    post_events(&s, &[event("M9", "offline", "2026-11-23T06:30:00Z", false)]).await;
    let incidents = s.engine.store().incidents(false).await.unwrap();
    assert_eq!(incidents.len(), 1, "no second incident for the same outage: {incidents:?}");
    assert_eq!(notices(&s, &id).await, node1_acknowledged(), "nobody acknowledged twice");
    s.stop().await.unwrap();
}

/// hub ─┬─ node1: C1..C5 (M1..M5), C6 without a device
///      ├─ node2: C7..C9 (M7..M9)
///      └─ node3: C10..C14 (M10..M14)
const HUB: &str = "element_id,parent_id,kind,name\n\
hub,,hub,Hub\n\
node1,hub,node,Node 1\n\
node2,hub,node,Node 2\n\
node3,hub,node,Node 3\n";

fn hub_customers() -> String {
    customer_rows(14, |n| match n {
        1..=6 => "node1",
        7..=9 => "node2",
        _ => "node3",
    })
}

fn offline(devices: std::ops::RangeInclusive<u32>, at: &str) -> Vec<String> {
    devices.map(|n| event(&format!("M{n}"), "offline", at, true)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_merging_into_their_hub_acknowledge_nobody_twice_and_credit_once() {
    let s = server_with(None, HUB, &hub_customers()).await;
    // 06:00 node1 (4 of 5), 07:00 node2 (3 of 3): two incidents, the hub at 7 of 13.
    post_events(&s, &offline(1..=4, "2026-11-23T06:00:00Z")).await;
    let first = the_incident(&s).await["incident_id"].as_str().unwrap().to_string();
    post_events(&s, &offline(7..=9, "2026-11-23T07:00:00Z")).await;
    let second = eventually("the second incident", async || {
        // Newest first.
        let all = s.get("/v1/incidents", Some(&s.read)).await.body;
        all.as_array().filter(|a| a.len() == 2).map(|a| a[0]["incident_id"].as_str().unwrap().to_string())
    })
    .await;
    let acknowledged = |customers: &[&str]| -> BTreeMap<String, Vec<String>> {
        customers.iter().map(|c| (c.to_string(), vec!["acknowledgement".to_string()])).collect()
    };
    let in_first = acknowledged(&["C1", "C2", "C3", "C4", "C6"]);
    let in_second = acknowledged(&["C7", "C8", "C9"]);
    eventually("both acknowledged", async || {
        (notices(&s, &first).await == in_first && notices(&s, &second).await == in_second).then_some(())
    })
    .await;

    // 08:00 two of node3's modems: the hub is out (9 of 13). The second incident merges
    // into the first, which now covers the hub; only C10 and C11 are told, for the first time.
    post_events(&s, &offline(10..=11, "2026-11-23T08:00:00Z")).await;
    let mut widened = in_first.clone();
    widened.extend(acknowledged(&["C10", "C11"]));
    eventually("the newly covered acknowledged", async || {
        (notices(&s, &first).await == widened).then_some(())
    })
    .await;
    let merged = s.get(&format!("/v1/incidents/{second}"), Some(&s.read)).await.body;
    assert_eq!(merged["incident"]["state"], "resolved", "{merged}");
    assert_eq!(merged["timeline"][1]["kind"], "merged", "{merged}");
    let hub = s.get(&format!("/v1/incidents/{first}"), Some(&s.read)).await.body;
    assert_eq!(hub["incident"]["element_ids"], json!(["hub"]), "{hub}");
    let impacts = s.get(&format!("/v1/incidents/{first}/impacts"), Some(&s.read)).await.body;
    let mut covered: Vec<&str> =
        impacts.as_array().unwrap().iter().map(|i| i["customer_id"].as_str().unwrap()).collect();
    covered.sort();
    assert_eq!(covered, ["C1", "C10", "C11", "C2", "C3", "C4", "C6", "C7", "C8", "C9"]);

    // 10:00 everything is back: one resolution, credits under the first incident only,
    // each for the customer's own downtime (C7 from 07:00: three hours, 30 cents).
    let back: Vec<String> = [1, 2, 3, 4, 7, 8, 9, 10, 11]
        .iter()
        .map(|n| event(&format!("M{n}"), "online", "2026-11-23T10:00:00Z", false))
        .collect();
    post_events(&s, &back).await;
    let credits = eventually("credits", async || {
        let credits = s.engine.store().credits(&Default::default()).await.unwrap();
        (credits.len() == 10).then_some(credits)
    })
    .await;
    assert!(credits.iter().all(|c| c.source_event == first), "{credits:?}");
    let owed: BTreeMap<&str, i64> =
        credits.iter().map(|c| (c.customer_id.as_str(), c.amount_minor)).collect();
    assert_eq!((owed["C1"], owed["C6"], owed["C7"], owed["C10"]), (40, 40, 30, 20));
    s.stop().await.unwrap();
}
