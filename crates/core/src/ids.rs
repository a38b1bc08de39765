//! Typed identifiers. Each id parses and validates at the edge and prints in one
//! canonical form (lowercase hex, `txid:vout` for VTXOs), which is also the form
//! stored in the database.

use std::fmt;
use std::str::FromStr;

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not `2 * len` lowercase or uppercase hex digits.
    #[error("{what}: expected {len} bytes of hex")]
    Hex {
        /// The kind of id being parsed.
        what: &'static str,
        /// The expected length in bytes.
        len: usize,
    },
    /// 32 bytes that are not an x-only point on secp256k1.
    #[error("not a valid x-only public key")]
    NotAPoint,
    /// Not `txid:vout`.
    #[error("VTXO id must be <txid>:<vout>")]
    Outpoint,
    /// An action id that is empty, too long or uses characters outside `[A-Za-z0-9._:-]`.
    #[error("action_id must be 1-64 characters of [A-Za-z0-9._:-]")]
    ActionId,
}

fn parse_hex32(s: &str, what: &'static str) -> Result<[u8; 32], IdError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| IdError::Hex { what, len: 32 })?;
    Ok(out)
}

macro_rules! serde_via_str {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! hex32_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex32(s, $what).map(Self)
            }
        }
        serde_via_str!($name);
    };
}

hex32_id!(
    /// A Nostr event id (NIP-01 sha256 of the serialized event).
    EventId,
    "event id"
);
hex32_id!(
    /// A signing session. For a single intent it is the intent's event id (PRD §10.1.1).
    SessionId,
    "session id"
);
hex32_id!(
    /// A Taproot Asset id (tapd's 32-byte asset id). Tickers such as `gBTC` are
    /// resolved to an `AssetId` by the protocol layer, never stored in its place.
    AssetId,
    "asset id"
);

impl From<EventId> for SessionId {
    fn from(id: EventId) -> Self {
        Self(id.0)
    }
}

/// A Nostr public key: a BIP-340 x-only key. It is also the owner key of a
/// user's VTXOs (DESIGN.md §6), so it is always a valid curve point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PubKey(XOnlyPublicKey);

impl PubKey {
    /// Wraps a secp256k1 x-only key.
    pub const fn from_x_only(key: XOnlyPublicKey) -> Self {
        Self(key)
    }
    /// The secp256k1 x-only key.
    pub const fn x_only(&self) -> &XOnlyPublicKey {
        &self.0
    }
    /// Parses 32 raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        XOnlyPublicKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| IdError::NotAPoint)
    }
}

impl fmt::Display for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.serialize()))
    }
}
impl fmt::Debug for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PubKey({self})")
    }
}
impl FromStr for PubKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::from_slice(&parse_hex32(s, "public key")?)
    }
}
serde_via_str!(PubKey);

/// A VTXO: the outpoint of an Ark virtual output, written `txid:vout`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VtxoId(OutPoint);

impl VtxoId {
    /// The VTXO at output `vout` of transaction `txid`.
    pub fn new(txid: Txid, vout: u32) -> Self {
        Self(OutPoint { txid, vout })
    }
    /// The outpoint.
    pub const fn outpoint(&self) -> OutPoint {
        self.0
    }
    /// The transaction that created the VTXO.
    pub const fn txid(&self) -> Txid {
        self.0.txid
    }
    /// The output index.
    pub const fn vout(&self) -> u32 {
        self.0.vout
    }
}

impl From<OutPoint> for VtxoId {
    fn from(o: OutPoint) -> Self {
        Self(o)
    }
}
impl fmt::Display for VtxoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.txid, self.0.vout)
    }
}
impl fmt::Debug for VtxoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VtxoId({self})")
    }
}
impl FromStr for VtxoId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let (txid, vout) = s.split_once(':').ok_or(IdError::Outpoint)?;
        let txid = Txid::from_str(txid).map_err(|_| IdError::Outpoint)?;
        let vout = vout.parse().map_err(|_| IdError::Outpoint)?;
        Ok(Self::new(txid, vout))
    }
}
serde_via_str!(VtxoId);

/// The client-chosen id of an intent (`action_id`, also its `d` tag). Unique per author forever.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(String);

impl ActionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionId({})", self.0)
    }
}
impl FromStr for ActionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::ActionId)
        }
    }
}
serde_via_str!(ActionId);

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn pubkey_parses_and_prints_lowercase() {
        let pk: PubKey = PK.to_uppercase().parse().expect("valid");
        assert_eq!(pk.to_string(), PK);
        assert_eq!("00".repeat(32).parse::<PubKey>(), Err(IdError::NotAPoint));
        assert!("abc".parse::<PubKey>().is_err());
    }

    #[test]
    fn vtxo_id_round_trip() {
        let s = format!("{}:7", "11".repeat(32));
        let id: VtxoId = s.parse().expect("valid");
        assert_eq!(id.vout(), 7);
        assert_eq!(id.to_string(), s);
        assert!("xyz:1".parse::<VtxoId>().is_err());
        assert!("11".repeat(32).parse::<VtxoId>().is_err());
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(serde_json::from_str::<VtxoId>(&json).ok(), Some(id));
    }

    #[test]
    fn action_id_rules() {
        assert!("3f1c-uuid_ok.1:2".parse::<ActionId>().is_ok());
        assert!("".parse::<ActionId>().is_err());
        assert!("a b".parse::<ActionId>().is_err());
        assert!("x".repeat(65).parse::<ActionId>().is_err());
    }

    #[test]
    fn session_from_event() {
        let e: EventId = "ab".repeat(32).parse().expect("valid");
        assert_eq!(SessionId::from(e).to_string(), e.to_string());
    }
}
