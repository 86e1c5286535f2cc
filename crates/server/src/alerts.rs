//! The Alertmanager routes: the webhook the receiver in [`amends_sources::alerts`] takes, and the
//! alerts it ignored.

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody};
use amends_sources::alerts::{
    IGNORED_ALERTS_KEPT, IgnoredAlertView, IgnoredAlerts, Receipt, Webhook, check_bound, receive,
};
use axum::Json;
use axum::extract::State;

/// `GET /v1/alerts/ignored`: the alerts the receiver could not act on (a missing or
/// misspelt element label, an element the book lacks), so a typo tells somebody.
#[utoipa::path(get, path = "/v1/alerts/ignored", tag = "alerts",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The most recently seen first, at most 1,000", body = IgnoredAlerts)))]
pub async fn ignored_alerts(State(state): State<AppState>) -> Result<Json<IgnoredAlerts>, ApiError> {
    let rows = state.engine.store().ignored_alerts(IGNORED_ALERTS_KEPT).await?;
    let alerts = rows
        .into_iter()
        .map(|r| IgnoredAlertView {
            labels: serde_json::from_str(&r.labels).unwrap_or(serde_json::Value::String(r.labels)),
            fingerprint: r.fingerprint,
            reason: r.reason,
            first_at: r.first_at,
            last_at: r.last_at,
            times: r.times,
        })
        .collect();
    Ok(Json(IgnoredAlerts { alerts }))
}

/// Takes Alertmanager's webhook: each firing alert whose element label names an element
/// of the book opens (once) an acknowledged incident there, or updates it when its
/// summary or description changed; each resolved alert resolves its incident. Alerts
/// amends cannot use are listed with the reason, and the others go on. Sending the same
/// payload again changes nothing.
#[utoipa::path(post, path = "/v1/alerts/alertmanager", tag = "alerts", request_body = Webhook,
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Taken; what became of each alert", body = Receipt),
        (status = 422, description = "More than 1,000 alerts; nothing recorded", body = ErrorBody),
    ))]
pub async fn alertmanager_webhook(
    State(state): State<AppState>,
    JsonBody(payload): JsonBody<Webhook>,
) -> Result<Json<Receipt>, ApiError> {
    check_bound(&payload).map_err(|e| ApiError::invalid(e.to_string(), vec![e.advice()]))?;
    if payload.truncated_alerts > 0 {
        tracing::warn!(truncated = payload.truncated_alerts, group = %payload.group_key,
            "Alertmanager left alerts out of a payload (its max_alerts)");
    }
    let mut receipt = Receipt::default();
    let received = receive(&state.engine, &state.alerts, &payload, &mut receipt).await;
    // Whatever was recorded before a failure is fanned out too; a retry changes nothing.
    if receipt.recorded() || received.is_err() {
        state.wake_worker();
    }
    received?;
    Ok(Json(receipt))
}
