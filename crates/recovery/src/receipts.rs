//! What channels say after a message left: an SMS gateway's delivery receipts, the mail
//! system's bounces, and the quarantine of contact points that keep failing.
//!
//! The server's routes parse and check what the gateway or the mail system sent; what it
//! means for a notice and an address is decided here.

use super::{Engine, EngineError};
use amends_store::{ChannelReport, NoticeStatus, ReportTarget};
use serde::Serialize;

/// Permanent failures in a row (failed sends or hard bounces) that quarantine a contact
/// point, unless the settings say otherwise for the dispatcher.
pub const QUARANTINE_AFTER_DEFAULT: u32 = 3;

/// How many reports moved a notice on, and how many were left alone.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ReportOutcome {
    /// Reports that moved a notice on.
    pub applied: u64,
    /// Reports about no sent notice we know (or in-between statuses), left alone.
    pub ignored: u64,
}

impl ReportOutcome {
    fn count(&mut self, applied: bool) {
        if applied {
            self.applied += 1;
        } else {
            self.ignored += 1;
        }
    }
}

impl Engine {
    /// An SMS gateway's receipts, each its message id and what it means (`None` for the
    /// in-between statuses: queued, sent, accepted).
    pub async fn apply_sms_receipts(
        &self,
        receipts: Vec<(String, Option<ChannelReport>)>,
    ) -> Result<ReportOutcome, EngineError> {
        let mut outcome = ReportOutcome::default();
        let now = self.clock.now();
        for (provider_id, report) in receipts {
            let Some(report) = report else {
                outcome.count(false);
                continue;
            };
            let target = ReportTarget::Provider { channel: "sms", provider_id: &provider_id };
            outcome.count(self.store.record_report(&target, &report, now).await?.is_some());
        }
        Ok(outcome)
    }

    /// Hard bounces, each a notice key and what the mail system said: the notice fails, and
    /// its address counts towards quarantine (`QUARANTINE_AFTER_DEFAULT` in a row). A
    /// bounce about a notice that did not fail by it (unknown, or not sent) is ignored.
    pub async fn apply_hard_bounces(
        &self,
        bounces: Vec<(String, String)>,
    ) -> Result<ReportOutcome, EngineError> {
        let mut outcome = ReportOutcome::default();
        let now = self.clock.now();
        for (key, detail) in bounces {
            let report = ChannelReport::Failed { detail: detail.clone() };
            match self.store.record_report(&ReportTarget::Key(&key), &report, now).await? {
                Some(notice) if notice.status == NoticeStatus::Failed => {
                    let recipient = &notice.recipient;
                    self.store
                        .record_hard_failure("email", recipient, &detail, QUARANTINE_AFTER_DEFAULT, now)
                        .await?;
                    outcome.count(true);
                }
                _ => outcome.count(false),
            }
        }
        Ok(outcome)
    }

    /// Lifts a contact point's quarantine (the customer fixed their address), forgetting its
    /// failures; `false` when none are on record.
    pub async fn lift_quarantine(&self, channel: &str, recipient: &str) -> Result<bool, EngineError> {
        Ok(self.store.clear_contact_point(channel, recipient).await?)
    }
}
