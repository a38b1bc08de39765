//! The relay's Nostr key at rest (PRD §10.2): AES-256-GCM over the 32-byte
//! secret, with the AES key derived from `GATEWAY_ENCRYPTION_KEY` by
//! **Argon2id** (19 MiB, 2 passes — the OWASP minimum). Argon2id rather than
//! HKDF because operators set that variable by hand and it may be a
//! passphrase, not 32 random bytes: a memory-hard KDF keeps a stolen blob
//! expensive to brute-force; it runs once at start-up, so its cost is moot.
//!
//! Blob format (what goes in `GATEWAY_NOSTR_PRIVATE_KEY`):
//! `arkrelay-key-v1:<salt b64>:<nonce b64>:<ciphertext+tag b64>`.
//! Secrets are held in `Zeroizing` buffers and never formatted.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

const PREFIX: &str = "arkrelay-key-v1";

/// Why a key blob could not be opened. Never contains key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    /// Not `arkrelay-key-v1:…:…:…` or bad base64.
    #[error("GATEWAY_NOSTR_PRIVATE_KEY is not an arkrelay-key-v1 blob")]
    Format,
    /// The encryption key is wrong, or the blob was altered.
    #[error("cannot decrypt the relay key: wrong GATEWAY_ENCRYPTION_KEY or a corrupted blob")]
    Decrypt,
    /// The encryption key is empty.
    #[error("GATEWAY_ENCRYPTION_KEY is empty")]
    EmptyPassphrase,
    /// Key derivation failed.
    #[error("key derivation failed")]
    Kdf,
}

fn derive(passphrase: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    if passphrase.is_empty() {
        return Err(VaultError::EmptyPassphrase);
    }
    let params = Params::new(19 * 1024, 2, 1, Some(32)).map_err(|_| VaultError::Kdf)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|_| VaultError::Kdf)?;
    Ok(out)
}

/// Encrypts a 32-byte secret key under `passphrase`.
pub fn seal(secret: &[u8; 32], passphrase: &[u8]) -> Result<String, VaultError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let key = derive(passphrase, &salt)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| VaultError::Kdf)?;
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), secret.as_ref())
        .map_err(|_| VaultError::Decrypt)?;
    Ok(format!(
        "{PREFIX}:{}:{}:{}",
        B64.encode(salt),
        B64.encode(nonce),
        B64.encode(ct)
    ))
}

/// Decrypts a blob made by [`seal`].
pub fn open(blob: &str, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let mut parts = blob.trim().split(':');
    if parts.next() != Some(PREFIX) {
        return Err(VaultError::Format);
    }
    let mut field = || -> Result<Vec<u8>, VaultError> {
        B64.decode(parts.next().ok_or(VaultError::Format)?)
            .map_err(|_| VaultError::Format)
    };
    let (salt, nonce, ct) = (field()?, field()?, field()?);
    if nonce.len() != 12 || salt.len() < 8 {
        return Err(VaultError::Format);
    }
    let key = derive(passphrase, &salt)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| VaultError::Kdf)?;
    let plain = Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(&nonce), ct.as_ref())
            .map_err(|_| VaultError::Decrypt)?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(VaultError::Decrypt);
    }
    out.copy_from_slice(&plain);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let secret = [0x5c; 32];
        let blob = seal(&secret, b"correct horse").expect("seal");
        assert!(blob.starts_with("arkrelay-key-v1:"));
        assert!(
            !blob.contains(&hex::encode(secret)),
            "no plaintext in the blob"
        );
        assert_eq!(*open(&blob, b"correct horse").expect("open"), secret);
        assert_eq!(open(&blob, b"wrong").map(|_| ()), Err(VaultError::Decrypt));
        assert_eq!(open("nonsense", b"x").map(|_| ()), Err(VaultError::Format));
        assert_eq!(
            seal(&secret, b"").map(|_| ()),
            Err(VaultError::EmptyPassphrase)
        );
        let mut tampered = blob.clone();
        tampered.pop();
        tampered.push(if blob.ends_with('A') { 'B' } else { 'A' });
        assert!(open(&tampered, b"correct horse").is_err());
        // Two seals of the same key differ (fresh salt and nonce).
        assert_ne!(seal(&secret, b"correct horse").expect("seal"), blob);
    }

    #[test]
    fn errors_never_show_key_material() {
        let secret = [0x77; 32];
        let blob = seal(&secret, b"pw").expect("seal");
        let Err(e) = open(&blob, b"nope") else {
            panic!("a wrong passphrase opened the blob")
        };
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(&hex::encode(secret)) && !text.contains("pw"),
            "{text}"
        );
    }
}
