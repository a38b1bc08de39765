//! The pool transport against a real websocket relay on loopback.

use std::time::Duration;

use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::transport::NostrTransport;
use nostr::{EventBuilder, Keys, Kind, Tag};
use tokio::sync::{mpsc, watch};

async fn next(rx: &mut mpsc::Receiver<nostr::Event>) -> nostr::Event {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("event within 20 s")
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_p_tagged_events_including_d_less_addressable_ones() {
    let relay = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("relay");
    let relay_keys = Keys::generate();
    let transport = PoolTransport::connect(
        relay_keys.public_key(),
        PoolOptions::new(vec![relay.url().to_owned()]),
    )
    .await
    .expect("connect");
    let (tx, mut rx) = mpsc::channel(64);
    let (_cursor_tx, cursor) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let pump = {
        let t = transport.clone();
        tokio::spawn(async move { t.pump(tx, cursor, stop).await })
    };

    let wallet = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec![relay.url().to_owned()]),
    )
    .await
    .expect("wallet");
    let alice = Keys::generate();
    let not_ours = EventBuilder::new(Kind::from(31510u16), "{}")
        .tag(Tag::public_key(Keys::generate().public_key()))
        .sign_with_keys(&alice)
        .expect("sign");
    let d_less = EventBuilder::new(Kind::from(31510u16), "{\"n\":1}")
        .tag(Tag::public_key(relay_keys.public_key()))
        .sign_with_keys(&alice)
        .expect("sign");
    let second = EventBuilder::new(Kind::from(31510u16), "{\"n\":2}")
        .tag(Tag::public_key(relay_keys.public_key()))
        .sign_with_keys(&alice)
        .expect("sign");
    wallet.publish(&not_ours).await.expect("publish");
    let report = wallet.publish(&d_less).await.expect("publish d-less");
    assert!(report.delivered());
    wallet
        .publish(&second)
        .await
        .expect("a second d-less event is not replaced");
    assert!(
        wallet
            .publish(&second)
            .await
            .expect("republish")
            .delivered(),
        "duplicate counts as delivered"
    );

    let mut got = vec![next(&mut rx).await.id, next(&mut rx).await.id];
    got.sort();
    let mut want = vec![d_less.id, second.id];
    want.sort();
    assert_eq!(got, want);

    stop_tx.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), pump)
        .await
        .expect("pump stops")
        .expect("join")
        .expect("ok");
    relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_finds_events_published_before_the_pump_started() {
    let relay = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("relay");
    let relay_keys = Keys::generate();
    let wallet = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec![relay.url().to_owned()]),
    )
    .await
    .expect("wallet");
    let early = EventBuilder::new(Kind::from(31500u16), "x")
        .tag(Tag::public_key(relay_keys.public_key()))
        .tag(Tag::identifier("req-1"))
        .sign_with_keys(&Keys::generate())
        .expect("sign");
    wallet.publish(&early).await.expect("publish");

    let transport = PoolTransport::connect(
        relay_keys.public_key(),
        PoolOptions::new(vec![relay.url().to_owned()]),
    )
    .await
    .expect("connect");
    let (tx, mut rx) = mpsc::channel(64);
    let (_cursor_tx, cursor) = watch::channel(None);
    let (_stop_tx, stop) = watch::channel(false);
    let t = transport.clone();
    tokio::spawn(async move { t.pump(tx, cursor, stop).await });
    assert_eq!(next(&mut rx).await.id, early.id);
}

#[tokio::test]
async fn publishing_with_no_reachable_relay_is_not_delivered() {
    let transport = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec!["ws://127.0.0.1:9".into()]),
    )
    .await
    .expect("connect returns; the pool retries in the background");
    let ev = EventBuilder::text_note("x")
        .sign_with_keys(&Keys::generate())
        .expect("sign");
    assert!(transport.publish(&ev).await.is_err());
}
