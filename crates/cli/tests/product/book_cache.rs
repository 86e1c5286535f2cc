//! Two processes on one database: an import by one is seen by the other's next call,
//! because the in-memory book is keyed on the store's book version.

use amends_core::incident::{Declaration, IncidentState};
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_recovery::clock::ManualClock;
use amends_recovery::import::ImportInput;
use amends_recovery::{Engine, EngineConfig, EngineError};
use jiff::Timestamp;
use std::sync::Arc;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn engine(db: &str) -> Engine {
    let store = amends_store::open(db).await.unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    Engine::new(store, clock, Templates::builtin(), Policy::builtin(), EngineConfig::default())
}

fn on(element: &str) -> Declaration {
    Declaration {
        elements: vec![element.into()],
        cause: "Cut".into(),
        message: String::new(),
        etr: Some(ts("2026-11-23T20:00:00Z")),
        next_update_by: ts("2026-11-23T19:00:00Z"),
        started_at: None,
        state: IncidentState::Acknowledged,
        translations: Default::default(),
        attributes: Default::default(),
    }
}

#[tokio::test]
async fn an_import_by_another_process_is_seen_on_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db").display().to_string();
    let (server, cli) = (engine(&db).await, engine(&db).await);
    let topology = |rows: &str| Some(format!("element_id,parent_id,kind,name\nroot,,region,R\n{rows}"));
    cli.import(ImportInput::from_texts(None, topology(""), None), &|_| {}).await.unwrap();
    assert_eq!(server.book().await.unwrap().topology.len(), 1);
    match server.declare(on("hub9")).await {
        Err(EngineError::Invalid(errors)) => {
            assert_eq!(errors, ["elements: \"hub9\" is not an element of the topology"])
        }
        other => panic!("expected the unknown element to be refused, got {other:?}"),
    }

    cli.import(ImportInput::from_texts(None, topology("hub9,root,hub,Hub 9\n"), None), &|_| {})
        .await
        .unwrap();
    assert_eq!(server.book().await.unwrap().topology.len(), 2);
    assert_eq!(server.declare(on("hub9")).await.unwrap().element_ids, ["hub9"]);
}
