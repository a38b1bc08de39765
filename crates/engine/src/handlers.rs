//! Job handlers: what a worker does with each kind of job. [`JobHandler`] is
//! the seam later features plug into (signing sessions, batches, lifts,
//! lands); [`BaseHandler`] answers what the relay can answer today.

use std::sync::Arc;

use ark_relay_core::{DynStore, ErrorCode, Job, NewOutboxEvent, PubKey};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, kinds, pubkey_from_nostr, Rejection};
use async_trait::async_trait;
use nostr::{JsonUtil, Keys};

use crate::ingest::InboundJob;

/// What a finished job leaves to publish.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// Signed events to queue in the outbox with the job's completion.
    pub outbox: Vec<NewOutboxEvent>,
}

/// Why a job could not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Retry later (a back end is down).
    #[error("transient: {0}")]
    Transient(String),
    /// Give up (a bug or corrupt payload); the job goes dead.
    #[error("fatal: {0}")]
    Fatal(String),
    /// Not now (read-only mode: a back end is down): the job stays pending
    /// and is run again after `retry_after`, without using up an attempt;
    /// `outbox` (e.g. a 7001 notice) is queued at once. See `degrade`.
    #[error("deferred: {reason}")]
    Deferred {
        /// Why.
        reason: String,
        /// When to try again.
        retry_after: std::time::Duration,
        /// Events to publish now.
        outbox: Vec<NewOutboxEvent>,
    },
}

/// Handles jobs of some kinds. Must be idempotent by job key.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs `job` (delivered for the `attempts`-th time).
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError>;
}

/// Static facts about the relay for `get_info` and `GET /info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RelayInfo {
    /// Relay pubkey (hex).
    pub pubkey: String,
    /// Nostr relays it listens on.
    pub relays: Vec<String>,
    /// Kinds it consumes.
    pub kinds_consumed: Vec<u16>,
    /// DM schemes it accepts.
    pub encryption: Vec<&'static str>,
    /// Fee per L2 intent in gBTC units.
    pub transfer_fee: u64,
    /// Land fee in ppm.
    pub land_fee_ppm: u64,
    /// The Ark server's parameters a wallet needs to check what it signs
    /// (`signer_pubkey`, `forfeit_pubkey`, `checkpoint_tapscript`,
    /// `unilateral_exit_delay`, `checkpoint_exit_delay`, `dust`, `network`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ark: Option<serde_json::Value>,
}

/// Answers service requests the relay supports today and refuses the rest
/// with a clear code, so nothing waits forever.
pub struct BaseHandler {
    store: DynStore,
    keys: Keys,
    info: Arc<RelayInfo>,
    /// Delegations (each VTXO's `renewal` in `sync_state`) and the published
    /// renewal fee (`renewal_fee_sats` in `get_info`).
    renewals: Option<(ark_relay_core::renewals::DynRenewalStore, u64)>,
}

fn fatal(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Fatal(e.to_string())
}

impl BaseHandler {
    /// A handler signing with the relay's `keys`.
    pub fn new(store: DynStore, keys: Keys, info: RelayInfo) -> Self {
        Self {
            store,
            keys,
            info: Arc::new(info),
            renewals: None,
        }
    }

    /// Shows each VTXO's renewal in `sync_state` and the renewal fee in
    /// `get_info` (docs/protocol.md "Renewal challenge").
    pub fn with_renewals(
        mut self,
        store: ark_relay_core::renewals::DynRenewalStore,
        fee_sats: u64,
    ) -> Self {
        self.renewals = Some((store, fee_sats));
        self
    }

    fn author(job: &InboundJob) -> Result<PubKey, HandlerError> {
        pubkey_from_nostr(&job.event.pubkey).ok_or_else(|| fatal("invalid author key"))
    }

    /// A 31501 answering `job`.
    fn response(
        &self,
        job: &InboundJob,
        response: &ServiceResponse,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let author = Self::author(job)?;
        let request = event_id_from_nostr(&job.event.id);
        let ev = builders::service_response(
            &self.keys,
            &author,
            &request,
            response,
            job.answer_scheme(),
        )
        .map_err(fatal)?;
        Ok(NewOutboxEvent {
            dedupe_key: format!("31501:{request}"),
            kind: kinds::SERVICE_RESPONSE,
            recipient: Some(author),
            event_json: ev.as_json(),
        })
    }

    /// A 31341 answering `job`.
    pub fn failure(
        &self,
        job: &InboundJob,
        rejection: &Rejection,
        scheme: Scheme,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let author = Self::author(job)?;
        let answered = event_id_from_nostr(&job.event.id);
        crate::failure_notice(&self.keys, &author, &answered, rejection, scheme).map_err(fatal)
    }

    async fn sync_state(&self, author: &PubKey) -> Result<serde_json::Value, HandlerError> {
        let transient = |e: ark_relay_core::StoreError| HandlerError::Transient(e.to_string());
        let vtxos = self.store.unspent_vtxos(author).await.map_err(transient)?;
        let assets = self.store.assets().await.map_err(transient)?;
        let delegations = match &self.renewals {
            Some((r, _)) => r
                .delegations_of_owner(&author.to_string(), 10_000)
                .await
                .map_err(transient)?,
            None => Vec::new(),
        };
        let renewal = |id: &ark_relay_core::VtxoId| {
            let id = id.to_string();
            let rows: Vec<_> = delegations.iter().filter(|d| d.vtxo == id).collect();
            ark_relay_core::renewals::RenewalView::of(&rows)
        };
        let ticker = |id: &ark_relay_core::AssetId| {
            assets
                .iter()
                .find(|a| &a.id == id)
                .map(|a| a.ticker.clone())
        };
        let list: Vec<serde_json::Value> = vtxos
            .iter()
            .map(|v| {
                serde_json::json!({
                    "vtxo": v.id,
                    "sats": v.sats.get(),
                    "asset_id": v.colour.map(|c| c.asset.to_string()),
                    "ticker": v.colour.and_then(|c| ticker(&c.asset)),
                    "amount": v.colour.map(|c| c.amount.get()).unwrap_or(0),
                    "expires_at": v.expires_at.map(|t| t.0),
                    "tapscripts": v.tapscripts,
                    "locked": v.locked_by.is_some(),
                    "renewal": renewal(&v.id),
                })
            })
            .collect();
        Ok(serde_json::json!({ "owner": author, "vtxos": list }))
    }
}

impl BaseHandler {
    /// Answers a service request the ceremony and the ramps do not take
    /// (`sync_state`, `get_info`; a clear 1003 for what is not enabled).
    pub async fn request(
        &self,
        inbound: &InboundJob,
        request: &Result<ServiceRequest, Rejection>,
    ) -> Result<JobOutcome, HandlerError> {
        let request_id = inbound.event.id.to_hex();
        let response = match request {
            Err(r) => ServiceResponse::err(request_id, r),
            Ok(ServiceRequest::SyncState {}) => {
                ServiceResponse::ok(request_id, self.sync_state(&Self::author(inbound)?).await?)
            }
            Ok(ServiceRequest::GetInfo {}) => {
                let mut info = serde_json::to_value(&*self.info).map_err(fatal)?;
                if let Some(map) = info.as_object_mut() {
                    let fee = self.renewals.as_ref().map_or(0, |(_, f)| *f);
                    map.insert("renewal_fee_sats".into(), fee.into());
                }
                ServiceResponse::ok(request_id, info)
            }
            Ok(other) => {
                let action = match other {
                    ServiceRequest::LiftLightning { .. } => "lift_lightning",
                    ServiceRequest::SubmitBatch { .. } => "submit_batch",
                    _ => "this action",
                };
                let r = Rejection::new(
                    ErrorCode::UnsupportedAction,
                    format!("{action} is not enabled on this relay yet"),
                );
                ServiceResponse::err(request_id, &r)
            }
        };
        let mut outbox = vec![self.response(inbound, &response)?];
        if let (Ok(ServiceRequest::SyncState {}), Some((store, _))) = (request, &self.renewals) {
            // The owner is here: its renewals still waiting for an answer.
            let waiting = crate::renewal::waiting_challenges(
                store,
                &self.keys,
                &Self::author(inbound)?,
                &event_id_from_nostr(&inbound.event.id),
                inbound.answer_scheme(),
                ark_relay_core::UnixTime::now(),
                600,
            )
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
            outbox.extend(waiting);
        }
        Ok(JobOutcome { outbox })
    }
}
