//! Tapscript leaves and VTXO Taproot trees, exactly as arkd (Go) builds them.
//!
//! - Keys in leaves are BIP-340 x-only keys, so a Nostr key is a VTXO owner key as is.
//! - Leaves (arkd `pkg/ark-lib/script/closure.go`): the checksig multisig
//!   `<k1> CHECKSIGVERIFY … <kn> CHECKSIG` (a 1-key "multisig" is `<k> CHECKSIG`),
//!   the checksig-add multisig `<k1> CHECKSIG <k2> CHECKSIGADD … <n> NUMEQUAL`, and
//!   the same prefixed by `<bip68 seq> CSV DROP` (exit leaves, the server's
//!   checkpoint leaf) or `<locktime> CLTV DROP`.
//! - The **collaborative** ("forfeit") leaf of a default VTXO is
//!   `<owner> CHECKSIGVERIFY <signer> CHECKSIG` — arkd's Go/TS key order. ark-core's
//!   `Vtxo::new_default` puts the server key first, which gives another address for
//!   the same owner (research/ark.md §2.1), so we build leaves ourselves and store
//!   every VTXO's full leaf list instead of re-deriving it.
//! - The tree is assembled like btcd's `txscript.AssembleTaprootScriptTree`
//!   (pair leaves left to right, a trailing odd leaf joins the last pair, then
//!   repeatedly merge the two front-most branches and queue the result at the back), over the NUMS internal key. ark-core 0.12
//!   has the same algorithm but only behind its `Vtxo` type, which also needs an
//!   exit delay and a network; the cross-implementation tests check that both agree.

use std::collections::{BTreeSet, VecDeque};

use bitcoin::absolute::LockTime;
use bitcoin::key::TweakedPublicKey;
use bitcoin::opcodes::all::{
    OP_CHECKSIG, OP_CHECKSIGADD, OP_CHECKSIGVERIFY, OP_CLTV, OP_CSV, OP_DROP, OP_NUMEQUAL,
};
use bitcoin::script::{Builder, Instruction, PushBytesBuf};
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{ControlBlock, LeafVersion, NodeInfo, TapLeafHash, TaprootSpendInfo};
use bitcoin::{Amount, Script, ScriptBuf, TxOut};

use ark_relay_core::Tapscripts;

use crate::{ArkError, RelativeLocktime};

/// The NUMS point arkd uses as the unspendable Taproot internal key (compressed form).
pub const NUMS_KEY_HEX: &str = "0250929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0";

/// The x-only bytes of [`NUMS_KEY_HEX`] (BIP-341's "H" point).
const NUMS_X_ONLY: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

/// The script of the zero-value P2A anchor output every Ark transaction ends with.
pub const ANCHOR_SCRIPT_PUBKEY: [u8; 4] = [0x51, 0x02, 0x4e, 0x73];

/// The unspendable Taproot internal key of every VTXO and checkpoint output.
pub fn nums_key() -> XOnlyPublicKey {
    XOnlyPublicKey::from_slice(&NUMS_X_ONLY).expect("the NUMS constant is a valid x-only key")
}

/// The P2A anchor output (`51024e73`, value 0).
pub fn anchor_output() -> TxOut {
    TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(ANCHOR_SCRIPT_PUBKEY.to_vec()),
    }
}

/// Whether `script` is the P2A anchor.
pub fn is_anchor(script: &Script) -> bool {
    script.as_bytes() == ANCHOR_SCRIPT_PUBKEY
}

/// How the keys of a multisig leaf are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MultisigType {
    /// `<k1> CHECKSIGVERIFY … <kn> CHECKSIG`.
    Checksig,
    /// `<k1> CHECKSIG <k2> CHECKSIGADD … <n> NUMEQUAL`.
    ChecksigAdd,
}

/// An n-of-n multisig: every key must sign.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Multisig {
    /// The keys, in script order (never empty).
    pub keys: Vec<XOnlyPublicKey>,
    /// How they are checked.
    pub kind: MultisigType,
}

/// A leaf script of a kind arkd understands (arkd's closures without conditions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Closure {
    /// Collaborative / forfeit leaf: all keys sign, no timelock.
    Multisig(Multisig),
    /// Exit leaf: all keys sign after a relative timelock.
    CsvMultisig {
        /// The BIP-68 delay.
        locktime: RelativeLocktime,
        /// The keys.
        multisig: Multisig,
    },
    /// Forfeit leaf usable after an absolute locktime.
    CltvMultisig {
        /// The absolute locktime.
        locktime: LockTime,
        /// The keys.
        multisig: Multisig,
    },
}

impl Closure {
    /// The keys that must all sign a spend through this leaf.
    pub fn keys(&self) -> &[XOnlyPublicKey] {
        match self {
            Closure::Multisig(m)
            | Closure::CsvMultisig { multisig: m, .. }
            | Closure::CltvMultisig { multisig: m, .. } => &m.keys,
        }
    }

    /// Whether this is a unilateral (CSV) exit leaf, which off-chain txs never spend.
    pub fn is_exit(&self) -> bool {
        matches!(self, Closure::CsvMultisig { .. })
    }

    /// The leaf script.
    pub fn script(&self) -> ScriptBuf {
        let builder = match self {
            Closure::Multisig(_) => Builder::new(),
            Closure::CsvMultisig { locktime, .. } => Builder::new()
                .push_int(i64::from(locktime.to_sequence_u32()))
                .push_opcode(OP_CSV)
                .push_opcode(OP_DROP),
            Closure::CltvMultisig { locktime, .. } => Builder::new()
                .push_int(i64::from(locktime.to_consensus_u32()))
                .push_opcode(OP_CLTV)
                .push_opcode(OP_DROP),
        };
        let m = match self {
            Closure::Multisig(m)
            | Closure::CsvMultisig { multisig: m, .. }
            | Closure::CltvMultisig { multisig: m, .. } => m,
        };
        push_multisig(builder, m).into_script()
    }

    /// Decodes a leaf; `None` if it is not exactly one of these closures in
    /// arkd's canonical encoding (the script is rebuilt and compared byte for byte,
    /// as arkd's decoders do).
    pub fn decode(script: &Script) -> Option<Closure> {
        let ins: Vec<Instruction<'_>> = script.instructions().collect::<Result<_, _>>().ok()?;
        let closure = match ins.as_slice() {
            [n, Instruction::Op(op1), Instruction::Op(op2), rest @ ..]
                if *op1 == OP_CSV && *op2 == OP_DROP =>
            {
                let seq = u32::try_from(n.script_num()?).ok()?;
                Closure::CsvMultisig {
                    locktime: RelativeLocktime::from_sequence_u32(seq).ok()?,
                    multisig: decode_multisig(rest)?,
                }
            }
            [n, Instruction::Op(op1), Instruction::Op(op2), rest @ ..]
                if *op1 == OP_CLTV && *op2 == OP_DROP =>
            {
                let lt = u32::try_from(n.script_num()?).ok()?;
                Closure::CltvMultisig {
                    locktime: LockTime::from_consensus(lt),
                    multisig: decode_multisig(rest)?,
                }
            }
            rest => Closure::Multisig(decode_multisig(rest)?),
        };
        (closure.script().as_script() == script).then_some(closure)
    }
}

fn push_multisig(mut b: Builder, m: &Multisig) -> Builder {
    let last = m.keys.len().saturating_sub(1);
    for (i, key) in m.keys.iter().enumerate() {
        b = b.push_x_only_key(key);
        b = match m.kind {
            MultisigType::Checksig if i == last => b.push_opcode(OP_CHECKSIG),
            MultisigType::Checksig => b.push_opcode(OP_CHECKSIGVERIFY),
            MultisigType::ChecksigAdd if i == 0 => b.push_opcode(OP_CHECKSIG),
            MultisigType::ChecksigAdd => b.push_opcode(OP_CHECKSIGADD),
        };
    }
    if m.kind == MultisigType::ChecksigAdd {
        let n = i64::try_from(m.keys.len()).unwrap_or(i64::MAX);
        b = b.push_int(n).push_opcode(OP_NUMEQUAL);
    }
    b
}

fn decode_multisig(ins: &[Instruction<'_>]) -> Option<Multisig> {
    let mut keys = Vec::new();
    let mut rest = ins;
    let mut kind = None;
    while let [Instruction::PushBytes(k), Instruction::Op(op), tail @ ..] = rest {
        if k.len() != 32 {
            break;
        }
        keys.push(XOnlyPublicKey::from_slice(k.as_bytes()).ok()?);
        rest = tail;
        let this = if *op == OP_CHECKSIGVERIFY {
            MultisigType::Checksig
        } else if *op == OP_CHECKSIGADD {
            MultisigType::ChecksigAdd
        } else if *op == OP_CHECKSIG {
            // The last op of a checksig chain, or the first of a checksig-add chain.
            if keys.len() == 1 && !rest.is_empty() {
                MultisigType::ChecksigAdd
            } else {
                if !rest.is_empty() || kind == Some(MultisigType::ChecksigAdd) {
                    return None;
                }
                return Some(Multisig {
                    keys,
                    kind: MultisigType::Checksig,
                });
            }
        } else {
            return None;
        };
        if kind.is_some_and(|k| k != this) {
            return None;
        }
        kind = Some(this);
    }
    match (kind, rest) {
        (Some(MultisigType::ChecksigAdd), [n, Instruction::Op(op)]) if *op == OP_NUMEQUAL => {
            (usize::try_from(n.script_num()?).ok()? == keys.len()).then_some(Multisig {
                keys,
                kind: MultisigType::ChecksigAdd,
            })
        }
        _ => None,
    }
}

/// `<k1> CHECKSIGVERIFY … <kn> CHECKSIG` (arkd `MultisigClosure`, checksig type).
pub fn multisig_script(keys: &[XOnlyPublicKey]) -> Result<ScriptBuf, ArkError> {
    if keys.is_empty() {
        return Err(ArkError::EmptyMultisig);
    }
    Ok(Closure::Multisig(Multisig {
        keys: keys.to_vec(),
        kind: MultisigType::Checksig,
    })
    .script())
}

/// The collaborative (forfeit) leaf of a default VTXO:
/// `<owner> OP_CHECKSIGVERIFY <signer> OP_CHECKSIG`.
pub fn collaborative_script(owner: &XOnlyPublicKey, signer: &XOnlyPublicKey) -> ScriptBuf {
    Closure::Multisig(Multisig {
        keys: vec![*owner, *signer],
        kind: MultisigType::Checksig,
    })
    .script()
}

/// A one-key CSV leaf: `<bip68 seq> OP_CHECKSEQUENCEVERIFY OP_DROP <key> OP_CHECKSIG`.
/// This is the unilateral exit leaf of a default VTXO (key = owner, delay = the
/// server's `unilateral_exit_delay`) and the server's checkpoint tapscript
/// (key = forfeit key, delay = checkpoint exit delay).
pub fn csv_script(key: &XOnlyPublicKey, delay: RelativeLocktime) -> ScriptBuf {
    Closure::CsvMultisig {
        locktime: delay,
        multisig: Multisig {
            keys: vec![*key],
            kind: MultisigType::Checksig,
        },
    }
    .script()
}

/// The server's checkpoint tapscript as arkd builds it at start-up:
/// `<checkpoint_exit_delay> CSV DROP <forfeit key> CHECKSIG`.
pub fn checkpoint_script(forfeit_key: &XOnlyPublicKey, delay: RelativeLocktime) -> ScriptBuf {
    csv_script(forfeit_key, delay)
}

/// The keys a spend through `leaf` must be signed by: a known closure's keys, or
/// for any other script every 32-byte push followed by `CHECKSIG`,
/// `CHECKSIGVERIFY` or `CHECKSIGADD`.
pub fn leaf_signers(leaf: &Script) -> Vec<XOnlyPublicKey> {
    if let Some(c) = Closure::decode(leaf) {
        return c.keys().to_vec();
    }
    let ins: Vec<Instruction<'_>> = leaf.instructions().filter_map(Result::ok).collect();
    ins.windows(2)
        .filter_map(|w| match w {
            [Instruction::PushBytes(k), Instruction::Op(op)]
                if k.len() == 32
                    && (*op == OP_CHECKSIG
                        || *op == OP_CHECKSIGVERIFY
                        || *op == OP_CHECKSIGADD) =>
            {
                XOnlyPublicKey::from_slice(k.as_bytes()).ok()
            }
            _ => None,
        })
        .collect()
}

/// The BIP-341 leaf hash of a tapscript leaf (leaf version 0xc0).
pub fn leaf_hash(leaf: &Script) -> TapLeafHash {
    TapLeafHash::from_script(leaf, LeafVersion::TapScript)
}

/// `OP_RETURN <32-byte output key>`: how an output below dust is written (arkd `SubDustScript`).
pub fn sub_dust_script(output_key: &TweakedPublicKey) -> ScriptBuf {
    let mut push = PushBytesBuf::new();
    // A 32-byte push always fits.
    let _ = push.extend_from_slice(&output_key.serialize());
    Builder::new()
        .push_opcode(bitcoin::opcodes::all::OP_RETURN)
        .push_slice(push)
        .into_script()
}

/// A Taproot output with the NUMS internal key and a list of tapscript leaves,
/// assembled like btcd's `AssembleTaprootScriptTree`. The leaf order is kept:
/// it is what the `taptree` PSBT field and the ledger store.
#[derive(Debug, Clone)]
pub struct VtxoScript {
    leaves: Vec<ScriptBuf>,
    spend_info: TaprootSpendInfo,
}

impl PartialEq for VtxoScript {
    fn eq(&self, other: &Self) -> bool {
        self.leaves == other.leaves
    }
}
impl Eq for VtxoScript {}

impl VtxoScript {
    /// A tree of the given leaves, in this order. Fails on no leaves or a repeated leaf.
    pub fn new(leaves: Vec<ScriptBuf>) -> Result<Self, ArkError> {
        let mut seen = BTreeSet::new();
        if let Some(dup) = leaves.iter().find(|l| !seen.insert(l.as_bytes())) {
            return Err(ArkError::DuplicateLeaf {
                leaf: dup.to_hex_string(),
            });
        }
        let node = assemble_btcd_tree(&leaves)?;
        let spend_info = TaprootSpendInfo::from_node_info(&*crate::SECP, nums_key(), node);
        Ok(Self { leaves, spend_info })
    }

    /// The default VTXO of `owner` (arkd `NewDefaultVtxoScript`): leaves
    /// `[exit, collaborative]` in arkd Go's order, i.e.
    /// `[<delay> CSV DROP <owner> CHECKSIG, <owner> CHECKSIGVERIFY <signer> CHECKSIG]`.
    /// (ts-sdk lists them the other way round; with two leaves the output key is the same.)
    pub fn default_vtxo(
        owner: &XOnlyPublicKey,
        signer: &XOnlyPublicKey,
        exit_delay: RelativeLocktime,
    ) -> Self {
        let leaves = vec![
            csv_script(owner, exit_delay),
            collaborative_script(owner, signer),
        ];
        // The two leaves always differ (one starts with a number, the other with a key).
        Self::new(leaves).expect("a two-leaf tree of distinct leaves is valid")
    }

    /// The checkpoint output's tree (arkd `buildCheckpointTx`): `[server checkpoint
    /// tapscript, the collaborative leaf the VTXO is spent with]`.
    pub fn checkpoint(
        checkpoint_tapscript: &Script,
        spend_leaf: &Script,
    ) -> Result<Self, ArkError> {
        Self::new(vec![checkpoint_tapscript.to_owned(), spend_leaf.to_owned()])
    }

    /// From the ledger's stored leaf list.
    pub fn from_tapscripts(tapscripts: &Tapscripts) -> Result<Self, ArkError> {
        Self::new(
            tapscripts
                .0
                .iter()
                .cloned()
                .map(ScriptBuf::from_bytes)
                .collect(),
        )
    }

    /// The leaf list for the ledger.
    pub fn to_tapscripts(&self) -> Tapscripts {
        Tapscripts(self.leaves.iter().map(|l| l.to_bytes()).collect())
    }

    /// The leaves, in order.
    pub fn leaves(&self) -> &[ScriptBuf] {
        &self.leaves
    }

    /// rust-bitcoin's spend info (merkle root, output key, proofs).
    pub fn spend_info(&self) -> &TaprootSpendInfo {
        &self.spend_info
    }

    /// The tweaked output key (what Ark addresses carry).
    pub fn output_key(&self) -> TweakedPublicKey {
        self.spend_info.output_key()
    }

    /// `OP_1 <output key>`.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(self.output_key())
    }

    /// The script of an output to this tree: P2TR, or `OP_RETURN <key>` below `dust`.
    pub fn output_script(
        &self,
        amount: ark_relay_core::Sats,
        dust: ark_relay_core::Sats,
    ) -> ScriptBuf {
        if amount < dust {
            sub_dust_script(&self.output_key())
        } else {
            self.script_pubkey()
        }
    }

    /// Whether `leaf` is one of the leaves.
    pub fn contains_leaf(&self, leaf: &Script) -> bool {
        self.leaves.iter().any(|l| l.as_script() == leaf)
    }

    /// The control block proving `leaf` against the output key.
    pub fn control_block(&self, leaf: &Script) -> Result<ControlBlock, ArkError> {
        self.spend_info
            .control_block(&(leaf.to_owned(), LeafVersion::TapScript))
            .ok_or_else(|| ArkError::LeafNotInTree {
                leaf: leaf.to_hex_string(),
            })
    }

    /// The first collaborative (non-CSV multisig) leaf signed by both `owner` and `signer`.
    pub fn collaborative_leaf(
        &self,
        owner: &XOnlyPublicKey,
        signer: &XOnlyPublicKey,
    ) -> Option<&ScriptBuf> {
        self.leaves.iter().find(|l| match Closure::decode(l) {
            Some(c) if !c.is_exit() => c.keys().contains(owner) && c.keys().contains(signer),
            _ => false,
        })
    }

    /// The smallest CSV delay over the exit leaves (arkd `SmallestExitDelay`,
    /// comparing one block as one second as arkd does).
    pub fn smallest_exit_delay(&self) -> Option<RelativeLocktime> {
        self.leaves
            .iter()
            .filter_map(|l| match Closure::decode(l) {
                Some(Closure::CsvMultisig { locktime, .. }) => Some(locktime),
                _ => None,
            })
            .min_by_key(|lt| lt.arkd_seconds())
    }
}

/// btcd's `AssembleTaprootScriptTree`, written against rust-bitcoin's `NodeInfo`
/// (branch hashing sorts the two children, as BIP-341 requires).
fn assemble_btcd_tree(leaves: &[ScriptBuf]) -> Result<NodeInfo, ArkError> {
    let leaf = |s: &ScriptBuf| NodeInfo::new_leaf_with_ver(s.clone(), LeafVersion::TapScript);
    let combine = |a, b| NodeInfo::combine(a, b).map_err(ArkError::TaprootTree);
    match leaves {
        [] => Err(ArkError::EmptyTaptree),
        [only] => Ok(leaf(only)),
        _ => {
            // Round 1: pair leaves; a trailing odd leaf is merged into the last branch.
            let mut branches: Vec<NodeInfo> = Vec::with_capacity(leaves.len() / 2);
            for pair in leaves.chunks(2) {
                match pair {
                    [a, b] => branches.push(combine(leaf(a), leaf(b))?),
                    [a] => {
                        let last = branches.pop().ok_or(ArkError::EmptyTaptree)?;
                        branches.push(combine(last, leaf(a))?);
                    }
                    _ => {}
                }
            }
            // Then merge the two front-most branches and queue the result at the
            // back, until one root remains (btcd: `branches = append(branches[2:], new)`).
            let mut queue: VecDeque<NodeInfo> = branches.into();
            while queue.len() > 1 {
                if let (Some(a), Some(b)) = (queue.pop_front(), queue.pop_front()) {
                    queue.push_back(combine(a, b)?);
                }
            }
            queue.pop_front().ok_or(ArkError::EmptyTaptree)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use bitcoin::hashes::{sha256, Hash, HashEngine};
    use bitcoin::secp256k1::{PublicKey, Scalar};

    use super::*;

    fn key(hex: &str) -> XOnlyPublicKey {
        XOnlyPublicKey::from_str(hex).unwrap()
    }

    const OWNER: &str = "25a43cecfa0e1b1a4f72d64ad15f4cfa7a84d0723e8511c969aa543638ea9967";
    const SIGNER: &str = "33ffb3dee353b1a9ebe4ced64b946238d0a4ac364f275d771da6ad2445d07ae0";

    fn tagged(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
        let t = sha256::Hash::hash(tag.as_bytes());
        let mut e = sha256::Hash::engine();
        e.input(t.as_byte_array());
        e.input(t.as_byte_array());
        for p in parts {
            e.input(p);
        }
        sha256::Hash::from_engine(e).to_byte_array()
    }

    /// BIP-341 by hand (tagged hashes + point tweak), independent of rust-bitcoin's taproot code.
    fn output_key_by_hand(leaves: &[Vec<u8>; 2]) -> XOnlyPublicKey {
        let h = |s: &Vec<u8>| tagged("TapLeaf", &[&[0xc0, s.len() as u8], s]);
        let (a, b) = (h(&leaves[0]), h(&leaves[1]));
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let root = tagged("TapBranch", &[&lo, &hi]);
        let p = PublicKey::from_str(NUMS_KEY_HEX).unwrap();
        let tweak = tagged("TapTweak", &[&p.x_only_public_key().0.serialize(), &root]);
        let secp = &*crate::SECP;
        let q = p
            .add_exp_tweak(secp, &Scalar::from_be_bytes(tweak).unwrap())
            .unwrap();
        q.x_only_public_key().0
    }

    #[test]
    fn nums_key_is_arkd_unspendable_point() {
        let full = PublicKey::from_str(NUMS_KEY_HEX).unwrap();
        assert_eq!(nums_key(), full.x_only_public_key().0);
        assert_eq!(
            nums_key().to_string(),
            "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"
        );
    }

    #[test]
    fn default_vtxo_matches_hand_built_arkd_bytes() {
        let (owner, signer) = (key(OWNER), key(SIGNER));
        // <owner> OP_CHECKSIGVERIFY <signer> OP_CHECKSIG
        let collab = hex::decode(format!("20{OWNER}ad20{SIGNER}ac")).unwrap();
        // 605184 s -> BIP-68 0x40049e -> script number 9e 04 40; CSV DROP <owner> CHECKSIG
        let exit_secs = hex::decode(format!("039e0440b27520{OWNER}ac")).unwrap();
        // 144 blocks -> 0x90 needs a sign byte: 02 90 00
        let exit_144 = hex::decode(format!("029000b27520{OWNER}ac")).unwrap();
        // 10 blocks -> OP_10
        let exit_10 = hex::decode(format!("5ab27520{OWNER}ac")).unwrap();

        assert_eq!(collaborative_script(&owner, &signer).as_bytes(), collab);
        let secs = RelativeLocktime::seconds(605_184).unwrap();
        assert_eq!(csv_script(&owner, secs).as_bytes(), exit_secs);
        assert_eq!(
            csv_script(&owner, RelativeLocktime::blocks(144)).as_bytes(),
            exit_144
        );
        assert_eq!(
            csv_script(&owner, RelativeLocktime::blocks(10)).as_bytes(),
            exit_10
        );

        let v = VtxoScript::default_vtxo(&owner, &signer, secs);
        assert_eq!(v.leaves()[0].as_bytes(), exit_secs);
        assert_eq!(v.leaves()[1].as_bytes(), collab);
        let expected = output_key_by_hand(&[exit_secs.clone(), collab.clone()]);
        assert_eq!(v.output_key().to_x_only_public_key(), expected);
        // Leaf order does not change a two-leaf output key.
        let swapped = VtxoScript::new(vec![v.leaves()[1].clone(), v.leaves()[0].clone()]).unwrap();
        assert_eq!(swapped.output_key(), v.output_key());
        let spk = v.script_pubkey();
        assert_eq!(&spk.as_bytes()[..2], &[0x51, 0x20]);
        assert_eq!(&spk.as_bytes()[2..], &expected.serialize());
        // Control blocks prove each leaf against the output key.
        let secp = &*crate::SECP;
        for leaf in v.leaves() {
            let cb = v.control_block(leaf).unwrap();
            assert!(cb.verify_taproot_commitment(secp, expected, leaf));
            assert_eq!(cb.internal_key, nums_key());
        }
        assert!(v.control_block(&ScriptBuf::from_bytes(vec![0x51])).is_err());
        assert_eq!(v.collaborative_leaf(&owner, &signer), Some(&v.leaves()[1]));
        assert_eq!(v.collaborative_leaf(&signer, &owner), Some(&v.leaves()[1]));
        assert_eq!(v.smallest_exit_delay(), Some(secs));
    }

    #[test]
    fn closures_round_trip() {
        let (a, b) = (key(OWNER), key(SIGNER));
        let cases = [
            Closure::Multisig(Multisig {
                keys: vec![a],
                kind: MultisigType::Checksig,
            }),
            Closure::Multisig(Multisig {
                keys: vec![a, b],
                kind: MultisigType::Checksig,
            }),
            Closure::Multisig(Multisig {
                keys: vec![a, b],
                kind: MultisigType::ChecksigAdd,
            }),
            Closure::CsvMultisig {
                locktime: RelativeLocktime::blocks(0),
                multisig: Multisig {
                    keys: vec![a],
                    kind: MultisigType::Checksig,
                },
            },
            Closure::CsvMultisig {
                locktime: RelativeLocktime::seconds(512).unwrap(),
                multisig: Multisig {
                    keys: vec![a, b],
                    kind: MultisigType::Checksig,
                },
            },
            Closure::CltvMultisig {
                locktime: LockTime::from_consensus(800_000),
                multisig: Multisig {
                    keys: vec![a, b],
                    kind: MultisigType::Checksig,
                },
            },
        ];
        for c in cases {
            let s = c.script();
            assert_eq!(
                Closure::decode(&s),
                Some(c.clone()),
                "{}",
                s.to_hex_string()
            );
            assert_eq!(leaf_signers(&s), c.keys());
        }
        // checksig-add: <a> CHECKSIG <b> CHECKSIGADD OP_2 NUMEQUAL
        let add = Closure::Multisig(Multisig {
            keys: vec![a, b],
            kind: MultisigType::ChecksigAdd,
        });
        assert_eq!(
            add.script().to_hex_string(),
            format!("20{OWNER}ac20{SIGNER}ba529c")
        );
    }

    #[test]
    fn rejects_non_canonical_or_unknown_leaves() {
        // Non-minimal CSV number (10 pushed as 01 0a instead of OP_10).
        let s = ScriptBuf::from_hex(&format!("010ab27520{OWNER}ac")).unwrap();
        assert_eq!(Closure::decode(&s), None);
        // Hash-lock condition leaf: not a plain closure, but its signers are still found.
        let cond = ScriptBuf::from_hex(
            &format!("a914{}8769 20{OWNER}ad20{SIGNER}ac", "00".repeat(20)).replace(' ', ""),
        )
        .unwrap();
        assert_eq!(Closure::decode(&cond), None);
        assert_eq!(leaf_signers(&cond), vec![key(OWNER), key(SIGNER)]);
        assert_eq!(Closure::decode(&ScriptBuf::new()), None);
        assert!(multisig_script(&[]).is_err());
    }

    #[test]
    fn tree_rules() {
        assert!(matches!(
            VtxoScript::new(vec![]),
            Err(ArkError::EmptyTaptree)
        ));
        let l = ScriptBuf::from_bytes(vec![0x51]);
        assert!(matches!(
            VtxoScript::new(vec![l.clone(), l.clone()]),
            Err(ArkError::DuplicateLeaf { .. })
        ));
        let one = VtxoScript::new(vec![l.clone()]).unwrap();
        assert_eq!(one.control_block(&l).unwrap().merkle_branch.len(), 0);
        let t = one.to_tapscripts();
        assert_eq!(VtxoScript::from_tapscripts(&t).unwrap(), one);
    }

    /// Fixtures from arkd `pkg/ark-lib/script/testdata/vtxoscript.json` (taproot
    /// keys computed by arkd's Go code with btcd's tree assembly).
    #[test]
    fn arkd_vtxoscript_fixtures() {
        let a = "e106ad991696429bfdd602890800d275937b3b3858024774efc21fb5e8b75c30";
        let b = "61d8b7526b6d5a46a57a01fcab370acaad1bff309da342bf4acc9077db6b4ac2";
        let c = "1ad0602183f84bf33205d574dbbbe1b2bfecfd35bf4ba9fed39852606ed62391";
        let s = "56f810de93e500e745b7dabfcb2b798b216a70a99de7edee79bf1791379bf62d";
        let six = [
            format!("20{a}ad20{b}ad20{s}ac"),
            format!("20{c}ad20{b}ad20{s}ac"),
            format!("20{c}ad20{a}ad20{s}ac"),
            format!("03010040b27520{a}ad20{b}ac"),
            format!("03010040b27520{c}ad20{b}ac"),
            format!("03010040b27520{c}ad20{a}ac"),
        ];
        let seventh =
            format!("a91446a0f8ae0ca7bb8041c6759fc29837b667c279cd876920{c}ad20{a}ad20{b}ad20{s}ac");
        let tree = |v: &[String]| {
            VtxoScript::new(v.iter().map(|h| ScriptBuf::from_hex(h).unwrap()).collect()).unwrap()
        };
        let t6 = tree(&six);
        assert_eq!(
            t6.output_key().to_string(),
            "5de945bb60e4c8c0cf5096f71f4707018d0a9879c76c9cf7a7996d8a555b812e"
        );
        assert_eq!(
            t6.smallest_exit_delay(),
            Some(RelativeLocktime::seconds(512).unwrap())
        );
        let mut seven = six.to_vec();
        seven.push(seventh);
        assert_eq!(
            tree(&seven).output_key().to_string(),
            "44815a74de6ea3c04652544da00711cf702263b6952bd4222c00d7bdf6e59ec9"
        );
        let block = [
            "516903020040b2752006cf59c1626cb6a9205d0f950bb4b4562adf1372e8719b3c0c4796b9a7870038ad20f97c6a02e7a3055cdb27afb51220efa99d93957a7218da17c665f183696da025ac".to_owned(),
            "51692006cf59c1626cb6a9205d0f950bb4b4562adf1372e8719b3c0c4796b9a7870038ad20f97c6a02e7a3055cdb27afb51220efa99d93957a7218da17c665f183696da025ac".to_owned(),
            "51b2752006cf59c1626cb6a9205d0f950bb4b4562adf1372e8719b3c0c4796b9a7870038ad20f97c6a02e7a3055cdb27afb51220efa99d93957a7218da17c665f183696da025ac".to_owned(),
        ];
        let t3 = tree(&block);
        assert_eq!(
            t3.output_key().to_string(),
            "9fca3b709253880dab186fbe6bc014caa642c82d3e2f74c6c7591697c540107d"
        );
        // `OP_1 CSV DROP <k1> CHECKSIGVERIFY <k2> CHECKSIG`: 1 block.
        assert_eq!(
            Closure::decode(&ScriptBuf::from_hex(&block[2]).unwrap()).map(|c| c.is_exit()),
            Some(true)
        );
        assert_eq!(t3.smallest_exit_delay(), Some(RelativeLocktime::blocks(1)));
    }

    #[test]
    fn sub_dust_and_anchor() {
        let v = VtxoScript::default_vtxo(&key(OWNER), &key(SIGNER), RelativeLocktime::blocks(144));
        let sd = sub_dust_script(&v.output_key());
        assert_eq!(sd.as_bytes()[..2], [0x6a, 0x20]);
        assert_eq!(&sd.as_bytes()[2..], &v.output_key().serialize());
        let dust = ark_relay_core::Sats::new(330);
        assert_eq!(v.output_script(ark_relay_core::Sats::new(329), dust), sd);
        assert_eq!(v.output_script(dust, dust), v.script_pubkey());
        assert_eq!(anchor_output().script_pubkey.to_hex_string(), "51024e73");
        assert_eq!(anchor_output().value, Amount::ZERO);
    }
}
