//! `ark-wallet`: the Ark Relay reference wallet CLI.
//!
//! Finds the relay from a running `ark-relay dev` (`--dev-json`) or from
//! `--relay-pubkey` and `--nostr-relay`, takes its key from `--key-file`,
//! `--wallet <name>` (a demo wallet of `dev.json`) or `$ARK_WALLET_KEY`, and
//! answers the signing challenges of its own intents after verifying them.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ark_relay_core::PubKey;
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_wallet::keys::load_keys;
use ark_relay_wallet::{Balances, Wallet, WalletOptions};
use clap::{Parser, Subcommand};

/// `println!` that ends the process quietly when stdout is a closed pipe
/// (`ark-wallet pubkey | head -1`) instead of panicking.
macro_rules! out {
    () => {
        $crate::emit(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

mod perp_cmd;

/// Writes one line to stdout; a reader that went away (broken pipe) ends the
/// process with success, as `cat`/`head` pipelines expect.
fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// The Ark Relay reference wallet.
#[derive(Debug, Parser)]
#[command(name = "ark-wallet", version, about, long_about = None)]
struct Cli {
    /// `dev.json` of a running `ark-relay dev` (relay pubkey, Nostr relays, demo wallets).
    #[arg(long, global = true, env = "ARK_WALLET_DEV_JSON")]
    dev_json: Option<PathBuf>,
    /// The relay's public key (hex or npub); overrides dev.json.
    #[arg(long, global = true)]
    relay_pubkey: Option<String>,
    /// A Nostr relay URL (repeatable); overrides dev.json.
    #[arg(long = "nostr-relay", global = true)]
    nostr_relays: Vec<String>,
    /// File holding the wallet's secret key (hex or nsec).
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Use the key of this demo wallet from dev.json (`alice`, `bob`, …).
    #[arg(long, global = true)]
    wallet: Option<String>,
    /// Where to keep the history (default: next to the key file).
    #[arg(long, global = true)]
    history_file: Option<PathBuf>,
    /// Seconds to wait for a transfer's outcome.
    #[arg(long, global = true, default_value_t = 120)]
    timeout: u64,
    /// Encrypt DMs with NIP-04 instead of NIP-44 v2.
    #[arg(long, global = true)]
    nip04: bool,
    /// Do not look my inputs up at the Ark server's indexer (the one the
    /// relay's get_info advertises) before signing; check them against my
    /// own history only.
    #[arg(long, global = true)]
    no_indexer_check: bool,
    /// Ask for one-step signing: the relay sends the checkpoints with the ark
    /// tx and I sign both in one answer (one challenge instead of two).
    #[arg(long, global = true)]
    one_step: bool,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show sats and per-asset balances (fresh sync_state).
    Balance,
    /// Send an amount of an asset to a Nostr key, answering the signing challenges.
    Send {
        /// The recipient: npub1… or 64-hex x-only key.
        recipient: String,
        /// The amount in base units (sats for gBTC).
        amount: u64,
        /// The asset: `gBTC` or a 64-hex Taproot Asset id.
        asset: String,
    },
    /// Lift sats into gBTC: print a Lightning invoice, wait until it is paid
    /// and the gBTC VTXO is issued (lifts are free).
    Lift {
        /// Sats to lift (= gBTC units received).
        amount: u64,
    },
    /// Land gBTC: pay a BOLT11 invoice (its amount plus the relay's 0.1 %
    /// fee) and print the payment preimage.
    Land {
        /// The BOLT11 invoice to pay (must carry an amount).
        invoice: String,
    },
    /// Show the intents sent from this wallet and payments received, with outcomes.
    History,
    /// List the wallet's VTXOs with their colour.
    Sync,
    /// Print the wallet's public key.
    Pubkey,
    /// Perpetual positions with a perps DEX bot: `show`, `open`, `close`.
    Perp {
        /// The DEX's key (hex or npub).
        #[arg(long, env = "ARK_WALLET_PERP_DEX")]
        dex: String,
        #[command(subcommand)]
        command: perp_cmd::PerpCommand,
    },
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    relay_pubkey: String,
    #[serde(default)]
    nostr_relays: Vec<String>,
    #[serde(default)]
    wallets: Vec<DevWallet>,
}

#[derive(Debug, serde::Deserialize)]
struct DevWallet {
    name: String,
    key_file: PathBuf,
}

fn parse_pubkey(s: &str) -> Result<PubKey> {
    let pk = nostr::PublicKey::parse(s.trim()).map_err(|e| anyhow!("{s:?} is not a key: {e}"))?;
    pubkey_from_nostr(&pk).ok_or_else(|| anyhow!("{s:?} is not a valid key"))
}

fn read_dev_json(path: &Path) -> Result<DevJson> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (is `ark-relay dev` running?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn print_balances(b: &Balances) {
    out!("sats      {}", b.sats);
    for a in &b.assets {
        let name = a.ticker.clone().unwrap_or_else(|| a.asset_id.clone());
        if a.locked > 0 {
            out!("{name:<9} {} ({} locked)", a.amount, a.locked);
        } else {
            out!("{name:<9} {}", a.amount);
        }
    }
    out!("vtxos     {}", b.vtxos);
}

async fn run(cli: Cli) -> Result<()> {
    let dev = cli.dev_json.as_deref().map(read_dev_json).transpose()?;
    let key_file = match (&cli.key_file, &cli.wallet) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(name)) => {
            let dev = dev
                .as_ref()
                .ok_or_else(|| anyhow!("--wallet needs --dev-json"))?;
            let w = dev
                .wallets
                .iter()
                .find(|w| &w.name == name)
                .ok_or_else(|| anyhow!("dev.json has no wallet named {name:?}"))?;
            Some(w.key_file.clone())
        }
        (None, None) => None,
    };
    let keys = load_keys(key_file.as_deref()).map_err(|e| anyhow!(e))?;
    let me = pubkey_from_nostr(&keys.public_key()).ok_or_else(|| anyhow!("invalid key"))?;
    if let Command::Pubkey = cli.command {
        use nostr::ToBech32;
        out!("{me}");
        out!("{}", keys.public_key().to_bech32()?);
        return Ok(());
    }
    let relay = match (&cli.relay_pubkey, &dev) {
        (Some(r), _) => parse_pubkey(r)?,
        (None, Some(d)) => parse_pubkey(&d.relay_pubkey)?,
        (None, None) => bail!("pass --dev-json <path> or --relay-pubkey <key>"),
    };
    let relays = if !cli.nostr_relays.is_empty() {
        cli.nostr_relays.clone()
    } else {
        dev.as_ref()
            .map(|d| d.nostr_relays.clone())
            .unwrap_or_default()
    };
    if relays.is_empty() {
        bail!("no Nostr relay: pass --nostr-relay <ws://…> or --dev-json <path>");
    }
    let history_file = cli.history_file.clone().or_else(|| match &key_file {
        Some(k) => Some(k.with_extension("history.json")),
        None => std::env::var_os("HOME").map(|h| {
            PathBuf::from(h)
                .join(".ark-wallet")
                .join(format!("{me}.history.json"))
        }),
    });
    let opts = WalletOptions {
        scheme: if cli.nip04 {
            Scheme::Nip04
        } else {
            Scheme::Nip44
        },
        send_timeout: Duration::from_secs(cli.timeout),
        history_file,
        one_step: cli.one_step,
        indexer: if cli.no_indexer_check {
            ark_relay_wallet::IndexerCheck::Off
        } else {
            ark_relay_wallet::IndexerCheck::Relay
        },
        ..Default::default()
    };
    let wallet = Wallet::connect(keys.clone(), relay, relays.clone(), opts).await?;
    let result = match &cli.command {
        Command::Perp { dex, command } => {
            perp_cmd::run(
                command,
                &wallet,
                keys,
                parse_pubkey(dex)?,
                relays,
                Duration::from_secs(cli.timeout),
                cli.json,
            )
            .await
        }
        _ => command(&cli, &wallet).await,
    };
    wallet.shutdown().await;
    result
}

async fn command(cli: &Cli, wallet: &Wallet) -> Result<()> {
    match &cli.command {
        Command::Balance => {
            let b = wallet.balance().await?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&b)?);
            } else {
                print_balances(&b);
            }
        }
        Command::Sync => {
            let vtxos = wallet.sync().await?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&vtxos)?);
            } else {
                let renewals = wallet.renewals().await.unwrap_or_default();
                for v in &vtxos {
                    let colour = match (&v.ticker, &v.asset_id) {
                        (Some(t), _) => format!("{} {t}", v.amount),
                        (None, Some(id)) => format!("{} {id}", v.amount),
                        _ => "uncoloured".into(),
                    };
                    let lock = if v.locked { " (locked)" } else { "" };
                    let expiry = v
                        .expires_at
                        .map_or_else(|| "expiry unknown".to_owned(), |t| format!("expires {t}"));
                    let renewal = renewals
                        .iter()
                        .find(|(id, _)| *id == v.vtxo)
                        .map(|(_, r)| describe_renewal(r))
                        .unwrap_or_else(|| "renewal unknown".into());
                    out!(
                        "{}  {} sats  {colour}{lock}  {expiry}  {renewal}",
                        v.vtxo,
                        v.sats
                    );
                }
                out!("{} VTXOs", vtxos.len());
            }
        }
        Command::Send {
            recipient,
            amount,
            asset,
        } => {
            let to = parse_pubkey(recipient)?;
            let asset: AssetRef = asset.parse().map_err(|e: String| anyhow!(e))?;
            eprintln!("sending {amount} {asset} to {to} …");
            let conf = wallet.send(to, *amount, asset).await?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&conf)?);
            } else {
                out!("completed: ark txid {}", conf.ark_txid);
                for c in &conf.created {
                    let asset = c.asset.as_ref().map_or("sats".into(), ToString::to_string);
                    out!(
                        "  created {} → {}: {} {asset} ({} sats)",
                        c.vtxo,
                        c.owner,
                        c.amount,
                        c.sats
                    );
                }
            }
        }
        Command::Lift { amount } => {
            let ticket = wallet.lift(*amount).await?;
            if cli.json {
                out!(
                    "{}",
                    serde_json::json!({
                        "request": ticket.request,
                        "invoice": ticket.invoice,
                        "payment_hash": ticket.payment_hash,
                        "expires_at": ticket.expires_at,
                    })
                );
            } else {
                out!("pay this invoice to lift {amount} sats into gBTC:");
                out!();
                out!("{}", ticket.invoice);
                out!();
                eprintln!(
                    "(with `ark-relay dev`, play the payer: ark-relay sim-pay {})",
                    ticket.invoice
                );
                eprintln!("waiting for the payment …");
            }
            let conf = wallet
                .lift_outcome(&ticket, Duration::from_secs(cli.timeout))
                .await?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&conf)?);
            } else {
                out!("lifted: ark txid {}", conf.ark_txid);
                if let Some(v) = conf.created.first() {
                    out!("  new VTXO {}: {} gBTC ({} sats)", v.vtxo, v.amount, v.sats);
                }
            }
        }
        Command::Land { invoice } => {
            eprintln!("landing over Lightning …");
            let conf = wallet
                .land(invoice, Duration::from_secs(cli.timeout))
                .await?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&conf)?);
            } else {
                out!("paid: ark txid {}", conf.ark_txid);
                if let Some(p) = &conf.preimage {
                    out!("  preimage {p}");
                }
            }
        }
        Command::History => {
            let h = wallet.history();
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&h)?);
            } else if h.is_empty() {
                out!("no history yet");
            } else {
                for e in &h {
                    let to = e.counterparty.as_deref().unwrap_or("-");
                    out!(
                        "{} {} {} {} {to}  {:?}",
                        e.at,
                        e.direction,
                        e.amount,
                        e.asset,
                        e.outcome
                    );
                    for c in &e.challenges {
                        out!("    {c}");
                    }
                }
            }
        }
        Command::Pubkey | Command::Perp { .. } => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One VTXO's renewal for the listing: scheduled (when), no renewal,
/// recoverable.
fn describe_renewal(r: &ark_relay_core::renewals::RenewalView) -> String {
    let mut out = match (r.state.as_str(), r.scheduled_at) {
        ("scheduled", Some(t)) => format!("renewal scheduled at {t}"),
        ("refused", _) => "no renewal".to_owned(),
        ("asked", _) => "renewal offered (answer pending)".to_owned(),
        ("none", _) => "no renewal yet".to_owned(),
        (other, _) => format!("renewal {other}"),
    };
    if r.recoverable {
        out.push_str(", recoverable");
    }
    out
}
