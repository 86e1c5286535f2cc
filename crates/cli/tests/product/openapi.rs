//! `/openapi.json` describes every route exactly (issue 18, item 16): every route the
//! router serves is documented with its methods, and every documented one is served;
//! every 2xx answer has a typed schema; the errors the layers answer (401, 403, 413, 415,
//! 422) are documented where they can happen. `.ci/schemathesis` then checks the answers
//! of a live server against the document.

use crate::support;

use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use support::TestServer;

/// The router's source: the routes are read from it, so a route added there and not
/// documented fails here.
const ROUTER: &str = include_str!("../../../server/src/lib.rs");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (method, path) the router serves, read from its `.route(...)` calls; a catch-all
/// `{*key}` is written `{key}`, as OpenAPI writes it.
fn served_routes() -> BTreeSet<(String, String)> {
    assert!(
        !ROUTER.contains(".nest(") && !ROUTER.contains(".route_service("),
        "routes this test cannot read"
    );
    let mut routes = BTreeSet::new();
    for (i, _) in ROUTER.match_indices(".route(\"") {
        let rest = &ROUTER[i + ".route(\"".len()..];
        let (path, rest) = rest.split_once('"').expect("a quoted path");
        let end = [rest.find(".route("), rest.find(".route_layer(")].into_iter().flatten().min();
        let handlers = &rest[..end.unwrap_or(rest.len())];
        let mut found = 0;
        for method in METHODS {
            let called = handlers
                .match_indices(&format!("{method}("))
                .any(|(j, _)| !handlers[..j].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if called {
                routes.insert((method.to_string(), path.replace("{*", "{")));
                found += 1;
            }
        }
        assert!(found > 0, "no method read for the route {path}");
    }
    assert!(routes.len() > 30, "the router's routes were not read: {routes:?}");
    routes
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item") {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}: not a method this API uses");
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.push((method.to_uppercase(), path.clone(), op));
        }
    }
    ops
}

/// Where a `$ref` points.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").expect("a schema reference");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{reference} is not in the document");
            target
        }
        None => schema,
    }
}

/// Every schema object in `value`, with where it is, that says `object` and nothing of
/// what the object holds: no properties, no additional properties, no composition.
fn untyped_objects(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let says_object = match &map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
                _ => false,
            };
            let described = ["properties", "additionalProperties", "oneOf", "anyOf", "allOf", "$ref"]
                .iter()
                .any(|k| map.contains_key(*k));
            if says_object && !described {
                found.push(at.to_string());
            }
            for (key, child) in map {
                // Examples are data, not schemas.
                if key != "example" && key != "examples" {
                    untyped_objects(child, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                untyped_objects(child, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The test's requests name each path parameter `x` (a notice key takes slashes).
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push('x');
        rest = &rest[rest[open..].find('}').expect("a closed parameter") + open + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_route_the_router_serves() {
    let s = TestServer::start().await;
    let doc = s.get("/openapi.json", None).await.body;
    let served = served_routes();
    let described = documented(&doc);
    let missing: Vec<_> = served.difference(&described).collect();
    let extra: Vec<_> = described.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served, not documented: {missing:?}; documented, not served: {extra:?}"
    );

    // And each documented operation is answered by its route, not by the fallbacks.
    for (method, path, _) in operations(&doc) {
        let request = s.request(Method::from_bytes(method.as_bytes()).unwrap(), &concrete(&path), None);
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(!body.contains("no such route"), "{method} {path}: {status} {body}");
    }
    s.stop().await.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_typed_and_every_shared_error_documented() {
    let s = TestServer::start().await;
    let doc = s.get("/openapi.json", None).await.body;
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        let has = |status: &str| responses.contains_key(status);
        for (status, response) in responses {
            let content = response["content"].as_object();
            // No Content and Not Modified have no body, by definition (RFC 9110); See Other
            // sends the client to the answer (a page's form, back to the page).
            if status == "204" || status == "303" || status == "304" {
                continue;
            }
            let Some(content) = content.filter(|c| !c.is_empty()) else {
                problems.push(format!("{at}: {status} has no content"));
                continue;
            };
            for (media, body) in content {
                if body["schema"].is_null() {
                    problems.push(format!("{at}: {status} {media} has no schema"));
                } else if status.starts_with('2') && media == "application/json" {
                    let schema = resolve(&doc, &body["schema"]);
                    let typed = ["properties", "items", "oneOf", "additionalProperties"]
                        .iter()
                        .any(|k| !schema[*k].is_null());
                    if !typed {
                        problems.push(format!("{at}: {status} is not a typed schema: {schema}"));
                    }
                }
            }
        }
        if !responses.keys().any(|s| s.starts_with('2') || s == "303") {
            problems.push(format!("{at}: no 2xx answer (nor a 303 to one)"));
        }
        let secured = !op["security"].is_null();
        if secured && !(has("401") && has("403")) {
            problems.push(format!("{at}: a token is checked but 401 or 403 is not documented"));
        }
        if !secured && has("401") {
            problems.push(format!("{at}: no token is checked but 401 is documented"));
        }
        if !op["requestBody"].is_null() {
            for status in ["400", "413", "415", "422"] {
                if !has(status) {
                    problems.push(format!("{at}: takes a body but {status} is not documented"));
                }
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "limit" {
                let schema = &param["schema"];
                if schema["minimum"] != 1 || schema["maximum"].is_null() || !has("422") {
                    problems.push(format!("{at}: limit without its range and its 422: {param}"));
                }
            }
        }
    }
    let mut untyped = Vec::new();
    untyped_objects(&doc["paths"], "#/paths", &mut untyped);
    untyped_objects(&doc["components"], "#/components", &mut untyped);
    for at in untyped {
        problems.push(format!("{at}: an object with nothing said of what it holds"));
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    s.stop().await.expect("a clean stop");
}

/// The example declaration is accepted as it stands, whenever the document is read: its
/// instants follow the server's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_declaration_is_accepted() {
    let s = TestServer::start().await;
    let topology = "element_id,parent_id,kind,name\nROOT,,root,Network\nR1-H1,ROOT,hub,Hub 1\n";
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
                     C1,Ana,ana@example.com,,en-US,America/New_York,basic,R1-H1,,1,2024-01-01T00:00:00Z,active\n";
    let book = serde_json::json!({ "plans_csv": support::PLANS, "topology_csv": topology, "customers_csv": customers });
    let r = s.post("/v1/import", Some(&s.admin), &book).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = s.get("/openapi.json", None).await.body;
    let example =
        &doc["paths"]["/v1/incidents"]["post"]["requestBody"]["content"]["application/json"]["example"];
    assert!(example.is_object(), "the declaration has an example");
    let r = s.post("/v1/incidents", Some(&s.operator), example).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.stop().await.expect("a clean stop");
}

/// A `limit` beyond its maximum is refused, not quietly cut (issue 18, item 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_out_of_range_is_refused() {
    let s = TestServer::start().await;
    for (path, max) in [("/v1/incidents", 1_000), ("/v1/credits", 10_000), ("/v1/notices", 10_000)] {
        for limit in [0, max + 1] {
            let r = s.get(&format!("{path}?limit={limit}"), Some(&s.read)).await;
            assert_eq!(r.status, 422, "{path}?limit={limit}: {}", r.body);
            assert_eq!(r.body["error"]["message"], format!("limit: {limit} is not between 1 and {max}"));
        }
        let r = s.get(&format!("{path}?limit={max}"), Some(&s.read)).await;
        assert_eq!(r.status, 200, "{path}?limit={max}: {}", r.body);
    }
    s.stop().await.expect("a clean stop");
}
