//! The relay's delegation against the reference wallet's check: an honest one
//! (with an asset) is signed by the wallet and accepted as a valid round job;
//! a tampered answer is not accepted; a tampered challenge is refused by the
//! wallet.

use super::*;
use ark_relay_ark::RelativeLocktime;
use ark_relay_core::AssetId;
use ark_relay_wallet::verify::renewal::{answer_renewal, RenewalContext};
use ark_relay_wallet::verify::OwnedVtxo;
use bitcoin::secp256k1::{Keypair, SecretKey};
use bitcoin::{Network, Txid};

const NOW: i64 = 1_700_000_000;

fn kp(b: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[b; 32]).expect("key"),
    )
}

fn server() -> ServerInfo {
    ServerInfo::new(
        kp(0x51).x_only_public_key().0,
        kp(0x52).x_only_public_key().0,
        RelativeLocktime::seconds(86_528).expect("delay"),
        RelativeLocktime::seconds(512).expect("delay"),
        Sats::new(330),
        Network::Regtest,
    )
}

struct Case {
    owner: Keypair,
    server: ServerInfo,
    spec: RenewalSpec,
    policy: RenewalPolicy,
}

fn case() -> Case {
    let owner = kp(0x11);
    let asset = AssetId::from_bytes([0xA5; 32]);
    Case {
        spec: RenewalSpec {
            vtxo: VtxoId::new(Txid::from_byte_array([7; 32]), 0),
            owner: PubKey::from_x_only(owner.x_only_public_key().0),
            sats: 1_000,
            assets: vec![(ark_relay_ark::asset::arkade_id(&asset), 400)],
            created_at: NOW,
            expires_at: NOW + 10_000,
            recovery: false,
        },
        owner,
        server: server(),
        policy: RenewalPolicy {
            fee_sats: 10,
            ..RenewalPolicy::default()
        },
    }
}

fn pending(c: &Case) -> PendingDelegation {
    let forfeit = Address::p2tr(
        &Secp256k1::new(),
        *c.server.forfeit_key(),
        None,
        Network::Regtest,
    );
    build(
        &c.server,
        &forfeit,
        kp(0x33).public_key(),
        &c.policy,
        &c.spec,
        NOW,
    )
    .expect("builds")
}

fn owned(c: &Case) -> Vec<OwnedVtxo> {
    vec![OwnedVtxo {
        vtxo: c.spec.vtxo,
        sats: c.spec.sats,
        asset_id: Some(AssetId::from_bytes([0xA5; 32])),
        ticker: None,
        amount: 400,
        expires_at: Some(c.spec.expires_at),
        tapscripts: Default::default(),
        locked: false,
    }]
}

fn answer(c: &Case, ch: &RenewalChallenge) -> RenewalResponse {
    let vtxos = owned(c);
    let ctx = RenewalContext {
        owner: &c.spec.owner,
        server: &c.server,
        vtxos: &vtxos,
        max_fee: c.policy.fee_sats,
        now: NOW,
    };
    answer_renewal(&ctx, &c.owner, ch)
}

#[test]
fn valid_at_is_ninety_percent_of_the_lifetime_and_now_for_a_recovery() {
    let c = case();
    assert_eq!(c.policy.valid_at(&c.spec, NOW), NOW + 9_000);
    let mut r = c.spec.clone();
    r.recovery = true;
    assert_eq!(c.policy.valid_at(&r, NOW + 5), NOW + 5);
}

#[test]
fn the_wallet_signs_the_relays_delegation_and_the_relay_accepts_it_as_a_round_job() {
    let c = case();
    let built = pending(&c);
    // The store keeps only the challenge: the delegation comes back from it.
    let p = PendingDelegation::from_challenge(built.challenge.clone()).expect("round trip");
    let resp = answer(&c, &p.challenge);
    assert_eq!(resp.reject, None, "the reference wallet signs");
    let job = accept(&p, &resp).expect("accepted");
    job.validate().expect("a well-formed round job");
    assert_eq!(job.kind, JobKind::DelegatedRenewal);
    assert_eq!(job.not_before, UnixTime(NOW + 9_000));
    assert_eq!(job.outputs[0].owner, c.spec.owner);
    assert_eq!(job.outputs[0].sats, Sats::new(990));
    assert_eq!(job.outputs[0].assets[0].amount, 400);
    let d = job.delegation.expect("delegation");
    assert_eq!(d.forfeit_psbts.len(), 1);
    assert!(d.forfeit_psbts[0].inputs[0]
        .tap_script_sigs
        .values()
        .all(|s| s.sighash_type == TapSighashType::AllPlusAnyoneCanPay));
}

#[test]
fn a_forged_or_partial_answer_is_not_accepted() {
    let c = case();
    let p = pending(&c);
    let mut resp = answer(&c, &p.challenge);
    let last = resp.signatures.pop().expect("a signature");
    assert!(accept(&p, &resp).is_err(), "a signature missing");
    let mut forged = last.clone();
    forged
        .sig
        .replace_range(0..2, if &last.sig[0..2] == "00" { "01" } else { "00" });
    resp.signatures.push(forged);
    assert!(accept(&p, &resp).is_err(), "an invalid signature");
}

#[test]
fn a_tampered_challenge_is_refused_by_the_wallet() {
    let c = case();
    let mut p = pending(&c);
    // The relay claims a smaller fee than the proof takes.
    p.challenge.fee = 0;
    let resp = answer(&c, &p.challenge);
    assert!(resp.signatures.is_empty());
    assert!(resp.reject.is_some());
    // Or a renewal at a fee above the published one.
    let mut c2 = case();
    c2.policy.fee_sats = 20;
    let p2 = pending(&c2);
    c2.policy.fee_sats = 10;
    let resp = answer(&c2, &p2.challenge);
    assert!(resp
        .reject
        .is_some_and(|r| r.contains("above the published")));
}
