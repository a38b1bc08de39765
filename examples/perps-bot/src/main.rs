//! `perps-bot`: runs the perpetuals DEX (see the library docs) against a relay.
//!
//! ```sh
//! ark-relay dev                                   # in another terminal
//! cargo run -p ark-relay-oracle -- --dev-json data/dev.json --key-file oracle.key \
//!     --source file:prices.txt --interval-secs 5  # in another terminal
//! cargo run -p ark-relay-perps-bot -- --dev-json data/dev.json \
//!     --oracle <the oracle's public key>
//! ```
//!
//! Without `--key-file` it uses the DEX key `ark-relay dev` seeded (dev.json's
//! `dex`), which holds gBTC for the relay's fees and for paying profits.
//! Every flag has an environment variable (`PERPS_…`, see `--help`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ark_relay_core::{AssetId, PubKey};
use ark_relay_perps_bot::{Perps, PerpsConfig};
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_wallet::{Wallet, WalletOptions};
use clap::Parser;
use tokio::sync::watch;

/// The reference perpetuals DEX for Ark Relay.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The `dev.json` of a running `ark-relay dev` (relay key, Nostr relays, DEX key).
    #[arg(long, env = "PERPS_DEV_JSON")]
    dev_json: Option<PathBuf>,
    /// The relay's public key (hex or npub), without `--dev-json`.
    #[arg(long, env = "PERPS_RELAY_PUBKEY")]
    relay_pubkey: Option<String>,
    /// Nostr relay URLs (repeatable or comma-separated), without `--dev-json`.
    #[arg(
        long = "nostr-relay",
        env = "PERPS_NOSTR_RELAYS",
        value_delimiter = ','
    )]
    nostr_relays: Vec<String>,
    /// The DEX's secret key file (hex or nsec; else dev.json's `dex` key, else `$ARK_WALLET_KEY`).
    #[arg(long, env = "PERPS_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The oracle whose prices mark and liquidate positions (hex or npub).
    #[arg(long, env = "PERPS_ORACLE")]
    oracle: String,
    /// The margin asset's id (default: gBTC, learnt from the DEX's own VTXOs).
    #[arg(long, env = "PERPS_MARGIN_ASSET")]
    margin_asset: Option<AssetId>,
    /// Maintenance margin in basis points of notional.
    #[arg(long, env = "PERPS_MAINTENANCE_BPS", default_value_t = 50)]
    maintenance_bps: u32,
    /// Highest leverage offered.
    #[arg(long, env = "PERPS_MAX_LEVERAGE", default_value_t = 20)]
    max_leverage: u32,
    /// Oldest usable price, seconds (keep it below the relay's `max_price_age_secs`).
    #[arg(long, env = "PERPS_MAX_PRICE_AGE", default_value_t = 60)]
    max_price_age: i64,
    /// Where liquidations send the margin (hex or npub): another key than
    /// the DEX's (a liquidation pays it from the DEX's coins).
    #[arg(long, env = "PERPS_INSURANCE_FUND")]
    insurance_fund: String,
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    relay_pubkey: String,
    #[serde(default)]
    nostr_relays: Vec<String>,
    #[serde(default)]
    dex: Option<DevDex>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct DevDex {
    key_file: PathBuf,
}

fn read_dev_json(path: &Path) -> Result<DevJson> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is `ark-relay dev` running?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse_pubkey(text: &str) -> Result<PubKey> {
    let k = nostr::PublicKey::parse(text.trim()).map_err(|e| anyhow!("key {text:?}: {e}"))?;
    pubkey_from_nostr(&k).ok_or_else(|| anyhow!("key {text:?} is not valid"))
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
    let relay = match (&cli.relay_pubkey, &dev) {
        (Some(k), _) => parse_pubkey(k)?,
        (None, Some(d)) => parse_pubkey(&d.relay_pubkey)?,
        (None, None) => bail!("pass --dev-json <path> or --relay-pubkey <key>"),
    };
    let relays = if cli.nostr_relays.is_empty() {
        dev.as_ref()
            .map(|d| d.nostr_relays.clone())
            .unwrap_or_default()
    } else {
        cli.nostr_relays.clone()
    };
    if relays.is_empty() {
        bail!("no Nostr relay: pass --nostr-relay <ws://…> or --dev-json <path>");
    }
    let key_file = cli
        .key_file
        .clone()
        .or(dev.as_ref().and_then(|d| d.dex.clone()).map(|d| d.key_file));
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
    let margin_asset = match cli.margin_asset {
        Some(id) => id,
        None => wallet
            .sync()
            .await
            .map_err(|e| anyhow!("sync: {e}"))?
            .iter()
            .find(|v| v.ticker.as_deref() == Some("gBTC"))
            .and_then(|v| v.asset_id)
            .ok_or_else(|| anyhow!("pass --margin-asset: the DEX holds no gBTC to learn its id"))?,
    };
    let oracle = parse_pubkey(&cli.oracle)?;
    let insurance_fund = parse_pubkey(&cli.insurance_fund)?;
    if insurance_fund == wallet.pubkey() {
        bail!("--insurance-fund must be another key than the DEX's");
    }
    let perps = Arc::new(Perps::new(
        wallet,
        keys.clone(),
        PerpsConfig {
            oracle,
            margin_asset,
            maintenance_margin_bps: cli.maintenance_bps,
            max_leverage: cli.max_leverage,
            max_price_age: cli.max_price_age,
            insurance_fund,
            fee: params.transfer_fee,
            quote_ttl: Duration::from_secs(120),
            settle_timeout: Duration::from_secs(120),
        },
    ));
    let spare = perps
        .recover_tokens()
        .await
        .map_err(|e| anyhow!("the DEX's position tokens: {e}"))?;
    tracing::info!(dex = %keys.public_key().to_hex(), %oracle, spare, "perps-bot serving");
    let (stop, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(perps.clone().serve(relays.clone(), stop_rx.clone()));
    let following = tokio::spawn(perps.follow_oracle(relays, stop_rx));
    tokio::signal::ctrl_c().await?;
    tracing::info!("perps-bot stopping");
    let _ = stop.send(true);
    serving.abort();
    following.abort();
    Ok(())
}
