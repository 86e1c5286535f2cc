//! Content retention. Where what was sent must not be kept (`[delivery]
//! keep_content_days`), a notice's subject and body are replaced by their SHA-256 once the
//! notice is final (sent, delivered, failed, suppressed) and older than that. Its key,
//! recipient, status and history stay, and the hash still answers "was this what we
//! sent?": hash the text in question the same way and compare.

use super::{Engine, EngineError};
use sha2::{Digest, Sha256};

/// Notices read and rewritten per transaction.
pub const FORGET_BATCH_MAX: u32 = 1_000;

/// The SHA-256, in lower-case hex, of the subject, a line feed, and the body (UTF-8).
pub fn content_sha256(subject: &str, body: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(subject.as_bytes());
    hash.update(b"\n");
    hash.update(body.as_bytes());
    hex::encode(hash.finalize())
}

impl Engine {
    /// Forgets the content of every notice past the retention period, in batches; a no-op
    /// when content is kept. Idempotent: a forgotten notice is never read again.
    pub async fn forget_content(&self) -> Result<u64, EngineError> {
        let Some(keep) = self.config.keep_content else { return Ok(0) };
        let before = self.clock.now().checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
        let mut forgotten = 0;
        loop {
            let due = self.store.content_to_forget(before, FORGET_BATCH_MAX).await?;
            let hashes: Vec<(String, String)> =
                due.iter().map(|n| (n.key.clone(), content_sha256(&n.subject, &n.body))).collect();
            let changed = self.store.forget_content(&hashes).await?;
            forgotten += changed;
            // A short batch was the last; none changed means another worker got there.
            if due.len() < FORGET_BATCH_MAX as usize || changed == 0 {
                return Ok(forgotten);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_subject_and_body_apart() {
        // sha256("\n"), and "ab" + "" differs from "a" + "b".
        assert_eq!(
            content_sha256("", ""),
            "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"
        );
        assert_ne!(content_sha256("ab", ""), content_sha256("a", "b"));
    }
}
