//! The one source of "now" for everything outside the core.
//!
//! Production uses the system clock. Tests, the CLI's `--now` and the demo use a clock
//! that only moves when told to, so no test ever sleeps to wait for time to pass.

use jiff::{SignedDuration, Timestamp};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// `now` to the clock's full precision, for what must not lag by up to a second:
    /// detection moving its clock on when events stop (see `detection`). Recorded instants
    /// use `now`.
    fn now_precise(&self) -> Timestamp {
        self.now()
    }
}

/// Wall-clock time, truncated to the second (amends keeps instants to the second).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_second(Timestamp::now())
    }

    fn now_precise(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Mutex::new(truncate_to_second(at)))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = truncate_to_second(at);
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = after(*now, by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn truncate_to_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `t + d`, saturating at the ends of time instead of failing.
pub fn after(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}
