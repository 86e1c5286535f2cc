//! Surveys (issue 6).
//!
//! - `GET /v1/surveys/answer?token=...` (no token needed but the link's): the question,
//!   as a page with a form. Following the link records nothing, so a mail scanner that
//!   opens every link answers no survey.
//! - `POST /v1/surveys/answer?token=...` with the form's `score`: records the answer, once.
//! - `GET /v1/surveys/report` (read scope, so never an agent's token): scores by group next
//!   to their outcome signals, and every decision counted.
//!
//! A forged, altered or expired link gets a page that names nobody.

use super::AppState;
use super::error::{ApiError, ErrorBody, FormBody, QueryParams};
use super::notices::TokenQuery;
use super::pages;
use super::words::Lang;
use amends_core::survey::SurveyError;
use amends_recovery::surveys::{SurveyReportView, SurveysError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

fn refusal(error: &SurveysError) -> Response {
    match error {
        SurveysError::Link(_) => pages::message(
            Lang::En,
            StatusCode::BAD_REQUEST,
            "This link does not work",
            &[&format!("{error}.")],
        ),
        SurveysError::Refused(SurveyError::AlreadyAnswered { .. }) => pages::message(
            Lang::En,
            StatusCode::CONFLICT,
            "Already answered",
            &["This survey has been answered already. Thank you."],
        ),
        SurveysError::Refused(SurveyError::Expired { .. }) => {
            pages::message(Lang::En, StatusCode::GONE, "This link has expired", &["This survey is closed."])
        }
        SurveysError::Refused(e) => {
            pages::message(Lang::En, StatusCode::UNPROCESSABLE_ENTITY, "Not an answer", &[&format!("{e}.")])
        }
        SurveysError::Engine(e) => {
            tracing::error!(error = %e, "survey page failed");
            pages::failed(Lang::En)
        }
    }
}

/// The confirmation step: the question and a button per score; nothing is recorded (mail
/// scanners follow links). No token but the link's.
#[utoipa::path(get, path = "/v1/surveys/answer", tag = "surveys", params(TokenQuery),
    responses(
        (status = 200, description = "The question, a button per score", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 409, description = "Answered already", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn question(State(state): State<AppState>, QueryParams(q): QueryParams<TokenQuery>) -> Response {
    let question = match state.engine.survey_question(&q.token).await {
        Ok(question) => question,
        Err(e) => return refusal(&e),
    };
    if question.answered {
        return refusal(&SurveysError::Refused(SurveyError::AlreadyAnswered {
            survey_id: question.survey_id,
            answered_at: state.engine.clock().now(),
        }));
    }
    let scale = question.scale;
    let ask = match scale {
        amends_core::survey::Scale::Nps => {
            "How likely are you to recommend us to a friend? (0: not at all, 10: certainly)"
        }
        amends_core::survey::Scale::Csat => {
            "How satisfied are you with how we handled it? (1: not at all, 5: very)"
        }
    };
    pages::question(Lang::En, None, "One question", ask, &q.token, scale.min_score()..=scale.max_score())
}

/// The page's form.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AnswerForm {
    /// A score on the survey's scale: 0 to 10 (NPS) or 1 to 5 (CSAT).
    #[schema(example = "9")]
    pub score: String,
}

/// Records the answer; a second answer, a score off the scale or an expired link is refused.
#[utoipa::path(post, path = "/v1/surveys/answer", tag = "surveys", params(TokenQuery),
    request_body(content = AnswerForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Recorded", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), no `token`, or a form without `score`",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 409, description = "Answered already", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 413, description = "A body over 4 KiB", body = ErrorBody),
        (status = 415, description = "The body is not form-encoded", body = ErrorBody),
        (status = 422, description = "Not a score on the survey's scale", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn answer(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<TokenQuery>,
    FormBody(form): FormBody<AnswerForm>,
) -> Response {
    match state.engine.answer_survey(&q.token, &form.score).await {
        Ok(_) => pages::message(Lang::En, StatusCode::OK, "Thank you", &["Your answer is recorded."]),
        Err(e) => refusal(&e),
    }
}

/// Scores by group (an owner's own cases, cases an incident caused, customers recovered
/// from an incident, customers with no problem) next to what happened after, the recovery
/// paradox, and every decision (sent, not sampled, suppressed and why) counted.
#[utoipa::path(get, path = "/v1/surveys/report", tag = "surveys", security(("bearer" = ["read"])),
    responses((status = 200, description = "The report", body = crate::schemas::SurveyReport)))]
pub async fn report(State(state): State<AppState>) -> Result<Json<SurveyReportView>, ApiError> {
    state.engine.survey_report().await.map(Json).map_err(|e| match e {
        SurveysError::Engine(e) => e.into(),
        other => ApiError::conflict(other.to_string()),
    })
}
