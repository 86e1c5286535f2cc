//! Tools: the guided demo and the benchmark, and the progress bar they and the command
//! line draw.
//!
//! **Invariant: nothing in the product depends on the tools.** Their dependencies (a local
//! SMTP sink, an HTTP load client, a terminal progress bar) stay out of the crates that
//! recover service; only the command line, which runs them, depends on this crate.
//!
//! - [`demo`]: a synthetic provider and the demo `amends demo` walks through.
//! - [`bench`]: `amends bench`, each figure beside a floor measured in the same run.
//! - [`terminal`]: the progress bar and spinner of long steps.

pub mod bench;
pub mod demo;
pub mod terminal;
