//! [`RedisQueue`]: the job queue on Redis Streams with one consumer group
//! (the bus is in `redis_bus`).
//!
//! # Keys (`<prefix>` lets test runs and deployments share one Redis)
//! - `<prefix>:jobs`: the stream; each entry has the fields `key`, `kind`,
//!   `payload`. An entry is deleted when acked, so the stream holds exactly
//!   the jobs waiting or in flight.
//! - `<prefix>:workers`: the consumer group on it.
//! - `<prefix>:jobs:dead`: the dead-letter stream (fields `key`, `kind`,
//!   `payload`, `attempts`, `entry`), trimmed to about
//!   [`DEAD_LETTER_MAXLEN`] entries.
//!
//! # Reclaim and attempts
//! `pop` first runs `XAUTOCLAIM … <reclaim_after ms> <cursor> COUNT 1`: an
//! entry another consumer took and has not acked for `reclaim_after` moves to
//! this consumer, and Redis increments its delivery count. That count (read
//! with the extended `XPENDING <stream> <group> <id> <id> 1`) is the
//! delivery's `attempts`. When it exceeds `max_attempts`, the entry is copied to
//! the dead-letter stream and acked and deleted in one `MULTI`, and the scan
//! goes on. The XAUTOCLAIM cursor is kept between pops, so a long pending list
//! is scanned a little at every pop rather than from the start each time.
//! Otherwise `XREADGROUP … COUNT 1 BLOCK <ms> STREAMS <stream> >` takes a new
//! entry (attempts = 1). A waiting pop blocks in slices of at most
//! `reclaim_after / 4` (10 ms – 1 s) and re-runs XAUTOCLAIM between slices,
//! so a dead consumer's job is picked up by a waiting one at most one slice
//! after `reclaim_after`.
//!
//! # Heartbeats
//! A handle remembers the entries it handed out (id, consumer, job key) until
//! they are acked or handed back. [`JobQueue::renew`] resets their idle time
//! with `XCLAIM <stream> <group> <consumer> 0 <id> JUSTID` — the same
//! consumer, so ownership does not change, and `JUSTID` leaves the delivery
//! count alone — inside one Lua script that first checks with `XPENDING …
//! <id> <id> 1 <consumer>` that the consumer still owns the entry: an entry
//! another consumer reclaimed meanwhile is never taken back. So
//! `reclaim_after` measures time since the owner's last heartbeat, not since
//! the delivery, and can be a few seconds.
//!
//! # Connections
//! Commands (`push`, `ack`, the XAUTOCLAIM scan, …) share one
//! [`ConnectionManager`] (a multiplexed connection that reconnects). A
//! blocking `XREADGROUP` holds its connection for the whole block, so every
//! blocking read checks out a connection of its own from a small pool (a new
//! one is opened when all are busy); `push` and `ack` are never queued behind
//! a block. A connection whose read failed or was cancelled is dropped, not
//! returned. Errors from a lost or unreachable server map to
//! [`QueueError::Transient`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ark_relay_core::{Delivery, Job, JobQueue, QueueConfig, QueueError};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamRangeReply, StreamReadReply,
};
use redis::{Client, ErrorKind, RedisError};
use tokio::time::Instant;

use crate::{max_attempts, FAR_FUTURE};

/// The prefix a deployment uses unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "ark-relay";

/// The dead-letter stream is trimmed (`MAXLEN ~`) to about this many entries.
pub const DEAD_LETTER_MAXLEN: usize = 10_000;

/// How long to wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a non-blocking command may take before it counts as failed.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest single `BLOCK` of a waiting pop.
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// The shortest.
const MIN_BLOCK: Duration = Duration::from_millis(10);
/// XAUTOCLAIM calls per reclaim scan (each examines up to 10 pending entries).
const MAX_SCANS: usize = 4;
/// Retries of a failed connection attempt before giving up.
const RECONNECT_RETRIES: usize = 2;
/// Idle blocking connections kept for reuse.
const MAX_IDLE_BLOCKING: usize = 16;

/// Renews the entries ARGV[3..] of stream KEYS[1], group ARGV[1], that the
/// consumer ARGV[2] still owns (idle time reset, delivery count unchanged);
/// returns the ids renewed.
const RENEW_SCRIPT: &str = r"
local renewed = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    table.insert(renewed, ARGV[i])
  end
end
return renewed
";

/// An entry this handle handed out and that is not acked or handed back.
#[derive(Debug, Clone)]
struct Held {
    consumer: String,
    key: String,
    since: Instant,
}

/// Held entries beyond which stale ones (a worker gave up without an ack and
/// another process finished the job) are pruned.
const HELD_PRUNE_AT: usize = 1024;

fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::BusyLoadingError
                | ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
        )
}

pub(crate) fn map_err(e: RedisError) -> QueueError {
    if is_transient(&e) {
        QueueError::Transient(Box::new(e))
    } else {
        QueueError::Backend(Box::new(e))
    }
}

/// Reconnection: redis-rs retries with a 1 s base delay multiplied by
/// `factor` at each attempt; its defaults (factor 100, 6 retries) would keep
/// a caller waiting for minutes when Redis is down. Here a connection attempt
/// gives up after about 2–4 s and the caller sees [`QueueError::Transient`]
/// (the manager tries again on the next command).
fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(response_timeout)
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_factor(2)
        .set_max_delay(1_000)
}

pub(crate) async fn open(
    client: &Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, QueueError> {
    client
        .get_connection_manager_with_config(manager_config(response_timeout))
        .await
        .map_err(map_err)
}

pub(crate) fn client(url: &str) -> Result<Client, QueueError> {
    Client::open(url).map_err(|e| QueueError::Backend(Box::new(e)))
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}:{name}")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A stream entry's fields as a job; `Err` names what is wrong with it.
fn job_of(entry: &StreamId) -> Result<Job, String> {
    let field = |name: &str| -> Result<String, String> {
        match entry.map.get(name) {
            Some(v) => redis::from_redis_value(v).map_err(|e| format!("field {name}: {e}")),
            None => Err(format!("field {name} missing")),
        }
    };
    Ok(Job {
        key: field("key")?,
        kind: field("kind")?,
        payload: field("payload")?,
    })
}

/// The [`JobQueue`] on Redis Streams. See the module docs for the layout.
///
/// One handle serves any number of concurrent consumers; separate handles
/// (other processes) with the same URL and prefix share the same queue.
pub struct RedisQueue {
    client: Client,
    conn: ConnectionManager,
    /// Idle connections for blocking reads.
    blocking: Mutex<Vec<ConnectionManager>>,
    /// Where the next XAUTOCLAIM scan starts.
    cursor: Mutex<String>,
    /// Entries handed out by this handle, by entry id (for heartbeats).
    held: Mutex<HashMap<String, Held>>,
    renew: redis::Script,
    stream: String,
    dead: String,
    group: String,
    config: QueueConfig,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisQueue {
    /// Connects to the Redis at `url` and makes sure the stream
    /// `<prefix>:jobs` and its consumer group exist.
    pub async fn connect(url: &str, prefix: &str, config: QueueConfig) -> Result<Self, QueueError> {
        let client = client(url)?;
        let conn = open(&client, COMMAND_TIMEOUT).await?;
        let stream = join(prefix, "jobs");
        let queue = Self {
            client,
            conn,
            blocking: Mutex::new(Vec::new()),
            cursor: Mutex::new("0-0".to_owned()),
            held: Mutex::new(HashMap::new()),
            renew: redis::Script::new(RENEW_SCRIPT),
            dead: format!("{stream}:dead"),
            group: join(prefix, "workers"),
            stream,
            config,
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// The stream holding the jobs.
    pub fn stream_key(&self) -> &str {
        &self.stream
    }

    /// The dead-letter stream.
    pub fn dead_letter_key(&self) -> &str {
        &self.dead
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The queue's configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Creates the group (and the stream) if missing. The group starts at
    /// `0`, not `$`: acked entries are deleted, so every entry present is
    /// unfinished work, including entries pushed after the group vanished
    /// (a flushed or restarted Redis).
    async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(map_err(e)),
            _ => Ok(()),
        }
    }

    fn cursor(&self) -> MutexGuard<'_, String> {
        self.cursor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers a delivery for [`JobQueue::renew`].
    fn hold(&self, consumer: &str, delivery: &Delivery) {
        let mut held = self.held();
        if held.len() >= HELD_PRUNE_AT {
            let stale = self.config.reclaim_after.saturating_mul(10);
            held.retain(|_, h| h.since.elapsed() < stale);
        }
        held.insert(
            delivery.id.clone(),
            Held {
                consumer: consumer.to_owned(),
                key: delivery.job.key.clone(),
                since: Instant::now(),
            },
        );
    }

    fn idle_blocking(&self) -> MutexGuard<'_, Vec<ConnectionManager>> {
        self.blocking.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` once more after recreating the group if Redis lost it.
    async fn with_group<T, F, Fut>(&self, f: F) -> Result<T, QueueError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        match f().await {
            Err(e) if e.code() == Some("NOGROUP") => {
                tracing::warn!(stream = %self.stream, "consumer group missing; recreating it");
                self.ensure_group().await?;
                f().await.map_err(map_err)
            }
            other => other.map_err(map_err),
        }
    }

    /// Claims one entry idle for `reclaim_after`, dead-lettering those past
    /// `max_attempts` on the way.
    async fn reclaim(&self, consumer: &str) -> Result<Option<Delivery>, QueueError> {
        let min_idle = millis(self.config.reclaim_after);
        let max_attempts = max_attempts(&self.config);
        let mut start = self.cursor().clone();
        for _ in 0..MAX_SCANS {
            let reply: StreamAutoClaimReply = self
                .with_group(|| {
                    let mut conn = self.conn.clone();
                    let start = start.clone();
                    async move {
                        redis::cmd("XAUTOCLAIM")
                            .arg(&self.stream)
                            .arg(&self.group)
                            .arg(consumer)
                            .arg(min_idle)
                            .arg(start)
                            .arg("COUNT")
                            .arg(1)
                            .query_async(&mut conn)
                            .await
                    }
                })
                .await?;
            start = reply.next_stream_id.clone();
            *self.cursor() = reply.next_stream_id;
            for entry in reply.claimed {
                if entry.id.is_empty() || entry.map.is_empty() {
                    // Deleted while pending (Redis < 7 reports it this way).
                    continue;
                }
                let attempts = self.delivery_count(&entry.id).await?;
                match job_of(&entry) {
                    Ok(job) if attempts <= max_attempts => {
                        tracing::debug!(consumer, id = %entry.id, attempts, "reclaimed");
                        let d = Delivery {
                            id: entry.id,
                            job,
                            attempts,
                        };
                        self.hold(consumer, &d);
                        return Ok(Some(d));
                    }
                    Ok(_) => {
                        self.dead_letter(&entry, attempts.saturating_sub(1), None)
                            .await?
                    }
                    Err(why) => self.dead_letter(&entry, attempts, Some(&why)).await?,
                }
            }
            if start == "0-0" {
                break;
            }
        }
        Ok(None)
    }

    /// The delivery count of a pending entry (at least 1).
    async fn delivery_count(&self, id: &str) -> Result<u32, QueueError> {
        let mut conn = self.conn.clone();
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        let count = reply.ids.first().map_or(1, |p| p.times_delivered);
        Ok(u32::try_from(count).unwrap_or(u32::MAX).max(1))
    }

    /// Moves an entry to the dead-letter stream: copy, ack and delete, atomically.
    async fn dead_letter(
        &self,
        entry: &StreamId,
        attempts: u32,
        malformed: Option<&str>,
    ) -> Result<(), QueueError> {
        let text = |name: &str| -> String {
            entry
                .map
                .get(name)
                .and_then(|v| redis::from_redis_value::<String>(v).ok())
                .unwrap_or_default()
        };
        let (key, kind) = (text("key"), text("kind"));
        match malformed {
            Some(why) => {
                tracing::warn!(id = %entry.id, %key, %kind, error = why, "malformed entry dead-lettered");
            }
            None => tracing::warn!(id = %entry.id, %key, %kind, attempts, "job dead-lettered"),
        }
        let mut fields: Vec<(&str, String)> = vec![
            ("key", key),
            ("kind", kind),
            ("payload", text("payload")),
            ("attempts", attempts.to_string()),
            ("entry", entry.id.clone()),
        ];
        if let Some(why) = malformed {
            fields.push(("error", why.to_owned()));
        }
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .xadd_maxlen(
                &self.dead,
                redis::streams::StreamMaxlen::Approx(DEAD_LETTER_MAXLEN),
                "*",
                &fields,
            )
            .ignore()
            .xack(&self.stream, &self.group, &[&entry.id])
            .ignore()
            .xdel(&self.stream, &[&entry.id])
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }

    /// Reads one new entry, blocking up to `block` (not at all if zero).
    async fn read_new(
        &self,
        consumer: &str,
        block: Duration,
    ) -> Result<Option<StreamId>, QueueError> {
        let blocking = !block.is_zero();
        let conn = if blocking {
            let idle = self.idle_blocking().pop();
            match idle {
                Some(c) => c,
                None => open(&self.client, MAX_BLOCK + COMMAND_TIMEOUT).await?,
            }
        } else {
            self.conn.clone()
        };
        let reply: Option<StreamReadReply> = self
            .with_group(|| {
                let mut conn = conn.clone();
                async move {
                    let mut cmd = redis::cmd("XREADGROUP");
                    cmd.arg("GROUP")
                        .arg(&self.group)
                        .arg(consumer)
                        .arg("COUNT")
                        .arg(1);
                    if blocking {
                        // BLOCK 0 would mean "forever".
                        cmd.arg("BLOCK").arg(millis(block).max(1));
                    }
                    cmd.arg("STREAMS")
                        .arg(&self.stream)
                        .arg(">")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if blocking {
            let mut idle = self.idle_blocking();
            if idle.len() < MAX_IDLE_BLOCKING {
                idle.push(conn);
            }
        }
        Ok(reply.and_then(|r| r.keys.into_iter().next()?.ids.into_iter().next()))
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn push(&self, job: &Job) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("key")
            .arg(&job.key)
            .arg("kind")
            .arg(&job.kind)
            .arg("payload")
            .arg(&job.payload)
            .query_async::<String>(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn pop(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let start = Instant::now();
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + FAR_FUTURE);
        let slice = (self.config.reclaim_after / 4).clamp(MIN_BLOCK, MAX_BLOCK);
        loop {
            if let Some(d) = self.reclaim(consumer).await? {
                return Ok(Some(d));
            }
            let block = deadline
                .saturating_duration_since(Instant::now())
                .min(slice);
            // Sub-millisecond remainders read without blocking.
            let block = if block < Duration::from_millis(1) {
                Duration::ZERO
            } else {
                block
            };
            if let Some(entry) = self.read_new(consumer, block).await? {
                match job_of(&entry) {
                    Ok(job) => {
                        tracing::trace!(consumer, id = %entry.id, "delivered");
                        let d = Delivery {
                            id: entry.id,
                            job,
                            attempts: 1,
                        };
                        self.hold(consumer, &d);
                        return Ok(Some(d));
                    }
                    Err(why) => self.dead_letter(&entry, 1, Some(&why)).await?,
                }
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.held().remove(&delivery.id);
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .xack(&self.stream, &self.group, &[&delivery.id])
            .ignore()
            .xdel(&self.stream, &[&delivery.id])
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }

    /// `XCLAIM <stream> <group> <consumer> 0 <id> IDLE <reclaim_after ms>
    /// JUSTID`: the entry stays with this consumer but looks idle for
    /// `reclaim_after` already, so the next XAUTOCLAIM of any consumer takes
    /// it. `JUSTID` leaves the delivery count alone (the next claim counts
    /// the new delivery).
    async fn hand_back(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.held().remove(&delivery.id);
        let mut conn = self.conn.clone();
        let _: Vec<String> = redis::cmd("XCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("hand-back")
            .arg(0)
            .arg(&delivery.id)
            .arg("IDLE")
            .arg(millis(self.config.reclaim_after))
            .arg("JUSTID")
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// One Lua script per consumer holding deliveries of `job` (see the
    /// module docs); entries no longer owned are forgotten.
    async fn renew(&self, job: &Job) -> Result<usize, QueueError> {
        let mut by_consumer: HashMap<String, Vec<String>> = HashMap::new();
        for (id, h) in self.held().iter() {
            if h.key == job.key {
                by_consumer
                    .entry(h.consumer.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        let mut renewed = 0;
        for (consumer, ids) in by_consumer {
            let mut conn = self.conn.clone();
            let mut call = self.renew.key(&self.stream);
            call.arg(&self.group).arg(&consumer);
            for id in &ids {
                call.arg(id);
            }
            let kept: Vec<String> = call.invoke_async(&mut conn).await.map_err(map_err)?;
            renewed += kept.len();
            if kept.len() < ids.len() {
                let mut held = self.held();
                for id in ids.iter().filter(|id| !kept.contains(id)) {
                    tracing::debug!(consumer, id = %id, "delivery reclaimed by another consumer; no longer renewed");
                    held.remove(id);
                }
            }
        }
        Ok(renewed)
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        // Acked entries are deleted, so the stream is exactly waiting + in flight.
        let mut conn = self.conn.clone();
        redis::cmd("XLEN")
            .arg(&self.stream)
            .query_async(&mut conn)
            .await
            .map_err(map_err)
    }

    async fn dead_letters(&self) -> Result<Vec<Job>, QueueError> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.dead)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        reply
            .ids
            .iter()
            .map(|e| {
                job_of(e).map_err(|why| {
                    QueueError::Backend(format!("dead letter {}: {why}", e.id).into())
                })
            })
            .collect()
    }
}
