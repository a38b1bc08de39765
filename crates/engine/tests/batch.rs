//! Atomic batches end to end over the real parts (issue 7, PRD §5.2, §12
//! scenarios 3 and 4): reference wallets sign their intents and hand them to
//! a submitter; the relay runs one signing session per party over encrypted
//! DMs on a websocket Nostr relay, settles everything in one Ark transaction
//! with the arkd simulator over gRPC, commits the ledger on MariaDB (SQLite
//! for one scenario) and publishes one 31340 — or nothing moves.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::arkade_id;
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{AssetAmount, AssetId, AssetType, DynStore, ErrorCode, PubKey, VtxoStatus};
use ark_relay_engine::ceremony::{CrashHook, CrashPoint};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_protocol::content::{
    l2_asset_id, AssetRef, Confirmation, IntentContent, IntentType, SupplyChange, WireAmount,
};
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_sim::arkd::ArkdSim;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{SignPolicy, Wallet as RefWallet, WalletOptions};
use nostr::Keys;
use tokio::sync::watch;

use common::{answers, Wallet as Observer};

const OUTCOME: Duration = Duration::from_secs(90);

struct Setup {
    store: DynStore,
    sim: ArkdSim,
    relay_keys: Keys,
    relay_pk: PubKey,
    gbtc: AssetId,
    gusd: AssetId,
    server: ServerInfo,
    stop: watch::Sender<bool>,
    engine: tokio::task::JoinHandle<()>,
    nostr_url: String,
    arkd_url: String,
    _db: TestDb,
    _nostr: ark_relay_nostr::DevRelay,
    _sim_server: ark_relay_sim::arkd::SimServer,
}

fn rand_id() -> AssetId {
    AssetId::from_bytes(Keys::generate().public_key().to_bytes())
}

async fn setup(db: TestDb) -> Setup {
    setup_with(db, None, None).await
}

async fn setup_with(
    db: TestDb,
    tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>,
    crash: Option<CrashHook>,
) -> Setup {
    let common::Parts {
        db,
        store,
        nostr,
        sim,
        sim_server,
        server,
        relay_keys,
        relay_pk,
        ..
    } = common::parts(db, 8).await;
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let gusd = common::register(&store, "gUSD", AssetType::Permissionless).await;
    let arkd_url = sim_server.url();
    let (stop, engine) = start_engine(
        &store,
        &relay_keys,
        &server,
        nostr.url(),
        &arkd_url,
        tamper,
        crash,
    )
    .await;
    Setup {
        store,
        sim,
        relay_keys,
        relay_pk,
        gbtc,
        gusd,
        server,
        stop,
        engine,
        nostr_url: nostr.url().to_owned(),
        arkd_url,
        _db: db,
        _nostr: nostr,
        _sim_server: sim_server,
    }
}

/// One relay process: the ceremony (which runs batches) on the shared parts,
/// its jobs on real Redis Streams (a fresh stream per process, as a restarted
/// process finds its work again from the database).
async fn start_engine(
    store: &DynStore,
    relay_keys: &Keys,
    server: &ServerInfo,
    nostr_url: &str,
    arkd_url: &str,
    tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>,
    crash: Option<CrashHook>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let redis = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("ark-relay-test-batch-{}", rand_id());
    let queue = ark_relay_queue::RedisQueue::connect(&redis, &prefix, Default::default())
        .await
        .expect("Redis");
    common::start_ceremony(
        store,
        relay_keys,
        server,
        nostr_url,
        arkd_url,
        tamper,
        crash,
        Arc::new(queue),
    )
    .await
}

/// Gives `owner` a VTXO of `amount` of `asset` at arkd and in the ledger.
async fn fund(s: &Setup, owner: &PubKey, asset: AssetId, amount: u64) -> ark_relay_core::VtxoId {
    common::fund(&s.store, &s.sim, owner, asset, amount).await
}

async fn wallet(s: &Setup, keys: Keys) -> RefWallet {
    let opts = WalletOptions {
        send_timeout: OUTCOME,
        ..WalletOptions::default()
    };
    RefWallet::connect(keys, s.relay_pk, vec![s.nostr_url.clone()], opts)
        .await
        .expect("wallet")
}

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("key")
}

async fn balance(s: &Setup, who: &PubKey, asset: &AssetId) -> u64 {
    let b = s.store.balances(who).await.expect("balances");
    b.assets.get(asset).map(|a| a.get()).unwrap_or(0)
}

fn id(a: AssetId) -> AssetRef {
    AssetRef::Id(a)
}

/// A party's batch intent: pays `pays`, expects `expects`.
fn leg(
    w: &RefWallet,
    kind: IntentType,
    action: &str,
    pays: &[(PubKey, AssetRef, u64)],
    expects: &[(PubKey, AssetRef, u64)],
) -> IntentContent {
    IntentContent::batch_leg(
        kind,
        action,
        pays,
        expects,
        &w.relay(),
        10,
        w.intent_expiry(),
    )
}

/// Scenario 3: Alice swaps 1 000 gBTC for 650 gUSD with the DEX; one Ark
/// transaction, both balances right, one 31340 e-tagging both intents. The
/// same intent in a second batch is then refused with 1005.
async fn swap_scenario(db: TestDb) {
    let s = setup(db).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    fund(&s, &alice_pk, s.gbtc, 5_000).await;
    fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let observer = Observer::connect_as(&s.nostr_url, alice_keys.clone()).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;

    let alice_intent = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "swap-a1",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice signs");
    let dex_intent = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "swap-d1",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex signs");
    let (a_id, d_id) = (
        event_id_from_nostr(&alice_intent.id),
        event_id_from_nostr(&dex_intent.id),
    );
    let accepted = dex
        .submit_batch("b-1", vec![alice_intent.clone(), dex_intent.clone()])
        .await
        .expect("accepted");
    assert_eq!(accepted["status"], "signing");
    let (ca, cd) = tokio::join!(alice.outcome(a_id, OUTCOME), dex.outcome(d_id, OUTCOME));
    let (ca, cd) = (ca.expect("alice completes"), cd.expect("dex completes"));
    assert_eq!(ca.ark_txid, cd.ark_txid, "one Ark transaction");
    assert_eq!(ca.intents.len(), 2);
    assert!(ca.intents.contains(&a_id) && ca.intents.contains(&d_id));

    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 3_990);
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 650);
    assert_eq!(balance(&s, &dex_pk, &s.gusd).await, 99_350);
    assert_eq!(balance(&s, &dex_pk, &s.gbtc).await, 1_990);
    assert_eq!(balance(&s, &s.relay_pk, &s.gbtc).await, 20, "two fees");
    for (asset, supply) in [(s.gbtc, 6_000), (s.gusd, 100_000)] {
        let a = s.store.asset(&asset).await.expect("asset").expect("known");
        assert_eq!(a.total_supply, AssetAmount::new(supply), "colour conserved");
    }
    // arkd agrees with the ledger on every created VTXO.
    for c in &ca.created {
        assert_eq!(
            s.sim.vtxo(&c.vtxo.outpoint()).expect("at arkd").amount,
            c.sats
        );
    }
    // Exactly one 31340, e-tagging both intents.
    observer
        .wait_answer("the 31340", kinds::CONFIRMATION, &alice_intent.id, OUTCOME)
        .await;
    let confs: Vec<_> = observer
        .received()
        .await
        .into_iter()
        .filter(|e| answers(e, kinds::CONFIRMATION, &alice_intent.id))
        .collect();
    assert_eq!(confs.len(), 1, "one 31340 for the batch");
    assert!(answers(&confs[0], kinds::CONFIRMATION, &dex_intent.id));
    let body: Confirmation = serde_json::from_str(&confs[0].content).expect("json");
    assert_eq!(body.ark_txid, ca.ark_txid);

    // The same (consumed) intent in a second batch: 1005, nothing moves.
    let dex_again = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "swap-d2",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex signs again");
    let err = dex
        .submit_batch("b-2", vec![alice_intent, dex_again])
        .await
        .expect_err("a consumed intent");
    assert_eq!(err.code(), Some(ErrorCode::ReplayedAction), "{err}");
    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 3_990);
    assert_eq!(balance(&s, &dex_pk, &s.gusd).await, 99_350);
    common::assert_reconciled(&s._db.store, &s.arkd_url).await;
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenario_3_alice_swaps_gbtc_for_gusd_with_the_dex_mariadb() {
    swap_scenario(TestDb::mariadb().await.expect("MariaDB")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenario_3_alice_swaps_gbtc_for_gusd_with_the_dex_sqlite() {
    swap_scenario(TestDb::sqlite().await.expect("SQLite")).await;
}

/// Scenario 4: Alice deposits 1 000 gBTC + 650 gUSD and receives LP tokens the
/// DEX mints (an Arkade asset the DEX issued with `issue_asset`: each mint
/// spends and re-creates its control VTXO, a reissuance arkd's strict rules
/// accept); then she returns them and gets her deposit back while the DEX
/// burns them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenario_4_add_then_remove_liquidity() {
    let s = setup(TestDb::mariadb().await.expect("MariaDB")).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    fund(&s, &alice_pk, s.gbtc, 2_000).await;
    fund(&s, &alice_pk, s.gusd, 1_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;
    let issued = dex
        .request(&ServiceRequest::IssueAsset {
            ticker: "gLP".into(),
            name: Some("gBTC/gUSD pool share".into()),
            decimals: None,
        })
        .await
        .expect("issue_asset");
    let lp: AssetId = issued["asset_id"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the LP token's id");
    let genesis_unit = 1; // the DEX's, from the genesis
    let ark = ArkdClient::connect(s.arkd_url.clone())
        .await
        .expect("arkd client");
    let supply_at_arkd = || {
        let (ark, id) = (ark.clone(), arkade_id(&lp).to_string());
        async move { ark.get_asset(&id).await.expect("GetAsset").supply }
    };
    let lp_units = 806; // what the pool says; the relay does no AMM maths

    let supply = |amount: u64| {
        Some(vec![SupplyChange {
            asset: id(lp),
            ticker: "gLP".into(),
            amount: WireAmount::new(amount),
        }])
    };
    let a_add = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AddLiquidity,
            "add-a1",
            &[(dex_pk, AssetRef::gbtc(), 1_000), (dex_pk, id(s.gusd), 650)],
            &[(dex_pk, id(lp), lp_units)],
        ))
        .await
        .expect("alice");
    let mut d = leg(
        &dex,
        IntentType::AddLiquidity,
        "add-d1",
        &[(alice_pk, id(lp), lp_units)],
        &[
            (alice_pk, AssetRef::gbtc(), 1_000),
            (alice_pk, id(s.gusd), 650),
        ],
    );
    d.mint = supply(lp_units);
    let d_add = dex.sign_batch_intent(&d).await.expect("dex");
    dex.submit_batch("add-1", vec![a_add.clone(), d_add.clone()])
        .await
        .expect("accepted");
    let (ra, rd) = tokio::join!(
        alice.outcome(event_id_from_nostr(&a_add.id), OUTCOME),
        dex.outcome(event_id_from_nostr(&d_add.id), OUTCOME)
    );
    ra.expect("alice added");
    rd.expect("dex added");
    assert_eq!(
        balance(&s, &alice_pk, &lp).await,
        lp_units,
        "LP minted to Alice"
    );
    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 990);
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 350);
    assert_eq!(balance(&s, &dex_pk, &s.gbtc).await, 1_990);
    assert_eq!(balance(&s, &dex_pk, &s.gusd).await, 650);
    let lp_asset = s
        .store
        .asset(&lp)
        .await
        .expect("asset")
        .expect("registered");
    assert_eq!(
        lp_asset.total_supply,
        AssetAmount::new(genesis_unit + lp_units)
    );
    assert_eq!(supply_at_arkd().await, genesis_unit + lp_units, "reissued");

    // Remove: Alice returns the LP tokens, the DEX pays out and burns them.
    let a_rm = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::RemoveLiquidity,
            "rm-a1",
            &[(dex_pk, id(lp), lp_units)],
            &[(dex_pk, AssetRef::gbtc(), 1_000), (dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice");
    let mut d = leg(
        &dex,
        IntentType::RemoveLiquidity,
        "rm-d1",
        &[
            (alice_pk, AssetRef::gbtc(), 1_000),
            (alice_pk, id(s.gusd), 650),
        ],
        &[(alice_pk, id(lp), lp_units)],
    );
    d.burn = supply(lp_units);
    let d_rm = dex.sign_batch_intent(&d).await.expect("dex");
    dex.submit_batch("rm-1", vec![a_rm.clone(), d_rm.clone()])
        .await
        .expect("accepted");
    let (ra, rd) = tokio::join!(
        alice.outcome(event_id_from_nostr(&a_rm.id), OUTCOME),
        dex.outcome(event_id_from_nostr(&d_rm.id), OUTCOME)
    );
    ra.expect("alice removed");
    rd.expect("dex removed");
    assert_eq!(balance(&s, &alice_pk, &lp).await, 0);
    assert_eq!(
        balance(&s, &dex_pk, &lp).await,
        genesis_unit,
        "burnt, not kept (the DEX holds only its genesis unit)"
    );
    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 1_980);
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 1_000);
    let lp_asset = s
        .store
        .asset(&lp)
        .await
        .expect("asset")
        .expect("registered");
    assert_eq!(
        lp_asset.total_supply,
        AssetAmount::new(genesis_unit),
        "supply back to the genesis unit"
    );
    assert_eq!(supply_at_arkd().await, genesis_unit, "burned at arkd");
    common::assert_reconciled(&s._db.store, &s.arkd_url).await;
    let _ = s.stop.send(true);
}

/// A ring of three: Alice → Bob gBTC, Bob → Carol gUSD, Carol → Alice gBTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_party_batch_settles_in_one_transaction() {
    let s = setup(TestDb::mariadb().await.expect("MariaDB")).await;
    let keys: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let pks: Vec<PubKey> = keys.iter().map(pk).collect();
    let (a, b, c) = (pks[0], pks[1], pks[2]);
    fund(&s, &a, s.gbtc, 1_000).await;
    fund(&s, &b, s.gusd, 1_000).await;
    fund(&s, &b, s.gbtc, 100).await;
    fund(&s, &c, s.gbtc, 1_000).await;
    let mut ws = Vec::new();
    for k in keys {
        ws.push(wallet(&s, k).await);
    }
    let g = AssetRef::gbtc;
    let plans = [
        (vec![(b, g(), 100)], vec![(c, g(), 300)]),
        (vec![(c, id(s.gusd), 200)], vec![(a, g(), 100)]),
        (vec![(a, g(), 300)], vec![(b, id(s.gusd), 200)]),
    ];
    let mut intents = Vec::new();
    for (i, (w, (pays, expects))) in ws.iter().zip(plans.iter()).enumerate() {
        let ev = w
            .sign_batch_intent(&leg(
                w,
                IntentType::AtomicSwap,
                &format!("ring-{i}"),
                pays,
                expects,
            ))
            .await
            .expect("sign");
        intents.push(ev);
    }
    ws[1]
        .submit_batch("ring", intents.clone())
        .await
        .expect("accepted");
    let mut txids = Vec::new();
    for (w, ev) in ws.iter().zip(&intents) {
        let conf = w
            .outcome(event_id_from_nostr(&ev.id), OUTCOME)
            .await
            .expect("completed");
        assert_eq!(conf.intents.len(), 3);
        txids.push(conf.ark_txid);
    }
    txids.dedup();
    assert_eq!(txids.len(), 1, "one Ark transaction for the three");
    assert_eq!(balance(&s, &a, &s.gbtc).await, 1_000 - 110 + 300);
    assert_eq!(balance(&s, &b, &s.gbtc).await, 100 - 10 + 100);
    assert_eq!(balance(&s, &b, &s.gusd).await, 800);
    assert_eq!(balance(&s, &c, &s.gusd).await, 200);
    assert_eq!(balance(&s, &c, &s.gbtc).await, 1_000 - 310);
    common::assert_reconciled(&s._db.store, &s.arkd_url).await;
    let _ = s.stop.send(true);
}

/// One leg off by one unit: the batch is refused with 3001 naming the
/// mismatch, before anything is locked; then a relay that lies about one
/// output's colour is refused by the wallet it cheats, and every party gets
/// a 3001 with nothing moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inconsistent_batch_moves_nothing() {
    let s = setup(TestDb::mariadb().await.expect("MariaDB")).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    let a_vtxo = fund(&s, &alice_pk, s.gbtc, 5_000).await;
    fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;
    let a = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "off-a",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice");
    let d = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "off-d",
            &[(alice_pk, id(s.gusd), 649)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex");
    let err = dex
        .submit_batch("off-by-one", vec![a.clone(), d])
        .await
        .expect_err("inconsistent");
    assert_eq!(err.code(), Some(ErrorCode::BatchInconsistent), "{err}");
    assert!(err.to_string().contains("expects 650"), "{err}");
    let v = s.store.vtxo(&a_vtxo).await.expect("vtxo").expect("exists");
    assert_eq!((v.status, v.locked_by), (VtxoStatus::Assigned, None));
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 0);
    assert!(s
        .sim
        .vtxo(&a_vtxo.outpoint())
        .expect("arkd")
        .spent_by
        .is_none());
    let _ = s.stop.send(true);
}

/// A relay (standing for a man in the middle with its keys) that adds one
/// unit to a colour hint of the batch transaction: the wallet whose leg it
/// is refuses, every party gets 3001, locks are released, nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_batch_transaction_is_refused() {
    let tamper: ark_relay_engine::ceremony::ChallengeTamper =
        Arc::new(|_psbt, hints| hints[0].amount += 1);
    let s = setup_with(
        TestDb::mariadb().await.expect("MariaDB"),
        Some(tamper),
        None,
    )
    .await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    let a_vtxo = fund(&s, &alice_pk, s.gbtc, 5_000).await;
    let d_vtxo = fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;
    let a = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "t-a",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice");
    let d = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "t-d",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex");
    dex.submit_batch("tampered", vec![a.clone(), d.clone()])
        .await
        .expect("accepted");
    for (w, ev) in [(&alice, &a), (&dex, &d)] {
        let err = w
            .outcome(event_id_from_nostr(&ev.id), OUTCOME)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Some(ErrorCode::BatchInconsistent), "{err}");
    }
    for v in [a_vtxo, d_vtxo] {
        let row = s.store.vtxo(&v).await.expect("vtxo").expect("exists");
        assert_eq!((row.status, row.locked_by), (VtxoStatus::Assigned, None));
        assert!(s.sim.vtxo(&v.outpoint()).expect("arkd").spent_by.is_none());
    }
    let _ = s.stop.send(true);
}

/// One party never signs: after the step timeout every party gets 3002, all
/// locks are released, and each party can transact again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_party_that_never_signs_fails_the_batch_for_everyone() {
    let s = setup(TestDb::mariadb().await.expect("MariaDB")).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    let a_vtxo = fund(&s, &alice_pk, s.gbtc, 5_000).await;
    let d_vtxo = fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;
    let a = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "silent-a",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice");
    let d = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "silent-d",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex");
    dex.set_policy(SignPolicy::NeverAnswer);
    dex.submit_batch("silent", vec![a.clone(), d.clone()])
        .await
        .expect("accepted");
    for (w, ev) in [(&alice, &a), (&dex, &d)] {
        let err = w
            .outcome(event_id_from_nostr(&ev.id), OUTCOME)
            .await
            .expect_err("timed out");
        assert_eq!(err.code(), Some(ErrorCode::BatchPartyTimeout), "{err}");
    }
    for v in [a_vtxo, d_vtxo] {
        let row = s.store.vtxo(&v).await.expect("vtxo").expect("exists");
        assert_eq!((row.status, row.locked_by), (VtxoStatus::Assigned, None));
    }
    // Each can transact again.
    dex.set_policy(SignPolicy::Honest);
    let bob = pk(&Keys::generate());
    alice
        .send(bob, 500, AssetRef::gbtc())
        .await
        .expect("alice sends again");
    dex.send(bob, 500, id(s.gusd))
        .await
        .expect("the dex sends again");
    assert_eq!(balance(&s, &bob, &s.gbtc).await, 500);
    assert_eq!(balance(&s, &bob, &s.gusd).await, 500);
    let _ = s.stop.send(true);
}

/// The relay dies after the first party's signature is persisted and before
/// the second's; a new process on the same database, Nostr relay and arkd
/// completes the batch as a whole, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_the_parties_signatures_completes_the_batch_once() {
    killed_at(CrashPoint::BetweenPartySignatures).await;
}

/// The same at every other step of the batch (before the challenges, after
/// them, after `SubmitTx`, after `FinalizeTx`, before the 31340): the batch
/// completes exactly once and the ledger matches arkd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_at_any_step_of_a_batch_completes_it_once() {
    for point in [
        CrashPoint::AfterLock,
        CrashPoint::AfterChallenge,
        CrashPoint::AfterSubmit,
        CrashPoint::AfterFinalize,
        CrashPoint::BeforeConfirmation,
    ] {
        killed_at(point).await;
    }
}

async fn killed_at(point: CrashPoint) {
    let crashed = Arc::new(AtomicBool::new(false));
    let flag = crashed.clone();
    let hook: CrashHook = Arc::new(move |p| p == point && !flag.swap(true, Ordering::SeqCst));
    let mut s = setup_with(TestDb::mariadb().await.expect("MariaDB"), None, Some(hook)).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    let a_vtxo = fund(&s, &alice_pk, s.gbtc, 5_000).await;
    fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let observer = Observer::connect_as(&s.nostr_url, alice_keys.clone()).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;
    let a = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "crash-a",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(s.gusd), 650)],
        ))
        .await
        .expect("alice");
    let d = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "crash-d",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex");
    // The submitter waits for its 31501 while the relay dies and restarts.
    let submit = {
        let (dex, batch) = (dex.clone(), vec![a.clone(), d.clone()]);
        tokio::spawn(async move { dex.submit_batch("crash", batch).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !crashed.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{point:?}: never crashed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kill that process; start a fresh one.
    let _ = s.stop.send(true);
    let _ = (&mut s.engine).await;
    let (stop, _engine) = start_engine(
        &s.store,
        &s.relay_keys,
        &s.server,
        &s.nostr_url,
        &s.arkd_url,
        None,
        None,
    )
    .await;
    let accepted = submit.await.expect("join");
    assert!(accepted.is_ok(), "{point:?}: {accepted:?}");
    let (ra, rd) = tokio::join!(
        alice.outcome(event_id_from_nostr(&a.id), OUTCOME),
        dex.outcome(event_id_from_nostr(&d.id), OUTCOME)
    );
    let (ca, cd) = (
        ra.unwrap_or_else(|e| panic!("{point:?}: alice: {e}")),
        rd.unwrap_or_else(|e| panic!("{point:?}: dex: {e}")),
    );
    assert_eq!(ca.ark_txid, cd.ark_txid);
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 650, "paid once");
    assert_eq!(balance(&s, &dex_pk, &s.gbtc).await, 1_990, "paid once");
    let row = s.store.vtxo(&a_vtxo).await.expect("vtxo").expect("exists");
    assert_eq!(row.status, VtxoStatus::Spent);
    assert!(s
        .sim
        .vtxo(&a_vtxo.outpoint())
        .expect("arkd")
        .spent_by
        .is_some());
    observer
        .wait_answer("the 31340", kinds::CONFIRMATION, &a.id, OUTCOME)
        .await;
    let n = observer
        .received()
        .await
        .iter()
        .filter(|e| answers(e, kinds::CONFIRMATION, &a.id))
        .count();
    assert_eq!(n, 1, "{point:?}: one 31340");
    let _ = stop.send(true);
}

/// Many pairs swapping at once, each pair several times in a row: every
/// batch completes, nothing is spent twice, and the ledger matches arkd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_compete_for_inventory_without_double_spends() {
    let s = setup(TestDb::mariadb().await.expect("MariaDB")).await;
    let pairs = 6usize;
    let rounds = 3usize;
    let mut ws = Vec::new();
    for _ in 0..pairs {
        let (uk, mk) = (Keys::generate(), Keys::generate());
        fund(&s, &pk(&uk), s.gbtc, 10_000).await;
        fund(&s, &pk(&mk), s.gusd, 10_000).await;
        fund(&s, &pk(&mk), s.gbtc, 1_000).await;
        ws.push((wallet(&s, uk).await, wallet(&s, mk).await));
    }
    let runs = ws.iter().enumerate().map(|(i, (u, m))| async move {
        let mut done = 0;
        for k in 0..rounds {
            let (up, mp) = (u.pubkey(), m.pubkey());
            let a = u
                .sign_batch_intent(&leg(
                    u,
                    IntentType::AtomicSwap,
                    &format!("c-u{i}-{k}"),
                    &[(mp, AssetRef::gbtc(), 100)],
                    &[(mp, id(s.gusd), 100)],
                ))
                .await
                .expect("u");
            let b = m
                .sign_batch_intent(&leg(
                    m,
                    IntentType::AtomicSwap,
                    &format!("c-m{i}-{k}"),
                    &[(up, id(s.gusd), 100)],
                    &[(up, AssetRef::gbtc(), 100)],
                ))
                .await
                .expect("m");
            let r = m
                .submit_batch(&format!("c{i}-{k}"), vec![a.clone(), b.clone()])
                .await;
            let r = match r {
                Ok(_) => u
                    .outcome(event_id_from_nostr(&a.id), OUTCOME)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => done += 1,
                Err(e) => panic!("pair {i} round {k}: {e}"),
            }
        }
        done
    });
    let done: usize = futures::future::join_all(runs).await.into_iter().sum();
    assert_eq!(done, pairs * rounds);
    for (u, m) in &ws {
        assert_eq!(balance(&s, &u.pubkey(), &s.gusd).await, 100 * rounds as u64);
        assert_eq!(
            balance(&s, &m.pubkey(), &s.gbtc).await,
            1_000 + 90 * rounds as u64
        );
        for owner in [u.pubkey(), m.pubkey(), s.relay_pk] {
            for v in s.store.unspent_vtxos(&owner).await.expect("unspent") {
                let a = s.sim.vtxo(&v.id.outpoint()).expect("at arkd");
                assert!(
                    a.spent_by.is_none(),
                    "{} unspent in the ledger, spent at arkd",
                    v.id
                );
            }
        }
    }
    let _ = s.stop.send(true);
}

/// Issue #20's ticker squat: a DEX mints an L2 token with the ticker `gBTC`
/// in a batch; the mint is refused (3001, the ticker is reserved) and nothing
/// moves. An honest swap whose fee names gBTC by its asset id then settles.
#[tokio::test]
async fn a_gbtc_ticker_squat_is_refused_and_a_fee_by_gbtc_id_works() {
    let s = setup(TestDb::sqlite().await.expect("SQLite")).await;
    let (alice_keys, dex_keys) = (Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk) = (pk(&alice_keys), pk(&dex_keys));
    fund(&s, &alice_pk, s.gbtc, 5_000).await;
    fund(&s, &dex_pk, s.gusd, 100_000).await;
    fund(&s, &dex_pk, s.gbtc, 1_000).await;
    let alice = wallet(&s, alice_keys).await;
    let dex = wallet(&s, dex_keys).await;

    let fake = l2_asset_id(&dex_pk, "gBTC");
    let a = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AtomicSwap,
            "squat-a",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, id(fake), 1_000)],
        ))
        .await
        .expect("alice");
    let mut d = leg(
        &dex,
        IntentType::AtomicSwap,
        "squat-d",
        &[(alice_pk, id(fake), 1_000)],
        &[(alice_pk, AssetRef::gbtc(), 1_000)],
    );
    d.mint = Some(vec![SupplyChange {
        asset: id(fake),
        ticker: "gBTC".into(),
        amount: WireAmount::new(1_000),
    }]);
    let d = dex.sign_batch_intent(&d).await.expect("dex");
    let err = dex
        .submit_batch("squat", vec![a, d])
        .await
        .expect_err("squat refused");
    assert_eq!(err.code(), Some(ErrorCode::BatchInconsistent), "{err}");
    assert!(err.to_string().contains("reserved"), "{err}");
    assert!(s.store.asset(&fake).await.expect("db").is_none());
    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 5_000);

    // Honest swap, Alice's fee naming gBTC by id.
    let mut a = leg(
        &alice,
        IntentType::AtomicSwap,
        "swap-by-id-a",
        &[(dex_pk, AssetRef::gbtc(), 1_000)],
        &[(dex_pk, id(s.gusd), 650)],
    );
    for o in a.outputs.iter_mut().filter(|o| o.role.is_some()) {
        o.asset = id(s.gbtc);
    }
    let a = alice.sign_batch_intent(&a).await.expect("alice");
    let d = dex
        .sign_batch_intent(&leg(
            &dex,
            IntentType::AtomicSwap,
            "swap-by-id-d",
            &[(alice_pk, id(s.gusd), 650)],
            &[(alice_pk, AssetRef::gbtc(), 1_000)],
        ))
        .await
        .expect("dex");
    dex.submit_batch("swap-by-id", vec![a.clone(), d.clone()])
        .await
        .expect("accepted");
    let (ra, rd) = tokio::join!(
        alice.outcome(event_id_from_nostr(&a.id), OUTCOME),
        dex.outcome(event_id_from_nostr(&d.id), OUTCOME)
    );
    ra.expect("alice swapped");
    rd.expect("dex swapped");
    assert_eq!(balance(&s, &alice_pk, &s.gbtc).await, 3_990);
    assert_eq!(balance(&s, &alice_pk, &s.gusd).await, 650);
    let _ = s.stop.send(true);
}
