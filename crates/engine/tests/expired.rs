//! Expired intents (issue #18, item 4): an intent whose NIP-40 `expiration`
//! has passed is accepted by the Nostr relay, reaches the engine although
//! rust-nostr's pool would drop it, and is answered with exactly one 1004 —
//! also across the transport's catch-up re-queries, which hand it back every
//! few seconds — and nothing is logged at ERROR for it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{ErrorCode, UnixTime};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_store::testing::TestDb;
use nostr::Keys;
use tokio::sync::{mpsc, watch};
use tracing_subscriber::layer::SubscriberExt;

use common::{dev_relay, start_relay, Wallet};

/// Counts ERROR events (with their messages) in this test process.
#[derive(Clone, Default)]
struct Errors(Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut v) = self.1.lock() {
                v.push(format!("{}: {:?}", event.metadata().target(), event));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expired_intent_is_answered_1004_exactly_once() {
    let errors = Errors::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(errors.clone()))
        .expect("subscriber");

    let nostr = dev_relay().await;
    let db = TestDb::sqlite().await.expect("SQLite");
    let relay = start_relay(db, nostr.clone()).await;
    let wallet = Wallet::connect(nostr.url()).await;
    let relay_pk = pubkey_from_nostr(&relay.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let past = UnixTime::now().0 - 30;

    let intents: Vec<nostr::Event> = (0..5)
        .map(|i| {
            let c = IntentContent::transfer(
                format!("expired-{i}"),
                &bob,
                AssetRef::gbtc(),
                1_000,
                &relay_pk,
                10,
                past,
            );
            builders::intent(&wallet.keys, &relay_pk, &c).expect("intent")
        })
        .collect();
    for ev in &intents {
        assert!(ev.is_expired(), "the test intent carries a past expiration");
        wallet.publish(ev).await;
    }
    // The same event again: still one answer.
    wallet.publish(&intents[0]).await;

    let ids: Vec<nostr::EventId> = intents.iter().map(|e| e.id).collect();
    wallet
        .wait_for(
            "a 31341 for each expired intent",
            Duration::from_secs(30),
            |evs| {
                ids.iter().all(|id| {
                    evs.iter()
                        .any(|e| common::answers(e, ark_relay_protocol::kinds::FAILURE, id))
                })
            },
        )
        .await;

    // A reader started now gets them only from its catch-up query (they
    // are older than its live subscription): the pool's fetch path hands
    // expired events over too.
    let reader = PoolTransport::connect(
        relay.keys.public_key(),
        PoolOptions::new(vec![nostr.url().to_owned()]),
    )
    .await
    .expect("reader");
    let (tx, mut rx) = mpsc::channel(64);
    let (_cursor_tx, cursor) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let r = reader.clone();
    let pump = tokio::spawn(async move { r.pump(tx, cursor, stop).await });
    let mut caught = std::collections::HashSet::new();
    while caught.len() < ids.len() {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("catch-up hands every expired intent over within 20 s")
            .expect("open");
        caught.insert(ev.id);
    }
    assert!(ids.iter().all(|id| caught.contains(id)));
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), pump).await;
    reader.shutdown().await;

    // The engine's own transport re-queries every 3 s (tests/common); let
    // two re-queries pass, then count the answers.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let failures = wallet.failures().await;
    for id in &ids {
        let notices = failures.get(id).cloned().unwrap_or_default();
        assert_eq!(notices.len(), 1, "exactly one answer to {id}: {notices:?}");
        assert_eq!(notices[0].code, ErrorCode::Expired, "{notices:?}");
    }
    let logged = errors.1.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(
        errors.0.load(Ordering::SeqCst),
        0,
        "nothing logged at ERROR: {logged:?}"
    );

    wallet.stop();
    relay.stop().await;
}
