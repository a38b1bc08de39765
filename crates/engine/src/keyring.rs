//! Key rotation (PRD §10.2): while an old relay key is in its grace period,
//! the binary runs one engine per key — the current one, and one "legacy"
//! engine per old key that ingests, decrypts, answers and signs with *that*
//! key. They share the database, whose pending-job scan does not know which
//! key a job belongs to, so each engine's router has the guard
//! [`AddressedTo`]: it lets through only the jobs whose event is `p`-tagged
//! to its own key and leaves the others to the engine that owns them.
//!
//! After an old key's grace period ends its engine stops (nobody listens for
//! events to it any more), and a leftover job addressed to it is finished
//! unanswered by the current engine.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{Clock, Job, PubKey, UnixTime};

use crate::handlers::{HandlerError, JobOutcome};
use crate::router::{Guard, Routed};

/// How long a job that belongs to another engine waits before it is offered
/// again (by then its owner has normally finished it).
const NOT_MINE_RETRY: Duration = Duration::from_secs(30);

/// A key the relay answers for, and until when (`None`: the current key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveKey {
    /// The x-only key.
    pub key: PubKey,
    /// End of its grace period (Unix seconds); `None` for the current key.
    pub until: Option<UnixTime>,
}

/// See the module docs.
pub struct AddressedTo {
    me: ActiveKey,
    /// Every old key still in (or past) its grace period.
    others: Vec<ActiveKey>,
    clock: Arc<dyn Clock>,
}

impl AddressedTo {
    /// Lets through the jobs addressed to `me`; `others` are the other keys.
    pub fn new(me: ActiveKey, others: Vec<ActiveKey>, clock: Arc<dyn Clock>) -> Self {
        Self { me, others, clock }
    }

    fn not_mine() -> HandlerError {
        HandlerError::Deferred {
            reason: "addressed to another relay key".into(),
            retry_after: NOT_MINE_RETRY,
            outbox: vec![],
        }
    }
}

#[async_trait::async_trait]
impl Guard for AddressedTo {
    async fn check(&self, job: &Job, routed: &Routed) -> Option<Result<JobOutcome, HandlerError>> {
        let now = self.clock.now();
        let to: Vec<PubKey> = routed
            .inbound
            .event
            .tags
            .public_keys()
            .filter_map(ark_relay_protocol::pubkey_from_nostr)
            .collect();
        if to.contains(&self.me.key) {
            return match self.me.until {
                Some(until) if now >= until => Some(Err(Self::not_mine())),
                _ => None,
            };
        }
        let owned_elsewhere = self
            .others
            .iter()
            .any(|k| to.contains(&k.key) && k.until.is_none_or(|u| now < u));
        if owned_elsewhere || self.me.until.is_some() {
            return Some(Err(Self::not_mine()));
        }
        // Addressed to a key whose grace period is over: ignored, unanswered.
        tracing::info!(job = %job.key, "event to a retired relay key ignored");
        Some(Ok(JobOutcome::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::InboundJob;
    use ark_relay_core::SystemClock;
    use nostr::{EventBuilder, Keys, Kind, Tag};

    fn job_to(key: &Keys) -> Job {
        let ev = EventBuilder::new(Kind::Custom(31500), "x")
            .tags([Tag::public_key(key.public_key())])
            .sign_with_keys(&Keys::generate())
            .unwrap();
        let inbound = InboundJob {
            event: ev,
            scheme: None,
            plaintext: Some(r#"{"action":"get_info"}"#.into()),
            received_at: None,
        };
        Job {
            key: "k".into(),
            kind: "service_request".into(),
            payload: serde_json::to_string(&inbound).unwrap(),
        }
    }

    async fn check(g: &AddressedTo, job: Job) -> Option<Result<JobOutcome, HandlerError>> {
        let routed = Routed::parse(&job).unwrap();
        g.check(&job, &routed).await
    }

    fn pk(k: &Keys) -> PubKey {
        ark_relay_protocol::pubkey_from_nostr(&k.public_key()).unwrap()
    }

    #[tokio::test]
    async fn runs_only_its_own_jobs_and_drops_retired_ones() {
        let (new, old, retired) = (Keys::generate(), Keys::generate(), Keys::generate());
        let now = UnixTime::now();
        let current = ActiveKey {
            key: pk(&new),
            until: None,
        };
        let grace = ActiveKey {
            key: pk(&old),
            until: Some(now.plus_secs(60)),
        };
        let gone = ActiveKey {
            key: pk(&retired),
            until: Some(now.plus_secs(-1)),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let main = AddressedTo::new(current, vec![grace, gone], clock.clone());
        let legacy = AddressedTo::new(grace, vec![current], clock.clone());
        let deferred = |r: Option<Result<JobOutcome, HandlerError>>| {
            matches!(r, Some(Err(HandlerError::Deferred { .. })))
        };

        assert!(check(&main, job_to(&new)).await.is_none(), "runs");
        assert!(deferred(check(&legacy, job_to(&new)).await));
        assert!(check(&legacy, job_to(&old)).await.is_none(), "runs");
        assert!(deferred(check(&main, job_to(&old)).await));
        // Past its grace period: the current engine finishes it unanswered.
        assert!(matches!(
            check(&main, job_to(&retired)).await,
            Some(Ok(o)) if o.outbox.is_empty()
        ));
        // A legacy engine past its own `until` runs nothing.
        let expired = AddressedTo::new(gone, vec![current], clock);
        assert!(deferred(check(&expired, job_to(&retired)).await));
    }
}
