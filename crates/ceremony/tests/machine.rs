//! Property tests of the pure ceremony: random party counts (0 to 3), each
//! party one-step or two-step at random,
//! random wallet answers (valid, invalid, refusal, silence, duplicate, out of
//! order, late) and a crash before or after every effect, replayed from the
//! persisted state by a model of the engine's runner against a model of arkd
//! that checks every signature it is given.
//!
//! Checked at the end of every run: the ceremony is terminal, a failed one
//! released its locks in the same transition, colour is conserved per asset,
//! arkd accepted the ark tx at most once and never saw an input spent twice,
//! the ledger committed at most once, the ark tx's Arkade Asset packet states
//! exactly the ledger's colour change, and every intent got exactly one
//! answer (a 31340 or a 31341) — except the one documented case, a session
//! stranded after `SubmitTx` (31341 5001/3002) that a late answer completes
//! (31340 after it).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_ceremony_ends_terminal_conserved_and_answered_once(s in scenario()) {
        let w = play(&s);
        check(&s, &w);
    }
}

#[test]
fn all_valid_parties_complete_for_every_party_count() {
    for n in 0..=3 {
        let s = Scenario {
            parties: n,
            one_step: vec![false; n],
            step1: vec![Behaviour::Valid; n],
            step2: vec![Behaviour::Valid; n],
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
    }
}

#[test]
fn a_bad_step2_answer_leaves_the_session_answerable() {
    let s = Scenario {
        parties: 1,
        one_step: vec![false],
        step1: vec![Behaviour::Valid],
        step2: vec![Behaviour::BadThenValid],
        crashes: vec![Crash::None],
        gaps: vec![1; 6],
    };
    let w = play(&s);
    check(&s, &w);
    assert!(
        matches!(w.state.phase, Phase::Completed),
        "{:?}",
        w.state.phase
    );
    let resent = w
        .outbox
        .keys()
        .filter(|k| k.starts_with("31511:") && k.matches(':').count() == 3)
        .count();
    assert!(resent >= 1, "the step-2 challenge was sent again");
    let bad = w.outbox.values().any(|e| {
        matches!(e, Effect::Notify { rejection, .. } if rejection.code == ErrorCode::InvalidResponseSignature)
    });
    assert!(bad, "the wallet was told 5002");
}

#[test]
fn a_crash_between_failure_and_unlock_is_impossible() {
    // A refusal at step 1: the failure and the unlock are one transition,
    // persisted as one; a crash can only come before it (nothing changed)
    // or after it (both done).
    for crash in [
        Crash::BeforePersist,
        Crash::BeforeRemote,
        Crash::AfterRemote,
        Crash::None,
    ] {
        let mut w = setup(1);
        let a = w.answer(0, 1, true, true, 0).unwrap();
        let done = w.run(a.clone(), crash);
        if !done {
            assert!(w.locks_held && matches!(w.state.phase, Phase::ArkTxPrepared { .. }));
            assert!(w.run(a, Crash::None));
        }
        assert!(matches!(w.state.phase, Phase::Failed { .. }));
        assert!(!w.locks_held);
        assert_eq!(
            w.state.phase.failure().map(|f| f.code()),
            Some(ErrorCode::SigningRefused),
            "a single party's refusal has its own code"
        );
    }
}

#[test]
fn a_lost_submit_answer_is_found_at_arkd_not_submitted_again() {
    let mut w = setup(1);
    let a = w.answer(0, 1, true, false, 0).unwrap();
    assert!(w.run(a, Crash::AfterRemote));
    assert!(matches!(w.state.phase, Phase::ArkTxSigned { .. }));
    w.now = w.now.plus_secs(11);
    assert!(w.run(Input::Tick, Crash::None));
    assert!(
        matches!(w.state.phase, Phase::CheckpointTxsPrepared { .. }),
        "{:?}",
        w.state.phase
    );
    assert_eq!(w.arkd.accepted.values().sum::<u32>(), 1);
}

#[test]
fn the_state_round_trips_through_json() {
    let w = setup(2);
    let json = serde_json::to_string(&w.state).unwrap();
    assert!(json.contains("\"state\":\"ark_tx_prepared\""), "{json}");
    let back: Ceremony = serde_json::from_str(&json).unwrap();
    assert_eq!(back, w.state);
}

#[test]
fn the_random_scenarios_reach_every_ending() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut endings: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..160 {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let w = play(&s);
        check(&s, &w);
        let code = w.state.phase.failure().map(|f| f.code).unwrap_or(0);
        *endings
            .entry(format!("{}:{code}", w.state.phase.name()))
            .or_default() += 1;
    }
    for ending in [
        "completed:0",
        "failed:5002",
        "failed:5004",
        "failed:3001",
        "stranded:5001",
        "expired:5001",
    ] {
        assert!(
            endings.contains_key(ending),
            "{ending} never reached: {endings:?}"
        );
    }
}

#[test]
fn a_land_packet_burns_what_the_relay_receives_and_the_hint_says_so() {
    let server = keypair(100);
    let info = server_info(&server);
    let relay = keypair(101);
    let (alice, relay_key) = (pubkey(&keypair(1)), pubkey(&relay));
    let landed = Payment {
        burn: true,
        ..Payment::to(relay_key, gbtc(1_000))
    };
    let fee = Payment {
        fee: true,
        ..Payment::to(relay_key, gbtc(1))
    };
    let req = PartyRequest::paying(alice, vec![landed, fee], None).unwrap();
    let own = vec![vec![vtxo(
        &info,
        10,
        alice,
        330,
        Some(gbtc(1_001)),
        VtxoStatus::Assigned,
    )]];
    let inventory = vec![vtxo(
        &info,
        90,
        relay_key,
        5_000,
        None,
        VtxoStatus::Available,
    )];
    let p = plan(
        &PlanRequest {
            parties: std::slice::from_ref(&req),
            relay_pays: &[],
            relay: relay_key,
            dust: Sats::new(330),
            control: None,
        },
        &own,
        &inventory,
    )
    .unwrap();
    assert_eq!(p.burned, vec![gbtc(1_000)]);
    let now = UnixTime(1_000);
    let ctx = Ctx {
        now,
        server: &info,
        relay: &relay,
        timing: Timing::default(),
    };
    let prepared = prepare(&p, &ctx).unwrap();
    let landed_hint = prepared.hints.iter().find(|h| h.amount == 1_000).unwrap();
    assert_eq!(
        landed_hint.burned, 1_000,
        "the hint says the relay burns it"
    );
    let t = start(
        Start {
            id: SessionId::from_bytes([200; 32]),
            purpose: Purpose::Transfer,
            parties: vec![Party {
                author: alice,
                intent: EventId::from_bytes([30; 32]),
                session: SessionId::from_bytes([200; 32]),
                span: p.spans[0],
                signed: false,
                summary: "land".into(),
                one_step: false,
            }],
            plan: p,
            prepared,
            issued: vec![],
            expires_at: now.plus_secs(900),
        },
        &ctx,
    )
    .unwrap();
    packet_is_the_ledger_change(&t.next);
}
