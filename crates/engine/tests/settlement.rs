//! Hourly L1 settlement end to end, on a controllable clock: L2 transactions
//! committed over several hours, the settlement task committing their Merkle
//! roots through the lnd simulator (real gRPC, real transactions on the chain
//! sim), the 31342 notices arriving over a real websocket from the DevRelay,
//! and the inclusion proofs served by the HTTP API verifying (and failing when
//! tampered). Covers: an hour not closed before its delay; catch-up of missed
//! hours with an empty one; a restart with a row in `broadcast` (looked up,
//! not re-sent); a crash between broadcast and bookkeeping (found, not
//! doubled); a broadcast refused below the mempool minimum fee, retried after
//! backoff with a higher fee; two schedulers at once; four schedulers without
//! leader election racing over six hours (one row, one commitment and one
//! 31342 per hour).

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_api::{router, ApiInfo, ApiState};
use ark_relay_core::backends::chain::{commits_to, ChainError, Commitment, L1Chain, TxStatus};
use ark_relay_core::backends::lightning::BackendErrorKind;
use ark_relay_core::merkle::{MerkleProof, MerkleTree, Node};
use ark_relay_core::settlement::{SettlementRecord, SettlementStatus, SettlementStore};
use ark_relay_core::{Clock, RelayStore, UnixTime};
use ark_relay_engine::settlement::{SettlementConfig, SettlementTask};
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_protocol::content::L1Commitment;
use ark_relay_protocol::kinds;
use ark_relay_sim::chain::Chain;
use ark_relay_sim::lnd::{LnServer, LndSim, LndSimConfig};
use ark_relay_store::testing::TestDb;
use ark_relay_store::{Backend, SqlStore};
use ark_relay_testkit::fixtures;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bitcoin::Txid;
use nostr::{Event, Filter, Kind};
use tower::ServiceExt;

const H: i64 = 3_600;
const T0: i64 = 1_700_002_800; // on the hour

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

/// A wallet connection that loses the answer of its next broadcast: the
/// transaction reaches the chain, the caller sees an error (a crash between
/// the broadcast and the bookkeeping looks the same from the database).
struct LosesAnswer(Arc<LndClient>);

#[async_trait::async_trait]
impl L1Chain for LosesAnswer {
    async fn estimate_fee_rate(&self, t: u32) -> Result<u64, ChainError> {
        self.0.estimate_fee_rate(t).await
    }
    async fn tip_height(&self) -> Result<u32, ChainError> {
        self.0.tip_height().await
    }
    async fn broadcast_commitment(
        &self,
        payload: [u8; 32],
        rate: u64,
        label: &str,
    ) -> Result<Commitment, ChainError> {
        self.0.broadcast_commitment(payload, rate, label).await?;
        Err(ChainError::new(
            BackendErrorKind::Unavailable,
            "connection reset after send",
        ))
    }
    async fn find_commitment(&self, payload: [u8; 32]) -> Result<Option<Txid>, ChainError> {
        self.0.find_commitment(payload).await
    }
    async fn tx_status(&self, txid: &Txid) -> Result<Option<TxStatus>, ChainError> {
        self.0.tx_status(txid).await
    }
}

async fn commit_at(store: &SqlStore, at: i64) -> Txid {
    let owner = fixtures::key(3);
    let input = fixtures::vtxo(owner, 2_000, None);
    store
        .insert_vtxos(std::slice::from_ref(&input), UnixTime(at))
        .await
        .unwrap();
    let mut tx = fixtures::transaction(None, vec![input.id], vec![(owner, 2_000, None)]);
    tx.finalized_at = UnixTime(at);
    store.commit_transaction(&tx).await.unwrap();
    tx.ark_txid
}

async fn lnd(chain: &Chain) -> (LnServer, Arc<LndClient>) {
    let sim = LndSim::new(chain.clone(), LndSimConfig::default()).unwrap();
    let server = sim.clone().spawn(0).await.unwrap();
    let cfg = DaemonConfig {
        url: server.url(),
        tls_cert_pem: sim.tls_cert_pem().map(|p| p.as_bytes().to_vec()),
        macaroon: Some(sim.macaroon().to_vec()),
        timeout: Some(Duration::from_secs(10)),
        connect_timeout: Some(Duration::from_secs(5)),
    };
    let client = LndClient::new(&cfg, &HealthRegistry::new()).unwrap();
    (server, Arc::new(client))
}

fn config() -> SettlementConfig {
    SettlementConfig {
        retry_base: Duration::from_secs(10),
        retry_max: Duration::from_secs(60),
        ..SettlementConfig::default()
    }
}

async fn rows(store: &SqlStore) -> Vec<SettlementRecord> {
    let mut all = store.settlements(None, 100).await.unwrap();
    all.reverse();
    all
}

/// Every 31342 by `author` the Nostr relay has, read over a websocket.
async fn notices(url: &str, author: nostr::PublicKey, want: usize) -> Vec<Event> {
    let client = nostr_sdk::Client::default();
    client.add_relay(url).await.unwrap();
    client.connect().await;
    let filter = Filter::new()
        .kind(Kind::from(kinds::L1_COMMITMENT))
        .author(author);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<Event> = client
            .fetch_events(filter.clone(), Duration::from_secs(3))
            .await
            .map(|e| e.into_iter().collect())
            .unwrap_or_default();
        if events.len() >= want {
            client.disconnect().await;
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {want} 31342 notices, have {}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn content(e: &Event) -> L1Commitment {
    serde_json::from_str(&e.content).unwrap()
}

fn notice_for(events: &[Event], id: i64) -> L1Commitment {
    let d = id.to_string();
    let e = events
        .iter()
        .find(|e| e.tags.identifier() == Some(d.as_str()))
        .unwrap_or_else(|| panic!("no 31342 with d={d}"));
    content(e)
}

async fn api_get(app: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Checks the API's proof of every txid against the root the 31342 published.
async fn check_proofs(app: &axum::Router, id: i64, txids: &[Txid], published: &L1Commitment) {
    let root: Node = published.merkle_root_of_l2_txs.parse().unwrap();
    assert_eq!(root, MerkleTree::new(txids.iter().copied()).root());
    for t in txids {
        let (status, body) = api_get(app.clone(), &format!("/settlements/{id}/proof/{t}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["l1_txid"], published.l1_txid);
        assert_eq!(body["block_height"], published.block_height);
        let proof: MerkleProof = serde_json::from_value(serde_json::json!({
            "leaf": body["ark_txid"], "index": body["index"],
            "leaf_count": body["leaf_count"], "siblings": body["siblings"],
        }))
        .unwrap();
        assert!(proof.verify(&root), "proof of {t} does not verify: {body}");
        let mut bad = proof.clone();
        bad.leaf = fixtures::txid();
        assert!(!bad.verify(&root), "a proof verified for another txid");
        for i in 0..bad.siblings.len() {
            let mut bad = proof.clone();
            bad.siblings[i].0[0] ^= 0x01;
            assert!(!bad.verify(&root), "a flipped sibling verified");
        }
        if proof.leaf_count > 1 {
            let mut bad = proof.clone();
            bad.index = (bad.index + 1) % bad.leaf_count;
            assert!(!bad.verify(&root), "a wrong index verified");
        }
        let mut other = root;
        other.0[0] ^= 0x80;
        assert!(!proof.verify(&other), "verified against another root");
    }
}

async fn scenario(backend: Backend) {
    let db = TestDb::of(backend).await.unwrap();
    let store = db.store.clone();
    let nostr = common::dev_relay().await;
    let url = nostr.url().to_owned();
    let relay = common::start_relay(db, nostr).await;
    let chain = Chain::new(500);
    let (_lnd_server, lnd) = lnd(&chain).await;
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let task = |chain: Arc<dyn L1Chain>| {
        SettlementTask::new(
            Arc::new(store.clone()),
            chain,
            relay.keys.clone(),
            clock.clone(),
            config(),
        )
    };
    let scheduler = task(lnd.clone());

    // Hour 0: three transactions; hour 1: two; hour 2: none; hour 3: one.
    let mut hour0 = Vec::new();
    for i in 0..3 {
        hour0.push(commit_at(&store, T0 + 10 + i).await);
    }
    let hour1 = vec![
        commit_at(&store, T0 + H + 5).await,
        commit_at(&store, T0 + 2 * H - 1).await,
    ];
    let hour3 = vec![commit_at(&store, T0 + 3 * H + 7).await];

    // Not before the settle delay after the hour.
    clock.set(T0 + H + 30);
    scheduler.run_once().await;
    assert!(rows(&store).await.is_empty(), "closed too early");

    clock.set(T0 + H + 61);
    scheduler.run_once().await;
    let r = rows(&store).await;
    assert_eq!(r.len(), 1);
    let s0 = &r[0];
    assert_eq!((s0.period_start.0, s0.period_end.0), (T0, T0 + H));
    assert_eq!(s0.status, SettlementStatus::Broadcast);
    assert_eq!(s0.l2_tx_count, 3);
    assert_eq!(
        s0.fee_rate_sat_vb,
        Some(25),
        "the estimate (chain sim fee rate)"
    );
    let l1_0 = s0.l1_txid.unwrap();
    assert_eq!(chain.mempool(), vec![l1_0]);
    let root0 = s0.merkle_root.unwrap();
    assert!(commits_to(&chain.mempool_tx(&l1_0).unwrap(), &root0.0));

    // A restarted scheduler and a second one at once: the row in `broadcast`
    // is looked up, not re-sent; no period is opened twice.
    let other = task(lnd.clone());
    let restarted = task(lnd.clone());
    tokio::join!(other.run_once(), restarted.run_once());
    assert_eq!(chain.mempool(), vec![l1_0], "re-broadcast after restart");
    assert_eq!(rows(&store).await.len(), 1);

    chain.mine(1);
    scheduler.run_once().await;
    let s0 = store.settlement(s0.id).await.unwrap().unwrap();
    assert_eq!(s0.status, SettlementStatus::Published);
    assert_eq!(s0.block_height, Some(501));
    assert!(s0.notice_event_id.is_some());
    let got = notices(&url, relay.keys.public_key(), 1).await;
    let n0 = notice_for(&got, s0.id);
    assert_eq!(n0.l1_txid, l1_0.to_string());
    assert_eq!(n0.block_height, 501);
    assert_eq!(n0.l2_tx_count, 3);
    assert_eq!(n0.period, [T0, T0 + H]);
    assert_eq!(n0.merkle_root_of_l2_txs, root0.to_string());
    assert_eq!(
        got[0].id.to_hex(),
        s0.notice_event_id.unwrap().to_string(),
        "the recorded notice id is the published event"
    );

    // The relay was down for three hours, and fees spiked above the estimate.
    chain.set_mempool_min_fee(40);
    clock.set(T0 + 4 * H + 61);
    scheduler.run_once().await;
    let r = rows(&store).await;
    assert_eq!(r.len(), 4, "hours 1, 2, 3 caught up");
    let (s1, s2, s3) = (r[1].clone(), r[2].clone(), r[3].clone());
    assert_eq!(
        [s1.period_start.0, s2.period_start.0, s3.period_start.0],
        [T0 + H, T0 + 2 * H, T0 + 3 * H],
        "oldest first, none skipped"
    );
    assert_eq!(
        (s2.status, s2.l2_tx_count, s2.l1_txid),
        (SettlementStatus::Published, 0, None)
    );
    for s in [&s1, &s3] {
        assert_eq!(
            s.status,
            SettlementStatus::Pending,
            "refused below the minimum fee"
        );
        assert_eq!((s.attempts, s.fee_rate_sat_vb), (1, Some(25)));
    }
    assert_eq!(chain.mempool(), Vec::<Txid>::new());

    // Within the backoff: no new attempt.
    clock.advance(5);
    scheduler.run_once().await;
    assert_eq!(store.settlement(s1.id).await.unwrap().unwrap().attempts, 1);
    // After it: a higher fee, still too low (25 → 37 < 40).
    clock.advance(10);
    scheduler.run_once().await;
    let s1_now = store.settlement(s1.id).await.unwrap().unwrap();
    assert_eq!((s1_now.attempts, s1_now.fee_rate_sat_vb), (2, Some(37)));
    assert_eq!(s1_now.status, SettlementStatus::Pending);
    // The backoff doubled (20 s): 15 s later nothing; then 37 → 55 gets in.
    clock.advance(15);
    scheduler.run_once().await;
    assert_eq!(store.settlement(s1.id).await.unwrap().unwrap().attempts, 2);
    clock.advance(10);
    scheduler.run_once().await;
    let s1_now = store.settlement(s1.id).await.unwrap().unwrap();
    let s3_now = store.settlement(s3.id).await.unwrap().unwrap();
    for s in [&s1_now, &s3_now] {
        assert_eq!(s.status, SettlementStatus::Broadcast);
        assert_eq!((s.attempts, s.fee_rate_sat_vb), (3, Some(55)));
    }
    assert_eq!(chain.mempool().len(), 2);

    // Hour 4, and a crash between the broadcast and its bookkeeping.
    let hour4 = vec![
        commit_at(&store, T0 + 4 * H + 100).await,
        commit_at(&store, T0 + 4 * H + 200).await,
    ];
    chain.set_mempool_min_fee(1);
    clock.set(T0 + 5 * H + 61);
    let crashing = task(Arc::new(LosesAnswer(lnd.clone())));
    crashing.run_once().await;
    let s4 = rows(&store).await.pop().unwrap();
    assert_eq!((s4.period_start.0, s4.l2_tx_count), (T0 + 4 * H, 2));
    assert_eq!((s4.status, s4.attempts), (SettlementStatus::Pending, 1));
    let root4 = s4.merkle_root.unwrap();
    let on_chain: Vec<Txid> = chain
        .mempool()
        .into_iter()
        .filter(|t| commits_to(&chain.mempool_tx(t).unwrap(), &root4.0))
        .collect();
    assert_eq!(
        on_chain.len(),
        1,
        "the lost broadcast did reach the mempool"
    );
    // Restart: the commitment is found in the wallet, not sent again.
    clock.advance(11);
    let after_restart = task(lnd.clone());
    after_restart.run_once().await;
    let s4 = store.settlement(s4.id).await.unwrap().unwrap();
    assert_eq!(s4.status, SettlementStatus::Broadcast);
    assert_eq!(s4.l1_txid, Some(on_chain[0]));
    assert_eq!(s4.attempts, 1, "no second attempt");
    assert_eq!(chain.mempool().len(), 3, "hours 1, 3 and 4, once each");

    chain.mine(1);
    after_restart.run_once().await;
    let r = rows(&store).await;
    assert_eq!(r.len(), 5);
    assert!(r.iter().all(|s| s.status == SettlementStatus::Published));
    let mut starts: Vec<i64> = r.iter().map(|s| s.period_start.0).collect();
    starts.dedup();
    assert_eq!(starts, vec![T0, T0 + H, T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]);

    // Four notices (the empty hour has none), over the websocket.
    let got = notices(&url, relay.keys.public_key(), 4).await;
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|e| e.tags.identifier() != Some(s2.id.to_string().as_str())));
    let app = router(
        ApiState::new(
            relay.store.clone(),
            ApiInfo {
                name: "ark-relay".into(),
                version: "0".into(),
                pubkey: relay.keys.public_key().to_hex(),
                npub: String::new(),
                relays: vec![url.clone()],
                kinds_consumed: vec![],
                encryption: vec![],
                transfer_fee: 0,
                land_fee_ppm: 0,
                ark: None,
                database: backend.as_str().into(),
            },
        )
        .with_settlements(Arc::new(store.clone())),
    );
    for (s, txids) in [(&s0, &hour0), (&s1, &hour1), (&s3, &hour3), (&s4, &hour4)] {
        let n = notice_for(&got, s.id);
        assert_eq!(n.block_height, if s.id == s0.id { 501 } else { 502 });
        assert_eq!(n.l2_tx_count, txids.len() as u64);
        check_proofs(&app, s.id, txids, &n).await;
    }
    // A txid of hour 1 is not in hour 0's tree: 404, pointing at the right one.
    let (status, body) = api_get(
        app.clone(),
        &format!("/settlements/{}/proof/{}", s0.id, hour1[0]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("settlement {}", s1.id)));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hourly_settlement_on_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hourly_settlement_on_mariadb() {
    scenario(Backend::MariaDb).await;
}

/// Four schedulers without any leader election, ticking at once over six
/// hours of transactions: every hour gets exactly one row and exactly one
/// commitment on the chain.
async fn racing_schedulers(backend: Backend) {
    let db = TestDb::of(backend).await.unwrap();
    let store = db.store.clone();
    let chain = Chain::new(700);
    let (_server, lnd) = lnd(&chain).await;
    let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
    let keys = nostr::Keys::generate();
    for h in 0..6 {
        for i in 0..(h + 1) {
            commit_at(&store, T0 + h * H + 10 * i).await;
        }
    }
    clock.set(T0 + 6 * H + 61);
    let tasks: Vec<Arc<SettlementTask>> = (0..4)
        .map(|_| {
            Arc::new(SettlementTask::new(
                Arc::new(store.clone()),
                lnd.clone(),
                keys.clone(),
                clock.clone(),
                config(),
            ))
        })
        .collect();
    for _ in 0..3 {
        let handles: Vec<_> = tasks
            .iter()
            .map(|t| {
                let t = t.clone();
                tokio::spawn(async move { t.run_once().await })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }
    let r = rows(&store).await;
    assert_eq!(r.len(), 6, "one row per hour");
    let mempool: Vec<bitcoin::Transaction> = chain
        .mempool()
        .iter()
        .map(|t| chain.mempool_tx(t).unwrap())
        .collect();
    assert_eq!(mempool.len(), 6, "one commitment per hour");
    for (h, s) in r.iter().enumerate() {
        assert_eq!(s.period_start.0, T0 + h as i64 * H);
        assert_eq!(s.l2_tx_count, h as u64 + 1);
        assert_eq!(s.status, SettlementStatus::Broadcast);
        assert_eq!(s.attempts, 1, "hour {h} attempted more than once");
        let root = s.merkle_root.unwrap();
        let n = mempool.iter().filter(|t| commits_to(t, &root.0)).count();
        assert_eq!(n, 1, "hour {h} committed {n} times");
    }
    chain.mine(1);
    for t in &tasks {
        t.run_once().await;
    }
    let r = rows(&store).await;
    assert!(r.iter().all(|s| s.status == SettlementStatus::Published));
    let out = ark_relay_core::RelayStore::due_outbox(&store, UnixTime(i64::MAX / 2), 100)
        .await
        .unwrap();
    assert_eq!(
        out.iter()
            .filter(|o| o.kind == kinds::L1_COMMITMENT)
            .count(),
        6,
        "one 31342 per hour"
    );
    db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_schedulers_on_sqlite() {
    racing_schedulers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_schedulers_on_mariadb() {
    racing_schedulers(Backend::MariaDb).await;
}
