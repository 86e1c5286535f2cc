//! Device telemetry into detection: the `[detection]` settings, the book as detection sees
//! it, and `amends replay`, which runs a file of events through the engine on a simulated
//! clock (the clock follows the events) and prints what it detected.

use amends_core::book::CustomerStatus;
use amends_core::money::format_quotient;
use amends_core::telemetry::{
    Attachment, Detection, DetectionConfig, Detector, DeviceEvent, Fraction, Network, Refusal, Threshold,
};
use amends_core::text::safe_cell;
use amends_recovery::TELEMETRY_SOURCE;
use amends_recovery::book::LoadedBook;
use anyhow::{Context, Result, anyhow, bail};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// How many rejected lines `replay` lists one by one; the rest are only counted.
pub const REJECTIONS_LISTED_MAX: usize = 1000;
/// How many of the elements still out a `narrowed` record lists: a large incident narrows
/// once per element that comes back, and listing them all each time grows the output with
/// the square of the incident.
pub const NARROWED_ELEMENTS_LISTED_MAX: usize = 20;

/// `[detection]` in the settings file. Every key is optional.
///
/// ```toml
/// [detection]
/// hold_down_seconds = 60
/// min_devices = 3
/// min_fraction = 0.6
/// restore_fraction = 0.1
/// [detection.kinds.amplifier]
/// min_devices = 2
/// min_fraction = 0.5
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSettings {
    pub hold_down_seconds: Option<u32>,
    pub reorder_window_ms: Option<u32>,
    pub future_limit_seconds: Option<u32>,
    pub correlation_window_minutes: Option<u32>,
    /// `amends serve`: hold each detected incident up to this many minutes for an
    /// operator to confirm before customers are told (told anyway when it lapses). Absent:
    /// customers are told as soon as the incident is detected.
    pub confirm_within_minutes: Option<u32>,
    /// `amends serve`: days the device event log is kept (default 7).
    pub event_log_days: Option<u32>,
    #[serde(flatten)]
    pub threshold: ThresholdSettings,
    #[serde(default)]
    pub kinds: HashMap<String, ThresholdSettings>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSettings {
    pub min_devices: Option<u32>,
    pub min_fraction: Option<Decimal>,
    pub restore_fraction: Option<Decimal>,
}

/// A fraction written as a TOML number (`0.6`) or string (`"0.6"`), read as the exact
/// decimal it was written as.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Number(f64),
    Text(String),
}

impl Decimal {
    fn fraction(&self, key: &str) -> Result<Fraction> {
        let text = match self {
            // Rust prints the shortest decimal that reads back as the same float: 0.6 -> "0.6".
            Decimal::Number(n) => n.to_string(),
            Decimal::Text(t) => t.clone(),
        };
        Fraction::parse(&text).ok_or_else(|| anyhow!("{key} = {text}: expected a decimal from 0 to 1"))
    }
}

/// Upper bounds on the time settings, so a typo cannot make detection wait for a year.
const HOLD_DOWN_SECONDS_MAX: u32 = 3600;
const REORDER_WINDOW_MS_MAX: u32 = 60_000;
const CORRELATION_MINUTES_MAX: u32 = 24 * 60;

/// Upper bound on `confirm_within_minutes`: a day.
const CONFIRM_MINUTES_MAX: u32 = 24 * 60;
/// Upper bound on `event_log_days`.
const EVENT_LOG_DAYS_MAX: u32 = 366;
/// Default of `event_log_days`.
pub const EVENT_LOG_DAYS_DEFAULT: u32 = 7;

impl DetectionSettings {
    /// How long a detected incident waits for an operator's confirmation; `None`: not at all.
    pub fn confirm_within(&self) -> Result<Option<SignedDuration>> {
        match self.confirm_within_minutes {
            Some(m) if m == 0 || m > CONFIRM_MINUTES_MAX => {
                bail!("detection.confirm_within_minutes = {m}: from 1 to {CONFIRM_MINUTES_MAX}")
            }
            m => Ok(m.map(|m| SignedDuration::from_mins(i64::from(m)))),
        }
    }

    /// How long the device event log keeps an event.
    pub fn event_log_retention(&self) -> Result<SignedDuration> {
        let days = self.event_log_days.unwrap_or(EVENT_LOG_DAYS_DEFAULT);
        if days == 0 || days > EVENT_LOG_DAYS_MAX {
            bail!("detection.event_log_days = {days}: from 1 to {EVENT_LOG_DAYS_MAX}");
        }
        Ok(SignedDuration::from_hours(24 * i64::from(days)))
    }

    pub fn to_config(&self) -> Result<DetectionConfig> {
        let mut config = DetectionConfig::default();
        let bounded = |key: &str, value: Option<u32>, max: u32| -> Result<Option<i64>> {
            match value {
                Some(v) if v > max => bail!("detection.{key} = {v}: at most {max}"),
                v => Ok(v.map(i64::from)),
            }
        };
        if let Some(s) = bounded("hold_down_seconds", self.hold_down_seconds, HOLD_DOWN_SECONDS_MAX)? {
            config.hold_down = SignedDuration::from_secs(s);
        }
        if let Some(ms) = bounded("reorder_window_ms", self.reorder_window_ms, REORDER_WINDOW_MS_MAX)? {
            config.reorder_window = SignedDuration::from_millis(ms);
        }
        if let Some(s) = bounded("future_limit_seconds", self.future_limit_seconds, 24 * 3600)? {
            config.future_limit = SignedDuration::from_secs(s);
        }
        if let Some(m) =
            bounded("correlation_window_minutes", self.correlation_window_minutes, CORRELATION_MINUTES_MAX)?
        {
            config.correlation_window = SignedDuration::from_mins(m);
        }
        config.default_threshold = self.threshold.apply(Threshold::default(), "detection")?;
        for (kind, t) in &self.kinds {
            let threshold = t.apply(config.default_threshold, &format!("detection.kinds.{kind}"))?;
            config.thresholds.insert(kind.clone(), threshold);
        }
        Ok(config)
    }
}

impl ThresholdSettings {
    /// These settings with every key that `over` gives replaced.
    pub fn overridden_by(self, over: ThresholdSettings) -> ThresholdSettings {
        ThresholdSettings {
            min_devices: over.min_devices.or(self.min_devices),
            min_fraction: over.min_fraction.or(self.min_fraction),
            restore_fraction: over.restore_fraction.or(self.restore_fraction),
        }
    }

    fn apply(&self, base: Threshold, table: &str) -> Result<Threshold> {
        let mut t = base;
        if let Some(n) = self.min_devices {
            if n == 0 {
                bail!("{table}.min_devices = 0: at least one device must be offline");
            }
            t.min_devices = n;
        }
        if let Some(f) = &self.min_fraction {
            t.min_fraction = f.fraction(&format!("{table}.min_fraction"))?;
        }
        if let Some(f) = &self.restore_fraction {
            t.restore_fraction = f.fraction(&format!("{table}.restore_fraction"))?;
        }
        if t.min_fraction.reached_by(0, 1) {
            bail!("{table}.min_fraction = 0: an element would be out with no device offline");
        }
        if t.restore_fraction.exceeds(t.min_fraction) {
            bail!(
                "{table}.restore_fraction = {} is above min_fraction = {}: an element would be back as soon as it is out",
                t.restore_fraction.show(),
                t.min_fraction.show()
            );
        }
        Ok(t)
    }
}

/// Active customers as detection sees them: their element and device.
pub fn network(book: &LoadedBook) -> Network {
    let attachments =
        book.customers.iter().enumerate().filter(|(_, c)| c.status == CustomerStatus::Active).map(
            |(i, c)| Attachment {
                customer: i as u32,
                element: book.customer_element[i],
                device: c.device_id.as_deref(),
            },
        );
    Network::build(&book.topology, attachments)
}

/// What a replay saw, beyond the detections it printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplaySummary {
    pub lines: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub unknown_devices: u64,
    pub unknown_sample: Vec<String>,
    pub duplicates: u64,
    pub superseded: u64,
    pub late: u64,
    pub confirmed: u64,
    pub momentary: u64,
    pub pending_at_end: usize,
    pub no_data: usize,
    pub isolated: usize,
    pub incidents_opened: usize,
    pub incidents_open_at_end: usize,
}

/// Incident ids in a replay: `T1`, `T2`, ... in the order they opened.
pub fn replay_incident_id(index: u32) -> String {
    format!("T{}", index + 1)
}

/// Runs every event line of `input` through detection, the clock following the events,
/// and writes one NDJSON record per incident opened, merged, narrowed and resolved, one per
/// customer still offline at resolution, one per rejected line (the first
/// `REJECTIONS_LISTED_MAX`), one per isolated fault left at the end, and a summary. With
/// `downtime`, writes every customer's downtime per incident as CSV.
///
/// The simulated clock bounds nothing: events more than the future limit after `wall_now`
/// (the real clock) are refused, since past data cannot come from the future. With
/// `until`, the clock moves on to it after the last event (hold-downs run out).
///
/// Each incident record carries its `source_key`, the key `amends serve` records the same
/// incident under, so a replay can be compared with what a server did.
pub fn replay(
    book: &LoadedBook,
    config: DetectionConfig,
    wall_now: Timestamp,
    until: Option<Timestamp>,
    input: impl BufRead,
    out: &mut dyn Write,
    downtime: Option<&mut dyn Write>,
) -> Result<ReplaySummary> {
    let mut detector = Detector::new(&book.topology, network(book), config);
    let mut summary = ReplaySummary::default();
    let mut detections = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line_no = n + 1;
        let line = line.with_context(|| format!("reading line {line_no}"))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let refused = match DeviceEvent::parse(&line) {
            Ok(event) => match detector.offer(&event, wall_now) {
                Ok(()) => {
                    detector.advance(event.at, &mut detections);
                    None
                }
                Err(Refusal::UnknownDevice(_)) => None,
                Err(refusal) => Some(refusal.to_string()),
            },
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = refused {
            summary.rejected += 1;
            if summary.rejected as usize <= REJECTIONS_LISTED_MAX {
                writeln!(out, "{}", json!({"type": "rejected", "line": line_no, "reason": reason}))?;
            }
        }
        write_detections(book, &detector, &mut detections, out)?;
    }
    if let Some(until) = until {
        detector.advance(until, &mut detections);
    }
    detector.drain(&mut detections);
    write_detections(book, &detector, &mut detections, out)?;
    for device in detector.isolated() {
        let customers: Vec<&str> = customer_ids(book, detector.network().customers_of(device));
        let id = detector.network().device_id(device);
        writeln!(out, "{}", json!({"type": "isolated", "device_id": id, "customer_ids": customers}))?;
        summary.isolated += 1;
    }
    let stats = detector.stats();
    summary.accepted = stats.accepted;
    summary.unknown_devices = stats.unknown_devices;
    summary.unknown_sample = stats.unknown_sample.iter().cloned().collect();
    summary.duplicates = stats.duplicates;
    summary.superseded = stats.superseded;
    summary.late = stats.late;
    summary.confirmed = stats.confirmed;
    summary.momentary = stats.momentary;
    summary.pending_at_end = detector.pending();
    summary.no_data = detector.no_data();
    let incidents = detector.incidents();
    summary.incidents_opened = incidents.len();
    summary.incidents_open_at_end =
        incidents.iter().filter(|i| i.resolved_at.is_none() && i.merged_into.is_none()).count();
    let mut record = serde_json::to_value(&summary)?;
    record["type"] = json!("summary");
    writeln!(out, "{record}")?;
    if let Some(csv) = downtime {
        write_downtime(book, &detector, csv)?;
    }
    Ok(summary)
}

/// The source key of a detected incident.
pub fn source_key(element_id: &str, opened_at: Timestamp) -> String {
    format!("{TELEMETRY_SOURCE}{element_id}@{opened_at}")
}

/// The key `amends serve` records a detected incident under: the element it opened at and
/// the instant that element crossed its threshold.
fn source_key_of(book: &LoadedBook, detector: &Detector, incident: u32) -> String {
    let i = detector.incident(incident);
    source_key(&book.topology.element(i.opened_element).id, i.opened_at)
}

fn customer_ids<'b>(book: &'b LoadedBook, customers: &[u32]) -> Vec<&'b str> {
    customers.iter().map(|&c| book.customers[c as usize].id.as_str()).collect()
}

/// Writes the incident-level detections (per-device ones are counted in the records) and
/// empties `detections`.
fn write_detections(
    book: &LoadedBook,
    detector: &Detector,
    detections: &mut Vec<Detection>,
    out: &mut dyn Write,
) -> Result<()> {
    let element = |e: u32| book.topology.element(e);
    for d in detections.drain(..) {
        let record = match d {
            Detection::Opened { incident, element: e, at, .. }
            | Detection::Merged { incident, element: e, at, .. } => {
                let (offline, total) = detector.element_counts(e);
                let mut r = json!({
                    "type": "opened",
                    "at": at,
                    "incident": replay_incident_id(incident),
                    "source_key": source_key_of(book, detector, incident),
                    "element": element(e).id,
                    "kind": element(e).kind,
                    "devices_offline": offline,
                    "devices_total": total,
                    "customers_affected": detector.customers_affected(incident),
                });
                if let Detection::Merged { merged, .. } = d {
                    r["type"] = json!("merged");
                    r["merged"] = json!(merged.iter().map(|&m| replay_incident_id(m)).collect::<Vec<_>>());
                }
                r
            }
            Detection::Narrowed { incident, elements, at } => json!({
                "type": "narrowed",
                "at": at,
                "incident": replay_incident_id(incident),
                "elements_out": elements.len(),
                "elements": elements.iter().take(NARROWED_ELEMENTS_LISTED_MAX).map(|&e| element(e).id.as_str())
                    .collect::<Vec<_>>(),
                "customers_affected": detector.customers_affected(incident),
            }),
            Detection::Resolved { incident, still_offline, at } => {
                let extent = &detector.incident(incident).extent;
                let total: u32 = extent.iter().map(|&e| detector.element_counts(e).1).sum();
                let id = replay_incident_id(incident);
                for &device in &still_offline {
                    for c in customer_ids(book, detector.network().customers_of(device)) {
                        let r = json!({"type": "still_offline", "at": at, "incident": id, "customer_id": c,
                            "device_id": detector.network().device_id(device)});
                        writeln!(out, "{r}")?;
                    }
                }
                json!({
                    "type": "resolved",
                    "at": at,
                    "incident": id,
                    "source_key": source_key_of(book, detector, incident),
                    "elements": extent.iter().map(|&e| element(e).id.as_str()).collect::<Vec<_>>(),
                    "devices_still_offline": still_offline.len(),
                    "devices_total": total,
                    "customers_affected": detector.customers_affected(incident),
                })
            }
            Detection::Affected { .. } | Detection::Restored { .. } => continue,
        };
        writeln!(out, "{record}")?;
    }
    Ok(())
}

/// `customer_id,incident_id,start,end,minutes` for every incident that was not merged
/// into another (a merged incident's customers are under the one it merged into).
pub fn write_downtime(book: &LoadedBook, detector: &Detector, out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["customer_id", "incident_id", "start", "end", "minutes"])?;
    for (i, incident) in detector.incidents().iter().enumerate() {
        if incident.merged_into.is_some() {
            continue;
        }
        let id = replay_incident_id(i as u32);
        for row in detector.downtime(i as u32) {
            let micros = row.end.duration_since(row.start).as_micros();
            w.write_record([
                safe_cell(&book.customers[row.customer as usize].id).as_ref(),
                &id,
                &row.start.to_string(),
                &row.end.to_string(),
                &format_quotient(micros, 60_000_000, 0, 2).replace(',', ""),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<DetectionConfig> {
        toml::from_str::<DetectionSettings>(toml)?.to_config()
    }

    #[test]
    fn detection_settings_are_read_and_checked_by_key() {
        let c =
            settings("hold_down_seconds = 30\nmin_fraction = 0.5\n[kinds.tap]\nmin_devices = 2\n").unwrap();
        assert_eq!(c.hold_down, SignedDuration::from_secs(30));
        assert_eq!(c.default_threshold.min_fraction, Fraction::parse("0.5").unwrap());
        let tap = c.threshold("tap");
        assert_eq!((tap.min_devices, tap.min_fraction), (2, Fraction::parse("0.5").unwrap()));
        for (bad, want) in [
            ("hold_down_seconds = 7200", "detection.hold_down_seconds = 7200: at most 3600"),
            ("min_fraction = 1.5", "detection.min_fraction = 1.5: expected a decimal from 0 to 1"),
            ("min_fraction = \"0\"", "detection.min_fraction = 0: an element would be out"),
            (
                "[kinds.amp]\nrestore_fraction = 0.7",
                "detection.kinds.amp.restore_fraction = 0.7 is above min_fraction = 0.6",
            ),
            ("[kinds.amp]\nmin_devices = 0", "detection.kinds.amp.min_devices = 0"),
        ] {
            let err = settings(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
