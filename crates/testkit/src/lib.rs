//! Test doubles for the real parts amends talks to, shared by the tests of several crates
//! (dev-only: no crate of the product depends on it).
//!
//! **Invariant: a double speaks the real protocol over a real socket on 127.0.0.1**, so a
//! test of a transport or of the whole product exercises the same bytes production does.
//!
//! - [`smtp`]: an SMTP server (mailin's protocol engine) that records what it receives
//!   and can be told to refuse, stall or fail.
//! - [`gateway`]: an HTTP server scripted with the answers of an SMS gateway or a webhook
//!   receiver, recording every request.

pub mod gateway;
pub mod smtp;
