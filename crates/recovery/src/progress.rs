//! How far a long step has got, for an operator watching a terminal: the credit step of a
//! large incident and a fan-out to a million customers take seconds, and a spinner alone
//! says only that something is running.
//!
//! The engine writes here as it goes (atomics, no lock on the hot path but the step's
//! name, set once per step); the CLI reads it a few times a second. Nobody else reads it:
//! it is a view, never a record.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The current step, how many of its items are done, and how many it has.
#[derive(Debug, Default)]
pub struct Progress {
    step: Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
}

/// What [`Progress::read`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressView {
    pub step: String,
    pub done: u64,
    /// 0 when the step's size is not known.
    pub total: u64,
}

impl Progress {
    /// A new step of `total` items (0: unknown), none done.
    pub fn start(&self, step: impl Into<String>, total: u64) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = step.into();
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    /// `n` more items of the current step are done.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// The step is over: nothing is running.
    pub fn finish(&self) {
        self.start(String::new(), 0);
    }

    pub fn read(&self) -> ProgressView {
        ProgressView {
            step: self.step.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_counts_from_zero_and_a_new_one_starts_over() {
        let p = Progress::default();
        p.start("INC-1: computing credits", 10);
        p.advance(4);
        p.advance(3);
        assert_eq!(p.read(), ProgressView { step: "INC-1: computing credits".into(), done: 7, total: 10 });
        p.start("INC-1: writing the ledger", 0);
        assert_eq!(p.read().done, 0);
        p.finish();
        assert_eq!(p.read(), ProgressView { step: String::new(), done: 0, total: 0 });
    }
}
