//! Individual recovery cases and the people who own them (issue 6).
//!
//! - `PUT /v1/agents` (admin), `GET /v1/agents` (read): the directory of people.
//! - `POST /v1/contacts`: a customer got in touch; attached to the open incident that
//!   affects them, answered with its estimate as they read it.
//! - `POST /v1/cases`, `GET /v1/cases`, `GET /v1/cases/{id}`, `POST /v1/cases/{id}/actions`:
//!   an agent's token only; the actor is the agent the token speaks for, never a field of
//!   the request, so nobody acts under another's name.

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody, PathParam, QueryParams};
use super::schemas;
use amends_core::case::{Actor, CaseSource, Fault};
use amends_recovery::cases::{AgentInput, CASES_PAGE_MAX, CaseAction, CaseView, CasesError, OpenRequest};
use amends_store::{AgentRow, CaseFilter, CaseRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

impl From<CasesError> for ApiError {
    fn from(e: CasesError) -> Self {
        match e {
            CasesError::Invalid(message) => ApiError::invalid(message.clone(), vec![message]),
            CasesError::Refused(e) => ApiError::conflict(e.to_string()),
            CasesError::Forbidden(message) => ApiError::forbidden(message),
            CasesError::NotFound(id) => ApiError::not_found(format!("case {id} not found")),
            CasesError::Conflict(message) => ApiError::conflict(message),
            CasesError::Engine(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsBody {
    pub agents: Vec<AgentInput>,
}

/// Adds or replaces people by id; the whole list is checked first.
#[utoipa::path(put, path = "/v1/agents", tag = "cases", request_body = AgentsBody,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Written", body = schemas::AgentsWritten),
        (status = 422, description = "Refused whole; `details` names each problem", body = ErrorBody),
    ))]
pub async fn put_agents(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AgentsBody>,
) -> Result<Json<Value>, ApiError> {
    let written = state.engine.put_agents(&body.agents).await?;
    Ok(Json(json!({ "written": written })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOut {
    pub id: String,
    pub name: String,
    pub role: String,
    pub lead: Option<String>,
    pub active: bool,
}

/// The directory of people who own cases.
#[utoipa::path(get, path = "/v1/agents", tag = "cases", security(("bearer" = ["read"])),
    responses((status = 200, description = "Every agent, by id", body = Vec<AgentOut>)))]
pub async fn list_agents(State(state): State<AppState>) -> Result<Json<Vec<AgentOut>>, ApiError> {
    let agents = state.engine.store().agents().await?;
    Ok(Json(agents.into_iter().map(agent_out).collect()))
}

fn agent_out(a: AgentRow) -> AgentOut {
    AgentOut { id: a.agent_id, name: a.name, role: a.role, lead: a.lead_id, active: a.active }
}

/// `POST /v1/cases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    pub customer: String,
    pub summary: String,
    /// `contact` (the default), `manual`, or an incident or appointment by id.
    #[serde(default)]
    pub incident: Option<String>,
    #[serde(default)]
    pub appointment: Option<String>,
    #[serde(default)]
    pub manual: bool,
    /// `company`, `customer` or `unknown` (the default): for reporting only.
    #[serde(default = "unknown")]
    #[schema(value_type = schemas::Fault, required = false)]
    pub fault: Fault,
    /// The first owner; the caller when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// When the customer first got in touch; now when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub first_contact_at: Option<Timestamp>,
}

fn unknown() -> Fault {
    Fault::Unknown
}

/// Opens a case owned by the caller (or `owner`, an active agent).
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = OpenBody,
    security(("bearer" = ["agent"])),
    responses(
        (status = 201, description = "Opened: the case with its playbook", body = schemas::CaseView),
        (status = 422, description = "Refused; the message names the field", body = ErrorBody),
    ))]
pub async fn open_case(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<OpenBody>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    let source = match (body.incident, body.appointment, body.manual) {
        (None, None, false) => CaseSource::Contact,
        (None, None, true) => CaseSource::Manual,
        (Some(incident_id), None, false) => CaseSource::Incident { incident_id: incident_id.into() },
        (None, Some(appointment_id), false) => CaseSource::Appointment { appointment_id },
        _ => {
            let message = "give at most one of incident, appointment and manual";
            return Err(ApiError::invalid(message, vec![message.into()]));
        }
    };
    let request = OpenRequest {
        customer_id: body.customer,
        owner: body.owner,
        source,
        fault: body.fault,
        summary: body.summary,
        first_contact_at: body.first_contact_at,
    };
    let view = state.engine.open_case(&actor, request).await?;
    state.wake_worker();
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    pub customer: Option<String>,
    /// An agent's id, or `me`.
    pub owner: Option<String>,
    #[param(value_type = Option<schemas::CaseStatus>, inline)]
    pub status: Option<String>,
    /// Only cases not closed.
    #[serde(default)]
    pub open: bool,
    pub after: Option<String>,
    /// Default and most: 1,000; beyond it, 422.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

const STATUSES: [&str; 4] = ["open", "paused", "fixed", "closed"];

/// Cases in id order, in pages.
#[utoipa::path(get, path = "/v1/cases", tag = "cases", params(CaseQuery), security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "The cases", body = Vec<CaseSummary>),
        (status = 422, description = "`status` is not a status, or `limit` is not from 1 to 1,000", body = ErrorBody),
    ))]
pub async fn list_cases(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    QueryParams(q): QueryParams<CaseQuery>,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    if let Some(status) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        let message = format!("status {status:?} is not one of {}", STATUSES.join(", "));
        return Err(ApiError::invalid(message.clone(), vec![message]));
    }
    let filter = CaseFilter {
        customer_id: q.customer.map(Into::into),
        owner: q.owner.map(|o| if o == "me" { actor.id.clone() } else { o }),
        status: q.status,
        open_only: q.open,
        after_id: q.after,
        limit: super::limits::page_limit(q.limit, CASES_PAGE_MAX, CASES_PAGE_MAX)?,
    };
    Ok(Json(state.engine.cases(&filter).await?.into_iter().map(summary).collect()))
}

/// A case in a list: `GET /v1/cases/{id}` has the rest.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseSummary {
    pub case_id: String,
    pub customer_id: String,
    pub owner: String,
    #[schema(value_type = schemas::CaseStatus)]
    pub status: String,
    /// `contact`, `incident`, `appointment` or `manual`.
    #[schema(value_type = schemas::CaseSourceKind)]
    pub source: String,
    pub source_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_contact_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

fn summary(c: CaseRow) -> CaseSummary {
    CaseSummary {
        case_id: c.case_id.to_string(),
        customer_id: c.customer_id.to_string(),
        owner: c.owner,
        status: c.status.as_str().into(),
        source: c.source,
        source_id: c.source_id,
        first_contact_at: c.first_contact_at,
        opened_at: c.opened_at,
        updated_at: c.updated_at,
    }
}

/// One case: its playbook as of now, its log, and what its customer was told and credited.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", params(("id" = String, Path)),
    security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "The case", body = schemas::CaseView),
        (status = 404, description = "No such case", body = ErrorBody),
    ))]
pub async fn show_case(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<CaseView>, ApiError> {
    Ok(Json(state.engine.case_view(&id).await?))
}

/// One action by the caller, checked by the case's rules; nothing changes when refused.
#[utoipa::path(post, path = "/v1/cases/{id}/actions", tag = "cases", params(("id" = String, Path)),
    request_body = CaseAction, security(("bearer" = ["agent"])),
    responses(
        (status = 200, description = "Done: the case as it now stands", body = schemas::CaseView),
        (status = 403, description = "Not the owner, or goodwill above the caller's role limit", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "Refused as the case stands, or changed meanwhile", body = ErrorBody),
        (status = 422, description = "Bad input; the message names the field", body = ErrorBody),
    ))]
pub async fn act_on_case(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    PathParam(id): PathParam<String>,
    JsonBody(action): JsonBody<CaseAction>,
) -> Result<Json<CaseView>, ApiError> {
    let view = state.engine.perform(&id, &actor, action).await?;
    state.wake_worker();
    Ok(Json(view))
}

/// `POST /v1/contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    pub customer: String,
    /// How they got in touch: `phone`, `chat`, `email`, ...
    pub channel: String,
    #[serde(default)]
    pub summary: String,
}

/// A customer got in touch: attached to the open incident affecting them, if any, with
/// its estimate as they read it and what they were already told.
#[utoipa::path(post, path = "/v1/contacts", tag = "cases", request_body = ContactBody,
    security(("bearer" = ["agent"])),
    responses(
        (status = 201, description = "Recorded: the incident to answer from, if any", body = schemas::ContactAnswer),
        (status = 422, description = "Refused; the message names the field", body = ErrorBody),
    ))]
pub async fn take_contact(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<(StatusCode, Json<amends_recovery::contacts::ContactAnswer>), ApiError> {
    let answer = state.engine.take_contact(&actor, &body.customer, &body.channel, &body.summary).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// How well one incident was handled: how fast and how far its notices reached, how its
/// estimates held, how soon it was credited, and how many who got in touch were told first.
#[utoipa::path(get, path = "/v1/incidents/{id}/metrics", tag = "incidents",
    params(("id" = String, Path, description = "Incident id", example = "INC-000001")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The figures", body = schemas::IncidentMetrics),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn incident_metrics(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<amends_recovery::contacts::IncidentMetrics>, ApiError> {
    Ok(Json(state.engine.incident_metrics(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// The period's start (RFC 3339); 30 days before `to` when absent.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Its end, excluded, after `from`; now when absent.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

/// Recovery over a period: time to first notice, customers told before they got in touch,
/// estimate accuracy, time to credit and credits nobody asked for, missed visits, case
/// first-response and resolution times, steps to leave next to steps to join, and survey
/// scores next to their outcome signals.
#[utoipa::path(get, path = "/v1/metrics/recovery", tag = "incidents", params(PeriodQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The figures", body = schemas::RecoveryMetrics),
        (status = 422, description = "A bad period", body = ErrorBody),
    ))]
pub async fn recovery_metrics(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<PeriodQuery>,
) -> Result<Json<amends_recovery::metrics::RecoveryMetrics>, ApiError> {
    let instant = |field: &str, s: &str| {
        s.parse::<Timestamp>().map_err(|e| {
            let message = format!("{field}: {s:?} is not an RFC 3339 instant: {e}");
            ApiError::invalid(message.clone(), vec![message])
        })
    };
    let to = match q.to.as_deref() {
        Some(s) => instant("to", s)?,
        None => state.engine.clock().now(),
    };
    let from = match q.from.as_deref() {
        Some(s) => instant("from", s)?,
        None => to - jiff::SignedDuration::from_hours(24 * 30),
    };
    Ok(Json(state.engine.recovery_metrics(from, to).await?))
}
