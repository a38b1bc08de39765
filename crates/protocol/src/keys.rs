//! Conversions between core's ids and rust-nostr's types (both are the same
//! 32 bytes: x-only keys and sha256 event ids).

use ark_relay_core::{EventId, PubKey};

/// A Nostr public key as a core [`PubKey`]; `None` if it is not a curve point.
pub fn pubkey_from_nostr(pk: &nostr::PublicKey) -> Option<PubKey> {
    PubKey::from_slice(pk.as_bytes()).ok()
}

/// A core [`PubKey`] as a Nostr public key.
pub fn pubkey_to_nostr(pk: &PubKey) -> nostr::PublicKey {
    // A valid x-only key is always a valid Nostr public key.
    nostr::PublicKey::from_byte_array(pk.x_only().serialize())
}

/// A Nostr event id as a core [`EventId`].
pub fn event_id_from_nostr(id: &nostr::EventId) -> EventId {
    EventId::from_bytes(id.to_bytes())
}

/// A core [`EventId`] as a Nostr event id.
pub fn event_id_to_nostr(id: &EventId) -> nostr::EventId {
    nostr::EventId::from_byte_array(*id.as_bytes())
}
