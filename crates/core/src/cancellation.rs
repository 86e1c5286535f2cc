//! Cancellation, as easy as joining: one request, an optional reason, at most one offer
//! that never blocks, an immediate confirmation with a reference and the final bill, and a
//! record of every step.
//!
//! Everything here is a pure function of what the caller passes in. The app reads
//! [`CancellationRules`] from settings (`[cancellation]`), and for one cancellation request
//! calls [`cancel`] with the customer's status, plan price, billing day, time zone, the
//! request's instant, the credits in the ledger not yet on a bill, a sequence number for
//! the reference, and whether the retention offer was ever shown to this customer
//! ([`offer_shown_before`] over their audit). It gets back everything to write and to
//! show, in one go: the [`Reason`] (or none: skipped), the offer to show (or none), the
//! [`FinalBill`], the reference and the [`AuditStep`]s. The app writes the status change
//! and the audit steps in one transaction and answers with the confirmation.
//!
//! **Bad input changes nothing.** Every check (an account already cancelled, an unknown
//! reason, free text with a reason other than `other`, a billing day out of range) runs
//! before anything is built, and a refusal is an error naming the field and the value: the
//! app writes nothing on an error, so a refused request leaves the account as it was.
//!
//! **Never blocking.** The offer is shown with the confirmation, not instead of it: the
//! cancellation is confirmed in the same response whether or not there is an offer. There
//! is at most one offer in the rules (`retention_offer` is one table, not a list), and a
//! customer sees it at most once, ever ([`retention_offer_to_show`]).
//!
//! **The final bill.** The current billing cycle (in the customer's zone, see
//! [`crate::cycle`]) is prorated by elapsed seconds: refunded for its unused part when it
//! was billed in advance, charged for its used part when it is billed in arrears. Each line
//! is an exact quotient of integers rounded once ([`ROUNDING`]) and explains its own
//! arithmetic, as the policy engine's lines do. No binary floating point anywhere.
//!
//! **Steps.** "Steps the customer took" are the requests they made: one for a
//! cancellation in one request ([`customer_steps`]), reported next to the steps to sign up
//! ([`Ease`]). The audit steps the system records for that request (requested, reason,
//! offer, bill, confirmation) are a different thing: they are what an auditor reads, not
//! effort the customer spent.

use crate::book::{CustomerStatus, FieldError, Locale, Zone, parse_id};
use crate::cycle::{BillingCycle, cycle_containing};
use crate::incident::{ByLocale, for_locale};
use crate::money::{Currency, Money, Rounding, format_quotient, group_thousands};
use crate::policy::amount::Overflow;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most reasons a cancellation may offer: one question the customer reads at a glance.
pub const REASONS_MAX: usize = 16;
/// Longest reason or offer id, in bytes (ids are ASCII).
pub const ID_BYTES_MAX: usize = 32;
/// Longest free text with the reason `other`, in characters: a few sentences. Longer is
/// a letter, which belongs to a case, not to a cancellation form.
pub const REASON_TEXT_CHARS_MAX: usize = 500;
/// Most locales an offer's text may come in.
pub const OFFER_LOCALES_MAX: usize = 32;
/// Longest offer text in one locale, in characters: an offer, not a sales page.
pub const OFFER_TEXT_CHARS_MAX: usize = 500;
/// The reason that takes free text.
pub const OTHER: &str = "other";
/// Every cancellation reference starts with this.
pub const REFERENCE_PREFIX: &str = "CXL-";
/// The one rounding of a final bill: each prorated line is its exact quotient rounded once,
/// half up, on the amount before its sign. A refund and a charge of the same fraction of a
/// price are then the same number of minor units, and the unused refund and the used
/// charge at one instant add up to the price, or one minor unit more when both are exact
/// halves.
pub const ROUNDING: Rounding = Rounding::HalfUp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancellationError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("{field}: {problem}")]
    Rule { field: String, problem: String },
    #[error("reason: {value:?} is not a reason offered ({allowed})")]
    UnknownReason { value: String, allowed: String },
    #[error("reason_text: free text goes only with the reason \"other\", not {reason}")]
    TextWithoutOther { reason: String },
    #[error("reason_text: {chars} characters, more than {REASON_TEXT_CHARS_MAX}")]
    TextTooLong { chars: usize },
    #[error("reason_text: holds control characters other than line breaks and tabs")]
    TextControl,
    #[error("customer {customer_id}: the account is already cancelled")]
    AlreadyCancelled { customer_id: String },
    #[error("billing_day: {value} is outside 1 to 28")]
    BillingDay { value: u8 },
    #[error("{field}: {value} is negative")]
    Negative { field: &'static str, value: i64 },
    #[error("billing cycle: {0}")]
    Calendar(String),
    #[error(transparent)]
    Overflow(#[from] Overflow),
    #[error("{field}: {value:?} is not a cancellation reference (like CXL-8735-4903)")]
    BadReference { field: &'static str, value: String },
}

/// When a cancellation takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effective {
    /// At the request: service stops and the cycle is prorated at that instant.
    #[default]
    Immediately,
    /// At the end of the current billing cycle: the customer keeps what they paid for.
    EndOfCycle,
}

/// When a billing cycle is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// At the cycle's start (the usual subscription): cancelling mid-cycle refunds the
    /// unused part.
    #[default]
    InAdvance,
    /// At the cycle's end (metered utilities): cancelling mid-cycle charges the used part.
    InArrears,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::InAdvance => "in advance",
            Billing::InArrears => "in arrears",
        }
    }
}

impl fmt::Display for Billing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one retention offer: an id the audit records, and its text per locale tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOffer {
    pub id: String,
    /// Keyed by locale tag (`en`, `fr-CA`); read with [`retention_offer_to_show`].
    pub text: ByLocale,
}

/// How cancellations work. Read from settings (`[cancellation]`), checked once by
/// [`CancellationRules::check`].
///
/// ```toml
/// [cancellation]
/// effective = "immediately"            # or "end_of_cycle"
/// billing = "in_advance"               # or "in_arrears"
/// reasons = ["too_expensive", "moving", "other"]
///
/// [cancellation.retention_offer]
/// id = "half_price_3_months"
/// text = { en = "Stay and pay half price for 3 months.", fr = "Restez..." }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CancellationRules {
    pub effective: Effective,
    pub billing: Billing,
    /// The reason ids the one optional question offers, in the order shown. Empty: the
    /// question is not asked.
    pub reasons: Vec<String>,
    /// `None`: no offer. Never more than one.
    pub retention_offer: Option<RetentionOffer>,
}

impl Default for CancellationRules {
    /// Immediately, billed in advance, the common reasons and `other`, no offer: a provider
    /// that configures nothing still lets customers leave in one request.
    fn default() -> Self {
        CancellationRules {
            effective: Effective::Immediately,
            billing: Billing::InAdvance,
            reasons: [
                "too_expensive",
                "service_quality",
                "outages",
                "moving",
                "switching_provider",
                "no_longer_needed",
                OTHER,
            ]
            .map(String::from)
            .to_vec(),
            retention_offer: None,
        }
    }
}

/// An id: 1 to [`ID_BYTES_MAX`] bytes of `a-z`, `0-9` and `_`, starting with a letter.
fn id_problem(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= ID_BYTES_MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    (!ok).then(|| {
        format!(
            "{s:?} is not an id: 1 to {ID_BYTES_MAX} of a-z, 0-9 and _, starting with a letter (like too_expensive)"
        )
    })
}

impl CancellationRules {
    /// The first bad field, by name and value: a reason id that is not an id, repeated, or
    /// more than [`REASONS_MAX`] reasons; an offer with a bad id, no text, a bad locale tag,
    /// an empty or too long text, or more than [`OFFER_LOCALES_MAX`] locales.
    pub fn check(&self) -> Result<(), CancellationError> {
        let bad = |field: String, problem: String| Err(CancellationError::Rule { field, problem });
        if self.reasons.len() > REASONS_MAX {
            return bad("reasons".into(), format!("{} reasons, more than {REASONS_MAX}", self.reasons.len()));
        }
        for (i, id) in self.reasons.iter().enumerate() {
            if let Some(problem) = id_problem(id) {
                return bad(format!("reasons[{i}]"), problem);
            }
            if self.reasons[..i].contains(id) {
                return bad(format!("reasons[{i}]"), format!("{id:?} is listed twice"));
            }
        }
        let Some(offer) = &self.retention_offer else { return Ok(()) };
        if let Some(problem) = id_problem(&offer.id) {
            return bad("retention_offer.id".into(), problem);
        }
        if offer.text.is_empty() {
            return bad("retention_offer.text".into(), "gives no text; give at least one locale".into());
        }
        if offer.text.len() > OFFER_LOCALES_MAX {
            return bad(
                "retention_offer.text".into(),
                format!("{} locales, more than {OFFER_LOCALES_MAX}", offer.text.len()),
            );
        }
        for (locale, text) in &offer.text {
            let field = format!("retention_offer.text.{locale}");
            if let Err(e) = Locale::parse(locale) {
                return bad(field, format!("not a locale tag ({e})"));
            }
            if text.trim().is_empty() {
                return bad(field, "is empty".into());
            }
            let chars = text.chars().count();
            if chars > OFFER_TEXT_CHARS_MAX {
                return bad(field, format!("{chars} characters, more than {OFFER_TEXT_CHARS_MAX}"));
            }
        }
        Ok(())
    }
}

/// The answer to the one optional reason question. `None` where a `Reason` is optional:
/// skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// One of the rules' `reasons`.
    pub id: String,
    /// Only with [`OTHER`]: the customer's words, trimmed, at most
    /// [`REASON_TEXT_CHARS_MAX`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Reason {
    /// The answer as a form sends it: `id` from the choice and `text` from the free-text
    /// box. An absent or empty `id` with no text is a skipped question (`Ok(None)`), as a
    /// blank text is no text. Refused, naming the field: an id not among `rules.reasons`
    /// (the error lists them), text with a reason other than `other` or with none, text
    /// longer than [`REASON_TEXT_CHARS_MAX`] characters or with control characters other
    /// than line breaks and tabs.
    pub fn parse(
        rules: &CancellationRules,
        id: Option<&str>,
        text: Option<&str>,
    ) -> Result<Option<Reason>, CancellationError> {
        let id = id.filter(|id| !id.is_empty());
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let Some(id) = id else {
            return match text {
                None => Ok(None),
                Some(_) => Err(CancellationError::TextWithoutOther { reason: "no reason".into() }),
            };
        };
        if !rules.reasons.iter().any(|r| r == id) {
            let allowed = if rules.reasons.is_empty() {
                "no reasons are offered".to_string()
            } else {
                format!("one of {}", rules.reasons.join(", "))
            };
            return Err(CancellationError::UnknownReason { value: id.chars().take(40).collect(), allowed });
        }
        let Some(text) = text else { return Ok(Some(Reason { id: id.to_string(), text: None })) };
        if id != OTHER {
            return Err(CancellationError::TextWithoutOther { reason: format!("{id:?}") });
        }
        let chars = text.chars().count();
        if chars > REASON_TEXT_CHARS_MAX {
            return Err(CancellationError::TextTooLong { chars });
        }
        if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(CancellationError::TextControl);
        }
        Ok(Some(Reason { id: id.to_string(), text: Some(text.to_string()) }))
    }
}

/// The offer to show with this confirmation, as `(id, text)`: `None` when no offer is
/// configured or this customer has seen it before (`already_shown`, from
/// [`offer_shown_before`]), so an offer is shown at most once, ever.
///
/// The text is the one for the customer's locale, else their language (as notices choose
/// templates), else English (the first `en` tag in sorted order: `en` before `en-GB`), else
/// the first locale in sorted order. Always the same text for the same rules and locale.
pub fn retention_offer_to_show<'r>(
    rules: &'r CancellationRules,
    already_shown: bool,
    locale: &Locale,
) -> Option<(&'r str, &'r str)> {
    if already_shown {
        return None;
    }
    let offer = rules.retention_offer.as_ref()?;
    let english = || offer.text.iter().find(|(tag, _)| tag.split('-').next() == Some("en"));
    let text = for_locale(&offer.text, locale)
        .or_else(|| english().map(|(_, t)| t.as_str()))
        .or_else(|| offer.text.values().next().map(String::as_str))?;
    Some((offer.id.as_str(), text))
}

/// Whether a customer's audit (every cancellation step recorded for them, in any order)
/// shows a retention offer: the `already_shown` of [`retention_offer_to_show`].
pub fn offer_shown_before(audit: &[AuditStep]) -> bool {
    audit.iter().any(|s| matches!(s.step, Step::RetentionOfferShown { .. }))
}

/// What a line of the final bill is, as a stable code for exports and templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineCode {
    /// The unused part of a cycle billed in advance, given back.
    UnusedRefund,
    /// The used part of a cycle billed in arrears.
    UsedCharge,
    /// Credits in the ledger not yet on a bill, taken off.
    Credits,
}

impl LineCode {
    pub fn as_str(self) -> &'static str {
        match self {
            LineCode::UnusedRefund => "unused_refund",
            LineCode::UsedCharge => "used_charge",
            LineCode::Credits => "credits",
        }
    }
}

/// One line of the final bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillLine {
    pub code: LineCode,
    /// Signed minor units: positive is charged to the customer, negative is owed to them.
    pub minor: i64,
    /// The arithmetic in plain English, with the amount as a positive figure: the
    /// auditor's version, exact, in UTC and seconds.
    pub explanation: String,
    /// The part of the cycle the line is for, in seconds (0 for credits): what the
    /// customer's version ([`customer_line`]) says in hours and days.
    pub seconds: i64,
}

/// The current cycle's bounds, as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CycleSpan {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The final bill as the confirmation shows it: what the cancellation refunds or charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalBill {
    /// When service stops: the request (to the second), or the cycle's end.
    pub effective_at: Timestamp,
    /// The billing cycle the request falls in.
    pub cycle: CycleSpan,
    pub lines: Vec<BillLine>,
    /// The sum of the lines: positive is due from the customer, negative is owed to them.
    pub total_minor: i64,
    #[serde(serialize_with = "currency_code")]
    pub currency: Currency,
    /// Why the cycle has no line, when it has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn currency_code<S: serde::Serializer>(c: &Currency, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.code())
}

/// What the final bill is computed from.
#[derive(Debug, Clone, Copy)]
pub struct BillInputs<'a> {
    /// The plan's price for one billing cycle.
    pub price: Money,
    /// 1 to 28, as [`crate::cycle`] requires.
    pub billing_day: u8,
    pub zone: &'a Zone,
    /// The request's instant, kept to the second (the fraction is dropped).
    pub requested_at: Timestamp,
    /// The credits already in the ledger and not yet on a bill, in the price's currency.
    /// 0 when there are none; never negative.
    pub unbilled_credits_minor: i64,
}

fn to_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// A local instant for an explanation: `2026-12-12 14:03 GMT`, with seconds when they are
/// not zero, and the zone's abbreviation so an hour that repeats in autumn is told apart.
fn local(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    let format = if z.second() == 0 { "%Y-%m-%d %H:%M %Z" } else { "%Y-%m-%d %H:%M:%S %Z" };
    z.strftime(format).to_string()
}

/// The final-bill preview of a cancellation requested at `inputs.requested_at`.
///
/// The request falls in one billing cycle, `[start, end)` in the customer's zone (at
/// `start` exactly it is the new cycle's first instant). Proration is by elapsed seconds
/// in UTC over the cycle's own length, so a cycle with a clock change is an hour shorter
/// or longer, as the customer lived it:
///
/// | effective      | in advance (billed at start)       | in arrears (billed at end)      |
/// |----------------|------------------------------------|---------------------------------|
/// | `immediately`  | refund `price x (end - t) / cycle` | charge `price x (t - start) / cycle` |
/// | `end_of_cycle` | nothing: the cycle is used in full | charge the whole cycle's price  |
///
/// A line appears only for a part of more than zero seconds (at the cycle's start, an
/// in-advance cycle is refunded in full and an in-arrears one has nothing to charge; the
/// bill's `notes` say why a cycle has no line). Credits not yet on a bill are one more
/// line, taken off. Each prorated line is rounded once, by [`ROUNDING`]; the total is the
/// exact sum of the lines.
pub fn final_bill(
    rules: &CancellationRules,
    inputs: &BillInputs<'_>,
) -> Result<FinalBill, CancellationError> {
    if !(1..=28).contains(&inputs.billing_day) {
        return Err(CancellationError::BillingDay { value: inputs.billing_day });
    }
    for (field, value) in
        [("price_minor", inputs.price.minor), ("unbilled_credits_minor", inputs.unbilled_credits_minor)]
    {
        if value < 0 {
            return Err(CancellationError::Negative { field, value });
        }
    }
    let tz = &inputs.zone.tz;
    let t = to_second(inputs.requested_at);
    let cycle = cycle_containing(t, inputs.billing_day, tz)
        .map_err(|e| CancellationError::Calendar(e.to_string()))?;
    let effective_at = match rules.effective {
        Effective::Immediately => t,
        Effective::EndOfCycle => cycle.end,
    };
    let proration =
        Proration { price: inputs.price, cycle: &cycle, zone: inputs.zone, billing: rules.billing };
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    match rules.billing {
        Billing::InAdvance if effective_at < cycle.end => {
            lines.push(proration.line(LineCode::UnusedRefund, effective_at, cycle.end)?);
        }
        Billing::InAdvance => notes.push(format!(
            "Service continues to the end of the billing cycle ({}); the cycle was billed in advance, \
             so nothing of it is refunded.",
            local(cycle.end, tz)
        )),
        Billing::InArrears if effective_at > cycle.start => {
            lines.push(proration.line(LineCode::UsedCharge, cycle.start, effective_at)?);
        }
        Billing::InArrears => notes.push(format!(
            "Cancelled at the start of the billing cycle ({}); the cycle is billed in arrears and none \
             of it was used, so nothing of it is charged.",
            local(cycle.start, tz)
        )),
    }
    if inputs.unbilled_credits_minor > 0 {
        let credits = Money::new(inputs.unbilled_credits_minor, inputs.price.currency);
        lines.push(BillLine {
            code: LineCode::Credits,
            minor: -credits.minor,
            explanation: format!("Credits in your account not yet on a bill: {credits}, taken off."),
            seconds: 0,
        });
    }
    let total_minor = lines.iter().try_fold(0i64, |sum, l| sum.checked_add(l.minor).ok_or(Overflow))?;
    Ok(FinalBill {
        effective_at,
        cycle: CycleSpan { start: cycle.start, end: cycle.end },
        lines,
        total_minor,
        currency: inputs.price.currency,
        notes,
    })
}

/// One cycle's proration, shared by the refund and the charge.
struct Proration<'a> {
    price: Money,
    cycle: &'a BillingCycle,
    zone: &'a Zone,
    billing: Billing,
}

impl Proration<'_> {
    /// The line for the part `[from, to)` of the cycle (never empty): refunded for
    /// [`LineCode::UnusedRefund`], charged otherwise.
    fn line(&self, code: LineCode, from: Timestamp, to: Timestamp) -> Result<BillLine, CancellationError> {
        let part = i128::from(to.as_second() - from.as_second());
        let whole = i128::from(self.cycle.seconds());
        let numerator = i128::from(self.price.minor).checked_mul(part).ok_or(Overflow)?;
        let amount = i64::try_from(ROUNDING.divide(numerator, whole)).map_err(|_| Overflow)?;
        let (what, minor) = match code {
            LineCode::UnusedRefund => ("Refund for the unused", -amount),
            _ => ("Charge for the used", amount),
        };
        let seconds = |n: i128| group_thousands(n.unsigned_abs().try_into().unwrap_or(u64::MAX));
        let explanation = format!(
            "{what} {} s of the {} s billing cycle ({} to {}, {}) of the {} monthly price, billed {}: \
             {} x {} / {} = {}, {} to {}.",
            seconds(part),
            seconds(whole),
            local(from, &self.zone.tz),
            local(to, &self.zone.tz),
            self.zone.name,
            self.price,
            self.billing,
            self.price,
            seconds(part),
            seconds(whole),
            format_quotient(numerator, whole, self.price.currency.exponent(), 4),
            ROUNDING.describe(),
            Money::new(amount, self.price.currency),
        );
        let seconds = i64::try_from(part).map_err(|_| Overflow)?;
        Ok(BillLine { code, minor, explanation, seconds })
    }
}

/// A line of the final bill as the customer reads it, in their language (`en`, `es`,
/// `fr`; English otherwise): what it is for, in hours or days rather than seconds, with
/// `amount` already written their locale's way. The exact arithmetic stays in the
/// ledger's explanation.
pub fn customer_line(code: LineCode, amount: &str, seconds: i64, language: &str) -> String {
    let time = spoken_duration(seconds, language);
    match (code, language) {
        (LineCode::UnusedRefund, "es") => {
            format!("Le devolveremos {amount} por {time} de servicio ya pagado que no usará.")
        }
        (LineCode::UnusedRefund, "fr") => {
            format!("Nous vous rembourserons {amount} pour {time} de service payé que vous n'utiliserez pas.")
        }
        (LineCode::UnusedRefund, "de") => {
            format!("Wir erstatten Ihnen {amount} für bezahlte, nicht genutzte Zeit: {time}.")
        }
        (LineCode::UnusedRefund, "pt") => {
            format!("Vamos devolver {amount} por {time} de serviço pago que você não vai usar.")
        }
        (LineCode::UnusedRefund, _) => {
            format!("We will refund {amount} for the {time} you paid for and will not use.")
        }
        (LineCode::UsedCharge, "es") => format!("{amount} por {time} de servicio usado en este ciclo."),
        (LineCode::UsedCharge, "fr") => format!("{amount} pour {time} de service utilisé ce cycle-ci."),
        (LineCode::UsedCharge, "de") => format!("{amount} für die in diesem Zeitraum genutzte Zeit: {time}."),
        (LineCode::UsedCharge, "pt") => format!("{amount} por {time} de serviço usado neste ciclo."),
        (LineCode::UsedCharge, _) => format!("{amount} for the {time} of service you used this cycle."),
        (LineCode::Credits, "es") => {
            format!("{amount} de abonos que aún no estaban en una factura, descontados.")
        }
        (LineCode::Credits, "fr") => format!("{amount} d'avoirs pas encore facturés, déduits."),
        (LineCode::Credits, "de") => {
            format!("{amount} an Gutschriften, die noch auf keiner Rechnung standen, abgezogen.")
        }
        (LineCode::Credits, "pt") => {
            format!("{amount} de créditos que ainda não estavam em uma fatura, descontados.")
        }
        (LineCode::Credits, _) => format!("{amount} of credits not yet on a bill, taken off."),
    }
}

/// `seconds` as a person says it: whole days and hours (to the nearest hour), or minutes
/// under an hour.
fn spoken_duration(seconds: i64, language: &str) -> String {
    let (day, days, hour, hours, minute, minutes, and) = match language {
        "es" => ("día", "días", "hora", "horas", "minuto", "minutos", "y"),
        "fr" => ("jour", "jours", "heure", "heures", "minute", "minutes", "et"),
        "de" => ("Tag", "Tage", "Stunde", "Stunden", "Minute", "Minuten", "und"),
        "pt" => ("dia", "dias", "hora", "horas", "minuto", "minutos", "e"),
        _ => ("day", "days", "hour", "hours", "minute", "minutes", "and"),
    };
    let count = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let whole_hours = (seconds + 1_800) / 3_600;
    if whole_hours == 0 {
        return count((seconds + 30) / 60, minute, minutes);
    }
    match (whole_hours / 24, whole_hours % 24) {
        (0, h) => count(h, hour, hours),
        (d, 0) => count(d, day, days),
        (d, h) => format!("{} {and} {}", count(d, day, days), count(h, hour, hours)),
    }
}

/// Where a cancellation request came from: any channel a customer can sign up through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestChannel {
    /// The customer portal on the web.
    Web,
    /// The provider's mobile app.
    App,
    /// The HTTP API (a partner or reseller acting for the customer).
    Api,
    /// A call, taken by an agent.
    Phone,
    /// A chat, taken by an agent or a bot.
    Chat,
    Email,
    /// In person, at a shop.
    Store,
}

impl RequestChannel {
    pub const ALL: [RequestChannel; 7] = [
        RequestChannel::Web,
        RequestChannel::App,
        RequestChannel::Api,
        RequestChannel::Phone,
        RequestChannel::Chat,
        RequestChannel::Email,
        RequestChannel::Store,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestChannel::Web => "web",
            RequestChannel::App => "app",
            RequestChannel::Api => "api",
            RequestChannel::Phone => "phone",
            RequestChannel::Chat => "chat",
            RequestChannel::Email => "email",
            RequestChannel::Store => "store",
        }
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| FieldError::new("channel", s, "is not web, app, api, phone, chat, email or store"))
    }
}

impl fmt::Display for RequestChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step the system recorded for a cancellation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// The customer asked to cancel: the one step they took.
    Requested {
        channel: RequestChannel,
    },
    ReasonSkipped,
    ReasonGiven {
        reason: Reason,
    },
    RetentionOfferShown {
        offer_id: String,
    },
    FinalBillComputed {
        total_minor: i64,
    },
    Confirmed {
        reference: String,
        effective_at: Timestamp,
    },
}

/// A recorded step and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditStep {
    pub at: Timestamp,
    pub step: Step,
}

/// What happened in one cancellation request, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    pub channel: RequestChannel,
    /// `None`: the reason question was skipped.
    pub reason: Option<Reason>,
    /// The id of the offer shown with the confirmation, if one was.
    pub offer_shown: Option<String>,
    pub total_minor: i64,
    pub reference: String,
    pub effective_at: Timestamp,
}

impl Journey {
    /// The audit steps of the request, all at `at` (the request's instant, to the second):
    /// requested, the reason (given or skipped), the offer if shown, the final bill and the
    /// confirmation, in that order.
    pub fn audit(&self, at: Timestamp) -> Vec<AuditStep> {
        let at = to_second(at);
        let mut steps = vec![Step::Requested { channel: self.channel }];
        steps.push(match &self.reason {
            None => Step::ReasonSkipped,
            Some(reason) => Step::ReasonGiven { reason: reason.clone() },
        });
        if let Some(offer_id) = &self.offer_shown {
            steps.push(Step::RetentionOfferShown { offer_id: offer_id.clone() });
        }
        steps.push(Step::FinalBillComputed { total_minor: self.total_minor });
        steps.push(Step::Confirmed { reference: self.reference.clone(), effective_at: self.effective_at });
        steps.into_iter().map(|step| AuditStep { at, step }).collect()
    }
}

/// The steps a customer took to cancel: the requests they made (one for a cancellation in
/// one request), counted from their audit. The other audit steps are the system's record
/// of each request, not effort of the customer's.
pub fn customer_steps(audit: &[AuditStep]) -> usize {
    audit.iter().filter(|s| matches!(s.step, Step::Requested { .. })).count()
}

/// The steps to cancel next to the steps to sign up, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ease {
    pub cancel_steps: usize,
    pub sign_up_steps: usize,
}

impl Ease {
    /// Leaving takes no more steps than joining.
    pub fn as_easy_as_joining(&self) -> bool {
        self.cancel_steps <= self.sign_up_steps
    }
}

/// The reference of the cancellation numbered `sequence`: `CXL-`, then the number
/// scrambled, with a check digit, in groups of four, as an appointment's (see
/// [`crate::reference`]): the caller allocates the number from the store's sequence, and
/// the check digit catches a mistyped reference read over the phone.
pub fn reference(sequence: u64) -> String {
    crate::reference::format(REFERENCE_PREFIX, sequence)
}

/// The sequence number of a reference made by [`reference`] (or of the earlier form,
/// `CXL-00000427`); anything else, including a wrong check digit, is refused naming
/// `field`.
pub fn parse_reference(field: &'static str, s: &str) -> Result<u64, CancellationError> {
    crate::reference::parse(REFERENCE_PREFIX, s)
        .ok_or_else(|| CancellationError::BadReference { field, value: s.chars().take(40).collect() })
}

/// One cancellation request, as the app received it.
#[derive(Debug, Clone, Copy)]
pub struct CancelRequest<'a> {
    pub customer_id: &'a str,
    pub status: CustomerStatus,
    pub channel: RequestChannel,
    /// The reason question's answer as the form sent it (see [`Reason::parse`]).
    pub reason_id: Option<&'a str>,
    pub reason_text: Option<&'a str>,
    pub locale: &'a Locale,
    /// Whether this customer was ever shown the offer ([`offer_shown_before`]).
    pub offer_shown_before: bool,
    pub bill: BillInputs<'a>,
    /// The number of the reference, from the store's sequence.
    pub sequence: u64,
}

/// Everything a cancellation confirms, shows and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub reference: String,
    pub reason: Option<Reason>,
    /// The offer shown with the confirmation, as `(id, text)`.
    pub offer: Option<(String, String)>,
    pub bill: FinalBill,
    /// To write with the status change, in one transaction.
    pub audit: Vec<AuditStep>,
}

/// Cancels in one request: checks the customer id, refuses an account already cancelled
/// and a bad reason answer (naming the field), then computes the final bill, picks the
/// offer and builds the audit. An error means nothing is to be written.
pub fn cancel(rules: &CancellationRules, req: &CancelRequest<'_>) -> Result<Cancellation, CancellationError> {
    parse_id("customer_id", req.customer_id)?;
    if req.status == CustomerStatus::Cancelled {
        return Err(CancellationError::AlreadyCancelled { customer_id: req.customer_id.to_string() });
    }
    let reason = Reason::parse(rules, req.reason_id, req.reason_text)?;
    let bill = final_bill(rules, &req.bill)?;
    let offer = retention_offer_to_show(rules, req.offer_shown_before, req.locale)
        .map(|(id, text)| (id.to_string(), text.to_string()));
    let reference = reference(req.sequence);
    let journey = Journey {
        channel: req.channel,
        reason: reason.clone(),
        offer_shown: offer.as_ref().map(|(id, _)| id.clone()),
        total_minor: bill.total_minor,
        reference: reference.clone(),
        effective_at: bill.effective_at,
    };
    let audit = journey.audit(req.bill.requested_at);
    Ok(Cancellation { reference, reason, offer, bill, audit })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod customer_words {
    use super::*;

    #[test]
    fn a_bill_line_reads_in_hours_and_days_in_the_customers_language() {
        let line = |code, seconds, language| customer_line(code, "$1.42", seconds, language);
        assert_eq!(
            line(LineCode::UnusedRefund, 50_400, "en"),
            "We will refund $1.42 for the 14 hours you paid for and will not use."
        );
        assert_eq!(
            line(LineCode::UnusedRefund, 50_400, "es"),
            "Le devolveremos $1.42 por 14 horas de servicio ya pagado que no usará."
        );
        assert_eq!(
            line(LineCode::UsedCharge, 2 * 86_400 + 3_600, "fr"),
            "$1.42 pour 2 jours et 1 heure de service utilisé ce cycle-ci."
        );
        assert_eq!(
            line(LineCode::UsedCharge, 86_400, "en"),
            "$1.42 for the 1 day of service you used this cycle."
        );
        assert_eq!(
            line(LineCode::UsedCharge, 1_500, "en"),
            "$1.42 for the 25 minutes of service you used this cycle."
        );
        assert!(line(LineCode::UnusedRefund, 5_399, "en").contains("the 1 hour you"));
        assert_eq!(
            line(LineCode::UnusedRefund, 86_400 + 7_200, "de"),
            "Wir erstatten Ihnen $1.42 für bezahlte, nicht genutzte Zeit: 1 Tag und 2 Stunden."
        );
        assert_eq!(
            line(LineCode::UnusedRefund, 50_400, "pt"),
            "Vamos devolver $1.42 por 14 horas de serviço pago que você não vai usar."
        );
        assert_eq!(line(LineCode::Credits, 0, "nl"), "$1.42 of credits not yet on a bill, taken off.");
    }
}
