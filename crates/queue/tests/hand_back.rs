//! `JobQueue::hand_back` on both queues: a delivery handed back is taken by
//! another consumer at once (not after `reclaim_after`), as a redelivery,
//! and is done once acked.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use ark_relay_core::{Job, JobQueue, QueueConfig};
use ark_relay_queue::{MemoryQueue, RedisQueue};

fn config() -> QueueConfig {
    QueueConfig {
        reclaim_after: Duration::from_secs(300),
        max_attempts: 5,
    }
}

async fn handed_back_is_taken_at_once(q: &dyn JobQueue) {
    let job = Job {
        key: "k".into(),
        kind: "test".into(),
        payload: "{}".into(),
    };
    q.push(&job).await.unwrap();
    let first = q.pop("a", Duration::from_secs(2)).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    assert!(
        q.pop("b", Duration::from_millis(200))
            .await
            .unwrap()
            .is_none(),
        "in flight with a, not reclaimable yet"
    );
    q.hand_back(&first).await.unwrap();
    let t = Instant::now();
    let again = q.pop("b", Duration::from_secs(3)).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(again.job, job);
    assert_eq!(again.attempts, 2, "a redelivery");
    q.ack(&again).await.unwrap();
    assert_eq!(q.depth().await.unwrap(), 0);
    assert!(q.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_hand_back() {
    handed_back_is_taken_at_once(&MemoryQueue::new(config())).await;
}

#[tokio::test]
async fn redis_hand_back() {
    let url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("ark-relay-test:{}", uuid::Uuid::new_v4().simple());
    let q = RedisQueue::connect(&url, &prefix, config()).await.unwrap();
    handed_back_is_taken_at_once(&q).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(q.stream_key())
        .arg(q.dead_letter_key())
        .query_async(&mut conn)
        .await
        .unwrap();
}
