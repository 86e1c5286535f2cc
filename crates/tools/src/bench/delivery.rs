//! Delivery throughput: N queued notices per channel, from a fresh SQLite outbox through the
//! product's dispatcher to a receiver on 127.0.0.1 in this process. Email goes to an SMTP
//! sink that speaks real SMTP over TCP (mailin's session state machine behind a socket loop,
//! one thread per connection, as in the channel tests); webhooks go to an axum receiver that
//! checks each signature and answers 204. Each sink counts what it accepted, nothing more.
//!
//! Lanes are built as `Settings::dispatcher` builds them: the SMTP relay's default settings,
//! each transport under `Paced` with the default lane pacing. The floor, in the same run: the
//! same N messages straight through the same paced transport with the same concurrency, no
//! store. Last, the dispatcher once more with a transport that accepts everything at once:
//! what the outbox itself costs (claims, outcomes and their history).

use super::{Timer, row};
use amends_channels::{
    OutgoingMessage, Paced, SendError, Sent, SmtpConfig, SmtpTransport, Transport, WebhookConfig,
    WebhookTransport, webhook_signature,
};
use amends_core::money::group_thousands;
use amends_core::preferences::Channel;
use amends_recovery::clock::{Clock, SystemClock};
use amends_server::settings::LaneSettings;
use amends_sinks::deliver::{DeliveryReport, Dispatcher, Lane};
use amends_store::{NoticeRow, NoticeStatus};
use anyhow::{Result, bail};
use futures_util::StreamExt;
use jiff::Timestamp;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const INCIDENT: &str = "INC-BENCH-DELIVERY";

pub async fn run(dir: &Path, n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let db = dir.join("delivery.db");
    let lanes = LaneSettings::default().pacing;
    println!(
        "\n[delivery: {} notices per channel, {} in flight, bodies of ~{} bytes, receivers on 127.0.0.1]",
        group_thousands(n as u64),
        lanes.concurrency.min(amends_sinks::deliver::DELIVERY_CONCURRENCY_MAX),
        body(0).len(),
    );

    let sink = SmtpSink::start()?;
    // The relay's defaults, as `[smtp]` with only a URL and a sender gives them.
    let config: SmtpConfig = serde_json::from_value(serde_json::json!({
        "url": format!("smtp://127.0.0.1:{}", sink.port),
        "from": "Example Networks <outages@example.com>",
    }))?;
    let pool = format!("SMTP, pool_max {}", config.pool_max);
    let smtp = Arc::new(SmtpTransport::new(config)?);
    measure(&db, &lane("email", smtp.clone())?, n, Some((&sink.accepted, &pool))).await?;
    smtp.shutdown().await;

    let receiver = WebhookReceiver::start().await?;
    let webhook = Arc::new(WebhookTransport::new(WebhookConfig {
        url: format!("http://127.0.0.1:{}/hooks/amends", receiver.port),
        secret: receiver.secret.clone(),
        timeout_ms: 10_000,
    })?);
    let verified = (&receiver.state.verified, "signed POSTs, each verified");
    measure(&db, &lane("webhook", webhook)?, n, Some(verified)).await?;
    receiver.task.abort();

    // The same outbox work with nothing on the wire: the store's share of a delivery.
    measure(&db, &lane("email", Arc::new(Accepting))?, n, None).await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}

/// A lane as `settings.rs` builds one: the transport under `Paced` with the default lane
/// pacing, the default backoff, the pacing's concurrency.
fn lane(channel: &'static str, transport: Arc<dyn Transport>) -> Result<Lane> {
    let settings = LaneSettings::default();
    Ok(Lane {
        channel,
        transport: Arc::new(Paced::new(transport, settings.pacing)?),
        backoff: settings.backoff,
        concurrency: settings.pacing.concurrency.min(amends_sinks::deliver::DELIVERY_CONCURRENCY_MAX),
    })
}

/// The floor (the messages straight through the lane's transport), the outbox fill, and
/// the dispatcher over it, each checked against what the receiver counted. Without a
/// receiver, the transport accepts at once: no floor, the dispatcher and the store alone.
async fn measure(db: &Path, lane: &Lane, n: usize, receiver: Option<(&AtomicU64, &str)>) -> Result<()> {
    let name = match receiver {
        Some(_) => lane.channel,
        None => "no transport",
    };
    let counted = || receiver.map(|(count, _)| count.load(Ordering::SeqCst));
    let expect = |before: Option<u64>, step: &str| -> Result<()> {
        if let (Some(before), Some(after)) = (before, counted())
            && after - before != n as u64
        {
            bail!("{name}, {step}: the receiver accepted {} of {n} messages", after - before);
        }
        Ok(())
    };
    let notices: Vec<NoticeRow> = (0..n).map(|i| notice(lane.channel, i, SystemClock.now())).collect();
    let mut t = Timer::start();

    let floor = match receiver {
        Some((_, how)) => {
            let messages: Vec<OutgoingMessage> = notices.iter().map(outgoing).collect();
            let before = counted();
            t.lap();
            let results: Vec<Result<Sent, SendError>> = futures_util::stream::iter(&messages)
                .map(|m| lane.transport.send(m))
                .buffer_unordered(lane.concurrency)
                .collect()
                .await;
            let floor = t.lap();
            if let Some(error) = results.into_iter().find_map(Result::err) {
                bail!("{name}, floor: {error}");
            }
            expect(before, "floor")?;
            row(&format!("{name}: transport alone (floor)"), floor, n, how);
            Some(floor)
        }
        None => None,
    };

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let store = amends_store::open(&db.display().to_string()).await?;
    let rows = notices;
    t.lap();
    let queued = store.enqueue_notices(&rows).await?;
    row(&format!("{name}: outbox filled"), t.lap(), queued as usize, "one enqueue, not part of the delivery");
    if queued as usize != n {
        bail!("{name}: the outbox took {queued} of {n} notices");
    }

    let dispatcher = Dispatcher::new(store.clone(), Arc::new(SystemClock), vec![lane.clone()]);
    let before = counted();
    t.lap();
    let report = dispatcher.deliver_due().await?;
    let took = t.lap();
    if report != (DeliveryReport { sent: n as u64, ..DeliveryReport::default() }) {
        bail!("{name}: expected {n} sent, the dispatcher reported {report:?}");
    }
    expect(before, "dispatcher")?;
    let counts = store.notice_counts(None).await?;
    let sent: u64 = counts.iter().filter(|c| c.status == "sent").map(|c| c.count).sum();
    if sent != n as u64 {
        bail!("{name}: {sent} of {n} notices are recorded sent");
    }
    let note = match floor {
        Some(floor) => format!("{:.2}x the floor", took.as_secs_f64() / floor.as_secs_f64().max(1e-9)),
        None => "claims and outcomes only".into(),
    };
    row(&format!("{name}: outbox → dispatcher"), took, n, &note);
    Ok(())
}

/// One queued acknowledgement, as the fan-out writes it: email to an address, webhook to the
/// customer id (what the provider's app knows them by).
fn notice(channel: &str, i: usize, now: Timestamp) -> NoticeRow {
    let customer_id = format!("C{i:07}");
    let recipient = match channel {
        "email" => format!("c{i}@example.com"),
        _ => customer_id.clone(),
    };
    NoticeRow {
        key: amends_core::notice::notice_key(
            &customer_id,
            INCIDENT,
            amends_core::notice::NoticeKind::Acknowledgement,
            1,
            channel,
        ),
        customer_id: customer_id.into(),
        about: INCIDENT.into(),
        kind: "acknowledgement".into(),
        seq: 1,
        channel: Channel::parse(channel).expect("a channel of the bench"),
        recipient,
        locale: "en".into(),
        subject: "Service interruption in your area: we are working on it".into(),
        body: body(i),
        status: NoticeStatus::Queued,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
        reason: None,
        provider_id: None,
        content_sha256: None,
    }
}

/// A rendered acknowledgement of the usual length (about 600 bytes).
fn body(i: usize) -> String {
    format!(
        "Hello customer {i},\n\n\
         We know about a service interruption affecting your connection since 15:00 today \
         (Europe/London). Our engineers have found a fault at the local exchange and are \
         working to restore service.\n\n\
         Cause: a fibre cut between the exchange and your street cabinet.\n\
         Estimated restoration: today at 17:00.\n\
         We will send you an update by 16:00, or sooner if anything changes.\n\n\
         You do not need to do anything: any credit you are owed under your plan will be \
         applied to your next bill automatically.\n\n\
         Reference: {INCIDENT}\n\
         Follow progress at https://status.example.com\n\n\
         The Example Networks team\n"
    )
}

/// The message the dispatcher would build from the notice.
fn outgoing(n: &NoticeRow) -> OutgoingMessage {
    OutgoingMessage {
        key: n.key.clone(),
        channel: n.channel.as_str().into(),
        recipient: n.recipient.clone(),
        subject: n.subject.clone(),
        body: n.body.clone(),
        customer_id: n.customer_id.to_string(),
        incident_id: n.about.clone(),
        kind: n.kind.clone(),
        locale: n.locale.clone(),
        unsubscribe_url: None,
        attachments: Vec::new(),
    }
}

/// Accepts every message at once: leaves only the dispatcher and the store to measure.
struct Accepting;

#[async_trait::async_trait]
impl Transport for Accepting {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn send(&self, _message: &OutgoingMessage) -> Result<Sent, SendError> {
        Ok(Sent::default())
    }
}

/// An SMTP server on 127.0.0.1 that accepts every message and counts it at the end of DATA,
/// before its 250. Like a relay, it sets no socket options: the kernel acknowledges on its
/// delayed-ACK schedule, which a client writing the final `.` with Nagle on has to wait for.
/// The listener thread lives until the process exits.
struct SmtpSink {
    port: u16,
    accepted: Arc<AtomicU64>,
}

impl SmtpSink {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            let session = mailin::SessionBuilder::new("amends-bench-sink");
            for stream in listener.incoming().flatten() {
                let (session, counter) = (session.clone(), Counter(count.clone()));
                std::thread::spawn(move || serve_smtp(stream, &session, counter));
            }
        });
        Ok(SmtpSink { port, accepted })
    }
}

/// One connection: each line into the session, each reply out in one write.
fn serve_smtp(stream: TcpStream, builder: &mailin::SessionBuilder, counter: Counter) -> Option<()> {
    let mut writer = BufWriter::new(stream.try_clone().ok()?);
    let mut reader = BufReader::new(stream);
    let mut session = builder.build(reader.get_ref().peer_addr().ok()?.ip(), counter);
    session.greeting().write_to(&mut writer).ok()?;
    writer.flush().ok()?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let reply = session.process(&line);
        match reply.action {
            mailin::Action::Reply => reply.write_to(&mut writer).ok()?,
            mailin::Action::Close => {
                reply.write_to(&mut writer).ok()?;
                return writer.flush().ok();
            }
            mailin::Action::NoReply => continue,
            mailin::Action::UpgradeTls => return None,
        }
        writer.flush().ok()?;
    }
}

struct Counter(Arc<AtomicU64>);

impl mailin::Handler for Counter {
    fn data_end(&mut self) -> mailin::Response {
        self.0.fetch_add(1, Ordering::SeqCst);
        mailin::response::OK
    }
}

/// A webhook receiver on 127.0.0.1: 204 to each POST whose Standard Webhooks signature
/// checks out (counted), 401 otherwise.
struct WebhookReceiver {
    port: u16,
    secret: String,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct ReceiverState {
    key: Vec<u8>,
    verified: AtomicU64,
}

impl WebhookReceiver {
    async fn start() -> Result<Self> {
        use base64::Engine as _;
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let state = Arc::new(ReceiverState { key, verified: AtomicU64::new(0) });
        let app = axum::Router::new()
            .route("/hooks/amends", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(WebhookReceiver { port, secret, state, task })
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<ReceiverState>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(at), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
        header("webhook-signature"),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    if webhook_signature(&state.key, id, at, &body) != signature {
        return StatusCode::UNAUTHORIZED;
    }
    state.verified.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}
