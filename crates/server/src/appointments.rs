//! Appointments (issue 6), with an agent's token: the booker becomes the visit's owner
//! unless they name another.
//!
//! - `POST /v1/appointments`: book; the customer is sent the confirmation at once.
//! - `GET /v1/appointments`, `GET /v1/appointments/{reference}`.
//! - `POST /v1/appointments/{reference}/actions`: `arrive`, `complete`,
//!   `cancel_by_customer`, `cancel_by_provider`, by the visit's owner, a lead or an admin;
//!   who did it is recorded with it.

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody, PathParam, QueryParams};
use super::schemas;
use amends_core::appointment::AppointmentStatus;
use amends_core::case::Actor;
use amends_recovery::appointments::{
    APPOINTMENTS_PAGE_MAX, AppointmentAction, AppointmentView, AppointmentsError, BookRequest,
};
use amends_store::{AppointmentFilter, AppointmentRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

impl From<AppointmentsError> for ApiError {
    fn from(e: AppointmentsError) -> Self {
        match e {
            AppointmentsError::Invalid(message) => ApiError::invalid(message.clone(), vec![message]),
            AppointmentsError::NotFound(reference) => {
                ApiError::not_found(format!("appointment {reference} not found"))
            }
            AppointmentsError::Conflict(message) => ApiError::conflict(message),
            AppointmentsError::Forbidden(message) => ApiError::forbidden(message),
            AppointmentsError::Engine(e) => e.into(),
        }
    }
}

/// Books a visit; the customer is sent its reference and window (with an `.ics` file by
/// email). Refused, with nothing written, in the past, too long, too far ahead, on top of
/// the technician's other visit or of a slot held for someone's rebooking.
#[utoipa::path(post, path = "/v1/appointments", tag = "appointments", request_body = BookRequest,
    security(("bearer" = ["agent"])),
    responses(
        (status = 201, description = "Booked: the visit with its reference", body = schemas::AppointmentView),
        (status = 422, description = "Refused; the message names the field and the clash", body = ErrorBody),
    ))]
pub async fn book(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<BookRequest>,
) -> Result<(StatusCode, Json<AppointmentView>), ApiError> {
    let view = state.engine.book_appointment(&actor, body).await?;
    state.wake_worker();
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppointmentQuery {
    pub customer: Option<String>,
    pub technician: Option<String>,
    #[param(value_type = Option<schemas::AppointmentStatus>, inline)]
    pub status: Option<String>,
    pub after: Option<String>,
    /// Default and most: 1,000; beyond it, 422.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Visits in reference order, in pages.
#[utoipa::path(get, path = "/v1/appointments", tag = "appointments", params(AppointmentQuery),
    security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "The visits", body = Vec<AppointmentSummary>),
        (status = 422, description = "`status` is not a status, or `limit` is not from 1 to 1,000", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<AppointmentQuery>,
) -> Result<Json<Vec<AppointmentSummary>>, ApiError> {
    if let Some(status) = q.status.as_deref().filter(|s| AppointmentStatus::parse(s).is_none()) {
        let allowed: Vec<&str> = AppointmentStatus::ALL.iter().map(|s| s.as_str()).collect();
        let message = format!("status {status:?} is not one of {}", allowed.join(", "));
        return Err(ApiError::invalid(message.clone(), vec![message]));
    }
    let filter = AppointmentFilter {
        customer_id: q.customer.map(Into::into),
        technician_id: q.technician,
        status: q.status,
        after_reference: q.after,
        limit: super::limits::page_limit(q.limit, APPOINTMENTS_PAGE_MAX, APPOINTMENTS_PAGE_MAX)?,
    };
    Ok(Json(state.engine.appointments(&filter).await?.into_iter().map(summary).collect()))
}

/// A visit in a list: `GET /v1/appointments/{reference}` has the rest.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentSummary {
    pub reference: String,
    pub customer_id: String,
    pub technician_id: Option<String>,
    pub owner: String,
    #[schema(value_type = String, format = DateTime)]
    pub window_start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub window_end: Timestamp,
    #[schema(value_type = schemas::AppointmentStatus)]
    pub status: String,
}

fn summary(a: AppointmentRow) -> AppointmentSummary {
    AppointmentSummary {
        reference: a.reference,
        customer_id: a.customer_id.to_string(),
        technician_id: a.technician_id,
        owner: a.owner,
        window_start: a.window_start,
        window_end: a.window_end,
        status: a.status.as_str().into(),
    }
}

/// One visit: its record, its failure as of now, the slots held for its rebooking, and
/// the notices and credits it caused.
#[utoipa::path(get, path = "/v1/appointments/{reference}", tag = "appointments",
    params(("reference" = String, Path, example = "APT-2858-5588")),
    security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "The visit", body = schemas::AppointmentView),
        (status = 404, description = "No such visit", body = ErrorBody),
        (status = 422, description = "Not an appointment reference (a wrong check digit)", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    PathParam(reference): PathParam<String>,
) -> Result<Json<AppointmentView>, ApiError> {
    Ok(Json(state.engine.appointment_view(&reference).await?))
}

/// Records the technician's arrival or completion, or a cancellation. A provider's
/// cancellation less than 24 hours before the window is a failure, handled at once.
#[utoipa::path(post, path = "/v1/appointments/{reference}/actions", tag = "appointments",
    params(("reference" = String, Path, example = "APT-2858-5588")),
    request_body = AppointmentAction, security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "Done: the visit as it now stands, with who did each action", body = schemas::AppointmentView),
        (status = 403, description = "Not the visit's owner, a lead or an admin", body = ErrorBody),
        (status = 404, description = "No such visit", body = ErrorBody),
        (status = 409, description = "Changed meanwhile", body = ErrorBody),
        (status = 422, description = "Refused as the visit stands (the message says why)", body = ErrorBody),
    ))]
pub async fn act(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParam(reference): PathParam<String>,
    JsonBody(action): JsonBody<AppointmentAction>,
) -> Result<Json<AppointmentView>, ApiError> {
    let view = state.engine.act_on_appointment(&reference, &actor, action).await?;
    state.wake_worker();
    Ok(Json(view))
}
