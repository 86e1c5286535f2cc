//! The HTTP API against a real server on 127.0.0.1 over a fresh SQLite file.
//!
//! Time moves only when a test moves the clock; the worker's steps are run by the test
//! (or, in the one test of the worker itself, awaited pass by pass), so nothing here
//! sleeps or depends on how fast the machine is.

use crate::support;

use amends_recovery::{CreditReport, FanoutReport, TickReport};
use amends_sinks::deliver::DeliveryReport;
use amends_store::{BookCounts, NoticeRow};
use jiff::SignedDuration;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{CUSTOMERS, PLANS, Reply, TOPOLOGY, TestServer, Worker, ts};

fn book() -> Value {
    json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS })
}

/// Service was lost at 10:00; declared at 12:00 (the clock's start).
fn declaration() -> Value {
    json!({
        "elements": ["hub1"],
        "cause": "Fibre cut near Hub 1",
        "message": "Crews are on site.",
        "etr": "2026-11-23T16:00:00Z",
        "next_update_by": "2026-11-23T13:00:00Z",
        "started_at": "2026-11-23T10:00:00Z",
        "attributes": { "storm": false, "crews": 3 },
    })
}

fn error(status: u16, code: &str, message: &str, details: &[&str]) -> Value {
    json!({ "error": { "status": status, "code": code, "message": message, "details": details } })
}

async fn import_book(s: &TestServer) {
    let r = s.post("/v1/import", Some(&s.admin), &book()).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn declare(s: &TestServer) {
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration()).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Half-up division of non-negative integers, as the built-in policy rounds.
fn half_up(numerator: i64, denominator: i64) -> i64 {
    (2 * numerator + denominator) / (2 * denominator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi_need_no_token() {
    let s = TestServer::start().await;
    let r = s.get("/health", None).await;
    assert_eq!((r.status, r.body), (200, json!({ "status": "ok" })));

    let r = s.get("/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<&str> = doc["paths"].as_object().expect("paths").keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "/health",
        "/openapi.json",
        "/v1/import",
        "/v1/incidents",
        "/v1/incidents/{id}",
        "/v1/incidents/{id}/updates",
        "/v1/incidents/{id}/resolve",
        "/v1/incidents/{id}/confirm",
        "/v1/incidents/{id}/impacts",
        "/v1/telemetry/events",
        "/v1/alerts/alertmanager",
        "/v1/alerts/ignored",
        "/v1/customers/{id}/notices",
        "/v1/customers/{id}/credits",
        "/v1/credits",
        "/v1/notices",
        "/v1/notices/{key}",
        "/v1/customers/{id}/preferences",
        "/v1/channels/sms/receipts",
        "/v1/channels/email/bounces",
        "/v1/quarantine",
        "/v1/quarantine/{channel}/{recipient}",
        "/v1/agents",
        "/v1/cases",
        "/v1/cases/{id}",
        "/v1/cases/{id}/actions",
        "/v1/contacts",
        "/v1/incidents/{id}/metrics",
        "/v1/metrics/recovery",
        "/v1/appointments",
        "/v1/appointments/{reference}",
        "/v1/appointments/{reference}/actions",
        "/v1/customers",
        "/v1/customers/{id}/cancellation",
        "/v1/surveys/report",
        "/v1/surveys/answer",
        "/v1/unsubscribe",
        "/status",
        "/status/{id}",
        "/status.json",
        "/status.atom",
        "/status/events",
        "/static/live.js",
        "/static/page.css",
        "/my",
        "/my/still-offline",
        "/my/preferences",
        "/my/rebook",
        "/my/claim",
        "/my/fresh-link",
        "/my/leave",
    ]);
    assert_eq!(paths, expected);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let declare = &doc["paths"]["/v1/incidents"]["post"];
    assert_eq!(declare["security"], json!([{ "bearer": ["operator"] }]));
    assert_eq!(
        declare["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Declaration"
    );
    let statuses: BTreeSet<&str> =
        declare["responses"].as_object().expect("responses").keys().map(String::as_str).collect();
    assert_eq!(statuses, BTreeSet::from(["201", "400", "401", "403", "413", "415", "422", "500", "503"]));
    assert_eq!(
        declare["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert_eq!(doc["paths"]["/health"]["get"]["security"], Value::Null);
    let resolve = &doc["paths"]["/v1/incidents/{id}/resolve"]["post"]["requestBody"];
    assert_eq!((&resolve["required"], &declare["requestBody"]["required"]), (&json!(false), &json!(true)));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes_are_checked() {
    let s = TestServer::start().await;
    let r = s.get("/v1/incidents", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        r.body,
        error(401, "unauthorized", "an Authorization: Bearer <token> header is required", &[])
    );

    let r = s.get("/v1/incidents", Some("amends_not-a-token")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer error="invalid_token""#));
    assert_eq!(r.body, error(401, "unauthorized", "the bearer token is not known", &[]));

    let basic =
        s.request(Method::GET, "/v1/incidents", None).header("authorization", format!("Basic {}", s.read));
    assert_eq!(s.send(basic).await.status, 401);

    // The gate runs before the body is read: a bad body from a stranger is still a 401.
    let r = s
        .send(
            s.request(Method::POST, "/v1/incidents", None)
                .body("{")
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(r.status, 401);

    let r = s.post("/v1/incidents", Some(&s.read), &declaration()).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer error="insufficient_scope""#));
    let forbidden = "this route needs a token of scope operator or above; this token has scope read";
    assert_eq!(r.body, error(403, "forbidden", forbidden, &[]));

    let r = s.post("/v1/import", Some(&s.operator), &book()).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body["error"]["message"],
        "this route needs a token of scope admin or above; this token has scope operator"
    );
    assert_eq!(s.engine.store().book_counts().await.expect("counts"), BookCounts::default());

    let r = s.get("/v1/incidents", Some(&s.read)).await;
    assert_eq!((r.status, r.body), (200, json!([])));
    // Scopes nest: an admin token may declare (refused here only because the book is empty).
    let r = s.post("/v1/incidents", Some(&s.admin), &declaration()).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["details"], json!(["elements: \"hub1\" is not an element of the topology"]));
    s.stop().await.expect("a clean stop");
}

/// Issue 18, item 11: an expired or a revoked token is refused with a 401 that says which
/// (behind the scope gates and on the agents' routes alike), and a token let through has
/// its use recorded, at most once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_are_refused_and_uses_are_recorded() {
    use amends_recovery::clock::Clock;
    use amends_recovery::tokens::{self, NewToken, Scope};
    let s = TestServer::start().await;
    let store = s.engine.store().as_ref();
    let (t0, minute) = (ts(support::START), SignedDuration::from_secs(60));
    let issue = async |scope, agent: Option<&str>, expires_at| {
        let new = NewToken { scope, agent_id: agent.map(Into::into), label: "test".into(), expires_at };
        tokens::issue(store, &new, s.clock.now()).await.expect("a token")
    };
    let last_used = async |id: &str| {
        let list = tokens::list(store, s.clock.now()).await.expect("the tokens");
        list.into_iter().find(|t| t.id == id).expect("listed").last_used_at
    };
    let invalid = |r: &Reply, message: &str| {
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.header("www-authenticate"), Some(r#"Bearer error="invalid_token""#));
        assert_eq!(r.body, error(401, "unauthorized", message, &[]));
    };

    let hour = issue(Scope::Read, None, Some(t0 + 60 * minute)).await;
    let id = hour.row.token_id.clone();
    assert_eq!(last_used(&id).await, None, "never used");
    assert_eq!(s.get("/v1/incidents", Some(&hour.token)).await.status, 200);
    assert_eq!(last_used(&id).await, Some(t0));
    // Within the minute, a use writes nothing; past it, the next one does.
    s.clock.advance(SignedDuration::from_secs(30));
    assert_eq!(s.get("/v1/incidents", Some(&hour.token)).await.status, 200);
    s.clock.advance(SignedDuration::from_secs(30));
    assert_eq!(s.get("/v1/incidents", Some(&hour.token)).await.status, 200);
    assert_eq!(last_used(&id).await, Some(t0));
    s.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(s.get("/v1/incidents", Some(&hour.token)).await.status, 200);
    assert_eq!(last_used(&id).await, Some(t0 + SignedDuration::from_secs(61)));
    // A request refused for its scope is no use of the token.
    s.clock.advance(5 * minute);
    assert_eq!(s.post("/v1/incidents", Some(&hour.token), &declaration()).await.status, 403);
    assert_eq!(last_used(&id).await, Some(t0 + SignedDuration::from_secs(61)));

    // From its expiry on, the token is refused, and told why.
    s.clock.set(t0 + 60 * minute - SignedDuration::from_secs(1));
    assert_eq!(s.get("/v1/incidents", Some(&hour.token)).await.status, 200);
    s.clock.set(t0 + 60 * minute);
    invalid(
        &s.get("/v1/incidents", Some(&hour.token)).await,
        "the bearer token expired at 2026-11-23T13:00:00Z",
    );
    assert_eq!(last_used(&id).await, Some(t0 + 60 * minute - SignedDuration::from_secs(1)));

    // Revoked by the token itself (as when it leaked): refused from then on, before its
    // body is read; the other tokens still work.
    let revocation = tokens::revoke(store, &s.operator, s.clock.now()).await.unwrap().expect("a token");
    assert!(!revocation.already);
    let again = tokens::revoke(store, &s.operator, s.clock.now()).await.unwrap().expect("a token");
    assert!(again.already, "revoked once, even within the same second");
    invalid(
        &s.post("/v1/incidents", Some(&s.operator), &declaration()).await,
        "the bearer token was revoked at 2026-11-23T13:00:00Z",
    );
    let garbage = s.request(Method::POST, "/v1/incidents", Some(&s.operator)).body("{");
    assert_eq!(s.send(garbage.header("content-type", "application/json")).await.status, 401);
    assert_eq!(s.get("/v1/incidents", Some(&s.read)).await.status, 200);

    // The agents' routes say the same.
    let agents = json!({ "agents": [{ "id": "ann", "name": "Ann Agent", "role": "agent" }] });
    let put = s.send(s.request(Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let ann = issue(Scope::Agent, Some("ann"), Some(s.clock.now() + 10 * minute)).await;
    let ann_too = issue(Scope::Agent, Some("ann"), None).await;
    assert_eq!(s.get("/v1/cases", Some(&ann.token)).await.status, 200);
    assert_eq!(last_used(&ann.row.token_id).await, Some(s.clock.now()));
    tokens::revoke(store, &ann_too.row.token_id, s.clock.now()).await.unwrap().expect("a token");
    invalid(
        &s.get("/v1/cases", Some(&ann_too.token)).await,
        "the bearer token was revoked at 2026-11-23T13:00:00Z",
    );
    s.clock.advance(10 * minute);
    invalid(&s.get("/v1/cases", Some(&ann.token)).await, "the bearer token expired at 2026-11-23T13:10:00Z");
    assert_eq!(last_used(&ann_too.row.token_id).await, None);
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_from_declaration_to_credit() {
    let s = TestServer::start().await;
    let r = s.post("/v1/import", Some(&s.admin), &book()).await;
    let counts = json!({ "plans": 2, "elements": 6, "customers": 5 });
    assert_eq!((r.status, r.body), (200, json!({ "imported": counts, "total": counts })));

    // Declared at 12:00; service was lost at 10:00.
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration()).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some("/v1/incidents/INC-000001"));
    assert_eq!(
        r.body,
        json!({
            "incident_id": "INC-000001",
            "element_ids": ["hub1"],
            "cause": "Fibre cut near Hub 1",
            "causes": {},
            "state": "acknowledged",
            "etr": "2026-11-23T16:00:00Z",
            "next_update_by": "2026-11-23T13:00:00Z",
            "started_at": "2026-11-23T10:00:00Z",
            "resolved_at": null,
            "credited_at": null,
            "attributes": { "crews": 3, "storm": false },
        })
    );
    // C1 (email and SMS), C2 (SMS) and C5 are affected; C3 is cancelled and C4 is under hub2.
    let fanned = |notices_queued| FanoutReport { updates: 1, notices_queued, ..FanoutReport::default() };
    assert_eq!(s.tick().await, TickReport { fanout: fanned(4), ..TickReport::default() });

    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["timeline"],
        json!([{
            "incident_id": "INC-000001",
            "seq": 0,
            "at": "2026-11-23T12:00:00Z",
            "kind": "declared",
            "state": "acknowledged",
            "etr": "2026-11-23T16:00:00Z",
            "next_update_by": "2026-11-23T13:00:00Z",
            "message": "Crews are on site.",
            "messages": {},
            "trigger_key": null,
            "fanned_out": true,
        }])
    );
    assert_eq!(
        r.body["notice_counts"],
        json!([{ "kind": "acknowledgement", "status": "queued", "count": 4 }])
    );
    let sent = |sent| DeliveryReport { sent, ..DeliveryReport::default() };
    assert_eq!(s.deliver().await, sent(4));
    let r = s.get("/v1/incidents?open=true", Some(&s.read)).await;
    assert_eq!(
        r.body.as_array().map(|a| a.iter().map(|i| i["incident_id"].clone()).collect()),
        Some(vec![json!("INC-000001")])
    );

    // 12:30: a new estimate.
    s.clock.set(ts("2026-11-23T12:30:00Z"));
    let update = json!({
        "etr": "2026-11-23T17:00:00Z",
        "next_update_by": "2026-11-23T14:00:00Z",
        "message": "The splice takes longer than planned.",
    });
    let r = s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["etr"], &r.body["next_update_by"]),
        (&json!("2026-11-23T17:00:00Z"), &json!("2026-11-23T14:00:00Z"))
    );
    // A new estimate goes by SMS too.
    assert_eq!(s.tick().await, TickReport { fanout: fanned(4), ..TickReport::default() });
    assert_eq!(s.deliver().await, sent(4));
    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    let timeline: Vec<(&Value, &Value, &Value)> = r.body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|u| (&u["seq"], &u["kind"], &u["etr"]))
        .collect();
    assert_eq!(
        timeline,
        [
            (&json!(0), &json!("declared"), &json!("2026-11-23T16:00:00Z")),
            (&json!(1), &json!("update"), &json!("2026-11-23T17:00:00Z")),
        ]
    );

    // 13:45: restored.
    s.clock.set(ts("2026-11-23T13:45:00Z"));
    let r = s
        .post(
            "/v1/incidents/INC-000001/resolve",
            Some(&s.operator),
            &json!({ "message": "Service is back." }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["state"], &r.body["resolved_at"]),
        (&json!("resolved"), &json!("2026-11-23T13:45:00Z"))
    );
    let already = error(409, "conflict", "incident INC-000001 is already resolved", &[]);
    let r = s.post("/v1/incidents/INC-000001/resolve", Some(&s.operator), &json!({})).await;
    assert_eq!((r.status, r.body), (409, already.clone()));
    let r = s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await;
    assert_eq!((r.status, r.body), (409, already));

    // Restoration notices and credits: 42 + 26 + 26 cents (worked out below).
    let credits = CreditReport {
        incidents: 1,
        credits_written: 3,
        total_minor: BTreeMap::from([("USD".to_string(), 94)]),
        // C2 has only SMS, which carries no credit notices by default.
        notices_queued: 2,
        ..CreditReport::default()
    };
    assert_eq!(s.tick().await, TickReport { fanout: fanned(4), credits, ..TickReport::default() });
    assert_eq!(s.tick().await, TickReport::default(), "a second pass finds nothing to do");
    assert_eq!(s.deliver().await, sent(6));
    assert_eq!(s.deliver().await, DeliveryReport::default(), "nothing is sent twice");

    let r = s.get("/v1/incidents?open=true", Some(&s.read)).await;
    assert_eq!(r.body, json!([]));
    let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
    assert_eq!(
        r.body["notice_counts"],
        json!([
            { "kind": "acknowledgement", "status": "sent", "count": 4 },
            { "kind": "credit", "status": "sent", "count": 2 },
            { "kind": "credit", "status": "suppressed", "count": 1 },
            { "kind": "restored", "status": "sent", "count": 4 },
            { "kind": "update", "status": "sent", "count": 4 },
        ])
    );

    // What C1 was told, in order (same-instant notices by key).
    let r = s.get("/v1/customers/C1/notices", Some(&s.read)).await;
    assert_eq!(r.status, 200);
    let notices = r.body.as_array().expect("notices");
    let seen: Vec<(&str, &str, &str, &str)> = notices
        .iter()
        .map(|n| {
            let text = |k: &str| n[k].as_str().unwrap_or("?");
            (text("key"), text("channel"), text("recipient"), text("status"))
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("C1/INC-000001/acknowledgement/0/email", "email", "ana@example.com", "sent"),
            ("C1/INC-000001/acknowledgement/0/sms", "sms", "+14155550101", "sent"),
            ("C1/INC-000001/update/1/email", "email", "ana@example.com", "sent"),
            ("C1/INC-000001/update/1/sms", "sms", "+14155550101", "sent"),
            ("C1/INC-000001/credit/0/email", "email", "ana@example.com", "sent"),
            ("C1/INC-000001/restored/2/email", "email", "ana@example.com", "sent"),
            ("C1/INC-000001/restored/2/sms", "sms", "+14155550101", "sent"),
        ]
    );
    assert_eq!(notices[0]["subject"], "An outage in your area: we are on it");
    let body = notices[0]["body"].as_str().expect("a body");
    assert!(body.contains("We expect it back by Monday, November 23 at 4:00\u{202f}PM UTC."), "{body}");

    // C2 has no email: the same four notices by SMS (the credit notice recorded, not sent).
    let r = s.get("/v1/customers/C2/notices", Some(&s.read)).await;
    let channels: Vec<(&Value, &Value)> =
        r.body.as_array().expect("notices").iter().map(|n| (&n["channel"], &n["recipient"])).collect();
    assert_eq!(channels, vec![(&json!("sms"), &json!("+14155550102")); 4]);

    // The cancelled customer and the one outside the outage hear nothing and get nothing.
    for outsider in ["C3", "C4"] {
        let r = s.get(&format!("/v1/customers/{outsider}/notices"), Some(&s.read)).await;
        assert_eq!((r.status, r.body), (200, json!([])), "{outsider}");
        let r = s.get(&format!("/v1/customers/{outsider}/credits"), Some(&s.read)).await;
        assert_eq!((r.status, r.body), (200, json!([])), "{outsider}");
    }

    // The credit, by hand: 10:00 to 13:45 is 13,500 s. C1 is billed on the 1st in UTC, so
    // the cycle is November 1 to December 1: 30 days. 7999 x 13,500 / 2,592,000 = 41.66.
    let outage_seconds = 3 * 3600 + 45 * 60;
    let cycle_seconds = 30 * 86_400;
    let c1_minor = half_up(7999 * outage_seconds, cycle_seconds);
    assert_eq!(c1_minor, 42);
    let r = s.get("/v1/customers/C1/credits", Some(&s.read)).await;
    assert_eq!(r.status, 200);
    let credit = &r.body[0];
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    assert_eq!(credit["key"], "C1/INC-000001/prorated/2");
    assert_eq!(credit["source_event"], "INC-000001");
    assert_eq!((&credit["policy_id"], &credit["policy_version"]), (&json!("prorated"), &json!(2)));
    assert_eq!((&credit["amount_minor"], &credit["currency"]), (&json!(c1_minor), &json!("USD")));
    // It lands on the next bill: the end of that cycle.
    assert_eq!(credit["statement"], "2026-12-01");
    assert_eq!(credit["created_at"], "2026-11-23T13:45:00Z");
    let line = &credit["lines"][0];
    assert_eq!(
        (&line["rule"], &line["events"], &line["automatic"], &line["amount_minor"]),
        (&json!("prorated"), &json!(["INC-000001"]), &json!(true), &json!(c1_minor))
    );
    let minutes = format!(
        "{} min of the {}-min billing cycle starting 2026-11-01",
        outage_seconds / 60,
        cycle_seconds / 60
    );
    assert!(
        line["explanation"].as_str().is_some_and(|e| e.contains(&minutes.replace("43200", "43,200"))),
        "{line}"
    );
    // C2 (Paris, billed on the 1st) and C5 (New York, billed on the 15th) both have a
    // 30-day cycle with no clock change in it: 4999 x 13,500 / 2,592,000 = 26.04.
    let basic_minor = half_up(4999 * outage_seconds, cycle_seconds);
    assert_eq!(basic_minor, 26);
    let r = s.get("/v1/credits?incident=INC-000001", Some(&s.read)).await;
    let ledger: Vec<(&Value, &Value, &Value)> = r
        .body
        .as_array()
        .expect("credits")
        .iter()
        .map(|c| (&c["customer_id"], &c["amount_minor"], &c["statement"]))
        .collect();
    assert_eq!(
        ledger,
        [
            (&json!("C1"), &json!(c1_minor), &json!("2026-12-01")),
            (&json!("C2"), &json!(basic_minor), &json!("2026-12-01")),
            (&json!("C5"), &json!(basic_minor), &json!("2026-12-15")),
        ]
    );
    let r = s.get("/v1/credits?customer=C5&incident=INC-000001", Some(&s.read)).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    // Page by page, in key order: two, then the rest after the last key.
    let keys = |r: &support::Reply| -> Vec<String> {
        r.body
            .as_array()
            .expect("credits")
            .iter()
            .map(|c| c["key"].as_str().expect("key").to_string())
            .collect()
    };
    let first = keys(&s.get("/v1/credits?incident=INC-000001&limit=2", Some(&s.read)).await);
    assert_eq!(first, ["C1/INC-000001/prorated/2", "C2/INC-000001/prorated/2"]);
    let rest = keys(
        &s.get(&format!("/v1/credits?incident=INC-000001&limit=2&after={}", first[1]), Some(&s.read)).await,
    );
    assert_eq!(rest, ["C5/INC-000001/prorated/2"]);

    // What went out through the file channel: four emails each to C1 and C5; by SMS, C1 and
    // C2 each heard the acknowledgement, the new estimate and the restoration.
    let (email, sms) = (s.outbox("email.txt"), s.outbox("sms.txt"));
    assert_eq!(email.lines().filter(|l| l.starts_with("=== ")).count(), 8);
    assert_eq!(sms.lines().filter(|l| l.starts_with("=== ")).count(), 6);
    assert!(!email.contains("cy@example.com") && !email.contains("di@example.com"));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_import_lists_every_bad_line_and_writes_nothing() {
    let s = TestServer::start().await;
    import_book(&s).await;
    let before = s.engine.store().book_counts().await.expect("counts");
    let bad = json!({
        "plans_csv": "plan_id,name,monthly_price_minor,currency\npro,Pro,9999,USD\n",
        "customers_csv": "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
    C6,Fay,x@,,en,UTC,basic,node1,,1,2024-01-01T00:00:00Z,active\n\
    C7,Gus,gus@example.com,,en,UTC,gold,node1,,1,2024-01-01T00:00:00Z,active\n\
    C8,Hal,hal@example.com,,en,UTC,basic,node1,,31,2024-01-01T00:00:00Z,active\n",
    });
    let r = s.post("/v1/import", Some(&s.admin), &bad).await;
    assert_eq!(
        (r.status, r.body),
        (
            422,
            error(
                422,
                "invalid",
                "import refused, nothing was written: 3 problems",
                &[
                    r#"customers.csv:2: email "x@" is not an address"#,
                    r#"customers.csv:4: billing_day "31" is not a day from 1 to 28"#,
                    r#"customers.csv:3: plan_id "gold" is not a plan"#,
                ]
            )
        )
    );
    // Not even the good plan was written.
    assert_eq!(s.engine.store().book_counts().await.expect("counts"), before);
    assert_eq!(before, BookCounts { plans: 2, elements: 6, customers: 5 });

    let r = s.post("/v1/import", Some(&s.admin), &json!({})).await;
    assert_eq!(
        (r.status, r.body),
        (
            422,
            error(
                422,
                "invalid",
                "nothing to import",
                &["give at least one of plans_csv, topology_csv, customers_csv"]
            )
        )
    );
    let r = s.post("/v1/import", Some(&s.admin), &json!({ "customer_csv": CUSTOMERS })).await;
    assert_eq!(r.status, 400);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("unknown field `customer_csv`"), "{message}");
    s.stop().await.expect("a clean stop");
}

/// An outage that outlasts every estimate: amends' own updates come further and further
/// apart (1 h, 2 h, 4 h, 8 h), and the last update the cap (6) allows promises the
/// restoration notice and nothing sooner, so no promised time ever passes in silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_is_told_less_often_and_the_cap_never_breaks_a_promise() {
    let s = TestServer::start().await;
    import_book(&s).await;
    declare(&s).await;
    let end = ts("2026-11-25T12:00:00Z");
    while amends_recovery::clock::Clock::now(s.clock.as_ref()) < end {
        s.tick().await;
        s.deliver().await;
        s.clock.advance(SignedDuration::from_mins(15));
    }
    let timeline = s.engine.store().updates("INC-000001").await.unwrap();
    let told: Vec<(String, String, Option<String>)> = timeline
        .iter()
        .skip(1)
        .map(|u| (u.at.to_string(), u.kind.clone(), u.next_update_by.map(|t| t.to_string())))
        .collect();
    let entry =
        |at: &str, kind: &str, next: Option<&str>| (at.to_string(), kind.to_string(), next.map(Into::into));
    assert_eq!(
        told,
        [
            entry("2026-11-23T13:00:00Z", "update_overdue", Some("2026-11-23T14:00:00Z")),
            entry("2026-11-23T14:00:00Z", "update_overdue", Some("2026-11-23T16:00:00Z")),
            entry("2026-11-23T16:00:00Z", "etr_lapsed", Some("2026-11-23T20:00:00Z")),
            entry("2026-11-23T20:00:00Z", "update_overdue", Some("2026-11-24T04:00:00Z")),
            entry("2026-11-24T04:00:00Z", "update_overdue", Some("2026-11-24T12:00:00Z")),
            entry("2026-11-24T12:00:00Z", "update_overdue", None),
        ]
    );
    let updates: Vec<NoticeRow> = s
        .engine
        .store()
        .notices_for_customer("C1")
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == "update" && n.channel.as_str() == "email")
        .collect();
    assert_eq!(updates.len(), 6);
    assert!(updates.iter().all(|n| n.status.as_str() == "sent"), "{updates:?}");
    let last = &updates[5].body;
    assert!(last.contains("Our next message will tell you it is back."), "{last}");
    assert!(!last.contains("again by"), "the last update promises no time: {last}");
    assert!(updates[4].body.contains("You will hear from us again by"), "{}", updates[4].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_are_listed_newest_first_in_pages() {
    let s = TestServer::start().await;
    import_book(&s).await;
    declare(&s).await;
    s.clock.advance(SignedDuration::from_mins(5));
    declare(&s).await;
    let ids = |r: &Reply| r.body.as_array().map(|a| a.iter().map(|i| i["incident_id"].clone()).collect());
    let r = s.get("/v1/incidents?limit=1", Some(&s.read)).await;
    assert_eq!(ids(&r), Some(vec![json!("INC-000002")]));
    let r = s.get("/v1/incidents?limit=1&before=INC-000002", Some(&s.read)).await;
    assert_eq!(ids(&r), Some(vec![json!("INC-000001")]));
    let r = s.get("/v1/incidents?open=true&before=INC-000001", Some(&s.read)).await;
    assert_eq!(r.body, json!([]));
    let r = s.get("/v1/incidents?before=INC-000009", Some(&s.read)).await;
    let refused = "before: INC-000009 is not an incident; give the last id of the previous page";
    assert_eq!((r.status, r.body), (422, error(422, "invalid", refused, &[refused])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let s = TestServer::start().await;
    import_book(&s).await;

    // An estimate in the past, at 12:00.
    let mut past = declaration();
    past["etr"] = json!("2026-11-23T11:00:00Z");
    let r = s.post("/v1/incidents", Some(&s.operator), &past).await;
    let etr = "etr: 2026-11-23T11:00:00Z is not after now (2026-11-23T12:00:00Z)";
    assert_eq!((r.status, r.body), (422, error(422, "invalid", etr, &[etr])));

    let malformed = |body: &'static str| {
        s.request(Method::POST, "/v1/incidents", Some(&s.operator))
            .header("content-type", "application/json")
            .body(body)
    };
    let r = s.send(malformed(r#"{"elements": ["hub1"], "cause": }"#)).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            error(
                400,
                "malformed",
                "Failed to parse the request body as JSON: cause: expected value at line 1 column 33",
                &[]
            )
        )
    );
    let r = s.send(malformed(r#"{"elements": "hub1"}"#)).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            error(
                400,
                "malformed",
                "Failed to deserialize the JSON body into the target type: elements: invalid type: string \"hub1\", expected a sequence at line 1 column 19",
                &[]
            )
        )
    );
    let r = s
        .send(malformed(
            r#"{"elements": ["hub1"], "cause": "Fibre cut", "message": "", "etr": "2026-11-23T16:00:00Z"}"#,
        ))
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            error(
                400,
                "malformed",
                "Failed to deserialize the JSON body into the target type: missing field `next_update_by` at line 1 column 90",
                &[]
            )
        )
    );

    let r = s.send(s.request(Method::POST, "/v1/incidents", Some(&s.operator)).body("elements=hub1")).await;
    assert_eq!(
        (r.status, r.body),
        (
            415,
            error(
                415,
                "unsupported_media_type",
                "the request body must be JSON, sent with Content-Type: application/json",
                &[]
            )
        )
    );

    let r = s.get("/v1/incidents?open=maybe", Some(&s.read)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "malformed");

    let r = s.get("/v1/incidents/INC-999999", Some(&s.read)).await;
    assert_eq!((r.status, r.body), (404, error(404, "not_found", "incident INC-999999 not found", &[])));
    let r = s.post("/v1/incidents/INC-999999/resolve", Some(&s.operator), &json!({})).await;
    assert_eq!(r.status, 404);
    let r = s.get("/v1/customers/C9/notices", Some(&s.read)).await;
    assert_eq!((r.status, r.body), (404, error(404, "not_found", "customer C9 not found", &[])));
    let r = s.get("/v1/customers/C9/credits", Some(&s.read)).await;
    assert_eq!(r.status, 404);
    let r = s.get("/v1/nowhere", Some(&s.read)).await;
    assert_eq!((r.status, r.body["error"]["code"].clone()), (404, json!("not_found")));
    let r = s.send(s.request(Method::DELETE, "/v1/incidents", Some(&s.admin))).await;
    assert_eq!((r.status, r.body["error"]["code"].clone()), (405, json!("method_not_allowed")));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_limited_by_route() {
    let s = TestServer::start().await;
    import_book(&s).await;
    let oversized = json!({ "cause": "x".repeat(8 * amends_server::BODY_BYTES_MAX) });
    let r = s.post("/v1/incidents", Some(&s.operator), &oversized).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["error"]["code"], "too_large");
    assert_eq!(
        r.body["error"]["message"],
        "the request body is larger than this route accepts: at most 1 MiB (1048576 bytes)"
    );
    // Each route names its own limit (issue 18, item 16): 8 MiB for a telemetry batch,
    // 4 KiB for the public link routes.
    let batch = "x".repeat(9 * 1024 * 1024);
    let r = s.send(s.request(Method::POST, "/v1/telemetry/events", Some(&s.operator)).body(batch)).await;
    assert_eq!(
        (r.status, &r.body["error"]["message"]),
        (413, &json!("the request body is larger than this route accepts: at most 8 MiB (8388608 bytes)"))
    );
    let form = format!("score={}", "9".repeat(5000));
    let request = s
        .request(Method::POST, "/v1/surveys/answer?token=x", None)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form);
    let r = s.send(request).await;
    assert_eq!(
        (r.status, &r.body["error"]["message"]),
        (413, &json!("the request body is larger than this route accepts: at most 4 KiB (4096 bytes)"))
    );

    // The import takes more: 15,000 customers, about 1.3 MiB.
    let mut customers = String::from(CUSTOMERS.lines().next().unwrap_or_default());
    customers.push('\n');
    for i in 0..15_000 {
        customers.push_str(&format!(
            "X{i:05},Customer {i},x{i}@example.com,,en,UTC,basic,node3,,1,2024-01-01T00:00:00Z,active\n"
        ));
    }
    assert!(customers.len() > amends_server::BODY_BYTES_MAX);
    let r = s.post("/v1/import", Some(&s.admin), &json!({ "customers_csv": customers })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], json!({ "plans": 2, "elements": 6, "customers": 15_005 }));
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_follows_api_calls_and_stops_gracefully() {
    // A poll of an hour: only the wake-up from the API call can explain a pass here.
    let s = TestServer::start_with(Worker::Background { poll: Duration::from_secs(3600) }).await;
    let mut passes = s.state.worker_passes();
    import_book(&s).await;
    declare(&s).await;
    let acknowledged = json!([{ "kind": "acknowledgement", "status": "sent", "count": 4 }]);
    let wait = async {
        loop {
            let r = s.get("/v1/incidents/INC-000001", Some(&s.read)).await;
            if r.body["notice_counts"] == acknowledged {
                return;
            }
            passes.changed().await.expect("the worker is running");
        }
    };
    // A guard against a hang, not a timing assertion: the pass takes milliseconds.
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the worker sent the acknowledgements");
    assert_eq!(s.outbox("email.txt").lines().filter(|l| l.starts_with("=== ")).count(), 2);

    let addr = s.addr;
    s.stop().await.expect("a clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

/// The OpenAPI descriptions of the core and store types list exactly the fields the API
/// sends and accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_schemas_match_what_the_api_sends() {
    let s = TestServer::start().await;
    import_book(&s).await;
    declare(&s).await;
    s.tick().await;
    s.clock.set(ts("2026-11-23T13:00:00Z"));
    // No body at all: resolved without a closing message.
    let r = s.send(s.request(Method::POST, "/v1/incidents/INC-000001/resolve", Some(&s.operator))).await;
    assert_eq!((r.status, &r.body["state"]), (200, &json!("resolved")));
    s.tick().await;
    let doc = s.get("/openapi.json", None).await.body;
    let fields = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has properties"))
            .keys()
            .cloned()
            .collect()
    };
    let keys =
        |v: &Value| -> BTreeSet<String> { v.as_object().expect("an object").keys().cloned().collect() };

    let detail = s.get("/v1/incidents/INC-000001", Some(&s.read)).await.body;
    assert_eq!(fields("IncidentDetail"), keys(&detail));
    assert_eq!(fields("IncidentRow"), keys(&detail["incident"]));
    assert_eq!(fields("UpdateRow"), keys(&detail["timeline"][0]));
    assert_eq!(fields("NoticeCount"), keys(&detail["notice_counts"][0]));
    let notices = s.get("/v1/customers/C1/notices", Some(&s.read)).await.body;
    assert_eq!(fields("NoticeRow"), keys(&notices[0]));
    let credits = s.get("/v1/customers/C1/credits", Some(&s.read)).await.body;
    assert_eq!(fields("Credit"), keys(&credits[0]));
    assert_eq!(fields("CreditLine"), keys(&credits[0]["lines"][0]));
    let summary = s.post("/v1/import", Some(&s.admin), &json!({ "plans_csv": PLANS })).await.body;
    assert_eq!(fields("ImportSummary"), keys(&summary));
    assert_eq!(fields("BookCounts"), keys(&summary["total"]));

    // What the API accepts: every field of the core types, by their own serialisation.
    let declaration: amends_core::incident::Declaration =
        serde_json::from_value(declaration()).expect("the test's declaration is valid");
    assert_eq!(fields("Declaration"), keys(&serde_json::to_value(declaration).expect("JSON")));
    let update = amends_core::incident::UpdateRequest::default();
    assert_eq!(fields("UpdateRequest"), keys(&serde_json::to_value(update).expect("JSON")));
    let required = |schema: &str| doc["components"]["schemas"][schema]["required"].clone();
    assert_eq!(required("Declaration"), json!(["elements", "cause", "message", "next_update_by"]));
    assert_eq!(required("UpdateRequest"), Value::Null);
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_renders_every_kind_in_every_locale_on_each_channel() {
    use amends_core::notice::NoticeKind;
    let s = TestServer::start().await;
    import_book(&s).await;
    declare(&s).await;
    // C1 has an email and a phone: two channels; five locales; no credit yet, so four kinds.
    let previews = s.engine.preview("C1", "INC-000001", &[]).await.unwrap();
    assert_eq!(previews.len(), 4 * 5 * 2);
    let ack = |locale: &str| {
        previews
            .iter()
            .find(|p| p.kind == "acknowledgement" && p.locale == locale && p.channel == "email")
            .unwrap()
    };
    assert!(ack("en").body.contains("We expect it back by Monday, November 23 at 4:00\u{202f}PM UTC."));
    assert!(
        ack("es").body.contains("Esperamos que vuelva antes del lunes, 23 de noviembre a las 16:00 UTC.")
    );
    assert!(
        ack("fr").body.contains("Nous prévoyons son retour d'ici le lundi 23 novembre à 16:00 TU."),
        "{}",
        ack("fr").body
    );
    let emails = previews.iter().filter(|p| p.channel == "email");
    assert!(emails.clone().all(|p| p.body.contains("Fibre cut near Hub 1") || p.kind != "acknowledgement"));
    // SMS are the short form: no subject, a few segments at most.
    for p in previews.iter().filter(|p| p.channel == "sms") {
        assert_eq!(p.subject, "", "{p:?}");
        assert!(amends_core::sms::segments(&p.body).segments <= 3, "{p:?}");
    }
    assert!(emails.clone().all(|p| !p.subject.is_empty()));

    // Once credited and queued, what was queued is what it shows: the words the customer
    // is sent, in their own language, with the ledger's amount and the outbox's status.
    let r = s.post("/v1/incidents/INC-000001/resolve", Some(&s.operator), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.tick().await;
    let ledger = s.engine.store().credits(&Default::default()).await.unwrap();
    let c1 = ledger.iter().find(|c| c.customer_id == "C1").unwrap();
    let (units, cents) = (c1.amount_minor / 100, c1.amount_minor % 100);
    let credit = s.engine.preview("C1", "INC-000001", &[NoticeKind::Credit]).await.unwrap();
    assert!(!credit.is_empty());
    for p in &credit {
        assert_eq!((p.locale.as_str(), p.status.as_str()), ("en-US", "queued"), "{p:?}");
        assert!(p.body.contains(&format!("${units}.{cents:02}")), "{p:?}");
    }
    for _ in 0..3 {
        s.deliver().await; // one notice of a subject at a time, in order
    }
    let after = s.engine.preview("C1", "INC-000001", &[]).await.unwrap();
    let told: Vec<(&str, &str, &str)> =
        after.iter().map(|p| (p.kind.as_str(), p.channel.as_str(), p.status.as_str())).collect();
    assert_eq!(
        told,
        [
            ("acknowledgement", "email", "suppressed"),
            ("acknowledgement", "sms", "suppressed"),
            ("credit", "email", "sent"),
            ("restored", "email", "sent"),
            ("restored", "sms", "sent"),
        ],
        "what C1 was told, and nothing they were not"
    );
    assert!(after.iter().all(|p| p.locale == "en-US"));

    let unknown = s.engine.preview("NOPE", "INC-000001", &[]).await.unwrap_err();
    assert_eq!(unknown.to_string(), "customer NOPE is not in the book");
}

/// The API names who reads the operator's words untranslated (issue 17, item 3): nobody
/// while every affected customer reads English; a Spanish customer once one joins, until
/// an update says it in Spanish too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarations_and_updates_say_who_reads_them_untranslated() {
    let s = TestServer::start().await;
    import_book(&s).await;
    let r = s.post("/v1/incidents", Some(&s.operator), &declaration()).await;
    assert_eq!((r.status, r.header("amends-untranslated")), (201, None), "{}", r.body);
    let spanish = format!(
        "{}C9,Sol,sol@example.com,,es-ES,Europe/Madrid,basic,hub1,,1,2024-01-01T00:00:00Z,active\n",
        CUSTOMERS
    );
    let r = s
        .post(
            "/v1/import",
            Some(&s.admin),
            &json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": spanish }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let update = json!({ "message": "The splice is under way." });
    let r = s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &update).await;
    assert_eq!((r.status, r.header("amends-untranslated")), (200, Some("es=1")), "{}", r.body);
    let translated = json!({
        "cause": "Fibre cut near Hub 1",
        "message": "The splice is under way.",
        "translations": { "es": { "cause": "Corte de fibra", "message": "El empalme está en marcha." } },
    });
    let r = s.post("/v1/incidents/INC-000001/updates", Some(&s.operator), &translated).await;
    assert_eq!((r.status, r.header("amends-untranslated")), (200, None), "{}", r.body);
}

/// An error quotes at most a bounded prefix of what caused it (issue 18, item 12): an
/// import with a 200,000-character email is refused in a few kilobytes, not in a copy of
/// the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_quotes_a_bounded_prefix_of_a_huge_value() {
    let s = TestServer::start().await;
    let huge = "x".repeat(200_000);
    let customers = format!(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
         C9,Sol,{huge},,en,UTC,basic,hub1,,1,2024-01-01T00:00:00Z,active\n"
    );
    let body = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": customers });
    let r = s.post("/v1/import", Some(&s.admin), &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let text = r.body.to_string();
    assert!(text.len() < 4_000, "{} bytes", text.len());
    assert!(text.contains("more characters)"), "{text}");
    assert!(text.contains("customers.csv:2: email"), "still names the field and line: {text}");
}
