//! Customers' pages as last rendered, served again to a reload for up to a second.
//!
//! During a big outage a customer's open page refetches itself on every change of the
//! status (`live.js`), and customers reload; each rebuild costs the page's reads. A page
//! is kept, by its whole address (link, language, what the last form did), and served
//! again while all of these hold: it is younger than [`PAGE_REUSE`] by this process's clock
//! and by the engine's (a test's clock moved on, or a `--now` held still, rebuilds); what
//! the status pages show has not changed since (an update, a restoration: every kept page
//! is rebuilt); and no form of that link has changed anything since (each successful form
//! forgets its link's pages, and a change of preferences through the API the customer's).
//! A change made elsewhere (another process) shows within [`PAGE_REUSE`]. A page built
//! while a form changed something is not kept (it may show the page from before). Only
//! addresses with a known language and form outcome are kept, so one link cannot fill the
//! store with made-up addresses. At most [`PAGES_KEPT_MAX`] pages of at most
//! [`PAGE_BYTES_MAX`] are kept (a customer's page is about 10 KiB, so some 40 MiB; 256 MiB
//! at the very most): when full, the older half is dropped.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a rendered page is served again.
pub const PAGE_REUSE: Duration = Duration::from_secs(1);
/// Pages kept at most.
pub const PAGES_KEPT_MAX: usize = 4096;
/// The longest page body kept.
pub const PAGE_BYTES_MAX: usize = 64 * 1024;

/// The pages kept, by address.
#[derive(Default)]
pub struct KeptPages {
    pages: Mutex<HashMap<String, Kept>>,
    /// Moves on every forgetting: a page whose build began before it is not kept.
    forgotten: std::sync::atomic::AtomicU64,
}

struct Kept {
    /// The link the page is for, to forget it when one of its forms changes something.
    token: String,
    /// The customer it shows, to forget it when their preferences change through the API.
    customer: String,
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

    /// What to pass to [`KeptPages::keep`] for a page about to be built.
    pub fn before_building(&self) -> u64 {
        self.forgotten.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps `response` (a page of the link `token`, showing `customer`, whose build began
    /// at `began`, from [`KeptPages::before_building`]) under `address`, and returns it.
    #[allow(clippy::too_many_arguments)]
    pub async fn keep(
        &self,
        address: String,
        token: &str,
        customer: &str,
        began: u64,
        engine_now: Timestamp,
        status_key: String,
        response: Response,
    ) -> Response {
        if self.before_building() != began {
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, PAGE_BYTES_MAX).await {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "a customer's page over {PAGE_BYTES_MAX} bytes");
                return crate::pages::failed(crate::words::Lang::En);
            }
        };
        let kept = Kept {
            token: token.to_string(),
            customer: customer.to_string(),
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
        self.forgotten.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, k| k.token != token);
    }

    /// Forgets every page showing `customer`, whatever its link.
    pub fn forget_customer(&self, customer: &str) {
        self.forgotten.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, k| k.customer != customer);
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
        let served =
            kept.keep("/my?token=a".into(), "a", "C1", kept.before_building(), t0, "s1".into(), page).await;
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
        let page = (StatusCode::OK, "<p>page one</p>").into_response();
        kept.keep("/my?token=a".into(), "a", "C1", kept.before_building(), t0, "s1".into(), page).await;
        kept.forget_customer("C2");
        assert!(kept.get("/my?token=a", t0, "s1").is_some(), "another customer's change");
        kept.forget_customer("C1");
        assert!(kept.get("/my?token=a", t0, "s1").is_none(), "their preferences changed through the API");
        // Built while a form changed something: served, not kept.
        let began = kept.before_building();
        kept.forget("b");
        let page = (StatusCode::OK, "<p>before</p>").into_response();
        let served = kept.keep("/my?token=a".into(), "a", "C1", began, t0, "s1".into(), page).await;
        assert_eq!(body(served).await, "<p>before</p>");
        assert!(kept.get("/my?token=a", t0, "s1").is_none(), "a page from before the change is not kept");
    }

    #[tokio::test]
    async fn the_pages_kept_are_bounded() {
        let kept = KeptPages::default();
        let t0 = at("2026-11-23T12:00:00Z");
        for i in 0..PAGES_KEPT_MAX + 10 {
            let page = (StatusCode::OK, "x").into_response();
            kept.keep(
                format!("/my?token={i}"),
                &i.to_string(),
                "C",
                kept.before_building(),
                t0,
                "s".into(),
                page,
            )
            .await;
        }
        let len = kept.pages.lock().unwrap().len();
        assert!(len <= PAGES_KEPT_MAX, "{len}");
        let last = format!("/my?token={}", PAGES_KEPT_MAX + 9);
        assert!(kept.get(&last, t0, "s").is_some(), "the newest stays");
    }
}
