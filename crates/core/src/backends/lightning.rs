//! The `lightning` back-end port: what the relay needs from lnd (hold
//! invoices for lifts, payments for lands, balances, fees, block height).
//!
//! Notes for implementors (research/lightning.md §1.4, §8):
//! - `settle_invoice` is idempotent (settling a settled invoice is `Ok`);
//!   `cancel_invoice` is idempotent for canceled invoices. Settling an OPEN or
//!   CANCELED invoice and canceling a SETTLED one fail with
//!   [`BackendErrorKind::FailedPrecondition`].
//! - One payment per hash: a second `send_payment` for a hash that is in
//!   flight or succeeded fails with [`BackendErrorKind::AlreadyExists`] (the
//!   caller then tracks it, never resends); `track_payment` of an unknown hash
//!   fails with [`BackendErrorKind::NotFound`] (never attempted: safe to send).
//! - IN_FLIGHT is "unknown, keep waiting", never a failure.
//! - Errors are classified by the daemon's status *code*, never message text.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use bitcoin::hashes::{sha256, Hash};
use futures::Stream;

use crate::{ErrorCode, Sats};

/// A boxed stream of back-end updates.
pub type BoxStream<T, E> = Pin<Box<dyn Stream<Item = Result<T, E>> + Send + 'static>>;

/// How a back-end call failed, from the gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendErrorKind {
    /// The daemon cannot be reached or is not ready (transient, retry).
    Unavailable,
    /// The call timed out (transient, retry).
    DeadlineExceeded,
    /// Macaroon or TLS rejected.
    Unauthenticated,
    /// The object does not exist (unknown hash, unknown asset).
    NotFound,
    /// The object already exists (payment for this hash already made).
    AlreadyExists,
    /// The request is invalid (bad invoice, wrong length).
    InvalidArgument,
    /// The object is in the wrong state (settle an open invoice, expired quote).
    FailedPrecondition,
    /// The daemon failed internally, or answered something we cannot read.
    Internal,
}

impl BackendErrorKind {
    /// True when retrying later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::DeadlineExceeded)
    }
}

/// An error from the Lightning back end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lightning {kind:?}: {message}")]
pub struct LightningError {
    /// The classification, from the gRPC status code.
    pub kind: BackendErrorKind,
    /// The daemon's message, for logs only (never matched on).
    pub message: String,
}

impl LightningError {
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
            BackendErrorKind::InvalidArgument => ErrorCode::InvalidInvoice,
            BackendErrorKind::NotFound
            | BackendErrorKind::AlreadyExists
            | BackendErrorKind::FailedPrecondition => ErrorCode::PaymentFailed,
        }
    }
}

/// A 32-byte payment hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaymentHash(pub [u8; 32]);

impl PaymentHash {
    /// Parses 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Display for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PaymentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentHash({self})")
    }
}

/// A 32-byte payment preimage. `Debug` is redacted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Preimage(pub [u8; 32]);

impl Preimage {
    /// Parses 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// `sha256(preimage)`.
    pub fn hash(&self) -> PaymentHash {
        PaymentHash(sha256::Hash::hash(&self.0).to_byte_array())
    }

    /// True when this preimage is non-zero and hashes to `hash` (never accept
    /// an all-zero preimage as proof of payment: nutshell#614).
    pub fn proves(&self, hash: &PaymentHash) -> bool {
        self.0 != [0u8; 32] && self.hash() == *hash
    }
}

impl fmt::Debug for Preimage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preimage(<redacted>)")
    }
}

/// An invoice's state (lnd `Invoice.InvoiceState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceState {
    /// Not paid yet.
    Open,
    /// An HTLC is held (hold invoices only).
    Accepted,
    /// Paid and settled.
    Settled,
    /// Canceled; held HTLCs were failed back.
    Canceled,
}

/// An HTLC paying an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceHtlc {
    /// The HTLC amount in msat.
    pub amt_msat: u64,
    /// The block height at which it was accepted.
    pub accept_height: u32,
    /// The HTLC's absolute CLTV expiry height: the real settle deadline.
    pub expiry_height: u32,
    /// Held, settled or canceled.
    pub state: HtlcState,
}

/// An invoice HTLC's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtlcState {
    /// Held.
    Accepted,
    /// Settled.
    Settled,
    /// Failed back.
    Canceled,
}

/// An invoice as lnd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The payment hash.
    pub hash: PaymentHash,
    /// The BOLT11 string.
    pub payment_request: String,
    /// The memo.
    pub memo: String,
    /// The invoice amount in msat (0 = any amount).
    pub value_msat: u64,
    /// The amount paid so far in msat.
    pub amt_paid_msat: u64,
    /// The state.
    pub state: InvoiceState,
    /// Monotonic add index.
    pub add_index: u64,
    /// Monotonic settle index (0 until settled).
    pub settle_index: u64,
    /// Creation time, unix seconds.
    pub creation_date: i64,
    /// Expiry in seconds after creation.
    pub expiry_secs: i64,
    /// The final CLTV delta asked of the payer.
    pub cltv_expiry: u64,
    /// The HTLCs.
    pub htlcs: Vec<InvoiceHtlc>,
}

impl Invoice {
    /// The lowest expiry height of the held HTLCs, if any.
    pub fn min_htlc_expiry(&self) -> Option<u32> {
        self.htlcs
            .iter()
            .filter(|h| h.state == HtlcState::Accepted)
            .map(|h| h.expiry_height)
            .min()
    }
}

/// A hold invoice to create; the relay chose the hash and keeps the preimage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldInvoiceRequest {
    /// The payment hash.
    pub hash: PaymentHash,
    /// The amount in msat.
    pub value_msat: u64,
    /// The memo (BOLT11 description).
    pub memo: String,
    /// Seconds until the invoice can no longer be paid.
    pub expiry_secs: u64,
    /// The final CLTV delta (≥ 80 recommended).
    pub cltv_expiry: u64,
}

/// What lnd returns for a new invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedInvoice {
    /// The BOLT11 string.
    pub payment_request: String,
    /// The add index.
    pub add_index: u64,
    /// The payment address (secret).
    pub payment_addr: Vec<u8>,
}

/// A resume point for [`Lightning::subscribe_invoices`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvoiceCursor {
    /// Replay invoices added after this add index.
    pub add_index: u64,
    /// Replay invoices settled after this settle index.
    pub settle_index: u64,
}

/// Why a payment failed (lnd `PaymentFailureReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No failure recorded.
    None,
    /// Timed out before the first HTLC.
    Timeout,
    /// No route found.
    NoRoute,
    /// An unexpected error.
    Error,
    /// The recipient rejected the payment details (final: wrong hash/amount).
    IncorrectPaymentDetails,
    /// Not enough outbound liquidity.
    InsufficientBalance,
    /// Canceled by the user.
    Canceled,
}

impl FailureReason {
    /// True when retrying the same invoice can never succeed.
    pub fn is_permanent(self) -> bool {
        matches!(self, Self::IncorrectPaymentDetails)
    }
}

/// A payment's status (lnd `Payment.PaymentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Created, no HTLC sent yet.
    Initiated,
    /// HTLCs in flight: unknown outcome, keep waiting.
    InFlight,
    /// Paid; the preimage is known.
    Succeeded,
    /// Terminally failed.
    Failed,
}

/// A payment update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payment hash.
    pub hash: PaymentHash,
    /// The status.
    pub status: PaymentStatus,
    /// The preimage, once succeeded.
    pub preimage: Option<Preimage>,
    /// Amount paid to the recipient, msat.
    pub value_msat: u64,
    /// Routing fee, msat.
    pub fee_msat: u64,
    /// Why it failed (`None` unless failed).
    pub failure_reason: FailureReason,
    /// lnd's payment index.
    pub payment_index: u64,
}

impl Payment {
    /// True for SUCCEEDED and FAILED.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status,
            PaymentStatus::Succeeded | PaymentStatus::Failed
        )
    }

    /// The public code for a failed payment.
    pub fn error_code(&self) -> Option<ErrorCode> {
        (self.status == PaymentStatus::Failed).then_some(ErrorCode::PaymentFailed)
    }
}

/// A payment to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPayment {
    /// The BOLT11 invoice.
    pub payment_request: String,
    /// Amount for zero-amount invoices, msat.
    pub amt_msat: Option<u64>,
    /// The fee cap in msat (always explicit: 0 means zero-fee routes only).
    pub fee_limit_msat: u64,
    /// Seconds to find a first route.
    pub timeout_seconds: i32,
}

/// lnd's view of a decoded invoice (`DecodePayReq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedInvoice {
    /// The payee node key, hex.
    pub destination: String,
    /// The payment hash.
    pub hash: PaymentHash,
    /// The amount in msat (0 = any amount).
    pub num_msat: u64,
    /// Creation time, unix seconds.
    pub timestamp: i64,
    /// Expiry in seconds.
    pub expiry: i64,
    /// The description.
    pub description: String,
    /// The final CLTV delta.
    pub cltv_expiry: i64,
}

/// Channel balances in msat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelBalance {
    /// Spendable by us.
    pub local_msat: u64,
    /// Receivable by us.
    pub remote_msat: u64,
    /// Local amount in unsettled HTLCs.
    pub unsettled_local_msat: u64,
    /// Local amount in channels being opened.
    pub pending_open_local_msat: u64,
}

/// On-chain wallet balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalletBalance {
    /// Total.
    pub total: Sats,
    /// Confirmed.
    pub confirmed: Sats,
    /// Unconfirmed.
    pub unconfirmed: Sats,
    /// Locked by leases.
    pub locked: Sats,
}

/// Node identity and chain position (`GetInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node key, hex.
    pub identity_pubkey: String,
    /// The best block height.
    pub block_height: u32,
    /// Whether the node is synced to the chain.
    pub synced_to_chain: bool,
    /// `mainnet`, `testnet`, `signet` or `regtest`.
    pub network: String,
}

/// The Lightning back end (lnd or litd).
#[async_trait]
pub trait Lightning: Send + Sync + 'static {
    /// Node key, block height, network.
    async fn get_info(&self) -> Result<NodeInfo, LightningError>;
    /// The best block height.
    async fn block_height(&self) -> Result<u32, LightningError> {
        Ok(self.get_info().await?.block_height)
    }
    /// Creates a hold invoice for a hash the caller chose (`AddHoldInvoice`).
    async fn add_hold_invoice(
        &self,
        req: HoldInvoiceRequest,
    ) -> Result<AddedInvoice, LightningError>;
    /// Settles a held invoice with its preimage (idempotent).
    async fn settle_invoice(&self, preimage: Preimage) -> Result<(), LightningError>;
    /// Cancels an invoice, failing back held HTLCs (idempotent).
    async fn cancel_invoice(&self, hash: PaymentHash) -> Result<(), LightningError>;
    /// Looks an invoice up by hash.
    async fn lookup_invoice(&self, hash: PaymentHash) -> Result<Invoice, LightningError>;
    /// Streams one invoice's states, the current state first.
    async fn subscribe_single_invoice(
        &self,
        hash: PaymentHash,
    ) -> Result<BoxStream<Invoice, LightningError>, LightningError>;
    /// Streams invoice adds and settles, replaying those after `cursor` first
    /// (ACCEPTED/CANCELED events are live only).
    async fn subscribe_invoices(
        &self,
        cursor: InvoiceCursor,
    ) -> Result<BoxStream<Invoice, LightningError>, LightningError>;
    /// Sends a payment (`SendPaymentV2`), streaming updates to a terminal state.
    async fn send_payment(
        &self,
        req: SendPayment,
    ) -> Result<BoxStream<Payment, LightningError>, LightningError>;
    /// Tracks a payment by hash (`TrackPaymentV2`); `NotFound` if never sent.
    async fn track_payment(
        &self,
        hash: PaymentHash,
    ) -> Result<BoxStream<Payment, LightningError>, LightningError>;
    /// lnd's decoding of a BOLT11 string.
    async fn decode_pay_req(&self, pay_req: &str) -> Result<DecodedInvoice, LightningError>;
    /// Channel balances.
    async fn channel_balance(&self) -> Result<ChannelBalance, LightningError>;
    /// On-chain wallet balances.
    async fn wallet_balance(&self) -> Result<WalletBalance, LightningError>;
    /// The fee rate for confirmation within `conf_target` blocks, sat/vB.
    async fn estimate_fee_rate(&self, conf_target: u32) -> Result<u64, LightningError>;
}

/// A shared Lightning back end.
pub type DynLightning = std::sync::Arc<dyn Lightning>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preimage_proves_its_hash_but_zero_never_does() {
        let p = Preimage([7; 32]);
        assert!(p.proves(&p.hash()));
        assert!(!p.proves(&PaymentHash([0; 32])));
        let zero = Preimage([0; 32]);
        assert!(!zero.proves(&zero.hash()));
        assert_eq!(format!("{p:?}"), "Preimage(<redacted>)");
    }

    #[test]
    fn errors_map_to_codes_by_kind() {
        let e = |k| LightningError::new(k, "whatever text").error_code();
        assert_eq!(
            e(BackendErrorKind::Unavailable),
            ErrorCode::BackendUnavailable
        );
        assert_eq!(
            e(BackendErrorKind::InvalidArgument),
            ErrorCode::InvalidInvoice
        );
        assert_eq!(e(BackendErrorKind::AlreadyExists), ErrorCode::PaymentFailed);
        assert!(LightningError::new(BackendErrorKind::Unavailable, "").is_transient());
        assert!(!LightningError::new(BackendErrorKind::NotFound, "").is_transient());
        assert!(FailureReason::IncorrectPaymentDetails.is_permanent());
        assert!(!FailureReason::NoRoute.is_permanent());
    }

    #[test]
    fn traits_are_object_safe() {
        fn _f(_: &DynLightning) {}
    }
}
