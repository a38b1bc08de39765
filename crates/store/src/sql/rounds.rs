//! [`RoundStore`] over `round_jobs` and `round_participations`: the jobs the
//! relay registers in Ark batch rounds and the participation saga that
//! carries them through one round (core `rounds`).

use ark_relay_core::rounds::{
    ParticipationRecord, RoundEnd, RoundJobRecord, RoundJobStatus, RoundStore,
};
use ark_relay_core::{StoreError, UnixTime};
use sqlx::any::AnyRow;

use super::rows;
use super::{inserted, is_unique_violation, map_err, placeholders, SqlStore};

const JOB_COLUMNS: &str = "job_id, kind, status, job_data, attempts, participation_id, \
     not_before, commitment_txid, error, created_at, updated_at";

const PARTICIPATION_COLUMNS: &str =
    "participation_id, phase, state, version, done, created_at, updated_at";

fn job(row: &AnyRow) -> Result<RoundJobRecord, StoreError> {
    let attempts = rows::int(row, "attempts")?;
    Ok(RoundJobRecord {
        job_id: rows::text(row, "job_id")?,
        kind: rows::text(row, "kind")?,
        status: rows::parse::<RoundJobStatus>(row, "status")?,
        data: rows::text(row, "job_data")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("round_jobs.attempts = {attempts}")))?,
        participation: rows::opt_text(row, "participation_id")?,
        not_before: UnixTime(rows::int(row, "not_before")?),
        commitment_txid: rows::opt_text(row, "commitment_txid")?,
        error: rows::opt_text(row, "error")?,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
    })
}

fn participation(row: &AnyRow) -> Result<ParticipationRecord, StoreError> {
    Ok(ParticipationRecord {
        participation_id: rows::text(row, "participation_id")?,
        phase: rows::text(row, "phase")?,
        state: rows::text(row, "state")?,
        version: rows::int(row, "version")?,
        done: rows::int(row, "done")? != 0,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
    })
}

#[async_trait::async_trait]
impl RoundStore for SqlStore {
    async fn enqueue_round_job(&self, j: &RoundJobRecord) -> Result<bool, StoreError> {
        self.write(|| async move {
            let done = sqlx::query(
                "INSERT INTO round_jobs (job_id, kind, status, job_data, attempts, \
                 participation_id, not_before, commitment_txid, error, created_at, updated_at) \
                 VALUES (?, ?, 'pending', ?, 0, NULL, ?, NULL, NULL, ?, ?)",
            )
            .bind(j.job_id.as_str())
            .bind(j.kind.as_str())
            .bind(j.data.as_str())
            .bind(j.not_before.0)
            .bind(j.created_at.0)
            .bind(j.created_at.0)
            .execute(&self.pool)
            .await;
            inserted(done)
        })
        .await
    }

    async fn round_job(&self, job_id: &str) -> Result<Option<RoundJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM round_jobs WHERE job_id = ?"
        ))
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(job).transpose()
    }

    async fn due_round_jobs(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<RoundJobRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM round_jobs WHERE status = 'pending' AND not_before <= ? \
             ORDER BY id LIMIT ?"
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(job).collect()
    }

    async fn round_jobs_of(
        &self,
        kind: &str,
        status: RoundJobStatus,
        limit: u32,
    ) -> Result<Vec<RoundJobRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM round_jobs WHERE kind = ? AND status = ? \
             ORDER BY id DESC LIMIT ?"
        ))
        .bind(kind)
        .bind(status.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(job).collect()
    }

    async fn start_participation(
        &self,
        p: &ParticipationRecord,
        jobs: &[String],
    ) -> Result<bool, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            if !jobs.is_empty() {
                let q = format!(
                    "UPDATE round_jobs SET status = 'in_round', participation_id = ?, \
                     updated_at = ? WHERE status = 'pending' AND job_id IN ({})",
                    placeholders(jobs.len())
                );
                let mut q = sqlx::query(&q)
                    .bind(p.participation_id.as_str())
                    .bind(p.created_at.0);
                for j in jobs {
                    q = q.bind(j.as_str());
                }
                let moved = q.execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                if usize::try_from(moved).ok() != Some(jobs.len()) {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(false);
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO round_participations (participation_id, phase, state, version, \
                 done, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(p.participation_id.as_str())
            .bind(p.phase.as_str())
            .bind(p.state.as_str())
            .bind(p.version)
            .bind(i64::from(p.done))
            .bind(p.created_at.0)
            .bind(p.updated_at.0)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(false);
                }
                Err(e) => return Err(map_err(e)),
            }
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn save_participation(
        &self,
        participation_id: &str,
        version: i64,
        phase: &str,
        state: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(|| async move {
            let r = sqlx::query(
                "UPDATE round_participations SET phase = ?, state = ?, version = version + 1, \
                 updated_at = ? WHERE participation_id = ? AND version = ? AND done = 0",
            )
            .bind(phase)
            .bind(state)
            .bind(now.0)
            .bind(participation_id)
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(r.rows_affected() == 1)
        })
        .await
    }

    async fn finish_participation(
        &self,
        participation_id: &str,
        version: i64,
        phase: &str,
        state: &str,
        ends: &[(String, RoundEnd)],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let r = sqlx::query(
                "UPDATE round_participations SET phase = ?, state = ?, version = version + 1, \
                 done = 1, updated_at = ? WHERE participation_id = ? AND version = ? AND done = 0",
            )
            .bind(phase)
            .bind(state)
            .bind(now.0)
            .bind(participation_id)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if r.rows_affected() != 1 {
                tx.rollback().await.map_err(map_err)?;
                return Ok(false);
            }
            for (job_id, end) in ends {
                end_job(&mut tx, participation_id, job_id, end, now).await?;
            }
            // Jobs the saga did not name go back to the queue.
            sqlx::query(
                "UPDATE round_jobs SET status = 'pending', updated_at = ? \
                 WHERE participation_id = ? AND status = 'in_round'",
            )
            .bind(now.0)
            .bind(participation_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    async fn participation(
        &self,
        participation_id: &str,
    ) -> Result<Option<ParticipationRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PARTICIPATION_COLUMNS} FROM round_participations WHERE participation_id = ?"
        ))
        .bind(participation_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(participation).transpose()
    }

    async fn open_participations(&self) -> Result<Vec<ParticipationRecord>, StoreError> {
        let rows_ = sqlx::query(&format!(
            "SELECT {PARTICIPATION_COLUMNS} FROM round_participations WHERE done = 0 ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows_.iter().map(participation).collect()
    }
}

async fn end_job(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    participation_id: &str,
    job_id: &str,
    end: &RoundEnd,
    now: UnixTime,
) -> Result<(), StoreError> {
    let q = match end {
        RoundEnd::Finalized { commitment_txid } => sqlx::query(
            "UPDATE round_jobs SET status = 'done', commitment_txid = ?, error = NULL, \
             updated_at = ? WHERE job_id = ? AND participation_id = ? AND status = 'in_round'",
        )
        .bind(commitment_txid.as_str())
        .bind(now.0),
        // `status` first: MariaDB evaluates assignments left to right with
        // the new values, SQLite with the old ones.
        RoundEnd::Retry {
            error,
            max_attempts,
        } => sqlx::query(
            "UPDATE round_jobs SET \
             status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END, \
             attempts = attempts + 1, error = ?, updated_at = ? \
             WHERE job_id = ? AND participation_id = ? AND status = 'in_round'",
        )
        .bind(i64::from(*max_attempts))
        .bind(error.as_str())
        .bind(now.0),
        RoundEnd::Requeue { error, not_before } => sqlx::query(
            "UPDATE round_jobs SET status = 'pending', not_before = ?, error = ?, updated_at = ? \
             WHERE job_id = ? AND participation_id = ? AND status = 'in_round'",
        )
        .bind(not_before.0)
        .bind(error.as_str())
        .bind(now.0),
        RoundEnd::Failed { error } => sqlx::query(
            "UPDATE round_jobs SET status = 'failed', attempts = attempts + 1, error = ?, \
             updated_at = ? WHERE job_id = ? AND participation_id = ? AND status = 'in_round'",
        )
        .bind(error.as_str())
        .bind(now.0),
    };
    q.bind(job_id)
        .bind(participation_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    fn record(id: &str, not_before: i64) -> RoundJobRecord {
        RoundJobRecord {
            job_id: id.into(),
            kind: "inventory_renew".into(),
            status: RoundJobStatus::Pending,
            data: format!("{{\"job\":\"{id}\"}}"),
            attempts: 0,
            participation: None,
            not_before: UnixTime(not_before),
            commitment_txid: None,
            error: None,
            created_at: UnixTime(10),
            updated_at: UnixTime(10),
        }
    }

    fn saga(id: &str) -> ParticipationRecord {
        ParticipationRecord {
            participation_id: id.into(),
            phase: "registered".into(),
            state: "{}".into(),
            version: 0,
            done: false,
            created_at: UnixTime(20),
            updated_at: UnixTime(20),
        }
    }

    async fn lifecycle(db: TestDb) {
        let s = &db.store;
        assert!(s.enqueue_round_job(&record("a", 0)).await.unwrap());
        assert!(
            !s.enqueue_round_job(&record("a", 0)).await.unwrap(),
            "idempotent"
        );
        assert!(s.enqueue_round_job(&record("b", 0)).await.unwrap());
        assert!(s.enqueue_round_job(&record("later", 1_000)).await.unwrap());
        let due: Vec<_> = s
            .due_round_jobs(UnixTime(100), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.job_id)
            .collect();
        assert_eq!(due, ["a", "b"], "oldest first, not_before respected");

        let (a, b) = ("a".to_owned(), "b".to_owned());
        assert!(s
            .start_participation(&saga("p1"), &[a.clone(), b.clone()])
            .await
            .unwrap());
        // A second participation cannot take a job already in a round.
        assert!(!s
            .start_participation(&saga("p2"), std::slice::from_ref(&a))
            .await
            .unwrap());
        assert!(s.participation("p2").await.unwrap().is_none());
        let ja = s.round_job("a").await.unwrap().unwrap();
        assert_eq!(ja.status, RoundJobStatus::InRound);
        assert_eq!(ja.participation.as_deref(), Some("p1"));

        assert!(s
            .save_participation("p1", 0, "confirmed", "{\"x\":1}", UnixTime(30))
            .await
            .unwrap());
        assert!(
            !s.save_participation("p1", 0, "confirmed", "{}", UnixTime(30))
                .await
                .unwrap(),
            "stale version"
        );
        let open = s.open_participations().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].version, open[0].phase.as_str()), (1, "confirmed"));

        // A failed round: the jobs go back to pending with one attempt.
        let retry = RoundEnd::Retry {
            error: "batch failed".into(),
            max_attempts: 2,
        };
        assert!(s
            .finish_participation(
                "p1",
                1,
                "failed",
                "{}",
                &[("a".into(), retry.clone()), ("b".into(), retry.clone())],
                UnixTime(40)
            )
            .await
            .unwrap());
        assert!(
            !s.finish_participation("p1", 2, "failed", "{}", &[], UnixTime(40))
                .await
                .unwrap(),
            "done sagas do not move"
        );
        assert!(s.open_participations().await.unwrap().is_empty());
        let ja = s.round_job("a").await.unwrap().unwrap();
        assert_eq!((ja.status, ja.attempts), (RoundJobStatus::Pending, 1));
        assert_eq!(ja.error.as_deref(), Some("batch failed"));

        // The next round: a finalizes, b runs out of attempts in another.
        assert!(s
            .start_participation(&saga("p3"), std::slice::from_ref(&a))
            .await
            .unwrap());
        let fin = RoundEnd::Finalized {
            commitment_txid: "ab".repeat(32),
        };
        assert!(s
            .finish_participation(
                "p3",
                0,
                "finalized",
                "{}",
                &[("a".into(), fin)],
                UnixTime(50)
            )
            .await
            .unwrap());
        let ja = s.round_job("a").await.unwrap().unwrap();
        assert_eq!(ja.status, RoundJobStatus::Done);
        assert_eq!(ja.commitment_txid, Some("ab".repeat(32)));
        assert!(s
            .start_participation(&saga("p4"), std::slice::from_ref(&b))
            .await
            .unwrap());
        assert!(s
            .finish_participation(
                "p4",
                0,
                "failed",
                "{}",
                &[("b".into(), retry)],
                UnixTime(60)
            )
            .await
            .unwrap());
        let jb = s.round_job("b").await.unwrap().unwrap();
        assert_eq!((jb.status, jb.attempts), (RoundJobStatus::Failed, 2));
        let failed = s
            .round_jobs_of("inventory_renew", RoundJobStatus::Failed, 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        db.destroy().await;
    }

    #[tokio::test]
    async fn round_jobs_on_sqlite() {
        lifecycle(TestDb::sqlite().await.unwrap()).await;
    }

    #[tokio::test]
    async fn round_jobs_on_mariadb() {
        lifecycle(TestDb::mariadb().await.unwrap()).await;
    }
}
