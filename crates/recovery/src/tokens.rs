//! API tokens: shown once when created, stored only as their SHA-256.
//!
//! Scopes nest: `admin` can do everything, `operator` can run incidents and read, `read`
//! can only read. `agent` stands apart: a token that speaks for one person who owns cases
//! (issue 6), good for the case routes and nothing else, so an agent's token can neither
//! run incidents nor read what is kept from agents (surveys).
//!
//! Operators see a token by its id (the first [`TOKEN_ID_LEN`] hex digits of its hash,
//! never the token), can give it an expiry, revoke it, and see when it was last used
//! (issue 18, item 11). An expired or revoked token is refused as surely as an unknown
//! one, but told why.

use amends_store::{AccessStore, Store, StoreError, TokenRow};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Operator,
    Admin,
    /// One person's token for the case routes; see the module's documentation.
    Agent,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operator => "operator",
            Scope::Admin => "admin",
            Scope::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Scope::Read, Scope::Operator, Scope::Admin, Scope::Agent].into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a token of this scope may do what `needed` allows: the three nested
    /// scopes by rank, `agent` only what needs `agent`.
    pub fn allows(self, needed: Scope) -> bool {
        match (self, needed) {
            (Scope::Agent, Scope::Agent) => true,
            (Scope::Agent, _) | (_, Scope::Agent) => false,
            _ => self >= needed,
        }
    }
}

/// Hex digits of the hash that make a token's id: 48 bits, so ids of tokens made by hand
/// do not collide in practice (a collision is refused by the store and the token made
/// again), and 208 bits of the hash, and all of the token, stay unknown.
pub const TOKEN_ID_LEN: usize = 12;

/// How fresh a token's `last_used_at` is kept. A use is written only when the recorded
/// one is more than this old, both in the request (which knows the row it just read) and
/// in the store's conditional update (which other servers may have moved on): so a token
/// costs at most one database write a minute, whatever its traffic and however many
/// servers share the store, and `last_used_at` lags the true last use by under a minute.
pub const LAST_USE_RESOLUTION: SignedDuration = SignedDuration::from_secs(60);

/// How many fresh tokens [`issue`] tries when the one it made has a taken id.
const ISSUE_ATTEMPTS_MAX: u32 = 4;

/// Hex SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The id operators see for the token whose hash is `hash`.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// A new random token: `amends_` and 32 random bytes in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("amends_{}", hex::encode(bytes))
}

/// What a token to make is to be.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub scope: Scope,
    /// The agent it speaks for: with [`Scope::Agent`], and only with it.
    pub agent_id: Option<String>,
    pub label: String,
    /// `None`: it never expires.
    pub expires_at: Option<Timestamp>,
}

/// A token just made: the text, the only copy there will ever be, and its record.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub row: TokenRow,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("agent {0} is not known; add it with PUT /v1/agents or amends agents import")]
    UnknownAgent(String),
    #[error("a token of scope agent names the agent it speaks for")]
    AgentMissing,
    #[error("only a token of scope agent speaks for an agent; this one has scope {0}")]
    AgentNotAllowed(&'static str),
    #[error("the expiry {expires_at} is not after now ({now})")]
    ExpiryPast { expires_at: Timestamp, now: Timestamp },
    #[error("label: {0}")]
    Label(amends_core::text::Forbidden),
    #[error("{ISSUE_ATTEMPTS_MAX} new tokens in a row had an id already taken; try again")]
    IdsTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes and stores a token as `new` says.
pub async fn issue(store: &dyn Store, new: &NewToken, now: Timestamp) -> Result<Issued, IssueError> {
    match (new.scope, &new.agent_id) {
        (Scope::Agent, None) => return Err(IssueError::AgentMissing),
        (Scope::Agent, Some(agent)) if store.agent(agent).await?.is_none() => {
            return Err(IssueError::UnknownAgent(agent.clone()));
        }
        (scope, Some(_)) if scope != Scope::Agent => return Err(IssueError::AgentNotAllowed(scope.as_str())),
        _ => {}
    }
    if let Some(found) = amends_core::text::forbidden_in_line(&new.label) {
        return Err(IssueError::Label(found));
    }
    if let Some(expires_at) = new.expires_at.filter(|at| *at <= now) {
        return Err(IssueError::ExpiryPast { expires_at, now });
    }
    for _ in 0..ISSUE_ATTEMPTS_MAX {
        let token = generate();
        let hash = token_hash(&token);
        let row = TokenRow {
            token_id: token_id(&hash),
            token_hash: hash,
            scope: new.scope.as_str().into(),
            label: new.label.clone(),
            created_at: now,
            agent_id: new.agent_id.clone(),
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        if store.insert_token(&row).await? {
            return Ok(Issued { token, row });
        }
    }
    Err(IssueError::IdsTaken)
}

/// Creates and stores a token that never expires; the returned text is the only copy
/// there will ever be.
pub async fn create(
    store: &dyn Store,
    scope: Scope,
    label: &str,
    now: Timestamp,
) -> Result<String, IssueError> {
    let new = NewToken { scope, agent_id: None, label: label.into(), expires_at: None };
    Ok(issue(store, &new, now).await?.token)
}

/// Creates and stores a token that speaks for `agent_id`, who must be a known agent.
pub async fn create_for_agent(
    store: &dyn Store,
    agent_id: &str,
    label: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let new = NewToken {
        scope: Scope::Agent,
        agent_id: Some(agent_id.into()),
        label: label.into(),
        expires_at: None,
    };
    match issue(store, &new, now).await {
        Ok(issued) => Ok(Some(issued.token)),
        Err(IssueError::UnknownAgent(_)) => Ok(None),
        Err(IssueError::Store(e)) => Err(e),
        Err(other) => Err(StoreError::Refused(other.to_string())),
    }
}

/// What a presented token turns out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No such token (or one whose stored scope this version does not know).
    Unknown,
    /// Revoked at this instant (a revoked token is told so even once it has also expired).
    Revoked(Timestamp),
    /// Expired at this instant.
    Expired(Timestamp),
    /// Good now.
    Valid { row: TokenRow, scope: Scope },
}

impl Presented {
    /// Why a token that is not [`Presented::Valid`] is refused, for the 401's message.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Presented::Unknown => Some("the bearer token is not known".into()),
            Presented::Revoked(at) => Some(format!("the bearer token was revoked at {at}")),
            Presented::Expired(at) => Some(format!("the bearer token expired at {at}")),
            Presented::Valid { .. } => None,
        }
    }
}

/// Looks up a presented token and says whether it is good at `now`. Records nothing.
pub async fn check(store: &dyn AccessStore, token: &str, now: Timestamp) -> Result<Presented, StoreError> {
    let Some(row) = store.token(&token_hash(token)).await? else {
        return Ok(Presented::Unknown);
    };
    Ok(match state(&row, now) {
        TokenState::Revoked => Presented::Revoked(row.revoked_at.unwrap_or(now)),
        TokenState::Expired => Presented::Expired(row.expires_at.unwrap_or(now)),
        TokenState::Active => match Scope::parse(&row.scope) {
            Some(scope) => Presented::Valid { row, scope },
            None => Presented::Unknown,
        },
    })
}

/// Records that `row`'s token was let through at `now`, at most once per
/// [`LAST_USE_RESOLUTION`]: nothing is written while the use recorded in `row` (read for
/// this request) is recent enough, and the store's update is conditional too, for the
/// other servers. A failure is logged and lets the request through: the next use writes.
pub async fn record_use(store: &dyn AccessStore, row: &TokenRow, now: Timestamp) {
    let stale_before = crate::clock::after(now, -LAST_USE_RESOLUTION);
    if row.last_used_at.is_some_and(|at| at >= stale_before) {
        return;
    }
    if let Err(e) = store.record_token_use(&row.token_hash, now, stale_before).await {
        tracing::warn!(token_id = %row.token_id, error = %e, "could not record a token's use");
    }
}

/// Where a token stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

/// Revoked whenever it was revoked before `now`... or at it; expired from its expiry on.
pub fn state(row: &TokenRow, now: Timestamp) -> TokenState {
    if row.revoked_at.is_some_and(|at| at <= now) {
        TokenState::Revoked
    } else if row.expires_at.is_some_and(|at| at <= now) {
        TokenState::Expired
    } else {
        TokenState::Active
    }
}

/// A token as `amends token list` shows it: everything but the hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenView {
    pub id: String,
    pub label: String,
    pub scope: String,
    pub agent: Option<String>,
    pub state: TokenState,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TokenView {
    pub fn new(row: TokenRow, now: Timestamp) -> Self {
        TokenView {
            state: state(&row, now),
            id: row.token_id,
            label: row.label,
            scope: row.scope,
            agent: row.agent_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Every token, oldest first, as it stands at `now`.
pub async fn list(store: &dyn AccessStore, now: Timestamp) -> Result<Vec<TokenView>, StoreError> {
    Ok(store.tokens().await?.into_iter().map(|row| TokenView::new(row, now)).collect())
}

/// What revoking did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub token: TokenView,
    /// Whether it had been revoked before (its first revocation stands).
    pub already: bool,
}

/// The id `given` names: an id as listed (any case), or a whole token (`amends_...`),
/// for revoking one found where it should not be.
pub fn id_named_by(given: &str) -> String {
    let given = given.trim();
    match given.starts_with("amends_") {
        true => token_id(&token_hash(given)),
        false => given.to_ascii_lowercase(),
    }
}

/// Revokes the token `id` names (see [`id_named_by`]) at `now`; revoking again changes
/// nothing. `None` when no token has that id.
pub async fn revoke(
    store: &dyn AccessStore,
    id: &str,
    now: Timestamp,
) -> Result<Option<Revocation>, StoreError> {
    let Some((row, newly)) = store.revoke_token(&id_named_by(id), now).await? else {
        return Ok(None);
    };
    Ok(Some(Revocation { token: TokenView::new(row, now), already: !newly }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest() {
        assert!(Scope::Admin.allows(Scope::Operator));
        assert!(Scope::Operator.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Operator));
        assert!(!Scope::Operator.allows(Scope::Admin));
    }

    #[test]
    fn an_agent_token_reaches_only_agent_routes() {
        assert!(Scope::Agent.allows(Scope::Agent));
        for other in [Scope::Read, Scope::Operator, Scope::Admin] {
            assert!(!Scope::Agent.allows(other), "agent allows {other:?}");
            assert!(!other.allows(Scope::Agent), "{other:?} allows agent");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), "amends_".len() + 64);
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(token_id(&token_hash("abc")), "ba7816bf8f01");
    }

    #[test]
    fn ids_are_named_by_the_id_or_the_token_itself() {
        assert_eq!(id_named_by(" BA7816BF8F01 "), "ba7816bf8f01");
        let token = generate();
        assert_eq!(id_named_by(&token), token_id(&token_hash(&token)));
        assert!(!token.contains(&id_named_by(&token)), "the id is not a piece of the token");
    }

    #[test]
    fn a_token_is_revoked_or_expired_from_that_instant_on() {
        let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let row = TokenRow {
            token_hash: "ab".repeat(32),
            token_id: "ab".repeat(6),
            scope: "read".into(),
            label: String::new(),
            created_at: at(0),
            agent_id: None,
            expires_at: Some(at(100)),
            revoked_at: None,
            last_used_at: None,
        };
        assert_eq!(state(&row, at(99)), TokenState::Active);
        assert_eq!(state(&row, at(100)), TokenState::Expired);
        let revoked = TokenRow { revoked_at: Some(at(50)), ..row };
        assert_eq!(state(&revoked, at(49)), TokenState::Active);
        assert_eq!(state(&revoked, at(50)), TokenState::Revoked);
        assert_eq!(state(&revoked, at(200)), TokenState::Revoked, "revoked wins over expired");
    }
}
