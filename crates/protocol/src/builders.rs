//! Builders for every event of the protocol, signed with rust-nostr `Keys`.
//! Each sets the tags the protocol requires — above all a unique `d` tag,
//! because every kind here is addressable (see [`crate::kinds`]).

use ark_relay_core::{EventId, PubKey};
use nostr::{Event, EventBuilder, Keys, Tag, Timestamp};
use serde::Serialize;

use crate::content::{
    Confirmation, FailureNotice, IntentContent, L1Commitment, SigningChallenge, SigningResponse,
};
use crate::crypto::{encrypt, CryptoError, Scheme};
use crate::request::{ServiceRequest, ServiceResponse};
use crate::{event_id_to_nostr, kinds, pubkey_to_nostr, Rejection};

/// Building an event failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The content did not serialise.
    #[error("serialising content: {0}")]
    Json(#[from] serde_json::Error),
    /// Encryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

/// Signs, and writes the audit line of the signature (target `audit`, PRD
/// §10.2.2): kind, event id, signer and `d` tag — never key material.
fn sign(builder: EventBuilder, keys: &Keys) -> Result<Event, BuildError> {
    let event = builder
        .sign_with_keys(keys)
        .map_err(|e| BuildError::Sign(e.to_string()))?;
    tracing::info!(target: "audit", op = "sign_event", kind = event.kind.as_u16(), event_id = %event.id, pubkey = %event.pubkey, d = event.tags.identifier().unwrap_or(""), "signed a Nostr event");
    Ok(event)
}

fn timestamp(unix: i64) -> Timestamp {
    Timestamp::from(u64::try_from(unix).unwrap_or(0))
}

fn encrypted<T: Serialize>(
    keys: &Keys,
    to: &PubKey,
    content: &T,
    scheme: Scheme,
) -> Result<String, BuildError> {
    let json = serde_json::to_string(content)?;
    Ok(encrypt(
        keys.secret_key(),
        &pubkey_to_nostr(to),
        &json,
        scheme,
    )?)
}

/// The `d` tag of the 31341 that answers `answered` (one notice per event).
pub fn failure_d_tag(answered: &EventId) -> String {
    format!("31341:{answered}")
}

/// A 31510 intent: public, `p` relay, `d` action_id, NIP-40 expiration.
pub fn intent(keys: &Keys, relay: &PubKey, content: &IntentContent) -> Result<Event, BuildError> {
    let json = serde_json::to_string(content)?;
    let b = EventBuilder::new(kinds::kind(kinds::INTENT), json).tags([
        Tag::public_key(pubkey_to_nostr(relay)),
        Tag::identifier(content.action_id.clone()),
        Tag::expiration(timestamp(content.expires_at)),
    ]);
    sign(b, keys)
}

/// A 31500 service request, encrypted to the relay; `d` is the request id.
pub fn service_request(
    keys: &Keys,
    relay: &PubKey,
    request: &ServiceRequest,
    request_id: &str,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SERVICE_REQUEST),
        encrypted(keys, relay, request, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(relay)),
        Tag::identifier(request_id),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A 31501 service response to the request `request`.
pub fn service_response(
    keys: &Keys,
    to: &PubKey,
    request: &EventId,
    response: &ServiceResponse,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SERVICE_RESPONSE),
        encrypted(keys, to, response, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(to)),
        Tag::event(event_id_to_nostr(request)),
        Tag::identifier(format!("31501:{request}")),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A 31511 signing challenge for the intent `intent`; `d` is `session:step`.
pub fn signing_challenge(
    keys: &Keys,
    to: &PubKey,
    intent: &EventId,
    challenge: &SigningChallenge,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SIGNING_CHALLENGE),
        encrypted(keys, to, challenge, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(to)),
        Tag::event(event_id_to_nostr(intent)),
        Tag::identifier(format!("{}:{}", challenge.session_id, challenge.step)),
        Tag::expiration(timestamp(challenge.expires_at)),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A 31511 `sign_renewal` challenge (docs/protocol.md "Renewal challenge");
/// `d` is the renewal id, no `e` tag (no intent asked for it).
pub fn renewal_challenge(
    keys: &Keys,
    to: &PubKey,
    challenge: &crate::renewal::RenewalChallenge,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SIGNING_CHALLENGE),
        encrypted(keys, to, challenge, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(to)),
        Tag::identifier(challenge.renewal_id.clone()),
        Tag::expiration(timestamp(challenge.expires_at)),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A wallet's 31512 answer to a renewal challenge; `d` is
/// `<renewal id>:response`.
pub fn renewal_response(
    keys: &Keys,
    relay: &PubKey,
    response: &crate::renewal::RenewalResponse,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SIGNING_RESPONSE),
        encrypted(keys, relay, response, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(relay)),
        Tag::identifier(format!("{}:response", response.renewal_id)),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A 31512 signing response; `d` is `session:step:response`.
pub fn signing_response(
    keys: &Keys,
    relay: &PubKey,
    intent: &EventId,
    response: &SigningResponse,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::SIGNING_RESPONSE),
        encrypted(keys, relay, response, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(relay)),
        Tag::event(event_id_to_nostr(intent)),
        Tag::identifier(format!(
            "{}:{}:response",
            response.session_id, response.step
        )),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A 31341 failure notice to `to`, answering the event `answered`.
pub fn failure(
    keys: &Keys,
    to: &PubKey,
    answered: &EventId,
    rejection: &Rejection,
    scheme: Scheme,
) -> Result<Event, BuildError> {
    let notice = FailureNotice::from(rejection);
    let b = EventBuilder::new(
        kinds::kind(kinds::FAILURE),
        encrypted(keys, to, &notice, scheme)?,
    )
    .tags([
        Tag::public_key(pubkey_to_nostr(to)),
        Tag::event(event_id_to_nostr(answered)),
        Tag::identifier(failure_d_tag(answered)),
        scheme.tag(),
    ]);
    sign(b, keys)
}

/// A public 31340 confirmation: `e` every intent, `p` every recipient, `d` ark txid.
pub fn confirmation(
    keys: &Keys,
    confirmation: &Confirmation,
    recipients: &[PubKey],
) -> Result<Event, BuildError> {
    let mut tags: Vec<Tag> = confirmation
        .intents
        .iter()
        .map(|id| Tag::event(event_id_to_nostr(id)))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    tags.extend(
        recipients
            .iter()
            .filter(|p| seen.insert(**p))
            .map(|p| Tag::public_key(pubkey_to_nostr(p))),
    );
    tags.push(Tag::identifier(confirmation.ark_txid.clone()));
    let b = EventBuilder::new(
        kinds::kind(kinds::CONFIRMATION),
        serde_json::to_string(confirmation)?,
    )
    .tags(tags);
    sign(b, keys)
}

/// A public 31342 L1 commitment notice; `d` is the settlement id.
pub fn l1_commitment(
    keys: &Keys,
    notice: &L1Commitment,
    settlement_id: &str,
) -> Result<Event, BuildError> {
    let b = EventBuilder::new(
        kinds::kind(kinds::L1_COMMITMENT),
        serde_json::to_string(notice)?,
    )
    .tags([Tag::identifier(settlement_id)]);
    sign(b, keys)
}
