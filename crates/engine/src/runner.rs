//! [`Engine`]: wires the stages together and runs them as tasks until told to
//! stop. Roles let one binary run everything (`run`, `dev`) or only ingest,
//! only workers or only the scheduler, on any number of hosts sharing one
//! database and queue.
//!
//! # Scheduler leadership
//! [`Periodic`] tasks (session expiry, inventory, settlement) run in the
//! scheduler role, and only while this process holds the scheduler's
//! [`LeaderLock`](ark_relay_core::LeaderLock) lease ([`Engine::with_leader`]):
//! a follower retries `acquire` every `ttl / 3`; the leader renews every
//! `ttl / 3`. When a renewal says the lease is gone, or renewals keep failing
//! for `ttl / 2` (the lease may lapse any moment), the leader steps down at
//! once: the tick in progress is cancelled, not finished. Each lease carries
//! a fencing token; [`Periodic::tick_fenced`] receives it as a [`Fence`].
//! Without a lock the periodic tasks simply run (one process, `dev`).
//! *Monitors* ([`Engine::with_monitor`]: health probes) run in every process.
//!
//! # Stopping
//! On stop: ingest stops reading and drains what it received; workers take
//! no new job and give the one in hand a grace period, then hand it back
//! ([`crate::worker`]); the leader lets its ticks finish within the grace
//! period and releases the lease, so a standby takes over at once; last, the
//! outbox publisher makes a final pass over what all of them queued.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, DynBus, DynLeaderLock, DynQueue, DynStore, Lease, UnixTime};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::transport::NostrTransport;
use futures::stream::{self, StreamExt};
use nostr::Keys;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::handlers::JobHandler;
use crate::ingest::{IngestOutcome, Ingestor};
use crate::outbox::OutboxPublisher;
use crate::worker::Worker;
use crate::EngineError;

/// The ports and identity the engine runs on.
pub struct EngineParts {
    /// Durable state.
    pub store: DynStore,
    /// Job distribution.
    pub queue: DynQueue,
    /// Notifications for observers.
    pub bus: Option<DynBus>,
    /// Nostr in and out.
    pub transport: Arc<dyn NostrTransport>,
    /// The relay's Nostr identity.
    pub keys: Keys,
    /// Fees and limits.
    pub policy: IntentPolicy,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// What workers do with jobs.
    pub handler: Arc<dyn JobHandler>,
    /// Periodic tasks (session expiry, …), run by the scheduler role's leader.
    pub periodic: Vec<Arc<dyn Periodic>>,
}

/// A task the engine runs on a fixed period (a scheduler job).
#[async_trait::async_trait]
pub trait Periodic: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &'static str;
    /// How often it runs.
    fn every(&self) -> Duration;
    /// One run.
    async fn tick(&self);

    /// One run by the leader holding `fence`. The default ignores the fence
    /// and calls [`Periodic::tick`]. A task whose effects must never happen
    /// twice (an L1 commitment) overrides it: it checks
    /// [`Fence::is_current`] before committing and, for a database write,
    /// stores [`Fence::token`] with the write and refuses it when a greater
    /// token is already recorded (`UPDATE … SET fence = ? WHERE fence <= ?`),
    /// so a leader that stalled past its lease cannot write after its
    /// successor did.
    async fn tick_fenced(&self, fence: &Fence) {
        let _ = fence;
        self.tick().await;
    }
}

/// The scheduler lease a periodic tick runs under.
#[derive(Debug, Clone)]
pub struct Fence {
    token: u64,
    /// `true` once the lease is lost; `None` without a leader lock.
    lost: Option<watch::Receiver<bool>>,
}

impl Fence {
    /// The fencing token (0 when the engine runs without a leader lock).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Whether this process still holds the lease.
    pub fn is_current(&self) -> bool {
        self.lost.as_ref().is_none_or(|l| !*l.borrow())
    }

    /// A fence that never ends (no leader lock: one process).
    fn unfenced() -> Self {
        Self {
            token: 0,
            lost: None,
        }
    }

    /// Resolves once the lease is lost (never without a leader lock; a
    /// dropped sender counts as lost).
    async fn lost(&self) {
        match &self.lost {
            Some(l) => {
                let mut l = l.clone();
                let _ = l.wait_for(|lost| *lost).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Tuning.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker tasks in this process.
    pub workers: usize,
    /// Events ingested at once.
    pub ingest_concurrency: usize,
    /// Deliveries before a failing job goes dead.
    pub max_attempts: u32,
    /// Prefix of this process's queue consumer names (unique per process).
    pub consumer_prefix: String,
    /// How often pending jobs whose wake-up may be lost are re-pushed.
    pub job_pump_every: Duration,
    /// Only jobs older than this are re-pushed by the periodic pump.
    pub job_pump_age: Duration,
    /// Per-author rate limit at ingest (9001 beyond it); `None`: unlimited.
    pub ingest_rate_limit: Option<crate::ingest::limit::RateLimit>,
    /// Per-key overrides of the rate limit's event count (a busy bot's key;
    /// 0: that key is not limited). Ignored without `ingest_rate_limit`.
    pub ingest_rate_limit_per_key: std::collections::HashMap<ark_relay_core::PubKey, u32>,
    /// Jobs waiting or in flight in the queue before ingest holds back and
    /// lets its per-author fair order decide what goes next
    /// ([`crate::ingest::gate`]); 0 turns the gate off.
    pub queue_high_water: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            ingest_concurrency: 16,
            max_attempts: 5,
            consumer_prefix: format!("relay-{}", std::process::id()),
            job_pump_every: Duration::from_secs(10),
            job_pump_age: Duration::from_secs(30),
            ingest_rate_limit: None,
            ingest_rate_limit_per_key: std::collections::HashMap::new(),
            queue_high_water: crate::ingest::gate::DEFAULT_HIGH_WATER,
        }
    }
}

/// Which stages this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Hear and ingest Nostr events (and re-push lost job wake-ups).
    pub ingest: bool,
    /// Run jobs.
    pub worker: bool,
    /// Publish the outbox.
    pub publisher: bool,
    /// Run the periodic tasks (while leader, when a leader lock is set).
    pub scheduler: bool,
}

impl Roles {
    /// Everything.
    pub const ALL: Roles = Roles {
        ingest: true,
        worker: true,
        publisher: true,
        scheduler: true,
    };
    /// `ark-relay ingest`: ingest, and publish the rejections it queues.
    pub const INGEST: Roles = Roles {
        ingest: true,
        worker: false,
        publisher: true,
        scheduler: false,
    };
    /// `ark-relay worker`: run jobs and publish what they queue.
    pub const WORKER: Roles = Roles {
        ingest: false,
        worker: true,
        publisher: true,
        scheduler: false,
    };
    /// `ark-relay scheduler`: periodic tasks under the leader lock (their
    /// events are published by the ingest and worker processes).
    pub const SCHEDULER: Roles = Roles {
        ingest: false,
        worker: false,
        publisher: false,
        scheduler: true,
    };

    /// `ingest`, `worker`, `publisher`, `scheduler` joined by `+`.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        for (on, name) in [
            (self.ingest, "ingest"),
            (self.worker, "worker"),
            (self.publisher, "publisher"),
            (self.scheduler, "scheduler"),
        ] {
            if on {
                v.push(name);
            }
        }
        v.join("+")
    }
}

/// See the module docs.
pub struct Engine {
    parts: EngineParts,
    config: EngineConfig,
    roles: Roles,
    outbox_wake: Arc<Notify>,
    leader: Option<DynLeaderLock>,
    monitors: Vec<Arc<dyn Periodic>>,
    grace: Duration,
    leadership: Option<watch::Sender<Option<Lease>>>,
}

impl Engine {
    /// An engine running `roles`.
    pub fn new(parts: EngineParts, config: EngineConfig, roles: Roles) -> Self {
        Self {
            parts,
            config,
            roles,
            outbox_wake: Arc::new(Notify::new()),
            leader: None,
            monitors: Vec::new(),
            grace: crate::worker::DEFAULT_GRACE,
            leadership: None,
        }
    }

    /// Runs `roles` instead of those given to [`Engine::new`].
    pub fn with_roles(mut self, roles: Roles) -> Self {
        self.roles = roles;
        self
    }

    /// The roles this engine runs.
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// Replaces the job handler by `wrap(handler)` (e.g. [`crate::degrade::Degrade`]).
    pub fn wrap_handler(
        mut self,
        wrap: impl FnOnce(Arc<dyn JobHandler>) -> Arc<dyn JobHandler>,
    ) -> Self {
        self.parts.handler = wrap(self.parts.handler.clone());
        self
    }

    /// The name this process holds the scheduler lease under.
    pub fn scheduler_holder(&self) -> String {
        format!("{}-scheduler", self.config.consumer_prefix)
    }

    /// The ports this engine runs on.
    pub fn parts(&self) -> &EngineParts {
        &self.parts
    }

    /// Runs the periodic tasks only while holding `lock`'s lease.
    pub fn with_leader(mut self, lock: DynLeaderLock) -> Self {
        self.leader = Some(lock);
        self
    }

    /// Adds a periodic task (run by the scheduler role's leader).
    pub fn with_periodic(mut self, task: Arc<dyn Periodic>) -> Self {
        self.parts.periodic.push(task);
        self
    }

    /// Adds a task run on its period in every process, whatever the roles
    /// and leadership (health probes).
    pub fn with_monitor(mut self, monitor: Arc<dyn Periodic>) -> Self {
        self.monitors.push(monitor);
        self
    }

    /// How long in-flight jobs and ticks may run on after a stop.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A view of this process's lease (`Some` while it leads).
    pub fn leadership(&mut self) -> watch::Receiver<Option<Lease>> {
        match &self.leadership {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(None);
                self.leadership = Some(tx);
                rx
            }
        }
    }

    /// The ingest stage alone (for tests and benchmarks).
    pub fn ingestor(&self) -> Ingestor {
        let p = &self.parts;
        let ing = Ingestor::new(
            p.store.clone(),
            p.queue.clone(),
            p.keys.clone(),
            p.policy.clone(),
            p.clock.clone(),
            self.outbox_wake.clone(),
        );
        let ing = match self.config.ingest_rate_limit {
            Some(limit) => {
                ing.with_rate_limit_per_key(limit, self.config.ingest_rate_limit_per_key.clone())
            }
            None => ing,
        };
        match &p.bus {
            Some(bus) => ing.with_bus(bus.clone()),
            None => ing,
        }
    }

    /// Runs until `stop` becomes true, then drains: the transport stops, events
    /// already received are ingested, workers finish their current job and the
    /// outbox makes a last pass.
    pub async fn run(self, stop: watch::Receiver<bool>) -> Result<(), EngineError> {
        let mut tasks = JoinSet::new();
        let p = &self.parts;
        if self.roles.ingest {
            let (tx, rx) = mpsc::channel::<nostr::Event>(4096);
            let (cursor_tx, cursor) = watch::channel(p.store.last_processed_at().await?);
            let transport = p.transport.clone();
            let pump_stop = stop.clone();
            tasks.spawn(async move {
                if let Err(e) = transport.pump(tx, cursor, pump_stop).await {
                    tracing::error!(error = %e, "nostr transport stopped");
                }
            });
            let ingestor = self.ingestor();
            let concurrency = self.config.ingest_concurrency;
            let seen = Arc::new(SeenEvents::new(SEEN_EVENTS));
            // Back-pressure: the next event is taken only while the job
            // queue has room, so a backlog waits in the fair per-author
            // queues rather than in the FIFO job queue (crate::ingest::gate).
            let gate = (self.config.queue_high_water > 0).then(|| {
                Arc::new(crate::ingest::gate::QueueGate::new(
                    p.queue.clone(),
                    self.config.queue_high_water,
                    stop.clone(),
                ))
            });
            tasks.spawn(async move {
                // Round-robin by author: one key's backlog cannot delay
                // another key's events (crate::ingest::fair).
                let fair = crate::ingest::fair::FairIngest::new(rx);
                let admit = gate.clone();
                let events = stream::unfold(fair, move |mut f| {
                    let admit = admit.clone();
                    async move {
                        if let Some(g) = &admit {
                            g.admit().await;
                        }
                        f.next().await.map(|e| (e, f))
                    }
                });
                events
                    .for_each_concurrent(concurrency, |event| {
                        let ingestor = ingestor.clone();
                        let cursor_tx = cursor_tx.clone();
                        let seen = seen.clone();
                        let gate = gate.clone();
                        async move {
                            // A catch-up re-query hands back every event of
                            // its window; the ones handled here already are
                            // skipped before any signature check or DB read.
                            if seen.contains(&event.id) {
                                return;
                            }
                            let id = event.id;
                            let created = i64::try_from(event.created_at.as_secs()).unwrap_or(0);
                            match ingestor.handle(event).await {
                                Ok(IngestOutcome::Ignored(_)) => seen.insert(id),
                                Ok(outcome) => {
                                    if let (IngestOutcome::Accepted(_), Some(g)) = (&outcome, &gate) {
                                        g.queued();
                                    }
                                    seen.insert(id);
                                    advance(&cursor_tx, UnixTime(created.min(UnixTime::now().0)));
                                }
                                Err(e) => tracing::warn!(error = %e, "ingest failed; the event will be re-queried"),
                            }
                        }
                    })
                    .await;
            });
            tasks.spawn(job_pump(
                p.store.clone(),
                p.queue.clone(),
                p.clock.clone(),
                self.config.clone(),
                stop.clone(),
            ));
        }
        if self.roles.worker {
            let deferred = crate::worker::DeferredKeys::default();
            for i in 0..self.config.workers.max(1) {
                let worker = Worker::new(
                    p.store.clone(),
                    p.queue.clone(),
                    p.handler.clone(),
                    p.clock.clone(),
                    format!("{}-w{i}", self.config.consumer_prefix),
                    self.config.max_attempts,
                    self.outbox_wake.clone(),
                )
                .with_grace(self.grace)
                .with_deferred_keys(deferred.clone());
                tasks.spawn(worker.run(stop.clone()));
            }
        }
        if self.roles.scheduler && !p.periodic.is_empty() {
            match &self.leader {
                Some(lock) => {
                    let leadership = self
                        .leadership
                        .clone()
                        .unwrap_or_else(|| watch::channel(None).0);
                    tasks.spawn(lead(
                        lock.clone(),
                        self.scheduler_holder(),
                        p.periodic.clone(),
                        self.grace,
                        leadership,
                        stop.clone(),
                    ));
                }
                None => {
                    for task in &p.periodic {
                        tasks.spawn(periodic(task.clone(), Fence::unfenced(), stop.clone()));
                    }
                }
            }
        }
        for monitor in &self.monitors {
            tasks.spawn(periodic(monitor.clone(), Fence::unfenced(), stop.clone()));
        }
        // The publisher stops last, so its final pass sends what the other
        // stages queued while they wound down.
        let (publisher_stop_tx, publisher_stop) = watch::channel(false);
        let publisher = self.roles.publisher.then(|| {
            let publisher = OutboxPublisher::new(
                p.store.clone(),
                p.transport.clone(),
                p.clock.clone(),
                self.outbox_wake.clone(),
            );
            tokio::spawn(publisher.run(publisher_stop))
        });
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                tracing::error!(error = %e, "engine task panicked");
            }
        }
        let _ = publisher_stop_tx.send(true);
        if let Some(publisher) = publisher {
            if let Err(e) = publisher.await {
                tracing::error!(error = %e, "outbox publisher panicked");
            }
        }
        Ok(())
    }
}

/// Event ids an ingest process remembers as handled (about 10 minutes at
/// 100 events/s); older ones fall back to the store's duplicate check.
const SEEN_EVENTS: usize = 65_536;

/// A bounded set of handled event ids, oldest forgotten first.
struct SeenEvents {
    inner: std::sync::Mutex<(
        std::collections::HashSet<nostr::EventId>,
        std::collections::VecDeque<nostr::EventId>,
    )>,
    capacity: usize,
}

impl SeenEvents {
    fn new(capacity: usize) -> Self {
        Self {
            inner: std::sync::Mutex::new(Default::default()),
            capacity,
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        (
            std::collections::HashSet<nostr::EventId>,
            std::collections::VecDeque<nostr::EventId>,
        ),
    > {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, id: &nostr::EventId) -> bool {
        self.lock().0.contains(id)
    }

    fn insert(&self, id: nostr::EventId) {
        let mut g = self.lock();
        let (set, order) = &mut *g;
        if set.insert(id) {
            order.push_back(id);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

fn advance(cursor: &watch::Sender<Option<UnixTime>>, seen: UnixTime) {
    cursor.send_if_modified(|c| match c {
        Some(cur) if *cur >= seen => false,
        _ => {
            *c = Some(seen);
            true
        }
    });
}

/// Re-pushes pending jobs: all of them at start (an in-process queue loses its
/// contents with the process), then periodically those older than
/// `job_pump_age` (a lost wake-up).
async fn job_pump(
    store: DynStore,
    queue: DynQueue,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = true;
    loop {
        let age = if first {
            0
        } else {
            i64::try_from(config.job_pump_age.as_secs()).unwrap_or(30)
        };
        first = false;
        match store.pending_jobs(clock.now().plus_secs(-age), 1_000).await {
            Ok(jobs) => {
                if !jobs.is_empty() {
                    tracing::info!(count = jobs.len(), "re-pushing pending jobs");
                }
                for job in jobs {
                    if let Err(e) = queue.push(&job).await {
                        tracing::warn!(error = %e, "job pump push failed");
                        break;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "job pump cannot read jobs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.job_pump_every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Runs `task` on its period until `stop` (the tick in progress finishes)
/// or `lost` (the tick in progress is cancelled).
async fn periodic(task: Arc<dyn Periodic>, fence: Fence, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(task.every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() || !fence.is_current() {
            tracing::debug!(task = task.name(), "periodic task stopped");
            return;
        }
        tokio::select! {
            _ = tick.tick() => {
                tokio::select! {
                    () = task.tick_fenced(&fence) => {}
                    () = fence.lost() => {
                        tracing::warn!(task = task.name(), "leadership lost: tick cancelled");
                        return;
                    }
                }
            }
            _ = stop.changed() => {}
            () = fence.lost() => {}
        }
    }
}

/// The scheduler role under a leader lock: follow until the lease is free,
/// then lead (run the periodic tasks, renew) until the lease is lost or the
/// engine stops. See the module docs.
async fn lead(
    lock: DynLeaderLock,
    holder: String,
    tasks: Vec<Arc<dyn Periodic>>,
    grace: Duration,
    leadership: watch::Sender<Option<Lease>>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl = lock.ttl();
    let step = (ttl / 3).max(Duration::from_millis(20));
    loop {
        if *stop.borrow() {
            return;
        }
        match lock.acquire(&holder).await {
            Ok(Some(lease)) => {
                tracing::info!(holder = %lease.holder, token = lease.token, "scheduler leadership taken");
                leadership.send_replace(Some(lease.clone()));
                let stopped = lead_once(&lock, &lease, &tasks, grace, step, &mut stop).await;
                leadership.send_replace(None);
                if stopped {
                    match lock.release(&lease).await {
                        Ok(()) => {
                            tracing::info!(token = lease.token, "scheduler leadership released")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot release the leader lock; it expires by itself")
                        }
                    }
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "leader lock unavailable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Leads once; `true` if the engine is stopping, `false` if the lease was lost.
async fn lead_once(
    lock: &DynLeaderLock,
    lease: &Lease,
    tasks: &[Arc<dyn Periodic>],
    grace: Duration,
    step: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let ttl = lock.ttl();
    let (lost_tx, lost) = watch::channel(false);
    let fence = Fence {
        token: lease.token,
        lost: Some(lost),
    };
    let mut running = JoinSet::new();
    for task in tasks {
        running.spawn(periodic(task.clone(), fence.clone(), stop.clone()));
    }
    let mut last_renewed = tokio::time::Instant::now();
    let stopping = loop {
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break true;
        }
        match tokio::time::timeout(step, lock.renew(lease)).await {
            Ok(Ok(true)) => last_renewed = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                tracing::warn!(token = lease.token, "scheduler leadership lost");
                break false;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the leader lock"),
            Err(_) => tracing::warn!("leader lock renewal timed out"),
        }
        if last_renewed.elapsed() >= ttl / 2 {
            tracing::warn!(
                token = lease.token,
                "leader lock not renewed for half its ttl: stepping down"
            );
            break false;
        }
    };
    if !stopping {
        let _ = lost_tx.send(true);
    }
    let wait = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, wait).await.is_err() {
        tracing::warn!("periodic tasks did not finish within the grace period; aborted");
        let _ = lost_tx.send(true);
        running.abort_all();
    }
    stopping
}

/// A periodic task announcing the scheduler leader: every `every` it
/// publishes `{"holder", "token", "at_ms"}` on the bus channel
/// [`Heartbeat::CHANNEL`], so operators (and the failover test) see which
/// process leads, with which fencing token, and that it is alive.
pub struct Heartbeat {
    bus: DynBus,
    holder: String,
    every: Duration,
}

impl Heartbeat {
    /// The bus channel.
    pub const CHANNEL: &'static str = "scheduler";

    /// A heartbeat of `holder` on `bus`.
    pub fn new(bus: DynBus, holder: String, every: Duration) -> Self {
        Self { bus, holder, every }
    }
}

#[async_trait::async_trait]
impl Periodic for Heartbeat {
    fn name(&self) -> &'static str {
        "scheduler-heartbeat"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn tick(&self) {}

    async fn tick_fenced(&self, fence: &Fence) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let message = serde_json::json!({
            "holder": self.holder,
            "token": fence.token(),
            "at_ms": at_ms,
        });
        if let Err(e) = self.bus.publish(Self::CHANNEL, &message.to_string()).await {
            tracing::debug!(error = %e, "heartbeat not published");
        }
    }
}
