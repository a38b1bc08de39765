//! Perpetual positions and conditional co-signing on the wire (PRD §12
//! scenarios 6 and 7, DESIGN.md §7b, `docs/protocol.md` "Conditional
//! co-signing"): the oracle's price event, the position terms a user signs in
//! an `open_perp` intent, the liquidation price those terms imply, and the
//! witness a `liquidate` intent carries.
//!
//! Pure: parsing, validation and integer arithmetic only. The relay's
//! checklist that uses these types (and the position's script) lives in
//! `ark-relay-engine::conditional`; the script itself in
//! `ark-relay-ark::conditional`.
//!
//! Decisions (justified in `docs/protocol.md`):
//! - Oracle prices are kind [`ORACLE_PRICE`] = 30420, an *addressable* kind
//!   whose `d` tag is the pair (`BTC/USD`), so one oracle key publishes every
//!   pair and relays keep the latest per pair. (10420, the PRD's number, is
//!   replaceable per key: one pair per oracle key.)
//! - Prices are integers with explicit `decimals` (`6543210` with 2 decimals =
//!   65 432.10); a float anywhere is refused.
//! - `open_perp` is a 31510 intent (a batch leg) whose content carries the
//!   terms in `perp`; a liquidation is a 31510 intent of type `liquidate`
//!   whose content carries `witness` (the two signed events as JSON objects).

use ark_relay_core::{ErrorCode, EventId, PubKey, UnixTime};
use serde::{Deserialize, Serialize};

pub mod terms;

pub use terms::{LiquidationOracle, MarginDeposit, PerpTerms, PositionDetails, Side, Witness};

use crate::content::{AssetRef, IntentContent, IntentType, WireAmount};
use crate::valid::{ValidLeg, ValidOutput};
use crate::{event_id_from_nostr, pubkey_from_nostr, Rejection};

/// 30420: an oracle's signed price for one pair (addressable, `d` = pair).
pub const ORACLE_PRICE: u16 = 30420;
/// Highest accepted leverage.
pub const MAX_LEVERAGE: u32 = 100;
/// Most decimals a price may have.
pub const MAX_PRICE_DECIMALS: u8 = 18;
/// Basis points in one (maintenance margin is in basis points of notional).
pub const BPS: u64 = 10_000;
/// Most sources an oracle event may list.
pub const MAX_SOURCES: usize = 32;

fn malformed_witness(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::MalformedWitness, msg)
}

fn bad_terms(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidPerpTerms, msg)
}

/// A trading pair such as `BTC/USD`: two 1–10 character upper-case
/// alphanumeric symbols joined by `/`. It is also the price event's `d` tag.
pub fn valid_pair(pair: &str) -> bool {
    let sym = |s: &str| {
        (1..=10).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    matches!(pair.split_once('/'), Some((a, b)) if sym(a) && sym(b))
}

/// The content of a 30420 oracle price event.
///
/// ```json
/// {"v":1,"pair":"BTC/USD","price":6543210,"decimals":2,
///  "timestamp":1767225600,"sources":["coinbase","kraken","binance"]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OraclePriceContent {
    /// Schema version, 1.
    pub v: u8,
    /// The pair; equals the event's `d` tag.
    pub pair: String,
    /// The price in units of 10^-`decimals` of the quote asset (integer > 0).
    pub price: WireAmount,
    /// How many decimals `price` has (0–18).
    pub decimals: u8,
    /// Unix seconds the price was observed (the median's time).
    pub timestamp: i64,
    /// The sources the median was taken over (non-empty).
    pub sources: Vec<String>,
}

/// A verified oracle price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPrice {
    /// The price event's id.
    pub event_id: EventId,
    /// The oracle's key (the event's author).
    pub oracle: PubKey,
    /// The pair.
    pub pair: String,
    /// The integer price.
    pub price: u64,
    /// Its decimals.
    pub decimals: u8,
    /// When it was observed (content `timestamp`).
    pub timestamp: UnixTime,
    /// Its sources.
    pub sources: Vec<String>,
}

/// Verifies and parses a 30420 price event: kind, id and signature (8005),
/// content and `d` tag (8009). Freshness and the oracle's identity are the
/// caller's checks (8001, 8003).
pub fn parse_price_event(event: &nostr::Event) -> Result<ValidPrice, Rejection> {
    if event.kind.as_u16() != ORACLE_PRICE {
        return Err(malformed_witness(format!(
            "price event must be kind {ORACLE_PRICE}, got {}",
            event.kind.as_u16()
        )));
    }
    if !event.verify_id() || !event.verify_signature() {
        return Err(Rejection::new(
            ErrorCode::InvalidWitnessSignature,
            "price event id or signature does not verify",
        ));
    }
    let oracle = pubkey_from_nostr(&event.pubkey)
        .ok_or_else(|| malformed_witness("price event author is not a valid key"))?;
    let c: OraclePriceContent = serde_json::from_str(&event.content)
        .map_err(|e| malformed_witness(format!("price content: {e}")))?;
    if c.v != 1 {
        return Err(malformed_witness(format!("price content v={}", c.v)));
    }
    if !valid_pair(&c.pair) {
        return Err(malformed_witness(format!("not a pair: {:?}", c.pair)));
    }
    if event.tags.identifier() != Some(c.pair.as_str()) {
        return Err(malformed_witness("price event's d tag must equal its pair"));
    }
    let price = c
        .price
        .positive("price")
        .map_err(|r| malformed_witness(r.message))?;
    if c.decimals > MAX_PRICE_DECIMALS {
        return Err(malformed_witness(format!(
            "decimals must be at most {MAX_PRICE_DECIMALS}"
        )));
    }
    if c.sources.is_empty() || c.sources.len() > MAX_SOURCES {
        return Err(malformed_witness(format!(
            "sources must list 1 to {MAX_SOURCES} names"
        )));
    }
    Ok(ValidPrice {
        event_id: event_id_from_nostr(&event.id),
        oracle,
        pair: c.pair,
        price,
        decimals: c.decimals,
        timestamp: UnixTime(c.timestamp),
        sources: c.sources,
    })
}

/// The unsigned 30420 event for `content` (`d` = pair); the oracle signs it.
pub fn price_event_builder(content: &OraclePriceContent) -> Result<nostr::EventBuilder, Rejection> {
    if !valid_pair(&content.pair) {
        return Err(malformed_witness(format!("not a pair: {:?}", content.pair)));
    }
    let json = serde_json::to_string(content)
        .map_err(|e| malformed_witness(format!("price content: {e}")))?;
    Ok(
        nostr::EventBuilder::new(crate::kinds::kind(ORACLE_PRICE), json)
            .tags([nostr::Tag::identifier(content.pair.clone())]),
    )
}

/// [`PerpTerms`] after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTerms {
    /// Margin asset.
    pub margin_asset: AssetRef,
    /// Margin amount (> 0).
    pub margin: u64,
    /// Side.
    pub side: Side,
    /// Leverage (1–100).
    pub leverage: u32,
    /// Entry price (> 0).
    pub entry_price: u64,
    /// The oracle.
    pub oracle: PubKey,
    /// The pair.
    pub pair: String,
    /// Decimals of `entry_price` and of the oracle's prices.
    pub decimals: u8,
    /// Maintenance margin, basis points.
    pub maintenance_margin_bps: u32,
    /// The DEX.
    pub dex: PubKey,
    /// The insurance fund.
    pub insurance_fund: PubKey,
    /// The position token.
    pub position_token: AssetRef,
}

impl PerpTerms {
    /// Validates the terms (8010 for a rule, 1002 or 2005 for an amount).
    pub fn validate(&self) -> Result<ValidTerms, Rejection> {
        let margin = self
            .margin_deposit
            .amount
            .positive("margin_deposit.amount")?;
        let entry_price = self
            .position_details
            .entry_price
            .positive("position_details.entry_price")?;
        let leverage = self.position_details.leverage;
        if !(1..=MAX_LEVERAGE).contains(&leverage) {
            return Err(bad_terms(format!(
                "leverage must be 1 to {MAX_LEVERAGE}, got {leverage}"
            )));
        }
        let o = &self.liquidation_oracle;
        if !valid_pair(&o.pair) {
            return Err(bad_terms(format!("not a pair: {:?}", o.pair)));
        }
        if o.decimals > MAX_PRICE_DECIMALS {
            return Err(bad_terms(format!(
                "decimals must be at most {MAX_PRICE_DECIMALS}"
            )));
        }
        let mm = u64::from(self.maintenance_margin_bps);
        if mm == 0 || mm.saturating_mul(u64::from(leverage)) >= BPS {
            return Err(bad_terms(
                "maintenance margin must be positive and below the initial margin (bps × leverage < 10000)",
            ));
        }
        if self.dex == o.pubkey {
            return Err(bad_terms("the oracle may not be the DEX"));
        }
        if !matches!(self.position_token, AssetRef::Id(_)) {
            return Err(bad_terms("position_token must be an asset id (64 hex)"));
        }
        Ok(ValidTerms {
            margin_asset: self.margin_deposit.asset.clone(),
            margin,
            side: self.position_details.side,
            leverage,
            entry_price,
            oracle: o.pubkey,
            pair: o.pair.clone(),
            decimals: o.decimals,
            maintenance_margin_bps: self.maintenance_margin_bps,
            dex: self.dex,
            insurance_fund: self.insurance_fund,
            position_token: self.position_token.clone(),
        })
    }
}

impl ValidTerms {
    /// The liquidation price implied by the terms (see [`liquidation_price`]).
    pub fn liquidation_price(&self) -> u64 {
        liquidation_price(
            self.side,
            self.entry_price,
            self.leverage,
            self.maintenance_margin_bps,
        )
    }

    /// Whether `price` (same decimals) is at or beyond the liquidation price:
    /// long `price ≤ liq`, short `price ≥ liq`.
    pub fn is_liquidatable(&self, price: u64) -> bool {
        let liq = self.liquidation_price();
        match self.side {
            Side::Long => price <= liq,
            Side::Short => price >= liq,
        }
    }
}

/// The price at which a position's remaining margin equals the maintenance
/// margin, in the entry price's units:
///
/// - long: `entry × (L × (10 000 + mm) − 10 000) / (L × 10 000)`, i.e.
///   `entry × (1 − 1/L + mm)`, rounded **down**;
/// - short: `entry × (L × (10 000 − mm) + 10 000) / (L × 10 000)`, i.e.
///   `entry × (1 + 1/L − mm)`, rounded **up**.
///
/// Rounding is toward the user's safe side: a long is liquidated only at or
/// below the (lower) rounded price, a short only at or above the (higher) one.
/// `L` is the leverage (≥ 1), `mm` the maintenance margin in basis points with
/// `mm × L < 10 000`, so the long price is below entry and the short above.
/// u128 arithmetic; a result beyond u64 saturates (a short that can never be
/// liquidated).
pub fn liquidation_price(side: Side, entry: u64, leverage: u32, mm_bps: u32) -> u64 {
    let l = u128::from(leverage.max(1));
    let mm = u128::from(mm_bps);
    let bps = u128::from(BPS);
    let den = l * bps;
    let e = u128::from(entry);
    let value = match side {
        // L(10000 + mm) ≥ 10000 since L ≥ 1.
        Side::Long => e * (l * (bps + mm) - bps) / den,
        Side::Short => (e * (l * bps.saturating_sub(mm) + bps)).div_ceil(den),
    };
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The `open_perp` intent content for `terms`: pays the margin to the DEX,
/// expects one position token from it, carries the terms (what a dApp or
/// wallet asks the user to sign; `relay` and `fee` as for any batch leg).
pub fn open_perp_content(
    action_id: impl Into<String>,
    terms: &PerpTerms,
    relay: &PubKey,
    fee: u64,
    expires_at: i64,
) -> Result<IntentContent, Rejection> {
    let v = terms.validate()?;
    let mut c = IntentContent::batch_leg(
        IntentType::OpenPerp,
        action_id,
        &[(v.dex, v.margin_asset.clone(), v.margin)],
        &[(v.dex, v.position_token.clone(), 1)],
        relay,
        fee,
        expires_at,
    );
    c.perp = Some(terms.clone());
    Ok(c)
}

/// The `liquidate` intent content a DEX publishes: names the `position`
/// VTXO, pays exactly the margin of the witness's terms to the insurance
/// fund (plus the relay's `fee`), carries the witness.
pub fn liquidate_content(
    action_id: impl Into<String>,
    position: ark_relay_core::VtxoId,
    witness: Witness,
    relay: &PubKey,
    fee: u64,
    expires_at: i64,
) -> Result<IntentContent, Rejection> {
    let w = witness.verify()?;
    let mut c = IntentContent::transfer(
        action_id,
        &w.terms.insurance_fund,
        w.terms.margin_asset.clone(),
        w.terms.margin,
        relay,
        fee,
        expires_at,
    );
    c.intent_type = IntentType::Liquidate.as_str().to_owned();
    c.inputs = Some(vec![position]);
    c.witness = Some(witness);
    Ok(c)
}

/// The receipt-time shape rules of the two perp intent types (called by
/// `intent::validate_intent`):
///
/// - `open_perp` carries valid `perp` terms (8010), pays exactly the margin to
///   the DEX besides its fee, and expects exactly one unit of the position
///   token from the DEX in `counterparty_leg` (8010);
/// - `liquidate` carries a `witness` (8009) and names exactly one input, the
///   position VTXO (1002); the witness itself is verified by the relay's
///   checklist when the intent runs;
/// - no other type may carry `perp` or `witness` (1002).
pub fn check_shape(
    intent_type: IntentType,
    c: &IntentContent,
    outputs: &[ValidOutput],
    counterparty_legs: &[ValidLeg],
) -> Result<(), Rejection> {
    let malformed = |m: &str| Rejection::new(ErrorCode::Malformed, m);
    match intent_type {
        IntentType::OpenPerp => {
            if c.witness.is_some() {
                return Err(malformed("open_perp carries no witness"));
            }
            let terms = c
                .perp
                .as_ref()
                .ok_or_else(|| bad_terms("open_perp needs its terms in perp"))?
                .validate()?;
            let pays: Vec<&ValidOutput> = outputs.iter().filter(|o| !o.fee).collect();
            let margin_ok = matches!(pays.as_slice(), [o] if o.recipient == terms.dex
                && o.asset == terms.margin_asset
                && o.amount == terms.margin);
            if !margin_ok {
                return Err(bad_terms(
                    "open_perp must pay exactly margin_deposit to the DEX besides its fee",
                ));
            }
            let token_ok = matches!(counterparty_legs, [l] if l.recipient == Some(terms.dex)
                && l.asset == terms.position_token
                && l.amount == 1);
            if !token_ok {
                return Err(bad_terms(
                    "open_perp must expect exactly one position_token from the DEX in counterparty_leg",
                ));
            }
            if c.mint.is_some() || c.burn.is_some() {
                return Err(malformed("open_perp neither mints nor burns"));
            }
        }
        IntentType::Liquidate => {
            if c.perp.is_some() {
                return Err(malformed("liquidate carries no perp terms"));
            }
            if c.witness.is_none() {
                return Err(malformed_witness("liquidate needs a witness"));
            }
            if !matches!(c.inputs.as_deref(), Some([_])) {
                return Err(malformed(
                    "liquidate names exactly one input: the position VTXO",
                ));
            }
        }
        _ => {
            if c.perp.is_some() || c.witness.is_some() {
                return Err(malformed(
                    "perp and witness belong to open_perp and liquidate only",
                ));
            }
        }
    }
    Ok(())
}

/// A witness whose events verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidWitness {
    /// The `open_perp` event's id (committed in the position's script).
    pub open_perp_id: EventId,
    /// Its author: the position's owner.
    pub user: PubKey,
    /// The terms she signed.
    pub terms: ValidTerms,
    /// The oracle's price.
    pub price: ValidPrice,
}

/// The `perp` terms of an `open_perp` intent's content, if it has them.
fn terms_of(content: &str) -> Result<PerpTerms, Rejection> {
    #[derive(Deserialize)]
    struct OnlyPerp {
        #[serde(rename = "type")]
        intent_type: String,
        perp: Option<PerpTerms>,
    }
    let c: OnlyPerp = serde_json::from_str(content)
        .map_err(|e| malformed_witness(format!("open_perp content: {e}")))?;
    if c.intent_type != IntentType::OpenPerp.as_str() {
        return Err(malformed_witness(format!(
            "witness intent is {:?}, not open_perp",
            c.intent_type
        )));
    }
    c.perp
        .ok_or_else(|| malformed_witness("open_perp without perp terms"))
}

impl Witness {
    /// A witness of the two events.
    pub fn new(open_perp: &nostr::Event, price: &nostr::Event) -> Self {
        Self {
            open_perp: serde_json::to_value(open_perp).unwrap_or_default(),
            price: serde_json::to_value(price).unwrap_or_default(),
        }
    }

    /// Parses and verifies both events: NIP-01 shape (8009), ids and
    /// signatures (8005), the `open_perp`'s type and terms (8009, 8010), the
    /// price content (8009). Which position, which oracle, how fresh and how
    /// far the price went are the checklist's (8001–8004, 8007).
    pub fn verify(&self) -> Result<ValidWitness, Rejection> {
        let open: nostr::Event = serde_json::from_value(self.open_perp.clone())
            .map_err(|e| malformed_witness(format!("witness.open_perp is not an event: {e}")))?;
        let price: nostr::Event = serde_json::from_value(self.price.clone())
            .map_err(|e| malformed_witness(format!("witness.price is not an event: {e}")))?;
        if open.kind.as_u16() != crate::kinds::INTENT {
            return Err(malformed_witness(
                "witness.open_perp must be a 31510 intent",
            ));
        }
        if !open.verify_id() || !open.verify_signature() {
            return Err(Rejection::new(
                ErrorCode::InvalidWitnessSignature,
                "open_perp event id or signature does not verify",
            ));
        }
        let user = pubkey_from_nostr(&open.pubkey)
            .ok_or_else(|| malformed_witness("open_perp author is not a valid key"))?;
        let terms = terms_of(&open.content)?.validate()?;
        let price = parse_price_event(&price)?;
        Ok(ValidWitness {
            open_perp_id: event_id_from_nostr(&open.id),
            user,
            terms,
            price,
        })
    }
}

#[cfg(test)]
mod tests;
