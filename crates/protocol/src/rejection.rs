//! A rejection: an error code plus a message for the author, sent as a 31341
//! failure notice (or a 31501 error).

use std::fmt;

use ark_relay_core::ErrorCode;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The public error code.
    pub code: ErrorCode,
    /// A precise, human-readable message (never secret material).
    pub message: String,
}

impl Rejection {
    /// A rejection with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.code(),
            self.code.name(),
            self.message
        )
    }
}

impl std::error::Error for Rejection {}

impl From<ark_relay_core::LedgerError> for Rejection {
    fn from(e: ark_relay_core::LedgerError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}
