//! Hourly L1 settlement (PRD §10.4): a [`Periodic`] task that closes every
//! complete period, commits its Merkle root on L1 in an `OP_RETURN`, waits for
//! the block, and publishes the public **31342** notice through the outbox.
//!
//! **Periods.** `[k·P, (k+1)·P)` for the configured period `P` (3600 s =
//! cron `0 * * * *`), closed `settle_delay` after their end. The first period
//! is the one holding the oldest unsettled L2 transaction; from there every
//! period follows the previous row's end, so missed hours (the relay was
//! down) are caught up oldest first and none is skipped. A period's row is
//! unique in the database (see [`SettlementStore::open_period`]), so it is
//! never settled twice, even by two schedulers at once.
//!
//! **Empty periods** are recorded (row with `l2_tx_count = 0`, the empty
//! root, status `published`) but cost no L1 transaction and get no 31342:
//! there is nothing to prove, and a fee every hour for nothing would be waste.
//! The unbroken sequence of rows still shows no hour was skipped.
//!
//! **State machine** (per row, each step one optimistic DB update):
//! `pending → broadcast → confirmed → published`.
//! - *pending*: pick a fee rate (the estimate; on a retry at least the last
//!   rate × (1 + `fee_bump_percent`)), **record the attempt first**, then
//!   broadcast. If the broadcast fails the row stays pending and is retried
//!   after an exponential backoff (`retry_base · 2^(attempts−1)`, capped).
//!   A pending row with `attempts > 0` may have reached the chain before a
//!   crash: the wallet is searched for a transaction carrying the root
//!   before anything is broadcast again, so a restart never doubles it.
//! - *broadcast*: the transaction is looked up, never re-sent blindly; once
//!   it has `min_confirmations` its height is recorded. If the wallet no
//!   longer knows it (evicted), the row returns to pending and is
//!   re-broadcast with a higher fee.
//! - *confirmed*: the 31342 `{l1_txid, block_height, merkle_root_of_l2_txs,
//!   l2_tx_count, period}` (`d` = settlement id) is queued in the same
//!   transaction that marks the row published.
//! - After `max_attempts` failed broadcasts the row is marked `failed` and
//!   an operator must look (logged at error level).

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::backends::chain::L1Chain;
use ark_relay_core::merkle::Node;
use ark_relay_core::settlement::{
    DynSettlementStore, OpenedPeriod, SettlementRecord, SettlementStatus, SettlementUpdate,
};
use ark_relay_core::{Clock, EventId, NewOutboxEvent, UnixTime};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::L1Commitment;
use ark_relay_protocol::kinds;
use nostr::{JsonUtil, Keys};

use crate::Periodic;

/// Settlement tuning (the `[settlement]` config section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementConfig {
    /// Period length in seconds; periods are aligned to multiples of it
    /// (3600 = on the hour, like cron `0 * * * *`).
    pub period_secs: i64,
    /// How long after a period's end it is closed (lets in-flight commits land).
    pub settle_delay_secs: i64,
    /// How often the task runs.
    pub tick: Duration,
    /// Confirmation target for the fee estimate, blocks.
    pub conf_target: u32,
    /// Fee-rate increase per retry, percent (50 = × 1.5).
    pub fee_bump_percent: u64,
    /// Never pay more than this, sat/vB.
    pub max_fee_rate: u64,
    /// Backoff after the first failed broadcast.
    pub retry_base: Duration,
    /// Backoff cap.
    pub retry_max: Duration,
    /// Failed broadcasts before the row is marked failed.
    pub max_attempts: u32,
    /// Confirmations before the notice is published.
    pub min_confirmations: u32,
    /// At most this many periods are opened per tick (catch-up is spread).
    pub max_periods_per_tick: u32,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            period_secs: 3600,
            settle_delay_secs: 60,
            tick: Duration::from_secs(30),
            conf_target: 6,
            fee_bump_percent: 50,
            max_fee_rate: 500,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            max_attempts: 20,
            min_confirmations: 1,
            max_periods_per_tick: 240,
        }
    }
}

impl SettlementConfig {
    /// Seconds to wait after failed attempt number `attempts` (≥ 1).
    pub fn backoff_secs(&self, attempts: u32) -> i64 {
        let base = self.retry_base.as_secs().max(1);
        let shift = attempts.saturating_sub(1).min(20);
        let secs = base
            .saturating_mul(1u64 << shift)
            .min(self.retry_max.as_secs().max(1));
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// The fee rate of the next attempt given the estimate and the last rate.
    pub fn next_fee_rate(&self, estimate: u64, last: Option<u64>) -> u64 {
        let bumped = last.map_or(0, |l| {
            let b = l.saturating_mul(100 + self.fee_bump_percent) / 100;
            b.max(l.saturating_add(1))
        });
        estimate.max(bumped).clamp(1, self.max_fee_rate.max(1))
    }
}

/// See the module docs.
pub struct SettlementTask {
    store: DynSettlementStore,
    chain: Arc<dyn L1Chain>,
    keys: Keys,
    clock: Arc<dyn Clock>,
    config: SettlementConfig,
}

/// The 31342 outbox row's dedupe key for settlement `id`.
pub fn notice_dedupe_key(id: i64) -> String {
    format!("31342:{id}")
}

/// Where the task stopped on one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The row moved; look at it again.
    Moved,
    /// Nothing to do now.
    Wait,
}

impl SettlementTask {
    /// A task over `store`, committing through `chain`, signing 31342 with `keys`.
    pub fn new(
        store: DynSettlementStore,
        chain: Arc<dyn L1Chain>,
        keys: Keys,
        clock: Arc<dyn Clock>,
        config: SettlementConfig,
    ) -> Self {
        Self {
            store,
            chain,
            keys,
            clock,
            config,
        }
    }

    /// The end of the last period that may be closed at `now`.
    fn closable_end(&self, now: UnixTime) -> i64 {
        let p = self.config.period_secs.max(1);
        now.0
            .saturating_sub(self.config.settle_delay_secs.max(0))
            .div_euclid(p)
            .saturating_mul(p)
    }

    /// Opens every complete period not opened yet, oldest first. Returns how
    /// many rows this call created.
    pub async fn open_due_periods(&self) -> Result<u32, ark_relay_core::StoreError> {
        let p = self.config.period_secs.max(1);
        let now = self.clock.now();
        let limit = self.closable_end(now);
        let mut start = match self.store.last_period().await? {
            Some(last) => last.period_end.0,
            None => match self.store.first_unsettled_at().await? {
                Some(t) => t.0.div_euclid(p).saturating_mul(p),
                None => return Ok(0),
            },
        };
        let mut opened = 0;
        for _ in 0..self.config.max_periods_per_tick {
            // Aligned end (a changed period length realigns on the next boundary).
            let end = start.div_euclid(p).saturating_add(1).saturating_mul(p);
            if end > limit {
                break;
            }
            match self
                .store
                .open_period(UnixTime(start), UnixTime(end), now)
                .await?
            {
                OpenedPeriod::New(r) => {
                    opened += 1;
                    tracing::info!(
                        settlement = r.id,
                        from = start,
                        to = end,
                        l2_tx_count = r.l2_tx_count,
                        "settlement period closed"
                    );
                }
                OpenedPeriod::Exists => {}
            }
            start = end;
        }
        Ok(opened)
    }

    /// One full pass: open due periods, then advance every open row.
    pub async fn run_once(&self) {
        if let Err(e) = self.open_due_periods().await {
            tracing::warn!(error = %e, "settlement: cannot open periods");
            return;
        }
        let open = match self.store.open_settlements().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "settlement: cannot list open settlements");
                return;
            }
        };
        for row in open {
            self.drive(row).await;
        }
    }

    /// Advances one row as far as it goes now.
    async fn drive(&self, mut row: SettlementRecord) {
        for _ in 0..8 {
            match self.step(&row).await {
                Ok(Step::Moved) => match self.store.settlement(row.id).await {
                    Ok(Some(r)) => row = r,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(settlement = row.id, error = %e, "settlement: reload failed");
                        return;
                    }
                },
                Ok(Step::Wait) => return,
                Err(e) => {
                    tracing::warn!(settlement = row.id, error = %e, "settlement step failed");
                    return;
                }
            }
        }
    }

    async fn update(
        &self,
        row: &SettlementRecord,
        update: SettlementUpdate,
        outbox: &[NewOutboxEvent],
    ) -> Result<Step, StepError> {
        if self
            .store
            .update_settlement(row, &update, outbox, self.clock.now())
            .await?
        {
            Ok(Step::Moved)
        } else {
            // Another runner moved it: nothing for us to do.
            Ok(Step::Wait)
        }
    }

    async fn step(&self, row: &SettlementRecord) -> Result<Step, StepError> {
        match row.status {
            SettlementStatus::Pending => self.pending(row).await,
            SettlementStatus::Broadcast => self.broadcast(row).await,
            SettlementStatus::Confirmed => self.publish(row).await,
            SettlementStatus::Published | SettlementStatus::Failed => Ok(Step::Wait),
        }
    }

    async fn pending(&self, row: &SettlementRecord) -> Result<Step, StepError> {
        let root = row
            .merkle_root
            .ok_or_else(|| StepError::Corrupt(format!("settlement {} has no root", row.id)))?;
        if row.attempts > 0 {
            let due = row
                .updated_at
                .plus_secs(self.config.backoff_secs(row.attempts));
            if self.clock.now() < due {
                return Ok(Step::Wait);
            }
            // The last attempt may have reached the chain before we could
            // record it: look before broadcasting again.
            if let Some(txid) = self.chain.find_commitment(root.0).await? {
                tracing::info!(settlement = row.id, %txid, "settlement: found an unrecorded broadcast");
                let u = SettlementUpdate {
                    l1_txid: Some(txid),
                    ..SettlementUpdate::to(SettlementStatus::Broadcast)
                };
                return self.update(row, u, &[]).await;
            }
            if row.attempts >= self.config.max_attempts {
                tracing::error!(
                    settlement = row.id,
                    attempts = row.attempts,
                    "settlement: giving up after repeated broadcast failures; operator action needed"
                );
                return self
                    .update(row, SettlementUpdate::to(SettlementStatus::Failed), &[])
                    .await;
            }
        }
        let estimate = self
            .chain
            .estimate_fee_rate(self.config.conf_target)
            .await?;
        let rate = self.config.next_fee_rate(estimate, row.fee_rate_sat_vb);
        // Persist the attempt before the side effect.
        let attempt = SettlementUpdate {
            fee_rate_sat_vb: Some(rate),
            count_attempt: true,
            ..SettlementUpdate::to(SettlementStatus::Pending)
        };
        if self.update(row, attempt, &[]).await? == Step::Wait {
            return Ok(Step::Wait);
        }
        let mut attempted = row.clone();
        attempted.attempts = row.attempts.saturating_add(1);
        attempted.fee_rate_sat_vb = Some(rate);
        let label = format!(
            "ark-relay settlement {} [{}, {})",
            row.id, row.period_start, row.period_end
        );
        match self.chain.broadcast_commitment(root.0, rate, &label).await {
            Ok(c) => {
                crate::metrics::settlement(true);
                tracing::info!(
                    settlement = row.id,
                    txid = %c.txid,
                    fee_rate = rate,
                    fee = c.fee.get(),
                    "settlement commitment broadcast"
                );
                let u = SettlementUpdate {
                    l1_txid: Some(c.txid),
                    ..SettlementUpdate::to(SettlementStatus::Broadcast)
                };
                self.update(&attempted, u, &[]).await
            }
            Err(e) => {
                crate::metrics::settlement(false);
                tracing::warn!(
                    settlement = row.id,
                    attempt = attempted.attempts,
                    fee_rate = rate,
                    error = %e,
                    retry_in_secs = self.config.backoff_secs(attempted.attempts),
                    "settlement broadcast failed; will retry with a higher fee"
                );
                Ok(Step::Wait)
            }
        }
    }

    async fn broadcast(&self, row: &SettlementRecord) -> Result<Step, StepError> {
        let txid = row
            .l1_txid
            .ok_or_else(|| StepError::Corrupt(format!("settlement {} has no txid", row.id)))?;
        match self.chain.tx_status(&txid).await? {
            Some(st) if st.confirmations >= self.config.min_confirmations.max(1) => {
                let Some(height) = st.block_height else {
                    return Ok(Step::Wait);
                };
                let u = SettlementUpdate {
                    block_height: Some(height),
                    ..SettlementUpdate::to(SettlementStatus::Confirmed)
                };
                self.update(row, u, &[]).await
            }
            Some(_) => Ok(Step::Wait),
            None => {
                tracing::warn!(settlement = row.id, %txid, "settlement tx unknown to the wallet; re-broadcasting");
                self.update(row, SettlementUpdate::to(SettlementStatus::Pending), &[])
                    .await
            }
        }
    }

    async fn publish(&self, row: &SettlementRecord) -> Result<Step, StepError> {
        let (Some(txid), Some(height), Some(root)) =
            (row.l1_txid, row.block_height, row.merkle_root)
        else {
            return Err(StepError::Corrupt(format!(
                "settlement {} confirmed without txid, height or root",
                row.id
            )));
        };
        let (event, row_out) = notice(&self.keys, row, &txid, height, &root)?;
        let u = SettlementUpdate {
            notice_event_id: Some(event),
            ..SettlementUpdate::to(SettlementStatus::Published)
        };
        let step = self.update(row, u, std::slice::from_ref(&row_out)).await?;
        if step == Step::Moved {
            tracing::info!(settlement = row.id, %txid, height, "31342 queued");
        }
        Ok(step)
    }
}

/// The signed 31342 for a confirmed settlement and its outbox row.
pub fn notice(
    keys: &Keys,
    row: &SettlementRecord,
    txid: &bitcoin::Txid,
    height: u32,
    root: &Node,
) -> Result<(EventId, NewOutboxEvent), ark_relay_protocol::builders::BuildError> {
    let content = L1Commitment {
        l1_txid: txid.to_string(),
        block_height: u64::from(height),
        merkle_root_of_l2_txs: root.to_string(),
        l2_tx_count: row.l2_tx_count,
        period: [row.period_start.0, row.period_end.0],
    };
    let event = builders::l1_commitment(keys, &content, &row.id.to_string())?;
    let id = EventId::from_bytes(event.id.to_bytes());
    Ok((
        id,
        NewOutboxEvent {
            dedupe_key: notice_dedupe_key(row.id),
            kind: kinds::L1_COMMITMENT,
            recipient: None,
            event_json: event.as_json(),
        },
    ))
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Store(#[from] ark_relay_core::StoreError),
    #[error(transparent)]
    Chain(#[from] ark_relay_core::backends::chain::ChainError),
    #[error(transparent)]
    Build(#[from] ark_relay_protocol::builders::BuildError),
    #[error("corrupt settlement: {0}")]
    Corrupt(String),
}

#[async_trait::async_trait]
impl Periodic for SettlementTask {
    fn name(&self) -> &'static str {
        "settlement"
    }

    fn every(&self) -> Duration {
        self.config.tick
    }

    async fn tick(&self) {
        self.run_once().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rate_bumps_and_caps() {
        let c = SettlementConfig::default();
        assert_eq!(c.next_fee_rate(25, None), 25);
        assert_eq!(c.next_fee_rate(25, Some(25)), 37);
        assert_eq!(c.next_fee_rate(60, Some(25)), 60, "a higher estimate wins");
        assert_eq!(c.next_fee_rate(1, Some(1)), 2, "always strictly higher");
        assert_eq!(c.next_fee_rate(1000, None), 500, "capped");
        assert_eq!(c.next_fee_rate(0, None), 1);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let c = SettlementConfig::default();
        assert_eq!(c.backoff_secs(1), 30);
        assert_eq!(c.backoff_secs(2), 60);
        assert_eq!(c.backoff_secs(3), 120);
        assert_eq!(c.backoff_secs(30), 3600);
    }
}
