//! Detected incidents: who hears what is decided per customer, from their own impact.
//!
//! An incident opened by telemetry detection is not told to everyone under its elements:
//! each customer whose device went offline in it (or who has no device and is presumed
//! out) has an impact row, and their notices follow that row: an acknowledgement once the
//! incident is released (at once, or once an operator confirms it or the confirmation
//! window lapses), a restoration notice when their own device comes back, and a
//! still-down notice with a follow-up when the incident is resolved and their device is
//! still offline. Each impact records how far its notices have gone (only ever raised), and
//! every notice key is deterministic, so any of these steps can run again after a crash.

use super::fanout::{Batch, Instants};
use super::{Engine, EngineError, FanoutReport};
use crate::book::LoadedBook;
use amends_core::id::CustomerId;
use amends_core::incident::{ByLocale, UpdateKind};
use amends_core::notice::{NoticeKind, format_local};
use amends_store::{ImpactRow, IncidentRow, IncidentSource, StageRaise, UpdateRow, notified};
use minijinja::Value;
use minijinja::context;
use std::collections::HashSet;
use std::sync::Arc;

/// Source keys of incidents opened by telemetry detection start with this.
pub const TELEMETRY_SOURCE: &str = "telemetry:";

/// The notices to queue, in order (none: only the stage moves), and the stage they take
/// an impact to.
type Due = (&'static [NoticeKind], i16);

/// The notices one impact is due now (if any) and the stage it then moves to; `None` when
/// nothing is due. `released`: the incident's customers may be told. `resolved`: the
/// incident is resolved and the impact is final. `told_at_detection`: the incident was
/// released the instant it was detected (no operator's confirmation held it), so whoever
/// it affected was out when it was released and is acknowledged, even if their device is
/// back by the time this runs: what a customer is told then depends on the event log
/// alone, not on how quickly amends got to it (a backlog after a restart tells the same
/// as a live run).
pub fn due_notice(
    impact: &ImpactRow,
    released: bool,
    resolved: bool,
    told_at_detection: bool,
) -> Option<Due> {
    use NoticeKind::{Acknowledgement, Restored, StillDown};
    if !released {
        return None;
    }
    let back = impact.back_at.is_some() && !impact.follow_up;
    let closing = if resolved && impact.follow_up {
        Some(StillDown)
    } else if back || resolved {
        Some(Restored)
    } else {
        None
    };
    match (impact.notified, closing, told_at_detection) {
        (notified::NOTHING, None, _) => Some((&[Acknowledgement], notified::ACKNOWLEDGED)),
        (notified::NOTHING, Some(Restored), true) => Some((&[Acknowledgement, Restored], notified::CLOSED)),
        (notified::NOTHING, Some(StillDown), true) => Some((&[Acknowledgement, StillDown], notified::CLOSED)),
        // Back before an operator released the incident: nothing to say now but the credit.
        (notified::NOTHING, Some(Restored), false) => Some((&[], notified::CLOSED)),
        (notified::NOTHING, Some(StillDown), false) => Some((&[StillDown], notified::CLOSED)),
        (notified::ACKNOWLEDGED, Some(Restored), _) => Some((&[Restored], notified::CLOSED)),
        (notified::ACKNOWLEDGED, Some(StillDown), _) => Some((&[StillDown], notified::CLOSED)),
        _ => None,
    }
}

/// Whether customers of the incident may be told: any entry but a held detection.
pub fn released(timeline: &[UpdateRow]) -> bool {
    timeline.iter().any(|u| u.kind != UpdateKind::Detected.as_str())
}

/// Whether the incident was released the instant it was recorded (its first entry is not
/// a detection held for confirmation).
pub fn told_at_detection(timeline: &[UpdateRow]) -> bool {
    timeline.first().is_some_and(|u| u.kind != UpdateKind::Detected.as_str())
}

impl Engine {
    /// The telemetry source of the incident, if detection opened it.
    pub async fn telemetry_source(&self, incident_id: &str) -> Result<Option<IncidentSource>, EngineError> {
        let sources = self.store.sources_of(incident_id).await?;
        Ok(sources.into_iter().find(|s| s.source_key.starts_with(TELEMETRY_SOURCE)))
    }

    /// Queues what `impacts` are due (see [`due_notice`]) and records how far each went.
    /// Returns the report and the customers acknowledged by this call.
    pub async fn notify_impacts(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        impacts: &[ImpactRow],
        timeline: &[UpdateRow],
    ) -> Result<(FanoutReport, HashSet<CustomerId>), EngineError> {
        self.notify_impacts_of(book, vec![(incident.clone(), timeline.to_vec(), impacts.to_vec())]).await
    }

    /// `notify_impacts` for several incidents at once (what one pass of detection records):
    /// every notice rendered, then all of them queued in one write, then every impact's
    /// stage raised in one write, so a storm of incidents costs a few transactions, not a
    /// few per incident. Notices are queued before the stages that record them.
    pub async fn notify_impacts_of(
        &self,
        book: &Arc<LoadedBook>,
        incidents: Vec<(IncidentRow, Vec<UpdateRow>, Vec<ImpactRow>)>,
    ) -> Result<(FanoutReport, HashSet<CustomerId>), EngineError> {
        let mut report = FanoutReport::default();
        let mut acknowledged = HashSet::new();
        let mut notices = Vec::new();
        let mut raised = Vec::new();
        for (incident, timeline, impacts) in &incidents {
            let resolved = incident.resolved_at.is_some();
            let (released, at_detection) = (released(timeline), told_at_detection(timeline));
            // One pass decides what each impact is due; acknowledgements go out before
            // closing notices (a customer told both at once reads them in that order).
            let mut groups: Vec<(Due, Vec<&ImpactRow>)> = Vec::new();
            for impact in impacts {
                let Some(due) = due_notice(impact, released, resolved, at_detection) else { continue };
                match groups.iter_mut().find(|(g, _)| *g == due) {
                    Some((_, rows)) => rows.push(impact),
                    None => groups.push((due, vec![impact])),
                }
            }
            groups.sort_by_key(|((_, stage), _)| *stage);
            for ((kinds, stage), due) in groups {
                for chunk in due.chunks(self.config.fanout_batch_rows) {
                    for &kind in kinds {
                        let (rows, without_contact) =
                            self.render_impact_notices(book, incident, timeline, kind, chunk).await?;
                        report.without_contact += without_contact;
                        notices.extend(rows);
                    }
                }
                if kinds.contains(&NoticeKind::Acknowledgement) {
                    acknowledged.extend(due.iter().map(|i| i.customer_id.clone()));
                }
                raised.extend(due.into_iter().map(|i| StageRaise {
                    incident_id: &i.incident_id,
                    customer_id: &i.customer_id,
                    stage,
                }));
            }
        }
        report += self.queue_rows(notices).await?;
        if !raised.is_empty() {
            // The stage alone: the rest of each row may have changed since it was read
            // (the writer records a resolution's downtime while the worker fans out).
            self.store.raise_notified(&raised).await?;
        }
        Ok((report, acknowledged))
    }

    /// One notice of `kind` (seq 0: each kind once per customer and incident) to each of
    /// `impacts`, with their own outage start and return shown in their zone, rendered.
    async fn render_impact_notices(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        timeline: &[UpdateRow],
        kind: NoticeKind,
        impacts: &[&ImpactRow],
    ) -> Result<(Vec<amends_store::NoticeRow>, u64), EngineError> {
        let latest = timeline.last();
        let batch = Batch {
            kind,
            seq: 0,
            incident_id: &incident.incident_id,
            base: amends_core::notice::NoticeContext {
                message: latest.map(|u| u.message.clone()).unwrap_or_default(),
                messages: latest.map(|u| u.messages.clone()).unwrap_or_default(),
                ..self.incident_context(incident)
            },
            instants: Instants {
                etr: incident.etr,
                next_update_by: incident.next_update_by,
                outage_start: Some(incident.started_at),
                restored_at: incident.resolved_at,
                ..Instants::default()
            },
            now: self.clock.now(),
        };
        let customers: Vec<(u32, Value)> = impacts
            .iter()
            .filter_map(|i| {
                let c = book.customer_index(&i.customer_id)?;
                let customer = &book.customers[c as usize];
                let show = |t| format_local(t, &customer.zone.tz, &customer.locale);
                let own = match (kind, i.back_at) {
                    (NoticeKind::Restored, Some(back)) => {
                        context! { outage_start => show(i.affected_at), restored_at => show(back) }
                    }
                    _ => context! { outage_start => show(i.affected_at) },
                };
                Some((c, own))
            })
            .collect();
        self.render_rows(book, &batch, customers, |own, _| own.clone()).await
    }

    /// The notices of one timeline entry of a detected incident: first whatever each
    /// impact is due, then, for an update, the update to everyone told and still out.
    pub(crate) async fn fan_out_detected(
        &self,
        book: &Arc<LoadedBook>,
        incident: &IncidentRow,
        timeline: &[UpdateRow],
        update: &UpdateRow,
    ) -> Result<FanoutReport, EngineError> {
        let kind = UpdateKind::parse(&update.kind);
        let mut report = FanoutReport { updates: 1, ..FanoutReport::default() };
        if matches!(kind, Some(UpdateKind::Detected | UpdateKind::Merged)) {
            return Ok(report);
        }
        if self.telemetry_source(&incident.incident_id).await?.is_some_and(|s| s.merged_into.is_some()) {
            // Its customers moved to the wider incident, which tells them what is due; this
            // one is closed as merged, never "restored" (an entry fanned out after the merge
            // was recorded must not read the merge as a resolution).
            return Ok(report);
        }
        let impacts = self.store.impacts(&incident.incident_id).await?;
        let (told, just_acknowledged) = self.notify_impacts(book, incident, &impacts, timeline).await?;
        report += told;
        if matches!(kind, Some(UpdateKind::Update | UpdateKind::EtrLapsed | UpdateKind::UpdateOverdue)) {
            let still_out: Vec<u32> = impacts
                .iter()
                .filter(|i| i.notified == notified::ACKNOWLEDGED && i.back_at.is_none())
                .filter(|i| !just_acknowledged.contains(&i.customer_id))
                .filter_map(|i| book.customer_index(&i.customer_id))
                .collect();
            let mut sent =
                self.fan_out_to(book, incident, timeline, update, NoticeKind::Update, still_out).await?;
            sent.updates = 0;
            report += sent;
        }
        Ok(report)
    }
}

impl Engine {
    /// An operator confirms a detected incident held for confirmation: its customers are
    /// told now. Confirming one already released changes nothing.
    pub async fn confirm(&self, id: &str) -> Result<IncidentRow, EngineError> {
        self.release(id, "confirmed", "").await
    }

    /// Releases a held incident with an acknowledgement entry under `trigger` (unique per
    /// incident, so two racing releases append one).
    pub(crate) async fn release(
        &self,
        id: &str,
        trigger: &str,
        message: &str,
    ) -> Result<IncidentRow, EngineError> {
        let now = self.clock.now();
        let current = self.incident(id).await?;
        if current.resolved_at.is_some() {
            return Err(EngineError::AlreadyResolved(id.to_string()));
        }
        if !released(&self.store.updates(id).await?) {
            let update = amends_store::NewUpdate {
                at: now,
                kind: UpdateKind::Declared.as_str().into(),
                state: amends_core::incident::IncidentState::Acknowledged,
                etr: current.etr,
                next_update_by: Some(crate::clock::after(now, self.config.follow_up)),
                message: message.into(),
                messages: ByLocale::new(),
                trigger_key: Some(trigger.into()),
            };
            self.store.append_update(id, &update).await?;
        }
        self.incident(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amends_store::notified::{ACKNOWLEDGED, CLOSED, NOTHING};
    use jiff::Timestamp;

    fn impact(notified: i16, back: bool, follow_up: bool) -> ImpactRow {
        ImpactRow {
            incident_id: "INC-000001".into(),
            customer_id: "C1".into(),
            presumed: false,
            affected_at: Timestamp::UNIX_EPOCH,
            back_at: back.then_some(Timestamp::UNIX_EPOCH),
            follow_up,
            downtime: vec![],
            notified,
        }
    }

    #[test]
    fn nothing_is_said_before_release() {
        for n in [NOTHING, ACKNOWLEDGED, CLOSED] {
            for told in [false, true] {
                assert_eq!(due_notice(&impact(n, true, false), false, true, told), None);
            }
        }
    }

    #[test]
    fn acknowledged_once_then_closed_once() {
        use NoticeKind::*;
        for told in [false, true] {
            let due =
                |n, back, follow_up, resolved| due_notice(&impact(n, back, follow_up), true, resolved, told);
            assert_eq!(due(NOTHING, false, false, false), Some((&[Acknowledgement][..], ACKNOWLEDGED)));
            assert_eq!(due(ACKNOWLEDGED, false, false, false), None);
            assert_eq!(due(ACKNOWLEDGED, true, false, false), Some((&[Restored][..], CLOSED)));
            // Presumed customers (no device) are back when the incident is.
            assert_eq!(due(ACKNOWLEDGED, false, false, true), Some((&[Restored][..], CLOSED)));
            assert_eq!(due(ACKNOWLEDGED, false, true, true), Some((&[StillDown][..], CLOSED)));
            assert_eq!(due(CLOSED, true, false, true), None);
        }
    }

    /// Told at detection, everyone it affected was out when it was released: a customer
    /// back before amends got to them hears both, in order, as a live run would have told
    /// them. Held for an operator, a customer back before the release hears nothing.
    #[test]
    fn back_before_being_told_depends_on_when_the_incident_was_released() {
        use NoticeKind::*;
        let due = |back, follow_up, told| due_notice(&impact(NOTHING, back, follow_up), true, true, told);
        assert_eq!(due(true, false, true), Some((&[Acknowledgement, Restored][..], CLOSED)));
        assert_eq!(due(false, true, true), Some((&[Acknowledgement, StillDown][..], CLOSED)));
        assert_eq!(due(true, false, false), Some((&[][..], CLOSED)));
        assert_eq!(due(false, true, false), Some((&[StillDown][..], CLOSED)));
    }
}
