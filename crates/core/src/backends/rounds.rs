//! Batch rounds at the Ark server, as the [`ArkServer`](super::ark::ArkServer)
//! port speaks them (research/ark-batches.md §3–§7): the round event stream,
//! and the terms of boarding and forfeiting. Plain data; the round logic is
//! `ark_relay_ceremony::round`.

use std::collections::BTreeMap;

use bitcoin::secp256k1::{PublicKey, XOnlyPublicKey};
use bitcoin::{Address, Psbt, Sequence, Txid};

use crate::Sats;

/// One node of a VTXO or connector tree as the stream sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeChunk {
    /// The node's (unsigned) transaction.
    pub tx: Psbt,
    /// Output index → the child node's txid.
    pub children: BTreeMap<u32, Txid>,
}

/// One event of a round (arkd `GetEventStream`).
#[derive(Debug, Clone, PartialEq)]
pub enum RoundEvent {
    /// A round took intents from the queue.
    BatchStarted {
        /// The round id.
        round_id: String,
        /// `hex(sha256(intent_id))` of the intents taken.
        intent_id_hashes: Vec<String>,
        /// The VTXO tree's expiry (BIP68 sequence of the sweep leaf).
        batch_expiry: Sequence,
    },
    /// A node of the VTXO tree (`connector = false`) or the connector tree.
    TreeTx {
        /// The round id.
        round_id: String,
        /// Whether it is a connector tree node.
        connector: bool,
        /// The node.
        chunk: TreeChunk,
    },
    /// The VTXO tree is complete: cosigners send their nonces.
    TreeSigningStarted {
        /// The round id.
        round_id: String,
        /// Every intent's cosigner keys (the operator's excluded).
        cosigners: Vec<PublicKey>,
        /// The unsigned commitment tx.
        unsigned_commitment_tx: Psbt,
    },
    /// The public nonces of one tree node's cosigners.
    TreeNonces {
        /// The round id.
        round_id: String,
        /// The node.
        txid: Txid,
        /// Cosigner → 66-byte MuSig2 public nonce.
        nonces: BTreeMap<XOnlyPublicKey, Vec<u8>>,
    },
    /// A tree node's final signature.
    TreeSignature {
        /// The round id.
        round_id: String,
        /// The node.
        txid: Txid,
        /// The aggregated signature.
        signature: bitcoin::taproot::Signature,
    },
    /// Forfeits (and boarding signatures) are due.
    BatchFinalization {
        /// The round id.
        round_id: String,
        /// The commitment tx (unsigned PSBT).
        commitment_tx: Psbt,
    },
    /// The commitment tx is broadcast.
    BatchFinalized {
        /// The round id.
        round_id: String,
        /// Its txid.
        commitment_txid: Txid,
    },
    /// The round failed.
    BatchFailed {
        /// The round id.
        round_id: String,
        /// Why.
        reason: String,
    },
    /// Keep-alive (also the stream's first event).
    Heartbeat,
}

/// What joining a round needs from `GetInfo` besides [`super::ark::ArkInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTerms {
    /// Where forfeits pay (P2WPKH of the forfeit key).
    pub forfeit_address: Address,
    /// The boarding address's exit delay (arkd encoding: `< 512` blocks,
    /// else seconds).
    pub boarding_exit_delay: i64,
    /// Smallest boarding output accepted, if limited.
    pub utxo_min_amount: Option<Sats>,
    /// Largest boarding output accepted, if limited (`Some(0)`: boarding off).
    pub utxo_max_amount: Option<Sats>,
    /// The round's length (seconds).
    pub session_duration: u64,
    /// arkd's intent fee programs (`GetInfo.fees.intent_fee`).
    pub intent_fees: IntentFeePrograms,
}

/// arkd's intent fee programs (research/ark-batches.md §11): CEL expressions
/// returning sats (a `double`) per input and output of an intent; empty = 0.
/// Evaluated by `ark_relay_ceremony::round::fees`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentFeePrograms {
    /// Per VTXO input (`amount`, `expiry`, `birth`, `weight`, `inputType`).
    pub offchain_input: String,
    /// Per boarding input (`amount`).
    pub onchain_input: String,
    /// Per new VTXO (`amount`, `script`).
    pub offchain_output: String,
    /// Per collaborative exit output (`amount`, `script`).
    pub onchain_output: String,
}
