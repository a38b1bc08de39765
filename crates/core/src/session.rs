//! Signing sessions (PRD §10.1): one persisted row per ceremony with one party.
//!
//! The fine state machine lives in `state` (the PRD's names:
//! `intent_received → ark_tx_prepared → checkpoint_txs_prepared →
//! signatures_collected → ark_executed → completed`, plus `failed`/`expired`,
//! and `ark_tx_signed`, written just before `SubmitTx` so a crash there is
//! recognisable); `status` is the PRD's coarse view. `data` is the engine's
//! JSON (PSBTs, plan, signatures), opaque to the store.

use bitcoin::Txid;
use serde::{Deserialize, Serialize};

use crate::{ErrorCode, EventId, PubKey, SessionId, UnixTime};

/// The PRD's coarse session status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Created, nothing sent yet.
    Pending,
    /// Waiting for the party or the Ark server.
    Active,
    /// Finished; the transaction is final.
    Completed,
    /// Failed with an error code.
    Failed,
    /// Ran out of time.
    Expired,
}

impl SessionStatus {
    /// Database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Active => "active",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Expired => "expired",
        }
    }

    /// Whether the session is over.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Expired
        )
    }
}

impl std::str::FromStr for SessionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(SessionStatus::Pending),
            "active" => Ok(SessionStatus::Active),
            "completed" => Ok(SessionStatus::Completed),
            "failed" => Ok(SessionStatus::Failed),
            "expired" => Ok(SessionStatus::Expired),
            other => Err(format!("unknown session status {other:?}")),
        }
    }
}

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id (the intent's event id for a single intent).
    pub id: SessionId,
    /// The party signing.
    pub user: PubKey,
    /// The 31510 it executes.
    pub intent: EventId,
    /// Coarse status.
    pub status: SessionStatus,
    /// Fine state (see the module docs).
    pub state: String,
    /// The step waited on (`sign_ark_tx`, `sign_checkpoint_txs`).
    pub current_step: Option<String>,
    /// Steps done so far.
    pub steps_completed: Vec<String>,
    /// Created.
    pub created_at: UnixTime,
    /// Last transition.
    pub updated_at: UnixTime,
    /// The whole session must end by then (15 minutes by default).
    pub expires_at: UnixTime,
    /// The current step must be answered by then.
    pub step_deadline: Option<UnixTime>,
    /// Why it failed.
    pub error_code: Option<ErrorCode>,
    /// Details of the failure.
    pub error_message: Option<String>,
    /// Engine data (JSON).
    pub data: String,
    /// The batch it belongs to.
    pub batch_id: Option<String>,
    /// The ark txid, once known (written before `SubmitTx`).
    pub ark_txid: Option<Txid>,
    /// Optimistic-concurrency version: bumped by every update.
    pub version: i64,
}
