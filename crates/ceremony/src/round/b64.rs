//! PSBTs as base64 strings in the persisted JSON (bitcoin's own serde form
//! of a PSBT does not read back through serde_json).

use std::str::FromStr;

use bitcoin::Psbt;
use serde::{Deserialize, Deserializer, Serializer};

/// One PSBT.
pub mod psbt {
    use super::*;

    /// Serialises as base64.
    pub fn serialize<S: Serializer>(p: &Psbt, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string())
    }

    /// Reads base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Psbt, D::Error> {
        let s = String::deserialize(d)?;
        Psbt::from_str(&s).map_err(serde::de::Error::custom)
    }
}

/// An optional PSBT.
pub mod opt_psbt {
    use super::*;

    /// Serialises as base64 or null.
    pub fn serialize<S: Serializer>(p: &Option<Psbt>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(&p.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Reads base64 or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Psbt>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| Psbt::from_str(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A list of PSBTs.
pub mod psbts {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serialises as a list of base64 strings.
    pub fn serialize<S: Serializer>(ps: &[Psbt], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ps.len()))?;
        for p in ps {
            seq.serialize_element(&p.to_string())?;
        }
        seq.end()
    }

    /// Reads a list of base64 strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Psbt>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| Psbt::from_str(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
