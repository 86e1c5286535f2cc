//! API tokens: shown once when created, stored only as their SHA-256.
//!
//! Scopes nest: `admin` can do everything, `operator` can run incidents and read, `read`
//! can only read. `agent` stands apart: a token that speaks for one person who owns cases
//! (issue 6), good for the case routes and nothing else, so an agent's token can neither
//! run incidents nor read what is kept from agents (surveys).

use amends_store::{Store, StoreError, TokenRow};
use jiff::Timestamp;
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

/// Hex SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `amends_` and 32 random bytes in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("amends_{}", hex::encode(bytes))
}

/// Creates and stores a token; the returned text is the only copy there will ever be.
pub async fn create(
    store: &dyn Store,
    scope: Scope,
    label: &str,
    now: Timestamp,
) -> Result<String, StoreError> {
    let token = generate();
    store
        .insert_token(&TokenRow {
            token_hash: token_hash(&token),
            scope: scope.as_str().into(),
            label: label.into(),
            created_at: now,
            agent_id: None,
        })
        .await?;
    Ok(token)
}

/// Creates and stores a token that speaks for `agent_id`, who must be a known agent.
pub async fn create_for_agent(
    store: &dyn Store,
    agent_id: &str,
    label: &str,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    if store.agent(agent_id).await?.is_none() {
        return Ok(None);
    }
    let token = generate();
    store
        .insert_token(&TokenRow {
            token_hash: token_hash(&token),
            scope: Scope::Agent.as_str().into(),
            label: label.into(),
            created_at: now,
            agent_id: Some(agent_id.into()),
        })
        .await?;
    Ok(Some(token))
}

/// The scope of a presented token, or `None` when it is unknown.
pub async fn scope_of(store: &dyn Store, token: &str) -> Result<Option<Scope>, StoreError> {
    Ok(store.token(&token_hash(token)).await?.and_then(|row| Scope::parse(&row.scope)))
}

/// The agent a presented token speaks for: `None` when the token is unknown or not an
/// agent's.
pub async fn agent_of(store: &dyn Store, token: &str) -> Result<Option<String>, StoreError> {
    let row = store.token(&token_hash(token)).await?;
    Ok(row.filter(|r| r.scope == Scope::Agent.as_str()).and_then(|r| r.agent_id))
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
    }
}
