//! Money in integer minor units with an ISO 4217 currency, and exact rounding.
//!
//! Amounts are `i64` minor units; intermediate products use `i128` so that
//! `price x seconds` never overflows. Never binary floating point.

use std::fmt;

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
    }
}
