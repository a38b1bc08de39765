//! Ingest outcomes are published on the `ingest` channel of the event bus
//! (Redis pub/sub here, the real one) for observers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{EventBus, UnixTime};
use ark_relay_engine::ingest::{IngestOutcome, Ingestor};
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{builders, pubkey_from_nostr};
use ark_relay_queue::{MemoryQueue, RedisBus};
use ark_relay_store::testing::TestDb;
use nostr::Keys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_outcomes_are_published_on_redis() {
    let url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "ark-relay-test-bus-{}",
        Keys::generate().public_key().to_hex()
    );
    let bus = RedisBus::connect(&url, &prefix)
        .await
        .expect("Redis (scripts/test starts it)");
    let mut sub = bus.subscribe("ingest").await.expect("subscribe");

    let db = TestDb::sqlite().await.expect("sqlite");
    let keys = Keys::generate();
    let relay = pubkey_from_nostr(&keys.public_key()).expect("key");
    let ingestor = Ingestor::new(
        Arc::new(db.store.clone()),
        Arc::new(MemoryQueue::new(Default::default())),
        keys.clone(),
        IntentPolicy::new(relay),
        Arc::new(ark_relay_core::SystemClock),
        Arc::new(tokio::sync::Notify::new()),
    )
    .with_bus(Arc::new(bus) as Arc<dyn EventBus>);

    let alice = Keys::generate();
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let c = IntentContent::transfer(
        "bus-1",
        &bob,
        AssetRef::gbtc(),
        5,
        &relay,
        10,
        UnixTime::now().0 + 60,
    );
    let ev = builders::intent(&alice, &relay, &c).expect("intent");
    assert_eq!(
        ingestor.handle(ev.clone()).await.expect("ingest"),
        IngestOutcome::Accepted("intent")
    );

    let msg = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("a message within 10 s")
        .expect("subscription open");
    let v: serde_json::Value = serde_json::from_str(&msg).expect("json");
    assert_eq!(v["event_id"], ev.id.to_hex());
    assert_eq!(v["kind"], 31510);
    assert!(v["outcome"]
        .as_str()
        .expect("outcome")
        .starts_with("Accepted"));
    db.destroy().await;
}
