//! The credit step: every customer affected by a resolved incident is credited by the
//! policy, into the append-only ledger, and told about it.
//!
//! Overlapping incidents count once per customer: an incident's credit leaves out the
//! time already covered by incidents resolved before it (ordered by resolution time, then
//! id), so the result does not depend on when or how often the step runs.

use super::fanout::{Batch, Instants};
use super::{Engine, EngineError, join};
use crate::book::LoadedBook;
use amends_core::interval::Interval;
use amends_core::money::Money;
use amends_core::notice::NoticeKind;
use amends_core::policy::{CreditFacts, Evaluation, Policy, PolicyError, evaluate};
use amends_store::{CreditFilter, CreditRow, IncidentRow};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One evaluation with its lines already as JSON, shared by every customer it fits.
#[derive(Debug)]
pub struct PricedCredit {
    pub evaluation: Evaluation,
    pub lines_json: String,
    /// The credit notice's own fields (amount, statement, explanation), built once.
    pub notice_fields: minijinja::Value,
}

#[derive(Debug)]
pub struct CreditComputation {
    pub customer: u32,
    pub credit: Arc<PricedCredit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CreditReport {
    pub incidents: u64,
    pub credits_written: u64,
    /// Credits that were already in the ledger with the same amount: re-runs.
    pub credits_unchanged: u64,
    /// Affected customers owed nothing (under the threshold, or already credited).
    pub zero_credits: u64,
    /// Total credited by this run, per currency, in minor units.
    pub total_minor: BTreeMap<String, i64>,
    pub notices_queued: u64,
    /// Incidents whose credit step failed this pass (logged; retried on the next).
    pub failed: u64,
}

impl CreditReport {
    fn add(&mut self, o: CreditReport) {
        self.incidents += o.incidents;
        self.credits_written += o.credits_written;
        self.credits_unchanged += o.credits_unchanged;
        self.zero_credits += o.zero_credits;
        for (currency, minor) in o.total_minor {
            *self.total_minor.entry(currency).or_default() += minor;
        }
        self.notices_queued += o.notices_queued;
        self.failed += o.failed;
    }
}

/// An earlier incident overlapping this one: its outage and who it covered.
pub struct EarlierOutage {
    pub outage: Interval,
    /// Indexed by customer: covered or not.
    pub covered: Vec<bool>,
}

/// Computes every affected customer's credit in memory. Customers who share (plan, zone,
/// billing day), were customers for the whole outage and had no earlier overlapping
/// outage get identical lines, so those are evaluated once per group.
pub fn compute_credits(
    book: &LoadedBook,
    policy: &Policy,
    outage: Interval,
    issued_at: Timestamp,
    affected: &[u32],
    earlier: &[EarlierOutage],
) -> Result<Vec<CreditComputation>, PolicyError> {
    let mut groups: HashMap<(u32, u32, u8), Arc<PricedCredit>> = HashMap::new();
    let mut out = Vec::with_capacity(affected.len());
    for &c in affected {
        let customer = &book.customers[c as usize];
        let already: Vec<Interval> =
            earlier.iter().filter(|e| e.covered[c as usize]).map(|e| e.outage).collect();
        let facts = CreditFacts {
            monthly_price: book.plan_of(c).monthly_price,
            billing_day: customer.billing_day,
            zone_name: &customer.zone.name,
            zone: &customer.zone.tz,
            active_since: customer.active_since,
            outage,
            already_credited: &already,
            issued_at,
        };
        let shareable = already.is_empty() && customer.active_since <= outage.start();
        let credit = if shareable {
            let key = (book.customer_plan[c as usize], book.customer_zone[c as usize], customer.billing_day);
            match groups.get(&key) {
                Some(credit) => credit.clone(),
                None => {
                    let credit = price(evaluate(policy, &facts)?, facts.monthly_price);
                    groups.insert(key, credit.clone());
                    credit
                }
            }
        } else {
            price(evaluate(policy, &facts)?, facts.monthly_price)
        };
        out.push(CreditComputation { customer: c, credit });
    }
    Ok(out)
}

fn price(evaluation: Evaluation, price: Money) -> Arc<PricedCredit> {
    let lines_json = serde_json::to_string(&evaluation.lines).unwrap_or_else(|_| "[]".into());
    let notice_fields = minijinja::context! {
        credit_amount => Money::new(evaluation.total_minor, price.currency).to_string(),
        statement => evaluation.statement.to_string(),
        credit_explanation => evaluation.explanation.as_str(),
    };
    Arc::new(PricedCredit { evaluation, lines_json, notice_fields })
}

/// The ledger key: (customer, source event, policy, version).
pub fn credit_key(customer_id: &str, incident_id: &str, policy: &Policy) -> String {
    format!("{customer_id}/{incident_id}/{}/{}", policy.id, policy.version)
}

impl Engine {
    /// Credits every resolved incident whose credit step has not finished.
    pub async fn credit_resolved(&self) -> Result<CreditReport, EngineError> {
        let pending = self.store.uncredited_resolved().await?;
        let mut report = CreditReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        let book = self.book().await?;
        let all = self.store.incidents(false).await?;
        for incident in pending {
            let mut this = CreditReport::default();
            let done = match self.credit_incident(&book, &incident, &all, &mut this).await {
                Ok(()) => self
                    .store
                    .mark_credited(&incident.incident_id, self.clock.now())
                    .await
                    .map_err(Into::into),
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => {
                    this.incidents = 1;
                    report.add(this);
                }
                Err(error) => {
                    // One incident that cannot be credited (a conflicting ledger entry, say)
                    // must not hold up every incident after it.
                    tracing::error!(incident = %incident.incident_id, %error, "credit step failed; retrying next pass");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn credit_incident(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        all: &[IncidentRow],
        report: &mut CreditReport,
    ) -> Result<(), EngineError> {
        let Some(resolved_at) = incident.resolved_at else { return Ok(()) };
        self.refuse_a_second_policy(incident).await?;
        let Some(outage) = Interval::new(incident.declared_at, resolved_at) else { return Ok(()) };
        let earlier = earlier_outages(book, incident, outage, all);
        let affected = book.affected(&book.element_indices(&incident.element_ids));
        let (b, policy) = (book.clone(), self.policy.clone());
        let started = std::time::Instant::now();
        let computed = tokio::task::spawn_blocking(move || {
            compute_credits(&b, &policy, outage, resolved_at, &affected, &earlier)
        })
        .await
        .map_err(join)??;
        let now = self.clock.now();
        let mut rows = Vec::with_capacity(computed.len());
        let mut owed = Vec::with_capacity(computed.len());
        for c in computed {
            if c.credit.evaluation.total_minor == 0 {
                report.zero_credits += 1;
                continue;
            }
            rows.push(self.credit_row(book, incident, &c, now));
            owed.push((c.customer, c.credit));
        }
        let computed_in = started.elapsed();
        let written = self.store.append_credits(&mut rows).await?;
        let written_in = started.elapsed();
        report.credits_written += written.inserted;
        report.credits_unchanged += written.unchanged;
        if written.inserted > 0 {
            for row in &rows {
                *report.total_minor.entry(row.currency.clone()).or_default() += row.amount_minor;
            }
        }
        drop(rows); // a million ledger rows need not live on while the notices render
        report.notices_queued += self.queue_credit_notices(book, incident, outage, owed).await?;
        tracing::info!(
            incident = %incident.incident_id,
            credits = written.inserted + written.unchanged,
            computed_ms = computed_in.as_millis() as u64,
            ledger_ms = (written_in - computed_in).as_millis() as u64,
            notices_ms = (started.elapsed() - written_in).as_millis() as u64,
            "credit step done"
        );
        Ok(())
    }

    /// An incident is credited under one policy. If a run under another policy (or
    /// version) already wrote credits for it (a crash, then a restart with a new policy
    /// file), writing ours would credit its customers twice under different keys.
    async fn refuse_a_second_policy(&self, incident: &IncidentRow) -> Result<(), EngineError> {
        let filter = CreditFilter {
            source_event: Some(incident.incident_id.clone()),
            limit: Some(1),
            ..CreditFilter::default()
        };
        match self.store.credits(&filter).await?.first() {
            Some(c)
                if c.policy_id != self.policy.id || c.policy_version != i64::from(self.policy.version) =>
            {
                Err(EngineError::Invalid(vec![format!(
                    "incident {} already has credits under policy {} version {}; this run uses {} version {}; \
                     finish its credit step with the policy it started with",
                    incident.incident_id, c.policy_id, c.policy_version, self.policy.id, self.policy.version
                )]))
            }
            _ => Ok(()),
        }
    }

    /// The ledger entry for one computed credit.
    pub fn credit_row(
        &self,
        book: &LoadedBook,
        incident: &IncidentRow,
        c: &CreditComputation,
        now: Timestamp,
    ) -> CreditRow {
        let customer = &book.customers[c.customer as usize];
        let e = &c.credit.evaluation;
        CreditRow {
            key: credit_key(&customer.id, &incident.incident_id, &self.policy),
            customer_id: customer.id.clone(),
            source_event: incident.incident_id.clone(),
            policy_id: self.policy.id.clone(),
            policy_version: i64::from(self.policy.version),
            amount_minor: e.total_minor,
            currency: e.currency.clone(),
            statement: e.statement.to_string(),
            explanation: e.explanation.clone(),
            lines_json: c.credit.lines_json.clone(),
            created_at: now,
        }
    }

    async fn queue_credit_notices(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        outage: Interval,
        owed: Vec<(u32, Arc<PricedCredit>)>,
    ) -> Result<u64, EngineError> {
        let batch = Batch {
            kind: NoticeKind::Credit,
            seq: 0,
            incident_id: &incident.incident_id,
            base: self.incident_context(incident),
            instants: Instants {
                outage_start: Some(outage.start()),
                restored_at: Some(outage.end()),
                ..Instants::default()
            },
            now: self.clock.now(),
        };
        Ok(self
            .render_and_queue(book, &batch, owed, |credit| credit.notice_fields.clone())
            .await?
            .notices_queued)
    }
}

/// Incidents resolved before `incident` (by resolution time, then id) whose outage
/// overlaps it, each with the customers it covered.
fn earlier_outages(
    book: &LoadedBook,
    incident: &IncidentRow,
    outage: Interval,
    all: &[IncidentRow],
) -> Vec<EarlierOutage> {
    let this = (incident.resolved_at, incident.incident_id.as_str());
    all.iter()
        .filter(|o| o.resolved_at.is_some() && (o.resolved_at, o.incident_id.as_str()) < this)
        .filter_map(|o| {
            let other = Interval::new(o.declared_at, o.resolved_at?)?;
            other.overlaps(&outage).then_some((o, other))
        })
        .map(|(o, other)| {
            let mut covered = vec![false; book.customers.len()];
            for c in book.affected(&book.element_indices(&o.element_ids)) {
                covered[c as usize] = true;
            }
            EarlierOutage { outage: other, covered }
        })
        .collect()
}
