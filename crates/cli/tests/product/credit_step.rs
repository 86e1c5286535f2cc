//! The credit step at engine level: a run under another policy than the one an incident's
//! credits were started with refuses to write (it would credit the same outage twice
//! under different keys), and its failure holds up no other incident.

use amends_core::incident::{Declaration, IncidentState};
use amends_core::interval::Interval;
use amends_core::notice::Templates;
use amends_core::policy::{Assignment, Policy, PolicySet};
use amends_recovery::clock::{Clock, ManualClock};
use amends_recovery::import::ImportInput;
use amends_recovery::{Engine, EngineConfig, ThisOutage, compute_credits};
use amends_store::{CreditFilter, Store};
use jiff::Timestamp;
use std::sync::Arc;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nroot,,region,R\na,root,hub,A\nb,root,hub,B\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana,ana@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active
C2,Bo,bo@example.com,,en-US,UTC,fast,b,,1,2020-01-01T00:00:00Z,active
";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn engine(store: Arc<dyn Store>, clock: Arc<ManualClock>, version: u32) -> Engine {
    let text =
        amends_core::policy::DEFAULT_POLICY_TOML.replace("version = 2", &format!("version = {version}"));
    let policy = Policy::from_toml("test", &text).unwrap();
    Engine::new(store, clock, Templates::builtin(), policy, EngineConfig::default())
}

async fn outage(engine: &Engine, element: &str) -> String {
    let incident = engine
        .declare(Declaration {
            elements: vec![element.into()],
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
    incident.incident_id.to_string()
}

#[tokio::test]
async fn a_second_policy_is_refused_and_holds_up_no_other_incident() {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    let v1 = engine(store.clone(), clock.clone(), 1);
    v1.import(
        ImportInput::from_texts(Some(PLANS.into()), Some(TOPOLOGY.into()), Some(CUSTOMERS.into())),
        &|_| {},
    )
    .await
    .unwrap();
    let first = outage(&v1, "a").await;
    let second = outage(&v1, "b").await;
    clock.set(ts("2026-11-23T19:00:00Z"));
    v1.resolve(&first, "").await.unwrap();
    v1.resolve(&second, "").await.unwrap();
    v1.fan_out().await.unwrap();

    // A v1 run writes the first incident's credits and dies before marking it credited.
    let book = v1.book().await.unwrap();
    let resolved = v1.incident(&first).await.unwrap();
    let outage = Interval::new(resolved.started_at, resolved.resolved_at.unwrap()).unwrap();
    let affected = book.affected(&book.element_indices(&resolved.element_ids));
    let policy = v1.policies().assignments()[0].policy.clone();
    let attributes = amends_recovery::outage_attributes(&resolved, affected.len()).unwrap();
    let this =
        ThisOutage { id: first.as_str().into(), outage, issued_at: outage.end(), own: None, attributes };
    let computed = compute_credits(&book, &policy, &this, &affected, &[]).unwrap();
    let mut rows: Vec<_> =
        computed.iter().map(|c| v1.credit_row(&book, &resolved, &policy, c, clock.now())).collect();
    assert_eq!(store.append_credits(&mut rows).await.unwrap().inserted, 1);

    // The restart runs policy v2: the first incident is refused, the second is credited.
    let v2 = engine(store.clone(), clock.clone(), 2);
    let report = v2.credit_resolved().await.unwrap();
    assert_eq!((report.failed, report.incidents, report.credits_written), (1, 1, 1));
    let keys = |filter: CreditFilter| {
        let store = store.clone();
        async move { store.credits(&filter).await.unwrap().into_iter().map(|c| c.key).collect::<Vec<_>>() }
    };
    assert_eq!(
        keys(CreditFilter::default()).await,
        ["C1/INC-000001/prorated/1", "C2/INC-000002/prorated/2"],
        "no credit under v2 for the incident started under v1"
    );

    // Back on v1, the first incident's step completes without writing anything new.
    let report = v1.credit_resolved().await.unwrap();
    assert_eq!(
        (report.failed, report.incidents, report.credits_written, report.credits_unchanged),
        (0, 1, 0, 1)
    );
    assert_eq!(report.notices_queued, 1);
    assert!(store.uncredited_resolved().await.unwrap().is_empty());
}

const SEGMENTED: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,segment
C1,Ana,ana@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active,residential
C2,Bo,bo@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active,business
";

/// Policies are assigned by segment: everyone gets the prorated credit, business
/// customers also a flat goodwill amount; each is its own ledger row, and each customer
/// gets one notice with the total.
#[tokio::test]
async fn policies_apply_by_assignment_and_one_notice_tells_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    let flat = Policy::from_toml("flat", include_str!("../../../../policies/flat-per-account.toml")).unwrap();
    let set = PolicySet::new(vec![
        Assignment::everyone(Policy::builtin()),
        Assignment { segments: vec!["business".into()], ..Assignment::everyone(flat) },
    ])
    .unwrap();
    let engine =
        Engine::new(store.clone(), clock.clone(), Templates::builtin(), set, EngineConfig::default());
    engine
        .import(
            ImportInput::from_texts(Some(PLANS.into()), Some(TOPOLOGY.into()), Some(SEGMENTED.into())),
            &|_| {},
        )
        .await
        .unwrap();
    let id = outage(&engine, "a").await;
    clock.set(ts("2026-11-23T19:00:00Z"));
    engine.resolve(&id, "").await.unwrap();
    engine.fan_out().await.unwrap();
    let report = engine.credit_resolved().await.unwrap();
    assert_eq!(report.credits_written, 3);
    let credits = store.credits(&CreditFilter::default()).await.unwrap();
    let rows: Vec<(&str, i64)> = credits.iter().map(|c| (c.key.as_str(), c.amount_minor)).collect();
    // 10:00-19:00 of a 30-day cycle: 7999 x 540 / 43,200 = 99.99 -> 100; flat 500.
    assert_eq!(
        rows,
        [
            ("C1/INC-000001/prorated/2", 100),
            ("C2/INC-000001/flat-per-account/1", 500),
            ("C2/INC-000001/prorated/2", 100)
        ]
    );
    assert_eq!(report.notices_queued, 2, "one credit notice per customer");
    let notices = store.notices_for_customer("C2").await.unwrap();
    let credit = notices.iter().find(|n| n.key.contains("/credit/")).expect("a credit notice");
    assert!(credit.body.contains("6.00"), "the notice tells the total: {}", credit.body);
}

/// A store, a clock at 12:00 and an engine under the policy `toml`, with the book imported.
async fn started(
    toml: &str,
    customers: &str,
) -> (tempfile::TempDir, Arc<dyn Store>, Arc<ManualClock>, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    let policy = Policy::from_toml("test", toml).unwrap();
    let engine =
        Engine::new(store.clone(), clock.clone(), Templates::builtin(), policy, EngineConfig::default());
    let book = ImportInput::from_texts(Some(PLANS.into()), Some(TOPOLOGY.into()), Some(customers.into()));
    engine.import(book, &|_| {}).await.unwrap();
    (dir, store, clock, engine)
}

/// Each customer's credits, by incident, sorted.
async fn paid(store: &Arc<dyn Store>) -> Vec<(String, String, i64)> {
    let mut paid: Vec<_> = store
        .credits(&CreditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.source_event, c.customer_id.into(), c.amount_minor))
        .collect();
    paid.sort();
    paid
}

/// A customer attribute from the book (`attr.medical_priority` in customers.csv) reaches a
/// policy in the server's credit step, through the store (issue 17, item 17).
#[tokio::test]
async fn a_customer_attribute_from_the_book_pays_in_the_server() {
    let customers = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status,attr.medical_priority
C1,Ana,ana@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active,true
C2,Bo,bo@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active,false
C3,Cy,cy@example.com,,en-US,UTC,fast,a,,1,2020-01-01T00:00:00Z,active,
";
    let policy = r#"
id = "medical"
version = 1

[[rules]]
id = "goodwill"
event = "outage"
pay = { basis = "once", amount = { minor = 500 } }

[[rules]]
id = "medical"
description = "Medical priority: the goodwill again"
event = "outage"
when = 'has(customer.attributes.medical_priority) && customer.attributes.medical_priority'
pay = { basis = "once", amount = { minor = 500 } }
"#;
    let (_dir, store, clock, engine) = started(policy, customers).await;
    let id = outage(&engine, "a").await;
    clock.set(ts("2026-11-23T19:00:00Z"));
    engine.resolve(&id, "").await.unwrap();
    engine.fan_out().await.unwrap();
    engine.credit_resolved().await.unwrap();
    let each = |c: &str, minor| (id.clone(), c.to_string(), minor);
    assert_eq!(paid(&store).await, [each("C1", 1000), each("C2", 500), each("C3", 500)]);
}

/// The operator's facts of an outage (`attributes` of the declaration) and the number of
/// customers it affected reach policies as `event.attributes` in the server, where they
/// were always empty, so a storm rule could never pay (issue 17, item 17).
#[tokio::test]
async fn an_incident_s_attributes_and_its_customers_affected_pay_in_the_server() {
    let policy = r#"
id = "storm"
version = 1

[[rules]]
id = "storm"
description = "Storm goodwill"
event = "outage"
when = 'has(event.attributes.storm) && event.attributes.storm'
pay = { basis = "once", amount = { minor = 700 } }

[[rules]]
id = "wide"
description = "An outage of two customers or more"
event = "outage"
when = 'event.attributes.customers_affected >= 2'
pay = { basis = "once", amount = { minor = 100 } }
"#;
    let (_dir, store, clock, engine) = started(policy, CUSTOMERS).await;
    let declare = |element: &str, storm: bool| Declaration {
        elements: vec![element.into()],
        cause: "Storm".into(),
        message: String::new(),
        etr: None,
        next_update_by: ts("2026-11-23T19:00:00Z"),
        started_at: Some(ts("2026-11-23T10:00:00Z")),
        state: IncidentState::Acknowledged,
        translations: Default::default(),
        attributes: [("storm".to_string(), amends_core::policy::Attribute::Bool(storm))].into(),
    };
    // amends counts the customers itself: an operator's count is refused.
    let mut counted = declare("a", true);
    counted.attributes.insert("customers_affected".into(), amends_core::policy::Attribute::Int(5000));
    let refused = engine.declare(counted).await.unwrap_err().to_string();
    assert!(refused.contains("attributes.customers_affected: set by amends itself"), "{refused}");

    let stormy = engine.declare(declare("a", true)).await.unwrap().incident_id.into_string();
    let calm = engine.declare(declare("b", false)).await.unwrap().incident_id;
    let shown = engine.incident(&stormy).await.unwrap();
    assert_eq!(shown.attributes.as_deref(), Some(r#"{"storm":true}"#));
    clock.set(ts("2026-11-23T19:00:00Z"));
    for id in [stormy.as_str(), calm.as_str()] {
        engine.resolve(id, "").await.unwrap();
    }
    // Later, apart (touching outages would be one episode): the whole network.
    clock.set(ts("2026-11-23T20:00:00Z"));
    let wide = Declaration {
        started_at: None,
        next_update_by: ts("2026-11-23T22:00:00Z"),
        ..declare("root", false)
    };
    let wide = engine.declare(wide).await.unwrap().incident_id.into_string();
    clock.set(ts("2026-11-23T21:00:00Z"));
    engine.resolve(&wide, "").await.unwrap();
    engine.fan_out().await.unwrap();
    engine.credit_resolved().await.unwrap();
    // The storm pays C1 on hub a; the outage of the root covers both customers.
    assert_eq!(
        paid(&store).await,
        [
            (stormy.clone(), "C1".to_string(), 700),
            (wide.clone(), "C1".to_string(), 100),
            (wide.clone(), "C2".to_string(), 100),
        ]
    );
}
