//! Ingest, jobs and outbox: the durable record of work the relay owes.

use ark_relay_core::{
    EventId, IntentRecord, Job, JobRecord, JobStatus, NewOutboxEvent, OutboxItem, ProcessedEvent,
    Recorded, StoreError, UnixTime,
};
use sqlx::AnyConnection;

use super::records::insert_event;
use super::rows::{self};
use super::{is_unique_violation, map_err, placeholders, SqlStore};

/// A statement built afresh for every attempt of a write (binds owned values).
pub(super) type Statement =
    sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

impl SqlStore {
    /// Runs the optimistic `update` (an `UPDATE … WHERE <expected state>`)
    /// and, only if it changed a row, queues `outbox` in the same
    /// transaction. `false`: the row was not in the expected state.
    pub(super) async fn update_with_outbox<F>(
        &self,
        update: F,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError>
    where
        F: Fn() -> Statement,
    {
        let update = &update;
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let updated = update()
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            insert_outbox(&mut tx, outbox, now).await?;
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }
}

/// The `UPDATE` that finishes job `key` if it is still pending.
pub(super) fn finish_job(
    key: &str,
    status: JobStatus,
    error: Option<&str>,
    now: UnixTime,
) -> Statement {
    sqlx::query(
        "UPDATE jobs SET status = ?, attempts = attempts + 1, updated_at = ?, \
         last_error = ? WHERE job_key = ? AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(now.0)
    .bind(error.map(str::to_owned))
    .bind(key.to_owned())
}

/// Inserts outbox rows, skipping existing dedupe keys.
pub(super) async fn insert_outbox(
    conn: &mut AnyConnection,
    events: &[NewOutboxEvent],
    now: UnixTime,
) -> Result<(), StoreError> {
    for e in events {
        let res = sqlx::query(
            "INSERT INTO outbox (dedupe_key, kind, recipient, event_json, created_at, \
             next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.dedupe_key.clone())
        .bind(i64::from(e.kind))
        .bind(e.recipient.map(|r| r.to_string()))
        .bind(e.event_json.clone())
        .bind(now.0)
        .bind(now.0)
        .execute(&mut *conn)
        .await;
        match res {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {}
            Err(err) => return Err(map_err(err)),
        }
    }
    Ok(())
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn job_record(row: &sqlx::any::AnyRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        job: Job {
            key: rows::text(row, "job_key")?,
            kind: rows::text(row, "kind")?,
            payload: rows::text(row, "payload")?,
        },
        status: rows::parse::<JobStatus>(row, "status")?,
        attempts: u32_of(rows::int(row, "attempts")?),
        created_at: UnixTime(rows::int(row, "created_at")?),
        last_error: rows::opt_text(row, "last_error")?,
    })
}

impl SqlStore {
    pub(super) async fn do_accept_event(
        &self,
        event: &ProcessedEvent,
        intent: Option<&IntentRecord>,
        job: &Job,
        now: UnixTime,
    ) -> Result<Recorded, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            if let Some(i) = intent {
                let original =
                    sqlx::query("SELECT event_id FROM intents WHERE author = ? AND action_id = ?")
                        .bind(i.author.to_string())
                        .bind(i.action_id.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .map(|row| rows::parse::<EventId>(&row, "event_id"))
                        .transpose()?;
                if let Some(original) = original {
                    if original == event.id {
                        return Ok(Recorded::Duplicate);
                    }
                    return Ok(Recorded::ReplayedAction { original });
                }
            }
            if !insert_event(&mut tx, event, None).await? {
                return Ok(Recorded::Duplicate);
            }
            if let Some(i) = intent {
                let res = sqlx::query(
                    "INSERT INTO intents (event_id, author, action_id, intent_type, content, \
                     created_at, expires_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(i.event_id.to_string())
                .bind(i.author.to_string())
                .bind(i.action_id.to_string())
                .bind(i.intent_type.clone())
                .bind(i.content.clone())
                .bind(i.created_at.0)
                .bind(i.expires_at.0)
                .bind(i.received_at.0)
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(_) => {}
                    // Lost a race for the same action: retry sees the winner's row.
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Transient(Box::new(e)));
                    }
                    Err(e) => return Err(map_err(e)),
                }
            }
            let res = sqlx::query(
                "INSERT INTO jobs (job_key, kind, payload, status, available_at, created_at, \
                 updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
            )
            .bind(job.key.clone())
            .bind(job.kind.clone())
            .bind(job.payload.clone())
            .bind(now.0)
            .bind(now.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(Recorded::Duplicate),
                Err(e) => return Err(map_err(e)),
            }
            tx.commit().await.map_err(map_err)?;
            Ok(Recorded::New)
        })
        .await
    }

    pub(super) async fn do_reject_event(
        &self,
        event: &ProcessedEvent,
        notice: &NewOutboxEvent,
        now: UnixTime,
    ) -> Result<Recorded, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            if !insert_event(&mut tx, event, event.outcome).await? {
                return Ok(Recorded::Duplicate);
            }
            insert_outbox(&mut tx, std::slice::from_ref(notice), now).await?;
            tx.commit().await.map_err(map_err)?;
            Ok(Recorded::New)
        })
        .await
    }

    pub(super) async fn do_last_processed_at(&self) -> Result<Option<UnixTime>, StoreError> {
        let row = sqlx::query("SELECT MAX(created_at) AS m FROM processed_events")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows::opt_int(&row, "m")?.map(UnixTime))
    }

    pub(super) async fn do_job(&self, key: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT job_key, kind, payload, status, attempts, created_at, last_error \
             FROM jobs WHERE job_key = ?",
        )
        .bind(key.to_owned())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(job_record).transpose()
    }

    pub(super) async fn do_pending_jobs(
        &self,
        created_before: UnixTime,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_key, kind, payload, status, attempts, created_at, last_error FROM jobs \
             WHERE status = 'pending' AND created_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(created_before.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| job_record(r).map(|j| j.job)).collect()
    }

    pub(super) async fn do_finish_job(
        &self,
        key: &str,
        status: JobStatus,
        outbox: &[NewOutboxEvent],
        error: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let updated = finish_job(key, status, error, now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            insert_outbox(&mut tx, outbox, now).await?;
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn do_push_outbox(
        &self,
        events: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            insert_outbox(&mut tx, events, now).await?;
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    pub(super) async fn do_due_outbox(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dedupe_key, kind, event_json, attempts, created_at, delivered_at \
             FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(OutboxItem {
                    id: rows::int(r, "id")?,
                    dedupe_key: rows::text(r, "dedupe_key")?,
                    kind: u16::try_from(rows::int(r, "kind")?)
                        .map_err(|e| StoreError::Corrupt(format!("outbox kind: {e}")))?,
                    event_json: rows::text(r, "event_json")?,
                    attempts: u32_of(rows::int(r, "attempts")?),
                    created_at: UnixTime(rows::int(r, "created_at")?),
                    delivered_at: rows::opt_int(r, "delivered_at")?.map(UnixTime),
                })
            })
            .collect()
    }

    pub(super) async fn do_mark_outbox_delivered(
        &self,
        id: i64,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|| async move {
            sqlx::query(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 \
                 WHERE id = ? AND delivered_at IS NULL",
            )
            .bind(now.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn do_mark_outbox_delivered_many(
        &self,
        ids: &[i64],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 \
             WHERE delivered_at IS NULL AND id IN ({})",
            placeholders(ids.len())
        );
        let sql = &sql;
        self.write(|| async move {
            let mut q = sqlx::query(sql).bind(now.0);
            for id in ids {
                q = q.bind(*id);
            }
            q.execute(&self.pool).await.map_err(map_err)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn do_mark_outbox_retry(
        &self,
        id: i64,
        next: UnixTime,
        error: &str,
    ) -> Result<(), StoreError> {
        self.write(|| async move {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
                 WHERE id = ? AND delivered_at IS NULL",
            )
            .bind(next.0)
            .bind(error.chars().take(1000).collect::<String>())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
