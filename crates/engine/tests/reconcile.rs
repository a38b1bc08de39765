//! Reconciliation end to end: the ledger on MariaDB against the arkd
//! simulator's indexer over gRPC. A VTXO whose colour arkd reports
//! differently is found, recorded as disputed, and an intent spending it is
//! answered with 2006 `COLOUR_MISMATCH` as a 31341: nothing locked, nothing
//! spent; a transfer from an undisputed VTXO still completes and the ledger
//! then equals the indexer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::arkade_id;
use ark_relay_ark::ServerInfo;
use ark_relay_core::reconcile::{Difference, DisputeReason, ReconcileStatus, ReconcileStore};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, ErrorCode, NewAsset, NewVtxo, PubKey, Sats,
    UnixTime, VtxoId, VtxoStatus,
};
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use nostr::Keys;

use common::{dev_relay, spawn_signer, Wallet};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disputed_vtxo_is_refused_with_2006_and_nothing_is_locked() {
    let db = TestDb::mariadb().await.expect("MariaDB");
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = dev_relay().await;
    let sim = ArkdSim::new(ArkdSimConfig::default()).expect("sim");
    let server = sim.server_info().clone();
    let sim_server = sim.clone().spawn(0).await.expect("arkd sim");
    let relay_keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).expect("key");
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
        .expect("register gBTC");
    let mut inventory = Vec::new();
    for _ in 0..4 {
        let v = sim.fund(&relay_pk, Sats::new(5_000));
        inventory.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay_pk,
            sats: Sats::new(v.amount),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay_pk).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&inventory, UnixTime::now())
        .await
        .expect("inventory");
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
        let v = store.vtxo(&inv.id).await.expect("vtxo").expect("exists");
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
