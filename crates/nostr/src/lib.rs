//! # ark-relay-nostr
//!
//! The only crate that imports `nostr-sdk`: the relay's [`NostrTransport`]
//! over rust-nostr's relay pool ([`PoolTransport`]) and the in-process Nostr
//! relay used by `ark-relay dev` and the tests ([`DevRelay`]).
//!
//! It moves signed events in and out; it does not decide anything about them
//! (verification, decryption and validation belong to the engine and protocol).
//!
//! [`NostrTransport`]: ark_relay_protocol::transport::NostrTransport

mod dev_relay;
mod expired;
mod memdb;
mod pool;
mod quiet;

pub use dev_relay::{DevRelay, DevRelayOptions};
pub use memdb::KeepAllDatabase;
pub use pool::{PoolOptions, PoolTransport};
pub use quiet::QuietResets;
