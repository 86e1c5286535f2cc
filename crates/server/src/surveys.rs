//! Surveys (issue 6).
//!
//! - `GET /v1/surveys/answer?token=...` (no token needed but the link's): the question,
//!   as a page with a form. Following the link records nothing, so a mail scanner that
//!   opens every link answers no survey.
//! - `POST /v1/surveys/answer?token=...` with the form's `score`: records the answer, once.
//! - `GET /v1/surveys/report` (read scope, so never an agent's token): scores by group next
//!   to their outcome signals, and every decision counted.
//!
//! The pages are written in the customer's language (`?lang=`, else the one they read in,
//! else `Accept-Language`: see `TokenQuery::language_of`). A forged, altered or expired
//! link gets a page that names nobody, in the reader's language.

use super::AppState;
use super::error::{ApiError, ErrorBody, FormBody, QueryParams};
use super::notices::TokenQuery;
use super::pages;
use super::words::{self, Lang, pick};
use amends_core::survey::{Scale, SurveyError};
use amends_recovery::optout::OptOutError;
use amends_recovery::surveys::{SurveyReportView, SurveysError};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

/// "This survey is closed."
const CLOSED: [&str; 5] = [
    "This survey is closed.",
    "Esta encuesta está cerrada.",
    "Cette enquête est close.",
    "Diese Umfrage ist abgeschlossen.",
    "Este questionário está encerrado.",
];

/// The page for a link or an answer refused, in `lang`.
fn refusal(lang: Lang, error: &SurveysError) -> Response {
    let page =
        |status, title: [&str; 5], text: &str| pages::message(lang, status, pick(lang, title), &[text]);
    match error {
        SurveysError::Link(OptOutError::Expired) => {
            page(StatusCode::BAD_REQUEST, words::LINK_EXPIRED, pick(lang, CLOSED))
        }
        SurveysError::Link(_) => {
            page(StatusCode::BAD_REQUEST, words::LINK_BROKEN, pick(lang, words::LINK_AS_SENT))
        }
        SurveysError::Refused(SurveyError::AlreadyAnswered { .. }) => page(
            StatusCode::CONFLICT,
            [
                "Already answered",
                "Encuesta ya respondida",
                "Déjà répondu",
                "Bereits beantwortet",
                "Questionário já respondido",
            ],
            pick(
                lang,
                [
                    "This survey has been answered already. Thank you.",
                    "Esta encuesta ya se ha respondido. Gracias.",
                    "Cette enquête a déjà reçu une réponse. Merci.",
                    "Diese Umfrage wurde bereits beantwortet. Vielen Dank.",
                    "Este questionário já foi respondido. Obrigado.",
                ],
            ),
        ),
        SurveysError::Refused(SurveyError::Expired { .. }) => {
            page(StatusCode::GONE, words::LINK_EXPIRED, pick(lang, CLOSED))
        }
        SurveysError::Refused(e) => {
            page(StatusCode::UNPROCESSABLE_ENTITY, NOT_AN_ANSWER, &not_an_answer(lang, e))
        }
        SurveysError::Engine(e) => {
            tracing::error!(error = %e, "survey page failed");
            pages::failed(lang)
        }
    }
}

/// "Not an answer", the title of a refused score.
const NOT_AN_ANSWER: [&str; 5] = [
    "Not an answer",
    "No es una respuesta válida",
    "Réponse non valable",
    "Keine gültige Antwort",
    "Resposta inválida",
];

/// Why a score was refused, and what to do: the words of the reader, with what they sent.
fn not_an_answer(lang: Lang, error: &SurveyError) -> String {
    match error {
        SurveyError::ScoreOutOfRange { score, scale } => {
            let (min, max) = (scale.min_score(), scale.max_score());
            pick(
                lang,
                [
                    format!("{score} is outside the scale: choose a score from {min} to {max}."),
                    format!("{score} está fuera de la escala: elija una puntuación de {min} a {max}."),
                    format!("{score} est hors de l'échelle : choisissez une note de {min} à {max}."),
                    format!("{score} liegt außerhalb der Skala: Wählen Sie einen Wert von {min} bis {max}."),
                    format!("{score} está fora da escala: escolha um valor de {min} a {max}."),
                ],
            )
        }
        SurveyError::NotAScore { text } => pick(
            lang,
            [
                format!("“{text}” is not a score: choose one of the buttons of the page."),
                format!("«{text}» no es una puntuación: elija uno de los botones de la página."),
                format!("« {text} » n'est pas une note : choisissez l'un des boutons de la page."),
                format!("„{text}“ ist kein gültiger Wert: Wählen Sie eine der Schaltflächen der Seite."),
                format!("«{text}» não é um valor válido: escolha um dos botões da página."),
            ],
        ),
        // Not an answer's problem (the survey rules'): said as the engine says it.
        other => format!("{other}."),
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
pub async fn question(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Response {
    let lang = q.language(&headers);
    let question = match state.engine.survey_question(&q.token).await {
        Ok(question) => question,
        Err(e) => return refusal(lang, &e),
    };
    let lang = q.language_of(&state, &question.customer_id, &headers).await;
    if question.answered {
        return refusal(
            lang,
            &SurveysError::Refused(SurveyError::AlreadyAnswered {
                survey_id: question.survey_id,
                answered_at: state.engine.clock().now(),
            }),
        );
    }
    let scale = question.scale;
    let ask = match scale {
        Scale::Nps => pick(
            lang,
            [
                "How likely are you to recommend us to a friend? (0: not at all, 10: certainly)",
                "¿Qué probabilidad hay de que nos recomiende a un amigo? (0: ninguna, 10: con toda seguridad)",
                "Quelle est la probabilité que vous nous recommandiez à un ami ? (0 : aucune, 10 : certainement)",
                "Wie wahrscheinlich ist es, dass Sie uns einem Freund oder Bekannten empfehlen? (0: gar nicht, 10: ganz sicher)",
                "Qual é a probabilidade de nos recomendar a um amigo? (0: nenhuma, 10: com toda a certeza)",
            ],
        ),
        Scale::Csat => pick(
            lang,
            [
                "How satisfied are you with how we handled it? (1: not at all, 5: very)",
                "¿Cuánto le satisface cómo lo gestionamos? (1: nada, 5: mucho)",
                "Êtes-vous satisfait de la façon dont nous l'avons traité ? (1 : pas du tout, 5 : très)",
                "Wie zufrieden sind Sie damit, wie wir es gelöst haben? (1: gar nicht, 5: sehr)",
                "Qual é o seu grau de satisfação com a forma como resolvemos a situação? (1: muito baixo, 5: muito alto)",
            ],
        ),
    };
    let title = pick(lang, ["One question", "Una pregunta", "Une question", "Eine Frage", "Uma pergunta"]);
    pages::question(lang, q.chosen(), title, ask, &q.token, scale.min_score()..=scale.max_score())
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
    headers: HeaderMap,
    QueryParams(q): QueryParams<TokenQuery>,
    FormBody(form): FormBody<AnswerForm>,
) -> Response {
    let lang = q.language(&headers);
    match state.engine.answer_survey(&q.token, &form.score).await {
        Ok((_, customer_id)) => {
            let lang = q.language_of(&state, &customer_id, &headers).await;
            thanks(lang)
        }
        Err(e) => refusal(lang, &e),
    }
}

/// The page after an answer.
fn thanks(lang: Lang) -> Response {
    pages::message(
        lang,
        StatusCode::OK,
        pick(lang, ["Thank you", "Gracias", "Merci", "Vielen Dank", "Obrigado"]),
        &[pick(
            lang,
            [
                "Your answer is recorded.",
                "Hemos registrado su respuesta.",
                "Votre réponse est enregistrée.",
                "Ihre Antwort ist gespeichert.",
                "Recebemos a sua resposta.",
            ],
        )],
    )
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
