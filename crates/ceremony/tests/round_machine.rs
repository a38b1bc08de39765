//! Properties of the round-participation machine, driven with ark-core
//! trees built here (a one-node VTXO tree cosigned by the relay alone, one
//! connector leaf):
//! - no forfeit without its replacement: `SubmitForfeits` only when the
//!   tree hangs off the finalization's commitment tx and pays every job;
//! - a round that fails (at any step, by a `batch_failed`, a failed call, a
//!   restart or a bad tree) ends every job as a retry, the job unchanged.

use std::collections::BTreeMap;

use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_ceremony::round::{
    step, Effect, Input, JobInput, JobKind, JobOutput, Participation, Phase, RoundCtx, RoundJob,
    RoundPolicy, Scratch,
};
use ark_relay_core::backends::rounds::{RoundEvent, RoundTerms, TreeChunk};
use ark_relay_core::rounds::RoundEnd;
use ark_relay_core::{PubKey, Sats, UnixTime, VtxoId};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::psbt::raw;
use bitcoin::secp256k1::SecretKey;
use bitcoin::{
    absolute, transaction, Address, Amount, Network, OutPoint, Psbt, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid,
};
use proptest::prelude::*;

struct World {
    server: ServerInfo,
    terms: RoundTerms,
    relay: Keypair,
    cosigner: Keypair,
}

fn kp(b: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[b; 32]).expect("key"),
    )
}

fn world() -> World {
    let signer = kp(1).x_only_public_key().0;
    let forfeit = kp(2).x_only_public_key().0;
    let server = ServerInfo::new(
        signer,
        forfeit,
        RelativeLocktime::seconds(86_528).expect("delay"),
        RelativeLocktime::seconds(86_528).expect("delay"),
        Sats::new(330),
        Network::Regtest,
    );
    let terms = RoundTerms {
        forfeit_address: Address::p2tr(&Secp256k1::new(), forfeit, None, Network::Regtest),
        boarding_exit_delay: 86_528,
        utxo_min_amount: None,
        utxo_max_amount: None,
        session_duration: 10,
        intent_fees: Default::default(),
    };
    World {
        server,
        terms,
        relay: kp(3),
        cosigner: kp(4),
    }
}

impl World {
    fn ctx(&self, now: i64) -> RoundCtx<'_> {
        RoundCtx {
            server: &self.server,
            terms: &self.terms,
            relay: &self.relay,
            cosigner: &self.cosigner,
            now: UnixTime(now),
            policy: RoundPolicy::default(),
        }
    }

    fn relay_pk(&self) -> PubKey {
        PubKey::from_x_only(self.relay.x_only_public_key().0)
    }

    /// A renewal of one relay VTXO to the same key and sats.
    fn job(&self, sats: u64) -> RoundJob {
        let relay = self.relay_pk();
        RoundJob {
            job_id: "renew-1".into(),
            kind: JobKind::InventoryRenew,
            inputs: vec![JobInput::RelayVtxo {
                vtxo: VtxoId::new(Txid::from_byte_array([7; 32]), 1),
                sats: Sats::new(sats),
                tapscripts: self.server.default_vtxo(&relay).to_tapscripts(),
                swept: false,
                assets: vec![],
            }],
            outputs: vec![JobOutput {
                owner: relay,
                sats: Sats::new(sats),
                assets: vec![],
            }],
            delegation: None,
            not_before: UnixTime(0),
        }
    }

    fn relay_script(&self) -> ScriptBuf {
        self.server.default_vtxo(&self.relay_pk()).script_pubkey()
    }
}

fn tx(inputs: Vec<OutPoint>, outputs: Vec<TxOut>, version: i32) -> Transaction {
    Transaction {
        version: transaction::Version(version),
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .into_iter()
            .map(|previous_output| TxIn {
                previous_output,
                sequence: Sequence::MAX,
                ..TxIn::default()
            })
            .collect(),
        output: outputs,
    }
}

fn anchor() -> TxOut {
    ark_relay_ark::script::anchor_output()
}

/// A commitment tx (batch output 0, connector output 1; `salt` changes
/// its txid) and its trees: the VTXO tree pays `pays` to the relay's script.
fn round_txs(w: &World, pays: u64, salt: u8) -> (Psbt, Psbt, Psbt) {
    let commitment = Psbt::from_unsigned_tx(tx(
        vec![OutPoint::new(Txid::from_byte_array([salt; 32]), 0)],
        vec![
            TxOut {
                value: Amount::from_sat(pays),
                script_pubkey: w.relay_script(),
            },
            TxOut {
                value: Amount::from_sat(330),
                script_pubkey: w.relay_script(),
            },
        ],
        2,
    ))
    .expect("psbt");
    let ctxid = commitment.unsigned_tx.compute_txid();
    let mut root = Psbt::from_unsigned_tx(tx(
        vec![OutPoint::new(ctxid, 0)],
        vec![
            TxOut {
                value: Amount::from_sat(pays),
                script_pubkey: w.relay_script(),
            },
            anchor(),
        ],
        3,
    ))
    .expect("psbt");
    let mut key = ark_core::VTXO_COSIGNER_PSBT_KEY.to_vec();
    key.extend_from_slice(&0u32.to_be_bytes());
    root.inputs[0].unknown.insert(
        raw::Key {
            type_value: 0xDE,
            key,
        },
        w.cosigner.public_key().serialize().to_vec(),
    );
    let connector = Psbt::from_unsigned_tx(tx(
        vec![OutPoint::new(ctxid, 1)],
        vec![
            TxOut {
                value: Amount::from_sat(330),
                script_pubkey: w.relay_script(),
            },
            anchor(),
        ],
        3,
    ))
    .expect("psbt");
    (commitment, root, connector)
}

/// Where the scenario interrupts the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    None,
    BatchFailed,
    CallFailed,
    Resumed,
}

/// Runs the round; returns every effect and the final state.
fn run(
    w: &World,
    sats: u64,
    tree_pays: u64,
    same_commitment: bool,
    interrupt: Interrupt,
    at: usize,
) -> (Vec<Effect>, Participation, RoundJob) {
    let job = w.job(sats);
    let mut p = Participation::new("p".into(), vec![job.clone()], UnixTime(1_000));
    let mut scratch = Scratch::new([9; 32]);
    let mut all = Vec::new();
    let (commitment, root, connector) = round_txs(w, tree_pays, 1);
    let (other_commitment, _, _) = round_txs(w, tree_pays, 2);
    let finalization = if same_commitment {
        commitment.clone()
    } else {
        other_commitment
    };
    let rid = "round-1".to_owned();
    let hash = hex::encode(sha256::Hash::hash(b"intent-1").to_byte_array());
    let mut inputs = vec![
        Input::Start,
        Input::Registered {
            job_id: job.job_id.clone(),
            intent_id: "intent-1".into(),
        },
        Input::Event(RoundEvent::BatchStarted {
            round_id: rid.clone(),
            intent_id_hashes: vec![hash],
            batch_expiry: Sequence::from_consensus(
                RelativeLocktime::seconds(86_528)
                    .expect("d")
                    .to_sequence_u32(),
            ),
        }),
        Input::Event(RoundEvent::TreeTx {
            round_id: rid.clone(),
            connector: false,
            chunk: TreeChunk {
                tx: root,
                children: BTreeMap::new(),
            },
        }),
        Input::Event(RoundEvent::TreeSigningStarted {
            round_id: rid.clone(),
            cosigners: vec![w.cosigner.public_key()],
            unsigned_commitment_tx: commitment,
        }),
        // TreeNonces is built from our own SubmitNonces below.
        Input::Tick,
        Input::Event(RoundEvent::TreeTx {
            round_id: rid.clone(),
            connector: true,
            chunk: TreeChunk {
                tx: connector,
                children: BTreeMap::new(),
            },
        }),
        Input::Event(RoundEvent::BatchFinalization {
            round_id: rid.clone(),
            commitment_tx: finalization.clone(),
        }),
        Input::Event(RoundEvent::BatchFinalized {
            round_id: rid.clone(),
            commitment_txid: finalization.unsigned_tx.compute_txid(),
        }),
    ];
    if interrupt != Interrupt::None {
        let i = at % inputs.len();
        let what = match interrupt {
            Interrupt::BatchFailed => Input::Event(RoundEvent::BatchFailed {
                round_id: rid.clone(),
                reason: "test".into(),
            }),
            Interrupt::CallFailed => Input::CallFailed {
                error: "test".into(),
            },
            _ => Input::Resumed,
        };
        inputs.insert(i, what);
        if interrupt == Interrupt::Resumed {
            scratch = Scratch::new([8; 32]);
        }
    }
    let mut pending: std::collections::VecDeque<Input> = inputs.into();
    while let Some(mut input) = pending.pop_front() {
        if matches!(input, Input::Tick) {
            // Stand for the server: echo our nonces back as the node's nonces.
            let ours = all.iter().rev().find_map(|e| match e {
                Effect::SubmitNonces { nonces, .. } => Some(nonces.clone()),
                _ => None,
            });
            if let Some(nonces) = ours {
                let (txid, nonce) = nonces.into_iter().next().expect("one node");
                input = Input::Event(RoundEvent::TreeNonces {
                    round_id: rid.clone(),
                    txid,
                    nonces: BTreeMap::from([(w.cosigner.x_only_public_key().0, nonce)]),
                });
            }
        }
        if matches!(input, Input::Resumed) {
            scratch = Scratch::new([8; 32]);
        }
        let t = step(&p, &mut scratch, input, &w.ctx(1_010));
        all.extend(t.effects);
        p = t.next;
        let json = serde_json::to_string(&p).expect("persist");
        let back: Participation = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, p, "the saga persists and reads back at every step");
    }
    (all, p, job)
}

fn forfeited(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::SubmitForfeits { .. }))
}

#[test]
fn an_honest_round_forfeits_once_and_ends_done() {
    let w = world();
    let (effects, p, _) = run(&w, 10_000, 10_000, true, Interrupt::None, 0);
    assert!(forfeited(&effects), "{effects:#?}");
    assert!(matches!(p.phase, Phase::Finalized { .. }), "{:?}", p.phase);
    let Some(Effect::End { ends }) = effects.last() else {
        panic!("no end: {effects:#?}")
    };
    assert!(matches!(ends[0].1, RoundEnd::Finalized { .. }));
    assert_eq!(p.created.len(), 1, "the new VTXO is recorded");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_forfeit_without_its_replacement_and_failures_retry_the_same_job(
        sats in 1_000u64..50_000,
        short in prop_oneof![Just(0u64), 1u64..500],
        same_commitment in any::<bool>(),
        interrupt in prop_oneof![
            Just(Interrupt::None),
            Just(Interrupt::BatchFailed),
            Just(Interrupt::CallFailed),
            Just(Interrupt::Resumed),
        ],
        at in 0usize..12,
    ) {
        let w = world();
        let pays = sats - short;
        let (effects, p, job) = run(&w, sats, pays, same_commitment, interrupt, at);
        if forfeited(&effects) {
            prop_assert_eq!(short, 0, "forfeited for a tree that does not pay the job");
            prop_assert!(same_commitment, "forfeited for another commitment tx");
        }
        if short != 0 || !same_commitment {
            prop_assert!(!forfeited(&effects));
            let finalized = matches!(p.phase, Phase::Finalized { .. });
            prop_assert!(!finalized, "finalized without its outputs");
        }
        prop_assert!(p.phase.is_final(), "every scenario ends: {:?}", p.phase);
        let ends: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::End { ends } => Some(ends.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(ends.len(), 1, "one end");
        if let Phase::Failed { .. } = p.phase {
            let retry = matches!(ends[0][0].1, RoundEnd::Retry { .. } | RoundEnd::Requeue { .. });
            prop_assert!(retry, "{:?}", ends);
            prop_assert_eq!(&p.entries[0].job, &job, "the retried job is unchanged");
        }
    }
}

/// A one-node tree whose leaf pays `pays` sats to the relay, with `packet`
/// (a leaf packet's bytes) as its extension output when given.
fn coloured_tree(
    w: &World,
    pays: u64,
    packet: Option<&[u8]>,
) -> (bitcoin::Txid, ark_core::TxGraph) {
    let (commitment, _, _) = round_txs(w, pays, 9);
    let ctxid = commitment.unsigned_tx.compute_txid();
    let mut outputs = vec![TxOut {
        value: Amount::from_sat(pays),
        script_pubkey: w.relay_script(),
    }];
    if let Some(p) = packet {
        outputs.push(ark_core::extension::packet_txout(0, p));
    }
    outputs.push(anchor());
    let leaf = Psbt::from_unsigned_tx(tx(vec![OutPoint::new(ctxid, 0)], outputs, 3)).expect("psbt");
    let graph = ark_core::TxGraph::new(vec![ark_core::TxGraphChunk {
        txid: Some(leaf.unsigned_tx.compute_txid()),
        tx: leaf,
        children: std::collections::HashMap::new(),
    }])
    .expect("graph");
    (ctxid, graph)
}

/// A leaf packet giving output 0 `amount` units of asset `[0x11; 32]:1`.
fn leaf_packet(amount: u8) -> (String, Vec<u8>) {
    let mut b = vec![0x01, 0x01];
    b.extend_from_slice(&[0x11; 32]);
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&[0x01, 0x02]);
    b.extend_from_slice(&[0xab; 32]);
    b.extend_from_slice(&[0x00, 0x00, 0x00]);
    b.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, amount]);
    let id = ark_relay_ark::asset::ArkadeAssetId {
        txid: bitcoin::Txid::from_byte_array([0x11; 32]),
        group_index: 1,
    };
    (id.to_string(), b)
}

#[test]
fn the_tree_must_give_a_coloured_output_its_assets() {
    use ark_relay_ceremony::round::crypto::{tree_pays, Required};
    let w = world();
    let (id, packet) = leaf_packet(5);
    let want = |assets: Vec<(String, u64)>| {
        vec![Required {
            txout: TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: w.relay_script(),
            },
            assets,
        }]
    };
    let (c, coloured) = coloured_tree(&w, 1_000, Some(&packet));
    assert!(tree_pays(&coloured, c, &want(vec![(id.clone(), 5)])).is_ok());
    // Same sats and script, but the replacement would lose or change the asset.
    let (c, bare) = coloured_tree(&w, 1_000, None);
    assert!(tree_pays(&bare, c, &want(vec![(id.clone(), 5)])).is_err());
    let (_, fewer) = leaf_packet(4);
    let (c, short) = coloured_tree(&w, 1_000, Some(&fewer));
    assert!(tree_pays(&short, c, &want(vec![(id, 5)])).is_err());
    // And an uncoloured output is not paid by a coloured one.
    let (c, coloured) = coloured_tree(&w, 1_000, Some(&packet));
    assert!(tree_pays(&coloured, c, &want(vec![])).is_err());
}
