//! A provider's book: plans, customers and the fields they are made of.
//!
//! Every field is parsed once, when a row comes in, into a type that cannot hold a bad
//! value (parse, don't validate). Errors name the field and quote the value so that an
//! import can say `customers.csv:17: email "x@" is not an address`.

use crate::money::{Currency, Money};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt;

/// A problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub value: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &'static str, value: &str, problem: impl Into<String>) -> Self {
        FieldError { field, value: value.to_string(), problem: problem.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// A pragmatic check (one `@`, a non-empty local part, a dotted domain, no spaces or
    /// control characters); delivery is the final judge.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = |why: &str| FieldError::new("email", s, why);
        let (local, domain) = s.split_once('@').ok_or_else(|| bad("is not an address"))?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(bad("is not an address"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',') {
            return Err(bad("is not an address: it contains a space, a comma or a control character"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..")
        {
            return Err(bad("is not an address: its domain has no dot or an empty label"));
        }
        if s.len() > 254 {
            return Err(bad("is not an address: longer than 254 characters"));
        }
        Ok(Email(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164: `+` and 2 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneE164(String);

impl PhoneE164 {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(PhoneE164(s.to_string()))
        } else {
            Err(FieldError::new("phone", s, "is not an E.164 number (like +14155550123)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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

/// An IANA time zone, with the name it was given.
#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Zone {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.is_empty() {
            return Err(FieldError::new("timezone", s, "is empty; give an IANA time zone like Europe/Paris"));
        }
        TimeZone::get(s)
            .map(|tz| Zone { name: s.to_string(), tz })
            .map_err(|_| FieldError::new("timezone", s, "is not an IANA time zone"))
    }
}

pub fn parse_billing_day(s: &str) -> Result<u8, FieldError> {
    match s.parse::<u8>() {
        Ok(d @ 1..=28) => Ok(d),
        _ => Err(FieldError::new("billing_day", s, "is not a day from 1 to 28")),
    }
}

pub fn parse_instant(field: &'static str, s: &str) -> Result<Timestamp, FieldError> {
    s.parse::<Timestamp>()
        .map_err(|_| FieldError::new(field, s, "is not an RFC 3339 instant (like 2024-05-01T00:00:00Z)"))
}

/// The largest monthly price amends accepts, in minor units: far above any real plan, and
/// small enough that summing a customer's credit lines can never overflow.
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;

pub fn parse_price(field: &'static str, s: &str) -> Result<i64, FieldError> {
    match s.parse::<i64>() {
        Ok(v) if (0..=PRICE_MINOR_MAX).contains(&v) => Ok(v),
        Ok(v) if v > PRICE_MINOR_MAX => {
            Err(FieldError::new(field, s, "is more than 1,000,000,000,000 minor units"))
        }
        Ok(_) => Err(FieldError::new(field, s, "is negative")),
        Err(_) => Err(FieldError::new(field, s, "is not a whole number of minor units")),
    }
}

pub fn parse_currency(s: &str) -> Result<Currency, FieldError> {
    Currency::parse(s).map_err(|_| FieldError::new("currency", s, "is not an ISO 4217 currency code"))
}

/// A non-empty identifier without surrounding spaces or control characters.
pub fn parse_id(field: &'static str, s: &str) -> Result<String, FieldError> {
    if s.is_empty() {
        return Err(FieldError::new(field, s, "is empty"));
    }
    if s.trim() != s || s.chars().any(char::is_control) || s.len() > 128 {
        return Err(FieldError::new(
            field,
            s,
            "has surrounding spaces, control characters or more than 128 bytes",
        ));
    }
    Ok(s.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    Active,
    Cancelled,
}

impl CustomerStatus {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "active" => Ok(CustomerStatus::Active),
            "cancelled" => Ok(CustomerStatus::Cancelled),
            _ => Err(FieldError::new("status", s, "is not active or cancelled")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CustomerStatus::Active => "active",
            CustomerStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub monthly_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<PhoneE164>,
    pub locale: Locale,
    pub zone: Zone,
    pub plan_id: String,
    pub element_id: String,
    pub device_id: Option<String>,
    pub billing_day: u8,
    pub active_since: Timestamp,
    pub status: CustomerStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(Email::parse("ana@example.com").is_ok());
        assert!(Email::parse("a.b+c@mail.example.co.uk").is_ok());
        for bad in ["x@", "@x.com", "x", "x@y", "a b@x.com", "a@b@c.com", "a@.com", "a@x..com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Email::parse("x@").unwrap_err().to_string(), r#"email "x@" is not an address"#);
    }

    #[test]
    fn phones() {
        assert!(PhoneE164::parse("+14155550123").is_ok());
        for bad in ["14155550123", "+0123", "+1", "+1234567890123456", "+1 415"] {
            assert!(PhoneE164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locales_zones_days() {
        assert_eq!(Locale::parse("en-US").unwrap().language(), "en");
        assert!(Locale::parse("es-419").is_ok());
        assert!(Locale::parse("fr").is_ok());
        for bad in ["EN", "en_US", "en-us", "", "english"] {
            assert!(Locale::parse(bad).is_err(), "{bad}");
        }
        assert!(Zone::parse("America/New_York").is_ok());
        assert_eq!(
            Zone::parse("Mars/Olympus").unwrap_err().to_string(),
            r#"timezone "Mars/Olympus" is not an IANA time zone"#
        );
        assert_eq!(parse_billing_day("28"), Ok(28));
        assert!(parse_billing_day("29").is_err());
        assert!(parse_billing_day("0").is_err());
        assert!(parse_price("monthly_price_minor", "-1").is_err());
        assert!(parse_instant("active_since", "2024-01-01").is_err());
    }
}
