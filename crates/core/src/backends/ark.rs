//! The `ArkServer` port: what the relay asks of an Ark server (arkd).
//!
//! Implemented by `ark-relay-grpc`'s `ArkdClient` (the official `ark-grpc`
//! client, against real arkd or the `ark-relay-sim` simulator). The types here
//! are plain data; transaction logic lives in `ark-relay-ark`.
//!
//! # Notes for implementors
//! - `submit_tx` has a side effect on the server even when the answer is lost:
//!   the inputs become spent-pending. Callers persist the ark tx before calling
//!   and recover with [`ArkServer::get_pending_tx`] + [`ArkServer::finalize_tx`]
//!   (research/ark.md §2.4 step 6). Implementations must not retry `submit_tx`
//!   on their own after a request may have reached the server.
//! - `finalize_tx` is safe to repeat for the same ark txid.
//! - The returned checkpoints are in the server's (random) order; match by txid.
//! - Errors are classified by gRPC status code and arkd's `ErrorDetails.name`,
//!   never by message text ([`ArkServerError::from_status`]).

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Network, Psbt, ScriptBuf, Txid};
use futures::Stream;

use super::rounds::{RoundEvent, RoundTerms};
use crate::{ErrorCode, Sats, VtxoId};

/// The round event stream; it ends (or yields a transient error) when the
/// connection drops. Events are not replayed after a reconnection. (Here,
/// beside [`ArkServerError`], so that `rounds.rs` holds plain data only.)
pub type RoundEventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<RoundEvent, ArkServerError>> + Send>>;

/// What `GetInfo` tells the relay (research/ark.md §1.2, §8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArkInfo {
    /// Server version string.
    pub version: String,
    /// The signer key (compressed); scripts use its x-only form.
    pub signer_pubkey: PublicKey,
    /// Former signer keys whose signatures are still accepted.
    pub deprecated_signers: Vec<PublicKey>,
    /// The forfeit key (compressed).
    pub forfeit_pubkey: PublicKey,
    /// The server's checkpoint leaf (`<delay> CSV DROP <forfeit> CHECKSIG`).
    pub checkpoint_tapscript: ScriptBuf,
    /// The Bitcoin network.
    pub network: Network,
    /// Exit delay of new VTXOs, arkd encoding: `< 512` blocks, else seconds.
    pub unilateral_exit_delay: i64,
    /// Outputs below this are written `OP_RETURN <key>`.
    pub dust: Sats,
    /// Smallest VTXO output accepted, if limited.
    pub vtxo_min_amount: Option<Sats>,
    /// Largest VTXO output accepted, if limited.
    pub vtxo_max_amount: Option<Sats>,
    /// Largest off-chain tx weight accepted (0 = not announced).
    pub max_tx_weight: i64,
    /// Config digest to echo in `x-digest`.
    pub digest: String,
}

/// The server's answer to `SubmitTx`, and one entry of `GetPendingTx`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmittedTx {
    /// The ark txid.
    pub ark_txid: Txid,
    /// The ark tx, co-signed by the server (fully signed).
    pub final_ark_tx: Psbt,
    /// The checkpoint txs signed by the server, in **no particular order**.
    pub signed_checkpoint_txs: Vec<Psbt>,
}

/// An ownership proof over some VTXOs (arkd `Intent`): a BIP-322-like proof PSBT
/// signed by the owners and the exact JSON message it commits to (e.g.
/// `{"type":"get-pending-tx","expire_at":…}`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntentProof {
    /// The proof PSBT.
    pub proof: Psbt,
    /// The JSON message, in the server's canonical encoding.
    pub message: String,
}

/// A VTXO as the server's indexer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVtxo {
    /// Its outpoint.
    pub id: VtxoId,
    /// Its amount.
    pub amount: Sats,
    /// Its output script (P2TR, or `OP_RETURN <key>` below dust).
    pub script: ScriptBuf,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Expiry (unix seconds or block height, as the server reports it).
    pub expires_at: i64,
    /// Created by an off-chain tx, not yet in a batch.
    pub is_preconfirmed: bool,
    /// Swept by the operator after expiry.
    pub is_swept: bool,
    /// Spent (finalized, or pending: see `spent_by`).
    pub is_spent: bool,
    /// Unrolled on chain.
    pub is_unrolled: bool,
    /// The checkpoint tx that spends it (arkd `spent_by`; a forfeit tx if renewed).
    pub spent_by: Option<Txid>,
    /// The ark tx that spends it (arkd `ark_txid`; see ark-core `VirtualTxOutPoint`).
    pub ark_txid: Option<Txid>,
    /// Chain depth since the last batch.
    pub depth: u32,
    /// The asset denominations it carries (arkd `Vtxo.Assets`, assigned by
    /// the asset packet of the tx that created it), in the server's order.
    pub assets: Vec<ServerAsset>,
}

/// One asset denomination of a VTXO as the server's indexer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAsset {
    /// The Arkade asset id in its string form (68 hex: genesis txid + group index).
    pub asset_id: String,
    /// Base units.
    pub amount: u64,
}

/// An asset as the server's indexer reports it (arkd `GetAsset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAssetInfo {
    /// The Arkade asset id (68 hex).
    pub asset_id: String,
    /// Units on unspent VTXOs now.
    pub supply: u64,
    /// Hex of the serialized metadata list given at issuance ("" when none;
    /// `ark_relay_ark::asset::decode_metadata` reads it).
    pub metadata_hex: String,
    /// The control asset named at issuance (68 hex), if any.
    pub control_asset: Option<String>,
}

/// Which VTXOs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VtxoQuery {
    /// By output script, with a filter.
    Scripts {
        /// P2TR scriptPubKeys.
        scripts: Vec<ScriptBuf>,
        /// Which states.
        filter: VtxoFilter,
    },
    /// By outpoint (all states).
    Outpoints(Vec<VtxoId>),
}

/// arkd's `GetVtxos` flags (mutually exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VtxoFilter {
    /// Every VTXO.
    #[default]
    All,
    /// Unspent only.
    Spendable,
    /// Spent only.
    Spent,
    /// Spent by a submitted but not finalized ark tx.
    Pending,
    /// Swept or expired, recoverable through an intent.
    Recoverable,
}

/// One event of the server's transaction stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ArkTxEvent {
    /// A finalized off-chain (ark) transaction.
    Ark {
        /// The ark txid.
        txid: Txid,
        /// The ark tx, if the server sent it.
        tx: Option<Box<Psbt>>,
        /// The VTXOs it spent.
        spent: Vec<ServerVtxo>,
        /// The VTXOs it created.
        created: Vec<ServerVtxo>,
        /// Spent VTXO → its checkpoint txid.
        checkpoints: BTreeMap<VtxoId, Txid>,
    },
    /// A batch (commitment) transaction.
    Commitment {
        /// The commitment txid.
        txid: Txid,
        /// The VTXOs it forfeited.
        spent: Vec<ServerVtxo>,
        /// The VTXOs it created.
        created: Vec<ServerVtxo>,
    },
    /// Keep-alive.
    Heartbeat,
}

/// A stream of transaction events; it ends (or yields a transient error) when
/// the connection drops, and the subscriber reconnects.
pub type ArkTxStream = Pin<Box<dyn Stream<Item = Result<ArkTxEvent, ArkServerError>> + Send>>;

/// A transaction touching scripts of a subscription (arkd indexer
/// `GetSubscription` event).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptEvent {
    /// The ark (or commitment) txid.
    pub txid: Txid,
    /// The subscribed scripts it touches.
    pub scripts: Vec<ScriptBuf>,
    /// VTXOs it created.
    pub new_vtxos: Vec<ServerVtxo>,
    /// VTXOs it spent.
    pub spent_vtxos: Vec<ServerVtxo>,
}

/// Events of a script subscription.
pub type ScriptEventStream =
    Pin<Box<dyn Stream<Item = Result<ScriptEvent, ArkServerError>> + Send>>;

/// arkd's error names (`ErrorDetails.name`, research/ark.md §1.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArkRejection {
    /// `VTXO_ALREADY_SPENT`.
    VtxoAlreadySpent,
    /// `VTXO_ALREADY_REGISTERED` (in an intent).
    VtxoAlreadyRegistered,
    /// `VTXO_NOT_FOUND`.
    VtxoNotFound,
    /// `VTXO_BANNED`.
    VtxoBanned,
    /// `VTXO_RECOVERABLE` (swept or expired input).
    VtxoRecoverable,
    /// `VTXO_ALREADY_UNROLLED`.
    VtxoAlreadyUnrolled,
    /// `INVALID_SIGNATURE`.
    InvalidSignature,
    /// `ARK_TX_MISMATCH`.
    ArkTxMismatch,
    /// `CHECKPOINT_MISMATCH`.
    CheckpointMismatch,
    /// `TX_TOO_LARGE`.
    TxTooLarge,
    /// `TX_NOT_FOUND`.
    TxNotFound,
    /// `DIGEST_MISMATCH`: refresh GetInfo and rebuild.
    DigestMismatch,
    /// Any other name (or none).
    Other(String),
}

impl ArkRejection {
    /// The variant for an arkd error name.
    pub fn from_name(name: &str) -> Self {
        match name {
            "VTXO_ALREADY_SPENT" => Self::VtxoAlreadySpent,
            "VTXO_ALREADY_REGISTERED" => Self::VtxoAlreadyRegistered,
            "VTXO_NOT_FOUND" => Self::VtxoNotFound,
            "VTXO_BANNED" => Self::VtxoBanned,
            "VTXO_RECOVERABLE" => Self::VtxoRecoverable,
            "VTXO_ALREADY_UNROLLED" => Self::VtxoAlreadyUnrolled,
            "INVALID_SIGNATURE" => Self::InvalidSignature,
            "ARK_TX_MISMATCH" => Self::ArkTxMismatch,
            "CHECKPOINT_MISMATCH" => Self::CheckpointMismatch,
            "TX_TOO_LARGE" => Self::TxTooLarge,
            "TX_NOT_FOUND" => Self::TxNotFound,
            "DIGEST_MISMATCH" => Self::DigestMismatch,
            other => Self::Other(other.to_owned()),
        }
    }

    /// arkd's name.
    pub fn name(&self) -> &str {
        match self {
            Self::VtxoAlreadySpent => "VTXO_ALREADY_SPENT",
            Self::VtxoAlreadyRegistered => "VTXO_ALREADY_REGISTERED",
            Self::VtxoNotFound => "VTXO_NOT_FOUND",
            Self::VtxoBanned => "VTXO_BANNED",
            Self::VtxoRecoverable => "VTXO_RECOVERABLE",
            Self::VtxoAlreadyUnrolled => "VTXO_ALREADY_UNROLLED",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::ArkTxMismatch => "ARK_TX_MISMATCH",
            Self::CheckpointMismatch => "CHECKPOINT_MISMATCH",
            Self::TxTooLarge => "TX_TOO_LARGE",
            Self::TxNotFound => "TX_NOT_FOUND",
            Self::DigestMismatch => "DIGEST_MISMATCH",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for ArkRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// gRPC status codes the classification needs (numbers from the gRPC spec).
pub mod grpc_code {
    /// `CANCELLED`.
    pub const CANCELLED: i32 = 1;
    /// `UNKNOWN`.
    pub const UNKNOWN: i32 = 2;
    /// `DEADLINE_EXCEEDED`.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// `NOT_FOUND`.
    pub const NOT_FOUND: i32 = 5;
    /// `RESOURCE_EXHAUSTED`.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// `ABORTED`.
    pub const ABORTED: i32 = 10;
    /// `INTERNAL`.
    pub const INTERNAL: i32 = 13;
    /// `UNAVAILABLE`.
    pub const UNAVAILABLE: i32 = 14;
}

/// Errors of the [`ArkServer`] port.
#[derive(Debug, thiserror::Error)]
pub enum ArkServerError {
    /// The server cannot be reached or failed transiently; retry with backoff
    /// (but see the module notes on `submit_tx`).
    #[error("ark server unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The server refused the request (a definitive answer).
    #[error("ark server rejected the request ({reason}, gRPC code {grpc_code}): {message}")]
    Rejected {
        /// arkd's error name (from `ErrorDetails`), or `Other` with the gRPC code's name.
        reason: ArkRejection,
        /// The gRPC status code.
        grpc_code: i32,
        /// The server's message (for logs only; never matched on).
        message: String,
    },
    /// The server answered something that does not decode.
    #[error("malformed answer from the ark server: {0}")]
    Protocol(String),
}

impl ArkServerError {
    /// Classifies a gRPC status: an `ErrorDetails` name decides first; without
    /// one, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `ABORTED`
    /// and `CANCELLED` are transient, everything else is a rejection.
    pub fn from_status(grpc_code: i32, error_name: Option<&str>, message: &str) -> Self {
        if let Some(name) = error_name.filter(|n| !n.is_empty()) {
            return Self::Rejected {
                reason: ArkRejection::from_name(name),
                grpc_code,
                message: message.to_owned(),
            };
        }
        match grpc_code {
            grpc_code::UNAVAILABLE
            | grpc_code::DEADLINE_EXCEEDED
            | grpc_code::RESOURCE_EXHAUSTED
            | grpc_code::ABORTED
            | grpc_code::CANCELLED => Self::Unavailable {
                message: format!("gRPC code {grpc_code}: {message}"),
                source: None,
            },
            _ => Self::Rejected {
                reason: ArkRejection::Other(String::new()),
                grpc_code,
                message: message.to_owned(),
            },
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The arkd rejection, if the server rejected the request.
    pub fn rejection(&self) -> Option<&ArkRejection> {
        match self {
            Self::Rejected { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The public error code (DESIGN.md §5): spent input 2002, unknown VTXO
    /// 2003, unreachable server 7001, any other rejection 7002.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } => ErrorCode::BackendUnavailable,
            Self::Rejected {
                reason: ArkRejection::VtxoAlreadySpent,
                ..
            } => ErrorCode::InputAlreadySpent,
            Self::Rejected {
                reason: ArkRejection::VtxoNotFound,
                ..
            } => ErrorCode::UnknownVtxoOrAsset,
            Self::Rejected { .. } | Self::Protocol(_) => ErrorCode::ArkRejected,
        }
    }
}

/// The Ark server. Object-safe; see the module notes.
#[async_trait]
pub trait ArkServer: Send + Sync + 'static {
    /// Server parameters (cache them; refresh on `DIGEST_MISMATCH`).
    async fn get_info(&self) -> Result<ArkInfo, ArkServerError>;

    /// Submits an ark tx signed by every input owner and its unsigned
    /// checkpoint txs. The server co-signs and marks the inputs spent-pending.
    async fn submit_tx(
        &self,
        signed_ark_tx: &Psbt,
        checkpoint_txs: &[Psbt],
    ) -> Result<SubmittedTx, ArkServerError>;

    /// Completes a submitted tx with fully signed checkpoints; only now does
    /// the server create the output VTXOs.
    async fn finalize_tx(
        &self,
        ark_txid: Txid,
        final_checkpoint_txs: &[Psbt],
    ) -> Result<(), ArkServerError>;

    /// Submitted but not finalized txs spending the VTXOs the proof covers.
    async fn get_pending_tx(
        &self,
        intent: &IntentProof,
    ) -> Result<Vec<SubmittedTx>, ArkServerError>;

    /// VTXOs by script or outpoint.
    async fn get_vtxos(&self, query: &VtxoQuery) -> Result<Vec<ServerVtxo>, ArkServerError>;

    /// An asset issued on Ark: supply, metadata, control asset (arkd indexer
    /// `GetAsset`). arkd answers an unknown id with a gRPC `Internal` error.
    async fn get_asset(&self, asset_id: &str) -> Result<ServerAssetInfo, ArkServerError> {
        let _ = asset_id;
        Err(ArkServerError::Protocol("GetAsset is not supported".into()))
    }

    /// Live transaction events (no history).
    async fn subscribe_transactions(&self) -> Result<ArkTxStream, ArkServerError>;

    /// Subscribes to transactions touching `scripts` (arkd indexer
    /// `SubscribeForScripts`); adds to `subscription` when given. Returns the
    /// subscription id.
    async fn subscribe_scripts(
        &self,
        scripts: &[ScriptBuf],
        subscription: Option<&str>,
    ) -> Result<String, ArkServerError> {
        let _ = (scripts, subscription);
        Err(ArkServerError::Protocol(
            "script subscriptions are not supported".into(),
        ))
    }

    /// Removes `scripts` (all when empty) from a subscription.
    async fn unsubscribe_scripts(
        &self,
        subscription: &str,
        scripts: &[ScriptBuf],
    ) -> Result<(), ArkServerError> {
        let _ = (subscription, scripts);
        Err(ArkServerError::Protocol(
            "script subscriptions are not supported".into(),
        ))
    }

    /// The events of a subscription (arkd indexer `GetSubscription`), from now on.
    async fn script_events(&self, subscription: &str) -> Result<ScriptEventStream, ArkServerError> {
        let _ = subscription;
        Err(ArkServerError::Protocol(
            "script subscriptions are not supported".into(),
        ))
    }

    // Batch rounds (research/ark-batches.md §3–§7; types in `backends::rounds`).
    // Unsupported by default so that doubles without rounds keep compiling.

    /// Forfeit address and boarding terms (from `GetInfo`).
    async fn round_terms(&self) -> Result<RoundTerms, ArkServerError> {
        Err(rounds_unsupported())
    }

    /// Queues a signed `register` intent for the next round; returns its id.
    async fn register_intent(&self, intent: &IntentProof) -> Result<String, ArkServerError> {
        let _ = intent;
        Err(rounds_unsupported())
    }

    /// Deletes the queued intents spending the proof's inputs (a `delete`
    /// message). Nothing queued is a rejection (`no matching intents found`).
    async fn delete_intent(&self, intent: &IntentProof) -> Result<(), ArkServerError> {
        let _ = intent;
        Err(rounds_unsupported())
    }

    /// Confirms a registered intent taken by the starting round.
    async fn confirm_registration(&self, intent_id: &str) -> Result<(), ArkServerError> {
        let _ = intent_id;
        Err(rounds_unsupported())
    }

    /// The round event stream for `topics` (input outpoints `txid:vout` and
    /// 33-byte hex cosigner keys), from now on.
    async fn round_events(&self, topics: &[String]) -> Result<RoundEventStream, ArkServerError> {
        let _ = topics;
        Err(rounds_unsupported())
    }

    /// Sends `cosigner`'s public nonces (txid → 66 bytes) of the round's tree.
    async fn submit_tree_nonces(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        nonces: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        let _ = (round_id, cosigner, nonces);
        Err(rounds_unsupported())
    }

    /// Sends `cosigner`'s partial signatures (txid → 32 bytes) of the tree.
    async fn submit_tree_signatures(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        signatures: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        let _ = (round_id, cosigner, signatures);
        Err(rounds_unsupported())
    }

    /// Sends signed forfeits and/or the commitment tx signed on the
    /// boarding inputs.
    async fn submit_signed_forfeits(
        &self,
        forfeits: &[Psbt],
        commitment: Option<&Psbt>,
    ) -> Result<(), ArkServerError> {
        let _ = (forfeits, commitment);
        Err(rounds_unsupported())
    }
}

fn rounds_unsupported() -> ArkServerError {
    ArkServerError::Protocol("batch rounds are not supported by this ark server".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_before_codes() {
        let e =
            ArkServerError::from_status(grpc_code::UNAVAILABLE, Some("VTXO_ALREADY_SPENT"), "x");
        assert_eq!(e.code(), ErrorCode::InputAlreadySpent);
        assert!(!e.is_transient());
        let e = ArkServerError::from_status(3, Some("VTXO_NOT_FOUND"), "");
        assert_eq!(e.code(), ErrorCode::UnknownVtxoOrAsset);
        let e = ArkServerError::from_status(3, Some("ARK_TX_MISMATCH"), "");
        assert_eq!(e.rejection(), Some(&ArkRejection::ArkTxMismatch));
        assert_eq!(e.code(), ErrorCode::ArkRejected);
    }

    #[test]
    fn codes_without_names() {
        for code in [grpc_code::UNAVAILABLE, grpc_code::DEADLINE_EXCEEDED] {
            let e = ArkServerError::from_status(code, None, "VTXO_ALREADY_SPENT");
            assert!(e.is_transient(), "message text must not matter");
            assert_eq!(e.code(), ErrorCode::BackendUnavailable);
        }
        let e = ArkServerError::from_status(grpc_code::INTERNAL, Some(""), "");
        assert_eq!(e.code(), ErrorCode::ArkRejected);
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "VTXO_ALREADY_SPENT",
            "VTXO_NOT_FOUND",
            "INVALID_SIGNATURE",
            "CHECKPOINT_MISMATCH",
            "TX_NOT_FOUND",
            "SOMETHING_NEW",
        ] {
            assert_eq!(ArkRejection::from_name(name).name(), name);
        }
    }

    #[allow(dead_code)]
    fn object_safe(_: &dyn ArkServer) {}
}
