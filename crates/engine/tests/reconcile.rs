//! Reconciliation end to end: the ledger on MariaDB against the arkd
//! simulator's indexer over gRPC. A VTXO whose colour arkd reports
//! differently is found, recorded as disputed, and an intent spending it is
//! answered with 2006 `COLOUR_MISMATCH` as a 31341: nothing locked, nothing
//! spent; a transfer from an undisputed VTXO still completes and the ledger
//! then equals the indexer. And a unilateral exit on the chain simulator keeps
//! the asset: it is re-derived from the broadcast transactions' packets. The
//! reference wallet checks its inputs at the arkd indexer before signing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::arkade_id;
use ark_relay_ark::exit::{asset_of_exited_output, ExitError, ExitHistory};
use ark_relay_ark::ServerInfo;
use ark_relay_core::reconcile::{Difference, DisputeReason, ReconcileStatus, ReconcileStore};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, ErrorCode, NewVtxo, PubKey, Sats, UnixTime,
    VtxoId, VtxoStatus,
};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_protocol::content::{AssetRef, Confirmation, IntentContent};
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::ArkdSim;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{IndexerCheck, WalletOptions};
use nostr::Keys;

use common::{spawn_signer, Wallet};

/// Gives `owner` a VTXO: the ledger records `ledger` gBTC on it, arkd's
/// indexer `at_arkd` gBTC.
async fn fund(
    sim: &ArkdSim,
    store: &DynStore,
    server: &ServerInfo,
    gbtc: AssetId,
    owner: &PubKey,
    ledger: u64,
    at_arkd: u64,
) -> VtxoId {
    let v = sim.fund_with_assets(owner, Sats::new(330), vec![(arkade_id(&gbtc), at_arkd)]);
    let nv = NewVtxo {
        id: v.outpoint.into(),
        owner: *owner,
        sats: Sats::new(330),
        colour: Some(Colour {
            asset: gbtc,
            amount: AssetAmount::new(ledger),
        }),
        status: VtxoStatus::Assigned,
        tapscripts: server.default_vtxo(owner).to_tapscripts(),
        expires_at: Some(UnixTime(v.expires_at)),
    };
    store
        .insert_vtxos(&[nv], UnixTime::now())
        .await
        .expect("fund");
    v.outpoint.into()
}

struct Env {
    db: TestDb,
    store: DynStore,
    nostr: ark_relay_nostr::DevRelay,
    sim: ArkdSim,
    server: ServerInfo,
    sim_server: ark_relay_sim::arkd::SimServer,
    relay_pk: PubKey,
    gbtc: AssetId,
    inventory: Vec<VtxoId>,
    disputes: Arc<dyn ReconcileStore>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// MariaDB, a websocket Nostr relay, the arkd simulator over gRPC, gBTC
/// registered, four inventory VTXOs, and a relay whose plan-and-lock loop
/// refuses disputed inputs.
async fn env() -> Env {
    let common::Parts {
        db,
        store,
        nostr,
        sim,
        sim_server,
        server,
        relay_keys,
        relay_pk,
        inventory,
        ..
    } = common::parts(TestDb::mariadb().await.expect("MariaDB"), 4).await;
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let disputes: Arc<dyn ReconcileStore> = Arc::new(db.store.clone());
    let (stop, _engine) = common::start_ceremony_with(
        &store,
        &relay_keys,
        &server,
        nostr.url(),
        &sim_server.url(),
        None,
        None,
        Arc::new(MemoryQueue::new(Default::default())),
        Some(disputes.clone()),
    )
    .await;

    Env {
        db,
        store,
        nostr,
        sim,
        server,
        sim_server,
        relay_pk,
        gbtc,
        inventory,
        disputes,
        stop,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disputed_vtxo_is_refused_with_2006_and_nothing_is_locked() {
    let Env {
        db,
        store,
        nostr,
        sim,
        server,
        sim_server,
        relay_pk,
        gbtc,
        inventory,
        disputes,
        stop,
    } = env().await;
    let alice = Arc::new(Wallet::connect(nostr.url()).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
    let bob_keys = Keys::generate();
    let bob_pk = pubkey_from_nostr(&bob_keys.public_key()).expect("key");
    let bob = Wallet::connect_as(nostr.url(), bob_keys).await;
    spawn_signer(alice.clone(), relay_pk);

    // The ledger says 5 000 gBTC, arkd's indexer 4 000: a colour dispute.
    let lying = fund(&sim, &store, &server, gbtc, &alice_pk, 5_000, 4_000).await;
    let outcome = common::reconcile(&db.store, &sim_server.url()).await;
    assert_eq!(outcome.run.status, ReconcileStatus::Degraded);
    assert_eq!(outcome.run.checked, 5, "4 inventory VTXOs and Alice's");
    assert!(
        matches!(
            outcome.differences.as_slice(),
            [Difference::ColourDiffers { vtxo, ledger, server }]
                if *vtxo == lying && ledger[0].amount == 5_000 && server[0].amount == 4_000
        ),
        "{:#?}",
        outcome.differences
    );
    let disputed = disputes.disputes_among(&[lying]).await.expect("disputes");
    assert_eq!(disputed.len(), 1);
    assert_eq!(disputed[0].reason, DisputeReason::Colour);
    let last = disputes
        .last_reconciliation()
        .await
        .expect("last")
        .expect("run");
    assert_eq!((last.checked, last.differences, last.disputed), (5, 1, 1));

    // Alice spends it: 2006 as a 31341, nothing locked, nothing spent.
    let content = IntentContent::transfer(
        "disputed-1",
        &bob_pk,
        AssetRef::gbtc(),
        1_000,
        &relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let intent = builders::intent(&alice.keys, &relay_pk, &content).expect("intent");
    alice.publish(&intent).await;
    alice
        .wait_answer(
            "the 31341",
            kinds::FAILURE,
            &intent.id,
            Duration::from_secs(60),
        )
        .await;
    let notice = &alice.failures().await[&intent.id][0];
    assert_eq!(notice.code, ErrorCode::ColourMismatch);
    assert_eq!(notice.name, "COLOUR_MISMATCH");
    assert!(
        notice.message.contains(&lying.to_string()),
        "{}",
        notice.message
    );
    let v = store.vtxo(&lying).await.expect("vtxo").expect("exists");
    assert_eq!((v.status, v.locked_by), (VtxoStatus::Assigned, None));
    for inv in &inventory {
        let v = store.vtxo(inv).await.expect("vtxo").expect("exists");
        assert_eq!((v.status, v.locked_by), (VtxoStatus::Available, None));
    }
    assert_eq!(
        sim.vtxo(&lying.outpoint()).expect("at arkd").state,
        ark_relay_sim::arkd::VtxoState::Spendable
    );

    // An honest VTXO of Carol's still moves, and afterwards the ledger
    // equals the indexer everywhere but on the disputed VTXO.
    let carol = Arc::new(Wallet::connect(nostr.url()).await);
    let carol_pk = pubkey_from_nostr(&carol.keys.public_key()).expect("key");
    spawn_signer(carol.clone(), relay_pk);
    fund(&sim, &store, &server, gbtc, &carol_pk, 2_000, 2_000).await;
    let content = IntentContent::transfer(
        "honest-1",
        &bob_pk,
        AssetRef::gbtc(),
        500,
        &relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let honest = builders::intent(&carol.keys, &relay_pk, &content).expect("intent");
    carol.publish(&honest).await;
    bob.wait_answer(
        "the 31340",
        kinds::CONFIRMATION,
        &honest.id,
        Duration::from_secs(60),
    )
    .await;
    let outcome = common::reconcile(&db.store, &sim_server.url()).await;
    let others: Vec<_> = outcome
        .differences
        .iter()
        .filter(|d| *d.vtxo() != lying)
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    assert_eq!(outcome.run.disputed, 1);
    let _ = stop.send(true);
}

/// Issue 20 item 6: Carol sends Bob 500 gBTC; Bob exits unilaterally (the
/// arkd simulator broadcasts his VTXO's checkpoint and ark tx to the chain
/// simulator); from those on-chain transactions alone, with Carol's seeded
/// colour as the root, the exited output holds exactly 500 gBTC, and a
/// history missing the checkpoint proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exited_vtxo_keeps_its_asset_by_the_packet_history() {
    let e = env().await;
    let carol = Arc::new(Wallet::connect(e.nostr.url()).await);
    let carol_pk = pubkey_from_nostr(&carol.keys.public_key()).expect("key");
    spawn_signer(carol.clone(), e.relay_pk);
    let bob_keys = Keys::generate();
    let bob_pk = pubkey_from_nostr(&bob_keys.public_key()).expect("key");
    let bob = Wallet::connect_as(e.nostr.url(), bob_keys).await;
    let seeded = fund(&e.sim, &e.store, &e.server, e.gbtc, &carol_pk, 2_000, 2_000).await;
    let content = IntentContent::transfer(
        "exit-1",
        &bob_pk,
        AssetRef::gbtc(),
        500,
        &e.relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let intent = builders::intent(&carol.keys, &e.relay_pk, &content).expect("intent");
    carol.publish(&intent).await;
    bob.wait_answer(
        "the 31340",
        kinds::CONFIRMATION,
        &intent.id,
        Duration::from_secs(60),
    )
    .await;
    let conf = bob
        .received()
        .await
        .into_iter()
        .find(|ev| ev.kind.as_u16() == kinds::CONFIRMATION)
        .expect("31340");
    let conf: Confirmation = serde_json::from_str(&conf.content).expect("json");
    let bobs = conf
        .created
        .iter()
        .find(|c| c.owner == bob_pk)
        .expect("Bob's VTXO")
        .vtxo;
    common::assert_reconciled(&e.db.store, &e.sim_server.url()).await;

    // The exit: checkpoint, then ark tx, confirmed on the chain simulator.
    let txids = e.sim.unroll(&bobs.outpoint()).expect("unroll");
    assert!(txids.len() >= 2, "a checkpoint per input, then the ark tx");
    assert_eq!(txids.last(), Some(&bobs.outpoint().txid));
    let txs: Vec<_> = txids
        .iter()
        .map(|t| {
            assert!(e.sim.chain().confirmations(t) >= 1, "{t} confirmed");
            e.sim.chain().tx(t).expect("on chain")
        })
        .collect();

    // What the chain shows is carrier sats; the asset comes from the packets.
    let gbtc = arkade_id(&e.gbtc);
    let history = ExitHistory {
        roots: vec![(seeded.outpoint(), vec![(gbtc, 2_000)])],
        txs: txs.clone(),
    };
    assert_eq!(
        asset_of_exited_output(&history, bobs.outpoint()),
        Ok(vec![(gbtc, 500)])
    );
    let exited = e
        .sim
        .chain()
        .output(&bobs.outpoint())
        .expect("exited output");
    assert!(
        exited.txout.value.to_sat() > 0,
        "the chain sees only carrier sats"
    );
    // Without the checkpoint the ark tx's input claim cannot be traced.
    let partial = ExitHistory {
        roots: history.roots.clone(),
        txs: txs
            .iter()
            .filter(|t| {
                !t.input
                    .iter()
                    .any(|i| i.previous_output == seeded.outpoint())
            })
            .cloned()
            .collect(),
    };
    assert!(matches!(
        asset_of_exited_output(&partial, bobs.outpoint()),
        Err(ExitError::InputMismatch { .. })
    ));
    // Without the root (no genesis) neither.
    let rootless = ExitHistory { roots: vec![], txs };
    assert!(asset_of_exited_output(&rootless, bobs.outpoint()).is_err());
    let _ = e.stop.send(true);
}

async fn reference_wallet(e: &Env, keys: Keys, indexer: IndexerCheck) -> ark_relay_wallet::Wallet {
    let opts = WalletOptions {
        indexer,
        send_timeout: Duration::from_secs(60),
        ..WalletOptions::default()
    };
    ark_relay_wallet::Wallet::connect(keys, e.relay_pk, vec![e.nostr.url().to_owned()], opts)
        .await
        .expect("wallet")
}

/// Issue 20 item 4: the relay misstates the colour of Alice's VTXO (its
/// ledger, hence `sync_state` and the packet, say 5 000 gBTC; arkd holds
/// 4 000) and Alice's wallet is freshly restored (no history to contradict
/// it). Checking her inputs at the arkd indexer, the wallet refuses to sign;
/// nothing is spent. An honest VTXO is signed for, and without a reachable
/// indexer the wallet falls back to its own history (a WARN) and signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wallet_checks_its_inputs_at_the_arkd_indexer() {
    let e = env().await;
    let indexer = || {
        let url = e.sim_server.url();
        async move {
            let client = ArkdClient::connect(url).await.expect("arkd client");
            IndexerCheck::Server(Arc::new(client))
        }
    };
    let bob_pk = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");

    // The lie: refused at step 1, with the indexer named in the reason.
    let alice_keys = Keys::generate();
    let alice_pk = pubkey_from_nostr(&alice_keys.public_key()).expect("key");
    let lying = fund(&e.sim, &e.store, &e.server, e.gbtc, &alice_pk, 5_000, 4_000).await;
    let alice = reference_wallet(&e, alice_keys, indexer().await).await;
    let err = alice
        .send(bob_pk, 1_000, AssetRef::gbtc())
        .await
        .expect_err("a misstated input is refused");
    assert_eq!(err.code(), Some(ErrorCode::SigningRefused), "{err}");
    let notes: Vec<String> = alice
        .history()
        .into_iter()
        .flat_map(|h| h.challenges)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("refused") && n.contains("indexer") && n.contains("4000")),
        "{notes:?}"
    );
    let v = e.store.vtxo(&lying).await.expect("vtxo").expect("exists");
    assert_eq!((v.status, v.locked_by), (VtxoStatus::Assigned, None));
    assert_eq!(
        e.sim.vtxo(&lying.outpoint()).expect("at arkd").state,
        ark_relay_sim::arkd::VtxoState::Spendable
    );

    // Honest colour: the indexer agrees, the wallet signs.
    let carol_keys = Keys::generate();
    let carol_pk = pubkey_from_nostr(&carol_keys.public_key()).expect("key");
    fund(&e.sim, &e.store, &e.server, e.gbtc, &carol_pk, 2_000, 2_000).await;
    let carol = reference_wallet(&e, carol_keys, indexer().await).await;
    carol
        .send(bob_pk, 500, AssetRef::gbtc())
        .await
        .expect("honest send");

    // No indexer advertised (this relay's get_info has no ark.url): the
    // wallet falls back to its own history and signs.
    let dave_keys = Keys::generate();
    let dave_pk = pubkey_from_nostr(&dave_keys.public_key()).expect("key");
    fund(&e.sim, &e.store, &e.server, e.gbtc, &dave_pk, 2_000, 2_000).await;
    let dave = reference_wallet(&e, dave_keys, IndexerCheck::Relay).await;
    dave.send(bob_pk, 500, AssetRef::gbtc())
        .await
        .expect("send without an indexer");
    let _ = e.stop.send(true);
}

/// The scheduler's periodic task records each run (what `/health` shows)
/// with the disputed set it finds (a clean run clearing it is covered by the
/// store's conformance test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_periodic_task_records_its_runs() {
    use ark_relay_engine::reconcile::{ReconcileTask, Reconciler};
    use ark_relay_engine::Periodic;
    let e = env().await;
    let ark = ArkdClient::connect(e.sim_server.url()).await.expect("arkd");
    let reconciler = Reconciler::new(
        e.store.clone(),
        e.disputes.clone(),
        Arc::new(ark),
        Arc::new(ark_relay_core::SystemClock),
    );
    let task = ReconcileTask::new(reconciler, Duration::from_secs(600));
    assert_eq!(task.name(), "reconcile");
    task.tick().await;
    let first = e
        .disputes
        .last_reconciliation()
        .await
        .expect("last")
        .expect("a run");
    assert_eq!((first.status, first.checked), (ReconcileStatus::Ok, 4));

    // A lie appears and is disputed at the next run.
    let owner = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let lying = fund(&e.sim, &e.store, &e.server, e.gbtc, &owner, 70, 7).await;
    task.tick().await;
    let second = e
        .disputes
        .last_reconciliation()
        .await
        .expect("last")
        .expect("a run");
    assert_eq!(
        (second.status, second.disputed),
        (ReconcileStatus::Degraded, 1)
    );
    assert!(
        second.detail.contains("colour_differs"),
        "{}",
        second.detail
    );
    assert_eq!(
        e.disputes.disputes_among(&[lying]).await.expect("d").len(),
        1
    );
    let _ = e.stop.send(true);
}
