//! A rate limit per client on the routes a stranger reaches without a token (a signed
//! link's pages: unsubscribe, survey answer, the customer's own page and its forms), with
//! governor's keyed GCRA limiter: past its burst a client waits, and is answered 429 with
//! `Retry-After` meanwhile. The health check
//! and the API description are left out: a load balancer polls the first, and neither
//! reads a customer's data.
//!
//! The client is the connection's peer address; behind a reverse proxy that is the proxy,
//! so `[http] client_address = "x-forwarded-for"` takes the last address of that header
//! instead (the one the proxy itself appended: earlier ones are the client's to forge).
//! A request with no address to go by (an in-process test) counts as one client.
//!
//! Bounds: [`CLIENTS_TRACKED_MAX`] clients are remembered before those whose limit has
//! fully recovered are forgotten, so a scan from many addresses cannot grow the table
//! without end (a forgotten client has nothing to forget: it would start full again).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Requests one client may make to the public routes per minute, on average.
pub const PUBLIC_REQUESTS_PER_MINUTE: u32 = 60;
/// Requests one client may make at once before the rate applies.
pub const PUBLIC_BURST: u32 = 20;
/// Clients remembered before the fully recovered ones are forgotten.
pub const CLIENTS_TRACKED_MAX: usize = 100_000;

/// `[http]` in the settings file.
///
/// ```toml
/// [http]
/// public_requests_per_minute = 60   # per client, on routes that need no token
/// public_burst = 20                 # at once, before the rate applies
/// client_address = "peer"           # or "x-forwarded-for" behind a reverse proxy
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub public_requests_per_minute: NonZeroU32,
    pub public_burst: NonZeroU32,
    pub client_address: ClientAddress,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            public_requests_per_minute: NonZeroU32::new(PUBLIC_REQUESTS_PER_MINUTE).expect("not zero"),
            public_burst: NonZeroU32::new(PUBLIC_BURST).expect("not zero"),
            client_address: ClientAddress::Peer,
        }
    }
}

/// Where a request's client address is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddress {
    /// The TCP peer.
    Peer,
    /// The last address of `X-Forwarded-For`, as a reverse proxy in front appends it; the
    /// peer when the header is missing or unreadable.
    XForwardedFor,
}

type Check = dyn Fn(IpAddr) -> Result<(), Duration> + Send + Sync;

/// One limit, shared by every request of a server.
#[derive(Clone)]
pub struct ClientRateLimit {
    check: Arc<Check>,
    address: ClientAddress,
}

impl ClientRateLimit {
    pub fn new(settings: HttpSettings) -> Self {
        Self::with_clock(settings, MonotonicClock)
    }

    /// On `clock`: a test's fake clock moves time without sleeping.
    pub fn with_clock<C>(settings: HttpSettings, clock: C) -> Self
    where
        C: Clock + Clone + Send + Sync + 'static,
        C::Instant: Send + Sync,
    {
        let quota = Quota::per_minute(settings.public_requests_per_minute).allow_burst(settings.public_burst);
        let limiter =
            RateLimiter::<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>::new(
                quota,
                DefaultKeyedStateStore::default(),
                clock.clone(),
            );
        let check = move |client: IpAddr| {
            if limiter.len() > CLIENTS_TRACKED_MAX {
                limiter.retain_recent();
            }
            limiter.check_key(&client).map_err(|not_until| not_until.wait_time_from(clock.now()))
        };
        ClientRateLimit { check: Arc::new(check), address: settings.client_address }
    }

    /// Whether `client` may go on now; how long to wait otherwise.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        (self.check)(client)
    }

    /// The client `request` counts against.
    fn client_of(&self, request: &Request) -> IpAddr {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = || {
            let value = request.headers().get("x-forwarded-for")?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        };
        let from_proxy = match self.address {
            ClientAddress::XForwardedFor => forwarded(),
            ClientAddress::Peer => None,
        };
        from_proxy.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// Middleware: lets the request through within its client's limit; 429 with
/// `Retry-After` (whole seconds, rounded up) past it.
pub async fn limit_per_client(
    State(limit): State<ClientRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    match limit.check(limit.client_of(&request)) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait),
    }
}

fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = super::error::ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from this address; try again in {seconds} s"),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn settings(per_minute: u32, burst: u32) -> HttpSettings {
        HttpSettings {
            public_requests_per_minute: NonZeroU32::new(per_minute).unwrap(),
            public_burst: NonZeroU32::new(burst).unwrap(),
            client_address: ClientAddress::Peer,
        }
    }

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let clock = FakeRelativeClock::default();
        let limit = ClientRateLimit::with_clock(settings(60, 3), clock.clone());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limit.check(a), Ok(()));
        }
        let wait = limit.check(a).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "one request a second comes back");
        assert_eq!(limit.check(b), Ok(()), "another client has its own limit");
        clock.advance(Duration::from_secs(1));
        assert_eq!(limit.check(a), Ok(()));
        assert!(limit.check(a).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let response = too_many_requests(Duration::from_millis(1_200));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(too_many_requests(Duration::ZERO).headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn behind_a_proxy_the_last_forwarded_address_is_the_client() {
        let limit = ClientRateLimit::new(HttpSettings {
            client_address: ClientAddress::XForwardedFor,
            ..HttpSettings::default()
        });
        let mut request = Request::new(axum::body::Body::empty());
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 443))));
        assert_eq!(limit.client_of(&request), "10.0.0.1".parse::<IpAddr>().unwrap());
        request.headers_mut().insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9"));
        assert_eq!(limit.client_of(&request), "203.0.113.9".parse::<IpAddr>().unwrap());
        let peer_only = ClientRateLimit::new(HttpSettings::default());
        assert_eq!(peer_only.client_of(&request), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
