//! Intent screening and validation, one case per rule, over real signed events.

use ark_relay_core::{ErrorCode, PubKey, UnixTime};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{
    AssetRef, IntentContent, IntentOutput, Leg, Legs, OutputRole, WireAmount,
};
use ark_relay_protocol::intent::{screen, validate_intent, verify, IntentPolicy, Screen};
use ark_relay_protocol::{pubkey_from_nostr, pubkey_to_nostr};
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};

fn now() -> i64 {
    UnixTime::now().0
}

struct Ctx {
    relay: Keys,
    alice: Keys,
    bob: PubKey,
    policy: IntentPolicy,
}

fn ctx() -> Ctx {
    let relay = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    Ctx {
        policy: IntentPolicy::new(relay_pk),
        relay,
        alice: Keys::generate(),
        bob,
    }
}

impl Ctx {
    fn relay_pk(&self) -> PubKey {
        self.policy.relay
    }
    fn transfer(&self) -> IntentContent {
        IntentContent::transfer(
            "a-1",
            &self.bob,
            AssetRef::gbtc(),
            1_000,
            &self.relay_pk(),
            10,
            now() + 600,
        )
    }
    fn check(&self, c: &IntentContent) -> Result<(), ErrorCode> {
        let ev = builders::intent(&self.alice, &self.relay_pk(), c).expect("build");
        validate_intent(&ev, &self.policy, UnixTime(now()))
            .map(|_| ())
            .map_err(|r| r.code)
    }
    fn check_raw(&self, content: &str, tags: Vec<Tag>) -> Result<(), ErrorCode> {
        let mut t = vec![Tag::public_key(self.relay.public_key())];
        t.extend(tags);
        let ev = EventBuilder::new(Kind::from(31510u16), content)
            .tags(t)
            .sign_with_keys(&self.alice)
            .expect("sign");
        validate_intent(&ev, &self.policy, UnixTime(now()))
            .map(|_| ())
            .map_err(|r| r.code)
    }
}

#[test]
fn a_valid_transfer_passes_with_its_fields() {
    let c = ctx();
    let ev = builders::intent(&c.alice, &c.relay_pk(), &c.transfer()).expect("build");
    assert_eq!(screen(&ev, &c.relay_pk(), UnixTime(now())), Screen::Process);
    verify(&ev).expect("verifies");
    let v = validate_intent(&ev, &c.policy, UnixTime(now())).expect("valid");
    assert_eq!(v.action_id.as_str(), "a-1");
    assert_eq!(
        v.author,
        pubkey_from_nostr(&c.alice.public_key()).expect("key")
    );
    assert_eq!(v.fee().map(|f| f.amount), Some(10));
    assert_eq!(
        v.payments()
            .map(|o| (o.recipient, o.amount))
            .collect::<Vec<_>>(),
        vec![(c.bob, 1_000)]
    );
    assert_eq!(v.expires_at, UnixTime(now() + 600));
    assert_eq!(v.record(UnixTime(now())).intent_type, "p2p_transfer");
}

#[test]
fn screening_ignores_what_is_not_ours() {
    let c = ctx();
    let other = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let ev = builders::intent(&c.alice, &other, &c.transfer()).expect("build");
    assert!(matches!(
        screen(&ev, &c.relay_pk(), UnixTime(now())),
        Screen::Ignore(_)
    ));
    let future = EventBuilder::new(Kind::from(31510u16), "{}")
        .tags([Tag::public_key(c.relay.public_key())])
        .custom_created_at(Timestamp::from((now() + 601) as u64))
        .sign_with_keys(&c.alice)
        .expect("sign");
    assert!(matches!(
        screen(&future, &c.relay_pk(), UnixTime(now())),
        Screen::Ignore(_)
    ));
    let note = EventBuilder::text_note("hi")
        .tags([Tag::public_key(c.relay.public_key())])
        .sign_with_keys(&c.alice)
        .expect("sign");
    assert!(matches!(
        screen(&note, &c.relay_pk(), UnixTime(now())),
        Screen::Ignore(_)
    ));
}

#[test]
fn tampered_events_fail_verification_with_1001() {
    let c = ctx();
    let ev = builders::intent(&c.alice, &c.relay_pk(), &c.transfer()).expect("build");
    let mut json: serde_json::Value = serde_json::from_str(&ev.as_json()).expect("json");
    json["content"] = serde_json::Value::String(ev.content.replace("1000", "9000"));
    let tampered = nostr::Event::from_json(json.to_string()).expect("parse");
    assert_eq!(
        verify(&tampered).map_err(|r| r.code),
        Err(ErrorCode::InvalidSignature)
    );
    let mut json: serde_json::Value = serde_json::from_str(&ev.as_json()).expect("json");
    let sig = json["sig"].as_str().expect("sig").to_owned();
    json["sig"] = serde_json::Value::String(format!(
        "{}{}",
        &sig[..127],
        if sig.ends_with('0') { "1" } else { "0" }
    ));
    let bad_sig = nostr::Event::from_json(json.to_string()).expect("parse");
    assert_eq!(
        verify(&bad_sig).map_err(|r| r.code),
        Err(ErrorCode::InvalidSignature)
    );
}

#[test]
fn content_rules() {
    let c = ctx();
    let relay = c.relay_pk();
    let d = |s: &str| Tag::identifier(s);
    // Not JSON, wrong shapes, unknown type, version, float, d-tag mismatch.
    assert_eq!(c.check_raw("not json", vec![]), Err(ErrorCode::Malformed));
    assert_eq!(c.check_raw(r#"{"v":1}"#, vec![]), Err(ErrorCode::Malformed));
    assert_eq!(
        c.check_raw(r#"{"type":"teleport","v":1}"#, vec![]),
        Err(ErrorCode::UnsupportedAction)
    );
    let mut t = c.transfer();
    t.v = 2;
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    let float = serde_json::to_string(&c.transfer())
        .expect("json")
        .replace("\"amount\":1000", "\"amount\":1000.5");
    assert_eq!(c.check_raw(&float, vec![]), Err(ErrorCode::Malformed));
    let neg = serde_json::to_string(&c.transfer())
        .expect("json")
        .replace("\"amount\":1000", "\"amount\":-1000");
    assert_eq!(c.check_raw(&neg, vec![]), Err(ErrorCode::InvalidAmount));
    let json = serde_json::to_string(&c.transfer()).expect("json");
    assert_eq!(
        c.check_raw(&json, vec![d("other")]),
        Err(ErrorCode::Malformed)
    );
    assert_eq!(c.check_raw(&json, vec![d("a-1")]), Ok(()));
    assert_eq!(
        c.check_raw(&json, vec![]),
        Ok(()),
        "d-less intents are accepted"
    );
    let extra = json.replacen('{', r#"{"surprise":1,"#, 1);
    assert_eq!(c.check_raw(&extra, vec![]), Err(ErrorCode::Malformed));
    let big = json.replacen('{', &format!(r#"{{"memo":"{}","#, "x".repeat(70_000)), 1);
    assert_eq!(c.check_raw(&big, vec![]), Err(ErrorCode::Malformed));
    // Bad recipient, bad action id, no payments.
    let mut t = c.transfer();
    t.outputs[0].recipient = "zz".into();
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    let mut t = c.transfer();
    t.action_id = "has space".into();
    assert_eq!(
        c.check_raw(&serde_json::to_string(&t).expect("json"), vec![]),
        Err(ErrorCode::Malformed)
    );
    let mut t = c.transfer();
    t.outputs.remove(0);
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    let _ = relay;
}

#[test]
fn expiry_rules() {
    let c = ctx();
    let mut t = c.transfer();
    t.expires_at = now();
    assert_eq!(c.check(&t), Err(ErrorCode::Expired));
    t.expires_at = now() + 86_401;
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    let json = serde_json::to_string(&c.transfer()).expect("json");
    let expired_tag = Tag::expiration(Timestamp::from((now() - 1) as u64));
    assert_eq!(
        c.check_raw(&json, vec![expired_tag]),
        Err(ErrorCode::Expired)
    );
}

#[test]
fn fee_rules() {
    let c = ctx();
    let fee_out = |amount: u64, asset: AssetRef, to: &PubKey| IntentOutput {
        recipient: to.to_string(),
        asset,
        amount: WireAmount::new(amount),
        role: Some(OutputRole::Fee),
    };
    let mut t = c.transfer();
    t.outputs.pop();
    assert_eq!(c.check(&t), Err(ErrorCode::FeeOutput), "missing");
    let mut t = c.transfer();
    t.outputs[1] = fee_out(9, AssetRef::gbtc(), &c.relay_pk());
    assert_eq!(c.check(&t), Err(ErrorCode::FeeOutput), "too small");
    let mut t = c.transfer();
    t.outputs[1] = fee_out(10, AssetRef::Ticker("gUSD".into()), &c.relay_pk());
    assert_eq!(c.check(&t), Err(ErrorCode::FeeOutput), "wrong asset");
    let mut t = c.transfer();
    t.outputs[1] = fee_out(10, AssetRef::gbtc(), &c.bob);
    assert_eq!(c.check(&t), Err(ErrorCode::FeeOutput), "wrong recipient");
    let mut t = c.transfer();
    t.outputs.push(fee_out(10, AssetRef::gbtc(), &c.relay_pk()));
    assert_eq!(c.check(&t), Err(ErrorCode::FeeOutput), "two fees");
    // The fee asset may be named by id once gBTC is minted.
    let mut c2 = ctx();
    let id = ark_relay_core::AssetId::from_bytes([7; 32]);
    c2.policy.fee_asset = Some(id);
    let mut t = c2.transfer();
    t.outputs[1] = fee_out(10, AssetRef::Id(id), &c2.relay_pk());
    assert_eq!(c2.check(&t), Ok(()));
}

#[test]
fn land_fee_is_a_tenth_of_a_percent_rounded_up() {
    let c = ctx();
    assert_eq!(c.policy.land_fee(5_000_000), Some(5_000));
    assert_eq!(c.policy.land_fee(1), Some(1));
    assert_eq!(c.policy.land_fee(1_001), Some(2));
    let land = |amount: u64, fee: u64, memo: Option<&str>| {
        let mut t = c.transfer();
        t.intent_type = "land_lightning".into();
        t.outputs[0].recipient = c.relay_pk().to_string();
        t.outputs[0].amount = WireAmount::new(amount);
        t.outputs[1].amount = WireAmount::new(fee);
        t.memo = memo.map(str::to_owned);
        t
    };
    assert_eq!(c.check(&land(5_000_000, 5_000, Some("lnbcrt1..."))), Ok(()));
    assert_eq!(
        c.check(&land(5_000_000, 4_999, Some("lnbcrt1..."))),
        Err(ErrorCode::FeeOutput)
    );
    assert_eq!(
        c.check(&land(5_000_000, 10, Some("lnbcrt1..."))),
        Err(ErrorCode::FeeOutput)
    );
    assert_eq!(
        c.check(&land(5_000_000, 5_000, None)),
        Err(ErrorCode::InvalidInvoice)
    );
    let mut to_bob = land(5_000_000, 5_000, Some("lnbcrt1..."));
    to_bob.outputs[0].recipient = c.bob.to_string();
    assert_eq!(c.check(&to_bob), Err(ErrorCode::Malformed));
    // The fee may name the landed asset by id while the landed output uses
    // its ticker (the engine compares them once resolved); two different
    // tickers, or two different ids, are refused here.
    let gbtc_id = ark_relay_core::AssetId::from_bytes([7; 32]);
    let mut by_id = land(5_000_000, 5_000, Some("lnbcrt1..."));
    by_id.outputs[1].asset = AssetRef::Id(gbtc_id);
    assert_eq!(c.check(&by_id), Ok(()));
    let mut other_ticker = land(5_000_000, 5_000, Some("lnbcrt1..."));
    other_ticker.outputs[1].asset = AssetRef::Ticker("gUSD".into());
    assert_eq!(c.check(&other_ticker), Err(ErrorCode::FeeOutput));
    let mut two_ids = land(5_000_000, 5_000, Some("lnbcrt1..."));
    two_ids.outputs[0].asset = AssetRef::Id(ark_relay_core::AssetId::from_bytes([8; 32]));
    two_ids.outputs[1].asset = AssetRef::Id(gbtc_id);
    assert_eq!(c.check(&two_ids), Err(ErrorCode::FeeOutput));
}

#[test]
fn swap_and_liquidity_need_their_legs() {
    let c = ctx();
    let leg = Leg {
        recipient: Some(c.bob.to_string()),
        asset: AssetRef::Ticker("gUSD".into()),
        amount: WireAmount::new(65_000),
    };
    let mut t = c.transfer();
    t.intent_type = "atomic_swap".into();
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    t.my_leg = Some(Legs::One(Leg {
        recipient: Some(c.bob.to_string()),
        asset: AssetRef::gbtc(),
        amount: WireAmount::new(1_000),
    }));
    t.counterparty_leg = Some(Legs::One(leg.clone()));
    assert_eq!(c.check(&t), Ok(()));
    let mut t = c.transfer();
    t.intent_type = "remove_liquidity".into();
    assert_eq!(c.check(&t), Err(ErrorCode::Malformed));
    t.counterparty_leg = Some(Legs::Many(vec![leg.clone(), leg]));
    assert_eq!(c.check(&t), Ok(()));
    let _ = pubkey_to_nostr(&c.bob);
}

#[test]
fn land_invoices_are_checked_when_the_network_is_known() {
    use bitcoin::hashes::{sha256, Hash};
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let mut c = ctx();
    c.policy.network = Some(bitcoin::Network::Regtest);
    let bolt11 = |msat: u64, currency: Currency| {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = bitcoin::secp256k1::SecretKey::from_slice(&[0x42; 32]).expect("key");
        InvoiceBuilder::new(currency)
            .description("out".into())
            .payment_hash(sha256::Hash::hash(b"x"))
            .payment_secret(PaymentSecret([1; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(now() as u64))
            .min_final_cltv_expiry_delta(18)
            .expiry_time(std::time::Duration::from_secs(3_600))
            .amount_milli_satoshis(msat)
            .build_signed(|h| secp.sign_ecdsa_recoverable(h, &key))
            .expect("invoice")
            .to_string()
    };
    let land = |invoice: String| {
        let mut t = c.transfer();
        t.intent_type = "land_lightning".into();
        t.outputs[0].recipient = c.relay_pk().to_string();
        t.outputs[0].amount = WireAmount::new(5_000);
        t.outputs[1].amount = WireAmount::new(5);
        t.memo = Some(invoice);
        t
    };
    assert_eq!(c.check(&land(bolt11(5_000_000, Currency::Regtest))), Ok(()));
    assert_eq!(
        c.check(&land(bolt11(4_000_000, Currency::Regtest))),
        Err(ErrorCode::InvoiceAmountMismatch)
    );
    assert_eq!(
        c.check(&land(bolt11(5_000_000, Currency::Bitcoin))),
        Err(ErrorCode::InvalidInvoice)
    );
    assert_eq!(
        c.check(&land("lnbcrt1nonsense".into())),
        Err(ErrorCode::InvalidInvoice)
    );
}
