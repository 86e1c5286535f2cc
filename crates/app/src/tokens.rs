//! API tokens: shown once when created, stored only as their SHA-256.
//!
//! Scopes nest: `admin` can do everything, `operator` can run incidents and read, `read`
//! can only read.

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
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operator => "operator",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Scope::Read, Scope::Operator, Scope::Admin].into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a token of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
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
        })
        .await?;
    Ok(token)
}

/// The scope of a presented token, or `None` when it is unknown.
pub async fn scope_of(store: &dyn Store, token: &str) -> Result<Option<Scope>, StoreError> {
    Ok(store.token(&token_hash(token)).await?.and_then(|row| Scope::parse(&row.scope)))
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
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), "amends_".len() + 64);
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
