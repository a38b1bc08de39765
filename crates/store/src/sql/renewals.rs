//! [`RenewalStore`] over `delegations`: users' VTXOs the relay renews or
//! recovers from a pre-signed delegation (core `renewals`).

use ark_relay_core::renewals::{DelegationRecord, DelegationStatus, RenewalStore};
use ark_relay_core::{StoreError, UnixTime};
use sqlx::any::AnyRow;

use super::rows;
use super::{inserted, map_err, SqlStore};

const COLUMNS: &str = "renewal_id, vtxo, owner, recovery, status, challenge, valid_at, \
     vtxo_expires_at, job_id, new_vtxo, reason, notified_at, created_at, updated_at";

fn record(row: &AnyRow) -> Result<DelegationRecord, StoreError> {
    Ok(DelegationRecord {
        renewal_id: rows::text(row, "renewal_id")?,
        vtxo: rows::text(row, "vtxo")?,
        owner: rows::text(row, "owner")?,
        recovery: rows::int(row, "recovery")? != 0,
        status: rows::parse::<DelegationStatus>(row, "status")?,
        challenge: rows::text(row, "challenge")?,
        valid_at: UnixTime(rows::int(row, "valid_at")?),
        vtxo_expires_at: UnixTime(rows::int(row, "vtxo_expires_at")?),
        job_id: rows::opt_text(row, "job_id")?,
        new_vtxo: rows::opt_text(row, "new_vtxo")?,
        reason: rows::opt_text(row, "reason")?,
        notified_at: rows::opt_int(row, "notified_at")?.map(UnixTime),
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
    })
}

#[async_trait::async_trait]
impl RenewalStore for SqlStore {
    async fn insert_delegation(&self, d: &DelegationRecord) -> Result<bool, StoreError> {
        self.write(|| async move {
            let done = sqlx::query(
                "INSERT INTO delegations (renewal_id, vtxo, owner, recovery, status, challenge, \
                 valid_at, vtxo_expires_at, job_id, new_vtxo, reason, notified_at, created_at, \
                 updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?)",
            )
            .bind(d.renewal_id.as_str())
            .bind(d.vtxo.as_str())
            .bind(d.owner.as_str())
            .bind(i64::from(d.recovery))
            .bind(d.status.as_str())
            .bind(d.challenge.as_str())
            .bind(d.valid_at.0)
            .bind(d.vtxo_expires_at.0)
            .bind(d.created_at.0)
            .bind(d.created_at.0)
            .execute(&self.pool)
            .await;
            inserted(done)
        })
        .await
    }

    async fn delegation(&self, renewal_id: &str) -> Result<Option<DelegationRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM delegations WHERE renewal_id = ?"
        ))
        .bind(renewal_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(record).transpose()
    }

    async fn delegations_of_vtxo(&self, vtxo: &str) -> Result<Vec<DelegationRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM delegations WHERE vtxo = ? ORDER BY id"
        ))
        .bind(vtxo)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(record).collect()
    }

    async fn delegations_of_owner(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DelegationRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM delegations WHERE owner = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(record).collect()
    }

    async fn move_delegation(
        &self,
        renewal_id: &str,
        from: DelegationStatus,
        to: DelegationStatus,
        job_id: Option<&str>,
        new_vtxo: Option<&str>,
        reason: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(|| async move {
            let done = sqlx::query(
                "UPDATE delegations SET status = ?, job_id = COALESCE(?, job_id), \
                 new_vtxo = COALESCE(?, new_vtxo), reason = COALESCE(?, reason), updated_at = ? \
                 WHERE renewal_id = ? AND status = ?",
            )
            .bind(to.as_str())
            .bind(job_id)
            .bind(new_vtxo)
            .bind(reason)
            .bind(now.0)
            .bind(renewal_id)
            .bind(from.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn mark_notified(&self, renewal_id: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.write(|| async move {
            let done = sqlx::query(
                "UPDATE delegations SET notified_at = ?, updated_at = ? \
                 WHERE renewal_id = ? AND notified_at IS NULL",
            )
            .bind(now.0)
            .bind(now.0)
            .bind(renewal_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn delegations_in(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<DelegationRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM delegations WHERE status = ? ORDER BY id LIMIT ?"
        ))
        .bind(status.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(record).collect()
    }
}
