//! A real amends server on 127.0.0.1:0 over a fresh SQLite file, and a client for it.
//!
//! The clock is a [`ManualClock`]: tests move it with `set`, never by sleeping. By default
//! the server runs without its background worker and the test runs the worker's two steps
//! itself ([`TestServer::tick`], [`TestServer::deliver`]), so every outcome is exact.

// Each test binary that includes this module uses its own part of it.
#![allow(dead_code)]

use amends_channels::FileTransport;
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_recovery::clock::ManualClock;
use amends_recovery::tokens::{self, Scope};
use amends_recovery::{Engine, EngineConfig, TickReport};
use amends_server::{AppState, DetectionStart, serve_api, serve_listener};
use amends_sinks::deliver::{DeliveryReport, Dispatcher, Lane};
use jiff::Timestamp;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---- services a test needs beyond cargo ----

/// Whether a test that needs a service it cannot find fails (in CI, where `.ci/run`
/// starts or installs every one) rather than skipping with a message.
fn missing_service_fails() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// Says a test is skipped for want of `what`, or, in CI, fails it.
pub fn skip_without(test: &str, what: &str, how: &str) {
    assert!(!missing_service_fails(), "{test} needs {what}; {how}");
    eprintln!("skipped {test}: it needs {what} ({how})");
}

/// The NATS server with JetStream the tests that need one use: `AMENDS_TEST_NATS_URL`, or
/// `nats://127.0.0.1:4222`. `None` (the test is skipped, with a message) when none answers,
/// except in CI, where that fails the test.
pub async fn nats_url_or_skip(test: &str) -> Option<String> {
    let url = std::env::var("AMENDS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let why = match tokio::time::timeout(Duration::from_secs(3), async_nats::connect(&url)).await {
        Ok(Ok(_)) => return Some(url),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 3 s".to_string(),
    };
    skip_without(
        test,
        &format!("NATS with JetStream at {url} ({why})"),
        "run `nats-server -js`, or point AMENDS_TEST_NATS_URL at one",
    );
    None
}

// ---- a small book: three nodes under two hubs ----

pub const PLANS: &str = "plan_id,name,monthly_price_minor,currency\n\
basic,Basic 100,4999,USD\n\
fast,Fast 1000,7999,USD\n";

/// north ─┬─ hub1 ─┬─ node1
///        │        └─ node2
///        └─ hub2 ─── node3
pub const TOPOLOGY: &str = "element_id,parent_id,kind,name\n\
north,,region,North\n\
hub1,north,hub,Hub 1\n\
node1,hub1,node,Node 1\n\
node2,hub1,node,Node 2\n\
hub2,north,hub,Hub 2\n\
node3,hub2,node,Node 3\n";

/// Under hub1: C1 (email), C2 (SMS only, on the hub itself), C3 (cancelled), C5 (New
/// York, billed on the 15th). C4 is under hub2, outside the outage.
pub const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status\n\
C1,Ana,ana@example.com,+14155550101,en-US,UTC,fast,node1,M1,1,2024-01-01T00:00:00Z,active\n\
C2,Bo,,+14155550102,en,Europe/Paris,basic,hub1,,1,2024-01-01T00:00:00Z,active\n\
C3,Cy,cy@example.com,,en,UTC,basic,node2,M3,1,2024-01-01T00:00:00Z,cancelled\n\
C4,Di,di@example.com,,en,UTC,basic,node3,M4,1,2024-01-01T00:00:00Z,active\n\
C5,Ed,ed@example.com,,en-US,America/New_York,basic,node2,M5,15,2024-01-01T00:00:00Z,active\n";

/// Polls `check` until it gives a value, for at most 30 s: for outcomes of a server's
/// background tasks, which a test waits for rather than sleeping a fixed time.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Where every test's clock starts.
pub const START: &str = "2026-11-23T12:00:00Z";

/// A client straight to 127.0.0.1 that does not follow redirects, to see the 303 a page's
/// form answers with.
pub fn no_redirects() -> reqwest::Client {
    amends_channels::http_client_builder()
        .expect("an HTTP client")
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s:?} is not an instant: {e}"))
}

pub enum Worker {
    /// No background worker: the test calls `tick` and `deliver`.
    DrivenByTest,
    /// `serve_listener` with its worker, a pass every `poll` or when woken.
    Background { poll: Duration },
    /// `serve_listener` with its worker (woken by what it records, else hourly) and
    /// detection as `start` says.
    Detecting(Box<DetectionStart>),
}

pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub engine: Arc<Engine>,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub admin: String,
    pub operator: String,
    pub read: String,
    /// Present when the test drives delivery itself.
    dispatcher: Option<Dispatcher>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    pub dir: TempDir,
}

/// An answer: status, headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Email notices go to `email.txt`, SMS to `sms.txt`, in the test's directory.
fn dispatcher(engine: &Engine, dir: &Path) -> Dispatcher {
    let lanes = vec![
        Lane::new("email", Arc::new(FileTransport::new(dir.join("email.txt")))),
        Lane::new("sms", Arc::new(FileTransport::new(dir.join("sms.txt")))),
    ];
    Dispatcher::new(engine.store().clone(), engine.clock().clone(), lanes)
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Worker::DrivenByTest).await
    }

    pub async fn start_with(worker: Worker) -> Self {
        Self::start_limited(worker, None).await
    }

    /// As [`TestServer::start_with`], with `public_rate` on the token-less routes in place
    /// of the default limit.
    pub async fn start_limited(
        worker: Worker,
        public_rate: Option<amends_server::rate::ClientRateLimit>,
    ) -> Self {
        Self::start_configured(worker, public_rate, Policy::builtin()).await
    }

    /// A server driven by the test that credits under `policy` alone.
    pub async fn start_with_policy(policy: Policy) -> Self {
        Self::start_configured(Worker::DrivenByTest, None, policy).await
    }

    async fn start_configured(
        worker: Worker,
        public_rate: Option<amends_server::rate::ClientRateLimit>,
        policy: Policy,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("amends.db").display().to_string();
        let store = amends_store::open(&db).await.expect("a fresh SQLite store");
        let clock = Arc::new(ManualClock::new(ts(START)));
        let engine = Arc::new(Engine::new(
            store,
            clock.clone(),
            Templates::builtin(),
            policy,
            EngineConfig::default(),
        ));
        let token = |scope| tokens::create(engine.store().as_ref(), scope, "http_api test", ts(START));
        let admin = token(Scope::Admin).await.expect("an admin token");
        let operator = token(Scope::Operator).await.expect("an operator token");
        let read = token(Scope::Read).await.expect("a read token");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("the bound address");
        let mut state = AppState::new(engine.clone());
        if let Some(limit) = public_rate {
            state = state.with_public_rate(limit);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (task, dispatcher) = match worker {
            Worker::DrivenByTest => (
                tokio::spawn(serve_api(listener, state.clone(), shutdown)),
                Some(dispatcher(&engine, dir.path())),
            ),
            Worker::Background { poll } => {
                let d = dispatcher(&engine, dir.path());
                (tokio::spawn(serve_listener(listener, state.clone(), d, poll, shutdown)), None)
            }
            Worker::Detecting(start) => {
                let d = dispatcher(&engine, dir.path());
                let state = state.clone().with_detection(*start);
                let poll = Duration::from_secs(3600);
                (tokio::spawn(serve_listener(listener, state, d, poll, shutdown)), None)
            }
        };
        // Straight to 127.0.0.1, whatever proxy the environment names.
        let http =
            amends_channels::http_client_builder().unwrap().no_proxy().build().expect("an HTTP client");
        TestServer {
            base: format!("http://{addr}"),
            addr,
            http,
            engine,
            state,
            clock,
            admin,
            operator,
            read,
            dispatcher,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    /// One pass of the engine's steps, as the worker would run it.
    pub async fn tick(&self) -> TickReport {
        self.engine.tick().await.expect("a tick")
    }

    /// Delivers every due notice, as the worker would.
    pub async fn deliver(&self) -> DeliveryReport {
        let dispatcher = self.dispatcher.as_ref().expect("delivery is driven by the test");
        dispatcher.deliver_due().await.expect("a delivery pass")
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let response = req.send().await.expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("status {status}: body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        });
        Reply { status, headers, body }
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path, token).json(body)).await
    }

    /// Stops the server as Ctrl-C would, and returns what serving returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("the server task"),
            None => Ok(()),
        }
    }

    pub fn outbox(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }
}
