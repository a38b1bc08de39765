//! Delegated renewal and recovery of a wallet's VTXOs (issue 15; docs/protocol.md
//! "Renewal challenge"): the content of the 31511 challenge whose `type` is
//! `sign_renewal`, and of the wallet's 31512 answer.
//!
//! The relay sends the wallet, for one VTXO it owns, the **unsigned
//! delegation** ark-core 0.12 `batch::prepare_delegate_psbts_at` builds: an
//! intent proof (BIP-322-style PSBT) renewing the VTXO to the same owner, the
//! same sats and the same assets (with the asset preservation packet), whose
//! message names the relay's cosigner key and a `valid_at` (default 90 % of
//! the VTXO's lifetime), and one partial forfeit per forfeitable input. The
//! wallet checks it (owner, sats, assets identical; fee ≤ the published
//! renewal fee) and answers with its signatures only: SIGHASH_DEFAULT over the
//! proof inputs, `SIGHASH_ALL|ANYONECANPAY` (0x81) over each forfeit's VTXO
//! input. The relay inserts them, verifies them and keeps the delegation until
//! it is valid, then registers it in a round.
//!
//! **Recovery** reuses the same challenge with `recovery: true`: the VTXO was
//! swept, so there is no forfeit and `valid_at` is now (reclaim in the next
//! round). One type, one wallet check, one store.
//!
//! Pure: serde types and shape checks only.

use serde::{Deserialize, Serialize};

use ark_relay_core::{PubKey, VtxoId};

/// The `type` of a renewal challenge (the only value).
pub const SIGN_RENEWAL: &str = "sign_renewal";

/// The `type` tag of [`RenewalChallenge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalType {
    /// Pre-sign the renewal (or recovery) of one VTXO.
    SignRenewal,
}

/// An asset amount a VTXO carries, by Arkade asset id (68 hex: genesis txid
/// and little-endian group index), as the arkd indexer reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RenewalAsset {
    /// Arkade asset id (68 hex).
    pub asset_id: String,
    /// Base units.
    pub amount: u64,
}

/// The content of a 31511 challenge of type `sign_renewal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalChallenge {
    /// Schema version (1).
    pub v: u8,
    /// Always `sign_renewal`.
    #[serde(rename = "type")]
    pub challenge_type: RenewalType,
    /// The relay's id of this delegation (`renew:<txid:vout>` or
    /// `recover:<txid:vout>`); the answer names it.
    pub renewal_id: String,
    /// The VTXO renewed.
    pub vtxo: VtxoId,
    /// Its owner (the wallet answering).
    pub owner: PubKey,
    /// Its carrier sats (the renewed VTXO has the same minus `fee`).
    pub sats: u64,
    /// Its assets (the renewed VTXO has exactly these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<RenewalAsset>,
    /// When the VTXO expires (unix s).
    pub vtxo_expires_at: i64,
    /// From when the relay may register the renewal (unix s; the intent
    /// message's `valid_at`).
    pub valid_at: i64,
    /// A swept VTXO reclaimed (no forfeits) rather than a live one renewed.
    #[serde(default)]
    pub recovery: bool,
    /// The unsigned intent proof (base64 PSBT).
    pub intent_proof: String,
    /// The intent message JSON the proof commits to, verbatim.
    pub intent_message: String,
    /// The unsigned partial forfeits (base64 PSBTs, one input each), empty
    /// for a recovery.
    #[serde(default)]
    pub forfeit_psbts: Vec<String>,
    /// The relay's cosigner key, named in the message (33-byte hex).
    pub delegate_cosigner_pk: String,
    /// Sats the renewal costs the owner (proof inputs − outputs); never
    /// above the published `renewal_fee_sats`.
    pub fee: u64,
    /// For the user.
    pub human_readable_context: String,
    /// The challenge expires (unix s).
    pub expires_at: i64,
}

/// One signature of a [`RenewalResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalSignature {
    /// 0 = the intent proof, 1.. = `forfeit_psbts[psbt_index - 1]`.
    pub psbt_index: u32,
    /// The input signed.
    pub input_index: u32,
    /// The Schnorr signature (hex): 64 bytes (SIGHASH_DEFAULT) on the proof,
    /// 65 bytes ending in `81` on a forfeit.
    pub sig: String,
}

/// The content of the wallet's 31512 answer to a renewal challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalResponse {
    /// Schema version (1).
    pub v: u8,
    /// Always `sign_renewal`.
    #[serde(rename = "type")]
    pub challenge_type: RenewalType,
    /// The challenge answered.
    pub renewal_id: String,
    /// The signatures, or
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<RenewalSignature>,
    /// a refusal with its reason (the VTXO is then shown "no renewal").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
}

/// Whether a 31511/31512 content is a renewal one (its `type` field).
pub fn is_renewal(content: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(content)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .is_some_and(|t| t == SIGN_RENEWAL)
}

/// The renewal id of a VTXO (`recover:` for a recovery).
pub fn renewal_id(vtxo: &VtxoId, recovery: bool) -> String {
    if recovery {
        format!("recover:{vtxo}")
    } else {
        format!("renew:{vtxo}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_tag_routes_renewals_and_nothing_else() {
        let r = RenewalResponse {
            v: 1,
            challenge_type: RenewalType::SignRenewal,
            renewal_id: "renew:x".into(),
            signatures: Vec::new(),
            reject: Some("no".into()),
        };
        let json = serde_json::to_string(&r).expect("json");
        assert!(json.contains(r#""type":"sign_renewal""#), "{json}");
        assert!(is_renewal(&json));
        assert!(!is_renewal(r#"{"type":"sign_ark_tx"}"#));
        assert!(!is_renewal("not json"));
        let back: RenewalResponse = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, r);
    }
}
