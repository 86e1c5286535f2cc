//! The server path of a telemetry storm: a real `amends serve` (in this process, over a
//! fresh SQLite file, on the wall clock) consumes device events from a real NATS JetStream
//! server, published by another task at the events' own pace: every device of the
//! synthetic provider offline within 60 s, a third with a dying gasp.
//!
//! Reported: how long after the event that takes the whole network over its threshold
//! (found beforehand by running the same events through the detector in memory) the
//! network-wide incident is visible over HTTP (`GET /v1/incidents?open=true`, goal < 1 s),
//! and how long until every affected customer's acknowledgement is durably queued.

use super::{Timer, row};
use crate::book::LoadedBook;
use crate::clock::SystemClock;
use crate::demo::synth;
use crate::detection::ServiceConfig;
use crate::detection::nats::NatsSource;
use crate::import::ImportInput;
use crate::recovery::{Engine, EngineConfig};
use amends_core::book::CustomerStatus;
use amends_core::money::group_thousands;
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_core::telemetry::{Detection, DetectionConfig, Detector, DeviceEvent, DeviceState};
use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Seconds from the end of the import to the storm's first event: building the events and
/// finding the crossing in memory, and the server starting, take place meanwhile.
const STORM_LEAD_SECONDS: i64 = 15;
/// Events per NATS message.
const EVENTS_PER_MESSAGE: usize = 200;
/// How long the bench waits for the network-wide incident, and for the acknowledgements.
const WAIT_MAX: Duration = Duration::from_secs(600);
/// How often the bench looks for the network-wide incident over HTTP.
const POLL: Duration = Duration::from_millis(20);

pub async fn run(dir: &Path, customers: usize, nats_url: &str) -> Result<()> {
    println!(
        "\n[telemetry storm through amends serve: NATS JetStream in, SQLite, {} customers]",
        group_thousands(customers as u64)
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join("detection.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let book_dir = dir.join("detection-book");
    synth::write_csv(&synth::generate(customers, 7, Timestamp::now()), &book_dir)?;
    let store = amends_store::open(&path.display().to_string()).await?;
    let engine = Arc::new(Engine::new(
        store,
        Arc::new(SystemClock),
        Templates::builtin(),
        Policy::builtin(),
        EngineConfig::default(),
    ));
    let mut t = Timer::start();
    engine.import(ImportInput::from_dir(&book_dir)?, &|_| {}).await?;
    let book = engine.book().await?;
    row("import CSV", t.lap(), book.customers.len(), "");

    // The storm starts a few seconds from now, once the events are built and the server is up.
    let start =
        crate::clock::truncate_to_second(Timestamp::now()) + SignedDuration::from_secs(STORM_LEAD_SECONDS);
    let events = storm(&book, start);
    let (crossing, top, affected) = crossing(&book, &events)?;
    println!(
        "  {} offline events; {} ({}) crosses its threshold at +{:.3} s, {} customers affected",
        group_thousands(events.len() as u64),
        book.topology.element(top).id,
        book.topology.element(top).kind,
        crossing.duration_since(start).as_secs_f64(),
        group_thousands(affected)
    );
    if start <= Timestamp::now() {
        bail!("setting up took longer than the lead of the storm; run again with fewer customers");
    }

    let tag = &crate::tokens::generate()[7..19];
    let source = NatsSource::new(
        nats_url,
        Some(&format!("amends-bench.{tag}.events")),
        Some(&format!("AMENDS_BENCH_{tag}")),
        Some(&format!("amends-bench-{tag}")),
    );
    let server = Server::start(engine.clone(), &source, dir).await?;
    let publisher = tokio::spawn(publish(source.clone(), events));
    let top_id = book.topology.element(top).id.clone();
    let visible = server.wait_for_incident_on(&top_id).await?;
    let delay = visible.duration_since(crossing);
    println!(
        "  network-wide incident visible over HTTP {:.3} s after its crossing event (goal < 1 s)",
        delay.as_secs_f64()
    );
    let acknowledged = server.wait_for_acknowledgements(affected).await?;
    println!(
        "  every affected customer's acknowledgement durably queued {:.3} s after the crossing event",
        acknowledged.duration_since(crossing).as_secs_f64()
    );
    publisher.await.context("the publisher")??;
    server.stop().await?;
    let client = async_nats::connect(nats_url).await?;
    let _ = async_nats::jetstream::new(client).delete_stream(&source.stream).await;
    Ok(())
}

/// Every active device offline within 60 s of `start`, a third with a dying gasp, in the
/// order of their `at`.
fn storm(book: &LoadedBook, start: Timestamp) -> Vec<DeviceEvent> {
    let mut rng = StdRng::seed_from_u64(17);
    let mut events: Vec<DeviceEvent> = book
        .customers
        .iter()
        .filter(|c| c.status == CustomerStatus::Active)
        .filter_map(|c| c.device_id.clone())
        .map(|device_id| DeviceEvent {
            device_id,
            state: DeviceState::Offline,
            at: start + SignedDuration::from_millis(rng.random_range(0..60_000)),
            last_gasp: rng.random_ratio(1, 3),
        })
        .collect();
    events.sort_by_key(|e| e.at);
    events
}

/// The instant the widest incident of the storm opens or widens to its element, that
/// element, and the customers affected in it once the storm has confirmed.
fn crossing(
    book: &LoadedBook,
    events: &[DeviceEvent],
) -> Result<(Timestamp, amends_core::topology::ElementIdx, u64)> {
    let mut detector =
        Detector::new(&book.topology, crate::telemetry::network(book), DetectionConfig::default());
    let mut out = Vec::new();
    for e in events {
        detector.offer(e, e.at)?;
        detector.advance(e.at, &mut out);
    }
    let end = events.last().map_or(Timestamp::UNIX_EPOCH, |e| e.at) + SignedDuration::from_mins(5);
    detector.advance(end, &mut out);
    let widest = out
        .iter()
        .filter_map(|d| match d {
            Detection::Opened { incident, element, at, .. }
            | Detection::Merged { incident, element, at, .. } => Some((*incident, *element, *at)),
            _ => None,
        })
        .min_by_key(|&(_, element, at)| (std::cmp::Reverse(detector.element_counts(element).1), at));
    let (incident, element, at) = widest.context("the storm opened no incident")?;
    Ok((at, element, detector.customers_affected(incident)))
}

/// Publishes `events` on the source's subject, each message when its first event is due.
async fn publish(source: NatsSource, events: Vec<DeviceEvent>) -> Result<()> {
    let client = async_nats::connect(&source.url).await?;
    let js = async_nats::jetstream::new(client);
    for chunk in events.chunks(EVENTS_PER_MESSAGE) {
        let due = chunk[0].at.duration_since(Timestamp::now());
        if due.is_positive() {
            tokio::time::sleep(due.unsigned_abs()).await;
        }
        let text: String = chunk.iter().map(|e| format!("{e}\n")).collect();
        js.publish(source.subject.clone(), text.into()).await?.await?;
    }
    Ok(())
}

struct Server {
    base: String,
    token: String,
    http: reqwest::Client,
    engine: Arc<Engine>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Server {
    async fn start(engine: Arc<Engine>, source: &NatsSource, dir: &Path) -> Result<Server> {
        let token = crate::tokens::create(
            engine.store.as_ref(),
            crate::tokens::Scope::Read,
            "bench",
            Timestamp::now(),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let detection = crate::http::DetectionStart {
            config: ServiceConfig::from_settings(&Default::default())?,
            nats: Some(source.clone()),
        };
        let state = crate::http::AppState::new(engine.clone()).with_detection(detection);
        let file = Arc::new(amends_channels::FileTransport::new(dir.join("detection-outbox.txt")));
        let lanes = vec![crate::deliver::Lane::new("email", file)];
        let dispatcher = crate::deliver::Dispatcher::new(engine.store.clone(), engine.clock.clone(), lanes);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(crate::http::serve_listener(
            listener,
            state,
            dispatcher,
            Duration::from_secs(1),
            shutdown,
        ));
        let http = amends_channels::http_client_builder().map_err(anyhow::Error::msg)?.no_proxy().build()?;
        Ok(Server { base, token, http, engine, stop, task })
    }

    /// When an open incident covering `element` first shows in `GET /v1/incidents?open=true`.
    async fn wait_for_incident_on(&self, element: &str) -> Result<Timestamp> {
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        while tokio::time::Instant::now() < deadline {
            let r = self
                .http
                .get(format!("{}/v1/incidents?open=true", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?;
            let incidents: Vec<serde_json::Value> = r.json().await?;
            let seen = Timestamp::now();
            if incidents
                .iter()
                .any(|i| i["element_ids"].as_array().is_some_and(|e| e.iter().any(|e| e == element)))
            {
                return Ok(seen);
            }
            tokio::time::sleep(POLL).await;
        }
        bail!("no incident on {element} within {} s", WAIT_MAX.as_secs())
    }

    /// When `expected` acknowledgements are in the outbox.
    async fn wait_for_acknowledgements(&self, expected: u64) -> Result<Timestamp> {
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        let mut seen = 0;
        while tokio::time::Instant::now() < deadline {
            let counts = self.engine.store.notice_counts(None).await?;
            seen = counts.iter().filter(|c| c.kind == "acknowledgement").map(|c| c.count).sum();
            if seen >= expected {
                return Ok(Timestamp::now());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{seen} of {expected} acknowledgements within {} s", WAIT_MAX.as_secs())
    }

    async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the server")?
    }
}
