//! The credit step: every customer affected by a resolved incident is credited, under
//! every policy assigned to them, into the append-only ledger, and told about it once.
//!
//! Overlapping incidents count once per customer. An incident's credit is its marginal
//! entitlement ([`amends_core::marginal`], where the arithmetic and its property tests
//! live): the policy evaluated over the customer's earlier incidents plus this one, less
//! the same policy over the earlier ones alone. Earlier means resolved before this one (by
//! resolution time, then id) within the policy's look-back, so the sum of a customer's
//! credits is what the policy owes for all their outages together, whatever order or how
//! often the step runs.

use super::fanout::{Batch, Instants};
use super::{Engine, EngineError, join};
use crate::book::LoadedBook;
use amends_core::book::Locale;
use amends_core::credit_words::{CreditedLine, customer_explanation};
use amends_core::cycle::cycle_containing;
use amends_core::id::IncidentId;
use amends_core::interval::Interval;
pub use amends_core::marginal::{PricedCredit, marginal, price};
use amends_core::money::{Money, format_minor};
use amends_core::notice::NoticeKind;
use amends_core::policy::facts::CUSTOMERS_AFFECTED;
use amends_core::policy::facts::{Event, EventKind};
use amends_core::policy::{Attribute, Attributes};
use amends_core::policy::{CustomerFacts, Facts, Policy, PolicyError, PricePoint, evaluate};
use amends_store::{CreditRow, ImpactRow, IncidentRow};
use jiff::Timestamp;
use jiff::civil::Date;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    /// Affected customers owed nothing under a policy (under a threshold, already
    /// credited, excluded, or only on request).
    pub zero_credits: u64,
    /// Total credited by this run, per currency, in minor units.
    pub total_minor: BTreeMap<String, i64>,
    pub notices_queued: u64,
    /// Incidents whose credit step failed this pass (logged; retried on the next).
    pub failed: u64,
    /// Cases opened for customers still offline at resolution (see `open_outage_cases`).
    pub cases_opened: u64,
    /// Amounts payable only on request, offered on the customers' pages (new this run).
    pub on_request_offers: u64,
}

impl CreditReport {
    fn add(&mut self, o: CreditReport) {
        self.incidents += o.incidents;
        self.credits_written += o.credits_written;
        self.credits_unchanged += o.credits_unchanged;
        self.zero_credits += o.zero_credits;
        self.cases_opened += o.cases_opened;
        self.on_request_offers += o.on_request_offers;
        for (currency, minor) in o.total_minor {
            *self.total_minor.entry(currency).or_default() += minor;
        }
        self.notices_queued += o.notices_queued;
        self.failed += o.failed;
    }
}

/// An earlier incident near this one: its id, its outage and who it covered.
pub struct EarlierOutage {
    pub id: Arc<str>,
    pub outage: Interval,
    /// Indexed by customer: covered or not.
    pub covered: Vec<bool>,
    /// For a detected incident: each covered customer's own downtime, used instead of
    /// `outage`.
    pub own: Option<Arc<OwnDowntime>>,
    /// Its outage events' attributes (see [`outage_attributes`]).
    pub attributes: Arc<Attributes>,
}

/// Each customer's own intervals without service in one detected incident.
pub type OwnDowntime = HashMap<u32, Vec<Interval>>;

/// The incident being credited.
#[derive(Debug, Clone)]
pub struct ThisOutage {
    pub id: Arc<str>,
    pub outage: Interval,
    pub issued_at: Timestamp,
    /// For a detected incident: each affected customer's own downtime, which their credit
    /// is for, instead of `outage`.
    pub own: Option<Arc<OwnDowntime>>,
    /// Its outage events' attributes (see [`outage_attributes`]).
    pub attributes: Arc<Attributes>,
}

impl ThisOutage {
    /// The events of this outage for customer `c`.
    fn events(&self, c: u32) -> Vec<Event> {
        outage_events(&self.id, self.outage, self.own.as_deref(), &self.attributes, c)
    }
}

/// What policies read of an incident's outage as `event.attributes`: the operator's facts
/// from its declaration, and `customers_affected`, the number of customers it covered
/// (New York's rule for 100 or more reads it).
pub fn outage_attributes(
    incident: &IncidentRow,
    customers_affected: usize,
) -> Result<Arc<Attributes>, EngineError> {
    let mut attributes = match incident.attributes.as_deref() {
        Some(text) => amends_core::policy::attributes_from_json("incident", text).map_err(|e| {
            EngineError::Store(amends_store::StoreError::Corrupt {
                table: "incidents",
                reason: format!("{}: {e}", incident.incident_id),
            })
        })?,
        None => Attributes::new(),
    };
    let count = i64::try_from(customers_affected).unwrap_or(i64::MAX);
    attributes.insert(CUSTOMERS_AFFECTED.to_string(), Attribute::Int(count));
    Ok(Arc::new(attributes))
}

/// One outage event per interval `c` was without service: their own under a detected
/// incident, else the incident's span.
fn outage_events(
    id: &Arc<str>,
    outage: Interval,
    own: Option<&OwnDowntime>,
    attributes: &Arc<Attributes>,
    c: u32,
) -> Vec<Event> {
    match own {
        Some(own) => own
            .get(&c)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|i| outage_event(id, *i, attributes))
            .collect(),
        None => vec![outage_event(id, outage, attributes)],
    }
}

/// Computes the credit of every customer in `customers` under `policy`, in memory.
/// Customers alike in everything the policy reads (plan, zone, billing day, segment,
/// jurisdiction), who were customers for the whole outage and had no earlier outage, get
/// identical results, so those are evaluated once per group.
pub fn compute_credits(
    book: &LoadedBook,
    policy: &Policy,
    this: &ThisOutage,
    customers: &[u32],
    earlier: &[EarlierOutage],
) -> Result<Vec<CreditComputation>, PolicyError> {
    type GroupKey = (u32, u32, u8, amends_core::book::Segment, Option<amends_core::book::Jurisdiction>);
    let mut groups: HashMap<GroupKey, Arc<PricedCredit>> = HashMap::new();
    let mut out = Vec::with_capacity(customers.len());
    for &c in customers {
        let customer = &book.customers[c as usize];
        let prior: Vec<&EarlierOutage> = earlier.iter().filter(|e| e.covered[c as usize]).collect();
        let shareable = prior.is_empty()
            && this.own.is_none()
            && !policy.uses_expressions
            && customer.active_since <= this.outage.start();
        let credit = if shareable {
            let key = (
                book.customer_plan[c as usize],
                book.customer_zone[c as usize],
                customer.billing_day,
                customer.segment,
                customer.jurisdiction,
            );
            match groups.get(&key) {
                Some(credit) => credit.clone(),
                None => {
                    let credit = credit_for(book, policy, this, c, &prior)?;
                    groups.insert(key, credit.clone());
                    credit
                }
            }
        } else {
            credit_for(book, policy, this, c, &prior)?
        };
        out.push(CreditComputation { customer: c, credit });
    }
    Ok(out)
}

fn outage_event(id: &Arc<str>, outage: Interval, attributes: &Arc<Attributes>) -> Event {
    Event {
        id: id.clone(),
        what: EventKind::Outage { span: outage, reported_at: None },
        attributes: attributes.clone(),
    }
}

/// The attributes of a customer the book gives none: one shared empty map, not an
/// allocation per customer of a million-customer credit step.
fn no_attributes() -> Arc<Attributes> {
    static EMPTY: std::sync::OnceLock<Arc<Attributes>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Arc::default).clone()
}

/// The facts of one customer of the book.
pub fn customer_facts(book: &LoadedBook, c: u32) -> CustomerFacts {
    let customer = &book.customers[c as usize];
    let price = book.plan_of(c).monthly_price;
    CustomerFacts {
        id: customer.id.to_string(),
        segment: customer.segment.as_str().to_string(),
        jurisdiction: customer.jurisdiction.as_ref().map(|j| j.as_str().to_string()).unwrap_or_default(),
        zone_name: customer.zone.name.clone(),
        zone: customer.zone.tz.clone(),
        currency: price.currency,
        billing_day: customer.billing_day,
        active_from: customer.active_since,
        // The book keeps one price per plan: the price in force is today's.
        prices: vec![PricePoint { from: Date::constant(1970, 1, 1), monthly_price_minor: price.minor }],
        attributes: customer.attributes.clone().unwrap_or_else(no_attributes),
    }
}

/// The marginal credit of `this` for customer `c`: the policy over the earlier outages and
/// this one, less the policy over the earlier ones alone.
fn credit_for(
    book: &LoadedBook,
    policy: &Policy,
    this: &ThisOutage,
    c: u32,
    prior: &[&EarlierOutage],
) -> Result<Arc<PricedCredit>, PolicyError> {
    let customer = customer_facts(book, c);
    let zone = customer.zone.clone();
    let billing_day = customer.billing_day;
    let earlier: Vec<Event> = prior
        .iter()
        .flat_map(|e| outage_events(&e.id, e.outage, e.own.as_deref(), &e.attributes, c))
        .collect();
    let statement = cycle_containing(this.issued_at, billing_day, &zone)
        .map_err(|e| PolicyError::eval(&policy.id, e.to_string()))?
        .end_date;
    Ok(Arc::new(marginal(policy, customer, earlier, this.events(c), &this.id, statement)?))
}

impl Engine {
    /// Claims the amount a policy pays `customer_id` only on request (the offer under
    /// `offer_key`): written to the ledger under the offer's key and [`CLAIM_KEY_SUFFIX`],
    /// on the statement closing the billing cycle that holds now (the customer's next bill),
    /// with the offer's explanation and when it was claimed. Once: a second claim finds the
    /// row and writes nothing. `None` when no such offer was made to this customer.
    pub async fn claim_on_request(
        &self,
        book: &LoadedBook,
        customer: u32,
        offer_key: &str,
    ) -> Result<Option<Claim>, EngineError> {
        let c = &book.customers[customer as usize];
        let offers = self.store.on_request_offers(&c.id).await?;
        let Some(offer) = offers.into_iter().find(|o| o.key == offer_key) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let claim_key = format!("{}{CLAIM_KEY_SUFFIX}", offer.key);
        let credits = self.store.credits(&claim_filter(&offer)).await?;
        if let Some(done) = credits.into_iter().find(|c| c.key == claim_key) {
            let statement = done.statement.parse().map_err(|e| {
                EngineError::Store(amends_store::StoreError::Corrupt {
                    table: "credits",
                    reason: format!("credit {}: statement {:?}: {e}", done.key, done.statement),
                })
            })?;
            return Ok(Some(Claim::AlreadyClaimed { statement }));
        }
        let statement = cycle_containing(now, c.billing_day, &c.zone.tz)
            .map_err(|e| EngineError::Invalid(vec![format!("customer {}: {e}", c.id)]))?
            .end_date;
        let claim = CreditRow {
            key: claim_key,
            explanation: format!(
                "{} Claimed by the customer at {now}, on the statement of {statement}.",
                offer.explanation
            ),
            statement: statement.to_string(),
            created_at: now,
            ..offer
        };
        let written = self.store.append_credits(&mut [claim]).await?;
        // Two claims at once: the other wrote it first, with the same amount.
        Ok(Some(if written.inserted == 1 {
            Claim::Claimed { statement }
        } else {
            Claim::AlreadyClaimed { statement }
        }))
    }

    /// The credits the customer's assigned policies pay for one event of theirs (a
    /// visit's failure, the facts of a case), keyed `<customer>/<source>/<policy>/<version>`
    /// with `source` as the source event, each on the statement that closes the billing
    /// cycle holding `at`; the amounts they pay only on request, as offers under the same
    /// keys (the customer claims them from their page); and, for the policies that credit
    /// nothing, why.
    pub(crate) fn credits_for_event(
        &self,
        book: &LoadedBook,
        customer: u32,
        event: &Event,
        source: &str,
        at: Timestamp,
    ) -> Result<EventCredits, EngineError> {
        let c = &book.customers[customer as usize];
        let jurisdiction = c.jurisdiction.as_ref().map_or("", |j| j.as_str());
        let statement = cycle_containing(at, c.billing_day, &c.zone.tz)
            .map_err(|e| EngineError::Invalid(vec![format!("customer {}: {e}", c.id)]))?
            .end_date;
        let now = self.clock.now();
        let mut out = EventCredits::default();
        for assignment in self.policies.assignments() {
            if !assignment.matches(c.segment.as_str(), jurisdiction, &c.plan_id) {
                continue;
            }
            let policy = &assignment.policy;
            let facts = Facts { customer: customer_facts(book, customer), events: vec![event.clone()] };
            let priced = price(&event.id, evaluate(policy, &facts)?, None, statement);
            let row = |amount_minor: i64, explanation: &str, lines_json: &str| CreditRow {
                key: format!("{}/{source}/{}/{}", c.id, policy.id, policy.version),
                customer_id: c.id.clone(),
                source_event: source.to_string(),
                policy_id: policy.id.clone(),
                policy_version: i64::from(policy.version),
                amount_minor,
                currency: priced.currency.clone(),
                statement: priced.statement.to_string(),
                explanation: explanation.to_string(),
                lines_json: lines_json.to_string(),
                created_at: now,
            };
            if priced.on_request_minor > 0 {
                out.offers.push(row(
                    priced.on_request_minor,
                    &priced.on_request_explanation,
                    &priced.on_request_lines_json,
                ));
            }
            if priced.amount_minor == 0 {
                out.notes.push(format!("{}: {}", policy.id, priced.explanation));
                continue;
            }
            out.credits.push(row(priced.amount_minor, &priced.explanation, &priced.lines_json));
        }
        Ok(out)
    }
}

/// What [`Engine::credits_for_event`] works out for one event.
#[derive(Debug, Default)]
pub(crate) struct EventCredits {
    /// Credited without asking: the ledger's rows.
    pub credits: Vec<CreditRow>,
    /// Paid only on request: offers, claimed from the customer's page.
    pub offers: Vec<CreditRow>,
    /// Why each policy that credits nothing credits nothing.
    pub notes: Vec<String>,
}

/// Which of a computed credit's amounts a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payable {
    /// Credited without asking: the ledger's row.
    Unasked,
    /// Paid only on request: the offer, claimed from the customer's page.
    OnRequest,
}

/// The row of one customer's amount for an incident under a policy, keyed as the ledger
/// keys it, with the explanation and lines of that amount.
fn keyed_amount(
    book: &LoadedBook,
    incident: &IncidentRow,
    policy: &Policy,
    c: &CreditComputation,
    now: Timestamp,
    payable: Payable,
) -> CreditRow {
    let customer = &book.customers[c.customer as usize];
    let credit = &c.credit;
    let (amount_minor, explanation, lines_json) = match payable {
        Payable::Unasked => (credit.amount_minor, &credit.explanation, &credit.lines_json),
        Payable::OnRequest => {
            (credit.on_request_minor, &credit.on_request_explanation, &credit.on_request_lines_json)
        }
    };
    CreditRow {
        key: credit_key(&customer.id, &incident.incident_id, policy),
        customer_id: customer.id.clone(),
        source_event: incident.incident_id.to_string(),
        policy_id: policy.id.clone(),
        policy_version: i64::from(policy.version),
        amount_minor,
        currency: credit.currency.clone(),
        statement: credit.statement.to_string(),
        explanation: explanation.clone(),
        lines_json: lines_json.clone(),
        created_at: now,
    }
}

/// Appended to an on-request offer's key to make the key of its claim in the ledger: the
/// claim is a credit of its own key, so it is written once however often it is asked for.
pub const CLAIM_KEY_SUFFIX: &str = "/claimed";

/// What claiming an on-request amount did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Written to the ledger now, on the statement of this date.
    Claimed { statement: Date },
    /// Claimed before: the ledger already holds it, unchanged.
    AlreadyClaimed { statement: Date },
}

/// The customer's credits for the event of `offer` (a few rows, from an index), among
/// which its claim is, once made.
fn claim_filter(offer: &CreditRow) -> amends_store::CreditFilter {
    amends_store::CreditFilter {
        customer_id: Some(offer.customer_id.clone()),
        source_event: Some(offer.source_event.clone()),
        ..amends_store::CreditFilter::default()
    }
}

/// The ledger key: (customer, source event, policy, version).
pub fn credit_key(customer_id: &str, incident_id: &str, policy: &Policy) -> String {
    format!("{customer_id}/{incident_id}/{}/{}", policy.id, policy.version)
}

/// The credit notice's fields for one customer: one notice for all their policies.
fn notice_fields(credits: &[Arc<PricedCredit>], locale: &Locale) -> minijinja::Value {
    let total: i64 = credits.iter().map(|c| c.amount_minor).sum();
    let first = &credits[0];
    let lines: Vec<CreditedLine> = credits.iter().flat_map(|c| c.lines.iter().copied()).collect();
    credit_notice_fields(total, &first.currency, &first.statement.to_string(), &lines, locale)
}

/// What a credit notice says of the credit: the total in its currency, written the
/// customer's language's way ($0.41, 0,41 €), the statement it lands on, and the
/// customer's version of the explanation (their language and numbers; the auditor's
/// exact one stays in the ledger).
pub(crate) fn credit_notice_fields(
    total: i64,
    currency: &str,
    statement: &str,
    lines: &[CreditedLine],
    locale: &Locale,
) -> minijinja::Value {
    let (amount, explanation) = match amends_core::money::Currency::parse(currency) {
        Ok(c) => (
            amends_core::money::format_for_locale(Money::new(total, c), locale),
            customer_explanation(lines, total, c, locale),
        ),
        Err(_) => (format_minor(total, 2), None),
    };
    minijinja::context! {
        credit_amount => amount,
        statement => amends_core::cldr::date_text(statement, locale),
        credit_explanation => explanation,
    }
}

/// Where incidents came from, read once per pass of the credit step (a storm leaves
/// thousands of detected incidents: a look-up per incident must not read them all).
struct Origins {
    /// Merged into another: its customers and downtime are that one's.
    merged: std::collections::HashSet<IncidentId>,
    /// Opened by detection and not merged: each customer's downtime is their own.
    detected: std::collections::HashSet<IncidentId>,
}

impl Origins {
    fn of(sources: &[amends_store::IncidentSource]) -> Origins {
        let merged =
            sources.iter().filter(|s| s.merged_into.is_some()).map(|s| s.incident_id.clone()).collect();
        let detected = sources
            .iter()
            .filter(|s| s.merged_into.is_none() && s.source_key.starts_with(super::TELEMETRY_SOURCE))
            .map(|s| s.incident_id.clone())
            .collect();
        Origins { merged, detected }
    }
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
        // Read after `pending`: an incident is marked merged before it is resolved, so every
        // pending one that was merged shows as merged here.
        let origins = Origins::of(&self.store.incident_sources().await?);
        for incident in pending {
            let mut this = CreditReport::default();
            let credited = match self.credit_incident(&book, &incident, &all, &origins, &mut this).await {
                Ok(()) => self.open_outage_cases(&incident).await.map(|n| this.cases_opened = n),
                Err(e) => Err(e),
            };
            let done = match credited {
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
        origins: &Origins,
        report: &mut CreditReport,
    ) -> Result<(), EngineError> {
        let Some(resolved_at) = incident.resolved_at else { return Ok(()) };
        if origins.merged.contains(&incident.incident_id) {
            // Its customers and their downtime moved to the incident it merged into.
            return Ok(());
        }
        self.refuse_other_policies(incident).await?;
        let Some(outage) = Interval::new(incident.started_at, resolved_at) else { return Ok(()) };
        // A merged incident's customers and downtime moved to the one it merged into: it is
        // no earlier outage of anyone.
        let all: Vec<IncidentRow> =
            all.iter().filter(|o| !origins.merged.contains(&o.incident_id)).cloned().collect();
        let all = all.as_slice();
        let horizon = outage.start().checked_sub(LOOKBACK_MAX).unwrap_or(outage.start());
        let detected = self.detected_downtime(book, incident, horizon, all, origins).await?;
        let own = detected.get(incident.incident_id.as_str()).cloned();
        let affected = Arc::new(match &own {
            Some(own) => {
                let mut customers: Vec<u32> = own.keys().copied().collect();
                customers.sort_unstable();
                customers
            }
            None => book.affected(&book.element_indices(&incident.element_ids)),
        });
        if own.is_none() {
            self.record_declared_impacts(book, incident, outage, &affected).await?;
        }
        let attributes = outage_attributes(incident, affected.len())?;
        let this = ThisOutage {
            id: incident.incident_id.as_str().into(),
            outage,
            issued_at: resolved_at,
            own,
            attributes,
        };
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let mut rows = Vec::new();
        let mut offers = Vec::new();
        let mut owed: HashMap<u32, Vec<Arc<PricedCredit>>> = HashMap::new();
        let assignments = self.policies.assignments();
        let id = &incident.incident_id;
        let progress = self.progress.clone();
        progress.start(format!("{id}: computing credits"), (affected.len() * assignments.len()) as u64);
        for assignment in assignments {
            let earlier = Arc::new(earlier_outages(
                book,
                incident,
                outage,
                all,
                &detected,
                lookback(&assignment.policy),
            )?);
            let (b, this, affected, assigned, progress) =
                (book.clone(), this.clone(), affected.clone(), assignment.clone(), progress.clone());
            let computed = tokio::task::spawn_blocking(move || {
                let customers: Vec<u32> = affected
                    .iter()
                    .copied()
                    .filter(|&c| {
                        let customer = &b.customers[c as usize];
                        let jurisdiction = customer.jurisdiction.as_ref().map_or("", |j| j.as_str());
                        assigned.matches(customer.segment.as_str(), jurisdiction, &customer.plan_id)
                    })
                    .collect();
                // Customers the assignment does not cover are done as soon as they are passed.
                progress.advance((affected.len() - customers.len()) as u64);
                let mut out = Vec::with_capacity(customers.len());
                for chunk in customers.chunks(PROGRESS_CHUNK) {
                    out.extend(compute_credits(&b, &assigned.policy, &this, chunk, &earlier)?);
                    progress.advance(chunk.len() as u64);
                }
                Ok::<_, PolicyError>(out)
            })
            .await
            .map_err(join)??;
            for c in computed {
                if c.credit.on_request_minor > 0 {
                    offers.push(keyed_amount(
                        book,
                        incident,
                        &assignment.policy,
                        &c,
                        now,
                        Payable::OnRequest,
                    ));
                }
                if c.credit.amount_minor == 0 {
                    report.zero_credits += 1;
                    continue;
                }
                rows.push(self.credit_row(book, incident, &assignment.policy, &c, now));
                owed.entry(c.customer).or_default().push(c.credit);
            }
        }
        let computed_in = started.elapsed();
        progress.start(
            format!(
                "{id}: writing {} credits to the ledger",
                amends_core::money::group_thousands(rows.len() as u64)
            ),
            0,
        );
        // One call for every policy: all of this incident's ledger rows land together.
        let written = self.store.append_credits(&mut rows).await?;
        // The offers after the credits, each re-run writing the same (never twice): a
        // claim, which needs its offer, is then never the first row of an event's policy.
        report.on_request_offers += self.store.append_on_request_offers(&mut offers).await?.inserted;
        crate::failpoint::pass(crate::failpoint::CREDITS_WRITTEN, 1);
        let written_in = started.elapsed();
        report.credits_written += written.inserted;
        report.credits_unchanged += written.unchanged;
        if written.inserted > 0 {
            for row in &rows {
                *report.total_minor.entry(row.currency.clone()).or_default() += row.amount_minor;
            }
        }
        drop(rows); // a million ledger rows need not live on while the notices render
        let mut owed: Vec<(u32, Vec<Arc<PricedCredit>>)> = owed.into_iter().collect();
        owed.sort_unstable_by_key(|(c, _)| *c);
        report.notices_queued += self.queue_credit_notices(book, incident, outage, owed).await?;
        progress.finish();
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

    /// A declared incident has no telemetry to say who it cut off: once it is resolved,
    /// every customer at or below its elements is recorded as an impact, presumed out for
    /// its whole span, so what reads impacts (surveys of recovered customers, the impacts
    /// view) treats them as a detected incident's. Nobody is listed for follow-up: nothing
    /// says they are still offline. Written in pages of [`IMPACT_PAGE`] by upsert, so a
    /// credit step interrupted part-way writes the same rows again, never others.
    async fn record_declared_impacts(
        &self,
        book: &LoadedBook,
        incident: &IncidentRow,
        outage: Interval,
        affected: &[u32],
    ) -> Result<(), EngineError> {
        self.progress
            .start(format!("{}: recording who it affected", incident.incident_id), affected.len() as u64);
        for page in affected.chunks(IMPACT_PAGE) {
            let mut rows: Vec<ImpactRow> = page
                .iter()
                .map(|&c| ImpactRow {
                    incident_id: incident.incident_id.clone(),
                    customer_id: book.customers[c as usize].id.as_str().into(),
                    presumed: true,
                    affected_at: outage.start(),
                    back_at: Some(outage.end()),
                    follow_up: false,
                    downtime: vec![(outage.start(), outage.end())],
                    // Told of the restoration by the declared incident's own fan-out.
                    notified: amends_store::notified::CLOSED,
                })
                .collect();
            self.store.upsert_impacts(&mut rows).await?;
            self.progress.advance(page.len() as u64);
        }
        Ok(())
    }

    /// An incident is credited under the policies assigned when its step ran. If a run
    /// under another policy (or version) already wrote credits for it (a crash, then a
    /// restart with a new policy file), writing ours would credit its customers twice under
    /// different keys.
    async fn refuse_other_policies(&self, incident: &IncidentRow) -> Result<(), EngineError> {
        // From an index alone: a restart after a kill at a million customers must not
        // page through (and sort) every credit already written.
        let written = self.store.credit_policies(&incident.incident_id).await?;
        let foreign =
            written.iter().find(|(id, v)| !u32::try_from(*v).is_ok_and(|v| self.policies.has(id, v)));
        if let Some((id, version)) = foreign {
            return Err(EngineError::Invalid(vec![format!(
                "incident {} already has credits under policy {id} version {version}, which is not assigned now; \
                 finish its credit step with the policies it started with",
                incident.incident_id
            )]));
        }
        Ok(())
    }

    /// Each customer's own downtime in `this` and in the detected incidents resolved
    /// before it that ended after `horizon` (merged ones have none: it moved with them),
    /// keyed by incident id.
    async fn detected_downtime<'a>(
        &self,
        book: &LoadedBook,
        this: &IncidentRow,
        horizon: Timestamp,
        all: &'a [IncidentRow],
        origins: &Origins,
    ) -> Result<HashMap<&'a str, Arc<OwnDowntime>>, EngineError> {
        let mut out = HashMap::new();
        let this_key = (this.resolved_at, this.incident_id.as_str());
        for incident in all {
            let Some(resolved_at) = incident.resolved_at else { continue };
            if resolved_at < horizon || (incident.resolved_at, incident.incident_id.as_str()) > this_key {
                continue;
            }
            if !origins.detected.contains(&incident.incident_id) {
                continue;
            }
            let mut own = OwnDowntime::new();
            for impact in self.store.impacts(&incident.incident_id).await? {
                if let Some(c) = book.customer_index(&impact.customer_id) {
                    own.insert(c, impact_intervals(&impact, resolved_at));
                }
            }
            out.insert(incident.incident_id.as_str(), Arc::new(own));
        }
        Ok(out)
    }

    /// The ledger entry for one computed credit.
    pub fn credit_row(
        &self,
        book: &LoadedBook,
        incident: &IncidentRow,
        policy: &Policy,
        c: &CreditComputation,
        now: Timestamp,
    ) -> CreditRow {
        keyed_amount(book, incident, policy, c, now, Payable::Unasked)
    }

    async fn queue_credit_notices(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        outage: Interval,
        owed: Vec<(u32, Vec<Arc<PricedCredit>>)>,
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
            .render_and_queue(book, &batch, owed, |credits, locale| notice_fields(credits, locale))
            .await?
            .notices_queued)
    }
}

/// One customer's intervals without service in a resolved detected incident: what
/// detection recorded at resolution, or, if the incident was resolved by hand before
/// detection saw it back, from when they were affected until they came back (or until the
/// resolution).
pub fn impact_intervals(impact: &amends_store::ImpactRow, resolved_at: Timestamp) -> Vec<Interval> {
    if !impact.downtime.is_empty() {
        return impact.downtime.iter().filter_map(|(s, e)| Interval::new(*s, *e)).collect();
    }
    let end = impact.back_at.unwrap_or(resolved_at).min(resolved_at);
    Interval::new(impact.affected_at, end).into_iter().collect()
}

/// Customers computed between two reports of the credit step's progress: small enough to
/// move the count several times a second, large enough that each chunk's shared
/// computations (one per plan, zone and billing day) are a small part of it.
const PROGRESS_CHUNK: usize = 50_000;

/// Impacts one write of [`Engine::record_declared_impacts`] holds: one transaction each.
const IMPACT_PAGE: usize = 10_000;

/// The longest look-back of any policy (see [`lookback`]).
const LOOKBACK_MAX: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 367);

/// How far back an earlier incident can change this one's credit: a billing cycle for
/// most policies, a year when a cap runs per calendar year.
fn lookback(policy: &Policy) -> jiff::SignedDuration {
    let yearly = policy.caps.iter().any(|c| c.per == amends_core::policy::model::CapPeriod::CalendarYear);
    if yearly { LOOKBACK_MAX } else { jiff::SignedDuration::from_hours(24 * 32) }
}

/// Incidents resolved before `incident` (by resolution time, then id) that ended no more
/// than `lookback` before it began, each with the customers it covered.
fn earlier_outages(
    book: &LoadedBook,
    incident: &IncidentRow,
    outage: Interval,
    all: &[IncidentRow],
    detected: &HashMap<&str, Arc<OwnDowntime>>,
    lookback: jiff::SignedDuration,
) -> Result<Vec<EarlierOutage>, EngineError> {
    let this = (incident.resolved_at, incident.incident_id.as_str());
    let horizon = outage.start().checked_sub(lookback).unwrap_or(outage.start());
    all.iter()
        .filter(|o| o.resolved_at.is_some() && (o.resolved_at, o.incident_id.as_str()) < this)
        .filter_map(|o| {
            let other = Interval::new(o.started_at, o.resolved_at?)?;
            (other.end() >= horizon).then_some((o, other))
        })
        .map(|(o, other)| {
            let mut covered = vec![false; book.customers.len()];
            let own = detected.get(o.incident_id.as_str()).cloned();
            let customers: Vec<u32> = match &own {
                Some(own) => own.keys().copied().collect(),
                None => book.affected(&book.element_indices(&o.element_ids)),
            };
            let attributes = outage_attributes(o, customers.len())?;
            for c in customers {
                covered[c as usize] = true;
            }
            Ok(EarlierOutage { id: o.incident_id.as_str().into(), outage: other, covered, own, attributes })
        })
        .collect()
}
