//! arkd's custom PSBT input field `taptree` (arkd `pkg/ark-lib/txutils/psbt_fields.go`,
//! `taptree.go`): an *unknown* input entry whose key is the type byte `0xDE`
//! followed by the ASCII name `taptree`, and whose value lists the whole tapscript
//! tree of the spent output as repeated
//! `{depth u8, leaf version u8 (0xc0), compact-size length, script}`.
//!
//! Depths are written as arkd does since #1150 (`min(i + 1, n - 1)`, a lone leaf at
//! depth 0) and ignored when reading, as arkd ignores them.

use bitcoin::psbt::{self, raw};
use bitcoin::taproot::LeafVersion;
use bitcoin::ScriptBuf;

use crate::ArkError;

/// The PSBT key type of arkd's custom fields.
pub const ARK_PSBT_KEY_TYPE: u8 = 0xde;
/// The key name of the tapscript-tree field.
pub const TAPTREE_KEY_NAME: &[u8] = b"taptree";

/// The raw PSBT key `0xDE || "taptree"`.
pub fn taptree_key() -> raw::Key {
    raw::Key {
        type_value: ARK_PSBT_KEY_TYPE,
        key: TAPTREE_KEY_NAME.to_vec(),
    }
}

/// Encodes a leaf list as the `taptree` field value.
pub fn encode_taptree(leaves: &[ScriptBuf]) -> Vec<u8> {
    let n = leaves.len();
    let mut out = Vec::with_capacity(leaves.iter().map(|l| l.len() + 4).sum());
    for (i, leaf) in leaves.iter().enumerate() {
        let depth = (i + 1).min(n.saturating_sub(1));
        out.push(u8::try_from(depth).unwrap_or(u8::MAX));
        out.push(LeafVersion::TapScript.to_consensus());
        write_compact_size(&mut out, leaf.len() as u64);
        out.extend_from_slice(leaf.as_bytes());
    }
    out
}

/// Decodes a `taptree` field value into its leaves (depths ignored; only leaf
/// version 0xc0 is accepted).
pub fn decode_taptree(mut bytes: &[u8]) -> Result<Vec<ScriptBuf>, ArkError> {
    let mut leaves = Vec::new();
    while let [_depth, version, rest @ ..] = bytes {
        if *version != LeafVersion::TapScript.to_consensus() {
            return Err(ArkError::MalformedTaptree("unsupported leaf version"));
        }
        let (len, rest) = read_compact_size(rest)?;
        let len = usize::try_from(len).map_err(|_| ArkError::MalformedTaptree("length"))?;
        if rest.len() < len {
            return Err(ArkError::MalformedTaptree("truncated script"));
        }
        let (script, rest) = rest.split_at(len);
        leaves.push(ScriptBuf::from_bytes(script.to_vec()));
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err(ArkError::MalformedTaptree("trailing byte"));
    }
    if leaves.is_empty() {
        return Err(ArkError::MalformedTaptree("no leaves"));
    }
    Ok(leaves)
}

/// Sets (or replaces) the `taptree` field of a PSBT input.
pub fn set_taptree(input: &mut psbt::Input, leaves: &[ScriptBuf]) {
    input.unknown.insert(taptree_key(), encode_taptree(leaves));
}

/// Reads the `taptree` field of a PSBT input, if present.
pub fn get_taptree(input: &psbt::Input) -> Result<Option<Vec<ScriptBuf>>, ArkError> {
    input
        .unknown
        .get(&taptree_key())
        .map(|v| decode_taptree(v))
        .transpose()
}

fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn read_compact_size(bytes: &[u8]) -> Result<(u64, &[u8]), ArkError> {
    let short = || ArkError::MalformedTaptree("truncated length");
    let (first, rest) = bytes.split_first().ok_or_else(short)?;
    let take = |n: usize| -> Result<(u64, &[u8]), ArkError> {
        if rest.len() < n {
            return Err(short());
        }
        let (num, tail) = rest.split_at(n);
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(num);
        Ok((u64::from_le_bytes(buf), tail))
    };
    match first {
        0xfd => take(2),
        0xfe => take(4),
        0xff => take(8),
        n => Ok((u64::from(*n), rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_arkd() {
        let a = ScriptBuf::from_bytes(vec![0x51]);
        let b = ScriptBuf::from_bytes(vec![0x52, 0x53]);
        let c = ScriptBuf::from_bytes(vec![0x54; 300]);
        // One leaf: depth 0.
        assert_eq!(
            encode_taptree(std::slice::from_ref(&a)),
            vec![0, 0xc0, 1, 0x51]
        );
        // Two leaves: depths 1, 1.
        assert_eq!(
            encode_taptree(&[a.clone(), b.clone()]),
            vec![1, 0xc0, 1, 0x51, 1, 0xc0, 2, 0x52, 0x53]
        );
        // Three leaves: depths 1, 2, 2; a 300-byte script has a 3-byte length.
        let enc = encode_taptree(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(&enc[..4], &[1, 0xc0, 1, 0x51]);
        assert_eq!(&enc[4..9], &[2, 0xc0, 2, 0x52, 0x53]);
        assert_eq!(&enc[9..14], &[2, 0xc0, 0xfd, 0x2c, 0x01]);
        assert_eq!(decode_taptree(&enc).unwrap(), vec![a, b, c]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(decode_taptree(&[]).is_err());
        assert!(decode_taptree(&[1, 0xc0, 5, 0x51]).is_err());
        assert!(decode_taptree(&[1, 0xc2, 1, 0x51]).is_err());
        assert!(decode_taptree(&[1, 0xc0, 1, 0x51, 7]).is_err());
        assert!(decode_taptree(&[1, 0xc0, 0xfd, 1]).is_err());
    }
}
