//! The pages a customer opens from a link (a survey, an unsubscribe): HTML from
//! templates that escape every value they are given (minijinja's auto-escaping for
//! `.html` templates), so nothing a request carries (a submitted score, a token) can
//! become markup. Every page is sent with a Content-Security-Policy that allows no
//! script, no framing (`frame-ancestors 'none'`) and forms posting to this origin only,
//! and with no referrer (its address holds the customer's signed link).
//!
//! Every page is written in the language its caller gives it (see `words`), its own few
//! words here included: a failure of the server reads in the reader's language too.

use super::words::{Lang, pick};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};
use std::sync::OnceLock;

/// What every page is sent with.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// What a live page (the status pages, a customer's page) is sent with: the same, and the
/// one script of this origin (`/static/live.js`, never inline) with its event stream.
pub const LIVE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The script of live pages, embedded in the binary.
pub const LIVE_JS: &str = include_str!("../static/live.js");
/// The stylesheet of every page, embedded in the binary. A file of its own rather than
/// inline: a browser fetches it once for all the pages it opens (a customer's page is a
/// tenth smaller), and the policy allows no inline style.
pub const PAGE_CSS: &str = include_str!("../static/page.css");

const LAYOUT: &str = r#"<!doctype html>
<html lang="{{ lang|default('en') }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
{% if live is defined and live %}<script src="/static/live.js" defer></script>{% endif %}
<link rel="stylesheet" href="/static/page.css">
</head>
<body>
<main>
<h1>{{ title }}</h1>
{% block content %}{% endblock %}
</main>
</body>
</html>
"#;

const MESSAGE: &str = r#"{% extends "layout.html" %}{% block content %}{% for p in paragraphs %}<p>{{ p }}</p>
{% endfor %}{% if form %}<form method="post" action="{{ form.action }}"><input type="hidden" name="form" value="{{ form.token }}">
<button type="submit">{{ form.button }}</button></form>{% endif %}{% endblock %}"#;

const QUESTION: &str = r#"{% extends "layout.html" %}{% block content %}<p>{{ ask }}</p>
<form method="post" action="?token={{ token|urlencode }}{{ keep_lang }}">
{% for n in scores %}<button type="submit" name="score" value="{{ n }}">{{ n }}</button>
{% endfor %}</form>{% endblock %}"#;

const UNSUBSCRIBE: &str = r#"{% extends "layout.html" %}{% block content %}<form method="post" action="?token={{ token|urlencode }}{{ keep_lang }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{{ button }}</button>
</form>{% endblock %}"#;

const STATUS: &str = r#"{% extends "layout.html" %}{% block content %}
{% macro incident(i, resolved) %}<section class="incident{% if resolved %} resolved{% endif %}" aria-labelledby="{{ i.id }}">
<h3 id="{{ i.id }}"><a href="/status/{{ i.id|urlencode }}?lang={{ lang }}&amp;tz={{ zone|urlencode }}">{{ i.areas|join(", ") }}</a></h3>
<p>{{ i.cause }}</p>
<dl>
<dt>{{ words.state }}</dt><dd>{{ i.state }}</dd>
<dt>{{ words.started }}</dt><dd>{{ i.started_at }}</dd>
{% if i.resolved_at %}<dt>{{ words.resolved_at }}</dt><dd>{{ i.resolved_at }}</dd>
{% else %}{% if i.etr %}<dt>{{ words.etr }}</dt><dd>{{ i.etr }}</dd>{% endif %}
{% if i.next_update_by %}<dt>{{ words.next_update }}</dt><dd>{{ i.next_update_by }}</dd>{% endif %}{% endif %}
<dt>{{ words.customers }}</dt><dd>{{ i.customers }}</dd>
</dl>
{% if only and i.timeline %}<h4>{{ words.updates }}</h4><ul>{% for u in i.timeline %}<li><strong>{{ u.at }}</strong>: {{ u.state }}{% if u.message %}. {{ u.message }}{% endif %}</li>{% endfor %}</ul>{% endif %}
</section>{% endmacro %}
<nav aria-label="{{ words.language }}">{% for l in languages %}{% if not loop.first %} · {% endif %}<a href="?lang={{ l.tag }}&amp;tz={{ zone|urlencode }}" lang="{{ l.tag }}" hreflang="{{ l.tag }}"{% if l.current %} aria-current="true"{% endif %}>{{ l.name }}</a>{% endfor %}</nav>
{% if not found %}<p>{{ words.not_found }}</p>
{% else %}{% if not only %}<p>{% if open %}{{ summary }}{% else %}{{ words.all_well }}{% endif %}</p>{% endif %}
{% if open %}<h2>{{ words.open }}</h2>{% for i in open %}{{ incident(i, false) }}{% endfor %}{% if open_unlisted and not only %}<p>+ {{ open_unlisted }}</p>{% endif %}{% endif %}
{% if resolved %}<h2>{{ words.resolved }}</h2>{% for i in resolved %}{{ incident(i, true) }}{% endfor %}{% endif %}{% endif %}
{% if only %}<p><a href="/status?lang={{ lang }}&amp;tz={{ zone|urlencode }}">{{ words.all_incidents }}</a></p>{% endif %}
<form method="get"><input type="hidden" name="lang" value="{{ lang }}">
<label for="tz">{{ words.zone_label }}</label> <input id="tz" name="tz" value="{{ zone }}" autocomplete="off">
<button type="submit">{{ words.change }}</button></form>
<p><small>{{ words.times_in }} {{ zone }}. {{ words.as_of }}: {{ as_of }}.</small></p>
{% endblock %}"#;

const CUSTOMER: &str = r#"{% extends "layout.html" %}{% block content %}
<nav aria-label="{{ w.language }}">{% for l in languages %}{% if not loop.first %} · {% endif %}<a href="/my?{{ token_query }}&amp;lang={{ l.tag }}" lang="{{ l.tag }}" hreflang="{{ l.tag }}"{% if l.current %} aria-current="true"{% endif %}>{{ l.name }}</a>{% endfor %}</nav>
{% if done %}<p role="status" class="done">{{ done }}</p>{% endif %}
<p>{{ hello }}</p>
<section aria-labelledby="affected"><h2 id="affected">{{ w.affected }}</h2>
{% for i in incidents %}{{ i }}{% else %}<p>{{ w.none_affected }}</p>{% endfor %}
<form method="post" action="/my/still-offline?{{ token_query }}{{ keep_lang }}"><input type="hidden" name="form" value="{{ form_token }}">
<button type="submit">{{ w.still_offline }}</button></form>
<p><small>{{ w.times_in }} {{ zone }}.</small></p>
</section>
<section aria-labelledby="told"><h2 id="told">{{ w.notices }}</h2>
{% if notices %}<ul>{% for n in notices %}{{ n }}{% endfor %}</ul>{% if notices_unlisted %}<p>+ {{ notices_unlisted }} {{ w.more }}</p>{% endif %}
{% else %}<p>{{ w.no_notices }}</p>{% endif %}</section>
<section aria-labelledby="credits"><h2 id="credits">{{ w.credits }}</h2>
{% if credits %}<ul>{% for c in credits %}<li><strong>{{ c.amount }}</strong>, {{ w.on_statement }} {{ c.statement }} ({{ c.about }}){% if c.explanation %}<br>{{ c.explanation }}{% endif %}</li>{% endfor %}</ul>
{% else %}<p>{{ w.no_credits }}</p>{% endif %}
{% if offers %}<h3>{{ on_request.title }}</h3><ul>{% for o in offers %}<li><strong>{{ o.amount }}</strong> ({{ o.about }}){% if o.explanation %}<br>{{ o.explanation }}{% endif %}
{% if o.claimed_on %}<br>{{ on_request.claimed }} {{ o.claimed_on }}{% else %}<form method="post" action="/my/claim?{{ token_query }}{{ keep_lang }}"><input type="hidden" name="form" value="{{ form_token }}"><input type="hidden" name="offer" value="{{ o.key }}"><button type="submit">{{ on_request.claim }} {{ o.amount }}</button></form>{% endif %}</li>{% endfor %}</ul>{% endif %}</section>
{% if visits %}<section aria-labelledby="visits"><h2 id="visits">{{ w.visits }}</h2>
<ul>{% for v in visits %}<li><strong>{{ v.window }}</strong> ({{ v.status }}, {{ v.reference }})
{% if v.held %}<p>{{ w.pick_slot }}</p>{% for h in v.held %}<form method="post" action="/my/rebook?{{ token_query }}{{ keep_lang }}"><input type="hidden" name="form" value="{{ form_token }}"><input type="hidden" name="visit" value="{{ v.reference }}"><input type="hidden" name="start" value="{{ h.start }}"><button type="submit">{{ h.window }}</button></form>
{% endfor %}{% endif %}</li>{% endfor %}</ul></section>{% endif %}
<section aria-labelledby="prefs"><h2 id="prefs">{{ w.prefs }}</h2>
<form method="post" action="/my/preferences?{{ token_query }}{{ keep_lang }}"><input type="hidden" name="form" value="{{ form_token }}">
{{ preferences_table }}
<fieldset><legend>{{ w.quiet }}</legend>
<label for="quiet_start">{{ w.from }}</label> <input id="quiet_start" name="quiet_start" type="time" value="{{ quiet_start }}">
<label for="quiet_end">{{ w.to }}</label> <input id="quiet_end" name="quiet_end" type="time" value="{{ quiet_end }}"></fieldset>
<p><label for="language">{{ message_language.label }}</label> <select id="language" name="language">
<option value=""{% if not message_language.chosen %} selected{% endif %}>{{ message_language.on_record }}</option>
{% for l in message_language.options %}<option value="{{ l.tag }}" lang="{{ l.tag }}"{% if l.tag == message_language.chosen %} selected{% endif %}>{{ l.name }}</option>
{% endfor %}{% if message_language.extra %}<option value="{{ message_language.extra }}" selected>{{ message_language.extra }}</option>{% endif %}</select></p>
<button type="submit">{{ w.save }}</button></form></section>
<p><a href="/status?lang={{ lang }}&amp;tz={{ zone|urlencode }}">{{ w.status_link }}</a> · <a href="/my/leave?{{ token_query }}{{ keep_lang }}">{{ w.leave }}</a></p>
{% endblock %}"#;

/// An open incident on a customer's page: rendered once for everyone reading it in one
/// language and zone, and kept (see `my`), as are the next two.
const CUSTOMER_INCIDENT: &str = r#"<section class="incident">
<h3><a href="/status/{{ i.incident_id|urlencode }}?lang={{ lang }}&amp;tz={{ zone|urlencode }}">{{ i.cause }}</a></h3>
<dl><dt>{{ w.state }}</dt><dd>{{ i.state }}</dd><dt>{{ w.started }}</dt><dd>{{ i.started }}</dd>
{% if i.etr %}<dt>{{ w.etr }}</dt><dd>{{ i.etr }}</dd>{% endif %}
{% if i.next_update %}<dt>{{ w.next_update }}</dt><dd>{{ i.next_update }}</dd>{% endif %}</dl>
{% if i.device_back is not none %}<p>{% if i.device_back %}{{ w.device_back }}{% else %}{{ w.device_down }}{% endif %}</p>{% endif %}
</section>"#;

/// A notice a customer was told, as their page lists it.
const CUSTOMER_NOTICE: &str =
    r#"<li><strong>{{ n.subject }}</strong> ({{ n.channel }}, {{ n.sent or w.pending }})</li>"#;

/// The table of a customer's preferences: a row per topic, a box per channel. Kept per
/// language and choice of boxes: most customers keep the boxes as they came.
const PREFERENCES_TABLE: &str = r#"<table><thead><tr><th scope="col">{{ w.topic }}</th>{% for c in channels %}<th scope="col">{{ c.label }}</th>{% endfor %}</tr></thead>
<tbody>{% for t in topics %}<tr><th scope="row">{{ t.label }}</th>{% for b in t.boxes %}<td><input type="checkbox" name="tick" value="{{ b.value }}" aria-label="{{ t.label }}: {{ b.label }}"{% if b.value in ticked %} checked{% endif %}></td>{% endfor %}</tr>
{% endfor %}</tbody></table>"#;

const LEAVE: &str = r#"{% extends "layout.html" %}{% block content %}
<form method="post" action="/my/leave?token={{ token|urlencode }}{{ keep_lang }}"><input type="hidden" name="form" value="{{ form_token }}">
{% if reasons %}<fieldset><legend>{{ why }}</legend>
<div><input type="radio" id="reason-none" name="reason" value="" checked> <label for="reason-none">{{ not_say }}</label></div>
{% for r in reasons %}<div><input type="radio" id="reason-{{ r.id }}" name="reason" value="{{ r.id }}"> <label for="reason-{{ r.id }}">{{ r.label }}</label></div>
{% endfor %}<label for="reason_text">{{ own_words }}</label><br><input id="reason_text" name="reason_text" maxlength="500">
</fieldset>{% endif %}
<button type="submit">{{ button }}</button></form>
{% if offer %}<aside><p>{{ offer_intro }}</p><p>{{ offer }}</p></aside>{% endif %}
<p><a href="/my?token={{ token|urlencode }}{{ keep_lang }}">{{ back }}</a></p>
{% endblock %}"#;

const LEFT: &str = r#"{% extends "layout.html" %}{% block content %}
<dl><dt>{{ reference_word }}</dt><dd>{{ reference }}</dd><dt>{{ ends }}</dt><dd>{{ effective }}</dd></dl>
<h2>{{ bill }}</h2>
<ul>{% for l in lines %}<li>{{ l }}</li>{% endfor %}</ul>
<p><strong>{{ total_word }}: {{ total }}</strong></p>
<p>{{ thanks }}</p>
{% endblock %}"#;

fn environment() -> &'static Environment<'static> {
    static PAGES: OnceLock<Environment<'static>> = OnceLock::new();
    PAGES.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in [
            ("layout.html", LAYOUT),
            ("message.html", MESSAGE),
            ("question.html", QUESTION),
            ("unsubscribe.html", UNSUBSCRIBE),
            ("status.html", STATUS),
            ("customer.html", CUSTOMER),
            ("customer_incident.html", CUSTOMER_INCIDENT),
            ("customer_notice.html", CUSTOMER_NOTICE),
            ("preferences_table.html", PREFERENCES_TABLE),
            ("leave.html", LEAVE),
            ("left.html", LEFT),
        ] {
            env.add_template(name, source).expect("the built-in pages parse");
        }
        env
    })
}

/// `template` rendered with `ctx`, sent with `status` and the pages' headers; a live page
/// (`live` true in `ctx`) may run the one script of this origin.
fn render(status: StatusCode, template: &str, ctx: Value) -> Response {
    let live = ctx.get_attr("live").is_ok_and(|v| v.is_true());
    respond(status, render_bytes(template, &ctx).into(), live)
}

/// Bytes a page's output starts with room for: a customer's page is some 10 KiB, and
/// growing the output from the template's own guess (its fixed text) copied it a few
/// times over.
const PAGE_BYTES_HINT: usize = 16 * 1024;

/// `template` rendered with `ctx`; a page that fails to render (a bug) says so in the
/// reader's language instead.
fn render_html(template: &str, ctx: &Value) -> String {
    String::from_utf8(render_bytes(template, ctx)).unwrap_or_else(|e| failed_html(template, ctx, &e))
}

/// [`render_html`] as the bytes of the page's body: the template writes UTF-8 only (it is
/// given `&str` alone), so they are not checked again.
fn render_bytes(template: &str, ctx: &Value) -> Vec<u8> {
    let rendered = environment().get_template(template).and_then(|t| {
        let mut html = Vec::with_capacity(PAGE_BYTES_HINT);
        t.render_captured_to(ctx, &mut html).map(|_| html)
    });
    rendered.unwrap_or_else(|e| failed_html(template, ctx, &e).into_bytes())
}

/// What a page that failed to render (a bug) shows, in the reader's language.
fn failed_html(template: &str, ctx: &Value, e: &dyn std::fmt::Display) -> String {
    tracing::error!(error = %e, template, "a built-in page failed to render");
    let lang = ctx.get_attr("lang").ok().and_then(|l| l.as_str().and_then(Lang::of)).unwrap_or(Lang::En);
    let (title, text) = (pick(lang, FAILED), pick(lang, TRY_LATER));
    format!("<!doctype html><html lang=\"{lang}\"><title>{title}</title><p>{title}. {text}</p>")
}

/// A page's `body` sent with `status` and the pages' headers (`live`: see [`render`]).
pub fn respond(status: StatusCode, body: axum::body::Bytes, live: bool) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    let csp = if live { LIVE_CONTENT_SECURITY_POLICY } else { CONTENT_SECURITY_POLICY };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What a page's forms and links add to keep the language the reader chose with `?lang=`
/// (`&lang=de`, which the template escapes to `&amp;lang=de`); nothing when they chose
/// none, so the page's own default (the customer's language, or the browser's) stays.
pub fn keep_lang(chosen: Option<Lang>) -> String {
    chosen.map(|l| format!("&lang={l}")).unwrap_or_default()
}

/// A page of a title and paragraphs of plain text, written in `lang` (the page's `lang`
/// attribute says so).
pub fn message(lang: Lang, status: StatusCode, title: &str, paragraphs: &[&str]) -> Response {
    message_with_form(lang, status, title, paragraphs, Value::from(()))
}

/// [`message`] with one form under it: `form` holds its `action`, its form `token` and the
/// `button`'s words (none: no form).
pub fn message_with_form(
    lang: Lang,
    status: StatusCode,
    title: &str,
    paragraphs: &[&str],
    form: Value,
) -> Response {
    let paragraphs: Vec<String> = paragraphs.iter().map(|p| p.to_string()).collect();
    render(status, "message.html", context! { lang, title, paragraphs, form })
}

/// A customer's own page (see `my`), from the context it writes, which says the page is
/// `live` (the page's every value is looked up in it: merged with another, each lookup
/// would be two).
pub fn customer(ctx: Value) -> Response {
    render(StatusCode::OK, "customer.html", ctx)
}

/// A part of a customer's page (`template`: an incident, a notice, the preferences table;
/// see `my`) rendered with `ctx`, as a value the page puts in as it is (it is escaped
/// already).
pub fn customer_part(template: &str, ctx: &Value) -> Result<Value, minijinja::Error> {
    let html = environment().get_template(template)?.render(ctx)?;
    Ok(Value::from_safe_string(html))
}

/// The leaving page (see `my`).
pub fn leave(ctx: Value) -> Response {
    render(StatusCode::OK, "leave.html", ctx)
}

/// The confirmation of leaving, with the final bill (see `my`).
pub fn left(ctx: Value) -> Response {
    render(StatusCode::OK, "left.html", ctx)
}

/// `GET /static/live.js`: the script of live pages.
#[utoipa::path(get, path = "/static/live.js", tag = "pages",
    responses((status = 200, description = "The script of live pages", content_type = "text/javascript", body = String)))]
pub async fn live_js() -> Response {
    static_file(LIVE_JS, "text/javascript; charset=utf-8")
}

/// `GET /static/page.css`: the stylesheet of every page.
#[utoipa::path(get, path = "/static/page.css", tag = "pages",
    responses((status = 200, description = "The stylesheet of every page", content_type = "text/css", body = String)))]
pub async fn page_css() -> Response {
    static_file(PAGE_CSS, "text/css; charset=utf-8")
}

/// A file embedded in the binary, as `content_type`, which browsers keep five minutes.
fn static_file(content: &'static str, content_type: &'static str) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The title of the page for a failure of the server.
const FAILED: [&str; 5] = [
    "Something went wrong",
    "Algo ha fallado",
    "Un problème est survenu",
    "Etwas ist schiefgelaufen",
    "Ocorreu um erro",
];

/// What the page for a failure of the server asks.
const TRY_LATER: [&str; 5] = [
    "Please try again later.",
    "Vuelva a intentarlo más tarde.",
    "Veuillez réessayer plus tard.",
    "Bitte versuchen Sie es später noch einmal.",
    "Tente novamente mais tarde.",
];

/// The page for a failure of the server, in `lang`: it says nothing of what failed (the
/// log does).
pub fn failed(lang: Lang) -> Response {
    message(lang, StatusCode::INTERNAL_SERVER_ERROR, pick(lang, FAILED), &[pick(lang, TRY_LATER)])
}

/// A question with one button per score, in `lang`, posting back to the link it came from
/// (with the language the reader `chosen`, if they chose one).
pub fn question(
    lang: Lang,
    chosen: Option<Lang>,
    title: &str,
    ask: &str,
    token: &str,
    scores: std::ops::RangeInclusive<u8>,
) -> Response {
    let scores: Vec<u8> = scores.collect();
    let keep_lang = keep_lang(chosen);
    render(StatusCode::OK, "question.html", context! { lang, title, ask, token, keep_lang, scores })
}

/// The status page's HTML (see `status`), from the context it writes, to be sent with
/// [`respond`] as a live page.
pub fn status_html(ctx: Value) -> String {
    render_html("status.html", &context! { live => true, ..ctx })
}

/// The unsubscribe confirmation in `lang`: one button, posting back to the link it came
/// from (with the language the reader `chosen`, if they chose one).
pub fn unsubscribe(lang: Lang, chosen: Option<Lang>, title: &str, button: &str, token: &str) -> Response {
    let keep_lang = keep_lang(chosen);
    render(StatusCode::OK, "unsubscribe.html", context! { lang, title, button, token, keep_lang })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_value_is_escaped_and_every_page_forbids_scripts_and_frames() {
        let hostile = "<script>alert(1)</script>\" onload=\"x";
        let page = message(Lang::En, StatusCode::UNPROCESSABLE_ENTITY, "Not an answer", &[hostile]);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
        let html = body(page).await;
        assert!(!html.contains("<script>") && !html.contains("\" onload"), "{html}");
        assert!(html.contains("<p>&lt;script&gt;alert(1)&lt;"), "{html}");

        let html = body(question(Lang::En, None, "One question", "How did we do?", "a&b\"<c>", 0..=10)).await;
        assert!(html.contains("action=\"?token=a%26b%22%3Cc%3E\""), "{html}");
        assert_eq!(html.matches("name=\"score\"").count(), 11);
    }

    #[tokio::test]
    async fn a_page_is_in_the_language_it_is_given_and_its_form_keeps_the_one_chosen() {
        let html = body(failed(Lang::Pt)).await;
        assert!(html.contains("<html lang=\"pt\">") && html.contains("Ocorreu um erro"), "{html}");
        let html = body(question(Lang::De, Some(Lang::De), "Eine Frage", "Wie waren wir?", "t", 1..=5)).await;
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(html.contains("action=\"?token=t&amp;lang=de\""), "{html}");
        let html =
            body(unsubscribe(Lang::Fr, None, "Ne plus recevoir ces messages ?", "Se désabonner", "t")).await;
        assert!(html.contains("action=\"?token=t\"") && html.contains(">Se désabonner</button>"), "{html}");
    }
}
