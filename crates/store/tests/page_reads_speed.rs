//! How long a customer's page reads take on a database made by `amends bench --web-only`.
//! Ignored by default: run in release mode, e.g.
//!
//! ```text
//! AMENDS_PAGE_READS_DB=amends-data/bench/web.db \
//!   cargo test -p amends-store --release --test page_reads_speed -- --ignored --nocapture
//! ```

use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore]
async fn page_reads() {
    let path = std::env::var("AMENDS_PAGE_READS_DB").expect("AMENDS_PAGE_READS_DB");
    let store = amends_store::open(&path).await.unwrap();
    let ids: Vec<String> = (1..=20_000).map(|i| format!("C{i:07}")).collect();
    for round in 0..3 {
        let t = Instant::now();
        let mut notices = 0;
        for id in &ids {
            notices += store.customer_reads(id, 50).await.unwrap().notices.len();
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;
        println!("round {round}: {per:.1} µs a customer's reads ({notices} notices)");
    }
}
