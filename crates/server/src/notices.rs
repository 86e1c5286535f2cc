//! The delivery record, preferences, unsubscribe links, and what channels report back.
//!
//! - `GET /v1/notices` and `GET /v1/notices/{key}`: every message with its status and
//!   history, per customer, incident and status.
//! - `GET` / `PATCH /v1/customers/{id}/preferences`: channels per topic, quiet hours.
//! - `GET` / `POST /v1/unsubscribe?token=`: no login. The GET only shows what the link
//!   would do and a button (mail scanners follow links; they must not unsubscribe anyone);
//!   the POST, which is also RFC 8058's one-click, does it. Its pages are written in the
//!   customer's language (`?lang=`, else the one they read in, else `Accept-Language`); a
//!   bad link's page, which names nobody, in the reader's.
//! - `POST /v1/channels/sms/receipts` and `POST /v1/channels/email/bounces`: what the SMS
//!   gateway and the mail system say happened after a message left.
//! - `GET /v1/quarantine`, `DELETE /v1/quarantine/{channel}/{recipient}`.

use super::AppState;
use super::error::{ApiError, ErrorBody, JsonBody, PathParam, QueryParams};
use super::pages;
use super::schemas;
use super::words::{self, Lang, channel_word, pick, topic_word};
use amends_core::preferences::{Preferences, PreferencesChange};
use amends_recovery::optout::OptOutError;
use amends_recovery::receipts::ReportOutcome;
use amends_recovery::unsubscribe::{UnsubscribeError, checking_key, unsubscribe};
use amends_store::{ChannelReport, ContactPointRow, NoticeEventRow, NoticeFilter, NoticeRow, PreferencesRow};
use axum::Json;
use axum::extract::{Form, FromRequest, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::IntoParams;

/// Notices per page of `GET /v1/notices` unless the caller asks for fewer.
pub const NOTICES_PAGE_DEFAULT: u32 = 1_000;
/// The most notices one answer holds.
pub const NOTICES_PAGE_MAX: u32 = 10_000;
/// Receipts or bounces taken in one request.
pub const REPORTS_MAX: usize = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    pub customer: Option<String>,
    pub incident: Option<String>,
    /// `queued`, `sending`, `sent`, `delivered`, `failed` or `suppressed`.
    #[param(value_type = Option<schemas::NoticeStatus>, inline)]
    pub status: Option<String>,
    /// Only keys after this one: the last key of a page gives the next page.
    pub after: Option<String>,
    /// Default 1,000, at most 10,000; beyond it, 422.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

const STATUSES: [&str; 6] = ["queued", "sending", "sent", "delivered", "failed", "suppressed"];

/// A notice as the API shows it: a customer's signed link in it (the `token=` of a survey
/// or unsubscribe link) is theirs alone, since whoever holds it answers or opts out as
/// them, so every API view shows `token=[redacted]` instead. Delivery reads the stored
/// text, link and all.
pub(crate) fn without_signed_links(mut notice: NoticeRow) -> NoticeRow {
    notice.subject = redact_tokens(&notice.subject);
    notice.body = redact_tokens(&notice.body);
    notice
}

fn redact_tokens(text: &str) -> String {
    const KEY: &str = "token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i + KEY.len()]);
        rest = &rest[i + KEY.len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("[redacted]");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The delivery record, one page in key order.
#[utoipa::path(get, path = "/v1/notices", tag = "notices", params(NoticeQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The notices", body = Vec<schemas::NoticeRow>),
        (status = 422, description = "`status` is not a status, or `limit` is not from 1 to 10,000", body = ErrorBody),
    ))]
pub async fn list_notices(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<NoticeQuery>,
) -> Result<Json<Vec<NoticeRow>>, ApiError> {
    if let Some(status) = &q.status
        && !STATUSES.contains(&status.as_str())
    {
        let problem = format!("status {status:?} is not one of {}", STATUSES.join(", "));
        return Err(ApiError::invalid(problem.clone(), vec![problem]));
    }
    let filter = NoticeFilter {
        customer_id: q.customer.map(Into::into),
        about: q.incident,
        status: q.status,
        after_key: q.after,
        limit: super::limits::page_limit(q.limit, NOTICES_PAGE_DEFAULT, NOTICES_PAGE_MAX)?,
    };
    let notices = state.engine.store().notices(&filter).await?;
    Ok(Json(notices.into_iter().map(without_signed_links).collect()))
}

/// One notice and its status history, from queued on.
#[derive(Debug, Serialize)]
pub struct NoticeRecord {
    pub notice: NoticeRow,
    pub history: Vec<NoticeEventRow>,
}

/// One notice with its history. The key contains slashes; it is the rest of the path.
#[utoipa::path(get, path = "/v1/notices/{key}", tag = "notices",
    params(("key" = String, Path, description = "Notice key", example = "C1/INC-000001/acknowledgement/0/email")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The notice and its history", body = schemas::NoticeRecord),
        (status = 404, description = "No such notice", body = ErrorBody),
    ))]
pub async fn show_notice(
    State(state): State<AppState>,
    PathParam(key): PathParam<String>,
) -> Result<Json<NoticeRecord>, ApiError> {
    let store = &state.engine.store();
    let notice =
        store.notice(&key).await?.ok_or_else(|| ApiError::not_found(format!("notice {key} not found")))?;
    // How it started: suppressed for consent when written, else queued (held for quiet
    // hours, when that is its reason); everything later is in `notice_events`.
    let (status, detail) = match notice.reason.as_deref() {
        Some("consent") => ("suppressed", Some("consent")),
        Some("quiet_hours") => ("queued", Some("quiet_hours")),
        _ => ("queued", None),
    };
    let mut history = vec![NoticeEventRow {
        key: key.clone(),
        at: notice.created_at,
        status: status.into(),
        detail: detail.map(str::to_owned),
    }];
    history.extend(store.notice_events(&key).await?);
    Ok(Json(NoticeRecord { notice: without_signed_links(notice), history }))
}

/// What a customer chose, and what applies: every topic with its channels.
fn preferences_json(customer_id: &str, prefs: &Preferences, stored: Option<&PreferencesRow>) -> Value {
    json!({
        "customer_id": customer_id,
        "channels": prefs.effective_channels(),
        "chosen": prefs.chosen_channels(),
        "quiet_hours": prefs.quiet_hours(),
        "urgent": prefs.urgent(),
        "language": prefs.language().map(|l| l.as_str()),
        "updated_at": stored.map(|row| row.updated_at),
    })
}

async fn stored_preferences(
    state: &AppState,
    customer_id: &str,
) -> Result<(Preferences, Option<PreferencesRow>), ApiError> {
    state.engine.customer_preferences(customer_id).await?.ok_or_else(|| no_customer(customer_id))
}

fn no_customer(customer_id: &str) -> ApiError {
    ApiError::not_found(format!("customer {customer_id} not found"))
}

/// The customer's notice preferences: channels per topic (their choice, else the
/// default), quiet hours and the topics that may break them.
#[utoipa::path(get, path = "/v1/customers/{id}/preferences", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "C1")),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The preferences", body = schemas::PreferencesView),
        (status = 404, description = "No such customer", body = ErrorBody),
    ))]
pub async fn show_preferences(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let (prefs, row) = stored_preferences(&state, &id).await?;
    Ok(Json(preferences_json(&id, &prefs, row.as_ref())))
}

/// Changes what the body names: `{"channels": {"update": ["email"], "credit": null},
/// "quiet_hours": {"start": "22:00", "end": "07:00"}, "urgent": ["restored"]}`. A topic set
/// to `null` returns to the default; `"quiet_hours": null` removes them.
#[utoipa::path(patch, path = "/v1/customers/{id}/preferences", tag = "customers",
    params(("id" = String, Path, description = "Customer id", example = "C1")),
    request_body = schemas::PreferencesChange,
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "The preferences now", body = schemas::PreferencesView),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 422, description = "A field is refused; nothing changed", body = ErrorBody),
    ))]
pub async fn change_preferences(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let change = PreferencesChange::from_value(&body)
        .map_err(|e| ApiError::invalid(e.to_string(), vec![e.to_string()]))?;
    let (prefs, row) = state.engine.change_preferences(&id, change).await?.ok_or_else(|| no_customer(&id))?;
    // Their page shows the preferences (and is written in the language they hold).
    state.kept_pages.forget_customer(&id);
    Ok(Json(preferences_json(&id, &prefs, Some(&row))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The signed link's token, from the message.
    pub token: String,
    /// `en`, `es`, `fr`, `de` or `pt`: the page in that language; otherwise in the first
    /// language of `Accept-Language` the pages are written in, else English.
    pub lang: Option<String>,
}

impl TokenQuery {
    /// The language of the page: `?lang=`, else the browser's (see `words`).
    pub fn language(&self, headers: &HeaderMap) -> Lang {
        words::reader_language(self.lang.as_deref(), headers)
    }

    /// The language the reader chose with `?lang=`, for the page's form to keep.
    pub fn chosen(&self) -> Option<Lang> {
        self.lang.as_deref().and_then(Lang::of)
    }

    /// The language of a page the link's customer reads: `?lang=`, else the language they
    /// read in (chosen, else the book's) where the pages are written in it, else the
    /// browser's. A page that names nobody (a bad link) keeps [`TokenQuery::language`].
    pub async fn language_of(&self, state: &AppState, customer_id: &str, headers: &HeaderMap) -> Lang {
        if let Some(chosen) = self.chosen() {
            return chosen;
        }
        let theirs = state.engine.customer_language(customer_id).await.ok().flatten();
        theirs.and_then(|l| Lang::of(&l.to_string())).unwrap_or_else(|| self.language(headers))
    }
}

fn refusal(lang: Lang, error: &UnsubscribeError) -> Response {
    // Forged, expired and used links are refused alike (400), with no customer named.
    let (title, text) = match error {
        UnsubscribeError::Link(OptOutError::Expired) => (
            pick(lang, words::LINK_EXPIRED),
            pick(
                lang,
                [
                    "Use the link in a newer message.",
                    "Use el enlace de un mensaje más reciente.",
                    "Utilisez le lien d'un message plus récent.",
                    "Verwenden Sie den Link aus einer neueren Nachricht.",
                    "Use o link de uma mensagem mais recente.",
                ],
            ),
        ),
        UnsubscribeError::Link(_) => (pick(lang, words::LINK_BROKEN), pick(lang, words::LINK_AS_SENT)),
        UnsubscribeError::Used => (
            pick(
                lang,
                [
                    "This link was already used",
                    "Este enlace ya se ha usado",
                    "Ce lien a déjà servi",
                    "Dieser Link wurde bereits verwendet",
                    "Este link já foi usado",
                ],
            ),
            pick(
                lang,
                [
                    "Nothing was changed this time. You choose what you receive on your page, through the link in our messages.",
                    "Esta vez no se ha cambiado nada. Elija lo que recibe en su página, desde el enlace de nuestros mensajes.",
                    "Rien n'a été modifié cette fois. Choisissez ce que vous recevez sur votre page, via le lien de nos messages.",
                    "Diesmal wurde nichts geändert. Was Sie erhalten, wählen Sie auf Ihrer Seite, über den Link in unseren Nachrichten.",
                    "Desta vez nada foi alterado. Escolha o que recebe na sua página, através do link das nossas mensagens.",
                ],
            ),
        ),
        UnsubscribeError::Store(_) | UnsubscribeError::Key(_) => {
            tracing::error!(%error, "unsubscribe failed");
            return pages::failed(lang);
        }
    };
    pages::message(lang, StatusCode::BAD_REQUEST, title, &[text])
}

/// The confirmation step of an unsubscribe link: a page with a button; following the link
/// alone changes nothing (mail scanners follow links). No token but the link's.
#[utoipa::path(get, path = "/v1/unsubscribe", tag = "notices", params(TokenQuery),
    responses(
        (status = 200, description = "The page with the button", content_type = "text/html", body = String),
        (status = 400, description = "A forged, expired or used link (a page naming nobody), or no `token`",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Response {
    let lang = q.language(&headers);
    let key = match checking_key(state.engine.store().as_ref()).await {
        Ok(key) => key,
        Err(e) => return refusal(lang, &e),
    };
    let claim = match key.verify(&q.token, state.engine.clock().now()) {
        Ok(claim) => claim,
        Err(e) => return refusal(lang, &e.into()),
    };
    let lang = q.language_of(&state, &claim.customer_id, &headers).await;
    let title = pick(
        lang,
        [
            "Stop these messages?",
            "¿Dejar de recibir estos mensajes?",
            "Ne plus recevoir ces messages ?",
            "Diese Nachrichten abbestellen?",
            "Deixar de receber estas mensagens?",
        ],
    );
    let button =
        pick(lang, ["Unsubscribe", "Darme de baja", "Me désabonner", "Abbestellen", "Deixar de receber"]);
    pages::unsubscribe(lang, q.chosen(), title, button, &q.token)
}

/// Unsubscribes: the page's button, or a mail client's RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`, which is not read: the link says it all).
#[utoipa::path(post, path = "/v1/unsubscribe", tag = "notices", params(TokenQuery),
    responses(
        (status = 200, description = "Unsubscribed: a page saying from what", content_type = "text/html", body = String),
        (status = 400, description = "A forged, expired or used link (a page naming nobody), or no `token`",
            content((String = "text/html"), (ErrorBody = "application/json"))),
        (status = 413, description = "A body over 4 KiB", body = ErrorBody),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn unsubscribe_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Response {
    let lang = q.language(&headers);
    let store = state.engine.store().as_ref();
    let result = match checking_key(store).await {
        Ok(key) => unsubscribe(store, &key, &q.token, state.engine.clock().now()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            let lang = q.language_of(&state, &done.customer_id, &headers).await;
            let topics: Vec<&str> = done.topics.iter().map(|&t| topic_word(lang, t)).collect();
            let channels: Vec<&str> = done.channels.iter().map(|&c| channel_word(lang, c)).collect();
            let stopped = pick(
                lang,
                [
                    "You will no longer receive:",
                    "Ya no recibirá:",
                    "Vous ne recevrez plus :",
                    "Sie erhalten nicht mehr:",
                    "Deixará de receber:",
                ],
            );
            let done = format!("{stopped} {} ({}).", topics.join(", "), channels.join(", "));
            let title = pick(
                lang,
                [
                    "You are unsubscribed",
                    "Se ha dado de baja de estos mensajes",
                    "Votre désabonnement est enregistré",
                    "Sie haben diese Nachrichten abbestellt",
                    "Cancelamento confirmado",
                ],
            );
            pages::message(lang, StatusCode::OK, title, &[&done])
        }
        Err(e) => refusal(lang, &e),
    }
}

/// One delivery receipt from the SMS gateway, in the generic shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The gateway's message id (the one it answered when the message was sent).
    pub provider_id: String,
    /// `delivered`, or `failed` / `undelivered` / `rejected` / `expired`.
    pub status: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// Twilio's status callback (form fields).
#[derive(Debug, Deserialize)]
pub struct TwilioStatus {
    #[serde(rename = "MessageSid")]
    pub message_sid: String,
    #[serde(rename = "MessageStatus")]
    pub message_status: String,
    #[serde(rename = "ErrorCode", default)]
    pub error_code: Option<String>,
}

/// What a receipt's status means; `None` for the in-between ones (queued, sent, accepted).
fn receipt_report(status: &str, detail: Option<String>) -> Option<ChannelReport> {
    match status.to_ascii_lowercase().as_str() {
        "delivered" => Some(ChannelReport::Delivered),
        s @ ("failed" | "undelivered" | "rejected" | "expired") => {
            Some(ChannelReport::Failed { detail: detail.unwrap_or_else(|| format!("gateway: {s}")) })
        }
        _ => None,
    }
}

/// Delivery receipts from the SMS gateway: a JSON array of `{provider_id, status,
/// detail?}` (at most 1,000), or one Twilio status callback (form-encoded).
#[utoipa::path(post, path = "/v1/channels/sms/receipts", tag = "notices",
    request_body(content(
        (Vec<schemas::SmsReceipt> = "application/json"),
        (schemas::TwilioStatus = "application/x-www-form-urlencoded"),
    )),
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "How many receipts were applied", body = schemas::ReportOutcome),
        (status = 422, description = "More than 1,000 receipts; nothing recorded", body = ErrorBody),
    ))]
pub async fn sms_receipts(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Json<ReportOutcome>, ApiError> {
    let form = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    let receipts = if form {
        let Form(status) = Form::<TwilioStatus>::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
        let detail = status.error_code.map(|code| format!("twilio error {code}"));
        vec![(status.message_sid, receipt_report(&status.message_status, detail))]
    } else {
        let JsonBody(list) = JsonBody::<Vec<Receipt>>::from_request(request, &()).await?;
        if list.len() > REPORTS_MAX {
            return Err(ApiError::invalid(format!("at most {REPORTS_MAX} receipts per request"), Vec::new()));
        }
        list.into_iter().map(|r| (r.provider_id, receipt_report(&r.status, r.detail))).collect()
    };
    Ok(Json(state.engine.apply_sms_receipts(receipts).await?))
}

/// One bounce reported by the mail system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounce {
    /// The notice key, from the bounced message's `X-Amends-Notice-Key` header.
    pub key: String,
    /// `hard` (the address does not work: the notice failed, and the address counts
    /// towards quarantine) or `soft` (a full mailbox: recorded nowhere, the relay retries).
    pub kind: String,
    #[serde(default)]
    pub detail: Option<String>,
}

/// Bounces reported to a webhook by the mail system: a JSON array (at most 1,000).
#[utoipa::path(post, path = "/v1/channels/email/bounces", tag = "notices",
    request_body = Vec<schemas::Bounce>,
    security(("bearer" = ["operator"])),
    responses(
        (status = 200, description = "How many bounces were applied", body = schemas::ReportOutcome),
        (status = 422, description = "More than 1,000 bounces, or a kind not hard or soft; nothing recorded", body = ErrorBody),
    ))]
pub async fn email_bounces(
    State(state): State<AppState>,
    JsonBody(bounces): JsonBody<Vec<Bounce>>,
) -> Result<Json<ReportOutcome>, ApiError> {
    if bounces.len() > REPORTS_MAX {
        return Err(ApiError::invalid(format!("at most {REPORTS_MAX} bounces per request"), Vec::new()));
    }
    let bad: Vec<String> = bounces
        .iter()
        .enumerate()
        .filter(|(_, b)| !matches!(b.kind.as_str(), "hard" | "soft"))
        .map(|(i, b)| format!("bounces[{i}].kind {:?} is not hard or soft", b.kind))
        .collect();
    if !bad.is_empty() {
        return Err(ApiError::invalid("bounces refused, nothing was recorded", bad));
    }
    // A soft bounce (a full mailbox) is recorded nowhere: the relay retries.
    let soft = bounces.iter().filter(|b| b.kind == "soft").count() as u64;
    let hard = bounces
        .into_iter()
        .filter(|b| b.kind == "hard")
        .map(|b| (b.key, format!("bounce: {}", b.detail.unwrap_or_else(|| "hard".into()))))
        .collect();
    let mut outcome = state.engine.apply_hard_bounces(hard).await?;
    outcome.ignored += soft;
    Ok(Json(outcome))
}

/// Quarantined contact points.
#[utoipa::path(get, path = "/v1/quarantine", tag = "notices", security(("bearer" = ["read"])),
    responses((status = 200, description = "Quarantined contact points", body = Vec<schemas::ContactPoint>)))]
pub async fn list_quarantine(State(state): State<AppState>) -> Result<Json<Vec<ContactPointRow>>, ApiError> {
    Ok(Json(state.engine.store().quarantined().await?))
}

/// Lifts a quarantine (the customer fixed their address); its failures are forgotten.
#[utoipa::path(delete, path = "/v1/quarantine/{channel}/{recipient}", tag = "notices",
    params(("channel" = String, Path), ("recipient" = String, Path)),
    security(("bearer" = ["operator"])),
    responses(
        (status = 204, description = "Lifted"),
        (status = 404, description = "No failures on record for that contact point", body = ErrorBody),
    ))]
pub async fn lift_quarantine(
    State(state): State<AppState>,
    PathParam((channel, recipient)): PathParam<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if state.engine.lift_quarantine(&channel, &recipient).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("{channel} contact point {recipient} has no failures on record")))
    }
}

#[cfg(test)]
mod tests {
    use super::redact_tokens;

    #[test]
    fn signed_links_are_redacted_and_the_rest_is_kept() {
        assert_eq!(
            redact_tokens("Answer: https://x.example/v1/surveys/answer?token=eyJ2.abc_-9\nThanks"),
            "Answer: https://x.example/v1/surveys/answer?token=[redacted]\nThanks"
        );
        assert_eq!(
            redact_tokens("a?token=t1&b=2 and token=t2)"),
            "a?token=[redacted]&b=2 and token=[redacted])"
        );
        assert_eq!(redact_tokens("no link, token= empty"), "no link, token= empty");
    }
}
