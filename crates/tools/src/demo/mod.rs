//! `amends demo`: a synthetic provider lives through one outage, on a simulated clock,
//! from the first acknowledgement to the credit, and the result is shown as customers
//! would read it. Everything runs through the same engine, store and channels as
//! production: nothing here is staged.

pub mod synth;

use amends_core::incident::{Declaration, IncidentState, LocalText, UpdateRequest};
use amends_core::money::{Currency, Money, group_thousands};
use amends_recovery::clock::{Clock, ManualClock, SystemClock, after};
use amends_recovery::import::ImportInput;
use amends_recovery::tokens::{self, Scope};
use amends_recovery::{Engine, EngineError};
use amends_server::settings::Settings;
use amends_store::{CreditFilter, NoticeFilter, NoticeRow, NoticeStatus};
use anyhow::{Context, Result};
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Customers in the synthetic provider.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Seed of the synthetic provider: the same seed gives the same provider.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Exit after the summary instead of serving the API.
    #[arg(long)]
    pub no_serve: bool,
    /// Where the demo keeps its SQLite database, CSV book and outbox file (emptied first).
    #[arg(long, default_value = "amends-data/demo")]
    pub dir: PathBuf,
    /// Address the API listens on after the demo.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The simulated instant the outage is declared.
    #[arg(long, default_value = "2026-11-23T15:00:00Z")]
    pub start: Timestamp,
}

const HUB: &str = "R1-H1";

pub async fn run(settings: &Settings, args: DemoArgs) -> Result<()> {
    let demo = prepare(settings, &args)?;
    let clock = Arc::new(ManualClock::new(args.start));
    let engine = demo.engine_with(clock.clone()).await?;
    let dispatcher = demo.dispatcher(&engine).await?;

    say(&format!(
        "Building a synthetic cable provider with {} customers",
        group_thousands(args.customers as u64)
    ));
    let book = synth::generate(args.customers, args.seed, args.start);
    let book_dir = args.dir.join("book");
    synth::write_csv(&book, &book_dir)?;
    say(&format!("Importing {}/{{plans,topology,customers}}.csv", book_dir.display()));
    let bar = crate::terminal::progress_bar(0, "importing");
    let summary = engine
        .import(ImportInput::from_dir(&book_dir)?, &|n| {
            bar.set_length(bar.length().unwrap_or(0).max(n));
            bar.set_position(n);
        })
        .await;
    bar.finish_and_clear();
    let summary = summary?;

    let step = |what: &str| say(&format!("[{}] {what}", clock.now()));
    let t0 = args.start;
    let at = |mins: i64| after(t0, SignedDuration::from_mins(mins));
    step(&format!("A construction crew cuts the fibre feeding hub {HUB}; the operator declares an outage"));
    let incident = engine
        .declare(Declaration {
            elements: vec![HUB.into()],
            cause: "A construction crew cut the fibre cable that feeds your neighbourhood's hub.".into(),
            message: "Our crews are on their way to splice the cable.".into(),
            etr: Some(at(120)),
            next_update_by: at(60),
            started_at: Some(at(-12)),
            state: IncidentState::Acknowledged,
            translations: [
                ("es", "Una cuadrilla de obras cortó el cable de fibra que alimenta el nodo de su barrio.", "Nuestros equipos van en camino para empalmar el cable."),
                ("fr", "Une équipe de chantier a coupé le câble de fibre qui alimente le nœud de votre quartier.", "Nos équipes sont en route pour raccorder le câble."),
            ]
            .map(|(locale, cause, message)| {
                (locale.into(), LocalText { cause: Some(cause.into()), message: Some(message.into()) })
            })
            .into(),
            attributes: Default::default(),
        })
        .await?;
    let id = incident.incident_id.clone();
    process(&engine, &dispatcher).await?;

    clock.set(at(50));
    step("The crew finds the cut; the operator posts an update");
    engine
        .update(
            &id,
            UpdateRequest {
                message: "Our crew found the cut and is splicing the cable now.".into(),
                next_update_by: Some(at(105)),
                state: Some(IncidentState::Identified),
                ..UpdateRequest::default()
            },
        )
        .await?;
    process(&engine, &dispatcher).await?;

    clock.set(at(125));
    step("The estimate passes with the incident still open: amends tells everyone by itself");
    process(&engine, &dispatcher).await?;

    clock.set(at(160));
    step("The cable is spliced; the operator resolves the incident: restoration, credits, credit notices");
    engine.resolve(&id, "The cable is spliced and service is back.").await?;
    process(&engine, &dispatcher).await?;

    print_summary(&engine, &demo, &id, summary.total.customers, summary.total.elements).await?;
    if args.no_serve {
        return Ok(());
    }
    serve(&demo, &args).await
}

/// The demo's own settings: a fresh SQLite file and outbox under `--dir`.
fn prepare(settings: &Settings, args: &DemoArgs) -> Result<Settings> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    for file in ["amends.db", "amends.db-wal", "amends.db-shm", "outbox.txt"] {
        let path = args.dir.join(file);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let mut demo = settings.clone();
    demo.database =
        amends_server::settings::DatabaseSetting(args.dir.join("amends.db").display().to_string());
    demo.outbox_file = args.dir.join("outbox.txt");
    demo.smtp = None;
    if demo.provider_name == amends_recovery::EngineConfig::default().provider_name {
        demo.provider_name = "Example Cable".into();
    }
    Ok(demo)
}

async fn process(engine: &Engine, dispatcher: &amends_sinks::deliver::Dispatcher) -> Result<(), EngineError> {
    let tick = engine.tick().await?;
    let sent = dispatcher.deliver_due().await?;
    say(&format!(
        "          {} automatic update(s), {} notice(s) queued, {} credit(s) written, {} sent",
        tick.automatic_updates,
        group_thousands(tick.fanout.notices_queued + tick.credits.notices_queued),
        group_thousands(tick.credits.credits_written),
        group_thousands(sent.sent),
    ));
    Ok(())
}

fn say(line: &str) {
    println!("{line}");
}

async fn print_summary(
    engine: &Engine,
    demo: &Settings,
    id: &str,
    customers: u64,
    elements: u64,
) -> Result<()> {
    let book = engine.book().await?;
    let incident = engine.incident(id).await?;
    let hub = book.topology.index_of(HUB).context("the demo hub exists")?;
    let affected = book.affected(&[hub]);
    let credits = engine
        .store()
        .credits(&CreditFilter { source_event: Some(id.into()), ..CreditFilter::default() })
        .await?;
    let total: i64 = credits.iter().map(|c| c.amount_minor).sum();
    let usd = Currency::parse("USD")?;
    println!();
    println!("=== Summary of {id} ===");
    println!(
        "provider:            {} customers, {} network elements",
        group_thousands(customers),
        group_thousands(elements)
    );
    println!(
        "outage:              hub {HUB}, {} to {}",
        incident.started_at,
        incident.resolved_at.map(|t| t.to_string()).unwrap_or_default()
    );
    println!(
        "customers affected:  {} (active customers at or below the hub)",
        group_thousands(affected.len() as u64)
    );
    let told = Told::read(engine, id).await?;
    for kind in ["acknowledgement", "update", "restored", "credit"] {
        println!("{:<20} {}", format!("{kind}:"), told.line(kind));
    }
    let reachable = |c: &amends_core::book::Customer| c.email.is_some() || c.phone.is_some();
    let unreachable = affected.iter().filter(|&&c| !reachable(&book.customers[c as usize])).count();
    println!(
        "no contact point:    {} affected customers have neither email nor phone: \
         the status page and their bill tell them",
        group_thousands(unreachable as u64)
    );
    if told.outcomes.keys().any(|(_, outcome)| outcome == "suppressed (consent)") {
        println!(
            "suppressed (consent): the customer's only channel does not carry that topic: by \
             default SMS carries the acknowledgement, a new estimate and the restoration, not \
             other updates or the credit (which is on the bill all the same)"
        );
    }
    println!(
        "total credited:      {} on {} credits",
        Money::new(total, usd),
        group_thousands(credits.len() as u64)
    );
    println!("delivered notices:   {}", demo.outbox_file.display());
    println!(
        "look around:         amends notices preview --database {} --customer <id> --incident {id}",
        demo.database
    );

    let sample = affected
        .iter()
        .map(|&c| &book.customers[c as usize])
        .find(|c| c.email.is_some() && c.locale.language() == "en")
        .context("an affected English-speaking customer with an email")?;
    let notices = engine.store().notices_for_customer(&sample.id).await?;
    println!();
    println!("=== Four notices as {} ({}, {}) read them ===", sample.name, sample.id, sample.zone.name);
    for kind in ["acknowledgement", "update", "restored", "credit"] {
        let pick: Option<&NoticeRow> = notices.iter().rfind(|n| n.kind == kind);
        if let Some(n) = pick {
            // An SMS has no subject line.
            let subject =
                if n.subject.is_empty() { String::new() } else { format!("Subject: {}\n\n", n.subject) };
            println!(
                "\n--- {} #{} by {} to {} [{}] ---\n{subject}{}",
                n.kind,
                n.seq,
                n.channel,
                n.recipient,
                n.status,
                n.body.trim_end()
            );
        }
    }
    if let Some(credit) = credits.iter().find(|c| c.customer_id == sample.id) {
        println!("\n=== One credit explained ({}) ===\n{}", credit.key, credit.explanation);
    }
    Ok(())
}

/// What an incident's notices came to, by kind: messages (a customer is told once on each
/// of their channels), the customers they reached, and each outcome.
#[derive(Default)]
struct Told {
    messages: BTreeMap<String, u64>,
    customers: BTreeMap<String, BTreeSet<String>>,
    /// (kind, status or `suppressed (reason)`) -> messages.
    outcomes: BTreeMap<(String, String), u64>,
}

impl Told {
    /// Reads the incident's notices from the outbox, a page at a time.
    async fn read(engine: &Engine, incident: &str) -> Result<Told> {
        let mut told = Told::default();
        let mut filter = NoticeFilter { about: Some(incident.into()), limit: 10_000, ..Default::default() };
        loop {
            let page = engine.store().notices(&filter).await?;
            for n in &page {
                *told.messages.entry(n.kind.clone()).or_default() += 1;
                told.customers.entry(n.kind.clone()).or_default().insert(n.customer_id.to_string());
                let outcome = match &n.reason {
                    Some(reason) if n.status == NoticeStatus::Suppressed => format!("suppressed ({reason})"),
                    _ => n.status.to_string(),
                };
                *told.outcomes.entry((n.kind.clone(), outcome)).or_default() += 1;
            }
            match page.last() {
                Some(last) if page.len() == filter.limit as usize => {
                    filter.after_key = Some(last.key.clone())
                }
                _ => return Ok(told),
            }
        }
    }

    /// `13,797 messages to 8,244 customers: 13,790 sent, 7 suppressed (coalesced)`.
    fn line(&self, kind: &str) -> String {
        let messages = self.messages.get(kind).copied().unwrap_or(0);
        let customers = self.customers.get(kind).map_or(0, BTreeSet::len);
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, outcome), n)| format!("{} {outcome}", group_thousands(*n)))
            .collect();
        let outcomes = if outcomes.is_empty() { String::new() } else { format!(": {}", outcomes.join(", ")) };
        format!(
            "{} messages to {} customers{outcomes}",
            group_thousands(messages),
            group_thousands(customers as u64)
        )
    }
}

/// The customer whose page the demo prints a link to.
const DEMO_CUSTOMER: &str = "C0000001";

async fn serve(demo: &Settings, args: &DemoArgs) -> Result<()> {
    let engine = demo.engine_with(Arc::new(SystemClock)).await?;
    let token = tokens::create(engine.store().as_ref(), Scope::Read, "demo", engine.clock().now()).await?;
    // One customer's own page, as the link in their notices opens it (on this server).
    let page = engine.page_link(DEMO_CUSTOMER).await?;
    let page_path = page.split_once("/my?").map(|(_, query)| format!("/my?{query}")).unwrap_or_default();
    let dispatcher = demo.dispatcher(&engine).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let listen = args.listen.clone();
    let http = demo.http;
    let alerts = demo.alerts.clone();
    let server = tokio::spawn(async move {
        amends_server::serve(
            engine,
            None,
            dispatcher,
            &listen,
            std::time::Duration::from_secs(5),
            Some(ready_tx),
            http,
            alerts,
        )
        .await
    });
    if let Ok(addr) = ready_rx.await {
        println!("\n=== The API is serving on http://{addr} (Ctrl-C to stop) ===");
        println!("open the status page the notices link to: http://{addr}/status");
        println!(
            "open {DEMO_CUSTOMER}'s own page, the link in every notice they got: http://{addr}{page_path}"
        );
        println!("read token: {token}");
        println!("try:  curl -H 'Authorization: Bearer {token}' http://{addr}/v1/incidents");
        println!("      curl -H 'Authorization: Bearer {token}' http://{addr}/v1/customers/C0000001/credits");
        println!("      curl http://{addr}/openapi.json");
    }
    server.await.context("the server task")?
}
