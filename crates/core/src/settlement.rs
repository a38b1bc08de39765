//! Hourly L1 settlement records (PRD §10.4) and the [`SettlementStore`] port.
//!
//! One row per period `[from, to)`; `period_start` is unique in the database,
//! so a period is settled at most once however many schedulers race. A row
//! moves `pending → broadcast → confirmed → published`:
//!
//! - **pending**: the period is closed and its leaves are fixed (every L2
//!   transaction not yet settled whose `finalized_at < to` is claimed by this
//!   row in the same transaction that creates it, so a late-committed
//!   transaction lands in the next period instead of being lost); the Merkle
//!   root and count are set. `attempts > 0` means a broadcast was tried and
//!   may have reached the chain: look for it before trying again.
//! - **broadcast**: `l1_txid` is known; wait for its block.
//! - **confirmed**: `block_height` is known; the 31342 is queued in the same
//!   transaction that moves the row to published.
//! - **published**: terminal. An empty period (no L2 transaction) is closed
//!   directly as published with no L1 transaction and no 31342.
//! - **failed**: given up (operators must look); never retried automatically.

use async_trait::async_trait;
use bitcoin::Txid;
use serde::{Deserialize, Serialize};

use crate::merkle::Node;
use crate::{EventId, NewOutboxEvent, StoreError, UnixTime};

/// Where a settlement is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementStatus {
    /// Closed, root computed, not (known to be) broadcast.
    Pending,
    /// The commitment transaction is in the mempool.
    Broadcast,
    /// The commitment transaction is in a block.
    Confirmed,
    /// The 31342 is queued (or the period was empty): done.
    Published,
    /// Given up.
    Failed,
}

impl SettlementStatus {
    /// Database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Broadcast => "broadcast",
            Self::Confirmed => "confirmed",
            Self::Published => "published",
            Self::Failed => "failed",
        }
    }

    /// True for published and failed.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Published | Self::Failed)
    }
}

impl std::str::FromStr for SettlementStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pending" => Self::Pending,
            "broadcast" => Self::Broadcast,
            "confirmed" => Self::Confirmed,
            "published" => Self::Published,
            "failed" => Self::Failed,
            other => return Err(format!("unknown settlement status {other:?}")),
        })
    }
}

/// A settlement row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    /// Row id (the 31342's `d` tag).
    pub id: i64,
    /// Period start (inclusive), unix seconds.
    pub period_start: UnixTime,
    /// Period end (exclusive), unix seconds.
    pub period_end: UnixTime,
    /// Merkle root of the committed ark txids ([`crate::merkle`]).
    pub merkle_root: Option<Node>,
    /// How many L2 transactions it commits.
    pub l2_tx_count: u64,
    /// The L1 commitment transaction, once broadcast.
    pub l1_txid: Option<Txid>,
    /// Its block, once confirmed.
    pub block_height: Option<u32>,
    /// The fee rate of the last broadcast attempt, sat/vB.
    pub fee_rate_sat_vb: Option<u64>,
    /// The state.
    pub status: SettlementStatus,
    /// Broadcast attempts so far.
    pub attempts: u32,
    /// The published 31342's event id.
    pub notice_event_id: Option<EventId>,
    /// Row creation time.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
}

/// What [`SettlementStore::open_period`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenedPeriod {
    /// The period row was created now, with its leaves claimed.
    New(SettlementRecord),
    /// Another scheduler (or an earlier run) created it first.
    Exists,
}

/// A change to a settlement row, applied only if the row still has the
/// status and attempt count the caller saw (optimistic state machine: two
/// runners never both advance a row, nor both start a broadcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementUpdate {
    /// The new state.
    pub status: SettlementStatus,
    /// New L1 txid (`None` = unchanged).
    pub l1_txid: Option<Txid>,
    /// New block height (`None` = unchanged).
    pub block_height: Option<u32>,
    /// New fee rate (`None` = unchanged).
    pub fee_rate_sat_vb: Option<u64>,
    /// Add one to `attempts`.
    pub count_attempt: bool,
    /// The 31342 event id (`None` = unchanged).
    pub notice_event_id: Option<EventId>,
}

impl SettlementUpdate {
    /// A move to `status` changing nothing else.
    pub fn to(status: SettlementStatus) -> Self {
        Self {
            status,
            l1_txid: None,
            block_height: None,
            fee_rate_sat_vb: None,
            count_attempt: false,
            notice_event_id: None,
        }
    }
}

/// Durable settlement state. Implemented by `ark-relay-store` for SQLite and
/// MariaDB.
#[async_trait]
pub trait SettlementStore: Send + Sync {
    /// Ark txids of L2 transactions finalized in `[from, to)`, ascending.
    async fn l2_txids_finalized(
        &self,
        from: UnixTime,
        to: UnixTime,
    ) -> Result<Vec<Txid>, StoreError>;

    /// The earliest `finalized_at` of an L2 transaction not yet claimed by a
    /// settlement (where catch-up starts on a fresh database).
    async fn first_unsettled_at(&self) -> Result<Option<UnixTime>, StoreError>;

    /// Creates the row of `[from, to)` and, in the same transaction, claims
    /// every unclaimed L2 transaction with `finalized_at < to` and stores the
    /// Merkle root and count of the claimed set. An empty period is created
    /// directly as `published`. `Exists` if the period already has a row.
    async fn open_period(
        &self,
        from: UnixTime,
        to: UnixTime,
        now: UnixTime,
    ) -> Result<OpenedPeriod, StoreError>;

    /// Applies `update` if the row still has `seen`'s status and attempt
    /// count, and queues `outbox` in the same transaction. False when the row
    /// moved meanwhile (another runner advanced it).
    async fn update_settlement(
        &self,
        seen: &SettlementRecord,
        update: &SettlementUpdate,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// One settlement.
    async fn settlement(&self, id: i64) -> Result<Option<SettlementRecord>, StoreError>;

    /// Settlements newest first: at most `limit` with `id < before` (all when `None`).
    async fn settlements(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SettlementRecord>, StoreError>;

    /// Rows not yet published or failed, oldest period first.
    async fn open_settlements(&self) -> Result<Vec<SettlementRecord>, StoreError>;

    /// The row with the latest period, whatever its state.
    async fn last_period(&self) -> Result<Option<SettlementRecord>, StoreError>;

    /// The ark txids a settlement committed (its Merkle leaves), ascending.
    async fn settlement_txids(&self, id: i64) -> Result<Vec<Txid>, StoreError>;

    /// The settlement that committed `ark_txid`, if any.
    async fn settlement_of(&self, ark_txid: &Txid) -> Result<Option<i64>, StoreError>;
}

/// A shared settlement store.
pub type DynSettlementStore = std::sync::Arc<dyn SettlementStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips() {
        for s in [
            SettlementStatus::Pending,
            SettlementStatus::Broadcast,
            SettlementStatus::Confirmed,
            SettlementStatus::Published,
            SettlementStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<SettlementStatus>(), Ok(s));
        }
        assert!("done".parse::<SettlementStatus>().is_err());
        assert!(SettlementStatus::Published.is_final());
        assert!(!SettlementStatus::Broadcast.is_final());
    }
}
