//! The ceremony as a pure step function:
//! `step(&ceremony, input, &ctx) -> Result<Transition { next, effects }, StepError>`.
//!
//! Inputs are what arrives (a party's 31512, arkd's answers, the ledger's
//! commit, time passing); effects are what the runner must do. The runner
//! persists `next` together with every *local* effect (31511/31341/31340
//! outbox rows, releasing the locks) in **one** database transaction, then
//! executes the one *remote* effect, if any (`SubmitTx`, `GetPendingTx`,
//! `FinalizeTx`, the ledger commit, a land's hand-over), and feeds its
//! outcome back as the next input. A crash anywhere leaves a persisted phase
//! from which [`Input::Tick`] re-issues exactly the remote effect that may
//! not have happened, and every remote effect is idempotent or probed first
//! (`GetPendingTx` before a second `SubmitTx`).
//!
//! Signatures are verified here (BIP-340 over the sighash recomputed from
//! the PSBT), and the relay signs its own inputs here, with the key the
//! runner lends in [`Ctx`] (never persisted).

use ark_relay_ark::{add_signature, is_fully_signed, missing_signers, verify_signatures};
use ark_relay_core::backends::ark::SubmittedTx;
use ark_relay_core::{ErrorCode, EventId, UnixTime};
use ark_relay_protocol::content::SignatureEntry;
use ark_relay_protocol::Rejection;
use bitcoin::secp256k1::schnorr;
use bitcoin::Psbt;

use crate::build::{
    challenge, confirmation, deadline, finalize, ledger_change, notify_all, short, sign_own, submit,
};
use crate::io::{invalid, Answer, Ctx, Effect, Input, StepError, Transition};
use crate::state::{Ceremony, Failure, KeptSignature, Phase, Purpose};

/// Ends the ceremony before `SubmitTx`: every lock released, everyone told.
fn fail(c: &Ceremony, r: Rejection, expired: bool) -> Transition {
    let mut next = c.clone();
    next.phase = Phase::Failed {
        failure: Failure::from(&r),
        expired,
    };
    let mut effects = notify_all(c, &r);
    effects.push(Effect::ReleaseLocks);
    Transition {
        next,
        effects,
        signed: vec![],
    }
}

fn who(c: &Ceremony, i: usize) -> String {
    if c.is_batch() {
        format!("party {i} ({}): ", short(&c.parties[i].author.to_string()))
    } else {
        String::new()
    }
}

fn parse_sig(s: &str) -> Option<schnorr::Signature> {
    s.parse::<schnorr::Signature>().ok()
}

/// Adds party `i`'s step-1 signatures to `tx` and returns its checkpoint
/// signatures to keep (one-step signing), or says why not.
fn verify_step1(
    c: &Ceremony,
    i: usize,
    sigs: &[SignatureEntry],
    tx: &mut Psbt,
) -> Result<Vec<KeptSignature>, String> {
    let p = &c.parties[i];
    let author = p.author.x_only();
    let (ark, checkpoints): (Vec<&SignatureEntry>, Vec<&SignatureEntry>) =
        sigs.iter().partition(|e| e.psbt_index == 0);
    for e in ark {
        let k = e.input_index as usize;
        let sig = parse_sig(&e.sig).ok_or("a signature is not 64 bytes of hex")?;
        if e.psbt_index != 0
            || !p.span.range().contains(&k)
            || add_signature(tx, k, author, sig).is_err()
        {
            return Err(format!("signature for input {k} does not verify"));
        }
    }
    for k in p.span.range() {
        if missing_signers(tx, k)
            .map_err(|e| e.to_string())?
            .contains(author)
        {
            return Err(format!("input {k} is not signed"));
        }
    }
    crate::one_step::verify_checkpoint_entries(c, i, &checkpoints)
}

/// Adds party `i`'s step-2 signatures to `checkpoints`, or says why not.
fn verify_step2(
    c: &Ceremony,
    i: usize,
    sigs: &[SignatureEntry],
    checkpoints: &mut [Psbt],
) -> Result<(), String> {
    let p = &c.parties[i];
    let author = p.author.x_only();
    let mine = &mut checkpoints[p.span.range()];
    for e in sigs {
        let k = e.psbt_index as usize;
        let sig = parse_sig(&e.sig).ok_or("a signature is not 64 bytes of hex")?;
        let ok = e.input_index == 0
            && mine
                .get_mut(k)
                .is_some_and(|cp| add_signature(cp, 0, author, sig).is_ok());
        if !ok {
            return Err(format!("checkpoint signature {k} does not verify"));
        }
    }
    for (k, cp) in mine.iter().enumerate() {
        if missing_signers(cp, 0)
            .map_err(|e| e.to_string())?
            .contains(author)
        {
            return Err(format!("checkpoint {k} is not signed"));
        }
    }
    Ok(())
}

/// A party's reply, located.
struct Reply {
    party: usize,
    event: EventId,
    received_at: UnixTime,
    nip04: bool,
    answer: Answer,
}

/// One step of the ceremony (see the module docs).
pub fn step(c: &Ceremony, input: Input, ctx: &Ctx<'_>) -> Result<Transition, StepError> {
    match input {
        Input::Answer {
            session,
            step,
            event,
            received_at,
            nip04,
            answer,
        } => {
            let Some(party) = c.party_index(&session) else {
                // Not ours: the runner routes only our parties' answers here.
                return Ok(Transition::stay(c));
            };
            let reply = Reply {
                party,
                event,
                received_at,
                nip04,
                answer,
            };
            match (&c.phase, step) {
                (Phase::ArkTxPrepared { deadline }, 1) => on_ark_tx_reply(c, reply, *deadline, ctx),
                (Phase::CheckpointTxsPrepared { deadline }, 2) => {
                    on_checkpoint_reply(c, reply, *deadline, ctx)
                }
                (Phase::Stranded { .. }, 2) => on_checkpoint_reply(c, reply, c.expires_at, ctx),
                (Phase::ArkTxPrepared { .. }, s) if s > 1 => Ok(unknown(c, &reply)),
                (Phase::CheckpointTxsPrepared { .. }, s) if s > 2 => Ok(unknown(c, &reply)),
                // Late duplicates and answers to steps already done or ended.
                _ => Ok(Transition::stay(c)),
            }
        }
        Input::Tick => on_tick(c, ctx, false),
        Input::Resume => on_tick(c, ctx, true),
        outcome => on_outcome(c, outcome, ctx),
    }
}

/// A step-1 reply: verify, and submit once every party has signed.
fn on_ark_tx_reply(
    c: &Ceremony,
    reply: Reply,
    deadline: UnixTime,
    ctx: &Ctx<'_>,
) -> Result<Transition, StepError> {
    let i = reply.party;
    if c.parties[i].signed || reply.received_at > deadline {
        return Ok(Transition::stay(c)); // a duplicate, or too late (the tick fails it)
    }
    let sigs = match reply.answer {
        Answer::Reject(reason) => {
            let r = if c.is_batch() {
                Rejection::new(
                    ErrorCode::BatchInconsistent,
                    format!("{}refused to sign: {reason}", who(c, i)),
                )
            } else {
                Rejection::new(
                    ErrorCode::SigningRefused,
                    format!("the wallet refused to sign: {reason}"),
                )
            };
            return Ok(fail(c, r, false));
        }
        Answer::Signatures(sigs) => sigs,
    };
    let mut next = c.clone();
    match verify_step1(c, i, &sigs, &mut next.ark_tx) {
        Ok(kept) => next.kept.extend(kept),
        Err(why) => {
            let r = Rejection::new(
                ErrorCode::InvalidResponseSignature,
                format!("{}{why}", who(c, i)),
            );
            return Ok(fail(c, r, false));
        }
    }
    next.parties[i].signed = true;
    if !next.parties.iter().all(|p| p.signed) {
        return Ok(Transition::to(next));
    }
    for p in &mut next.parties {
        p.signed = false;
    }
    next.phase = Phase::ArkTxSigned {
        retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs),
        resubmit: false,
    };
    let effects = vec![submit(&next)];
    Ok(Transition::with(next, effects))
}

/// A step-2 reply. After `SubmitTx` an answer is welcome whenever it comes
/// (the Ark server holds the inputs until the checkpoints are signed), and a
/// bad one leaves the session answerable.
fn on_checkpoint_reply(
    c: &Ceremony,
    reply: Reply,
    open_until: UnixTime,
    ctx: &Ctx<'_>,
) -> Result<Transition, StepError> {
    let i = reply.party;
    if c.parties[i].signed {
        return Ok(Transition::stay(c));
    }
    let mut next = c.clone();
    let verdict = match &reply.answer {
        Answer::Reject(reason) => Err(Rejection::new(
            ErrorCode::SigningRefused,
            format!("{}refused to sign the checkpoints: {reason}", who(c, i)),
        )),
        Answer::Signatures(sigs) => {
            verify_step2(c, i, sigs, &mut next.checkpoints).map_err(|why| {
                Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    format!("{}{why}", who(c, i)),
                )
            })
        }
    };
    if let Err(r) = verdict {
        // Nothing can be undone after SubmitTx: tell the wallet and send the
        // challenge again.
        let mut next = c.clone();
        next.resent += 1;
        let r = Rejection::new(
            r.code,
            format!(
                "{}; the step-2 challenge stays open: answer it again",
                r.message
            ),
        );
        let effects = vec![
            Effect::Notify {
                to: c.parties[i].author,
                answered: reply.event,
                rejection: r,
                nip04: reply.nip04,
            },
            challenge(c, i, 2, open_until, Some(next.resent))?,
        ];
        return Ok(Transition::with(next, effects));
    }
    next.parties[i].signed = true;
    if !next.parties.iter().all(|p| p.signed) {
        return Ok(Transition::to(next));
    }
    for (n, cp) in next.checkpoints.iter().enumerate() {
        if !is_fully_signed(cp)? {
            return Err(invalid(format!("checkpoint {n} is not fully signed")));
        }
    }
    next.phase = Phase::SignaturesCollected {
        retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs),
    };
    let effects = vec![finalize(&next)];
    Ok(Transition::with(next, effects))
}

/// Time passed: a waiting step past its deadline ends; an in-flight remote
/// effect past its retry time is re-issued (probing arkd before a second
/// `SubmitTx`).
fn on_tick(c: &Ceremony, ctx: &Ctx<'_>, force: bool) -> Result<Transition, StepError> {
    let now = ctx.now;
    let later = now.plus_secs(ctx.timing.retry_after_secs * 3);
    let mut next = c.clone();
    match &c.phase {
        Phase::ArkTxPrepared { deadline }
            if now >= deadline.plus_secs(ctx.timing.grace_secs) || now >= c.expires_at =>
        {
            let r = if c.is_batch() {
                let silent: Vec<String> = c
                    .parties
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.signed)
                    .map(|(i, p)| format!("party {i} ({})", short(&p.author.to_string())))
                    .collect();
                Rejection::new(
                    ErrorCode::BatchPartyTimeout,
                    format!("{} did not sign in time", silent.join(", ")),
                )
            } else {
                Rejection::new(
                    ErrorCode::SessionExpired,
                    "the signing session expired before the wallet answered",
                )
            };
            Ok(fail(c, r, true))
        }
        Phase::CheckpointTxsPrepared { deadline }
            if now >= deadline.plus_secs(ctx.timing.grace_secs) || now >= c.expires_at =>
        {
            let code = if c.is_batch() {
                ErrorCode::BatchPartyTimeout
            } else {
                ErrorCode::SessionExpired
            };
            let r = Rejection::new(
                code,
                format!(
                    "the checkpoints were not signed in time; the Ark server holds the inputs in \
                     ark tx {}: answer the step-2 challenge (still accepted) to complete it",
                    c.ark_txid
                ),
            );
            Ok(strand(c, r))
        }
        Phase::ArkTxSigned { retry_at, .. } if force || now >= *retry_at => {
            next.phase = Phase::ArkTxSigned {
                retry_at: later,
                resubmit: true,
            };
            let effects = vec![Effect::FindPending {
                ark_txid: c.ark_txid,
            }];
            Ok(Transition::with(next, effects))
        }
        Phase::SignaturesCollected { retry_at } if force || now >= *retry_at => {
            next.phase = Phase::SignaturesCollected { retry_at: later };
            let effects = vec![finalize(&next)];
            Ok(Transition::with(next, effects))
        }
        Phase::ArkExecuted {
            retry_at,
            committed,
        } if force || now >= *retry_at => {
            next.phase = Phase::ArkExecuted {
                retry_at: later,
                committed: *committed,
            };
            let effect = if *committed {
                Effect::HandOver(confirmation(c))
            } else {
                Effect::Commit(ledger_change(c, ctx))
            };
            Ok(Transition::with(next, vec![effect]))
        }
        _ => Ok(Transition::stay(c)),
    }
}

/// The outcome of a remote effect. Outcomes that no longer apply (a
/// concurrent job moved the ceremony on) change nothing.
fn on_outcome(c: &Ceremony, outcome: Input, ctx: &Ctx<'_>) -> Result<Transition, StepError> {
    let mut next = c.clone();
    let retry_at = ctx.now.plus_secs(ctx.timing.retry_after_secs);
    match (&c.phase, outcome) {
        (Phase::ArkTxSigned { .. }, Input::Submitted(sub)) => after_submit(c, sub, ctx),
        // arkd refused the only submission as far as this state knows. If it
        // says the inputs are spent, a submission this state does not know
        // of (a concurrent or crashed run) may be the one holding them: look
        // for it before anything else. Any other refusal: nothing is spent.
        (
            Phase::ArkTxSigned {
                resubmit: false, ..
            },
            Input::SubmitRefused(r),
        ) => {
            if r.code == ErrorCode::InputAlreadySpent {
                next.phase = Phase::ArkTxSigned {
                    retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs * 3),
                    resubmit: true,
                };
                let effects = vec![Effect::FindPending {
                    ark_txid: c.ark_txid,
                }];
                Ok(Transition::with(next, effects))
            } else {
                Ok(fail(c, r, false))
            }
        }
        // A second submission after `GetPendingTx` found nothing: arkd
        // saying the inputs are spent means an earlier submission reached
        // it (keep the locks); any other refusal means nothing is spent.
        (Phase::ArkTxSigned { resubmit: true, .. }, Input::SubmitRefused(r)) => {
            if r.code == ErrorCode::InputAlreadySpent {
                Ok(strand(c, r))
            } else {
                Ok(fail(c, r, false))
            }
        }
        (Phase::ArkTxSigned { .. }, Input::NotPending) => {
            next.phase = Phase::ArkTxSigned {
                retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs * 3),
                resubmit: true,
            };
            let effects = vec![submit(&next)];
            Ok(Transition::with(next, effects))
        }
        (Phase::SignaturesCollected { .. }, Input::Finalized) => {
            next.phase = Phase::ArkExecuted {
                retry_at,
                committed: false,
            };
            let effects = vec![Effect::Commit(ledger_change(&next, ctx))];
            Ok(Transition::with(next, effects))
        }
        (Phase::SignaturesCollected { .. }, Input::FinalizeRefused(r)) => Ok(strand(c, r)),
        (
            Phase::ArkExecuted {
                committed: false, ..
            },
            Input::Committed,
        ) => {
            let confirmation = confirmation(c);
            if c.purpose == Purpose::Land {
                next.phase = Phase::ArkExecuted {
                    retry_at,
                    committed: true,
                };
                return Ok(Transition::with(next, vec![Effect::HandOver(confirmation)]));
            }
            next.phase = Phase::Completed;
            let effects = match c.purpose {
                Purpose::Issue { .. } => vec![],
                _ => vec![Effect::Confirm {
                    confirmation,
                    tagged: c.tagged(&ctx.relay_key()),
                }],
            };
            Ok(Transition::with(next, effects))
        }
        (
            Phase::ArkExecuted {
                committed: true, ..
            },
            Input::HandedOver,
        ) => {
            next.phase = Phase::Completed;
            Ok(Transition::to(next))
        }
        _ => Ok(Transition::stay(c)),
    }
}

/// A 31341 (5003) answering a reply no step of this ceremony expects yet.
fn unknown(c: &Ceremony, reply: &Reply) -> Transition {
    Transition::with(
        c.clone(),
        vec![Effect::Notify {
            to: c.parties[reply.party].author,
            answered: reply.event,
            rejection: Rejection::new(
                ErrorCode::UnknownSession,
                "the session is not at this step yet",
            ),
            nip04: reply.nip04,
        }],
    )
}

/// Past `SubmitTx` without a way forward: locks kept, everyone told.
fn strand(c: &Ceremony, r: Rejection) -> Transition {
    let mut next = c.clone();
    next.phase = Phase::Stranded {
        failure: Failure::from(&r),
    };
    Transition {
        effects: notify_all(c, &r),
        next,
        signed: vec![],
    }
}

/// Verifies arkd's signatures, signs the relay's checkpoints, adds the
/// one-step parties' kept checkpoint signatures, and sends step 2 to the
/// other parties (or, when no party is left to sign, finalizes).
fn after_submit(c: &Ceremony, sub: SubmittedTx, ctx: &Ctx<'_>) -> Result<Transition, StepError> {
    if sub.ark_txid != c.ark_txid {
        return Err(invalid(format!(
            "arkd answered for {} instead of {}",
            sub.ark_txid, c.ark_txid
        )));
    }
    verify_signatures(&sub.final_ark_tx)?;
    let mut signed = Vec::with_capacity(c.checkpoints.len());
    let mut audit = Vec::new();
    for cp in &c.checkpoints {
        let txid = cp.unsigned_tx.compute_txid();
        let mut s = sub
            .signed_checkpoint_txs
            .iter()
            .find(|p| p.unsigned_tx.compute_txid() == txid)
            .cloned()
            .ok_or_else(|| invalid(format!("arkd returned no checkpoint {txid}")))?;
        verify_signatures(&s)?;
        audit.extend(sign_own(&mut s, ctx.relay, "checkpoint")?);
        for co in &c.cosign {
            let key = crate::lock::cosigner(ctx.relay, co)?;
            audit.extend(sign_own(&mut s, &key, "checkpoint_cosign")?);
        }
        signed.push(s);
    }
    // The one-step parties' checkpoint signatures, kept since step 1: they
    // have signed step 2 already.
    crate::one_step::add_kept(&c.kept, &mut signed)?;
    let mut next = c.clone();
    next.ark_tx = sub.final_ark_tx;
    next.checkpoints = signed;
    for p in &mut next.parties {
        p.signed = p.one_step;
    }
    if next.parties.iter().all(|p| p.signed) {
        for (n, cp) in next.checkpoints.iter().enumerate() {
            if !is_fully_signed(cp)? {
                return Err(invalid(format!("checkpoint {n} is not fully signed")));
            }
        }
        next.phase = Phase::SignaturesCollected {
            retry_at: ctx.now.plus_secs(ctx.timing.retry_after_secs),
        };
        let effects = vec![finalize(&next)];
        return Ok(Transition {
            next,
            effects,
            signed: audit,
        });
    }
    let deadline = deadline(&next, ctx);
    next.phase = Phase::CheckpointTxsPrepared { deadline };
    let effects = (0..next.parties.len())
        .filter(|i| !next.parties[*i].signed)
        .map(|i| challenge(&next, i, 2, deadline, None))
        .collect::<Result<_, _>>()?;
    Ok(Transition {
        next,
        effects,
        signed: audit,
    })
}
