//! Wires hourly L1 settlement (PRD §10.4) into the engine: the
//! [`SettlementTask`] over the store and an lnd wallet (the configured `[lnd]`,
//! or `dev`'s lnd simulator, whose wallet builds real transactions on the
//! chain simulator), plus, in `dev`, a block every `dev_block_secs` while the
//! simulated mempool is not empty so commitments confirm and 31342s go out.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_core::backends::chain::L1Chain;
use ark_relay_core::SystemClock;
use ark_relay_engine::settlement::SettlementTask;
use ark_relay_engine::{Engine, Periodic};
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_sim::chain::Chain;
use ark_relay_sim::DaemonEndpoint;
use ark_relay_store::SqlStore;
use tracing::{info, warn};

use crate::config::Config;

/// Adds the settlement task (and in `dev` the block maker) to `engine`'s
/// periodic tasks. `sim` is `dev`'s lnd simulator and chain, if embedded.
pub(crate) fn with_settlement(
    engine: Engine,
    config: &Config,
    store: &SqlStore,
    sim: Option<(DaemonEndpoint, Chain)>,
    health: &HealthRegistry,
) -> Result<Engine> {
    let section = &config.settlement;
    if !section.enabled {
        info!("settlement disabled ([settlement] enabled = false)");
        return Ok(engine);
    }
    let (cfg, chain) = match sim {
        Some((lnd, chain)) => (
            DaemonConfig::new(
                lnd.url.clone(),
                lnd.tls_cert_pem.clone().map(String::into_bytes),
                Some(hex::decode(&lnd.macaroon_hex).context("lnd sim macaroon")?),
            ),
            Some(chain),
        ),
        None => match &config.lnd {
            Some(lnd) => (
                DaemonConfig::new(
                    lnd.url.clone(),
                    Some(lnd.tls_cert.resolve_bytes()?.expose().clone()),
                    Some(lnd.macaroon.resolve_bytes()?.expose().clone()),
                ),
                None,
            ),
            None => {
                warn!("settlement needs [lnd] (or dev's simulator): not running");
                return Ok(engine);
            }
        },
    };
    let wallet: Arc<dyn L1Chain> =
        Arc::new(LndClient::new(&cfg, health).context("lnd client for settlement")?);
    let keys = engine.parts().keys.clone();
    let task = SettlementTask::new(
        Arc::new(store.clone()),
        wallet,
        keys,
        Arc::new(SystemClock),
        section.engine(),
    );
    info!(
        period_secs = section.period_secs,
        "settlement: each period's Merkle root is committed on L1 and announced in 31342"
    );
    let mut engine = engine.with_periodic(Arc::new(task));
    if let (Some(chain), true) = (chain, section.dev_block_secs > 0) {
        engine = engine.with_periodic(Arc::new(DevBlocks {
            chain,
            every: Duration::from_secs(section.dev_block_secs),
        }));
    }
    Ok(engine)
}

/// `dev` only: mines a simulator block when transactions are waiting.
struct DevBlocks {
    chain: Chain,
    every: Duration,
}

#[async_trait::async_trait]
impl Periodic for DevBlocks {
    fn name(&self) -> &'static str {
        "dev-blocks"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn tick(&self) {
        if !self.chain.mempool().is_empty() {
            let height = self.chain.mine(1);
            info!(height, "dev: mined a simulator block");
        }
    }
}
