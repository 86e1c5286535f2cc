//! Delivery channels for amends notices.
//!
//! A notice is rendered and stored in the outbox before anything here runs; this crate only
//! moves one rendered [`OutgoingMessage`] to the outside world and says whether a failure is
//! worth retrying ([`SendError::Transient`]) or final ([`SendError::Permanent`]). The outbox
//! worker decides *when* to retry with [`Backoff`].
//!
//! - [`FileTransport`]: appends readable blocks to a file or stdout (development, dry runs).
//! - [`SmtpTransport`]: email over a pooled SMTP connection (lettre).

mod backoff;
mod file;
mod smtp;

pub use backoff::{Backoff, jitter_seed};
pub use file::FileTransport;
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpTransport, message_id_for_key};

use serde::{Deserialize, Serialize};

/// One rendered notice ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// The notice key: stable across retries, so receivers and logs can match duplicates.
    pub key: String,
    /// `"email"` or `"sms"`.
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Why a send failed, split by what the outbox worker should do next.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection refused/reset, timeout, SMTP 4xx).
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (SMTP 5xx, invalid address): stop retrying.
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
    /// Short name for logs and metrics (`"file"`, `"smtp"`).
    fn name(&self) -> &'static str;
    /// Delivers one message. `Ok` means the receiving side accepted it.
    async fn send(&self, message: &OutgoingMessage) -> Result<(), SendError>;
}
