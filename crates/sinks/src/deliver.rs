//! The delivery worker: takes due notices from the outbox and hands them to a transport,
//! one lane per channel.
//!
//! Each channel (email, SMS, webhook) is a [`Lane`] with its own transport (paced by
//! `amends_channels::Paced`: concurrency, rate and send timeout), its own retry policy and
//! its own claims from the outbox, and the lanes run side by side: a gateway that hangs
//! holds up its own lane only.
//!
//! A notice is claimed with a lease (its `next_attempt_at` moves to now + lease), sent,
//! and its outcome recorded with a history entry; the outcomes of sends that finish
//! together are recorded in one transaction (one per outcome held webhooks to about
//! 2,000/s on SQLite). A crash between claim and record leaves
//! the lease to expire, after which the notice is claimed again: delivery is at-least-once
//! towards the relay, and the Message-ID (or `webhook-id`) derived from the notice key lets
//! the far side drop a repeat. Transient failures are retried with capped exponential
//! backoff and jitter; permanent ones, and the last allowed attempt, mark the notice
//! failed. A contact point that fails permanently [`Dispatcher::quarantine_after`] times in
//! a row is quarantined: its notices are suppressed until an operator lifts it or the
//! customer's contact changes.

use amends_channels::{Attachment, Backoff, OutgoingMessage, SendError, Sent, Transport, jitter_seed};
use amends_core::preferences::Channel;
use amends_recovery::clock::{Clock, after};
use amends_recovery::unsubscribe::UnsubscribeLink;
use amends_store::{ContactPointRow, DeliveryOutcome, NoticeRow, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Notices claimed per round trip to the store, per lane.
pub const DELIVERY_BATCH_MAX: u32 = 500;
/// Sends in flight at once per lane, unless the lane says fewer.
pub const DELIVERY_CONCURRENCY_MAX: usize = 32;
/// How long a claimed notice stays reserved before another worker may take it.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);
/// Permanent failures in a row that quarantine a contact point, by default (bounces
/// count the same way).
pub use amends_recovery::receipts::QUARANTINE_AFTER_DEFAULT;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    /// Not sent because the contact point is quarantined.
    pub suppressed: u64,
}

impl std::ops::AddAssign for DeliveryReport {
    fn add_assign(&mut self, o: Self) {
        self.sent += o.sent;
        self.retried += o.retried;
        self.failed += o.failed;
        self.suppressed += o.suppressed;
    }
}

/// One channel's way out: its transport, retry policy and concurrency.
#[derive(Clone)]
pub struct Lane {
    /// `email`, `sms` or `webhook`: the outbox `channel` this lane claims.
    pub channel: &'static str,
    pub transport: Arc<dyn Transport>,
    pub backoff: Backoff,
    /// Sends in flight at once (at most [`DELIVERY_CONCURRENCY_MAX`]).
    pub concurrency: usize,
}

impl Lane {
    pub fn new(channel: &'static str, transport: Arc<dyn Transport>) -> Self {
        Self { channel, transport, backoff: Backoff::default(), concurrency: DELIVERY_CONCURRENCY_MAX }
    }
}

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub lanes: Vec<Lane>,
    pub quarantine_after: u32,
    pub unsubscribe: Option<UnsubscribeLink>,
    /// Who signs a visit's calendar file, for the `.ics` attached to its confirmation.
    pub calendar: Option<CalendarFiles>,
    /// How many notices this pass has handled, for the CLI's spinner.
    pub progress: Arc<amends_recovery::progress::Progress>,
}

/// What a visit's calendar file needs beside the visit: the provider's name and the
/// domain of its event UIDs.
#[derive(Debug, Clone)]
pub struct CalendarFiles {
    pub provider_name: String,
    pub domain: String,
}

impl Dispatcher {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, lanes: Vec<Lane>) -> Self {
        Self {
            store,
            clock,
            lanes,
            quarantine_after: QUARANTINE_AFTER_DEFAULT,
            unsubscribe: None,
            calendar: None,
            progress: Arc::default(),
        }
    }

    /// Delivers every notice due now on every lane, the lanes side by side, until none is
    /// left. The first store error of any lane is returned after all lanes stopped.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        // A notice waits for those decided before it on the other channels too (the claim
        // keeps a customer's order), so one lane's sends can free another's notices: rounds
        // go on until one finds nothing to do.
        let mut report = DeliveryReport::default();
        self.progress.start("notices handled", 0);
        loop {
            let runs = self.lanes.iter().map(|lane| self.deliver_lane(lane));
            let mut round = DeliveryReport::default();
            for result in futures_util::future::join_all(runs).await {
                round += result?;
            }
            if round == DeliveryReport::default() {
                return Ok(report);
            }
            report += round;
        }
    }

    async fn deliver_lane(&self, lane: &Lane) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let lease_until = after(now, LEASE);
            let claimed =
                self.store.claim_due_notices(lane.channel, now, lease_until, DELIVERY_BATCH_MAX).await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let handled = claimed.len() as u64;
            self.deliver_batch(lane, claimed, lease_until, &mut report).await?;
            self.progress.advance(handled);
        }
    }

    /// Sends a claimed batch, at most `lane.concurrency` at a time. No send starts once the
    /// lease has run out: those notices are another worker's to claim again.
    async fn deliver_batch(
        &self,
        lane: &Lane,
        notices: Vec<NoticeRow>,
        lease_until: Timestamp,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let mut points = self.contact_points(lane.channel, &notices).await?;
        let mut inflight = JoinSet::new();
        let mut queue = notices.into_iter();
        let concurrency = lane.concurrency.clamp(1, DELIVERY_CONCURRENCY_MAX);
        loop {
            while inflight.len() < concurrency && self.clock.now() < lease_until {
                let Some(notice) = queue.next() else { break };
                if points.get(&notice.recipient).is_some_and(|p| p.quarantined_at.is_some()) {
                    let outcome =
                        DeliveryOutcome::Suppressed { at: self.clock.now(), reason: "quarantined".into() };
                    self.record(&[(notice, outcome)], report).await?;
                    continue;
                }
                let transport = lane.transport.clone();
                let mut message = self.outgoing(&notice);
                message.attachments = self.attachments(&notice).await;
                inflight.spawn(async move {
                    let result = transport.send(&message).await;
                    (notice, result)
                });
            }
            // Every send that has finished by now is recorded in one transaction.
            let Some(first) = inflight.join_next().await else { return Ok(()) };
            let mut finished = vec![first];
            while let Some(more) = inflight.try_join_next() {
                finished.push(more);
            }
            let mut outcomes = Vec::with_capacity(finished.len());
            for done in finished {
                let (notice, result) =
                    done.map_err(|e| StoreError::Corrupt { table: "outbox", reason: e.to_string() })?;
                self.track_contact_point(lane.channel, &notice, &result, &mut points).await?;
                let outcome = self.outcome(lane, &notice, result);
                outcomes.push((notice, outcome));
            }
            self.record(&outcomes, report).await?;
        }
    }

    /// The batch's recipients with failures on record.
    async fn contact_points(
        &self,
        channel: &str,
        notices: &[NoticeRow],
    ) -> Result<HashMap<String, ContactPointRow>, StoreError> {
        let recipients: Vec<&str> = notices.iter().map(|n| n.recipient.as_str()).collect();
        let known = self.store.contact_points(channel, &recipients).await?;
        Ok(known.into_iter().map(|p| (p.recipient.clone(), p)).collect())
    }

    /// A permanent failure counts against the contact point (and may quarantine it); a
    /// success forgets its earlier failures.
    async fn track_contact_point(
        &self,
        channel: &str,
        notice: &NoticeRow,
        result: &Result<Sent, SendError>,
        points: &mut HashMap<String, ContactPointRow>,
    ) -> Result<(), StoreError> {
        match result {
            Err(SendError::Permanent(error)) => {
                let at = self.clock.now();
                let point = self
                    .store
                    .record_hard_failure(channel, &notice.recipient, error, self.quarantine_after, at)
                    .await?;
                if point.quarantined_at == Some(at) {
                    tracing::warn!(channel, key = %notice.key, failures = point.hard_failures, "contact point quarantined");
                }
                points.insert(point.recipient.clone(), point);
            }
            Ok(_) if points.remove(&notice.recipient).is_some() => {
                self.store.clear_contact_point(channel, &notice.recipient).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records outcomes in one transaction. A claim lost to an expired lease records
    /// nothing (the store fences on it).
    async fn record(
        &self,
        outcomes: &[(NoticeRow, DeliveryOutcome)],
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        for (_, outcome) in outcomes {
            match outcome {
                DeliveryOutcome::Sent { .. } => report.sent += 1,
                DeliveryOutcome::Retry { .. } => report.retried += 1,
                DeliveryOutcome::Failed { .. } => report.failed += 1,
                DeliveryOutcome::Suppressed { .. } => report.suppressed += 1,
            }
        }
        let records: Vec<(&str, i32, &DeliveryOutcome)> =
            outcomes.iter().map(|(n, o)| (n.key.as_str(), n.attempts, o)).collect();
        self.store.record_deliveries(&records).await?;
        Ok(())
    }

    fn outcome(&self, lane: &Lane, notice: &NoticeRow, result: Result<Sent, SendError>) -> DeliveryOutcome {
        let at = self.clock.now();
        match result {
            Ok(sent) => DeliveryOutcome::Sent { at, provider_id: sent.provider_id },
            Err(SendError::Permanent(error)) => {
                DeliveryOutcome::Failed { at, error: format!("permanent: {error}") }
            }
            Err(SendError::Transient(error)) => {
                // `attempts` already counts this attempt (the claim incremented it).
                let attempt = u32::try_from(notice.attempts).unwrap_or(u32::MAX);
                match lane.backoff.delay_ms(attempt, jitter_seed(&notice.key)) {
                    Some(ms) => DeliveryOutcome::Retry {
                        at,
                        error,
                        next_attempt_at: after(
                            at,
                            SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX)),
                        ),
                    },
                    None => DeliveryOutcome::Failed {
                        at,
                        error: format!("gave up after {attempt} attempts: {error}"),
                    },
                }
            }
        }
    }

    /// The files a notice carries: a visit's confirmation or cancellation (and the
    /// apology for a late cancellation), by email or webhook, carries the visit as an
    /// `.ics` file, made from its record as it stands when sent (a cancelled visit goes as
    /// a cancelled event, the same UID, so calendars drop it). A store error here sends
    /// the message without the file rather than abandon the batch's sends in flight.
    async fn attachments(&self, n: &NoticeRow) -> Vec<Attachment> {
        let Some(calendar) = &self.calendar else { return Vec::new() };
        let kinds = ["appointment_booked", "appointment_cancelled", "appointment_missed"];
        if !kinds.contains(&n.kind.as_str()) || n.channel == Channel::Sms {
            return Vec::new();
        }
        let row = match self.store.appointment(&n.about).await {
            Ok(Some(row)) => row,
            Ok(None) => return Vec::new(),
            Err(error) => {
                tracing::warn!(notice = %n.key, %error, "calendar file left out");
                return Vec::new();
            }
        };
        // A missed visit's apology carries the file only when the visit was cancelled:
        // a no-show's event is past and nothing in a calendar needs changing.
        if n.kind == "appointment_missed"
            && row.status != amends_core::appointment::AppointmentStatus::CancelledByProvider
        {
            return Vec::new();
        }
        amends_recovery::appointments::calendar_file(
            &row,
            &calendar.provider_name,
            &calendar.domain,
            &n.locale,
        )
        .map(|(filename, ics)| Attachment {
            filename,
            content_type: "text/calendar; charset=utf-8".into(),
            content: ics.into_bytes(),
        })
        .into_iter()
        .collect()
    }

    fn outgoing(&self, n: &NoticeRow) -> OutgoingMessage {
        OutgoingMessage {
            key: n.key.clone(),
            channel: n.channel.as_str().into(),
            recipient: n.recipient.clone(),
            subject: n.subject.clone(),
            body: n.body.clone(),
            customer_id: n.customer_id.to_string(),
            incident_id: n.about.clone(),
            kind: n.kind.clone(),
            locale: n.locale.clone(),
            unsubscribe_url: self.unsubscribe.as_ref().and_then(|link| link(n, self.clock.now())),
            attachments: Vec::new(),
        }
    }
}
