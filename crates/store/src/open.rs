//! Choosing and opening a backend from a database URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::postgres::PgStore;
use crate::redact::redact_password;
use crate::sqlite::SqliteStore;
use crate::{BenchFloor, Result, Store, StoreError};

/// Where the data lives, parsed from the one string an operator configures.
///
/// `postgres://...` and `postgresql://...` select PostgreSQL (the URL is passed on as it
/// is); `sqlite://path`, `sqlite:path` or a plain path select a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |reason: &str| StoreError::BadUrl { url: redact_password(url), reason: reason.to_owned() };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(bad("empty; give a file path, sqlite://path or postgres://..."));
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            return Ok(Self::Postgres(trimmed.to_owned()));
        }
        if let Some(rest) = trimmed.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            // Connection parameters would be silently ignored; refuse them instead.
            if path.contains('?') {
                return Err(bad("SQLite URL parameters are not supported; give only the file path"));
            }
            if path.is_empty() || path == ":memory:" {
                return Err(bad("a SQLite URL needs a file path (in-memory databases are not supported)"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme {scheme:?}; use postgres://, postgresql://, sqlite:// or a file path"
            )));
        }
        Ok(Self::Sqlite(PathBuf::from(trimmed)))
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// As [`fmt::Display`]: a URL's password never reaches a log or an error.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    /// The URL without a password, safe to log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// Opens the database `url` names, creating and migrating it as needed.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(DatabaseUrl::parse(url)?).await
}

/// Opens an already parsed [`DatabaseUrl`], creating and migrating it as needed.
pub async fn open_with(url: DatabaseUrl) -> Result<Arc<dyn Store>> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PgStore::connect(&url).await?),
    })
}

/// A store with the benchmark's floor beside it: what `amends bench` opens, so the
/// floor stays out of [`Store`], which the product uses.
pub trait BenchedStore: Store + BenchFloor {}

impl<S: Store + BenchFloor> BenchedStore for S {}

/// Opens the database `url` names as [`open`] does, with the benchmark's floor.
pub async fn open_benched(url: &str) -> Result<Arc<dyn BenchedStore>> {
    Ok(match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PgStore::connect(&url).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(p: &str) -> DatabaseUrl {
        DatabaseUrl::Sqlite(PathBuf::from(p))
    }

    #[test]
    fn postgres_urls_are_kept_whole() {
        for url in ["postgres://u@h:5432/db", "postgresql://u:p@h/db?sslmode=disable"] {
            assert_eq!(DatabaseUrl::parse(url).unwrap(), DatabaseUrl::Postgres(url.to_owned()));
        }
    }

    #[test]
    fn sqlite_urls_and_plain_paths_name_a_file() {
        assert_eq!(DatabaseUrl::parse("sqlite://data/amends.db").unwrap(), sqlite("data/amends.db"));
        assert_eq!(DatabaseUrl::parse("sqlite:///var/lib/a.db").unwrap(), sqlite("/var/lib/a.db"));
        assert_eq!(DatabaseUrl::parse("sqlite:a.db").unwrap(), sqlite("a.db"));
        assert_eq!(DatabaseUrl::parse("./amends.db").unwrap(), sqlite("./amends.db"));
        assert_eq!(DatabaseUrl::parse("/tmp/x/amends.db").unwrap(), sqlite("/tmp/x/amends.db"));
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        for url in ["mysql://u@h/db", "", "sqlite://", "sqlite::memory:", "sqlite://a.db?mode=ro"] {
            match DatabaseUrl::parse(url) {
                Err(StoreError::BadUrl { url: got, reason }) => {
                    assert_eq!(got, url);
                    assert!(!reason.is_empty());
                }
                other => panic!("{url:?}: expected BadUrl, got {other:?}"),
            }
        }
    }

    #[test]
    fn display_hides_the_password() {
        let url = DatabaseUrl::parse("postgres://amends:hunter2@db:5432/amends").unwrap();
        assert_eq!(url.to_string(), "postgres://amends:***@db:5432/amends");
        // Nor in Debug, nor in an error about a URL (issue 18, item 15).
        assert_eq!(format!("{url:?}"), "postgres://amends:***@db:5432/amends");
        let refused = DatabaseUrl::parse("mysql://amends:hunter2@db/amends").unwrap_err().to_string();
        assert!(refused.contains("amends:***@db") && !refused.contains("hunter2"), "{refused}");
    }
}
