//! The position token's VTXO script (`docs/protocol.md`, "Conditional
//! co-signing"): a user's default leaves plus one **conditional leaf** that a
//! DEX can spend only together with the relay's co-signer and the Ark server.
//!
//! Leaves, in this order (the ledger and the `taptree` field keep it):
//!
//! 1. exit: `<unilateral exit delay> CSV DROP <user> CHECKSIG` (unchanged);
//! 2. collaborative: `<user> CHECKSIGVERIFY <server> CHECKSIG` (unchanged);
//! 3. conditional: `<dex> CHECKSIGVERIFY <cosigner> CHECKSIGVERIFY <server> CHECKSIG`
//!    (arkd's checksig multisig closure, so arkd accepts it: it contains the
//!    server's key).
//!
//! `cosigner` is the relay's key tweaked with the id of the user's signed
//! `open_perp` event: `cosigner = relay + t·G`, `t = H_tag(relay ‖ id)` with the
//! BIP-340 tagged hash of tag [`COSIGNER_TAG`]. The script therefore commits to
//! the one `open_perp` that created the position: a witness carrying another
//! `open_perp` yields another key and another script, and only the relay (who
//! holds the base key) can sign for the tweaked one.
//!
//! Pure: builders, a decoder and the tweak; no I/O.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{Keypair, Scalar, XOnlyPublicKey};
use bitcoin::ScriptBuf;

use ark_relay_core::EventId;

use crate::script::{collaborative_script, csv_script, Closure, MultisigType};
use crate::{ArkError, RelativeLocktime, VtxoScript};

/// The tag of the co-signer tweak's tagged hash.
pub const COSIGNER_TAG: &str = "ark-relay/perp-cosigner";

/// The tweak `t = H_tag(relay ‖ open_perp id)` as a scalar.
pub fn cosigner_tweak(relay: &XOnlyPublicKey, open_perp: &EventId) -> Result<Scalar, ArkError> {
    let tag = sha256::Hash::hash(COSIGNER_TAG.as_bytes());
    let mut engine = sha256::Hash::engine();
    engine.input(tag.as_byte_array());
    engine.input(tag.as_byte_array());
    engine.input(&relay.serialize());
    engine.input(open_perp.as_bytes());
    let h = sha256::Hash::from_engine(engine);
    Scalar::from_be_bytes(h.to_byte_array())
        .map_err(|_| ArkError::Intent("tweak out of range".into()))
}

/// The co-signer key of the position created by `open_perp`:
/// `relay + t·G` (x-only, `relay` taken with even y as BIP-340 does).
pub fn cosigner_key(
    relay: &XOnlyPublicKey,
    open_perp: &EventId,
) -> Result<XOnlyPublicKey, ArkError> {
    let t = cosigner_tweak(relay, open_perp)?;
    relay
        .add_tweak(&*crate::SECP, &t)
        .map(|(k, _parity)| k)
        .map_err(ArkError::InvalidKey)
}

/// The relay's signing keypair for the position created by `open_perp`
/// (its x-only key is [`cosigner_key`]).
pub fn cosigner_keypair(relay: &Keypair, open_perp: &EventId) -> Result<Keypair, ArkError> {
    let t = cosigner_tweak(&relay.x_only_public_key().0, open_perp)?;
    relay
        .add_xonly_tweak(&*crate::SECP, &t)
        .map_err(ArkError::InvalidKey)
}

/// The conditional leaf `<dex> CHECKSIGVERIFY <cosigner> CHECKSIGVERIFY <server> CHECKSIG`.
pub fn conditional_leaf(
    dex: &XOnlyPublicKey,
    cosigner: &XOnlyPublicKey,
    server: &XOnlyPublicKey,
) -> ScriptBuf {
    Closure::Multisig(crate::script::Multisig {
        keys: vec![*dex, *cosigner, *server],
        kind: MultisigType::Checksig,
    })
    .script()
}

/// Everything a position's script is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionScript {
    /// The position's owner (the author of `open_perp`).
    pub user: XOnlyPublicKey,
    /// The DEX named in the terms.
    pub dex: XOnlyPublicKey,
    /// The relay's (untweaked) key.
    pub relay: XOnlyPublicKey,
    /// The Ark server's signer key.
    pub server: XOnlyPublicKey,
    /// The server's unilateral exit delay (the user's exit leaf).
    pub exit_delay: RelativeLocktime,
    /// The id of the user's signed `open_perp` event.
    pub open_perp: EventId,
}

impl PositionScript {
    /// The co-signer key of this position.
    pub fn cosigner(&self) -> Result<XOnlyPublicKey, ArkError> {
        cosigner_key(&self.relay, &self.open_perp)
    }

    /// The conditional leaf of this position.
    pub fn conditional_leaf(&self) -> Result<ScriptBuf, ArkError> {
        Ok(conditional_leaf(&self.dex, &self.cosigner()?, &self.server))
    }

    /// The leaves `[exit, collaborative, conditional]` (module docs).
    pub fn leaves(&self) -> Result<Vec<ScriptBuf>, ArkError> {
        Ok(vec![
            csv_script(&self.user, self.exit_delay),
            collaborative_script(&self.user, &self.server),
            self.conditional_leaf()?,
        ])
    }

    /// The position's Taproot tree.
    pub fn vtxo_script(&self) -> Result<VtxoScript, ArkError> {
        VtxoScript::new(self.leaves()?)
    }
}

/// The conditional leaf found in a VTXO's leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedConditional {
    /// The leaf.
    pub leaf: ScriptBuf,
    /// Its first key (the DEX).
    pub dex: XOnlyPublicKey,
    /// Its second key (the tweaked co-signer).
    pub cosigner: XOnlyPublicKey,
    /// Its third key (the server).
    pub server: XOnlyPublicKey,
}

/// Finds the conditional leaf of a position: the one non-CSV checksig
/// multisig leaf of exactly three keys whose last key is `server`. `None`
/// if there is none or more than one.
pub fn decode_conditional(
    script: &VtxoScript,
    server: &XOnlyPublicKey,
) -> Option<DecodedConditional> {
    let mut found = script
        .leaves()
        .iter()
        .filter_map(|leaf| match Closure::decode(leaf) {
            Some(Closure::Multisig(m)) if m.kind == MultisigType::Checksig => {
                match m.keys.as_slice() {
                    [dex, cosigner, s] if s == server => Some(DecodedConditional {
                        leaf: leaf.clone(),
                        dex: *dex,
                        cosigner: *cosigner,
                        server: *s,
                    }),
                    _ => None,
                }
            }
            _ => None,
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::SecretKey;

    use super::*;
    use crate::script::leaf_hash;

    fn kp(b: u8) -> Keypair {
        Keypair::from_secret_key(
            &*crate::SECP,
            &SecretKey::from_slice(&[b; 32]).expect("key"),
        )
    }

    fn xo(b: u8) -> XOnlyPublicKey {
        kp(b).x_only_public_key().0
    }

    fn position(open: u8) -> PositionScript {
        PositionScript {
            user: xo(1),
            dex: xo(2),
            relay: xo(3),
            server: xo(4),
            exit_delay: RelativeLocktime::blocks(144),
            open_perp: EventId::from_bytes([open; 32]),
        }
    }

    #[test]
    fn tweaked_keypair_matches_the_tweaked_key() {
        for b in [3u8, 5, 7, 9, 11] {
            let relay = kp(b);
            let id = EventId::from_bytes([b; 32]);
            let signer = cosigner_keypair(&relay, &id).expect("tweak");
            assert_eq!(
                signer.x_only_public_key().0,
                cosigner_key(&relay.x_only_public_key().0, &id).expect("tweak")
            );
            assert_ne!(signer.x_only_public_key().0, relay.x_only_public_key().0);
        }
    }

    #[test]
    fn the_script_commits_to_the_open_perp() {
        let a = position(1).vtxo_script().expect("script");
        let b = position(2).vtxo_script().expect("script");
        assert_ne!(a.output_key(), b.output_key());
        // The user's leaves are the default VTXO's.
        let default = VtxoScript::default_vtxo(&xo(1), &xo(4), RelativeLocktime::blocks(144));
        assert_eq!(&a.leaves()[..2], default.leaves());
        assert!(a.collaborative_leaf(&xo(1), &xo(4)).is_some());
        assert_eq!(a.smallest_exit_delay(), Some(RelativeLocktime::blocks(144)));
    }

    #[test]
    fn decode_round_trips_through_the_ledger_form() {
        let p = position(7);
        let script = p.vtxo_script().expect("script");
        let back = VtxoScript::from_tapscripts(&script.to_tapscripts()).expect("tree");
        assert_eq!(back.output_key(), script.output_key());
        let d = decode_conditional(&back, &p.server).expect("conditional leaf");
        assert_eq!(d.dex, p.dex);
        assert_eq!(d.cosigner, p.cosigner().expect("key"));
        assert_eq!(d.leaf, p.conditional_leaf().expect("leaf"));
        assert_eq!(
            crate::script::leaf_signers(&d.leaf),
            vec![p.dex, p.cosigner().expect("key"), p.server]
        );
        // The control block proves the leaf against the output key.
        let cb = back.control_block(&d.leaf).expect("control block");
        assert!(cb.verify_taproot_commitment(
            &*crate::SECP,
            back.output_key().to_x_only_public_key(),
            &d.leaf
        ));
        assert_eq!(
            leaf_hash(&d.leaf),
            leaf_hash(&p.conditional_leaf().expect("leaf"))
        );
        // A default VTXO has no conditional leaf.
        let default = VtxoScript::default_vtxo(&xo(1), &xo(4), RelativeLocktime::blocks(144));
        assert_eq!(decode_conditional(&default, &p.server), None);
    }

    #[test]
    fn a_conditional_input_is_spendable_in_an_offchain_tx() {
        use ark_relay_core::{PubKey, Sats, VtxoId};
        let p = position(9);
        let script = p.vtxo_script().expect("script");
        let leaf = p.conditional_leaf().expect("leaf");
        let server = crate::ServerInfo::new(
            p.server,
            p.server,
            RelativeLocktime::blocks(144),
            RelativeLocktime::blocks(10),
            Sats::new(330),
            bitcoin::Network::Regtest,
        );
        let id: VtxoId = format!("{}:0", "11".repeat(32)).parse().expect("vtxo");
        let input = crate::VtxoInput::new(id, Sats::new(1_000), script, leaf).expect("input");
        let outputs = [crate::Output::Vtxo {
            owner: PubKey::from_x_only(p.dex),
            sats: Sats::new(1_000),
        }];
        let mut tx = crate::build_offchain_tx(&server, &[input], &outputs).expect("tx");
        let dex = kp(2);
        let cosigner = cosigner_keypair(&kp(3), &p.open_perp).expect("tweak");
        assert_eq!(crate::sign_psbt(&mut tx.ark_tx, &dex).expect("sign"), 1);
        assert_eq!(
            crate::sign_psbt(&mut tx.ark_tx, &cosigner).expect("sign"),
            1
        );
        // Only the server's signature is missing now.
        let missing = crate::missing_signers(&tx.ark_tx, 0).expect("missing");
        assert_eq!(missing, vec![p.server]);
    }
}
