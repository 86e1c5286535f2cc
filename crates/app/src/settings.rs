//! Configuration: defaults, then an optional TOML file, then the environment, then flags.
//!
//! Flags and environment variables are merged by clap (each flag names its `AMENDS_*`
//! variable); the file fills in whatever neither gave; built-in defaults come last. One
//! [`Settings::resolve`] does it, and secrets never appear in `Debug` output.

use crate::alerts::AlertSettings;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::deliver::Dispatcher;
use crate::recovery::{Engine, EngineConfig};
use crate::telemetry::DetectionSettings;
use amends_channels::{Backoff, FileTransport, SmtpConfig, SmtpTransport, Transport};
use amends_core::notice::Templates;
use amends_core::policy::{Assignment, Policy, PolicySet};
use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_DATABASE: &str = "amends-data/amends.db";
pub const DEFAULT_OUTBOX_FILE: &str = "amends-data/outbox.txt";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Settings the file may hold. Every field is optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database: Option<String>,
    pub provider_name: Option<String>,
    pub status_url: Option<String>,
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

/// What flags and the environment gave (clap fills it).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Database: a SQLite path or sqlite:// URL (the default, created on first run), or a
    /// postgres:// URL.
    #[arg(long, global = true, env = "AMENDS_DATABASE_URL")]
    pub database: Option<String>,
    /// A TOML settings file (keys: database, provider_name, status_url, policy, [[policies]], templates,
    /// outbox_file, listen, [smtp], [detection]).
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
    pub database: String,
    pub provider_name: String,
    pub status_url: String,
    pub policy: Option<PathBuf>,
    pub policies: Vec<PolicyAssignment>,
    pub templates: Option<PathBuf>,
    pub outbox_file: PathBuf,
    pub listen: String,
    pub smtp: Option<SmtpConfig>,
    pub detection: DetectionSettings,
    pub alerts: AlertSettings,
    pub now: Option<Timestamp>,
}

impl Settings {
    pub fn resolve(o: &Overrides) -> Result<Settings> {
        let file = match &o.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("settings file {}", path.display()))?
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
            database: o.database.clone().or(file.database).unwrap_or_else(|| DEFAULT_DATABASE.into()),
            provider_name: o.provider_name.clone().or(file.provider_name).unwrap_or(defaults.provider_name),
            status_url: o.status_url.clone().or(file.status_url).unwrap_or(defaults.status_url),
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
                        policy: Arc::new(crate::policies::load_policy(&a.file)?),
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
            Some(path) => crate::policies::load_policy(path)?.into(),
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

    /// Opens the store and builds the engine with the given clock.
    pub async fn engine_with(&self, clock: Arc<dyn Clock>) -> Result<Arc<Engine>> {
        let store =
            amends_store::open(&self.database).await.with_context(|| format!("opening {}", self.database))?;
        let config = EngineConfig {
            provider_name: self.provider_name.clone(),
            status_url: self.status_url.clone(),
            alerts: self.alerts.clone(),
            ..EngineConfig::default()
        };
        Ok(Arc::new(Engine::new(store, clock, self.load_templates()?, self.load_policies()?, config)))
    }

    pub fn dispatcher(&self, engine: &Engine) -> Result<Dispatcher> {
        let file: Arc<dyn Transport> = Arc::new(FileTransport::new(&self.outbox_file));
        let email: Arc<dyn Transport> = match &self.smtp {
            Some(config) => Arc::new(SmtpTransport::new(config.clone())?),
            None => file.clone(),
        };
        Ok(Dispatcher {
            store: engine.store.clone(),
            clock: engine.clock.clone(),
            email,
            // SMS gateways come with a later issue; until then SMS notices go to the file.
            sms: file,
            backoff: Backoff::default(),
        })
    }
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
