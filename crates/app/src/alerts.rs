//! Alerts in: a receiver for Prometheus Alertmanager's webhook.

use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// `[alerts]` in the settings file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// The alert label whose value names a network element.
    pub element_label: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { element_label: "element".into() }
    }
}

/// `POST /v1/alerts/alertmanager`.
pub async fn alertmanager_webhook(
    State(_state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "the Alertmanager receiver is being built",
    ))
}
