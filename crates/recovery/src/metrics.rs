//! Recovery metrics over a period (issue 6): how fast and how far customers were told,
//! how good the estimates were, how soon and how freely credits came, how often visits
//! were missed, how fast cases were answered and fixed, how easy leaving was next to
//! joining, and what surveyed customers said next to what happened to them after.
//!
//! Each figure is computed from the records (never entered by anyone) with exact integer
//! arithmetic: shares in per mille, rounded down; times in whole seconds, as the median
//! (the lower middle value of an even count) and the maximum, so one bad case shows.

use super::surveys::SurveyReportView;
use super::{Engine, EngineError};
use amends_store::CaseTiming;
use jiff::Timestamp;
use serde::Serialize;

/// The most incidents, and cases, one report reads.
pub const METRICS_ROWS_MAX: u32 = 10_000;

/// A distribution of durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Seconds {
    pub count: u64,
    pub median_s: Option<i64>,
    pub max_s: Option<i64>,
}

impl Seconds {
    pub fn of(mut values: Vec<i64>) -> Seconds {
        values.sort_unstable();
        let count = values.len() as u64;
        let median_s = (!values.is_empty()).then(|| values[(values.len() - 1) / 2]);
        Seconds { count, median_s, max_s: values.last().copied() }
    }
}

/// `part` of `whole` per thousand, rounded down; `None` for an empty whole.
pub fn per_mille(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| part * 1000 / whole)
}

#[derive(Debug, Clone, Serialize)]
pub struct RecoveryMetrics {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Incidents declared in the period.
    pub incidents: u64,
    /// Declaration to the first notice sent, per incident.
    pub time_to_first_notice: Seconds,
    /// Declaration until every customer told had heard, per incident.
    pub time_to_all_told: Seconds,
    /// Of the customers who got in touch during an incident, how many had been told first.
    pub contacts: u64,
    pub told_before_contact_per_mille: Option<u64>,
    /// Resolution minus the first estimate, absolute, per resolved incident.
    pub first_estimate_error: Seconds,
    /// Resolution to credit step done, per credited incident.
    pub time_to_credit: Seconds,
    /// Credits written in the period, and how many went to customers who had not got in
    /// touch about the incident before: nobody had to ask.
    pub credits: u64,
    pub credited_without_asking_per_mille: Option<u64>,
    /// Visits whose window ended in the period, and how many the provider missed or
    /// cancelled at short notice.
    pub visits_ended: u64,
    pub visits_failed: u64,
    pub missed_appointment_per_mille: Option<u64>,
    /// Cases opened in the period: opening to the owner's first response, and the
    /// customer's first contact to the verified fix.
    pub cases: u64,
    pub first_response: Seconds,
    pub resolution: Seconds,
    /// The most requests any cancellation took, next to the most any sign-up took.
    pub cancel_steps_max: i32,
    pub sign_up_steps_max: i32,
    /// The most clicks any cancellation took (on amends' leaving page, or as the provider
    /// reported), next to the most any sign-up took as the provider reported them; `None`
    /// where none was counted.
    pub leave_clicks_max: Option<i32>,
    pub join_clicks_max: Option<i32>,
    /// Whether leaving took no more clicks than joining, once both were counted.
    pub leaving_as_easy_as_joining: Option<bool>,
    pub cancellations: u64,
    pub sign_ups: u64,
    pub surveys: SurveyReportView,
}

impl Engine {
    pub async fn recovery_metrics(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<RecoveryMetrics, EngineError> {
        if to <= from {
            return Err(EngineError::Invalid(vec![format!("to: {to} is not after from: {from}")]));
        }
        let incidents: Vec<_> = self
            .store
            .incidents(false)
            .await?
            .into_iter()
            .filter(|i| i.started_at >= from && i.started_at < to)
            .take(METRICS_ROWS_MAX as usize)
            .collect();
        let (mut first, mut all, mut error, mut credit) = (vec![], vec![], vec![], vec![]);
        let (mut contacts, mut told, mut credits, mut unasked) = (0, 0, 0, 0);
        for incident in &incidents {
            let m = self.incident_metrics(&incident.incident_id).await?;
            first.extend(m.first_notice_after_s);
            all.extend(m.all_told_after_s);
            error.extend(m.estimates.first_error_s.map(i64::abs));
            credit.extend(m.credited_after_s);
            contacts += m.contacts.total;
            told += m.contacts.told_before;
            let (all, asked) = self.store.credits_asked_for(&incident.incident_id).await?;
            credits += all;
            unasked += all - asked;
        }
        let visits = self.store.appointment_counts(from, to).await?;
        let failed = visits.missed + visits.late_cancelled;
        let timings = self.store.case_timings(from, to, METRICS_ROWS_MAX).await?;
        let journeys = self.store.journey_steps().await?;
        let surveys = self.survey_report().await.map_err(|e| match e {
            super::surveys::SurveysError::Engine(e) => e,
            other => EngineError::Invalid(vec![other.to_string()]),
        })?;
        Ok(RecoveryMetrics {
            from,
            to,
            incidents: incidents.len() as u64,
            time_to_first_notice: Seconds::of(first),
            time_to_all_told: Seconds::of(all),
            contacts,
            told_before_contact_per_mille: per_mille(told, contacts),
            first_estimate_error: Seconds::of(error),
            time_to_credit: Seconds::of(credit),
            credits,
            credited_without_asking_per_mille: per_mille(unasked, credits),
            visits_ended: visits.ended,
            visits_failed: failed,
            missed_appointment_per_mille: per_mille(failed, visits.ended),
            cases: timings.len() as u64,
            first_response: Seconds::of(first_responses(&timings)),
            resolution: Seconds::of(resolutions(&timings)),
            cancel_steps_max: journeys.cancel_steps_max,
            sign_up_steps_max: journeys.signup_steps_max,
            leave_clicks_max: journeys.cancel_clicks_max,
            join_clicks_max: journeys.signup_clicks_max,
            leaving_as_easy_as_joining: journeys
                .cancel_clicks_max
                .zip(journeys.signup_clicks_max)
                .map(|(leave, join)| leave <= join),
            cancellations: journeys.cancellations,
            sign_ups: journeys.signups,
            surveys,
        })
    }
}

fn first_responses(timings: &[CaseTiming]) -> Vec<i64> {
    timings
        .iter()
        .filter_map(|t| t.first_response_at.map(|at| at.as_second() - t.opened_at.as_second()))
        .collect()
}

fn resolutions(timings: &[CaseTiming]) -> Vec<i64> {
    timings
        .iter()
        .filter_map(|t| t.fixed_at.map(|at| at.as_second() - t.first_contact_at.as_second()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_the_lower_middle_and_shares_round_down() {
        assert_eq!(Seconds::of(vec![]), Seconds { count: 0, median_s: None, max_s: None });
        assert_eq!(Seconds::of(vec![30, 10, 20]), Seconds { count: 3, median_s: Some(20), max_s: Some(30) });
        assert_eq!(Seconds::of(vec![40, 10, 30, 20]).median_s, Some(20));
        assert_eq!(per_mille(2, 3), Some(666));
        assert_eq!(per_mille(0, 0), None);
        assert_eq!(per_mille(5, 5), Some(1000));
    }
}
