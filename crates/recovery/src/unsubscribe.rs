//! Unsubscribe links that work without logging in: signed when a notice is sent, honoured
//! once, and refused without saying whose they were when forged, expired or used.
//!
//! The signing key is generated on first use and kept in the database (`secrets`), so
//! every instance over one database signs and checks with the same key and links survive
//! restarts. Only non-essential notices carry a link (an update, a credit notice): telling
//! a customer that their service is out, or back, is not something to opt out of by one
//! click in a footer (their preferences can still choose the channels).

use crate::optout::{OptOutClaim, OptOutError, OptOutKey};
use amends_core::preferences::{Channel, Preferences, Topic};
use amends_store::{AccessStore, NoticeRow, PreferencesRow, Store};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The name of the signing key in the `secrets` table.
const KEY_NAME: &str = "opt_out_key";
/// How long a link works after its message was sent: long enough for an old email found
/// in an inbox.
pub const LINK_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 180);

/// Builds the one-click unsubscribe link for a notice, when it has one.
pub type UnsubscribeLink = Arc<dyn Fn(&NoticeRow, Timestamp) -> Option<String> + Send + Sync>;

/// The key that signs links: the stored one, or a new one stored now.
pub async fn stored_key(store: &dyn AccessStore) -> Result<OptOutKey, UnsubscribeError> {
    stored_key_named(store, KEY_NAME).await
}

/// The secret kept under `name` in the `secrets` table, or a new random one stored now:
/// every instance over one database uses the same, across restarts.
pub async fn stored_key_named(store: &dyn AccessStore, name: &str) -> Result<OptOutKey, UnsubscribeError> {
    let candidate = OptOutKey::generate().to_hex();
    let stored = store.secret_or_insert(name, &candidate).await?;
    Ok(OptOutKey::from_hex(&stored)?)
}

/// The key that checks a link a stranger brought: the stored one, read and never written.
/// With none stored no link was ever signed, so every link is refused as forged.
pub async fn checking_key(store: &dyn AccessStore) -> Result<OptOutKey, UnsubscribeError> {
    checking_key_named(store, KEY_NAME).await
}

/// [`checking_key`] for the secret kept under `name`.
pub async fn checking_key_named(store: &dyn AccessStore, name: &str) -> Result<OptOutKey, UnsubscribeError> {
    let stored = store.secret(name).await?.ok_or(OptOutError::Invalid)?;
    Ok(OptOutKey::from_hex(&stored)?)
}

/// Whether a notice kind may be opted out of from the notice itself.
pub fn is_optional(kind: &str) -> bool {
    matches!(kind, "update" | "credit")
}

/// Builds each optional notice's link: opt this customer out of this kind on this
/// channel. The token id derives from the notice key, so a retry carries a link that is
/// the same link for the single-use check.
pub fn links(key: OptOutKey, public_url: &str) -> UnsubscribeLink {
    let base = format!("{}/v1/unsubscribe?token=", public_url.trim_end_matches('/'));
    let key = Arc::new(key);
    Arc::new(move |notice: &NoticeRow, now: Timestamp| {
        if !is_optional(&notice.kind) {
            return None;
        }
        let claim = OptOutClaim {
            customer_id: notice.customer_id.to_string(),
            topic: Some(notice.kind.clone()),
            channel: Some(notice.channel.as_str().into()),
            expires_at: now.checked_add(LINK_LIFETIME).unwrap_or(Timestamp::MAX),
            token_id: hex::encode(&Sha256::digest(notice.key.as_bytes())[..16]),
        };
        key.sign(&claim).ok().map(|token| format!("{base}{token}"))
    })
}

/// Why an unsubscribe request did nothing. The messages name no customer.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    #[error(transparent)]
    Link(#[from] OptOutError),
    #[error("this link was already used")]
    Used,
    #[error(transparent)]
    Store(#[from] amends_store::StoreError),
    /// The stored signing key does not read back (edited by hand).
    #[error("the stored unsubscribe key: {0}")]
    Key(#[from] crate::optout::OptOutKeyError),
}

/// What the link changed, for the confirmation page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsubscribed {
    /// Whose messages they were: the page that says so is written in their language.
    pub customer_id: String,
    pub topics: Vec<Topic>,
    pub channels: Vec<Channel>,
}

/// Checks the token, marks it used, and opts the customer out. An update link opts out of
/// updates and estimate changes alike: to the customer both are "updates".
pub async fn unsubscribe(
    store: &dyn Store,
    key: &OptOutKey,
    token: &str,
    now: Timestamp,
) -> Result<Unsubscribed, UnsubscribeError> {
    let claim = key.verify(token, now)?;
    let topics: Vec<Topic> = match claim.topic.as_deref() {
        None => Topic::ALL.to_vec(),
        Some("update") => vec![Topic::Update, Topic::EtrChange],
        Some(name) => vec![Topic::parse(name).ok_or(OptOutError::Invalid)?],
    };
    let channels: Vec<Channel> = match claim.channel.as_deref() {
        None => Channel::ALL.to_vec(),
        Some(name) => vec![Channel::parse(name).ok_or(OptOutError::Invalid)?],
    };
    if !store.use_link(&claim.token_id, now).await? {
        return Err(UnsubscribeError::Used);
    }
    let mut prefs = match store.preferences(&claim.customer_id).await? {
        Some(row) => Preferences::from_json(&row.doc).unwrap_or_default(),
        None => Preferences::default(),
    };
    for &topic in &topics {
        for &channel in &channels {
            prefs.opt_out(Some(topic), Some(channel));
        }
    }
    let doc = serde_json::to_string(&prefs)
        .map_err(|e| amends_store::StoreError::Corrupt { table: "preferences", reason: e.to_string() })?;
    store
        .put_preferences(&PreferencesRow {
            customer_id: claim.customer_id.clone().into(),
            doc,
            updated_at: now,
        })
        .await?;
    Ok(Unsubscribed { customer_id: claim.customer_id, topics, channels })
}
