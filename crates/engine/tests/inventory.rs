//! The VTXO inventory monitor over the real parts: the ledger on MariaDB,
//! the arkd simulator over gRPC creating the VTXOs, lnd's `EstimateFee` and
//! the chain simulator as fee estimators (TLS-pinned, macaroon-authenticated,
//! like the daemons), and the updates on real Redis pub/sub.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::backends::fees::{FeeEstimator, LightningFees};
use ark_relay_core::inventory::{BatchStatus, InventoryPolicy, InventoryStore, LevelState};
use ark_relay_core::{DynBus, DynStore, PubKey, Sats, SystemClock, UnixTime, VtxoStatus};
use ark_relay_engine::inventory::{InventoryConfig, InventoryMonitor, CHANNEL};
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::inventory::{ArkdSimProvisioner, ChainSimFees};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_queue::RedisBus;
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use nostr::Keys;

struct Setup {
    db: TestDb,
    store: DynStore,
    stack: SimStack,
    relay: PubKey,
    bus: Arc<RedisBus>,
    fees: Vec<Arc<dyn FeeEstimator>>,
}

async fn setup() -> Setup {
    let url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "ark-relay-test-inv-{}",
        Keys::generate().public_key().to_hex()
    );
    let bus = Arc::new(RedisBus::connect(&url, &prefix).await.expect("Redis"));
    let db = TestDb::mariadb().await.expect("MariaDB");
    let store: DynStore = Arc::new(db.store.clone());
    let stack = SimStack::start(SimOptions::default()).await.expect("sims");
    let relay = ark_relay_protocol::pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
    let lnd = stack.endpoints().lnd;
    let cfg = DaemonConfig::new(
        lnd.url.clone(),
        lnd.tls_cert_pem.clone().map(String::into_bytes),
        Some(hex::decode(&lnd.macaroon_hex).unwrap()),
    );
    let lnd_client = LndClient::new(&cfg, &HealthRegistry::new()).expect("lnd client");
    let fees: Vec<Arc<dyn FeeEstimator>> = vec![
        Arc::new(LightningFees::new(Arc::new(lnd_client), 6)),
        Arc::new(ChainSimFees::new(&cfg).expect("chain sim client")),
    ];
    Setup {
        db,
        store,
        stack,
        relay,
        bus,
        fees,
    }
}

impl Setup {
    fn monitor(&self, policy: InventoryPolicy) -> InventoryMonitor {
        let provisioner = ArkdSimProvisioner::new(&self.stack.endpoints().arkd).expect("arkd");
        InventoryMonitor::new(
            self.store.clone(),
            Arc::new(self.db.store.clone()) as Arc<dyn InventoryStore>,
            Some(Arc::new(provisioner)),
            self.fees.clone(),
            Some(self.bus.clone() as DynBus),
            self.relay,
            Arc::new(SystemClock),
            InventoryConfig {
                policy,
                every: Duration::from_secs(1),
                vtxo_sats: Sats::new(2_000),
            },
        )
    }

    /// Gives the relay `n` inventory VTXOs at arkd and in the ledger.
    async fn seed(&self, n: usize) {
        ark_relay_testkit::seed::seed_inventory(
            self.store.as_ref(),
            &self.stack.arkd,
            self.relay,
            n,
            2_000,
        )
        .await;
    }

    async fn level(&self) -> u64 {
        self.store
            .count_vtxos(&self.relay, VtxoStatus::Available)
            .await
            .unwrap()
    }
}

fn small() -> InventoryPolicy {
    InventoryPolicy {
        critical: 5,
        warning: 10,
        target: 20,
        batch_size: 4,
        max_batches_per_run: 10,
        low_fee_sat_vb: 10,
    }
}

async fn next_update(sub: &mut ark_relay_queue::RedisSubscription) -> serde_json::Value {
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("an inventory update in time")
        .expect("subscription open");
    serde_json::from_str(&msg).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_critical_is_replenished_whatever_the_fee_and_announced_on_redis() {
    let s = setup().await;
    let mut sub = s.bus.subscribe(CHANNEL).await.expect("subscribe");
    s.stack.chain.set_fee_rate(80); // expensive: critical replenishes anyway
    s.seed(2).await;
    let monitor = s.monitor(small());

    let report = monitor.run_once().await.expect("run");
    // 18 missing to the target of 20, in batches of 4: 5 batches, 20 VTXOs.
    assert_eq!(report.event, "replenished");
    assert_eq!(
        (report.previous, report.level, report.added),
        (Some(2), 22, 20)
    );
    assert_eq!(report.fee_rate_sat_vb, Some(80));
    assert_eq!(report.state, LevelState::Healthy);
    assert_eq!(s.level().await, 22);

    let batches = s.db.store.recent_batches(10).await.unwrap();
    assert_eq!(batches.len(), 5);
    assert!(batches.iter().all(|b| b.status == BatchStatus::Confirmed
        && b.requested == 4
        && b.created == 4
        && b.reason == "critical"
        && b.fee_rate_sat_vb == Some(80)));

    // Every new VTXO exists at arkd, owned by the relay's default script.
    let free = s.store.free_inventory(&s.relay, 0, 100).await.unwrap();
    assert_eq!(free.len(), 22);
    let script = s
        .stack
        .arkd
        .server_info()
        .default_vtxo(&s.relay)
        .script_pubkey();
    for v in &free {
        let at = s.stack.arkd.vtxo(&v.id.outpoint()).expect("at arkd");
        assert_eq!(at.script, script);
        assert_eq!(at.amount, v.sats.get());
    }

    let msg = next_update(&mut sub).await;
    assert_eq!(msg["event"], "replenished");
    assert_eq!(msg["previous"], 2);
    assert_eq!(msg["level"], 22);
    assert_eq!(msg["added"], 20);
    assert_eq!(msg["state"], "healthy");
    assert_eq!(msg["batches"].as_array().unwrap().len(), 5);

    // A run that sees the same level decides to hold and publishes nothing new;
    // a spent VTXO lowers the level and is announced.
    let again = monitor.run_once().await.expect("run");
    assert_eq!((again.event, again.added), ("level", 0));
    s.seed(1).await;
    let changed = monitor.run_once().await.expect("run");
    assert_eq!(changed.level, 23);
    let msg = next_update(&mut sub).await;
    assert_eq!(
        (msg["event"].as_str(), msg["level"].as_u64()),
        (Some("level"), Some(23))
    );
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_warning_waits_for_low_fees() {
    let s = setup().await;
    s.seed(7).await; // warning: 5 <= 7 < 10
    let monitor = s.monitor(small());

    s.stack.chain.set_fee_rate(25);
    let held = monitor.run_once().await.expect("run");
    assert_eq!(
        (held.event, held.added, held.state),
        ("level", 0, LevelState::Warning)
    );
    assert_eq!(held.fee_rate_sat_vb, Some(25));
    assert!(s.db.store.recent_batches(10).await.unwrap().is_empty());

    s.stack.chain.set_fee_rate(10); // not *below* 10
    assert_eq!(monitor.run_once().await.expect("run").added, 0);

    s.stack.chain.set_fee_rate(3);
    let filled = monitor.run_once().await.expect("run");
    // 13 missing, batches of 4: 4 batches, 16 VTXOs.
    assert_eq!((filled.added, filled.level), (16, 23));
    let batches = s.db.store.recent_batches(10).await.unwrap();
    assert!(batches
        .iter()
        .all(|b| b.reason == "low_fee" && b.fee_rate_sat_vb == Some(3)));
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_marks_the_batch_failed_and_changes_nothing() {
    let s = setup().await;
    s.seed(1).await;
    // A provisioner pointed at nothing: every call fails (transiently).
    let monitor = InventoryMonitor::new(
        s.store.clone(),
        Arc::new(s.db.store.clone()) as Arc<dyn InventoryStore>,
        Some(Arc::new(
            ArkdSimProvisioner::new("http://127.0.0.1:9").expect("client"),
        )),
        s.fees.clone(),
        None,
        s.relay,
        Arc::new(SystemClock),
        InventoryConfig {
            policy: small(),
            ..Default::default()
        },
    );
    assert!(monitor.run_once().await.is_err());
    assert_eq!(s.level().await, 1);
    let batches = s.db.store.recent_batches(10).await.unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].status, BatchStatus::Failed);
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_batch_is_recovered_from_the_ark_server() {
    let s = setup().await;
    s.seed(20).await; // healthy: no new batch
                      // A run died after arkd made 3 VTXOs and before they reached the ledger.
    s.db.store
        .begin_batch(&ark_relay_core::inventory::InventoryBatch {
            batch_id: "crashed".into(),
            requested: 4,
            created: 0,
            reason: "critical".into(),
            fee_rate_sat_vb: Some(2),
            status: BatchStatus::Requested,
            l1_txid: None,
            created_at: UnixTime::now(),
            completed_at: None,
        })
        .await
        .unwrap();
    let stranded: Vec<_> = (0..3)
        .map(|_| s.stack.arkd.fund(&s.relay, Sats::new(2_000)).outpoint)
        .collect();
    let ark = ark_relay_grpc::arkd::ArkdClient::connect(s.stack.endpoints().arkd)
        .await
        .expect("arkd");
    let monitor = s
        .monitor(small())
        .with_recovery(Arc::new(ark), s.stack.arkd.server_info().clone());
    let report = monitor.run_once().await.expect("run");
    assert_eq!((report.recovered, report.level, report.added), (3, 23, 0));
    for o in stranded {
        let v = s
            .store
            .vtxo(&o.into())
            .await
            .unwrap()
            .expect("in the ledger");
        assert_eq!((v.owner, v.status), (s.relay, VtxoStatus::Available));
    }
    let b = &s.db.store.recent_batches(1).await.unwrap()[0];
    assert_eq!((b.status, b.created), (BatchStatus::Confirmed, 3));
    // Nothing left to recover: the next run finds nothing new.
    assert_eq!(monitor.run_once().await.expect("run").recovered, 0);
    s.stack.stop().await;
    s.db.destroy().await;
}
