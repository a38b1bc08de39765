//! What a session row's `session_data` holds: the typed record of an
//! unstarted intent or batch, a batch party, or the running ceremony.

use ark_relay_core::{EventId, PubKey, SessionId, SessionRecord, SessionStatus, UnixTime};
use ark_relay_protocol::crypto::Scheme;
use serde::{Deserialize, Serialize};

use super::fatal;
use crate::handlers::HandlerError;

/// What a session row's `session_data` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SessionData {
    /// An intent's session before its ceremony starts.
    Received,
    /// A batch request before its ceremony starts.
    Batch(BatchRequest),
    /// A party of a batch: its ceremony is the coordinator's.
    Party,
    /// The running (or ended) ceremony.
    Running(Box<ark_relay_ceremony::Ceremony>),
}

impl SessionData {
    pub(crate) fn parse(row: &SessionRecord) -> Result<Self, HandlerError> {
        if row.data.trim().is_empty() {
            return Ok(SessionData::Received);
        }
        serde_json::from_str(&row.data).map_err(|e| fatal(format!("session {}: {e}", row.id)))
    }

    pub(crate) fn json(&self) -> Result<String, HandlerError> {
        serde_json::to_string(self).map_err(fatal)
    }
}

/// A batch request as the coordinator keeps it until its ceremony starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BatchRequest {
    pub(crate) request: EventId,
    pub(crate) submitter: PubKey,
    pub(crate) batch_id: String,
    /// The submitter spoke NIP-04.
    #[serde(default)]
    pub(crate) nip04: bool,
    /// The signed intents as submitted.
    pub(crate) intents: Vec<nostr::Event>,
}

impl BatchRequest {
    pub(crate) fn request_id(&self) -> String {
        self.request.to_string()
    }

    pub(crate) fn scheme(&self) -> Scheme {
        if self.nip04 {
            Scheme::Nip04
        } else {
            Scheme::Nip44
        }
    }
}

/// A session row whose ceremony has not started (`intent_received`), with
/// no step deadline and no batch; callers set those where they apply.
pub(crate) fn unstarted(
    id: SessionId,
    user: PubKey,
    intent: EventId,
    now: UnixTime,
    expires_at: UnixTime,
    data: &SessionData,
) -> Result<SessionRecord, HandlerError> {
    Ok(SessionRecord {
        id,
        user,
        intent,
        status: SessionStatus::Pending,
        state: "intent_received".into(),
        current_step: None,
        steps_completed: vec![],
        created_at: now,
        updated_at: now,
        expires_at,
        step_deadline: None,
        error_code: None,
        error_message: None,
        data: data.json()?,
        batch_id: None,
        ark_txid: None,
        version: 0,
    })
}
