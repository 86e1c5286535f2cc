//! Named points where a test can have the process killed, so that a crash test kills it
//! at a place it chose (after N events, in the middle of recording an incident, between
//! two batches of a fan-out) rather than after a guessed fraction of a measured run.
//!
//! `AMENDS_FAILPOINTS=detection.applied=1500,fanout.batch=3` kills the process with
//! SIGKILL (no destructor, no flush, exactly as `kill -9` from outside) when the named
//! point has been passed that many times in this process. Unset, every point is one
//! relaxed atomic load. Production never sets it; it is read once, at the first point.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms failpoints.
pub const ENV: &str = "AMENDS_FAILPOINTS";

/// A point a server passes once per device event it has written to the event log, before
/// the source is answered (so before the event is acknowledged or detected from).
pub const DETECTION_LOGGED: &str = "detection.logged";
/// A point the detecting server passes once per device event it has taken from the log
/// into the detector, before what it detects is recorded.
pub const DETECTION_APPLIED: &str = "detection.applied";
/// A point detection passes once per incident it records as opened.
pub const DETECTION_RECORDING: &str = "detection.recording";
/// A point the fan-out passes once per batch of notices it writes (of restoration, credit
/// or any other notices; at most `[delivery] fanout_batch_rows` a batch).
pub const FANOUT_BATCH: &str = "fanout.batch";
/// A point a resolution (an operator's, or an alert's) passes once it is recorded in the
/// incident's timeline, before any notice or credit that follows from it is written.
pub const RESOLUTION_RECORDED: &str = "resolution.recorded";
/// A point the credit step passes once per incident whose ledger rows it has written (all
/// of an incident's rows land in one transaction), before its credit notices are queued.
pub const CREDITS_WRITTEN: &str = "credits.written";
/// A point the appointment step passes seven times per failed visit it makes good, once
/// after each step: the failure recorded, the compensation written, the slots held, the
/// case opened, the compensation recorded on the case, the apology queued, the visit
/// marked checked. Armed at `7 * k + s`, it kills after step `s` of the `k + 1`th visit.
pub const APPOINTMENT_STEP: &str = "appointment.step";
/// The steps [`APPOINTMENT_STEP`] is passed after, per failed visit.
pub const APPOINTMENT_STEPS: u64 = 7;

struct Armed {
    at: u64,
    passed: AtomicU64,
}

fn armed() -> &'static HashMap<String, Armed> {
    static ARMED: OnceLock<HashMap<String, Armed>> = OnceLock::new();
    ARMED.get_or_init(|| parse(&std::env::var(ENV).unwrap_or_default()))
}

fn parse(spec: &str) -> HashMap<String, Armed> {
    spec.split(',')
        .filter_map(|item| {
            let (name, at) = item.trim().split_once('=')?;
            let at = at.trim().parse().ok().filter(|&n| n > 0)?;
            Some((name.trim().to_string(), Armed { at, passed: AtomicU64::new(0) }))
        })
        .collect()
}

/// Passes `name` `times` times; kills the process if that reaches the armed count.
pub fn pass(name: &str, times: u64) {
    let armed = armed();
    if armed.is_empty() {
        return;
    }
    if let Some(point) = armed.get(name) {
        let before = point.passed.fetch_add(times, Ordering::SeqCst);
        if before < point.at && before + times >= point.at {
            eprintln!("amends: failpoint {name} reached ({} passes): killing this process", before + times);
            // SAFETY: kill(2) on our own pid with a constant signal; no memory is touched.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_spec_names_points_and_counts() {
        let armed = parse("detection.applied=1500, fanout.batch=3,bad,zero=0,x=y");
        assert_eq!(armed.len(), 2);
        assert_eq!(armed["detection.applied"].at, 1500);
        assert_eq!(armed["fanout.batch"].at, 3);
        assert!(parse("").is_empty());
    }
}
