//! Backoff: growth, cap, give-up, jitter bounds and reproducibility.

use amends_channels::{Backoff, jitter_seed};

const SMALL: Backoff = Backoff { base_ms: 1_000, factor: 3, max_ms: 20_000, attempts_max: 6 };

/// Asserts the delay before `attempt`'s retry lies in `[low, high]`.
fn check_within(backoff: &Backoff, attempt: u32, seed: u64, low: u64, high: u64) {
    let delay =
        backoff.delay_ms(attempt, seed).unwrap_or_else(|| panic!("attempt {attempt} should be retried"));
    assert!((low..=high).contains(&delay), "attempt {attempt} seed {seed}: {delay} not in [{low}, {high}]");
}

#[test]
fn grows_by_factor_then_caps_within_half_to_full_bounds() {
    // d(n) = min(20 000, 1 000 * 3^(n-1)): 1 000, 3 000, 9 000, 20 000 (27 000 capped), 20 000.
    let table =
        [(1, 500, 1_000), (2, 1_500, 3_000), (3, 4_500, 9_000), (4, 10_000, 20_000), (5, 10_000, 20_000)];
    for seed in 0..2_000 {
        for (attempt, low, high) in table {
            check_within(&SMALL, attempt, seed, low, high);
        }
    }
}

#[test]
fn jitter_reaches_both_ends_of_the_range() {
    // With a 1 ms nominal delay the range is {0, 1}; both must occur, or the jitter is dead.
    let tiny = Backoff { base_ms: 1, ..SMALL };
    let seen: std::collections::BTreeSet<u64> = (0..64).filter_map(|seed| tiny.delay_ms(1, seed)).collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn gives_up_at_attempts_max() {
    assert!(SMALL.delay_ms(5, 7).is_some());
    assert_eq!(SMALL.delay_ms(6, 7), None);
    assert_eq!(SMALL.delay_ms(7, 7), None);
    assert_eq!(SMALL.delay_ms(u32::MAX, 7), None);
    let never = Backoff { attempts_max: 0, ..SMALL };
    assert_eq!(never.delay_ms(0, 7), None);
}

#[test]
fn attempt_zero_is_treated_like_the_first() {
    for seed in [0, 1, u64::MAX] {
        check_within(&SMALL, 0, seed, 500, 1_000);
    }
}

#[test]
fn is_deterministic_and_seed_dependent() {
    let seed = jitter_seed("notice-1");
    let first: Vec<Option<u64>> = (1..=8).map(|n| Backoff::default().delay_ms(n, seed)).collect();
    let again: Vec<Option<u64>> = (1..=8).map(|n| Backoff::default().delay_ms(n, seed)).collect();
    assert_eq!(first, again);
    let other = jitter_seed("notice-2");
    let different: Vec<Option<u64>> = (1..=8).map(|n| Backoff::default().delay_ms(n, other)).collect();
    assert_ne!(first, different);
}

#[test]
fn schedule_is_pinned_for_a_known_key() {
    // Pins the exact schedule so a change to the mixing or seeding shows up here: retries of
    // notices already in flight would move.
    let seed = jitter_seed("notice-1");
    let schedule: Vec<Option<u64>> = (1..=8).map(|n| Backoff::default().delay_ms(n, seed)).collect();
    // Recorded from a run; each lies in its [d/2, d]: [15 000, 30 000], [30 000, 60 000], ...
    let pinned = vec![
        Some(18_930),
        Some(58_741),
        Some(119_755),
        Some(156_765),
        Some(429_561),
        Some(739_110),
        Some(1_641_223),
        None,
    ];
    assert_eq!(schedule, pinned);
}

#[test]
fn jitter_seed_is_fnv1a() {
    // FNV-1a 64 reference values: "" is the offset basis, "a" from the published test suite.
    assert_eq!(jitter_seed(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(jitter_seed("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(jitter_seed("foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn huge_settings_saturate_instead_of_overflowing() {
    let huge = Backoff { base_ms: u64::MAX / 2, factor: u32::MAX, max_ms: u64::MAX, attempts_max: u32::MAX };
    for attempt in [1, 2, 64, u32::MAX - 1] {
        for seed in [0, 1, u64::MAX] {
            let delay = huge.delay_ms(attempt, seed).expect("retried");
            let nominal = if attempt == 1 { u64::MAX / 2 } else { u64::MAX };
            assert!(delay >= nominal / 2 && delay <= nominal, "attempt {attempt}: {delay}");
        }
    }
}

#[test]
fn default_matches_the_documented_policy() {
    assert_eq!(
        Backoff::default(),
        Backoff { base_ms: 30_000, factor: 2, max_ms: 3_600_000, attempts_max: 8 }
    );
    // Nominal waits 30 s .. 32 min: each jittered value lies in [d/2, d].
    let nominal = [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000];
    for (n, d) in (1..).zip(nominal) {
        for seed in 0..200 {
            check_within(&Backoff::default(), n, seed, d / 2, d);
        }
    }
    assert_eq!(Backoff::default().delay_ms(8, 0), None);
}
