//! Engine wiring shared by every entry point (`dev`, `run`, the single
//! roles, the previous keys' engines): connects the ports the configuration
//! names — the Nostr relay pool, the in-process or Redis queue and bus, the
//! ramps' lnd/tapd — and hands them to the engine crate's
//! [`EngineBuilder`], which assembles the handlers (and, with `[rounds]`,
//! the round runner and the delegated renewals). Wiring only: no protocol
//! logic, and nothing here knows which command is running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{DynBus, DynQueue, DynStore, QueueConfig, SystemClock};
use ark_relay_engine::builder::{
    EngineBuilder, EnginePorts, Identity, RampPorts, RenewalPorts, RoundPorts,
};
use ark_relay_engine::ceremony::CeremonyConfig;
use ark_relay_engine::EngineConfig;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_queue::{MemoryBus, MemoryQueue, RedisBus, RedisQueue};
use ark_relay_store::SqlStore;

use crate::config::{redact_url, Config, QueueKind};
use crate::keys::KeyFile;

/// The queue tuning from `[run]`.
pub(crate) fn queue_config(config: &Config) -> QueueConfig {
    QueueConfig {
        reclaim_after: Duration::from_secs(config.run.reclaim_after_secs.max(1)),
        max_attempts: config.run.max_attempts,
    }
}

/// The renewal fee `/info` publishes (0 when renewals are off).
pub(crate) fn renewal_fee(config: &Config) -> u64 {
    if config.rounds.enabled && config.renewal.enabled {
        config.renewal.fee_sats
    } else {
        0
    }
}

/// The Ark server's parameters, from its GetInfo.
pub(crate) async fn ark_server_info(ark: &dyn ArkServer) -> Result<ServerInfo> {
    let info = ark.get_info().await.context("arkd GetInfo")?;
    let delay = ark_relay_ark::RelativeLocktime::from_server_value(info.unilateral_exit_delay)
        .context("arkd's unilateral exit delay")?;
    ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript.clone(),
        delay,
        info.dust,
        info.network,
    )
    .context("arkd's parameters")
}

/// Jobs and notifications: in-process by default, Redis Streams and
/// pub/sub (channel `ark-relay:ingest`) when `redis_url` is set.
async fn queue_and_bus(config: &Config) -> Result<(DynQueue, DynBus)> {
    Ok(match config.queue_kind() {
        QueueKind::InProcess => (
            Arc::new(MemoryQueue::new(QueueConfig::default())),
            Arc::new(MemoryBus::new()),
        ),
        QueueKind::Redis(url) => {
            let shown = redact_url(&url);
            let prefix = &config.run.redis_prefix;
            let queue = RedisQueue::connect(&url, prefix, queue_config(config))
                .await
                .with_context(|| format!("connecting to Redis at {shown}"))?;
            let bus = RedisBus::connect(&url, prefix)
                .await
                .with_context(|| format!("connecting to Redis pub/sub at {shown}"))?;
            (Arc::new(queue), Arc::new(bus))
        }
    })
}

/// The engine of `relay_key` from the configuration: a transport over
/// `nostr_relays`, the configured queue, the store, arkd, and the ramps when
/// there is an lnd (plus gBTC's genesis when there is a tapd). Callers add
/// the addressing of key rotation and read-only mode, then build.
pub(crate) async fn engine_builder(
    config: &Config,
    store: &SqlStore,
    relay_key: &KeyFile,
    nostr_relays: &[String],
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
    ramp_backends: Option<crate::ramps::RampBackends>,
) -> Result<EngineBuilder> {
    let keys = relay_key.keys.clone();
    let pool = PoolOptions {
        catch_up_every: Duration::from_millis(config.run.catch_up_every_ms.max(100)),
        ..PoolOptions::new(nostr_relays.to_vec())
    };
    let transport = PoolTransport::connect(keys.public_key(), pool)
        .await
        .context("connecting to the Nostr relays")?;
    let (queue, bus) = queue_and_bus(config).await?;
    let dyn_store: DynStore = Arc::new(store.clone());
    let ports = EnginePorts {
        store: dyn_store.clone(),
        queue,
        bus: Some(bus),
        transport: Arc::new(transport),
        ark: ark.clone(),
        clock: Arc::new(SystemClock),
    };
    let identity = Identity {
        keys,
        relays: nostr_relays.to_vec(),
        transfer_fee: config.fees.transfer_fee_sats,
        land_fee_ppm: u64::from(config.fees.land_fee_ppm),
        server: server.clone(),
    };
    let ceremony = CeremonyConfig {
        session_ttl_secs: i64::try_from(config.session.expiry_secs).unwrap_or(900),
        step_timeout_secs: i64::try_from(config.session.step_timeout_secs).unwrap_or(60),
    };
    let engine = EngineConfig {
        workers: config.run.workers.max(1),
        max_attempts: config.run.max_attempts,
        ingest_rate_limit: (config.run.rate_limit_events > 0).then(|| {
            ark_relay_engine::ingest::limit::RateLimit {
                events: config.run.rate_limit_events,
                window: Duration::from_secs(config.run.rate_limit_window_secs.max(1)),
            }
        }),
        // Checked by `Config::validate` at start-up.
        ingest_rate_limit_per_key: config.run.rate_limit_keys().unwrap_or_default(),
        queue_high_water: config.run.queue_high_water,
        ..EngineConfig::default()
    };
    // Heartbeats: a live worker keeps the job in hand; a dead one's job goes
    // to another worker `reclaim_after` after its last heartbeat.
    let heartbeat = (queue_config(config).reclaim_after / 3).max(Duration::from_millis(100));
    let mut builder = EngineBuilder::new(ports, identity, ceremony, engine)
        .with_heartbeat(heartbeat)
        .with_issue_budget(config.inventory.issue_budget())
        .with_conditional(ark_relay_engine::conditional::ConditionalConfig {
            max_price_age_secs: i64::try_from(config.conditional.max_price_age_secs)
                .unwrap_or(i64::MAX),
        });
    // Reconciliation with the arkd indexer: disputed inputs refused (2006),
    // the periodic run on the scheduler leader.
    if let Some(ark) = &config.ark {
        builder = builder.with_ark_url(ark.url.clone());
    }
    let every = config.run.reconcile_every_secs;
    builder = builder.with_reconciliation(
        Arc::new(store.clone()),
        (every > 0).then(|| Duration::from_secs(every)),
    );
    // Ark batch rounds (scheduler leader) and delegated renewals
    // (`[rounds]`, `[renewal]`; the inventory's boarding is wired by
    // crate::ops).
    if config.rounds.enabled {
        builder = builder.with_rounds(RoundPorts {
            rounds: Arc::new(store.clone()),
            config: config.rounds.runner(),
            renewal: config.renewal.enabled.then(|| RenewalPorts {
                store: Arc::new(store.clone()),
                unspent: Arc::new(store.clone()),
                config: config.renewal.service(),
            }),
        });
    }
    // Lifts and lands, when there is an lnd (crate::ramps).
    if let Some(b) = ramp_backends {
        if let Some(tapd) = &b.assets {
            builder = builder.with_periodic(Arc::new(crate::ramps::GbtcGenesis::new(
                dyn_store.clone(),
                Arc::new(store.clone()),
                tapd.clone(),
                ark,
                &relay_key.keys,
            )));
        }
        builder = builder.with_ramps(RampPorts {
            lightning: b.lightning,
            assets: b.assets,
            store: Arc::new(store.clone()),
            config: crate::ramps::ramp_config(config),
            reserve_every: Duration::from_secs(config.lightning.reserve_every_secs.max(1)),
        });
    }
    Ok(builder)
}
