//! Secrets in configuration: never written into the config file itself.
//!
//! A config value that is secret (an lnd macaroon, a tapd macaroon, a TLS
//! certificate to pin) is given as a **reference**: `env:VAR` (read the
//! environment variable `VAR`) or `file:/path` (read the file). The reference is
//! safe to print; the value it resolves to is wrapped in [`Secret`], whose
//! `Debug` and `Display` are redacted so it cannot leak into logs.
//!
//! This module must not log or print resolved secret values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A resolved secret value. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value. Callers must not log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret reference is invalid or cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not `env:VAR` or `file:/path`. The offending text is not echoed: it may
    /// be the secret itself.
    #[error("secret must be a reference `env:VAR` or `file:/path`, got {}", redact_literal(.0))]
    Syntax(String),
    /// The environment variable is not set (or not UTF-8).
    #[error("environment variable {0} (secret reference) is not set")]
    MissingEnv(String),
    /// The file cannot be read.
    #[error("cannot read secret file {}", .0.display())]
    File(PathBuf, #[source] std::io::Error),
    /// The reference resolved to an empty value.
    #[error("secret {0} is empty")]
    Empty(String),
}

/// Shows only the shape of a rejected literal: someone may have pasted the
/// secret itself into the config.
fn redact_literal(s: &str) -> String {
    match s.split_once(':') {
        Some((scheme, _)) if scheme.len() <= 8 => format!("{scheme}:<redacted>"),
        _ => "<redacted>".to_owned(),
    }
}

/// Where a secret lives: `env:VAR` or `file:/path`. Printable; resolves to a
/// [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file.
    File(PathBuf),
}

impl SecretRef {
    /// Reads the secret as bytes (files are read raw, e.g. a binary macaroon).
    pub fn resolve_bytes(&self) -> Result<Secret<Vec<u8>>, SecretError> {
        match self {
            SecretRef::Env(var) => std::env::var(var)
                .map(|v| Secret::new(v.into_bytes()))
                .map_err(|_| SecretError::MissingEnv(var.clone())),
            SecretRef::File(path) => std::fs::read(path)
                .map(Secret::new)
                .map_err(|e| SecretError::File(path.clone(), e)),
        }
    }

    /// Checks that the secret resolves to something non-empty, without keeping it.
    pub fn check(&self) -> Result<(), SecretError> {
        if self.resolve_bytes()?.expose().is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(var) => write!(f, "env:{var}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, SecretError> {
        if let Some(var) = s.strip_prefix("env:") {
            let valid =
                !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                return Ok(SecretRef::Env(var.to_owned()));
            }
        } else if let Some(path) = s.strip_prefix("file:") {
            if !path.is_empty() {
                return Ok(SecretRef::File(PathBuf::from(path)));
            }
        }
        Err(SecretError::Syntax(s.to_owned()))
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            "env:LND_MACAROON".parse::<SecretRef>().unwrap(),
            SecretRef::Env("LND_MACAROON".into())
        );
        assert_eq!(
            "file:/etc/lnd/admin.macaroon".parse::<SecretRef>().unwrap(),
            SecretRef::File("/etc/lnd/admin.macaroon".into())
        );
        for bad in ["", "env:", "file:", "0201036c6e64", "env:A B", "vault:x"] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn literal_is_not_echoed_in_errors() {
        let err = "0201036c6e6402f801".parse::<SecretRef>().unwrap_err();
        assert!(!err.to_string().contains("0201036c"), "{err}");
    }

    #[test]
    fn secret_debug_and_display_are_redacted() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn resolves_files_and_reports_missing_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mac");
        std::fs::write(&path, b"\x02\x01").unwrap();
        let r = SecretRef::File(path);
        assert_eq!(r.resolve_bytes().unwrap().expose(), &vec![2u8, 1]);
        let missing = SecretRef::Env("ARK_RELAY_SURELY_UNSET_VAR_4711".into());
        assert!(matches!(
            missing.resolve_bytes(),
            Err(SecretError::MissingEnv(_))
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            SecretRef::File(empty).check(),
            Err(SecretError::Empty(_))
        ));
    }
}
