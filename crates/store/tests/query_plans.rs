//! The queries a large incident repeats are answered from an index, not by sorting the
//! rows: checked with SQLite's own query plan, so a dropped index or a changed query
//! fails here rather than in a restart at a million customers.

use amends_store::sqlite::SqliteStore;

#[tokio::test]
async fn the_policies_of_an_incident_s_credits_come_from_an_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("a.db")).await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT DISTINCT policy_id, policy_version FROM credits \
         WHERE source_event = 'INC-000001' ORDER BY policy_id, policy_version",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let plan: Vec<&str> = plan.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
    assert!(plan.iter().any(|d| d.contains("USING COVERING INDEX credits_source_event_policy")), "{plan:?}");
    assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "no sort: {plan:?}");
}
