//! Build → sign → verify round trips, and what breaks them.

#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

mod common;

use ark_relay_ark::script::{is_anchor, ANCHOR_SCRIPT_PUBKEY};
use ark_relay_ark::taptree::{get_taptree, ARK_PSBT_KEY_TYPE};
use ark_relay_ark::tx::is_vtxo_output;
use ark_relay_ark::{
    add_signature, build_offchain_tx, input_sighash, is_fully_signed, is_signed_for_leaf,
    missing_signers, sign_input, sign_psbt, sign_requests, sign_sighash, verify_offchain_tx,
    verify_signatures, ArkError, OffchainTx, Output, VtxoInput, VtxoScript,
};
use ark_relay_core::Sats;
use bitcoin::{Amount, Psbt, Sequence};
use common::*;

fn sats(n: u64) -> Sats {
    Sats::new(n)
}

/// One input of Alice: 1 000 → Bob 600, Alice 400.
fn one_input(p: &Parties) -> (OffchainTx, Vec<VtxoInput>) {
    let s = server(p);
    let inputs = vec![input(&s, &p.alice, 1, 1_000)];
    let outputs = [
        Output::Vtxo {
            owner: pubkey(&p.bob),
            sats: sats(600),
        },
        Output::Vtxo {
            owner: pubkey(&p.alice),
            sats: sats(400),
        },
    ];
    (build_offchain_tx(&s, &inputs, &outputs).unwrap(), inputs)
}

/// Three inputs (Alice ×2, Carol) → Bob 2 000, Carol 1 500, Alice 100 (sub-dust).
fn three_inputs(p: &Parties) -> (OffchainTx, Vec<VtxoInput>) {
    let s = server(p);
    let inputs = vec![
        input(&s, &p.alice, 1, 1_000),
        input(&s, &p.carol, 2, 2_000),
        input(&s, &p.alice, 3, 600),
    ];
    let outputs = [
        Output::Vtxo {
            owner: pubkey(&p.bob),
            sats: sats(2_000),
        },
        Output::Vtxo {
            owner: pubkey(&p.carol),
            sats: sats(1_500),
        },
        Output::Vtxo {
            owner: pubkey(&p.alice),
            sats: sats(100),
        },
    ];
    (build_offchain_tx(&s, &inputs, &outputs).unwrap(), inputs)
}

#[test]
fn structure_is_arkds() {
    let p = parties();
    let s = server(&p);
    let (tx, inputs) = three_inputs(&p);
    let ark = &tx.ark_tx.unsigned_tx;
    assert_eq!(ark.version.0, 3);
    assert_eq!(ark.lock_time.to_consensus_u32(), 0);
    assert_eq!(ark.input.len(), 3);
    assert_eq!(ark.output.len(), 4);
    let anchor = ark.output.last().unwrap();
    assert_eq!(anchor.script_pubkey.as_bytes(), ANCHOR_SCRIPT_PUBKEY);
    assert_eq!(anchor.value, Amount::ZERO);
    // Sub-dust output: OP_RETURN <alice's VTXO output key>.
    let alice_vtxo = s.default_vtxo(&pubkey(&p.alice));
    let sub = &ark.output[2];
    assert_eq!(sub.script_pubkey.as_bytes()[..2], [0x6a, 0x20]);
    assert_eq!(
        &sub.script_pubkey.as_bytes()[2..],
        &alice_vtxo.output_key().serialize()
    );
    assert!(is_vtxo_output(&sub.script_pubkey));
    assert_eq!(tx.new_vtxo_ids().len(), 3);
    let total_in: u64 = inputs.iter().map(|i| i.amount.get()).sum();
    let total_out: u64 = ark.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(total_in, total_out);

    for (i, (cp, input)) in tx.checkpoints.iter().zip(&inputs).enumerate() {
        let c = &cp.unsigned_tx;
        assert_eq!(c.version.0, 3);
        assert_eq!(c.input.len(), 1);
        assert_eq!(c.input[0].previous_output, input.id.outpoint());
        assert_eq!(c.input[0].sequence, Sequence::MAX);
        assert_eq!(c.output.len(), 2);
        assert!(is_anchor(&c.output[1].script_pubkey));
        let cp_tree = VtxoScript::checkpoint(s.checkpoint_tapscript(), &input.spend_leaf).unwrap();
        assert_eq!(c.output[0].script_pubkey, cp_tree.script_pubkey());
        assert_eq!(c.output[0].value.to_sat(), input.amount.get());
        // Checkpoint input: witness_utxo = the VTXO, one leaf, the VTXO's taptree.
        let pin = &cp.inputs[0];
        assert_eq!(
            pin.witness_utxo.as_ref().unwrap().script_pubkey,
            input.script.script_pubkey()
        );
        assert_eq!(pin.tap_scripts.len(), 1);
        assert_eq!(get_taptree(pin).unwrap().unwrap(), input.script.leaves());
        let key = pin.unknown.keys().next().unwrap();
        assert_eq!(key.type_value, ARK_PSBT_KEY_TYPE);
        assert_eq!(key.key, b"taptree");
        // Ark input i spends checkpoint i, output 0, through the same leaf.
        assert_eq!(ark.input[i].previous_output.txid, c.compute_txid());
        assert_eq!(ark.input[i].previous_output.vout, 0);
        let ain = &tx.ark_tx.inputs[i];
        assert_eq!(ain.witness_utxo.as_ref().unwrap(), &c.output[0]);
        assert_eq!(ain.tap_scripts.values().next().unwrap().0, input.spend_leaf);
        // arkd order: [checkpoint tapscript, collaborative leaf].
        assert_eq!(
            get_taptree(ain).unwrap().unwrap(),
            vec![s.checkpoint_tapscript().clone(), input.spend_leaf.clone()]
        );
    }
}

#[test]
fn deterministic() {
    let p = parties();
    let (a, _) = three_inputs(&p);
    let (b, _) = three_inputs(&p);
    assert_eq!(a.ark_txid(), b.ark_txid());
    assert_eq!(a.checkpoint_txids(), b.checkpoint_txids());
    assert_eq!(a.ark_tx.serialize(), b.ark_tx.serialize());
}

/// The full arkd ceremony: owners sign the ark tx, the server co-signs it and signs
/// the checkpoints, owners co-sign the checkpoints.
fn ceremony(tx: &mut OffchainTx, p: &Parties) {
    let s = server(p);
    let owners = [&p.alice, &p.carol];
    // Step 1: owners sign every ark-tx input they own (via the relay's requests).
    for owner in owners {
        let reqs = sign_requests(std::slice::from_ref(&tx.ark_tx), &pubkey(owner)).unwrap();
        for r in reqs {
            let sig = sign_sighash(&r.sighash, owner);
            add_signature(&mut tx.ark_tx, r.input_index, pubkey(owner).x_only(), sig).unwrap();
        }
    }
    verify_signatures(&tx.ark_tx).unwrap();
    for i in 0..tx.ark_tx.inputs.len() {
        assert_eq!(missing_signers(&tx.ark_tx, i).unwrap(), vec![*s.signer()]);
    }
    assert!(!is_fully_signed(&tx.ark_tx).unwrap());
    // What arkd checks on SubmitTx.
    verify_offchain_tx(&s, &tx.ark_tx, &tx.checkpoints).unwrap();
    // Server co-signs.
    sign_psbt(&mut tx.ark_tx, &p.signer).unwrap();
    assert!(is_fully_signed(&tx.ark_tx).unwrap());
    for cp in &mut tx.checkpoints {
        assert_eq!(sign_psbt(cp, &p.signer).unwrap(), 1);
        verify_signatures(cp).unwrap();
        assert!(!is_fully_signed(cp).unwrap());
    }
    // Step 2: owners co-sign their checkpoints.
    for owner in owners {
        for cp in &mut tx.checkpoints {
            sign_psbt(cp, owner).unwrap();
        }
    }
    for cp in &tx.checkpoints {
        assert!(is_fully_signed(cp).unwrap());
        let leaf = &cp.inputs[0].tap_scripts.values().next().unwrap().0;
        assert!(is_signed_for_leaf(cp, 0, leaf).unwrap());
    }
}

#[test]
fn round_trip_one_input() {
    let p = parties();
    let (mut tx, _) = one_input(&p);
    ceremony(&mut tx, &p);
}

#[test]
fn round_trip_three_inputs() {
    let p = parties();
    let (mut tx, _) = three_inputs(&p);
    let reqs = sign_requests(std::slice::from_ref(&tx.ark_tx), &pubkey(&p.alice)).unwrap();
    assert_eq!(
        reqs.iter().map(|r| r.input_index).collect::<Vec<_>>(),
        vec![0, 2]
    );
    ceremony(&mut tx, &p);
    // Survives PSBT serialization (the taptree unknown field included).
    let ark = Psbt::deserialize(&tx.ark_tx.serialize()).unwrap();
    let cps: Vec<Psbt> = tx
        .checkpoints
        .iter()
        .map(|c| Psbt::deserialize(&c.serialize()).unwrap())
        .collect();
    assert_eq!(ark, tx.ark_tx);
    assert!(is_fully_signed(&ark).unwrap());
    // Checkpoints in any order (arkd returns them shuffled).
    let shuffled = vec![cps[2].clone(), cps[0].clone(), cps[1].clone()];
    verify_offchain_tx(&server(&p), &ark, &shuffled).unwrap();
}

#[test]
fn wrong_key_fails() {
    let p = parties();
    let (mut tx, _) = one_input(&p);
    // Eve is not a signer of the leaf.
    assert!(matches!(
        sign_input(&mut tx.ark_tx, 0, &p.eve),
        Err(ArkError::KeyNotInLeaf { .. })
    ));
    // Eve's signature presented as Alice's.
    let (_, sighash) = input_sighash(&tx.ark_tx, 0).unwrap();
    let eve_sig = sign_sighash(&sighash, &p.eve);
    let alice = pubkey(&p.alice);
    assert!(matches!(
        add_signature(&mut tx.ark_tx, 0, alice.x_only(), eve_sig),
        Err(ArkError::InvalidSignature { .. })
    ));
    // Smuggled straight into the PSBT: verification catches it.
    let (leaf_hash, _) = input_sighash(&tx.ark_tx, 0).unwrap();
    tx.ark_tx.inputs[0].tap_script_sigs.insert(
        (*alice.x_only(), leaf_hash),
        bitcoin::taproot::Signature {
            signature: eve_sig,
            sighash_type: bitcoin::TapSighashType::Default,
        },
    );
    assert!(matches!(
        verify_signatures(&tx.ark_tx),
        Err(ArkError::InvalidSignature { .. })
    ));
}

#[test]
fn changed_amount_or_output_invalidates_signature() {
    let p = parties();
    let (mut signed, _) = one_input(&p);
    sign_psbt(&mut signed.ark_tx, &p.alice).unwrap();
    verify_signatures(&signed.ark_tx).unwrap();

    // Output amount moved from Alice's change to Bob.
    let mut t = signed.clone();
    t.ark_tx.unsigned_tx.output[0].value = Amount::from_sat(700);
    t.ark_tx.unsigned_tx.output[1].value = Amount::from_sat(300);
    assert!(matches!(
        verify_signatures(&t.ark_tx),
        Err(ArkError::InvalidSignature { .. })
    ));

    // Output redirected to Eve.
    let mut t = signed.clone();
    let s = server(&p);
    t.ark_tx.unsigned_tx.output[0].script_pubkey = s.default_vtxo(&pubkey(&p.eve)).script_pubkey();
    assert!(verify_signatures(&t.ark_tx).is_err());

    // The spent amount claimed in witness_utxo changed.
    let mut t = signed.clone();
    t.ark_tx.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(999);
    assert!(verify_signatures(&t.ark_tx).is_err());
}

#[test]
fn one_byte_of_an_output_changes_every_sighash() {
    let p = parties();
    let (tx, _) = three_inputs(&p);
    let before: Vec<_> = (0..3)
        .map(|i| input_sighash(&tx.ark_tx, i).unwrap().1)
        .collect();
    for out in 0..tx.ark_tx.unsigned_tx.output.len() {
        let len = tx.ark_tx.unsigned_tx.output[out].script_pubkey.len();
        for byte in [0, len / 2, len - 1] {
            let mut t = tx.ark_tx.clone();
            let mut b = t.unsigned_tx.output[out].script_pubkey.to_bytes();
            b[byte] ^= 0x01;
            t.unsigned_tx.output[out].script_pubkey = b.into();
            for (i, old) in before.iter().enumerate() {
                assert_ne!(
                    &input_sighash(&t, i).unwrap().1,
                    old,
                    "output {out} byte {byte} input {i}"
                );
            }
        }
        let mut t = tx.ark_tx.clone();
        t.unsigned_tx.output[out].value += Amount::from_sat(1);
        assert_ne!(input_sighash(&t, 0).unwrap().1, before[0]);
    }
}

#[test]
fn rebuild_detects_tampering() {
    let p = parties();
    let s = server(&p);
    let (tx, _) = three_inputs(&p);

    // A checkpoint with a different output.
    let mut cps = tx.checkpoints.clone();
    cps[1].unsigned_tx.output[0].value = Amount::from_sat(1_999);
    assert!(verify_offchain_tx(&s, &tx.ark_tx, &cps).is_err());

    // Ark tx inputs reordered: the rebuilt tx follows the submitted input order,
    // so the txids still agree only if the checkpoints do; swap a sequence instead.
    let mut ark = tx.ark_tx.clone();
    ark.unsigned_tx.input[0].sequence = Sequence::ENABLE_LOCKTIME_NO_RBF;
    assert!(matches!(
        verify_offchain_tx(&s, &ark, &tx.checkpoints),
        Err(ArkError::ArkTxMismatch { .. })
    ));
    let mut ark = tx.ark_tx.clone();
    ark.unsigned_tx.version = bitcoin::transaction::Version(2);
    assert!(matches!(
        verify_offchain_tx(&s, &ark, &tx.checkpoints),
        Err(ArkError::ArkTxMismatch { .. })
    ));
    // Anchor moved to the front.
    let mut ark = tx.ark_tx.clone();
    ark.unsigned_tx.output.rotate_right(1);
    assert!(matches!(
        verify_offchain_tx(&s, &ark, &tx.checkpoints),
        Err(ArkError::ArkTxMismatch { .. })
    ));
    // More sats out than in.
    let mut ark = tx.ark_tx.clone();
    ark.unsigned_tx.output[0].value += Amount::from_sat(1);
    assert!(matches!(
        verify_offchain_tx(&s, &ark, &tx.checkpoints),
        Err(ArkError::AmountMismatch { .. })
    ));
    // A missing checkpoint, an extra one.
    assert!(matches!(
        verify_offchain_tx(&s, &tx.ark_tx, &tx.checkpoints[..2]),
        Err(ArkError::CheckpointMissing { .. })
    ));
    let other = one_input(&p).0.checkpoints[0].clone();
    let mut extra = tx.checkpoints.clone();
    extra.push(other);
    assert!(verify_offchain_tx(&s, &tx.ark_tx, &extra).is_err());
    // A different server checkpoint tapscript.
    let other_server = ark_relay_ark::ServerInfo::new(
        *s.signer(),
        *s.forfeit_key(),
        s.unilateral_exit_delay(),
        ark_relay_ark::RelativeLocktime::blocks(11),
        s.dust(),
        s.network(),
    );
    assert!(matches!(
        verify_offchain_tx(&other_server, &tx.ark_tx, &tx.checkpoints),
        Err(ArkError::CheckpointMismatch { .. })
    ));
    // A taptree that does not produce the spent output.
    let mut cps = tx.checkpoints.clone();
    let bob_tree = s.default_vtxo(&pubkey(&p.bob));
    ark_relay_ark::taptree::set_taptree(&mut cps[0].inputs[0], bob_tree.leaves());
    assert!(matches!(
        verify_offchain_tx(&s, &tx.ark_tx, &cps),
        Err(ArkError::WitnessUtxoMismatch { .. })
    ));
    // Two tap leaves on one input.
    let mut cps = tx.checkpoints.clone();
    let extra_leaf = s.default_vtxo(&pubkey(&p.alice)).leaves()[0].clone();
    let cb = s
        .default_vtxo(&pubkey(&p.alice))
        .control_block(&extra_leaf)
        .unwrap();
    cps[0].inputs[0]
        .tap_scripts
        .insert(cb, (extra_leaf, bitcoin::taproot::LeafVersion::TapScript));
    assert!(matches!(
        verify_offchain_tx(&s, &tx.ark_tx, &cps),
        Err(ArkError::TapLeafCount { count: 2, .. })
    ));
}

#[test]
fn builder_rejections() {
    let p = parties();
    let s = server(&p);
    let a = input(&s, &p.alice, 1, 1_000);
    let bob = pubkey(&p.bob);
    let out = |n| Output::Vtxo {
        owner: bob,
        sats: sats(n),
    };
    assert!(matches!(
        build_offchain_tx(&s, &[], &[]),
        Err(ArkError::NoInputs)
    ));
    assert!(matches!(
        build_offchain_tx(&s, std::slice::from_ref(&a), &[out(999)]),
        Err(ArkError::AmountMismatch { .. })
    ));
    assert!(matches!(
        build_offchain_tx(&s, &[a.clone(), a.clone()], &[out(2_000)]),
        Err(ArkError::DuplicateInput(_))
    ));
    let limited = s
        .clone()
        .with_vtxo_amount_limits(Some(sats(400)), Some(sats(900)));
    assert!(matches!(
        build_offchain_tx(&limited, std::slice::from_ref(&a), &[out(300), out(700)]),
        Err(ArkError::AmountTooLow { index: 0, .. })
    ));
    assert!(matches!(
        build_offchain_tx(&limited, std::slice::from_ref(&a), &[out(1_000)]),
        Err(ArkError::AmountTooHigh { .. })
    ));
    // The exit leaf cannot be spent off-chain.
    let exit = a.script.leaves()[0].clone();
    assert!(matches!(
        VtxoInput::new(a.id, a.amount, a.script.clone(), exit),
        Err(ArkError::NotCollaborative { .. })
    ));
    // A VTXO without a leaf for this server's signer.
    let foreign = VtxoScript::default_vtxo(
        pubkey(&p.alice).x_only(),
        pubkey(&p.eve).x_only(),
        s.unilateral_exit_delay(),
    );
    assert!(matches!(
        VtxoInput::collaborative(a.id, a.amount, foreign, &pubkey(&p.alice), s.signer()),
        Err(ArkError::NoCollaborativeLeaf { .. })
    ));
}

#[test]
fn cltv_leaf_sets_locktime_and_sequence() {
    use ark_relay_ark::script::{csv_script, Multisig, MultisigType};
    use ark_relay_ark::Closure;
    use bitcoin::absolute::LockTime;
    let p = parties();
    let s = server(&p);
    let alice = pubkey(&p.alice);
    let cltv = |h: u32| {
        Closure::CltvMultisig {
            locktime: LockTime::from_consensus(h),
            multisig: Multisig {
                keys: vec![*alice.x_only(), *s.signer()],
                kind: MultisigType::Checksig,
            },
        }
        .script()
    };
    let vtxo = |n: u8, h: u32| {
        let tree = VtxoScript::new(vec![
            csv_script(alice.x_only(), s.unilateral_exit_delay()),
            cltv(h),
        ])
        .unwrap();
        VtxoInput::new(vtxo_id(n, 0), sats(500), tree, cltv(h)).unwrap()
    };
    let out = [Output::Vtxo {
        owner: pubkey(&p.bob),
        sats: sats(1_000),
    }];
    let tx = build_offchain_tx(&s, &[vtxo(1, 100), vtxo(2, 200)], &out).unwrap();
    assert_eq!(
        tx.ark_tx.unsigned_tx.lock_time,
        LockTime::from_consensus(200)
    );
    assert_eq!(
        tx.checkpoints[0].unsigned_tx.lock_time,
        LockTime::from_consensus(100)
    );
    assert!(tx
        .ark_tx
        .unsigned_tx
        .input
        .iter()
        .all(|i| i.sequence == Sequence::ENABLE_LOCKTIME_NO_RBF));
    verify_offchain_tx(&s, &tx.ark_tx, &tx.checkpoints).unwrap();
    assert!(matches!(
        build_offchain_tx(&s, &[vtxo(1, 100), vtxo(2, 600_000_000)], &out),
        Err(ArkError::MixedLocktimes)
    ));
}
