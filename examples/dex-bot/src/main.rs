//! `dex-bot`: runs the reference DEX (see the library docs) against a relay.
//!
//! ```sh
//! ark-relay dev                                   # in another terminal
//! cargo run -p ark-relay-dex-bot -- --dev-json data/dev.json
//! # or, against any relay:
//! cargo run -p ark-relay-dex-bot -- --relay-pubkey <npub> --nostr-relay <ws://…> \
//!     --key-file dex.key --usd <gUSD asset id> --seed-btc 100000 --seed-usd 65000000
//! ```
//!
//! The pool key must already hold the seed reserves (plus a little gBTC for
//! the relay's fees); `ark-relay dev` seeds such a key and writes it, gUSD's
//! id and the reserves to `dev.json` (`dex`), which are this command's
//! defaults. The bot prints its key and the LP token's id, then serves quotes
//! and trades until Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ark_relay_core::AssetId;
use ark_relay_dex_bot::{Dex, Pool};
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_wallet::{Wallet, WalletOptions};
use clap::Parser;
use tokio::sync::watch;

/// The reference DEX server for Ark Relay.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The `dev.json` of a running `ark-relay dev` (relay key and Nostr relays).
    #[arg(long)]
    dev_json: Option<PathBuf>,
    /// The relay's public key (hex or npub), without `--dev-json`.
    #[arg(long)]
    relay_pubkey: Option<String>,
    /// Nostr relay URLs (repeatable), without `--dev-json`.
    #[arg(long = "nostr-relay")]
    nostr_relays: Vec<String>,
    /// The pool's secret key (hex or nsec; else dev.json's `dex` key, else `$ARK_WALLET_KEY`).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// gBTC's asset id (default: learnt from the pool's own VTXOs).
    #[arg(long)]
    btc: Option<AssetId>,
    /// gUSD's asset id (default: dev.json's `dex.usd`).
    #[arg(long)]
    usd: Option<AssetId>,
    /// Seed reserves of the pool, in base units (default: dev.json's `dex`).
    #[arg(long)]
    seed_btc: Option<u64>,
    /// Seed reserves of the pool, in base units (default: dev.json's `dex`).
    #[arg(long)]
    seed_usd: Option<u64>,
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    relay_pubkey: String,
    #[serde(default)]
    nostr_relays: Vec<String>,
    /// The DEX demo `ark-relay dev` seeded.
    #[serde(default)]
    dex: Option<DevDex>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct DevDex {
    key_file: PathBuf,
    usd: AssetId,
    seed_btc: u64,
    seed_usd: u64,
}

fn read_dev_json(path: &Path) -> Result<DevJson> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is `ark-relay dev` running?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dev = cli.dev_json.as_deref().map(read_dev_json).transpose()?;
    let demo = dev.as_ref().and_then(|d| d.dex.clone());
    let need =
        |what: &str| anyhow!("pass {what} (or --dev-json of an `ark-relay dev` with its DEX demo)");
    let usd = cli
        .usd
        .or(demo.as_ref().map(|d| d.usd))
        .ok_or_else(|| need("--usd"))?;
    let seed_btc = cli
        .seed_btc
        .or(demo.as_ref().map(|d| d.seed_btc))
        .ok_or_else(|| need("--seed-btc"))?;
    let seed_usd = cli
        .seed_usd
        .or(demo.as_ref().map(|d| d.seed_usd))
        .ok_or_else(|| need("--seed-usd"))?;
    let key_file = cli.key_file.clone().or(demo.map(|d| d.key_file));
    let relay_text = match (&cli.relay_pubkey, &dev) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => d.relay_pubkey.clone(),
        (None, None) => bail!("pass --dev-json <path> or --relay-pubkey <key>"),
    };
    let relay_key = nostr::PublicKey::parse(relay_text.trim())
        .map_err(|e| anyhow!("relay key {relay_text:?}: {e}"))?;
    let relay = pubkey_from_nostr(&relay_key).ok_or_else(|| anyhow!("relay key is not valid"))?;
    let relays = if cli.nostr_relays.is_empty() {
        dev.map(|d| d.nostr_relays).unwrap_or_default()
    } else {
        cli.nostr_relays
    };
    if relays.is_empty() {
        bail!("no Nostr relay: pass --nostr-relay <ws://…> or --dev-json <path>");
    }
    let keys = ark_relay_wallet::keys::load_keys(key_file.as_deref()).map_err(|e| anyhow!(e))?;
    let wallet = Wallet::connect(
        keys.clone(),
        relay,
        relays.clone(),
        WalletOptions::default(),
    )
    .await
    .map_err(|e| anyhow!("wallet: {e}"))?;
    let params = wallet
        .params()
        .await
        .map_err(|e| anyhow!("get_info: {e}"))?;
    let btc = match cli.btc {
        Some(id) => id,
        None => wallet
            .sync()
            .await
            .map_err(|e| anyhow!("sync: {e}"))?
            .iter()
            .find(|v| v.ticker.as_deref() == Some("gBTC"))
            .and_then(|v| v.asset_id)
            .ok_or_else(|| anyhow!("pass --btc: the pool holds no gBTC to learn its id from"))?,
    };
    let lp = ark_relay_dex_bot::lp_token(&wallet)
        .await
        .map_err(|e| anyhow!("the LP token (issue_asset): {e}"))?;
    let dex = Arc::new(Dex::new(
        wallet,
        keys.clone(),
        btc,
        usd,
        lp,
        Pool::seeded(seed_btc, seed_usd),
        params.transfer_fee,
    ));
    tracing::info!(pool = %keys.public_key().to_hex(), lp = %dex.lp_asset(), "dex-bot serving");
    let (stop, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(dex.serve(relays, stop_rx));
    tokio::signal::ctrl_c().await?;
    let _ = stop.send(true);
    serving.abort();
    Ok(())
}
