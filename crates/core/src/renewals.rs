//! Delegations of users' VTXOs (issue 15: delegated renewal and recovery) and
//! the [`RenewalStore`] port that keeps them (table `delegations`).
//!
//! One row per VTXO and kind (`renew:<txid:vout>`, `recover:<txid:vout>`):
//! the `sign_renewal` challenge the relay sent (JSON of
//! `ark_relay_protocol::renewal::RenewalChallenge`, which carries the unsigned
//! delegation), then the owner's answer: `refused` (the VTXO is shown "no
//! renewal") or `queued` (the signed delegation became round job `job_id`),
//! `done` when the round created `new_vtxo`, `void` once the VTXO is spent
//! otherwise, `failed` when the round job gave up.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{StoreError, UnixTime};

/// Where a delegation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DelegationStatus {
    /// Challenge sent, no answer yet.
    Asked,
    /// The owner refused (or the answer did not verify).
    Refused,
    /// Signed and queued as a round job.
    Queued,
    /// Renewed (or recovered): `new_vtxo` exists. Final.
    Done,
    /// The VTXO was spent before the renewal. Final.
    Void,
    /// The round job gave up. Final.
    Failed,
}

impl DelegationStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DelegationStatus::Asked => "asked",
            DelegationStatus::Refused => "refused",
            DelegationStatus::Queued => "queued",
            DelegationStatus::Done => "done",
            DelegationStatus::Void => "void",
            DelegationStatus::Failed => "failed",
        }
    }

    /// Whether nothing more happens to it.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            DelegationStatus::Done | DelegationStatus::Void | DelegationStatus::Failed
        )
    }
}

impl FromStr for DelegationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "asked" => DelegationStatus::Asked,
            "refused" => DelegationStatus::Refused,
            "queued" => DelegationStatus::Queued,
            "done" => DelegationStatus::Done,
            "void" => DelegationStatus::Void,
            "failed" => DelegationStatus::Failed,
            other => return Err(format!("unknown delegation status {other:?}")),
        })
    }
}

impl fmt::Display for DelegationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One delegation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    /// `renew:<vtxo>` or `recover:<vtxo>` (primary key).
    pub renewal_id: String,
    /// The VTXO (`txid:vout`).
    pub vtxo: String,
    /// Its owner (x-only hex).
    pub owner: String,
    /// A recovery of a swept VTXO.
    pub recovery: bool,
    /// Where it is.
    pub status: DelegationStatus,
    /// The challenge sent (JSON).
    pub challenge: String,
    /// From when the renewal may be registered.
    pub valid_at: UnixTime,
    /// When the VTXO expires.
    pub vtxo_expires_at: UnixTime,
    /// The round job (when `queued` or later).
    pub job_id: Option<String>,
    /// The VTXO the round created (when `done`).
    pub new_vtxo: Option<String>,
    /// Why it was refused or failed.
    pub reason: Option<String>,
    /// When a near-expiry notice was sent to the owner (at most one).
    pub notified_at: Option<UnixTime>,
    /// Created.
    pub created_at: UnixTime,
    /// Last change.
    pub updated_at: UnixTime,
}

/// The `delegations` table. Every method is one statement/transaction.
#[async_trait]
pub trait RenewalStore: Send + Sync + 'static {
    /// Inserts a delegation (`asked`). `false` if `renewal_id` exists.
    async fn insert_delegation(&self, d: &DelegationRecord) -> Result<bool, StoreError>;

    /// A delegation by id.
    async fn delegation(&self, renewal_id: &str) -> Result<Option<DelegationRecord>, StoreError>;

    /// The delegations of a VTXO (`renew:` and `recover:`).
    async fn delegations_of_vtxo(&self, vtxo: &str) -> Result<Vec<DelegationRecord>, StoreError>;

    /// The delegations of an owner, newest first, at most `limit`.
    async fn delegations_of_owner(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DelegationRecord>, StoreError>;

    /// Moves a delegation from `from` to `to` (with `job_id`, `new_vtxo`,
    /// `reason` when given); `false` if it was not in `from`.
    #[allow(clippy::too_many_arguments)]
    async fn move_delegation(
        &self,
        renewal_id: &str,
        from: DelegationStatus,
        to: DelegationStatus,
        job_id: Option<&str>,
        new_vtxo: Option<&str>,
        reason: Option<&str>,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Marks that the owner got a near-expiry notice; `false` if it already had.
    async fn mark_notified(&self, renewal_id: &str, now: UnixTime) -> Result<bool, StoreError>;

    /// Delegations in `status`, oldest first, at most `limit`.
    async fn delegations_in(
        &self,
        status: DelegationStatus,
        limit: u32,
    ) -> Result<Vec<DelegationRecord>, StoreError>;
}

/// A shared [`RenewalStore`].
pub type DynRenewalStore = Arc<dyn RenewalStore>;

/// What an owner is shown about one VTXO's renewal (`sync_state`,
/// `/vtxos/{pubkey}`, the wallet CLI).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenewalView {
    /// `none` (no delegation yet), `asked` (challenge sent), `scheduled`
    /// (signed: renewed from `scheduled_at`), `refused` ("no renewal"),
    /// `renewed`, `failed`, `void`.
    pub state: String,
    /// When the renewal may run (unix s), once scheduled.
    pub scheduled_at: Option<i64>,
    /// Swept by the Ark server: reclaimable in a round once the owner signs
    /// the recovery challenge.
    pub recoverable: bool,
}

impl RenewalView {
    /// The view of a VTXO from its delegation rows (`renew:` and `recover:`).
    pub fn of(rows: &[&DelegationRecord]) -> Self {
        let recover = rows.iter().find(|r| r.recovery);
        let renew = rows.iter().find(|r| !r.recovery);
        let current = recover.or(renew);
        let state = match current.map(|r| r.status) {
            None => "none",
            Some(DelegationStatus::Asked) => "asked",
            Some(DelegationStatus::Queued) => "scheduled",
            Some(DelegationStatus::Refused) => "refused",
            Some(DelegationStatus::Done) => "renewed",
            Some(DelegationStatus::Failed) => "failed",
            Some(DelegationStatus::Void) => "void",
        };
        Self {
            state: state.to_owned(),
            scheduled_at: current
                .filter(|r| r.status == DelegationStatus::Queued)
                .map(|r| r.valid_at.0),
            recoverable: recover.is_some_and(|r| !r.status.is_final()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            DelegationStatus::Asked,
            DelegationStatus::Refused,
            DelegationStatus::Queued,
            DelegationStatus::Done,
            DelegationStatus::Void,
            DelegationStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<DelegationStatus>(), Ok(s));
        }
        assert!("x".parse::<DelegationStatus>().is_err());
        assert!(DelegationStatus::Void.is_final() && !DelegationStatus::Queued.is_final());
    }
}
