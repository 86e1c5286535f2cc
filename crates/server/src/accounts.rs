//! Joining and leaving, one request each, through the same channel (issue 6). The
//! provider's own site or app calls these on the customer's behalf with an operator token.
//!
//! - `POST /v1/customers`: sign up.
//! - `POST /v1/customers/{id}/cancellation`: cancel, with an optional reason; answered at
//!   once with the reference, the final bill's preview and the one offer, if any.

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody, PathParam};
use super::schemas;
use amends_recovery::accounts::{AccountsError, CancelBody, CancellationView, SignUp};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        match e {
            AccountsError::Invalid(details) => ApiError::invalid(details.join("; "), details),
            AccountsError::NotFound(id) => ApiError::not_found(format!("customer {id} not found")),
            AccountsError::Conflict(message) => ApiError::conflict(message),
            AccountsError::Engine(e) => e.into(),
        }
    }
}

/// Signs a customer up in one request, checked as an import checks a line.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = SignUp,
    security(("bearer" = ["operator"])),
    responses(
        (status = 201, description = "Signed up", body = schemas::SignedUp),
        (status = 409, description = "A customer with that id exists", body = ErrorBody),
        (status = 422, description = "Refused; each bad field named", body = ErrorBody),
    ))]
pub async fn sign_up(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignUp>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = state.engine.sign_up(body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "customer_id": row.customer_id, "status": row.status, "steps": 1 })),
    ))
}

/// Cancels in one request. The reason may be left out; the one retention offer, if
/// configured and never shown before, comes with the confirmation and changes nothing.
#[utoipa::path(post, path = "/v1/customers/{id}/cancellation", tag = "customers",
    params(("id" = String, Path)), request_body = CancelBody,
    security(("bearer" = ["operator"])),
    responses(
        (status = 201, description = "Cancelled: reference, final bill, offer, steps", body = schemas::CancellationView),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 409, description = "Already cancelled: when, and its reference", body = ErrorBody),
        (status = 422, description = "A reason that is not offered; nothing changed", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    body: Option<JsonBody<CancelBody>>,
) -> Result<(StatusCode, Json<CancellationView>), ApiError> {
    let body = body.map(|JsonBody(b)| b).unwrap_or_default();
    let view = state.engine.cancel_account(&id, body).await?;
    state.wake_worker();
    Ok((StatusCode::CREATED, Json(view)))
}
