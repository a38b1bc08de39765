//! [`RoundJobs`]: the queue of round jobs (`round_jobs`), the one way to
//! ask for something to be registered in the relay's next Ark batch round.

use std::sync::Arc;

use ark_relay_ceremony::round::{JobError, Participation, RoundJob};
use ark_relay_core::rounds::{DynRoundStore, RoundJobRecord, RoundJobStatus};
use ark_relay_core::{Clock, StoreError, UnixTime};

/// Why a job was not queued or not read.
#[derive(Debug, thiserror::Error)]
pub enum RoundJobsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job is malformed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A stored job does not decode.
    #[error("round job {job_id} does not decode: {source}")]
    Decode {
        /// The job.
        job_id: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The persisted queue of round jobs. Cheap to clone.
///
/// ```ignore
/// // Helper D: renew a user's VTXO from its delegation in the next round
/// // from `valid_at` on.
/// let job = RoundJob {
///     job_id: format!("renew:{vtxo}"),
///     kind: JobKind::DelegatedRenewal,
///     inputs: vec![JobInput::Delegated { vtxo, owner, sats, assets: vec![] }],
///     outputs: vec![JobOutput { owner, sats, assets: vec![] }],
///     delegation: Some(Delegation { intent_proof, intent_message, forfeit_psbts,
///                                   delegate_cosigner_pk: rounds.cosigner_pk() }),
///     not_before: UnixTime(valid_at),
/// };
/// rounds.jobs().enqueue(&job).await?; // false: already queued (same job_id)
/// ```
#[derive(Clone)]
pub struct RoundJobs {
    store: DynRoundStore,
    clock: Arc<dyn Clock>,
}

impl RoundJobs {
    /// The queue in `store`.
    pub fn new(store: DynRoundStore, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Queues `job` for the next round from `job.not_before` on (persisted,
    /// `pending`). Idempotent by `job.job_id`: `Ok(false)` when a job with
    /// that id exists (whatever its state; nothing changes). The job is
    /// checked first ([`RoundJob::validate`]). A round that fails puts the
    /// job back, unchanged, for the round after (up to the runner's attempt
    /// limit); its state is [`RoundJobs::get`]'s `status`.
    pub async fn enqueue(&self, job: &RoundJob) -> Result<bool, RoundJobsError> {
        job.validate()?;
        let data = serde_json::to_string(job).map_err(|source| RoundJobsError::Decode {
            job_id: job.job_id.clone(),
            source,
        })?;
        let now = self.clock.now();
        let queued = self
            .store
            .enqueue_round_job(&RoundJobRecord {
                job_id: job.job_id.clone(),
                kind: job.kind.name().to_owned(),
                status: RoundJobStatus::Pending,
                data,
                attempts: 0,
                participation: None,
                not_before: job.not_before,
                commitment_txid: None,
                error: None,
                created_at: now,
                updated_at: now,
            })
            .await?;
        if queued {
            tracing::info!(job = %job.job_id, kind = job.kind.name(), "round job queued");
        }
        Ok(queued)
    }

    /// A job's stored record (status, attempts, commitment txid).
    pub async fn get(&self, job_id: &str) -> Result<Option<RoundJobRecord>, RoundJobsError> {
        Ok(self.store.round_job(job_id).await?)
    }

    /// Decodes a stored job.
    pub fn decode(record: &RoundJobRecord) -> Result<RoundJob, RoundJobsError> {
        serde_json::from_str(&record.data).map_err(|source| RoundJobsError::Decode {
            job_id: record.job_id.clone(),
            source,
        })
    }

    /// The lifetime of a VTXO at this Ark server as the relay's last
    /// finalized round learned it (`batch_started.batch_expiry`, seconds):
    /// the newest done job of any kind whose participation saw it. `None`
    /// before the relay's first round.
    pub async fn learned_lifetime(&self) -> Result<Option<i64>, RoundJobsError> {
        let mut newest: Option<(UnixTime, String)> = None;
        for kind in [
            "inventory_renew",
            "inventory_board",
            "delegated_renewal",
            "recovery",
        ] {
            for rec in self
                .store
                .round_jobs_of(kind, RoundJobStatus::Done, 1)
                .await?
            {
                if let Some(p) = rec.participation {
                    if newest.as_ref().is_none_or(|(t, _)| rec.updated_at > *t) {
                        newest = Some((rec.updated_at, p));
                    }
                }
            }
        }
        let Some((_, id)) = newest else {
            return Ok(None);
        };
        let Some(rec) = self.store.participation(&id).await? else {
            return Ok(None);
        };
        let p: Participation =
            serde_json::from_str(&rec.state).map_err(|source| RoundJobsError::Decode {
                job_id: id.clone(),
                source,
            })?;
        Ok(p.lifetime_secs())
    }

    /// The store behind the queue.
    pub fn store(&self) -> &DynRoundStore {
        &self.store
    }
}
