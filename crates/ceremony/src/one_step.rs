//! One-step signing (docs/protocol.md, "Checkpoint signatures in step 1"):
//! a party that asked for it (`"one_step": true` in its intent) gets its
//! checkpoint txs in the step-1 challenge (`psbts[1 + k]` for its checkpoint
//! `k`, unsigned, exactly the ones submitted to arkd) and signs them with the
//! ark tx. The relay verifies those signatures at once (a bad one is a 5002
//! before `SubmitTx`), keeps them in the persisted state apart from the
//! checkpoint PSBTs it submits (arkd expects them unsigned), and adds them
//! after `SubmitTx`, once arkd's own checkpoint signatures verified.

use ark_relay_ark::add_signature;
use ark_relay_protocol::content::SignatureEntry;
use bitcoin::secp256k1::schnorr;
use bitcoin::Psbt;

use crate::io::{invalid, StepError};
use crate::state::{Ceremony, KeptSignature};

/// What party `i`'s step-1 challenge carries: the ark tx, then (one-step)
/// its checkpoints in input order.
pub(crate) fn step1_psbts(c: &Ceremony, i: usize) -> Vec<Psbt> {
    let p = &c.parties[i];
    let mut psbts = vec![c.ark_tx.clone()];
    if p.one_step {
        psbts.extend(c.checkpoints[p.span.range()].iter().cloned());
    }
    psbts
}

/// Verifies party `i`'s step-1 checkpoint signatures (the entries with
/// `psbt_index` ≥ 1) against the unsigned checkpoints: one valid signature
/// per checkpoint of its span, nothing else. Returns them to keep.
pub(crate) fn verify_checkpoint_entries(
    c: &Ceremony,
    i: usize,
    entries: &[&SignatureEntry],
) -> Result<Vec<KeptSignature>, String> {
    let p = &c.parties[i];
    if !p.one_step {
        if let Some(e) = entries.first() {
            return Err(format!(
                "signature for PSBT {} of a step-1 challenge that carries only the ark tx",
                e.psbt_index
            ));
        }
        return Ok(vec![]);
    }
    let author = p.author.x_only();
    let span = p.span.range();
    let mut kept: Vec<KeptSignature> = Vec::with_capacity(span.len());
    for e in entries {
        let k = (e.psbt_index as usize).saturating_sub(1);
        let checkpoint = span.start + k;
        let sig = e
            .sig
            .parse::<schnorr::Signature>()
            .map_err(|_| "a signature is not 64 bytes of hex".to_owned())?;
        let mut scratch = match c.checkpoints.get(checkpoint) {
            Some(cp) if k < span.len() && e.input_index == 0 => cp.clone(),
            _ => return Err(format!("checkpoint signature {k} does not verify")),
        };
        if add_signature(&mut scratch, 0, author, sig).is_err()
            || kept.iter().any(|s| s.checkpoint == checkpoint)
        {
            return Err(format!("checkpoint signature {k} does not verify"));
        }
        kept.push(KeptSignature {
            checkpoint,
            key: p.author,
            sig: e.sig.clone(),
        });
    }
    if let Some(k) = (0..span.len()).find(|k| !kept.iter().any(|s| s.checkpoint == span.start + k))
    {
        return Err(format!("checkpoint {k} is not signed"));
    }
    Ok(kept)
}

/// Adds the kept signatures to arkd's signed checkpoints (in input order).
/// They verified against the same checkpoint txs in step 1: a failure now
/// means arkd changed what it returned, a broken protocol.
pub(crate) fn add_kept(kept: &[KeptSignature], checkpoints: &mut [Psbt]) -> Result<(), StepError> {
    for s in kept {
        let sig = s
            .sig
            .parse::<schnorr::Signature>()
            .map_err(|e| invalid(format!("kept checkpoint signature: {e}")))?;
        let cp = checkpoints
            .get_mut(s.checkpoint)
            .ok_or_else(|| invalid(format!("no checkpoint {}", s.checkpoint)))?;
        add_signature(cp, 0, s.key.x_only(), sig).map_err(|e| {
            invalid(format!(
                "the owner's step-1 signature on checkpoint {} no longer verifies on arkd's: {e}",
                s.checkpoint
            ))
        })?;
    }
    Ok(())
}
