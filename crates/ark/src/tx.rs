//! Building, parsing and re-building Ark off-chain transactions (arkd
//! `pkg/ark-lib/offchain/tx.go` `BuildTxs`, research/ark.md §2.2–2.3).
//!
//! For N input VTXOs and M outputs:
//! - one **checkpoint tx** per VTXO: version 3, one input (the VTXO, sequence
//!   `0xffffffff`, or `0xfffffffe` when the spent leaf is CLTV, with the tx
//!   locktime set to it), outputs `[checkpoint output (same amount), P2A anchor]`;
//!   the checkpoint output is the tree `[server checkpoint tapscript, the VTXO's
//!   spent collaborative leaf]`;
//! - one **ark tx**: version 3, inputs = output 0 of every checkpoint, in VTXO
//!   order, spent through the same collaborative leaf; outputs = the M outputs then
//!   the anchor; sum in = sum out (no fee).
//!
//! Every PSBT input carries `witness_utxo`, exactly one `tap_scripts` leaf and the
//! `taptree` field (the spent output's whole leaf list). Same inputs, same txids.
//!
//! Written with rust-bitcoin rather than ark-core's `build_offchain_transactions`
//! because that function (0.12) writes the ark-tx `taptree` as
//! `[spend leaf, checkpoint leaf]` with depth 1 where arkd writes
//! `[checkpoint leaf, spend leaf]` with DFS depths, sets a non-standard
//! `witness_script` on taproot inputs, only pays to `ArkAddress`es, always adds a
//! change output itself, and panics (`expect`) on some inputs. It also gives
//! *every* ark-tx input sequence `0xfffffffe` as soon as one input is spent
//! through a CLTV leaf, where arkd sets it per input — so for such mixed inputs its
//! ark txid is not the one arkd rebuilds. Otherwise the txids and sighashes it
//! produces are the same as ours; the cross-implementation tests prove both.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bitcoin::absolute::LockTime;
use bitcoin::key::TweakedPublicKey;
use bitcoin::taproot::LeafVersion;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, Psbt, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid};

use ark_relay_core::{PubKey, Sats, Vtxo, VtxoId};

use crate::script::{anchor_output, is_anchor, leaf_signers, sub_dust_script, Closure, VtxoScript};
use crate::taptree::{get_taptree, set_taptree};
use crate::{ArkError, ServerInfo};

/// Sequence of an input spent through a CLTV leaf (enables the tx locktime).
pub const CLTV_SEQUENCE: Sequence = Sequence::ENABLE_LOCKTIME_NO_RBF;

/// A VTXO to spend, with the leaf it is spent through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtxoInput {
    /// The VTXO.
    pub id: VtxoId,
    /// Its amount.
    pub amount: Sats,
    /// Its whole Taproot tree.
    pub script: VtxoScript,
    /// The collaborative leaf it is spent through (a leaf of `script`).
    pub spend_leaf: ScriptBuf,
}

impl VtxoInput {
    /// A VTXO spent through `spend_leaf`, which must be a leaf of `script` and not
    /// an exit (CSV) leaf.
    pub fn new(
        id: VtxoId,
        amount: Sats,
        script: VtxoScript,
        spend_leaf: ScriptBuf,
    ) -> Result<Self, ArkError> {
        let not_collab = || ArkError::NotCollaborative {
            outpoint: id.outpoint(),
            leaf: spend_leaf.to_hex_string(),
        };
        if !script.contains_leaf(&spend_leaf) {
            return Err(not_collab());
        }
        if Closure::decode(&spend_leaf).is_some_and(|c| c.is_exit()) {
            return Err(not_collab());
        }
        Ok(Self {
            id,
            amount,
            script,
            spend_leaf,
        })
    }

    /// A VTXO of `owner` spent through its collaborative leaf with `signer`.
    pub fn collaborative(
        id: VtxoId,
        amount: Sats,
        script: VtxoScript,
        owner: &PubKey,
        signer: &bitcoin::secp256k1::XOnlyPublicKey,
    ) -> Result<Self, ArkError> {
        let leaf = script
            .collaborative_leaf(owner.x_only(), signer)
            .ok_or(ArkError::NoCollaborativeLeaf {
                outpoint: id.outpoint(),
            })?
            .clone();
        Self::new(id, amount, script, leaf)
    }

    /// A ledger VTXO, spent through its collaborative leaf with the server's
    /// signer (or a deprecated signer).
    pub fn from_vtxo(vtxo: &Vtxo, server: &ServerInfo) -> Result<Self, ArkError> {
        let script = VtxoScript::from_tapscripts(&vtxo.tapscripts)?;
        let signers = std::iter::once(server.signer()).chain(server.deprecated_signers());
        for signer in signers {
            if let Some(leaf) = script.collaborative_leaf(vtxo.owner.x_only(), signer) {
                let leaf = leaf.clone();
                return Self::new(vtxo.id, vtxo.sats, script, leaf);
            }
        }
        Err(ArkError::NoCollaborativeLeaf {
            outpoint: vtxo.id.outpoint(),
        })
    }

    /// The absolute locktime of the spent leaf, if it is a CLTV leaf.
    fn cltv(&self) -> Option<LockTime> {
        match Closure::decode(&self.spend_leaf) {
            Some(Closure::CltvMultisig { locktime, .. }) => Some(locktime),
            _ => None,
        }
    }

    /// The keys that must sign this input (the spent leaf's keys).
    pub fn signers(&self) -> Vec<bitcoin::secp256k1::XOnlyPublicKey> {
        leaf_signers(&self.spend_leaf)
    }
}

/// An output of an ark tx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A new default VTXO of `owner` (P2TR, or `OP_RETURN <key>` below dust).
    Vtxo {
        /// The owner's Nostr key.
        owner: PubKey,
        /// The amount.
        sats: Sats,
    },
    /// A VTXO paying a Taproot output key, e.g. from an Ark address
    /// (P2TR, or `OP_RETURN <key>` below dust).
    TapKey {
        /// The tweaked output key.
        output_key: TweakedPublicKey,
        /// The amount.
        sats: Sats,
    },
    /// Any output, taken as is (extension / data `OP_RETURN`s, or outputs read back
    /// from a PSBT).
    Raw(TxOut),
}

impl Output {
    /// The amount of the output.
    pub fn sats(&self) -> Sats {
        match self {
            Output::Vtxo { sats, .. } | Output::TapKey { sats, .. } => *sats,
            Output::Raw(out) => Sats::new(out.value.to_sat()),
        }
    }

    /// The transaction output under `server`'s parameters.
    pub fn to_tx_out(&self, server: &ServerInfo) -> TxOut {
        let key = match self {
            Output::Vtxo { owner, .. } => server.default_vtxo(owner).output_key(),
            Output::TapKey { output_key, .. } => *output_key,
            Output::Raw(out) => return out.clone(),
        };
        let sats = self.sats();
        let script_pubkey = if sats < server.dust() {
            sub_dust_script(&key)
        } else {
            ScriptBuf::new_p2tr_tweaked(key)
        };
        TxOut {
            value: Amount::from_sat(sats.get()),
            script_pubkey,
        }
    }
}

/// An ark tx and its checkpoint txs, as unsigned PSBTs.
#[derive(Debug, Clone, PartialEq)]
pub struct OffchainTx {
    /// The ark tx.
    pub ark_tx: Psbt,
    /// One checkpoint tx per input, in input order.
    pub checkpoints: Vec<Psbt>,
}

impl OffchainTx {
    /// The ark txid (arkd's `ark_txid`).
    pub fn ark_txid(&self) -> Txid {
        self.ark_tx.unsigned_tx.compute_txid()
    }

    /// The checkpoint txids, in input order.
    pub fn checkpoint_txids(&self) -> Vec<Txid> {
        self.checkpoints
            .iter()
            .map(|p| p.unsigned_tx.compute_txid())
            .collect()
    }

    /// The ids of the VTXOs the ark tx creates: every output but the anchor and
    /// data `OP_RETURN`s (sub-dust `OP_RETURN <key>` outputs are VTXOs too).
    pub fn new_vtxo_ids(&self) -> Vec<VtxoId> {
        let txid = self.ark_txid();
        self.ark_tx
            .unsigned_tx
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| is_vtxo_output(&o.script_pubkey))
            .filter_map(|(i, _)| u32::try_from(i).ok().map(|vout| VtxoId::new(txid, vout)))
            .collect()
    }
}

/// Whether an ark-tx output creates a VTXO: P2TR, or arkd's sub-dust
/// `OP_RETURN <32 bytes>` form.
pub fn is_vtxo_output(script: &bitcoin::Script) -> bool {
    let b = script.as_bytes();
    script.is_p2tr() || (b.len() == 34 && b[0] == 0x6a && b[1] == 0x20)
}

/// Builds the ark tx and checkpoint txs spending `inputs` to `outputs` (plus the anchor).
pub fn build_offchain_tx(
    server: &ServerInfo,
    inputs: &[VtxoInput],
    outputs: &[Output],
) -> Result<OffchainTx, ArkError> {
    if inputs.is_empty() {
        return Err(ArkError::NoInputs);
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = inputs.iter().find(|i| !seen.insert(i.id)) {
        return Err(ArkError::DuplicateInput(dup.id.outpoint()));
    }
    for (index, out) in outputs.iter().enumerate() {
        if matches!(out, Output::Raw(_)) {
            continue;
        }
        let amount = out.sats();
        if let Some(min) = server.vtxo_min_amount().filter(|m| amount < *m) {
            return Err(ArkError::AmountTooLow { index, amount, min });
        }
        if let Some(max) = server.vtxo_max_amount().filter(|m| amount > *m) {
            return Err(ArkError::AmountTooHigh { index, amount, max });
        }
    }
    let total_in =
        Sats::checked_sum(inputs.iter().map(|i| i.amount)).ok_or(ArkError::AmountOverflow)?;
    let total_out =
        Sats::checked_sum(outputs.iter().map(Output::sats)).ok_or(ArkError::AmountOverflow)?;
    if total_in != total_out {
        return Err(ArkError::AmountMismatch {
            inputs: total_in,
            outputs: total_out,
        });
    }

    let mut checkpoints = Vec::with_capacity(inputs.len());
    let mut ark_inputs = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (psbt, checkpoint_script) = build_checkpoint(server, input)?;
        let outpoint = OutPoint {
            txid: psbt.unsigned_tx.compute_txid(),
            vout: 0,
        };
        ark_inputs.push((
            outpoint,
            input,
            checkpoint_script,
            psbt.unsigned_tx.output[0].clone(),
        ));
        checkpoints.push(psbt);
    }

    let lock_time = max_cltv(inputs.iter().filter_map(VtxoInput::cltv))?;
    let mut tx_outs: Vec<TxOut> = outputs.iter().map(|o| o.to_tx_out(server)).collect();
    tx_outs.push(anchor_output());
    let unsigned = Transaction {
        version: Version(3),
        lock_time,
        input: ark_inputs
            .iter()
            .map(|(outpoint, input, ..)| tx_in(*outpoint, input))
            .collect(),
        output: tx_outs,
    };
    let mut ark_tx =
        Psbt::from_unsigned_tx(unsigned).map_err(|e| ArkError::MalformedPsbt(e.to_string()))?;
    for (psbt_in, (_, input, checkpoint_script, prevout)) in
        ark_tx.inputs.iter_mut().zip(ark_inputs.iter())
    {
        fill_input(
            psbt_in,
            prevout.clone(),
            checkpoint_script,
            &input.spend_leaf,
        )?;
    }
    Ok(OffchainTx {
        ark_tx,
        checkpoints,
    })
}

fn tx_in(previous_output: OutPoint, input: &VtxoInput) -> TxIn {
    TxIn {
        previous_output,
        sequence: if input.cltv().is_some() {
            CLTV_SEQUENCE
        } else {
            Sequence::MAX
        },
        ..TxIn::default()
    }
}

/// The largest CLTV locktime, refusing a mix of heights and timestamps (arkd's rule).
fn max_cltv(locktimes: impl Iterator<Item = LockTime>) -> Result<LockTime, ArkError> {
    let mut max = LockTime::ZERO;
    for lt in locktimes {
        if max != LockTime::ZERO && !max.is_same_unit(lt) {
            return Err(ArkError::MixedLocktimes);
        }
        if lt.to_consensus_u32() > max.to_consensus_u32() {
            max = lt;
        }
    }
    Ok(max)
}

fn fill_input(
    psbt_in: &mut bitcoin::psbt::Input,
    prevout: TxOut,
    spent: &VtxoScript,
    leaf: &ScriptBuf,
) -> Result<(), ArkError> {
    let control_block = spent.control_block(leaf)?;
    psbt_in.witness_utxo = Some(prevout);
    psbt_in.tap_scripts = BTreeMap::from([(control_block, (leaf.clone(), LeafVersion::TapScript))]);
    set_taptree(psbt_in, spent.leaves());
    Ok(())
}

pub(crate) fn build_checkpoint(
    server: &ServerInfo,
    input: &VtxoInput,
) -> Result<(Psbt, VtxoScript), ArkError> {
    let checkpoint_script =
        VtxoScript::checkpoint(server.checkpoint_tapscript(), &input.spend_leaf)?;
    let value = Amount::from_sat(input.amount.get());
    let unsigned = Transaction {
        version: Version(3),
        lock_time: input.cltv().unwrap_or(LockTime::ZERO),
        input: vec![tx_in(input.id.outpoint(), input)],
        output: vec![
            TxOut {
                value,
                script_pubkey: checkpoint_script.script_pubkey(),
            },
            anchor_output(),
        ],
    };
    let mut psbt =
        Psbt::from_unsigned_tx(unsigned).map_err(|e| ArkError::MalformedPsbt(e.to_string()))?;
    let prevout = TxOut {
        value,
        script_pubkey: input.script.script_pubkey(),
    };
    if let Some(psbt_in) = psbt.inputs.first_mut() {
        fill_input(psbt_in, prevout, &input.script, &input.spend_leaf)?;
    }
    Ok((psbt, checkpoint_script))
}

/// The VTXO a checkpoint PSBT spends, read from its input (`witness_utxo`, the one
/// tap leaf, the `taptree` field, which must produce the `witness_utxo` script).
/// `index` only labels errors.
pub fn checkpoint_vtxo_input(checkpoint: &Psbt, index: usize) -> Result<VtxoInput, ArkError> {
    let (Some(cp_in), Some(cp_txin)) = (
        checkpoint.inputs.first(),
        checkpoint.unsigned_tx.input.first(),
    ) else {
        return Err(ArkError::MalformedPsbt("checkpoint without input".into()));
    };
    let prevout = cp_in
        .witness_utxo
        .as_ref()
        .ok_or(ArkError::MissingWitnessUtxo { input: index })?;
    let mut leaves = cp_in.tap_scripts.values();
    let (Some((leaf, _)), None) = (leaves.next(), leaves.next()) else {
        return Err(ArkError::TapLeafCount {
            input: index,
            count: cp_in.tap_scripts.len(),
        });
    };
    let tree = get_taptree(cp_in)?.ok_or(ArkError::MissingTaptree { input: index })?;
    let script = VtxoScript::new(tree)?;
    if script.script_pubkey() != prevout.script_pubkey {
        return Err(ArkError::WitnessUtxoMismatch { input: index });
    }
    VtxoInput::new(
        VtxoId::from(cp_txin.previous_output),
        Sats::new(prevout.value.to_sat()),
        script,
        leaf.clone(),
    )
}

/// The inputs and outputs an ark tx + checkpoints reveal, as arkd's `SubmitTx` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOffchainTx {
    /// The spent VTXOs in ark-tx input order (amounts from the checkpoints' `witness_utxo`).
    pub inputs: Vec<VtxoInput>,
    /// The ark tx outputs without the anchor.
    pub outputs: Vec<TxOut>,
}

/// Reads the VTXO inputs and the outputs back from an ark tx and its checkpoints
/// (in any order), checking what arkd checks before rebuilding: every ark-tx input
/// spends output 0 of a given checkpoint; every checkpoint input has
/// `witness_utxo`, exactly one tap leaf and a `taptree` whose output is the
/// `witness_utxo` script; no VTXO is spent twice; at most one anchor.
pub fn parse_offchain_tx(
    ark_tx: &Psbt,
    checkpoints: &[Psbt],
) -> Result<ParsedOffchainTx, ArkError> {
    let mut by_txid: HashMap<Txid, &Psbt> = HashMap::new();
    let mut vtxos = BTreeSet::new();
    for cp in checkpoints {
        let first = cp
            .unsigned_tx
            .input
            .first()
            .ok_or_else(|| ArkError::MalformedPsbt("checkpoint without input".into()))?;
        if !vtxos.insert(first.previous_output) {
            return Err(ArkError::DuplicateInput(first.previous_output));
        }
        by_txid.insert(cp.unsigned_tx.compute_txid(), cp);
    }

    let mut inputs = Vec::with_capacity(ark_tx.unsigned_tx.input.len());
    for (index, txin) in ark_tx.unsigned_tx.input.iter().enumerate() {
        let txid = txin.previous_output.txid;
        let cp = by_txid
            .get(&txid)
            .ok_or(ArkError::CheckpointMissing { txid })?;
        inputs.push(checkpoint_vtxo_input(cp, index)?);
    }

    let anchors = ark_tx
        .unsigned_tx
        .output
        .iter()
        .filter(|o| is_anchor(&o.script_pubkey))
        .count();
    if anchors > 1 {
        return Err(ArkError::MalformedPsbt(
            "more than one anchor output".into(),
        ));
    }
    let outputs = ark_tx
        .unsigned_tx
        .output
        .iter()
        .filter(|o| !is_anchor(&o.script_pubkey))
        .cloned()
        .collect();
    Ok(ParsedOffchainTx { inputs, outputs })
}

/// arkd's `SubmitTx` integrity check: rebuilds both transactions from the revealed
/// taptrees and the server's checkpoint tapscript and requires the same txids
/// (checkpoints compared as a set, since arkd returns them in random order).
/// Returns the rebuilt transactions (with the ark tx's inputs in submitted order).
pub fn verify_offchain_tx(
    server: &ServerInfo,
    ark_tx: &Psbt,
    checkpoints: &[Psbt],
) -> Result<OffchainTx, ArkError> {
    let parsed = parse_offchain_tx(ark_tx, checkpoints)?;
    let outputs: Vec<Output> = parsed.outputs.into_iter().map(Output::Raw).collect();
    let rebuilt = build_offchain_tx(server, &parsed.inputs, &outputs)?;
    let submitted: BTreeSet<Txid> = checkpoints
        .iter()
        .map(|p| p.unsigned_tx.compute_txid())
        .collect();
    if submitted.len() != checkpoints.len() || rebuilt.checkpoints.len() != checkpoints.len() {
        return Err(ArkError::CheckpointCount {
            expected: rebuilt.checkpoints.len(),
            got: checkpoints.len(),
        });
    }
    if let Some(rebuilt) = rebuilt
        .checkpoint_txids()
        .into_iter()
        .find(|t| !submitted.contains(t))
    {
        return Err(ArkError::CheckpointMismatch { rebuilt });
    }
    let submitted = ark_tx.unsigned_tx.compute_txid();
    let rebuilt_txid = rebuilt.ark_txid();
    if rebuilt_txid != submitted {
        return Err(ArkError::ArkTxMismatch {
            rebuilt: rebuilt_txid,
            submitted,
        });
    }
    Ok(rebuilt)
}
