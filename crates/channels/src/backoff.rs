//! When to retry a transient failure, and when to give up.

use serde::Deserialize;

/// Exponential backoff with deterministic jitter and a bounded number of attempts.
///
/// After failed attempt `n` (1-based), the nominal delay is
/// `d(n) = min(max_ms, base_ms * factor^(n-1))` and [`Backoff::delay_ms`] returns a value in
/// `[d(n) / 2, d(n)]`, so no wait ever exceeds `max_ms`. Once `attempts_max` attempts have
/// been made it returns `None`: a notice is tried at most `attempts_max` times, and the total
/// wait is at most `(attempts_max - 1) * max_ms`.
///
/// The jitter spreads retries of many notices that failed together (one relay outage) so
/// they do not all hit the relay again in the same second. It is derived from a seed rather
/// than a random generator so tests and re-runs of the worker compute the same schedule;
/// seed with [`jitter_seed`] of the notice key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    pub base_ms: u64,
    pub factor: u32,
    pub max_ms: u64,
    pub attempts_max: u32,
}

impl Default for Backoff {
    /// 8 attempts with waits of 30 s, 1, 2, 4, 8, 16 and 32 min between them (each shortened
    /// by up to half by the jitter): at most 63.5 min from the first attempt to the last, so a
    /// relay outage of about an hour is ridden out. The 1 h cap matters only for larger
    /// `attempts_max`.
    fn default() -> Self {
        Self { base_ms: 30_000, factor: 2, max_ms: 3_600_000, attempts_max: 8 }
    }
}

impl Backoff {
    /// The delay before the next attempt, given `attempt` attempts already made (1 after the
    /// first failure), or `None` when `attempt >= attempts_max` and the caller should give up.
    ///
    /// Bound: `Some(ms)` always satisfies `d / 2 <= ms <= d` with
    /// `d = min(max_ms, base_ms * factor^(attempt - 1))`, computed with saturating arithmetic
    /// so huge settings cannot overflow. `attempt` 0 is treated like 1.
    pub fn delay_ms(&self, attempt: u32, jitter_seed: u64) -> Option<u64> {
        if attempt >= self.attempts_max {
            return None;
        }
        let nominal = self.nominal_ms(attempt);
        let floor = nominal / 2;
        let span = nominal - floor;
        // span <= 2^63, so span + 1 cannot overflow.
        let jitter = mix(jitter_seed ^ u64::from(attempt)) % (span + 1);
        Some(floor + jitter)
    }

    /// `min(max_ms, base_ms * factor^(attempt - 1))`, saturating.
    fn nominal_ms(&self, attempt: u32) -> u64 {
        let exponent = attempt.saturating_sub(1);
        let growth = u64::from(self.factor).saturating_pow(exponent);
        self.base_ms.saturating_mul(growth).min(self.max_ms)
    }
}

/// A stable 64-bit seed for [`Backoff::delay_ms`] from a notice key (FNV-1a).
///
/// Stable across processes and Rust versions, unlike std's randomly seeded hasher, so a
/// restarted worker computes the same schedule for the same notice.
pub fn jitter_seed(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    key.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// SplitMix64's finaliser: nearby seeds (keys differing by one byte, consecutive attempts)
/// give unrelated outputs.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
