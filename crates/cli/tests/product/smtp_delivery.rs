//! Notices delivered over a real SMTP conversation: the engine queues them, the
//! dispatcher sends them through a pooled `SmtpTransport` to an SMTP server on 127.0.0.1,
//! and the test reads what arrived. Rejections show the retry policy on a controlled clock:
//! 451 is retried with backoff until the attempts run out, 550 fails at once.

use crate::smtp_server;

use amends_channels::{Backoff, FileTransport, SmtpConfig, SmtpTransport};
use amends_core::incident::{Declaration, IncidentState};
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_recovery::clock::{Clock, ManualClock, after};
use amends_recovery::import::ImportInput;
use amends_recovery::{Engine, EngineConfig};
use amends_sinks::deliver::{DeliveryReport, Dispatcher, Lane};
use jiff::{SignedDuration, Timestamp};
use smtp_server::{Behaviour, SmtpServer};
use std::sync::Arc;

const PLANS: &str = "plan_id,name,monthly_price_minor,currency\nfast,Fast,7999,USD\n";
const TOPOLOGY: &str = "element_id,parent_id,kind,name\nhub,,hub,Hub\n";
const CUSTOMERS: &str = "customer_id,name,email,phone,locale,timezone,plan_id,element_id,device_id,billing_day,active_since,status
C1,Ana Lima,ana@example.com,,en-US,America/New_York,fast,hub,,1,2020-01-01T00:00:00Z,active
C2,Bo Chen,bo@example.com,,en-US,UTC,fast,hub,,1,2020-01-01T00:00:00Z,active
C3,Cy Later,later@example.com,,en-US,UTC,fast,hub,,1,2020-01-01T00:00:00Z,active
C4,Di Gone,gone@example.com,,en-US,UTC,fast,hub,,1,2020-01-01T00:00:00Z,active
";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn setup(server: &SmtpServer, dir: &tempfile::TempDir) -> (Arc<Engine>, Arc<ManualClock>, Dispatcher) {
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T12:00:00Z")));
    let store = amends_store::open(&dir.path().join("a.db").display().to_string()).await.unwrap();
    let config = EngineConfig { provider_name: "Example Cable".into(), ..EngineConfig::default() };
    let engine = Arc::new(Engine::new(store, clock.clone(), Templates::builtin(), Policy::builtin(), config));
    engine
        .import(
            ImportInput::from_texts(Some(PLANS.into()), Some(TOPOLOGY.into()), Some(CUSTOMERS.into())),
            &|_| {},
        )
        .await
        .unwrap();
    let smtp = SmtpTransport::new(SmtpConfig {
        url: server.url(),
        from: "Example Cable <care@cable.example>".into(),
        timeout_ms: 10_000,
        pool_max: 2,
        username: None,
        password: None,
    })
    .unwrap();
    let backoff = Backoff { base_ms: 60_000, factor: 2, max_ms: 3_600_000, attempts_max: 3 };
    let lanes = vec![
        Lane { backoff, ..Lane::new("email", Arc::new(smtp)) },
        Lane::new("sms", Arc::new(FileTransport::new(dir.path().join("sms.txt")))),
    ];
    let dispatcher = Dispatcher::new(engine.store().clone(), clock.clone(), lanes);
    (engine, clock, dispatcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_arrive_over_smtp_once_with_retries_and_failures_recorded() {
    let mut server = SmtpServer::start(Behaviour {
        reject_transiently: vec!["later@example.com".into()],
        reject_permanently: vec!["gone@example.com".into()],
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock, dispatcher) = setup(&server, &dir).await;
    engine
        .declare(Declaration {
            elements: vec!["hub".into()],
            cause: "A fibre cable was cut".into(),
            message: "Crews are splicing it".into(),
            etr: Some(ts("2026-11-23T21:00:00Z")),
            next_update_by: ts("2026-11-23T14:00:00Z"),
            started_at: None,
            state: IncidentState::Acknowledged,
            translations: Default::default(),
            attributes: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(engine.tick().await.unwrap().fanout.notices_queued, 4);

    let report = dispatcher.deliver_due().await.unwrap();
    assert_eq!(report, DeliveryReport { sent: 2, retried: 1, failed: 1, suppressed: 0 });
    let mut arrived = server.drain();
    arrived.sort_by(|a, b| a.rcpt_to.cmp(&b.rcpt_to));
    assert_eq!(
        arrived.iter().map(|m| m.rcpt_to.join(",")).collect::<Vec<_>>(),
        ["ana@example.com", "bo@example.com"]
    );
    let ana = mail_parser::MessageParser::default().parse(&arrived[0].data).unwrap();
    assert_eq!(arrived[0].mail_from, "care@cable.example");
    assert_eq!(ana.subject(), Some("An outage in your area: we are on it"));
    assert_eq!(
        ana.header_raw("X-Amends-Notice-Key").map(str::trim),
        Some("C1/INC-000001/acknowledgement/0/email")
    );
    let body = ana.body_text(0).unwrap();
    assert!(body.starts_with("Hello Ana Lima,"), "{body}");
    // 21:00 UTC is 4:00 PM in New York, where Ana lives.
    assert!(body.contains("We expect it back by Monday, November 23 at 4:00\u{202f}PM EST."), "{body}");

    // Nothing is due again until the backoff has passed; nothing is sent twice.
    assert_eq!(dispatcher.deliver_due().await.unwrap(), DeliveryReport::default());
    assert!(server.drain().is_empty());
    let later = engine.store().notices_for_customer("C3").await.unwrap();
    assert_eq!((later[0].status.as_str(), later[0].attempts), ("queued", 1));
    assert!(later[0].next_attempt_at >= after(clock.now(), SignedDuration::from_secs(30)));
    let gone = engine.store().notices_for_customer("C4").await.unwrap();
    assert_eq!(gone[0].status.as_str(), "failed");
    assert!(gone[0].last_error.as_deref().unwrap().starts_with("permanent:"), "{:?}", gone[0].last_error);

    // Two more transient failures, each after its backoff, then the notice is given up.
    clock.advance(SignedDuration::from_hours(1));
    assert_eq!(
        dispatcher.deliver_due().await.unwrap(),
        DeliveryReport { sent: 0, retried: 1, failed: 0, suppressed: 0 }
    );
    clock.advance(SignedDuration::from_hours(1));
    assert_eq!(
        dispatcher.deliver_due().await.unwrap(),
        DeliveryReport { sent: 0, retried: 0, failed: 1, suppressed: 0 }
    );
    let later = engine.store().notices_for_customer("C3").await.unwrap();
    assert_eq!((later[0].status.as_str(), later[0].attempts), ("failed", 3));
    assert!(
        later[0].last_error.as_deref().unwrap().starts_with("gave up after 3 attempts"),
        "{:?}",
        later[0].last_error
    );
    let ana = engine.store().notices_for_customer("C1").await.unwrap();
    assert_eq!((ana[0].status.as_str(), ana[0].attempts), ("sent", 1));
}
