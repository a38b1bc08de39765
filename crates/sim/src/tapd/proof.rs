//! The tapd simulator's proof format: not tapd's proof files, but a statement
//! the sim can really verify: `"ARSIMPF1" || asset_id (32) || amount (u64 BE)
//! || BIP-340 signature (64)` by the sim's issuer key over
//! `sha256(magic || asset_id || amount)`. Changing any byte invalidates it.

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{schnorr, Keypair, Message, Secp256k1, XOnlyPublicKey};

const MAGIC: &[u8; 8] = b"ARSIMPF1";
const LEN: usize = 8 + 32 + 8 + 64;

/// What a valid proof proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proven {
    /// The asset.
    pub asset_id: [u8; 32],
    /// Units.
    pub amount: u64,
}

fn digest(asset_id: &[u8; 32], amount: u64) -> Message {
    let mut d = MAGIC.to_vec();
    d.extend_from_slice(asset_id);
    d.extend_from_slice(&amount.to_be_bytes());
    Message::from_digest(sha256::Hash::hash(&d).to_byte_array())
}

/// Signs a proof.
pub fn issue(issuer: &Keypair, asset_id: [u8; 32], amount: u64) -> Vec<u8> {
    let sig = Secp256k1::new().sign_schnorr(&digest(&asset_id, amount), issuer);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&asset_id);
    out.extend_from_slice(&amount.to_be_bytes());
    out.extend_from_slice(sig.as_ref());
    out
}

/// Verifies a proof against the issuer key.
pub fn verify(issuer: &XOnlyPublicKey, raw: &[u8]) -> Option<Proven> {
    if raw.len() != LEN || &raw[..8] != MAGIC {
        return None;
    }
    let asset_id: [u8; 32] = raw[8..40].try_into().ok()?;
    let amount = u64::from_be_bytes(raw[40..48].try_into().ok()?);
    let sig = schnorr::Signature::from_slice(&raw[48..]).ok()?;
    Secp256k1::verification_only()
        .verify_schnorr(&sig, &digest(&asset_id, amount), issuer)
        .ok()
        .map(|()| Proven { asset_id, amount })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_and_any_changed_byte_breaks_them() {
        let secp = Secp256k1::new();
        let k = Keypair::new(&secp, &mut rand::thread_rng());
        let other = Keypair::new(&secp, &mut rand::thread_rng());
        let p = issue(&k, [7; 32], 1234);
        assert_eq!(
            verify(&k.x_only_public_key().0, &p),
            Some(Proven {
                asset_id: [7; 32],
                amount: 1234
            })
        );
        assert_eq!(verify(&other.x_only_public_key().0, &p), None);
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 1;
            assert_eq!(verify(&k.x_only_public_key().0, &bad), None, "byte {i}");
        }
        assert_eq!(verify(&k.x_only_public_key().0, &p[..10]), None);
    }
}
