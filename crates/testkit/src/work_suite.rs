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
