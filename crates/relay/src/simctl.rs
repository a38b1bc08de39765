//! `ark-relay sim`, `sim-pay` and `sim-invoice`: the simulators as their own
//! process, and the operator's tools that play the Lightning world outside
//! the relay through the lnd simulator's admin RPCs (over the same TLS +
//! macaroon as the relay's own lnd connection).
//!
//! `ark-relay sim` serves arkd, lnd and tapd (and the regtest chain they
//! share) on 127.0.0.1, keeps its credentials under its own data dir
//! (`--data-dir`, default `<data_dir>/sim`), writes `sim.json` there once it
//! listens (removed on a graceful stop), and mines a block every
//! `--block-secs` while transactions wait, so tapd mints (gBTC's genesis) and
//! L1 commitments confirm without anyone mining by hand.
//!
//! `sim-pay` pays a lift's hold invoice as an external payer; `sim-invoice`
//! makes an external node's invoice (whose preimage the simulator knows) to
//! land to. Both reach any lnd simulator: its endpoint and credentials given
//! directly (`--lnd-url`, `--lnd-tls-cert`, `--lnd-macaroon`), or a
//! `sim.json` (`--sim-json`), or a running `dev`'s `dev.json` (`--dev-json`,
//! the default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{MakeExternalInvoiceRequest, PayInvoiceRequest};
use clap::Args;
use serde::{Deserialize, Serialize};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::shutdown::StopSignal;

/// `ark-relay sim`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Port of the arkd simulator (0 picks a free port).
    #[arg(long, default_value_t = 0)]
    arkd_port: u16,
    /// Port of the lnd simulator (0 picks a free port).
    #[arg(long, default_value_t = 0)]
    lnd_port: u16,
    /// Port of the tapd simulator (0 picks a free port).
    #[arg(long, default_value_t = 0)]
    tapd_port: u16,
    /// The simulators' data dir: lnd/ and tapd/ tls.cert and admin.macaroon,
    /// and sim.json [default: <data_dir>/sim].
    #[arg(long, value_name = "DIR", alias = "credentials-dir")]
    data_dir: Option<PathBuf>,
    /// Mine a block this often (seconds) while transactions wait in the
    /// simulated mempool (tapd mints, L1 commitments); 0 = never.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    block_secs: u64,
}

/// A daemon's endpoint and credential files, as `sim.json` lists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DaemonFiles {
    /// gRPC URL.
    pub url: String,
    /// The TLS certificate to pin (PEM file).
    pub tls_cert: PathBuf,
    /// The admin macaroon (binary file).
    pub macaroon: PathBuf,
}

/// What a running `ark-relay sim` offers, written to `<data-dir>/sim.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SimFacts {
    /// arkd simulator URL (no TLS, no macaroon, like a local arkd).
    pub arkd: String,
    /// lnd simulator (it also serves the chain simulator's admin API).
    pub lnd: DaemonFiles,
    /// tapd simulator.
    pub tapd: DaemonFiles,
    /// Absolute data dir.
    pub data_dir: PathBuf,
    /// Seconds between blocks while the mempool is not empty (0 = never).
    pub block_secs: u64,
    /// Process id.
    pub pid: u32,
}

/// `ark-relay sim`: start the simulators, write their credentials and
/// `sim.json`, print the endpoints, mine while transactions wait, stop on a
/// signal.
// Printing the endpoints is the command's output for a person or a script.
#[allow(clippy::print_stdout)]
pub(crate) async fn run(
    args: SimArgs,
    default_data_dir: &Path,
    stop: impl std::future::Future<Output = StopSignal>,
) -> Result<()> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir.join("sim"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let sim_json = dir.join("sim.json");
    remove_if_exists(&sim_json)?; // a stale file must not look "up"
    let options = ark_relay_sim::SimOptions {
        arkd_port: args.arkd_port,
        lnd_port: args.lnd_port,
        tapd_port: args.tapd_port,
        ..Default::default()
    };
    let stack = ark_relay_sim::SimStack::start(options)
        .await
        .context("starting the simulators")?;
    stack
        .write_credentials(&dir)
        .with_context(|| format!("writing credentials to {}", dir.display()))?;
    let e = stack.endpoints();
    let files = |name: &str, url: String| DaemonFiles {
        url,
        tls_cert: dir.join(name).join("tls.cert"),
        macaroon: dir.join(name).join("admin.macaroon"),
    };
    let facts = SimFacts {
        arkd: e.arkd.clone(),
        lnd: files("lnd", e.lnd.url.clone()),
        tapd: files("tapd", e.tapd.url.clone()),
        data_dir: dir.clone(),
        block_secs: args.block_secs,
        pid: std::process::id(),
    };
    write_json_atomically(&sim_json, &facts)?;
    println!("arkd      {}", facts.arkd);
    println!(
        "lnd       {}  (tls.cert, admin.macaroon in {})",
        facts.lnd.url,
        dir.join("lnd").display()
    );
    println!(
        "tapd      {}  (tls.cert, admin.macaroon in {})",
        facts.tapd.url,
        dir.join("tapd").display()
    );
    println!("sim.json  {}", sim_json.display());
    match args.block_secs {
        0 => {
            println!("blocks    never on their own (mine through the chain simulator's admin RPC)")
        }
        s => println!("blocks    one every {s} s while transactions wait"),
    }
    println!("Press Ctrl-C to stop.");
    let chain = stack.chain.clone();
    let miner = async move {
        if args.block_secs == 0 {
            return std::future::pending().await;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(args.block_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !chain.mempool().is_empty() {
                let height = chain.mine(1);
                tracing::info!(height, "mined a simulator block");
            }
        }
    };
    let signal = tokio::select! {
        s = stop => s,
        never = miner => never,
    };
    tracing::info!(signal = signal.name(), "stopping the simulators");
    stack.stop().await;
    remove_if_exists(&sim_json)?;
    Ok(())
}

/// Which lnd simulator `sim-pay` and `sim-invoice` talk to: the first of
/// `--lnd-url` (with its files), `--sim-json`, `--dev-json`.
#[derive(Debug, Args)]
pub(crate) struct LndTarget {
    /// The lnd simulator's gRPC URL (with --lnd-tls-cert and --lnd-macaroon).
    #[arg(long, value_name = "URL", env = "SIM_LND_URL")]
    lnd_url: Option<String>,
    /// The lnd simulator's tls.cert (PEM).
    #[arg(
        long,
        value_name = "PATH",
        env = "SIM_LND_TLS_CERT",
        requires = "lnd_url"
    )]
    lnd_tls_cert: Option<PathBuf>,
    /// The lnd simulator's admin.macaroon.
    #[arg(
        long,
        value_name = "PATH",
        env = "SIM_LND_MACAROON",
        requires = "lnd_url"
    )]
    lnd_macaroon: Option<PathBuf>,
    /// `sim.json` of a running `ark-relay sim`.
    #[arg(
        long,
        value_name = "PATH",
        env = "SIM_JSON",
        conflicts_with = "lnd_url"
    )]
    sim_json: Option<PathBuf>,
    /// `dev.json` of a running `ark-relay dev` (used when nothing else is given).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "./data/dev.json",
        conflicts_with_all = ["lnd_url", "sim_json"]
    )]
    dev_json: PathBuf,
}

/// `ark-relay sim-pay`.
#[derive(Debug, Args)]
pub(crate) struct SimPayArgs {
    /// The BOLT11 invoice to pay (a lift invoice of the relay).
    invoice: String,
    /// Pay this many sats instead of the invoice amount.
    #[arg(long)]
    amount_sats: Option<u64>,
    #[command(flatten)]
    target: LndTarget,
}

/// `ark-relay sim-invoice`.
#[derive(Debug, Args)]
pub(crate) struct SimInvoiceArgs {
    /// Amount in sats.
    sats: u64,
    /// The invoice description.
    #[arg(long, default_value = "ark-relay sim: an outside payee")]
    memo: String,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3_600)]
    expiry_secs: u64,
    #[command(flatten)]
    target: LndTarget,
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    data_dir: PathBuf,
    #[serde(default)]
    simulators: std::collections::BTreeMap<String, String>,
}

type Admin = LndSimClient<InterceptedService<Channel, MacaroonInterceptor>>;

/// The lnd simulator's URL and credential files, from the target options.
fn lnd_files(target: &LndTarget) -> Result<DaemonFiles> {
    if let Some(url) = &target.lnd_url {
        let (Some(tls_cert), Some(macaroon)) = (&target.lnd_tls_cert, &target.lnd_macaroon) else {
            bail!("--lnd-url needs --lnd-tls-cert and --lnd-macaroon");
        };
        return Ok(DaemonFiles {
            url: url.clone(),
            tls_cert: tls_cert.clone(),
            macaroon: macaroon.clone(),
        });
    }
    if let Some(path) = &target.sim_json {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} (is `ark-relay sim` running?)", path.display()))?;
        let facts: SimFacts =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return Ok(facts.lnd);
    }
    let path = &target.dev_json;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (is `ark-relay dev` running? For a standalone `ark-relay sim` give \
             --sim-json, or --lnd-url with --lnd-tls-cert and --lnd-macaroon)",
            path.display()
        )
    })?;
    let dev: DevJson =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(url) = dev.simulators.get("lnd") else {
        bail!("this dev runs no lnd simulator (it uses configured daemons)");
    };
    let creds = dev.data_dir.join("sim").join("lnd");
    Ok(DaemonFiles {
        url: url.clone(),
        tls_cert: creds.join("tls.cert"),
        macaroon: creds.join("admin.macaroon"),
    })
}

fn admin(target: &LndTarget) -> Result<Admin> {
    let files = lnd_files(target)?;
    let cfg = DaemonConfig::from_files(
        files.url.clone(),
        Some(&files.tls_cert),
        Some(&files.macaroon),
    )
    .with_context(|| {
        format!(
            "reading the lnd simulator's credentials {} and {}",
            files.tls_cert.display(),
            files.macaroon.display()
        )
    })?;
    let channel = connect(&cfg).context("connecting to the lnd simulator")?;
    Ok(LndSimClient::new(InterceptedService::new(
        channel,
        MacaroonInterceptor::new(cfg.macaroon.as_deref()),
    )))
}

/// Pays a relay invoice as an external payer.
#[allow(clippy::print_stdout)]
pub(crate) async fn pay(args: SimPayArgs) -> Result<()> {
    let mut admin = admin(&args.target)?;
    let r = admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: args.invoice.trim().to_owned(),
            amt_msat: args.amount_sats.unwrap_or(0).saturating_mul(1_000),
        })
        .await
        .map_err(|s| anyhow::anyhow!("the lnd simulator refused: {}", s.message()))?
        .into_inner();
    let state = match r.state {
        0 => "OPEN",
        1 => "SETTLED",
        2 => "CANCELED",
        3 => "ACCEPTED (held until the relay settles)",
        _ => "unknown",
    };
    println!("paid {}: invoice {state}", hex::encode(&r.payment_hash));
    Ok(())
}

/// Makes an external node's invoice to land to.
#[allow(clippy::print_stdout)]
pub(crate) async fn invoice(args: SimInvoiceArgs) -> Result<()> {
    let mut admin = admin(&args.target)?;
    let r = admin
        .make_external_invoice(MakeExternalInvoiceRequest {
            amt_msat: args.sats.saturating_mul(1_000),
            memo: args.memo,
            expiry_secs: args.expiry_secs,
        })
        .await
        .map_err(|s| anyhow::anyhow!("the lnd simulator refused: {}", s.message()))?
        .into_inner();
    println!("{}", r.payment_request);
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Writes pretty JSON beside `path` and renames it into place, so readers
/// see no file or the whole file.
fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising sim.json")?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
