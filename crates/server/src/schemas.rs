//! Descriptions of the core and store types the API takes and returns, field for field.
//! Never built: they exist for their `ToSchema`, which [`crate::openapi`] collects and the
//! handlers name in their `utoipa::path` attributes.
#![allow(dead_code)]

use utoipa::ToSchema;

/// An incident's state. `resolved` is only reached through the resolve route.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum IncidentState {
    Detected,
    Acknowledged,
    Identified,
    Monitoring,
    Resolved,
}

/// An operator's declaration of an incident. Instants are RFC 3339.
#[derive(ToSchema)]
pub struct Declaration {
    /// Element ids; every active customer at or below them is affected.
    #[schema(example = json!(["R1-H1"]), min_items = 1, max_items = 1000)]
    pub elements: Vec<String>,
    /// The public cause, as customers will read it: not blank, at most 2,000 bytes.
    #[schema(example = "Fibre cut near Hub 1", min_length = 1, max_length = 2000, pattern = "\\S")]
    pub cause: String,
    /// What is being done about it; at most 2,000 bytes.
    #[schema(max_length = 2000)]
    pub message: String,
    /// Estimated time of restoration; must be after now. Absent (or null): no
    /// estimate yet, and customers are told one will follow.
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub etr: Option<String>,
    /// The next update will come by then at the latest; must be after now.
    #[schema(value_type = String, format = DateTime)]
    pub next_update_by: String,
    /// When service was lost, if before the declaration; defaults to now.
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub started_at: Option<String>,
    /// Defaults to `acknowledged`.
    #[schema(required = false, default = "acknowledged")]
    pub state: OperatorState,
    /// The cause and message in other languages, by locale tag (`es`, `fr-CA`): a
    /// customer reads the one for their locale, else their language, else the text
    /// above.
    #[schema(required = false, example = json!({"es": {"cause": "Corte de fibra cerca del nodo 1", "message": "Los equipos están empalmando el cable."}}))]
    pub translations: std::collections::BTreeMap<String, LocalText>,
    /// Facts of the outage compensation policies read as `event.attributes`: at most
    /// 64, each text (at most 256 bytes), an integer or a boolean.
    /// `customers_affected` is refused: amends sets it to the customers the incident
    /// affected.
    #[schema(required = false, example = json!({"storm": true}))]
    pub attributes: std::collections::BTreeMap<String, AttributeValue>,
}

/// An attribute of an outage: text (at most 256 bytes), an integer or a boolean.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Text(String),
    Integer(i64),
    Flag(bool),
}

/// The states an operator may set; `detected` is detection's and `resolved` the
/// resolve route's.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OperatorState {
    Acknowledged,
    Identified,
    Monitoring,
}

/// One language's version of an entry's text (each field only where the entry has it).
#[derive(ToSchema)]
pub struct LocalText {
    #[schema(required = false)]
    pub cause: Option<String>,
    #[schema(required = false)]
    pub message: Option<String>,
}

/// An update to an open incident; absent fields keep their value.
#[derive(ToSchema)]
pub struct UpdateRequest {
    #[schema(required = false, example = "The splice takes longer than planned.")]
    pub message: String,
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub etr: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub next_update_by: Option<String>,
    #[schema(required = false)]
    pub state: Option<OperatorState>,
    /// A new public cause, as customers will read it.
    #[schema(required = false)]
    pub cause: Option<String>,
    /// The message, and the new cause, in other languages; a new cause without them
    /// drops the old cause's translations.
    #[schema(required = false)]
    pub translations: std::collections::BTreeMap<String, LocalText>,
}

#[derive(ToSchema)]
pub struct IncidentRow {
    #[schema(example = "INC-000001")]
    pub incident_id: String,
    pub element_ids: Vec<String>,
    pub cause: String,
    /// The cause in other languages, locale tag to text.
    pub causes: std::collections::BTreeMap<String, String>,
    pub state: IncidentState,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub etr: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_update_by: Option<String>,
    /// When service was lost: the start of the outage.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<String>,
    /// Set once every credit of the incident is in the ledger.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub credited_at: Option<String>,
    /// The declaration's attributes, when it had any.
    #[schema(required = false)]
    pub attributes: Option<std::collections::BTreeMap<String, AttributeValue>>,
}

/// One customer's part in a detected incident.
#[derive(ToSchema)]
pub struct ImpactRow {
    pub incident_id: String,
    pub customer_id: String,
    /// No telemetry device: presumed out for the incident's whole span.
    pub presumed: bool,
    #[schema(value_type = String, format = DateTime)]
    pub affected_at: String,
    /// When their own service came back; null while it is out.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub back_at: Option<String>,
    /// Still offline when the incident was resolved: a follow-up case.
    pub follow_up: bool,
    /// Their offline intervals within the incident, as [start, end] pairs (final once
    /// it is resolved).
    #[schema(value_type = Vec<Vec<String>>)]
    pub downtime: Vec<Vec<String>>,
    /// 0: nothing sent yet; 1: acknowledged; 2: restored or still-down notice sent too.
    pub notified: i16,
}

/// One entry of an incident's timeline.
#[derive(ToSchema)]
pub struct UpdateRow {
    pub incident_id: String,
    /// 0 for the declaration, then 1, 2, ...
    pub seq: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// `declared`, `detected`, `merged`, `update`, `etr_lapsed`, `update_overdue` or
    /// `resolved`.
    pub kind: String,
    /// The incident's state after this entry.
    pub state: IncidentState,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub etr: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_update_by: Option<String>,
    pub message: String,
    /// The message in other languages, locale tag to text.
    pub messages: std::collections::BTreeMap<String, String>,
    /// The key of an automatic update, unique per incident.
    pub trigger_key: Option<String>,
    /// Every notice of this entry is in the outbox.
    pub fanned_out: bool,
}

#[derive(ToSchema)]
pub struct NoticeCount {
    /// `acknowledgement`, `update`, `restored` or `credit`.
    pub kind: String,
    /// `queued`, `sending`, `sent` or `failed`.
    pub status: String,
    pub count: u64,
}

/// One notice to one customer on one channel.
#[derive(ToSchema)]
pub struct NoticeRow {
    /// `customer/incident/kind/seq/channel`, unique.
    pub key: String,
    pub customer_id: String,
    pub incident_id: String,
    /// `acknowledgement`, `update`, `restored`, `credit` or `still_down`.
    pub kind: String,
    pub seq: i64,
    /// `email`, `sms` or `webhook`.
    pub channel: String,
    pub recipient: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    /// `queued`, `sending`, `sent`, `delivered`, `failed` or `suppressed`.
    pub status: String,
    pub attempts: i32,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<String>,
    /// Why it is held (`quiet_hours`) or suppressed (`consent`, `coalesced`, `capped`,
    /// `quarantined`).
    pub reason: Option<String>,
    /// The channel's own id for the message (an SMS gateway's), matched by receipts.
    pub provider_id: Option<String>,
    /// SHA-256 of subject and body, where the content was not kept.
    pub content_sha256: Option<String>,
}

/// One line of a credit's arithmetic, as the policy engine produced it.
#[derive(ToSchema)]
pub struct CreditLine {
    /// The id of the policy rule that produced the line.
    pub rule: String,
    /// The events (incident ids) the line covers: overlapping outages count once, so a
    /// line may cover an earlier incident too.
    pub events: Vec<String>,
    pub amount_minor: i64,
    /// Paid without being asked; `false` lines are payable on request.
    pub automatic: bool,
    /// The arithmetic in words, for an auditor: exact, every instant in UTC.
    pub explanation: String,
    /// The numbers the customer's version of the explanation is written from, in their
    /// language (absent on lines written before they were kept).
    pub basis: Option<LineBasis>,
}

/// A credit line's numbers: the time without service it pays for and, for a prorated
/// line, the fraction of the monthly price.
#[derive(ToSchema)]
pub struct LineBasis {
    /// Seconds without service the line pays for (outage lines).
    pub seconds_out: Option<i64>,
    pub prorated: Option<ProratedBasis>,
}

/// A prorated line's fraction: `price_minor` x seconds out / `cycle_seconds`.
#[derive(ToSchema)]
pub struct ProratedBasis {
    pub price_minor: i64,
    pub cycle_seconds: i64,
}

/// One entry of the append-only credit ledger.
#[derive(ToSchema)]
pub struct Credit {
    /// `customer/incident/policy/version`, unique.
    pub key: String,
    pub customer_id: String,
    /// The incident the credit is for.
    pub source_event: String,
    pub policy_id: String,
    pub policy_version: i64,
    /// The amount in the currency's minor units (cents).
    #[schema(example = 42)]
    pub amount_minor: i64,
    /// ISO 4217.
    #[schema(example = "USD")]
    pub currency: String,
    /// The statement the credit lands on: the date of the customer's next bill.
    #[schema(value_type = String, format = Date)]
    pub statement: String,
    /// The arithmetic in plain words, for an auditor (the customer's notice has their
    /// own version, in their language).
    pub explanation: String,
    pub lines: Vec<CreditLine>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

#[derive(ToSchema)]
pub struct BookCounts {
    pub plans: u64,
    pub elements: u64,
    pub customers: u64,
}

#[derive(ToSchema)]
pub struct ImportSummary {
    /// Rows in the files, now upserted.
    pub imported: BookCounts,
    /// Rows in the store after the import.
    pub total: BookCounts,
}

/// A notice's delivery status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum NoticeStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Suppressed,
}

/// An OpenAPI 3.1 document (this one).
#[derive(ToSchema)]
pub struct OpenApiDocument {
    #[schema(example = "3.1.0")]
    pub openapi: String,
    pub info: DocumentInfo,
    /// Path to its operations, by method.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>)]
    pub paths: (),
}

#[derive(ToSchema)]
pub struct DocumentInfo {
    pub title: String,
    pub version: String,
}

/// A channel amends sends by.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

/// What a customer chooses about: a notice kind, or all of a case's or a visit's.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Topic {
    Acknowledgement,
    Update,
    EtrChange,
    Restored,
    Credit,
    StillDown,
    Case,
    Appointment,
    Account,
    Survey,
}

/// A daily window of the customer's wall-clock time, `HH:MM` to `HH:MM` (it may cross
/// midnight); the start and end differ.
#[derive(ToSchema)]
pub struct QuietHours {
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "22:00")]
    pub start: String,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "07:00")]
    pub end: String,
}

/// A customer's notice preferences: what applies, and what they chose.
#[derive(ToSchema)]
pub struct PreferencesView {
    pub customer_id: String,
    /// Every topic with the channels it goes by: the customer's choice, else the default.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<Channel>>)]
    pub channels: (),
    /// Only the topics the customer chose.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<Channel>>)]
    pub chosen: (),
    pub quiet_hours: Option<QuietHours>,
    /// Topics that are sent during quiet hours too.
    pub urgent: Vec<Topic>,
    /// The language they chose for their messages and page (`de`, `pt-BR`); null: the
    /// book's.
    #[schema(example = "de")]
    pub language: Option<String>,
    /// When they were last changed; null if never.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<String>,
}

/// A change of preferences: only the fields given change. A topic set to `null` in
/// `channels` returns to the default; `"quiet_hours": null` removes them.
#[derive(ToSchema)]
#[schema(example = json!({"channels": {"update": ["email"], "credit": null}, "quiet_hours": {"start": "22:00", "end": "07:00"}, "urgent": ["restored"]}))]
pub struct PreferencesChange {
    /// Topic to its channels (an empty list: none), or null for the default.
    #[schema(required = false, value_type = std::collections::BTreeMap<String, Option<Vec<Channel>>>)]
    pub channels: (),
    #[schema(required = false)]
    pub quiet_hours: Option<QuietHours>,
    #[schema(required = false)]
    pub urgent: Vec<Topic>,
    /// A language tag (`de`, `pt-BR`) to write to them in, or null for the book's.
    #[schema(required = false, pattern = "^[a-z]{2,3}(-([A-Z]{2}|[0-9]{3}))?$")]
    pub language: Option<String>,
}

/// One step of a notice's history.
#[derive(ToSchema)]
pub struct NoticeEvent {
    pub key: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// `queued`, `held`, `retry`, `sending`, `sent`, `delivered`, `failed` or `suppressed`.
    pub status: String,
    pub detail: Option<String>,
}

/// One notice and its status history, from queued on.
#[derive(ToSchema)]
pub struct NoticeRecord {
    pub notice: NoticeRow,
    pub history: Vec<NoticeEvent>,
}

/// A delivery receipt from an SMS gateway.
#[derive(ToSchema)]
pub struct SmsReceipt {
    /// The gateway's message id, as it answered when the message was sent.
    pub provider_id: String,
    /// `delivered`; `failed`, `undelivered`, `rejected` or `expired`; any other
    /// (`queued`, `sent`, `accepted`) is counted as ignored.
    pub status: String,
    #[schema(required = false)]
    pub detail: Option<String>,
}

/// Twilio's status callback, form-encoded.
#[derive(ToSchema)]
pub struct TwilioStatus {
    #[schema(rename = "MessageSid")]
    pub message_sid: String,
    #[schema(rename = "MessageStatus")]
    pub message_status: String,
    #[schema(rename = "ErrorCode", required = false)]
    pub error_code: Option<String>,
}

/// A bounce reported by the mail system.
#[derive(ToSchema)]
pub struct Bounce {
    /// The notice key, from the bounced message's `X-Amends-Notice-Key` header.
    pub key: String,
    /// `hard`: the address does not work (the notice failed; the address counts
    /// towards quarantine). `soft`: a full mailbox, left to the relay's retries.
    pub kind: BounceKind,
    #[schema(required = false)]
    pub detail: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BounceKind {
    Hard,
    Soft,
}

/// What a batch of receipts or bounces did.
#[derive(ToSchema)]
pub struct ReportOutcome {
    /// Reports that moved a notice on.
    pub applied: u64,
    /// Reports about no sent notice known here (or in-between statuses), left alone.
    pub ignored: u64,
}

/// A contact point that failed for good at least once since its last success.
#[derive(ToSchema)]
pub struct ContactPoint {
    pub channel: String,
    pub recipient: String,
    pub hard_failures: i32,
    /// Set once it is quarantined: nothing more is sent there.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub quarantined_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// How many people were written.
#[derive(ToSchema)]
pub struct AgentsWritten {
    pub written: u64,
}

/// Where a case comes from, tagged by `kind`; `incident_id` or `appointment_id` for
/// those kinds.
#[derive(ToSchema)]
pub struct CaseSource {
    pub kind: CaseSourceKind,
    #[schema(required = false)]
    pub incident_id: String,
    #[schema(required = false)]
    pub appointment_id: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CaseSourceKind {
    Contact,
    Incident,
    Appointment,
    Manual,
}

/// Whose fault the mishap was; for reporting only.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Fault {
    Company,
    Customer,
    Unknown,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Paused,
    Fixed,
    Closed,
}

/// The five steps of a recovery, in order.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PlaybookStepName {
    Acknowledge,
    OwnAndFix,
    Lessen,
    Memory,
    Extend,
}

/// Who did something, and when.
#[derive(ToSchema)]
pub struct Done {
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    pub by: String,
}

/// What a step still needs.
#[derive(ToSchema)]
pub struct Due {
    /// The deadline, or when amends does it; null: no deadline.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<String>,
    pub passed: bool,
    /// Whether amends does it rather than a person.
    pub automatic: bool,
}

#[derive(ToSchema)]
pub struct PlaybookStep {
    pub step: PlaybookStepName,
    pub done: Option<Done>,
    /// For the timed steps once done: whether within the target.
    pub within_target: Option<bool>,
    pub due: Option<Due>,
}

/// A case's playbook as of now.
#[derive(ToSchema)]
pub struct Playbook {
    pub status: CaseStatus,
    pub owner: String,
    pub steps: Vec<PlaybookStep>,
    /// The first step a person has to do now.
    pub next: Option<PlaybookStepName>,
    /// The customer's time so far and the target time, as ISO 8601 durations.
    #[schema(example = "PT2H30M")]
    pub customer_time: String,
    #[schema(example = "PT48H")]
    pub target_time: String,
}

/// What a case event changed.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CaseEventType {
    Opened,
    FirstResponse,
    HandoverOffered,
    HandoverAccepted,
    HandoverDeclined,
    HandoverWithdrawn,
    Paused,
    Resumed,
    Compensated,
    Goodwill,
    Fixed,
    MemoryNote,
    FollowUp,
    Closed,
    Reopened,
    Escalated,
}

/// One event of a case's log: when, by whom (an agent, or `amends`), and the change,
/// whose own fields (`message`, `note`, `reason`, `amount_minor`, ...) sit beside these.
#[derive(ToSchema)]
pub struct CaseEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    pub by: String,
    #[schema(rename = "type")]
    pub kind: CaseEventType,
}

/// A ledger entry as stored: `lines_json` holds the lines as JSON text.
#[derive(ToSchema)]
pub struct StoredCredit {
    pub key: String,
    pub customer_id: String,
    pub source_event: String,
    pub policy_id: String,
    pub policy_version: i64,
    pub amount_minor: i64,
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub statement: String,
    pub explanation: String,
    pub lines_json: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// A case: the record, the playbook as of now, the log, and what the customer was
/// already told and credited.
#[derive(ToSchema)]
pub struct CaseView {
    pub case_id: String,
    pub customer_id: String,
    pub owner: String,
    pub status: CaseStatus,
    pub source: CaseSource,
    pub fault: Fault,
    pub summary: String,
    #[schema(value_type = String, format = DateTime)]
    pub first_contact_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: String,
    /// The hand-over waiting for acceptance: to whom.
    pub handover_to: Option<String>,
    pub playbook: Playbook,
    pub events: Vec<CaseEvent>,
    pub customer_notices: Vec<NoticeRow>,
    pub customer_credits: Vec<StoredCredit>,
}

/// The open incident a contact is attached to, as the customer reads it.
#[derive(ToSchema)]
pub struct IncidentBrief {
    pub incident_id: String,
    pub state: IncidentState,
    /// In the customer's language where the operator gave one.
    pub cause: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub etr: Option<String>,
    /// The estimate in the customer's zone and language.
    pub etr_local: Option<String>,
    pub next_update_by_local: Option<String>,
}

/// One notice about the incident the customer was sent or is due.
#[derive(ToSchema)]
pub struct Told {
    pub kind: String,
    pub channel: Channel,
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<String>,
}

/// What the person who took a contact answers from.
#[derive(ToSchema)]
pub struct ContactAnswer {
    pub contact_id: i64,
    pub customer_id: String,
    pub incident: Option<IncidentBrief>,
    /// Whether a notice about it had reached the customer before this contact.
    pub told_before: bool,
    pub told: Vec<Told>,
}

#[derive(ToSchema)]
pub struct EstimateAccuracy {
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first: Option<String>,
    /// Resolution minus the first estimate, in seconds: positive when late.
    pub first_error_s: Option<i64>,
    pub given: u64,
    pub lapsed: u64,
}

#[derive(ToSchema)]
pub struct ContactShare {
    pub total: u64,
    pub told_before: u64,
    pub told_before_per_mille: Option<u64>,
}

/// How well one incident was handled. Durations are seconds from the outage's start.
#[derive(ToSchema)]
pub struct IncidentMetrics {
    pub incident_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<String>,
    pub customers_told: u64,
    pub first_notice_after_s: Option<i64>,
    pub all_told_after_s: Option<i64>,
    pub estimates: EstimateAccuracy,
    pub credited_after_s: Option<i64>,
    pub contacts: ContactShare,
}

/// A set of durations in seconds: how many, the median and the longest.
#[derive(ToSchema)]
pub struct Seconds {
    pub count: u64,
    pub median_s: Option<i64>,
    pub max_s: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SurveyGroupName {
    Agent,
    IncidentCase,
    IncidentCustomer,
    NoProblem,
}

/// A report's group, tagged by `group`: `owner` for an agent's own cases, `round` for
/// the no-problem control.
#[derive(ToSchema)]
pub struct SurveyGroup {
    pub group: SurveyGroupName,
    #[schema(required = false)]
    pub owner: String,
    #[schema(required = false)]
    pub round: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Scale {
    Nps,
    Csat,
}

/// One group's scores next to what happened after.
#[derive(ToSchema)]
pub struct SurveyRow {
    pub group: SurveyGroup,
    pub scale: Scale,
    pub count: u64,
    pub mean_tenths: Option<i64>,
    pub nps_per_mille: Option<i64>,
    pub satisfied_per_mille: Option<i64>,
    pub reopened_per_mille: Option<i64>,
    pub repeat_contact_per_mille: Option<i64>,
    pub credited_per_mille: Option<i64>,
    pub cancelled_within_90_days_per_mille: Option<i64>,
}

#[derive(ToSchema)]
pub struct DecisionCount {
    /// `sent`, `not_sampled` or `suppressed`.
    pub decision: String,
    pub reason: Option<String>,
    pub count: u64,
}

/// Scores by group next to outcomes, and every decision counted.
#[derive(ToSchema)]
pub struct SurveyReport {
    pub rows: Vec<SurveyRow>,
    /// NPS of customers recovered from an incident minus that of customers with no
    /// problem, per mille; null until both groups have answers.
    pub recovery_paradox_per_mille: Option<i64>,
    pub decisions: Vec<DecisionCount>,
}

/// Recovery over a period.
#[derive(ToSchema)]
pub struct RecoveryMetrics {
    #[schema(value_type = String, format = DateTime)]
    pub from: String,
    #[schema(value_type = String, format = DateTime)]
    pub to: String,
    pub incidents: u64,
    pub time_to_first_notice: Seconds,
    pub time_to_all_told: Seconds,
    pub contacts: u64,
    pub told_before_contact_per_mille: Option<u64>,
    pub first_estimate_error: Seconds,
    pub time_to_credit: Seconds,
    pub credits: u64,
    pub credited_without_asking_per_mille: Option<u64>,
    pub visits_ended: u64,
    pub visits_failed: u64,
    pub missed_appointment_per_mille: Option<u64>,
    pub cases: u64,
    pub first_response: Seconds,
    pub resolution: Seconds,
    pub cancel_steps_max: i32,
    pub sign_up_steps_max: i32,
    /// The most clicks any cancellation took (amends' leaving page counts its own).
    pub leave_clicks_max: Option<i32>,
    /// The most clicks any sign-up took, as the provider reported them (`clicks`).
    pub join_clicks_max: Option<i32>,
    /// Leaving took no more clicks than joining; `null` until both were counted.
    pub leaving_as_easy_as_joining: Option<bool>,
    pub cancellations: u64,
    pub sign_ups: u64,
    pub surveys: SurveyReport,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    Arrived,
    Completed,
    CancelledByCustomer,
    CancelledByProvider,
    Missed,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FailureKind {
    NoShow,
    LateCancellation,
}

/// A failed visit: what went wrong, and when (fixed by the record).
#[derive(ToSchema)]
pub struct Failure {
    pub kind: FailureKind,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
}

/// A slot held for the rebooking of a failed visit until `until`.
#[derive(ToSchema)]
pub struct Hold {
    pub technician_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
    #[schema(value_type = String, format = DateTime)]
    pub until: String,
}

/// Who acted on a visit, and how.
#[derive(ToSchema)]
pub struct AppointmentActionRecord {
    pub reference: String,
    pub version: i64,
    /// `arrive`, `complete`, `cancel_by_customer` or `cancel_by_provider`.
    pub action: String,
    pub actor: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
}

/// A visit: its record, its failure as of now, held slots, and what it caused.
#[derive(ToSchema)]
pub struct AppointmentView {
    #[schema(example = "APT-2858-5588")]
    pub reference: String,
    pub customer_id: String,
    pub technician_id: Option<String>,
    pub owner: String,
    #[schema(value_type = String, format = DateTime)]
    pub window_start: String,
    #[schema(value_type = String, format = DateTime)]
    pub window_end: String,
    pub status: AppointmentStatus,
    #[schema(value_type = String, format = DateTime)]
    pub booked_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub arrived_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<String>,
    pub cancel_notice_secs: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub missed_at: Option<String>,
    pub rebooked_from: Option<String>,
    /// When amends finished checking it after its window (or its cancellation).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<String>,
    pub version: i64,
    pub failure: Option<Failure>,
    pub holds: Vec<Hold>,
    pub notices: Vec<NoticeRow>,
    pub credits: Vec<StoredCredit>,
    pub actions: Vec<AppointmentActionRecord>,
}

/// A customer just signed up.
#[derive(ToSchema)]
pub struct SignedUp {
    pub customer_id: String,
    /// `active`.
    pub status: String,
    /// Requests the sign-up took: 1.
    pub steps: u32,
}

#[derive(ToSchema)]
pub struct Offer {
    pub id: String,
    pub text: String,
}

#[derive(ToSchema)]
pub struct Ease {
    pub cancel_steps: u64,
    pub sign_up_steps: u64,
}

#[derive(ToSchema)]
pub struct CycleSpan {
    #[schema(value_type = String, format = DateTime)]
    pub start: String,
    #[schema(value_type = String, format = DateTime)]
    pub end: String,
}

/// One line of a final bill.
#[derive(ToSchema)]
pub struct BillLine {
    pub code: BillLineCode,
    /// Signed minor units: positive is charged, negative is owed to the customer.
    pub minor: i64,
    pub explanation: String,
    /// The part of the cycle the line is for, in seconds (0 for credits).
    pub seconds: i64,
}

/// What a line of the final bill is.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum BillLineCode {
    UnusedRefund,
    UsedCharge,
    Credits,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AuditStepKind {
    Requested,
    ReasonSkipped,
    ReasonGiven,
    RetentionOfferShown,
    FinalBillComputed,
    Confirmed,
}

/// A step's kind, and its own fields (`channel`, `reason`, `offer_id`, `total_minor`,
/// `reference` and `effective_at`) beside it.
#[derive(ToSchema)]
pub struct AuditStepChange {
    pub kind: AuditStepKind,
}

/// The final bill: each line explained, the total signed.
#[derive(ToSchema)]
pub struct FinalBill {
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: String,
    pub cycle: CycleSpan,
    pub lines: Vec<BillLine>,
    pub total_minor: i64,
    pub currency: String,
    /// Why the cycle has no line, when it has none.
    #[schema(required = false)]
    pub notes: Vec<String>,
}

/// One recorded step of a cancellation: when, and what (`step` names it, and its own
/// fields sit beside).
#[derive(ToSchema)]
pub struct AuditStep {
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    pub step: AuditStepChange,
}

/// The confirmation of a cancellation.
#[derive(ToSchema)]
pub struct CancellationView {
    #[schema(example = "CXL-2858-5588")]
    pub reference: String,
    pub customer_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: String,
    pub reason: Option<String>,
    pub retention_offer: Option<Offer>,
    pub final_bill: FinalBill,
    pub ease: Ease,
    pub audit: Vec<AuditStep>,
}
