//! [`DevRelay`]: a real websocket Nostr relay in-process on 127.0.0.1, built on
//! rust-nostr's `LocalRelay`, with a store that keeps d-less addressable events
//! ([`crate::KeepAllDatabase`]) and rate limits raised for load tests.
//!
//! # No Nagle delay
//! The relay accepts connections itself and sets `TCP_NODELAY` on each
//! before handing the upgraded stream to `LocalRelay` (whose own listener
//! leaves Nagle on). With Nagle on, a client that publishes and reads on one
//! connection — the relay's engine, a wallet — waits ~40 ms for every event
//! that follows an `OK` on its socket: the server holds the small second
//! write until the client's delayed ACK of the first (measured: each of the
//! relay's three turns of a transfer took ~47 ms, of which ~42 ms was this
//! wait; `cargo bench -p ark-relay-engine --bench transfer`'s idle timeline).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use nostr_relay_builder::builder::{RateLimit, RelayBuilder};
use nostr_relay_builder::LocalRelay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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
    _guard: Arc<StopOnDrop>,
}

/// Stops the accept loop and the relay when the last [`DevRelay`] handle goes.
#[derive(Debug)]
struct StopOnDrop {
    relay: LocalRelay,
    stop: watch::Sender<bool>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.relay.shutdown();
    }
}

impl DevRelay {
    /// Starts a relay on 127.0.0.1.
    pub async fn start(opts: DevRelayOptions) -> Result<Self, std::io::Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, opts.port.unwrap_or(0))).await?;
        let port = listener.local_addr()?.port();
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
        let url = relay.url().await.to_string();
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, relay.clone(), stop_rx));
        let guard = Arc::new(StopOnDrop {
            relay: relay.clone(),
            stop,
        });
        Ok(Self {
            relay,
            url,
            _guard: guard,
        })
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
        let _ = self._guard.stop.send(true);
        self.relay.shutdown();
    }
}

/// Accepts connections until `stop`: each gets `TCP_NODELAY`, the websocket
/// upgrade, and is handed to `relay`.
async fn accept_loop(listener: TcpListener, relay: LocalRelay, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "dev relay: cannot accept a connection");
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, addr, &relay).await {
                tracing::debug!(error = %e, %addr, "dev relay: connection ended");
            }
        });
    }
}

/// Upper bound of a websocket upgrade request.
const MAX_REQUEST: usize = 16 * 1024;

async fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    relay: &LocalRelay,
) -> Result<(), std::io::Error> {
    stream.set_nodelay(true)?;
    // The HTTP upgrade request, read byte by byte so nothing after it is
    // consumed (a client sends no frame before the 101 anyway).
    let mut req = Vec::with_capacity(512);
    while !req.ends_with(b"\r\n\r\n") {
        if req.len() >= MAX_REQUEST {
            return Err(std::io::Error::other("upgrade request too large"));
        }
        let mut b = [0u8; 1];
        if stream.read(&mut b).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        req.push(b[0]);
    }
    let Some(key) = websocket_key(&req) else {
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Err(std::io::Error::other("not a websocket upgrade"));
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await?;
    relay
        .take_connection(stream, addr)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The `Sec-WebSocket-Key` of an HTTP upgrade request.
fn websocket_key(req: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(req).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_from_an_upgrade_request() {
        let req =
            b"GET / HTTP/1.1\r\nHost: x\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(
            websocket_key(req).as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(websocket_key(b"GET / HTTP/1.1\r\n\r\n"), None);
    }
}
