//! Sources: what tells amends that service has failed or come back.
//!
//! **Invariant: a source knows no HTTP framework.** Each turns its input into calls on the
//! engine (`amends-recovery`): the server's routes and the command line hand it bytes or
//! parsed bodies, and map its errors onto their own.
//!
//! - [`alerts`]: the Prometheus Alertmanager webhook: firing and resolved alerts in,
//!   incidents declared and resolved.
//! - [`telemetry`]: `[detection]` settings and `amends replay` (device events → incidents).
//! - [`detection`]: detection in the server: device events in (HTTP intake, NATS JetStream),
//!   incidents, impacts and notices out.
//! - [`policies`]: credit policy files, checked and evaluated (`amends policy eval|test`).

pub mod alerts;
pub mod detection;
pub mod policies;
pub mod telemetry;
