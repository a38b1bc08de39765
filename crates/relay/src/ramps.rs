//! Wiring of the Lightning ramps (lifts and lands, `ark_relay_engine::ramp`)
//! into the binary: the lnd client from `[lnd]` (or the embedded simulator in
//! `dev`), and the `[lightning]` tuning. Without lnd the relay refuses lifts
//! and lands with 1003 and keeps doing everything else.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_core::backends::assets::DynAssets;
use ark_relay_core::backends::lightning::DynLightning;
use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};
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

/// Creates gBTC on a relay's first start (PRD §7): mints it through tapd
/// (`MintAsset`, `FinalizeBatch`) and, once tapd lists it (after the genesis
/// transaction confirms), issues it on Ark ([`Issuer::genesis`]: one
/// relay-signed ark tx issuing gBTC under a control asset the relay holds,
/// with metadata naming the Taproot Asset), which registers it as the
/// relay-issued asset under its Arkade id. A scheduler task, so only the
/// leader mints; resumable (the genesis runs under a fixed lock); it does
/// nothing once the genesis completed, or when gBTC was registered before
/// genesis on Ark existed (a bridged gBTC: its lifts stay bridged).
pub(crate) struct GbtcGenesis {
    store: ark_relay_core::DynStore,
    ramp: ark_relay_core::ramp::DynRampStore,
    tapd: DynAssets,
    issuer: Issuer,
    minted: std::sync::atomic::AtomicBool,
    done: std::sync::atomic::AtomicBool,
}

impl GbtcGenesis {
    pub(crate) fn new(
        store: ark_relay_core::DynStore,
        ramp: ark_relay_core::ramp::DynRampStore,
        tapd: DynAssets,
        ark: Arc<dyn ark_relay_core::backends::ark::ArkServer>,
        keys: &nostr::Keys,
    ) -> Self {
        let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
            &bitcoin::secp256k1::Secp256k1::signing_only(),
            keys.secret_key(),
        );
        let issuer = Issuer::new(
            store.clone(),
            ark,
            keypair,
            Arc::new(ark_relay_core::SystemClock),
        );
        Self {
            store,
            ramp,
            tapd,
            issuer,
            minted: std::sync::atomic::AtomicBool::new(false),
            done: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The lock the genesis of gBTC runs under (the same on every start).
    fn lock() -> ark_relay_core::SessionId {
        use bitcoin::hashes::{sha256, Hash};
        ark_relay_core::SessionId::from_bytes(
            sha256::Hash::hash(b"ark-relay: gBTC genesis on Ark").to_byte_array(),
        )
    }

    async fn step(&self) -> Result<bool> {
        use ark_relay_core::backends::assets::MintRequest;
        use ark_relay_core::AssetType;
        use std::sync::atomic::Ordering;
        if self.done.load(Ordering::SeqCst) {
            return Ok(true);
        }
        let assets = self.store.assets().await.context("reading the assets")?;
        if assets
            .iter()
            .any(|a| a.asset_type == AssetType::RelayIssued)
        {
            let ours = self
                .issuer
                .started(&Self::lock())
                .await
                .map_err(|e| anyhow::anyhow!("reading the gBTC genesis: {e}"))?;
            if !ours {
                // Registered otherwise (by `dev`, or before genesis on Ark
                // existed: a bridged gBTC): nothing to do.
                self.done.store(true, Ordering::SeqCst);
                return Ok(true);
            }
            // Our genesis started: resume it to its end below.
        }
        let listed = self.tapd.list_assets().await.context("tapd ListAssets")?;
        if let Some(g) = listed.iter().find(|a| a.name == GBTC_NAME) {
            let request = GenesisRequest {
                name: "Relay-issued BTC".into(),
                ticker: GBTC_NAME.into(),
                decimals: 0,
                taproot_asset_id: Some(g.asset_id),
                asset_type: AssetType::RelayIssued,
            };
            let genesis = self
                .issuer
                .genesis(&Self::lock(), &request)
                .await
                .map_err(|e| anyhow::anyhow!("gBTC genesis on Ark: {e}"))?;
            // The Taproot Asset it stands for, as for lifted Taproot Assets.
            self.ramp
                .link_taproot_asset(&genesis.asset, &g.asset_id, ark_relay_core::UnixTime::now())
                .await
                .context("linking gBTC to its Taproot Asset")?;
            tracing::info!(asset = %genesis.asset, taproot_asset = %g.asset_id, "gBTC issued on Ark and registered");
            self.done.store(true, Ordering::SeqCst);
            return Ok(true);
        }
        if !self.minted.swap(true, Ordering::SeqCst) {
            tracing::info!("minting gBTC through tapd (first start)");
            self.tapd
                .mint_asset(MintRequest {
                    name: GBTC_NAME.into(),
                    // The whole possible supply, held by the relay's tapd; the
                    // ledger issues colour only against received BTC.
                    amount: ark_relay_core::AssetAmount::new(21_000_000 * 100_000_000),
                    meta: b"Ark Relay gBTC: 1 unit = 1 sat, backed 1:1".to_vec(),
                    decimal_display: 0,
                })
                .await
                .context("tapd MintAsset")?;
            self.tapd
                .finalize_batch(0)
                .await
                .context("tapd FinalizeBatch")?;
        }
        Ok(false)
    }
}

/// The gBTC ticker (and tapd asset name).
const GBTC_NAME: &str = "gBTC";

#[async_trait::async_trait]
impl ark_relay_engine::Periodic for GbtcGenesis {
    fn name(&self) -> &'static str {
        "gbtc-genesis"
    }

    /// Often enough that gBTC appears seconds after its genesis block; a
    /// tick after registration is one database read.
    fn every(&self) -> Duration {
        Duration::from_secs(5)
    }

    async fn tick(&self) {
        match self.step().await {
            Ok(_) => {}
            Err(e) => {
                // Mint again on the next tick if the mint itself failed.
                self.minted
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(error = %format!("{e:#}"), "gBTC genesis step failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ark_relay_core::AssetType;
    use ark_relay_engine::Periodic;
    use ark_relay_sim::{SimOptions, SimStack};

    #[tokio::test]
    async fn gbtc_is_minted_through_tapd_once_then_issued_on_ark_after_confirmation() {
        use ark_relay_core::backends::ark::ArkServer;
        use ark_relay_core::{NewVtxo, PubKey, Sats, UnixTime, VtxoStatus};
        let db = ark_relay_store::testing::TestDb::sqlite().await.unwrap();
        let store: ark_relay_core::DynStore = Arc::new(db.store.clone());
        let stack = SimStack::start(SimOptions::default()).await.unwrap();
        let tapd: DynAssets = Arc::new(
            TapdClient::new(
                &endpoint_config(&stack.endpoints().tapd).unwrap(),
                &HealthRegistry::new(),
            )
            .unwrap(),
        );
        let ark = Arc::new(
            ark_relay_grpc::arkd::ArkdClient::connect(stack.endpoints().arkd)
                .await
                .unwrap(),
        );
        let server = crate::wiring::ark_server_info(ark.as_ref()).await.unwrap();
        let keys = nostr::Keys::generate();
        let relay: PubKey = keys.public_key().to_hex().parse().unwrap();
        let v = stack.arkd.fund(&relay, Sats::new(5_000));
        store
            .insert_vtxos(
                &[NewVtxo {
                    id: v.outpoint.into(),
                    owner: relay,
                    sats: Sats::new(v.amount),
                    colour: None,
                    status: VtxoStatus::Available,
                    tapscripts: server.default_vtxo(&relay).to_tapscripts(),
                    expires_at: Some(UnixTime(v.expires_at)),
                }],
                UnixTime::now(),
            )
            .await
            .unwrap();
        let genesis = GbtcGenesis::new(
            store.clone(),
            Arc::new(db.store.clone()),
            tapd.clone(),
            ark.clone(),
            &keys,
        );
        genesis.tick().await; // mints; not confirmed yet
        assert!(store.assets().await.unwrap().is_empty());
        genesis.tick().await; // no second mint while waiting
        stack.chain.mine(1);
        genesis.tick().await; // listed: issued on Ark and registered
        let assets = store.assets().await.unwrap();
        assert_eq!(assets.len(), 2, "gBTC and its control asset: {assets:?}");
        let gbtc = assets
            .iter()
            .find(|a| a.asset_type == AssetType::RelayIssued)
            .unwrap();
        assert_eq!(gbtc.ticker, "gBTC");
        let arkade = ark_relay_ark::asset::arkade_id(&gbtc.id).to_string();
        let at_arkd = ark.get_asset(&arkade).await.unwrap();
        assert_eq!(
            at_arkd.control_asset,
            Some(ark_relay_ark::asset::control_arkade_id(&gbtc.id).to_string())
        );
        let minted: Vec<_> = tapd
            .list_assets()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.name == "gBTC")
            .collect();
        assert_eq!(minted.len(), 1, "minted exactly once");
        let metadata =
            ark_relay_ark::asset::decode_metadata(&hex::decode(&at_arkd.metadata_hex).unwrap())
                .unwrap();
        assert!(metadata.contains(&(
            ark_relay_ark::asset::meta::TAPROOT_ASSET_ID.to_owned(),
            minted[0].asset_id.to_string()
        )));
        // ... and the ledger links it to that Taproot Asset (tapd's side).
        let linked = ark_relay_core::ramp::RampStore::taproot_of_asset(&db.store, &gbtc.id)
            .await
            .unwrap();
        assert_eq!(linked, Some(minted[0].asset_id));
        genesis.tick().await; // done: nothing more
        assert_eq!(store.assets().await.unwrap().len(), 2);
        stack.stop().await;
        db.destroy().await;
    }
}
