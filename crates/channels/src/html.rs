//! The HTML alternative of a plain-text email, derived from the text so the two never differ.

/// Renders a plain-text notice as a minimal HTML document.
///
/// - Everything is HTML-escaped (`& < > " '`), so the text can never inject markup.
/// - Paragraphs are separated by blank lines (lines empty or all whitespace) and become
///   one `<p>` each; single newlines inside a paragraph become `<br>`.
/// - `http://` and `https://` URLs become links. A URL starts at a word boundary and runs
///   to the next whitespace or `<`, `>`, `"`; trailing `. , ; : ! ? ' )` are left out of
///   it (sentence punctuation), except a `)` that closes a `(` inside the URL.
/// - The document declares `<meta charset="utf-8">` and `lang` from `locale` (`_` becomes
///   `-`; a locale that is not a plausible BCP 47 tag is left out rather than escaped into
///   something meaningless). It has no `<title>`: HTML allows that when the title comes
///   from a higher-level protocol, here the email's Subject.
///
/// `\r\n` is treated as `\n`.
pub fn html_from_text(text: &str, locale: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut body = String::with_capacity(text.len() + text.len() / 4);
    for paragraph in paragraphs(&text) {
        body.push_str("<p>");
        for (i, line) in paragraph.iter().enumerate() {
            if i > 0 {
                body.push_str("<br>\n");
            }
            linkify_into(line, &mut body);
        }
        body.push_str("</p>\n");
    }
    let lang = language_tag(locale).map(|tag| format!(" lang=\"{tag}\"")).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         </head>\n<body>\n{body}</body>\n</html>\n"
    )
}

/// `locale` as a BCP 47 tag when it looks like one: 1 to 35 ASCII letters, digits and
/// hyphens (`_` read as `-`), starting with a letter. Also used for `Content-Language`.
pub(crate) fn language_tag(locale: &str) -> Option<String> {
    let tag = locale.trim().replace('_', "-");
    let plausible = (1..=35).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_alphabetic())
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    plausible.then_some(tag)
}

/// Groups the lines into paragraphs, dropping the blank lines between them.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut all = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

/// Appends `line` escaped, with its URLs turned into links.
fn linkify_into(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(start) = url_start(rest) {
        let (before, from) = rest.split_at(start);
        escape_into(before, out);
        let (url, after) = from.split_at(url_len(from));
        out.push_str("<a href=\"");
        escape_into(url, out);
        out.push_str("\">");
        escape_into(url, out);
        out.push_str("</a>");
        rest = after;
    }
    escape_into(rest, out);
}

/// The byte offset of the first `http://` or `https://` that starts a word and has at
/// least one character after the scheme.
fn url_start(text: &str) -> Option<usize> {
    text.match_indices("http").map(|(i, _)| i).find(|&i| {
        let at_word_start = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let tail = &text[i..];
        let scheme_len = ["https://", "http://"].iter().find(|s| tail.starts_with(**s)).map(|s| s.len());
        at_word_start && scheme_len.is_some_and(|n| url_len(tail) > n)
    })
}

/// The length of the URL at the start of `text`, without trailing sentence punctuation.
fn url_len(text: &str) -> usize {
    let end = text.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(text.len());
    let mut url = &text[..end];
    loop {
        let trimmed = url.strip_suffix(['.', ',', ';', ':', '!', '?', '\'']).unwrap_or(url);
        let trimmed = match trimmed.strip_suffix(')') {
            Some(inner) if inner.matches('(').count() < trimmed.matches(')').count() => inner,
            _ => trimmed,
        };
        if trimmed.len() == url.len() {
            return url.len();
        }
        url = trimmed;
    }
}

/// `text` made safe as HTML or XML text and attribute values, appended to `out`. Control
/// characters neither may hold (all of C0 but tab and line breaks) are dropped.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<body>` contents of the document for `text`.
    fn body_of(text: &str) -> String {
        let html = html_from_text(text, "en");
        let start = html.find("<body>\n").expect("a body") + "<body>\n".len();
        let end = html.find("</body>").expect("a body end");
        html[start..end].to_owned()
    }

    fn check(text: &str, expected_body: &str) {
        assert_eq!(body_of(text), expected_body, "{text:?}");
    }

    #[test]
    fn document_shape() {
        assert_eq!(
            html_from_text("Bonjour", "fr_FR"),
            "<!DOCTYPE html>\n<html lang=\"fr-FR\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             </head>\n<body>\n<p>Bonjour</p>\n</body>\n</html>\n"
        );
    }

    #[test]
    fn an_implausible_locale_gives_no_lang() {
        assert!(html_from_text("x", "\"><script>").starts_with("<!DOCTYPE html>\n<html>\n"));
        assert!(html_from_text("x", "").starts_with("<!DOCTYPE html>\n<html>\n"));
    }

    #[test]
    fn paragraphs_line_breaks_and_escaping() {
        check("", "");
        check("one\ntwo\n\n\n  \nthree\n", "<p>one<br>\ntwo</p>\n<p>three</p>\n");
        check("a\r\nb\r\n\r\nc", "<p>a<br>\nb</p>\n<p>c</p>\n");
        check(
            "<b>5 > 4 & \"x\" 'y'</b>",
            "<p>&lt;b&gt;5 &gt; 4 &amp; &quot;x&quot; &#39;y&#39;&lt;/b&gt;</p>\n",
        );
    }

    #[test]
    fn urls_become_links() {
        check(
            "See https://status.example/i/42.",
            "<p>See <a href=\"https://status.example/i/42\">https://status.example/i/42</a>.</p>\n",
        );
        check(
            "(http://a.example/x?q=1&r=2)",
            "<p>(<a href=\"http://a.example/x?q=1&amp;r=2\">http://a.example/x?q=1&amp;r=2</a>)</p>\n",
        );
        check(
            "https://w.example/A_(b) then",
            "<p><a href=\"https://w.example/A_(b)\">https://w.example/A_(b)</a> then</p>\n",
        );
        check(
            "<https://a.example/\"x>",
            "<p>&lt;<a href=\"https://a.example/\">https://a.example/</a>&quot;x&gt;</p>\n",
        );
        // Not a word start, or nothing after the scheme: plain text.
        check("xhttps://a.example https:// http", "<p>xhttps://a.example https:// http</p>\n");
        check(
            "a http://x.example b https://y.example",
            &format!(
                "<p>a {} b {}</p>\n",
                "<a href=\"http://x.example\">http://x.example</a>",
                "<a href=\"https://y.example\">https://y.example</a>"
            ),
        );
    }

    /// Texts made of the pieces that matter: markup characters, URL starts, newlines.
    fn tricky_text() -> impl proptest::strategy::Strategy<Value = String> {
        let pieces = proptest::sample::select(vec![
            "<", ">", "&", "\"", "'", "a", " ", "\n", "\r\n", "https://", "http://x", ".", ")", "(", "é",
        ]);
        proptest::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever the text, the only markup in the body is ours.
        #[test]
        fn the_text_never_injects_markup(text in tricky_text()) {
            let body = body_of(&text);
            let allowed = ["<p>", "</p>", "<br>", "<a href=\"", "</a>"];
            for (at, _) in body.match_indices('<') {
                prop_assert!(allowed.iter().any(|tag| body[at..].starts_with(tag)), "{body:?}");
            }
            prop_assert_eq!(body.matches("<a href=").count(), body.matches("</a>").count());
            prop_assert_eq!(body.matches("<p>").count(), body.matches("</p>").count());
        }
    }
}
