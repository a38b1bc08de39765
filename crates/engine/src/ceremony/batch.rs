//! Intake of atomic batches (`submit_batch`, PRD §5.2): several parties'
//! intents settled in **one** Ark transaction, or not at all, by the same
//! machine as a transfer with n parties.
//!
//! - The coordinator session's id is the 31500's event id (its `batch_id`
//!   column the request's hex); it owns every input lock. Each intent gets
//!   a party session (id = the intent's event id, same `batch_id`), so a
//!   wallet needs nothing but its intent to recognise its challenges; the
//!   runner keeps the party sessions in step with the coordinator.
//! - Before anything is locked the intents are validated again, checked
//!   for consistency (`protocol::batch`), checked against replays (1005),
//!   and the plan is tried without locking, so a batch that cannot be
//!   funded consumes nothing. Refusals before the challenges answer the
//!   submitter's 31501; afterwards every party and the submitter get a 31341.

use std::str::FromStr;

use ark_relay_ark::asset::control_ledger_id;
use ark_relay_ceremony::{Party, PartyRequest, Payment, Plan, PlannedOutput, Purpose};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, ErrorCode, EventId, NewAsset, NewOutboxEvent, PubKey,
    Recorded, SessionId, SessionRecord,
};
use ark_relay_protocol::batch::{check_batch, check_conservation};
use ark_relay_protocol::content::l2_asset_id;
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::{validate_intent, ValidIntent};
use ark_relay_protocol::names;
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr, Rejection};
use nostr::JsonUtil;

use super::data::{unstarted, BatchRequest, SessionData};
use super::{fatal, transient, Ceremony, CrashPoint};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

/// What a batch derives from its intents.
struct Derived {
    valid: Vec<ValidIntent>,
    requests: Vec<PartyRequest>,
    issued: Vec<Colour>,
    burned: Vec<Colour>,
    /// Minted L2 assets not registered yet: (id, ticker, issuer).
    new_assets: Vec<(AssetId, String, PubKey)>,
}

/// The coordinator of a batch party's session (`None`: not a batch party).
pub(crate) fn coordinator_id(s: &SessionRecord) -> Option<SessionId> {
    let batch = s.batch_id.as_deref()?;
    EventId::from_str(batch).ok().map(SessionId::from)
}

fn colours(list: &[Colour]) -> Vec<(AssetId, u64)> {
    list.iter().map(|c| (c.asset, c.amount.get())).collect()
}

impl Ceremony {
    /// A 31501 answering the batch request.
    pub(crate) fn batch_response(
        &self,
        b: &BatchRequest,
        response: &ServiceResponse,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let ev = builders::service_response(
            &self.runner.keys,
            &b.submitter,
            &b.request,
            response,
            b.scheme(),
        )
        .map_err(fatal)?;
        Ok(NewOutboxEvent {
            dedupe_key: format!("31501:{}", b.request),
            kind: ev.kind.as_u16(),
            recipient: Some(b.submitter),
            event_json: ev.as_json(),
        })
    }

    fn refuse_request(
        &self,
        inbound: &InboundJob,
        r: &Rejection,
    ) -> Result<JobOutcome, HandlerError> {
        tracing::info!(code = r.code.code(), reason = %r.message, "batch refused");
        let b = BatchRequest {
            request: event_id_from_nostr(&inbound.event.id),
            submitter: pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author"))?,
            batch_id: String::new(),
            nip04: inbound.answer_scheme() == Scheme::Nip04,
            intents: vec![],
        };
        let out = self.batch_response(&b, &ServiceResponse::err(b.request.to_string(), r))?;
        Ok(JobOutcome { outbox: vec![out] })
    }

    /// Ends a batch whose ceremony never started: its locks released, the
    /// submitter answered (31501 error), in one transaction.
    async fn fail_unstarted(
        &self,
        c: &SessionRecord,
        b: &BatchRequest,
        r: Rejection,
        expired: bool,
    ) -> Result<JobOutcome, HandlerError> {
        crate::metrics::intent_outcome("batch", Some(r.code));
        let out = self.batch_response(b, &ServiceResponse::err(b.request.to_string(), &r))?;
        self.runner
            .end_unstarted(c, &r, std::slice::from_ref(&out), expired)
            .await?;
        Ok(JobOutcome::default())
    }

    /// Validates the intents again (expiry moves on), checks the batch's
    /// consistency and resolves every asset.
    async fn derive(
        &self,
        events: &[nostr::Event],
    ) -> Result<Result<Derived, Rejection>, HandlerError> {
        let now = self.runner.clock.now();
        let mut valid = Vec::with_capacity(events.len());
        for (i, ev) in events.iter().enumerate() {
            match validate_intent(ev, &self.policy, now) {
                Ok(v) => valid.push(v),
                Err(r) => {
                    return Ok(Err(Rejection::new(
                        r.code,
                        format!("intents[{i}]: {}", r.message),
                    )))
                }
            }
        }
        let assets = self.runner.store.assets().await.map_err(transient)?;
        // Supply changes: of the author's bridged L2 asset (`l2_asset_id`,
        // registered on its first mint), or of an asset issued on Ark whose
        // control VTXO the author holds (its mint spends and re-creates it).
        let mut controls: Vec<Vec<ark_relay_core::Vtxo>> = Vec::with_capacity(valid.len());
        for (i, v) in valid.iter().enumerate() {
            match self.supply_controls(i, v, &assets).await? {
                Ok(c) => controls.push(c),
                Err(r) => return Ok(Err(r)),
            }
        }
        let minted: Vec<(AssetId, String, PubKey)> = valid
            .iter()
            .flat_map(|v| v.mint.iter().map(|m| (m.asset, m.ticker.clone(), v.author)))
            .filter(|(a, t, author)| *a == l2_asset_id(author, t))
            .collect();
        // A ticker names at most one asset; gBTC only the relay's (names.rs).
        let by_ticker = |t: &str| names::resolve(&assets, &AssetRef::Ticker(t.to_owned())).ok();
        for (id, ticker, _) in &minted {
            if !assets.iter().any(|a| a.id == *id) {
                if let Err(r) = names::check_new_ticker(&assets, ticker) {
                    return Ok(Err(r));
                }
            }
        }
        if let Some(o) = valid
            .iter()
            .flat_map(|v| v.outputs.iter())
            .find(|o| o.fee && !names::is_gbtc(&assets, &o.asset))
        {
            return Ok(Err(Rejection::new(
                ark_relay_core::ErrorCode::FeeOutput,
                format!("fee must be paid in gBTC, not {}", o.asset),
            )));
        }
        let resolve = |a: &AssetRef| -> Option<AssetId> {
            match a {
                AssetRef::Id(id) => assets
                    .iter()
                    .find(|x| &x.id == id && x.enabled)
                    .map(|x| x.id)
                    .or_else(|| minted.iter().find(|m| &m.0 == id).map(|m| m.0)),
                AssetRef::Ticker(t) if self.policy.is_fee_asset(a) => {
                    self.policy.fee_asset.or_else(|| by_ticker(t))
                }
                AssetRef::Ticker(t) => by_ticker(t),
            }
        };
        let summary = match check_batch(&valid, &self.policy, &resolve) {
            Ok(s) => s,
            Err(r) => return Ok(Err(r)),
        };
        let mut requests = Vec::with_capacity(valid.len());
        let mut issued = Vec::new();
        let mut burned = Vec::new();
        let col = |(a, n): (&AssetId, &u64)| Colour {
            asset: *a,
            amount: AssetAmount::new(*n),
        };
        for ((v, flows), held) in valid.iter().zip(&summary.parties).zip(&controls) {
            let mut payments = Vec::with_capacity(v.outputs.len());
            for o in &v.outputs {
                let asset = resolve(&o.asset).ok_or_else(|| fatal("resolved before"))?;
                payments.push(Payment {
                    recipient: o.recipient,
                    colour: Colour {
                        asset,
                        amount: AssetAmount::new(o.amount),
                    },
                    fee: o.fee,
                    burn: false,
                });
            }
            issued.extend(flows.mint.iter().map(col));
            burned.extend(flows.burn.iter().map(col));
            let mut draw = flows.draw.clone();
            for c in held.iter().filter_map(|c| c.colour) {
                // The control VTXO goes back to its holder (arkd's
                // reissuance rule: the control asset moves in the packet).
                payments.push(Payment::to(v.author, c));
                *draw.entry(c.asset).or_default() += c.amount.get();
            }
            let named = v.inputs.clone().map(|mut n| {
                for c in held {
                    if !n.contains(&c.id) {
                        n.push(c.id);
                    }
                }
                n
            });
            requests.push(PartyRequest {
                author: v.author,
                payments,
                draw,
                burn: flows.burn.clone(),
                named,
            });
        }
        let new_assets = minted
            .into_iter()
            .filter(|m| !assets.iter().any(|a| a.id == m.0))
            .collect();
        Ok(Ok(Derived {
            valid,
            requests,
            issued,
            burned,
            new_assets,
        }))
    }

    /// The control VTXOs intent `i` must spend for its `mint` entries, after
    /// checking that each supply change (mint or burn) is its author's to
    /// make: its bridged L2 asset (`l2_asset_id(author, ticker)`), or an
    /// asset issued on Ark whose control asset the author holds (3001
    /// otherwise; 2003 for an asset the relay does not know).
    async fn supply_controls(
        &self,
        i: usize,
        v: &ValidIntent,
        assets: &[ark_relay_core::Asset],
    ) -> Result<Result<Vec<ark_relay_core::Vtxo>, Rejection>, HandlerError> {
        let mut held: Option<Vec<ark_relay_core::Vtxo>> = None;
        let mut spend = Vec::new();
        let entries = v.mint.iter().map(|m| (m, true));
        for (s, mint) in entries.chain(v.burn.iter().map(|b| (b, false))) {
            if s.asset == l2_asset_id(&v.author, &s.ticker) {
                continue;
            }
            let control = control_ledger_id(&s.asset);
            if !assets.iter().any(|a| a.id == s.asset && a.enabled) {
                return Ok(Err(Rejection::new(
                    ErrorCode::UnknownVtxoOrAsset,
                    format!(
                        "intents[{i}]: asset {} is unknown; issue it first (issue_asset)",
                        s.asset
                    ),
                )));
            }
            let vtxos = match &held {
                Some(h) => h,
                None => held.insert(
                    self.runner
                        .store
                        .unspent_vtxos(&v.author)
                        .await
                        .map_err(transient)?,
                ),
            };
            let Some(c) = vtxos
                .iter()
                .find(|x| x.colour.is_some_and(|c| c.asset == control))
            else {
                return Ok(Err(Rejection::new(
                    ErrorCode::BatchInconsistent,
                    format!(
                        "intents[{i}]: only the holder of the control asset of {} ({}) may {} it; {} does not hold it",
                        s.ticker,
                        s.asset,
                        if mint { "mint" } else { "burn" },
                        v.author
                    ),
                )));
            };
            if mint && !spend.iter().any(|x: &ark_relay_core::Vtxo| x.id == c.id) {
                spend.push(c.clone());
            }
        }
        Ok(Ok(spend))
    }

    /// Whether an intent was already seen or used (1005).
    async fn replayed(&self, v: &ValidIntent) -> Result<Option<Rejection>, HandlerError> {
        let store = &self.runner.store;
        let replay = |msg: String| Some(Rejection::new(ErrorCode::ReplayedAction, msg));
        if store
            .processed_event(&v.event_id)
            .await
            .map_err(transient)?
            .is_some()
        {
            return Ok(replay(format!(
                "intent {} was already submitted to the relay",
                v.event_id
            )));
        }
        if let Some(s) = store
            .session(&SessionId::from(v.event_id))
            .await
            .map_err(transient)?
        {
            return Ok(replay(format!(
                "intent {} was already used{}",
                v.event_id,
                s.batch_id
                    .map(|b| format!(" in batch {b}"))
                    .unwrap_or_default()
            )));
        }
        if let Some(rec) = store
            .intent_by_action(&v.author, &v.action_id)
            .await
            .map_err(transient)?
        {
            if rec.event_id != v.event_id {
                return Ok(replay(format!(
                    "action_id {} was already used by event {}",
                    v.action_id, rec.event_id
                )));
            }
        }
        Ok(None)
    }

    /// Handles a `submit_batch` service request (job keyed by its event id).
    #[tracing::instrument(skip_all, fields(request = %inbound.event.id))]
    pub(crate) async fn on_submit_batch(
        &self,
        inbound: &InboundJob,
    ) -> Result<JobOutcome, HandlerError> {
        let store = &self.runner.store;
        let request = event_id_from_nostr(&inbound.event.id);
        let cid = SessionId::from(request);
        if let Some(c) = store.session(&cid).await.map_err(transient)? {
            return match SessionData::parse(&c)? {
                SessionData::Batch(b) if !c.status.is_final() => self.start_batch(c, b, None).await,
                _ => Ok(JobOutcome::default()),
            };
        }
        let plain = inbound
            .plaintext
            .as_deref()
            .ok_or_else(|| fatal("request without plaintext"))?;
        let (batch_id, intents) = match parse_request(plain) {
            Ok(ServiceRequest::SubmitBatch { batch_id, intents }) => (batch_id, intents),
            Ok(_) => return Err(fatal("not a submit_batch")),
            Err(r) => return self.refuse_request(inbound, &r),
        };
        let derived = match self.derive(&intents).await? {
            Ok(d) => d,
            Err(r) => return self.refuse_request(inbound, &r),
        };
        for (i, v) in derived.valid.iter().enumerate() {
            if let Some(r) = self.replayed(v).await? {
                let r = Rejection::new(r.code, format!("intents[{i}]: {}", r.message));
                return self.refuse_request(inbound, &r);
            }
        }
        // A dry run of the plan, so that a batch that cannot be funded
        // consumes nothing.
        let check = |p: &Plan| conserved(p, &derived);
        if let Err(r) = self
            .runner
            .plan_once(&cid, &derived.requests, &[], &check, 1)
            .await?
        {
            return self.refuse_request(inbound, &r);
        }
        let submitter = pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author"))?;
        let now = self.runner.clock.now();
        let b = BatchRequest {
            request,
            submitter,
            batch_id,
            nip04: inbound.answer_scheme() == Scheme::Nip04,
            intents,
        };
        let mut c = unstarted(
            cid,
            submitter,
            request,
            now,
            now.plus_secs(self.config.session_ttl_secs),
            &SessionData::Batch(b.clone()),
        )?;
        c.step_deadline = Some(now.plus_secs(self.config.step_timeout_secs));
        c.batch_id = Some(request.to_string());
        store.create_session(&c).await.map_err(transient)?;
        let Some(c) = store.session(&cid).await.map_err(transient)? else {
            return Err(transient("coordinator session vanished"));
        };
        if !matches!(SessionData::parse(&c)?, SessionData::Batch(_)) || c.status.is_final() {
            return Ok(JobOutcome::default());
        }
        // Consume the intents: a later publication of one is a duplicate.
        for v in &derived.valid {
            store
                .record_intent(&v.record(now))
                .await
                .map_err(transient)?;
        }
        for (id, ticker, issuer) in &derived.new_assets {
            let asset = NewAsset {
                id: *id,
                name: format!("{ticker} (L2 asset of {})", short(&issuer.to_string())),
                ticker: ticker.clone(),
                asset_type: AssetType::Permissionless,
                decimals: 0,
            };
            store.register_asset(&asset, now).await.map_err(transient)?;
        }
        self.start_batch(c, b, Some(derived)).await
    }

    /// Locks, builds, creates the party sessions and sends every party its
    /// step-1 challenge, with the accepted 31501, in one transition.
    /// `derived` is what the submit job just checked (`None` on a
    /// redelivery: derive again, the intents may have expired meanwhile).
    async fn start_batch(
        &self,
        c: SessionRecord,
        b: BatchRequest,
        derived: Option<Derived>,
    ) -> Result<JobOutcome, HandlerError> {
        let d = match derived {
            Some(d) => d,
            None => match self.derive(&b.intents).await? {
                Ok(d) => d,
                Err(r) => return self.fail_unstarted(&c, &b, r, false).await,
            },
        };
        let check = |p: &Plan| conserved(p, &d);
        let plan = match self
            .runner
            .plan_and_lock(&c.id, &d.requests, &[], &check)
            .await?
            .and_then(|p| crate::conditional::lock_positions(p, &d.valid, &self.runner.relay))
        {
            Ok(p) => p,
            Err(r) => return self.fail_unstarted(&c, &b, r, false).await,
        };
        let batch_key = b.request.to_string();
        let store = &self.runner.store;
        let now = self.runner.clock.now();
        let mut parties = Vec::with_capacity(d.valid.len());
        for (i, v) in d.valid.iter().enumerate() {
            let sid = SessionId::from(v.event_id);
            let mut s = unstarted(
                sid,
                v.author,
                v.event_id,
                now,
                c.expires_at.plus_secs(60),
                &SessionData::Party,
            )?;
            s.batch_id = Some(batch_key.clone());
            if store.create_session(&s).await.map_err(transient)? == Recorded::Duplicate {
                let ours = store
                    .session(&sid)
                    .await
                    .map_err(transient)?
                    .and_then(|e| e.batch_id)
                    == Some(batch_key.clone());
                if !ours {
                    let r = Rejection::new(
                        ErrorCode::ReplayedAction,
                        format!("intent {} is already used by another session", v.event_id),
                    );
                    return self.fail_unstarted(&c, &b, r, false).await;
                }
            }
            parties.push(Party {
                author: v.author,
                intent: v.event_id,
                session: sid,
                span: plan.spans[i],
                signed: false,
                summary: format!(
                    "atomic batch {} ({} parties): {}",
                    b.batch_id,
                    d.valid.len(),
                    describe_party(&plan.outputs, i, &v.author)
                ),
                one_step: v.one_step,
            });
        }
        let sessions: Vec<serde_json::Value> = parties
            .iter()
            .map(|p| {
                serde_json::json!({"intent": p.intent, "session_id": p.session, "author": p.author})
            })
            .collect();
        let n = parties.len();
        // The ark txid is known once built; the 31501 names it.
        let accepted = |ark_txid: String| {
            ServiceResponse::ok(
                b.request.to_string(),
                serde_json::json!({
                    "batch_id": b.batch_id,
                    "status": "signing",
                    "ark_txid": ark_txid,
                    "sessions": sessions,
                }),
            )
        };
        let purpose = Purpose::Batch {
            request: b.request,
            submitter: b.submitter,
            batch_id: b.batch_id.clone(),
            nip04: b.nip04,
        };
        let extra = |txid: bitcoin::Txid| -> Result<Vec<NewOutboxEvent>, HandlerError> {
            Ok(vec![self.batch_response(&b, &accepted(txid.to_string()))?])
        };
        if self
            .runner
            .start_over(c, purpose, parties, plan, d.issued, &extra)
            .await?
        {
            tracing::info!(batch = %b.request, parties = n, "batch challenges sent");
            self.runner.crash_at(CrashPoint::AfterChallenge)?;
        }
        Ok(JobOutcome::default())
    }
}

/// Colour is conserved per asset by the plan, given what is minted and burned.
fn conserved(p: &Plan, d: &Derived) -> Result<(), Rejection> {
    let ins: Vec<(AssetId, u64)> = p
        .inputs
        .iter()
        .filter_map(|v| v.colour)
        .map(|c| (c.asset, c.amount.get()))
        .collect();
    let outs: Vec<(AssetId, u64)> = p
        .outputs
        .iter()
        .filter_map(|o| o.colour)
        .map(|c| (c.asset, c.amount.get()))
        .collect();
    check_conservation(&ins, &outs, &colours(&d.issued), &colours(&d.burned))
}

fn describe_party(outputs: &[PlannedOutput], i: usize, me: &PubKey) -> String {
    let pays: Vec<String> = outputs
        .iter()
        .filter(|o| o.party == Some(i) && o.owner != *me)
        .filter_map(|o| o.hint.map(|h| (o.owner, h)))
        .map(|(to, h)| {
            format!(
                "{} of {} to {}",
                h.amount.get(),
                short(&h.asset.to_string()),
                short(&to.to_string())
            )
        })
        .collect();
    let gets: Vec<String> = outputs
        .iter()
        .filter(|o| o.party != Some(i) && o.owner == *me)
        .filter_map(|o| o.hint)
        .map(|h| format!("{} of {}", h.amount.get(), short(&h.asset.to_string())))
        .collect();
    format!(
        "you pay {}; you receive {}",
        pays.join(", "),
        gets.join(", ")
    )
}
