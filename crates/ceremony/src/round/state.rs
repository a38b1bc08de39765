//! The persisted participation saga (JSON in `round_participations.state`)
//! and the in-memory scratch a live round needs (tree chunks, MuSig2 secret
//! nonces: never persisted, so a restart cannot reuse a nonce).

use ark_core::batch::NonceKps;
use ark_core::server::TreeTxNoncePks;
use ark_core::TxGraphChunk;
use ark_relay_core::rounds::RoundEnd;
use ark_relay_core::UnixTime;
use bitcoin::{Psbt, Txid};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::job::RoundJob;

/// Where one job stands inside the participation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EntryStatus {
    /// Its intent is built (or given) and about to be registered.
    Pending,
    /// Queued at the server.
    Registered {
        /// arkd's intent id.
        intent_id: String,
    },
    /// Taken by the round this participation follows (confirmed).
    InRound {
        /// arkd's intent id.
        intent_id: String,
    },
    /// Refused for good (bad job, definitive rejection).
    Refused {
        /// Why.
        error: String,
    },
    /// Not done this time; the job goes back to the queue.
    Retry {
        /// Why.
        error: String,
    },
}

/// One job of the participation with its intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The job.
    pub job: RoundJob,
    /// Its intent proof (relay-signed, or the delegation's).
    #[serde(with = "super::b64::opt_psbt", default)]
    pub proof: Option<Psbt>,
    /// The intent message, exactly as signed.
    pub message: Option<String>,
    /// Where it stands.
    pub status: EntryStatus,
}

impl Entry {
    /// The intent id, once registered.
    pub fn intent_id(&self) -> Option<&str> {
        match &self.status {
            EntryStatus::Registered { intent_id } | EntryStatus::InRound { intent_id } => {
                Some(intent_id)
            }
            _ => None,
        }
    }

    /// Whether it takes part in the followed round.
    pub fn in_round(&self) -> bool {
        matches!(self.status, EntryStatus::InRound { .. })
    }
}

/// The saga's phase (`round_participations.phase` is [`Phase::name`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Intents built; registrations under way.
    Registering,
    /// Intents queued at the server; waiting for a round to take them.
    Registered {
        /// Since when.
        since: UnixTime,
    },
    /// A round took (some of) them; confirmations sent.
    Confirmed {
        /// The round id.
        round_id: String,
        /// The VTXO tree's expiry (BIP68 sequence).
        batch_expiry: u32,
    },
    /// The tree is checked (it pays every job) and our nonces are sent.
    TreeNonces {
        /// The round id.
        round_id: String,
        /// The VTXO tree's expiry.
        batch_expiry: u32,
        /// The commitment tx the tree was checked against.
        commitment_txid: Txid,
    },
    /// Our partial signatures are sent.
    TreeSignatures {
        /// The round id.
        round_id: String,
        /// The commitment tx the tree was checked against.
        commitment_txid: Txid,
    },
    /// Forfeits (and boarding signatures) sent for this commitment tx, which
    /// was checked to create every job's outputs.
    ForfeitsSubmitted {
        /// The round id.
        round_id: String,
        /// The commitment txid.
        commitment_txid: Txid,
        /// When they were sent.
        at: UnixTime,
    },
    /// The commitment tx is broadcast: the jobs are done.
    Finalized {
        /// The round id.
        round_id: String,
        /// The commitment txid.
        commitment_txid: Txid,
    },
    /// Over without the outputs (see the entries for retry or refusal).
    Failed {
        /// Why.
        reason: String,
    },
}

impl Phase {
    /// The stored name.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Registering => "registering",
            Phase::Registered { .. } => "registered",
            Phase::Confirmed { .. } => "confirmed",
            Phase::TreeNonces { .. } => "tree_nonces",
            Phase::TreeSignatures { .. } => "tree_signatures",
            Phase::ForfeitsSubmitted { .. } => "forfeits_submitted",
            Phase::Finalized { .. } => "finalized",
            Phase::Failed { .. } => "failed",
        }
    }

    /// Whether the saga is over.
    pub fn is_final(&self) -> bool {
        matches!(self, Phase::Finalized { .. } | Phase::Failed { .. })
    }

    /// The round id, once confirmed.
    pub fn round_id(&self) -> Option<&str> {
        match self {
            Phase::Confirmed { round_id, .. }
            | Phase::TreeNonces { round_id, .. }
            | Phase::TreeSignatures { round_id, .. }
            | Phase::ForfeitsSubmitted { round_id, .. }
            | Phase::Finalized { round_id, .. } => Some(round_id),
            _ => None,
        }
    }
}

/// One participation: the jobs, their intents, the phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participation {
    /// Unique id.
    pub id: String,
    /// The jobs.
    pub entries: Vec<Entry>,
    /// Where it is.
    pub phase: Phase,
    /// Started.
    pub started_at: UnixTime,
    /// The new VTXOs of the in-round jobs, as the checked tree pays them
    /// (set when the forfeits are built).
    #[serde(default)]
    pub created: Vec<Created>,
    /// The round's `batch_expiry` (BIP68 sequence of the tree's sweep leaf,
    /// arkd's `vtxo_tree_expiry`) once `batch_started` named our intents:
    /// how the relay learns a VTXO's lifetime ([`Self::lifetime_secs`]).
    #[serde(default)]
    pub batch_expiry: Option<u32>,
}

/// A VTXO the round creates for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The job.
    pub job_id: String,
    /// Index into the job's outputs.
    pub output: usize,
    /// The new VTXO (tree leaf txid : vout).
    pub vtxo: ark_relay_core::VtxoId,
}

impl Participation {
    /// A new participation for `jobs` (phase `registering`; feed
    /// [`super::Input::Start`]).
    pub fn new(id: String, jobs: Vec<RoundJob>, now: UnixTime) -> Self {
        Self {
            id,
            entries: jobs
                .into_iter()
                .map(|job| Entry {
                    job,
                    proof: None,
                    message: None,
                    status: EntryStatus::Pending,
                })
                .collect(),
            phase: Phase::Registering,
            started_at: now,
            created: Vec::new(),
            batch_expiry: None,
        }
    }

    /// The lifetime of the VTXOs of its round (seconds; a block expiry
    /// counts 600 s a block), once known.
    pub fn lifetime_secs(&self) -> Option<i64> {
        self.batch_expiry.and_then(lifetime_secs)
    }

    /// How each job ends if the saga ends now: `done` only for jobs in the
    /// finalized round, `failed` for refused ones; a job in a failed round
    /// is retried (one attempt counted); a job no round took is requeued
    /// from `requeue_at` (no attempt counted).
    pub fn ends(&self, max_attempts: u32, requeue_at: UnixTime) -> Vec<(String, RoundEnd)> {
        self.entries
            .iter()
            .map(|e| {
                let end = match (&self.phase, &e.status) {
                    (_, EntryStatus::Refused { error }) => RoundEnd::Failed {
                        error: error.clone(),
                    },
                    (
                        Phase::Finalized {
                            commitment_txid, ..
                        },
                        EntryStatus::InRound { .. },
                    ) => RoundEnd::Finalized {
                        commitment_txid: commitment_txid.to_string(),
                    },
                    (Phase::Failed { reason }, EntryStatus::InRound { .. }) => RoundEnd::Retry {
                        error: reason.clone(),
                        max_attempts,
                    },
                    (_, EntryStatus::Retry { error }) => RoundEnd::Requeue {
                        error: error.clone(),
                        not_before: requeue_at,
                    },
                    (Phase::Failed { reason }, _) => RoundEnd::Requeue {
                        error: reason.clone(),
                        not_before: requeue_at,
                    },
                    _ => RoundEnd::Requeue {
                        error: "not taken by the round".into(),
                        not_before: requeue_at,
                    },
                };
                (e.job.job_id.clone(), end)
            })
            .collect()
    }
}

/// What a live round holds in memory only. Lost on a restart; the machine
/// then gives the round up (or checks its outcome) instead of guessing.
pub struct Scratch {
    /// Whether it belongs to the running process's stream (false after a
    /// restart until the machine resubscribed).
    pub live: bool,
    /// VTXO tree nodes received.
    pub vtxo_chunks: Vec<TxGraphChunk>,
    /// Connector tree nodes received.
    pub connector_chunks: Vec<TxGraphChunk>,
    /// The unsigned commitment tx of `tree_signing_started`.
    pub commitment: Option<Psbt>,
    /// Our secret nonces (taken out when signing).
    pub nonces: Option<NonceKps>,
    /// Every cosigner's public nonces per tree node.
    pub tree_nonces: HashMap<Txid, TreeTxNoncePks>,
    /// Randomness for the nonces (fresh per process, never persisted).
    pub entropy: [u8; 32],
}

impl Scratch {
    /// Empty, with fresh `entropy` (the runner draws it from the OS).
    pub fn new(entropy: [u8; 32]) -> Self {
        Self {
            live: false,
            vtxo_chunks: Vec::new(),
            connector_chunks: Vec::new(),
            commitment: None,
            nonces: None,
            tree_nonces: HashMap::new(),
            entropy,
        }
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("live", &self.live)
            .field("vtxo_chunks", &self.vtxo_chunks.len())
            .field("connector_chunks", &self.connector_chunks.len())
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// A batch expiry (BIP68 sequence, as `batch_started` sends it) in seconds:
/// time-based = 512 s units, block-based = 600 s a block; `None` when it is
/// not a relative lock time.
pub fn lifetime_secs(sequence: u32) -> Option<i64> {
    match bitcoin::Sequence::from_consensus(sequence).to_relative_lock_time()? {
        bitcoin::relative::LockTime::Time(t) => Some(i64::from(t.value()) * 512),
        bitcoin::relative::LockTime::Blocks(h) => Some(i64::from(h.value()) * 600),
    }
}

#[cfg(test)]
mod lifetime_tests {
    use super::lifetime_secs;

    #[test]
    fn batch_expiry_in_seconds_or_blocks() {
        // 605 184 s = 1182 units of 512 s (type flag bit 22).
        assert_eq!(lifetime_secs((1 << 22) | 1182), Some(605_184));
        assert_eq!(lifetime_secs(144), Some(86_400));
        assert_eq!(lifetime_secs(0xFFFF_FFFF), None, "disabled");
    }
}
