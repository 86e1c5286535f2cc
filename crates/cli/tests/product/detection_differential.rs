//! Detection you can restart (issue 16): generated storms go through a real NATS JetStream
//! server into a real `amends serve`, which is killed with SIGKILL at chosen points (after
//! N events, in the middle of recording incidents, in the middle of a fan-out), stopped
//! with SIGTERM, and started again, until it has taken the whole log. What it recorded
//! must equal, key for key, what one uninterrupted server recorded from the same events,
//! and what `amends replay` of the same log detects: the same incidents, the same
//! downtime for every customer, the same notices and the same ledger. So must what two
//! servers on one database and one consumer record while the detecting one is killed
//! twice and the other takes over.
//!
//! The storms: taps failing one by one until their nodes and their hub cross (merges up
//! to the hub), devices flapping inside the hold-down, stragglers still offline at the
//! resolution, a second storm on the same node inside the correlation window of the
//! first, and a storm over the whole plant that merges up to the root. Isolated faults
//! come and go throughout. Every server runs on a clock that stands at the end of the
//! day, so the outcome depends on the events alone.

use crate::{binary, support};

use async_nats::jetstream;
use binary::{amends, ok};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::eventually;

const NOW: &str = "2026-11-23T12:00:00Z";
const HUBS: usize = 4;
const NODES: usize = 5;
const TAPS: usize = 6;
const DEVICES: usize = 20;

fn nats_url() -> String {
    std::env::var("AMENDS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The whole test needs NATS: skipped with a message without one, except in CI.
async fn nats_or_skip() -> bool {
    support::nats_url_or_skip("detection_differential").await.is_some()
}

/// A stream, subject and consumer of this run's own on the shared NATS server.
#[derive(Clone)]
struct Feed {
    subject: String,
    stream: String,
    consumer: String,
}

impl Feed {
    fn new(label: &str) -> Feed {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let tag = format!("{}{label}{}", std::process::id(), nanos % 1_000_000_007);
        Feed {
            subject: format!("amends-diff.{tag}.events"),
            stream: format!("AMENDS_DIFF_{tag}"),
            consumer: format!("amends-diff-{tag}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The plant and its storms
// ---------------------------------------------------------------------------------------

fn device(h: usize, n: usize, t: usize, d: usize) -> String {
    format!("M{h}.{n}.{t}.{d}")
}

/// root > 4 hubs > 5 nodes each > 6 taps each > 20 customers with a modem, plus one
/// customer without a device on every tap: 2,400 devices, 2,520 customers.
fn write_book(dir: &Path) {
    std::fs::write(
        dir.join("plans.csv"),
        "plan_id,name,monthly_price_minor,currency\nbasic,Basic,7200,USD\n",
    )
    .unwrap();
    let mut topology = String::from("element_id,parent_id,kind,name\nroot,,region,Region\n");
    let mut customers = String::from(
        "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n",
    );
    for h in 0..HUBS {
        topology.push_str(&format!("h{h},root,hub,Hub {h}\n"));
        for n in 0..NODES {
            topology.push_str(&format!("h{h}n{n},h{h},node,Node {h}.{n}\n"));
            for t in 0..TAPS {
                let tap = format!("h{h}n{n}t{t}");
                topology.push_str(&format!("{tap},h{h}n{n},tap,Tap {h}.{n}.{t}\n"));
                for d in 0..=DEVICES {
                    let (id, modem) = if d == DEVICES {
                        (format!("C{tap}x"), String::new())
                    } else {
                        (format!("C{}", device(h, n, t, d)), device(h, n, t, d))
                    };
                    customers.push_str(&format!(
                        "{id},Customer {id},{id}@example.com,,en,UTC,basic,{tap},{modem},1,2024-01-01T00:00:00Z,active\n"
                    ));
                }
            }
        }
    }
    std::fs::write(dir.join("topology.csv"), topology).unwrap();
    std::fs::write(dir.join("customers.csv"), customers).unwrap();
}

/// A small deterministic generator (xorshift), so every run publishes the same storms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Event {
    at: jiff::Timestamp,
    device: String,
    online: bool,
    gasp: bool,
}

impl Event {
    fn line(&self) -> String {
        let state = if self.online { "online" } else { "offline" };
        let gasp = if self.gasp { r#","reason":"dying_gasp""# } else { "" };
        format!(r#"{{"device_id":"{}","state":"{state}","at":"{}"{gasp}}}"#, self.device, self.at)
    }
}

/// `base` + `seconds`, at one-second resolution plus `millis`.
fn at(base: &str, seconds: u64, millis: u64) -> jiff::Timestamp {
    let base: jiff::Timestamp = base.parse().unwrap();
    base + jiff::SignedDuration::from_millis((seconds * 1000 + millis) as i64)
}

/// One outage of `devices`: each reports offline within `spread` seconds of `start`, and
/// back within `spread_back` seconds of `back`; one in 40 flaps inside the hold-down
/// first, and one in 30 (stragglers) comes back only at `late`.
fn outage(
    rng: &mut Rng,
    devices: &[String],
    start: &str,
    spread: u64,
    back: &str,
    spread_back: u64,
    late: &str,
) -> Vec<Event> {
    let mut events = Vec::new();
    for d in devices {
        let off = rng.below(spread);
        let gasp = rng.below(4) == 0;
        if rng.below(20) == 0 {
            // A flap: offline and back 30 s later, inside the 60 s hold-down, then the outage.
            events.push(Event { at: at(start, off, 100), device: d.clone(), online: false, gasp: false });
            events.push(Event { at: at(start, off + 30, 100), device: d.clone(), online: true, gasp: false });
        }
        let down = at(start, off + 40, rng.below(1000));
        events.push(Event { at: down, device: d.clone(), online: false, gasp });
        let back_at =
            if rng.below(30) == 0 { at(late, rng.below(60), 0) } else { at(back, rng.below(spread_back), 0) };
        events.push(Event { at: back_at, device: d.clone(), online: true, gasp: false });
    }
    events
}

fn devices_of(hubs: &[usize], nodes: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for &h in hubs {
        for &n in nodes {
            for t in 0..TAPS {
                for d in 0..DEVICES {
                    out.push(device(h, n, t, d));
                }
            }
        }
    }
    out
}

/// The day's events, in the order of their `at` (a device's own events never tie).
fn storms() -> Vec<Event> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut events = Vec::new();
    // Storm A, 06:10: hub 0's nodes fail one after another, taps first: merges up to h0.
    for n in 0..NODES {
        let start = format!("2026-11-23T06:{:02}:00Z", 10 + 2 * n);
        events.extend(outage(
            &mut rng,
            &devices_of(&[0], &[n]),
            &start,
            90,
            "2026-11-23T06:50:00Z",
            240,
            "2026-11-23T07:45:00Z",
        ));
    }
    // Storm B, 07:00: node 0.0 again, within 15 minutes of storm A's resolution.
    let again: Vec<String> = devices_of(&[0], &[0]);
    events.retain(|e| !(again.contains(&e.device) && e.at > at("2026-11-23T07:00:00Z", 0, 0)));
    let mut b = outage(
        &mut rng,
        &again,
        "2026-11-23T07:05:00Z",
        30,
        "2026-11-23T07:40:00Z",
        60,
        "2026-11-23T07:50:00Z",
    );
    // A straggler of storm A still offline now stays so through storm B (its second
    // offline report is a no-op), back with the others.
    b.retain(|e| {
        e.online
            || !events
                .iter()
                .any(|p| p.device == e.device && !p.online && p.at > at("2026-11-23T06:59:00Z", 0, 0))
    });
    events.extend(b);
    // Storm C, 08:00: nine in ten devices everywhere, hub after hub: merges up to the root.
    let mut all = Vec::new();
    for h in 0..HUBS {
        for d in devices_of(&[h], &(0..NODES).collect::<Vec<_>>()) {
            if rng.below(10) != 0 {
                all.push((h, d));
            }
        }
    }
    for h in 0..HUBS {
        let mine: Vec<String> = all.iter().filter(|(x, _)| *x == h).map(|(_, d)| d.clone()).collect();
        let start = format!("2026-11-23T08:{:02}:00Z", 2 * h);
        events.extend(outage(
            &mut rng,
            &mine,
            &start,
            100,
            "2026-11-23T09:00:00Z",
            600,
            "2026-11-23T10:30:00Z",
        ));
    }
    // Isolated faults all day on hubs 1..3, none enough to open anything.
    for k in 0..30u64 {
        let d = device(
            1 + (k as usize % 3),
            (k as usize * 7) % NODES,
            (k as usize * 5) % TAPS,
            (k as usize * 3) % DEVICES,
        );
        let start = rng.below(3 * 3600);
        let off = at("2026-11-23T06:00:00Z", start, 0);
        let on = at("2026-11-23T06:00:00Z", start + 300 + rng.below(3000), 0);
        // Keep it out of storm C's way: a fault of its own only if it ends before 08:00.
        if on < at("2026-11-23T08:00:00Z", 0, 0) {
            events.push(Event { at: off, device: d.clone(), online: false, gasp: false });
            events.push(Event { at: on, device: d, online: true, gasp: false });
        }
    }
    events.sort_by(|a, b| (a.at, &a.device).cmp(&(b.at, &b.device)));
    // One device's reports must alternate for the storms to read as intended; a device in
    // two overlapping outages keeps its first report of each state.
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    events.retain(|e| {
        let keep = last.get(&e.device) != Some(&e.online);
        if keep {
            last.insert(e.device.clone(), e.online);
        }
        keep
    });
    events
}

// ---------------------------------------------------------------------------------------
// Publishing and serving
// ---------------------------------------------------------------------------------------

/// Publishes the events, ten to a message, on the feed's subject, in order.
async fn publish(feed: &Feed, events: &[Event]) {
    let client = async_nats::connect(nats_url()).await.expect("NATS answered a moment ago");
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: feed.stream.clone(),
        subjects: vec![feed.subject.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    for chunk in events.chunks(10) {
        let text: String = chunk.iter().map(|e| e.line() + "\n").collect();
        js.publish(feed.subject.clone(), text.into()).await.unwrap().await.unwrap();
    }
}

async fn delete_stream(feed: &Feed) {
    let client = async_nats::connect(nats_url()).await.unwrap();
    let _ = jetstream::new(client).delete_stream(&feed.stream).await;
}

/// How far the consumer got: (stream sequence acknowledged up to, messages not yet
/// delivered, delivered and not acknowledged).
async fn consumer_state(feed: &Feed) -> Option<(u64, u64, usize)> {
    let client = async_nats::connect(nats_url()).await.ok()?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&feed.stream).await.ok()?;
    let mut consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config> =
        stream.get_consumer(&feed.consumer).await.ok()?;
    let info = consumer.info().await.ok()?;
    Some((info.ack_floor.stream_sequence, info.num_pending, info.num_ack_pending))
}

struct Server {
    child: Child,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(db: &Path, feed: &Feed, failpoints: &str) -> Server {
        let mut cmd = amends(db, NOW);
        cmd.env("AMENDS_OUTBOX_FILE", db.with_extension("outbox"))
            .env("RUST_LOG", "warn,amends=info")
            .args(["serve", "--listen", "127.0.0.1:0", "--poll-seconds", "1", "--telemetry"])
            .arg(nats_url())
            .args(["--telemetry-subject", &feed.subject])
            .args(["--telemetry-stream", &feed.stream])
            .args(["--telemetry-consumer", &feed.consumer])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if failpoints.is_empty() {
            cmd.env_remove(amends_recovery::failpoint::ENV);
        } else {
            cmd.env(amends_recovery::failpoint::ENV, failpoints);
        }
        let mut child = cmd.spawn().expect("amends serve starts");
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = stderr.clone();
        // Keep draining its log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        let server = Server { child, stderr };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !server.log().contains("serving the API on") && !server.log().contains("failpoint") {
            assert!(std::time::Instant::now() < deadline, "amends serve did not start:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn wait_for_log(&self, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !self.log().contains(text) {
            assert!(std::time::Instant::now() < deadline, "never logged {text:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the failpoint to kill it, and checks that it did (SIGKILL, and said so).
    fn killed_at(mut self, point: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "{point} was never reached:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100)); // the last lines of its log
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {status}\n{}", self.log());
        assert!(self.log().contains(&format!("failpoint {point} reached")), "{}", self.log());
    }

    /// SIGTERM, and the graceful exit it asks for.
    fn terminate(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

/// The store incidents every replayed incident should become, and whether each is merged.
struct Expected {
    /// source key → (resolved at, merged into another)
    incidents: BTreeMap<String, (Option<String>, bool)>,
    /// (source key, customer) → downtime intervals as "start/end"
    downtime: BTreeMap<(String, String), Vec<String>>,
}

/// What `amends replay` detects in `events`, the clock moved on to `NOW`.
fn replay(db: &Path, dir: &Path, events: &[Event]) -> Expected {
    let file = dir.join("events.ndjson");
    std::fs::write(&file, events.iter().map(|e| e.line() + "\n").collect::<String>()).unwrap();
    let csv = dir.join("downtime.csv");
    let out = ok(amends(db, NOW)
        .args(["replay", "--until", NOW, "--events"])
        .arg(&file)
        .arg("--downtime-csv")
        .arg(&csv)
        .output()
        .unwrap());
    let mut keys: BTreeMap<String, String> = BTreeMap::new(); // T-id → source key
    let mut incidents = BTreeMap::new();
    for line in out.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let id = r["incident"].as_str().unwrap_or_default().to_string();
        match r["type"].as_str().unwrap() {
            "opened" => {
                let key = r["source_key"].as_str().unwrap().to_string();
                keys.insert(id, key.clone());
                incidents.insert(key, (None, false));
            }
            "merged" => {
                for m in r["merged"].as_array().unwrap() {
                    incidents.get_mut(&keys[m.as_str().unwrap()]).unwrap().1 = true;
                }
            }
            "resolved" => {
                let key = r["source_key"].as_str().unwrap();
                incidents.get_mut(key).unwrap().0 = Some(r["at"].as_str().unwrap().to_string());
            }
            _ => {}
        }
    }
    let mut downtime: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    for row in reader.records() {
        let row = row.unwrap();
        let key = keys[&row[1]].clone();
        downtime.entry((key, row[0].to_string())).or_default().push(format!("{}/{}", &row[2], &row[3]));
    }
    Expected { incidents, downtime }
}

/// An incident as compared: state, resolved at, merged into (a source key), elements, cause.
type IncidentView = (String, Option<String>, Option<String>, Vec<String>, String);
/// An impact as compared: downtime, follow-up, notified, back at.
type ImpactView = (Vec<String>, bool, i16, Option<String>);

/// Everything detection led to in one database, keyed by what does not depend on the
/// order incidents were numbered in: the incident's source key.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// source key → (state, resolved at, merged into (a source key), elements, cause)
    incidents: BTreeMap<String, IncidentView>,
    /// source key → its timeline: (kind, state, message)
    timelines: BTreeMap<String, Vec<(String, String, String)>>,
    /// (source key, customer) → (downtime, follow-up, notified, back at)
    impacts: BTreeMap<(String, String), ImpactView>,
    /// (customer, source key, kind, seq, channel)
    notices: BTreeSet<(String, String, String, i64, String)>,
    /// (customer, source key, policy, amount)
    credits: BTreeSet<(String, String, String, i64)>,
}

async fn outcome(db: &Path) -> Outcome {
    let store = amends_store::open(&db.display().to_string()).await.unwrap();
    let sources = store.incident_sources().await.unwrap();
    let key_of: BTreeMap<String, String> =
        sources.iter().map(|s| (s.incident_id.to_string(), s.source_key.clone())).collect();
    let mut out = Outcome {
        incidents: BTreeMap::new(),
        timelines: BTreeMap::new(),
        impacts: BTreeMap::new(),
        notices: BTreeSet::new(),
        credits: BTreeSet::new(),
    };
    for i in store.incidents(false).await.unwrap() {
        let key = key_of[i.incident_id.as_str()].clone();
        let merged = sources
            .iter()
            .find(|s| s.incident_id == i.incident_id)
            .and_then(|s| s.merged_into.as_ref())
            .map(|m| key_of[m].clone());
        let mut elements = i.element_ids.clone();
        elements.sort();
        out.incidents.insert(
            key.clone(),
            (
                i.state.as_str().to_string(),
                i.resolved_at.map(|t| t.to_string()),
                merged,
                elements,
                i.cause.clone(),
            ),
        );
        let timeline = store.updates(&i.incident_id).await.unwrap();
        out.timelines.insert(
            key.clone(),
            timeline.into_iter().map(|u| (u.kind, u.state.as_str().to_string(), u.message)).collect(),
        );
        for m in store.impacts(&i.incident_id).await.unwrap() {
            let downtime = m.downtime.iter().map(|(s, e)| format!("{s}/{e}")).collect();
            out.impacts.insert(
                (key.clone(), m.customer_id.to_string()),
                (downtime, m.follow_up, m.notified, m.back_at.map(|t| t.to_string())),
            );
        }
        for n in store.notices_for_incident(&i.incident_id, 1_000_000).await.unwrap() {
            out.notices.insert((
                n.customer_id.to_string(),
                key.clone(),
                n.kind,
                n.seq,
                n.channel.as_str().to_owned(),
            ));
        }
    }
    for c in store.credits(&Default::default()).await.unwrap() {
        let key = key_of.get(&c.source_event).cloned().unwrap_or(c.source_event.clone());
        out.credits.insert((c.customer_id.to_string(), key, c.policy_id, c.amount_minor));
    }
    out
}

/// Waits until the servers have taken every message, recorded every incident the replay
/// found, fanned out every entry and credited every resolved incident; then stops them.
async fn finish(servers: Vec<Server>, db: &Path, feed: &Feed, expected: &Expected, published: u64) {
    // Bounded by progress, not a fixed time: on a loaded machine a debug server takes
    // longer than 30 s, but one that stops taking messages for 30 s is stuck (and fails).
    let mut last = (0, std::time::Instant::now());
    loop {
        let (acked, pending, unacked) = consumer_state(feed).await.unwrap_or_default();
        if acked >= published && pending == 0 && unacked == 0 {
            break;
        }
        if acked > last.0 {
            last = (acked, std::time::Instant::now());
        }
        let logs = || servers.iter().map(Server::log).collect::<Vec<_>>().join("\n---\n");
        assert!(
            last.1.elapsed() < Duration::from_secs(30),
            "no message taken for 30 s ({acked} of {published} acknowledged):\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = amends_store::open(&db.display().to_string()).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            let incidents = store.incidents(false).await.unwrap();
            let settled = incidents.len() == expected.incidents.len()
                && incidents.iter().all(|i| i.resolved_at.is_none() || i.credited_at.is_some())
                && incidents.iter().filter(|i| i.resolved_at.is_some()).count()
                    == expected.incidents.values().filter(|(r, merged)| r.is_some() || *merged).count()
                && store.pending_fanout().await.unwrap().is_empty();
            if settled {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let logs = || servers.iter().map(Server::log).collect::<Vec<_>>().join("\n---\n");
    assert!(waited.is_ok(), "the server did not settle:\n{}", logs());
    for server in servers {
        server.terminate();
    }
}

/// Runs the same events through two servers on one database and one consumer, killing the
/// detecting one twice (the other takes over each time), and returns the database.
async fn run_a_pair(dir: &Path, events: &[Event], expected: &Expected, published: u64) -> std::path::PathBuf {
    let db = dir.join("pair.db");
    ok(amends(&db, NOW).args(["import", "--dir"]).arg(dir).output().unwrap());
    let feed = Feed::new("pair");
    publish(&feed, events).await;
    let first = Server::start(&db, &feed, "detection.applied=1500");
    first.wait_for_log("this server detects");
    // Its count runs only while it detects: from when it takes over from the first.
    let second = Server::start(&db, &feed, "detection.applied=2500");
    first.killed_at("detection.applied");
    second.wait_for_log("this server detects");
    let third = Server::start(&db, &feed, "");
    second.killed_at("detection.applied");
    third.wait_for_log("this server detects");
    let fourth = Server::start(&db, &feed, "");
    finish(vec![third, fourth], &db, &feed, expected, published).await;
    delete_stream(&feed).await;
    db
}

/// What a server that was killed, stopped or paired recorded is what the calm one did.
fn assert_same_as_calm(calm: &Outcome, other: &Outcome, run: &str) {
    assert_eq!(other.incidents, calm.incidents, "{run}: incidents");
    assert_eq!(other.timelines, calm.timelines, "{run}: timelines");
    assert_eq!(other.impacts.len(), calm.impacts.len(), "{run}: impacts");
    assert_eq!(other.impacts, calm.impacts, "{run}: impacts");
    let only = |a: &BTreeSet<_>, b: &BTreeSet<_>| a.difference(b).take(5).cloned().collect::<Vec<_>>();
    assert_eq!(
        (only(&other.notices, &calm.notices), only(&calm.notices, &other.notices)),
        (vec![], vec![]),
        "{run}: notices only it queued, and only the calm server"
    );
    assert_eq!(other.credits, calm.credits, "{run}: ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_stopped_and_restarted_detection_records_what_one_uninterrupted_run_does() {
    if !nats_or_skip().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_book(dir.path());
    let events = storms();
    let published = events.len().div_ceil(10) as u64;
    assert!(events.len() > 5_000, "{} events", events.len());

    // The reference: one server that is never interrupted.
    let calm_db = dir.path().join("calm.db");
    ok(amends(&calm_db, NOW).args(["import", "--dir"]).arg(dir.path()).output().unwrap());
    let calm_feed = Feed::new("calm");
    publish(&calm_feed, &events).await;
    let expected = replay(&calm_db, dir.path(), &events);
    assert!(expected.incidents.len() >= 10, "the storms open incidents: {:?}", expected.incidents);
    assert!(expected.incidents.values().any(|(_, merged)| *merged), "and merge some");
    finish(vec![Server::start(&calm_db, &calm_feed, "")], &calm_db, &calm_feed, &expected, published).await;

    // The same events, through a server killed and stopped along the way.
    let db = dir.path().join("amends.db");
    ok(amends(&db, NOW).args(["import", "--dir"]).arg(dir.path()).output().unwrap());
    let feed = Feed::new("kills");
    publish(&feed, &events).await;
    Server::start(&db, &feed, "detection.logged=800").killed_at("detection.logged");
    Server::start(&db, &feed, "detection.applied=1200").killed_at("detection.applied");
    Server::start(&db, &feed, "detection.recording=4").killed_at("detection.recording");
    Server::start(&db, &feed, "fanout.batch=3").killed_at("fanout.batch");
    // A plain stop in the middle of what is left, then a start to the end.
    let (before, _, _) = consumer_state(&feed).await.unwrap();
    assert!(before < published * 3 / 4, "the kills left work to do: {before} of {published} taken");
    let server = Server::start(&db, &feed, "");
    eventually("more messages taken", async || {
        let (acked, _, _) = consumer_state(&feed).await?;
        (acked >= before + 20).then_some(())
    })
    .await;
    server.terminate();
    finish(vec![Server::start(&db, &feed, "")], &db, &feed, &expected, published).await;
    delete_stream(&feed).await;

    let pair_db = run_a_pair(dir.path(), &events, &expected, published).await;

    let calm = outcome(&calm_db).await;
    let restarted = outcome(&db).await;
    let paired = outcome(&pair_db).await;
    delete_stream(&calm_feed).await;

    // What the replay detects is what both servers recorded.
    let recorded: BTreeMap<String, (Option<String>, bool)> = calm
        .incidents
        .iter()
        .map(|(k, (_, resolved, merged, _, _))| (k.clone(), (resolved.clone(), merged.is_some())))
        .collect();
    let replayed: BTreeMap<String, (Option<String>, bool)> = expected
        .incidents
        .iter()
        .map(|(k, (resolved, merged))| {
            (k.clone(), (if *merged { recorded[k].0.clone() } else { resolved.clone() }, *merged))
        })
        .collect();
    assert_eq!(recorded, replayed, "incidents: server vs amends replay");
    let downtime: BTreeMap<(String, String), Vec<String>> = calm
        .impacts
        .iter()
        .filter(|((key, _), _)| calm.incidents[key].2.is_none())
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    assert_eq!(downtime, expected.downtime, "every customer's downtime: server vs amends replay");

    // And the restarted servers, and the pair, recorded exactly what the calm one did.
    assert_same_as_calm(&calm, &restarted, "killed and restarted");
    assert_same_as_calm(&calm, &paired, "two servers on one consumer");

    // Each customer acknowledged at most once per incident, and told they are back only
    // in an incident that is not merged into another.
    let mut acks: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (customer, key, kind, _, _) in &calm.notices {
        if kind == "acknowledgement" {
            *acks.entry((customer, key)).or_default() += 1;
        }
        if kind == "restored" {
            assert!(calm.incidents[key].2.is_none(), "{customer} told restored in a merged incident {key}");
        }
    }
    assert!(acks.values().all(|&n| n == 1), "acknowledged twice: {acks:?}");
}
