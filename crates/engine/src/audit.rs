//! The audit trail of signing operations (PRD §10.2.2): one `tracing` line
//! with target [`TARGET`] (`audit`) for every signature the relay makes —
//! each Ark input it signs (ark tx or checkpoint) here, and each Nostr event
//! it signs in `ark_relay_protocol::builders`.
//!
//! A line names the operation, the session, the transaction (ark txid, the
//! signed tx's txid), the input index and the *public* key. It never carries
//! a secret key, a signature nonce or decrypted content. Route it to its own
//! sink with a filter such as `audit=info` (`RUST_LOG`); it is always at
//! `info` level.

use ark_relay_ark::ArkError;
use bitcoin::secp256k1::Keypair;
use bitcoin::Psbt;

/// The `tracing` target of audit lines.
pub const TARGET: &str = "audit";

/// Signs every input of `psbt` that `keypair` may sign (as
/// [`ark_relay_ark::sign_psbt`]) and writes one audit line per signed input.
///
/// `what` says which transaction it is (`ark_tx`, `checkpoint`, …), `session`
/// the signing session (or another operation id), `ark_txid` the ark tx the
/// signature belongs to when known.
pub fn sign_psbt(
    psbt: &mut Psbt,
    keypair: &Keypair,
    what: &'static str,
    session: &dyn std::fmt::Display,
    ark_txid: Option<&bitcoin::Txid>,
) -> Result<usize, ArkError> {
    let key = keypair.x_only_public_key().0;
    let before: Vec<usize> = signed_by(psbt, &key);
    let n = ark_relay_ark::sign_psbt(psbt, keypair)?;
    let txid = psbt.unsigned_tx.compute_txid();
    let ark_txid = ark_txid.copied().unwrap_or(txid);
    for input_index in signed_by(psbt, &key) {
        if before.contains(&input_index) {
            continue;
        }
        tracing::info!(
            target: TARGET,
            op = "sign_input",
            what,
            session = %session,
            ark_txid = %ark_txid,
            txid = %txid,
            input_index,
            pubkey = %key,
            "relay signed an Ark input"
        );
    }
    crate::metrics::signed(what, u64::try_from(n).unwrap_or(u64::MAX));
    Ok(n)
}

/// Indexes of the inputs holding a tapscript signature by `key`.
fn signed_by(psbt: &Psbt, key: &bitcoin::XOnlyPublicKey) -> Vec<usize> {
    psbt.inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| i.tap_script_sigs.keys().any(|(k, _)| k == key))
        .map(|(n, _)| n)
        .collect()
}

/// The relay signed an ownership proof (a BIP-322-style intent proof such
/// as arkd's `GetPendingTx` asks for) over `inputs` of its own inputs.
pub fn proof_signed(
    what: &'static str,
    ark_txid: &bitcoin::Txid,
    keypair: &Keypair,
    inputs: usize,
) {
    tracing::info!(
        target: TARGET,
        op = "sign_proof",
        what,
        ark_txid = %ark_txid,
        inputs,
        pubkey = %keypair.x_only_public_key().0,
        "relay signed an ownership proof"
    );
    crate::metrics::signed(what, 1);
}

/// The relay signed a Nostr event (called by whoever signs outside
/// `ark_relay_protocol::builders`, which logs its own).
pub fn event_signed(event: &nostr::Event) {
    tracing::info!(
        target: TARGET,
        op = "sign_event",
        kind = event.kind.as_u16(),
        event_id = %event.id,
        pubkey = %event.pubkey,
        "relay signed a Nostr event"
    );
}
