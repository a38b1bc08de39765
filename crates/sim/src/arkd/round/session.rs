//! One batch under construction: the commitment tx (operator inputs, boarding
//! inputs, batch output, connector output, change), its VTXO and connector
//! trees, the MuSig2 signing session of every VTXO-tree tx (the operator's
//! own nonce and partial signature included, every participant's partial
//! signature verified), the forfeit txs (each checked against a connector of
//! this batch, as arkd's `VerifyForfeitTxs` does) and the boarding inputs'
//! signatures. Pure: the driver feeds it and publishes what it returns.

use std::collections::{HashMap, HashSet};

use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{schnorr, Keypair, Message, PublicKey, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, OutPoint, Psbt, ScriptBuf, Sequence, TapSighashType, Transaction, TxIn,
    TxOut, Txid, Witness,
};
use musig::musig::{AggregatedNonce, KeyAggCache, PartialSignature, PublicNonce, SecretNonce};

use ark_relay_ark::script::{anchor_output, leaf_signers};
use ark_relay_ark::{input_leaf, missing_signers, sign_input, verify_signatures, ServerInfo};

use super::forfeit::verify_anyone_can_pay;
use super::intent::Known;
use super::tree::{self, LeafSpec, OutputScript, Tree};
use super::QueuedIntent;
use crate::arkd::state::{code, SimError};

fn invalid(name: &str, msg: impl Into<String>) -> SimError {
    SimError::new(code::INVALID_ARGUMENT, name, msg)
}

/// The operator's keys.
pub struct OperatorKeys {
    /// Signer = forfeit key = wallet and connector key.
    pub signer: Keypair,
    /// The random per-process MuSig2 key the operator co-signs VTXO trees with.
    pub tree_key: Keypair,
}

impl OperatorKeys {
    /// The forfeit output script: P2WPKH of the forfeit (signer) key, the
    /// script of GetInfo's `forfeit_address`.
    pub fn forfeit_script(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(
            &bitcoin::CompressedPublicKey(self.signer.public_key()).wpubkey_hash(),
        )
    }

    /// The operator wallet's (and connectors') script: BIP86 P2TR of the signer key.
    pub fn wallet_script(&self) -> ScriptBuf {
        let secp = Secp256k1::verification_only();
        ScriptBuf::new_p2tr(&secp, self.signer.x_only_public_key().0, None)
    }
}

/// The MuSig2 state of one VTXO-tree tx.
struct NodeSession {
    msg: [u8; 32],
    cache: KeyAggCache,
    output_key: XOnlyPublicKey,
    cosigners: Vec<PublicKey>,
    nonces: HashMap<PublicKey, PublicNonce>,
    op_secnonce: Option<SecretNonce>,
    agg_nonce: Option<AggregatedNonce>,
    partials: HashMap<PublicKey, PartialSignature>,
    signature: Option<schnorr::Signature>,
}

/// A batch being built.
pub struct Batch {
    /// The unsigned commitment tx (witness_utxo on every input).
    pub commitment: Psbt,
    /// The VTXO tree (empty without offchain outputs).
    pub vtxo_tree: Tree,
    /// The connector tree (empty without forfeits).
    pub connector_tree: Tree,
    /// Participants' cosigner keys (operator excluded).
    pub cosigners: Vec<PublicKey>,
    sessions: HashMap<Txid, NodeSession>,
    /// VTXOs that need a forfeit, with their prevouts.
    pub forfeitable: Vec<(OutPoint, TxOut)>,
    /// Forfeits received, by VTXO.
    pub forfeits: HashMap<OutPoint, Psbt>,
    used_connectors: HashSet<OutPoint>,
    /// Commitment input indexes of boarding inputs.
    pub boarding: Vec<usize>,
    /// Boarding input indexes signed by their owner.
    boarding_signed: HashSet<usize>,
    operator_inputs: Vec<usize>,
    /// Operator UTXOs the commitment spends.
    pub spent_operator_utxos: Vec<OutPoint>,
    /// The operator's change output, if any.
    pub change: Option<(u32, TxOut)>,
    forfeit_script: ScriptBuf,
}

fn to_musig(pk: &PublicKey) -> Result<musig::PublicKey, SimError> {
    musig::PublicKey::from_slice(&pk.serialize())
        .map_err(|e| SimError::new(code::INVALID_ARGUMENT, "INVALID_PSBT_INPUT", e.to_string()))
}

fn internal(msg: impl Into<String>) -> SimError {
    SimError::new(13, "INTERNAL_ERROR", msg)
}

/// Approximate vsize of a commitment tx (P2TR key-path and script-path inputs).
fn estimate_vsize(inputs: usize, outputs: usize) -> u64 {
    11 + 100 * inputs as u64 + 43 * outputs as u64
}

impl Batch {
    /// Builds the commitment tx and both trees for `intents`.
    /// `fund(amount)` hands out operator UTXOs until their sum covers what the
    /// batch needs beyond its boarding inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        server: &ServerInfo,
        keys: &OperatorKeys,
        intents: &[QueuedIntent],
        expiry: ark_relay_ark::RelativeLocktime,
        dust: u64,
        fee_rate: u64,
        mut fund: impl FnMut(u64) -> Vec<(OutPoint, TxOut)>,
    ) -> Result<Self, SimError> {
        let op_tree_pk = keys.tree_key.public_key();
        let sweep_key = *server.forfeit_key();
        let vtxo_scripts = OutputScript::Musig { expiry, sweep_key };
        let wallet_script = keys.wallet_script();
        let connector_scripts = OutputScript::Fixed(wallet_script.clone());
        let mut cosigners = Vec::new();
        let mut vtxo_leaves = Vec::new();
        let mut forfeitable = Vec::new();
        let mut boarding_inputs = Vec::new();
        let mut onchain = Vec::new();
        for i in intents {
            for input in &i.inputs {
                match &input.known {
                    Known::Vtxo(o) => forfeitable.push((input.outpoint, o.clone())),
                    Known::Boarding(o) => boarding_inputs.push((input.outpoint, o.clone())),
                    Known::Recoverable(_) => {}
                }
            }
            onchain.extend(i.onchain.iter().cloned());
            if i.offchain.is_empty() {
                continue;
            }
            let mut leaf_keys = i.cosigners.clone();
            leaf_keys.push(op_tree_pk);
            for k in &i.cosigners {
                if !cosigners.contains(k) {
                    cosigners.push(*k);
                }
            }
            // The leaf: the intent's VTXOs, then its leaf packet (arkd
            // `getOutputVtxosLeaves`); the tree appends the anchor.
            let mut outputs = i.offchain.clone();
            outputs.extend(i.assets.leaf_extension.iter().cloned());
            vtxo_leaves.push(LeafSpec {
                outputs,
                topics: leaf_keys.iter().map(|k| k.to_string()).collect(),
                cosigners: leaf_keys,
            });
        }
        let connector_leaves: Vec<LeafSpec> = forfeitable
            .iter()
            .map(|(o, _)| LeafSpec {
                outputs: vec![TxOut {
                    value: Amount::from_sat(dust),
                    script_pubkey: wallet_script.clone(),
                }],
                cosigners: Vec::new(),
                topics: vec![o.to_string()],
            })
            .collect();
        let tree_err = |e: tree::TreeError| internal(e.to_string());
        let mut outputs = Vec::new();
        if !vtxo_leaves.is_empty() {
            outputs.push(tree::root_output(&vtxo_leaves, &vtxo_scripts).map_err(tree_err)?);
        }
        if !connector_leaves.is_empty() {
            outputs
                .push(tree::root_output(&connector_leaves, &connector_scripts).map_err(tree_err)?);
        }
        outputs.extend(onchain);
        let out_total: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        let boarding_total: u64 = boarding_inputs.iter().map(|(_, o)| o.value.to_sat()).sum();
        // Operator inputs pay whatever the boarding inputs do not, plus the fee.
        let fee =
            fee_rate.saturating_mul(estimate_vsize(boarding_inputs.len() + 2, outputs.len() + 1));
        let need = out_total
            .saturating_add(fee)
            .saturating_sub(boarding_total)
            .max(1);
        let operator = fund(need);
        let op_total: u64 = operator.iter().map(|(_, o)| o.value.to_sat()).sum();
        if op_total < need {
            return Err(internal("operator wallet cannot fund the batch"));
        }
        let change_value = op_total + boarding_total - out_total - fee;
        let change = (change_value >= dust).then(|| TxOut {
            value: Amount::from_sat(change_value),
            script_pubkey: wallet_script.clone(),
        });
        let change_vout = change.as_ref().map(|_| outputs.len());
        if let Some(c) = change.clone() {
            outputs.push(c);
        }
        let prevouts: Vec<(OutPoint, TxOut)> = operator
            .iter()
            .cloned()
            .chain(boarding_inputs.iter().cloned())
            .collect();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: prevouts
                .iter()
                .map(|(o, _)| TxIn {
                    previous_output: *o,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let txid = tx.compute_txid();
        let mut commitment = Psbt::from_unsigned_tx(tx).map_err(|e| internal(e.to_string()))?;
        for (pin, (_, prevout)) in commitment.inputs.iter_mut().zip(&prevouts) {
            pin.witness_utxo = Some(prevout.clone());
        }
        let mut vout = 0u32;
        let vtxo_tree = if vtxo_leaves.is_empty() {
            Tree::default()
        } else {
            vout += 1;
            tree::build_tree(&vtxo_leaves, &vtxo_scripts, OutPoint { txid, vout: 0 })
                .map_err(tree_err)?
        };
        let connector_tree = if connector_leaves.is_empty() {
            Tree::default()
        } else {
            tree::build_tree(
                &connector_leaves,
                &connector_scripts,
                OutPoint { txid, vout },
            )
            .map_err(tree_err)?
        };
        // One MuSig2 session per VTXO-tree tx, with the operator's nonce.
        let op_musig = to_musig(&op_tree_pk)?;
        let mut sessions = HashMap::new();
        for node in &vtxo_tree.nodes {
            let prevout = node
                .psbt
                .inputs
                .first()
                .and_then(|i| i.witness_utxo.clone())
                .ok_or_else(|| internal("tree tx without prevout"))?;
            let msg = tree::tree_sighash(&node.psbt.unsigned_tx, &prevout).map_err(tree_err)?;
            let cache =
                tree::signing_cache(&node.cosigners, expiry, &sweep_key).map_err(tree_err)?;
            let output_key = XOnlyPublicKey::from_slice(&prevout.script_pubkey.as_bytes()[2..34])
                .map_err(|e| internal(e.to_string()))?;
            let mut rand = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rand);
            let mut extra = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut extra);
            let (sec, public) = cache.nonce_gen_with_uniform_randomness(
                musig::musig::SessionSecretRand::assume_uniformly_random(rand),
                op_musig,
                &msg,
                extra,
            );
            sessions.insert(
                node.txid,
                NodeSession {
                    msg,
                    cache,
                    output_key,
                    cosigners: node.cosigners.clone(),
                    nonces: HashMap::from([(op_tree_pk, public)]),
                    op_secnonce: Some(sec),
                    agg_nonce: None,
                    partials: HashMap::new(),
                    signature: None,
                },
            );
        }
        let n_op = operator.len();
        Ok(Self {
            commitment,
            vtxo_tree,
            connector_tree,
            cosigners,
            sessions,
            forfeitable,
            forfeits: HashMap::new(),
            used_connectors: HashSet::new(),
            boarding: (n_op..n_op + boarding_inputs.len()).collect(),
            boarding_signed: HashSet::new(),
            operator_inputs: (0..n_op).collect(),
            spent_operator_utxos: operator.iter().map(|(o, _)| *o).collect(),
            change: change_vout.and_then(|v| {
                let v = u32::try_from(v).ok()?;
                change.map(|c| (v, c))
            }),
            forfeit_script: keys.forfeit_script(),
        })
    }

    /// The commitment txid.
    pub fn txid(&self) -> Txid {
        self.commitment.unsigned_tx.compute_txid()
    }

    /// `SubmitTreeNonces` from `key` (one nonce per tree tx it co-signs).
    pub fn add_nonces(
        &mut self,
        key: &PublicKey,
        nonces: &HashMap<String, String>,
    ) -> Result<(), SimError> {
        if !self.cosigners.contains(key) {
            return Err(invalid(
                "INVALID_INTENT_PSBT",
                format!("{key} is not a cosigner of this batch"),
            ));
        }
        let mut parsed = Vec::new();
        for (txid, s) in &self.sessions {
            if !s.cosigners.contains(key) {
                continue;
            }
            let hex = nonces.get(&txid.to_string()).ok_or_else(|| {
                invalid(
                    "INVALID_ARGUMENT",
                    format!("missing nonce for tree tx {txid}"),
                )
            })?;
            let bytes: [u8; 66] = hex::decode(hex)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    invalid("INVALID_ARGUMENT", format!("malformed nonce for {txid}"))
                })?;
            let nonce = PublicNonce::from_byte_array(&bytes)
                .map_err(|e| invalid("INVALID_ARGUMENT", format!("nonce for {txid}: {e}")))?;
            parsed.push((*txid, nonce));
        }
        for (txid, nonce) in parsed {
            if let Some(s) = self.sessions.get_mut(&txid) {
                s.nonces.insert(*key, nonce);
            }
        }
        Ok(())
    }

    /// Keys that have not sent their nonces yet.
    pub fn missing_nonces(&self) -> Vec<PublicKey> {
        self.cosigners
            .iter()
            .filter(|k| {
                self.sessions
                    .values()
                    .any(|s| s.cosigners.contains(k) && !s.nonces.contains_key(k))
            })
            .copied()
            .collect()
    }

    /// Aggregates every tx's nonces and makes the operator's partial signatures.
    /// Returns `(txid, cosigners, x-only hex → nonce hex, aggregated nonce hex)` per tx.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_nonces(
        &mut self,
        keys: &OperatorKeys,
    ) -> Result<Vec<(Txid, Vec<PublicKey>, HashMap<String, String>, String)>, SimError> {
        let op_pk = keys.tree_key.public_key();
        let op_kp = musig::Keypair::from_secret_bytes(keys.tree_key.secret_bytes())
            .map_err(|e| internal(e.to_string()))?;
        let mut out = Vec::new();
        for node in &self.vtxo_tree.nodes {
            let Some(s) = self.sessions.get_mut(&node.txid) else {
                continue;
            };
            let all: Vec<&PublicNonce> = s.nonces.values().collect();
            let agg = AggregatedNonce::new(&all);
            let sec = s
                .op_secnonce
                .take()
                .ok_or_else(|| internal("operator nonce already used"))?;
            let session = musig::musig::Session::new(&s.cache, agg, &s.msg);
            let partial = session.partial_sign(sec, &op_kp, &s.cache);
            s.partials.insert(op_pk, partial);
            s.agg_nonce = Some(agg);
            let nonces = s
                .nonces
                .iter()
                .map(|(k, n)| {
                    (
                        k.x_only_public_key().0.to_string(),
                        hex::encode(n.serialize()),
                    )
                })
                .collect();
            out.push((
                node.txid,
                s.cosigners.clone(),
                nonces,
                hex::encode(agg.serialize()),
            ));
        }
        Ok(out)
    }

    /// `SubmitTreeSignatures` from `key`: every partial signature is verified.
    pub fn add_signatures(
        &mut self,
        key: &PublicKey,
        sigs: &HashMap<String, String>,
    ) -> Result<(), SimError> {
        if !self.cosigners.contains(key) {
            return Err(invalid(
                "INVALID_INTENT_PSBT",
                format!("{key} is not a cosigner of this batch"),
            ));
        }
        let musig_pk = to_musig(key)?;
        let mut parsed = Vec::new();
        for (txid, s) in &self.sessions {
            if !s.cosigners.contains(key) {
                continue;
            }
            let agg = s
                .agg_nonce
                .ok_or_else(|| invalid("INVALID_ARGUMENT", "nonces are not aggregated yet"))?;
            let hex = sigs.get(&txid.to_string()).ok_or_else(|| {
                invalid(
                    "INVALID_ARGUMENT",
                    format!("missing signature for tree tx {txid}"),
                )
            })?;
            let bytes: [u8; 32] = hex::decode(hex)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    invalid(
                        "INVALID_SIGNATURE",
                        format!("malformed partial signature for {txid}"),
                    )
                })?;
            let partial = PartialSignature::from_byte_array(&bytes).map_err(|e| {
                invalid(
                    "INVALID_SIGNATURE",
                    format!("partial signature for {txid}: {e}"),
                )
            })?;
            let nonce = s
                .nonces
                .get(key)
                .ok_or_else(|| invalid("INVALID_ARGUMENT", "no nonce from this key"))?;
            let session = musig::musig::Session::new(&s.cache, agg, &s.msg);
            if !session.partial_verify(&s.cache, &partial, nonce, musig_pk) {
                return Err(invalid(
                    "INVALID_SIGNATURE",
                    format!("invalid partial signature of {key} for tree tx {txid}"),
                ));
            }
            parsed.push((*txid, partial));
        }
        for (txid, p) in parsed {
            if let Some(s) = self.sessions.get_mut(&txid) {
                s.partials.insert(*key, p);
            }
        }
        Ok(())
    }

    /// Keys that have not sent their partial signatures yet.
    pub fn missing_signatures(&self) -> Vec<PublicKey> {
        self.cosigners
            .iter()
            .filter(|k| {
                self.sessions
                    .values()
                    .any(|s| s.cosigners.contains(k) && !s.partials.contains_key(k))
            })
            .copied()
            .collect()
    }

    /// Aggregates the partial signatures; each final signature is verified
    /// against the tx's output key. Returns `(txid, cosigners, signature hex)`.
    pub fn aggregate_signatures(
        &mut self,
    ) -> Result<Vec<(Txid, Vec<PublicKey>, String)>, SimError> {
        let secp = Secp256k1::verification_only();
        let mut out = Vec::new();
        for node in &self.vtxo_tree.nodes {
            let Some(s) = self.sessions.get_mut(&node.txid) else {
                continue;
            };
            let agg = s
                .agg_nonce
                .ok_or_else(|| internal("nonces not aggregated"))?;
            let session = musig::musig::Session::new(&s.cache, agg, &s.msg);
            let partials: Vec<&PartialSignature> = s.partials.values().collect();
            let raw = session.partial_sig_agg(&partials).assume_valid();
            let sig = schnorr::Signature::from_slice(&raw.to_byte_array())
                .map_err(|e| internal(e.to_string()))?;
            secp.verify_schnorr(&sig, &Message::from_digest(s.msg), &s.output_key)
                .map_err(|_| {
                    invalid(
                        "INVALID_SIGNATURE",
                        format!(
                            "aggregated signature of tree tx {} does not verify",
                            node.txid
                        ),
                    )
                })?;
            s.signature = Some(sig);
            out.push((node.txid, s.cosigners.clone(), hex::encode(sig.as_ref())));
        }
        Ok(out)
    }

    /// `SubmitSignedForfeitTxs`: forfeits checked against this batch's
    /// connectors and the VTXOs it settles; the commitment tx's boarding
    /// inputs checked for their owner's signatures.
    pub fn add_forfeits(
        &mut self,
        server: &ServerInfo,
        forfeits: &[Psbt],
        signed_commitment: Option<&Psbt>,
        dust: u64,
    ) -> Result<(), SimError> {
        let forfeit_script = self.forfeit_script.clone();
        let mut accepted = Vec::new();
        for f in forfeits {
            let (vtxo, connector, psbt) = self.check_forfeit(server, f, &forfeit_script, dust)?;
            if accepted.iter().any(|(_, c, _)| *c == connector) {
                return Err(invalid(
                    "INVALID_FORFEIT_TXS",
                    format!("connector {connector} used twice"),
                ));
            }
            accepted.push((vtxo, connector, psbt));
        }
        let mut boarding_ok = Vec::new();
        if let Some(theirs) = signed_commitment {
            if theirs.unsigned_tx.compute_txid() != self.txid() {
                return Err(invalid(
                    "INVALID_BOARDING_INPUT_SIG",
                    "signed commitment tx is not this batch's",
                ));
            }
            let mut check = self.commitment.clone();
            for &i in &self.boarding {
                let (Some(src), Some(dst)) = (theirs.inputs.get(i), check.inputs.get_mut(i)) else {
                    continue;
                };
                if src.tap_script_sigs.is_empty() {
                    continue;
                }
                dst.tap_scripts = src.tap_scripts.clone();
                dst.tap_script_sigs = src.tap_script_sigs.clone();
                let missing: Vec<_> = missing_signers(&check, i)
                    .map_err(|e| invalid("INVALID_BOARDING_INPUT_SIG", format!("input {i}: {e}")))?
                    .into_iter()
                    .filter(|k| !server.is_signer(k))
                    .collect();
                if !missing.is_empty() {
                    return Err(invalid(
                        "INVALID_BOARDING_INPUT_SIG",
                        format!("input {i}: missing owner signature"),
                    ));
                }
                boarding_ok.push(i);
            }
            // Only the boarding inputs carry signatures in `check`.
            for (i, input) in check.inputs.iter_mut().enumerate() {
                if !boarding_ok.contains(&i) {
                    input.tap_script_sigs.clear();
                }
            }
            verify_signatures(&check)
                .map_err(|e| invalid("INVALID_BOARDING_INPUT_SIG", e.to_string()))?;
            for &i in &boarding_ok {
                self.commitment.inputs[i].tap_scripts = check.inputs[i].tap_scripts.clone();
                self.commitment.inputs[i].tap_script_sigs = check.inputs[i].tap_script_sigs.clone();
            }
        }
        for (vtxo, connector, psbt) in accepted {
            self.used_connectors.insert(connector);
            self.forfeits.insert(vtxo, psbt);
        }
        self.boarding_signed.extend(boarding_ok);
        Ok(())
    }

    fn check_forfeit(
        &self,
        server: &ServerInfo,
        f: &Psbt,
        forfeit_script: &ScriptBuf,
        dust: u64,
    ) -> Result<(OutPoint, OutPoint, Psbt), SimError> {
        let bad = |m: String| invalid("INVALID_FORFEIT_TXS", m);
        let tx = &f.unsigned_tx;
        if tx.input.len() != 2 || f.inputs.len() != 2 {
            return Err(bad("a forfeit tx has two inputs (connector, VTXO)".into()));
        }
        let vtxo_index = tx
            .input
            .iter()
            .position(|i| {
                self.forfeitable
                    .iter()
                    .any(|(o, _)| *o == i.previous_output)
            })
            .ok_or_else(|| bad("forfeit does not spend a VTXO settled by this batch".into()))?;
        let connector_index = 1 - vtxo_index;
        let vtxo = tx.input[vtxo_index].previous_output;
        let connector = tx.input[connector_index].previous_output;
        let connector_out = self
            .connector_tree
            .leaves()
            .find(|n| n.txid == connector.txid)
            .and_then(|n| n.psbt.unsigned_tx.output.get(connector.vout as usize))
            .filter(|o| o.value.to_sat() > 0)
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "forfeit of {vtxo} does not spend a connector of this batch"
                ))
            })?;
        if self.forfeits.contains_key(&vtxo) {
            return Err(bad(format!("forfeit of {vtxo} already received")));
        }
        if self.used_connectors.contains(&connector) {
            return Err(bad(format!("connector {connector} already used")));
        }
        let vtxo_out = self
            .forfeitable
            .iter()
            .find(|(o, _)| *o == vtxo)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| bad("unknown VTXO".into()))?;
        // Rebuild the forfeit as arkd does and compare txids.
        let expected = Transaction {
            version: Version::non_standard(3),
            lock_time: absolute::LockTime::ZERO,
            input: tx
                .input
                .iter()
                .map(|i| TxIn {
                    previous_output: i.previous_output,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: vec![
                TxOut {
                    value: vtxo_out.value
                        + Amount::from_sat(dust.min(connector_out.value.to_sat())),
                    script_pubkey: forfeit_script.clone(),
                },
                anchor_output(),
            ],
        };
        if expected.compute_txid() != tx.compute_txid() {
            return Err(bad(format!(
                "forfeit of {vtxo} does not match the expected tx"
            )));
        }
        let mut check = f.clone();
        check.inputs[vtxo_index].witness_utxo = Some(vtxo_out);
        check.inputs[connector_index].witness_utxo = Some(connector_out);
        check.inputs[connector_index].tap_script_sigs.clear();
        let (leaf, _) =
            input_leaf(&check, vtxo_index).map_err(|e| bad(format!("forfeit of {vtxo}: {e}")))?;
        // A delegate's forfeit carries the owner's SIGHASH_ALL|ANYONECANPAY
        // signature (ark-core `sign_delegate_psbts`); arkd verifies each
        // signature with its own sighash type. Those are checked here, the
        // SIGHASH_DEFAULT ones by `verify_signatures`.
        let mut default_only = check.clone();
        verify_anyone_can_pay(&check, vtxo_index, &leaf)
            .map_err(|m| invalid("INVALID_SIGNATURE", format!("forfeit of {vtxo}: {m}")))?;
        default_only.inputs[vtxo_index]
            .tap_script_sigs
            .retain(|_, s| s.sighash_type != TapSighashType::AllPlusAnyoneCanPay);
        verify_signatures(&default_only)
            .map_err(|e| invalid("INVALID_SIGNATURE", format!("forfeit of {vtxo}: {e}")))?;
        let missing: Vec<_> = missing_signers(&check, vtxo_index)
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .filter(|k| !server.is_signer(k))
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!("forfeit of {vtxo} is not signed by the owner")));
        }
        Ok((vtxo, connector, check))
    }

    /// VTXOs whose forfeit is still missing and boarding inputs still unsigned.
    pub fn missing_forfeits(&self) -> (Vec<OutPoint>, Vec<OutPoint>) {
        let vtxos = self
            .forfeitable
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| !self.forfeits.contains_key(o))
            .collect();
        let boarding = self
            .boarding
            .iter()
            .filter(|i| !self.boarding_signed.contains(i))
            .filter_map(|i| {
                self.commitment
                    .unsigned_tx
                    .input
                    .get(*i)
                    .map(|t| t.previous_output)
            })
            .collect();
        (vtxos, boarding)
    }

    /// Signs the operator's inputs (key path) and co-signs the boarding inputs
    /// (script path), then assembles every witness: the tx to broadcast.
    pub fn finalize(&mut self, keys: &OperatorKeys) -> Result<Transaction, SimError> {
        let secp = Secp256k1::new();
        for &i in &self.boarding {
            sign_input(&mut self.commitment, i, &keys.signer)
                .map_err(|e| internal(format!("co-signing boarding input {i}: {e}")))?;
        }
        let prevouts: Vec<TxOut> = self
            .commitment
            .inputs
            .iter()
            .map(|i| {
                i.witness_utxo
                    .clone()
                    .ok_or_else(|| internal("missing prevout"))
            })
            .collect::<Result<_, _>>()?;
        let mut tx = self.commitment.unsigned_tx.clone();
        let tweaked = keys.signer.tap_tweak(&secp, None).to_keypair();
        for &i in &self.operator_inputs {
            let sighash = SighashCache::new(&self.commitment.unsigned_tx)
                .taproot_key_spend_signature_hash(
                    i,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .map_err(|e| internal(e.to_string()))?;
            let sig = secp
                .sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), &tweaked);
            tx.input[i].witness = Witness::from_slice(&[sig.as_ref().to_vec()]);
        }
        for &i in &self.boarding {
            let (leaf, control) =
                input_leaf(&self.commitment, i).map_err(|e| internal(e.to_string()))?;
            let leaf_hash = ark_relay_ark::script::leaf_hash(&leaf);
            let mut items: Vec<Vec<u8>> = Vec::new();
            for key in leaf_signers(&leaf).iter().rev() {
                let sig = self.commitment.inputs[i]
                    .tap_script_sigs
                    .get(&(*key, leaf_hash))
                    .ok_or_else(|| internal(format!("boarding input {i}: missing signature")))?;
                items.push(sig.to_vec());
            }
            items.push(leaf.to_bytes());
            items.push(control.serialize());
            tx.input[i].witness = Witness::from_slice(&items);
        }
        Ok(tx)
    }
}
