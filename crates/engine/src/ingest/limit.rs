//! Per-author rate limits at ingest (code 9001): a fixed window per author
//! key. Within a window an author may have `events` events handled; the
//! first one over the limit is refused with one 31341 (9001), the others of
//! the same window are refused without an answer, so a flood costs one
//! notice per window, not one per event. Only authentic events count (the
//! limiter runs after the signature check), so nobody can spend another
//! key's allowance. Some keys may have their own count (a busy bot's key,
//! `[run] rate_limit_per_key`); a count of 0 exempts the key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ark_relay_core::PubKey;

/// A per-author limit: at most `events` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events handled per author per window.
    pub events: u32,
    /// The window.
    pub window: Duration,
}

/// What the limiter says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit, and the first time in this window: answer 9001.
    RefuseAndAnswer,
    /// Over the limit, already answered in this window.
    Refuse,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
    answered: bool,
}

/// Authors tracked before windows that have ended are pruned.
const PRUNE_ABOVE: usize = 100_000;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    /// Event counts of keys with their own limit (0: not limited).
    per_key: HashMap<PubKey, u32>,
    authors: Mutex<HashMap<PubKey, Window>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            per_key: HashMap::new(),
            authors: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the keys of `per_key` their own event count (0: not limited).
    pub(crate) fn with_overrides(mut self, per_key: HashMap<PubKey, u32>) -> Self {
        self.per_key = per_key;
        self
    }

    /// The limit that applies to `author`.
    pub(crate) fn limit_for(&self, author: &PubKey) -> RateLimit {
        match self.per_key.get(author) {
            Some(events) => RateLimit {
                events: *events,
                window: self.limit.window,
            },
            None => self.limit,
        }
    }

    /// Whether `author`'s events are being refused silently at `now` (over
    /// the limit and answered in the current window); counts nothing.
    pub(crate) fn refusing(&self, author: &PubKey, now: Instant) -> bool {
        let m = self
            .authors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(author)
            .is_some_and(|w| w.answered && now.duration_since(w.start) < self.limit.window)
    }

    /// Counts one event of `author` at `now`.
    pub(crate) fn check(&self, author: &PubKey, now: Instant) -> Verdict {
        let events = self.limit_for(author).events;
        if events == 0 {
            return Verdict::Allow;
        }
        let mut m = self
            .authors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() > PRUNE_ABOVE {
            let window = self.limit.window;
            m.retain(|_, w| now.duration_since(w.start) < window);
        }
        let w = m.entry(*author).or_insert(Window {
            start: now,
            count: 0,
            answered: false,
        });
        if now.duration_since(w.start) >= self.limit.window {
            *w = Window {
                start: now,
                count: 0,
                answered: false,
            };
        }
        if w.count < events {
            w.count += 1;
            return Verdict::Allow;
        }
        if w.answered {
            Verdict::Refuse
        } else {
            w.answered = true;
            Verdict::RefuseAndAnswer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PubKey {
        let keys = nostr::Keys::new(nostr::SecretKey::from_slice(&[b; 32]).expect("key"));
        ark_relay_protocol::pubkey_from_nostr(&keys.public_key()).expect("pubkey")
    }

    #[test]
    fn one_answer_per_window_and_authors_are_independent() {
        let l = Limiter::new(RateLimit {
            events: 3,
            window: Duration::from_secs(10),
        });
        let (a, b) = (key(1), key(2));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(&a, t0), Verdict::Allow);
        }
        assert!(!l.refusing(&a, t0));
        assert_eq!(l.check(&a, t0), Verdict::RefuseAndAnswer);
        assert!(l.refusing(&a, t0));
        assert_eq!(l.check(&a, t0 + Duration::from_secs(1)), Verdict::Refuse);
        assert_eq!(l.check(&a, t0 + Duration::from_secs(9)), Verdict::Refuse);
        assert_eq!(
            l.check(&b, t0),
            Verdict::Allow,
            "another key is not held back"
        );
        let t1 = t0 + Duration::from_secs(10);
        assert!(!l.refusing(&a, t1), "the window ended");
        assert_eq!(l.check(&a, t1), Verdict::Allow, "a new window");
        for _ in 0..2 {
            assert_eq!(l.check(&a, t1), Verdict::Allow);
        }
        assert_eq!(
            l.check(&a, t1),
            Verdict::RefuseAndAnswer,
            "answered again once"
        );
    }

    #[test]
    fn a_key_with_its_own_count_and_an_exempt_key() {
        let (bot, exempt, other) = (key(3), key(4), key(5));
        let l = Limiter::new(RateLimit {
            events: 2,
            window: Duration::from_secs(10),
        })
        .with_overrides(HashMap::from([(bot, 5), (exempt, 0)]));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.check(&bot, t0), Verdict::Allow);
        }
        assert_eq!(l.check(&bot, t0), Verdict::RefuseAndAnswer);
        assert_eq!(
            l.limit_for(&bot).events,
            5,
            "the 9001 names the key's own count"
        );
        for _ in 0..1_000 {
            assert_eq!(l.check(&exempt, t0), Verdict::Allow);
        }
        assert!(!l.refusing(&exempt, t0));
        for _ in 0..2 {
            assert_eq!(l.check(&other, t0), Verdict::Allow);
        }
        assert_eq!(l.check(&other, t0), Verdict::RefuseAndAnswer);
    }
}
