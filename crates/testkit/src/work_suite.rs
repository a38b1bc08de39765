//! Conformance tests of the store's ingest, job and outbox operations.
//! Re-exported through [`crate::store_suite`].

use ark_relay_core::{
    DynStore, ErrorCode, Job, JobStatus, NewOutboxEvent, ProcessedEvent, Recorded, UnixTime,
};

use crate::fixtures::{self, key};

const NOW: UnixTime = UnixTime(1_700_000_000);

fn event(outcome: Option<ErrorCode>) -> ProcessedEvent {
    ProcessedEvent {
        id: fixtures::event_id(),
        author: key(1),
        kind: 31510,
        created_at: NOW,
        received_at: NOW,
        outcome,
    }
}

fn job(key: &str) -> Job {
    Job {
        key: key.to_owned(),
        kind: "intent".into(),
        payload: "{}".into(),
    }
}

fn notice(key: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        dedupe_key: key.to_owned(),
        kind: 31341,
        recipient: Some(fixtures::key(1)),
        event_json: format!(r#"{{"id":"{key}"}}"#),
    }
}

/// An accepted event writes its event, intent and job once; a replayed action
/// writes nothing; a rejected event queues exactly one notice.
pub async fn events_are_accepted_or_rejected_once(store: DynStore) {
    let alice = key(1);
    let intent = fixtures::intent(alice, "act-1");
    let ev = ProcessedEvent {
        id: intent.event_id,
        ..event(None)
    };
    let j = job(&intent.event_id.to_string());
    assert_eq!(
        store
            .accept_event(&ev, Some(&intent), &j, NOW)
            .await
            .expect("accept"),
        Recorded::New
    );
    assert_eq!(
        store
            .accept_event(&ev, Some(&intent), &j, NOW)
            .await
            .expect("again"),
        Recorded::Duplicate
    );
    assert_eq!(
        store.job(&j.key).await.expect("job").map(|r| r.status),
        Some(JobStatus::Pending)
    );
    assert_eq!(
        store
            .intent_by_action(&alice, &intent.action_id)
            .await
            .expect("i"),
        Some(intent.clone())
    );

    let replay = fixtures::intent(alice, "act-1");
    let replay_ev = ProcessedEvent {
        id: replay.event_id,
        ..event(None)
    };
    let r = store
        .accept_event(
            &replay_ev,
            Some(&replay),
            &job(&replay.event_id.to_string()),
            NOW,
        )
        .await
        .expect("replay");
    assert_eq!(
        r,
        Recorded::ReplayedAction {
            original: intent.event_id
        }
    );
    assert!(
        store
            .processed_event(&replay.event_id)
            .await
            .expect("p")
            .is_none(),
        "nothing written"
    );
    assert!(store
        .job(&replay.event_id.to_string())
        .await
        .expect("job")
        .is_none());

    let rejected = ProcessedEvent {
        id: replay.event_id,
        ..event(Some(ErrorCode::ReplayedAction))
    };
    let n = notice(&format!("31341:{}", replay.event_id));
    assert_eq!(
        store
            .reject_event(&rejected, &n, NOW)
            .await
            .expect("reject"),
        Recorded::New
    );
    assert_eq!(
        store.reject_event(&rejected, &n, NOW).await.expect("again"),
        Recorded::Duplicate
    );
    let due = store.due_outbox(NOW, 10).await.expect("due");
    assert_eq!(due.len(), 1, "one notice per rejected event");
    assert_eq!(due[0].dedupe_key, n.dedupe_key);
    assert_eq!(due[0].event_json, n.event_json);
    let seen = store
        .processed_event(&replay.event_id)
        .await
        .expect("p")
        .expect("recorded");
    assert_eq!(seen.outcome, Some(ErrorCode::ReplayedAction));

    // A non-intent event (a service request) is accepted with its job only.
    let req = event(None);
    let rj = job(&req.id.to_string());
    assert_eq!(
        store.accept_event(&req, None, &rj, NOW).await.expect("req"),
        Recorded::New
    );
    assert_eq!(store.last_processed_at().await.expect("last"), Some(NOW));
}

/// A job finishes once; its outbound events are queued with it, once.
pub async fn jobs_finish_once_with_their_outbox(store: DynStore) {
    let first = event(None);
    let j = job("job-1");
    store
        .accept_event(&first, None, &j, NOW)
        .await
        .expect("accept");
    let later = ProcessedEvent {
        id: fixtures::event_id(),
        ..event(None)
    };
    store
        .accept_event(&later, None, &job("job-2"), NOW.plus_secs(100))
        .await
        .expect("accept");

    let pending = store
        .pending_jobs(NOW.plus_secs(10), 10)
        .await
        .expect("pending");
    assert_eq!(
        pending,
        vec![j.clone()],
        "only jobs created before the cut-off"
    );
    let out = [notice("31340:tx"), notice("31341:x")];
    assert!(store
        .finish_job("job-1", JobStatus::Done, &out, None, NOW)
        .await
        .expect("finish"));
    assert!(!store
        .finish_job("job-1", JobStatus::Done, &out, None, NOW)
        .await
        .expect("again"));
    assert_eq!(store.due_outbox(NOW, 10).await.expect("due").len(), 2);
    let rec = store.job("job-1").await.expect("job").expect("exists");
    assert_eq!((rec.status, rec.attempts), (JobStatus::Done, 1));
    assert!(store
        .pending_jobs(NOW.plus_secs(1_000), 10)
        .await
        .expect("p")
        .iter()
        .all(|j| j.key == "job-2"));

    assert!(store
        .finish_job("job-2", JobStatus::Dead, &[], Some("boom"), NOW)
        .await
        .expect("dead"));
    let rec = store.job("job-2").await.expect("job").expect("exists");
    assert_eq!(
        (rec.status, rec.last_error.as_deref()),
        (JobStatus::Dead, Some("boom"))
    );
    assert!(store.job("nope").await.expect("job").is_none());
}

/// Outbox rows are due until delivered; retries wait for their time.
pub async fn outbox_delivers_and_retries(store: DynStore) {
    store
        .push_outbox(&[notice("a"), notice("b"), notice("a")], NOW)
        .await
        .expect("push");
    let due = store.due_outbox(NOW, 10).await.expect("due");
    assert_eq!(
        due.iter()
            .map(|d| d.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    store
        .mark_outbox_delivered(due[0].id, NOW)
        .await
        .expect("delivered");
    store
        .mark_outbox_retry(due[1].id, NOW.plus_secs(30), "no relay answered")
        .await
        .expect("retry");
    assert!(store
        .due_outbox(NOW.plus_secs(29), 10)
        .await
        .expect("due")
        .is_empty());
    let again = store.due_outbox(NOW.plus_secs(30), 10).await.expect("due");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].dedupe_key.as_str(), again[0].attempts), ("b", 1));
    store
        .push_outbox(&[notice("a")], NOW)
        .await
        .expect("re-push delivered key");
    assert_eq!(
        store
            .due_outbox(NOW.plus_secs(30), 10)
            .await
            .expect("due")
            .len(),
        1
    );
}

fn session_record(now: UnixTime) -> ark_relay_core::SessionRecord {
    let intent = fixtures::event_id();
    ark_relay_core::SessionRecord {
        id: intent.into(),
        user: key(1),
        intent,
        status: ark_relay_core::SessionStatus::Pending,
        state: "intent_received".into(),
        current_step: None,
        steps_completed: vec![],
        created_at: now,
        updated_at: now,
        expires_at: now.plus_secs(900),
        step_deadline: None,
        error_code: None,
        error_message: None,
        data: r#"{"plan":1}"#.into(),
        batch_id: None,
        ark_txid: None,
        version: 0,
    }
}

/// Sessions are created once, read back whole, updated only from the version
/// read (with their outbox, atomically), and found when due.
pub async fn sessions_update_optimistically(store: DynStore) {
    let s = session_record(NOW);
    assert_eq!(
        store.create_session(&s).await.expect("create"),
        Recorded::New
    );
    assert_eq!(
        store.create_session(&s).await.expect("again"),
        Recorded::Duplicate
    );
    assert_eq!(store.session(&s.id).await.expect("get"), Some(s.clone()));

    let mut next = s.clone();
    next.status = ark_relay_core::SessionStatus::Active;
    next.state = "ark_tx_prepared".into();
    next.current_step = Some("sign_ark_tx".into());
    next.steps_completed = vec!["intent_received".into()];
    next.step_deadline = Some(NOW.plus_secs(60));
    next.ark_txid = Some(fixtures::txid());
    let challenge = notice(&format!("31511:{}:1", s.id));
    assert!(store
        .update_session(&next, std::slice::from_ref(&challenge), NOW.plus_secs(1))
        .await
        .expect("update"));
    assert!(
        !store
            .update_session(&next, &[], NOW.plus_secs(2))
            .await
            .expect("stale"),
        "a second writer holding the old version loses"
    );
    let got = store.session(&s.id).await.expect("get").expect("exists");
    assert_eq!(got.version, 1);
    assert_eq!(
        (got.state.as_str(), got.step_deadline),
        ("ark_tx_prepared", Some(NOW.plus_secs(60)))
    );
    assert_eq!(got.steps_completed, next.steps_completed);
    assert_eq!(got.ark_txid, next.ark_txid);
    assert_eq!(got.updated_at, NOW.plus_secs(1));
    let due = store
        .due_outbox(NOW.plus_secs(1), 10)
        .await
        .expect("outbox");
    assert_eq!(
        due.iter()
            .filter(|o| o.dedupe_key == challenge.dedupe_key)
            .count(),
        1
    );

    assert!(store
        .due_sessions(NOW.plus_secs(59), 10)
        .await
        .expect("due")
        .is_empty());
    let due = store
        .due_sessions(NOW.plus_secs(60), 10)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![s.id]);

    let mut failed = got.clone();
    failed.status = ark_relay_core::SessionStatus::Failed;
    failed.error_code = Some(ErrorCode::SessionExpired);
    failed.error_message = Some("no answer".into());
    assert!(store
        .update_session(&failed, &[], NOW.plus_secs(61))
        .await
        .expect("fail"));
    assert!(
        store
            .due_sessions(NOW.plus_secs(1_000), 10)
            .await
            .expect("due")
            .is_empty(),
        "final sessions are never due"
    );
    let got = store.session(&s.id).await.expect("get").expect("exists");
    assert_eq!(
        (got.error_code, got.version),
        (Some(ErrorCode::SessionExpired), 2)
    );
}

/// A ceremony transition is one write: the session (version-checked), its
/// party sessions, its outbox and the release of its locks land together or
/// not at all — so a failed session can never keep its locks.
pub async fn session_writes_are_atomic_with_their_locks(store: DynStore) {
    let owner = key(41);
    let mut coordinator = session_record(NOW);
    coordinator.user = owner;
    let intent = fixtures::intent(owner, "0b7a3f0e-52c4-4c1e-9d43-7d3c2b1a0f99");
    store.record_intent(&intent).await.expect("intent");
    assert_eq!(
        store.intent_status(&intent.event_id).await.expect("status"),
        Some(ark_relay_core::SessionStatus::Pending),
        "an accepted intent starts as received"
    );
    let mut party = session_record(NOW);
    party.id = fixtures::session();
    party.intent = intent.event_id;
    party.batch_id = Some(coordinator.id.to_string());
    for s in [&coordinator, &party] {
        assert_eq!(
            store.create_session(s).await.expect("create"),
            Recorded::New
        );
    }
    let input = fixtures::vtxo(owner, 1_000, None);
    store
        .insert_vtxos(std::slice::from_ref(&input), NOW)
        .await
        .expect("insert");
    store
        .lock_vtxos(&[input.id], &coordinator.id, NOW)
        .await
        .expect("lock");

    let mut failed = coordinator.clone();
    failed.status = ark_relay_core::SessionStatus::Failed;
    failed.state = "failed".into();
    failed.error_code = Some(ErrorCode::SigningRefused);
    let mut party_failed = party.clone();
    party_failed.status = ark_relay_core::SessionStatus::Failed;
    party_failed.state = "failed".into();
    let notice = notice(&format!("31341:{}", coordinator.intent));

    // A stale writer changes nothing at all: not the party, not the locks.
    let mut stale = failed.clone();
    stale.version = 7;
    let mirrors = std::slice::from_ref(&party_failed);
    let outbox = std::slice::from_ref(&notice);
    let write = |session| ark_relay_core::SessionWrite {
        session,
        mirrors,
        outbox,
        release_locks: true,
        ledger: None,
        finish_job: None,
    };
    assert!(!store
        .write_session(&write(&stale), NOW.plus_secs(1))
        .await
        .expect("stale write"));
    let held = store.vtxo(&input.id).await.expect("get").expect("exists");
    assert_eq!(held.locked_by, Some(coordinator.id), "still locked");
    assert_eq!(
        store
            .session(&party.id)
            .await
            .expect("get")
            .map(|p| p.state),
        Some(party.state.clone())
    );

    assert!(store
        .write_session(&write(&failed), NOW.plus_secs(1))
        .await
        .expect("write"));
    let freed = store.vtxo(&input.id).await.expect("get").expect("exists");
    assert_eq!(freed.locked_by, None, "released in the same transaction");
    let got = store
        .session(&coordinator.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((got.state.as_str(), got.version), ("failed", 1));
    let p = store
        .session(&party.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        p.status,
        ark_relay_core::SessionStatus::Failed,
        "the party follows"
    );
    assert_eq!(
        store.intent_status(&intent.event_id).await.expect("status"),
        Some(ark_relay_core::SessionStatus::Failed),
        "and so does its intent"
    );
    assert_eq!(
        store
            .intent_status(&fixtures::event_id())
            .await
            .expect("none"),
        None
    );
    let due = store
        .due_outbox(NOW.plus_secs(1), 50)
        .await
        .expect("outbox");
    assert_eq!(
        due.iter()
            .filter(|o| o.dedupe_key == notice.dedupe_key)
            .count(),
        1
    );
}
