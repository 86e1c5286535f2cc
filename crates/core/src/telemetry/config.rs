//! Detection settings: hold-down, thresholds per element kind, and the bounds on time.

use jiff::SignedDuration;
use std::collections::HashMap;

/// A fraction between 0 and 1, exact (a decimal such as `0.6` is 6/10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    num: u64,
    den: u64,
}

impl Fraction {
    /// Reads a decimal in [0, 1] with at most 6 decimal places ("0.6", "1", "0.125").
    pub fn parse(s: &str) -> Option<Fraction> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || frac.len() > 6 || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let den = 10u64.pow(frac.len() as u32);
        let num = int.parse::<u64>().ok()?.checked_mul(den)?.checked_add(if frac.is_empty() {
            0
        } else {
            frac.parse::<u64>().ok()?
        })?;
        (num <= den).then_some(Fraction { num, den })
    }

    /// `part / whole >= self`, exactly.
    pub fn reached_by(self, part: u32, whole: u32) -> bool {
        u64::from(part) * self.den >= self.num * u64::from(whole)
    }

    /// `self > other`, exactly.
    pub fn exceeds(self, other: Fraction) -> bool {
        u128::from(self.num) * u128::from(other.den) > u128::from(other.num) * u128::from(self.den)
    }

    /// The fraction as a decimal, for messages.
    pub fn show(self) -> String {
        let places = self.den.ilog10() as usize;
        if places == 0 {
            return (self.num / self.den).to_string();
        }
        format!("{}.{:0places$}", self.num / self.den, self.num % self.den)
    }
}

/// When an element counts as out, and when it counts as back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// At least this many devices at or below the element confirmed offline...
    pub min_devices: u32,
    /// ...and at least this fraction of the devices at or below it.
    pub min_fraction: Fraction,
    /// An element that is out is back when its offline devices fall below `min_devices`
    /// or below this fraction (lower than `min_fraction`, so an element hovering at the
    /// threshold does not open and resolve incidents over and over).
    pub restore_fraction: Fraction,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            min_devices: 3,
            min_fraction: Fraction { num: 6, den: 10 },
            restore_fraction: Fraction { num: 1, den: 10 },
        }
    }
}

impl Threshold {
    pub fn is_out(&self, offline: u32, total: u32) -> bool {
        offline >= self.min_devices && self.min_fraction.reached_by(offline, total)
    }

    pub fn is_back(&self, offline: u32, total: u32) -> bool {
        offline < self.min_devices || !self.restore_fraction.reached_by(offline, total)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectionConfig {
    /// An offline report becomes a confirmed outage after this long unless the device
    /// comes back first (a dying gasp confirms at once). Default 60 s.
    pub hold_down: SignedDuration,
    /// Events are applied in the order of their `at`, once the clock is this far past it,
    /// so events that arrive out of order within the window give the same result as in
    /// order. Default 500 ms.
    pub reorder_window: SignedDuration,
    /// Events stamped further than this ahead of the clock are refused. Default 5 min.
    pub future_limit: SignedDuration,
    /// An incident starts at the earliest outage among its devices that began at most this
    /// long before the element crossed its threshold; devices dead for longer (isolated
    /// faults from before) are counted from there. Default 15 min.
    pub correlation_window: SignedDuration,
    pub default_threshold: Threshold,
    /// Thresholds by element kind (`node`, `amplifier`, ...), else the default.
    pub thresholds: HashMap<String, Threshold>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            hold_down: SignedDuration::from_secs(60),
            reorder_window: SignedDuration::from_millis(500),
            future_limit: SignedDuration::from_mins(5),
            correlation_window: SignedDuration::from_mins(15),
            default_threshold: Threshold::default(),
            thresholds: HashMap::new(),
        }
    }
}

impl DetectionConfig {
    pub fn threshold(&self, kind: &str) -> &Threshold {
        self.thresholds.get(kind).unwrap_or(&self.default_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_exact() {
        let f = Fraction::parse("0.6").unwrap();
        assert!(f.reached_by(3, 5));
        assert!(!f.reached_by(2, 4));
        assert!(f.reached_by(6, 10));
        assert!(!f.reached_by(599_999, 1_000_000));
        assert_eq!(f.show(), "0.6");
        assert!(Fraction::parse("0.7").unwrap().exceeds(f));
        assert!(!Fraction::parse("0.60").unwrap().exceeds(f));
        assert!(!f.exceeds(Fraction::parse("0.600").unwrap()));
        assert_eq!(Fraction::parse("1").unwrap().show(), "1");
        assert_eq!(Fraction::parse("0.125").unwrap().show(), "0.125");
        for bad in ["1.5", "-0.1", "", ".5", "0.1234567", "0,6", "x"] {
            assert!(Fraction::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn threshold_needs_both_count_and_fraction() {
        let t = Threshold::default();
        assert!(!t.is_out(2, 2), "two devices are under min_devices");
        assert!(t.is_out(3, 5));
        assert!(!t.is_out(3, 6));
        assert!(!t.is_back(3, 5));
        assert!(t.is_back(2, 5));
        assert!(t.is_back(9, 100));
        assert!(!t.is_back(10, 100));
    }
}
