//! Device events from NATS JetStream: a durable pull consumer on a configurable subject,
//! stream and consumer.
//!
//! Messages hold one event or several (NDJSON). They are fetched in batches of at most
//! [`FETCH_MESSAGES_MAX`], handed to detection as one batch, and acknowledged one by one
//! only after detection has logged the batch durably: a crash before that leaves them
//! unacknowledged. A message whose every line was rejected is terminated (never
//! redelivered: it cannot get better); if detection cannot take the batch now, its
//! messages are negatively acknowledged with a delay and come back.
//!
//! Order matters to detection (its clock follows the events), and JetStream gives back a
//! dead process's unacknowledged messages only after [`ACK_WAIT`], behind newer ones. So on
//! connecting, the messages the consumer delivered and nobody acknowledged are read from
//! the stream itself, in stream order, and handed on first; when JetStream delivers them
//! again they are duplicates, acknowledged and ignored. Each batch says whether the
//! consumer holds more (its backlog), so detection's clock does not jump to the wall clock
//! in the middle of a catch-up.
//!
//! Set-up is checked, never guessed: a stream that exists without storing the configured
//! subject, or a consumer whose filter is another subject, is an error that names both
//! (`amends serve` refuses to start), rather than a consumer that silently reads nothing.

use super::{BatchReport, Intake};
use anyhow::{Context, bail};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::watch;

/// Messages fetched per batch.
pub const FETCH_MESSAGES_MAX: usize = 1000;
/// Most event lines handed to detection at once (a message holds one or many; a message
/// is never split): each hand-off is logged, acknowledged and detected from before the
/// next, so a crash re-reads at most this much, and detection hears of a storm in steps.
pub const HAND_ON_LINES_MAX: usize = 1000;
/// Longest wait for a batch to fill before what came is handed on.
pub const FETCH_WAIT: Duration = Duration::from_millis(200);
/// Unacknowledged messages JetStream lets the consumer hold at once; also the most
/// messages read back from the stream on connecting.
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

    /// A source at `url`; each name not given is the default.
    pub fn new(url: &str, subject: Option<&str>, stream: Option<&str>, consumer: Option<&str>) -> NatsSource {
        NatsSource {
            url: url.into(),
            subject: subject.unwrap_or(Self::DEFAULT_SUBJECT).into(),
            stream: stream.unwrap_or(Self::DEFAULT_STREAM).into(),
            consumer: consumer.unwrap_or(Self::DEFAULT_CONSUMER).into(),
        }
    }
}

/// The stream and the durable consumer, found or created, each checked against `source`.
struct Endpoints {
    stream: jetstream::stream::Stream,
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

/// Connects and sets up the stream and durable consumer (or finds and checks them).
async fn endpoints(source: &NatsSource) -> anyhow::Result<Endpoints> {
    let client =
        async_nats::connect(&source.url).await.with_context(|| format!("connecting to {}", source.url))?;
    let js = jetstream::new(client);
    let mut stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: source.stream.clone(),
            subjects: vec![source.subject.clone()],
            ..Default::default()
        })
        .await
        .with_context(|| format!("opening JetStream stream {}", source.stream))?;
    let subjects = stream.info().await.context("reading the stream's settings")?.config.subjects.clone();
    if !subjects.iter().any(|s| subject_covers(s, &source.subject)) {
        bail!(
            "JetStream stream {} stores {subjects:?}, not the telemetry subject {:?}: events published there \
             would be kept by no stream; name another stream (--telemetry-stream) or add the subject to this one",
            source.stream,
            source.subject
        );
    }
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
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
    let filter = &consumer.cached_info().config.filter_subject;
    if filter != &source.subject {
        bail!(
            "JetStream consumer {} on stream {} reads {filter:?}, not the telemetry subject {:?}: it would \
             detect nothing from the new subject; name another consumer (--telemetry-consumer) or delete this one",
            source.consumer,
            source.stream,
            source.subject
        );
    }
    Ok(Endpoints { stream, consumer })
}

/// Checks the set-up once, for `amends serve` to refuse to start on a mismatch.
pub async fn check(source: &NatsSource) -> anyhow::Result<()> {
    endpoints(source).await.map(|_| ())
}

/// Whether the stream subject `pattern` (with `*` and `>` wildcards) stores every message
/// published on `subject` (itself possibly a wildcard).
fn subject_covers(pattern: &str, subject: &str) -> bool {
    let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Consumes while this server detects, until `stopped` turns true, reconnecting after a
/// failure. Only the detecting server consumes: servers sharing a consumer would hand
/// their detector a backlog interleaved out of stream order. When another server takes
/// over, the messages this one held unacknowledged are read back from the stream there.
pub async fn run(source: NatsSource, intake: Intake, mut stopped: watch::Receiver<bool>) {
    let mut detecting = intake.detecting();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            waited = detecting.wait_for(|d| *d) => if waited.is_err() { return },
        }
        let consumed = tokio::select! {
            _ = stopped.changed() => return,
            _ = detecting.wait_for(|d| !*d) => {
                tracing::info!("this server no longer detects; its NATS consumer stops");
                continue;
            }
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
    let Endpoints { stream, mut consumer } = endpoints(source).await?;
    catch_up(source, &stream, &mut consumer, intake).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(FETCH_MESSAGES_MAX)
        .expires(FETCH_WAIT)
        .messages()
        .await
        .context("starting to pull device events")?;
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
        for group in by_lines(batch, HAND_ON_LINES_MAX) {
            hand_on(intake, group).await?;
        }
    }
}

/// `messages` in order, in groups of at most `max_lines` event lines (a message with more
/// goes alone).
fn by_lines(messages: Vec<jetstream::Message>, max_lines: usize) -> Vec<Vec<jetstream::Message>> {
    let mut groups: Vec<Vec<jetstream::Message>> = Vec::new();
    let mut lines = 0;
    for message in messages {
        let count = message.payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count().max(1);
        match groups.last_mut() {
            Some(group) if lines + count <= max_lines => group.push(message),
            _ => {
                groups.push(vec![message]);
                lines = 0;
            }
        }
        lines += count;
    }
    groups
}

/// Hands on, in stream order, the messages the consumer delivered that nobody
/// acknowledged (a process that died holding them), read from the stream itself: newer
/// messages must not overtake them. Their redelivery later is a duplicate.
async fn catch_up(
    source: &NatsSource,
    stream: &jetstream::stream::Stream,
    consumer: &mut jetstream::consumer::Consumer<pull::Config>,
    intake: &Intake,
) -> anyhow::Result<()> {
    let info = consumer.info().await.context("reading the consumer's state")?;
    if info.num_ack_pending == 0 {
        return Ok(());
    }
    let first = info.ack_floor.stream_sequence + 1;
    let last = info.delivered.stream_sequence.min(first + ACK_PENDING_MAX as u64 - 1);
    tracing::info!(first, last, "handing on unacknowledged device events from the stream first");
    let mut text = String::new();
    let mut lines = 0;
    for sequence in first..=last {
        let message = match stream.get_raw_message(sequence).await {
            Ok(message) => message,
            // Removed by the stream's limits, or never stored under our subject: nothing to hand on.
            Err(error) => {
                tracing::debug!(sequence, %error, "no message at this sequence");
                continue;
            }
        };
        if !subject_covers(&source.subject, &message.subject) {
            continue;
        }
        let payload = String::from_utf8_lossy(&message.payload);
        lines += payload.lines().count();
        text.push_str(&payload);
        if !payload.ends_with('\n') {
            text.push('\n');
        }
        if lines >= HAND_ON_LINES_MAX {
            submit_catch_up(intake, &std::mem::take(&mut text), true).await?;
            lines = 0;
        }
    }
    // The last of it says whether the consumer holds more (not yet delivered): if not,
    // detection's clock may go on with the wall clock once it is quiet.
    if !text.is_empty() {
        submit_catch_up(intake, &text, info.num_pending > 0).await?;
    }
    Ok(())
}

async fn submit_catch_up(intake: &Intake, text: &str, behind: bool) -> anyhow::Result<()> {
    let report = intake.submit_from(text, behind).await.context("handing on unacknowledged events")?;
    log_rejections(&report);
    Ok(())
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
    // The consumer holds more after the last of these: a backlog detection is catching up on.
    let behind = batch.last().and_then(|m| m.info().ok()).is_some_and(|info| info.pending > 0);
    match intake.submit_from(&text, behind).await {
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

#[cfg(test)]
mod tests {
    use super::subject_covers;

    #[test]
    fn stream_subjects_cover_by_nats_wildcards() {
        assert!(subject_covers("amends.device-events", "amends.device-events"));
        assert!(subject_covers("amends.>", "amends.device-events"));
        assert!(subject_covers("amends.*", "amends.device-events"));
        assert!(subject_covers("amends.>", "amends.a.b"));
        assert!(subject_covers("amends.*.events", "amends.*.events"));
        assert!(!subject_covers("amends.*", "amends.a.b"));
        assert!(!subject_covers("amends.device-events", "amends.other"));
        assert!(!subject_covers("amends.*", "amends.>"));
        assert!(!subject_covers("amends", "amends.device-events"));
    }
}
