//! Delivery channels for amends notices.
//!
//! A notice is rendered and stored in the outbox before anything here runs; this crate only
//! moves one rendered [`OutgoingMessage`] to the outside world and says whether a failure is
//! worth retrying ([`SendError::Transient`]) or final ([`SendError::Permanent`]). The outbox
//! worker decides *when* to retry with [`Backoff`] (one policy per channel).
//!
//! - [`SmtpTransport`]: email over a pooled SMTP connection (lettre), multipart plain text
//!   and HTML ([`html_from_text`]), with RFC 8058 one-click unsubscribe headers for
//!   non-essential notices, and attachments (a `multipart/mixed` around the text and HTML).
//! - [`SmsTransport`]: SMS through an HTTP gateway, with presets for the request shapes of
//!   common gateways ([`SmsPreset`]) and a per-kind segment budget ([`SegmentBudget`],
//!   counted by [`amends_core::sms`]). Attachments are ignored: an SMS cannot carry them.
//! - [`WebhookTransport`]: JSON POSTs signed per Standard Webhooks, so a provider can feed
//!   its own app or push service; attachments ride in the payload as base64.
//! - [`FileTransport`]: appends readable blocks to a file or stdout (development, dry runs),
//!   attachments as base64 after the body.
//! - [`Paced`]: wraps any transport with its own concurrency limit, rate limit and send
//!   timeout, so one slow or hanging channel never holds up another.
//!
//! A message carries at most [`ATTACHMENTS_MAX`] [`Attachment`]s of at most
//! [`ATTACHMENT_BYTES_MAX`] each, with a plain file name; every transport that carries them
//! checks that ([`check_attachments`]) before sending and fails permanently otherwise.
//!
//! Every HTTP exchange is bounded: a whole-request timeout, no redirects, and a response
//! body read at most [`RESPONSE_BODY_MAX_BYTES`] deep.

mod attachment;
mod backoff;
mod file;
pub mod html;
mod http;
mod paced;
mod sms;
mod smtp;
mod webhook;

pub use attachment::{
    ATTACHMENT_BYTES_MAX, ATTACHMENT_CONTENT_TYPE_MAX_BYTES, ATTACHMENT_FILENAME_MAX_BYTES, ATTACHMENTS_MAX,
    Attachment, AttachmentError, check_attachments,
};
pub use backoff::{Backoff, jitter_seed};
pub use file::FileTransport;
pub use html::html_from_text;
pub use http::{RESPONSE_BODY_MAX_BYTES, client_builder as http_client_builder};
pub use paced::{Paced, PacingConfig, PacingConfigError};
pub use sms::{
    OverBudget, SegmentBudget, SmsConfigError, SmsGatewayConfig, SmsPreset, SmsTransport,
    vonage_status_is_transient,
};
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpTransport, message_id_for_key};
pub use webhook::{WebhookConfig, WebhookConfigError, WebhookTransport, webhook_signature};

use serde::{Deserialize, Serialize};

/// One rendered notice ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// The notice key: stable across retries, so receivers and logs can match duplicates.
    pub key: String,
    /// `"email"`, `"sms"` or `"webhook"`; each transport refuses the others permanently.
    pub channel: String,
    /// An email address, an E.164 phone number, or for webhooks whatever identifies the
    /// customer to the provider's own app (not sent: the payload carries `customer_id`).
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub customer_id: String,
    pub incident_id: String,
    /// The notice kind: `acknowledgement`, `update`, `restored`, `credit`, `still_down`.
    pub kind: String,
    /// The language the notice was rendered in, as a BCP 47 tag (`en`, `fr`, `pt-BR`);
    /// `_` is accepted in place of `-`.
    pub locale: String,
    /// Where the customer can stop receiving this kind of notice. `Some` for non-essential
    /// kinds only: an outage notice one cannot opt out of must not offer a way to.
    #[serde(default)]
    pub unsubscribe_url: Option<String>,
    /// Files sent with the notice (an appointment's `.ics`): in email as attachments, in a
    /// webhook payload as base64, in the file sink after the body; not in an SMS. Bounded
    /// by [`ATTACHMENTS_MAX`] and [`ATTACHMENT_BYTES_MAX`]. Empty for most notices.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// What the receiving side said when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The gateway's id for the message, to match its delivery receipts later. `None` for
    /// email (the Message-ID is derived from the key) and webhooks (the key is the id).
    pub provider_id: Option<String>,
}

/// Why a send failed, split by what the outbox worker should do next.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection refused/reset, timeout, SMTP 4xx, HTTP 408/429/5xx,
    /// an unreadable answer).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (SMTP 5xx, HTTP 4xx, invalid address): stop retrying.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// True when retrying the same message later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

/// A way to deliver a rendered notice. Implementations must be safe to call concurrently:
/// the outbox worker sends several notices at once.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Short name for logs and metrics (`"file"`, `"smtp"`, `"sms"`, `"webhook"`).
    fn name(&self) -> &'static str;
    /// Delivers one message. `Ok` means the receiving side accepted it.
    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError>;
}

/// Refuses a message meant for another channel: retrying cannot change its channel.
fn expect_channel(message: &OutgoingMessage, channel: &str, transport: &str) -> Result<(), SendError> {
    if message.channel == channel {
        Ok(())
    } else {
        Err(SendError::Permanent(format!("{transport} transport delivers {channel} only")))
    }
}
