//! The relay in Ark batch rounds over the real parts: the arkd simulator's
//! rounds over gRPC (`ArkdClient`), the ledger and the saga on MariaDB and
//! SQLite. The relay renews its own inventory VTXO through a round (ledger =
//! arkd indexer after it), survives a kill after every persisted step (the
//! round completes or fails cleanly and the next one renews; nothing is
//! forfeited without its replacement); the inventory monitor refills a
//! critical inventory by boarding (the lnd simulator's wallet pays the
//! boarding address on the chain simulator, a round turns it into VTXOs),
//! and renews inventory VTXOs before expiry over two lifetimes of simulated
//! chain time with none swept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_ceremony::round::{JobInput, JobKind, JobOutput, Participation, Phase, RoundJob};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::rounds::{DynRoundStore, RoundJobStatus};
use ark_relay_core::{DynStore, NewVtxo, PubKey, Sats, SystemClock, UnixTime, VtxoId, VtxoStatus};
use ark_relay_engine::rounds::{RoundCrashHook, RoundRunner, RoundsConfig};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_sim::arkd::ArkdSimConfig;
use ark_relay_sim::{RoundConfig, SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use bitcoin::key::{Keypair, Secp256k1};

struct Setup {
    db: TestDb,
    store: DynStore,
    rounds: DynRoundStore,
    stack: SimStack,
    ark: Arc<dyn ArkServer>,
    relay: Keypair,
}

async fn setup(db: TestDb) -> Setup {
    let options = SimOptions {
        arkd: ArkdSimConfig {
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                ..RoundConfig::default()
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    };
    let stack = SimStack::start(options).await.expect("sims");
    let ark: Arc<dyn ArkServer> = Arc::new(
        ArkdClient::connect(stack.endpoints().arkd)
            .await
            .expect("arkd"),
    );
    let relay = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    Setup {
        store: Arc::new(db.store.clone()),
        rounds: Arc::new(db.store.clone()),
        db,
        stack,
        ark,
        relay,
    }
}

impl Setup {
    fn relay_pk(&self) -> PubKey {
        PubKey::from_x_only(self.relay.x_only_public_key().0)
    }

    fn runner(&self) -> RoundRunner {
        RoundRunner::new(
            self.rounds.clone(),
            self.store.clone(),
            self.ark.clone(),
            Arc::new(SystemClock),
            self.stack.arkd.server_info().clone(),
            self.relay,
            RoundsConfig {
                every: Duration::from_secs(1),
                tick: Duration::from_millis(200),
                ..RoundsConfig::default()
            },
        )
    }

    /// An inventory VTXO of the relay, at arkd and in the ledger.
    async fn inventory_vtxo(&self, sats: u64) -> VtxoId {
        let relay = self.relay_pk();
        let v = self.stack.arkd.fund(&relay, Sats::new(sats));
        let id = VtxoId::new(v.outpoint.txid, v.outpoint.vout);
        self.store
            .insert_vtxos(
                &[NewVtxo {
                    id,
                    owner: relay,
                    sats: Sats::new(sats),
                    colour: None,
                    status: VtxoStatus::Available,
                    tapscripts: self
                        .stack
                        .arkd
                        .server_info()
                        .default_vtxo(&relay)
                        .to_tapscripts(),
                    expires_at: Some(UnixTime(v.expires_at)),
                }],
                UnixTime::now(),
            )
            .await
            .unwrap();
        id
    }

    fn renewal(&self, id: VtxoId, sats: u64, job_id: &str) -> RoundJob {
        let relay = self.relay_pk();
        RoundJob {
            job_id: job_id.into(),
            kind: JobKind::InventoryRenew,
            inputs: vec![JobInput::RelayVtxo {
                vtxo: id,
                sats: Sats::new(sats),
                tapscripts: self
                    .stack
                    .arkd
                    .server_info()
                    .default_vtxo(&relay)
                    .to_tapscripts(),
                swept: false,
                assets: vec![],
            }],
            outputs: vec![JobOutput {
                owner: relay,
                sats: Sats::new(sats),
                assets: vec![],
            }],
            delegation: None,
            not_before: UnixTime(0),
        }
    }

    /// The ledger agrees with arkd's indexer on the relay's VTXOs: the same
    /// unspent set.
    async fn assert_ledger_is_indexer(&self) {
        let relay = self.relay_pk();
        let script = self
            .stack
            .arkd
            .server_info()
            .default_vtxo(&relay)
            .script_pubkey();
        let mut at_arkd: Vec<VtxoId> = self
            .stack
            .arkd
            .vtxos()
            .into_iter()
            .filter(|v| {
                v.script == script
                    && !v.swept
                    && matches!(v.state, ark_relay_sim::arkd::VtxoState::Spendable)
            })
            .map(|v| VtxoId::new(v.outpoint.txid, v.outpoint.vout))
            .collect();
        let mut in_ledger: Vec<VtxoId> = self
            .store
            .unspent_vtxos(&relay)
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect();
        at_arkd.sort();
        in_ledger.sort();
        assert_eq!(in_ledger, at_arkd, "ledger = arkd indexer");
    }
}

/// Runs the runner once (a whole participation).
async fn run(runner: &RoundRunner) -> Vec<Participation> {
    tokio::time::timeout(Duration::from_secs(60), runner.run_once())
        .await
        .expect("a participation ends within a minute")
        .expect("run")
}

async fn renews_inventory(db: TestDb) {
    let s = setup(db).await;
    let runner = s.runner();
    let old = s.inventory_vtxo(20_000).await;
    let jobs = runner.jobs();
    let job = s.renewal(old, 20_000, "renew-1");
    assert!(jobs.enqueue(&job).await.unwrap());
    assert!(!jobs.enqueue(&job).await.unwrap(), "enqueue is idempotent");

    let ended = run(&runner).await;
    let [p] = ended.as_slice() else {
        panic!("one participation: {ended:?}")
    };
    let Phase::Finalized {
        commitment_txid, ..
    } = p.phase
    else {
        panic!("not finalized: {:?}", p.phase)
    };
    assert!(s.stack.arkd.batches().contains(&commitment_txid));
    let rec = jobs.get("renew-1").await.unwrap().unwrap();
    assert_eq!(rec.status, RoundJobStatus::Done);
    assert_eq!(rec.commitment_txid, Some(commitment_txid.to_string()));
    // The ledger: the old VTXO spent, the new one available, as at arkd.
    assert_eq!(
        s.store.vtxo(&old).await.unwrap().unwrap().status,
        VtxoStatus::Spent
    );
    let new = p.created[0].vtxo;
    let v = s
        .store
        .vtxo(&new)
        .await
        .unwrap()
        .expect("new VTXO in the ledger");
    assert_eq!(
        (v.status, v.sats),
        (VtxoStatus::Available, Sats::new(20_000))
    );
    let at_arkd = s
        .stack
        .arkd
        .vtxo(&new.outpoint())
        .expect("new VTXO at arkd");
    assert_eq!(at_arkd.commitment_txid, Some(commitment_txid));
    assert!(at_arkd.expires_at > 0);
    s.assert_ledger_is_indexer().await;
    // Nothing left to do.
    assert!(run(&runner).await.is_empty());
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_on_sqlite() {
    renews_inventory(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_on_mariadb() {
    renews_inventory(TestDb::mariadb().await.unwrap()).await;
}

/// Kills the relay right after each persisted phase of a round: the next
/// run resumes it; the round completes or fails cleanly, and a failed one is
/// renewed by the next; the VTXO is renewed exactly once and never
/// forfeited without its replacement (ledger = arkd indexer).
async fn survives_a_kill_at_every_step(db: TestDb) {
    let s = setup(db).await;
    for (n, phase) in [
        "registering",
        "registered",
        "confirmed",
        "tree_nonces",
        "tree_signatures",
        "forfeits_submitted",
    ]
    .into_iter()
    .enumerate()
    {
        let old = s.inventory_vtxo(10_000 + n as u64).await;
        let fired = Arc::new(AtomicBool::new(false));
        let hook: RoundCrashHook = {
            let fired = fired.clone();
            Arc::new(move |at: &str| at == phase && !fired.swap(true, Ordering::SeqCst))
        };
        let crashing = s.runner().with_crash_hook(hook);
        let job_id = format!("renew-kill-{phase}");
        crashing
            .jobs()
            .enqueue(&s.renewal(old, 10_000 + n as u64, &job_id))
            .await
            .unwrap();
        let err = tokio::time::timeout(Duration::from_secs(60), crashing.run_once())
            .await
            .expect("crash within a minute")
            .expect_err("the hook kills the run");
        assert!(err.to_string().contains(phase), "{err}");
        drop(crashing);
        // A new process: resume, and retry until the job is done.
        let runner = s.runner();
        let mut done = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while tokio::time::Instant::now() < deadline {
            if !run(&runner).await.is_empty() {
                // A participation ended; the next may start at once.
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let rec = runner.jobs().get(&job_id).await.unwrap().unwrap();
            match rec.status {
                RoundJobStatus::Done => {
                    done = true;
                    break;
                }
                RoundJobStatus::Pending => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => panic!("{phase}: job {other:?}: {:?}", rec.error),
            }
        }
        assert!(done, "{phase}: the VTXO is renewed after the kill");
        assert_eq!(
            s.store.vtxo(&old).await.unwrap().unwrap().status,
            VtxoStatus::Spent,
            "{phase}"
        );
        s.assert_ledger_is_indexer().await;
        assert!(s.rounds.open_participations().await.unwrap().is_empty());
    }
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_kill_at_every_step_on_sqlite() {
    survives_a_kill_at_every_step(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_kill_at_every_step_on_mariadb() {
    survives_a_kill_at_every_step(TestDb::mariadb().await.unwrap()).await;
}

/// The chain simulator's clock (VTXO expiry is chain time in the simulator).
struct ChainClock(ark_relay_sim::Chain);

impl ark_relay_core::Clock for ChainClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.now())
    }
}

fn lnd_wallet(stack: &SimStack) -> Arc<dyn ark_relay_core::backends::chain::L1Chain> {
    let lnd = stack.endpoints().lnd;
    let cfg = ark_relay_grpc::daemon::DaemonConfig::new(
        lnd.url.clone(),
        lnd.tls_cert_pem.clone().map(String::into_bytes),
        Some(hex::decode(&lnd.macaroon_hex).unwrap()),
    );
    Arc::new(
        ark_relay_grpc::lnd::LndClient::new(
            &cfg,
            &ark_relay_grpc::resilience::HealthRegistry::new(),
        )
        .unwrap(),
    )
}

impl Setup {
    fn inventory_rounds(
        &self,
        clock: Arc<dyn ark_relay_core::Clock>,
        lifetime: i64,
    ) -> ark_relay_engine::rounds::InventoryRounds {
        ark_relay_engine::rounds::InventoryRounds::new(
            self.runner().jobs(),
            self.ark.clone(),
            Some(lnd_wallet(&self.stack)),
            self.store.clone(),
            self.stack.arkd.server_info().clone(),
            self.relay,
            clock,
            ark_relay_engine::rounds::InventoryRoundsConfig {
                vtxo_lifetime_secs: lifetime,
                renew_at_pct: 90,
                confirm_timeout: Duration::from_secs(30),
                confirm_poll: Duration::from_millis(100),
            },
        )
    }
}

async fn boarding_refills_a_critical_inventory(db: TestDb) {
    use ark_relay_core::inventory::{BatchStatus, InventoryPolicy, InventoryStore};
    use ark_relay_engine::inventory::{InventoryConfig, InventoryMonitor};
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let s = setup(db).await;
    let relay = s.relay_pk();
    // Blocks keep coming (the boarding payment confirms), rounds keep running.
    let chain = s.stack.chain.clone();
    let miner = tokio::spawn(async move {
        loop {
            chain.mine(1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let runner = Arc::new(s.runner());
    let rounds_task = {
        let runner = runner.clone();
        tokio::spawn(async move {
            loop {
                let _ = runner.run_once().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // One VTXO under a critical threshold of 3 (as if load used the rest).
    s.inventory_vtxo(5_000).await;
    let monitor = InventoryMonitor::new(
        s.store.clone(),
        Arc::new(s.db.store.clone()) as Arc<dyn InventoryStore>,
        None,
        vec![],
        None,
        relay,
        Arc::new(SystemClock),
        InventoryConfig {
            policy: InventoryPolicy {
                critical: 3,
                warning: 4,
                target: 5,
                batch_size: 4,
                max_batches_per_run: 1,
                low_fee_sat_vb: 10,
            },
            every: Duration::from_secs(1),
            vtxo_sats: Sats::new(5_000),
        },
    )
    .with_rounds(Arc::new(s.inventory_rounds(Arc::new(SystemClock), 605_184)));
    let report = monitor.run_once().await.expect("boarding run");
    assert_eq!(report.event, "boarding", "{report:?}");
    let batch = report.batches[0].clone();
    // While the round runs, the batch counts as in flight: no second batch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = monitor.run_once().await.expect("run");
        assert!(
            r.batches.is_empty() || r.added > 0,
            "no second batch: {r:?}"
        );
        let b = InventoryStore::recent_batches(&s.db.store, 10)
            .await
            .unwrap();
        let ours = b.iter().find(|b| b.batch_id == batch).unwrap();
        if ours.status == BatchStatus::Confirmed {
            assert_eq!(ours.created, 4);
            assert!(ours.l1_txid.is_some(), "the commitment txid is recorded");
            break;
        }
        assert_ne!(ours.status, BatchStatus::Failed, "{ours:?}");
        if tokio::time::Instant::now() > deadline {
            let job = runner.jobs().get(&batch).await.unwrap();
            let open = s.rounds.open_participations().await.unwrap();
            panic!(
                "boarding did not complete: job {job:?}, open {:?}, failed rounds {:?}, batches {:?}",
                open.iter().map(|p| p.state.split("\"phase\":{").nth(1).unwrap_or("").to_owned()).collect::<Vec<_>>(),
                s.stack.arkd.failed_rounds(),
                s.stack.arkd.batches()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(monitor.level().await.unwrap(), 5, "1 + a batch of 4");
    rounds_task.abort();
    miner.abort();
    s.assert_ledger_is_indexer().await;
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boarding_refills_a_critical_inventory_on_sqlite() {
    boarding_refills_a_critical_inventory(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boarding_refills_a_critical_inventory_on_mariadb() {
    boarding_refills_a_critical_inventory(TestDb::mariadb().await.unwrap()).await;
}

/// Two VTXO lifetimes of chain time in steps of 5 % of a lifetime: every
/// inventory VTXO is renewed inside its window, none is ever swept, and the
/// ledger follows arkd's indexer.
async fn renews_inventory_for_two_lifetimes(db: TestDb, lifetime: i64) {
    let s = setup_with_expiry(db, lifetime).await;
    let runner = s.runner();
    let chain = s.stack.chain.clone();
    let rounds = s.inventory_rounds(Arc::new(ChainClock(chain.clone())), lifetime);
    // The first inventory VTXO comes from a round too (a renewal of a
    // funded one), so that it belongs to a batch that can be swept.
    let seed = s.inventory_vtxo(8_000).await;
    runner
        .jobs()
        .enqueue(&s.renewal(seed, 8_000, "seed"))
        .await
        .unwrap();
    run(&runner).await;
    chain.mine(1);
    let script = s
        .stack
        .arkd
        .server_info()
        .default_vtxo(&s.relay_pk())
        .script_pubkey();
    let step = lifetime / 20;
    let mut renewed = 0;
    for _ in 0..40 {
        chain.advance_time(step);
        renewed += rounds.renew_due().await.unwrap();
        run(&runner).await;
        chain.mine(1);
        let swept: Vec<_> = s
            .stack
            .arkd
            .vtxos()
            .into_iter()
            .filter(|v| v.script == script && v.swept)
            .collect();
        assert!(swept.is_empty(), "inventory VTXO swept: {swept:?}");
        s.assert_ledger_is_indexer().await;
    }
    assert!(renewed >= 2, "renewed {renewed} times in two lifetimes");
    let unspent = s.store.unspent_vtxos(&s.relay_pk()).await.unwrap();
    assert_eq!(unspent.len(), 1);
    assert_eq!(unspent[0].sats, Sats::new(8_000), "same sats");
    s.stack.stop().await;
    s.db.destroy().await;
}

async fn setup_with_expiry(db: TestDb, lifetime: i64) -> Setup {
    let options = SimOptions {
        arkd: ArkdSimConfig {
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                vtxo_tree_expiry: ark_relay_ark::RelativeLocktime::seconds(
                    u32::try_from(lifetime).unwrap(),
                )
                .unwrap(),
                ..RoundConfig::default()
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    };
    let stack = SimStack::start(options).await.expect("sims");
    let ark: Arc<dyn ArkServer> = Arc::new(
        ArkdClient::connect(stack.endpoints().arkd)
            .await
            .expect("arkd"),
    );
    let relay = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    Setup {
        store: Arc::new(db.store.clone()),
        rounds: Arc::new(db.store.clone()),
        db,
        stack,
        ark,
        relay,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_for_two_lifetimes_on_sqlite() {
    renews_inventory_for_two_lifetimes(TestDb::sqlite().await.unwrap(), 10_240).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_for_two_lifetimes_on_mariadb() {
    renews_inventory_for_two_lifetimes(TestDb::mariadb().await.unwrap(), 10_240).await;
}

/// A simulator with `round`'s settings (fee programs, batch expiry).
async fn setup_with_round(db: TestDb, round: RoundConfig) -> Setup {
    let options = SimOptions {
        arkd: ArkdSimConfig {
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                ..round
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    };
    let stack = SimStack::start(options).await.expect("sims");
    let ark: Arc<dyn ArkServer> = Arc::new(
        ArkdClient::connect(stack.endpoints().arkd)
            .await
            .expect("arkd"),
    );
    let relay = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    Setup {
        store: Arc::new(db.store.clone()),
        rounds: Arc::new(db.store.clone()),
        db,
        stack,
        ark,
        relay,
    }
}

/// arkd charges 200 sats per VTXO input (its fee programs, `GetInfo.fees`)
/// and the relay is given no lifetime: a renewal that leaves no fee is
/// refused at registration (`INTENT_INSUFFICIENT_FEE`); `renew_due` learns
/// the lifetime from the round's `batch_expiry`, schedules each VTXO from
/// its own expiry, and pays arkd's fee out of it (new = old − 200) for one
/// and a half lifetimes of chain time with nothing swept.
async fn renews_inventory_paying_arkds_fee(db: TestDb) {
    use ark_relay_sim::arkd::round::fees::FeePrograms;
    let lifetime = 10_240;
    let s = setup_with_round(
        db,
        RoundConfig {
            vtxo_tree_expiry: ark_relay_ark::RelativeLocktime::seconds(lifetime as u32).unwrap(),
            fees: FeePrograms::flat(200, 0, 0, 0),
            ..RoundConfig::default()
        },
    )
    .await;
    let runner = s.runner();
    let chain = s.stack.chain.clone();
    assert_eq!(runner.jobs().learned_lifetime().await.unwrap(), None);
    // A renewal that leaves arkd nothing is refused at registration.
    let seed = s.inventory_vtxo(8_000).await;
    let jobs = runner.jobs();
    jobs.enqueue(&s.renewal(seed, 8_000, "free")).await.unwrap();
    run(&runner).await;
    let free = jobs.get("free").await.unwrap().unwrap();
    assert_eq!(free.status, RoundJobStatus::Failed, "{free:?}");
    assert!(
        free.error
            .as_deref()
            .is_some_and(|e| e.contains("INTENT_INSUFFICIENT_FEE")),
        "{free:?}"
    );
    // One that leaves the fee is renewed; the round teaches the lifetime.
    jobs.enqueue(&s.renewal_paying(seed, 8_000, 200, "seed"))
        .await
        .unwrap();
    run(&runner).await;
    assert_eq!(
        jobs.get("seed").await.unwrap().unwrap().status,
        RoundJobStatus::Done
    );
    assert_eq!(jobs.learned_lifetime().await.unwrap(), Some(lifetime));
    chain.mine(1);
    let mut rounds = s.inventory_rounds(Arc::new(ChainClock(chain.clone())), 0);
    let script = s
        .stack
        .arkd
        .server_info()
        .default_vtxo(&s.relay_pk())
        .script_pubkey();
    let mut renewed = 0u64;
    let mut sats = 7_800;
    for _ in 0..30 {
        chain.advance_time(lifetime / 20);
        let due = rounds.renew_due().await.unwrap();
        renewed += due;
        run(&runner).await;
        chain.mine(1);
        if due > 0 {
            sats -= 200;
        }
        let unspent = s.store.unspent_vtxos(&s.relay_pk()).await.unwrap();
        assert_eq!(unspent.len(), 1);
        assert_eq!(unspent[0].sats, Sats::new(sats), "input − arkd's fee");
        let swept = s
            .stack
            .arkd
            .vtxos()
            .into_iter()
            .filter(|v| v.script == script && v.swept)
            .count();
        assert_eq!(swept, 0, "an inventory VTXO was swept");
        s.assert_ledger_is_indexer().await;
    }
    assert!(renewed >= 1, "renewed {renewed} times in 1.5 lifetimes");
    rounds = s.inventory_rounds(Arc::new(SystemClock), 0);
    assert_eq!(rounds.renew_due().await.unwrap(), 0, "nothing due at once");
    s.stack.stop().await;
    s.db.destroy().await;
}

impl Setup {
    /// An inventory renewal of `sats` that leaves `fee` to arkd.
    fn renewal_paying(&self, id: VtxoId, sats: u64, fee: u64, job_id: &str) -> RoundJob {
        let mut job = self.renewal(id, sats, job_id);
        job.outputs[0].sats = Sats::new(sats - fee);
        job
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_paying_arkds_fee_on_sqlite() {
    renews_inventory_paying_arkds_fee(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_inventory_paying_arkds_fee_on_mariadb() {
    renews_inventory_paying_arkds_fee(TestDb::mariadb().await.unwrap()).await;
}
