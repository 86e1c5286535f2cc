//! The customer's version of a credit's explanation: short, in their language, with
//! amounts and numbers written their locale's way and no UTC. The auditor's version (exact
//! arithmetic, every instant in UTC, the policy's own words) stays in the ledger; this one
//! is written from the numbers each line keeps ([`Basis`]), so a notice rendered again
//! after a crash, from the ledger alone, says the same.
//!
//! English: "285 of the 43,200 minutes of your billing period without service, at $79.99 a
//! month: $0.53." Spanish: "285 de los 43.200 minutos de su periodo de facturación sin
//! servicio, a 79,99 € al mes: 0,53 €."

use crate::book::Locale;
use crate::cldr;
use crate::money::{Currency, Money, format_for_locale};
use crate::policy::Basis;
use serde::Deserialize;

/// One credited line as the ledger keeps it (`lines_json`): its amount, whether it was
/// paid without a claim, and its numbers. Lines written before bases were kept read with
/// an empty basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CreditedLine {
    pub amount_minor: i64,
    pub automatic: bool,
    #[serde(default)]
    pub basis: Basis,
}

impl CreditedLine {
    /// The lines of a ledger row's `lines_json`; none when it cannot be read (a row from
    /// before lines were kept says only its amount).
    pub fn parse_all(lines_json: &str) -> Vec<CreditedLine> {
        serde_json::from_str(lines_json).unwrap_or_default()
    }
}

/// The words of one language.
struct Words {
    /// `{used}`, `{total}`, `{unit}`, `{price}`, `{amount}`.
    prorated: &'static str,
    /// `{duration}`, `{amount}`.
    outage: &'static str,
    /// `{total}`: what is left after earlier credits and the terms' limits.
    adjusted: &'static str,
    minutes: &'static str,
    seconds: &'static str,
    day: &'static str,
    days: &'static str,
}

const EN: Words = Words {
    prorated: "{used} of the {total} {unit} of your billing period without service, at {price} a month: {amount}.",
    outage: "{duration} without service: {amount}.",
    adjusted: "After what earlier credits already paid and the limits of your terms: {total}.",
    minutes: "minutes",
    seconds: "seconds",
    day: "day",
    days: "days",
};

const ES: Words = Words {
    prorated: "{used} de los {total} {unit} de su periodo de facturación sin servicio, a {price} al mes: {amount}.",
    outage: "{duration} sin servicio: {amount}.",
    adjusted: "Descontado lo que ya le abonamos antes y los límites de sus condiciones: {total}.",
    minutes: "minutos",
    seconds: "segundos",
    day: "día",
    days: "días",
};

const FR: Words = Words {
    prorated: "{used} des {total} {unit} de votre période de facturation sans service, à {price} par mois\u{a0}: {amount}.",
    outage: "{duration} sans service\u{a0}: {amount}.",
    adjusted: "Après déduction des crédits déjà versés et des limites de vos conditions\u{a0}: {total}.",
    minutes: "minutes",
    seconds: "secondes",
    day: "jour",
    days: "jours",
};

const DE: Words = Words {
    prorated: "{used} von {total} {unit} Ihres Abrechnungszeitraums ohne Dienst, bei {price} im Monat: {amount}.",
    outage: "{duration} ohne Dienst: {amount}.",
    adjusted: "Abzüglich früherer Gutschriften und nach den Grenzen Ihrer Bedingungen: {total}.",
    minutes: "Minuten",
    seconds: "Sekunden",
    day: "Tag",
    days: "Tage",
};

const PT: Words = Words {
    prorated: "{used} dos {total} {unit} do seu período de cobrança sem serviço, a {price} por mês: {amount}.",
    outage: "{duration} sem serviço: {amount}.",
    adjusted: "Descontado o que já creditamos antes e os limites das suas condições: {total}.",
    minutes: "minutos",
    seconds: "segundos",
    day: "dia",
    days: "dias",
};

fn words(locale: &Locale) -> &'static Words {
    match locale.language() {
        "es" => &ES,
        "fr" => &FR,
        "de" => &DE,
        "pt" => &PT,
        _ => &EN,
    }
}

fn fill(pattern: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(pattern.to_string(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
}

/// How a customer reads why they were credited `total_minor`: one sentence per automatic
/// line that has numbers to tell, then the total when earlier credits or caps changed it.
/// `None` when no line has anything to tell beyond the amount the notice already states.
pub fn customer_explanation(
    lines: &[CreditedLine],
    total_minor: i64,
    currency: Currency,
    locale: &Locale,
) -> Option<String> {
    let w = words(locale);
    let money = |minor: i64| format_for_locale(Money::new(minor, currency), locale);
    let number = |n: i64| cldr::decimal(n.unsigned_abs(), 0, locale);
    let paid: Vec<&CreditedLine> = lines.iter().filter(|l| l.automatic && l.amount_minor > 0).collect();
    let mut sentences = Vec::new();
    for line in &paid {
        let amount = money(line.amount_minor);
        match (line.basis.prorated, line.basis.seconds_out) {
            (Some(p), Some(out)) => {
                let whole_minutes = out % 60 == 0 && p.cycle_seconds % 60 == 0;
                let (used, total, unit) = if whole_minutes {
                    (number(out / 60), number(p.cycle_seconds / 60), w.minutes)
                } else {
                    (number(out), number(p.cycle_seconds), w.seconds)
                };
                let price = money(p.price_minor);
                sentences.push(fill(
                    w.prorated,
                    &[
                        ("used", &used),
                        ("total", &total),
                        ("unit", unit),
                        ("price", &price),
                        ("amount", &amount),
                    ],
                ));
            }
            (None, Some(out)) => {
                let duration = duration(out, w);
                sentences.push(fill(w.outage, &[("duration", &duration), ("amount", &amount)]));
            }
            _ => {}
        }
    }
    let lines_total: i64 = paid.iter().map(|l| l.amount_minor).sum();
    if !sentences.is_empty() && lines_total != total_minor {
        sentences.push(fill(w.adjusted, &[("total", &money(total_minor))]));
    }
    (!sentences.is_empty()).then(|| sentences.join(" "))
}

/// A stretch of time as a customer says it: "4 h 45 min", "2 days 3 h", "40 s".
fn duration(seconds: i64, w: &Words) -> String {
    if seconds < 60 {
        return format!("{} s", seconds.max(0));
    }
    let minutes = seconds / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} {}", if days == 1 { w.day } else { w.days }));
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes} min"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ProratedBasis;

    fn prorated(amount_minor: i64, seconds: i64) -> CreditedLine {
        CreditedLine {
            amount_minor,
            automatic: true,
            basis: Basis {
                seconds_out: Some(seconds),
                prorated: Some(ProratedBasis { price_minor: 7999, cycle_seconds: 30 * 86_400 }),
            },
        }
    }

    fn explain(lines: &[CreditedLine], total: i64, tag: &str) -> Option<String> {
        let currency = Currency::parse(if tag.starts_with("en-US") { "USD" } else { "EUR" }).unwrap();
        customer_explanation(lines, total, currency, &Locale::parse(tag).unwrap())
    }

    #[test]
    fn a_prorated_credit_reads_in_the_customers_language_and_numbers() {
        let line = [prorated(53, 285 * 60)];
        assert_eq!(
            explain(&line, 53, "en-US").unwrap(),
            "285 of the 43,200 minutes of your billing period without service, at $79.99 a month: $0.53."
        );
        let es = explain(&line, 53, "es-ES").unwrap();
        assert!(es.starts_with("285 de los 43.200 minutos de su periodo de facturación"), "{es}");
        assert!(es.ends_with("a 79,99\u{a0}€ al mes: 0,53\u{a0}€."), "{es}");
        assert!(!es.contains("UTC") && !es.contains("rounded"), "{es}");
        let fr = explain(&line, 53, "fr-FR").unwrap();
        assert!(fr.contains("des 43\u{202f}200 minutes de votre période"), "{fr}");
    }

    #[test]
    fn other_outage_lines_say_how_long_the_service_was_out() {
        let line = CreditedLine {
            amount_minor: 2500,
            automatic: true,
            basis: Basis { seconds_out: Some(4 * 86_400 + 3 * 3600 + 60), prorated: None },
        };
        assert_eq!(explain(&[line], 2500, "es-ES").unwrap(), "4 días 3 h 1 min sin servicio: 25,00\u{a0}€.");
        assert_eq!(explain(&[line], 2500, "en-US").unwrap(), "4 days 3 h 1 min without service: $25.00.");
    }

    #[test]
    fn a_total_changed_by_earlier_credits_is_said() {
        let text = explain(&[prorated(53, 285 * 60)], 20, "en-US").unwrap();
        assert!(
            text.ends_with("After what earlier credits already paid and the limits of your terms: $0.20."),
            "{text}"
        );
    }

    #[test]
    fn lines_with_nothing_to_tell_give_no_explanation() {
        let visit = CreditedLine { amount_minor: 3231, automatic: true, basis: Basis::default() };
        assert_eq!(explain(&[visit], 3231, "en-US"), None);
        let on_request = CreditedLine { automatic: false, ..prorated(53, 285 * 60) };
        assert_eq!(explain(&[on_request], 0, "en-US"), None);
    }

    #[test]
    fn ledger_lines_are_read_back_with_or_without_a_basis() {
        let lines = CreditedLine::parse_all(
            r#"[{"rule":"r","events":["INC-1"],"amount_minor":53,"automatic":true,"explanation":"x",
                "basis":{"seconds_out":17100,"prorated":{"price_minor":7999,"cycle_seconds":2592000}}},
               {"rule":"r","events":["INC-1"],"amount_minor":7,"automatic":true,"explanation":"old"}]"#,
        );
        assert_eq!(
            lines,
            vec![
                prorated(53, 17_100),
                CreditedLine { amount_minor: 7, automatic: true, basis: Basis::default() }
            ]
        );
        assert!(CreditedLine::parse_all("not json").is_empty());
    }
}
