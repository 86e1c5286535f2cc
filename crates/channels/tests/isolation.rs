//! One channel hanging must not hold up another: each channel is Paced on its own, over
//! real HTTP on 127.0.0.1.

use amends_testkit::gateway;

use std::sync::Arc;
use std::time::Duration;

use amends_channels::{
    OutgoingMessage, Paced, PacingConfig, SegmentBudget, SmsGatewayConfig, SmsPreset, SmsTransport,
    Transport, WebhookConfig, WebhookTransport,
};
use gateway::{Gateway, Reply};

fn message(channel: &str, key: &str, recipient: &str) -> OutgoingMessage {
    OutgoingMessage {
        key: key.to_owned(),
        channel: channel.to_owned(),
        recipient: recipient.to_owned(),
        subject: "Service restored".to_owned(),
        body: "Service restored.".to_owned(),
        customer_id: "c-1".to_owned(),
        incident_id: "i-1".to_owned(),
        kind: "restored".to_owned(),
        locale: "en".to_owned(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

/// Both channels get the same pacing: one send in flight, generous rate, a 60 s send
/// timeout that the hanging gateway will not reach during the test.
fn pacing() -> PacingConfig {
    PacingConfig { concurrency: 1, per_second: 100, burst: 10, send_timeout_ms: 60_000 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_sms_gateway_does_not_delay_webhook_sends() {
    let mut sms_gateway = Gateway::start(vec![], Reply::Hang).await;
    let mut receiver = Gateway::start(vec![], Reply::Answer(200, String::new())).await;
    let sms_config = SmsGatewayConfig {
        url: sms_gateway.url("/send"),
        preset: SmsPreset::GenericJson,
        from: "Amends".to_owned(),
        username: None,
        password: None,
        token: None,
        timeout_ms: 60_000,
        segments_max: SegmentBudget::default(),
        shift_tables: Vec::new(),
    };
    let sms: Arc<dyn Transport> = Arc::new(SmsTransport::new(sms_config).expect("valid sms config"));
    let sms = Arc::new(Paced::new(sms, pacing()).expect("valid pacing"));
    let webhook_config = WebhookConfig {
        url: receiver.url("/hook"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/8t3Ky6Mndo=".to_owned(),
        timeout_ms: 5_000,
    };
    let webhook: Arc<dyn Transport> = Arc::new(WebhookTransport::new(webhook_config).expect("valid config"));
    let webhook = Paced::new(webhook, pacing()).expect("valid pacing");

    // The SMS send takes the SMS channel's only slot and hangs there.
    let pending_sms = {
        let sms = Arc::clone(&sms);
        tokio::spawn(async move { sms.send(&message("sms", "n-sms", "+33612345678")).await })
    };
    let seen = tokio::time::timeout(Duration::from_secs(10), sms_gateway.next_request()).await;
    assert_eq!(seen.expect("the SMS gateway got the request").path, "/send");

    // Meanwhile the webhook channel delivers everything, one after the other.
    let sends = async {
        for i in 0..5 {
            webhook.send(&message("webhook", &format!("n-hook-{i}"), "c-1")).await.expect("delivered");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), sends).await.expect("webhook sends were held up");
    assert_eq!(receiver.drain().len(), 5);
    assert!(!pending_sms.is_finished(), "the SMS send should still be waiting on its gateway");
    pending_sms.abort();
}
