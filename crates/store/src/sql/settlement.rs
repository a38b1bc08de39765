//! [`SettlementStore`] over the `settlements` table and `l2_transactions`
//! (`settlement_id` marks which settlement committed a transaction).
//!
//! Opening a period is one transaction: insert the row (the unique
//! `period_start` makes a second opener a no-op), claim every unclaimed L2
//! transaction finalized before the period's end, compute the Merkle root of
//! the claimed set and store it. So the leaves of a settlement never change
//! after it exists, and a transaction committed late (with a `finalized_at`
//! in an already closed period) is settled by the next period, never lost.

use ark_relay_core::merkle::{MerkleTree, Node};
use ark_relay_core::settlement::{
    OpenedPeriod, SettlementRecord, SettlementStatus, SettlementStore, SettlementUpdate,
};
use ark_relay_core::{EventId, NewOutboxEvent, StoreError, UnixTime};
use bitcoin::Txid;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::rows;
use super::{is_unique_violation, map_err, SqlStore};

const COLUMNS: &str = "id, period_start, period_end, merkle_root, l2_tx_count, l1_txid, \
     block_height, fee_rate_sat_vb, status, attempts, notice_event_id, created_at, updated_at";

fn u64_col(row: &AnyRow, col: &str) -> Result<u64, StoreError> {
    let v = rows::int(row, col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn record(row: &AnyRow) -> Result<SettlementRecord, StoreError> {
    let height = rows::opt_int(row, "block_height")?
        .map(|h| u32::try_from(h).map_err(|_| StoreError::Corrupt(format!("block_height {h}"))))
        .transpose()?;
    let fee = rows::opt_int(row, "fee_rate_sat_vb")?
        .map(|f| u64::try_from(f).map_err(|_| StoreError::Corrupt(format!("fee rate {f}"))))
        .transpose()?;
    let attempts = rows::int(row, "attempts")?;
    Ok(SettlementRecord {
        id: rows::int(row, "id")?,
        period_start: UnixTime(rows::int(row, "period_start")?),
        period_end: UnixTime(rows::int(row, "period_end")?),
        merkle_root: rows::opt_parse::<Node>(row, "merkle_root")?,
        l2_tx_count: u64_col(row, "l2_tx_count")?,
        l1_txid: rows::opt_parse::<Txid>(row, "l1_txid")?,
        block_height: height,
        fee_rate_sat_vb: fee,
        status: rows::parse::<SettlementStatus>(row, "status")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        notice_event_id: rows::opt_parse::<EventId>(row, "notice_event_id")?,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
    })
}

fn txids(rows_: &[AnyRow]) -> Result<Vec<Txid>, StoreError> {
    rows_
        .iter()
        .map(|r| rows::parse::<Txid>(r, "ark_txid"))
        .collect()
}

fn i64c(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlStore {
    async fn one(&self, sql: &str, bind: i64) -> Result<Option<SettlementRecord>, StoreError> {
        let row = sqlx::query(sql)
            .bind(bind)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(record).transpose()
    }
}

#[async_trait::async_trait]
impl SettlementStore for SqlStore {
    async fn l2_txids_finalized(
        &self,
        from: UnixTime,
        to: UnixTime,
    ) -> Result<Vec<Txid>, StoreError> {
        let rows_ = sqlx::query(
            "SELECT ark_txid FROM l2_transactions WHERE finalized_at >= ? AND finalized_at < ? \
             ORDER BY ark_txid",
        )
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        txids(&rows_)
    }

    async fn first_unsettled_at(&self) -> Result<Option<UnixTime>, StoreError> {
        let row = sqlx::query(
            "SELECT finalized_at FROM l2_transactions WHERE settlement_id IS NULL \
             ORDER BY finalized_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| rows::int(&r, "finalized_at").map(UnixTime))
            .transpose()
    }

    async fn open_period(
        &self,
        from: UnixTime,
        to: UnixTime,
        now: UnixTime,
    ) -> Result<OpenedPeriod, StoreError> {
        if to <= from {
            return Err(StoreError::Corrupt(format!(
                "empty settlement period [{from}, {to})"
            )));
        }
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let inserted = sqlx::query(
                "INSERT INTO settlements (period_start, period_end, l2_tx_count, status, \
                 attempts, created_at, updated_at) VALUES (?, ?, 0, 'pending', 0, ?, ?)",
            )
            .bind(from.0)
            .bind(to.0)
            .bind(now.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(OpenedPeriod::Exists),
                Err(e) => return Err(map_err(e)),
            }
            let id: i64 = sqlx::query("SELECT id FROM settlements WHERE period_start = ?")
                .bind(from.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?
                .try_get("id")
                .map_err(map_err)?;
            sqlx::query(
                "UPDATE l2_transactions SET settlement_id = ? \
                 WHERE settlement_id IS NULL AND finalized_at < ?",
            )
            .bind(id)
            .bind(to.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let claimed = sqlx::query(
                "SELECT ark_txid FROM l2_transactions WHERE settlement_id = ? ORDER BY ark_txid",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            let tree = MerkleTree::new(txids(&claimed)?);
            let status = if tree.is_empty() {
                SettlementStatus::Published
            } else {
                SettlementStatus::Pending
            };
            sqlx::query(
                "UPDATE settlements SET merkle_root = ?, l2_tx_count = ?, status = ? WHERE id = ?",
            )
            .bind(tree.root().to_string())
            .bind(i64c(tree.len() as u64))
            .bind(status.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let sql = format!("SELECT {COLUMNS} FROM settlements WHERE id = ?");
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
            let rec = record(&row)?;
            tx.commit().await.map_err(map_err)?;
            Ok(OpenedPeriod::New(rec))
        })
        .await
    }

    async fn update_settlement(
        &self,
        seen: &SettlementRecord,
        update: &SettlementUpdate,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.update_with_outbox(
            || {
                sqlx::query(
                    "UPDATE settlements SET status = ?, l1_txid = COALESCE(?, l1_txid), \
                     block_height = COALESCE(?, block_height), \
                     fee_rate_sat_vb = COALESCE(?, fee_rate_sat_vb), attempts = attempts + ?, \
                     notice_event_id = COALESCE(?, notice_event_id), updated_at = ? \
                     WHERE id = ? AND status = ? AND attempts = ?",
                )
                .bind(update.status.as_str())
                .bind(update.l1_txid.map(|t| t.to_string()))
                .bind(update.block_height.map(i64::from))
                .bind(update.fee_rate_sat_vb.map(i64c))
                .bind(i64::from(update.count_attempt))
                .bind(update.notice_event_id.map(|e| e.to_string()))
                .bind(now.0)
                .bind(seen.id)
                .bind(seen.status.as_str())
                .bind(i64::from(seen.attempts))
            },
            outbox,
            now,
        )
        .await
    }

    async fn settlement(&self, id: i64) -> Result<Option<SettlementRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM settlements WHERE id = ?");
        self.one(&sql, id).await
    }

    async fn settlements(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SettlementRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM settlements WHERE id < ? ORDER BY id DESC LIMIT ?");
        let rows_ = sqlx::query(&sql)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows_.iter().map(record).collect()
    }

    async fn open_settlements(&self) -> Result<Vec<SettlementRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM settlements WHERE status IN ('pending', 'broadcast', \
             'confirmed') ORDER BY period_start"
        );
        let rows_ = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows_.iter().map(record).collect()
    }

    async fn last_period(&self) -> Result<Option<SettlementRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM settlements ORDER BY period_start DESC LIMIT ?");
        self.one(&sql, 1).await
    }

    async fn settlement_txids(&self, id: i64) -> Result<Vec<Txid>, StoreError> {
        let rows_ = sqlx::query(
            "SELECT ark_txid FROM l2_transactions WHERE settlement_id = ? ORDER BY ark_txid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        txids(&rows_)
    }

    async fn settlement_of(&self, ark_txid: &Txid) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT settlement_id FROM l2_transactions WHERE ark_txid = ?")
            .bind(ark_txid.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row
            .map(|r| rows::opt_int(&r, "settlement_id"))
            .transpose()?
            .flatten())
    }
}
