//! Ark addresses (arkd `pkg/ark-lib/encoding.go`): bech32m, HRP `ark` on mainnet
//! and `tark` on every test network, payload
//! `version (0) || signer x-only key (32) || VTXO output key (32)`.
//!
//! The address carries the *tweaked* output key, not the owner key: a receiver's
//! leaves cannot be recovered from it. Written with the `bech32` crate because
//! ark-core's `ArkAddress::decode` accepts any HRP and version; the tests check
//! that both encode the same string.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use bitcoin::key::TweakedPublicKey;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Network, ScriptBuf};

use crate::ArkError;

/// HRP of mainnet Ark addresses.
pub const MAINNET_HRP: &str = "ark";
/// HRP of test-network Ark addresses (testnet, testnet4, signet, mutinynet, regtest).
pub const TESTNET_HRP: &str = "tark";

/// A version-0 Ark address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArkAddress {
    /// `true` for `ark1…`, `false` for `tark1…`.
    pub mainnet: bool,
    /// The Ark server's signer key.
    pub signer: XOnlyPublicKey,
    /// The VTXO's Taproot output key.
    pub output_key: TweakedPublicKey,
}

impl ArkAddress {
    /// The address of a VTXO output key on `network`.
    pub fn new(network: Network, signer: XOnlyPublicKey, output_key: TweakedPublicKey) -> Self {
        Self {
            mainnet: network == Network::Bitcoin,
            signer,
            output_key,
        }
    }

    /// `OP_1 <output key>`.
    pub fn script_pubkey(&self) -> ScriptBuf {
        ScriptBuf::new_p2tr_tweaked(self.output_key)
    }

    /// Parses and validates (bech32m checksum, HRP, version 0, 65-byte payload, valid keys).
    pub fn decode(s: &str) -> Result<Self, ArkError> {
        let bad = |m: &str| ArkError::InvalidAddress(m.to_owned());
        let checked = CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| ArkError::InvalidAddress(e.to_string()))?;
        let hrp = checked.hrp();
        let mainnet = if hrp == Hrp::parse_unchecked(MAINNET_HRP) {
            true
        } else if hrp == Hrp::parse_unchecked(TESTNET_HRP) {
            false
        } else {
            return Err(bad("unknown prefix"));
        };
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(bad("empty payload"));
        };
        if *version != 0 {
            return Err(bad("unsupported version"));
        }
        if rest.len() != 64 {
            return Err(bad("payload must be 65 bytes"));
        }
        let (signer, key) = rest.split_at(32);
        let signer = XOnlyPublicKey::from_slice(signer).map_err(ArkError::InvalidKey)?;
        let key = XOnlyPublicKey::from_slice(key).map_err(ArkError::InvalidKey)?;
        Ok(Self {
            mainnet,
            signer,
            // The key is only ever paid to, never tweaked again.
            output_key: TweakedPublicKey::dangerous_assume_tweaked(key),
        })
    }
}

impl fmt::Display for ArkAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(if self.mainnet {
            MAINNET_HRP
        } else {
            TESTNET_HRP
        });
        let mut payload = [0u8; 65];
        payload[1..33].copy_from_slice(&self.signer.serialize());
        payload[33..].copy_from_slice(&self.output_key.serialize());
        bech32::encode_lower_to_fmt::<Bech32m, _>(f, hrp, &payload).map_err(|_| fmt::Error)
    }
}

impl FromStr for ArkAddress {
    type Err = ArkError;
    fn from_str(s: &str) -> Result<Self, ArkError> {
        Self::decode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // arkd `pkg/ark-lib/encoding_test.go` fixture.
    const ADDR: &str = "tark1qqellv77udfmr20tun8dvju5vgudpf9vxe8jwhthrkn26fz96pawqfdy8nk05rsmrf8h94j26905e7n6sng8y059z8ykn2j5xcuw4xt846qj6x";

    #[test]
    fn arkd_fixture_round_trips() {
        let a: ArkAddress = ADDR.parse().unwrap();
        assert!(!a.mainnet);
        assert_eq!(
            a.signer.to_string(),
            "33ffb3dee353b1a9ebe4ced64b946238d0a4ac364f275d771da6ad2445d07ae0"
        );
        assert_eq!(
            a.output_key.to_string(),
            "25a43cecfa0e1b1a4f72d64ad15f4cfa7a84d0723e8511c969aa543638ea9967"
        );
        assert_eq!(a.to_string(), ADDR);
        let main = ArkAddress { mainnet: true, ..a };
        assert!(main.to_string().starts_with("ark1"));
        assert_eq!(main.to_string().parse::<ArkAddress>().unwrap(), main);
    }

    #[test]
    fn rejects_bad_addresses() {
        assert!(
            "wrongprefix1qt9tfh7c09hlsstzq5y9tzuwyaesrwr8gpy8cn29cxv0flp64958s0n0yd0"
                .parse::<ArkAddress>()
                .is_err()
        );
        let mut flipped = ADDR.to_owned();
        flipped.replace_range(10..11, if &ADDR[10..11] == "q" { "p" } else { "q" });
        assert!(flipped.parse::<ArkAddress>().is_err());
    }
}
