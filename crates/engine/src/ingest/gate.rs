//! [`QueueGate`]: back-pressure between ingest and the job queue (issue #18,
//! worker fairness). Ingest takes the next event from its per-author fair
//! scheduler ([`super::fair::FairIngest`]) only while the job queue holds
//! fewer than `high_water` jobs (waiting or in flight). So a key's burst of
//! valid events waits in its own bounded per-author queue at ingest, where
//! other keys' events overtake it round-robin, instead of in the shared FIFO
//! job queue in front of everyone: another key's next job waits behind at
//! most `high_water` jobs, whatever one key has sent.
//!
//! The depth is asked of the queue (Redis `XLEN` in scale-out, so workers in
//! other processes count) only when an estimate — the last depth read plus
//! the jobs ingest queued since ([`QueueGate::queued`]; refused events,
//! such as a junk flood's, queue nothing and cost no read) — passes half the
//! mark, and then at most once
//! per [`FRESH`] while it stays below the mark; otherwise an event is
//! admitted without a round trip (a read per event cost the transfer bench
//! 19 Redis commands per transfer and slowed ingest). While the queue is at
//! the mark, the gate re-reads the depth every [`POLL`] (only then: nothing
//! polls on the idle hot path). A queue error admits the event (ingest's own
//! push then fails or succeeds as before; the gate never stalls ingest on
//! its own).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ark_relay_core::DynQueue;
use tokio::sync::watch;

/// How often a saturated gate re-reads the queue depth.
pub const POLL: Duration = Duration::from_millis(5);

/// How long a depth read below the mark is trusted.
pub const FRESH: Duration = Duration::from_millis(5);

/// Default mark: jobs waiting or in flight before ingest holds back.
pub const DEFAULT_HIGH_WATER: u64 = 128;

/// The gate's view of the queue.
#[derive(Debug, Default)]
struct View {
    /// Last depth read plus the jobs queued since (an over-estimate:
    /// finished jobs are not subtracted until the next read).
    estimate: u64,
    /// When the depth was last read.
    read_at: Option<Instant>,
}

/// See the module docs.
pub struct QueueGate {
    queue: DynQueue,
    high_water: u64,
    view: Mutex<View>,
    stop: watch::Receiver<bool>,
}

impl QueueGate {
    /// A gate holding ingest back while `queue` holds `high_water` jobs or
    /// more; once `stop` is true it admits everything (the drain at shutdown).
    pub fn new(queue: DynQueue, high_water: u64, stop: watch::Receiver<bool>) -> Self {
        Self {
            queue,
            high_water: high_water.max(1),
            view: Mutex::new(View::default()),
            stop,
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one job ingest has queued since the last depth read.
    pub fn queued(&self) {
        self.view().estimate += 1;
    }

    /// Waits until the queue has room for one more job (see the module docs).
    pub async fn admit(&self) {
        let mut stop = self.stop.clone();
        loop {
            {
                let v = self.view();
                let fresh = v.read_at.is_some_and(|t| t.elapsed() < FRESH);
                if v.estimate < self.high_water / 2 || (fresh && v.estimate < self.high_water) {
                    return;
                }
            }
            if *stop.borrow() {
                return;
            }
            match self.queue.depth().await {
                Ok(depth) => {
                    let mut v = self.view();
                    v.estimate = depth;
                    v.read_at = Some(Instant::now());
                    if depth < self.high_water {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "queue depth unknown; admitting");
                    return;
                }
            }
            tracing::trace!(high_water = self.high_water, "job queue full; ingest waits");
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ark_relay_core::{Job, JobQueue, QueueConfig};
    use ark_relay_queue::MemoryQueue;

    use super::*;

    fn job(n: usize) -> Job {
        Job {
            key: format!("k{n}"),
            kind: "intent".into(),
            payload: String::new(),
        }
    }

    #[tokio::test]
    async fn ingest_waits_while_the_queue_is_full_and_goes_on_when_a_job_ends() {
        let queue = Arc::new(MemoryQueue::new(QueueConfig::default()));
        let (_stop_tx, stop) = watch::channel(false);
        let gate = QueueGate::new(queue.clone(), 4, stop);
        for n in 0..4 {
            gate.admit().await;
            queue.push(&job(n)).await.expect("push");
            gate.queued();
        }
        let blocked = tokio::time::timeout(Duration::from_millis(50), gate.admit()).await;
        assert!(blocked.is_err(), "a fifth job waits while 4 are queued");
        let d = queue
            .pop("w", Duration::from_secs(1))
            .await
            .expect("pop")
            .expect("a job");
        queue.ack(&d).await.expect("ack");
        tokio::time::timeout(Duration::from_secs(2), gate.admit())
            .await
            .expect("admitted once a job has ended");
    }

    #[tokio::test]
    async fn a_stop_opens_the_gate() {
        let queue = Arc::new(MemoryQueue::new(QueueConfig::default()));
        let (stop_tx, stop) = watch::channel(false);
        let gate = QueueGate::new(queue.clone(), 2, stop);
        for n in 0..2 {
            gate.admit().await;
            queue.push(&job(n)).await.expect("push");
            gate.queued();
        }
        let waiting = gate.admit();
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(30), &mut waiting)
                .await
                .is_err()
        );
        stop_tx.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("admitted after the stop");
    }
}
