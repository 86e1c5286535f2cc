//! Closing a SQLite store leaves one file that holds everything: the last connection
//! checkpoints the write-ahead log. A copy of the database file taken while connections
//! were still closing was torn, and read back as corrupt notice content (a flake of
//! tests/appointment_crash.rs in the app).

use amends_store::{BookRows, PlanRow};

#[tokio::test]
async fn a_closed_sqlite_store_is_whole_in_its_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let store = amends_store::open(&path.display().to_string()).await.unwrap();
    let plans: Vec<PlanRow> = (0..500)
        .map(|i| PlanRow {
            plan_id: format!("p{i}"),
            name: format!("Plan {i}"),
            monthly_price_minor: 1000 + i,
            currency: "GBP".into(),
        })
        .collect();
    store.import_book(&BookRows { plans, ..BookRows::default() }, &|_| {}).await.unwrap();
    store.close().await;
    assert!(
        std::fs::metadata(dir.path().join("a.db-wal")).map_or(true, |m| m.len() == 0),
        "the log is checkpointed into the database file"
    );
    // The database file alone, copied as a backup would copy it, holds every row.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let reopened = amends_store::open(&copy.display().to_string()).await.unwrap();
    assert_eq!(reopened.load_book().await.unwrap().plans.len(), 500);
}
