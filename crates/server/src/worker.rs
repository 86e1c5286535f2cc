//! The background worker of `amends serve`: the steps that follow from what is recorded.
//!
//! Two loops run side by side. The tick loop runs [`Engine::tick`] (watchdog, fan-out,
//! credits) every `poll`, or at once when an API call has recorded something. The
//! delivery loop runs [`Dispatcher::deliver_due`] every `poll`, or at once when a tick has
//! queued notices. They are separate so that a slow relay working through a million
//! notices never delays the watchdog, a declaration's fan-out or a credit step. Every step
//! is idempotent, so a failed pass is logged and simply tried again: one bad pass never
//! stops the worker or the server.

use amends_recovery::{Engine, TickReport};
use amends_sinks::deliver::{DeliveryReport, Dispatcher};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub(crate) struct Worker {
    pub engine: Arc<Engine>,
    pub dispatcher: Arc<Dispatcher>,
    /// Wakes the tick loop (an API call recorded something).
    pub wake: Arc<Notify>,
    /// Counts finished passes of either loop, so that callers can wait for one instead of
    /// sleeping.
    pub passes: Arc<watch::Sender<u64>>,
    pub poll: Duration,
}

impl Worker {
    /// Runs both loops until `stop` turns true or its sender is dropped. A stop that
    /// arrives during a pass lets that pass finish first.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let deliver_wake = Arc::new(Notify::new());
        let ticks = {
            let (engine, deliver_wake) = (self.engine.clone(), deliver_wake.clone());
            self.repeat(stop.clone(), self.wake.clone(), move || {
                let (engine, deliver_wake) = (engine.clone(), deliver_wake.clone());
                async move { tick_pass(&engine, &deliver_wake).await }
            })
        };
        let deliveries = {
            let dispatcher = self.dispatcher.clone();
            self.repeat(stop, deliver_wake, move || {
                let dispatcher = dispatcher.clone();
                async move { delivery_pass(&dispatcher).await }
            })
        };
        tokio::join!(ticks, deliveries);
        tracing::info!("worker stopped");
    }

    /// Runs `pass` (in its own task, so even a panic in it is logged and survived), then
    /// waits for `wake`, the poll interval or the stop, and again.
    async fn repeat<F, Fut>(&self, mut stop: watch::Receiver<bool>, wake: Arc<Notify>, pass: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            if let Err(e) = tokio::spawn(pass()).await {
                tracing::error!(error = %e, "worker pass panicked; retrying on the next pass");
            }
            self.passes.send_modify(|n| *n += 1);
            tokio::select! {
                _ = stop.changed() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}

async fn tick_pass(engine: &Engine, deliver_wake: &Notify) {
    match engine.tick().await {
        Ok(report) if report == TickReport::default() => {}
        Ok(report) => {
            tracing::info!(?report, "tick");
            if report.fanout.notices_queued + report.credits.notices_queued > 0 {
                deliver_wake.notify_one();
            }
        }
        Err(e) => tracing::error!(error = %e, "tick failed; retrying on the next pass"),
    }
}

async fn delivery_pass(dispatcher: &Dispatcher) {
    match dispatcher.deliver_due().await {
        Ok(report) if report == DeliveryReport::default() => {}
        Ok(report) => tracing::info!(?report, "delivery"),
        Err(e) => tracing::error!(error = %e, "delivery failed; retrying on the next pass"),
    }
}
