//! Notices as signed JSON POSTs, following the Standard Webhooks convention
//! (<https://www.standardwebhooks.com/>), so a provider can feed its own app or push service
//! and check that each request came from amends, unaltered and recent.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Url};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::http::{self, read_bounded, redact_query, shown, status_error, transport_error};
use crate::{OutgoingMessage, SendError, Sent, Transport, check_attachments, expect_channel};

/// The prefix Standard Webhooks puts before the base64 of the key.
const SECRET_PREFIX: &str = "whsec_";
/// Key sizes the convention allows, in bytes (before base64).
const SECRET_BYTES_MIN: usize = 24;
const SECRET_BYTES_MAX: usize = 64;

/// Where to POST notices, and the shared secret to sign them with.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://...` (or `http://` for a receiver on the same host or network: the signature
    /// protects integrity, not confidentiality).
    pub url: String,
    /// `"whsec_"` followed by the standard base64 of a 24 to 64 byte random key, as the
    /// receiver's Standard Webhooks library expects it.
    pub secret: String,
    /// Limit on the whole exchange (connect, request, answer), in milliseconds.
    #[serde(default = "WebhookConfig::default_timeout_ms")]
    pub timeout_ms: u64,
}

impl WebhookConfig {
    fn default_timeout_ms() -> u64 {
        10_000
    }
}

/// Never prints the secret, nor a query string (which may carry a token).
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_query(&self.url))
            .field("secret", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A configuration that cannot work, naming the field at fault. Never shows the secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("webhook url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("webhook secret: {reason}")]
    Secret { reason: String },
    #[error("webhook timeout_ms must be at least 1")]
    TimeoutMs,
    #[error("webhook http client: {reason}")]
    Client { reason: String },
}

/// POSTs each notice as JSON to one URL, signed with HMAC-SHA256.
///
/// The body is `{"type": "notice.<kind>", "timestamp": RFC 3339, "data": {key, customer_id,
/// incident_id, kind, locale, subject, body}}` and the headers are:
///
/// - `webhook-id`: the notice key, the same on every retry, so the receiver can drop
///   duplicates (the convention asks for exactly that);
/// - `webhook-timestamp`: unix seconds of this attempt, so the receiver can refuse replays;
/// - `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
///
/// When the notice has attachments, `data` also carries `"attachments": [{"filename",
/// "content_type", "content_base64"}]` (standard base64 with padding), in order; without,
/// the key is absent, so the payload is the same as before attachments existed. A message
/// over the attachment bounds ([`check_attachments`]) fails permanently before any request.
///
/// 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are transient; any other
/// status is permanent. Redirects are not followed.
pub struct WebhookTransport {
    client: Client,
    url: Url,
    key: Vec<u8>,
}

impl fmt::Debug for WebhookTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTransport").field("url", &shown(&self.url)).finish_non_exhaustive()
    }
}

impl WebhookTransport {
    /// Checks the configuration (the error names the field, never the secret) and builds
    /// the HTTP client. No request is made until the first send.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookConfigError> {
        let url = http::parse_url(&config.url)
            .map_err(|reason| WebhookConfigError::Url { url: redact_query(&config.url), reason })?;
        let key = parse_secret(&config.secret).map_err(|reason| WebhookConfigError::Secret { reason })?;
        if config.timeout_ms == 0 {
            return Err(WebhookConfigError::TimeoutMs);
        }
        let client =
            http::client(config.timeout_ms).map_err(|reason| WebhookConfigError::Client { reason })?;
        Ok(Self { client, url, key })
    }

    /// The JSON body and the signature header for `message` sent at `at`.
    fn sign(&self, message: &OutgoingMessage, at: Timestamp) -> Result<(String, String), SendError> {
        let body = payload(message, at)?;
        let signature = webhook_signature(&self.key, &message.key, at.as_second(), &body);
        Ok((body, signature))
    }
}

#[async_trait::async_trait]
impl Transport for WebhookTransport {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
        expect_channel(message, "webhook", "webhook")?;
        check_attachments(&message.key, &message.attachments)?;
        let id = HeaderValue::from_str(&message.key).map_err(|_| {
            SendError::Permanent(format!("notice key {:?} cannot be a webhook-id header", message.key))
        })?;
        let at = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
        let (body, signature) = self.sign(message, at)?;
        let what = format!("webhook POST to {}", shown(&self.url));
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", at.as_second())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(&what, &e))?;
        let status = response.status();
        let answer = read_bounded(response).await;
        if status.is_success() {
            tracing::debug!(key = %message.key, %status, "webhook receiver accepted notice");
            return Ok(Sent::default());
        }
        Err(status_error(&what, status, &answer.unwrap_or_default()))
    }
}

/// `v1,` + base64(HMAC-SHA256(`key`, `"{id}.{timestamp}.{body}"`)): the `webhook-signature`
/// value Standard Webhooks specifies, for `key` the bytes behind `whsec_`.
pub fn webhook_signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    key: &'a str,
    customer_id: &'a str,
    incident_id: &'a str,
    kind: &'a str,
    locale: &'a str,
    subject: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<AttachmentData<'a>>,
}

/// One attachment in the payload: its own shape, so the contract with receivers does not
/// follow changes to [`crate::Attachment`]'s serde.
#[derive(Serialize)]
struct AttachmentData<'a> {
    filename: &'a str,
    content_type: &'a str,
    content_base64: String,
}

fn payload(message: &OutgoingMessage, at: Timestamp) -> Result<String, SendError> {
    let payload = Payload {
        event_type: format!("notice.{}", message.kind),
        timestamp: at.to_string(),
        data: Data {
            key: &message.key,
            customer_id: &message.customer_id,
            incident_id: &message.incident_id,
            kind: &message.kind,
            locale: &message.locale,
            subject: &message.subject,
            body: &message.body,
            attachments: message
                .attachments
                .iter()
                .map(|attachment| AttachmentData {
                    filename: &attachment.filename,
                    content_type: &attachment.content_type,
                    content_base64: BASE64.encode(&attachment.content),
                })
                .collect(),
        },
    };
    serde_json::to_string(&payload).map_err(|e| SendError::Permanent(format!("webhook payload: {e}")))
}

/// The key bytes of a `whsec_...` secret; the error never quotes the secret.
fn parse_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or("must start with \"whsec_\"")?;
    let key = BASE64.decode(encoded).map_err(|e| format!("not standard base64 after \"whsec_\": {e}"))?;
    if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&key.len()) {
        return Err(format!(
            "the key is {} bytes, expected {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX}",
            key.len()
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn signature_matches_the_reference_example() {
        let key = parse_secret(SECRET).expect("valid secret");
        let body = r#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            webhook_signature(&key, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn payload_shape() {
        let message = OutgoingMessage {
            key: "n-1".into(),
            channel: "webhook".into(),
            recipient: "app".into(),
            subject: "Rétabli".into(),
            body: "Le \"service\" est rétabli.\n".into(),
            customer_id: "c-7".into(),
            incident_id: "i-3".into(),
            kind: "restored".into(),
            locale: "fr".into(),
            unsubscribe_url: None,
            attachments: Vec::new(),
        };
        let at = Timestamp::from_second(1_700_000_000).expect("valid");
        assert_eq!(
            payload(&message, at).expect("serialisable"),
            r#"{"type":"notice.restored","timestamp":"2023-11-14T22:13:20Z","data":{"key":"n-1","customer_id":"c-7","incident_id":"i-3","kind":"restored","locale":"fr","subject":"Rétabli","body":"Le \"service\" est rétabli.\n"}}"#
        );
    }

    #[test]
    fn payload_with_attachments() {
        let message = OutgoingMessage {
            key: "APT-00000427".into(),
            channel: "webhook".into(),
            recipient: "app".into(),
            subject: "RDV".into(),
            body: "b".into(),
            customer_id: "c-7".into(),
            incident_id: "i-3".into(),
            kind: "appointment".into(),
            locale: "fr".into(),
            unsubscribe_url: None,
            attachments: vec![crate::Attachment {
                filename: "APT-00000427.ics".into(),
                content_type: "text/calendar; charset=utf-8".into(),
                content: b"BEGIN:VCALENDAR\r\n\xff".to_vec(),
            }],
        };
        let at = Timestamp::from_second(1_700_000_000).expect("valid");
        assert_eq!(
            payload(&message, at).expect("serialisable"),
            r#"{"type":"notice.appointment","timestamp":"2023-11-14T22:13:20Z","data":{"key":"APT-00000427","customer_id":"c-7","incident_id":"i-3","kind":"appointment","locale":"fr","subject":"RDV","body":"b","attachments":[{"filename":"APT-00000427.ics","content_type":"text/calendar; charset=utf-8","content_base64":"QkVHSU46VkNBTEVOREFSDQr/"}]}}"#
        );
    }

    fn config(url: &str, secret: &str) -> WebhookConfig {
        WebhookConfig { url: url.into(), secret: secret.into(), timeout_ms: 1_000 }
    }

    #[test]
    fn config_errors_name_the_field_and_hide_the_secret() {
        let check = |config: WebhookConfig, expected: &str| match WebhookTransport::new(config) {
            Ok(_) => panic!("expected error {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        };
        let url = "https://h.example/hook";
        check(config(url, "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"), "webhook secret: must start with \"whsec_\"");
        check(
            config(url, "whsec_not*base64"),
            "webhook secret: not standard base64 after \"whsec_\": Invalid symbol 42, offset 3.",
        );
        check(config(url, "whsec_c2hvcnQ="), "webhook secret: the key is 5 bytes, expected 24 to 64");
        check(
            config("ftp://h.example?token=t", SECRET),
            "webhook url \"ftp://h.example?<redacted>\": scheme \"ftp\" is not http or https",
        );
        check(
            WebhookConfig { timeout_ms: 0, ..config(url, SECRET) },
            "webhook timeout_ms must be at least 1",
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let shown = format!("{:?}", config("https://h.example/hook?t=abc", SECRET));
        assert!(!shown.contains("C2FVsBQ"), "{shown}");
        assert!(!shown.contains("abc"), "{shown}");
        let transport = WebhookTransport::new(config("https://h.example/hook", SECRET)).expect("valid");
        assert_eq!(format!("{transport:?}"), "WebhookTransport { url: \"https://h.example/hook\", .. }");
    }

    #[test]
    fn deserialises_with_a_default_timeout_and_refuses_unknown_fields() {
        let config: WebhookConfig =
            serde_json::from_str(&format!(r#"{{"url":"https://h.example","secret":"{SECRET}"}}"#))
                .expect("valid");
        assert_eq!(config.timeout_ms, 10_000);
        let unknown = serde_json::from_str::<WebhookConfig>(r#"{"url":"u","secret":"s","timeoutms":1}"#);
        assert!(unknown.is_err());
    }
}
