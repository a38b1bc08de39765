//! The trees of a batch, built as arkd's `tree/builder.go` builds them: the
//! VTXO tree (one leaf per intent, MuSig2 outputs with a sweep leaf) and the
//! connector tree (one leaf per forfeited VTXO), both binary, plus the MuSig2
//! key aggregation and sighash every tree tx is signed with. Pure: no I/O.

use std::collections::HashMap;

use bitcoin::hashes::Hash;
use bitcoin::psbt::raw;
use bitcoin::secp256k1::{PublicKey, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::{LeafVersion, TaprootBuilder};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, OutPoint, Psbt, ScriptBuf, Sequence, TapSighashType, Transaction, TxIn,
    TxOut, Txid, Witness,
};

use ark_relay_ark::script::{anchor_output, csv_script};
use ark_relay_ark::RelativeLocktime;

/// PSBT unknown-field type arkd uses for its own fields.
const ARK_FIELD: u8 = 0xDE;
/// `0xDE "cosigner" ‖ u32be index` → 33-byte key.
const COSIGNER_KEY: &[u8] = b"cosigner";
/// `0xDE "expiry"` → minimal LE BIP68 sequence of the tree expiry.
const EXPIRY_KEY: &[u8] = b"expiry";

/// Why a tree could not be built or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// No leaves.
    #[error("a tree needs at least one leaf")]
    Empty,
    /// A key is not a valid MuSig2 key or tweak.
    #[error("invalid key: {0}")]
    Key(String),
    /// Output values overflow.
    #[error("amount overflow")]
    Overflow,
}

/// One leaf of a tree: its outputs (the P2A anchor is appended), the keys
/// that co-sign it (empty for connectors) and the event topics it is sent to.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Outputs of the leaf tx, anchor excluded.
    pub outputs: Vec<TxOut>,
    /// Cosigners of the leaf (VTXO tree: the intent's keys + the operator's).
    pub cosigners: Vec<PublicKey>,
    /// Topics of the leaf (VTXO tree: cosigner keys; connectors: VTXO outpoints).
    pub topics: Vec<String>,
}

/// One transaction of a built tree.
#[derive(Debug, Clone)]
pub struct TreeNode {
    /// The PSBT (unsigned; witness_utxo set to the parent output).
    pub psbt: Psbt,
    /// Its txid.
    pub txid: Txid,
    /// Output index → child txid.
    pub children: HashMap<u32, Txid>,
    /// The node's cosigners (union of its subtree's, order kept).
    pub cosigners: Vec<PublicKey>,
    /// Topics the node's events go to.
    pub topics: Vec<String>,
    /// Whether it has no children.
    pub is_leaf: bool,
}

/// A built tree, root first (parents always before children).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<TreeNode>,
}

impl Tree {
    /// The node with `txid`.
    pub fn node(&self, txid: &Txid) -> Option<&TreeNode> {
        self.nodes.iter().find(|n| n.txid == *txid)
    }

    /// The output `outpoint` of one of the tree's txs.
    pub fn output(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.node(&outpoint.txid)?
            .psbt
            .unsigned_tx
            .output
            .get(usize::try_from(outpoint.vout).ok()?)
    }

    /// The leaves, in tree order.
    pub fn leaves(&self) -> impl Iterator<Item = &TreeNode> {
        self.nodes.iter().filter(|n| n.is_leaf)
    }
}

/// The shape of a subtree before txids are known.
struct Shape {
    children: Vec<usize>,
    cosigners: Vec<PublicKey>,
    topics: Vec<String>,
    value: u64,
    leaf_outputs: Option<Vec<TxOut>>,
}

/// The tree's output scripts: MuSig2 + sweep leaf (VTXO tree) or one fixed
/// key-path script (connectors).
#[derive(Debug, Clone)]
pub enum OutputScript {
    /// P2TR(KeyAgg(sorted cosigners) tweaked with the sweep leaf
    /// `<expiry> CSV DROP <forfeit key> CHECKSIG`).
    Musig {
        /// The tree expiry.
        expiry: RelativeLocktime,
        /// The key of the sweep leaf.
        sweep_key: XOnlyPublicKey,
    },
    /// The same script for every output.
    Fixed(ScriptBuf),
}

impl OutputScript {
    fn script(&self, cosigners: &[PublicKey]) -> Result<ScriptBuf, TreeError> {
        match self {
            OutputScript::Fixed(s) => Ok(s.clone()),
            OutputScript::Musig { expiry, sweep_key } => {
                let agg = aggregate_key(cosigners)?;
                let info = sweep_spend_info(*expiry, sweep_key, agg.agg_pk_xonly)?;
                Ok(ScriptBuf::new_p2tr_tweaked(info))
            }
        }
    }
}

/// An aggregated key with its (untweaked) cache.
pub struct AggKey {
    /// The MuSig2 key-aggregation cache (bitcoin's secp types converted).
    pub cache: musig::musig::KeyAggCache,
    /// The aggregated x-only key.
    pub agg_pk_xonly: XOnlyPublicKey,
}

fn to_musig_pk(pk: &PublicKey) -> Result<musig::PublicKey, TreeError> {
    musig::PublicKey::from_slice(&pk.serialize()).map_err(|e| TreeError::Key(e.to_string()))
}

/// MuSig2 KeyAgg over the **sorted** cosigner keys (arkd `AggregateKeys`,
/// ark-core `sign_batch_tree_tx`).
pub fn aggregate_key(cosigners: &[PublicKey]) -> Result<AggKey, TreeError> {
    let mut keys = cosigners.to_vec();
    keys.sort_by_key(|k| k.serialize());
    keys.dedup();
    let keys = keys
        .iter()
        .map(to_musig_pk)
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&musig::PublicKey> = keys.iter().collect();
    let cache = musig::musig::KeyAggCache::new(&refs);
    let agg_pk_xonly = XOnlyPublicKey::from_slice(&cache.agg_pk().to_byte_array())
        .map_err(|e| TreeError::Key(e.to_string()))?;
    Ok(AggKey {
        cache,
        agg_pk_xonly,
    })
}

/// The taproot output key of a tree output: `agg` tweaked with the merkle
/// root of the single sweep leaf.
fn sweep_spend_info(
    expiry: RelativeLocktime,
    sweep_key: &XOnlyPublicKey,
    agg: XOnlyPublicKey,
) -> Result<bitcoin::key::TweakedPublicKey, TreeError> {
    Ok(sweep_tree(expiry, sweep_key, agg)?.output_key())
}

/// The sweep leaf's spend info over internal key `agg`.
pub fn sweep_tree(
    expiry: RelativeLocktime,
    sweep_key: &XOnlyPublicKey,
    agg: XOnlyPublicKey,
) -> Result<bitcoin::taproot::TaprootSpendInfo, TreeError> {
    let secp = Secp256k1::verification_only();
    TaprootBuilder::new()
        .add_leaf_with_ver(0, csv_script(sweep_key, expiry), LeafVersion::TapScript)
        .map_err(|e| TreeError::Key(e.to_string()))?
        .finalize(&secp, agg)
        .map_err(|_| TreeError::Key("cannot finalize sweep tree".into()))
}

/// The cache tweaked for signing a tree tx whose input is controlled by `cosigners`.
pub fn signing_cache(
    cosigners: &[PublicKey],
    expiry: RelativeLocktime,
    sweep_key: &XOnlyPublicKey,
) -> Result<musig::musig::KeyAggCache, TreeError> {
    let mut agg = aggregate_key(cosigners)?;
    let info = sweep_tree(expiry, sweep_key, agg.agg_pk_xonly)?;
    let tweak = musig::SecretKey::from_secret_bytes(info.tap_tweak().to_byte_array())
        .map_err(|e| TreeError::Key(e.to_string()))?;
    agg.cache
        .pubkey_xonly_tweak_add(&musig::Scalar::from(tweak))
        .map_err(|e| TreeError::Key(e.to_string()))?;
    Ok(agg.cache)
}

/// The BIP341 key-path sighash (DEFAULT) of a tree tx's input 0 spending `prevout`.
pub fn tree_sighash(tx: &Transaction, prevout: &TxOut) -> Result<[u8; 32], TreeError> {
    let prevouts = [prevout];
    SighashCache::new(tx)
        .taproot_key_spend_signature_hash(0, &Prevouts::All(&prevouts), TapSighashType::Default)
        .map(|h| h.to_byte_array())
        .map_err(|e| TreeError::Key(e.to_string()))
}

fn merge_keys(into: &mut Vec<PublicKey>, from: &[PublicKey]) {
    for k in from {
        if !into.contains(k) {
            into.push(*k);
        }
    }
}

fn merge_topics(into: &mut Vec<String>, from: &[String]) {
    for t in from {
        if !into.contains(t) {
            into.push(t.clone());
        }
    }
}

/// The root output (script and value) a tree of `leaves` needs in the
/// commitment tx, and a builder for the tree once that output's outpoint is known.
pub fn root_output(leaves: &[LeafSpec], scripts: &OutputScript) -> Result<TxOut, TreeError> {
    let (shapes, root) = shape(leaves)?;
    let s = &shapes[root];
    Ok(TxOut {
        value: Amount::from_sat(s.value),
        script_pubkey: scripts.script(&s.cosigners)?,
    })
}

fn shape(leaves: &[LeafSpec]) -> Result<(Vec<Shape>, usize), TreeError> {
    if leaves.is_empty() {
        return Err(TreeError::Empty);
    }
    let mut shapes = Vec::new();
    let mut level = Vec::new();
    for l in leaves {
        let value = l
            .outputs
            .iter()
            .try_fold(0u64, |a, o| a.checked_add(o.value.to_sat()))
            .ok_or(TreeError::Overflow)?;
        shapes.push(Shape {
            children: Vec::new(),
            cosigners: l.cosigners.clone(),
            topics: l.topics.clone(),
            value,
            leaf_outputs: Some(l.outputs.clone()),
        });
        level.push(shapes.len() - 1);
    }
    // Radix 2; an odd node is carried up unpaired.
    while level.len() > 1 {
        let mut next = Vec::new();
        for pair in level.chunks(2) {
            if let [only] = pair {
                next.push(*only);
                continue;
            }
            let mut cosigners = Vec::new();
            let mut topics = Vec::new();
            let mut value = 0u64;
            for c in pair {
                merge_keys(&mut cosigners, &shapes[*c].cosigners);
                merge_topics(&mut topics, &shapes[*c].topics);
                value = value
                    .checked_add(shapes[*c].value)
                    .ok_or(TreeError::Overflow)?;
            }
            shapes.push(Shape {
                children: pair.to_vec(),
                cosigners,
                topics,
                value,
                leaf_outputs: None,
            });
            next.push(shapes.len() - 1);
        }
        level = next;
    }
    let root = level.first().copied().ok_or(TreeError::Empty)?;
    Ok((shapes, root))
}

/// Builds the tree of `leaves` under `root_outpoint` (which pays
/// [`root_output`]). `expiry` is written into every VTXO-tree PSBT.
pub fn build_tree(
    leaves: &[LeafSpec],
    scripts: &OutputScript,
    root_outpoint: OutPoint,
) -> Result<Tree, TreeError> {
    let (shapes, root) = shape(leaves)?;
    let root_prevout = TxOut {
        value: Amount::from_sat(shapes[root].value),
        script_pubkey: scripts.script(&shapes[root].cosigners)?,
    };
    let mut tree = Tree::default();
    // (shape index, its input, the prevout it spends, index of the parent node in `tree`, vout)
    let mut queue = std::collections::VecDeque::from([(root, root_outpoint, root_prevout, None)]);
    while let Some((idx, input, prevout, parent)) = queue.pop_front() {
        let s = &shapes[idx];
        let mut outputs = match &s.leaf_outputs {
            Some(outs) => outs.clone(),
            None => s
                .children
                .iter()
                .map(|c| {
                    Ok(TxOut {
                        value: Amount::from_sat(shapes[*c].value),
                        script_pubkey: scripts.script(&shapes[*c].cosigners)?,
                    })
                })
                .collect::<Result<Vec<_>, TreeError>>()?,
        };
        outputs.push(anchor_output());
        let tx = Transaction {
            version: Version::non_standard(3),
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: input,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs,
        };
        let txid = tx.compute_txid();
        let mut psbt = Psbt::from_unsigned_tx(tx).map_err(|e| TreeError::Key(e.to_string()))?;
        if let Some(pin) = psbt.inputs.first_mut() {
            pin.witness_utxo = Some(prevout);
            pin.sighash_type = Some(TapSighashType::Default.into());
            for (i, k) in s.cosigners.iter().enumerate() {
                let mut key = COSIGNER_KEY.to_vec();
                key.extend_from_slice(&u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes());
                pin.unknown.insert(
                    raw::Key {
                        type_value: ARK_FIELD,
                        key,
                    },
                    k.serialize().to_vec(),
                );
            }
            if let OutputScript::Musig { expiry, .. } = scripts {
                pin.unknown.insert(
                    raw::Key {
                        type_value: ARK_FIELD,
                        key: EXPIRY_KEY.to_vec(),
                    },
                    minimal_le(expiry.to_sequence_u32()),
                );
            }
        }
        for (vout, c) in s.children.iter().enumerate() {
            let vout = u32::try_from(vout).map_err(|_| TreeError::Overflow)?;
            let out = psbt.unsigned_tx.output[vout as usize].clone();
            queue.push_back((*c, OutPoint { txid, vout }, out, Some(tree.nodes.len())));
        }
        if let Some((p, vout)) = parent.map(|p: usize| (p, input.vout)) {
            tree.nodes[p].children.insert(vout, txid);
        }
        tree.nodes.push(TreeNode {
            psbt,
            txid,
            children: HashMap::new(),
            cosigners: s.cosigners.clone(),
            topics: s.topics.clone(),
            is_leaf: s.leaf_outputs.is_some(),
        });
    }
    Ok(tree)
}

/// Minimal little-endian encoding (no trailing zero bytes), as arkd writes
/// script numbers in its PSBT fields.
fn minimal_le(n: u32) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::{Keypair, SecretKey};

    fn key(b: u8) -> PublicKey {
        let secp = Secp256k1::new();
        Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[b; 32]).expect("key")).public_key()
    }

    #[test]
    fn a_three_leaf_tree_chains_values_and_children() {
        let op = key(9);
        let leaves: Vec<LeafSpec> = (1..=3u8)
            .map(|i| LeafSpec {
                outputs: vec![TxOut {
                    value: Amount::from_sat(1_000 * u64::from(i)),
                    script_pubkey: ScriptBuf::new_op_return([i]),
                }],
                cosigners: vec![key(i), op],
                topics: vec![key(i).to_string(), op.to_string()],
            })
            .collect();
        let scripts = OutputScript::Musig {
            expiry: RelativeLocktime::blocks(20),
            sweep_key: op.x_only_public_key().0,
        };
        let root = root_output(&leaves, &scripts).expect("root");
        assert_eq!(root.value, Amount::from_sat(6_000));
        let tree = build_tree(&leaves, &scripts, OutPoint::null()).expect("tree");
        assert_eq!(tree.nodes.len(), 5, "3 leaves + 2 branches");
        assert_eq!(tree.leaves().count(), 3);
        assert_eq!(
            tree.nodes[0].psbt.unsigned_tx.output[0].value.to_sat()
                + tree.nodes[0].psbt.unsigned_tx.output[1].value.to_sat(),
            6_000
        );
        for n in &tree.nodes {
            for (vout, child) in &n.children {
                let c = tree.node(child).expect("child");
                assert_eq!(
                    c.psbt.unsigned_tx.input[0].previous_output,
                    OutPoint {
                        txid: n.txid,
                        vout: *vout
                    }
                );
                let spent = &n.psbt.unsigned_tx.output[*vout as usize];
                assert_eq!(
                    spent.script_pubkey,
                    scripts.script(&c.cosigners).expect("script")
                );
            }
        }
    }
}
