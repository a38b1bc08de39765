//! The one router of jobs. A job's payload is parsed **once** into
//! [`Routed`]; the [`Guard`]s run in order (key addressing during a key
//! rotation, read-only mode) and may end the job there; then the job goes to
//! exactly one handler: the ceremony (intents, signing responses,
//! `submit_batch`), the ramps (`lift_lightning`), or the base handler (every
//! other service request, with its clear refusal where it applies).

use std::sync::Arc;

use ark_relay_core::Job;
use ark_relay_protocol::request::{parse_request, ServiceRequest};
use ark_relay_protocol::Rejection;
use async_trait::async_trait;

use crate::ceremony::Ceremony;
use ark_relay_core::ErrorCode;
use ark_relay_protocol::crypto::Scheme;

use crate::handlers::{BaseHandler, HandlerError, JobHandler, JobOutcome};
use crate::ingest::{job_kind, InboundJob};
use crate::ramp::Ramps;

/// What a job is, parsed once.
#[derive(Debug, Clone)]
pub enum Route {
    /// A 31510 intent.
    Intent,
    /// A decrypted 31500 service request, parsed (or why it does not parse).
    Request(Result<ServiceRequest, Rejection>),
    /// A decrypted 31512 signing response.
    Response,
}

/// A job's payload and what it is.
#[derive(Debug, Clone)]
pub struct Routed {
    /// What the job is.
    pub route: Route,
    /// The inbound event (and for DMs, their plaintext).
    pub inbound: InboundJob,
}

impl Routed {
    /// Parses `job` (a corrupt payload or an unknown kind is fatal: the job
    /// was written by ingest, not by a user).
    pub fn parse(job: &Job) -> Result<Self, HandlerError> {
        let inbound: InboundJob = serde_json::from_str(&job.payload)
            .map_err(|e| HandlerError::Fatal(format!("job payload: {e}")))?;
        let route = match job.kind.as_str() {
            job_kind::INTENT => Route::Intent,
            job_kind::SIGNING_RESPONSE => Route::Response,
            job_kind::SERVICE_REQUEST => {
                let plain = inbound
                    .plaintext
                    .as_deref()
                    .ok_or_else(|| HandlerError::Fatal("request without plaintext".into()))?;
                Route::Request(parse_request(plain))
            }
            other => return Err(HandlerError::Fatal(format!("unknown job kind {other}"))),
        };
        Ok(Self { route, inbound })
    }
}

/// A check before any handler runs.
#[async_trait]
pub trait Guard: Send + Sync + 'static {
    /// `None`: the job goes on; `Some(result)`: the job ends here with it.
    async fn check(&self, job: &Job, routed: &Routed) -> Option<Result<JobOutcome, HandlerError>>;
}

/// See the module docs.
pub struct Router {
    ceremony: Arc<Ceremony>,
    ramps: Option<Arc<Ramps>>,
    renewals: Option<Arc<crate::renewal::Renewals>>,
    guards: Vec<Arc<dyn Guard>>,
}

impl Router {
    /// Routes to `ceremony` (and its base handler).
    pub fn new(ceremony: Arc<Ceremony>) -> Self {
        Self {
            ceremony,
            ramps: None,
            renewals: None,
            guards: Vec::new(),
        }
    }

    /// Routes `lift_lightning` requests to `ramps`.
    pub fn with_ramps(mut self, ramps: Arc<Ramps>) -> Self {
        self.ramps = Some(ramps);
        self
    }

    /// Routes answers to `sign_renewal` challenges to `renewals`.
    pub fn with_renewals(mut self, renewals: Arc<crate::renewal::Renewals>) -> Self {
        self.renewals = Some(renewals);
        self
    }

    /// Adds a guard (they run in the order added).
    pub fn with_guard(mut self, guard: Arc<dyn Guard>) -> Self {
        self.guards.push(guard);
        self
    }
}

#[async_trait]
impl JobHandler for Router {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        let routed = Routed::parse(job)?;
        for guard in &self.guards {
            if let Some(result) = guard.check(job, &routed).await {
                return result;
            }
        }
        let inbound = &routed.inbound;
        match &routed.route {
            Route::Intent if crate::conditional::is_liquidation(&inbound.event) => {
                self.ceremony.on_liquidate(inbound).await
            }
            Route::Intent => self.ceremony.on_intent(inbound).await,
            Route::Response
                if inbound
                    .plaintext
                    .as_deref()
                    .is_some_and(ark_relay_protocol::renewal::is_renewal) =>
            {
                match &self.renewals {
                    Some(r) => r.on_answer(inbound).await,
                    None => self.ceremony.on_response(inbound, attempts).await,
                }
            }
            Route::Response => self.ceremony.on_response(inbound, attempts).await,
            Route::Request(Ok(ServiceRequest::SubmitBatch { .. })) => {
                self.ceremony.on_submit_batch(inbound).await
            }
            Route::Request(Ok(ServiceRequest::IssueAsset { .. })) => {
                self.ceremony.on_issue_asset(inbound).await
            }
            Route::Request(Ok(ServiceRequest::LiftLightning {
                asset_id,
                amount,
                proof,
            })) if self.ramps.is_some() => match &self.ramps {
                Some(ramps) => {
                    ramps
                        .on_lift_request(
                            inbound,
                            asset_id,
                            amount.positive("amount"),
                            proof.as_deref(),
                        )
                        .await
                }
                None => Err(HandlerError::Fatal("ramps vanished".into())),
            },
            Route::Request(request) => self.ceremony.base.request(inbound, request).await,
        }
    }
}

/// A relay without the ceremony: answers requests, and refuses intents and
/// signing responses with a clear code.
#[async_trait]
impl JobHandler for BaseHandler {
    async fn handle(&self, job: &Job, _attempts: u32) -> Result<JobOutcome, HandlerError> {
        let routed = Routed::parse(job)?;
        let inbound = &routed.inbound;
        let out = match &routed.route {
            Route::Request(request) => return self.request(inbound, request).await,
            Route::Response => {
                let r = Rejection::new(
                    ErrorCode::UnknownSession,
                    "no signing session is waiting for this response",
                );
                self.failure(inbound, &r, inbound.answer_scheme())?
            }
            Route::Intent => {
                let r = Rejection::new(
                    ErrorCode::UnsupportedAction,
                    "intent execution is not enabled on this relay yet",
                );
                self.failure(inbound, &r, Scheme::Nip44)?
            }
        };
        Ok(JobOutcome { outbox: vec![out] })
    }
}
