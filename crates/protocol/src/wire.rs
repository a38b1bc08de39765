//! The two value types every content kind shares on the wire: an amount
//! exactly as the JSON number was sent ([`WireAmount`], so validation can
//! tell a float (1002) from a negative or overflowing integer (2005)) and an
//! asset named by ticker or id ([`AssetRef`]). Below `content` and `perps`,
//! which both use them.

use std::fmt;
use std::str::FromStr;

use ark_relay_core::{AssetId, ErrorCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Rejection;

/// An amount as it appeared on the wire (any JSON number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WireAmount(serde_json::Number);

impl WireAmount {
    /// An integer amount.
    pub fn new(value: u64) -> Self {
        Self(value.into())
    }

    /// The amount as a positive integer that fits a signed 64-bit column:
    /// a non-integer is 1002, zero, negative or too large is 2005.
    pub fn positive(&self, field: &str) -> Result<u64, Rejection> {
        if let Some(v) = self.0.as_u64() {
            return if v == 0 {
                Err(Rejection::new(
                    ErrorCode::InvalidAmount,
                    format!("{field} must be positive"),
                ))
            } else if v > i64::MAX as u64 {
                Err(Rejection::new(
                    ErrorCode::InvalidAmount,
                    format!("{field} is too large"),
                ))
            } else {
                Ok(v)
            };
        }
        if self.0.is_i64() {
            return Err(Rejection::new(
                ErrorCode::InvalidAmount,
                format!("{field} is negative"),
            ));
        }
        // A float: integral but beyond u64 is an overflow, anything else is not an integer.
        match self.0.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() >= 9.0e18 => Err(Rejection::new(
                ErrorCode::InvalidAmount,
                format!("{field} is out of range"),
            )),
            _ => Err(Rejection::new(
                ErrorCode::Malformed,
                format!("{field} must be an integer in base units, got {}", self.0),
            )),
        }
    }
}

/// An asset as named on the wire: a 64-hex tapd asset id, or a ticker such as
/// `gBTC` that the relay resolves against its registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssetRef {
    /// A tapd asset id.
    Id(AssetId),
    /// A ticker.
    Ticker(String),
}

impl AssetRef {
    /// The relay's own asset, by ticker.
    pub fn gbtc() -> Self {
        AssetRef::Ticker(GBTC_TICKER.to_owned())
    }
}

/// The ticker of the relay-issued asset.
pub const GBTC_TICKER: &str = "gBTC";

impl fmt::Display for AssetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssetRef::Id(id) => write!(f, "{id}"),
            AssetRef::Ticker(t) => f.write_str(t),
        }
    }
}

impl FromStr for AssetRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() == 64 {
            return s.parse().map(AssetRef::Id).map_err(|e| e.to_string());
        }
        let ok = (1..=20).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(AssetRef::Ticker(s.to_owned()))
        } else {
            Err(format!("not an asset id or ticker: {s:?}"))
        }
    }
}

impl Serialize for AssetRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AssetRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
