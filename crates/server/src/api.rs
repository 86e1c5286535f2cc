//! The handlers: each parses its input, calls the engine or the store, and answers JSON.
//!
//! Handlers that record something wake the worker, so notices follow at once rather than
//! at the next poll. The `#[utoipa::path]` on each is its entry in `/openapi.json`; the
//! errors every authenticated route shares (400, 401, 403, 413, 415, 500) are added to all
//! of them in [`super::openapi`].

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody, PathParam, QueryParams};
use super::limits::page_limit;
use super::schemas;
use amends_core::incident::{Declaration, UpdateRequest};
use amends_recovery::import::{ImportInput, ImportSummary};
use amends_sinks::export::credit_json;
use amends_store::{CreditFilter, IncidentPage, IncidentRow, NoticeCount, NoticeRow, UpdateRow};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and answering. It touches no database, so a load
/// balancer's probe adds no load there.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, description = "Serving", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The CSV files of an import, as text. Any subset may be given; at least one must be.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// `plans.csv`: plan_id,name,monthly_price_minor,currency
    #[schema(example = "plan_id,name,monthly_price_minor,currency\nbasic,Basic 100,4999,USD\n")]
    pub plans_csv: Option<String>,
    /// `topology.csv`: element_id,parent_id,kind,name
    pub topology_csv: Option<String>,
    /// `customers.csv`: customer_id,name,email,phone,locale,timezone,plan_id,element_id,
    /// device_id,billing_day,active_since,status, and optionally segment (default
    /// residential) and jurisdiction (like US-NY or GB-SCT; default unknown)
    pub customers_csv: Option<String>,
}

/// Checks every line of every file, then upserts all rows in one transaction, or, if any
/// line is bad, writes nothing and lists every bad line. One import runs at a time.
#[utoipa::path(post, path = "/v1/import", tag = "book", request_body = ImportRequest,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Imported", body = schemas::ImportSummary),
        (status = 422, description = "Refused, nothing written; `details` lists every bad line", body = ErrorBody),
        (status = 429, description = "Another import is running", body = ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ImportRequest>,
) -> Result<Json<ImportSummary>, ApiError> {
    if req.plans_csv.is_none() && req.topology_csv.is_none() && req.customers_csv.is_none() {
        return Err(ApiError::invalid(
            "nothing to import",
            vec!["give at least one of plans_csv, topology_csv, customers_csv".into()],
        ));
    }
    let Ok(slot) = state.import_slot.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "another import is running; try again when it has finished",
        ));
    };
    // Parsing runs on a blocking thread inside the import; the write is one transaction,
    // so an import cut short by the request timeout writes nothing.
    let _slot = slot;
    let input = ImportInput::from_texts(req.plans_csv, req.topology_csv, req.customers_csv);
    let summary = state.engine.import(input, &|_| {}).await?;
    state.wake_worker();
    Ok(Json(summary))
}

/// Declares an incident. Every active customer at or below its elements is affected and
/// is sent an acknowledgement by the worker.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", request_body = schemas::Declaration,
    security(("bearer" = ["operator"])),
    responses(
        (status = 201, description = "Declared", body = schemas::IncidentRow,
            headers(("Location" = String, description = "The incident's URL"),
                ("Amends-Untranslated" = String, description = "Present when affected customers read another language than the operator and the cause or message has no translation for them: counts by language, `es=1234, fr=56`. Add `translations` to reach them in their own words."))),
        (status = 422, description = "Refused; `details` names each field in error", body = ErrorBody),
    ))]
pub async fn declare(
    State(state): State<AppState>,
    JsonBody(declaration): JsonBody<Declaration>,
) -> Result<impl IntoResponse, ApiError> {
    let incident = state.engine.declare(declaration).await?;
    state.wake_worker();
    let mut headers = untranslated_header(&state, &incident).await?;
    let location = format!("/v1/incidents/{}", incident.incident_id);
    headers.insert(
        header::LOCATION,
        header::HeaderValue::try_from(location).map_err(|e| ApiError::internal(&e))?,
    );
    Ok((StatusCode::CREATED, headers, Json(incident)))
}

/// The header naming who reads the operator's words untranslated.
const UNTRANSLATED: &str = "Amends-Untranslated";

/// [`UNTRANSLATED`] for the incident's latest words, when anyone reads them untranslated.
async fn untranslated_header(
    state: &AppState,
    incident: &IncidentRow,
) -> Result<header::HeaderMap, ApiError> {
    let counts = state.engine.untranslated(incident).await?;
    let mut headers = header::HeaderMap::new();
    if !counts.is_empty() {
        let value: Vec<String> = counts.iter().map(|(language, n)| format!("{language}={n}")).collect();
        let value = header::HeaderValue::try_from(value.join(", ")).map_err(|e| ApiError::internal(&e))?;
        headers.insert(UNTRANSLATED, value);
    }
    Ok(headers)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentFilter {
    /// Only incidents that are not resolved, and not merged into a wider one.
    #[serde(default)]
    pub open: bool,
    /// Only incidents declared before this one: give the last id of a page to get the
    /// next page.
    pub before: Option<String>,
    /// Most incidents in the answer: default and at most 1,000; beyond it, 422.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The most incidents one answer holds. A storm opens tens of thousands of small
/// incidents before they merge: a reader polling for the newest must not be sent them all
/// (and the server must not build them all) on every poll.
pub const INCIDENTS_PAGE_MAX: u32 = 1_000;

/// Lists incidents, newest first, one page at a time.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents", params(IncidentFilter),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The incidents", body = Vec<schemas::IncidentRow>),
        (status = 422, description = "`before` is not an incident, or `limit` is not from 1 to 1,000", body = ErrorBody),
    ))]
pub async fn list_incidents(
    State(state): State<AppState>,
    QueryParams(filter): QueryParams<IncidentFilter>,
) -> Result<Json<Vec<IncidentRow>>, ApiError> {
    let store = &state.engine.store();
    if let Some(before) = &filter.before
        && store.incident(before).await?.is_none()
    {
        let message = format!("before: {before} is not an incident; give the last id of the previous page");
        return Err(ApiError::invalid(message.clone(), vec![message]));
    }
    let page = IncidentPage {
        open_only: filter.open,
        before_id: filter.before,
        limit: page_limit(filter.limit, INCIDENTS_PAGE_MAX, INCIDENTS_PAGE_MAX)?,
    };
    Ok(Json(store.incidents_page(&page).await?))
}

/// One incident with its timeline and what its notices have become.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[schema(value_type = schemas::IncidentRow)]
    pub incident: IncidentRow,
    /// Every entry, oldest first: the declaration, updates, automatic updates, resolution.
    #[schema(value_type = Vec<schemas::UpdateRow>)]
    pub timeline: Vec<UpdateRow>,
    /// Notices of this incident, counted by kind and delivery status.
    #[schema(value_type = Vec<schemas::NoticeCount>)]
    pub notice_counts: Vec<NoticeCount>,
}

#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "Incident id", example = "INC-000001")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn show_incident(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    let incident = state.engine.incident(&id).await?;
    let store = &state.engine.store();
    let (timeline, notice_counts) = tokio::try_join!(store.updates(&id), store.notice_counts(Some(&id)))?;
    Ok(Json(IncidentDetail { incident, timeline, notice_counts }))
}

/// Posts an update: a new ETR, "next update by", state or message. Absent fields keep
/// their value.
#[utoipa::path(post, path = "/v1/incidents/{id}/updates", tag = "incidents", request_body = schemas::UpdateRequest,
    params(("id" = String, Path, description = "Incident id", example = "INC-000001")),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Updated", body = schemas::IncidentRow,
            headers(("Amends-Untranslated" = String, description = "Present when affected customers read another language than the operator and the cause or message has no translation for them: counts by language, `es=1234, fr=56`. Add `translations` to reach them in their own words."))),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "The incident is resolved", body = ErrorBody),
        (status = 422, description = "Refused; `details` names each field in error", body = ErrorBody),
    ))]
pub async fn update_incident(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(update): JsonBody<UpdateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let incident = state.engine.update(&id, update).await?;
    state.wake_worker();
    Ok((untranslated_header(&state, &incident).await?, Json(incident)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The closing word customers read in the restoration notice.
    #[serde(default)]
    #[schema(example = "Service is back.")]
    pub message: String,
    /// The closing word in other languages, by locale tag: `{"es": {"message": "..."}}`.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, schemas::LocalText>)]
    pub translations: amends_core::incident::Translations,
}

/// Resolves an incident: restoration notices, then credits, follow from it.
#[utoipa::path(post, path = "/v1/incidents/{id}/resolve", tag = "incidents",
    request_body(content = ResolveRequest, description = "Optional: without a body (and its Content-Type), \
the incident is resolved with no closing message"),
    params(("id" = String, Path, description = "Incident id", example = "INC-000001")),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Resolved", body = schemas::IncidentRow),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
    ))]
pub async fn resolve_incident(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    body: Option<JsonBody<ResolveRequest>>,
) -> Result<Json<IncidentRow>, ApiError> {
    let JsonBody(req) = body.unwrap_or(JsonBody(ResolveRequest::default()));
    let incident = state.engine.resolve_translated(&id, &req.message, &req.translations).await?;
    state.wake_worker();
    Ok(Json(incident))
}

/// Confirms a detected incident held for an operator (`[detection] confirm_within_minutes`):
/// its customers are told now rather than when the window lapses. Confirming one already
/// released changes nothing.
#[utoipa::path(post, path = "/v1/incidents/{id}/confirm", tag = "incidents",
    params(("id" = String, Path, description = "Incident id", example = "INC-000001")),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "Confirmed", body = schemas::IncidentRow),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
    ))]
pub async fn confirm_incident(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<IncidentRow>, ApiError> {
    let incident = state.engine.confirm(&id).await?;
    state.wake_worker();
    Ok(Json(incident))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpactFilter {
    /// Only customers still offline when the incident was resolved: the follow-up list.
    #[serde(default)]
    pub follow_up: bool,
}

/// Each customer of a detected incident with their own downtime, when they came back,
/// and how far their notices went; `?follow_up=true` lists those still offline at its end.
#[utoipa::path(get, path = "/v1/incidents/{id}/impacts", tag = "incidents",
    params(("id" = String, Path, description = "Incident id", example = "INC-000001"), ImpactFilter),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The impacts, by customer id", body = Vec<schemas::ImpactRow>),
        (status = 404, description = "No such incident", body = ErrorBody),
    ))]
pub async fn incident_impacts(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    QueryParams(filter): QueryParams<ImpactFilter>,
) -> Result<Json<Vec<amends_store::ImpactRow>>, ApiError> {
    state.engine.incident(&id).await?;
    let mut impacts = state.engine.store().impacts(&id).await.map_err(amends_recovery::EngineError::from)?;
    impacts.retain(|i| !filter.follow_up || i.follow_up);
    Ok(Json(impacts))
}

/// Every notice the customer was sent or is due, with its delivery status.
#[utoipa::path(get, path = "/v1/customers/{id}/notices", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "C1")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The customer's notices", body = Vec<schemas::NoticeRow>),
        (status = 404, description = "No such customer", body = ErrorBody),
    ))]
pub async fn customer_notices(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<NoticeRow>>, ApiError> {
    ensure_customer(&state, &id).await?;
    let notices = state.engine.store().notices_for_customer(&id).await?;
    Ok(Json(notices.into_iter().map(super::notices::without_signed_links).collect()))
}

/// Every credit in the ledger for the customer, with its arithmetic.
#[utoipa::path(get, path = "/v1/customers/{id}/credits", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "C1")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The customer's credits", body = Vec<schemas::Credit>),
        (status = 404, description = "No such customer", body = ErrorBody),
    ))]
pub async fn customer_credits(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    ensure_customer(&state, &id).await?;
    let filter = CreditFilter { customer_id: Some(id.into()), ..CreditFilter::default() };
    credits_matching(&state, filter).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreditQuery {
    /// Only credits for this incident.
    pub incident: Option<String>,
    /// Only credits for this customer.
    pub customer: Option<String>,
    /// Only credits whose key sorts after this one: give the last key of a page to get
    /// the next page.
    pub after: Option<String>,
    /// Most credits in the answer: default 1,000, at most 10,000; beyond it, 422.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// Credits per page of `GET /v1/credits` unless the caller asks for fewer.
pub const CREDITS_PAGE_DEFAULT: u32 = 1_000;
/// The most credits one answer holds; a whole incident's ledger is read page by page
/// (or exported with `amends credits export`).
pub const CREDITS_PAGE_MAX: u32 = 10_000;

/// Credits in the ledger in key order, optionally for one incident and/or one customer,
/// one page at a time.
#[utoipa::path(get, path = "/v1/credits", tag = "credits", params(CreditQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The credits", body = Vec<schemas::Credit>),
        (status = 422, description = "`limit` is not from 1 to 10,000", body = ErrorBody),
    ))]
pub async fn list_credits(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<CreditQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let filter = CreditFilter {
        customer_id: query.customer.map(Into::into),
        source_event: query.incident,
        after_key: query.after,
        limit: Some(page_limit(query.limit, CREDITS_PAGE_DEFAULT, CREDITS_PAGE_MAX)?),
    };
    credits_matching(&state, filter).await
}

async fn credits_matching(
    state: &AppState,
    filter: CreditFilter,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let credits = state.engine.store().credits(&filter).await?;
    Ok(Json(credits.iter().map(credit_json).collect()))
}

/// A customer's lists are empty both for a quiet customer and for a typo; only the
/// first is a 200.
async fn ensure_customer(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.engine.store().customer(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("customer {id} not found"))),
    }
}

/// Routes that do not exist answer in the API's error shape too.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such route; GET /openapi.json lists them")
}

pub async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}
