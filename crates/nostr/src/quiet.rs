//! A peer that vanishes without a websocket closing handshake — a wallet
//! process killed, a relay restarting, `dev` stopping — is a normal event on
//! an open network, but rust-nostr 0.44 logs it at ERROR on both sides of the
//! connection. This module keeps those lines out of the error log:
//!
//! - the pool side (the relay's and wallets' readers): [`is_reset`] lets
//!   [`crate::expired::ExpiredTap`] end the message stream on a reset, so the
//!   pool sees an ordinary end of connection (and reconnects as usual) instead
//!   of "Relay receiver exited with error";
//! - the in-process relay ([`crate::DevRelay`], rust-nostr's `LocalRelay`),
//!   whose connection loop logs "Can't handle websocket msg: … Connection reset
//!   without closing handshake" with no hook to intercept: [`QuietResets`] is a
//!   `tracing` filter, installed by the binaries, that drops exactly that line.
//!
//! Hand-written because rust-nostr has no option for either (checked in
//! nostr-relay-pool 0.44.3 `relay/inner.rs` and nostr-relay-builder 0.44.1
//! `local/inner.rs`).

use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use async_wsocket::Message;
use futures::Sink;
use nostr_relay_pool::transport::error::TransportError;
use nostr_relay_pool::transport::websocket::WebSocketSink;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};
use tungstenite::error::ProtocolError;

/// Whether a transport error is the peer going away without a close frame:
/// tungstenite's "reset without closing handshake", a connection already
/// closed, or the socket's own reset / broken pipe / abort / early EOF
/// (which of them a reader sees depends on timing).
pub(crate) fn is_reset(e: &TransportError) -> bool {
    let TransportError::Backend(inner) = e;
    let ws = match inner.downcast_ref::<async_wsocket::Error>() {
        Some(async_wsocket::Error::Ws(ws)) => ws,
        Some(async_wsocket::Error::Io(io)) => return is_gone(io),
        _ => return false,
    };
    match ws {
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed => true,
        tungstenite::Error::Io(io) => is_gone(io),
        _ => false,
    }
}

fn is_gone(io: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        io.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionAborted
            | ErrorKind::UnexpectedEof
    )
}

/// The pool's websocket sink, whose `close` succeeds when the peer is already
/// gone (the pool closes its side after the stream ended and would log the
/// broken pipe at ERROR: "Can't close WebSocket connection").
pub(crate) struct QuietClose(pub(crate) WebSocketSink);

impl Sink<Message> for QuietClose {
    type Error = TransportError;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.0).start_send(item)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        match Pin::new(&mut self.0).poll_close(cx) {
            Poll::Ready(Err(e)) if is_reset(&e) => {
                tracing::debug!(error = %e, "closing a websocket whose peer is gone");
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// The in-process relay's connection loop (its `tracing` target).
const RELAY_BUILDER: &str = "nostr_relay_builder::local::inner";
/// What tungstenite's `ResetWithoutClosingHandshake` displays as.
const RESET: &str = "Connection reset without closing handshake";

/// A `tracing` per-layer filter that drops the in-process relay's ERROR line
/// for a client that went away without a close frame, and nothing else. Use
/// it as `fmt_layer.with_filter(env_filter.and(QuietResets))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietResets;

impl<S> Filter<S> for QuietResets {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _: &Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || meta.target() != RELAY_BUILDER {
            return true;
        }
        let mut message = MessageField(String::new());
        event.record(&mut message);
        !message.0.contains(RESET)
    }
}

/// Collects an event's `message` field.
struct MessageField(String);

impl Visit for MessageField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gone_peer_is_a_reset() {
        let reset = TransportError::backend(async_wsocket::Error::Ws(
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        ));
        assert!(is_reset(&reset));
        let closed = TransportError::backend(async_wsocket::Error::Ws(
            tungstenite::Error::ConnectionClosed,
        ));
        assert!(is_reset(&closed));
        let io = |kind| {
            TransportError::backend(async_wsocket::Error::Ws(tungstenite::Error::Io(
                std::io::Error::from(kind),
            )))
        };
        assert!(is_reset(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(is_reset(&io(std::io::ErrorKind::BrokenPipe)));
        assert!(!is_reset(&io(std::io::ErrorKind::PermissionDenied)));
        let capacity = TransportError::backend(async_wsocket::Error::Ws(tungstenite::Error::Utf8));
        assert!(!is_reset(&capacity));
        let timeout = TransportError::backend(async_wsocket::Error::Timeout);
        assert!(!is_reset(&timeout));
    }
}
