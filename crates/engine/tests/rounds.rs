//! The relay in Ark batch rounds over the real parts: the arkd simulator's
//! rounds over gRPC (`ArkdClient`), the ledger and the saga on MariaDB and
//! SQLite. The relay renews its own inventory VTXO through a round (ledger =
//! arkd indexer after it), survives a kill after every persisted step (the
//! round completes or fails cleanly and the next one renews; nothing is
//! forfeited without its replacement).
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
