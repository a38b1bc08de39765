//! `ark-relay reconcile`: one reconciliation of the ledger (the configured
//! database) with the arkd indexer ([ark] url), on demand. Prints every
//! difference (or the outcome as JSON with `--json`), records the run and its
//! disputed set like the scheduler's periodic run (unless `--no-record`), and
//! exits 0 when ledger = indexer, 2 when they differ (1 on errors).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use ark_relay_core::reconcile::{Difference, ReconcileStatus};
use ark_relay_core::SystemClock;
use ark_relay_engine::reconcile::{Outcome, Progress, Reconciler};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_store::SqlStore;
use clap::Args;

use crate::config::{redact_url, Config};

/// Exit code when the ledger and the indexer differ.
const DIFFERENCES: u8 = 2;

/// `ark-relay reconcile`'s options.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Print the outcome (run summary, differences, disputes) as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// Compare only: do not record the run nor change the disputed set.
    #[arg(long)]
    no_record: bool,

    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Runs the command.
pub async fn run(config: &Config, args: ReconcileArgs) -> Result<ExitCode> {
    let url = config.database_url();
    let shown = redact_url(&url);
    let ark_config = config
        .ark
        .as_ref()
        .context("reconcile needs an Ark server: set [ark] url in the configuration")?;
    config.database_kind()?;
    if config.uses_default_database() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    }
    let store = SqlStore::connect(&url)
        .await
        .with_context(|| format!("connecting to the database {shown}"))?;
    store
        .migrate()
        .await
        .with_context(|| format!("migrating the database {shown}"))?;
    let ark = ArkdClient::connect(ark_config.url.clone())
        .await
        .with_context(|| format!("connecting to arkd at {}", redact_url(&ark_config.url)))?;
    let reconciler = Reconciler::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(ark),
        Arc::new(SystemClock),
    );
    let show_progress = !args.quiet;
    let progress = move |p: Progress| {
        if show_progress {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "checked {} VTXOs, {} suspect so far",
                p.checked, p.differences
            );
        }
    };
    let outcome = if args.no_record {
        reconciler.run(&progress).await
    } else {
        reconciler.run_and_record(&progress).await
    };
    store.close().await;
    let outcome = outcome.context("reconciliation did not complete")?;
    print(&outcome, args.json)?;
    Ok(match outcome.run.status {
        ReconcileStatus::Ok => ExitCode::SUCCESS,
        _ => ExitCode::from(DIFFERENCES),
    })
}

/// One line per difference, for people.
fn describe(d: &Difference) -> String {
    let list = |l: &[ark_relay_core::reconcile::Denomination]| {
        if l.is_empty() {
            "no asset".to_owned()
        } else {
            l.iter()
                .map(|d| format!("{} of {}", d.amount, d.asset_id))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match d {
        Difference::MissingAtServer { vtxo } => {
            format!("{vtxo}: unspent in the ledger, unknown to arkd")
        }
        Difference::SpentAtServer {
            vtxo,
            how,
            spent_by,
        } => format!(
            "{vtxo}: unspent in the ledger, {how:?} at arkd{}",
            spent_by
                .as_deref()
                .map(|t| format!(" by {t}"))
                .unwrap_or_default()
        ),
        Difference::SpentInLedger { vtxo, status } => {
            format!("{vtxo}: unspent at arkd, {status} in the ledger")
        }
        Difference::SatsDiffer {
            vtxo,
            ledger,
            server,
        } => format!(
            "{vtxo}: {} sats in the ledger, {} at arkd (disputed)",
            ledger.get(),
            server.get()
        ),
        Difference::ColourDiffers {
            vtxo,
            ledger,
            server,
        } => format!(
            "{vtxo}: the ledger says {}, arkd says {} (disputed)",
            list(ledger),
            list(server)
        ),
        Difference::UnknownAtLedger { vtxo, sats, assets } => format!(
            "{vtxo}: unspent at arkd ({} sats, {}), unknown to the ledger",
            sats.get(),
            list(assets)
        ),
    }
}

#[allow(clippy::print_stdout)] // the command's output
fn print(outcome: &Outcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    for d in &outcome.differences {
        println!("{}", describe(d));
    }
    let r = &outcome.run;
    println!(
        "{}: {} VTXOs checked ({} in flight), {} differences, {} disputed",
        r.status.as_str(),
        r.checked,
        r.in_flight,
        r.differences,
        r.disputed
    );
    Ok(())
}
