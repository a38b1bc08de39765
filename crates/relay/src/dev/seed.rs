//! `dev`'s demo seed: gBTC minted on the tapd simulator and issued on Ark
//! under the relay's control asset, the relay's starting inventory and
//! `alice`'s demo gBTC.

use std::sync::Arc;

use anyhow::{Context, Result};
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{AssetId, PubKey, RelayStore};
use ark_relay_sim::{ArkdSim, SimStack};
use ark_relay_store::SqlStore;

use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};

use crate::keys::KeyFile;

/// Mints gBTC through the tapd simulator's gRPC API, as the relay would
/// through a real tapd (MintAsset, FinalizeBatch, one block), and returns
/// its asset id.
pub(super) async fn mint_gbtc(stack: &SimStack) -> Result<AssetId> {
    mint_asset(stack, "gBTC", 21_000_000 * 100_000_000).await
}

/// Mints `amount` units of the asset `name` through the tapd simulator.
pub(super) async fn mint_asset(stack: &SimStack, name: &str, amount: u64) -> Result<AssetId> {
    use ark_relay_core::backends::assets::{Assets, MintRequest};
    use ark_relay_grpc::daemon::DaemonConfig;
    use ark_relay_grpc::resilience::HealthRegistry;
    use ark_relay_grpc::tapd::TapdClient;
    let tapd = stack.endpoints().tapd;
    let cfg = DaemonConfig::new(
        tapd.url,
        tapd.tls_cert_pem.map(String::into_bytes),
        Some(hex::decode(&tapd.macaroon_hex).context("tapd macaroon")?),
    );
    let client = TapdClient::new(&cfg, &HealthRegistry::new()).context("tapd client")?;
    client
        .mint_asset(MintRequest {
            name: name.into(),
            amount: ark_relay_core::AssetAmount::new(amount),
            meta: format!("Ark Relay {name} (dev)").into_bytes(),
            decimal_display: 0,
        })
        .await
        .context("tapd MintAsset")?;
    client
        .finalize_batch(0)
        .await
        .context("tapd FinalizeBatch")?;
    stack.chain.mine(1);
    let assets = client.list_assets().await.context("tapd ListAssets")?;
    assets
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.asset_id)
        .with_context(|| format!("tapd did not list the minted {name}"))
}

/// Units of gBTC the demo wallet `alice` starts with.
pub const DEMO_GBTC: u64 = 100_000;
/// VTXOs of 10 000 sats the relay's inventory starts with in `dev`.
pub const DEMO_INVENTORY: usize = 50;

/// Funds the dev demo on the in-process arkd simulator and records it in the
/// ledger: the relay's inventory of uncoloured VTXOs, gBTC issued on Ark by
/// the relay (its genesis: a control asset the relay holds, metadata naming
/// its Taproot Asset `taproot`), and `alice`'s gBTC, issued to her by a
/// reissuance under that control asset. Returns gBTC's (Arkade) asset id and
/// the relay's issuer, which seeds the DEX demo the same way.
pub(super) async fn seed_demo(
    store: &SqlStore,
    sim: &ArkdSim,
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
    relay_key: &KeyFile,
    alice_hex: &str,
    taproot: AssetId,
) -> Result<(AssetId, Issuer)> {
    use ark_relay_core::{
        AssetAmount, AssetType, Colour, NewVtxo, Sats, SystemClock, UnixTime, VtxoStatus,
    };
    let relay: PubKey = relay_key.pubkey_hex().parse().context("relay key")?;
    let now = UnixTime::now();
    let mut vtxos = Vec::new();
    for _ in 0..DEMO_INVENTORY {
        let v = sim.fund(&relay, Sats::new(10_000));
        vtxos.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay,
            sats: Sats::new(v.amount),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&vtxos, now)
        .await
        .context("recording the relay's inventory")?;
    let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::signing_only(),
        relay_key.keys.secret_key(),
    );
    let issuer = Issuer::new(Arc::new(store.clone()), ark, keypair, Arc::new(SystemClock));
    let genesis = issuer
        .genesis(
            &lock("ark-relay dev: gBTC genesis"),
            &GenesisRequest {
                name: "Relay-issued BTC".into(),
                ticker: "gBTC".into(),
                decimals: 0,
                taproot_asset_id: Some(taproot),
                asset_type: AssetType::RelayIssued,
            },
        )
        .await
        .context("issuing gBTC on Ark")?;
    ark_relay_core::ramp::RampStore::link_taproot_asset(store, &genesis.asset, &taproot, now)
        .await
        .context("linking gBTC to its Taproot Asset")?;
    if let Ok(alice) = alice_hex.parse::<PubKey>() {
        let colour = Colour {
            asset: genesis.asset,
            amount: AssetAmount::new(DEMO_GBTC),
        };
        issuer
            .issue(&lock("ark-relay dev: alice's gBTC"), alice, colour, "lift")
            .await
            .context("issuing alice's demo gBTC")?;
    }
    Ok((genesis.asset, issuer))
}

/// The fixed lock of one step of the demo seed (named by `what`), so a
/// restarted `dev` on the same data dir resumes it instead of repeating it.
pub(super) fn lock(what: &str) -> ark_relay_core::SessionId {
    use bitcoin::hashes::{sha256, Hash};
    ark_relay_core::SessionId::from_bytes(sha256::Hash::hash(what.as_bytes()).to_byte_array())
}
