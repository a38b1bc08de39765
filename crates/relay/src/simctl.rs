//! `ark-relay sim-pay` and `ark-relay sim-invoice`: play the Lightning world
//! outside a running `ark-relay dev`, through its lnd simulator's admin RPCs
//! (over the same TLS + macaroon as the relay's own lnd connection):
//! pay a lift's hold invoice as an external payer, or make an external
//! node's invoice (whose preimage the simulator knows) to land to.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{MakeExternalInvoiceRequest, PayInvoiceRequest};
use clap::Args;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Where to find the running `dev`.
#[derive(Debug, Args)]
pub(crate) struct DevTarget {
    /// `dev.json` of the running `ark-relay dev`.
    #[arg(long, value_name = "PATH", default_value = "./data/dev.json")]
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
    target: DevTarget,
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
    target: DevTarget,
}

#[derive(Debug, serde::Deserialize)]
struct DevJson {
    data_dir: PathBuf,
    #[serde(default)]
    simulators: std::collections::BTreeMap<String, String>,
}

type Admin = LndSimClient<InterceptedService<Channel, MacaroonInterceptor>>;

fn admin(dev_json: &Path) -> Result<Admin> {
    let text = std::fs::read_to_string(dev_json).with_context(|| {
        format!(
            "reading {} (is `ark-relay dev` running?)",
            dev_json.display()
        )
    })?;
    let dev: DevJson =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", dev_json.display()))?;
    let Some(url) = dev.simulators.get("lnd") else {
        bail!("this dev runs no lnd simulator (it uses configured daemons)");
    };
    let creds = dev.data_dir.join("sim").join("lnd");
    let cfg = DaemonConfig::from_files(
        url.clone(),
        Some(&creds.join("tls.cert")),
        Some(&creds.join("admin.macaroon")),
    )
    .with_context(|| {
        format!(
            "reading the lnd simulator's credentials in {}",
            creds.display()
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
    let mut admin = admin(&args.target.dev_json)?;
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
    let mut admin = admin(&args.target.dev_json)?;
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
