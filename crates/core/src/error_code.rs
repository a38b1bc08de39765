//! The public error-code table (PRD §8, DESIGN.md §5).
//!
//! Every rejection the relay sends to a user (a 31341 failure notice, a 31501
//! error, an HTTP error body) carries exactly one of these codes. The numbers,
//! machine names and meanings are a public contract: never renumber, only add.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $message:literal; )*) => {
        /// A stable, documented error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable numeric code sent in the `code` field.
            pub const fn code(self) -> u16 {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The stable machine-readable name (`SCREAMING_SNAKE_CASE`).
            pub const fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// A short human-readable description of the code.
            pub const fn message(self) -> &'static str {
                match self { $( ErrorCode::$variant => $message, )* }
            }

            /// Looks a code up by its number.
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    /// The event id or BIP-340 signature does not verify.
    InvalidSignature = 1001, "INVALID_SIGNATURE", "invalid Nostr event id or signature";
    /// The event or its content is malformed (bad JSON, float amount, missing field, `d` ≠ `action_id`).
    Malformed = 1002, "MALFORMED", "malformed event or content";
    /// The intent type or service action is not supported.
    UnsupportedAction = 1003, "UNSUPPORTED_ACTION", "unsupported action or intent type";
    /// The intent or request has expired.
    Expired = 1004, "EXPIRED", "intent or request expired";
    /// This `(author, action_id)` was already used.
    ReplayedAction = 1005, "REPLAYED_ACTION", "action_id already used (replay)";
    /// The encrypted content could not be decrypted.
    CannotDecrypt = 1006, "CANNOT_DECRYPT", "cannot decrypt content";
    /// The author's unspent VTXOs do not cover the amount.
    InsufficientBalance = 2001, "INSUFFICIENT_BALANCE", "insufficient VTXO balance";
    /// An input VTXO was already spent.
    InputAlreadySpent = 2002, "INPUT_ALREADY_SPENT", "input VTXO already spent";
    /// A VTXO or asset is unknown to the relay.
    UnknownVtxoOrAsset = 2003, "UNKNOWN_VTXO_OR_ASSET", "unknown VTXO or asset";
    /// An input VTXO is locked by another signing session.
    InputLocked = 2004, "INPUT_LOCKED", "input VTXO locked by another session";
    /// An amount is zero, out of range or below dust.
    InvalidAmount = 2005, "INVALID_AMOUNT", "amount invalid or below dust";
    /// An input VTXO's colour in the ledger disagrees with the Ark server's indexer (reconciliation marked it disputed).
    ColourMismatch = 2006, "COLOUR_MISMATCH", "input VTXO colour disagrees with the Ark server's indexer";
    /// The legs of an atomic batch are inconsistent.
    BatchInconsistent = 3001, "BATCH_INCONSISTENT", "atomic batch validation failed (inconsistent witness)";
    /// A party of an atomic batch did not sign in time.
    BatchPartyTimeout = 3002, "BATCH_PARTY_TIMEOUT", "a batch party did not sign in time";
    /// The fee output is missing or has the wrong amount or asset.
    FeeOutput = 4001, "FEE_OUTPUT", "fee output missing or incorrect";
    /// The signing session expired before it completed.
    SessionExpired = 5001, "SESSION_EXPIRED", "signing session expired";
    /// A signature in a signing response does not verify.
    InvalidResponseSignature = 5002, "INVALID_RESPONSE_SIGNATURE", "invalid signature in signing response";
    /// A signing response names an unknown session or step.
    UnknownSession = 5003, "UNKNOWN_SESSION", "response for unknown session or step";
    /// The wallet refused to sign a challenge of its own (single-party) session.
    SigningRefused = 5004, "SIGNING_REFUSED", "the wallet refused to sign the challenge";
    /// A VTXO of the recipient expires soon and has no renewal scheduled (sent as a notice).
    VtxoNearExpiry = 5005, "VTXO_NEAR_EXPIRY", "a VTXO expires soon without a renewal scheduled";
    /// A renewal answer (31512 to a `sign_renewal` challenge) does not complete the delegation.
    RenewalInvalid = 5006, "RENEWAL_INVALID", "renewal answer invalid or for an unknown renewal";
    /// The Lightning invoice is invalid (signature, network, format).
    InvalidInvoice = 6001, "INVALID_INVOICE", "invalid Lightning invoice";
    /// The Lightning invoice has expired or expires too soon.
    InvoiceExpired = 6002, "INVOICE_EXPIRED", "Lightning invoice expired";
    /// The Lightning payment failed; the VTXO value was refunded.
    PaymentFailed = 6003, "PAYMENT_FAILED", "Lightning payment failed (VTXO refunded)";
    /// The invoice amount does not match the landed amount.
    InvoiceAmountMismatch = 6004, "INVOICE_AMOUNT_MISMATCH", "invoice amount does not match";
    /// The lift or land would break "circulating gBTC ≤ BTC reserve", or the
    /// relay cannot cover the payment from its Lightning balance.
    ReserveExceeded = 6005, "RESERVE_EXCEEDED", "reserve too small for this lift or land";
    /// A back end (arkd, database) is unavailable; the relay is read-only.
    BackendUnavailable = 7001, "BACKEND_UNAVAILABLE", "backend unavailable (read-only mode)";
    /// The Ark server rejected the transaction.
    ArkRejected = 7002, "ARK_REJECTED", "Ark server rejected the transaction";
    /// A liquidation's oracle price event is older than `[conditional] max_price_age_secs` (or from the future).
    StalePrice = 8001, "STALE_PRICE", "oracle price too old for a liquidation";
    /// The oracle price is not beyond the liquidation price computed from the signed position terms.
    PriceNotBeyondThreshold = 8002, "PRICE_NOT_BEYOND_THRESHOLD", "price has not crossed the position's liquidation price";
    /// The price event is not signed by the oracle the user named in `open_perp`.
    WrongOracle = 8003, "WRONG_ORACLE", "price not signed by the oracle named in the position terms";
    /// The witness's `open_perp` did not create the named position VTXO.
    WitnessMismatch = 8004, "WITNESS_MISMATCH", "witness does not belong to this position";
    /// An event of the witness has a bad id or signature (a forged `open_perp` or price).
    InvalidWitnessSignature = 8005, "INVALID_WITNESS_SIGNATURE", "witness event id or signature invalid";
    /// The position was already liquidated (or its VTXO is spent or being spent).
    AlreadyLiquidated = 8006, "ALREADY_LIQUIDATED", "position already liquidated";
    /// The liquidation pays or burns something other than what the position terms allow.
    LiquidationPayoutMismatch = 8007, "LIQUIDATION_PAYOUT_MISMATCH", "liquidation moves value the terms do not allow";
    /// The price event is for another pair or another number of decimals than the terms.
    PricePairMismatch = 8008, "PRICE_PAIR_MISMATCH", "price event is for another pair or precision";
    /// The witness is missing, not JSON events, or not an `open_perp` and a price event.
    MalformedWitness = 8009, "MALFORMED_WITNESS", "liquidation witness malformed";
    /// The `open_perp` position terms are invalid (leverage, maintenance margin, keys, assets).
    InvalidPerpTerms = 8010, "INVALID_PERP_TERMS", "invalid perpetual position terms";
    /// The liquidation is not signed by the DEX named in the position terms.
    NotTheDex = 8011, "NOT_THE_DEX", "liquidation not authored by the position's DEX";
    /// Too many requests from this author.
    RateLimited = 9001, "RATE_LIMITED", "rate limited";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(deserializer)?;
        ErrorCode::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {code}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(codes.insert(c.code()), "duplicate code {}", c.code());
            assert!(names.insert(c.name()), "duplicate name {}", c.name());
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
            assert!(!c.message().is_empty());
        }
        assert_eq!(ErrorCode::ALL.len(), 40);
    }

    #[test]
    fn spec_codes_are_stable() {
        assert_eq!(ErrorCode::InvalidSignature.code(), 1001);
        assert_eq!(ErrorCode::InsufficientBalance.code(), 2001);
        assert_eq!(ErrorCode::InputAlreadySpent.code(), 2002);
        assert_eq!(ErrorCode::BatchInconsistent.code(), 3001);
        assert_eq!(ErrorCode::FeeOutput.code(), 4001);
    }

    #[test]
    fn serde_is_numeric() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::InputLocked)
                .ok()
                .as_deref(),
            Some("2004")
        );
        assert_eq!(
            serde_json::from_str::<ErrorCode>("7002").ok(),
            Some(ErrorCode::ArkRejected)
        );
        assert!(serde_json::from_str::<ErrorCode>("1234").is_err());
    }
}
