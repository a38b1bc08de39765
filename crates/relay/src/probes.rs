//! Liveness of what `GET /health` reports next to the gRPC circuit breakers
//! (arkd, lnd, tapd): the job queue — a real Redis round trip when Redis is
//! used — and the connection to each Nostr relay, measured every few seconds
//! in the background so `/health` itself never waits on them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_api::BackendHealth;
use ark_relay_core::DynQueue;
use ark_relay_protocol::transport::NostrTransport;
use tokio::sync::watch;

/// How long one probe may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The latest probe results, shared with the HTTP health source.
#[derive(Clone, Default)]
pub(crate) struct Probes {
    latest: Arc<Mutex<Vec<BackendHealth>>>,
}

impl Probes {
    /// The latest results (empty until the first round finished).
    pub(crate) fn snapshot(&self) -> Vec<BackendHealth> {
        self.latest.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Probes `queue` (named `queue_name`: `redis` or `in-process queue`) and
    /// the relays of `transport` every `every` until `stop` turns true.
    pub(crate) async fn run(
        self,
        queue: DynQueue,
        queue_name: &'static str,
        transport: Arc<dyn NostrTransport>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let mut out = Vec::new();
            let queue_ok = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, queue.depth()).await,
                Ok(Ok(_))
            );
            out.push(BackendHealth::new(
                queue_name,
                if queue_ok { "ok" } else { "unreachable" },
                queue_ok,
            ));
            match tokio::time::timeout(PROBE_TIMEOUT, transport.relay_status()).await {
                Ok(relays) => {
                    for (url, connected) in relays {
                        out.push(BackendHealth::new(
                            format!("nostr {url}"),
                            if connected {
                                "connected"
                            } else {
                                "disconnected"
                            },
                            connected,
                        ));
                    }
                }
                Err(_) => out.push(BackendHealth::new("nostr", "unknown", false)),
            }
            if let Ok(mut latest) = self.latest.lock() {
                *latest = out;
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
    use ark_relay_queue::MemoryQueue;

    #[tokio::test]
    async fn reports_the_queue_and_each_relay_connection() {
        let relay = DevRelay::start(DevRelayOptions::default()).await.unwrap();
        let keys = nostr::Keys::generate();
        let transport = PoolTransport::connect(
            keys.public_key(),
            PoolOptions::new(vec![relay.url().to_owned()]),
        )
        .await
        .unwrap();
        let probes = Probes::default();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(probes.clone().run(
            Arc::new(MemoryQueue::new(Default::default())),
            "in-process queue",
            Arc::new(transport),
            Duration::from_millis(50),
            stop,
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let connected =
            |s: &[BackendHealth]| s.iter().any(|b| b.name.starts_with("nostr ") && b.healthy);
        while !connected(&probes.snapshot()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                probes.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(probes
            .snapshot()
            .iter()
            .any(|b| b.name == "in-process queue" && b.healthy));
        // The relay goes away: its connection is reported down.
        relay.shutdown();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while connected(&probes.snapshot()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                probes.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }
}
