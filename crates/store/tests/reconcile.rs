//! `ReconcileStore` on SQLite and on a real MariaDB: the unspent ledger is
//! paged by id over every owner, a run replaces the disputed set in the same
//! transaction as its summary, a failed run leaves the set alone, and the
//! newest run is the one reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_relay_core::reconcile::{
    Dispute, DisputeReason, ReconcileStatus, ReconcileStore, ReconciliationRun,
};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, NewAsset, NewVtxo, PubKey, RelayStore, Sats,
    Tapscripts, UnixTime, VtxoId, VtxoStatus,
};
use ark_relay_store::testing::TestDb;
use bitcoin::hashes::Hash;

fn key(b: u8) -> PubKey {
    let sk = bitcoin::secp256k1::SecretKey::from_slice(&[b; 32]).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    PubKey::from_x_only(sk.x_only_public_key(&secp).0)
}

fn id(n: u8) -> VtxoId {
    VtxoId::from(bitcoin::OutPoint::new(
        bitcoin::Txid::from_byte_array([n; 32]),
        u32::from(n),
    ))
}

fn vtxo(n: u8, owner: u8, colour: Option<Colour>, status: VtxoStatus) -> NewVtxo {
    NewVtxo {
        id: id(n),
        owner: key(owner),
        sats: Sats::new(330),
        colour,
        status,
        tapscripts: Tapscripts(vec![vec![0x51]]),
        expires_at: None,
    }
}

fn run(status: ReconcileStatus, at: i64, disputed: u64) -> ReconciliationRun {
    ReconciliationRun {
        started_at: UnixTime(at),
        finished_at: UnixTime(at + 1),
        checked: 4,
        in_flight: 0,
        differences: disputed,
        disputed,
        status,
        detail: "[]".into(),
    }
}

async fn exercise(db: TestDb) {
    let s = &db.store;
    let asset = AssetId::from_bytes([9; 32]);
    s.register_asset(
        &NewAsset {
            id: asset,
            name: "gBTC".into(),
            ticker: "gBTC".into(),
            asset_type: AssetType::RelayIssued,
            decimals: 0,
        },
        UnixTime(1),
    )
    .await
    .unwrap();
    let colour = Colour {
        asset,
        amount: AssetAmount::new(50),
    };
    s.insert_vtxos(
        &[
            vtxo(1, 1, Some(colour), VtxoStatus::Assigned),
            vtxo(2, 2, None, VtxoStatus::Available),
            vtxo(3, 3, Some(colour), VtxoStatus::Assigned),
            vtxo(5, 2, None, VtxoStatus::Assigned),
        ],
        UnixTime(2),
    )
    .await
    .unwrap();
    // A spent row is not listed.
    let session = ark_relay_core::SessionId::from_bytes([7; 32]);
    s.lock_vtxos(&[id(5)], &session, UnixTime(3)).await.unwrap();
    s.commit_transaction(&ark_relay_core::L2Transaction {
        ark_txid: bitcoin::Txid::from_byte_array([4; 32]),
        kind: "p2p_transfer".into(),
        session: Some(session),
        inputs: vec![id(5)],
        outputs: vec![vtxo(6, 2, None, VtxoStatus::Assigned)],
        issued: vec![],
        burned: vec![],
        finalized_at: UnixTime(3),
        fee: ark_relay_core::Sats::ZERO,
    })
    .await
    .unwrap();

    // Paging: every spendable row of every owner, once, in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.unspent_page(after.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|v| v.id);
        seen.extend(page.into_iter().map(|v| (v.id, v.colour)));
    }
    let mut want = vec![
        (id(1), Some(colour)),
        (id(2), None),
        (id(3), Some(colour)),
        (id(6), None),
    ];
    want.sort_by_key(|(i, _)| i.to_string());
    assert_eq!(seen, want);

    // No run yet, nothing disputed.
    assert_eq!(s.last_reconciliation().await.unwrap(), None);
    assert!(s.disputes_among(&[id(1)]).await.unwrap().is_empty());

    // A degraded run disputes exactly its set (a repeated id is one row).
    let d1 = Dispute {
        vtxo: id(1),
        reason: DisputeReason::Colour,
    };
    let d3 = Dispute {
        vtxo: id(3),
        reason: DisputeReason::Sats,
    };
    let first = run(ReconcileStatus::Degraded, 10, 2);
    s.record_reconciliation(&first, Some(&[d1.clone(), d3.clone(), d1.clone()]))
        .await
        .unwrap();
    assert_eq!(s.last_reconciliation().await.unwrap(), Some(first));
    assert_eq!(
        s.disputes_among(&[id(5), id(3), id(1)]).await.unwrap(),
        vec![d1.clone(), d3.clone()]
    );

    // A failed run is reported but keeps the disputes.
    let failed = run(ReconcileStatus::Failed, 20, 0);
    s.record_reconciliation(&failed, None).await.unwrap();
    assert_eq!(s.last_reconciliation().await.unwrap(), Some(failed));
    assert_eq!(s.disputes_among(&[id(1), id(3)]).await.unwrap().len(), 2);

    // A clean run clears them.
    let clean = run(ReconcileStatus::Ok, 30, 0);
    s.record_reconciliation(&clean, Some(&[])).await.unwrap();
    assert_eq!(s.last_reconciliation().await.unwrap(), Some(clean));
    assert!(s.disputes_among(&[id(1), id(3)]).await.unwrap().is_empty());
    db.destroy().await;
}

#[tokio::test]
async fn reconcile_store_on_sqlite() {
    exercise(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn reconcile_store_on_mariadb() {
    exercise(TestDb::mariadb().await.expect("MariaDB")).await;
}
