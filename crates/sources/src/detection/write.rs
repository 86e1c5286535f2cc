//! The customers' side of detection, written by a task of its own.
//!
//! What detection decided for customers (each one's impact, their notices, merges moving
//! customers into the wider incident, resolutions with everyone's own downtime) comes
//! here as [`Write`]s, in detection's order, over a bounded channel. The writer applies
//! them in that order, a slice at a time (at most [`SLICE_IMPACTS_MAX`] impacts staged,
//! then written with their notices and stages in a few writes), while detection goes on
//! taking events and recording incidents: a storm's hundreds of thousands of
//! acknowledgements never hold up the next incident. Each write names store incidents, so
//! the writer needs nothing of the detector. Everything is keyed: a writer stopped
//! mid-slice (a crash, a lost lock, a rebuild) loses nothing a rebuild does not write
//! again the same way.

use super::Host;
use amends_core::id::IncidentId;
use amends_core::incident::{ByLocale, IncidentState, UpdateKind};
use amends_core::telemetry::Network;
use amends_core::topology::ElementIdx;
use amends_recovery::book::LoadedBook;
use amends_recovery::{Engine, EngineError};
use amends_store::{ImpactRow, NewUpdate, StoreError, notified};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// Impacts of one store incident waiting to be written, by customer index.
type Pending = BTreeMap<String, HashMap<u32, ImpactRow>>;

/// Most impacts one slice stages before it writes them (with their notices and stages),
/// in a few transactions: small enough that recording the next incident never waits
/// long behind it.
pub const SLICE_IMPACTS_MAX: usize = 1_000;
/// Writes detection may have decided and the writer not yet applied; over it, detection
/// waits (and takes no more events) until the writer catches up.
pub const WRITES_QUEUED_MAX: usize = 4_000_000;

/// One step of the customers' side of detection, in detection's order, naming store
/// incidents.
#[derive(Debug)]
pub(super) enum Write {
    /// A device joined (`back: None`) or came back in an incident: its customers' impacts.
    Device { incident: String, device: u32, at: Timestamp, back: Option<Timestamp> },
    /// Customers without a device at or below `element` are presumed out from `started`.
    Presume { incident: String, element: ElementIdx, started: Timestamp },
    /// `merged` became part of `into` at `at`.
    Merge { merged: Vec<String>, into: String, at: Timestamp },
    /// The incident resolved at `at`, with every customer's final impact.
    Resolve { incident: String, rows: Vec<ImpactRow>, at: Timestamp },
}

/// The way to the writer task; dropped, the task stops (mid-slice if it must).
pub(super) struct Writes {
    /// Each record pass's writes go as one message: a message per write would wake the
    /// writer hundreds of thousands of times in a storm.
    tx: mpsc::UnboundedSender<Vec<Write>>,
    /// Writes sent and not yet applied.
    queued: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Result<(), EngineError>>,
}

impl Drop for Writes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Writes {
    /// Starts a writer over this book.
    pub(super) fn start(host: &Host, book: Arc<LoadedBook>, network: Arc<Network>) -> Writes {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer =
            Writer { engine: host.engine.clone(), host: host.clone(), book, network, queued: queued.clone() };
        Writes { tx, queued, task: tokio::spawn(writer.run(rx)) }
    }

    /// Queues `writes`, in order. Fails if the writer has stopped.
    pub(super) fn send(&self, writes: Vec<Write>) -> Result<(), EngineError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.queued.fetch_add(writes.len(), Ordering::Relaxed);
        self.tx.send(writes).map_err(|_| EngineError::Join("the detection writer stopped".into()))
    }

    /// Whether fewer than [`WRITES_QUEUED_MAX`] writes wait: detection takes events only
    /// then (one record pass may go over it; the next waits).
    pub(super) fn has_room(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < WRITES_QUEUED_MAX
    }

    /// The writer's failure, once it has failed (it stops at its first).
    pub(super) async fn failure(&mut self) -> Option<EngineError> {
        if !self.task.is_finished() {
            return None;
        }
        Some(match (&mut self.task).await {
            Ok(Err(error)) => error,
            Ok(Ok(())) => EngineError::Join("the detection writer stopped".into()),
            Err(join) => EngineError::Join(join.to_string()),
        })
    }
}

/// Applies writes: needs the book and the network, never the detector.
struct Writer {
    engine: Arc<Engine>,
    host: Host,
    book: Arc<LoadedBook>,
    network: Arc<Network>,
    queued: Arc<AtomicUsize>,
}

impl Writer {
    /// Applies writes as they come, in order, a slice at a time, until the channel closes.
    async fn run(mut self, mut passes: mpsc::UnboundedReceiver<Vec<Write>>) -> Result<(), EngineError> {
        let mut writes: VecDeque<Write> = VecDeque::new();
        loop {
            if writes.is_empty() {
                let Some(pass) = passes.recv().await else { return Ok(()) };
                writes.extend(pass);
            }
            while let Ok(pass) = passes.try_recv() {
                writes.extend(pass);
            }
            let started = Instant::now();
            let mut pending = Pending::new();
            let (mut staged, mut applied) = (0, 0);
            while staged < SLICE_IMPACTS_MAX {
                let Some(write) = writes.pop_front() else { break };
                staged += self.apply(write, &mut pending).await?;
                applied += 1;
            }
            self.flush(&mut pending).await?;
            self.queued.fetch_sub(applied, Ordering::Relaxed);
            self.host.wake_worker();
            tracing::debug!(took = ?started.elapsed(), left = writes.len(), "writes applied");
        }
    }

    /// Stages one write, or applies it (a merge or a resolution, after writing what it
    /// depends on: the impacts staged for the incidents it closes). Returns the impacts
    /// staged.
    async fn apply(&mut self, write: Write, pending: &mut Pending) -> Result<usize, EngineError> {
        Ok(match write {
            Write::Device { incident, device, at, back } => {
                self.stage(pending, &incident, device, at, |row| row.back_at = back)
            }
            Write::Presume { incident, element, started } => {
                self.presume_deviceless(pending, &incident, element, started)
            }
            Write::Merge { merged, into, at } => {
                // Only what the merge moves must be written first: the merged incidents'
                // customers, told under the incident they joined.
                let moving: Vec<String> = merged.iter().chain([&into]).cloned().collect();
                self.flush_some(pending, &moving).await?;
                self.merge(&merged, &into, at).await?;
                0
            }
            Write::Resolve { incident, rows, at } => {
                self.flush_some(pending, std::slice::from_ref(&incident)).await?;
                self.resolve(&incident, rows, at).await?;
                0
            }
        })
    }

    /// Customers without a device at or below `element` are presumed out with it.
    /// Returns how many impacts it staged.
    fn presume_deviceless(
        &self,
        pending: &mut Pending,
        id: &str,
        element: ElementIdx,
        started: Timestamp,
    ) -> usize {
        let rows = pending.entry(id.to_string()).or_default();
        let mut staged = 0;
        for c in self.network.deviceless_under(element) {
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
        id: &str,
        device: u32,
        at: Timestamp,
        change: impl Fn(&mut ImpactRow),
    ) -> usize {
        let rows = pending.entry(id.to_string()).or_default();
        let customers = self.network.customers_of(device);
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
            open.push((incident, self.engine.store().updates(&id).await?));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let read = timer.elapsed();
        let mut stored: HashMap<IncidentId, Vec<ImpactRow>> = HashMap::new();
        for row in self.engine.store().upsert_impacts(&mut rows).await? {
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
    async fn merge(&mut self, froms: &[String], to: &str, at: Timestamp) -> Result<(), EngineError> {
        if self.engine.incident(to).await?.resolved_at.is_some() {
            // A replay of a merge recorded long ago: the wider incident's impacts are final.
            return Ok(());
        }
        let mut moved = Vec::new();
        for from in froms {
            moved.extend(
                self.engine
                    .store()
                    .impacts(from)
                    .await?
                    .into_iter()
                    .map(|row| ImpactRow { incident_id: to.to_string().into(), ..row }),
            );
        }
        self.engine.store().upsert_impacts(&mut moved).await?;
        for from in froms {
            self.engine.store().mark_merged(from, to).await?;
            let update = NewUpdate {
                at,
                kind: UpdateKind::Merged.as_str().into(),
                state: IncidentState::Resolved,
                etr: None,
                next_update_by: None,
                message: format!("Now part of {to}, a wider outage."),
                messages: ByLocale::new(),
                trigger_key: Some(format!("merged:{to}")),
            };
            ignore_resolved(self.engine.store().append_update(from, &update).await)?;
        }
        Ok(())
    }

    /// Writes every customer's final impact and resolves the incident; its fan-out then
    /// sends restored and still-down notices, and the credit step credits each customer
    /// for their own downtime.
    async fn resolve(
        &mut self,
        id: &str,
        mut rows: Vec<ImpactRow>,
        at: Timestamp,
    ) -> Result<(), EngineError> {
        if self.engine.incident(id).await?.resolved_at.is_some() {
            return Ok(());
        }
        self.engine.store().upsert_impacts(&mut rows).await?;
        let follow_ups = rows.iter().filter(|r| r.follow_up).count();
        let update = NewUpdate {
            at,
            kind: UpdateKind::Resolved.as_str().into(),
            state: IncidentState::Resolved,
            etr: None,
            next_update_by: None,
            message: String::new(),
            messages: ByLocale::new(),
            trigger_key: None,
        };
        ignore_resolved(self.engine.store().append_update(id, &update).await)?;
        tracing::info!(incident = %id, customers = rows.len(), follow_ups, "detected incident resolved");
        Ok(())
    }
}

pub(super) fn blank_impact(incident_id: &str, customer_id: &str, affected_at: Timestamp) -> ImpactRow {
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
