//! Records of work the relay owes: durable jobs and the outbox of signed Nostr
//! events waiting to be published.

use serde::{Deserialize, Serialize};

use crate::queue::Job;
use crate::{PubKey, UnixTime};

/// A signed Nostr event to publish, written in the same transaction as the
/// state change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOutboxEvent {
    /// Makes the event unique: a second push with the same key is ignored
    /// (e.g. `31341:<answered event id>`: one failure notice per event).
    pub dedupe_key: String,
    /// The event kind.
    pub kind: u16,
    /// Who it is for, if addressed.
    pub recipient: Option<PubKey>,
    /// The signed event as NIP-01 JSON.
    pub event_json: String,
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// Dedupe key.
    pub dedupe_key: String,
    /// Kind.
    pub kind: u16,
    /// The signed event.
    pub event_json: String,
    /// Publish attempts so far.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: UnixTime,
    /// When a relay accepted it, if one did.
    pub delivered_at: Option<UnixTime>,
}

/// Lifecycle of a durable job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for (or being processed by) a worker.
    Pending,
    /// Finished; redeliveries are acked without work.
    Done,
    /// Gave up after too many attempts.
    Dead,
}

impl JobStatus {
    /// Database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" | "running" => Ok(JobStatus::Pending),
            "done" => Ok(JobStatus::Done),
            "dead" => Ok(JobStatus::Dead),
            other => Err(format!("unknown job status {other:?}")),
        }
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub job: Job,
    /// Its status.
    pub status: JobStatus,
    /// Times a worker finished or failed it.
    pub attempts: u32,
    /// When it was created.
    pub created_at: UnixTime,
    /// Last error, if it failed.
    pub last_error: Option<String>,
}
