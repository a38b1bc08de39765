//! The `NostrTransport` port: how the engine hears events and publishes them,
//! without knowing the relay-pool library behind it. Declared here (the crate
//! that owns the Nostr types) and implemented by `ark-relay-nostr`.
//!
//! # Notes for implementors
//! - `publish` succeeds when at least one Nostr relay answered `OK true`
//!   (including `duplicate:`); the caller keeps retrying from its outbox otherwise.
//! - `pump` delivers events addressed to the relay into `sink` until `stop`
//!   resolves, surviving disconnects; it may deliver the same event many times
//!   (several relays, catch-up re-queries): the consumer deduplicates.

use ark_relay_core::UnixTime;
use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

/// What the Nostr relays said to a publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Relays that accepted (or already had) the event.
    pub accepted: Vec<String>,
    /// Relays that refused or failed, with their message.
    pub rejected: Vec<(String, String)>,
}

impl PublishReport {
    /// Whether at least one relay has the event.
    pub fn delivered(&self) -> bool {
        !self.accepted.is_empty()
    }
}

/// Transport failures.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No relay could be reached or none accepted; retry later.
    #[error("no Nostr relay accepted the event: {0}")]
    NotDelivered(String),
    /// Any other failure.
    #[error("nostr transport: {0}")]
    Other(String),
}

/// Where to resume reading: the newest processed `created_at`, if any.
pub type Cursor = watch::Receiver<Option<UnixTime>>;

/// Nostr in and out.
#[async_trait]
pub trait NostrTransport: Send + Sync + 'static {
    /// Publishes a signed event to every configured relay.
    async fn publish(&self, event: &nostr::Event) -> Result<PublishReport, TransportError>;

    /// Feeds events p-tagged to the relay (of the consumed kinds) into `sink`,
    /// re-querying from `cursor − safety window` on start, on lag and
    /// periodically, until `stop` changes to `true`.
    async fn pump(
        &self,
        sink: mpsc::Sender<nostr::Event>,
        cursor: Cursor,
        stop: watch::Receiver<bool>,
    ) -> Result<(), TransportError>;

    /// The Nostr relay URLs in use.
    fn relay_urls(&self) -> Vec<String>;

    /// Each relay's URL and whether it is connected now (for `/health`);
    /// empty when the transport cannot tell.
    async fn relay_status(&self) -> Vec<(String, bool)> {
        Vec::new()
    }
}
