//! The telemetry storm: a core failure on the synthetic provider, every device reporting
//! offline within 60 s, then the restoration storm, through the detection engine in memory.
//!
//! Events are built beforehand (this measures the engine, not JSON), arrive a little out of
//! order (up to 200 ms late) with 1% sent twice, and the clock advances every 100 ms of event
//! time, as a server's tick would. Reported: events applied per second on one core; for
//! each node, how long after its crossing event the incident was opened, in wall time; and
//! resident memory per device.

use super::{Timer, group_thousands, row, rss_kib};
use crate::demo::synth;
use amends_core::book::CustomerStatus;
use amends_core::telemetry::{Detection, DetectionConfig, Detector, DeviceEvent, DeviceState};
use amends_recovery::book::LoadedBook;
use anyhow::{Context, Result};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// One tick of the server's clock, in event time.
const TICK: SignedDuration = SignedDuration::from_millis(100);
/// Devices still offline after the restoration storm, per thousand.
const STILL_OFFLINE_PER_MILLE: u32 = 5;

struct Arrival {
    arrives: Timestamp,
    event: DeviceEvent,
}

/// Returns the storm's events in arrival order, for [`log_storm`].
pub fn storm(customers: usize, start: Timestamp, write_events: Option<&Path>) -> Result<Vec<DeviceEvent>> {
    println!("\n[telemetry storm, one core, {} devices]", group_thousands(customers as u64));
    let rows = synth::generate(customers, 7, start);
    if let Some(path) = write_events {
        synth::write_csv(&rows, &path.with_extension("book"))?;
    }
    let book = LoadedBook::from_rows(rows)?;
    let arrivals = storm_events(&book, start);
    if let Some(path) = write_events {
        write_ndjson(&arrivals, path)?;
    }
    let before = rss_kib();
    let network = amends_sources::telemetry::network(&book);
    let mut detector = Detector::new(&book.topology, network, DetectionConfig::default());
    let at_rest = rss_kib();
    let mut out = Vec::new();
    let mut node_delays: Vec<Duration> = Vec::new();
    let mut counts = Counts::default();
    let mut next_tick = start;
    let mut timer = Timer::start();
    for a in &arrivals {
        while a.arrives >= next_tick {
            tick(&mut detector, &book, next_tick, &mut out, &mut node_delays, &mut counts);
            next_tick += TICK;
        }
        detector.offer(&a.event, a.arrives).context("a storm event")?;
    }
    let last = arrivals.last().map_or(start, |a| a.arrives);
    while next_tick <= last + SignedDuration::from_secs(120) {
        tick(&mut detector, &book, next_tick, &mut out, &mut node_delays, &mut counts);
        next_tick += TICK;
    }
    let took = timer.lap();
    let after = rss_kib();
    row("events applied (offer + advance)", took, arrivals.len(), "events/s; goal > 1M/s");
    let s = detector.stats();
    println!(
        "  {} duplicates ignored, {} confirmed outages, {} incidents opened ({} by merging), {} node crossings",
        group_thousands(s.duplicates),
        group_thousands(s.confirmed),
        group_thousands(counts.opened as u64),
        group_thousands(counts.merged as u64),
        group_thousands(node_delays.len() as u64),
    );
    println!(
        "  {} devices restored in an incident, {} still offline at resolution",
        group_thousands(counts.restored as u64),
        group_thousands(counts.still_offline as u64)
    );
    let open: Vec<_> =
        detector.incidents().iter().filter(|i| i.resolved_at.is_none() && i.merged_into.is_none()).collect();
    let open_elements: Vec<&str> =
        open.iter().flat_map(|i| i.elements.iter().map(|&e| book.topology.element(e).id.as_str())).collect();
    println!(
        "  {} incident(s) still open at the end, on {:?} (elements where that many devices stay offline)",
        open.len(),
        &open_elements[..open_elements.len().min(5)]
    );
    node_delays.sort_unstable();
    if let (Some(median), Some(max)) = (node_delays.get(node_delays.len() / 2), node_delays.last()) {
        println!(
            "  node incident after its crossing event: median {} µs, max {} µs of wall time \
             (goal < 1 s; plus the {} ms reorder window in event time)",
            median.as_micros(),
            max.as_micros(),
            DetectionConfig::default().reorder_window.as_millis()
        );
    }
    if let (Some(before), Some(at_rest), Some(after)) = (before, at_rest, after) {
        let per = |kib: u64| kib * 1024 / customers.max(1) as u64;
        println!(
            "  resident memory per device: {} B for the detector at rest, {} B after the storm \
             (intervals and incidents included)",
            per(at_rest.saturating_sub(before)),
            per(after.saturating_sub(before))
        );
    }
    Ok(arrivals.into_iter().map(|a| a.event).collect())
}

/// The durable half of taking the storm in a server: every event written to the device
/// event log in batches of the HTTP intake's largest (what an answer or a JetStream ack
/// waits for), against the pace a storm needs (2 million events within a minute or so).
pub async fn log_storm(store: &dyn amends_store::Store, storm: &[DeviceEvent]) -> Result<()> {
    if storm.is_empty() {
        return Ok(());
    }
    let batch = amends_sources::detection::intake::BATCH_EVENTS_MAX;
    let mut timer = Timer::start();
    for events in storm.chunks(batch) {
        let mut rows: Vec<amends_store::DeviceEventRow> =
            events.iter().map(amends_sources::detection::log_row).collect();
        store.append_device_events(&mut rows).await?;
    }
    row(
        &format!("device event log ({} per batch)", group_thousands(batch as u64)),
        timer.lap(),
        storm.len(),
        "events/s durable, as HTTP and NATS intake wait for",
    );
    Ok(())
}

#[derive(Default)]
struct Counts {
    opened: usize,
    merged: usize,
    restored: usize,
    still_offline: usize,
}

/// One tick: the clock moves; for every node incident opened in it, the wall time from the
/// tick's start (when the crossing event became due) to the detection.
fn tick(
    detector: &mut Detector,
    book: &LoadedBook,
    now: Timestamp,
    out: &mut Vec<Detection>,
    node_delays: &mut Vec<Duration>,
    counts: &mut Counts,
) {
    let started = Instant::now();
    detector.advance(now, out);
    let took = started.elapsed();
    for d in out.drain(..) {
        match d {
            Detection::Opened { element, .. } | Detection::Merged { element, .. } => {
                if matches!(d, Detection::Merged { .. }) {
                    counts.merged += 1;
                } else {
                    counts.opened += 1;
                }
                if book.topology.element(element).kind == "node" {
                    node_delays.push(took);
                }
            }
            Detection::Restored { .. } => counts.restored += 1,
            Detection::Resolved { still_offline, .. } => counts.still_offline += still_offline.len(),
            Detection::Narrowed { .. } | Detection::Affected { .. } => {}
        }
    }
}

/// Every device offline within 60 s (a third of them with a dying gasp), back 30 to 32
/// minutes later but for a few; arrival up to 200 ms after `at`, 1% sent twice; sorted by
/// arrival.
fn storm_events(book: &LoadedBook, start: Timestamp) -> Vec<Arrival> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut arrivals = Vec::with_capacity(book.customers.len() * 2 + book.customers.len() / 50);
    let ms = SignedDuration::from_millis;
    for c in &book.customers {
        let Some(device) = c.device_id.as_ref().filter(|_| c.status == CustomerStatus::Active) else {
            continue;
        };
        let down = start + ms(rng.random_range(0..60_000));
        let event = |state, at, last_gasp| DeviceEvent { device_id: device.clone(), state, at, last_gasp };
        let mut push = |event: DeviceEvent, rng: &mut StdRng| {
            let arrives = event.at + ms(rng.random_range(0..200));
            if rng.random_ratio(1, 100) {
                arrivals.push(Arrival { arrives: arrives + ms(50), event: event.clone() });
            }
            arrivals.push(Arrival { arrives, event });
        };
        push(event(DeviceState::Offline, down, rng.random_ratio(1, 3)), &mut rng);
        if !rng.random_ratio(STILL_OFFLINE_PER_MILLE, 1000) {
            let up = start + SignedDuration::from_mins(30) + ms(rng.random_range(0..120_000));
            push(event(DeviceState::Online, up, false), &mut rng);
        }
    }
    arrivals.sort_by_key(|a| a.arrives);
    arrivals
}

fn write_ndjson(arrivals: &[Arrival], path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for a in arrivals {
        writeln!(w, "{}", a.event)?;
    }
    w.flush()?;
    println!("  wrote {} events to {}", group_thousands(arrivals.len() as u64), path.display());
    Ok(())
}
