//! The simulator's rejection type: arkd's gRPC status code, `ErrorDetails`
//! name and message. Its own module so that the rule modules ([`super::state`],
//! [`super::assets`], the rounds) share it without importing one another.

/// gRPC status codes used by the simulator (gRPC spec numbers).
pub(crate) mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const ALREADY_EXISTS: i32 = 6;
    pub const INTERNAL: i32 = 13;
}

/// A rejection, as arkd sends it: gRPC code + `ErrorDetails.name` + message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    /// gRPC status code.
    pub code: i32,
    /// arkd error name.
    pub name: String,
    /// Human-readable message.
    pub message: String,
}

impl SimError {
    pub(crate) fn new(code: i32, name: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            name: name.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(name: &str, message: impl Into<String>) -> Self {
        Self::new(code::INVALID_ARGUMENT, name, message)
    }
}
