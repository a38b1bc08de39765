//! The DEX demo of `ark-relay dev` (PRD scenarios 3–4): a `dex` key whose
//! VTXOs hold the seed reserves of the reference DEX (`examples/dex-bot`) in
//! gBTC and gUSD plus a gBTC float for the relay's per-batch fee, with gUSD
//! minted through the tapd simulator and registered in the ledger. What it
//! seeds is written to `dev.json` (`dex`), which `ark-relay-dex-bot
//! --dev-json` reads, so the bot starts with no other argument.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ark_relay_ark::ServerInfo;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, NewAsset, NewVtxo, PubKey, RelayStore, Sats, UnixTime,
    VtxoStatus,
};
use ark_relay_sim::SimStack;
use ark_relay_store::SqlStore;
use serde::Serialize;

use crate::keys::{self, PublicKeyInfo};

/// The pool's seed reserve of gBTC, in base units.
pub const DEX_SEED_BTC: u64 = 100_000;
/// The pool's seed reserve of gUSD, in base units (a price of 650 gUSD per gBTC unit).
pub const DEX_SEED_USD: u64 = 65_000_000;
/// gBTC the pool key holds beyond its reserves, to pay the relay's batch fees.
pub const DEX_FLOAT_BTC: u64 = 1_000;

/// What `dev` seeded for the DEX demo (`dex` in `dev.json`).
#[derive(Debug, Clone, Serialize)]
pub struct DexFacts {
    /// The pool key (name `dex`), its npub and key file.
    #[serde(flatten)]
    pub key: PublicKeyInfo,
    /// gUSD's asset id (minted through the tapd simulator).
    pub usd: AssetId,
    /// The pool's seed reserves (`--seed-btc`, `--seed-usd` of the bot).
    pub seed_btc: u64,
    /// See `seed_btc`.
    pub seed_usd: u64,
    /// gBTC held beyond the reserves, for the relay's fees.
    pub float_btc: u64,
}

/// Mints gUSD on the tapd simulator, registers it, and funds the `dex` key
/// (`<data_dir>/wallets/dex.key`) with the seed reserves and the float.
pub(super) async fn seed(
    store: &SqlStore,
    stack: &SimStack,
    server: &ServerInfo,
    data_dir: &Path,
    gbtc: AssetId,
) -> Result<DexFacts> {
    let key_file: PathBuf = data_dir.join("wallets").join("dex.key");
    let key = keys::load_or_generate(&key_file)?;
    let info = PublicKeyInfo::new("dex", &key)?;
    let owner: PubKey = info.pubkey.parse().context("dex key")?;
    let usd = super::seed::mint_asset(stack, "gUSD", 1_000_000_000_000).await?;
    let now = UnixTime::now();
    store
        .register_asset(
            &NewAsset {
                id: usd,
                name: "Demo dollar".into(),
                ticker: "gUSD".into(),
                asset_type: AssetType::Permissionless,
                decimals: 0,
            },
            now,
        )
        .await
        .context("registering gUSD")?;
    let mut vtxos = Vec::new();
    for (asset, amount) in [(gbtc, DEX_SEED_BTC + DEX_FLOAT_BTC), (usd, DEX_SEED_USD)] {
        // The VTXO holds its asset at arkd too (as if a packet had put it
        // there), so that spending it lists what arkd's indexer reports.
        let v = stack.arkd.fund_with_assets(
            &owner,
            Sats::new(1_000),
            vec![(ark_relay_ark::asset::arkade_id(&asset), amount)],
        );
        vtxos.push(NewVtxo {
            id: v.outpoint.into(),
            owner,
            sats: Sats::new(v.amount),
            colour: Some(Colour {
                asset,
                amount: AssetAmount::new(amount),
            }),
            status: VtxoStatus::Assigned,
            tapscripts: server.default_vtxo(&owner).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&vtxos, now)
        .await
        .context("recording the DEX's VTXOs")?;
    Ok(DexFacts {
        key: info,
        usd,
        seed_btc: DEX_SEED_BTC,
        seed_usd: DEX_SEED_USD,
        float_btc: DEX_FLOAT_BTC,
    })
}
