//! Wiring of the Lightning ramps (lifts and lands, `ark_relay_engine::ramp`)
//! into the binary: the lnd client from `[lnd]` (or the embedded simulator in
//! `dev`), and the `[lightning]` tuning. Without lnd the relay refuses lifts
//! and lands with 1003 and keeps doing everything else.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_core::backends::assets::DynAssets;
use ark_relay_core::backends::lightning::DynLightning;
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::{HealthRegistry, Resilience};
use ark_relay_grpc::tapd::TapdClient;
use ark_relay_sim::DaemonEndpoint;

use crate::config::Config;

/// What the ramps talk to: lnd, and tapd for Taproot Asset lifts.
pub(crate) struct RampBackends {
    /// lnd.
    pub lightning: DynLightning,
    /// tapd, if configured.
    pub assets: Option<DynAssets>,
}

/// The ramps' back ends: the simulators when `dev` embeds them, else the
/// configured `[lnd]` (and `[tapd]`), else none (lifts and lands refused).
pub(crate) fn ramp_backends(
    config: &Config,
    sims: Option<(&DaemonEndpoint, &DaemonEndpoint)>,
    health: &HealthRegistry,
) -> Result<Option<RampBackends>> {
    let Some(lightning) = lightning_client(config, sims.map(|s| s.0), health)? else {
        return Ok(None);
    };
    let tapd = match (sims, &config.tapd) {
        (Some((_, sim)), _) => Some(endpoint_config(sim)?),
        (None, Some(tapd)) => Some(DaemonConfig::new(
            tapd.url.clone(),
            Some(tapd.tls_cert.resolve_bytes()?.expose().clone()),
            Some(tapd.macaroon.resolve_bytes()?.expose().clone()),
        )),
        (None, None) => None,
    };
    let assets = match tapd {
        Some(cfg) => Some(Arc::new(
            TapdClient::with_resilience(&cfg, Resilience::new("tapd", health))
                .context("building the tapd client")?,
        ) as DynAssets),
        None => None,
    };
    Ok(Some(RampBackends { lightning, assets }))
}

fn endpoint_config(sim: &DaemonEndpoint) -> Result<DaemonConfig> {
    Ok(DaemonConfig::new(
        sim.url.clone(),
        sim.tls_cert_pem.clone().map(String::into_bytes),
        Some(hex::decode(&sim.macaroon_hex).context("simulator macaroon")?),
    ))
}

/// The lnd client: the simulator's endpoint when `dev` embeds one, else the
/// configured `[lnd]`, else none.
fn lightning_client(
    config: &Config,
    sim: Option<&DaemonEndpoint>,
    health: &HealthRegistry,
) -> Result<Option<DynLightning>> {
    let cfg = match (sim, &config.lnd) {
        (Some(sim), _) => endpoint_config(sim)?,
        (None, Some(lnd)) => DaemonConfig::new(
            lnd.url.clone(),
            Some(lnd.tls_cert.resolve_bytes()?.expose().clone()),
            Some(lnd.macaroon.resolve_bytes()?.expose().clone()),
        ),
        (None, None) => return Ok(None),
    };
    let client = LndClient::with_resilience(&cfg, Resilience::new("lnd", health))
        .context("building the lnd client")?;
    Ok(Some(Arc::new(client)))
}

/// The ramps' tuning from `[lightning]`.
pub(crate) fn ramp_config(config: &Config) -> ark_relay_engine::ramp::RampConfig {
    let l = &config.lightning;
    ark_relay_engine::ramp::RampConfig {
        invoice_expiry_secs: l.invoice_expiry_secs,
        cltv_expiry: l.cltv_expiry,
        htlc_safety_blocks: l.htlc_safety_blocks,
        min_lift: l.min_lift_sats,
        max_lift: l.max_lift_sats,
        payment_timeout_secs: i32::try_from(l.payment_timeout_secs).unwrap_or(60),
        every: Duration::from_millis(l.drive_every_ms.max(50)),
        ..Default::default()
    }
}
