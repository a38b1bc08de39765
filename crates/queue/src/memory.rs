//! The in-process queue and bus: one process, no broker. What a killed process
//! had queued is gone, which is allowed (the store's `jobs` table is the
//! record); everything else behaves as [`crate::RedisQueue`] does.
//!
//! Waiting consumers sleep on a [`Notify`] (woken by `push`) and on a timer set
//! to the earliest in-flight deadline (for reclaim); they never poll. Time is
//! [`tokio::time::Instant`], so tests can run on a paused clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ark_relay_core::{Delivery, EventBus, Job, JobQueue, QueueConfig, QueueError};
use async_trait::async_trait;
use tokio::sync::{broadcast, Notify};
use tokio::time::{sleep_until, Instant};

use crate::{max_attempts, FAR_FUTURE};

/// The in-process [`JobQueue`]. Cloning gives another handle on the same
/// queue (as another worker would have).
#[derive(Clone)]
pub struct MemoryQueue {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    config: QueueConfig,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Jobs waiting, reclaimed ones at the front.
    ready: VecDeque<Entry>,
    /// Jobs handed out and not acked, by sequence number.
    in_flight: BTreeMap<u64, InFlight>,
    dead: Vec<Job>,
}

struct Entry {
    seq: u64,
    job: Job,
    /// Deliveries so far.
    attempts: u32,
}

struct InFlight {
    entry: Entry,
    deadline: Instant,
}

impl State {
    /// Returns expired in-flight entries to the front of `ready` (oldest
    /// first), or to the dead letters when they used up their attempts.
    fn reclaim(&mut self, now: Instant, max_attempts: u32) {
        let expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired.into_iter().rev() {
            let Some(f) = self.in_flight.remove(&seq) else {
                continue;
            };
            if f.entry.attempts >= max_attempts {
                tracing::warn!(
                    key = %f.entry.job.key,
                    kind = %f.entry.job.kind,
                    attempts = f.entry.attempts,
                    "job dead-lettered"
                );
                self.dead.push(f.entry.job);
            } else {
                self.ready.push_front(f.entry);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|f| f.deadline).min()
    }
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(config: QueueConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                notify: Notify::new(),
                config,
            }),
        }
    }

    /// The queue's configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.shared.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock with the state half
        // updated, so a poisoned lock still guards a consistent state.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(QueueConfig::default())
    }
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("MemoryQueue")
            .field("config", &self.shared.config)
            .field("ready", &st.ready.len())
            .field("in_flight", &st.in_flight.len())
            .field("dead", &st.dead.len())
            .finish()
    }
}

fn bad_id(id: &str) -> QueueError {
    QueueError::Backend(format!("not a memory queue delivery id: {id:?}").into())
}

#[async_trait]
impl JobQueue for MemoryQueue {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn push(&self, job: &Job) -> Result<(), QueueError> {
        {
            let mut st = self.state();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.ready.push_back(Entry {
                seq,
                job: job.clone(),
                attempts: 0,
            });
        }
        self.shared.notify.notify_one();
        Ok(())
    }

    async fn pop(&self, consumer: &str, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        let start = Instant::now();
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + FAR_FUTURE);
        let max_attempts = max_attempts(&self.shared.config);
        loop {
            // Registered before looking at the state, so a push between the
            // look and the wait is not missed.
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let next_reclaim = {
                let mut st = self.state();
                let now = Instant::now();
                st.reclaim(now, max_attempts);
                if let Some(mut entry) = st.ready.pop_front() {
                    entry.attempts = entry.attempts.saturating_add(1);
                    let delivery = Delivery {
                        id: entry.seq.to_string(),
                        job: entry.job.clone(),
                        attempts: entry.attempts,
                    };
                    let reclaim_at = now
                        .checked_add(self.shared.config.reclaim_after)
                        .unwrap_or_else(|| now + FAR_FUTURE);
                    st.in_flight.insert(
                        entry.seq,
                        InFlight {
                            entry,
                            deadline: reclaim_at,
                        },
                    );
                    tracing::trace!(consumer, id = %delivery.id, attempts = delivery.attempts, "delivered");
                    return Ok(Some(delivery));
                }
                st.next_deadline()
            };

            if Instant::now() >= deadline {
                return Ok(None);
            }
            let wake = next_reclaim.map_or(deadline, |r| r.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = sleep_until(wake) => {}
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let seq: u64 = delivery.id.parse().map_err(|_| bad_id(&delivery.id))?;
        let mut st = self.state();
        if st.in_flight.remove(&seq).is_none() {
            // Reclaimed but not yet handed out again: done all the same.
            st.ready.retain(|e| e.seq != seq);
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let st = self.state();
        Ok((st.ready.len() + st.in_flight.len()) as u64)
    }

    async fn dead_letters(&self) -> Result<Vec<Job>, QueueError> {
        Ok(self.state().dead.clone())
    }

    /// Pushes back the deadline of every in-flight delivery of `job`. One
    /// process is one consumer here (its handles share the queue, and a
    /// killed process loses the queue with it), so every in-flight delivery
    /// of the job belongs to a live worker of this process.
    async fn renew(&self, job: &Job) -> Result<usize, QueueError> {
        let now = Instant::now();
        let deadline = now
            .checked_add(self.shared.config.reclaim_after)
            .unwrap_or_else(|| now + FAR_FUTURE);
        let mut st = self.state();
        let mut renewed = 0;
        for f in st.in_flight.values_mut() {
            if f.entry.job.key == job.key {
                f.deadline = f.deadline.max(deadline);
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    /// Makes the delivery reclaimable now (its deadline passes at once).
    async fn hand_back(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let seq: u64 = delivery.id.parse().map_err(|_| bad_id(&delivery.id))?;
        if let Some(f) = self.state().in_flight.get_mut(&seq) {
            f.deadline = Instant::now();
        }
        self.shared.notify.notify_one();
        Ok(())
    }
}

/// The in-process [`EventBus`]: a [`broadcast`] channel per channel name.
/// Messages published while nobody is subscribed are dropped; a subscriber
/// that falls more than `capacity` messages behind sees
/// [`broadcast::error::RecvError::Lagged`].
#[derive(Debug)]
pub struct MemoryBus {
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
    capacity: usize,
}

impl MemoryBus {
    /// Messages buffered per subscriber by [`MemoryBus::new`].
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A bus buffering [`Self::DEFAULT_CAPACITY`] messages per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A bus buffering `capacity` (at least 1) messages per subscriber.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Receives every message published on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<String> {
        let mut channels = self.channels();
        if let Some(tx) = channels.get(channel) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(self.capacity);
        channels.insert(channel.to_owned(), tx);
        rx
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<String>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, channel: &str, message: &str) -> Result<(), QueueError> {
        let mut channels = self.channels();
        if let Some(tx) = channels.get(channel) {
            if tx.send(message.to_owned()).is_err() {
                // Every subscriber is gone: forget the channel.
                channels.remove(channel);
            }
        }
        Ok(())
    }
}
