//! amends: automatic service recovery.
//!
//! The library behind the `amends` binary. Data flows from sources (CSV import, the HTTP
//! API, the CLI) through the recovery engine (incidents, fan-out of notices, the credit
//! step) to sinks (the delivery worker and its transports, the credit export).
//!
//! - [`import`]: CSV book in, checked whole, written in one transaction.
//! - [`book`]: the book in memory, indexed for impact.
//! - [`recovery`]: the engine: declare, update, resolve, watchdog, fan-out, credits.
//! - [`deliver`]: the outbox worker.
//! - [`http`]: the JSON API, its auth and its OpenAPI description; [`worker`]: the ticks and
//!   delivery `amends serve` runs beside it.
//! - [`export`]: credits out, as CSV or JSON.
//! - [`detection`]: detection in the server: device events in (HTTP, NATS JetStream), incidents,
//!   impacts and notices out.
//! - [`telemetry`]: `[detection]` settings and `amends replay` (device events → incidents).
//! - [`alerts`]: the Prometheus Alertmanager webhook receiver.
//! - [`policies`]: `amends policy eval` and `amends policy test` over files.
//! - [`demo`] and [`bench`]: a synthetic provider, the guided demo and the benchmark.
//! - [`settings`] and [`cli`]: configuration and the command line; [`terminal`]: the
//!   progress bar they, the demo and the bench draw.
//! - [`failpoint`]: named points where a crash test has the process killed.

pub mod alerts;
pub mod bench;
pub mod book;
pub mod cli;
pub mod clock;
pub mod deliver;
pub mod demo;
pub mod detection;
pub mod export;
pub mod failpoint;
pub mod http;
pub mod import;
pub mod optout;
pub mod policies;
pub mod recovery;
pub mod settings;
pub mod telemetry;
pub mod terminal;
pub mod tokens;
pub mod unsubscribe;
pub mod worker;
