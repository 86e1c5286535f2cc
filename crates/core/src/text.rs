//! Characters no field may hold, and text made safe for a terminal or a spreadsheet.
//!
//! A name with a carriage return, an escape sequence (which `notices preview` would print
//! to the operator's terminal as a command), a right-to-left override that reorders what
//! a customer reads, or a zero-width character that makes two ids look alike: each is
//! refused on input, with the field and the character named. Free text (a message, a
//! note) may hold line feeds and tabs; names, ids and every CSV cell only tabs.

use std::borrow::Cow;

/// A character refused in a field: where it is (1-based, in characters) and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    pub position: usize,
    pub char: char,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "holds {} at character {}", describe(self.char), self.position)
    }
}

/// Whether `c` is refused: C0 and C1 controls (tab, and line feed where `lines` allows
/// them, excepted), DEL, bidirectional overrides and isolates, and zero-width characters.
fn refused(c: char, lines: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !lines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' => true,
        _ => false,
    }
}

/// The first refused character of a one-line field (a name, an id, a CSV cell).
pub fn forbidden_in_line(s: &str) -> Option<Forbidden> {
    first_refused(s, false)
}

/// The first refused character of free text (a message, a note), which may hold lines.
pub fn forbidden_in_text(s: &str) -> Option<Forbidden> {
    first_refused(s, true)
}

fn first_refused(s: &str, lines: bool) -> Option<Forbidden> {
    s.chars()
        .enumerate()
        .find(|(_, c)| refused(*c, lines))
        .map(|(i, c)| Forbidden { position: i + 1, char: c })
}

/// `U+001B (escape)`: a character named so a person can find it.
pub fn describe(c: char) -> String {
    let name = match c {
        '\n' => "line feed",
        '\r' => "carriage return",
        '\u{0}' => "null",
        '\u{1b}' => "escape",
        '\u{7f}' => "delete",
        '\u{202a}'..='\u{202e}' => "a bidirectional override",
        '\u{2066}'..='\u{2069}' => "a bidirectional isolate",
        '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' => "a zero-width character",
        _ => "a control character",
    };
    format!("U+{:04X} ({name})", u32::from(c))
}

/// `s` as a terminal may print it: every refused character but line feed and tab written
/// as `\u{1b}`, so stored text can never move the cursor, recolour or retitle a terminal.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| refused(c, true)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if refused(c, true) { format!("\\u{{{:x}}}", u32::from(c)) } else { c.to_string() })
            .collect(),
    )
}

/// A CSV cell as a spreadsheet will not run it: one that starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return is a formula to Excel and LibreOffice (CSV injection), so it
/// gets a leading `'`, as OWASP advises; a plain number (`-142`) is left as it is, so
/// amounts stay numbers. The JSON export needs none of this.
pub fn safe_cell(text: &str) -> Cow<'_, str> {
    let number = {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
        !whole.is_empty()
            && [whole, fraction].iter().all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && !number {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_zero_width_are_found_and_named() {
        assert_eq!(forbidden_in_line("Ana\tLima"), None);
        assert_eq!(forbidden_in_line("Ana Lima é ü 日本"), None);
        let found = forbidden_in_line("Ana\rLima").unwrap();
        assert_eq!(found.to_string(), "holds U+000D (carriage return) at character 4");
        assert_eq!(forbidden_in_line("a\u{1b}[2J").unwrap().char, '\u{1b}');
        assert_eq!(
            forbidden_in_line("abc\u{202e}fed").unwrap().to_string(),
            "holds U+202E (a bidirectional override) at character 4"
        );
        assert_eq!(forbidden_in_line("C\u{200b}1").unwrap().position, 2);
        assert_eq!(forbidden_in_line("x\u{85}").unwrap().char, '\u{85}');
        assert_eq!(forbidden_in_line("one\ntwo").unwrap().char, '\n');
        assert_eq!(forbidden_in_text("one\ntwo\tthree"), None);
        assert!(forbidden_in_text("one\r\ntwo").is_some());
    }

    #[test]
    fn a_terminal_never_receives_a_raw_control_character() {
        assert!(matches!(printable("plain\ntext"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[31mred\u{7}"), "a\\u{1b}[31mred\\u{7}");
        assert_eq!(printable("x\u{202e}y\r\n"), "x\\u{202e}y\\u{d}\n");
    }
}
