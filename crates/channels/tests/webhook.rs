//! WebhookTransport against a real HTTP receiver on 127.0.0.1, its signatures checked by the
//! Standard Webhooks reference library (`standardwebhooks`, built on `hmac-sha256`, an HMAC
//! implementation independent of the `hmac` + `sha2` crates the transport uses).

use amends_testkit::gateway;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amends_channels::{
    ATTACHMENT_BYTES_MAX, Attachment, OutgoingMessage, SendError, Transport, WebhookConfig, WebhookTransport,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway::{Captured, Gateway, Reply, closed_port};
use serde_json::json;
use standardwebhooks::Webhook;

/// 32 random bytes, base64: a secret as a provider would generate it.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/8t3Ky6Mndo=";
const PATH: &str = "/hooks/amends";

fn config(url: String, timeout_ms: u64) -> WebhookConfig {
    WebhookConfig { url, secret: SECRET.to_owned(), timeout_ms }
}

fn notice(key: &str) -> OutgoingMessage {
    OutgoingMessage {
        key: key.to_owned(),
        channel: "webhook".to_owned(),
        recipient: "c-42".to_owned(),
        subject: "Service rétabli".to_owned(),
        body: "Bonjour Zoé,\n\nLe service est rétabli.\n".to_owned(),
        customer_id: "c-42".to_owned(),
        incident_id: "inc-7".to_owned(),
        kind: "restored".to_owned(),
        locale: "fr".to_owned(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

/// Verifies the request as a receiver would, with the reference library.
fn verify(request: &Captured) -> Result<(), standardwebhooks::WebhookError> {
    Webhook::new(SECRET).expect("valid secret").verify(&request.body, &request.headers)
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn transport_for(gateway: &Gateway, timeout_ms: u64) -> WebhookTransport {
    WebhookTransport::new(config(gateway.url(PATH), timeout_ms)).expect("valid config")
}

#[tokio::test]
async fn a_notice_arrives_as_signed_json_that_the_reference_library_accepts() {
    let mut gateway = Gateway::start(vec![], Reply::Answer(204, String::new())).await;
    let transport = transport_for(&gateway, 5_000);
    let sent = transport.send(&notice("n-restored-1")).await.expect("delivered");
    assert_eq!(sent.provider_id, None);

    let requests = gateway.drain();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, PATH);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("webhook-id"), Some("n-restored-1"));
    let timestamp: i64 = request.header("webhook-timestamp").expect("a timestamp").parse().expect("digits");
    assert!((timestamp - now_unix()).abs() <= 5, "timestamp {timestamp} is not now");
    verify(request).expect("the reference library accepts the signature");

    let rfc3339 = jiff::Timestamp::from_second(timestamp).expect("valid").to_string();
    assert_eq!(
        request.json(),
        json!({
            "type": "notice.restored",
            "timestamp": rfc3339,
            "data": {
                "key": "n-restored-1",
                "customer_id": "c-42",
                "incident_id": "inc-7",
                "kind": "restored",
                "locale": "fr",
                "subject": "Service rétabli",
                "body": "Bonjour Zoé,\n\nLe service est rétabli.\n",
            }
        })
    );
}

/// The check above means something only if the verifier refuses what it should.
#[tokio::test]
async fn the_reference_library_refuses_a_tampered_body_or_another_secret() {
    let mut gateway = Gateway::start(vec![], Reply::Answer(200, String::new())).await;
    transport_for(&gateway, 5_000).send(&notice("n-1")).await.expect("delivered");
    let mut request = gateway.drain().remove(0);
    let other = Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("valid secret");
    assert!(other.verify(&request.body, &request.headers).is_err());
    let at = request.body.iter().position(|&b| b == b'Z').expect("a Z in the body");
    request.body[at] = b'X';
    assert!(verify(&request).is_err());
}

#[tokio::test]
async fn a_500_is_transient_and_the_retry_carries_the_same_webhook_id() {
    let script = vec![Reply::Answer(500, r#"{"error":"database down"}"#.to_owned())];
    let mut gateway = Gateway::start(script, Reply::Answer(200, String::new())).await;
    let transport = transport_for(&gateway, 5_000);
    match transport.send(&notice("n-retry")).await {
        Err(SendError::Transient(reason)) => {
            let url = gateway.url(PATH);
            let expected = format!(
                "webhook POST to {url} answered 500 Internal Server Error: \"{{\\\"error\\\":\\\"database down\\\"}}\""
            );
            assert_eq!(reason, expected);
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    transport.send(&notice("n-retry")).await.expect("delivered on retry");

    let requests = gateway.drain();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some("n-retry"));
        verify(request).expect("each attempt is signed");
    }
}

#[tokio::test]
async fn a_receiver_that_hangs_is_transient_after_the_timeout() {
    let mut gateway = Gateway::start(vec![], Reply::Hang).await;
    let transport = transport_for(&gateway, 200);
    let started = Instant::now();
    let result = transport.send(&notice("n-hang")).await;
    let elapsed = started.elapsed();
    match result {
        Err(SendError::Transient(reason)) => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("expected a transient timeout, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(200), "gave up early: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "the 200 ms timeout did not hold: {elapsed:?}");
    assert_eq!(gateway.drain().len(), 1);
}

#[tokio::test]
async fn a_400_is_permanent() {
    let body = r#"{"error":"unknown customer"}"#.to_owned();
    let gateway = Gateway::start(vec![], Reply::Answer(400, body)).await;
    match transport_for(&gateway, 5_000).send(&notice("n-400")).await {
        Err(SendError::Permanent(reason)) => {
            assert!(reason.contains("answered 400 Bad Request"), "{reason}");
            assert!(reason.contains("unknown customer"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn statuses_are_sorted_into_retry_and_give_up() {
    let cases =
        [(408, true), (429, true), (502, true), (503, true), (401, false), (404, false), (410, false)];
    let script = cases.iter().map(|&(status, _)| Reply::Answer(status, String::new())).collect();
    let gateway = Gateway::start(script, Reply::Answer(200, String::new())).await;
    let transport = transport_for(&gateway, 5_000);
    for (status, transient) in cases {
        let result = transport.send(&notice("n-status")).await;
        assert_eq!(
            result.as_ref().err().map(SendError::is_transient),
            Some(transient),
            "{status}: {result:?}"
        );
    }
    transport.send(&notice("n-status")).await.expect("then delivered");
}

/// A redirect is not followed: the signed body would go to a URL nobody configured.
#[tokio::test]
async fn a_redirect_is_not_followed_and_is_permanent() {
    let elsewhere = Gateway::start(vec![], Reply::Answer(200, String::new())).await;
    let mut gateway = Gateway::start(vec![], Reply::Redirect(307, elsewhere.url(PATH))).await;
    let mut elsewhere = elsewhere;
    let result = transport_for(&gateway, 5_000).send(&notice("n-redirect")).await;
    assert!(matches!(result, Err(SendError::Permanent(ref reason)) if reason.contains("307")), "{result:?}");
    assert_eq!(gateway.drain().len(), 1);
    assert_eq!(elsewhere.drain().len(), 0);
}

/// An error page that never ends costs at most the read bound: the send ends with the
/// status, not with the timeout, and the error quotes only the start of the page.
#[tokio::test]
async fn an_endless_answer_is_read_only_up_to_the_bound() {
    let gateway = Gateway::start(vec![], Reply::Endless(503)).await;
    let started = Instant::now();
    match transport_for(&gateway, 3_000).send(&notice("n-endless")).await {
        Err(SendError::Transient(reason)) => {
            assert!(reason.contains("answered 503"), "{reason}");
            assert!(reason.len() < 500, "{} bytes", reason.len());
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "read until the timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_receiver_that_is_down_is_transient() {
    let url = format!("http://127.0.0.1:{}{PATH}", closed_port());
    let transport = WebhookTransport::new(config(url, 5_000)).expect("valid config");
    match transport.send(&notice("n-down")).await {
        Err(SendError::Transient(reason)) => assert!(reason.contains("could not connect"), "{reason}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[tokio::test]
async fn other_channels_are_refused_permanently_without_a_request() {
    let mut gateway = Gateway::start(vec![], Reply::Answer(200, String::new())).await;
    let transport = transport_for(&gateway, 5_000);
    let email = OutgoingMessage { channel: "email".to_owned(), ..notice("n-email") };
    match transport.send(&email).await {
        Err(SendError::Permanent(reason)) => assert_eq!(reason, "webhook transport delivers webhook only"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    let bad_key = notice("n-\r\nX-Injected: 1");
    assert!(matches!(transport.send(&bad_key).await, Err(SendError::Permanent(_))));
    assert!(gateway.drain().is_empty());
}

#[tokio::test]
async fn attachments_ride_in_the_signed_payload_as_base64() {
    let mut gateway = Gateway::start(vec![], Reply::Answer(204, String::new())).await;
    let ics =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Zoé\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let binary: Vec<u8> = (0..=255u8).collect();
    let message = OutgoingMessage {
        attachments: vec![
            Attachment {
                filename: "APT-00000427.ics".to_owned(),
                content_type: "text/calendar; charset=utf-8".to_owned(),
                content: ics.as_bytes().to_vec(),
            },
            Attachment {
                filename: "reçu.bin".to_owned(),
                content_type: "application/octet-stream".to_owned(),
                content: binary.clone(),
            },
        ],
        ..notice("APT-00000427")
    };
    transport_for(&gateway, 5_000).send(&message).await.expect("delivered");

    let requests = gateway.drain();
    assert_eq!(requests.len(), 1);
    verify(&requests[0]).expect("the signature covers the body with its attachments");
    let json = requests[0].json();
    let attachments = json["data"]["attachments"].as_array().expect("an attachments array");
    let shown: Vec<(&str, &str, Vec<u8>)> = attachments
        .iter()
        .map(|a| {
            let decoded = BASE64.decode(a["content_base64"].as_str().expect("a string")).expect("base64");
            (a["filename"].as_str().unwrap_or("?"), a["content_type"].as_str().unwrap_or("?"), decoded)
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("APT-00000427.ics", "text/calendar; charset=utf-8", ics.as_bytes().to_vec()),
            ("reçu.bin", "application/octet-stream", binary),
        ]
    );
    assert_eq!(attachments[0].as_object().map(|o| o.len()), Some(3), "{json}");
    assert_eq!(json["data"]["body"], "Bonjour Zoé,\n\nLe service est rétabli.\n");
}

/// Without attachments the payload has no `attachments` key at all (checked whole in the
/// first test); over the bounds, no request is made.
#[tokio::test]
async fn attachments_over_the_bounds_are_permanent_without_a_request() {
    let mut gateway = Gateway::start(vec![], Reply::Answer(200, String::new())).await;
    let message = OutgoingMessage {
        attachments: vec![Attachment {
            filename: "big.ics".to_owned(),
            content_type: "text/calendar".to_owned(),
            content: vec![b'x'; ATTACHMENT_BYTES_MAX + 1],
        }],
        ..notice("APT-00000427")
    };
    match transport_for(&gateway, 5_000).send(&message).await {
        Err(SendError::Permanent(reason)) => {
            assert_eq!(reason, "notice APT-00000427: attachment \"big.ics\" is 262145 bytes, at most 262144")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(gateway.drain().is_empty());
}
