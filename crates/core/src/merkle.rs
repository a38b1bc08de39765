//! The settlement Merkle tree: a commitment to one period's ark transactions
//! (PRD §10.4), small enough to specify in a paragraph and verify by hand.
//!
//! # Construction
//!
//! - **Hashes** are BIP-340 tagged SHA-256, `TH(tag, m) = SHA256(SHA256(tag) ‖
//!   SHA256(tag) ‖ m)`, with three tags so a leaf can never be read as a node or
//!   the reverse (no 64-byte "leaf that is really two hashes" second preimage):
//!   - leaf: `TH("ArkRelay/leaf", txid)`, where `txid` is the 32 bytes of the
//!     ark txid **as displayed** (the 64-digit hex string decoded, i.e. the
//!     reverse of Bitcoin's internal byte order);
//!   - node: `TH("ArkRelay/node", left ‖ right)`;
//!   - root: `TH("ArkRelay/root", n ‖ top)` where `n` is the leaf count as
//!     8 bytes big-endian and `top` the top node of the tree (32 zero bytes
//!     for the empty tree), so the root also commits to how many
//!     transactions the period had.
//! - **Leaves** are the period's distinct ark txids **sorted ascending** by
//!   those displayed bytes (the same as sorting the lowercase hex strings).
//! - **Odd levels:** a node without a right sibling is **promoted unchanged**
//!   to the next level. It is never paired with a copy of itself, so two
//!   different leaf lists can never have the same root by duplicating the last
//!   leaf (Bitcoin's CVE-2012-2459 ambiguity cannot happen).
//!
//! # Proofs
//!
//! A [`MerkleProof`] is the leaf's index in the sorted list, the number of
//! leaves and the sibling hashes from the bottom up. The verifier walks up:
//! at each level of width `w`, if the index is the last one and `w` is odd the
//! node is promoted (no sibling used); otherwise the next sibling is hashed on
//! the left when the index is odd, on the right when it is even. Then
//! `index /= 2`, `w = ceil(w / 2)`. The proof is valid when every sibling was
//! used and `TH("ArkRelay/root", n ‖ top)` equals the root. The leaf count
//! fixes where the promotions happen and is itself committed in the root, so
//! neither the index nor the count of a proof can be changed.
//!
//! Pure code: no I/O.

use bitcoin::hashes::{sha256t_hash_newtype, Hash, HashEngine};
use bitcoin::Txid;
use serde::{Deserialize, Serialize};

sha256t_hash_newtype! {
    /// The tag `ArkRelay/leaf`.
    pub struct LeafTag = hash_str("ArkRelay/leaf");
    /// A leaf hash.
    #[hash_newtype(forward)]
    pub struct LeafHash(_);

    /// The tag `ArkRelay/node`.
    pub struct NodeTag = hash_str("ArkRelay/node");
    /// An inner node hash.
    #[hash_newtype(forward)]
    pub struct NodeHash(_);

    /// The tag `ArkRelay/root`.
    pub struct RootTag = hash_str("ArkRelay/root");
    /// The root: the leaf count and the top node.
    #[hash_newtype(forward)]
    pub struct RootHash(_);
}

/// The leaf tag.
pub const LEAF_TAG: &str = "ArkRelay/leaf";
/// The inner-node tag.
pub const NODE_TAG: &str = "ArkRelay/node";
/// The root tag.
pub const ROOT_TAG: &str = "ArkRelay/root";

/// A 32-byte hash of the tree, printed as lowercase hex in computation order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node(pub [u8; 32]);

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({self})")
    }
}

impl std::str::FromStr for Node {
    type Err = crate::IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| crate::IdError::Hex {
            what: "merkle hash",
            len: 32,
        })?;
        Ok(Self(out))
    }
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The displayed bytes of a txid (its hex string decoded).
pub fn txid_display_bytes(txid: &Txid) -> [u8; 32] {
    let mut b = txid.to_byte_array();
    b.reverse();
    b
}

/// The leaf hash of `txid`.
pub fn leaf_hash(txid: &Txid) -> Node {
    Node(LeafHash::hash(&txid_display_bytes(txid)).to_byte_array())
}

/// The hash of an inner node over `left ‖ right`.
pub fn node_hash(left: &Node, right: &Node) -> Node {
    let mut e = NodeHash::engine();
    e.input(&left.0);
    e.input(&right.0);
    Node(NodeHash::from_engine(e).to_byte_array())
}

/// The root over `leaf_count` leaves whose top node is `top`.
pub fn root_hash(leaf_count: u64, top: &Node) -> Node {
    let mut e = RootHash::engine();
    e.input(&leaf_count.to_be_bytes());
    e.input(&top.0);
    Node(RootHash::from_engine(e).to_byte_array())
}

/// The root of the empty tree.
pub fn empty_root() -> Node {
    root_hash(0, &Node([0u8; 32]))
}

/// A built tree over a set of txids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// The sorted, distinct leaves.
    leaves: Vec<Txid>,
    /// `levels[0]` = leaf hashes, last = `[root]`; empty for the empty tree.
    levels: Vec<Vec<Node>>,
}

impl MerkleTree {
    /// Builds the tree over `txids` (sorted and deduplicated here).
    pub fn new(txids: impl IntoIterator<Item = Txid>) -> Self {
        let mut leaves: Vec<Txid> = txids.into_iter().collect();
        leaves.sort_by_key(txid_display_bytes);
        leaves.dedup();
        let mut levels = Vec::new();
        if !leaves.is_empty() {
            let mut level: Vec<Node> = leaves.iter().map(leaf_hash).collect();
            while level.len() > 1 {
                let next = level
                    .chunks(2)
                    .map(|pair| match pair {
                        [l, r] => node_hash(l, r),
                        [only, ..] => *only,
                        [] => Node([0u8; 32]), // chunks are never empty
                    })
                    .collect();
                levels.push(std::mem::replace(&mut level, next));
            }
            levels.push(level);
        }
        Self { leaves, levels }
    }

    /// The root.
    pub fn root(&self) -> Node {
        let top = self
            .levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(Node([0u8; 32]));
        root_hash(self.leaves.len() as u64, &top)
    }

    /// The sorted leaves.
    pub fn leaves(&self) -> &[Txid] {
        &self.leaves
    }

    /// How many leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// True for the empty tree.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The inclusion proof of `txid`, if it is a leaf.
    pub fn proof(&self, txid: &Txid) -> Option<MerkleProof> {
        let key = txid_display_bytes(txid);
        let index = self
            .leaves
            .binary_search_by_key(&key, txid_display_bytes)
            .ok()?;
        let mut siblings = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            let sibling = if i % 2 == 1 { i - 1 } else { i + 1 };
            if let Some(s) = level.get(sibling) {
                siblings.push(*s);
            }
            i /= 2;
        }
        Some(MerkleProof {
            leaf: *txid,
            index: index as u64,
            leaf_count: self.leaves.len() as u64,
            siblings,
        })
    }
}

/// A proof that `leaf` is the `index`-th of `leaf_count` sorted leaves under a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// The ark txid proven.
    pub leaf: Txid,
    /// Its position among the sorted leaves (0-based).
    pub index: u64,
    /// How many leaves the tree has.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf level up (promoted levels have none).
    pub siblings: Vec<Node>,
}

impl MerkleProof {
    /// The root this proof leads to, or `None` when it is malformed (index out
    /// of range, too few or too many siblings).
    pub fn compute_root(&self) -> Option<Node> {
        if self.index >= self.leaf_count {
            return None;
        }
        let mut node = leaf_hash(&self.leaf);
        let mut index = self.index;
        let mut width = self.leaf_count;
        let mut siblings = self.siblings.iter();
        while width > 1 {
            if !(index == width - 1 && width % 2 == 1) {
                let s = siblings.next()?;
                node = if index % 2 == 1 {
                    node_hash(s, &node)
                } else {
                    node_hash(&node, s)
                };
            }
            index /= 2;
            width = width.div_ceil(2);
        }
        if siblings.next().is_some() {
            return None;
        }
        Some(root_hash(self.leaf_count, &node))
    }

    /// True when this proof leads to `root`.
    pub fn verify(&self, root: &Node) -> bool {
        self.compute_root().as_ref() == Some(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn txid(byte: u8) -> Txid {
        Txid::from_str(&format!("{byte:02x}").repeat(32)).unwrap()
    }

    fn node(s: &str) -> Node {
        s.parse().unwrap()
    }

    /// Vectors computed independently with Python's hashlib:
    ///
    /// ```python
    /// import hashlib
    /// def th(tag, msg):
    ///     t = hashlib.sha256(tag.encode()).digest()
    ///     return hashlib.sha256(t + t + msg).digest()
    /// def root(txids_hex):
    ///     ids = sorted(set(txids_hex))
    ///     lv = [th("ArkRelay/leaf", bytes.fromhex(h)) for h in ids]
    ///     while len(lv) > 1:
    ///         lv = [th("ArkRelay/node", lv[i] + lv[i+1]) if i + 1 < len(lv) else lv[i]
    ///               for i in range(0, len(lv), 2)]
    ///     top = lv[0] if lv else bytes(32)
    ///     return th("ArkRelay/root", len(ids).to_bytes(8, "big") + top)
    /// ids = [("%02x" % i) * 32 for i in (1, 2, 3, 4, 5)]
    /// [root(ids[:n]).hex() for n in range(0, 6)]
    /// ```
    #[test]
    fn known_vectors() {
        let expect = [
            "faa042d014db64c46d1edcd35c21a1712cb2544d239885d44d3c32efc52c0717",
            "6ee1c7f9e699b42b7e5ee5f991c2cbb55c87b962f0319c0189ab3088a1c086f5",
            "97c37cc1b5d9bf251fdd22eb36a88569d984a6414288ef4281718e27103b585e",
            "0f30421747fad379596e3fed4548d2e00926f0eda7693c8f06f34af863d860ee",
            "0daae753ba8d34ceee1947b7b12591e6160178d032231980f7cccec8c99bef96",
            "ba1239accc8e6f165cab18928e29391bd1be2f4566af5426a212a16b0415cb81",
        ];
        for (n, want) in expect.iter().enumerate() {
            let ids: Vec<Txid> = (1..=n as u8).map(txid).collect();
            assert_eq!(MerkleTree::new(ids).root(), node(want), "{n} leaves");
        }
        assert_eq!(empty_root(), node(expect[0]));
        // Order and duplicates of the input do not matter.
        let shuffled = vec![txid(3), txid(1), txid(2), txid(1)];
        assert_eq!(MerkleTree::new(shuffled).root(), node(expect[3]));
    }

    #[test]
    fn tags_are_the_documented_strings() {
        // TH(tag, m) by hand with plain SHA-256 must equal the sha256t types.
        use bitcoin::hashes::sha256;
        let by_hand = |tag: &str, msg: &[u8]| {
            let t = sha256::Hash::hash(tag.as_bytes()).to_byte_array();
            let mut e = sha256::Hash::engine();
            e.input(&t);
            e.input(&t);
            e.input(msg);
            Node(sha256::Hash::from_engine(e).to_byte_array())
        };
        let t = txid(7);
        assert_eq!(leaf_hash(&t), by_hand(LEAF_TAG, &txid_display_bytes(&t)));
        let (a, b) = (leaf_hash(&txid(1)), leaf_hash(&txid(2)));
        let mut ab = a.0.to_vec();
        ab.extend_from_slice(&b.0);
        assert_eq!(node_hash(&a, &b), by_hand(NODE_TAG, &ab));
        let mut n_top = 3u64.to_be_bytes().to_vec();
        n_top.extend_from_slice(&a.0);
        assert_eq!(root_hash(3, &a), by_hand(ROOT_TAG, &n_top));
        assert_eq!(empty_root(), by_hand(ROOT_TAG, &[0u8; 40]));
    }

    #[test]
    fn displayed_bytes_are_the_hex_string() {
        let t = Txid::from_str(&format!("01{}", "00".repeat(31))).unwrap();
        assert_eq!(txid_display_bytes(&t)[0], 1);
        assert_eq!(txid_display_bytes(&t)[31], 0);
    }

    #[test]
    fn no_duplicate_last_leaf_ambiguity() {
        // [a, b, c] and [a, b, c, c] must differ (Bitcoin's tree makes them equal).
        let three = MerkleTree::new([txid(1), txid(2), txid(3)]).root();
        let a = leaf_hash(&txid(1));
        let b = leaf_hash(&txid(2));
        let c = leaf_hash(&txid(3));
        let bitcoin_style = node_hash(&node_hash(&a, &b), &node_hash(&c, &c));
        assert_ne!(three, root_hash(3, &bitcoin_style));
        assert_ne!(three, root_hash(4, &bitcoin_style));
        assert_eq!(three, root_hash(3, &node_hash(&node_hash(&a, &b), &c)));
    }

    #[test]
    fn absent_leaf_has_no_proof() {
        let t = MerkleTree::new([txid(1), txid(2)]);
        assert!(t.proof(&txid(3)).is_none());
        assert!(MerkleTree::new([]).proof(&txid(1)).is_none());
    }

    fn tampered(p: &MerkleProof, root: &Node) -> Vec<(String, MerkleProof, Node)> {
        let mut out = Vec::new();
        for i in 0..p.siblings.len() {
            let mut q = p.clone();
            q.siblings[i].0[0] ^= 1;
            out.push((format!("flip sibling {i}"), q, *root));
        }
        if p.leaf_count > 1 {
            for index in 0..p.leaf_count {
                if index != p.index {
                    let mut q = p.clone();
                    q.index = index;
                    out.push((format!("index {index}"), q, *root));
                }
            }
        }
        let mut q = p.clone();
        q.index = p.leaf_count;
        out.push(("index out of range".into(), q, *root));
        let mut q = p.clone();
        q.leaf = txid(0xee);
        out.push(("wrong leaf".into(), q, *root));
        let mut r = *root;
        r.0[31] ^= 0x80;
        out.push(("wrong root".into(), p.clone(), r));
        let mut q = p.clone();
        q.siblings.push(*root);
        out.push(("extra sibling".into(), q, *root));
        if !p.siblings.is_empty() {
            let mut q = p.clone();
            q.siblings.pop();
            out.push(("missing sibling".into(), q, *root));
        }
        if p.leaf_count > 1 {
            let mut q = p.clone();
            q.leaf_count += 1;
            out.push(("wrong leaf count".into(), q, *root));
        }
        out
    }

    #[test]
    fn every_tampered_proof_fails_on_a_small_tree() {
        let ids: Vec<Txid> = (1..=5).map(txid).collect();
        let tree = MerkleTree::new(ids.clone());
        let root = tree.root();
        for id in &ids {
            let p = tree.proof(id).unwrap();
            assert!(p.verify(&root));
            for (what, q, r) in tampered(&p, &root) {
                assert!(!q.verify(&r), "{what} verified for {id}");
            }
        }
    }

    #[test]
    fn proof_serialises_as_hex() {
        let tree = MerkleTree::new([txid(1), txid(2), txid(3)]);
        let p = tree.proof(&txid(3)).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["index"], 2);
        assert_eq!(json["leaf_count"], 3);
        assert_eq!(json["leaf"], "03".repeat(32));
        let back: MerkleProof = serde_json::from_value(json).unwrap();
        assert!(back.verify(&tree.root()));
    }

    /// A second, naive implementation over sorted hex strings, independent of
    /// `MerkleTree`'s storage and byte-order helpers.
    fn naive_root(ids: &[Txid]) -> Node {
        let mut hexes: Vec<String> = ids.iter().map(|t| t.to_string()).collect();
        hexes.sort();
        hexes.dedup();
        let mut level: Vec<Node> = hexes
            .iter()
            .map(|h| Node(LeafHash::hash(&hex::decode(h).unwrap()).to_byte_array()))
            .collect();
        while level.len() > 1 {
            let mut next = Vec::new();
            let mut i = 0;
            while i < level.len() {
                if i + 1 < level.len() {
                    next.push(node_hash(&level[i], &level[i + 1]));
                } else {
                    next.push(level[i]);
                }
                i += 2;
            }
            level = next;
        }
        root_hash(
            hexes.len() as u64,
            &level.first().copied().unwrap_or(Node([0; 32])),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn proofs_verify_and_tampering_fails(
            seeds in proptest::collection::vec(any::<[u8; 32]>(), 1..200),
            pick in any::<prop::sample::Index>(),
        ) {
            let ids: Vec<Txid> = seeds.iter().map(|s| Txid::from_byte_array(*s)).collect();
            let tree = MerkleTree::new(ids.clone());
            let root = tree.root();
            prop_assert_eq!(root, naive_root(&ids));
            for id in &ids {
                let p = tree.proof(id).unwrap();
                prop_assert!(p.verify(&root));
            }
            let id = pick.get(&ids);
            let p = tree.proof(id).unwrap();
            for (what, q, r) in tampered(&p, &root) {
                prop_assert!(!q.verify(&r), "{} verified", what);
            }
        }
    }
}
