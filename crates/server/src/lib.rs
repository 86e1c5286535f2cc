//! The server: the HTTP JSON API, its auth, its OpenAPI description, the customer's pages,
//! the worker that runs beside it, and the settings that put them together.
//!
//! **Invariant: the server holds no recovery logic.** A handler checks what it is given,
//! calls the engine (`amends-recovery`) or a source (`amends-sources`), and maps the answer
//! onto HTTP; what a request may change is decided below it.
//!
//! - [`api`]: the handlers, one per route.
//! - [`auth`]: bearer tokens and scopes (admin ⊇ operator ⊇ read).
//! - [`error`]: the one error body, and how every failure maps onto a status.
//! - [`limits`]: body sizes and time limits, documented and enforced in one place.
//! - [`openapi`]: the description served at `/openapi.json`.
//! - [`words`]: the languages the customer-facing pages are written in (those of the
//!   notices), which one a page is in, and how it picks its words.
//! - [`worker`] (beside it, not HTTP): the loop that runs [`Engine::tick`] and
//!   delivery, every poll or at once when an API call has recorded something.
//!
//! Entry points: [`serve`] (what `amends serve` runs), [`serve_listener`] (the same on a
//! listener the caller bound, stopped by a future), [`serve_api`] (the API alone, for a
//! caller that drives the worker's steps itself, as the tests do) and [`router`].

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod appointments;
pub mod auth;
pub mod cases;
pub mod error;
mod kept;
pub mod limits;
pub mod my;
pub mod notices;
pub mod openapi;
pub mod pages;
pub mod rate;
pub mod schemas;
pub mod settings;
pub mod status;
pub mod surveys;
pub mod telemetry;
pub mod words;
pub mod worker;

pub use limits::{
    BODY_BYTES_MAX, BODY_DRAIN_BYTES_MAX, IMPORT_BODY_BYTES_MAX, IMPORT_TIMEOUT, REQUEST_TIMEOUT,
    UNSUBSCRIBE_BODY_BYTES_MAX,
};

use amends_recovery::Engine;
use amends_recovery::tokens::Scope;
use amends_sinks::deliver::Dispatcher;
use amends_sources::alerts::AlertSettings;
use amends_sources::detection::nats::NatsSource;
use amends_sources::detection::{Intake, ServiceConfig};
use anyhow::Context;
use auth::{AgentGate, Gate, require_agent, require_scope};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Wakes the worker when an API call has recorded something.
    wake: Arc<Notify>,
    /// Finished worker passes, so that a caller can wait for one instead of sleeping.
    passes: Arc<watch::Sender<u64>>,
    /// One import at a time: each may hold hundreds of MiB of rows in memory.
    import_slot: Arc<Semaphore>,
    /// Detection to start beside the worker, if this server runs it.
    detection: Option<Arc<DetectionStart>>,
    /// How sources hand events to detection, once it runs.
    intake: Arc<OnceLock<Intake>>,
    /// The per-client limit of the routes a stranger reaches without a token.
    public_rate: rate::ClientRateLimit,
    /// The status page's snapshot, rebuilt at most once a second.
    status: Arc<status::StatusCache>,
    /// Customers' pages as last rendered, served again to a reload for up to a second.
    kept_pages: Arc<kept::KeptPages>,
    /// The Alertmanager receiver's settings (`[alerts]`).
    alerts: Arc<AlertSettings>,
}

/// What [`serve_listener`] starts for detection: the task, and optionally a NATS consumer.
#[derive(Debug, Clone)]
pub struct DetectionStart {
    pub config: ServiceConfig,
    pub nats: Option<NatsSource>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>) -> Self {
        AppState {
            engine,
            wake: Arc::new(Notify::new()),
            passes: Arc::new(watch::channel(0).0),
            import_slot: Arc::new(Semaphore::new(1)),
            detection: None,
            intake: Arc::new(OnceLock::new()),
            public_rate: rate::ClientRateLimit::new(rate::HttpSettings::default()),
            status: Arc::default(),
            kept_pages: Arc::default(),
            alerts: Arc::new(AlertSettings::default()),
        }
    }

    /// This state, with the Alertmanager receiver set up as `settings` say.
    pub fn with_alerts(mut self, settings: AlertSettings) -> Self {
        self.alerts = Arc::new(settings);
        self
    }

    /// This state, with `limit` on the routes a stranger reaches without a token.
    pub fn with_public_rate(mut self, limit: rate::ClientRateLimit) -> Self {
        self.public_rate = limit;
        self
    }

    /// This state, for a server that runs detection as `start` says.
    pub fn with_detection(mut self, start: DetectionStart) -> Self {
        self.detection = Some(Arc::new(start));
        self
    }

    /// What detection needs of this server: its engine and its worker's wake-up.
    fn detection_host(&self) -> amends_sources::detection::Host {
        amends_sources::detection::Host { engine: self.engine.clone(), wake: self.wake.clone() }
    }

    /// The way into detection, when this server runs it.
    pub fn intake(&self) -> Option<&Intake> {
        self.intake.get()
    }

    /// Asks the worker for a pass now. A request made during a pass is kept, so the
    /// worker passes again right after: nothing recorded waits for the next poll.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    /// The number of worker passes finished so far; `changed()` on it waits for the next.
    pub fn worker_passes(&self) -> watch::Receiver<u64> {
        self.passes.subscribe()
    }
}

/// The whole API, with its limits, auth and request logging.
///
/// Layers run outside in: request logging, the time limit, then per route the token
/// check, and only after it the body limit, so a caller without a valid token can make
/// the server read no body at all.
pub fn router(state: AppState) -> Router {
    let gate = |needed| {
        let gate = Gate { store: state.engine.store().clone(), clock: state.engine.clock().clone(), needed };
        middleware::from_fn_with_state(gate, require_scope)
    };
    let body_limit = |bytes| middleware::from_fn_with_state(bytes, limits::limit_body);
    let deadline = |limit| middleware::from_fn_with_state(limit, limits::enforce_deadline);
    let per_client = middleware::from_fn_with_state(state.public_rate.clone(), rate::limit_per_client);
    let public = Router::new()
        .route("/health", get(api::health))
        .route("/openapi.json", get(openapi::openapi_json))
        // The public status page every notice links to; no token, nothing personal.
        .route("/status", get(status::status_page))
        .route("/status.json", get(status::status_json))
        .route("/status.atom", get(status::status_atom))
        .route("/status/events", get(status::status_events))
        .route("/static/live.js", get(pages::live_js))
        .route("/static/page.css", get(pages::page_css))
        .route("/status/{id}", get(status::incident_page))
        .merge(
            // No token: the customer follows a signed link from a message.
            Router::new()
                .route("/v1/unsubscribe", get(notices::unsubscribe_page).post(notices::unsubscribe_post))
                .route("/v1/surveys/answer", get(surveys::question).post(surveys::answer))
                .route("/my", get(my::page))
                .route("/my/still-offline", axum::routing::post(my::still_offline))
                .route("/my/preferences", axum::routing::post(my::preferences))
                .route("/my/rebook", axum::routing::post(my::rebook))
                .route("/my/claim", axum::routing::post(my::claim))
                .route("/my/fresh-link", axum::routing::post(my::fresh_link))
                .route("/my/leave", get(my::leave_page).post(my::leave))
                .route_layer(per_client),
        )
        .route_layer(body_limit(UNSUBSCRIBE_BODY_BYTES_MAX));
    let read = Router::new()
        .route("/v1/incidents", get(api::list_incidents))
        .route("/v1/incidents/{id}", get(api::show_incident))
        .route("/v1/incidents/{id}/impacts", get(api::incident_impacts))
        .route("/v1/incidents/{id}/metrics", get(cases::incident_metrics))
        .route("/v1/alerts/ignored", get(alerts::ignored_alerts))
        .route("/v1/customers/{id}/notices", get(api::customer_notices))
        .route("/v1/customers/{id}/credits", get(api::customer_credits))
        .route("/v1/credits", get(api::list_credits))
        .route("/v1/notices", get(notices::list_notices))
        .route("/v1/notices/{*key}", get(notices::show_notice))
        .route("/v1/customers/{id}/preferences", get(notices::show_preferences))
        .route("/v1/quarantine", get(notices::list_quarantine))
        .route("/v1/agents", get(cases::list_agents))
        .route("/v1/surveys/report", get(surveys::report))
        .route("/v1/metrics/recovery", get(cases::recovery_metrics))
        .route_layer(body_limit(BODY_BYTES_MAX))
        .route_layer(gate(Scope::Read));
    // The actor is the agent the token speaks for (see `auth::require_agent`).
    let agent = Router::new()
        .route("/v1/cases", post(cases::open_case).get(cases::list_cases))
        .route("/v1/cases/{id}", get(cases::show_case))
        .route("/v1/cases/{id}/actions", post(cases::act_on_case))
        .route("/v1/contacts", post(cases::take_contact))
        .route("/v1/appointments", post(appointments::book).get(appointments::list))
        .route("/v1/appointments/{reference}", get(appointments::show))
        .route("/v1/appointments/{reference}/actions", post(appointments::act))
        .route_layer(body_limit(BODY_BYTES_MAX))
        .route_layer(middleware::from_fn_with_state(
            AgentGate { engine: state.engine.clone() },
            require_agent,
        ));
    let operator = Router::new()
        .route("/v1/incidents", post(api::declare))
        .route("/v1/incidents/{id}/updates", post(api::update_incident))
        .route("/v1/incidents/{id}/resolve", post(api::resolve_incident))
        .route("/v1/incidents/{id}/confirm", post(api::confirm_incident))
        .route("/v1/alerts/alertmanager", post(alerts::alertmanager_webhook))
        .route("/v1/customers/{id}/preferences", axum::routing::patch(notices::change_preferences))
        .route("/v1/channels/sms/receipts", post(notices::sms_receipts))
        .route("/v1/channels/email/bounces", post(notices::email_bounces))
        .route("/v1/quarantine/{channel}/{recipient}", axum::routing::delete(notices::lift_quarantine))
        .route("/v1/customers", post(accounts::sign_up))
        .route("/v1/customers/{id}/cancellation", post(accounts::cancel))
        .route_layer(body_limit(BODY_BYTES_MAX))
        .route_layer(gate(Scope::Operator));
    let directory = Router::new()
        .route("/v1/agents", axum::routing::put(cases::put_agents))
        .route_layer(body_limit(BODY_BYTES_MAX))
        .route_layer(gate(Scope::Admin));
    let telemetry = Router::new()
        .route("/v1/telemetry/events", post(telemetry::post_events))
        .route_layer(body_limit(amends_sources::detection::intake::BATCH_BODY_BYTES_MAX))
        .route_layer(gate(Scope::Operator));
    let admin = Router::new()
        .route("/v1/import", post(api::import))
        .route_layer(body_limit(IMPORT_BODY_BYTES_MAX))
        .route_layer(gate(Scope::Admin))
        .layer(deadline(IMPORT_TIMEOUT));
    let standard = public
        .merge(read)
        .merge(operator)
        .merge(telemetry)
        .merge(directory)
        .merge(agent)
        .layer(deadline(REQUEST_TIMEOUT));
    Router::new()
        .merge(standard)
        .merge(admin)
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::no_method)
        // `limits::limit_body` bounds every body before an extractor reads it.
        .layer(DefaultBodyLimit::disable())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Binds `listen`, reports the bound address on `ready`, and serves the API and the worker
/// until Ctrl-C or SIGTERM; then stops accepting, finishes the requests in flight and lets
/// the worker finish its pass.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    engine: Arc<Engine>,
    detection: Option<DetectionStart>,
    dispatcher: Dispatcher,
    listen: &str,
    poll: Duration,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    http: rate::HttpSettings,
    alerts: AlertSettings,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "serving the HTTP API");
    if let Some(ready) = ready {
        // The caller may have stopped waiting; serving goes on regardless.
        let _ = ready.send(addr);
    }
    let mut state =
        AppState::new(engine).with_public_rate(rate::ClientRateLimit::new(http)).with_alerts(alerts);
    if let Some(start) = detection {
        state = state.with_detection(start);
    }
    serve_listener(listener, state, dispatcher, poll, shutdown_signal()).await
}

/// Serves the API on `listener` and runs the worker (a pass every `poll`, or at once when
/// woken), until `shutdown` completes; then shuts down gracefully as [`serve`] does.
pub async fn serve_listener(
    listener: TcpListener,
    state: AppState,
    dispatcher: Dispatcher,
    poll: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let worker = crate::worker::Worker {
        engine: state.engine.clone(),
        dispatcher: Arc::new(dispatcher),
        wake: state.wake.clone(),
        passes: state.passes.clone(),
        poll,
    };
    let detection = start_detection(&state, &stopped);
    let worker = tokio::spawn(worker.run(stopped));
    // The worker stops when `stop` says so or is dropped, so it stops too if serving fails.
    let served = serve_api(listener, state, async move {
        shutdown.await;
        stop.send_replace(true);
    })
    .await;
    let joined = worker.await;
    for task in detection {
        task.await.context("detection panicked")?;
    }
    served?;
    joined.context("the worker panicked")
}

/// Starts detection (and its NATS consumer) if the state asks for it; their tasks.
fn start_detection(state: &AppState, stopped: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(start) = state.detection.clone() else { return Vec::new() };
    let (intake, task) =
        amends_sources::detection::start(state.detection_host(), start.config.clone(), stopped.clone());
    let mut tasks = vec![task];
    if let Some(nats) = start.nats.clone() {
        tasks.push(tokio::spawn(amends_sources::detection::nats::run(nats, intake.clone(), stopped.clone())));
    }
    // Set once per state: a second serve of the same state keeps the first intake.
    let _ = state.intake.set(intake);
    tasks
}

/// Serves the API alone, without the worker, until `shutdown` completes. For a caller
/// that runs [`Engine::tick`] and delivery itself.
pub async fn serve_api(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_router(listener, router(state), ConnectionLimits::default(), shutdown).await;
    Ok(())
}

/// How long a client has to send a request's headers, and how many connections are
/// served at once: a client that sends its request a byte at a time, or opens thousands
/// of connections and sends nothing, must not hold the server (issue 18, item 8).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From the connection's first byte of a request (or its opening) to the end of the
    /// request's headers. Past it, the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; the next one is accepted when one closes (the kernel's
    /// backlog holds the rest).
    pub connections_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { header_read_timeout: HEADER_READ_TIMEOUT, connections_max: CONNECTIONS_MAX }
    }
}

pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECTIONS_MAX: usize = 1_024;

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and waits for the connections in flight to finish their requests. Hyper's
/// own connection builder, as `axum::serve` uses it, with a timer so its header-read
/// timeout applies (axum's `serve` sets none).
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The peer's address, for what limits per client (`rate`), as axum's
        // `into_make_service_with_connect_info` would hand it.
        let app = app.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let service = hyper_util::service::TowerToHyperService::new(app);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Completes on Ctrl-C or SIGTERM. If a signal cannot be watched, that one never fires
/// (rather than stopping the server at once).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot watch for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot watch for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight and the worker's pass");
}
