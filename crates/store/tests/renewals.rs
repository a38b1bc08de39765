//! `RenewalStore` on SQLite and on a real MariaDB: a delegation is inserted
//! once per renewal id, moves only from the status it is in, keeps its round
//! job and new VTXO, is found by VTXO and by owner, and gets at most one
//! near-expiry notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_relay_core::renewals::{DelegationRecord, DelegationStatus as S, RenewalStore};
use ark_relay_core::UnixTime;
use ark_relay_store::testing::TestDb;

fn record(vtxo: &str, owner: &str, recovery: bool) -> DelegationRecord {
    DelegationRecord {
        renewal_id: format!("{}:{vtxo}", if recovery { "recover" } else { "renew" }),
        vtxo: vtxo.into(),
        owner: owner.into(),
        recovery,
        status: S::Asked,
        challenge: r#"{"v":1}"#.into(),
        valid_at: UnixTime(900),
        vtxo_expires_at: UnixTime(1000),
        job_id: None,
        new_vtxo: None,
        reason: None,
        notified_at: None,
        created_at: UnixTime(10),
        updated_at: UnixTime(10),
    }
}

async fn exercise(db: TestDb) {
    let s = &db.store;
    let a = record("aa:0", "alice", false);
    assert!(s.insert_delegation(&a).await.unwrap());
    assert!(
        !s.insert_delegation(&a).await.unwrap(),
        "once per renewal id"
    );
    let r = record("aa:0", "alice", true);
    assert!(s.insert_delegation(&r).await.unwrap());
    let b = record("bb:1", "bob", false);
    assert!(s.insert_delegation(&b).await.unwrap());
    assert_eq!(s.delegation(&a.renewal_id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.delegations_of_vtxo("aa:0").await.unwrap().len(), 2);
    let alice = s.delegations_of_owner("alice", 10).await.unwrap();
    assert_eq!(alice.len(), 2);
    assert_eq!(alice[0].renewal_id, r.renewal_id, "newest first");

    // Only from the status it is in.
    let job = Some("renew:aa:0");
    assert!(!s
        .move_delegation(
            &a.renewal_id,
            S::Queued,
            S::Done,
            None,
            None,
            None,
            UnixTime(20)
        )
        .await
        .unwrap());
    assert!(s
        .move_delegation(
            &a.renewal_id,
            S::Asked,
            S::Queued,
            job,
            None,
            None,
            UnixTime(20)
        )
        .await
        .unwrap());
    assert!(s
        .move_delegation(
            &a.renewal_id,
            S::Queued,
            S::Done,
            None,
            Some("cc:0"),
            None,
            UnixTime(30)
        )
        .await
        .unwrap());
    let done = s.delegation(&a.renewal_id).await.unwrap().unwrap();
    assert_eq!(done.status, S::Done);
    assert_eq!(done.job_id.as_deref(), job, "kept");
    assert_eq!(done.new_vtxo.as_deref(), Some("cc:0"));
    assert_eq!(done.updated_at, UnixTime(30));
    assert!(s
        .move_delegation(
            &b.renewal_id,
            S::Asked,
            S::Refused,
            None,
            None,
            Some("no"),
            UnixTime(40)
        )
        .await
        .unwrap());
    let refused = s.delegations_in(S::Refused, 10).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].reason.as_deref(), Some("no"));

    // One notice.
    assert!(s.mark_notified(&b.renewal_id, UnixTime(50)).await.unwrap());
    assert!(!s.mark_notified(&b.renewal_id, UnixTime(60)).await.unwrap());
    let b2 = s.delegation(&b.renewal_id).await.unwrap().unwrap();
    assert_eq!(b2.notified_at, Some(UnixTime(50)));
    db.destroy().await;
}

#[tokio::test]
async fn renewal_store_on_sqlite() {
    exercise(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn renewal_store_on_mariadb() {
    exercise(TestDb::mariadb().await.expect("MariaDB")).await;
}
