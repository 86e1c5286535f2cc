//! Billing cycles in the customer's own time zone.
//!
//! A cycle starts at local midnight on the customer's billing day (1 to 28, so every month
//! has it) and ends at local midnight on the same day of the next month. Its length is
//! elapsed time, so a cycle that contains a daylight-saving change is an hour shorter or
//! longer than its neighbours, exactly as the customer lived it.

use crate::interval::Interval;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingCycle {
    /// The local date the cycle starts on.
    pub start_date: Date,
    /// The local date the next cycle starts on: the statement for this cycle is issued
    /// then, so it names the statement a credit issued during this cycle lands on.
    pub end_date: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl BillingCycle {
    pub fn seconds(&self) -> i64 {
        self.end.duration_since(self.start).as_secs()
    }

    pub fn interval(&self) -> Interval {
        Interval::new(self.start, self.end).expect("a billing cycle is never empty")
    }
}

/// The instant a local date begins in `tz` (midnight, or the first instant after a gap).
fn day_start(date: Date, tz: &TimeZone) -> Result<Timestamp, jiff::Error> {
    Ok(date.to_zoned(tz.clone())?.timestamp())
}

fn cycle_from(start_date: Date, tz: &TimeZone) -> Result<BillingCycle, jiff::Error> {
    let end_date = start_date.checked_add(1.month())?;
    Ok(BillingCycle {
        start_date,
        end_date,
        start: day_start(start_date, tz)?,
        end: day_start(end_date, tz)?,
    })
}

/// The cycle that contains instant `t` for a customer billed on `billing_day` in `tz`.
pub fn cycle_containing(t: Timestamp, billing_day: u8, tz: &TimeZone) -> Result<BillingCycle, jiff::Error> {
    let local = t.to_zoned(tz.clone()).date();
    let this_month = Date::new(local.year(), local.month(), billing_day as i8)?;
    let start_date =
        if day_start(this_month, tz)? <= t { this_month } else { this_month.checked_sub(1.month())? };
    cycle_from(start_date, tz)
}

/// The cycles that `interval` touches, in order, each with the part of it inside.
pub fn split_by_cycle(
    interval: Interval,
    billing_day: u8,
    tz: &TimeZone,
) -> Result<Vec<(BillingCycle, Interval)>, jiff::Error> {
    let mut out = Vec::new();
    let mut cycle = cycle_containing(interval.start(), billing_day, tz)?;
    while let Some(part) = interval.clip(&cycle.interval()) {
        out.push((cycle, part));
        cycle = cycle_from(cycle.start_date.checked_add(1.month())?, tz)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn cycle_in_customer_zone() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // 2026-11-15 03:00Z is still 2026-11-14 22:00 in New York: previous cycle.
        let c = cycle_containing(ts("2026-11-15T03:00:00Z"), 15, &ny).unwrap();
        assert_eq!(c.start_date, Date::constant(2026, 10, 15));
        assert_eq!(c.start, ts("2026-10-15T04:00:00Z"));
        assert_eq!(c.end, ts("2026-11-15T05:00:00Z"));
        // That cycle holds the end of daylight saving time: one hour longer than 31 days.
        assert_eq!(c.seconds(), 31 * 86_400 + 3_600);
        let next = cycle_containing(ts("2026-11-15T05:00:00Z"), 15, &ny).unwrap();
        assert_eq!(next.start_date, Date::constant(2026, 11, 15));
        assert_eq!(next.seconds(), 30 * 86_400);
    }

    #[test]
    fn split_at_boundary() {
        let utc = TimeZone::UTC;
        let iv = Interval::new(ts("2026-03-31T22:00:00Z"), ts("2026-04-01T03:00:00Z")).unwrap();
        let parts = split_by_cycle(iv, 1, &utc).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0.start_date, Date::constant(2026, 3, 1));
        assert_eq!(parts[0].1.seconds(), 2 * 3600);
        assert_eq!(parts[1].0.start_date, Date::constant(2026, 4, 1));
        assert_eq!(parts[1].1.seconds(), 3 * 3600);
    }
}
