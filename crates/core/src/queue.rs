//! The `JobQueue` and `EventBus` ports: how work is distributed to workers and
//! how observers hear about what the relay does.
//!
//! The database is the source of truth (DESIGN.md §3): every job is first
//! written to the store's `jobs` table, then pushed here to wake a worker. A
//! queue may lose a wake-up (Redis flushed, process killed) without losing
//! work, because workers re-derive pending jobs from the store.
//!
//! # Notes for implementors
//! - Delivery is **at least once**: a job popped but not acked (consumer
//!   crashed) is delivered again after `reclaim_after`, to any consumer.
//! - A consumer that is alive keeps its deliveries by renewing them
//!   ([`JobQueue::renew`], a heartbeat well within `reclaim_after`), so
//!   `reclaim_after` can be a few seconds: a dead consumer's job goes to
//!   another one that long after its last heartbeat, however long a live
//!   consumer's job takes.
//! - `ack` only after the job's database transaction committed.
//! - After `max_attempts` deliveries a job is moved to the dead-letter list and
//!   not delivered again.
//! - Handlers must be idempotent by [`Job::key`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A unit of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Idempotency key (an event id, a session id, …); also the `jobs.job_key` row.
    pub key: String,
    /// What to do (`intent`, `service_request`, `signing_response`, …).
    pub kind: String,
    /// Kind-specific data (JSON).
    pub payload: String,
}

/// A job handed to one consumer, to be acked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue's id of this entry (a Redis stream id, a sequence number).
    pub id: String,
    /// The job.
    pub job: Job,
    /// How many times it has been delivered, this time included (1 = first).
    pub attempts: u32,
}

/// Errors of the queue port.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker is unreachable or failed transiently; retry.
    #[error("queue unavailable: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A malformed entry or any other failure.
    #[error("queue: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Distributes jobs to workers. See the module docs for the contract.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// The implementation's name (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// Enqueues a job.
    async fn push(&self, job: &Job) -> Result<(), QueueError>;

    /// Takes the next job for `consumer`, waiting up to `wait`. Entries that
    /// another consumer took but did not ack within the queue's reclaim time
    /// are handed out again first.
    async fn pop(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>, QueueError>;

    /// Marks a delivery done.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;

    /// Number of jobs waiting or in flight (for metrics).
    async fn depth(&self) -> Result<u64, QueueError>;

    /// Jobs moved to the dead-letter list.
    async fn dead_letters(&self) -> Result<Vec<Job>, QueueError>;

    /// Heartbeat of a consumer working on `job`: every delivery of `job`
    /// that this handle handed out and that is neither acked nor handed back
    /// is not reclaimed for another `reclaim_after` from now. A delivery that
    /// another consumer has meanwhile reclaimed is left to it (never taken
    /// back). Returns how many deliveries were renewed. Does not count a
    /// delivery. The default renews nothing (deliveries are then reclaimed
    /// `reclaim_after` after they were handed out, however alive the
    /// consumer is).
    async fn renew(&self, _job: &Job) -> Result<usize, QueueError> {
        Ok(0)
    }

    /// Hands back a delivery its consumer will not finish (graceful
    /// shutdown), so that another consumer can take it now instead of after
    /// `reclaim_after`. Not an ack: the job stays in flight until someone
    /// acks it. The default does nothing (the delivery is then handed out
    /// again after `reclaim_after`, which is also what a crash leads to).
    async fn hand_back(&self, _delivery: &Delivery) -> Result<(), QueueError> {
        Ok(())
    }
}

/// A shared queue handle.
pub type DynQueue = Arc<dyn JobQueue>;

/// Publishes notifications for observers (dashboards, tests, other processes).
/// Best effort: a lost notification never loses work.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `message` (JSON) on `channel`.
    async fn publish(&self, channel: &str, message: &str) -> Result<(), QueueError>;
}

/// A shared bus handle.
pub type DynBus = Arc<dyn EventBus>;

/// Tuning shared by queue implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// A delivery not acked within this time is handed to another consumer.
    pub reclaim_after: Duration,
    /// Deliveries before a job goes to the dead-letter list.
    pub max_attempts: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            reclaim_after: Duration::from_secs(60),
            max_attempts: 5,
        }
    }
}
