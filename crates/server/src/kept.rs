//! Customers' pages as last rendered, served again to a reload for up to a second.
//!
//! During a big outage a customer's open page refetches itself on every change of the
//! status (`live.js`), and customers reload; each rebuild costs the page's reads. A page
//! is kept, by its whole address (link, language, what the last form did), and served
//! again while all of these hold: it is younger than [`PAGE_REUSE`] by this process's clock
//! and by the engine's (a test's clock moved on, or a `--now` held still, rebuilds); what
//! the status pages show has not changed since (an update, a restoration: every kept page
//! is rebuilt); and no form of that link has changed anything since (each successful form
//! forgets its link's pages). A change made elsewhere (another process, the API) shows
//! within [`PAGE_REUSE`]. At most [`PAGES_KEPT_MAX`] pages are kept: when full, the oldest
//! half is dropped.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a rendered page is served again.
pub const PAGE_REUSE: Duration = Duration::from_secs(1);
/// Pages kept at most: about 10 KiB each, so some 40 MiB.
pub const PAGES_KEPT_MAX: usize = 4096;
/// The longest page body kept; a longer one is rendered each time.
const PAGE_BYTES_MAX: usize = 256 * 1024;

/// The pages kept, by address.
#[derive(Default)]
pub struct KeptPages {
    pages: Mutex<HashMap<String, Kept>>,
}

struct Kept {
    /// The link the page is for, to forget it when one of its forms changes something.
    token: String,
    built: Instant,
    engine_at: Timestamp,
    status_key: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl KeptPages {
    /// The page kept under `address`, if it may be served again now.
    pub fn get(&self, address: &str, engine_now: Timestamp, status_key: &str) -> Option<Response> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        let kept = pages.get(address)?;
        let fresh = kept.built.elapsed() < PAGE_REUSE
            && (kept.engine_at..kept.engine_at + PAGE_REUSE).contains(&engine_now)
            && kept.status_key == status_key;
        fresh.then(|| {
            let mut response = Response::new(Body::from(kept.body.clone()));
            *response.status_mut() = kept.status;
            *response.headers_mut() = kept.headers.clone();
            response
        })
    }

    /// Keeps `response` (a page of the link `token`) under `address`, and returns it.
    pub async fn keep(
        &self,
        address: String,
        token: &str,
        engine_now: Timestamp,
        status_key: String,
        response: Response,
    ) -> Response {
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, PAGE_BYTES_MAX).await else {
            return Response::from_parts(parts, Body::empty());
        };
        let kept = Kept {
            token: token.to_string(),
            built: Instant::now(),
            engine_at: engine_now,
            status_key,
            status: parts.status,
            headers: parts.headers.clone(),
            body: body.clone(),
        };
        {
            let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
            if pages.len() >= PAGES_KEPT_MAX {
                let mut ages: Vec<Instant> = pages.values().map(|k| k.built).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                pages.retain(|_, k| k.built > cut);
            }
            pages.insert(address, kept);
        }
        Response::from_parts(parts, Body::from(body))
    }

    /// Forgets every page of the link `token`: one of its forms changed something.
    pub fn forget(&self, token: &str) {
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, k| k.token != token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    async fn body(r: Response) -> String {
        String::from_utf8(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_page_is_served_again_only_while_nothing_it_shows_can_have_changed() {
        let kept = KeptPages::default();
        let t0 = at("2026-11-23T12:00:00Z");
        let page = (StatusCode::OK, "<p>page one</p>").into_response();
        let served = kept.keep("/my?token=a".into(), "a", t0, "s1".into(), page).await;
        assert_eq!(body(served).await, "<p>page one</p>", "the first answer is the page itself");
        let again = kept.get("/my?token=a", t0, "s1").expect("kept");
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(body(again).await, "<p>page one</p>");
        assert!(kept.get("/my?token=b", t0, "s1").is_none(), "another address");
        assert!(kept.get("/my?token=a", t0, "s2").is_none(), "the status changed");
        assert!(kept.get("/my?token=a", t0 + PAGE_REUSE, "s1").is_none(), "the engine's clock moved on");
        assert!(kept.get("/my?token=a", at("2026-11-23T11:59:59Z"), "s1").is_none(), "a clock set back");
        kept.forget("a");
        assert!(kept.get("/my?token=a", t0, "s1").is_none(), "a form of the link changed something");
    }

    #[tokio::test]
    async fn the_pages_kept_are_bounded() {
        let kept = KeptPages::default();
        let t0 = at("2026-11-23T12:00:00Z");
        for i in 0..PAGES_KEPT_MAX + 10 {
            let page = (StatusCode::OK, "x").into_response();
            kept.keep(format!("/my?token={i}"), &i.to_string(), t0, "s".into(), page).await;
        }
        let len = kept.pages.lock().unwrap().len();
        assert!(len <= PAGES_KEPT_MAX, "{len}");
        let last = format!("/my?token={}", PAGES_KEPT_MAX + 9);
        assert!(kept.get(&last, t0, "s").is_some(), "the newest stays");
    }
}
