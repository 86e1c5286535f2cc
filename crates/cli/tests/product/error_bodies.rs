//! Every kind of failure a client can meet, as the client reads it: status, the headers
//! that tell it what to do next, and the one error body, in an insta snapshot
//! (`snapshots/amends__error_bodies__*.snap`). A change of wording, of a code or of a
//! status shows in review; `INSTA_UPDATE=always cargo test -p amends -- error_bodies`
//! rewrites it.

use crate::support::{self, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// The headers a client acts on, where a reply has them.
const HEADERS: &[&str] = &["content-type", "www-authenticate", "allow", "retry-after"];

fn declaration(elements: Value, etr: &str) -> Value {
    json!({
        "elements": elements,
        "cause": "Fibre cut near Hub 1",
        "message": "Crews are on site.",
        "etr": etr,
        "next_update_by": "2026-11-23T13:00:00Z",
        "started_at": "2026-11-23T10:00:00Z",
    })
}

/// One reply as the snapshot shows it.
fn shown(what: &str, reply: &support::Reply) -> String {
    let mut text = format!("## {what}\n{}\n", reply.status);
    for name in HEADERS {
        if let Some(value) = reply.header(name) {
            let _ = writeln!(text, "{name}: {value}");
        }
    }
    let _ = writeln!(text, "{}\n", serde_json::to_string_pretty(&reply.body).unwrap());
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body_a_client_can_meet() {
    let s = TestServer::start().await;
    let book = json!({
        "plans_csv": support::PLANS,
        "topology_csv": support::TOPOLOGY,
        "customers_csv": support::CUSTOMERS,
    });
    assert_eq!(s.post("/v1/import", Some(&s.admin), &book).await.status, 200);
    let mut out = String::new();
    let mut show = |what: &str, reply: support::Reply| out.push_str(&shown(what, &reply));

    show("a route that does not exist", s.get("/v1/nope", Some(&s.read)).await);
    show("a method the route does not take", s.send(s.request(Method::DELETE, "/health", None)).await);
    show("no token", s.get("/v1/incidents", None).await);
    show(
        "an unknown token",
        s.get("/v1/incidents", Some("amends_0000000000000000000000000000000000000000")).await,
    );
    show("a token whose scope is too narrow", s.post("/v1/import", Some(&s.read), &book).await);
    show(
        "a body that is not JSON",
        s.send(
            s.request(Method::POST, "/v1/incidents", Some(&s.operator))
                .header("content-type", "application/json")
                .body("{\"elements\": ["),
        )
        .await,
    );
    show(
        "a body that is not said to be JSON",
        s.send(s.request(Method::POST, "/v1/incidents", Some(&s.operator)).body("{}")).await,
    );
    show(
        "a JSON body of the wrong shape",
        s.post("/v1/incidents", Some(&s.operator), &json!({ "elements": "hub1" })).await,
    );
    show(
        "a declaration that fails its checks",
        s.post("/v1/incidents", Some(&s.operator), &declaration(json!(["nowhere"]), "2026-11-23T09:00:00Z"))
            .await,
    );
    show("an incident that does not exist", s.get("/v1/incidents/INC-999999", Some(&s.read)).await);
    show("a page size out of range", s.get("/v1/credits?limit=0", Some(&s.read)).await);
    show("a query parameter of the wrong type", s.get("/v1/credits?limit=many", Some(&s.read)).await);
    let declared = s
        .post("/v1/incidents", Some(&s.operator), &declaration(json!(["hub1"]), "2026-11-23T16:00:00Z"))
        .await;
    assert_eq!(declared.status, 201, "{}", declared.body);
    let id = declared.body["incident_id"].as_str().expect("an incident id").to_owned();
    let resolve = format!("/v1/incidents/{id}/resolve");
    assert_eq!(s.post(&resolve, Some(&s.operator), &json!({})).await.status, 200);
    show("resolving an incident already resolved", s.post(&resolve, Some(&s.operator), &json!({})).await);
    show(
        "a book with bad lines",
        s.post("/v1/import", Some(&s.admin), &json!({ "customers_csv": "customer_id,name\nc9,\n" })).await,
    );
    let big = "x".repeat(9 * 1024 * 1024);
    show(
        "a body larger than the route takes",
        s.send(
            s.request(Method::POST, "/v1/incidents", Some(&s.operator))
                .header("content-type", "application/json")
                .body(big),
        )
        .await,
    );
    insta::assert_snapshot!(out);
    s.stop().await.unwrap();
}
