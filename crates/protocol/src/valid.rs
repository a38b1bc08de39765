//! What validation yields: a 31510 intent that passed
//! [`crate::intent::validate_intent`] ([`ValidIntent`]) and its parts. A file
//! of its own, below both `intent` (which builds these) and `perps` (whose
//! shape check `intent` calls and which reads them).

use ark_relay_core::{ActionId, AssetId, EventId, IntentRecord, PubKey, UnixTime, VtxoId};

use crate::content::IntentType;
use crate::wire::AssetRef;

/// An output after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOutput {
    /// Recipient.
    pub recipient: PubKey,
    /// Asset.
    pub asset: AssetRef,
    /// Amount in base units (> 0).
    pub amount: u64,
    /// Whether it is the relay's fee.
    pub fee: bool,
}

/// A leg after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLeg {
    /// Counterparty or recipient, if named.
    pub recipient: Option<PubKey>,
    /// Asset.
    pub asset: AssetRef,
    /// Amount in base units (> 0).
    pub amount: u64,
}

/// A `mint` or `burn` entry after validation (that the asset is the
/// author's own is the relay's check, see `parse_supply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSupply {
    /// The asset id.
    pub asset: AssetId,
    /// Its ticker.
    pub ticker: String,
    /// Amount in base units (> 0).
    pub amount: u64,
}

/// A 31510 intent that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidIntent {
    /// The event id.
    pub event_id: EventId,
    /// The author.
    pub author: PubKey,
    /// The event's `created_at`.
    pub created_at: UnixTime,
    /// The action id.
    pub action_id: ActionId,
    /// The type.
    pub intent_type: IntentType,
    /// All outputs, fee included.
    pub outputs: Vec<ValidOutput>,
    /// `my_leg` (none, one or more).
    pub my_legs: Vec<ValidLeg>,
    /// `counterparty_leg` (one or more).
    pub counterparty_legs: Vec<ValidLeg>,
    /// Inputs named by the author.
    pub inputs: Option<Vec<VtxoId>>,
    /// The memo (the invoice of a land).
    pub memo: Option<String>,
    /// Units of the author's own L2 assets it creates (batch types only).
    pub mint: Vec<ValidSupply>,
    /// Units of the author's own L2 assets it destroys (batch types only).
    pub burn: Vec<ValidSupply>,
    /// Expiry.
    pub expires_at: UnixTime,
    /// The author asked for one-step signing (checkpoints in step 1).
    pub one_step: bool,
    /// The content as signed.
    pub content: String,
}

impl ValidIntent {
    /// The fee output.
    pub fn fee(&self) -> Option<&ValidOutput> {
        self.outputs.iter().find(|o| o.fee)
    }

    /// The outputs other than the fee.
    pub fn payments(&self) -> impl Iterator<Item = &ValidOutput> {
        self.outputs.iter().filter(|o| !o.fee)
    }

    /// The row the store keeps for it.
    pub fn record(&self, received_at: UnixTime) -> IntentRecord {
        IntentRecord {
            event_id: self.event_id,
            author: self.author,
            action_id: self.action_id.clone(),
            intent_type: self.intent_type.as_str().to_owned(),
            content: self.content.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            received_at,
        }
    }
}
