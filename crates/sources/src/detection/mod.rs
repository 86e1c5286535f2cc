//! Detection in the server: device events in (HTTP batches, a NATS JetStream consumer),
//! incidents, impacts and notices out.
//!
//! Sources hand batches of events to one task through an [`Intake`] (a bounded channel). It
//! checks each event against the book and the clock ([`admit`]), writes the admitted ones
//! to the device event log (the durable part: a source acknowledges an event only after
//! this), and answers.
//!
//! Every server sharing a store and a consumer logs what it is handed, but only one
//! detects: the holder of the store's [`DETECTION_LOCK`], which the operating system (a
//! SQLite file lock) or PostgreSQL (a session's advisory lock) lets go when its holder dies,
//! so another server takes over within [`LOCK_CHECK`]. The holder owns the [`Detector`]: it
//! follows the log by place (the order events were written, whoever wrote them), offers
//! each new event to the detector, and every [`TICK`] records what it detected through
//! [`record`]. The others only log, and try the lock.
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
mod write;

pub use intake::{BatchReport, Intake, IntakeError, Rejection};

use crate::telemetry::{DetectionSettings, network};
use amends_core::telemetry::{
    Detection, DetectionConfig, Detector, DeviceEvent, DeviceState, Network, admit,
};
use amends_recovery::book::LoadedBook;
use amends_recovery::{Engine, EngineError};
use amends_store::{DeviceEventRow, Hold, StoreError};
use jiff::SignedDuration;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// How often the detector is advanced to the clock: the agenda's bucket width.
pub const TICK: Duration = Duration::from_millis(100);
/// Batches waiting for the detection task; a source waits when it is full.
pub const INTAKE_QUEUE_BATCHES: usize = 64;
/// Logged events read per page when the detector is rebuilt.
pub const REPLAY_PAGE_ROWS: u32 = 50_000;
/// Logged events read per page as the detector follows the log.
pub const FOLLOW_PAGE_ROWS: u32 = 20_000;
/// Pages the detector reads from the log at one go before it records and answers again.
pub const FOLLOW_PAGES_AT_ONCE: usize = 4;
/// The store lock whose holder detects for every server sharing the store.
pub const DETECTION_LOCK: &str = "detection";
/// How often a server that does not detect tries the lock, and the one that does checks
/// that it still holds it (a PostgreSQL session can be lost).
pub const LOCK_CHECK: Duration = Duration::from_secs(1);
pub use write::{SLICE_IMPACTS_MAX, WRITES_QUEUED_MAX};
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

/// What every server checks an event against before logging it: the book's devices.
struct Gate {
    book: Arc<LoadedBook>,
    network: Arc<Network>,
}

/// The detector with the store incident of each of its incidents: alive only while this
/// server holds the detection lock.
pub(crate) struct Service {
    engine: Arc<Engine>,
    config: ServiceConfig,
    book: Arc<LoadedBook>,
    detector: Detector,
    /// Per detector incident: its incident in the store, once recorded.
    ids: Vec<Option<String>>,
    /// Open incidents an older amends opened under another key, by element, until an
    /// opening on that element takes them over.
    legacy: std::collections::HashMap<String, String>,
    /// Per detector incident: the element whose area its recorded cause names.
    tops: Vec<amends_core::topology::ElementIdx>,
    detections: Vec<Detection>,
    /// The customers' side of what was detected, on its way to the writer task.
    writes: write::Writes,
    /// The place in the event log the detector has taken events up to.
    followed: i64,
    /// The last page read from the log was full: more is logged than taken.
    log_behind: bool,
    /// When the last event came (or the service started).
    quiet_since: tokio::time::Instant,
    /// The last batch this server's sources handed in said they hold more.
    source_behind: bool,
    /// The detection lock, and when it was last checked.
    hold: Hold,
    hold_checked: tokio::time::Instant,
}

/// What detection needs of the server it runs in: the engine, and the worker to wake when
/// it has recorded something.
#[derive(Clone)]
pub struct Host {
    pub engine: Arc<Engine>,
    /// Wakes the server's worker (the notify its API calls wake it with).
    pub wake: Arc<Notify>,
}

impl Host {
    /// Asks the worker for a pass now.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }
}

/// Starts the detection task; it stops when `stopped` turns true. The returned [`Intake`]
/// is how sources hand it events.
pub fn start(
    host: Host,
    config: ServiceConfig,
    stopped: watch::Receiver<bool>,
) -> (Intake, tokio::task::JoinHandle<()>) {
    let (intake, batches, detecting) = Intake::channel(INTAKE_QUEUE_BATCHES);
    let task = Task { host, config, gate: None, leading: None, lock_tried: None, detecting };
    (intake, tokio::spawn(task.run(batches, stopped)))
}

/// The detection task's state: the gate every server keeps, the detector only the lock
/// holder keeps.
struct Task {
    host: Host,
    config: ServiceConfig,
    gate: Option<Gate>,
    leading: Option<Service>,
    lock_tried: Option<tokio::time::Instant>,
    /// Tells this server's sources whether it detects.
    detecting: watch::Sender<bool>,
}

impl Task {
    async fn run(
        mut self,
        mut batches: mpsc::Receiver<intake::Submission>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            // Over the bound, events wait (and so do their sources) until the writes catch up.
            let taking = self.leading.as_ref().is_none_or(|s| s.writes.has_room());
            tokio::select! {
                _ = stopped.changed() => {
                    if let Some(service) = self.stop_leading() {
                        service.hold.release().await;
                    }
                    return;
                }
                _ = tick.tick() => self.tick().await,
                Some(submission) = batches.recv(), if taking => self.take(submission).await,
            }
        }
    }

    /// Keeps the gate on the current book (an import by any process changes it) and, when
    /// this server detects, rebuilds the detector over it.
    async fn follow_book(&mut self) -> Result<(), EngineError> {
        let book = self.host.engine.book().await?;
        if self.gate.as_ref().is_some_and(|g| Arc::ptr_eq(&g.book, &book)) {
            return Ok(());
        }
        let network = Arc::new(network(&book));
        self.gate = Some(Gate { book, network });
        // Still the detecting server: its sources go on (their batches wait) meanwhile.
        if let Some(service) = self.leading.take() {
            tracing::info!("the book changed; rebuilding detection");
            self.lead(service.hold).await;
        }
        Ok(())
    }

    /// This server no longer detects (its sources stop); the service is returned, with the
    /// lock, to be released or rebuilt.
    fn stop_leading(&mut self) -> Option<Service> {
        self.detecting.send_replace(false);
        self.leading.take()
    }

    /// Becomes the detecting server with `hold`: rebuilds the detector from the log.
    async fn lead(&mut self, hold: Hold) {
        let Some(gate) = self.gate.as_ref() else { return };
        match Service::rebuild(&self.host, self.config.clone(), gate, hold).await {
            Ok(service) => {
                self.leading = Some(service);
                self.detecting.send_replace(true);
                self.host.wake_worker();
            }
            // The hold went with the failed rebuild: another server may take over.
            Err(error) => {
                self.detecting.send_replace(false);
                tracing::error!(%error, "rebuilding detection from the event log failed; retrying");
            }
        }
    }

    /// Takes the detection lock if no server holds it (tried every [`LOCK_CHECK`]).
    async fn try_lead(&mut self) {
        if self.lock_tried.is_some_and(|t| t.elapsed() < LOCK_CHECK) {
            return;
        }
        self.lock_tried = Some(tokio::time::Instant::now());
        match self.host.engine.store().try_hold(DETECTION_LOCK).await {
            Ok(Some(hold)) => {
                tracing::info!("this server detects: it holds the detection lock");
                self.lead(hold).await;
            }
            Ok(None) => tracing::debug!("another server detects"),
            Err(error) => tracing::error!(%error, "trying the detection lock failed"),
        }
    }

    /// After a step of the detecting server: on failure, it stops detecting (letting go of
    /// the lock) and takes it again from the log. Returns whether the step went well.
    fn settle(&mut self, outcome: Result<(), EngineError>, what: &str) -> bool {
        let Err(error) = outcome else { return true };
        tracing::error!(%error, "{what} failed; rebuilding from the event log");
        // Dropped, the service lets go of the lock.
        self.stop_leading();
        self.lock_tried = None;
        false
    }

    async fn tick(&mut self) {
        if let Err(error) = self.follow_book().await {
            return tracing::error!(%error, "reading the book failed");
        }
        let Some(service) = self.leading.as_mut() else { return self.try_lead().await };
        if !service.still_holds().await {
            tracing::error!("the detection lock was lost; another server detects now");
            self.stop_leading();
            return;
        }
        let ticked = service.tick().await;
        let recorded = matches!(ticked, Ok(true));
        if self.settle(ticked.map(|_| ()), "recording detections") && recorded {
            self.host.wake_worker();
        }
    }

    /// Checks a batch against the book and the clock, logs what passes, answers the
    /// source, and (when this server detects) takes the new events in.
    async fn take(&mut self, mut submission: intake::Submission) {
        if let Err(error) = self.follow_book().await {
            tracing::error!(%error, "reading the book failed");
            return submission.refuse("detection cannot read the book now; try again");
        }
        let Some(gate) = self.gate.as_ref() else {
            return submission.refuse("detection is starting; try again");
        };
        let now = self.host.engine.clock().now();
        let rejected = std::mem::take(&mut submission.rejected);
        let mut report = BatchReport { rejected, ..BatchReport::default() };
        let mut log = Vec::with_capacity(submission.events.len());
        for (index, event) in std::mem::take(&mut submission.events) {
            match admit(&gate.network, &self.config.detection, &event, now) {
                Ok(_) => log.push(log_row(&event)),
                Err(refusal) => report.rejected.push(Rejection { index, reason: refusal.to_string() }),
            }
        }
        report.accepted = log.len() as u64;
        let logged = self.host.engine.store().append_device_events(&mut log).await;
        // In the log, not yet acknowledged nor detected from: the worst place to die.
        amends_recovery::failpoint::pass(amends_recovery::failpoint::DETECTION_LOGGED, report.accepted);
        let behind = submission.behind;
        submission.answer(logged.map(|new| {
            report.duplicates = report.accepted - new;
            report.rejected.sort_by_key(|r| r.index);
            report
        }));
        if let Some(service) = self.leading.as_mut() {
            service.source_behind = behind;
            service.quiet_since = tokio::time::Instant::now();
            // What the batch made detectable is recorded now, not at the next tick: the
            // incident a storm's crossing opens shows that much sooner.
            let recorded = match service.follow_log().await {
                Ok(()) => service.record_detected().await,
                Err(error) => Err(error),
            };
            let woke = matches!(recorded, Ok(true));
            if self.settle(recorded.map(|_| ()), "following the event log") && woke {
                self.host.wake_worker();
            }
        }
    }
}

impl Service {
    /// A detector over the current book, fed the whole retained log in event order, with
    /// what it detects recorded again (a no-op for what was recorded before). Its clock is
    /// left at the last logged event: a source's backlog goes on from there; it then
    /// follows the log from the place it had reached when the rebuild began (what was
    /// logged during the rebuild comes again, as a duplicate the detector ignores).
    async fn rebuild(
        host: &Host,
        config: ServiceConfig,
        gate: &Gate,
        hold: Hold,
    ) -> Result<Service, EngineError> {
        let engine = host.engine.clone();
        let followed = engine.store().device_events_end().await?;
        let legacy = record::legacy_sources(&engine).await?;
        let detector = Detector::new(&gate.book.topology, gate.network.clone(), config.detection.clone());
        let mut service = Service {
            engine,
            config,
            book: gate.book.clone(),
            detector,
            ids: Vec::new(),
            legacy,
            tops: Vec::new(),
            detections: Vec::new(),
            writes: write::Writes::start(host, gate.book.clone(), gate.network.clone()),
            followed,
            log_behind: false,
            quiet_since: tokio::time::Instant::now(),
            source_behind: false,
            hold,
            hold_checked: tokio::time::Instant::now(),
        };
        let now = service.engine.clock().now();
        let from = now - service.config.log_retention;
        let pruned = service.engine.store().prune_device_events(from).await?;
        tracing::info!(%from, pruned, "rebuilding detection from the device event log");
        let mut after: Option<DeviceEventRow> = None;
        let mut replayed = 0u64;
        loop {
            let page = service.engine.store().device_events(from, after.as_ref(), REPLAY_PAGE_ROWS).await?;
            let Some(last) = page.last().cloned() else { break };
            for row in &page {
                let event = event_of(row)?;
                if service.detector.offer(&event, now).is_ok() {
                    service.detector.advance(event.at, &mut service.detections);
                }
            }
            replayed += page.len() as u64;
            service.record().await?;
            after = Some(last);
        }
        tracing::info!(replayed, incidents = service.detector.incidents().len(), "detection rebuilt");
        Ok(service)
    }

    /// Records what has been detected, if anything; returns whether there was.
    async fn record_detected(&mut self) -> Result<bool, EngineError> {
        if self.detections.is_empty() {
            return Ok(false);
        }
        self.record().await?;
        Ok(true)
    }

    /// Whether this server still holds the detection lock (checked every [`LOCK_CHECK`]).
    async fn still_holds(&mut self) -> bool {
        if self.hold_checked.elapsed() < LOCK_CHECK {
            return true;
        }
        self.hold_checked = tokio::time::Instant::now();
        self.hold.still_held().await
    }

    /// Takes in what the log holds past the place followed, in the order it was written,
    /// a few pages at a time. The clock follows the events: what is a reorder window older
    /// than the latest applies now, in event order, whatever the wall clock says.
    async fn follow_log(&mut self) -> Result<(), EngineError> {
        let now = self.engine.clock().now();
        let mut latest = None;
        self.log_behind = false;
        for _ in 0..FOLLOW_PAGES_AT_ONCE {
            let page =
                self.engine.store().device_events_placed_after(self.followed, FOLLOW_PAGE_ROWS).await?;
            for (place, row) in &page {
                let event = event_of(row)?;
                // Admitted when logged; refused now only if the book changed since.
                if self.detector.offer(&event, now).is_ok() {
                    latest = latest.max(Some(event.at));
                }
                self.followed = *place;
            }
            amends_recovery::failpoint::pass(
                amends_recovery::failpoint::DETECTION_APPLIED,
                page.len() as u64,
            );
            self.log_behind = page.len() == FOLLOW_PAGE_ROWS as usize;
            if !self.log_behind {
                break;
            }
        }
        if let Some(at) = latest {
            self.quiet_since = tokio::time::Instant::now();
            self.detector.advance(at, &mut self.detections);
        }
        Ok(())
    }

    /// Follows the log (other servers write to it too), moves the clock on with the wall
    /// clock once every source is quiet, and records. Returns whether it recorded anything.
    async fn tick(&mut self) -> Result<bool, EngineError> {
        if let Some(error) = self.writes.failure().await {
            return Err(error);
        }
        self.follow_log().await?;
        let behind = self.source_behind || self.log_behind;
        let caught_up = !behind && self.quiet_since.elapsed() >= IDLE_BEFORE_WALL_CLOCK;
        if caught_up {
            self.detector.advance(self.engine.clock().now_precise(), &mut self.detections);
        }
        let recorded = self.record_detected().await?;
        self.forget_legacy(caught_up);
        Ok(recorded)
    }

    /// Once the whole log has been taken in and recorded, an incident an older amends
    /// opened that no opening took over is left to an operator.
    fn forget_legacy(&mut self, caught_up: bool) {
        if caught_up {
            for (element, key) in std::mem::take(&mut self.legacy) {
                tracing::warn!(%element, %key, "an incident an older amends opened is not in the event log; resolve it by hand");
            }
        }
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
