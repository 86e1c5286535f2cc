//! Detection in the server: device events in (HTTP batches, a NATS JetStream consumer),
//! incidents, impacts and notices out.
//!
//! One task owns the [`Detector`]. Sources hand it batches through an [`Intake`] (a bounded
//! channel); it offers each event to the detector, writes the accepted ones to the device
//! event log (the durable part: a source acknowledges an event only after this), and
//! answers. Every [`TICK`] it advances the detector to the clock and records what it
//! detected through [`record`].
//!
//! The detector lives in memory only, and is a function of the device event log: on
//! start, and whenever the book changes, it is rebuilt by replaying the whole retained log
//! in event order, exactly as `amends replay` runs a file. Its clock follows the events
//! (each batch moves it to the batch's latest `at`), so a backlog (a broker catching up
//! after a restart) applies in event order as it would have live; only when no event has
//! come for [`IDLE_BEFORE_WALL_CLOCK`] and no source holds a backlog does the clock move on
//! with the wall clock, so hold-downs expire when nothing more is said. Every record is
//! written under a deterministic key (the incident's source key is its element and the
//! instant it crossed its threshold, both read off the log; one impact per customer and
//! incident; notices keyed by customer, incident and kind), so replaying what was already
//! recorded changes nothing.

pub mod intake;
pub mod nats;
mod record;

pub use intake::{BatchReport, Intake, IntakeError, Rejection};
pub use record::source_key;

use crate::book::LoadedBook;
use crate::http::AppState;
use crate::recovery::{Engine, EngineError};
use crate::telemetry::{DetectionSettings, network};
use amends_core::telemetry::{Detection, DetectionConfig, Detector, DeviceEvent, DeviceState};
use amends_store::{DeviceEventRow, StoreError};
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often the detector is advanced to the clock: the agenda's bucket width.
pub const TICK: Duration = Duration::from_millis(100);
/// Batches waiting for the detection task; a source waits when it is full.
pub const INTAKE_QUEUE_BATCHES: usize = 64;
/// Logged events read per page when the detector is rebuilt.
pub const REPLAY_PAGE_ROWS: u32 = 50_000;
/// Writes (a device joining or leaving an incident, a merge, a resolution) detection may
/// have decided and not yet applied; over it, detection takes no more events until they
/// are applied.
pub const WRITES_QUEUED_MAX: usize = 4_000_000;
/// How long detection waits with no event (and no source behind) before its clock moves
/// on with the wall clock rather than with the events.
pub const IDLE_BEFORE_WALL_CLOCK: Duration = Duration::from_secs(2);

/// What the detection task needs besides the engine.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub detection: DetectionConfig,
    /// Hold detected incidents this long for an operator's confirmation; `None`: tell at once.
    pub confirm_within: Option<SignedDuration>,
    pub log_retention: SignedDuration,
}

impl ServiceConfig {
    pub fn from_settings(settings: &DetectionSettings) -> anyhow::Result<ServiceConfig> {
        Ok(ServiceConfig {
            detection: settings.to_config()?,
            confirm_within: settings.confirm_within()?,
            log_retention: settings.event_log_retention()?,
        })
    }
}

/// The detector with the store incident of each of its incidents.
pub(crate) struct Service {
    engine: Arc<Engine>,
    config: ServiceConfig,
    book: Arc<LoadedBook>,
    detector: Detector,
    /// Per detector incident: its incident in the store, once recorded.
    ids: Vec<Option<String>>,
    detections: Vec<Detection>,
    /// The customers' side of what was detected, waiting to be applied, in order.
    writes: std::collections::VecDeque<record::Write>,
    /// When the last batch came (or the service started).
    quiet_since: tokio::time::Instant,
    /// The last batch's source said it holds more.
    behind: bool,
}

/// Starts the detection task; it stops when `stopped` turns true. The returned [`Intake`]
/// is how sources hand it events.
pub fn start(
    state: AppState,
    config: ServiceConfig,
    stopped: watch::Receiver<bool>,
) -> (Intake, tokio::task::JoinHandle<()>) {
    let (intake, batches) = Intake::channel(INTAKE_QUEUE_BATCHES);
    let task = tokio::spawn(run(state, config, batches, stopped));
    (intake, task)
}

async fn run(
    state: AppState,
    config: ServiceConfig,
    mut batches: mpsc::Receiver<intake::Submission>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut service = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if service.is_none() {
            service = rebuilt(&state, &config).await;
        }
        let writing = service.as_ref().is_some_and(Service::has_writes);
        // Over the bound, events wait (and so do their sources) until the writes catch up.
        let taking = service.as_ref().is_none_or(|s| s.writes.len() < WRITES_QUEUED_MAX);
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tick.tick() => {
                if let Some(s) = service.as_mut()
                    && let Err(error) = s.tick(&state).await
                {
                    tracing::error!(%error, "recording detections failed; rebuilding from the event log");
                    service = None;
                }
            }
            () = std::future::ready(()), if writing => {
                if let Some(s) = service.as_mut() {
                    match s.apply_writes(record::WRITE_SLICE).await {
                        Ok(()) => state.wake_worker(),
                        Err(error) => {
                            tracing::error!(%error, "writing detections failed; rebuilding from the event log");
                            service = None;
                        }
                    }
                }
            }
            Some(submission) = batches.recv(), if taking => {
                match service.as_mut() {
                    Some(s) => s.take(submission).await,
                    None => submission.refuse("detection is starting; try again"),
                }
            }
        }
    }
}

/// A service rebuilt from the log, or `None` (logged) if the store cannot be read now.
async fn rebuilt(state: &AppState, config: &ServiceConfig) -> Option<Service> {
    match Service::rebuild(state.engine.clone(), config.clone()).await {
        Ok(service) => {
            state.wake_worker();
            Some(service)
        }
        Err(error) => {
            tracing::error!(%error, "rebuilding detection from the event log failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

impl Service {
    /// A detector over the current book, fed the whole retained log in event order, with
    /// what it detects recorded again (a no-op for what was recorded before). Its clock is
    /// left at the last logged event: a source's backlog goes on from there.
    async fn rebuild(engine: Arc<Engine>, config: ServiceConfig) -> Result<Service, EngineError> {
        let book = engine.book().await?;
        let detector = Detector::new(&book.topology, network(&book), config.detection.clone());
        let mut service = Service {
            engine,
            config,
            book,
            detector,
            ids: Vec::new(),
            detections: Vec::new(),
            writes: std::collections::VecDeque::new(),
            quiet_since: tokio::time::Instant::now(),
            behind: false,
        };
        let now = service.engine.clock.now();
        let from = now - service.config.log_retention;
        let pruned = service.engine.store.prune_device_events(from).await?;
        tracing::info!(%from, pruned, "rebuilding detection from the device event log");
        let mut after: Option<DeviceEventRow> = None;
        let mut replayed = 0u64;
        loop {
            let page = service.engine.store.device_events(from, after.as_ref(), REPLAY_PAGE_ROWS).await?;
            let Some(last) = page.last().cloned() else { break };
            for row in &page {
                let event = event_of(row)?;
                if service.detector.offer(&event, now).is_ok() {
                    service.detector.advance(event.at, &mut service.detections);
                }
            }
            replayed += page.len() as u64;
            service.record().await?;
            service.apply_writes(Duration::MAX).await?;
            after = Some(last);
        }
        tracing::info!(replayed, incidents = service.detector.incidents().len(), "detection rebuilt");
        Ok(service)
    }

    /// Rebuilds if the book changed (an import by any process): devices and customers
    /// are the book's.
    async fn follow_book(&mut self) -> Result<(), EngineError> {
        if !Arc::ptr_eq(&self.engine.book().await?, &self.book) {
            tracing::info!("the book changed; rebuilding detection");
            *self = Service::rebuild(self.engine.clone(), self.config.clone()).await?;
        }
        Ok(())
    }

    /// Moves the clock on with the wall clock once the sources are quiet, and records.
    async fn tick(&mut self, state: &AppState) -> Result<(), EngineError> {
        self.follow_book().await?;
        if !self.behind && self.quiet_since.elapsed() >= IDLE_BEFORE_WALL_CLOCK {
            self.detector.advance(self.engine.clock.now_precise(), &mut self.detections);
        }
        if !self.detections.is_empty() {
            self.record().await?;
            state.wake_worker();
        }
        Ok(())
    }

    /// Offers a batch to the detector, logs what it took, and answers the source.
    async fn take(&mut self, mut submission: intake::Submission) {
        if let Err(error) = self.follow_book().await {
            tracing::error!(%error, "reading the book failed");
            return submission.refuse("detection cannot read the book now; try again");
        }
        let now = self.engine.clock.now();
        let rejected = std::mem::take(&mut submission.rejected);
        let mut report = BatchReport { rejected, ..BatchReport::default() };
        let events = std::mem::take(&mut submission.events);
        let mut log = Vec::with_capacity(events.len());
        let mut latest = None;
        for (index, event) in events {
            match self.detector.offer(&event, now) {
                Ok(()) => {
                    latest = latest.max(Some(event.at));
                    log.push(log_row(&event));
                }
                Err(refusal) => report.rejected.push(Rejection { index, reason: refusal.to_string() }),
            }
        }
        // The clock follows the events: what is a reorder window older than the latest
        // applies now, in event order, whatever the wall clock says.
        if let Some(at) = latest {
            self.detector.advance(at, &mut self.detections);
        }
        self.behind = submission.behind;
        self.quiet_since = tokio::time::Instant::now();
        report.accepted = log.len() as u64;
        // Applied in memory, not yet in the log nor acknowledged: the worst place to die.
        crate::failpoint::pass(crate::failpoint::DETECTION_APPLIED, report.accepted);
        let logged = self.engine.store.append_device_events(&mut log).await;
        submission.answer(logged.map(|new| {
            report.duplicates = report.accepted - new;
            report.rejected.sort_by_key(|r| r.index);
            report
        }));
    }
}

/// An event as the device event log keeps it.
pub fn log_row(event: &DeviceEvent) -> DeviceEventRow {
    DeviceEventRow {
        device_id: event.device_id.clone(),
        at: event.at,
        state: event.state.as_str().into(),
        reason: event.last_gasp.then(|| "dying_gasp".into()),
    }
}

/// A logged event back as the detector takes it; a state the log should never hold is
/// `Corrupt`, never read as offline.
fn event_of(row: &DeviceEventRow) -> Result<DeviceEvent, StoreError> {
    let state = match row.state.as_str() {
        "online" => DeviceState::Online,
        "offline" => DeviceState::Offline,
        other => {
            return Err(StoreError::Corrupt {
                table: "device_events",
                reason: format!("device {}: state {other:?} at {}", row.device_id, row.at),
            });
        }
    };
    Ok(DeviceEvent { device_id: row.device_id.clone(), state, at: row.at, last_gasp: row.reason.is_some() })
}
