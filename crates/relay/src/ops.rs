//! Operations wiring shared by `dev` and `run`: the Prometheus recorder and
//! its `/metrics` source, the metrics sampler, and the VTXO inventory
//! monitor with its fee estimators, provisioner and (with `[rounds]`) its
//! boarding and renewal rounds.
//!
//! Inventory replenishment: with an L1 wallet (a configured `[lnd]`, or
//! `dev`'s lnd simulator while `dev` mines blocks) and rounds enabled, the
//! monitor boards (lnd `SendOutputs` pays the relay's boarding address, a
//! round turns it into VTXOs). The arkd simulator's `FundVtxo` provisioner is
//! kept only where no L1 wallet can board: `dev` with `[settlement]` off or
//! `dev_block_secs = 0` (no blocks: a boarding payment would never confirm),
//! and `ark-relay sim` without `[lnd]`. A real `[ark]` never gets the
//! provisioner. `dev`'s demo seed (its first 50 inventory VTXOs) still uses
//! `FundVtxo`, so start-up does not wait for blocks and rounds.
//!
//! This module only wires; the logic lives in `ark_relay_engine::{metrics,
//! inventory}` and the ports in `ark_relay_core`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::backends::chain::L1Chain;
use ark_relay_core::backends::fees::{FeeEstimator, LightningFees, DEFAULT_CONF_TARGET};
use ark_relay_core::inventory::{InventoryStore, VtxoProvisioner};
use ark_relay_core::{DynBus, DynStore, PubKey, Sats, SystemClock};
use ark_relay_engine::inventory::{InventoryConfig, InventoryMonitor};
use ark_relay_engine::metrics::{self, Sampler};
use ark_relay_engine::rounds::{InventoryRounds, InventoryRoundsConfig, RoundJobs};
use ark_relay_engine::Engine;
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::inventory::{ArkdSimProvisioner, ChainSimFees};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_queue::{MemoryBus, RedisBus};
use ark_relay_store::SqlStore;
use bitcoin::key::{Keypair, Secp256k1};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::{redact_url, Config, QueueKind};

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub(crate) fn recorder() -> Result<PrometheusHandle> {
    if let Some(h) = RECORDER.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::name::STEP_SECONDS.to_owned()),
            metrics::STEP_BUCKETS,
        )
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    metrics::describe();
    Ok(RECORDER.get_or_init(|| handle).clone())
}

/// What `GET /metrics` renders: breaker states refreshed from `health`, then
/// every series of the recorder.
pub(crate) fn metrics_source(
    handle: PrometheusHandle,
    health: HealthRegistry,
) -> Arc<dyn ark_relay_api::metrics::MetricsSource> {
    Arc::new(move || {
        for view in health.snapshot() {
            metrics::breaker_state(&view.backend, view.state.as_str());
        }
        handle.render()
    })
}

/// Where the simulators listen, when `dev` embeds them.
pub(crate) struct SimBackends {
    /// arkd simulator URL.
    pub arkd: String,
    /// lnd simulator endpoint (also serves the chain simulator).
    pub lnd: ark_relay_sim::DaemonEndpoint,
}

/// Whether `dev` mines simulator blocks on its own (its settlement task's
/// `dev_block_secs`), so boarding payments confirm.
fn dev_mines_blocks(config: &Config) -> bool {
    config.settlement.enabled && config.settlement.dev_block_secs > 0
}

/// Boarding and renewal settings; on simulators a boarding payment's
/// confirmation is checked every second (their blocks come every second or
/// few), not every 10 s.
fn inventory_rounds_config(config: &Config, simulated: bool) -> InventoryRoundsConfig {
    let mut c = config.rounds.inventory();
    if simulated {
        c.confirm_poll = Duration::from_secs(1);
    }
    c
}

/// Whether the inventory monitor replenishes by boarding (as [`with_ops`]
/// wires it): rounds on and an L1 wallet whose payments confirm.
pub(crate) fn boards(config: &Config, embedded_sims: bool) -> bool {
    config.inventory.enabled
        && config.rounds.enabled
        && if embedded_sims {
            dev_mines_blocks(config)
        } else {
            config.lnd.is_some()
        }
}

/// Adds the metrics sampler and (when enabled) the inventory monitor to the
/// engine's periodic tasks. `ark` lists the relay's VTXOs when an
/// interrupted replenishment is recovered.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn with_ops(
    mut engine: Engine,
    config: &Config,
    store: &SqlStore,
    relay: PubKey,
    sims: Option<SimBackends>,
    health: &HealthRegistry,
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
) -> Result<Engine> {
    let queue = engine.parts().queue.clone();
    engine = engine.with_periodic(Sampler::new(queue, Duration::from_secs(5)));
    if !config.inventory.enabled {
        return Ok(engine);
    }
    let mut fees: Vec<Arc<dyn FeeEstimator>> = Vec::new();
    let mut provisioner: Option<Arc<dyn VtxoProvisioner>> = None;
    // The L1 wallet that pays boarding addresses (lnd `SendOutputs`).
    let mut l1: Option<Arc<dyn L1Chain>> = None;
    match &sims {
        Some(sim) => {
            let cfg = DaemonConfig::new(
                sim.lnd.url.clone(),
                sim.lnd.tls_cert_pem.clone().map(String::into_bytes),
                Some(hex::decode(&sim.lnd.macaroon_hex).context("lnd sim macaroon")?),
            );
            let lnd = Arc::new(LndClient::new(&cfg, health).context("lnd simulator client")?);
            fees.push(Arc::new(LightningFees::new(
                lnd.clone(),
                DEFAULT_CONF_TARGET,
            )));
            fees.push(Arc::new(
                ChainSimFees::new(&cfg).context("chain simulator client")?,
            ));
            if dev_mines_blocks(config) {
                // Boarding payments confirm: dev mines a block every
                // `dev_block_secs` while transactions wait (crate::settle).
                l1 = Some(lnd);
            } else {
                provisioner = Some(Arc::new(
                    ArkdSimProvisioner::new(&sim.arkd).context("arkd simulator admin client")?,
                ));
            }
        }
        None => {
            let ark_sim = config.ark.as_ref().filter(|a| a.simulator);
            if let Some(lnd) = &config.lnd {
                let cfg = DaemonConfig::new(
                    lnd.url.clone(),
                    Some(lnd.tls_cert.resolve_bytes()?.expose().clone()),
                    Some(lnd.macaroon.resolve_bytes()?.expose().clone()),
                );
                let client = Arc::new(LndClient::new(&cfg, health).context("lnd client")?);
                fees.push(Arc::new(LightningFees::new(
                    client.clone(),
                    DEFAULT_CONF_TARGET,
                )));
                l1 = Some(client);
                if ark_sim.is_some() {
                    // `ark-relay sim` serves the chain simulator beside lnd.
                    fees.push(Arc::new(
                        ChainSimFees::new(&cfg).context("chain simulator client")?,
                    ));
                }
            }
            // `ark-relay sim` without an L1 wallet to board with: the same
            // provisioner as `dev`'s. Production arkd creates VTXOs only
            // through a round, funded by the relay's boarding outputs.
            if let (Some(ark), None) = (ark_sim, &l1) {
                provisioner = Some(Arc::new(
                    ArkdSimProvisioner::new(&ark.url).context("arkd simulator admin client")?,
                ));
            }
        }
    }
    let bus: DynBus = match config.queue_kind() {
        QueueKind::InProcess => Arc::new(MemoryBus::new()),
        QueueKind::Redis(url) => Arc::new(
            RedisBus::connect(&url, &config.run.redis_prefix)
                .await
                .with_context(|| format!("connecting the inventory bus to {}", redact_url(&url)))?,
        ),
    };
    // On simulators (`dev`'s embedded ones, or `ark-relay sim` with `[ark]
    // simulator = true`) the PRD's thresholds are scaled down 100× unless
    // [inventory] was set explicitly, so a start does not provision 10 000
    // VTXOs.
    let simulated = sims.is_some() || config.ark.as_ref().is_some_and(|a| a.simulator);
    let scaled;
    let inv = if simulated && config.inventory == crate::config::InventoryConfig::default() {
        scaled = crate::config::InventoryConfig {
            critical: config.inventory.critical / 100,
            warning: config.inventory.warning / 100,
            target: config.inventory.target / 100,
            batch_size: (config.inventory.batch_size / 100).max(1),
            ..config.inventory.clone()
        };
        tracing::info!(
            critical = scaled.critical,
            warning = scaled.warning,
            target = scaled.target,
            "simulated arkd: inventory thresholds scaled down 100x"
        );
        &scaled
    } else {
        &config.inventory
    };
    let dyn_store: DynStore = Arc::new(store.clone());
    let monitor = InventoryMonitor::new(
        dyn_store,
        Arc::new(store.clone()) as Arc<dyn InventoryStore>,
        provisioner,
        fees,
        Some(bus),
        relay,
        Arc::new(SystemClock),
        InventoryConfig {
            policy: inv.policy(),
            every: Duration::from_secs(inv.every_secs.max(1)),
            vtxo_sats: Sats::new(inv.vtxo_sats),
        },
    );
    let mut monitor = monitor.with_recovery(ark.clone(), server.clone());
    if config.rounds.enabled {
        let keys = &engine.parts().keys;
        let keypair = Keypair::from_secret_key(&Secp256k1::signing_only(), keys.secret_key());
        let rounds = InventoryRounds::new(
            RoundJobs::new(Arc::new(store.clone()), Arc::new(SystemClock)),
            ark,
            l1,
            Arc::new(store.clone()),
            server.clone(),
            keypair,
            Arc::new(SystemClock),
            inventory_rounds_config(config, simulated),
        );
        tracing::info!(
            boarding = rounds.can_board(),
            "inventory: renewals through rounds; replenishment by {}",
            if rounds.can_board() {
                "boarding"
            } else {
                "the simulator's provisioner"
            }
        );
        monitor = monitor.with_rounds(Arc::new(rounds));
    }
    Ok(engine.with_periodic(Arc::new(monitor)))
}
