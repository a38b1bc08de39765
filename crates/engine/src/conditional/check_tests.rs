#![allow(clippy::unwrap_used, clippy::expect_used)]

use ark_relay_ark::conditional::PositionScript;
use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::{AssetAmount, Colour, Sats, SessionId, UnixTime, Vtxo, VtxoStatus};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType, WireAmount};
use ark_relay_protocol::intent::{validate_intent, IntentPolicy};
use ark_relay_protocol::perps::{
    price_event_builder, LiquidationOracle, MarginDeposit, OraclePriceContent, PerpTerms,
    PositionDetails, Side, Witness,
};
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr};
use nostr::Keys;

use super::*;

const NOW: i64 = 1_800_000_000;
const MAX_AGE: i64 = 120;

fn keys(n: u8) -> Keys {
    Keys::parse(&format!("{:064x}", u64::from(n) + 100)).expect("key")
}

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("pk")
}

struct Parts {
    alice: Keys,
    oracle: Keys,
    relay: Keys,
    fund: Keys,
    server: ServerInfo,
    terms: PerpTerms,
    price: OraclePriceContent,
    /// Non-fee payout of the liquidation: (recipient, asset, amount).
    payout: (PubKey, AssetRef, u64),
    liquidator: Keys,
    owner: Option<PubKey>,
    token_amount: u64,
    other_open: bool,
    status: VtxoStatus,
    locked_by_other: bool,
    price_signer: Option<Keys>,
}

fn token() -> AssetId {
    AssetId::from_bytes([0xab; 32])
}

fn parts() -> Parts {
    let (alice, dex, oracle, relay, fund, server_key) =
        (keys(1), keys(2), keys(3), keys(4), keys(5), keys(6));
    let server = ServerInfo::new(
        *pk(&server_key).x_only(),
        *pk(&server_key).x_only(),
        RelativeLocktime::blocks(144),
        RelativeLocktime::blocks(10),
        Sats::new(330),
        bitcoin::Network::Regtest,
    );
    let terms = PerpTerms {
        margin_deposit: MarginDeposit {
            asset: AssetRef::gbtc(),
            amount: WireAmount::new(1_000_000),
        },
        position_details: PositionDetails {
            side: Side::Long,
            leverage: 10,
            entry_price: WireAmount::new(6_543_210),
        },
        liquidation_oracle: LiquidationOracle {
            pubkey: pk(&oracle),
            pair: "BTC/USD".into(),
            decimals: 2,
        },
        maintenance_margin_bps: 50,
        dex: pk(&dex),
        insurance_fund: pk(&fund),
        position_token: AssetRef::Id(token()),
    };
    let price = OraclePriceContent {
        v: 1,
        pair: "BTC/USD".into(),
        price: WireAmount::new(5_800_000),
        decimals: 2,
        timestamp: NOW - 10,
        sources: vec!["a".into(), "b".into()],
    };
    Parts {
        payout: (pk(&fund), AssetRef::gbtc(), 1_000_000),
        liquidator: dex,
        alice,
        oracle,
        relay,
        fund,
        server,
        terms,
        price,
        owner: None,
        token_amount: 1,
        other_open: false,
        status: VtxoStatus::Assigned,
        locked_by_other: false,
        price_signer: None,
    }
}

fn open_perp(p: &Parts, action: &str) -> nostr::Event {
    let relay = pk(&p.relay);
    let mut c = IntentContent::batch_leg(
        IntentType::OpenPerp,
        action,
        &[(p.terms.dex, p.terms.margin_deposit.asset.clone(), 1_000_000)],
        &[(p.terms.dex, p.terms.position_token.clone(), 1)],
        &relay,
        10,
        NOW + 600,
    );
    c.perp = Some(p.terms.clone());
    builders::intent(&p.alice, &relay, &c).expect("open_perp")
}

/// Runs the checklist over the case `p` describes.
fn run(p: &Parts) -> Result<Approved, ErrorCode> {
    let relay = pk(&p.relay);
    let open = open_perp(p, "open-1");
    let signer = p.price_signer.clone().unwrap_or_else(|| p.oracle.clone());
    let price = price_event_builder(&p.price)
        .expect("price")
        .sign_with_keys(&signer)
        .expect("sign");
    let witness = Witness::new(&open, &price);
    let w = witness.verify().map_err(|r| r.code)?;
    // The position VTXO: created by this open_perp (or another one).
    let committed = if p.other_open {
        event_id_from_nostr(&open_perp(p, "open-2").id)
    } else {
        w.open_perp_id
    };
    let script = PositionScript {
        user: *pk(&p.alice).x_only(),
        dex: *p.terms.dex.x_only(),
        relay: *relay.x_only(),
        server: *p.server.signer(),
        exit_delay: p.server.unilateral_exit_delay(),
        open_perp: committed,
    }
    .vtxo_script()
    .expect("script");
    let session = SessionId::from_bytes([7; 32]);
    let position = Vtxo {
        id: format!("{}:1", "cd".repeat(32)).parse().expect("id"),
        owner: p.owner.unwrap_or_else(|| pk(&p.alice)),
        sats: Sats::new(330),
        colour: Some(Colour {
            asset: token(),
            amount: AssetAmount::new(p.token_amount),
        }),
        status: p.status,
        tapscripts: script.to_tapscripts(),
        locked_by: p.locked_by_other.then(|| SessionId::from_bytes([8; 32])),
        spent_by: None,
        created_at: UnixTime(NOW - 1_000),
        spent_at: None,
        expires_at: None,
    };
    let mut liq = IntentContent::transfer(
        "liq-1",
        &p.payout.0,
        p.payout.1.clone(),
        p.payout.2,
        &relay,
        10,
        NOW + 600,
    );
    liq.intent_type = IntentType::Liquidate.as_str().into();
    liq.inputs = Some(vec![position.id]);
    liq.witness = Some(witness);
    let ev = builders::intent(&p.liquidator, &relay, &liq).expect("liquidate");
    let intent =
        validate_intent(&ev, &IntentPolicy::new(relay), UnixTime(NOW)).map_err(|r| r.code)?;
    check(&Case {
        intent: &intent,
        witness: &w,
        position: &position,
        session,
        server: &p.server,
        relay: &relay,
        now: UnixTime(NOW),
        max_price_age_secs: MAX_AGE,
    })
    .map_err(|r| r.code)
}

#[test]
fn a_valid_witness_passes() {
    let p = parts();
    let ok = run(&p).expect("approved");
    assert_eq!(ok.insurance_fund, pk(&p.fund));
    assert_eq!(ok.token, token());
}

#[test]
fn each_failure_has_its_code() {
    type Tamper = fn(&mut Parts);
    let cases: &[(&str, Tamper, ErrorCode)] = &[
        (
            "stale price",
            |p| p.price.timestamp = NOW - MAX_AGE - 1,
            ErrorCode::StalePrice,
        ),
        (
            "price from the future",
            |p| p.price.timestamp = NOW + 3_600,
            ErrorCode::StalePrice,
        ),
        (
            "price above a long's threshold",
            |p| p.price.price = WireAmount::new(6_000_000),
            ErrorCode::PriceNotBeyondThreshold,
        ),
        (
            "price signed by another key",
            |p| p.price_signer = Some(keys(9)),
            ErrorCode::WrongOracle,
        ),
        (
            "witness from another position",
            |p| p.other_open = true,
            ErrorCode::WitnessMismatch,
        ),
        (
            "position of someone else",
            |p| p.owner = Some(pk(&keys(10))),
            ErrorCode::WitnessMismatch,
        ),
        (
            "not the position token",
            |p| p.token_amount = 2,
            ErrorCode::WitnessMismatch,
        ),
        (
            "already liquidated",
            |p| p.status = VtxoStatus::Spent,
            ErrorCode::AlreadyLiquidated,
        ),
        (
            "being liquidated",
            |p| p.locked_by_other = true,
            ErrorCode::AlreadyLiquidated,
        ),
        (
            "margin paid elsewhere",
            |p| p.payout.0 = pk(&keys(11)),
            ErrorCode::LiquidationPayoutMismatch,
        ),
        (
            "more than the margin",
            |p| p.payout.2 = 1_000_001,
            ErrorCode::LiquidationPayoutMismatch,
        ),
        (
            "another pair",
            |p| p.price.pair = "ETH/USD".into(),
            ErrorCode::PricePairMismatch,
        ),
        (
            "other decimals",
            |p| p.price.decimals = 3,
            ErrorCode::PricePairMismatch,
        ),
        (
            "not the DEX",
            |p| p.liquidator = keys(12),
            ErrorCode::NotTheDex,
        ),
    ];
    for (what, tamper, code) in cases {
        let mut p = parts();
        tamper(&mut p);
        assert_eq!(run(&p).map(|_| ()), Err(*code), "{what}");
    }
}

#[test]
fn a_forged_open_perp_is_refused() {
    let p = parts();
    let open = open_perp(&p, "open-1");
    let price = price_event_builder(&p.price)
        .expect("price")
        .sign_with_keys(&p.oracle)
        .expect("sign");
    let mut w = Witness::new(&open, &price);
    // The DEX rewrites her leverage to 50x (liquidation price near entry).
    let forged = w.open_perp["content"]
        .as_str()
        .expect("content")
        .replace("\"leverage\":10", "\"leverage\":50");
    w.open_perp["content"] = forged.into();
    assert_eq!(
        w.verify().map(|_| ()).map_err(|r| r.code),
        Err(ErrorCode::InvalidWitnessSignature)
    );
}

/// Property: over a grid of prices and ages, the checklist approves exactly
/// when the price is at or beyond the liquidation price and fresh, for both
/// sides; any single-field tamper of an approved case is refused.
#[test]
fn approves_exactly_fresh_prices_beyond_the_threshold() {
    for side in [Side::Long, Side::Short] {
        let mut base = parts();
        base.terms.position_details.side = side;
        let liq = base.terms.validate().expect("terms").liquidation_price();
        for delta in [-50_000i64, -1, 0, 1, 50_000] {
            for age in [0, 1, MAX_AGE - 1, MAX_AGE, MAX_AGE + 1, 10_000] {
                let mut p = parts();
                p.terms.position_details.side = side;
                let price =
                    u64::try_from(i64::try_from(liq).expect("fits") + delta).expect("positive");
                p.price.price = WireAmount::new(price);
                p.price.timestamp = NOW - age;
                let beyond = match side {
                    Side::Long => price <= liq,
                    Side::Short => price >= liq,
                };
                let fresh = age <= MAX_AGE;
                let got = run(&p);
                assert_eq!(
                    got.is_ok(),
                    beyond && fresh,
                    "{side:?} price {price} (liq {liq}) age {age}: {got:?}"
                );
                if !fresh {
                    assert_eq!(got.map(|_| ()), Err(ErrorCode::StalePrice));
                } else if !beyond {
                    assert_eq!(got.map(|_| ()), Err(ErrorCode::PriceNotBeyondThreshold));
                }
            }
        }
    }
}
