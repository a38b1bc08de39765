//! `SettlementStore` on both back ends: periods, claiming leaves, the unique
//! period, the optimistic state machine and the outbox written with it.

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

use std::sync::Arc;

use ark_relay_core::merkle::MerkleTree;
use ark_relay_core::settlement::{
    OpenedPeriod, SettlementStatus, SettlementStore, SettlementUpdate,
};
use ark_relay_core::{NewOutboxEvent, RelayStore, UnixTime};
use ark_relay_store::testing::TestDb;
use ark_relay_store::{Backend, SqlStore};
use ark_relay_testkit::fixtures;
use bitcoin::Txid;

async fn db(backend: Backend) -> TestDb {
    match TestDb::of(backend).await {
        Ok(db) => db,
        Err(e) => panic!("cannot create a {} test database: {e}", backend.as_str()),
    }
}

/// Commits one L2 transaction finalized at `at` and returns its ark txid.
async fn commit_at(store: &SqlStore, at: i64) -> Txid {
    let owner = fixtures::key(1);
    let input = fixtures::vtxo(owner, 1_000, None);
    store
        .insert_vtxos(std::slice::from_ref(&input), UnixTime(at))
        .await
        .unwrap();
    let mut tx = fixtures::transaction(None, vec![input.id], vec![(owner, 1_000, None)]);
    tx.finalized_at = UnixTime(at);
    store.commit_transaction(&tx).await.unwrap();
    tx.ark_txid
}

fn opened(o: OpenedPeriod) -> ark_relay_core::settlement::SettlementRecord {
    match o {
        OpenedPeriod::New(r) => r,
        OpenedPeriod::Exists => panic!("period already existed"),
    }
}

const H: i64 = 3_600;
const T0: i64 = 1_700_002_800; // an hour boundary (divisible by 3600)

async fn periods_claim_leaves_once(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    assert_eq!(s.last_period().await.unwrap(), None);
    assert_eq!(s.first_unsettled_at().await.unwrap(), None);
    let a = commit_at(s, T0 + 10).await;
    let b = commit_at(s, T0 + H - 1).await;
    let c = commit_at(s, T0 + H).await; // next hour
    assert_eq!(
        s.first_unsettled_at().await.unwrap(),
        Some(UnixTime(T0 + 10))
    );
    let mut first_hour = vec![a, b];
    first_hour.sort_by_key(|t| t.to_string());
    assert_eq!(
        s.l2_txids_finalized(UnixTime(T0), UnixTime(T0 + H))
            .await
            .unwrap(),
        first_hour
    );

    let now = UnixTime(T0 + H + 60);
    let r = opened(
        s.open_period(UnixTime(T0), UnixTime(T0 + H), now)
            .await
            .unwrap(),
    );
    assert_eq!(r.status, SettlementStatus::Pending);
    assert_eq!(r.l2_tx_count, 2);
    assert_eq!(r.period_start, UnixTime(T0));
    assert_eq!(r.period_end, UnixTime(T0 + H));
    assert_eq!(r.merkle_root, Some(MerkleTree::new([a, b]).root()));
    assert_eq!(r.attempts, 0);
    assert_eq!(s.settlement_txids(r.id).await.unwrap(), first_hour);
    assert_eq!(s.settlement_of(&a).await.unwrap(), Some(r.id));
    assert_eq!(s.settlement_of(&c).await.unwrap(), None);
    assert_eq!(
        s.first_unsettled_at().await.unwrap(),
        Some(UnixTime(T0 + H))
    );

    // The same hour again (a second scheduler, a restart): a no-op.
    assert_eq!(
        s.open_period(UnixTime(T0), UnixTime(T0 + H), now)
            .await
            .unwrap(),
        OpenedPeriod::Exists
    );
    assert_eq!(s.settlements(None, 10).await.unwrap().len(), 1);

    // A transaction committed late into the closed hour goes to the next period.
    let late = commit_at(s, T0 + 20).await;
    let r2 = opened(
        s.open_period(UnixTime(T0 + H), UnixTime(T0 + 2 * H), now)
            .await
            .unwrap(),
    );
    assert_eq!(r2.l2_tx_count, 2);
    let mut second = vec![c, late];
    second.sort_by_key(|t| t.to_string());
    assert_eq!(s.settlement_txids(r2.id).await.unwrap(), second);
    assert_eq!(r2.merkle_root, Some(MerkleTree::new(second).root()));

    // An empty hour is closed as published at once, without leaves.
    let r3 = opened(
        s.open_period(UnixTime(T0 + 2 * H), UnixTime(T0 + 3 * H), now)
            .await
            .unwrap(),
    );
    assert_eq!(r3.status, SettlementStatus::Published);
    assert_eq!(r3.l2_tx_count, 0);
    assert_eq!(r3.merkle_root, Some(MerkleTree::new([]).root()));
    assert_eq!(s.last_period().await.unwrap().map(|r| r.id), Some(r3.id));

    // Listing: newest first, paged by id.
    let all = s.settlements(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r3.id, r2.id, r.id]
    );
    let page = s.settlements(Some(r2.id), 10).await.unwrap();
    assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r.id]);
    assert_eq!(s.settlements(None, 1).await.unwrap()[0].id, r3.id);
    let open: Vec<i64> = s
        .open_settlements()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open, vec![r.id, r2.id]);
    assert!(
        s.open_period(UnixTime(T0), UnixTime(T0), now)
            .await
            .is_err(),
        "an empty interval is refused"
    );
    db.destroy().await;
}

async fn state_machine_is_optimistic(backend: Backend) {
    let db = db(backend).await;
    let s = &db.store;
    commit_at(s, T0 + 1).await;
    let now = UnixTime(T0 + H + 1);
    let r = opened(
        s.open_period(UnixTime(T0), UnixTime(T0 + H), now)
            .await
            .unwrap(),
    );
    // Two runners both try to start attempt 1: only one wins.
    let attempt = SettlementUpdate {
        fee_rate_sat_vb: Some(12),
        count_attempt: true,
        ..SettlementUpdate::to(SettlementStatus::Pending)
    };
    assert!(s.update_settlement(&r, &attempt, &[], now).await.unwrap());
    assert!(!s.update_settlement(&r, &attempt, &[], now).await.unwrap());
    let r = s.settlement(r.id).await.unwrap().unwrap();
    assert_eq!((r.attempts, r.fee_rate_sat_vb), (1, Some(12)));

    let l1 = fixtures::txid();
    let broadcast = SettlementUpdate {
        l1_txid: Some(l1),
        ..SettlementUpdate::to(SettlementStatus::Broadcast)
    };
    assert!(s
        .update_settlement(&r, &broadcast, &[], UnixTime(now.0 + 5))
        .await
        .unwrap());
    let r = s.settlement(r.id).await.unwrap().unwrap();
    assert_eq!(r.status, SettlementStatus::Broadcast);
    assert_eq!(r.l1_txid, Some(l1));
    assert_eq!(r.fee_rate_sat_vb, Some(12), "unchanged fields are kept");
    assert_eq!(r.updated_at, UnixTime(now.0 + 5));

    let confirmed = SettlementUpdate {
        block_height: Some(812_345),
        ..SettlementUpdate::to(SettlementStatus::Confirmed)
    };
    assert!(s.update_settlement(&r, &confirmed, &[], now).await.unwrap());
    let r = s.settlement(r.id).await.unwrap().unwrap();
    let notice = fixtures::event_id();
    let published = SettlementUpdate {
        notice_event_id: Some(notice),
        ..SettlementUpdate::to(SettlementStatus::Published)
    };
    let row = NewOutboxEvent {
        dedupe_key: format!("31342:{}", r.id),
        kind: 31342,
        recipient: None,
        event_json: "{}".into(),
    };
    assert!(s
        .update_settlement(&r, &published, std::slice::from_ref(&row), now)
        .await
        .unwrap());
    // A stale runner's publish changes nothing and queues nothing.
    assert!(!s
        .update_settlement(&r, &published, std::slice::from_ref(&row), now)
        .await
        .unwrap());
    let r = s.settlement(r.id).await.unwrap().unwrap();
    assert_eq!(r.status, SettlementStatus::Published);
    assert_eq!(r.block_height, Some(812_345));
    assert_eq!(r.notice_event_id, Some(notice));
    let out = s.due_outbox(now, 10).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, 31342);
    assert!(s.open_settlements().await.unwrap().is_empty());
    assert_eq!(s.settlement(r.id + 100).await.unwrap(), None);
    db.destroy().await;
}

async fn racing_openers_make_one_row(backend: Backend) {
    let db = db(backend).await;
    let store = Arc::new(db.store.clone());
    for i in 0..5 {
        commit_at(&store, T0 + i).await;
    }
    let now = UnixTime(T0 + H + 1);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.open_period(UnixTime(T0), UnixTime(T0 + H), now).await
        }));
    }
    let mut new = 0;
    for t in tasks {
        if let OpenedPeriod::New(r) = t.await.unwrap().unwrap() {
            assert_eq!(r.l2_tx_count, 5);
            new += 1;
        }
    }
    assert_eq!(new, 1, "exactly one opener wins");
    assert_eq!(store.settlements(None, 10).await.unwrap().len(), 1);
    db.destroy().await;
}

mod sqlite {
    use super::*;
    #[tokio::test]
    async fn periods_claim_leaves_once() {
        super::periods_claim_leaves_once(Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn state_machine_is_optimistic() {
        super::state_machine_is_optimistic(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_openers_make_one_row() {
        super::racing_openers_make_one_row(Backend::Sqlite).await;
    }
}

mod mariadb {
    use super::*;
    #[tokio::test]
    async fn periods_claim_leaves_once() {
        super::periods_claim_leaves_once(Backend::MariaDb).await;
    }
    #[tokio::test]
    async fn state_machine_is_optimistic() {
        super::state_machine_is_optimistic(Backend::MariaDb).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_openers_make_one_row() {
        super::racing_openers_make_one_row(Backend::MariaDb).await;
    }
}
