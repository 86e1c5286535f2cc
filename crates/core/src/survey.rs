//! Satisfaction surveys: who is surveyed and when (decided by the system, never by the
//! agent being rated), what an answer may be, and reports that keep incident-caused
//! trouble out of an agent's own figures.
//!
//! **Who.** [`decide`] takes a subject (a resolved case, a customer recovered from an
//! incident, or a customer with no problem at all: the control group) and returns
//! [`Decision::Send`], [`Decision::NotSampled`] or [`Decision::Suppressed`] with its
//! [`Reason`]. The sample is a keyed hash of the subject under a secret agents never see
//! ([`SampleKey`]: HMAC-SHA256 in the app), compared with the rate: the same subject always
//! gets the same draw, and nothing an agent controls (the owner, the wording, the time)
//! enters it. The app records every decision once, under [`Subject::key`]; re-running
//! finds it recorded and repeats nothing. Agents can send, suppress, see or edit nothing:
//! there is no input here for them.
//!
//! Sampling comes first and suppression second, so the record shows how much of the drawn
//! sample each reason removed (attrition), and the sample itself is a uniform draw over
//! every subject.
//!
//! **When.** A fixed delay after the verified fix ([`SurveyRules::delay_after_fix`]), never
//! sooner than [`SurveyRules::per_customer_min_gap`] from the customer's previous survey.
//!
//! **Links.** The app signs survey links with its existing token format (`optout.rs`):
//! the link names the survey and its expiry, and nothing else. Opening the link shows the
//! question and records nothing; only submitting the form records an answer, so a mail
//! scanner that follows links never answers. The stored [`Survey`] is what
//! [`accept_answer`] checks: expired, already answered, score out of range.
//!
//! **Reports.** [`Report`] groups answers ([`Group`]): each owner's own cases, cases
//! caused by an incident (whoever owned them), customers recovered from an incident, and
//! the no-problem control, with exact counts and figures rounded once, half up. Comparing
//! the recovered customers with the control measures the service recovery paradox.

use crate::id::{CaseId, CustomerId, IncidentId};
use crate::money::Rounding;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Sample rates are in parts per million: exact, and fine enough for a 0.01 % sample of a
/// provider with millions of customers.
pub const PPM: u32 = 1_000_000;
/// Longest delay between the fix and the survey: later than a month, the customer no
/// longer remembers the fix.
pub const DELAY_DAYS_MAX: i64 = 30;
/// Longest gap the per-customer frequency limit may ask for.
pub const GAP_DAYS_MAX: i64 = 730;
/// Shortest and longest life of a survey link.
pub const LINK_VALID_HOURS_MIN: i64 = 1;
pub const LINK_VALID_DAYS_MAX: i64 = 90;
/// Longest score text accepted (a score is one or two digits); longer is quoted cut.
pub const SCORE_TEXT_BYTES_MAX: usize = 16;
/// Prefixed to the subject's key in what the sampling key hashes, so no hash made for
/// anything else with the same secret is ever a sampling draw.
pub const SAMPLE_CONTEXT: &[u8] = b"amends/survey-sample/v1\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurveyError {
    #[error("sample_rate_ppm: {value} is more than {PPM} (everyone)")]
    SampleRate { value: u32 },
    #[error("{field}: {value} is outside {min} to {max}")]
    Duration { field: &'static str, value: SignedDuration, min: SignedDuration, max: SignedDuration },
    #[error("score: {score} is outside the {scale} scale ({min} to {max})", min = .scale.min_score(), max = .scale.max_score())]
    ScoreOutOfRange { score: i64, scale: Scale },
    #[error("score: {text:?} is not a whole number")]
    NotAScore { text: String },
    #[error("survey {survey_id}: the link expired at {expires_at} (now {now})")]
    Expired { survey_id: String, expires_at: Timestamp, now: Timestamp },
    #[error("survey {survey_id}: already answered at {answered_at}")]
    AlreadyAnswered { survey_id: String, answered_at: Timestamp },
}

/// How surveys are sampled and timed. Read from settings, checked once by
/// [`SurveyRules::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveyRules {
    /// Share of subjects surveyed, in parts per million (0 to [`PPM`]).
    pub sample_rate_ppm: u32,
    /// From the verified fix to the survey.
    pub delay_after_fix: SignedDuration,
    /// Least time between two surveys of one customer.
    pub per_customer_min_gap: SignedDuration,
    /// How long a survey link works.
    pub link_valid_for: SignedDuration,
    /// The scale new surveys ask on.
    pub scale: Scale,
}

impl Default for SurveyRules {
    /// One subject in ten, a day after the fix, at most one survey per customer per 90
    /// days, links valid for 14 days, on the 0-10 scale.
    fn default() -> SurveyRules {
        SurveyRules {
            sample_rate_ppm: 100_000,
            delay_after_fix: SignedDuration::from_hours(24),
            per_customer_min_gap: SignedDuration::from_hours(90 * 24),
            link_valid_for: SignedDuration::from_hours(14 * 24),
            scale: Scale::Nps,
        }
    }
}

impl SurveyRules {
    /// The first field out of bounds, by name and value.
    pub fn check(&self) -> Result<(), SurveyError> {
        if self.sample_rate_ppm > PPM {
            return Err(SurveyError::SampleRate { value: self.sample_rate_ppm });
        }
        let hours = SignedDuration::from_hours;
        for (field, value, min, max) in [
            ("delay_after_fix", self.delay_after_fix, SignedDuration::ZERO, hours(24 * DELAY_DAYS_MAX)),
            (
                "per_customer_min_gap",
                self.per_customer_min_gap,
                SignedDuration::ZERO,
                hours(24 * GAP_DAYS_MAX),
            ),
            (
                "link_valid_for",
                self.link_valid_for,
                hours(LINK_VALID_HOURS_MIN),
                hours(24 * LINK_VALID_DAYS_MAX),
            ),
        ] {
            if value < min || value > max {
                return Err(SurveyError::Duration { field, value, min, max });
            }
        }
        Ok(())
    }
}

/// What a survey asks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// "How likely are you to recommend us?", 0 to 10: 9-10 promoters, 0-6 detractors.
    Nps,
    /// "How satisfied are you?", 1 to 5: 4-5 satisfied.
    Csat,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Nps => "nps",
            Scale::Csat => "csat",
        }
    }

    pub fn min_score(self) -> u8 {
        match self {
            Scale::Nps => 0,
            Scale::Csat => 1,
        }
    }

    pub fn max_score(self) -> u8 {
        match self {
            Scale::Nps => 10,
            Scale::Csat => 5,
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An answer on a scale, checked once by [`Score::new`] or [`Score::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Score {
    scale: Scale,
    value: u8,
}

impl Score {
    pub fn new(score: i64, scale: Scale) -> Result<Score, SurveyError> {
        match u8::try_from(score) {
            Ok(value) if (scale.min_score()..=scale.max_score()).contains(&value) => {
                Ok(Score { scale, value })
            }
            _ => Err(SurveyError::ScoreOutOfRange { score, scale }),
        }
    }

    /// A score as the answer form sends it: decimal digits, an optional sign, surrounding
    /// spaces ignored.
    pub fn parse(text: &str, scale: Scale) -> Result<Score, SurveyError> {
        let not_a_score = || {
            let mut cut = text.len().min(SCORE_TEXT_BYTES_MAX);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            SurveyError::NotAScore { text: text[..cut].to_string() }
        };
        if text.len() > SCORE_TEXT_BYTES_MAX {
            return Err(not_a_score());
        }
        let score: i64 = text.trim().parse().map_err(|_| not_a_score())?;
        Score::new(score, scale)
    }

    pub fn scale(self) -> Scale {
        self.scale
    }

    pub fn value(self) -> u8 {
        self.value
    }

    /// NPS: 9 or 10.
    pub fn is_promoter(self) -> bool {
        self.scale == Scale::Nps && self.value >= 9
    }

    /// NPS: 0 to 6.
    pub fn is_detractor(self) -> bool {
        self.scale == Scale::Nps && self.value <= 6
    }

    /// CSAT: 4 or 5.
    pub fn is_satisfied(self) -> bool {
        self.scale == Scale::Csat && self.value >= 4
    }
}

/// Who a survey would be about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub customer_id: CustomerId,
    pub kind: SubjectKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubjectKind {
    /// A resolved case. `incident_id`: the incident that caused it, if any; such a case is
    /// reported apart from its owner's own figures. It must be set by the system (the
    /// case opened from an incident's impact), never by the owner, or an owner could move
    /// a bad case out of their figures.
    Case { case_id: CaseId, owner: String, incident_id: Option<IncidentId> },
    /// A customer whose service came back after an incident.
    Incident { incident_id: IncidentId },
    /// A customer with no problem, drawn in `round` (say `2025-Q3`): the control group.
    /// The round is in the key so a customer can be drawn again in a later round.
    NoProblem { round: String },
}

/// The groups of a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "group", rename_all = "snake_case")]
pub enum Group {
    /// Cases of this owner's that no incident caused: the agent's own performance.
    Agent { owner: String },
    /// Cases caused by an incident, whoever owned them.
    IncidentCase,
    /// Customers recovered from an incident.
    IncidentCustomer,
    /// Customers with no problem: the control.
    NoProblem,
}

/// `<length>:<text>`: a piece of a key that no other piece can be confused with, whatever
/// the text holds.
fn piece(s: &str) -> String {
    format!("{}:{s}", s.len())
}

impl Subject {
    /// The subject's unique key: the key of its decision record and what sampling hashes.
    /// It holds only what the system assigned (case, incident, customer, round), never the
    /// owner, so reassigning a case cannot draw it again.
    pub fn key(&self) -> String {
        match &self.kind {
            SubjectKind::Case { case_id, .. } => format!("case/{}", piece(case_id)),
            SubjectKind::Incident { incident_id } => {
                format!("incident/{}/{}", piece(incident_id), piece(&self.customer_id))
            }
            SubjectKind::NoProblem { round } => {
                format!("no-problem/{}/{}", piece(round), piece(&self.customer_id))
            }
        }
    }

    pub fn group(&self) -> Group {
        match &self.kind {
            SubjectKind::Case { incident_id: Some(_), .. } => Group::IncidentCase,
            SubjectKind::Case { owner, incident_id: None, .. } => Group::Agent { owner: owner.clone() },
            SubjectKind::Incident { .. } => Group::IncidentCustomer,
            SubjectKind::NoProblem { .. } => Group::NoProblem,
        }
    }
}

/// A keyed hash under the provider's sampling secret: in the app, HMAC-SHA256 with the
/// secret as the key (as `optout.rs` signs links). The core has no hash of its own: it
/// says what is hashed ([`sample_message`]) and how the digest is read ([`draw`]).
pub trait SampleKey {
    fn mac(&self, message: &[u8]) -> [u8; 32];
}

/// What the sampling key hashes for `subject`: [`SAMPLE_CONTEXT`] then [`Subject::key`].
pub fn sample_message(subject: &Subject) -> Vec<u8> {
    let key = subject.key();
    let mut message = Vec::with_capacity(SAMPLE_CONTEXT.len() + key.len());
    message.extend_from_slice(SAMPLE_CONTEXT);
    message.extend_from_slice(key.as_bytes());
    message
}

/// A digest's first 8 bytes, big-endian.
pub fn draw(digest: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Whether a draw falls in a sample of `rate_ppm`: `draw mod 1,000,000 < rate_ppm`. (The
/// modulo's bias over 64 bits is below one in 10^13.)
pub fn in_sample(draw: u64, rate_ppm: u32) -> bool {
    draw % u64::from(PPM) < u64::from(rate_ppm)
}

/// Whether `subject` is in the sample of `rate_ppm` under `key`.
pub fn is_sampled(subject: &Subject, key: &impl SampleKey, rate_ppm: u32) -> bool {
    in_sample(draw(&key.mac(&sample_message(subject))), rate_ppm)
}

/// What the system knows about a subject when it decides, all from its own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standing {
    /// The customer opted out of surveys.
    pub opted_out: bool,
    /// The customer has cancelled their service.
    pub customer_cancelled: bool,
    /// The case was re-opened: the fix did not hold, so there is nothing to ask about yet.
    pub case_reopened: bool,
    /// The customer has a contact point a survey can go to.
    pub contactable: bool,
}

/// Why a sampled subject is not surveyed. Checked in this order; the first that applies is
/// recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    OptedOut,
    CustomerCancelled,
    CaseReopened,
    NoContact,
    /// Another survey of the customer (sent or due) at `last` is within the minimum gap.
    RecentlySurveyed {
        last: Timestamp,
    },
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OptedOut => "opted_out",
            Reason::CustomerCancelled => "customer_cancelled",
            Reason::CaseReopened => "case_reopened",
            Reason::NoContact => "no_contact",
            Reason::RecentlySurveyed { .. } => "recently_surveyed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Send at `at`; the link works until `link_expires_at`.
    Send {
        at: Timestamp,
        link_expires_at: Timestamp,
    },
    NotSampled,
    Suppressed(Reason),
}

/// `t + d`, saturating at the ends of time.
fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() { Timestamp::MIN } else { Timestamp::MAX })
}

/// Decides whether and when `subject` is surveyed, `fixed_at` being the verified fix (for
/// the control, the round's reference instant). `last_surveyed` is the customer's latest
/// other survey (sent or due; not this subject's own), `standing` what the records say,
/// `key` the sampling key, `rules` checked rules.
///
/// Sampled or not depends on the subject and the key only; the decision on nothing but
/// the arguments, so the same inputs always give the same decision. The send time is
/// `fixed_at + delay_after_fix`; a previous survey less than `per_customer_min_gap` from
/// it, before or after, suppresses it.
pub fn decide(
    subject: &Subject,
    fixed_at: Timestamp,
    last_surveyed: Option<Timestamp>,
    standing: &Standing,
    key: &impl SampleKey,
    rules: &SurveyRules,
) -> Decision {
    if !is_sampled(subject, key, rules.sample_rate_ppm) {
        return Decision::NotSampled;
    }
    let at = plus(fixed_at, rules.delay_after_fix);
    let suppressed = if standing.opted_out {
        Some(Reason::OptedOut)
    } else if standing.customer_cancelled {
        Some(Reason::CustomerCancelled)
    } else if standing.case_reopened {
        Some(Reason::CaseReopened)
    } else if !standing.contactable {
        Some(Reason::NoContact)
    } else {
        last_surveyed
            .filter(|&last| gap(at, last) < rules.per_customer_min_gap)
            .map(|last| Reason::RecentlySurveyed { last })
    };
    match suppressed {
        Some(reason) => Decision::Suppressed(reason),
        None => Decision::Send { at, link_expires_at: plus(at, rules.link_valid_for) },
    }
}

fn gap(a: Timestamp, b: Timestamp) -> SignedDuration {
    if a >= b { a.duration_since(b) } else { b.duration_since(a) }
}

/// A survey as the store keeps it once sent. Its link (signed by the app) names `id` and
/// `expires_at`; the stored values are the ones checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    pub id: String,
    pub subject: Subject,
    pub scale: Scale,
    pub sent_at: Timestamp,
    pub expires_at: Timestamp,
    pub answered_at: Option<Timestamp>,
}

/// Checks an answer submitted at `now` (after the link's signature was verified by the
/// app): the survey not already answered (a link works once), not expired (`now` before
/// `expires_at`), the score on the survey's scale. The app records the score and
/// `answered_at` in one write that fails if another answer got there first.
pub fn accept_answer(survey: &Survey, score_text: &str, now: Timestamp) -> Result<Score, SurveyError> {
    if let Some(answered_at) = survey.answered_at {
        return Err(SurveyError::AlreadyAnswered { survey_id: survey.id.clone(), answered_at });
    }
    if now >= survey.expires_at {
        return Err(SurveyError::Expired {
            survey_id: survey.id.clone(),
            expires_at: survey.expires_at,
            now,
        });
    }
    Score::parse(score_text, survey.scale)
}

/// What happened after the survey's subject, from the records, for reporting next to the
/// score (a high score followed by a re-opened case or a cancellation is worth knowing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    pub reopened: bool,
    pub repeat_contact: bool,
    pub credited: bool,
    pub cancelled_within_90_days: bool,
}

/// One answered survey, for a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub subject: Subject,
    pub score: Score,
    pub outcomes: Outcomes,
}

/// One group's answers on one scale, as exact counts. Figures derived from them are
/// rounded once, half up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub scale: Scale,
    pub count: u64,
    pub score_sum: u64,
    /// NPS only.
    pub promoters: u64,
    pub detractors: u64,
    /// CSAT only.
    pub satisfied: u64,
    pub reopened: u64,
    pub repeat_contact: u64,
    pub credited: u64,
    pub cancelled_within_90_days: u64,
}

fn per_mille(part: i128, whole: u64) -> Option<i64> {
    (whole > 0).then(|| Rounding::HalfUp.divide(1000 * part, i128::from(whole)) as i64)
}

impl Figures {
    pub fn new(scale: Scale) -> Figures {
        Figures {
            scale,
            count: 0,
            score_sum: 0,
            promoters: 0,
            detractors: 0,
            satisfied: 0,
            reopened: 0,
            repeat_contact: 0,
            credited: 0,
            cancelled_within_90_days: 0,
        }
    }

    /// Counts one answer on this scale (an answer on another scale is not counted).
    pub fn add(&mut self, score: Score, outcomes: &Outcomes) {
        if score.scale != self.scale {
            return;
        }
        self.count += 1;
        self.score_sum += u64::from(score.value);
        self.promoters += u64::from(score.is_promoter());
        self.detractors += u64::from(score.is_detractor());
        self.satisfied += u64::from(score.is_satisfied());
        self.reopened += u64::from(outcomes.reopened);
        self.repeat_contact += u64::from(outcomes.repeat_contact);
        self.credited += u64::from(outcomes.credited);
        self.cancelled_within_90_days += u64::from(outcomes.cancelled_within_90_days);
    }

    /// The mean score exactly, as `(score_sum, count)`; `None` with no answers.
    pub fn mean(&self) -> Option<(u64, u64)> {
        (self.count > 0).then_some((self.score_sum, self.count))
    }

    /// The mean score in tenths (`73` is 7.3), rounded half up.
    pub fn mean_tenths(&self) -> Option<i64> {
        (self.count > 0)
            .then(|| Rounding::HalfUp.divide(10 * i128::from(self.score_sum), i128::from(self.count)) as i64)
    }

    /// Net promoter score in per mille (-1000 to 1000): promoters minus detractors over the
    /// count. `None` on a CSAT scale or with no answers.
    pub fn nps_per_mille(&self) -> Option<i64> {
        if self.scale != Scale::Nps {
            return None;
        }
        per_mille(i128::from(self.promoters) - i128::from(self.detractors), self.count)
    }

    /// Satisfied share in per mille. `None` on an NPS scale or with no answers.
    pub fn satisfied_per_mille(&self) -> Option<i64> {
        if self.scale != Scale::Csat {
            return None;
        }
        per_mille(i128::from(self.satisfied), self.count)
    }

    /// The share of answers with `signal` in per mille (`figures.share_per_mille(figures.credited)`).
    pub fn share_per_mille(&self, signal: u64) -> Option<i64> {
        per_mille(i128::from(signal), self.count)
    }
}

/// One line of a report, with its figures worked out, for the API and exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub group: Group,
    pub scale: Scale,
    pub count: u64,
    pub mean_tenths: Option<i64>,
    pub nps_per_mille: Option<i64>,
    pub satisfied_per_mille: Option<i64>,
    pub reopened_per_mille: Option<i64>,
    pub repeat_contact_per_mille: Option<i64>,
    pub credited_per_mille: Option<i64>,
    pub cancelled_within_90_days_per_mille: Option<i64>,
}

/// Answered surveys by group and scale. An answer counts in exactly one group, its
/// subject's ([`Subject::group`]): an incident-caused case never counts in its owner's
/// figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    figures: BTreeMap<(Group, Scale), Figures>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn from_answers<'a>(answers: impl IntoIterator<Item = &'a Answer>) -> Report {
        let mut report = Report::new();
        for a in answers {
            report.add(a);
        }
        report
    }

    pub fn add(&mut self, answer: &Answer) {
        let scale = answer.score.scale;
        self.figures
            .entry((answer.subject.group(), scale))
            .or_insert_with(|| Figures::new(scale))
            .add(answer.score, &answer.outcomes);
    }

    pub fn figures(&self, group: &Group, scale: Scale) -> Option<&Figures> {
        self.figures.get(&(group.clone(), scale))
    }

    /// Every group and scale with answers, in order: owners by name, then incident cases,
    /// incident customers, the control.
    pub fn rows(&self) -> Vec<Row> {
        self.figures
            .iter()
            .map(|((group, scale), f)| Row {
                group: group.clone(),
                scale: *scale,
                count: f.count,
                mean_tenths: f.mean_tenths(),
                nps_per_mille: f.nps_per_mille(),
                satisfied_per_mille: f.satisfied_per_mille(),
                reopened_per_mille: f.share_per_mille(f.reopened),
                repeat_contact_per_mille: f.share_per_mille(f.repeat_contact),
                credited_per_mille: f.share_per_mille(f.credited),
                cancelled_within_90_days_per_mille: f.share_per_mille(f.cancelled_within_90_days),
            })
            .collect()
    }

    /// NPS of group `a` minus NPS of group `b`, in per mille (-2000 to 2000), computed
    /// exactly and rounded once. `None` unless both have NPS answers.
    pub fn nps_difference_per_mille(&self, a: &Group, b: &Group) -> Option<i64> {
        let (fa, fb) = (self.figures(a, Scale::Nps)?, self.figures(b, Scale::Nps)?);
        if fa.count == 0 || fb.count == 0 {
            return None;
        }
        let net = |f: &Figures| i128::from(f.promoters) - i128::from(f.detractors);
        let (na, nb) = (i128::from(fa.count), i128::from(fb.count));
        Some(Rounding::HalfUp.divide(1000 * (net(fa) * nb - net(fb) * na), na * nb) as i64)
    }

    /// The service recovery paradox, measured: NPS of customers recovered from an incident
    /// minus NPS of customers with no problem. Positive: the recovery left customers more
    /// willing to recommend than no problem at all.
    pub fn recovery_paradox_per_mille(&self) -> Option<i64> {
        self.nps_difference_per_mille(&Group::IncidentCustomer, &Group::NoProblem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A stand-in for the app's HMAC-SHA256, for tests only: FNV-1a over the secret and
    /// the message, then SplitMix64 to spread it over 32 bytes. Not a MAC; only uniform
    /// enough to check the sampling arithmetic.
    struct TestKey(&'static [u8]);

    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    impl SampleKey for TestKey {
        fn mac(&self, message: &[u8]) -> [u8; 32] {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in self.0.iter().chain(&[0xff]).chain(message) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            let mut out = [0u8; 32];
            for (i, chunk) in out.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(&splitmix(h ^ i as u64).to_be_bytes());
            }
            out
        }
    }

    /// Answers with a fixed digest, to steer the draw in tests.
    struct FixedDraw(u64);

    impl SampleKey for FixedDraw {
        fn mac(&self, _: &[u8]) -> [u8; 32] {
            let mut out = [0xaa; 32];
            out[..8].copy_from_slice(&self.0.to_be_bytes());
            out
        }
    }

    const KEY: TestKey = TestKey(b"secret one");

    fn case(id: &str, owner: &str, incident: Option<&str>) -> Subject {
        Subject {
            customer_id: "C1".into(),
            kind: SubjectKind::Case {
                case_id: id.into(),
                owner: owner.into(),
                incident_id: incident.map(Into::into),
            },
        }
    }

    fn incident(customer: &str, id: &str) -> Subject {
        Subject { customer_id: customer.into(), kind: SubjectKind::Incident { incident_id: id.into() } }
    }

    fn no_problem(customer: &str, round: &str) -> Subject {
        Subject { customer_id: customer.into(), kind: SubjectKind::NoProblem { round: round.into() } }
    }

    const CLEAR: Standing =
        Standing { opted_out: false, customer_cancelled: false, case_reopened: false, contactable: true };

    fn everyone() -> SurveyRules {
        SurveyRules { sample_rate_ppm: PPM, ..SurveyRules::default() }
    }

    #[test]
    fn default_rules_pass_and_each_bound_names_its_field() {
        assert_eq!(SurveyRules::default().check(), Ok(()));
        let d = SurveyRules::default();
        let hours = SignedDuration::from_hours;
        let check =
            |rules: SurveyRules, expected: &str| assert_eq!(rules.check().unwrap_err().to_string(), expected);
        check(
            SurveyRules { sample_rate_ppm: PPM + 1, ..d },
            "sample_rate_ppm: 1000001 is more than 1000000 (everyone)",
        );
        assert_eq!(SurveyRules { sample_rate_ppm: PPM, ..d }.check(), Ok(()));
        assert_eq!(SurveyRules { sample_rate_ppm: 0, ..d }.check(), Ok(()));
        check(
            SurveyRules { delay_after_fix: SignedDuration::from_secs(-1), ..d },
            "delay_after_fix: -PT1S is outside PT0S to PT720H",
        );
        check(
            SurveyRules { delay_after_fix: hours(721), ..d },
            "delay_after_fix: PT721H is outside PT0S to PT720H",
        );
        check(
            SurveyRules { per_customer_min_gap: hours(731 * 24), ..d },
            "per_customer_min_gap: PT17544H is outside PT0S to PT17520H",
        );
        check(
            SurveyRules { link_valid_for: SignedDuration::from_mins(59), ..d },
            "link_valid_for: PT59M is outside PT1H to PT2160H",
        );
        check(
            SurveyRules { link_valid_for: hours(2161), ..d },
            "link_valid_for: PT2161H is outside PT1H to PT2160H",
        );
        // Settings read with defaults for what is missing, and unknown fields refused.
        let read: SurveyRules = serde_json::from_str(r#"{"sample_rate_ppm": 5000}"#).unwrap();
        assert_eq!(read, SurveyRules { sample_rate_ppm: 5000, ..d });
        assert!(serde_json::from_str::<SurveyRules>(r#"{"sample_rate": 5000}"#).is_err());
    }

    #[test]
    fn scores_are_checked_against_their_scale() {
        for v in 0..=10 {
            assert_eq!(Score::new(v, Scale::Nps).unwrap().value(), v as u8);
        }
        for v in 1..=5 {
            assert_eq!(Score::new(v, Scale::Csat).unwrap().value(), v as u8);
        }
        for (v, scale) in [
            (-1, Scale::Nps),
            (11, Scale::Nps),
            (0, Scale::Csat),
            (6, Scale::Csat),
            (256, Scale::Nps),
            (i64::MIN, Scale::Csat),
        ] {
            assert_eq!(Score::new(v, scale), Err(SurveyError::ScoreOutOfRange { score: v, scale }));
        }
        assert_eq!(
            Score::new(11, Scale::Nps).unwrap_err().to_string(),
            "score: 11 is outside the nps scale (0 to 10)"
        );
        assert_eq!(
            Score::new(0, Scale::Csat).unwrap_err().to_string(),
            "score: 0 is outside the csat scale (1 to 5)"
        );
        assert_eq!(Score::parse(" 7 ", Scale::Nps).unwrap().value(), 7);
        assert_eq!(
            Score::parse("-1", Scale::Nps),
            Err(SurveyError::ScoreOutOfRange { score: -1, scale: Scale::Nps })
        );
        for text in ["", "seven", "7.5", "0x7", "1e1"] {
            assert_eq!(
                Score::parse(text, Scale::Nps),
                Err(SurveyError::NotAScore { text: text.into() }),
                "{text}"
            );
        }
        let long = "9".repeat(1000);
        assert_eq!(Score::parse(&long, Scale::Nps), Err(SurveyError::NotAScore { text: "9".repeat(16) }));
        let accents = "é".repeat(20);
        assert_eq!(Score::parse(&accents, Scale::Nps), Err(SurveyError::NotAScore { text: "é".repeat(8) }));
        let nps = |v| Score::new(v, Scale::Nps).unwrap();
        assert!(nps(9).is_promoter() && nps(10).is_promoter() && !nps(8).is_promoter());
        assert!(nps(6).is_detractor() && nps(0).is_detractor() && !nps(7).is_detractor());
        let csat = |v| Score::new(v, Scale::Csat).unwrap();
        assert!(csat(4).is_satisfied() && !csat(3).is_satisfied());
        assert!(!csat(5).is_promoter() && !csat(1).is_detractor());
    }

    #[test]
    fn subject_keys_are_unambiguous_and_leave_the_owner_out() {
        assert_eq!(case("K1", "alice", None).key(), "case/2:K1");
        assert_eq!(incident("C1", "INC-7").key(), "incident/5:INC-7/2:C1");
        assert_eq!(no_problem("C1", "2025-Q3").key(), "no-problem/7:2025-Q3/2:C1");
        // Ids holding the separators cannot collide.
        assert_ne!(incident("1:b", "a").key(), incident("b", "a/1:").key());
        assert_ne!(no_problem("x", "r/1:y").key(), no_problem("y", "r/1:x").key());
        // Reassigning a case, or linking it to an incident, does not re-draw it.
        assert_eq!(case("K1", "alice", None).key(), case("K1", "bob", Some("INC-1")).key());
        assert_eq!(
            sample_message(&case("K1", "alice", None)),
            b"amends/survey-sample/v1\0case/2:K1".to_vec()
        );
    }

    #[test]
    fn the_draw_is_the_digest_s_first_eight_bytes_against_the_rate() {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        digest[8..].fill(0xff);
        assert_eq!(draw(&digest), 0x0102_0304_0506_0708);
        assert!(in_sample(999, 1_000) && !in_sample(1_000, 1_000));
        assert!(in_sample(3 * 1_000_000 + 999, 1_000) && !in_sample(3 * 1_000_000 + 1_000, 1_000));
        assert!(!in_sample(0, 0) && in_sample(u64::MAX, PPM) && in_sample(999_999, PPM));
    }

    #[test]
    fn sampling_is_deterministic_and_depends_on_the_secret() {
        let subjects: Vec<Subject> = (0..10_000).map(|i| case(&format!("K{i}"), "alice", None)).collect();
        let sample =
            |key: &TestKey| -> Vec<bool> { subjects.iter().map(|s| is_sampled(s, key, 100_000)).collect() };
        let one = sample(&KEY);
        assert_eq!(one, sample(&TestKey(b"secret one")));
        let two = sample(&TestKey(b"secret two"));
        assert_ne!(one, two);
        // Two secrets draw (nearly) independent samples: both about 10 %, overlapping about 1 %
        // (expected 100, standard deviation about 10; allowed 5 of them).
        let both = one.iter().zip(&two).filter(|(a, b)| **a && **b).count();
        assert!((50..=150).contains(&both), "{both}");
    }

    #[test]
    fn the_sampled_share_matches_the_rate_over_100_000_subjects() {
        // 100,000 distinct subjects of all three kinds. For each rate p, the count sampled is
        // binomial: mean n p, standard deviation sqrt(n p (1 - p)). The input is fixed, so
        // this is deterministic; the tolerance is 5 standard deviations of an ideal draw.
        let subjects: Vec<Subject> = (0..100_000)
            .map(|i| match i % 3 {
                0 => case(&format!("CASE-{i}"), "alice", None),
                1 => incident(&format!("C{i}"), "INC-42"),
                _ => no_problem(&format!("C{i}"), "2025-Q3"),
            })
            .collect();
        for rate_ppm in [10_000u32, 100_000, 500_000, 900_000] {
            let n = subjects.len() as f64;
            let p = f64::from(rate_ppm) / f64::from(PPM);
            let sampled = subjects.iter().filter(|s| is_sampled(s, &KEY, rate_ppm)).count() as f64;
            let sd = (n * p * (1.0 - p)).sqrt();
            assert!((sampled - n * p).abs() <= 5.0 * sd, "rate {rate_ppm} ppm: {sampled} sampled of {n}");
        }
        assert!(subjects.iter().all(|s| !is_sampled(s, &KEY, 0)));
        assert!(subjects.iter().all(|s| is_sampled(s, &KEY, PPM)));
    }

    #[test]
    fn a_sampled_subject_is_sent_a_fixed_delay_after_the_fix() {
        let rules = SurveyRules { delay_after_fix: SignedDuration::from_hours(24), ..everyone() };
        let d = decide(&case("K1", "alice", None), ts("2025-06-10T12:00:00Z"), None, &CLEAR, &KEY, &rules);
        assert_eq!(
            d,
            Decision::Send { at: ts("2025-06-11T12:00:00Z"), link_expires_at: ts("2025-06-25T12:00:00Z") }
        );
        // Same inputs, same decision; other owners, same decision.
        for owner in ["alice", "bob", "carol"] {
            assert_eq!(
                decide(&case("K1", owner, None), ts("2025-06-10T12:00:00Z"), None, &CLEAR, &KEY, &rules),
                d
            );
        }
        let none = SurveyRules { sample_rate_ppm: 0, ..rules };
        assert_eq!(
            decide(&case("K1", "alice", None), ts("2025-06-10T12:00:00Z"), None, &CLEAR, &KEY, &none),
            Decision::NotSampled
        );
    }

    #[test]
    fn the_draw_decides_against_the_rate() {
        let rules = SurveyRules { sample_rate_ppm: 250_000, ..SurveyRules::default() };
        let s = case("K1", "alice", None);
        let at = ts("2025-06-10T12:00:00Z");
        assert!(matches!(decide(&s, at, None, &CLEAR, &FixedDraw(249_999), &rules), Decision::Send { .. }));
        assert_eq!(decide(&s, at, None, &CLEAR, &FixedDraw(250_000), &rules), Decision::NotSampled);
        assert!(matches!(decide(&s, at, None, &CLEAR, &FixedDraw(7_000_000), &rules), Decision::Send { .. }));
    }

    #[test]
    fn suppression_reasons_apply_to_the_sample_in_order() {
        let rules = everyone();
        let s = case("K1", "alice", None);
        let fixed = ts("2025-06-10T12:00:00Z");
        let with = |f: fn(&mut Standing)| {
            let mut st = CLEAR;
            f(&mut st);
            decide(&s, fixed, None, &st, &KEY, &rules)
        };
        assert_eq!(with(|s| s.opted_out = true), Decision::Suppressed(Reason::OptedOut));
        assert_eq!(with(|s| s.customer_cancelled = true), Decision::Suppressed(Reason::CustomerCancelled));
        assert_eq!(with(|s| s.case_reopened = true), Decision::Suppressed(Reason::CaseReopened));
        assert_eq!(with(|s| s.contactable = false), Decision::Suppressed(Reason::NoContact));
        // The first that applies.
        let all =
            Standing { opted_out: true, customer_cancelled: true, case_reopened: true, contactable: false };
        assert_eq!(decide(&s, fixed, None, &all, &KEY, &rules), Decision::Suppressed(Reason::OptedOut));
        // Not sampled comes first: nothing is suppressed that was never drawn.
        let none = SurveyRules { sample_rate_ppm: 0, ..rules };
        assert_eq!(decide(&s, fixed, None, &all, &KEY, &none), Decision::NotSampled);
    }

    #[test]
    fn a_customer_is_surveyed_at_most_once_per_gap() {
        let rules = SurveyRules {
            delay_after_fix: SignedDuration::ZERO,
            per_customer_min_gap: SignedDuration::from_hours(90 * 24),
            ..everyone()
        };
        let s = incident("C1", "INC-1");
        let fixed = ts("2025-06-10T12:00:00Z");
        let last = |t: &str| decide(&s, fixed, Some(ts(t)), &CLEAR, &KEY, &rules);
        // 90 days before: exactly the gap, sent. A second less: suppressed.
        assert!(matches!(last("2025-03-12T12:00:00Z"), Decision::Send { .. }));
        assert_eq!(
            last("2025-03-12T12:00:01Z"),
            Decision::Suppressed(Reason::RecentlySurveyed { last: ts("2025-03-12T12:00:01Z") })
        );
        // A survey already due later counts too.
        assert!(matches!(
            last("2025-07-01T00:00:00Z"),
            Decision::Suppressed(Reason::RecentlySurveyed { .. })
        ));
        assert!(matches!(last("2025-09-08T12:00:00Z"), Decision::Send { .. }));
    }

    #[test]
    fn decisions_serialise_for_the_record() {
        let check = |d: Decision, json: &str| {
            assert_eq!(serde_json::to_string(&d).unwrap(), json);
            assert_eq!(serde_json::from_str::<Decision>(json).unwrap(), d);
        };
        check(Decision::NotSampled, r#"{"decision":"not_sampled"}"#);
        check(Decision::Suppressed(Reason::OptedOut), r#"{"decision":"suppressed","reason":"opted_out"}"#);
        check(
            Decision::Suppressed(Reason::RecentlySurveyed { last: ts("2025-06-01T00:00:00Z") }),
            r#"{"decision":"suppressed","reason":"recently_surveyed","last":"2025-06-01T00:00:00Z"}"#,
        );
        check(
            Decision::Send { at: ts("2025-06-01T00:00:00Z"), link_expires_at: ts("2025-06-15T00:00:00Z") },
            r#"{"decision":"send","at":"2025-06-01T00:00:00Z","link_expires_at":"2025-06-15T00:00:00Z"}"#,
        );
        assert_eq!(
            Reason::RecentlySurveyed { last: ts("2025-06-01T00:00:00Z") }.as_str(),
            "recently_surveyed"
        );
    }

    fn survey(answered_at: Option<&str>) -> Survey {
        Survey {
            id: "S1".into(),
            subject: case("K1", "alice", None),
            scale: Scale::Csat,
            sent_at: ts("2025-06-11T12:00:00Z"),
            expires_at: ts("2025-06-25T12:00:00Z"),
            answered_at: answered_at.map(ts),
        }
    }

    #[test]
    fn an_answer_is_accepted_once_before_expiry_and_on_scale() {
        let now = ts("2025-06-12T09:00:00Z");
        assert_eq!(accept_answer(&survey(None), "4", now), Ok(Score::new(4, Scale::Csat).unwrap()));
        assert_eq!(
            accept_answer(&survey(None), "9", now),
            Err(SurveyError::ScoreOutOfRange { score: 9, scale: Scale::Csat })
        );
        assert_eq!(
            accept_answer(&survey(Some("2025-06-12T08:00:00Z")), "4", now).unwrap_err().to_string(),
            "survey S1: already answered at 2025-06-12T08:00:00Z"
        );
        assert!(accept_answer(&survey(None), "4", ts("2025-06-25T11:59:59Z")).is_ok());
        assert_eq!(
            accept_answer(&survey(None), "4", ts("2025-06-25T12:00:00Z")).unwrap_err().to_string(),
            "survey S1: the link expired at 2025-06-25T12:00:00Z (now 2025-06-25T12:00:00Z)"
        );
    }

    fn answer(subject: Subject, score: i64, outcomes: Outcomes) -> Answer {
        Answer { subject, score: Score::new(score, Scale::Nps).unwrap(), outcomes }
    }

    #[test]
    fn incident_caused_cases_never_count_against_their_owner() {
        let calm = Outcomes::default();
        let sore = Outcomes { reopened: true, cancelled_within_90_days: true, ..Outcomes::default() };
        let answers = vec![
            answer(case("K1", "alice", None), 10, calm),
            answer(case("K2", "alice", None), 9, calm),
            answer(case("K3", "alice", None), 7, calm),
            answer(case("K4", "alice", Some("INC-1")), 0, sore),
            answer(case("K5", "alice", Some("INC-1")), 2, sore),
            answer(case("K6", "bob", None), 3, Outcomes { credited: true, ..calm }),
            answer(incident("C7", "INC-1"), 10, Outcomes { credited: true, ..calm }),
            answer(incident("C8", "INC-1"), 6, calm),
            answer(no_problem("C9", "2025-Q3"), 8, calm),
            answer(no_problem("C10", "2025-Q3"), 9, calm),
        ];
        let report = Report::from_answers(&answers);
        let alice = report.figures(&Group::Agent { owner: "alice".into() }, Scale::Nps).unwrap();
        assert_eq!((alice.count, alice.score_sum, alice.promoters, alice.detractors), (3, 26, 2, 0));
        assert_eq!(alice.mean_tenths(), Some(87)); // 26 / 3 = 8.67
        assert_eq!(alice.nps_per_mille(), Some(667)); // 2 / 3
        assert_eq!(alice.share_per_mille(alice.reopened), Some(0));
        let caused = report.figures(&Group::IncidentCase, Scale::Nps).unwrap();
        assert_eq!(
            (caused.count, caused.nps_per_mille(), caused.share_per_mille(caused.reopened)),
            (2, Some(-1000), Some(1000))
        );
        let bob = report.figures(&Group::Agent { owner: "bob".into() }, Scale::Nps).unwrap();
        assert_eq!(
            (bob.count, bob.nps_per_mille(), bob.share_per_mille(bob.credited)),
            (1, Some(-1000), Some(1000))
        );
        let recovered = report.figures(&Group::IncidentCustomer, Scale::Nps).unwrap();
        assert_eq!(
            (recovered.count, recovered.nps_per_mille(), recovered.mean_tenths()),
            (2, Some(0), Some(80))
        );
        let control = report.figures(&Group::NoProblem, Scale::Nps).unwrap();
        assert_eq!((control.count, control.nps_per_mille()), (2, Some(500)));
        // Recovered 0, control 500: no paradox here.
        assert_eq!(report.recovery_paradox_per_mille(), Some(-500));
        let rows = report.rows();
        let groups: Vec<&Group> = rows.iter().map(|r| &r.group).collect();
        assert_eq!(
            groups,
            [
                &Group::Agent { owner: "alice".into() },
                &Group::Agent { owner: "bob".into() },
                &Group::IncidentCase,
                &Group::IncidentCustomer,
                &Group::NoProblem
            ]
        );
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), answers.len() as u64);
        assert_eq!(
            serde_json::to_value(&rows[0]).unwrap(),
            serde_json::json!({"group": {"group": "agent", "owner": "alice"}, "scale": "nps", "count": 3,
                "mean_tenths": 87, "nps_per_mille": 667, "satisfied_per_mille": null,
                "reopened_per_mille": 0, "repeat_contact_per_mille": 0, "credited_per_mille": 0,
                "cancelled_within_90_days_per_mille": 0})
        );
    }

    #[test]
    fn scales_are_reported_apart() {
        let mut report = Report::new();
        report.add(&answer(case("K1", "alice", None), 10, Outcomes::default()));
        report.add(&Answer {
            subject: case("K2", "alice", None),
            score: Score::new(4, Scale::Csat).unwrap(),
            outcomes: Outcomes::default(),
        });
        report.add(&Answer {
            subject: case("K3", "alice", None),
            score: Score::new(2, Scale::Csat).unwrap(),
            outcomes: Outcomes::default(),
        });
        let alice = Group::Agent { owner: "alice".into() };
        let nps = report.figures(&alice, Scale::Nps).unwrap();
        let csat = report.figures(&alice, Scale::Csat).unwrap();
        assert_eq!(
            (nps.count, nps.mean_tenths(), nps.nps_per_mille(), nps.satisfied_per_mille()),
            (1, Some(100), Some(1000), None)
        );
        assert_eq!(
            (csat.count, csat.mean_tenths(), csat.nps_per_mille(), csat.satisfied_per_mille()),
            (2, Some(30), None, Some(500))
        );
        assert_eq!(Figures::new(Scale::Nps).mean_tenths(), None);
        assert_eq!(Figures::new(Scale::Nps).nps_per_mille(), None);
        assert_eq!(report.nps_difference_per_mille(&alice, &Group::NoProblem), None);
    }

    proptest! {
        #[test]
        fn figures_are_exact(scores in prop::collection::vec((0i64..=10, any::<bool>(), any::<bool>()), 0..200)) {
            let answers: Vec<Answer> = scores
                .iter()
                .enumerate()
                .map(|(i, &(s, reopened, credited))| {
                    answer(case(&format!("K{i}"), "alice", None), s, Outcomes { reopened, credited, ..Outcomes::default() })
                })
                .collect();
            let report = Report::from_answers(&answers);
            let Some(f) = report.figures(&Group::Agent { owner: "alice".into() }, Scale::Nps) else {
                prop_assert!(answers.is_empty());
                return Ok(());
            };
            let n = scores.len() as i64;
            let sum: i64 = scores.iter().map(|s| s.0).sum();
            prop_assert_eq!(f.count, n as u64);
            prop_assert_eq!(f.mean(), Some((sum as u64, n as u64)));
            // The mean in tenths is within half a tenth of sum / count, halves up.
            let tenths = f.mean_tenths().unwrap();
            prop_assert!(2 * (10 * sum - tenths * n).abs() <= n);
            prop_assert!(2 * (10 * sum - tenths * n) != n, "a half rounds up");
            prop_assert!((0..=100).contains(&tenths));
            let promoters = scores.iter().filter(|s| s.0 >= 9).count() as i64;
            let detractors = scores.iter().filter(|s| s.0 <= 6).count() as i64;
            let nps = f.nps_per_mille().unwrap();
            prop_assert!((-1000..=1000).contains(&nps));
            prop_assert!(2 * (1000 * (promoters - detractors) - nps * n).abs() <= n);
            let reopened = scores.iter().filter(|s| s.1).count() as i64;
            let share = f.share_per_mille(f.reopened).unwrap();
            prop_assert!((0..=1000).contains(&share));
            prop_assert!(2 * (1000 * reopened - share * n).abs() <= n);
        }

        #[test]
        fn incident_caused_answers_change_no_owner_s_figures(
            own in prop::collection::vec((0i64..=10, 0usize..3), 0..50),
            caused in prop::collection::vec((0i64..=10, 0usize..3), 1..50),
        ) {
            let owners = ["alice", "bob", "carol"];
            let mine: Vec<Answer> = own
                .iter()
                .enumerate()
                .map(|(i, &(s, o))| answer(case(&format!("K{i}"), owners[o], None), s, Outcomes::default()))
                .collect();
            let theirs: Vec<Answer> = caused
                .iter()
                .enumerate()
                .map(|(i, &(s, o))| answer(case(&format!("X{i}"), owners[o], Some("INC-1")), s, Outcomes::default()))
                .collect();
            let before = Report::from_answers(&mine);
            let after = Report::from_answers(mine.iter().chain(&theirs));
            for owner in owners {
                let g = Group::Agent { owner: owner.into() };
                prop_assert_eq!(before.figures(&g, Scale::Nps), after.figures(&g, Scale::Nps));
            }
            prop_assert_eq!(after.figures(&Group::IncidentCase, Scale::Nps).unwrap().count, caused.len() as u64);
        }

        #[test]
        fn nps_differences_are_exact(
            a in prop::collection::vec(0i64..=10, 1..100),
            b in prop::collection::vec(0i64..=10, 1..100),
        ) {
            let answers: Vec<Answer> = a
                .iter()
                .enumerate()
                .map(|(i, &s)| answer(incident(&format!("C{i}"), "INC-1"), s, Outcomes::default()))
                .chain(b.iter().enumerate().map(|(i, &s)| answer(no_problem(&format!("C{i}"), "R1"), s, Outcomes::default())))
                .collect();
            let report = Report::from_answers(&answers);
            let net = |v: &[i64]| v.iter().filter(|&&s| s >= 9).count() as i64 - v.iter().filter(|&&s| s <= 6).count() as i64;
            let (na, nb) = (a.len() as i64, b.len() as i64);
            let diff = report.recovery_paradox_per_mille().unwrap();
            // |diff - 1000 (net_a / na - net_b / nb)| <= 1/2
            prop_assert!(2 * (1000 * (net(&a) * nb - net(&b) * na) - diff * na * nb).abs() <= na * nb);
            prop_assert!((-2000..=2000).contains(&diff));
        }

        #[test]
        fn the_owner_never_steers_the_sample(id in "[A-Z0-9-]{1,20}", owner in "[a-z]{1,12}", rate in 0u32..=PPM) {
            let fixed = ts("2025-06-10T12:00:00Z");
            let rules = SurveyRules { sample_rate_ppm: rate, ..SurveyRules::default() };
            let base = decide(&case(&id, "alice", None), fixed, None, &CLEAR, &KEY, &rules);
            prop_assert_eq!(decide(&case(&id, &owner, None), fixed, None, &CLEAR, &KEY, &rules), base);
        }
    }
}
