//! amends: automatic service recovery. The `amends` command line.
//!
//! **Invariant: the command line only parses and dispatches.** Each command reads its
//! arguments and settings and calls the crate that does the work: `amends-recovery` (the
//! engine), `amends-sources`, `amends-sinks`, `amends-server` and `amends-tools`.
//! ARCHITECTURE.md draws the whole house.

pub mod cli;
