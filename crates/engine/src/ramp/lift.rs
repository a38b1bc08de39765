//! Lifts (Lightning → a VTXO): the `lift_lightning` request (the row and
//! preimage written before lnd's hold invoice) and the driver's steps from
//! an accepted HTLC to the issued VTXO, the settled invoice and the 31340.

use ark_relay_core::backends::lightning::{
    BackendErrorKind, HoldInvoiceRequest, InvoiceState, LightningError, Preimage,
};
use ark_relay_core::ramp::{LiftRecord, LiftStatus};
use ark_relay_core::{AssetAmount, AssetId, AssetType, Colour, ErrorCode, EventId, PubKey};
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::request::ServiceResponse;
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr, Rejection};

use super::{
    fatal, hex_bytes, lift_lock, ln_transient, taproot_genesis_lock, transient, IssueError,
    LiftData, RampCrashPoint, Ramps, LND_RETRY,
};
use crate::ceremony::issue::{is_control_asset, GenesisRequest};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

impl Ramps {
    /// Answers a `lift_lightning` request (idempotent by request id).
    #[tracing::instrument(skip_all, fields(request = %inbound.event.id))]
    pub(crate) async fn on_lift_request(
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
                Ok(id) => {
                    // A relay asset's control asset is never issued to anyone.
                    if is_control_asset(&self.store, &id)
                        .await
                        .map_err(transient)?
                    {
                        return refuse(Rejection::new(
                            ErrorCode::UnknownVtxoOrAsset,
                            format!("asset {id} is a control asset; it cannot be lifted"),
                        ));
                    }
                    id
                }
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

    /// The asset of a Taproot Asset lift (its ledger id): one lifted before
    /// (named by its Taproot Asset id, its ledger id or its ticker), or — on
    /// its first lift — one proven by `proof` (tapd `VerifyProof`, then
    /// `InsertProof`) and then issued on Ark by its own genesis
    /// ([`Issuer::genesis`](crate::ceremony::issue::Issuer::genesis): the
    /// relay holds its control asset, every later lift is a reissuance), with
    /// metadata naming the Taproot Asset. Its ledger id is the genesis txid;
    /// `taproot_links` keeps the Taproot Asset id tapd's invoices need.
    /// An asset registered under its Taproot Asset id before genesis on Ark
    /// existed stays bridged.
    pub(super) async fn lift_asset(
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
                match all.into_iter().find(|a| &a.ticker == t && a.enabled) {
                    Some(a) => a.id,
                    None => {
                        return unknown(format!(
                            "unknown asset {t}; lift a new asset by its id with its proof"
                        ))
                    }
                }
            }
        };
        if let Some(ledger) = self.ramp.asset_of_taproot(&id).await.map_err(transient)? {
            return match self.store.asset(&ledger).await.map_err(transient)? {
                Some(a) if a.enabled => Ok(Ok(ledger)),
                _ => unknown(format!("asset {id} is disabled on this relay")),
            };
        }
        match self.store.asset(&id).await.map_err(transient)? {
            // Issued on Ark without a Taproot Asset behind it (a wallet's
            // own asset, e.g. an LP token): nothing on Lightning to lift.
            Some(_) if self.issued_on_ark_alone(&id).await? => {
                return unknown(format!(
                    "asset {id} is not a Taproot Asset; it cannot be lifted"
                ));
            }
            Some(a) if a.enabled => return Ok(Ok(id)),
            Some(_) => return unknown(format!("asset {id} is disabled on this relay")),
            None => {}
        }
        if self
            .issuer
            .started(&taproot_genesis_lock(&id))
            .await
            .map_err(HandlerError::from)?
        {
            // Proven before; its genesis stopped half-way: finish it.
            return self.issue_on_ark(id).await;
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
        self.issue_on_ark(id).await
    }

    /// Whether ledger asset `id` was issued on Ark (its control asset is
    /// registered) without a Taproot Asset linked to it.
    async fn issued_on_ark_alone(&self, id: &AssetId) -> Result<bool, HandlerError> {
        let control = ark_relay_ark::asset::control_ledger_id(id);
        if self
            .store
            .asset(&control)
            .await
            .map_err(transient)?
            .is_none()
        {
            return Ok(false);
        }
        Ok(self
            .ramp
            .taproot_of_asset(id)
            .await
            .map_err(transient)?
            .is_none())
    }

    /// The genesis on Ark of the proven Taproot Asset `taproot` (resumed if
    /// it started), then its link; returns its ledger id, or why arkd or the
    /// inventory refused the genesis (nothing issued, nothing locked).
    async fn issue_on_ark(
        &self,
        taproot: AssetId,
    ) -> Result<Result<AssetId, Rejection>, HandlerError> {
        let short: String = taproot.to_string().chars().take(8).collect();
        let request = GenesisRequest {
            name: format!("Taproot Asset {short}"),
            ticker: short,
            decimals: 0,
            taproot_asset_id: Some(taproot),
            asset_type: AssetType::Permissionless,
        };
        let genesis = match self
            .issuer
            .genesis(&taproot_genesis_lock(&taproot), &request)
            .await
        {
            Ok(g) => g,
            Err(IssueError::Rejected(r)) => return Ok(Err(r)),
            Err(e) => return Err(e.into()),
        };
        self.ramp
            .link_taproot_asset(&genesis.asset, &taproot, self.clock.now())
            .await
            .map_err(transient)?;
        tracing::info!(asset = %genesis.asset, taproot_asset = %taproot, ark_txid = %genesis.ark_txid,
            "a permissionless Taproot Asset issued on Ark (genesis) from its proof");
        Ok(Ok(genesis.asset))
    }

    /// tapd's hold invoice for an asset lift (`AddInvoice` with `hodl_invoice`);
    /// its expiry is capped by the RFQ quote's.
    pub(super) async fn asset_hold_invoice(
        &self,
        lift: &mut LiftRecord,
    ) -> Result<String, LightningError> {
        use ark_relay_core::backends::assets::AssetInvoiceRequest;
        let Some(tapd) = &self.assets else {
            return Err(LightningError::new(
                BackendErrorKind::FailedPrecondition,
                "no tapd for an asset lift",
            ));
        };
        // tapd names the asset by its Taproot Asset id (the ledger's is its
        // genesis on Ark); an asset without a link is bridged (same id).
        let taproot = self
            .ramp
            .taproot_of_asset(&lift.asset)
            .await
            .map_err(|e| LightningError::new(BackendErrorKind::Unavailable, e.to_string()))?
            .unwrap_or(lift.asset);
        let inv = tapd
            .add_invoice(AssetInvoiceRequest {
                asset_id: taproot,
                asset_amount: AssetAmount::new(lift.amount),
                peer_pubkey: None,
                hodl_hash: Some(lift.hash),
                memo: format!("Ark Relay: lift {} units of {taproot}", lift.amount),
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
    pub(super) fn defer_lift(
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
    pub(super) async fn invoice_lift(
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

    pub(super) fn lift_scheme(lift: &LiftRecord) -> Scheme {
        match serde_json::from_str::<LiftData>(&lift.data) {
            Ok(d) if d.nip04 => Scheme::Nip04,
            _ => Scheme::Nip44,
        }
    }

    /// Cancels the invoice and ends the lift with `r` (the payer is refunded
    /// by Lightning itself).
    pub(super) async fn cancel_lift(
        &self,
        mut lift: LiftRecord,
        r: Rejection,
    ) -> Result<(), HandlerError> {
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
    pub(super) async fn drive_lift(&self, mut lift: LiftRecord) -> Result<(), HandlerError> {
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
}
