//! `RampStore` on SQLite and on a real MariaDB: one lift per request, one
//! land per payment hash, optimistic updates that queue their outbox rows in
//! the same transaction, and the reserve record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_relay_core::backends::lightning::{PaymentHash, Preimage};
use ark_relay_core::ramp::{
    LandInsert, LandRecord, LandStatus, LiftRecord, LiftStatus, RampStore, ReserveRecord,
};
use ark_relay_core::{
    AssetId, AssetType, EventId, NewAsset, NewOutboxEvent, PubKey, RelayStore, UnixTime,
};
use ark_relay_store::testing::TestDb;

fn key(b: u8) -> PubKey {
    let sk = bitcoin::secp256k1::SecretKey::from_slice(&[b; 32]).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    PubKey::from_x_only(sk.x_only_public_key(&secp).0)
}

fn lift(n: u8, asset: AssetId) -> LiftRecord {
    let preimage = Preimage([n; 32]);
    LiftRecord {
        lift_id: format!("lift-{n}"),
        user: key(1),
        request: EventId::from_bytes([n; 32]),
        asset,
        amount: 1_000,
        hash: preimage.hash(),
        preimage,
        invoice: None,
        status: LiftStatus::Created,
        vtxo: None,
        ark_txid: None,
        created_at: UnixTime(100),
        updated_at: UnixTime(100),
        expires_at: UnixTime(4_000),
        error_code: None,
        data: String::new(),
        version: 0,
    }
}

fn land(n: u8, hash: u8, asset: AssetId) -> LandRecord {
    LandRecord {
        intent: EventId::from_bytes([n; 32]),
        user: key(2),
        asset,
        amount: 5_000,
        fee: 5,
        hash: PaymentHash([hash; 32]),
        invoice: "lnbcrt…".into(),
        fee_limit_sats: 5,
        status: LandStatus::Received,
        preimage: None,
        ark_txid: None,
        refund_vtxo: None,
        created_at: UnixTime(100),
        updated_at: UnixTime(100),
        error_code: None,
        data: String::new(),
        version: 0,
    }
}

fn outbox(key: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        dedupe_key: key.into(),
        kind: 31340,
        recipient: None,
        event_json: "{}".into(),
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

    // Lifts: one per request; the preimage round-trips; updates are optimistic.
    let l = lift(1, asset);
    assert!(s.create_lift(&l).await.unwrap());
    assert!(!s.create_lift(&l).await.unwrap(), "one lift per request");
    let mut got = s.lift_by_request(&l.request).await.unwrap().unwrap();
    assert_eq!(got.preimage, l.preimage);
    assert_eq!(got.hash, l.hash);
    got.status = LiftStatus::Invoiced;
    got.invoice = Some("lnbcrt1…".into());
    assert!(s
        .update_lift(&got, &[outbox("a")], UnixTime(101))
        .await
        .unwrap());
    assert!(
        !s.update_lift(&got, &[outbox("b")], UnixTime(102))
            .await
            .unwrap(),
        "a stale version changes nothing"
    );
    let now = s.lift(&l.lift_id).await.unwrap().unwrap();
    assert_eq!((now.status, now.version), (LiftStatus::Invoiced, 1));
    let due = s.due_outbox(UnixTime(200), 10).await.unwrap();
    assert_eq!(due.len(), 1, "only the winning update queued its event");
    assert_eq!(s.active_lifts(10).await.unwrap().len(), 1);
    let mut done = now.clone();
    done.status = LiftStatus::Announced;
    assert!(s.update_lift(&done, &[], UnixTime(103)).await.unwrap());
    assert!(s.active_lifts(10).await.unwrap().is_empty());

    // Lands: one per intent, one per payment hash, ever.
    let a = land(1, 7, asset);
    assert_eq!(s.create_land(&a).await.unwrap(), LandInsert::New);
    assert!(matches!(
        s.create_land(&a).await.unwrap(),
        LandInsert::Existing(_)
    ));
    assert_eq!(
        s.create_land(&land(2, 7, asset)).await.unwrap(),
        LandInsert::HashUsed
    );
    let mut got = s.land(&a.intent).await.unwrap().unwrap();
    got.status = LandStatus::Paying;
    assert!(s.update_land(&got, &[], UnixTime(110)).await.unwrap());
    got.version += 1;
    got.status = LandStatus::Succeeded;
    got.preimage = Some(Preimage([3; 32]));
    assert!(s
        .update_land(&got, &[outbox("c")], UnixTime(111))
        .await
        .unwrap());
    let end = s.land(&a.intent).await.unwrap().unwrap();
    assert_eq!(end.preimage, Some(Preimage([3; 32])));
    assert!(s.active_lands(10).await.unwrap().is_empty());

    // The reserve: inserted, then updated in place.
    let mut r = ReserveRecord {
        asset,
        lightning_sats: 1_000,
        onchain_sats: 50,
        updated_at: UnixTime(120),
    };
    s.record_reserve(&r).await.unwrap();
    r.lightning_sats = 2_000;
    r.updated_at = UnixTime(121);
    s.record_reserve(&r).await.unwrap();
    assert_eq!(s.reserves().await.unwrap(), vec![r]);
    assert_eq!(
        s.asset(&asset).await.unwrap().unwrap().reserve_amount.get(),
        2_050
    );
    db.destroy().await;
}

#[tokio::test]
async fn ramp_store_on_sqlite() {
    exercise(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn ramp_store_on_mariadb() {
    exercise(TestDb::mariadb().await.expect("MariaDB")).await;
}
