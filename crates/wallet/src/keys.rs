//! Loading the wallet's Nostr key: from a file (64 hex digits or `nsec1…`,
//! surrounding whitespace ignored) or from the environment variable
//! [`KEY_ENV`]. The secret is never printed.

use std::path::Path;

use nostr::Keys;

/// The environment variable holding a key (hex or `nsec1…`).
pub const KEY_ENV: &str = "ARK_WALLET_KEY";

/// Parses a key written as hex or `nsec1…`.
pub fn parse_key(text: &str) -> Result<Keys, String> {
    Keys::parse(text.trim())
        .map_err(|_| "not a secret key (expected 64 hex digits or nsec1…)".into())
}

/// The key in `path`, else the key in `$ARK_WALLET_KEY`.
pub fn load_keys(path: Option<&Path>) -> Result<Keys, String> {
    if let Some(path) = path {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading key file {}: {e}", path.display()))?;
        return parse_key(&text).map_err(|e| format!("{}: {e}", path.display()));
    }
    match std::env::var(KEY_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_key(&v).map_err(|e| format!("{KEY_ENV}: {e}")),
        _ => Err(format!(
            "no key: pass --key-file <path>, --wallet <name> with --dev-json, or set {KEY_ENV}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_nsec() {
        use nostr::ToBech32;
        let k = Keys::generate();
        let hex = k.secret_key().to_secret_hex();
        let nsec = k.secret_key().to_bech32().expect("nsec");
        assert_eq!(
            parse_key(&format!(" {hex}\n")).expect("hex").public_key(),
            k.public_key()
        );
        assert_eq!(parse_key(&nsec).expect("nsec").public_key(), k.public_key());
        assert!(parse_key("nope").is_err());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k");
        std::fs::write(&path, format!("{hex}\n")).expect("write");
        assert_eq!(
            load_keys(Some(&path)).expect("file").public_key(),
            k.public_key()
        );
    }
}
