//! The bounds on every request: body size and time.
//!
//! Body limits are enforced here rather than by axum's `DefaultBodyLimit` for one reason:
//! a server that answers 413 after reading part of a body and then closes the connection
//! makes the kernel reset it, and a client still sending often never sees the 413. So an
//! oversized body is read and dropped up to [`BODY_DRAIN_BYTES_MAX`] more, then answered.

use super::error::ApiError;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;
use std::time::Duration;

/// Largest request body of every route but the import: declarations and updates are a
/// few hundred bytes, so 1 MiB is generous and still bounds what a client can make the
/// server buffer.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Largest body of the public unsubscribe routes: a one-click POST is
/// `List-Unsubscribe=One-Click`, so 4 KiB leaves room and no more.
pub const UNSUBSCRIBE_BODY_BYTES_MAX: usize = 4 * 1024;
/// Largest body of `POST /v1/import`: the three CSV files as JSON strings. 256 MiB holds
/// about two million customers; larger books go through `amends import --dir`, which
/// streams from disk.
pub const IMPORT_BODY_BYTES_MAX: usize = 256 * 1024 * 1024;
/// How much of an oversized body is read and dropped, past the limit, so that the
/// client can finish sending and read the 413. Beyond it the connection is just closed.
pub const BODY_DRAIN_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest a request may take before it is answered 503 and its work dropped. Each of the
/// engine's writes is one transaction, so a dropped request leaves either nothing or a
/// whole write behind (a declaration that committed just before the deadline stands).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an import may take: parsing, checking and writing millions of rows. An import
/// that passes it is answered 503 but still runs to its end, all or nothing.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Middleware: answers 503 in the API's error shape when the request takes longer than
/// `limit` (the state it is built with).
pub async fn enforce_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than its limit of {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Middleware: reads the body, up to `limit` bytes (the state it is built with), before
/// the handler sees it; answers 413 when it is larger.
pub async fn limit_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = content_length(req.headers());
    if declared.is_some_and(|n| n > limit.saturating_add(BODY_DRAIN_BYTES_MAX)) {
        // Too large to drain: refuse before reading. A client that sent
        // `Expect: 100-continue` has not sent the body and reads this cleanly.
        return ApiError::too_large(limit).into_response();
    }
    let (parts, body) = req.into_parts();
    match read_capped(body, limit, declared).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => e.into_response(),
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The whole body if it is at most `limit` bytes; else [`ApiError::too_large`], after
/// reading and dropping up to [`BODY_DRAIN_BYTES_MAX`] more.
async fn read_capped(mut body: Body, limit: usize, declared: Option<usize>) -> Result<Vec<u8>, ApiError> {
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut total: usize = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("reading the request body failed: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else { continue };
        total = total.saturating_add(data.len());
        if total <= limit {
            kept.extend_from_slice(&data);
        } else if total > limit.saturating_add(BODY_DRAIN_BYTES_MAX) {
            break;
        } else if !kept.is_empty() {
            kept = Vec::new();
        }
    }
    if total > limit { Err(ApiError::too_large(limit)) } else { Ok(kept) }
}

/// The page size a request asks for: `default` when it gives none. A `limit` of 0 or over
/// `max` is refused (422) rather than quietly changed, so a client never takes a short page
/// for the end of the list.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => {
            let message = format!("limit: {n} is not between 1 and {max}");
            Err(ApiError::invalid(message.clone(), vec![message]))
        }
    }
}
