//! The transfer bench's instrumentation: durations per label, wrappers that
//! time the job handler, the arkd calls and the relay's Nostr publishes, and
//! the server-side MariaDB/Redis counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ark_relay_core::backends::ark::{
    ArkInfo, ArkServer, ArkServerError, ArkTxStream, IntentProof, ServerVtxo, SubmittedTx,
    VtxoQuery,
};
use ark_relay_core::Job;
use ark_relay_engine::handlers::{HandlerError, JobHandler, JobOutcome};
use ark_relay_nostr::PoolTransport;
use ark_relay_protocol::transport::{Cursor, NostrTransport, PublishReport, TransportError};
use async_trait::async_trait;
use bitcoin::{Psbt, Txid};
use tokio::sync::{mpsc, watch};

// ---------------------------------------------------------------------------
// Instrumentation: durations per label.

#[derive(Default)]
pub struct Timings(pub Mutex<BTreeMap<String, Vec<Duration>>>);

impl Timings {
    pub fn record(&self, label: impl Into<String>, d: Duration) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(label.into())
            .or_default()
            .push(d);
    }
    pub fn snapshot(&self) -> BTreeMap<String, Vec<Duration>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Times every job by kind (and outcome).
pub struct TimedHandler {
    pub inner: Arc<dyn JobHandler>,
    pub timings: Arc<Timings>,
}

#[async_trait]
impl JobHandler for TimedHandler {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        let t = Instant::now();
        let r = self.inner.handle(job, attempts).await;
        let tag = if r.is_ok() { "" } else { " (error)" };
        self.timings
            .record(format!("job {}{tag}", job.kind), t.elapsed());
        r
    }
}

/// Times every arkd call.
pub struct TimedArk {
    pub inner: Arc<dyn ArkServer>,
    pub timings: Arc<Timings>,
}

#[async_trait]
impl ArkServer for TimedArk {
    async fn get_info(&self) -> Result<ArkInfo, ArkServerError> {
        let t = Instant::now();
        let r = self.inner.get_info().await;
        self.timings.record("arkd GetInfo", t.elapsed());
        r
    }
    async fn submit_tx(
        &self,
        signed_ark_tx: &Psbt,
        checkpoint_txs: &[Psbt],
    ) -> Result<SubmittedTx, ArkServerError> {
        let t = Instant::now();
        let r = self.inner.submit_tx(signed_ark_tx, checkpoint_txs).await;
        self.timings.record("arkd SubmitTx", t.elapsed());
        r
    }
    async fn finalize_tx(
        &self,
        ark_txid: Txid,
        final_checkpoint_txs: &[Psbt],
    ) -> Result<(), ArkServerError> {
        let t = Instant::now();
        let r = self.inner.finalize_tx(ark_txid, final_checkpoint_txs).await;
        self.timings.record("arkd FinalizeTx", t.elapsed());
        r
    }
    async fn get_pending_tx(
        &self,
        intent: &IntentProof,
    ) -> Result<Vec<SubmittedTx>, ArkServerError> {
        let t = Instant::now();
        let r = self.inner.get_pending_tx(intent).await;
        self.timings.record("arkd GetPendingTx", t.elapsed());
        r
    }
    async fn get_vtxos(&self, query: &VtxoQuery) -> Result<Vec<ServerVtxo>, ArkServerError> {
        let t = Instant::now();
        let r = self.inner.get_vtxos(query).await;
        self.timings.record("arkd GetVtxos", t.elapsed());
        r
    }
    async fn subscribe_transactions(&self) -> Result<ArkTxStream, ArkServerError> {
        self.inner.subscribe_transactions().await
    }
}

/// Times the relay's Nostr publishes (by kind) and counts what it hears.
pub struct TimedTransport {
    pub inner: PoolTransport,
    pub timings: Arc<Timings>,
}

#[async_trait]
impl NostrTransport for TimedTransport {
    async fn publish(&self, event: &nostr::Event) -> Result<PublishReport, TransportError> {
        let t = Instant::now();
        let r = self.inner.publish(event).await;
        self.timings.record(
            format!("nostr publish {}", event.kind.as_u16()),
            t.elapsed(),
        );
        r
    }
    async fn pump(
        &self,
        sink: mpsc::Sender<nostr::Event>,
        cursor: Cursor,
        stop: watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        self.inner.pump(sink, cursor, stop).await
    }
    fn relay_urls(&self) -> Vec<String> {
        self.inner.relay_urls()
    }
}

// ---------------------------------------------------------------------------
// Server-side counters.

pub async fn mariadb_status(url: &str) -> Option<HashMap<String, u64>> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::AnyConnection::connect(url).await.ok()?;
    let rows = sqlx::query(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME IN ('QUESTIONS','COM_COMMIT','COM_SELECT','COM_INSERT', \
         'COM_UPDATE','COM_DELETE','COM_BEGIN','COM_ROLLBACK','INNODB_DATA_FSYNCS', \
         'INNODB_ROW_LOCK_WAITS')",
    )
    .fetch_all(&mut c)
    .await
    .ok()?;
    let _ = c.close().await;
    Some(
        rows.iter()
            .filter_map(|r| {
                let k: String = r.try_get(0).ok()?;
                let v: String = r.try_get(1).ok()?;
                Some((k.to_lowercase(), v.parse().ok()?))
            })
            .collect(),
    )
}

pub async fn redis_calls(url: &str) -> Option<u64> {
    let client = redis::Client::open(url).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .ok()?;
    Some(
        info.lines()
            .filter_map(|l| {
                let calls = l.split("calls=").nth(1)?;
                calls.split(',').next()?.parse::<u64>().ok()
            })
            .sum(),
    )
}

pub async fn redis_cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
    }
}
