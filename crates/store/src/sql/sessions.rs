//! Signing sessions: create, read, optimistic update with outbox, due scan.

use ark_relay_core::{
    ErrorCode, EventId, JobStatus, NewOutboxEvent, PubKey, Recorded, SessionId, SessionRecord,
    SessionStatus, SessionWrite, StoreError, UnixTime,
};
use bitcoin::Txid;
use sqlx::any::AnyRow;

use super::ledger::LedgerCommit;
use super::rows;
use super::work::{finish_job, insert_outbox, Statement};
use super::{is_unique_violation, map_err, SqlStore};

const COLUMNS: &str = "session_id, user_pubkey, intent_event_id, status, state, current_step, \
     steps_completed, created_at, updated_at, expires_at, step_deadline, error_code, error_message, \
     session_data, batch_id, ark_txid, version";

fn record(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    let steps: Vec<String> = match rows::opt_text(row, "steps_completed")? {
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| StoreError::Corrupt(format!("steps_completed: {e}")))?,
        None => Vec::new(),
    };
    let error_code = rows::opt_int(row, "error_code")?
        .map(|c| {
            u16::try_from(c)
                .ok()
                .and_then(ErrorCode::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("error_code {c}")))
        })
        .transpose()?;
    Ok(SessionRecord {
        id: rows::parse::<SessionId>(row, "session_id")?,
        user: rows::parse::<PubKey>(row, "user_pubkey")?,
        intent: rows::parse::<EventId>(row, "intent_event_id")?,
        status: rows::parse::<SessionStatus>(row, "status")?,
        state: rows::text(row, "state")?,
        current_step: rows::opt_text(row, "current_step")?,
        steps_completed: steps,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
        expires_at: UnixTime(rows::int(row, "expires_at")?),
        step_deadline: rows::opt_int(row, "step_deadline")?.map(UnixTime),
        error_code,
        error_message: rows::opt_text(row, "error_message")?,
        data: rows::opt_text(row, "session_data")?.unwrap_or_default(),
        batch_id: rows::opt_text(row, "batch_id")?,
        ark_txid: rows::opt_parse::<Txid>(row, "ark_txid")?,
        version: rows::int(row, "version")?,
    })
}

fn steps_json(s: &SessionRecord) -> Result<String, StoreError> {
    serde_json::to_string(&s.steps_completed).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqlStore {
    pub(super) async fn do_create_session(
        &self,
        s: &SessionRecord,
    ) -> Result<Recorded, StoreError> {
        let steps = steps_json(s)?;
        let steps = &steps;
        self.write(|| async move {
            let res = sqlx::query(
                "INSERT INTO signing_sessions (session_id, user_pubkey, intent_event_id, status, \
                 state, current_step, steps_completed, created_at, updated_at, expires_at, \
                 step_deadline, error_code, error_message, session_data, batch_id, ark_txid, \
                 version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(s.id.to_string())
            .bind(s.user.to_string())
            .bind(s.intent.to_string())
            .bind(s.status.as_str())
            .bind(s.state.clone())
            .bind(s.current_step.clone())
            .bind(steps.clone())
            .bind(s.created_at.0)
            .bind(s.updated_at.0)
            .bind(s.expires_at.0)
            .bind(s.step_deadline.map(|t| t.0))
            .bind(s.error_code.map(|c| i64::from(c.code())))
            .bind(s.error_message.clone())
            .bind(s.data.clone())
            .bind(s.batch_id.clone())
            .bind(s.ark_txid.map(|t| t.to_string()))
            .bind(s.version)
            .execute(&self.pool)
            .await;
            match res {
                Ok(_) => Ok(Recorded::New),
                Err(e) if is_unique_violation(&e) => Ok(Recorded::Duplicate),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    pub(super) async fn do_session(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM signing_sessions WHERE session_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(record).transpose()
    }

    pub(super) async fn do_update_session(
        &self,
        s: &SessionRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let steps = steps_json(s)?;
        self.update_with_outbox(|| update(s, &steps, now, true), outbox, now)
            .await
    }

    pub(super) async fn do_intent_status(
        &self,
        id: &EventId,
    ) -> Result<Option<SessionStatus>, StoreError> {
        let row = sqlx::query("SELECT status FROM intents WHERE event_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        match rows::text(&row, "status")?.as_str() {
            "received" => Ok(Some(SessionStatus::Pending)),
            other => other.parse().map(Some).map_err(StoreError::Corrupt),
        }
    }

    pub(super) async fn do_write_session(
        &self,
        w: &SessionWrite<'_>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let steps = steps_json(w.session)?;
        let mirrors: Vec<(&SessionRecord, String)> = w
            .mirrors
            .iter()
            .map(|m| Ok((m, steps_json(m)?)))
            .collect::<Result<_, StoreError>>()?;
        let ledger = w.ledger.map(LedgerCommit::of).transpose()?;
        let (steps, mirrors, ledger) = (&steps, &mirrors, &ledger);
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let updated = update(w.session, steps, now, true)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            for (m, m_steps) in mirrors {
                update(m, m_steps, now, false)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
            for s in std::iter::once(w.session).chain(w.mirrors) {
                intent_follows(s).execute(&mut *tx).await.map_err(map_err)?;
            }
            if let Some(c) = ledger {
                self.commit_in(&mut tx, c).await?;
            }
            if w.release_locks {
                sqlx::query(
                    "UPDATE vtxos SET locked_by = NULL, locked_at = NULL WHERE locked_by = ?",
                )
                .bind(w.session.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            insert_outbox(&mut tx, w.outbox, now).await?;
            if let Some(key) = w.finish_job {
                finish_job(key, JobStatus::Done, None, now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn do_due_sessions(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_sessions WHERE status IN ('pending', 'active') \
             AND (expires_at <= ? OR (step_deadline IS NOT NULL AND step_deadline <= ?)) \
             ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(now.0)
            .bind(now.0)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(record).collect()
    }
}

/// The `UPDATE` of session `s` (with `check_version`, only if its stored
/// version is still `s.version`), bumping the version.
fn update(s: &SessionRecord, steps: &str, now: UnixTime, check_version: bool) -> Statement {
    let sql = if check_version {
        "UPDATE signing_sessions SET status = ?, state = ?, current_step = ?, \
         steps_completed = ?, updated_at = ?, expires_at = ?, step_deadline = ?, \
         error_code = ?, error_message = ?, session_data = ?, batch_id = ?, ark_txid = ?, \
         completed_at = ?, version = version + 1 WHERE session_id = ? AND version = ?"
    } else {
        "UPDATE signing_sessions SET status = ?, state = ?, current_step = ?, \
         steps_completed = ?, updated_at = ?, expires_at = ?, step_deadline = ?, \
         error_code = ?, error_message = ?, session_data = ?, batch_id = ?, ark_txid = ?, \
         completed_at = ?, version = version + 1 WHERE session_id = ? AND version >= ?"
    };
    sqlx::query(sql)
        .bind(s.status.as_str())
        .bind(s.state.clone())
        .bind(s.current_step.clone())
        .bind(steps.to_owned())
        .bind(now.0)
        .bind(s.expires_at.0)
        .bind(s.step_deadline.map(|t| t.0))
        .bind(s.error_code.map(|c| i64::from(c.code())))
        .bind(s.error_message.clone())
        .bind(s.data.clone())
        .bind(s.batch_id.clone())
        .bind(s.ark_txid.map(|t| t.to_string()))
        .bind(s.status.is_final().then_some(now.0))
        .bind(s.id.to_string())
        .bind(if check_version { s.version } else { 0 })
}

/// The `UPDATE` that makes the intent a session executes follow it
/// (`intents.status`: received → active → completed / failed / expired).
/// A session whose intent is not an intent row (a batch coordinator, the
/// relay's own issue) changes nothing.
fn intent_follows(s: &SessionRecord) -> Statement {
    let status = match s.status {
        SessionStatus::Pending => "received",
        SessionStatus::Active => "active",
        SessionStatus::Completed => "completed",
        SessionStatus::Failed => "failed",
        SessionStatus::Expired => "expired",
    };
    sqlx::query(
        "UPDATE intents SET status = ?, session_id = ?, batch_id = ?, error_code = ? \
         WHERE event_id = ?",
    )
    .bind(status)
    .bind(s.id.to_string())
    .bind(s.batch_id.clone())
    .bind(s.error_code.map(|c| i64::from(c.code())))
    .bind(s.intent.to_string())
}
