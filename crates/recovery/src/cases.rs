//! Individual recovery cases (issue 6): the people who own them, and cases opened, acted
//! on and read through the core's rules (`amends_core::case`).
//!
//! A case is its event log. Every action reads the log, replays it, lets the core decide
//! what the command appends (or refuse it, changing nothing), and appends under the
//! version it read: two people acting at once cannot fork a log; the second is told the
//! case changed and reads it again. What a step owes outside the log (the customer's
//! notice; the credit of a goodwill gesture) is written after the step, keyed by the
//! step's final sequence, and marked done on the case (`notified_version`): at once, and
//! by the next tick after a crash, the same keys each time.

use super::fanout::{Batch, Instants};
use super::{Engine, EngineError};
use amends_core::book::parse_id;
use amends_core::case::{
    AMENDS, Actor, Case, CaseError, CaseEvent, CaseSource, Change, Command, FIRST_CONTACT_LOOKBACK_DAYS_MAX,
    Fault, MemoryKind, OpenCase, Playbook, Role,
};
use amends_core::cycle::cycle_containing;
use amends_core::id::CustomerId;
use amends_core::money::Money;
use amends_core::notice::{NoticeContext, NoticeKind};
use amends_store::{
    AgentRow, CaseEventRow, CaseFilter, CaseOpening, CaseRow, CreditFilter, CreditRow, ImpactRow,
    IncidentRow, NoticeRow, StoreError,
};
use jiff::{SignedDuration, Timestamp};
use minijinja::value::Value;
use serde::Serialize;
use serde_json::json;

/// The most cases one page of `GET /v1/cases` holds.
pub const CASES_PAGE_MAX: u32 = 1_000;
/// The most agents one `PUT /v1/agents` holds.
pub const AGENTS_MAX: usize = 10_000;
/// The most notices and credits a case view shows of its customer's (the newest).
pub const CUSTOMER_HISTORY_MAX: usize = 100;
/// The policy id under which goodwill gestures are written to the ledger.
pub const GOODWILL_POLICY: &str = "goodwill";

/// What can go wrong with a case, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    /// The input is wrong: fix it and send it again.
    #[error("{0}")]
    Invalid(String),
    /// The rules refuse it as the case stands (a hand-over already waiting, a case not
    /// yet fixed, a re-open window that has passed).
    #[error("{0}")]
    Refused(CaseError),
    /// The actor may not do this (not the owner, above their goodwill limit).
    #[error("{0}")]
    Forbidden(String),
    #[error("case {0} not found")]
    NotFound(String),
    /// Someone else changed the case between reading and writing it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for CasesError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CaseNotFound(id) => CasesError::NotFound(id),
            e @ StoreError::CaseConflict { .. } => CasesError::Conflict(e.to_string()),
            other => CasesError::Engine(other.into()),
        }
    }
}

impl From<CaseError> for CasesError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::NotOwner { .. }
            | CaseError::NotOfferedTo { .. }
            | CaseError::GoodwillAboveLimit { .. } => CasesError::Forbidden(e.to_string()),
            CaseError::Empty { .. }
            | CaseError::TooLong { .. }
            | CaseError::ControlCharacter { .. }
            | CaseError::ReservedId { .. }
            | CaseError::NotPositive { .. }
            | CaseError::NotAnAgent { .. }
            | CaseError::HandoverToOwner { .. }
            | CaseError::CurrencyMismatch { .. }
            | CaseError::FirstContactAfterOpening { .. }
            | CaseError::FirstContactTooEarly { .. } => CasesError::Invalid(e.to_string()),
            other => CasesError::Refused(other),
        }
    }
}

/// One person as the directory is given: `PUT /v1/agents`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub id: String,
    pub name: String,
    /// `agent`, `lead` or `admin`.
    #[schema(value_type = AgentRole)]
    pub role: String,
    /// The lead their cases escalate to (a lead or an admin in the same list or stored).
    #[serde(default)]
    pub lead: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What a person in the directory may do: an agent owns cases; a lead and an admin
/// act on any.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AgentRole {
    Agent,
    Lead,
    Admin,
}

/// The most bytes an agents file may have.
pub const AGENTS_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The people of an agents file, each with its place (`file:line`), and the lines that
/// could not be read: checked with the rest, so every bad line is named in one go.
#[derive(Debug, Default)]
pub struct AgentsFile {
    pub agents: Vec<AgentInput>,
    pub places: Vec<String>,
    pub errors: Vec<String>,
}

/// People from a CSV file with the columns `id,name,role,lead,active` (`lead` and
/// `active` may be empty). Every bad line is named with its line number in the file.
pub fn read_agents_csv(path: &std::path::Path) -> Result<AgentsFile, CasesError> {
    let io = |e: std::io::Error| CasesError::Invalid(format!("{}: {e}", path.display()));
    if std::fs::metadata(path).map_err(io)?.len() > AGENTS_FILE_BYTES_MAX {
        return Err(CasesError::Invalid(format!("{}: over {AGENTS_FILE_BYTES_MAX} bytes", path.display())));
    }
    let breaks = crate::import::LineBreaks::default();
    let mut reader = csv::Reader::from_reader(breaks.watch(std::fs::File::open(path).map_err(io)?));
    let headers =
        reader.headers().map_err(|e| CasesError::Invalid(format!("{}: {e}", path.display())))?.clone();
    let mut file = AgentsFile::default();
    for record in reader.records() {
        let (record, line) = match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| breaks.line_of(p.byte()));
                (record, line)
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| breaks.line_of(p.byte()));
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => {
                        format!("has {len} fields where the header has {}", headers.len())
                    }
                    _ => e.to_string(),
                };
                file.errors.push(format!("{}:{line}: {problem}", path.display()));
                continue;
            }
        };
        match record.deserialize::<AgentCsv>(Some(&headers)) {
            Ok(row) => {
                file.agents.push(row.into_input(&mut file.errors, path, line));
                file.places.push(format!("{}:{line}", path.display()));
            }
            Err(e) => file.errors.push(format!("{}:{line}: {e}", path.display())),
        }
    }
    Ok(file)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentCsv {
    id: String,
    name: String,
    role: String,
    #[serde(default)]
    lead: String,
    #[serde(default)]
    active: String,
}

impl AgentCsv {
    fn into_input(self, errors: &mut Vec<String>, path: &std::path::Path, line: u64) -> AgentInput {
        let active = match self.active.trim() {
            "" | "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => {
                errors.push(format!("{}:{line}: active {other:?} is not true or false", path.display()));
                true
            }
        };
        let lead = Some(self.lead.trim().to_string()).filter(|l| !l.is_empty());
        AgentInput { id: self.id, name: self.name, role: self.role, lead, active }
    }
}

/// A case as the API shows it: the row, the playbook as of now, the log, and what the
/// customer was already told and credited (for a case an incident caused, that is what
/// the owner must know before calling them).
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub case_id: String,
    pub customer_id: String,
    pub owner: String,
    pub status: String,
    pub source: CaseSource,
    pub fault: Fault,
    pub summary: String,
    pub first_contact_at: Timestamp,
    pub opened_at: Timestamp,
    /// The hand-over waiting for acceptance, if any: to whom.
    pub handover_to: Option<String>,
    pub playbook: Playbook,
    pub events: Vec<CaseEvent>,
    pub customer_notices: Vec<NoticeRow>,
    pub customer_credits: Vec<CreditRow>,
}

/// One action on a case, as the API takes it (`{"action": "respond", "message": "..."}`)
/// and as the CLI does (`amends case act CASE-000001 --as ann respond --message ...`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema, clap::Subcommand)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseAction {
    /// The first response to the customer, in the owner's own words (sent to them).
    Respond {
        /// What the customer reads.
        #[arg(long)]
        message: String,
    },
    /// Offer the case to another agent, with a note for them (not sent to the customer).
    OfferHandover {
        /// The agent offered the case.
        #[arg(long)]
        to: String,
        /// What they need to know to take it on.
        #[arg(long)]
        note: String,
    },
    /// Accept a case offered to you; the customer is told who owns it now.
    AcceptHandover {
        /// A note for the log, if any.
        #[serde(default)]
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Decline a case offered to you, saying why.
    DeclineHandover {
        /// Why, for the agent who offered it.
        #[arg(long)]
        note: String,
    },
    /// Take back an offer nobody answered.
    WithdrawHandover {
        /// A note for the log, if any.
        #[serde(default)]
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Stop the target clock while waiting on something outside your hands.
    Pause {
        /// What the case waits on (shown in the log and the playbook).
        #[arg(long)]
        reason: String,
    },
    /// Start the target clock again.
    Resume,
    /// A goodwill gesture, in minor units of the case's currency (the customer's plan's),
    /// within your role's limit; written to the credit ledger.
    AddGoodwill {
        /// The amount in minor units (1500 is 15.00).
        #[arg(long)]
        amount_minor: i64,
        /// Why: it explains the credit on the statement and in the customer's notice.
        #[arg(long)]
        note: String,
    },
    /// The verified fix: stops the customer's clock.
    Fix {
        /// What was done, and how it was checked.
        #[arg(long)]
        note: String,
    },
    /// An apology or thank-you note after the fix (sent to the customer).
    SendMemoryNote {
        /// `apology` or `thank_you`.
        #[schema(value_type = String)]
        #[arg(long, value_parser = memory_kind)]
        kind: MemoryKind,
        /// What the customer reads.
        #[arg(long)]
        text: String,
    },
    /// Close a fixed case (record the fix first).
    Close,
    /// Re-open a fixed or closed case within the re-open window.
    Reopen {
        /// Why it is not fixed after all.
        #[arg(long)]
        reason: String,
    },
    /// Compensation by the customer's policies for what the case is about, from its
    /// facts: written to the ledger and recorded on the case. The policy sets the amount,
    /// not the person; the same facts again change nothing.
    CompensateByPolicy {
        #[command(subcommand)]
        facts: CaseFacts,
    },
}

/// What a case is about, as the compensation policies read it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema, clap::Subcommand)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseFacts {
    /// A total loss of service the customer reported, fixed at `fixed_at` (policies such
    /// as Ofcom's pay a repair that took too long).
    Repair {
        /// When the customer reported the loss (RFC 3339).
        #[schema(value_type = String, format = DateTime)]
        #[arg(long)]
        reported_at: Timestamp,
        /// When service was back (RFC 3339).
        #[schema(value_type = String, format = DateTime)]
        #[arg(long)]
        fixed_at: Timestamp,
    },
    /// A new service promised for one date that went live on another.
    Provision {
        /// The date promised (2026-12-01).
        #[schema(value_type = String, format = Date)]
        #[arg(long)]
        promised: jiff::civil::Date,
        /// The date it went live.
        #[schema(value_type = String, format = Date)]
        #[arg(long)]
        live: jiff::civil::Date,
    },
}

fn memory_kind(s: &str) -> Result<MemoryKind, String> {
    MemoryKind::parse(s).ok_or_else(|| format!("{s:?} is not apology or thank_you"))
}

/// What opening a case needs from a person: `POST /v1/cases`.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub customer_id: String,
    /// The first owner; the opener when absent.
    pub owner: Option<String>,
    pub source: CaseSource,
    pub fault: Fault,
    pub summary: String,
    /// When the customer first got in touch; now when absent.
    pub first_contact_at: Option<Timestamp>,
}

/// What one pass of the case steps in [`Engine::tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    pub escalated: u64,
    /// Targets about to be missed on cases whose owner has no lead (logged every pass).
    pub without_lead: u64,
    /// Follow-ups recorded (and so queued to their customers).
    pub followed_up: u64,
    /// Notices queued to customers for what their cases recorded.
    pub notices_queued: u64,
}

/// Cases read per page by the tick's case steps.
const CASE_STEP_PAGE: u32 = 500;

impl Engine {
    /// Replaces or adds the people in `agents`, checked whole first: a role that is not
    /// one, a lead who is not a lead or an admin, or an agent who is their own lead
    /// refuses the whole list with every problem named.
    pub async fn put_agents(&self, agents: &[AgentInput]) -> Result<u64, CasesError> {
        let places: Vec<String> = (0..agents.len()).map(|i| format!("agents[{i}]")).collect();
        self.put_agents_at(agents, &places, Vec::new()).await
    }

    /// `put_agents` for an agents file: its problems name the file's lines, the lines it
    /// could not read among them.
    pub async fn put_agents_file(&self, file: AgentsFile) -> Result<u64, CasesError> {
        self.put_agents_at(&file.agents, &file.places, file.errors).await
    }

    /// `put_agents`, each agent named in a problem by its place, refused with `errors`
    /// (found before) and every problem of its own at once.
    async fn put_agents_at(
        &self,
        agents: &[AgentInput],
        places: &[String],
        mut errors: Vec<String>,
    ) -> Result<u64, CasesError> {
        if agents.len() > AGENTS_MAX {
            return Err(CasesError::Invalid(format!(
                "{} agents; at most {AGENTS_MAX} per request",
                agents.len()
            )));
        }
        let stored = self.store.agents().await.map_err(EngineError::from)?;
        match check_agents(agents, places, &stored, self.clock.now()) {
            Ok(rows) if errors.is_empty() => {
                Ok(self.store.upsert_agents(&rows).await.map_err(EngineError::from)?)
            }
            Ok(_) => Err(CasesError::Invalid(errors.join("; "))),
            Err(more) => {
                errors.extend(more);
                Err(CasesError::Invalid(errors.join("; ")))
            }
        }
    }

    /// The person behind an agent token, as the core's rules see them; `None` when the
    /// agent is unknown or no longer active.
    pub async fn actor(&self, agent_id: &str) -> Result<Option<Actor>, EngineError> {
        Ok(self.store.agent(agent_id).await?.filter(|a| a.active).and_then(|a| actor_of(&a)))
    }

    /// Opens a case on behalf of `by`; the owner must be an active agent.
    pub async fn open_case(&self, by: &Actor, request: OpenRequest) -> Result<CaseView, CasesError> {
        let now = self.clock.now();
        let book = self.book().await?;
        let Some(index) = book.customer_index(&request.customer_id) else {
            return Err(CasesError::Invalid(format!("customer {} is not known", request.customer_id)));
        };
        let currency = book.plans[book.customer_plan[index as usize] as usize].monthly_price.currency;
        let owner = match &request.owner {
            Some(id) => self.person(id).await?,
            None => by.clone(),
        };
        let open = OpenCase {
            customer_id: request.customer_id.into(),
            owner,
            source: request.source,
            fault: request.fault,
            summary: request.summary,
            first_contact_at: request.first_contact_at.unwrap_or(now),
            currency,
        };
        let opened = Case::open(&by.id, &open, now)?;
        let case = Case::replay(std::slice::from_ref(&opened))?;
        let row = case_row(String::new(), &case, None, now, 1);
        let event = event_row("", 0, &opened)?;
        let id = match self.store.open_case(&row, &event).await? {
            CaseOpening::Opened(id) | CaseOpening::Existing(id) => id,
        };
        self.notify_now(&id).await;
        self.case_view(&id).await
    }

    /// Applies `command` by `actor` to case `case_id`: checked by the core, goodwill
    /// written to the ledger first, then the events appended under the version read.
    pub async fn act_on_case(
        &self,
        case_id: &str,
        actor: &Actor,
        command: Command,
    ) -> Result<CaseView, CasesError> {
        let now = self.clock.now();
        let (row, case) = self.load_case(case_id).await?;
        let events = case.decide(actor, command, now, &self.config.case_rules)?;
        if events.is_empty() {
            return self.case_view(case_id).await;
        }
        self.append(&row, case, &events, now).await?;
        self.notify_now(case_id).await;
        self.case_view(case_id).await
    }

    /// Performs `action` by `actor` on the case: compensation by policy is computed and
    /// written here; every other action is the core's command.
    pub async fn perform(
        &self,
        case_id: &str,
        actor: &Actor,
        action: CaseAction,
    ) -> Result<CaseView, CasesError> {
        match action {
            CaseAction::CompensateByPolicy { facts } => {
                self.compensate_by_policy(case_id, actor, facts).await
            }
            other => {
                let command = self.command_for(other).await?;
                self.act_on_case(case_id, actor, command).await
            }
        }
    }

    /// Evaluates the customer's assigned policies over the case's facts, writes what they
    /// pay to the ledger (key `<customer>/<case>/<kind>/<policy>/<version>`: once per
    /// case and kind of fact; other facts later are refused by the ledger as a conflict),
    /// and records each credit on the case as compensation by `actor`.
    async fn compensate_by_policy(
        &self,
        case_id: &str,
        actor: &Actor,
        facts: CaseFacts,
    ) -> Result<CaseView, CasesError> {
        use amends_core::policy::facts::{Event, EventKind};
        let (_, case) = self.load_case(case_id).await?;
        let book = self.book().await?;
        let index = book.customer_index(case.customer_id()).ok_or_else(|| {
            CasesError::Invalid(format!("customer {} is no longer in the book", case.customer_id()))
        })?;
        let customer = &book.customers[index as usize];
        // The facts must lie within the case's reach: nothing after now, nothing before
        // the customer's first contact less the look-back a case allows, so a person
        // cannot make a policy pay for a year that never was the case's.
        let now = self.clock.now();
        let earliest =
            case.first_contact_at() - SignedDuration::from_hours(24 * FIRST_CONTACT_LOOKBACK_DAYS_MAX);
        let local = |t: Timestamp| t.to_zoned(customer.zone.tz.clone()).date();
        let out_of_reach = |field: &str, value: String| {
            CasesError::Invalid(format!(
                "{field}: {value} is outside the case: from {} (its first contact less {FIRST_CONTACT_LOOKBACK_DAYS_MAX} days) to now ({now})",
                earliest
            ))
        };
        let (kind, what) = match facts {
            CaseFacts::Repair { reported_at, fixed_at } => {
                let span = amends_core::interval::Interval::new(reported_at, fixed_at).ok_or_else(|| {
                    CasesError::Invalid(format!(
                        "fixed_at: {fixed_at} is not after reported_at {reported_at}"
                    ))
                })?;
                if reported_at < earliest {
                    return Err(out_of_reach("reported_at", reported_at.to_string()));
                }
                if fixed_at > now {
                    return Err(out_of_reach("fixed_at", fixed_at.to_string()));
                }
                ("repair", EventKind::Outage { span, reported_at: Some(reported_at) })
            }
            CaseFacts::Provision { promised, live } => {
                if promised < local(earliest) {
                    return Err(out_of_reach("promised", promised.to_string()));
                }
                if live > local(now) {
                    return Err(out_of_reach("live", live.to_string()));
                }
                ("provision", EventKind::Provision { promised, live })
            }
        };
        let event_id = format!("{case_id}/{kind}");
        let event = Event { id: event_id.as_str().into(), what, attributes: Default::default() };
        // On the customer's next statement, as any credit written now.
        let paid = self.credits_for_event(&book, index, &event, &event_id, now)?;
        let (mut rows, mut offers, notes) = (paid.credits, paid.offers, paid.notes);
        // A case records what was credited; an amount paid only on request has nothing to
        // record until the customer claims it, so it is offered only beside a credit.
        if rows.is_empty() && !offers.is_empty() {
            let amounts: Vec<String> = offers
                .iter()
                .map(|o| amends_core::money::format_stored(o.amount_minor, &o.currency, &customer.locale))
                .collect();
            return Err(CasesError::Invalid(format!(
                "the assigned policies pay for this {kind} only when the customer asks ({}): nothing is \
                 credited; grant it as goodwill if they ask",
                amounts.join(", ")
            )));
        }
        if rows.is_empty() {
            return Err(CasesError::Invalid(format!(
                "no assigned policy pays for this {kind}: {}",
                if notes.is_empty() {
                    "no policy applies to this customer".to_string()
                } else {
                    notes.join("; ")
                }
            )));
        }
        // Checked against the case before the ledger is written: a case the actor may not
        // act on gets nothing.
        for row in &rows {
            let currency = amends_core::money::Currency::parse(&row.currency)
                .map_err(|e| CasesError::Invalid(e.to_string()))?;
            let command = Command::RecordCompensation {
                credit_key: row.key.clone(),
                amount_minor: row.amount_minor,
                currency,
                explanation: row.explanation.clone(),
            };
            case.decide(actor, command, now, &self.config.case_rules)?;
        }
        let conflict = |e| match e {
            e @ StoreError::CreditConflict { .. } => CasesError::Conflict(e.to_string()),
            other => CasesError::Engine(other.into()),
        };
        self.store.append_credits(&mut rows).await.map_err(conflict)?;
        // What the policies pay only on request, offered beside: the customer claims it
        // from their page.
        if !offers.is_empty() {
            self.store.append_on_request_offers(&mut offers).await.map_err(conflict)?;
        }
        for row in rows {
            let currency = amends_core::money::Currency::parse(&row.currency)
                .map_err(|e| CasesError::Invalid(e.to_string()))?;
            let command = Command::RecordCompensation {
                credit_key: row.key,
                amount_minor: row.amount_minor,
                currency,
                explanation: row.explanation,
            };
            self.act_on_case(case_id, actor, command).await?;
        }
        self.case_view(case_id).await
    }

    /// The command `action` asks for; a hand-over's target is looked up here, and must
    /// be a known, active agent.
    pub async fn command_for(&self, action: CaseAction) -> Result<Command, CasesError> {
        Ok(match action {
            CaseAction::Respond { message } => Command::Respond { message },
            CaseAction::OfferHandover { to, note } => {
                let to = self.actor(&to).await?.ok_or_else(|| {
                    CasesError::Invalid(format!("hand-over to {to} refused: not a known, active agent"))
                })?;
                Command::OfferHandover { to, note }
            }
            CaseAction::AcceptHandover { note } => Command::AcceptHandover { note },
            CaseAction::DeclineHandover { note } => Command::DeclineHandover { note },
            CaseAction::WithdrawHandover { note } => Command::WithdrawHandover { note },
            CaseAction::Pause { reason } => Command::Pause { reason },
            CaseAction::Resume => Command::Resume,
            CaseAction::AddGoodwill { amount_minor, note } => Command::AddGoodwill { amount_minor, note },
            CaseAction::Fix { note } => Command::Fix { note },
            CaseAction::SendMemoryNote { kind, text } => Command::SendMemoryNote { kind, text },
            CaseAction::Close => Command::Close,
            CaseAction::Reopen { reason } => Command::Reopen { reason },
            CaseAction::CompensateByPolicy { .. } => {
                return Err(CasesError::Invalid("compensate_by_policy is performed, not a command".into()));
            }
        })
    }

    /// Queues what the case owes its customer at once, so the answer to an action is not
    /// held up until the next tick; a failure is logged and the tick finishes the job.
    async fn notify_now(&self, case_id: &str) {
        let result = match self.store.case(case_id).await {
            Ok(Some(row)) => self.notify_case(&row).await,
            Ok(None) => Ok(0),
            Err(e) => Err(e.into()),
        };
        if let Err(error) = result {
            tracing::error!(case = case_id, %error, "case notices not queued; the next tick queues them");
        }
    }

    /// The case steps of every tick: escalations, follow-ups that fell due, and the
    /// notices every recorded step owes its customer.
    pub async fn run_case_steps(&self) -> Result<CaseReport, EngineError> {
        let mut report = self.escalate_cases().await?;
        report.followed_up = self.follow_up_cases().await?;
        report.notices_queued = self.notify_cases().await?;
        Ok(report)
    }

    /// Records the follow-up of every case fixed `follow_up_after` ago without one, once.
    async fn follow_up_cases(&self) -> Result<u64, EngineError> {
        let now = self.clock.now();
        let rules = self.config.case_rules;
        let due = self.store.cases_due_follow_up(now - rules.follow_up_after, CASE_STEP_PAGE).await?;
        let mut done = 0;
        for row in due {
            match self.follow_up_case(&row.case_id, now).await {
                Ok(recorded) => done += u64::from(recorded),
                Err(CasesError::Conflict(_)) => {} // acted on meanwhile: the next pass sees it
                Err(e) => {
                    tracing::error!(case = %row.case_id, error = %e, "follow-up failed; retrying next pass")
                }
            }
        }
        Ok(done)
    }

    async fn follow_up_case(&self, case_id: &str, now: Timestamp) -> Result<bool, CasesError> {
        let (row, case) = self.load_case(case_id).await?;
        let rules = &self.config.case_rules;
        if case.due_follow_up(now, rules).is_none() {
            return Ok(false);
        }
        let event = case.follow_up_event(now, rules, None)?;
        self.append(&row, case, &[event], now).await?;
        Ok(true)
    }

    /// Queues the notices of every case with recorded steps not yet notified.
    async fn notify_cases(&self) -> Result<u64, EngineError> {
        let mut queued = 0;
        for row in self.store.cases_to_notify(CASE_STEP_PAGE).await? {
            match self.notify_case(&row).await {
                Ok(n) => queued += n,
                Err(e) => {
                    tracing::error!(case = %row.case_id, error = %e, "case notices failed; retrying next pass")
                }
            }
        }
        Ok(queued)
    }

    /// What each event after `row.notified_version` owes the customer: its notice, keyed
    /// by (customer, case, kind, the event's seq, channel), and for a goodwill gesture its
    /// credit, keyed by (customer, case, goodwill, seq); then records them as done. Both
    /// are written after the event is, under its final seq, so a race between two people
    /// can never leave a credit for a gesture that was not recorded; a crash in between
    /// writes the same keys again on the next tick, a no-op.
    async fn notify_case(&self, row: &CaseRow) -> Result<u64, CasesError> {
        let events = self.case_log(&row.case_id).await?;
        let case = Case::replay(&events).map_err(|e| corrupt(&row.case_id, e.to_string()))?;
        let book = self.book().await?;
        let customer = book.customer_index(case.customer_id());
        let mut queued = 0;
        let mut credits = Vec::new();
        for (seq, event) in events.iter().enumerate().skip(row.notified_version.max(0) as usize) {
            if let Some(credit) = self.goodwill_credit(&row.case_id, &case, seq as i64, event).await? {
                credits.push(credit);
            }
            let (Some(customer), Some((kind, base))) =
                (customer, self.case_notice(&row.case_id, &case, event).await?)
            else {
                continue;
            };
            let batch = Batch {
                kind,
                seq: seq as i64,
                incident_id: &row.case_id,
                base,
                instants: Instants::default(),
                now: self.clock.now(),
            };
            let report =
                self.render_and_queue(&book, &batch, vec![(customer, ())], |_, _| Value::UNDEFINED).await?;
            queued += report.notices_queued;
        }
        if !credits.is_empty() {
            self.store.append_credits(&mut credits).await.map_err(EngineError::from)?;
        }
        self.store.mark_case_notified(&row.case_id, events.len() as i64).await?;
        Ok(queued)
    }

    /// The notice `event` owes the customer, if any: its kind and what it says.
    async fn case_notice(
        &self,
        case_id: &str,
        case: &Case,
        event: &CaseEvent,
    ) -> Result<Option<(NoticeKind, NoticeContext)>, CasesError> {
        let (kind, message, note_kind, gift, speaker) = match &event.change {
            Change::FirstResponse { message } => {
                (NoticeKind::CaseResponse, message.clone(), "", None, event.by.as_str())
            }
            Change::HandoverAccepted { .. } => {
                (NoticeKind::CaseOwner, String::new(), "", None, event.by.as_str())
            }
            Change::MemoryNote { kind, text } => {
                (NoticeKind::CaseNote, text.clone(), kind.as_str(), None, event.by.as_str())
            }
            Change::FollowUp { gift } => {
                (NoticeKind::CaseFollowUp, String::new(), "", gift.clone(), case.owner())
            }
            // A gesture the customer is not told of is no gesture: it is announced as a note
            // of its own, with the amount and the statement it will be on.
            Change::Goodwill { note, .. } => {
                (NoticeKind::CaseNote, note.clone(), GOODWILL_POLICY, None, event.by.as_str())
            }
            _ => return Ok(None),
        };
        let (compensation, statement) = self.goodwill_words(case_id, case, event).await?;
        let owner_name = match self.store.agent(speaker).await.map_err(EngineError::from)? {
            Some(agent) => agent.name,
            None => speaker.to_string(),
        };
        let base = NoticeContext {
            provider_name: self.config.provider_name.clone(),
            case_id: case_id.into(),
            owner_name,
            message,
            note_kind: note_kind.to_string(),
            gift,
            compensation,
            statement,
            ..NoticeContext::default()
        };
        Ok(Some((kind, base)))
    }

    /// Opens a case for each customer still offline when the detected incident was
    /// resolved: their still-down notice told them one is open. Owned by an active agent
    /// chosen by a hash of the customer's id (so a re-run picks the same one), opened by
    /// amends under the source key `incident:<id>:<customer>` (so a re-run opens nothing
    /// twice), the customer's time starting when they were affected. Without any active
    /// agent nothing can own a case: logged, and the customers stay listed for follow-up
    /// (`/v1/incidents/{id}/impacts?follow_up=true`).
    pub(crate) async fn open_outage_cases(&self, incident: &IncidentRow) -> Result<u64, EngineError> {
        let impacts = self.store.impacts(&incident.incident_id).await?;
        let still_down: Vec<&ImpactRow> = impacts.iter().filter(|i| i.follow_up).collect();
        if still_down.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let mut opened = 0;
        for impact in still_down {
            match self.open_still_down_case(incident, &impact.customer_id, impact.affected_at, now).await? {
                Some(CaseOpening::Opened(_)) => opened += 1,
                Some(CaseOpening::Existing(_)) => {}
                None => {
                    tracing::warn!(incident = %incident.incident_id, "customers still offline and no active agent to own their cases");
                    break;
                }
            }
        }
        Ok(opened)
    }

    /// Opens the case of one customer still offline after `incident` was resolved, once:
    /// under the source key `incident:<id>:<customer>`, whether the still-down flow opens
    /// it or the customer does from their page. Owned by an active agent chosen by a hash
    /// of the customer's id (so a re-run picks the same one); the customer's time starts
    /// when they were affected. `None` when no active agent can own it (or the customer
    /// left the book).
    pub(crate) async fn open_still_down_case(
        &self,
        incident: &IncidentRow,
        customer_id: &CustomerId,
        affected_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<CaseOpening>, EngineError> {
        let agents: Vec<AgentRow> = self
            .store
            .agents()
            .await?
            .into_iter()
            .filter(|a| a.active && a.role == Role::Agent.as_str())
            .collect();
        if agents.is_empty() {
            return Ok(None);
        }
        let book = self.book().await?;
        let Some(index) = book.customer_index(customer_id) else { return Ok(None) };
        let owner = &agents[spread(customer_id, agents.len())];
        let earliest = now - SignedDuration::from_hours(24 * FIRST_CONTACT_LOOKBACK_DAYS_MAX);
        let open = OpenCase {
            customer_id: customer_id.clone(),
            owner: Actor::new(owner.agent_id.clone(), Role::Agent),
            source: CaseSource::Incident { incident_id: incident.incident_id.clone() },
            fault: Fault::Company,
            summary: format!("Still offline after {} was resolved", incident.incident_id),
            first_contact_at: affected_at.clamp(earliest, now),
            currency: book.plans[book.customer_plan[index as usize] as usize].monthly_price.currency,
        };
        let key = format!("incident:{}:{}", incident.incident_id, customer_id);
        let opening = self.open_system_case(&open, key, now).await?;
        let (CaseOpening::Opened(case_id) | CaseOpening::Existing(case_id)) = &opening;
        // What the customer was credited for the outage is the case's compensation.
        let filter = CreditFilter {
            customer_id: Some(customer_id.clone()),
            source_event: Some(incident.incident_id.to_string()),
            ..CreditFilter::default()
        };
        let credits = self.store.credits(&filter).await?;
        // A failure here (an owner acting at the same instant) must not hold up the
        // incident's credit step; the credit is in the ledger and in the case view.
        if let Err(e) = self.record_compensation_by_amends(case_id, &credits).await {
            tracing::warn!(case = %case_id, error = %e, "outage credit not recorded on the case");
        }
        Ok(Some(opening))
    }

    /// Opens a case amends itself opens (from an incident, from a failed visit), once per
    /// `source_key`: a re-run finds it and writes nothing.
    pub(crate) async fn open_system_case(
        &self,
        open: &OpenCase,
        source_key: String,
        now: Timestamp,
    ) -> Result<CaseOpening, EngineError> {
        let refused = |e: CaseError| EngineError::Invalid(vec![format!("{}: {e}", open.customer_id)]);
        let event = Case::open(AMENDS, open, now).map_err(refused)?;
        let case = Case::replay(std::slice::from_ref(&event)).map_err(refused)?;
        let row = case_row(String::new(), &case, Some(source_key), now, 1);
        let event = event_row("", 0, &event).map_err(|e| EngineError::Invalid(vec![e.to_string()]))?;
        Ok(self.store.open_case(&row, &event).await?)
    }

    /// Records on the case the credits amends wrote for what the case is about (a missed
    /// visit's compensation, an outage's credit): its "lessen" step then shows what the
    /// policy paid. Each is recorded once by its ledger key, so a re-run appends nothing.
    pub(crate) async fn record_compensation_by_amends(
        &self,
        case_id: &str,
        credits: &[CreditRow],
    ) -> Result<(), CasesError> {
        if credits.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let (row, case) = self.load_case(case_id).await?;
        let mut events = Vec::new();
        let mut next = case.clone();
        for credit in credits {
            let currency = amends_core::money::Currency::parse(&credit.currency)
                .map_err(|e| CasesError::Invalid(format!("credit {}: {e}", credit.key)))?;
            let recorded = next.compensation_by_amends(
                now,
                &credit.key,
                credit.amount_minor,
                currency,
                &credit.explanation,
            )?;
            for e in &recorded {
                next.apply(e)?;
            }
            events.extend(recorded);
        }
        if !events.is_empty() {
            self.append(&row, case, &events, now).await?;
        }
        Ok(())
    }

    /// The agent `id` as an actor, for a hand-over or an owner: refused when unknown or
    /// inactive (the core refuses one who is not an agent).
    async fn person(&self, id: &str) -> Result<Actor, CasesError> {
        self.actor(id).await?.ok_or_else(|| CasesError::Invalid(format!("{id} is not a known, active agent")))
    }

    /// A case with its playbook as of now and its customer's recent history.
    pub async fn case_view(&self, case_id: &str) -> Result<CaseView, CasesError> {
        let (row, case) = self.load_case(case_id).await?;
        let events = self.case_log(case_id).await?;
        let mut customer_notices =
            self.store.notices_for_customer(&row.customer_id).await.map_err(EngineError::from)?;
        // Never a survey: its link would let the person being rated answer it, and
        // agents may not see who is asked.
        customer_notices.retain(|n| n.kind != NoticeKind::Survey.as_str());
        customer_notices.reverse();
        customer_notices.truncate(CUSTOMER_HISTORY_MAX);
        let filter = CreditFilter { customer_id: Some(row.customer_id.clone()), ..CreditFilter::default() };
        let mut customer_credits = self.store.credits(&filter).await.map_err(EngineError::from)?;
        customer_credits.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        customer_credits.truncate(CUSTOMER_HISTORY_MAX);
        Ok(CaseView {
            case_id: row.case_id.to_string(),
            customer_id: row.customer_id.to_string(),
            owner: case.owner().to_string(),
            status: case.status().as_str().to_string(),
            source: case.source().clone(),
            fault: case.fault(),
            summary: case.summary().to_string(),
            first_contact_at: case.first_contact_at(),
            opened_at: row.opened_at,
            handover_to: case.pending_handover().map(|h| h.to.clone()),
            playbook: case.playbook(self.clock.now(), &self.config.case_rules),
            events,
            customer_notices,
            customer_credits,
        })
    }

    pub async fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>, CasesError> {
        Ok(self.store.cases(filter).await?)
    }

    /// Escalates, to the owner's lead, every open case whose target is about to be missed,
    /// once per target. Run by every tick; a re-run finds nothing more to do, and two
    /// instances racing append once (the second finds the case changed and leaves it).
    pub async fn escalate_cases(&self) -> Result<CaseReport, EngineError> {
        let now = self.clock.now();
        let mut report = CaseReport::default();
        let mut filter = CaseFilter { open_only: true, limit: CASES_PAGE_MAX, ..CaseFilter::default() };
        loop {
            let page = self.store.cases(&filter).await?;
            for row in &page {
                match self.escalate_case(row, now).await {
                    Ok((escalated, without_lead)) => {
                        report.escalated += escalated;
                        report.without_lead += without_lead;
                    }
                    Err(CasesError::Conflict(_)) => {} // acted on meanwhile: the next pass sees it
                    Err(e) => {
                        tracing::error!(case = %row.case_id, error = %e, "escalation failed; retrying next pass")
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() as u32 == filter.limit => {
                    filter.after_id = Some(last.case_id.to_string())
                }
                _ => return Ok(report),
            }
        }
    }

    async fn escalate_case(&self, row: &CaseRow, now: Timestamp) -> Result<(u64, u64), CasesError> {
        let (row, case) = self.load_case(&row.case_id).await?;
        let owner = self.store.agent(case.owner()).await.map_err(EngineError::from)?;
        let lead = owner.and_then(|o| o.lead_id);
        let due = case.due_escalations(now, &self.config.case_rules, lead.as_deref());
        for target in &due.without_lead {
            tracing::warn!(case = %row.case_id, owner = case.owner(), target = target.as_str(), "target about to be missed and the owner has no lead");
        }
        if !due.events.is_empty() {
            self.append(&row, case, &due.events, now).await?;
        }
        Ok((due.events.len() as u64, due.without_lead.len() as u64))
    }

    /// The case's stored row and its log replayed.
    async fn load_case(&self, case_id: &str) -> Result<(CaseRow, Case), CasesError> {
        let row = self.store.case(case_id).await?.ok_or_else(|| CasesError::NotFound(case_id.to_string()))?;
        let events = self.case_log(case_id).await?;
        let case = Case::replay(&events).map_err(|e| corrupt(case_id, e.to_string()))?;
        Ok((row, case))
    }

    async fn case_log(&self, case_id: &str) -> Result<Vec<CaseEvent>, CasesError> {
        let rows = self.store.case_events(case_id).await?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.doc).map_err(|e| corrupt(case_id, format!("event {}: {e}", r.seq)))
            })
            .collect()
    }

    /// Appends `events` to the case read at `row.version`, with its row refreshed.
    async fn append(
        &self,
        row: &CaseRow,
        mut case: Case,
        events: &[CaseEvent],
        now: Timestamp,
    ) -> Result<(), CasesError> {
        for e in events {
            case.apply(e)?;
        }
        let rows = events
            .iter()
            .enumerate()
            .map(|(i, e)| event_row(&row.case_id, row.version + i as i64, e))
            .collect::<Result<Vec<_>, _>>()?;
        let updated = case_row(
            row.case_id.to_string(),
            &case,
            row.source_key.clone(),
            now,
            row.version + rows.len() as i64,
        );
        let updated = CaseRow { opened_at: row.opened_at, ..updated };
        self.store.append_case_events(&updated, row.version, &rows).await?;
        Ok(())
    }

    /// A goodwill gesture's amount as its customer reads it (their locale's way) and the
    /// statement it will be on; nothing for any other event.
    async fn goodwill_words(
        &self,
        case_id: &str,
        case: &Case,
        event: &CaseEvent,
    ) -> Result<(Option<String>, Option<String>), CasesError> {
        let Some(credit) = self.goodwill_credit(case_id, case, 0, event).await? else {
            return Ok((None, None));
        };
        let book = self.book().await?;
        let Some(index) = book.customer_index(&credit.customer_id) else { return Ok((None, None)) };
        let locale = &book.customers[index as usize].locale;
        let amount = amends_core::money::format_stored(credit.amount_minor, &credit.currency, locale);
        Ok((Some(amount), Some(amends_core::cldr::date_text(&credit.statement, locale))))
    }

    /// The ledger row of `event` if it is a goodwill gesture: on the customer's next
    /// statement, explaining who gave it and why.
    async fn goodwill_credit(
        &self,
        case_id: &str,
        case: &Case,
        seq: i64,
        event: &CaseEvent,
    ) -> Result<Option<CreditRow>, CasesError> {
        let Change::Goodwill { amount_minor, currency, note } = &event.change else { return Ok(None) };
        let book = self.book().await?;
        let index = book.customer_index(case.customer_id()).ok_or_else(|| {
            CasesError::Invalid(format!("customer {} is no longer in the book", case.customer_id()))
        })?;
        let customer = &book.customers[index as usize];
        let statement = cycle_containing(event.at, customer.billing_day, &customer.zone.tz)
            .map_err(|e| CasesError::Invalid(format!("billing cycle of {}: {e}", customer.id)))?
            .end_date;
        let amount = Money::new(*amount_minor, *currency);
        let lines =
            json!([{ "rule": GOODWILL_POLICY, "amount_minor": amount_minor, "by": event.by, "note": note }]);
        Ok(Some(CreditRow {
            key: format!("{}/{case_id}/{GOODWILL_POLICY}/{seq}", customer.id),
            customer_id: customer.id.clone(),
            source_event: case_id.to_string(),
            policy_id: GOODWILL_POLICY.into(),
            policy_version: seq,
            amount_minor: *amount_minor,
            currency: currency.code().to_string(),
            statement: statement.to_string(),
            explanation: format!(
                "A goodwill gesture of {amount} by {} on case {case_id}: {note}. On the statement of {statement}.",
                event.by
            ),
            lines_json: lines.to_string(),
            created_at: event.at,
        }))
    }
}

/// The agents as rows, or every problem with them.
fn check_agents(
    agents: &[AgentInput],
    places: &[String],
    stored: &[AgentRow],
    now: Timestamp,
) -> Result<Vec<AgentRow>, Vec<String>> {
    let mut errors = Vec::new();
    let role_of = |id: &str| -> Option<Role> {
        agents
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.role.as_str())
            .or_else(|| stored.iter().find(|a| a.agent_id == id).map(|a| a.role.as_str()))
            .and_then(Role::parse)
    };
    let mut seen = std::collections::HashSet::new();
    for (a, at) in agents.iter().zip(places) {
        if let Err(e) = parse_id("id", &a.id) {
            errors.push(format!("{at}: {e}"));
        } else if a.id == AMENDS {
            errors.push(format!("{at}: id {AMENDS:?} is amends' own"));
        } else if !seen.insert(a.id.as_str()) {
            errors.push(format!("{at}: id {} appears twice", a.id));
        }
        if a.name.trim().is_empty() {
            errors.push(format!("{at}: name is empty"));
        }
        if Role::parse(&a.role).is_none() {
            errors.push(format!("{at}: role {:?} is not agent, lead or admin", a.role));
        }
        if let Some(lead) = &a.lead {
            match role_of(lead) {
                _ if lead == &a.id => errors.push(format!("{at}: {} cannot be their own lead", a.id)),
                Some(Role::Lead | Role::Admin) => {}
                Some(Role::Agent) => {
                    errors.push(format!("{at}: lead {lead} is an agent, not a lead or an admin"))
                }
                None => errors.push(format!("{at}: lead {lead} is not known")),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(agents
        .iter()
        .map(|a| AgentRow {
            agent_id: a.id.clone(),
            name: a.name.trim().to_string(),
            role: a.role.clone(),
            lead_id: a.lead.clone(),
            active: a.active,
            updated_at: now,
        })
        .collect())
}

/// Which of `n` agents owns a customer's case: a stable hash of their id, so the same
/// customer gets the same agent on every re-run, and customers spread evenly.
pub(crate) fn spread(customer_id: &str, n: usize) -> usize {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(customer_id.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
    (head % n as u64) as usize
}

fn actor_of(agent: &AgentRow) -> Option<Actor> {
    Some(Actor::new(agent.agent_id.clone(), Role::parse(&agent.role)?))
}

/// The row of `case` as of its log.
fn case_row(
    case_id: String,
    case: &Case,
    source_key: Option<String>,
    now: Timestamp,
    version: i64,
) -> CaseRow {
    let (source, source_id) = match case.source() {
        CaseSource::Contact => ("contact", None),
        CaseSource::Manual => ("manual", None),
        CaseSource::Incident { incident_id } => ("incident", Some(incident_id.to_string())),
        CaseSource::Appointment { appointment_id } => ("appointment", Some(appointment_id.clone())),
    };
    CaseRow {
        case_id: case_id.into(),
        customer_id: case.customer_id().clone(),
        owner: case.owner().to_string(),
        status: case.status(),
        source: source.into(),
        source_id,
        source_key,
        first_contact_at: case.first_contact_at(),
        opened_at: case.opened().at,
        updated_at: now,
        version,
        notified_version: 0,
        fixed_at: case.fixed_at(),
        followed_up: case.follow_up().is_some(),
    }
}

fn event_row(case_id: &str, seq: i64, event: &CaseEvent) -> Result<CaseEventRow, CasesError> {
    let doc = serde_json::to_string(event)
        .map_err(|e| CasesError::Engine(EngineError::Invalid(vec![e.to_string()])))?;
    Ok(CaseEventRow {
        case_id: case_id.into(),
        seq,
        at: event.at,
        by: event.by.clone(),
        kind: event.change.name().to_string(),
        doc,
    })
}

fn corrupt(case_id: &str, reason: String) -> CasesError {
    CasesError::Engine(EngineError::Store(StoreError::Corrupt {
        table: "case_events",
        reason: format!("case {case_id}: {reason}"),
    }))
}
