//! The wallet signs the honest challenge of its own intent and refuses every
//! tampered variant with a reason (PRD §11.5). Real PSBTs built with
//! `ark-relay-ark`; no network.

use ark_relay_ark::sign::{add_signature, sign_input, verify_signatures};
use ark_relay_core::{AssetId, EventId, SessionId, VtxoId};
use ark_relay_protocol::content::{AssetRef, SigningChallenge};
use ark_relay_wallet::testing::{pk, Scenario};
use ark_relay_wallet::verify::decode_psbt;
use ark_relay_wallet::{Answer, SignPolicy, Signer};
use bitcoin::secp256k1::schnorr;

fn signer(s: &Scenario) -> Signer {
    let mut signer = Signer::new(s.alice, s.relay_pk(), s.server.clone(), SignPolicy::Honest);
    signer.authorise(s.authorised(), vec![s.alice_vtxo.clone()]);
    signer
}

fn refused(answer: &Answer, needle: &str) {
    match answer {
        Answer::Refused(resp, why) => {
            assert!(resp.signatures.is_empty(), "a refusal carries no signature");
            let text = resp.reject.as_deref().unwrap_or_default();
            assert!(
                why.mentions(needle),
                "expected a reason mentioning {needle:?}, got: {text}"
            );
        }
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

fn signed(answer: &Answer) -> &ark_relay_protocol::content::SigningResponse {
    match answer {
        Answer::Signed(r) => {
            assert!(r.reject.is_none());
            assert!(!r.signatures.is_empty());
            r
        }
        other => panic!("expected signatures, got {other:?}"),
    }
}

/// Applies a response's signatures to the challenge's PSBTs and verifies them.
fn apply(ch: &SigningChallenge, s: &Scenario, resp: &ark_relay_protocol::content::SigningResponse) {
    let mut psbts: Vec<_> = ch
        .payload_to_sign
        .psbts
        .iter()
        .map(|p| decode_psbt(p).expect("psbt"))
        .collect();
    for sig in &resp.signatures {
        let bytes = hex::decode(&sig.sig).expect("hex");
        let sig_ = schnorr::Signature::from_slice(&bytes).expect("64 bytes");
        add_signature(
            &mut psbts[sig.psbt_index as usize],
            sig.input_index as usize,
            s.alice_pk().x_only(),
            sig_,
        )
        .expect("signature verifies");
    }
    for p in &psbts {
        verify_signatures(p).expect("all signatures verify");
    }
}

#[test]
fn signs_the_honest_ark_tx_and_checkpoint() {
    let s = Scenario::new();
    let mut w = signer(&s);
    let tx = s.honest_tx();
    let ch1 = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    let a1 = w.answer(&ch1, 0);
    let r1 = signed(&a1);
    assert_eq!(r1.signatures.len(), 1);
    assert_eq!(r1.step, 1);
    apply(&ch1, &s, r1);

    let ch2 = s.step2_for(&tx);
    let a2 = w.answer(&ch2, 0);
    let r2 = signed(&a2);
    assert_eq!(r2.step, 2);
    apply(&ch2, &s, r2);
}

#[test]
fn refuses_changed_amount() {
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[0].colour = Some((s.gbtc, 900));
    outs[2].colour = Some((s.gbtc, 4_090));
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(&signer(&s).answer(&ch, 0), "no output pays 1000 gBTC");
}

#[test]
fn refuses_changed_recipient() {
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[0].owner = pk(&s.stranger);
    outs[0].hint_owner = pk(&s.stranger);
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(&signer(&s).answer(&ch, 0), "unexpected 1000 gBTC");
}

#[test]
fn refuses_recipient_changed_in_psbt_only() {
    // The hint still names Bob, but the PSBT pays the stranger.
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[0].owner = pk(&s.stranger);
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(&signer(&s).answer(&ch, 0), "is not a VTXO of");
}

#[test]
fn refuses_changed_asset() {
    let s = Scenario::new();
    let other = AssetId::from_bytes([0x99; 32]);
    let mut ch = s.step1();
    ch.payload_to_sign.colour[0].asset = AssetRef::Id(other);
    refused(&signer(&s).answer(&ch, 0), "no output pays 1000 gBTC");
}

#[test]
fn refuses_extra_output_to_a_stranger() {
    let s = Scenario::new();
    // Uncoloured, paid from the relay's change.
    let mut outs = s.outputs.clone();
    outs[3].sats -= 400;
    outs.push(ark_relay_wallet::testing::PlannedOutput {
        owner: pk(&s.stranger),
        sats: 400,
        colour: None,
        hint_owner: pk(&s.stranger),
    });
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(
        &signer(&s).answer(&ch, 0),
        "neither mine nor the relay's change",
    );

    // Coloured, taken from Alice's change.
    let mut outs = s.outputs.clone();
    outs[2].colour = Some((s.gbtc, 3_890));
    outs[3].sats -= 400;
    outs.push(ark_relay_wallet::testing::PlannedOutput {
        owner: pk(&s.stranger),
        sats: 400,
        colour: Some((s.gbtc, 100)),
        hint_owner: pk(&s.stranger),
    });
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(&signer(&s).answer(&ch, 0), "unexpected 100 gBTC");
}

#[test]
fn refuses_change_to_someone_else() {
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[2].owner = pk(&s.stranger);
    outs[2].hint_owner = pk(&s.stranger);
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    let a = signer(&s).answer(&ch, 0);
    refused(&a, "unexpected 3990 gBTC");
    refused(&a, "colour not conserved");
}

#[test]
fn refuses_wrong_fee() {
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[1].colour = Some((s.gbtc, 20));
    outs[2].colour = Some((s.gbtc, 3_980));
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    let a = signer(&s).answer(&ch, 0);
    refused(&a, "no output pays 10 gBTC");
    refused(&a, "unexpected 20 gBTC");
}

#[test]
fn refuses_a_packet_paying_one_unit_less_than_the_hints() {
    // Hints and PSBT scripts are honest; only the asset packet moves 1 unit of
    // Bob's payment to Alice's change.
    let s = Scenario::new();
    let mut packet: Vec<_> = s.outputs.iter().map(|o| o.colour).collect();
    packet[0] = Some((s.gbtc, s.amount - 1));
    packet[2] = Some((s.gbtc, 5_000 - s.amount - s.fee + 1));
    let tx = s.build_with_packet(
        &[s.alice_input(), s.relay_vtxo.clone()],
        &s.outputs,
        &packet,
    );
    let ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    let a = signer(&s).answer(&ch, 0);
    refused(
        &a,
        "output 0: the asset packet gives 999 gBTC, the colour hint says 1000",
    );
}

#[test]
fn refuses_hints_that_lie_about_a_right_packet() {
    // The packet pays exactly the intent; the hints say Bob gets 1 unit more.
    let s = Scenario::new();
    let packet: Vec<_> = s.outputs.iter().map(|o| o.colour).collect();
    let mut hints = s.outputs.clone();
    hints[0].colour = Some((s.gbtc, s.amount + 1));
    hints[2].colour = Some((s.gbtc, 5_000 - s.amount - s.fee - 1));
    let tx = s.build_with_packet(
        &[s.alice_input(), s.relay_vtxo.clone()],
        &s.outputs,
        &packet,
    );
    let ch = s.step1_for(&tx, &hints, &s.alice_pk());
    let a = signer(&s).answer(&ch, 0);
    refused(
        &a,
        "output 0: the asset packet gives 1000 gBTC, the colour hint says 1001",
    );
}

#[test]
fn refuses_a_transaction_without_a_packet_or_burning_my_colour() {
    let s = Scenario::new();
    let inputs = [s.alice_input(), s.relay_vtxo.clone()];
    // A packet that lists Alice's input and gives nothing out: a burn.
    let tx = s.build_with_packet(&inputs, &s.outputs, &[None, None, None, None]);
    let ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    refused(
        &signer(&s).answer(&ch, 0),
        "output 0: the colour hint says 1000, the asset packet gives nothing",
    );
    // No packet at all (the builder does not know Alice's colour).
    let mut blind = s.clone();
    blind.known.clear();
    let tx = blind.build_with_packet(&inputs, &s.outputs, &[None, None, None, None]);
    let ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    refused(&signer(&s).answer(&ch, 0), "carries no asset packet");
}

#[test]
fn refuses_a_packet_misstating_my_input() {
    let s = Scenario::new();
    let mut s2 = s.clone();
    s2.known.insert(s.alice_vtxo.vtxo, (s.gbtc, 4_999));
    let mut packet: Vec<_> = s.outputs.iter().map(|o| o.colour).collect();
    packet[2] = Some((s.gbtc, 5_000 - s.amount - s.fee - 1));
    let tx = s2.build_with_packet(
        &[s.alice_input(), s.relay_vtxo.clone()],
        &s.outputs,
        &packet,
    );
    let ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    refused(
        &signer(&s).answer(&ch, 0),
        "asset packet lists my input 0 as 4999 gBTC",
    );
}

#[test]
fn refuses_colour_not_conserved() {
    // Alice's change hint understates what she keeps: colour vanishes.
    let s = Scenario::new();
    let mut ch = s.step1();
    ch.payload_to_sign.colour[2].amount = 100;
    refused(&signer(&s).answer(&ch, 0), "colour not conserved");
}

#[test]
fn refuses_taking_the_users_sats() {
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[2].sats = 100; // Alice's change keeps 100 of her 1 000 sats ...
    outs[3].sats += 900; // ... the relay's uncoloured change takes the rest.
    let ch = s.step1_for(
        &s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs),
        &outs,
        &s.alice_pk(),
    );
    refused(&signer(&s).answer(&ch, 0), "sats exceed");
}

#[test]
fn refuses_sighash_mismatch() {
    let s = Scenario::new();
    let mut ch = s.step1();
    ch.payload_to_sign.sign[0].sighash = "ab".repeat(32);
    refused(&signer(&s).answer(&ch, 0), "sighash mismatch");
}

#[test]
fn refuses_sign_entry_for_another_key() {
    let s = Scenario::new();
    let tx = s.honest_tx();
    let mut ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    let relay_entries = s
        .step1_for(&tx, &s.outputs, &s.relay_pk())
        .payload_to_sign
        .sign;
    ch.payload_to_sign.sign.extend(relay_entries);
    refused(&signer(&s).answer(&ch, 0), "for another key");
}

#[test]
fn refuses_input_that_is_not_its_vtxo() {
    // An input locked to Alice's key (so the sighash and leaf check out) but
    // not one of the VTXOs her wallet knows.
    let s = Scenario::new();
    let mut input = s.alice_input();
    input.id = format!("{}:1", "33".repeat(32))
        .parse::<VtxoId>()
        .expect("id");
    let tx = s.build(&[input, s.relay_vtxo.clone()], &s.outputs);
    let ch = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    refused(&signer(&s).answer(&ch, 0), "does not spend a VTXO of mine");
}

#[test]
fn refuses_a_session_it_never_started() {
    let s = Scenario::new();
    let mut ch = s.step1();
    ch.session_id = SessionId::from(EventId::from_bytes([0x01; 32]));
    refused(&signer(&s).answer(&ch, 0), "was not started by me");
    // And a signer that authorised nothing refuses the real session too.
    let mut bare = Signer::new(s.alice, s.relay_pk(), s.server.clone(), SignPolicy::Honest);
    refused(&bare.answer(&s.step1(), 0), "was not started by me");
}

#[test]
fn refuses_expired_challenge_and_ended_session() {
    let s = Scenario::new();
    let mut w = signer(&s);
    let mut ch = s.step1();
    ch.expires_at = 100;
    refused(&w.answer(&ch, 200), "expired");
    w.end(&s.session());
    refused(&w.answer(&s.step1(), 0), "was not started by me");
}

#[test]
fn refuses_step2_before_step1() {
    let s = Scenario::new();
    let ch2 = s.step2_for(&s.honest_tx());
    refused(&signer(&s).answer(&ch2, 0), "before I signed step 1");
}

#[test]
fn refuses_tampered_checkpoints() {
    let s = Scenario::new();
    let tx = s.honest_tx();
    let fresh = || {
        let mut w = signer(&s);
        signed(&w.answer(&s.step1_for(&tx, &s.outputs, &s.alice_pk()), 0));
        w
    };

    // A checkpoint whose output was changed (not what the server's rules build).
    let mut cp = tx.checkpoints[0].clone();
    cp.unsigned_tx.output[0].value = bitcoin::Amount::from_sat(999);
    let _ = sign_input(&mut cp, 0, &s.signer);
    let a = fresh().answer(&s.step2_with(vec![cp]), 0);
    refused(&a, "not built per the server's rules");

    // The checkpoint of another transaction (not spent by the ark tx signed).
    let mut outs = s.outputs.clone();
    outs[3].sats -= 1;
    outs[2].sats += 1;
    let other = s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs);
    let mut cp = other.checkpoints[0].clone();
    cp.unsigned_tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    let _ = sign_input(&mut cp, 0, &s.signer);
    refused(
        &fresh().answer(&s.step2_with(vec![cp]), 0),
        "not spent by the ark tx",
    );

    // The relay's checkpoint instead of Alice's (her key does not sign it).
    let mut cp = tx.checkpoints[1].clone();
    let _ = sign_input(&mut cp, 0, &s.signer);
    let mut ch = s.step2_with(vec![cp]);
    ch.payload_to_sign.sign = s.step2_for(&tx).payload_to_sign.sign;
    refused(&fresh().answer(&ch, 0), "");

    // Without the server's signature.
    let ch = s.step2_with(vec![tx.checkpoints[0].clone()]);
    refused(&fresh().answer(&ch, 0), "lacks the Ark server's signature");

    // A bad server signature.
    let mut cp = tx.checkpoints[0].clone();
    let _ = sign_input(&mut cp, 0, &s.signer);
    for sig in cp.inputs[0].tap_script_sigs.values_mut() {
        sig.signature = schnorr::Signature::from_slice(&[7u8; 64]).expect("64 bytes");
    }
    refused(
        &fresh().answer(&s.step2_with(vec![cp]), 0),
        "does not verify",
    );

    // And the honest one still signs.
    signed(&fresh().answer(&s.step2_for(&tx), 0));
}

#[test]
fn policies() {
    let s = Scenario::new();
    let mut w = signer(&s);
    w.set_policy(SignPolicy::NeverAnswer);
    assert_eq!(w.answer(&s.step1(), 0), Answer::Silent);
    w.set_policy(SignPolicy::RejectAll);
    refused(&w.answer(&s.step1(), 0), "signs nothing");
}

#[test]
fn signs_when_surplus_sats_go_to_an_uncoloured_output_of_mine() {
    // The relay's planner may return the author's surplus carrier sats in an
    // uncoloured output of the author's (no colour hint).
    let s = Scenario::new();
    let mut outs = s.outputs.clone();
    outs[2].sats = 400;
    outs.push(ark_relay_wallet::testing::PlannedOutput {
        owner: s.alice_pk(),
        sats: 600,
        colour: None,
        hint_owner: s.alice_pk(),
    });
    let tx = s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs);
    let ch = s.step1_for(&tx, &outs, &s.alice_pk());
    let a = signer(&s).answer(&ch, 0);
    apply(&ch, &s, signed(&a));
}
