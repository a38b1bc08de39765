//! One-step signing (docs/protocol.md, "Checkpoint signatures in step 1"):
//! a wallet whose intent says `one_step` signs its checkpoints in step 1
//! after checks 13–14 against the ark tx of the same challenge, and refuses
//! a tampered checkpoint, a missing one, or checkpoints it did not ask for.
//! Real PSBTs built with `ark-relay-ark`; no network.

use ark_relay_ark::sign::{add_signature, sign_requests, verify_signatures};
use ark_relay_ark::OffchainTx;
use ark_relay_protocol::content::SigningChallenge;
use ark_relay_wallet::testing::Scenario;
use ark_relay_wallet::verify::{decode_psbt, encode_psbt, wire_sign_requests};
use ark_relay_wallet::{Answer, SignPolicy, Signer};
use bitcoin::secp256k1::schnorr;
use bitcoin::Psbt;

fn scenario(one_step: bool) -> Scenario {
    let mut s = Scenario::new();
    s.intent.one_step = one_step;
    s
}

fn signer(s: &Scenario) -> Signer {
    let mut signer = Signer::new(s.alice, s.relay_pk(), s.server.clone(), SignPolicy::Honest);
    signer.authorise(s.authorised(), vec![s.alice_vtxo.clone()]);
    signer
}

/// The step-1 challenge a relay sends a one-step wallet: the ark tx, then
/// `checkpoints` (unsigned) with Alice's entries at `psbt_index` 1 + k.
fn one_step_challenge(s: &Scenario, tx: &OffchainTx, checkpoints: &[Psbt]) -> SigningChallenge {
    let mut ch = s.step1_for(tx, &s.outputs, &s.alice_pk());
    let requests = sign_requests(checkpoints, &s.alice_pk()).expect("sign_requests");
    for mut r in wire_sign_requests(&requests).expect("wire") {
        r.psbt_index += 1;
        ch.payload_to_sign.sign.push(r);
    }
    ch.payload_to_sign
        .psbts
        .extend(checkpoints.iter().map(encode_psbt));
    ch.human_readable_context = ch.human_readable_context.replace("1/2", "1/1");
    ch
}

fn refused(answer: &Answer, needle: &str) {
    match answer {
        Answer::Refused(resp, why) => {
            assert!(resp.signatures.is_empty(), "a refusal carries no signature");
            assert!(
                why.mentions(needle),
                "expected a reason mentioning {needle:?}, got: {why}"
            );
        }
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn signs_the_ark_tx_and_its_checkpoint_in_one_step() {
    let s = scenario(true);
    let tx = s.honest_tx();
    let ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    let answer = signer(&s).answer(&ch, 0);
    let Answer::Signed(resp) = answer else {
        panic!("expected signatures, got {answer:?}");
    };
    let mut indexes: Vec<_> = resp.signatures.iter().map(|e| e.psbt_index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1], "the ark tx input and the checkpoint");
    let mut psbts: Vec<Psbt> = ch
        .payload_to_sign
        .psbts
        .iter()
        .map(|p| decode_psbt(p).expect("psbt"))
        .collect();
    for e in &resp.signatures {
        let sig = schnorr::Signature::from_slice(&hex::decode(&e.sig).expect("hex")).expect("64");
        add_signature(
            &mut psbts[e.psbt_index as usize],
            e.input_index as usize,
            s.alice_pk().x_only(),
            sig,
        )
        .expect("the signature verifies over the recomputed sighash");
    }
    for p in &psbts {
        verify_signatures(p).expect("verifies");
    }
}

#[test]
fn refuses_checkpoints_it_did_not_ask_for_and_asks_for_them_when_it_did() {
    let s = scenario(false);
    let tx = s.honest_tx();
    refused(
        &signer(&s).answer(&one_step_challenge(&s, &tx, &tx.checkpoints[..1]), 0),
        "did not ask for one-step",
    );
    let s = scenario(true);
    refused(
        &signer(&s).answer(&s.step1_for(&tx, &s.outputs, &s.alice_pk()), 0),
        "must carry my checkpoints",
    );
}

#[test]
fn refuses_a_tampered_checkpoint_in_step1() {
    let s = scenario(true);
    let tx = s.honest_tx();

    // Its output changed: not what the server's rules build (check 13).
    let mut cp = tx.checkpoints[0].clone();
    cp.unsigned_tx.output[0].value = bitcoin::Amount::from_sat(999);
    refused(
        &signer(&s).answer(&one_step_challenge(&s, &tx, &[cp]), 0),
        "not built per the server's rules",
    );

    // The checkpoint of another transaction, not spent by this ark tx (check 14).
    let mut outs = s.outputs.clone();
    outs[3].sats -= 1;
    outs[2].sats += 1;
    let other = s.build(&[s.alice_input(), s.relay_vtxo.clone()], &outs);
    let mut cp = other.checkpoints[0].clone();
    cp.unsigned_tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    refused(
        &signer(&s).answer(&one_step_challenge(&s, &tx, &[cp]), 0),
        "not spent by the ark tx",
    );

    // The relay's checkpoint instead of mine: mine is missing.
    let mut ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    ch.payload_to_sign.psbts[1] = encode_psbt(&tx.checkpoints[1]);
    refused(&signer(&s).answer(&ch, 0), "");

    // A checkpoint without its sign entry.
    let mut ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    ch.payload_to_sign.sign.retain(|r| r.psbt_index == 0);
    refused(&signer(&s).answer(&ch, 0), "exactly one signature");

    // A sighash that does not match the checkpoint.
    let mut ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    for r in ch
        .payload_to_sign
        .sign
        .iter_mut()
        .filter(|r| r.psbt_index == 1)
    {
        r.sighash = "00".repeat(32);
    }
    refused(&signer(&s).answer(&ch, 0), "sighash mismatch");

    // A tampered ark tx is refused as in two steps.
    let mut ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    ch.payload_to_sign.colour[0].amount += 1;
    refused(&signer(&s).answer(&ch, 0), "");

    // And the honest one signs.
    let ch = one_step_challenge(&s, &tx, &tx.checkpoints[..1]);
    assert!(matches!(signer(&s).answer(&ch, 0), Answer::Signed(_)));
}
