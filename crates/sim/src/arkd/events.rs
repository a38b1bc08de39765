//! arkd's batch event broker (`internal/interface/grpc/handlers/broker.go`):
//! listeners of `GetEventStream` with topics; an event without topics goes to
//! every listener, an event with topics only to listeners subscribed to at
//! least one of them (lower-cased, trimmed). Heartbeats keep idle streams alive.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tonic::Status;

use ark_relay_proto::ark::v1 as pb;
use pb::get_event_stream_response::Event;

/// One published event and the topics it is routed by.
#[derive(Debug, Clone)]
pub struct Routed {
    /// Empty = everyone.
    pub topics: Vec<String>,
    /// The event.
    pub event: Event,
}

/// The broker.
#[derive(Debug)]
pub struct Broker {
    tx: broadcast::Sender<Arc<Routed>>,
    listeners: Arc<Mutex<HashMap<String, HashSet<String>>>>,
    heartbeat: Duration,
}

/// The stream type of `GetEventStream`.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::GetEventStreamResponse, Status>> + Send>>;

fn norm(t: &str) -> String {
    t.trim().to_lowercase()
}

struct ListenerGuard {
    id: String,
    listeners: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        lock(&self.listeners).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// A broker sending a heartbeat after `heartbeat` without events.
    pub fn new(heartbeat: Duration) -> Self {
        Self {
            tx: broadcast::channel(4096).0,
            listeners: Arc::new(Mutex::new(HashMap::new())),
            heartbeat,
        }
    }

    /// Publishes events, in order.
    pub fn publish(&self, events: impl IntoIterator<Item = Routed>) {
        for e in events {
            let _ = self.tx.send(Arc::new(e));
        }
    }

    /// How many streams are open.
    pub fn listener_count(&self) -> usize {
        lock(&self.listeners).len()
    }

    /// Changes a live listener's topics (`UpdateStreamTopics`).
    pub fn update(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
        overwrite: Option<&[String]>,
    ) -> Option<Vec<String>> {
        let mut l = lock(&self.listeners);
        let set = l.get_mut(id)?;
        if let Some(all) = overwrite {
            *set = all.iter().map(|t| norm(t)).collect();
        }
        for t in add {
            set.insert(norm(t));
        }
        for t in remove {
            set.remove(&norm(t));
        }
        let mut out: Vec<String> = set.iter().cloned().collect();
        out.sort();
        Some(out)
    }

    /// A new listener: `stream_started`, then its events and heartbeats.
    pub fn subscribe(&self, topics: &[String]) -> EventStream {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        let id = hex::encode(bytes);
        lock(&self.listeners).insert(id.clone(), topics.iter().map(|t| norm(t)).collect());
        let guard = ListenerGuard {
            id: id.clone(),
            listeners: self.listeners.clone(),
        };
        let listeners = self.listeners.clone();
        let started = pb::GetEventStreamResponse {
            event: Some(Event::StreamStarted(pb::StreamStartedEvent {
                id: id.clone(),
            })),
        };
        let events = BroadcastStream::new(self.tx.subscribe()).filter_map(move |item| {
            let _keep = &guard;
            let out = item.ok().and_then(|routed| {
                let wanted = routed.topics.is_empty() || {
                    let l = lock(&listeners);
                    let mine = l.get(&id);
                    routed
                        .topics
                        .iter()
                        .any(|t| mine.is_some_and(|m| m.contains(&norm(t))))
                };
                wanted.then(|| {
                    Ok(pb::GetEventStreamResponse {
                        event: Some(routed.event.clone()),
                    })
                })
            });
            futures::future::ready(out)
        });
        let period = self.heartbeat;
        let heartbeats = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(period).await;
            Some((
                Ok(pb::GetEventStreamResponse {
                    event: Some(Event::Heartbeat(pb::Heartbeat {})),
                }),
                (),
            ))
        });
        Box::pin(
            futures::stream::iter([Ok(started)]).chain(futures::stream::select(events, heartbeats)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_tx(topic: &str) -> Routed {
        Routed {
            topics: vec![topic.to_owned()],
            event: Event::TreeTx(pb::TreeTxEvent {
                id: topic.to_owned(),
                ..Default::default()
            }),
        }
    }

    async fn next_id(s: &mut EventStream) -> String {
        let item = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .expect("ok");
        match item.event {
            Some(Event::StreamStarted(e)) => format!("started:{}", !e.id.is_empty()),
            Some(Event::TreeTx(e)) => e.id,
            Some(Event::BatchStarted(e)) => e.id,
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn topics_route_events_exactly_and_untagged_events_reach_everyone() {
        let broker = Broker::new(Duration::from_secs(60));
        let mut a = broker.subscribe(&["Alice ".to_owned()]);
        let mut b = broker.subscribe(&["bob".to_owned()]);
        assert_eq!(broker.listener_count(), 2);
        assert_eq!(next_id(&mut a).await, "started:true");
        assert_eq!(next_id(&mut b).await, "started:true");
        broker.publish([
            tree_tx("alice"),
            tree_tx("bob"),
            Routed {
                topics: Vec::new(),
                event: Event::BatchStarted(pb::BatchStartedEvent {
                    id: "all".into(),
                    ..Default::default()
                }),
            },
        ]);
        assert_eq!(next_id(&mut a).await, "alice");
        assert_eq!(next_id(&mut a).await, "all");
        assert_eq!(next_id(&mut b).await, "bob");
        assert_eq!(next_id(&mut b).await, "all");
        drop(a);
        assert_eq!(broker.listener_count(), 1, "a dropped stream unregisters");
    }
}
