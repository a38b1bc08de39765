//! `ark-relay dev`: the whole system on one machine, on embedded defaults.
//!
//! [`DevStack`] prepares the data dir and keys, then starts the parts in
//! order — store (+ migrations), *[later: in-process Nostr relay, gRPC
//! simulators, engine workers]*, HTTP — and [`RunningDev`] stops them in
//! reverse order. Each later issue plugs its part in at a marked `SEAM`
//! without changing the shape: start it as a [`Services`] task, record its
//! endpoint in [`DevFacts`] (and so in `dev.json` and the banner).
//!
//! `dev.json` is written (atomically) only once everything listens, and is
//! removed on a graceful stop, so its presence means "up". This module owns the
//! dev wiring only; it must not contain protocol logic.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, Result};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::PubKey;
use ark_relay_core::{DynStore, RelayStore};
use ark_relay_engine::ceremony;
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_grpc::resilience::{BreakerState, HealthRegistry, Resilience};
use ark_relay_nostr::{DevRelay, DevRelayOptions};
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::SqlStore;
use serde::Serialize;
use tracing::{info, Instrument};

use crate::config::{redact_url, Config, QueueKind};
use crate::http::{self, ApiInfo, ApiState};
use crate::keys::{self, KeyFile, KeyOrigin, PublicKeyInfo};
use crate::services::Services;
use crate::shutdown::StopSignal;

mod dex;
mod seed;

pub use dex::DexFacts;
use seed::{mint_gbtc, seed_demo, DEMO_GBTC};

/// The demo wallets `dev` creates keys for.
pub const DEMO_WALLETS: &[&str] = &["alice", "bob"];

/// Where `npm --prefix web run build` puts the browser dApp.
const WEB_DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist");

/// Options of `ark-relay dev` that override the configuration.
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Overrides `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Serve HTTP on `127.0.0.1:<port>` instead of `http.listen` (0 = any free port).
    pub http_port: Option<u16>,
    /// Use these Nostr relays instead of `nostr_relays` / the in-process relay.
    pub nostr_relays: Vec<String>,
}

/// The database as `dev.json` and the banner show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// `sqlite` or `mariadb`.
    pub backend: String,
    /// The URL with any password replaced by `***`.
    pub url: String,
}

/// Rounds as `dev.json` and the banner show them.
#[derive(Debug, Clone, Serialize)]
pub struct RoundFacts {
    /// The round runner runs (every `every_secs`).
    pub enabled: bool,
    /// How often it looks for due round jobs (seconds).
    pub every_secs: u64,
    /// The inventory is replenished by boarding (else by the simulator's
    /// `FundVtxo`).
    pub boarding: bool,
    /// Users' VTXOs get `sign_renewal` challenges.
    pub renewal: bool,
    /// Renewals are valid from this share of the lifetime (percent).
    pub renewal_valid_at_percent: u8,
    /// The published renewal fee (sats).
    pub renewal_fee_sats: u64,
}

/// What a running `dev` offers, written to `<data-dir>/dev.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DevFacts {
    /// Version of the binary.
    pub version: &'static str,
    /// The relay's Nostr public key, x-only hex.
    pub relay_pubkey: String,
    /// The same key as `npub1…`.
    pub relay_npub: String,
    /// File holding the relay's secret key.
    pub relay_key_file: PathBuf,
    /// Whether this run generated the relay key (banner only).
    #[serde(skip)]
    pub relay_key_generated: bool,
    /// Absolute data directory.
    pub data_dir: PathBuf,
    /// The database in use.
    pub database: DatabaseFacts,
    /// The job queue in use (`in-process`, or redis with the URL redacted).
    pub queue: String,
    /// Base URL of the read-only HTTP API.
    pub http_url: String,
    /// URL of the browser dApp (`web/`), when it has been built.
    pub web_url: Option<String>,
    /// WebSocket URLs of the Nostr relays in use. SEAM(nostr-relay): empty until
    /// the in-process relay exists.
    pub nostr_relays: Vec<String>,
    /// gRPC endpoints of the simulators by name (`arkd`, `lnd`, `tapd`).
    /// SEAM(simulators): empty until they exist.
    pub simulators: BTreeMap<String, String>,
    /// Demo wallet keys.
    pub wallets: Vec<PublicKeyInfo>,
    /// The DEX demo (pool key, gUSD, seed reserves) when the simulators run.
    pub dex: Option<DexFacts>,
    /// Ark batch rounds and delegated renewals (`[rounds]`, `[renewal]`).
    pub rounds: RoundFacts,
    /// Process id of this `dev` process.
    pub pid: u32,
}

/// The dev stack before it starts: resolved configuration and directories.
pub struct DevStack {
    config: Config,
    http_addr: SocketAddr,
}

impl DevStack {
    /// Applies the `dev` options to the configuration.
    pub fn new(mut config: Config, options: DevOptions) -> Self {
        if let Some(dir) = options.data_dir {
            config.data_dir = dir;
        }
        if !options.nostr_relays.is_empty() {
            config.nostr_relays = options.nostr_relays;
        }
        let http_addr = match options.http_port {
            Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            None => config.http.listen,
        };
        Self { config, http_addr }
    }

    /// Starts every part of the stack; returns once all of them listen and
    /// `dev.json` is written.
    pub async fn start(mut self) -> Result<RunningDev> {
        // 1. Data dir and keys.
        let data_dir = prepare_data_dir(&self.config.data_dir)?;
        self.config.data_dir = data_dir.clone();
        let dev_json = data_dir.join("dev.json");
        remove_if_exists(&dev_json)?; // a stale file from a crashed run must not look "up"

        // The relay key: sealed in GATEWAY_NOSTR_PRIVATE_KEY (production,
        // PRD §10.2), or a key file in the data dir (dev's default).
        let relay_key = keys::relay_key(&self.config)?;
        match relay_key.origin {
            KeyOrigin::Generated => info!(pubkey = %relay_key.pubkey_hex(), "generated relay key"),
            KeyOrigin::Loaded => info!(pubkey = %relay_key.pubkey_hex(), "loaded relay key"),
        }
        let mut wallets = Vec::new();
        for name in DEMO_WALLETS {
            let key =
                keys::load_or_generate(&data_dir.join("wallets").join(format!("{name}.key")))?;
            wallets.push(PublicKeyInfo::new(name, &key)?);
        }

        // With the simulators in-process, the Ark server's state lives only as
        // long as this process: a ledger from an earlier run would describe
        // VTXOs the new simulator never heard of. So the default SQLite ledger
        // starts afresh on every run (keys are kept).
        let embedded_sims = self.config.ark.is_none();
        let fresh_ledger = embedded_sims && self.config.database_url.trim().is_empty();
        if fresh_ledger {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.config.sqlite_path().into_os_string();
                path.push(suffix);
                remove_if_exists(Path::new(&path))?;
            }
        }

        // 2. Store.
        let url = self.config.database_url();
        let shown_url = redact_url(&url);
        let store = SqlStore::connect(&url)
            .instrument(tracing::info_span!("store", url = %shown_url))
            .await
            .with_context(|| format!("connecting to the database {shown_url}"))?;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating the database {shown_url}"))?;
        let backend = store.backend_name();
        info!(backend, url = %shown_url, "database ready");

        let mut services = Services::new();

        // The Nostr relay: the configured ones, or a real websocket relay
        // in-process on 127.0.0.1 (kept until the stack stops).
        let mut nostr_relays = self.config.nostr_relays.clone();
        if nostr_relays.is_empty() {
            let relay = DevRelay::start(DevRelayOptions::default())
                .await
                .context("starting the in-process Nostr relay")?;
            info!(url = relay.url(), "in-process Nostr relay listening");
            nostr_relays.push(relay.url().to_owned());
            services.spawn("nostr-relay", move |stop| async move {
                stop.stopped().await;
                relay.shutdown();
                Ok(())
            });
        }

        // The back ends: the configured arkd, or the simulators in-process
        // (real gRPC servers on 127.0.0.1), with a demo funded on them.
        let mut simulators = BTreeMap::new();
        let health = HealthRegistry::new();
        let (ark, sims): (Arc<dyn ArkServer>, Option<SimStack>) = match &self.config.ark {
            Some(ark) => {
                let client = ArkdClient::connect(ark.url.clone())
                    .await
                    .with_context(|| format!("connecting to arkd at {}", redact_url(&ark.url)))?
                    .with_resilience(Resilience::new("arkd", &health));
                (Arc::new(client), None)
            }
            None => {
                let stack = SimStack::start(SimOptions::default())
                    .await
                    .context("starting the simulators")?;
                let arkd_url = stack.endpoints().arkd;
                info!(url = %arkd_url, "arkd simulator listening");
                simulators.insert("arkd".to_owned(), arkd_url.clone());
                let endpoints = stack.endpoints();
                simulators.insert("lnd".to_owned(), endpoints.lnd.url.clone());
                simulators.insert("tapd".to_owned(), endpoints.tapd.url.clone());
                // lnd/tapd credentials laid out like the daemons' own files.
                let creds = self.config.data_dir.join("sim");
                stack.write_credentials(&creds).with_context(|| {
                    format!("writing simulator credentials to {}", creds.display())
                })?;
                let client = ArkdClient::connect(arkd_url)
                    .await
                    .context("connecting to the arkd simulator")?
                    .with_resilience(Resilience::new("arkd", &health));
                (Arc::new(client), Some(stack))
            }
        };
        let server = crate::wiring::ark_server_info(ark.as_ref()).await?;
        let sim_backends = sims.as_ref().map(|s| crate::ops::SimBackends {
            arkd: s.endpoints().arkd,
            lnd: s.endpoints().lnd,
        });
        let settle_sim = sims.as_ref().map(|s| (s.endpoints().lnd, s.chain.clone()));
        let sim_endpoints = sims.as_ref().map(|s| s.endpoints());
        let mut dex_facts = None;
        if let Some(stack) = sims {
            let alice = wallets
                .first()
                .map(|w| w.pubkey.clone())
                .unwrap_or_default();
            let gbtc = mint_gbtc(&stack).await?;
            let (demo, issuer) = seed_demo(
                &store,
                &stack.arkd,
                ark.clone(),
                &server,
                &relay_key,
                &alice,
                gbtc,
            )
            .await?;
            info!(gbtc = %demo, "demo funded: relay inventory and alice's gBTC");
            let dex = dex::seed(&store, &stack, &issuer, &data_dir, demo).await?;
            info!(pool = %dex.key.pubkey, gusd = %dex.usd, "DEX demo funded: gBTC and gUSD reserves");
            dex_facts = Some(dex);
            services.spawn("simulators", move |stop| async move {
                stop.stopped().await;
                stack.stop().await;
                Ok(())
            });
        }

        // The engine: ingest, workers and the outbox publisher, on the store,
        // the configured queue and the Nostr relays. Later issues add the
        // back ends and schedulers to its parts.
        let lightning = crate::ramps::ramp_backends(
            &self.config,
            sim_endpoints.as_ref().map(|e| (&e.lnd, &e.tapd)),
            &health,
        )?;
        let previous = crate::rotation::load_previous(&self.config)?;
        let builder = crate::wiring::engine_builder(
            &self.config,
            &store,
            &relay_key,
            &nostr_relays,
            ark.clone(),
            &server,
            lightning,
        )
        .await?;
        // The embedded arkd simulator's endpoint (a configured [ark] is
        // advertised by engine_builder).
        let builder = match &sim_endpoints {
            Some(e) if self.config.ark.is_none() => builder.with_ark_url(e.arkd.clone()),
            _ => builder,
        };
        let engine = crate::rotation::address_current(builder, &relay_key, &previous)?.build()?;
        let relay_pk: PubKey = relay_key.pubkey_hex().parse().context("relay key")?;
        let engine = crate::ops::with_ops(
            engine,
            &self.config,
            &store,
            relay_pk,
            sim_backends,
            &health,
            ark.clone(),
            &server,
        )
        .await?;
        // SEAM(settlement): hourly L1 commitments and their 31342s.
        let engine =
            crate::settle::with_settlement(engine, &self.config, &store, settle_sim, &health)?;
        crate::rotation::wire(
            &self.config,
            &store,
            &relay_key,
            &previous,
            &nostr_relays,
            ark,
            &server,
            &mut services,
        )
        .await?;
        // Queue and Nostr relay liveness for /health (crate::probes).
        let probes = crate::probes::Probes::default();
        {
            let p = probes.clone();
            let queue = engine.parts().queue.clone();
            let transport = engine.parts().transport.clone();
            let name = match self.config.queue_kind() {
                QueueKind::Redis(_) => "redis",
                QueueKind::InProcess => "in-process queue",
            };
            services.spawn("probes", move |stop| async move {
                p.run(
                    queue,
                    name,
                    transport,
                    Duration::from_secs(5),
                    stop.into_receiver(),
                )
                .await;
                Ok(())
            });
        }
        services.spawn("engine", move |stop| async move {
            engine
                .run(stop.into_receiver())
                .await
                .map_err(anyhow::Error::from)
        });

        // 3. HTTP, last: once it listens, everything else is up.
        let relay_npub = relay_key.npub()?;
        let info = ApiInfo {
            name: "ark-relay".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pubkey: relay_key.pubkey_hex(),
            npub: relay_npub.clone(),
            relays: nostr_relays.clone(),
            kinds_consumed: ark_relay_protocol::kinds::CONSUMED.to_vec(),
            encryption: vec!["nip44_v2".to_owned(), "nip04".to_owned()],
            transfer_fee: self.config.fees.transfer_fee_sats,
            land_fee_ppm: u64::from(self.config.fees.land_fee_ppm),
            ark: Some(ceremony::server_info_json_with_url(
                &server,
                self.config
                    .ark
                    .as_ref()
                    .map(|a| a.url.clone())
                    .or_else(|| sim_endpoints.as_ref().map(|e| e.arkd.clone()))
                    .as_deref(),
            )),
            database: backend.to_owned(),
        };
        let (listener, http_addr) = http::bind(self.http_addr).await?;
        let api_store: DynStore = Arc::new(store.clone());
        let metrics = crate::ops::metrics_source(crate::ops::recorder()?, health.clone());
        let health_source = move || {
            let mut all = health
                .snapshot()
                .into_iter()
                .map(|v| {
                    let healthy = v.state != BreakerState::Open;
                    ark_relay_api::BackendHealth::new(v.backend, v.state.as_str(), healthy)
                })
                .collect::<Vec<_>>();
            all.extend(probes.snapshot());
            all
        };
        let mut router = http::router(
            ApiState::new(api_store, info)
                .with_health(Arc::new(health_source))
                .with_metrics(metrics)
                .with_reserves(Arc::new(store.clone()))
                .with_settlements(Arc::new(store.clone()))
                .with_reconciliation(Arc::new(store.clone()))
                .with_renewals(
                    Arc::new(store.clone()),
                    crate::wiring::renewal_fee(&self.config),
                ),
        );
        // The browser dApp (web/), once built with npm.
        let web_built = ark_relay_api::web::is_built(Path::new(WEB_DIST));
        if web_built {
            router = router.merge(ark_relay_api::web::web_router(PathBuf::from(WEB_DIST)));
        }
        services.spawn("http", move |stop| {
            http::serve(listener, router, stop.stopped())
        });
        let http_url = format!("http://{http_addr}");
        info!(url = %http_url, "HTTP server listening");
        let web_url = web_built.then(|| format!("{http_url}{}", ark_relay_api::web::WEB_PREFIX));

        let facts = DevFacts {
            version: env!("CARGO_PKG_VERSION"),
            relay_pubkey: relay_key.pubkey_hex(),
            relay_npub,
            relay_key_file: relay_key.path.clone(),
            relay_key_generated: relay_key.origin == KeyOrigin::Generated,
            data_dir,
            database: DatabaseFacts {
                backend: backend.to_owned(),
                url: shown_url,
            },
            queue: self.config.queue_kind().to_string(),
            http_url,
            web_url,
            nostr_relays,
            simulators,
            wallets,
            dex: dex_facts,
            rounds: RoundFacts {
                enabled: self.config.rounds.enabled,
                every_secs: self.config.rounds.every_secs,
                boarding: crate::ops::boards(&self.config, embedded_sims),
                renewal: self.config.rounds.enabled && self.config.renewal.enabled,
                renewal_valid_at_percent: self.config.renewal.valid_at_percent,
                renewal_fee_sats: crate::wiring::renewal_fee(&self.config),
            },
            pid: std::process::id(),
        };
        write_json_atomically(&dev_json, &facts)?;
        Ok(RunningDev {
            facts,
            relay_key,
            dev_json,
            store,
            services,
        })
    }
}

/// The running stack.
pub struct RunningDev {
    facts: DevFacts,
    relay_key: KeyFile,
    dev_json: PathBuf,
    store: SqlStore,
    services: Services,
}

impl RunningDev {
    /// What the stack offers.
    pub fn facts(&self) -> &DevFacts {
        &self.facts
    }

    /// Runs until `stop` resolves or a service fails, then stops everything.
    pub async fn run_until(mut self, stop: impl Future<Output = StopSignal>) -> Result<()> {
        let outcome = tokio::select! {
            signal = stop => {
                info!(signal = signal.name(), "stopping");
                Ok(())
            }
            name = self.services.any_exited() => {
                Err(anyhow::anyhow!("service {name} exited unexpectedly"))
            }
        };
        let stopped = self.shutdown().await;
        outcome.and(stopped)
    }

    /// Stops the services (newest first), closes the store, removes `dev.json`.
    pub async fn shutdown(self) -> Result<()> {
        let services = self.services.stop().await;
        self.store.close().await;
        info!("store closed");
        remove_if_exists(&self.dev_json)?;
        drop(self.relay_key);
        services
    }
}

/// `ark-relay dev`: start, print the banner, run until Ctrl-C / SIGTERM.
pub async fn run(
    config: Config,
    options: DevOptions,
    stop: impl Future<Output = StopSignal>,
) -> Result<()> {
    let span = tracing::info_span!("dev");
    async move {
        let running = DevStack::new(config, options).start().await?;
        print_banner(running.facts());
        running.run_until(stop).await?;
        info!("stopped cleanly");
        Ok(())
    }
    .instrument(span)
    .await
}

fn prepare_data_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data dir {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("resolving the data dir {}", dir.display()))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Writes pretty JSON to a temporary file beside `path`, then renames it, so
/// readers see either no file or the whole file.
fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising dev.json")?;
    text.push('\n');
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The human banner on stdout.
// Printing is this function's purpose: the banner is the command's output for
// a person at a terminal (logs go to stderr through tracing).
#[allow(clippy::print_stdout)]
fn print_banner(facts: &DevFacts) {
    let title = format!("Ark Relay v{} — dev", facts.version);
    println!();
    println!("  {title}");
    println!("  {}", "─".repeat(title.chars().count()));
    println!("  relay npub    {}", facts.relay_npub);
    println!("  relay hex     {}", facts.relay_pubkey);
    let origin = if facts.relay_key_generated {
        "generated now"
    } else {
        "reused"
    };
    println!(
        "  relay key     {}  ({origin})",
        facts.relay_key_file.display()
    );
    println!("  data dir      {}", facts.data_dir.display());
    println!(
        "  database      {} ({})",
        facts.database.backend, facts.database.url
    );
    println!("  queue         {}", facts.queue);
    println!(
        "  HTTP          {}  (GET /health, GET /info)",
        facts.http_url
    );
    for (i, wallet) in facts.wallets.iter().enumerate() {
        let label = if i == 0 { "demo wallets" } else { "" };
        println!(
            "  {label:<12}  {:<6} {}  {}",
            wallet.name,
            wallet.npub,
            wallet.key_file.display()
        );
    }
    if let Some(dex) = &facts.dex {
        println!(
            "  DEX demo      dex    {}  {}  ({} gBTC + {} gUSD reserves; gUSD {})",
            dex.key.npub,
            dex.key.key_file.display(),
            dex.seed_btc,
            dex.seed_usd,
            dex.usd
        );
    }
    for relay in &facts.nostr_relays {
        println!("  nostr relay   {relay}");
    }
    if facts.simulators.is_empty() {
        println!("  back ends     configured daemons (no simulators)");
    }
    for (name, url) in &facts.simulators {
        println!("  sim {name:<9} {url}");
    }
    let r = &facts.rounds;
    if r.enabled {
        let renewal = if r.renewal {
            format!(
                "renewals at {} % of a VTXO's life, fee {} sats",
                r.renewal_valid_at_percent, r.renewal_fee_sats
            )
        } else {
            "renewals off".to_owned()
        };
        let inventory = if r.boarding { "boarding" } else { "FundVtxo" };
        println!(
            "  rounds        every {} s; {renewal}; inventory by {inventory}",
            r.every_secs
        );
    } else {
        println!("  rounds        off ([rounds] enabled = false)");
    }
    match &facts.web_url {
        Some(url) => {
            println!("  dApp          {url}  (Alby or the page's demo signer)");
            if let Some(dex) = &facts.dex {
                println!(
                    "                {url}?dex={}  (with the demo DEX)",
                    dex.key.npub
                );
            }
        }
        None => {
            println!("  dApp          not built: npm --prefix web ci && npm --prefix web run build")
        }
    }
    let dev_json = facts.data_dir.join("dev.json");
    println!("  dev.json      {}", dev_json.display());
    if let Some(bob) = facts.wallets.iter().find(|w| w.name == "bob") {
        if !facts.simulators.is_empty() {
            println!();
            println!("  Try it (alice starts with {DEMO_GBTC} gBTC):");
            let wallet = format!(
                "cargo run -p ark-relay-wallet -- --dev-json {}",
                dev_json.display()
            );
            println!("    {wallet} --wallet alice balance");
            println!("    {wallet} --wallet alice send {} 1000 gBTC", bob.npub);
            println!("    {wallet} --wallet bob balance");
            println!();
            println!("  Lightning (lifts are free; lands pay 0.1 %):");
            println!("    {wallet} --wallet bob lift 100000        # prints a hold invoice, waits");
            println!(
                "    cargo run -p ark-relay -- sim-pay --dev-json {} <invoice>   # the outside payer",
                dev_json.display()
            );
            println!(
                "    {wallet} --wallet bob land \"$(cargo run -q -p ark-relay -- sim-invoice --dev-json {} 50000)\"",
                dev_json.display()
            );
            println!("    curl {}/reserves", facts.http_url);
            if facts.dex.is_some() {
                println!();
                println!("  DEX (swap, add liquidity; the dApp's Swap screen):");
                println!(
                    "    cargo run -p ark-relay-dex-bot -- --dev-json {}",
                    dev_json.display()
                );
            }
        }
    }
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();
}
