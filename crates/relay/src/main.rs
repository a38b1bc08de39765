//! `ark-relay`: the Ark Relay service binary.
//!
//! This crate wires adapters together from configuration; it holds no protocol
//! logic. Subcommands: `dev` (whole system on embedded defaults), `run`
//! (every role on the configured back ends), `ingest`, `worker` and
//! `scheduler` (one role each, for scale-out), `migrate` (apply database
//! migrations), `config` (show or check the effective configuration),
//! `reconcile` (the ledger against the arkd indexer), `sim` and `keys`.
//!
//! `anyhow` is allowed here (and only here): errors end at `main`.

mod config;
mod dev;
mod http;
mod keys;
mod keyvault;
mod ops;
mod probes;
mod ramps;
mod reconcile;
mod rotation;
mod run;
mod secret;
mod services;
mod settle;
mod shutdown;
mod simctl;
mod telemetry;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ark_relay_core::RelayStore;
use ark_relay_store::SqlStore;
use clap::{Args, Parser, Subcommand};
use tracing::Instrument;

use crate::config::{redact_url, Config, LogFormat};

const ABOUT: &str =
    "Ark Relay: a non-custodial Ark L2 settlement service whose write API is Nostr.";

const LONG_ABOUT: &str = "\
Ark Relay: a non-custodial Ark L2 settlement service whose write API is Nostr.

Wallets and dApps publish signed intents (kind 31510); the relay runs the
signing ceremony with them (31511/31512), settles through arkd, and publishes
confirmations (31340), failures (31341) and L1 commitments (31342).

Configuration: a TOML file (--config / ARK_RELAY_CONFIG) plus environment
overrides ARK_RELAY_<KEY>, nested keys joined by `__` (for example
ARK_RELAY_DATABASE_URL=mysql://root@127.0.0.1:3306/relay or
ARK_RELAY_HTTP__LISTEN=0.0.0.0:8080). See relay.example.toml.";

const AFTER_HELP: &str = "\
Examples:
  ark-relay dev                          # everything on embedded defaults (SQLite, in-process queue)
  ark-relay --config relay.toml run      # every role on the configured MariaDB, Redis, relays, arkd
  ark-relay --config relay.toml worker   # one more worker process (any host, same database and Redis)
  ark-relay --config relay.toml migrate  # apply migrations to the configured database
  ark-relay config                       # print the effective configuration (secrets redacted)";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ark-relay",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults apply.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "ARK_RELAY_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Log filter in RUST_LOG syntax, e.g. `info` or `warn,ark_relay=debug`
    /// [default: the config's log.filter, which defaults to `info`].
    #[arg(long, global = true, env = "RUST_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// Log format on stderr [default: the config's log.format, which defaults to `pretty`].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system on one machine with embedded defaults.
    #[command(
        long_about = "\
Run the whole system on one machine with embedded defaults.

Creates the data dir, generates the relay's Nostr key on first run
(<data-dir>/relay.key, mode 0600, reused later) and two demo wallet keys
(<data-dir>/wallets/alice.key, bob.key), connects the database (SQLite file
<data-dir>/relay.db unless database_url is set), applies migrations and serves
the read-only HTTP API (GET /health, GET /info). Prints a banner and writes the
same facts to <data-dir>/dev.json once everything listens. Runs until Ctrl-C or
SIGTERM, then stops gracefully and removes dev.json.

The in-process Nostr relay, the arkd/lnd/tapd simulators and the workers join
in later issues.",
        after_help = "\
Examples:
  ark-relay dev
  ark-relay dev --data-dir /tmp/ark --http-port 0     # any free port; see dev.json
  ARK_RELAY_DATABASE_URL=mysql://root@127.0.0.1:3306/arkrelay ark-relay dev"
    )]
    Dev(DevArgs),

    /// Run every role (ingest, workers, scheduler, HTTP) on the configured back ends.
    #[command(
        long_about = "\
Run every role of the relay in this process, on the configured back ends:
the database (database_url; MariaDB for several processes), the queue
(redis_url; Redis for several processes), the Nostr relays (nostr_relays)
and arkd ([ark] url). Serves the read-only HTTP API on http.listen.

The same processes can be split with `ingest`, `worker` and `scheduler`;
any number of each may run on any hosts sharing one MariaDB and one Redis.
Periodic tasks run in one scheduler at a time (a Redis lease with a fencing
token, run.leader_ttl_ms). While arkd does not answer, the relay stays up in
read-only mode: intents are kept and answered with 7001, and processed when
arkd returns if still unexpired. SIGTERM or Ctrl-C stops gracefully:
in-flight jobs get run.grace_ms, then are handed back to other workers.",
        after_help = "\
Examples:
  ark-relay --config relay.toml run
  ark-relay --config relay.toml run --http 0.0.0.0:8080 --ready-file /run/ark-relay.json
  ARK_RELAY_DATABASE_URL=mysql://relay@db/relay ARK_RELAY_REDIS_URL=redis://redis ark-relay -c relay.toml run"
    )]
    Run(RoleArgs),

    /// Hear Nostr events, validate and record them, queue their jobs.
    #[command(
        long_about = "\
Run the ingest role: subscribe to the configured Nostr relays for events
addressed to the relay, verify, decrypt, validate and deduplicate them,
record each with its job in the database (or its 31341 rejection) and push
the job to the queue; publish the outbox; re-push pending jobs whose wake-up
was lost. Several ingest processes may run: the event id's unique key makes
duplicates harmless. No HTTP unless --http is given.",
        after_help = "\
Examples:
  ark-relay -c relay.toml ingest
  ark-relay -c relay.toml ingest --http 0.0.0.0:8080"
    )]
    Ingest(RoleArgs),

    /// Run jobs: signing ceremonies, service requests (scale out with more processes).
    #[command(
        long_about = "\
Run the worker role: take jobs from the shared queue (Redis Streams consumer
group), run them (signing ceremonies against arkd, service requests) and
publish what they queue. Start as many worker processes as needed on any
hosts; a worker renews the job in hand every third of
run.reclaim_after_secs, a job whose worker dies is taken by another that
long after its last heartbeat, and on SIGTERM a job not finished within
run.grace_ms is handed back at once. run.workers sets the tasks per process.",
        after_help = "\
Examples:
  ark-relay -c relay.toml worker
  ARK_RELAY_RUN__WORKERS=8 ark-relay -c relay.toml worker"
    )]
    Worker(RoleArgs),

    /// Run the periodic tasks (session expiry, …) as the elected leader.
    #[command(
        long_about = "\
Run the scheduler role: the periodic tasks (session timeouts; inventory and
L1 settlement as they land). Start two or more for availability: they elect
one leader through a Redis lease (SET NX PX with a fencing token, renewed
every third of run.leader_ttl_ms); the others wait. When the leader dies the
lease expires and another takes over within run.leader_ttl_ms; on SIGTERM the
leader releases it at once. The leader publishes a heartbeat
{holder, token, at_ms} on the Redis channel <run.redis_prefix>:scheduler.",
        after_help = "\
Examples:
  ark-relay -c relay.toml scheduler
  ARK_RELAY_RUN__LEADER_TTL_MS=5000 ark-relay -c relay.toml scheduler"
    )]
    Scheduler(RoleArgs),

    /// Run the arkd, lnd and tapd simulators (and their regtest chain) alone.
    #[command(
        long_about = "\
Run the gRPC simulators of arkd, lnd and tapd (with the regtest chain they
share) on 127.0.0.1 until Ctrl-C, print their endpoints, and write lnd's and
tapd's tls.cert and admin.macaroon under --data-dir (default <data_dir>/sim),
laid out like the daemons' own files, plus sim.json (endpoints and credential
paths, for scripts and `sim-pay`/`sim-invoice --sim-json`). A block is mined
every --block-secs while transactions wait (tapd mints, L1 commitments).
Point the relay (or any client) at them exactly as at real daemons; with
`[ark] simulator = true` the relay also fills its VTXO inventory through the
arkd simulator's admin API. `ark-relay dev` embeds the same simulators.",
        after_help = "\
Examples:
  ark-relay sim --data-dir /var/lib/ark-relay/sim
  ark-relay sim --arkd-port 7070 --lnd-port 10009 --tapd-port 10029 --block-secs 5"
    )]
    Sim(simctl::SimArgs),

    /// Pay a relay invoice (a lift) as an outside payer, on an lnd simulator.
    #[command(
        name = "sim-pay",
        long_about = "\
Play the outside Lightning payer against an lnd simulator: pay a BOLT11
invoice of the relay (the hold invoice of a lift) through the lnd simulator's
admin RPC. The relay sees the HTLC held (ACCEPTED), issues the gBTC VTXO, then
settles. The simulator: --lnd-url with --lnd-tls-cert and --lnd-macaroon,
or the sim.json of `ark-relay sim` (--sim-json), or dev.json (--dev-json,
the default).",
        after_help = "\
Examples:
  ark-wallet --dev-json data/dev.json --wallet alice lift 100000   # prints the invoice
  ark-relay sim-pay lnbcrt1m1p…
  ark-relay sim-pay --sim-json /var/lib/ark-relay/sim/sim.json lnbcrt1m1p…
  ark-relay sim-pay --lnd-url https://127.0.0.1:10009 --lnd-tls-cert sim/lnd/tls.cert \\
      --lnd-macaroon sim/lnd/admin.macaroon lnbcrt1m1p…"
    )]
    SimPay(simctl::SimPayArgs),

    /// Make an outside node's invoice to land to, on an lnd simulator.
    #[command(
        name = "sim-invoice",
        long_about = "\
Play an outside Lightning payee on an lnd simulator: print a BOLT11
invoice of another node whose preimage the lnd simulator knows, so that the
relay's payment of it (a land) succeeds and returns the preimage. The
simulator is chosen as for sim-pay.",
        after_help = "\
Examples:
  ark-relay sim-invoice 50000
  ark-relay sim-invoice --sim-json /var/lib/ark-relay/sim/sim.json 50000
  ark-wallet --dev-json data/dev.json --wallet alice land \"$(ark-relay sim-invoice 50000)\""
    )]
    SimInvoice(simctl::SimInvoiceArgs),

    /// Create or seal the relay's Nostr key for GATEWAY_NOSTR_PRIVATE_KEY.
    #[command(
        subcommand,
        long_about = "\
Manage the relay's Nostr key at rest (PRD §10.2). The key is kept
AES-256-GCM-encrypted in GATEWAY_NOSTR_PRIVATE_KEY; the AES key is derived from
GATEWAY_ENCRYPTION_KEY (a passphrase or random string) with Argon2id. Secret
material is never printed except the sealed blob.",
        after_help = "\
Examples:
  GATEWAY_ENCRYPTION_KEY=… ark-relay keys generate
  GATEWAY_ENCRYPTION_KEY=… ark-relay keys encrypt --key-file data/relay.key
  GATEWAY_ENCRYPTION_KEY=… GATEWAY_NOSTR_PRIVATE_KEY=arkrelay-key-v1:… ark-relay keys show
  GATEWAY_ENCRYPTION_KEY=… GATEWAY_NOSTR_PRIVATE_KEY=arkrelay-key-v1:… ark-relay keys rotate --grace-secs 86400"
    )]
    Keys(KeysCommand),

    /// Apply the database migrations to the configured database.
    #[command(
        long_about = "\
Apply the database migrations to the configured database.

Connects to database_url (the SQLite file <data_dir>/relay.db when unset;
mysql://… selects MariaDB), applies the embedded migrations for that back end
and prints which back end and URL (password redacted) it migrated. Running it
again is harmless: applied migrations are skipped.",
        after_help = "\
Examples:
  ark-relay migrate
  ark-relay --config relay.toml migrate
  ARK_RELAY_DATABASE_URL=mysql://root@127.0.0.1:3306/relay ark-relay migrate"
    )]
    Migrate,

    /// Compare the ledger with the arkd indexer, VTXO by VTXO; exit 2 if they differ.
    #[command(
        long_about = "\
Reconcile the ledger (database_url) with the Ark server's indexer ([ark] url):
for every unspent VTXO of the ledger, arkd must know it unspent with the same
carrier sats and the same asset denominations (the colour the ark tx's asset
packet assigned); arkd must hold no unspent VTXO under the ledger's scripts
that the ledger lacks. Every difference is checked twice (a ceremony finishing
meanwhile is not one) and printed. The run is recorded (GET /health shows the
last one) and VTXOs whose colour or sats differ become disputed: the relay
refuses intents spending them with 2006 COLOUR_MISMATCH until a run finds them
equal again. The scheduler leader runs the same check every
run.reconcile_every_secs. Progress goes to stderr.

Exit status: 0 ledger = indexer, 2 differences found, 1 the run failed.",
        after_help = "\
Examples:
  ark-relay -c relay.toml reconcile
  ark-relay -c relay.toml reconcile --json > reconciliation.json
  ark-relay -c relay.toml reconcile --no-record --quiet || echo \"ledger and arkd differ\""
    )]
    Reconcile(reconcile::ReconcileArgs),

    /// Print the effective configuration as TOML, or check it.
    #[command(
        long_about = "\
Print the effective configuration as TOML (defaults, then the file, then
ARK_RELAY_* environment overrides), with passwords in URLs redacted. Secrets
are env:/file: references, so their values never appear.

With --check, validate instead: parse, check URL schemes and value ranges, and
check that every secret reference resolves. Exits 0 when valid, 1 otherwise.",
        after_help = "\
Examples:
  ark-relay config
  ark-relay --config relay.toml config --check
  ARK_RELAY_FEES__TRANSFER_FEE_SATS=20 ark-relay config"
    )]
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
struct DevArgs {
    /// Data directory for the database, keys and dev.json [default: the config's data_dir, `./data`].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Serve HTTP on 127.0.0.1:PORT (0 picks a free port) [default: the config's http.listen].
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,

    /// Use this Nostr relay instead of the in-process one (repeat for several;
    /// overrides the config's nostr_relays). Any NIP-01 relay works.
    #[arg(long = "nostr-relay", value_name = "URL")]
    nostr_relays: Vec<String>,
}

#[derive(Debug, Args)]
struct RoleArgs {
    /// Serve the read-only HTTP API on ADDR (port 0 picks a free port)
    /// [default: http.listen for `run`, none for the single roles].
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,

    /// Do not serve HTTP (`run` only; the single roles serve none by default).
    #[arg(long, conflicts_with = "http")]
    no_http: bool,

    /// Write a JSON file (pid, roles, relay pubkey, HTTP URL) once the
    /// process is up; it is removed on a graceful stop.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new relay key and print its npub and its sealed blob.
    Generate,
    /// Seal an existing key file (hex or nsec) and print the blob.
    Encrypt {
        /// The key file to seal.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Open GATEWAY_NOSTR_PRIVATE_KEY and print the public key it holds.
    Show,
    /// Make a new relay key; the current one (GATEWAY_NOSTR_PRIVATE_KEY)
    /// keeps answering events sent to it for a grace period (see
    /// [[keys.previous]] in relay.example.toml).
    Rotate {
        /// Grace period of the old key, seconds [default: keys.rotation_grace_secs, 7 days].
        #[arg(long, value_name = "SECS")]
        grace_secs: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Validate the configuration and exit 0 (valid) or 1 (invalid) instead of printing it.
    #[arg(long)]
    check: bool,
}

/// `ark-relay keys …`.
// Printing the npub and the sealed blob is the command's output.
#[allow(clippy::print_stdout)]
fn keys_command(cmd: KeysCommand, config: &Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let passphrase = zeroize::Zeroizing::new(
        std::env::var("GATEWAY_ENCRYPTION_KEY").context("GATEWAY_ENCRYPTION_KEY is not set")?,
    );
    let print_pub = |secret: &[u8; 32]| -> anyhow::Result<()> {
        let sk = nostr::SecretKey::from_slice(secret).context("not a valid secret key")?;
        let keys = nostr::Keys::new(sk);
        use nostr::ToBech32;
        println!("pubkey  {}", keys.public_key().to_hex());
        println!("npub    {}", keys.public_key().to_bech32().context("npub")?);
        Ok(())
    };
    match cmd {
        KeysCommand::Generate | KeysCommand::Encrypt { .. } => {
            let secret = zeroize::Zeroizing::new(match cmd {
                KeysCommand::Encrypt { key_file } => {
                    let text = zeroize::Zeroizing::new(
                        std::fs::read_to_string(&key_file)
                            .with_context(|| format!("reading {}", key_file.display()))?,
                    );
                    nostr::Keys::parse(text.trim())
                        .with_context(|| format!("{} holds no valid key", key_file.display()))?
                        .secret_key()
                        .to_secret_bytes()
                }
                _ => nostr::Keys::generate().secret_key().to_secret_bytes(),
            });
            print_pub(&secret)?;
            let blob = keyvault::seal(&secret, passphrase.as_bytes())?;
            println!("GATEWAY_NOSTR_PRIVATE_KEY={blob}");
        }
        KeysCommand::Rotate { grace_secs } => {
            let grace = grace_secs.unwrap_or_else(|| config.keys.grace_secs());
            keys::rotate(passphrase.as_bytes(), grace)?;
        }
        KeysCommand::Show => {
            let blob = std::env::var("GATEWAY_NOSTR_PRIVATE_KEY")
                .context("GATEWAY_NOSTR_PRIVATE_KEY is not set")?;
            let secret = keyvault::open(&blob, passphrase.as_bytes())?;
            print_pub(&secret)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

// The error is the command's final output; tracing may not even be installed.
#[allow(clippy::print_stderr)]
fn report_error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    let filter = cli.log.clone().unwrap_or_else(|| config.log.filter.clone());
    let format = cli.log_format.unwrap_or(config.log.format);

    if let Command::Config(args) = &cli.command {
        // Pure output, no logging needed.
        return config_command(&config, args.check);
    }

    telemetry::init(&filter, format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => {
                // Install the handlers before start-up so an early signal is not lost.
                let stop = shutdown::install()?;
                let options = dev::DevOptions {
                    data_dir: args.data_dir,
                    http_port: args.http_port,
                    nostr_relays: args.nostr_relays,
                };
                dev::run(config, options, stop).await?;
            }
            Command::Run(args) => role(config, ark_relay_engine::Roles::ALL, args, true).await?,
            Command::Ingest(args) => {
                role(config, ark_relay_engine::Roles::INGEST, args, false).await?
            }
            Command::Worker(args) => {
                role(config, ark_relay_engine::Roles::WORKER, args, false).await?
            }
            Command::Scheduler(args) => {
                role(config, ark_relay_engine::Roles::SCHEDULER, args, false).await?
            }
            Command::Reconcile(args) => return reconcile::run(&config, args).await,
            Command::Migrate => migrate(&config).await?,
            Command::Keys(cmd) => keys_command(cmd, &config)?,
            Command::Sim(args) => {
                let stop = shutdown::install()?;
                simctl::run(args, &config.data_dir, stop).await?;
            }
            Command::SimPay(args) => simctl::pay(args).await?,
            Command::SimInvoice(args) => simctl::invoice(args).await?,
            Command::Config(_) => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `run`, `ingest`, `worker`, `scheduler`.
async fn role(
    config: Config,
    roles: ark_relay_engine::Roles,
    args: RoleArgs,
    http_by_default: bool,
) -> Result<()> {
    let stop = shutdown::install()?;
    let http = match (args.http, args.no_http) {
        (Some(addr), _) => Some(addr),
        (None, true) => None,
        (None, false) => http_by_default.then_some(config.http.listen),
    };
    let options = run::RunOptions {
        roles,
        http,
        ready_file: args.ready_file,
    };
    run::run(config, options, stop).await
}

#[allow(clippy::print_stdout, clippy::print_stderr)] // the command's output
fn config_command(config: &Config, check: bool) -> Result<ExitCode> {
    if check {
        return Ok(match config.validate() {
            Ok(()) => {
                println!("configuration is valid");
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("configuration is invalid:");
                for p in problems {
                    eprintln!("  - {p}");
                }
                ExitCode::FAILURE
            }
        });
    }
    print!("{}", config.to_redacted_toml()?);
    Ok(ExitCode::SUCCESS)
}

async fn migrate(config: &Config) -> Result<()> {
    let url = config.database_url();
    let shown = redact_url(&url);
    config.database_kind()?;
    if config.uses_default_database() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    }
    let span = tracing::info_span!("migrate", url = %shown);
    async {
        let store = SqlStore::connect(&url)
            .await
            .with_context(|| format!("connecting to the database {shown}"))?;
        let migrated = store
            .migrate()
            .await
            .with_context(|| format!("migrating the database {shown}"));
        let backend = store.backend_name();
        store.close().await;
        migrated?;
        report_migrated(backend, &shown);
        Ok(())
    }
    .instrument(span)
    .await
}

#[allow(clippy::print_stdout)] // the command's output
fn report_migrated(backend: &str, shown_url: &str) {
    println!("migrated {backend} database at {shown_url}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
