//! The device events route: an NDJSON batch handed to detection's
//! [`Intake`](amends_sources::detection::Intake).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use amends_sources::detection::intake::{BATCH_EVENTS_MAX, BatchReport, IntakeError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

/// `POST /v1/telemetry/events`: an NDJSON batch of device events.
#[utoipa::path(post, path = "/v1/telemetry/events", tag = "telemetry",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One event per line: {\"device_id\", \"state\": \"offline|online\", \"at\": RFC 3339, \
\"reason\": \"dying_gasp\" (optional)}"),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Applied; bad lines are listed with their index", body = BatchReport),
        (status = 413, description = "Over 8 MiB or 20,000 lines", body = ErrorBody),
        (status = 503, description = "Detection is not running", body = ErrorBody),
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
