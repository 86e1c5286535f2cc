//! Detection end to end: a small plant (region > hub > nodes > amplifiers, one device per
//! customer unless said otherwise), events written as a device and a time of one fixed day,
//! and replays driven the way `amends replay` drives the engine: each event offered at its
//! own `at`, the clock following the events, a drain at the end.
//!
//! Detections are compared as text lines (`"10:01:00 opened #0 N1"`), so a failure shows
//! the whole story.

use super::*;
use crate::topology::{Element, ElementIdx, Topology};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const DAY: &str = "2026-03-01";

/// `"10:00:00"` or `"09:59:59.999"` on the fixed day.
fn t(hms: &str) -> Timestamp {
    format!("{DAY}T{hms}Z").parse().unwrap_or_else(|e| panic!("{hms}: {e}"))
}

/// The time of day of `at`, as `t` reads it.
fn clock(at: Timestamp) -> String {
    let s = at.to_string();
    match s.strip_prefix(&format!("{DAY}T")).and_then(|s| s.strip_suffix('Z')) {
        Some(hms) => hms.to_string(),
        None => s,
    }
}

// ---------------------------------------------------------------------------------------
// The plant
// ---------------------------------------------------------------------------------------

/// A topology and its customers: customer `i` is the `i`-th entry.
struct Plant {
    topology: Topology,
    /// Element, device, label (the device id, or a name for a customer without a device).
    customers: Vec<(ElementIdx, Option<String>, String)>,
}

#[derive(Default)]
struct PlantBuilder {
    elements: Vec<Element>,
    customers: Vec<(String, Option<String>, String)>,
}

impl PlantBuilder {
    fn el(mut self, id: &str, parent: Option<&str>, kind: &str) -> Self {
        self.elements.push(Element {
            id: id.into(),
            parent_id: parent.map(Into::into),
            kind: kind.into(),
            name: id.into(),
        });
        self
    }

    /// `n` customers on `element`, each with a device `<element>.1` ... `<element>.n`.
    fn devices(mut self, element: &str, n: usize) -> Self {
        for k in 1..=n {
            let d = format!("{element}.{k}");
            self.customers.push((element.into(), Some(d.clone()), d));
        }
        self
    }

    /// A customer on `element` without a telemetry device.
    fn deviceless(mut self, element: &str, label: &str) -> Self {
        self.customers.push((element.into(), None, label.into()));
        self
    }

    fn build(self) -> Plant {
        let topology = Topology::build(self.elements).expect("a valid tree");
        let customers = self
            .customers
            .into_iter()
            .map(|(e, d, l)| (topology.index_of(&e).unwrap_or_else(|| panic!("no element {e}")), d, l))
            .collect();
        Plant { topology, customers }
    }
}

/// R (region) > H1 (hub) > N1, N2 (nodes); A1..A3 under N1, A4..A6 under N2 (amplifiers),
/// four customers with a device on each amplifier (`A1.1` ... `A6.4`): 12 per node, 24 in all.
fn standard() -> PlantBuilder {
    let mut b = PlantBuilder::default().el("R", None, "region").el("H1", Some("R"), "hub");
    for (node, amps) in [("N1", ["A1", "A2", "A3"]), ("N2", ["A4", "A5", "A6"])] {
        b = b.el(node, Some("H1"), "node");
        for a in amps {
            b = b.el(a, Some(node), "amplifier").devices(a, 4);
        }
    }
    b
}

impl Plant {
    fn network(&self) -> Network {
        Network::build(
            &self.topology,
            self.customers.iter().enumerate().map(|(i, (element, device, _))| Attachment {
                customer: i as u32,
                element: *element,
                device: device.as_deref(),
            }),
        )
    }

    fn detector(&self, config: DetectionConfig) -> Detector {
        Detector::new(&self.topology, self.network(), config)
    }

    fn el(&self, id: &str) -> ElementIdx {
        self.topology.index_of(id).unwrap_or_else(|| panic!("no element {id}"))
    }

    fn label(&self, customer: u32) -> &str {
        &self.customers[customer as usize].2
    }
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

fn event(id: &str, state: DeviceState, at: Timestamp, last_gasp: bool) -> DeviceEvent {
    DeviceEvent { device_id: id.into(), state, at, last_gasp }
}

fn off(id: &str, at: &str) -> DeviceEvent {
    event(id, DeviceState::Offline, t(at), false)
}

fn on(id: &str, at: &str) -> DeviceEvent {
    event(id, DeviceState::Online, t(at), false)
}

fn gasp(id: &str, at: &str) -> DeviceEvent {
    event(id, DeviceState::Offline, t(at), true)
}

/// Device ids `<element>.1` ... `<element>.n` for each element.
fn devs(elements: &[&str], n: usize) -> Vec<String> {
    elements.iter().flat_map(|e| (1..=n).map(move |k| format!("{e}.{k}"))).collect()
}

/// The same kind of event for every device in `ids`, at one instant.
fn all(ids: &[String], f: fn(&str, &str) -> DeviceEvent, at: &str) -> Vec<DeviceEvent> {
    ids.iter().map(|id| f(id, at)).collect()
}

fn each(prefix: &str, ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| format!("{prefix} {id}")).collect()
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

/// A detector fed the way a replay feeds it, keeping what it detected until `take`.
struct Run<'p> {
    plant: &'p Plant,
    det: Detector,
    out: Vec<Detection>,
}

impl<'p> Run<'p> {
    fn new(plant: &'p Plant) -> Self {
        Self::with(plant, DetectionConfig::default())
    }

    fn with(plant: &'p Plant, config: DetectionConfig) -> Self {
        Run { plant, det: plant.detector(config), out: Vec::new() }
    }

    /// Each event in `at` order: offered at its own `at`, then the clock moves there.
    fn feed(&mut self, events: impl IntoIterator<Item = DeviceEvent>) {
        let mut events: Vec<DeviceEvent> = events.into_iter().collect();
        events.sort_by_key(|e| e.at);
        for e in &events {
            self.det.offer(e, e.at).unwrap_or_else(|r| panic!("{e}: {r}"));
            self.det.advance(e.at, &mut self.out);
        }
    }

    /// Moves the clock to `hms` (hold-downs expire, the reorder window passes).
    fn at(&mut self, hms: &str) {
        self.det.advance(t(hms), &mut self.out);
    }

    fn drain(&mut self) {
        self.det.drain(&mut self.out);
    }

    /// What was detected since the last `take`, as text.
    fn take(&mut self) -> Vec<String> {
        let shown = show(self.plant, &self.det, &self.out);
        self.out.clear();
        shown
    }

    fn downtime(&self, incident: u32) -> Vec<String> {
        show_downtime(self.plant, &self.det, incident)
    }

    fn dev(&self, id: &str) -> u32 {
        self.det.network().device_index(id).unwrap_or_else(|| panic!("no device {id}"))
    }

    fn ids(&self, devices: &[u32]) -> Vec<String> {
        devices.iter().map(|&d| self.det.network().device_id(d).to_string()).collect()
    }
}

/// A replay: each event in `at` order offered at its `at`, the clock following, then a drain.
fn replay(plant: &Plant, config: DetectionConfig, events: &[DeviceEvent]) -> (Vec<Detection>, Detector) {
    let mut run = Run::with(plant, config);
    run.feed(events.iter().cloned());
    run.drain();
    (run.out, run.det)
}

fn show(plant: &Plant, det: &Detector, detections: &[Detection]) -> Vec<String> {
    let el = |e: ElementIdx| plant.topology.element(e).id.clone();
    let els = |es: &[ElementIdx]| es.iter().map(|&e| el(e)).collect::<Vec<_>>().join(" ");
    let dev = |d: u32| det.network().device_id(d).to_string();
    let ids = |ds: &[u32]| ds.iter().map(|&d| dev(d)).collect::<Vec<_>>().join(" ");
    detections
        .iter()
        .map(|d| match d {
            Detection::Opened { incident, element, at, .. } => {
                format!("{} opened #{incident} {}", clock(*at), el(*element))
            }
            Detection::Merged { incident, merged, element, at, .. } => {
                format!("{} merged #{incident} {merged:?} {}", clock(*at), el(*element))
            }
            Detection::Narrowed { incident, elements, at } => {
                format!("{} narrowed #{incident} [{}]", clock(*at), els(elements))
            }
            Detection::Resolved { incident, still_offline, at } => {
                format!("{} resolved #{incident} still offline [{}]", clock(*at), ids(still_offline))
            }
            Detection::Affected { incident, device, at } => {
                format!("{} affected #{incident} {}", clock(*at), dev(*device))
            }
            Detection::Restored { incident, device, at } => {
                format!("{} restored #{incident} {}", clock(*at), dev(*device))
            }
        })
        .collect()
}

/// `"A1.1 10:00:00-10:30:00"`, `" presumed"` after the rows of customers without a device.
fn show_downtime(plant: &Plant, det: &Detector, incident: u32) -> Vec<String> {
    det.downtime(incident)
        .iter()
        .map(|r| {
            let presumed = if r.presumed { " presumed" } else { "" };
            format!("{} {}-{}{presumed}", plant.label(r.customer), clock(r.start), clock(r.end))
        })
        .collect()
}

fn spans(ids: &[String], start: &str, end: &str) -> Vec<String> {
    ids.iter().map(|id| format!("{id} {start}-{end}")).collect()
}

fn fraction(s: &str) -> Fraction {
    Fraction::parse(s).unwrap()
}

fn threshold(min_devices: u32, min_fraction: &str, restore_fraction: &str) -> Threshold {
    Threshold {
        min_devices,
        min_fraction: fraction(min_fraction),
        restore_fraction: fraction(restore_fraction),
    }
}

// ---------------------------------------------------------------------------------------
// 1. A whole node
// ---------------------------------------------------------------------------------------

#[test]
fn a_whole_node_failing_opens_one_incident_at_the_node_and_resolves() {
    let plant = standard().build();
    let first = devs(&["A1", "A2"], 4);
    let rest = devs(&["A3"], 4);
    let mut run = Run::new(&plant);
    // Eight modems report at once, the last four 40 s later: all within a minute.
    run.feed([all(&first, off, "10:00:00"), all(&rest, off, "10:00:40")].concat());
    run.at("10:05:00");
    let mut want = lines(&["10:01:00 opened #0 N1"]);
    want.extend(each("10:01:00 affected #0", &first));
    want.extend(each("10:01:40 affected #0", &rest));
    assert_eq!(run.take(), want);
    let n1 = plant.el("N1");
    let inc = run.det.incident(0).clone();
    assert_eq!(run.det.incidents().len(), 1);
    assert_eq!((inc.opened_at, inc.started_at, inc.resolved_at), (t("10:01:00"), t("10:00:00"), None));
    assert_eq!((inc.elements, inc.extent, inc.merged_into), (vec![n1], vec![n1], None));
    assert_eq!(run.ids(&inc.devices), [first.clone(), rest.clone()].concat());
    assert_eq!(run.det.element_counts(n1), (12, 12));
    assert_eq!(run.det.customers_affected(0), 12);
    // While open, downtime runs to the clock.
    assert_eq!(
        run.downtime(0),
        [spans(&first, "10:00:00", "10:05:00"), spans(&rest, "10:00:40", "10:05:00")].concat()
    );

    run.feed([all(&first, on, "10:45:00"), all(&rest, on, "10:45:30")].concat());
    run.drain();
    let mut want = each("10:45:00 restored #0", &first);
    want.extend(each("10:45:30 restored #0", &rest));
    want.push("10:45:30 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    let inc = run.det.incident(0);
    assert_eq!(inc.resolved_at, Some(t("10:45:30")));
    assert!(inc.elements.is_empty());
    assert_eq!(inc.extent, [n1]);
    assert_eq!(
        run.downtime(0),
        [spans(&first, "10:00:00", "10:45:00"), spans(&rest, "10:00:40", "10:45:30")].concat()
    );
    assert_eq!(run.det.element_counts(n1), (0, 12));
    assert!(run.det.isolated().is_empty());
    let stats = run.det.stats();
    assert_eq!((stats.accepted, stats.confirmed, stats.momentary, stats.duplicates), (24, 12, 0, 0));
    assert!(run.det.is_idle());
}

#[test]
fn a_node_crosses_at_the_confirmation_that_takes_it_over_the_threshold() {
    // Devices straight on the node, reporting one every 5 s: the sixth of ten (60%) crosses.
    let plant = PlantBuilder::default()
        .el("R", None, "region")
        .el("N1", Some("R"), "node")
        .el("N2", Some("R"), "node")
        .devices("N1", 10)
        .devices("N2", 10)
        .build();
    let ids = devs(&["N1"], 10);
    let events: Vec<_> =
        ids.iter().enumerate().map(|(i, id)| off(id, &format!("10:00:{:02}", 5 * i))).collect();
    let mut run = Run::new(&plant);
    run.feed(events);
    run.at("10:03:00");
    let mut want = lines(&["10:01:25 opened #0 N1"]);
    want.extend(each("10:01:25 affected #0", &ids[..6]));
    for (i, id) in ids.iter().enumerate().skip(6) {
        want.push(format!("10:01:{:02} affected #0 {id}", 25 + 5 * (i - 5)));
    }
    assert_eq!(run.take(), want);
    assert_eq!(run.det.incident(0).started_at, t("10:00:00"));
    assert_eq!(run.det.incident(0).opened_at, t("10:01:25"));
    let want: Vec<String> =
        ids.iter().enumerate().map(|(i, id)| format!("{id} 10:00:{:02}-10:03:00", 5 * i)).collect();
    assert_eq!(run.downtime(0), want);
}

// ---------------------------------------------------------------------------------------
// 2. An amplifier
// ---------------------------------------------------------------------------------------

#[test]
fn an_amplifier_failing_opens_at_the_amplifier_not_the_node() {
    let plant = standard().build();
    let a2 = devs(&["A2"], 4);
    let mut events: Vec<_> =
        a2.iter().enumerate().map(|(i, id)| off(id, &format!("10:00:{:02}", 10 * i))).collect();
    // The rest of the node is heard from and stays up; one modem on A1 fails on its own.
    for id in devs(&["A1", "A3"], 4) {
        events.push(on(&id, "10:00:05"));
    }
    events.push(off("A1.1", "10:00:10"));
    let mut run = Run::new(&plant);
    run.feed(events);
    run.at("10:10:00");
    let mut want = lines(&["10:01:20 opened #0 A2"]);
    want.extend(each("10:01:20 affected #0", &a2[..3]));
    want.push("10:01:30 affected #0 A2.4".into());
    assert_eq!(run.take(), want);
    assert_eq!(run.det.incidents().len(), 1);
    let inc = run.det.incident(0);
    assert_eq!(inc.extent, [plant.el("A2")]);
    assert_eq!(inc.started_at, t("10:00:00"));
    assert_eq!(run.ids(&inc.devices), a2);
    assert_eq!(run.det.element_counts(plant.el("N1")), (5, 12));
    assert_eq!(run.det.customers_affected(0), 4);
    let want: Vec<String> =
        a2.iter().enumerate().map(|(i, id)| format!("{id} 10:00:{:02}-10:10:00", 10 * i)).collect();
    assert_eq!(run.downtime(0), want, "no customer of A1 or A3 is in it");
    assert_eq!(run.det.isolated(), [run.dev("A1.1")]);
}

// ---------------------------------------------------------------------------------------
// 3. Scattered faults
// ---------------------------------------------------------------------------------------

#[test]
fn scattered_failures_open_nothing_and_are_isolated() {
    let plant = standard().build();
    let picked = ["A1.1", "A2.2", "A3.3", "A4.4", "A5.1", "A6.2", "A1.4", "A4.1"];
    let events: Vec<_> = picked.iter().enumerate().map(|(i, id)| off(id, &format!("10:0{i}:00"))).collect();
    let (detections, det) = replay(&plant, DetectionConfig::default(), &events);
    assert_eq!(detections, []);
    // The last report has not been held down 60 s yet when the replay ends.
    assert_eq!(det.pending(), 1);
    let mut want: Vec<u32> = picked[..7].iter().map(|id| det.network().device_index(id).unwrap()).collect();
    want.sort_unstable();
    assert_eq!(det.isolated(), want);
    assert_eq!(det.stats().confirmed, 7);
    assert!(det.incidents().is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. A growing outage
// ---------------------------------------------------------------------------------------

#[test]
fn a_growing_outage_merges_into_the_node_keeping_the_earliest_incident() {
    let plant = standard().build();
    let mut run = Run::new(&plant);
    let a1 = devs(&["A1"], 4);
    let a2 = devs(&["A2"], 3);
    run.feed(a1.iter().enumerate().map(|(i, id)| off(id, &format!("10:00:0{i}"))));
    run.feed(a2.iter().enumerate().map(|(i, id)| off(id, &format!("10:02:0{i}"))));
    run.at("10:04:00");
    assert_eq!(
        run.take(),
        lines(&[
            "10:01:02 opened #0 A1",
            "10:01:02 affected #0 A1.1",
            "10:01:02 affected #0 A1.2",
            "10:01:02 affected #0 A1.3",
            "10:01:03 affected #0 A1.4",
            "10:03:02 opened #1 A2",
            "10:03:02 affected #1 A2.1",
            "10:03:02 affected #1 A2.2",
            "10:03:02 affected #1 A2.3",
        ])
    );
    assert_eq!(run.det.element_counts(plant.el("N1")), (7, 12), "one short of 60%");
    // The eighth device of the node: the node crosses.
    run.feed([off("A3.1", "10:05:00"), off("A3.2", "10:07:00")]);
    run.at("10:10:00");
    assert_eq!(
        run.take(),
        lines(&["10:06:00 merged #0 [1] N1", "10:06:00 affected #0 A3.1", "10:08:00 affected #0 A3.2"])
    );
    let n1 = plant.el("N1");
    let survivor = run.det.incident(0).clone();
    assert_eq!((survivor.elements.clone(), survivor.extent.clone()), (vec![n1], vec![n1]));
    assert_eq!(survivor.opened_at, t("10:01:02"));
    assert_eq!(survivor.started_at, t("10:00:00"));
    assert_eq!(run.ids(&survivor.devices), [a1.clone(), a2.clone(), lines(&["A3.1", "A3.2"])].concat());
    let merged = run.det.incident(1);
    assert_eq!(merged.merged_into, Some(0));
    assert_eq!(merged.opened_at, t("10:03:02"));
    // A2 comes back while the node is still out (6 of 12): nothing narrows.
    run.feed(a2.iter().enumerate().map(|(i, id)| on(id, &format!("10:20:0{i}"))));
    run.at("10:25:00");
    assert_eq!(
        run.take(),
        lines(&["10:20:00 restored #0 A2.1", "10:20:01 restored #0 A2.2", "10:20:02 restored #0 A2.3"])
    );
    let rest = [a1.clone(), lines(&["A3.1", "A3.2"])].concat();
    run.feed(all(&rest, on, "10:30:00"));
    run.drain();
    let mut want = each("10:30:00 restored #0", &rest);
    want.push("10:30:00 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    let mut downtime: Vec<String> =
        a1.iter().enumerate().map(|(i, id)| format!("{id} 10:00:0{i}-10:30:00")).collect();
    downtime.extend(a2.iter().enumerate().map(|(i, id)| format!("{id} 10:02:0{i}-10:20:0{i}")));
    downtime.extend(lines(&["A3.1 10:05:00-10:30:00", "A3.2 10:07:00-10:30:00"]));
    assert_eq!(run.downtime(0), downtime);
    // The merged incident's customers are counted in the survivor only.
    assert!(run.downtime(1).is_empty());
    assert_eq!(run.det.customers_affected(1), 0);
}

// ---------------------------------------------------------------------------------------
// 5. Flapping
// ---------------------------------------------------------------------------------------

#[test]
fn flapping_under_the_hold_down_opens_nothing_and_counts_momentary() {
    let plant = standard().build();
    let flappers = devs(&["A1"], 4);
    let mut events = Vec::new();
    for id in flappers.iter().chain(&lines(&["A2.1"])) {
        // Down for 20 s every 40 s, for more than three minutes.
        for k in 0..5 {
            let s = 40 * k;
            events.push(off(id, &format!("10:{:02}:{:02}", s / 60, s % 60)));
            events.push(on(id, &format!("10:{:02}:{:02}", (s + 20) / 60, (s + 20) % 60)));
        }
    }
    // At the edge: back a millisecond before the hold-down runs out, and exactly when it does.
    events.extend([off("A3.1", "10:10:00"), on("A3.1", "10:10:59.999")]);
    events.extend([off("A3.2", "10:10:00"), on("A3.2", "10:11:00")]);
    let (detections, det) = replay(&plant, DetectionConfig::default(), &events);
    assert_eq!(detections, []);
    assert_eq!(det.stats().momentary, 26);
    assert_eq!(det.stats().confirmed, 1, "a hold-down expiring at the instant of the return has expired");
    assert!(det.isolated().is_empty());
    assert_eq!(det.pending(), 0);
    assert!(det.incidents().is_empty());
    assert_eq!(det.element_counts(plant.el("A1")), (0, 4));
}

// ---------------------------------------------------------------------------------------
// 6. Order of arrival
// ---------------------------------------------------------------------------------------

#[test]
fn advance_applies_what_is_a_reorder_window_old_and_drain_applies_the_rest() {
    let plant = standard().build();
    let mut det = plant.detector(DetectionConfig::default());
    let mut out = Vec::new();
    det.offer(&off("A1.1", "10:00:00"), t("10:00:00")).unwrap();
    det.advance(t("10:00:00.499"), &mut out);
    assert_eq!(det.pending(), 0, "inside the reorder window");
    det.advance(t("10:00:00.500"), &mut out);
    assert_eq!(det.pending(), 1, "a reorder window old");
    det.offer(&off("A1.2", "10:00:01"), t("10:00:01")).unwrap();
    det.advance(t("10:00:01"), &mut out);
    assert_eq!(det.pending(), 1);
    det.drain(&mut out);
    assert_eq!(det.pending(), 2, "drain applies everything filed up to the clock");
    assert_eq!(det.now(), Some(t("10:00:01")));
    // Hold-downs that have not run out by the clock stay pending.
    assert!(!det.is_idle());
    det.advance(t("10:01:01.5"), &mut out);
    assert_eq!((det.pending(), det.isolated().len()), (0, 2));
    assert!(det.is_idle());
    assert_eq!(out, []);
}

#[test]
fn ties_apply_the_hold_down_expiry_then_online_then_offline() {
    let plant = standard().build();
    // At 10:01:00 the hold-down runs out, and the modem reports back and offline again.
    for second in
        [[on("A1.1", "10:01:00"), off("A1.1", "10:01:00")], [off("A1.1", "10:01:00"), on("A1.1", "10:01:00")]]
    {
        let mut det = plant.detector(DetectionConfig::default());
        let mut out = Vec::new();
        for e in [off("A1.1", "10:00:00")].iter().chain(&second) {
            det.offer(e, e.at).unwrap();
            det.advance(e.at, &mut out);
        }
        det.advance(t("10:01:30"), &mut out);
        assert_eq!((det.stats().confirmed, det.stats().momentary, det.pending()), (1, 0, 1));
        det.advance(t("10:02:01"), &mut out);
        assert_eq!((det.stats().confirmed, det.pending()), (2, 0));
        assert_eq!(det.isolated(), [det.network().device_index("A1.1").unwrap()]);
    }
}

#[test]
fn events_out_of_order_within_the_window_are_applied_in_order() {
    let plant = standard().build();
    // (event, arrival): an unrelated report arrives first, then A1.1's return, then the
    // offline report that preceded it, each within 500 ms of its `at`.
    let arrivals = [
        (on("A2.1", "10:00:00.250"), "10:00:00.250"),
        (on("A1.1", "10:00:00.100"), "10:00:00.300"),
        (off("A1.1", "10:00:00.000"), "10:00:00.450"),
    ];
    let mut det = plant.detector(DetectionConfig::default());
    let mut out = Vec::new();
    for (e, arrival) in &arrivals {
        det.offer(e, t(arrival)).unwrap();
        det.advance(t(arrival), &mut out);
    }
    det.advance(t("10:00:05"), &mut out);
    let stats = det.stats();
    assert_eq!((stats.momentary, stats.superseded, stats.late), (1, 0, 0), "{stats:?}");
}

#[test]
fn duplicates_late_and_superseded_events_are_counted() {
    let plant = standard().build();
    let mut det = plant.detector(DetectionConfig::default());
    let mut out = Vec::new();
    for (e, arrival) in [
        (off("A1.1", "10:00:00"), "10:00:00"),
        (off("A1.1", "10:00:00"), "10:00:00.2"),
        (on("A1.1", "10:00:10"), "10:00:10"),
    ] {
        det.offer(&e, t(arrival)).unwrap();
        det.advance(t(arrival), &mut out);
    }
    det.advance(t("10:00:11"), &mut out);
    // An offline report from before the return arrives after it was applied.
    det.offer(&off("A1.1", "10:00:05"), t("10:00:11")).unwrap();
    det.advance(t("10:00:11"), &mut out);
    let stats = det.stats().clone();
    assert_eq!(
        (stats.accepted, stats.duplicates, stats.late, stats.superseded, stats.momentary),
        (4, 1, 1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(det.pending(), 0);
    // A late event that is newer than what was applied is applied.
    det.offer(&off("A1.1", "10:00:10.5"), t("10:00:12")).unwrap();
    det.advance(t("10:00:12"), &mut out);
    assert_eq!((det.stats().late, det.pending()), (2, 1));
    assert_eq!(out, []);
}

// ---------------------------------------------------------------------------------------
// 7. A restoration storm
// ---------------------------------------------------------------------------------------

#[test]
fn a_restoration_storm_restores_every_device_once_and_resolves_once() {
    let plant = standard().build();
    let node = devs(&["A1", "A2", "A3"], 4);
    let mut run = Run::new(&plant);
    run.feed(all(&node, off, "10:00:00"));
    run.at("10:05:00");
    let mut want = lines(&["10:01:00 opened #0 N1"]);
    want.extend(each("10:01:00 affected #0", &node));
    assert_eq!(run.take(), want);
    // Power is back: every modem reports within two seconds, a third each second.
    let waves: Vec<Vec<String>> = (0..3).map(|w| node.iter().skip(w).step_by(3).cloned().collect()).collect();
    for (w, ids) in waves.iter().enumerate() {
        run.feed(all(ids, on, &format!("10:30:0{w}")));
    }
    run.drain();
    let mut want = Vec::new();
    for (w, ids) in waves.iter().enumerate() {
        want.extend(each(&format!("10:30:0{w} restored #0"), ids));
    }
    want.push("10:30:02 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    let mut rows = Vec::new();
    for id in &node {
        let w = waves.iter().position(|ids| ids.contains(id)).unwrap();
        rows.push(format!("{id} 10:00:00-10:30:0{w}"));
    }
    assert_eq!(run.downtime(0), rows);
    assert!(run.det.isolated().is_empty());
}

// ---------------------------------------------------------------------------------------
// 8. Still offline at resolution
// ---------------------------------------------------------------------------------------

#[test]
fn a_customer_still_offline_at_resolution_is_listed_and_their_downtime_ends_there() {
    let plant = standard().build();
    let node = devs(&["A1", "A2", "A3"], 4);
    let back: Vec<String> = node.iter().filter(|id| *id != "A3.4").cloned().collect();
    let mut run = Run::new(&plant);
    run.feed(all(&node, off, "10:00:00"));
    run.feed(all(&back, on, "10:30:00"));
    run.at("10:40:00");
    let mut want = lines(&["10:01:00 opened #0 N1"]);
    want.extend(each("10:01:00 affected #0", &node));
    want.extend(each("10:30:00 restored #0", &back));
    want.push("10:30:00 resolved #0 still offline [A3.4]".into());
    assert_eq!(run.take(), want);
    assert_eq!(run.det.isolated(), [run.dev("A3.4")], "no open incident covers it any more");
    run.feed([on("A3.4", "10:50:00")]);
    run.drain();
    assert_eq!(run.take(), Vec::<String>::new(), "the incident is over: no Restored");
    assert_eq!(run.downtime(0), spans(&node, "10:00:00", "10:30:00"));
    assert!(run.det.isolated().is_empty());
}

/// Issue 16, case 4: a second storm inside the correlation window of the first is a new
/// outage. A device still offline since the first (a straggler, counted there up to its
/// resolution) joins the new incident but does not move its start back over the first.
#[test]
fn a_second_storm_after_a_resolution_starts_when_it_starts() {
    let plant = standard().build();
    let amp = devs(&["A1"], 4);
    let back: Vec<String> = amp.iter().filter(|id| *id != "A1.4").cloned().collect();
    let mut run = Run::new(&plant);
    run.feed(all(&amp, gasp, "10:00:00"));
    run.feed(all(&back, on, "10:05:00"));
    run.at("10:10:00");
    let mut want = lines(&["10:00:00 opened #0 A1"]);
    want.extend(each("10:00:00 affected #0", &amp));
    want.extend(each("10:05:00 restored #0", &back));
    want.push("10:05:00 resolved #0 still offline [A1.4]".into());
    assert_eq!(run.take(), want);
    // Five minutes later, well inside the 15-minute window, the same amplifier fails again.
    run.feed(all(&back, gasp, "10:10:00"));
    run.at("10:30:00");
    run.feed(all(&back, on, "10:30:00"));
    run.feed([on("A1.4", "10:30:00")]);
    run.at("10:35:00");
    let mut want = lines(&["10:10:00 opened #1 A1"]);
    want.extend(each("10:10:00 affected #1", &amp));
    want.extend(each("10:30:00 restored #1", &amp));
    want.push("10:30:00 resolved #1 still offline []".into());
    assert_eq!(run.take(), want);
    assert_eq!(run.det.incident(1).started_at, t("10:10:00"), "not the first storm's 10:00");
    assert_eq!(run.downtime(0), spans(&amp, "10:00:00", "10:05:00"));
    assert_eq!(run.downtime(1), spans(&amp, "10:10:00", "10:30:00"), "A1.4's first 5 min were counted in #0");
}

// ---------------------------------------------------------------------------------------
// 9. Customers without a device
// ---------------------------------------------------------------------------------------

#[test]
fn customers_without_a_device_are_presumed_out_for_the_whole_incident() {
    let plant = standard()
        .deviceless("A1", "A1.x")
        .deviceless("A1", "A1.y")
        .deviceless("N1", "N1.x")
        .deviceless("A4", "A4.x")
        .deviceless("N2", "N2.x")
        .deviceless("H1", "H1.x")
        .build();
    let node = devs(&["A1", "A2", "A3"], 4);
    let a4 = devs(&["A4"], 4);
    let mut run = Run::new(&plant);
    run.feed(all(&node, off, "10:00:00"));
    run.feed(all(&node, on, "10:30:00"));
    run.feed(all(&a4, gasp, "11:00:00"));
    run.at("11:10:00");
    let mut want = lines(&["10:01:00 opened #0 N1"]);
    want.extend(each("10:01:00 affected #0", &node));
    want.extend(each("10:30:00 restored #0", &node));
    want.extend(lines(&["10:30:00 resolved #0 still offline []", "11:00:00 opened #1 A4"]));
    want.extend(each("11:00:00 affected #1", &a4));
    assert_eq!(run.take(), want);
    // Customers without a device do not count towards thresholds.
    assert_eq!(run.det.element_counts(plant.el("A1")), (0, 4));
    let mut rows = spans(&node, "10:00:00", "10:30:00");
    rows.extend(lines(&[
        "A1.x 10:00:00-10:30:00 presumed",
        "A1.y 10:00:00-10:30:00 presumed",
        "N1.x 10:00:00-10:30:00 presumed",
    ]));
    assert_eq!(run.downtime(0), rows, "nothing on N2 or directly on H1");
    assert_eq!(run.det.customers_affected(0), 15);
    // An open incident: the span runs to the clock.
    let mut rows = spans(&a4, "11:00:00", "11:10:00");
    rows.push("A4.x 11:00:00-11:10:00 presumed".into());
    assert_eq!(run.downtime(1), rows);
    assert_eq!(run.det.customers_affected(1), 5);
}

// ---------------------------------------------------------------------------------------
// 10. Refusals, dying gasps, the start of an incident
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_devices_and_events_too_far_ahead_are_refused_and_counted() {
    let plant = standard().build();
    let mut det = plant.detector(DetectionConfig::default());
    let now = t("10:00:00");
    assert_eq!(det.offer(&off("ZZ-9", "10:00:00"), now), Err(Refusal::UnknownDevice("ZZ-9".into())));
    assert_eq!(det.offer(&off("ZZ-9", "10:00:01"), now), Err(Refusal::UnknownDevice("ZZ-9".into())));
    assert_eq!(det.offer(&on("QQ", "10:00:01"), now), Err(Refusal::UnknownDevice("QQ".into())));
    assert_eq!(
        det.offer(&off("A1.1", "10:05:00.000001"), now),
        Err(Refusal::TooFarAhead { at: t("10:05:00.000001"), now, limit_seconds: 300 })
    );
    assert_eq!(det.offer(&off("A1.2", "10:05:00"), now), Ok(()), "exactly the limit is accepted");
    let stats = det.stats();
    assert_eq!((stats.unknown_devices, stats.too_far_ahead, stats.accepted), (3, 1, 1));
    assert_eq!(stats.unknown_sample, BTreeSet::from(["QQ".to_string(), "ZZ-9".to_string()]));
    // Refused events leave no trace in the agenda.
    let mut out = Vec::new();
    det.advance(t("10:05:01"), &mut out);
    assert_eq!(det.pending(), 1);
}

#[test]
fn the_unknown_sample_is_bounded() {
    let plant = standard().build();
    let mut det = plant.detector(DetectionConfig::default());
    for i in 0..25 {
        let _ = det.offer(&off(&format!("X{i:02}"), "10:00:00"), t("10:00:00"));
    }
    assert_eq!(det.stats().unknown_devices, 25);
    assert_eq!(det.stats().unknown_sample.len(), detector::UNKNOWN_SAMPLE_MAX);
}

#[test]
fn a_dying_gasp_confirms_at_once_and_the_outage_counts_from_the_first_report() {
    let plant = standard().build();
    let mut run = Run::new(&plant);
    run.feed([
        // Held down: confirmed at 10:00:30, after A1 crossed, its outage began before.
        off("A1.4", "09:59:30"),
        // Reported offline, then gasped: confirmed at the gasp, counted from the report.
        off("A1.3", "09:59:50"),
        gasp("A1.3", "10:00:00"),
        gasp("A1.1", "10:00:00"),
        gasp("A1.2", "10:00:00"),
    ]);
    run.at("10:05:00");
    assert_eq!(
        run.take(),
        lines(&[
            "10:00:00 opened #0 A1",
            "10:00:00 affected #0 A1.1",
            "10:00:00 affected #0 A1.2",
            "10:00:00 affected #0 A1.3",
            "10:00:30 affected #0 A1.4",
        ])
    );
    assert_eq!(run.det.incident(0).opened_at, t("10:00:00"));
    assert_eq!(run.det.incident(0).started_at, t("09:59:30"), "the earliest outage among its devices");
    run.feed(all(&devs(&["A1"], 4), on, "10:20:00"));
    run.drain();
    assert_eq!(
        run.downtime(0),
        lines(&[
            "A1.1 10:00:00-10:20:00",
            "A1.2 10:00:00-10:20:00",
            "A1.3 09:59:50-10:20:00",
            "A1.4 09:59:30-10:20:00",
        ])
    );
}

#[test]
fn devices_dead_longer_than_the_correlation_window_do_not_move_the_start() {
    let plant = standard().build();
    let mut run = Run::new(&plant);
    run.feed([off("A1.4", "09:00:00"), off("A1.3", "09:50:00")]);
    run.at("09:55:00");
    assert_eq!(run.det.isolated(), [run.dev("A1.3"), run.dev("A1.4")]);
    run.feed([gasp("A1.1", "10:00:00"), gasp("A1.2", "10:00:00")]);
    run.at("10:10:00");
    assert_eq!(
        run.take(),
        lines(&[
            "10:00:00 opened #0 A1",
            "10:00:00 affected #0 A1.1",
            "10:00:00 affected #0 A1.2",
            "10:00:00 affected #0 A1.3",
            "10:00:00 affected #0 A1.4",
        ])
    );
    assert!(run.det.isolated().is_empty());
    // 09:50 is within 15 min of the crossing; 09:00 is not.
    assert_eq!(run.det.incident(0).started_at, t("09:50:00"));
    assert_eq!(
        run.downtime(0),
        lines(&[
            "A1.1 10:00:00-10:10:00",
            "A1.2 10:00:00-10:10:00",
            "A1.3 09:50:00-10:10:00",
            "A1.4 09:50:00-10:10:00",
        ])
    );
}

// ---------------------------------------------------------------------------------------
// 11. Narrowing
// ---------------------------------------------------------------------------------------

/// N1 > A1..A12, four devices each: the node is back under 10% (4 of 48 offline).
fn big_node() -> Plant {
    let mut b = PlantBuilder::default().el("N1", None, "node");
    for a in 1..=12 {
        let a = format!("A{a}");
        b = b.el(&a, Some("N1"), "amplifier").devices(&a, 4);
    }
    b.build()
}

#[test]
fn a_node_incident_narrows_to_the_amplifier_still_down_then_resolves() {
    let plant = big_node();
    let amps: Vec<String> = (1..=11).map(|a| format!("A{a}")).collect();
    let amps: Vec<&str> = amps.iter().map(String::as_str).collect();
    let back = devs(&amps, 4);
    let a12 = devs(&["A12"], 4);
    let node = [back.clone(), a12.clone()].concat();
    let mut run = Run::new(&plant);
    run.feed(all(&node, off, "10:00:00"));
    run.feed(all(&back, on, "10:20:00"));
    run.at("10:30:00");
    let mut want = lines(&["10:01:00 opened #0 N1"]);
    want.extend(each("10:01:00 affected #0", &node));
    want.extend(each("10:20:00 restored #0", &back));
    want.push("10:20:00 narrowed #0 [A12]".into());
    assert_eq!(run.take(), want);
    let inc = run.det.incident(0);
    assert_eq!((inc.elements.clone(), inc.extent.clone()), (vec![plant.el("A12")], vec![plant.el("N1")]));
    assert_eq!(inc.resolved_at, None);
    run.feed(all(&a12, on, "10:40:00"));
    run.drain();
    let mut want = each("10:40:00 restored #0", &a12);
    want.push("10:40:00 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    assert_eq!(run.det.incident(0).resolved_at, Some(t("10:40:00")));
    assert_eq!(
        run.downtime(0),
        [spans(&back, "10:00:00", "10:20:00"), spans(&a12, "10:00:00", "10:40:00")].concat()
    );
}

/// N1 > S1 > {A1 (4), A2 (2)}, N1 > A3 (8), and a customer without a device on A2. Out at
/// half the devices, back under half; S1, a "sub", out at 80% and back under 60%. So the
/// node is back with 3 of 14 down, while A2 (2 of 2) stays out.
fn sub_plant() -> (Plant, DetectionConfig, Vec<String>) {
    let plant = PlantBuilder::default()
        .el("N1", None, "node")
        .el("S1", Some("N1"), "sub")
        .el("A1", Some("S1"), "amplifier")
        .el("A2", Some("S1"), "amplifier")
        .el("A3", Some("N1"), "amplifier")
        .devices("A1", 4)
        .devices("A2", 2)
        .devices("A3", 8)
        .deviceless("A2", "A2.x")
        .build();
    let mut config = DetectionConfig { default_threshold: threshold(1, "0.5", "0.5"), ..Default::default() };
    config.thresholds.insert("sub".into(), threshold(1, "0.8", "0.6"));
    let everything = [devs(&["A1"], 4), devs(&["A2"], 2), devs(&["A3"], 8)].concat();
    (plant, config, everything)
}

/// The incident at N1 narrows to A2 while a device of A1 stays down in it; A1 crosses on its
/// own (a second incident), then S1 crosses and merges both.
#[test]
fn an_incident_narrowed_and_merged_again_counts_each_device_and_customer_once() {
    let (plant, config, everything) = sub_plant();
    let mut run = Run::with(&plant, config);
    run.feed(all(&everything, gasp, "10:00:00"));
    let back = [devs(&["A1"], 3), devs(&["A3"], 8)].concat();
    run.feed(all(&back, on, "10:10:00"));
    run.feed([gasp("A1.1", "10:20:00")]);
    run.feed([gasp("A1.2", "10:30:00")]);
    run.feed(all(&everything, on, "10:40:00"));
    run.drain();
    let mut want = lines(&["10:00:00 opened #0 N1"]);
    want.extend(each("10:00:00 affected #0", &everything));
    want.extend(each("10:10:00 restored #0", &back));
    want.extend(lines(&[
        "10:10:00 narrowed #0 [A2]",
        "10:20:00 opened #1 A1",
        "10:20:00 affected #1 A1.1",
        "10:20:00 affected #1 A1.4",
        // A1.2 was affected in #0 before: going offline again in it is not news.
        "10:30:00 merged #0 [1] S1",
    ]));
    want.extend(each("10:40:00 restored #0", &lines(&["A1.1", "A1.2", "A1.4", "A2.1", "A2.2"])));
    want.push("10:40:00 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    let inc = run.det.incident(0);
    assert_eq!(run.ids(&inc.devices), everything, "each device once");
    assert_eq!(inc.extent, [plant.el("N1")], "no extent element below another");
    assert_eq!(run.det.incident(1).merged_into, Some(0));
    let mut rows = lines(&[
        "A1.1 10:00:00-10:10:00",
        "A1.1 10:20:00-10:40:00",
        "A1.2 10:00:00-10:10:00",
        "A1.2 10:30:00-10:40:00",
        "A1.3 10:00:00-10:10:00",
        "A1.4 10:00:00-10:40:00",
        "A2.1 10:00:00-10:40:00",
        "A2.2 10:00:00-10:40:00",
    ]);
    rows.extend(spans(&devs(&["A3"], 8), "10:00:00", "10:10:00"));
    rows.push("A2.x 10:00:00-10:40:00 presumed".into());
    assert_eq!(run.downtime(0), rows);
}

/// A device affected in an incident, then in a second one (opened below the first after it
/// narrowed away) that resolves without it, is not affected again when the first widens back
/// over it: it was affected in it already.
#[test]
fn a_device_back_in_an_incident_it_was_in_is_not_affected_twice() {
    let (plant, config, everything) = sub_plant();
    let mut run = Run::with(&plant, config);
    run.feed(all(&everything, gasp, "10:00:00"));
    let back = [devs(&["A1"], 3), devs(&["A3"], 8)].concat();
    run.feed(all(&back, on, "10:10:00"));
    run.feed([gasp("A1.1", "10:20:00")]);
    run.feed([on("A1.1", "10:25:00")]);
    run.feed([gasp("A1.1", "10:30:00"), gasp("A1.2", "10:30:00")]);
    run.at("10:35:00");
    let mut want = lines(&["10:00:00 opened #0 N1"]);
    want.extend(each("10:00:00 affected #0", &everything));
    want.extend(each("10:10:00 restored #0", &back));
    want.extend(lines(&[
        "10:10:00 narrowed #0 [A2]",
        "10:20:00 opened #1 A1",
        "10:20:00 affected #1 A1.1",
        "10:20:00 affected #1 A1.4",
        "10:25:00 restored #1 A1.1",
        "10:25:00 resolved #1 still offline [A1.4]",
        // S1 crosses (5 of 6): #0, at A2 below it, widens back over A1.
        "10:30:00 merged #0 [] S1",
    ]));
    assert_eq!(run.take(), want);
    let inc = run.det.incident(0);
    assert_eq!((inc.elements.clone(), inc.extent.clone()), (vec![plant.el("S1")], vec![plant.el("N1")]));
    assert_eq!(run.ids(&inc.devices), everything, "each device once");
    run.feed(all(&everything, on, "10:40:00"));
    run.drain();
    let mut want = each("10:40:00 restored #0", &lines(&["A1.1", "A1.2", "A1.4", "A2.1", "A2.2"]));
    want.push("10:40:00 resolved #0 still offline []".into());
    assert_eq!(run.take(), want);
    let mut rows = lines(&[
        "A1.1 10:00:00-10:10:00",
        // Its own time offline within the span, though #1 had it then.
        "A1.1 10:20:00-10:25:00",
        "A1.1 10:30:00-10:40:00",
        "A1.2 10:00:00-10:10:00",
        "A1.2 10:30:00-10:40:00",
        "A1.3 10:00:00-10:10:00",
        "A1.4 10:00:00-10:40:00",
        "A2.1 10:00:00-10:40:00",
        "A2.2 10:00:00-10:40:00",
    ]);
    rows.extend(spans(&devs(&["A3"], 8), "10:00:00", "10:10:00"));
    rows.push("A2.x 10:00:00-10:40:00 presumed".into());
    assert_eq!(run.downtime(0), rows);
}

// ---------------------------------------------------------------------------------------
// 12. Thresholds by kind
// ---------------------------------------------------------------------------------------

#[test]
fn thresholds_by_element_kind_are_honoured() {
    let plant = standard().build();
    let events = [off("A1.1", "10:00:00"), off("A1.2", "10:00:10"), off("A4.1", "10:00:00")];
    // By default two of four is not enough for an amplifier.
    let mut run = Run::new(&plant);
    run.feed(events.clone());
    run.at("10:05:00");
    assert_eq!(run.take(), Vec::<String>::new());
    assert_eq!(run.det.isolated().len(), 3);

    let mut config = DetectionConfig::default();
    config.thresholds.insert("amplifier".into(), threshold(2, "0.5", "0.1"));
    assert_eq!(*config.threshold("amplifier"), threshold(2, "0.5", "0.1"));
    assert_eq!(*config.threshold("hub"), Threshold::default());
    let mut run = Run::with(&plant, config.clone());
    run.feed(events.clone());
    run.at("10:05:00");
    assert_eq!(
        run.take(),
        lines(&["10:01:10 opened #0 A1", "10:01:10 affected #0 A1.1", "10:01:10 affected #0 A1.2"])
    );
    assert_eq!(run.det.isolated(), [run.dev("A4.1")]);
    // Back under `min_devices` for the amplifier (1 < 2): resolved.
    run.feed([on("A1.2", "10:06:00")]);
    run.at("10:07:00");
    assert_eq!(
        run.take(),
        lines(&["10:06:00 restored #0 A1.2", "10:06:00 resolved #0 still offline [A1.1]"])
    );

    // A node that never counts as out: every amplifier of a failed node is its own incident.
    let mut config = DetectionConfig::default();
    config.thresholds.insert("node".into(), threshold(13, "0.6", "0.1"));
    let node = devs(&["A1", "A2", "A3"], 4);
    let mut run = Run::with(&plant, config);
    run.feed(all(&node, gasp, "10:00:00"));
    run.at("10:01:00");
    let mut want = Vec::new();
    for (i, a) in ["A1", "A2", "A3"].iter().enumerate() {
        want.push(format!("10:00:00 opened #{i} {a}"));
        want.extend(each(&format!("10:00:00 affected #{i}"), &devs(&[a], 4)));
    }
    assert_eq!(run.take(), want);
    assert_eq!(run.det.element_counts(plant.el("N1")), (12, 12));
}

// ---------------------------------------------------------------------------------------
// The network and the settings
// ---------------------------------------------------------------------------------------

#[test]
fn customers_sharing_a_device_each_get_its_downtime() {
    // A building's ONT serves three customers; the device takes the element of the first.
    let plant = PlantBuilder::default()
        .el("N1", None, "node")
        .el("A1", Some("N1"), "amplifier")
        .el("A2", Some("N1"), "amplifier")
        .devices("A1", 3)
        .build();
    let mut customers: Vec<(ElementIdx, Option<String>, String)> = plant.customers.clone();
    customers.push((plant.el("A2"), Some("A1.1".into()), "flat 2".into()));
    customers.push((plant.el("A1"), Some("A1.1".into()), "flat 3".into()));
    let plant = Plant { topology: plant.topology, customers };
    let net = plant.network();
    assert_eq!(net.device_count(), 3);
    let ont = net.device_index("A1.1").unwrap();
    assert_eq!(net.customers_of(ont), [0, 3, 4]);
    assert_eq!(net.device_element(ont), plant.el("A1"));
    assert_eq!(net.devices_under(plant.el("A2")).len(), 0);
    let mut run = Run::new(&plant);
    run.feed(all(&devs(&["A1"], 3), gasp, "10:00:00"));
    run.feed(all(&devs(&["A1"], 3), on, "10:30:00"));
    run.drain();
    assert_eq!(run.det.customers_affected(0), 5);
    assert_eq!(
        run.downtime(0),
        lines(&[
            "A1.1 10:00:00-10:30:00",
            "A1.2 10:00:00-10:30:00",
            "A1.3 10:00:00-10:30:00",
            "flat 2 10:00:00-10:30:00",
            "flat 3 10:00:00-10:30:00",
        ])
    );
}

#[test]
fn device_ids_of_any_length_are_found() {
    let ids = ["", "x", "1234567890123456789012", "12345678901234567890123", &"é".repeat(40)];
    let mut b = PlantBuilder::default().el("N1", None, "node");
    for id in ids {
        b.customers.push(("N1".into(), Some(id.to_string()), id.to_string()));
    }
    let net = b.build().network();
    assert_eq!(net.device_count(), ids.len());
    for id in ids {
        let d = net.device_index(id).unwrap_or_else(|| panic!("{id:?}"));
        assert_eq!(net.device_id(d), id);
    }
    assert_eq!(net.device_index("123456789012345678901"), None);
    assert_eq!(net.device_index("1234567890123456789012x"), None);
    assert!(net.device_bytes() > 0);
}

#[test]
fn a_hold_down_of_zero_confirms_at_once() {
    let plant = standard().build();
    let config = DetectionConfig { hold_down: SignedDuration::ZERO, ..Default::default() };
    let mut run = Run::with(&plant, config);
    run.feed(all(&devs(&["A1"], 3), off, "10:00:00"));
    run.drain();
    let mut want = lines(&["10:00:00 opened #0 A1"]);
    want.extend(each("10:00:00 affected #0", &devs(&["A1"], 3)));
    assert_eq!(run.take(), want);
}

#[test]
fn fractions_too_large_to_hold_are_refused() {
    // 1844674407370955161.9 * 10 overflows a u64 by 3: it must not read as 0.3.
    for s in ["1844674407370955161.9", "18446744073709551615.999999", "18446744073709551616"] {
        assert_eq!(Fraction::parse(s), None, "{s}");
    }
    let f = fraction("0.300");
    assert!(f.reached_by(3, 10) && !f.reached_by(299, 1000));
    assert_eq!(Fraction::parse("1.000000").map(Fraction::show).as_deref(), Some("1.000000"));
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

/// A random tree of up to eight elements, 0 to 4 devices on each, some customers without one.
#[derive(Debug, Clone)]
struct PlantSpec {
    parents: Vec<prop::sample::Index>,
    kinds: Vec<u8>,
    devices: Vec<usize>,
    deviceless: Vec<bool>,
}

fn arb_plant_spec() -> impl Strategy<Value = PlantSpec> {
    (1usize..=8).prop_flat_map(|n| {
        (
            prop::collection::vec(any::<prop::sample::Index>(), n - 1),
            prop::collection::vec(0u8..3, n),
            prop::collection::vec(0usize..=4, n),
            prop::collection::vec(any::<bool>(), n),
        )
            .prop_map(|(parents, kinds, devices, deviceless)| PlantSpec {
                parents,
                kinds,
                devices,
                deviceless,
            })
    })
}

impl PlantSpec {
    fn build(&self) -> Plant {
        let n = self.kinds.len();
        let mut b = PlantBuilder::default();
        for i in 0..n {
            let id = format!("E{i}");
            let parent = (i > 0).then(|| format!("E{}", self.parents[i - 1].index(i)));
            let kind = ["hub", "node", "amplifier"][self.kinds[i] as usize];
            b = b.el(&id, parent.as_deref(), kind);
        }
        for i in 0..n {
            let id = format!("E{i}");
            let count = if i == 0 { self.devices[i].max(1) } else { self.devices[i] };
            b = b.devices(&id, count);
            if self.deviceless[i] {
                b = b.deviceless(&id, &format!("{id}.x"));
            }
        }
        b.build()
    }
}

/// Outages of whole elements (every device below, with jitter) and single-device noise.
#[derive(Debug, Clone)]
struct Scenario {
    /// Element, start (s after 10:00), duration (s), gasp.
    waves: Vec<(prop::sample::Index, u32, u32, bool)>,
    /// Per-device jitter in ms, cycled; zeros make ties.
    jitter: Vec<u16>,
    /// Device, time (ms after 10:00), online, gasp.
    noise: Vec<(prop::sample::Index, u32, bool, bool)>,
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), 0u32..1200, 0u32..900, any::<bool>()), 0..4),
        prop::collection::vec(prop_oneof![Just(0u16), 0u16..3000], 1..12),
        prop::collection::vec(
            (any::<prop::sample::Index>(), 0u32..1_800_000, any::<bool>(), any::<bool>()),
            0..30,
        ),
    )
        .prop_map(|(waves, jitter, noise)| Scenario { waves, jitter, noise })
}

fn base() -> Timestamp {
    t("10:00:00")
}

fn after_ms(ms: u64) -> Timestamp {
    base() + SignedDuration::from_millis(ms as i64)
}

impl Scenario {
    /// The events, sorted by `at` (stable).
    fn events(&self, plant: &Plant) -> Vec<DeviceEvent> {
        let devices: Vec<(ElementIdx, &str)> =
            plant.customers.iter().filter_map(|(e, d, _)| d.as_deref().map(|d| (*e, d))).collect();
        let mut events = Vec::new();
        let mut j = self.jitter.iter().cycle();
        for (element, start, duration, last_gasp) in &self.waves {
            let element = element.index(plant.topology.len()) as ElementIdx;
            for &(e, id) in &devices {
                if plant.topology.is_at_or_below(e, element) {
                    let down = u64::from(*start) * 1000 + u64::from(*j.next().unwrap());
                    let up = down + u64::from(*duration) * 1000 + u64::from(*j.next().unwrap());
                    events.push(event(id, DeviceState::Offline, after_ms(down), *last_gasp));
                    events.push(event(id, DeviceState::Online, after_ms(up), false));
                }
            }
        }
        for (device, ms, online, last_gasp) in &self.noise {
            let id = devices[device.index(devices.len())].1;
            let state = if *online { DeviceState::Online } else { DeviceState::Offline };
            events.push(event(id, state, after_ms(u64::from(*ms)), *last_gasp && !online));
        }
        events.sort_by_key(|e| e.at);
        events
    }
}

#[derive(Debug, Clone)]
struct ConfigSpec {
    hold_down_ms: i64,
    threshold: (u32, &'static str, &'static str),
    amplifier: Option<(u32, &'static str, &'static str)>,
}

fn arb_threshold() -> impl Strategy<Value = (u32, &'static str, &'static str)> {
    (1u32..=3, prop::sample::select(vec!["0.5", "0.6", "1"]), prop::sample::select(vec!["0.1", "0.3", "0.5"]))
}

fn arb_config() -> impl Strategy<Value = ConfigSpec> {
    (prop::sample::select(vec![0i64, 3_000, 60_000]), arb_threshold(), prop::option::of(arb_threshold()))
        .prop_map(|(hold_down_ms, threshold, amplifier)| ConfigSpec { hold_down_ms, threshold, amplifier })
}

impl ConfigSpec {
    fn config(&self) -> DetectionConfig {
        let (n, f, r) = self.threshold;
        let mut config = DetectionConfig {
            hold_down: SignedDuration::from_millis(self.hold_down_ms),
            default_threshold: threshold(n, f, r),
            ..Default::default()
        };
        if let Some((n, f, r)) = self.amplifier {
            config.thresholds.insert("amplifier".into(), threshold(n, f, r));
        }
        config
    }
}

/// Everything a replay's caller can see at the end.
#[derive(Debug, PartialEq)]
struct Outcome {
    detections: Vec<Detection>,
    incidents: Vec<DetectedIncident>,
    downtime: Vec<Vec<Downtime>>,
    isolated: Vec<u32>,
    pending: usize,
    confirmed: u64,
    momentary: u64,
    superseded: u64,
    late: u64,
}

fn outcome(detections: Vec<Detection>, det: &Detector) -> Outcome {
    let stats = det.stats();
    Outcome {
        detections,
        incidents: det.incidents().to_vec(),
        downtime: (0..det.incidents().len() as u32).map(|i| det.downtime(i)).collect(),
        isolated: det.isolated(),
        pending: det.pending(),
        confirmed: stats.confirmed,
        momentary: stats.momentary,
        superseded: stats.superseded,
        late: stats.late,
    }
}

/// Each event offered at its arrival, the clock following arrivals; then the clock moves
/// to `end` and the rest is drained.
fn replay_arrivals(
    plant: &Plant,
    config: DetectionConfig,
    arrivals: &[(Timestamp, DeviceEvent)],
    end: Timestamp,
) -> (Vec<Detection>, Detector) {
    let mut det = plant.detector(config);
    let mut out = Vec::new();
    for (arrival, e) in arrivals {
        det.offer(e, *arrival).unwrap();
        det.advance(*arrival, &mut out);
    }
    det.advance(end, &mut out);
    det.drain(&mut out);
    (out, det)
}

/// Checks what must hold of any run: the detection stream, and each incident's downtime.
fn check_invariants(plant: &Plant, detections: &[Detection], det: &Detector) -> Result<(), TestCaseError> {
    let root = |mut i: u32| {
        while let Some(m) = det.incident(i).merged_into {
            i = m;
        }
        i
    };
    let mut affected: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut opened: BTreeSet<u32> = BTreeSet::new();
    let mut resolved: BTreeSet<u32> = BTreeSet::new();
    for d in detections {
        match d {
            Detection::Opened { incident, .. } => {
                prop_assert!(opened.insert(*incident), "opened twice: {d:?}")
            }
            Detection::Affected { incident, device, .. } => {
                prop_assert!(opened.contains(incident), "affected before opened: {d:?}");
                prop_assert!(!resolved.contains(incident), "{d:?} after resolution");
                prop_assert!(affected.insert((*incident, *device)), "affected twice: {d:?}");
            }
            Detection::Restored { incident, device, .. } => {
                prop_assert!(!resolved.contains(incident), "{d:?} after resolution");
                // The device joined this incident or one merged into it.
                let joined = affected.iter().any(|&(i, dev)| dev == *device && root(i) == root(*incident));
                prop_assert!(joined, "restored without being affected: {d:?}");
            }
            Detection::Merged { incident, merged, .. } => {
                prop_assert!(opened.contains(incident));
                for m in merged {
                    prop_assert!(*m > *incident, "the earliest survives: {d:?}");
                    prop_assert_eq!(det.incident(*m).merged_into, Some(*incident));
                }
            }
            Detection::Resolved { incident, still_offline, .. } => {
                prop_assert!(resolved.insert(*incident), "resolved twice: {d:?}");
                let devices: BTreeSet<u32> = det.incident(*incident).devices.iter().copied().collect();
                prop_assert!(still_offline.iter().all(|d| devices.contains(d)));
                let unique: BTreeSet<u32> = still_offline.iter().copied().collect();
                prop_assert_eq!(unique.len(), still_offline.len(), "{:?}", d);
            }
            Detection::Narrowed { incident, elements, .. } => {
                prop_assert!(!elements.is_empty());
                prop_assert!(!resolved.contains(incident));
            }
        }
    }
    let now = det.now().unwrap();
    for (i, inc) in det.incidents().iter().enumerate() {
        if inc.merged_into.is_some() {
            continue;
        }
        prop_assert!(inc.started_at <= inc.opened_at, "{inc:?}");
        let end = inc.resolved_at.unwrap_or(now);
        let span = end.duration_since(inc.started_at);
        let unique: BTreeSet<u32> = inc.devices.iter().copied().collect();
        prop_assert_eq!(unique.len(), inc.devices.len(), "devices once: {:?}", inc);
        for (a, b) in inc.extent.iter().flat_map(|a| inc.extent.iter().map(move |b| (a, b))) {
            prop_assert!(a == b || !plant.topology.is_at_or_below(*a, *b), "nested extent {:?}", inc.extent);
        }
        let mut by_customer: BTreeMap<u32, Vec<Downtime>> = BTreeMap::new();
        for row in det.downtime(i as u32) {
            prop_assert!(
                inc.started_at <= row.start && row.start < row.end && row.end <= end,
                "{row:?} {inc:?}"
            );
            if row.presumed {
                prop_assert_eq!((row.start, row.end), (inc.started_at, end));
            }
            by_customer.entry(row.customer).or_default().push(row);
        }
        for (customer, rows) in by_customer {
            let mut total = SignedDuration::ZERO;
            for pair in rows.windows(2) {
                prop_assert!(pair[0].end <= pair[1].start, "{} overlaps: {:?}", plant.label(customer), pair);
            }
            for r in &rows {
                total += r.end.duration_since(r.start);
            }
            prop_assert!(total <= span, "{} over the span", plant.label(customer));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Events shuffled within the reorder window (each arrives up to 499 ms after its `at`),
    /// some arriving twice, detect exactly what they detect in order.
    #[test]
    fn arrival_order_within_the_window_and_duplicates_change_nothing(
        spec in arb_plant_spec(),
        scenario in arb_scenario(),
        config in arb_config(),
        delays in prop::collection::vec((0u32..500_000, prop::option::weighted(0.2, 0u32..500_000)), 1..64),
    ) {
        let plant = spec.build();
        let events = scenario.events(&plant);
        prop_assume!(!events.is_empty());
        let end = events.last().unwrap().at + SignedDuration::from_millis(500);
        let in_order: Vec<_> = events.iter().map(|e| (e.at, e.clone())).collect();
        let mut arrivals = Vec::new();
        let mut copies = 0u64;
        for (e, (delay, dup)) in events.iter().zip(delays.iter().cycle()) {
            arrivals.push((e.at + SignedDuration::from_micros(i64::from(*delay)), e.clone()));
            if let Some(d) = dup {
                arrivals.push((e.at + SignedDuration::from_micros(i64::from(*d)), e.clone()));
                copies += 1;
            }
        }
        arrivals.sort_by_key(|a| a.0);
        let (d1, det1) = replay_arrivals(&plant, config.config(), &in_order, end);
        let (d2, det2) = replay_arrivals(&plant, config.config(), &arrivals, end);
        prop_assert_eq!(det2.stats().duplicates, det1.stats().duplicates + copies);
        prop_assert_eq!(det1.stats().late, 0);
        let (o1, o2) = (outcome(d1, &det1), outcome(d2, &det2));
        prop_assert_eq!(&o1, &o2, "in order:\n{:#?}\nby arrival:\n{:#?}",
            show(&plant, &det1, &o1.detections), show(&plant, &det2, &o2.detections));
        check_invariants(&plant, &o1.detections, &det1)?;
    }

    /// Any in-order run: the detection stream is well formed, each customer's downtime in an
    /// incident stays within the incident's span and its intervals do not overlap.
    #[test]
    fn downtime_stays_within_the_incident_and_never_overlaps(
        spec in arb_plant_spec(),
        scenario in arb_scenario(),
        config in arb_config(),
        stop in prop::option::of(0u32..2_000),
    ) {
        let plant = spec.build();
        let events = scenario.events(&plant);
        let mut run = Run::with(&plant, config.config());
        run.feed(events);
        match stop {
            // Stop mid-way, incidents open: their span runs to the clock.
            Some(s) => run.at(&clock(base() + SignedDuration::from_secs(i64::from(s)))),
            None => {
                run.at("11:00:00");
                run.drain();
            }
        }
        check_invariants(&plant, &run.out, &run.det)?;
    }

    /// At most two devices down on each amplifier of the standard plant: the amplifiers need
    /// three, the node eight, so nothing opens and every confirmed fault is isolated.
    #[test]
    fn scattered_failures_never_open_an_incident(
        picks in prop::collection::vec((0usize..4, 0usize..4, 0u32..1_800, any::<bool>()), 6),
    ) {
        let plant = standard().build();
        let mut events = Vec::new();
        let mut chosen = BTreeSet::new();
        for (amp, (a, b, s, last_gasp)) in picks.iter().enumerate() {
            for k in BTreeSet::from([*a, *b]) {
                let id = format!("A{}.{}", amp + 1, k + 1);
                events.push(event(&id, DeviceState::Offline, base() + SignedDuration::from_secs(i64::from(*s)), *last_gasp));
                chosen.insert(id);
            }
        }
        let mut run = Run::new(&plant);
        run.feed(events);
        run.at("11:00:00");
        prop_assert_eq!(run.take(), Vec::<String>::new());
        let mut want: Vec<u32> = chosen.iter().map(|id| run.dev(id)).collect();
        want.sort_unstable();
        prop_assert_eq!(run.det.isolated(), want);
    }
}
