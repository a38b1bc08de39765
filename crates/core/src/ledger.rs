//! The ledger's data model: assets, coloured VTXOs, L2 transactions and the
//! idempotency records of processed Nostr events and intents.
//!
//! arkd only knows sats. The relay's ledger adds **colour**: each VTXO carries a
//! small BTC carrier amount ([`Sats`]) and at most one [`Colour`] (an asset id and
//! an amount of that asset). Colour is conserved per asset by every
//! [`L2Transaction`], except for explicit issuance (a lift mints gBTC) and burning
//! (a land burns it).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bitcoin::Txid;
use serde::{Deserialize, Serialize};

use crate::{ActionId, AssetAmount, AssetId, EventId, PubKey, Sats, SessionId, UnixTime, VtxoId};

/// Who issued an asset (PRD §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetType {
    /// Issued by the relay itself and backed 1:1 by its BTC reserve (gBTC).
    RelayIssued,
    /// Any Taproot Asset lifted into the relay by a user with its proofs.
    Permissionless,
}

impl AssetType {
    /// The database / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AssetType::RelayIssued => "relay_issued",
            AssetType::Permissionless => "permissionless",
        }
    }
}

impl FromStr for AssetType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "relay_issued" => Ok(AssetType::RelayIssued),
            "permissionless" => Ok(AssetType::Permissionless),
            other => Err(format!("unknown asset type {other:?}")),
        }
    }
}

/// An asset to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAsset {
    /// tapd's asset id.
    pub id: AssetId,
    /// Human-readable name.
    pub name: String,
    /// Ticker, e.g. `gBTC`.
    pub ticker: String,
    /// Issuer kind.
    pub asset_type: AssetType,
    /// Display precision (base units per whole unit = 10^decimals).
    pub decimals: u8,
}

/// A registered asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// tapd's asset id.
    pub id: AssetId,
    /// Human-readable name.
    pub name: String,
    /// Ticker, e.g. `gBTC`.
    pub ticker: String,
    /// Issuer kind.
    pub asset_type: AssetType,
    /// Display precision.
    pub decimals: u8,
    /// Units in circulation in the ledger (sum of the colour of unspent VTXOs).
    pub total_supply: AssetAmount,
    /// For relay-issued assets, the BTC reserve recorded for them.
    pub reserve_amount: Sats,
    /// Whether new operations may use the asset.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// The colour of a VTXO: which asset it carries and how much of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Colour {
    /// The asset.
    pub asset: AssetId,
    /// The amount of the asset, in base units.
    pub amount: AssetAmount,
}

/// Lifecycle of a VTXO row (PRD §10.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VtxoStatus {
    /// In the relay's own inventory, not yet given to a user.
    Available,
    /// Owned by a user (or by the relay for fees) and spendable.
    Assigned,
    /// Spent by an L2 transaction.
    Spent,
    /// Past its expiry; no longer spendable off-chain.
    Expired,
}

impl VtxoStatus {
    /// The database / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            VtxoStatus::Available => "available",
            VtxoStatus::Assigned => "assigned",
            VtxoStatus::Spent => "spent",
            VtxoStatus::Expired => "expired",
        }
    }

    /// Whether a VTXO in this state can be an input of a new transaction.
    pub const fn is_spendable(self) -> bool {
        matches!(self, VtxoStatus::Available | VtxoStatus::Assigned)
    }
}

impl FromStr for VtxoStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "available" => Ok(VtxoStatus::Available),
            "assigned" => Ok(VtxoStatus::Assigned),
            "spent" => Ok(VtxoStatus::Spent),
            "expired" => Ok(VtxoStatus::Expired),
            other => Err(format!("unknown VTXO status {other:?}")),
        }
    }
}

impl fmt::Display for VtxoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The full tapscript list of a VTXO's Taproot output, leaf by leaf (raw script
/// bytes). The relay stores it rather than re-deriving it, because Ark
/// implementations disagree on leaf layouts (research/ark.md §2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tapscripts(pub Vec<Vec<u8>>);

impl Serialize for Tapscripts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(hex::encode))
    }
}

impl<'de> Deserialize<'de> for Tapscripts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let leaves = Vec::<String>::deserialize(d)?;
        leaves
            .iter()
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .collect::<Result<Vec<_>, _>>()
            .map(Tapscripts)
    }
}

/// A VTXO to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVtxo {
    /// Its outpoint.
    pub id: VtxoId,
    /// The owner's Nostr x-only key (the VTXO's owner key).
    pub owner: PubKey,
    /// BTC carrier amount.
    pub sats: Sats,
    /// The asset it carries, if any.
    pub colour: Option<Colour>,
    /// `Available` for relay inventory, `Assigned` for a user's VTXO.
    pub status: VtxoStatus,
    /// The Taproot leaves of its output.
    pub tapscripts: Tapscripts,
    /// When it expires (batch expiry), if known.
    pub expires_at: Option<UnixTime>,
}

/// A VTXO as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vtxo {
    /// Its outpoint.
    pub id: VtxoId,
    /// The owner's key.
    pub owner: PubKey,
    /// BTC carrier amount.
    pub sats: Sats,
    /// The asset it carries, if any.
    pub colour: Option<Colour>,
    /// Lifecycle state.
    pub status: VtxoStatus,
    /// The Taproot leaves of its output.
    pub tapscripts: Tapscripts,
    /// The signing session holding it, if locked.
    pub locked_by: Option<SessionId>,
    /// The ark transaction that spent it.
    pub spent_by: Option<Txid>,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was spent.
    pub spent_at: Option<UnixTime>,
    /// When it expires, if known.
    pub expires_at: Option<UnixTime>,
}

/// A finalized Ark off-chain transaction as applied to the ledger.
///
/// Invariants checked by [`crate::RelayStore::commit_transaction`]:
/// every input exists, is spendable and is unlocked or locked by `session`;
/// carrier sats in = sats out + `fee` (ark transactions pay no fee; a round
/// pays arkd its intent fee); and for each asset, colour in + `issued` =
/// colour out + `burned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Transaction {
    /// arkd's txid of the ark transaction (the idempotency key).
    pub ark_txid: Txid,
    /// What kind of operation produced it (`p2p_transfer`, `batch`, `lift`, `land`, `refund`, …).
    pub kind: String,
    /// The signing session that locked the inputs, if any.
    pub session: Option<SessionId>,
    /// Spent VTXOs.
    pub inputs: Vec<VtxoId>,
    /// Created VTXOs.
    pub outputs: Vec<NewVtxo>,
    /// Colour created from nothing (a lift issuing gBTC against received BTC).
    pub issued: Vec<Colour>,
    /// Colour destroyed (a land burning gBTC after paying out BTC).
    pub burned: Vec<Colour>,
    /// When arkd finalized it.
    pub finalized_at: UnixTime,
    /// Sats the Ark server kept: a round intent's fee (arkd's fee programs);
    /// zero for an ark transaction.
    #[serde(default)]
    pub fee: Sats,
}

/// What `commit_transaction` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Applied now.
    Committed,
    /// This ark txid was applied before; nothing changed.
    AlreadyCommitted,
}

/// An owner's unspent holdings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Carrier sats over all unspent VTXOs.
    pub sats: Sats,
    /// Colour per asset.
    pub assets: BTreeMap<AssetId, AssetAmount>,
    /// Number of unspent VTXOs.
    pub vtxo_count: u64,
}

/// A Nostr event the relay has handled (idempotency by event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    /// The event id.
    pub id: EventId,
    /// Its author.
    pub author: PubKey,
    /// Its kind.
    pub kind: u16,
    /// Its `created_at`.
    pub created_at: UnixTime,
    /// When the relay received it.
    pub received_at: UnixTime,
    /// The error code it was rejected with, if it was.
    pub outcome: Option<crate::ErrorCode>,
}

/// A validated intent as stored (unique by event id and by `(author, action_id)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The 31510 event id.
    pub event_id: EventId,
    /// Its author.
    pub author: PubKey,
    /// The client-chosen action id.
    pub action_id: ActionId,
    /// The intent type (`p2p_transfer`, …).
    pub intent_type: String,
    /// The raw JSON content, as signed.
    pub content: String,
    /// The event's `created_at`.
    pub created_at: UnixTime,
    /// `expires_at` from the content.
    pub expires_at: UnixTime,
    /// When the relay received it.
    pub received_at: UnixTime,
}

/// The result of recording something that must happen at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// First time: recorded now.
    New,
    /// The same event (or the same key) was recorded before; nothing changed.
    Duplicate,
    /// A different event reused an author's `action_id` (error 1005). The new
    /// event itself was recorded as processed, so it is answered only once.
    ReplayedAction {
        /// The event that used the `action_id` first.
        original: EventId,
    },
}
