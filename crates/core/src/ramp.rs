//! Lightning on- and off-ramps (PRD §5.3, §5.4): the persisted records of
//! lifts and lands, and the [`RampStore`] port that keeps them.
//!
//! Both are sagas over two systems (Ark and Lightning) with one row per
//! payment hash. Every external side effect is preceded by a durable state
//! write saying it is about to happen (research/lightning.md §8), and every
//! update is optimistic on `version`, so two workers (or a redelivered job)
//! never both take the same step.
//!
//! Lift: `created` (row + preimage written) → `invoiced` (hold invoice exists)
//! → `accepted` (HTLC held, amount and expiry checked) → `issued` (VTXO
//! finalized in Ark and in the ledger) → `settled` (`SettleInvoice`) →
//! `announced` (31340 queued); or `cancelled` (`CancelInvoice`, payer refunded
//! by Lightning) / `failed` (never invoiced).
//!
//! Land: `received` (row written, payment hash reserved) → `vtxo_moved` (the
//! user's VTXO finalized to the relay) → `paying` (written before
//! `SendPaymentV2`) → `succeeded` (preimage checked, 31340 queued); or
//! `failed` (terminal FAILED from lnd, refund owed) → `refunded` (refund VTXO
//! issued, 31341 6003 queued).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use bitcoin::Txid;
use serde::{Deserialize, Serialize};

use crate::backends::lightning::{PaymentHash, Preimage};
use crate::{AssetId, ErrorCode, EventId, NewOutboxEvent, PubKey, StoreError, UnixTime, VtxoId};

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// The database spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$v),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Where a lift is (see the module doc).
    LiftStatus {
        /// Row and preimage written; no invoice yet.
        Created = "created",
        /// The hold invoice exists.
        Invoiced = "invoiced",
        /// The payer's HTLC is held and checked.
        Accepted = "accepted",
        /// The VTXO is final in Ark and in the ledger.
        Issued = "issued",
        /// The invoice is settled: the relay has the money.
        Settled = "settled",
        /// The 31340 is queued. Final.
        Announced = "announced",
        /// The invoice was cancelled; the payer is refunded. Final.
        Cancelled = "cancelled",
        /// Failed before any invoice existed. Final.
        Failed = "failed",
    }
}

impl LiftStatus {
    /// Whether the lift is over.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            LiftStatus::Announced | LiftStatus::Cancelled | LiftStatus::Failed
        )
    }
}

status_enum! {
    /// Where a land is (see the module doc).
    LandStatus {
        /// Row written, payment hash reserved; the ceremony runs.
        Received = "received",
        /// The user's VTXO is final at the relay.
        VtxoMoved = "vtxo_moved",
        /// About to call, or called, `SendPaymentV2`.
        Paying = "paying",
        /// Paid; the preimage is checked and announced. Final.
        Succeeded = "succeeded",
        /// lnd reported a terminal failure; the refund is owed.
        Failed = "failed",
        /// Refunded and told (6003). Final. Also the end of a land whose
        /// ceremony failed before the VTXO moved (nothing to refund).
        Refunded = "refunded",
    }
}

impl LandStatus {
    /// Whether the land is over.
    pub const fn is_final(self) -> bool {
        matches!(self, LandStatus::Succeeded | LandStatus::Refunded)
    }
}

/// A lift (Lightning → VTXO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiftRecord {
    /// Public id of the lift (the 31501 result carries it).
    pub lift_id: String,
    /// Who asked, and who receives the VTXO.
    pub user: PubKey,
    /// The 31500 `lift_lightning` request (unique: one lift per request).
    pub request: EventId,
    /// The asset lifted.
    pub asset: AssetId,
    /// Asset base units (sats for gBTC).
    pub amount: u64,
    /// The invoice's payment hash (unique).
    pub hash: PaymentHash,
    /// The preimage, written before the invoice exists.
    pub preimage: Preimage,
    /// The BOLT11 invoice, once created.
    pub invoice: Option<String>,
    /// Where it is.
    pub status: LiftStatus,
    /// The VTXO issued to the user.
    pub vtxo: Option<VtxoId>,
    /// The ark transaction that issued it.
    pub ark_txid: Option<Txid>,
    /// Created.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
    /// When the invoice stops being payable.
    pub expires_at: UnixTime,
    /// Why it ended badly.
    pub error_code: Option<ErrorCode>,
    /// The engine's JSON for the issuing transaction (opaque to the store).
    pub data: String,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A land (VTXO → Lightning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandRecord {
    /// The 31510 `land_lightning` intent (unique).
    pub intent: EventId,
    /// Who lands.
    pub user: PubKey,
    /// The asset landed.
    pub asset: AssetId,
    /// Units landed (the invoice amount).
    pub amount: u64,
    /// The relay's fee in the same asset.
    pub fee: u64,
    /// The invoice's payment hash (unique across all lands: never paid twice).
    pub hash: PaymentHash,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// The routing-fee cap given to lnd, sats.
    pub fee_limit_sats: u64,
    /// Where it is.
    pub status: LandStatus,
    /// The proof of payment, once paid.
    pub preimage: Option<Preimage>,
    /// The ark transaction that moved the user's VTXO to the relay.
    pub ark_txid: Option<Txid>,
    /// The refund VTXO, if the payment failed.
    pub refund_vtxo: Option<VtxoId>,
    /// Created.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
    /// Why it ended badly.
    pub error_code: Option<ErrorCode>,
    /// The engine's JSON for the refund transaction (opaque to the store).
    pub data: String,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// What [`RampStore::create_land`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandInsert {
    /// Recorded now.
    New,
    /// This intent already has its land row.
    Existing(Box<LandRecord>),
    /// Another land already uses the payment hash (never pay an invoice twice).
    HashUsed,
}

/// Persistence of lifts and lands. Updates are optimistic: they apply only
/// if the stored `version` equals the record's, bump it, and queue `outbox`
/// in the same transaction; `false` means someone else moved first.
#[async_trait]
pub trait RampStore: Send + Sync + 'static {
    /// Records a new lift; `false` if its request already has one.
    async fn create_lift(&self, lift: &LiftRecord) -> Result<bool, StoreError>;
    /// The lift of a request.
    async fn lift_by_request(&self, request: &EventId) -> Result<Option<LiftRecord>, StoreError>;
    /// A lift by id.
    async fn lift(&self, lift_id: &str) -> Result<Option<LiftRecord>, StoreError>;
    /// Optimistic update (see the trait doc).
    async fn update_lift(
        &self,
        lift: &LiftRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Lifts not yet final: those past `invoiced` (money held, steps to
    /// finish) first, then unpaid invoices; oldest first within each.
    async fn active_lifts(&self, limit: u32) -> Result<Vec<LiftRecord>, StoreError>;

    /// Records a new land, reserving its payment hash.
    async fn create_land(&self, land: &LandRecord) -> Result<LandInsert, StoreError>;
    /// The land of an intent.
    async fn land(&self, intent: &EventId) -> Result<Option<LandRecord>, StoreError>;
    /// Optimistic update (see the trait doc).
    async fn update_land(
        &self,
        land: &LandRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Lands not yet final, oldest first.
    async fn active_lands(&self, limit: u32) -> Result<Vec<LandRecord>, StoreError>;

    /// Records the BTC reserve behind a relay-issued asset (`asset_balances`).
    async fn record_reserve(&self, reserve: &ReserveRecord) -> Result<(), StoreError>;
    /// The last recorded reserve of every asset that has one.
    async fn reserves(&self) -> Result<Vec<ReserveRecord>, StoreError>;

    /// Links a lifted Taproot Asset issued on Ark by its own genesis: the
    /// ledger id `asset` (the genesis txid) and the Taproot Asset id tapd
    /// knows it by. `false` if `asset` was linked already (the first link
    /// stays).
    async fn link_taproot_asset(
        &self,
        asset: &AssetId,
        taproot_asset_id: &AssetId,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// The ledger id of the Taproot Asset `taproot_asset_id`, if linked.
    async fn asset_of_taproot(
        &self,
        taproot_asset_id: &AssetId,
    ) -> Result<Option<AssetId>, StoreError>;
    /// The Taproot Asset id of ledger asset `asset`, if linked.
    async fn taproot_of_asset(&self, asset: &AssetId) -> Result<Option<AssetId>, StoreError>;
}

/// The BTC reserve behind a relay-issued asset, as last read from lnd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRecord {
    /// The asset (gBTC).
    pub asset: AssetId,
    /// Spendable Lightning channel balance, sats.
    pub lightning_sats: u64,
    /// Confirmed on-chain balance, sats.
    pub onchain_sats: u64,
    /// When it was read.
    pub updated_at: UnixTime,
}

impl ReserveRecord {
    /// Channel plus on-chain.
    pub fn total(&self) -> u64 {
        self.lightning_sats.saturating_add(self.onchain_sats)
    }
}

/// A shared ramp store.
pub type DynRampStore = std::sync::Arc<dyn RampStore>;
