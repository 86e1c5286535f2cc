//! The customer's web under a storm (issue 20): `amends serve`'s router in this process on
//! SQLite, and a load generator on 127.0.0.1 in the same run. Each page's route is driven
//! while an incident affecting every customer fans out: a new one for each route, declared
//! as the route starts, its acknowledgements rendered and queued by a tick running
//! meanwhile. The table says how long each fan-out took, so a route is known to have been
//! measured in a storm for that long. Last, customers' pages are asked for once more with
//! no storm, to tell what a page costs by itself from what the storm takes.
//!
//! Each route is driven for a fixed time by `connections` keep-alive connections of a lean
//! generator ([`load`]), each sending its next request as soon as the last one is answered.
//! The floor is `/health`, measured the same way in the same run, alone and in a storm of
//! its own: what the generator and the router cost with no work behind them, and what is
//! left of the 2 cores while a fan-out runs. Figures: requests per second and the latency
//! percentiles (p50, p99, p999) of every request sent.

use super::{everyone_out, load};
use amends_core::money::group_thousands;
use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Customers whose page links the generator cycles through.
const PAGE_LINKS: usize = 1_000;

/// What one route measured.
struct Measured {
    requests: usize,
    took: Duration,
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
    failures: usize,
}

impl Measured {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[at]
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

pub async fn run(dir: &Path, customers: usize, seconds: u64, connections: usize) -> Result<()> {
    println!(
        "\n[the customer's web: amends serve on SQLite, {} customers in one incident fanning out; \
         a load generator on 127.0.0.1, {connections} connections, {seconds} s a route]",
        group_thousands(customers as u64)
    );
    let engine = super::served_engine(dir, "web", customers).await?;
    let book = engine.book().await?;
    let links = engine.page_links().await?;
    let now = Timestamp::now();
    let path = |c: &amends_core::book::Customer| page_path(&links, &c.id, now);
    let pages: Vec<String> = book
        .customers
        .iter()
        .step_by((book.customers.len() / PAGE_LINKS).max(1))
        .take(PAGE_LINKS)
        .map(path)
        .collect();
    // Every customer's page, each connection taking every n-th: no page is asked for twice
    // within a run, so none is served from the pages kept.
    let everyone: Vec<String> = book.customers.iter().map(path).collect();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let state = one_client_state(&engine)?;
    let state_for_alone = state.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(amends_server::serve_api(listener, state, async move {
        let _ = stopped.await;
    }));
    let health = ["/health".to_string()];
    let status_page = ["/status".to_string()];
    let route = |paths, etag| drive(addr, paths, etag, connections, seconds);
    let floor = route(&health, None).await;
    let floor_in_a_storm = in_a_storm(&engine, route(&health, None)).await?;
    let status = in_a_storm(&engine, route(&status_page, None)).await?;
    let http = amends_channels::http_client_builder().map_err(anyhow::Error::msg)?.no_proxy().build()?;
    let etag = http.get(format!("{base}/status")).send().await?.headers().get("etag").cloned();
    let etag = etag.and_then(|e| e.to_str().ok().map(str::to_string));
    let revalidated = in_a_storm(&engine, route(&status_page, etag)).await?;
    let mine = in_a_storm(&engine, route(&pages, None)).await?;
    let cold = in_a_storm(&engine, route(&everyone, None)).await?;
    // The same pages once the storms are over: what a page costs by itself, with as many
    // notices as the last route's (one more each storm), so the two differ by the storm.
    let calm = (route(&everyone, None).await, None);

    println!(
        "  {:<44} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "route", "requests", "req/s", "of floor", "p50 ms", "p99 ms", "p999 ms", "storm s", "failed"
    );
    let floor = (floor, None);
    // Each route against the floor measured as it was: in a storm, or not.
    let of_floor = |m: &Measured, storm: Option<Storm>| {
        let base = if storm.is_some() { &floor_in_a_storm.0 } else { &floor.0 };
        format!("{:.2}", m.per_second() / base.per_second().max(1e-9))
    };
    for (name, (m, storm)) in [
        ("GET /health (the floor, no storm)", &floor),
        ("GET /health in a storm (the floor there)", &floor_in_a_storm),
        ("GET /status (the page, rendered)", &status),
        ("GET /status with If-None-Match (304)", &revalidated),
        ("GET /my, 1,000 pages asked again and again", &mine),
        ("GET /my, each time another customer", &cold),
        ("GET /my, another customer each time, no storm", &calm),
    ] {
        println!(
            "  {name:<44} {:>10} {:>10} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>8}",
            group_thousands(m.requests as u64),
            group_thousands(m.per_second() as u64),
            of_floor(m, *storm),
            m.percentile(0.50).as_secs_f64() * 1e3,
            m.percentile(0.99).as_secs_f64() * 1e3,
            m.percentile(0.999).as_secs_f64() * 1e3,
            storm.map_or("-".to_string(), |s: Storm| format!("{:.1}", s.took.as_secs_f64())),
            m.failures,
        );
    }
    let queued = [&floor_in_a_storm, &status, &revalidated, &mine, &cold]
        .iter()
        .filter_map(|(_, s)| s.map(|s| s.queued))
        .max();
    println!(
        "  each storm queued {} acknowledgements (storm s: how long the fan-out beside the route took; \
         of floor: req/s against /health measured the same way, in a storm or not); goal: the pages at 20,000 req/s or more with p99 under 10 ms on 2 cores",
        group_thousands(queued.unwrap_or(0))
    );
    report_built_alone(&state_for_alone, &everyone).await?;
    let _ = stop.send(());
    server.await??;
    if [&floor, &floor_in_a_storm, &status, &revalidated, &mine, &cold, &calm]
        .iter()
        .any(|(m, _)| m.failures > 0)
    {
        bail!("some requests failed: see the table");
    }
    Ok(())
}

/// The address of `customer`'s page, signed at `now`, as asked of the server.
fn page_path(links: &amends_recovery::optout::PageLinks, customer: &str, now: Timestamp) -> String {
    links.link(customer, now).split_once("/my?").map(|(_, q)| format!("/my?{q}")).unwrap_or_default()
}

/// Fan-outs before [`pages_alone`] builds pages: each customer then has about ten notices,
/// which a page lists (their reads and lines are most of what it costs).
const STORMS_BEFORE_PAGES_ALONE: usize = 6;

/// `--web-pages-alone`: only customers' pages built one after another in this process,
/// after [`STORMS_BEFORE_PAGES_ALONE`] fan-outs, with no load generator and no server
/// listening: for counting what a page costs in instructions (`valgrind --tool=callgrind
/// --toggle-collect='*built_alone*'`), which a shared machine does not move.
pub async fn pages_alone(dir: &Path, customers: usize) -> Result<()> {
    println!(
        "\n[a customer's page built alone: amends serve's router on SQLite, {} customers, after {STORMS_BEFORE_PAGES_ALONE} fan-outs]",
        group_thousands(customers as u64)
    );
    let engine = super::served_engine(dir, "web", customers).await?;
    for _ in 0..STORMS_BEFORE_PAGES_ALONE {
        let idle =
            async { Measured { requests: 0, took: Duration::ZERO, latencies: Vec::new(), failures: 0 } };
        in_a_storm(&engine, idle).await?;
    }
    let book = engine.book().await?;
    let links = engine.page_links().await?;
    let now = Timestamp::now();
    let everyone: Vec<String> = book.customers.iter().map(|c| page_path(&links, &c.id, now)).collect();
    report_built_alone(&one_client_state(&engine)?, &everyone).await
}

/// The server's state for one client (the generator, or this process asking its router):
/// the per-client limit of the link pages is lifted.
fn one_client_state(engine: &Arc<amends_recovery::Engine>) -> Result<amends_server::AppState> {
    let unlimited = NonZeroU32::new(u32::MAX).context("a limit")?;
    let rate = amends_server::rate::ClientRateLimit::new(amends_server::rate::HttpSettings {
        public_requests_per_minute: unlimited,
        public_burst: unlimited,
        ..Default::default()
    });
    Ok(amends_server::AppState::new(engine.clone()).with_public_rate(rate))
}

/// Builds the pages of `paths` alone ([`built_alone`]) in [`BUILT_ALONE_PASSES`] passes
/// over other customers each, and prints the passes' medians and the best pass.
async fn report_built_alone(state: &amends_server::AppState, paths: &[String]) -> Result<()> {
    // Each pass builds other customers' pages: none is served as kept.
    let mut passes = Vec::with_capacity(BUILT_ALONE_PASSES);
    for pass in paths.chunks(BUILT_ALONE).take(BUILT_ALONE_PASSES) {
        passes.push(built_alone(state, pass).await?);
    }
    let p50 = |m: &Measured| m.percentile(0.50).as_secs_f64() * 1e6;
    let medians: Vec<String> = passes.iter().map(|m| format!("{:.1}", p50(m))).collect();
    if let Some(best) = passes.iter().min_by(|a, b| p50(a).total_cmp(&p50(b))) {
        println!(
            "  a customer's page built alone, in this process (no HTTP, no storm): {} pass(es) of \
             {} customers one after another, median µs a page {}; the best pass: p50 {:.1}, p99 {:.1}, mean {:.1}",
            passes.len(),
            group_thousands(best.latencies.len() as u64),
            medians.join(", "),
            p50(best),
            best.percentile(0.99).as_secs_f64() * 1e6,
            best.took.as_secs_f64() * 1e6 / best.latencies.len().max(1) as f64,
        );
    }
    Ok(())
}

/// Customers whose pages one pass of [`built_alone`] builds.
const BUILT_ALONE: usize = 5_000;
/// Passes of [`built_alone`], each over other customers. The machine is shared and a pass
/// can be slowed by others' work: the best pass says what a page costs.
const BUILT_ALONE_PASSES: usize = 3;

/// What a customer's page costs by itself: the pages of `paths` (each another customer),
/// asked of the router in this process one after another (no connection, nothing else
/// running), each read to its end.
async fn built_alone(state: &amends_server::AppState, paths: &[String]) -> Result<Measured> {
    use tower_service::Service;
    let mut router = amends_server::router(state.clone());
    let mut latencies = Vec::with_capacity(BUILT_ALONE);
    let mut failures = 0;
    let started = Instant::now();
    for path in paths {
        let request = axum::http::Request::get(path.as_str()).body(axum::body::Body::empty())?;
        let sent = Instant::now();
        let response = router.call(request).await?;
        let ok = response.status().is_success();
        axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        latencies.push(sent.elapsed());
        failures += usize::from(!ok);
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    if failures > 0 {
        bail!("{failures} of the pages built alone failed");
    }
    Ok(Measured { requests: latencies.len(), took, latencies, failures })
}

/// A fan-out beside a route: how long it took, and the acknowledgements it queued.
#[derive(Clone, Copy)]
struct Storm {
    took: Duration,
    queued: u64,
}

/// `route` measured while a new incident affecting every customer fans out: declared now,
/// its acknowledgements rendered and queued by a tick running meanwhile.
async fn in_a_storm(
    engine: &Arc<amends_recovery::Engine>,
    route: impl std::future::Future<Output = Measured>,
) -> Result<(Measured, Option<Storm>)> {
    engine.declare(everyone_out(Timestamp::now())).await?;
    let fanout = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let report = engine.tick().await;
            (t.elapsed(), report)
        })
    };
    let measured = route.await;
    let (took, report) = fanout.await?;
    Ok((measured, Some(Storm { took, queued: report?.fanout.notices_queued })))
}

/// Sends GETs of `paths` (in turn) for `seconds` over `connections` concurrent loops, each
/// on its own keep-alive connection, sending its next request when the last is answered.
/// A connection that fails is opened again; the request counts as failed.
async fn drive(
    addr: SocketAddr,
    paths: &[String],
    etag: Option<String>,
    connections: usize,
    seconds: u64,
) -> Measured {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let paths = Arc::new(paths.to_vec());
    let mut loops = Vec::with_capacity(connections);
    for n in 0..connections {
        let (paths, etag) = (paths.clone(), etag.clone());
        loops.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut i = n;
            let mut connection = None;
            while Instant::now() < until {
                let sent = Instant::now();
                let answered = match connection.take() {
                    Some(c) => Ok(c),
                    None => load::Connection::open(addr).await,
                };
                let ok = match answered {
                    Ok(mut c) => match c.get(&paths[i % paths.len()], etag.as_deref()).await {
                        Ok(status) => {
                            connection = Some(c);
                            (200..300).contains(&status) || status == 304
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                failures += usize::from(!ok);
                i += connections;
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for l in loops {
        if let Ok((mine, failed)) = l.await {
            latencies.extend(mine);
            failures += failed;
        }
    }
    let took = started.elapsed();
    latencies.sort_unstable();
    Measured { requests: latencies.len(), took, latencies, failures }
}
