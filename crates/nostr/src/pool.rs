//! [`PoolTransport`]: the relay's [`NostrTransport`] over rust-nostr's relay
//! pool. Publishing counts one `OK true` (or `duplicate:`) as delivered.
//! Reading subscribes to `#p = relay` for the consumed kinds and, because a
//! subscription alone can miss events (disconnects, broadcast lag — rust-nostr's
//! `handle_notifications` even ends its loop on lag), re-queries from the
//! cursor minus a safety window at start, on lag and periodically.
//! Events whose NIP-40 expiration has passed, which the pool itself would
//! drop, reach the reader too (through [`crate::expired::ExpiredTap`]), so
//! the engine can answer them.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::UnixTime;
use ark_relay_protocol::kinds;
use ark_relay_protocol::transport::{Cursor, NostrTransport, PublishReport, TransportError};
use async_trait::async_trait;
use nostr::filter::MatchEventOptions;
use nostr::{Event, Filter, Kind, PublicKey, Timestamp};
use nostr_sdk::{Client, ClientOptions, RelayPoolNotification};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch, Mutex};

use crate::expired::{ExpiredTap, EXPIRED_BUFFER};

/// Options of the pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Nostr relay URLs (`ws://` or `wss://`).
    pub relays: Vec<String>,
    /// Re-queries start this far before the cursor.
    pub safety_window: Duration,
    /// How often to re-query even without a known gap.
    pub catch_up_every: Duration,
    /// How long a re-query waits for relays to answer.
    pub fetch_timeout: Duration,
    /// Kinds to read (default: the kinds the relay consumes; a wallet reads
    /// the relay's answers instead).
    pub kinds: Vec<u16>,
    /// `None` (default): read events p-tagged to the listening key. `Some`:
    /// read events *authored* by these keys instead (an oracle's prices),
    /// whoever they are addressed to.
    pub authors: Option<Vec<PublicKey>>,
}

impl PoolOptions {
    /// Defaults for `relays`.
    pub fn new(relays: Vec<String>) -> Self {
        Self {
            relays,
            safety_window: Duration::from_secs(120),
            catch_up_every: Duration::from_secs(15),
            fetch_timeout: Duration::from_secs(10),
            kinds: kinds::CONSUMED.to_vec(),
            authors: None,
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PoolTransport {
    client: Client,
    listen_for: PublicKey,
    opts: PoolOptions,
    /// Expired events diverted from the pool's connections.
    expired: Arc<Mutex<mpsc::Receiver<Event>>>,
}

fn other(e: impl std::fmt::Display) -> TransportError {
    TransportError::Other(e.to_string())
}

impl PoolTransport {
    /// Connects to every relay in `opts` (in the background: an unreachable
    /// relay is retried by the pool with backoff) and reads events p-tagged
    /// to `listen_for`.
    pub async fn connect(listen_for: PublicKey, opts: PoolOptions) -> Result<Self, TransportError> {
        if opts.relays.is_empty() {
            return Err(TransportError::Other("no Nostr relays configured".into()));
        }
        let (expired_tx, expired) = mpsc::channel(EXPIRED_BUFFER);
        let client = Client::builder()
            .opts(ClientOptions::new().automatic_authentication(false))
            .websocket_transport(ExpiredTap::new(expired_tx))
            .build();
        for url in &opts.relays {
            client.add_relay(url.as_str()).await.map_err(other)?;
        }
        client.connect().await;
        client.wait_for_connection(Duration::from_secs(5)).await;
        Ok(Self {
            client,
            listen_for,
            opts,
            expired: Arc::new(Mutex::new(expired)),
        })
    }

    /// Disconnects from every relay.
    pub async fn shutdown(&self) {
        self.client.shutdown().await;
    }

    fn filter(&self, since: Timestamp) -> Filter {
        self.base_filter().since(since)
    }

    fn base_filter(&self) -> Filter {
        let f = Filter::new().kinds(self.opts.kinds.iter().map(|k| Kind::from(*k)));
        match &self.opts.authors {
            None => f.pubkey(self.listen_for),
            Some(authors) => f.authors(authors.iter().copied()),
        }
    }

    /// Whether a diverted expired event is one this reader asked for (the
    /// pool checks this, and the signature, for the events it delivers).
    fn wanted(&self, event: &Event) -> bool {
        let filter = self.base_filter();
        filter.match_event(event, MatchEventOptions::new()) && event.verify().is_ok()
    }

    fn since(&self, cursor: &Cursor) -> Timestamp {
        let window = i64::try_from(self.opts.safety_window.as_secs()).unwrap_or(i64::MAX);
        let from = cursor
            .borrow()
            .unwrap_or_else(UnixTime::now)
            .0
            .saturating_sub(window);
        Timestamp::from(u64::try_from(from).unwrap_or(0))
    }

    async fn catch_up(&self, sink: &mpsc::Sender<Event>, cursor: &Cursor) -> bool {
        let since = self.since(cursor);
        match self
            .client
            .fetch_events(self.filter(since), self.opts.fetch_timeout)
            .await
        {
            Ok(events) => {
                tracing::debug!(
                    count = events.len(),
                    since = since.as_secs(),
                    "catch-up re-query"
                );
                for e in events {
                    if sink.send(e).await.is_err() {
                        return false;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "catch-up re-query failed; will retry"),
        }
        true
    }
}

#[async_trait]
impl NostrTransport for PoolTransport {
    async fn publish(&self, event: &Event) -> Result<PublishReport, TransportError> {
        let out = self
            .client
            .send_event(event)
            .await
            .map_err(|e| TransportError::NotDelivered(e.to_string()))?;
        let mut report = PublishReport {
            accepted: out.success.iter().map(|u| u.to_string()).collect(),
            rejected: vec![],
        };
        for (url, msg) in out.failed {
            if msg.starts_with("duplicate:") {
                report.accepted.push(url.to_string());
            } else {
                report.rejected.push((url.to_string(), msg));
            }
        }
        if report.delivered() {
            Ok(report)
        } else {
            Err(TransportError::NotDelivered(format!(
                "{:?}",
                report.rejected
            )))
        }
    }

    async fn pump(
        &self,
        sink: mpsc::Sender<Event>,
        cursor: Cursor,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        let mut notifications = self.client.notifications();
        let mut expired = self.expired.lock().await;
        self.client
            .subscribe(self.filter(self.since(&cursor)), None)
            .await
            .map_err(other)?;
        if !self.catch_up(&sink, &cursor).await {
            return Ok(());
        }
        let mut tick = tokio::time::interval(self.opts.catch_up_every);
        tick.tick().await;
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
                n = notifications.recv() => match n {
                    Ok(RelayPoolNotification::Event { event, .. }) => {
                        if sink.send(*event).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(RelayPoolNotification::Shutdown) => return Ok(()),
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "notification lag; re-querying");
                        if !self.catch_up(&sink, &cursor).await {
                            return Ok(());
                        }
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
                Some(event) = expired.recv() => {
                    if self.wanted(&event) {
                        tracing::debug!(event = %event.id, "expired event handed to the reader");
                        if sink.send(event).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                _ = tick.tick() => {
                    if !self.catch_up(&sink, &cursor).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn relay_urls(&self) -> Vec<String> {
        self.opts.relays.clone()
    }

    async fn relay_status(&self) -> Vec<(String, bool)> {
        self.client
            .relays()
            .await
            .iter()
            .map(|(url, relay)| {
                (
                    url.to_string(),
                    relay.status() == nostr_sdk::RelayStatus::Connected,
                )
            })
            .collect()
    }
}
