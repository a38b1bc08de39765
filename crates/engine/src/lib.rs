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

pub mod handlers;
pub mod ingest;
pub mod outbox;
mod runner;
pub mod transfer;
pub mod worker;

pub use runner::{Engine, EngineConfig, EngineParts, Periodic, Roles};

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
