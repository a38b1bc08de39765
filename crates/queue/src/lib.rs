//! Ark Relay's job queue and event bus: the adapters behind the core's
//! [`JobQueue`](ark_relay_core::JobQueue) and [`EventBus`](ark_relay_core::EventBus) ports.
//!
//! - [`MemoryQueue`] and [`MemoryBus`]: in-process, tokio-based; the embedded
//!   default of `ark-relay dev` and of single-process tests.
//! - [`RedisQueue`]: Redis Streams with one consumer group, so any number of
//!   worker processes on any number of hosts share the work; [`RedisBus`]:
//!   Redis pub/sub for observers in other processes.
//!
//! # What this crate owns
//! The **distribution and wake-up** of jobs: which worker gets which job, at
//! least once; redelivery of a job whose worker died before acking it (after
//! [`QueueConfig::reclaim_after`](ark_relay_core::QueueConfig)); counting
//! deliveries; parking a job that keeps failing in a dead-letter list after
//! `max_attempts` deliveries; and best-effort notifications on the bus.
//!
//! # What it must not do
//! - Be the durable record of work. Every job is first written to the store's
//!   `jobs` table (DESIGN.md §3); a flushed Redis or a killed process loses
//!   wake-ups, never work, because workers re-derive pending jobs from the
//!   store. Nothing here is ever the only copy of a job.
//! - Interpret jobs: `kind` and `payload` are opaque; deduplication is the
//!   handler's business (idempotent by [`Job::key`](ark_relay_core::Job)), so
//!   pushing a key twice yields two deliveries.
//! - Touch the database, spawn tasks of its own (the Redis client's connection
//!   drivers are the client's), or block the runtime.
//!
//! # Semantics shared by both queues
//! - A delivery's `attempts` is 1 on first delivery and grows by one every
//!   time the job is handed out again after `reclaim_after` without an ack.
//! - A job is delivered at most `max_attempts` times (a `max_attempts` of 0
//!   is treated as 1); when it would be delivered once more it is moved to
//!   the dead-letter list instead.
//! - A live consumer keeps its deliveries with heartbeats
//!   ([`JobQueue::renew`](ark_relay_core::JobQueue::renew)): a renewed
//!   delivery is reclaimed only `reclaim_after` after the last heartbeat, and
//!   a heartbeat never takes back a delivery another consumer reclaimed.
//!   In-process, one process is one consumer: `renew` covers every in-flight
//!   delivery of the job.
//! - Reclaimed jobs are handed out before new ones.
//! - `ack` is idempotent, and acking a delivery that was meanwhile reclaimed
//!   by another consumer completes the job (the other consumer's ack is then
//!   a no-op): handlers are idempotent, so whichever finishes first wins.
//! - `depth` counts jobs waiting plus jobs in flight.
//! - Reclaim and dead-lettering happen inside `pop`: while no consumer pops,
//!   an expired delivery stays in flight (and in `depth`).

mod leader;
mod memory;
mod redis_bus;
mod redis_queue;

pub use leader::{MemoryLeaderLock, RedisLeaderLock};
pub use memory::{MemoryBus, MemoryQueue};
pub use redis_bus::{RedisBus, RedisSubscription};
pub use redis_queue::{RedisQueue, DEAD_LETTER_MAXLEN, DEFAULT_PREFIX};

use std::time::Duration;

/// The longest a single pop waits when its `wait` is effectively unbounded
/// (`Duration::MAX`), to keep `Instant` arithmetic from overflowing.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365);

/// `max_attempts` as both queues apply it (at least one delivery).
fn max_attempts(config: &ark_relay_core::QueueConfig) -> u32 {
    config.max_attempts.max(1)
}
