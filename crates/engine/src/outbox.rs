//! The outbox publisher: sends every undelivered event to the Nostr relays
//! until one accepts it, with exponential backoff per event.
//!
//! Publishing is a pipeline, not a series of batches: up to `parallelism`
//! events are in flight at once and a free slot is refilled the moment an
//! event's `OK` arrives, so one slow `OK` holds only its own slot. Events
//! waiting for a slot are taken round-robin by recipient (the first `p`
//! tag; public events without one count as the relay's own recipient), so
//! a backlog of notices to one key does not delay another key's challenge
//! or confirmation behind it.
//!
//! Delivered marks are written in batches: one mark transaction at a time,
//! taking every `OK` that arrived meanwhile (group commit: at idle each mark
//! is written at once, under load one commit marks many). A row stays known
//! (not re-read, not sent again) until its mark is written; a crash before
//! the mark publishes the event again, which relays deduplicate by id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, DynStore, OutboxItem};
use ark_relay_protocol::transport::NostrTransport;
use futures::stream::{FuturesUnordered, StreamExt};
use nostr::{Event, JsonUtil};
use tokio::sync::{watch, Notify};

/// Rows read from the store at once.
const READ_LIMIT: u32 = 256;

/// See the module docs.
pub struct OutboxPublisher {
    store: DynStore,
    transport: Arc<dyn NostrTransport>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Events in flight at once.
    pub parallelism: usize,
    /// Sleep between scans when nothing wakes it.
    pub idle: Duration,
}

/// Seconds until the next attempt after `attempts` failures: 1, 2, 4 … 300.
pub fn backoff_secs(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(9)).unwrap_or(512).min(300)
}

/// A publish attempt's end: the row, and whether a relay accepted it (its
/// delivered mark is still to be written).
struct Published {
    id: i64,
    delivered: bool,
}

/// An outbox row, parsed once, waiting for a publishing slot.
struct Ready {
    item: OutboxItem,
    /// `None`: the row does not hold a readable event (it is parked).
    event: Option<Event>,
}

impl Ready {
    fn recipient(&self) -> String {
        self.event
            .as_ref()
            .and_then(|e| e.tags.public_keys().next().map(|p| p.to_hex()))
            .unwrap_or_default()
    }
}

/// Puts `rows` in round-robin order by recipient, keeping each recipient's
/// own order (oldest first).
fn fair_order(rows: Vec<Ready>) -> VecDeque<Ready> {
    let mut by: HashMap<String, VecDeque<Ready>> = HashMap::new();
    let mut turn: Vec<String> = Vec::new();
    for r in rows {
        let k = r.recipient();
        let q = by.entry(k.clone()).or_default();
        if q.is_empty() {
            turn.push(k);
        }
        q.push_back(r);
    }
    let mut out = VecDeque::new();
    while !turn.is_empty() {
        turn.retain(|k| match by.get_mut(k).and_then(VecDeque::pop_front) {
            Some(r) => {
                out.push_back(r);
                true
            }
            None => false,
        });
    }
    out
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
            parallelism: 32,
            idle: Duration::from_millis(500),
        }
    }

    /// Due rows not already waiting or in flight, in fair order, and
    /// whether the read hit its limit (more may be due).
    async fn read_due(&self, known: &HashSet<i64>) -> (VecDeque<Ready>, bool) {
        let due = match self.store.due_outbox(self.clock.now(), READ_LIMIT).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read outbox");
                return (VecDeque::new(), false);
            }
        };
        let full = due.len() >= READ_LIMIT as usize;
        let rows = due
            .into_iter()
            .filter(|i| !known.contains(&i.id))
            .map(|item| Ready {
                event: Event::from_json(&item.event_json).ok(),
                item,
            })
            .collect();
        (fair_order(rows), full)
    }

    /// Runs until `stop` becomes true, then publishes what is due once more
    /// and waits for every event in flight.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let slots = self.parallelism.max(1);
        let mut waiting: VecDeque<Ready> = VecDeque::new();
        let mut known: HashSet<i64> = HashSet::new();
        let mut flying = FuturesUnordered::new();
        // Delivered rows whose mark is not written yet, and the one mark
        // transaction in flight.
        let mut marks: Vec<i64> = Vec::new();
        let mut marking = FuturesUnordered::new();
        let mut tick = tokio::time::interval(self.idle);
        let mut reread = true;
        // The last read filled its limit: more rows may be due.
        let mut more = false;
        loop {
            if *stop.borrow() {
                break;
            }
            if reread {
                // What has not started yet is read again, merged with new
                // rows in a fresh fair order (a row may have been delivered
                // by another publisher meanwhile).
                for r in waiting.drain(..) {
                    known.remove(&r.item.id);
                }
                let (rows, full) = self.read_due(&known).await;
                waiting = rows;
                more = full;
                known.extend(waiting.iter().map(|r| r.item.id));
                reread = false;
            }
            while flying.len() < slots {
                let Some(r) = waiting.pop_front() else { break };
                flying.push(self.publish(r));
            }
            if marking.is_empty() && !marks.is_empty() {
                marking.push(self.mark(std::mem::take(&mut marks)));
            }
            tokio::select! {
                Some(p) = flying.next(), if !flying.is_empty() => {
                    if p.delivered {
                        marks.push(p.id);
                    } else {
                        known.remove(&p.id);
                    }
                    reread = waiting.is_empty() && more;
                }
                Some(marked) = marking.next(), if !marking.is_empty() => {
                    for id in marked {
                        known.remove(&id);
                    }
                }
                _ = self.wake.notified() => reread = true,
                _ = tick.tick() => reread = true,
                _ = stop.changed() => {}
            }
        }
        // Last pass: what is due now, then every event in flight.
        for r in waiting.drain(..) {
            known.remove(&r.item.id);
        }
        let (mut last, _) = self.read_due(&known).await;
        loop {
            while flying.len() < slots {
                let Some(r) = last.pop_front() else { break };
                flying.push(self.publish(r));
            }
            match flying.next().await {
                Some(p) if p.delivered => marks.push(p.id),
                Some(_) => {}
                None => break,
            }
        }
        while marking.next().await.is_some() {}
        self.mark(marks).await;
    }

    /// Publishes what is due now, waits for every `OK`; returns how many
    /// events were attempted (tests and one-shot callers).
    pub async fn pass(&self) -> usize {
        let (due, _) = self.read_due(&HashSet::new()).await;
        let n = due.len();
        let delivered: Vec<i64> = futures::stream::iter(due)
            .map(|r| self.publish(r))
            .buffer_unordered(self.parallelism.max(1))
            .filter_map(|p| async move { p.delivered.then_some(p.id) })
            .collect()
            .await;
        self.mark(delivered).await;
        n
    }

    /// Writes the delivered marks of `ids` in one transaction; returns them.
    async fn mark(&self, ids: Vec<i64>) -> Vec<i64> {
        if ids.is_empty() {
            return ids;
        }
        if let Err(e) = self
            .store
            .mark_outbox_delivered_many(&ids, self.clock.now())
            .await
        {
            tracing::warn!(error = %e, count = ids.len(), "cannot mark outbox rows delivered; they will be sent again");
        }
        ids
    }

    /// Publishes one row. A failure is rescheduled here; a delivery's mark
    /// is left to the caller (written in batches).
    async fn publish(&self, ready: Ready) -> Published {
        let Ready { item, event } = ready;
        let Some(event) = event else {
            tracing::error!(id = item.id, "unreadable outbox event; parking it");
            let _ = self
                .store
                .mark_outbox_retry(item.id, self.clock.now().plus_secs(86_400), "unreadable")
                .await;
            return Published {
                id: item.id,
                delivered: false,
            };
        };
        match self.transport.publish(&event).await {
            Ok(report) => {
                tracing::debug!(id = item.id, kind = item.kind, relays = ?report.accepted, "published");
                Published {
                    id: item.id,
                    delivered: true,
                }
            }
            Err(e) => {
                let next = self.clock.now().plus_secs(backoff_secs(item.attempts));
                tracing::warn!(id = item.id, error = %e, "publish failed; retrying later");
                let _ = self
                    .store
                    .mark_outbox_retry(item.id, next, &e.to_string())
                    .await;
                Published {
                    id: item.id,
                    delivered: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(id: i64, to: &nostr::Keys) -> Ready {
        let event = nostr::EventBuilder::new(nostr::Kind::from(31341u16), "x")
            .tag(nostr::Tag::public_key(to.public_key()))
            .sign_with_keys(&nostr::Keys::generate())
            .expect("sign");
        Ready {
            item: OutboxItem {
                id,
                dedupe_key: id.to_string(),
                kind: 31341,
                event_json: event.as_json(),
                attempts: 0,
                created_at: ark_relay_core::UnixTime(0),
                delivered_at: None,
            },
            event: Some(event),
        }
    }

    #[test]
    fn recipients_take_turns() {
        let (flooder, honest) = (nostr::Keys::generate(), nostr::Keys::generate());
        let mut rows: Vec<Ready> = (0..100).map(|i| ready(i, &flooder)).collect();
        rows.push(ready(100, &honest));
        let order: Vec<i64> = fair_order(rows).iter().map(|r| r.item.id).collect();
        assert_eq!(&order[..3], &[0, 100, 1], "the honest event goes second");
        assert_eq!(order.len(), 101);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff_secs(0), 1);
        assert_eq!(super::backoff_secs(3), 8);
        assert_eq!(super::backoff_secs(50), 300);
    }
}
