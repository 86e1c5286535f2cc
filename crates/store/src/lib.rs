//! Storage for amends: one [`Store`] trait, two backends.
//!
//! SQLite ([`sqlite::SqliteStore`]) is the embedded default: a file created on first
//! run, migrations applied on open. PostgreSQL ([`postgres::PgStore`]) is selected by a
//! `postgres://` URL. Each backend owns its migrations (`migrations/sqlite`,
//! `migrations/postgres`). Queries are runtime queries, so building needs no database.
//!
//! The rows here are plain data: the store knows nothing about policies, templates or
//! HTTP. Instants are [`jiff::Timestamp`] and are stored as BIGINT unix microseconds in
//! both backends (exact, portable, fast to bulk-write).
//!
//! Bulk paths (`import_book`, `enqueue_notices`, `append_credits`) sort their rows by
//! their unique key before writing, because index order dominates write speed, and write
//! in one transaction: all or nothing.

use amends_core::appointment::AppointmentStatus;
use amends_core::book::CustomerStatus;
use amends_core::case::Status as CaseStatus;
use amends_core::id::{CaseId, CustomerId, IncidentId};
use amends_core::incident::{ByLocale, IncidentState};
use amends_core::preferences::Channel;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub mod background;
mod common;
mod hold;
mod inline;
pub use hold::{HOLD_CHECK_TIMEOUT, Hold};
pub mod postgres;
mod sql;
pub mod sqlite;

mod open;
mod packed;
mod redact;
mod shared;
pub use open::{BenchedStore, DatabaseUrl, open, open_benched, open_with};
pub use redact::redact_password;

/// Largest number of rows written per statement batch in bulk paths.
pub const BULK_BATCH_ROWS_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "credit {key} already exists with {existing_minor} {existing_currency}; refusing to record it again as {new_minor} {new_currency}"
    )]
    CreditConflict {
        key: String,
        existing_minor: i64,
        existing_currency: String,
        new_minor: i64,
        new_currency: String,
    },
    #[error("incident {0} not found")]
    IncidentNotFound(String),
    #[error("incident {0} is already resolved")]
    AlreadyResolved(String),
    #[error("bad database url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("case {0} not found")]
    CaseNotFound(String),
    #[error("case {case_id} changed meanwhile: expected version {expected}, found {found}; read it again")]
    CaseConflict { case_id: String, expected: i64, found: i64 },
    /// A write refused for what the store holds: a booking its `build` refused (the
    /// message as given), a new customer whose plan or element is not in the book.
    #[error("{0}")]
    Refused(String),
    #[error("appointment {0} not found")]
    AppointmentNotFound(String),
    #[error("appointment {0} exists already")]
    AppointmentExists(String),
    #[error(
        "appointment {reference} changed meanwhile: expected version {expected}, found {found}; read it again"
    )]
    AppointmentConflict { reference: String, expected: i64, found: i64 },
    /// An update that would change what the booking fixed (customer, technician, window,
    /// booked_at, rebooked_from): moving a visit is a new booking, checked as one.
    #[error("appointment {reference}: {field} is fixed at booking; book again (rebooked_from) to change it")]
    AppointmentFixed { reference: String, field: &'static str },
    #[error("customer {0} exists already")]
    CustomerExists(String),
    #[error("customer {0} not found")]
    CustomerNotFound(String),
    #[error("customer {customer_id} is already cancelled{}", earlier_cancellation(.reference, .at))]
    AlreadyCancelled { customer_id: String, reference: Option<String>, at: Option<Timestamp> },
    #[error("survey {0} not found")]
    SurveyNotFound(String),
}

/// ` (CAN-000001, requested at ...)`: the cancellation an AlreadyCancelled names, if any.
fn earlier_cancellation(reference: &Option<String>, at: &Option<Timestamp>) -> String {
    match (reference, at) {
        (Some(reference), Some(at)) => format!(" ({reference}, requested at {at})"),
        (Some(reference), None) => format!(" ({reference})"),
        (None, _) => " (no cancellation on record: the book says so)".to_owned(),
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRow {
    pub plan_id: String,
    pub name: String,
    pub monthly_price_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementRow {
    pub element_id: String,
    /// `None` for a root.
    pub parent_id: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRow {
    pub customer_id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: String,
    pub timezone: String,
    pub plan_id: String,
    pub element_id: String,
    pub device_id: Option<String>,
    pub billing_day: i16,
    pub active_since: Timestamp,
    /// Stored as `active` or `cancelled`.
    pub status: CustomerStatus,
    /// `residential`, `business`, ...: lowercase, at most 32 bytes.
    pub segment: String,
    /// `GB-SCT`, `US-NY`, `DE`, ...; `None` when not known.
    pub jurisdiction: Option<String>,
    /// The attributes policies read, as a JSON object of scalars; `None` when none.
    pub attributes: Option<String>,
}

/// A provider's book: what `import` loads and what impact is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookRows {
    pub plans: Vec<PlanRow>,
    pub elements: Vec<ElementRow>,
    pub customers: Vec<CustomerRow>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookCounts {
    pub plans: u64,
    pub elements: u64,
    pub customers: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRow {
    /// Assigned by the store on insert (`INC-000001`, ...).
    pub incident_id: IncidentId,
    pub element_ids: Vec<String>,
    pub cause: String,
    /// The cause in other languages (locale tag -> text).
    pub causes: ByLocale,
    /// Stored as its word: `detected`, `acknowledged`, ... (a word it may not hold is
    /// `Corrupt` on reading).
    pub state: IncidentState,
    pub etr: Option<Timestamp>,
    pub next_update_by: Option<Timestamp>,
    /// When service was lost: the outage's start, which may be before it was declared
    /// (the declaration is the timeline's first entry). Read as `declared_at` too, its
    /// earlier name (the column keeps it).
    #[serde(alias = "declared_at")]
    pub started_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Set once the credit step has written every credit of this incident.
    pub credited_at: Option<Timestamp>,
    /// The operator's facts of the outage for policies (`event.attributes`), kept as the
    /// text of a JSON object of scalars and shown as that object; `None` when none.
    #[serde(default, with = "json_text")]
    pub attributes: Option<String>,
}

/// A column holding JSON text, read and written as the JSON it holds.
mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        let value: Option<serde_json::Value> = text.as_deref().and_then(|t| serde_json::from_str(t).ok());
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<serde_json::Value>::deserialize(d)?.map(|v| v.to_string()))
    }
}

/// An incident a machine opens, under its source's key, with its declaration.
#[derive(Debug, Clone)]
pub struct SourcedIncident {
    pub source_key: String,
    pub incident: IncidentRow,
    pub declared: NewUpdate,
}

/// An open incident detection widened: it now covers `element_ids`, its public cause
/// becomes `cause` where it still reads `was` (what detection wrote before; an operator's
/// own cause stays), and the incidents `merged` are part of it from now on (no longer
/// listed as open; their customers move over later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    pub incident_id: IncidentId,
    pub element_ids: Vec<String>,
    pub cause: String,
    pub was: String,
    pub merged: Vec<String>,
}

/// An alert an incident of the Alertmanager receiver gathered: the one that opened it, or
/// one that joined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentAlert {
    /// `alertmanager:<fingerprint>[/<occurrence>]`.
    pub source_key: String,
    pub incident_id: IncidentId,
    /// When the alert ended; `None` while it fires.
    pub resolved_at: Option<Timestamp>,
}

/// An alert the receiver could not act on, by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredAlert {
    pub fingerprint: String,
    /// Its labels, as a JSON object.
    pub labels: String,
    /// Why it was ignored (the last time).
    pub reason: String,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
    /// How many times it came.
    pub times: u64,
}

/// An incident a machine opened, under its source's deterministic key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSource {
    /// `telemetry:<element>:<start>`, `alertmanager:<fingerprint>`, ...
    pub source_key: String,
    pub incident_id: IncidentId,
    /// Set when detection merged it into another incident.
    pub merged_into: Option<String>,
}

/// How far the notices of one impact have gone. Only ever raised.
pub mod notified {
    pub const NOTHING: i16 = 0;
    /// The acknowledgement is queued.
    pub const ACKNOWLEDGED: i16 = 1;
    /// The closing notice (restored, or still down with a follow-up) is queued too.
    pub const CLOSED: i16 = 2;
}

/// One customer in one detected incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactRow {
    pub incident_id: IncidentId,
    pub customer_id: CustomerId,
    /// No telemetry device: presumed out for the incident's whole span.
    pub presumed: bool,
    pub affected_at: Timestamp,
    /// When their own service came back; `None` while it is out.
    pub back_at: Option<Timestamp>,
    /// Still offline when the incident was resolved: listed for follow-up.
    pub follow_up: bool,
    /// Their offline intervals within the incident (final once it is resolved).
    pub downtime: Vec<(Timestamp, Timestamp)>,
    /// See [`notified`].
    pub notified: i16,
}

/// One impact's `notified` raised to `stage` (see [`Store::raise_notified`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRaise<'a> {
    pub incident_id: &'a str,
    pub customer_id: &'a str,
    pub stage: i16,
}

/// One device event in the durable log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEventRow {
    pub device_id: String,
    pub at: Timestamp,
    /// `online` or `offline`.
    pub state: String,
    pub reason: Option<String>,
}

/// One entry of an incident's timeline. `seq` starts at 0 (the declaration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRow {
    pub incident_id: IncidentId,
    pub seq: i64,
    pub at: Timestamp,
    /// `declared`, `update`, `etr_lapsed`, `update_overdue` or `resolved`.
    pub kind: String,
    /// The incident state after this update.
    pub state: IncidentState,
    pub etr: Option<Timestamp>,
    pub next_update_by: Option<Timestamp>,
    pub message: String,
    /// The message in other languages (locale tag -> text).
    pub messages: ByLocale,
    /// Deterministic key of an automatic update (e.g. `etr_lapsed:<etr>`), unique per
    /// incident, so the watchdog can run any number of times and append it once.
    pub trigger_key: Option<String>,
    /// Notices for this update have all been written to the outbox.
    pub fanned_out: bool,
}

/// What `append_update` needs; the store assigns `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpdate {
    pub at: Timestamp,
    pub kind: String,
    pub state: IncidentState,
    pub etr: Option<Timestamp>,
    pub next_update_by: Option<Timestamp>,
    pub message: String,
    /// The message in other languages (locale tag -> text).
    pub messages: ByLocale,
    pub trigger_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended {
        seq: i64,
    },
    /// An update with the same `trigger_key` exists already; nothing was written.
    DuplicateTrigger,
}

/// Where a notice is on its way, as the outbox keeps it (the same words in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    /// Waiting for its time (or its turn, or the end of quiet hours).
    Queued,
    /// Claimed by a dispatcher, under a lease.
    Sending,
    /// Handed to the channel's provider.
    Sent,
    /// The provider reported it delivered.
    Delivered,
    /// Given up on: a permanent failure, or retries exhausted.
    Failed,
    /// Never to be sent, for its `reason`: consent, coalesced, capped, quarantined.
    Suppressed,
}

impl NoticeStatus {
    pub const ALL: [NoticeStatus; 6] = [
        NoticeStatus::Queued,
        NoticeStatus::Sending,
        NoticeStatus::Sent,
        NoticeStatus::Delivered,
        NoticeStatus::Failed,
        NoticeStatus::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Queued => "queued",
            NoticeStatus::Sending => "sending",
            NoticeStatus::Sent => "sent",
            NoticeStatus::Delivered => "delivered",
            NoticeStatus::Failed => "failed",
            NoticeStatus::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl std::fmt::Display for NoticeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rendered notice in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRow {
    /// `customer/incident/kind/seq`: unique; a second insert of the same key is a no-op.
    pub key: String,
    pub customer_id: CustomerId,
    /// What the notice is about: an incident's id, or the reference of the case, visit,
    /// cancellation or survey it belongs to. The API calls it `incident_id`, as it always
    /// has; the store and the code call it what it is.
    #[serde(rename = "incident_id")]
    pub about: String,
    pub kind: String,
    pub seq: i64,
    pub channel: Channel,
    pub recipient: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub status: NoticeStatus,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// Why it is held (`quiet_hours`, while queued) or suppressed (`consent`,
    /// `coalesced`, `capped`, `quarantined`).
    pub reason: Option<String>,
    /// The channel's own id for the message, to match its delivery receipts.
    pub provider_id: Option<String>,
    /// SHA-256 (hex) of subject and body, set when the content was not kept.
    pub content_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent {
        at: Timestamp,
        provider_id: Option<String>,
    },
    Retry {
        at: Timestamp,
        error: String,
        next_attempt_at: Timestamp,
    },
    Failed {
        at: Timestamp,
        error: String,
    },
    /// Not sent, and never will be (the contact point is quarantined, ...).
    Suppressed {
        at: Timestamp,
        reason: String,
    },
}

/// One step of a notice's status history after it was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeEventRow {
    pub key: String,
    pub at: Timestamp,
    /// `held`, `retry`, `sent`, `delivered`, `failed` or `suppressed`.
    pub status: String,
    pub detail: Option<String>,
}

/// What a channel reported about a message after it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelReport {
    /// The handset or mailbox has it (an SMS delivery receipt).
    Delivered,
    /// It did not arrive (an undeliverable receipt, a bounce), with the channel's words.
    Failed { detail: String },
}

/// Which message a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget<'a> {
    /// The notice key (carried by an email's headers, so bounces name it).
    Key(&'a str),
    /// The channel's own message id (an SMS gateway's receipts name it).
    Provider { channel: &'a str, provider_id: &'a str },
}

/// A page of the delivery record; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeFilter {
    pub customer_id: Option<CustomerId>,
    /// Notices about this incident, case, visit, cancellation or survey.
    pub about: Option<String>,
    pub status: Option<String>,
    /// Only keys after this one: pass a page's last key to get the next page.
    pub after_key: Option<String>,
    pub limit: u32,
}

/// What volume control did to an incident's queued notices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VolumeReport {
    /// Superseded by a later notice to the same customer on the same channel.
    pub coalesced: u64,
    /// Over the per-customer cap of updates for the incident.
    pub capped: u64,
}

/// A contact point that failed for good at least once since its last success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPointRow {
    pub channel: String,
    pub recipient: String,
    pub hard_failures: i32,
    pub quarantined_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub updated_at: Timestamp,
}

/// A customer's notice preferences, as stored (the document is the core's to parse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencesRow {
    pub customer_id: CustomerId,
    pub doc: String,
    pub updated_at: Timestamp,
}

/// One entry of the append-only credit ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRow {
    /// `customer/source_event/policy/version`: unique.
    pub key: String,
    pub customer_id: CustomerId,
    /// The event the credit is for (an incident id).
    pub source_event: String,
    pub policy_id: String,
    pub policy_version: i64,
    pub amount_minor: i64,
    pub currency: String,
    /// The statement the credit lands on: the date of the customer's next bill.
    pub statement: String,
    /// The arithmetic in plain words.
    pub explanation: String,
    /// The lines as JSON, for auditors and the API.
    pub lines_json: String,
    pub created_at: Timestamp,
}

/// The two append-only tables of keyed amounts, written the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ledger {
    /// The credit ledger.
    Credits,
    /// Amounts a policy pays only on request, until claimed.
    OnRequestOffers,
}

impl Ledger {
    pub(crate) fn table(self) -> &'static str {
        match self {
            Ledger::Credits => "credits",
            Ledger::OnRequestOffers => "on_request_offers",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditWrite {
    pub inserted: u64,
    /// Rows whose key existed with the same amount and currency: re-runs.
    pub unchanged: u64,
}

/// Which credits to read, in key order, optionally one page at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditFilter {
    pub customer_id: Option<CustomerId>,
    pub source_event: Option<String>,
    /// Only keys after this one: pass a page's last key to get the next page.
    pub after_key: Option<String>,
    /// At most this many rows; `None` reads them all (the CLI export does).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeCount {
    pub kind: String,
    pub status: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    /// What operators see and type: the first 12 hex digits of `token_hash` (unique; the
    /// token cannot be recovered from it).
    pub token_id: String,
    /// `admin`, `operator`, `read`, or `agent` (a person who owns cases: see `agent_id`).
    pub scope: String,
    pub label: String,
    pub created_at: Timestamp,
    /// For an `agent` token, the agent it speaks for; `None` for the other scopes.
    pub agent_id: Option<String>,
    /// From this instant on the token is refused; `None`: it never expires.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked (the first time: revoking again changes nothing).
    pub revoked_at: Option<Timestamp>,
    /// When it was last let through, to within a minute (see [`Store::record_token_use`]).
    pub last_used_at: Option<Timestamp>,
}

/// A person who owns cases (issue 6): an agent, a lead or an admin, and the lead an
/// escalation of their cases goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub agent_id: String,
    pub name: String,
    /// `agent`, `lead` or `admin`.
    pub role: String,
    pub lead_id: Option<String>,
    /// An inactive agent keeps their history but may not be given cases.
    pub active: bool,
    pub updated_at: Timestamp,
}

/// A case as listed and filtered: what its event log folds to, kept beside the log and
/// rewritten with every append, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// Assigned by the store on open: `CASE-000001`, ...
    pub case_id: CaseId,
    pub customer_id: CustomerId,
    pub owner: String,
    /// Stored as `open`, `paused`, `fixed` or `closed`.
    pub status: CaseStatus,
    /// `contact`, `incident`, `appointment` or `manual`.
    pub source: String,
    /// The incident or appointment the case came from, if any.
    pub source_id: Option<String>,
    /// For a case opened by amends itself: the deterministic key of what opened it
    /// (`incident:INC-000001:C1`, ...), unique, so a re-run opens nothing twice.
    pub source_key: Option<String>,
    pub first_contact_at: Timestamp,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// Events in the log; the next event's `seq`.
    pub version: i64,
    /// Events whose notices to the customer are queued (at most `version`); set by
    /// `mark_case_notified`, never by an append.
    pub notified_version: i64,
    /// When the fix that stands was verified; `None` while unfixed (or re-opened).
    pub fixed_at: Option<Timestamp>,
    /// Whether the follow-up after the fix is recorded.
    pub followed_up: bool,
}

/// One event of a case's log: the core's `CaseEvent` as JSON, with the columns that
/// queries need beside it. Append-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEventRow {
    pub case_id: CaseId,
    /// From 0, without gaps.
    pub seq: i64,
    pub at: Timestamp,
    pub by: String,
    /// The event's type (`opened`, `first_response`, `handover_offered`, ...).
    pub kind: String,
    /// The whole event, as the core serializes it.
    pub doc: String,
}

/// A page of incidents, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentPage {
    /// Only incidents not resolved and not merged into a wider one.
    pub open_only: bool,
    /// Only incidents declared before this one: pass a page's last id to get the next
    /// page. An id that is not an incident gives an empty page.
    pub before_id: Option<String>,
    pub limit: u32,
}

/// A page of cases; every field narrows it. Ordered by case id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub customer_id: Option<CustomerId>,
    pub owner: Option<String>,
    pub status: Option<String>,
    /// Only cases not `closed`.
    pub open_only: bool,
    /// Only ids after this one: pass a page's last id to get the next page.
    pub after_id: Option<String>,
    pub limit: u32,
}

/// A customer getting in touch, as recorded (issue 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// Assigned by the store; ignored on insert.
    pub contact_id: i64,
    pub customer_id: CustomerId,
    pub at: Timestamp,
    /// How they got in touch: `phone`, `chat`, `email`, ...
    pub channel: String,
    pub summary: String,
    /// The person who took it.
    pub by: String,
    /// The open incident affecting them it was attached to, if any.
    pub incident_id: Option<IncidentId>,
    /// Whether a notice about that incident had reached them before they got in touch.
    pub told_before: bool,
}

/// How far an incident's notices reached: customers with at least one sent notice, and
/// when the first of them and the last of them first heard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeReach {
    pub customers_told: u64,
    pub first_sent_at: Option<Timestamp>,
    /// The latest of each told customer's first sent notice: everyone told had heard by then.
    pub all_told_by: Option<Timestamp>,
}

/// What opening a case under a source key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOpening {
    Opened(String),
    /// A case was already opened under that source key: its id; nothing was written.
    Existing(String),
}

/// A booked visit (issue 6): the core's `appointment::Appointment`, flattened, plus who
/// owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentRow {
    /// The key, `APT-00000427`: made by the app from the number `book_appointment` hands
    /// its `build`; the store keeps that number beside it and orders lists by it.
    pub reference: String,
    pub customer_id: CustomerId,
    pub technician_id: Option<String>,
    /// The person (agent id) who owns the visit: a failure opens a case for them.
    pub owner: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// Stored as `booked`, `arrived`, `completed`, `cancelled_by_customer`,
    /// `cancelled_by_provider` or `missed`.
    pub status: AppointmentStatus,
    pub booked_at: Timestamp,
    pub arrived_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    /// `window_start - cancelled_at` in whole seconds (negative if after the start).
    pub cancel_notice_secs: Option<i64>,
    pub missed_at: Option<Timestamp>,
    pub rebooked_from: Option<String>,
    /// When amends finished checking the visit for a failure after its window (and grace)
    /// or after a provider cancellation, and wrote every effect of the failure if there
    /// was one. `None` until then; once set, never cleared.
    pub checked_at: Option<Timestamp>,
    /// Bumped by every update (1 once booked): optimistic concurrency.
    pub version: i64,
}

/// What `book_appointment` calls with the number it took and the technician's live
/// appointments and holds: the row to insert, or why the booking is refused.
///
/// The lifetimes are spelled out because `async_trait` would otherwise pin those of the
/// slices, which must be any; the type is the same as `dyn Fn(u64, &[AppointmentRow],
/// &[HoldRow]) -> Result<AppointmentRow, String> + Send + Sync + 'a`.
/// What [`Store::cancel_account`] calls inside its transaction: with the number the
/// `cancellation` counter allocated and the customer as stored, the cancellation to
/// record, or why not (then nothing is written and the number is not used).
pub type BuildCancellation<'a> =
    dyn for<'s> Fn(u64, &'s CustomerRow) -> Result<CancellationRow, String> + Send + Sync + 'a;

pub type BuildAppointment<'a> = dyn for<'s> Fn(u64, &'s [AppointmentRow], &'s [HoldRow]) -> Result<AppointmentRow, String>
    + Send
    + Sync
    + 'a;

/// One person's action on a visit: what the change that made `version` was, and who.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentActionRow {
    pub reference: String,
    pub version: i64,
    /// `arrive`, `complete`, `cancel_by_customer` or `cancel_by_provider`.
    pub action: String,
    /// The agent id of whoever did it.
    pub actor: String,
    pub at: Timestamp,
}

/// A slot kept for the rebooking of the failed appointment `for_reference` until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRow {
    pub for_reference: String,
    pub technician_id: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub until: Timestamp,
}

/// A page of appointments, by reference number; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub customer_id: Option<CustomerId>,
    pub technician_id: Option<String>,
    pub status: Option<String>,
    /// Only appointments after this one: pass a page's last reference to get the next
    /// page (a reference not on record gives an empty page).
    pub after_reference: Option<String>,
    pub limit: u32,
}

/// Appointments whose windows ended in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentCounts {
    /// Windows ending in the period, except those the customer cancelled.
    pub ended: u64,
    /// Of those, the ones missed (`missed`).
    pub missed: u64,
    /// Provider cancellations with less than a day's notice, windows ending in the period.
    pub late_cancelled: u64,
}

/// How a customer signed up (issue 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupRow {
    pub customer_id: CustomerId,
    pub at: Timestamp,
    /// `api` or `cli`.
    pub channel: String,
    /// Requests the customer made.
    pub steps: i32,
    /// The clicks it took on the provider's own pages, as they counted them (the links and
    /// buttons pressed; answers to optional questions are not counted); `None`: not
    /// reported.
    pub clicks: Option<i32>,
}

/// A customer's cancellation of their account (issue 6). Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRow {
    /// Assigned by the store: `CAN-000001`, ...; ignored on insert.
    pub reference: String,
    pub customer_id: CustomerId,
    pub requested_at: Timestamp,
    pub effective_at: Timestamp,
    /// `api` or `cli`.
    pub channel: String,
    /// `None`: skipped.
    pub reason: Option<String>,
    /// The id of the one retention offer shown, if any.
    pub retention_offer: Option<String>,
    /// > 0 the customer owes; < 0 a refund.
    pub final_bill_minor: i64,
    pub currency: String,
    /// JSON: the preview with its explained lines (read back byte for byte).
    pub final_bill: String,
    /// Requests the customer made.
    pub steps: i32,
    /// JSON array: every step with its time.
    pub audit: String,
    /// The clicks it took (links and buttons pressed, as for a sign-up's); `None`: not
    /// counted (a request through the API or the CLI that did not report it).
    pub clicks: Option<i32>,
}

/// The effort of signing up and of leaving, over every one on record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneySteps {
    pub signups: u64,
    pub signup_steps_max: i32,
    pub signup_steps_total: u64,
    pub cancellations: u64,
    pub cancel_steps_max: i32,
    pub cancel_steps_total: u64,
    /// Sign-ups whose clicks were reported, and the most any took (`None`: none reported).
    pub signups_clicked: u64,
    pub signup_clicks_max: Option<i32>,
    /// Cancellations whose clicks were counted, and the most any took.
    pub cancellations_clicked: u64,
    pub cancel_clicks_max: Option<i32>,
}

/// One survey decision (issue 6): recorded once per subject, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyDecisionRow {
    /// The key: the core's `survey::Subject::key()`.
    pub subject_key: String,
    pub customer_id: CustomerId,
    /// The core's Subject as JSON (read back byte for byte).
    pub subject: String,
    pub case_id: Option<CaseId>,
    pub incident_id: Option<IncidentId>,
    /// `send`, `not_sampled` or `suppressed`.
    pub decision: String,
    /// Why it was suppressed.
    pub reason: Option<String>,
    pub decided_at: Timestamp,
    /// Assigned by the store to a `send` decision: `SUR-000001`, ...; ignored on insert.
    pub survey_id: Option<String>,
    pub send_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub scale: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
    pub score: Option<i16>,
}

/// A page of survey decisions, by subject key; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurveyFilter {
    pub decision: Option<String>,
    /// Only surveys answered.
    pub answered_only: bool,
    /// Only keys after this one: pass a page's last key to get the next page.
    pub after_key: Option<String>,
    pub limit: u32,
}

/// A customer whose service came back with an incident's resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredRow {
    pub incident_id: IncidentId,
    pub customer_id: CustomerId,
    pub resolved_at: Timestamp,
}

/// The moments of a case that recovery metrics are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseTiming {
    pub case_id: CaseId,
    /// `contact`, `incident`, `appointment` or `manual`.
    pub source: String,
    pub first_contact_at: Timestamp,
    pub opened_at: Timestamp,
    /// The time of the case's first `first_response` event, if it has one.
    pub first_response_at: Option<Timestamp>,
    pub fixed_at: Option<Timestamp>,
}

/// Most rows `live_appointments_between` and `live_holds` return. Both are read whole by
/// planning and booking code, so they have no page; this bound is far above any day's
/// plan (and a bound reached is logged).
pub const LIVE_ROWS_MAX: u32 = 100_000;

/// The whole storage interface: one trait per aggregate, with what belongs to the
/// connection itself (its backend, closing, process locks). A caller that needs one
/// aggregate takes that trait (`&dyn LedgerStore`; a `&dyn Store` coerces to it); one that
/// needs the lot takes `Store`. Each backend implements every trait; the benchmark's floor
/// ([`BenchFloor`]) stands apart, out of the product's interface.
#[async_trait]
pub trait Store:
    BookStore
    + IncidentStore
    + ImpactStore
    + DeviceLogStore
    + OutboxStore
    + PreferenceStore
    + AccessStore
    + LedgerStore
    + CaseStore
    + VisitStore
    + AccountStore
    + SurveyStore
    + ReportStore
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Closes every connection and waits until they are closed: for SQLite, the last one
    /// checkpoints the write-ahead log into the database file. Until this returns, the
    /// files may still change (a copy taken before then can be torn). Later calls fail.
    async fn close(&self);

    /// Takes the lock `name` for this process if no other process holds it; `None` if one
    /// does. It is held until the [`Hold`] is dropped or the process dies.
    async fn try_hold(&self, name: &str) -> Result<Option<Hold>>;

    /// Everything a customer's own page shows, read together: their preferences, the open
    /// incidents, their own impacts, the newest `rows_max` notices they were or will be
    /// sent (and how many there are), their credits and on-request offers, and at most
    /// `rows_max` of their visits. Each read gives what its own method gives; SQLite makes
    /// them all in one read transaction on the caller's thread (see `inline.rs`).
    async fn customer_reads(&self, customer_id: &str, rows_max: u32) -> Result<CustomerReads> {
        let mine = CreditFilter { customer_id: Some(customer_id.into()), ..CreditFilter::default() };
        let visits = AppointmentFilter {
            customer_id: Some(customer_id.into()),
            limit: rows_max,
            ..Default::default()
        };
        let (
            book_version,
            preferences,
            open_incidents,
            open_sources,
            impacts,
            notices,
            credits,
            offers,
            appointments,
        ) = tokio::try_join!(
            self.book_version(),
            self.preferences(customer_id),
            self.incidents(true),
            self.open_sources(),
            self.customer_impacts(customer_id),
            self.notices_for_customer(customer_id),
            self.credits(&mine),
            self.on_request_offers(customer_id),
            self.appointments(&visits),
        )?;
        let (notices, notices_told) = newest_told(notices, rows_max);
        Ok(CustomerReads {
            book_version,
            preferences,
            open_incidents,
            open_sources,
            impacts,
            notices,
            notices_told,
            credits,
            offers,
            appointments,
        })
    }
}

/// What [`Store::customer_reads`] reads for a customer's page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerReads {
    /// The book's version when these were read (as [`BookStore::book_version`]).
    pub book_version: i64,
    pub preferences: Option<PreferencesRow>,
    /// Every open incident, whoever it affects (as [`IncidentStore::incidents`] lists them).
    pub open_incidents: Vec<IncidentRow>,
    /// Where each open incident came from (as [`IncidentStore::sources_of`] gives them).
    pub open_sources: Vec<IncidentSource>,
    /// The customer's own impacts (as [`ImpactStore::customer_impacts`]).
    pub impacts: Vec<ImpactRow>,
    /// The newest notices they were or will be sent (never one suppressed or failed),
    /// newest first, at most the `rows_max` asked for.
    pub notices: Vec<ToldNotice>,
    /// How many notices they were or will be sent in all.
    pub notices_told: u64,
    pub credits: Vec<CreditRow>,
    pub offers: Vec<CreditRow>,
    pub appointments: Vec<AppointmentRow>,
}

/// The newest `rows_max` of `notices` that were or will be sent, newest first, and how
/// many of them there are: what [`CustomerReads`] holds.
pub fn newest_told(mut notices: Vec<NoticeRow>, rows_max: u32) -> (Vec<ToldNotice>, u64) {
    notices.retain(|n| !matches!(n.status, NoticeStatus::Suppressed | NoticeStatus::Failed));
    notices.sort_by(|a, b| (b.created_at, &b.key).cmp(&(a.created_at, &a.key)));
    let told = notices.len() as u64;
    notices.truncate(rows_max as usize);
    (notices.into_iter().map(ToldNotice::from).collect(), told)
}

/// A notice as a customer's page lists it: what it said, on which channel, and when. Only
/// these are read for a page (a notice row has twenty columns).
#[derive(Debug, Clone, PartialEq)]
pub struct ToldNotice {
    pub kind: String,
    pub channel: Channel,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

impl From<NoticeRow> for ToldNotice {
    fn from(n: NoticeRow) -> Self {
        ToldNotice {
            kind: n.kind,
            channel: n.channel,
            subject: n.subject,
            body: n.body,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// The book: plans, customers and the topology, imported whole and read back.
#[async_trait]
pub trait BookStore: Send + Sync {
    /// Upserts every row by id in ONE transaction (all or nothing). Calls `progress` with
    /// the number of rows written so far (any row kind) at most once per batch.
    async fn import_book(&self, book: &BookRows, progress: &(dyn Fn(u64) + Sync)) -> Result<BookCounts>;

    async fn load_book(&self) -> Result<BookRows>;

    /// A number every `import_book` increases, in its own transaction: a process holding
    /// the book in memory compares it to know whether another process changed the book.
    async fn book_version(&self) -> Result<i64>;

    async fn book_counts(&self) -> Result<BookCounts>;

    async fn customer(&self, customer_id: &str) -> Result<Option<CustomerRow>>;
}

/// Incidents and their timelines: declared, updated, fanned out, resolved, credited.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Inserts the incident and its `declared` update (seq 0) in one transaction and
    /// returns the id the store assigned (`INC-000001`, ...).
    async fn insert_incident(&self, incident: &IncidentRow, declared: &NewUpdate) -> Result<String>;

    async fn incident(&self, incident_id: &str) -> Result<Option<IncidentRow>>;

    async fn incidents(&self, open_only: bool) -> Result<Vec<IncidentRow>>;

    /// One page of incidents, newest first (declared latest first), for a reader who wants
    /// what is happening now without reading every incident there ever was.
    async fn incidents_page(&self, page: &IncidentPage) -> Result<Vec<IncidentRow>>;

    /// In one transaction: refuses (AlreadyResolved) if the incident is resolved,
    /// returns DuplicateTrigger if `trigger_key` exists for the incident, else assigns
    /// the next seq, inserts the update and sets the incident's state, etr,
    /// next_update_by (and resolved_at = update.at when state is `resolved`).
    async fn append_update(&self, incident_id: &str, update: &NewUpdate) -> Result<AppendOutcome>;

    async fn updates(&self, incident_id: &str) -> Result<Vec<UpdateRow>>;

    /// Replaces the incident's public cause (an operator's correction) and its translations.
    async fn set_cause(&self, incident_id: &str, cause: &str, causes: &ByLocale) -> Result<()>;

    /// Replaces the incident's elements (detection widened it).
    async fn set_elements(&self, incident_id: &str, element_ids: &[String]) -> Result<()>;

    /// Applies each widening to its incident, if still open, in order, in one transaction
    /// (a storm widens hundreds at once); a replaced cause loses its translations, and each
    /// merged incident is marked as merged into it (as `mark_merged`).
    async fn widen_incidents(&self, widenings: &[Widening]) -> Result<()>;

    /// Updates whose notices have not all been written, oldest first.
    async fn pending_fanout(&self) -> Result<Vec<UpdateRow>>;

    async fn mark_fanned_out(&self, incident_id: &str, seq: i64) -> Result<()>;

    /// Resolved incidents whose credit step has not finished, by resolved_at then id.
    async fn uncredited_resolved(&self) -> Result<Vec<IncidentRow>>;

    async fn mark_credited(&self, incident_id: &str, at: Timestamp) -> Result<()>;
}

/// What machines opened: incidents by source key, the Alertmanager's alerts, and each
/// customer's impact in a detected incident.
#[async_trait]
pub trait ImpactStore: Send + Sync {
    /// Like `insert_incident`, under `source_key`: if an incident exists under that key,
    /// writes nothing and returns its id with `false`.
    async fn insert_sourced_incident(
        &self,
        source_key: &str,
        incident: &IncidentRow,
        declared: &NewUpdate,
    ) -> Result<(String, bool)> {
        let one = [SourcedIncident {
            source_key: source_key.into(),
            incident: incident.clone(),
            declared: declared.clone(),
        }];
        let mut out = self.insert_sourced_incidents(&one).await?;
        Ok(out.remove(0))
    }

    /// `insert_sourced_incident` for many, in one transaction, in order: a storm opens
    /// thousands of incidents at once. Returns each one's id and whether it is new.
    async fn insert_sourced_incidents(&self, incidents: &[SourcedIncident]) -> Result<Vec<(String, bool)>>;

    async fn incident_sources(&self) -> Result<Vec<IncidentSource>>;

    async fn mark_merged(&self, incident_id: &str, into: &str) -> Result<()>;

    /// Gives the source keyed `old` the key `new` (an incident an older version opened
    /// under another key scheme, found again). Returns whether there was one to re-key.
    async fn rekey_source(&self, old: &str, new: &str) -> Result<bool>;

    /// The sources of one incident (an index serves it: the fan-out asks once per entry).
    async fn sources_of(&self, incident_id: &str) -> Result<Vec<IncidentSource>>;

    /// The sources of every open incident, by incident then key.
    async fn open_sources(&self) -> Result<Vec<IncidentSource>>;

    /// Records that the alert under `source_key` belongs to `incident_id`. `false` when the
    /// key was already recorded (to this incident or another: the first stands).
    async fn join_alert(&self, source_key: &str, incident_id: &str) -> Result<bool>;

    /// Every alert of every incident of the Alertmanager receiver, by key.
    async fn incident_alerts(&self) -> Result<Vec<IncidentAlert>>;

    /// Marks the alert ended at `at` (the first end stands); returns how many alerts of its
    /// incident still fire.
    async fn end_alert(&self, source_key: &str, at: Timestamp) -> Result<u64>;

    /// Records an ignored alert under its fingerprint (first and last seen, how often),
    /// keeping about the `keep` most recently seen: older ones are deleted.
    async fn record_ignored_alert(&self, alert: &IgnoredAlert, keep: u32) -> Result<()>;

    /// Ignored alerts, most recently seen first, at most `limit`.
    async fn ignored_alerts(&self, limit: u32) -> Result<Vec<IgnoredAlert>>;

    /// Inserts or updates impacts by (incident, customer), in one transaction. An update
    /// keeps the earlier `affected_at` and the higher `notified`; the rest is replaced.
    /// Returns the rows as stored after the write, by (incident, customer).
    async fn upsert_impacts(&self, impacts: &mut [ImpactRow]) -> Result<Vec<ImpactRow>>;

    /// Raises each impact's `notified` to its stage (never lowers it), in one transaction,
    /// and touches nothing else of the row: whoever raises read the impact a moment ago,
    /// and its downtime may have been written since.
    async fn raise_notified(&self, raises: &[StageRaise<'_>]) -> Result<()>;

    /// Every impact of the incident, by customer id.
    async fn impacts(&self, incident_id: &str) -> Result<Vec<ImpactRow>>;

    /// Every impact of one customer, by incident id, from an index: a few rows, however
    /// many customers a storm's incidents hold.
    async fn customer_impacts(&self, customer_id: &str) -> Result<Vec<ImpactRow>>;
}

/// The device event log detection is rebuilt from and follows.
#[async_trait]
pub trait DeviceLogStore: Send + Sync {
    /// Appends events; one already logged (same instant, device and state) is left as it
    /// is. Returns the rows inserted.
    async fn append_device_events(&self, events: &mut [DeviceEventRow]) -> Result<u64>;

    /// Logged events at or after `from`, in (at, device, state) order, at most `limit`,
    /// after `after` (the last row of the previous page).
    async fn device_events(
        &self,
        from: Timestamp,
        after: Option<&DeviceEventRow>,
        limit: u32,
    ) -> Result<Vec<DeviceEventRow>>;

    /// Deletes logged events before `before`; returns how many.
    async fn prune_device_events(&self, before: Timestamp) -> Result<u64>;

    /// The place of the newest logged event (0 when the log is empty). Places grow in the
    /// order events were written, whichever process wrote them.
    async fn device_events_end(&self) -> Result<i64>;

    /// Logged events placed after `after`, in the order they were written, at most
    /// `limit`, each with its place: how the detecting server follows what every server
    /// sharing the log writes.
    async fn device_events_placed_after(&self, after: i64, limit: u32) -> Result<Vec<(i64, DeviceEventRow)>>;
}

/// The outbox: notices queued, claimed, delivered and reported; contact points that
/// bounce, quarantined.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Sorts by key and inserts; an existing key is left as it is. Returns rows inserted.
    async fn enqueue_notices(&self, notices: &[NoticeRow]) -> Result<u64>;

    /// Atomically moves up to `limit` notices that are `queued` with
    /// `next_attempt_at <= now` (or `sending` with `next_attempt_at <= now`: an expired
    /// lease after a crash) to `sending` with `next_attempt_at = lease_until`, attempts+1,
    /// and returns them. Safe with several workers (SKIP LOCKED on PostgreSQL).
    async fn claim_due_notices(
        &self,
        channel: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<NoticeRow>>;

    /// Records the outcome of the claim that took the notice at attempt number `attempt`
    /// (its `attempts` after the claim). The attempt number fences the write: if the lease
    /// ran out and another worker claimed the notice again, or it is no longer `sending`,
    /// nothing is changed and `false` is returned, so a slow worker can never set a
    /// notice that another one sent back to `queued`.
    /// Each outcome is also appended to the notice's history, in the same transaction.
    async fn record_delivery(&self, key: &str, attempt: i32, outcome: &DeliveryOutcome) -> Result<bool> {
        let recorded = self.record_deliveries(&[(key, attempt, outcome)]).await?;
        Ok(recorded.first().copied().unwrap_or(false))
    }

    /// [`Store::record_delivery`] for many notices (key, attempt, outcome) in one
    /// transaction, which is what lets a lane record as fast as it sends; each answer is
    /// in the order given.
    async fn record_deliveries(&self, outcomes: &[(&str, i32, &DeliveryOutcome)]) -> Result<Vec<bool>>;

    /// Applies a channel's later report to a `sent` (or already `delivered`) notice:
    /// `delivered`, or `failed` with the channel's words; appended to its history. Returns
    /// the notice as it is now, or `None` when no sent notice matches.
    async fn record_report(
        &self,
        target: &ReportTarget<'_>,
        report: &ChannelReport,
        at: Timestamp,
    ) -> Result<Option<NoticeRow>>;

    /// Volume control over one incident's still-queued notices, in one transaction.
    /// Per customer and channel: a queued `restored` or `still_down` supersedes queued
    /// acknowledgements and updates (one "it was out and it is back" message); of queued
    /// updates only the latest stays. Then updates beyond `updates_cap` per customer and
    /// channel (counting those sent or on their way) are suppressed as `capped`.
    async fn control_volume(
        &self,
        incident_id: &str,
        updates_cap: u32,
        at: Timestamp,
    ) -> Result<VolumeReport>;

    async fn notices_for_customer(&self, customer_id: &str) -> Result<Vec<NoticeRow>>;

    async fn notices_for_incident(&self, incident_id: &str, limit: u32) -> Result<Vec<NoticeRow>>;

    /// A page of the delivery record, by key.
    async fn notices(&self, filter: &NoticeFilter) -> Result<Vec<NoticeRow>>;

    async fn notice(&self, key: &str) -> Result<Option<NoticeRow>>;

    /// The notice's history after it was queued, oldest first.
    async fn notice_events(&self, key: &str) -> Result<Vec<NoticeEventRow>>;

    async fn notice_counts(&self, incident_id: Option<&str>) -> Result<Vec<NoticeCount>>;

    /// Notices in a final state (sent, delivered, failed, suppressed), written before
    /// `before`, whose content is still kept: oldest first, at most `limit`.
    async fn content_to_forget(&self, before: Timestamp, limit: u32) -> Result<Vec<NoticeRow>>;

    /// Replaces each notice's subject and body with nothing, keeping the given SHA-256 of
    /// them; one transaction. A notice not in a final state is left alone. Returns how
    /// many were changed.
    async fn forget_content(&self, hashes: &[(String, String)]) -> Result<u64>;

    /// The contact points among `recipients` of `channel` with hard failures on record.
    async fn contact_points(&self, channel: &str, recipients: &[&str]) -> Result<Vec<ContactPointRow>>;

    /// Counts a hard failure; at `threshold` failures in a row the point is quarantined.
    /// Returns the row as it is now.
    async fn record_hard_failure(
        &self,
        channel: &str,
        recipient: &str,
        error: &str,
        threshold: u32,
        at: Timestamp,
    ) -> Result<ContactPointRow>;

    /// Forgets a point's failures (a success, or an operator lifting its quarantine).
    async fn clear_contact_point(&self, channel: &str, recipient: &str) -> Result<bool>;

    /// Every quarantined contact point.
    async fn quarantined(&self) -> Result<Vec<ContactPointRow>>;
}

/// Each customer's say in what they hear: channels per topic, quiet hours, opt-out.
#[async_trait]
pub trait PreferenceStore: Send + Sync {
    async fn preferences(&self, customer_id: &str) -> Result<Option<PreferencesRow>>;

    /// Every stored preferences document (customers without one use the defaults).
    async fn all_preferences(&self) -> Result<Vec<PreferencesRow>>;

    /// Stores the document and bumps the preferences version, in one transaction.
    async fn put_preferences(&self, row: &PreferencesRow) -> Result<()>;

    /// Increased by every `put_preferences`, so a cache can tell it is stale.
    async fn preferences_version(&self) -> Result<i64>;
}

/// Who may do what: API tokens, the secrets links are signed with, and single-use links.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Records a single-use link as used; `false` if it was used before.
    async fn use_link(&self, link_id: &str, at: Timestamp) -> Result<bool>;

    /// The secret stored under `name`, storing `candidate` first if there is none: every
    /// caller, racing or not, gets the one value that was stored first.
    async fn secret_or_insert(&self, name: &str, candidate: &str) -> Result<String>;

    /// The secret stored under `name`, if there is one: a read alone, for checks a
    /// stranger can trigger (a public link), which must never write.
    async fn secret(&self, name: &str) -> Result<Option<String>>;

    /// Stores a new token; `false` (and nothing written) when its hash or its id is taken.
    async fn insert_token(&self, token: &TokenRow) -> Result<bool>;

    async fn token(&self, token_hash: &str) -> Result<Option<TokenRow>>;

    /// Every token, revoked and expired ones too, oldest first (then by id). Tokens are
    /// made one at a time by a person, so there are few.
    async fn tokens(&self) -> Result<Vec<TokenRow>>;

    /// Revokes the token `token_id` at `at` and returns it, and whether this call revoked
    /// it: one revoked before keeps its first `revoked_at` (`false`). `None` when no token
    /// has that id.
    async fn revoke_token(&self, token_id: &str, at: Timestamp) -> Result<Option<(TokenRow, bool)>>;

    /// Records that the token was used at `at`, unless a use at or after `stale_before`
    /// is recorded already (so a caller passing `at - 60 s` writes at most once a minute
    /// per token, however many servers share the store, and never moves the record
    /// back). Returns whether it wrote.
    async fn record_token_use(
        &self,
        token_hash: &str,
        at: Timestamp,
        stale_before: Timestamp,
    ) -> Result<bool>;
}

/// The credit ledger: append-only, keyed, never twice.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Sorts by key and appends. A key that exists with the same amount and currency is
    /// counted as unchanged; with a different amount or currency the whole call fails
    /// with CreditConflict and writes nothing.
    async fn append_credits(&self, credits: &mut [CreditRow]) -> Result<CreditWrite>;

    async fn credits(&self, filter: &CreditFilter) -> Result<Vec<CreditRow>>;

    /// Appends amounts payable only on request, as [`LedgerStore::append_credits`] appends
    /// credits (same keys, same never-twice rule), to their own table: an offer is not a
    /// credit until the customer claims it, and the claim is a credit of its own key.
    async fn append_on_request_offers(&self, offers: &mut [CreditRow]) -> Result<CreditWrite>;

    /// The on-request offers made to one customer, in key order.
    async fn on_request_offers(&self, customer_id: &str) -> Result<Vec<CreditRow>>;

    /// The (policy, version) pairs an event's credits and on-request offers were written
    /// under, sorted: read from indexes alone, however many the event has (a restarted
    /// credit step asks before writing more).
    async fn credit_policies(&self, source_event: &str) -> Result<Vec<(String, i64)>>;
}

/// Individual recovery: the directory of agents, cases and their event logs, and the
/// contacts customers make.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Inserts or replaces agents by id, in one transaction; returns how many.
    async fn upsert_agents(&self, agents: &[AgentRow]) -> Result<u64>;

    async fn agent(&self, agent_id: &str) -> Result<Option<AgentRow>>;

    /// Every agent, by id.
    async fn agents(&self) -> Result<Vec<AgentRow>>;

    /// Opens a case with its first event (seq 0) in one transaction, assigning its id
    /// (`case.case_id` and `opened.case_id` are ignored). Under a `source_key` that
    /// already opened a case, writes nothing and returns that case's id.
    async fn open_case(&self, case: &CaseRow, opened: &CaseEventRow) -> Result<CaseOpening>;

    /// Appends `events` (seq from `expected_version` on) and replaces the case's row by
    /// `case`, in one transaction, if the case still has `expected_version` events;
    /// otherwise `CaseConflict` and nothing is written. `CaseNotFound` for an unknown id.
    async fn append_case_events(
        &self,
        case: &CaseRow,
        expected_version: i64,
        events: &[CaseEventRow],
    ) -> Result<()>;

    async fn case(&self, case_id: &str) -> Result<Option<CaseRow>>;

    /// A case's whole log, by seq.
    async fn case_events(&self, case_id: &str) -> Result<Vec<CaseEventRow>>;

    async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>>;

    /// Records a contact; returns its id.
    async fn record_contact(&self, contact: &ContactRow) -> Result<i64>;

    /// The contacts attached to an incident, oldest first.
    async fn incident_contacts(&self, incident_id: &str) -> Result<Vec<ContactRow>>;

    /// Cases with events whose notices are not yet queued, by id, at most `limit`.
    async fn cases_to_notify(&self, limit: u32) -> Result<Vec<CaseRow>>;

    /// Records that the notices of the first `version` events are queued (never lowers it).
    async fn mark_case_notified(&self, case_id: &str, version: i64) -> Result<()>;

    /// Cases fixed at or before `fixed_by` without a follow-up, by fix time, at most `limit`.
    async fn cases_due_follow_up(&self, fixed_by: Timestamp, limit: u32) -> Result<Vec<CaseRow>>;
}

/// Technician visits: bookings, actions on them, their checks, and held slots.
#[async_trait]
pub trait VisitStore: Send + Sync {
    /// Books a visit in ONE transaction that bookings take in turns: takes the next
    /// appointment number (from 1), reads `technician_id`'s live appointments (booked or
    /// arrived; none for `None`) by window start and all their holds (lapsed ones too) by
    /// window start, and calls `build` with them. Its `Err(message)` rolls everything
    /// back, the number too, and is returned as `Refused(message)`; its row is inserted
    /// at version 1 (the version given is ignored) and returned as stored. The row must
    /// be for `technician_id`; a reference on record is `AppointmentExists`.
    async fn book_appointment(
        &self,
        technician_id: Option<&str>,
        build: &BuildAppointment<'_>,
    ) -> Result<AppointmentRow>;

    /// Writes what may change after booking (owner, status and its instants, the notice
    /// of a cancellation; `checked_at` only when it is still unset) if the stored version
    /// is `row.version`, bumping it by 1; returns the row as stored.
    /// `AppointmentNotFound`, `AppointmentConflict` (another update came first), or
    /// `AppointmentFixed` when the row changes what the booking fixed; nothing is written
    /// then.
    async fn update_appointment(&self, row: &AppointmentRow) -> Result<AppointmentRow>;

    /// As [`Store::update_appointment`], and records who did it (`action.version` is
    /// ignored: the version the update makes is recorded) in the same transaction.
    async fn act_on_appointment(
        &self,
        row: &AppointmentRow,
        action: &AppointmentActionRow,
    ) -> Result<AppointmentRow>;

    /// Every person's action on the visit, oldest first.
    async fn appointment_actions(&self, reference: &str) -> Result<Vec<AppointmentActionRow>>;

    async fn appointment(&self, reference: &str) -> Result<Option<AppointmentRow>>;

    /// A page of appointments by number (the order they were booked in).
    async fn appointments(&self, filter: &AppointmentFilter) -> Result<Vec<AppointmentRow>>;

    /// Appointments not yet checked whose window ended at or before `due_by`, or that the
    /// provider cancelled (whenever their window), by window end then number, at most
    /// `limit`.
    async fn appointments_to_check(&self, due_by: Timestamp, limit: u32) -> Result<Vec<AppointmentRow>>;

    /// Sets `checked_at` if it is unset (the version is not bumped: the check is not a
    /// change of the visit). `AppointmentNotFound` for an unknown reference.
    async fn mark_appointment_checked(&self, reference: &str, at: Timestamp) -> Result<()>;

    /// Records that the booking's confirmation is queued. `AppointmentNotFound` for an
    /// unknown reference.
    async fn mark_appointment_confirmed(&self, reference: &str) -> Result<()>;

    /// Visits whose confirmation is not queued yet, by number: what a crash between a
    /// booking and its confirmation left.
    async fn appointments_unconfirmed(&self, limit: u32) -> Result<Vec<AppointmentRow>>;

    /// Live appointments (booked or arrived) whose window overlaps `[from, to)`, by window
    /// start then number, at most [`LIVE_ROWS_MAX`].
    async fn live_appointments_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AppointmentRow>>;

    /// Holds `holds` for the rebooking of `for_reference`, in one transaction that takes
    /// turns with any other for the same visit, unless that visit has holds already: the
    /// first offer stands, so two checks racing cannot hold twice the slots. Returns the
    /// holds on record for it, by window start, and whether these were written.
    async fn put_holds(&self, for_reference: &str, holds: &[HoldRow]) -> Result<(Vec<HoldRow>, bool)>;

    /// The holds kept for the rebooking of `for_reference`, by window start.
    async fn holds_for(&self, for_reference: &str) -> Result<Vec<HoldRow>>;

    /// Holds with `until` after `now`, by technician then window start, at most
    /// [`LIVE_ROWS_MAX`].
    async fn live_holds(&self, now: Timestamp) -> Result<Vec<HoldRow>>;

    /// See [`AppointmentCounts`]; windows ending in `[from, to)`.
    async fn appointment_counts(&self, from: Timestamp, to: Timestamp) -> Result<AppointmentCounts>;
}

/// Accounts: sign-up and cancellation, each in one transaction.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// In one transaction: inserts the customer (its plan and element must be in the
    /// book, else `Refused` naming the one missing) and the sign-up, and bumps the book
    /// version as an import does, so that every holder of the book sees the customer.
    /// `CustomerExists` for an id on record.
    async fn sign_up(&self, customer: &CustomerRow, signup: &SignupRow) -> Result<()>;

    /// In one transaction: refuses an unknown customer (`CustomerNotFound`), one not
    /// `active`, or one whose latest cancellation still waits to take effect
    /// (`AlreadyCancelled`, naming their latest cancellation if there is one); when the
    /// built cancellation takes effect at once (`effective_at <= requested_at`), sets
    /// their status to `cancelled` and bumps the book version (a deferred one is applied
    /// by `apply_due_cancellations`); allocates the next
    /// number and records what `build` makes of it and the stored customer (the core
    /// computes the reference, the final bill and the audit); `build`'s refusal is
    /// `Refused` and writes nothing. Returns the cancellation as stored.
    async fn cancel_account(
        &self,
        customer_id: &str,
        build: &BuildCancellation<'_>,
    ) -> Result<CancellationRow>;

    async fn cancellation(&self, reference: &str) -> Result<Option<CancellationRow>>;

    /// Applies, in one transaction, up to `limit` cancellations deferred to a time at or
    /// before `now` (the end of a billing cycle): sets each customer `cancelled` (if still
    /// `active`), records it applied so it never applies again, and bumps the book version
    /// if any did. Returns the customers whose status changed.
    async fn apply_due_cancellations(&self, now: Timestamp, limit: u32) -> Result<Vec<String>>;

    /// Cancellations requested since `since` whose confirmation is not in the outbox: what
    /// a crash between the cancellation and its confirmation left. Oldest first.
    async fn cancellations_unconfirmed(&self, since: Timestamp, limit: u32) -> Result<Vec<CancellationRow>>;

    /// The customer's latest cancellation (by requested_at).
    async fn cancellation_of(&self, customer_id: &str) -> Result<Option<CancellationRow>>;
}

/// Surveys: one decision per subject, sends, answers.
#[async_trait]
pub trait SurveyStore: Send + Sync {
    /// Records the decision unless its subject has one: then returns that one, unchanged,
    /// so sampling again never changes a decision. A new `send` decision is assigned its
    /// survey id. In the same transaction, the case (or, for a subject without a case, the
    /// incident's impact on the customer) is marked as having a decision.
    async fn record_survey_decision(&self, row: &SurveyDecisionRow) -> Result<SurveyDecisionRow>;

    /// The latest `send_at` of the customer's `send` decisions other than
    /// `excluding_subject_key`'s.
    async fn last_survey_send(
        &self,
        customer_id: &str,
        excluding_subject_key: &str,
    ) -> Result<Option<Timestamp>>;

    /// Surveys to send: unsent, `send_at` at or before `now`, by send_at, at most `limit`.
    async fn surveys_due(&self, now: Timestamp, limit: u32) -> Result<Vec<SurveyDecisionRow>>;

    /// Sets `sent_at` if it is unset. `SurveyNotFound` for an unknown id.
    async fn mark_survey_sent(&self, survey_id: &str, at: Timestamp) -> Result<()>;

    async fn survey(&self, survey_id: &str) -> Result<Option<SurveyDecisionRow>>;

    /// Records the score unless the survey is answered already; `true` if this call
    /// recorded it. `SurveyNotFound` for an unknown id.
    async fn answer_survey(&self, survey_id: &str, score: i16, at: Timestamp) -> Result<bool>;

    async fn survey_decisions(&self, filter: &SurveyFilter) -> Result<Vec<SurveyDecisionRow>>;

    /// (decision, reason, count) for every pair on record, in that order.
    async fn survey_decision_counts(&self) -> Result<Vec<(String, Option<String>, u64)>>;

    /// Cases fixed at or before `fixed_by` that no survey decision names, by fix time,
    /// at most `limit`.
    async fn cases_fixed_unsurveyed(&self, fixed_by: Timestamp, limit: u32) -> Result<Vec<CaseRow>>;

    /// The customers of incidents resolved at or before `resolved_by` (not merged into
    /// another, whose customers moved there) without a survey decision for that incident
    /// and no case, by (resolved_at, incident, customer), at most `limit`.
    async fn recovered_unsurveyed(&self, resolved_by: Timestamp, limit: u32) -> Result<Vec<RecoveredRow>>;
}

/// Reads across aggregates for the recovery metrics: reach, timings, contacts and the
/// journey's steps.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// How far the incident's notices reached (see [`NoticeReach`]).
    async fn notice_reach(&self, incident_id: &str) -> Result<NoticeReach>;

    /// The incident's credits counted in the database: all of them, and those the customer
    /// had to ask for (claimed on their page, or written after they got in touch about it).
    async fn credits_asked_for(&self, incident_id: &str) -> Result<(u64, u64)>;

    async fn journey_steps(&self) -> Result<JourneySteps>;

    /// Cases opened in `[opened_from, opened_to)`, by opened_at then id, at most `limit`.
    async fn case_timings(
        &self,
        opened_from: Timestamp,
        opened_to: Timestamp,
        limit: u32,
    ) -> Result<Vec<CaseTiming>>;

    /// The customer's contacts in `[from, to)`.
    async fn customer_contacts_between(
        &self,
        customer_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64>;
}

/// The benchmark's floor, kept out of the product's trait: the backend's fastest plain
/// bulk write, which the ledger write is compared against.
#[async_trait]
pub trait BenchFloor: Send + Sync {
    /// Writes `rows` into `bench_raw_credits`, a table with the same columns and unique
    /// key as the ledger but none of its checks, by the backend's fastest plain bulk
    /// path, after emptying it. The floor the ledger write is compared against.
    async fn bench_raw_insert(&self, rows: &mut [CreditRow]) -> Result<()>;
}
