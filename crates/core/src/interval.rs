//! Half-open time intervals `[start, end)` in UTC, with union and subtraction.
//!
//! Durations are elapsed time: the difference of two instants, so a clock change in
//! some time zone never shortens or lengthens an outage.

use jiff::{SignedDuration, Timestamp};

/// `[start, end)`, never empty: `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start: Timestamp,
    end: Timestamp,
}

impl Interval {
    /// `None` when `end <= start` (an empty interval is no interval).
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Self> {
        (start < end).then_some(Interval { start, end })
    }

    pub fn start(&self) -> Timestamp {
        self.start
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }

    /// Elapsed whole seconds (instants are kept to the second by the callers).
    pub fn seconds(&self) -> i64 {
        self.duration().as_secs()
    }

    /// The part of `self` inside `other`.
    pub fn clip(&self, other: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(other.start), self.end.min(other.end))
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Sorts and merges overlapping or touching intervals: the result is sorted and disjoint.
pub fn union(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match out.last_mut() {
            Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
            _ => out.push(next),
        }
    }
    out
}

/// The parts of `from` not covered by any of `remove` (which need not be sorted).
pub fn subtract(from: Interval, remove: &[Interval]) -> Vec<Interval> {
    let mut pieces = vec![from];
    for cut in union(remove.to_vec()) {
        pieces = pieces
            .into_iter()
            .flat_map(|piece| {
                let before = Interval::new(piece.start, piece.end.min(cut.start));
                let after = Interval::new(piece.start.max(cut.end), piece.end);
                [before, after].into_iter().flatten()
            })
            .collect();
    }
    pieces
}

/// Total elapsed seconds of a set of intervals, counting overlaps once.
pub fn total_seconds(intervals: &[Interval]) -> i64 {
    union(intervals.to_vec()).iter().map(Interval::seconds).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(Timestamp::from_second(a).unwrap(), Timestamp::from_second(b).unwrap()).unwrap()
    }

    #[test]
    fn empty_is_none() {
        let t = Timestamp::from_second(5).unwrap();
        assert_eq!(Interval::new(t, t), None);
    }

    #[test]
    fn union_merges_overlapping_and_touching() {
        assert_eq!(union(vec![iv(5, 8), iv(0, 2), iv(1, 3), iv(3, 4)]), vec![iv(0, 4), iv(5, 8)]);
        assert_eq!(union(vec![]), vec![]);
    }

    #[test]
    fn subtract_cuts_holes() {
        assert_eq!(subtract(iv(0, 10), &[iv(2, 3), iv(5, 12)]), vec![iv(0, 2), iv(3, 5)]);
        assert_eq!(subtract(iv(0, 10), &[iv(-5, 20)]), vec![]);
        assert_eq!(subtract(iv(0, 10), &[]), vec![iv(0, 10)]);
    }

    fn arb_intervals() -> impl Strategy<Value = Vec<Interval>> {
        prop::collection::vec((0i64..1000, 1i64..200), 0..20)
            .prop_map(|v| v.into_iter().map(|(a, len)| iv(a, a + len)).collect())
    }

    /// Membership of each second in a set of intervals, the obvious way.
    fn covered(intervals: &[Interval], second: i64) -> bool {
        let t = Timestamp::from_second(second).unwrap();
        intervals.iter().any(|i| i.start <= t && t < i.end)
    }

    proptest! {
        #[test]
        fn union_is_disjoint_sorted_and_covers_the_same(v in arb_intervals()) {
            let u = union(v.clone());
            for w in u.windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            for s in -1..1300 {
                prop_assert_eq!(covered(&u, s), covered(&v, s));
            }
            prop_assert!(total_seconds(&v) <= v.iter().map(Interval::seconds).sum::<i64>());
        }

        #[test]
        fn subtract_is_set_difference(a in 0i64..1000, len in 1i64..500, v in arb_intervals()) {
            let from = iv(a, a + len);
            let rest = subtract(from, &v);
            for s in -1..1600 {
                prop_assert_eq!(covered(&rest, s), covered(&[from], s) && !covered(&v, s));
            }
        }

        #[test]
        fn clip_is_intersection(a in 0i64..100, la in 1i64..100, b in 0i64..100, lb in 1i64..100) {
            let (x, y) = (iv(a, a + la), iv(b, b + lb));
            let c = x.clip(&y);
            prop_assert_eq!(c.is_some(), x.overlaps(&y));
            for s in -1..210 {
                prop_assert_eq!(c.is_some_and(|c| covered(&[c], s)), covered(&[x], s) && covered(&[y], s));
            }
        }
    }
}
