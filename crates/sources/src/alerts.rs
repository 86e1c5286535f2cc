//! Alerts in: a receiver for Prometheus Alertmanager's webhook.
//!
//! Each alert of a payload is handled on its own, and every step is idempotent, because
//! Alertmanager sends the same alert again and again (every `group_interval` while its
//! group changes, every `repeat_interval` while it fires, from each instance of an HA
//! pair, and again after a 5xx):
//!
//! - An alert is known by its `fingerprint`. The incident it opens is recorded under the
//!   source key `alertmanager:<fingerprint>` (`/<n>` for its n-th occurrence), so a
//!   resent alert finds its incident instead of opening another.
//! - What the receiver said last (the alert's cause and message) is kept, hashed, in the
//!   trigger key of the timeline entry that said it; an update is posted only when the
//!   alert says something else, under a key the store keeps unique, so two copies of the
//!   same change post it once.
//! - Only incidents under an `alertmanager:` key are ever touched: telemetry's and the
//!   operators' incidents are not this receiver's.
//! - Several alerts about one place make one incident: a firing alert whose element is
//!   at, above or below the element of an open incident of this receiver joins it (its key
//!   recorded in `incident_alerts`) instead of opening another, so per-instance alerts of
//!   one element, or a node alerting with its tap, tell each customer once. The alert that
//!   opened the incident speaks for it; the incident resolves when the last of its alerts
//!   does.
//! - An alert the receiver cannot act on (no element label, an element the book does not
//!   have) is answered `ignored` with the reason, logged at warn, and kept by fingerprint
//!   for `GET /v1/alerts/ignored`, so a typo in a label is seen, not silently dropped.
//!
//! User documentation: `docs/alerts.md`.

use amends_core::id::IncidentId;
use amends_core::incident::{ByLocale, IncidentState, LOOKBACK_DAYS_MAX, MESSAGE_BYTES_MAX, UpdateKind};
use amends_core::topology::Topology;
use amends_recovery::book::LoadedBook;
use amends_recovery::clock::{after, truncate_to_second};
use amends_recovery::{Engine, EngineError};
use amends_store::{AppendOutcome, IncidentRow, NewUpdate, StoreError, UpdateRow};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use utoipa::ToSchema;

/// Most alerts one payload may carry; a larger one is refused (422) and nothing of it is
/// recorded. Set `max_alerts` in Alertmanager's `webhook_config` to at most this.
pub const ALERTS_PER_PAYLOAD_MAX: usize = 1_000;
/// Longest fingerprint taken (Alertmanager's are 16 hex digits).
pub const FINGERPRINT_BYTES_MAX: usize = 64;
/// Every source key of this receiver starts with this.
pub const SOURCE_PREFIX: &str = "alertmanager:";
/// Trigger keys of the receiver's timeline entries: `alertmanager:text:<n>:<hash>`.
const TEXT_KEY_PREFIX: &str = "alertmanager:text:";
/// Ignored alerts kept for `GET /v1/alerts/ignored` (by fingerprint, most recent).
pub const IGNORED_ALERTS_KEPT: u32 = 1_000;
/// The most bytes of an ignored alert's labels (as JSON) that are kept.
pub const IGNORED_LABELS_BYTES_MAX: usize = 4_096;

/// `[alerts]` in the settings file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// The alert label whose value names a network element.
    pub element_label: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings { element_label: "element".into() }
    }
}

// ---- the payload ----

/// Alertmanager's webhook payload (version 4). Fields it may add later are ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// How many alerts Alertmanager left out because of its `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if any alert of the group fires. Each alert's own status is what counts.
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert of a payload.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description` become the incident's public cause and message.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert began firing: when service was lost.
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: Timestamp,
    /// `None` while firing: Alertmanager sends Go's zero time, `0001-01-01T00:00:00Z`.
    #[serde(default, deserialize_with = "zero_time_is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Timestamp>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// A hash of the labels: the same alert has the same fingerprint in every payload.
    #[serde(default)]
    pub fingerprint: String,
}

/// Go marshals an unset `time.Time` as year 1; no real instant is before 1970.
fn zero_time_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let t = Option::<Timestamp>::deserialize(d)?;
    Ok(t.filter(|t| *t > Timestamp::UNIX_EPOCH))
}

// ---- the response ----

/// What the receiver did with a payload: counts, then each alert in payload order.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Receipt {
    pub counts: Counts,
    pub alerts: Vec<AlertReceipt>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub opened: u64,
    pub joined: u64,
    pub updated: u64,
    pub resolved: u64,
    pub unchanged: u64,
    pub ignored: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertReceipt {
    /// The alert's place in the payload's `alerts`, from 0.
    pub index: usize,
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    pub outcome: Outcome,
    /// Why nothing was done (`unchanged`, `ignored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new incident.
    Opened,
    /// An open incident of another alert about the same place took it in.
    Joined,
    /// The alert says something new: an update was posted.
    Updated,
    Resolved,
    /// Already recorded: a resend, a resolved incident, a late copy.
    Unchanged,
    /// Not for amends: no element label, an unknown element, no incident to resolve.
    Ignored,
}

/// What one alert came to, before it is numbered and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub incident_id: Option<String>,
    pub reason: Option<String>,
}

impl Decision {
    fn done(outcome: Outcome, incident_id: &str) -> Self {
        Decision { outcome, incident_id: Some(incident_id.into()), reason: None }
    }

    fn unchanged(incident_id: &str, reason: impl Into<String>) -> Self {
        Decision { reason: Some(reason.into()), ..Decision::done(Outcome::Unchanged, incident_id) }
    }

    fn ignored(reason: impl Into<String>) -> Self {
        Decision { outcome: Outcome::Ignored, incident_id: None, reason: Some(reason.into()) }
    }
}

impl Receipt {
    fn push(&mut self, index: usize, fingerprint: &str, d: Decision) {
        let count = match d.outcome {
            Outcome::Opened => &mut self.counts.opened,
            Outcome::Joined => &mut self.counts.joined,
            Outcome::Updated => &mut self.counts.updated,
            Outcome::Resolved => &mut self.counts.resolved,
            Outcome::Unchanged => &mut self.counts.unchanged,
            Outcome::Ignored => &mut self.counts.ignored,
        };
        *count += 1;
        let fingerprint = fingerprint.into();
        self.alerts.push(AlertReceipt {
            index,
            fingerprint,
            incident_id: d.incident_id,
            outcome: d.outcome,
            reason: d.reason,
        });
    }

    /// Whether anything was written, so the worker has something to fan out.
    pub fn recorded(&self) -> bool {
        self.counts.opened + self.counts.joined + self.counts.updated + self.counts.resolved > 0
    }
}

// ---- decisions: pure ----

/// Alertmanager's fingerprints are hex; anything else could not be told apart from the
/// `/<n>` of a source key.
pub fn check_fingerprint(fingerprint: &str) -> Result<&str, String> {
    let ok = (1..=FINGERPRINT_BYTES_MAX).contains(&fingerprint.len())
        && fingerprint.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(fingerprint)
    } else {
        Err(format!("fingerprint: must be 1 to {FINGERPRINT_BYTES_MAX} letters or digits"))
    }
}

/// The source key of the `occurrence`-th incident an alert opened (from 1).
pub fn source_key(fingerprint: &str, occurrence: u32) -> String {
    match occurrence {
        0 | 1 => format!("{SOURCE_PREFIX}{fingerprint}"),
        n => format!("{SOURCE_PREFIX}{fingerprint}/{n}"),
    }
}

/// The fingerprint and occurrence of one of this receiver's source keys; `None` for
/// every other source (telemetry's).
pub fn parse_source_key(key: &str) -> Option<(&str, u32)> {
    let rest = key.strip_prefix(SOURCE_PREFIX)?;
    let (fingerprint, n) = match rest.split_once('/') {
        Some((fingerprint, n)) => (fingerprint, n.parse().ok()?),
        None => (rest, 1),
    };
    check_fingerprint(fingerprint).ok().map(|f| (f, n))
}

/// The element the alert names, if the book has it.
pub fn element_of<'a>(alert: &'a Alert, label: &str, topology: &Topology) -> Result<&'a str, String> {
    match alert.labels.get(label).map(|v| v.as_str()) {
        None | Some("") => Err(format!("labels: no {label:?} label naming an element")),
        Some(id) if topology.index_of(id).is_none() => {
            Err(format!("labels.{label}: {id:?} is not an element of the book"))
        }
        Some(id) => Ok(id),
    }
}

fn annotation<'a>(alert: &'a Alert, name: &str) -> Option<&'a str> {
    alert.annotations.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Cuts `text` to the longest message an incident takes, on a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MESSAGE_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim_end().to_string()
}

/// The public cause (`summary`, else `description`, else the alert's name) and message
/// (`description` when it is not already the cause) an alert gives.
pub fn texts(alert: &Alert) -> (String, String) {
    let summary = annotation(alert, "summary");
    let description = annotation(alert, "description");
    let name = alert.labels.get("alertname").map(|v| v.trim()).filter(|v| !v.is_empty());
    let cause = summary.or(description).or(name).unwrap_or("Alert from monitoring");
    let message = description.filter(|d| *d != cause).unwrap_or("");
    (bounded(cause), bounded(message))
}

fn text_hash(cause: &str, message: &str) -> String {
    let digest = Sha256::new().chain_update(cause).chain_update([0]).chain_update(message).finalize();
    hex::encode(&digest[..8])
}

/// The trigger key of the receiver's `n`-th timeline entry (the declaration is 0).
fn text_key(n: u32, hash: &str) -> String {
    format!("{TEXT_KEY_PREFIX}{n}:{hash}")
}

/// The number and text hash of the latest entry the receiver posted.
fn last_said(timeline: &[UpdateRow]) -> Option<(u32, &str)> {
    timeline.iter().rev().find_map(|u| {
        let (n, hash) = u.trigger_key.as_deref()?.strip_prefix(TEXT_KEY_PREFIX)?.split_once(':')?;
        Some((n.parse().ok()?, hash))
    })
}

/// The incident a firing alert opens, with its `declared` entry (which the fan-out
/// acknowledges to every customer under the element). It starts when the alert started,
/// has no estimate, and promises word within `follow_up`.
pub fn opening(
    alert: &Alert,
    element: &str,
    now: Timestamp,
    follow_up: SignedDuration,
) -> Result<(IncidentRow, NewUpdate), String> {
    let started = truncate_to_second(alert.starts_at);
    if started < after(now, SignedDuration::from_hours(-24 * LOOKBACK_DAYS_MAX)) {
        return Err(format!("startsAt: {started} is more than {LOOKBACK_DAYS_MAX} days before now ({now})"));
    }
    let (cause, message) = texts(alert);
    let state = IncidentState::Acknowledged;
    let next_update_by = Some(after(now, follow_up));
    let row = IncidentRow {
        incident_id: Default::default(),
        element_ids: vec![element.to_string()],
        cause: cause.clone(),
        causes: ByLocale::new(),
        state,
        etr: None,
        next_update_by,
        // A clock running ahead of ours must not start an outage in the future.
        started_at: started.min(now),
        resolved_at: None,
        credited_at: None,
        attributes: None,
    };
    let declared = NewUpdate {
        at: now,
        kind: UpdateKind::Declared.as_str().into(),
        state,
        etr: None,
        next_update_by,
        messages: ByLocale::new(),
        trigger_key: Some(text_key(0, &text_hash(&cause, &message))),
        message,
    };
    Ok((row, declared))
}

/// The update a firing alert posts to its open incident, if it says something the
/// receiver has not said. The cause of an incident stays; a new summary is told in the
/// message. Like an operator's update, it keeps the estimate and the promised time while
/// they are ahead.
pub fn revision(
    alert: &Alert,
    incident: &IncidentRow,
    timeline: &[UpdateRow],
    now: Timestamp,
    follow_up: SignedDuration,
) -> Option<NewUpdate> {
    let (cause, message) = texts(alert);
    let hash = text_hash(&cause, &message);
    let last = last_said(timeline);
    if last.is_some_and(|(_, said)| said == hash) {
        return None;
    }
    let text = match (cause == incident.cause, message.is_empty()) {
        (true, false) => message,
        (_, true) => cause,
        (false, false) => bounded(&format!("{cause}: {message}")),
    };
    let ahead = |t: Option<Timestamp>| t.filter(|t| *t > now);
    Some(NewUpdate {
        at: now,
        kind: UpdateKind::Update.as_str().into(),
        state: incident.state,
        etr: ahead(incident.etr),
        next_update_by: ahead(incident.next_update_by).or(Some(after(now, follow_up))),
        message: text,
        messages: ByLocale::new(),
        trigger_key: Some(text_key(last.map_or(1, |(n, _)| n.saturating_add(1)), &hash)),
    })
}

/// What a firing alert does, given the latest incident it opened and its occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Firing<'a> {
    /// Open the n-th occurrence.
    Open(u32),
    /// Its incident is open: post an update if the alert says something new.
    Revise(&'a IncidentRow),
    /// Its incident was resolved (by monitoring or by hand) and this is the same
    /// occurrence sent again: the resolution stands.
    Stale(&'a IncidentRow),
}

/// A resolved incident is reopened only by a later start: Prometheus gives an alert that
/// fires again a new `startsAt`, and a resend keeps the old one.
pub fn on_firing<'a>(alert: &Alert, latest: Option<(u32, &'a IncidentRow)>) -> Firing<'a> {
    match latest {
        None => Firing::Open(1),
        Some((_, incident)) if incident.resolved_at.is_none() => Firing::Revise(incident),
        Some((n, incident)) if truncate_to_second(alert.starts_at) > incident.started_at => {
            Firing::Open(n.saturating_add(1))
        }
        Some((_, incident)) => Firing::Stale(incident),
    }
}

/// What a resolved alert does, given the latest incident it opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolving<'a> {
    /// It never opened one (no label, an unknown element, or it was never seen firing).
    Unknown,
    /// A late copy for an earlier occurrence: the one open now is not its to resolve.
    Earlier(&'a IncidentRow),
    Already(&'a IncidentRow),
    Resolve(&'a IncidentRow),
}

pub fn on_resolved<'a>(alert: &Alert, latest: Option<&'a IncidentRow>) -> Resolving<'a> {
    match latest {
        None => Resolving::Unknown,
        Some(i) if truncate_to_second(alert.starts_at) < i.started_at => Resolving::Earlier(i),
        Some(i) if i.resolved_at.is_some() => Resolving::Already(i),
        Some(i) => Resolving::Resolve(i),
    }
}

// ---- the receiver: decisions applied to the store ----

/// One payload's work: the book, the latest occurrence of each alert, and the open
/// incidents of this receiver, read once.
struct Receiver<'a> {
    engine: &'a Engine,
    settings: &'a AlertSettings,
    book: Arc<LoadedBook>,
    now: Timestamp,
    /// Fingerprint → (occurrence, incident id) of the latest incident it opened or joined.
    latest: HashMap<String, (u32, IncidentId)>,
    /// Incident id → the key of the alert that opened it (it speaks for the incident).
    opener: HashMap<IncidentId, String>,
    /// Open incidents of this receiver, which a new alert about the same place joins.
    open: Vec<IncidentRow>,
}

impl<'a> Receiver<'a> {
    async fn new(engine: &'a Engine, settings: &'a AlertSettings) -> Result<Self, EngineError> {
        let book = engine.book().await?;
        let mut latest: HashMap<String, (u32, IncidentId)> = HashMap::new();
        let mut opener = HashMap::new();
        let sources = engine.store().incident_sources().await?;
        let joined = engine.store().incident_alerts().await?;
        let keys = sources.iter().map(|s| (&s.source_key, &s.incident_id));
        for (key, incident) in keys.chain(joined.iter().map(|a| (&a.source_key, &a.incident_id))) {
            if let Some((fingerprint, n)) = parse_source_key(key)
                && latest.get(fingerprint).is_none_or(|(seen, _)| *seen < n)
            {
                latest.insert(fingerprint.to_string(), (n, incident.clone()));
            }
        }
        for s in sources.iter().filter(|s| s.source_key.starts_with(SOURCE_PREFIX)) {
            opener.insert(s.incident_id.clone(), s.source_key.clone());
        }
        let open = engine
            .store()
            .incidents(true)
            .await?
            .into_iter()
            .filter(|i| opener.contains_key(&i.incident_id))
            .collect();
        Ok(Receiver { engine, settings, book, now: engine.clock().now(), latest, opener, open })
    }

    /// The open incident of this receiver about the same place as `element`: at it, above
    /// it or below it.
    fn covering(&self, element: &str) -> Option<&IncidentRow> {
        let topology = &self.book.topology;
        let e = topology.index_of(element)?;
        self.open.iter().find(|i| {
            i.element_ids
                .iter()
                .filter_map(|id| topology.index_of(id))
                .any(|other| topology.is_at_or_below(e, other) || topology.is_at_or_below(other, e))
        })
    }

    async fn apply(&mut self, alert: &Alert) -> Result<Decision, EngineError> {
        let fingerprint = match check_fingerprint(&alert.fingerprint) {
            Ok(f) => f,
            Err(reason) => return Ok(Decision::ignored(reason)),
        };
        let latest = match self.latest.get(fingerprint) {
            Some((n, id)) => Some((*n, self.engine.incident(id).await?)),
            None => None,
        };
        let latest = latest.as_ref().map(|(n, incident)| (*n, incident));
        match alert.status {
            AlertStatus::Firing => self.firing(fingerprint, alert, latest).await,
            AlertStatus::Resolved => {
                let key = source_key(fingerprint, latest.map_or(1, |(n, _)| n));
                self.resolved(&key, alert, latest.map(|(_, incident)| incident)).await
            }
        }
    }

    async fn firing(
        &mut self,
        fingerprint: &str,
        alert: &Alert,
        latest: Option<(u32, &IncidentRow)>,
    ) -> Result<Decision, EngineError> {
        match on_firing(alert, latest) {
            Firing::Open(n) => self.open(fingerprint, n, alert).await,
            Firing::Revise(incident) => {
                let key = source_key(fingerprint, latest.map_or(1, |(n, _)| n));
                match self.opener.get(&incident.incident_id) {
                    Some(opener) if *opener != key => Ok(Decision::unchanged(
                        &incident.incident_id,
                        "joined this incident; the alert that opened it speaks for it",
                    )),
                    _ => self.revise(incident, alert).await,
                }
            }
            Firing::Stale(incident) => Ok(Decision::unchanged(
                &incident.incident_id,
                "its incident is resolved; this alert has not started again since",
            )),
        }
    }

    async fn open(&mut self, fingerprint: &str, n: u32, alert: &Alert) -> Result<Decision, EngineError> {
        let label = &self.settings.element_label;
        let opened = element_of(alert, label, &self.book.topology)
            .and_then(|element| opening(alert, element, self.now, self.engine.config().follow_up));
        let (row, declared) = match opened {
            Ok(opened) => opened,
            Err(reason) => return Ok(Decision::ignored(reason)),
        };
        let key = source_key(fingerprint, n);
        if let Some(incident) = self.covering(&row.element_ids[0]).cloned() {
            return self.join(&key, fingerprint, n, &incident, &row.element_ids[0]).await;
        }
        let (id, created) = self.engine.store().insert_sourced_incident(&key, &row, &declared).await?;
        self.engine.store().join_alert(&key, &id).await?;
        self.latest.insert(fingerprint.to_string(), (n, id.clone().into()));
        if created {
            self.opener.insert(id.clone().into(), key.clone());
            self.open.push(self.engine.incident(&id).await?);
        }
        if !created {
            // Another copy of this alert (the other Alertmanager of a pair) got there first.
            return self.revise(&self.engine.incident(&id).await?, alert).await;
        }
        tracing::info!(incident = %id, source = %key, "an alert opened an incident");
        Ok(Decision::done(Outcome::Opened, &id))
    }

    /// The alert under `key` joins `incident`, which covers its element from now on.
    async fn join(
        &mut self,
        key: &str,
        fingerprint: &str,
        n: u32,
        incident: &IncidentRow,
        element: &str,
    ) -> Result<Decision, EngineError> {
        let id = &incident.incident_id;
        self.engine.store().join_alert(key, id).await?;
        self.latest.insert(fingerprint.to_string(), (n, id.clone()));
        let topology = &self.book.topology;
        let e = topology.index_of(element).expect("checked by element_of");
        let mut elements: Vec<String> = incident
            .element_ids
            .iter()
            .filter(|other| topology.index_of(other).is_none_or(|o| !topology.is_at_or_below(o, e)))
            .cloned()
            .collect();
        let covered = incident
            .element_ids
            .iter()
            .filter_map(|other| topology.index_of(other))
            .any(|other| topology.is_at_or_below(e, other));
        if !covered {
            // The alert names a wider element: the incident now covers it (and whoever is
            // under it is told, by the fan-out of the widened incident's next entry).
            elements.push(element.to_string());
            elements.sort();
            self.engine.store().set_elements(id, &elements).await?;
            if let Some(open) = self.open.iter_mut().find(|i| i.incident_id == *id) {
                open.element_ids = elements;
            }
        }
        tracing::info!(incident = %id, source = %key, "an alert joined an open incident about the same place");
        Ok(Decision::done(Outcome::Joined, id))
    }

    async fn revise(&self, incident: &IncidentRow, alert: &Alert) -> Result<Decision, EngineError> {
        let id = &incident.incident_id;
        let timeline = self.engine.store().updates(id).await?;
        let Some(update) = revision(alert, incident, &timeline, self.now, self.engine.config().follow_up)
        else {
            return Ok(Decision::unchanged(id, "already open; the alert says nothing new"));
        };
        match self.engine.store().append_update(id, &update).await {
            Ok(AppendOutcome::Appended { .. }) => Ok(Decision::done(Outcome::Updated, id)),
            Ok(AppendOutcome::DuplicateTrigger) => {
                Ok(Decision::unchanged(id, "this change is already posted"))
            }
            Err(StoreError::AlreadyResolved(_)) => Ok(Decision::unchanged(id, "its incident is resolved")),
            Err(e) => Err(e.into()),
        }
    }

    async fn resolved(
        &self,
        key: &str,
        alert: &Alert,
        latest: Option<&IncidentRow>,
    ) -> Result<Decision, EngineError> {
        let incident = match on_resolved(alert, latest) {
            Resolving::Unknown => return Ok(Decision::ignored("no incident was opened from this alert")),
            Resolving::Earlier(i) => {
                return Ok(Decision::unchanged(
                    &i.incident_id,
                    "resolves an earlier occurrence of this alert",
                ));
            }
            Resolving::Already(i) => return Ok(Decision::unchanged(&i.incident_id, "already resolved")),
            Resolving::Resolve(i) => i,
        };
        let id = &incident.incident_id;
        // Service came back when the alert ended, not when its resolution reached us.
        let back = alert.ends_at.unwrap_or_else(|| self.engine.clock().now());
        let firing = self.engine.store().end_alert(key, back).await?;
        if firing > 0 {
            return Ok(Decision::unchanged(
                id,
                format!("{firing} other alert(s) of this incident still fire"),
            ));
        }
        // The last of its alerts to resolve: back when the latest of them ended.
        let alerts = self.engine.store().incident_alerts().await?;
        let back = alerts
            .iter()
            .filter(|a| a.incident_id == *id)
            .filter_map(|a| a.resolved_at)
            .max()
            .unwrap_or(back);
        let message = bounded(&format!("Resolved by monitoring: {}", texts(alert).0));
        match self.engine.resolve_at(id, &message, &Default::default(), back).await {
            Ok(_) => {
                tracing::info!(incident = %id, "an alert resolved its incident");
                Ok(Decision::done(Outcome::Resolved, id))
            }
            Err(EngineError::AlreadyResolved(_)) => Ok(Decision::unchanged(id, "already resolved")),
            Err(e) => Err(e),
        }
    }
}

/// A payload over [`ALERTS_PER_PAYLOAD_MAX`], refused before anything of it is recorded.
#[derive(Debug, thiserror::Error)]
#[error("alerts: {count} alerts; at most {ALERTS_PER_PAYLOAD_MAX} per payload")]
pub struct TooManyAlerts {
    pub count: usize,
}

impl TooManyAlerts {
    /// What to set in Alertmanager so that it never sends one.
    pub fn advice(&self) -> String {
        let n = self.count;
        format!(
            "alerts: {n} alerts; set max_alerts: {ALERTS_PER_PAYLOAD_MAX} (or less) in Alertmanager's \
             webhook_config"
        )
    }
}

/// Refuses a payload over [`ALERTS_PER_PAYLOAD_MAX`] before anything of it is recorded.
pub fn check_bound(payload: &Webhook) -> Result<(), TooManyAlerts> {
    let n = payload.alerts.len();
    if n <= ALERTS_PER_PAYLOAD_MAX {
        return Ok(());
    }
    Err(TooManyAlerts { count: n })
}

/// Applies each alert of `payload` in turn, writing what became of it into `receipt` (so
/// that what was recorded before a failure is known).
pub async fn receive(
    engine: &Engine,
    settings: &AlertSettings,
    payload: &Webhook,
    receipt: &mut Receipt,
) -> Result<(), EngineError> {
    let mut receiver = Receiver::new(engine, settings).await?;
    for (index, alert) in payload.alerts.iter().enumerate() {
        let decision = receiver.apply(alert).await?;
        if decision.outcome == Outcome::Ignored {
            keep_ignored(engine, alert, decision.reason.as_deref().unwrap_or_default()).await?;
        }
        receipt.push(index, &alert.fingerprint, decision);
    }
    Ok(())
}

/// An alert amends could not act on is logged at warn and kept by fingerprint (an alert
/// with no usable fingerprint, by a hash of its labels), so an operator sees it.
async fn keep_ignored(engine: &Engine, alert: &Alert, reason: &str) -> Result<(), EngineError> {
    let mut labels = serde_json::to_string(&alert.labels).unwrap_or_default();
    if labels.len() > IGNORED_LABELS_BYTES_MAX {
        labels = serde_json::to_string(&format!(
            "{} bytes of labels, over the {IGNORED_LABELS_BYTES_MAX} kept",
            labels.len()
        ))
        .unwrap_or_default();
    }
    let fingerprint = match check_fingerprint(&alert.fingerprint) {
        Ok(f) => f.to_string(),
        Err(_) => format!("labels-{}", text_hash(&labels, "")),
    };
    tracing::warn!(%fingerprint, %labels, %reason, "an alert was ignored: nobody is told about it");
    let now = engine.clock().now();
    let ignored = amends_store::IgnoredAlert {
        fingerprint,
        labels,
        reason: reason.into(),
        first_at: now,
        last_at: now,
        times: 1,
    };
    Ok(engine.store().record_ignored_alert(&ignored, IGNORED_ALERTS_KEPT).await?)
}

/// The alerts the receiver ignored, most recently seen first: each with its labels, the
/// reason, when it was first and last seen, and how many times it came.
#[derive(Debug, Serialize, ToSchema)]
pub struct IgnoredAlerts {
    pub alerts: Vec<IgnoredAlertView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IgnoredAlertView {
    pub fingerprint: String,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub labels: serde_json::Value,
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub first_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_at: Timestamp,
    pub times: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use amends_core::topology::Element;

    /// What Alertmanager 0.27 sends for a group of two alerts, one firing and one
    /// resolved (`send_resolved: true`), with a field it might add one day.
    const PAYLOAD: &str = r#"{
      "receiver": "amends",
      "status": "firing",
      "alerts": [
        {
          "status": "firing",
          "labels": {
            "alertname": "HubDown", "element": "hub1", "instance": "hub1.north.example.net:9100",
            "job": "node", "severity": "critical"
          },
          "annotations": {
            "summary": "Fibre cut near Hub 1",
            "description": "Hub 1 has not answered for 5 minutes.",
            "runbook_url": "https://runbooks.example.net/hub-down"
          },
          "startsAt": "2026-11-23T11:52:30.123456789Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
          "fingerprint": "9c6e1a5b1f0e4d2a"
        },
        {
          "status": "resolved",
          "labels": { "alertname": "HubDown", "element": "hub2", "severity": "critical" },
          "annotations": { "summary": "Hub 2 down" },
          "startsAt": "2026-11-23T10:00:00+01:00",
          "endsAt": "2026-11-23T11:40:00Z",
          "generatorURL": "",
          "fingerprint": "0b5c3f4e6a7d8e91"
        }
      ],
      "groupLabels": { "alertname": "HubDown" },
      "commonLabels": { "alertname": "HubDown", "severity": "critical" },
      "commonAnnotations": {},
      "externalURL": "http://alertmanager.example.net:9093",
      "version": "4",
      "groupKey": "{}/{severity=\"critical\"}:{alertname=\"HubDown\"}",
      "truncatedAlerts": 0,
      "someFutureField": { "nested": true }
    }"#;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn payload() -> Webhook {
        serde_json::from_str(PAYLOAD).unwrap()
    }

    fn firing() -> Alert {
        payload().alerts[0].clone()
    }

    fn topology() -> Topology {
        let element = |id: &str, parent: Option<&str>| Element {
            id: id.into(),
            parent_id: parent.map(Into::into),
            kind: "hub".into(),
            name: id.into(),
        };
        Topology::build(vec![element("north", None), element("hub1", Some("north"))]).unwrap()
    }

    fn incident(started_at: &str, resolved_at: Option<&str>) -> IncidentRow {
        IncidentRow {
            incident_id: "INC-000001".into(),
            element_ids: vec!["hub1".into()],
            cause: "Fibre cut near Hub 1".into(),
            causes: ByLocale::new(),
            state: if resolved_at.is_some() { IncidentState::Resolved } else { IncidentState::Acknowledged },
            etr: None,
            next_update_by: Some(ts("2026-11-23T13:00:00Z")),
            started_at: ts(started_at),
            resolved_at: resolved_at.map(ts),
            credited_at: None,
            attributes: None,
        }
    }

    fn entry(seq: i64, update: &NewUpdate) -> UpdateRow {
        UpdateRow {
            incident_id: "INC-000001".into(),
            seq,
            at: update.at,
            kind: update.kind.clone(),
            state: update.state,
            etr: update.etr,
            next_update_by: update.next_update_by,
            message: update.message.clone(),
            messages: ByLocale::new(),
            trigger_key: update.trigger_key.clone(),
            fanned_out: true,
        }
    }

    #[test]
    fn a_real_payload_parses() {
        let p = payload();
        assert_eq!((p.version.as_str(), p.status, p.truncated_alerts), ("4", AlertStatus::Firing, 0));
        assert_eq!(p.external_url, "http://alertmanager.example.net:9093");
        let [a, b] = &p.alerts[..] else { panic!("two alerts") };
        assert_eq!((a.status, a.fingerprint.as_str()), (AlertStatus::Firing, "9c6e1a5b1f0e4d2a"));
        assert_eq!(a.starts_at, ts("2026-11-23T11:52:30.123456789Z"));
        assert_eq!(a.ends_at, None, "Go's zero time is no end");
        assert_eq!(a.labels["element"], "hub1");
        assert!(a.generator_url.starts_with("http://prometheus"));
        assert_eq!((b.status, b.starts_at), (AlertStatus::Resolved, ts("2026-11-23T09:00:00Z")));
        assert_eq!(b.ends_at, Some(ts("2026-11-23T11:40:00Z")));
    }

    #[test]
    fn a_malformed_payload_names_the_field() {
        let bad = PAYLOAD.replacen(r#""status": "resolved""#, r#""status": "gone""#, 1);
        let e = serde_json::from_str::<Webhook>(&bad).unwrap_err().to_string();
        assert!(e.contains("unknown variant `gone`"), "{e}");
        let e = serde_json::from_str::<Webhook>(r#"{"status":"firing"}"#).unwrap_err().to_string();
        assert!(e.contains("missing field `alerts`"), "{e}");
    }

    #[test]
    fn source_keys_round_trip_and_leave_other_sources_alone() {
        assert_eq!(source_key("9c6e", 1), "alertmanager:9c6e");
        assert_eq!(source_key("9c6e", 3), "alertmanager:9c6e/3");
        assert_eq!(parse_source_key("alertmanager:9c6e"), Some(("9c6e", 1)));
        assert_eq!(parse_source_key("alertmanager:9c6e/3"), Some(("9c6e", 3)));
        assert_eq!(parse_source_key("telemetry:hub1:2026-11-23T10:00:00Z"), None);
        assert_eq!(parse_source_key("alertmanager:9c6e/x"), None);
        assert!(check_fingerprint("").is_err());
        assert!(check_fingerprint("a/b").is_err());
        assert!(check_fingerprint(&"a".repeat(FINGERPRINT_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn the_element_label_names_an_element_of_the_book() {
        let mut alert = firing();
        assert_eq!(element_of(&alert, "element", &topology()), Ok("hub1"));
        assert_eq!(
            element_of(&alert, "site", &topology()),
            Err(r#"labels: no "site" label naming an element"#.into())
        );
        alert.labels.insert("site".into(), "hub1".into());
        assert_eq!(element_of(&alert, "site", &topology()), Ok("hub1"));
        alert.labels.insert("element".into(), "hub9".into());
        assert_eq!(
            element_of(&alert, "element", &topology()),
            Err(r#"labels.element: "hub9" is not an element of the book"#.into())
        );
    }

    #[test]
    fn cause_and_message_fall_back_in_order() {
        let mut alert = firing();
        let pair = texts;
        assert_eq!(
            pair(&alert),
            ("Fibre cut near Hub 1".into(), "Hub 1 has not answered for 5 minutes.".into())
        );
        alert.annotations.remove("summary");
        assert_eq!(pair(&alert), ("Hub 1 has not answered for 5 minutes.".into(), String::new()));
        alert.annotations.clear();
        assert_eq!(pair(&alert), ("HubDown".into(), String::new()));
        alert.annotations.insert("summary".into(), "é".repeat(MESSAGE_BYTES_MAX));
        assert_eq!(texts(&alert).0.len(), MESSAGE_BYTES_MAX);
    }

    #[test]
    fn a_firing_alert_opens_an_acknowledged_incident_from_its_start() {
        let now = ts("2026-11-23T12:00:00Z");
        let follow_up = SignedDuration::from_mins(60);
        let (row, declared) = opening(&firing(), "hub1", now, follow_up).unwrap();
        assert_eq!(row.element_ids, ["hub1"]);
        assert_eq!((row.cause.as_str(), row.state.as_str()), ("Fibre cut near Hub 1", "acknowledged"));
        assert_eq!((row.started_at, row.etr), (ts("2026-11-23T11:52:30Z"), None));
        assert_eq!(row.next_update_by, Some(ts("2026-11-23T13:00:00Z")));
        assert_eq!((declared.kind.as_str(), declared.at), ("declared", now));
        assert_eq!(declared.message, "Hub 1 has not answered for 5 minutes.");
        assert!(declared.trigger_key.unwrap().starts_with("alertmanager:text:0:"));

        let early = opening(&firing(), "hub1", ts("2026-11-23T11:50:00Z"), follow_up).unwrap().0;
        assert_eq!(early.started_at, ts("2026-11-23T11:50:00Z"), "never in the future");
        let late = opening(&firing(), "hub1", ts("2026-12-25T12:00:00Z"), follow_up).unwrap_err();
        assert_eq!(
            late,
            "startsAt: 2026-11-23T11:52:30Z is more than 31 days before now (2026-12-25T12:00:00Z)"
        );
    }

    #[test]
    fn a_resent_alert_posts_nothing_and_a_change_posts_once() {
        let now = ts("2026-11-23T12:30:00Z");
        let follow_up = SignedDuration::from_mins(60);
        let open = incident("2026-11-23T11:52:30Z", None);
        let declared = opening(&firing(), "hub1", ts("2026-11-23T12:00:00Z"), follow_up).unwrap().1;
        let mut timeline = vec![entry(0, &declared)];
        assert_eq!(revision(&firing(), &open, &timeline, now, follow_up), None);

        let mut changed = firing();
        changed.annotations.insert("description".into(), "Crews are on site.".into());
        let update = revision(&changed, &open, &timeline, now, follow_up).unwrap();
        assert_eq!((update.kind.as_str(), update.message.as_str()), ("update", "Crews are on site."));
        assert_eq!((update.state.as_str(), update.next_update_by), ("acknowledged", open.next_update_by));
        assert!(update.trigger_key.as_deref().unwrap().starts_with("alertmanager:text:1:"));
        // An operator's word in between does not make the alert repeat itself.
        timeline.push(entry(1, &update));
        timeline
            .push(entry(2, &NewUpdate { message: "By hand".into(), trigger_key: None, ..update.clone() }));
        assert_eq!(revision(&changed, &open, &timeline, now, follow_up), None);

        // Back to the first text: said again, under a new key.
        let back = revision(&firing(), &open, &timeline, now, follow_up).unwrap();
        assert_eq!(back.message, "Hub 1 has not answered for 5 minutes.");
        assert!(back.trigger_key.as_deref().unwrap().starts_with("alertmanager:text:2:"));

        let mut renamed = firing();
        renamed.annotations.insert("summary".into(), "Power cut at Hub 1".into());
        let update = revision(&renamed, &open, &timeline, now, follow_up).unwrap();
        assert_eq!(update.message, "Power cut at Hub 1: Hub 1 has not answered for 5 minutes.");
    }

    #[test]
    fn firing_and_resolved_alerts_find_their_occurrence() {
        let alert = firing();
        let open = incident("2026-11-23T11:52:30Z", None);
        let resolved = incident("2026-11-23T11:52:30Z", Some("2026-11-23T13:00:00Z"));
        assert_eq!(on_firing(&alert, None), Firing::Open(1));
        assert_eq!(on_firing(&alert, Some((1, &open))), Firing::Revise(&open));
        assert_eq!(on_firing(&alert, Some((1, &resolved))), Firing::Stale(&resolved));
        let mut again = firing();
        again.starts_at = ts("2026-11-23T14:00:00Z");
        assert_eq!(on_firing(&again, Some((1, &resolved))), Firing::Open(2));

        assert_eq!(on_resolved(&alert, None), Resolving::Unknown);
        assert_eq!(on_resolved(&alert, Some(&open)), Resolving::Resolve(&open));
        assert_eq!(on_resolved(&alert, Some(&resolved)), Resolving::Already(&resolved));
        let second = incident("2026-11-23T14:00:00Z", None);
        assert_eq!(on_resolved(&alert, Some(&second)), Resolving::Earlier(&second));
    }

    #[test]
    fn a_payload_over_the_bound_is_refused() {
        let mut p = payload();
        p.alerts = vec![firing(); ALERTS_PER_PAYLOAD_MAX];
        assert!(check_bound(&p).is_ok());
        p.alerts.push(firing());
        let e = check_bound(&p).unwrap_err();
        assert_eq!(e.count, ALERTS_PER_PAYLOAD_MAX + 1);
    }
}
