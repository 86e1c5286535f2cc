//! A customer's own page (issue 20), reached from the signed link in every notice
//! (`page_url`): no password, one customer, expiring.
//!
//! - `GET /my?token=...`: their open incidents with the estimate in their zone and
//!   language (and, for a detected one, whether their own device is back), what they were
//!   told, their credits with the explanation and the statement each lands on, their
//!   preferences, and the "I'm still offline" button.
//! - `POST /my/still-offline?token=...` and `POST /my/preferences?token=...`: the page's two
//!   forms. Each carries the page's form token (CSRF): a form another site makes cannot.
//!   Both answer with a redirect back to the page (303), which then says what was done, so
//!   a reload never posts twice. `POST /my/rebook?token=...` takes one of the slots held
//!   for a failed visit, in one click, the same way.
//!
//! Written in the customer's language (English, Spanish or French; the rest read English)
//! from templates that escape every value. A forged, altered or expired link gets a page
//! in the reader's language (`Accept-Language`) that names nobody.

use super::AppState;
use super::error::{ApiError, FormBody, QueryParams};
use super::pages;
use super::status::state_word;
use amends_core::appointment::AppointmentStatus;
use amends_core::preferences::{Channel, Topic};
use amends_recovery::optout::OptOutError;
use amends_recovery::page::{CustomerPage, PageError, PreferencesForm, StillOffline};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// `?token=` and, after a form, `?done=` (what it did).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The signed link's token, from a notice.
    pub token: String,
    /// `still_offline`, `case_opened`, `recorded` or `saved`: what the last form did.
    pub done: Option<String>,
}

/// The rebooking form: a failed visit and the start of the held slot taken.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RebookForm {
    /// The page's form token, from the page.
    pub form: String,
    /// The failed visit's reference.
    pub visit: String,
    /// The start of one of the slots held for it, as the page gives it.
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
}

/// The leaving form: the optional reason.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LeaveForm {
    /// The page's form token, from the page.
    pub form: String,
    /// One of the reasons the page offers; absent or empty: not said.
    #[serde(default)]
    pub reason: Option<String>,
    /// Their own words, with the reason `other`.
    #[serde(default)]
    pub reason_text: Option<String>,
}

/// The preferences form, as the page sends it (described for the API document: the
/// handler reads the fields by hand, since `tick` repeats).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PreferencesFormFields {
    /// The page's form token, from the page.
    pub form: String,
    /// `<topic>.<channel>`, once per box ticked (`update.email`).
    #[serde(default)]
    pub tick: Vec<String>,
    /// `HH:MM`, or empty with `quiet_end` for no quiet hours.
    #[serde(default)]
    pub quiet_start: String,
    #[serde(default)]
    pub quiet_end: String,
}

/// The claim form: an amount a policy pays only on request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimForm {
    /// The page's form token, from the page.
    pub form: String,
    /// The offer claimed, as the page gives it.
    pub offer: String,
}

/// The still-offline form: only the page's form token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StillOfflineForm {
    /// The page's form token, from the page.
    pub form: String,
}

/// The languages the page is written in.
fn page_language(locale: &str) -> &'static str {
    match locale.split('-').next().unwrap_or("") {
        "es" => "es",
        "fr" => "fr",
        _ => "en",
    }
}

/// The reader's language for a page without a customer (a link that does not work).
fn reader_language(headers: &HeaderMap) -> &'static str {
    let accepted = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    accepted
        .split(',')
        .map(|part| page_language(part.split(';').next().unwrap_or("").trim()))
        .find(|l| *l != "en")
        .unwrap_or("en")
}

fn refusal(error: &PageError, headers: &HeaderMap) -> Response {
    let lang = reader_language(headers);
    let (status, title, text) = match error {
        PageError::Link(OptOutError::Expired) => (
            StatusCode::GONE,
            pick(lang, ["This link has expired", "Este enlace ha caducado", "Ce lien a expiré"]),
            pick(
                lang,
                [
                    "The link in your latest message opens your page.",
                    "El enlace de su último mensaje abre su página.",
                    "Le lien de votre dernier message ouvre votre page.",
                ],
            ),
        ),
        PageError::Link(_) => (
            StatusCode::BAD_REQUEST,
            pick(lang, ["This link does not work", "Este enlace no funciona", "Ce lien ne fonctionne pas"]),
            pick(
                lang,
                [
                    "Open the link from your message as it came, without changing it.",
                    "Abra el enlace de su mensaje tal como llegó, sin cambiarlo.",
                    "Ouvrez le lien de votre message tel quel, sans le modifier.",
                ],
            ),
        ),
        PageError::Forged => (
            StatusCode::FORBIDDEN,
            pick(lang, ["Nothing was changed", "No se ha cambiado nada", "Rien n'a été modifié"]),
            pick(
                lang,
                [
                    "This form did not come from your page. Open your page again and use it there.",
                    "Este formulario no viene de su página. Abra de nuevo su página y úselo allí.",
                    "Ce formulaire ne vient pas de votre page. Rouvrez votre page et utilisez-le là.",
                ],
            ),
        ),
        PageError::Form(problem) => {
            let title = pick(lang, ["Nothing was changed", "No se ha cambiado nada", "Rien n'a été modifié"]);
            return pages::message_in(
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                title,
                &[&format!("{problem}.")],
            );
        }
        PageError::Engine(e) => {
            tracing::error!(error = %e, "customer page failed");
            return pages::failed();
        }
    };
    pages::message_in(lang, status, title, &[text])
}

fn pick(lang: &str, [en, es, fr]: [&'static str; 3]) -> &'static str {
    match lang {
        "es" => es,
        "fr" => fr,
        _ => en,
    }
}

/// The customer's page.
#[utoipa::path(get, path = "/my", tag = "pages", params(PageQuery),
    responses(
        (status = 200, description = "The customer's page", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 410, description = "The link has expired (a page naming nobody)", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
) -> Response {
    match state.engine.customer_page(&q.token).await {
        Ok(page) => render(&page, &q.token, q.done.as_deref()),
        Err(e) => refusal(&e, &headers),
    }
}

/// "I'm still offline": recorded as a contact while an incident covers the customer; after
/// a restoration it opens the case the still-down flow opens, never twice.
#[utoipa::path(post, path = "/my/still-offline", tag = "pages", params(PageQuery),
    request_body(content = StillOfflineForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Done: back to the page, which says what was done"),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page (no or a wrong form token)", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn still_offline(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    FormBody(form): FormBody<StillOfflineForm>,
) -> Response {
    match state.engine.still_offline(&q.token, &form.form).await {
        Ok(outcome) => {
            let done = match outcome {
                StillOffline::Known { .. } => "still_offline",
                StillOffline::CaseOpened { .. } => "case_opened",
                StillOffline::Recorded => "recorded",
            };
            back_to_page(&q.token, done)
        }
        Err(e) => refusal(&e, &headers),
    }
}

/// Claims an amount a policy pays only on request: written to the ledger under its own
/// key, once (a second press changes nothing), on the customer's next bill.
#[utoipa::path(post, path = "/my/claim", tag = "pages", params(PageQuery),
    request_body(content = ClaimForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Claimed (now or before): back to the page, which shows the credit"),
        (status = 400, description = "A forged or altered link (a page naming nobody), no `token`, or a form missing a field",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "No such amount is offered to this customer (a page)", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn claim(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    FormBody(form): FormBody<ClaimForm>,
) -> Response {
    match state.engine.claim_by_link(&q.token, &form.form, &form.offer).await {
        Ok(_) => back_to_page(&q.token, "claimed"),
        Err(e) => refusal(&e, &headers),
    }
}

/// Rebooks a failed visit into one of the slots held for it: one click.
#[utoipa::path(post, path = "/my/rebook", tag = "pages", params(PageQuery),
    request_body(content = RebookForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Booked: back to the page, which shows the new visit"),
        (status = 400, description = "A forged or altered link (a page naming nobody), no `token`, or a form missing a field",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "Not their visit, or the slot is no longer held (a page)", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn rebook(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    FormBody(form): FormBody<RebookForm>,
) -> Response {
    match state.engine.rebook_by_link(&q.token, &form.form, &form.visit, form.start).await {
        Ok(_) => back_to_page(&q.token, "rebooked"),
        Err(e) => refusal(&e, &headers),
    }
}

/// Leaving, on one page: the optional reason, the one offer beside the button (never in
/// the way), and the button.
#[utoipa::path(get, path = "/my/leave", tag = "pages", params(PageQuery),
    responses(
        (status = 200, description = "The leaving page", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn leave_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
) -> Response {
    let page = match state.engine.leave_page(&q.token).await {
        Ok(page) => page,
        Err(e) => return refusal(&e, &headers),
    };
    let lang = page_language(&page.locale);
    let reasons: Vec<minijinja::Value> =
        page.reasons.iter().map(|r| context! { id => r, label => reason_word(lang, r) }).collect();
    pages::leave(context! {
        lang, title => pick(lang, ["Leaving us", "Darse de baja", "Nous quitter"]),
        token => &q.token, form_token => &page.form_token, reasons, offer => &page.offer,
        why => pick(lang, ["Why are you leaving? (You need not say.)", "¿Por qué se va? (No hace falta decirlo.)", "Pourquoi partez-vous ? (Rien ne vous oblige à le dire.)"]),
        not_say => pick(lang, ["I'd rather not say", "Prefiero no decirlo", "Je préfère ne pas le dire"]),
        own_words => pick(lang, ["In your own words (with \"other\")", "Con sus palabras (con «otro»)", "Avec vos mots (avec « autre »)"]),
        button => pick(lang, ["Cancel my service", "Dar de baja mi servicio", "Résilier mon service"]),
        offer_intro => pick(lang, ["Before you go, one offer, if it helps:", "Antes de irse, una oferta, por si le sirve:", "Avant de partir, une offre, si elle vous aide :"]),
        back => pick(lang, ["Back to your page", "Volver a su página", "Retour à votre page"]),
    })
}

/// Leaves: the cancellation is recorded (channel `web`) and confirmed on the page, with the
/// final bill line by line; the confirmation is also sent as a notice.
#[utoipa::path(post, path = "/my/leave", tag = "pages", params(PageQuery),
    request_body(content = LeaveForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Cancelled: the confirmation with the final bill", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), no `token`, or a form missing a field",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "A reason not offered, or cancelled already (a page)", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    FormBody(form): FormBody<LeaveForm>,
) -> Response {
    let reason = form.reason.filter(|r| !r.trim().is_empty());
    let text = form.reason_text.filter(|t| !t.trim().is_empty());
    let left = match state.engine.leave_by_link(&q.token, &form.form, reason, text).await {
        Ok(left) => left,
        Err(e) => return refusal(&e, &headers),
    };
    let lang = page_language(&left.locale);
    pages::left(context! {
        lang, title => pick(lang, ["You have left us", "Se ha dado de baja", "Votre service est résilié"]),
        reference => &left.reference, effective => &left.effective_local, lines => &left.bill_lines,
        total => &left.bill_total, refund => left.refund,
        ends => pick(lang, ["Your service ends", "Su servicio termina el", "Votre service prend fin le"]),
        reference_word => pick(lang, ["Reference", "Referencia", "Référence"]),
        bill => pick(lang, ["Your final bill", "Su última factura", "Votre dernière facture"]),
        total_word => if left.refund {
            pick(lang, ["We owe you", "Le debemos", "Nous vous devons"])
        } else {
            pick(lang, ["Total due", "Total a pagar", "Total dû"])
        },
        thanks => pick(lang, [
            "Thank you for having been with us. You are welcome back at any time.",
            "Gracias por haber estado con nosotros. Puede volver cuando quiera.",
            "Merci d'avoir été avec nous. Vous pouvez revenir quand vous voulez.",
        ]),
    })
}

/// A reason id in the customer's words; an id a provider made up reads as its words.
fn reason_word(lang: &str, id: &str) -> String {
    let known = match id {
        "too_expensive" => Some(["It costs too much", "Es demasiado caro", "C'est trop cher"]),
        "service_quality" => Some([
            "The service is not good enough",
            "El servicio no es bastante bueno",
            "Le service n'est pas assez bon",
        ]),
        "outages" => Some(["Too many outages", "Demasiadas averías", "Trop de pannes"]),
        "moving" => Some(["I am moving", "Me mudo", "Je déménage"]),
        "competitor" | "switching_provider" => Some([
            "A better offer elsewhere",
            "Una oferta mejor en otro sitio",
            "Une meilleure offre ailleurs",
        ]),
        "no_longer_needed" => Some(["I no longer need it", "Ya no lo necesito", "Je n'en ai plus besoin"]),
        "other" => Some(["Something else", "Otro motivo", "Autre chose"]),
        _ => None,
    };
    match known {
        Some(words) => pick(lang, words).to_string(),
        None => id.replace('_', " "),
    }
}

/// Saves the preferences form: every topic's channels as ticked (`tick=<topic>.<channel>`,
/// repeated), and the quiet hours (`quiet_start`, `quiet_end`, `HH:MM`, both empty for none).
#[utoipa::path(post, path = "/my/preferences", tag = "pages", params(PageQuery),
    request_body(content = PreferencesFormFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Saved: back to the page"),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "A value the form never offers (a page)", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn preferences(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return ApiError::not_a_form().into_response();
    }
    // Repeated fields (one `tick` per box) read as pairs, which a struct cannot hold.
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return refusal(&PageError::Form("the form could not be read".into()), &headers);
    };
    let mut form = PreferencesForm::default();
    let mut form_token = String::new();
    for (name, value) in pairs {
        match name.as_str() {
            "tick" => form.ticked.push(value),
            "quiet_start" => form.quiet_start = value,
            "quiet_end" => form.quiet_end = value,
            "form" => form_token = value,
            _ => {}
        }
    }
    match state.engine.change_preferences_by_link(&q.token, &form_token, &form).await {
        Ok(_) => back_to_page(&q.token, "saved"),
        Err(e) => refusal(&e, &headers),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// 303 to the page, saying what was done: a reload of the result posts nothing again.
fn back_to_page(token: &str, done: &str) -> Response {
    let query = serde_urlencoded::to_string([("token", token), ("done", done)]).unwrap_or_default();
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/my?{query}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn render(page: &CustomerPage, token: &str, done: Option<&str>) -> Response {
    let lang = page_language(&page.locale);
    let w = words(lang);
    let incidents: Vec<minijinja::Value> = page
        .incidents
        .iter()
        .map(|i| {
            context! {
                incident_id => i.incident_id.as_str(), cause => &i.cause, state => state_word(lang, i.state),
                started => &i.started_local, etr => &i.etr_local, next_update => &i.next_update_by_local,
                device_back => i.device_back,
            }
        })
        .collect();
    let channels: Vec<minijinja::Value> =
        Channel::ALL.iter().map(|&c| context! { label => channel_word(lang, c) }).collect();
    let topics: Vec<minijinja::Value> = Topic::ALL
        .iter()
        .map(|&t| {
            let on = page.preferences.channels.get(&t);
            let boxes: Vec<minijinja::Value> = Channel::ALL
                .iter()
                .map(|&c| {
                    context! {
                        value => format!("{}.{}", t.as_str(), c.as_str()),
                        label => channel_word(lang, c),
                        on => on.is_some_and(|set| set.contains(&c)),
                    }
                })
                .collect();
            context! { label => topic_word(lang, t), boxes }
        })
        .collect();
    let notices: Vec<minijinja::Value> = page
        .notices
        .iter()
        .map(|n| context! { subject => &n.subject, channel => channel_word(lang, n.channel), sent => &n.sent_local })
        .collect();
    let visits: Vec<minijinja::Value> = page
        .visits
        .iter()
        .map(|v| {
            let held: Vec<minijinja::Value> = v
                .held
                .iter()
                .map(|h| context! { start => h.start.to_string(), window => &h.window_local })
                .collect();
            context! {
                reference => &v.reference, window => &v.window_local,
                status => visit_word(lang, v.status), held,
            }
        })
        .collect();
    let done = done.and_then(|d| done_word(lang, d));
    let ctx = context! {
        lang, title => w.title, hello => format!("{} {}", w.hello, page.name), w => context! {
            affected => w.affected, none_affected => w.none_affected, state => w.state, started => w.started,
            etr => w.etr, next_update => w.next_update, device_back => w.device_back,
            device_down => w.device_down, still_offline => w.still_offline, notices => w.notices,
            no_notices => w.no_notices, pending => w.pending, credits => w.credits,
            no_credits => w.no_credits, on_statement => w.on_statement, prefs => w.prefs,
            topic => w.topic, quiet => w.quiet, from => w.from, to => w.to, save => w.save,
            status_link => w.status_link, more => w.more, times_in => w.times_in,
            visits => w.visits, pick_slot => w.pick_slot, leave => w.leave,
        },
        visits,
        zone => &page.zone, incidents, notices, notices_unlisted => page.notices_unlisted,
        credits => minijinja::Value::from(minijinja::value::Serde(&page.credits)),
        offers => minijinja::Value::from(minijinja::value::Serde(&page.offers)),
        on_request => context! {
            title => pick(lang, ["Also yours, if you ask: press to claim", "También suyo si lo pide: pulse para reclamarlo", "À vous aussi sur demande : appuyez pour le réclamer"]),
            claim => pick(lang, ["Claim", "Reclamar", "Réclamer"]),
            claimed => pick(lang, ["Claimed: on your bill of", "Reclamado: en su factura del", "Réclamé : sur votre facture du"]),
        },
        channels, topics, quiet_start => &page.preferences.quiet_start,
        quiet_end => &page.preferences.quiet_end, token, form_token => &page.form_token, done,
    };
    pages::customer(ctx)
}

struct Words {
    title: &'static str,
    hello: &'static str,
    affected: &'static str,
    none_affected: &'static str,
    state: &'static str,
    started: &'static str,
    etr: &'static str,
    next_update: &'static str,
    device_back: &'static str,
    device_down: &'static str,
    still_offline: &'static str,
    notices: &'static str,
    no_notices: &'static str,
    pending: &'static str,
    credits: &'static str,
    no_credits: &'static str,
    on_statement: &'static str,
    prefs: &'static str,
    topic: &'static str,
    quiet: &'static str,
    from: &'static str,
    to: &'static str,
    save: &'static str,
    status_link: &'static str,
    more: &'static str,
    times_in: &'static str,
    visits: &'static str,
    pick_slot: &'static str,
    leave: &'static str,
}

fn words(lang: &str) -> Words {
    match lang {
        "es" => Words {
            title: "Su servicio",
            hello: "Hola,",
            affected: "¿Está afectado mi servicio?",
            none_affected: "Ninguna avería que conozcamos afecta a su servicio.",
            state: "Estado",
            started: "Empezó",
            etr: "Esperamos que vuelva antes del",
            next_update: "Próxima actualización antes del",
            device_back: "Su equipo vuelve a estar conectado.",
            device_down: "Su equipo sigue sin conexión.",
            still_offline: "Sigo sin servicio",
            notices: "Lo que le hemos dicho",
            no_notices: "Aún no le hemos escrito.",
            pending: "pendiente de envío",
            credits: "Sus créditos",
            no_credits: "No tiene créditos.",
            on_statement: "en su factura del",
            prefs: "Cómo le avisamos",
            topic: "Aviso",
            quiet: "Horas de silencio (sin SMS)",
            from: "Desde",
            to: "Hasta",
            save: "Guardar",
            status_link: "Estado del servicio para todos",
            more: "más antiguos no se muestran",
            times_in: "Horas en",
            visits: "Sus visitas",
            leave: "Darse de baja",
            pick_slot: "Le guardamos estas horas. Elija una y queda reservada:",
        },
        "fr" => Words {
            title: "Votre service",
            hello: "Bonjour,",
            affected: "Mon service est-il touché ?",
            none_affected: "Aucune panne connue ne touche votre service.",
            state: "État",
            started: "Début",
            etr: "Retour prévu d'ici le",
            next_update: "Prochaine mise à jour d'ici le",
            device_back: "Votre équipement est de nouveau en ligne.",
            device_down: "Votre équipement est toujours hors ligne.",
            still_offline: "Je suis toujours sans service",
            notices: "Ce que nous vous avons dit",
            no_notices: "Nous ne vous avons pas encore écrit.",
            pending: "en attente d'envoi",
            credits: "Vos crédits",
            no_credits: "Vous n'avez pas de crédit.",
            on_statement: "sur votre facture du",
            prefs: "Comment nous vous prévenons",
            topic: "Message",
            quiet: "Heures calmes (pas de SMS)",
            from: "De",
            to: "À",
            save: "Enregistrer",
            status_link: "État du service pour tous",
            more: "plus anciens ne sont pas affichés",
            times_in: "Heures en",
            visits: "Vos visites",
            leave: "Résilier",
            pick_slot: "Nous vous gardons ces créneaux. Choisissez-en un et il est réservé :",
        },
        _ => Words {
            title: "Your service",
            hello: "Hello",
            affected: "Is my service affected?",
            none_affected: "No outage we know of affects your service.",
            state: "Status",
            started: "Started",
            etr: "Expected back by",
            next_update: "Next update by",
            device_back: "Your equipment is back online.",
            device_down: "Your equipment is still offline.",
            still_offline: "I'm still offline",
            notices: "What we told you",
            no_notices: "We have not written to you yet.",
            pending: "waiting to be sent",
            credits: "Your credits",
            no_credits: "You have no credits.",
            on_statement: "on your bill of",
            prefs: "How we reach you",
            topic: "Message",
            quiet: "Quiet hours (no SMS)",
            from: "From",
            to: "To",
            save: "Save",
            status_link: "Service status for everyone",
            more: "older ones are not shown",
            times_in: "Times in",
            visits: "Your visits",
            leave: "Leave us",
            pick_slot: "We are holding these times for you. Pick one and it is booked:",
        },
    }
}

fn done_word(lang: &str, done: &str) -> Option<&'static str> {
    Some(match done {
        "still_offline" => pick(
            lang,
            [
                "Thank you for telling us. We know of the outage above and are working on it.",
                "Gracias por decírnoslo. Conocemos la avería de arriba y estamos trabajando en ella.",
                "Merci de nous l'avoir dit. Nous connaissons la panne ci-dessus et y travaillons.",
            ],
        ),
        "case_opened" => pick(
            lang,
            [
                "Thank you for telling us. Someone now looks after this for you and will be in touch.",
                "Gracias por decírnoslo. Una persona se ocupa ahora de esto y se pondrá en contacto con usted.",
                "Merci de nous l'avoir dit. Une personne s'en occupe désormais et vous contactera.",
            ],
        ),
        "recorded" => pick(
            lang,
            [
                "Thank you for telling us. We have noted it and will look into it.",
                "Gracias por decírnoslo. Lo hemos anotado y lo revisaremos.",
                "Merci de nous l'avoir dit. Nous l'avons noté et allons vérifier.",
            ],
        ),
        "rebooked" => pick(
            lang,
            [
                "Your new visit is booked. The confirmation is on its way.",
                "Su nueva visita está reservada. Le enviamos la confirmación.",
                "Votre nouvelle visite est réservée. La confirmation arrive.",
            ],
        ),
        "claimed" => pick(
            lang,
            [
                "Claimed. It is in your credits above and will be on your next bill.",
                "Reclamado. Está en sus créditos de arriba y figurará en su próxima factura.",
                "Réclamé. Il figure dans vos crédits ci-dessus et sera sur votre prochaine facture.",
            ],
        ),
        "saved" => pick(
            lang,
            [
                "Your preferences are saved.",
                "Sus preferencias están guardadas.",
                "Vos préférences sont enregistrées.",
            ],
        ),
        _ => return None,
    })
}

fn visit_word(lang: &str, status: AppointmentStatus) -> &'static str {
    use AppointmentStatus::*;
    match status {
        Booked => pick(lang, ["Booked", "Reservada", "Réservée"]),
        Arrived => pick(lang, ["Technician on site", "Técnico en su casa", "Technicien sur place"]),
        Completed => pick(lang, ["Done", "Hecha", "Faite"]),
        CancelledByCustomer => pick(lang, ["Cancelled by you", "Cancelada por usted", "Annulée par vous"]),
        CancelledByProvider => pick(lang, ["Cancelled by us", "Cancelada por nosotros", "Annulée par nous"]),
        Missed => pick(lang, ["We did not come", "No acudimos", "Nous ne sommes pas venus"]),
    }
}

fn channel_word(lang: &str, channel: Channel) -> &'static str {
    match channel {
        Channel::Email => pick(lang, ["Email", "Correo", "E-mail"]),
        Channel::Sms => "SMS",
        Channel::Webhook => pick(lang, ["Our app", "Nuestra app", "Notre appli"]),
    }
}

fn topic_word(lang: &str, topic: Topic) -> &'static str {
    match topic {
        Topic::Acknowledgement => {
            pick(lang, ["An outage affects you", "Una avería le afecta", "Une panne vous touche"])
        }
        Topic::Update => pick(lang, ["Updates", "Novedades", "Mises à jour"]),
        Topic::EtrChange => pick(lang, ["New estimates", "Nuevas estimaciones", "Nouvelles estimations"]),
        Topic::Restored => pick(lang, ["Service back", "Servicio restablecido", "Service rétabli"]),
        Topic::Credit => pick(lang, ["Credits", "Créditos", "Crédits"]),
        Topic::StillDown => pick(lang, ["Still offline", "Sigue sin servicio", "Toujours sans service"]),
        Topic::Case => pick(lang, ["Your cases", "Sus casos", "Vos dossiers"]),
        Topic::Appointment => pick(lang, ["Visits", "Visitas", "Visites"]),
        Topic::Account => pick(lang, ["Your account", "Su cuenta", "Votre compte"]),
        Topic::Survey => pick(lang, ["Surveys", "Encuestas", "Enquêtes"]),
    }
}
