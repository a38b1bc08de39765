//! Lightning ramps (PRD §5.3–§5.4, §7; research/lightning.md §8): lifts
//! (Lightning → a gBTC VTXO) and lands (a gBTC VTXO → a Lightning payment),
//! crash-safe sagas over arkd, lnd and the ledger.
//!
//! - [`RampHandler`] wraps the job handler: a `lift_lightning` service request
//!   writes the lift row and its preimage **before** asking lnd for a hold
//!   invoice, then answers the 31501 with the invoice.
//! - [`Ramps`] is a scheduler task that drives every unfinished lift and land
//!   one step at a time from its persisted state, so a restart anywhere
//!   resumes: accepted invoices are re-queried one by one, `PAYING` lands are
//!   tracked with `TrackPaymentV2` before anything is resent, and nothing is
//!   ever refunded on a timer — only on lnd's terminal `FAILED`.
//! - The land's own ceremony (moving the user's VTXO to the relay, burning the
//!   landed gBTC) is the transfer ceremony's; it hands over by setting the
//!   land to `vtxo_moved` with the 31340 to publish once paid.
//!
//! gBTC is backed 1:1: a lift issues colour only for an accepted HTLC, a land
//! burns it in the same ark tx that moves it to the relay, and both are
//! refused (6005) when they would break circulating ≤ reserve.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_core::backends::lightning::{
    BackendErrorKind, DynLightning, HoldInvoiceRequest, InvoiceState, LightningError, Payment,
    PaymentHash, PaymentStatus, Preimage, SendPayment,
};
use ark_relay_core::ramp::{DynRampStore, LandRecord, LandStatus, LiftRecord, LiftStatus};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Clock, Colour, DynStore, ErrorCode, EventId, Job,
    NewOutboxEvent, PubKey, SessionId,
};
use ark_relay_protocol::content::{AssetRef, Confirmation};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, kinds, pubkey_from_nostr, Rejection};
use async_trait::async_trait;
use bitcoin::hashes::{sha256, Hash};
use futures::StreamExt;
use nostr::{JsonUtil, Keys};
use serde::{Deserialize, Serialize};

pub use crate::ceremony::{IssueError, Issued, Issuer};

use crate::handlers::{HandlerError, JobHandler, JobOutcome};
use crate::ingest::{job_kind, InboundJob};

/// How soon a request or intent kept during an lnd outage is tried again.
const LND_RETRY: Duration = Duration::from_secs(5);

/// Tuning of lifts and lands.
#[derive(Debug, Clone)]
pub struct RampConfig {
    /// Seconds a lift invoice stays payable.
    pub invoice_expiry_secs: u64,
    /// The final CLTV delta asked of lift payers (≥ 80 leaves room for Ark).
    pub cltv_expiry: u64,
    /// Blocks of margin, beyond lnd's 18-block hold-expiry delta, that a held
    /// HTLC must still have for the relay to issue against it.
    pub htlc_safety_blocks: u32,
    /// Smallest lift, sats.
    pub min_lift: u64,
    /// Largest lift, sats.
    pub max_lift: u64,
    /// Seconds lnd gets to find a first route for a land.
    pub payment_timeout_secs: i32,
    /// How long one drive of a payment stream waits before leaving it in
    /// flight for the next tick (never a refund: only FAILED refunds).
    pub payment_watch: Duration,
    /// How often unfinished lifts and lands are driven.
    pub every: Duration,
}

impl Default for RampConfig {
    fn default() -> Self {
        Self {
            invoice_expiry_secs: 3_600,
            cltv_expiry: 80,
            htlc_safety_blocks: 6,
            min_lift: 1,
            max_lift: 10_000_000_000,
            payment_timeout_secs: 60,
            payment_watch: Duration::from_secs(20),
            every: Duration::from_millis(250),
        }
    }
}

/// Where a test may simulate the relay dying in a lift or land: the step
/// stops with a transient error, as if the process had been killed there,
/// and the next delivery (job redelivery or the next driver tick, as after a
/// restart) resumes from the persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RampCrashPoint {
    /// The lift row and preimage are written; no invoice yet.
    LiftRowWritten,
    /// lnd created the hold invoice; `invoiced` not yet written.
    LiftInvoiceCreated,
    /// `accepted` is written; nothing issued yet.
    LiftAccepted,
    /// The issuing tx is persisted; not submitted.
    LiftIssuePrepared,
    /// arkd accepted `SubmitTx`; its answer is not persisted.
    LiftSubmitted,
    /// Finalized and committed in the ledger; `issued` not yet written.
    LiftFinalized,
    /// lnd settled the invoice; `settled` not yet written.
    LiftSettled,
    /// `paying` is written; `SendPaymentV2` not called.
    LandPaying,
    /// `SendPaymentV2` was called; its stream is not read.
    LandSent,
    /// lnd reported the terminal outcome; it is not persisted.
    LandResolved,
    /// The refund tx was submitted; its answer is not persisted.
    RefundSubmitted,
}

/// Decides whether to "crash" at a point (tests only).
pub type RampCrashHook = Arc<dyn Fn(RampCrashPoint) -> bool + Send + Sync>;

/// The engine's JSON in `lifts.issue_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LiftData {
    /// The scheme the wallet used for its request (for 31341s).
    #[serde(default)]
    nip04: bool,
    /// A Taproot Asset lift: the invoice is tapd's (priced by an RFQ quote).
    #[serde(default)]
    tapd: bool,
}

/// The engine's JSON in `lands.refund_data`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LandData {
    /// The 31340 to publish once paid (the ceremony writes it; the preimage
    /// is added on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) confirmation: Option<Confirmation>,
    /// Refund attempts arkd refused (each attempt is its own issuing session).
    #[serde(default)]
    pub(crate) refund_attempt: u32,
}

impl LandData {
    pub(crate) fn parse(s: &str) -> Result<Self, HandlerError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(s).map_err(|e| HandlerError::Fatal(format!("land data: {e}")))
    }
}

fn fatal(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

fn ln_transient(what: &str, e: LightningError) -> HandlerError {
    HandlerError::Transient(format!("lnd {what}: {e}"))
}

impl From<IssueError> for HandlerError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Transient(m) => HandlerError::Transient(m),
            IssueError::Fatal(m) => HandlerError::Fatal(m),
            IssueError::Rejected(r) => HandlerError::Fatal(r.message),
        }
    }
}

/// The lock id of a lift's issuing transaction.
fn lift_lock(lift_id: &str) -> SessionId {
    SessionId::from_bytes(
        sha256::Hash::hash(format!("ark-relay/lift/{lift_id}").as_bytes()).to_byte_array(),
    )
}

/// The lock id of a land's refund transaction.
fn refund_lock(intent: &EventId, attempt: u32) -> SessionId {
    let key = match attempt {
        0 => format!("ark-relay/refund/{intent}"),
        n => format!("ark-relay/refund/{intent}/{n}"),
    };
    SessionId::from_bytes(sha256::Hash::hash(key.as_bytes()).to_byte_array())
}

/// What the relay holds against gBTC, and what circulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReserveView {
    /// gBTC colour in circulation (unspent VTXOs), sats.
    pub circulating: u64,
    /// Spendable Lightning channel balance, sats.
    pub lightning_sats: u64,
    /// Confirmed on-chain wallet balance, sats.
    pub onchain_sats: u64,
}

impl ReserveView {
    /// Channel + on-chain.
    pub fn reserve(&self) -> u64 {
        self.lightning_sats.saturating_add(self.onchain_sats)
    }
}

/// Lifts and lands: the service-request side and the driver.
pub struct Ramps {
    store: DynStore,
    ramp: DynRampStore,
    ln: DynLightning,
    issuer: Issuer,
    keys: Keys,
    clock: Arc<dyn Clock>,
    config: RampConfig,
    paying: Mutex<HashSet<PaymentHash>>,
    assets: Option<ark_relay_core::backends::assets::DynAssets>,
    crash: Option<RampCrashHook>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Ramps {
    /// Ramps for the relay identity `keys` (the issuer must use the same key).
    pub fn new(
        store: DynStore,
        ramp: DynRampStore,
        ln: DynLightning,
        issuer: Issuer,
        keys: Keys,
        clock: Arc<dyn Clock>,
        config: RampConfig,
    ) -> Self {
        Self {
            store,
            ramp,
            ln,
            issuer,
            keys,
            clock,
            config,
            paying: Mutex::new(HashSet::new()),
            assets: None,
            crash: None,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Stops the payment watchers this process spawned (at shutdown; their
    /// lands stay `paying` and the next process tracks them).
    pub fn shutdown(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }

    /// Enables lifts of Taproot Assets through tapd (asset hold invoices; the
    /// first lift of a new asset registers it as `permissionless` from its
    /// proof).
    pub fn with_assets(mut self, assets: ark_relay_core::backends::assets::DynAssets) -> Self {
        self.assets = Some(assets);
        self
    }

    /// Installs a [`RampCrashHook`] (tests only).
    pub fn with_crash_hook(mut self, hook: RampCrashHook) -> Self {
        use crate::ceremony::issue::IssueStage;
        let on_issue = hook.clone();
        self.issuer = self.issuer.with_crash_hook(Arc::new(move |kind, stage| {
            let point = match (kind, stage) {
                ("lift", IssueStage::Prepared) => RampCrashPoint::LiftIssuePrepared,
                ("lift", IssueStage::Submitted) => RampCrashPoint::LiftSubmitted,
                (_, IssueStage::Submitted) => RampCrashPoint::RefundSubmitted,
                (_, IssueStage::Prepared) => return false,
            };
            on_issue(point)
        }));
        self.crash = Some(hook);
        self
    }

    fn crash_at(&self, point: RampCrashPoint) -> Result<(), HandlerError> {
        match &self.crash {
            Some(hook) if hook(point) => Err(HandlerError::Transient(format!(
                "simulated crash at {point:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// The relay-issued BTC asset (gBTC).
    async fn gbtc(&self) -> Result<Option<AssetId>, HandlerError> {
        Ok(self
            .store
            .assets()
            .await
            .map_err(transient)?
            .into_iter()
            .find(|a| a.asset_type == AssetType::RelayIssued && a.enabled)
            .map(|a| a.id))
    }

    /// Circulating gBTC against the reserve, read now from the ledger and lnd.
    pub async fn reserves(&self) -> Result<ReserveView, HandlerError> {
        let circulating = match self.gbtc().await? {
            Some(id) => self
                .store
                .asset(&id)
                .await
                .map_err(transient)?
                .map(|a| a.total_supply.get())
                .unwrap_or(0),
            None => 0,
        };
        let channel = self
            .ln
            .channel_balance()
            .await
            .map_err(|e| ln_transient("ChannelBalance", e))?;
        let wallet = self
            .ln
            .wallet_balance()
            .await
            .map_err(|e| ln_transient("WalletBalance", e))?;
        Ok(ReserveView {
            circulating,
            lightning_sats: channel.local_msat / 1_000,
            onchain_sats: wallet.confirmed.get(),
        })
    }

    fn outbox(&self, ev: &nostr::Event, key: String, to: Option<PubKey>) -> NewOutboxEvent {
        NewOutboxEvent {
            dedupe_key: key,
            kind: ev.kind.as_u16(),
            recipient: to,
            event_json: ev.as_json(),
        }
    }

    fn response(
        &self,
        to: &PubKey,
        request: &EventId,
        response: &ServiceResponse,
        scheme: Scheme,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let ev =
            builders::service_response(&self.keys, to, request, response, scheme).map_err(fatal)?;
        Ok(NewOutboxEvent {
            dedupe_key: format!("31501:{request}"),
            kind: kinds::SERVICE_RESPONSE,
            recipient: Some(*to),
            event_json: ev.as_json(),
        })
    }

    // ---------------------------------------------------------------- lifts

    /// Persists `lift` (optimistic on its version) and bumps the version;
    /// `false` if another process moved it first.
    async fn save_lift(&self, lift: &mut LiftRecord) -> Result<bool, HandlerError> {
        let saved = self
            .ramp
            .update_lift(lift, &[], self.clock.now())
            .await
            .map_err(transient)?;
        if saved {
            lift.version += 1;
        }
        Ok(saved)
    }

    /// Persists `land` like [`Ramps::save_lift`].
    async fn save_land(&self, land: &mut LandRecord) -> Result<bool, HandlerError> {
        let saved = self
            .ramp
            .update_land(land, &[], self.clock.now())
            .await
            .map_err(transient)?;
        if saved {
            land.version += 1;
        }
        Ok(saved)
    }

    /// Answers a `lift_lightning` request (idempotent by request id).
    #[tracing::instrument(skip_all, fields(request = %inbound.event.id))]
    async fn on_lift_request(
        &self,
        inbound: &InboundJob,
        asset: &AssetRef,
        amount: Result<u64, Rejection>,
        proof: Option<&str>,
    ) -> Result<JobOutcome, HandlerError> {
        let request = event_id_from_nostr(&inbound.event.id);
        let user = pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author key"))?;
        let scheme = inbound.answer_scheme();
        if let Some(existing) = self
            .ramp
            .lift_by_request(&request)
            .await
            .map_err(transient)?
        {
            return self.invoice_lift(existing, scheme).await;
        }
        let refuse = |r: Rejection| -> Result<JobOutcome, HandlerError> {
            let resp = ServiceResponse::err(request.to_string(), &r);
            Ok(JobOutcome {
                outbox: vec![self.response(&user, &request, &resp, scheme)?],
            })
        };
        let amount = match amount {
            Ok(a) => a,
            Err(r) => return refuse(r),
        };
        if amount < self.config.min_lift || amount > self.config.max_lift {
            return refuse(Rejection::new(
                ErrorCode::InvalidAmount,
                format!(
                    "a lift must be between {} and {} sats",
                    self.config.min_lift, self.config.max_lift
                ),
            ));
        }
        let Some(gbtc) = self.gbtc().await? else {
            return refuse(Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                "this relay has no relay-issued BTC asset",
            ));
        };
        let is_gbtc = match asset {
            AssetRef::Id(id) => *id == gbtc,
            AssetRef::Ticker(t) => t.eq_ignore_ascii_case("gBTC") || t.eq_ignore_ascii_case("BTC"),
        };
        let lifted = if is_gbtc {
            gbtc
        } else {
            match self.lift_asset(asset, proof).await? {
                Ok(id) => id,
                Err(r) => return refuse(r),
            }
        };
        match self.reserves().await {
            Ok(_) if !is_gbtc => {}
            Ok(r) if r.circulating > r.reserve() => {
                return refuse(Rejection::new(
                    ErrorCode::ReserveExceeded,
                    format!(
                        "circulating gBTC ({}) already exceeds the reserve ({}); lifts are paused",
                        r.circulating,
                        r.reserve()
                    ),
                ));
            }
            Ok(_) => {}
            Err(HandlerError::Transient(why)) => {
                return Err(self.defer_lift(&user, &request, scheme, why)?);
            }
            Err(e) => return Err(e),
        }
        // Persist the preimage before the invoice exists (lightning.md §8).
        let preimage = Preimage(rand::random::<[u8; 32]>());
        let hash = preimage.hash();
        let now = self.clock.now();
        let data = LiftData {
            nip04: scheme == Scheme::Nip04,
            tapd: !is_gbtc,
        };
        let lift = LiftRecord {
            lift_id: hash.to_string(),
            user,
            request,
            asset: lifted,
            amount,
            hash,
            preimage,
            invoice: None,
            status: LiftStatus::Created,
            vtxo: None,
            ark_txid: None,
            created_at: now,
            updated_at: now,
            expires_at: now
                .plus_secs(i64::try_from(self.config.invoice_expiry_secs).unwrap_or(3_600)),
            error_code: None,
            data: serde_json::to_string(&data).map_err(fatal)?,
            version: 0,
        };
        self.ramp.create_lift(&lift).await.map_err(transient)?;
        self.crash_at(RampCrashPoint::LiftRowWritten)?;
        let Some(lift) = self
            .ramp
            .lift_by_request(&request)
            .await
            .map_err(transient)?
        else {
            return Err(transient("the lift row vanished"));
        };
        self.invoice_lift(lift, scheme).await
    }

    /// The asset of a Taproot Asset lift: a registered one, or — on its first
    /// lift — one proven by `proof` (tapd `VerifyProof`, then `InsertProof`),
    /// then registered as `permissionless`.
    async fn lift_asset(
        &self,
        asset: &AssetRef,
        proof: Option<&str>,
    ) -> Result<Result<AssetId, Rejection>, HandlerError> {
        use ark_relay_core::backends::assets::AssetsError;
        let Some(tapd) = &self.assets else {
            return Ok(Err(Rejection::new(
                ErrorCode::UnsupportedAction,
                "lifts of Taproot Assets need tapd, which this relay does not run",
            )));
        };
        let unknown = |why: String| Ok(Err(Rejection::new(ErrorCode::UnknownVtxoOrAsset, why)));
        let id = match asset {
            AssetRef::Id(id) => *id,
            AssetRef::Ticker(t) => {
                let all = self.store.assets().await.map_err(transient)?;
                return match all.into_iter().find(|a| &a.ticker == t && a.enabled) {
                    Some(a) => Ok(Ok(a.id)),
                    None => unknown(format!(
                        "unknown asset {t}; lift a new asset by its id with its proof"
                    )),
                };
            }
        };
        match self.store.asset(&id).await.map_err(transient)? {
            Some(a) if a.enabled => return Ok(Ok(id)),
            Some(_) => return unknown(format!("asset {id} is disabled on this relay")),
            None => {}
        }
        let Some(proof) = proof else {
            return unknown(format!(
                "asset {id} is new to this relay: its first lift must include its proof file (hex)"
            ));
        };
        let Ok(raw) = hex_bytes(proof) else {
            return Ok(Err(Rejection::new(
                ErrorCode::Malformed,
                "proof must be hex",
            )));
        };
        let tap_err = |what: &str, e: AssetsError| {
            HandlerError::Transient(format!("tapd {what}: {}", e.message))
        };
        let verdict = match tapd.verify_proof(&raw).await {
            Ok(v) => v,
            Err(e) if e.is_transient() => return Err(tap_err("VerifyProof", e)),
            Err(_) => return unknown("tapd could not read the proof".into()),
        };
        if !verdict.valid || verdict.asset_id != Some(id) {
            return unknown(format!("the proof does not prove asset {id}"));
        }
        match tapd.insert_proof(id, &raw).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(tap_err("InsertProof", e)),
            Err(e) => return unknown(format!("tapd refused the proof: {}", e.message)),
        }
        let short: String = id.to_string().chars().take(8).collect();
        self.store
            .register_asset(
                &ark_relay_core::NewAsset {
                    id,
                    name: format!("Taproot Asset {short}"),
                    ticker: short,
                    asset_type: AssetType::Permissionless,
                    decimals: 0,
                },
                self.clock.now(),
            )
            .await
            .map_err(transient)?;
        tracing::info!(asset = %id, "registered a permissionless Taproot Asset from its proof");
        Ok(Ok(id))
    }

    /// tapd's hold invoice for an asset lift (`AddInvoice` with `hodl_invoice`);
    /// its expiry is capped by the RFQ quote's.
    async fn asset_hold_invoice(&self, lift: &mut LiftRecord) -> Result<String, LightningError> {
        use ark_relay_core::backends::assets::AssetInvoiceRequest;
        let Some(tapd) = &self.assets else {
            return Err(LightningError::new(
                BackendErrorKind::FailedPrecondition,
                "no tapd for an asset lift",
            ));
        };
        let inv = tapd
            .add_invoice(AssetInvoiceRequest {
                asset_id: lift.asset,
                asset_amount: AssetAmount::new(lift.amount),
                peer_pubkey: None,
                hodl_hash: Some(lift.hash),
                memo: format!("Ark Relay: lift {} units of {}", lift.amount, lift.asset),
                expiry_secs: self.config.invoice_expiry_secs,
            })
            .await
            .map_err(|e| LightningError::new(e.kind, e.message))?;
        let quote_end = i64::try_from(inv.quote.expiry_unix).unwrap_or(i64::MAX);
        lift.expires_at = ark_relay_core::UnixTime(lift.expires_at.0.min(quote_end));
        Ok(inv.payment_request)
    }

    /// lnd is unavailable: keep the request (the job runs again shortly,
    /// without using up an attempt) and tell the wallet once with 7001.
    fn defer_lift(
        &self,
        user: &PubKey,
        request: &EventId,
        scheme: Scheme,
        reason: String,
    ) -> Result<HandlerError, HandlerError> {
        crate::degrade::keep(
            &self.keys,
            user,
            request,
            "the Lightning back end is unavailable; your lift request is kept and will be \
             answered when it returns",
            scheme,
            reason,
            LND_RETRY,
        )
    }

    /// Creates the hold invoice of a `created` lift and queues the 31501.
    async fn invoice_lift(
        &self,
        mut lift: LiftRecord,
        scheme: Scheme,
    ) -> Result<JobOutcome, HandlerError> {
        if lift.status != LiftStatus::Created {
            return Ok(JobOutcome::default()); // answered before
        }
        let tapd = serde_json::from_str::<LiftData>(&lift.data)
            .map(|d| d.tapd)
            .unwrap_or(false);
        let created = if tapd {
            self.asset_hold_invoice(&mut lift).await
        } else {
            let req = HoldInvoiceRequest {
                hash: lift.hash,
                value_msat: lift.amount.saturating_mul(1_000),
                memo: format!("Ark Relay: lift {} sats into gBTC", lift.amount),
                expiry_secs: self.config.invoice_expiry_secs,
                cltv_expiry: self.config.cltv_expiry,
            };
            self.ln
                .add_hold_invoice(req)
                .await
                .map(|a| a.payment_request)
        };
        let invoice = match created {
            Ok(invoice) => invoice,
            // A retry after a crash: the invoice exists already.
            Err(e) if e.kind == BackendErrorKind::AlreadyExists => {
                self.ln
                    .lookup_invoice(lift.hash)
                    .await
                    .map_err(|e| ln_transient("LookupInvoice", e))?
                    .payment_request
            }
            Err(e) if e.is_transient() => {
                let why = format!("lnd AddHoldInvoice: {e}");
                return Err(self.defer_lift(&lift.user, &lift.request, scheme, why)?);
            }
            Err(e) => {
                let r = Rejection::new(e.error_code(), format!("lnd refused the invoice: {e}"));
                lift.status = LiftStatus::Failed;
                lift.error_code = Some(r.code);
                let resp = ServiceResponse::err(lift.request.to_string(), &r);
                let out = self.response(&lift.user, &lift.request, &resp, scheme)?;
                self.ramp
                    .update_lift(&lift, &[out], self.clock.now())
                    .await
                    .map_err(transient)?;
                return Ok(JobOutcome::default());
            }
        };
        self.crash_at(RampCrashPoint::LiftInvoiceCreated)?;
        lift.invoice = Some(invoice.clone());
        lift.status = LiftStatus::Invoiced;
        let resp = ServiceResponse::ok(
            lift.request.to_string(),
            serde_json::json!({
                "lift_id": lift.lift_id,
                "invoice": invoice,
                "payment_hash": lift.hash.to_string(),
                "asset_id": lift.asset,
                "amount": lift.amount,
                "fee": 0,
                "expires_at": lift.expires_at.0,
            }),
        );
        let out = self.response(&lift.user, &lift.request, &resp, scheme)?;
        self.ramp
            .update_lift(&lift, &[out], self.clock.now())
            .await
            .map_err(transient)?;
        tracing::info!(lift = %lift.lift_id, amount = lift.amount, "lift invoiced");
        Ok(JobOutcome::default())
    }

    fn lift_scheme(lift: &LiftRecord) -> Scheme {
        match serde_json::from_str::<LiftData>(&lift.data) {
            Ok(d) if d.nip04 => Scheme::Nip04,
            _ => Scheme::Nip44,
        }
    }

    /// Cancels the invoice and ends the lift with `r` (the payer is refunded
    /// by Lightning itself).
    async fn cancel_lift(&self, mut lift: LiftRecord, r: Rejection) -> Result<(), HandlerError> {
        match self.ln.cancel_invoice(lift.hash).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(ln_transient("CancelInvoice", e)),
            // Already settled can't happen before `issued`; anything else
            // (already cancelled, unknown) leaves nothing held.
            Err(e) => tracing::warn!(lift = %lift.lift_id, error = %e, "CancelInvoice refused"),
        }
        tracing::info!(lift = %lift.lift_id, code = r.code.code(), reason = %r.message, "lift cancelled");
        let notice = crate::failure_notice(
            &self.keys,
            &lift.user,
            &lift.request,
            &r,
            Self::lift_scheme(&lift),
        )
        .map_err(fatal)?;
        lift.status = LiftStatus::Cancelled;
        lift.error_code = Some(r.code);
        self.ramp
            .update_lift(&lift, &[notice], self.clock.now())
            .await
            .map_err(transient)?;
        Ok(())
    }

    /// Drives one lift one or more steps forward.
    #[tracing::instrument(skip_all, fields(lift = %lift.lift_id, status = %lift.status))]
    async fn drive_lift(&self, mut lift: LiftRecord) -> Result<(), HandlerError> {
        let now = self.clock.now();
        if lift.status == LiftStatus::Created {
            // The request job answers it; one that died for good leaves it here.
            if now.0 - lift.created_at.0 > 300 {
                lift.status = LiftStatus::Failed;
                lift.error_code = Some(ErrorCode::BackendUnavailable);
                self.ramp
                    .update_lift(&lift, &[], now)
                    .await
                    .map_err(transient)?;
            }
            return Ok(());
        }
        if lift.status == LiftStatus::Invoiced {
            let inv = self
                .ln
                .lookup_invoice(lift.hash)
                .await
                .map_err(|e| ln_transient("LookupInvoice", e))?;
            match inv.state {
                InvoiceState::Open => {
                    if now.0 > lift.expires_at.0 {
                        let r = Rejection::new(
                            ErrorCode::InvoiceExpired,
                            "the lift invoice expired unpaid",
                        );
                        return self.cancel_lift(lift, r).await;
                    }
                    return Ok(());
                }
                InvoiceState::Canceled => {
                    let r = Rejection::new(
                        ErrorCode::InvoiceExpired,
                        "the lift invoice was cancelled before the relay could settle it",
                    );
                    return self.cancel_lift(lift, r).await;
                }
                InvoiceState::Settled => {
                    return Err(fatal("a lift invoice is settled but no VTXO was issued"));
                }
                InvoiceState::Accepted => {
                    // An asset invoice is priced in msat by its RFQ quote.
                    let tapd = serde_json::from_str::<LiftData>(&lift.data)
                        .map(|d| d.tapd)
                        .unwrap_or(false);
                    let expected = if tapd {
                        inv.value_msat.max(1)
                    } else {
                        lift.amount.saturating_mul(1_000)
                    };
                    if inv.amt_paid_msat < expected {
                        let r = Rejection::new(
                            ErrorCode::InvoiceAmountMismatch,
                            format!("paid {} msat of {expected}", inv.amt_paid_msat),
                        );
                        return self.cancel_lift(lift, r).await;
                    }
                    let height = self
                        .ln
                        .block_height()
                        .await
                        .map_err(|e| ln_transient("GetInfo", e))?;
                    let margin = self.config.htlc_safety_blocks.saturating_add(18);
                    let expiry = inv.min_htlc_expiry().unwrap_or(0);
                    if expiry <= height.saturating_add(margin) {
                        let r = Rejection::new(
                            ErrorCode::InvoiceExpired,
                            format!(
                                "the payer's HTLC expires at height {expiry}, too close to {height} (margin {margin})"
                            ),
                        );
                        return self.cancel_lift(lift, r).await;
                    }
                    lift.status = LiftStatus::Accepted;
                    if !self.save_lift(&mut lift).await? {
                        return Ok(());
                    }
                    tracing::info!(amount = lift.amount, "lift paid (HTLC held)");
                    self.crash_at(RampCrashPoint::LiftAccepted)?;
                }
            }
        }
        if lift.status == LiftStatus::Accepted {
            let lock = lift_lock(&lift.lift_id);
            if !self.issuer.started(&lock).await? {
                // The invoice must still be held before anything is issued
                // (lnd cancels it near the HTLC's expiry, which the accepted
                // check keeps many blocks away).
                let inv = self
                    .ln
                    .lookup_invoice(lift.hash)
                    .await
                    .map_err(|e| ln_transient("LookupInvoice", e))?;
                if inv.state != InvoiceState::Accepted {
                    let r = Rejection::new(
                        ErrorCode::InvoiceExpired,
                        "the held payment was released before issuing",
                    );
                    return self.cancel_lift(lift, r).await;
                }
            }
            let colour = Colour {
                asset: lift.asset,
                amount: AssetAmount::new(lift.amount),
            };
            let issued = match self.issuer.issue(&lock, lift.user, colour, "lift").await {
                Ok(i) => i,
                Err(IssueError::Rejected(r)) => return self.cancel_lift(lift, r).await,
                Err(e) => return Err(e.into()),
            };
            self.crash_at(RampCrashPoint::LiftFinalized)?;
            lift.status = LiftStatus::Issued;
            lift.vtxo = Some(issued.vtxo);
            lift.ark_txid = Some(issued.ark_txid);
            if !self.save_lift(&mut lift).await? {
                return Ok(());
            }
        }
        if lift.status == LiftStatus::Issued {
            match self.ln.settle_invoice(lift.preimage).await {
                Ok(()) => {}
                Err(e) if e.is_transient() => return Err(ln_transient("SettleInvoice", e)),
                Err(e) => {
                    // The VTXO is out and lnd will not take the money: an
                    // operator matter, never silently retried into a loss.
                    tracing::error!(error = %e, "SettleInvoice refused after the VTXO was issued");
                    return Err(fatal(format!("SettleInvoice refused: {e}")));
                }
            }
            self.crash_at(RampCrashPoint::LiftSettled)?;
            lift.status = LiftStatus::Settled;
            if !self.save_lift(&mut lift).await? {
                return Ok(());
            }
        }
        if lift.status == LiftStatus::Settled {
            let colour = Colour {
                asset: lift.asset,
                amount: AssetAmount::new(lift.amount),
            };
            let tx = self
                .issuer
                .issue(&lift_lock(&lift.lift_id), lift.user, colour, "lift")
                .await?;
            let mut confirmation = tx.confirmation;
            confirmation.intents = vec![lift.request];
            let ev =
                builders::confirmation(&self.keys, &confirmation, &[lift.user]).map_err(fatal)?;
            let out = self.outbox(&ev, format!("31340:{}", tx.ark_txid), None);
            lift.status = LiftStatus::Announced;
            self.ramp
                .update_lift(&lift, &[out], self.clock.now())
                .await
                .map_err(transient)?;
            tracing::info!(ark_txid = %tx.ark_txid, amount = lift.amount, "lift completed");
        }
        Ok(())
    }

    // ---------------------------------------------------------------- lands

    /// Opens the land of a validated `land_lightning` intent before its
    /// ceremony: checks the invoice again, the relay's ability to pay, and
    /// reserves the payment hash (an invoice is paid at most once, ever).
    /// Idempotent for the same intent.
    pub(crate) async fn open_land(
        &self,
        intent: &ark_relay_protocol::intent::ValidIntent,
    ) -> Result<Result<(), Rejection>, HandlerError> {
        if self
            .ramp
            .land(&intent.event_id)
            .await
            .map_err(transient)?
            .is_some()
        {
            return Ok(Ok(()));
        }
        let memo = intent.memo.as_deref().unwrap_or("");
        let facts = match ark_relay_protocol::invoice::invoice_facts(memo) {
            Ok(f) => f,
            Err(r) => return Ok(Err(r)),
        };
        let now = self.clock.now();
        if facts.expires_at.0.saturating_sub(now.0)
            < ark_relay_protocol::invoice::MIN_LAND_EXPIRY_SECS
        {
            return Ok(Err(Rejection::new(
                ErrorCode::InvoiceExpired,
                "the invoice expires too soon to be paid",
            )));
        }
        let Some(gbtc) = self.gbtc().await? else {
            return Ok(Err(Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                "no gBTC on this relay",
            )));
        };
        let landed: Vec<_> = intent.outputs.iter().filter(|o| !o.fee).collect();
        let is_gbtc = |a: &AssetRef| match a {
            AssetRef::Id(id) => *id == gbtc,
            AssetRef::Ticker(t) => t.eq_ignore_ascii_case("gBTC"),
        };
        if !landed.iter().all(|o| is_gbtc(&o.asset)) {
            return Ok(Err(Rejection::new(
                ErrorCode::UnsupportedAction,
                "only gBTC lands over Lightning on this relay",
            )));
        }
        let amount = landed
            .iter()
            .map(|o| o.amount)
            .fold(0u64, u64::saturating_add);
        let fee = intent
            .outputs
            .iter()
            .filter(|o| o.fee)
            .map(|o| o.amount)
            .sum::<u64>();
        if facts.amount_msat != amount.saturating_mul(1_000) {
            return Ok(Err(Rejection::new(
                ErrorCode::InvoiceAmountMismatch,
                format!(
                    "the invoice asks {} msat, the intent lands {amount} sats",
                    facts.amount_msat
                ),
            )));
        }
        let fee_limit = land_fee_limit(fee);
        let channel = match self.ln.channel_balance().await {
            Ok(c) => c,
            // lnd unreachable: keep the intent (7001 once), like arkd's outage.
            Err(e) if e.is_transient() => {
                return Err(crate::degrade::keep(
                    &self.keys,
                    &intent.author,
                    &intent.event_id,
                    "the Lightning back end is unavailable; your land is kept and will run \
                     when it returns",
                    Scheme::Nip44,
                    format!("lnd ChannelBalance: {e}"),
                    LND_RETRY,
                )?);
            }
            Err(e) => return Err(ln_transient("ChannelBalance", e)),
        };
        let needed = amount.saturating_add(fee_limit).saturating_mul(1_000);
        if channel.local_msat < needed {
            return Ok(Err(Rejection::new(
                ErrorCode::ReserveExceeded,
                format!(
                    "the relay can pay at most {} sats over Lightning now; this land needs {}",
                    channel.local_msat / 1_000,
                    needed / 1_000
                ),
            )));
        }
        let land = LandRecord {
            intent: intent.event_id,
            user: intent.author,
            asset: gbtc,
            amount,
            fee,
            hash: PaymentHash(facts.payment_hash),
            invoice: memo.trim().to_owned(),
            fee_limit_sats: fee_limit,
            status: LandStatus::Received,
            preimage: None,
            ark_txid: None,
            refund_vtxo: None,
            created_at: now,
            updated_at: now,
            error_code: None,
            data: String::new(),
            version: 0,
        };
        match self.ramp.create_land(&land).await.map_err(transient)? {
            ark_relay_core::ramp::LandInsert::New
            | ark_relay_core::ramp::LandInsert::Existing(_) => Ok(Ok(())),
            ark_relay_core::ramp::LandInsert::HashUsed => Ok(Err(Rejection::new(
                ErrorCode::InvalidInvoice,
                "this invoice's payment hash was already used by another land",
            ))),
        }
    }

    /// The ceremony's hand-over: the user's VTXO is final at the relay and the
    /// landed colour burned; `confirmation` is published once paid.
    pub(crate) async fn land_moved(
        &self,
        intent: &EventId,
        ark_txid: bitcoin::Txid,
        confirmation: Confirmation,
    ) -> Result<(), HandlerError> {
        let Some(mut land) = self.ramp.land(intent).await.map_err(transient)? else {
            return Err(fatal(format!("land {intent} has no row")));
        };
        if land.status != LandStatus::Received {
            return Ok(()); // a redelivered finalize
        }
        let mut data = LandData::parse(&land.data)?;
        data.confirmation = Some(confirmation);
        land.data = serde_json::to_string(&data).map_err(fatal)?;
        land.status = LandStatus::VtxoMoved;
        land.ark_txid = Some(ark_txid);
        self.ramp
            .update_land(&land, &[], self.clock.now())
            .await
            .map_err(transient)?;
        tracing::info!(%intent, %ark_txid, "land funds final at the relay; paying");
        Ok(())
    }

    /// Drives one land one or more steps forward.
    #[tracing::instrument(skip_all, fields(intent = %land.intent, status = %land.status))]
    async fn drive_land(self: &Arc<Self>, mut land: LandRecord) -> Result<(), HandlerError> {
        match land.status {
            LandStatus::Received => {
                // The ceremony moves it to `vtxo_moved`; a ceremony that ended
                // otherwise moved nothing: the land ends with its error.
                let session = self
                    .store
                    .session(&SessionId::from(land.intent))
                    .await
                    .map_err(transient)?;
                if let Some(s) = session {
                    if s.status.is_final() && s.status != ark_relay_core::SessionStatus::Completed {
                        land.status = LandStatus::Refunded;
                        land.error_code = s.error_code;
                        self.ramp
                            .update_land(&land, &[], self.clock.now())
                            .await
                            .map_err(transient)?;
                    }
                }
                Ok(())
            }
            LandStatus::VtxoMoved => {
                // Write PAYING before the payment exists (lightning.md §8).
                land.status = LandStatus::Paying;
                if self.save_land(&mut land).await? {
                    self.spawn_payment(land);
                }
                Ok(())
            }
            LandStatus::Paying => {
                self.spawn_payment(land);
                Ok(())
            }
            LandStatus::Failed => self.refund(land).await,
            LandStatus::Succeeded | LandStatus::Refunded => Ok(()),
        }
    }

    fn spawn_payment(self: &Arc<Self>, land: LandRecord) {
        {
            let Ok(mut set) = self.paying.lock() else {
                return;
            };
            if !set.insert(land.hash) {
                return; // already being watched by this process
            }
        }
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let hash = land.hash;
            if let Err(e) = this.pay(land).await {
                tracing::warn!(error = %e, "land payment step failed; retrying on the next tick");
            }
            if let Ok(mut set) = this.paying.lock() {
                set.remove(&hash);
            }
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task.abort_handle());
        }
    }

    /// Sends (or tracks) the payment of a `paying` land until a terminal
    /// state or the watch window ends (then it stays `paying`).
    #[tracing::instrument(skip_all, fields(intent = %land.intent))]
    async fn pay(&self, land: LandRecord) -> Result<(), HandlerError> {
        // Track first: a payment that reached lnd is never sent again.
        let stream = match self.ln.track_payment(land.hash).await {
            Ok(s) => s,
            Err(e) if e.kind == BackendErrorKind::NotFound => {
                let req = SendPayment {
                    payment_request: land.invoice.clone(),
                    amt_msat: None,
                    fee_limit_msat: land.fee_limit_sats.saturating_mul(1_000),
                    timeout_seconds: self.config.payment_timeout_secs,
                };
                self.crash_at(RampCrashPoint::LandPaying)?;
                tracing::info!(target: "audit", op = "send_payment", intent = %land.intent, payment_hash = %land.hash, amount = land.amount, fee_limit_sats = land.fee_limit_sats, "paying a land invoice");
                match self.ln.send_payment(req).await {
                    Ok(s) => {
                        self.crash_at(RampCrashPoint::LandSent)?;
                        s
                    }
                    Err(e) if e.kind == BackendErrorKind::AlreadyExists => self
                        .ln
                        .track_payment(land.hash)
                        .await
                        .map_err(|e| ln_transient("TrackPaymentV2", e))?,
                    Err(e) if e.is_transient() => return Err(ln_transient("SendPaymentV2", e)),
                    Err(e) => {
                        // lnd refused before creating any payment: nothing
                        // left the node, so the refund is safe.
                        tracing::warn!(error = %e, "lnd refused to start the payment");
                        return self
                            .payment_failed(land, format!("lnd refused the payment: {e}"))
                            .await;
                    }
                }
            }
            Err(e) => return Err(ln_transient("TrackPaymentV2", e)),
        };
        let watch = tokio::time::timeout(self.config.payment_watch, async {
            let mut stream = stream;
            let mut last: Option<Payment> = None;
            while let Some(update) = stream.next().await {
                match update {
                    Ok(p) if p.is_terminal() => return Ok(Some(p)),
                    Ok(p) => last = Some(p),
                    Err(e) => return Err(e),
                }
            }
            let _ = last;
            Ok(None)
        })
        .await;
        if matches!(watch, Ok(Ok(Some(_)))) {
            self.crash_at(RampCrashPoint::LandResolved)?;
        }
        match watch {
            Ok(Ok(Some(p))) if p.status == PaymentStatus::Succeeded => {
                self.payment_succeeded(land, p).await
            }
            Ok(Ok(Some(p))) => {
                self.payment_failed(
                    land,
                    format!("Lightning payment failed: {:?}", p.failure_reason),
                )
                .await
            }
            // Stream ended or dropped, or still in flight: keep PAYING.
            Ok(Ok(None)) | Err(_) => Ok(()),
            Ok(Err(e)) => Err(ln_transient("payment stream", e)),
        }
    }

    async fn payment_succeeded(
        &self,
        mut land: LandRecord,
        p: Payment,
    ) -> Result<(), HandlerError> {
        let Some(preimage) = p.preimage.filter(|pre| pre.proves(&land.hash)) else {
            // lnd said SUCCEEDED without a valid proof: do not announce, do
            // not refund; an operator must look.
            tracing::error!("lnd reported success without a preimage matching the hash");
            return Err(fatal("payment succeeded without a valid preimage"));
        };
        let data = LandData::parse(&land.data)?;
        let mut confirmation = data
            .confirmation
            .ok_or_else(|| fatal("land without its confirmation"))?;
        confirmation.preimage = Some(preimage.0.iter().map(|b| format!("{b:02x}")).collect());
        let ev = builders::confirmation(&self.keys, &confirmation, &[land.user]).map_err(fatal)?;
        let out = self.outbox(&ev, format!("31340:{}", confirmation.ark_txid), None);
        land.status = LandStatus::Succeeded;
        land.preimage = Some(preimage);
        self.ramp
            .update_land(&land, &[out], self.clock.now())
            .await
            .map_err(transient)?;
        tracing::info!(amount = land.amount, fee_msat = p.fee_msat, "land paid");
        Ok(())
    }

    async fn payment_failed(&self, mut land: LandRecord, why: String) -> Result<(), HandlerError> {
        tracing::info!(reason = %why, "land payment failed terminally; refunding");
        land.status = LandStatus::Failed;
        land.error_code = Some(ErrorCode::PaymentFailed);
        if !self.save_land(&mut land).await? {
            return Ok(());
        }
        self.refund(land).await
    }

    /// Returns a failed land's value in a new VTXO and tells the user (6003).
    /// The refund re-issues exactly the landed colour the land burned, so
    /// circulating gBTC stays backed 1:1; the 0.1 % fee paid the Ark
    /// transaction that already happened and stays with the relay.
    async fn refund(&self, mut land: LandRecord) -> Result<(), HandlerError> {
        let mut data = LandData::parse(&land.data)?;
        let lock = refund_lock(&land.intent, data.refund_attempt);
        let colour = Colour {
            asset: land.asset,
            amount: AssetAmount::new(land.amount),
        };
        let tx = match self.issuer.issue(&lock, land.user, colour, "refund").await {
            Ok(tx) => tx,
            Err(IssueError::Rejected(r)) => {
                // Nothing moved and nothing stays locked: build a new
                // refund next time (no inventory now, or arkd refused).
                if self.issuer.started(&lock).await? {
                    data.refund_attempt += 1;
                    land.data = serde_json::to_string(&data).map_err(fatal)?;
                    self.ramp
                        .update_land(&land, &[], self.clock.now())
                        .await
                        .map_err(transient)?;
                }
                return Err(transient(r.message));
            }
            Err(e) => return Err(e.into()),
        };
        let r = Rejection::new(
            ErrorCode::PaymentFailed,
            format!(
                "the Lightning payment failed; {} units were refunded in VTXO {}",
                land.amount, tx.vtxo
            ),
        );
        let notice = crate::failure_notice(&self.keys, &land.user, &land.intent, &r, Scheme::Nip44)
            .map_err(fatal)?;
        land.status = LandStatus::Refunded;
        land.refund_vtxo = Some(tx.vtxo);
        land.data = serde_json::to_string(&data).map_err(fatal)?;
        self.ramp
            .update_land(&land, &[notice], self.clock.now())
            .await
            .map_err(transient)?;
        Ok(())
    }

    /// One pass over every unfinished lift and land.
    pub async fn drive_all(self: &Arc<Self>) -> Result<(), HandlerError> {
        for lift in self.ramp.active_lifts(200).await.map_err(transient)? {
            let id = lift.lift_id.clone();
            if let Err(e) = self.drive_lift(lift).await {
                tracing::warn!(lift = %id, error = %e, "lift step failed; will retry");
            }
        }
        for land in self.ramp.active_lands(200).await.map_err(transient)? {
            let id = land.intent;
            if let Err(e) = self.drive_land(land).await {
                tracing::warn!(intent = %id, error = %e, "land step failed; will retry");
            }
        }
        Ok(())
    }
}

/// Records the gBTC reserve (lnd channel + on-chain) in `asset_balances`,
/// where `GET /reserves` reads it next to the circulating supply.
pub struct ReserveMonitor {
    ramps: Arc<Ramps>,
    every: Duration,
}

impl ReserveMonitor {
    /// Reads lnd every `every`.
    pub fn new(ramps: Arc<Ramps>, every: Duration) -> Self {
        Self { ramps, every }
    }
}

impl Ramps {
    /// Reads the reserve from lnd and records it for gBTC.
    pub async fn record_reserve(&self) -> Result<ReserveView, HandlerError> {
        let view = self.reserves().await?;
        if let Some(asset) = self.gbtc().await? {
            self.ramp
                .record_reserve(&ark_relay_core::ramp::ReserveRecord {
                    asset,
                    lightning_sats: view.lightning_sats,
                    onchain_sats: view.onchain_sats,
                    updated_at: self.clock.now(),
                })
                .await
                .map_err(transient)?;
        }
        if view.circulating > view.reserve() {
            tracing::error!(
                circulating = view.circulating,
                reserve = view.reserve(),
                "circulating gBTC exceeds the BTC reserve"
            );
        }
        Ok(view)
    }
}

#[async_trait]
impl crate::Periodic for ReserveMonitor {
    fn name(&self) -> &'static str {
        "reserve-monitor"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn tick(&self) {
        if let Err(e) = self.ramps.record_reserve().await {
            tracing::warn!(error = %e, "reading the reserve failed");
        }
    }
}

/// The ramps as a scheduler task.
pub struct RampDriver(pub Arc<Ramps>);

#[async_trait]
impl crate::Periodic for RampDriver {
    fn name(&self) -> &'static str {
        "lightning-ramps"
    }

    fn every(&self) -> Duration {
        self.0.config.every
    }

    async fn tick(&self) {
        if let Err(e) = self.0.drive_all().await {
            tracing::warn!(error = %e, "ramp scan failed");
        }
    }
}

/// Handles `lift_lightning` requests; every other job goes to `inner`.
pub struct RampHandler {
    ramps: Arc<Ramps>,
    inner: Arc<dyn JobHandler>,
}

impl RampHandler {
    /// Wraps `inner`.
    pub fn new(ramps: Arc<Ramps>, inner: Arc<dyn JobHandler>) -> Self {
        Self { ramps, inner }
    }
}

#[async_trait]
impl JobHandler for RampHandler {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        if job.kind == job_kind::SERVICE_REQUEST {
            let inbound: InboundJob = serde_json::from_str(&job.payload).map_err(fatal)?;
            if let Some(Ok(ServiceRequest::LiftLightning {
                asset_id,
                amount,
                proof,
            })) = inbound.plaintext.as_deref().map(parse_request)
            {
                return self
                    .ramps
                    .on_lift_request(
                        &inbound,
                        &asset_id,
                        amount.positive("amount"),
                        proof.as_deref(),
                    )
                    .await;
            }
        }
        self.inner.handle(job, attempts).await
    }
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, bitcoin::hex::HexToBytesError> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s.trim())
}

/// The land fee limit for routing: the relay pays routing out of its land
/// fee, so it never pays more to route than it earned (at least 1 sat).
pub fn land_fee_limit(fee: u64) -> u64 {
    fee.max(1)
}
