//! # ark-relay-protocol
//!
//! The relay's public Nostr protocol (DESIGN.md §4, `docs/protocol.md`): event
//! kinds, the JSON content of every kind, validation of intents and service
//! requests (with the PRD §6 fee policy), detection and use of the DM encryption
//! schemes (NIP-04 and NIP-44 v2), and builders for every event the relay or a
//! wallet publishes.
//!
//! Pure: no sockets, no async runtime, no database. Wallets, the engine, the
//! simulators' tests and the examples all share these types, so the wire
//! format is defined exactly once.

pub mod batch;
pub mod builders;
pub mod content;
pub mod crypto;
pub mod intent;
pub mod invoice;
mod keys;
pub mod kinds;
pub mod names;
pub mod perps;
pub mod rejection;
pub mod renewal;
pub mod request;
pub mod transport;
pub mod valid;
pub mod wire;

pub use keys::{event_id_from_nostr, event_id_to_nostr, pubkey_from_nostr, pubkey_to_nostr};
pub use rejection::Rejection;
