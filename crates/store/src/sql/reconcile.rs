//! [`ReconcileStore`] over `vtxos` (paging the unspent ledger), `vtxo_disputes`
//! (the disputed set the plan-and-lock loop refuses) and `reconciliation_runs`
//! (run summaries for `/health`).

use ark_relay_core::reconcile::{
    Dispute, DisputeReason, ReconcileStatus, ReconcileStore, ReconciliationRun,
};
use ark_relay_core::{StoreError, UnixTime, Vtxo, VtxoId};
use sqlx::any::AnyRow;

use super::rows::{self, VTXO_COLUMNS};
use super::{map_err, placeholders, SqlStore};

fn i64c(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64c(row: &AnyRow, col: &str) -> Result<u64, StoreError> {
    let v = rows::int(row, col)?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("reconciliation_runs.{col} = {v}")))
}

fn run(row: &AnyRow) -> Result<ReconciliationRun, StoreError> {
    Ok(ReconciliationRun {
        started_at: UnixTime(rows::int(row, "started_at")?),
        finished_at: UnixTime(rows::int(row, "finished_at")?),
        checked: u64c(row, "checked")?,
        in_flight: u64c(row, "in_flight")?,
        differences: u64c(row, "differences")?,
        disputed: u64c(row, "disputed")?,
        status: rows::parse::<ReconcileStatus>(row, "status")?,
        detail: rows::text(row, "detail")?,
    })
}

#[async_trait::async_trait]
impl ReconcileStore for SqlStore {
    async fn unspent_page(
        &self,
        after: Option<&VtxoId>,
        limit: u32,
    ) -> Result<Vec<Vtxo>, StoreError> {
        let after = after.map(ToString::to_string).unwrap_or_default();
        let sql = format!(
            "SELECT {VTXO_COLUMNS} FROM vtxos WHERE status IN ('available', 'assigned') \
             AND vtxo_id > ? ORDER BY vtxo_id LIMIT ?"
        );
        let rows: Vec<AnyRow> = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::vtxo).collect()
    }

    async fn record_reconciliation(
        &self,
        r: &ReconciliationRun,
        disputes: Option<&[Dispute]>,
    ) -> Result<(), StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            sqlx::query(
                "INSERT INTO reconciliation_runs (started_at, finished_at, checked, in_flight, \
                 differences, disputed, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.started_at.0)
            .bind(r.finished_at.0)
            .bind(i64c(r.checked))
            .bind(i64c(r.in_flight))
            .bind(i64c(r.differences))
            .bind(i64c(r.disputed))
            .bind(r.status.as_str())
            .bind(r.detail.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if let Some(disputes) = disputes {
                sqlx::query("DELETE FROM vtxo_disputes")
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let mut seen = std::collections::BTreeSet::new();
                for d in disputes.iter().filter(|d| seen.insert(d.vtxo)) {
                    sqlx::query(
                        "INSERT INTO vtxo_disputes (vtxo_id, reason, detected_at) VALUES (?, ?, ?)",
                    )
                    .bind(d.vtxo.to_string())
                    .bind(d.reason.as_str())
                    .bind(r.finished_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    async fn last_reconciliation(&self) -> Result<Option<ReconciliationRun>, StoreError> {
        let row = sqlx::query(
            "SELECT started_at, finished_at, checked, in_flight, differences, disputed, status, \
             detail FROM reconciliation_runs ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(run).transpose()
    }

    async fn disputes_among(&self, ids: &[VtxoId]) -> Result<Vec<Dispute>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT vtxo_id, reason FROM vtxo_disputes WHERE vtxo_id IN ({}) ORDER BY vtxo_id",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id.to_string());
        }
        let rows: Vec<AnyRow> = q.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Dispute {
                    vtxo: rows::parse::<VtxoId>(r, "vtxo_id")?,
                    reason: rows::parse::<DisputeReason>(r, "reason")?,
                })
            })
            .collect()
    }
}
