//! Pacing per channel: how many sends are in flight, how fast they start, and how long one
//! may take, so a slow gateway holds up only its own channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::{OutgoingMessage, SendError, Sent, Transport};

/// The most sends one channel may have in flight; a bound on the setting itself.
const CONCURRENCY_LIMIT: usize = 1_024;

/// How one channel is paced. Deserialisable so each channel has its own section in the
/// settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacingConfig {
    /// Most sends in flight at once, 1 to 1024. Further sends wait (backpressure), which
    /// also bounds the sockets and memory one channel uses.
    pub concurrency: usize,
    /// Sends started per second on average; 0 for no rate limit.
    pub per_second: u32,
    /// Sends that may start at once after an idle spell, at least 1 when `per_second` is
    /// set. The rate limit then spaces the rest `1 / per_second` apart.
    pub burst: u32,
    /// Limit on one send, in milliseconds, on top of the transport's own timeouts, so even
    /// a transport without one cannot hold a slot forever. Waiting for a slot or for the
    /// rate limit is not counted: that is the backpressure working.
    pub send_timeout_ms: u64,
}

impl Default for PacingConfig {
    /// 4 in flight, 10 per second with bursts of 10, 30 s per send: gentle enough for a
    /// relay or gateway on a small account, and a channel that times out still frees its
    /// slots within a minute.
    fn default() -> Self {
        Self { concurrency: 4, per_second: 10, burst: 10, send_timeout_ms: 30_000 }
    }
}

/// A pacing setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacingConfigError {
    #[error("pacing concurrency is {0}, expected 1 to 1024")]
    Concurrency(usize),
    #[error("pacing burst must be at least 1 when per_second is set")]
    Burst,
    #[error("pacing send_timeout_ms must be at least 1")]
    SendTimeoutMs,
}

/// Wraps a transport with its own concurrency limit (a semaphore), rate limit (a token
/// bucket) and per-send timeout. A send first takes a slot, then waits for the bucket,
/// then runs under the timeout; a timed-out send is [`SendError::Transient`].
///
/// Give every channel its own `Paced`: a gateway that hangs then fills only its own slots
/// and never delays the others.
pub struct Paced {
    inner: Arc<dyn Transport>,
    slots: Semaphore,
    bucket: Option<Bucket>,
    send_timeout_ms: u64,
}

impl std::fmt::Debug for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paced")
            .field("inner", &self.inner.name())
            .field("slots_free", &self.slots.available_permits())
            .field("send_timeout_ms", &self.send_timeout_ms)
            .finish_non_exhaustive()
    }
}

impl Paced {
    pub fn new(inner: Arc<dyn Transport>, config: PacingConfig) -> Result<Self, PacingConfigError> {
        if !(1..=CONCURRENCY_LIMIT).contains(&config.concurrency) {
            return Err(PacingConfigError::Concurrency(config.concurrency));
        }
        if config.per_second > 0 && config.burst == 0 {
            return Err(PacingConfigError::Burst);
        }
        if config.send_timeout_ms == 0 {
            return Err(PacingConfigError::SendTimeoutMs);
        }
        let bucket = (config.per_second > 0).then(|| Bucket::new(config.per_second, config.burst));
        let slots = Semaphore::new(config.concurrency);
        Ok(Self { inner, slots, bucket, send_timeout_ms: config.send_timeout_ms })
    }

    fn timed_out(&self, message: &OutgoingMessage) -> SendError {
        SendError::Transient(format!(
            "{} send of notice {} did not finish within send_timeout_ms {} ms",
            self.inner.name(),
            message.key,
            self.send_timeout_ms
        ))
    }
}

#[async_trait::async_trait]
impl Transport for Paced {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::Transient(format!("{} pacing is closed", self.inner.name())))?;
        if let Some(bucket) = &self.bucket {
            tokio::time::sleep_until(bucket.reserve(Instant::now())).await;
        }
        let limit = Duration::from_millis(self.send_timeout_ms);
        match tokio::time::timeout(limit, self.inner.send(message)).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(message)),
        }
    }
}

/// A token bucket as GCRA (the generic cell rate algorithm): one instant, the theoretical
/// arrival time `tat`, instead of a token count and a refill task. Each send reserves the
/// instant it may start, `max(now, tat - tolerance)`, and pushes `tat` one interval on.
///
/// Written here rather than taken from `governor` because governor reads its own clock
/// (quanta) and sleeps with futures-timer, neither of which follows tokio's paused clock,
/// so the pacing could not be tested without real sleeps; the whole algorithm is the ten
/// lines below. A reservation is kept even if its send is dropped while waiting: that errs
/// on the slow side, never the fast one.
struct Bucket {
    /// Time between sends at the sustained rate: 1 s / per_second.
    interval: Duration,
    /// How far ahead of the sustained rate a burst may run: interval * (burst - 1).
    tolerance: Duration,
    tat: Mutex<Option<Instant>>,
}

impl Bucket {
    fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second;
        Self { interval, tolerance: interval * (burst - 1), tat: Mutex::new(None) }
    }

    /// The instant the caller may start, reserving it.
    fn reserve(&self, now: Instant) -> Instant {
        // The critical section cannot panic, but a poisoned lock still holds a valid instant.
        let mut tat = self.tat.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let arrival = tat.map_or(now, |tat| tat.max(now));
        *tat = Some(arrival + self.interval);
        arrival.checked_sub(self.tolerance).map_or(now, |start| start.max(now))
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Succeeds after this long.
        Takes(Duration),
        Hangs,
        Refuses,
    }

    /// Records when each send started (relative to its creation) and how many overlapped.
    struct Fake {
        behaviour: Behaviour,
        epoch: Instant,
        started: Mutex<Vec<Duration>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl Fake {
        fn new(behaviour: Behaviour) -> Arc<Self> {
            Arc::new(Self {
                behaviour,
                epoch: Instant::now(),
                started: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
            })
        }

        fn started_ms(&self) -> Vec<u128> {
            let mut started: Vec<u128> =
                self.started.lock().expect("lock").iter().map(|d| d.as_millis()).collect();
            started.sort_unstable();
            started
        }
    }

    #[async_trait::async_trait]
    impl Transport for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn send(&self, message: &OutgoingMessage) -> Result<Sent, SendError> {
            self.started.lock().expect("lock").push(self.epoch.elapsed());
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let result = match self.behaviour {
                Behaviour::Takes(duration) => {
                    tokio::time::sleep(duration).await;
                    Ok(Sent { provider_id: Some(format!("id-{}", message.key)) })
                }
                Behaviour::Hangs => pending().await,
                Behaviour::Refuses => Err(SendError::Permanent("no such number".to_owned())),
            };
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    fn message(key: &str) -> OutgoingMessage {
        OutgoingMessage {
            key: key.to_owned(),
            channel: "sms".to_owned(),
            recipient: "+33612345678".to_owned(),
            subject: String::new(),
            body: "b".to_owned(),
            customer_id: "c".to_owned(),
            incident_id: "i".to_owned(),
            kind: "update".to_owned(),
            locale: "en".to_owned(),
            unsubscribe_url: None,
            attachments: Vec::new(),
        }
    }

    fn paced(fake: &Arc<Fake>, config: PacingConfig) -> Arc<Paced> {
        let inner: Arc<dyn Transport> = fake.clone();
        Arc::new(Paced::new(inner, config).expect("valid pacing"))
    }

    /// Sends `count` messages at once and waits for all of them.
    async fn send_all(paced: &Arc<Paced>, count: usize) -> Vec<Result<Sent, SendError>> {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let paced = Arc::clone(paced);
            tasks.spawn(async move { paced.send(&message(&format!("n-{i}"))).await });
        }
        tasks.join_all().await
    }

    const INSTANT: Behaviour = Behaviour::Takes(Duration::ZERO);

    #[tokio::test(start_paused = true)]
    async fn a_burst_starts_at_once_then_one_per_interval() {
        let fake = Fake::new(INSTANT);
        let config = PacingConfig { concurrency: 16, per_second: 2, burst: 3, send_timeout_ms: 1_000 };
        let results = send_all(&paced(&fake, config), 7).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fake.started_ms(), vec![0, 0, 0, 500, 1_000, 1_500, 2_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_spell_refills_the_burst() {
        let fake = Fake::new(INSTANT);
        let config = PacingConfig { concurrency: 16, per_second: 1, burst: 2, send_timeout_ms: 1_000 };
        let paced = paced(&fake, config);
        send_all(&paced, 3).await; // 0, 0, 1 000
        tokio::time::sleep(Duration::from_secs(10)).await;
        send_all(&paced, 3).await; // 11 000, 11 000, 12 000
        assert_eq!(fake.started_ms(), vec![0, 0, 1_000, 11_000, 11_000, 12_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_everything_starts_at_once() {
        let fake = Fake::new(INSTANT);
        let config = PacingConfig { concurrency: 16, per_second: 0, burst: 0, send_timeout_ms: 1_000 };
        send_all(&paced(&fake, config), 5).await;
        assert_eq!(fake.started_ms(), vec![0; 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_caps_sends_in_flight() {
        let fake = Fake::new(Behaviour::Takes(Duration::from_secs(1)));
        let config = PacingConfig { concurrency: 2, per_second: 0, burst: 0, send_timeout_ms: 5_000 };
        let results = send_all(&paced(&fake, config), 5).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fake.most_in_flight.load(Ordering::SeqCst), 2);
        assert_eq!(fake.started_ms(), vec![0, 0, 1_000, 1_000, 2_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_send_times_out_as_transient_and_frees_its_slot() {
        let fake = Fake::new(Behaviour::Hangs);
        let config = PacingConfig { concurrency: 1, per_second: 0, burst: 0, send_timeout_ms: 250 };
        let paced = paced(&fake, config);
        let start = Instant::now();
        let results = send_all(&paced, 2).await;
        for result in results {
            match result {
                Err(SendError::Transient(reason)) => assert!(
                    reason.starts_with("fake send of notice n-")
                        && reason.ends_with("within send_timeout_ms 250 ms"),
                    "{reason}"
                ),
                other => panic!("expected a transient timeout, got {other:?}"),
            }
        }
        // One after the other through the single slot, each cut at 250 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        assert_eq!(fake.started_ms(), vec![0, 250]);
    }

    #[tokio::test(start_paused = true)]
    async fn results_pass_through_unchanged() {
        let ok = paced(&Fake::new(INSTANT), PacingConfig::default());
        let sent = ok.send(&message("k")).await.expect("sent");
        assert_eq!(sent.provider_id.as_deref(), Some("id-k"));
        let refusing = paced(&Fake::new(Behaviour::Refuses), PacingConfig::default());
        assert!(matches!(refusing.send(&message("k")).await, Err(SendError::Permanent(_))));
        assert_eq!(refusing.name(), "fake");
    }

    #[test]
    fn config_errors() {
        let check = |config: PacingConfig, expected: &str| {
            let inner: Arc<dyn Transport> = Fake::new(INSTANT);
            assert_eq!(
                Paced::new(inner, config).map(|_| ()).map_err(|e| e.to_string()),
                Err(expected.to_owned())
            );
        };
        let base = PacingConfig::default();
        check(PacingConfig { concurrency: 0, ..base }, "pacing concurrency is 0, expected 1 to 1024");
        check(PacingConfig { concurrency: 1_025, ..base }, "pacing concurrency is 1025, expected 1 to 1024");
        check(PacingConfig { burst: 0, ..base }, "pacing burst must be at least 1 when per_second is set");
        check(PacingConfig { send_timeout_ms: 0, ..base }, "pacing send_timeout_ms must be at least 1");
    }

    #[test]
    fn deserialises_with_defaults() {
        let config: PacingConfig = serde_json::from_str(r#"{"per_second": 1}"#).expect("valid");
        assert_eq!(config, PacingConfig { per_second: 1, ..PacingConfig::default() });
        assert!(serde_json::from_str::<PacingConfig>(r#"{"rate": 1}"#).is_err());
    }
}
