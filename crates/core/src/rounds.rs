//! The relay's participation in Ark batch rounds: queued **round jobs**
//! (what to register in a round: renewals, boarding, recoveries) and the
//! persisted **participation** saga that carries them through one round, and
//! the [`RoundStore`] port that keeps both (tables `round_jobs`,
//! `round_participations`).
//!
//! The store keeps the job's and the saga's typed content as opaque JSON
//! (their types are `ark_relay_ceremony::round`); it only enforces the
//! lifecycle: a job is `pending` until a participation takes it
//! (`in_round`), and the participation's end moves it to `done`, back to
//! `pending` (a retry in the next round, `attempts` + 1) or `failed` — in the
//! same transaction as the saga's last write.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{StoreError, UnixTime};

/// Where a round job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundJobStatus {
    /// Waiting for the next round (from `not_before` on).
    Pending,
    /// Taken by a running participation.
    InRound,
    /// Its outputs exist (the round's commitment tx created them). Final.
    Done,
    /// Given up (refused for good, or out of attempts). Final.
    Failed,
}

impl RoundJobStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RoundJobStatus::Pending => "pending",
            RoundJobStatus::InRound => "in_round",
            RoundJobStatus::Done => "done",
            RoundJobStatus::Failed => "failed",
        }
    }
}

impl FromStr for RoundJobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(RoundJobStatus::Pending),
            "in_round" => Ok(RoundJobStatus::InRound),
            "done" => Ok(RoundJobStatus::Done),
            "failed" => Ok(RoundJobStatus::Failed),
            other => Err(format!("unknown round job status {other:?}")),
        }
    }
}

impl fmt::Display for RoundJobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One queued round job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundJobRecord {
    /// Unique id (idempotency key of `enqueue`).
    pub job_id: String,
    /// What it is for (`inventory_board`, `inventory_renew`,
    /// `delegated_renewal`, `recovery`, …), for listing and metrics.
    pub kind: String,
    /// Where it is.
    pub status: RoundJobStatus,
    /// The job (JSON of `ark_relay_ceremony::round::RoundJob`).
    pub data: String,
    /// Rounds it took part in without its outputs being created.
    pub attempts: u32,
    /// The participation that holds (or last held) it.
    pub participation: Option<String>,
    /// Not registered before this time.
    pub not_before: UnixTime,
    /// The commitment txid that created its outputs (when `done`).
    pub commitment_txid: Option<String>,
    /// The last failure.
    pub error: Option<String>,
    /// Enqueued.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
}

/// One participation (one round attempt) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipationRecord {
    /// Unique id.
    pub participation_id: String,
    /// The saga's phase name (`registered`, `confirmed`, `tree_nonces`,
    /// `tree_signatures`, `forfeits_submitted`, `finalized`, `failed`).
    pub phase: String,
    /// The saga (JSON of `ark_relay_ceremony::round::Participation`).
    pub state: String,
    /// Optimistic concurrency: every save names the version it read.
    pub version: i64,
    /// Over (`finalized` or `failed`).
    pub done: bool,
    /// Started.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
}

/// How a participation ended, for its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundEnd {
    /// The commitment tx created every job's outputs: jobs `done`.
    Finalized {
        /// The commitment txid.
        commitment_txid: String,
    },
    /// The round failed: jobs back to `pending` (attempts + 1), or `failed`
    /// for those that reached `max_attempts`.
    Retry {
        /// Why.
        error: String,
        /// Jobs with this many attempts (after counting this one) fail for good.
        max_attempts: u32,
    },
    /// No round took the job (its registration was refused for now, or the
    /// round took other jobs): back to `pending` from `not_before`, no
    /// attempt counted.
    Requeue {
        /// Why.
        error: String,
        /// Not before this time.
        not_before: UnixTime,
    },
    /// The round refused the jobs for good: jobs `failed`.
    Failed {
        /// Why.
        error: String,
    },
}

/// The `round_jobs` and `round_participations` tables.
///
/// Notes for implementors: every method is one transaction;
/// `enqueue_round_job` is idempotent by `job_id` (returns `false` when it
/// existed); `start_participation` inserts the saga and moves every named job
/// from `pending` to `in_round`, or does nothing and returns `false` if any
/// is not `pending`; `save_participation` and `finish_participation` write
/// only when `version` matches (then store `version + 1`) and return whether
/// they did.
#[async_trait]
pub trait RoundStore: Send + Sync + 'static {
    /// Queues a job (`pending`). `false` if `job_id` exists (nothing changes).
    async fn enqueue_round_job(&self, job: &RoundJobRecord) -> Result<bool, StoreError>;

    /// A job by id.
    async fn round_job(&self, job_id: &str) -> Result<Option<RoundJobRecord>, StoreError>;

    /// Pending jobs with `not_before <= now`, oldest first, at most `limit`.
    async fn due_round_jobs(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<RoundJobRecord>, StoreError>;

    /// Jobs of a kind in a status, newest first, at most `limit`.
    async fn round_jobs_of(
        &self,
        kind: &str,
        status: RoundJobStatus,
        limit: u32,
    ) -> Result<Vec<RoundJobRecord>, StoreError>;

    /// Inserts `participation` and takes `jobs` (`pending` → `in_round`).
    async fn start_participation(
        &self,
        participation: &ParticipationRecord,
        jobs: &[String],
    ) -> Result<bool, StoreError>;

    /// Writes the saga's next state if `version` is current.
    async fn save_participation(
        &self,
        participation_id: &str,
        version: i64,
        phase: &str,
        state: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Writes the saga's last state (done) and ends each of its jobs as
    /// `ends` says (job id → end; jobs not named are ended as retries), if
    /// `version` is current.
    async fn finish_participation(
        &self,
        participation_id: &str,
        version: i64,
        phase: &str,
        state: &str,
        ends: &[(String, RoundEnd)],
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// A participation by id.
    async fn participation(
        &self,
        participation_id: &str,
    ) -> Result<Option<ParticipationRecord>, StoreError>;

    /// Participations not done, oldest first.
    async fn open_participations(&self) -> Result<Vec<ParticipationRecord>, StoreError>;
}

/// A shared [`RoundStore`].
pub type DynRoundStore = Arc<dyn RoundStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            RoundJobStatus::Pending,
            RoundJobStatus::InRound,
            RoundJobStatus::Done,
            RoundJobStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<RoundJobStatus>(), Ok(s));
        }
        assert!("x".parse::<RoundJobStatus>().is_err());
    }
}
