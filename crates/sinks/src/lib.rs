//! Sinks: where what the engine wrote goes out.
//!
//! **Invariant: a sink only drains.** It reads the outbox and the ledger the engine wrote
//! with deterministic keys, and records what it did; it decides nothing about incidents,
//! notices or credits, so a sink that crashes and runs again sends and exports the same.
//!
//! - [`deliver`]: the outbox dispatcher and its lanes (one per channel), over the
//!   transports of `amends-channels`.
//! - [`export`]: credits out to billing, as CSV or JSON.

pub mod deliver;
pub mod export;
