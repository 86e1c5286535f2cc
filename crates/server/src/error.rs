//! The one error shape of the API, and the mapping of every failure onto it.
//!
//! Every error response, whatever produced it (a handler, the auth gate, a body that
//! would not parse, a route that does not exist), has the body
//! `{"error": {"status", "code", "message", "details"}}`, so a client needs one code path.
//! Failures of the server itself (database, templates, policy, a panicked task) answer a
//! generic 500 and log the detail: the caller cannot fix them and should not see internals.

use amends_recovery::EngineError;
use amends_recovery::import::ImportError;
use amends_store::StoreError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use utoipa::ToSchema;

/// Most characters of an error's message or of one detail: a value quoted in an error
/// (an 80 MB field, a whole line) is cut to a bounded prefix, so an error answer is never
/// as large as what caused it.
pub const ERROR_TEXT_CHARS_MAX: usize = 500;
/// Most details in one error answer; the rest are counted in a last one.
pub const ERROR_DETAILS_MAX: usize = 100;

/// `text` cut to [`ERROR_TEXT_CHARS_MAX`] characters, saying how much was left out.
fn bounded(text: String) -> String {
    let total = text.chars().count();
    if total <= ERROR_TEXT_CHARS_MAX {
        return text;
    }
    let kept: String = text.chars().take(ERROR_TEXT_CHARS_MAX).collect();
    format!("{kept}... ({} more characters)", total - ERROR_TEXT_CHARS_MAX)
}

/// `bytes` the way the limits are written: `4 KiB`, `1 MiB`, else in bytes.
pub fn byte_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated for clients that only keep the body.
    #[schema(example = 422)]
    pub status: u16,
    /// A stable, machine-readable code: `malformed`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `too_large`,
    /// `unsupported_media_type`, `invalid`, `busy`, `timeout` or `internal`.
    #[schema(example = "invalid")]
    pub code: &'static str,
    /// What went wrong, in one sentence.
    pub message: String,
    /// Each problem found, where there are several (an import lists every bad line).
    #[schema(example = json!(["customers.csv:17: email \"x@\" is not an address"]))]
    pub details: Vec<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<String>,
    /// The `WWW-Authenticate` challenge of a 401 or 403.
    challenge: Option<&'static str>,
}

impl ApiError {
    /// A form route's body that is not sent as a form.
    pub fn not_a_form() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be a form, sent with Content-Type: application/x-www-form-urlencoded",
        )
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Vec::new(), challenge: None }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// 422: the request is well-formed but its content is refused; `details` lists why.
    pub fn invalid(message: impl Into<String>, details: Vec<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).with_details(details)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401 with the challenge RFC 6750 asks for (`Bearer`, plus `error="invalid_token"`
    /// when a token was given but is not known).
    pub fn unauthorized(message: impl Into<String>, challenge: &'static str) -> Self {
        ApiError {
            challenge: Some(challenge),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            challenge: Some(r#"Bearer error="insufficient_scope""#),
            ..ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
        }
    }

    /// 413 naming the route's own limit (`limit_bytes`), so a client knows how far to cut.
    pub fn too_large(limit_bytes: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is larger than this route accepts: at most {} ({limit_bytes} bytes)",
                byte_size(limit_bytes)
            ),
        )
    }

    /// 500 for a failure of the server itself: the detail goes to the log, not the caller.
    pub fn internal(detail: &dyn Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut details: Vec<String> =
            self.details.iter().take(ERROR_DETAILS_MAX).map(|d| bounded(d.clone())).collect();
        if self.details.len() > ERROR_DETAILS_MAX {
            details.push(format!("... and {} more", self.details.len() - ERROR_DETAILS_MAX));
        }
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code,
                message: bounded(self.message),
                details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(details) => ApiError::invalid(details.join("; "), details),
            EngineError::NotFound(_) => ApiError::not_found(e.to_string()),
            EngineError::AlreadyResolved(_) => ApiError::conflict(e.to_string()),
            EngineError::Store(e) => e.into(),
            EngineError::Import(e) => e.into(),
            EngineError::Book(_)
            | EngineError::Template(_)
            | EngineError::Policy(_)
            | EngineError::Join(_) => ApiError::internal(&e),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid { errors, more } => {
                let mut details: Vec<String> = errors.iter().map(ToString::to_string).collect();
                if more > 0 {
                    details.push(format!("... and {more} more"));
                }
                let count = errors.len() + more;
                let noun = if count == 1 { "problem" } else { "problems" };
                ApiError::invalid(format!("import refused, nothing was written: {count} {noun}"), details)
            }
            ImportError::NoFiles(_) => ApiError::invalid(e.to_string(), Vec::new()),
            ImportError::Store(e) => e.into(),
            ImportError::Io { .. } | ImportError::Book(_) | ImportError::Interrupted(_) => {
                ApiError::internal(&e)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IncidentNotFound(_)
            | StoreError::CaseNotFound(_)
            | StoreError::AppointmentNotFound(_)
            | StoreError::CustomerNotFound(_)
            | StoreError::SurveyNotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::AlreadyResolved(_)
            | StoreError::CreditConflict { .. }
            | StoreError::CaseConflict { .. }
            | StoreError::AppointmentConflict { .. }
            | StoreError::AppointmentExists(_)
            | StoreError::AppointmentFixed { .. }
            | StoreError::CustomerExists(_)
            | StoreError::AlreadyCancelled { .. } => ApiError::conflict(e.to_string()),
            StoreError::Refused(message) => ApiError::invalid(message.clone(), vec![message]),
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::BadUrl { .. }
            | StoreError::Corrupt { .. } => ApiError::internal(&e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            // Both name the field (serde's path) and the line and column.
            JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed", r.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON, sent with Content-Type: application/json",
            ),
            // Not reached while `limits::limit_body` reads every body first; said plainly if it is.
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is larger than this route accepts",
            ),
            _ => ApiError::new(r.status(), "malformed", r.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", r.body_text())
    }
}

/// `axum::Json`, with its rejections in the API's error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = <axum::Json<T> as FromRequest<S>>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

/// An optional body: absent when the request has no `Content-Type`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let value = <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(value.map(|axum::Json(v)| JsonBody(v)))
    }
}

/// `axum::Form` (a form-encoded body), with its rejections in the API's error shape: 415
/// when the body is not sent as a form, 400 when a field is missing or malformed.
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::FormRejection;
        match <axum::Form<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(FormBody(value)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::not_a_form()),
            Err(r) => Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed", r.body_text())),
        }
    }
}

/// `axum::extract::Path`, with its rejections in the API's error shape.
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParam(value))
    }
}

/// `axum::extract::Query`, with its rejections in the API's error shape.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(QueryParams(value))
    }
}
