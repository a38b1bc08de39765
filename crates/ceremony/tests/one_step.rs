//! One-step signing (docs/protocol.md, "Checkpoint signatures in step 1"),
//! on the same runner and arkd models as the property tests: a party that
//! asked for it signs its checkpoints in step 1 and gets no step 2; a bad
//! checkpoint signature in step 1 is a 5002 before `SubmitTx`; the kept
//! signatures survive a crash between `SubmitTx` and `FinalizeTx`; in a
//! batch, parties that did not ask for it still get step 2.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;

fn answer_signatures(input: &mut Input) -> &mut Vec<SignatureEntry> {
    match input {
        Input::Answer {
            answer: Answer::Signatures(sigs),
            ..
        } => sigs,
        other => panic!("not a signed answer: {other:?}"),
    }
}

fn step2_challenges(w: &World) -> usize {
    w.outbox
        .values()
        .filter(|e| matches!(e, Effect::Challenge { challenge, .. } if challenge.step == 2))
        .count()
}

#[test]
fn a_one_step_transfer_completes_with_one_challenge() {
    let mut w = setup_with(1, &[true]);
    let ch = w.challenge(0, 1).expect("step 1 sent");
    let span = w.state.parties[0].span;
    assert_eq!(ch.payload_to_sign.psbts.len(), 1 + span.inputs);
    assert!(ch.human_readable_context.starts_with("Step 1/1:"));
    for k in 0..span.inputs {
        let want = w.state.checkpoints[span.first_input + k].to_string();
        assert_eq!(
            ch.payload_to_sign.psbts[1 + k],
            want,
            "checkpoint {k} unsigned, as prepared"
        );
        assert!(
            ch.payload_to_sign
                .sign
                .iter()
                .any(|r| r.psbt_index as usize == 1 + k && r.input_index == 0),
            "checkpoint {k} asked for"
        );
    }
    let a = w.answer(0, 1, true, false, 0).unwrap();
    assert!(w.run(a, Crash::None));
    assert!(
        matches!(w.state.phase, Phase::Completed),
        "{:?}",
        w.state.phase
    );
    assert_eq!(step2_challenges(&w), 0, "no step 2");
    assert_eq!(w.commits, 1);
    assert_eq!(w.state.kept.len(), span.inputs);
    for cp in &w.state.checkpoints {
        assert!(is_fully_signed(cp).unwrap());
    }
}

#[test]
fn a_bad_checkpoint_signature_in_step1_is_5002_before_submit() {
    for (name, spoil) in [
        ("wrong sighash", 0u8),
        ("missing", 1),
        ("not hex", 2),
        ("unknown checkpoint", 3),
    ] {
        let mut w = setup_with(1, &[true]);
        let mut a = w.answer(0, 1, true, false, 0).unwrap();
        let sigs = answer_signatures(&mut a);
        let ark_sig = sigs.iter().find(|e| e.psbt_index == 0).unwrap().sig.clone();
        let cp = sigs.iter_mut().find(|e| e.psbt_index == 1).unwrap();
        match spoil {
            // A valid signature of the wallet, over the ark tx's sighash.
            0 => cp.sig = ark_sig,
            1 => {
                sigs.retain(|e| e.psbt_index == 0);
            }
            2 => cp.sig = "zz".repeat(64),
            _ => cp.psbt_index = 9,
        }
        assert!(w.run(a, Crash::None));
        assert!(
            matches!(
                &w.state.phase,
                Phase::Failed { failure, .. } if failure.code() == ErrorCode::InvalidResponseSignature
            ),
            "{name}: {:?}",
            w.state.phase
        );
        assert!(w.arkd.accepted.is_empty(), "{name}: no SubmitTx");
        assert!(!w.locks_held, "{name}: locks released");
    }
}

#[test]
fn a_two_step_party_may_not_sign_checkpoints_in_step1() {
    let mut w = setup_with(1, &[false]);
    let mut a = w.answer(0, 1, true, false, 0).unwrap();
    let sigs = answer_signatures(&mut a);
    let extra = SignatureEntry {
        psbt_index: 1,
        ..sigs[0].clone()
    };
    sigs.push(extra);
    assert!(w.run(a, Crash::None));
    assert_eq!(
        w.state.phase.failure().map(|f| f.code()),
        Some(ErrorCode::InvalidResponseSignature)
    );
    assert!(w.arkd.accepted.is_empty());
}

#[test]
fn the_kept_signatures_survive_a_crash_between_submit_and_finalize() {
    let mut w = setup_with(1, &[true]);
    let a = w.answer(0, 1, true, false, 0).unwrap();
    // SubmitTx reached arkd, its answer was lost with the process.
    assert!(w.run(a, Crash::AfterRemote));
    assert!(matches!(w.state.phase, Phase::ArkTxSigned { .. }));
    assert_eq!(w.arkd.accepted.values().sum::<u32>(), 1);
    assert!(!w.state.kept.is_empty(), "kept in the persisted state");
    for cp in &w.state.checkpoints {
        assert!(
            cp.inputs.iter().all(|i| i.tap_script_sigs.is_empty()),
            "kept apart from the checkpoints submitted"
        );
    }
    // Restart: the state comes back from its JSON.
    let json = serde_json::to_string(&w.state).unwrap();
    assert!(json.contains("\"kept\""), "{json}");
    w.state = serde_json::from_str(&json).unwrap();
    // Recovery finds it pending at arkd, adds the kept signatures; the
    // process dies again before FinalizeTx.
    w.now = w.now.plus_secs(11);
    assert!(w.run(Input::Tick, Crash::BeforeRemote));
    assert!(matches!(w.state.phase, Phase::ArkTxSigned { .. }));
    let found = w.arkd.find(&w.state.ark_txid);
    assert!(matches!(found, Input::Submitted(_)), "pending at arkd");
    assert!(w.run(found, Crash::BeforeRemote));
    assert!(
        matches!(w.state.phase, Phase::SignaturesCollected { .. }),
        "{:?}",
        w.state.phase
    );
    assert!(w.arkd.finalized.is_empty());
    let json = serde_json::to_string(&w.state).unwrap();
    w.state = serde_json::from_str(&json).unwrap();
    w.now = w.now.plus_secs(11);
    assert!(w.run(Input::Tick, Crash::None));
    assert!(
        matches!(w.state.phase, Phase::Completed),
        "{:?}",
        w.state.phase
    );
    assert_eq!(w.arkd.accepted.values().sum::<u32>(), 1, "submitted once");
    assert_eq!(step2_challenges(&w), 0);
    assert_eq!(w.commits, 1);
}

#[test]
fn a_batch_of_one_step_and_two_step_parties_asks_only_the_two_step_ones_again() {
    let mut w = setup_with(3, &[true, false, true]);
    for i in 0..3 {
        let ch = w.challenge(i, 1).unwrap();
        let want = if i == 1 {
            1
        } else {
            1 + w.state.parties[i].span.inputs
        };
        assert_eq!(ch.payload_to_sign.psbts.len(), want, "party {i}");
    }
    for i in 0..3 {
        let a = w.answer(i, 1, true, false, 0).unwrap();
        assert!(w.run(a, Crash::None));
    }
    assert!(
        matches!(w.state.phase, Phase::CheckpointTxsPrepared { .. }),
        "{:?}",
        w.state.phase
    );
    assert!(w.challenge(0, 2).is_none() && w.challenge(2, 2).is_none());
    assert!(
        w.challenge(1, 2).is_some(),
        "the two-step party gets step 2"
    );
    // The one-step parties' checkpoints are already complete but for party 1's.
    let p1 = w.state.parties[1].span.range();
    for (n, cp) in w.state.checkpoints.iter().enumerate() {
        assert_eq!(is_fully_signed(cp).unwrap(), !p1.contains(&n), "cp {n}");
    }
    let a = w.answer(1, 2, true, false, 0).unwrap();
    assert!(w.run(a, Crash::None));
    assert!(
        matches!(w.state.phase, Phase::Completed),
        "{:?}",
        w.state.phase
    );
    assert_eq!(step2_challenges(&w), 1);
    let s = Scenario {
        parties: 3,
        one_step: vec![true, false, true],
        step1: vec![Behaviour::Valid; 3],
        step2: vec![Behaviour::Valid; 3],
        crashes: vec![Crash::None],
        gaps: vec![1],
    };
    check(&s, &w);
}

#[test]
fn every_party_count_completes_in_one_step() {
    for n in 1..=3 {
        let s = Scenario {
            parties: n,
            one_step: vec![true; n],
            step1: vec![Behaviour::Valid; n],
            step2: vec![Behaviour::Silent; n],
            crashes: vec![Crash::None],
            gaps: vec![1; 4],
        };
        let w = play(&s);
        check(&s, &w);
        assert!(
            matches!(w.state.phase, Phase::Completed),
            "{n} parties: {:?}",
            w.state.phase
        );
        assert_eq!(step2_challenges(&w), 0);
    }
}
