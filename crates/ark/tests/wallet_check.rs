//! What a wallet checks before signing: honest challenges pass, tampered ones are
//! refused with the precise reason.

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

mod common;

use ark_relay_ark::{
    audit_ark_tx_challenge, audit_checkpoint_challenge, build_offchain_tx, check_outputs,
    sign_psbt, sign_requests, Mismatch, OffchainTx, Output, OutputPolicy, SignRequest,
};
use ark_relay_core::Sats;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, TapSighash};
use common::*;

/// Alice (2 inputs) pays Bob 1 200 and 10 to the relay (Carol), change 290 (sub-dust).
fn payment(p: &Parties) -> (OffchainTx, Vec<Output>) {
    let s = server(p);
    let inputs = [input(&s, &p.alice, 1, 1_000), input(&s, &p.alice, 2, 500)];
    let outputs = vec![
        Output::Vtxo {
            owner: pubkey(&p.bob),
            sats: Sats::new(1_200),
        },
        Output::Vtxo {
            owner: pubkey(&p.carol),
            sats: Sats::new(10),
        },
        Output::Vtxo {
            owner: pubkey(&p.alice),
            sats: Sats::new(290),
        },
    ];
    (build_offchain_tx(&s, &inputs, &outputs).unwrap(), outputs)
}

fn challenge(tx: &OffchainTx, p: &Parties) -> Vec<SignRequest> {
    sign_requests(std::slice::from_ref(&tx.ark_tx), &pubkey(&p.alice)).unwrap()
}

#[test]
fn honest_ark_tx_challenge_passes() {
    let p = parties();
    let s = server(&p);
    let (tx, expected) = payment(&p);
    let reqs = challenge(&tx, &p);
    assert_eq!(reqs.len(), 2);
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert!(audit.is_ok(), "{:?}", audit.mismatches);
    assert_eq!(audit.own_input_sats, Sats::new(1_500));
    // Expected outputs in another order are still the same multiset.
    let mut shuffled = expected.clone();
    shuffled.reverse();
    assert!(check_outputs(
        &s,
        std::slice::from_ref(&tx.ark_tx),
        &shuffled,
        OutputPolicy::Exact
    )
    .is_empty());
}

#[test]
fn forged_sighash_or_leaf_is_refused() {
    let p = parties();
    let s = server(&p);
    let (tx, expected) = payment(&p);
    let mut reqs = challenge(&tx, &p);
    reqs[1].sighash = TapSighash::from_byte_array([7; 32]);
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert!(matches!(
        audit.mismatches.as_slice(),
        [Mismatch::Sighash { input_index: 1, .. }]
    ));

    // A sighash of *another* transaction (e.g. one paying Eve) is refused too.
    let mut evil = tx.clone();
    evil.ark_tx.unsigned_tx.output[0].script_pubkey =
        s.default_vtxo(&pubkey(&p.eve)).script_pubkey();
    let evil_reqs = challenge(&evil, &p);
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &evil_reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert_eq!(
        audit
            .mismatches
            .iter()
            .filter(|m| matches!(m, Mismatch::Sighash { .. }))
            .count(),
        2
    );
}

#[test]
fn redirected_output_is_refused() {
    let p = parties();
    let s = server(&p);
    let (mut tx, expected) = payment(&p);
    tx.ark_tx.unsigned_tx.output[0].script_pubkey = s.default_vtxo(&pubkey(&p.eve)).script_pubkey();
    // The relay recomputes honest sighashes for the tampered PSBT: only the
    // output check catches it.
    let reqs = challenge(&tx, &p);
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert!(audit
        .mismatches
        .iter()
        .any(|m| matches!(m, Mismatch::MissingOutput { sats, .. } if *sats == Sats::new(1_200))));
    assert!(audit.mismatches.iter().any(|m| matches!(
        m,
        Mismatch::UnexpectedOutput {
            output_index: 0,
            ..
        }
    )));
    // With `Includes`, an extra output is fine but the missing one is not.
    let m = check_outputs(
        &s,
        std::slice::from_ref(&tx.ark_tx),
        &expected,
        OutputPolicy::Includes,
    );
    assert!(matches!(m.as_slice(), [Mismatch::MissingOutput { .. }]));
}

#[test]
fn changed_amount_is_refused() {
    let p = parties();
    let s = server(&p);
    let (mut tx, expected) = payment(&p);
    tx.ark_tx.unsigned_tx.output[1].value = Amount::from_sat(20);
    tx.ark_tx.unsigned_tx.output[2].value = Amount::from_sat(280);
    let reqs = challenge(&tx, &p);
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert_eq!(
        audit
            .mismatches
            .iter()
            .filter(|m| matches!(m, Mismatch::MissingOutput { .. }))
            .count(),
        2
    );
}

#[test]
fn requests_for_other_keys_or_inputs_are_refused() {
    let p = parties();
    let s = server(&p);
    let (tx, expected) = payment(&p);
    let mut reqs = challenge(&tx, &p);
    reqs[0].pubkey = pubkey(&p.bob);
    reqs[1].input_index = 9;
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.alice),
        std::slice::from_ref(&tx.ark_tx),
        &reqs,
        &expected,
        OutputPolicy::Exact,
    );
    assert!(matches!(
        audit.mismatches.as_slice(),
        [
            Mismatch::ForeignKey { .. },
            Mismatch::NoSuchInput { input_index: 9, .. }
        ]
    ));
    // Bob is asked to sign Alice's inputs (a leaf he is not in).
    let mut bobs = challenge(&tx, &p);
    for r in &mut bobs {
        r.pubkey = pubkey(&p.bob);
    }
    let audit = audit_ark_tx_challenge(
        &s,
        &pubkey(&p.bob),
        std::slice::from_ref(&tx.ark_tx),
        &bobs,
        &expected,
        OutputPolicy::Includes,
    );
    assert_eq!(
        audit
            .mismatches
            .iter()
            .filter(|m| matches!(m, Mismatch::KeyNotInLeaf { .. }))
            .count(),
        2
    );
}

/// After SubmitTx: the server has co-signed the ark tx and signed the checkpoints.
fn after_submit(p: &Parties) -> OffchainTx {
    let (mut tx, _) = payment(p);
    sign_psbt(&mut tx.ark_tx, &p.alice).unwrap();
    sign_psbt(&mut tx.ark_tx, &p.signer).unwrap();
    for cp in &mut tx.checkpoints {
        sign_psbt(cp, &p.signer).unwrap();
    }
    tx
}

#[test]
fn honest_checkpoint_challenge_passes() {
    let p = parties();
    let s = server(&p);
    let tx = after_submit(&p);
    let reqs = sign_requests(&tx.checkpoints, &pubkey(&p.alice)).unwrap();
    assert_eq!(reqs.len(), 2);
    let audit =
        audit_checkpoint_challenge(&s, &pubkey(&p.alice), &tx.checkpoints, &reqs, &tx.ark_tx);
    assert!(audit.is_ok(), "{:?}", audit.mismatches);
    assert_eq!(audit.own_input_sats, Sats::new(1_500));
}

#[test]
fn tampered_checkpoints_are_refused() {
    let p = parties();
    let s = server(&p);
    let tx = after_submit(&p);

    // A checkpoint whose output pays elsewhere.
    let mut cps = tx.checkpoints.clone();
    cps[0].unsigned_tx.output[0].script_pubkey = s.default_vtxo(&pubkey(&p.eve)).script_pubkey();
    cps[0].inputs[0].tap_script_sigs.clear();
    let reqs = sign_requests(&cps, &pubkey(&p.alice)).unwrap();
    let audit = audit_checkpoint_challenge(&s, &pubkey(&p.alice), &cps, &reqs, &tx.ark_tx);
    assert!(audit
        .mismatches
        .iter()
        .any(|m| matches!(m, Mismatch::NotACheckpoint { psbt_index: 0, .. })));
    assert!(audit
        .mismatches
        .iter()
        .any(|m| matches!(m, Mismatch::CheckpointNotSpent { psbt_index: 0, .. })));

    // A forged server signature.
    let mut cps = tx.checkpoints.clone();
    let sig = cps[1].inputs[0]
        .tap_script_sigs
        .values_mut()
        .next()
        .unwrap();
    let mut bytes = sig.signature.serialize();
    bytes[5] ^= 1;
    sig.signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes).unwrap();
    let reqs = sign_requests(&cps, &pubkey(&p.alice)).unwrap();
    let audit = audit_checkpoint_challenge(&s, &pubkey(&p.alice), &cps, &reqs, &tx.ark_tx);
    assert!(matches!(
        audit.mismatches.as_slice(),
        [Mismatch::BadSignature { psbt_index: 1, .. }]
    ));

    // Checkpoints of another payment.
    let other = {
        let s = server(&p);
        let inputs = [input(&s, &p.alice, 7, 800)];
        build_offchain_tx(
            &s,
            &inputs,
            &[Output::Vtxo {
                owner: pubkey(&p.bob),
                sats: Sats::new(800),
            }],
        )
        .unwrap()
    };
    let reqs = sign_requests(&other.checkpoints, &pubkey(&p.alice)).unwrap();
    let audit =
        audit_checkpoint_challenge(&s, &pubkey(&p.alice), &other.checkpoints, &reqs, &tx.ark_tx);
    assert!(matches!(
        audit.mismatches.as_slice(),
        [Mismatch::CheckpointNotSpent { .. }]
    ));
}

#[test]
fn sign_request_json_is_hex() {
    let p = parties();
    let (tx, _) = payment(&p);
    let r = challenge(&tx, &p)[0];
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["psbt_index"], 0);
    assert_eq!(json["input_index"], 0);
    assert_eq!(json["pubkey"], pubkey(&p.alice).to_string());
    assert_eq!(json["sighash"], hex::encode(r.sighash.to_byte_array()));
    assert_eq!(json["leaf_hash"], hex::encode(r.leaf_hash.to_byte_array()));
    assert_eq!(serde_json::from_value::<SignRequest>(json).unwrap(), r);
}
