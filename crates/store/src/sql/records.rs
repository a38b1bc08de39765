//! Idempotency records: processed Nostr events (unique event id) and intents
//! (unique event id and `(author, action_id)`).

use ark_relay_core::{
    ActionId, ErrorCode, EventId, IntentRecord, ProcessedEvent, PubKey, Recorded, StoreError,
};
use sqlx::AnyConnection;

use super::rows::{self, EVENT_COLUMNS, INTENT_COLUMNS};
use super::{inserted, is_unique_violation, map_err, SqlStore};

/// Inserts a processed-event row; `Ok(false)` if the id exists.
pub(super) async fn insert_event(
    conn: &mut AnyConnection,
    e: &ProcessedEvent,
    outcome: Option<ErrorCode>,
) -> Result<bool, StoreError> {
    let res = sqlx::query(
        "INSERT INTO processed_events (event_id, author, kind, created_at, received_at, \
         outcome_code) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(e.id.to_string())
    .bind(e.author.to_string())
    .bind(i64::from(e.kind))
    .bind(e.created_at.0)
    .bind(e.received_at.0)
    .bind(outcome.map(|c| i64::from(c.code())))
    .execute(&mut *conn)
    .await;
    inserted(res)
}

/// The intent kind number (31510), recorded with the processed event.
const INTENT_KIND: u16 = 31510;

impl SqlStore {
    pub(super) async fn do_record_event(&self, e: &ProcessedEvent) -> Result<Recorded, StoreError> {
        self.write(|| async move {
            let mut conn = self.pool.acquire().await.map_err(map_err)?;
            Ok(if insert_event(&mut conn, e, e.outcome).await? {
                Recorded::New
            } else {
                Recorded::Duplicate
            })
        })
        .await
    }

    pub(super) async fn do_record_events(
        &self,
        events: &[ProcessedEvent],
    ) -> Result<Vec<Recorded>, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                out.push(if insert_event(&mut tx, e, e.outcome).await? {
                    Recorded::New
                } else {
                    Recorded::Duplicate
                });
            }
            tx.commit().await.map_err(map_err)?;
            Ok(out)
        })
        .await
    }

    pub(super) async fn do_processed_event(
        &self,
        id: &EventId,
    ) -> Result<Option<ProcessedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM processed_events WHERE event_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::processed_event).transpose()
    }

    pub(super) async fn do_record_intent(&self, i: &IntentRecord) -> Result<Recorded, StoreError> {
        let event = ProcessedEvent {
            id: i.event_id,
            author: i.author,
            kind: INTENT_KIND,
            created_at: i.created_at,
            received_at: i.received_at,
            outcome: None,
        };
        let event = &event;
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let original =
                sqlx::query("SELECT event_id FROM intents WHERE author = ? AND action_id = ?")
                    .bind(i.author.to_string())
                    .bind(i.action_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .map(|row| rows::parse::<EventId>(&row, "event_id"))
                    .transpose()?;
            let outcome = original.is_some().then_some(ErrorCode::ReplayedAction);
            if !insert_event(&mut tx, event, outcome).await? {
                return Ok(Recorded::Duplicate);
            }
            if let Some(original) = original {
                tx.commit().await.map_err(map_err)?;
                return Ok(Recorded::ReplayedAction { original });
            }
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
                // A concurrent writer recorded the same action first: start over,
                // and the retry sees its row and reports the replay.
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Transient(Box::new(e)));
                }
                Err(e) => return Err(map_err(e)),
            }
            tx.commit().await.map_err(map_err)?;
            Ok(Recorded::New)
        })
        .await
    }

    pub(super) async fn do_intent_by_action(
        &self,
        author: &PubKey,
        action_id: &ActionId,
    ) -> Result<Option<IntentRecord>, StoreError> {
        let sql =
            format!("SELECT {INTENT_COLUMNS} FROM intents WHERE author = ? AND action_id = ?");
        let row = sqlx::query(&sql)
            .bind(author.to_string())
            .bind(action_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::intent).transpose()
    }
}
