//! Raising how far an impact's notices went touches nothing else of it (issue 16).
//!
//! The worker raises stages from impacts it read a moment before; the detection writer
//! may have written the customers' final downtime in between (the incident resolved). A
//! raise that rewrote the whole row from that stale copy erased the downtime, and with it
//! the customers' credit: seen once in the differential test as 15 of a tap's 20
//! customers with no downtime at all.

use amends_core::incident::{Declaration, IncidentState};
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_recovery::clock::ManualClock;
use amends_recovery::import::ImportInput;
use amends_recovery::{Engine, EngineConfig};
use amends_store::{ImpactRow, notified};
use jiff::Timestamp;
use std::sync::Arc;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,R\na,root,tap,A\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana,ana@example.com,,en-US,UTC,fast,a,M1,1,2020-01-01T00:00:00Z,active
C2,Bo,bo@example.com,,en-US,UTC,fast,a,M2,1,2020-01-01T00:00:00Z,active
";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_stage_raised_from_a_stale_read_keeps_the_downtime_written_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    let policy = Policy::from_toml("test", amends_core::policy::DEFAULT_POLICY_TOML).unwrap();
    let engine = Engine::new(store.clone(), clock, Templates::builtin(), policy, EngineConfig::default());
    engine
        .import(
            ImportInput::from_texts(Some(PLANS.into()), Some(TOPOLOGY.into()), Some(CUSTOMERS.into())),
            &|_| {},
        )
        .await
        .unwrap();
    let incident = engine
        .declare(Declaration {
            elements: vec!["a".into()],
            cause: "Cut".into(),
            message: String::new(),
            etr: Some(ts("2026-11-23T20:00:00Z")),
            next_update_by: ts("2026-11-23T19:00:00Z"),
            started_at: Some(ts("2026-11-23T10:00:00Z")),
            state: IncidentState::Acknowledged,
            translations: Default::default(),
            attributes: Default::default(),
        })
        .await
        .unwrap();
    let id = incident.incident_id.clone();
    let blank = |customer: &str| ImpactRow {
        incident_id: id.clone(),
        customer_id: customer.into(),
        presumed: false,
        affected_at: ts("2026-11-23T10:00:00Z"),
        back_at: None,
        follow_up: false,
        downtime: Vec::new(),
        notified: notified::NOTHING,
    };
    let mut read = vec![blank("C1"), blank("C2")];
    store.upsert_impacts(&mut read).await.unwrap();

    // Between the read and the raise, the writer records each customer's final downtime.
    let downtime = vec![(ts("2026-11-23T10:00:00Z"), ts("2026-11-23T11:00:00Z"))];
    let mut resolved: Vec<ImpactRow> = read
        .iter()
        .map(|r| ImpactRow {
            back_at: Some(ts("2026-11-23T11:00:00Z")),
            downtime: downtime.clone(),
            ..r.clone()
        })
        .collect();
    store.upsert_impacts(&mut resolved).await.unwrap();

    let book = engine.book().await.unwrap();
    let timeline = store.updates(&id).await.unwrap();
    engine.notify_impacts(&book, &incident, &read, &timeline).await.unwrap();

    let stored = store.impacts(&id).await.unwrap();
    assert_eq!(stored.len(), 2);
    for row in stored {
        assert_eq!(row.notified, notified::ACKNOWLEDGED, "{row:?}");
        assert_eq!(row.downtime, downtime, "{}: the downtime written meanwhile is kept", row.customer_id);
        assert_eq!(row.back_at, Some(ts("2026-11-23T11:00:00Z")), "{row:?}");
    }
}
