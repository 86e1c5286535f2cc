//! How sources hand device events to the detection task: NDJSON batches, parsed line by
//! line (a bad line is rejected with its index and the rest go on), sent over a bounded
//! channel, answered once the accepted events are in the device event log.

use crate::http::AppState;
use crate::http::error::ApiError;
use amends_core::telemetry::DeviceEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
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

/// `POST /v1/telemetry/events`: an NDJSON batch of device events.
#[utoipa::path(post, path = "/v1/telemetry/events", tag = "telemetry",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One event per line: {\"device_id\", \"state\": \"offline|online\", \"at\": RFC 3339, \
\"reason\": \"dying_gasp\" (optional)}"),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Applied; bad lines are listed with their index", body = BatchReport),
        (status = 413, description = "Over 8 MiB or 20,000 lines", body = crate::http::error::ErrorBody),
        (status = 503, description = "Detection is not running", body = crate::http::error::ErrorBody),
    ))]
pub async fn post_events(State(state): State<AppState>, body: Bytes) -> Result<Json<BatchReport>, ApiError> {
    let Some(intake) = state.intake() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "detection_off",
            "detection is not running on this server (amends serve runs it)",
        ));
    };
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::invalid("the body is not UTF-8", vec![format!("at byte {}", e.valid_up_to())])
    })?;
    if text.lines().count() > BATCH_EVENTS_MAX {
        let message = format!("a batch holds at most {BATCH_EVENTS_MAX} lines; split it");
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message.clone())
            .with_details(vec![message]));
    }
    let report = intake.submit(text).await.map_err(|e| match e {
        IntakeError::Stopped | IntakeError::Refused(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "detection_unavailable", e.to_string())
        }
        IntakeError::Store(e) => ApiError::internal(&e),
    })?;
    state.wake_worker();
    Ok(Json(report))
}
