use nostr::{EventBuilder, Keys};

use super::*;
use crate::content::{IntentContent, IntentType, Leg, Legs, VERSION};

fn keys(n: u8) -> Keys {
    Keys::parse(&format!("{:064x}", u64::from(n) + 1)).expect("key")
}

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("pubkey")
}

fn price_content(price: u64) -> OraclePriceContent {
    OraclePriceContent {
        v: 1,
        pair: "BTC/USD".into(),
        price: WireAmount::new(price),
        decimals: 2,
        timestamp: 1_700_000_000,
        sources: vec!["a".into(), "b".into(), "c".into()],
    }
}

fn terms(oracle: &Keys, dex: &Keys) -> PerpTerms {
    PerpTerms {
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
            pubkey: pk(oracle),
            pair: "BTC/USD".into(),
            decimals: 2,
        },
        maintenance_margin_bps: 50,
        dex: pk(dex),
        insurance_fund: pk(dex),
        position_token: "ab".repeat(32).parse().expect("asset"),
    }
}

fn open_perp_content(t: &PerpTerms, relay: &PubKey) -> IntentContent {
    let mut c = IntentContent::batch_leg(
        IntentType::OpenPerp,
        "open-1",
        &[(t.dex, t.margin_deposit.asset.clone(), 1_000_000)],
        &[(t.dex, t.position_token.clone(), 1)],
        relay,
        10,
        1_700_000_600,
    );
    c.perp = Some(t.clone());
    c
}

#[test]
fn pairs() {
    assert!(valid_pair("BTC/USD"));
    assert!(valid_pair("ETH/USD"));
    assert!(!valid_pair("btc/usd"));
    assert!(!valid_pair("BTCUSD"));
    assert!(!valid_pair("BTC/"));
    assert!(!valid_pair("BTC/USD/EUR"));
}

#[test]
fn liquidation_price_long_and_short() {
    // 10x long at 65 432.10 with 0.5 % maintenance: 1 − 0.1 + 0.005 = 0.905.
    assert_eq!(liquidation_price(Side::Long, 6_543_210, 10, 50), 5_921_605);
    // 6 543 210 × 0.905 = 5 921 605.05 → rounded down for the long.
    // Short: 1 + 0.1 − 0.005 = 1.095 → 7 164 814.95 → rounded up.
    assert_eq!(liquidation_price(Side::Short, 6_543_210, 10, 50), 7_164_815);
    // 1x long: liquidated only when the price falls to the maintenance share.
    assert_eq!(liquidation_price(Side::Long, 10_000, 1, 100), 100);
    // Exact results are not moved.
    assert_eq!(liquidation_price(Side::Long, 10_000, 10, 0), 9_000);
    assert_eq!(liquidation_price(Side::Short, 10_000, 10, 0), 11_000);
    // No overflow at the top of the range.
    assert!(liquidation_price(Side::Short, u64::MAX, 1, 1) == u64::MAX);
}

#[test]
fn liquidatable_is_on_the_safe_side() {
    let (o, d) = (keys(1), keys(2));
    let t = terms(&o, &d).validate().expect("terms");
    let liq = t.liquidation_price();
    assert!(t.is_liquidatable(liq));
    assert!(t.is_liquidatable(liq - 1));
    assert!(!t.is_liquidatable(liq + 1));
    let mut short = terms(&o, &d);
    short.position_details.side = Side::Short;
    let s = short.validate().expect("terms");
    let liq = s.liquidation_price();
    assert!(s.is_liquidatable(liq));
    assert!(!s.is_liquidatable(liq - 1));
}

#[test]
fn terms_rules() {
    let (o, d) = (keys(1), keys(2));
    let code = |t: PerpTerms| t.validate().map(|_| ()).map_err(|r| r.code);
    let mut t = terms(&o, &d);
    t.position_details.leverage = 0;
    assert_eq!(code(t), Err(ErrorCode::InvalidPerpTerms));
    let mut t = terms(&o, &d);
    t.position_details.leverage = 101;
    assert_eq!(code(t), Err(ErrorCode::InvalidPerpTerms));
    let mut t = terms(&o, &d);
    t.maintenance_margin_bps = 1_000; // = the initial margin of 10x
    assert_eq!(code(t), Err(ErrorCode::InvalidPerpTerms));
    let mut t = terms(&o, &d);
    t.liquidation_oracle.pubkey = pk(&d);
    assert_eq!(code(t), Err(ErrorCode::InvalidPerpTerms));
    let t: Result<PerpTerms, _> = serde_json::from_value(serde_json::json!({
        "margin_deposit": {"asset": "gBTC", "amount": 0.01},
        "position_details": {"side": "long", "leverage": 10, "entry_price": 6543210},
        "liquidation_oracle": {"pubkey": pk(&o).to_string(), "pair": "BTC/USD", "decimals": 2},
        "maintenance_margin_bps": 50, "dex": pk(&d).to_string(),
        "insurance_fund": pk(&d).to_string(), "position_token": "ab".repeat(32)
    }));
    assert_eq!(
        t.expect("parses").validate().map_err(|r| r.code),
        Err(ErrorCode::Malformed),
        "a float margin is refused"
    );
}

#[test]
fn price_events_parse_and_verify() {
    let o = keys(1);
    let ev = price_event_builder(&price_content(5_800_000))
        .expect("builder")
        .sign_with_keys(&o)
        .expect("sign");
    let p = parse_price_event(&ev).expect("valid");
    assert_eq!((p.price, p.decimals, p.oracle), (5_800_000, 2, pk(&o)));
    assert_eq!(p.pair, "BTC/USD");

    // A float price is malformed.
    let json =
        r#"{"v":1,"pair":"BTC/USD","price":58000.5,"decimals":2,"timestamp":1,"sources":["a"]}"#;
    let ev = EventBuilder::new(crate::kinds::kind(ORACLE_PRICE), json)
        .tags([nostr::Tag::identifier("BTC/USD")])
        .sign_with_keys(&o)
        .expect("sign");
    assert_eq!(
        parse_price_event(&ev).map_err(|r| r.code),
        Err(ErrorCode::MalformedWitness)
    );
    // The d tag must be the pair.
    let json = serde_json::to_string(&price_content(1)).expect("json");
    let ev = EventBuilder::new(crate::kinds::kind(ORACLE_PRICE), json)
        .tags([nostr::Tag::identifier("ETH/USD")])
        .sign_with_keys(&o)
        .expect("sign");
    assert_eq!(
        parse_price_event(&ev).map_err(|r| r.code),
        Err(ErrorCode::MalformedWitness)
    );
}

#[test]
fn witness_verifies_and_a_forgery_does_not() {
    let (o, d, alice, relay) = (keys(1), keys(2), keys(3), keys(4));
    let t = terms(&o, &d);
    let open = crate::builders::intent(&alice, &pk(&relay), &open_perp_content(&t, &pk(&relay)))
        .expect("intent");
    let price = price_event_builder(&price_content(5_800_000))
        .expect("builder")
        .sign_with_keys(&o)
        .expect("sign");
    let w = Witness::new(&open, &price).verify().expect("valid witness");
    assert_eq!(w.user, pk(&alice));
    assert_eq!(w.open_perp_id, event_id_from_nostr(&open.id));
    assert!(w.terms.is_liquidatable(w.price.price));

    // Tampering with the signed terms breaks the id: 8005.
    let mut forged = Witness::new(&open, &price);
    let content = forged.open_perp["content"]
        .as_str()
        .expect("content")
        .replace("\"leverage\":10", "\"leverage\":50");
    forged.open_perp["content"] = content.into();
    assert_eq!(
        forged.verify().map_err(|r| r.code),
        Err(ErrorCode::InvalidWitnessSignature)
    );
    // Not an event at all: 8009.
    let mut bad = Witness::new(&open, &price);
    bad.price = serde_json::json!({"price": 1});
    assert_eq!(
        bad.verify().map_err(|r| r.code),
        Err(ErrorCode::MalformedWitness)
    );
    // The witness round-trips through an intent's content.
    let mut liq = IntentContent::transfer(
        "liq-1",
        &pk(&d),
        AssetRef::gbtc(),
        1_000_000,
        &pk(&relay),
        10,
        1_700_000_600,
    );
    liq.intent_type = IntentType::Liquidate.as_str().into();
    liq.witness = Some(Witness::new(&open, &price));
    let back: IntentContent =
        serde_json::from_str(&serde_json::to_string(&liq).expect("json")).expect("parse");
    assert_eq!(back.witness.expect("witness").verify(), Ok(w));
}

#[test]
fn open_perp_and_liquidate_shapes() {
    use crate::intent::{validate_intent, IntentPolicy};
    let (o, d, alice, relay) = (keys(1), keys(2), keys(3), keys(4));
    let policy = IntentPolicy::new(pk(&relay));
    let now = UnixTime(1_700_000_000);
    let t = terms(&o, &d);
    let check = |c: &IntentContent| {
        let ev = crate::builders::intent(&alice, &pk(&relay), c).expect("intent");
        validate_intent(&ev, &policy, now)
            .map(|_| ())
            .map_err(|r| r.code)
    };
    let good = open_perp_content(&t, &pk(&relay));
    assert_eq!(check(&good), Ok(()));
    assert_eq!(good.v, VERSION);

    let mut no_terms = good.clone();
    no_terms.perp = None;
    assert_eq!(check(&no_terms), Err(ErrorCode::InvalidPerpTerms));

    let mut wrong_margin = good.clone();
    if let Some(p) = wrong_margin.perp.as_mut() {
        p.margin_deposit.amount = WireAmount::new(999);
    }
    assert_eq!(check(&wrong_margin), Err(ErrorCode::InvalidPerpTerms));

    let mut two_tokens = good.clone();
    two_tokens.counterparty_leg = Some(Legs::One(Leg {
        recipient: Some(t.dex.to_string()),
        asset: t.position_token.clone(),
        amount: WireAmount::new(2),
    }));
    assert_eq!(check(&two_tokens), Err(ErrorCode::InvalidPerpTerms));

    let mut transfer_with_terms = IntentContent::transfer(
        "t-1",
        &pk(&d),
        AssetRef::gbtc(),
        5,
        &pk(&relay),
        10,
        now.0 + 60,
    );
    transfer_with_terms.perp = Some(t.clone());
    assert_eq!(check(&transfer_with_terms), Err(ErrorCode::Malformed));

    let mut liq = IntentContent::transfer(
        "l-1",
        &pk(&d),
        AssetRef::gbtc(),
        5,
        &pk(&relay),
        10,
        now.0 + 60,
    );
    liq.intent_type = IntentType::Liquidate.as_str().into();
    assert_eq!(check(&liq), Err(ErrorCode::MalformedWitness));
    liq.witness = Some(Witness {
        open_perp: serde_json::Value::Null,
        price: serde_json::Value::Null,
    });
    assert_eq!(check(&liq), Err(ErrorCode::Malformed), "needs one input");
    liq.inputs = Some(vec![format!("{}:0", "cd".repeat(32))
        .parse()
        .expect("vtxo")]);
    assert_eq!(check(&liq), Ok(()));
}

#[test]
fn content_constructors_pass_their_own_rules() {
    use crate::intent::{validate_intent, IntentPolicy};
    let (o, d, alice, relay) = (keys(1), keys(2), keys(3), keys(4));
    let policy = IntentPolicy::new(pk(&relay));
    let now = UnixTime(1_700_000_000);
    let t = terms(&o, &d);
    let c = super::open_perp_content("open-9", &t, &pk(&relay), 10, now.0 + 60).expect("content");
    let open = crate::builders::intent(&alice, &pk(&relay), &c).expect("intent");
    let v = validate_intent(&open, &policy, now).expect("valid open_perp");
    assert_eq!(v.intent_type, IntentType::OpenPerp);
    let price = price_event_builder(&price_content(5_800_000))
        .expect("builder")
        .sign_with_keys(&o)
        .expect("sign");
    let position = format!("{}:0", "cd".repeat(32)).parse().expect("vtxo");
    let l = liquidate_content(
        "liq-9",
        position,
        Witness::new(&open, &price),
        &pk(&relay),
        10,
        now.0 + 60,
    )
    .expect("content");
    let liq = crate::builders::intent(&d, &pk(&relay), &l).expect("intent");
    let v = validate_intent(&liq, &policy, now).expect("valid liquidate");
    assert_eq!(v.intent_type, IntentType::Liquidate);
    assert_eq!(v.inputs, Some(vec![position]));
    let pays: Vec<_> = v.outputs.iter().filter(|o| !o.fee).collect();
    assert_eq!(pays.len(), 1);
    assert_eq!(
        (pays[0].recipient, pays[0].amount),
        (t.insurance_fund, 1_000_000)
    );
}
