//! Step 2: the `sign_checkpoint_txs` challenge.

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
    let mut per_psbt = vec![0usize; checkpoints.len()];
    for r in &requests {
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
    refuse_if(why)?;
    let audit =
        audit_checkpoint_challenge(ctx.server, ctx.me, &checkpoints, &requests, &step1.ark_tx);
    let mut why: Vec<String> = audit.mismatches.iter().map(describe).collect();
    for (i, cp) in checkpoints.iter().enumerate() {
        let spends = cp
            .unsigned_tx
            .input
            .first()
            .map(|t| VtxoId::from(t.previous_output));
        if !spends.is_some_and(|v| step1.spent.contains(&v)) {
            why.push(format!(
                "checkpoint {i} does not spend a VTXO I signed away in step 1"
            ));
        }
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
