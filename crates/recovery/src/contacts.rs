//! A customer gets in touch (issue 6): if an open incident affects them, the contact is
//! attached to it and the person who took it gets what to answer (the current estimate,
//! in the customer's zone and language, and what the customer was already told), with no
//! case to open. Each contact records whether amends had told the customer before they
//! had to ask: the share told first is the measure of being ahead of one's customers.

use super::cases::CasesError;
use super::{Engine, EngineError};
use crate::book::LoadedBook;
use amends_core::case::Actor;
use amends_core::incident::IncidentState;
use amends_core::incident::{UpdateKind, for_locale};
use amends_core::notice::format_local;
use amends_store::{ContactRow, ImpactRow, IncidentRow, NoticeRow};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashSet;

/// Longest summary of a contact, in bytes.
pub const CONTACT_SUMMARY_BYTES_MAX: usize = 2_000;

/// What the person who took a contact answers with.
#[derive(Debug, Clone, Serialize)]
pub struct ContactAnswer {
    pub contact_id: i64,
    pub customer_id: String,
    /// The open incident affecting the customer, if any: the contact is attached to it.
    pub incident: Option<IncidentBrief>,
    /// Whether a notice about that incident had reached the customer before this contact.
    pub told_before: bool,
    /// The customer's notices about that incident, oldest first.
    pub told: Vec<Told>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentBrief {
    pub incident_id: String,
    pub state: IncidentState,
    /// In the customer's language where the operator gave one.
    pub cause: String,
    pub etr: Option<Timestamp>,
    /// The estimate as the customer reads it: their zone, their language.
    pub etr_local: Option<String>,
    pub next_update_by_local: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Told {
    pub kind: String,
    pub channel: String,
    pub status: String,
    pub sent_at: Option<Timestamp>,
}

impl Engine {
    /// Records that `customer_id` got in touch through `channel`, taken by `by`, and
    /// answers with the open incident affecting them, if any.
    pub async fn take_contact(
        &self,
        by: &Actor,
        customer_id: &str,
        channel: &str,
        summary: &str,
    ) -> Result<ContactAnswer, CasesError> {
        let recorded = self.record_contact(&by.id, customer_id, channel, summary).await?;
        let book = self.book().await?;
        let customer = &book.customers[recorded.index as usize];
        // In the language the customer chose, as the agent reads it out to them.
        let language = &self.language_of(customer).await?;
        let local = |t: Option<Timestamp>| t.map(|t| format_local(t, &customer.zone.tz, language));
        Ok(ContactAnswer {
            contact_id: recorded.contact_id,
            customer_id: customer_id.to_string(),
            incident: recorded.incident.map(|i| IncidentBrief {
                cause: for_locale(&i.causes, language).unwrap_or(&i.cause).to_string(),
                etr_local: local(i.etr),
                next_update_by_local: local(i.next_update_by),
                incident_id: i.incident_id.to_string(),
                state: i.state,
                etr: i.etr,
            }),
            told_before: recorded.told_before,
            told: recorded
                .told
                .iter()
                .map(|n| Told {
                    kind: n.kind.clone(),
                    channel: n.channel.as_str().into(),
                    status: n.status.as_str().into(),
                    sent_at: n.sent_at,
                })
                .collect(),
        })
    }

    /// Records a contact from `customer_id` through `channel`, taken by `by` (an agent's
    /// id, or the page's channel when the customer pressed "still offline"), against the
    /// open incident affecting them, if any, and whether we had told them first.
    pub(crate) async fn record_contact(
        &self,
        by: &str,
        customer_id: &str,
        channel: &str,
        summary: &str,
    ) -> Result<RecordedContact, CasesError> {
        let summary = summary.trim();
        if summary.len() > CONTACT_SUMMARY_BYTES_MAX {
            return Err(CasesError::Invalid(format!(
                "summary of {} bytes; at most {CONTACT_SUMMARY_BYTES_MAX}",
                summary.len()
            )));
        }
        if channel.trim().is_empty() || channel.len() > 32 {
            return Err(CasesError::Invalid(format!("channel {channel:?} is empty or over 32 bytes")));
        }
        let book = self.book().await?;
        let Some(index) = book.customer_index(customer_id) else {
            return Err(CasesError::Invalid(format!("customer {customer_id} is not known")));
        };
        let now = self.clock.now();
        let incident = self.incident_affecting(customer_id, index).await?;
        let notices = match &incident {
            Some(_) => self.store.notices_for_customer(customer_id).await.map_err(EngineError::from)?,
            None => Vec::new(),
        };
        let about = incident.as_ref().map(|i| &i.incident_id);
        let told: Vec<NoticeRow> =
            notices.into_iter().filter(|n| about.is_some_and(|a| n.about == a.as_str())).collect();
        let told_before = told.iter().any(|n| n.sent_at.is_some_and(|t| t <= now));
        let row = ContactRow {
            contact_id: 0,
            customer_id: customer_id.into(),
            at: now,
            channel: channel.trim().to_string(),
            summary: summary.to_string(),
            by: by.to_string(),
            incident_id: incident.as_ref().map(|i| i.incident_id.clone()),
            told_before,
        };
        let contact_id = self.store.record_contact(&row).await.map_err(EngineError::from)?;
        Ok(RecordedContact { contact_id, index, incident, told_before, told })
    }

    /// The most recently declared open incident that affects the customer: for a
    /// detected one, their own impact while their service is out; for a declared one,
    /// their element at or below one of its elements.
    async fn incident_affecting(
        &self,
        customer_id: &str,
        index: u32,
    ) -> Result<Option<IncidentRow>, EngineError> {
        let book = self.book().await?;
        let mut open = self.store.incidents(true).await?;
        open.sort_by_key(|i| std::cmp::Reverse(i.started_at));
        // Still down for them: a declared one, or a detected one their device is not back from.
        let affecting = self.affecting(&book, customer_id, index, open).await?;
        Ok(affecting.into_iter().find(|(_, back)| matches!(back, None | Some(false))).map(|(i, _)| i))
    }

    /// Of `incidents`, those that affect the customer, in the order given: a declared one
    /// when their element is at or below one of its elements (with `None`); a detected one
    /// only when it saw them go down, with whether their own device is back; with
    /// one read of the customer's impacts and a look at the origin of only the incidents
    /// that may hold them (an incident they are neither below nor impacted by cannot), so
    /// a storm's thousands of open incidents cost no read each.
    pub(crate) async fn affecting(
        &self,
        book: &LoadedBook,
        customer_id: &str,
        index: u32,
        incidents: Vec<IncidentRow>,
    ) -> Result<Vec<(IncidentRow, Option<bool>)>, EngineError> {
        let own = self.store.customer_impacts(customer_id).await?;
        // Where an incident came from is asked only of those that concern the customer.
        let mut detected = HashSet::new();
        for incident in incidents.iter().filter(|i| concerns(book, index, &own, i)) {
            if self.telemetry_source(&incident.incident_id).await?.is_some() {
                detected.insert(incident.incident_id.to_string());
            }
        }
        Ok(affecting_of(book, index, incidents, &own, &detected))
    }
}

/// Whether `incident` may affect the customer at `index`: it holds one of their impacts
/// (`own`), or they are below it.
fn concerns(book: &LoadedBook, index: u32, own: &[ImpactRow], incident: &IncidentRow) -> bool {
    own.iter().any(|i| i.incident_id == incident.incident_id) || is_below(book, incident, index)
}

/// Which of `incidents` affect the customer at `index`, each with whether their own device
/// is back. A `detected` incident (telemetry opened it) affects those it holds an impact of
/// (`own`), as the devices showed; any other, everyone below its elements.
pub(crate) fn affecting_of(
    book: &LoadedBook,
    index: u32,
    incidents: Vec<IncidentRow>,
    own: &[ImpactRow],
    detected: &HashSet<String>,
) -> Vec<(IncidentRow, Option<bool>)> {
    let mut out = Vec::new();
    for incident in incidents {
        let impact = own.iter().find(|i| i.incident_id == incident.incident_id);
        if detected.contains(incident.incident_id.as_str()) {
            if let Some(impact) = impact {
                let back = impact.back_at.is_some();
                out.push((incident, Some(back)));
            }
        } else if is_below(book, &incident, index) {
            out.push((incident, None));
        }
    }
    out
}

/// Whether the customer at `index` is at or below one of the incident's elements.
fn is_below(book: &LoadedBook, incident: &IncidentRow, index: u32) -> bool {
    let element = book.customer_element[index as usize];
    book.element_indices(&incident.element_ids).into_iter().any(|e| book.topology.is_at_or_below(element, e))
}

/// A contact as recorded, with what the answer to it shows.
pub(crate) struct RecordedContact {
    pub contact_id: i64,
    /// The customer's index in the book.
    pub index: u32,
    pub incident: Option<IncidentRow>,
    pub told_before: bool,
    /// The notices about that incident the customer was sent (or is to be).
    pub told: Vec<NoticeRow>,
}

/// How well one incident was handled, as its customers lived it (`GET
/// /v1/incidents/{id}/metrics`). Durations are elapsed seconds from the outage's
/// start (`started_at`, which may be before it was declared or detected).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentMetrics {
    pub incident_id: String,
    pub started_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Customers with at least one notice sent about it.
    pub customers_told: u64,
    /// From the declaration to the first notice sent.
    pub first_notice_after_s: Option<i64>,
    /// From the declaration until every customer told had heard (the latest first notice).
    pub all_told_after_s: Option<i64>,
    pub estimates: EstimateAccuracy,
    /// From the resolution until the credit step finished: credits need no claim.
    pub credited_after_s: Option<i64>,
    pub contacts: ContactShare,
}

/// How the estimates of restoration held up.
#[derive(Debug, Clone, Serialize)]
pub struct EstimateAccuracy {
    /// The first estimate customers were given.
    pub first: Option<Timestamp>,
    /// Resolution minus the first estimate, in seconds: positive when it came back late.
    pub first_error_s: Option<i64>,
    /// Distinct estimates given over the incident.
    pub given: u64,
    /// Estimates that passed with the incident open (each got an automatic update).
    pub lapsed: u64,
}

/// Customers who got in touch about it, and how many of them amends had told first.
#[derive(Debug, Clone, Serialize)]
pub struct ContactShare {
    pub total: u64,
    pub told_before: u64,
    /// `told_before` per thousand contacts, rounded down; `None` without contacts.
    pub told_before_per_mille: Option<u64>,
}

impl Engine {
    pub async fn incident_metrics(&self, incident_id: &str) -> Result<IncidentMetrics, EngineError> {
        let incident = self.incident(incident_id).await?;
        let timeline = self.store.updates(incident_id).await?;
        let reach = self.store.notice_reach(incident_id).await?;
        let contacts = self.store.incident_contacts(incident_id).await?;
        let since = |from: Timestamp, to: Option<Timestamp>| to.map(|t| t.duration_since(from).as_secs());
        let first = timeline.iter().find_map(|u| u.etr);
        let mut given: Vec<Timestamp> = timeline.iter().filter_map(|u| u.etr).collect();
        given.dedup();
        let told_before = contacts.iter().filter(|c| c.told_before).count() as u64;
        let total = contacts.len() as u64;
        Ok(IncidentMetrics {
            customers_told: reach.customers_told,
            first_notice_after_s: since(incident.started_at, reach.first_sent_at),
            all_told_after_s: since(incident.started_at, reach.all_told_by),
            estimates: EstimateAccuracy {
                first,
                first_error_s: first.and_then(|f| since(f, incident.resolved_at)),
                given: given.len() as u64,
                lapsed: timeline.iter().filter(|u| u.kind == UpdateKind::EtrLapsed.as_str()).count() as u64,
            },
            credited_after_s: incident.resolved_at.and_then(|r| since(r, incident.credited_at)),
            contacts: ContactShare {
                total,
                told_before,
                told_before_per_mille: (total > 0).then(|| told_before * 1000 / total),
            },
            incident_id: incident.incident_id.to_string(),
            started_at: incident.started_at,
            resolved_at: incident.resolved_at,
        })
    }
}
