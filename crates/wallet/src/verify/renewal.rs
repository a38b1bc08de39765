//! The wallet's check of a `sign_renewal` challenge (protocol
//! [`ark_relay_protocol::renewal`], docs/protocol.md "Renewal challenge") and
//! its answer. Pure: no clock, no I/O.
//!
//! The relay asks the wallet to pre-sign a **delegation** of one VTXO it owns:
//! an intent proof that renews it in a later round, and the partial forfeits
//! the relay completes then. The wallet signs only if the renewal keeps
//! everything that is its own (PRD §11.5):
//! - the proof spends exactly that VTXO (input 1, its default VTXO script,
//!   its sats, through the collaborative leaf it shares with the server);
//! - the proof creates exactly one VTXO, first, at the owner's own default
//!   script, worth the sats minus a fee that is what the challenge states and
//!   no more than the published renewal fee, and nothing else but the
//!   preservation packet;
//! - the packet moves exactly the VTXO's assets from input 1 to output 0 (no
//!   issuance, no other asset), and the assets agree with what the wallet's
//!   own `sync_state` says it holds;
//! - the message is a `register` with no on-chain output, `valid_at` as
//!   stated and before the VTXO expires, `expire_at` 0 and the relay's
//!   cosigner key as the only cosigner;
//! - each forfeit spends that VTXO alone and pays the VTXO plus dust and the
//!   anchor, asking for `SIGHASH_ALL|ANYONECANPAY`; a recovery has none.
//!
//! Signing follows ark-core 0.12 `batch::sign_delegate_psbts`: the proof's
//! inputs with SIGHASH_DEFAULT, the forfeit's VTXO input with 0x81; the answer
//! carries the signatures only.

use std::collections::BTreeMap;

use ark_relay_ark::asset::{ledger_id, tx_packet, ArkadeAssetId};
use ark_relay_ark::script::{is_anchor, leaf_signers};
use ark_relay_ark::ServerInfo;
use ark_relay_core::{AssetId, PubKey};
use ark_relay_protocol::renewal::{
    RenewalChallenge, RenewalResponse, RenewalSignature, RenewalType,
};
use base64::Engine as _;
use bitcoin::secp256k1::{Keypair, Secp256k1};
use bitcoin::{Psbt, TapSighashType};

use super::{OwnedVtxo, Refusal};

/// What the wallet knows when it checks a renewal.
#[derive(Debug, Clone, Copy)]
pub struct RenewalContext<'a> {
    /// The wallet's key.
    pub owner: &'a PubKey,
    /// The Ark server's parameters.
    pub server: &'a ServerInfo,
    /// The wallet's VTXOs (from `sync_state`).
    pub vtxos: &'a [OwnedVtxo],
    /// The relay's published renewal fee (`get_info` `renewal_fee_sats`).
    pub max_fee: u64,
    /// Now (unix s).
    pub now: i64,
}

/// A challenge that passed every check: the PSBTs to sign.
#[derive(Debug, Clone)]
pub struct VerifiedRenewal {
    /// The intent proof.
    pub proof: Psbt,
    /// The forfeits (none for a recovery).
    pub forfeits: Vec<Psbt>,
}

fn decode(b64: &str, what: &str) -> Result<Psbt, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| format!("{what} is not base64"))?;
    Psbt::deserialize(&bytes).map_err(|e| format!("{what} is not a PSBT: {e}"))
}

/// Checks `ch` (see the module docs). Every problem found is a reason.
pub fn verify_renewal(
    ctx: &RenewalContext<'_>,
    ch: &RenewalChallenge,
) -> Result<VerifiedRenewal, Refusal> {
    let mut why = Vec::new();
    let r = check(ctx, ch, &mut why);
    match r {
        Some(v) if why.is_empty() => Ok(v),
        _ => Err(Refusal { reasons: why }),
    }
}

fn check(
    ctx: &RenewalContext<'_>,
    ch: &RenewalChallenge,
    why: &mut Vec<String>,
) -> Option<VerifiedRenewal> {
    if ch.v != 1 {
        why.push(format!("unknown renewal schema version {}", ch.v));
    }
    if ch.owner != *ctx.owner {
        why.push("the renewal is for another owner".into());
    }
    if ch.expires_at <= ctx.now {
        why.push("the challenge has expired".into());
    }
    if ch.fee > ctx.max_fee {
        why.push(format!(
            "renewal fee {} sats is above the published {} sats",
            ch.fee, ctx.max_fee
        ));
    }
    let proof = match decode(&ch.intent_proof, "intent proof") {
        Ok(p) => p,
        Err(e) => {
            why.push(e);
            return None;
        }
    };
    let mut forfeits = Vec::new();
    for (i, f) in ch.forfeit_psbts.iter().enumerate() {
        match decode(f, &format!("forfeit {i}")) {
            Ok(p) => forfeits.push(p),
            Err(e) => why.push(e),
        }
    }
    let script = ctx.server.default_vtxo(ctx.owner);
    let my_spk = script.script_pubkey();
    let own_key = ctx.owner.x_only();
    // The proof's input: exactly this VTXO, at my script, its sats.
    let tx = &proof.unsigned_tx;
    if tx.input.len() != 2 || proof.inputs.len() != 2 {
        why.push("the proof must spend exactly the renewed VTXO".into());
        return None;
    }
    if tx.input[1].previous_output != ch.vtxo.outpoint() {
        why.push("the proof spends another VTXO".into());
    }
    match &proof.inputs[1].witness_utxo {
        Some(o) if o.script_pubkey == my_spk && o.value.to_sat() == ch.sats => {}
        _ => why.push("the proof's input is not my VTXO with its sats".into()),
    }
    let leaf_ok = proof.inputs[1].tap_scripts.values().all(|(leaf, _)| {
        let signers = leaf_signers(leaf);
        signers.contains(own_key) && signers.iter().any(|k| ctx.server.is_signer(k))
    }) && !proof.inputs[1].tap_scripts.is_empty();
    if !leaf_ok {
        why.push("the proof does not spend my collaborative leaf".into());
    }
    // What the wallet knows of the VTXO must match the challenge.
    if let Some(mine) = ctx.vtxos.iter().find(|v| v.vtxo == ch.vtxo) {
        if mine.sats != ch.sats {
            why.push(format!(
                "the VTXO has {} sats, the challenge says {}",
                mine.sats, ch.sats
            ));
        }
        let expected: Vec<(Option<AssetId>, u64)> = mine
            .asset_id
            .filter(|_| mine.amount > 0)
            .map(|a| vec![(Some(a), mine.amount)])
            .unwrap_or_default();
        // Compared in ledger form: a control asset I hold (group 1 of its
        // asset's genesis) has a derived ledger id (`ledger_id`).
        let stated: Vec<(Option<AssetId>, u64)> = ch
            .assets
            .iter()
            .map(|a| {
                let id = a.asset_id.parse::<ArkadeAssetId>().ok();
                (id.as_ref().and_then(ledger_id), a.amount)
            })
            .collect();
        if expected != stated {
            why.push("the challenge's assets are not the VTXO's".into());
        }
    }
    // Outputs: one VTXO (first) to me, then at most the packet.
    let mut value_outputs = Vec::new();
    for (i, o) in tx.output.iter().enumerate() {
        if o.script_pubkey.is_op_return() && o.value.to_sat() == 0 {
            continue;
        }
        value_outputs.push((i, o));
    }
    match value_outputs.as_slice() {
        [(0, o)] => {
            if o.script_pubkey != my_spk {
                why.push("the renewed VTXO is not mine".into());
            }
            let expected = ch.sats.checked_sub(ch.fee);
            if Some(o.value.to_sat()) != expected {
                why.push(format!(
                    "the renewed VTXO has {} sats, expected {} − {} fee",
                    o.value.to_sat(),
                    ch.sats,
                    ch.fee
                ));
            }
            if o.value.to_sat() < ctx.server.dust().get() {
                why.push("the renewed VTXO is below dust".into());
            }
        }
        _ => why.push("the proof must create exactly one VTXO, as its first output".into()),
    }
    check_packet(&proof, ch, why);
    check_message(ch, why);
    if ch.recovery {
        if !forfeits.is_empty() {
            why.push("a recovery has no forfeit".into());
        }
    } else {
        if ch.valid_at >= ch.vtxo_expires_at {
            why.push("the renewal would only be valid after the VTXO expires".into());
        }
        if forfeits.len() != 1 {
            why.push("a renewal has one forfeit".into());
        }
        for f in &forfeits {
            check_forfeit(ctx, ch, f, why);
        }
    }
    Some(VerifiedRenewal { proof, forfeits })
}

/// The packet moves exactly the stated assets from input 1 to output 0.
fn check_packet(proof: &Psbt, ch: &RenewalChallenge, why: &mut Vec<String>) {
    let packet = match tx_packet(&proof.unsigned_tx) {
        Ok(p) => p.map(|(_, p)| p),
        Err(e) => {
            why.push(format!("the asset packet is invalid: {e}"));
            return;
        }
    };
    let stated: BTreeMap<String, u64> = ch
        .assets
        .iter()
        .map(|a| (a.asset_id.clone(), a.amount))
        .collect();
    let Some(packet) = packet else {
        if !stated.is_empty() {
            why.push("the assets are not preserved (no asset packet)".into());
        }
        return;
    };
    let mut moved = BTreeMap::new();
    for g in &packet.groups {
        let Some(id) = g.asset_id else {
            why.push("the packet issues an asset".into());
            continue;
        };
        let ins: Vec<_> = g.inputs.iter().map(|i| (i.input_index, i.amount)).collect();
        let outs: Vec<_> = g
            .outputs
            .iter()
            .map(|o| (o.output_index, o.amount))
            .collect();
        match (ins.as_slice(), outs.as_slice()) {
            ([(1, a)], [(0, b)]) if a == b => {
                moved.insert(id_text(&id), *a);
            }
            _ => why.push(format!("the packet does not carry {id} unchanged to me")),
        }
    }
    if moved != stated {
        why.push("the packet's assets are not the VTXO's".into());
    }
}

fn id_text(id: &ArkadeAssetId) -> String {
    id.to_string()
}

/// The message: a `register`, as stated, the relay as the only cosigner.
fn check_message(ch: &RenewalChallenge, why: &mut Vec<String>) {
    let Ok(m) = serde_json::from_str::<serde_json::Value>(&ch.intent_message) else {
        why.push("the intent message is not JSON".into());
        return;
    };
    if m.get("type").and_then(|t| t.as_str()) != Some("register") {
        why.push("the intent message is not a registration".into());
    }
    let onchain = m
        .get("onchain_output_indexes")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    if onchain != 0 {
        why.push("the renewal sends something on chain".into());
    }
    if m.get("valid_at").and_then(serde_json::Value::as_i64) != Some(ch.valid_at) {
        why.push("the message's valid_at is not the stated one".into());
    }
    let expire = m.get("expire_at").and_then(serde_json::Value::as_i64);
    if !ch.recovery && expire.unwrap_or(0) != 0 {
        why.push("a delegation must not expire before it is used".into());
    }
    let cosigners: Vec<&str> = m
        .get("cosigners_public_keys")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|k| k.as_str()).collect())
        .unwrap_or_default();
    if cosigners != [ch.delegate_cosigner_pk.as_str()] {
        why.push("the relay's cosigner key is not the only cosigner".into());
    }
}

fn check_forfeit(ctx: &RenewalContext<'_>, ch: &RenewalChallenge, f: &Psbt, why: &mut Vec<String>) {
    let tx = &f.unsigned_tx;
    if tx.input.len() != 1 || f.inputs.len() != 1 {
        why.push("a forfeit spends the VTXO alone".into());
        return;
    }
    if tx.input[0].previous_output != ch.vtxo.outpoint() {
        why.push("the forfeit spends another VTXO".into());
    }
    if f.inputs[0].sighash_type.map(|s| s.to_u32())
        != Some(TapSighashType::AllPlusAnyoneCanPay as u32)
    {
        why.push("the forfeit must ask for SIGHASH_ALL|ANYONECANPAY".into());
    }
    let dust = ctx.server.dust().get();
    let pays = tx.output.len() == 2
        && tx.output[0].value.to_sat() == ch.sats.saturating_add(dust)
        && is_anchor(&tx.output[1].script_pubkey);
    if !pays {
        why.push("the forfeit does not pay the VTXO plus dust and the anchor".into());
    }
}

/// Signs a verified renewal with `keypair` (ark-core `sign_delegate_psbts`)
/// and returns the answer carrying the signatures.
pub fn sign_renewal(
    keypair: &Keypair,
    ch: &RenewalChallenge,
    mut verified: VerifiedRenewal,
) -> Result<RenewalResponse, Refusal> {
    let secp = Secp256k1::new();
    let own = keypair.x_only_public_key().0;
    ark_core::batch::sign_delegate_psbts(
        |_, msg| Ok(vec![(secp.sign_schnorr_no_aux_rand(&msg, keypair), own)]),
        &mut verified.proof,
        &mut verified.forfeits,
    )
    .map_err(|e| Refusal::new(format!("cannot sign the renewal: {e}")))?;
    let mut signatures = Vec::new();
    let psbts = std::iter::once(&verified.proof).chain(verified.forfeits.iter());
    for (psbt_index, psbt) in psbts.enumerate() {
        for (input_index, input) in psbt.inputs.iter().enumerate() {
            for ((key, _), sig) in &input.tap_script_sigs {
                if *key == own {
                    signatures.push(RenewalSignature {
                        psbt_index: u32::try_from(psbt_index).unwrap_or(u32::MAX),
                        input_index: u32::try_from(input_index).unwrap_or(u32::MAX),
                        sig: hex::encode(sig.to_vec()),
                    });
                }
            }
        }
    }
    Ok(RenewalResponse {
        v: 1,
        challenge_type: RenewalType::SignRenewal,
        renewal_id: ch.renewal_id.clone(),
        signatures,
        reject: None,
    })
}

/// The wallet's whole answer: signed if every check passes, a refusal naming
/// the reasons otherwise.
pub fn answer_renewal(
    ctx: &RenewalContext<'_>,
    keypair: &Keypair,
    ch: &RenewalChallenge,
) -> RenewalResponse {
    let refuse = |r: Refusal| RenewalResponse {
        v: 1,
        challenge_type: RenewalType::SignRenewal,
        renewal_id: ch.renewal_id.clone(),
        signatures: Vec::new(),
        reject: Some(r.reject_text()),
    };
    match verify_renewal(ctx, ch).and_then(|v| sign_renewal(keypair, ch, v)) {
        Ok(r) => r,
        Err(r) => refuse(r),
    }
}

#[cfg(test)]
#[path = "renewal_tests.rs"]
mod tests;
