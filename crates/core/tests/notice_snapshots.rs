//! Every notice a customer can get, in every shipped locale, on both channels, as they
//! read it: one snapshot per locale (`snapshots/`), each kind (and each variant of a
//! kind that reads differently) with its email and its SMS. A change of wording, of a
//! date's form or of an amount's shows in review as a diff of what customers read
//! (issue 17, item 8). `cargo insta review` accepts a change; CI fails on any unreviewed
//! one.
//!
//! The context is what the app builds: instants written in the customer's zone and
//! locale by `format_local`, amounts by `format_for_locale`, statement dates by
//! `cldr::date`. Each SMS's size is printed with it: its encoding and segments through a
//! gateway with the national shift tables, and through one without.

use amends_core::book::Locale;
use amends_core::cldr;
use amends_core::credit_words::CreditedLine;
use amends_core::incident::{ByLocale, for_locale};
use amends_core::money::{Currency, Money, format_for_locale};
use amends_core::notice::{Instants, NoticeContext, NoticeKind, TemplateForm, Templates, format_local};
use amends_core::policy::{Basis, ProratedBasis};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Value;
use minijinja::value::Serde;
use std::fmt::Write as _;

/// The shipped locales, each with a zone and currency its customers would have.
const LOCALES: [(&str, &str, &str); 8] = [
    ("en-US", "America/New_York", "USD"),
    ("en-GB", "Europe/London", "GBP"),
    ("es-ES", "Europe/Madrid", "EUR"),
    ("es-MX", "America/Mexico_City", "MXN"),
    ("fr-FR", "Europe/Paris", "EUR"),
    ("fr-CA", "America/Toronto", "CAD"),
    ("de-DE", "Europe/Berlin", "EUR"),
    ("pt-BR", "America/Sao_Paulo", "BRL"),
];

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const CAUSE_EN: &str = "A fibre cable was cut by roadworks";
const MESSAGE_EN: &str = "Crews are on site and splicing the cable";

/// The operator's cause in the shipped languages, as `--translation` gives them.
fn causes() -> ByLocale {
    [
        ("es", "Unas obras han cortado un cable de fibra"),
        ("fr", "Des travaux ont coupé un câble de fibre"),
        ("de", "Bauarbeiten haben ein Glasfaserkabel durchtrennt"),
        ("pt", "Uma obra cortou um cabo de fibra"),
    ]
    .into_iter()
    .map(|(l, t)| (l.to_string(), t.to_string()))
    .collect()
}

fn messages() -> ByLocale {
    [
        ("es", "Los técnicos ya están empalmando el cable"),
        ("fr", "Les équipes sont sur place et raccordent le câble"),
        ("de", "Unsere Techniker spleißen das Kabel bereits"),
        ("pt", "As equipes já estão emendando o cabo"),
    ]
    .into_iter()
    .map(|(l, t)| (l.to_string(), t.to_string()))
    .collect()
}

/// One outage, one case, one visit and one cancellation, as a customer in `locale` and
/// `zone` paying in `currency` reads them.
fn context(locale: &Locale, zone: &TimeZone, currency: &str) -> NoticeContext {
    let when = |s: &str| Some(format_local(at(s), zone, locale));
    let money = |minor: i64| format_for_locale(Money::new(minor, Currency::parse(currency).unwrap()), locale);
    let instants = Instants {
        etr: Some(at("2026-11-23T21:00:00Z")),
        previous_etr: Some(at("2026-11-23T19:00:00Z")),
        next_update_by: Some(at("2026-11-23T20:00:00Z")),
        previous_next_update_by: Some(at("2026-11-23T18:00:00Z")),
        outage_start: Some(at("2026-11-23T15:40:00Z")),
        restored_at: Some(at("2026-11-23T20:25:00Z")),
    };
    // Written as the notice is made, at 15:45 UTC (an SMS counts its weekdays from then).
    let written = instants.written(at("2026-11-23T15:45:00Z"), zone, locale);
    let context = NoticeContext {
        provider_name: "Northwind Fibre".into(),
        customer_name: "Ana Lima".into(),
        incident_id: "INC-000042".into(),
        // The operator's words as they gave them for this customer's language, looked up
        // as the fan-out does (`for_locale`); see the "untranslated" variant for the rest.
        cause: for_locale(&causes(), locale).unwrap_or(CAUSE_EN).into(),
        message: for_locale(&messages(), locale).unwrap_or(MESSAGE_EN).into(),
        state: "identified".into(),
        update_kind: "update".into(),
        etr_changed: true,
        status_url: "https://status.northwind.example/i/INC-000042".into(),
        credit_amount: Some(money(53)),
        credit_automatic: true,
        credit_told: true,
        statement: Some(cldr::date("2026-12-01".parse().unwrap(), locale)),
        // As the credit step writes it: the customer's version, from a prorated line's numbers.
        credit_explanation: amends_core::credit_words::customer_explanation(
            &[CreditedLine {
                amount_minor: 53,
                automatic: true,
                basis: Basis {
                    seconds_out: Some(285 * 60),
                    prorated: Some(ProratedBasis { price_minor: 7999, cycle_seconds: 30 * 86_400 }),
                },
            }],
            53,
            Currency::parse(currency).unwrap(),
            locale,
        ),
        case_id: "CASE-000007".into(),
        owner_name: "Bea Martin".into(),
        appointment_ref: "APT-2858-5588".into(),
        window: Some(cldr::window(at("2026-12-07T08:00:00Z"), at("2026-12-07T12:00:00Z"), zone, locale)),
        window_short: Some(cldr::window_short(
            at("2026-12-07T08:00:00Z"),
            at("2026-12-07T12:00:00Z"),
            zone,
            locale,
        )),
        window_start: when("2026-12-07T08:00:00Z"),
        window_end: when("2026-12-07T12:00:00Z"),
        failure_kind: "no_show".into(),
        cancelled_by: "provider".into(),
        compensation: Some(money(3231)),
        on_request_compensation: Some(money(1500)),
        slots: vec![
            cldr::window(at("2026-12-08T08:00:00Z"), at("2026-12-08T12:00:00Z"), zone, locale),
            cldr::window(at("2026-12-09T12:00:00Z"), at("2026-12-09T16:00:00Z"), zone, locale),
        ],
        slots_short: vec![
            cldr::window_short(at("2026-12-08T08:00:00Z"), at("2026-12-08T12:00:00Z"), zone, locale),
            cldr::window_short(at("2026-12-09T12:00:00Z"), at("2026-12-09T16:00:00Z"), zone, locale),
        ],
        cancellation_ref: "CXL-8735-4903".into(),
        effective: when("2026-12-03T14:03:00Z"),
        final_bill_total: Some(money(1839)),
        final_bill_refund: true,
        final_bill_lines: vec![amends_core::cancellation::customer_line(
            amends_core::cancellation::LineCode::UnusedRefund,
            &money(1839),
            14 * 86_400,
            locale.language(),
        )],
        retention_offer: Some("three months at half price if you stay".into()),
        survey_url: Some("https://northwind.example/s/7Kq2".into()),
        survey_expires: when("2026-12-17T14:03:00Z"),
        ..NoticeContext::default()
    };
    context.with_instants(written)
}

/// Each kind, and each variant of it that reads differently, in the order a customer
/// would meet them: a label and the context.
fn variants(base: &NoticeContext) -> Vec<(NoticeKind, &'static str, NoticeContext)> {
    use NoticeKind::*;
    let with = |f: &dyn Fn(&mut NoticeContext)| {
        let mut ctx = base.clone();
        f(&mut ctx);
        ctx
    };
    vec![
        (Acknowledgement, "with an estimate", base.clone()),
        (Acknowledgement, "no estimate yet", with(&|c| c.etr = None)),
        (Update, "a new estimate", base.clone()),
        (
            Update,
            "the estimate passed",
            with(&|c| {
                c.update_kind = "etr_lapsed".into();
                c.etr = None;
            }),
        ),
        (
            Update,
            "the promised update is late",
            with(&|c| {
                c.update_kind = "update_overdue".into();
                c.etr_changed = false;
            }),
        ),
        (Update, "the last update before the cap", with(&|c| c.last_update = true)),
        (Restored, "", base.clone()),
        (
            Restored,
            "credits paid on request, no credit notice reaches them",
            with(&|c| {
                c.credit_automatic = false;
                c.credit_told = false;
            }),
        ),
        (
            Restored,
            "credits paid on request, claimed on the customer's page",
            with(&|c| {
                c.credit_automatic = false;
                c.credit_told = false;
                c.page_url = Some("https://northwind.example/my?token=AAB7Kq2".into());
            }),
        ),
        (Acknowledgement, "credits paid on request", with(&|c| c.credit_automatic = false)),
        (
            Acknowledgement,
            "credits paid on request, claimed on the customer's page",
            with(&|c| {
                c.credit_automatic = false;
                c.page_url = Some("https://northwind.example/my?token=AAB7Kq2".into());
            }),
        ),
        (
            Acknowledgement,
            "the operator gave no translation",
            with(&|c| {
                c.cause = CAUSE_EN.into();
                c.message = MESSAGE_EN.into();
            }),
        ),
        (Credit, "", base.clone()),
        (StillDown, "", base.clone()),
        (
            CaseResponse,
            "",
            with(&|c| c.message = "I am sorry about the wrong lenses; the right ones leave today.".into()),
        ),
        (CaseOwner, "", base.clone()),
        (
            CaseNote,
            "apology",
            with(&|c| {
                c.note_kind = "apology".into();
                c.message = "Sorry again for the wait.".into();
            }),
        ),
        (
            CaseNote,
            "thank you",
            with(&|c| {
                c.note_kind = "thank_you".into();
                c.message = "Thank you for your patience.".into();
            }),
        ),
        (
            CaseNote,
            "goodwill",
            with(&|c| {
                c.note_kind = "goodwill".into();
                c.message = "For the trouble.".into();
            }),
        ),
        (CaseFollowUp, "with a gift", with(&|c| c.gift = Some("a month of premium channels, on us".into()))),
        (CaseFollowUp, "without", base.clone()),
        (AppointmentBooked, "", base.clone()),
        (AppointmentCancelled, "by the customer", with(&|c| c.cancelled_by = "customer".into())),
        (AppointmentCancelled, "by the provider", base.clone()),
        // A visit's credit is a fixed amount: its lines have nothing to tell beyond it.
        (
            AppointmentMissed,
            "no-show",
            with(&|c| {
                c.credit_explanation = None;
                c.on_request_compensation = None;
            }),
        ),
        (
            AppointmentMissed,
            "late cancellation",
            with(&|c| {
                c.failure_kind = "late_cancellation".into();
                c.credit_explanation = None;
                c.on_request_compensation = None;
            }),
        ),
        (
            AppointmentMissed,
            "paid only on request, claimed on the customer's page",
            with(&|c| {
                c.compensation = None;
                c.credit_explanation = None;
                c.page_url = Some("https://northwind.example/my?token=AAB7Kq2".into());
            }),
        ),
        (AccountCancelled, "", base.clone()),
        (Survey, "", base.clone()),
        (
            PageLink,
            "asked for from the page of an expired link",
            with(&|c| c.page_url = Some("https://northwind.example/my?token=AAB7Kq2".into())),
        ),
    ]
}

fn render(
    templates: &Templates,
    kind: NoticeKind,
    form: TemplateForm,
    locale: &Locale,
    ctx: &NoticeContext,
) -> String {
    let name = templates.resolve_for(kind, form, locale).unwrap();
    let rendered = templates.render_named(&name, Value::from(Serde(ctx))).unwrap();
    match form {
        TemplateForm::Full => format!("Subject: {}\n\n{}", rendered.subject, rendered.body.trim_end()),
        TemplateForm::Sms => {
            // As a gateway with the national shift tables sends it (`shift_tables`), and as
            // one without.
            let size = amends_core::sms::segments_with(&rendered.body, &amends_core::sms::Language::ALL);
            let plain = amends_core::sms::segments(&rendered.body);
            let words = rendered.body.split_whitespace().count();
            format!(
                "{}\n[{:?}, {} segment(s), {} units; without shift tables {:?}, {} segment(s); {words} words]",
                rendered.body, size.encoding, size.segments, size.units, plain.encoding, plain.segments
            )
        }
    }
}

#[test]
fn every_notice_in_every_shipped_locale_on_both_channels() {
    let templates = Templates::builtin();
    for (tag, zone, currency) in LOCALES {
        let locale = Locale::parse(tag).unwrap();
        let zone = TimeZone::get(zone).unwrap();
        let base = context(&locale, &zone, currency);
        let mut out = String::new();
        for (kind, variant, ctx) in variants(&base) {
            let label = if variant.is_empty() { kind.to_string() } else { format!("{kind} ({variant})") };
            let email = render(&templates, kind, TemplateForm::Full, &locale, &ctx);
            let words = email.split_whitespace().count();
            let _ = writeln!(out, "==================== {label}: email, {words} words\n{email}\n");
            let sms = render(&templates, kind, TemplateForm::Sms, &locale, &ctx);
            let _ = writeln!(out, "-------------------- {label}: SMS\n{sms}\n");
        }
        insta::assert_snapshot!(tag, out);
    }
}

/// Every outage SMS fits one segment in every shipped locale, through a gateway with the
/// national shift tables, with a status link of 45 characters (issue 17, item 5): a
/// second segment costs twice and often arrives first.
#[test]
fn every_text_fits_one_segment_in_every_shipped_locale() {
    use NoticeKind::*;
    let templates = Templates::builtin();
    let mut over = Vec::new();
    for (tag, zone, currency) in LOCALES {
        let locale = Locale::parse(tag).unwrap();
        let zone = TimeZone::get(zone).unwrap();
        let base = context(&locale, &zone, currency);
        assert_eq!(base.status_url.len(), 45);
        for (kind, variant, ctx) in variants(&base) {
            // The operator's own words decide the length of these: a note quotes the
            // owner, and a follow-up's gift is written by the operator, in one language.
            let operator_words =
                matches!(kind, CaseNote | CaseResponse) || (kind == CaseFollowUp && ctx.gift.is_some());
            if operator_words {
                continue;
            }
            let name = templates.resolve_for(kind, TemplateForm::Sms, &locale).unwrap();
            let body = templates.render_named(&name, Value::from(Serde(&ctx))).unwrap().body;
            let size = amends_core::sms::segments_with(&body, &amends_core::sms::Language::ALL);
            if size.segments > 1 {
                over.push(format!("{tag} {kind} ({variant}): {} units: {body}", size.units));
            }
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}
