//! The `RelayStore` conformance suite: the executable contract of the port.
//! Every function takes a fresh, empty, migrated store and panics on a breach.
//! Instantiate it for a back end with [`crate::relay_store_conformance!`].

use std::collections::BTreeMap;

use ark_relay_core::{
    Asset, AssetAmount, Balances, CommitOutcome, DynStore, ErrorCode, LedgerError, ProcessedEvent,
    PubKey, Recorded, Sats, StoreError, UnixTime, Vtxo, VtxoId, VtxoStatus,
};
use futures::future::join_all;

use crate::fixtures::{self, asset_id, colour, key, new_asset, transaction, vtxo};
pub use crate::work_suite::*;

const NOW: UnixTime = UnixTime(1_700_000_000);

fn ledger_err(r: Result<impl std::fmt::Debug, StoreError>) -> LedgerError {
    match r {
        Err(StoreError::Ledger(e)) => e,
        other => panic!("expected a ledger error, got {other:?}"),
    }
}

/// Everything observable about a set of owners and VTXOs, to prove a failed
/// call changed nothing.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    balances: Vec<Balances>,
    vtxos: Vec<Option<Vtxo>>,
    assets: Vec<Asset>,
}

/// Takes a [`Snapshot`].
pub async fn snapshot(store: &DynStore, owners: &[PubKey], ids: &[VtxoId]) -> Snapshot {
    let mut balances = Vec::new();
    for o in owners {
        balances.push(store.balances(o).await.expect("balances"));
    }
    let mut vtxos = Vec::new();
    for id in ids {
        vtxos.push(store.vtxo(id).await.expect("vtxo"));
    }
    Snapshot {
        balances,
        vtxos,
        assets: store.assets().await.expect("assets"),
    }
}

async fn setup_assets(store: &DynStore, n: u8) {
    for i in 0..n {
        assert_eq!(
            store
                .register_asset(&new_asset(i), NOW)
                .await
                .expect("register"),
            Recorded::New
        );
    }
}

/// Registering an asset twice keeps the first registration.
pub async fn register_asset_is_idempotent(store: DynStore) {
    let a = new_asset(0);
    assert_eq!(
        store.register_asset(&a, NOW).await.expect("register"),
        Recorded::New
    );
    let mut renamed = a.clone();
    renamed.name = "other".into();
    assert_eq!(
        store.register_asset(&renamed, NOW).await.expect("again"),
        Recorded::Duplicate
    );
    let got = store.asset(&a.id).await.expect("asset").expect("exists");
    assert_eq!(got.name, a.name);
    assert_eq!(got.ticker, a.ticker);
    assert_eq!(got.asset_type, a.asset_type);
    assert_eq!(got.total_supply, AssetAmount::ZERO);
    assert!(got.enabled);
    assert_eq!(got.created_at, NOW);
    assert!(store.asset(&asset_id(9)).await.expect("asset").is_none());
    store
        .register_asset(&new_asset(1), NOW)
        .await
        .expect("register");
    let all = store.assets().await.expect("assets");
    assert_eq!(
        all.iter().map(|a| a.ticker.as_str()).collect::<Vec<_>>(),
        ["T0", "T1"]
    );
    assert!(!store.backend_name().is_empty());
}

/// VTXOs come back exactly as inserted; balances and supply follow.
pub async fn vtxos_round_trip_with_colour(store: DynStore) {
    setup_assets(&store, 2).await;
    let alice = key(1);
    let coloured = vtxo(alice, 330, colour(0, 1_000));
    let other = vtxo(alice, 400, colour(1, 7));
    let mut plain = vtxo(alice, 1_000, None);
    plain.status = VtxoStatus::Available;
    plain.expires_at = None;
    store
        .insert_vtxos(&[coloured.clone(), other.clone(), plain.clone()], NOW)
        .await
        .expect("insert");

    let got = store
        .vtxo(&coloured.id)
        .await
        .expect("vtxo")
        .expect("exists");
    assert_eq!(got.id, coloured.id);
    assert_eq!(got.owner, alice);
    assert_eq!(got.sats, Sats::new(330));
    assert_eq!(got.colour, coloured.colour);
    assert_eq!(got.status, VtxoStatus::Assigned);
    assert_eq!(got.tapscripts, coloured.tapscripts);
    assert_eq!(got.expires_at, coloured.expires_at);
    assert_eq!(got.locked_by, None);
    assert_eq!(got.spent_by, None);
    let got_plain = store.vtxo(&plain.id).await.expect("vtxo").expect("exists");
    assert_eq!(got_plain.colour, None);
    assert_eq!(got_plain.status, VtxoStatus::Available);
    assert_eq!(got_plain.expires_at, None);

    let mut unspent: Vec<VtxoId> = store
        .unspent_vtxos(&alice)
        .await
        .expect("unspent")
        .iter()
        .map(|v| v.id)
        .collect();
    let mut expected = vec![coloured.id, other.id, plain.id];
    expected.sort();
    unspent.sort();
    assert_eq!(unspent, expected);
    assert!(store
        .unspent_vtxos(&key(2))
        .await
        .expect("unspent")
        .is_empty());

    let b = store.balances(&alice).await.expect("balances");
    assert_eq!(b.sats, Sats::new(1_730));
    assert_eq!(b.vtxo_count, 3);
    assert_eq!(b.assets.get(&asset_id(0)), Some(&AssetAmount::new(1_000)));
    assert_eq!(b.assets.get(&asset_id(1)), Some(&AssetAmount::new(7)));
    assert_eq!(
        store
            .count_vtxos(&alice, VtxoStatus::Available)
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count_vtxos(&alice, VtxoStatus::Assigned)
            .await
            .expect("count"),
        2
    );
    let supply = store
        .asset(&asset_id(0))
        .await
        .expect("asset")
        .expect("exists")
        .total_supply;
    assert_eq!(supply, AssetAmount::new(1_000));
}

/// A batch insert with any bad row inserts nothing.
pub async fn insert_vtxos_is_all_or_nothing(store: DynStore) {
    setup_assets(&store, 1).await;
    let alice = key(1);
    let first = vtxo(alice, 330, colour(0, 50));
    store
        .insert_vtxos(std::slice::from_ref(&first), NOW)
        .await
        .expect("insert");
    let before = snapshot(&store, &[alice], &[first.id]).await;

    let fresh = vtxo(alice, 330, colour(0, 10));
    let e = ledger_err(
        store
            .insert_vtxos(&[fresh.clone(), first.clone()], NOW)
            .await,
    );
    assert_eq!(e, LedgerError::DuplicateVtxo(first.id));
    assert!(store.vtxo(&fresh.id).await.expect("vtxo").is_none());

    let unknown = vtxo(alice, 330, colour(5, 10));
    let e = ledger_err(store.insert_vtxos(&[fresh.clone(), unknown], NOW).await);
    assert_eq!(e, LedgerError::UnknownAsset(asset_id(5)));
    assert_eq!(e.code(), ErrorCode::UnknownVtxoOrAsset);

    let e = ledger_err(
        store
            .insert_vtxos(&[fresh.clone(), fresh.clone()], NOW)
            .await,
    );
    assert_eq!(e, LedgerError::RepeatedVtxo(fresh.id));

    let zero = vtxo(alice, 330, colour(0, 0));
    let e = ledger_err(store.insert_vtxos(&[fresh.clone(), zero], NOW).await);
    assert_eq!(e, LedgerError::AmountOutOfRange);

    assert!(store.vtxo(&fresh.id).await.expect("vtxo").is_none());
    assert_eq!(snapshot(&store, &[alice], &[first.id]).await, before);
}

/// Locks are all-or-none, exclusive between sessions, idempotent within one.
pub async fn lock_is_all_or_none_and_idempotent(store: DynStore) {
    setup_assets(&store, 1).await;
    let alice = key(1);
    let (a, b, c) = (
        vtxo(alice, 330, colour(0, 1)),
        vtxo(alice, 330, colour(0, 2)),
        vtxo(alice, 330, None),
    );
    store
        .insert_vtxos(&[a.clone(), b.clone(), c.clone()], NOW)
        .await
        .expect("insert");
    let (s1, s2) = (fixtures::session(), fixtures::session());

    store
        .lock_vtxos(&[a.id, b.id], &s1, NOW)
        .await
        .expect("lock");
    store
        .lock_vtxos(&[b.id, a.id], &s1, NOW)
        .await
        .expect("idempotent re-lock");
    assert_eq!(
        store.vtxo(&a.id).await.expect("vtxo").expect("a").locked_by,
        Some(s1)
    );

    let e = ledger_err(store.lock_vtxos(&[c.id, b.id], &s2, NOW).await);
    assert_eq!(e, LedgerError::Locked { vtxo: b.id, by: s1 });
    assert_eq!(e.code(), ErrorCode::InputLocked);
    assert_eq!(
        store.vtxo(&c.id).await.expect("vtxo").expect("c").locked_by,
        None,
        "all or none"
    );

    let missing = fixtures::vtxo_id();
    let e = ledger_err(store.lock_vtxos(&[c.id, missing], &s2, NOW).await);
    assert_eq!(e, LedgerError::UnknownVtxo(missing));
    assert_eq!(
        store.vtxo(&c.id).await.expect("vtxo").expect("c").locked_by,
        None
    );

    let e = ledger_err(store.lock_vtxos(&[c.id, c.id], &s2, NOW).await);
    assert_eq!(e, LedgerError::RepeatedVtxo(c.id));

    store.lock_vtxos(&[c.id], &s2, NOW).await.expect("lock c");

    // Free inventory: available, uncoloured, unlocked only, paged.
    let mut inv = Vec::new();
    for _ in 0..3 {
        let mut v = vtxo(alice, 1_000, None);
        v.status = VtxoStatus::Available;
        inv.push(v);
    }
    store.insert_vtxos(&inv, NOW).await.expect("inventory");
    store
        .lock_vtxos(&[inv[1].id], &s2, NOW)
        .await
        .expect("lock one");
    let free: Vec<_> = store
        .free_inventory(&alice, 0, 10)
        .await
        .expect("free")
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(
        free,
        vec![inv[0].id, inv[2].id],
        "c is assigned, a/b coloured, inv[1] locked"
    );
    let page: Vec<_> = store
        .free_inventory(&alice, 1, 1)
        .await
        .expect("free")
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(page, vec![inv[2].id]);
    // Locked VTXOs are still listed as unspent (sync_state shows them).
    assert_eq!(store.unspent_vtxos(&alice).await.expect("unspent").len(), 6);
}

/// Releasing a session's locks frees exactly its VTXOs.
pub async fn release_frees_locks(store: DynStore) {
    let alice = key(1);
    let (a, b) = (vtxo(alice, 330, None), vtxo(alice, 500, None));
    store
        .insert_vtxos(&[a.clone(), b.clone()], NOW)
        .await
        .expect("insert");
    let (s1, s2) = (fixtures::session(), fixtures::session());
    store.lock_vtxos(&[a.id], &s1, NOW).await.expect("lock");
    store.lock_vtxos(&[b.id], &s2, NOW).await.expect("lock");
    assert_eq!(store.release_locks(&s1).await.expect("release"), 1);
    assert_eq!(store.release_locks(&s1).await.expect("release again"), 0);
    assert_eq!(
        store.vtxo(&a.id).await.expect("vtxo").expect("a").locked_by,
        None
    );
    assert_eq!(
        store.vtxo(&b.id).await.expect("vtxo").expect("b").locked_by,
        Some(s2)
    );
    store
        .lock_vtxos(&[a.id], &s2, NOW)
        .await
        .expect("now free for s2");
}

/// A transfer spends its inputs, creates its outputs and conserves colour.
pub async fn commit_transfer_moves_colour(store: DynStore) {
    setup_assets(&store, 1).await;
    let (alice, bob, relay) = (key(1), key(2), key(0));
    let input = vtxo(alice, 330, colour(0, 2_000));
    let carrier = vtxo(relay, 990, None);
    let spare = vtxo(alice, 330, colour(0, 5));
    store
        .insert_vtxos(&[input.clone(), carrier.clone(), spare.clone()], NOW)
        .await
        .expect("insert");
    let session = fixtures::session();
    store
        .lock_vtxos(&[input.id, carrier.id, spare.id], &session, NOW)
        .await
        .expect("lock");

    // Alice sends 1 000 to Bob, pays a 10 fee to the relay, keeps 990 change;
    // carrier sats for the two extra outputs come from the relay's VTXO.
    let tx = transaction(
        Some(session),
        vec![input.id, carrier.id],
        vec![
            (bob, 330, colour(0, 1_000)),
            (relay, 330, colour(0, 10)),
            (alice, 330, colour(0, 990)),
            (relay, 330, None),
        ],
    );
    assert_eq!(
        store.commit_transaction(&tx).await.expect("commit"),
        CommitOutcome::Committed
    );

    let spent = store.vtxo(&input.id).await.expect("vtxo").expect("input");
    assert_eq!(spent.status, VtxoStatus::Spent);
    assert_eq!(spent.spent_by, Some(tx.ark_txid));
    assert_eq!(spent.spent_at, Some(tx.finalized_at));
    assert_eq!(spent.locked_by, None);
    assert_eq!(
        store
            .vtxo(&spare.id)
            .await
            .expect("vtxo")
            .expect("spare")
            .locked_by,
        None,
        "a commit releases the session's other locks"
    );
    let created = store
        .vtxo(&tx.outputs[0].id)
        .await
        .expect("vtxo")
        .expect("output");
    assert_eq!((created.owner, created.status), (bob, VtxoStatus::Assigned));
    assert_eq!(created.colour, colour(0, 1_000));

    let gbtc = asset_id(0);
    let bal = |b: Balances| b.assets.get(&gbtc).copied().unwrap_or_default();
    assert_eq!(
        bal(store.balances(&alice).await.expect("b")),
        AssetAmount::new(995)
    );
    assert_eq!(
        bal(store.balances(&bob).await.expect("b")),
        AssetAmount::new(1_000)
    );
    assert_eq!(
        bal(store.balances(&relay).await.expect("b")),
        AssetAmount::new(10)
    );
    assert_eq!(
        store.balances(&relay).await.expect("b").sats,
        Sats::new(660)
    );
    let supply = store
        .asset(&gbtc)
        .await
        .expect("asset")
        .expect("gbtc")
        .total_supply;
    assert_eq!(
        supply,
        AssetAmount::new(2_005),
        "a transfer neither mints nor burns"
    );
}

/// The same ark txid applies once.
pub async fn commit_is_idempotent_by_ark_txid(store: DynStore) {
    setup_assets(&store, 1).await;
    let (alice, bob) = (key(1), key(2));
    let input = vtxo(alice, 330, colour(0, 100));
    store
        .insert_vtxos(std::slice::from_ref(&input), NOW)
        .await
        .expect("insert");
    let tx = transaction(None, vec![input.id], vec![(bob, 330, colour(0, 100))]);
    assert_eq!(
        store.commit_transaction(&tx).await.expect("commit"),
        CommitOutcome::Committed
    );
    let after = snapshot(&store, &[alice, bob], &[input.id, tx.outputs[0].id]).await;
    assert_eq!(
        store.commit_transaction(&tx).await.expect("again"),
        CommitOutcome::AlreadyCommitted
    );
    assert_eq!(
        snapshot(&store, &[alice, bob], &[input.id, tx.outputs[0].id]).await,
        after
    );

    // A different transaction spending the same input is a double spend.
    let again = transaction(None, vec![input.id], vec![(alice, 330, colour(0, 100))]);
    let e = ledger_err(store.commit_transaction(&again).await);
    assert_eq!(e, LedgerError::AlreadySpent(input.id));
    assert_eq!(e.code(), ErrorCode::InputAlreadySpent);
}

/// Every kind of invalid commit fails with its error and leaves the database
/// exactly as it was.
pub async fn failed_commits_change_nothing(store: DynStore) {
    setup_assets(&store, 2).await;
    let (alice, bob) = (key(1), key(2));
    let a = vtxo(alice, 330, colour(0, 100));
    let b = vtxo(alice, 330, colour(1, 40));
    let spent = vtxo(alice, 330, colour(0, 1));
    store
        .insert_vtxos(&[a.clone(), b.clone(), spent.clone()], NOW)
        .await
        .expect("insert");
    let burn = transaction(None, vec![spent.id], vec![(bob, 330, colour(0, 1))]);
    store.commit_transaction(&burn).await.expect("spend one");
    let other_session = fixtures::session();
    store
        .lock_vtxos(&[b.id], &other_session, NOW)
        .await
        .expect("lock b elsewhere");

    let owners = [alice, bob];
    let watched = [a.id, b.id, spent.id, burn.outputs[0].id];
    let before = snapshot(&store, &owners, &watched).await;
    let missing = fixtures::vtxo_id();

    let cases: Vec<(&str, ark_relay_core::L2Transaction, LedgerError)> = vec![
        {
            let t = transaction(None, vec![a.id], vec![(bob, 330, colour(0, 101))]);
            (
                "colour created",
                t,
                LedgerError::ColourNotConserved {
                    asset: asset_id(0),
                    inputs: 100,
                    outputs: 101,
                },
            )
        },
        {
            let t = transaction(
                None,
                vec![a.id],
                vec![(bob, 165, colour(0, 60)), (alice, 165, colour(1, 40))],
            );
            (
                "colour swapped between assets",
                t,
                LedgerError::ColourNotConserved {
                    asset: asset_id(0),
                    inputs: 100,
                    outputs: 60,
                },
            )
        },
        {
            let t = transaction(None, vec![a.id], vec![(bob, 331, colour(0, 100))]);
            (
                "sats created",
                t,
                LedgerError::SatsNotConserved {
                    inputs: 330,
                    outputs: 331,
                },
            )
        },
        {
            let t = transaction(None, vec![a.id, spent.id], vec![(bob, 660, colour(0, 101))]);
            (
                "input already spent",
                t,
                LedgerError::AlreadySpent(spent.id),
            )
        },
        {
            let t = transaction(None, vec![a.id, b.id], vec![(bob, 660, colour(0, 100))]);
            (
                "input locked by another session",
                t,
                LedgerError::Locked {
                    vtxo: b.id,
                    by: other_session,
                },
            )
        },
        {
            let t = transaction(None, vec![a.id, missing], vec![(bob, 330, colour(0, 100))]);
            ("unknown input", t, LedgerError::UnknownVtxo(missing))
        },
        {
            let mut t = transaction(
                None,
                vec![a.id],
                vec![(bob, 165, colour(0, 100)), (bob, 165, colour(7, 5))],
            );
            t.issued = vec![ark_relay_core::Colour {
                asset: asset_id(7),
                amount: AssetAmount::new(5),
            }];
            ("unknown asset", t, LedgerError::UnknownAsset(asset_id(7)))
        },
        {
            let mut t = transaction(None, vec![a.id], vec![(bob, 330, colour(0, 100))]);
            t.outputs[0].id = spent.id;
            (
                "output id reuses an input of another tx",
                t,
                LedgerError::DuplicateVtxo(spent.id),
            )
        },
        {
            let mut t = transaction(
                None,
                vec![a.id],
                vec![(bob, 165, colour(0, 50)), (bob, 165, colour(0, 50))],
            );
            let first = t.outputs[0].id;
            t.outputs[1].id = first;
            ("repeated output id", t, LedgerError::RepeatedVtxo(first))
        },
        {
            let t = transaction(None, vec![a.id, a.id], vec![(bob, 660, colour(0, 200))]);
            ("repeated input", t, LedgerError::RepeatedVtxo(a.id))
        },
        {
            let t = transaction(None, vec![], vec![(bob, 330, None)]);
            ("no inputs", t, LedgerError::NoInputs)
        },
    ];
    for (what, tx, expected) in cases {
        let got = ledger_err(store.commit_transaction(&tx).await);
        assert_eq!(got, expected, "{what}");
        assert_eq!(
            snapshot(&store, &owners, &watched).await,
            before,
            "{what} changed state"
        );
        for o in &tx.outputs {
            if o.id != spent.id {
                assert!(
                    store.vtxo(&o.id).await.expect("vtxo").is_none(),
                    "{what} created {}",
                    o.id
                );
            }
        }
    }
}

/// Issuance (lift) and burning (land) move the asset's supply.
pub async fn issuance_and_burn_adjust_supply(store: DynStore) {
    setup_assets(&store, 1).await;
    let (alice, relay) = (key(1), key(0));
    let mut carrier = vtxo(relay, 330, None);
    carrier.status = VtxoStatus::Available;
    store
        .insert_vtxos(std::slice::from_ref(&carrier), NOW)
        .await
        .expect("insert");
    let gbtc = ark_relay_core::Colour {
        asset: asset_id(0),
        amount: AssetAmount::new(10_000_000),
    };

    let mut lift = transaction(None, vec![carrier.id], vec![(alice, 330, Some(gbtc))]);
    lift.kind = "lift".into();
    lift.issued = vec![gbtc];
    store.commit_transaction(&lift).await.expect("lift");
    let supply = |a: Option<Asset>| a.expect("asset").total_supply;
    assert_eq!(
        supply(store.asset(&asset_id(0)).await.expect("a")),
        gbtc.amount
    );

    let half = ark_relay_core::Colour {
        asset: asset_id(0),
        amount: AssetAmount::new(5_000_000),
    };
    let mut land = transaction(
        None,
        vec![lift.outputs[0].id],
        vec![(alice, 330, Some(half))],
    );
    land.kind = "land".into();
    land.burned = vec![half];
    store.commit_transaction(&land).await.expect("land");
    assert_eq!(
        supply(store.asset(&asset_id(0)).await.expect("a")),
        half.amount
    );

    // Burning more than the inputs carry is not conserved.
    let mut over = transaction(None, vec![land.outputs[0].id], vec![(alice, 330, None)]);
    over.burned = vec![gbtc];
    let e = ledger_err(store.commit_transaction(&over).await);
    assert!(matches!(e, LedgerError::ColourNotConserved { .. }), "{e:?}");
}

/// Processed events are recorded once.
pub async fn processed_events_are_unique(store: DynStore) {
    let e = ProcessedEvent {
        id: fixtures::event_id(),
        author: key(3),
        kind: 31500,
        created_at: NOW,
        received_at: NOW.plus_secs(1),
        outcome: Some(ErrorCode::CannotDecrypt),
    };
    assert_eq!(store.record_event(&e).await.expect("record"), Recorded::New);
    let mut again = e.clone();
    again.outcome = None;
    assert_eq!(
        store.record_event(&again).await.expect("again"),
        Recorded::Duplicate
    );
    assert_eq!(store.processed_event(&e.id).await.expect("get"), Some(e));
    assert_eq!(
        store
            .processed_event(&fixtures::event_id())
            .await
            .expect("get"),
        None
    );
}

/// Intents are unique by event id and, forever, by `(author, action_id)`.
pub async fn intents_are_unique_by_event_and_action(store: DynStore) {
    let alice = key(1);
    let first = fixtures::intent(alice, "action-1");
    assert_eq!(
        store.record_intent(&first).await.expect("record"),
        Recorded::New
    );
    assert_eq!(
        store.record_intent(&first).await.expect("same event"),
        Recorded::Duplicate
    );

    let replay = fixtures::intent(alice, "action-1");
    assert_eq!(
        store.record_intent(&replay).await.expect("replay"),
        Recorded::ReplayedAction {
            original: first.event_id
        }
    );
    let seen = store
        .processed_event(&replay.event_id)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(seen.outcome, Some(ErrorCode::ReplayedAction));
    assert_eq!(seen.kind, 31510);
    assert_eq!(
        store.record_intent(&replay).await.expect("replay again"),
        Recorded::Duplicate
    );

    let stored = store
        .intent_by_action(&alice, &first.action_id)
        .await
        .expect("get");
    assert_eq!(stored, Some(first.clone()));
    let bob_same_action = fixtures::intent(key(2), "action-1");
    assert_eq!(
        store.record_intent(&bob_same_action).await.expect("bob"),
        Recorded::New
    );
    assert_eq!(
        store
            .processed_event(&first.event_id)
            .await
            .expect("get")
            .expect("e")
            .outcome,
        None
    );
}

/// 32 tasks race to lock and spend the same VTXO, 20 rounds: exactly one wins
/// each round, the others see 2002 or 2004, and nothing is created twice.
pub async fn racing_spends_spend_once(store: DynStore) {
    setup_assets(&store, 1).await;
    let alice = key(1);
    let mut total = BTreeMap::new();
    for round in 0..20u32 {
        let contested = vtxo(alice, 330, colour(0, 1_000));
        store
            .insert_vtxos(std::slice::from_ref(&contested), NOW)
            .await
            .expect("insert");
        let racers = (0..32u32).map(|i| {
            let store = store.clone();
            let id = contested.id;
            tokio::spawn(async move {
                let session = fixtures::session();
                let to = key(100 + i);
                store.lock_vtxos(&[id], &session, NOW).await?;
                let tx = transaction(Some(session), vec![id], vec![(to, 330, colour(0, 1_000))]);
                let out = store.commit_transaction(&tx).await;
                let _ = store.release_locks(&session).await;
                out.map(|_| to)
            })
        });
        let results = join_all(racers).await;
        let mut winners = Vec::new();
        for r in results {
            match r.expect("task") {
                Ok(to) => winners.push(to),
                Err(StoreError::Ledger(e)) => {
                    let code = e.code();
                    assert!(
                        code == ErrorCode::InputAlreadySpent || code == ErrorCode::InputLocked,
                        "round {round}: unexpected {e:?}"
                    );
                }
                Err(e) => panic!("round {round}: store failure {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one spend wins");
        *total.entry(winners[0]).or_insert(0u64) += 1_000;
        let v = store
            .vtxo(&contested.id)
            .await
            .expect("vtxo")
            .expect("exists");
        assert_eq!(v.status, VtxoStatus::Spent);
        assert_eq!(v.locked_by, None);
    }
    // Balances conserved: 20 000 units exist, all with the winners.
    let mut sum = 0u64;
    for (owner, expected) in &total {
        let got = store
            .balances(owner)
            .await
            .expect("b")
            .assets
            .get(&asset_id(0))
            .map(|a| a.get());
        assert_eq!(got, Some(*expected));
        sum += expected;
    }
    assert_eq!(sum, 20_000);
    assert!(store
        .unspent_vtxos(&alice)
        .await
        .expect("unspent")
        .is_empty());
    let supply = store
        .asset(&asset_id(0))
        .await
        .expect("a")
        .expect("asset")
        .total_supply;
    assert_eq!(supply, AssetAmount::new(20_000));
}
