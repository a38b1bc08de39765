//! The vocabulary of a step: what it needs ([`Ctx`]), what arrives
//! ([`Input`]), what the runner must do ([`Effect`]) and what it yields
//! ([`Transition`]).

use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::SubmittedTx;
use ark_relay_core::{EventId, L2Transaction, PubKey, SessionId, UnixTime};
use ark_relay_protocol::content::{Confirmation, SignatureEntry, SigningChallenge};
use ark_relay_protocol::Rejection;
use bitcoin::secp256k1::Keypair;
use bitcoin::{Psbt, Txid};

use crate::state::Ceremony;

/// How long things may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Each challenge must be answered within this (default 60 s).
    pub step_timeout_secs: i64,
    /// An in-flight arkd call or commit is retried by the recovery scan this
    /// long after it was due (so it never races the job making it).
    pub retry_after_secs: i64,
    /// A step ends this long after its deadline, so that an answer the
    /// relay received in time but a (crashed, reclaimed) worker has not
    /// processed yet is still honoured: answers are judged by their receipt
    /// time, and the queue hands a dead worker's job on within seconds.
    pub grace_secs: i64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            step_timeout_secs: 60,
            retry_after_secs: 10,
            grace_secs: 5,
        }
    }
}

/// What a step needs besides the state: the time, the Ark server's
/// parameters and the relay's key (lent, never persisted).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Now.
    pub now: UnixTime,
    /// The Ark server's parameters.
    pub server: &'a ServerInfo,
    /// The relay's key (signs its own inputs and checkpoints).
    pub relay: &'a Keypair,
    /// Timeouts.
    pub timing: Timing,
}

impl Ctx<'_> {
    /// The relay's public key.
    pub fn relay_key(&self) -> PubKey {
        PubKey::from_x_only(self.relay.x_only_public_key().0)
    }
}

/// A party's answer to a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its signatures.
    Signatures(Vec<SignatureEntry>),
    /// A refusal with its reason.
    Reject(String),
}

/// What arrives.
#[derive(Debug, Clone)]
pub enum Input {
    /// A 31512 from the author of `session`.
    Answer {
        /// The party session it answers.
        session: SessionId,
        /// The step it answers.
        step: u32,
        /// The response event (a notice about it answers this id).
        event: EventId,
        /// When the relay received it (deadlines are judged by this, not by
        /// when a worker got to it).
        received_at: UnixTime,
        /// The responder spoke NIP-04.
        nip04: bool,
        /// Signatures or a refusal.
        answer: Answer,
    },
    /// arkd accepted `SubmitTx` (or `GetPendingTx` found it pending).
    Submitted(SubmittedTx),
    /// arkd refused `SubmitTx`.
    SubmitRefused(Rejection),
    /// `GetPendingTx` does not know the transaction (or the relay has no input to ask with).
    NotPending,
    /// `FinalizeTx` succeeded (or had already).
    Finalized,
    /// arkd refused `FinalizeTx`.
    FinalizeRefused(Rejection),
    /// The ledger committed the ark tx (or already had).
    Committed,
    /// A land's hand-over to the Lightning side is recorded.
    HandedOver,
    /// Time passed (`ctx.now`): deadlines, and recovery of an in-flight
    /// remote effect once its retry time has come.
    Tick,
    /// As [`Input::Tick`], but re-issues an in-flight remote effect now: for
    /// a caller that knows no other job is making it (the relay's own
    /// issuing transactions are driven by one leader).
    Resume,
}

/// What the runner must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Local: queue this 31511 for `parties[party]`.
    Challenge {
        /// The party.
        party: usize,
        /// The outbox dedupe key.
        dedupe_key: String,
        /// The content.
        challenge: SigningChallenge,
    },
    /// Local: queue a 31341 to `to` answering the event `answered`.
    Notify {
        /// Recipient.
        to: PubKey,
        /// The event answered (its id is the notice's dedupe key).
        answered: EventId,
        /// The code and message.
        rejection: Rejection,
        /// Answer in NIP-04 (else NIP-44).
        nip04: bool,
    },
    /// Local: release every lock of the ceremony.
    ReleaseLocks,
    /// Local: queue the public 31340.
    Confirm {
        /// Its content.
        confirmation: Confirmation,
        /// Keys to `p`-tag.
        tagged: Vec<PubKey>,
    },
    /// Remote: `SubmitTx` → [`Input::Submitted`] / [`Input::SubmitRefused`].
    Submit {
        /// The signed ark tx.
        ark_tx: Psbt,
        /// The unsigned checkpoints.
        checkpoints: Vec<Psbt>,
    },
    /// Remote: `GetPendingTx` with a proof over the relay's inputs →
    /// [`Input::Submitted`] / [`Input::NotPending`].
    FindPending {
        /// The ark txid looked for.
        ark_txid: Txid,
    },
    /// Remote: `FinalizeTx` → [`Input::Finalized`] / [`Input::FinalizeRefused`].
    Finalize {
        /// The ark txid.
        ark_txid: Txid,
        /// The fully signed checkpoints.
        checkpoints: Vec<Psbt>,
    },
    /// Remote: commit the ledger (idempotent by ark txid) → [`Input::Committed`].
    Commit(L2Transaction),
    /// Remote: hand a land's moved VTXO to the Lightning side, with the
    /// 31340 it publishes once paid → [`Input::HandedOver`].
    HandOver(Confirmation),
}

impl Effect {
    /// Whether the runner persists it with the next state (else it executes it after).
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Effect::Challenge { .. }
                | Effect::Notify { .. }
                | Effect::ReleaseLocks
                | Effect::Confirm { .. }
        )
    }
}

/// A relay signature made during a step (for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySignature {
    /// `ark_tx` or `checkpoint`.
    pub what: &'static str,
    /// The signed transaction.
    pub txid: bitcoin::Txid,
    /// The signed input.
    pub input_index: usize,
}

/// The result of a step.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The next state (equal to the old one when nothing changed).
    pub next: Ceremony,
    /// Local effects first, then at most one remote effect, last.
    pub effects: Vec<Effect>,
    /// Signatures the relay made.
    pub signed: Vec<RelaySignature>,
}

impl Transition {
    pub(crate) fn with(next: Ceremony, effects: Vec<Effect>) -> Self {
        Self {
            next,
            effects,
            signed: vec![],
        }
    }

    pub(crate) fn to(next: Ceremony) -> Self {
        Self::with(next, vec![])
    }

    pub(crate) fn stay(c: &Ceremony) -> Self {
        Self {
            next: c.clone(),
            effects: vec![],
            signed: vec![],
        }
    }

    /// Whether anything is to be persisted or done.
    pub fn changed(&self, before: &Ceremony) -> bool {
        !self.effects.is_empty() || &self.next != before
    }

    /// The remote effect, if any.
    pub fn remote(&self) -> Option<&Effect> {
        self.effects.iter().find(|e| !e.is_local())
    }
}

/// A step that cannot be taken: a broken invariant, corrupt state or an Ark
/// server breaking its protocol (never a user's mistake: those are effects).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// What is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A transaction-level failure.
    #[error("ark: {0}")]
    Ark(#[from] ark_relay_ark::ArkError),
}

pub(crate) fn invalid(msg: impl Into<String>) -> StepError {
    StepError::Invalid(msg.into())
}
