//! Read-only mode (PRD §10.5): when a back end the relay needs is down, the
//! relay stays up, keeps serving HTTP and reading Nostr, and **keeps** the
//! intents it cannot execute instead of failing them.
//!
//! - [`BackendWatch`] holds what the probes last saw, by back end; anything
//!   implementing [`Availability`] (the binary adds circuit-breaker states)
//!   answers "which back ends are down now".
//! - [`ArkProbe`] asks arkd for `GetInfo` every few seconds (with a short
//!   timeout) and records the answer. The engine runs it as a *monitor* in
//!   every process, leader or not ([`crate::Engine::with_monitor`]).
//! - [`Degrade`] is a guard of the job router. An intent job that arrives while a
//!   back end is down is not started (no inputs locked, no challenge sent):
//!   if the intent is still valid, its author gets **one** 31341 with code
//!   7001 (dedupe key `7001:<intent id>`) saying it is kept, and the job is
//!   [deferred](crate::handlers::HandlerError::Deferred) — it stays pending
//!   and comes back every `retry_after`. Once the back end answers again the
//!   intent runs as usual and ends in 31340, or, if it expired meanwhile, in
//!   the ceremony's own 1004. Intents that are invalid anyway, service
//!   requests and signing responses pass straight through (a ceremony already
//!   past its challenge ends by its step timeout, 5001, if arkd stays away).
//!
//! When the **database** is down nothing can be recorded, not even a 7001:
//! ingest leaves the Nostr cursor where it was, and the transport's periodic
//! catch-up (cursor minus a safety window) reads the missed events again once
//! the database is back; workers leave their jobs unacked for redelivery.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{Clock, ErrorCode, Job};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::{validate_intent, IntentPolicy};
use ark_relay_protocol::{event_id_from_nostr, pubkey_from_nostr, Rejection};
use async_trait::async_trait;
use nostr::Keys;

use crate::handlers::{HandlerError, JobOutcome};
use crate::router::{Guard, Route, Routed};
use crate::Periodic;

/// The message of the 7001 notice.
pub const KEPT_MESSAGE: &str = "backend unavailable: your intent is kept and will be processed \
     when the backend returns, if still unexpired";

/// A back end that is down, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The back end (`arkd`, …).
    pub backend: String,
    /// What the last check saw.
    pub reason: String,
}

/// Which back ends are down now.
pub trait Availability: Send + Sync + 'static {
    /// The back ends that are down (empty: all up).
    fn unavailable(&self) -> Vec<Unavailable>;
}

/// The last probe result per back end. Unknown back ends count as up.
#[derive(Debug, Default)]
pub struct BackendWatch {
    state: Mutex<BTreeMap<String, Option<String>>>,
}

impl BackendWatch {
    /// An empty watch (everything up).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records a probe: `Ok` = up, `Err(reason)` = down.
    pub fn record(&self, backend: &str, result: Result<(), String>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let was_down = matches!(st.get(backend), Some(Some(_)));
        match result {
            Ok(()) => {
                if was_down {
                    tracing::info!(backend, "back end is back: leaving read-only mode");
                }
                st.insert(backend.to_owned(), None);
            }
            Err(reason) => {
                if !was_down {
                    tracing::warn!(backend, %reason, "back end unavailable: read-only mode");
                }
                st.insert(backend.to_owned(), Some(reason));
            }
        }
    }

    /// Every probed back end and whether it is up.
    pub fn snapshot(&self) -> Vec<(String, Option<String>)> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Availability for BackendWatch {
    fn unavailable(&self) -> Vec<Unavailable> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.iter()
            .filter_map(|(backend, down)| {
                down.as_ref().map(|reason| Unavailable {
                    backend: backend.clone(),
                    reason: reason.clone(),
                })
            })
            .collect()
    }
}

/// Probes arkd with `GetInfo`; see the module docs.
pub struct ArkProbe {
    ark: Arc<dyn ArkServer>,
    watch: Arc<BackendWatch>,
    every: Duration,
    timeout: Duration,
}

impl ArkProbe {
    /// A probe recording into `watch` as `arkd`.
    pub fn new(
        ark: Arc<dyn ArkServer>,
        watch: Arc<BackendWatch>,
        every: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            ark,
            watch,
            every,
            timeout,
        }
    }

    /// One probe.
    pub async fn probe(&self) {
        let result = match tokio::time::timeout(self.timeout, self.ark.get_info()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        self.watch.record("arkd", result);
    }
}

#[async_trait]
impl Periodic for ArkProbe {
    fn name(&self) -> &'static str {
        "arkd-probe"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn tick(&self) {
        self.probe().await;
    }
}

/// The read-only-mode wrapper around a job handler; see the module docs.
pub struct Degrade {
    availability: Arc<dyn Availability>,
    keys: Keys,
    policy: IntentPolicy,
    clock: Arc<dyn Clock>,
    retry_after: Duration,
    /// Intents this process already sent the 7001 for (so a job deferred
    /// again and again signs its notice once; the outbox's dedupe key makes
    /// it once across processes).
    noticed: Mutex<HashSet<String>>,
}

/// Bound of [`Degrade`]'s noticed set (cleared when reached).
const NOTICED_MAX: usize = 100_000;

impl Degrade {
    /// Wraps `inner`; deferred intents come back every `retry_after`.
    pub fn new(
        availability: Arc<dyn Availability>,
        keys: Keys,
        policy: IntentPolicy,
        clock: Arc<dyn Clock>,
        retry_after: Duration,
    ) -> Self {
        Self {
            availability,
            keys,
            policy,
            clock,
            retry_after,
            noticed: Mutex::new(HashSet::new()),
        }
    }

    fn noticed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.noticed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The dedupe key of the 7001 notice answering `intent` (one per intent).
pub fn kept_notice_key(intent: &ark_relay_core::EventId) -> String {
    format!("7001:{intent}")
}

/// Keeps a job for later because a back end is unavailable: a
/// [`HandlerError::Deferred`] (run again after `retry_after`, no attempt used)
/// carrying the one 7001 notice `message` to `to`, answering `answered`. The
/// notice has its own outbox key, so a later final answer still goes out.
pub fn keep(
    keys: &Keys,
    to: &ark_relay_core::PubKey,
    answered: &ark_relay_core::EventId,
    message: &str,
    scheme: Scheme,
    reason: String,
    retry_after: Duration,
) -> Result<HandlerError, HandlerError> {
    let rejection = Rejection::new(ErrorCode::BackendUnavailable, message);
    let mut notice = crate::failure_notice(keys, to, answered, &rejection, scheme)
        .map_err(|e| HandlerError::Fatal(e.to_string()))?;
    notice.dedupe_key = kept_notice_key(answered);
    Ok(HandlerError::Deferred {
        reason,
        retry_after,
        outbox: vec![notice],
    })
}

#[async_trait]
impl Guard for Degrade {
    async fn check(&self, job: &Job, routed: &Routed) -> Option<Result<JobOutcome, HandlerError>> {
        if !matches!(routed.route, Route::Intent) {
            return None;
        }
        let down = self.availability.unavailable();
        if down.is_empty() {
            self.noticed().remove(&job.key);
            return None;
        }
        let inbound = &routed.inbound;
        if validate_intent(&inbound.event, &self.policy, self.clock.now()).is_err() {
            return None; // refused as usual, whatever is down
        }
        let names: Vec<&str> = down.iter().map(|u| u.backend.as_str()).collect();
        let reason = format!("{} unavailable", names.join(", "));
        {
            let mut noticed = self.noticed();
            if noticed.contains(&job.key) {
                return Some(Err(HandlerError::Deferred {
                    reason,
                    retry_after: self.retry_after,
                    outbox: Vec::new(),
                }));
            }
            if noticed.len() >= NOTICED_MAX {
                noticed.clear();
            }
            noticed.insert(job.key.clone());
        }
        let Some(author) = pubkey_from_nostr(&inbound.event.pubkey) else {
            return Some(Err(HandlerError::Fatal("invalid author key".into())));
        };
        let intent = event_id_from_nostr(&inbound.event.id);
        Some(
            keep(
                &self.keys,
                &author,
                &intent,
                KEPT_MESSAGE,
                Scheme::Nip44,
                reason,
                self.retry_after,
            )
            .and_then(Err),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_reports_what_the_last_probe_saw() {
        let watch = BackendWatch::new();
        assert!(
            watch.unavailable().is_empty(),
            "unknown back ends count as up"
        );
        watch.record("arkd", Err("connection refused".into()));
        assert_eq!(
            watch.unavailable(),
            vec![Unavailable {
                backend: "arkd".into(),
                reason: "connection refused".into()
            }]
        );
        watch.record("lnd", Ok(()));
        assert_eq!(watch.unavailable().len(), 1);
        watch.record("arkd", Ok(()));
        assert!(watch.unavailable().is_empty());
        assert_eq!(watch.snapshot().len(), 2);
    }
}
