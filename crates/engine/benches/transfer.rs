//! End-to-end transfer benchmark (issue #6, DESIGN.md §8): N reference wallets
//! each send M gBTC transfers through the real relay — the in-process
//! websocket Nostr relay, the engine with the transfer ceremony and several
//! workers, MariaDB (or SQLite), Redis Streams (or the in-memory queue) and the
//! arkd simulator over gRPC — and the soft-finality latency (intent published →
//! 31340 received by the sender) and throughput are reported.
//!
//! ```text
//! cargo bench -p ark-relay-engine --bench transfer -- \
//!     [--wallets N] [--transfers-per-wallet M] [--db sqlite|mariadb] \
//!     [--queue memory|redis] [--mode transfer|swap] [--workers W] \
//!     [--timeout-secs S] [--catch-up-secs C] [--flood N] [--one-step]
//! ```
//!
//! `--one-step`: the wallets ask for one-step signing (`"one_step": true`,
//! docs/protocol.md): one 31511/31512 pair per transfer instead of two, so
//! the idle floor is 4 hops × echo instead of 6.
//!
//! Guards (issue #18, `transfer/guard.rs`), printed with their targets and
//! whether each is met: the raw BIP-340 verify rate on one core and
//! transfers/s ÷ that rate (≥ 2.4 %); soft finality p50/p99; the Nostr echo
//! floor through the same relay (one publish → receive) and idle soft
//! finality ÷ hops × echo (6 hops, 4 with `--one-step`; ≤ 1.25); and a
//! flood — one key publishes `--flood` junk intents (default 3 000) while
//! 20 wallets each send 3 transfers — with the honest wallets' p50/p99
//! (p99 < 1 s). The engine runs with the default per-author rate limit (120
//! events per 10 s).
//!
//! Where an idle transfer's time goes (`transfer/timeline.rs`): observers on
//! the Nostr relay timestamp each event of the idle transfers, splitting each
//! into the relay's three turns and the wallet's two, printed with the idle
//! per-step table.
//!
//! Everything listens on 127.0.0.1. The MariaDB database (at
//! `ARK_RELAY_TEST_MYSQL_URL`) is a throw-away one dropped at the end; the
//! Redis keys (at `ARK_RELAY_TEST_REDIS_URL`) use a unique prefix and are
//! deleted at the end. The whole run is bounded by `--timeout-secs`.
//!
//! `--mode swap` runs two-party atomic batches instead (issue 7): the wallets
//! are paired (a user holding gBTC, a maker holding gUSD); for each swap both
//! sign an `atomic_swap` intent, the maker submits the `submit_batch`, and the
//! latency from the `31500` to both parties' 31340 is reported, with batches/s
//! and intents/s.
//!
//! Besides the latencies, the run instruments what each transfer costs: the
//! time spent in each job kind of the handler, the arkd calls, the Nostr
//! publishes of the outbox, and (MariaDB, Redis) the server-side statement and
//! command counts, so a shortfall can be attributed.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ark_relay_ark::ServerInfo;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynQueue, DynStore, NewAsset, NewVtxo, QueueConfig,
    Sats, SystemClock, UnixTime, VtxoStatus,
};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_queue::{MemoryQueue, RedisQueue};
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{Wallet, WalletOptions};
use indicatif::{ProgressBar, ProgressStyle};
use nostr::Keys;
use tokio::sync::{mpsc, watch};

/// gBTC sent per transfer.
const AMOUNT: u64 = 100;
/// The relay's transfer fee (gBTC units).
const FEE: u64 = 10;
/// Transfers timed one at a time on the idle relay (the echo-floor guard).
const IDLE_TRANSFERS: usize = 5;
/// Honest wallets and transfers per wallet in the flood scenario.
const FLOOD_WALLETS: usize = 20;
const FLOOD_TRANSFERS: usize = 3;

#[path = "transfer/guard.rs"]
mod guard;
#[path = "transfer/instrument.rs"]
mod instrument;
#[path = "transfer/report.rs"]
mod report;
#[path = "transfer/swap.rs"]
mod swap;
#[path = "transfer/timeline.rs"]
mod timeline;

use instrument::{
    mariadb_status, redis_calls, redis_cleanup, TimedArk, TimedHandler, TimedTransport, Timings,
};
use report::{report, Results};
use swap::swap_pair;

#[derive(Debug, Clone)]
struct Args {
    wallets: usize,
    transfers: usize,
    db: String,
    queue: String,
    mode: String,
    workers: usize,
    timeout: Duration,
    catch_up: Duration,
    /// Junk intents of the flood scenario (0: skipped).
    flood: usize,
    /// The wallets ask for one-step signing.
    one_step: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        wallets: 100,
        transfers: 5,
        db: "mariadb".into(),
        queue: "redis".into(),
        mode: "transfer".into(),
        workers: 4,
        timeout: Duration::from_secs(600),
        catch_up: Duration::from_secs(3),
        flood: 3_000,
        one_step: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // cargo passes `--bench`; libtest-style filters are ignored.
        if flag == "--bench" || !flag.starts_with("--") {
            continue;
        }
        if flag == "--one-step" {
            a.one_step = true;
            continue;
        }
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--wallets" => a.wallets = num(value()?)? as usize,
            "--transfers-per-wallet" => a.transfers = num(value()?)? as usize,
            "--workers" => a.workers = num(value()?)?.max(1) as usize,
            "--timeout-secs" => a.timeout = Duration::from_secs(num(value()?)?),
            "--catch-up-secs" => a.catch_up = Duration::from_secs(num(value()?)?.max(1)),
            "--db" => a.db = value()?,
            "--queue" => a.queue = value()?,
            "--mode" => a.mode = value()?,
            "--flood" => a.flood = num(value()?)? as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !matches!(a.db.as_str(), "sqlite" | "mariadb") {
        return Err("--db is sqlite or mariadb".into());
    }
    if !matches!(a.queue.as_str(), "memory" | "redis") {
        return Err("--queue is memory or redis".into());
    }
    if !matches!(a.mode.as_str(), "transfer" | "swap") {
        return Err("--mode is transfer or swap".into());
    }
    if a.mode == "swap" && a.wallets < 2 {
        return Err("--mode swap needs at least 2 wallets (pairs)".into());
    }
    if a.wallets == 0 || a.transfers == 0 {
        return Err("--wallets and --transfers-per-wallet must be > 0".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("transfer bench: {e}");
            std::process::exit(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(args));
    rt.shutdown_timeout(Duration::from_secs(5));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let started = Instant::now();
    let db = match args.db.as_str() {
        "sqlite" => TestDb::sqlite().await,
        _ => TestDb::mariadb().await,
    };
    let db = match db {
        Ok(db) => db,
        Err(e) => {
            eprintln!(
                "transfer bench: cannot create the {} database: {e}",
                args.db
            );
            return 1;
        }
    };
    let redis_url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis_prefix = format!(
        "arkrelay-bench-{}-{}",
        std::process::id(),
        UnixTime::now().0
    );
    let timings = Arc::new(Timings::default());
    let outcome = tokio::time::timeout(
        args.timeout,
        bench(&args, &db, &redis_url, &redis_prefix, timings.clone()),
    )
    .await;
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("transfer bench failed: {e}");
            1
        }
        Err(_) => {
            eprintln!(
                "transfer bench: global timeout of {:?} reached",
                args.timeout
            );
            1
        }
    };
    if args.queue == "redis" {
        redis_cleanup(&redis_url, &redis_prefix).await;
    }
    db.destroy().await;
    eprintln!("total run time {:.1} s", started.elapsed().as_secs_f64());
    code
}

async fn bench(
    args: &Args,
    db: &TestDb,
    redis_url: &str,
    redis_prefix: &str,
    timings: Arc<Timings>,
) -> Result<(), String> {
    let e = |what: &'static str| move |err: String| format!("{what}: {err}");
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = DevRelay::start(DevRelayOptions::default())
        .await
        .map_err(|x| e("dev relay")(x.to_string()))?;
    let nostr_url = nostr.url().to_owned();
    let sim = ArkdSim::new(ArkdSimConfig::default()).map_err(|x| e("arkd sim")(x.to_string()))?;
    let server: ServerInfo = sim.server_info().clone();
    let sim_server = sim
        .clone()
        .spawn(0)
        .await
        .map_err(|x| e("arkd sim server")(x.to_string()))?;
    let ark = ArkdClient::connect(sim_server.url())
        .await
        .map_err(|x| e("arkd client")(x.to_string()))?;

    // The relay, gBTC and the inventory.
    let relay_keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).ok_or("relay key")?;
    let gbtc = AssetId::from_bytes(Keys::generate().public_key().to_bytes());
    store
        .register_asset(
            &NewAsset {
                id: gbtc,
                name: "Relay BTC".into(),
                ticker: "gBTC".into(),
                asset_type: AssetType::RelayIssued,
                decimals: 0,
            },
            UnixTime::now(),
        )
        .await
        .map_err(|x| e("register gBTC")(x.to_string()))?;
    let gusd = AssetId::from_bytes(Keys::generate().public_key().to_bytes());
    if args.mode == "swap" {
        store
            .register_asset(
                &NewAsset {
                    id: gusd,
                    name: "USD".into(),
                    ticker: "gUSD".into(),
                    asset_type: AssetType::Permissionless,
                    decimals: 0,
                },
                UnixTime::now(),
            )
            .await
            .map_err(|x| e("register gUSD")(x.to_string()))?;
    }
    let dust = server.dust().get();
    let total = (args.wallets * args.transfers) as u64;
    // The guards' extra transfers (idle and flood scenarios).
    let extra = (IDLE_TRANSFERS + FLOOD_WALLETS * FLOOD_TRANSFERS) as u64;
    // A swap batch creates 7 outputs from 3 party inputs: 4 × dust from the inventory.
    let carrier = if args.mode == "swap" { 5 } else { 2 };
    // Each transfer needs carrier sats for the recipient's and the fee output
    // (the author's own change reuses its input's carrier): 2 × dust.
    let inventory_count = (args.wallets * 2).max(8);
    let per_vtxo =
        (((total + extra) * carrier * dust * 3 / 2) / inventory_count as u64).max(10 * dust);
    let mut rows = Vec::new();
    for _ in 0..inventory_count {
        let v = sim.fund(&relay_pk, Sats::new(per_vtxo));
        rows.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay_pk,
            sats: Sats::new(v.amount),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay_pk).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    // The wallets, each with one VTXO carrying enough gBTC for all its transfers.
    let funding = (args.transfers + IDLE_TRANSFERS + FLOOD_TRANSFERS) as u64 * (AMOUNT + FEE) * 2;
    let wallet_keys: Vec<Keys> = (0..args.wallets).map(|_| Keys::generate()).collect();
    for (i, k) in wallet_keys.iter().enumerate() {
        let pk = pubkey_from_nostr(&k.public_key()).ok_or("wallet key")?;
        // In swap mode the odd wallets are makers: gUSD to sell, gBTC for fees.
        let mut colours = vec![(gbtc, funding)];
        if args.mode == "swap" && i % 2 == 1 {
            colours = vec![(gusd, funding), (gbtc, args.transfers as u64 * FEE * 2)];
        }
        for (asset, amount) in colours {
            // The colour at arkd too (its strict asset rules check the packet).
            let held = vec![(ark_relay_ark::asset::arkade_id(&asset), amount)];
            let v = sim.fund_with_assets(&pk, Sats::new(dust), held);
            rows.push(NewVtxo {
                id: v.outpoint.into(),
                owner: pk,
                sats: Sats::new(dust),
                colour: Some(Colour {
                    asset,
                    amount: AssetAmount::new(amount),
                }),
                status: VtxoStatus::Assigned,
                tapscripts: server.default_vtxo(&pk).to_tapscripts(),
                expires_at: Some(UnixTime(v.expires_at)),
            });
        }
    }
    for chunk in rows.chunks(200) {
        store
            .insert_vtxos(chunk, UnixTime::now())
            .await
            .map_err(|x| e("fund")(x.to_string()))?;
    }

    // The engine.
    let queue: DynQueue = match args.queue.as_str() {
        "redis" => Arc::new(
            RedisQueue::connect(redis_url, redis_prefix, QueueConfig::default())
                .await
                .map_err(|x| e("redis queue")(x.to_string()))?,
        ),
        _ => Arc::new(MemoryQueue::new(QueueConfig::default())),
    };
    let mut opts = PoolOptions::new(vec![nostr_url.clone()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(relay_keys.public_key(), opts)
        .await
        .map_err(|x| e("relay transport")(x.to_string()))?;
    let policy = IntentPolicy::new(relay_pk);
    let info = RelayInfo {
        pubkey: relay_keys.public_key().to_hex(),
        relays: vec![nostr_url.clone()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: FEE,
        land_fee_ppm: 1000,
        ark: Some(ark_relay_engine::ceremony::server_info_json(&server)),
    };
    let base = BaseHandler::new(store.clone(), relay_keys.clone(), info);
    let ceremony = Arc::new(Ceremony::new(
        store.clone(),
        Arc::new(TimedArk {
            inner: Arc::new(ark),
            timings: timings.clone(),
        }),
        relay_keys.clone(),
        policy.clone(),
        base,
        Arc::new(SystemClock),
        CeremonyConfig {
            session_ttl_secs: 900,
            step_timeout_secs: 60,
        },
    ));
    let parts = EngineParts {
        store: store.clone(),
        queue,
        bus: None,
        transport: Arc::new(TimedTransport {
            inner: transport,
            timings: timings.clone(),
        }),
        keys: relay_keys.clone(),
        policy,
        clock: Arc::new(SystemClock),
        handler: Arc::new(TimedHandler {
            inner: Arc::new(ark_relay_engine::router::Router::new(ceremony.clone())),
            timings: timings.clone(),
        }),
        periodic: vec![ceremony],
    };
    let engine = Engine::new(
        parts,
        EngineConfig {
            workers: args.workers,
            // As `ark-relay run` by default ([run] rate_limit_*).
            ingest_rate_limit: Some(ark_relay_engine::ingest::limit::RateLimit {
                events: 120,
                window: Duration::from_secs(10),
            }),
            ..Default::default()
        },
        Roles::ALL,
    );
    let (stop, stop_rx) = watch::channel(false);
    let engine_task = tokio::spawn(async move { engine.run(stop_rx).await });

    // An observer of intents as they reach the Nostr relay (the start of soft finality).
    let seen: Arc<Mutex<HashMap<ark_relay_core::EventId, Instant>>> = Arc::default();
    let mut obs_opts = PoolOptions::new(vec![nostr_url.clone()]);
    obs_opts.kinds = vec![kinds::INTENT];
    let observer = PoolTransport::connect(relay_keys.public_key(), obs_opts)
        .await
        .map_err(|x| e("observer")(x.to_string()))?;
    let (obs_tx, mut obs_rx) = mpsc::channel::<nostr::Event>(4096);
    let (_cursor_tx, cursor) = watch::channel(None);
    let obs_stop = stop.subscribe();
    let obs = observer.clone();
    tokio::spawn(async move { obs.pump(obs_tx, cursor, obs_stop).await });
    let seen_w = seen.clone();
    tokio::spawn(async move {
        while let Some(ev) = obs_rx.recv().await {
            seen_w
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(event_id_from_nostr(&ev.id))
                .or_insert_with(Instant::now);
        }
    });

    // Connect the wallets and warm them up (get_info, first sync) before timing.
    let wopts = WalletOptions {
        catch_up_every: args.catch_up,
        send_timeout: Duration::from_secs(120),
        one_step: args.one_step,
        ..WalletOptions::default()
    };
    let setup_bar = ProgressBar::new(args.wallets as u64).with_style(
        ProgressStyle::with_template("connecting {bar:40} {pos}/{len} wallets")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut wallets = Vec::new();
    for k in wallet_keys {
        let w = Wallet::connect(k, relay_pk, vec![nostr_url.clone()], wopts.clone())
            .await
            .map_err(|x| e("wallet")(x.to_string()))?;
        wallets.push(w);
    }
    let warm = futures::future::join_all(wallets.iter().map(|w| {
        let bar = setup_bar.clone();
        async move {
            let t = Instant::now();
            let r = async {
                w.params().await?;
                w.balance().await
            }
            .await;
            bar.inc(1);
            r.map(|_| t.elapsed())
        }
    }))
    .await;
    setup_bar.finish_and_clear();
    let mut warm_ok = Vec::new();
    for r in warm {
        warm_ok.push(r.map_err(|x| e("wallet warm-up")(x.to_string()))?);
    }
    // Guards measured on the idle system, before the load.
    let verify_rate = guard::raw_verify_rate().await;
    let echo = if args.mode == "transfer" {
        match guard::echo_floor(&nostr_url).await {
            Ok(d) => Some(d),
            Err(x) => {
                eprintln!("echo floor not measured: {x}");
                None
            }
        }
    } else {
        None
    };
    let (idle, idle_turns) = if args.mode == "transfer" {
        let tl = timeline::Timeline::start(
            &nostr_url,
            relay_keys.public_key(),
            ark_relay_protocol::pubkey_to_nostr(&wallets[0].pubkey()),
        )
        .await;
        let idle = guard::idle_soft(&wallets[0], &seen, IDLE_TRANSFERS).await;
        let turns = match tl {
            Ok(tl) => tl.finish(args.one_step).await,
            Err(x) => {
                eprintln!("idle timeline not measured: {x}");
                Vec::new()
            }
        };
        (idle, turns)
    } else {
        (Vec::new(), Vec::new())
    };
    let idle_timings = timings.snapshot();
    timings.0.lock().map(|mut t| t.clear()).ok();
    let db_before = if args.db == "mariadb" {
        mariadb_status(&ark_relay_store::testing::mysql_admin_url()).await
    } else {
        None
    };
    let redis_before = if args.queue == "redis" {
        redis_calls(redis_url).await
    } else {
        None
    };

    // The measured phase.
    let bar_total = if args.mode == "swap" {
        (args.wallets / 2 * args.transfers) as u64
    } else {
        total
    };
    let bar = ProgressBar::new(bar_total).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} {bar:40} {pos}/{len} transfers {per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    if args.mode == "swap" {
        let pairs: Vec<(&Wallet, &Wallet)> =
            wallets.chunks_exact(2).map(|p| (&p[0], &p[1])).collect();
        let per_pair = futures::future::join_all(
            pairs
                .iter()
                .enumerate()
                .map(|(i, (user, maker))| swap_pair(i, user, maker, gusd, args.transfers, &bar)),
        )
        .await;
        let wall = t0.elapsed();
        bar.finish();
        let mut res = Results {
            soft: Vec::new(),
            send: Vec::new(),
            completed: 0,
            failed: BTreeMap::new(),
            wall,
            timed_out: false,
        };
        for (soft, round, failed) in per_pair {
            res.completed += soft.len();
            res.soft.extend(soft);
            res.send.extend(round);
            for (k, v) in failed {
                *res.failed.entry(k).or_default() += v;
            }
        }
        report(args, &res, &warm_ok, &timings.snapshot());
        let _ = stop.send(true);
        for w in &wallets {
            w.shutdown().await;
        }
        observer.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(30), engine_task).await;
        nostr.shutdown();
        drop(sim_server);
        if res.completed == 0 {
            return Err("no swap completed".into());
        }
        return Ok(());
    }
    let per_wallet = futures::future::join_all(wallets.iter().map(|w| {
        let bar = bar.clone();
        let seen = seen.clone();
        let n = args.transfers;
        async move {
            let sink = pubkey_from_nostr(&Keys::generate().public_key());
            let mut soft = Vec::new();
            let mut send = Vec::new();
            let mut failed: BTreeMap<String, usize> = BTreeMap::new();
            let Some(sink) = sink else {
                return (soft, send, failed);
            };
            for _ in 0..n {
                let t = Instant::now();
                let r = w.send(sink, AMOUNT, AssetRef::gbtc()).await;
                let done = Instant::now();
                match r {
                    Ok(conf) => {
                        send.push(done - t);
                        let at = conf.intents.first().and_then(|id| {
                            seen.lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get(id)
                                .copied()
                        });
                        if let Some(at) = at {
                            soft.push(done.saturating_duration_since(at));
                        }
                    }
                    Err(err) => {
                        let key = match err.code() {
                            Some(c) => format!("31341 code {}", c.code()),
                            None => format!("{err}").chars().take(60).collect(),
                        };
                        *failed.entry(key).or_default() += 1;
                        bar.set_message(format!("failures: {}", failed.values().sum::<usize>()));
                    }
                }
                bar.inc(1);
            }
            (soft, send, failed)
        }
    }))
    .await;
    let wall = t0.elapsed();
    bar.finish();

    let mut res = Results {
        soft: Vec::new(),
        send: Vec::new(),
        completed: 0,
        failed: BTreeMap::new(),
        wall,
        timed_out: false,
    };
    for (soft, send, failed) in per_wallet {
        res.completed += send.len();
        res.soft.extend(soft);
        res.send.extend(send);
        for (k, v) in failed {
            *res.failed.entry(k).or_default() += v;
        }
    }
    let db_after = if args.db == "mariadb" {
        mariadb_status(&ark_relay_store::testing::mysql_admin_url()).await
    } else {
        None
    };
    let redis_after = if args.queue == "redis" {
        redis_calls(redis_url).await
    } else {
        None
    };

    report(args, &res, &warm_ok, &timings.snapshot());
    let flood = if args.flood > 0 {
        let honest = &wallets[..wallets.len().min(FLOOD_WALLETS)];
        match guard::flood(
            &nostr_url,
            relay_pk,
            honest,
            &seen,
            args.flood,
            FLOOD_TRANSFERS,
        )
        .await
        {
            Ok(f) => Some(f),
            Err(x) => {
                eprintln!("flood scenario failed: {x}");
                None
            }
        }
    } else {
        None
    };
    if args.mode == "transfer" {
        timeline::print(&idle_turns, args.one_step);
        report::steps("idle relay-side step (ms)", &idle_timings);
    }
    let mut soft_sorted = res.soft.clone();
    soft_sorted.sort();
    guard::print(
        verify_rate,
        res.completed as f64 / res.wall.as_secs_f64().max(1e-9),
        &soft_sorted,
        echo,
        &idle,
        flood.as_ref(),
        guard::hops(args.one_step),
    );
    let per = res.completed.max(1) as f64;
    if let (Some(b), Some(a)) = (db_before, db_after) {
        println!("\nMariaDB server counters per completed transfer (whole server; other clients add noise):");
        for (k, v) in &a {
            let d = v.saturating_sub(b.get(k).copied().unwrap_or(0));
            println!("  {k:<24} {:>10.1}", d as f64 / per);
        }
    }
    if let (Some(b), Some(a)) = (redis_before, redis_after) {
        println!(
            "Redis commands per completed transfer (whole server): {:.1}",
            a.saturating_sub(b) as f64 / per
        );
    }

    let _ = stop.send(true);
    for w in &wallets {
        w.shutdown().await;
    }
    observer.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(30), engine_task).await;
    nostr.shutdown();
    drop(sim_server);
    if res.completed == 0 {
        return Err("no transfer completed".into());
    }
    Ok(())
}
