//! The pages a customer opens from a link (a survey, an unsubscribe): HTML from
//! templates that escape every value they are given (minijinja's auto-escaping for
//! `.html` templates), so nothing a request carries (a submitted score, a token) can
//! become markup. Every page is sent with a Content-Security-Policy that allows no
//! script, no framing (`frame-ancestors 'none'`) and forms posting to this origin only,
//! and with no referrer (its address holds the customer's signed link).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};
use std::sync::OnceLock;

/// What every page is sent with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const LAYOUT: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}button{font-size:1.1rem;min-width:2.75rem;min-height:2.75rem;margin:.2rem}</style>
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
{% endfor %}{% endblock %}"#;

const QUESTION: &str = r#"{% extends "layout.html" %}{% block content %}<p>{{ ask }}</p>
<form method="post" action="?token={{ token|urlencode }}">
{% for n in scores %}<button type="submit" name="score" value="{{ n }}">{{ n }}</button>
{% endfor %}</form>{% endblock %}"#;

const UNSUBSCRIBE: &str = r#"{% extends "layout.html" %}{% block content %}<form method="post" action="?token={{ token|urlencode }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>{% endblock %}"#;

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
        ] {
            env.add_template(name, source).expect("the built-in pages parse");
        }
        env
    })
}

/// `template` rendered with `ctx`, sent with `status` and the pages' headers.
fn render(status: StatusCode, template: &str, ctx: Value) -> Response {
    let html = environment().get_template(template).and_then(|t| t.render(ctx)).unwrap_or_else(|e| {
        tracing::error!(error = %e, template, "a built-in page failed to render");
        "<!doctype html><title>Something went wrong</title><p>Something went wrong.</p>".to_string()
    });
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page of a title and paragraphs of plain text.
pub fn message(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response {
    let paragraphs: Vec<String> = paragraphs.iter().map(|p| p.to_string()).collect();
    render(status, "message.html", context! { title, paragraphs })
}

/// A question with one button per score, posting back to the link it came from.
pub fn question(title: &str, ask: &str, token: &str, scores: std::ops::RangeInclusive<u8>) -> Response {
    let scores: Vec<u8> = scores.collect();
    render(StatusCode::OK, "question.html", context! { title, ask, token, scores })
}

/// The unsubscribe confirmation: one button, posting back to the link it came from.
pub fn unsubscribe(title: &str, token: &str) -> Response {
    render(StatusCode::OK, "unsubscribe.html", context! { title, token })
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
        let page = message(StatusCode::UNPROCESSABLE_ENTITY, "Not an answer", &[hostile]);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
        let html = body(page).await;
        assert!(!html.contains("<script>") && !html.contains("\" onload"), "{html}");
        assert!(html.contains("<p>&lt;script&gt;alert(1)&lt;"), "{html}");

        let html = body(question("One question", "How did we do?", "a&b\"<c>", 0..=10)).await;
        assert!(html.contains("action=\"?token=a%26b%22%3Cc%3E\""), "{html}");
        assert_eq!(html.matches("name=\"score\"").count(), 11);
    }
}
