//! The delivery record, preferences, unsubscribe links, receipts, bounces and quarantine,
//! through the HTTP API of a real server on 127.0.0.1 over a fresh SQLite file.

use crate::{gateway, support};

use amends_channels::{SegmentBudget, SmsGatewayConfig, SmsPreset, SmsTransport};
use amends_recovery::clock::Clock;
use amends_sinks::deliver::{DeliveryReport, Dispatcher, Lane};
use gateway::Reply;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{CUSTOMERS, PLANS, TOPOLOGY, TestServer, ts};

/// The shared book, then an outage on hub1 declared at the clock's start (12:00).
async fn outage(s: &TestServer) {
    import_book(s).await;
    declare(s).await;
}

async fn import_book(s: &TestServer) {
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
}

async fn declare(s: &TestServer) {
    let declaration = json!({
        "elements": ["hub1"],
        "cause": "Fibre cut near Hub 1",
        "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z",
        "next_update_by": "2026-11-23T13:00:00Z",
    });
    assert_eq!(s.post("/v1/incidents", Some(&s.operator), &declaration).await.status, 201);
}

async fn patch(s: &TestServer, path: &str, body: &Value) -> support::Reply {
    s.send(s.request(Method::PATCH, path, Some(&s.operator)).json(body)).await
}

/// An answer that is a page, not JSON.
async fn page(s: &TestServer, method: Method, path: &str) -> (u16, String) {
    let response = s.http.request(method, format!("{}{path}", s.base)).send().await.expect("a response");
    (response.status().as_u16(), response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_has_a_record_with_its_history() {
    let s = TestServer::start().await;
    outage(&s).await;
    s.tick().await;
    assert_eq!(s.deliver().await, DeliveryReport { sent: 4, ..DeliveryReport::default() });

    let r = s.get("/v1/notices?customer=C1", Some(&s.read)).await;
    let keys: Vec<&str> = r.body.as_array().unwrap().iter().map(|n| n["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["C1/INC-000001/acknowledgement/0/email", "C1/INC-000001/acknowledgement/0/sms"]);
    let r = s.get("/v1/notices?incident=INC-000001&status=sent&limit=1", Some(&s.read)).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    let r = s.get("/v1/notices?status=lost", Some(&s.read)).await;
    assert_eq!(r.status, 422, "{}", r.body);

    let r = s.get("/v1/notices/C1/INC-000001/acknowledgement/0/sms", Some(&s.read)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["notice"]["status"], "sent");
    let history: Vec<(&str, &str)> = r.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["at"].as_str().unwrap()))
        .collect();
    assert_eq!(history, [("queued", "2026-11-23T12:00:00Z"), ("sent", "2026-11-23T12:00:00Z")]);
    assert_eq!(s.get("/v1/notices/C1/nothing", Some(&s.read)).await.status, 404);

    // An update still queued when the incident is resolved is coalesced into the
    // restoration: recorded as queued, then suppressed, and never sent.
    let update = json!({ "message": "Crews are splicing.", "next_update_by": "2026-11-23T14:00:00Z" });
    assert_eq!(s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await.status, 200);
    s.tick().await;
    s.clock.set(ts("2026-11-23T12:10:00Z"));
    assert_eq!(s.post("/v1/incidents/INC-000001/resolve", Some(&s.operator), &json!({})).await.status, 200);
    assert!(s.tick().await.fanout.coalesced >= 1);
    let r = s.get("/v1/notices/C1/INC-000001/update/1/email", Some(&s.read)).await;
    assert_eq!(
        (&r.body["notice"]["status"], &r.body["notice"]["reason"]),
        (&json!("suppressed"), &json!("coalesced"))
    );
    let history: Vec<(&str, Option<&str>)> = r.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["detail"].as_str()))
        .collect();
    assert_eq!(history, [("queued", None), ("suppressed", Some("coalesced"))]);
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_choose_channels_and_quiet_hours_hold_sms() {
    let s = TestServer::start().await;
    import_book(&s).await;

    let r = s.get("/v1/customers/C1/preferences", Some(&s.read)).await;
    assert_eq!(r.body["channels"]["update"], json!(["email", "webhook"]));
    assert_eq!(r.body["channels"]["acknowledgement"], json!(["email", "sms", "webhook"]));
    assert_eq!((&r.body["quiet_hours"], &r.body["updated_at"]), (&Value::Null, &Value::Null));

    // C1 (UTC) wants no email about this outage, and quiet from 11:00 to 13:00 for SMS.
    let change = json!({ "channels": { "acknowledgement": ["sms"] }, "quiet_hours": { "start": "11:00", "end": "13:00" } });
    let r = patch(&s, "/v1/customers/C1/preferences", &change).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["chosen"], json!({ "acknowledgement": ["sms"] }));
    assert_eq!(r.body["quiet_hours"], json!({ "start": "11:00", "end": "13:00" }));

    let bad = patch(
        &s,
        "/v1/customers/C1/preferences",
        &json!({ "quiet_hours": { "start": "25:00", "end": "07:00" } }),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body["error"]["message"].as_str().unwrap().contains("quiet_hours.start \"25:00\""),
        "{}",
        bad.body
    );
    let unknown =
        patch(&s, "/v1/customers/C1/preferences", &json!({ "channels": { "gossip": ["sms"] } })).await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(patch(&s, "/v1/customers/NOPE/preferences", &json!({})).await.status, 404);
    let read_only = s
        .send(s.request(Method::PATCH, "/v1/customers/C1/preferences", Some(&s.read)).json(&json!({})))
        .await;
    assert_eq!(read_only.status, 403);

    declare(&s).await;
    s.tick().await;
    let r = s.get("/v1/notices?customer=C1", Some(&s.read)).await;
    let notices = r.body.as_array().unwrap();
    assert_eq!(notices.len(), 1, "SMS only: {}", r.body);
    assert_eq!((&notices[0]["channel"], &notices[0]["reason"]), (&json!("sms"), &json!("quiet_hours")));
    assert_eq!(notices[0]["next_attempt_at"], "2026-11-23T13:00:00Z");
    // Held: nothing goes at noon; at 13:00 it does.
    assert_eq!(s.deliver().await.sent, 2, "C2's SMS and C5's email, not C1's");
    s.clock.set(ts("2026-11-23T13:00:00Z"));
    assert_eq!(s.deliver().await.sent, 1);
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_link_works_once_without_a_login_and_says_nothing_when_refused() {
    let s = TestServer::start().await;
    outage(&s).await;
    s.tick().await;
    s.deliver().await;
    // A plain update: an optional notice, with a link.
    let update = json!({ "message": "Crews are splicing.", "next_update_by": "2026-11-23T14:00:00Z" });
    assert_eq!(s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await.status, 200);
    s.tick().await;
    let notice = s.engine.store().notice("C1/INC-000001/update/1/email").await.unwrap().expect("C1's update");
    let key = amends_recovery::unsubscribe::stored_key(s.engine.store().as_ref()).await.unwrap();
    let link = amends_recovery::unsubscribe::links(key, &s.base)(&notice, s.clock.now()).expect("a link");
    let path = link.strip_prefix(&s.base).unwrap().to_string();
    let ack = s.engine.store().notice("C1/INC-000001/acknowledgement/0/email").await.unwrap().unwrap();
    assert!(
        amends_recovery::unsubscribe::links(amends_recovery::optout::OptOutKey::generate(), &s.base)(
            &ack,
            s.clock.now()
        )
        .is_none()
    );

    // Following the link (a mail scanner does) changes nothing; it shows a button.
    let (status, text) = page(&s, Method::GET, &path).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<form method=\"post\""), "{text}");
    assert_eq!(s.get("/v1/customers/C1/preferences", Some(&s.read)).await.body["chosen"], json!({}));

    let (status, text) = page(&s, Method::POST, &path).await;
    assert_eq!(status, 200, "{text}");
    let r = s.get("/v1/customers/C1/preferences", Some(&s.read)).await;
    assert_eq!(r.body["channels"]["update"], json!(["webhook"]));
    assert_eq!(r.body["channels"]["etr_change"], json!(["sms", "webhook"]));

    // Used, forged, expired: refused, naming nobody.
    let (status, text) = page(&s, Method::POST, &path).await;
    assert_eq!(status, 400);
    assert!(text.contains("already used") && !text.contains("C1"), "{text}");
    let mut forged = path.clone();
    forged.replace_range(forged.len() - 3.., "AAA");
    let (status, text) = page(&s, Method::POST, &forged).await;
    assert!(status == 400 && text.contains("does not work") && !text.contains("C1"), "{text}");
    s.clock.set(ts("2027-11-23T12:00:00Z"));
    let (status, text) = page(&s, Method::GET, &path).await;
    assert!(status == 400 && text.contains("expired"), "{text}");
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_bounces_update_the_record_and_bounces_quarantine() {
    let s = TestServer::start().await;
    outage(&s).await;
    s.tick().await;
    // The SMS go through the real gateway client to a stand-in that answers as Twilio does,
    // with its own message id, which the dispatcher records for the receipts.
    let mut gateway = gateway::Gateway::start(
        vec![
            Reply::json(201, json!({ "sid": "SM-C1", "status": "queued" })),
            Reply::json(201, json!({ "sid": "SM-C2", "status": "queued" })),
        ],
        Reply::Answer(500, "{}".into()),
    )
    .await;
    let config = SmsGatewayConfig {
        url: gateway.url("/2010-04-01/Accounts/AC1/Messages.json"),
        preset: SmsPreset::Twilio,
        from: "+15005550006".into(),
        username: Some("AC1".into()),
        password: Some("secret".into()),
        token: None,
        timeout_ms: 5_000,
        segments_max: SegmentBudget::default(),
        shift_tables: Vec::new(),
    };
    let sms = Lane { concurrency: 1, ..Lane::new("sms", Arc::new(SmsTransport::new(config).unwrap())) };
    let store = s.engine.store().clone();
    let report =
        Dispatcher::new(store.clone(), s.engine.clock().clone(), vec![sms]).deliver_due().await.unwrap();
    assert_eq!(report, DeliveryReport { sent: 2, ..DeliveryReport::default() });
    let posted: Vec<String> = gateway
        .drain()
        .iter()
        .map(|r| r.form().into_iter().find(|(k, _)| k == "To").map(|(_, v)| v).unwrap_or_default())
        .collect();
    assert_eq!(posted, ["+14155550101", "+14155550102"]);
    let c1 = store.notice("C1/INC-000001/acknowledgement/0/sms").await.unwrap().unwrap();
    assert_eq!((c1.status.as_str(), c1.provider_id.as_deref()), ("sent", Some("SM-C1")));
    let receipts = json!([
        { "provider_id": "SM-C1", "status": "delivered" },
        { "provider_id": "SM-C2", "status": "undelivered", "detail": "30003 unreachable handset" },
        { "provider_id": "SM-C9", "status": "delivered" },
        { "provider_id": "SM-C1", "status": "accepted" },
    ]);
    let r = s.post("/v1/channels/sms/receipts", Some(&s.operator), &receipts).await;
    assert_eq!((r.status, &r.body), (200, &json!({ "applied": 2, "ignored": 2 })));
    let c2 = store.notice("C2/INC-000001/acknowledgement/0/sms").await.unwrap().unwrap();
    assert_eq!((c2.status.as_str(), c2.last_error.as_deref()), ("failed", Some("30003 unreachable handset")));
    // Twilio's own callback shape.
    let twilio = s.request(Method::POST, "/v1/channels/sms/receipts", Some(&s.operator)).form(&[
        ("MessageSid", "SM-C1"),
        ("MessageStatus", "failed"),
        ("ErrorCode", "30008"),
    ]);
    assert_eq!(s.send(twilio).await.body, json!({ "applied": 1, "ignored": 0 }));
    assert_eq!(s.post("/v1/channels/sms/receipts", None, &receipts).await.status, 401);

    // Hard bounces: the email fails, and the third in a row quarantines the address.
    s.deliver().await;
    let bad_kind = s
        .post("/v1/channels/email/bounces", Some(&s.operator), &json!([{ "key": "x", "kind": "angry" }]))
        .await;
    assert_eq!(bad_kind.status, 422, "{}", bad_kind.body);
    let bounce = json!([{ "key": "C5/INC-000001/acknowledgement/0/email", "kind": "hard", "detail": "550 5.1.1 no such user" }]);
    let r = s.post("/v1/channels/email/bounces", Some(&s.operator), &bounce).await;
    assert_eq!(r.body, json!({ "applied": 1, "ignored": 0 }));
    let record = s.get("/v1/notices/C5/INC-000001/acknowledgement/0/email", Some(&s.read)).await;
    assert_eq!(record.body["notice"]["status"], "failed");
    assert_eq!(record.body["history"][2]["detail"], "bounce: 550 5.1.1 no such user");
    for _ in 0..2 {
        store.record_hard_failure("email", "ed@example.com", "550", 3, s.clock.now()).await.unwrap();
    }
    let r = s.get("/v1/quarantine", Some(&s.read)).await;
    assert_eq!(r.body[0]["recipient"], "ed@example.com");

    // The next notice to a quarantined address is suppressed, not sent.
    let update = json!({ "message": "Crews are splicing.", "next_update_by": "2026-11-23T14:00:00Z" });
    assert_eq!(s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await.status, 200);
    s.tick().await;
    let report = s.deliver().await;
    assert_eq!(report.suppressed, 1, "{report:?}");
    let c5 = store.notice("C5/INC-000001/update/1/email").await.unwrap().unwrap();
    assert_eq!((c5.status.as_str(), c5.reason.as_deref()), ("suppressed", Some("quarantined")));

    let lift = s.request(Method::DELETE, "/v1/quarantine/email/ed@example.com", Some(&s.operator));
    assert_eq!(lift.send().await.unwrap().status(), 204);
    assert_eq!(s.get("/v1/quarantine", Some(&s.read)).await.body, json!([]));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_text_reaches_each_customer_in_their_language() {
    let s = TestServer::start().await;
    let customers = CUSTOMERS
        .replace("C4,Di,di@example.com,,en,", "C4,Di,di@example.com,,es-MX,")
        .replace(",basic,node3,M4,", ",basic,node1,M4,")
        .replace("C5,Ed,ed@example.com,,en-US,", "C5,Ed,ed@example.com,,fr-CA,");
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": customers });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);

    // Every problem with the translations is named, with its locale, and nothing is declared.
    let mut declaration = json!({
        "elements": ["hub1"],
        "cause": "Fibre cut near Hub 1",
        "message": "",
        "etr": "2026-11-23T16:00:00Z",
        "next_update_by": "2026-11-23T13:00:00Z",
        "translations": { "espagnol": { "cause": "Corte" }, "fr": { "message": "Sur place." }, "es": {} },
    });
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let refused = r.body.to_string();
    for problem in [
        "translations.espagnol: not a locale tag",
        "translations.fr: message: this entry has no message to translate",
        "translations.es: gives neither a cause nor a message",
    ] {
        assert!(refused.contains(problem), "{problem} in {refused}");
    }
    assert_eq!(s.get("/v1/incidents", Some(&s.read)).await.body, json!([]));

    declaration["message"] = json!("Crews are on site.");
    declaration["translations"] = json!({
        "es": { "cause": "Corte de fibra cerca del nodo 1", "message": "Los equipos ya están en el lugar." },
        "fr-CA": { "cause": "Coupure de fibre près du nœud 1" },
    });
    assert_eq!(s.post("/v1/incidents", Some(&s.operator), &declaration).await.status, 201);
    s.tick().await;
    // Spanish for es-MX (by language), French cause for fr-CA with the message as written.
    let spanish = email_body(&s, "C4/INC-000001/acknowledgement/0").await;
    assert!(spanish.contains("Corte de fibra cerca del nodo 1"), "{spanish}");
    assert!(spanish.contains("Los equipos ya están en el lugar."), "{spanish}");
    let french = email_body(&s, "C5/INC-000001/acknowledgement/0").await;
    assert!(
        french.contains("Coupure de fibre près du nœud 1") && french.contains("Crews are on site."),
        "{french}"
    );
    let english = email_body(&s, "C1/INC-000001/acknowledgement/0").await;
    assert!(english.contains("Fibre cut near Hub 1") && !english.contains("Corte"), "{english}");

    // A new cause without translations takes the old cause's translations with it.
    let update = json!({ "cause": "A power cut at Hub 1", "message": "Generators are on the way.",
        "translations": { "es": { "message": "Los generadores van en camino." } } });
    let r = s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["causes"], json!({}));
    s.tick().await;
    let spanish = email_body(&s, "C4/INC-000001/update/1").await;
    assert!(spanish.contains("Los generadores van en camino."), "{spanish}");
    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    assert_eq!(r.body["timeline"][1]["messages"], json!({ "es": "Los generadores van en camino." }));

    s.clock.set(ts("2026-11-23T14:00:00Z"));
    let resolution =
        json!({ "message": "Power is back.", "translations": { "es": { "message": "Volvió la luz." } } });
    let r = s.post("/v1/incidents/INC-000001/resolve", Some(&s.operator), &resolution).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.tick().await;
    let spanish = email_body(&s, "C4/INC-000001/restored/2").await;
    assert!(spanish.contains("Volvió la luz."), "{spanish}");

    // The credit's explanation is the customer's version: their language and numbers, no
    // UTC; the ledger keeps the auditor's.
    s.tick().await;
    let spanish = email_body(&s, "C4/INC-000001/credit/0").await;
    let explained = spanish.lines().find(|l| l.starts_with("Cómo lo hemos calculado:")).unwrap_or_default();
    assert!(explained.contains("minutos de su periodo de facturación sin servicio, a "), "{spanish}");
    for english in ["UTC", "rounded", "billing cycle", "Total"] {
        assert!(!explained.contains(english), "{english} in {spanish}");
    }
    let r = s.get("/v1/credits?customer=C4", Some(&s.read)).await;
    let ledger = r.body.to_string();
    assert!(ledger.contains("billing cycle starting") && ledger.contains("rounded half-up"), "{ledger}");
}

/// The email body of a notice, by the start of its key.
async fn email_body(s: &TestServer, key: &str) -> String {
    let r = s.get(&format!("/v1/notices/{key}/email"), Some(&s.read)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["notice"]["body"].as_str().unwrap().to_owned()
}
