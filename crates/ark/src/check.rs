//! What a wallet recomputes before it signs a challenge (DESIGN.md §4, §6).
//!
//! The relay sends PSBTs plus `sign` entries (psbt/input index, key, leaf hash,
//! sighash). A wallet must not trust the entries: it recomputes every sighash from
//! the PSBT itself, checks that its key really signs the input's leaf, and checks
//! that the ark tx pays exactly what its intent says. The functions here never
//! stop at the first problem: they return every [`Mismatch`] so the wallet can
//! refuse with a precise reason.

use std::collections::BTreeSet;

use bitcoin::{Psbt, ScriptBuf, TapLeafHash, TapSighash, TxOut, Txid};

use ark_relay_core::{PubKey, Sats};

use crate::script::{is_anchor, leaf_signers};
use crate::sign::{input_leaf, input_sighash, verify_signatures, SignRequest};
use crate::tx::{build_checkpoint, checkpoint_vtxo_input, Output, VtxoInput};
use crate::{ArkError, ServerInfo};

/// How the ark tx's outputs must relate to the expected ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputPolicy {
    /// Every non-anchor output is expected and every expected output is present
    /// (a single intent: recipients, fee, own change).
    Exact,
    /// Every expected output is present; other outputs (other parties of an atomic
    /// batch) are allowed.
    Includes,
}

/// One reason to refuse a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// A PSBT or input that cannot be read as an Ark transaction.
    Unreadable {
        /// The PSBT.
        psbt_index: usize,
        /// The input, if the problem is in one.
        input_index: Option<usize>,
        /// The error.
        reason: String,
    },
    /// A `sign` entry pointing past the PSBTs or their inputs.
    NoSuchInput {
        /// The PSBT index of the entry.
        psbt_index: usize,
        /// The input index of the entry.
        input_index: usize,
    },
    /// A `sign` entry for a key other than the wallet's.
    ForeignKey {
        /// The PSBT.
        psbt_index: usize,
        /// The input.
        input_index: usize,
        /// The key it names.
        pubkey: PubKey,
    },
    /// The wallet's key is not a signer of that input's leaf.
    KeyNotInLeaf {
        /// The PSBT.
        psbt_index: usize,
        /// The input.
        input_index: usize,
    },
    /// The entry's leaf hash is not the input's.
    LeafHash {
        /// The PSBT.
        psbt_index: usize,
        /// The input.
        input_index: usize,
        /// What the relay said.
        claimed: TapLeafHash,
        /// What the PSBT gives.
        actual: TapLeafHash,
    },
    /// The entry's sighash is not the one recomputed from the PSBT.
    Sighash {
        /// The PSBT.
        psbt_index: usize,
        /// The input.
        input_index: usize,
        /// What the relay said.
        claimed: TapSighash,
        /// What the PSBT gives.
        actual: TapSighash,
    },
    /// An expected output is not in the transaction.
    MissingOutput {
        /// Its script.
        script_pubkey: ScriptBuf,
        /// Its amount.
        sats: Sats,
    },
    /// An output nobody asked for (only with [`OutputPolicy::Exact`]).
    UnexpectedOutput {
        /// The PSBT.
        psbt_index: usize,
        /// The output.
        output_index: usize,
        /// Its script.
        script_pubkey: ScriptBuf,
        /// Its amount.
        sats: Sats,
    },
    /// A checkpoint tx that is not what the server's rules build for its input.
    NotACheckpoint {
        /// The PSBT.
        psbt_index: usize,
        /// The txid the rules give.
        expected: Txid,
        /// The PSBT's txid.
        got: Txid,
    },
    /// A checkpoint tx the signed ark tx does not spend.
    CheckpointNotSpent {
        /// The PSBT.
        psbt_index: usize,
        /// Its txid.
        txid: Txid,
    },
    /// A signature already in the PSBT (e.g. the server's) does not verify.
    BadSignature {
        /// The PSBT.
        psbt_index: usize,
        /// The error.
        reason: String,
    },
}

/// The result of checking a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audit {
    /// Every problem found; empty means "safe to sign".
    pub mismatches: Vec<Mismatch>,
    /// The sum of the `witness_utxo` amounts of the inputs the wallet is asked to sign.
    pub own_input_sats: Sats,
}

impl Audit {
    /// Whether nothing was found.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Checks every `sign` entry against the PSBTs: it names `my_key`, an existing
/// input whose leaf `my_key` signs, and the leaf hash and sighash recomputed from
/// the PSBT. Returns the mismatches and the amount of the inputs asked for.
pub fn check_sign_requests(
    psbts: &[Psbt],
    requests: &[SignRequest],
    my_key: &PubKey,
) -> (Vec<Mismatch>, Sats) {
    let mut mismatches = Vec::new();
    let mut counted = BTreeSet::new();
    let mut own = Sats::ZERO;
    for r in requests {
        let (psbt_index, input_index) = (r.psbt_index, r.input_index);
        let Some(psbt) = psbts
            .get(psbt_index)
            .filter(|p| input_index < p.inputs.len())
        else {
            mismatches.push(Mismatch::NoSuchInput {
                psbt_index,
                input_index,
            });
            continue;
        };
        if r.pubkey != *my_key {
            mismatches.push(Mismatch::ForeignKey {
                psbt_index,
                input_index,
                pubkey: r.pubkey,
            });
            continue;
        }
        let unreadable = |e: crate::ArkError| Mismatch::Unreadable {
            psbt_index,
            input_index: Some(input_index),
            reason: e.to_string(),
        };
        let (leaf, _) = match input_leaf(psbt, input_index) {
            Ok(l) => l,
            Err(e) => {
                mismatches.push(unreadable(e));
                continue;
            }
        };
        if !leaf_signers(&leaf).contains(my_key.x_only()) {
            mismatches.push(Mismatch::KeyNotInLeaf {
                psbt_index,
                input_index,
            });
            continue;
        }
        let (leaf_hash, sighash) = match input_sighash(psbt, input_index) {
            Ok(x) => x,
            Err(e) => {
                mismatches.push(unreadable(e));
                continue;
            }
        };
        if r.leaf_hash != leaf_hash {
            mismatches.push(Mismatch::LeafHash {
                psbt_index,
                input_index,
                claimed: r.leaf_hash,
                actual: leaf_hash,
            });
        }
        if r.sighash != sighash {
            mismatches.push(Mismatch::Sighash {
                psbt_index,
                input_index,
                claimed: r.sighash,
                actual: sighash,
            });
        }
        if counted.insert((psbt_index, input_index)) {
            let amount = psbt
                .inputs
                .get(input_index)
                .and_then(|i| i.witness_utxo.as_ref())
                .map_or(0, |o| o.value.to_sat());
            own = own.checked_add(Sats::new(amount)).unwrap_or(Sats::MAX);
        }
    }
    (mismatches, own)
}

/// Compares the non-anchor outputs of `psbts` with `expected` as multisets of
/// `(script, amount)`, the scripts derived under `server` (default VTXO scripts,
/// sub-dust `OP_RETURN`s).
pub fn check_outputs(
    server: &ServerInfo,
    psbts: &[Psbt],
    expected: &[Output],
    policy: OutputPolicy,
) -> Vec<Mismatch> {
    let mut actual: Vec<Option<(usize, usize, &TxOut)>> = psbts
        .iter()
        .enumerate()
        .flat_map(|(p, psbt)| {
            psbt.unsigned_tx
                .output
                .iter()
                .enumerate()
                .filter(|(_, o)| !is_anchor(&o.script_pubkey))
                .map(move |(o, out)| Some((p, o, out)))
        })
        .collect();
    let mut mismatches = Vec::new();
    for want in expected {
        let want = want.to_tx_out(server);
        let found = actual
            .iter_mut()
            .find(|slot| slot.is_some_and(|(_, _, out)| *out == want));
        match found {
            Some(slot) => *slot = None,
            None => mismatches.push(Mismatch::MissingOutput {
                sats: Sats::new(want.value.to_sat()),
                script_pubkey: want.script_pubkey,
            }),
        }
    }
    if policy == OutputPolicy::Exact {
        for (psbt_index, output_index, out) in actual.into_iter().flatten() {
            mismatches.push(Mismatch::UnexpectedOutput {
                psbt_index,
                output_index,
                script_pubkey: out.script_pubkey.clone(),
                sats: Sats::new(out.value.to_sat()),
            });
        }
    }
    mismatches
}

/// Checks a `sign_ark_tx` challenge: the `sign` entries (see
/// [`check_sign_requests`]), the outputs against the intent, and any signature
/// already present.
pub fn audit_ark_tx_challenge(
    server: &ServerInfo,
    my_key: &PubKey,
    psbts: &[Psbt],
    requests: &[SignRequest],
    expected: &[Output],
    policy: OutputPolicy,
) -> Audit {
    let (mut mismatches, own_input_sats) = check_sign_requests(psbts, requests, my_key);
    mismatches.extend(check_outputs(server, psbts, expected, policy));
    mismatches.extend(check_present_signatures(psbts));
    Audit {
        mismatches,
        own_input_sats,
    }
}

/// Checks a `sign_checkpoint_txs` challenge: the `sign` entries; that each PSBT is
/// exactly the checkpoint tx the server's rules build for the VTXO it spends; that
/// `ark_tx` (the ark tx the wallet signed in step 1) spends it; and that the
/// server's signatures on it verify.
pub fn audit_checkpoint_challenge(
    server: &ServerInfo,
    my_key: &PubKey,
    checkpoints: &[Psbt],
    requests: &[SignRequest],
    ark_tx: &Psbt,
) -> Audit {
    let (mut mismatches, own_input_sats) = check_sign_requests(checkpoints, requests, my_key);
    let spent: BTreeSet<Txid> = ark_tx
        .unsigned_tx
        .input
        .iter()
        .map(|i| i.previous_output.txid)
        .collect();
    for (psbt_index, cp) in checkpoints.iter().enumerate() {
        let got = cp.unsigned_tx.compute_txid();
        let rebuilt =
            checkpoint_vtxo_input(cp, 0).and_then(|input| build_checkpoint(server, &input));
        match rebuilt {
            Ok((psbt, _)) => {
                let expected = psbt.unsigned_tx.compute_txid();
                if expected != got || cp.unsigned_tx.input.len() != 1 {
                    mismatches.push(Mismatch::NotACheckpoint {
                        psbt_index,
                        expected,
                        got,
                    });
                }
            }
            Err(e) => mismatches.push(Mismatch::Unreadable {
                psbt_index,
                input_index: Some(0),
                reason: e.to_string(),
            }),
        }
        if !spent.contains(&got) {
            mismatches.push(Mismatch::CheckpointNotSpent {
                psbt_index,
                txid: got,
            });
        }
    }
    mismatches.extend(check_present_signatures(checkpoints));
    Audit {
        mismatches,
        own_input_sats,
    }
}

/// The txid of the checkpoint tx the server's rules build for `input`: what
/// an ark-tx input spending that VTXO must point at (`<txid>:0`). A wallet uses
/// it to tell which ark-tx inputs spend its own VTXOs, since step 1 of a
/// challenge carries only the ark tx.
pub fn checkpoint_txid(server: &ServerInfo, input: &VtxoInput) -> Result<Txid, ArkError> {
    build_checkpoint(server, input).map(|(psbt, _)| psbt.unsigned_tx.compute_txid())
}

/// Every signature present in `psbts` (e.g. the server's on a checkpoint)
/// verifies against the sighash recomputed from the PSBT.
pub fn check_present_signatures(psbts: &[Psbt]) -> Vec<Mismatch> {
    psbts
        .iter()
        .enumerate()
        .filter_map(|(psbt_index, p)| {
            verify_signatures(p).err().map(|e| Mismatch::BadSignature {
                psbt_index,
                reason: e.to_string(),
            })
        })
        .collect()
}
