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
//! Written in the customer's language (English, Spanish, French, German or Portuguese, as
//! their notices are; the rest read English), or in the one they choose with `?lang=`
//! (the page's language links, which the forms and links keep), from templates that
//! escape every value. A forged, altered or expired link gets a page in the reader's
//! language (`?lang=`, else `Accept-Language`: see `words`) that names nobody.

use super::AppState;
use super::error::{ApiError, FormBody, QueryParams};
use super::pages;
use super::words::{self, Lang, channel_word, pick, state_word, topic_word};
use amends_core::appointment::AppointmentStatus;
use amends_core::preferences::{Channel, Topic};
use amends_recovery::optout::OptOutError;
use amends_recovery::page::{CustomerPage, FreshLink, PageError, PreferencesForm, StillOffline};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?token=`, the language chosen (`?lang=`) and, after a form, `?done=` (what it did).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The signed link's token, from a notice.
    pub token: String,
    /// `still_offline`, `case_opened`, `recorded` or `saved`: what the last form did.
    pub done: Option<String>,
    /// `en`, `es`, `fr`, `de` or `pt`: the page in that language; otherwise in the
    /// customer's own (a page for a link that does not work: the browser's).
    pub lang: Option<String>,
}

impl PageQuery {
    /// The language the reader chose, when the pages are written in it.
    fn chosen(&self) -> Option<Lang> {
        self.lang.as_deref().and_then(Lang::of)
    }

    /// The page's language: the one chosen, else the customer's (from their `locale`).
    fn language(&self, locale: &str) -> Lang {
        self.chosen().unwrap_or_else(|| words::page_language(locale))
    }
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
    /// The language of their messages and page: `en`, `es`, `fr`, `de` or `pt`; empty (or
    /// absent) for the one on record.
    #[serde(default)]
    #[schema(pattern = "^(|en|es|fr|de|pt)$")]
    pub language: String,
}

/// The claim form: an amount a policy pays only on request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimForm {
    /// The page's form token, from the page.
    pub form: String,
    /// The offer claimed, as the page gives it.
    pub offer: String,
}

/// A form that is one button: only the page's form token (still offline, a fresh link).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ButtonForm {
    /// The page's form token, from the page.
    pub form: String,
}

/// "Nothing was changed": a form refused.
const NOTHING_CHANGED: [&str; 5] = [
    "Nothing was changed",
    "No se ha cambiado nada",
    "Rien n'a été modifié",
    "Es wurde nichts geändert",
    "Nada foi alterado",
];

/// The page for a link or a form refused, in the reader's language (`?lang=`, else the
/// browser's: a refused link names nobody, so not the customer's either).
fn refusal(error: &PageError, q: &PageQuery, headers: &HeaderMap) -> Response {
    let lang = words::reader_language(q.lang.as_deref(), headers);
    let (status, title, text) = match error {
        PageError::Link(OptOutError::Expired) => (
            StatusCode::GONE,
            pick(lang, words::LINK_EXPIRED),
            pick(
                lang,
                [
                    "The link in your latest message opens your page.",
                    "El enlace de su último mensaje abre su página.",
                    "Le lien de votre dernier message ouvre votre page.",
                    "Der Link in unserer neuesten Nachricht an Sie öffnet Ihre Seite.",
                    "O link da nossa mensagem mais recente abre a sua página.",
                ],
            ),
        ),
        PageError::Link(_) => {
            (StatusCode::BAD_REQUEST, pick(lang, words::LINK_BROKEN), pick(lang, words::LINK_AS_SENT))
        }
        PageError::Forged => (
            StatusCode::FORBIDDEN,
            pick(lang, NOTHING_CHANGED),
            pick(
                lang,
                [
                    "This form did not come from your page. Open your page again and use it there.",
                    "Este formulario no viene de su página. Abra de nuevo su página y úselo allí.",
                    "Ce formulaire ne vient pas de votre page. Rouvrez votre page et utilisez-le là.",
                    "Dieses Formular stammt nicht von Ihrer Seite. Öffnen Sie Ihre Seite erneut und verwenden Sie es dort.",
                    "Este formulário não veio da sua página. Abra de novo a sua página e use-o lá.",
                ],
            ),
        ),
        PageError::Form(problem) => {
            // The engine says what was wrong in English only (a time no longer held, half
            // of the quiet hours): the reader's words say what to do, and the detail follows.
            let title = pick(lang, NOTHING_CHANGED);
            let again = pick(
                lang,
                [
                    "Open your page again, check what you chose and try once more.",
                    "Abra de nuevo su página, revise lo que eligió e inténtelo otra vez.",
                    "Rouvrez votre page, vérifiez votre choix et réessayez.",
                    "Öffnen Sie Ihre Seite erneut, prüfen Sie Ihre Auswahl und versuchen Sie es noch einmal.",
                    "Abra de novo a sua página, verifique o que escolheu e tente outra vez.",
                ],
            );
            let detail = format!("{problem}.");
            return pages::message(lang, StatusCode::UNPROCESSABLE_ENTITY, title, &[again, &detail]);
        }
        PageError::Engine(e) => {
            tracing::error!(error = %e, "customer page failed");
            return pages::failed(lang);
        }
    };
    pages::message(lang, status, title, &[text])
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
    // Kept by the whole address: the link, the language chosen, what the last form did.
    let address = serde_urlencoded::to_string([
        ("token", q.token.as_str()),
        ("lang", q.lang.as_deref().unwrap_or("")),
        ("done", q.done.as_deref().unwrap_or("")),
    ])
    .unwrap_or_default();
    let now = state.engine.clock().now();
    let status_key = match state.status.content_key(&state).await {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    // Only the values the page knows are kept apart: one link cannot fill the pages kept
    // with made-up addresses.
    let keepable = q.lang.as_deref().is_none_or(|l| words::Lang::of(l).is_some_and(|k| k.tag() == l))
        && q.done.as_deref().is_none_or(|d| done_word(Lang::En, d).is_some());
    if keepable && let Some(kept) = state.kept_pages.get(&address, now, &status_key) {
        return kept;
    }
    let began = state.kept_pages.before_building();
    let read_in = q.chosen().and_then(|l| amends_core::locale::Locale::parse(l.tag()).ok());
    match state.engine.customer_page(&q.token, read_in.as_ref()).await {
        Ok(page) if keepable => {
            let response = render(&page, &q);
            let kept = &state.kept_pages;
            kept.keep(address, &q.token, &page.customer_id, began, now, status_key, response).await
        }
        Ok(page) => render(&page, &q),
        Err(PageError::Link(OptOutError::Expired)) => expired(&state, &q, &headers).await,
        Err(e) => refusal(&e, &q, &headers),
    }
}

/// The page of an expired link: the link in the latest message opens the page, and, for
/// a link we signed not too long ago, one button sends a fresh link to the customer's own
/// address. Names nobody: the link says who it is for only to the server.
async fn expired(state: &AppState, q: &PageQuery, headers: &HeaderMap) -> Response {
    let Some(form_token) = state.engine.fresh_link_form(&q.token).await else {
        return refusal(&PageError::Link(OptOutError::Expired), q, headers);
    };
    let lang = words::reader_language(q.lang.as_deref(), headers);
    let query = serde_urlencoded::to_string([("token", q.token.as_str())]).unwrap_or_default();
    let form = context! {
        action => format!("/my/fresh-link?{query}{}", pages::keep_lang(q.chosen())),
        token => form_token,
        button => pick(lang, [
            "Send me a new link",
            "Envíenme un enlace nuevo",
            "Envoyez-moi un nouveau lien",
            "Neuen Link senden",
            "Enviem-me um link novo",
        ]),
    };
    let text = pick(
        lang,
        [
            "The link in your latest message opens your page. Or we send a new one to the email address or phone number we have for you.",
            "El enlace de su último mensaje abre su página. O le enviamos uno nuevo al correo o al teléfono que tenemos de usted.",
            "Le lien de votre dernier message ouvre votre page. Ou nous en envoyons un nouveau à l'adresse e-mail ou au numéro que nous avons pour vous.",
            "Der Link in unserer neuesten Nachricht öffnet Ihre Seite. Oder wir senden einen neuen an die E-Mail-Adresse oder Telefonnummer, die wir von Ihnen haben.",
            "O link da nossa mensagem mais recente abre a sua página. Ou enviamos um novo para o e-mail ou telefone que temos seus.",
        ],
    );
    pages::message_with_form(lang, StatusCode::GONE, pick(lang, words::LINK_EXPIRED), &[text], form)
}

/// Sends a fresh link to the customer of an expired one, to their own address (never
/// shown), at most once an hour.
#[utoipa::path(post, path = "/my/fresh-link", tag = "pages", params(PageQuery),
    request_body(content = ButtonForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Sent, sent already this hour, or no way to reach the customer (a page naming nobody)", content_type = "text/html", body = String),
        (status = 400, description = "A forged or altered link (a page naming nobody), or no `token`",
            content((String = "text/html"), (super::error::ErrorBody = "application/json"))),
        (status = 403, description = "The form did not come from the page", content_type = "text/html", body = String),
        (status = 410, description = "The link expired more than a year ago", content_type = "text/html", body = String),
        (status = 500, description = "The server failed (a page)", content_type = "text/html", body = String),
    ))]
pub async fn fresh_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<PageQuery>,
    FormBody(form): FormBody<ButtonForm>,
) -> Response {
    let outcome = match state.engine.fresh_link(&q.token, &form.form).await {
        Ok(outcome) => outcome,
        Err(e) => return refusal(&e, &q, &headers),
    };
    let lang = words::reader_language(q.lang.as_deref(), &headers);
    let (title, text) = match outcome {
        FreshLink::Sent | FreshLink::AlreadySent => (
            pick(
                lang,
                [
                    "A new link is on its way",
                    "Un enlace nuevo va de camino",
                    "Un nouveau lien est en route",
                    "Ein neuer Link ist unterwegs",
                    "Um link novo vai a caminho",
                ],
            ),
            pick(
                lang,
                [
                    "Look for our message in your email or on your phone in a few minutes. We send at most one new link an hour.",
                    "Busque nuestro mensaje en su correo o en su teléfono dentro de unos minutos. Enviamos como mucho un enlace nuevo por hora.",
                    "Cherchez notre message dans vos e-mails ou sur votre téléphone d'ici quelques minutes. Nous envoyons au plus un nouveau lien par heure.",
                    "Sehen Sie in einigen Minuten in Ihren E-Mails oder auf Ihrem Telefon nach. Wir senden höchstens einen neuen Link pro Stunde.",
                    "Procure a nossa mensagem no seu e-mail ou no seu telefone daqui a alguns minutos. Enviamos no máximo um link novo por hora.",
                ],
            ),
        ),
        FreshLink::Unreachable => (
            pick(lang, NOTHING_CHANGED),
            pick(
                lang,
                [
                    "We have no way to send you a new link. Please call us and we will help.",
                    "No tenemos forma de enviarle un enlace nuevo. Llámenos y le ayudaremos.",
                    "Nous n'avons aucun moyen de vous envoyer un nouveau lien. Appelez-nous et nous vous aiderons.",
                    "Wir können Ihnen keinen neuen Link senden. Bitte rufen Sie uns an, wir helfen Ihnen.",
                    "Não temos como lhe enviar um link novo. Ligue-nos e ajudamos.",
                ],
            ),
        ),
    };
    pages::message(lang, StatusCode::OK, title, &[text])
}

/// "I'm still offline": recorded as a contact while an incident covers the customer; after
/// a restoration it opens the case the still-down flow opens, never twice.
#[utoipa::path(post, path = "/my/still-offline", tag = "pages", params(PageQuery),
    request_body(content = ButtonForm, content_type = "application/x-www-form-urlencoded"),
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
    FormBody(form): FormBody<ButtonForm>,
) -> Response {
    match state.engine.still_offline(&q.token, &form.form).await {
        Ok(outcome) => {
            let done = match outcome {
                StillOffline::Known { .. } => "still_offline",
                StillOffline::CaseOpened { .. } => "case_opened",
                StillOffline::Recorded => "recorded",
            };
            back_to_page(&state, &q, done)
        }
        Err(e) => refusal(&e, &q, &headers),
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
        Ok(_) => back_to_page(&state, &q, "claimed"),
        Err(e) => refusal(&e, &q, &headers),
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
        Ok(_) => back_to_page(&state, &q, "rebooked"),
        Err(e) => refusal(&e, &q, &headers),
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
        Err(e) => return refusal(&e, &q, &headers),
    };
    let lang = q.language(&page.locale);
    let reasons: Vec<minijinja::Value> =
        page.reasons.iter().map(|r| context! { id => r, label => reason_word(lang, r) }).collect();
    pages::leave(context! {
        lang, title => pick(lang, ["Leaving us", "Darse de baja", "Nous quitter", "Vertrag kündigen", "Cancelar o serviço"]),
        token => &q.token, keep_lang => pages::keep_lang(q.chosen()), form_token => &page.form_token,
        reasons, offer => &page.offer,
        why => pick(lang, [
            "Why are you leaving? (You need not say.)",
            "¿Por qué se va? (No hace falta decirlo.)",
            "Pourquoi partez-vous ? (Rien ne vous oblige à le dire.)",
            "Warum möchten Sie kündigen? (Sie müssen es nicht sagen.)",
            "Qual é o motivo do cancelamento? (Responder é opcional.)",
        ]),
        not_say => pick(lang, [
            "I'd rather not say",
            "Prefiero no decirlo",
            "Je préfère ne pas le dire",
            "Das möchte ich nicht sagen",
            "Prefiro não dizer",
        ]),
        own_words => pick(lang, [
            "In your own words (with \"other\")",
            "Con sus palabras (con «otro»)",
            "Avec vos mots (avec « autre »)",
            "In Ihren eigenen Worten (bei „Etwas anderes“)",
            "Nas suas palavras (com «Outro motivo»)",
        ]),
        button => pick(lang, [
            "Cancel my service",
            "Dar de baja mi servicio",
            "Résilier mon service",
            "Meinen Vertrag kündigen",
            "Cancelar o meu serviço",
        ]),
        offer_intro => pick(lang, [
            "Before you go, one offer, if it helps:",
            "Antes de irse, una oferta, por si le sirve:",
            "Avant de partir, une offre, si elle vous aide :",
            "Bevor Sie gehen, ein Angebot, falls es Ihnen hilft:",
            "Antes de sair, uma oferta, caso lhe seja útil:",
        ]),
        back => pick(lang, [
            "Back to your page",
            "Volver a su página",
            "Retour à votre page",
            "Zurück zu Ihrer Seite",
            "Voltar à sua página",
        ]),
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
        Err(e) => return refusal(&e, &q, &headers),
    };
    state.kept_pages.forget(&q.token);
    let lang = q.language(&left.locale);
    pages::left(context! {
        lang, title => pick(lang, [
            "You have left us",
            "Se ha dado de baja",
            "Votre service est résilié",
            "Ihr Vertrag ist gekündigt",
            "O seu serviço foi cancelado",
        ]),
        reference => &left.reference, effective => &left.effective_local, lines => &left.bill_lines,
        total => &left.bill_total, refund => left.refund,
        ends => pick(lang, [
            "Your service ends",
            "Su servicio termina el",
            "Votre service prend fin le",
            "Ihr Dienst endet am",
            "O seu serviço termina em",
        ]),
        reference_word => pick(lang, ["Reference", "Referencia", "Référence", "Referenz", "Referência"]),
        bill => pick(lang, [
            "Your final bill",
            "Su última factura",
            "Votre dernière facture",
            "Ihre Schlussrechnung",
            "A sua fatura final",
        ]),
        total_word => if left.refund {
            pick(lang, ["We owe you", "Le debemos", "Nous vous devons", "Wir erstatten Ihnen", "Vamos devolver"])
        } else {
            pick(lang, ["Total due", "Total a pagar", "Total dû", "Zu zahlen", "Total a pagar"])
        },
        thanks => pick(lang, [
            "Thank you for having been with us. You are welcome back at any time.",
            "Gracias por haber estado con nosotros. Puede volver cuando quiera.",
            "Merci d'avoir été avec nous. Vous pouvez revenir quand vous voulez.",
            "Danke, dass Sie bei uns waren. Sie sind jederzeit wieder willkommen.",
            "Obrigado pela sua confiança. Pode voltar quando quiser.",
        ]),
    })
}

/// A reason id in the customer's words; an id a provider made up reads as its words.
fn reason_word(lang: Lang, id: &str) -> String {
    let known = match id {
        "too_expensive" => Some([
            "It costs too much",
            "Es demasiado caro",
            "C'est trop cher",
            "Es ist zu teuer",
            "O preço é muito alto",
        ]),
        "service_quality" => Some([
            "The service is not good enough",
            "El servicio no es bastante bueno",
            "Le service n'est pas assez bon",
            "Der Dienst ist nicht gut genug",
            "O serviço não tem qualidade suficiente",
        ]),
        "outages" => Some([
            "Too many outages",
            "Demasiadas averías",
            "Trop de pannes",
            "Zu viele Störungen",
            "Muitas falhas",
        ]),
        "moving" => Some(["I am moving", "Me mudo", "Je déménage", "Ich ziehe um", "Vou mudar de casa"]),
        "competitor" | "switching_provider" => Some([
            "A better offer elsewhere",
            "Una oferta mejor en otro sitio",
            "Une meilleure offre ailleurs",
            "Ein besseres Angebot anderswo",
            "Uma oferta melhor de outra empresa",
        ]),
        "no_longer_needed" => Some([
            "I no longer need it",
            "Ya no lo necesito",
            "Je n'en ai plus besoin",
            "Ich brauche den Dienst nicht mehr",
            "Deixei de precisar do serviço",
        ]),
        "other" => Some(["Something else", "Otro motivo", "Autre chose", "Etwas anderes", "Outro motivo"]),
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
        return refusal(&PageError::Form("the form could not be read".into()), &q, &headers);
    };
    let mut form = PreferencesForm::default();
    let mut form_token = String::new();
    for (name, value) in pairs {
        match name.as_str() {
            "tick" => form.ticked.push(value),
            "quiet_start" => form.quiet_start = value,
            "quiet_end" => form.quiet_end = value,
            "language" => form.language = value,
            "form" => form_token = value,
            _ => {}
        }
    }
    match state.engine.change_preferences_by_link(&q.token, &form_token, &form).await {
        Ok(_) => back_to_page(&state, &q, "saved"),
        Err(e) => refusal(&e, &q, &headers),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// 303 to the page, saying what was done (in the language chosen, if one was): a reload
/// of the result posts nothing again. The link's kept pages are forgotten: they showed
/// the page before the change.
fn back_to_page(state: &AppState, q: &PageQuery, done: &str) -> Response {
    state.kept_pages.forget(&q.token);
    let mut query: Vec<(&str, &str)> = vec![("token", &q.token)];
    if let Some(chosen) = q.chosen() {
        query.push(("lang", chosen.tag()));
    }
    query.push(("done", done));
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/my?{query}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn render(page: &CustomerPage, q: &PageQuery) -> Response {
    let lang = q.language(&page.locale);
    let fixed = fixed_context(lang);
    let incidents = page.incidents.iter().map(|i| incident_section(lang, &page.zone, fixed, i));
    let notices = page.notices.iter().map(|n| notice_item(lang, fixed, n));
    let parts = (incidents.collect::<Result<Vec<_>, _>>(), notices.collect::<Result<Vec<_>, _>>());
    let (incidents, notices) = match parts {
        (Ok(incidents), Ok(notices)) => (incidents, notices),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "a part of a customer's page failed to render");
            return pages::failed(lang);
        }
    };
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
    let done = q.done.as_deref().and_then(|d| done_word(lang, d));
    let ctx = context! {
        live => true, lang, title => fixed.title, hello => format!("{} {}", fixed.hello, page.name),
        w => &fixed.words, languages => &fixed.languages,
        keep_lang => pages::keep_lang(q.chosen()), visits,
        zone => &page.zone, incidents, notices, notices_unlisted => page.notices_unlisted,
        credits => minijinja::Value::from(minijinja::value::Serde(&page.credits)),
        offers => minijinja::Value::from(minijinja::value::Serde(&page.offers)),
        on_request => &fixed.on_request,
        message_language => context! {
            label => fixed.message_language,
            on_record => format!("{} ({})", fixed.as_on_record,
                words::page_language(&page.preferences.language_on_record).name()),
            chosen => &page.preferences.language,
            // A language chosen through the API that the page is not written in: offered
            // too, so that saving the form keeps it.
            extra => (!page.preferences.language.is_empty()
                && words::Lang::ALL.iter().all(|l| l.tag() != page.preferences.language))
                .then_some(&page.preferences.language),
            options => &fixed.languages,
        },
        preferences_table => match preferences_table(lang, fixed, &page.preferences.channels) {
            Ok(table) => table,
            Err(e) => {
                tracing::error!(error = %e, "the preferences table failed to render");
                return pages::failed(lang);
            }
        },
        quiet_start => &page.preferences.quiet_start, quiet_end => &page.preferences.quiet_end,
        // The link's token, percent-encoded and escaped once for the page's many addresses.
        token_query => minijinja::Value::from_safe_string(
            minijinja::HtmlEscape(&serde_urlencoded::to_string([("token", q.token.as_str())]).unwrap_or_default())
                .to_string(),
        ),
        form_token => &page.form_token, done,
    };
    pages::customer(ctx)
}

/// Parts of customers' pages kept as rendered, per thread (see [`kept_part`]); when full,
/// all of a thread's are dropped. A part is a few hundred bytes: some 2 MiB a thread.
const PARTS_KEPT_MAX: usize = 4096;

/// The part of a page whose every input is written in `key`: rendered by `render` the
/// first time, then kept. The same parts recur from customer to customer: the
/// preferences table of the boxes most leave as they came, the section of an incident
/// for everyone in one zone reading one language, the line of an acknowledgement sent to
/// thousands. Rendering them was most of a page's template, and each is found again by
/// one hash of its inputs. As the key holds everything the part shows, a kept part is
/// never stale; kept per thread, finding one takes no lock. Keys are hashed by foldhash
/// (seeded at random per process) rather than SipHash: a page hashes a couple of KiB of
/// keys.
fn kept_part(
    key: Vec<u8>,
    render: impl FnOnce() -> Result<minijinja::Value, minijinja::Error>,
) -> Result<minijinja::Value, minijinja::Error> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static KEPT: RefCell<HashMap<Vec<u8>, minijinja::Value, foldhash::fast::RandomState>> =
            RefCell::default();
    }
    if let Some(part) = KEPT.with_borrow(|kept| kept.get(&key).cloned()) {
        return Ok(part);
    }
    let part = render()?;
    KEPT.with_borrow_mut(|kept| {
        if kept.len() >= PARTS_KEPT_MAX {
            kept.clear();
        }
        kept.insert(key, part.clone());
    });
    Ok(part)
}

/// A key naming each of `inputs` apart: each is written after its length in bytes, so no
/// text put in one (an operator's cause, a notice's subject) can pass for another.
fn part_key<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut key = Vec::with_capacity(256);
    for input in inputs {
        key.extend_from_slice(&(input.len() as u64).to_le_bytes());
        key.extend_from_slice(input.as_bytes());
    }
    key
}

/// The section of an open incident `i` on a page in `lang` for a reader in `zone`.
fn incident_section(
    lang: Lang,
    zone: &str,
    fixed: &FixedContext,
    i: &amends_recovery::page::PageIncident,
) -> Result<minijinja::Value, minijinja::Error> {
    let state = state_word(lang, i.state);
    let device_back = match i.device_back {
        None => "",
        Some(true) => "back",
        Some(false) => "down",
    };
    let (etr, next_update) = (i.etr_local.as_deref(), i.next_update_by_local.as_deref());
    let key = part_key([
        "incident",
        lang.tag(),
        zone,
        i.incident_id.as_str(),
        state,
        &i.cause,
        &i.started_local,
        etr.map_or("-", |_| "+"),
        etr.unwrap_or_default(),
        next_update.map_or("-", |_| "+"),
        next_update.unwrap_or_default(),
        device_back,
    ]);
    kept_part(key, || {
        pages::customer_part(
            "customer_incident.html",
            &context! {
                lang, zone, w => &fixed.words,
                i => context! {
                    incident_id => i.incident_id.as_str(), cause => &i.cause, state,
                    started => &i.started_local, etr, next_update, device_back => i.device_back,
                },
            },
        )
    })
}

/// The line of a notice `n` told, on a page in `lang`.
fn notice_item(
    lang: Lang,
    fixed: &FixedContext,
    n: &amends_recovery::page::PageNotice,
) -> Result<minijinja::Value, minijinja::Error> {
    let channel = channel_word(lang, n.channel);
    let sent = n.sent_local.as_deref();
    let key = part_key([
        "notice",
        lang.tag(),
        channel,
        &n.subject,
        sent.map_or("-", |_| "+"),
        sent.unwrap_or_default(),
    ]);
    kept_part(key, || {
        pages::customer_part(
            "customer_notice.html",
            &context! {
                w => &fixed.words, n => context! { subject => &n.subject, channel, sent },
            },
        )
    })
}

/// The table of the preferences `chosen`, in `lang`: the table is most of a page's
/// template (thirty boxes), and most customers keep the boxes as they came, so nearly
/// every page finds it kept.
fn preferences_table(
    lang: Lang,
    fixed: &FixedContext,
    chosen: &std::collections::BTreeMap<Topic, std::collections::BTreeSet<Channel>>,
) -> Result<minijinja::Value, minijinja::Error> {
    // Each box shown is a bit: topic by topic, a channel each.
    let boxes = Topic::ALL.iter().flat_map(|&t| Channel::ALL.iter().map(move |&c| (t, c)));
    let ticked_bits = boxes
        .enumerate()
        .filter(|(_, (t, c))| chosen.get(t).is_some_and(|on| on.contains(c)))
        .fold(0u64, |bits, (n, _)| bits | 1 << n);
    kept_part(part_key(["preferences", lang.tag(), &ticked_bits.to_string()]), || {
        // The boxes ticked, by the value each box posts (`topic.channel`).
        let ticked: Vec<String> = chosen
            .iter()
            .flat_map(|(t, on)| on.iter().map(move |c| format!("{}.{}", t.as_str(), c.as_str())))
            .collect();
        pages::customer_part(
            "preferences_table.html",
            &context! {
                w => &fixed.words, channels => &fixed.channels, topics => &fixed.topics, ticked,
            },
        )
    })
}

/// What a customer's page writes alike for every customer reading it in one language:
/// made once for each language and kept ([`fixed_context`]). Turning these words into
/// template values for every page was a good part of a page's rendering.
struct FixedContext {
    title: &'static str,
    hello: &'static str,
    /// [`Words`], as the template reads them.
    words: minijinja::Value,
    /// The language links, and the options of the language of messages.
    languages: minijinja::Value,
    /// The words of amounts paid only on request.
    on_request: minijinja::Value,
    message_language: &'static str,
    as_on_record: &'static str,
    /// The columns of the preferences: one per channel.
    channels: minijinja::Value,
    /// The rows of the preferences: one per topic, each with a box per channel (its
    /// `value`, as posted, and `label`); whether a box is ticked is the page's own.
    topics: minijinja::Value,
}

/// The fixed context of a customer's page in `lang`.
fn fixed_context(lang: Lang) -> &'static FixedContext {
    static FIXED: std::sync::OnceLock<[FixedContext; 5]> = std::sync::OnceLock::new();
    words::once_per_language(&FIXED, lang, |lang| {
        let channels: Vec<minijinja::Value> =
            Channel::ALL.iter().map(|&c| context! { label => channel_word(lang, c) }).collect();
        let topics: Vec<minijinja::Value> = Topic::ALL
            .iter()
            .map(|&t| {
                let boxes: Vec<minijinja::Value> = Channel::ALL
                    .iter()
                    .map(|&c| {
                        context! {
                            value => format!("{}.{}", t.as_str(), c.as_str()),
                            label => channel_word(lang, c),
                        }
                    })
                    .collect();
                context! { label => topic_word(lang, t), boxes }
            })
            .collect();
        let w = words(lang);
        FixedContext {
            title: w.title,
            hello: w.hello,
            words: escaped_once(&w),
            languages: minijinja::Value::from(words::languages(lang)),
            on_request: context! {
                title => pick(lang, [
                    "Also yours, if you ask: press to claim",
                    "También suyo si lo pide: pulse para reclamarlo",
                    "À vous aussi sur demande : appuyez pour le réclamer",
                    "Ebenfalls Ihres, auf Anfrage: zum Anfordern drücken",
                    "Também é seu, se o pedir: carregue para o reclamar",
                ]),
                claim => pick(lang, ["Claim", "Reclamar", "Réclamer", "Anfordern", "Reclamar"]),
                claimed => pick(lang, [
                    "Claimed: on your bill of",
                    "Reclamado: en su factura del",
                    "Réclamé : sur votre facture du",
                    "Angefordert: auf Ihrer Rechnung vom",
                    "Reclamado: na sua fatura de",
                ]),
            },
            message_language: pick(
                lang,
                [
                    "Language of our messages and this page",
                    "Idioma de nuestros mensajes y de esta página",
                    "Langue de nos messages et de cette page",
                    "Sprache unserer Nachrichten und dieser Seite",
                    "Idioma das nossas mensagens e desta página",
                ],
            ),
            as_on_record: pick(
                lang,
                [
                    "As on record",
                    "El que tenemos registrado",
                    "Celle enregistrée chez nous",
                    "Wie bei uns hinterlegt",
                    "O que temos registado",
                ],
            ),
            channels: minijinja::Value::from(channels),
            topics: minijinja::Value::from(topics),
        }
    })
}

/// `words` as the template reads them, each escaped for HTML here, once per language, and
/// marked safe so that no page escapes them again: the template escapes a value as it
/// writes it, and a page writes some forty words.
fn escaped_once(words: &Words) -> minijinja::Value {
    let plain = minijinja::Value::from(minijinja::value::Serde(words));
    let escaped: std::collections::BTreeMap<String, minijinja::Value> = plain
        .try_iter()
        .into_iter()
        .flatten()
        .map(|key| {
            let word = plain.get_item(&key).ok().map(|w| w.to_string()).unwrap_or_default();
            (key.to_string(), minijinja::Value::from_safe_string(minijinja::HtmlEscape(&word).to_string()))
        })
        .collect();
    minijinja::Value::from(escaped)
}

/// The words of a customer's page, in one language.
#[derive(Serialize)]
struct Words {
    title: &'static str,
    hello: &'static str,
    language: &'static str,
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

/// The words of a customer's page in `lang`, each phrase in every language side by side.
fn words(lang: Lang) -> Words {
    let w = |phrase: [&'static str; 5]| pick(lang, phrase);
    Words {
        title: w(["Your service", "Su servicio", "Votre service", "Ihr Dienst", "O seu serviço"]),
        hello: w(["Hello", "Hola,", "Bonjour,", "Guten Tag", "Olá,"]),
        language: w(words::LANGUAGE),
        affected: w([
            "Is my service affected?",
            "¿Está afectado mi servicio?",
            "Mon service est-il touché ?",
            "Ist mein Dienst betroffen?",
            "O meu serviço está afetado?",
        ]),
        none_affected: w([
            "No outage we know of affects your service.",
            "Ninguna avería que conozcamos afecta a su servicio.",
            "Aucune panne connue ne touche votre service.",
            "Keine uns bekannte Störung betrifft Ihren Dienst.",
            "Nenhuma falha que conheçamos afeta o seu serviço.",
        ]),
        state: w(["Status", "Estado", "État", "Status", "Estado"]),
        started: w(words::STARTED),
        etr: w(words::ETR),
        next_update: w(words::NEXT_UPDATE),
        device_back: w([
            "Your equipment is back online.",
            "Su equipo vuelve a estar conectado.",
            "Votre équipement est de nouveau en ligne.",
            "Ihr Gerät ist wieder online.",
            "O seu equipamento voltou a ter conexão.",
        ]),
        device_down: w([
            "Your equipment is still offline.",
            "Su equipo sigue sin conexión.",
            "Votre équipement est toujours hors ligne.",
            "Ihr Gerät ist noch offline.",
            "O seu equipamento continua sem conexão.",
        ]),
        still_offline: w([
            "I'm still offline",
            "Sigo sin servicio",
            "Je suis toujours sans service",
            "Ich bin immer noch offline",
            "Continuo sem serviço",
        ]),
        notices: w([
            "What we told you",
            "Lo que le hemos dicho",
            "Ce que nous vous avons dit",
            "Was wir Ihnen mitgeteilt haben",
            "O que lhe dissemos",
        ]),
        no_notices: w([
            "We have not written to you yet.",
            "Aún no le hemos escrito.",
            "Nous ne vous avons pas encore écrit.",
            "Wir haben Ihnen noch nicht geschrieben.",
            "Ainda não lhe escrevemos.",
        ]),
        pending: w([
            "waiting to be sent",
            "pendiente de envío",
            "en attente d'envoi",
            "wird noch gesendet",
            "envio pendente",
        ]),
        credits: w(["Your credits", "Sus créditos", "Vos crédits", "Ihre Gutschriften", "Os seus créditos"]),
        no_credits: w([
            "You have no credits.",
            "No tiene créditos.",
            "Vous n'avez pas de crédit.",
            "Sie haben keine Gutschriften.",
            "Não tem créditos.",
        ]),
        on_statement: w([
            "on your bill of",
            "en su factura del",
            "sur votre facture du",
            "auf Ihrer Rechnung vom",
            "na sua fatura de",
        ]),
        prefs: w([
            "How we reach you",
            "Cómo le avisamos",
            "Comment nous vous prévenons",
            "Wie wir Sie erreichen",
            "Como recebe os nossos avisos",
        ]),
        topic: w(["Message", "Aviso", "Message", "Nachricht", "Mensagem"]),
        quiet: w([
            "Quiet hours (no SMS)",
            "Horas de silencio (sin SMS)",
            "Heures calmes (pas de SMS)",
            "Ruhezeiten (keine SMS)",
            "Horas de silêncio (sem SMS)",
        ]),
        from: w(["From", "Desde", "De", "Von", "De"]),
        to: w(["To", "Hasta", "À", "Bis", "Até"]),
        save: w(["Save", "Guardar", "Enregistrer", "Speichern", "Guardar"]),
        status_link: w([
            "Service status for everyone",
            "Estado del servicio para todos",
            "État du service pour tous",
            "Dienststatus für alle",
            "Estado do serviço para todos",
        ]),
        more: w([
            "older ones are not shown",
            "más antiguos no se muestran",
            "plus anciens ne sont pas affichés",
            "ältere werden nicht angezeigt",
            "mais antigas não são mostradas",
        ]),
        times_in: w(words::TIMES_IN),
        visits: w(["Your visits", "Sus visitas", "Vos visites", "Ihre Termine", "As suas visitas"]),
        leave: w(["Leave us", "Darse de baja", "Résilier", "Vertrag kündigen", "Cancelar o serviço"]),
        pick_slot: w([
            "We are holding these times for you. Pick one and it is booked:",
            "Le guardamos estas horas. Elija una y queda reservada:",
            "Nous vous gardons ces créneaux. Choisissez-en un et il est réservé :",
            "Diese Zeiten halten wir für Sie frei. Wählen Sie eine, und sie ist gebucht:",
            "Estes horários estão reservados para a sua visita. Escolha um e fica marcado:",
        ]),
    }
}

/// What the last form did, said on the page it came back to.
fn done_word(lang: Lang, done: &str) -> Option<&'static str> {
    Some(match done {
        "still_offline" => pick(
            lang,
            [
                "Thank you for telling us. We know of the outage above and are working on it.",
                "Gracias por decírnoslo. Conocemos la avería de arriba y estamos trabajando en ella.",
                "Merci de nous l'avoir dit. Nous connaissons la panne ci-dessus et y travaillons.",
                "Danke für Ihre Nachricht. Wir kennen die Störung oben und arbeiten daran.",
                "Obrigado por nos avisar. Conhecemos a falha indicada acima e trabalhamos na sua resolução.",
            ],
        ),
        "case_opened" => pick(
            lang,
            [
                "Thank you for telling us. Someone now looks after this for you and will be in touch.",
                "Gracias por decírnoslo. Una persona se ocupa ahora de esto y se pondrá en contacto con usted.",
                "Merci de nous l'avoir dit. Une personne s'en occupe désormais et vous contactera.",
                "Danke für Ihre Nachricht. Jemand aus unserem Team kümmert sich jetzt darum und meldet sich bei Ihnen.",
                "Obrigado por nos avisar. Uma pessoa passa agora a tratar do assunto e dará notícias em breve.",
            ],
        ),
        "recorded" => pick(
            lang,
            [
                "Thank you for telling us. We have noted it and will look into it.",
                "Gracias por decírnoslo. Lo hemos anotado y lo revisaremos.",
                "Merci de nous l'avoir dit. Nous l'avons noté et allons vérifier.",
                "Danke für Ihre Nachricht. Wir haben es notiert und sehen es uns an.",
                "Obrigado por nos avisar. Ficou anotado e vamos verificar.",
            ],
        ),
        "rebooked" => pick(
            lang,
            [
                "Your new visit is booked. The confirmation is on its way.",
                "Su nueva visita está reservada. Le enviamos la confirmación.",
                "Votre nouvelle visite est réservée. La confirmation arrive.",
                "Ihr neuer Termin ist gebucht. Die Bestätigung ist unterwegs.",
                "A sua nova visita está marcada. A confirmação vai a caminho.",
            ],
        ),
        "claimed" => pick(
            lang,
            [
                "Claimed. It is in your credits above and will be on your next bill.",
                "Reclamado. Está en sus créditos de arriba y figurará en su próxima factura.",
                "Réclamé. Il figure dans vos crédits ci-dessus et sera sur votre prochaine facture.",
                "Angefordert. Es steht oben bei Ihren Gutschriften und kommt auf Ihre nächste Rechnung.",
                "Reclamado. Está nos seus créditos acima e constará da sua próxima fatura.",
            ],
        ),
        "saved" => pick(
            lang,
            [
                "Your preferences are saved.",
                "Sus preferencias están guardadas.",
                "Vos préférences sont enregistrées.",
                "Ihre Einstellungen sind gespeichert.",
                "As suas preferências foram guardadas.",
            ],
        ),
        _ => return None,
    })
}

/// A visit's status as the customer reads it.
fn visit_word(lang: Lang, status: AppointmentStatus) -> &'static str {
    use AppointmentStatus::*;
    match status {
        Booked => pick(lang, ["Booked", "Reservada", "Réservée", "Gebucht", "Marcada"]),
        Arrived => pick(
            lang,
            [
                "Technician on site",
                "Técnico en su casa",
                "Technicien sur place",
                "Techniker vor Ort",
                "Técnico no local",
            ],
        ),
        Completed => pick(lang, ["Done", "Hecha", "Faite", "Erledigt", "Concluída"]),
        CancelledByCustomer => pick(
            lang,
            [
                "Cancelled by you",
                "Cancelada por usted",
                "Annulée par vous",
                "Von Ihnen abgesagt",
                "Cancelada a seu pedido",
            ],
        ),
        CancelledByProvider => pick(
            lang,
            [
                "Cancelled by us",
                "Cancelada por nosotros",
                "Annulée par nous",
                "Von uns abgesagt",
                "Cancelada por nós",
            ],
        ),
        Missed => pick(
            lang,
            [
                "We did not come",
                "No acudimos",
                "Nous ne sommes pas venus",
                "Wir sind nicht gekommen",
                "Não comparecemos",
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amends_core::incident::IncidentState;
    use amends_recovery::page::{PageIncident, PageNotice, PagePreferences};

    fn incident(device_back: Option<bool>, etr: Option<&str>) -> PageIncident {
        PageIncident {
            incident_id: "INC-000001".into(),
            state: IncidentState::Acknowledged,
            cause: "Fibre cut <near> the \"depot\"".into(),
            started_local: "Sunday, December 6 at 12:54 PM EST".into(),
            etr_local: etr.map(str::to_string),
            next_update_by_local: Some("Sunday, December 6 at 1:54 PM EST".into()),
            device_back,
        }
    }

    fn notice(sent: Option<&str>) -> PageNotice {
        PageNotice {
            kind: "acknowledgement".into(),
            channel: Channel::Sms,
            subject: "We know your service is down & we are fixing it".into(),
            sent_local: sent.map(str::to_string),
        }
    }

    fn page(incidents: Vec<PageIncident>, notices: Vec<PageNotice>) -> CustomerPage {
        CustomerPage {
            customer_id: "C0000001".into(),
            name: "James Garcia".into(),
            locale: "en-US".into(),
            zone: "America/New_York".into(),
            incidents,
            notices,
            notices_unlisted: 0,
            credits: vec![],
            offers: vec![],
            visits: vec![],
            preferences: PagePreferences {
                channels: Default::default(),
                quiet_start: String::new(),
                quiet_end: String::new(),
                language: String::new(),
                language_on_record: "en-US".into(),
            },
            form_token: "d2615ed21e973fbe29acf3f0d819f1e2".into(),
        }
    }

    async fn html(page: &CustomerPage, lang: Option<&str>) -> String {
        let q = PageQuery { token: "t0k".into(), done: None, lang: lang.map(str::to_string) };
        let body = axum::body::to_bytes(render(page, &q).into_body(), usize::MAX).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// Each part kept (an incident's section, a notice's line) is found again only by
    /// pages that show exactly what it shows: pages that differ in one input each, read
    /// one after another on one thread, each show their own.
    #[tokio::test]
    async fn a_kept_part_of_a_page_is_only_ever_one_showing_the_same() {
        let etr = Some("Sunday, December 6 at 2:54 PM EST");
        let back = html(&page(vec![incident(Some(true), etr)], vec![notice(None)]), None).await;
        let down = html(&page(vec![incident(Some(false), etr)], vec![notice(Some("12:57 PM"))]), None).await;
        let unknown = html(&page(vec![incident(None, None)], vec![]), None).await;
        let spanish = html(&page(vec![incident(Some(true), etr)], vec![notice(None)]), Some("es")).await;
        assert!(
            back.contains("Your equipment is back online.") && !back.contains("still offline."),
            "{back}"
        );
        assert!(down.contains("Your equipment is still offline.") && !down.contains("back online"), "{down}");
        assert!(!unknown.contains("Your equipment") && !unknown.contains("Expected back by"), "{unknown}");
        assert!(
            back.contains("<dt>Expected back by</dt><dd>Sunday, December 6 at 2:54 PM EST</dd>"),
            "{back}"
        );
        assert!(
            back.contains("(SMS, waiting to be sent)") && down.contains("(SMS, 12:57 PM)"),
            "{back}\n{down}"
        );
        assert!(
            spanish.contains("Su equipo vuelve a estar conectado.") && spanish.contains("pendiente de envío")
        );
        // Escaped once, in the part, as the page's own text is.
        assert!(back.contains("Fibre cut &lt;near&gt; the &quot;depot&quot;"), "{back}");
        assert!(back.contains("We know your service is down &amp; we are fixing it"), "{back}");
        let again = html(&page(vec![incident(Some(true), etr)], vec![notice(None)]), None).await;
        assert_eq!(again, back, "a part found kept is the part rendered");
    }

    #[test]
    fn a_part_s_key_tells_its_inputs_apart() {
        assert_ne!(part_key(["ab", "c"]), part_key(["a", "bc"]));
        assert_ne!(part_key(["a", ""]), part_key(["a"]));
        assert_eq!(part_key(["a", "bc"]), part_key(["a", "bc"]));
    }

    /// The words escaped once per language read exactly as the template would have
    /// escaped them on every page, none escaped twice.
    #[test]
    fn words_escaped_once_read_as_the_template_writes_them() {
        let mut env = minijinja::Environment::new();
        env.add_template("word.html", "{{ w }}").unwrap();
        let template = env.get_template("word.html").unwrap();
        let mut escaped_somewhere = false;
        for lang in Lang::ALL {
            let plain = minijinja::Value::from(minijinja::value::Serde(&words(lang)));
            let once = escaped_once(&words(lang));
            let keys: Vec<minijinja::Value> = plain.try_iter().unwrap().collect();
            assert!(keys.len() > 20, "{lang}: every word");
            for key in keys {
                let word = plain.get_item(&key).unwrap();
                let by_template = template.render(context! { w => word.clone() }).unwrap();
                let kept = template.render(context! { w => once.get_item(&key).unwrap() }).unwrap();
                assert_eq!(kept, by_template, "{key} in {lang}");
                escaped_somewhere |= by_template != word.to_string();
            }
        }
        assert!(escaped_somewhere, "some word needs escaping (an apostrophe), so the test can fail");
    }
}
