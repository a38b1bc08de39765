//! `ark-relay run | ingest | worker | scheduler`: the production wiring.
//!
//! One binary, four commands: `run` starts every role in one process;
//! `ingest`, `worker` and `scheduler` start one. Any number of each may run
//! on any hosts against one MariaDB and one Redis (the configured
//! `database_url` and `redis_url`; SQLite and the in-process queue also work,
//! for a single `run` process). What differs from `dev`: nothing is embedded —
//! the Nostr relays, arkd and the database come from the configuration — and
//! the extra machinery for many processes is switched on:
//!
//! - the **scheduler leader lock** (Redis `<prefix>:leader:scheduler`, or
//!   in-process): periodic tasks run in one process at a time, with a
//!   heartbeat on the bus channel `scheduler`;
//! - **read-only mode**: arkd is probed every `run.probe_every_ms`; while it
//!   does not answer (or its circuit breaker is open) intents are kept and
//!   answered 7001 ([`ark_relay_engine::degrade`]), `/health` says
//!   `degraded`;
//! - **graceful stop** on SIGTERM/SIGINT: in-flight jobs get `run.grace_ms`,
//!   then are handed back; the lease is released; the outbox is flushed.
//!
//! The engine itself is assembled by the same function as `dev`'s
//! (`wiring::engine_builder`, the engine crate's `EngineBuilder`), so both
//! run the same handlers and periodic tasks.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{DynLeaderLock, DynStore, RelayStore};
use ark_relay_engine::builder::ReadOnly;
use ark_relay_engine::degrade::{ArkProbe, Availability, BackendWatch, Unavailable};
use ark_relay_engine::{ceremony, Heartbeat, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_grpc::resilience::{
    Backoff, BreakerConfig, BreakerState, HealthRegistry, Resilience,
};
use ark_relay_queue::{MemoryLeaderLock, RedisBus, RedisLeaderLock};
use ark_relay_store::SqlStore;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{redact_url, Config, QueueKind};
use crate::http::{self, ApiInfo, ApiState};
use crate::keys;
use crate::shutdown::StopSignal;

/// Options of the role commands.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The roles to run.
    pub roles: Roles,
    /// Serve the HTTP API here (`None`: no HTTP in this process).
    pub http: Option<SocketAddr>,
    /// Write a JSON file with the process's facts once it is up.
    pub ready_file: Option<PathBuf>,
}

/// What a running process reports in its ready file.
#[derive(Debug, Clone, Serialize)]
pub struct RunFacts {
    /// Process id.
    pub pid: u32,
    /// `ingest+worker+publisher+scheduler`, …
    pub roles: String,
    /// The relay's public key (hex).
    pub relay_pubkey: String,
    /// Base URL of the HTTP API, if served.
    pub http_url: Option<String>,
    /// The scheduler lease's holder name of this process.
    pub scheduler_holder: String,
}

/// Back ends down for read-only mode: what the probe saw, plus open breakers.
struct RunAvailability {
    watch: Arc<BackendWatch>,
    health: HealthRegistry,
}

impl Availability for RunAvailability {
    fn unavailable(&self) -> Vec<Unavailable> {
        let mut down = self.watch.unavailable();
        for view in self.health.snapshot() {
            if view.state == BreakerState::Open && !down.iter().any(|d| d.backend == view.backend) {
                down.push(Unavailable {
                    backend: view.backend.clone(),
                    reason: "circuit breaker open".into(),
                });
            }
        }
        down
    }
}

impl RunAvailability {
    /// `/health`'s view: every breaker, marked unhealthy when down.
    fn health(&self) -> Vec<ark_relay_api::BackendHealth> {
        let down = self.unavailable();
        let mut out: Vec<ark_relay_api::BackendHealth> = self
            .health
            .snapshot()
            .into_iter()
            .map(|v| {
                let is_down = down.iter().any(|d| d.backend == v.backend);
                let state = if is_down && v.state == BreakerState::Closed {
                    "unreachable"
                } else {
                    v.state.as_str()
                };
                ark_relay_api::BackendHealth::new(v.backend, state, !is_down)
            })
            .collect();
        for d in down {
            if !out.iter().any(|b| b.name == d.backend) {
                out.push(ark_relay_api::BackendHealth::new(
                    d.backend,
                    "unreachable",
                    false,
                ));
            }
        }
        out
    }
}

/// Retries `f` every second (doubling up to 10 s) until it succeeds or `stop` fires.
async fn until_ok<T, F, Fut>(
    what: &str,
    stop: &mut watch::Receiver<bool>,
    mut f: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => warn!(error = %format!("{e:#}"), ?delay, "{what} failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// `ark-relay run|ingest|worker|scheduler`: start, run until a signal, stop gracefully.
pub async fn run(
    config: Config,
    options: RunOptions,
    signal: impl Future<Output = StopSignal> + Send + 'static,
) -> Result<()> {
    let roles = options.roles;
    let (stop_tx, mut stop) = watch::channel(false);
    let signal_task = tokio::spawn(async move {
        let s = signal.await;
        info!(signal = s.name(), "stopping");
        let _ = stop_tx.send(true);
    });

    let Some(ark_config) = config.ark.clone() else {
        bail!("[ark] url is not configured (only `ark-relay dev` embeds an arkd simulator)");
    };
    if config.nostr_relays.is_empty() {
        bail!("nostr_relays is empty (only `ark-relay dev` embeds a Nostr relay)");
    }
    let relay_key = keys::relay_key(&config)?;
    info!(pubkey = %relay_key.pubkey_hex(), roles = %roles.describe(), "starting");

    // Store (migrations are idempotent and serialised by sqlx's lock).
    let url = config.database_url();
    let shown = redact_url(&url);
    let Some(store) = until_ok("connecting to the database", &mut stop, || async {
        let store = SqlStore::connect(&url)
            .await
            .with_context(|| format!("connecting to the database {shown}"))?;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating the database {shown}"))?;
        Ok(store)
    })
    .await?
    else {
        return Ok(());
    };
    info!(backend = store.backend_name(), url = %shown, "database ready");

    // arkd: the resilient client the handlers use, and a probe client whose
    // breaker never opens (it must see the truth at every probe).
    let health = HealthRegistry::new();
    let ark_url = ark_config.url.clone();
    let Some(ark) = until_ok("connecting to arkd", &mut stop, || async {
        let client = ArkdClient::connect(ark_url.clone())
            .await
            .with_context(|| format!("connecting to arkd at {}", redact_url(&ark_url)))?;
        Ok(client)
    })
    .await?
    else {
        return Ok(());
    };
    let ark: Arc<dyn ArkServer> = Arc::new(ark.with_resilience(Resilience::new("arkd", &health)));
    let Some(server) = until_ok("arkd GetInfo", &mut stop, || {
        crate::wiring::ark_server_info(ark.as_ref())
    })
    .await?
    else {
        return Ok(());
    };
    let probe_client = ArkdClient::connect(ark_config.url.clone())
        .await
        .context("connecting the arkd probe")?
        .with_resilience(Resilience::with_config(
            "arkd-probe",
            &HealthRegistry::new(),
            BreakerConfig {
                failure_threshold: u32::MAX,
                open_for: Duration::from_secs(1),
            },
            Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_millis(500),
            },
        ));

    // Read-only mode: what the probe sees, plus open breakers.
    let r = &config.run;
    let watch = BackendWatch::new();
    let availability = Arc::new(RunAvailability {
        watch: watch.clone(),
        health: health.clone(),
    });
    let probe = ArkProbe::new(
        Arc::new(probe_client),
        watch,
        Duration::from_millis(r.probe_every_ms.max(1)),
        Duration::from_millis(r.probe_timeout_ms.max(1)),
    );

    // The engine: handlers addressed to the current key (when old keys are
    // in grace), read-only mode outermost.
    let previous = crate::rotation::load_previous(&config)?;
    let lightning = crate::ramps::ramp_backends(&config, None, &health)?;
    let builder = crate::wiring::engine_builder(
        &config,
        &store,
        &relay_key,
        &config.nostr_relays,
        ark.clone(),
        &server,
        lightning,
    )
    .await?;
    let engine = crate::rotation::address_current(builder, &relay_key, &previous)?
        .read_only(ReadOnly {
            availability: availability.clone(),
            retry_after: Duration::from_millis(r.deferred_retry_ms.max(1)),
        })
        .build()?;
    let relay_pk: ark_relay_core::PubKey = relay_key.pubkey_hex().parse().context("relay key")?;
    let engine = crate::ops::with_ops(
        engine,
        &config,
        &store,
        relay_pk,
        None,
        &health,
        ark.clone(),
        &server,
    )
    .await?;
    // Hourly L1 settlement on the configured lnd (scheduler role, leader only).
    let engine = crate::settle::with_settlement(engine, &config, &store, None, &health)?;
    crate::rotation::wire_run(
        &config,
        &store,
        &relay_key,
        &previous,
        ark.clone(),
        &server,
        roles,
        &stop,
    )
    .await?;

    // Leadership, heartbeat, grace.
    let ttl = Duration::from_millis(r.leader_ttl_ms);
    let lock: DynLeaderLock = match config.queue_kind() {
        QueueKind::InProcess => Arc::new(MemoryLeaderLock::new(ttl)),
        QueueKind::Redis(url) => Arc::new(
            RedisLeaderLock::connect(&url, &r.redis_prefix, "scheduler", ttl)
                .await
                .with_context(|| format!("connecting the leader lock to {}", redact_url(&url)))?,
        ),
    };
    let mut engine = engine
        .with_roles(roles)
        .with_grace(Duration::from_millis(r.grace_ms))
        .with_leader(lock)
        .with_monitor(Arc::new(probe));
    let holder = engine.scheduler_holder();
    if roles.scheduler {
        if let QueueKind::Redis(url) = config.queue_kind() {
            let bus = RedisBus::connect(&url, &r.redis_prefix)
                .await
                .context("connecting the heartbeat bus")?;
            let every = (ttl / 5).max(Duration::from_millis(200));
            engine = engine.with_periodic(Arc::new(Heartbeat::new(
                Arc::new(bus),
                holder.clone(),
                every,
            )));
        }
    }

    // HTTP, if asked for.
    // Queue and Nostr relay liveness for /health (crate::probes).
    let probes = crate::probes::Probes::default();
    tokio::spawn(probes.clone().run(
        engine.parts().queue.clone(),
        match config.queue_kind() {
            QueueKind::Redis(_) => "redis",
            QueueKind::InProcess => "in-process queue",
        },
        engine.parts().transport.clone(),
        Duration::from_secs(5),
        stop.clone(),
    ));
    let mut http_url = None;
    let mut http_task = None;
    let (http_stop_tx, mut http_stop) = watch::channel(false);
    if let Some(addr) = options.http {
        let api_store: DynStore = Arc::new(store.clone());
        let info = ApiInfo {
            name: "ark-relay".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pubkey: relay_key.pubkey_hex(),
            npub: relay_key.npub()?,
            relays: config.nostr_relays.clone(),
            kinds_consumed: ark_relay_protocol::kinds::CONSUMED.to_vec(),
            encryption: vec!["nip44_v2".to_owned(), "nip04".to_owned()],
            transfer_fee: config.fees.transfer_fee_sats,
            land_fee_ppm: u64::from(config.fees.land_fee_ppm),
            ark: Some(ceremony::server_info_json_with_url(
                &server,
                Some(&ark_config.url),
            )),
            database: store.backend_name().to_owned(),
        };
        let source = availability.clone();
        let probed = probes.clone();
        let router = http::router(
            ApiState::new(api_store, info)
                .with_health(Arc::new(move || {
                    let mut all = source.health();
                    all.extend(probed.snapshot());
                    all
                }))
                .with_metrics(crate::ops::metrics_source(
                    crate::ops::recorder()?,
                    health.clone(),
                ))
                .with_reserves(Arc::new(store.clone()))
                .with_settlements(Arc::new(store.clone()))
                .with_reconciliation(Arc::new(store.clone()))
                .with_renewals(Arc::new(store.clone()), crate::wiring::renewal_fee(&config)),
        );
        let (listener, bound) = http::bind(addr).await?;
        let url = format!("http://{bound}");
        info!(url = %url, "HTTP server listening");
        http_url = Some(url);
        http_task = Some(tokio::spawn(http::serve(listener, router, async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })));
    }

    let facts = RunFacts {
        pid: std::process::id(),
        roles: roles.describe(),
        relay_pubkey: relay_key.pubkey_hex(),
        http_url,
        scheduler_holder: holder,
    };
    let engine_task = tokio::spawn(engine.run(stop.clone()));
    if let Some(path) = &options.ready_file {
        write_ready(path, &facts)?;
    }
    info!(roles = %facts.roles, "running");

    let _ = stop.wait_for(|s| *s).await;
    // The engine drains (grace for in-flight jobs and ticks, lease release,
    // outbox flush); give it a little more than the grace before giving up.
    let limit = Duration::from_millis(r.grace_ms) + Duration::from_secs(10);
    match tokio::time::timeout(limit, engine_task).await {
        Ok(Ok(Ok(()))) => info!("engine stopped"),
        Ok(Ok(Err(e))) => warn!(error = %e, "engine stopped with an error"),
        Ok(Err(e)) => warn!(error = %e, "engine task failed"),
        Err(_) => warn!(?limit, "engine did not stop in time"),
    }
    let _ = http_stop_tx.send(true);
    if let Some(task) = http_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "HTTP server stopped with an error"),
            Err(e) => warn!(error = %e, "HTTP task failed"),
        }
    }
    store.close().await;
    if let Some(path) = &options.ready_file {
        let _ = std::fs::remove_file(path);
    }
    signal_task.abort();
    info!("stopped cleanly");
    Ok(())
}

fn write_ready(path: &std::path::Path, facts: &RunFacts) -> Result<()> {
    let text = serde_json::to_string_pretty(facts).context("serialising the ready file")?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
