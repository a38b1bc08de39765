//! Event kinds of the protocol. 31500–31512 and 31340–31342 are the PRD's
//! numbers; they lie in the NIP-01 *addressable* range, so every such event
//! carries a unique `d` tag (see `docs/protocol.md`, "The d-tag rule").

use nostr::Kind;

/// 31510: a signed, public intent (user/dApp → relay).
pub const INTENT: u16 = 31510;
/// 31500: an encrypted service request (user → relay).
pub const SERVICE_REQUEST: u16 = 31500;
/// 31501: an encrypted service response (relay → user).
pub const SERVICE_RESPONSE: u16 = 31501;
/// 31511: an encrypted signing challenge (relay → user).
pub const SIGNING_CHALLENGE: u16 = 31511;
/// 31512: an encrypted signing response (user → relay).
pub const SIGNING_RESPONSE: u16 = 31512;
/// 31340: the public confirmation of a completed transaction.
pub const CONFIRMATION: u16 = 31340;
/// 31341: an encrypted failure notice (relay → author).
pub const FAILURE: u16 = 31341;
/// 31342: the public L1 commitment notice.
pub const L1_COMMITMENT: u16 = 31342;
/// 13510: the relay's replaceable info event (pubkey, relays, kinds, fees, schemes).
pub const RELAY_INFO: u16 = 13510;

/// The kinds the relay consumes (its subscription filter).
pub const CONSUMED: [u16; 3] = [INTENT, SERVICE_REQUEST, SIGNING_RESPONSE];

/// The kinds whose content is encrypted.
pub const ENCRYPTED: [u16; 5] = [
    SERVICE_REQUEST,
    SERVICE_RESPONSE,
    SIGNING_CHALLENGE,
    SIGNING_RESPONSE,
    FAILURE,
];

/// A protocol kind number as a rust-nostr [`Kind`].
pub fn kind(number: u16) -> Kind {
    Kind::from(number)
}

/// Whether events of this kind carry encrypted content.
pub fn is_encrypted(number: u16) -> bool {
    ENCRYPTED.contains(&number)
}
