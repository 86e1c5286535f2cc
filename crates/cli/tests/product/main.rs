//! The product's integration tests: the binary end to end, the server over real HTTP, crash
//! tests, the README's and the docs' examples run as written, and the house's shape.
//!
//! One test binary for the crate (issue 19): one link instead of one per file, and the
//! helpers below shared rather than compiled into each. `cargo test -p amends -- NAME`
//! runs the tests whose path holds NAME (`-- crash::`, `-- readme`).

mod binary;
use amends_testkit::gateway;
use amends_testkit::smtp as smtp_server;
mod support;

mod alertmanager;
mod alertmanager_real;
mod appointment_crash;
mod book_cache;
mod cases_api;
mod connection_limits;
mod crash;
mod credit_step;
mod customer_page;
mod delivery_crash;
mod detection;
mod detection_crash;
mod detection_differential;
mod docs_policies;
mod e2e;
mod e2e_accounts;
mod e2e_appointments;
mod e2e_cases;
mod e2e_surveys;
mod e2e_tokens;
mod error_bodies;
mod export;
mod http_api;
mod impact_stages;
mod module_graph;
mod notices_api;
mod openapi;
mod public_rate;
mod readme;
mod recovery_api;
mod replay;
mod retention;
mod shipped_policies;
mod smtp_delivery;
mod status_page;
mod web_bench;
