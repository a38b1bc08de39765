//! Silent refusals (a rate-limited author's events after its one 9001) are
//! recorded in batches: one write at a time, each taking every refusal
//! queued meanwhile (group commit), so a flood costs one transaction per
//! batch instead of one per event, and its records wait here rather than in
//! front of other authors' writes.

use std::sync::{Mutex, PoisonError};

use ark_relay_core::{DynStore, ProcessedEvent, Recorded, StoreError};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<Recorded, String>>;

/// See the module docs.
pub(crate) struct Refusals {
    store: DynStore,
    queued: Mutex<Vec<(ProcessedEvent, Reply)>>,
    writer: tokio::sync::Mutex<()>,
}

impl Refusals {
    pub(crate) fn new(store: DynStore) -> Self {
        Self {
            store,
            queued: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Records `event` (with its refusal code) once; `Duplicate` if its id
    /// was seen. Written in the next batch.
    pub(crate) async fn record(&self, event: ProcessedEvent) -> Result<Recorded, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.lock().push((event, tx));
        {
            let _writer = self.writer.lock().await;
            let batch = std::mem::take(&mut *self.lock());
            if !batch.is_empty() {
                let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match self.store.record_events(&events).await {
                    Ok(recorded) => {
                        for (r, reply) in recorded.into_iter().zip(replies) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(msg.clone()));
                        }
                    }
                }
            }
        }
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(msg)) => Err(StoreError::Transient(msg.into())),
            // The batch's writer was cancelled (shutdown): re-queried later.
            Err(_) => Err(StoreError::Transient("refusal batch cancelled".into())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ProcessedEvent, Reply)>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
