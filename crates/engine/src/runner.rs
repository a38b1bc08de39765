//! [`Engine`]: wires the stages together and runs them as tasks until told to
//! stop. Roles let one binary run everything (`run`, `dev`) or only ingest or
//! only workers, on any number of hosts sharing one database and queue.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, DynBus, DynQueue, DynStore, UnixTime};
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
    /// Periodic tasks (session expiry, …), run by the ingest role.
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
}

impl Roles {
    /// Everything.
    pub const ALL: Roles = Roles {
        ingest: true,
        worker: true,
        publisher: true,
    };
}

/// See the module docs.
pub struct Engine {
    parts: EngineParts,
    config: EngineConfig,
    roles: Roles,
    outbox_wake: Arc<Notify>,
}

impl Engine {
    /// An engine running `roles`.
    pub fn new(parts: EngineParts, config: EngineConfig, roles: Roles) -> Self {
        Self {
            parts,
            config,
            roles,
            outbox_wake: Arc::new(Notify::new()),
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
            tasks.spawn(async move {
                let events = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
                events
                    .for_each_concurrent(concurrency, |event| {
                        let ingestor = ingestor.clone();
                        let cursor_tx = cursor_tx.clone();
                        async move {
                            let created = i64::try_from(event.created_at.as_secs()).unwrap_or(0);
                            match ingestor.handle(event).await {
                                Ok(IngestOutcome::Ignored(_)) => {}
                                Ok(_) => advance(&cursor_tx, UnixTime(created.min(UnixTime::now().0))),
                                Err(e) => tracing::warn!(error = %e, "ingest failed; the event will be re-queried"),
                            }
                        }
                    })
                    .await;
            });
            for task in &p.periodic {
                tasks.spawn(periodic(task.clone(), stop.clone()));
            }
            tasks.spawn(job_pump(
                p.store.clone(),
                p.queue.clone(),
                p.clock.clone(),
                self.config.clone(),
                stop.clone(),
            ));
        }
        if self.roles.worker {
            for i in 0..self.config.workers.max(1) {
                let worker = Worker::new(
                    p.store.clone(),
                    p.queue.clone(),
                    p.handler.clone(),
                    p.clock.clone(),
                    format!("{}-w{i}", self.config.consumer_prefix),
                    self.config.max_attempts,
                    self.outbox_wake.clone(),
                );
                tasks.spawn(worker.run(stop.clone()));
            }
        }
        if self.roles.publisher {
            let publisher = OutboxPublisher::new(
                p.store.clone(),
                p.transport.clone(),
                p.clock.clone(),
                self.outbox_wake.clone(),
            );
            tasks.spawn(publisher.run(stop.clone()));
        }
        while let Some(res) = tasks.join_next().await {
            if let Err(e) = res {
                tracing::error!(error = %e, "engine task panicked");
            }
        }
        Ok(())
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

async fn periodic(task: Arc<dyn Periodic>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(task.every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => task.tick().await,
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            tracing::debug!(task = task.name(), "periodic task stopped");
            return;
        }
    }
}
