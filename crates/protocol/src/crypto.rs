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
    fn tag_overrides_content_sniffing() {
        let tags = nostr::Tags::from_list(vec![Scheme::Nip04.tag()]);
        assert_eq!(detect("AAAA", &tags), Scheme::Nip04);
    }
}
