//! The `assets` back-end port: what the relay needs from tapd (mint gBTC and
//! other assets, list and balance them, verify and insert proofs a user brings,
//! asset-denominated invoices and payments over asset channels).
//!
//! Notes for implementors (research/lightning.md §2, §8):
//! - `mint_asset` only stages; nothing exists until `finalize_batch` and a
//!   block confirms the batch.
//! - An asset invoice is an ordinary BOLT11 in msat priced by an RFQ quote;
//!   its expiry never exceeds the quote's (300 s by default). Re-quote rather
//!   than extend. Hold variants are settled or canceled through
//!   [`crate::backends::lightning::Lightning`].
//! - Errors are classified by gRPC status code, never by message text.

use async_trait::async_trait;

use super::lightning::{BackendErrorKind, BoxStream, Payment, PaymentHash, SendPayment};
use crate::{AssetAmount, AssetId, ErrorCode};

/// An error from the assets back end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("assets {kind:?}: {message}")]
pub struct AssetsError {
    /// The classification, from the gRPC status code.
    pub kind: BackendErrorKind,
    /// The daemon's message, for logs only.
    pub message: String,
}

impl AssetsError {
    /// An error of `kind`.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// True when retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The public error code for a user-facing failure caused by this error.
    pub fn error_code(&self) -> ErrorCode {
        match self.kind {
            BackendErrorKind::Unavailable
            | BackendErrorKind::DeadlineExceeded
            | BackendErrorKind::Unauthenticated
            | BackendErrorKind::Internal => ErrorCode::BackendUnavailable,
            BackendErrorKind::NotFound => ErrorCode::UnknownVtxoOrAsset,
            BackendErrorKind::InvalidArgument => ErrorCode::Malformed,
            BackendErrorKind::AlreadyExists | BackendErrorKind::FailedPrecondition => {
                ErrorCode::PaymentFailed
            }
        }
    }
}

/// An asset to stage in the pending mint batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// The asset name (ticker).
    pub name: String,
    /// Units to mint.
    pub amount: AssetAmount,
    /// Opaque metadata.
    pub meta: Vec<u8>,
    /// Decimal display hint.
    pub decimal_display: u32,
}

/// A minting batch's state (tapd `BatchState`, the states the relay sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchState {
    /// Seedlings staged.
    Pending,
    /// Anchor transaction broadcast, waiting for a block.
    Broadcast,
    /// Confirmed; assets exist.
    Confirmed,
    /// Any other state.
    Other,
}

/// A minting batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintBatch {
    /// The batch key.
    pub batch_key: Vec<u8>,
    /// The anchor transaction id (empty until finalized).
    pub batch_txid: String,
    /// The state.
    pub state: BatchState,
    /// Names of the assets in the batch.
    pub asset_names: Vec<String>,
}

/// An asset output held by tapd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapAsset {
    /// The asset id.
    pub asset_id: AssetId,
    /// The asset name.
    pub name: String,
    /// Units in this output.
    pub amount: AssetAmount,
    /// The genesis outpoint, `txid:vout`.
    pub genesis_point: String,
    /// Whether the output is spent.
    pub is_spent: bool,
}

/// The balance of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapBalance {
    /// The asset id.
    pub asset_id: AssetId,
    /// The asset name.
    pub name: String,
    /// Units held.
    pub balance: AssetAmount,
}

/// What tapd says about a proof file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofVerdict {
    /// Whether the proof verifies.
    pub valid: bool,
    /// The proven asset, when valid.
    pub asset_id: Option<AssetId>,
    /// The proven amount, when valid.
    pub amount: AssetAmount,
}

/// An accepted RFQ quote (`rfqrpc.PeerAcceptedBuyQuote` / `…SellQuote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfqQuote {
    /// The edge peer's node key, hex.
    pub peer: String,
    /// The 32-byte quote id.
    pub id: Vec<u8>,
    /// The SCID alias (last 8 bytes of the id).
    pub scid: u64,
    /// The rate in asset units per BTC: `coefficient × 10^-scale`.
    pub rate_coefficient: String,
    /// The rate's scale.
    pub rate_scale: u32,
    /// Unix seconds when the quote expires.
    pub expiry_unix: u64,
}

/// An asset invoice to create (tapchannel `AddInvoice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetInvoiceRequest {
    /// The asset to receive.
    pub asset_id: AssetId,
    /// Units to receive.
    pub asset_amount: AssetAmount,
    /// The edge peer to quote with, if chosen.
    pub peer_pubkey: Option<Vec<u8>>,
    /// Makes it a hold invoice for this hash.
    pub hodl_hash: Option<PaymentHash>,
    /// The memo.
    pub memo: String,
    /// Requested expiry in seconds (capped at the quote's expiry).
    pub expiry_secs: u64,
}

/// A created asset invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetInvoice {
    /// The accepted buy quote that prices it.
    pub quote: RfqQuote,
    /// The BOLT11 string.
    pub payment_request: String,
    /// The payment hash.
    pub hash: PaymentHash,
    /// The add index of the underlying lnd invoice.
    pub add_index: u64,
}

/// An update of an asset payment: the sell quote first, then payment updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetPaymentUpdate {
    /// The accepted sell quote.
    Quote(RfqQuote),
    /// A payment update.
    Payment(Payment),
}

/// The Taproot Assets back end (tapd, standalone or inside litd).
#[async_trait]
pub trait Assets: Send + Sync + 'static {
    /// Stages an asset in the pending batch.
    async fn mint_asset(&self, req: MintRequest) -> Result<MintBatch, AssetsError>;
    /// Funds, signs and broadcasts the pending batch (`fee_rate` in sat/kw, 0 = estimate).
    async fn finalize_batch(&self, fee_rate_sat_per_kw: u32) -> Result<MintBatch, AssetsError>;
    /// Unspent asset outputs.
    async fn list_assets(&self) -> Result<Vec<TapAsset>, AssetsError>;
    /// Balances grouped by asset id.
    async fn list_balances(&self) -> Result<Vec<TapBalance>, AssetsError>;
    /// Verifies a raw proof file.
    async fn verify_proof(&self, raw_proof: &[u8]) -> Result<ProofVerdict, AssetsError>;
    /// Inserts a proof into the local universe.
    async fn insert_proof(&self, asset_id: AssetId, raw_proof: &[u8]) -> Result<(), AssetsError>;
    /// Creates an asset invoice priced by a fresh RFQ buy quote.
    async fn add_invoice(&self, req: AssetInvoiceRequest) -> Result<AssetInvoice, AssetsError>;
    /// Pays a BOLT11 invoice from an asset channel.
    async fn send_payment(
        &self,
        asset_id: AssetId,
        peer_pubkey: Option<Vec<u8>>,
        req: SendPayment,
    ) -> Result<BoxStream<AssetPaymentUpdate, AssetsError>, AssetsError>;
}

/// A shared assets back end.
pub type DynAssets = std::sync::Arc<dyn Assets>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_codes_by_kind() {
        let e = |k| AssetsError::new(k, "x").error_code();
        assert_eq!(e(BackendErrorKind::NotFound), ErrorCode::UnknownVtxoOrAsset);
        assert_eq!(
            e(BackendErrorKind::Unavailable),
            ErrorCode::BackendUnavailable
        );
        assert!(AssetsError::new(BackendErrorKind::DeadlineExceeded, "").is_transient());
    }

    #[test]
    fn trait_is_object_safe() {
        fn _f(_: &DynAssets) {}
    }
}
