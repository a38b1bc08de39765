//! # ark-relay-grpc
//!
//! The relay's gRPC client layer: clients for lnd, tapd and arkd that implement
//! the back-end ports of `ark-relay-core`, with TLS certificate pinning,
//! macaroon authentication and a shared resilience layer (backoff, circuit
//! breaker, health snapshot).
//!
//! This crate owns connections and wire mapping. It must not hold business
//! rules: it never decides whether a payment or invoice is acceptable.

pub mod arkd;
pub mod daemon;
pub mod inventory;
pub mod lnd;
pub mod macaroon;
pub mod resilience;
pub mod rounds;
pub mod tapd;
pub mod tls;
