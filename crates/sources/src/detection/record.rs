//! What detection saw, written down, in two parts.
//!
//! The incidents themselves are recorded at once, as detection makes them: each new
//! incident, and the element and cause of an incident that widens. That is what an
//! operator and the status page look at, so the network-wide incident of a storm shows
//! within a tick of its crossing, however far behind the rest is.
//!
//! The customers' side (each one's impact, their notices, merges moving customers into the
//! wider incident, resolutions with everyone's own downtime) goes, in detection's order,
//! to the writer task ([`super::write`]), so a storm of thousands of incidents never stops
//! detection from taking events and recording the next incident. What a write needs of
//! the detector is taken when it is queued (the detector moves on), and it names store
//! incidents; everything is keyed, so a crash loses nothing a rebuild does not write again
//! the same way.

use super::Service;
use super::write::{Write, blank_impact};
use crate::telemetry::source_key;
use amends_core::incident::{ByLocale, IncidentState, UpdateKind};
use amends_core::telemetry::Detection;
use amends_core::topology::ElementIdx;
use amends_recovery::{Engine, EngineError, TELEMETRY_SOURCE};
use amends_store::{ImpactRow, IncidentRow, NewUpdate, SourcedIncident, Widening};
use jiff::Timestamp;
use std::collections::HashMap;
use std::time::Instant;

impl Service {
    /// Records the incidents of every detection made so far, and queues the rest, in order.
    pub(super) async fn record(&mut self) -> Result<(), EngineError> {
        let detections = std::mem::take(&mut self.detections);
        let timer = Instant::now();
        self.open_all(&detections).await?;
        let opened = timer.elapsed();
        let mut widenings = Vec::new();
        let mut writes = Vec::new();
        for detection in detections {
            match detection {
                Detection::Opened { incident, element, started_at, .. } => {
                    writes.extend(self.presume(incident, element, started_at));
                }
                Detection::Merged { incident, merged, element, at, extent } => {
                    if let Some(id) = self.store_id(incident) {
                        let e = &self.book.topology.element(element).id;
                        tracing::info!(incident = %id, element = %e, merged = merged.len(), "incident widened");
                    }
                    let merged: Vec<String> =
                        merged.iter().filter_map(|&m| self.store_id(m).cloned()).collect();
                    widenings.extend(self.widening(incident, element, &extent, &merged));
                    if let Some(into) = self.store_id(incident).cloned() {
                        writes.push(Write::Merge { merged, into, at });
                    }
                    let started = self.detector.incident(incident).started_at;
                    writes.extend(self.presume(incident, element, started));
                }
                Detection::Narrowed { .. } => {}
                Detection::Affected { incident, device, at } => {
                    writes.extend(self.device(incident, device, at, None));
                }
                Detection::Restored { incident, device, at } => {
                    writes.extend(self.device(incident, device, at, Some(at)));
                }
                Detection::Resolved { incident, still_offline, at } => {
                    if let Some(id) = self.store_id(incident).cloned() {
                        let rows = self.final_impacts(&id, incident, &still_offline, at);
                        writes.push(Write::Resolve { incident: id, rows, at });
                    }
                }
            }
        }
        self.engine.store().widen_incidents(&widenings).await?;
        tracing::debug!(?opened, widened = widenings.len(), took = ?timer.elapsed(), "recorded");
        self.writes.send(writes)
    }

    /// Customers without a device at or below `element` are presumed out with `incident`.
    fn presume(&self, incident: u32, element: ElementIdx, started: Timestamp) -> Option<Write> {
        let incident = self.store_id(incident)?.clone();
        Some(Write::Presume { incident, element, started })
    }

    /// A device joined (`back: None`) or came back in `incident`.
    fn device(&self, incident: u32, device: u32, at: Timestamp, back: Option<Timestamp>) -> Option<Write> {
        let incident = self.store_id(incident)?.clone();
        Some(Write::Device { incident, device, at, back })
    }

    fn store_id(&self, incident: u32) -> Option<&String> {
        self.ids.get(incident as usize).and_then(Option::as_ref)
    }

    /// Records the incidents detections opened, all in one write (a storm opens thousands
    /// within a second), under their source keys (found again, on a replay). An incident's
    /// outage began at its devices' earliest outage; the promises it makes (the next word,
    /// the confirmation window) run from now, when it is recorded, even if the events that
    /// crossed the threshold came in late.
    async fn open_all(&mut self, detections: &[Detection]) -> Result<(), EngineError> {
        let opened: Vec<(u32, ElementIdx, SourcedIncident)> = detections
            .iter()
            .filter_map(|d| match *d {
                Detection::Opened { incident, element, started_at, offline, .. } => {
                    Some((incident, element, self.opening(incident, element, started_at, offline)))
                }
                _ => None,
            })
            .collect();
        if opened.is_empty() {
            return Ok(());
        }
        self.adopt_legacy(&opened).await?;
        let rows: Vec<SourcedIncident> = opened.iter().map(|(_, _, o)| o.clone()).collect();
        let ids = self.engine.store().insert_sourced_incidents(&rows).await?;
        amends_recovery::failpoint::pass(amends_recovery::failpoint::DETECTION_RECORDING, ids.len() as u64);
        for ((incident, element, o), (id, new)) in opened.into_iter().zip(ids) {
            if new {
                tracing::info!(incident = %id, source = %o.source_key, "incident detected");
            }
            let slot = incident as usize;
            if self.ids.len() <= slot {
                self.ids.resize(slot + 1, None);
                self.tops.resize(slot + 1, element);
            }
            self.ids[slot] = Some(id);
            self.tops[slot] = element;
        }
        Ok(())
    }

    /// The incident a crossing opens, with its first entry.
    fn opening(
        &self,
        incident: u32,
        element: ElementIdx,
        started_at: Timestamp,
        offline: u32,
    ) -> SourcedIncident {
        let now = self.engine.clock().now();
        let detected = self.detector.incident(incident);
        let e = self.book.topology.element(element);
        // Its element and the instant that element crossed its threshold: both read off
        // the log, neither moves later (the start does, as late confirmations join), and no
        // two incidents share them.
        let source_key = source_key(&e.id, detected.opened_at);
        let hold = self.config.confirm_within;
        // As the element stood when it crossed, not as it stands when this is recorded.
        let total = self.detector.element_counts(element).1;
        let follow_up = hold.unwrap_or(self.engine.config().follow_up);
        let incident = IncidentRow {
            incident_id: Default::default(),
            element_ids: vec![e.id.clone()],
            cause: detected_cause(&e.name),
            causes: ByLocale::new(),
            state: IncidentState::Detected,
            etr: None,
            next_update_by: Some(amends_recovery::clock::after(now, follow_up)),
            started_at,
            resolved_at: None,
            credited_at: None,
            attributes: None,
        };
        let declared = NewUpdate {
            at: now,
            kind: if hold.is_some() { UpdateKind::Detected } else { UpdateKind::Declared }.as_str().into(),
            state: IncidentState::Detected,
            etr: None,
            next_update_by: incident.next_update_by,
            message: format!(
                "We detected it automatically ({offline} of {total} devices at {} {} offline) and our engineers are on it.",
                e.kind, e.id
            ),
            messages: ByLocale::new(),
            trigger_key: None,
        };
        SourcedIncident { source_key, incident, declared }
    }

    /// The incident now covers its extent (every element it has taken in), its public cause
    /// names the wider area, unless an operator wrote one of their own (the stored cause is
    /// then no longer the one detection wrote for the narrower top), and the incidents it
    /// took in are part of it at once (no longer listed open), their customers moving over
    /// with the writer.
    fn widening(
        &mut self,
        incident: u32,
        top: ElementIdx,
        extent: &[ElementIdx],
        merged: &[String],
    ) -> Option<Widening> {
        let id = self.store_id(incident)?.clone();
        let slot = self.tops.get_mut(incident as usize)?;
        let was = detected_cause(&self.book.topology.element(*slot).name);
        *slot = top;
        let mut element_ids: Vec<String> =
            extent.iter().map(|&e| self.book.topology.element(e).id.clone()).collect();
        element_ids.sort();
        Some(Widening {
            incident_id: id.into(),
            element_ids,
            cause: detected_cause(&self.book.topology.element(top).name),
            was,
            merged: merged.to_vec(),
        })
    }

    /// Every customer's final impact in `incident`, resolved at `at`: their own downtime,
    /// and a follow-up for those whose device is still offline. Taken from the detector
    /// when the resolution is detected.
    fn final_impacts(&self, id: &str, incident: u32, still_offline: &[u32], at: Timestamp) -> Vec<ImpactRow> {
        let customer = |c: u32| self.book.customers[c as usize].id.as_str();
        let mut rows: HashMap<u32, ImpactRow> = HashMap::new();
        // By customer, then start: a customer's first row is their earliest outage.
        for d in self.detector.downtime(incident) {
            let row = rows.entry(d.customer).or_insert_with(|| ImpactRow {
                presumed: d.presumed,
                ..blank_impact(id, customer(d.customer), d.start)
            });
            row.downtime.push((d.start, d.end));
            row.back_at = Some(d.end);
        }
        for &device in still_offline {
            for &c in self.detector.network().customers_of(device) {
                let row = rows.entry(c).or_insert_with(|| blank_impact(id, customer(c), at));
                row.back_at = None;
                row.follow_up = true;
            }
        }
        rows.into_values().collect()
    }
}

impl Service {
    /// An open incident an older amends opened on the element of one of `opened` takes
    /// that opening's key: it is the same outage, found again, and its customers were told
    /// already.
    async fn adopt_legacy(
        &mut self,
        opened: &[(u32, ElementIdx, SourcedIncident)],
    ) -> Result<(), EngineError> {
        if self.legacy.is_empty() {
            return Ok(());
        }
        for (_, element, o) in opened {
            let Some(old) = self.legacy.remove(&self.book.topology.element(*element).id) else { continue };
            if self.engine.store().rekey_source(&old, &o.source_key).await? {
                tracing::info!(old = %old, new = %o.source_key, "an incident opened under an older key, found again");
            }
        }
        Ok(())
    }
}

/// Open, unmerged incidents an older amends opened under `telemetry:<element>:<start>` (a
/// key a restart could not find again: the start moved as confirmations joined), by
/// element: the next opening on that element in the replayed log takes them over.
pub(super) async fn legacy_sources(engine: &Engine) -> Result<HashMap<String, String>, EngineError> {
    let mut legacy = HashMap::new();
    for source in engine.store().incident_sources().await? {
        let Some(element) = legacy_element(&source.source_key) else { continue };
        if source.merged_into.is_none()
            && engine.store().incident(&source.incident_id).await?.is_some_and(|i| i.resolved_at.is_none())
        {
            legacy.insert(element.to_string(), source.source_key.clone());
        }
    }
    Ok(legacy)
}

/// The element of a key in the older `telemetry:<element>:<start>` form; `None` for any
/// other key (the current `telemetry:<element>@<instant>` among them).
fn legacy_element(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(TELEMETRY_SOURCE)?;
    let is_instant = |s: &str| s.parse::<Timestamp>().is_ok();
    if rest.rsplit_once('@').is_some_and(|(_, at)| is_instant(at)) {
        return None;
    }
    rest.match_indices(':').map(|(i, _)| i).find(|&i| is_instant(&rest[i + 1..])).map(|i| &rest[..i])
}

const DETECTED_CAUSE_PREFIX: &str = "A fault in the network equipment serving your area (";

/// The public cause of a detected incident at the element named `name`.
fn detected_cause(name: &str) -> String {
    format!("{DETECTED_CAUSE_PREFIX}{name})")
}

#[cfg(test)]
mod tests {
    use super::{legacy_element, source_key};

    #[test]
    fn older_keys_are_told_from_current_ones() {
        assert_eq!(legacy_element("telemetry:node1:2026-11-23T06:00:00Z"), Some("node1"));
        assert_eq!(legacy_element("telemetry:R1:H2:2026-11-23T06:00:00.25Z"), Some("R1:H2"));
        let current = source_key("node1", "2026-11-23T06:00:00Z".parse().unwrap());
        assert_eq!(legacy_element(&current), None);
        assert_eq!(legacy_element("telemetry:odd@name:2026-11-23T06:00:00Z"), Some("odd@name"));
        assert_eq!(legacy_element("alertmanager:abc:2026-11-23T06:00:00Z"), None);
        assert_eq!(legacy_element("telemetry:node1"), None);
    }
}
