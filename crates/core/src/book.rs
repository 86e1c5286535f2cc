//! A provider's book: plans, customers and the fields they are made of.
//!
//! Every field is parsed once, when a row comes in, into a type that cannot hold a bad
//! value (parse, don't validate). Errors name the field and quote the value so that an
//! import can say `customers.csv:17: email "x@" is not an address`.

pub use crate::field::FieldError;
use crate::id::CustomerId;
pub use crate::locale::Locale;
pub use crate::money::PRICE_MINOR_MAX;
use crate::money::{Currency, Money};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt;

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

/// A customer segment: `residential`, `business`, `wholesale`, ... Free text of 1 to
/// [`Segment::LEN_MAX`] bytes of lowercase `a-z`, `0-9`, `_` and `-`, so policies can be chosen
/// by it. Held inline (no allocation per customer) and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    // Zero-padded: none of the allowed bytes is 0, so the derived order is the order of
    // the text and equal bytes mean equal lengths.
    bytes: [u8; Segment::LEN_MAX],
    len: u8,
}

impl Segment {
    pub const LEN_MAX: usize = 32;

    /// The segment of a customer whose segment is not given.
    pub const RESIDENTIAL: Segment = Segment::known("residential");
    pub const BUSINESS: Segment = Segment::known("business");
    pub const WHOLESALE: Segment = Segment::known("wholesale");

    /// A constant from text known to be valid; an invalid one fails the build.
    const fn known(s: &str) -> Segment {
        let b = s.as_bytes();
        assert!(!b.is_empty() && b.len() <= Segment::LEN_MAX);
        let mut bytes = [0; Segment::LEN_MAX];
        let mut i = 0;
        while i < b.len() {
            assert!(Segment::allowed(b[i]));
            bytes[i] = b[i];
            i += 1;
        }
        Segment { bytes, len: b.len() as u8 }
    }

    const fn allowed(b: u8) -> bool {
        matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(FieldError::new(
                "segment",
                s,
                "is empty; give a segment like residential or business",
            ));
        }
        if b.len() > Segment::LEN_MAX {
            return Err(FieldError::new("segment", s, "is longer than 32 characters"));
        }
        if !b.iter().all(|&c| Segment::allowed(c)) {
            return Err(FieldError::new(
                "segment",
                s,
                "is not a segment: only lowercase a-z, 0-9, _ and - (like residential or business)",
            ));
        }
        let mut bytes = [0; Segment::LEN_MAX];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Segment { bytes, len: b.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Default for Segment {
    fn default() -> Self {
        Segment::RESIDENTIAL
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Segment({:?})", self.as_str())
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Segment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Segment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Segment::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Officially assigned ISO 3166-1 alpha-2 country codes, sorted (the list tzdata ships in
/// `iso3166.tab`).
const ISO_3166_1: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA",
    "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV",
    "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU",
    "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES",
    "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM",
    "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE",
    "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM",
    "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT",
    "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU",
    "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA",
    "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM",
    "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL",
    "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
    "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Where a customer is, for the law that governs their compensation: an ISO 3166-1
/// alpha-2 country code, optionally followed by `-` and 1 to 3 uppercase letters or digits
/// for a part of it (`DE`, `US-NY`, `GB-SCT`, `GB-EAW`). Held inline and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jurisdiction {
    // Zero-padded, as in `Segment`: the derived order is the order of the text.
    bytes: [u8; Jurisdiction::LEN_MAX],
    len: u8,
}

impl Jurisdiction {
    pub const LEN_MAX: usize = 6;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let bad = |why: &str| FieldError::new("jurisdiction", s, why);
        let b = s.as_bytes();
        let (country, part) = match b.len() {
            2 => (b, None),
            4..=Jurisdiction::LEN_MAX if b[2] == b'-' => (&b[..2], Some(&b[3..])),
            _ => return Err(bad("is not a jurisdiction like DE, US-NY or GB-SCT")),
        };
        if !country.iter().all(u8::is_ascii_uppercase)
            || !part.unwrap_or_default().iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(bad("is not a jurisdiction like DE, US-NY or GB-SCT (uppercase letters and digits)"));
        }
        if ISO_3166_1.binary_search_by(|known| known.as_bytes().cmp(country)).is_err() {
            return Err(bad("does not start with an ISO 3166-1 country code (like GB, US or DE)"));
        }
        let mut bytes = [0; Jurisdiction::LEN_MAX];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Jurisdiction { bytes, len: b.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The ISO 3166-1 alpha-2 country code: `GB` for `GB-SCT`.
    pub fn country(&self) -> &str {
        &self.as_str()[..2]
    }

    /// The part of the country, if one is given: `SCT` for `GB-SCT`.
    pub fn subdivision(&self) -> Option<&str> {
        self.as_str().get(3..)
    }

    /// Whether this jurisdiction is `other` or lies within it: `GB-SCT` is within `GB` and
    /// within `GB-SCT`, but not within `GB-EAW`; `GB` is not within `GB-SCT`.
    pub fn is_within(&self, other: &Jurisdiction) -> bool {
        self == other || (other.subdivision().is_none() && self.country() == other.country())
    }
}

impl fmt::Debug for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jurisdiction({:?})", self.as_str())
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Jurisdiction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Jurisdiction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Jurisdiction::parse(&s).map_err(serde::de::Error::custom)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    pub id: CustomerId,
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
    /// `residential` unless the book says otherwise.
    pub segment: Segment,
    /// `None`: not known.
    pub jurisdiction: Option<Jurisdiction>,
    /// What policies may read of the customer beyond the columns above
    /// (`customer.attributes` in CEL); `None` when the book gives none.
    pub attributes: Option<std::sync::Arc<crate::policy::Attributes>>,
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

    #[test]
    fn segments() {
        for good in ["residential", "business", "wholesale", "smb_2", "key-account", "x", &"a".repeat(32)] {
            assert_eq!(Segment::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Business", "small business", "b2b!", "é", "résidentiel", &"a".repeat(33)] {
            let e = Segment::parse(bad).unwrap_err();
            assert_eq!((e.field, e.value.as_str()), ("segment", bad));
        }
        assert_eq!(
            Segment::parse("Business").unwrap_err().to_string(),
            r#"segment "Business" is not a segment: only lowercase a-z, 0-9, _ and - (like residential or business)"#
        );
        assert_eq!(Segment::default(), Segment::RESIDENTIAL);
        assert_eq!(Segment::RESIDENTIAL, Segment::parse("residential").unwrap());
        assert_eq!(
            (Segment::BUSINESS.as_str(), Segment::WHOLESALE.to_string()),
            ("business", "wholesale".into())
        );
        // Ordered and compared as their text.
        let mut v = ["residential", "b", "business", "a-b", "ab"].map(|s| Segment::parse(s).unwrap());
        v.sort();
        assert_eq!(v.map(|s| s.as_str().to_string()), ["a-b", "ab", "b", "business", "residential"]);
        assert_ne!(Segment::parse("ab").unwrap(), Segment::parse("abc").unwrap());
    }

    #[test]
    fn jurisdictions() {
        for good in ["DE", "GB-EAW", "GB-SCT", "US-NY", "FR-75", "CA-QC", "ES-B", "ZW"] {
            assert_eq!(Jurisdiction::parse(good).unwrap().as_str(), good);
        }
        for bad in
            ["", "G", "gb", "GB-", "GB-sct", "GB-EAWX", "GBR", "GB_SCT", "GB-S T", "us-NY", "-NY", "GB--S"]
        {
            let e = Jurisdiction::parse(bad).unwrap_err();
            assert_eq!((e.field, e.value.as_str()), ("jurisdiction", bad));
        }
        // Well formed but no country: UK is not an ISO 3166-1 code (GB is).
        assert_eq!(
            Jurisdiction::parse("UK").unwrap_err().to_string(),
            r#"jurisdiction "UK" does not start with an ISO 3166-1 country code (like GB, US or DE)"#
        );
        assert!(Jurisdiction::parse("XX-NY").is_err());
        let sct = Jurisdiction::parse("GB-SCT").unwrap();
        let gb = Jurisdiction::parse("GB").unwrap();
        let eaw = Jurisdiction::parse("GB-EAW").unwrap();
        assert_eq!((sct.country(), sct.subdivision()), ("GB", Some("SCT")));
        assert_eq!((gb.country(), gb.subdivision()), ("GB", None));
        assert!(sct.is_within(&gb) && sct.is_within(&sct) && gb.is_within(&gb));
        assert!(!sct.is_within(&eaw) && !gb.is_within(&sct));
        assert!(!sct.is_within(&Jurisdiction::parse("GR").unwrap()));
        assert!(gb < eaw && eaw < sct);
    }

    #[test]
    fn country_codes_are_sorted_and_distinct() {
        assert!(ISO_3166_1.windows(2).all(|w| w[0] < w[1]));
        assert!(ISO_3166_1.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn segments_and_jurisdictions_read_from_toml_as_text() {
        #[derive(Debug, serde::Deserialize, serde::Serialize)]
        struct T {
            segment: Segment,
            jurisdiction: Jurisdiction,
        }
        let t: T = toml::from_str("segment = \"business\"\njurisdiction = \"GB-SCT\"").unwrap();
        assert_eq!((t.segment, t.jurisdiction.as_str()), (Segment::BUSINESS, "GB-SCT"));
        assert_eq!(toml::to_string(&t).unwrap(), "segment = \"business\"\njurisdiction = \"GB-SCT\"\n");
        let e = toml::from_str::<T>("segment = \"B\"\njurisdiction = \"GB\"").unwrap_err();
        assert!(e.to_string().contains(r#"segment "B" is not a segment"#), "{e}");
    }
}
