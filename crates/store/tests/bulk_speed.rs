//! How fast the bulk paths are, against the raw floor (`bench_raw_insert`). Ignored by
//! default: run in release mode, e.g.
//!
//! ```text
//! AMENDS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo test -p amends-store --release --test bulk_speed -- --ignored --nocapture
//! ```
//!
//! `AMENDS_BENCH_ROWS` sets the row count (default 1 000 000).

use std::time::Instant;

use amends_core::preferences::Channel;
use amends_store::{BenchedStore, BookRows, CreditRow, CustomerRow, NoticeRow, NoticeStatus};
use jiff::Timestamp;

mod harness;

fn rows() -> usize {
    std::env::var("AMENDS_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
}

fn t(us: i64) -> Timestamp {
    Timestamp::from_microsecond(1_700_000_000_000_000 + us).unwrap()
}

/// Credits as the credit step writes them: one incident, one per customer.
fn credits(n: usize) -> Vec<CreditRow> {
    (0..n)
        .map(|i| CreditRow {
            key: format!("C{i:08}/INC-000001/sla-residential/3"),
            customer_id: format!("C{i:08}").into(),
            source_event: "INC-000001".into(),
            policy_id: "sla-residential".into(),
            policy_version: 3,
            amount_minor: 100 + (i % 900) as i64,
            currency: "EUR".into(),
            statement: "2024-05-15".into(),
            explanation: format!(
                "4 h 12 min of outage over 30 days of 29.99 EUR, rounded half up: {}",
                i % 97
            ),
            lines_json: r#"[{"label":"outage","minutes":252,"rate":"29.99/30d"}]"#.into(),
            created_at: t(i as i64),
        })
        .collect()
}

fn notices(n: usize) -> Vec<NoticeRow> {
    (0..n)
        .map(|i| NoticeRow {
            key: format!("C{i:08}/INC-000001/declared/0"),
            customer_id: format!("C{i:08}").into(),
            about: "INC-000001".into(),
            kind: "declared".into(),
            seq: 0,
            channel: Channel::Email,
            recipient: format!("customer{i}@example.com"),
            locale: "fr-FR".into(),
            subject: "Panne en cours dans votre quartier".into(),
            body: "Bonjour,\n\nUne panne touche votre service depuis 14h02.\tNous estimons un rétablissement vers 18h00.\n\nL'équipe".into(),
            status: NoticeStatus::Queued,
            attempts: 0,
            next_attempt_at: t(0),
            last_error: None,
            created_at: t(i as i64),
            sent_at: None,
            reason: None,
            provider_id: None,
            content_sha256: None,
        })
        .collect()
}

fn customers(n: usize) -> Vec<CustomerRow> {
    (0..n)
        .map(|i| CustomerRow {
            customer_id: format!("C{i:08}").into(),
            name: format!("Customer {i}"),
            email: Some(format!("customer{i}@example.com")),
            phone: (i % 3 == 0).then(|| format!("+3360000{i:04}")),
            locale: "fr-FR".into(),
            timezone: "Europe/Paris".into(),
            plan_id: "fibre-300".into(),
            element_id: format!("CAB-{:05}", i / 64),
            device_id: Some(format!("ONT-{i:08}")),
            billing_day: (1 + i % 28) as i16,
            active_since: t(-(i as i64)),
            status: amends_core::book::CustomerStatus::Active,
            segment: if i % 10 == 0 { "business".into() } else { "residential".into() },
            jurisdiction: Some("FR".into()),
            attributes: None,
        })
        .collect()
}

async fn measure(store: &dyn BenchedStore) {
    let n = rows();
    let backend = store.backend();

    let mut raw = credits(n);
    let start = Instant::now();
    store.bench_raw_insert(&mut raw).await.unwrap();
    let raw_s = start.elapsed().as_secs_f64();

    let mut ledger = credits(n);
    let start = Instant::now();
    let write = store.append_credits(&mut ledger).await.unwrap();
    let ledger_s = start.elapsed().as_secs_f64();
    assert_eq!(write.inserted, n as u64);

    let start = Instant::now();
    let write = store.append_credits(&mut ledger).await.unwrap();
    let rerun_s = start.elapsed().as_secs_f64();
    assert_eq!(write.unchanged, n as u64);

    let outbox = notices(n);
    let start = Instant::now();
    assert_eq!(store.enqueue_notices(&outbox).await.unwrap(), n as u64);
    let notices_s = start.elapsed().as_secs_f64();

    let book = BookRows { customers: customers(n), ..BookRows::default() };
    let start = Instant::now();
    store.import_book(&book, &|_| {}).await.unwrap();
    let import_s = start.elapsed().as_secs_f64();

    let rate = |s: f64| n as f64 / s / 1e6;
    println!("{backend}: {n} rows");
    println!("{backend}:   raw floor       {raw_s:6.2} s  {:5.2} M rows/s", rate(raw_s));
    println!(
        "{backend}:   append_credits  {ledger_s:6.2} s  {:5.2} M rows/s  ({:.2}x the floor)",
        rate(ledger_s),
        ledger_s / raw_s
    );
    println!("{backend}:   credits re-run  {rerun_s:6.2} s  {:5.2} M rows/s", rate(rerun_s));
    println!("{backend}:   enqueue_notices {notices_s:6.2} s  {:5.2} M rows/s", rate(notices_s));
    println!("{backend}:   import_book     {import_s:6.2} s  {:5.2} M rows/s", rate(import_s));
}

#[tokio::test]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn sqlite_bulk_speed() {
    harness::run_sqlite(|store| async move { measure(&store).await }).await;
}

#[tokio::test]
#[ignore = "benchmark: run in release mode with --ignored --nocapture"]
async fn postgres_bulk_speed() {
    harness::run_pg("postgres_bulk_speed", |store| async move { measure(&store).await }).await;
}
