//! The `RelayStore` port: durable state of the relay (the ledger of coloured
//! VTXOs, assets, and the idempotency records of Nostr events and intents).
//!
//! # Notes for implementors
//! - **Every method is one database transaction**: it either applies completely
//!   or changes nothing, including when it returns an error.
//! - `lock_vtxos`, `commit_transaction` and `insert_vtxos` must be safe against
//!   concurrent callers on other connections, processes and hosts: a VTXO is
//!   never locked by two sessions and never spent twice.
//! - Idempotent operations (`commit_transaction` by ark txid, `record_event` by
//!   event id, `record_intent` by event id and `(author, action_id)`) report a
//!   repeat instead of failing, so a redelivered job is harmless.
//! - A transient back-end failure (connection lost, deadlock that survived
//!   retries) is [`StoreError::Transient`]: the caller may retry the whole call.
//! - The conformance suite in `ark-relay-testkit` is the executable contract;
//!   every back end must pass it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ledger::{
    Asset, Balances, CommitOutcome, IntentRecord, L2Transaction, NewAsset, NewVtxo, ProcessedEvent,
    Recorded, Vtxo, VtxoStatus,
};
use crate::queue::Job;
use crate::session::{SessionRecord, SessionStatus};
use crate::work::{JobRecord, JobStatus, NewOutboxEvent, OutboxItem};
use crate::{ActionId, AssetId, ErrorCode, EventId, PubKey, SessionId, UnixTime, VtxoId};

/// A shared store handle.
pub type DynStore = Arc<dyn RelayStore>;

/// A rule of the ledger that a request broke. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No VTXO with this id.
    #[error("unknown VTXO {0}")]
    UnknownVtxo(VtxoId),
    /// No asset with this id.
    #[error("unknown asset {0}")]
    UnknownAsset(AssetId),
    /// The VTXO was already spent.
    #[error("VTXO {0} already spent")]
    AlreadySpent(VtxoId),
    /// The VTXO expired and can no longer be spent off-chain.
    #[error("VTXO {0} expired")]
    Expired(VtxoId),
    /// The VTXO is locked by another signing session.
    #[error("VTXO {vtxo} is locked by session {by}")]
    Locked {
        /// The VTXO.
        vtxo: VtxoId,
        /// The session holding it.
        by: SessionId,
    },
    /// A VTXO with this id already exists.
    #[error("VTXO {0} already exists")]
    DuplicateVtxo(VtxoId),
    /// The same VTXO appears twice in one request.
    #[error("VTXO {0} listed twice")]
    RepeatedVtxo(VtxoId),
    /// Carrier sats in and out differ (ark transactions pay no fee).
    #[error("carrier sats not conserved: {inputs} in, {outputs} out")]
    SatsNotConserved {
        /// Sats of the inputs.
        inputs: u64,
        /// Sats of the outputs.
        outputs: u64,
    },
    /// Colour in + issued ≠ colour out + burned for an asset.
    #[error("colour of asset {asset} not conserved: {inputs} in, {outputs} out")]
    ColourNotConserved {
        /// The asset.
        asset: AssetId,
        /// Inputs + issued.
        inputs: u64,
        /// Outputs + burned.
        outputs: u64,
    },
    /// An amount overflowed or is otherwise out of range (e.g. zero colour).
    #[error("amount out of range")]
    AmountOutOfRange,
    /// A transaction with no inputs.
    #[error("transaction has no inputs")]
    NoInputs,
}

impl LedgerError {
    /// The public error code for this rejection.
    pub fn code(&self) -> ErrorCode {
        match self {
            LedgerError::UnknownVtxo(_) | LedgerError::UnknownAsset(_) => {
                ErrorCode::UnknownVtxoOrAsset
            }
            LedgerError::AlreadySpent(_) | LedgerError::Expired(_) => ErrorCode::InputAlreadySpent,
            LedgerError::Locked { .. } => ErrorCode::InputLocked,
            LedgerError::AmountOutOfRange => ErrorCode::InvalidAmount,
            LedgerError::DuplicateVtxo(_)
            | LedgerError::RepeatedVtxo(_)
            | LedgerError::SatsNotConserved { .. }
            | LedgerError::ColourNotConserved { .. }
            | LedgerError::NoInputs => ErrorCode::BatchInconsistent,
        }
    }
}

/// Errors of the store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a ledger rule; nothing changed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A transient failure (connection, deadlock, busy); the call may be retried.
    #[error("transient store failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database holds data the relay cannot read (corruption or a newer schema).
    #[error("corrupt or unreadable row: {0}")]
    Corrupt(String),
    /// Any other back-end failure.
    #[error("store back end: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The public error code to send when this error ends a request.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Ledger(e) => e.code(),
            StoreError::Transient(_) | StoreError::Corrupt(_) | StoreError::Backend(_) => {
                ErrorCode::BackendUnavailable
            }
        }
    }

    /// The ledger rule this error reports, if it is one.
    pub fn as_ledger(&self) -> Option<&LedgerError> {
        match self {
            StoreError::Ledger(e) => Some(e),
            _ => None,
        }
    }
}

/// Durable relay state. See the module docs for the contract.
#[async_trait]
pub trait RelayStore: Send + Sync + 'static {
    /// The back end's name (`sqlite`, `mariadb`), for banners and health.
    fn backend_name(&self) -> &'static str;

    // ---- assets -------------------------------------------------------------

    /// Registers an asset. Registering the same id again returns
    /// [`Recorded::Duplicate`] and leaves the first registration unchanged.
    async fn register_asset(&self, asset: &NewAsset, now: UnixTime)
        -> Result<Recorded, StoreError>;

    /// One asset by id.
    async fn asset(&self, id: &AssetId) -> Result<Option<Asset>, StoreError>;

    /// All registered assets, ordered by ticker then id.
    async fn assets(&self) -> Result<Vec<Asset>, StoreError>;

    // ---- VTXOs ----------------------------------------------------------------

    /// Inserts VTXOs created outside an L2 transaction (relay inventory funded
    /// from arkd, test fixtures). All or none. Coloured VTXOs add to their asset's
    /// `total_supply`. Fails with `DuplicateVtxo`, `RepeatedVtxo` or `UnknownAsset`.
    async fn insert_vtxos(&self, vtxos: &[NewVtxo], now: UnixTime) -> Result<(), StoreError>;

    /// One VTXO by id, in any state.
    async fn vtxo(&self, id: &VtxoId) -> Result<Option<Vtxo>, StoreError>;

    /// The owner's spendable VTXOs (`available` or `assigned`, including locked
    /// ones), with colour, ordered by id. This is what `sync_state` returns.
    async fn unspent_vtxos(&self, owner: &PubKey) -> Result<Vec<Vtxo>, StoreError>;

    /// Number of VTXOs in a given status owned by `owner` (inventory level).
    async fn count_vtxos(&self, owner: &PubKey, status: VtxoStatus) -> Result<u64, StoreError>;

    /// Up to `limit` of `owner`'s free inventory VTXOs: `available`,
    /// uncoloured and unlocked, oldest first, skipping the first `skip`
    /// (callers spread concurrent picks by varying it).
    async fn free_inventory(
        &self,
        owner: &PubKey,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<Vtxo>, StoreError>;

    /// Sum of the owner's spendable VTXOs, by asset.
    async fn balances(&self, owner: &PubKey) -> Result<Balances, StoreError>;

    /// Locks `ids` for `session`: all or none. Only spendable rows that are
    /// unlocked (or already locked by `session`, which makes this idempotent)
    /// can be locked. Fails with `UnknownVtxo`, `AlreadySpent`, `Expired`,
    /// `Locked` or `RepeatedVtxo`.
    async fn lock_vtxos(
        &self,
        ids: &[VtxoId],
        session: &SessionId,
        now: UnixTime,
    ) -> Result<(), StoreError>;

    /// Releases every lock held by `session`; returns how many were released.
    async fn release_locks(&self, session: &SessionId) -> Result<u64, StoreError>;

    /// Applies a finalized L2 transaction atomically: inputs become `spent`,
    /// outputs are created, colour is conserved per asset (see
    /// [`L2Transaction`]), and any other lock of the session is released.
    /// Applying the same ark txid twice returns [`CommitOutcome::AlreadyCommitted`].
    async fn commit_transaction(&self, tx: &L2Transaction) -> Result<CommitOutcome, StoreError>;

    // ---- idempotency ---------------------------------------------------------

    /// Records a processed Nostr event; [`Recorded::Duplicate`] if its id was seen.
    async fn record_event(&self, event: &ProcessedEvent) -> Result<Recorded, StoreError>;

    /// Records processed events in one transaction; one [`Recorded`] per
    /// event, in order (`Duplicate` for an id already seen, the others are
    /// still recorded). The default records them one by one.
    async fn record_events(&self, events: &[ProcessedEvent]) -> Result<Vec<Recorded>, StoreError> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.record_event(e).await?);
        }
        Ok(out)
    }

    /// A processed event by id.
    async fn processed_event(&self, id: &EventId) -> Result<Option<ProcessedEvent>, StoreError>;

    /// Records a validated intent and its event in one transaction.
    /// [`Recorded::Duplicate`] if the event id was seen before;
    /// [`Recorded::ReplayedAction`] if the author used the `action_id` in another
    /// event (the new event is then recorded as processed with code 1005).
    async fn record_intent(&self, intent: &IntentRecord) -> Result<Recorded, StoreError>;

    /// The intent an author published with `action_id`.
    async fn intent_by_action(
        &self,
        author: &PubKey,
        action_id: &ActionId,
    ) -> Result<Option<IntentRecord>, StoreError>;

    // ---- ingest --------------------------------------------------------------

    /// Accepts an event in one transaction: records it as processed, records
    /// its intent (if any), and writes its job as `pending`.
    /// [`Recorded::Duplicate`] if the event id was seen (nothing written);
    /// [`Recorded::ReplayedAction`] if the intent's `(author, action_id)` is
    /// taken (nothing written: the caller then rejects it with 1005).
    async fn accept_event(
        &self,
        event: &ProcessedEvent,
        intent: Option<&IntentRecord>,
        job: &Job,
        now: UnixTime,
    ) -> Result<Recorded, StoreError>;

    /// Rejects an event in one transaction: records it as processed with its
    /// `outcome` code and queues its failure notice. [`Recorded::Duplicate`] if
    /// the event id was seen (nothing written, so one notice per event).
    async fn reject_event(
        &self,
        event: &ProcessedEvent,
        notice: &NewOutboxEvent,
        now: UnixTime,
    ) -> Result<Recorded, StoreError>;

    /// The newest `created_at` among processed events (drives re-queries).
    async fn last_processed_at(&self) -> Result<Option<UnixTime>, StoreError>;

    // ---- jobs ----------------------------------------------------------------

    /// A job by key.
    async fn job(&self, key: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Pending jobs created at or before `created_before`, oldest first (to
    /// re-push wake-ups a queue lost).
    async fn pending_jobs(
        &self,
        created_before: UnixTime,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;

    /// Finishes a pending job (`Done` or `Dead`) and queues its outbound events,
    /// in one transaction. Returns `false` (and writes nothing) if the job was
    /// already finished, so a redelivered job publishes nothing twice.
    async fn finish_job(
        &self,
        key: &str,
        status: JobStatus,
        outbox: &[NewOutboxEvent],
        error: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    // ---- outbox --------------------------------------------------------------

    /// Queues events to publish; an existing `dedupe_key` is skipped.
    async fn push_outbox(&self, events: &[NewOutboxEvent], now: UnixTime)
        -> Result<(), StoreError>;

    /// Undelivered events whose next attempt is due, oldest first.
    async fn due_outbox(&self, now: UnixTime, limit: u32) -> Result<Vec<OutboxItem>, StoreError>;

    /// Marks an event delivered (one relay accepted it).
    async fn mark_outbox_delivered(&self, id: i64, now: UnixTime) -> Result<(), StoreError>;

    /// Marks events delivered, in one transaction (the publisher's marks of
    /// events whose `OK`s arrived together). The default marks one by one.
    async fn mark_outbox_delivered_many(
        &self,
        ids: &[i64],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        for id in ids {
            self.mark_outbox_delivered(*id, now).await?;
        }
        Ok(())
    }

    /// Records a failed publish attempt and when to try again.
    async fn mark_outbox_retry(
        &self,
        id: i64,
        next_attempt_at: UnixTime,
        error: &str,
    ) -> Result<(), StoreError>;

    // ---- signing sessions ---------------------------------------------------

    /// Creates a session; [`Recorded::Duplicate`] (nothing written) if its id exists.
    async fn create_session(&self, session: &SessionRecord) -> Result<Recorded, StoreError>;

    /// A session by id.
    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Writes `session` if the stored version still equals `session.version`
    /// (bumping it), together with `outbox`, in one transaction. `false` (and
    /// nothing written) if another writer updated it first.
    async fn update_session(
        &self,
        session: &SessionRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Where an accepted intent stands (`intents.status`, following the
    /// session that executes it: `Pending` = received, not started yet).
    /// `None` for an unknown intent.
    async fn intent_status(&self, id: &EventId) -> Result<Option<SessionStatus>, StoreError>;

    /// Writes one ceremony transition in **one** transaction: `w.session` if
    /// its stored version still equals `w.session.version` (bumping it), every
    /// row of `w.mirrors` (party sessions that follow it; written without a
    /// version check, only together with `w.session`), `w.outbox`, and, with
    /// `w.release_locks`, frees every VTXO locked by `w.session.id`; with
    /// `w.ledger`, applies that L2 transaction as
    /// [`RelayStore::commit_transaction`] does (already committed: nothing
    /// more; refused: the whole write fails with the ledger error); with
    /// `w.finish_job`, marks that job `done` if it is still pending (as
    /// [`RelayStore::finish_job`] without events). `false` (and nothing
    /// written) if another writer updated `w.session` first.
    async fn write_session(&self, w: &SessionWrite<'_>, now: UnixTime) -> Result<bool, StoreError>;

    /// Active or pending sessions whose step deadline or expiry is at or before `now`.
    async fn due_sessions(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError>;
}

/// One ceremony transition as the store writes it (see [`RelayStore::write_session`]).
#[derive(Debug, Clone, Copy)]
pub struct SessionWrite<'a> {
    /// The coordinating session (version-checked).
    pub session: &'a SessionRecord,
    /// Party sessions that follow it.
    pub mirrors: &'a [SessionRecord],
    /// Events to queue.
    pub outbox: &'a [NewOutboxEvent],
    /// Free every lock held by `session.id`.
    pub release_locks: bool,
    /// A finalized L2 transaction to apply with this transition (the ledger
    /// commit and the state that follows it, one commit instead of two).
    pub ledger: Option<&'a L2Transaction>,
    /// The key of the job whose handler ends with this write: recorded
    /// `done` with it (one commit instead of two per job).
    pub finish_job: Option<&'a str>,
}
