//! Business calendars: which days are working days in a customer's jurisdiction.
//!
//! A policy lists its weekend and, per jurisdiction, its public holidays. Working days are
//! counted on the customer's own calendar dates (in their time zone), so a report at 23:30
//! local time belongs to that local day, whatever the date is in UTC.

use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Bounds: a holiday list is data for some years, not an unbounded table.
pub const HOLIDAYS_PER_JURISDICTION_MAX: usize = 5_000;
pub const WORKING_DAYS_MAX: u32 = 60;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    #[serde(default = "default_weekend")]
    pub weekend: Vec<String>,
    /// Jurisdiction (as in the customer's facts, e.g. `GB-EAW`) to its holidays, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: BTreeMap<String, Vec<String>>,
}

fn default_weekend() -> Vec<String> {
    vec!["saturday".into(), "sunday".into()]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    weekend: [bool; 7],
    holidays: BTreeMap<String, Vec<Date>>,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        BusinessCalendar::check(&CalendarSpec { weekend: default_weekend(), holidays: BTreeMap::new() })
            .expect("the default calendar is valid")
    }
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

impl BusinessCalendar {
    pub fn check(spec: &CalendarSpec) -> Result<BusinessCalendar, String> {
        let mut weekend = [false; 7];
        for name in &spec.weekend {
            let day =
                weekday(name).ok_or_else(|| format!("weekend day {name:?} is not a day of the week"))?;
            weekend[day.to_monday_zero_offset() as usize] = true;
        }
        if weekend.iter().all(|w| *w) {
            return Err("the weekend cannot be every day: there would be no working day".into());
        }
        let mut holidays = BTreeMap::new();
        for (jurisdiction, days) in &spec.holidays {
            if days.len() > HOLIDAYS_PER_JURISDICTION_MAX {
                return Err(format!(
                    "holidays.{jurisdiction} lists {} days; at most {HOLIDAYS_PER_JURISDICTION_MAX}",
                    days.len()
                ));
            }
            let mut dates = days
                .iter()
                .map(|d| {
                    d.parse::<Date>()
                        .map_err(|_| format!("holidays.{jurisdiction}: {d:?} is not a date (YYYY-MM-DD)"))
                })
                .collect::<Result<Vec<Date>, String>>()?;
            dates.sort();
            dates.dedup();
            holidays.insert(jurisdiction.clone(), dates);
        }
        Ok(BusinessCalendar { weekend, holidays })
    }

    pub fn has_holidays(&self) -> bool {
        !self.holidays.is_empty()
    }

    /// Holidays of `jurisdiction`; an error when the policy has holiday lists but none for it,
    /// because counting working days without the holidays would pay the wrong amount.
    fn holidays_of(&self, jurisdiction: &str) -> Result<&[Date], String> {
        match self.holidays.get(jurisdiction) {
            Some(days) => Ok(days),
            None if self.holidays.is_empty() => Ok(&[]),
            None => Err(format!(
                "the policy has no holiday list for jurisdiction {jurisdiction:?} (it has {})",
                self.holidays.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    pub fn is_working_day(&self, date: Date, jurisdiction: &str) -> Result<bool, String> {
        let holidays = self.holidays_of(jurisdiction)?;
        Ok(!self.weekend[date.weekday().to_monday_zero_offset() as usize]
            && holidays.binary_search(&date).is_err())
    }

    /// The `n`th working day after `date` (not counting `date` itself).
    pub fn working_days_after(&self, date: Date, n: u32, jurisdiction: &str) -> Result<Date, String> {
        let holidays = self.holidays_of(jurisdiction)?;
        if let (Some(first), Some(last)) = (holidays.first(), holidays.last())
            && (date.year() < first.year() || date.year() > last.year())
        {
            return Err(format!(
                "{date} is outside the years of the holiday list of {jurisdiction:?} ({} to {})",
                first.year(),
                last.year()
            ));
        }
        let mut day = date;
        let mut counted = 0;
        // At most n working days, and a week has at least one: the loop is bounded.
        while counted < n {
            day = day.tomorrow().map_err(|e| e.to_string())?;
            if self.is_working_day(day, jurisdiction)? {
                counted += 1;
            }
        }
        Ok(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn uk() -> BusinessCalendar {
        let mut holidays = BTreeMap::new();
        holidays.insert(
            "GB-EAW".to_string(),
            vec!["2025-01-01".into(), "2025-04-18".into(), "2025-04-21".into(), "2025-12-26".into()],
        );
        holidays.insert(
            "GB-SCT".to_string(),
            vec!["2025-01-01".into(), "2025-01-02".into(), "2025-12-26".into()],
        );
        BusinessCalendar::check(&CalendarSpec { weekend: default_weekend(), holidays }).unwrap()
    }

    #[test]
    fn working_days_skip_weekends_and_the_nation_s_holidays() {
        let c = uk();
        // Monday report: Tuesday and Wednesday.
        assert_eq!(c.working_days_after(d("2025-06-02"), 2, "GB-EAW").unwrap(), d("2025-06-04"));
        // Thursday before Easter: Good Friday, weekend and Easter Monday are skipped in England.
        assert_eq!(c.working_days_after(d("2025-04-17"), 2, "GB-EAW").unwrap(), d("2025-04-23"));
        // 2 January is a holiday in Scotland only.
        assert!(c.working_days_after(d("2024-12-31"), 1, "GB-EAW").unwrap_err().contains("outside"));
        assert_eq!(c.working_days_after(d("2025-01-01"), 1, "GB-EAW").unwrap(), d("2025-01-02"));
        assert_eq!(c.working_days_after(d("2025-01-01"), 1, "GB-SCT").unwrap(), d("2025-01-03"));
    }

    #[test]
    fn an_unknown_jurisdiction_is_an_error_not_a_guess() {
        let err = uk().is_working_day(d("2025-06-02"), "FR").unwrap_err();
        assert!(err.contains("no holiday list for jurisdiction \"FR\""), "{err}");
    }

    #[test]
    fn bad_calendars_are_refused() {
        let spec = |weekend: Vec<&str>| CalendarSpec {
            weekend: weekend.into_iter().map(String::from).collect(),
            holidays: BTreeMap::new(),
        };
        assert!(BusinessCalendar::check(&spec(vec!["funday"])).unwrap_err().contains("funday"));
        let all = vec!["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
        assert!(BusinessCalendar::check(&spec(all)).is_err());
    }
}
