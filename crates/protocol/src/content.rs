//! The JSON content of every event kind (DESIGN.md §4). Field names are the
//! wire names; `v` is the schema version (1).
//!
//! Amounts arrive as [`WireAmount`], which keeps the JSON number exactly as
//! sent so validation can tell a float (1002) from a negative or overflowing
//! integer (2005); everything the relay produces uses integer amounts only.

use ark_relay_core::{AssetId, ErrorCode, EventId, PubKey, SessionId, VtxoId};
use serde::{Deserialize, Serialize};

pub use crate::wire::{AssetRef, WireAmount, GBTC_TICKER};
use crate::Rejection;

/// Schema version of every content type in this crate.
pub const VERSION: u8 = 1;

/// The types of intent in V1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentType {
    /// Send assets to one or more recipients.
    P2pTransfer,
    /// One leg of a two-party swap (submitted in a batch).
    AtomicSwap,
    /// Deposit assets into a pool and receive LP tokens (submitted in a batch).
    AddLiquidity,
    /// Return LP tokens and receive the pool's assets (submitted in a batch).
    RemoveLiquidity,
    /// Move a VTXO to the relay and have it pay a BOLT11 invoice (in `memo`).
    LandLightning,
    /// Open a perpetual position: pay margin to a DEX and receive its
    /// position token, under the signed terms in `perp` (submitted in a batch;
    /// `crate::perps`).
    OpenPerp,
    /// A DEX liquidates a position: spends the position VTXO through its
    /// conditional leaf with the `witness` (`crate::perps`).
    Liquidate,
}

impl IntentType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntentType::P2pTransfer => "p2p_transfer",
            IntentType::AtomicSwap => "atomic_swap",
            IntentType::AddLiquidity => "add_liquidity",
            IntentType::RemoveLiquidity => "remove_liquidity",
            IntentType::LandLightning => "land_lightning",
            IntentType::OpenPerp => "open_perp",
            IntentType::Liquidate => "liquidate",
        }
    }

    /// Every type, for validation messages and docs.
    pub const ALL: [IntentType; 7] = [
        IntentType::P2pTransfer,
        IntentType::AtomicSwap,
        IntentType::AddLiquidity,
        IntentType::RemoveLiquidity,
        IntentType::LandLightning,
        IntentType::OpenPerp,
        IntentType::Liquidate,
    ];

    /// Whether intents of this type are only valid inside a `submit_batch`.
    pub const fn needs_batch(self) -> bool {
        matches!(
            self,
            IntentType::AtomicSwap
                | IntentType::AddLiquidity
                | IntentType::RemoveLiquidity
                | IntentType::OpenPerp
        )
    }

    /// Looks a type up by its wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The role of an output in an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputRole {
    /// The relay's fee (PRD §6).
    Fee,
}

/// One output the author authorises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentOutput {
    /// The recipient's Nostr key (hex).
    pub recipient: String,
    /// The asset.
    pub asset: AssetRef,
    /// The amount in base units.
    pub amount: WireAmount,
    /// `fee` for the relay's fee output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OutputRole>,
}

/// One side of a swap: what moves, from or to whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    /// The counterparty (for `counterparty_leg`) or the recipient (for `my_leg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The asset.
    pub asset: AssetRef,
    /// The amount in base units.
    pub amount: WireAmount,
}

/// One leg or a list of legs (`counterparty_leg` may name several assets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Legs {
    /// A single leg.
    One(Leg),
    /// Several legs.
    Many(Vec<Leg>),
}

impl Legs {
    /// The legs as a slice.
    pub fn as_slice(&self) -> &[Leg] {
        match self {
            Legs::One(l) => std::slice::from_ref(l),
            Legs::Many(v) => v,
        }
    }
}

/// The content of a 31510 intent (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentContent {
    /// Schema version, 1.
    pub v: u8,
    /// Client-chosen id, unique per author forever; equals the `d` tag.
    pub action_id: String,
    /// The intent type (kept as text so an unknown type is 1003, not 1002).
    #[serde(rename = "type")]
    pub intent_type: String,
    /// Everything the author sends, including the fee output.
    pub outputs: Vec<IntentOutput>,
    /// What the author sends in a swap or deposits in a liquidity operation
    /// (one leg or several); checked against `outputs` inside a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_leg: Option<Legs>,
    /// What the author expects in return in a swap or liquidity operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_leg: Option<Legs>,
    /// Input VTXOs to spend; when absent the relay selects coins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<VtxoId>>,
    /// Free text; for `land_lightning` the BOLT11 invoice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// Units of the author's own L2 asset created by this intent (batch types
    /// only; see [`l2_asset_id`]): they pay the author's outputs of that asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<Vec<SupplyChange>>,
    /// Units of the author's own L2 asset destroyed by this intent (batch types
    /// only): taken from what the other parties of the batch pay the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn: Option<Vec<SupplyChange>>,
    /// `open_perp` only: the position terms the author agrees to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perp: Option<crate::perps::terms::PerpTerms>,
    /// `liquidate` only: the signed `open_perp` and the oracle's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<crate::perps::terms::Witness>,
    /// Unix time after which the relay must not execute the intent.
    pub expires_at: i64,
    /// The author asks for one-step signing: its step-1 challenge carries the
    /// checkpoint txs too (`psbts[1..]`) and no step 2 follows (docs/protocol.md,
    /// "Checkpoint signatures in step 1"). Omitted when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_step: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A change of supply of an L2 asset (an LP token): `amount` of the asset
/// whose id is [`l2_asset_id`]`(author, ticker)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyChange {
    /// The asset id (hex); must equal `l2_asset_id(author, ticker)`.
    pub asset: AssetRef,
    /// The ticker the id commits to (1–20 of `[A-Za-z0-9_-]`).
    pub ticker: String,
    /// Amount in base units.
    pub amount: WireAmount,
}

/// The id of an **L2 asset** issued by `issuer` under `ticker`:
/// `SHA256(SHA256(tag) ‖ SHA256(tag) ‖ issuer x-only key ‖ ticker)` with
/// `tag = "ark-relay/l2-asset"` (a BIP-340 style tagged hash).
///
/// An L2 asset (a DEX's LP token) exists only in the relay's ledger. Its id
/// commits to its issuer's key, so the rule "only intents signed by the issuer
/// may `mint` or `burn` it" needs no registry or configuration: anyone can
/// recompute the id and see who controls the supply.
pub fn l2_asset_id(issuer: &PubKey, ticker: &str) -> AssetId {
    use bitcoin::hashes::{sha256, Hash, HashEngine};
    let tag = sha256::Hash::hash(b"ark-relay/l2-asset");
    let mut engine = sha256::Hash::engine();
    engine.input(tag.as_byte_array());
    engine.input(tag.as_byte_array());
    engine.input(&issuer.x_only().serialize());
    engine.input(ticker.as_bytes());
    AssetId::from_bytes(sha256::Hash::from_engine(engine).to_byte_array())
}

/// One signature a wallet is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// Which PSBT of `psbts`.
    pub psbt_index: u32,
    /// Which input of that PSBT.
    pub input_index: u32,
    /// The x-only key that must sign (hex).
    pub pubkey: String,
    /// The tapleaf hash being spent (hex).
    pub leaf_hash: String,
    /// The BIP-341 sighash (hex), a convenience the wallet must recompute.
    pub sighash: String,
}

/// Which output carries which asset amount (the PSBT only shows carrier sats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColourHint {
    /// Which PSBT.
    pub psbt_index: u32,
    /// Which output.
    pub output_index: u32,
    /// The owner's key (hex).
    pub owner: String,
    /// The asset.
    pub asset: AssetRef,
    /// Amount in base units (what the paying intent states).
    pub amount: u64,
    /// Of `amount`, what the owner burns on arrival (a land: the relay burns
    /// the landed asset). The ark tx's asset packet gives this output exactly
    /// `amount − burned`. Omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub burned: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a challenge asks the wallet to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadToSign {
    /// Base64 PSBTs: the ark tx (step 1; for a one-step intent followed by
    /// the author's checkpoint txs, unsigned), or the checkpoint txs (step 2).
    pub psbts: Vec<String>,
    /// The signatures wanted.
    pub sign: Vec<SignRequest>,
    /// Colour of the outputs.
    pub colour: Vec<ColourHint>,
}

/// The kind of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeType {
    /// Step 1: sign the ark transaction's inputs.
    SignArkTx,
    /// Step 2: sign the server-cosigned checkpoint transactions.
    SignCheckpointTxs,
}

/// The content of a 31511 signing challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningChallenge {
    /// Schema version.
    pub v: u8,
    /// The session.
    pub session_id: SessionId,
    /// 1 for the ark tx, 2 for the checkpoints.
    pub step: u32,
    /// What to sign.
    #[serde(rename = "type")]
    pub challenge_type: ChallengeType,
    /// The data.
    pub payload_to_sign: PayloadToSign,
    /// For the user: what signing means (`Step 1/2: send 1 000 gBTC to npub1…`).
    pub human_readable_context: String,
    /// When the challenge expires.
    pub expires_at: i64,
}

/// One signature in a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// Which PSBT.
    pub psbt_index: u32,
    /// Which input.
    pub input_index: u32,
    /// The 64-byte BIP-340 signature (hex).
    pub sig: String,
}

/// The content of a 31512 signing response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningResponse {
    /// Schema version.
    pub v: u8,
    /// The session.
    pub session_id: SessionId,
    /// The step answered.
    pub step: u32,
    /// The signatures, or
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<SignatureEntry>,
    /// a refusal with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
}

/// A VTXO in a confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtxoEntry {
    /// `txid:vout`.
    pub vtxo: VtxoId,
    /// Owner key.
    pub owner: PubKey,
    /// Asset (absent for an uncoloured carrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<AssetRef>,
    /// Asset amount.
    pub amount: u64,
    /// Carrier sats.
    pub sats: u64,
}

/// The content of a 31340 confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Schema version.
    pub v: u8,
    /// arkd's txid.
    pub ark_txid: String,
    /// The intents (and service requests) it completes.
    pub intents: Vec<EventId>,
    /// Spent VTXOs.
    pub spent: Vec<VtxoEntry>,
    /// Created VTXOs.
    pub created: Vec<VtxoEntry>,
    /// For a land: the payment preimage (proof of payment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<String>,
}

/// The content of a 31341 failure notice (PRD §4.2.4, plus the machine name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureNotice {
    /// Always `failure`.
    pub status: String,
    /// The error code.
    pub code: ErrorCode,
    /// Its machine name (`INPUT_ALREADY_SPENT`).
    pub name: String,
    /// What went wrong.
    pub message: String,
}

impl From<&Rejection> for FailureNotice {
    fn from(r: &Rejection) -> Self {
        Self {
            status: "failure".into(),
            code: r.code,
            name: r.code.name().into(),
            message: r.message.clone(),
        }
    }
}

/// The content of a 31342 L1 commitment notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L1Commitment {
    /// The L1 transaction carrying the root.
    pub l1_txid: String,
    /// Its block.
    pub block_height: u64,
    /// Merkle root of the period's ark txids (hex).
    pub merkle_root_of_l2_txs: String,
    /// How many L2 transactions it commits.
    pub l2_tx_count: u64,
    /// `[from, to)` unix seconds.
    pub period: [i64; 2],
}

impl IntentContent {
    /// The same intent, asking for one-step signing (`one_step: true`).
    pub fn with_one_step(mut self, one_step: bool) -> Self {
        self.one_step = one_step;
        self
    }

    /// A `p2p_transfer` of `amount` of `asset` to `recipient`, with the relay's
    /// `fee` in gBTC (what a wallet publishes for a plain send).
    pub fn transfer(
        action_id: impl Into<String>,
        recipient: &PubKey,
        asset: AssetRef,
        amount: u64,
        relay: &PubKey,
        fee: u64,
        expires_at: i64,
    ) -> Self {
        Self {
            v: VERSION,
            action_id: action_id.into(),
            intent_type: IntentType::P2pTransfer.as_str().to_owned(),
            outputs: vec![
                IntentOutput {
                    recipient: recipient.to_string(),
                    asset,
                    amount: WireAmount::new(amount),
                    role: None,
                },
                IntentOutput {
                    recipient: relay.to_string(),
                    asset: AssetRef::gbtc(),
                    amount: WireAmount::new(fee),
                    role: Some(OutputRole::Fee),
                },
            ],
            my_leg: None,
            counterparty_leg: None,
            inputs: None,
            memo: None,
            mint: None,
            burn: None,
            perp: None,
            witness: None,
            expires_at,
            one_step: false,
        }
    }

    /// One party's intent for a batch (`atomic_swap`, `add_liquidity`,
    /// `remove_liquidity`): it pays `pays` (recipient, asset, amount) plus the
    /// relay's `fee` in gBTC, declares the same payments as `my_leg`, and
    /// expects `expects` (payer, asset, amount) from the other parties.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_leg(
        intent_type: IntentType,
        action_id: impl Into<String>,
        pays: &[(PubKey, AssetRef, u64)],
        expects: &[(PubKey, AssetRef, u64)],
        relay: &PubKey,
        fee: u64,
        expires_at: i64,
    ) -> Self {
        let leg = |(who, asset, amount): &(PubKey, AssetRef, u64)| Leg {
            recipient: Some(who.to_string()),
            asset: asset.clone(),
            amount: WireAmount::new(*amount),
        };
        let legs = |v: &[(PubKey, AssetRef, u64)]| match v {
            [] => None,
            [one] => Some(Legs::One(leg(one))),
            many => Some(Legs::Many(many.iter().map(leg).collect())),
        };
        let mut outputs: Vec<IntentOutput> = pays
            .iter()
            .map(|(who, asset, amount)| IntentOutput {
                recipient: who.to_string(),
                asset: asset.clone(),
                amount: WireAmount::new(*amount),
                role: None,
            })
            .collect();
        outputs.push(IntentOutput {
            recipient: relay.to_string(),
            asset: AssetRef::gbtc(),
            amount: WireAmount::new(fee),
            role: Some(OutputRole::Fee),
        });
        Self {
            v: VERSION,
            action_id: action_id.into(),
            intent_type: intent_type.as_str().to_owned(),
            outputs,
            my_leg: legs(pays),
            counterparty_leg: legs(expects),
            inputs: None,
            memo: None,
            mint: None,
            burn: None,
            perp: None,
            witness: None,
            expires_at,
            one_step: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> WireAmount {
        serde_json::from_str(json).expect("number")
    }

    #[test]
    fn amounts_are_positive_integers() {
        assert_eq!(amount("1000").positive("amount"), Ok(1000));
        assert_eq!(
            amount("1000.5").positive("a").map_err(|r| r.code),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            amount("1e3").positive("a").map_err(|r| r.code),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            amount("0").positive("a").map_err(|r| r.code),
            Err(ErrorCode::InvalidAmount)
        );
        assert_eq!(
            amount("-5").positive("a").map_err(|r| r.code),
            Err(ErrorCode::InvalidAmount)
        );
        let big = amount("9223372036854775808");
        assert_eq!(
            big.positive("a").map_err(|r| r.code),
            Err(ErrorCode::InvalidAmount)
        );
        let huge = amount("100000000000000000000000");
        assert_eq!(
            huge.positive("a").map_err(|r| r.code),
            Err(ErrorCode::InvalidAmount)
        );
    }

    #[test]
    fn asset_refs() {
        assert_eq!("gBTC".parse::<AssetRef>(), Ok(AssetRef::gbtc()));
        assert!(matches!(
            "ab".repeat(32).parse::<AssetRef>(),
            Ok(AssetRef::Id(_))
        ));
        assert!("a b".parse::<AssetRef>().is_err());
        assert!("".parse::<AssetRef>().is_err());
    }

    #[test]
    fn legs_accept_one_or_many() {
        let one: Legs = serde_json::from_str(r#"{"asset":"gBTC","amount":5}"#).expect("one");
        assert_eq!(one.as_slice().len(), 1);
        let many: Legs =
            serde_json::from_str(r#"[{"asset":"gBTC","amount":5},{"asset":"gUSD","amount":7}]"#)
                .expect("many");
        assert_eq!(many.as_slice().len(), 2);
    }

    #[test]
    fn failure_notice_shape() {
        let r = Rejection::new(ErrorCode::FeeOutput, "fee output missing");
        let json = serde_json::to_value(FailureNotice::from(&r)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"status":"failure","code":4001,"name":"FEE_OUTPUT","message":"fee output missing"})
        );
    }

    #[test]
    fn one_step_is_optional_and_omitted_when_false() {
        let k: PubKey = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            .parse()
            .expect("key");
        let two = IntentContent::transfer("a", &k, AssetRef::gbtc(), 5, &k, 1, 9);
        let json = serde_json::to_string(&two).expect("json");
        assert!(!json.contains("one_step"), "{json}");
        let back: IntentContent = serde_json::from_str(&json).expect("old form parses");
        assert!(!back.one_step);
        let one = two.with_one_step(true);
        let json = serde_json::to_value(&one).expect("json");
        assert_eq!(json["one_step"], serde_json::json!(true));
        let back: IntentContent = serde_json::from_value(json).expect("new form parses");
        assert!(back.one_step);
    }
}
