//! What the HTTP channels (SMS gateways, webhooks) share: one way to build a client, to read
//! an answer within a bound, and to sort failures into retry / give up.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode, Url, redirect};

use crate::SendError;

/// How much of a response body is read, in bytes. Gateways answer with a few hundred bytes
/// of JSON; anything longer is cut here (and then usually fails to parse), so a receiver
/// answering with an endless body costs at most this much memory per send.
pub const RESPONSE_BODY_MAX_BYTES: usize = 64 * 1024;

/// How much of a response body is quoted in an error message, in characters.
const QUOTED_CHARS_MAX: usize = 200;

/// A client for one channel: the whole exchange (connect, send, headers, body) is bounded
/// by `timeout_ms`; redirects are not followed (a POST redirected elsewhere would either
/// turn into a GET or carry signed content to a URL nobody configured: configure the final
/// URL instead); TLS is rustls on ring with the Mozilla roots, like the SMTP transport.
pub(crate) fn client(timeout_ms: u64) -> Result<Client, String> {
    client_builder()?
        .timeout(Duration::from_millis(timeout_ms))
        .redirect(redirect::Policy::none())
        .user_agent(concat!("amends/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// A reqwest builder with TLS on ring. reqwest is built without a default crypto provider
/// (its default would pull in aws-lc-rs, a second crypto stack), so every client in the
/// process, the tests' too, starts here.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    Ok(Client::builder().tls_backend_preconfigured(tls_config()?))
}

fn tls_config() -> Result<rustls::ClientConfig, String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Parses and checks an `http://` or `https://` URL; the error is the reason.
pub(crate) fn parse_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials belong in their own settings, not in the url".to_owned());
    }
    Ok(parsed)
}

/// The URL without its query, for messages (a query may carry a token).
pub(crate) fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// A configured URL for errors and Debug output: the query may carry a key, so it is hidden.
pub(crate) fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

/// Reads at most [`RESPONSE_BODY_MAX_BYTES`] of the body; the rest is left unread and the
/// connection dropped with the response. The request timeout still applies to this read.
pub(crate) async fn read_bounded(mut response: Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = RESPONSE_BODY_MAX_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == RESPONSE_BODY_MAX_BYTES {
            break;
        }
    }
    Ok(body)
}

/// A request that got no answer: timeouts, refused or reset connections, a body cut off.
/// All may pass once the receiver or the network recovers.
pub(crate) fn transport_error(what: &str, error: &reqwest::Error) -> SendError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    SendError::Transient(format!("{what} {kind}: {}", error_chain(error)))
}

/// The error with its sources, which carry the useful part ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sorts a non-2xx status: 408 (timeout), 429 (slow down) and 5xx may pass later; other
/// 4xx, and 1xx/3xx (not expected, redirects are not followed), will not.
pub(crate) fn status_error(what: &str, status: StatusCode, body: &[u8]) -> SendError {
    let reason = format!("{what} answered {status}: {}", quote(body));
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        SendError::Transient(reason)
    } else {
        SendError::Permanent(reason)
    }
}

/// The start of a body for an error message: lossy UTF-8, control characters replaced, at
/// most [`QUOTED_CHARS_MAX`] characters.
pub(crate) fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String =
        text.chars().take(QUOTED_CHARS_MAX).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().nth(QUOTED_CHARS_MAX).is_some() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted() {
        for code in [408, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).expect("valid");
            assert!(status_error("x", status, b"").is_transient(), "{code}");
        }
        for code in [301, 400, 401, 403, 404, 410, 413, 422] {
            let status = StatusCode::from_u16(code).expect("valid");
            assert!(!status_error("x", status, b"").is_transient(), "{code}");
        }
    }

    #[test]
    fn quotes_are_bounded_and_printable() {
        assert_eq!(quote(b"a\nb"), "\"a b\"");
        let long = "x".repeat(500);
        assert_eq!(quote(long.as_bytes()), format!("{:?}", format!("{}…", "x".repeat(200))));
        assert_eq!(quote(&[0xff, b'a']), "\"\u{fffd}a\"");
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("https://h.example/hook").is_ok());
        assert_eq!(parse_url("ftp://h.example").unwrap_err(), "scheme \"ftp\" is not http or https");
        assert_eq!(
            parse_url("https://u:p@h.example").unwrap_err(),
            "credentials belong in their own settings, not in the url"
        );
        assert!(parse_url("not a url").is_err());
        let url = parse_url("https://h.example/p?token=s3cret").expect("valid");
        assert_eq!(shown(&url), "https://h.example/p");
    }

    #[test]
    fn a_client_builds_without_a_process_wide_crypto_provider() {
        assert!(client(1_000).is_ok());
    }
}
