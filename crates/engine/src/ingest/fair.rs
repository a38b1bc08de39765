//! [`FairIngest`]: per-author fair scheduling of received events. Events
//! from the transport are sorted into one bounded queue per author key and
//! handed to ingest round-robin, one author at a time, so a key with a
//! backlog of thousands of events delays another key's next event by at
//! most one event per waiting author, not by its whole backlog.
//!
//! Bounds and back-pressure: one author holds at most `per_author` waiting
//! events; more are dropped here (not handled, not remembered, so the
//! transport's next catch-up re-query brings them back — by then the author
//! is usually rate-limited). All authors together hold at most `capacity`;
//! when full, no more is read from the transport's channel, whose own bound
//! then holds the transport back.

use std::collections::{HashMap, VecDeque};

use nostr::{Event, PublicKey};
use tokio::sync::mpsc;

/// Waiting events per author before new ones are dropped.
pub const PER_AUTHOR: usize = 512;
/// Waiting events in all.
pub const CAPACITY: usize = 16_384;

/// See the module docs.
pub struct FairIngest {
    rx: mpsc::Receiver<Event>,
    open: bool,
    queues: HashMap<PublicKey, VecDeque<Event>>,
    /// Authors with waiting events, in turn order.
    ring: VecDeque<PublicKey>,
    len: usize,
    per_author: usize,
    capacity: usize,
    dropped: u64,
}

impl FairIngest {
    /// Schedules the events of `rx` with the default bounds.
    pub fn new(rx: mpsc::Receiver<Event>) -> Self {
        Self::with_bounds(rx, PER_AUTHOR, CAPACITY)
    }

    /// Schedules the events of `rx` with the given bounds.
    pub fn with_bounds(rx: mpsc::Receiver<Event>, per_author: usize, capacity: usize) -> Self {
        Self {
            rx,
            open: true,
            queues: HashMap::new(),
            ring: VecDeque::new(),
            len: 0,
            per_author: per_author.max(1),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Events dropped because their author's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn push(&mut self, event: Event) {
        let author = event.pubkey;
        let q = self.queues.entry(author).or_default();
        if q.len() >= self.per_author {
            self.dropped += 1;
            tracing::debug!(author = %author, event = %event.id, "author's ingest queue full; dropped until the next catch-up");
            return;
        }
        if q.is_empty() {
            self.ring.push_back(author);
        }
        q.push_back(event);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<Event> {
        let author = self.ring.pop_front()?;
        let q = self.queues.get_mut(&author)?;
        let event = q.pop_front();
        if q.is_empty() {
            self.queues.remove(&author);
        } else {
            self.ring.push_back(author);
        }
        if event.is_some() {
            self.len -= 1;
        }
        event
    }

    /// Moves what the transport has delivered so far into the queues.
    fn drain(&mut self) {
        while self.open && self.len < self.capacity {
            match self.rx.try_recv() {
                Ok(e) => self.push(e),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => self.open = false,
            }
        }
    }

    /// The next event in fair order; `None` once the transport has stopped
    /// and everything received has been handed out.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            self.drain();
            if let Some(e) = self.pop() {
                return Some(e);
            }
            if !self.open {
                return None;
            }
            match self.rx.recv().await {
                Some(e) => self.push(e),
                None => self.open = false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Kind};

    use super::*;

    fn ev(keys: &Keys, n: usize) -> Event {
        EventBuilder::new(Kind::from(31510u16), n.to_string())
            .sign_with_keys(keys)
            .expect("sign")
    }

    #[tokio::test]
    async fn a_backlog_does_not_delay_another_author() {
        let (tx, rx) = mpsc::channel(4096);
        let (flood, honest) = (Keys::generate(), Keys::generate());
        for i in 0..1_000 {
            tx.send(ev(&flood, i)).await.expect("send");
        }
        tx.send(ev(&honest, 0)).await.expect("send");
        drop(tx);
        let mut fair = FairIngest::with_bounds(rx, 600, 10_000);
        let mut order = Vec::new();
        while let Some(e) = fair.next().await {
            order.push(e.pubkey);
        }
        let pos = order.iter().position(|k| *k == honest.public_key());
        assert_eq!(pos, Some(1), "the honest event comes second, not last");
        assert_eq!(order.len(), 601, "the flood is cut at its per-author bound");
        assert_eq!(fair.dropped(), 400);
    }
}
