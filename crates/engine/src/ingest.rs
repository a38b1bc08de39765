//! The ingest pipeline (issue #4): screen → dedupe → verify (1001) → decrypt
//! (1006) → parse and validate (1002–1005, 4001, …) → persist with its job →
//! enqueue. Every rejection is recorded with exactly one 31341 notice, in the
//! same transaction, and changes nothing else.
//!
//! Fairness and limits (issue #18): received events are handed to ingest
//! round-robin by author ([`fair::FairIngest`]), and an author over its
//! rate limit is refused with 9001 — one answer per window
//! ([`limit::RateLimit`]).

pub mod fair;
pub mod gate;
pub mod limit;
mod refusals;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_relay_core::{
    Clock, DynBus, DynQueue, DynStore, ErrorCode, Job, ProcessedEvent, PubKey, Recorded, UnixTime,
};
use ark_relay_protocol::content::SigningResponse;
use ark_relay_protocol::crypto::{detect, DmCipher, Scheme};
use ark_relay_protocol::intent::{
    screen, validate_intent, verify, IntentPolicy, Screen, MAX_CONTENT_BYTES,
};
use ark_relay_protocol::request::{parse_request, ServiceRequest};
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr, Rejection};
use nostr::{Event, Keys};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::EngineError;
use limit::{Limiter, RateLimit, Verdict};

/// Job kinds written by ingest.
pub mod job_kind {
    /// A validated 31510 intent.
    pub const INTENT: &str = "intent";
    /// A decrypted 31500 service request.
    pub const SERVICE_REQUEST: &str = "service_request";
    /// A decrypted 31512 signing response.
    pub const SIGNING_RESPONSE: &str = "signing_response";
}

/// The payload of an ingest job: the event, and for DMs the scheme and plaintext.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboundJob {
    /// The signed event as received.
    pub event: Event,
    /// The DM scheme the author used (`nip04`/`nip44_v2`), for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The decrypted content of a DM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    /// When the relay received it (a signing step's deadline is judged by
    /// this, not by when a worker got to the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<ark_relay_core::UnixTime>,
}

impl InboundJob {
    /// The scheme to answer in.
    pub fn answer_scheme(&self) -> Scheme {
        match self.scheme.as_deref() {
            Some("nip04") => Scheme::Nip04,
            _ => Scheme::Nip44,
        }
    }
}

/// What ingest did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Not for us (wrong kind, not p-tagged, far future, unusable author key).
    Ignored(&'static str),
    /// Seen before; nothing done.
    Duplicate,
    /// Recorded and queued as a job of this kind.
    Accepted(&'static str),
    /// Refused with this code; one 31341 queued.
    Rejected(ErrorCode),
    /// Refused with 9001 (recorded) without an answer: its author was
    /// already answered 9001 in this rate-limit window.
    Limited,
}

impl IngestOutcome {
    /// The metric label of this outcome: `accepted`, `duplicate`, `ignored`,
    /// or the rejection's error code.
    pub fn label(&self) -> String {
        match self {
            Self::Accepted(_) => "accepted".to_owned(),
            Self::Duplicate => "duplicate".to_owned(),
            Self::Ignored(_) => "ignored".to_owned(),
            Self::Rejected(c) => c.code().to_string(),
            Self::Limited => ErrorCode::RateLimited.code().to_string(),
        }
    }
}

/// The ingest stage. Cheap to clone; safe to run many at once and in many
/// processes (the store's unique keys make duplicates harmless).
#[derive(Clone)]
pub struct Ingestor {
    store: DynStore,
    queue: DynQueue,
    bus: Option<DynBus>,
    keys: Keys,
    cipher: Arc<DmCipher>,
    relay: PubKey,
    policy: IntentPolicy,
    clock: Arc<dyn Clock>,
    /// The scheme each author last used with us (31341 for public intents follows it).
    schemes: Arc<Mutex<HashMap<PubKey, Scheme>>>,
    outbox_wake: Arc<Notify>,
    limiter: Option<Arc<Limiter>>,
    /// Silent refusals, written in batches ([`refusals`]).
    refusals: Arc<refusals::Refusals>,
}

impl Ingestor {
    /// An ingestor for the relay identity `keys`.
    pub fn new(
        store: DynStore,
        queue: DynQueue,
        keys: Keys,
        policy: IntentPolicy,
        clock: Arc<dyn Clock>,
        outbox_wake: Arc<Notify>,
    ) -> Self {
        let relay = policy.relay;
        let refusals = Arc::new(refusals::Refusals::new(store.clone()));
        Self {
            store,
            queue,
            bus: None,
            cipher: Arc::new(DmCipher::new(keys.secret_key().clone())),
            keys,
            relay,
            policy,
            clock,
            schemes: Arc::default(),
            outbox_wake,
            limiter: None,
            refusals,
        }
    }

    /// Limits every author to `limit` (9001 beyond it; see [`limit`]).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limiter = Some(Arc::new(Limiter::new(limit)));
        self
    }

    /// As [`Ingestor::with_rate_limit`], with other event counts for some
    /// keys (0: that key is not limited).
    pub fn with_rate_limit_per_key(
        mut self,
        limit: RateLimit,
        per_key: HashMap<PubKey, u32>,
    ) -> Self {
        self.limiter = Some(Arc::new(Limiter::new(limit).with_overrides(per_key)));
        self
    }

    /// Also publish every outcome on the bus channel `ingest`.
    pub fn with_bus(mut self, bus: DynBus) -> Self {
        self.bus = Some(bus);
        self
    }

    fn remember_scheme(&self, author: PubKey, scheme: Scheme) {
        if let Ok(mut m) = self.schemes.lock() {
            m.insert(author, scheme);
        }
    }

    fn scheme_for(&self, author: &PubKey) -> Scheme {
        self.schemes
            .lock()
            .ok()
            .and_then(|m| m.get(author).copied())
            .unwrap_or(Scheme::Nip44)
    }

    /// Handles one event from any Nostr relay.
    #[tracing::instrument(skip_all, fields(event = %event.id, kind = event.kind.as_u16()))]
    pub async fn handle(&self, event: Event) -> Result<IngestOutcome, EngineError> {
        let outcome = self.process(&event).await?;
        tracing::debug!(?outcome, "ingested");
        crate::metrics::event_ingested(event.kind.as_u16(), outcome.label());
        if let Some(bus) = &self.bus {
            let msg = serde_json::json!({
                "event_id": event.id.to_hex(),
                "kind": event.kind.as_u16(),
                "outcome": format!("{outcome:?}"),
            });
            if let Err(e) = bus.publish("ingest", &msg.to_string()).await {
                tracing::debug!(error = %e, "ingest notification not published");
            }
        }
        Ok(outcome)
    }

    async fn process(&self, event: &Event) -> Result<IngestOutcome, EngineError> {
        let now = self.clock.now();
        if let Screen::Ignore(why) = screen(event, &self.relay, now) {
            return Ok(IngestOutcome::Ignored(why));
        }
        let id = event_id_from_nostr(&event.id);
        let Some(author) = pubkey_from_nostr(&event.pubkey) else {
            return Ok(IngestOutcome::Ignored("author is not a valid key"));
        };
        // An author being refused skips the duplicate lookup: its refusal's
        // insert is deduplicated by the store's unique key instead, so a
        // flood costs one write per event, not a read and a write.
        let refusing = self
            .limiter
            .as_ref()
            .is_some_and(|l| l.refusing(&author, std::time::Instant::now()));
        if !refusing && self.store.processed_event(&id).await?.is_some() {
            return Ok(IngestOutcome::Duplicate);
        }
        let kind = event.kind.as_u16();
        let processed = ProcessedEvent {
            id,
            author,
            kind,
            created_at: UnixTime(i64::try_from(event.created_at.as_secs()).unwrap_or(i64::MAX)),
            received_at: now,
            outcome: None,
        };
        let reply_scheme = if kinds::is_encrypted(kind) {
            detect(&event.content, &event.tags)
        } else {
            self.scheme_for(&author)
        };
        if let Err(r) = verify(event) {
            return self.reject(processed, r, reply_scheme).await;
        }
        if let Some(limiter) = &self.limiter {
            match limiter.check(&author, std::time::Instant::now()) {
                Verdict::Allow => {
                    // The window ended since `refusing` was read.
                    if refusing && self.store.processed_event(&id).await?.is_some() {
                        return Ok(IngestOutcome::Duplicate);
                    }
                }
                Verdict::RefuseAndAnswer => {
                    let l = limiter.limit_for(&author);
                    let r = Rejection::new(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {} events in {} s from this key; events are refused without further answer until the window ends",
                            l.events,
                            l.window.as_secs()
                        ),
                    );
                    return self.reject(processed, r, reply_scheme).await;
                }
                Verdict::Refuse => {
                    let processed = ProcessedEvent {
                        outcome: Some(ErrorCode::RateLimited),
                        ..processed
                    };
                    return match self.refusals.record(processed).await? {
                        Recorded::New => Ok(IngestOutcome::Limited),
                        _ => Ok(IngestOutcome::Duplicate),
                    };
                }
            }
        }

        if kind == kinds::INTENT {
            let valid = match validate_intent(event, &self.policy, now) {
                Ok(v) => v,
                Err(r) => return self.reject(processed, r, reply_scheme).await,
            };
            let job = self.job(job_kind::INTENT, event, None)?;
            return match self
                .store
                .accept_event(&processed, Some(&valid.record(now)), &job, now)
                .await?
            {
                Recorded::New => self.enqueue(job, job_kind::INTENT).await,
                Recorded::Duplicate => Ok(IngestOutcome::Duplicate),
                Recorded::ReplayedAction { original } => {
                    let r = Rejection::new(
                        ErrorCode::ReplayedAction,
                        format!(
                            "action_id {} was already used by event {original}",
                            valid.action_id
                        ),
                    );
                    self.reject(processed, r, reply_scheme).await
                }
            };
        }

        // Encrypted kinds.
        let (plain, scheme) = match self
            .cipher
            .decrypt(&event.pubkey, &event.content, &event.tags)
        {
            Ok(ok) => ok,
            Err(r) => return self.reject(processed, r, reply_scheme).await,
        };
        self.remember_scheme(author, scheme);
        if plain.len() > MAX_CONTENT_BYTES * 16 {
            let r = Rejection::new(ErrorCode::Malformed, "decrypted content too large");
            return self.reject(processed, r, scheme).await;
        }
        let kind_name = if kind == kinds::SERVICE_REQUEST {
            if let Err(r) = self.check_request(&plain, now) {
                return self.reject(processed, r, scheme).await;
            }
            job_kind::SERVICE_REQUEST
        } else if ark_relay_protocol::renewal::is_renewal(&plain) {
            // A renewal answer: checked by `renewal::Renewals::on_answer`.
            job_kind::SIGNING_RESPONSE
        } else {
            match serde_json::from_str::<SigningResponse>(&plain) {
                Err(e) => {
                    let r = Rejection::new(ErrorCode::Malformed, format!("signing response: {e}"));
                    return self.reject(processed, r, scheme).await;
                }
                // Exactly one of `signatures` and `reject`.
                Ok(resp) if resp.signatures.is_empty() == resp.reject.is_none() => {
                    let r = Rejection::new(
                        ErrorCode::Malformed,
                        "a signing response carries either signatures or a reject reason",
                    );
                    return self.reject(processed, r, scheme).await;
                }
                Ok(_) => {}
            }
            job_kind::SIGNING_RESPONSE
        };
        let job = self.job(kind_name, event, Some((scheme, plain)))?;
        match self.store.accept_event(&processed, None, &job, now).await? {
            Recorded::New => self.enqueue(job, kind_name).await,
            Recorded::Duplicate | Recorded::ReplayedAction { .. } => Ok(IngestOutcome::Duplicate),
        }
    }

    /// A service request must parse; the intents of a batch are checked exactly
    /// like published ones (signature, expiry, fee), so one bad intent refuses
    /// the whole batch with its code.
    fn check_request(&self, plain: &str, now: UnixTime) -> Result<(), Rejection> {
        if let ServiceRequest::SubmitBatch { intents, .. } = parse_request(plain)? {
            if intents.is_empty() {
                return Err(Rejection::new(
                    ErrorCode::Malformed,
                    "submit_batch has no intents",
                ));
            }
            for (i, intent) in intents.iter().enumerate() {
                let context =
                    |r: Rejection| Rejection::new(r.code, format!("intents[{i}]: {}", r.message));
                verify(intent).map_err(context)?;
                validate_intent(intent, &self.policy, now).map_err(context)?;
            }
        }
        Ok(())
    }

    fn job(
        &self,
        kind: &str,
        event: &Event,
        dm: Option<(Scheme, String)>,
    ) -> Result<Job, EngineError> {
        let (scheme, plaintext) = match dm {
            Some((s, p)) => (Some(s.name().to_owned()), Some(p)),
            None => (None, None),
        };
        let payload = InboundJob {
            event: event.clone(),
            scheme,
            plaintext,
            received_at: Some(self.clock.now()),
        };
        Ok(Job {
            key: event.id.to_hex(),
            kind: kind.to_owned(),
            payload: serde_json::to_string(&payload)
                .map_err(|e| EngineError::Payload(e.to_string()))?,
        })
    }

    async fn enqueue(&self, job: Job, kind: &'static str) -> Result<IngestOutcome, EngineError> {
        // The job row is committed; a lost wake-up is re-pushed by the job pump.
        if let Err(e) = self.queue.push(&job).await {
            tracing::warn!(error = %e, job = %job.key, "queue push failed; the job pump will retry");
        }
        Ok(IngestOutcome::Accepted(kind))
    }

    async fn reject(
        &self,
        processed: ProcessedEvent,
        rejection: Rejection,
        scheme: Scheme,
    ) -> Result<IngestOutcome, EngineError> {
        tracing::info!(code = rejection.code.code(), reason = %rejection.message, "rejected");
        let notice = crate::failure_notice(
            &self.keys,
            &processed.author,
            &processed.id,
            &rejection,
            scheme,
        )?;
        let code = rejection.code;
        let processed = ProcessedEvent {
            outcome: Some(code),
            ..processed
        };
        match self
            .store
            .reject_event(&processed, &notice, self.clock.now())
            .await?
        {
            Recorded::New => {
                self.outbox_wake.notify_one();
                Ok(IngestOutcome::Rejected(code))
            }
            _ => Ok(IngestOutcome::Duplicate),
        }
    }
}
