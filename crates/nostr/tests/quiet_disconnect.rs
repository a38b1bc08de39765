//! A peer that goes away without a websocket closing handshake is a normal
//! event (a wallet's process is killed, a relay restarts): neither side of the
//! connection may log it at ERROR.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport, QuietResets};
use async_wsocket::ConnectionMode;
use nostr::{Keys, Url};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;

/// Collects every ERROR event's target and fields.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            if let Ok(mut v) = self.0.lock() {
                v.push(format!("{}: {:?}", event.metadata().target(), event));
            }
        }
    }
}

impl Errors {
    fn seen(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_vanishing_without_a_close_frame_are_not_errors() {
    let errors = Errors::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(errors.clone().with_filter(QuietResets)),
    )
    .expect("subscriber");

    let relay = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("relay");

    // A raw websocket client that is dropped without a close frame: the
    // relay side sees "connection reset without closing handshake".
    let url = Url::parse(relay.url()).expect("url");
    for _ in 0..3 {
        let ws = async_wsocket::connect(&url, &ConnectionMode::Direct, Duration::from_secs(5))
            .await
            .expect("raw websocket");
        drop(ws);
    }

    // A pool reader whose relay goes away: the pool side sees the reset.
    let pool = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec![relay.url().to_owned()]),
    )
    .await
    .expect("pool");
    relay.shutdown();
    // Wait for the pool to notice (its relay status leaves "connected").
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = ark_relay_protocol::transport::NostrTransport::relay_status(&pool).await;
        if status.iter().all(|(_, connected)| !connected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool never noticed the relay going away: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.shutdown().await;

    assert!(
        errors.seen().is_empty(),
        "logged at ERROR: {:#?}",
        errors.seen()
    );
}
