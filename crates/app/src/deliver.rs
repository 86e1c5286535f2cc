//! The delivery worker: takes due notices from the outbox and hands them to a transport.
//!
//! A notice is claimed with a lease (its `next_attempt_at` moves to now + lease), sent,
//! and its outcome recorded. A crash between claim and record leaves the lease to expire,
//! after which the notice is claimed again: delivery is at-least-once towards the relay,
//! and the Message-ID derived from the notice key lets the far side drop a repeat.
//! Transient failures are retried with capped exponential backoff and jitter; permanent
//! ones, and the last allowed attempt, mark the notice failed.

use crate::clock::{Clock, after};
use amends_channels::{Backoff, OutgoingMessage, SendError, Transport, jitter_seed};
use amends_store::{DeliveryOutcome, NoticeRow, Store, StoreError};
use jiff::SignedDuration;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Notices claimed per round trip to the store.
pub const DELIVERY_BATCH_MAX: u32 = 500;
/// Sends in flight at once, per worker.
pub const DELIVERY_CONCURRENCY_MAX: usize = 32;
/// How long a claimed notice stays reserved before another worker may take it.
pub const LEASE: SignedDuration = SignedDuration::from_mins(5);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
    pub backoff: Backoff,
}

impl Dispatcher {
    /// Delivers every notice due now, batch after batch, until none is left.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let lease_until = after(now, LEASE);
            let claimed = self.store.claim_due_notices(now, lease_until, DELIVERY_BATCH_MAX).await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            self.deliver_batch(claimed, lease_until, &mut report).await?;
        }
    }

    /// Sends a claimed batch, at most [`DELIVERY_CONCURRENCY_MAX`] at a time. No send starts
    /// once the lease has run out: those notices are another worker's to claim again.
    async fn deliver_batch(
        &self,
        notices: Vec<NoticeRow>,
        lease_until: jiff::Timestamp,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let mut inflight = JoinSet::new();
        let mut queue = notices.into_iter();
        loop {
            while inflight.len() < DELIVERY_CONCURRENCY_MAX && self.clock.now() < lease_until {
                let Some(notice) = queue.next() else { break };
                let transport = if notice.channel == "email" { self.email.clone() } else { self.sms.clone() };
                inflight.spawn(async move {
                    let result = transport.send(&outgoing(&notice)).await;
                    (notice, result)
                });
            }
            let Some(done) = inflight.join_next().await else { return Ok(()) };
            let (notice, result) =
                done.map_err(|e| StoreError::Corrupt { table: "outbox", reason: e.to_string() })?;
            let outcome = self.outcome(&notice, result);
            match outcome {
                DeliveryOutcome::Sent { .. } => report.sent += 1,
                DeliveryOutcome::Retry { .. } => report.retried += 1,
                DeliveryOutcome::Failed { .. } => report.failed += 1,
            }
            // A claim lost to an expired lease records nothing (the store fences on it).
            self.store.record_delivery(&notice.key, notice.attempts, &outcome).await?;
        }
    }

    fn outcome(&self, notice: &NoticeRow, result: Result<(), SendError>) -> DeliveryOutcome {
        let at = self.clock.now();
        match result {
            Ok(()) => DeliveryOutcome::Sent { at },
            Err(SendError::Permanent(error)) => {
                DeliveryOutcome::Failed { at, error: format!("permanent: {error}") }
            }
            Err(SendError::Transient(error)) => {
                // `attempts` already counts this attempt (the claim incremented it).
                let attempt = u32::try_from(notice.attempts).unwrap_or(u32::MAX);
                match self.backoff.delay_ms(attempt, jitter_seed(&notice.key)) {
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
}

fn outgoing(n: &NoticeRow) -> OutgoingMessage {
    OutgoingMessage {
        key: n.key.clone(),
        channel: n.channel.clone(),
        recipient: n.recipient.clone(),
        subject: n.subject.clone(),
        body: n.body.clone(),
    }
}
