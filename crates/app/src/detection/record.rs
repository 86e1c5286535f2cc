//! What detection saw, written down, in two parts.
//!
//! The incidents themselves are recorded at once, as detection makes them: each new
//! incident, and the element and cause of an incident that widens. That is what an
//! operator and the status page look at, so the network-wide incident of a storm shows
//! within a tick of its crossing, however far behind the rest is.
//!
//! The customers' side (each one's impact, their notices, merges moving customers into the
//! wider incident, resolutions with everyone's own downtime) is queued in detection's
//! order as [`Write`]s and applied a slice at a time ([`Service::apply_writes`]), in that
//! order, between batches of events, so a storm of thousands of incidents never stops
//! detection from taking events. What a write needs of the detector is taken when it is
//! queued (the detector moves on); everything is keyed, so a crash loses nothing a rebuild
//! does not write again the same way.

use super::Service;
use crate::recovery::{EngineError, TELEMETRY_SOURCE};
use amends_core::incident::{ByLocale, IncidentState, UpdateKind};
use amends_core::telemetry::Detection;
use amends_core::topology::ElementIdx;
use amends_store::{ImpactRow, IncidentRow, NewUpdate, SourcedIncident, StoreError, Widening, notified};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Impacts of one store incident waiting to be written, by customer index.
pub(super) type Pending = BTreeMap<String, HashMap<u32, ImpactRow>>;

/// How long one slice of [`Service::apply_writes`] goes on before detection takes events
/// again (the slice then writes what it staged).
pub const WRITE_SLICE: Duration = Duration::from_millis(50);
/// Most impacts one slice stages before it writes them: staging is cheap and writing is
/// not, so a slice bounded only by time would stage a storm's whole queue and then hold
/// detection for seconds while it writes it.
pub const SLICE_IMPACTS_MAX: usize = 5_000;

/// One step of the customers' side of detection, in detection's order.
pub(super) enum Write {
    /// A device joined (`back: None`) or came back in an incident: its customers' impacts.
    Device { incident: u32, device: u32, at: Timestamp, back: Option<Timestamp> },
    /// Customers without a device at or below `element` are presumed out from `started`.
    Presume { incident: u32, element: ElementIdx, started: Timestamp },
    /// `merged` became part of `into` at `at`.
    Merge { merged: Vec<u32>, into: u32, at: Timestamp },
    /// The incident resolved at `at`, with every customer's final impact.
    Resolve { incident: u32, rows: Vec<ImpactRow>, at: Timestamp },
}

impl Service {
    /// Records the incidents of every detection made so far, and queues the rest, in order.
    pub(super) async fn record(&mut self) -> Result<(), EngineError> {
        let detections = std::mem::take(&mut self.detections);
        let timer = Instant::now();
        self.open_all(&detections).await?;
        let opened = timer.elapsed();
        let mut widenings = Vec::new();
        for detection in detections {
            match detection {
                Detection::Opened { incident, element, started_at, .. } => {
                    self.writes.push_back(Write::Presume { incident, element, started: started_at });
                }
                Detection::Merged { incident, merged, element, at, extent } => {
                    widenings.extend(self.widening(incident, element, &extent));
                    self.writes.push_back(Write::Merge { merged, into: incident, at });
                    let started = self.detector.incident(incident).started_at;
                    self.writes.push_back(Write::Presume { incident, element, started });
                }
                Detection::Narrowed { .. } => {}
                Detection::Affected { incident, device, at } => {
                    self.writes.push_back(Write::Device { incident, device, at, back: None });
                }
                Detection::Restored { incident, device, at } => {
                    self.writes.push_back(Write::Device { incident, device, at, back: Some(at) });
                }
                Detection::Resolved { incident, still_offline, at } => {
                    let rows = self.final_impacts(incident, &still_offline, at);
                    self.writes.push_back(Write::Resolve { incident, rows, at });
                }
            }
        }
        self.engine.store.widen_incidents(&widenings).await?;
        tracing::debug!(?opened, widened = widenings.len(), took = ?timer.elapsed(), "recorded");
        Ok(())
    }

    /// Whether writes are waiting.
    pub(super) fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Applies queued writes, in order, for about `slice`, then writes what they staged.
    /// Impacts are written and notified in one go, before anything that depends on them
    /// (a merge, a resolution).
    pub(super) async fn apply_writes(&mut self, slice: Duration) -> Result<(), EngineError> {
        let started = Instant::now();
        let mut pending = Pending::new();
        let mut staged = 0;
        while started.elapsed() < slice && staged < SLICE_IMPACTS_MAX {
            let Some(write) = self.writes.pop_front() else { break };
            match write {
                Write::Device { incident, device, at, back } => {
                    staged += self.stage(&mut pending, incident, device, at, |row| row.back_at = back);
                }
                Write::Presume { incident, element, started } => {
                    staged += self.presume_deviceless(&mut pending, incident, element, started);
                }
                Write::Merge { merged, into, at } => {
                    // Only what the merge moves must be written first: the merged
                    // incidents' customers, told under the incident they joined.
                    let moving: Vec<String> =
                        merged.iter().chain([&into]).filter_map(|&i| self.store_id(i).cloned()).collect();
                    self.flush_some(&mut pending, &moving).await?;
                    self.merge(&merged, into, at).await?;
                }
                Write::Resolve { incident, rows, at } => {
                    let resolving: Vec<String> = self.store_id(incident).cloned().into_iter().collect();
                    self.flush_some(&mut pending, &resolving).await?;
                    self.resolve(incident, rows, at).await?;
                }
            }
        }
        self.flush(&mut pending).await?;
        tracing::debug!(took = ?started.elapsed(), left = self.writes.len(), "writes applied");
        Ok(())
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
        let rows: Vec<SourcedIncident> = opened.iter().map(|(_, _, o)| o.clone()).collect();
        let ids = self.engine.store.insert_sourced_incidents(&rows).await?;
        crate::failpoint::pass(crate::failpoint::DETECTION_RECORDING, ids.len() as u64);
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
        let now = self.engine.clock.now();
        let detected = self.detector.incident(incident);
        let e = self.book.topology.element(element);
        // Its element and the instant that element crossed its threshold: both read off
        // the log, neither moves later (the start does, as late confirmations join), and no
        // two incidents share them.
        let source_key = source_key(&e.id, detected.opened_at);
        let hold = self.config.confirm_within;
        // As the element stood when it crossed, not as it stands when this is recorded.
        let total = self.detector.element_counts(element).1;
        let follow_up = hold.unwrap_or(self.engine.config.follow_up);
        let incident = IncidentRow {
            incident_id: String::new(),
            element_ids: vec![e.id.clone()],
            cause: detected_cause(&e.name),
            causes: ByLocale::new(),
            state: IncidentState::Detected.as_str().into(),
            etr: None,
            next_update_by: Some(crate::clock::after(now, follow_up)),
            declared_at: started_at,
            resolved_at: None,
            credited_at: None,
        };
        let declared = NewUpdate {
            at: now,
            kind: if hold.is_some() { UpdateKind::Detected } else { UpdateKind::Declared }.as_str().into(),
            state: IncidentState::Detected.as_str().into(),
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

    /// Customers without a device at or below `element` are presumed out with it.
    /// Returns how many impacts it staged.
    fn presume_deviceless(
        &self,
        pending: &mut Pending,
        incident: u32,
        element: ElementIdx,
        started: Timestamp,
    ) -> usize {
        let Some(id) = self.store_id(incident) else { return 0 };
        let rows = pending.entry(id.clone()).or_default();
        let mut staged = 0;
        for c in self.detector.network().deviceless_under(element) {
            rows.entry(c).or_insert_with(|| ImpactRow {
                presumed: true,
                ..blank_impact(id, &self.book.customers[c as usize].id, started)
            });
            staged += 1;
        }
        staged
    }

    /// Applies `change` to the impact of each customer of `device` in `incident`. A new
    /// row is affected at `at`; the store keeps the earliest of that and what it holds.
    /// Returns how many impacts it staged.
    fn stage(
        &self,
        pending: &mut Pending,
        incident: u32,
        device: u32,
        at: Timestamp,
        change: impl Fn(&mut ImpactRow),
    ) -> usize {
        let Some(id) = self.store_id(incident) else { return 0 };
        let rows = pending.entry(id.clone()).or_default();
        let customers = self.detector.network().customers_of(device);
        for &c in customers {
            let row =
                rows.entry(c).or_insert_with(|| blank_impact(id, &self.book.customers[c as usize].id, at));
            change(row);
        }
        customers.len()
    }

    /// `flush` for the incidents `ids` only.
    async fn flush_some(&mut self, pending: &mut Pending, ids: &[String]) -> Result<(), EngineError> {
        let mut some: Pending = ids.iter().filter_map(|id| pending.remove_entry(id)).collect();
        self.flush(&mut some).await
    }

    /// Writes the staged impacts and queues what each is due, for every incident at once
    /// (one write of the impacts, one of the notices, one of the stages). An incident the
    /// store already has resolved is left alone: a replay must not reopen its customers.
    async fn flush(&mut self, pending: &mut Pending) -> Result<(), EngineError> {
        let timer = Instant::now();
        let mut open = Vec::new();
        let mut rows = Vec::new();
        for (id, staged) in std::mem::take(pending) {
            let incident = self.engine.incident(&id).await?;
            if incident.resolved_at.is_some() {
                continue;
            }
            rows.extend(staged.into_values());
            open.push((incident, self.engine.store.updates(&id).await?));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let read = timer.elapsed();
        let mut stored: HashMap<String, Vec<ImpactRow>> = HashMap::new();
        for row in self.engine.store.upsert_impacts(&mut rows).await? {
            stored.entry(row.incident_id.clone()).or_default().push(row);
        }
        let incidents = open
            .into_iter()
            .map(|(incident, timeline)| {
                let impacts = stored.remove(&incident.incident_id).unwrap_or_default();
                (incident, timeline, impacts)
            })
            .collect();
        let upserted = timer.elapsed();
        self.engine.notify_impacts_of(&self.book, incidents).await?;
        tracing::debug!(?read, ?upserted, took = ?timer.elapsed(), "flushed");
        Ok(())
    }

    /// `merged` became part of `into`: their customers move there with how far their
    /// notices went (so none is acknowledged twice), in one write, and each is closed as
    /// merged, without notices or credits of its own.
    async fn merge(&mut self, merged: &[u32], into: u32, at: Timestamp) -> Result<(), EngineError> {
        let Some(to) = self.store_id(into).cloned() else { return Ok(()) };
        if self.engine.incident(&to).await?.resolved_at.is_some() {
            // A replay of a merge recorded long ago: the wider incident's impacts are final.
            return Ok(());
        }
        let froms: Vec<String> = merged.iter().filter_map(|&m| self.store_id(m).cloned()).collect();
        let mut moved = Vec::new();
        for from in &froms {
            moved.extend(
                self.engine
                    .store
                    .impacts(from)
                    .await?
                    .into_iter()
                    .map(|row| ImpactRow { incident_id: to.clone(), ..row }),
            );
        }
        self.engine.store.upsert_impacts(&mut moved).await?;
        for from in &froms {
            self.engine.store.mark_merged(from, &to).await?;
            let update = NewUpdate {
                at,
                kind: UpdateKind::Merged.as_str().into(),
                state: IncidentState::Resolved.as_str().into(),
                etr: None,
                next_update_by: None,
                message: format!("Now part of {to}, a wider outage."),
                messages: ByLocale::new(),
                trigger_key: Some(format!("merged:{to}")),
            };
            ignore_resolved(self.engine.store.append_update(from, &update).await)?;
        }
        Ok(())
    }

    /// The incident now covers its extent (every element it has taken in), and its public
    /// cause names the wider area, unless an operator wrote one of their own (the stored
    /// cause is then no longer the one detection wrote for the narrower top).
    fn widening(&mut self, incident: u32, top: ElementIdx, extent: &[ElementIdx]) -> Option<Widening> {
        let id = self.store_id(incident)?.clone();
        let slot = self.tops.get_mut(incident as usize)?;
        let was = detected_cause(&self.book.topology.element(*slot).name);
        *slot = top;
        let mut element_ids: Vec<String> =
            extent.iter().map(|&e| self.book.topology.element(e).id.clone()).collect();
        element_ids.sort();
        Some(Widening {
            incident_id: id,
            element_ids,
            cause: detected_cause(&self.book.topology.element(top).name),
            was,
        })
    }

    /// Every customer's final impact in `incident`, resolved at `at`: their own downtime,
    /// and a follow-up for those whose device is still offline. Taken from the detector
    /// when the resolution is detected.
    fn final_impacts(&self, incident: u32, still_offline: &[u32], at: Timestamp) -> Vec<ImpactRow> {
        let Some(id) = self.store_id(incident) else { return Vec::new() };
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

    /// Writes every customer's final impact and resolves the incident; its fan-out then
    /// sends restored and still-down notices, and the credit step credits each customer
    /// for their own downtime.
    async fn resolve(
        &mut self,
        incident: u32,
        mut rows: Vec<ImpactRow>,
        at: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(id) = self.store_id(incident).cloned() else { return Ok(()) };
        if self.engine.incident(&id).await?.resolved_at.is_some() {
            return Ok(());
        }
        self.engine.store.upsert_impacts(&mut rows).await?;
        let follow_ups = rows.iter().filter(|r| r.follow_up).count();
        let update = NewUpdate {
            at,
            kind: UpdateKind::Resolved.as_str().into(),
            state: IncidentState::Resolved.as_str().into(),
            etr: None,
            next_update_by: None,
            message: String::new(),
            messages: ByLocale::new(),
            trigger_key: None,
        };
        ignore_resolved(self.engine.store.append_update(&id, &update).await)?;
        tracing::info!(incident = %id, customers = rows.len(), follow_ups, "detected incident resolved");
        Ok(())
    }
}

/// The source key of a detected incident.
pub fn source_key(element_id: &str, opened_at: Timestamp) -> String {
    format!("{TELEMETRY_SOURCE}{element_id}@{opened_at}")
}

const DETECTED_CAUSE_PREFIX: &str = "A fault in the network equipment serving your area (";

/// The public cause of a detected incident at the element named `name`.
fn detected_cause(name: &str) -> String {
    format!("{DETECTED_CAUSE_PREFIX}{name})")
}

fn blank_impact(incident_id: &str, customer_id: &str, affected_at: Timestamp) -> ImpactRow {
    ImpactRow {
        incident_id: incident_id.into(),
        customer_id: customer_id.into(),
        presumed: false,
        affected_at,
        back_at: None,
        follow_up: false,
        downtime: Vec::new(),
        notified: notified::NOTHING,
    }
}

/// An incident an operator resolved by hand meanwhile (or a replay of a resolution) is
/// not an error.
fn ignore_resolved(outcome: Result<amends_store::AppendOutcome, StoreError>) -> Result<(), EngineError> {
    match outcome {
        Ok(_) | Err(StoreError::AlreadyResolved(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
