//! The relay's liquidation checklist (pure): given a `liquidate` intent, its
//! verified witness and the position VTXO as the ledger holds it, decide
//! whether the relay may co-sign the position's conditional leaf. The relay
//! knows no perpetuals maths beyond the liquidation price the user signed:
//! it checks the witness, in this order, and names the first failure.
//!
//! | # | check | code |
//! |---|---|---|
//! | 0 | both events' ids and signatures, the terms (in [`ark_relay_protocol::perps::Witness::verify`]) | 8009, 8005, 8010 |
//! | 1 | the liquidation's author is the DEX the terms name | 8011 |
//! | 2 | the position VTXO belongs to the `open_perp`'s author, holds exactly one unit of the terms' position token, and its leaves are exactly the position script committed to this `open_perp` | 8004 |
//! | 3 | the position is unspent and not being spent | 8006 |
//! | 4 | the price is signed by the oracle the terms name | 8003 |
//! | 5 | the price is for the terms' pair and decimals | 8008 |
//! | 6 | the price is at most `max_price_age_secs` old and not from the future | 8001 |
//! | 7 | the price is at or beyond the liquidation price of the terms | 8002 |
//! | 8 | besides its fee the intent pays exactly the margin, in the margin asset as the terms write it, to the insurance fund | 8007 |

use ark_relay_ark::conditional::PositionScript;
use ark_relay_ark::ServerInfo;
use ark_relay_core::{AssetId, ErrorCode, EventId, PubKey, UnixTime, Vtxo, VtxoId};
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::intent::ValidIntent;
use ark_relay_protocol::perps::ValidWitness;
use ark_relay_protocol::Rejection;

/// `[conditional]` configuration (here, beside the checklist that reads it,
/// so that the ceremony can hold it without importing the conditional
/// handler that drives the ceremony).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionalConfig {
    /// The oldest oracle price a liquidation may use, in seconds (default 120).
    pub max_price_age_secs: i64,
}

impl Default for ConditionalConfig {
    fn default() -> Self {
        Self {
            max_price_age_secs: 120,
        }
    }
}

/// How far in the future a price's timestamp may be (clock skew).
pub const MAX_PRICE_SKEW_SECS: i64 = 60;

/// What the checklist looks at.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    /// The validated `liquidate` intent.
    pub intent: &'a ValidIntent,
    /// Its verified witness.
    pub witness: &'a ValidWitness,
    /// The position VTXO (`intent.inputs[0]`) as the ledger holds it.
    pub position: &'a Vtxo,
    /// The session this liquidation runs under (a lock it holds is its own).
    pub session: ark_relay_core::SessionId,
    /// The Ark server's parameters.
    pub server: &'a ServerInfo,
    /// The relay's (untweaked) key.
    pub relay: &'a PubKey,
    /// Now.
    pub now: UnixTime,
    /// `[conditional] max_price_age_secs`.
    pub max_price_age_secs: i64,
}

/// A liquidation the relay may co-sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approved {
    /// The position VTXO.
    pub position: VtxoId,
    /// The `open_perp` that created it (tweaks the co-signer key).
    pub open_perp: EventId,
    /// The position token's asset.
    pub token: AssetId,
    /// The insurance fund (receives the margin and the token's carrier sats).
    pub insurance_fund: PubKey,
}

fn no(code: ErrorCode, msg: impl Into<String>) -> Rejection {
    Rejection::new(code, msg)
}

/// Runs the checklist (module docs).
pub fn check(c: &Case<'_>) -> Result<Approved, Rejection> {
    let w = c.witness;
    let t = &w.terms;
    // 1. Who asks.
    if c.intent.author != t.dex {
        return Err(no(
            ErrorCode::NotTheDex,
            "the liquidation must be signed by the DEX named in the position terms",
        ));
    }
    // 2. Which position.
    let token = match t.position_token {
        AssetRef::Id(id) => id,
        AssetRef::Ticker(_) => {
            return Err(no(
                ErrorCode::InvalidPerpTerms,
                "position_token must be an asset id",
            ))
        }
    };
    let expected = PositionScript {
        user: *w.user.x_only(),
        dex: *t.dex.x_only(),
        relay: *c.relay.x_only(),
        server: *c.server.signer(),
        exit_delay: c.server.unilateral_exit_delay(),
        open_perp: w.open_perp_id,
    }
    .vtxo_script()
    .map_err(|e| no(ErrorCode::WitnessMismatch, e.to_string()))?
    .to_tapscripts();
    let p = c.position;
    let holds_token = p
        .colour
        .is_some_and(|col| col.asset == token && col.amount.get() == 1);
    if p.owner != w.user || !holds_token || p.tapscripts != expected {
        return Err(no(
            ErrorCode::WitnessMismatch,
            format!(
                "VTXO {} was not created by open_perp {} (owner, token or committed script differ)",
                p.id, w.open_perp_id
            ),
        ));
    }
    // 3. Not twice.
    let locked_by_other = p.locked_by.is_some_and(|s| s != c.session);
    if !p.status.is_spendable() || p.spent_by.is_some() || locked_by_other {
        return Err(no(
            ErrorCode::AlreadyLiquidated,
            format!("position {} is already spent or being spent", p.id),
        ));
    }
    // 4–7. The price.
    let price = &w.price;
    if price.oracle != t.oracle {
        return Err(no(
            ErrorCode::WrongOracle,
            format!(
                "price signed by {}, the terms name {}",
                price.oracle, t.oracle
            ),
        ));
    }
    if price.pair != t.pair || price.decimals != t.decimals {
        return Err(no(
            ErrorCode::PricePairMismatch,
            format!(
                "price is {} with {} decimals, the terms name {} with {}",
                price.pair, price.decimals, t.pair, t.decimals
            ),
        ));
    }
    let age = c.now.0.saturating_sub(price.timestamp.0);
    if age > c.max_price_age_secs || -age > MAX_PRICE_SKEW_SECS {
        return Err(no(
            ErrorCode::StalePrice,
            format!("price is {age} s old (at most {} s)", c.max_price_age_secs),
        ));
    }
    if !t.is_liquidatable(price.price) {
        return Err(no(
            ErrorCode::PriceNotBeyondThreshold,
            format!(
                "{:?} position liquidates at {} and the price is {}",
                t.side,
                t.liquidation_price(),
                price.price
            ),
        ));
    }
    // 8. What moves.
    let pays: Vec<_> = c.intent.outputs.iter().filter(|o| !o.fee).collect();
    let exact = matches!(pays.as_slice(), [o] if o.recipient == t.insurance_fund
        && o.asset == t.margin_asset
        && o.amount == t.margin);
    if !exact {
        return Err(no(
            ErrorCode::LiquidationPayoutMismatch,
            format!(
                "a liquidation pays exactly {} {} to the insurance fund {} besides its fee",
                t.margin, t.margin_asset, t.insurance_fund
            ),
        ));
    }
    Ok(Approved {
        position: p.id,
        open_perp: w.open_perp_id,
        token,
        insurance_fund: t.insurance_fund,
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
