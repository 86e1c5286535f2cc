//! Device events from NATS JetStream: a durable pull consumer on a configurable subject.
//!
//! Messages hold one event or several (NDJSON). They are fetched in batches of at most
//! [`FETCH_MESSAGES_MAX`], handed to detection as one batch, and acknowledged one by one
//! only after detection has logged the batch durably: a crash before that leaves them
//! unacknowledged, and JetStream delivers them again (duplicates are no-ops). A message
//! whose every line was rejected is terminated (never redelivered: it cannot get better);
//! if detection cannot take the batch now, its messages are negatively acknowledged with a
//! delay and come back.

use super::{BatchReport, Intake};
use anyhow::Context;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::watch;

/// Messages fetched per batch.
pub const FETCH_MESSAGES_MAX: usize = 1000;
/// Longest wait for a batch to fill before what came is handed on.
pub const FETCH_WAIT: Duration = Duration::from_millis(200);
/// Unacknowledged messages JetStream lets the consumer hold at once.
pub const ACK_PENDING_MAX: i64 = 20_000;
/// How long JetStream waits for an acknowledgement before delivering again.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Delay before a batch detection could not take is delivered again.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Where the events come from.
#[derive(Debug, Clone)]
pub struct NatsSource {
    /// `nats://host:4222`.
    pub url: String,
    /// The subject events are published on (wildcards allowed).
    pub subject: String,
    /// The stream that holds them; created over `subject` if it does not exist.
    pub stream: String,
    /// The durable consumer's name: restarts resume where the last run acknowledged.
    pub consumer: String,
}

impl NatsSource {
    pub const DEFAULT_SUBJECT: &str = "amends.device-events";
    pub const DEFAULT_STREAM: &str = "AMENDS_DEVICE_EVENTS";
    pub const DEFAULT_CONSUMER: &str = "amends-detection";

    pub fn new(url: &str, subject: Option<&str>) -> NatsSource {
        NatsSource {
            url: url.into(),
            subject: subject.unwrap_or(Self::DEFAULT_SUBJECT).into(),
            stream: Self::DEFAULT_STREAM.into(),
            consumer: Self::DEFAULT_CONSUMER.into(),
        }
    }
}

/// Connects and sets up the stream and durable consumer (or finds them).
pub async fn connect(source: &NatsSource) -> anyhow::Result<pull::Stream> {
    let client =
        async_nats::connect(&source.url).await.with_context(|| format!("connecting to {}", source.url))?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: source.stream.clone(),
            subjects: vec![source.subject.clone()],
            ..Default::default()
        })
        .await
        .with_context(|| format!("opening JetStream stream {}", source.stream))?;
    let consumer = stream
        .get_or_create_consumer(
            &source.consumer,
            pull::Config {
                durable_name: Some(source.consumer.clone()),
                filter_subject: source.subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: ACK_PENDING_MAX,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("opening JetStream consumer {}", source.consumer))?;
    consumer
        .stream()
        .max_messages_per_batch(FETCH_MESSAGES_MAX)
        .expires(FETCH_WAIT)
        .messages()
        .await
        .context("starting to pull device events")
}

/// Consumes until `stopped` turns true, reconnecting after a failure.
pub async fn run(source: NatsSource, intake: Intake, mut stopped: watch::Receiver<bool>) {
    loop {
        let consumed = tokio::select! {
            _ = stopped.changed() => return,
            consumed = consume(&source, &intake) => consumed,
        };
        if let Err(error) = consumed {
            tracing::error!(error = format!("{error:#}"), "NATS telemetry consumer stopped; reconnecting");
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

async fn consume(source: &NatsSource, intake: &Intake) -> anyhow::Result<()> {
    let mut messages = connect(source).await?;
    tracing::info!(subject = %source.subject, stream = %source.stream, "consuming device events from NATS");
    loop {
        // The first message waits as long as it takes; the rest of the batch only briefly.
        let Some(first) = messages.next().await else { return Ok(()) };
        let mut batch = vec![first.map_err(|e| anyhow::anyhow!(e))?];
        while batch.len() < FETCH_MESSAGES_MAX {
            match tokio::time::timeout(Duration::from_millis(5), messages.next()).await {
                Ok(Some(message)) => batch.push(message.map_err(|e| anyhow::anyhow!(e))?),
                Ok(None) | Err(_) => break,
            }
        }
        hand_on(intake, batch).await?;
    }
}

/// Submits the messages' lines as one batch and acknowledges each message by what became
/// of its lines.
async fn hand_on(intake: &Intake, batch: Vec<jetstream::Message>) -> anyhow::Result<()> {
    let mut text = String::new();
    // Per message: the index of its first line and its number of lines in `text`.
    let mut spans = Vec::with_capacity(batch.len());
    let mut line = 0;
    for message in &batch {
        let payload = String::from_utf8_lossy(&message.payload);
        let lines = payload.lines().count().max(1);
        spans.push((line, lines));
        line += lines;
        text.push_str(&payload);
        if !payload.ends_with('\n') {
            text.push('\n');
        }
    }
    match intake.submit(&text).await {
        Ok(report) => {
            log_rejections(&report);
            for (message, (first, lines)) in batch.iter().zip(spans) {
                let rejected =
                    report.rejected.iter().filter(|r| (first..first + lines).contains(&r.index)).count();
                let kind = if rejected == lines { AckKind::Term } else { AckKind::Ack };
                message.ack_with(kind).await.map_err(|e| anyhow::anyhow!(e)).context("acknowledging")?;
            }
        }
        Err(error) => {
            tracing::warn!(%error, messages = batch.len(), "detection could not take a batch; it will come again");
            for message in &batch {
                message.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await.map_err(|e| anyhow::anyhow!(e))?;
            }
        }
    }
    Ok(())
}

fn log_rejections(report: &BatchReport) {
    for r in report.rejected.iter().take(10) {
        tracing::warn!(line = r.index, reason = %r.reason, "device event rejected");
    }
}
