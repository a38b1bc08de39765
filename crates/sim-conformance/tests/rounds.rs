//! Batch rounds of the arkd simulator driven step by step with ark-core 0.12's
//! own building blocks (intent proofs, MuSig2 nonce trees and partial
//! signatures, forfeits) over `ark-grpc`, so that a participant can misbehave:
//! refusals carry arkd's error names, a participant that withholds its tree
//! signature fails the round (`batch_failed`) and the next round succeeds
//! without it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use ark_core::batch::{
    aggregate_nonces, create_and_sign_forfeit_txs, generate_nonce_tree, sign_batch_tree_tx,
};
use ark_core::intent::{self, IntentMessage};
use ark_core::server::{BatchTreeEventType, PartialSigTree, StreamEvent};
use ark_core::TxGraph;
use ark_relay_ark::VtxoScript;
use ark_relay_core::{PubKey, Sats};
use ark_relay_sim::arkd::round::fees::FeePrograms;
use ark_relay_sim::arkd::SimVtxo;
use ark_relay_sim::{ArkdSim, ArkdSimConfig, Chain, RoundConfig, SimServer};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::{schnorr, Message, SecretKey};
use bitcoin::{OutPoint, Sequence, TxOut, Txid, XOnlyPublicKey};
use futures::StreamExt;
use rand::SeedableRng;

struct Sim {
    sim: ArkdSim,
    server: SimServer,
    client: ark_grpc::Client,
    info: ark_core::server::Info,
}

/// A simulator whose rounds start only on `start_round` (registration window
/// of an hour), with short phase timeouts.
async fn start(phase_timeout: Duration) -> anyhow::Result<Sim> {
    start_with(RoundConfig {
        phase_timeout,
        ..RoundConfig::default()
    })
    .await
}

/// Like [`start`], with `round`'s other settings (fee programs).
async fn start_with(round: RoundConfig) -> anyhow::Result<Sim> {
    let config = ArkdSimConfig {
        round: RoundConfig {
            registration: Duration::from_secs(3600),
            ..round
        },
        ..ArkdSimConfig::default()
    };
    let sim = ArkdSim::with_chain(config, Chain::default())?;
    let server = sim.clone().spawn(0).await?;
    let mut client = ark_grpc::Client::new(server.url());
    client.connect().await?;
    let info = client.get_info().await?;
    Ok(Sim {
        sim,
        server,
        client,
        info,
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The owner of one funded VTXO, with an ephemeral cosigner key.
struct Owner {
    kp: Keypair,
    cosigner: Keypair,
    vtxo: SimVtxo,
    script: VtxoScript,
}

fn keypair(seed: u8) -> anyhow::Result<Keypair> {
    Ok(Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[seed; 32])?,
    ))
}

fn owner(s: &Sim, seed: u8, sats: u64) -> anyhow::Result<Owner> {
    let kp = keypair(seed)?;
    let x = kp.x_only_public_key().0;
    let vtxo = s.sim.fund(&PubKey::from_x_only(x), Sats::new(sats));
    let script = s.sim.server_info().default_vtxo(&PubKey::from_x_only(x));
    Ok(Owner {
        kp,
        cosigner: keypair(seed.wrapping_add(100))?,
        vtxo,
        script,
    })
}

impl Owner {
    fn input(&self, signer: &XOnlyPublicKey) -> anyhow::Result<intent::Input> {
        let leaf = self
            .script
            .collaborative_leaf(&self.kp.x_only_public_key().0, signer)
            .context("collaborative leaf")?
            .clone();
        let control = self.script.control_block(&leaf)?;
        Ok(intent::Input::new(
            self.vtxo.outpoint,
            Sequence::MAX,
            None,
            TxOut {
                value: bitcoin::Amount::from_sat(self.vtxo.amount),
                script_pubkey: self.vtxo.script.clone(),
            },
            self.script.leaves().to_vec(),
            (leaf, control),
            false,
            false,
            Vec::new(),
        ))
    }

    /// A register intent settling the VTXO back to its owner, signed by `signer`.
    fn intent(
        &self,
        server_signer: &XOnlyPublicKey,
        signer: &Keypair,
        expire_at: u64,
    ) -> anyhow::Result<intent::Intent> {
        self.intent_paying(server_signer, signer, expire_at, 0)
    }

    /// Like [`Self::intent`], leaving `fee` sats to the server.
    fn intent_paying(
        &self,
        server_signer: &XOnlyPublicKey,
        signer: &Keypair,
        expire_at: u64,
        fee: u64,
    ) -> anyhow::Result<intent::Intent> {
        let out = intent::Output::Offchain(TxOut {
            value: bitcoin::Amount::from_sat(self.vtxo.amount - fee),
            script_pubkey: self.vtxo.script.clone(),
        });
        let message = IntentMessage::Register {
            onchain_output_indexes: Vec::new(),
            valid_at: now(),
            expire_at,
            own_cosigner_pks: vec![self.cosigner.public_key()],
        };
        let owner_pk = self.kp.x_only_public_key().0;
        let signer = *signer;
        Ok(intent::make_intent(
            move |_, msg| Ok(vec![(sign(&signer, &msg), owner_pk)]),
            |_, _| Err(ark_core::Error::ad_hoc("no onchain inputs")),
            vec![self.input(server_signer)?],
            vec![out],
            message,
        )?)
    }

    fn topics(&self) -> Vec<String> {
        vec![
            self.vtxo.outpoint.to_string(),
            hex::encode(self.cosigner.public_key().serialize()),
        ]
    }
}

fn sign(kp: &Keypair, msg: &Message) -> schnorr::Signature {
    Secp256k1::new().sign_schnorr_no_aux_rand(msg, kp)
}

fn signer(s: &Sim) -> XOnlyPublicKey {
    s.info.signer_pk.x_only_public_key().0
}

/// How a participant behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Honest,
    WithholdSignatures,
    BadSignature,
    WrongConnector,
}

#[derive(Debug)]
enum Outcome {
    Finalized(Txid),
    Failed(String),
    Refused(String),
}

type Events =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<StreamEvent, ark_grpc::Error>> + Send>>;

async fn subscribe(s: &Sim, o: &Owner) -> anyhow::Result<Events> {
    Ok(Box::pin(s.client.get_event_stream(o.topics()).await?))
}

/// Plays one participant of the next round (ark-client's `join_next_batch`
/// state machine, trimmed), misbehaving as `mode` says.
async fn participate(
    client: ark_grpc::Client,
    info: ark_core::server::Info,
    o: &Owner,
    intent_id: String,
    mut events: Events,
    mode: Mode,
) -> anyhow::Result<Outcome> {
    let hash = hex::encode(sha256::Hash::hash(intent_id.as_bytes()).to_byte_array());
    let mut batch: Option<(String, Sequence)> = None;
    let mut vtxo_chunks = Vec::new();
    let mut connector_chunks = Vec::new();
    let mut graph: Option<TxGraph> = None;
    let mut commitment = None;
    let mut nonces = None;
    let mut agg = std::collections::HashMap::new();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let forfeit_pk = info.forfeit_pk.x_only_public_key().0;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .context("no batch event within 30 s")?
            .context("stream closed")??;
        match event {
            StreamEvent::BatchStarted(e)
                if e.intent_id_hashes.contains(&hash) && batch.is_none() =>
            {
                client.confirm_registration(intent_id.clone()).await?;
                batch = Some((e.id, e.batch_expiry));
            }
            StreamEvent::TreeTx(e) => match e.batch_tree_event_type {
                BatchTreeEventType::Vtxo => vtxo_chunks.push(e.tx_graph_chunk),
                BatchTreeEventType::Connector => connector_chunks.push(e.tx_graph_chunk),
            },
            StreamEvent::TreeSigningStarted(e) => {
                let g = TxGraph::new(std::mem::take(&mut vtxo_chunks))?;
                let tree = generate_nonce_tree(
                    &mut rng,
                    &g,
                    o.cosigner.public_key(),
                    &e.unsigned_commitment_tx,
                )?;
                client
                    .submit_tree_nonces(&e.id, o.cosigner.public_key(), tree.to_nonce_pks())
                    .await?;
                graph = Some(g);
                nonces = Some(tree);
                commitment = Some(e.unsigned_commitment_tx);
            }
            StreamEvent::TreeNonces(e) => {
                agg.insert(e.txid, aggregate_nonces(e.nonces));
                let (Some(g), Some((id, expiry)), Some(c), Some(n)) = (
                    graph.as_ref(),
                    batch.as_ref(),
                    commitment.as_ref(),
                    nonces.as_mut(),
                ) else {
                    bail!("tree nonces before signing started");
                };
                if agg.len() < g.nb_of_nodes() || mode == Mode::WithholdSignatures {
                    continue;
                }
                let mut sigs = PartialSigTree::default();
                for txid in g.as_map().keys() {
                    let a = agg.get(txid).context("aggregated nonce")?;
                    let s =
                        sign_batch_tree_tx(*txid, *expiry, forfeit_pk, &o.cosigner, *a, g, c, n)?;
                    sigs.0.extend(s.0);
                }
                if mode == Mode::BadSignature {
                    for sig in sigs.0.values_mut() {
                        *sig = musig::musig::PartialSignature::from_byte_array(&[7u8; 32])?;
                    }
                }
                if let Err(e) = client
                    .submit_tree_signatures(id, o.cosigner.public_key(), sigs)
                    .await
                {
                    return Ok(Outcome::Refused(e.to_string()));
                }
            }
            StreamEvent::BatchFinalization(e) => {
                let chunks = std::mem::take(&mut connector_chunks);
                let connectors = TxGraph::new(chunks)?;
                let kp = o.kp;
                let mut forfeits = create_and_sign_forfeit_txs(
                    move |_, msg| Ok(vec![(sign(&kp, &msg), kp.x_only_public_key().0)]),
                    &[o.input(&info.signer_pk.x_only_public_key().0)?],
                    &connectors.leaves(),
                    &info.forfeit_address,
                    info.dust,
                )?;
                if mode == Mode::WrongConnector {
                    for f in &mut forfeits {
                        f.unsigned_tx.input[0].previous_output =
                            OutPoint::new(e.commitment_tx.unsigned_tx.compute_txid(), 7);
                    }
                }
                if let Err(e) = client.submit_signed_forfeit_txs(forfeits, None).await {
                    return Ok(Outcome::Refused(e.to_string()));
                }
            }
            StreamEvent::BatchFinalized(e) if batch.as_ref().is_some_and(|(id, _)| *id == e.id) => {
                return Ok(Outcome::Finalized(e.commitment_txid));
            }
            StreamEvent::BatchFailed(e) if batch.as_ref().is_some_and(|(id, _)| *id == e.id) => {
                return Ok(Outcome::Failed(e.reason));
            }
            _ => {}
        }
    }
}

/// Registers `o`'s intent, subscribes, and returns what participating needs.
async fn join(s: &Sim, o: &Owner) -> anyhow::Result<(String, Events)> {
    let i = o.intent(&signer(s), &o.kp, now() + 120)?;
    let id = s.client.register_intent(i).await?;
    Ok((id, subscribe(s, o).await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_arkds_error_names() -> anyhow::Result<()> {
    let s = start(Duration::from_secs(5)).await?;
    let alice = owner(&s, 0x31, 50_000)?;
    // An intent proof signed by a key that does not own the VTXO.
    let mallory = keypair(0x66)?;
    let forged = alice.intent(&signer(&s), &mallory, now() + 120)?;
    let err = s
        .client
        .register_intent(forged)
        .await
        .err()
        .context("forged proof accepted")?;
    assert!(err.to_string().contains("INVALID_INTENT_PROOF"), "{err}");
    // An expired intent.
    let stale = alice.intent(&signer(&s), &alice.kp, now() - 10)?;
    let err = s
        .client
        .register_intent(stale)
        .await
        .err()
        .context("expired intent accepted")?;
    assert!(
        err.to_string().contains("INVALID_INTENT_TIMERANGE"),
        "{err}"
    );
    assert!(s.sim.queued_intents().is_empty(), "nothing half-applied");
    // A second registration of the same input.
    let first = s
        .client
        .register_intent(alice.intent(&signer(&s), &alice.kp, now() + 120)?)
        .await?;
    let err = s
        .client
        .register_intent(alice.intent(&signer(&s), &alice.kp, now() + 120)?)
        .await
        .err()
        .context("second registration accepted")?;
    assert!(err.to_string().contains("VTXO_ALREADY_REGISTERED"), "{err}");
    assert!(
        err.to_string()
            .contains("already registered by another intent"),
        "{err}"
    );
    assert_eq!(s.sim.queued_intents(), vec![first.clone()]);
    // Settle it honestly, then registering the spent VTXO is refused.
    let events = subscribe(&s, &alice).await?;
    let run = tokio::spawn({
        let (client, info) = (s.client.clone(), s.info.clone());
        let a = alice_clone(&alice);
        async move { participate(client, info, &a, first, events, Mode::Honest).await }
    });
    s.sim.start_round();
    let outcome = run.await??;
    let Outcome::Finalized(txid) = outcome else {
        bail!("round did not finalize: {outcome:?}")
    };
    assert!(s.sim.batches().contains(&txid));
    let err = s
        .client
        .register_intent(alice.intent(&signer(&s), &alice.kp, now() + 120)?)
        .await
        .err()
        .context("spent vtxo accepted")?;
    assert!(err.to_string().contains("VTXO_ALREADY_SPENT"), "{err}");
    // Once its batch expires and is swept, the new VTXO cannot be spent
    // off-chain: VTXO_RECOVERABLE, checked before any signature.
    let chain = s.sim.chain().clone();
    chain.mine(1);
    chain.advance_time(i64::from(
        RoundConfig::default()
            .vtxo_tree_expiry
            .as_seconds()
            .context("seconds expiry")?,
    ));
    chain.mine(1);
    let new = new_vtxo_of(&s, &alice, txid)?;
    assert!(new.swept, "swept with its batch");
    let err = spend_offchain(&s, &alice, &new)
        .await
        .err()
        .context("swept vtxo spent")?;
    assert!(err.to_string().contains("VTXO_RECOVERABLE"), "{err}");
    s.server.stop().await;
    Ok(())
}

/// With fee programs (250 sats per offchain input, 50 per offchain output):
/// `GetInfo` publishes them, `EstimateIntentFee` answers their sum, and an
/// intent that leaves less is refused with `INTENT_INSUFFICIENT_FEE`, one
/// that leaves it is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_fees_are_published_estimated_and_charged() -> anyhow::Result<()> {
    let s = start_with(RoundConfig {
        phase_timeout: Duration::from_secs(5),
        fees: FeePrograms::flat(250, 0, 50, 0),
        ..RoundConfig::default()
    })
    .await?;
    let fees = s.info.fees.clone().context("fees published")?;
    assert_eq!(fees.intent_fee.offchain_input.as_deref(), Some("250.0"));
    assert_eq!(fees.intent_fee.offchain_output.as_deref(), Some("50.0"));
    let alice = owner(&s, 0x41, 50_000)?;
    let free = alice.intent(&signer(&s), &alice.kp, now() + 120)?;
    let estimate = s.client.estimate_fees(free.clone()).await?;
    assert_eq!(estimate.to_sat(), 300);
    let err = s
        .client
        .register_intent(free)
        .await
        .err()
        .context("an intent without its fee accepted")?;
    assert!(err.to_string().contains("INTENT_INSUFFICIENT_FEE"), "{err}");
    let short = alice.intent_paying(&signer(&s), &alice.kp, now() + 120, 299)?;
    let err = s
        .client
        .register_intent(short)
        .await
        .err()
        .context("an intent one sat short accepted")?;
    assert!(err.to_string().contains("INTENT_INSUFFICIENT_FEE"), "{err}");
    let paid = alice.intent_paying(&signer(&s), &alice.kp, now() + 120, 300)?;
    s.client.register_intent(paid).await?;
    assert_eq!(s.sim.queued_intents().len(), 1);
    s.server.stop().await;
    Ok(())
}

/// Waits (up to 10 s, polling) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The VTXO the batch `commitment` made for `o` (it pays `o`'s script).
fn new_vtxo_of(s: &Sim, o: &Owner, commitment: Txid) -> anyhow::Result<SimVtxo> {
    s.sim
        .vtxos()
        .into_iter()
        .find(|v| v.commitment_txid == Some(commitment) && v.script == o.vtxo.script)
        .context("no vtxo from the batch")
}

/// Submits an (unsigned) ark tx spending `v` back to `o`.
async fn spend_offchain(s: &Sim, o: &Owner, v: &SimVtxo) -> anyhow::Result<()> {
    let leaf = o
        .script
        .collaborative_leaf(&o.kp.x_only_public_key().0, &signer(s))
        .context("collaborative leaf")?
        .clone();
    let input = ark_core::send::VtxoInput::new(
        leaf.clone(),
        None,
        o.script.control_block(&leaf)?,
        o.script.leaves().to_vec(),
        v.script.clone(),
        bitcoin::Amount::from_sat(v.amount),
        v.outpoint,
        Vec::new(),
    );
    let address =
        ark_core::ArkAddress::new(bitcoin::Network::Regtest, signer(s), o.script.output_key());
    let txs = ark_core::send::build_offchain_transactions(
        &[ark_core::send::SendReceiver::bitcoin(
            address,
            bitcoin::Amount::from_sat(v.amount),
        )],
        &address,
        &[input],
        &s.info,
    )?;
    s.client
        .submit_offchain_transaction_request(txs.ark_tx, txs.checkpoint_txs)
        .await?;
    Ok(())
}

fn alice_clone(o: &Owner) -> Owner {
    Owner {
        kp: o.kp,
        cosigner: o.cosigner,
        vtxo: o.vtxo.clone(),
        script: o.script.clone(),
    }
}

async fn round_of(s: &Sim, players: Vec<(Owner, Mode)>) -> anyhow::Result<Vec<Outcome>> {
    let mut tasks = Vec::new();
    for (o, mode) in players {
        let (id, events) = join(s, &o).await?;
        let (client, info) = (s.client.clone(), s.info.clone());
        tasks.push(tokio::spawn(async move {
            participate(client, info, &o, id, events, mode).await
        }));
    }
    s.sim.start_round();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_tree_signature_fails_the_round_and_the_next_succeeds_without_it(
) -> anyhow::Result<()> {
    let s = start(Duration::from_secs(2)).await?;
    let alice = owner(&s, 0x41, 20_000)?;
    let bob = owner(&s, 0x42, 30_000)?;
    let outcomes = round_of(
        &s,
        vec![
            (alice_clone(&alice), Mode::Honest),
            (bob, Mode::WithholdSignatures),
        ],
    )
    .await?;
    for o in &outcomes {
        let Outcome::Failed(reason) = o else {
            bail!("expected batch_failed, got {o:?}")
        };
        assert!(reason.contains("missing tree signatures"), "{reason}");
    }
    assert_eq!(s.sim.failed_rounds().len(), 1);
    assert!(s.sim.batches().is_empty());
    // Alice again, alone: the round completes.
    let outcomes = round_of(&s, vec![(alice, Mode::Honest)]).await?;
    let [Outcome::Finalized(txid)] = outcomes.as_slice() else {
        bail!("{outcomes:?}")
    };
    assert_eq!(s.sim.batches(), vec![*txid]);
    s.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tree_signatures_and_forfeits_off_the_connectors_are_refused() -> anyhow::Result<()>
{
    let s = start(Duration::from_secs(2)).await?;
    let carol = owner(&s, 0x51, 40_000)?;
    let outcomes = round_of(&s, vec![(carol, Mode::BadSignature)]).await?;
    let [Outcome::Refused(err)] = outcomes.as_slice() else {
        bail!("{outcomes:?}")
    };
    assert!(err.contains("INVALID_SIGNATURE"), "{err}");
    eventually("the invalid partial signature fails the round", || {
        s.sim.failed_rounds().len() == 1
    })
    .await?;
    let dave = owner(&s, 0x52, 40_000)?;
    let outcomes = round_of(&s, vec![(dave, Mode::WrongConnector)]).await?;
    let [Outcome::Refused(err)] = outcomes.as_slice() else {
        bail!("{outcomes:?}")
    };
    assert!(err.contains("INVALID_FORFEIT_TXS"), "{err}");
    assert!(s.sim.batches().is_empty());
    s.server.stop().await;
    Ok(())
}
