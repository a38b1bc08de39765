//! Forfeit signatures the shared `ark-relay-ark` verifier does not take:
//! a delegate's forfeit carries the owner's `SIGHASH_ALL|ANYONECANPAY` (0x81)
//! signature (ark-core `sign_delegate_psbts`, research/ark-batches.md §9),
//! and arkd verifies every signature with its own sighash type.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::{Psbt, ScriptBuf, TapSighashType, TxOut};

use ark_relay_ark::script::leaf_signers;

/// Verifies the `SIGHASH_ALL|ANYONECANPAY` signatures on input `index` of
/// `psbt` (every input's `witness_utxo` set): over `leaf`, by a key of it.
pub fn verify_anyone_can_pay(psbt: &Psbt, index: usize, leaf: &ScriptBuf) -> Result<(), String> {
    let secp = Secp256k1::verification_only();
    let leaf_hash = ark_relay_ark::script::leaf_hash(leaf);
    let signers = leaf_signers(leaf);
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().ok_or("missing witness utxo"))
        .collect::<Result<_, _>>()?;
    let Some(input) = psbt.inputs.get(index) else {
        return Err(format!("no input {index}"));
    };
    for ((key, sig_leaf), sig) in &input.tap_script_sigs {
        if sig.sighash_type != TapSighashType::AllPlusAnyoneCanPay {
            continue;
        }
        if *sig_leaf != leaf_hash || !signers.contains(key) {
            return Err(format!(
                "input {index}: signature of {key} is not for its leaf"
            ));
        }
        let sighash = SighashCache::new(&psbt.unsigned_tx)
            .taproot_script_spend_signature_hash(
                index,
                &Prevouts::All(&prevouts),
                leaf_hash,
                TapSighashType::AllPlusAnyoneCanPay,
            )
            .map_err(|e| e.to_string())?;
        let msg = Message::from_digest(sighash.to_byte_array());
        secp.verify_schnorr(&sig.signature, &msg, key)
            .map_err(|_| format!("input {index}: invalid signature of {key}"))?;
    }
    Ok(())
}
