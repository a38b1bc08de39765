//! The arkd simulator's state and rules, without gRPC: the VTXO store, pending
//! (submitted, not finalized) ark txs, and SubmitTx / FinalizeTx /
//! GetPendingTx exactly as research/ark.md §2.4 describes arkd's
//! `SubmitOffchainTx` / `FinalizeOffchainTx`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Keypair;
use bitcoin::{OutPoint, Psbt, ScriptBuf, TxOut, Txid};
use rand::seq::SliceRandom;

use ark_relay_ark::asset::tx_packet;
use ark_relay_ark::tx::is_vtxo_output;

use ark_relay_ark::{
    is_fully_signed, missing_signers, parse_offchain_tx, sign_psbt, verify_offchain_tx,
    verify_signatures, ArkError, ServerInfo,
};

use super::assets::{self, AssetRecord, Denominations, Rules};
pub(crate) use super::error::code;
pub use super::error::SimError;

/// arkd's default `max_op_return_outputs` (GetInfo field 21).
pub const MAX_OP_RETURN_OUTPUTS: usize = 3;

/// arkd's name for an `ark-relay-ark` error met while checking a submission.
fn from_ark(e: ArkError) -> SimError {
    let name = match &e {
        ArkError::ArkTxMismatch { .. }
        | ArkError::AmountMismatch { .. }
        | ArkError::AmountOverflow
        | ArkError::AmountTooLow { .. }
        | ArkError::AmountTooHigh { .. } => "ARK_TX_MISMATCH",
        ArkError::CheckpointMismatch { .. }
        | ArkError::CheckpointCount { .. }
        | ArkError::CheckpointMissing { .. } => "CHECKPOINT_MISMATCH",
        ArkError::InvalidSignature { .. }
        | ArkError::SignatureForOtherLeaf { .. }
        | ArkError::UnsupportedSighashType { .. }
        | ArkError::KeyNotInLeaf { .. } => "INVALID_SIGNATURE",
        ArkError::DuplicateInput(_) => "VTXO_ALREADY_SPENT",
        ArkError::WitnessUtxoMismatch { .. }
        | ArkError::NotCollaborative { .. }
        | ArkError::NoCollaborativeLeaf { .. } => "INVALID_VTXO_SCRIPT",
        _ => "INVALID_ARK_PSBT",
    };
    SimError::invalid(name, e.to_string())
}

/// Where a VTXO stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtxoState {
    /// Unspent.
    Spendable,
    /// Spent by a submitted, not yet finalized ark tx.
    Pending(Txid),
    /// Spent by a finalized ark tx.
    Spent(Txid),
    /// Settled (forfeited or recovered) in the batch of this commitment tx.
    Settled(Txid),
}

/// A VTXO in the simulator's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVtxo {
    /// Outpoint.
    pub outpoint: OutPoint,
    /// Amount (sats).
    pub amount: u64,
    /// Output script.
    pub script: ScriptBuf,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Created by an off-chain tx.
    pub preconfirmed: bool,
    /// The commitment tx (funded VTXOs) it comes from.
    pub commitment_txid: Option<Txid>,
    /// The checkpoint tx that spends it (arkd's `spent_by`), once submitted.
    pub spent_by: Option<Txid>,
    /// Chain depth.
    pub depth: u32,
    /// State.
    pub state: VtxoState,
    /// Swept with its batch (arkd `is_swept`): recoverable, no longer spendable off-chain.
    pub swept: bool,
    /// The commitment txs of the batches it descends from (arkd's
    /// `commitment_txids`); a batch's sweep marks them all.
    pub batches: Vec<Txid>,
    /// Its asset denominations, as the asset packet of the ark tx that
    /// created it assigned them (arkd `Vtxo.Assets`).
    pub assets: Denominations,
}

/// A submitted ark tx awaiting FinalizeTx.
#[derive(Debug, Clone)]
pub struct PendingArkTx {
    /// The server-co-signed ark tx.
    pub final_ark_tx: Psbt,
    /// The server-signed checkpoints, in input order.
    pub signed_checkpoints: Vec<Psbt>,
    /// The spent VTXOs, in input order.
    pub inputs: Vec<OutPoint>,
}

/// A finalized ark tx (for the transaction stream).
#[derive(Debug, Clone)]
pub struct Finalized {
    /// The ark txid.
    pub txid: Txid,
    /// The final ark tx.
    pub ark_tx: Psbt,
    /// Spent VTXOs (after the update) with their checkpoint txids.
    pub spent: Vec<(SimVtxo, Txid)>,
    /// Created VTXOs.
    pub created: Vec<SimVtxo>,
}

/// Everything the simulator knows.
#[derive(Debug, Default)]
pub struct State {
    pub(crate) vtxos: BTreeMap<OutPoint, SimVtxo>,
    pub(crate) pending: HashMap<Txid, PendingArkTx>,
    pub(crate) finalized: HashMap<Txid, Vec<OutPoint>>,
    pub(crate) faults: HashMap<String, VecDeque<SimError>>,
    /// Assets issued by finalized ark txs, by 68-hex id (arkd's asset table).
    pub(crate) asset_table: BTreeMap<String, AssetRecord>,
    /// Finalized ark txs and their checkpoint txs by txid (what a unilateral
    /// exit broadcasts; `unroll.rs`).
    pub(crate) virtual_txs: HashMap<Txid, bitcoin::Transaction>,
    /// The asset rules SubmitTx applies (`ArkdSimConfig::strict_assets`).
    pub(crate) asset_rules: Rules,
    funded: u64,
}

impl State {
    /// Takes the next scripted fault for `rpc`, if any.
    pub fn take_fault(&mut self, rpc: &str) -> Result<(), SimError> {
        match self.faults.get_mut(rpc).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Creates a settled VTXO paying `script`.
    pub fn fund(&mut self, script: ScriptBuf, amount: u64, now: i64) -> SimVtxo {
        self.funded += 1;
        let mut preimage = b"ark-relay-sim fund ".to_vec();
        preimage.extend_from_slice(&self.funded.to_be_bytes());
        let txid = Txid::hash(&preimage);
        let vtxo = SimVtxo {
            outpoint: OutPoint { txid, vout: 0 },
            amount,
            script,
            created_at: now,
            expires_at: now + 7 * 24 * 3600,
            preconfirmed: false,
            commitment_txid: Some(txid),
            spent_by: None,
            depth: 0,
            state: VtxoState::Spendable,
            swept: false,
            batches: Vec::new(),
            assets: Vec::new(),
        };
        self.vtxos.insert(vtxo.outpoint, vtxo.clone());
        vtxo
    }

    /// A finalized batch: its inputs are settled (`forfeit` = the forfeit
    /// txid, arkd's `spent_by`), its leaves' outputs become VTXOs.
    /// Returns (spent, created).
    pub fn settle(
        &mut self,
        inputs: &[(OutPoint, Option<Txid>)],
        commitment: Txid,
        outputs: &[(OutPoint, TxOut)],
        now: i64,
        expires_at: i64,
    ) -> (Vec<SimVtxo>, Vec<SimVtxo>) {
        let mut spent = Vec::new();
        for (outpoint, forfeit) in inputs {
            if let Some(v) = self.vtxos.get_mut(outpoint) {
                v.state = VtxoState::Settled(commitment);
                v.spent_by = *forfeit;
                spent.push(v.clone());
            }
        }
        let mut created = Vec::new();
        for (outpoint, out) in outputs {
            let vtxo = SimVtxo {
                outpoint: *outpoint,
                amount: out.value.to_sat(),
                script: out.script_pubkey.clone(),
                created_at: now,
                expires_at,
                preconfirmed: false,
                commitment_txid: Some(commitment),
                spent_by: None,
                depth: 0,
                state: VtxoState::Spendable,
                swept: false,
                batches: vec![commitment],
                // Batch leaves carry no asset packet in the simulator yet.
                assets: Vec::new(),
            };
            self.vtxos.insert(vtxo.outpoint, vtxo.clone());
            created.push(vtxo);
        }
        (spent, created)
    }

    /// Marks the unspent VTXOs descending from batch `commitment` swept.
    pub fn sweep_batch(&mut self, commitment: Txid) -> Vec<SimVtxo> {
        let mut swept = Vec::new();
        for v in self.vtxos.values_mut() {
            if v.batches.contains(&commitment) && v.state == VtxoState::Spendable && !v.swept {
                v.swept = true;
                swept.push(v.clone());
            }
        }
        swept
    }

    /// arkd's SubmitTx. Returns the ark txid, the co-signed ark tx and the
    /// server-signed checkpoints (shuffled, as arkd's Go map returns them).
    pub fn submit(
        &mut self,
        server: &ServerInfo,
        signer: &Keypair,
        ark_tx: &Psbt,
        checkpoints: &[Psbt],
    ) -> Result<(Txid, Psbt, Vec<Psbt>), SimError> {
        // 1. Shape; which VTXOs are spent.
        let parsed = parse_offchain_tx(ark_tx, checkpoints).map_err(from_ark)?;
        // 2. Inputs must be known and unspent; amounts and scripts come from
        //    the store, never from the submitted witness_utxo.
        let mut checkpoints = checkpoints.to_vec();
        for input in &parsed.inputs {
            let outpoint = input.id.outpoint();
            let vtxo = self.vtxos.get(&outpoint).ok_or_else(|| {
                SimError::new(
                    code::NOT_FOUND,
                    "VTXO_NOT_FOUND",
                    format!("vtxo {outpoint} not found"),
                )
            })?;
            if vtxo.state != VtxoState::Spendable {
                return Err(SimError::invalid(
                    "VTXO_ALREADY_SPENT",
                    format!("vtxo {outpoint} already spent"),
                ));
            }
            if vtxo.swept {
                return Err(SimError::invalid(
                    "VTXO_RECOVERABLE",
                    format!("vtxo {outpoint} is swept: settle it in a batch to recover it"),
                ));
            }
            for cp in &mut checkpoints {
                let spends = cp
                    .unsigned_tx
                    .input
                    .first()
                    .is_some_and(|i| i.previous_output == outpoint);
                if let (true, Some(cp_in)) = (spends, cp.inputs.first_mut()) {
                    cp_in.witness_utxo = Some(TxOut {
                        value: bitcoin::Amount::from_sat(vtxo.amount),
                        script_pubkey: vtxo.script.clone(),
                    });
                }
            }
        }
        // 3. Rebuild both transactions and require identical txids.
        let rebuilt = verify_offchain_tx(server, ark_tx, &checkpoints).map_err(from_ark)?;
        let ark_txid = rebuilt.ark_txid();
        // 4. Carry the submitted signatures onto the rebuilt PSBTs (whose
        //    prevouts the server computed) and verify every one.
        let mut final_ark = rebuilt.ark_tx.clone();
        for (dst, src) in final_ark.inputs.iter_mut().zip(&ark_tx.inputs) {
            dst.tap_script_sigs = src.tap_script_sigs.clone();
            // arkd hands the client's ark PSBT back with its fields kept;
            // ark-client reads each input's witness_script from it.
            if dst.witness_script.is_none() {
                dst.witness_script = src.witness_script.clone();
            }
        }
        verify_signatures(&final_ark).map_err(from_ark)?;
        let mut signed_cps = rebuilt.checkpoints.clone();
        for cp in &mut signed_cps {
            let txid = cp.unsigned_tx.compute_txid();
            if let Some(src) = checkpoints
                .iter()
                .find(|c| c.unsigned_tx.compute_txid() == txid)
            {
                if let (Some(dst), Some(src)) = (cp.inputs.first_mut(), src.inputs.first()) {
                    dst.tap_script_sigs = src.tap_script_sigs.clone();
                }
            }
            verify_signatures(cp).map_err(from_ark)?;
        }
        // 5. Every ark-tx input carries the signatures of all its non-server signers.
        let server_key = signer.x_only_public_key().0;
        for index in 0..final_ark.inputs.len() {
            let missing: Vec<_> = missing_signers(&final_ark, index)
                .map_err(from_ark)?
                .into_iter()
                .filter(|k| *k != server_key && !server.is_signer(k))
                .collect();
            if !missing.is_empty() {
                return Err(SimError::invalid(
                    "INVALID_SIGNATURE",
                    format!("ark tx input {index}: missing owner signature"),
                ));
            }
        }
        // 5b. Assets (arkd `validateOffchainTxOutputs` + `validateAssetTransaction`):
        //     the packet must list every asset the spent VTXOs hold, exactly.
        let mut prevouts: BTreeMap<u16, Denominations> = BTreeMap::new();
        for (vin, input) in parsed.inputs.iter().enumerate() {
            let held = self
                .vtxos
                .get(&input.id.outpoint())
                .map(|v| v.assets.clone())
                .unwrap_or_default();
            if let (Ok(vin), false) = (u16::try_from(vin), held.is_empty()) {
                prevouts.insert(vin, held);
            }
        }
        assets::validate(
            &final_ark.unsigned_tx,
            &prevouts,
            &self.asset_table,
            MAX_OP_RETURN_OUTPUTS,
            self.asset_rules,
        )?;
        // 6. Co-sign the ark tx, sign every checkpoint.
        sign_psbt(&mut final_ark, signer).map_err(from_ark)?;
        if !is_fully_signed(&final_ark).map_err(from_ark)? {
            return Err(SimError::invalid(
                "INVALID_VTXO_SCRIPT",
                "ark tx input not spendable with the server's signer",
            ));
        }
        for cp in &mut signed_cps {
            if sign_psbt(cp, signer).map_err(from_ark)? != 1 {
                return Err(SimError::invalid(
                    "INVALID_VTXO_SCRIPT",
                    "checkpoint input does not need the server's signer",
                ));
            }
        }
        // 7. Inputs become spent-pending.
        let inputs: Vec<OutPoint> = parsed.inputs.iter().map(|i| i.id.outpoint()).collect();
        for (outpoint, cp) in inputs.iter().zip(&signed_cps) {
            if let Some(v) = self.vtxos.get_mut(outpoint) {
                v.state = VtxoState::Pending(ark_txid);
                v.spent_by = Some(cp.unsigned_tx.compute_txid());
            }
        }
        self.pending.insert(
            ark_txid,
            PendingArkTx {
                final_ark_tx: final_ark.clone(),
                signed_checkpoints: signed_cps.clone(),
                inputs,
            },
        );
        signed_cps.shuffle(&mut rand::thread_rng());
        Ok((ark_txid, final_ark, signed_cps))
    }

    /// arkd's FinalizeTx: complete checkpoint signatures, then create the outputs.
    /// Repeating it for a finalized tx succeeds and changes nothing.
    pub fn finalize(
        &mut self,
        ark_txid: Txid,
        checkpoints: &[Psbt],
        now: i64,
    ) -> Result<Option<Finalized>, SimError> {
        if self.finalized.contains_key(&ark_txid) {
            return Ok(None);
        }
        let pending = self.pending.get(&ark_txid).ok_or_else(|| {
            SimError::new(
                code::NOT_FOUND,
                "TX_NOT_FOUND",
                format!("offchain tx {ark_txid} not found"),
            )
        })?;
        if checkpoints.len() != pending.signed_checkpoints.len() {
            return Err(SimError::invalid(
                "CHECKPOINT_MISMATCH",
                format!(
                    "expected {} checkpoint txs, got {}",
                    pending.signed_checkpoints.len(),
                    checkpoints.len()
                ),
            ));
        }
        let mut checkpoint_of: HashMap<OutPoint, Txid> = HashMap::new();
        for ours in &pending.signed_checkpoints {
            let txid = ours.unsigned_tx.compute_txid();
            let theirs = checkpoints
                .iter()
                .find(|c| c.unsigned_tx.compute_txid() == txid)
                .ok_or_else(|| {
                    SimError::invalid("CHECKPOINT_MISMATCH", format!("checkpoint {txid} missing"))
                })?;
            // Verify against our own copy of the tx and prevouts, with their signatures.
            let mut check = ours.clone();
            if let (Some(dst), Some(src)) = (check.inputs.first_mut(), theirs.inputs.first()) {
                for (k, v) in &src.tap_script_sigs {
                    dst.tap_script_sigs.entry(*k).or_insert(*v);
                }
            }
            if !is_fully_signed(&check).map_err(from_ark)? {
                return Err(SimError::invalid(
                    "INVALID_SIGNATURE",
                    format!("checkpoint {txid} is not fully signed"),
                ));
            }
            if let Some(i) = ours.unsigned_tx.input.first() {
                checkpoint_of.insert(i.previous_output, txid);
            }
        }
        let Some(pending) = self.pending.remove(&ark_txid) else {
            return Ok(None);
        };
        let mut depth = 0;
        let mut expires_at = i64::MAX;
        let mut spent = Vec::new();
        let mut batches: Vec<Txid> = Vec::new();
        for outpoint in &pending.inputs {
            if let Some(v) = self.vtxos.get_mut(outpoint) {
                v.state = VtxoState::Spent(ark_txid);
                depth = depth.max(v.depth + 1);
                expires_at = expires_at.min(v.expires_at);
                for b in &v.batches {
                    if !batches.contains(b) {
                        batches.push(*b);
                    }
                }
                let cp = checkpoint_of.get(outpoint).copied().unwrap_or(ark_txid);
                spent.push((v.clone(), cp));
            }
        }
        let (mut by_out, issued) = match tx_packet(&pending.final_ark_tx.unsigned_tx) {
            Ok(Some((_, packet))) => assets::apply(&pending.final_ark_tx.unsigned_tx, &packet),
            _ => (BTreeMap::new(), Vec::new()),
        };
        for (id, record) in issued {
            self.asset_table.insert(id.to_string(), record);
        }
        let mut created = Vec::new();
        for (vout, out) in pending.final_ark_tx.unsigned_tx.output.iter().enumerate() {
            if !is_vtxo_output(&out.script_pubkey) {
                continue;
            }
            let Ok(vout) = u32::try_from(vout) else {
                continue;
            };
            let vtxo = SimVtxo {
                outpoint: OutPoint {
                    txid: ark_txid,
                    vout,
                },
                amount: out.value.to_sat(),
                script: out.script_pubkey.clone(),
                created_at: now,
                expires_at,
                preconfirmed: true,
                commitment_txid: None,
                spent_by: None,
                depth,
                state: VtxoState::Spendable,
                swept: false,
                batches: batches.clone(),
                assets: by_out.remove(&vout).unwrap_or_default(),
            };
            self.vtxos.insert(vtxo.outpoint, vtxo.clone());
            created.push(vtxo);
        }
        self.finalized.insert(ark_txid, pending.inputs.clone());
        for c in &pending.signed_checkpoints {
            self.virtual_txs
                .insert(c.unsigned_tx.compute_txid(), c.unsigned_tx.clone());
        }
        self.virtual_txs
            .insert(ark_txid, pending.final_ark_tx.unsigned_tx.clone());
        Ok(Some(Finalized {
            txid: ark_txid,
            ark_tx: pending.final_ark_tx,
            spent,
            created,
        }))
    }

    /// arkd's indexer `GetAsset`: the issuance record of `asset` (68 hex) and
    /// its supply, the sum over unspent VTXOs carrying it (arkd stores no
    /// supply: burns and spends lower it implicitly; swept VTXOs are still
    /// unspent). `None` for an asset no finalized tx issued.
    pub fn asset_info(&self, asset: &str) -> Option<(AssetRecord, u128)> {
        let record = self.asset_table.get(asset)?.clone();
        let supply = self
            .vtxos
            .values()
            .filter(|v| v.state == VtxoState::Spendable)
            .flat_map(|v| v.assets.iter())
            .filter(|(id, _)| id.to_string() == asset)
            .map(|(_, n)| u128::from(*n))
            .sum();
        Some((record, supply))
    }

    /// arkd's GetPendingTx: the proof's inputs 1.. are the VTXOs it covers;
    /// each must carry a valid signature from a key other than the server's.
    /// (The toSpend / message-hash binding of input 0 is not checked.)
    pub fn pending_for(
        &self,
        server: &ServerInfo,
        proof: &Psbt,
        message: &str,
    ) -> Result<Vec<(Txid, PendingArkTx)>, SimError> {
        let msg: serde_json::Value = serde_json::from_str(message)
            .map_err(|e| SimError::invalid("INVALID_INTENT_MESSAGE", e.to_string()))?;
        if msg.get("type").and_then(|t| t.as_str()) != Some("get-pending-tx") {
            return Err(SimError::invalid(
                "INVALID_INTENT_MESSAGE",
                "intent message type must be get-pending-tx",
            ));
        }
        if proof.inputs.len() < 2 {
            return Err(SimError::invalid(
                "INVALID_INTENT_PROOF",
                "proof needs at least 2 inputs",
            ));
        }
        verify_signatures(proof)
            .map_err(|e| SimError::invalid("INVALID_INTENT_PROOF", e.to_string()))?;
        let mut covered = Vec::new();
        for (index, (txin, input)) in proof
            .unsigned_tx
            .input
            .iter()
            .zip(&proof.inputs)
            .enumerate()
            .skip(1)
        {
            if !input
                .tap_script_sigs
                .keys()
                .any(|(k, _)| !server.is_signer(k))
            {
                return Err(SimError::invalid(
                    "INVALID_INTENT_PROOF",
                    format!("proof input {index} is not signed by its owner"),
                ));
            }
            covered.push(txin.previous_output);
        }
        Ok(self
            .pending
            .iter()
            .filter(|(_, p)| p.inputs.iter().any(|i| covered.contains(i)))
            .map(|(t, p)| (*t, p.clone()))
            .collect())
    }
}
