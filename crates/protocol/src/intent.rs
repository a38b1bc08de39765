//! Screening of incoming events and validation of 31510 intents, including the
//! PRD §6 fee policy. Every refusal is a [`Rejection`] with a code from the
//! public table; events that are not for us are ignored, not refused.

use std::collections::BTreeSet;

use ark_relay_core::{ActionId, AssetId, ErrorCode, PubKey, UnixTime};

use crate::content::{AssetRef, IntentContent, IntentType, Leg, OutputRole, GBTC_TICKER, VERSION};
pub use crate::valid::{ValidIntent, ValidLeg, ValidOutput, ValidSupply};
use crate::{event_id_from_nostr, kinds, pubkey_from_nostr, Rejection};

/// Events more than this far in the future are ignored (DESIGN.md §4).
pub const MAX_FUTURE_SKEW_SECS: i64 = 600;
/// Largest accepted content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// What the relay charges and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentPolicy {
    /// The relay's public key (fee recipient, required `p` tag).
    pub relay: PubKey,
    /// gBTC's tapd asset id once minted; the ticker `gBTC` is always accepted.
    pub fee_asset: Option<AssetId>,
    /// Fee per intent for L2 transfers, in gBTC base units (PRD §6: 10).
    pub transfer_fee: u64,
    /// Land fee in parts per million of the landed value (PRD §6: 0.1 % = 1000).
    pub land_fee_ppm: u64,
    /// Furthest accepted `expires_at`, in seconds from now.
    pub max_horizon_secs: i64,
    /// The Lightning network lands pay on; when set, the BOLT11 invoice of a
    /// gBTC `land_lightning` is checked at receipt (6001, 6002, 6004).
    pub network: Option<bitcoin::Network>,
}

impl IntentPolicy {
    /// The PRD's defaults for a relay key.
    pub fn new(relay: PubKey) -> Self {
        Self {
            relay,
            fee_asset: None,
            transfer_fee: 10,
            land_fee_ppm: 1_000,
            max_horizon_secs: 86_400,
            network: None,
        }
    }

    /// Whether `asset` names gBTC.
    pub fn is_fee_asset(&self, asset: &AssetRef) -> bool {
        match asset {
            AssetRef::Ticker(t) => t == GBTC_TICKER,
            AssetRef::Id(id) => Some(*id) == self.fee_asset,
        }
    }

    /// Whether a fee output may name `asset`: gBTC by ticker or by its id.
    /// A policy that does not know gBTC's id (`fee_asset: None`) lets any id
    /// through; the engine then requires it to be gBTC's, against its asset
    /// registry (`names::is_gbtc`, 4001 otherwise).
    pub fn may_be_fee_asset(&self, asset: &AssetRef) -> bool {
        self.is_fee_asset(asset) || (matches!(asset, AssetRef::Id(_)) && self.fee_asset.is_none())
    }

    /// The land fee for `landed` units: 0.1 % rounded up.
    pub fn land_fee(&self, landed: u64) -> Option<u64> {
        land_fee(landed, self.land_fee_ppm)
    }
}

/// The fee of landing `landed` units at `ppm` parts per million, rounded up
/// (PRD §6; wallets compute it from `get_info`'s `land_fee_ppm`). `None` if it
/// overflows.
pub fn land_fee(landed: u64, ppm: u64) -> Option<u64> {
    let fee = (u128::from(landed) * u128::from(ppm)).div_ceil(1_000_000);
    u64::try_from(fee).ok()
}

/// What to do with an event that arrived on the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Verify and process it.
    Process,
    /// Drop it silently, for this reason.
    Ignore(&'static str),
}

/// Decides whether an event is ours to process at all: the right kind,
/// p-tagged to the relay, and not from the far future. Does not verify.
pub fn screen(event: &nostr::Event, relay: &PubKey, now: UnixTime) -> Screen {
    if !kinds::CONSUMED.contains(&event.kind.as_u16()) {
        return Screen::Ignore("kind not consumed by the relay");
    }
    let ours = event
        .tags
        .public_keys()
        .any(|p| pubkey_from_nostr(p).as_ref() == Some(relay));
    if !ours {
        return Screen::Ignore("not p-tagged to the relay");
    }
    let created = i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX);
    if created > now.0.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return Screen::Ignore("created_at too far in the future");
    }
    Screen::Process
}

/// Checks the NIP-01 id and the BIP-340 signature (1001).
pub fn verify(event: &nostr::Event) -> Result<(), Rejection> {
    if !event.verify_id() {
        return Err(Rejection::new(
            ErrorCode::InvalidSignature,
            "event id does not match its content",
        ));
    }
    if !event.verify_signature() {
        return Err(Rejection::new(
            ErrorCode::InvalidSignature,
            "signature does not verify",
        ));
    }
    Ok(())
}

fn malformed(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::Malformed, msg)
}

fn fee_error(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::FeeOutput, msg)
}

/// Why content that does not parse as an intent is refused: an unknown `type`
/// is 1003 (so new types fail clearly), anything else 1002.
fn classify_bad_content(content: &str, e: serde_json::Error) -> Rejection {
    let value: serde_json::Value = match serde_json::from_str(content) {
        Ok(v) => v,
        Err(e) => return malformed(format!("content is not JSON: {e}")),
    };
    match value.get("type").and_then(|t| t.as_str()) {
        None => malformed("content has no string field \"type\""),
        Some(t) if IntentType::parse(t).is_none() => Rejection::new(
            ErrorCode::UnsupportedAction,
            format!("unsupported intent type {t:?}"),
        ),
        Some(_) => malformed(format!("content: {e}")),
    }
}

fn parse_key(s: &str, field: &str) -> Result<PubKey, Rejection> {
    s.parse::<PubKey>()
        .map_err(|e| malformed(format!("{field}: {e}")))
}

fn parse_leg(leg: &Leg, field: &str) -> Result<ValidLeg, Rejection> {
    Ok(ValidLeg {
        recipient: leg
            .recipient
            .as_deref()
            .map(|r| parse_key(r, field))
            .transpose()?,
        asset: leg.asset.clone(),
        amount: leg.amount.positive(&format!("{field}.amount"))?,
    })
}

/// `mint`/`burn` entries: only in batch types, each naming an asset by id,
/// at most once per asset (that it is the author's own is the relay's check:
/// its L2 id `l2_asset_id(author, ticker)`, or an asset issued on Ark whose
/// control asset the author holds).
fn parse_supply(
    entries: Option<&[crate::content::SupplyChange]>,
    field: &str,
    intent_type: IntentType,
) -> Result<Vec<ValidSupply>, Rejection> {
    let Some(entries) = entries else {
        return Ok(Vec::new());
    };
    if !intent_type.needs_batch() {
        return Err(malformed(format!(
            "{field} is only allowed in atomic_swap, add_liquidity and remove_liquidity"
        )));
    }
    let mut out: Vec<ValidSupply> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let ticker_ok = (1..=20).contains(&e.ticker.len())
            && e.ticker
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ticker_ok {
            return Err(malformed(format!("{field}[{i}].ticker is not a ticker")));
        }
        // The author's own asset, by id: its bridged L2 id
        // (`l2_asset_id(author, ticker)`), or an asset issued on Ark whose
        // control asset the author holds — which only the relay's ledger
        // knows, so the relay checks it when it plans the batch.
        let AssetRef::Id(expected) = e.asset else {
            return Err(malformed(format!(
                "{field}[{i}].asset must be an asset id, not {}",
                e.asset
            )));
        };
        if out.iter().any(|o| o.asset == expected) {
            return Err(malformed(format!("{field}[{i}] repeats asset {expected}")));
        }
        out.push(ValidSupply {
            asset: expected,
            ticker: e.ticker.clone(),
            amount: e.amount.positive(&format!("{field}[{i}].amount"))?,
        });
    }
    Ok(out)
}

/// Validates a verified 31510 event against `policy` at time `now`.
pub fn validate_intent(
    event: &nostr::Event,
    policy: &IntentPolicy,
    now: UnixTime,
) -> Result<ValidIntent, Rejection> {
    if event.kind.as_u16() != kinds::INTENT {
        return Err(malformed("not an intent (kind 31510)"));
    }
    let author = pubkey_from_nostr(&event.pubkey)
        .ok_or_else(|| Rejection::new(ErrorCode::InvalidSignature, "author is not a valid key"))?;
    if event.content.len() > MAX_CONTENT_BYTES {
        return Err(malformed(format!(
            "content larger than {MAX_CONTENT_BYTES} bytes"
        )));
    }
    // Hot path: one parse straight into the content type. Only when that
    // fails is the content re-read loosely, to tell an unknown type (1003)
    // from malformed content (1002).
    let c: IntentContent = match serde_json::from_str(&event.content) {
        Ok(c) => c,
        Err(e) => return Err(classify_bad_content(&event.content, e)),
    };
    let intent_type = IntentType::parse(&c.intent_type).ok_or_else(|| {
        Rejection::new(
            ErrorCode::UnsupportedAction,
            format!("unsupported intent type {:?}", c.intent_type),
        )
    })?;
    if c.v != VERSION {
        return Err(malformed(format!("unsupported schema version v={}", c.v)));
    }
    let action_id: ActionId = c
        .action_id
        .parse()
        .map_err(|e| malformed(format!("action_id: {e}")))?;
    if let Some(d) = event.tags.identifier() {
        if d != c.action_id {
            return Err(malformed("the d tag must equal action_id"));
        }
    }

    // Expiry: content expires_at and the NIP-40 tag.
    if c.expires_at <= now.0 {
        return Err(Rejection::new(
            ErrorCode::Expired,
            "intent expired (expires_at)",
        ));
    }
    if let Some(exp) = event.tags.expiration() {
        if i64::try_from(exp.as_secs()).unwrap_or(i64::MAX) <= now.0 {
            return Err(Rejection::new(
                ErrorCode::Expired,
                "intent expired (expiration tag)",
            ));
        }
    }
    if c.expires_at > now.0.saturating_add(policy.max_horizon_secs) {
        return Err(malformed(format!(
            "expires_at is more than {} s in the future",
            policy.max_horizon_secs
        )));
    }

    let relay_hex = policy.relay.to_string();
    let mut outputs = Vec::with_capacity(c.outputs.len());
    for (i, o) in c.outputs.iter().enumerate() {
        // The relay's own key is known valid; skip the curve check for it.
        let recipient = if o.recipient == relay_hex {
            policy.relay
        } else {
            parse_key(&o.recipient, &format!("outputs[{i}].recipient"))?
        };
        outputs.push(ValidOutput {
            recipient,
            asset: o.asset.clone(),
            amount: o.amount.positive(&format!("outputs[{i}].amount"))?,
            fee: o.role == Some(OutputRole::Fee),
        });
    }
    if !outputs.iter().any(|o| !o.fee) {
        return Err(malformed("intent has no outputs besides the fee"));
    }
    check_fee(intent_type, &outputs, policy)?;
    if intent_type == IntentType::LandLightning
        && c.memo.as_deref().map(str::trim).unwrap_or("").is_empty()
    {
        return Err(Rejection::new(
            ErrorCode::InvalidInvoice,
            "land_lightning needs the invoice in memo",
        ));
    }

    if let (IntentType::LandLightning, Some(network), Some(memo)) =
        (intent_type, policy.network, c.memo.as_deref())
    {
        let payments = || outputs.iter().filter(|o| !o.fee);
        if payments().all(|o| policy.is_fee_asset(&o.asset)) {
            let landed = payments().map(|o| o.amount).fold(0u64, u64::saturating_add);
            crate::invoice::check_land_invoice(memo, network, landed, now)?;
        }
    }
    let my_legs = match &c.my_leg {
        Some(legs) => legs
            .as_slice()
            .iter()
            .map(|l| parse_leg(l, "my_leg"))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mint = parse_supply(c.mint.as_deref(), "mint", intent_type)?;
    let burn = parse_supply(c.burn.as_deref(), "burn", intent_type)?;
    let counterparty_legs = match &c.counterparty_leg {
        Some(legs) => legs
            .as_slice()
            .iter()
            .map(|l| parse_leg(l, "counterparty_leg"))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    match intent_type {
        IntentType::AtomicSwap if my_legs.is_empty() || counterparty_legs.is_empty() => {
            return Err(malformed("atomic_swap needs my_leg and counterparty_leg"));
        }
        IntentType::AddLiquidity | IntentType::RemoveLiquidity if counterparty_legs.is_empty() => {
            return Err(malformed(format!(
                "{} needs counterparty_leg",
                intent_type.as_str()
            )));
        }
        _ => {}
    }
    if let Some(inputs) = &c.inputs {
        let distinct: BTreeSet<_> = inputs.iter().collect();
        if inputs.is_empty() || distinct.len() != inputs.len() {
            return Err(malformed(
                "inputs must be a non-empty list of distinct VTXOs",
            ));
        }
    }

    crate::perps::check_shape(intent_type, &c, &outputs, &counterparty_legs)?;

    Ok(ValidIntent {
        event_id: event_id_from_nostr(&event.id),
        author,
        created_at: UnixTime(i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX)),
        action_id,
        intent_type,
        outputs,
        my_legs,
        counterparty_legs,
        inputs: c.inputs.clone(),
        memo: c.memo.clone(),
        mint,
        burn,
        expires_at: UnixTime(c.expires_at),
        one_step: c.one_step,
        content: event.content.clone(),
    })
}

/// PRD §6: a 10-unit gBTC fee per intent for L2 transfers; 0.1 % of the landed
/// value (rounded up, in the landed asset) for lands; always one explicit
/// output to the relay with `role: "fee"`.
fn check_fee(
    intent_type: IntentType,
    outputs: &[ValidOutput],
    policy: &IntentPolicy,
) -> Result<(), Rejection> {
    let fees: Vec<&ValidOutput> = outputs.iter().filter(|o| o.fee).collect();
    let fee = match fees.as_slice() {
        [] => return Err(fee_error("fee output missing")),
        [one] => *one,
        _ => return Err(fee_error("more than one fee output")),
    };
    if fee.recipient != policy.relay {
        return Err(fee_error("fee output must pay the relay's key"));
    }
    match intent_type {
        IntentType::LandLightning => {
            let mut landed: u64 = 0;
            let mut asset: Option<&AssetRef> = None;
            for o in outputs.iter().filter(|o| !o.fee) {
                if o.recipient != policy.relay {
                    return Err(malformed("land_lightning outputs must pay the relay"));
                }
                match asset {
                    Some(a) if a != &o.asset => {
                        return Err(malformed("land_lightning lands one asset at a time"));
                    }
                    _ => asset = Some(&o.asset),
                }
                landed = landed.checked_add(o.amount).ok_or_else(|| {
                    Rejection::new(ErrorCode::InvalidAmount, "landed amount overflows")
                })?;
            }
            let expected = policy
                .land_fee(landed)
                .ok_or_else(|| Rejection::new(ErrorCode::InvalidAmount, "fee overflows"))?;
            // An id and a ticker cannot be compared here (the policy may not
            // know the asset's id): the engine compares them once it has
            // resolved both. Names of the same kind must agree as written.
            let comparable = matches!(
                (&fee.asset, asset),
                (AssetRef::Id(_), Some(AssetRef::Id(_)))
                    | (AssetRef::Ticker(_), Some(AssetRef::Ticker(_)))
            );
            if asset.is_none() || (comparable && Some(&fee.asset) != asset) {
                return Err(fee_error("land fee must be paid in the landed asset"));
            }
            if fee.amount != expected {
                return Err(fee_error(format!(
                    "land fee must be {expected} (0.1 % of {landed}, rounded up), got {}",
                    fee.amount
                )));
            }
        }
        _ => {
            if !policy.may_be_fee_asset(&fee.asset) {
                return Err(fee_error("fee must be paid in gBTC"));
            }
            if fee.amount != policy.transfer_fee {
                return Err(fee_error(format!(
                    "fee must be {} gBTC, got {}",
                    policy.transfer_fee, fee.amount
                )));
            }
        }
    }
    Ok(())
}
