//! Configuration: defaults, then an optional TOML file, then the environment, then flags.
//!
//! Flags and environment variables are merged by clap (each flag names its `AMENDS_*`
//! variable); the file fills in whatever neither gave; built-in defaults come last. One
//! [`Settings::resolve`] does it, and secrets never appear in `Debug` output.

use amends_channels::{
    Backoff, FileTransport, Paced, PacingConfig, SmsGatewayConfig, SmsTransport, SmtpConfig, SmtpTransport,
    Transport, WebhookConfig, WebhookTransport,
};
use amends_core::notice::Templates;
use amends_core::policy::{Assignment, Policy, PolicySet};
use amends_recovery::clock::{Clock, ManualClock, SystemClock};
use amends_recovery::{Engine, EngineConfig};
use amends_sinks::deliver::{Dispatcher, Lane};
use amends_sources::alerts::AlertSettings;
use amends_sources::telemetry::DetectionSettings;
use anyhow::{Context, Result, anyhow};
use jiff::{SignedDuration, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_DATABASE: &str = "amends-data/amends.db";
/// Where `amends demo` keeps its database by default (its `--dir`, then `amends.db`).
pub const DEMO_DATABASE: &str = "amends-data/demo/amends.db";
pub const DEFAULT_OUTBOX_FILE: &str = "amends-data/outbox.txt";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A database URL as the settings hold it (a SQLite path or a `postgres://` URL): printed
/// without its password wherever it is shown (`Debug`, `Display`, errors), since settings
/// and errors end up in logs.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseSetting(pub String);

impl std::ops::Deref for DatabaseSetting {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&amends_store::redact_password(&self.0))
    }
}

impl std::fmt::Debug for DatabaseSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", amends_store::redact_password(&self.0))
    }
}

impl std::str::FromStr for DatabaseSetting {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseSetting(s.to_string()))
    }
}

/// Settings the file may hold. Every field is optional. The files it names (`policy`,
/// `[[policies]] file`, `templates`, `outbox_file`, a SQLite `database`) are found beside
/// the settings file when their path is relative, wherever amends is run from.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database: Option<DatabaseSetting>,
    pub provider_name: Option<String>,
    pub status_url: Option<String>,
    /// The language operators write causes and messages in (default `en`): customers of
    /// any other language read them untranslated unless a translation is given, and the
    /// operator is told how many.
    pub operator_language: Option<String>,
    pub policy: Option<PathBuf>,
    /// Which policies apply to which customers; see [`PolicyAssignment`].
    #[serde(default)]
    pub policies: Vec<PolicyAssignment>,
    pub templates: Option<PathBuf>,
    pub outbox_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub smtp: Option<SmtpConfig>,
    /// Outage detection from device telemetry; see [`DetectionSettings`].
    pub detection: Option<DetectionSettings>,
    /// The Alertmanager receiver; see [`AlertSettings`].
    pub alerts: Option<AlertSettings>,
    /// An SMS gateway; without one, SMS notices go to the outbox file.
    pub sms: Option<SmsGatewayConfig>,
    /// A signed webhook to the provider's own app; without one, no webhook notices.
    pub webhook: Option<WebhookConfig>,
    /// Pacing, retries, quarantine and volume control; see [`DeliverySettings`].
    pub delivery: Option<DeliverySettings>,
    /// Targets and limits of individual recovery cases: `[cases]` with
    /// `first_response_target = "PT1H"`, `resolution_target`, `escalate_before`,
    /// `reopen_window`, `pause_total_max`, `follow_up_after` (ISO 8601 durations) and
    /// `[cases.goodwill]` `agent_minor`, `lead_minor`, `admin_minor`. Checked at start-up.
    pub cases: Option<amends_core::case::CaseRules>,
    /// Bookable windows, technicians, the no-show grace and rebooking offers; see
    /// [`amends_recovery::appointments::AppointmentSettings`].
    pub appointments: Option<amends_recovery::appointments::AppointmentSettings>,
    /// Satisfaction surveys: `[surveys]` with `sample_rate_ppm`, `delay_after_fix`,
    /// `per_customer_min_gap`, `link_valid_for` (ISO 8601 durations) and `scale` (`nps`
    /// or `csat`). Checked at start-up.
    pub surveys: Option<amends_core::survey::SurveyRules>,
    /// Cancelling: `[cancellation]` with `effective` (`immediately` or `end_of_cycle`),
    /// `billing` (`in_advance` or `in_arrears`), `reasons` (ids) and an optional
    /// `[cancellation.retention_offer]` with `id` and `text` per locale.
    pub cancellation: Option<amends_core::cancellation::CancellationRules>,
    /// The HTTP server's per-client limit on the token-less routes; see
    /// [`crate::rate::HttpSettings`].
    pub http: Option<crate::rate::HttpSettings>,
}

impl FileSettings {
    /// These settings with each relative file path taken from `dir` (the settings file's
    /// own directory).
    fn beside(mut self, dir: &Path) -> Self {
        let anchor = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        };
        for path in [&mut self.policy, &mut self.templates, &mut self.outbox_file].into_iter().flatten() {
            anchor(path);
        }
        for assignment in &mut self.policies {
            anchor(&mut assignment.file);
        }
        if let Some(DatabaseSetting(url)) = &mut self.database
            && let Ok(amends_store::DatabaseUrl::Sqlite(path)) = amends_store::DatabaseUrl::parse(url)
            && path.is_relative()
        {
            *url = dir.join(path).display().to_string();
        }
        self
    }
}

/// `[delivery]` in the settings file.
///
/// ```toml
/// [delivery]
/// quarantine_after = 3          # permanent failures in a row before a contact point is quarantined
/// updates_cap = 6               # updates per customer, incident and channel
/// etr_change_min_minutes = 15   # a smaller change of estimate sends nothing
/// fanout_batch_rows = 50000     # notices rendered and written per batch (1 to 50,000)
/// public_url = "https://amends.example.com"   # where unsubscribe links point
///
/// [delivery.sms.pacing]         # also [delivery.email.*] and [delivery.webhook.*]
/// concurrency = 4
/// per_second = 10
/// [delivery.sms.backoff]
/// attempts_max = 5
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    pub quarantine_after: u32,
    pub updates_cap: u32,
    pub etr_change_min_minutes: u32,
    /// Notices a fan-out renders and writes per batch (one transaction each), at most
    /// [`amends_recovery::FANOUT_BATCH_ROWS`]: smaller batches hold less in memory and
    /// keep each transaction short, at some cost in throughput.
    pub fanout_batch_rows: usize,
    /// The base URL this server is reached at from the internet; unsubscribe links are
    /// `<public_url>/v1/unsubscribe?token=...`.
    pub public_url: String,
    /// Days a final notice's subject and body are kept; after that only their SHA-256 is.
    /// Absent: kept for good.
    pub keep_content_days: Option<u32>,
    pub email: LaneSettings,
    pub sms: LaneSettings,
    pub webhook: LaneSettings,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            quarantine_after: amends_sinks::deliver::QUARANTINE_AFTER_DEFAULT,
            updates_cap: amends_recovery::UPDATES_CAP_DEFAULT,
            etr_change_min_minutes: 15,
            fanout_batch_rows: amends_recovery::FANOUT_BATCH_ROWS,
            public_url: format!("http://{DEFAULT_LISTEN}"),
            keep_content_days: None,
            email: LaneSettings::default(),
            sms: LaneSettings::default(),
            webhook: LaneSettings::default(),
        }
    }
}

/// One channel's pacing and retry policy.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaneSettings {
    pub pacing: PacingConfig,
    pub backoff: Backoff,
}

impl Default for LaneSettings {
    /// As many sends in flight as the dispatcher runs, no rate limit, 30 s per send: a
    /// relay or gateway's own limits are the operator's to set (`per_second`), and an
    /// outage notice must not queue behind a limit nobody asked for.
    fn default() -> Self {
        let pacing = PacingConfig {
            concurrency: amends_sinks::deliver::DELIVERY_CONCURRENCY_MAX,
            per_second: 0,
            ..PacingConfig::default()
        };
        Self { pacing, backoff: Backoff::default() }
    }
}

/// `[[policies]]` in the settings file: a policy and the customers it is for. Empty lists
/// mean everyone; a customer matched by several assignments is credited under each.
///
/// ```toml
/// [[policies]]
/// file = "policies/uk-ofcom-automatic-compensation.toml"
/// segments = ["residential"]
/// jurisdictions = ["GB-EAW", "GB-SCT", "GB-NIR"]
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssignment {
    pub file: PathBuf,
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default)]
    pub jurisdictions: Vec<String>,
    #[serde(default)]
    pub plans: Vec<String>,
}

/// What flags and the environment gave (clap fills it). Every command takes them; their
/// own heading in `--help` keeps a command's own options first.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Settings (every command)")]
pub struct Overrides {
    /// Database: a SQLite path or sqlite:// URL (the default; created by the first command
    /// that writes), or a postgres:// URL.
    #[arg(long, global = true, env = "AMENDS_DATABASE_URL", hide_env_values = true)]
    pub database: Option<DatabaseSetting>,
    /// A TOML settings file (keys: database, provider_name, status_url, policy, [[policies]], templates,
    /// outbox_file, listen, [smtp], [sms], [webhook], [delivery], [detection], [alerts], [cases],
    /// [appointments], [surveys], [cancellation]).
    #[arg(long, global = true, env = "AMENDS_CONFIG")]
    pub config: Option<PathBuf>,
    /// The compensation policy file (TOML). Default: the built-in prorated policy.
    #[arg(long, global = true, env = "AMENDS_POLICY")]
    pub policy: Option<PathBuf>,
    /// A directory of template overrides: <locale>/<kind>.txt.
    #[arg(long, global = true, env = "AMENDS_TEMPLATES")]
    pub templates: Option<PathBuf>,
    /// Where the file channel writes notices ("-" for stdout) when no SMTP relay is set.
    #[arg(long, global = true, env = "AMENDS_OUTBOX_FILE")]
    pub outbox_file: Option<PathBuf>,
    /// SMTP relay for email notices: smtp://host:port, smtp+starttls://..., smtps://...
    #[arg(long, global = true, env = "AMENDS_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender of email notices, "Name <addr>".
    #[arg(long, global = true, env = "AMENDS_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// The provider's name, as notices sign off.
    #[arg(long, global = true, env = "AMENDS_PROVIDER_NAME")]
    pub provider_name: Option<String>,
    /// Base URL of incident status pages; notices link to <status-url>/<incident>.
    #[arg(long, global = true, env = "AMENDS_STATUS_URL")]
    pub status_url: Option<String>,
    /// Run as if the time were this RFC 3339 instant (a controlled clock, for tests and
    /// rehearsals). Default: the system clock.
    #[arg(long, global = true, env = "AMENDS_NOW")]
    pub now: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSetting,
    pub provider_name: String,
    pub status_url: String,
    pub operator_language: String,
    pub policy: Option<PathBuf>,
    pub policies: Vec<PolicyAssignment>,
    pub templates: Option<PathBuf>,
    pub outbox_file: PathBuf,
    pub listen: String,
    pub smtp: Option<SmtpConfig>,
    pub detection: DetectionSettings,
    pub alerts: AlertSettings,
    pub sms: Option<SmsGatewayConfig>,
    pub webhook: Option<WebhookConfig>,
    pub delivery: DeliverySettings,
    pub cases: amends_core::case::CaseRules,
    pub appointments: amends_recovery::appointments::AppointmentConfig,
    pub surveys: amends_core::survey::SurveyRules,
    pub cancellation: amends_core::cancellation::CancellationRules,
    pub http: crate::rate::HttpSettings,
    pub now: Option<Timestamp>,
}

impl Settings {
    pub fn resolve(o: &Overrides) -> Result<Settings> {
        let file = match &o.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let file = toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("settings file {}", path.display()))?;
                file.beside(path.parent().unwrap_or(Path::new("")))
            }
            None => FileSettings::default(),
        };
        let defaults = EngineConfig::default();
        let policy = o.policy.clone().or(file.policy);
        if policy.is_some() && !file.policies.is_empty() {
            return Err(anyhow!(
                "give either one policy (--policy, AMENDS_POLICY or `policy`) or [[policies]] assignments, not both"
            ));
        }
        let smtp = merge_smtp(o, file.smtp)?;
        Ok(Settings {
            database: o
                .database
                .clone()
                .or(file.database)
                .unwrap_or_else(|| DatabaseSetting(DEFAULT_DATABASE.into())),
            provider_name: o.provider_name.clone().or(file.provider_name).unwrap_or(defaults.provider_name),
            // The status page is served by `amends serve` itself: by default it lives
            // under the public URL customers reach this server at.
            status_url: o.status_url.clone().or(file.status_url).unwrap_or_else(|| match &file.delivery {
                Some(d) => format!("{}/status", d.public_url.trim_end_matches('/')),
                None => defaults.status_url,
            }),
            operator_language: file.operator_language.unwrap_or(defaults.operator_language),
            policy,
            policies: file.policies,
            templates: o.templates.clone().or(file.templates),
            outbox_file: o
                .outbox_file
                .clone()
                .or(file.outbox_file)
                .unwrap_or_else(|| DEFAULT_OUTBOX_FILE.into()),
            listen: file.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
            smtp,
            detection: file.detection.unwrap_or_default(),
            alerts: file.alerts.unwrap_or_default(),
            sms: file.sms,
            webhook: file.webhook,
            delivery: check_delivery(file.delivery.unwrap_or_default())?,
            cases: check_case_rules(file.cases.unwrap_or_default())?,
            appointments: file
                .appointments
                .unwrap_or_default()
                .check()
                .map_err(|e| anyhow!("[appointments]: {e}"))?,
            surveys: check_survey_rules(file.surveys.unwrap_or_default())?,
            cancellation: check_cancellation_rules(file.cancellation.unwrap_or_default())?,
            http: file.http.unwrap_or_default(),
            now: o.now,
        })
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(t) => Arc::new(ManualClock::new(t)),
            None => Arc::new(SystemClock),
        }
    }

    /// The policies and who they apply to: the `[[policies]]` assignments, or one policy
    /// for everyone (the built-in prorated policy unless one is given).
    pub fn load_policies(&self) -> Result<PolicySet> {
        if !self.policies.is_empty() {
            let assignments = self
                .policies
                .iter()
                .map(|a| {
                    Ok(Assignment {
                        policy: Arc::new(amends_sources::policies::load_policy(&a.file)?),
                        segments: a.segments.clone(),
                        jurisdictions: a.jurisdictions.clone(),
                        plans: a.plans.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            return PolicySet::new(assignments).map_err(|e| anyhow!("[[policies]]: {e}"));
        }
        Ok(match &self.policy {
            None => Policy::builtin().into(),
            Some(path) => amends_sources::policies::load_policy(path)?.into(),
        })
    }

    pub fn load_templates(&self) -> Result<Templates> {
        let overrides = match &self.templates {
            Some(dir) => read_template_dir(dir)?,
            None => Vec::new(),
        };
        Templates::with_overrides(overrides).map_err(|errors| {
            anyhow!(
                "templates refused:\n{}",
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
            )
        })
    }

    /// Refuses a SQLite database that is not there (a PostgreSQL server says so itself):
    /// opening it would create an empty one, and a read would report an empty book.
    pub fn ensure_database_exists(&self) -> Result<()> {
        let url = amends_store::DatabaseUrl::parse(&self.database)?;
        if let amends_store::DatabaseUrl::Sqlite(path) = url
            && !path.exists()
        {
            anyhow::bail!(
                "there is no database at {}, and a command that only reads creates none; \
                 give --database (or AMENDS_DATABASE_URL) the one with your data \
                 (after `amends demo`, --database {DEMO_DATABASE})",
                path.display()
            );
        }
        Ok(())
    }

    /// Opens the store and builds the engine with the given clock.
    pub async fn engine_with(&self, clock: Arc<dyn Clock>) -> Result<Arc<Engine>> {
        let store =
            amends_store::open(&self.database).await.with_context(|| format!("opening {}", self.database))?;
        let config = EngineConfig {
            provider_name: self.provider_name.clone(),
            status_url: self.status_url.clone(),
            operator_language: self.operator_language.clone(),
            webhook: self.webhook.is_some(),
            updates_cap: self.delivery.updates_cap,
            etr_change_min: SignedDuration::from_mins(i64::from(self.delivery.etr_change_min_minutes)),
            keep_content: self
                .delivery
                .keep_content_days
                .map(|d| SignedDuration::from_hours(24 * i64::from(d))),
            case_rules: self.cases,
            appointments: self.appointments.clone(),
            surveys: self.surveys,
            cancellation: self.cancellation.clone(),
            public_url: self.delivery.public_url.trim_end_matches('/').to_string(),
            fanout_batch_rows: self.delivery.fanout_batch_rows,
            ..EngineConfig::default()
        };
        Ok(Arc::new(Engine::new(store, clock, self.load_templates()?, self.load_policies()?, config)))
    }

    /// One lane per channel, each paced on its own: email through the SMTP relay (or the
    /// outbox file), SMS through the gateway (or the outbox file), and the webhook when
    /// configured. Unsubscribe links are signed with the key stored in the database.
    pub async fn dispatcher(&self, engine: &Engine) -> Result<Dispatcher> {
        let file: Arc<dyn Transport> = Arc::new(FileTransport::new(&self.outbox_file));
        let email: Arc<dyn Transport> = match &self.smtp {
            Some(config) => Arc::new(SmtpTransport::new(config.clone())?),
            None => file.clone(),
        };
        let sms: Arc<dyn Transport> = match &self.sms {
            Some(config) => Arc::new(SmsTransport::new(config.clone()).context("[sms]")?),
            None => file,
        };
        let d = &self.delivery;
        let mut lanes = vec![lane("email", email, &d.email)?, lane("sms", sms, &d.sms)?];
        if let Some(config) = &self.webhook {
            let webhook = Arc::new(WebhookTransport::new(config.clone()).context("[webhook]")?);
            lanes.push(lane("webhook", webhook, &d.webhook)?);
        }
        let mut dispatcher = Dispatcher::new(engine.store().clone(), engine.clock().clone(), lanes);
        dispatcher.quarantine_after = d.quarantine_after.max(1);
        let key = amends_recovery::unsubscribe::stored_key(engine.store().as_ref()).await?;
        dispatcher.unsubscribe = Some(amends_recovery::unsubscribe::links(key, &d.public_url));
        dispatcher.calendar = Some(amends_sinks::deliver::CalendarFiles {
            provider_name: self.provider_name.clone(),
            domain: self.appointments.calendar_domain.clone(),
        });
        Ok(dispatcher)
    }
}

fn lane(channel: &'static str, transport: Arc<dyn Transport>, settings: &LaneSettings) -> Result<Lane> {
    let paced =
        Paced::new(transport, settings.pacing).with_context(|| format!("[delivery.{channel}.pacing]"))?;
    Ok(Lane {
        channel,
        transport: Arc::new(paced),
        backoff: settings.backoff,
        concurrency: settings.pacing.concurrency.min(amends_sinks::deliver::DELIVERY_CONCURRENCY_MAX),
    })
}

/// `[delivery]` as given, refused when a bound is out of range.
fn check_delivery(delivery: DeliverySettings) -> Result<DeliverySettings> {
    let max = amends_recovery::FANOUT_BATCH_ROWS;
    if !(1..=max).contains(&delivery.fanout_batch_rows) {
        return Err(anyhow!(
            "[delivery] fanout_batch_rows = {}: give 1 to {max} notices per batch",
            delivery.fanout_batch_rows
        ));
    }
    Ok(delivery)
}

/// The SMTP relay: the file's `[smtp]` table, then the environment and flags over it
/// (`--smtp-url`, `--smtp-from`, `AMENDS_SMTP_PASSWORD`). No URL anywhere: no relay.
fn merge_smtp(o: &Overrides, file: Option<SmtpConfig>) -> Result<Option<SmtpConfig>> {
    let Some(url) = o.smtp_url.clone().or(file.as_ref().map(|s| s.url.clone())) else { return Ok(None) };
    // Without a file table, start from SmtpConfig's own serde defaults.
    let mut smtp = match file {
        Some(smtp) => smtp,
        None => serde_json::from_value(serde_json::json!({ "url": url, "from": "" }))?,
    };
    smtp.url = url;
    if let Some(from) = &o.smtp_from {
        smtp.from.clone_from(from);
    }
    if let Ok(password) = std::env::var("AMENDS_SMTP_PASSWORD") {
        smtp.password = Some(password);
    }
    if smtp.from.is_empty() {
        anyhow::bail!("an SMTP relay needs a sender: --smtp-from, AMENDS_SMTP_FROM, or `from` in [smtp]");
    }
    Ok(Some(smtp))
}

/// Reads `<dir>/<locale>/<kind>.txt` files as template overrides.
fn read_template_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for locale in std::fs::read_dir(dir).with_context(|| format!("reading templates in {}", dir.display()))? {
        let locale = locale?;
        if !locale.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(locale.path())? {
            let path = file?.path();
            let name = format!(
                "{}/{}",
                locale.file_name().to_string_lossy(),
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let source =
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push((name, source));
        }
    }
    out.sort();
    Ok(out)
}

/// `[cases]` as given, or what is wrong with it.
fn check_case_rules(rules: amends_core::case::CaseRules) -> Result<amends_core::case::CaseRules> {
    rules.check().map_err(|e| anyhow!("[cases]: {e}"))?;
    Ok(rules)
}

/// `[surveys]` as given, or what is wrong with it.
fn check_survey_rules(rules: amends_core::survey::SurveyRules) -> Result<amends_core::survey::SurveyRules> {
    rules.check().map_err(|e| anyhow!("[surveys]: {e}"))?;
    Ok(rules)
}

/// `[cancellation]` as given, or what is wrong with it.
fn check_cancellation_rules(
    rules: amends_core::cancellation::CancellationRules,
) -> Result<amends_core::cancellation::CancellationRules> {
    rules.check().map_err(|e| anyhow!("[cancellation]: {e}"))?;
    Ok(rules)
}

#[cfg(test)]
mod secret_tests {
    use super::{Overrides, Settings};

    /// A PostgreSQL password in the database URL never shows in the settings' Debug output
    /// nor in their Display (issue 18, item 15).
    #[test]
    fn the_database_password_is_never_printed() {
        let overrides = Overrides {
            database: Some("postgres://amends:hunter2@db:5432/amends".parse().unwrap()),
            ..Overrides::default()
        };
        let settings = Settings::resolve(&overrides).unwrap();
        let shown = format!("{settings:?} {overrides:?} {}", settings.database);
        assert!(!shown.contains("hunter2") && shown.contains("amends:***@db"), "{shown}");
        assert_eq!(
            &*settings.database, "postgres://amends:hunter2@db:5432/amends",
            "the store still gets it"
        );
    }
}

#[cfg(test)]
mod detection_tests {
    /// Every settings snippet of docs/telemetry.md, as written, is a settings file amends
    /// loads, and its `[detection]` table is valid.
    #[test]
    fn the_documented_settings_load_as_written() {
        let page = include_str!("../../../docs/telemetry.md");
        let blocks: Vec<&str> =
            page.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
        assert_eq!(blocks.len(), 2, "the page's TOML snippets");
        let check = |text: &str| {
            let file: super::FileSettings = toml::from_str(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
            let detection = file.detection.expect("a [detection] table");
            detection.to_config().unwrap();
            detection.confirm_within().unwrap();
            detection.event_log_retention().unwrap();
        };
        blocks.iter().for_each(|b| check(b));
    }
}

#[cfg(test)]
mod path_tests {
    use super::{Overrides, Settings};

    /// A settings file names its files from where it lives, not from where amends is run;
    /// a path given on the command line stays the caller's.
    #[test]
    fn the_files_a_settings_file_names_are_found_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("policies")).unwrap();
        let prorated = include_str!("../../../policies/prorated.toml");
        std::fs::write(etc.join("policies/prorated.toml"), prorated).unwrap();
        let config = etc.join("amends.toml");
        std::fs::write(
            &config,
            "database = \"data/amends.db\"\noutbox_file = \"outbox.txt\"\n\
             [[policies]]\nfile = \"policies/prorated.toml\"\n",
        )
        .unwrap();
        let overrides = Overrides { config: Some(config.clone()), ..Overrides::default() };
        let settings = Settings::resolve(&overrides).unwrap();
        assert_eq!(settings.outbox_file, etc.join("outbox.txt"));
        assert_eq!(&*settings.database, etc.join("data/amends.db").display().to_string());
        assert_eq!(settings.load_policies().unwrap().assignments().len(), 1, "read from beside the file");

        std::fs::write(&config, "policy = \"/nowhere/absolute.toml\"\ndatabase = \"postgres://db/amends\"\n")
            .unwrap();
        let settings = Settings::resolve(&overrides).unwrap();
        assert_eq!(settings.policy.as_deref(), Some(std::path::Path::new("/nowhere/absolute.toml")));
        assert_eq!(&*settings.database, "postgres://db/amends", "a URL is left as it is");
        let given = Overrides { policy: Some("mine.toml".into()), ..overrides };
        assert_eq!(
            Settings::resolve(&given).unwrap().policy.as_deref(),
            Some(std::path::Path::new("mine.toml"))
        );
    }
}
