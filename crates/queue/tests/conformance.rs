//! The `JobQueue` conformance suite, run against [`MemoryQueue`] (on tokio's
//! paused clock) and [`RedisQueue`] (on the real Redis at
//! `ARK_RELAY_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`, under a
//! unique key prefix per test that is deleted when the test ends), plus the
//! bus round trips and a few Redis-only cases.

#![allow(clippy::print_stderr)] // tests report their timings

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_core::{DynQueue, EventBus, Job, JobQueue, QueueConfig, QueueError};
use ark_relay_queue::{MemoryBus, MemoryQueue, RedisBus, RedisQueue};
use tokio::time::{timeout, Instant};

/// Every test finishes well within this, or fails.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Long enough that nothing is reclaimed during a test that does not want it.
const NO_RECLAIM: Duration = Duration::from_secs(60);
/// Short reclaim time for the tests about reclaim.
const RECLAIM: Duration = Duration::from_millis(300);

fn job(i: usize) -> Job {
    Job {
        key: format!("job-{i}"),
        kind: "intent".to_owned(),
        payload: format!(r#"{{"n":{i}}}"#),
    }
}

fn config(reclaim_after: Duration, max_attempts: u32) -> QueueConfig {
    QueueConfig {
        reclaim_after,
        max_attempts,
    }
}

/// Opens handles on one queue, as separate workers (processes) would.
trait Harness: Send + Sync + 'static {
    fn handle(&self) -> impl Future<Output = DynQueue> + Send;
}

struct MemoryHarness(MemoryQueue);

impl Harness for MemoryHarness {
    async fn handle(&self) -> DynQueue {
        Arc::new(self.0.clone())
    }
}

async fn memory(config: QueueConfig) -> MemoryHarness {
    MemoryHarness(MemoryQueue::new(config))
}

fn redis_url() -> String {
    std::env::var("ARK_RELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_prefix() -> String {
    format!("ark-relay-test:{}", uuid::Uuid::new_v4().simple())
}

/// Deletes every key under a prefix when dropped (also when the test panics).
struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

struct RedisHarness {
    url: String,
    prefix: String,
    config: QueueConfig,
    _cleanup: Cleanup,
}

impl RedisHarness {
    async fn open(&self) -> RedisQueue {
        RedisQueue::connect(&self.url, &self.prefix, self.config.clone())
            .await
            .expect("connecting to Redis (ARK_RELAY_TEST_REDIS_URL; scripts/test starts one)")
    }
}

impl Harness for RedisHarness {
    async fn handle(&self) -> DynQueue {
        Arc::new(self.open().await)
    }
}

async fn redis(config: QueueConfig) -> RedisHarness {
    let (url, prefix) = (redis_url(), unique_prefix());
    RedisHarness {
        _cleanup: Cleanup {
            url: url.clone(),
            prefix: prefix.clone(),
        },
        url,
        prefix,
        config,
    }
}

/// The suite: each function gets a constructor of harnesses (taking the
/// config the test needs) and panics on a breach of the contract.
mod suite {
    use super::*;

    /// Jobs come out in the order they went in, once each, and ack empties the queue.
    pub async fn push_pop_ack_fifo<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(NO_RECLAIM, 5)).await;
        let q = h.handle().await;
        for i in 0..5 {
            q.push(&job(i)).await.expect("push");
        }
        assert_eq!(q.depth().await.expect("depth"), 5);
        let mut deliveries = Vec::new();
        for i in 0..5 {
            let d = q
                .pop("c1", Duration::from_secs(1))
                .await
                .expect("pop")
                .expect("a job");
            assert_eq!(d.job, job(i), "FIFO order");
            assert_eq!(d.attempts, 1);
            deliveries.push(d);
        }
        let ids: HashSet<_> = deliveries.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids.len(), 5, "distinct delivery ids");
        assert_eq!(q.depth().await.expect("depth"), 5, "in flight counts");
        for d in &deliveries {
            q.ack(d).await.expect("ack");
        }
        // Acking twice is harmless.
        q.ack(&deliveries[0]).await.expect("second ack");
        assert_eq!(q.depth().await.expect("depth"), 0);
        assert!(q
            .pop("c1", Duration::from_millis(200))
            .await
            .expect("pop")
            .is_none());
        assert!(q.dead_letters().await.expect("dead").is_empty());
    }

    /// An empty pop waits its whole timeout (and not much longer), then returns None.
    pub async fn empty_pop_waits_then_none<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(NO_RECLAIM, 5)).await;
        let q = h.handle().await;
        for wait in [Duration::ZERO, Duration::from_millis(200)] {
            let start = Instant::now();
            assert!(q.pop("c1", wait).await.expect("pop").is_none());
            let took = start.elapsed();
            assert!(took >= wait, "returned after {took:?}, before {wait:?}");
            assert!(
                took < wait + Duration::from_millis(500),
                "returned after {took:?}, long after {wait:?}"
            );
        }
    }

    /// A waiting pop wakes as soon as a job is pushed, even through the same
    /// handle (a blocking read does not starve `push`).
    pub async fn pop_wakes_on_push<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(NO_RECLAIM, 5)).await;
        let q = h.handle().await;
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                let d = q.pop("c1", Duration::from_secs(10)).await;
                (d, Instant::now())
            })
        };
        // Give the consumer time to start waiting (the assertion holds either way).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pushed = Instant::now();
        timeout(Duration::from_secs(1), q.push(&job(1)))
            .await
            .expect("push is not starved by the blocked pop")
            .expect("push");
        let (d, got) = waiter.await.expect("join");
        let d = d.expect("pop").expect("a job");
        assert_eq!(d.job, job(1));
        let latency = got.duration_since(pushed);
        assert!(
            latency < Duration::from_secs(1),
            "woke {latency:?} after push"
        );
        q.ack(&d).await.expect("ack");
    }

    /// Consumer A takes a job and dies without acking; consumer B gets the
    /// same job after `reclaim_after` (attempts 2), acks it, and nobody gets
    /// it a third time.
    pub async fn killed_consumer_job_completed_once<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(RECLAIM, 5)).await;
        let producer = h.handle().await;
        producer.push(&job(7)).await.expect("push");

        let a = h.handle().await;
        let taken = Instant::now();
        let first = a
            .pop("consumer-a", Duration::from_secs(1))
            .await
            .expect("pop")
            .expect("a job");
        assert_eq!(first.job, job(7));
        assert_eq!(first.attempts, 1);
        drop(a); // killed mid-job: no ack

        let b = h.handle().await;
        let second = b
            .pop("consumer-b", Duration::from_secs(5))
            .await
            .expect("pop")
            .expect("the job, reclaimed");
        let after = taken.elapsed();
        assert_eq!(second.job, job(7));
        assert_eq!(second.attempts, 2);
        assert_eq!(second.id, first.id, "same queue entry");
        assert!(
            after >= RECLAIM,
            "reclaimed after {after:?} < reclaim_after"
        );
        b.ack(&second).await.expect("ack");

        // Never delivered a third time, to anyone.
        let c = h.handle().await;
        for (q, name) in [(&b, "consumer-b"), (&c, "consumer-c")] {
            assert!(
                q.pop(name, RECLAIM * 3).await.expect("pop").is_none(),
                "delivered a third time"
            );
        }
        assert_eq!(producer.depth().await.expect("depth"), 0);
        assert!(producer.dead_letters().await.expect("dead").is_empty());
    }

    /// A live consumer keeps its delivery with heartbeats (`renew`) for many
    /// times `reclaim_after`; once the heartbeats stop, another consumer gets
    /// it `reclaim_after` after the last one (not after the delivery), with
    /// attempts 2. After the ack there is nothing left to renew.
    pub async fn heartbeats_keep_a_delivery_until_they_stop<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(RECLAIM, 5)).await;
        let a = h.handle().await;
        let b = h.handle().await;
        a.push(&job(3)).await.expect("push");
        let held = a
            .pop("alive", Duration::from_secs(1))
            .await
            .expect("pop")
            .expect("job");
        let taken = Instant::now();
        let mut last_beat = Instant::now();
        while taken.elapsed() < RECLAIM * 5 {
            assert_eq!(a.renew(&held.job).await.expect("renew"), 1, "still held");
            last_beat = Instant::now();
            assert!(
                b.pop("other", RECLAIM / 4).await.expect("pop").is_none(),
                "a renewed delivery was reclaimed after {:?}",
                taken.elapsed()
            );
        }
        // The holder dies: no more heartbeats.
        let again = b
            .pop("other", Duration::from_secs(5))
            .await
            .expect("pop")
            .expect("reclaimed once the heartbeats stopped");
        let after = last_beat.elapsed();
        assert_eq!((again.job.clone(), again.attempts), (job(3), 2));
        assert!(
            after >= RECLAIM,
            "reclaimed {after:?} after the last heartbeat"
        );
        assert!(
            after < RECLAIM * 3,
            "reclaimed only {after:?} after the last heartbeat"
        );
        b.ack(&again).await.expect("ack");
        assert_eq!(b.renew(&again.job).await.expect("renew after ack"), 0);
        assert_eq!(a.depth().await.expect("depth"), 0);
    }

    /// A consumer that acks after its job was reclaimed completes the job: the
    /// new holder's ack is then a no-op and the job is not delivered again.
    pub async fn late_ack_completes_the_job<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(RECLAIM, 5)).await;
        let a = h.handle().await;
        let b = h.handle().await;
        a.push(&job(1)).await.expect("push");
        let slow = a
            .pop("slow", Duration::from_secs(1))
            .await
            .expect("pop")
            .expect("job");
        let again = b
            .pop("fast", Duration::from_secs(5))
            .await
            .expect("pop")
            .expect("reclaimed");
        assert_eq!((again.job.clone(), again.attempts), (job(1), 2));
        a.ack(&slow).await.expect("late ack");
        b.ack(&again).await.expect("ack after the late one");
        assert_eq!(a.depth().await.expect("depth"), 0);
        assert!(b.pop("fast", RECLAIM * 3).await.expect("pop").is_none());
    }

    /// Each redelivery counts an attempt; after `max_attempts` deliveries the
    /// job goes to the dead letters instead of out again.
    pub async fn dead_letter_after_max_attempts<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        let h = make(config(RECLAIM, 3)).await;
        let q = h.handle().await;
        q.push(&job(9)).await.expect("push");
        q.push(&job(10)).await.expect("push");
        let mut last = None;
        for attempt in 1..=3 {
            let d = q
                .pop("crashy", Duration::from_secs(5))
                .await
                .expect("pop")
                .expect("job 9 again");
            assert_eq!(d.job, job(9));
            assert_eq!(d.attempts, attempt);
            if attempt == 1 {
                // The healthy job is untouched by job 9's troubles.
                let ok = q
                    .pop("healthy", Duration::from_secs(1))
                    .await
                    .expect("pop")
                    .expect("job 10");
                assert_eq!(ok.job, job(10));
                q.ack(&ok).await.expect("ack");
            }
            last = Some(d);
        }
        assert!(
            q.pop("crashy", RECLAIM * 3).await.expect("pop").is_none(),
            "delivered past max_attempts"
        );
        assert_eq!(q.dead_letters().await.expect("dead"), vec![job(9)]);
        assert_eq!(q.depth().await.expect("depth"), 0);
        // A straggler's ack of a dead-lettered job is harmless.
        q.ack(&last.expect("delivered")).await.expect("ack");
        assert_eq!(q.dead_letters().await.expect("dead"), vec![job(9)]);
    }

    /// 4 consumers (two handles, two consumers on each) share 800 jobs pushed
    /// while they wait: every job is delivered to exactly one of them, once,
    /// and acked once.
    pub async fn concurrent_consumers_get_distinct_jobs<H: Harness, F: Future<Output = H>>(
        make: impl FnOnce(QueueConfig) -> F,
    ) {
        const CONSUMERS: usize = 4;
        const JOBS: usize = 800;
        let h = make(config(NO_RECLAIM, 5)).await;
        let handles = [h.handle().await, h.handle().await];
        let acked = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<(usize, String, u32)>>> = Arc::default();
        let mut tasks = Vec::new();
        for c in 0..CONSUMERS {
            let q = handles[c % 2].clone();
            let (acked, seen) = (acked.clone(), seen.clone());
            tasks.push(tokio::spawn(async move {
                let name = format!("consumer-{c}");
                while acked.load(Ordering::SeqCst) < JOBS {
                    let Some(d) = q.pop(&name, Duration::from_millis(100)).await.expect("pop")
                    else {
                        continue;
                    };
                    seen.lock()
                        .expect("lock")
                        .push((c, d.job.key.clone(), d.attempts));
                    tokio::task::yield_now().await; // the "work"
                    q.ack(&d).await.expect("ack");
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        let producer = h.handle().await;
        let start = Instant::now();
        for i in 0..JOBS {
            producer.push(&job(i)).await.expect("push");
        }
        for t in tasks {
            t.await.expect("consumer");
        }
        let took = start.elapsed();
        let seen = std::mem::take(&mut *seen.lock().expect("lock"));
        assert_eq!(seen.len(), JOBS, "deliveries");
        assert_eq!(acked.load(Ordering::SeqCst), JOBS, "acks");
        let keys: HashSet<&str> = seen.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), JOBS, "every job delivered exactly once");
        assert!(seen.iter().all(|(_, _, a)| *a == 1), "no redelivery");
        let mut per: BTreeMap<usize, usize> = BTreeMap::new();
        for (c, _, _) in &seen {
            *per.entry(*c).or_default() += 1;
        }
        assert_eq!(per.len(), CONSUMERS, "every consumer got work: {per:?}");
        assert_eq!(producer.depth().await.expect("depth"), 0);
        eprintln!("{JOBS} jobs through {CONSUMERS} consumers in {took:?} (per consumer {per:?})");
    }
}

macro_rules! conformance {
    ($backend:ident, $make:path, $attrs:tt) => {
        mod $backend {
            use super::*;
            conformance!(@tests $make, $attrs;
                push_pop_ack_fifo,
                empty_pop_waits_then_none,
                pop_wakes_on_push,
                killed_consumer_job_completed_once,
                late_ack_completes_the_job,
                heartbeats_keep_a_delivery_until_they_stop,
                dead_letter_after_max_attempts,
                concurrent_consumers_get_distinct_jobs,
            );
        }
    };
    (@tests $make:path, $attrs:tt; $($name:ident,)*) => {
        $(
            #[tokio::test $attrs]
            async fn $name() {
                timeout(TEST_TIMEOUT, suite::$name($make))
                    .await
                    .expect("test timed out");
            }
        )*
    };
}

conformance!(memory_queue, memory, (start_paused = true));
conformance!(
    redis_queue,
    redis,
    [flavor = "multi_thread", worker_threads = 2]
);

// ---- buses ----

#[tokio::test(start_paused = true)]
async fn memory_bus_round_trip() {
    let bus = MemoryBus::new();
    bus.publish("ingest", "nobody listens")
        .await
        .expect("publish");
    let mut a = bus.subscribe("ingest");
    let mut b = bus.subscribe("ingest");
    let mut other = bus.subscribe("other");
    bus.publish("other", "elsewhere").await.expect("publish");
    bus.publish("ingest", r#"{"event":"e1"}"#)
        .await
        .expect("publish");
    for rx in [&mut a, &mut b] {
        let got = timeout(Duration::from_secs(1), rx.recv())
            .await
            .expect("a message")
            .expect("open");
        assert_eq!(got, r#"{"event":"e1"}"#);
    }
    assert_eq!(other.recv().await.expect("open"), "elsewhere");
    let bus: Arc<dyn EventBus> = Arc::new(bus);
    bus.publish("ingest", "via the port")
        .await
        .expect("publish");
    assert_eq!(a.recv().await.expect("open"), "via the port");
}

#[tokio::test]
async fn redis_bus_round_trip() {
    let (url, prefix) = (redis_url(), unique_prefix());
    let observer = RedisBus::connect(&url, &prefix).await.expect("connect");
    let publisher: Arc<dyn EventBus> =
        Arc::new(RedisBus::connect(&url, &prefix).await.expect("connect"));
    let mut sub = observer.subscribe("ingest").await.expect("subscribe");
    // Same publisher connection, so order is kept: the first message this
    // subscription sees must be the second one published.
    let start = Instant::now();
    publisher
        .publish("other", "elsewhere")
        .await
        .expect("publish");
    publisher
        .publish("ingest", r#"{"event":"e1"}"#)
        .await
        .expect("publish");
    let got = timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("a message within 5 s")
        .expect("subscription open");
    assert_eq!(got, r#"{"event":"e1"}"#);
    eprintln!("redis bus round trip {:?}", start.elapsed());
    // Another deployment's prefix does not hear it.
    let stranger = RedisBus::connect(&url, &unique_prefix())
        .await
        .expect("connect");
    let mut deaf = stranger.subscribe("ingest").await.expect("subscribe");
    publisher
        .publish("ingest", "second")
        .await
        .expect("publish");
    assert_eq!(sub.recv().await.expect("open"), "second");
    assert!(timeout(Duration::from_millis(200), deaf.recv())
        .await
        .is_err());
}

// ---- Redis only ----

/// Redis losing the stream (FLUSHALL, a restart without persistence) costs
/// the jobs it held (the store still has them) but not the queue: the group
/// is recreated and later jobs flow.
#[tokio::test]
async fn redis_recovers_from_a_lost_stream() {
    let h = redis(config(NO_RECLAIM, 5)).await;
    let q = h.open().await;
    q.push(&job(1)).await.expect("push");
    let client = redis::Client::open(h.url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: i64 = redis::cmd("DEL")
        .arg(q.stream_key())
        .query_async(&mut conn)
        .await
        .expect("DEL");
    q.push(&job(2)).await.expect("push after the loss");
    let d = q
        .pop("c1", Duration::from_secs(2))
        .await
        .expect("pop recreates the group")
        .expect("the job pushed after the loss");
    assert_eq!(d.job, job(2));
    q.ack(&d).await.expect("ack");
    assert_eq!(q.depth().await.expect("depth"), 0);
}

/// A heartbeat of a consumer whose delivery another consumer has already
/// reclaimed renews nothing and does not take the entry back: the new holder
/// keeps it, and the old holder stops trying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_renew_never_takes_back_a_reclaimed_delivery() {
    let h = redis(config(RECLAIM, 5)).await;
    let (a, b) = (h.open().await, h.open().await);
    a.push(&job(4)).await.expect("push");
    let slow = a
        .pop("slow", Duration::from_secs(1))
        .await
        .expect("pop")
        .expect("job");
    let again = b
        .pop("fast", Duration::from_secs(5))
        .await
        .expect("pop")
        .expect("reclaimed");
    assert_eq!(again.attempts, 2);
    assert_eq!(a.renew(&slow.job).await.expect("late heartbeat"), 0);
    assert_eq!(b.renew(&again.job).await.expect("heartbeat"), 1);
    let client = redis::Client::open(h.url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(a.stream_key())
        .arg(a.group())
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut conn)
        .await
        .expect("XPENDING");
    assert_eq!(pending.ids.len(), 1);
    assert_eq!(pending.ids[0].consumer, "fast", "the new holder keeps it");
    assert_eq!(
        pending.ids[0].times_delivered, 2,
        "heartbeats count no delivery"
    );
    b.ack(&again).await.expect("ack");
}

/// An entry that is not a job (written by something else) is dead-lettered,
/// not handed out and not left to jam the queue.
#[tokio::test]
async fn redis_malformed_entry_is_dead_lettered() {
    let h = redis(config(NO_RECLAIM, 5)).await;
    let q = h.open().await;
    let client = redis::Client::open(h.url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: String = redis::cmd("XADD")
        .arg(q.stream_key())
        .arg("*")
        .arg("key")
        .arg("odd")
        .query_async(&mut conn)
        .await
        .expect("XADD");
    q.push(&job(1)).await.expect("push");
    let d = q
        .pop("c1", Duration::from_secs(1))
        .await
        .expect("pop")
        .expect("the real job");
    assert_eq!(d.job, job(1));
    q.ack(&d).await.expect("ack");
    let dead = q.dead_letters().await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key, "odd");
    assert_eq!(q.depth().await.expect("depth"), 0);
}

/// An unreachable Redis is a transient error.
#[tokio::test]
async fn redis_unreachable_is_transient() {
    let err = RedisQueue::connect("redis://127.0.0.1:1", "x", QueueConfig::default())
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, QueueError::Transient(_)), "{err:?}");
    let err = RedisQueue::connect("not a url", "x", QueueConfig::default())
        .await
        .expect_err("bad url");
    assert!(matches!(err, QueueError::Backend(_)), "{err:?}");
}

/// Many waiting pops on one handle each hold their own blocking connection:
/// they all wake for their jobs, none serialised behind another's block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_parallel_blocking_pops_on_one_handle() {
    let h = redis(config(NO_RECLAIM, 5)).await;
    let q: DynQueue = Arc::new(h.open().await);
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                let d = q
                    .pop(&format!("w{i}"), Duration::from_secs(10))
                    .await
                    .expect("pop")
                    .expect("job");
                q.ack(&d).await.expect("ack");
                (d.job.key, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pushed = Instant::now();
    for i in 0..8 {
        q.push(&job(i)).await.expect("push");
    }
    let mut keys = HashSet::new();
    for w in waiters {
        let (key, at) = w.await.expect("waiter");
        assert!(
            at.duration_since(pushed) < Duration::from_secs(2),
            "a waiter was served late"
        );
        keys.insert(key);
    }
    assert_eq!(keys.len(), 8);
}
