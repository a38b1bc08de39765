//! The checkpoints: the step-2 `sign_checkpoint_txs` challenge, or, for an
//! intent that asked for one-step signing, `psbts[1..]` of the step-1
//! challenge (checks 13–14 against the ark tx of the same challenge; check 15,
//! the server's signatures, is the relay's after `SubmitTx`).

use super::*;

/// Checks a step-2 `sign_checkpoint_txs` challenge: each checkpoint is built
/// per the server's rules for one of the VTXOs signed away in step 1, is spent
/// by that ark tx, carries a valid server signature, and the `sign` entries are
/// mine with recomputed sighashes. On success returns what to sign.
pub fn verify_checkpoint_challenge(
    ctx: &Context<'_>,
    step1: &VerifiedArkTx,
    ch: &SigningChallenge,
) -> Result<Vec<SignRequest>, Refusal> {
    if ch.step != 2 || ch.challenge_type != ChallengeType::SignCheckpointTxs {
        return Err(Refusal::new(format!(
            "expected step 2 sign_checkpoint_txs, got step {} {:?}",
            ch.step, ch.challenge_type
        )));
    }
    let payload = &ch.payload_to_sign;
    if payload.psbts.is_empty() {
        return Err(Refusal::new("step 2 carries no checkpoint"));
    }
    let mut why = Vec::new();
    if !payload.colour.is_empty() {
        why.push("step 2 must carry no colour hints".to_owned());
    }
    let checkpoints = payload
        .psbts
        .iter()
        .map(|p| decode_psbt(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Refusal::new)?;
    let requests = parse_sign_requests(&payload.sign).map_err(Refusal::new)?;
    why.extend(one_per_checkpoint(&requests, checkpoints.len()));
    refuse_if(why)?;
    let mut why = audit(ctx, &step1.ark_tx, &step1.spent, &checkpoints, &requests);
    for (i, cp) in checkpoints.iter().enumerate() {
        match missing_signers(cp, 0) {
            Ok(missing) if missing == vec![*ctx.me.x_only()] => {}
            Ok(missing) if missing.is_empty() => {}
            // A liquidation's position: the relay co-signs after me.
            Ok(missing)
                if step1
                    .cosigner
                    .is_some_and(|c| missing.iter().all(|k| k == ctx.me.x_only() || *k == c)) => {}
            Ok(_) => why.push(format!("checkpoint {i} lacks the Ark server's signature")),
            Err(e) => why.push(format!("checkpoint {i}: {e}")),
        }
    }
    refuse_if(why)?;
    Ok(requests)
}

/// Each checkpoint is asked for exactly one signature, at its one input
/// (`requests` index the checkpoints from 0).
fn one_per_checkpoint(requests: &[SignRequest], n: usize) -> Vec<String> {
    let mut why = Vec::new();
    let mut per_psbt = vec![0usize; n];
    for r in requests {
        if r.input_index != 0 {
            why.push(format!(
                "checkpoint {} input {} does not exist",
                r.psbt_index, r.input_index
            ));
        }
        match per_psbt.get_mut(r.psbt_index) {
            Some(n) => *n += 1,
            None => why.push(format!("sign entry names missing PSBT {}", r.psbt_index)),
        }
    }
    if per_psbt.iter().any(|n| *n != 1) {
        why.push("every checkpoint must be asked for exactly one signature".into());
    }
    why
}

/// Checks 13–14 and the sign entries: each checkpoint is the one the
/// server's rules build for the VTXO it spends, `ark_tx` spends it, it spends
/// a VTXO signed away in `ark_tx`, and the entries are mine with recomputed
/// sighashes (`requests` index the checkpoints from 0).
fn audit(
    ctx: &Context<'_>,
    ark_tx: &Psbt,
    spent: &[VtxoId],
    checkpoints: &[Psbt],
    requests: &[SignRequest],
) -> Vec<String> {
    let audit = audit_checkpoint_challenge(ctx.server, ctx.me, checkpoints, requests, ark_tx);
    let mut why: Vec<String> = audit.mismatches.iter().map(describe).collect();
    for (i, cp) in checkpoints.iter().enumerate() {
        let spends = cp
            .unsigned_tx
            .input
            .first()
            .map(|t| VtxoId::from(t.previous_output));
        if !spends.is_some_and(|v| spent.contains(&v)) {
            why.push(format!(
                "checkpoint {i} does not spend a VTXO I signed away in step 1"
            ));
        }
    }
    why
}

/// The step-1 checkpoints and their requests (indexed from 0), when the
/// challenge carries them.
pub(super) type Step1Checkpoints = Option<(Vec<Psbt>, Vec<SignRequest>)>;

/// Splits a step-1 payload: the ark tx and its requests (`psbt_index` 0),
/// and, only if my intent asked for one-step signing, the checkpoints
/// (`psbts[1..]`) with theirs (`psbt_index` 1 + k).
pub(super) fn split_step1(
    intent: &AuthorisedIntent,
    payload: &ark_relay_protocol::content::PayloadToSign,
) -> Result<(Psbt, Vec<SignRequest>, Step1Checkpoints), Refusal> {
    let Some((ark, rest)) = payload.psbts.split_first() else {
        return Err(Refusal::new("step 1 carries no PSBT"));
    };
    if !intent.one_step && !rest.is_empty() {
        return Err(Refusal::new(format!(
            "step 1 must carry exactly one PSBT, got {} (I did not ask for one-step signing)",
            payload.psbts.len()
        )));
    }
    let psbt = decode_psbt(ark).map_err(Refusal::new)?;
    let requests = parse_sign_requests(&payload.sign).map_err(Refusal::new)?;
    let (ark_requests, cp_requests): (Vec<SignRequest>, Vec<SignRequest>) =
        requests.into_iter().partition(|r| r.psbt_index == 0);
    if !intent.one_step {
        return Ok((psbt, ark_requests, None));
    }
    if rest.is_empty() {
        return Err(Refusal::new(
            "I asked for one-step signing: step 1 must carry my checkpoints",
        ));
    }
    let checkpoints = rest
        .iter()
        .map(|p| decode_psbt(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Refusal::new)?;
    let cp_requests = cp_requests
        .into_iter()
        .map(|mut r| {
            r.psbt_index -= 1;
            r
        })
        .collect();
    Ok((psbt, ark_requests, Some((checkpoints, cp_requests))))
}

/// One-step signing: checks the step-1 checkpoints against the ark tx just
/// verified (checks 13–14; they are unsigned: the server signs them inside
/// `SubmitTx`), that they are exactly the checkpoints of the VTXOs I sign
/// away, and adds their requests (`psbt_index` 1 + k) and PSBTs to `v`.
pub(super) fn verify_step1_checkpoints(
    ctx: &Context<'_>,
    v: &mut VerifiedArkTx,
    checkpoints: Vec<Psbt>,
    requests: Vec<SignRequest>,
) -> Result<(), Refusal> {
    let mut why = one_per_checkpoint(&requests, checkpoints.len());
    refuse_if(why)?;
    why = audit(ctx, &v.ark_tx, &v.spent, &checkpoints, &requests);
    let covered: std::collections::BTreeSet<VtxoId> = checkpoints
        .iter()
        .filter_map(|cp| cp.unsigned_tx.input.first())
        .map(|t| VtxoId::from(t.previous_output))
        .collect();
    if covered.len() != checkpoints.len() {
        why.push("two checkpoints spend the same VTXO".into());
    }
    for s in &v.spent {
        if !covered.contains(s) {
            why.push(format!("no checkpoint for {s}, which I sign away"));
        }
    }
    refuse_if(why)?;
    v.requests.extend(requests.into_iter().map(|mut r| {
        r.psbt_index += 1;
        r
    }));
    v.checkpoints = checkpoints;
    Ok(())
}
