//! Tokens through the real binary (issue 18, item 11): made with an expiry, listed (the
//! token itself never), revoked once however often asked, and refused by a running
//! server once revoked or expired, each said so; a use shows in the list.

use crate::binary;

use binary::Env;
use serde_json::{Value, json};

const T0: &str = "2026-11-23T12:00:00Z";

/// The listed token with id `id`.
fn listed<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("{id} in {list}"))
}

/// Status and error message of `GET /v1/incidents` with `token`.
async fn incidents(http: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/v1/incidents")).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["error"]["message"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_revoked_and_expire_and_show_their_last_use() {
    let s = Env::new();
    let night = s
        .ok(T0, &["token", "create", "--scope", "operator", "--label", "night shift", "--expires-in", "90d"])
        .trim()
        .to_string();
    assert!(night.starts_with("amends_") && !night.contains(char::is_whitespace), "{night:?}");
    let board = s.json(
        T0,
        &["--json", "token", "create", "--scope", "read", "--label", "status board", "--expires-at", "+1h"],
    );
    let board_token = board["token"].as_str().unwrap().to_string();
    let board_id = board["id"].as_str().unwrap().to_string();
    assert_eq!(
        (&board["scope"], &board["state"], &board["expires_at"], &board["created_at"]),
        (&json!("read"), &json!("active"), &json!("2026-11-23T13:00:00Z"), &json!(T0))
    );
    let admin = s.ok(T0, &["token", "create", "--scope", "admin"]).trim().to_string();

    // Listed by id, oldest first; neither a token nor its hash is ever shown.
    let out = s.ok(T0, &["token", "list"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    for token in [&night, &board_token, &admin] {
        let hash = amends_recovery::tokens::token_hash(token);
        assert!(!out.contains(token.as_str()) && !out.contains(&hash), "{out}");
    }
    let night_id = amends_recovery::tokens::id_named_by(&night);
    assert_eq!(night_id.len(), 12);
    assert_eq!(
        listed(&list, &night_id),
        &json!({
            "id": night_id, "label": "night shift", "scope": "operator", "agent": null, "state": "active",
            "created_at": T0, "expires_at": "2027-02-21T12:00:00Z", "last_used_at": null, "revoked_at": null,
        })
    );
    assert_eq!(listed(&list, &board_id)["label"], "status board");

    // Revoking is idempotent: the first time stands. An unknown id is an error.
    let revoked = s.json("2026-11-23T12:10:00Z", &["token", "revoke", &night_id]);
    assert_eq!(
        (&revoked["already"], &revoked["token"]["state"], &revoked["token"]["revoked_at"]),
        (&json!(false), &json!("revoked"), &json!("2026-11-23T12:10:00Z"))
    );
    let again = s.json("2026-11-23T12:20:00Z", &["token", "revoke", &night_id.to_uppercase()]);
    assert_eq!(
        (&again["already"], &again["token"]["revoked_at"]),
        (&json!(true), &json!("2026-11-23T12:10:00Z"))
    );
    let error = s.fails(T0, &["token", "revoke", "0123456789ab"]);
    assert!(error.contains(r#"no token has id "0123456789ab"; amends token list shows them"#), "{error}");

    // A running server refuses the revoked token, says so, and records the other's use.
    let http = amends_channels::http_client_builder().unwrap().no_proxy().build().unwrap();
    let server = s.serve("2026-11-23T12:30:00Z");
    let revoked = json!("the bearer token was revoked at 2026-11-23T12:10:00Z");
    assert_eq!(incidents(&http, &server.base, &night).await, (401, revoked));
    assert_eq!(incidents(&http, &server.base, &board_token).await.0, 200);
    drop(server);
    let list = s.json("2026-11-23T12:31:00Z", &["token", "list"]);
    assert_eq!(listed(&list, &board_id)["last_used_at"], "2026-11-23T12:30:00Z");
    assert_eq!(listed(&list, &night_id)["last_used_at"], Value::Null, "a refused token was not used");

    // From its expiry on, the board's token is refused too, and told why.
    let server = s.serve("2026-11-23T13:00:00Z");
    let expired = json!("the bearer token expired at 2026-11-23T13:00:00Z");
    assert_eq!(incidents(&http, &server.base, &board_token).await, (401, expired));
    assert_eq!(incidents(&http, &server.base, &admin).await.0, 200);
    drop(server);
    let list = s.json("2026-11-23T13:00:00Z", &["token", "list"]);
    let admin_id = amends_recovery::tokens::id_named_by(&admin);
    let states = [&night_id, &board_id, &admin_id].map(|id| listed(&list, id)["state"].as_str().unwrap());
    assert_eq!(states, ["revoked", "expired", "active"]);
    assert_eq!(listed(&list, &admin_id)["last_used_at"], "2026-11-23T13:00:00Z");
    assert_eq!(listed(&list, &board_id)["last_used_at"], "2026-11-23T12:30:00Z", "refused: not a use");
}

#[test]
fn a_bad_expiry_is_refused_with_the_forms_expected() {
    let s = Env::new();
    let bad = s.fails(T0, &["token", "create", "--scope", "read", "--expires-in", "soon"]);
    assert!(bad.contains(r#""soon" is not a length of time from now: write it like 90d"#), "{bad}");
    let zero = s.fails(T0, &["token", "create", "--scope", "read", "--expires-in", "0d"]);
    assert!(zero.contains("is not a length of time from now"), "{zero}");
    let past = s.fails(T0, &["token", "create", "--scope", "read", "--expires-at", "2026-11-23T11:00:00Z"]);
    assert!(
        past.contains("the expiry 2026-11-23T11:00:00Z is not after now (2026-11-23T12:00:00Z)"),
        "{past}"
    );
    let both =
        s.fails(T0, &["token", "create", "--scope", "read", "--expires-in", "1d", "--expires-at", "+2d"]);
    assert!(both.contains("cannot be used with"), "{both}");
    let agent = s.fails(T0, &["token", "create", "--scope", "read", "--agent", "ann"]);
    assert!(agent.contains("--agent goes with --scope agent only"), "{agent}");
    let list = s.json(T0, &["token", "list"]);
    assert_eq!(list, json!([]), "nothing was made");
}
