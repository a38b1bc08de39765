//! The wallet's history of what it sent and received, and the outcome of
//! each intent (kept in `WalletOptions::history_file` when set).

use serde::{Deserialize, Serialize};

use super::{State, Wallet};
use ark_relay_core::EventId;

/// The outcome of an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Published, no outcome yet.
    Pending,
    /// Confirmed by a 31340.
    Completed {
        /// The ark txid.
        ark_txid: String,
    },
    /// Refused by the relay (31341).
    Failed {
        /// The code.
        code: u16,
        /// The message.
        message: String,
    },
    /// The wallet stopped waiting (and stopped signing for it).
    TimedOut,
}

/// One entry of [`Wallet::history`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `sent` (an intent of mine) or `received` (a 31340 crediting me).
    pub direction: String,
    /// The intent's event id (sent) or the ark txid (received).
    pub id: String,
    /// The counterparty (recipient of a send).
    pub counterparty: Option<String>,
    /// The asset as written in the intent, or in the confirmation.
    pub asset: String,
    /// The amount.
    pub amount: u64,
    /// The fee paid.
    pub fee: u64,
    /// Unix seconds.
    pub at: i64,
    /// What happened.
    pub outcome: Outcome,
    /// Challenges answered: `step N signed` or `step N refused: reason`.
    #[serde(default)]
    pub challenges: Vec<String>,
}

impl Wallet {
    pub(super) fn save_history(&self, st: &State) {
        if let Some(path) = &self.inner.opts.history_file {
            if let Ok(text) = serde_json::to_string_pretty(&st.history) {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = std::fs::write(path, text) {
                    tracing::warn!(error = %e, "cannot write wallet history");
                }
            }
        }
    }
}

pub(super) fn set_outcome(st: &mut State, id: &EventId, outcome: Outcome) {
    let id = id.to_string();
    if let Some(h) = st.history.iter_mut().find(|h| h.id == id) {
        // A completion overrides a timeout; nothing else overrides an outcome.
        if h.outcome == Outcome::Pending || matches!(outcome, Outcome::Completed { .. }) {
            h.outcome = outcome;
        }
    }
}
