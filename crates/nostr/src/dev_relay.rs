//! [`DevRelay`]: a real websocket Nostr relay in-process on 127.0.0.1, built on
//! rust-nostr's `LocalRelay`, with a store that keeps d-less addressable events
//! ([`crate::KeepAllDatabase`]) and rate limits raised for load tests.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nostr_relay_builder::builder::{RateLimit, RelayBuilder};
use nostr_relay_builder::LocalRelay;

use crate::KeepAllDatabase;

/// Options of the dev relay.
#[derive(Debug, Clone)]
pub struct DevRelayOptions {
    /// Port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Events kept in memory.
    pub max_events: usize,
    /// Events per minute accepted from one connection.
    pub notes_per_minute: u32,
    /// The event store; pass the same one to a restarted relay to keep its
    /// events (like a relay process restarting on persistent storage).
    pub database: Option<Arc<KeepAllDatabase>>,
}

impl Default for DevRelayOptions {
    fn default() -> Self {
        Self {
            port: None,
            max_events: 500_000,
            notes_per_minute: 1_000_000,
            database: None,
        }
    }
}

/// A running in-process relay. It stops when dropped (or on [`DevRelay::shutdown`]).
#[derive(Debug, Clone)]
pub struct DevRelay {
    relay: LocalRelay,
    url: String,
}

impl DevRelay {
    /// Starts a relay on 127.0.0.1.
    pub async fn start(opts: DevRelayOptions) -> Result<Self, std::io::Error> {
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let builder = RelayBuilder::default()
            .addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .port(port)
            .database(
                opts.database
                    .unwrap_or_else(|| Arc::new(KeepAllDatabase::new(opts.max_events))),
            )
            .rate_limit(RateLimit {
                max_reqs: 10_000,
                notes_per_minute: opts.notes_per_minute,
            });
        let relay = LocalRelay::new(builder);
        relay
            .run()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let url = relay.url().await.to_string();
        Ok(Self { relay, url })
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> Option<u16> {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
    }

    /// Stops accepting connections and closes existing ones.
    pub fn shutdown(&self) {
        self.relay.shutdown();
    }
}

/// Asks the OS for a free port on 127.0.0.1 (bind to 0, read, release).
fn free_port() -> Result<u16, std::io::Error> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}
