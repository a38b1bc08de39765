//! The `LeaderLock` port: one scheduler at a time runs the periodic tasks
//! (session expiry, inventory monitor, hourly L1 settlement), however many
//! `ark-relay scheduler` processes run.
//!
//! A lock is a **lease**: it expires `ttl` after it was taken or last renewed,
//! so a holder that dies (SIGKILL, a lost host) frees it without any help.
//! Every successful [`LeaderLock::acquire`] returns a new **fencing token**,
//! strictly greater than every token handed out before for that lock. A
//! holder that stalled past its lease (a long GC-like pause, a frozen VM) may
//! still believe it leads while a newer holder already does; a write that must
//! never be made twice can carry the token and be refused when a greater one
//! was seen (`UPDATE … SET fence = ? WHERE fence <= ?`), so the stale holder's
//! write fails instead of doubling the work.
//!
//! # Notes for implementors
//! - `acquire` succeeds only when nobody holds an unexpired lease.
//! - `renew` extends the lease only if `holder` still holds it **with that
//!   token** (compare-and-extend); `false` means the lease was lost.
//! - `release` deletes the lease only if it is still `holder`'s with that
//!   token (compare-and-delete), so releasing late never frees another's lease.
//! - Errors are the queue port's [`QueueError`]: the lock lives with the queue
//!   (Redis in production, the process in embedded mode).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::queue::QueueError;

/// A held lease: who holds it and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's name (unique per process).
    pub holder: String,
    /// The fencing token; greater than every earlier lease's.
    pub token: u64,
}

/// A named, expiring, fenced lock. See the module docs for the contract.
#[async_trait]
pub trait LeaderLock: Send + Sync + 'static {
    /// The implementation's name (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// How long a lease lasts without renewal.
    fn ttl(&self) -> Duration;

    /// Takes the lease for `holder` if it is free; `None` if someone holds it.
    async fn acquire(&self, holder: &str) -> Result<Option<Lease>, QueueError>;

    /// Extends `lease` by `ttl`; `false` if it is no longer held.
    async fn renew(&self, lease: &Lease) -> Result<bool, QueueError>;

    /// Gives `lease` up (no-op if it is no longer held).
    async fn release(&self, lease: &Lease) -> Result<(), QueueError>;

    /// The current holder, if any (for health and tests).
    async fn holder(&self) -> Result<Option<Lease>, QueueError>;
}

/// A shared lock handle.
pub type DynLeaderLock = Arc<dyn LeaderLock>;
