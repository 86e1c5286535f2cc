//! Appointments, joining and leaving, and the recovery metrics through the HTTP API of a
//! real server on 127.0.0.1 over a fresh SQLite file, on a controlled clock.

use crate::support;

use amends_recovery::tokens;
use jiff::SignedDuration;
use serde_json::json;
use support::{CUSTOMERS, PLANS, TOPOLOGY, TestServer, ts};

async fn setup(s: &TestServer) -> String {
    let book = json!({ "plans_csv": PLANS, "topology_csv": TOPOLOGY, "customers_csv": CUSTOMERS });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let agents = json!({ "agents": [
        { "id": "lee", "name": "Lee Lead", "role": "lead" },
        { "id": "ann", "name": "Ann Agent", "role": "agent", "lead": "lee" },
    ]});
    let put = s.send(s.request(reqwest::Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    tokens::create_for_agent(s.engine.store().as_ref(), "ann", "test", ts(support::START))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_missed_visit_is_found_by_the_tick_once_and_counted_in_the_metrics() {
    let s = TestServer::start().await;
    let ann = setup(&s).await;
    // Tomorrow 08:00 to 12:00 UTC for Ana.
    let visit = json!({ "customer_id": "C1", "technician_id": "T1",
        "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T12:00:00Z" });
    let booked = s.post("/v1/appointments", Some(&ann), &visit).await;
    assert_eq!(booked.status, 201, "{:?}", booked.body);
    let reference = booked.body["reference"].as_str().unwrap().to_string();
    assert_eq!((&booked.body["status"], &booked.body["owner"]), (&json!("booked"), &json!("ann")));
    assert_eq!(booked.body["notices"][0]["kind"], "appointment_booked", "confirmed at once");

    // Refused and nothing written: the same technician's time, the past, an unknown
    // customer, a cancelled one; and an operator's token is not an agent's.
    for (body, words) in [
        (
            json!({ "customer_id": "C4", "technician_id": "T1", "start": "2026-11-24T10:00:00Z", "end": "2026-11-24T11:00:00Z" }),
            "overlaps the same technician's appointment",
        ),
        (
            json!({ "customer_id": "C4", "start": "2026-11-23T08:00:00Z", "end": "2026-11-23T09:00:00Z" }),
            "is not after now",
        ),
        (
            json!({ "customer_id": "C99", "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T09:00:00Z" }),
            "C99 is not known",
        ),
        (
            json!({ "customer_id": "C3", "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T09:00:00Z" }),
            "C3 has cancelled",
        ),
    ] {
        let r = s.post("/v1/appointments", Some(&ann), &body).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(words), "{:?}", r.body);
    }
    assert_eq!(s.post("/v1/appointments", Some(&s.operator), &visit).await.status, 403);
    let listed = s.get("/v1/appointments", Some(&ann)).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{:?}", listed.body);

    // Nobody comes: 12:29 is within the grace, 12:30 is not.
    s.clock.set(ts("2026-11-24T12:29:00Z"));
    assert_eq!(s.tick().await.appointments.no_shows, 0);
    s.clock.set(ts("2026-11-24T12:30:00Z"));
    let first = s.tick().await.appointments;
    assert_eq!((first.no_shows, first.cases_opened, first.checked), (1, 1, 1), "{first:?}");
    let again = s.tick().await.appointments;
    assert_eq!((again.no_shows, again.cases_opened, again.checked, again.notices_queued), (0, 0, 0, 0));
    let shown = s.get(&format!("/v1/appointments/{reference}"), Some(&ann)).await;
    assert_eq!(shown.body["status"], "missed");
    let kinds: Vec<&str> =
        shown.body["notices"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["appointment_booked", "appointment_booked", "appointment_missed", "appointment_missed"],
        "email and SMS each"
    );
    let late = s
        .post(&format!("/v1/appointments/{reference}/actions"), Some(&ann), &json!({"action": "arrive"}))
        .await;
    assert_eq!(late.status, 422, "a missed visit is final: {:?}", late.body);
    assert_eq!(shown.body["actions"], json!([]), "nobody acted on it");

    // The metrics count it, and the case amends opened for Ann.
    s.clock.advance(SignedDuration::from_hours(1));
    let metrics =
        s.get("/v1/metrics/recovery?from=2026-11-23T00:00:00Z&to=2026-11-25T00:00:00Z", Some(&s.read)).await;
    assert_eq!(metrics.status, 200, "{:?}", metrics.body);
    let m = &metrics.body;
    assert_eq!(
        (&m["visits_ended"], &m["visits_failed"], &m["missed_appointment_per_mille"]),
        (&json!(1), &json!(1), &json!(1000))
    );
    assert_eq!((&m["cases"], &m["first_response"]["count"]), (&json!(1), &json!(0)));
    let bad =
        s.get("/v1/metrics/recovery?from=2026-11-25T00:00:00Z&to=2026-11-23T00:00:00Z", Some(&s.read)).await;
    assert_eq!(bad.status, 422);
    assert_eq!(s.get("/v1/metrics/recovery", Some(&ann)).await.status, 403, "not for an agent's token");
}

/// Only a visit's owner, a lead or an admin acts on it, and who did is recorded (issue 18,
/// item 7): another agent's token could cancel Ann's visit (which pays compensation) or
/// complete one that never happened (which hides a no-show).
#[tokio::test]
async fn only_the_owner_or_their_lead_act_on_a_visit_and_each_action_names_who() {
    let s = TestServer::start().await;
    let ann = setup(&s).await;
    let agents = json!({ "agents": [{ "id": "bob", "name": "Bob Agent", "role": "agent", "lead": "lee" }]});
    let put = s.send(s.request(reqwest::Method::PUT, "/v1/agents", Some(&s.admin)).json(&agents)).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let bob = tokens::create_for_agent(s.engine.store().as_ref(), "bob", "test", ts(support::START))
        .await
        .unwrap()
        .unwrap();
    let lee = tokens::create_for_agent(s.engine.store().as_ref(), "lee", "test", ts(support::START))
        .await
        .unwrap()
        .unwrap();
    let visit = json!({ "customer_id": "C1", "technician_id": "T1",
        "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T12:00:00Z" });
    let booked = s.post("/v1/appointments", Some(&ann), &visit).await;
    let reference = booked.body["reference"].as_str().unwrap().to_string();
    let act = |token: String, action: &'static str| {
        let path = format!("/v1/appointments/{reference}/actions");
        let s = &s;
        async move { s.post(&path, Some(&token), &json!({ "action": action })).await }
    };
    for action in ["cancel_by_provider", "arrive", "complete"] {
        let refused = act(bob.clone(), action).await;
        assert_eq!(refused.status, 403, "{action}: {:?}", refused.body);
        assert!(
            refused.body["error"]["message"].as_str().unwrap().contains("it is ann's visit"),
            "{:?}",
            refused.body
        );
    }
    s.clock.set(ts("2026-11-24T08:10:00Z"));
    assert_eq!(act(ann.clone(), "arrive").await.status, 200);
    s.clock.set(ts("2026-11-24T09:40:00Z"));
    let done = act(lee.clone(), "complete").await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(
        done.body["actions"],
        json!([
            { "reference": reference, "version": 2, "action": "arrive", "actor": "ann", "at": "2026-11-24T08:10:00Z" },
            { "reference": reference, "version": 3, "action": "complete", "actor": "lee", "at": "2026-11-24T09:40:00Z" },
        ])
    );
}

#[tokio::test]
async fn joining_and_leaving_take_one_request_each_and_leaving_twice_is_refused() {
    let s = TestServer::start().await;
    let ann = setup(&s).await;
    let bad = json!({ "customer_id": "C9", "name": "Dev", "email": "not-an-email", "locale": "en",
        "timezone": "Mars/Olympus", "plan_id": "nope", "element_id": "node1", "billing_day": 31 });
    let r = s.post("/v1/customers", Some(&s.operator), &bad).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let details = r.body["error"]["details"].as_array().unwrap();
    assert!(details.len() >= 3, "each bad field named: {details:?}");
    let miscounted = json!({ "customer_id": "C9", "name": "Dev", "email": "dev@example.com", "locale": "en",
        "timezone": "UTC", "plan_id": "basic", "element_id": "node1", "billing_day": 1, "clicks": 1001 });
    let r = s.post("/v1/customers", Some(&s.operator), &miscounted).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("clicks: 1001"), "{:?}", r.body);
    let good = json!({ "customer_id": "C9", "name": "Dev", "email": "dev@example.com", "locale": "en",
        "timezone": "UTC", "plan_id": "basic", "element_id": "node1", "billing_day": 1, "channel": "app",
        "clicks": 6 });
    let joined = s.post("/v1/customers", Some(&s.operator), &good).await;
    assert_eq!(joined.status, 201, "{:?}", joined.body);
    assert_eq!(s.post("/v1/customers", Some(&s.operator), &good).await.status, 409);
    let visit =
        json!({ "customer_id": "C9", "start": "2026-11-25T08:00:00Z", "end": "2026-11-25T12:00:00Z" });
    let visit = s.post("/v1/appointments", Some(&ann), &visit).await;
    assert_eq!(visit.status, 201, "{:?}", visit.body);
    let visit = visit.body["reference"].as_str().unwrap().to_string();

    // No body at all: the reason is skipped.
    let left =
        s.send(s.request(reqwest::Method::POST, "/v1/customers/C9/cancellation", Some(&s.operator))).await;
    assert_eq!(left.status, 201, "{:?}", left.body);
    let reference = left.body["reference"].as_str().unwrap();
    assert_eq!(
        (&left.body["ease"]["cancel_steps"], &left.body["ease"]["sign_up_steps"]),
        (&json!(1), &json!(1))
    );
    // 49.99 USD billed on the 1st, left at noon on 23 November: 7.5 of 30 days unused.
    assert_eq!(left.body["final_bill"]["total_minor"], -1250, "{}", left.body["final_bill"]);
    // Nobody waits in for a technician after leaving: the visit is cancelled, and said so.
    let after = s.get(&format!("/v1/appointments/{visit}"), Some(&ann)).await.body;
    assert_eq!(after["status"], "cancelled_by_customer");
    let kinds: Vec<&str> =
        after["notices"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["appointment_booked", "appointment_cancelled"]);
    let twice = s.post("/v1/customers/C9/cancellation", Some(&s.operator), &json!({})).await;
    assert_eq!(twice.status, 409);
    assert!(twice.body["error"]["message"].as_str().unwrap().contains(reference), "{:?}", twice.body);
    let unknown = s.post("/v1/customers/C99/cancellation", Some(&s.operator), &json!({})).await;
    assert_eq!(unknown.status, 404);
    let reason =
        s.post("/v1/customers/C1/cancellation", Some(&s.operator), &json!({"reason": "spite"})).await;
    assert_eq!(reason.status, 422, "{:?}", reason.body);
    let still = s.get("/v1/customers/C1/preferences", Some(&s.read)).await;
    assert_eq!(still.status, 200, "C1 is still a customer");

    let m = s.get("/v1/metrics/recovery", Some(&s.read)).await.body;
    assert_eq!((&m["cancel_steps_max"], &m["sign_up_steps_max"]), (&json!(1), &json!(1)));
    assert_eq!((&m["cancellations"], &m["sign_ups"]), (&json!(1), &json!(1)));
    // Joining's clicks as the app counted them; leaving through the API counted none.
    assert_eq!((&m["join_clicks_max"], &m["leave_clicks_max"]), (&json!(6), &json!(null)));
    assert_eq!(m["leaving_as_easy_as_joining"], json!(null));
}

#[tokio::test]
async fn a_confirmation_a_crash_kept_back_is_sent_by_the_next_tick_once() {
    let s = TestServer::start().await;
    setup(&s).await;
    // As if the process died right after the cancellation's transaction committed.
    let now = ts(support::START);
    let stored = s
        .engine
        .store()
        .cancel_account("C4", &|n, _| {
            Ok(amends_store::CancellationRow {
                reference: amends_core::cancellation::reference(n),
                customer_id: "C4".into(),
                requested_at: now,
                effective_at: now,
                channel: "api".into(),
                reason: None,
                retention_offer: None,
                final_bill_minor: -1250,
                currency: "USD".into(),
                final_bill: r#"{"lines": [{"explanation": "Refund for the unused days"}]}"#.into(),
                steps: 1,
                audit: "[]".into(),
                clicks: None,
            })
        })
        .await
        .unwrap();
    assert_eq!(s.tick().await.cancellations_confirmed, 1, "C4 has an email address");
    assert_eq!(s.tick().await.cancellations_confirmed, 0, "once");
    let notices = s.get("/v1/customers/C4/notices", Some(&s.read)).await.body;
    let confirmation = notices.as_array().unwrap().iter().find(|n| n["kind"] == "account_cancelled").unwrap();
    assert!(confirmation["subject"].as_str().unwrap().contains(&stored.reference), "{confirmation}");
}
