//! A worker: takes jobs from the queue, skips finished ones, runs the handler,
//! and records the result with its outbound events in one transaction before
//! acking. A crash before the ack means redelivery; the store's job status makes
//! the second run a no-op.
//!
//! # The job's bookkeeping in the handler's last write
//! A handler whose job ends with a ceremony write (the runner's
//! `write_session`) records the job `done` in that write's transaction
//! ([`JobInHand`]): one commit less per job. The worker then only acks it. A
//! crash between that commit and the ack is a redelivery of a finished job,
//! which is acked without running (as after any `finish_job`).
//!
//! # Graceful stop
//! When told to stop, a worker takes no new job; the job in hand gets
//! [`Worker::with_grace`] to finish. If it does not, it is cancelled (every
//! handler is idempotent and persists its progress step by step, so this is
//! the same as a crash at that point) and **handed back** to the queue
//! ([`JobQueue::hand_back`](ark_relay_core::JobQueue::hand_back)): on Redis
//! another process's next pop takes it at once instead of after
//! `reclaim_after`; it is never acked, so it is never lost.
//!
//! # Deferred jobs (read-only mode)
//! A handler may answer [`HandlerError::Deferred`] (see `degrade`): the job
//! stays `pending` in the store, its notices are queued, the delivery is
//! acked (so deferring never uses up attempts or dead-letters the job), and
//! the job is pushed again after `retry_after`. One timer per job key and
//! process; if the process dies first, the ingest role's job pump re-pushes
//! pending jobs anyway.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ark_relay_core::{Clock, Delivery, DynQueue, DynStore, JobStatus};
use tokio::sync::{watch, Notify};

use crate::handlers::{HandlerError, JobHandler};

/// Default time an in-flight job gets to finish after a stop.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Job keys with a re-push timer pending in this process (shared by the
/// workers of one engine).
pub type DeferredKeys = Arc<Mutex<HashSet<String>>>;

tokio::task_local! {
    /// The job the worker running this task holds (see [`JobInHand`]).
    static JOB_IN_HAND: Arc<JobInHand>;
}

/// The job a worker is running, as its handler's last write sees it: that
/// write may record the job `done` in its own transaction (see the module
/// docs). Only writes that end the job use it: the ceremony runner's
/// `start_over`, `end_unstarted` and `drive_ending_job`.
#[derive(Debug)]
pub(crate) struct JobInHand {
    key: String,
    recorded: AtomicBool,
}

impl JobInHand {
    /// The job in hand of the current task (`None` outside a worker: the
    /// recovery scan, the scheduler, tests calling handlers directly).
    pub(crate) fn current() -> Option<Arc<JobInHand>> {
        JOB_IN_HAND.try_with(Arc::clone).ok()
    }

    /// The job's key.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The handler's write that recorded the job `done` has committed.
    pub(crate) fn recorded(&self) {
        self.recorded.store(true, Ordering::SeqCst);
    }

    fn is_recorded(&self) -> bool {
        self.recorded.load(Ordering::SeqCst)
    }
}

/// See the module docs.
pub struct Worker {
    store: DynStore,
    queue: DynQueue,
    handler: Arc<dyn JobHandler>,
    clock: Arc<dyn Clock>,
    consumer: String,
    max_attempts: u32,
    outbox_wake: Arc<Notify>,
    grace: Duration,
    deferred: DeferredKeys,
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
            grace: DEFAULT_GRACE,
            deferred: DeferredKeys::default(),
        }
    }

    /// How long an in-flight job may run on after a stop before it is handed back.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Shares the set of deferred job keys with the engine's other workers.
    pub fn with_deferred_keys(mut self, keys: DeferredKeys) -> Self {
        self.deferred = keys;
        self
    }

    /// Runs until `stop` becomes true. An in-flight job gets the grace
    /// period to finish, then is handed back.
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
                Ok(Some(d)) => self.process_until(d, &mut stop).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "queue pop failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    /// Processes `d`; if `stop` turns true meanwhile, gives it the grace
    /// period and then hands it back.
    async fn process_until(&self, d: Delivery, stop: &mut watch::Receiver<bool>) {
        let mut work = Box::pin(self.process(d.clone()));
        tokio::select! {
            () = &mut work => return,
            _ = stop.wait_for(|s| *s) => {}
        }
        tracing::info!(job = %d.job.key, grace = ?self.grace, "stopping: letting the job in hand finish");
        if tokio::time::timeout(self.grace, &mut work).await.is_ok() {
            return;
        }
        // Cancel it (releases whatever it holds, e.g. an open transaction).
        drop(work);
        match self.queue.hand_back(&d).await {
            Ok(()) => {
                tracing::warn!(job = %d.job.key, "job not finished within the grace period; handed back")
            }
            Err(e) => {
                tracing::warn!(job = %d.job.key, error = %e, "hand-back failed; the job is redelivered after the reclaim time")
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
        let in_hand = Arc::new(JobInHand {
            key: d.job.key.clone(),
            recorded: AtomicBool::new(false),
        });
        let result = JOB_IN_HAND
            .scope(in_hand.clone(), self.handler.handle(&d.job, d.attempts))
            .await;
        match result {
            Ok(outcome) if in_hand.is_recorded() => {
                // The handler's last write recorded the job done (the
                // handlers that do so return no events of their own).
                if !outcome.outbox.is_empty() {
                    if let Err(e) = self.store.push_outbox(&outcome.outbox, now).await {
                        tracing::warn!(error = %e, "events of a job its last write finished were not queued");
                    }
                }
                tracing::debug!(consumer = %self.consumer, "job done (recorded by its last write)");
                self.outbox_wake.notify_one();
                self.ack(&d).await;
            }
            Ok(outcome) => {
                // A handler may have queued events in its own transactions
                // (the ceremony runner's `write_session`): publish them now,
                // not after the job's bookkeeping commit below (1–7 ms per
                // job on MariaDB, on every ceremony turn's critical path).
                self.outbox_wake.notify_one();
                match self
                    .store
                    .finish_job(&d.job.key, JobStatus::Done, &outcome.outbox, None, now)
                    .await
                {
                    Ok(_) => {
                        tracing::debug!(consumer = %self.consumer, "job done");
                        self.outbox_wake.notify_one();
                        self.ack(&d).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record job result; will be redelivered")
                    }
                }
            }
            Err(HandlerError::Deferred {
                reason,
                retry_after,
                outbox,
            }) => {
                if !outbox.is_empty() {
                    if let Err(e) = self.store.push_outbox(&outbox, now).await {
                        tracing::warn!(error = %e, "cannot queue the deferral notice; will be redelivered");
                        return;
                    }
                    self.outbox_wake.notify_one();
                }
                tracing::debug!(%reason, ?retry_after, "job deferred");
                self.ack(&d).await;
                self.push_later(d.job, retry_after);
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

    /// Pushes `job` again after `delay`, unless a timer for it is pending.
    fn push_later(&self, job: ark_relay_core::Job, delay: Duration) {
        {
            let mut keys = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
            if !keys.insert(job.key.clone()) {
                return;
            }
        }
        let queue = self.queue.clone();
        let keys = self.deferred.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            keys.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&job.key);
            if let Err(e) = queue.push(&job).await {
                tracing::warn!(job = %job.key, error = %e, "cannot re-push a deferred job; the job pump will");
            }
        });
    }

    async fn ack(&self, d: &Delivery) {
        if let Err(e) = self.queue.ack(d).await {
            tracing::warn!(error = %e, "ack failed; the job may be delivered again (harmless)");
        }
    }
}
