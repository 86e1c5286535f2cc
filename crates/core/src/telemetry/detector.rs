//! The detection engine: device events in, incidents and per-device downtime out.
//!
//! Events wait in an agenda ordered by their `at` until the clock is `reorder_window` past
//! them, then apply in time order, so arrival order within the window does not matter.
//! Hold-down expiries go on the same agenda, so "did the device come back first?" is
//! decided in event time, not arrival time. Per-element counts of confirmed-offline
//! devices are kept along each device's ancestry; an element crossing its threshold opens
//! or widens an incident at once, when the events of that instant (and kind) have applied.

use super::config::{DetectionConfig, Threshold};
use super::event::{DeviceEvent, DeviceState};
use super::network::{NONE, Network};
use crate::topology::{ElementIdx, Topology};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The agenda's time resolution, in microseconds: events in one bucket are sorted when the
/// bucket is released.
const BUCKET_MICROS: i64 = 100_000;
/// How far back (in buckets, an hour) `Agenda::push` extends the agenda for an item that is
/// earlier than its front but not yet due; an item further back is taken as late instead.
const BACKFILL_BUCKETS_MAX: i64 = 36_000;
/// How many unknown device ids the statistics keep as examples.
pub const UNKNOWN_SAMPLE_MAX: usize = 10;

/// What an incident-level change looks like to the caller, in event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// A new incident at `element`, which crossed its threshold at `at`; its outage began
    /// at `started_at` (the earliest outage of its devices then, within the correlation
    /// window). Its start may move back later, as confirmations of earlier reports join.
    /// `offline`: the element's devices confirmed offline at that instant.
    Opened { incident: u32, element: ElementIdx, at: Timestamp, started_at: Timestamp, offline: u32 },
    /// `element`, an ancestor of the incidents in `merged`, crossed its threshold: they are
    /// now part of `incident`, whose extent is then `extent` (as of this detection: the
    /// incident may be merged further by the time the caller looks).
    Merged { incident: u32, merged: Vec<u32>, element: ElementIdx, at: Timestamp, extent: Vec<ElementIdx> },
    /// The incident's top element came back but elements below it are still out: the
    /// incident goes on at those.
    Narrowed { incident: u32, elements: Vec<ElementIdx>, at: Timestamp },
    /// Every element of the incident is back. `still_offline`: its devices still offline.
    Resolved { incident: u32, still_offline: Vec<u32>, at: Timestamp },
    /// A device became part of an open incident (its customers are affected).
    Affected { incident: u32, device: u32, at: Timestamp },
    /// A device of an open incident came back.
    Restored { incident: u32, device: u32, at: Timestamp },
}

/// Why an event was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("device {0:?} is not in the book")]
    UnknownDevice(String),
    #[error("`at` {at} is more than {limit_seconds} s after the clock ({now})")]
    TooFarAhead { at: Timestamp, now: Timestamp, limit_seconds: i64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Events taken into the agenda.
    pub accepted: u64,
    /// The same device, state and instant as an event already applied.
    pub duplicates: u64,
    /// Older than an event of the same device already applied: it changes nothing.
    pub superseded: u64,
    /// Events for devices not in the book, and some of their ids.
    pub unknown_devices: u64,
    pub unknown_sample: BTreeSet<String>,
    /// Events stamped too far ahead of the clock.
    pub too_far_ahead: u64,
    /// Events that arrived after their reorder window had passed, applied on arrival.
    pub late: u64,
    /// Offline reports that became confirmed outages.
    pub confirmed: u64,
    /// Offline reports followed by the device's return within the hold-down.
    pub momentary: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing heard from the device yet: not proof of anything.
    NoData,
    Online,
    /// Reported offline, within the hold-down.
    Pending,
    /// A confirmed outage, since `Device::since`.
    Offline,
}

#[derive(Debug, Clone, Copy)]
struct Device {
    since: i64,
    last_at: i64,
    /// The incident that last took this device in (follow `merged_into`), or `NONE`.
    incident: u32,
    /// The one before it, or `NONE`: an incident can narrow away from a device, lose it to
    /// an incident opened below, and widen back over it, and it must not count it twice.
    previous_incident: u32,
    /// `since` when the device last joined an incident: that outage belongs to `incident`.
    joined_since: i64,
    /// The newest closed offline interval of this device in `Detector::spans`, or `NONE`.
    last_span: u32,
    phase: Phase,
    last_kind: Kind,
}

/// A closed confirmed-offline interval; `prev` chains a device's intervals, newest first.
#[derive(Debug, Clone, Copy)]
struct Span {
    prev: u32,
    start: i64,
    end: i64,
}

/// Items sort by time, then kind: a hold-down that expires at the very instant the device
/// reports back has expired (it did not come back first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Confirm,
    Online,
    Offline,
    LastGasp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    at: i64,
    kind: Kind,
    device: u32,
    /// For `Confirm`: the start of the offline report it confirms.
    since: i64,
}

/// Items by 100 ms bucket; the front bucket is the next to release.
#[derive(Debug)]
struct Agenda {
    first_bucket: i64,
    buckets: VecDeque<Vec<Item>>,
    spare: Vec<Vec<Item>>,
    /// Every item at or before this instant has been released: one arriving now is late.
    released: i64,
}

impl Default for Agenda {
    fn default() -> Self {
        Agenda { first_bucket: 0, buckets: VecDeque::new(), spare: Vec::new(), released: i64::MIN }
    }
}

impl Agenda {
    /// Files `item`, or gives it back when its instant was already released.
    fn push(&mut self, item: Item) -> Result<(), Item> {
        if item.at <= self.released {
            return Err(item);
        }
        let b = item.at.div_euclid(BUCKET_MICROS);
        if self.buckets.is_empty() {
            self.first_bucket = b;
        } else if b < self.first_bucket {
            // Earlier than the front, which jumped ahead while the agenda was empty, and not
            // released yet: it goes in front, so it applies in time order.
            if self.first_bucket - b > BACKFILL_BUCKETS_MAX {
                return Err(item);
            }
            while self.first_bucket > b {
                self.buckets.push_front(self.spare.pop().unwrap_or_default());
                self.first_bucket -= 1;
            }
        }
        let slot = (b - self.first_bucket) as usize;
        while self.buckets.len() <= slot {
            self.buckets.push_back(self.spare.pop().unwrap_or_default());
        }
        self.buckets[slot].push(item);
        Ok(())
    }

    /// The next items at or before `until`, sorted: the front bucket when it ends by then,
    /// else those of its items that are due.
    fn release(&mut self, until: i64) -> Option<Vec<Item>> {
        while let Some(front) = self.buckets.front_mut() {
            let start = self.first_bucket * BUCKET_MICROS;
            if start > until {
                break;
            }
            let last = start + BUCKET_MICROS - 1;
            if last > until {
                front.sort_unstable();
                let due = front.partition_point(|i| i.at <= until);
                self.released = self.released.max(until);
                if due == 0 {
                    return None;
                }
                let mut items = self.spare.pop().unwrap_or_default();
                items.extend(front.drain(..due));
                return Some(items);
            }
            let mut items = self.buckets.pop_front().expect("the front bucket");
            self.first_bucket += 1;
            self.released = self.released.max(last);
            if items.is_empty() {
                self.spare.push(items);
                continue;
            }
            if !items.is_sorted() {
                items.sort_unstable();
            }
            return Some(items);
        }
        self.released = self.released.max(until);
        None
    }

    fn recycle(&mut self, mut items: Vec<Item>) {
        items.clear();
        self.spare.push(items);
    }

    fn is_empty(&self) -> bool {
        self.buckets.iter().all(Vec::is_empty)
    }
}

/// An incident as detection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedIncident {
    /// The instant its first element crossed its threshold, and that element: with it, the
    /// incident's identity, read off the events alone (nothing later moves either).
    pub opened_at: Timestamp,
    pub opened_element: ElementIdx,
    /// The earliest outage among its devices within the correlation window.
    pub started_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// The elements that are out now and have no ancestor that is out.
    pub elements: Vec<ElementIdx>,
    /// Every element the incident has covered, none below another.
    pub extent: Vec<ElementIdx>,
    /// Set when an ancestor's incident took this one in: its elements, extent and devices
    /// moved there, so its customers and downtime are counted once, in that incident.
    pub merged_into: Option<u32>,
    /// Devices that were offline in it, in the order they joined.
    pub devices: Vec<u32>,
}

/// One customer's time without service in one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downtime {
    pub customer: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Presumed: the customer has no telemetry device, so the incident's span is used.
    pub presumed: bool,
}

pub struct Detector {
    /// Shared: a server checks events against it before they are logged.
    net: Arc<Network>,
    config: DetectionConfig,
    thresholds: Vec<Threshold>,
    /// Per element: index into `thresholds`.
    threshold_of: Vec<u16>,
    offline_below: Vec<u32>,
    out: Vec<bool>,
    /// The open incident whose element this is, for elements that are out with no out
    /// ancestor; else `NONE`.
    incident_at: Vec<u32>,
    /// Those elements by pre-order number, to find the ones below a given element.
    tops: BTreeMap<u32, ElementIdx>,
    devices: Vec<Device>,
    spans: Vec<Span>,
    incidents: Vec<DetectedIncident>,
    /// Per incident: the customers of its devices, kept as devices join and merge, so that
    /// `customers_affected` is not a pass over every device.
    customers_in: Vec<u64>,
    agenda: Agenda,
    /// Items whose bucket was already released when they arrived; applied on the next
    /// `advance`, in arrival order.
    late: Vec<Item>,
    /// Devices confirmed offline (`true`) or back (`false`) at `.1` whose elements have not
    /// been looked at yet; see `settle`.
    settling: Vec<(u32, i64, bool)>,
    /// One bit per device, all clear between uses: the devices of an incident, in `widen`.
    seen: Vec<u64>,
    now: i64,
    stats: Stats,
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn instant(m: i64) -> Timestamp {
    Timestamp::from_microsecond(m).expect("instants inside the agenda come from valid timestamps")
}

impl Detector {
    pub fn new(topology: &Topology, net: impl Into<Arc<Network>>, config: DetectionConfig) -> Detector {
        let net = net.into();
        let mut thresholds = vec![config.default_threshold];
        let mut by_kind: Vec<(&str, u16)> = Vec::new();
        let threshold_of = topology
            .elements()
            .iter()
            .map(|e| match config.thresholds.get(&e.kind) {
                None => 0,
                Some(t) => match by_kind.iter().find(|k| k.0 == e.kind) {
                    Some(k) => k.1,
                    None => {
                        thresholds.push(*t);
                        by_kind.push((&e.kind, (thresholds.len() - 1) as u16));
                        (thresholds.len() - 1) as u16
                    }
                },
            })
            .collect();
        let n = topology.len();
        let device = Device {
            since: 0,
            last_at: i64::MIN,
            incident: NONE,
            previous_incident: NONE,
            joined_since: i64::MIN,
            last_span: NONE,
            phase: Phase::NoData,
            last_kind: Kind::Confirm,
        };
        Detector {
            devices: vec![device; net.device_count()],
            net,
            config,
            thresholds,
            threshold_of,
            offline_below: vec![0; n],
            out: vec![false; n],
            incident_at: vec![NONE; n],
            tops: BTreeMap::new(),
            spans: Vec::new(),
            incidents: Vec::new(),
            customers_in: Vec::new(),
            agenda: Agenda::default(),
            late: Vec::new(),
            settling: Vec::new(),
            seen: Vec::new(),
            now: i64::MIN,
            stats: Stats::default(),
        }
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn incidents(&self) -> &[DetectedIncident] {
        &self.incidents
    }

    pub fn incident(&self, id: u32) -> &DetectedIncident {
        &self.incidents[id as usize]
    }

    /// Confirmed-offline devices at or below `element`, and all its devices.
    pub fn element_counts(&self, element: ElementIdx) -> (u32, u32) {
        (self.offline_below[element as usize], self.net.devices_below[element as usize])
    }

    /// The clock as detection last saw it.
    pub fn now(&self) -> Option<Timestamp> {
        (self.now != i64::MIN).then(|| instant(self.now))
    }

    /// Takes one event into the agenda. It applies once the clock passes its `at` plus the
    /// reorder window (see `advance`). `now` bounds how far ahead an event may be stamped.
    pub fn offer(&mut self, event: &DeviceEvent, now: Timestamp) -> Result<(), Refusal> {
        let device = match admit(&self.net, &self.config, event, now) {
            Ok(device) => device,
            Err(refusal) => {
                match &refusal {
                    Refusal::UnknownDevice(id) => {
                        self.stats.unknown_devices += 1;
                        if self.stats.unknown_sample.len() < UNKNOWN_SAMPLE_MAX {
                            self.stats.unknown_sample.insert(id.clone());
                        }
                    }
                    Refusal::TooFarAhead { .. } => self.stats.too_far_ahead += 1,
                }
                return Err(refusal);
            }
        };
        let at = micros(event.at);
        let kind = match (event.state, event.last_gasp) {
            (DeviceState::Online, _) => Kind::Online,
            (DeviceState::Offline, false) => Kind::Offline,
            (DeviceState::Offline, true) => Kind::LastGasp,
        };
        self.stats.accepted += 1;
        if let Err(item) = self.agenda.push(Item { at, kind, device, since: at }) {
            self.stats.late += 1;
            self.late.push(item);
        }
        Ok(())
    }

    /// Moves the clock to `now` and applies everything it releases: events at least the
    /// reorder window old, and hold-downs that expired. Detections are appended to `out`.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<Detection>) {
        self.now = self.now.max(micros(now));
        let window = self.config.reorder_window.as_micros() as i64;
        self.release(self.now.saturating_sub(window), out);
    }

    /// Applies every event taken so far, without waiting for the reorder window: the end of
    /// a replayed file. Hold-downs that have not expired by the clock stay pending.
    pub fn drain(&mut self, out: &mut Vec<Detection>) {
        self.release(self.now, out);
    }

    fn release(&mut self, until: i64, out: &mut Vec<Detection>) {
        let late = std::mem::take(&mut self.late);
        self.apply_all(&late, out);
        while let Some(items) = self.agenda.release(until) {
            self.apply_all(&items, out);
            self.agenda.recycle(items);
            // Hold-downs shorter than a bucket, scheduled while this bucket ran.
            let late = std::mem::take(&mut self.late);
            self.apply_all(&late, out);
        }
    }

    /// Applies `items` in order. The items of one instant and kind apply together: every
    /// device's state and the counts first, then what the elements make of them (`settle`),
    /// so a node whose devices all confirm at one instant opens one incident at the node,
    /// not one per amplifier merged an instant later, and devices back at one instant are
    /// all restored before their incident resolves.
    fn apply_all(&mut self, items: &[Item], out: &mut Vec<Detection>) {
        for (i, &item) in items.iter().enumerate() {
            self.apply(item, out);
            if items.get(i + 1).is_none_or(|next| (next.at, next.kind) != (item.at, item.kind)) {
                self.settle(out);
            }
        }
    }

    /// Devices confirmed offline that no open incident covers: isolated faults.
    pub fn isolated(&self) -> Vec<u32> {
        (0..self.devices.len() as u32)
            .filter(|&d| {
                let dev = &self.devices[d as usize];
                dev.phase == Phase::Offline && self.open_incident_of(dev).is_none()
            })
            .collect()
    }

    /// Devices reported offline whose hold-down has not run out.
    pub fn pending(&self) -> usize {
        self.devices.iter().filter(|d| d.phase == Phase::Pending).count()
    }

    /// Devices never heard from.
    pub fn no_data(&self) -> usize {
        self.devices.iter().filter(|d| d.phase == Phase::NoData).count()
    }

    /// Every customer's time without service in `incident`: their device's confirmed
    /// offline intervals within the incident's span (up to the clock while it is open),
    /// and the whole span for customers without a device.
    pub fn downtime(&self, incident: u32) -> Vec<Downtime> {
        let inc = &self.incidents[incident as usize];
        let from = micros(inc.started_at);
        let to = inc.resolved_at.map(micros).unwrap_or(self.now);
        let mut rows = Vec::new();
        let mut push = |customers: &[u32], start: i64, end: i64, presumed: bool| {
            let (start, end) = (start.max(from), end.min(to));
            if start < end {
                for &customer in customers {
                    rows.push(Downtime { customer, start: instant(start), end: instant(end), presumed });
                }
            }
        };
        for &d in &inc.devices {
            let dev = &self.devices[d as usize];
            let customers = self.net.customers_of(d);
            if dev.phase == Phase::Offline {
                push(customers, dev.since, i64::MAX, false);
            }
            let mut s = dev.last_span;
            while s != NONE {
                let span = self.spans[s as usize];
                if span.end <= from {
                    break;
                }
                push(customers, span.start, span.end, false);
                s = span.prev;
            }
        }
        for &e in &inc.extent {
            for c in self.net.deviceless_under(e) {
                push(&[c], from, to, true);
            }
        }
        rows.sort_unstable_by_key(|r| (r.customer, r.start));
        rows
    }

    /// Customers affected by `incident`: those of its devices, and those without a device
    /// at or below its elements.
    pub fn customers_affected(&self, incident: u32) -> u64 {
        let inc = &self.incidents[incident as usize];
        let deviceless: u32 = inc.extent.iter().map(|&e| self.net.deviceless_below[e as usize]).sum();
        self.customers_in[incident as usize] + u64::from(deviceless)
    }

    fn find(&self, mut incident: u32) -> u32 {
        while let Some(next) = self.incidents[incident as usize].merged_into {
            incident = next;
        }
        incident
    }

    /// Whether the device's current outage already belongs to another incident (one that
    /// resolved with it still offline): that time was counted there, so it must not move
    /// the start of `incident` back over it. A new storm after a resolution is a new outage.
    fn counted_elsewhere(&self, dev: &Device, incident: u32) -> bool {
        dev.incident != NONE && dev.joined_since == dev.since && self.find(dev.incident) != incident
    }

    fn open_incident_of(&self, dev: &Device) -> Option<u32> {
        if dev.incident == NONE {
            return None;
        }
        let i = self.find(dev.incident);
        self.incidents[i as usize].resolved_at.is_none().then_some(i)
    }

    fn apply(&mut self, item: Item, out: &mut Vec<Detection>) {
        let d = item.device as usize;
        if item.kind == Kind::Confirm {
            let dev = self.devices[d];
            if dev.phase == Phase::Pending && dev.since == item.since {
                self.confirm(item.device, item.at);
            }
            return;
        }
        let dev = &mut self.devices[d];
        if item.at < dev.last_at {
            self.stats.superseded += 1;
            return;
        }
        if item.at == dev.last_at && item.kind == dev.last_kind {
            self.stats.duplicates += 1;
            return;
        }
        dev.last_at = item.at;
        dev.last_kind = item.kind;
        match (item.kind, dev.phase) {
            (Kind::Online, Phase::NoData | Phase::Online) => dev.phase = Phase::Online,
            (Kind::Online, Phase::Pending) => {
                dev.phase = Phase::Online;
                self.stats.momentary += 1;
            }
            (Kind::Online, Phase::Offline) => self.restore(item.device, item.at, out),
            (Kind::Offline | Kind::LastGasp, Phase::NoData | Phase::Online) => {
                dev.phase = Phase::Pending;
                dev.since = item.at;
                let hold = self.config.hold_down.as_micros() as i64;
                if item.kind == Kind::LastGasp || hold <= 0 {
                    self.confirm(item.device, item.at);
                } else {
                    let due = Item {
                        at: item.at.saturating_add(hold),
                        kind: Kind::Confirm,
                        device: item.device,
                        since: item.at,
                    };
                    if let Err(due) = self.agenda.push(due) {
                        self.late.push(due);
                    }
                }
            }
            (Kind::LastGasp, Phase::Pending) => self.confirm(item.device, item.at),
            (Kind::Offline | Kind::LastGasp, Phase::Pending | Phase::Offline) => {}
            (Kind::Confirm, _) => unreachable!("handled above"),
        }
    }

    /// The device's outage is confirmed at `at` (it began at its `since`): counted along its
    /// ancestry now, rolled up in `settle`.
    fn confirm(&mut self, device: u32, at: i64) {
        self.stats.confirmed += 1;
        self.devices[device as usize].phase = Phase::Offline;
        let mut e = self.net.device_element[device as usize];
        while e != NONE {
            self.offline_below[e as usize] += 1;
            e = self.net.parent[e as usize];
        }
        self.settling.push((device, at, true));
    }

    /// Elements cross their thresholds or come back after the devices of one instant and
    /// kind changed: incidents open, widen, take devices in, narrow and resolve.
    fn settle(&mut self, out: &mut Vec<Detection>) {
        if self.settling.is_empty() {
            return;
        }
        // Taken out for the loops below and put back empty after, so the buffer is reused:
        // this runs once per event in a storm.
        let mut settling = std::mem::take(&mut self.settling);
        // Every element's state first, from the counts after all of them.
        let mut back: Vec<(u32, ElementIdx, i64)> = Vec::new();
        for &(device, at, offline) in &settling {
            let mut e = self.net.device_element[device as usize];
            while e != NONE {
                let i = e as usize;
                let threshold = &self.thresholds[self.threshold_of[i] as usize];
                let (offline_below, total) = (self.offline_below[i], self.net.devices_below[i]);
                if offline && !self.out[i] && threshold.is_out(offline_below, total) {
                    self.out[i] = true;
                } else if !offline && self.out[i] && threshold.is_back(offline_below, total) {
                    self.out[i] = false;
                    if self.incident_at[i] != NONE {
                        back.push((self.incident_at[i], e, at));
                    }
                }
                e = self.net.parent[i];
            }
        }
        // Incidents whose elements came back, each once for all of them.
        back.sort_unstable();
        for group in back.chunk_by(|a, b| a.0 == b.0) {
            let elements: Vec<ElementIdx> = group.iter().map(|b| b.1).collect();
            self.narrow(group[0].0, &elements, group[0].2, out);
        }
        // Each device confirmed offline goes to the incident of the highest element out
        // above it, which opens (or widens) at the first of them.
        for &(device, at, offline) in &settling {
            if !offline {
                continue;
            }
            let mut highest_out = NONE;
            let mut e = self.net.device_element[device as usize];
            while e != NONE {
                if self.out[e as usize] {
                    highest_out = e;
                }
                e = self.net.parent[e as usize];
            }
            if highest_out == NONE {
                continue; // an isolated fault, for now
            }
            match self.incident_at[highest_out as usize] {
                NONE => self.widen(highest_out, at, out),
                incident => self.take_in(incident, device, at, out),
            }
        }
        settling.clear();
        if self.settling.is_empty() {
            self.settling = settling;
        }
    }

    /// `element` is out and nothing above it is: it becomes an incident's element, merging
    /// the incidents below it, and its offline devices join.
    fn widen(&mut self, element: ElementIdx, at: i64, out: &mut Vec<Detection>) {
        let sub = self.net.subtree(element);
        let below: Vec<(u32, ElementIdx)> =
            self.tops.range(sub.start + 1..sub.end).map(|(&p, &e)| (p, e)).collect();
        let mut merged: Vec<u32> = below.iter().map(|&(_, e)| self.incident_at[e as usize]).collect();
        merged.sort_unstable();
        merged.dedup();
        let incident = match merged.first() {
            Some(&first) => first,
            None => {
                self.incidents.push(DetectedIncident {
                    opened_at: instant(at),
                    opened_element: element,
                    started_at: instant(at),
                    resolved_at: None,
                    elements: Vec::new(),
                    extent: Vec::new(),
                    merged_into: None,
                    devices: Vec::new(),
                });
                self.customers_in.push(0);
                (self.incidents.len() - 1) as u32
            }
        };
        // A device can be in two of them: it joined one, then another while both were open.
        if merged.len() > 1 {
            self.seen.resize(self.devices.len().div_ceil(64), 0);
            for &d in &self.incidents[incident as usize].devices {
                self.seen[d as usize / 64] |= 1 << (d % 64);
            }
        }
        for &m in &merged[1.min(merged.len())..] {
            let mut other = std::mem::take(&mut self.incidents[m as usize]);
            other.merged_into = Some(incident);
            let target = &mut self.incidents[incident as usize];
            target.started_at = target.started_at.min(other.started_at);
            let seen = &mut self.seen;
            target.devices.extend(other.devices.drain(..).filter(|&d| {
                let (word, bit) = (&mut seen[d as usize / 64], 1 << (d % 64));
                let new = *word & bit == 0;
                *word |= bit;
                new
            }));
            target.elements.extend(other.elements.iter().copied());
            target.extent.extend(other.extent.iter().copied());
            for &e in &other.elements {
                self.incident_at[e as usize] = incident;
            }
            self.incidents[m as usize] =
                DetectedIncident { elements: Vec::new(), devices: Vec::new(), extent: Vec::new(), ..other };
        }
        if merged.len() > 1 {
            for &d in &self.incidents[incident as usize].devices {
                self.seen[d as usize / 64] = 0;
            }
            let customers = self.incidents[incident as usize]
                .devices
                .iter()
                .map(|&d| self.net.customers_of(d).len() as u64)
                .sum();
            self.customers_in[incident as usize] = customers;
            for &m in &merged[1..] {
                self.customers_in[m as usize] = 0;
            }
        }
        // After the merges, which point the merged incidents' elements at the survivor.
        for (p, e) in below {
            self.tops.remove(&p);
            self.incident_at[e as usize] = NONE;
        }
        let net = &self.net;
        let target = &mut self.incidents[incident as usize];
        target.elements.retain(|&e| !net.is_at_or_below(e, element));
        target.elements.push(element);
        target.extent.push(element);
        outermost(net, &mut target.extent);
        self.incident_at[element as usize] = incident;
        self.tops.insert(net.pre[element as usize], element);
        let opened = out.len();
        if merged.is_empty() {
            let offline = self.offline_below[element as usize];
            out.push(Detection::Opened {
                incident,
                element,
                at: instant(at),
                started_at: instant(at),
                offline,
            });
        } else {
            let extent = target.extent.clone();
            out.push(Detection::Merged {
                incident,
                merged: merged[1..].to_vec(),
                element,
                at: instant(at),
                extent,
            });
        }
        let earliest = at.saturating_sub(self.config.correlation_window.as_micros() as i64);
        let mut started = micros(self.incidents[incident as usize].started_at);
        for d in self.net.devices_under(element) {
            let dev = self.devices[d as usize];
            if dev.phase == Phase::Offline {
                if dev.since >= earliest && !self.counted_elsewhere(&dev, incident) {
                    started = started.min(dev.since);
                }
                self.join(incident, d, at, out);
            }
        }
        self.incidents[incident as usize].started_at = instant(started);
        if let Some(Detection::Opened { started_at, .. }) = out.get_mut(opened) {
            *started_at = instant(started);
        }
    }

    /// A device confirmed offline under `incident`'s elements after the incident opened.
    fn take_in(&mut self, incident: u32, device: u32, at: i64, out: &mut Vec<Detection>) {
        // Its outage may have begun before the incident's start (its hold-down was still
        // running when the element crossed): the start moves back, within the window.
        let dev = self.devices[device as usize];
        let since = dev.since;
        let window = self.config.correlation_window.as_micros() as i64;
        let elsewhere = self.counted_elsewhere(&dev, incident);
        let inc = &mut self.incidents[incident as usize];
        if !elsewhere
            && since >= micros(inc.opened_at).saturating_sub(window)
            && since < micros(inc.started_at)
        {
            inc.started_at = instant(since);
        }
        self.join(incident, device, at, out);
    }

    /// `device`, confirmed offline, is part of `incident` from `at`: affected, unless it
    /// already was (back offline within the same incident, or back in it after another).
    fn join(&mut self, incident: u32, device: u32, at: i64, out: &mut Vec<Detection>) {
        let dev = self.devices[device as usize];
        // O(1): this runs for every device an incident takes in, a million in a storm, so it
        // looks at the device's last two incidents rather than through the incident's list.
        let was_in = |i: u32| i != NONE && self.find(i) == incident;
        let member = was_in(dev.incident) || was_in(dev.previous_incident);
        if !member {
            self.devices[device as usize].previous_incident = dev.incident;
        }
        self.devices[device as usize].incident = incident;
        self.devices[device as usize].joined_since = dev.since;
        if !member {
            self.incidents[incident as usize].devices.push(device);
            self.customers_in[incident as usize] += self.net.customers_of(device).len() as u64;
            out.push(Detection::Affected { incident, device, at: instant(at) });
        }
    }

    /// A confirmed-offline device reports back at `at`: counted along its ancestry now,
    /// rolled down in `settle`.
    fn restore(&mut self, device: u32, at: i64, out: &mut Vec<Detection>) {
        let d = device as usize;
        let dev = self.devices[d];
        self.spans.push(Span { prev: dev.last_span, start: dev.since, end: at });
        self.devices[d].last_span = (self.spans.len() - 1) as u32;
        self.devices[d].phase = Phase::Online;
        if let Some(incident) = self.open_incident_of(&dev) {
            out.push(Detection::Restored { incident, device, at: instant(at) });
        }
        let mut e = self.net.device_element[d];
        while e != NONE {
            self.offline_below[e as usize] -= 1;
            e = self.net.parent[e as usize];
        }
        self.settling.push((device, at, false));
    }

    /// `back`, elements of `incident`, are back: the incident goes on at the elements below
    /// them that are still out, or is resolved when it has none left.
    fn narrow(&mut self, incident: u32, back: &[ElementIdx], at: i64, out: &mut Vec<Detection>) {
        let mut still_out = Vec::new();
        for &element in back {
            self.incident_at[element as usize] = NONE;
            self.tops.remove(&self.net.pre[element as usize]);
            let sub = self.net.subtree(element);
            let mut p = sub.start + 1;
            while p < sub.end {
                let e = self.net.element_at_pre[p as usize];
                if self.out[e as usize] {
                    still_out.push(e);
                    p = self.net.subtree_end[e as usize];
                } else {
                    p += 1;
                }
            }
        }
        for &e in &still_out {
            self.incident_at[e as usize] = incident;
            self.tops.insert(self.net.pre[e as usize], e);
        }
        let inc = &mut self.incidents[incident as usize];
        inc.elements.retain(|e| !back.contains(e));
        inc.elements.extend(still_out.iter().copied());
        if !inc.elements.is_empty() {
            let elements = inc.elements.clone();
            out.push(Detection::Narrowed { incident, elements, at: instant(at) });
            return;
        }
        inc.resolved_at = Some(instant(at));
        let still_offline = self.incidents[incident as usize]
            .devices
            .iter()
            .copied()
            .filter(|&d| {
                let dev = &self.devices[d as usize];
                dev.phase == Phase::Offline && self.find(dev.incident) == incident
            })
            .collect();
        out.push(Detection::Resolved { incident, still_offline, at: instant(at) });
    }
}

/// Keeps the elements of `elements` that no other one is below, in pre-order.
/// Whether `event` may be taken when the clock reads `now`: its device is in `net` and it
/// is not stamped more than the future limit ahead. Returns the device's index. A server
/// checks events with it before logging them, whichever server detects.
pub fn admit(
    net: &Network,
    config: &DetectionConfig,
    event: &DeviceEvent,
    now: Timestamp,
) -> Result<u32, Refusal> {
    let Some(device) = net.device_index(&event.device_id) else {
        return Err(Refusal::UnknownDevice(event.device_id.clone()));
    };
    if micros(event.at) > micros(now).saturating_add(config.future_limit.as_micros() as i64) {
        return Err(Refusal::TooFarAhead { at: event.at, now, limit_seconds: config.future_limit.as_secs() });
    }
    Ok(device)
}

fn outermost(net: &Network, elements: &mut Vec<ElementIdx>) {
    elements.sort_unstable_by_key(|&e| net.pre[e as usize]);
    elements.dedup();
    let mut kept = 0;
    for i in 0..elements.len() {
        // In pre-order, an element below another comes after it, before anything outside it.
        if kept == 0 || !net.is_at_or_below(elements[i], elements[kept - 1]) {
            elements[kept] = elements[i];
            kept += 1;
        }
    }
    elements.truncate(kept);
}

impl Default for DetectedIncident {
    fn default() -> Self {
        DetectedIncident {
            opened_at: Timestamp::UNIX_EPOCH,
            opened_element: NONE,
            started_at: Timestamp::UNIX_EPOCH,
            resolved_at: None,
            elements: Vec::new(),
            extent: Vec::new(),
            merged_into: None,
            devices: Vec::new(),
        }
    }
}

impl Detector {
    /// Whether anything is still waiting in the agenda (events or hold-downs).
    pub fn is_idle(&self) -> bool {
        self.agenda.is_empty() && self.late.is_empty()
    }
}
