//! The harness of the ceremony's property tests: a model of the engine's
//! runner (state and local effects persist together) against a model of
//! arkd that checks every signature it is given, random wallet behaviours
//! and crashes, and the end-of-run checks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub use std::collections::btree_map::Entry;
pub use std::collections::{BTreeMap, BTreeSet, VecDeque};
pub use std::str::FromStr;

pub use ark_relay_ark::asset::{arkade_id, input_assets, output_assets, tx_packet};
pub use ark_relay_ark::{
    is_fully_signed, missing_signers, sign_psbt, sign_sighash, RelativeLocktime, ServerInfo,
};
pub use ark_relay_ceremony::{
    plan, prepare, start, step, Answer, Ceremony, Ctx, Effect, Input, Party, PartyRequest, Payment,
    Phase, PlanRequest, Purpose, Start, Timing,
};
pub use ark_relay_core::backends::ark::SubmittedTx;
pub use ark_relay_core::{
    AssetAmount, AssetId, Colour, ErrorCode, EventId, PubKey, Sats, SessionId, UnixTime, Vtxo,
    VtxoId, VtxoStatus,
};
pub use ark_relay_protocol::content::{SignatureEntry, SigningChallenge};
pub use ark_relay_protocol::Rejection;
pub use bitcoin::hashes::Hash;
pub use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
pub use bitcoin::{Network, Psbt, TapSighash, Txid};
pub use proptest::prelude::*;

mod arkd;
pub use arkd::Arkd;

pub fn keypair(n: u8) -> Keypair {
    Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[n; 32]).unwrap())
}

pub fn pubkey(k: &Keypair) -> PubKey {
    PubKey::from_x_only(k.x_only_public_key().0)
}

pub fn server_info(server: &Keypair) -> ServerInfo {
    ServerInfo::new(
        server.x_only_public_key().0,
        keypair(99).x_only_public_key().0,
        RelativeLocktime::seconds(512 * 10).unwrap(),
        RelativeLocktime::seconds(512 * 2).unwrap(),
        Sats::new(330),
        Network::Regtest,
    )
}

pub fn vtxo(
    server: &ServerInfo,
    n: u8,
    owner: PubKey,
    sats: u64,
    colour: Option<Colour>,
    status: VtxoStatus,
) -> Vtxo {
    Vtxo {
        id: VtxoId::new(Txid::from_byte_array([n; 32]), 0),
        owner,
        sats: Sats::new(sats),
        colour,
        status,
        tapscripts: server.default_vtxo(&owner).to_tapscripts(),
        locked_by: None,
        spent_by: None,
        created_at: UnixTime(0),
        spent_at: None,
        expires_at: Some(UnixTime(1_000_000)),
    }
}

pub fn gbtc(amount: u64) -> Colour {
    Colour {
        asset: AssetId::from_bytes([7; 32]),
        amount: AssetAmount::new(amount),
    }
}

/// How a wallet answers one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Valid,
    BadSignature,
    Reject,
    Silent,
    /// Answers after the step deadline.
    Late,
    /// Answers twice.
    Duplicate,
    /// Answers the next step before this one (then validly).
    OutOfOrder,
    /// Answers badly, then validly (step 2: the session stays answerable).
    BadThenValid,
}

pub fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        6 => Just(Behaviour::Valid),
        1 => Just(Behaviour::BadSignature),
        1 => Just(Behaviour::Reject),
        1 => Just(Behaviour::Silent),
        1 => Just(Behaviour::Late),
        1 => Just(Behaviour::Duplicate),
        1 => Just(Behaviour::OutOfOrder),
        1 => Just(Behaviour::BadThenValid),
    ]
}

/// Where the runner "dies" while processing one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    None,
    /// Before the transition is persisted (the job is redelivered).
    BeforePersist,
    /// After it is persisted, before its remote effect.
    BeforeRemote,
    /// After the remote effect, before its outcome is fed back.
    AfterRemote,
}

pub fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        8 => Just(Crash::None),
        1 => Just(Crash::BeforePersist),
        1 => Just(Crash::BeforeRemote),
        1 => Just(Crash::AfterRemote),
    ]
}

/// The engine's runner, modelled: state and local effects persist together.
pub struct World {
    pub server: Keypair,
    pub info: ServerInfo,
    pub relay: Keypair,
    pub wallets: Vec<Keypair>,
    pub state: Ceremony,
    pub now: UnixTime,
    pub arkd: Arkd,
    /// Outbox by dedupe key (dedupe as the store does).
    pub outbox: BTreeMap<String, Effect>,
    pub locks_held: bool,
    pub commits: u32,
    pub handed_over: u32,
    /// Intent-answering notices and confirmations, in order.
    pub answers: Vec<(EventId, &'static str, Option<u16>)>,
}

impl World {
    pub fn ctx(&self) -> (UnixTime, Timing) {
        (self.now, Timing::default())
    }

    /// Runs one job: `input`, then every remote effect's outcome; `crash` may cut it.
    pub fn run(&mut self, input: Input, crash: Crash) -> bool {
        let mut input = input;
        loop {
            let (now, timing) = self.ctx();
            let ctx = Ctx {
                now,
                server: &self.info,
                relay: &self.relay,
                timing,
            };
            let t = step(&self.state, input, &ctx).expect("step");
            if crash == Crash::BeforePersist && t.changed(&self.state) {
                return false;
            }
            self.persist(&t.next, &t.effects);
            let Some(remote) = t.remote().cloned() else {
                return true;
            };
            if crash == Crash::BeforeRemote {
                return true;
            }
            input = match remote {
                Effect::Submit {
                    ark_tx,
                    checkpoints,
                } => self.arkd.submit(&self.server, &ark_tx, &checkpoints),
                Effect::FindPending { ark_txid } => self.arkd.find(&ark_txid),
                Effect::Finalize {
                    ark_txid,
                    checkpoints,
                } => self.arkd.finalize(&ark_txid, &checkpoints),
                Effect::Commit(l2) => {
                    assert_eq!(l2.ark_txid, self.state.ark_txid);
                    assert!(
                        self.arkd.finalized.contains(&l2.ark_txid),
                        "commit before FinalizeTx"
                    );
                    if self.locks_held {
                        self.commits += 1;
                        self.locks_held = false; // the commit consumes the locks
                    }
                    Input::Committed
                }
                Effect::HandOver(_) => {
                    self.handed_over += 1;
                    Input::HandedOver
                }
                other => panic!("not remote: {other:?}"),
            };
            if crash == Crash::AfterRemote {
                return true;
            }
        }
    }

    pub fn persist(&mut self, next: &Ceremony, effects: &[Effect]) {
        let n = effects.iter().filter(|e| !e.is_local()).count();
        assert!(n <= 1, "at most one remote effect per transition");
        if let Some(last) = effects.last() {
            if n == 1 {
                assert!(!last.is_local(), "the remote effect comes last");
            }
        }
        for e in effects.iter().filter(|e| e.is_local()) {
            match e {
                Effect::Challenge { dedupe_key, .. } => {
                    self.outbox.entry(dedupe_key.clone()).or_insert(e.clone());
                }
                Effect::Notify {
                    answered,
                    rejection,
                    ..
                } => {
                    let key = format!("31341:{answered}");
                    if let Entry::Vacant(v) = self.outbox.entry(key) {
                        v.insert(e.clone());
                        self.answers
                            .push((*answered, "31341", Some(rejection.code.code())));
                    }
                }
                Effect::Confirm { confirmation, .. } => {
                    let key = format!("31340:{}", confirmation.ark_txid);
                    if let Entry::Vacant(v) = self.outbox.entry(key) {
                        v.insert(e.clone());
                        for i in &confirmation.intents {
                            self.answers.push((*i, "31340", None));
                        }
                    }
                }
                Effect::ReleaseLocks => {
                    assert!(
                        matches!(next.phase, Phase::Failed { .. }),
                        "locks are released only by a failure before SubmitTx"
                    );
                    assert!(
                        !self.arkd.accepted.contains_key(&next.ark_txid),
                        "released inputs arkd holds"
                    );
                    self.locks_held = false;
                }
                _ => unreachable!(),
            }
        }
        if matches!(next.phase, Phase::Failed { .. }) {
            assert!(
                !self.locks_held,
                "a failed session holds no lock after its own transition"
            );
        }
        self.state = next.clone();
    }

    /// The latest challenge of `party` for `step`, if sent.
    pub fn challenge(&self, party: usize, step: u32) -> Option<SigningChallenge> {
        let session = self.state.parties[party].session;
        self.outbox
            .values()
            .filter_map(|e| match e {
                Effect::Challenge { challenge, .. }
                    if challenge.session_id == session && challenge.step == step =>
                {
                    Some(challenge.clone())
                }
                _ => None,
            })
            .next_back()
    }

    pub fn answer(
        &self,
        party: usize,
        step: u32,
        valid: bool,
        reject: bool,
        n: u8,
    ) -> Option<Input> {
        let ch = self.challenge(party, step)?;
        let key = &self.wallets[party];
        let answer = if reject {
            Answer::Reject("outputs do not match my intent".into())
        } else {
            Answer::Signatures(
                ch.payload_to_sign
                    .sign
                    .iter()
                    .map(|r| {
                        let sig = if valid {
                            let h = TapSighash::from_str(&r.sighash).unwrap();
                            sign_sighash(&h, key).to_string()
                        } else {
                            "00".repeat(64)
                        };
                        SignatureEntry {
                            psbt_index: r.psbt_index,
                            input_index: r.input_index,
                            sig,
                        }
                    })
                    .collect(),
            )
        };
        Some(Input::Answer {
            session: self.state.parties[party].session,
            step,
            event: EventId::from_bytes([party as u8 * 16 + step as u8 * 4 + n; 32]),
            received_at: self.now,
            nip04: false,
            answer,
        })
    }
}

pub fn setup(n_parties: usize) -> World {
    setup_with(n_parties, &[])
}

/// [`setup`], with party `i` asking for one-step signing if `one_step[i]`.
pub fn setup_with(n_parties: usize, one_step: &[bool]) -> World {
    let server = keypair(100);
    let info = server_info(&server);
    let relay = keypair(101);
    let relay_key = pubkey(&relay);
    let wallets: Vec<Keypair> = (0..n_parties).map(|i| keypair(1 + i as u8)).collect();
    let keys: Vec<PubKey> = wallets.iter().map(pubkey).collect();
    let outsider = pubkey(&keypair(50));
    let mut requests = Vec::new();
    let mut vtxos = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let to = if n_parties > 1 {
            keys[(i + 1) % n_parties]
        } else {
            outsider
        };
        let fee = Payment {
            fee: true,
            ..Payment::to(relay_key, gbtc(10))
        };
        requests.push(
            PartyRequest::paying(*k, vec![Payment::to(to, gbtc(100 + i as u64)), fee], None)
                .unwrap(),
        );
        vtxos.push(vec![vtxo(
            &info,
            10 + i as u8,
            *k,
            330,
            Some(gbtc(1_000)),
            VtxoStatus::Assigned,
        )]);
    }
    let issue = [Payment::to(outsider, gbtc(500))];
    let inventory = vec![
        vtxo(&info, 90, relay_key, 5_000, None, VtxoStatus::Available),
        vtxo(&info, 91, relay_key, 2_000, None, VtxoStatus::Available),
    ];
    let req = PlanRequest {
        parties: &requests,
        relay_pays: if n_parties == 0 { &issue } else { &[] },
        relay: relay_key,
        dust: Sats::new(330),
        control: None,
    };
    let p = plan(&req, &vtxos, &inventory).expect("plan");
    let id = SessionId::from_bytes([200; 32]);
    let purpose = match n_parties {
        0 => Purpose::Issue {
            kind: "lift".into(),
        },
        1 => Purpose::Transfer,
        _ => Purpose::Batch {
            request: EventId::from_bytes([201; 32]),
            submitter: keys[0],
            batch_id: "b".into(),
            nip04: false,
        },
    };
    let parties: Vec<Party> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Party {
            author: *k,
            intent: EventId::from_bytes([30 + i as u8; 32]),
            session: if n_parties == 1 {
                id
            } else {
                SessionId::from_bytes([30 + i as u8; 32])
            },
            span: p.spans[i],
            signed: false,
            summary: format!("party {i} pays"),
            one_step: one_step.get(i).copied().unwrap_or(false),
        })
        .collect();
    let now = UnixTime(1_000);
    let ctx = Ctx {
        now,
        server: &info,
        relay: &relay,
        timing: Timing::default(),
    };
    let prepared = prepare(&p, &ctx).expect("prepare");
    let issued = if n_parties == 0 {
        vec![gbtc(500)]
    } else {
        vec![]
    };
    let t = start(
        Start {
            id,
            purpose,
            parties,
            plan: p,
            prepared,
            issued,
            expires_at: now.plus_secs(900),
        },
        &ctx,
    )
    .expect("start");
    let placeholder = t.next.clone();
    let mut w = World {
        server,
        info,
        relay,
        wallets,
        state: placeholder,
        now,
        arkd: Arkd::default(),
        outbox: BTreeMap::new(),
        locks_held: true,
        commits: 0,
        handed_over: 0,
        answers: vec![],
    };
    // The start transition itself, through the same runner path.
    w.persist(&t.next, &t.effects);
    if let Some(Effect::Submit {
        ark_tx,
        checkpoints,
    }) = t.remote().cloned()
    {
        let outcome = w.arkd.submit(&w.server, &ark_tx, &checkpoints);
        w.run(outcome, Crash::None);
    }
    w
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub parties: usize,
    /// Which parties ask for one-step signing (checkpoints in step 1).
    pub one_step: Vec<bool>,
    pub step1: Vec<Behaviour>,
    pub step2: Vec<Behaviour>,
    pub crashes: Vec<Crash>,
    pub gaps: Vec<u8>,
}

pub fn scenario() -> impl Strategy<Value = Scenario> {
    (0usize..=3).prop_flat_map(|n| {
        (
            Just(n),
            proptest::collection::vec(any::<bool>(), n),
            proptest::collection::vec(behaviour(), n),
            proptest::collection::vec(behaviour(), n),
            proptest::collection::vec(crash(), 24),
            proptest::collection::vec(0u8..40, 24),
        )
            .prop_map(
                |(parties, one_step, step1, step2, crashes, gaps)| Scenario {
                    parties,
                    one_step,
                    step1,
                    step2,
                    crashes,
                    gaps,
                },
            )
    })
}

/// Queues party `who.0`'s `n`-th answer to step `who.1`, once, if its challenge arrived.
pub fn act(
    acted: &mut BTreeSet<(usize, u32, u8)>,
    who: (usize, u32),
    n: u8,
    valid: bool,
    reject: bool,
    w: &World,
    q: &mut VecDeque<Input>,
) {
    let (party, step) = who;
    if acted.contains(&(party, step, n)) {
        return;
    }
    if let Some(a) = w.answer(party, step, valid, reject, n) {
        acted.insert((party, step, n));
        q.push_back(a);
    }
}

/// Plays `s`: each round, every party acts on its latest challenge per its
/// behaviour; jobs may crash (answers are redelivered); time moves on.
pub fn play(s: &Scenario) -> World {
    let mut w = setup_with(s.parties, &s.one_step);
    let mut crashes = s.crashes.iter().copied().cycle();
    let mut queue: VecDeque<Input> = VecDeque::new();
    let mut acted: BTreeSet<(usize, u32, u8)> = BTreeSet::new();
    for round in 0..s.gaps.len() {
        for party in 0..s.parties {
            for step in [1u32, 2] {
                let b = if step == 1 {
                    s.step1[party]
                } else {
                    s.step2[party]
                };
                let deadline_passed = match w.state.phase {
                    Phase::ArkTxPrepared { deadline }
                    | Phase::CheckpointTxsPrepared { deadline } => w.now > deadline,
                    _ => false,
                };
                match b {
                    Behaviour::Valid => {
                        act(&mut acted, (party, step), 0, true, false, &w, &mut queue)
                    }
                    Behaviour::BadSignature => {
                        act(&mut acted, (party, step), 0, false, false, &w, &mut queue)
                    }
                    Behaviour::Reject => {
                        act(&mut acted, (party, step), 0, true, true, &w, &mut queue)
                    }
                    Behaviour::Silent => {}
                    Behaviour::Late if deadline_passed || round > 20 => {
                        act(&mut acted, (party, step), 0, true, false, &w, &mut queue)
                    }
                    Behaviour::Late => {}
                    Behaviour::Duplicate => {
                        act(&mut acted, (party, step), 0, true, false, &w, &mut queue);
                        act(&mut acted, (party, step), 1, true, false, &w, &mut queue);
                    }
                    Behaviour::OutOfOrder => {
                        if step == 1 {
                            // Answer step 2 with step 1's challenge first.
                            if let Some(Input::Answer {
                                session,
                                event,
                                received_at,
                                nip04,
                                answer,
                                ..
                            }) = w.answer(party, 1, true, false, 2)
                            {
                                if acted.insert((party, 2, 9)) {
                                    queue.push_back(Input::Answer {
                                        session,
                                        step: 2,
                                        event,
                                        received_at,
                                        nip04,
                                        answer,
                                    });
                                }
                            }
                        }
                        act(&mut acted, (party, step), 0, true, false, &w, &mut queue);
                    }
                    Behaviour::BadThenValid => {
                        act(&mut acted, (party, step), 0, false, false, &w, &mut queue);
                        if acted.contains(&(party, step, 0)) && round % 2 == 1 {
                            act(&mut acted, (party, step), 1, true, false, &w, &mut queue);
                        }
                    }
                }
            }
        }
        while let Some(input) = queue.pop_front() {
            let c = crashes.next().unwrap_or(Crash::None);
            if !w.run(input.clone(), c) {
                queue.push_back(input); // redelivered
                if queue.len() > 64 {
                    break;
                }
            }
        }
        w.now = w.now.plus_secs(i64::from(s.gaps[round]));
        let c = crashes.next().unwrap_or(Crash::None);
        w.run(Input::Tick, c);
    }
    // Drain: deliver what is left, then let time run out without crashes.
    while let Some(input) = queue.pop_front() {
        w.run(input, Crash::None);
    }
    for _ in 0..12 {
        w.now = w.now.plus_secs(400);
        w.run(Input::Tick, Crash::None);
    }
    w
}

pub fn check(s: &Scenario, w: &World) {
    let c = &w.state;
    assert!(
        c.phase.is_terminal(),
        "ends terminal: {:?} in {s:?}",
        c.phase
    );
    let (ins, outs) = ark_relay_ceremony::colour_balance(c);
    assert_eq!(ins, outs, "colour conserved per asset");
    packet_is_the_ledger_change(c);
    for (txid, n) in &w.arkd.accepted {
        assert_eq!(*n, 1, "arkd accepted {txid} {n} times");
    }
    assert!(w.commits <= 1, "committed {} times", w.commits);
    match &c.phase {
        Phase::Completed => {
            assert!(w.arkd.finalized.contains(&c.ark_txid));
            assert_eq!(w.commits, 1);
            assert!(!w.locks_held);
        }
        Phase::Failed { .. } => {
            assert!(!w.locks_held, "a failed ceremony released its locks");
            assert!(!w.arkd.accepted.contains_key(&c.ark_txid), "nothing moved");
        }
        Phase::Stranded { .. } => {
            assert!(w.locks_held, "arkd holds the inputs: the locks stay");
            assert!(w.arkd.accepted.contains_key(&c.ark_txid));
        }
        other => panic!("not terminal: {other:?}"),
    }
    if s.parties == 0 {
        assert!(
            matches!(c.phase, Phase::Completed),
            "the relay alone always completes: {:?}",
            c.phase
        );
    }
    for (i, p) in c.parties.iter().enumerate() {
        if p.one_step {
            assert!(
                w.challenge(i, 2).is_none(),
                "a one-step party gets no step-2 challenge"
            );
        }
        let answers: Vec<_> = w
            .answers
            .iter()
            .filter(|(e, _, _)| *e == p.intent)
            .collect();
        let notices = answers.iter().filter(|a| a.1 == "31341").count();
        let confirms = answers.iter().filter(|a| a.1 == "31340").count();
        assert!(
            notices <= 1 && confirms <= 1,
            "one answer per intent: {answers:?}"
        );
        assert!(
            notices + confirms >= 1,
            "every intent is answered: {s:?} {:?}",
            c.phase
        );
        if notices == 1 && confirms == 1 {
            let code = answers.iter().find(|a| a.1 == "31341").and_then(|a| a.2);
            assert!(
                code == Some(5001) || code == Some(3002),
                "only a stranded session completes after a 31341: {code:?}"
            );
            assert_eq!(answers[0].1, "31341");
        }
        match c.phase {
            Phase::Completed => assert_eq!(confirms, 1),
            _ => assert_eq!(notices, 1),
        }
    }
}

/// The packet in the ark tx assigns each output exactly the colour the ledger
/// records for it, lists each input's whole colour, and differs per asset by
/// exactly what the ceremony issues minus what it burns.
pub fn packet_is_the_ledger_change(c: &Ceremony) {
    let tx = &c.ark_tx.unsigned_tx;
    let (vout, packet) = tx_packet(tx)
        .expect("the packet decodes as arkd decodes it")
        .expect("a coloured ark tx carries a packet");
    assert_eq!(vout, c.outputs.len(), "packet after the VTXO outputs");
    assert_eq!(tx.output.len(), c.outputs.len() + 2, "then only the anchor");
    let by_out = output_assets(c.ark_txid, &packet);
    for (j, o) in c.outputs.iter().enumerate() {
        let want: Vec<_> = o
            .colour
            .map(|col| (arkade_id(&col.asset), col.amount.get()))
            .into_iter()
            .collect();
        let got = by_out.get(&(j as u32)).cloned().unwrap_or_default();
        assert_eq!(got, want, "output {j}'s colour");
    }
    let by_in = input_assets(&packet);
    for (i, v) in c.inputs.iter().enumerate() {
        let want: Vec<_> = v
            .colour
            .map(|col| (arkade_id(&col.asset), col.amount.get()))
            .into_iter()
            .collect();
        assert_eq!(by_in.get(&(i as u32)).cloned().unwrap_or_default(), want);
    }
    let mut delta: BTreeMap<String, i128> = BTreeMap::new();
    for g in &packet.groups {
        let id = g
            .asset_id
            .expect("the relay only moves existing assets")
            .to_string();
        let d = delta.entry(id).or_default();
        *d += g.outputs.iter().map(|o| i128::from(o.amount)).sum::<i128>();
        *d -= g.inputs.iter().map(|i| i128::from(i.amount)).sum::<i128>();
    }
    let mut want: BTreeMap<String, i128> = BTreeMap::new();
    for col in &c.issued {
        *want.entry(arkade_id(&col.asset).to_string()).or_default() += i128::from(col.amount.get());
    }
    for col in &c.burned {
        *want.entry(arkade_id(&col.asset).to_string()).or_default() -= i128::from(col.amount.get());
    }
    want.retain(|_, v| *v != 0);
    delta.retain(|_, v| *v != 0);
    assert_eq!(delta, want, "packet's net movement = issued - burned");
}
