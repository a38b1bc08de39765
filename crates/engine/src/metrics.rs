//! The relay's Prometheus metrics (PRD §10.5.4): names, labels and one-line
//! recording helpers over the [`metrics`] facade.
//!
//! This module only *records*; the binary installs the recorder (the
//! Prometheus exporter) and serves `GET /metrics`. Without a recorder every
//! call here is a no-op, so tests and tools pay nothing.
//!
//! | series | type | labels | meaning |
//! |---|---|---|---|
//! | `ark_relay_intents_total` | counter | `type`, `outcome` | intents finished by the ceremony; `outcome` = `completed` or the error code (`2001`, `5001`, …) |
//! | `ark_relay_events_ingested_total` | counter | `kind`, `outcome` | every event ingest looked at: `accepted`, `duplicate`, `ignored` or the rejection code |
//! | `ark_relay_ceremony_step_seconds` | histogram | `step` | `intent_to_challenge`, `challenge_to_response`, `submit`, `finalize`, `end_to_end` |
//! | `ark_relay_queue_depth` | gauge | | jobs waiting or in flight |
//! | `ark_relay_inventory_vtxos` | gauge | | the relay's free uncoloured VTXOs |
//! | `ark_relay_inventory_replenished_vtxos_total` | counter | | VTXOs added by replenishment |
//! | `ark_relay_fee_rate_sat_vb` | gauge | | the fee rate the inventory monitor last saw (max of its estimators) |
//! | `ark_relay_settlements_total` | counter | `outcome` (`success`/`failure`) | L1 settlement attempts |
//! | `ark_relay_backend_breaker_state` | gauge | `backend` | 0 closed, 1 half-open, 2 open |
//! | `ark_relay_signatures_total` | counter | `what` | signatures the relay made (see [`crate::audit`]) |
//! | `ark_relay_rounds_total` | counter | `outcome` (`finalized`/`failed`) | Ark batch rounds the relay took part in (one participation each) |
//! | `ark_relay_round_jobs_total` | counter | `kind`, `outcome` (`done`/`retry`/`failed`) | round jobs ended: renewals (`inventory_renew`, `delegated_renewal`), boarding, recoveries |
//!
//! Label values are bounded sets (types, codes, step names, back-end names):
//! never a key, an id or a free-form message.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{DynQueue, ErrorCode, UnixTime};

/// Metric names.
pub mod name {
    /// Counter `{type, outcome}`.
    pub const INTENTS: &str = "ark_relay_intents_total";
    /// Counter `{kind, outcome}`.
    pub const EVENTS_INGESTED: &str = "ark_relay_events_ingested_total";
    /// Histogram `{step}`, seconds.
    pub const STEP_SECONDS: &str = "ark_relay_ceremony_step_seconds";
    /// Gauge.
    pub const QUEUE_DEPTH: &str = "ark_relay_queue_depth";
    /// Gauge.
    pub const INVENTORY_LEVEL: &str = "ark_relay_inventory_vtxos";
    /// Counter.
    pub const INVENTORY_REPLENISHED: &str = "ark_relay_inventory_replenished_vtxos_total";
    /// Gauge, sat/vB.
    pub const FEE_RATE: &str = "ark_relay_fee_rate_sat_vb";
    /// Counter `{outcome}`: `success` or `failure`.
    pub const SETTLEMENTS: &str = "ark_relay_settlements_total";
    /// Gauge `{backend}`: 0 closed, 1 half-open, 2 open.
    pub const BREAKER_STATE: &str = "ark_relay_backend_breaker_state";
    /// Counter `{what}`.
    pub const SIGNATURES: &str = "ark_relay_signatures_total";
    /// Counter `{outcome}`: `finalized` or `failed`.
    pub const ROUNDS: &str = "ark_relay_rounds_total";
    /// Counter `{kind, outcome}`: `done`, `retry` or `failed`.
    pub const ROUND_JOBS: &str = "ark_relay_round_jobs_total";
}

/// Values of the `step` label of [`name::STEP_SECONDS`].
pub mod step {
    /// From the worker taking the intent to the 31511 step 1 being queued.
    pub const INTENT_TO_CHALLENGE: &str = "intent_to_challenge";
    /// From a 31511 being queued to the wallet's 31512 being handled
    /// (second resolution: measured from the stored session).
    pub const CHALLENGE_TO_RESPONSE: &str = "challenge_to_response";
    /// arkd `SubmitTx`.
    pub const SUBMIT: &str = "submit";
    /// arkd `FinalizeTx`.
    pub const FINALIZE: &str = "finalize";
    /// From the intent's `created_at` to the ledger commit (second resolution
    /// at the start, as Nostr timestamps are whole seconds).
    pub const END_TO_END: &str = "end_to_end";
}

/// Histogram buckets (seconds) for [`name::STEP_SECONDS`], for the exporter.
pub const STEP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Describes every series (help text), once, after the recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        name::INTENTS,
        "Intents finished, by type and outcome (completed or error code)"
    );
    describe_counter!(
        name::EVENTS_INGESTED,
        "Nostr events seen by ingest, by kind and outcome"
    );
    describe_histogram!(
        name::STEP_SECONDS,
        Unit::Seconds,
        "Latency of each signing-ceremony step"
    );
    describe_gauge!(name::QUEUE_DEPTH, "Jobs waiting or in flight");
    describe_gauge!(
        name::INVENTORY_LEVEL,
        "Relay-owned free uncoloured VTXOs (hot inventory)"
    );
    describe_counter!(
        name::INVENTORY_REPLENISHED,
        "VTXOs added to the inventory by replenishment"
    );
    describe_gauge!(
        name::FEE_RATE,
        "Fee rate last seen by the inventory monitor (max of the estimators), sat/vB"
    );
    describe_counter!(
        name::SETTLEMENTS,
        "L1 settlement attempts by outcome (success, failure)"
    );
    describe_gauge!(
        name::BREAKER_STATE,
        "Circuit breaker per back end: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        name::SIGNATURES,
        "Signatures made with the relay key, by what was signed"
    );
    describe_counter!(
        name::ROUNDS,
        "Ark batch rounds joined, by outcome (finalized, failed)"
    );
    describe_counter!(
        name::ROUND_JOBS,
        "Round jobs ended (renewals, boarding, recoveries), by kind and outcome"
    );
}

/// A participation in an Ark round ended.
pub fn round(finalized: bool) {
    let outcome = if finalized { "finalized" } else { "failed" };
    metrics::counter!(name::ROUNDS, "outcome" => outcome).increment(1);
}

/// A round job of `kind` (a bounded set: `JobKind::name`) ended with
/// `outcome` (`done`, `retry`, `failed`).
pub fn round_job(kind: &'static str, outcome: &'static str) {
    metrics::counter!(name::ROUND_JOBS, "kind" => kind, "outcome" => outcome).increment(1);
}

/// An intent finished with `code`, or completed when `None`.
pub fn intent_outcome(intent_type: &str, code: Option<ErrorCode>) {
    let outcome = match code {
        None => "completed".to_owned(),
        Some(c) => c.code().to_string(),
    };
    metrics::counter!(name::INTENTS, "type" => intent_type.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Ingest looked at an event of `kind` with `outcome` (`accepted`,
/// `duplicate`, `ignored` or the rejection's error code; see
/// [`crate::ingest::IngestOutcome::label`]).
pub fn event_ingested(kind: u16, outcome: String) {
    metrics::counter!(name::EVENTS_INGESTED, "kind" => kind.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A ceremony step took `took`.
pub fn step(step: &'static str, took: Duration) {
    metrics::histogram!(name::STEP_SECONDS, "step" => step).record(took.as_secs_f64());
}

/// A ceremony step that began at `since` (Unix seconds) ends now.
pub fn step_since(step: &'static str, since: UnixTime) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let since_ms = u128::try_from(since.0.max(0)).unwrap_or(0) * 1000;
    let ms = u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(u64::MAX);
    self::step(step, Duration::from_millis(ms));
}

/// Label value of a settlement outcome.
pub const SETTLEMENT_SUCCESS: &str = "success";
/// Label value of a settlement outcome.
pub const SETTLEMENT_FAILURE: &str = "failure";

/// One L1 settlement attempt ended (for the settlement coordinator).
pub fn settlement(success: bool) {
    let outcome = if success {
        SETTLEMENT_SUCCESS
    } else {
        SETTLEMENT_FAILURE
    };
    metrics::counter!(name::SETTLEMENTS, "outcome" => outcome).increment(1);
}

/// The hot inventory holds `level` VTXOs.
pub fn inventory_level(level: u64) {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    metrics::gauge!(name::INVENTORY_LEVEL).set(level as f64);
}

/// Replenishment added `count` VTXOs.
pub fn inventory_replenished(count: u64) {
    metrics::counter!(name::INVENTORY_REPLENISHED).increment(count);
}

/// The fee rate the inventory monitor saw.
pub fn fee_rate(sat_vb: u64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(name::FEE_RATE).set(sat_vb as f64);
}

/// The job queue holds `depth` jobs.
pub fn queue_depth(depth: u64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(name::QUEUE_DEPTH).set(depth as f64);
}

/// A circuit breaker's state by its name (`closed`, `half_open`, `open`).
pub fn breaker_state(backend: &str, state: &str) {
    let v = match state {
        "closed" => 0.0,
        "half_open" | "half-open" => 1.0,
        _ => 2.0,
    };
    metrics::gauge!(name::BREAKER_STATE, "backend" => backend.to_owned()).set(v);
}

/// The relay signed something (called by [`crate::audit`]).
pub fn signed(what: &'static str, count: u64) {
    metrics::counter!(name::SIGNATURES, "what" => what).increment(count);
}

/// Samples what is cheaper to poll than to count: the queue depth. Run it as
/// a [`Periodic`](crate::Periodic) (a few seconds) or call [`Sampler::sample`]
/// before rendering.
pub struct Sampler {
    queue: DynQueue,
    every: Duration,
}

impl Sampler {
    /// A sampler of `queue` every `every`.
    pub fn new(queue: DynQueue, every: Duration) -> Arc<Self> {
        Arc::new(Self { queue, every })
    }

    /// Reads the gauges now.
    pub async fn sample(&self) {
        match self.queue.depth().await {
            Ok(d) => queue_depth(d),
            Err(e) => tracing::debug!(error = %e, "queue depth not sampled"),
        }
    }
}

#[async_trait::async_trait]
impl crate::Periodic for Sampler {
    fn name(&self) -> &'static str {
        "metrics-sampler"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn tick(&self) {
        self.sample().await;
    }
}
