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

use nostr_relay_pool::transport::error::TransportError;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};
use tungstenite::error::ProtocolError;

/// Whether a transport error is the peer going away without a close frame.
pub(crate) fn is_reset(e: &TransportError) -> bool {
    let TransportError::Backend(inner) = e;
    matches!(
        inner.downcast_ref::<async_wsocket::Error>(),
        Some(async_wsocket::Error::Ws(tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
        )))
    )
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
        let mut message = Message(String::new());
        event.record(&mut message);
        !message.0.contains(RESET)
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl Visit for Message {
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
    fn only_a_reset_is_a_reset() {
        let reset = TransportError::backend(async_wsocket::Error::Ws(
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        ));
        assert!(is_reset(&reset));
        let closed = TransportError::backend(async_wsocket::Error::Ws(
            tungstenite::Error::ConnectionClosed,
        ));
        assert!(!is_reset(&closed));
        let timeout = TransportError::backend(async_wsocket::Error::Timeout);
        assert!(!is_reset(&timeout));
    }
}
