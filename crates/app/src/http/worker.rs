//! The background worker of `amends serve`: the steps that follow from what is recorded.
//!
//! Each pass runs [`Engine::tick`] (watchdog, fan-out, credits) and then
//! [`Dispatcher::deliver_due`]. A pass starts every `poll`, or at once when an API call has
//! recorded something. Both steps are idempotent, so a failed pass is logged and simply
//! tried again on the next wake-up: one bad pass never stops the worker or the server.

use crate::deliver::{DeliveryReport, Dispatcher};
use crate::recovery::{Engine, TickReport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub(super) struct Worker {
    pub engine: Arc<Engine>,
    pub dispatcher: Arc<Dispatcher>,
    pub wake: Arc<Notify>,
    /// Counts finished passes, so that callers can wait for one instead of sleeping.
    pub passes: Arc<watch::Sender<u64>>,
    pub poll: Duration,
}

impl Worker {
    /// Runs passes until `stop` turns true or its sender is dropped. A stop that arrives
    /// during a pass lets that pass finish first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow_and_update() {
                break;
            }
            self.pass().await;
            self.passes.send_modify(|n| *n += 1);
            tokio::select! {
                _ = stop.changed() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::info!("worker stopped");
    }

    /// One pass, in its own task so that even a panic in it is logged and survived.
    async fn pass(&self) {
        let (engine, dispatcher) = (self.engine.clone(), self.dispatcher.clone());
        let pass = tokio::spawn(async move {
            match engine.tick().await {
                Ok(report) if report == TickReport::default() => {}
                Ok(report) => tracing::info!(?report, "tick"),
                Err(e) => tracing::error!(error = %e, "tick failed; retrying on the next pass"),
            }
            // Delivery does not depend on this pass's tick: what is queued already goes out.
            match dispatcher.deliver_due().await {
                Ok(report) if report == DeliveryReport::default() => {}
                Ok(report) => tracing::info!(?report, "delivery"),
                Err(e) => tracing::error!(error = %e, "delivery failed; retrying on the next pass"),
            }
        });
        if let Err(e) = pass.await {
            tracing::error!(error = %e, "worker pass panicked; retrying on the next pass");
        }
    }
}
