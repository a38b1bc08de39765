//! BIP-341 tapscript sighashes and BIP-340 signatures on Ark PSBTs.
//!
//! Every Ark input is a script-path spend of one tapscript leaf (the PSBT input's
//! only `tap_scripts` entry) signed with `SIGHASH_DEFAULT` (64-byte signatures),
//! as arkd's Go client (`signTapscriptSpend`) and ark-core (`sign_ark_transaction`)
//! do. Signatures go into the standard BIP-371 `tap_script_sigs` map keyed by
//! `(x-only key, leaf hash)`. The sighash is always recomputed from the PSBT itself
//! (`witness_utxo` of every input + the leaf), never taken from elsewhere.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, Message, Secp256k1, Verification, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{self, ControlBlock, LeafVersion, TapLeafHash};
use bitcoin::{Psbt, ScriptBuf, TapSighash, TapSighashType, TxOut};
use serde::{Deserialize, Serialize};

use ark_relay_core::PubKey;

use crate::script::{leaf_hash, leaf_signers};
use crate::ArkError;

/// One signature a key owes: the `sign` entries of a 31511 challenge (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignRequest {
    /// Which PSBT of the challenge.
    pub psbt_index: usize,
    /// Which input of that PSBT.
    pub input_index: usize,
    /// The key that must sign.
    pub pubkey: PubKey,
    /// The BIP-341 leaf hash of the input's tapscript leaf (hex in JSON).
    pub leaf_hash: TapLeafHash,
    /// The BIP-341 sighash to sign, `SIGHASH_DEFAULT` (hex in JSON).
    pub sighash: TapSighash,
}

/// The single tapscript leaf an Ark PSBT input is spent through, after checking
/// that its control block commits to the `witness_utxo` output.
pub fn input_leaf(psbt: &Psbt, input_index: usize) -> Result<(ScriptBuf, ControlBlock), ArkError> {
    input_leaf_with(&*crate::SECP, psbt, input_index)
}

fn input_leaf_with<C: Verification>(
    secp: &Secp256k1<C>,
    psbt: &Psbt,
    input_index: usize,
) -> Result<(ScriptBuf, ControlBlock), ArkError> {
    let input = psbt
        .inputs
        .get(input_index)
        .ok_or(ArkError::IndexOutOfRange { index: input_index })?;
    let mut leaves = input.tap_scripts.iter();
    let (Some((control_block, (script, version))), None) = (leaves.next(), leaves.next()) else {
        return Err(ArkError::TapLeafCount {
            input: input_index,
            count: input.tap_scripts.len(),
        });
    };
    if *version != LeafVersion::TapScript || control_block.leaf_version != LeafVersion::TapScript {
        return Err(ArkError::MalformedPsbt(format!(
            "input {input_index}: unsupported leaf version"
        )));
    }
    let prevout = input
        .witness_utxo
        .as_ref()
        .ok_or(ArkError::MissingWitnessUtxo { input: input_index })?;
    let committed = p2tr_key(prevout)
        .is_some_and(|key| control_block.verify_taproot_commitment(secp, key, script));
    if !committed {
        return Err(ArkError::InvalidControlBlock { input: input_index });
    }
    Ok((script.clone(), control_block.clone()))
}

fn p2tr_key(out: &TxOut) -> Option<XOnlyPublicKey> {
    out.script_pubkey
        .is_p2tr()
        .then(|| XOnlyPublicKey::from_slice(&out.script_pubkey.as_bytes()[2..34]).ok())
        .flatten()
}

/// The leaf hash and `SIGHASH_DEFAULT` BIP-341 script-path sighash of one input,
/// computed from the PSBT alone (every input's `witness_utxo` and this input's leaf).
pub fn input_sighash(
    psbt: &Psbt,
    input_index: usize,
) -> Result<(TapLeafHash, TapSighash), ArkError> {
    sighash_with(&*crate::SECP, psbt, input_index)
}

fn sighash_with<C: Verification>(
    secp: &Secp256k1<C>,
    psbt: &Psbt,
    input_index: usize,
) -> Result<(TapLeafHash, TapSighash), ArkError> {
    let (leaf, _) = input_leaf_with(secp, psbt, input_index)?;
    let prevouts = psbt
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            input
                .witness_utxo
                .clone()
                .ok_or(ArkError::MissingWitnessUtxo { input: i })
        })
        .collect::<Result<Vec<TxOut>, ArkError>>()?;
    if prevouts.len() != psbt.unsigned_tx.input.len() {
        return Err(ArkError::MalformedPsbt(
            "inputs and PSBT inputs differ".into(),
        ));
    }
    let leaf_hash = leaf_hash(&leaf);
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .taproot_script_spend_signature_hash(
            input_index,
            &Prevouts::All(&prevouts),
            leaf_hash,
            TapSighashType::Default,
        )
        .map_err(ArkError::Sighash)?;
    Ok((leaf_hash, sighash))
}

/// Every signature `key` must give over `psbts`: one per input whose leaf has
/// `key` among its signers (already-signed inputs included).
pub fn sign_requests(psbts: &[Psbt], key: &PubKey) -> Result<Vec<SignRequest>, ArkError> {
    let secp = &*crate::SECP;
    let mut out = Vec::new();
    for (psbt_index, psbt) in psbts.iter().enumerate() {
        for input_index in 0..psbt.inputs.len() {
            let (leaf, _) = input_leaf_with(secp, psbt, input_index)?;
            if !leaf_signers(&leaf).contains(key.x_only()) {
                continue;
            }
            let (leaf_hash, sighash) = sighash_with(secp, psbt, input_index)?;
            out.push(SignRequest {
                psbt_index,
                input_index,
                pubkey: *key,
                leaf_hash,
                sighash,
            });
        }
    }
    Ok(out)
}

/// A BIP-340 signature over a sighash (with fresh auxiliary randomness).
pub fn sign_sighash(sighash: &TapSighash, keypair: &Keypair) -> schnorr::Signature {
    let msg = Message::from_digest(sighash.to_byte_array());
    crate::SECP.sign_schnorr(&msg, keypair)
}

/// Signs input `input_index` with `keypair` (which must be one of its leaf's
/// signers) and stores the signature in `tap_script_sigs`.
pub fn sign_input(
    psbt: &mut Psbt,
    input_index: usize,
    keypair: &Keypair,
) -> Result<schnorr::Signature, ArkError> {
    let key = keypair.x_only_public_key().0;
    let (leaf, _) = input_leaf(psbt, input_index)?;
    if !leaf_signers(&leaf).contains(&key) {
        return Err(ArkError::KeyNotInLeaf {
            input: input_index,
            key,
        });
    }
    let (leaf_hash, sighash) = input_sighash(psbt, input_index)?;
    let signature = sign_sighash(&sighash, keypair);
    insert(psbt, input_index, key, leaf_hash, signature)?;
    Ok(signature)
}

/// Signs every input of `psbt` whose leaf needs `keypair`'s key; returns how many.
pub fn sign_psbt(psbt: &mut Psbt, keypair: &Keypair) -> Result<usize, ArkError> {
    let key = keypair.x_only_public_key().0;
    let mut signed = 0;
    for input_index in 0..psbt.inputs.len() {
        let (leaf, _) = input_leaf(psbt, input_index)?;
        if leaf_signers(&leaf).contains(&key) {
            sign_input(psbt, input_index, keypair)?;
            signed += 1;
        }
    }
    Ok(signed)
}

/// Verifies a signature by `key` for input `input_index` against the sighash
/// recomputed from the PSBT, then stores it (how the relay applies a 31512 answer).
pub fn add_signature(
    psbt: &mut Psbt,
    input_index: usize,
    key: &XOnlyPublicKey,
    signature: schnorr::Signature,
) -> Result<(), ArkError> {
    let secp = &*crate::SECP;
    let (leaf, _) = input_leaf_with(secp, psbt, input_index)?;
    if !leaf_signers(&leaf).contains(key) {
        return Err(ArkError::KeyNotInLeaf {
            input: input_index,
            key: *key,
        });
    }
    let (leaf_hash, sighash) = sighash_with(secp, psbt, input_index)?;
    let msg = Message::from_digest(sighash.to_byte_array());
    secp.verify_schnorr(&signature, &msg, key)
        .map_err(|_| ArkError::InvalidSignature {
            input: input_index,
            key: *key,
        })?;
    insert(psbt, input_index, *key, leaf_hash, signature)
}

fn insert(
    psbt: &mut Psbt,
    input_index: usize,
    key: XOnlyPublicKey,
    leaf_hash: TapLeafHash,
    signature: schnorr::Signature,
) -> Result<(), ArkError> {
    let input = psbt
        .inputs
        .get_mut(input_index)
        .ok_or(ArkError::IndexOutOfRange { index: input_index })?;
    input.tap_script_sigs.insert(
        (key, leaf_hash),
        taproot::Signature {
            signature,
            sighash_type: TapSighashType::Default,
        },
    );
    Ok(())
}

/// Verifies every signature present in `psbt`: each must be `SIGHASH_DEFAULT`,
/// for the input's own leaf, by one of the leaf's signers, and valid over the
/// recomputed sighash (arkd `VerifyVtxoTapscriptSigs`). Missing signatures are
/// not an error here; see [`missing_signers`].
pub fn verify_signatures(psbt: &Psbt) -> Result<(), ArkError> {
    let secp = &*crate::SECP;
    for (input_index, input) in psbt.inputs.iter().enumerate() {
        if input.tap_script_sigs.is_empty() {
            continue;
        }
        let (leaf, _) = input_leaf_with(secp, psbt, input_index)?;
        let signers = leaf_signers(&leaf);
        let (leaf_hash, sighash) = sighash_with(secp, psbt, input_index)?;
        let msg = Message::from_digest(sighash.to_byte_array());
        for ((key, sig_leaf), sig) in &input.tap_script_sigs {
            if *sig_leaf != leaf_hash {
                return Err(ArkError::SignatureForOtherLeaf {
                    input: input_index,
                    key: *key,
                });
            }
            if sig.sighash_type != TapSighashType::Default {
                return Err(ArkError::UnsupportedSighashType {
                    input: input_index,
                    sighash_type: sig.sighash_type.to_string(),
                });
            }
            if !signers.contains(key) {
                return Err(ArkError::KeyNotInLeaf {
                    input: input_index,
                    key: *key,
                });
            }
            secp.verify_schnorr(&sig.signature, &msg, key)
                .map_err(|_| ArkError::InvalidSignature {
                    input: input_index,
                    key: *key,
                })?;
        }
    }
    Ok(())
}

/// The signers of input `input_index`'s leaf that have no signature on it yet
/// (presence only; run [`verify_signatures`] for validity).
pub fn missing_signers(psbt: &Psbt, input_index: usize) -> Result<Vec<XOnlyPublicKey>, ArkError> {
    let (leaf, _) = input_leaf(psbt, input_index)?;
    let leaf_hash = leaf_hash(&leaf);
    let input = psbt
        .inputs
        .get(input_index)
        .ok_or(ArkError::IndexOutOfRange { index: input_index })?;
    Ok(leaf_signers(&leaf)
        .into_iter()
        .filter(|k| !input.tap_script_sigs.contains_key(&(*k, leaf_hash)))
        .collect())
}

/// Whether every input carries a signature from every signer of its leaf, and all
/// signatures verify.
pub fn is_fully_signed(psbt: &Psbt) -> Result<bool, ArkError> {
    for input_index in 0..psbt.inputs.len() {
        if !missing_signers(psbt, input_index)?.is_empty() {
            return Ok(false);
        }
    }
    verify_signatures(psbt).map(|()| true)
}

/// Whether input `input_index` is spent through `leaf` and carries valid
/// signatures from all of `leaf`'s signers.
pub fn is_signed_for_leaf(
    psbt: &Psbt,
    input_index: usize,
    leaf: &bitcoin::Script,
) -> Result<bool, ArkError> {
    let (own, _) = input_leaf(psbt, input_index)?;
    if own.as_script() != leaf {
        return Ok(false);
    }
    if !missing_signers(psbt, input_index)?.is_empty() {
        return Ok(false);
    }
    verify_signatures(psbt).map(|()| true)
}
