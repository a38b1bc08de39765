//! The reconciliation runner: reads the ledger's unspent VTXOs page by page,
//! asks the Ark server's indexer for the same outpoints (and for the scripts
//! they pay to, to find VTXOs the ledger lacks), compares them with the pure
//! [`ark_relay_core::reconcile::compare`], confirms every difference once more
//! (so a ceremony finishing while the run reads is not reported), and records
//! the run with the disputed set ([`ReconcileStore::record_reconciliation`]).
//!
//! Run by `ark-relay reconcile` and, on the scheduler leader, by
//! [`ReconcileTask`] (a [`Periodic`]). It writes nothing but the run's row and
//! the disputed set; it never changes the ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::backends::ark::{ArkServer, ArkServerError, ServerVtxo, VtxoFilter, VtxoQuery};
use ark_relay_core::reconcile::{
    compare, Comparison, Difference, Dispute, ReconcileStatus, ReconcileStore, ReconciliationRun,
};
use ark_relay_core::{AssetId, Clock, DynStore, StoreError, Vtxo, VtxoId};
use async_trait::async_trait;
use bitcoin::ScriptBuf;
use serde::Serialize;

use crate::Periodic;

/// Ledger rows read per page.
const PAGE: u32 = 200;
/// Outpoints or scripts per `GetVtxos` call.
const CHUNK: usize = 100;

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// The Ark server failed.
    #[error("ark server: {0}")]
    Ark(#[source] ArkServerError),
}

/// How far a run is (for the command's progress line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Ledger VTXOs compared so far.
    pub checked: u64,
    /// Differences so far (before confirmation).
    pub differences: u64,
}

/// A finished run: its summary and every confirmed difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The summary as recorded.
    pub run: ReconciliationRun,
    /// Every confirmed difference.
    pub differences: Vec<Difference>,
    /// The VTXOs disputed by them.
    pub disputes: Vec<Dispute>,
}

/// A ledger asset id in the indexer's form (the Arkade id it travels under).
pub type AssetKey = Arc<dyn Fn(&AssetId) -> String + Send + Sync>;

/// The Arkade id string of a ledger asset as the relay's packets carry it.
pub fn arkade_key() -> AssetKey {
    Arc::new(|a: &AssetId| ark_relay_ark::asset::arkade_id(a).to_string())
}

/// See the module docs.
#[derive(Clone)]
pub struct Reconciler {
    store: DynStore,
    runs: Arc<dyn ReconcileStore>,
    ark: Arc<dyn ArkServer>,
    clock: Arc<dyn Clock>,
    asset_key: AssetKey,
}

fn ark(e: ArkServerError) -> ReconcileError {
    ReconcileError::Ark(e)
}

fn store(e: StoreError) -> ReconcileError {
    ReconcileError::Store(e)
}

impl Reconciler {
    /// A runner over the ledger `store`/`runs` and the server `ark`.
    pub fn new(
        store: DynStore,
        runs: Arc<dyn ReconcileStore>,
        ark: Arc<dyn ArkServer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            runs,
            ark,
            clock,
            asset_key: arkade_key(),
        }
    }

    /// Uses `key` to spell ledger asset ids as the indexer does.
    pub fn with_asset_key(mut self, key: AssetKey) -> Self {
        self.asset_key = key;
        self
    }

    async fn by_outpoints(&self, ids: &[VtxoId]) -> Result<Vec<ServerVtxo>, ReconcileError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let q = VtxoQuery::Outpoints(chunk.to_vec());
            out.extend(self.ark.get_vtxos(&q).await.map_err(ark)?);
        }
        Ok(out)
    }

    async fn unspent_at_scripts(
        &self,
        scripts: &BTreeSet<ScriptBuf>,
    ) -> Result<Vec<ServerVtxo>, ReconcileError> {
        let scripts: Vec<ScriptBuf> = scripts.iter().filter(|s| s.is_p2tr()).cloned().collect();
        let mut out = Vec::new();
        for chunk in scripts.chunks(CHUNK) {
            let q = VtxoQuery::Scripts {
                scripts: chunk.to_vec(),
                filter: VtxoFilter::Spendable,
            };
            out.extend(self.ark.get_vtxos(&q).await.map_err(ark)?);
        }
        Ok(out)
    }

    /// Reads the ledger's rows for `ids` now: (spendable, other).
    async fn ledger_rows(&self, ids: &[VtxoId]) -> Result<(Vec<Vtxo>, Vec<Vtxo>), ReconcileError> {
        let mut unspent = Vec::new();
        let mut other = Vec::new();
        for id in ids {
            if let Some(v) = self.store.vtxo(id).await.map_err(store)? {
                if v.status.is_spendable() {
                    unspent.push(v);
                } else {
                    other.push(v);
                }
            }
        }
        Ok((unspent, other))
    }

    /// Compares the ledger's and the server's current view of `ids`.
    async fn compare_now(&self, ids: &[VtxoId]) -> Result<Comparison, ReconcileError> {
        let (unspent, other) = self.ledger_rows(ids).await?;
        let server = self.by_outpoints(ids).await?;
        let key = self.key().await?;
        Ok(compare(&unspent, &other, &server, &*key))
    }

    /// The asset key of a run: the configured one, except that the control
    /// asset of a registered asset (issued on Ark by a genesis) travels under
    /// its own Arkade id, group 1 of its asset's genesis
    /// (`ark_relay_ark::asset::IdMap`).
    async fn key(&self) -> Result<AssetKey, ReconcileError> {
        let assets = self.store.assets().await.map_err(store)?;
        let ids = ark_relay_ark::asset::IdMap::for_assets(assets.iter().map(|a| &a.id));
        let base = self.asset_key.clone();
        Ok(Arc::new(move |a: &AssetId| {
            ids.control(a).map_or_else(|| base(a), |c| c.to_string())
        }))
    }

    /// One full comparison, recording nothing. `progress` is called after
    /// every page.
    pub async fn run(
        &self,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Outcome, ReconcileError> {
        let started_at = self.clock.now();
        let mut checked = 0u64;
        let mut in_flight = 0u64;
        let mut suspects: BTreeSet<VtxoId> = BTreeSet::new();
        let mut seen: BTreeSet<VtxoId> = BTreeSet::new();
        let mut scripts: BTreeSet<ScriptBuf> = BTreeSet::new();
        let mut after: Option<VtxoId> = None;
        let key = self.key().await?;
        loop {
            let page = self
                .runs
                .unspent_page(after.as_ref(), PAGE)
                .await
                .map_err(store)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let ids: Vec<VtxoId> = page.iter().map(|v| v.id).collect();
            let server = self.by_outpoints(&ids).await?;
            scripts.extend(server.iter().map(|s| s.script.clone()));
            // Only this page's outpoints: the script pass comes at the end.
            let c = compare(&page, &[], &server, &*key);
            checked += c.checked;
            in_flight += c.in_flight;
            suspects.extend(c.differences.iter().map(|d| *d.vtxo()));
            seen.extend(ids);
            progress(Progress {
                checked,
                differences: suspects.len() as u64,
            });
        }
        // VTXOs unspent at the server under the ledger's scripts that no page
        // listed (unknown to the ledger, spent in it, or created meanwhile).
        for s in self.unspent_at_scripts(&scripts).await? {
            if !seen.contains(&s.id) {
                suspects.insert(s.id);
            }
        }
        // Confirm each suspect against both sides as they are now.
        let suspects: Vec<VtxoId> = suspects.into_iter().collect();
        let mut differences = Vec::new();
        for chunk in suspects.chunks(CHUNK) {
            let c = self.compare_now(chunk).await?;
            let asked: BTreeSet<&VtxoId> = chunk.iter().collect();
            differences.extend(
                c.differences
                    .into_iter()
                    .filter(|d| asked.contains(d.vtxo())),
            );
        }
        let mut disputes: BTreeMap<VtxoId, Dispute> = BTreeMap::new();
        for d in differences.iter().filter_map(Difference::dispute) {
            disputes.entry(d.vtxo).or_insert(d);
        }
        let disputes: Vec<Dispute> = disputes.into_values().collect();
        let status = if differences.is_empty() {
            ReconcileStatus::Ok
        } else {
            ReconcileStatus::Degraded
        };
        let detail = serde_json::to_string(
            &differences
                .iter()
                .take(ReconciliationRun::DETAIL_LIMIT)
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        Ok(Outcome {
            run: ReconciliationRun {
                started_at,
                finished_at: self.clock.now(),
                checked,
                in_flight,
                differences: differences.len() as u64,
                disputed: disputes.len() as u64,
                status,
                detail,
            },
            differences,
            disputes,
        })
    }

    /// One full run, recorded with its disputed set; a run that fails is
    /// recorded as `failed` (the disputed set unchanged) and its error returned.
    pub async fn run_and_record(
        &self,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Outcome, ReconcileError> {
        let started_at = self.clock.now();
        match self.run(progress).await {
            Ok(outcome) => {
                self.runs
                    .record_reconciliation(&outcome.run, Some(&outcome.disputes))
                    .await
                    .map_err(store)?;
                Ok(outcome)
            }
            Err(e) => {
                let failed = ReconciliationRun {
                    started_at,
                    finished_at: self.clock.now(),
                    checked: 0,
                    in_flight: 0,
                    differences: 0,
                    disputed: 0,
                    status: ReconcileStatus::Failed,
                    detail: e.to_string(),
                };
                if let Err(w) = self.runs.record_reconciliation(&failed, None).await {
                    tracing::warn!(error = %w, "could not record a failed reconciliation");
                }
                Err(e)
            }
        }
    }
}

/// The scheduler's periodic reconciliation (leader only).
pub struct ReconcileTask {
    reconciler: Reconciler,
    every: Duration,
}

impl ReconcileTask {
    /// Runs `reconciler` every `every`.
    pub fn new(reconciler: Reconciler, every: Duration) -> Self {
        Self { reconciler, every }
    }
}

#[async_trait]
impl Periodic for ReconcileTask {
    fn name(&self) -> &'static str {
        "reconcile"
    }

    fn every(&self) -> Duration {
        self.every
    }

    #[tracing::instrument(name = "reconcile", skip_all)]
    async fn tick(&self) {
        match self.reconciler.run_and_record(&|_| {}).await {
            Ok(o) if o.run.status == ReconcileStatus::Ok => {
                tracing::info!(checked = o.run.checked, "ledger = arkd indexer");
            }
            Ok(o) => {
                for d in o.differences.iter().take(20) {
                    tracing::warn!(vtxo = %d.vtxo(), kind = d.kind(), "ledger ≠ arkd indexer");
                }
                tracing::warn!(
                    checked = o.run.checked,
                    differences = o.run.differences,
                    disputed = o.run.disputed,
                    "reconciliation found differences"
                );
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation did not complete"),
        }
    }
}
