//! Notices: what amends tells a customer, keyed so nobody hears the same thing twice.
//!
//! A notice is rendered from a template per kind and locale (`en/acknowledgement.txt`),
//! whose first line is `Subject: ...`. English ships built in; operators can override or
//! add locales from a directory without rebuilding. Every template is compiled AND test-
//! rendered against a full sample context when it is loaded, with strict undefined
//! variables, so a typo fails at start-up, not at send time.

use crate::id::{CaseId, IncidentId};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

use crate::book::Locale;
use crate::incident::{ByLocale, for_locale};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Acknowledgement,
    Update,
    Restored,
    Credit,
    /// The incident is resolved but the customer's own device is still offline: what to
    /// try, and that a follow-up case is open for them.
    StillDown,
    /// A case owner's first response to the customer: their own words (`message`), who owns
    /// the case and its reference.
    CaseResponse,
    /// A hand-over was accepted: who looks after the case now. The hand-over note between
    /// agents is not for the customer and is not in the context.
    CaseOwner,
    /// The apology or thank-you note (`note_kind`) after the fix, in the owner's words.
    CaseNote,
    /// Some days after the fix: is everything still working, how to reach the owner, and
    /// the gift if there is one.
    CaseFollowUp,
    /// A visit was booked: its reference and window; the email carries the `.ics` file.
    AppointmentBooked,
    /// A visit was cancelled (`cancelled_by` the customer or the provider) without it
    /// being a failure: the email carries the cancelled `.ics`, so it leaves calendars too.
    AppointmentCancelled,
    /// A visit failed (`failure_kind`: a no-show or a late cancellation by the provider):
    /// the apology, the compensation credited without asking, the slots held for the
    /// customer, and the case that owns it.
    AppointmentMissed,
    /// The customer's cancellation is done: its reference, when it takes effect, the final
    /// bill's preview line by line, and the one retention offer if there is one.
    AccountCancelled,
    /// A satisfaction survey: a single-use signed link. Sent by the system only.
    Survey,
    /// A fresh link to the customer's own page (`page_url`), asked for from the page that
    /// said their link had expired.
    PageLink,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 15] = [
        NoticeKind::Acknowledgement,
        NoticeKind::Update,
        NoticeKind::Restored,
        NoticeKind::Credit,
        NoticeKind::StillDown,
        NoticeKind::CaseResponse,
        NoticeKind::CaseOwner,
        NoticeKind::CaseNote,
        NoticeKind::CaseFollowUp,
        NoticeKind::AppointmentBooked,
        NoticeKind::AppointmentCancelled,
        NoticeKind::AppointmentMissed,
        NoticeKind::AccountCancelled,
        NoticeKind::Survey,
        NoticeKind::PageLink,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Acknowledgement => "acknowledgement",
            NoticeKind::Update => "update",
            NoticeKind::Restored => "restored",
            NoticeKind::Credit => "credit",
            NoticeKind::StillDown => "still_down",
            NoticeKind::CaseResponse => "case_response",
            NoticeKind::CaseOwner => "case_owner",
            NoticeKind::CaseNote => "case_note",
            NoticeKind::CaseFollowUp => "case_follow_up",
            NoticeKind::AppointmentBooked => "appointment_booked",
            NoticeKind::AppointmentCancelled => "appointment_cancelled",
            NoticeKind::AppointmentMissed => "appointment_missed",
            NoticeKind::AccountCancelled => "account_cancelled",
            NoticeKind::Survey => "survey",
            NoticeKind::PageLink => "page_link",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether this kind is news of an incident (rather than a case's, a visit's, an
    /// account's or a survey's message to one customer).
    pub fn is_incident(self) -> bool {
        matches!(
            self,
            NoticeKind::Acknowledgement
                | NoticeKind::Update
                | NoticeKind::Restored
                | NoticeKind::Credit
                | NoticeKind::StillDown
        )
    }

    /// Whether this kind is a case's message to its customer, rather than news of an
    /// incident.
    pub fn is_case(self) -> bool {
        matches!(
            self,
            NoticeKind::CaseResponse
                | NoticeKind::CaseOwner
                | NoticeKind::CaseNote
                | NoticeKind::CaseFollowUp
        )
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The deterministic key of a notice: (customer, incident, kind, sequence, channel). `seq`
/// is the incident timeline entry the notice is about (0 for the acknowledgement and the
/// credit); each channel the customer hears on is its own message.
pub fn notice_key(customer_id: &str, incident_id: &str, kind: NoticeKind, seq: i64, channel: &str) -> String {
    format!("{customer_id}/{incident_id}/{kind}/{seq}/{channel}")
}

/// Everything a template may use. Absent values are `none`, never undefined.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NoticeContext {
    pub provider_name: String,
    pub customer_name: String,
    pub incident_id: IncidentId,
    pub cause: String,
    /// The operator's message on an incident; on a case notice, the owner's own words.
    pub message: String,
    pub state: String,
    /// `update`, `etr_lapsed` or `update_overdue` for update notices.
    pub update_kind: String,
    pub etr: Option<String>,
    pub etr_changed: bool,
    pub previous_etr: Option<String>,
    pub next_update_by: Option<String>,
    pub previous_next_update_by: Option<String>,
    /// `etr` and `next_update_by` as an SMS says them, short ([`crate::cldr::instant_short`]:
    /// "Mon, 4:00 PM EST" within the week), so an SMS fits one segment where words allow.
    pub etr_short: Option<String>,
    pub next_update_by_short: Option<String>,
    /// See [`WrittenInstants::next_update_by_time`] and [`WrittenInstants::outage_span`].
    pub next_update_by_time: Option<String>,
    pub outage_span: Option<String>,
    /// This update is the last one the customer can get before the restoration notice
    /// (the updates cap): it promises that notice, and no word sooner.
    pub last_update: bool,
    pub status_url: String,
    pub outage_start: Option<String>,
    pub restored_at: Option<String>,
    pub credit_amount: Option<String>,
    pub statement: Option<String>,
    pub credit_explanation: Option<String>,
    /// Every policy that applies to the customer pays an outage without a claim: only
    /// then may a notice say a credit comes automatically.
    pub credit_automatic: bool,
    /// A credit notice would reach the customer (their preferences and contact points):
    /// only then may a notice promise to tell them the amount.
    pub credit_told: bool,
    /// The case a case notice is about (`CASE-000001`).
    pub case_id: CaseId,
    /// The person who owns the case now, as the customer knows them.
    pub owner_name: String,
    /// `apology` or `thank_you` for case notes; `goodwill` for the announcement of a
    /// goodwill gesture (with `compensation` and `statement`).
    pub note_kind: String,
    /// What the case follow-up gives the customer, in a few words
    /// (`a month of premium channels, on us`); `none` for nothing.
    pub gift: Option<String>,
    /// The visit an appointment notice is about (`APT-2858-5588`).
    pub appointment_ref: String,
    /// The visit's window as one span ([`crate::cldr::window`]: "Monday, December 7 at
    /// 8:00 AM – 12:00 PM GMT"), and each end alone, in the customer's zone and language.
    pub window: Option<String>,
    /// `window` as an SMS says it ([`crate::cldr::window_short`]: "Mon, Dec 7, 8:00 AM –
    /// 12:00 PM GMT").
    pub window_short: Option<String>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    /// `no_show` or `late_cancellation`.
    pub failure_kind: String,
    /// Who cancelled a visit: `customer` or `provider`.
    pub cancelled_by: String,
    /// What was credited for a failed visit (`32.31 GBP`), with `credit_explanation`, or
    /// given as a case's goodwill gesture.
    pub compensation: Option<String>,
    /// What a policy pays for a failed visit only when the customer asks (`15.00 GBP`):
    /// offered on their page, claimed there in one click.
    pub on_request_compensation: Option<String>,
    /// The slots held for the customer's rebooking, earliest first, as they read them.
    pub slots: Vec<String>,
    /// `slots` as an SMS says them ([`crate::cldr::window_short`]).
    pub slots_short: Vec<String>,
    /// A cancellation's reference (`CAN-000001`), when it takes effect, and the final bill.
    pub cancellation_ref: String,
    pub effective: Option<String>,
    pub final_bill_total: Option<String>,
    /// The final bill's total is owed to the customer: `final_bill_total` is then the
    /// refund, written without a minus sign.
    pub final_bill_refund: bool,
    pub final_bill_lines: Vec<String>,
    /// The one retention offer, in the customer's language; `none` if there is none.
    pub retention_offer: Option<String>,
    /// The link to the customer's own page (their notices, credits and preferences),
    /// signed for them alone; `None` where none is made (a preview).
    pub page_url: Option<String>,
    /// A survey's single-use link and when it stops working.
    pub survey_url: Option<String>,
    pub survey_expires: Option<String>,
    /// `cause` in other languages. Not a template variable: [`NoticeContext::in_language`]
    /// puts the customer's own over `cause`.
    #[serde(skip)]
    pub causes: ByLocale,
    /// `message` in other languages, likewise.
    #[serde(skip)]
    pub messages: ByLocale,
}

impl NoticeContext {
    /// The cause and message as a customer with `locale` reads them: a context layer to
    /// put over this one, with only what the operator translated for their locale or
    /// language (the rest stays as written).
    pub fn in_language(&self, locale: &Locale) -> Value {
        let mut layer = std::collections::BTreeMap::new();
        if let Some(cause) = for_locale(&self.causes, locale) {
            layer.insert("cause", Value::from(cause));
        }
        if let Some(message) = for_locale(&self.messages, locale) {
            layer.insert("message", Value::from(message));
        }
        Value::from(layer)
    }

    /// A context with every field filled, used to test-render templates at load.
    pub fn sample() -> Self {
        let some = |s: &str| Some(s.to_string());
        NoticeContext {
            provider_name: "Example Cable".into(),
            customer_name: "Ana".into(),
            incident_id: "INC-000001".into(),
            cause: "A fibre cable was cut".into(),
            message: "Crews are on site".into(),
            state: "identified".into(),
            update_kind: "update".into(),
            etr: some("4:00 PM EST on Monday, November 23"),
            etr_changed: true,
            previous_etr: some("2:00 PM EST on Monday, November 23"),
            next_update_by: some("3:00 PM EST on Monday, November 23"),
            previous_next_update_by: some("1:00 PM EST on Monday, November 23"),
            status_url: "https://status.example.com/incidents/INC-000001".into(),
            outage_start: some("10:00 AM EST on Monday, November 23"),
            restored_at: some("7:00 PM EST on Monday, November 23"),
            credit_amount: some("1.00 USD"),
            statement: some("2026-11-01"),
            credit_explanation: some("79.99 USD x 540 / 43,200 = 0.9999, rounded half-up to 1.00 USD."),
            credit_automatic: true,
            credit_told: true,
            case_id: "CASE-000001".into(),
            owner_name: "Bea Martin".into(),
            note_kind: "apology".into(),
            gift: some("a month of premium channels, on us"),
            appointment_ref: "APT-2858-5588".into(),
            window: some("Monday, December 7 at 8:00 AM – 12:00 PM GMT"),
            window_short: some("Mon, Dec 7, 8:00 AM – 12:00 PM GMT"),
            window_start: some("8:00 AM GMT on Monday, December 7"),
            window_end: some("12:00 PM GMT on Monday, December 7"),
            failure_kind: "no_show".into(),
            cancelled_by: "provider".into(),
            compensation: some("32.31 GBP"),
            on_request_compensation: some("15.00 GBP"),
            slots: vec![
                "8:00 AM GMT on Tuesday, December 8 to 12:00 PM GMT on Tuesday, December 8".into(),
                "12:00 PM GMT on Tuesday, December 8 to 4:00 PM GMT on Tuesday, December 8".into(),
            ],
            slots_short: vec!["Tue, Dec 8, 8:00 AM – 12:00 PM GMT".into()],
            cancellation_ref: "CAN-000001".into(),
            effective: some("2:03 PM GMT on Thursday, December 3"),
            final_bill_total: some("18.39 GBP"),
            final_bill_refund: true,
            final_bill_lines: vec![
                "We will refund 18.39 GBP for the 14 hours you paid for and will not use.".into(),
            ],
            retention_offer: some("three months at half price if you stay"),
            survey_url: some("https://example.com/v1/surveys/answer?token=abc"),
            survey_expires: some("2:03 PM GMT on Thursday, December 17"),
            ..NoticeContext::default()
        }
    }
}

/// Most characters `excerpt` keeps: an SMS template has three segments at most.
pub const EXCERPT_CHARS_MAX: usize = 400;

/// The `excerpt(n)` template filter: `text` cut to at most `n` characters (at most
/// [`EXCERPT_CHARS_MAX`]) at a word boundary, with "..." when cut. A person's own words
/// (a case owner's response or note, up to thousands of bytes) go into an SMS this way,
/// so a long one neither blows the channel's segment budget nor fails the send, which
/// would count against the customer's number. Three dots, not an ellipsis: the ellipsis
/// is not GSM-7 and would turn the whole SMS into shorter UCS-2 segments.
pub fn excerpt(text: &str, n: usize) -> String {
    let n = n.min(EXCERPT_CHARS_MAX);
    let text = text.trim();
    if text.chars().count() <= n {
        return text.to_string();
    }
    let cut: String = text.chars().take(n.saturating_sub(3)).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > 0 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}...", cut.trim_end())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {name} is not <locale>/<kind>.txt or <locale>/<kind>.sms.txt with a kind of {kinds}", kinds = kinds_list())]
    BadName { name: String },
    #[error("template {name}:{line}: {message}")]
    Syntax { name: String, line: usize, message: String },
    #[error("template {name}: the first line must be \"Subject: ...\"")]
    NoSubject { name: String },
    #[error("no template for {kind} in {locale} or English")]
    Missing { kind: NoticeKind, locale: String },
}

fn kinds_list() -> String {
    NoticeKind::ALL.map(NoticeKind::as_str).join(", ")
}

/// The shipped templates: every kind in English, Spanish, French, German and Portuguese,
/// for email (and webhooks: `<kind>.txt`, a subject line then the body) and for SMS
/// (`<kind>.sms.txt`, one short text). Spanish SMS keep their accents: á í ó ú are in GSM-7's Spanish single
/// shift table (`sms::Language::Spanish`), so through a gateway that has it a text stays
/// in GSM-7 segments; through one without, it is UCS-2.
const BUILTIN: [(&str, &str); 150] = [
    ("en/acknowledgement.txt", include_str!("../templates/en/acknowledgement.txt")),
    ("en/acknowledgement.sms.txt", include_str!("../templates/en/acknowledgement.sms.txt")),
    ("en/update.txt", include_str!("../templates/en/update.txt")),
    ("en/update.sms.txt", include_str!("../templates/en/update.sms.txt")),
    ("en/restored.txt", include_str!("../templates/en/restored.txt")),
    ("en/restored.sms.txt", include_str!("../templates/en/restored.sms.txt")),
    ("en/credit.txt", include_str!("../templates/en/credit.txt")),
    ("en/credit.sms.txt", include_str!("../templates/en/credit.sms.txt")),
    ("en/still_down.txt", include_str!("../templates/en/still_down.txt")),
    ("en/still_down.sms.txt", include_str!("../templates/en/still_down.sms.txt")),
    ("en/case_response.txt", include_str!("../templates/en/case_response.txt")),
    ("en/case_response.sms.txt", include_str!("../templates/en/case_response.sms.txt")),
    ("en/case_owner.txt", include_str!("../templates/en/case_owner.txt")),
    ("en/case_owner.sms.txt", include_str!("../templates/en/case_owner.sms.txt")),
    ("en/case_note.txt", include_str!("../templates/en/case_note.txt")),
    ("en/case_note.sms.txt", include_str!("../templates/en/case_note.sms.txt")),
    ("en/case_follow_up.txt", include_str!("../templates/en/case_follow_up.txt")),
    ("en/case_follow_up.sms.txt", include_str!("../templates/en/case_follow_up.sms.txt")),
    ("en/appointment_booked.txt", include_str!("../templates/en/appointment_booked.txt")),
    ("en/appointment_booked.sms.txt", include_str!("../templates/en/appointment_booked.sms.txt")),
    ("en/appointment_cancelled.txt", include_str!("../templates/en/appointment_cancelled.txt")),
    ("en/appointment_cancelled.sms.txt", include_str!("../templates/en/appointment_cancelled.sms.txt")),
    ("en/appointment_missed.txt", include_str!("../templates/en/appointment_missed.txt")),
    ("en/appointment_missed.sms.txt", include_str!("../templates/en/appointment_missed.sms.txt")),
    ("en/account_cancelled.txt", include_str!("../templates/en/account_cancelled.txt")),
    ("en/account_cancelled.sms.txt", include_str!("../templates/en/account_cancelled.sms.txt")),
    ("en/survey.txt", include_str!("../templates/en/survey.txt")),
    ("en/survey.sms.txt", include_str!("../templates/en/survey.sms.txt")),
    ("en/page_link.txt", include_str!("../templates/en/page_link.txt")),
    ("en/page_link.sms.txt", include_str!("../templates/en/page_link.sms.txt")),
    ("es/acknowledgement.txt", include_str!("../templates/es/acknowledgement.txt")),
    ("es/acknowledgement.sms.txt", include_str!("../templates/es/acknowledgement.sms.txt")),
    ("es/update.txt", include_str!("../templates/es/update.txt")),
    ("es/update.sms.txt", include_str!("../templates/es/update.sms.txt")),
    ("es/restored.txt", include_str!("../templates/es/restored.txt")),
    ("es/restored.sms.txt", include_str!("../templates/es/restored.sms.txt")),
    ("es/credit.txt", include_str!("../templates/es/credit.txt")),
    ("es/credit.sms.txt", include_str!("../templates/es/credit.sms.txt")),
    ("es/still_down.txt", include_str!("../templates/es/still_down.txt")),
    ("es/still_down.sms.txt", include_str!("../templates/es/still_down.sms.txt")),
    ("es/case_response.txt", include_str!("../templates/es/case_response.txt")),
    ("es/case_response.sms.txt", include_str!("../templates/es/case_response.sms.txt")),
    ("es/case_owner.txt", include_str!("../templates/es/case_owner.txt")),
    ("es/case_owner.sms.txt", include_str!("../templates/es/case_owner.sms.txt")),
    ("es/case_note.txt", include_str!("../templates/es/case_note.txt")),
    ("es/case_note.sms.txt", include_str!("../templates/es/case_note.sms.txt")),
    ("es/case_follow_up.txt", include_str!("../templates/es/case_follow_up.txt")),
    ("es/case_follow_up.sms.txt", include_str!("../templates/es/case_follow_up.sms.txt")),
    ("es/appointment_booked.txt", include_str!("../templates/es/appointment_booked.txt")),
    ("es/appointment_booked.sms.txt", include_str!("../templates/es/appointment_booked.sms.txt")),
    ("es/appointment_cancelled.txt", include_str!("../templates/es/appointment_cancelled.txt")),
    ("es/appointment_cancelled.sms.txt", include_str!("../templates/es/appointment_cancelled.sms.txt")),
    ("es/appointment_missed.txt", include_str!("../templates/es/appointment_missed.txt")),
    ("es/appointment_missed.sms.txt", include_str!("../templates/es/appointment_missed.sms.txt")),
    ("es/account_cancelled.txt", include_str!("../templates/es/account_cancelled.txt")),
    ("es/account_cancelled.sms.txt", include_str!("../templates/es/account_cancelled.sms.txt")),
    ("es/survey.txt", include_str!("../templates/es/survey.txt")),
    ("es/survey.sms.txt", include_str!("../templates/es/survey.sms.txt")),
    ("es/page_link.txt", include_str!("../templates/es/page_link.txt")),
    ("es/page_link.sms.txt", include_str!("../templates/es/page_link.sms.txt")),
    ("fr/acknowledgement.txt", include_str!("../templates/fr/acknowledgement.txt")),
    ("fr/acknowledgement.sms.txt", include_str!("../templates/fr/acknowledgement.sms.txt")),
    ("fr/update.txt", include_str!("../templates/fr/update.txt")),
    ("fr/update.sms.txt", include_str!("../templates/fr/update.sms.txt")),
    ("fr/restored.txt", include_str!("../templates/fr/restored.txt")),
    ("fr/restored.sms.txt", include_str!("../templates/fr/restored.sms.txt")),
    ("fr/credit.txt", include_str!("../templates/fr/credit.txt")),
    ("fr/credit.sms.txt", include_str!("../templates/fr/credit.sms.txt")),
    ("fr/still_down.txt", include_str!("../templates/fr/still_down.txt")),
    ("fr/still_down.sms.txt", include_str!("../templates/fr/still_down.sms.txt")),
    ("fr/case_response.txt", include_str!("../templates/fr/case_response.txt")),
    ("fr/case_response.sms.txt", include_str!("../templates/fr/case_response.sms.txt")),
    ("fr/case_owner.txt", include_str!("../templates/fr/case_owner.txt")),
    ("fr/case_owner.sms.txt", include_str!("../templates/fr/case_owner.sms.txt")),
    ("fr/case_note.txt", include_str!("../templates/fr/case_note.txt")),
    ("fr/case_note.sms.txt", include_str!("../templates/fr/case_note.sms.txt")),
    ("fr/case_follow_up.txt", include_str!("../templates/fr/case_follow_up.txt")),
    ("fr/case_follow_up.sms.txt", include_str!("../templates/fr/case_follow_up.sms.txt")),
    ("fr/appointment_booked.txt", include_str!("../templates/fr/appointment_booked.txt")),
    ("fr/appointment_booked.sms.txt", include_str!("../templates/fr/appointment_booked.sms.txt")),
    ("fr/appointment_cancelled.txt", include_str!("../templates/fr/appointment_cancelled.txt")),
    ("fr/appointment_cancelled.sms.txt", include_str!("../templates/fr/appointment_cancelled.sms.txt")),
    ("fr/appointment_missed.txt", include_str!("../templates/fr/appointment_missed.txt")),
    ("fr/appointment_missed.sms.txt", include_str!("../templates/fr/appointment_missed.sms.txt")),
    ("fr/account_cancelled.txt", include_str!("../templates/fr/account_cancelled.txt")),
    ("fr/account_cancelled.sms.txt", include_str!("../templates/fr/account_cancelled.sms.txt")),
    ("fr/survey.txt", include_str!("../templates/fr/survey.txt")),
    ("fr/survey.sms.txt", include_str!("../templates/fr/survey.sms.txt")),
    ("fr/page_link.txt", include_str!("../templates/fr/page_link.txt")),
    ("fr/page_link.sms.txt", include_str!("../templates/fr/page_link.sms.txt")),
    ("de/acknowledgement.txt", include_str!("../templates/de/acknowledgement.txt")),
    ("de/acknowledgement.sms.txt", include_str!("../templates/de/acknowledgement.sms.txt")),
    ("de/update.txt", include_str!("../templates/de/update.txt")),
    ("de/update.sms.txt", include_str!("../templates/de/update.sms.txt")),
    ("de/restored.txt", include_str!("../templates/de/restored.txt")),
    ("de/restored.sms.txt", include_str!("../templates/de/restored.sms.txt")),
    ("de/credit.txt", include_str!("../templates/de/credit.txt")),
    ("de/credit.sms.txt", include_str!("../templates/de/credit.sms.txt")),
    ("de/still_down.txt", include_str!("../templates/de/still_down.txt")),
    ("de/still_down.sms.txt", include_str!("../templates/de/still_down.sms.txt")),
    ("de/case_response.txt", include_str!("../templates/de/case_response.txt")),
    ("de/case_response.sms.txt", include_str!("../templates/de/case_response.sms.txt")),
    ("de/case_owner.txt", include_str!("../templates/de/case_owner.txt")),
    ("de/case_owner.sms.txt", include_str!("../templates/de/case_owner.sms.txt")),
    ("de/case_note.txt", include_str!("../templates/de/case_note.txt")),
    ("de/case_note.sms.txt", include_str!("../templates/de/case_note.sms.txt")),
    ("de/case_follow_up.txt", include_str!("../templates/de/case_follow_up.txt")),
    ("de/case_follow_up.sms.txt", include_str!("../templates/de/case_follow_up.sms.txt")),
    ("de/appointment_booked.txt", include_str!("../templates/de/appointment_booked.txt")),
    ("de/appointment_booked.sms.txt", include_str!("../templates/de/appointment_booked.sms.txt")),
    ("de/appointment_cancelled.txt", include_str!("../templates/de/appointment_cancelled.txt")),
    ("de/appointment_cancelled.sms.txt", include_str!("../templates/de/appointment_cancelled.sms.txt")),
    ("de/appointment_missed.txt", include_str!("../templates/de/appointment_missed.txt")),
    ("de/appointment_missed.sms.txt", include_str!("../templates/de/appointment_missed.sms.txt")),
    ("de/account_cancelled.txt", include_str!("../templates/de/account_cancelled.txt")),
    ("de/account_cancelled.sms.txt", include_str!("../templates/de/account_cancelled.sms.txt")),
    ("de/survey.txt", include_str!("../templates/de/survey.txt")),
    ("de/survey.sms.txt", include_str!("../templates/de/survey.sms.txt")),
    ("de/page_link.txt", include_str!("../templates/de/page_link.txt")),
    ("de/page_link.sms.txt", include_str!("../templates/de/page_link.sms.txt")),
    ("pt/acknowledgement.txt", include_str!("../templates/pt/acknowledgement.txt")),
    ("pt/acknowledgement.sms.txt", include_str!("../templates/pt/acknowledgement.sms.txt")),
    ("pt/update.txt", include_str!("../templates/pt/update.txt")),
    ("pt/update.sms.txt", include_str!("../templates/pt/update.sms.txt")),
    ("pt/restored.txt", include_str!("../templates/pt/restored.txt")),
    ("pt/restored.sms.txt", include_str!("../templates/pt/restored.sms.txt")),
    ("pt/credit.txt", include_str!("../templates/pt/credit.txt")),
    ("pt/credit.sms.txt", include_str!("../templates/pt/credit.sms.txt")),
    ("pt/still_down.txt", include_str!("../templates/pt/still_down.txt")),
    ("pt/still_down.sms.txt", include_str!("../templates/pt/still_down.sms.txt")),
    ("pt/case_response.txt", include_str!("../templates/pt/case_response.txt")),
    ("pt/case_response.sms.txt", include_str!("../templates/pt/case_response.sms.txt")),
    ("pt/case_owner.txt", include_str!("../templates/pt/case_owner.txt")),
    ("pt/case_owner.sms.txt", include_str!("../templates/pt/case_owner.sms.txt")),
    ("pt/case_note.txt", include_str!("../templates/pt/case_note.txt")),
    ("pt/case_note.sms.txt", include_str!("../templates/pt/case_note.sms.txt")),
    ("pt/case_follow_up.txt", include_str!("../templates/pt/case_follow_up.txt")),
    ("pt/case_follow_up.sms.txt", include_str!("../templates/pt/case_follow_up.sms.txt")),
    ("pt/appointment_booked.txt", include_str!("../templates/pt/appointment_booked.txt")),
    ("pt/appointment_booked.sms.txt", include_str!("../templates/pt/appointment_booked.sms.txt")),
    ("pt/appointment_cancelled.txt", include_str!("../templates/pt/appointment_cancelled.txt")),
    ("pt/appointment_cancelled.sms.txt", include_str!("../templates/pt/appointment_cancelled.sms.txt")),
    ("pt/appointment_missed.txt", include_str!("../templates/pt/appointment_missed.txt")),
    ("pt/appointment_missed.sms.txt", include_str!("../templates/pt/appointment_missed.sms.txt")),
    ("pt/account_cancelled.txt", include_str!("../templates/pt/account_cancelled.txt")),
    ("pt/account_cancelled.sms.txt", include_str!("../templates/pt/account_cancelled.sms.txt")),
    ("pt/survey.txt", include_str!("../templates/pt/survey.txt")),
    ("pt/survey.sms.txt", include_str!("../templates/pt/survey.sms.txt")),
    ("pt/page_link.txt", include_str!("../templates/pt/page_link.txt")),
    ("pt/page_link.sms.txt", include_str!("../templates/pt/page_link.sms.txt")),
];

/// Longest template, in bytes, and the most fuel (instructions) one render may burn, so
/// an operator's template cannot hang a worker.
pub const TEMPLATE_BYTES_MAX: usize = 64 * 1024;
pub const RENDER_FUEL_MAX: u64 = 100_000;

/// The compiled templates of every locale.
pub struct Templates {
    env: Environment<'static>,
    locales: BTreeSet<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").field("locales", &self.locales).finish()
    }
}

impl Templates {
    pub fn builtin() -> Self {
        Self::with_overrides(Vec::new()).expect("built-in templates are valid")
    }

    /// The built-in templates plus `overrides` (name `<locale>/<kind>.txt`, source). An
    /// override with the same name replaces the built-in one.
    pub fn with_overrides(overrides: Vec<(String, String)>) -> Result<Self, Vec<TemplateError>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(RENDER_FUEL_MAX));
        env.add_filter("excerpt", excerpt);
        let mut locales = BTreeSet::new();
        let mut errors = Vec::new();
        let sources = BUILTIN.iter().map(|(n, s)| (n.to_string(), s.to_string())).chain(overrides);
        for (name, source) in sources {
            match add_checked(&mut env, &name, source) {
                Ok(locale) => {
                    locales.insert(locale);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let templates = Templates { env, locales };
        errors.extend(templates.check_renders());
        if errors.is_empty() { Ok(templates) } else { Err(errors) }
    }

    /// Locales with at least one template.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.locales.iter().map(String::as_str)
    }

    /// Renders every template against the sample context, so unknown variables surface now.
    fn check_renders(&self) -> Vec<TemplateError> {
        let sample = Value::from(Serde(NoticeContext::sample()));
        let mut errors = Vec::new();
        for t in self.env.templates() {
            let (name, template) = t;
            if let Err(e) = template.render(sample.clone()) {
                errors.push(syntax(name, &e));
            }
        }
        errors
    }

    /// The template name to use for `kind` in `locale`: the exact locale, else its
    /// language, else English. Callers rendering many notices look it up once per locale.
    pub fn resolve(&self, kind: NoticeKind, locale: &Locale) -> Result<String, TemplateError> {
        self.resolve_for(kind, TemplateForm::Full, locale)
    }

    /// Like [`Templates::resolve`], for the full form (email, webhooks) or the SMS form.
    pub fn resolve_for(
        &self,
        kind: NoticeKind,
        form: TemplateForm,
        locale: &Locale,
    ) -> Result<String, TemplateError> {
        [locale.as_str(), locale.language(), "en"]
            .into_iter()
            .map(|l| format!("{l}/{kind}{}", form.suffix()))
            .find(|name| self.env.get_template(name).is_ok())
            .ok_or_else(|| TemplateError::Missing { kind, locale: locale.to_string() })
    }

    pub fn render(
        &self,
        kind: NoticeKind,
        locale: &Locale,
        ctx: &NoticeContext,
    ) -> Result<Rendered, TemplateError> {
        self.render_named(&self.resolve(kind, locale)?, Value::from(Serde(ctx)))
    }

    /// Renders the template `name` (from [`Templates::resolve`]) with any context value,
    /// such as layers merged with `minijinja::value::merge_maps`, so that what many notices
    /// share is converted once rather than once per notice.
    pub fn render_named(&self, name: &str, ctx: Value) -> Result<Rendered, TemplateError> {
        let template = self.env.get_template(name).map_err(|e| syntax(name, &e))?;
        let text = template.render(ctx).map_err(|e| syntax(name, &e))?;
        split_subject(name, &text)
    }
}

fn syntax(name: &str, e: &minijinja::Error) -> TemplateError {
    let message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError::Syntax { name: name.to_string(), line: e.line().unwrap_or(0), message }
}

/// Checks the name and compiles the template; returns its locale.
fn add_checked(env: &mut Environment<'static>, name: &str, source: String) -> Result<String, TemplateError> {
    let bad_name = || TemplateError::BadName { name: name.to_string() };
    let (locale, file) = name.split_once('/').ok_or_else(bad_name)?;
    let (kind, form) = match file.strip_suffix(".sms.txt") {
        Some(kind) => (kind, TemplateForm::Sms),
        None => (file.strip_suffix(".txt").ok_or_else(bad_name)?, TemplateForm::Full),
    };
    NoticeKind::parse(kind).ok_or_else(bad_name)?;
    Locale::parse(locale).map_err(|_| bad_name())?;
    if source.len() > TEMPLATE_BYTES_MAX {
        return Err(TemplateError::Syntax {
            name: name.into(),
            line: 0,
            message: "longer than 64 KiB".into(),
        });
    }
    if form == TemplateForm::Full && !source.starts_with("Subject:") {
        return Err(TemplateError::NoSubject { name: name.into() });
    }
    env.add_template_owned(name.to_string(), source).map_err(|e| syntax(name, &e))?;
    Ok(locale.to_string())
}

/// SMS templates have no subject line: the whole text is the message.
fn split_subject(name: &str, text: &str) -> Result<Rendered, TemplateError> {
    if name.ends_with(TemplateForm::Sms.suffix()) {
        return Ok(Rendered { subject: String::new(), body: plain_spaces(text.trim()) });
    }
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject =
        first.strip_prefix("Subject:").ok_or_else(|| TemplateError::NoSubject { name: name.into() })?;
    Ok(Rendered { subject: subject.trim().to_string(), body: rest.trim_start_matches('\n').to_string() })
}

/// An SMS writes the no-break spaces CLDR puts in times and numbers ("4:00 PM",
/// "1 234,56") as plain ones, and the en dash of a span ("8:00 AM – 12:00 PM") as a
/// hyphen: a handset shows the same, and any of them would make the whole text UCS-2,
/// 70 characters a segment instead of 160.
fn plain_spaces(text: &str) -> String {
    text.replace(['\u{a0}', '\u{202f}', '\u{2009}'], " ").replace('\u{2013}', "-")
}

/// Which of a kind's templates: the full one (a subject line, then the body; email and
/// webhooks) or the short SMS one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateForm {
    Full,
    Sms,
}

impl TemplateForm {
    fn suffix(self) -> &'static str {
        match self {
            TemplateForm::Full => ".txt",
            TemplateForm::Sms => ".sms.txt",
        }
    }
}

/// The instants an outage notice speaks of, in UTC; [`Instants::written`] writes them as
/// one customer reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Instants {
    pub etr: Option<Timestamp>,
    pub previous_etr: Option<Timestamp>,
    pub next_update_by: Option<Timestamp>,
    pub previous_next_update_by: Option<Timestamp>,
    pub outage_start: Option<Timestamp>,
    pub restored_at: Option<Timestamp>,
}

/// [`Instants`] in one customer's zone and language: the template variables of the same
/// names, and the shorter forms a good writer would use where the context says the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WrittenInstants {
    pub etr: Option<String>,
    pub previous_etr: Option<String>,
    pub next_update_by: Option<String>,
    pub previous_next_update_by: Option<String>,
    pub outage_start: Option<String>,
    pub restored_at: Option<String>,
    /// `etr` and `next_update_by` as an SMS says them ([`crate::cldr::instant_short`]).
    pub etr_short: Option<String>,
    pub next_update_by_short: Option<String>,
    /// `next_update_by`'s time alone ("3:00 PM EST"), when it falls on the day of `etr`,
    /// for a sentence after the one that gave `etr`; none otherwise (say it in full).
    pub next_update_by_time: Option<String>,
    /// The outage from its start to its restoration as one span, the day and zone said
    /// once where they are the same ([`crate::cldr::window`]).
    pub outage_span: Option<String>,
}

impl Instants {
    /// These instants as a customer in `zone` reading `locale` reads them, in a notice
    /// made at `now` (which an SMS's weekday is counted from).
    pub fn written(&self, now: Timestamp, zone: &TimeZone, locale: &Locale) -> WrittenInstants {
        let full = |t: Option<Timestamp>| t.map(|t| format_local(t, zone, locale));
        let short = |t: Option<Timestamp>| t.map(|t| crate::cldr::instant_short(t, now, zone, locale));
        let same_day =
            |a: Timestamp, b: Timestamp| a.to_zoned(zone.clone()).date() == b.to_zoned(zone.clone()).date();
        let next_update_by_time = match (self.next_update_by, self.etr) {
            (Some(next), Some(etr)) if same_day(next, etr) => Some(crate::cldr::time(next, zone, locale)),
            _ => None,
        };
        let span = match (self.outage_start, self.restored_at) {
            (Some(start), Some(end)) => Some(crate::cldr::window(start, end, zone, locale)),
            _ => None,
        };
        WrittenInstants {
            etr: full(self.etr),
            previous_etr: full(self.previous_etr),
            next_update_by: full(self.next_update_by),
            previous_next_update_by: full(self.previous_next_update_by),
            outage_start: full(self.outage_start),
            restored_at: full(self.restored_at),
            etr_short: short(self.etr),
            next_update_by_short: short(self.next_update_by),
            next_update_by_time,
            outage_span: span,
        }
    }
}

impl NoticeContext {
    /// This context with `written`'s instants in place of its own.
    pub fn with_instants(self, written: WrittenInstants) -> NoticeContext {
        NoticeContext {
            etr: written.etr,
            previous_etr: written.previous_etr,
            next_update_by: written.next_update_by,
            previous_next_update_by: written.previous_next_update_by,
            outage_start: written.outage_start,
            restored_at: written.restored_at,
            etr_short: written.etr_short,
            next_update_by_short: written.next_update_by_short,
            next_update_by_time: written.next_update_by_time,
            outage_span: written.outage_span,
            ..self
        }
    }
}

/// An instant as the customer reads it: in their zone, their locale's way, from CLDR
/// ([`crate::cldr::instant`]): "Monday, November 23 at 4:00 PM EST", "lunes, 23 de
/// noviembre a las 22:00 CET". Templates put it where a full date reads well ("by", "el",
/// "le").
pub fn format_local(t: Timestamp, zone: &TimeZone, locale: &Locale) -> String {
    crate::cldr::instant(t, zone, locale)
}

#[cfg(test)]
mod tests {

    #[test]
    fn excerpt_cuts_at_a_word_and_says_so() {
        assert_eq!(excerpt("  short  ", 20), "short");
        assert_eq!(excerpt("I am sorry for the trouble we caused", 20), "I am sorry for...");
        assert_eq!(excerpt("Ñandú Ñandú Ñandú", 12), "Ñandú...");
        assert_eq!(excerpt("abcdefghijklmnop", 8), "abcde...");
        let long = excerpt(&"word ".repeat(1_000), 10_000);
        assert!(long.chars().count() <= EXCERPT_CHARS_MAX && long.ends_with("word..."), "{long}");
    }
    use super::*;

    fn en() -> Locale {
        Locale::parse("en-US").unwrap()
    }

    #[test]
    fn builtin_templates_render_every_kind() {
        let t = Templates::builtin();
        for kind in NoticeKind::ALL {
            let r = t.render(kind, &en(), &NoticeContext::sample()).unwrap();
            assert!(!r.subject.is_empty(), "{kind}");
            assert!(r.body.starts_with("Hello Ana,"), "{kind}: {}", r.body);
            assert!(!r.body.contains("{{"), "{kind}");
        }
        let ack = t.render(NoticeKind::Acknowledgement, &en(), &NoticeContext::sample()).unwrap();
        assert_eq!(ack.subject, "An outage in your area: we are on it");
        assert!(
            ack.body.contains("We expect it back by 4:00 PM EST on Monday, November 23."),
            "{}",
            ack.body
        );
        assert!(ack.body.ends_with("Reference INC-000001"), "{}", ack.body);
    }

    #[test]
    fn lapse_update_says_the_estimate_passed() {
        let ctx = NoticeContext { update_kind: "etr_lapsed".into(), etr: None, ..NoticeContext::sample() };
        let r = Templates::builtin().render(NoticeKind::Update, &en(), &ctx).unwrap();
        assert_eq!(r.subject, "Our estimate has passed, and we are still on it");
        assert!(r.body.contains("We said your service would be back by 2:00 PM EST on Monday, November 23, and it is not back yet."), "{}", r.body);
    }

    #[test]
    fn locale_falls_back_to_language_then_english() {
        // An operator's template for one region wins there; the region's other kinds fall
        // back to the language, a language with none to English.
        let ca = "Subject: Panne ({{ incident_id }})\nBonjour {{ customer_name }}\n".to_string();
        let t = Templates::with_overrides(vec![("fr-CA/acknowledgement.txt".into(), ca)]).unwrap();
        let ctx = NoticeContext::sample();
        let r = t.render(NoticeKind::Acknowledgement, &Locale::parse("fr-CA").unwrap(), &ctx).unwrap();
        assert_eq!(r.subject, "Panne (INC-000001)");
        let r = t.render(NoticeKind::Restored, &Locale::parse("fr-CA").unwrap(), &ctx).unwrap();
        assert_eq!(r.subject, "Votre service est rétabli");
        let r = t.render(NoticeKind::Restored, &Locale::parse("it-IT").unwrap(), &ctx).unwrap();
        assert_eq!(r.subject, "Your service is back");
    }

    #[test]
    fn bad_templates_fail_at_load_with_name_and_line() {
        let errs = Templates::with_overrides(vec![
            ("en/update.txt".into(), "Subject: x\n\nline two\n{{ nonsense_variable }}\n".into()),
            ("en/credit.txt".into(), "Subject: x\n{% if %}\n".into()),
            ("en/poem.txt".into(), "Subject: x\n".into()),
            ("de/restored.txt".into(), "no subject\n".into()),
        ])
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("template en/credit.txt:2: syntax error"), "{text:?}");
        assert!(text[1].starts_with("template en/poem.txt: en/poem.txt is not"), "{text:?}");
        assert_eq!(text[2], "template de/restored.txt: the first line must be \"Subject: ...\"");
        // The unknown variable is caught by the test render once the others are fixed.
        let errs = Templates::with_overrides(vec![(
            "en/update.txt".into(),
            "Subject: x\n\nline two\n{{ nonsense_variable }}\n".into(),
        )])
        .unwrap_err();
        assert!(errs[0].to_string().starts_with("template en/update.txt:4: undefined value"), "{errs:?}");
    }

    #[test]
    fn shipped_sms_fit_in_three_segments_and_spanish_stays_in_gsm7_with_its_shift_table() {
        let templates = Templates::builtin();
        for locale in ["en", "es", "fr", "de", "pt"] {
            let locale = Locale::parse(locale).unwrap();
            for kind in NoticeKind::ALL {
                let name = templates.resolve_for(kind, TemplateForm::Sms, &locale).unwrap();
                assert!(name.ends_with(".sms.txt"), "{name}");
                let sms = templates.render_named(&name, Value::from(Serde(NoticeContext::sample()))).unwrap();
                assert_eq!(sms.subject, "", "{name}");
                let counted = crate::sms::segments_with(&sms.body, &[crate::sms::Language::Spanish]);
                assert!(counted.segments <= 3, "{name}: {counted:?} for {:?}", sms.body);
                match locale.language() {
                    "en" => {
                        assert_eq!(counted.encoding, crate::sms::Encoding::Gsm7, "{name}: {:?}", sms.body)
                    }
                    "es" => assert!(
                        matches!(
                            counted.encoding,
                            crate::sms::Encoding::Gsm7
                                | crate::sms::Encoding::Gsm7Shift(crate::sms::Language::Spanish)
                        ),
                        "{name}: {counted:?} for {:?}",
                        sms.body
                    ),
                    _ => {}
                }
            }
        }
    }

    const CASE_KINDS: [NoticeKind; 4] =
        [NoticeKind::CaseResponse, NoticeKind::CaseOwner, NoticeKind::CaseNote, NoticeKind::CaseFollowUp];

    /// Every shipped locale and form of `kind` rendered with `ctx`: (template name, subject,
    /// body).
    fn render_everywhere(kind: NoticeKind, ctx: &NoticeContext) -> Vec<(String, String, String)> {
        let t = Templates::builtin();
        let mut rendered = Vec::new();
        for locale in ["en", "es", "fr", "de", "pt"] {
            let locale = Locale::parse(locale).unwrap();
            for form in [TemplateForm::Full, TemplateForm::Sms] {
                let name = t.resolve_for(kind, form, &locale).unwrap();
                assert!(name.starts_with(&format!("{locale}/")), "{name} for {locale}");
                let r = t.render_named(&name, Value::from(Serde(ctx))).unwrap();
                rendered.push((name, r.subject, r.body));
            }
        }
        rendered
    }

    #[test]
    fn case_notices_name_the_case_and_its_owner_everywhere() {
        let ctx = NoticeContext::sample();
        for kind in CASE_KINDS {
            for (name, subject, body) in render_everywhere(kind, &ctx) {
                assert!(!body.contains("{{") && !body.contains("{%"), "{name}: {body}");
                assert!(body.contains("CASE-000001") && body.contains("Bea Martin"), "{name}: {body}");
                assert!(!body.contains("INC-000001") && !subject.contains("INC-000001"), "{name}");
                if name.ends_with(".sms.txt") {
                    assert!(body.starts_with("Example Cable"), "{name}: {body}");
                } else {
                    assert!(subject.contains("CASE-000001"), "{name}: {subject}");
                    assert!(body.trim_end().ends_with("Example Cable"), "{name}: {body}");
                }
                // The owner's own words go out wherever they wrote some.
                let words = matches!(kind, NoticeKind::CaseResponse | NoticeKind::CaseNote);
                assert_eq!(body.contains("Crews are on site"), words, "{name}: {body}");
            }
        }
        let owner = Templates::builtin().render(NoticeKind::CaseOwner, &en(), &ctx).unwrap();
        assert_eq!(owner.subject, "Bea Martin now looks after your case (CASE-000001)");
        assert!(owner.body.contains("Bea Martin now looks after your case CASE-000001"), "{}", owner.body);
    }

    #[test]
    fn case_note_opens_and_is_titled_by_its_kind() {
        let apology = NoticeContext::sample();
        let thanks = NoticeContext { note_kind: "thank_you".into(), ..NoticeContext::sample() };
        let sorry = render_everywhere(NoticeKind::CaseNote, &apology);
        let thank = render_everywhere(NoticeKind::CaseNote, &thanks);
        for ((name, sorry_subject, sorry_body), (_, thank_subject, thank_body)) in sorry.iter().zip(&thank) {
            if name.ends_with(".sms.txt") {
                continue;
            }
            assert_ne!(sorry_subject, thank_subject, "{name}");
            assert_ne!(sorry_body, thank_body, "{name}");
            assert!(sorry_body.contains("Crews are on site") && thank_body.contains("Crews are on site"));
        }
        let t = Templates::builtin();
        let subject = |ctx: &NoticeContext| t.render(NoticeKind::CaseNote, &en(), ctx).unwrap().subject;
        assert_eq!(subject(&apology), "We are sorry: a note from Bea Martin (CASE-000001)");
        assert_eq!(subject(&thanks), "Thank you: a note from Bea Martin (CASE-000001)");
        let body = t.render(NoticeKind::CaseNote, &en(), &thanks).unwrap().body;
        assert_eq!(
            body,
            "Hello Ana,\n\nYour case CASE-000001 is fixed. Bea Martin, who looked after it, has written to\n\
             thank you:\n\nCrews are on site\n\nBea Martin\nExample Cable"
        );
    }

    #[test]
    fn follow_up_mentions_the_gift_only_when_there_is_one() {
        let with = NoticeContext::sample();
        let without = NoticeContext { gift: None, ..NoticeContext::sample() };
        let gift_lines = [
            "Thank you for your patience",
            "Gracias por su paciencia",
            "Merci de votre patience",
            "Danke für Ihre Geduld",
            "Obrigado pela paciência",
        ];
        for (ctx, has_gift) in [(&with, true), (&without, false)] {
            for (name, _, body) in render_everywhere(NoticeKind::CaseFollowUp, ctx) {
                assert_eq!(body.contains("premium channels"), has_gift, "{name}: {body}");
                let thanks = gift_lines.iter().any(|l| body.contains(l));
                assert_eq!(thanks, has_gift, "{name}: {body}");
                assert!(!body.contains("\n\n\n"), "{name}: {body:?}");
            }
        }
    }

    /// A notice promises only what the settings keep (issue 17, item 6): no credit "without
    /// a claim" where a policy pays on request, and no word of the amount to a customer no
    /// credit notice reaches. Each shipped language, each form.
    #[test]
    fn notices_promise_no_credit_the_settings_do_not_give() {
        let templates = Templates::builtin();
        let automatic = [
            "automatic",
            "automáticamente",
            "automatiquement",
            "nothing to claim",
            "reclamar nada",
            "Rien à réclamer",
            "automatisch",
            "automaticamente",
            "nichts beantragen",
            "precisa pedir nada",
        ];
        let amount = [
            "with the amount",
            "indicarle el importe",
            "indiquer le montant",
            "den Betrag",
            "informar o valor",
        ];
        let on_request =
            NoticeContext { credit_automatic: false, credit_told: false, ..NoticeContext::sample() };
        let untold = NoticeContext { credit_told: false, ..NoticeContext::sample() };
        for locale in ["en", "es", "fr", "de", "pt"] {
            let locale = Locale::parse(locale).unwrap();
            for kind in
                [NoticeKind::Acknowledgement, NoticeKind::Restored, NoticeKind::Update, NoticeKind::StillDown]
            {
                for form in [TemplateForm::Full, TemplateForm::Sms] {
                    let name = templates.resolve_for(kind, form, &locale).unwrap();
                    let text = |ctx: &NoticeContext| {
                        let r = templates.render_named(&name, Value::from(Serde(ctx))).unwrap();
                        format!("{}\n{}", r.subject, r.body)
                    };
                    let (on_request, untold) = (text(&on_request), text(&untold));
                    for promise in automatic.iter().chain(&amount) {
                        assert!(
                            !on_request.contains(promise),
                            "{name} promises {promise:?} on request:\n{on_request}"
                        );
                    }
                    for promise in amount {
                        assert!(!untold.contains(promise), "{name} promises {promise:?} untold:\n{untold}");
                    }
                }
            }
            // And with the settings that keep them, the promises are made.
            let name = templates.resolve_for(NoticeKind::Restored, TemplateForm::Full, &locale).unwrap();
            let kept = templates.render_named(&name, Value::from(Serde(NoticeContext::sample()))).unwrap();
            assert!(amount.iter().any(|p| kept.body.contains(p)), "{name}: {}", kept.body);
        }
    }

    #[test]
    fn an_sms_with_a_cldr_time_stays_in_gsm7() {
        let t: Timestamp = "2026-11-23T21:00:00Z".parse().unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        let ctx = NoticeContext { etr: Some(format_local(t, &ny, &en())), ..NoticeContext::sample() };
        let templates = Templates::builtin();
        let name = templates.resolve_for(NoticeKind::Acknowledgement, TemplateForm::Sms, &en()).unwrap();
        let sms = templates.render_named(&name, Value::from(Serde(&ctx))).unwrap();
        assert!(sms.body.contains("4:00 PM EST"), "{}", sms.body);
        assert_eq!(crate::sms::segments(&sms.body).encoding, crate::sms::Encoding::Gsm7, "{}", sms.body);
    }

    #[test]
    fn keys_and_local_times() {
        assert_eq!(
            notice_key("C1", "INC-000001", NoticeKind::Update, 3, "sms"),
            "C1/INC-000001/update/3/sms"
        );
        let t: Timestamp = "2026-11-23T21:00:00Z".parse().unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(format_local(t, &ny, &en()), "Monday, November 23 at 4:00\u{202f}PM EST");
        let madrid = TimeZone::get("Europe/Madrid").unwrap();
        let es = Locale::parse("es").unwrap();
        assert_eq!(format_local(t, &madrid, &es), "lunes, 23 de noviembre a las 22:00 CET");
    }

    #[test]
    fn spanish_and_french_ship_every_kind_and_regions_fall_back_to_them() {
        let t = Templates::builtin();
        assert_eq!(t.locales().collect::<Vec<_>>(), ["de", "en", "es", "fr", "pt"]);
        for (locale, greeting, kind_name) in [
            ("es-MX", "Hola, Ana:", "es/"),
            ("fr-CA", "Bonjour Ana,", "fr/"),
            ("de-DE", "Guten Tag Ana,", "de/"),
            ("pt-BR", "Olá, Ana,", "pt/"),
            ("nl-NL", "Hello Ana,", "en/"),
        ] {
            let locale = Locale::parse(locale).unwrap();
            for kind in NoticeKind::ALL {
                assert!(t.resolve(kind, &locale).unwrap().starts_with(kind_name), "{kind} in {locale}");
                let r = t.render(kind, &locale, &NoticeContext::sample()).unwrap();
                assert!(r.body.starts_with(greeting), "{kind} in {locale}: {}", r.body);
                assert!(!r.body.contains("{{") && !r.subject.is_empty(), "{kind} in {locale}");
            }
        }
        let es = Locale::parse("es").unwrap();
        let mut ctx = NoticeContext::sample();
        ctx.etr = None;
        let ack = t.render(NoticeKind::Acknowledgement, &es, &ctx).unwrap();
        assert!(ack.body.contains("Todavía no sabemos cuándo volverá"), "{}", ack.body);
    }
}
