//! Money in integer minor units with an ISO 4217 currency, and exact rounding.
//!
//! Amounts are `i64` minor units; intermediate products use `i128` so that
//! `price x seconds` never overflows. Never binary floating point.

use std::fmt;

use crate::locale::Locale;

/// The largest monthly price amends accepts, in minor units: far above any real plan, and
/// small enough that summing a customer's credit lines can never overflow.
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;

/// ISO 4217 codes amends accepts, with their minor-unit exponent.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UYU", 2),
    ("VND", 0),
    ("ZAR", 2),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an ISO 4217 currency code amends knows")]
    UnknownCurrency(String),
    #[error("{0} is negative; prices and credits are never negative")]
    Negative(i64),
}

/// An ISO 4217 currency: its code and how many decimal places its minor unit has.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Parses an upper-case ISO 4217 code such as `USD`.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        ISO_4217
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, exponent)| {
                let b = known.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *exponent }
            })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
    }

    pub fn code(&self) -> &str {
        // The code bytes come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimal places of the minor unit (2 for USD, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// The amount in major units without the code: `79.99`, `1,250`, `0.500`.
    pub fn amount_text(&self) -> String {
        format_minor(self.minor, self.currency.exponent())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency)
    }
}

/// Formats minor units as major units with thousands separators: `123456, 2` -> `1,234.56`.
pub fn format_minor(minor: i64, exponent: u8) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10u64.pow(u32::from(exponent));
    let whole = group_thousands(abs / scale);
    if exponent == 0 {
        return format!("{sign}{whole}");
    }
    let frac = abs % scale;
    format!("{sign}{whole}.{frac:0width$}", width = usize::from(exponent))
}

/// `1234567` -> `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
/// An amount as the store keeps it (minor units and an ISO 4217 code) written for `locale`.
/// A code that is not (or no longer) known falls back to plain digits with two decimals,
/// so a notice is never held back by a bad currency in an old row.
pub fn format_stored(minor: i64, currency: &str, locale: &Locale) -> String {
    match Currency::parse(currency) {
        Ok(c) => format_for_locale(Money::new(minor, c), locale),
        Err(_) => format_minor(minor, 2),
    }
}

/// An amount as a customer of `locale` reads it: `$1,234.56` (en), `1 234,56 €` (fr),
/// `1.234,56 €` (de), `1234,56 €` and `12.345,67 €` (es), `$1,234.56` (es-MX), `R$ 1.234,56`
/// (pt-BR). Exact: the digits come from the integer minor units and the currency's exponent
/// (`¥1,250`, `BHD 1.250`), never a float.
///
/// The digits, their grouping and the decimal separator are CLDR's, through ICU4X
/// ([`crate::cldr::decimal`]: `minimumGroupingDigits`, `es-419`'s decimal point, `de-CH`'s
/// `’`). Where the symbol goes, and which symbol, are CLDR's standard currency pattern and
/// `currencies/*/symbol` for the languages amends ships templates in (below); ICU4X's own
/// currency formatter is not stable yet.
///
/// - symbol first, touching (`¤#,##0.00`): `en`, `es` where a decimal point is the norm;
///   a symbol ending in a letter (an ISO code) is followed by a no-break space (CLDR
///   `currencySpacing`): `CHF 12.50`;
/// - symbol first, then a no-break space (`¤ #,##0.00`): `pt-BR`, `de-CH`, `de-LI`;
/// - symbol last, after a no-break space (`#,##0.00 ¤`): `fr`, `de`, other `es`, `pt-PT`.
///
/// Other languages are written in the ISO style of [`Money`]'s `Display` (`1,234.56
/// JPY`): their notices are English. A currency without a symbol in the language is
/// written with its ISO code in the symbol's place.
pub fn format_for_locale(money: Money, locale: &Locale) -> String {
    let region = locale.as_str().split('-').nth(1);
    let Some(place) = SymbolPlace::of(locale.language(), region) else {
        return money.to_string();
    };
    let code = money.currency.code();
    let symbol = currency_symbol(code, locale.language(), region).unwrap_or(code);
    let digits = crate::cldr::decimal(money.minor.unsigned_abs(), money.currency.exponent(), locale);
    let sign = if money.minor < 0 { "-" } else { "" };
    match place {
        SymbolPlace::Last => format!("{sign}{digits}\u{a0}{symbol}"),
        SymbolPlace::FirstSpaced => format!("{sign}{symbol}\u{a0}{digits}"),
        SymbolPlace::First => {
            let space = if symbol.ends_with(char::is_alphabetic) { "\u{a0}" } else { "" };
            format!("{sign}{symbol}{space}{digits}")
        }
    }
}

/// Where a language puts the currency symbol (CLDR's standard currency pattern).
enum SymbolPlace {
    First,
    FirstSpaced,
    Last,
}

/// Spanish regions that write a decimal point (CLDR `es_419` and the children that keep
/// its symbols), and with it the symbol first; the others (Spain, Argentina, Chile,
/// Colombia, ...) write a decimal comma and the symbol last.
const ES_DECIMAL_POINT_REGIONS: &[&str] =
    &["419", "BZ", "CU", "DO", "GT", "HN", "MX", "NI", "PA", "PE", "PR", "SV", "US"];

impl SymbolPlace {
    fn of(language: &str, region: Option<&str>) -> Option<SymbolPlace> {
        Some(match (language, region) {
            ("en", _) => SymbolPlace::First,
            ("es", Some(r)) if ES_DECIMAL_POINT_REGIONS.contains(&r) => SymbolPlace::First,
            ("de", Some("CH" | "LI")) | ("pt", Some("BR") | None) => SymbolPlace::FirstSpaced,
            ("fr" | "de" | "es" | "pt", _) => SymbolPlace::Last,
            _ => return None,
        })
    }
}

/// The currency symbol CLDR gives `code` in `language`, adjusted where the customer's
/// region makes a bare `$` mean its own dollar (en-CA: `$` is CAD and USD is `US$`).
/// `None`: write the ISO code.
fn currency_symbol(code: &str, language: &str, region: Option<&str>) -> Option<&'static str> {
    let own_dollar = match region {
        Some("CA") => "CAD",
        Some("AU") => "AUD",
        Some("NZ") => "NZD",
        Some("SG") => "SGD",
        Some("HK") => "HKD",
        _ => "USD",
    };
    if (language == "en" && code == own_dollar) || (language == "fr" && code == "CAD" && region == Some("CA"))
    {
        return Some("$");
    }
    let symbol = match (language, code) {
        ("en", "USD") => "US$",
        (_, "EUR") => "€",
        ("en" | "de", "GBP") => "£",
        ("en" | "de", "JPY") => "¥",
        ("en", "CAD") => "CA$",
        ("en", "AUD") => "A$",
        ("en", "NZD") => "NZ$",
        ("en", "HKD") => "HK$",
        ("en", "CNY") => "CN¥",
        ("en", "INR") => "₹",
        ("en", "ILS") => "₪",
        ("en", "KRW") => "₩",
        ("en", "MXN") => "MX$",
        ("en", "BRL") => "R$",
        ("en", "TWD") => "NT$",
        ("en", "VND") => "₫",
        ("en", "PHP") => "₱",
        ("fr", "USD") if region == Some("CA") => "$\u{a0}US",
        ("fr", "USD") => "$US",
        ("fr", "GBP") => "£GB",
        ("fr", "CAD") => "$CA",
        ("de", "USD") => "$",
        ("es", "USD") if region.is_some_and(|r| ES_DECIMAL_POINT_REGIONS.contains(&r)) => "USD",
        ("es", "USD") => "US$",
        ("es", "MXN") if region == Some("MX") => "$",
        ("pt", "BRL") => "R$",
        ("pt", "USD") => "US$",
        ("de", "CHF") if matches!(region, Some("CH" | "LI")) => "CHF",
        _ => return None,
    };
    Some(symbol)
}

/// How a policy turns an exact quotient into minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Halves go up (towards positive infinity): 0.5 -> 1, 2.5 -> 3.
    #[default]
    HalfUp,
    /// Halves go to the even neighbour: 0.5 -> 0, 1.5 -> 2.
    HalfEven,
    /// Always down (towards negative infinity).
    Down,
}

impl Rounding {
    /// Rounds `numerator / denominator` (denominator > 0) to an integer, exactly.
    pub fn divide(self, numerator: i128, denominator: i128) -> i128 {
        assert!(denominator > 0, "denominator must be positive");
        let floor = numerator.div_euclid(denominator);
        let rem = numerator.rem_euclid(denominator);
        match self {
            Rounding::Down => floor,
            Rounding::HalfUp => {
                if 2 * rem >= denominator {
                    floor + 1
                } else {
                    floor
                }
            }
            Rounding::HalfEven => match (2 * rem).cmp(&denominator) {
                std::cmp::Ordering::Greater => floor + 1,
                std::cmp::Ordering::Less => floor,
                std::cmp::Ordering::Equal => floor + (floor & 1),
            },
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Rounding::HalfUp => "rounded half-up",
            Rounding::HalfEven => "rounded half-even",
            Rounding::Down => "rounded down",
        }
    }
}

/// Writes the exact quotient `numerator / denominator` of minor units in major units, with
/// up to `extra` more decimals than the currency has, and a trailing `...` when it is not
/// exact at that precision: `9999, 10000, 2, 4` -> `0.9999`.
pub fn format_quotient(numerator: i128, denominator: i128, exponent: u8, extra: u8) -> String {
    let places = u32::from(exponent) + u32::from(extra);
    let scaled = numerator * 10i128.pow(u32::from(extra));
    let q = scaled.div_euclid(denominator);
    let exact = scaled.rem_euclid(denominator) == 0;
    let scale = 10i128.pow(places);
    let whole = group_thousands(u64::try_from(q / scale).unwrap_or(u64::MAX));
    let mut frac = format!("{:0width$}", q % scale, width = places as usize);
    // Trim zeros beyond the currency's own places when exact.
    if exact {
        while frac.len() > usize::from(exponent) && frac.ends_with('0') {
            frac.pop();
        }
    }
    let dots = if exact { "" } else { "..." };
    if frac.is_empty() { format!("{whole}{dots}") } else { format!("{whole}.{frac}{dots}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("USD").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::parse("usd"), Err(MoneyError::UnknownCurrency("usd".into())));
        assert_eq!(Currency::parse("XXX"), Err(MoneyError::UnknownCurrency("XXX".into())));
    }

    #[test]
    fn formatting() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(Money::new(7999, usd).to_string(), "79.99 USD");
        assert_eq!(Money::new(123456789, usd).to_string(), "1,234,567.89 USD");
        assert_eq!(Money::new(5, usd).to_string(), "0.05 USD");
        assert_eq!(Money::new(1250, Currency::parse("JPY").unwrap()).to_string(), "1,250 JPY");
        assert_eq!(format_quotient(7999 * 540, 43_200, 2, 4), "0.999875");
        assert_eq!(format_quotient(1, 7, 2, 2), "0.0014...");
        assert_eq!(format_quotient(1, 3, 2, 4), "0.003333...");
        assert_eq!(format_quotient(500, 1, 2, 4), "5.00");
    }

    #[test]
    fn rounding() {
        let check =
            |r: Rounding, n: i128, d: i128, want: i128| assert_eq!(r.divide(n, d), want, "{r:?} {n}/{d}");
        check(Rounding::HalfUp, 1, 2, 1);
        check(Rounding::HalfUp, 3, 2, 2);
        check(Rounding::HalfUp, 49, 100, 0);
        check(Rounding::HalfUp, 7999 * 540, 43_200, 100);
        check(Rounding::HalfEven, 1, 2, 0);
        check(Rounding::HalfEven, 3, 2, 2);
        check(Rounding::HalfEven, 5, 2, 2);
        check(Rounding::Down, 99, 100, 0);
        check(Rounding::HalfUp, -1, 2, 0);
    }

    #[test]
    fn formatting_for_locales() {
        let check = |minor: i64, code: &str, locale: &str, want: &str| {
            let money = Money::new(minor, Currency::parse(code).unwrap());
            let got = format_for_locale(money, &Locale::parse(locale).unwrap());
            assert_eq!(got, want, "{minor} {code} in {locale}");
        };
        check(123456, "USD", "en-US", "$1,234.56");
        check(123456, "USD", "en", "$1,234.56");
        check(-100, "USD", "en-US", "-$1.00");
        check(5, "USD", "en-US", "$0.05");
        check(0, "USD", "en-US", "$0.00");
        check(123456789, "GBP", "en-GB", "£1,234,567.89");
        check(999, "EUR", "en-IE", "€9.99");
        check(1250, "JPY", "en-US", "¥1,250");
        check(1250, "BHD", "en-US", "BHD\u{a0}1.250");
        check(1250, "CHF", "en-GB", "CHF\u{a0}12.50");
        check(1000, "CAD", "en-US", "CA$10.00");
        check(1000, "CAD", "en-CA", "$10.00");
        check(1000, "USD", "en-CA", "US$10.00");
        check(1000, "AUD", "en-GB", "A$10.00");
        check(1000, "AUD", "en-AU", "$10.00");
        check(123456, "EUR", "fr-FR", "1\u{202f}234,56\u{a0}€");
        check(123456, "EUR", "fr", "1\u{202f}234,56\u{a0}€");
        check(-123456, "EUR", "fr", "-1\u{202f}234,56\u{a0}€");
        check(999, "EUR", "fr", "9,99\u{a0}€");
        check(123456, "USD", "fr", "1\u{202f}234,56\u{a0}$US");
        // CLDR: French in Canada groups with a no-break space, in France a narrow one.
        check(123456, "CAD", "fr-CA", "1\u{a0}234,56\u{a0}$");
        check(1250, "JPY", "fr", "1\u{202f}250\u{a0}JPY");
        check(123456, "EUR", "de-DE", "1.234,56\u{a0}€");
        check(123456789, "EUR", "de", "1.234.567,89\u{a0}€");
        check(1250, "KWD", "de", "1,250\u{a0}KWD");
        check(123456, "EUR", "es-ES", "1234,56\u{a0}€");
        check(1234567, "EUR", "es", "12.345,67\u{a0}€");
        check(123456789, "EUR", "es", "1.234.567,89\u{a0}€");
        check(123456, "USD", "es-AR", "1.234,56\u{a0}US$"); // CLDR: es-AR groups from four digits
        check(123456, "MXN", "es-MX", "$1,234.56");
        check(123456, "USD", "es-MX", "USD\u{a0}1,234.56");
        check(123456, "BRL", "pt-BR", "R$\u{a0}1.234,56");
        check(53, "BRL", "pt-BR", "R$\u{a0}0,53");
        check(123456, "EUR", "pt-PT", "1234,56\u{a0}€");
        check(123456, "CHF", "de-CH", "CHF\u{a0}1'234.56");
        check(123456, "USD", "ja-JP", "1,234.56 USD");
        check(i64::MIN, "USD", "en-US", "-$92,233,720,368,547,758.08");
    }

    proptest! {
        #[test]
        fn half_up_is_within_half_a_unit(n in 0i128..1_000_000_000_000, d in 1i128..1_000_000_000) {
            let r = Rounding::HalfUp.divide(n, d);
            // |r - n/d| <= 1/2  <=>  |2rd - 2n| <= d
            prop_assert!((2 * r * d - 2 * n).abs() <= d);
            prop_assert!(r >= 0);
        }

        #[test]
        fn rounding_is_monotonic(n in 0i128..1_000_000_000, d in 1i128..1_000_000) {
            for mode in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Down] {
                prop_assert!(mode.divide(n, d) <= mode.divide(n + 1, d));
            }
        }

        #[test]
        fn locale_formatting_reads_back_exactly(
            minor in any::<i64>(),
            code in prop::sample::select(vec!["USD", "EUR", "GBP", "JPY", "BHD", "CAD", "CHF", "MXN"]),
            locale in prop::sample::select(
                vec!["en-US", "en-CA", "fr-FR", "fr-CA", "de-DE", "de-CH", "es-ES", "es-MX", "pt-BR", "it"],
            ),
        ) {
            let currency = Currency::parse(code).unwrap();
            let text = format_for_locale(Money::new(minor, currency), &Locale::parse(locale).unwrap());
            // The digits, in order, are the minor units; the sign is the only `-`.
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            let sign = if text.starts_with('-') { "-" } else { "" };
            let read_back = format!("{sign}{digits}").parse::<i128>().unwrap();
            prop_assert_eq!(read_back, i128::from(minor), "{}", text);
            prop_assert_eq!(text.matches('-').count(), usize::from(minor < 0));
            // Exactly `exponent` digits follow the decimal separator, and none when it is 0.
            let point = locale.starts_with("en") || matches!(locale, "es-MX" | "de-CH" | "it");
            let decimal = if point { '.' } else { ',' };
            let places = text
                .rsplit_once(decimal)
                .map_or(0, |(_, frac)| frac.chars().filter(char::is_ascii_digit).count());
            prop_assert_eq!(places, usize::from(currency.exponent()), "{}", text);
        }
    }
}
