//! Scheduler leadership and graceful stop, with real processes and real
//! MariaDB + Redis:
//!
//! - two `ark-relay scheduler` processes elect one leader; the leader's
//!   heartbeat (a periodic task that publishes its fencing token on Redis)
//!   is the only one; SIGKILL the leader and the other takes over within the
//!   lease's expiry, with a greater token, and the two leaders' ticks never
//!   overlap in time; SIGTERM a leader and its lease is released at once;
//! - a worker stopped while a job is in hand hands it back: another worker
//!   takes it at once instead of after the queue's reclaim time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // figures go to stderr

mod common;
mod roles;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_core::{DynStore, Job, JobQueue, LeaderLock, QueueConfig, SystemClock};
use ark_relay_engine::handlers::{HandlerError, JobHandler, JobOutcome};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_queue::{RedisBus, RedisLeaderLock, RedisQueue};
use ark_relay_store::testing::TestDb;
use roles::{redis_url, Cluster};
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone)]
struct Beat {
    holder: String,
    token: u64,
    at_ms: u64,
    seen: Instant,
}

/// Collects heartbeats from the `scheduler` channel.
async fn listen(prefix: &str) -> mpsc::UnboundedReceiver<Beat> {
    let bus = RedisBus::connect(&redis_url(), prefix).await.unwrap();
    let mut sub = bus.subscribe("scheduler").await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _bus = bus;
        while let Some(msg) = sub.recv().await {
            let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
            let beat = Beat {
                holder: v["holder"].as_str().unwrap().to_owned(),
                token: v["token"].as_u64().unwrap(),
                at_ms: v["at_ms"].as_u64().unwrap(),
                seen: Instant::now(),
            };
            if tx.send(beat).is_err() {
                return;
            }
        }
    });
    rx
}

/// Receives beats until one from `holder` arrives (all of them are kept).
async fn until_beat_of(
    rx: &mut mpsc::UnboundedReceiver<Beat>,
    all: &mut Vec<Beat>,
    holder: &str,
    limit: Duration,
) -> Beat {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let beat = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no heartbeat of {holder} within {limit:?}; got {all:?}"))
            .expect("heartbeat channel open");
        all.push(beat.clone());
        if beat.holder == holder {
            return beat;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_ticks_never_overlap() {
    let ttl = Duration::from_millis(1500);
    let cluster = Cluster::start(
        TestDb::mariadb().await.expect("MariaDB"),
        true,
        &["leader_ttl_ms = 1500"],
    )
    .await;
    let mut beats = listen(&cluster.prefix).await;
    let mut all = Vec::new();

    let mut a = cluster.spawn("scheduler", &[]);
    let a_holder = a.wait_ready().await["scheduler_holder"]
        .as_str()
        .unwrap()
        .to_owned();
    until_beat_of(&mut beats, &mut all, &a_holder, Duration::from_secs(20)).await;
    let mut b = cluster.spawn("scheduler", &[]);
    let b_holder = b.wait_ready().await["scheduler_holder"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(a_holder, b_holder);
    // B is up and following: for a while every beat is still A's.
    let follow_until = tokio::time::Instant::now() + Duration::from_millis(1200);
    while let Ok(Some(beat)) = tokio::time::timeout_at(follow_until, beats.recv()).await {
        all.push(beat);
    }
    assert!(
        all.iter().all(|b| b.holder == a_holder),
        "only the leader ticks: {all:?}"
    );

    // SIGKILL the leader: its lease is not released, it expires.
    let killed_at = Instant::now();
    a.kill().await;
    let first_b = until_beat_of(&mut beats, &mut all, &b_holder, Duration::from_secs(20)).await;
    let takeover = first_b.seen.duration_since(killed_at);
    // Within the lease (plus one retry step of ttl/3 and a heartbeat's publish).
    assert!(
        takeover <= ttl + ttl / 3 + Duration::from_millis(700),
        "B took over after {takeover:?} (lease {ttl:?})"
    );
    let a_token = all.iter().find(|x| x.holder == a_holder).unwrap().token;
    assert!(
        first_b.token > a_token,
        "the new lease has a greater fencing token"
    );
    for beat in &all {
        let want = if beat.holder == a_holder {
            a_token
        } else {
            first_b.token
        };
        assert_eq!(beat.token, want, "one token per leadership: {beat:?}");
    }
    let last_a = all
        .iter()
        .filter(|x| x.holder == a_holder)
        .map(|x| x.at_ms)
        .max()
        .unwrap();
    let first_b_at = all
        .iter()
        .filter(|x| x.holder == b_holder)
        .map(|x| x.at_ms)
        .min()
        .unwrap();
    assert!(last_a < first_b_at, "the two leaders' ticks do not overlap");

    // A graceful stop releases the lease: C takes over well within the ttl.
    let mut c = cluster.spawn("scheduler", &[]);
    let c_holder = c.wait_ready().await["scheduler_holder"]
        .as_str()
        .unwrap()
        .to_owned();
    let stopped_at = Instant::now();
    let status = b.terminate().await;
    assert!(
        status.success(),
        "scheduler B exits 0 on SIGTERM\n{}",
        b.logs()
    );
    assert!(
        b.logs().contains("scheduler leadership released"),
        "{}",
        b.logs()
    );
    let first_c = until_beat_of(&mut beats, &mut all, &c_holder, Duration::from_secs(20)).await;
    let handover = first_c.seen.duration_since(stopped_at);
    assert!(first_c.token > first_b.token);
    assert!(
        handover < ttl,
        "a released lease is taken at once, not after expiry: {handover:?}"
    );
    eprintln!(
        "failover: SIGKILL takeover {takeover:?}, SIGTERM handover {handover:?} (lease {ttl:?})"
    );
    let last_b = all
        .iter()
        .filter(|x| x.holder == b_holder)
        .map(|x| x.at_ms)
        .max()
        .unwrap();
    assert!(last_b < first_c.at_ms, "B's and C's ticks do not overlap");

    assert!(c.terminate().await.success());
    let lock = RedisLeaderLock::connect(&redis_url(), &cluster.prefix, "scheduler", ttl)
        .await
        .unwrap();
    assert_eq!(
        lock.holder().await.unwrap(),
        None,
        "the last leader released"
    );
    cluster.destroy().await;
}

/// A handler whose first delivery of a job never finishes (a stuck back end)
/// and whose later deliveries complete at once.
struct StuckOnce {
    started: mpsc::UnboundedSender<(String, u32)>,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl JobHandler for StuckOnce {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let _ = self.started.send((job.key.clone(), attempts));
        if attempts == 1 {
            std::future::pending::<()>().await;
        }
        Ok(JobOutcome::default())
    }
}

async fn worker_engine(
    store: &DynStore,
    nostr_url: &str,
    prefix: &str,
    name: &str,
    handler: Arc<StuckOnce>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let keys = nostr::Keys::generate();
    let relay_pk = ark_relay_protocol::pubkey_from_nostr(&keys.public_key()).unwrap();
    let queue = RedisQueue::connect(
        &redis_url(),
        prefix,
        QueueConfig {
            // Far longer than the test: only a hand-back can move the job.
            reclaim_after: Duration::from_secs(120),
            max_attempts: 5,
        },
    )
    .await
    .unwrap();
    let transport =
        PoolTransport::connect(keys.public_key(), PoolOptions::new(vec![nostr_url.into()]))
            .await
            .unwrap();
    let parts = EngineParts {
        store: store.clone(),
        queue: Arc::new(queue),
        bus: None,
        transport: Arc::new(transport),
        keys,
        policy: IntentPolicy::new(relay_pk),
        clock: Arc::new(SystemClock),
        handler,
        periodic: vec![],
    };
    let engine = Engine::new(
        parts,
        EngineConfig {
            workers: 1,
            consumer_prefix: name.to_owned(),
            ..Default::default()
        },
        Roles::WORKER,
    )
    .with_grace(Duration::from_millis(300));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move { engine.run(stop_rx).await.unwrap() });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_hands_its_job_back_at_once() {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = DevRelay::start(DevRelayOptions::default()).await.unwrap();
    let prefix = format!("ark-relay-test-{}", common::unique_suffix());
    let (tx_a, mut started_a) = mpsc::unbounded_channel();
    let (tx_b, mut started_b) = mpsc::unbounded_channel();
    let a = Arc::new(StuckOnce {
        started: tx_a,
        calls: AtomicU32::new(0),
    });
    let b = Arc::new(StuckOnce {
        started: tx_b,
        calls: AtomicU32::new(0),
    });
    let (stop_a, task_a) = worker_engine(&store, nostr.url(), &prefix, "a", a.clone()).await;
    let job = Job {
        key: "handed-back".into(),
        kind: "test".into(),
        payload: "{}".into(),
    };
    let queue = RedisQueue::connect(&redis_url(), &prefix, QueueConfig::default())
        .await
        .unwrap();
    queue.push(&job).await.unwrap();
    let (key, attempts) = tokio::time::timeout(Duration::from_secs(10), started_a.recv())
        .await
        .expect("worker A takes the job")
        .unwrap();
    assert_eq!((key.as_str(), attempts), ("handed-back", 1));

    // B starts; A stops with the job stuck in hand.
    let (stop_b, task_b) = worker_engine(&store, nostr.url(), &prefix, "b", b.clone()).await;
    let stopped = Instant::now();
    stop_a.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task_a)
        .await
        .expect("A stops within its grace period")
        .unwrap();
    let (key, attempts) = tokio::time::timeout(Duration::from_secs(10), started_b.recv())
        .await
        .expect("B gets the handed-back job long before the 120 s reclaim")
        .unwrap();
    let moved = stopped.elapsed();
    assert_eq!((key.as_str(), attempts), ("handed-back", 2), "a redelivery");
    assert!(
        moved < Duration::from_secs(5),
        "handed back after {moved:?}"
    );
    // B finishes it: the stream is empty, nothing dead-lettered.
    roles::eventually("the job to be acked", Duration::from_secs(10), || async {
        (queue.depth().await.unwrap() == 0).then_some(())
    })
    .await;
    assert!(queue.dead_letters().await.unwrap().is_empty());
    assert_eq!(a.calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.calls.load(Ordering::SeqCst), 1);

    stop_b.send(true).unwrap();
    task_b.await.unwrap();
    nostr.shutdown();
    db.destroy().await;
}

/// A periodic task whose tick never ends on its own; it reports when a tick
/// starts (with its fencing token) and when one is cancelled.
struct Endless {
    started: mpsc::UnboundedSender<u64>,
    cancelled: mpsc::UnboundedSender<u64>,
}

struct OnDrop(Option<(mpsc::UnboundedSender<u64>, u64)>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some((tx, token)) = self.0.take() {
            let _ = tx.send(token);
        }
    }
}

#[async_trait::async_trait]
impl ark_relay_engine::Periodic for Endless {
    fn name(&self) -> &'static str {
        "endless"
    }
    fn every(&self) -> Duration {
        Duration::from_millis(50)
    }
    async fn tick(&self) {}
    async fn tick_fenced(&self, fence: &ark_relay_engine::Fence) {
        let _guard = OnDrop(Some((self.cancelled.clone(), fence.token())));
        let _ = self.started.send(fence.token());
        std::future::pending::<()>().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_cancels_the_running_tick_at_once() {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = DevRelay::start(DevRelayOptions::default()).await.unwrap();
    let ttl = Duration::from_millis(600);
    let lock = ark_relay_queue::MemoryLeaderLock::new(ttl);
    let keys = nostr::Keys::generate();
    let relay_pk = ark_relay_protocol::pubkey_from_nostr(&keys.public_key()).unwrap();
    let transport = PoolTransport::connect(
        keys.public_key(),
        PoolOptions::new(vec![nostr.url().into()]),
    )
    .await
    .unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (cancelled_tx, mut cancelled) = mpsc::unbounded_channel();
    let parts = EngineParts {
        store: store.clone(),
        queue: Arc::new(ark_relay_queue::MemoryQueue::default()),
        bus: None,
        transport: Arc::new(transport),
        keys,
        policy: IntentPolicy::new(relay_pk),
        clock: Arc::new(SystemClock),
        handler: Arc::new(StuckOnce {
            started: mpsc::unbounded_channel().0,
            calls: AtomicU32::new(0),
        }),
        periodic: vec![Arc::new(Endless {
            started: started_tx,
            cancelled: cancelled_tx,
        })],
    };
    let mut engine = Engine::new(parts, EngineConfig::default(), Roles::SCHEDULER)
        .with_leader(Arc::new(lock.clone()))
        .with_grace(Duration::from_millis(200));
    let mut leadership = engine.leadership();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move { engine.run(stop_rx).await.unwrap() });

    let token = tokio::time::timeout(Duration::from_secs(5), started.recv())
        .await
        .expect("the leader ticks")
        .unwrap();
    let lease = leadership.borrow_and_update().clone().expect("leading");
    assert_eq!(lease.token, token, "the tick runs under the lease's token");

    // Someone else takes the lease (as after a pause longer than the ttl).
    lock.release(&lease).await.unwrap();
    let thief = lock.acquire("thief").await.unwrap().unwrap();
    let taken = Instant::now();
    let gone = tokio::time::timeout(Duration::from_secs(5), cancelled.recv())
        .await
        .expect("the running tick is cancelled")
        .unwrap();
    assert_eq!(gone, token);
    let after = taken.elapsed();
    assert!(
        after < ttl,
        "cancelled {after:?} after the lease was lost (ttl {ttl:?})"
    );
    tokio::time::timeout(Duration::from_secs(2), leadership.wait_for(|l| l.is_none()))
        .await
        .expect("leadership reported lost")
        .unwrap();
    // It follows now; once the thief lets go it leads again, with a new token.
    lock.release(&thief).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(5), started.recv())
        .await
        .expect("leads again")
        .unwrap();
    assert!(again > thief.token);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(lock.holder().await.unwrap(), None, "released on stop");
    nostr.shutdown();
    db.destroy().await;
}

#[test]
fn every_role_command_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    for (role, words) in [
        ("run", "every role"),
        ("ingest", "ingest role"),
        ("worker", "worker role"),
        ("scheduler", "leader"),
    ] {
        let mut cmd = common::command(dir.path());
        cmd.args([role, "--help"]);
        let out = common::run(cmd);
        assert!(out.status.success(), "{role} --help: {}", out.stderr);
        assert!(out.stdout.contains(words), "{role} --help:\n{}", out.stdout);
        assert!(
            out.stdout.contains("Examples:"),
            "{role} --help:\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("--ready-file"),
            "{role} --help:\n{}",
            out.stdout
        );
    }
    // Without an Ark server configured, `run` says so instead of starting.
    let mut cmd = common::command(dir.path());
    cmd.args(["run", "--no-http"]);
    let out = common::run(cmd);
    assert!(!out.status.success());
    assert!(out.stderr.contains("[ark] url"), "{}", out.stderr);
}
