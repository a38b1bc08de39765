//! The conformance suite of the round ports: `RoundStore` (the round job
//! queue and the persisted participation saga) and `RenewalStore` (users'
//! delegations). Every function takes fresh, empty, migrated stores and
//! panics on a breach. Instantiate it for a back end with
//! [`crate::round_store_conformance!`].

use std::future::Future;
use std::pin::Pin;

use ark_relay_core::renewals::{DelegationRecord, DelegationStatus as D, DynRenewalStore};
use ark_relay_core::rounds::{
    DynRoundStore, ParticipationRecord, RoundEnd, RoundJobRecord, RoundJobStatus as J,
};
use ark_relay_core::UnixTime;

/// The round stores under test and how to tear them down.
pub struct RoundsHarness {
    /// The job queue and sagas.
    pub rounds: DynRoundStore,
    /// The delegations.
    pub renewals: DynRenewalStore,
    teardown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl RoundsHarness {
    /// A harness whose `teardown` future runs after the test.
    pub fn new(
        rounds: DynRoundStore,
        renewals: DynRenewalStore,
        teardown: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            rounds,
            renewals,
            teardown: Box::pin(teardown),
        }
    }

    /// Runs the teardown.
    pub async fn teardown(self) {
        self.teardown.await;
    }
}

/// Generates one `#[tokio::test]` per round conformance test, each on fresh
/// stores made by `$factory` (an `async fn() -> RoundsHarness`).
#[macro_export]
macro_rules! round_store_conformance {
    ($factory:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let harness = $factory().await;
                $crate::rounds_suite::$test(&harness).await;
                harness.teardown().await;
            }
        )*
    };
    ($factory:path) => {
        $crate::round_store_conformance!($factory;
            round_jobs_queue_once_and_come_due_in_order,
            a_participation_takes_its_jobs_all_or_none,
            participations_save_optimistically_and_end_their_jobs,
            delegations_move_only_from_their_status,
        );
    };
}

fn job(id: &str, kind: &str, not_before: i64) -> RoundJobRecord {
    RoundJobRecord {
        job_id: id.into(),
        kind: kind.into(),
        status: J::Pending,
        data: format!("{{\"job\":\"{id}\"}}"),
        attempts: 0,
        participation: None,
        not_before: UnixTime(not_before),
        commitment_txid: None,
        error: None,
        created_at: UnixTime(10),
        updated_at: UnixTime(10),
    }
}

fn saga(id: &str) -> ParticipationRecord {
    ParticipationRecord {
        participation_id: id.into(),
        phase: "registering".into(),
        state: "{}".into(),
        version: 0,
        done: false,
        created_at: UnixTime(20),
        updated_at: UnixTime(20),
    }
}

fn ids(jobs: &[RoundJobRecord]) -> Vec<&str> {
    jobs.iter().map(|j| j.job_id.as_str()).collect()
}

/// A job is queued once (a second enqueue changes nothing), comes due from
/// its `not_before` on, oldest first, at most `limit`; `round_jobs_of`
/// lists a kind in a status, newest first.
pub async fn round_jobs_queue_once_and_come_due_in_order(h: &RoundsHarness) {
    let s = &h.rounds;
    assert!(s
        .enqueue_round_job(&job("a", "inventory_renew", 0))
        .await
        .unwrap());
    let mut again = job("a", "recovery", 5);
    again.data = "{}".into();
    assert!(!s.enqueue_round_job(&again).await.unwrap(), "once per id");
    let a = s.round_job("a").await.unwrap().unwrap();
    assert_eq!(
        (a.kind.as_str(), a.data.as_str(), a.status),
        ("inventory_renew", "{\"job\":\"a\"}", J::Pending),
        "the first enqueue stands"
    );
    assert!(s.round_job("missing").await.unwrap().is_none());
    for (id, kind, nb) in [
        ("b", "delegated_renewal", 100),
        ("c", "inventory_renew", 200),
        ("d", "inventory_renew", 50),
    ] {
        assert!(s.enqueue_round_job(&job(id, kind, nb)).await.unwrap());
    }
    assert_eq!(
        ids(&s.due_round_jobs(UnixTime(0), 10).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        ids(&s.due_round_jobs(UnixTime(100), 10).await.unwrap()),
        ["a", "b", "d"],
        "queued order, not_before respected"
    );
    assert_eq!(
        ids(&s.due_round_jobs(UnixTime(1_000), 2).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        ids(&s
            .round_jobs_of("inventory_renew", J::Pending, 10)
            .await
            .unwrap()),
        ["d", "c", "a"],
        "newest first"
    );
    assert!(s
        .round_jobs_of("inventory_renew", J::Done, 10)
        .await
        .unwrap()
        .is_empty());
}

/// `start_participation` takes every named job from `pending` to
/// `in_round` (naming the saga) or none: a job already in a round, or a
/// saga id in use, leaves everything as it was.
pub async fn a_participation_takes_its_jobs_all_or_none(h: &RoundsHarness) {
    let s = &h.rounds;
    for id in ["a", "b", "c"] {
        assert!(s
            .enqueue_round_job(&job(id, "inventory_renew", 0))
            .await
            .unwrap());
    }
    let (a, b, c) = ("a".to_owned(), "b".to_owned(), "c".to_owned());
    assert!(s
        .start_participation(&saga("p1"), &[a.clone(), b.clone()])
        .await
        .unwrap());
    let ja = s.round_job("a").await.unwrap().unwrap();
    assert_eq!(
        (ja.status, ja.participation.as_deref()),
        (J::InRound, Some("p1"))
    );
    assert_eq!(
        ids(&s.due_round_jobs(UnixTime(100), 10).await.unwrap()),
        ["c"],
        "jobs in a round are not due"
    );
    // c is free, a is taken: nothing moves, no saga is written.
    assert!(!s
        .start_participation(&saga("p2"), &[c.clone(), a.clone()])
        .await
        .unwrap());
    assert!(s.participation("p2").await.unwrap().is_none());
    let jc = s.round_job("c").await.unwrap().unwrap();
    assert_eq!((jc.status, jc.participation), (J::Pending, None));
    // A saga id in use: refused, c stays pending.
    assert!(!s
        .start_participation(&saga("p1"), std::slice::from_ref(&c))
        .await
        .unwrap());
    assert_eq!(s.round_job("c").await.unwrap().unwrap().status, J::Pending);
    let open = s.open_participations().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0], saga("p1"));
}

/// A saga is written only at its current version; finishing it ends its
/// jobs as told — finalized → `done` with the commitment txid, retry →
/// `pending` with one more attempt (or `failed` at the limit), requeue →
/// `pending` from a new `not_before` with no attempt counted, failed →
/// `failed` — and any job it did not name goes back to `pending`. A done
/// saga is not open and does not move.
pub async fn participations_save_optimistically_and_end_their_jobs(h: &RoundsHarness) {
    let s = &h.rounds;
    let names: Vec<String> = ["fin", "retry", "last", "requeue", "failed", "unnamed"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for id in &names {
        assert!(s
            .enqueue_round_job(&job(id, "inventory_renew", 0))
            .await
            .unwrap());
    }
    assert!(s.start_participation(&saga("p"), &names).await.unwrap());
    assert!(s
        .save_participation("p", 0, "registered", "{\"v\":1}", UnixTime(30))
        .await
        .unwrap());
    assert!(
        !s.save_participation("p", 0, "confirmed", "{}", UnixTime(31))
            .await
            .unwrap(),
        "stale version"
    );
    let p = s.participation("p").await.unwrap().unwrap();
    assert_eq!(
        (p.version, p.phase.as_str(), p.state.as_str(), p.done),
        (1, "registered", "{\"v\":1}", false)
    );
    let txid = "ab".repeat(32);
    let ends = vec![
        (
            "fin".to_owned(),
            RoundEnd::Finalized {
                commitment_txid: txid.clone(),
            },
        ),
        (
            "retry".to_owned(),
            RoundEnd::Retry {
                error: "round failed".into(),
                max_attempts: 3,
            },
        ),
        (
            "last".to_owned(),
            RoundEnd::Retry {
                error: "round failed".into(),
                max_attempts: 1,
            },
        ),
        (
            "requeue".to_owned(),
            RoundEnd::Requeue {
                error: "not taken".into(),
                not_before: UnixTime(500),
            },
        ),
        (
            "failed".to_owned(),
            RoundEnd::Failed {
                error: "INTENT_INSUFFICIENT_FEE".into(),
            },
        ),
    ];
    assert!(
        !s.finish_participation("p", 0, "finalized", "{}", &ends, UnixTime(40))
            .await
            .unwrap(),
        "stale version"
    );
    assert_eq!(
        s.round_job("fin").await.unwrap().unwrap().status,
        J::InRound,
        "a refused finish ends nothing"
    );
    assert!(s
        .finish_participation("p", 1, "finalized", "{\"end\":1}", &ends, UnixTime(40))
        .await
        .unwrap());
    let get = |id: &'static str| async move { s.round_job(id).await.unwrap().unwrap() };
    let fin = get("fin").await;
    assert_eq!(
        (fin.status, fin.commitment_txid.as_deref()),
        (J::Done, Some(txid.as_str()))
    );
    let retry = get("retry").await;
    assert_eq!(
        (retry.status, retry.attempts, retry.error.as_deref()),
        (J::Pending, 1, Some("round failed"))
    );
    assert_eq!(get("last").await.status, J::Failed, "out of attempts");
    let requeue = get("requeue").await;
    assert_eq!(
        (requeue.status, requeue.attempts, requeue.not_before),
        (J::Pending, 0, UnixTime(500))
    );
    let failed = get("failed").await;
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (J::Failed, Some("INTENT_INSUFFICIENT_FEE"))
    );
    assert_eq!(get("unnamed").await.status, J::Pending, "back to the queue");
    let p = s.participation("p").await.unwrap().unwrap();
    assert_eq!(
        (p.version, p.phase.as_str(), p.done),
        (2, "finalized", true)
    );
    assert!(s.open_participations().await.unwrap().is_empty());
    assert!(
        !s.save_participation("p", 2, "x", "{}", UnixTime(50))
            .await
            .unwrap(),
        "a done saga does not move"
    );
    assert!(!s
        .finish_participation("p", 2, "x", "{}", &[], UnixTime(50))
        .await
        .unwrap());
    assert_eq!(
        ids(&s
            .round_jobs_of("inventory_renew", J::Done, 10)
            .await
            .unwrap()),
        ["fin"]
    );
}

fn delegation(vtxo: &str, owner: &str, recovery: bool, created: i64) -> DelegationRecord {
    DelegationRecord {
        renewal_id: format!("{}:{vtxo}", if recovery { "recover" } else { "renew" }),
        vtxo: vtxo.into(),
        owner: owner.into(),
        recovery,
        status: D::Asked,
        challenge: r#"{"v":1}"#.into(),
        valid_at: UnixTime(900),
        vtxo_expires_at: UnixTime(1000),
        job_id: None,
        new_vtxo: None,
        reason: None,
        notified_at: None,
        created_at: UnixTime(created),
        updated_at: UnixTime(created),
    }
}

/// A delegation is inserted once per renewal id, found by VTXO, by owner
/// (newest first) and by status (oldest first), moves only from the status
/// it is in (keeping its job, new VTXO and reason), and is notified once.
pub async fn delegations_move_only_from_their_status(h: &RoundsHarness) {
    let s = &h.renewals;
    let a = delegation("aa:0", "alice", false, 10);
    let r = delegation("aa:0", "alice", true, 11);
    let b = delegation("bb:1", "bob", false, 12);
    for d in [&a, &r, &b] {
        assert!(s.insert_delegation(d).await.unwrap());
    }
    assert!(!s.insert_delegation(&a).await.unwrap(), "once per id");
    assert_eq!(s.delegation(&a.renewal_id).await.unwrap(), Some(a.clone()));
    assert!(s.delegation("renew:zz:9").await.unwrap().is_none());
    assert_eq!(s.delegations_of_vtxo("aa:0").await.unwrap().len(), 2);
    let alice = s.delegations_of_owner("alice", 10).await.unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|d| d.renewal_id.as_str())
            .collect::<Vec<_>>(),
        [r.renewal_id.as_str(), a.renewal_id.as_str()],
        "newest first"
    );
    assert_eq!(s.delegations_of_owner("alice", 1).await.unwrap().len(), 1);
    // Not from a status it is not in.
    assert!(!s
        .move_delegation(
            &a.renewal_id,
            D::Queued,
            D::Done,
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
            D::Asked,
            D::Queued,
            Some("renew:aa:0"),
            None,
            None,
            UnixTime(21)
        )
        .await
        .unwrap());
    assert!(s
        .move_delegation(
            &a.renewal_id,
            D::Queued,
            D::Done,
            None,
            Some("cc:0"),
            None,
            UnixTime(22)
        )
        .await
        .unwrap());
    let done = s.delegation(&a.renewal_id).await.unwrap().unwrap();
    assert_eq!(done.status, D::Done);
    assert_eq!(done.job_id.as_deref(), Some("renew:aa:0"), "job kept");
    assert_eq!(done.new_vtxo.as_deref(), Some("cc:0"));
    assert_eq!(done.updated_at, UnixTime(22));
    assert!(s
        .move_delegation(
            &b.renewal_id,
            D::Asked,
            D::Refused,
            None,
            None,
            Some("no thanks"),
            UnixTime(23)
        )
        .await
        .unwrap());
    assert_eq!(
        s.delegation(&b.renewal_id)
            .await
            .unwrap()
            .unwrap()
            .reason
            .as_deref(),
        Some("no thanks")
    );
    let asked = s.delegations_in(D::Asked, 10).await.unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].renewal_id, r.renewal_id);
    assert_eq!(s.delegations_in(D::Done, 10).await.unwrap().len(), 1);
    // One near-expiry notice.
    assert!(s.mark_notified(&b.renewal_id, UnixTime(30)).await.unwrap());
    assert!(!s.mark_notified(&b.renewal_id, UnixTime(31)).await.unwrap());
    assert_eq!(
        s.delegation(&b.renewal_id)
            .await
            .unwrap()
            .unwrap()
            .notified_at,
        Some(UnixTime(30))
    );
}
