//! The relay's hot VTXO inventory (PRD §10.3): thresholds, the pure
//! replenishment decision, and the ports the monitor uses.
//!
//! The **level** is the number of relay-owned, uncoloured, `available`
//! VTXOs in the ledger: the carriers the relay adds to transactions for new
//! outputs. A monitor (in the engine) reads it every few minutes, asks the fee
//! estimators, calls [`decide`], and — when it says so — asks the Ark server
//! for a batch of new VTXOs to the relay key ([`VtxoProvisioner`]), records
//! the batch ([`InventoryStore`]) and puts the VTXOs in the ledger.
//!
//! This module is pure: no I/O, no clock.

use async_trait::async_trait;

use crate::{PubKey, Sats, StoreError, Tapscripts, UnixTime, VtxoId};

/// Thresholds and batch sizing (all configurable, `[inventory]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InventoryPolicy {
    /// Below this, replenish whatever the fee (PRD: 1 000).
    pub critical: u64,
    /// Below this, replenish when fees are low (PRD: 3 000).
    pub warning: u64,
    /// Replenishment refills up to this level (PRD: 10 000).
    pub target: u64,
    /// VTXOs per batch, one Ark round each (PRD: 1 000).
    pub batch_size: u64,
    /// At most this many batches per monitor run.
    pub max_batches_per_run: u64,
    /// "Low fees": strictly below this rate, sat/vB (PRD: 10).
    pub low_fee_sat_vb: u64,
}

impl Default for InventoryPolicy {
    fn default() -> Self {
        Self {
            critical: 1_000,
            warning: 3_000,
            target: 10_000,
            batch_size: 1_000,
            max_batches_per_run: 10,
            low_fee_sat_vb: 10,
        }
    }
}

/// Where a level stands against the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelState {
    /// Below `critical`.
    Critical,
    /// Below `warning` (and not critical).
    Warning,
    /// At or above `warning`.
    Healthy,
}

impl LevelState {
    /// `critical`, `warning`, `healthy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LevelState::Critical => "critical",
            LevelState::Warning => "warning",
            LevelState::Healthy => "healthy",
        }
    }
}

/// Why a batch is requested (`vtxo_inventory.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplenishReason {
    /// Below critical: replenish whatever the fee.
    Critical,
    /// Below warning and the fee rate is low.
    LowFee,
}

impl ReplenishReason {
    /// `critical` or `low_fee`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReplenishReason::Critical => "critical",
            ReplenishReason::LowFee => "low_fee",
        }
    }
}

/// What the monitor does this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Request `batches` batches of the policy's `batch_size`.
    Replenish {
        /// Why.
        reason: ReplenishReason,
        /// How many batches.
        batches: u64,
    },
    /// Do nothing now.
    Hold(LevelState),
}

impl InventoryPolicy {
    /// Where `level` stands.
    pub fn state(&self, level: u64) -> LevelState {
        if level < self.critical {
            LevelState::Critical
        } else if level < self.warning {
            LevelState::Warning
        } else {
            LevelState::Healthy
        }
    }

    /// Batches needed to bring `level` up to `target`, at least one, at most
    /// `max_batches_per_run`.
    fn batches_to_target(&self, level: u64) -> u64 {
        let missing = self.target.saturating_sub(level);
        let size = self.batch_size.max(1);
        missing
            .div_ceil(size)
            .clamp(1, self.max_batches_per_run.max(1))
    }
}

/// The replenishment decision (PRD §10.3.2 step 3): below `critical`
/// replenish regardless of fees; below `warning` only when the fee rate is
/// known and below `low_fee_sat_vb`; otherwise hold. An unknown fee rate
/// (every estimator failed) counts as high.
pub fn decide(policy: &InventoryPolicy, level: u64, fee_rate_sat_vb: Option<u64>) -> Decision {
    match policy.state(level) {
        LevelState::Critical => Decision::Replenish {
            reason: ReplenishReason::Critical,
            batches: policy.batches_to_target(level),
        },
        LevelState::Warning => match fee_rate_sat_vb {
            Some(fee) if fee < policy.low_fee_sat_vb => Decision::Replenish {
                reason: ReplenishReason::LowFee,
                batches: policy.batches_to_target(level),
            },
            _ => Decision::Hold(LevelState::Warning),
        },
        LevelState::Healthy => Decision::Hold(LevelState::Healthy),
    }
}

/// Status of a replenishment batch (`vtxo_inventory.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Asked of the Ark server; not yet in the ledger.
    Requested,
    /// Its VTXOs are in the ledger.
    Confirmed,
    /// The Ark server refused or the request failed.
    Failed,
}

impl BatchStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Requested => "requested",
            BatchStatus::Confirmed => "confirmed",
            BatchStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for BatchStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "requested" => Ok(BatchStatus::Requested),
            "confirmed" => Ok(BatchStatus::Confirmed),
            "failed" => Ok(BatchStatus::Failed),
            other => Err(format!("unknown inventory batch status {other:?}")),
        }
    }
}

/// One replenishment batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryBatch {
    /// Unique id (the monitor makes one per batch).
    pub batch_id: String,
    /// VTXOs asked for.
    pub requested: u64,
    /// VTXOs that arrived.
    pub created: u64,
    /// `critical` or `low_fee`.
    pub reason: String,
    /// The fee rate the decision saw, sat/vB.
    pub fee_rate_sat_vb: Option<u64>,
    /// Where it stands.
    pub status: BatchStatus,
    /// The L1 transaction of the round, when the server reports one.
    pub l1_txid: Option<String>,
    /// When it was requested.
    pub created_at: UnixTime,
    /// When it was confirmed or failed.
    pub completed_at: Option<UnixTime>,
}

/// The `vtxo_inventory` table.
///
/// Notes for implementors: `begin_batch` is idempotent by `batch_id`
/// (a second call changes nothing); `finish_batch` only moves a `requested`
/// batch and returns whether it did.
#[async_trait]
pub trait InventoryStore: Send + Sync + 'static {
    /// Records a batch as `requested`.
    async fn begin_batch(&self, batch: &InventoryBatch) -> Result<(), StoreError>;

    /// Marks a `requested` batch `confirmed` (with how many VTXOs arrived) or
    /// `failed`. `false` if it was not `requested`.
    async fn finish_batch(
        &self,
        batch_id: &str,
        status: BatchStatus,
        created: u64,
        l1_txid: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// The newest `limit` batches, newest first.
    async fn recent_batches(&self, limit: u32) -> Result<Vec<InventoryBatch>, StoreError>;
}

/// A VTXO the Ark server created for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedVtxo {
    /// Its outpoint.
    pub id: VtxoId,
    /// Carrier sats.
    pub sats: Sats,
    /// Its Taproot leaves.
    pub tapscripts: Tapscripts,
    /// Batch expiry, when the server says.
    pub expires_at: Option<UnixTime>,
}

/// Why provisioning failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// Worth retrying at the next run.
    #[error("provisioning failed (transient): {0}")]
    Transient(String),
    /// The server refused, or this back end cannot provision.
    #[error("provisioning refused: {0}")]
    Refused(String),
}

/// Creates new VTXOs owned by the relay (arkd: a batch/round registration
/// with the relay's boarding funds; the simulator: its `FundVtxo` admin RPC).
///
/// Notes for implementors: not idempotent — a retry after a lost answer may
/// create a second batch. Callers record the batch first and reconcile.
#[async_trait]
pub trait VtxoProvisioner: Send + Sync + 'static {
    /// Creates `count` VTXOs of `sats` each, owned by `owner`'s default
    /// VTXO script.
    async fn provision(
        &self,
        owner: &PubKey,
        count: u64,
        sats: Sats,
    ) -> Result<Vec<ProvisionedVtxo>, ProvisionError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision table: thresholds × fee rates (PRD §10.3.2).
    #[test]
    fn decision_table() {
        let p = InventoryPolicy::default();
        use Decision::{Hold, Replenish};
        use LevelState::{Healthy, Warning};
        use ReplenishReason::{Critical, LowFee};
        let levels = [0, 1, 999, 1_000, 2_999, 3_000, 9_999, 10_000, 50_000];
        let fees = [None, Some(1), Some(9), Some(10), Some(11), Some(500)];
        let expect = |level: u64, fee: Option<u64>| -> Decision {
            let to_target = |l: u64| (10_000u64.saturating_sub(l)).div_ceil(1_000).clamp(1, 10);
            if level < 1_000 {
                Replenish {
                    reason: Critical,
                    batches: to_target(level),
                }
            } else if level < 3_000 {
                match fee {
                    Some(f) if f < 10 => Replenish {
                        reason: LowFee,
                        batches: to_target(level),
                    },
                    _ => Hold(Warning),
                }
            } else {
                Hold(Healthy)
            }
        };
        for level in levels {
            for fee in fees {
                assert_eq!(
                    decide(&p, level, fee),
                    expect(level, fee),
                    "level {level}, fee {fee:?}"
                );
            }
        }
        // Spot checks written out, so the table above is not only self-referential.
        assert_eq!(
            decide(&p, 999, Some(500)),
            Replenish {
                reason: Critical,
                batches: 10
            }
        );
        assert_eq!(
            decide(&p, 0, None),
            Replenish {
                reason: Critical,
                batches: 10
            }
        );
        assert_eq!(
            decide(&p, 2_999, Some(9)),
            Replenish {
                reason: LowFee,
                batches: 8
            }
        );
        assert_eq!(decide(&p, 2_999, Some(10)), Hold(Warning));
        assert_eq!(decide(&p, 2_999, None), Hold(Warning));
        assert_eq!(decide(&p, 3_000, Some(1)), Hold(Healthy));
    }

    #[test]
    fn custom_thresholds_and_caps() {
        let p = InventoryPolicy {
            critical: 5,
            warning: 10,
            target: 20,
            batch_size: 4,
            max_batches_per_run: 2,
            low_fee_sat_vb: 3,
        };
        assert_eq!(
            decide(&p, 4, Some(99)),
            Decision::Replenish {
                reason: ReplenishReason::Critical,
                batches: 2
            }
        );
        assert_eq!(
            decide(&p, 9, Some(2)),
            Decision::Replenish {
                reason: ReplenishReason::LowFee,
                batches: 2
            }
        );
        assert_eq!(decide(&p, 9, Some(3)), Decision::Hold(LevelState::Warning));
        // A target below the level still asks for one batch when critical.
        let odd = InventoryPolicy {
            target: 0,
            ..InventoryPolicy::default()
        };
        assert_eq!(
            decide(&odd, 10, None),
            Decision::Replenish {
                reason: ReplenishReason::Critical,
                batches: 1
            }
        );
        for s in [
            BatchStatus::Requested,
            BatchStatus::Confirmed,
            BatchStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<BatchStatus>(), Ok(s));
        }
    }
}
