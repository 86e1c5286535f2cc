//! `amends bench`: the performance goals of the brief, measured on this machine.
//!
//! For N customers all affected by one incident, on SQLite and (given a URL) on a fresh
//! PostgreSQL database, it measures: the CSV import; the acknowledgement fan-out (render
//! and durably queue N notices); impact and credits computed in memory; the ledger write;
//! and, in the same run and the same database, a raw bulk insert of the same rows into an
//! equivalent table, the floor the ledger is compared against. Then delivery throughput
//! (`delivery.rs`): queued notices from a fresh SQLite outbox through the dispatcher to an
//! SMTP server and a webhook receiver on 127.0.0.1, against the same messages sent straight
//! through the same transport. Figures are printed, not asserted: timings belong in a
//! report, not in a test.

mod delivery;
mod detection;
mod load;
mod telemetry;
mod web;

use crate::demo::synth;
use amends_core::incident::{Declaration, IncidentState};
use amends_core::interval::Interval;
use amends_core::money::group_thousands;
use amends_core::notice::Templates;
use amends_core::policy::Policy;
use amends_recovery::clock::{Clock, ManualClock, after};
use amends_recovery::import::ImportInput;
use amends_recovery::{Engine, EngineConfig, ThisOutage, compute_credits};
use amends_store::{BenchedStore, CreditRow};
use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Customers, all affected by the one incident.
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: usize,
    /// Also run on PostgreSQL: a server URL; a fresh database is created and dropped.
    #[arg(long, env = "AMENDS_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Working directory for the SQLite file and the CSV book (emptied first).
    #[arg(long, default_value = "amends-data/bench")]
    pub dir: std::path::PathBuf,
    /// Only measure policy evaluation (no database).
    #[arg(long)]
    pub policies_only: bool,
    /// Only measure outage detection: the telemetry storm (no database).
    #[arg(long)]
    pub telemetry_only: bool,
    /// Notices per channel for the delivery measurement (email over SMTP, webhook); 0 skips it.
    #[arg(long, default_value_t = 20_000)]
    pub deliveries: usize,
    /// Only measure delivery throughput, to local SMTP and webhook receivers.
    #[arg(long)]
    pub delivery_only: bool,
    /// Only measure the outbox on SQLite (and PostgreSQL with `--postgres`): the import,
    /// then the acknowledgements and restorations rendered and durably queued.
    #[arg(long)]
    pub outbox_only: bool,
    /// Only measure the server path of the telemetry storm: events published to NATS
    /// JetStream at their own pace, through `amends serve` (in this process, SQLite), to
    /// the network-wide incident visible over HTTP and every acknowledgement queued.
    #[arg(long)]
    pub detection_server: bool,
    /// The NATS server for `--detection-server`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Also write the storm's events here as NDJSON (for `amends replay`), and the
    /// synthetic book as CSV beside it (`<file>.book/`, for `amends import`).
    #[arg(long)]
    pub write_events: Option<std::path::PathBuf>,
    /// Only measure the customer's web: the status page and customers' pages served by
    /// `amends serve` (in this process, SQLite) to a load generator on 127.0.0.1, while an
    /// incident affecting all `--customers` fans out.
    #[arg(long)]
    pub web_only: bool,
    /// Seconds each route of `--web-only` is driven for.
    #[arg(long, default_value_t = 5)]
    pub web_seconds: u64,
    /// Concurrent keep-alive connections of `--web-only`'s load generator.
    #[arg(long, default_value_t = 64)]
    pub web_connections: usize,
    /// With `--web-only`: only customers' pages built one after another in this process,
    /// after six fan-outs (about ten notices each), with no load generator: what a page
    /// costs by itself, to be counted in instructions, e.g. under
    /// `valgrind --tool=callgrind --toggle-collect='*built_alone*'`.
    #[arg(long, requires = "web_only")]
    pub web_pages_alone: bool,
}

pub async fn run(_settings: &amends_server::settings::Settings, args: BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; run `cargo run --release -- bench` for real figures");
    }
    if args.delivery_only {
        return delivery::run(&args.dir, args.deliveries).await;
    }
    if args.detection_server {
        return detection::run(&args.dir, args.customers, &args.nats).await;
    }
    if args.web_only {
        if args.customers == 0 {
            bail!(
                "--web-only needs at least one customer (--customers): with none there is no page to ask for"
            );
        }
        if args.web_pages_alone {
            return web::pages_alone(&args.dir, args.customers).await;
        }
        return web::run(&args.dir, args.customers, args.web_seconds, args.web_connections.max(1)).await;
    }
    let start = Timestamp::from_second(1_795_446_000)?; // 2026-11-23T15:00:00Z
    if !args.telemetry_only && !args.outbox_only {
        policy_evaluations(args.customers)?;
    }
    let storm = if args.policies_only || args.outbox_only {
        Vec::new()
    } else {
        telemetry::storm(args.customers, start, args.write_events.as_deref())?
    };
    if args.policies_only || args.telemetry_only {
        return Ok(());
    }
    std::fs::create_dir_all(&args.dir)?;
    let book_dir = args.dir.join("book");
    let book = synth::generate(args.customers, 7, start);
    synth::write_csv(&book, &book_dir)?;
    println!("amends bench: {} customers affected by one incident", group_thousands(args.customers as u64));
    if !args.no_sqlite {
        let path = args.dir.join("bench.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store = amends_store::open_benched(&path.display().to_string()).await?;
        run_backend(store, &book_dir, start, &storm, args.outbox_only).await?;
    }
    if let Some(url) = &args.postgres {
        let db = FreshPostgres::create(url).await?;
        let result = async {
            run_backend(
                amends_store::open_benched(&db.url).await?,
                &book_dir,
                start,
                &storm,
                args.outbox_only,
            )
            .await
        }
        .await;
        db.drop_database().await;
        result?;
    }
    if !args.outbox_only {
        delivery::run(&args.dir, args.deliveries).await?;
    }
    if let Some(peak) = peak_rss_kib() {
        println!("\npeak resident memory: {} MiB", group_thousands(peak / 1024));
    }
    Ok(())
}

/// Evaluations per second on one core, for the prorated policy and for the Ofcom policy,
/// each over `n` distinct customers (zones, billing days, prices and outages all vary), with
/// the facts built beforehand: this measures the engine, not the set-up.
fn policy_evaluations(n: usize) -> Result<()> {
    use amends_core::policy::facts::{Event, EventKind};
    use amends_core::policy::{CustomerFacts, Facts, PricePoint, evaluate};
    const OFCOM: &str = include_str!("../../../../policies/uk-ofcom-automatic-compensation.toml");
    let zones = ["Europe/London", "America/New_York", "Europe/Paris", "UTC", "Asia/Tokyo"];
    let zones: Vec<_> = zones.iter().map(|z| (z.to_string(), jiff::tz::TimeZone::get(z))).collect();
    let base = 1_743_465_600i64; // 2025-04-01T00:00:00Z
    let make = |i: usize, currency: &str, reported: bool| -> Result<Facts> {
        let (zone_name, zone) = &zones[i % zones.len()];
        let start = Timestamp::from_second(base + (i as i64 * 7_919) % (300 * 86_400))?;
        let end = Timestamp::from_second(start.as_second() + 600 + (i as i64 * 104_729) % (6 * 86_400))?;
        let reported_at = reported.then(|| Timestamp::from_second(start.as_second() + 300)).transpose()?;
        Ok(Facts {
            customer: CustomerFacts {
                id: format!("C{i}"),
                segment: "residential".into(),
                jurisdiction: ["GB-EAW", "GB-SCT", "GB-NIR"][i % 3].into(),
                zone_name: zone_name.clone(),
                zone: zone.clone()?,
                currency: amends_core::money::Currency::parse(currency)?,
                billing_day: (1 + i % 28) as u8,
                active_from: Timestamp::from_second(base - 400 * 86_400)?,
                prices: vec![PricePoint {
                    from: jiff::civil::date(2020, 1, 1),
                    monthly_price_minor: 1999 + (i % 7000) as i64,
                }],
                attributes: Arc::default(),
            },
            events: vec![Event {
                id: "F1".into(),
                what: EventKind::Outage { span: Interval::new(start, end).context("span")?, reported_at },
                attributes: Arc::default(),
            }],
        })
    };
    println!("\n[policy evaluation, one core, {} distinct customers]", group_thousands(n as u64));
    for (name, policy, currency, reported) in [
        ("prorated", Policy::builtin(), "USD", false),
        ("uk-ofcom-automatic-compensation", Policy::from_toml("ofcom", OFCOM)?, "GBP", true),
    ] {
        let facts: Vec<Facts> = (0..n).map(|i| make(i, currency, reported)).collect::<Result<_>>()?;
        let mut t = Timer::start();
        let mut total = 0i64;
        for f in &facts {
            total += evaluate(&policy, f)?.total_minor;
        }
        let took = t.lap();
        row(
            &format!("{name} (total {})", group_thousands(total as u64)),
            took,
            n,
            "evaluations/s; goal for prorated: > 1M/s per core",
        );
    }
    Ok(())
}

/// An engine on the real clock over a fresh SQLite file `<dir>/<name>.db`, with a synthetic
/// book of `customers` imported (and timed): what the benches that run a server start from.
async fn served_engine(dir: &std::path::Path, name: &str, customers: usize) -> Result<Arc<Engine>> {
    std::fs::create_dir_all(dir).with_context(|| format!("the bench's directory {}", dir.display()))?;
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let book_dir = dir.join(format!("{name}-book"));
    synth::write_csv(&synth::generate(customers, 7, Timestamp::now()), &book_dir)?;
    let store = amends_store::open(&path.display().to_string()).await?;
    let engine = Arc::new(Engine::new(
        store,
        Arc::new(amends_recovery::clock::SystemClock),
        Templates::builtin(),
        Policy::builtin(),
        EngineConfig::default(),
    ));
    let mut t = Timer::start();
    engine.import(ImportInput::from_dir(&book_dir)?, &|_| {}).await?;
    row("import CSV", t.lap(), engine.book().await?.customers.len(), "");
    Ok(engine)
}

/// The process's peak resident set (Linux `VmHWM`), where the system reports it.
fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("VmHWM:")
}

/// The process's resident set now (Linux `VmRSS`), where the system reports it.
pub(crate) fn rss_kib() -> Option<u64> {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) struct Timer(Instant);

impl Timer {
    pub(crate) fn start() -> Self {
        Timer(Instant::now())
    }

    pub(crate) fn lap(&mut self) -> Duration {
        let d = self.0.elapsed();
        self.0 = Instant::now();
        d
    }
}

pub(crate) fn row(what: &str, d: Duration, rows: usize, note: &str) {
    let rate = rows as f64 / d.as_secs_f64().max(1e-9);
    println!("  {what:<44} {:>9.3} s {:>12} rows/s  {note}", d.as_secs_f64(), group_thousands(rate as u64));
}

async fn run_backend(
    store: Arc<dyn BenchedStore>,
    book_dir: &std::path::Path,
    start: Timestamp,
    storm: &[amends_core::telemetry::DeviceEvent],
    outbox_only: bool,
) -> Result<()> {
    println!("\n[{}]", store.backend());
    let clock = Arc::new(ManualClock::new(start));
    let engine = Engine::new(
        store.clone(),
        clock.clone(),
        Templates::builtin(),
        Policy::builtin(),
        EngineConfig::default(),
    );
    let mut t = Timer::start();
    let summary = engine.import(ImportInput::from_dir(book_dir)?, &|_| {}).await?;
    let n = summary.imported.customers as usize;
    row("import CSV (parse, check, upsert)", t.lap(), n, "");
    let book = engine.book().await?;
    row("load the book into memory", t.lap(), n, "");

    let incident = engine.declare(everyone_out(start)).await?;
    t.lap();
    let fanout = engine.fan_out().await?;
    row(
        "acknowledgements rendered + durably queued",
        t.lap(),
        fanout.notices_queued as usize,
        "goal: 1M in < 10 s",
    );

    clock.set(after(start, SignedDuration::from_mins(175)));
    engine.resolve(&incident.incident_id, "Back").await?;
    t.lap();
    let fanout = engine.fan_out().await?;
    row("restoration notices rendered + durably queued", t.lap(), fanout.notices_queued as usize, "");
    if outbox_only {
        return Ok(());
    }
    let resolved = engine.incident(&incident.incident_id).await?;
    let outage =
        Interval::new(resolved.started_at, resolved.resolved_at.context("resolved")?).context("outage")?;
    t.lap();
    let elements = book.element_indices(&resolved.element_ids);
    let affected = book.affected(&elements);
    let impact = t.lap();
    let policy = Policy::builtin();
    let this = ThisOutage {
        id: resolved.incident_id.as_str().into(),
        outage,
        issued_at: outage.end(),
        own: None,
        attributes: amends_recovery::outage_attributes(&resolved, affected.len())?,
    };
    let computed = compute_credits(&book, &policy, &this, &affected, &[])?;
    let credits = t.lap();
    row("impact in memory", impact, affected.len(), "");
    row("credits in memory", credits, computed.len(), "");
    row("impact + credits in memory", impact + credits, computed.len(), "goal: 1M in < 0.2 s");

    let now = clock.now();
    let mut rows: Vec<CreditRow> = computed
        .iter()
        .filter(|c| c.credit.amount_minor > 0)
        .map(|c| engine.credit_row(&book, &resolved, &policy, c, now))
        .collect();
    row("ledger rows built", t.lap(), rows.len(), "");
    let mut raw = rows.clone();
    t.lap();
    store.bench_raw_insert(&mut raw).await?;
    let floor = t.lap();
    row("raw bulk insert, same rows (floor)", floor, raw.len(), "");
    let written = store.append_credits(&mut rows).await?;
    let ledger = t.lap();
    if written.inserted as usize != rows.len() {
        bail!("the ledger took {} of {} rows", written.inserted, rows.len());
    }
    row(
        "ledger append (checked, exactly once)",
        ledger,
        rows.len(),
        &format!("{:.2}x the floor (goal: within 2x)", ledger.as_secs_f64() / floor.as_secs_f64().max(1e-9)),
    );
    let again = store.append_credits(&mut rows).await?;
    row("ledger re-run (all unchanged, nothing written)", t.lap(), again.unchanged as usize, "");
    // The ledger is committed and no credit notice is queued, the incident not marked
    // credited: what a kill right after the ledger's commit leaves, the costliest point to
    // restart from (everything is computed again and every row found unchanged).
    let tick = engine.tick().await?;
    let restarted = t.lap();
    let notices = tick.credits.notices_queued as usize;
    row("credit step restarted after a kill", restarted, notices, "past the ledger's commit");
    if tick.credits.credits_written != 0 {
        bail!(
            "the credit step wrote {} credits that were already in the ledger",
            tick.credits.credits_written
        );
    }
    // Measured whole on a second outage of everyone. It does more than the first: every
    // customer has the first outage in the policy's look-back, so no credit is shared by a
    // group and each is worked out alone.
    let uninterrupted = uninterrupted_credit_step(&engine, &clock, start).await?;
    row("credit step uninterrupted (a 2nd outage)", uninterrupted, notices, "each customer worked out alone");
    println!(
        "  {:<44} {:>9.2}x  (goal: at most 1.2x; the 2nd outage's step does more)",
        "restarted / uninterrupted",
        restarted.as_secs_f64() / uninterrupted.as_secs_f64().max(1e-9)
    );
    telemetry::log_storm(store.as_ref(), storm).await?;
    Ok(())
}

/// An outage of everyone (the root element) declared at `at`, with an estimate.
fn everyone_out(at: Timestamp) -> Declaration {
    Declaration {
        elements: vec!["ROOT".to_string()],
        cause: "Benchmark outage".into(),
        message: "Measuring".into(),
        etr: Some(after(at, SignedDuration::from_hours(2))),
        next_update_by: after(at, SignedDuration::from_hours(1)),
        started_at: None,
        state: IncidentState::Acknowledged,
        translations: Default::default(),
        attributes: Default::default(),
    }
}

/// The credit step of a second outage of everyone, run from start to end by the tick
/// after its resolution (its acknowledgements and restorations queued first, untimed):
/// what the restarted step is compared with.
async fn uninterrupted_credit_step(
    engine: &Engine,
    clock: &ManualClock,
    start: Timestamp,
) -> Result<Duration> {
    let second_start = after(start, SignedDuration::from_mins(200));
    clock.set(second_start);
    let second = engine.declare(everyone_out(second_start)).await?;
    engine.fan_out().await?;
    clock.set(after(second_start, SignedDuration::from_mins(175)));
    engine.resolve(&second.incident_id, "Back").await?;
    engine.fan_out().await?;
    let mut t = Timer::start();
    let tick = engine.tick().await?;
    let took = t.lap();
    if tick.credits.credits_written == 0 {
        bail!("the second outage's credit step wrote no credit");
    }
    Ok(took)
}

/// A PostgreSQL database made for one run and dropped after it.
pub struct FreshPostgres {
    admin_url: String,
    name: String,
    pub url: String,
}

impl FreshPostgres {
    pub async fn create(admin_url: &str) -> Result<Self> {
        use sqlx::Connection;
        let name = format!("amends_bench_{}", &amends_recovery::tokens::generate()[7..19]);
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        let (base, _) = admin_url.rsplit_once('/').context("a postgres URL ends with /database")?;
        Ok(FreshPostgres { admin_url: admin_url.into(), url: format!("{base}/{name}"), name })
    }

    pub async fn drop_database(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
