//! 31500 service requests and 31501 service responses.

use ark_relay_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::content::{AssetRef, WireAmount};
use crate::Rejection;

/// The content of a 31500 service request (decrypted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServiceRequest {
    /// Get a Lightning invoice that lifts `amount` of `asset_id` into a VTXO.
    LiftLightning {
        /// The asset (gBTC or a Taproot Asset id).
        asset_id: AssetRef,
        /// Amount in base units.
        amount: WireAmount,
        /// For the first lift of a new Taproot Asset: its proof file (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// List my unspent VTXOs with their colour.
    SyncState {},
    /// Execute these signed 31510 intents as one atomic batch.
    SubmitBatch {
        /// The submitter's id for the batch.
        batch_id: String,
        /// Complete signed 31510 events.
        intents: Vec<nostr::Event>,
    },
    /// The relay's info (same as `GET /info`).
    GetInfo {},
    /// Issue a new asset on Ark with me as its issuer (a DEX's LP token):
    /// its genesis gives me 1 unit and its control asset, which every later
    /// `mint` of mine spends and re-creates (docs/protocol.md, "Assets
    /// issued by a wallet").
    IssueAsset {
        /// Ticker (1–20 of `A–Z a–z 0–9 - _`, unique on the relay).
        ticker: String,
        /// Human-readable name (default: the ticker).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Display precision (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decimals: Option<u8>,
    },
}

/// The actions a 31500 may carry.
pub const ACTIONS: [&str; 5] = [
    "lift_lightning",
    "sync_state",
    "submit_batch",
    "get_info",
    "issue_asset",
];

/// Parses decrypted request content: an unknown action is 1003, anything else
/// malformed is 1002.
pub fn parse_request(plaintext: &str) -> Result<ServiceRequest, Rejection> {
    if plaintext.len() > crate::intent::MAX_CONTENT_BYTES * 16 {
        return Err(Rejection::new(ErrorCode::Malformed, "request too large"));
    }
    let value: serde_json::Value = serde_json::from_str(plaintext)
        .map_err(|e| Rejection::new(ErrorCode::Malformed, format!("request is not JSON: {e}")))?;
    let action = value
        .get("action")
        .and_then(|a| a.as_str())
        .ok_or_else(|| Rejection::new(ErrorCode::Malformed, "request has no \"action\""))?;
    if !ACTIONS.contains(&action) {
        return Err(Rejection::new(
            ErrorCode::UnsupportedAction,
            format!("unsupported action {action:?}"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Rejection::new(ErrorCode::Malformed, format!("request: {e}")))
}

/// The error part of a 31501.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    /// The error code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

/// The content of a 31501 service response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceResponse {
    /// The id of the 31500 event it answers.
    pub request_id: String,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResponseError>,
}

impl ServiceResponse {
    /// A successful response.
    pub fn ok(request_id: impl Into<String>, result: serde_json::Value) -> Self {
        Self {
            request_id: request_id.into(),
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    pub fn err(request_id: impl Into<String>, r: &Rejection) -> Self {
        Self {
            request_id: request_id.into(),
            result: None,
            error: Some(ResponseError {
                code: r.code,
                message: r.message.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_action() {
        assert_eq!(
            parse_request(r#"{"action":"sync_state"}"#),
            Ok(ServiceRequest::SyncState {})
        );
        assert_eq!(
            parse_request(r#"{"action":"get_info"}"#),
            Ok(ServiceRequest::GetInfo {})
        );
        let lift = parse_request(r#"{"action":"lift_lightning","asset_id":"gBTC","amount":1000}"#);
        assert!(matches!(lift, Ok(ServiceRequest::LiftLightning { .. })));
        let batch = parse_request(r#"{"action":"submit_batch","batch_id":"b1","intents":[]}"#);
        assert!(matches!(batch, Ok(ServiceRequest::SubmitBatch { .. })));
        assert_eq!(
            parse_request(r#"{"action":"issue_asset","ticker":"gLP"}"#),
            Ok(ServiceRequest::IssueAsset {
                ticker: "gLP".into(),
                name: None,
                decimals: None
            })
        );
    }

    #[test]
    fn rejects_with_codes() {
        let code = |s: &str| parse_request(s).map_err(|r| r.code).err();
        assert_eq!(
            code(r#"{"action":"open_perp"}"#),
            Some(ErrorCode::UnsupportedAction)
        );
        assert_eq!(code(r#"{"nope":1}"#), Some(ErrorCode::Malformed));
        assert_eq!(code("not json"), Some(ErrorCode::Malformed));
        assert_eq!(
            code(r#"{"action":"lift_lightning","amount":5}"#),
            Some(ErrorCode::Malformed)
        );
    }
}
