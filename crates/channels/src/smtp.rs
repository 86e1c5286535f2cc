//! Email over SMTP: a pooled lettre client, with errors sorted into retry / give up.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as MimeAttachment, Body, Mailbox, Message, MessageBuilder, MultiPart, SinglePart,
};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::html::{html_from_text, language_tag};
use crate::{
    Attachment, AttachmentError, OutgoingMessage, SendError, Sent, Transport, check_attachments,
    expect_channel,
};

/// Carries the notice key in every email, so a reply or bounce can be traced to its notice.
const NOTICE_KEY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Amends-Notice-Key");
/// RFC 2369: where to unsubscribe. RFC 8058 asks for exactly one HTTPS URI for one-click.
const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
/// RFC 8058: the URI takes a POST with this body to unsubscribe without further clicks.
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");
/// RFC 3282: the language of the content, from the notice's locale.
const CONTENT_LANGUAGE: HeaderName = HeaderName::new_from_ascii_str("Content-Language");
/// The longest unsubscribe URL put in a header, in bytes: a URL cannot be folded, and
/// `List-Unsubscribe: <url>` must stay under RFC 5322's 998-character line limit.
const UNSUBSCRIBE_URL_MAX_BYTES: usize = 900;

/// How to reach the SMTP relay. Deserialisable so it can sit in the settings file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp://host:port` (plain, for local relays only), `smtp+starttls://host:port` or
    /// `smtps://host:port`. The port defaults to 25, 587 and 465 respectively.
    pub url: String,
    /// The sender, `"Name <addr>"` or `"addr"`.
    pub from: String,
    /// Limit on each SMTP command (connect, greeting, each reply).
    #[serde(default = "SmtpConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most SMTP connections open at once; sends beyond it wait for a free connection.
    /// The default matches the lane's default concurrency (32): lettre writes a message's
    /// closing dot in a separate small segment without TCP_NODELAY, so each message on a
    /// connection waits out the relay's delayed ACK (about 40 ms on Linux), and throughput
    /// is about 22 messages/s per connection. Relays commonly allow 50 per client.
    #[serde(default = "SmtpConfig::default_pool_max")]
    pub pool_max: u32,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl SmtpConfig {
    fn default_timeout_ms() -> u64 {
        30_000
    }

    fn default_pool_max() -> u32 {
        32
    }
}

/// Never prints the password, nor credentials someone put in the URL by mistake.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &redact_userinfo(&self.url))
            .field("from", &self.from)
            .field("timeout_ms", &self.timeout_ms)
            .field("pool_max", &self.pool_max)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A configuration that cannot work, naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("smtp url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("smtp from {from:?}: {reason}")]
    From { from: String, reason: String },
    #[error("smtp timeout_ms must be at least 1")]
    TimeoutMs,
    #[error("smtp pool_max must be at least 1")]
    PoolMax,
    #[error("smtp username and password must be set together")]
    Credentials,
    #[error(
        "smtp username/password need an encrypted connection (smtps:// or smtp+starttls://), \
         not {url:?}"
    )]
    CredentialsWithoutTls { url: String },
    #[error("smtp url {url:?}: TLS setup: {reason}")]
    Tls { url: String, reason: String },
    #[error("smtp transport must be created inside a tokio runtime (its pool spawns a task)")]
    NoRuntime,
}

/// How the connection is protected, from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Wrapper,
}

#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    security: Security,
    host: String,
    port: u16,
}

/// Sends email through a relay, reusing connections.
///
/// lettre's pool keeps at most `pool_max` idle connections but opens more when sends
/// overlap; the semaphore caps concurrent SMTP transactions at `pool_max`, so a burst of
/// notices waits here instead of tripping the relay's per-client connection limit. (lettre
/// hands a finished connection back to its pool in a spawned task, so for a moment one more
/// connection than `pool_max` may be open while that one is parked or closed.)
pub struct SmtpTransport {
    client: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    sessions: Semaphore,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("from", &self.from.to_string())
            .field("sessions_free", &self.sessions.available_permits())
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Checks the configuration and builds the pool. No connection is made until the first
    /// send. Must run inside a tokio runtime: the pool spawns its idle-connection reaper.
    pub fn new(config: SmtpConfig) -> Result<Self, SmtpConfigError> {
        tokio::runtime::Handle::try_current().map_err(|_| SmtpConfigError::NoRuntime)?;
        let endpoint = parse_url(&config.url)
            .map_err(|reason| SmtpConfigError::Url { url: redact_userinfo(&config.url), reason })?;
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| SmtpConfigError::From { from: config.from.clone(), reason: e.to_string() })?;
        if config.timeout_ms == 0 {
            return Err(SmtpConfigError::TimeoutMs);
        }
        if config.pool_max == 0 {
            return Err(SmtpConfigError::PoolMax);
        }
        let client = build_client(&config, &endpoint)?;
        let sessions = Semaphore::new(config.pool_max as usize);
        Ok(Self { client, from, sessions })
    }

    /// Closes the pooled connections politely (QUIT). Sends after this fail as transient.
    pub async fn shutdown(&self) {
        self.client.shutdown().await;
    }

    /// Builds the email for one notice: multipart/alternative with the text as written and
    /// its HTML rendering ([`html_from_text`]). The body goes in unchanged: the CRLF before
    /// each boundary belongs to the boundary, so a reader sees the text as written.
    ///
    /// With attachments, the root is multipart/mixed: that same multipart/alternative first,
    /// then one part per attachment in order (`Content-Disposition: attachment`). Without,
    /// the root is the multipart/alternative itself. Every failure here is permanent: the
    /// same input would fail the same way on every retry.
    fn build_email(&self, message: &OutgoingMessage) -> Result<Message, SendError> {
        expect_channel(message, "email", "smtp")?;
        check_attachments(&message.key, &message.attachments)?;
        let to = message.recipient.parse::<Mailbox>().map_err(|e| {
            SendError::Permanent(format!("invalid recipient address {:?}: {e}", message.recipient))
        })?;
        let message_id = message_id_for_key(&message.key, self.from.email.domain());
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_str())
            .date_now()
            .message_id(Some(message_id))
            .raw_header(HeaderValue::new(NOTICE_KEY_HEADER, message.key.clone()));
        let builder = with_language(builder, &message.locale);
        let builder = with_unsubscribe(builder, message.unsubscribe_url.as_deref())?;
        let html = html_from_text(&message.body, &message.locale);
        let alternative = MultiPart::alternative_plain_html(message.body.clone(), html);
        let root = if message.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for attachment in &message.attachments {
                mixed = mixed.singlepart(attachment_part(&message.key, attachment)?);
            }
            mixed
        };
        builder.multipart(root).map_err(|e| SendError::Permanent(format!("building email: {e}")))
    }
}

/// One attachment as a MIME part, always base64: lettre would pick 7bit for short ASCII
/// lines and then pass the bytes through as they are, so a bare LF or NUL would reach the
/// relay raw (and a relay may rewrite line endings). base64 keeps every byte.
/// (The file name and content type were checked by [`check_attachments`] first.)
fn attachment_part(key: &str, attachment: &Attachment) -> Result<SinglePart, SendError> {
    let content_type =
        ContentType::parse(&attachment.content_type).map_err(|e| AttachmentError::ContentType {
            key: key.to_owned(),
            filename: attachment.filename.clone(),
            content_type: attachment.content_type.clone(),
            reason: format!("is not a MIME type lettre accepts: {e}"),
        })?;
    // lettre refuses only 7bit or 8bit for content that does not fit them, never base64.
    let body = Body::new_with_encoding(attachment.content.clone(), ContentTransferEncoding::Base64).map_err(
        |_| {
            SendError::Permanent(format!(
                "notice {key}: attachment {:?}: no base64 body",
                attachment.filename
            ))
        },
    )?;
    Ok(MimeAttachment::new(attachment.filename.clone()).body(body, content_type))
}

/// `Content-Language` when the locale is a plausible language tag; otherwise none rather
/// than a wrong one.
fn with_language(builder: MessageBuilder, locale: &str) -> MessageBuilder {
    match language_tag(locale) {
        Some(tag) => builder.raw_header(HeaderValue::new(CONTENT_LANGUAGE, tag)),
        None => builder,
    }
}

/// The unsubscribe headers for a non-essential notice. With an `https` URL both RFC 8058
/// headers, so mail clients can offer one-click unsubscribe; with `http` (a development
/// setup) only `List-Unsubscribe`, since RFC 8058 requires HTTPS for one-click. A URL that
/// could break the header (spaces, controls, angle brackets, too long) is refused.
fn with_unsubscribe(builder: MessageBuilder, url: Option<&str>) -> Result<MessageBuilder, SendError> {
    let Some(url) = url else {
        return Ok(builder);
    };
    let safe = url.len() <= UNSUBSCRIBE_URL_MAX_BYTES
        && url.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    let https = url.starts_with("https://");
    if !safe || !(https || url.starts_with("http://")) {
        return Err(SendError::Permanent(format!("unsubscribe url {url:?} is not a plain http(s) URL")));
    }
    let builder = builder.raw_header(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")));
    if !https {
        return Ok(builder);
    }
    Ok(builder.raw_header(HeaderValue::new(LIST_UNSUBSCRIBE_POST, "List-Unsubscribe=One-Click".to_owned())))
}

#[async_trait::async_trait]
impl Transport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
        let email = self.build_email(message)?;
        let _session = self
            .sessions
            .acquire()
            .await
            .map_err(|_| SendError::Transient("smtp transport is closed".to_owned()))?;
        match self.client.send(email).await {
            Ok(response) => {
                tracing::debug!(key = %message.key, code = %response.code(), "smtp relay accepted notice");
                Ok(Sent::default())
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// 5xx replies are final; everything else (4xx, refused or reset connections, timeouts,
/// TLS trouble) may pass once the relay or the network recovers.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(format!("smtp: {error}"))
    } else {
        SendError::Transient(format!("smtp: {error}"))
    }
}

/// The Message-ID of a notice's email: `<sha256-hex-of-key@domain>`.
///
/// Derived from the key rather than random so every retry of one notice carries the same
/// Message-ID: when a relay accepted a message but the reply was lost and the worker sends
/// it again, mail systems and clients can recognise the duplicate.
pub fn message_id_for_key(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("<{hex}@{domain}>")
}

fn build_client(
    config: &SmtpConfig,
    endpoint: &Endpoint,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SmtpConfigError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&endpoint.host)
        .port(endpoint.port)
        .timeout(Some(Duration::from_millis(config.timeout_ms)))
        .pool_config(PoolConfig::new().max_size(config.pool_max))
        .tls(tls_for(config, endpoint)?);
    if let Some(credentials) = credentials(config, endpoint)? {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

fn tls_for(config: &SmtpConfig, endpoint: &Endpoint) -> Result<Tls, SmtpConfigError> {
    let parameters = || {
        TlsParameters::new(endpoint.host.clone())
            .map_err(|e| SmtpConfigError::Tls { url: redact_userinfo(&config.url), reason: e.to_string() })
    };
    Ok(match endpoint.security {
        Security::Plain => Tls::None,
        Security::StartTls => Tls::Required(parameters()?),
        Security::Wrapper => Tls::Wrapper(parameters()?),
    })
}

/// Both or neither; and never over a plain connection, where the password would cross the
/// network in clear.
fn credentials(config: &SmtpConfig, endpoint: &Endpoint) -> Result<Option<Credentials>, SmtpConfigError> {
    match (&config.username, &config.password) {
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(SmtpConfigError::Credentials),
        (Some(_), Some(_)) if endpoint.security == Security::Plain => {
            Err(SmtpConfigError::CredentialsWithoutTls { url: redact_userinfo(&config.url) })
        }
        (Some(user), Some(password)) => Ok(Some(Credentials::new(user.clone(), password.clone()))),
    }
}

/// Parses `scheme://host[:port][/]`; the error is the reason, for [`SmtpConfigError::Url`].
fn parse_url(url: &str) -> Result<Endpoint, String> {
    let (scheme, rest) = url.split_once("://").ok_or("expected scheme://host:port")?;
    let (security, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => (Security::Plain, 25),
        "smtp+starttls" => (Security::StartTls, 587),
        "smtps" => (Security::Wrapper, 465),
        other => {
            return Err(format!("unknown scheme {other:?}, expected smtp, smtp+starttls or smtps"));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err("credentials belong in username/password, not in the url".to_owned());
    }
    if authority.contains(['/', '?', '#']) {
        return Err("expected nothing after host:port".to_owned());
    }
    let (host, port) = split_host_port(authority, default_port)?;
    Ok(Endpoint { security, host, port })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("unclosed '[' in IPv6 host")?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("expected ':port' after ']'".to_owned()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("IPv6 hosts must be written in brackets: [::1]:25".to_owned());
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    let port = match port {
        None => default_port,
        Some(text) => parse_port(text)?,
    };
    Ok((host.to_owned(), port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {text:?} is not a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// Replaces `user:pass@` in a URL so errors and Debug output never show a secret.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(security: Security, host: &str, port: u16) -> Endpoint {
        Endpoint { security, host: host.to_owned(), port }
    }

    fn check_url(url: &str, expected: Result<Endpoint, &str>) {
        assert_eq!(parse_url(url), expected.map_err(str::to_owned), "{url}");
    }

    #[test]
    fn urls() {
        use Security::*;
        check_url("smtp://127.0.0.1:2525", Ok(endpoint(Plain, "127.0.0.1", 2525)));
        check_url("smtp://relay", Ok(endpoint(Plain, "relay", 25)));
        check_url("SMTP+STARTTLS://mx.example/", Ok(endpoint(StartTls, "mx.example", 587)));
        check_url("smtps://mx.example", Ok(endpoint(Wrapper, "mx.example", 465)));
        check_url("smtps://[::1]:4650", Ok(endpoint(Wrapper, "::1", 4650)));
        check_url("smtp://[::1]", Ok(endpoint(Plain, "::1", 25)));
        check_url("mx.example:25", Err("expected scheme://host:port"));
        check_url("http://mx.example", Err("unknown scheme \"http\", expected smtp, smtp+starttls or smtps"));
        check_url("smtps://u:p@mx.example", Err("credentials belong in username/password, not in the url"));
        check_url("smtp://mx.example:25/x", Err("expected nothing after host:port"));
        check_url("smtp://:25", Err("missing host"));
        check_url("smtp://mx:0", Err("port \"0\" is not a number from 1 to 65535"));
        check_url("smtp://mx:99999", Err("port \"99999\" is not a number from 1 to 65535"));
        check_url("smtp://::1:25", Err("IPv6 hosts must be written in brackets: [::1]:25"));
        check_url("smtp://[::1", Err("unclosed '[' in IPv6 host"));
        check_url("smtp://[::1]x", Err("expected ':port' after ']'"));
    }

    #[test]
    fn message_id_is_stable_and_hex() {
        // sha256("notice-1"), computed independently with sha256sum.
        assert_eq!(
            message_id_for_key("notice-1", "amends.example"),
            "<8a18f9957b0178dc2ce088610ec82a224ba1a4d3f984bba68750911d095fb9c9@amends.example>"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = SmtpConfig {
            url: "smtps://user:hunter2@mx.example".into(),
            from: "Amends <a@amends.example>".into(),
            timeout_ms: 1000,
            pool_max: 2,
            username: Some("user".into()),
            password: Some("s3cret".into()),
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: Some(\"<redacted>\")"), "{shown}");
        assert!(shown.contains("smtps://<redacted>@mx.example"), "{shown}");
    }

    fn config(url: &str) -> SmtpConfig {
        SmtpConfig {
            url: url.into(),
            from: "Amends <status@amends.example>".into(),
            timeout_ms: 1000,
            pool_max: 1,
            username: None,
            password: None,
        }
    }

    #[tokio::test]
    async fn headers_cannot_be_injected_through_subject_or_key() {
        let transport = SmtpTransport::new(config("smtp://127.0.0.1:2525")).expect("valid config");
        let message = OutgoingMessage {
            key: "k\r\nBcc: evil@example.com".into(),
            channel: "email".into(),
            recipient: "ana@example.com".into(),
            subject: "hi\r\nBcc: evil@example.com".into(),
            body: "body".into(),
            customer_id: "c".into(),
            incident_id: "i".into(),
            kind: "update".into(),
            locale: "en\r\nBcc: evil@example.com".into(),
            unsubscribe_url: None,
            attachments: Vec::new(),
        };
        let email = transport.build_email(&message).expect("buildable");
        let raw = String::from_utf8(email.formatted()).expect("ascii headers");
        assert!(!raw.contains("\nBcc:"), "{raw}");
        assert_eq!(email.envelope().to().len(), 1);
    }

    #[test]
    fn config_errors_name_the_field() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let _guard = runtime.enter();
        let check = |config: SmtpConfig, expected: &str| match SmtpTransport::new(config) {
            Ok(_) => panic!("expected error {expected}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        };
        check(
            SmtpConfig { from: "not an address".into(), ..config("smtp://h:25") },
            "smtp from \"not an address\": Invalid input",
        );
        check(SmtpConfig { timeout_ms: 0, ..config("smtp://h:25") }, "smtp timeout_ms must be at least 1");
        check(SmtpConfig { pool_max: 0, ..config("smtp://h:25") }, "smtp pool_max must be at least 1");
        check(
            SmtpConfig { username: Some("u".into()), ..config("smtps://h") },
            "smtp username and password must be set together",
        );
        check(
            SmtpConfig { username: Some("u".into()), password: Some("p".into()), ..config("smtp://h:25") },
            "smtp username/password need an encrypted connection (smtps:// or smtp+starttls://), \
             not \"smtp://h:25\"",
        );
        check(
            config("smtp://user:pw@h"),
            "smtp url \"smtp://<redacted>@h\": credentials belong in username/password, not in the url",
        );
    }

    #[test]
    fn new_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(SmtpTransport::new(config("smtp://h:25")), Err(SmtpConfigError::NoRuntime)));
    }
}
