//! `oracle`: publishes medianised prices (kind 30420, `d` = pair) to Nostr
//! relays until Ctrl-C (see the library docs).
//!
//! ```sh
//! ark-relay dev                                      # in another terminal
//! echo "BTC/USD 65432.10" > prices.txt; echo "ETH/USD 3500" >> prices.txt
//! cargo run -p ark-relay-oracle -- --dev-json data/dev.json \
//!     --key-file oracle.key --source file:prices.txt --interval-secs 5
//! ```
//!
//! Every flag has an environment variable (`ORACLE_…`, see `--help`). A key
//! file that does not exist yet is created with a fresh key; the oracle's
//! public key is logged at start (it is what users name as
//! `liquidation_oracle`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_oracle::{
    parse_price, FixedSource, Oracle, OracleConfig, PriceSource, ScriptedSource,
};
use clap::Parser;
use nostr::Keys;
use tokio::sync::watch;

/// A reference price oracle for Ark Relay: medianises several sources and
/// publishes one signed addressable event (kind 30420) per pair.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The `dev.json` of a running `ark-relay dev` (its Nostr relays).
    #[arg(long, env = "ORACLE_DEV_JSON")]
    dev_json: Option<PathBuf>,
    /// Nostr relay URLs (repeatable or comma-separated), without `--dev-json`.
    #[arg(
        long = "nostr-relay",
        env = "ORACLE_NOSTR_RELAYS",
        value_delimiter = ','
    )]
    nostr_relays: Vec<String>,
    /// The oracle's secret key file (hex or nsec); created if missing.
    #[arg(long, env = "ORACLE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Pairs to publish (repeatable or comma-separated).
    #[arg(long = "pair", env = "ORACLE_PAIRS", value_delimiter = ',', default_values_t = ["BTC/USD".to_owned(), "ETH/USD".to_owned()])]
    pairs: Vec<String>,
    /// Price sources (repeatable): `file:<path>` (a scripted file, re-read
    /// every round: lines `PAIR PRICE [PRICE …]`) or
    /// `fixed:<PAIR>=<PRICE>[;<PAIR>=<PRICE>…]` (constant prices).
    #[arg(
        long = "source",
        env = "ORACLE_SOURCES",
        value_delimiter = ',',
        required_unless_present = "print_pubkey"
    )]
    sources: Vec<String>,
    /// Decimals of every published price.
    #[arg(long, env = "ORACLE_DECIMALS", default_value_t = 2)]
    decimals: u8,
    /// How many sources must answer for a price to be published.
    #[arg(long, env = "ORACLE_MIN_SOURCES", default_value_t = 1)]
    min_sources: usize,
    /// Seconds between two rounds.
    #[arg(long, env = "ORACLE_INTERVAL_SECS", default_value_t = 10)]
    interval_secs: u64,
    /// Publish one round and exit.
    #[arg(long)]
    once: bool,
    /// Print the oracle's public key (hex; the key file is created if
    /// missing) and exit: what users name as `liquidation_oracle`.
    #[arg(long)]
    print_pubkey: bool,
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    #[serde(default)]
    nostr_relays: Vec<String>,
}

fn read_dev_json(path: &Path) -> Result<DevJson> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is `ark-relay dev` running?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The key in `path` (created with a fresh key if missing), else `$ORACLE_KEY`.
fn load_or_create_key(path: Option<&Path>) -> Result<Keys> {
    match path {
        Some(p) if !p.exists() => {
            let keys = Keys::generate();
            write_secret(p, &keys.secret_key().to_secret_hex())?;
            tracing::info!(path = %p.display(), "new oracle key written");
            Ok(keys)
        }
        Some(p) => ark_relay_wallet::keys::load_keys(Some(p)).map_err(|e| anyhow!(e)),
        None => {
            let text = std::env::var("ORACLE_KEY")
                .map_err(|_| anyhow!("no key: pass --key-file <path> or set ORACLE_KEY"))?;
            ark_relay_wallet::keys::parse_key(&text).map_err(|e| anyhow!("ORACLE_KEY: {e}"))
        }
    }
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(format!("{text}\n").as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))
    }
}

fn source(spec: &str, n: usize, decimals: u8) -> Result<Arc<dyn PriceSource>> {
    if let Some(path) = spec.strip_prefix("file:") {
        let name = Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("file{n}"));
        return Ok(Arc::new(ScriptedSource::new(name, path, decimals)));
    }
    if let Some(list) = spec.strip_prefix("fixed:") {
        let fixed = FixedSource::new(format!("fixed{n}"));
        for item in list.split(';').filter(|s| !s.is_empty()) {
            let (pair, price) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("{item:?}: expected PAIR=PRICE"))?;
            let p = parse_price(price.trim(), decimals).map_err(|e| anyhow!("{item:?}: {e}"))?;
            fixed.set(pair.trim(), p);
        }
        return Ok(Arc::new(fixed));
    }
    bail!("source {spec:?}: expected file:<path> or fixed:<PAIR>=<PRICE>")
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
    if cli.print_pubkey {
        let keys = load_or_create_key(cli.key_file.as_deref())?;
        #[allow(clippy::print_stdout)]
        {
            println!("{}", keys.public_key().to_hex());
        }
        return Ok(());
    }
    let relays = if cli.nostr_relays.is_empty() {
        match &cli.dev_json {
            Some(p) => read_dev_json(p)?.nostr_relays,
            None => vec![],
        }
    } else {
        cli.nostr_relays.clone()
    };
    if relays.is_empty() {
        bail!("no Nostr relay: pass --nostr-relay <ws://…> or --dev-json <path>");
    }
    let sources = cli
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| source(s, i + 1, cli.decimals))
        .collect::<Result<Vec<_>>>()?;
    let keys = load_or_create_key(cli.key_file.as_deref())?;
    let oracle = Oracle::new(
        keys.clone(),
        sources,
        OracleConfig {
            pairs: cli.pairs.clone(),
            decimals: cli.decimals,
            min_sources: cli.min_sources,
            interval: Duration::from_secs(cli.interval_secs.max(1)),
        },
    )?;
    let transport = PoolTransport::connect(keys.public_key(), PoolOptions::new(relays))
        .await
        .context("connecting to the Nostr relays")?;
    tracing::info!(oracle = %keys.public_key().to_hex(), pairs = ?cli.pairs, "oracle publishing");
    if cli.once {
        let published = oracle.tick(&transport).await;
        transport.shutdown().await;
        if published.len() < cli.pairs.len() {
            bail!("{} of {} pairs published", published.len(), cli.pairs.len());
        }
        return Ok(());
    }
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop.send(true);
        }
    });
    oracle.run(&transport, stop_rx).await;
    transport.shutdown().await;
    Ok(())
}
