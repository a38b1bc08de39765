//! The outbox publisher: sends every undelivered event to the Nostr relays
//! until one accepts it, with exponential backoff per event.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, DynStore, OutboxItem};
use ark_relay_protocol::transport::NostrTransport;
use futures::stream::{self, StreamExt};
use nostr::{Event, JsonUtil};
use tokio::sync::{watch, Notify};

/// See the module docs.
pub struct OutboxPublisher {
    store: DynStore,
    transport: Arc<dyn NostrTransport>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Events published at once.
    pub parallelism: usize,
    /// Sleep between scans when nothing wakes it.
    pub idle: Duration,
}

/// Seconds until the next attempt after `attempts` failures: 1, 2, 4 … 300.
pub fn backoff_secs(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(9)).unwrap_or(512).min(300)
}

impl OutboxPublisher {
    /// A publisher woken by `wake` whenever something is queued.
    pub fn new(
        store: DynStore,
        transport: Arc<dyn NostrTransport>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            transport,
            clock,
            wake,
            parallelism: 16,
            idle: Duration::from_millis(500),
        }
    }

    /// Runs until `stop` becomes true, then makes one last pass.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let published = self.pass().await;
            if *stop.borrow() {
                return;
            }
            if published == 0 {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.idle) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Publishes what is due; returns how many events were attempted.
    pub async fn pass(&self) -> usize {
        let due = match self.store.due_outbox(self.clock.now(), 256).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read outbox");
                return 0;
            }
        };
        let n = due.len();
        stream::iter(due)
            .for_each_concurrent(self.parallelism, |item| self.publish(item))
            .await;
        n
    }

    async fn publish(&self, item: OutboxItem) {
        let event = match Event::from_json(&item.event_json) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(id = item.id, error = %e, "unreadable outbox event; parking it");
                let _ = self
                    .store
                    .mark_outbox_retry(item.id, self.clock.now().plus_secs(86_400), "unreadable")
                    .await;
                return;
            }
        };
        let now = self.clock.now();
        match self.transport.publish(&event).await {
            Ok(report) => {
                tracing::debug!(id = item.id, kind = item.kind, relays = ?report.accepted, "published");
                if let Err(e) = self.store.mark_outbox_delivered(item.id, now).await {
                    tracing::warn!(error = %e, "cannot mark outbox row delivered; it will be sent again");
                }
            }
            Err(e) => {
                let next = now.plus_secs(backoff_secs(item.attempts));
                tracing::warn!(id = item.id, error = %e, "publish failed; retrying later");
                let _ = self
                    .store
                    .mark_outbox_retry(item.id, next, &e.to_string())
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff_secs(0), 1);
        assert_eq!(super::backoff_secs(3), 8);
        assert_eq!(super::backoff_secs(50), 300);
    }
}
