//! Surveys (issue 6): the system, never the person being rated, decides who is asked.
//!
//! Every tick decides, once per subject, for each case fixed and each customer recovered
//! from an incident `delay_after_fix` ago: sampled or not by an HMAC-SHA256 of the
//! subject's key under a secret kept in the database (so nobody can steer the draw, and
//! every instance draws the same), then suppressed or sent by the core's rules
//! (`amends_core::survey::decide`). The decision is recorded under the subject's key and
//! never overwritten: a re-run draws nothing twice. Decisions to send are then sent: a
//! notice with a single-use signed link, keyed by the survey id.
//!
//! The link opens a page that asks (a mail scanner following it answers nothing); only
//! the form it shows records an answer, once. Nothing here is reachable with an agent's
//! token: agents cannot send, suppress, see or edit surveys.

use super::{Engine, EngineError};
use crate::optout::{OptOutClaim, OptOutError, OptOutKey, Purpose};
use amends_core::preferences::{Channel, Topic};
use amends_core::survey::{
    self, Answer, Decision, Outcomes, Report, Row, SampleKey, Scale, Score, Standing, Subject, SubjectKind,
    SurveyError, SurveyRules,
};
use amends_store::{CaseRow, RecoveredRow, StoreError, SurveyDecisionRow, SurveyFilter};
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::Sha256;

/// The secret that draws the sample, in the `secrets` table.
const SAMPLE_KEY_NAME: &str = "survey_sample_key";
/// The secret that signs survey links.
const LINK_KEY_NAME: &str = "survey_link_key";
/// Subjects decided, and surveys sent, per tick; the rest wait for the next.
const STEP_PAGE: u32 = 1_000;
/// The most answered surveys one report reads (the newest are not favoured: by key).
pub const REPORT_ANSWERS_MAX: u32 = 100_000;
/// How long after the fix the outcome signals look.
const OUTCOME_DAYS: i64 = 90;

/// How far back a control customer must have had no problem: no case opened and no
/// notice of an incident.
const CONTROL_CLEAN_DAYS: i64 = 90;
/// The most customers one control round asks (its rate is the caller's).
pub const CONTROL_ROUND_MAX: usize = 100_000;

/// What drawing a control round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ControlReport {
    pub round: String,
    /// Active customers drawn by the key at the round's rate.
    pub drawn: u64,
    /// Of those, customers with a problem in the last 90 days: not a control.
    pub had_a_problem: u64,
    /// Of the rest, those decided to be asked (sent or due), as on record: a re-run of the
    /// round changes no decision and reports the same.
    pub to_ask: u64,
}

/// What one pass of decisions reads once: the key, the book, the customers' preferences,
/// the rules it decides under and the instant it decides at.
struct Drawing {
    key: SamplingKey,
    book: std::sync::Arc<crate::book::LoadedBook>,
    preferences: std::sync::Arc<super::audience::PreferenceMap>,
    rules: SurveyRules,
    now: Timestamp,
}

/// HMAC-SHA256 under the sampling secret.
struct SamplingKey(Vec<u8>);

impl SampleKey for SamplingKey {
    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SurveysError {
    /// A forged, altered or expired link: the message names nobody.
    #[error("{0}")]
    Link(#[from] OptOutError),
    /// Answered already, expired, or a score off the scale.
    #[error("{0}")]
    Refused(SurveyError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for SurveysError {
    fn from(e: StoreError) -> Self {
        SurveysError::Engine(e.into())
    }
}

/// What one tick's survey step did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SurveyReport {
    pub decided: u64,
    pub sent: u64,
}

/// What the answer page shows: the question on the survey's scale.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyQuestion {
    /// Whose survey it is: the page is written in their language.
    pub customer_id: String,
    pub survey_id: String,
    pub scale: Scale,
    pub answered: bool,
}

/// `GET /v1/surveys/report`: scores by group next to what happened after, and every
/// decision counted by kind and reason.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyReportView {
    pub rows: Vec<Row>,
    /// NPS of customers recovered from an incident minus that of customers with no
    /// problem, per mille; `null` until both groups have answers.
    pub recovery_paradox_per_mille: Option<i64>,
    pub decisions: Vec<DecisionCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionCount {
    pub decision: String,
    pub reason: Option<String>,
    pub count: u64,
}

impl Engine {
    pub(crate) async fn secret_key(&self, name: &str) -> Result<OptOutKey, EngineError> {
        crate::unsubscribe::stored_key_named(self.store.as_ref(), name).await.map_err(|e| match e {
            crate::unsubscribe::UnsubscribeError::Store(e) => e.into(),
            other => EngineError::Invalid(vec![format!("secret {name}: {other}")]),
        })
    }

    async fn sampling_key(&self) -> Result<SamplingKey, EngineError> {
        Ok(SamplingKey(self.secret_key(SAMPLE_KEY_NAME).await?.bytes().to_vec()))
    }

    /// What a pass of decisions reads once, rather than once per subject.
    async fn drawing(&self, rules: SurveyRules) -> Result<Drawing, EngineError> {
        Ok(Drawing {
            key: self.sampling_key().await?,
            book: self.book().await?,
            preferences: self.preferences().await?,
            rules,
            now: self.clock.now(),
        })
    }

    /// The survey step of every tick: decide for what fell due, then send what was decided.
    pub async fn run_survey_steps(&self) -> Result<SurveyReport, EngineError> {
        let d = self.drawing(self.config.surveys).await?;
        let now = d.now;
        let fixed_by = now - d.rules.delay_after_fix;
        let mut report = SurveyReport::default();
        for case in self.store.cases_fixed_unsurveyed(fixed_by, STEP_PAGE).await? {
            let subject = case_subject(&case);
            let Some(fixed_at) = case.fixed_at else { continue };
            match self.decide(&d, subject, fixed_at, case.status == amends_core::case::Status::Open).await {
                Ok(_) => report.decided += 1,
                Err(e) => {
                    tracing::error!(case = %case.case_id, error = %e, "survey decision failed; retrying next pass")
                }
            }
        }
        for recovered in self.store.recovered_unsurveyed(fixed_by, STEP_PAGE).await? {
            let RecoveredRow { incident_id, customer_id, resolved_at } = recovered;
            let subject = Subject { customer_id, kind: SubjectKind::Incident { incident_id } };
            let customer = subject.customer_id.clone();
            match self.decide(&d, subject, resolved_at, false).await {
                Ok(_) => report.decided += 1,
                Err(e) => {
                    tracing::error!(%customer, error = %e, "survey decision failed; retrying next pass")
                }
            }
        }
        report.sent = self.send_due_surveys(now).await?;
        Ok(report)
    }

    /// Draws the control group of `round` (say `2026-Q4`): active customers drawn by the
    /// sampling key at `rate_ppm` (the draw includes the round, so each round draws
    /// afresh) who had no problem in the last 90 days (no case, no incident notice), each
    /// decided like any subject, their "fix" being now. Only drawn customers get a
    /// decision record; a re-run of the same round records nothing new.
    pub async fn draw_control_round(&self, round: &str, rate_ppm: u32) -> Result<ControlReport, EngineError> {
        amends_core::book::parse_id("round", round).map_err(|e| EngineError::Invalid(vec![e.to_string()]))?;
        if rate_ppm > survey::PPM {
            return Err(EngineError::Invalid(vec![format!("rate_ppm: {rate_ppm} is over {}", survey::PPM)]));
        }
        let d = self.drawing(SurveyRules { sample_rate_ppm: rate_ppm, ..self.config.surveys }).await?;
        let (now, key, book) = (d.now, &d.key, &d.book);
        let mut report = ControlReport { round: round.to_string(), ..ControlReport::default() };
        let drawn: Vec<Subject> = book
            .customers
            .iter()
            .filter(|c| c.status == amends_core::book::CustomerStatus::Active)
            .map(|c| Subject {
                customer_id: c.id.clone(),
                kind: SubjectKind::NoProblem { round: round.to_string() },
            })
            .filter(|subject| survey::is_sampled(subject, key, rate_ppm))
            .take(CONTROL_ROUND_MAX)
            .collect();
        let since = now - SignedDuration::from_hours(24 * CONTROL_CLEAN_DAYS);
        for subject in drawn {
            report.drawn += 1;
            if self.had_a_problem(&subject.customer_id, since).await? {
                report.had_a_problem += 1;
                continue;
            }
            if self.decide(&d, subject, now, false).await?.decision == "send" {
                report.to_ask += 1;
            }
        }
        Ok(report)
    }

    async fn had_a_problem(&self, customer_id: &str, since: Timestamp) -> Result<bool, EngineError> {
        let filter = amends_store::CaseFilter {
            customer_id: Some(customer_id.into()),
            limit: 1_000,
            ..amends_store::CaseFilter::default()
        };
        if self.store.cases(&filter).await?.iter().any(|c| c.opened_at >= since) {
            return Ok(true);
        }
        let notices = self.store.notices_for_customer(customer_id).await?;
        Ok(notices.iter().any(|n| {
            n.created_at >= since
                && amends_core::notice::NoticeKind::parse(&n.kind).is_some_and(|k| k.is_incident())
        }))
    }

    /// Decides for one subject from the records, under `rules`, and records the decision
    /// once; the decision on record (this one, or the one recorded before).
    async fn decide(
        &self,
        d: &Drawing,
        subject: Subject,
        fixed_at: Timestamp,
        case_reopened: bool,
    ) -> Result<SurveyDecisionRow, EngineError> {
        let (now, rules) = (d.now, &d.rules);
        let subject_key = subject.key();
        let customer = d.book.customer_index(&subject.customer_id).map(|c| &d.book.customers[c as usize]);
        let prefs = d.preferences.get(subject.customer_id.as_str()).cloned().unwrap_or_default();
        let standing = Standing {
            opted_out: !Channel::ALL.into_iter().any(|c| prefs.allows(Topic::Survey, c)),
            customer_cancelled: customer
                .is_none_or(|c| c.status != amends_core::book::CustomerStatus::Active),
            case_reopened,
            contactable: customer.is_some_and(|c| c.email.is_some() || c.phone.is_some()),
        };
        let last = self.store.last_survey_send(&subject.customer_id, &subject_key).await?;
        let decision = survey::decide(&subject, fixed_at, last, &standing, &d.key, rules);
        let (case_id, incident_id) = match &subject.kind {
            SubjectKind::Case { case_id, incident_id, .. } => (Some(case_id.clone()), incident_id.clone()),
            SubjectKind::Incident { incident_id } => (None, Some(incident_id.clone())),
            SubjectKind::NoProblem { .. } => (None, None),
        };
        let (name, reason, send_at, expires_at) = match decision {
            Decision::Send { at, link_expires_at } => ("send", None, Some(at), Some(link_expires_at)),
            Decision::NotSampled => ("not_sampled", None, None, None),
            Decision::Suppressed(reason) => ("suppressed", Some(reason.as_str().to_string()), None, None),
        };
        let row = SurveyDecisionRow {
            subject_key,
            customer_id: subject.customer_id.clone(),
            subject: serde_json::to_string(&subject).unwrap_or_default(),
            case_id,
            incident_id,
            decision: name.into(),
            reason,
            decided_at: now,
            survey_id: None,
            send_at,
            expires_at,
            scale: send_at.map(|_| rules.scale.as_str().to_string()),
            sent_at: None,
            answered_at: None,
            score: None,
        };
        Ok(self.store.record_survey_decision(&row).await?)
    }

    /// Sends every survey due: the notice (keyed by the survey id, so a re-run queues
    /// nothing twice), then the survey marked sent.
    async fn send_due_surveys(&self, now: Timestamp) -> Result<u64, EngineError> {
        let link_key = self.secret_key(LINK_KEY_NAME).await?;
        let book = self.book().await?;
        let mut sent = 0;
        for row in self.store.surveys_due(now, STEP_PAGE).await? {
            let (Some(id), Some(expires_at)) = (row.survey_id.clone(), row.expires_at) else { continue };
            let Some(index) = book.customer_index(&row.customer_id) else { continue };
            let customer = &book.customers[index as usize];
            let claim = OptOutClaim {
                customer_id: row.customer_id.to_string(),
                topic: Some(id.clone()),
                channel: None,
                expires_at,
                token_id: id.clone(),
            };
            let token = link_key
                .sign_for(Purpose::Survey, &claim)
                .map_err(|e| EngineError::Invalid(vec![e.to_string()]))?;
            let base = amends_core::notice::NoticeContext {
                provider_name: self.config.provider_name.clone(),
                case_id: row.case_id.clone().unwrap_or_default(),
                survey_url: Some(format!("{}/v1/surveys/answer?token={token}", self.config.public_url)),
                survey_expires: Some(amends_core::notice::format_local(
                    expires_at,
                    &customer.zone.tz,
                    &customer.locale,
                )),
                ..Default::default()
            };
            match self.queue_one(&book, amends_core::notice::NoticeKind::Survey, &id, base, index).await {
                Ok(_) => {
                    self.store.mark_survey_sent(&id, now).await?;
                    sent += 1;
                }
                Err(e) => tracing::error!(survey = %id, error = %e, "survey not queued; retrying next pass"),
            }
        }
        Ok(sent)
    }

    /// The survey a link is for, checked: signed by us, not expired.
    async fn survey_of_link(&self, token: &str) -> Result<(SurveyDecisionRow, survey::Survey), SurveysError> {
        // A stranger's request: the key is read, never created.
        let key = crate::unsubscribe::checking_key_named(self.store.as_ref(), LINK_KEY_NAME).await.map_err(
            |e| match e {
                crate::unsubscribe::UnsubscribeError::Link(e) => SurveysError::Link(e),
                crate::unsubscribe::UnsubscribeError::Store(e) => e.into(),
                other => EngineError::Invalid(vec![format!("secret {LINK_KEY_NAME}: {other}")]).into(),
            },
        )?;
        let claim = key.verify_for(Purpose::Survey, token, self.clock.now())?;
        let id = claim.topic.ok_or(OptOutError::Invalid)?;
        let row = self.store.survey(&id).await?.ok_or(OptOutError::Invalid)?;
        if row.customer_id != claim.customer_id {
            return Err(OptOutError::Invalid.into());
        }
        let survey = stored_survey(&row).ok_or(OptOutError::Invalid)?;
        Ok((row, survey))
    }

    /// What the link's page asks. Reading it records nothing.
    pub async fn survey_question(&self, token: &str) -> Result<SurveyQuestion, SurveysError> {
        let (row, survey) = self.survey_of_link(token).await?;
        Ok(SurveyQuestion {
            customer_id: row.customer_id.to_string(),
            survey_id: survey.id,
            scale: survey.scale,
            answered: survey.answered_at.is_some(),
        })
    }

    /// Records the answer to the link's survey, once: a second answer, a score off the
    /// scale or an expired link is refused and changes nothing.
    /// Returns the score and whose survey it was.
    pub async fn answer_survey(&self, token: &str, score: &str) -> Result<(Score, String), SurveysError> {
        let (row, survey) = self.survey_of_link(token).await?;
        let now = self.clock.now();
        let score = survey::accept_answer(&survey, score, now).map_err(SurveysError::Refused)?;
        if !self.store.answer_survey(&survey.id, i16::from(score.value()), now).await? {
            let answered_at = self.store.survey(&survey.id).await?.and_then(|r| r.answered_at).unwrap_or(now);
            return Err(SurveysError::Refused(SurveyError::AlreadyAnswered {
                survey_id: survey.id,
                answered_at,
            }));
        }
        Ok((score, row.customer_id.to_string()))
    }

    /// Scores by group beside their outcome signals, and the decisions counted.
    pub async fn survey_report(&self) -> Result<SurveyReportView, SurveysError> {
        let filter =
            SurveyFilter { decision: None, answered_only: true, after_key: None, limit: REPORT_ANSWERS_MAX };
        let mut answers = Vec::new();
        for row in self.store.survey_decisions(&filter).await? {
            let (Some(survey), Some(score)) = (stored_survey(&row), row.score) else { continue };
            let Ok(score) = Score::new(i64::from(score), survey.scale) else { continue };
            let fixed_at = row.send_at.map_or(survey.sent_at, |at| at - self.config.surveys.delay_after_fix);
            let outcomes = self.outcomes(&row, fixed_at).await?;
            answers.push(Answer { subject: survey.subject, score, outcomes });
        }
        let report = Report::from_answers(&answers);
        let decisions = self
            .store
            .survey_decision_counts()
            .await?
            .into_iter()
            .map(|(decision, reason, count)| DecisionCount { decision, reason, count })
            .collect();
        Ok(SurveyReportView {
            rows: report.rows(),
            recovery_paradox_per_mille: report.recovery_paradox_per_mille(),
            decisions,
        })
    }

    /// What happened after the fix, from the records: the case re-opened, the customer
    /// got in touch again, was credited for it, or cancelled, within 90 days.
    async fn outcomes(&self, row: &SurveyDecisionRow, fixed_at: Timestamp) -> Result<Outcomes, SurveysError> {
        let until = fixed_at + SignedDuration::from_hours(24 * OUTCOME_DAYS);
        let reopened = match &row.case_id {
            Some(case_id) => self.store.case_events(case_id).await?.iter().any(|e| e.kind == "reopened"),
            None => false,
        };
        let repeat_contact =
            self.store.customer_contacts_between(&row.customer_id, fixed_at, until).await? > 0;
        let filter = amends_store::CreditFilter {
            customer_id: Some(row.customer_id.clone()),
            ..amends_store::CreditFilter::default()
        };
        let sources: Vec<&str> =
            [row.case_id.as_deref(), row.incident_id.as_deref()].into_iter().flatten().collect();
        let credited = self.store.credits(&filter).await?.iter().any(|c| {
            sources.iter().any(|s| c.source_event == *s || c.source_event.starts_with(&format!("{s}/")))
        });
        let cancelled_within_90_days = self
            .store
            .cancellation_of(&row.customer_id)
            .await?
            .is_some_and(|c| c.requested_at >= fixed_at && c.requested_at < until);
        Ok(Outcomes { reopened, repeat_contact, credited, cancelled_within_90_days })
    }
}

/// The subject of a fixed case: caused by an incident only when amends opened it from
/// one (its source), never by anything its owner said, so an owner cannot move a case out
/// of their own figures.
fn case_subject(case: &CaseRow) -> Subject {
    let incident_id = (case.source == "incident").then(|| case.source_id.clone()).flatten();
    Subject {
        customer_id: case.customer_id.clone(),
        kind: SubjectKind::Case {
            case_id: case.case_id.clone(),
            owner: case.owner.clone(),
            incident_id: incident_id.map(Into::into),
        },
    }
}

/// The core's survey of a sent decision; `None` for a decision not to send.
fn stored_survey(row: &SurveyDecisionRow) -> Option<survey::Survey> {
    let scale = match row.scale.as_deref()? {
        "nps" => Scale::Nps,
        "csat" => Scale::Csat,
        _ => return None,
    };
    Some(survey::Survey {
        id: row.survey_id.clone()?,
        subject: serde_json::from_str(&row.subject).ok()?,
        scale,
        sent_at: row.sent_at.or(row.send_at)?,
        expires_at: row.expires_at?,
        answered_at: row.answered_at,
    })
}
