//! The relay's own inventory in rounds (issue 15 items 1 and 4), used by the
//! inventory monitor:
//! - [`InventoryRounds::board`]: a replenishment batch funded on chain — the
//!   L1 wallet pays the relay's boarding address, the payment confirms, and
//!   a round job turns the boarding output into the batch's VTXOs;
//! - [`InventoryRounds::renew_due`]: inventory VTXOs inside the renewal
//!   window (by default the last 10 % of their lifetime) get a renewal job
//!   each, to the same key, sats and assets (the control VTXO of a
//!   relay-issued asset and its genesis unit included).
//!
//! The jobs' outcomes reach the ledger through the round runner (one
//! `L2Transaction` per finalized round).

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::IdMap;
use ark_relay_ark::{ServerInfo, VtxoScript};
use ark_relay_ceremony::round::{
    crypto, intent_fee, FeeInput, JobAsset, JobInput, JobKind, JobOutput, RoundCtx, RoundJob,
    RoundPolicy,
};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::backends::chain::L1Chain;
use ark_relay_core::rounds::RoundJobStatus;
use ark_relay_core::{Clock, DynStore, PubKey, Sats, UnixTime, VtxoStatus};
use bitcoin::key::Keypair;
use bitcoin::{OutPoint, ScriptBuf};

use super::{cosigner_key, RoundJobs, RoundJobsError};

/// When inventory VTXOs are renewed and how boarding waits.
#[derive(Debug, Clone, Copy)]
pub struct InventoryRoundsConfig {
    /// Overrides a VTXO's lifetime at this server (seconds; arkd
    /// `vtxo_tree_expiry`). 0 (the default): learned from the relay's last
    /// round (`batch_started.batch_expiry`, [`RoundJobs::learned_lifetime`]),
    /// or, before its first round, each VTXO's own `expires_at − created_at`.
    pub vtxo_lifetime_secs: i64,
    /// Renew once this share of the lifetime has passed (percent, PRD
    /// default 90).
    pub renew_at_pct: u8,
    /// How long a boarding payment may take to confirm.
    pub confirm_timeout: Duration,
    /// How often its confirmation is checked.
    pub confirm_poll: Duration,
}

impl Default for InventoryRoundsConfig {
    fn default() -> Self {
        Self {
            vtxo_lifetime_secs: 0,
            renew_at_pct: 90,
            confirm_timeout: Duration::from_secs(3_600),
            confirm_poll: Duration::from_secs(10),
        }
    }
}

/// Why boarding or renewal scheduling failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryRoundsError {
    /// The L1 wallet failed.
    #[error("L1 wallet: {0}")]
    Chain(#[from] ark_relay_core::backends::chain::ChainError),
    /// The Ark server failed.
    #[error(transparent)]
    Ark(#[from] ark_relay_core::backends::ark::ArkServerError),
    /// The job queue failed.
    #[error(transparent)]
    Jobs(#[from] RoundJobsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ark_relay_core::StoreError),
    /// The boarding address could not be derived.
    #[error("boarding address: {0}")]
    Address(String),
    /// The payment did not confirm in time.
    #[error("boarding payment {0} not confirmed in time")]
    Unconfirmed(bitcoin::Txid),
    /// arkd's fee programs could not be evaluated.
    #[error("intent fee: {0}")]
    Fee(String),
}

/// See the module docs.
pub struct InventoryRounds {
    jobs: RoundJobs,
    ark: Arc<dyn ArkServer>,
    chain: Option<Arc<dyn L1Chain>>,
    ledger: DynStore,
    server: ServerInfo,
    relay: Keypair,
    clock: Arc<dyn Clock>,
    config: InventoryRoundsConfig,
}

impl InventoryRounds {
    /// Inventory rounds for `relay`; boarding needs an L1 wallet (`chain`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        jobs: RoundJobs,
        ark: Arc<dyn ArkServer>,
        chain: Option<Arc<dyn L1Chain>>,
        ledger: DynStore,
        server: ServerInfo,
        relay: Keypair,
        clock: Arc<dyn Clock>,
        config: InventoryRoundsConfig,
    ) -> Self {
        Self {
            jobs,
            ark,
            chain,
            ledger,
            server,
            relay,
            clock,
            config,
        }
    }

    fn relay_pk(&self) -> PubKey {
        PubKey::from_x_only(self.relay.x_only_public_key().0)
    }

    /// Whether boarding is possible (an L1 wallet is configured).
    pub fn can_board(&self) -> bool {
        self.chain.is_some()
    }

    /// The relay's boarding address script at this server.
    pub async fn boarding_script(&self) -> Result<ScriptBuf, InventoryRoundsError> {
        let terms = self.ark.round_terms().await?;
        let cosigner = cosigner_key(&self.relay);
        let ctx = RoundCtx {
            server: &self.server,
            terms: &terms,
            relay: &self.relay,
            cosigner: &cosigner,
            now: self.clock.now(),
            policy: RoundPolicy::default(),
        };
        crypto::boarding_output(&ctx)
            .map(|b| b.script_pubkey())
            .map_err(InventoryRoundsError::Address)
    }

    /// Funds replenishment batch `batch_id` (`count` VTXOs of `sats`) by
    /// boarding: pays the boarding address, waits for one confirmation, and
    /// queues the round job (job id = `batch_id`). Returns the funding tx.
    pub async fn board(
        &self,
        batch_id: &str,
        count: u64,
        sats: Sats,
        fee_rate_sat_vb: u64,
    ) -> Result<bitcoin::Txid, InventoryRoundsError> {
        let chain = self.chain.as_ref().ok_or_else(|| {
            InventoryRoundsError::Address("no L1 wallet configured for boarding".into())
        })?;
        let script = self.boarding_script().await?;
        // The payment carries arkd's intent fee on top of the batch (one
        // boarding input, `count` outputs of `sats`), so the batch's VTXOs
        // keep their size.
        let terms = self.ark.round_terms().await?;
        let own = self.server.default_vtxo(&self.relay_pk()).script_pubkey();
        let batch = Sats::new(sats.get().saturating_mul(count));
        let outputs: Vec<(Sats, &ScriptBuf)> = (0..count).map(|_| (sats, &own)).collect();
        let fee = intent_fee(
            &terms.intent_fees,
            &[FeeInput::Boarding { sats: batch }],
            &outputs,
        )
        .map_err(|e| InventoryRoundsError::Fee(e.to_string()))?;
        let total = Sats::new(batch.get().saturating_add(fee.get()));
        let tx = chain
            .send_to(
                &script,
                total,
                fee_rate_sat_vb.max(1),
                &format!("ark-relay inventory {batch_id}"),
            )
            .await?;
        let txid = tx.compute_txid();
        let vout = tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script && o.value.to_sat() == total.get())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                InventoryRoundsError::Address("payment has no boarding output".into())
            })?;
        tracing::info!(batch = %batch_id, %txid, sats = total.get(), "boarding payment sent");
        let deadline = tokio::time::Instant::now() + self.config.confirm_timeout;
        loop {
            let confirmed = chain
                .tx_status(&txid)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.confirmations > 0);
            if confirmed {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(InventoryRoundsError::Unconfirmed(txid));
            }
            tokio::time::sleep(self.config.confirm_poll).await;
        }
        let relay = self.relay_pk();
        let job = RoundJob {
            job_id: batch_id.to_owned(),
            kind: JobKind::InventoryBoard {
                batch_id: batch_id.to_owned(),
            },
            inputs: vec![JobInput::Boarding {
                outpoint: OutPoint::new(txid, vout),
                sats: total,
            }],
            outputs: (0..count)
                .map(|_| JobOutput {
                    owner: relay,
                    sats,
                    assets: vec![],
                })
                .collect(),
            delegation: None,
            not_before: UnixTime(0),
        };
        self.jobs.enqueue(&job).await?;
        Ok(txid)
    }

    /// Where batch `batch_id`'s round job stands (`None`: no job).
    pub async fn batch_job(
        &self,
        batch_id: &str,
    ) -> Result<Option<(RoundJobStatus, Option<String>)>, InventoryRoundsError> {
        Ok(self
            .jobs
            .get(batch_id)
            .await?
            .map(|r| (r.status, r.commitment_txid)))
    }

    /// Queues a renewal for every available VTXO of the relay inside the
    /// renewal window (idempotent: one job per VTXO, `renew:<outpoint>`),
    /// coloured ones included — the control VTXO of a relay-issued asset,
    /// its genesis unit, any coloured inventory — with their assets under
    /// their Arkade ids ([`IdMap::for_assets`]), so the relay's intent
    /// carries the asset preservation packet and the new VTXO keeps them. A
    /// VTXO locked by a signing session is left for a later pass, and one not
    /// at the relay's default script is not renewed. Returns
    /// how many were queued now.
    pub async fn renew_due(&self) -> Result<u64, InventoryRoundsError> {
        let relay = self.relay_pk();
        let now = self.clock.now();
        let lifetime = if self.config.vtxo_lifetime_secs > 0 {
            Some(self.config.vtxo_lifetime_secs)
        } else {
            self.jobs.learned_lifetime().await?
        };
        let share = i64::from(100u8.saturating_sub(self.config.renew_at_pct.min(100)));
        let default = self.server.default_vtxo(&relay).script_pubkey();
        let mut ids: Option<IdMap> = None;
        let mut fees: Option<ark_relay_core::backends::rounds::IntentFeePrograms> = None;
        let mut queued = 0;
        for v in self.ledger.unspent_vtxos(&relay).await? {
            let Some(expires_at) = v.expires_at else {
                continue;
            };
            // Available inventory, or the relay's own assigned VTXOs (the
            // colour a genesis or a fee gave it).
            // Renewed from its own expiry, `share` % of a lifetime before it.
            let life = lifetime.unwrap_or(expires_at.0 - v.created_at.0).max(0);
            let window = life * share / 100;
            if !matches!(v.status, VtxoStatus::Available | VtxoStatus::Assigned)
                || v.locked_by.is_some()
                || now.0 < expires_at.0 - window
            {
                continue;
            }
            // A renewal pays the relay's default script: a VTXO under other
            // conditions (a position) is not renewed here.
            let at_default = VtxoScript::from_tapscripts(&v.tapscripts)
                .is_ok_and(|script| script.script_pubkey() == default);
            if !at_default {
                tracing::debug!(vtxo = %v.id, "not at the relay's default script; not renewed");
                continue;
            }
            let assets = match v.colour {
                None => vec![],
                Some(c) => {
                    if ids.is_none() {
                        let all = self.ledger.assets().await?;
                        ids = Some(IdMap::for_assets(all.iter().map(|a| &a.id)));
                    }
                    let id = ids.get_or_insert_with(IdMap::bridged).arkade(&c.asset);
                    vec![JobAsset {
                        asset_id: id.to_string(),
                        amount: c.amount.get(),
                    }]
                }
            };
            // arkd's intent fee comes out of the renewed VTXO.
            if fees.is_none() {
                fees = Some(self.ark.round_terms().await?.intent_fees);
            }
            let fee = intent_fee(
                fees.as_ref().unwrap_or(&Default::default()),
                &[FeeInput::Vtxo {
                    sats: v.sats,
                    created_at: v.created_at.0,
                    expires_at: expires_at.0,
                    recoverable: false,
                }],
                &[(v.sats, &default)],
            )
            .map_err(|e| InventoryRoundsError::Fee(e.to_string()))?;
            let Some(out) = v
                .sats
                .checked_sub(fee)
                .filter(|o| o.get() >= self.server.dust().get())
            else {
                tracing::debug!(vtxo = %v.id, fee = fee.get(), "cannot pay arkd's intent fee; not renewed");
                continue;
            };
            let job = RoundJob {
                job_id: format!("renew:{}", v.id),
                kind: JobKind::InventoryRenew,
                inputs: vec![JobInput::RelayVtxo {
                    vtxo: v.id,
                    sats: v.sats,
                    tapscripts: v.tapscripts.clone(),
                    swept: false,
                    assets: assets.clone(),
                }],
                outputs: vec![JobOutput {
                    owner: relay,
                    sats: out,
                    assets,
                }],
                delegation: None,
                not_before: UnixTime(0),
            };
            if self.jobs.enqueue(&job).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            tracing::info!(queued, "inventory VTXOs queued for renewal");
        }
        Ok(queued)
    }
}
