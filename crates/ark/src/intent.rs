//! Ownership proofs for arkd's intent-based RPCs. The relay uses the
//! `get-pending-tx` proof to recover an ark transaction it submitted when the
//! `SubmitTx` answer was lost (arkd has no cancel: the inputs stay spent until
//! `FinalizeTx`), proving ownership of one of its own inputs.
//!
//! Built with ark-core's `make_intent` (the BIP-322-like proof PSBT arkd
//! verifies), so the encoding is arkd's own.

use bitcoin::secp256k1::Keypair;
use bitcoin::{Amount, Psbt, Sequence, TxOut};

use crate::{ArkError, VtxoInput};

/// A `get-pending-tx` proof over `inputs` (each signed by `keypair`, which must
/// own them), valid until `expire_at` (unix seconds). Returns the proof PSBT
/// and the JSON message it commits to.
pub fn pending_tx_proof(
    inputs: &[VtxoInput],
    keypair: &Keypair,
    expire_at: u64,
) -> Result<(Psbt, String), ArkError> {
    let key = keypair.x_only_public_key().0;
    let ark_inputs = inputs
        .iter()
        .map(|input| {
            let control = input.script.control_block(&input.spend_leaf)?;
            Ok(ark_core::intent::Input::new(
                input.id.outpoint(),
                Sequence::MAX,
                None,
                TxOut {
                    value: Amount::from_sat(input.amount.get()),
                    script_pubkey: input.script.script_pubkey(),
                },
                input.script.leaves().to_vec(),
                (input.spend_leaf.clone(), control),
                false,
                false,
                Vec::new(),
            ))
        })
        .collect::<Result<Vec<_>, ArkError>>()?;
    let secp = &*crate::SECP;
    let intent = ark_core::intent::make_intent(
        |_, msg| Ok(vec![(secp.sign_schnorr(&msg, keypair), key)]),
        |_, _| Err(ark_core::Error::ad_hoc("no on-chain inputs")),
        ark_inputs,
        Vec::new(),
        ark_core::intent::IntentMessage::GetPendingTx { expire_at },
    )
    .map_err(|e| ArkError::Intent(e.to_string()))?;
    let message = intent
        .serialize_message()
        .map_err(|e| ArkError::Intent(e.to_string()))?;
    Ok((intent.proof, message))
}
