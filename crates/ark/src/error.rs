//! The crate's one error type.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{OutPoint, Txid};

use ark_relay_core::Sats;

/// Everything that can go wrong building, parsing, signing or checking Ark transactions.
///
/// None of these is transient: the same inputs give the same error. Variants that
/// mirror an arkd rejection say so, so that callers can map them to arkd's error
/// names (`ARK_TX_MISMATCH`, `CHECKPOINT_MISMATCH`, `INVALID_SIGNATURE`, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArkError {
    /// An Arkade Asset packet or extension output that arkd would refuse.
    #[error(transparent)]
    Packet(#[from] crate::asset::PacketError),
    /// An intent proof could not be built.
    #[error("intent proof: {0}")]
    Intent(String),
    /// A relative or absolute locktime that cannot be encoded.
    #[error("invalid locktime {value}: {reason}")]
    InvalidLocktime {
        /// The offending value.
        value: i64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A multisig leaf needs at least one key.
    #[error("a multisig leaf needs at least one key")]
    EmptyMultisig,
    /// A Taproot tree needs at least one leaf.
    #[error("a taproot tree needs at least one leaf")]
    EmptyTaptree,
    /// The same leaf appears twice in a tree.
    #[error("leaf {leaf} appears twice in the taproot tree")]
    DuplicateLeaf {
        /// The leaf script (hex).
        leaf: String,
    },
    /// rust-bitcoin refused the tree (too deep).
    #[error("invalid taproot tree")]
    TaprootTree(#[source] bitcoin::taproot::TaprootBuilderError),
    /// A leaf that is not in the output's tree.
    #[error("leaf {leaf} is not in the taproot tree")]
    LeafNotInTree {
        /// The leaf script (hex).
        leaf: String,
    },
    /// The server's checkpoint tapscript is not a CSV leaf.
    #[error("checkpoint tapscript is not a CSV multisig leaf: {script}")]
    InvalidCheckpointTapscript {
        /// The script (hex).
        script: String,
    },
    /// A VTXO cannot be spent off-chain through this leaf (an exit leaf, or one
    /// without the server's key).
    #[error("leaf {leaf} of VTXO {outpoint} is not a collaborative leaf")]
    NotCollaborative {
        /// The VTXO.
        outpoint: OutPoint,
        /// The leaf (hex).
        leaf: String,
    },
    /// No collaborative leaf with both the owner's and the server's key.
    #[error("VTXO {outpoint} has no collaborative leaf for owner and server")]
    NoCollaborativeLeaf {
        /// The VTXO.
        outpoint: OutPoint,
    },
    /// A malformed `taptree` PSBT field.
    #[error("malformed taptree field: {0}")]
    MalformedTaptree(&'static str),
    /// An Ark address that does not decode.
    #[error("invalid ark address: {0}")]
    InvalidAddress(String),
    /// An unknown network name from GetInfo.
    #[error("unknown network {0:?}")]
    UnknownNetwork(String),
    /// A key that is not a valid x-only key.
    #[error("invalid public key")]
    InvalidKey(#[source] bitcoin::secp256k1::Error),
    /// An ark tx needs at least one input.
    #[error("an ark transaction needs at least one input")]
    NoInputs,
    /// The same VTXO is spent twice.
    #[error("VTXO {0} is spent twice")]
    DuplicateInput(OutPoint),
    /// Off-chain transactions pay no fee: inputs must equal outputs.
    #[error("inputs ({inputs}) do not equal outputs ({outputs})")]
    AmountMismatch {
        /// Sum of the input VTXOs.
        inputs: Sats,
        /// Sum of the outputs.
        outputs: Sats,
    },
    /// An amount sum overflowed.
    #[error("amount overflow")]
    AmountOverflow,
    /// A VTXO output below the server's `vtxo_min_amount`.
    #[error("output {index} ({amount}) is below the minimum VTXO amount {min}")]
    AmountTooLow {
        /// Output index.
        index: usize,
        /// Its amount.
        amount: Sats,
        /// The server minimum.
        min: Sats,
    },
    /// A VTXO output above the server's `vtxo_max_amount`.
    #[error("output {index} ({amount}) is above the maximum VTXO amount {max}")]
    AmountTooHigh {
        /// Output index.
        index: usize,
        /// Its amount.
        amount: Sats,
        /// The server maximum.
        max: Sats,
    },
    /// CLTV leaves with block heights and timestamps in one transaction.
    #[error("inputs mix block-height and timestamp locktimes")]
    MixedLocktimes,
    /// A PSBT that does not have the shape of an Ark transaction.
    #[error("malformed ark PSBT: {0}")]
    MalformedPsbt(String),
    /// An input or output index past the end of a PSBT.
    #[error("index {index} out of range")]
    IndexOutOfRange {
        /// The index.
        index: usize,
    },
    /// A PSBT input without `witness_utxo`.
    #[error("input {input} has no witness_utxo")]
    MissingWitnessUtxo {
        /// The input index.
        input: usize,
    },
    /// A PSBT input without exactly one tapscript leaf (arkd rejects 0 or >1).
    #[error("input {input} has {count} tap leaf scripts, expected exactly one")]
    TapLeafCount {
        /// The input index.
        input: usize,
        /// How many it has.
        count: usize,
    },
    /// A PSBT input without the `taptree` field.
    #[error("input {input} has no taptree field")]
    MissingTaptree {
        /// The input index.
        input: usize,
    },
    /// The `witness_utxo` script is not the output of the revealed tree.
    #[error("input {input}: witness_utxo script does not match the revealed taptree")]
    WitnessUtxoMismatch {
        /// The input index.
        input: usize,
    },
    /// The tap leaf's control block does not prove it against the spent output.
    #[error("input {input}: control block does not commit to the leaf")]
    InvalidControlBlock {
        /// The input index.
        input: usize,
    },
    /// BIP-341 sighash computation failed.
    #[error("sighash computation failed")]
    Sighash(#[source] bitcoin::sighash::TaprootError),
    /// The key is not one of the leaf's signers.
    #[error("input {input}: key {key} does not sign its leaf")]
    KeyNotInLeaf {
        /// The input index.
        input: usize,
        /// The key.
        key: XOnlyPublicKey,
    },
    /// A signature that does not verify (arkd `INVALID_SIGNATURE`).
    #[error("input {input}: invalid signature by {key}")]
    InvalidSignature {
        /// The input index.
        input: usize,
        /// The signer.
        key: XOnlyPublicKey,
    },
    /// A signature for a leaf other than the input's leaf.
    #[error("input {input}: signature by {key} is for another leaf")]
    SignatureForOtherLeaf {
        /// The input index.
        input: usize,
        /// The signer.
        key: XOnlyPublicKey,
    },
    /// Ark transactions are signed with SIGHASH_DEFAULT only.
    #[error("input {input}: unsupported sighash type {sighash_type}")]
    UnsupportedSighashType {
        /// The input index.
        input: usize,
        /// The type found.
        sighash_type: String,
    },
    /// A checkpoint PSBT the ark tx refers to is missing.
    #[error("no checkpoint transaction {txid}")]
    CheckpointMissing {
        /// The txid the ark tx spends.
        txid: Txid,
    },
    /// The rebuilt checkpoint txs differ from the submitted ones (arkd `CHECKPOINT_MISMATCH`).
    #[error("checkpoint transactions do not match: rebuilt {rebuilt} not submitted")]
    CheckpointMismatch {
        /// A rebuilt checkpoint txid that was not submitted.
        rebuilt: Txid,
    },
    /// More or fewer checkpoint txs than ark-tx inputs (arkd `CHECKPOINT_MISMATCH`).
    #[error("expected {expected} checkpoint transactions, got {got}")]
    CheckpointCount {
        /// One per ark-tx input.
        expected: usize,
        /// How many distinct ones were given.
        got: usize,
    },
    /// The rebuilt ark tx differs from the submitted one (arkd `ARK_TX_MISMATCH`).
    #[error("ark transaction mismatch: rebuilt {rebuilt}, submitted {submitted}")]
    ArkTxMismatch {
        /// The txid of the rebuilt ark tx.
        rebuilt: Txid,
        /// The txid of the submitted ark tx.
        submitted: Txid,
    },
}
