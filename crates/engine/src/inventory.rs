//! The VTXO inventory monitor (PRD §10.3): a [`Periodic`](crate::Periodic)
//! task (every 5 minutes by default) that reads the hot inventory level,
//! surveys the fee estimators (max of their answers), applies the pure
//! [`decide`] table and, when it says so, replenishes: records the batch,
//! asks the Ark server for new VTXOs to the relay key, puts them in the
//! ledger as `available`, and marks the batch confirmed.
//!
//! Level changes and replenishments are published on the bus channel
//! [`CHANNEL`] (`inventory:updates`, under the bus's prefix on Redis), and the
//! level and fee rate are exported as metrics.
//!
//! A run that fails (estimators down, arkd refusing) changes nothing but the
//! batch row (`failed`) and is simply tried again at the next tick. It must
//! run in one process at a time (the scheduler role's leader): two monitors
//! would each top the level up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::{ArkServer, ArkServerError, VtxoFilter, VtxoQuery};
use ark_relay_core::backends::fees::{max_fee_rate, FeeEstimator};
use ark_relay_core::inventory::{
    decide, BatchStatus, Decision, InventoryBatch, InventoryPolicy, InventoryStore, LevelState,
    VtxoProvisioner,
};
use ark_relay_core::{
    Clock, DynBus, DynStore, NewVtxo, PubKey, Sats, StoreError, UnixTime, VtxoStatus,
};
use serde::Serialize;

/// The bus channel of inventory updates.
pub const CHANNEL: &str = "inventory:updates";

/// VTXOs inserted into the ledger per store call.
const INSERT_CHUNK: usize = 500;

/// Monitor settings (`[inventory]` in the config).
#[derive(Debug, Clone)]
pub struct InventoryConfig {
    /// Thresholds and batch sizing.
    pub policy: InventoryPolicy,
    /// How often the monitor runs.
    pub every: Duration,
    /// Carrier sats of each new VTXO.
    pub vtxo_sats: Sats,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            policy: InventoryPolicy::default(),
            every: Duration::from_secs(300),
            vtxo_sats: Sats::new(10_000),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Provisioning failed (the batch is marked failed).
    #[error(transparent)]
    Provision(#[from] ark_relay_core::inventory::ProvisionError),
    /// The Ark server failed while recovering stranded VTXOs.
    #[error("recovering stranded inventory: {0}")]
    Recover(#[from] ArkServerError),
    /// Replenishment is needed but no provisioner is configured.
    #[error("the inventory needs replenishing but no VTXO provisioner is configured")]
    NoProvisioner,
    /// Boarding (or queuing renewals) failed (the batch is marked failed).
    #[error(transparent)]
    Boarding(#[from] crate::rounds::InventoryRoundsError),
}

/// What one run saw and did; also the JSON published on [`CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryReport {
    /// `level` (a change seen), `replenished`, or `boarding` (batches paid
    /// on chain and queued for a round).
    pub event: &'static str,
    /// The level now.
    pub level: u64,
    /// The level before a replenishment.
    pub previous: Option<u64>,
    /// Where the level stands now.
    pub state: LevelState,
    /// The fee rate seen (max of the estimators), sat/vB.
    pub fee_rate_sat_vb: Option<u64>,
    /// VTXOs added by this run.
    pub added: u64,
    /// VTXOs of an interrupted earlier batch found at the Ark server and
    /// put in the ledger by this run.
    pub recovered: u64,
    /// The batches this run recorded.
    pub batches: Vec<String>,
    /// The thresholds in force.
    pub critical: u64,
    /// The thresholds in force.
    pub warning: u64,
    /// The thresholds in force.
    pub target: u64,
}

/// See the module docs.
pub struct InventoryMonitor {
    store: DynStore,
    batches: Arc<dyn InventoryStore>,
    provisioner: Option<Arc<dyn VtxoProvisioner>>,
    fees: Vec<Arc<dyn FeeEstimator>>,
    bus: Option<DynBus>,
    relay: PubKey,
    clock: Arc<dyn Clock>,
    config: InventoryConfig,
    last_published: Mutex<Option<u64>>,
    recovery: Option<(Arc<dyn ArkServer>, ServerInfo)>,
    rounds: Option<Arc<crate::rounds::InventoryRounds>>,
}

impl InventoryMonitor {
    /// A monitor of `relay`'s inventory in `store`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: DynStore,
        batches: Arc<dyn InventoryStore>,
        provisioner: Option<Arc<dyn VtxoProvisioner>>,
        fees: Vec<Arc<dyn FeeEstimator>>,
        bus: Option<DynBus>,
        relay: PubKey,
        clock: Arc<dyn Clock>,
        config: InventoryConfig,
    ) -> Self {
        Self {
            store,
            batches,
            provisioner,
            fees,
            bus,
            relay,
            clock,
            config,
            last_published: Mutex::new(None),
            recovery: None,
            rounds: None,
        }
    }

    /// Replenishes by boarding through Ark rounds (the L1 wallet pays the
    /// relay's boarding address; a round job creates the batch's VTXOs) and
    /// renews inventory VTXOs inside the renewal window — instead of a
    /// [`VtxoProvisioner`]. Batches stay `requested` until their round job
    /// ends (`confirmed` with the commitment txid, or `failed`); VTXOs of
    /// batches in flight count towards the level the decision sees.
    pub fn with_rounds(mut self, rounds: Arc<crate::rounds::InventoryRounds>) -> Self {
        self.rounds = Some(rounds);
        self
    }

    /// Closes boarded batches whose round job ended; returns the VTXOs still
    /// in flight and those that arrived.
    async fn settle_boarded(
        &self,
        rounds: &crate::rounds::InventoryRounds,
    ) -> Result<(u64, u64), InventoryError> {
        use ark_relay_core::rounds::RoundJobStatus;
        let mut in_flight = 0;
        let mut arrived = 0;
        let now = self.clock.now();
        for b in self.batches.recent_batches(100).await? {
            if b.status != BatchStatus::Requested {
                continue;
            }
            match rounds.batch_job(&b.batch_id).await? {
                Some((RoundJobStatus::Done, commitment)) => {
                    self.batches
                        .finish_batch(
                            &b.batch_id,
                            BatchStatus::Confirmed,
                            b.requested,
                            commitment.as_deref(),
                            now,
                        )
                        .await?;
                    crate::metrics::inventory_replenished(b.requested);
                    arrived += b.requested;
                    tracing::info!(batch = %b.batch_id, added = b.requested, "inventory replenished by boarding");
                }
                Some((RoundJobStatus::Failed, _)) => {
                    self.batches
                        .finish_batch(&b.batch_id, BatchStatus::Failed, 0, None, now)
                        .await?;
                    tracing::warn!(batch = %b.batch_id, "boarded batch failed in its rounds");
                }
                Some(_) => in_flight += b.requested,
                // No job: the process died between paying and queuing; the
                // payment sits at the boarding address (docs/operations.md).
                None if now.0 - b.created_at.0 > 3_600 => {
                    self.batches
                        .finish_batch(&b.batch_id, BatchStatus::Failed, 0, None, now)
                        .await?;
                    tracing::warn!(batch = %b.batch_id, "boarded batch has no round job; marked failed");
                }
                None => in_flight += b.requested,
            }
        }
        Ok((in_flight, arrived))
    }

    /// Recovers interrupted batches: when a run finds a batch still
    /// `requested` (the process died between asking the Ark server and
    /// recording the VTXOs), it lists the relay's spendable VTXOs at `ark`,
    /// puts the batch-made ones (not preconfirmed, i.e. not outputs of an
    /// off-chain tx, which their ceremony records) missing from the ledger in
    /// it, and closes the batch.
    pub fn with_recovery(mut self, ark: Arc<dyn ArkServer>, server: ServerInfo) -> Self {
        self.recovery = Some((ark, server));
        self
    }

    async fn recover_stranded(&self) -> Result<u64, InventoryError> {
        let Some((ark, server)) = &self.recovery else {
            return Ok(0);
        };
        let stale: Vec<InventoryBatch> = self
            .batches
            .recent_batches(100)
            .await?
            .into_iter()
            .filter(|b| b.status == BatchStatus::Requested)
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        let vtxo = server.default_vtxo(&self.relay);
        let at_server = ark
            .get_vtxos(&VtxoQuery::Scripts {
                scripts: vec![vtxo.script_pubkey()],
                filter: VtxoFilter::Spendable,
            })
            .await?;
        let mut missing = Vec::new();
        for v in at_server
            .into_iter()
            .filter(|v| !v.is_preconfirmed && !v.is_swept)
        {
            if self.store.vtxo(&v.id).await?.is_none() {
                missing.push(NewVtxo {
                    id: v.id,
                    owner: self.relay,
                    sats: v.amount,
                    colour: None,
                    status: VtxoStatus::Available,
                    tapscripts: vtxo.to_tapscripts(),
                    expires_at: Some(UnixTime(v.expires_at)),
                });
            }
        }
        let now = self.clock.now();
        for chunk in missing.chunks(INSERT_CHUNK) {
            self.store.insert_vtxos(chunk, now).await?;
        }
        let mut left = u64::try_from(missing.len()).unwrap_or(u64::MAX);
        for b in &stale {
            let created = left.min(b.requested);
            left -= created;
            let status = if created > 0 {
                BatchStatus::Confirmed
            } else {
                BatchStatus::Failed
            };
            self.batches
                .finish_batch(&b.batch_id, status, created, None, now)
                .await?;
        }
        let n = u64::try_from(missing.len()).unwrap_or(u64::MAX);
        tracing::warn!(
            batches = stale.len(),
            recovered = n,
            "recovered interrupted inventory batches"
        );
        crate::metrics::inventory_replenished(n);
        Ok(n)
    }

    /// The current level: relay-owned `available` VTXOs (uncoloured by
    /// construction: coloured relay VTXOs are `assigned`).
    pub async fn level(&self) -> Result<u64, StoreError> {
        self.store
            .count_vtxos(&self.relay, VtxoStatus::Available)
            .await
    }

    /// One run: measure, decide, maybe replenish, publish.
    pub async fn run_once(&self) -> Result<InventoryReport, InventoryError> {
        let policy = self.config.policy;
        let (recovered, in_flight, arrived) = match &self.rounds {
            Some(rounds) => {
                if let Err(e) = rounds.renew_due().await {
                    tracing::warn!(error = %e, "inventory renewals not queued");
                }
                let (in_flight, arrived) = self.settle_boarded(rounds).await?;
                (0, in_flight, arrived)
            }
            None => (self.recover_stranded().await?, 0, 0),
        };
        let level = self.level().await?;
        crate::metrics::inventory_level(level);
        let survey = max_fee_rate(&self.fees).await;
        for (name, answer) in &survey.answers {
            if let Err(e) = answer {
                tracing::warn!(estimator = %name, error = %e, "fee estimator failed");
            }
        }
        if let Some(fee) = survey.max_sat_vb {
            crate::metrics::fee_rate(fee);
        }
        // VTXOs of boarded batches still in their rounds count as present.
        let decision = decide(&policy, level + in_flight, survey.max_sat_vb);
        tracing::info!(
            level,
            state = policy.state(level).as_str(),
            fee_rate = ?survey.max_sat_vb,
            ?decision,
            "inventory checked"
        );
        let mut report = InventoryReport {
            event: "level",
            level,
            previous: None,
            state: policy.state(level),
            fee_rate_sat_vb: survey.max_sat_vb,
            added: arrived,
            recovered,
            batches: vec![],
            critical: policy.critical,
            warning: policy.warning,
            target: policy.target,
        };
        if let (Decision::Replenish { reason, batches }, Some(rounds)) = (decision, &self.rounds) {
            if rounds.can_board() {
                for _ in 0..batches {
                    let id = format!("inv-{}", uuid_like());
                    self.batches
                        .begin_batch(&InventoryBatch {
                            batch_id: id.clone(),
                            requested: policy.batch_size,
                            created: 0,
                            reason: reason.as_str().to_owned(),
                            fee_rate_sat_vb: survey.max_sat_vb,
                            status: BatchStatus::Requested,
                            l1_txid: None,
                            created_at: self.clock.now(),
                            completed_at: None,
                        })
                        .await?;
                    report.batches.push(id.clone());
                    let fee = survey.max_sat_vb.unwrap_or(policy.low_fee_sat_vb);
                    if let Err(e) = rounds
                        .board(&id, policy.batch_size, self.config.vtxo_sats, fee)
                        .await
                    {
                        tracing::warn!(batch = %id, error = %e, "boarding failed");
                        self.batches
                            .finish_batch(&id, BatchStatus::Failed, 0, None, self.clock.now())
                            .await?;
                        return Err(e.into());
                    }
                }
                report.event = "boarding";
                self.publish(&report).await;
                return Ok(report);
            }
        }
        if let Decision::Replenish { reason, batches } = decision {
            let provisioner = self
                .provisioner
                .as_ref()
                .ok_or(InventoryError::NoProvisioner)?;
            for _ in 0..batches {
                let id = format!("inv-{}", uuid_like());
                let now = self.clock.now();
                self.batches
                    .begin_batch(&InventoryBatch {
                        batch_id: id.clone(),
                        requested: policy.batch_size,
                        created: 0,
                        reason: reason.as_str().to_owned(),
                        fee_rate_sat_vb: survey.max_sat_vb,
                        status: BatchStatus::Requested,
                        l1_txid: None,
                        created_at: now,
                        completed_at: None,
                    })
                    .await?;
                report.batches.push(id.clone());
                let added = match self
                    .replenish(provisioner.as_ref(), policy.batch_size)
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(batch = %id, error = %e, "replenishment failed");
                        self.batches
                            .finish_batch(&id, BatchStatus::Failed, 0, None, self.clock.now())
                            .await?;
                        return Err(e);
                    }
                };
                self.batches
                    .finish_batch(&id, BatchStatus::Confirmed, added, None, self.clock.now())
                    .await?;
                crate::metrics::inventory_replenished(added);
                report.added += added;
                tracing::info!(batch = %id, added, reason = reason.as_str(), "inventory replenished");
            }
            let after = self.level().await?;
            crate::metrics::inventory_level(after);
            report.event = "replenished";
            report.previous = Some(level);
            report.level = after;
            report.state = policy.state(after);
        }
        self.publish(&report).await;
        Ok(report)
    }

    /// Creates `count` VTXOs at the Ark server and records them in the ledger.
    async fn replenish(
        &self,
        provisioner: &dyn VtxoProvisioner,
        count: u64,
    ) -> Result<u64, InventoryError> {
        let vtxos = provisioner
            .provision(&self.relay, count, self.config.vtxo_sats)
            .await?;
        let now: UnixTime = self.clock.now();
        let rows: Vec<NewVtxo> = vtxos
            .into_iter()
            .map(|v| NewVtxo {
                id: v.id,
                owner: self.relay,
                sats: v.sats,
                colour: None,
                status: VtxoStatus::Available,
                tapscripts: v.tapscripts,
                expires_at: v.expires_at,
            })
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            self.store.insert_vtxos(chunk, now).await?;
        }
        Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
    }

    /// Publishes when the level changed since the last message (or a
    /// replenishment happened).
    async fn publish(&self, report: &InventoryReport) {
        {
            let Ok(mut last) = self.last_published.lock() else {
                return;
            };
            if report.added == 0 && report.recovered == 0 && *last == Some(report.level) {
                return;
            }
            *last = Some(report.level);
        }
        let Some(bus) = &self.bus else { return };
        match serde_json::to_string(report) {
            Ok(msg) => {
                if let Err(e) = bus.publish(CHANNEL, &msg).await {
                    tracing::debug!(error = %e, "inventory update not published");
                }
            }
            Err(e) => tracing::warn!(error = %e, "inventory update not serialised"),
        }
    }
}

/// A random 128-bit hex id (no uuid dependency here).
fn uuid_like() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[async_trait::async_trait]
impl crate::Periodic for InventoryMonitor {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn every(&self) -> Duration {
        self.config.every
    }

    async fn tick(&self) {
        if let Err(e) = self.run_once().await {
            tracing::warn!(error = %e, "inventory run failed; retrying at the next tick");
        }
    }
}
