//! [`InventoryStore`] over the `vtxo_inventory` table: one row per
//! replenishment batch (the level itself is counted from `vtxos`).

use ark_relay_core::inventory::{BatchStatus, InventoryBatch, InventoryStore};
use ark_relay_core::{StoreError, UnixTime};
use sqlx::any::AnyRow;

use super::rows;
use super::{is_unique_violation, map_err, SqlStore};

fn i64c(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64c(row: &AnyRow, col: &str) -> Result<u64, StoreError> {
    let v = rows::int(row, col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("vtxo_inventory.{col} = {v}")))
}

fn batch(row: &AnyRow) -> Result<InventoryBatch, StoreError> {
    let fee = rows::opt_int(row, "fee_rate_sat_vb")?
        .map(|f| u64::try_from(f).map_err(|_| StoreError::Corrupt(format!("fee rate {f}"))))
        .transpose()?;
    Ok(InventoryBatch {
        batch_id: rows::text(row, "batch_id")?,
        requested: u64c(row, "requested")?,
        created: u64c(row, "created")?,
        reason: rows::text(row, "reason")?,
        fee_rate_sat_vb: fee,
        status: rows::parse::<BatchStatus>(row, "status")?,
        l1_txid: rows::opt_text(row, "l1_txid")?,
        created_at: UnixTime(rows::int(row, "created_at")?),
        completed_at: rows::opt_int(row, "completed_at")?.map(UnixTime),
    })
}

#[async_trait::async_trait]
impl InventoryStore for SqlStore {
    async fn begin_batch(&self, b: &InventoryBatch) -> Result<(), StoreError> {
        self.write(|| async move {
            let done = sqlx::query(
                "INSERT INTO vtxo_inventory (batch_id, requested, created, reason, \
                 fee_rate_sat_vb, status, l1_txid, created_at, completed_at) \
                 VALUES (?, ?, 0, ?, ?, 'requested', NULL, ?, NULL)",
            )
            .bind(b.batch_id.as_str())
            .bind(i64c(b.requested))
            .bind(b.reason.as_str())
            .bind(b.fee_rate_sat_vb.map(i64c))
            .bind(b.created_at.0)
            .execute(&self.pool)
            .await;
            match done {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Ok(()),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    async fn finish_batch(
        &self,
        batch_id: &str,
        status: BatchStatus,
        created: u64,
        l1_txid: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if status == BatchStatus::Requested {
            return Err(StoreError::Corrupt(
                "finish_batch needs confirmed or failed".into(),
            ));
        }
        self.write(|| async move {
            let r = sqlx::query(
                "UPDATE vtxo_inventory SET status = ?, created = ?, l1_txid = ?, \
                 completed_at = ? WHERE batch_id = ? AND status = 'requested'",
            )
            .bind(status.as_str())
            .bind(i64c(created))
            .bind(l1_txid)
            .bind(now.0)
            .bind(batch_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(r.rows_affected() == 1)
        })
        .await
    }

    async fn recent_batches(&self, limit: u32) -> Result<Vec<InventoryBatch>, StoreError> {
        let rows_ = sqlx::query(
            "SELECT batch_id, requested, created, reason, fee_rate_sat_vb, status, l1_txid, \
             created_at, completed_at FROM vtxo_inventory ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(batch).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    async fn round_trip(db: TestDb) {
        let s = &db.store;
        let b = InventoryBatch {
            batch_id: "b-1".into(),
            requested: 1_000,
            created: 0,
            reason: "critical".into(),
            fee_rate_sat_vb: Some(25),
            status: BatchStatus::Requested,
            l1_txid: None,
            created_at: UnixTime(100),
            completed_at: None,
        };
        s.begin_batch(&b).await.unwrap();
        s.begin_batch(&b).await.unwrap(); // idempotent
        let got = s.recent_batches(10).await.unwrap();
        assert_eq!(got, vec![b.clone()]);
        assert!(s
            .finish_batch("b-1", BatchStatus::Confirmed, 1_000, None, UnixTime(160))
            .await
            .unwrap());
        assert!(!s
            .finish_batch("b-1", BatchStatus::Failed, 0, None, UnixTime(170))
            .await
            .unwrap());
        let got = &s.recent_batches(10).await.unwrap()[0];
        assert_eq!(
            (got.status, got.created, got.completed_at),
            (BatchStatus::Confirmed, 1_000, Some(UnixTime(160)))
        );
        let second = InventoryBatch {
            batch_id: "b-2".into(),
            fee_rate_sat_vb: None,
            ..b
        };
        s.begin_batch(&second).await.unwrap();
        let ids: Vec<String> = s
            .recent_batches(10)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.batch_id)
            .collect();
        assert_eq!(ids, ["b-2", "b-1"], "newest first");
        db.destroy().await;
    }

    #[tokio::test]
    async fn batches_on_sqlite() {
        round_trip(TestDb::sqlite().await.unwrap()).await;
    }

    #[tokio::test]
    async fn batches_on_mariadb() {
        round_trip(TestDb::mariadb().await.unwrap()).await;
    }
}
