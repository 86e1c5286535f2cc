//! Exact amounts. Every intermediate value is a ratio of two integers, in minor units, so
//! "1/30 of 79.99" or "10% of 30.00" is held exactly and rounded once, when its line is
//! complete. Nothing here touches binary floating point.

use crate::money::{Money, format_minor, format_quotient};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// An exact rational number: `num / den`, `den > 0`, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: i128,
    den: i128,
}

/// Arithmetic left the i128 range: only a policy or facts far outside any real scheme get here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an amount is too large to compute exactly")]
pub struct Overflow;

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    pub fn int(n: i128) -> Ratio {
        Ratio { num: n, den: 1 }
    }

    /// `None` when `den` is 0.
    pub fn new(num: i128, den: i128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Ratio { num: sign * num / g, den: sign * den / g })
    }

    pub fn num(self) -> i128 {
        self.num
    }

    pub fn den(self) -> i128 {
        self.den
    }

    pub fn times(self, o: Ratio) -> Result<Ratio, Overflow> {
        let num = self.num.checked_mul(o.num).ok_or(Overflow)?;
        let den = self.den.checked_mul(o.den).ok_or(Overflow)?;
        Ratio::new(num, den).ok_or(Overflow)
    }

    pub fn mul_int(self, n: i128) -> Result<Ratio, Overflow> {
        self.times(Ratio::int(n))
    }

    pub fn plus(self, o: Ratio) -> Result<Ratio, Overflow> {
        let a = self.num.checked_mul(o.den).ok_or(Overflow)?;
        let b = o.num.checked_mul(self.den).ok_or(Overflow)?;
        let den = self.den.checked_mul(o.den).ok_or(Overflow)?;
        Ratio::new(a.checked_add(b).ok_or(Overflow)?, den).ok_or(Overflow)
    }

    pub fn compare(self, o: Ratio) -> Result<Ordering, Overflow> {
        let a = self.num.checked_mul(o.den).ok_or(Overflow)?;
        let b = o.num.checked_mul(self.den).ok_or(Overflow)?;
        Ok(a.cmp(&b))
    }

    /// A decimal such as `10`, `12.5` or `0.1`, exactly. At most 9 decimal places.
    pub fn parse_decimal(s: &str) -> Option<Ratio> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |d: &str| !d.is_empty() && d.len() <= 12 && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!frac.is_empty() && (!digits(frac) || frac.len() > 9)) || s.ends_with('.') {
            return None;
        }
        let scale = 10i128.pow(frac.len() as u32);
        let num =
            whole.parse::<i128>().ok()? * scale + if frac.is_empty() { 0 } else { frac.parse().ok()? };
        Ratio::new(num, scale)
    }

    /// `a/b` with positive integers, such as `1/30`.
    pub fn parse_fraction(s: &str) -> Option<Ratio> {
        let (a, b) = s.split_once('/')?;
        let parse = |d: &str| -> Option<i128> {
            let d = d.trim();
            (!d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit()))
                .then(|| d.parse().ok())?
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if b == 0 { None } else { Ratio::new(a, b) }
    }

    /// Minor units as major units with up to 4 more decimals than the currency, for
    /// explanations: `0.9999`, `2.6663...`.
    pub fn show(self, exponent: u8) -> String {
        if self.num < 0 {
            return format!("-{}", Ratio { num: -self.num, den: self.den }.show(exponent));
        }
        format_quotient(self.num, self.den, exponent, 4)
    }
}

/// An amount as written in a policy file: an inline table with exactly one key.
///
/// ```toml
/// amount = { minor = 9500 }                    # 95.00 in the policy's currency
/// amount = { rate = "repair" }                 # from the rate table in force
/// amount = { price_percent = "10" }            # of the monthly price in force
/// amount = { price_fraction = "1/30" }
/// amount = { days_of_service = 3 }             # price x 3 / days in the billing cycle
/// amount = { max = [{ minor = 500 }, { price_percent = "10" }] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AmountSpec {
    Minor(i64),
    Rate(String),
    PricePercent(String),
    PriceFraction(String),
    DaysOfService(u32),
    Max(Vec<AmountSpec>),
    Min(Vec<AmountSpec>),
}

/// Bounds on what one amount may say, so a typo cannot pay out a fortune or nest forever.
pub const AMOUNT_MINOR_MAX: i64 = 100_000_000;
pub const AMOUNT_DEPTH_MAX: usize = 4;
pub const DAYS_OF_SERVICE_MAX: u32 = 366;

/// An amount checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amount {
    Minor(i64),
    Rate(String),
    PricePercent { percent: Ratio, text: String },
    PriceFraction { fraction: Ratio, text: String },
    DaysOfService(u32),
    Max(Vec<Amount>),
    Min(Vec<Amount>),
}

impl Amount {
    /// Checks a spec; `rate_known` says whether a rate name exists in the policy.
    pub fn check(spec: &AmountSpec, rate_known: &dyn Fn(&str) -> bool) -> Result<Amount, String> {
        Amount::check_at(spec, rate_known, 1)
    }

    fn check_at(
        spec: &AmountSpec,
        rate_known: &dyn Fn(&str) -> bool,
        depth: usize,
    ) -> Result<Amount, String> {
        if depth > AMOUNT_DEPTH_MAX {
            return Err(format!("amounts nest more than {AMOUNT_DEPTH_MAX} deep"));
        }
        Ok(match spec {
            AmountSpec::Minor(m) if (0..=AMOUNT_MINOR_MAX).contains(m) => Amount::Minor(*m),
            AmountSpec::Minor(m) => return Err(format!("minor = {m} is outside 0..={AMOUNT_MINOR_MAX}")),
            AmountSpec::Rate(name) if rate_known(name) => Amount::Rate(name.clone()),
            AmountSpec::Rate(name) => return Err(format!("rate {name:?} is not defined in [[rates]]")),
            AmountSpec::PricePercent(text) => match Ratio::parse_decimal(text) {
                Some(p) if p.compare(Ratio::int(1000)) != Ok(Ordering::Greater) => {
                    Amount::PricePercent { percent: p, text: text.clone() }
                }
                _ => return Err(format!("price_percent {text:?} is not a decimal between 0 and 1000")),
            },
            AmountSpec::PriceFraction(text) => match Ratio::parse_fraction(text) {
                Some(f) if f.compare(Ratio::int(10)) != Ok(Ordering::Greater) => {
                    Amount::PriceFraction { fraction: f, text: text.clone() }
                }
                _ => {
                    return Err(format!(
                        "price_fraction {text:?} is not a fraction like \"1/30\" of at most 10"
                    ));
                }
            },
            AmountSpec::DaysOfService(d) if (1..=DAYS_OF_SERVICE_MAX).contains(d) => {
                Amount::DaysOfService(*d)
            }
            AmountSpec::DaysOfService(d) => {
                return Err(format!("days_of_service = {d} is outside 1..={DAYS_OF_SERVICE_MAX}"));
            }
            AmountSpec::Max(items) | AmountSpec::Min(items) => {
                if !(2..=8).contains(&items.len()) {
                    return Err("max and min take 2 to 8 amounts".into());
                }
                let items = items
                    .iter()
                    .map(|i| Amount::check_at(i, rate_known, depth + 1))
                    .collect::<Result<_, _>>()?;
                if matches!(spec, AmountSpec::Max(_)) { Amount::Max(items) } else { Amount::Min(items) }
            }
        })
    }

    /// Every rate name this amount reads.
    pub fn rates<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Amount::Rate(name) => out.push(name),
            Amount::Max(items) | Amount::Min(items) => items.iter().for_each(|i| i.rates(out)),
            _ => {}
        }
    }

    /// The exact value and how it was reached, in words.
    pub fn value(&self, inputs: &AmountInputs<'_>) -> Result<Valued, AmountError> {
        let exp = inputs.price.currency.exponent();
        let price = Ratio::int(i128::from(inputs.price.minor));
        Ok(match self {
            Amount::Minor(m) => Valued::plain(Ratio::int(i128::from(*m)), format_minor(*m, exp)),
            Amount::Rate(name) => {
                let minor = (inputs.rate)(name)?;
                Valued::plain(Ratio::int(i128::from(minor)), format_minor(minor, exp))
            }
            Amount::PricePercent { percent, text } => {
                let v = price.times(*percent)?.times(Ratio::new(1, 100).ok_or(Overflow)?)?;
                Valued::worked(v, format!("{text}% of {}", inputs.price.amount_text()), exp)
            }
            Amount::PriceFraction { fraction, text } => {
                let v = price.times(*fraction)?;
                Valued::worked(v, format!("{text} of {}", inputs.price.amount_text()), exp)
            }
            Amount::DaysOfService(days) => {
                let v = price
                    .mul_int(i128::from(*days))?
                    .times(Ratio::new(1, inputs.cycle_days).ok_or(Overflow)?)?;
                let unit = if *days == 1 { "day" } else { "days" };
                let how = format!(
                    "{days} {unit} of service at {} / {} days",
                    inputs.price.amount_text(),
                    inputs.cycle_days
                );
                Valued::worked(v, how, exp)
            }
            Amount::Max(items) | Amount::Min(items) => {
                let want = if matches!(self, Amount::Max(_)) { Ordering::Greater } else { Ordering::Less };
                let mut best: Option<Valued> = None;
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    let v = item.value(inputs)?;
                    parts.push(v.factor());
                    best = match best {
                        Some(b) if v.value.compare(b.value)? != want => Some(b),
                        _ => Some(v),
                    };
                }
                let best = best.expect("max and min hold at least two amounts");
                let word = if want == Ordering::Greater { "the larger" } else { "the smaller" };
                let text = format!("{word} of {} = {}", parts.join(" and "), best.value.show(exp));
                Valued { value: best.value, text }
            }
        })
    }
}

/// An exact value and its derivation (`10% of 30.00 = 3.00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valued {
    pub value: Ratio,
    pub text: String,
}

impl Valued {
    /// The value as a factor of a product: its derivation in parentheses when it has one
    /// (`(1/30 of 79.99 USD = 2.666333...)`), so no figure reads as the product's result.
    pub fn factor(&self) -> String {
        if self.text.contains(" = ") { format!("({})", self.text) } else { self.text.clone() }
    }

    fn plain(value: Ratio, text: String) -> Valued {
        Valued { value, text }
    }

    fn worked(value: Ratio, how: String, exponent: u8) -> Valued {
        Valued { text: format!("{how} = {}", value.show(exponent)), value }
    }
}

/// What an amount may read: the monthly price in force, the rates in force, and the
/// number of calendar days in the billing cycle it lands in.
pub struct AmountInputs<'a> {
    pub price: Money,
    pub cycle_days: i128,
    pub rate: &'a dyn Fn(&str) -> Result<i64, AmountError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error(transparent)]
    Overflow(#[from] Overflow),
    #[error("{0}")]
    NoRate(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn inputs(price: i64) -> impl Fn(&Amount) -> Valued {
        move |a: &Amount| {
            let rate =
                |name: &str| if name == "repair" { Ok(998) } else { Err(AmountError::NoRate(name.into())) };
            let i = AmountInputs {
                price: Money::new(price, Currency::parse("EUR").unwrap()),
                cycle_days: 31,
                rate: &rate,
            };
            a.value(&i).unwrap()
        }
    }

    fn check(spec: AmountSpec) -> Amount {
        Amount::check(&spec, &|n| n == "repair").unwrap()
    }

    #[test]
    fn decimals_and_fractions_are_exact() {
        assert_eq!(Ratio::parse_decimal("12.5"), Ratio::new(25, 2));
        assert_eq!(Ratio::parse_decimal("0.1"), Ratio::new(1, 10));
        assert_eq!(Ratio::parse_decimal("1."), None);
        assert_eq!(Ratio::parse_decimal("-1"), None);
        assert_eq!(Ratio::parse_decimal("1e3"), None);
        assert_eq!(Ratio::parse_fraction("1/30"), Ratio::new(1, 30));
        assert_eq!(Ratio::parse_fraction("1/0"), None);
        assert_eq!(Ratio::new(2, -4), Ratio::new(-1, 2));
    }

    #[test]
    fn max_of_fixed_and_percentage() {
        let v = inputs(3000);
        let a = check(AmountSpec::Max(vec![AmountSpec::Minor(500), AmountSpec::PricePercent("10".into())]));
        let got = v(&a);
        assert_eq!(got.value, Ratio::int(500));
        assert_eq!(got.text, "the larger of 5.00 and (10% of 30.00 = 3.00) = 5.00");
        let got = inputs(8000)(&a);
        assert_eq!(got.value, Ratio::int(800));
    }

    #[test]
    fn fraction_of_price_is_kept_exact() {
        let got = inputs(7999)(&check(AmountSpec::PriceFraction("1/30".into())));
        assert_eq!(got.value, Ratio::new(7999, 30).unwrap());
        assert_eq!(got.text, "1/30 of 79.99 = 2.666333...");
    }

    #[test]
    fn days_of_service_use_the_cycle_length() {
        let got = inputs(3000)(&check(AmountSpec::DaysOfService(3)));
        assert_eq!(got.value, Ratio::new(9000, 31).unwrap());
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let refuse = |s: AmountSpec| Amount::check(&s, &|_| false).unwrap_err();
        assert!(refuse(AmountSpec::Rate("repair".into())).contains("not defined"));
        assert!(refuse(AmountSpec::PricePercent("ten".into())).contains("not a decimal"));
        assert!(refuse(AmountSpec::Minor(-1)).contains("outside"));
        assert!(refuse(AmountSpec::Max(vec![AmountSpec::Minor(1)])).contains("2 to 8"));
        let mut deep = AmountSpec::Minor(1);
        for _ in 0..5 {
            deep = AmountSpec::Max(vec![deep, AmountSpec::Minor(2)]);
        }
        assert!(refuse(deep).contains("nest"));
    }
}
