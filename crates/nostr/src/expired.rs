//! [`ExpiredTap`]: a websocket transport for rust-nostr's pool that hands
//! events whose NIP-40 `expiration` has passed to the relay instead of
//! letting the pool drop them.
//!
//! Why hand-written: rust-nostr 0.44's relay connection drops every expired
//! event it receives (`nostr-relay-pool` `InnerRelay::handle_event_msg`
//! returns `Error::EventExpired` before any admission policy runs, with no
//! option to turn it off) and logs each one at ERROR — again at every
//! catch-up re-query. The relay must answer an expired intent with 1004
//! (DESIGN.md §4), so it has to see it. This wrapper around the pool's own
//! default websocket transport keeps the pool's connection handling and only
//! diverts, from the incoming message stream, `EVENT` messages whose
//! expiration has passed: they go to a bounded side channel that
//! [`crate::PoolTransport::pump`] reads, and the pool never sees them (so
//! nothing is logged at ERROR). It decides nothing about the events: their
//! signatures are checked by the reader, their meaning by the engine.

use std::time::Duration;

use async_wsocket::{ConnectionMode, Message};
use futures::StreamExt;
use nostr::util::BoxedFuture;
use nostr::{Event, JsonUtil, RelayMessage, Timestamp, Url};
use nostr_relay_pool::transport::error::TransportError;
use nostr_relay_pool::transport::websocket::{
    DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
};
use tokio::sync::mpsc;

/// Expired events held for the reader before new ones are dropped (a
/// dropped one comes back with the next catch-up re-query).
pub(crate) const EXPIRED_BUFFER: usize = 4096;

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ExpiredTap {
    inner: DefaultWebsocketTransport,
    expired: mpsc::Sender<Event>,
}

impl ExpiredTap {
    /// A tap sending diverted events to `expired`.
    pub(crate) fn new(expired: mpsc::Sender<Event>) -> Self {
        Self {
            inner: DefaultWebsocketTransport,
            expired,
        }
    }
}

/// `Some(event)` when `text` is an `EVENT` message carrying an event whose
/// NIP-40 expiration is before `now`.
fn expired_event(text: &str, now: Timestamp) -> Option<Event> {
    // Cheap pre-check: most messages have no expiration tag at all and are
    // left for the pool to parse.
    if !text.starts_with("[\"EVENT\"") || !text.contains("\"expiration\"") {
        return None;
    }
    match RelayMessage::from_json(text).ok()? {
        RelayMessage::Event { event, .. } if event.is_expired_at(&now) => Some(event.into_owned()),
        _ => None,
    }
}

impl WebSocketTransport for ExpiredTap {
    fn support_ping(&self) -> bool {
        self.inner.support_ping()
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<'a, Result<(WebSocketSink, WebSocketStream), TransportError>> {
        Box::pin(async move {
            let (sink, stream) = self.inner.connect(url, mode, timeout).await?;
            let expired = self.expired.clone();
            let stream = stream.filter_map(move |msg| {
                let keep = match &msg {
                    Ok(Message::Text(text)) => match expired_event(text, Timestamp::now()) {
                        Some(event) => {
                            if let Err(e) = expired.try_send(event) {
                                tracing::debug!(error = %e, "expired event not handed over; the next catch-up brings it again");
                            }
                            false
                        }
                        None => true,
                    },
                    _ => true,
                };
                std::future::ready(keep.then_some(msg))
            });
            // A peer gone without a close frame ends the stream like a close
            // (see `quiet.rs`): the pool reconnects without an ERROR line.
            let stream = stream.take_while(|msg| {
                let reset = matches!(msg, Err(e) if crate::quiet::is_reset(e));
                if reset {
                    tracing::debug!("relay connection reset without a closing handshake");
                }
                std::future::ready(!reset)
            });
            let sink: WebSocketSink = Box::new(crate::quiet::QuietClose(sink));
            Ok((sink, Box::pin(stream) as WebSocketStream))
        })
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Kind, SubscriptionId, Tag};

    use super::*;

    fn msg(expiration: Option<u64>) -> String {
        let mut b = EventBuilder::new(Kind::from(31510u16), "{}");
        if let Some(at) = expiration {
            b = b.tag(Tag::expiration(Timestamp::from(at)));
        }
        let event = b.sign_with_keys(&Keys::generate()).expect("sign");
        RelayMessage::event(SubscriptionId::new("s"), event).as_json()
    }

    #[test]
    fn only_events_past_their_expiration_are_diverted() {
        let now = Timestamp::from(1_000);
        assert!(expired_event(&msg(Some(999)), now).is_some());
        assert!(expired_event(&msg(Some(1_001)), now).is_none());
        assert!(expired_event(&msg(None), now).is_none());
        assert!(expired_event("[\"EOSE\",\"s\"]", now).is_none());
        assert!(expired_event("[\"EVENT\",\"expiration\"", now).is_none());
    }
}
