//! An in-memory Nostr event store that keeps *every* valid event, including
//! addressable events without a `d` tag, with no replacement.
//!
//! Why hand-written: rust-nostr's `MemoryDatabase` rejects d-less addressable
//! events (`error: unknown`), but the PRD's own examples publish 31510 intents
//! without `d`, and the relay must accept them (DESIGN.md §4). The relay never
//! relies on Nostr storage for correctness, so keeping everything (bounded by
//! `max_events`, oldest evicted first) is the honest behaviour for a dev relay.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use nostr::filter::MatchEventOptions;
use nostr::util::BoxedFuture;
use nostr::{Event, EventId, Filter};
use nostr_database::{
    Backend, DatabaseError, DatabaseEventStatus, Events, NostrDatabase, RejectedReason,
    SaveEventStatus,
};

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Event>,
    ids: HashSet<EventId>,
}

/// See the module docs.
#[derive(Debug)]
pub struct KeepAllDatabase {
    inner: Mutex<Inner>,
    max_events: usize,
}

impl KeepAllDatabase {
    /// A store holding at most `max_events` events.
    pub fn new(max_events: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_events: max_events.max(1),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, DatabaseError> {
        self.inner
            .lock()
            .map_err(|_| DatabaseError::Backend("store mutex poisoned".into()))
    }

    fn matching(&self, filter: &Filter) -> Result<Vec<Event>, DatabaseError> {
        let inner = self.lock()?;
        let opts = MatchEventOptions::new();
        let mut out: Vec<Event> = inner
            .events
            .iter()
            .rev()
            .filter(|e| filter.match_event(e, opts))
            .cloned()
            .collect();
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        Ok(out)
    }
}

impl NostrDatabase for KeepAllDatabase {
    fn backend(&self) -> Backend {
        Backend::Memory
    }

    fn save_event<'a>(
        &'a self,
        event: &'a Event,
    ) -> BoxedFuture<'a, Result<SaveEventStatus, DatabaseError>> {
        Box::pin(async move {
            if event.kind.is_ephemeral() {
                return Ok(SaveEventStatus::Rejected(RejectedReason::Ephemeral));
            }
            let mut inner = self.lock()?;
            if !inner.ids.insert(event.id) {
                return Ok(SaveEventStatus::Rejected(RejectedReason::Duplicate));
            }
            inner.events.push_back(event.clone());
            while inner.events.len() > self.max_events {
                if let Some(old) = inner.events.pop_front() {
                    inner.ids.remove(&old.id);
                }
            }
            Ok(SaveEventStatus::Success)
        })
    }

    fn check_id<'a>(
        &'a self,
        event_id: &'a EventId,
    ) -> BoxedFuture<'a, Result<DatabaseEventStatus, DatabaseError>> {
        Box::pin(async move {
            Ok(if self.lock()?.ids.contains(event_id) {
                DatabaseEventStatus::Saved
            } else {
                DatabaseEventStatus::NotExistent
            })
        })
    }

    fn event_by_id<'a>(
        &'a self,
        event_id: &'a EventId,
    ) -> BoxedFuture<'a, Result<Option<Event>, DatabaseError>> {
        Box::pin(async move {
            Ok(self
                .lock()?
                .events
                .iter()
                .find(|e| &e.id == event_id)
                .cloned())
        })
    }

    fn count(&self, filter: Filter) -> BoxedFuture<'_, Result<usize, DatabaseError>> {
        Box::pin(async move { Ok(self.matching(&filter)?.len()) })
    }

    fn query(&self, filter: Filter) -> BoxedFuture<'_, Result<Events, DatabaseError>> {
        Box::pin(async move {
            let mut events = Events::new(&filter);
            for e in self.matching(&filter)? {
                events.insert(e);
            }
            Ok(events)
        })
    }

    fn delete(&self, filter: Filter) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        Box::pin(async move {
            let opts = MatchEventOptions::new();
            let mut inner = self.lock()?;
            let Inner { events, ids } = &mut *inner;
            events.retain(|e| {
                let keep = !filter.match_event(e, opts);
                if !keep {
                    ids.remove(&e.id);
                }
                keep
            });
            Ok(())
        })
    }

    fn wipe(&self) -> BoxedFuture<'_, Result<(), DatabaseError>> {
        Box::pin(async move {
            let mut inner = self.lock()?;
            inner.events.clear();
            inner.ids.clear();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Kind, Tag};

    use super::*;

    #[tokio::test]
    async fn keeps_d_less_addressable_events_without_replacing() {
        let db = KeepAllDatabase::new(10);
        let keys = Keys::generate();
        let a = EventBuilder::new(Kind::from(31510u16), "a")
            .sign_with_keys(&keys)
            .expect("sign");
        let b = EventBuilder::new(Kind::from(31510u16), "b")
            .sign_with_keys(&keys)
            .expect("sign");
        assert!(db.save_event(&a).await.expect("save").is_success());
        assert!(db.save_event(&b).await.expect("save").is_success());
        assert!(
            !db.save_event(&b).await.expect("save").is_success(),
            "duplicate"
        );
        let all = db
            .query(Filter::new().kind(Kind::from(31510u16)))
            .await
            .expect("query");
        assert_eq!(all.len(), 2);
        let relay = Keys::generate().public_key();
        let tagged = EventBuilder::new(Kind::from(31510u16), "c")
            .tag(Tag::public_key(relay))
            .sign_with_keys(&keys)
            .expect("sign");
        db.save_event(&tagged).await.expect("save");
        let by_p = db.count(Filter::new().pubkey(relay)).await.expect("count");
        assert_eq!(by_p, 1);
    }

    #[tokio::test]
    async fn evicts_oldest_beyond_capacity() {
        let db = KeepAllDatabase::new(2);
        let keys = Keys::generate();
        let mut ids = vec![];
        for i in 0..3 {
            let e = EventBuilder::text_note(format!("{i}"))
                .sign_with_keys(&keys)
                .expect("sign");
            ids.push(e.id);
            db.save_event(&e).await.expect("save");
        }
        assert_eq!(
            db.check_id(&ids[0]).await.expect("check"),
            DatabaseEventStatus::NotExistent
        );
        assert_eq!(
            db.check_id(&ids[2]).await.expect("check"),
            DatabaseEventStatus::Saved
        );
    }
}
