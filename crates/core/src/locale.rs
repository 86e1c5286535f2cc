//! The customer's language: the tag every notice, page and number is written in.

use crate::field::FieldError;
use std::fmt;

/// A BCP 47 language tag of the simple kind customers have: `en`, `en-US`, `es-419`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locale(String);

impl Locale {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let mut parts = s.split('-');
        let lang = parts.next().unwrap_or("");
        let region = parts.next();
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = match region {
            None => true,
            Some(r) => {
                (r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
                    || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
            }
        };
        if lang_ok && region_ok && parts.next().is_none() {
            Ok(Locale(s.to_string()))
        } else {
            Err(FieldError::new("locale", s, "is not a locale like en-US or fr"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language alone: `en` for `en-US`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
