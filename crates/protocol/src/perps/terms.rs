//! The wire types of a perpetual position: the terms a user signs in an
//! `open_perp` intent and the witness a `liquidate` intent carries. Data
//! only (serde); their validation lives in `perps.rs`. A file of its
//! own so that `content` can hold these types without importing the
//! validation, which itself reads intents' content.

use ark_relay_core::PubKey;
use serde::{Deserialize, Serialize};

use crate::wire::{AssetRef, WireAmount};

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Gains when the price rises; liquidated when it falls to the threshold.
    Long,
    /// Gains when the price falls; liquidated when it rises to the threshold.
    Short,
}

/// What the user deposits as margin (PRD `margin_deposit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginDeposit {
    /// The margin asset (gBTC in the PRD).
    pub asset: AssetRef,
    /// Its amount in base units (integer).
    pub amount: WireAmount,
}

/// The position (PRD `position_details`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionDetails {
    /// Long or short.
    pub side: Side,
    /// Integer leverage, 1 to the maximum the checks allow (100).
    pub leverage: u32,
    /// Entry price as an integer with the oracle's `decimals`.
    pub entry_price: WireAmount,
}

/// The oracle the user accepts for liquidation (PRD `liquidation_oracle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidationOracle {
    /// The oracle's Nostr key (hex); only its 30420 events count.
    pub pubkey: PubKey,
    /// The pair, as in the oracle's `d` tag.
    pub pair: String,
    /// The decimals of the oracle's prices for this pair (= `entry_price`'s).
    pub decimals: u8,
}

/// The position terms of an `open_perp` intent (its content's `perp` field):
/// the user's signature over these is her pre-authorisation of a liquidation.
///
/// ```json
/// {"margin_deposit":{"asset":"gBTC","amount":1000000},
///  "position_details":{"side":"long","leverage":10,"entry_price":6543210},
///  "liquidation_oracle":{"pubkey":"<hex>","pair":"BTC/USD","decimals":2},
///  "maintenance_margin_bps":50,"dex":"<hex>","insurance_fund":"<hex>",
///  "position_token":"<asset id hex>"}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerpTerms {
    /// Margin paid to the DEX in the opening batch.
    pub margin_deposit: MarginDeposit,
    /// Side, leverage, entry price.
    pub position_details: PositionDetails,
    /// Whose prices may liquidate the position.
    pub liquidation_oracle: LiquidationOracle,
    /// Maintenance margin in basis points of notional; must be below the
    /// initial margin (`maintenance_margin_bps × leverage < 10 000`).
    pub maintenance_margin_bps: u32,
    /// The DEX's key: receives the margin, issues the position token, and is
    /// the key of the conditional leaf next to the relay's co-signer.
    pub dex: PubKey,
    /// Where a liquidation sends the margin (the DEX's insurance fund).
    pub insurance_fund: PubKey,
    /// The position token: the id (64 hex, never a ticker) of an L2 asset
    /// of the DEX; one unit, burned on liquidation.
    pub position_token: AssetRef,
}

/// The witness of a `liquidate` intent (its content's `witness` field): the
/// two signed events as full NIP-01 JSON objects, exactly as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witness {
    /// The user's signed 31510 `open_perp` intent.
    pub open_perp: serde_json::Value,
    /// The oracle's signed 30420 price event.
    pub price: serde_json::Value,
}
