//! DM encryption: NIP-44 v2 and NIP-04, through rust-nostr. The scheme of an
//! incoming DM is detected from its content (NIP-04 carries `?iv=`) or an
//! `["encryption", "nip44_v2"]` tag, and the relay answers in the same scheme.

use ark_relay_core::ErrorCode;
use nostr::nips::{nip04, nip44};
use nostr::{PublicKey, SecretKey, Tag, TagKind};

use crate::Rejection;

/// An encryption scheme for DMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// NIP-04 (AES-256-CBC; required by the PRD, deprecated upstream).
    Nip04,
    /// NIP-44 version 2 (ChaCha20 + HMAC; preferred).
    Nip44,
}

impl Scheme {
    /// The name advertised in `["encryption", …]` tags and `/info`.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::Nip04 => "nip04",
            Scheme::Nip44 => "nip44_v2",
        }
    }

    /// The `["encryption", name]` tag.
    pub fn tag(self) -> Tag {
        Tag::custom(TagKind::custom("encryption"), [self.name()])
    }
}

/// The scheme an encrypted event uses.
pub fn detect(content: &str, tags: &nostr::Tags) -> Scheme {
    let tagged = tags.iter().find_map(|t| match t.as_slice() {
        [k, v, ..] if k == "encryption" => Some(v.as_str()),
        _ => None,
    });
    match tagged {
        Some("nip44_v2") | Some("nip44") => Scheme::Nip44,
        Some("nip04") => Scheme::Nip04,
        _ if content.contains("?iv=") => Scheme::Nip04,
        _ => Scheme::Nip44,
    }
}

/// Decrypts the content of an event from `sender` (1006 on any failure).
pub fn decrypt(
    secret: &SecretKey,
    sender: &PublicKey,
    content: &str,
    tags: &nostr::Tags,
) -> Result<(String, Scheme), Rejection> {
    let scheme = detect(content, tags);
    let plain = match scheme {
        Scheme::Nip04 => nip04::decrypt(secret, sender, content).map_err(|e| e.to_string()),
        Scheme::Nip44 => nip44::decrypt(secret, sender, content).map_err(|e| e.to_string()),
    };
    plain.map(|p| (p, scheme)).map_err(|e| {
        Rejection::new(
            ErrorCode::CannotDecrypt,
            format!("cannot decrypt {} content: {e}", scheme.name()),
        )
    })
}

/// Encrypts `plaintext` for `recipient`.
pub fn encrypt(
    secret: &SecretKey,
    recipient: &PublicKey,
    plaintext: &str,
    scheme: Scheme,
) -> Result<String, CryptoError> {
    match scheme {
        Scheme::Nip04 => {
            nip04::encrypt(secret, recipient, plaintext).map_err(|e| CryptoError(e.to_string()))
        }
        Scheme::Nip44 => nip44::encrypt(secret, recipient, plaintext, nip44::Version::V2)
            .map_err(|e| CryptoError(e.to_string())),
    }
}

/// Encryption failed (only with an invalid key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encryption failed: {0}")]
pub struct CryptoError(pub String);

/// Peers whose derived keys are kept; beyond this the cache starts over.
const CACHE_LIMIT: usize = 100_000;

/// DM decryption for one identity with the per-peer ECDH results cached.
///
/// ECDH dominates the cost of a DM (DESIGN.md §8), and the same wallets talk
/// to the relay again and again (requests, then two signing responses per
/// intent), so the NIP-44 conversation key and the NIP-04 shared key are
/// derived once per peer. Why hand-written: rust-nostr's `nip04` API derives
/// the key on every call and offers no key-based variant, so the NIP-04 path
/// uses the same `aes`/`cbc` crates rust-nostr uses, with the cached key.
pub struct DmCipher {
    secret: SecretKey,
    nip44: std::sync::Mutex<std::collections::HashMap<PublicKey, nip44::v2::ConversationKey>>,
    nip04: std::sync::Mutex<std::collections::HashMap<PublicKey, [u8; 32]>>,
}

impl std::fmt::Debug for DmCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmCipher").finish_non_exhaustive()
    }
}

fn cannot(scheme: Scheme, e: impl std::fmt::Display) -> Rejection {
    Rejection::new(
        ErrorCode::CannotDecrypt,
        format!("cannot decrypt {} content: {e}", scheme.name()),
    )
}

impl DmCipher {
    /// A cipher for the identity `secret`.
    pub fn new(secret: SecretKey) -> Self {
        Self {
            secret,
            nip44: Default::default(),
            nip04: Default::default(),
        }
    }

    fn cached<V: Clone>(
        map: &std::sync::Mutex<std::collections::HashMap<PublicKey, V>>,
        peer: &PublicKey,
        derive: impl FnOnce() -> Result<V, String>,
    ) -> Result<V, String> {
        if let Some(v) = map.lock().ok().and_then(|m| m.get(peer).cloned()) {
            return Ok(v);
        }
        let v = derive()?;
        if let Ok(mut m) = map.lock() {
            if m.len() >= CACHE_LIMIT {
                m.clear();
            }
            m.insert(*peer, v.clone());
        }
        Ok(v)
    }

    /// Decrypts content from `sender`, detecting the scheme (1006 on failure).
    pub fn decrypt(
        &self,
        sender: &PublicKey,
        content: &str,
        tags: &nostr::Tags,
    ) -> Result<(String, Scheme), Rejection> {
        let scheme = detect(content, tags);
        let bytes = match scheme {
            Scheme::Nip44 => self.decrypt_nip44(sender, content)?,
            Scheme::Nip04 => self.decrypt_nip04(sender, content)?,
        };
        String::from_utf8(bytes)
            .map(|s| (s, scheme))
            .map_err(|e| cannot(scheme, e))
    }

    fn decrypt_nip44(&self, sender: &PublicKey, content: &str) -> Result<Vec<u8>, Rejection> {
        use base64::Engine as _;
        if content.is_empty() || content.starts_with('#') {
            return Err(cannot(Scheme::Nip44, "unsupported payload version"));
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| cannot(Scheme::Nip44, e))?;
        if payload.first() != Some(&2) {
            return Err(cannot(Scheme::Nip44, "unsupported payload version"));
        }
        let key = Self::cached(&self.nip44, sender, || {
            nip44::v2::ConversationKey::derive(&self.secret, sender).map_err(|e| e.to_string())
        })
        .map_err(|e| cannot(Scheme::Nip44, e))?;
        nip44::v2::decrypt_to_bytes(&key, &payload).map_err(|e| cannot(Scheme::Nip44, e))
    }

    fn decrypt_nip04(&self, sender: &PublicKey, content: &str) -> Result<Vec<u8>, Rejection> {
        use aes::cipher::block_padding::Pkcs7;
        use aes::cipher::{BlockDecryptMut, KeyIvInit};
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (ct, iv) = content
            .split_once("?iv=")
            .ok_or_else(|| cannot(Scheme::Nip04, "missing ?iv="))?;
        let iv: [u8; 16] = b64
            .decode(iv)
            .map_err(|e| cannot(Scheme::Nip04, e))?
            .try_into()
            .map_err(|_| cannot(Scheme::Nip04, "iv must be 16 bytes"))?;
        let ct = b64.decode(ct).map_err(|e| cannot(Scheme::Nip04, e))?;
        let key = Self::cached(&self.nip04, sender, || {
            nostr::util::generate_shared_key(&self.secret, sender).map_err(|e| e.to_string())
        })
        .map_err(|e| cannot(Scheme::Nip04, e))?;
        cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|e| cannot(Scheme::Nip04, e))
    }
}

#[cfg(test)]
mod tests {
    use nostr::Keys;

    use super::*;

    #[test]
    fn round_trip_and_detect_both_schemes() {
        let (a, b) = (Keys::generate(), Keys::generate());
        for scheme in [Scheme::Nip04, Scheme::Nip44] {
            let ct = encrypt(a.secret_key(), &b.public_key(), "hello", scheme).expect("encrypt");
            let none = nostr::Tags::new();
            assert_eq!(detect(&ct, &none), scheme);
            let (pt, got) = decrypt(b.secret_key(), &a.public_key(), &ct, &none).expect("decrypt");
            assert_eq!((pt.as_str(), got), ("hello", scheme));
        }
    }

    #[test]
    fn garbage_is_1006() {
        let (a, b) = (Keys::generate(), Keys::generate());
        let none = nostr::Tags::new();
        for garbage in ["AAAA", "abc?iv=def", "", "Ag=="] {
            let r = decrypt(b.secret_key(), &a.public_key(), garbage, &none);
            assert_eq!(
                r.map_err(|r| r.code).err(),
                Some(ErrorCode::CannotDecrypt),
                "{garbage}"
            );
        }
        // Right scheme, wrong key.
        let c = Keys::generate();
        let ct = encrypt(a.secret_key(), &c.public_key(), "x", Scheme::Nip44).expect("enc");
        let r = decrypt(b.secret_key(), &a.public_key(), &ct, &none);
        assert_eq!(r.map_err(|r| r.code).err(), Some(ErrorCode::CannotDecrypt));
    }

    #[test]
    fn cached_cipher_agrees_with_rust_nostr() {
        let (relay, wallet) = (Keys::generate(), Keys::generate());
        let cipher = DmCipher::new(relay.secret_key().clone());
        let none = nostr::Tags::new();
        for scheme in [Scheme::Nip04, Scheme::Nip44] {
            for msg in ["h", "hello", &"x".repeat(5000)] {
                let ct =
                    encrypt(wallet.secret_key(), &relay.public_key(), msg, scheme).expect("enc");
                for _ in 0..2 {
                    let (pt, got) = cipher
                        .decrypt(&wallet.public_key(), &ct, &none)
                        .expect("dec");
                    assert_eq!((pt.as_str(), got), (msg, scheme));
                }
            }
        }
        for garbage in [
            "AAAA",
            "abc?iv=def",
            "",
            "Ag==",
            "#x",
            "bm90?iv=AAAAAAAAAAAAAAAAAAAAAA==",
        ] {
            let r = cipher.decrypt(&wallet.public_key(), garbage, &none);
            assert_eq!(
                r.map_err(|r| r.code).err(),
                Some(ErrorCode::CannotDecrypt),
                "{garbage}"
            );
        }
        let stranger = Keys::generate();
        let ct = encrypt(
            wallet.secret_key(),
            &stranger.public_key(),
            "x",
            Scheme::Nip44,
        )
        .expect("enc");
        assert!(cipher.decrypt(&wallet.public_key(), &ct, &none).is_err());
    }

    #[test]
    fn tag_overrides_content_sniffing() {
        let tags = nostr::Tags::from_list(vec![Scheme::Nip04.tag()]);
        assert_eq!(detect("AAAA", &tags), Scheme::Nip04);
    }
}
