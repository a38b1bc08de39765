//! The writes that fold one commit into another (issue 18, fewer commits per
//! transfer), on both back ends: a ceremony write that also records its
//! job `done`, one that also applies the ledger commit, and the outbox's
//! delivered marks in one transaction. Each is all or nothing.

use std::sync::Arc;

use ark_relay_core::{
    CommitOutcome, DynStore, ErrorCode, Job, JobStatus, NewOutboxEvent, ProcessedEvent, Recorded,
    SessionRecord, SessionStatus, SessionWrite, StoreError, UnixTime, VtxoStatus,
};
use ark_relay_store::testing::TestDb;
use ark_relay_store::Backend;
use ark_relay_testkit::fixtures::{self, key};

const NOW: UnixTime = UnixTime(1_700_000_000);

async fn store(backend: Backend) -> (DynStore, TestDb) {
    let db = match TestDb::of(backend).await {
        Ok(db) => db,
        Err(e) => panic!(
            "cannot create a {} test database (is it running? scripts/test starts it): {e}",
            backend.as_str()
        ),
    };
    (Arc::new(db.store.clone()), db)
}

fn session(owner: ark_relay_core::PubKey) -> SessionRecord {
    let intent = fixtures::event_id();
    SessionRecord {
        id: intent.into(),
        user: owner,
        intent,
        status: SessionStatus::Active,
        state: "ark_tx_prepared".into(),
        current_step: None,
        steps_completed: vec![],
        created_at: NOW,
        updated_at: NOW,
        expires_at: NOW.plus_secs(900),
        step_deadline: None,
        error_code: None,
        error_message: None,
        data: r#"{"plan":1}"#.into(),
        batch_id: None,
        ark_txid: None,
        version: 0,
    }
}

fn notice(key: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        dedupe_key: key.to_owned(),
        kind: 31340,
        recipient: None,
        event_json: format!(r#"{{"id":"{key}"}}"#),
    }
}

/// A pending job, accepted as ingest does.
async fn pending_job(store: &DynStore, key: &str) {
    let event = ProcessedEvent {
        id: fixtures::event_id(),
        author: fixtures::key(1),
        kind: 31512,
        created_at: NOW,
        received_at: NOW,
        outcome: None,
    };
    let job = Job {
        key: key.to_owned(),
        kind: "signing_response".into(),
        payload: "{}".into(),
    };
    assert_eq!(
        store
            .accept_event(&event, None, &job, NOW)
            .await
            .expect("accept"),
        Recorded::New
    );
}

async fn job_status(store: &DynStore, key: &str) -> (JobStatus, u32) {
    let j = store.job(key).await.expect("job").expect("exists");
    (j.status, j.attempts)
}

fn write<'a>(
    s: &'a SessionRecord,
    outbox: &'a [NewOutboxEvent],
    ledger: Option<&'a ark_relay_core::L2Transaction>,
    job: Option<&'a str>,
) -> SessionWrite<'a> {
    SessionWrite {
        session: s,
        mirrors: &[],
        outbox,
        release_locks: true,
        ledger,
        finish_job: job,
    }
}

/// A ceremony write that ends its job records the job `done` in the same
/// transaction; a stale write records nothing; a finished job stays finished.
async fn a_session_write_finishes_its_job(store: DynStore) {
    let s = session(key(5));
    assert_eq!(
        store.create_session(&s).await.expect("create"),
        Recorded::New
    );
    pending_job(&store, "job-a").await;
    let out = [notice("folded-a")];

    let mut stale = s.clone();
    stale.version = 3;
    assert!(!store
        .write_session(&write(&stale, &out, None, Some("job-a")), NOW)
        .await
        .expect("stale write"));
    assert_eq!(
        job_status(&store, "job-a").await,
        (JobStatus::Pending, 0),
        "a stale write leaves the job pending"
    );
    assert!(store.due_outbox(NOW, 50).await.expect("outbox").is_empty());

    assert!(store
        .write_session(&write(&s, &out, None, Some("job-a")), NOW)
        .await
        .expect("write"));
    assert_eq!(job_status(&store, "job-a").await, (JobStatus::Done, 1));
    assert_eq!(store.due_outbox(NOW, 50).await.expect("outbox").len(), 1);
    // The worker's own bookkeeping then finds it finished: nothing twice.
    assert!(!store
        .finish_job("job-a", JobStatus::Done, &[notice("late")], None, NOW)
        .await
        .expect("finish"));
    assert_eq!(store.due_outbox(NOW, 50).await.expect("outbox").len(), 1);

    // A later write naming the finished job (a redelivery's) writes its
    // session and leaves the job as it is.
    let mut next = s.clone();
    next.version = 1;
    assert!(store
        .write_session(&write(&next, &[], None, Some("job-a")), NOW)
        .await
        .expect("write"));
    assert_eq!(job_status(&store, "job-a").await, (JobStatus::Done, 1));
}

/// A ceremony write with a ledger commit applies both or neither: a refused
/// commit fails the whole write (session, outbox, job untouched); a
/// committed one spends and creates with the session's new state; the same
/// commit again is a no-op with the next write.
async fn a_session_write_commits_its_ledger_change(store: DynStore) {
    store
        .register_asset(&fixtures::new_asset(0), NOW)
        .await
        .expect("asset");
    let (alice, bob) = (key(1), key(2));
    let input = fixtures::vtxo(alice, 330, fixtures::colour(0, 1_000));
    store
        .insert_vtxos(std::slice::from_ref(&input), NOW)
        .await
        .expect("insert");
    let s = session(alice);
    assert_eq!(
        store.create_session(&s).await.expect("create"),
        Recorded::New
    );
    store
        .lock_vtxos(&[input.id], &s.id, NOW)
        .await
        .expect("lock");
    pending_job(&store, "job-b").await;
    let out = [notice("folded-b")];

    // Colour not conserved: refused, and nothing of the write happens.
    let bad = fixtures::transaction(
        Some(s.id),
        vec![input.id],
        vec![(bob, 330, fixtures::colour(0, 999))],
    );
    let mut done = s.clone();
    done.status = SessionStatus::Completed;
    done.state = "completed".into();
    let err = store
        .write_session(&write(&done, &out, Some(&bad), Some("job-b")), NOW)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Ledger(_)), "{err}");
    let kept = store.session(&s.id).await.expect("get").expect("exists");
    assert_eq!((kept.version, kept.status), (0, SessionStatus::Active));
    let held = store.vtxo(&input.id).await.expect("get").expect("exists");
    assert_eq!(
        (held.status, held.locked_by),
        (VtxoStatus::Assigned, Some(s.id))
    );
    assert!(store.due_outbox(NOW, 50).await.expect("outbox").is_empty());
    assert_eq!(job_status(&store, "job-b").await, (JobStatus::Pending, 0));

    // A stale write applies no ledger change either.
    let good = fixtures::transaction(
        Some(s.id),
        vec![input.id],
        vec![(bob, 330, fixtures::colour(0, 1_000))],
    );
    let mut stale = done.clone();
    stale.version = 9;
    assert!(!store
        .write_session(&write(&stale, &out, Some(&good), None), NOW)
        .await
        .expect("stale"));
    let held = store.vtxo(&input.id).await.expect("get").expect("exists");
    assert_eq!(held.status, VtxoStatus::Assigned);

    assert!(store
        .write_session(&write(&done, &out, Some(&good), Some("job-b")), NOW)
        .await
        .expect("write"));
    let spent = store.vtxo(&input.id).await.expect("get").expect("exists");
    assert_eq!(
        (spent.status, spent.spent_by, spent.locked_by),
        (VtxoStatus::Spent, Some(good.ark_txid), None)
    );
    let paid = store
        .vtxo(&good.outputs[0].id)
        .await
        .expect("get")
        .expect("output");
    assert_eq!((paid.owner, paid.colour), (bob, fixtures::colour(0, 1_000)));
    let got = store.session(&s.id).await.expect("get").expect("exists");
    assert_eq!((got.version, got.status), (1, SessionStatus::Completed));
    assert_eq!(store.due_outbox(NOW, 50).await.expect("outbox").len(), 1);
    assert_eq!(job_status(&store, "job-b").await, (JobStatus::Done, 1));

    // The same commit again (a retry after a lost answer) is already there.
    assert_eq!(
        store.commit_transaction(&good).await.expect("again"),
        CommitOutcome::AlreadyCommitted
    );
    let mut again = got.clone();
    again.error_code = Some(ErrorCode::SigningRefused);
    assert!(store
        .write_session(&write(&again, &[], Some(&good), None), NOW)
        .await
        .expect("write again"));
    let bal = store.balances(&bob).await.expect("balances");
    assert_eq!(
        bal.assets.get(&fixtures::asset_id(0)).map(|a| a.get()),
        Some(1_000),
        "paid once"
    );
}

/// Delivered marks of several rows are written in one call; rows already
/// delivered and unknown ids are left alone.
async fn delivered_marks_are_written_together(store: DynStore) {
    let rows: Vec<NewOutboxEvent> = (0..4).map(|i| notice(&format!("mark-{i}"))).collect();
    store.push_outbox(&rows, NOW).await.expect("push");
    let due = store.due_outbox(NOW, 50).await.expect("due");
    assert_eq!(due.len(), 4);
    let first: Vec<i64> = due[..3].iter().map(|o| o.id).collect();
    store
        .mark_outbox_delivered_many(&first, NOW.plus_secs(1))
        .await
        .expect("mark");
    let left = store.due_outbox(NOW, 50).await.expect("due");
    assert_eq!(
        left.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![due[3].id]
    );
    // Marking again, with an unknown id and none at all, changes nothing.
    store
        .mark_outbox_delivered_many(&[first[0], 999_999], NOW.plus_secs(2))
        .await
        .expect("again");
    store
        .mark_outbox_delivered_many(&[], NOW)
        .await
        .expect("empty");
    assert_eq!(store.due_outbox(NOW, 50).await.expect("due").len(), 1);
}

/// A batch of processed events is recorded in one call, each once: an id
/// seen before (or twice in the batch) is a duplicate and the rest are new.
async fn events_are_recorded_in_one_batch(store: DynStore) {
    let event = |outcome| ProcessedEvent {
        id: fixtures::event_id(),
        author: key(9),
        kind: 31510,
        created_at: NOW,
        received_at: NOW,
        outcome,
    };
    let seen = event(Some(ErrorCode::RateLimited));
    assert_eq!(store.record_event(&seen).await.expect("one"), Recorded::New);
    let (a, b) = (
        event(Some(ErrorCode::RateLimited)),
        event(Some(ErrorCode::RateLimited)),
    );
    let got = store
        .record_events(&[a.clone(), seen.clone(), b.clone(), a.clone()])
        .await
        .expect("batch");
    assert_eq!(
        got,
        vec![
            Recorded::New,
            Recorded::Duplicate,
            Recorded::New,
            Recorded::Duplicate
        ]
    );
    for e in [&a, &b] {
        let stored = store
            .processed_event(&e.id)
            .await
            .expect("get")
            .expect("recorded");
        assert_eq!(stored.outcome, Some(ErrorCode::RateLimited));
    }
    assert!(store.record_events(&[]).await.expect("empty").is_empty());
}

macro_rules! on_both {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, db) = super::store(ark_relay_store::Backend::Sqlite).await;
                    super::$test(store).await;
                    db.destroy().await;
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, db) = super::store(ark_relay_store::Backend::MariaDb).await;
                    super::$test(store).await;
                    db.destroy().await;
                }
            )*
        }
    };
}

on_both!(
    a_session_write_finishes_its_job,
    a_session_write_commits_its_ledger_change,
    delivered_marks_are_written_together,
    events_are_recorded_in_one_batch,
);
