//! SmsTransport against a stand-in gateway over real HTTP on 127.0.0.1: each preset's
//! request shape (method, content type, fields, auth) and its answers, then a gateway that
//! fails, hangs, answers garbage and recovers.

use amends_testkit::gateway;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amends_channels::{
    ATTACHMENT_BYTES_MAX, Attachment, OutgoingMessage, SegmentBudget, SendError, SmsGatewayConfig, SmsPreset,
    SmsTransport, Transport,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway::{Captured, Gateway, Reply, closed_port};
use serde_json::json;

const TO: &str = "+33612345678";
const FROM: &str = "+14155550100";

fn config(url: String, preset: SmsPreset) -> SmsGatewayConfig {
    SmsGatewayConfig {
        url,
        preset,
        from: FROM.to_owned(),
        username: None,
        password: None,
        token: None,
        timeout_ms: 5_000,
        segments_max: SegmentBudget::default(),
        shift_tables: Vec::new(),
    }
}

fn basic(username: &str, password: &str, config: SmsGatewayConfig) -> SmsGatewayConfig {
    SmsGatewayConfig { username: Some(username.to_owned()), password: Some(password.to_owned()), ..config }
}

fn sms(key: &str, text: &str) -> OutgoingMessage {
    OutgoingMessage {
        key: key.to_owned(),
        channel: "sms".to_owned(),
        recipient: TO.to_owned(),
        subject: "ignored for SMS".to_owned(),
        body: text.to_owned(),
        customer_id: "c-42".to_owned(),
        incident_id: "inc-7".to_owned(),
        kind: "update".to_owned(),
        locale: "fr".to_owned(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The only request the gateway received.
fn only_request(gateway: &mut Gateway) -> Captured {
    let mut requests = gateway.drain();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

fn expect_transient(result: Result<amends_channels::Sent, SendError>, needle: &str) {
    match result {
        Err(SendError::Transient(reason)) => assert!(reason.contains(needle), "{needle:?} not in {reason:?}"),
        other => panic!("expected a transient error with {needle:?}, got {other:?}"),
    }
}

fn expect_permanent(result: Result<amends_channels::Sent, SendError>, needle: &str) {
    match result {
        Err(SendError::Permanent(reason)) => assert!(reason.contains(needle), "{needle:?} not in {reason:?}"),
        other => panic!("expected a permanent error with {needle:?}, got {other:?}"),
    }
}

// Twilio --------------------------------------------------------------------------------

const TWILIO_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json";

fn twilio_created() -> Reply {
    Reply::json(
        201,
        json!({
            "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
            "status": "queued",
            "to": TO,
            "from": FROM,
            "body": "Service restored.",
            "num_segments": "1",
        }),
    )
}

fn twilio(gateway: &Gateway) -> SmsTransport {
    let config = config(gateway.url(TWILIO_PATH), SmsPreset::Twilio);
    SmsTransport::new(basic("AC0123456789abcdef", "auth-token", config)).expect("valid config")
}

#[tokio::test]
async fn twilio_gets_a_form_with_basic_auth_and_its_sid_is_the_provider_id() {
    let mut gateway = Gateway::start(vec![], twilio_created()).await;
    let sent = twilio(&gateway).send(&sms("n-1", "Service restored.\n")).await.expect("accepted");
    assert_eq!(sent.provider_id.as_deref(), Some("SM1f0e8ae6ade43cb3c0ce4525424e404f"));

    let request = only_request(&mut gateway);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, TWILIO_PATH);
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    let credentials = BASE64.encode("AC0123456789abcdef:auth-token");
    assert_eq!(request.header("authorization"), Some(format!("Basic {credentials}").as_str()));
    // The trailing newline is trimmed: it would cost a character on the handset.
    assert_eq!(request.form(), fields(&[("To", TO), ("From", FROM), ("Body", "Service restored.")]));
}

#[tokio::test]
async fn twilio_4xx_is_permanent_except_429() {
    let invalid = json!({
        "code": 21211,
        "message": "The 'To' number +33612345678 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    });
    let too_many = json!({"code": 20429, "message": "Too Many Requests", "status": 429});
    let script = vec![Reply::json(400, invalid), Reply::json(429, too_many), Reply::json(503, json!({}))];
    let gateway = Gateway::start(script, twilio_created()).await;
    let transport = twilio(&gateway);
    expect_permanent(transport.send(&sms("n-1", "x")).await, "21211");
    expect_transient(transport.send(&sms("n-1", "x")).await, "429 Too Many Requests");
    expect_transient(transport.send(&sms("n-1", "x")).await, "503 Service Unavailable");
    transport.send(&sms("n-1", "x")).await.expect("accepted at last");
}

// Vonage --------------------------------------------------------------------------------

fn vonage_answer(parts: &[(&str, &str)]) -> Reply {
    let messages: Vec<serde_json::Value> = parts
        .iter()
        .map(|(status, id)| match *status {
            "0" => json!({"to": "33612345678", "message-id": id, "status": "0",
                          "remaining-balance": "15.53590000", "message-price": "0.03330000", "network": "20801"}),
            _ => json!({"status": status, "error-text": format!("error {status}")}),
        })
        .collect();
    Reply::json(200, json!({"message-count": parts.len().to_string(), "messages": messages}))
}

fn vonage(gateway: &Gateway) -> SmsTransport {
    let config = config(gateway.url("/sms/json"), SmsPreset::Vonage);
    SmsTransport::new(basic("abcd1234", "vonage-secret", config)).expect("valid config")
}

#[tokio::test]
async fn vonage_gets_credentials_in_the_form_and_numbers_without_plus() {
    let mut gateway = Gateway::start(vec![], vonage_answer(&[("0", "0C000000217B7F02")])).await;
    let sent = vonage(&gateway).send(&sms("n-2", "Service restored.")).await.expect("accepted");
    assert_eq!(sent.provider_id.as_deref(), Some("0C000000217B7F02"));

    let request = only_request(&mut gateway);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/sms/json");
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.form(),
        fields(&[
            ("api_key", "abcd1234"),
            ("api_secret", "vonage-secret"),
            ("from", "14155550100"),
            ("to", "33612345678"),
            ("text", "Service restored."),
            ("client-ref", "n-2"),
        ])
    );
}

#[tokio::test]
async fn vonage_is_told_when_the_text_needs_ucs2() {
    let mut gateway = Gateway::start(vec![], vonage_answer(&[("0", "0C01")])).await;
    vonage(&gateway).send(&sms("n-3", "Zoë, c'est rétabli")).await.expect("accepted");
    let form = only_request(&mut gateway).form();
    assert!(form.contains(&("type".to_owned(), "unicode".to_owned())), "{form:?}");
    assert!(form.contains(&("text".to_owned(), "Zoë, c'est rétabli".to_owned())), "{form:?}");
}

#[tokio::test]
async fn vonage_statuses_are_sorted_and_a_long_text_takes_the_first_part_id() {
    let script = vec![
        vonage_answer(&[("1", "")]),              // throttled
        vonage_answer(&[("0", "P1"), ("5", "")]), // internal error on part 2
        vonage_answer(&[("4", "")]),              // invalid credentials
        vonage_answer(&[("7", "")]),              // number barred
        Reply::json(200, json!({"message-count": "0", "messages": []})),
    ];
    let gateway = Gateway::start(script, vonage_answer(&[("0", "PART-1"), ("0", "PART-2")])).await;
    let transport = vonage(&gateway);
    let text = "a".repeat(200);
    expect_transient(transport.send(&sms("n-4", &text)).await, "vonage status 1 (error 1)");
    expect_transient(transport.send(&sms("n-4", &text)).await, "vonage status 5 (error 5)");
    expect_permanent(transport.send(&sms("n-4", &text)).await, "vonage status 4 (error 4)");
    expect_permanent(transport.send(&sms("n-4", &text)).await, "vonage status 7 (error 7)");
    expect_transient(transport.send(&sms("n-4", &text)).await, "but not with JSON with \"messages\"");
    let sent = transport.send(&sms("n-4", &text)).await.expect("accepted");
    assert_eq!(sent.provider_id.as_deref(), Some("PART-1"));
}

// Generic -------------------------------------------------------------------------------

#[tokio::test]
async fn generic_json_gets_json_with_a_bearer_token() {
    let mut gateway = Gateway::start(vec![], Reply::json(202, json!({"id": "msg-9"}))).await;
    let config = SmsGatewayConfig {
        token: Some("tok-123".to_owned()),
        from: "Amends".to_owned(),
        ..config(gateway.url("/v1/sms"), SmsPreset::GenericJson)
    };
    let transport = SmsTransport::new(config).expect("valid config");
    let sent = transport.send(&sms("n-5", "Service rétabli 日本")).await.expect("accepted");
    assert_eq!(sent.provider_id.as_deref(), Some("msg-9"));

    let request = only_request(&mut gateway);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/sms");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), Some("Bearer tok-123"));
    assert_eq!(
        request.json(),
        json!({"to": TO, "from": "Amends", "text": "Service rétabli 日本", "reference": "n-5"})
    );
}

/// An SMS cannot carry files: the request is the one without them, whatever they are
/// (even over the bounds, since nothing of them is sent).
#[tokio::test]
async fn attachments_are_left_out_of_an_sms() {
    let mut gateway = Gateway::start(vec![], Reply::json(202, json!({"id": "msg-10"}))).await;
    let transport =
        SmsTransport::new(config(gateway.url("/v1/sms"), SmsPreset::GenericJson)).expect("valid config");
    let with = OutgoingMessage {
        attachments: vec![Attachment {
            filename: "APT-00000427.ics".to_owned(),
            content_type: "text/calendar; charset=utf-8".to_owned(),
            content: vec![b'x'; ATTACHMENT_BYTES_MAX + 1],
        }],
        ..sms("n-10", "RDV mardi 14h.")
    };
    transport.send(&with).await.expect("accepted");
    transport.send(&sms("n-10", "RDV mardi 14h.")).await.expect("accepted");
    let requests = gateway.drain();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(
        requests[0].json(),
        json!({"to": TO, "from": FROM, "text": "RDV mardi 14h.", "reference": "n-10"})
    );
}

#[tokio::test]
async fn generic_form_gets_the_same_fields_form_encoded() {
    let mut gateway = Gateway::start(vec![], Reply::json(200, json!({"id": 4242}))).await;
    let transport = SmsTransport::new(config(gateway.url("/send"), SmsPreset::GenericForm)).expect("valid");
    let sent = transport.send(&sms("n-6", "a & b = c?")).await.expect("accepted");
    assert_eq!(sent.provider_id.as_deref(), Some("4242"));

    let request = only_request(&mut gateway);
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.form(),
        fields(&[("to", TO), ("from", FROM), ("text", "a & b = c?"), ("reference", "n-6")])
    );
}

// Failures ------------------------------------------------------------------------------

/// The gateway answers 503, then hangs, then answers 200 with garbage, then an endless
/// body, then recovers. Every failure is transient and quick (the timeout is 300 ms), and
/// the same reference goes out each time so the gateway could drop a duplicate.
#[tokio::test]
async fn a_gateway_that_fails_hangs_answers_garbage_then_recovers() {
    let script = vec![
        Reply::Answer(503, "<html>Service Unavailable</html>".to_owned()),
        Reply::Hang,
        Reply::Answer(200, "<html>Welcome to nginx!</html>".to_owned()),
        Reply::Endless(200),
    ];
    let mut gateway = Gateway::start(script, Reply::json(200, json!({"id": "ok-1"}))).await;
    let config = SmsGatewayConfig { timeout_ms: 300, ..config(gateway.url("/send"), SmsPreset::GenericJson) };
    let transport = SmsTransport::new(config).expect("valid config");
    let message = sms("n-7", "Service restored.");
    let started = Instant::now();

    expect_transient(transport.send(&message).await, "answered 503 Service Unavailable");
    expect_transient(transport.send(&message).await, "timed out");
    expect_transient(
        transport.send(&message).await,
        "answered 200 OK but not with JSON with an \"id\": \"<html>Welcome",
    );
    expect_transient(transport.send(&message).await, "answered 200 OK but not with JSON with an \"id\"");
    let sent = transport.send(&message).await.expect("accepted after recovery");
    assert_eq!(sent.provider_id.as_deref(), Some("ok-1"));

    assert!(started.elapsed() < Duration::from_secs(5), "too slow: {:?}", started.elapsed());
    let references: Vec<String> = gateway
        .drain()
        .iter()
        .map(|r| r.json()["reference"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(references, vec!["n-7"; 5]);
}

#[tokio::test]
async fn a_gateway_that_is_down_is_transient() {
    let url = format!("http://127.0.0.1:{}/send", closed_port());
    let transport = SmsTransport::new(config(url, SmsPreset::GenericJson)).expect("valid config");
    expect_transient(transport.send(&sms("n-8", "x")).await, "could not connect");
}

#[tokio::test]
async fn bad_input_is_permanent_without_a_request() {
    let mut gateway = Gateway::start(vec![], Reply::json(200, json!({"id": "x"}))).await;
    let budget = SegmentBudget { default: 1, kinds: BTreeMap::from([("credit".to_owned(), 2)]) };
    let config =
        SmsGatewayConfig { segments_max: budget, ..config(gateway.url("/send"), SmsPreset::GenericJson) };
    let transport = SmsTransport::new(config).expect("valid config");

    let local_number = OutgoingMessage { recipient: "0612345678".to_owned(), ..sms("n-9", "x") };
    expect_permanent(transport.send(&local_number).await, "\"0612345678\" is not an E.164 number");
    expect_permanent(transport.send(&sms("n-9", " \n")).await, "sms text of notice n-9 is empty");
    let email = OutgoingMessage { channel: "email".to_owned(), ..sms("n-9", "x") };
    expect_permanent(transport.send(&email).await, "sms transport delivers sms only");
    // 71 UCS-2 units: two segments, over the default budget of one...
    let long = "ë".repeat(71);
    expect_permanent(
        transport.send(&sms("n-9", &long)).await,
        "sms for kind \"update\" takes 2 segments (Ucs2, 71 units), over its budget of 1",
    );
    assert!(gateway.drain().is_empty());
    // ...and within the budget of its kind.
    let credit = OutgoingMessage { kind: "credit".to_owned(), ..sms("n-9", &long) };
    transport.send(&credit).await.expect("within the credit budget");
}
