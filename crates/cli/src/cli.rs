//! The command line. Each subcommand parses its arguments and calls into the library.

use amends_core::incident::{Declaration, IncidentState, Translations, UpdateRequest};
use amends_core::policy::Attribute;
use amends_recovery::Engine;
use amends_recovery::import::ImportInput;
use amends_recovery::progress::{Progress, ProgressView};
use amends_recovery::tokens::{self, Scope};
use amends_server::settings::{Overrides, Settings};
use amends_sinks::export::{Format, export_credits};
use amends_store::CreditFilter;
use amends_tools::terminal::progress_bar;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// amends: tell every affected customer first, keep them posted, and credit them
/// automatically, exactly once.
#[derive(Debug, Parser)]
#[command(name = "amends", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Overrides,
    /// Print what a command did as JSON (the default when standard output is not a
    /// terminal; on a terminal, a short summary).
    #[arg(long, global = true, help_heading = "Settings (every command)")]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load plans.csv, topology.csv and customers.csv from a directory (upsert by id; a
    /// bad file is refused whole).
    Import {
        /// The directory holding plans.csv, topology.csv and customers.csv (README, File
        /// formats).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Declare, update, resolve and look at incidents.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Run the steps that follow from what is recorded: automatic updates for lapsed
    /// estimates, notices for new timeline entries, credits for resolved incidents.
    Tick,
    /// Send every notice that is due, through SMTP or the file channel.
    Deliver,
    /// The credit ledger.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// The notice outbox.
    #[command(subcommand)]
    Notices(NoticesCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The people who own cases.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Individual recovery cases. The CLI has the database's full rights: `--as` names the
    /// person the step is recorded under, and the case's rules check what they may do.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Technicians' visits: book, record arrival, completion or a cancellation, read.
    #[command(subcommand)]
    Appointment(AppointmentCommand),
    /// Joining and leaving: one command each.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Satisfaction surveys: the report (who is asked is the system's decision alone).
    #[command(subcommand)]
    Survey(SurveyCommand),
    /// Serve the HTTP API and run the workers until stopped.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "AMENDS_LISTEN")]
        listen: Option<String>,
        /// Seconds between worker passes (watchdog, fan-out, credits, delivery).
        #[arg(long, default_value_t = 5)]
        poll_seconds: u64,
        /// Also consume device events from NATS JetStream at this URL (nats://host:4222).
        /// Events can always be posted to /v1/telemetry/events.
        #[arg(long, env = "AMENDS_TELEMETRY")]
        telemetry: Option<String>,
        /// The subject device events are published on (default amends.device-events).
        #[arg(long, env = "AMENDS_TELEMETRY_SUBJECT", requires = "telemetry")]
        telemetry_subject: Option<String>,
        /// The JetStream stream that stores them (default AMENDS_DEVICE_EVENTS; created if
        /// absent, and it must store the subject).
        #[arg(long, env = "AMENDS_TELEMETRY_STREAM", requires = "telemetry")]
        telemetry_stream: Option<String>,
        /// The durable consumer detection reads through (default amends-detection; created
        /// if absent, and it must filter on the subject).
        #[arg(long, env = "AMENDS_TELEMETRY_CONSUMER", requires = "telemetry")]
        telemetry_consumer: Option<String>,
    },
    /// Build a synthetic provider, run an outage from declaration to credit on a simulated
    /// clock, print what customers received, then serve the API.
    Demo(amends_tools::demo::DemoArgs),
    /// Measure impact, credits, ledger and outbox writes against a raw bulk insert.
    Bench(amends_tools::bench::BenchArgs),
    /// Evaluate and test compensation policies (see docs/policies.md).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a file of device events (NDJSON) through outage detection on a simulated clock
    /// and print, as NDJSON, each incident opened, merged and resolved (see
    /// docs/telemetry.md). Reads the book from the database; records nothing.
    Replay(ReplayArgs),
}

impl Command {
    /// Whether the command only reads: it must find the data it reads, never create an
    /// empty database beside it and report that nothing is there.
    pub fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Replay(_)
                | Command::Credits(_)
                | Command::Notices(_)
                | Command::Incident(IncidentCommand::List { .. } | IncidentCommand::Show { .. })
                | Command::Case(CaseCommand::Show { .. } | CaseCommand::List { .. })
                | Command::Appointment(AppointmentCommand::Show { .. } | AppointmentCommand::List { .. })
                | Command::Agents(AgentsCommand::List)
                | Command::Survey(SurveyCommand::Report)
                | Command::Token(TokenCommand::List)
        )
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The events, one JSON object per line ("-" for standard input).
    #[arg(long)]
    pub events: PathBuf,
    /// Write every customer's downtime per incident here, as CSV.
    #[arg(long)]
    pub downtime_csv: Option<PathBuf>,
    /// Override the hold-down (default 60, or `[detection] hold_down_seconds`).
    #[arg(long)]
    pub hold_down_seconds: Option<u32>,
    /// Override the default minimum of offline devices for an element to be out.
    #[arg(long)]
    pub min_devices: Option<u32>,
    /// Override the default minimum fraction of offline devices (a decimal, e.g. 0.6).
    #[arg(long)]
    pub min_fraction: Option<String>,
    /// After the last event, move the clock on to this instant (RFC 3339), so hold-downs
    /// that run out by then expire, as in a server that has been running until then.
    #[arg(long)]
    pub until: Option<jiff::Timestamp>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a policy against one customer's facts and print the lines as JSON.
    Eval {
        /// The policy file (TOML).
        #[arg(long)]
        policy: PathBuf,
        /// The facts file (JSON: a customer and their events).
        #[arg(long)]
        facts: PathBuf,
    },
    /// Run every *.json test case under a directory; fails when any case fails.
    Test {
        /// The directory of cases (searched recursively).
        dir: PathBuf,
    },
}

/// The operator's text in other languages: customers whose locale (or language) matches
/// read these instead.
#[derive(Debug, Clone, clap::Args)]
pub struct Translated {
    /// The cause in another language, as LOCALE=TEXT (`es=Corte de fibra`; repeat).
    #[arg(long = "cause-in", value_name = "LOCALE=TEXT", value_parser = parse_local_text)]
    causes: Vec<(String, String)>,
    /// The message in another language, as LOCALE=TEXT (repeat).
    #[arg(long = "message-in", value_name = "LOCALE=TEXT", value_parser = parse_local_text)]
    messages: Vec<(String, String)>,
}

impl Translated {
    /// As the API takes them. Checked with the rest of the declaration or update.
    fn translations(self) -> Translations {
        let mut all = Translations::new();
        for (locale, cause) in self.causes {
            all.entry(locale).or_default().cause = Some(cause);
        }
        for (locale, message) in self.messages {
            all.entry(locale).or_default().message = Some(message);
        }
        all
    }
}

fn parse_local_text(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((locale, text)) if !locale.trim().is_empty() => {
            Ok((locale.trim().to_string(), text.to_string()))
        }
        _ => Err(format!("{s:?}: expected LOCALE=TEXT, e.g. es=Corte de fibra")),
    }
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Declare an incident on one or more elements; every active customer at or below
    /// them is affected and gets an acknowledgement.
    Declare {
        /// An element id (repeat for several).
        #[arg(long = "element", required = true)]
        elements: Vec<String>,
        /// The public cause, as customers will read it.
        #[arg(long)]
        cause: String,
        /// What is being done.
        #[arg(long, default_value = "")]
        message: String,
        /// Estimated time of restoration: an instant with its offset
        /// (2026-11-23T16:00:00Z, 2026-11-23T11:00:00-05:00) or a time from now (+4h).
        /// Leave it out when there is no estimate yet: customers are told one will follow.
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        etr: Option<When>,
        /// When the next update will come at the latest (as --etr).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        next_update_by: When,
        /// When service was lost, if before now (as --etr; -30m is half an hour ago).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        started_at: Option<When>,
        /// acknowledged, identified or monitoring.
        #[arg(long, value_parser = parse_state, default_value = "acknowledged")]
        state: IncidentState,
        /// A fact of the outage policies read as event.attributes.NAME: NAME=VALUE (repeat
        /// for several; storm=true, cause=commercial_power). true/false are booleans, whole
        /// numbers integers, the rest text.
        #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = parse_attribute)]
        attributes: Vec<(String, Attribute)>,
        #[command(flatten)]
        translated: Translated,
    },
    /// Post an update: a new ETR, a new state, a message.
    Update {
        /// The incident (INC-000001).
        id: String,
        /// What customers are told is new.
        #[arg(long, default_value = "")]
        message: String,
        /// A new estimated time of restoration (as for declare: an instant or +4h).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        etr: Option<When>,
        /// A new time for the next update at the latest (as --etr).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        next_update_by: Option<When>,
        /// acknowledged, identified or monitoring.
        #[arg(long, value_parser = parse_state)]
        state: Option<IncidentState>,
        /// A new public cause.
        #[arg(long)]
        cause: Option<String>,
        #[command(flatten)]
        translated: Translated,
    },
    /// Resolve an incident: restoration notices, then credits.
    Resolve {
        /// The incident (INC-000001).
        id: String,
        /// What customers are told with the restoration.
        #[arg(long, default_value = "")]
        message: String,
        #[command(flatten)]
        translated: Translated,
    },
    /// List incidents.
    List {
        /// Only incidents that are not resolved.
        #[arg(long)]
        open: bool,
    },
    /// Show one incident with its timeline.
    Show {
        /// The incident (INC-000001).
        id: String,
    },
    /// The customers an incident affected, with their time without service: as detection
    /// saw them, or, for a declared incident once it is resolved, everyone at or below
    /// its elements for its whole span.
    Impacts {
        /// The incident (INC-000001).
        id: String,
        /// Only customers still offline when it was resolved (listed for follow-up).
        #[arg(long)]
        follow_up: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Export the ledger for billing.
    Export {
        /// csv (one row per credit, the columns billing imports) or json.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Only credits for this incident.
        #[arg(long)]
        incident: Option<String>,
        /// Only credits for this customer.
        #[arg(long)]
        customer: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NoticesCommand {
    /// Notices of one customer, as JSON.
    List {
        /// The customer's id.
        #[arg(long)]
        customer: String,
    },
    /// Counts by kind and status, optionally for one incident.
    Counts {
        /// Only this incident's notices.
        #[arg(long)]
        incident: Option<String>,
    },
    /// What the customer would read about the incident: every notice kind (or those given)
    /// in every locale, on each channel they can be reached on. Sends nothing.
    Preview {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The incident (INC-000001).
        #[arg(long)]
        incident: String,
        /// acknowledgement, update, restored, credit or still_down; repeatable.
        #[arg(long = "kind", value_parser = parse_kind)]
        kinds: Vec<amends_core::notice::NoticeKind>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(s: &str) -> Result<amends_core::notice::NoticeKind, String> {
    amends_core::notice::NoticeKind::parse(s).ok_or_else(|| {
        let kinds: Vec<&str> = amends_core::notice::NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("{s:?} is not a notice kind; one of {}", kinds.join(", "))
    })
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add or replace people from a CSV file with the columns `id,name,role,lead,active`
    /// (`role` agent, lead or admin; `lead` and `active` may be empty: no lead, active).
    /// The whole file is checked first; a bad one writes nothing.
    Import {
        /// The CSV file; errors name its lines.
        #[arg(long)]
        file: PathBuf,
    },
    /// Every person, as JSON.
    List,
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Open a case for a customer; prints it as JSON.
    Open {
        /// The person opening it (and its owner, unless `--owner`).
        #[arg(long = "as")]
        by: String,
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// What went wrong, in a line (the customer reads it in their notices).
        #[arg(long)]
        summary: String,
        /// company, customer or unknown: for reporting only.
        #[arg(long, default_value = "unknown", value_parser = fault)]
        fault: amends_core::case::Fault,
        /// Who owns the case, if not the person opening it.
        #[arg(long)]
        owner: Option<String>,
        /// When the customer first got in touch (an instant, or -2h for two hours ago);
        /// now when absent.
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        first_contact_at: Option<When>,
        /// The incident the case is about, if any.
        #[arg(long)]
        incident: Option<String>,
    },
    /// One action on a case, by `--as`; prints the case as JSON.
    Act {
        /// The case (CASE-000001).
        case: String,
        /// The person the step is recorded under.
        #[arg(long = "as")]
        by: String,
        #[command(subcommand)]
        action: amends_recovery::cases::CaseAction,
    },
    /// A case with its playbook, its log and its customer's notices and credits, as JSON.
    Show {
        /// The case (CASE-000001).
        case: String,
    },
    /// Cases as JSON, in id order.
    List {
        /// Only this customer's cases.
        #[arg(long)]
        customer: Option<String>,
        /// Only the cases this person owns.
        #[arg(long)]
        owner: Option<String>,
        /// Only cases not closed.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppointmentCommand {
    /// Book a visit; the customer is sent the confirmation. Prints the visit as JSON.
    Book {
        /// The person booking (and the visit's owner, unless `--owner`).
        #[arg(long = "as")]
        by: String,
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The technician's id (any id, unless `[appointments] technicians` lists them).
        #[arg(long)]
        technician: Option<String>,
        /// The window's start: an instant with its offset, or a time from now (+1d).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        start: When,
        /// The window's end (as --start).
        #[arg(long, value_parser = parse_instant, allow_hyphen_values = true)]
        end: When,
        /// Who owns the visit, if not the person booking it.
        #[arg(long)]
        owner: Option<String>,
        /// The failed visit this one replaces (it may take the slots held for it).
        #[arg(long)]
        rebooked_from: Option<String>,
    },
    /// Record an arrival, a completion or a cancellation; prints the visit as JSON.
    Act {
        /// The visit's reference (APT-2858-5588).
        reference: String,
        /// The person who does it: the visit's owner, a lead or an admin.
        #[arg(long = "as")]
        by: String,
        #[command(subcommand)]
        action: amends_recovery::appointments::AppointmentAction,
    },
    /// A visit with its failure, held slots, notices and credits, as JSON.
    Show {
        /// The visit's reference (APT-2858-5588).
        reference: String,
    },
    /// Visits as JSON, in reference order.
    List {
        /// Only this customer's visits.
        #[arg(long)]
        customer: Option<String>,
        /// Only this technician's visits.
        #[arg(long)]
        technician: Option<String>,
        /// Only visits in this state: booked, arrived, completed, cancelled_by_customer,
        /// cancelled_by_provider or missed.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Sign a customer up (one command); checked as an import checks a line.
    Join {
        /// The new customer's id (letters, digits, `-`, `_`, `.`).
        #[arg(long)]
        id: String,
        /// Their name, as notices greet them.
        #[arg(long)]
        name: String,
        /// Where email notices go.
        #[arg(long)]
        email: Option<String>,
        /// Where SMS go, in E.164 (+447700900123).
        #[arg(long)]
        phone: Option<String>,
        /// The language and region their notices are written for (en-GB, es, fr-CA).
        #[arg(long)]
        locale: String,
        /// Their IANA time zone (Europe/London): times in notices, billing cycles.
        #[arg(long)]
        timezone: String,
        /// Their plan's id (plans.csv).
        #[arg(long)]
        plan: String,
        /// The network element serving them (topology.csv).
        #[arg(long)]
        element: String,
        /// Their modem, ONT or meter, if it reports to outage detection.
        #[arg(long)]
        device: Option<String>,
        /// The day of the month their billing cycle starts (1 to 28).
        #[arg(long)]
        billing_day: u8,
        /// Their segment, as policies select on it (residential, business...).
        #[arg(long)]
        segment: Option<String>,
        /// Their jurisdiction, as policies select on it (GB-EAW, US-NY...).
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Where the customer asked: web, app, api, phone, chat, email or store.
        #[arg(long, default_value = "phone")]
        channel: String,
        /// The clicks the sign-up took on your own pages, as you counted them: reported in
        /// the recovery metrics beside the clicks to leave.
        #[arg(long)]
        clicks: Option<u32>,
    },
    /// Cancel (one command): prints the confirmation with the reference and final bill.
    Cancel {
        /// The customer's id.
        id: String,
        /// Why, if the customer says (one of `[cancellation] reasons`); may be left out.
        #[arg(long)]
        reason: Option<String>,
        /// Their own words, with `--reason other`.
        #[arg(long)]
        reason_text: Option<String>,
        /// Where the customer asked: web, app, api, phone, chat, email or store.
        #[arg(long, default_value = "phone")]
        channel: String,
        /// The clicks leaving took on your own pages, as you counted them.
        #[arg(long)]
        clicks: Option<u32>,
    },
    /// Print a fresh link to the customer's own page (the one every notice carries):
    /// their outage, notices, credits and preferences, with no password. It works for
    /// a month; give it only to that customer.
    Link {
        /// The customer's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SurveyCommand {
    /// Scores by group next to their outcome signals, and every decision counted, as JSON.
    Report,
    /// Draw a round of the control group: customers with no problem, drawn by amends'
    /// key at `--rate-ppm`, asked like any other (once a quarter, say). A re-run of the
    /// same round changes nothing.
    Control {
        /// The round's name: `2026_q4`, ...
        #[arg(long)]
        round: String,
        /// Parts per million of active customers drawn.
        #[arg(long, default_value_t = 1_000)]
        rate_ppm: u32,
    },
}

fn fault(s: &str) -> Result<amends_core::case::Fault, String> {
    amends_core::case::Fault::parse(s).ok_or_else(|| format!("{s:?} is not company, customer or unknown"))
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once; only its hash is stored. Its id goes to standard
    /// error; with `--json`, the token and its record (id, expiry, ...) as JSON.
    Create {
        /// What it may do: read (look), operator (declare, update, resolve), admin (also
        /// tokens and settings) or agent (one person's cases).
        #[arg(long, value_enum)]
        scope: Scope,
        /// With `--scope agent`: the agent the token speaks for (see `PUT /v1/agents`).
        #[arg(long, required_if_eq("scope", "agent"))]
        agent: Option<String>,
        /// A note of whose or what it is, kept with its hash and shown by `token list`.
        #[arg(long, default_value = "")]
        label: String,
        /// Refuse the token from this long after now on: 90d, 12h, 1h30m (days of 24
        /// hours). Without this or `--expires-at` it never expires.
        #[arg(long, value_parser = parse_expiry_span, conflicts_with = "expires_at")]
        expires_in: Option<jiff::SignedDuration>,
        /// Refuse the token from this instant on (2027-03-01T00:00:00Z, or from now: +90d).
        #[arg(long, value_parser = parse_instant)]
        expires_at: Option<When>,
    },
    /// Every token, revoked and expired ones too, oldest first: id, label, scope, agent,
    /// when it was made, expires, was last used (to within a minute) and was revoked. On a
    /// terminal a table, else (or with `--json`) JSON. Tokens themselves are never shown.
    List,
    /// Revoke a token: from now on it is refused. Revoking again changes nothing (the
    /// first revocation's time stands).
    Revoke {
        /// The token's id as `token list` shows it, or the token itself (amends_...) when
        /// that is all you have.
        id: String,
    },
}

/// `90d`, `12h`, `1h30m`: a length of time from now (days are 24 hours).
fn parse_expiry_span(s: &str) -> Result<jiff::SignedDuration, String> {
    relative(s.trim())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a length of time from now: write it like 90d, 12h or 1h30m"))
}

async fn replay(settings: &Settings, args: ReplayArgs) -> Result<()> {
    use amends_sources::telemetry::{Decimal, ThresholdSettings};
    let mut detection = settings.detection.clone();
    detection.hold_down_seconds = args.hold_down_seconds.or(detection.hold_down_seconds);
    let flags = ThresholdSettings {
        min_devices: args.min_devices,
        min_fraction: args.min_fraction.map(Decimal::Text),
        restore_fraction: None,
    };
    detection.threshold = detection.threshold.overridden_by(flags);
    let config = detection.to_config()?;
    let store = amends_store::open(&settings.database)
        .await
        .with_context(|| format!("opening {}", settings.database))?;
    let book = amends_recovery::book::LoadedBook::from_rows(store.load_book().await?)?;
    let input: Box<dyn std::io::BufRead> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.events)
            .with_context(|| format!("opening {}", args.events.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut csv = match &args.downtime_csv {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let now = settings.clock().now();
    let csv_out = csv.as_mut().map(|w| w as &mut dyn Write);
    amends_sources::telemetry::replay(&book, config, now, args.until, input, &mut out, csv_out)?;
    out.flush()?;
    if let Some(mut w) = csv {
        w.flush()?;
    }
    Ok(())
}

/// An instant on the command line: one with its offset (`2026-11-23T16:00:00Z`), or one
/// relative to now (`+4h`, `+1h30m`, `+2d`, `-20m`), so a command reads the same on any
/// day and under `--now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    At(Timestamp),
    FromNow(jiff::SignedDuration),
}

impl When {
    /// The instant, `now` being the engine's clock. A relative one falls on a whole
    /// minute, as a person would say it ("back by 4:05 PM", never 4:04:37).
    pub fn at(self, now: Timestamp) -> Timestamp {
        match self {
            When::At(at) => at,
            When::FromNow(span) => {
                let at = amends_recovery::clock::after(now, span);
                at.round(jiff::Unit::Minute).unwrap_or(at)
            }
        }
    }
}

/// A [`When`], or an error that shows the forms expected: a time of day alone (`4pm`)
/// names no day and no zone.
fn parse_instant(s: &str) -> Result<When, String> {
    let s = s.trim();
    if let Some((sign, rest)) =
        s.strip_prefix('+').map(|r| (1, r)).or_else(|| s.strip_prefix('-').map(|r| (-1, r)))
    {
        return relative(rest)
            .map(|d| When::FromNow(if sign < 0 { -d } else { d }))
            .ok_or_else(|| format!("{s:?} is not a time from now: write it like +4h, +1h30m, +2d or -20m"));
    }
    s.parse::<Timestamp>().map(When::At).map_err(|_| {
        format!(
            "{s:?} is not an instant: give a date, a time and an offset, like 2026-11-23T16:00:00Z \
             or 2026-11-23T11:00:00-05:00, or a time from now, like +4h"
        )
    })
}

/// `4h`, `1h30m`, `2d`, `90m`: days are 24 hours (the CLI's instants are UTC).
fn relative(s: &str) -> Option<jiff::SignedDuration> {
    let span: jiff::Span = s.parse().ok()?;
    let duration = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).ok()?;
    (!duration.is_negative() && !s.starts_with(['+', '-'])).then_some(duration)
}

/// `NAME=VALUE`, the value typed as a CSV attribute cell is.
fn parse_attribute(s: &str) -> Result<(String, Attribute), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE (storm=true)"))?;
    let value = amends_core::policy::facts::attribute_from_text(value)
        .map_err(|p| format!("{name}: {value:?} {p}"))?;
    Ok((name.to_string(), value))
}

fn parse_state(s: &str) -> Result<IncidentState, String> {
    IncidentState::parse(s).filter(|state| state.is_operator_state()).ok_or_else(|| {
        format!("{s:?} is not a state an operator sets (acknowledged, identified, monitoring)")
    })
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One place sets up logging: `RUST_LOG` filters; by default warnings, except sqlx's
/// "slow statement" warnings, since a bulk write of a million rows is slow by design.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Policy(cmd) = &cli.command {
        return policy(cmd);
    }
    let settings = Settings::resolve(&cli.settings)?;
    let json = cli.json;
    if cli.command.only_reads() {
        settings.ensure_database_exists()?;
    }
    match cli.command {
        Command::Demo(args) => return amends_tools::demo::run(&settings, args).await,
        Command::Replay(args) => return replay(&settings, args).await,
        Command::Bench(args) => return amends_tools::bench::run(&settings, args).await,
        _ => {}
    }
    let engine = settings.engine_with(settings.clock()).await?;
    // Closed once the command is done: SQLite then checkpoints its log into the database
    // file, so the file alone (a backup, a copy) holds everything.
    let store = engine.store().clone();
    let result = match cli.command {
        Command::Import { dir } => import(&engine, &dir).await,
        Command::Incident(cmd) => incident(&engine, cmd, json).await,
        Command::Tick => {
            let report =
                while_working("running the steps that are due", Some(engine.progress()), engine.tick())
                    .await?;
            print_report(&report, json, |r| summary_lines(r, "nothing was due"))
        }
        Command::Deliver => {
            let dispatcher = settings.dispatcher(&engine).await?;
            let report =
                while_working("sending what is due", Some(&dispatcher.progress), dispatcher.deliver_due())
                    .await?;
            print_report(&report, json, |r| summary_lines(r, "nothing was due to send"))
        }
        Command::Credits(CreditsCommand::Export { format, incident, customer, output }) => {
            let filter = CreditFilter {
                customer_id: customer.map(Into::into),
                source_event: incident,
                ..CreditFilter::default()
            };
            let mut out: Box<dyn Write> = match output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            export_credits(engine.store().as_ref(), filter, format, &mut out).await?;
            Ok(out.flush()?)
        }
        Command::Notices(NoticesCommand::List { customer }) => {
            print_json(&engine.store().notices_for_customer(&customer).await?)
        }
        Command::Notices(NoticesCommand::Counts { incident }) => {
            print_json(&engine.store().notice_counts(incident.as_deref()).await?)
        }
        Command::Notices(NoticesCommand::Preview { customer, incident, kinds, json }) => {
            let previews = engine.preview(&customer, &incident, &kinds).await?;
            if json {
                return print_json(&previews);
            }
            // Stored text never reaches the terminal raw: an escape sequence in a name
            // would be a command to it.
            let shown = amends_core::text::printable;
            for p in previews {
                println!(
                    "=== {} · {} · {} · {}\nSubject: {}\n\n{}",
                    p.kind,
                    p.locale,
                    p.channel,
                    p.status,
                    shown(&p.subject),
                    shown(&p.body)
                );
            }
            Ok(())
        }
        Command::Agents(command) => agents(&engine, command).await,
        Command::Case(command) => case(&engine, command, json).await,
        Command::Appointment(command) => appointment(&engine, command, json).await,
        Command::Customer(command) => customer(&engine, command, json).await,
        Command::Survey(SurveyCommand::Report) => print_json(&engine.survey_report().await?),
        Command::Survey(SurveyCommand::Control { round, rate_ppm }) => {
            print_json(&engine.draw_control_round(&round, rate_ppm).await?)
        }
        Command::Token(command) => token(&engine, command, json).await,
        Command::Serve {
            listen,
            poll_seconds,
            telemetry,
            telemetry_subject,
            telemetry_stream,
            telemetry_consumer,
        } => {
            let nats = telemetry.map(|url| {
                amends_sources::detection::nats::NatsSource::new(
                    &url,
                    telemetry_subject.as_deref(),
                    telemetry_stream.as_deref(),
                    telemetry_consumer.as_deref(),
                )
            });
            if let Some(source) = &nats {
                amends_sources::detection::nats::check(source)
                    .await
                    .context("checking the NATS telemetry set-up")?;
            }
            let listen = listen.unwrap_or_else(|| settings.listen.clone());
            let dispatcher = settings.dispatcher(&engine).await?;
            let (ready, bound) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                if let Ok(addr) = bound.await {
                    eprintln!("amends: serving the API on http://{addr} (Ctrl-C to stop)");
                }
            });
            let poll = std::time::Duration::from_secs(poll_seconds.max(1));
            let detection = amends_server::DetectionStart {
                config: amends_sources::detection::ServiceConfig::from_settings(&settings.detection)?,
                nats,
            };
            amends_server::serve(
                engine,
                Some(detection),
                dispatcher,
                &listen,
                poll,
                Some(ready),
                settings.http,
                settings.alerts.clone(),
            )
            .await
        }
        Command::Demo(_) | Command::Bench(_) | Command::Policy(_) | Command::Replay(_) => {
            unreachable!("handled above")
        }
    };
    // Bounded: a task still holding a connection must not keep the process from exiting.
    if tokio::time::timeout(std::time::Duration::from_secs(10), store.close()).await.is_err() {
        tracing::warn!("the database did not close within 10 s");
    }
    result
}

fn policy(cmd: &PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Eval { policy, facts } => print_json(&amends_sources::policies::eval(policy, facts)?),
        PolicyCommand::Test { dir } => {
            let results = amends_sources::policies::test_dir(dir)?;
            print!("{}", amends_sources::policies::report(&results));
            let failed = results.iter().filter(|r| !r.passed()).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} policy cases failed", results.len());
            }
            Ok(())
        }
    }
}

/// Writes `value` to stdout. A reader that went away (`| head`) ends the output quietly,
/// where `println!` would panic.
async fn agents(engine: &Engine, command: AgentsCommand) -> Result<()> {
    match command {
        AgentsCommand::Import { file } => {
            let agents = amends_recovery::cases::read_agents_csv(&file)?;
            let written = engine.put_agents_file(agents).await?;
            eprintln!("amends: {written} agents written");
            Ok(())
        }
        AgentsCommand::List => {
            let agents: Vec<_> = engine
                .store()
                .agents()
                .await?
                .into_iter()
                .map(|a| serde_json::json!({ "id": a.agent_id, "name": a.name, "role": a.role, "lead": a.lead_id, "active": a.active }))
                .collect();
            print_json(&agents)
        }
    }
}

async fn token(engine: &Engine, command: TokenCommand, json: bool) -> Result<()> {
    let (store, now) = (engine.store().as_ref(), engine.clock().now());
    match command {
        TokenCommand::Create { scope, agent, label, expires_in, expires_at } => {
            if agent.is_some() && scope != Scope::Agent {
                anyhow::bail!("--agent goes with --scope agent only");
            }
            let expires_at = expires_in.map(When::FromNow).or(expires_at).map(|w| w.at(now));
            let new = tokens::NewToken { scope, agent_id: agent, label, expires_at };
            let issued = tokens::issue(store, &new, now).await?;
            let view = tokens::TokenView::new(issued.row, now);
            // The token alone on standard output (so `$(amends token create ...)` is it),
            // unless JSON is asked for by name.
            if json {
                let mut shown = serde_json::to_value(&view)?;
                shown["token"] = issued.token.into();
                return print_json(&shown);
            }
            println!("{}", issued.token);
            let expiry = view.expires_at.map_or("never expires".to_string(), |at| format!("expires at {at}"));
            eprintln!("amends: token {} ({}, {expiry}); it is shown this once", view.id, view.scope);
            Ok(())
        }
        TokenCommand::List => print_report(&tokens::list(store, now).await?, json, token_table),
        TokenCommand::Revoke { id } => {
            let revocation = tokens::revoke(store, &id, now).await?.with_context(|| {
                format!("no token has id {:?}; amends token list shows them", tokens::id_named_by(&id))
            })?;
            print_report(&revocation, json, |r| {
                let at = r["token"]["revoked_at"].as_str().unwrap_or("?");
                let id = r["token"]["id"].as_str().unwrap_or("?");
                match r["already"].as_bool() {
                    Some(true) => vec![format!("token {id} was already revoked at {at}")],
                    _ => vec![format!("token {id} revoked at {at}")],
                }
            })
        }
    }
}

/// Tokens as a table: a header, one line each, and `-` where there is nothing.
fn token_table(list: &serde_json::Value) -> Vec<String> {
    let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return vec!["no tokens (amends token create makes one)".into()];
    }
    let header = ["ID", "LABEL", "SCOPE", "AGENT", "STATE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"];
    let keys =
        ["id", "label", "scope", "agent", "state", "created_at", "expires_at", "last_used_at", "revoked_at"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            keys.iter()
                .map(|k| match row[*k].as_str() {
                    Some("") | None => "-".to_string(),
                    // One line per token, whatever a label holds.
                    Some(text) => amends_core::text::printable(text).replace(['\n', '\t'], " "),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..keys.len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(&header)];
    lines.extend(cells.iter().map(|r| line(&r.iter().map(String::as_str).collect::<Vec<_>>())));
    lines
}

/// The person `id` as the rules see them, for `--as`.
async fn person(engine: &Engine, id: &str) -> Result<amends_core::case::Actor> {
    engine
        .actor(id)
        .await?
        .with_context(|| format!("{id} is not a known, active person (amends agents list)"))
}

async fn case(engine: &Engine, command: CaseCommand, json: bool) -> Result<()> {
    use amends_core::case::CaseSource;
    use amends_recovery::cases::OpenRequest;
    let person = async |id: &str| person(engine, id).await;
    let view = match command {
        CaseCommand::Open { by, customer, summary, fault, owner, first_contact_at, incident } => {
            let by = person(&by).await?;
            let source = match incident {
                Some(incident_id) => CaseSource::Incident { incident_id: incident_id.into() },
                None => CaseSource::Contact,
            };
            let first_contact_at = first_contact_at.map(|w| w.at(engine.clock().now()));
            let request =
                OpenRequest { customer_id: customer, owner, source, fault, summary, first_contact_at };
            engine.open_case(&by, request).await?
        }
        CaseCommand::Act { case, by, action } => {
            let by = person(&by).await?;
            engine.perform(&case, &by, action).await?
        }
        CaseCommand::Show { case } => engine.case_view(&case).await?,
        CaseCommand::List { customer, owner, open } => {
            let filter = amends_store::CaseFilter {
                customer_id: customer.map(Into::into),
                owner,
                open_only: open,
                limit: amends_recovery::cases::CASES_PAGE_MAX,
                ..Default::default()
            };
            let rows: Vec<_> = engine
                .cases(&filter)
                .await?
                .into_iter()
                .map(|c| serde_json::json!({ "case_id": c.case_id, "customer_id": c.customer_id, "owner": c.owner, "status": c.status }))
                .collect();
            return print_json(&rows);
        }
    };
    print_report(&view, json, case_lines)
}

/// A case in a few lines: who owns it, where it stands, what comes next, what the
/// customer was told and given.
fn case_lines(v: &serde_json::Value) -> Vec<String> {
    let text = |key: &str| v[key].as_str().unwrap_or("?").to_string();
    let mut lines = vec![format!(
        "{} for {}: {}, owned by {}{}",
        text("case_id"),
        text("customer_id"),
        text("status"),
        text("owner"),
        v["handover_to"].as_str().map(|to| format!(", offered to {to}")).unwrap_or_default()
    )];
    if let Some(next) = v["playbook"]["next"].as_str() {
        let due = v["playbook"]["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["step"] == next))
            .and_then(|s| s["due"]["at"].as_str())
            .map(|at| format!(", due by {at}"))
            .unwrap_or_default();
        lines.push(format!("next: {}{due}", next.replace('_', " ")));
    }
    lines.push(told_and_credited(v, "customer_notices", "customer_credits"));
    lines
}

/// "the customer was sent 3 notices; credited 15.00 GBP", from a view's lists.
fn told_and_credited(v: &serde_json::Value, notices: &str, credits: &str) -> String {
    let sent = v[notices].as_array().map_or(0, Vec::len);
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for c in v[credits].as_array().into_iter().flatten() {
        *totals.entry(c["currency"].as_str().unwrap_or("?").to_string()).or_default() +=
            c["amount_minor"].as_i64().unwrap_or(0);
    }
    let credited: Vec<String> = totals
        .iter()
        .map(|(code, minor)| match amends_core::money::Currency::parse(code) {
            Ok(c) => amends_core::money::Money::new(*minor, c).to_string(),
            Err(_) => format!("{minor} {code} minor units"),
        })
        .collect();
    let plural = if sent == 1 { "" } else { "s" };
    match credited.is_empty() {
        true => format!("notices to the customer: {sent} message{plural}; nothing credited"),
        false => {
            format!("notices to the customer: {sent} message{plural}; credited {}", credited.join(" and "))
        }
    }
}

/// A visit in a few lines: when, with whom, where it stands, what failed and was made good.
fn appointment_lines(v: &serde_json::Value) -> Vec<String> {
    let text = |key: &str| v[key].as_str().unwrap_or("?").to_string();
    let with = v["technician_id"].as_str().map(|t| format!(" with {t}")).unwrap_or_default();
    let mut lines = vec![format!(
        "{} for {}{with}: {}, {} to {}",
        text("reference"),
        text("customer_id"),
        text("status"),
        text("window_start"),
        text("window_end")
    )];
    if let Some(kind) = v["failure"]["kind"].as_str() {
        lines.push(format!("failed: {}", kind.replace('_', " ")));
    }
    if let Some(holds) = v["holds"].as_array().filter(|h| !h.is_empty()) {
        lines.push(format!(
            "{} slot{} held for rebooking",
            holds.len(),
            if holds.len() == 1 { "" } else { "s" }
        ));
    }
    lines.push(told_and_credited(v, "notices", "credits"));
    lines
}

async fn appointment(engine: &Engine, command: AppointmentCommand, json: bool) -> Result<()> {
    use amends_recovery::appointments::BookRequest;
    let view = match command {
        AppointmentCommand::Book { by, customer, technician, start, end, owner, rebooked_from } => {
            let by = person(engine, &by).await?;
            let now = engine.clock().now();
            let request = BookRequest {
                customer_id: customer,
                technician_id: technician,
                start: start.at(now),
                end: end.at(now),
                owner,
                rebooked_from,
            };
            engine.book_appointment(&by, request).await?
        }
        AppointmentCommand::Act { reference, by, action } => {
            let by = person(engine, &by).await?;
            engine.act_on_appointment(&reference, &by, action).await?
        }
        AppointmentCommand::Show { reference } => engine.appointment_view(&reference).await?,
        AppointmentCommand::List { customer, technician, status } => {
            let filter = amends_store::AppointmentFilter {
                customer_id: customer.map(Into::into),
                technician_id: technician,
                status,
                after_reference: None,
                limit: amends_recovery::appointments::APPOINTMENTS_PAGE_MAX,
            };
            let rows: Vec<_> = engine
                .appointments(&filter)
                .await?
                .into_iter()
                .map(|a| serde_json::json!({ "reference": a.reference, "customer_id": a.customer_id, "technician_id": a.technician_id, "window_start": a.window_start, "window_end": a.window_end, "status": a.status }))
                .collect();
            return print_json(&rows);
        }
    };
    print_report(&view, json, appointment_lines)
}

async fn customer(engine: &Engine, command: CustomerCommand, json: bool) -> Result<()> {
    use amends_recovery::accounts::{CancelBody, SignUp};
    match command {
        CustomerCommand::Join {
            id,
            name,
            email,
            phone,
            locale,
            timezone,
            plan,
            element,
            device,
            billing_day,
            segment,
            jurisdiction,
            channel,
            clicks,
        } => {
            let input = SignUp {
                customer_id: id,
                name,
                email,
                phone,
                locale,
                timezone,
                plan_id: plan,
                element_id: element,
                device_id: device,
                billing_day,
                segment,
                jurisdiction,
                channel: Some(channel),
                clicks,
            };
            let row = engine.sign_up(input).await?;
            let joined =
                serde_json::json!({ "customer_id": row.customer_id, "status": row.status, "steps": 1 });
            print_report(&joined, json, |v| {
                vec![format!(
                    "{} joined: {}, in one step",
                    v["customer_id"].as_str().unwrap_or("?"),
                    v["status"].as_str().unwrap_or("?")
                )]
            })
        }
        CustomerCommand::Cancel { id, reason, reason_text, channel, clicks } => {
            let body = CancelBody { reason, reason_text, channel: Some(channel), clicks };
            let view = engine.cancel_account(&id, body).await?;
            print_report(&view, json, |v| {
                let text = |key: &str| v[key].as_str().unwrap_or("?").to_string();
                let mut lines = vec![format!(
                    "{}: {} cancels, effective {}",
                    text("reference"),
                    text("customer_id"),
                    text("effective_at")
                )];
                if let Some(offer) = v["retention_offer"]["text"].as_str() {
                    lines.push(format!("offered once, beside the confirmation: {offer}"));
                }
                lines
            })
        }
        CustomerCommand::Link { id } => {
            let link = engine.page_link(&id).await?;
            print_report(&serde_json::json!({ "customer_id": id, "link": link }), json, |v| {
                vec![v["link"].as_str().unwrap_or("?").to_string()]
            })
        }
    }
}

/// A report as JSON (with `--json`, or when standard output is not a terminal: a script
/// reads it), or as the few lines `human` makes of it.
fn print_report<T: serde::Serialize>(
    report: &T,
    json: bool,
    human: impl Fn(&serde_json::Value) -> Vec<String>,
) -> Result<()> {
    if json || !std::io::stdout().is_terminal() {
        return print_json(report);
    }
    let value = serde_json::to_value(report)?;
    let mut out = std::io::stdout().lock();
    for line in human(&value) {
        writeln!(out, "{}", amends_core::text::printable(&line))?;
    }
    Ok(out.flush()?)
}

/// What a report of counters says, in a few lines: every counter that is not zero, with
/// its section (`fanout: 1,234 notices queued`), or `idle` when all are.
pub fn summary_lines(report: &serde_json::Value, idle: &str) -> Vec<String> {
    fn walk(value: &serde_json::Value, section: &str, lines: &mut Vec<String>) {
        let Some(map) = value.as_object() else { return };
        let mut here = Vec::new();
        for (key, v) in map {
            let words = key.replace('_', " ");
            match v {
                serde_json::Value::Number(n) if n.as_f64().is_some_and(|f| f != 0.0) => {
                    here.push(format!("{} {words}", thousands(n)))
                }
                serde_json::Value::Object(totals) if key == "total_minor" => {
                    let credited: Vec<String> = totals
                        .iter()
                        .filter_map(|(code, n)| {
                            let minor = n.as_i64().filter(|m| *m != 0)?;
                            Some(match amends_core::money::Currency::parse(code) {
                                Ok(c) => amends_core::money::Money::new(minor, c).to_string(),
                                Err(_) => format!("{minor} {code} minor units"),
                            })
                        })
                        .collect();
                    if !credited.is_empty() {
                        here.push(format!("{} credited", credited.join(" and ")));
                    }
                }
                serde_json::Value::Object(_) => walk(v, &words, lines),
                _ => {}
            }
        }
        if !here.is_empty() {
            let prefix = if section.is_empty() { String::new() } else { format!("{section}: ") };
            lines.push(format!("{prefix}{}", here.join(", ")));
        }
    }
    let mut lines = Vec::new();
    walk(report, "", &mut lines);
    if lines.is_empty() {
        lines.push(idle.to_string());
    }
    lines
}

/// `1234567` as `1,234,567`.
fn thousands(n: &serde_json::Number) -> String {
    let text = n.to_string();
    let (digits, rest) = text.split_at(text.find('.').unwrap_or(text.len()));
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}{rest}")
}

/// Runs `work` with a spinner on a terminal's standard error, so a long step is never
/// silent, and with `progress` the step it is on and its count ("INC-000001: computing
/// credits: 350,000 of 1,000,000"); nothing is drawn otherwise.
async fn while_working<T>(
    what: &str,
    progress: Option<&Progress>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        spinner.set_draw_target(ProgressDrawTarget::hidden());
    }
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut work = std::pin::pin!(work);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = every.tick() => {
                if let Some(progress) = progress {
                    spinner.set_message(progress_message(what, &progress.read()));
                }
            }
        }
    };
    spinner.finish_and_clear();
    out
}

/// What the spinner says: the engine's current step and its count when it has one.
fn progress_message(what: &str, view: &ProgressView) -> String {
    let count = |n: u64| thousands(&serde_json::Number::from(n));
    match (view.step.as_str(), view.total) {
        ("", _) => what.to_string(),
        (step, 0) if view.done == 0 => step.to_string(),
        (step, 0) => format!("{step}: {}", count(view.done)),
        (step, total) => format!("{step}: {} of {}", count(view.done.min(total)), count(total)),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(value)?).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The data rows of the book's three files in `dir` (lines after each header), read once
/// quickly for the progress bar's total; a file that cannot be read counts 0 here and is
/// reported by the import itself.
fn rows_in(dir: &std::path::Path) -> u64 {
    use std::io::Read;
    let lines = |name: &str| -> u64 {
        let Ok(mut file) = std::fs::File::open(dir.join(name)) else { return 0 };
        let (mut buf, mut n, mut last) = (vec![0u8; 1 << 16], 0u64, b'\n');
        while let Ok(read) = file.read(&mut buf) {
            if read == 0 {
                break;
            }
            n += buf[..read].iter().filter(|&&b| b == b'\n').count() as u64;
            last = buf[read - 1];
        }
        (n + u64::from(last != b'\n')).saturating_sub(1)
    };
    ["plans.csv", "topology.csv", "customers.csv"].into_iter().map(lines).sum()
}

async fn import(engine: &Arc<Engine>, dir: &std::path::Path) -> Result<()> {
    let input = ImportInput::from_dir(dir)?;
    // The total is known before the first row is written: the bar never grows.
    let bar = progress_bar(rows_in(dir), "writing");
    let progress = |n: u64| {
        bar.set_length(bar.length().unwrap_or(0).max(n));
        bar.set_position(n);
    };
    let summary = engine.import(input, &progress).await;
    bar.finish_and_clear();
    let summary = summary?;
    println!(
        "imported {} plans, {} elements, {} customers (store now holds {} plans, {} elements, {} customers)",
        summary.imported.plans,
        summary.imported.elements,
        summary.imported.customers,
        summary.total.plans,
        summary.total.elements,
        summary.total.customers
    );
    Ok(())
}

async fn incident(engine: &Arc<Engine>, cmd: IncidentCommand, json: bool) -> Result<()> {
    let changed = match cmd {
        IncidentCommand::Declare {
            elements,
            cause,
            message,
            etr,
            next_update_by,
            started_at,
            state,
            attributes,
            translated,
        } => {
            let translations = translated.translations();
            let now = engine.clock().now();
            let declaration = Declaration {
                elements,
                cause,
                message,
                etr: etr.map(|w| w.at(now)),
                next_update_by: next_update_by.at(now),
                started_at: started_at.map(|w| w.at(now)),
                state,
                translations,
                attributes: attributes.into_iter().collect(),
            };
            engine.declare(declaration).await?
        }
        IncidentCommand::Update { id, message, etr, next_update_by, state, cause, translated } => {
            let translations = translated.translations();
            let now = engine.clock().now();
            let (etr, next_update_by) = (etr.map(|w| w.at(now)), next_update_by.map(|w| w.at(now)));
            engine
                .update(&id, UpdateRequest { message, etr, next_update_by, state, cause, translations })
                .await?
        }
        IncidentCommand::Resolve { id, message, translated } => {
            engine.resolve_translated(&id, &message, &translated.translations()).await?
        }
        IncidentCommand::List { open } => return print_json(&engine.store().incidents(open).await?),
        IncidentCommand::Impacts { id, follow_up } => {
            engine.incident(&id).await?;
            let mut impacts = engine.store().impacts(&id).await?;
            impacts.retain(|i| !follow_up || i.follow_up);
            return print_json(&impacts);
        }
        IncidentCommand::Show { id } => {
            let incident = engine.incident(&id).await?;
            let timeline = engine.store().updates(&id).await?;
            return print_json(&serde_json::json!({ "incident": incident, "timeline": timeline }));
        }
    };
    let untranslated = engine.untranslated(&changed).await?;
    warn_untranslated(&untranslated);
    let tick = while_working("telling the customers", Some(engine.progress()), engine.tick()).await?;
    let report = serde_json::json!({ "incident": changed, "processed": tick, "untranslated": untranslated });
    print_report(&report, json, |r| {
        let mut lines = vec![incident_headline(&changed)];
        lines.extend(summary_lines(&r["processed"], "no notice was due yet"));
        lines
    })
}

/// `INC-000001 acknowledged on hub-7; back by 2026-11-23 16:00 UTC; next update by ...`.
fn incident_headline(incident: &amends_store::IncidentRow) -> String {
    let when = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let mut line =
        format!("{} {} on {}", incident.incident_id, incident.state, incident.element_ids.join(", "));
    match (incident.resolved_at, incident.etr) {
        (Some(at), _) => line.push_str(&format!("; resolved at {}", when(at))),
        (None, Some(etr)) => line.push_str(&format!("; back by {}", when(etr))),
        (None, None) => line.push_str("; no estimate yet"),
    }
    if let (None, Some(next)) = (incident.resolved_at, incident.next_update_by) {
        line.push_str(&format!("; next update by {}", when(next)));
    }
    line
}

/// Tells the operator, on standard error, who will read their words untranslated.
fn warn_untranslated(untranslated: &std::collections::BTreeMap<String, u64>) {
    if untranslated.is_empty() {
        return;
    }
    let total: u64 = untranslated.values().sum();
    let who: Vec<String> = untranslated.iter().map(|(language, n)| format!("{language}: {n}")).collect();
    let first = untranslated.keys().next().map_or("es", String::as_str);
    eprintln!(
        "warning: {total} affected customers will read your words untranslated ({}); \
         add --cause-in {first}=... and --message-in {first}=...",
        who.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::{ProgressView, parse_instant, progress_message};
    use jiff::Timestamp;

    #[test]
    fn the_spinner_says_the_step_and_its_count() {
        let view = |step: &str, done, total| ProgressView { step: step.into(), done, total };
        assert_eq!(progress_message("running", &view("", 0, 0)), "running");
        assert_eq!(
            progress_message("running", &view("INC-000001: computing credits", 350_000, 1_000_000)),
            "INC-000001: computing credits: 350,000 of 1,000,000"
        );
        assert_eq!(
            progress_message("running", &view("INC-000001: writing 8,007 credits to the ledger", 0, 0)),
            "INC-000001: writing 8,007 credits to the ledger"
        );
        assert_eq!(
            progress_message("sending", &view("notices handled", 12_000, 0)),
            "notices handled: 12,000"
        );
        // A count never reads past its total.
        assert_eq!(progress_message("running", &view("step", 12, 10)), "step: 10 of 10");
    }

    #[test]
    fn instants_are_given_with_an_offset_or_from_now_on_a_whole_minute() {
        let now: Timestamp = "2026-11-23T12:03:27.5Z".parse().unwrap();
        let at = |s: &str| parse_instant(s).map(|w| w.at(now).to_string());
        assert_eq!(at("2026-11-23T11:00:00-05:00"), Ok("2026-11-23T16:00:00Z".into()));
        assert_eq!(at("+4h"), Ok("2026-11-23T16:03:00Z".into()));
        assert_eq!(at(" +1h30m "), Ok("2026-11-23T13:33:00Z".into()));
        assert_eq!(at("+2d"), Ok("2026-11-25T12:03:00Z".into()));
        assert_eq!(at("-20m"), Ok("2026-11-23T11:43:00Z".into()));
        assert_eq!(at("+45s"), Ok("2026-11-23T12:04:00Z".into()));
        let error = at("4pm").unwrap_err();
        assert!(error.contains("like 2026-11-23T16:00:00Z") && error.contains("+4h"), "{error}");
        for bad in ["+4 parsecs", "+-4h", "+", "-+2d"] {
            assert!(at(bad).unwrap_err().contains("is not a time from now"), "{bad}");
        }
    }
}

#[cfg(test)]
mod summary_tests {
    use super::{appointment_lines, case_lines, rows_in, summary_lines, token_table};
    use serde_json::json;

    /// `amends token list` on a terminal: a table in columns, `-` for nothing, and no
    /// control character from a label reaching the terminal.
    #[test]
    fn tokens_read_as_a_table() {
        let list = json!([
            { "id": "9f86d081884c", "label": "night shift", "scope": "operator", "agent": null,
              "state": "revoked", "created_at": "2026-11-23T12:00:00Z", "expires_at": "2027-02-21T12:00:00Z",
              "last_used_at": "2026-11-23T12:30:00Z", "revoked_at": "2026-11-24T08:00:00Z" },
            { "id": "60303ae22b99", "label": "Zoë\u{1b}[2J", "scope": "agent", "agent": "zoe",
              "state": "active", "created_at": "2026-11-23T12:05:00Z", "expires_at": null,
              "last_used_at": null, "revoked_at": null },
        ]);
        let table = token_table(&list);
        assert_eq!(
            table,
            [
                "ID            LABEL         SCOPE     AGENT  STATE    CREATED               EXPIRES               LAST USED             REVOKED",
                "9f86d081884c  night shift   operator  -      revoked  2026-11-23T12:00:00Z  2027-02-21T12:00:00Z  2026-11-23T12:30:00Z  2026-11-24T08:00:00Z",
                "60303ae22b99  Zoë\\u{1b}[2J  agent     zoe    active   2026-11-23T12:05:00Z  -                     -                     -",
            ]
        );
        assert_eq!(token_table(&json!([])), ["no tokens (amends token create makes one)"]);
    }

    /// A report of counters reads as a few lines on a terminal: the counters that moved,
    /// by section, amounts as money (issue 17, item 13).
    #[test]
    fn a_report_of_counters_is_a_few_lines() {
        let tick = json!({
            "automatic_updates": 0,
            "fanout": { "updates": 1, "notices_queued": 1234567, "declined": 0 },
            "credits": { "incidents": 1, "credits_written": 8007, "total_minor": { "USD": 152213, "EUR": 0 } },
            "surveys": { "decided": 0, "sent": 0 },
        });
        assert_eq!(
            summary_lines(&tick, "nothing was due"),
            [
                "credits: 8,007 credits written, 1 incidents, 1,522.13 USD credited",
                "fanout: 1,234,567 notices queued, 1 updates",
            ]
        );
        let idle = json!({ "sent": 0, "retried": 0, "failed": 0, "suppressed": 0 });
        assert_eq!(summary_lines(&idle, "nothing was due to send"), ["nothing was due to send"]);
        assert_eq!(summary_lines(&json!({ "sent": 12, "failed": 1 }), "idle"), ["1 failed, 12 sent"]);
    }

    /// Case, visit and account commands say what happened in a few lines on a terminal
    /// (issue 17, item 13), not 60 lines of JSON.
    #[test]
    fn a_case_and_a_visit_read_in_a_few_lines() {
        let case = json!({
            "case_id": "CASE-000001", "customer_id": "C1", "owner": "ann", "status": "open",
            "handover_to": "bob",
            "playbook": { "next": "own_and_fix", "steps": [
                { "step": "acknowledge", "done": {}, "due": null },
                { "step": "own_and_fix", "done": null, "due": { "at": "2026-11-24T12:00:00Z", "passed": false } }
            ]},
            "customer_notices": [{}, {}],
            "customer_credits": [
                { "amount_minor": 1500, "currency": "GBP" }, { "amount_minor": 250, "currency": "GBP" }
            ],
        });
        assert_eq!(
            case_lines(&case),
            [
                "CASE-000001 for C1: open, owned by ann, offered to bob",
                "next: own and fix, due by 2026-11-24T12:00:00Z",
                "notices to the customer: 2 messages; credited 17.50 GBP",
            ]
        );
        let visit = json!({
            "reference": "APT-2858-5588", "customer_id": "C1", "technician_id": null, "status": "missed",
            "window_start": "2026-12-07T08:00:00Z", "window_end": "2026-12-07T12:00:00Z",
            "failure": { "kind": "no_show" }, "holds": [{}, {}], "notices": [{}], "credits": [],
        });
        assert_eq!(
            appointment_lines(&visit),
            [
                "APT-2858-5588 for C1: missed, 2026-12-07T08:00:00Z to 2026-12-07T12:00:00Z",
                "failed: no show",
                "2 slots held for rebooking",
                "notices to the customer: 1 message; nothing credited",
            ]
        );
    }

    /// The import bar's total is counted before the first row: it never grows.
    #[test]
    fn the_import_total_is_known_up_front() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plans.csv"), "plan_id\np1\np2\n").unwrap();
        std::fs::write(dir.path().join("customers.csv"), "customer_id\nc1\nc2\nc3").unwrap();
        assert_eq!(rows_in(dir.path()), 5, "no topology.csv counts 0; a last line without a newline counts");
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command says what it is (issue 17, item 12).
    #[test]
    fn every_option_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "amends", &mut missing);
        assert!(missing.is_empty(), "{} without help:\n{}", missing.len(), missing.join("\n"));
    }
}
