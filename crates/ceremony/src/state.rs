//! The persisted, typed state of one ceremony (JSON in the coordinator
//! session's `session_data`; `serde(tag)` enums, no free-form strings).
//!
//! The PRD's state names stay visible: [`Phase::name`] is what the store
//! writes to `signing_sessions.state`.

use ark_relay_core::{
    Colour, ErrorCode, EventId, PubKey, SessionId, SessionStatus, UnixTime, Vtxo,
};
use ark_relay_protocol::content::ColourHint;
use ark_relay_protocol::Rejection;
use bitcoin::{Psbt, Txid};
use serde::{Deserialize, Serialize};

use crate::plan::{PartySpan, PlannedOutput};

/// What a ceremony is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Purpose {
    /// A `p2p_transfer` intent (one party).
    Transfer,
    /// A `land_lightning` intent: the landed colour is burned in the ark tx
    /// and the Lightning payment follows ([`crate::Effect::HandOver`]).
    Land,
    /// An atomic batch (`submit_batch`): every party's intent in one ark tx;
    /// the submitter of the request is answered as well.
    Batch {
        /// The 31500 request's event id.
        request: EventId,
        /// Who submitted it.
        submitter: PubKey,
        /// The batch id the submitter chose.
        batch_id: String,
        /// The submitter spoke NIP-04.
        #[serde(default)]
        nip04: bool,
    },
    /// A `liquidate` intent (one party, the DEX): a position VTXO spent
    /// through its conditional leaf, co-signed by the relay.
    Liquidation,
    /// A transaction the relay makes alone (no wallet party): a lift's or a
    /// refund's VTXO with freshly issued colour.
    Issue {
        /// `lift` or `refund` (the ledger's operation kind).
        kind: String,
    },
}

impl Purpose {
    /// The ledger's operation kind of the ark tx.
    pub fn ledger_kind(&self) -> &str {
        match self {
            Purpose::Transfer => "p2p_transfer",
            Purpose::Land => "land",
            Purpose::Batch { .. } => "batch",
            Purpose::Liquidation => "liquidation",
            Purpose::Issue { kind } => kind,
        }
    }

    /// The metrics label of its intents.
    pub fn intent_kind(&self) -> &'static str {
        match self {
            Purpose::Transfer => "p2p_transfer",
            Purpose::Land => "land_lightning",
            Purpose::Batch { .. } => "batch",
            Purpose::Liquidation => "liquidate",
            Purpose::Issue { .. } => "issue",
        }
    }

    fn is_batch(&self) -> bool {
        matches!(self, Purpose::Batch { .. })
    }
}

/// One wallet party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Its key (signs its inputs).
    pub author: PubKey,
    /// The intent it signed.
    pub intent: EventId,
    /// Its signing session (the intent's id; for a transfer the ceremony's own id).
    pub session: SessionId,
    /// Its inputs (and checkpoints).
    pub span: PartySpan,
    /// It has signed the current step.
    #[serde(default)]
    pub signed: bool,
    /// What it does, for the challenge's human-readable context.
    pub summary: String,
    /// It asked for one-step signing: its step-1 challenge carries its
    /// checkpoints too, and it gets no step 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_step: bool,
}

/// An owner's checkpoint signature given in step 1 (one-step signing),
/// verified then and kept apart from the checkpoint PSBTs submitted to arkd
/// (which expects them unsigned); added after `SubmitTx`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSignature {
    /// Which checkpoint (= which input of the ark tx).
    pub checkpoint: usize,
    /// The signer (the party's key).
    pub key: PubKey,
    /// The BIP-340 signature (hex).
    pub sig: String,
}

/// A recorded failure (the code as its number, for a stable JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The public error code.
    pub code: u16,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// The code.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::from_code(self.code).unwrap_or(ErrorCode::ArkRejected)
    }

    /// As a rejection.
    pub fn rejection(&self) -> Rejection {
        Rejection::new(self.code(), self.message.clone())
    }
}

impl From<&Rejection> for Failure {
    fn from(r: &Rejection) -> Self {
        Self {
            code: r.code.code(),
            message: r.message.clone(),
        }
    }
}

/// Where the ceremony is. Waiting phases carry the deadline of the step;
/// in-flight phases (an arkd call or the ledger commit is due) carry when the
/// recovery scan may retry it, so it never races the job that is making it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    /// Step 1 (`sign_ark_tx`) sent; waiting for every party.
    ArkTxPrepared {
        /// Answers received after this are too late.
        deadline: UnixTime,
    },
    /// Every step-1 signature verified; `SubmitTx` is due (persisted before
    /// the call, so a crash here is recognisable).
    ArkTxSigned {
        /// When recovery may look for it at arkd.
        retry_at: UnixTime,
        /// A previous submission may have reached arkd: a refusal now does
        /// not prove that nothing is spent.
        #[serde(default)]
        resubmit: bool,
    },
    /// arkd signed; step 2 (`sign_checkpoint_txs`) sent.
    CheckpointTxsPrepared {
        /// When the session is stranded if a party is still silent.
        deadline: UnixTime,
    },
    /// Every checkpoint is fully signed; `FinalizeTx` is due.
    SignaturesCollected {
        /// When recovery may finalize again (idempotent at arkd).
        retry_at: UnixTime,
    },
    /// arkd finalized; the ledger commit (idempotent by ark txid) is due.
    ArkExecuted {
        /// When recovery may commit again.
        retry_at: UnixTime,
        /// The ledger is committed (a land's hand-over is due).
        #[serde(default)]
        committed: bool,
    },
    /// Done: the ledger follows arkd and the confirmation is queued.
    Completed,
    /// Ended before `SubmitTx`: nothing moved, every lock released.
    Failed {
        /// Why.
        failure: Failure,
        /// It ran out of time.
        expired: bool,
    },
    /// Past `SubmitTx` without every checkpoint signature (a party went
    /// silent) or refused by arkd at `FinalizeTx`: the Ark server holds the
    /// inputs, so they stay locked; the step-2 challenge stays answerable and
    /// a valid late answer still completes the ceremony.
    Stranded {
        /// Why.
        failure: Failure,
    },
}

impl Phase {
    /// The PRD's state name (`signing_sessions.state`).
    pub fn name(&self) -> &'static str {
        match self {
            Phase::ArkTxPrepared { .. } => "ark_tx_prepared",
            Phase::ArkTxSigned { .. } => "ark_tx_signed",
            Phase::CheckpointTxsPrepared { .. } => "checkpoint_txs_prepared",
            Phase::SignaturesCollected { .. } => "signatures_collected",
            Phase::ArkExecuted { .. } => "ark_executed",
            Phase::Completed => "completed",
            Phase::Failed { expired: false, .. } => "failed",
            Phase::Failed { expired: true, .. } => "expired",
            Phase::Stranded { .. } => "stranded",
        }
    }

    /// The PRD's coarse status.
    pub fn status(&self) -> SessionStatus {
        match self {
            Phase::Completed => SessionStatus::Completed,
            Phase::Failed { expired: true, .. } => SessionStatus::Expired,
            Phase::Failed { .. } => SessionStatus::Failed,
            Phase::Stranded { .. } => SessionStatus::Expired,
            _ => SessionStatus::Active,
        }
    }

    /// The step a party is asked to sign (`signing_sessions.current_step`).
    pub fn current_step(&self) -> Option<&'static str> {
        match self {
            Phase::ArkTxPrepared { .. } => Some("sign_ark_tx"),
            Phase::CheckpointTxsPrepared { .. } | Phase::Stranded { .. } => {
                Some("sign_checkpoint_txs")
            }
            _ => None,
        }
    }

    /// When the recovery scan must look at the session again
    /// (`signing_sessions.step_deadline`).
    pub fn wake_at(&self) -> Option<UnixTime> {
        match self {
            Phase::ArkTxPrepared { deadline } | Phase::CheckpointTxsPrepared { deadline } => {
                Some(*deadline)
            }
            Phase::ArkTxSigned { retry_at, .. }
            | Phase::SignaturesCollected { retry_at }
            | Phase::ArkExecuted { retry_at, .. } => Some(*retry_at),
            Phase::Completed | Phase::Failed { .. } | Phase::Stranded { .. } => None,
        }
    }

    /// Whether the session is over as far as the scan is concerned.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Phase::Completed | Phase::Failed { .. } | Phase::Stranded { .. }
        )
    }

    /// The recorded failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Phase::Failed { failure, .. } | Phase::Stranded { failure } => Some(failure),
            _ => None,
        }
    }
}

/// One ceremony: an ark tx, its checkpoints, who signs what, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceremony {
    /// The coordinating session (owner of every input lock).
    pub id: SessionId,
    /// What it is for.
    pub purpose: Purpose,
    /// The wallet parties (none for a relay-issued transaction).
    pub parties: Vec<Party>,
    /// Every input: the parties' in order, then the relay's.
    pub inputs: Vec<Vtxo>,
    /// How many inputs (at the end) are the relay's.
    pub relay_inputs: usize,
    /// The outputs in transaction order.
    pub outputs: Vec<PlannedOutput>,
    /// Colour created from nothing.
    #[serde(default)]
    pub issued: Vec<Colour>,
    /// Colour destroyed.
    #[serde(default)]
    pub burned: Vec<Colour>,
    /// The colour hints every party's step-1 challenge carries.
    #[serde(default)]
    pub hints: Vec<ColourHint>,
    /// The ark tx: relay-signed, then party-signed, then server-signed.
    #[serde(with = "psbt_b64")]
    pub ark_tx: Psbt,
    /// The checkpoints, one per input, in input order.
    #[serde(with = "psbts_b64")]
    pub checkpoints: Vec<Psbt>,
    /// The ark txid.
    pub ark_txid: Txid,
    /// The ceremony must end by then.
    pub expires_at: UnixTime,
    /// Where it is.
    pub phase: Phase,
    /// How many step-2 challenges were re-sent after a bad answer.
    #[serde(default)]
    pub resent: u32,
    /// Outputs with a non-default script (a position token's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locks: Vec<crate::LockedOutput>,
    /// Inputs the relay co-signs through a conditional leaf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosign: Vec<crate::CosignedInput>,
    /// The one-step parties' checkpoint signatures from step 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptSignature>,
}

impl Ceremony {
    /// The relay's inputs.
    pub fn relay_inputs(&self) -> &[Vtxo] {
        &self.inputs[self.inputs.len().saturating_sub(self.relay_inputs)..]
    }

    /// The party whose session is `session`.
    pub fn party_index(&self, session: &SessionId) -> Option<usize> {
        self.parties.iter().position(|p| &p.session == session)
    }

    /// Whether this is an atomic batch.
    pub fn is_batch(&self) -> bool {
        self.purpose.is_batch()
    }

    /// Every key the 31340 tags: recipients other than the relay, the parties,
    /// and the owners of inputs (other than the relay).
    pub fn tagged(&self, relay: &PubKey) -> Vec<PubKey> {
        let mut tagged: Vec<PubKey> = Vec::new();
        for k in self
            .outputs
            .iter()
            .map(|o| o.owner)
            .filter(|o| o != relay)
            .chain(self.parties.iter().map(|p| p.author))
            // Owners of inputs that are not parties (a liquidated position's
            // owner) learn that their VTXO is spent.
            .chain(self.inputs.iter().map(|v| v.owner).filter(|o| o != relay))
        {
            if !tagged.contains(&k) {
                tagged.push(k);
            }
        }
        tagged
    }
}

mod psbt_b64 {
    use std::str::FromStr;

    use bitcoin::Psbt;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Psbt, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Psbt, D::Error> {
        let s = String::deserialize(d)?;
        Psbt::from_str(&s).map_err(serde::de::Error::custom)
    }
}

mod psbts_b64 {
    use std::str::FromStr;

    use bitcoin::Psbt;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ps: &[Psbt], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ps.len()))?;
        for p in ps {
            seq.serialize_element(&p.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Psbt>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| Psbt::from_str(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
