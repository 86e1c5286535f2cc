//! How sources hand device events to the detection task: NDJSON batches, parsed line by
//! line (a bad line is rejected with its index and the rest go on), sent over a bounded
//! channel, answered once the accepted events are in the device event log.

use amends_core::telemetry::DeviceEvent;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

/// Largest NDJSON body `POST /v1/telemetry/events` reads; larger is refused with 413.
pub const BATCH_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most event lines in one batch; more is refused with 413.
pub const BATCH_EVENTS_MAX: usize = 20_000;
/// Rejections listed one by one in an answer; the rest are only counted.
pub const REJECTIONS_LISTED_MAX: usize = 1000;

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BatchReport {
    /// Events taken: applied to detection and in the event log.
    pub accepted: u64,
    /// Of those, events the log already held (sent before): no-ops.
    pub duplicates: u64,
    /// Lines refused, each with its index (0-based, blank lines counted) and the reason.
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("detection is not running")]
    Stopped,
    #[error("{0}")]
    Refused(String),
    #[error("writing the device event log failed: {0}")]
    Store(#[from] amends_store::StoreError),
}

/// One batch on its way to the detection task.
pub(crate) struct Submission {
    /// Parsed events with their index in the batch.
    pub events: Vec<(usize, DeviceEvent)>,
    /// Lines that did not parse.
    pub rejected: Vec<Rejection>,
    /// The source holds more events after these (a broker's backlog): detection's clock
    /// keeps following the events and does not jump to the wall clock meanwhile.
    pub behind: bool,
    reply: oneshot::Sender<Result<BatchReport, IntakeError>>,
}

impl Submission {
    pub fn answer(self, report: Result<BatchReport, amends_store::StoreError>) {
        // The source may have gone (a closed connection): the events are applied regardless.
        let _ = self.reply.send(report.map_err(IntakeError::from));
    }

    pub fn refuse(self, reason: &str) {
        let _ = self.reply.send(Err(IntakeError::Refused(reason.into())));
    }
}

/// The sending side: cheap to clone, one per source.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Submission>,
    detecting: watch::Receiver<bool>,
}

impl Intake {
    /// The intake, the receiving side, and the switch saying whether this server detects.
    pub(crate) fn channel(bound: usize) -> (Intake, mpsc::Receiver<Submission>, watch::Sender<bool>) {
        let (tx, rx) = mpsc::channel(bound);
        let (detecting_tx, detecting) = watch::channel(false);
        (Intake { tx, detecting }, rx, detecting_tx)
    }

    /// Whether this server detects (holds the detection lock), as it changes: a broker's
    /// consumer runs only there, so events reach the detector in the broker's order.
    pub fn detecting(&self) -> watch::Receiver<bool> {
        self.detecting.clone()
    }

    /// Parses `ndjson` (one event per line; blank lines skipped but counted) and applies
    /// it. Returns once the accepted events are durably logged.
    pub async fn submit(&self, ndjson: &str) -> Result<BatchReport, IntakeError> {
        self.submit_from(ndjson, false).await
    }

    /// `submit`, from a source that says whether it holds more events after these.
    pub async fn submit_from(&self, ndjson: &str, behind: bool) -> Result<BatchReport, IntakeError> {
        let mut events = Vec::new();
        let mut rejected = Vec::new();
        for (index, line) in ndjson.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match DeviceEvent::parse(line) {
                Ok(event) => events.push((index, event)),
                Err(e) => rejected.push(Rejection { index, reason: e.to_string() }),
            }
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Submission { events, rejected, behind, reply })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        let mut report = answer.await.map_err(|_| IntakeError::Stopped)??;
        report.rejected.truncate(REJECTIONS_LISTED_MAX);
        Ok(report)
    }
}
