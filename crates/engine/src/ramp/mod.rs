//! Lightning ramps (PRD §5.3–§5.4, §7; research/lightning.md §8): lifts
//! (Lightning → a gBTC VTXO) and lands (a gBTC VTXO → a Lightning payment),
//! crash-safe sagas over arkd, lnd and the ledger.
//!
//! - The router sends `lift_lightning` service requests to [`Ramps`], which
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

use ark_relay_core::backends::lightning::{DynLightning, LightningError, PaymentHash};
use ark_relay_core::ramp::{DynRampStore, LandRecord, LiftRecord};
use ark_relay_core::{
    AssetId, AssetType, Clock, DynStore, EventId, NewOutboxEvent, PubKey, SessionId,
};
use ark_relay_protocol::content::Confirmation;
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::request::ServiceResponse;
use ark_relay_protocol::{builders, kinds};
use async_trait::async_trait;
use bitcoin::hashes::{sha256, Hash};
use nostr::{JsonUtil, Keys};
use serde::{Deserialize, Serialize};

mod land;
mod lift;

pub use crate::ceremony::{IssueError, Issued, Issuer};

use crate::handlers::HandlerError;

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
            IssueError::Busy(reason) => HandlerError::Deferred {
                reason,
                retry_after: crate::ceremony::issue::BUSY_RETRY,
                outbox: Vec::new(),
            },
        }
    }
}

/// The lock id of a lift's issuing transaction.
fn lift_lock(lift_id: &str) -> SessionId {
    SessionId::from_bytes(
        sha256::Hash::hash(format!("ark-relay/lift/{lift_id}").as_bytes()).to_byte_array(),
    )
}

/// The lock id of the genesis on Ark of the Taproot Asset `taproot` (the
/// same for every lift: one Arkade asset per Taproot Asset, resumable).
fn taproot_genesis_lock(taproot: &ark_relay_core::AssetId) -> SessionId {
    SessionId::from_bytes(
        sha256::Hash::hash(format!("ark-relay/taproot-genesis/{taproot}").as_bytes())
            .to_byte_array(),
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

#[async_trait]
impl crate::ceremony::LandDesk for Ramps {
    async fn open_land(
        &self,
        intent: &ark_relay_protocol::intent::ValidIntent,
    ) -> Result<Result<(), ark_relay_protocol::Rejection>, HandlerError> {
        Ramps::open_land(self, intent).await
    }

    async fn land_moved(
        &self,
        intent: &EventId,
        ark_txid: bitcoin::Txid,
        confirmation: Confirmation,
    ) -> Result<(), HandlerError> {
        Ramps::land_moved(self, intent, ark_txid, confirmation).await
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
    /// The genesis unit of a gBTC issued on Ark (its control asset is
    /// registered) backs nothing and does not circulate (`GET /reserves`
    /// says the same).
    pub async fn reserves(&self) -> Result<ReserveView, HandlerError> {
        let circulating = match self.gbtc().await? {
            Some(id) => {
                let supply = self
                    .store
                    .asset(&id)
                    .await
                    .map_err(transient)?
                    .map(|a| a.total_supply.get())
                    .unwrap_or(0);
                let control = ark_relay_ark::asset::control_ledger_id(&id);
                let genesis = self.store.asset(&control).await.map_err(transient)?;
                match genesis {
                    Some(_) => supply.saturating_sub(ark_relay_ark::asset::GENESIS_UNITS),
                    None => supply,
                }
            }
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

    /// One pass over every unfinished lift and land.
    pub async fn drive_all(self: &Arc<Self>) -> Result<(), HandlerError> {
        for lift in self.ramp.active_lifts(200).await.map_err(transient)? {
            let id = lift.lift_id.clone();
            match self.drive_lift(lift).await {
                Ok(()) => {}
                Err(HandlerError::Deferred { reason, .. }) => {
                    tracing::debug!(lift = %id, %reason, "lift waits");
                }
                Err(e) => tracing::warn!(lift = %id, error = %e, "lift step failed; will retry"),
            }
        }
        for land in self.ramp.active_lands(200).await.map_err(transient)? {
            let id = land.intent;
            match self.drive_land(land).await {
                Ok(()) => {}
                Err(HandlerError::Deferred { reason, .. }) => {
                    tracing::debug!(intent = %id, %reason, "land waits");
                }
                Err(e) => tracing::warn!(intent = %id, error = %e, "land step failed; will retry"),
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

fn hex_bytes(s: &str) -> Result<Vec<u8>, bitcoin::hex::HexToBytesError> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s.trim())
}

/// The land fee limit for routing: the relay pays routing out of its land
/// fee, so it never pays more to route than it earned (at least 1 sat).
pub fn land_fee_limit(fee: u64) -> u64 {
    fee.max(1)
}
