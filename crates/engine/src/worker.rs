//! A worker: takes jobs from the queue, skips finished ones, runs the handler,
//! and records the result with its outbound events in one transaction before
//! acking. A crash before the ack means redelivery; the store's job status makes
//! the second run a no-op.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, Delivery, DynQueue, DynStore, JobStatus};
use tokio::sync::{watch, Notify};

use crate::handlers::{HandlerError, JobHandler};

/// See the module docs.
pub struct Worker {
    store: DynStore,
    queue: DynQueue,
    handler: Arc<dyn JobHandler>,
    clock: Arc<dyn Clock>,
    consumer: String,
    max_attempts: u32,
    outbox_wake: Arc<Notify>,
}

impl Worker {
    /// A worker named `consumer` (unique per process and task).
    pub fn new(
        store: DynStore,
        queue: DynQueue,
        handler: Arc<dyn JobHandler>,
        clock: Arc<dyn Clock>,
        consumer: String,
        max_attempts: u32,
        outbox_wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            queue,
            handler,
            clock,
            consumer,
            max_attempts,
            outbox_wake,
        }
    }

    /// Runs until `stop` becomes true. An in-flight job is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = tokio::select! {
                _ = stop.changed() => continue,
                r = self.queue.pop(&self.consumer, Duration::from_secs(1)) => r,
            };
            match next {
                Ok(Some(d)) => self.process(d).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "queue pop failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Processes one delivery.
    #[tracing::instrument(skip_all, fields(job = %d.job.key, kind = %d.job.kind, attempts = d.attempts))]
    pub async fn process(&self, d: Delivery) {
        match self.store.job(&d.job.key).await {
            Ok(Some(rec)) if rec.status != JobStatus::Pending => {
                tracing::debug!("already finished; acking");
                self.ack(&d).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read job; leaving it for redelivery");
                return;
            }
        }
        let now = self.clock.now();
        match self.handler.handle(&d.job, d.attempts).await {
            Ok(outcome) => {
                match self
                    .store
                    .finish_job(&d.job.key, JobStatus::Done, &outcome.outbox, None, now)
                    .await
                {
                    Ok(_) => {
                        self.outbox_wake.notify_one();
                        self.ack(&d).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record job result; will be redelivered")
                    }
                }
            }
            Err(HandlerError::Transient(e)) if d.attempts < self.max_attempts => {
                tracing::warn!(error = %e, "transient failure; will be redelivered");
            }
            Err(e) => {
                tracing::error!(error = %e, "job failed for good");
                let msg = e.to_string();
                if self
                    .store
                    .finish_job(&d.job.key, JobStatus::Dead, &[], Some(&msg), now)
                    .await
                    .is_ok()
                {
                    self.ack(&d).await;
                }
            }
        }
    }

    async fn ack(&self, d: &Delivery) {
        if let Err(e) = self.queue.ack(d).await {
            tracing::warn!(error = %e, "ack failed; the job may be delivered again (harmless)");
        }
    }
}
