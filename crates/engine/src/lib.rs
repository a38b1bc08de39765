//! # ark-relay-engine
//!
//! The orchestrator. It hears Nostr events through the `NostrTransport` port,
//! screens, verifies, decrypts, validates and deduplicates them
//! ([`ingest::Ingestor`]), records accepted ones with their job and rejected
//! ones with their 31341 notice in one transaction each, distributes jobs
//! through the `JobQueue` port to [`worker::Worker`]s, and publishes the outbox
//! ([`outbox::OutboxPublisher`]).
//!
//! It is the only crate that spawns tasks ([`Engine::run`]) and it sees the
//! world only through ports: store, queue, bus, transport, clock.

pub mod audit;
pub mod builder;
pub mod ceremony;
pub mod conditional;
pub mod degrade;
pub mod handlers;
pub mod ingest;
pub mod inventory;
pub mod keyring;
pub mod metrics;
pub mod outbox;
pub mod ramp;
pub mod reconcile;
pub mod renewal;
pub mod rounds;
pub mod router;
mod runner;
mod server;
pub mod settlement;
pub mod worker;

pub use runner::{Engine, EngineConfig, EngineParts, Fence, Heartbeat, Periodic, Roles};

/// Errors of the engine's own plumbing (not user-visible rejections).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ark_relay_core::StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] ark_relay_core::QueueError),
    /// Building an outgoing event failed.
    #[error(transparent)]
    Build(#[from] ark_relay_protocol::builders::BuildError),
    /// A job payload could not be read.
    #[error("bad job payload: {0}")]
    Payload(String),
}

/// The outbox row of a 31341 failure notice to `to`, answering `answered`
/// (one per answered event: its dedupe key is the notice's `d` tag).
pub fn failure_notice(
    keys: &nostr::Keys,
    to: &ark_relay_core::PubKey,
    answered: &ark_relay_core::EventId,
    rejection: &ark_relay_protocol::Rejection,
    scheme: ark_relay_protocol::crypto::Scheme,
) -> Result<ark_relay_core::NewOutboxEvent, ark_relay_protocol::builders::BuildError> {
    use nostr::JsonUtil;
    let event = ark_relay_protocol::builders::failure(keys, to, answered, rejection, scheme)?;
    Ok(ark_relay_core::NewOutboxEvent {
        dedupe_key: ark_relay_protocol::builders::failure_d_tag(answered),
        kind: ark_relay_protocol::kinds::FAILURE,
        recipient: Some(*to),
        event_json: event.as_json(),
    })
}
