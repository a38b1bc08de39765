//! Lands (a VTXO → a Lightning payment): opening a land before its
//! ceremony, the ceremony's hand-over, paying with `SendPaymentV2` tracked
//! across restarts, and the refund of a terminally failed payment.

use std::sync::Arc;

use ark_relay_core::backends::lightning::{
    BackendErrorKind, Payment, PaymentHash, PaymentStatus, SendPayment,
};
use ark_relay_core::ramp::{LandRecord, LandStatus};
use ark_relay_core::{AssetAmount, Colour, ErrorCode, EventId, SessionId};
use ark_relay_protocol::content::{AssetRef, Confirmation};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::{builders, Rejection};
use futures::StreamExt;

use super::{
    fatal, land_fee_limit, ln_transient, refund_lock, transient, IssueError, LandData,
    RampCrashPoint, Ramps, LND_RETRY,
};
use crate::handlers::HandlerError;

impl Ramps {
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
    pub(super) async fn drive_land(
        self: &Arc<Self>,
        mut land: LandRecord,
    ) -> Result<(), HandlerError> {
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

    pub(super) fn spawn_payment(self: &Arc<Self>, land: LandRecord) {
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
    pub(super) async fn pay(&self, land: LandRecord) -> Result<(), HandlerError> {
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

    pub(super) async fn payment_succeeded(
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

    pub(super) async fn payment_failed(
        &self,
        mut land: LandRecord,
        why: String,
    ) -> Result<(), HandlerError> {
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
    pub(super) async fn refund(&self, mut land: LandRecord) -> Result<(), HandlerError> {
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
}
