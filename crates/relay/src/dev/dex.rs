//! The DEX demo of `ark-relay dev` (PRD scenarios 3–4): a `dex` key whose
//! VTXOs hold the seed reserves of the reference DEX (`examples/dex-bot`) in
//! gBTC and gUSD plus a gBTC float for the relay's per-batch fee, with gUSD
//! minted through the tapd simulator and issued on Ark by its genesis. What it
//! seeds is written to `dev.json` (`dex`), which `ark-relay-dex-bot
//! --dev-json` reads, so the bot starts with no other argument.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ark_relay_core::ramp::RampStore;
use ark_relay_core::{AssetAmount, AssetId, AssetType, Colour, PubKey, UnixTime};
use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};
use ark_relay_sim::SimStack;
use ark_relay_store::SqlStore;
use serde::Serialize;

use super::seed::lock;
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
    /// gUSD's asset id: its genesis on Ark (the Taproot Asset minted through
    /// the tapd simulator is linked to it).
    pub usd: AssetId,
    /// The pool's seed reserves (`--seed-btc`, `--seed-usd` of the bot).
    pub seed_btc: u64,
    /// See `seed_btc`.
    pub seed_usd: u64,
    /// gBTC held beyond the reserves, for the relay's fees.
    pub float_btc: u64,
}

/// Mints gUSD on the tapd simulator and issues it on Ark by its genesis
/// (linked to that Taproot Asset, as a lifted Taproot Asset is), then gives
/// the `dex` key (`<data_dir>/wallets/dex.key`) its seed reserves and float
/// by reissuances under the relay's control assets — real Ark colour, so
/// arkd's supply of each asset counts them.
pub(super) async fn seed(
    store: &SqlStore,
    stack: &SimStack,
    issuer: &Issuer,
    data_dir: &Path,
    gbtc: AssetId,
) -> Result<DexFacts> {
    let key_file: PathBuf = data_dir.join("wallets").join("dex.key");
    let key = keys::load_or_generate(&key_file)?;
    let info = PublicKeyInfo::new("dex", &key)?;
    let owner: PubKey = info.pubkey.parse().context("dex key")?;
    let taproot = super::seed::mint_asset(stack, "gUSD", 1_000_000_000_000).await?;
    let usd = issuer
        .genesis(
            &lock("ark-relay dev: gUSD genesis"),
            &GenesisRequest {
                name: "Demo dollar".into(),
                ticker: "gUSD".into(),
                decimals: 0,
                taproot_asset_id: Some(taproot),
                asset_type: AssetType::Permissionless,
            },
        )
        .await
        .context("issuing gUSD on Ark")?
        .asset;
    RampStore::link_taproot_asset(store, &usd, &taproot, UnixTime::now())
        .await
        .context("linking gUSD to its Taproot Asset")?;
    for (asset, amount, what) in [
        (
            gbtc,
            DEX_SEED_BTC + DEX_FLOAT_BTC,
            "ark-relay dev: the DEX's gBTC",
        ),
        (usd, DEX_SEED_USD, "ark-relay dev: the DEX's gUSD"),
    ] {
        let colour = Colour {
            asset,
            amount: AssetAmount::new(amount),
        };
        issuer
            .issue(&lock(what), owner, colour, "lift")
            .await
            .with_context(|| format!("issuing the DEX's {asset}"))?;
    }
    Ok(DexFacts {
        key: info,
        usd,
        seed_btc: DEX_SEED_BTC,
        seed_usd: DEX_SEED_USD,
        float_btc: DEX_FLOAT_BTC,
    })
}
