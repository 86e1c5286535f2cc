//! Fresh databases for the contract tests: a SQLite file in a temporary directory, or a
//! PostgreSQL database created for one test and dropped after it.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use amends_store::postgres::PgStore;
use amends_store::sqlite::SqliteStore;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection};

/// The PostgreSQL server the tests may use; each test creates its own database there.
pub const PG_ENV: &str = "AMENDS_TEST_POSTGRES_URL";

/// Runs `case` against a SQLite store in a fresh temporary file.
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    // A subdirectory that does not exist yet: opening must create it.
    let store = SqliteStore::open(dir.path().join("data").join("amends.db")).await.expect("open sqlite");
    case(store).await;
}

/// Runs `setup` on a fresh SQLite file (options that create it), then `case` against a
/// store opened on that file: for a database that an older version of amends wrote.
#[allow(dead_code)] // bulk_speed.rs does not use it
pub async fn run_sqlite_after<S, SFut, F, Fut>(setup: S, case: F)
where
    S: FnOnce(SqliteConnectOptions) -> SFut,
    SFut: Future<Output = ()>,
    F: FnOnce(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("amends.db");
    setup(SqliteConnectOptions::new().filename(&path).create_if_missing(true)).await;
    let store = SqliteStore::open(&path).await.expect("open sqlite");
    case(store).await;
}

/// Runs `case` against a PostgreSQL store in a database created for it, and drops that
/// database afterwards, whether the case passed or panicked. Without [`PG_ENV`] it
/// says how to run it and returns.
pub async fn run_pg<F, Fut>(test: &str, case: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_pg_after(test, |_| async {}, case).await;
}

/// As [`run_pg`], with `setup` run first on the fresh database (options that connect to
/// it), before the store connects and migrates: for a database that an older version of
/// amends wrote.
pub async fn run_pg_after<S, SFut, F, Fut>(test: &str, setup: S, case: F)
where
    S: FnOnce(PgConnectOptions) -> SFut,
    SFut: Future<Output = ()> + Send + 'static,
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var(PG_ENV) else {
        // In CI a skipped backend would pass without testing anything (issue 18, item 17).
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "postgres::{test}: {PG_ENV} is not set, and CI=true: the PostgreSQL cases must run in CI"
        );
        println!(
            "skipped postgres::{test}: {PG_ENV} is not set; run with \
             {PG_ENV}=postgres://postgres@127.0.0.1:5432/test cargo test -p amends-store"
        );
        return;
    };
    let name = format!("amends_t_{}", random_hex());
    let mut admin = PgConnection::connect(&url).await.expect("connect to AMENDS_TEST_POSTGRES_URL");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let options = PgConnectOptions::from_str(&url).expect("parse url").database(&name);
    // Each step in a task of its own, so that a panic still drops the database.
    let outcome = match tokio::spawn(setup(options.clone())).await {
        Ok(()) => {
            let store = PgStore::connect_with(options).await.expect("connect to test database");
            let outcome = tokio::spawn(case(store.clone())).await;
            store.close().await;
            outcome
        }
        failed => failed,
    };
    let dropped = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await;
    if let Err(e) = dropped {
        eprintln!("could not drop test database {name}: {e}");
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn random_hex() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}
