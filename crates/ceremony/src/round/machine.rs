//! The participation machine: `step(&Participation, &mut Scratch, Input,
//! &RoundCtx) -> Transition { next, effects }`. Inputs are the runner's
//! outcomes (registrations, failed calls), the round's stream events, a
//! restart and time; effects are the calls to make, in order.
//!
//! Safety rules, enforced here and property-tested:
//! - nothing is signed for a tree, and nothing is forfeited for a
//!   commitment tx, unless the tree hangs off that very commitment tx and
//!   pays every in-round job's outputs ("no forfeit without its
//!   replacement");
//! - a secret nonce lives only in [`Scratch`]: after a restart a round that
//!   is past registration is given up, never resumed with a guessed nonce;
//! - a failed round ends its jobs as retries, unchanged (the runner puts
//!   them back in the queue for the next round).

use std::collections::BTreeMap;

use ark_core::TxGraph;
use ark_relay_core::backends::rounds::RoundEvent;
use ark_relay_core::rounds::RoundEnd;
use ark_relay_core::UnixTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Psbt, Sequence, Txid};

use super::crypto::{self, RoundCtx};
use super::state::{Created, Entry, EntryStatus, Participation, Phase, Scratch};

/// What arrives.
#[derive(Debug, Clone)]
pub enum Input {
    /// Build the intents and register them (a new participation).
    Start,
    /// A registration succeeded.
    Registered {
        /// The job.
        job_id: String,
        /// arkd's intent id.
        intent_id: String,
    },
    /// A registration failed.
    RegisterFailed {
        /// The job.
        job_id: String,
        /// Why.
        error: String,
        /// Worth retrying in a later round (else the job fails for good).
        transient: bool,
    },
    /// A stream event.
    Event(RoundEvent),
    /// A call (confirm, nonces, signatures, forfeits) or the stream failed.
    CallFailed {
        /// Which and why.
        error: String,
    },
    /// The process restarted: the scratch is empty and the stream is gone.
    Resumed,
    /// Time passed (deadlines).
    Tick,
    /// The answer to [`Effect::CheckCommitment`]: whether the jobs' new
    /// VTXOs exist under that commitment tx.
    Outcome {
        /// They exist.
        created: bool,
    },
}

/// What the runner must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `RegisterIntent`; answer with [`Input::Registered`] or
    /// [`Input::RegisterFailed`].
    Register {
        /// The job.
        job_id: String,
        /// The signed proof.
        proof: Psbt,
        /// The message.
        message: String,
    },
    /// (Re)open the event stream with these topics.
    Subscribe {
        /// Input outpoints and the cosigner key (33-byte hex).
        topics: Vec<String>,
    },
    /// `ConfirmRegistration` for each.
    Confirm {
        /// The intent ids.
        intent_ids: Vec<String>,
    },
    /// `SubmitTreeNonces`.
    SubmitNonces {
        /// The round.
        round_id: String,
        /// Our cosigner key.
        cosigner: PublicKey,
        /// txid → public nonce.
        nonces: BTreeMap<Txid, Vec<u8>>,
    },
    /// `SubmitTreeSignatures`.
    SubmitSignatures {
        /// The round.
        round_id: String,
        /// Our cosigner key.
        cosigner: PublicKey,
        /// txid → partial signature.
        signatures: BTreeMap<Txid, Vec<u8>>,
    },
    /// `SubmitSignedForfeitTxs` (only for a checked commitment tx).
    SubmitForfeits {
        /// The commitment tx they are for.
        commitment_txid: Txid,
        /// The forfeits.
        forfeits: Vec<Psbt>,
        /// The commitment tx signed on our boarding inputs.
        commitment: Option<Psbt>,
    },
    /// Best effort `DeleteIntent` of registered intents we give up.
    DeleteIntents {
        /// Their proofs and messages (the runner re-signs a `delete`).
        job_ids: Vec<String>,
    },
    /// Ask the indexer whether the jobs' outputs exist under this tx;
    /// answer with [`Input::Outcome`].
    CheckCommitment {
        /// The commitment txid.
        commitment_txid: Txid,
    },
    /// The saga is over: end every job (written with the final state).
    End {
        /// Per job.
        ends: Vec<(String, RoundEnd)>,
    },
}

/// A step's result.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The state to persist.
    pub next: Participation,
    /// What to do after persisting it.
    pub effects: Vec<Effect>,
}

/// How jobs end when the saga ends now.
#[derive(Debug, Clone, Copy)]
struct Ends {
    max_attempts: u32,
    requeue_at: UnixTime,
}

impl Ends {
    fn of(ctx: &RoundCtx<'_>) -> Self {
        Self {
            max_attempts: ctx.policy.max_attempts,
            requeue_at: UnixTime(ctx.now.0 + ctx.policy.requeue_after_secs),
        }
    }
}

fn hash_of(intent_id: &str) -> String {
    hex::encode(sha256::Hash::hash(intent_id.as_bytes()).to_byte_array())
}

fn topics(p: &Participation, ctx: &RoundCtx<'_>) -> Vec<String> {
    let mut t: Vec<String> = p
        .entries
        .iter()
        .filter(|e| e.intent_id().is_some())
        .flat_map(|e| e.job.inputs.iter().map(|i| i.outpoint().to_string()))
        .collect();
    t.push(hex::encode(ctx.cosigner.public_key().serialize()));
    t
}

/// Ends the saga as failed: jobs retried (refused ones failed), registered
/// intents deleted.
fn fail(mut p: Participation, reason: String, max: Ends) -> Transition {
    let registered: Vec<String> = p
        .entries
        .iter()
        .filter(|e| e.intent_id().is_some())
        .map(|e| e.job.job_id.clone())
        .collect();
    p.phase = Phase::Failed { reason };
    let ends = p.ends(max.max_attempts, max.requeue_at);
    let mut effects = Vec::new();
    if !registered.is_empty() {
        effects.push(Effect::DeleteIntents {
            job_ids: registered,
        });
    }
    effects.push(Effect::End { ends });
    Transition { next: p, effects }
}

fn stay(p: &Participation) -> Transition {
    Transition {
        next: p.clone(),
        effects: Vec::new(),
    }
}

fn in_round(p: &Participation) -> Vec<&Entry> {
    p.entries.iter().filter(|e| e.in_round()).collect()
}

/// Every in-round job's outputs.
fn required(p: &Participation, ctx: &RoundCtx<'_>) -> Vec<crypto::Required> {
    in_round(p)
        .iter()
        .flat_map(|e| crypto::job_required(&e.job, ctx.server))
        .collect()
}

fn graph(chunks: &[ark_core::TxGraphChunk]) -> Result<TxGraph, String> {
    TxGraph::new(chunks.to_vec()).map_err(|e| e.to_string())
}

/// One step (see the module docs).
pub fn step(
    p: &Participation,
    scratch: &mut Scratch,
    input: Input,
    ctx: &RoundCtx<'_>,
) -> Transition {
    let max = Ends::of(ctx);
    if p.phase.is_final() {
        return stay(p);
    }
    match input {
        Input::Start => start(p, ctx),
        Input::Registered { job_id, intent_id } => registration(
            p,
            &job_id,
            EntryStatus::Registered { intent_id },
            ctx,
            scratch,
        ),
        Input::RegisterFailed {
            job_id,
            error,
            transient,
        } => {
            let status = if transient {
                EntryStatus::Retry { error }
            } else {
                EntryStatus::Refused { error }
            };
            registration(p, &job_id, status, ctx, scratch)
        }
        Input::CallFailed { error } => {
            if matches!(p.phase, Phase::ForfeitsSubmitted { .. }) {
                // The forfeits may have arrived: only the indexer knows.
                return check(p);
            }
            fail(p.clone(), error, max)
        }
        Input::Resumed => resumed(p, scratch, ctx),
        Input::Tick => tick(p, ctx),
        Input::Outcome { created } => match (&p.phase, created) {
            (
                Phase::ForfeitsSubmitted {
                    round_id,
                    commitment_txid,
                    ..
                },
                true,
            ) => finalized(p, round_id.clone(), *commitment_txid, max),
            (Phase::ForfeitsSubmitted { .. }, false) => {
                fail(p.clone(), "the round ended without our outputs".into(), max)
            }
            _ => stay(p),
        },
        Input::Event(event) => on_event(p, scratch, event, ctx),
    }
}

fn start(p: &Participation, ctx: &RoundCtx<'_>) -> Transition {
    if !matches!(p.phase, Phase::Registering) {
        return stay(p);
    }
    let mut next = p.clone();
    let mut effects = Vec::new();
    for e in &mut next.entries {
        if !matches!(e.status, EntryStatus::Pending) {
            continue;
        }
        let built = match (&e.proof, &e.message, &e.job.delegation) {
            (Some(proof), Some(message), _) => Ok((proof.clone(), message.clone())),
            (_, _, Some(d)) if d.delegate_cosigner_pk != ctx.cosigner.public_key() => {
                Err("the delegation names another cosigner".to_owned())
            }
            (_, _, Some(d)) => Ok((d.intent_proof.clone(), d.intent_message.clone())),
            (_, _, None) => e
                .job
                .validate()
                .map_err(|x| x.to_string())
                .and_then(|()| crypto::relay_intent(&e.job, ctx)),
        };
        match built {
            Ok((proof, message)) => {
                e.proof = Some(proof.clone());
                e.message = Some(message.clone());
                effects.push(Effect::Register {
                    job_id: e.job.job_id.clone(),
                    proof,
                    message,
                });
            }
            Err(error) => e.status = EntryStatus::Refused { error },
        }
    }
    if effects.is_empty() {
        return fail(next, "no job could be registered".into(), Ends::of(ctx));
    }
    // Listen before registering: a round may take the intents at once.
    let mut listen: Vec<String> = next
        .entries
        .iter()
        .filter(|e| e.proof.is_some() && matches!(e.status, EntryStatus::Pending))
        .flat_map(|e| e.job.inputs.iter().map(|i| i.outpoint().to_string()))
        .collect();
    listen.push(hex::encode(ctx.cosigner.public_key().serialize()));
    effects.insert(0, Effect::Subscribe { topics: listen });
    Transition { next, effects }
}

fn registration(
    p: &Participation,
    job_id: &str,
    status: EntryStatus,
    ctx: &RoundCtx<'_>,
    scratch: &mut Scratch,
) -> Transition {
    if !matches!(p.phase, Phase::Registering) {
        return stay(p);
    }
    let mut next = p.clone();
    let Some(e) = next
        .entries
        .iter_mut()
        .find(|e| e.job.job_id == job_id && matches!(e.status, EntryStatus::Pending))
    else {
        return stay(p);
    };
    e.status = status;
    if next
        .entries
        .iter()
        .any(|e| matches!(e.status, EntryStatus::Pending))
    {
        return Transition {
            next,
            effects: Vec::new(),
        };
    }
    if !next.entries.iter().any(|e| e.intent_id().is_some()) {
        return fail(next, "no intent was registered".into(), Ends::of(ctx));
    }
    next.phase = Phase::Registered { since: ctx.now };
    scratch.live = true;
    Transition {
        next,
        effects: Vec::new(),
    }
}

fn resumed(p: &Participation, scratch: &mut Scratch, ctx: &RoundCtx<'_>) -> Transition {
    match &p.phase {
        // Registrations in flight when the process died: the answers are
        // lost, and an intent may be queued at the server; give the round up
        // (deleting what may be queued) and retry the jobs.
        Phase::Registering => fail(
            p.clone(),
            "restarted while registering".into(),
            Ends::of(ctx),
        ),
        Phase::Registered { .. } => {
            scratch.live = true;
            Transition {
                next: p.clone(),
                effects: vec![Effect::Subscribe {
                    topics: topics(p, ctx),
                }],
            }
        }
        // Our secret nonces (or the tree) are gone with the process: the
        // round cannot complete with us; nothing was forfeited.
        Phase::Confirmed { .. } | Phase::TreeNonces { .. } | Phase::TreeSignatures { .. } => fail(
            p.clone(),
            "restarted during the round's signing".into(),
            Ends::of(ctx),
        ),
        Phase::ForfeitsSubmitted { .. } => check(p),
        Phase::Finalized { .. } | Phase::Failed { .. } => stay(p),
    }
}

fn check(p: &Participation) -> Transition {
    match &p.phase {
        Phase::ForfeitsSubmitted {
            commitment_txid, ..
        } => Transition {
            next: p.clone(),
            effects: vec![Effect::CheckCommitment {
                commitment_txid: *commitment_txid,
            }],
        },
        _ => stay(p),
    }
}

fn tick(p: &Participation, ctx: &RoundCtx<'_>) -> Transition {
    let max = Ends::of(ctx);
    match &p.phase {
        Phase::Registered { since } if ctx.now.0 - since.0 > ctx.policy.wait_for_round_secs => {
            fail(p.clone(), "no round took our intents in time".into(), max)
        }
        Phase::ForfeitsSubmitted { at, .. } if ctx.now.0 - at.0 > ctx.policy.round_timeout_secs => {
            check(p)
        }
        Phase::Confirmed { .. } | Phase::TreeNonces { .. } | Phase::TreeSignatures { .. }
            if ctx.now.0 - p.started_at.0
                > ctx.policy.wait_for_round_secs + ctx.policy.round_timeout_secs =>
        {
            fail(p.clone(), "the round did not finish in time".into(), max)
        }
        _ => stay(p),
    }
}

fn finalized(p: &Participation, round_id: String, commitment_txid: Txid, max: Ends) -> Transition {
    let mut next = p.clone();
    next.phase = Phase::Finalized {
        round_id,
        commitment_txid,
    };
    let ends = next.ends(max.max_attempts, max.requeue_at);
    Transition {
        next,
        effects: vec![Effect::End { ends }],
    }
}

fn on_event(
    p: &Participation,
    scratch: &mut Scratch,
    event: RoundEvent,
    ctx: &RoundCtx<'_>,
) -> Transition {
    let max = Ends::of(ctx);
    let ours = |id: &str| p.phase.round_id() == Some(id);
    match event {
        RoundEvent::BatchStarted {
            round_id,
            intent_id_hashes,
            batch_expiry,
        } => {
            if !matches!(p.phase, Phase::Registered { .. }) {
                return stay(p);
            }
            let mut next = p.clone();
            let mut ids = Vec::new();
            for e in &mut next.entries {
                if let EntryStatus::Registered { intent_id } = &e.status {
                    if intent_id_hashes.contains(&hash_of(intent_id)) {
                        ids.push(intent_id.clone());
                        e.status = EntryStatus::InRound {
                            intent_id: intent_id.clone(),
                        };
                    }
                }
            }
            if ids.is_empty() {
                return stay(p);
            }
            next.batch_expiry = Some(batch_expiry.to_consensus_u32());
            next.phase = Phase::Confirmed {
                round_id,
                batch_expiry: batch_expiry.to_consensus_u32(),
            };
            scratch.vtxo_chunks.clear();
            scratch.connector_chunks.clear();
            scratch.tree_nonces.clear();
            scratch.nonces = None;
            scratch.commitment = None;
            Transition {
                next,
                effects: vec![Effect::Confirm { intent_ids: ids }],
            }
        }
        RoundEvent::TreeTx {
            round_id,
            connector,
            chunk,
        } if ours(&round_id) => {
            let c = ark_core::TxGraphChunk {
                txid: None,
                tx: chunk.tx,
                children: chunk.children.into_iter().collect(),
            };
            if connector {
                scratch.connector_chunks.push(c);
            } else {
                scratch.vtxo_chunks.push(c);
            }
            stay(p)
        }
        RoundEvent::TreeSigningStarted {
            round_id,
            cosigners,
            unsigned_commitment_tx,
        } if ours(&round_id) => {
            let Phase::Confirmed { batch_expiry, .. } = p.phase else {
                return stay(p);
            };
            if !scratch.live {
                return fail(p.clone(), "no live stream for this round".into(), max);
            }
            if !cosigners.contains(&ctx.cosigner.public_key()) {
                return fail(
                    p.clone(),
                    "our cosigner key is not in the round".into(),
                    max,
                );
            }
            let commitment_txid = unsigned_commitment_tx.unsigned_tx.compute_txid();
            let signed = graph(&scratch.vtxo_chunks).and_then(|g| {
                crypto::tree_pays(&g, commitment_txid, &required(p, ctx))?;
                crypto::nonces(&g, ctx, &unsigned_commitment_tx, scratch.entropy)
            });
            match signed {
                Ok((secret, public)) => {
                    scratch.nonces = Some(secret);
                    scratch.commitment = Some(unsigned_commitment_tx);
                    let mut next = p.clone();
                    next.phase = Phase::TreeNonces {
                        round_id: round_id.clone(),
                        batch_expiry,
                        commitment_txid,
                    };
                    Transition {
                        next,
                        effects: vec![Effect::SubmitNonces {
                            round_id,
                            cosigner: ctx.cosigner.public_key(),
                            nonces: public,
                        }],
                    }
                }
                Err(e) => fail(p.clone(), format!("refusing the round's tree: {e}"), max),
            }
        }
        RoundEvent::TreeNonces {
            round_id,
            txid,
            nonces,
        } if ours(&round_id) => {
            let Phase::TreeNonces {
                batch_expiry,
                commitment_txid,
                ..
            } = p.phase
            else {
                return stay(p);
            };
            match crypto::tree_tx_nonces(&nonces) {
                Ok(n) => {
                    scratch.tree_nonces.insert(txid, n);
                }
                Err(e) => return fail(p.clone(), format!("bad tree nonces: {e}"), max),
            }
            let signed = graph(&scratch.vtxo_chunks).and_then(|g| {
                if scratch.tree_nonces.len() < g.nb_of_nodes() {
                    return Ok(None);
                }
                let commitment = scratch.commitment.as_ref().ok_or("no commitment tx")?;
                let ours = scratch.nonces.as_mut().ok_or("no nonces")?;
                crypto::sign_tree(
                    &g,
                    ctx,
                    Sequence::from_consensus(batch_expiry),
                    commitment,
                    &scratch.tree_nonces,
                    ours,
                )
                .map(Some)
            });
            match signed {
                Ok(None) => stay(p),
                Ok(Some(signatures)) => {
                    let mut next = p.clone();
                    next.phase = Phase::TreeSignatures {
                        round_id: round_id.clone(),
                        commitment_txid,
                    };
                    scratch.nonces = None;
                    Transition {
                        next,
                        effects: vec![Effect::SubmitSignatures {
                            round_id,
                            cosigner: ctx.cosigner.public_key(),
                            signatures,
                        }],
                    }
                }
                Err(e) => fail(p.clone(), format!("signing the tree: {e}"), max),
            }
        }
        RoundEvent::BatchFinalization {
            round_id,
            commitment_tx,
        } if ours(&round_id) => {
            let Phase::TreeSignatures {
                commitment_txid, ..
            } = p.phase
            else {
                return stay(p);
            };
            let txid = commitment_tx.unsigned_tx.compute_txid();
            if txid != commitment_txid {
                return fail(
                    p.clone(),
                    format!("finalization names commitment {txid}, the tree was signed for {commitment_txid}"),
                    max,
                );
            }
            let entries = in_round(p);
            let built = graph(&scratch.vtxo_chunks)
                .and_then(|g| crypto::tree_pays(&g, txid, &required(p, ctx)))
                .and_then(|paid| {
                    let connectors = if scratch.connector_chunks.is_empty() {
                        None
                    } else {
                        Some(graph(&scratch.connector_chunks)?)
                    };
                    let forfeits = crypto::forfeits(&entries, connectors.as_ref(), ctx)?;
                    let commitment = crypto::sign_boarding(&entries, &commitment_tx, ctx)?;
                    Ok((forfeits, commitment, created(&entries, &paid)))
                });
            match built {
                Ok((forfeits, commitment, created)) => {
                    let mut next = p.clone();
                    next.created = created;
                    next.phase = Phase::ForfeitsSubmitted {
                        round_id,
                        commitment_txid: txid,
                        at: ctx.now,
                    };
                    let effects = if forfeits.is_empty() && commitment.is_none() {
                        Vec::new()
                    } else {
                        vec![Effect::SubmitForfeits {
                            commitment_txid: txid,
                            forfeits,
                            commitment,
                        }]
                    };
                    Transition { next, effects }
                }
                Err(e) => fail(p.clone(), format!("no forfeits: {e}"), max),
            }
        }
        RoundEvent::BatchFinalized {
            round_id,
            commitment_txid,
        } if ours(&round_id) => match &p.phase {
            Phase::ForfeitsSubmitted {
                commitment_txid: ours_txid,
                ..
            } if *ours_txid == commitment_txid => finalized(p, round_id, commitment_txid, max),
            // Finalized without our forfeits: our inputs were not spent; if
            // our outputs were made anyway the indexer says so.
            _ => fail(p.clone(), "the round finalized without us".into(), max),
        },
        RoundEvent::BatchFailed { round_id, reason } if ours(&round_id) => {
            fail(p.clone(), format!("round failed: {reason}"), max)
        }
        _ => stay(p),
    }
}

/// Pairs the paid outpoints (in `required`'s order) with their jobs.
fn created(entries: &[&Entry], paid: &[bitcoin::OutPoint]) -> Vec<Created> {
    let mut out = Vec::new();
    let mut paid = paid.iter();
    for e in entries {
        for (i, _) in e.job.outputs.iter().enumerate() {
            if let Some(o) = paid.next() {
                out.push(Created {
                    job_id: e.job.job_id.clone(),
                    output: i,
                    vtxo: ark_relay_core::VtxoId::new(o.txid, o.vout),
                });
            }
        }
    }
    out
}
