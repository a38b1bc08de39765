//! Atomic batches (`submit_batch`, PRD §5.2, issue 7): several parties'
//! intents settled in **one** Ark transaction, or not at all.
//!
//! - **Coordinator.** A batch is one coordinator session (id = the 31500's
//!   event id; `batch_id` column = its hex) that holds the whole plan, the
//!   ark tx and the checkpoints, and every input lock (parties' VTXOs and the
//!   relay's inventory). Its state follows the transfer's names
//!   (`intent_received → ark_tx_prepared → ark_tx_signed →
//!   checkpoint_txs_prepared → signatures_collected → completed`), and every
//!   transition is one optimistic `update_session` with its outgoing events.
//! - **Parties.** Each intent gets its own signing session (id = the intent's
//!   event id, so a wallet needs nothing but its intent to recognise it,
//!   same `batch_id`), which records that party's verified signatures. A
//!   party's 31511 carries the **whole** ark tx and colour hints for every
//!   output, so each wallet checks its own legs; it signs only its inputs.
//! - **All or nothing.** The coordinator advances only when every party has
//!   signed the step; `SubmitTx` happens once, with every signature. A
//!   reject, a bad signature or a timeout before `SubmitTx` releases every
//!   lock and sends every party a 31341 (3001 reject, 5002 bad signature,
//!   3002 timeout) and the submitter one for its request; nothing moves.
//! - **Crash safety.** Each transition is persisted before its side effect; a
//!   redelivered job, a late response or the expiry scan continues the batch
//!   from the coordinator's record, or fails it as a whole.
//! - **Replay.** An intent is usable once: an intent the relay has seen
//!   (published alone or in an earlier batch) is refused with 1005, before
//!   anything is locked; a race between two batches is settled by the unique
//!   party session id.

pub mod plan;

use std::str::FromStr;

use ark_relay_ark::{
    add_signature, build_offchain_tx, is_fully_signed, missing_signers, sign_requests,
    verify_signatures, Output, ServerInfo, VtxoInput,
};
use ark_relay_core::{
    AssetId, AssetType, Colour, CommitOutcome, ErrorCode, EventId, L2Transaction, NewAsset,
    NewOutboxEvent, PubKey, Recorded, SessionId, SessionRecord, SessionStatus, Vtxo, VtxoId,
};
use ark_relay_protocol::batch::{check_batch, check_conservation};
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, ColourHint, Confirmation, PayloadToSign,
    SignRequest as WireSignRequest, SigningChallenge, SigningResponse, VtxoEntry, VERSION,
};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::{validate_intent, ValidIntent};
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, event_id_from_nostr, pubkey_from_nostr, Rejection};
use bitcoin::secp256k1::schnorr;
use bitcoin::Psbt;
use nostr::JsonUtil;
use serde::{Deserialize, Serialize};

pub use plan::{plan_batch, BatchOutput, BatchPlan, PartyPayment, PartyRequest, PartySpan};

use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;
use crate::transfer::{state, Ceremony, CrashPoint, RECONCILE_AFTER_SECS};

/// Free inventory VTXOs considered per batch plan.
const INVENTORY_WINDOW: u32 = 32;

fn fatal(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

fn psbt(s: &str) -> Result<Psbt, HandlerError> {
    Psbt::from_str(s).map_err(|e| HandlerError::Fatal(format!("stored PSBT: {e}")))
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

/// One party of a planned batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Party {
    author: PubKey,
    intent: EventId,
    session: SessionId,
    span: PartySpan,
}

/// The coordinator's record (JSON in its `session_data`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BatchData {
    request: EventId,
    submitter: PubKey,
    batch_id: String,
    /// The scheme of the 31500 (`nip04` / `nip44_v2`), for answers to it.
    scheme: Option<String>,
    /// The signed intents as submitted.
    intents: Vec<nostr::Event>,
    #[serde(default)]
    parties: Vec<Party>,
    #[serde(default)]
    inputs: Vec<Vtxo>,
    /// How many of `inputs` (at the end) are the relay's.
    #[serde(default)]
    inventory: usize,
    #[serde(default)]
    outputs: Vec<BatchOutput>,
    #[serde(default)]
    issued: Vec<Colour>,
    #[serde(default)]
    burned: Vec<Colour>,
    #[serde(default)]
    ark_tx: String,
    #[serde(default)]
    checkpoints: Vec<String>,
}

impl BatchData {
    fn scheme(&self) -> Scheme {
        match self.scheme.as_deref() {
            Some("nip04") => Scheme::Nip04,
            _ => Scheme::Nip44,
        }
    }
}

/// A party session's record: its verified signatures per step, as
/// `(psbt_index, input_index, sig hex)` (step 2 indexes its own checkpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PartyData {
    #[serde(default)]
    step1: Vec<(u32, u32, String)>,
    #[serde(default)]
    step2: Vec<(u32, u32, String)>,
}

/// What a batch derives from its intents.
struct Derived {
    requests: Vec<PartyRequest>,
    issued: Vec<Colour>,
    burned: Vec<Colour>,
    /// Minted L2 assets not registered yet: (id, ticker, issuer).
    new_assets: Vec<(AssetId, String, PubKey)>,
}

/// Whether an ingest job is a `submit_batch` request.
pub fn is_submit_batch(inbound: &InboundJob) -> bool {
    inbound
        .plaintext
        .as_deref()
        .is_some_and(|p| matches!(parse_request(p), Ok(ServiceRequest::SubmitBatch { .. })))
}

fn coordinator_id(s: &SessionRecord) -> Option<SessionId> {
    let batch = s.batch_id.as_deref()?;
    EventId::from_str(batch).ok().map(SessionId::from)
}

fn sig_hex(s: &str) -> Result<schnorr::Signature, ()> {
    schnorr::Signature::from_str(s).map_err(|_| ())
}

fn colours(list: &[Colour]) -> Vec<(AssetId, u64)> {
    list.iter().map(|c| (c.asset, c.amount.get())).collect()
}

impl Ceremony {
    /// A 31501 answering the batch request.
    fn batch_response(
        &self,
        data: &BatchData,
        response: &ServiceResponse,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let ev = builders::service_response(
            &self.keys,
            &data.submitter,
            &data.request,
            response,
            data.scheme(),
        )
        .map_err(fatal)?;
        Ok(NewOutboxEvent {
            dedupe_key: format!("31501:{}", data.request),
            kind: ev.kind.as_u16(),
            recipient: Some(data.submitter),
            event_json: ev.as_json(),
        })
    }

    fn refuse_request(
        &self,
        inbound: &InboundJob,
        r: &Rejection,
    ) -> Result<JobOutcome, HandlerError> {
        tracing::info!(code = r.code.code(), reason = %r.message, "batch refused");
        let submitter = pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author"))?;
        let request = event_id_from_nostr(&inbound.event.id);
        let data = BatchData {
            request,
            submitter,
            batch_id: String::new(),
            scheme: inbound.scheme.clone(),
            intents: vec![],
            parties: vec![],
            inputs: vec![],
            inventory: 0,
            outputs: vec![],
            issued: vec![],
            burned: vec![],
            ark_tx: String::new(),
            checkpoints: vec![],
        };
        let out = self.batch_response(&data, &ServiceResponse::err(request.to_string(), r))?;
        Ok(JobOutcome { outbox: vec![out] })
    }

    /// Validates the intents again (expiry moves on), checks the batch's
    /// consistency and resolves every asset.
    async fn derive(
        &self,
        events: &[nostr::Event],
    ) -> Result<Result<(Vec<ValidIntent>, Derived), Rejection>, HandlerError> {
        let now = self.clock.now();
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
        let assets = self.store.assets().await.map_err(transient)?;
        let minted: Vec<(AssetId, String, PubKey)> = valid
            .iter()
            .flat_map(|v| v.mint.iter().map(|m| (m.asset, m.ticker.clone(), v.author)))
            .collect();
        let resolve = |a: &AssetRef| -> Option<AssetId> {
            match a {
                AssetRef::Id(id) => assets
                    .iter()
                    .find(|x| &x.id == id && x.enabled)
                    .map(|x| x.id)
                    .or_else(|| minted.iter().find(|m| &m.0 == id).map(|m| m.0)),
                AssetRef::Ticker(t) if self.policy.is_fee_asset(a) => {
                    self.policy.fee_asset.or_else(|| {
                        assets
                            .iter()
                            .find(|x| &x.ticker == t && x.enabled)
                            .map(|x| x.id)
                    })
                }
                AssetRef::Ticker(t) => assets
                    .iter()
                    .find(|x| &x.ticker == t && x.enabled)
                    .map(|x| x.id),
            }
        };
        let summary = match check_batch(&valid, &self.policy, &resolve) {
            Ok(s) => s,
            Err(r) => return Ok(Err(r)),
        };
        let mut requests = Vec::with_capacity(valid.len());
        let mut issued = Vec::new();
        let mut burned = Vec::new();
        for (v, flows) in valid.iter().zip(&summary.parties) {
            let mut payments = Vec::with_capacity(v.outputs.len());
            for o in &v.outputs {
                let asset = resolve(&o.asset).ok_or_else(|| fatal("resolved before"))?;
                payments.push(PartyPayment {
                    recipient: o.recipient,
                    colour: Colour {
                        asset,
                        amount: ark_relay_core::AssetAmount::new(o.amount),
                    },
                    fee: o.fee,
                });
            }
            let col = |(a, n): (&AssetId, &u64)| Colour {
                asset: *a,
                amount: ark_relay_core::AssetAmount::new(*n),
            };
            issued.extend(flows.mint.iter().map(col));
            burned.extend(flows.burn.iter().map(col));
            requests.push(PartyRequest {
                author: v.author,
                payments,
                draw: flows.draw.clone(),
                burn: flows.burn.clone(),
                named: v.inputs.clone(),
            });
        }
        let new_assets = minted
            .into_iter()
            .filter(|m| !assets.iter().any(|a| a.id == m.0))
            .collect();
        Ok(Ok((
            valid,
            Derived {
                requests,
                issued,
                burned,
                new_assets,
            },
        )))
    }

    /// Whether an intent was already seen or used (1005).
    async fn replayed(&self, v: &ValidIntent) -> Result<Option<Rejection>, HandlerError> {
        let replay = |msg: String| Some(Rejection::new(ErrorCode::ReplayedAction, msg));
        if self
            .store
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
        if let Some(s) = self
            .store
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
        if let Some(rec) = self
            .store
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
        let request = event_id_from_nostr(&inbound.event.id);
        let cid = SessionId::from(request);
        if let Some(c) = self.store.session(&cid).await.map_err(transient)? {
            return if c.state == state::INTENT_RECEIVED {
                self.start_batch(c, None).await
            } else {
                Ok(JobOutcome::default())
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
        let (valid, derived) = match self.derive(&intents).await? {
            Ok(d) => d,
            Err(r) => return self.refuse_request(inbound, &r),
        };
        for (i, v) in valid.iter().enumerate() {
            if let Some(r) = self.replayed(v).await? {
                let r = Rejection::new(r.code, format!("intents[{i}]: {}", r.message));
                return self.refuse_request(inbound, &r);
            }
        }
        // A dry run of the plan, so that a batch that cannot be funded
        // consumes nothing.
        let server = self.server_info().await?.clone();
        if let Err(r) = self.plan(&cid, &derived, &server, None).await? {
            return self.refuse_request(inbound, &r);
        }

        let submitter = pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author"))?;
        let now = self.clock.now();
        let data = BatchData {
            request,
            submitter,
            batch_id,
            scheme: inbound.scheme.clone(),
            intents,
            parties: vec![],
            inputs: vec![],
            inventory: 0,
            outputs: vec![],
            issued: vec![],
            burned: vec![],
            ark_tx: String::new(),
            checkpoints: vec![],
        };
        let c = SessionRecord {
            id: cid,
            user: submitter,
            intent: request,
            status: SessionStatus::Pending,
            state: state::INTENT_RECEIVED.into(),
            current_step: None,
            steps_completed: vec![],
            created_at: now,
            updated_at: now,
            expires_at: now.plus_secs(self.config.session_ttl_secs),
            step_deadline: Some(now.plus_secs(self.config.step_timeout_secs)),
            error_code: None,
            error_message: None,
            data: serde_json::to_string(&data).map_err(fatal)?,
            batch_id: Some(request.to_string()),
            ark_txid: None,
            version: 0,
        };
        self.store.create_session(&c).await.map_err(transient)?;
        let Some(c) = self.store.session(&cid).await.map_err(transient)? else {
            return Err(transient("coordinator session vanished"));
        };
        if c.state != state::INTENT_RECEIVED {
            return Ok(JobOutcome::default());
        }
        // Consume the intents: a later publication of one is a duplicate.
        for v in &valid {
            self.store
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
            self.store
                .register_asset(&asset, now)
                .await
                .map_err(transient)?;
        }
        self.start_batch(c, Some((valid, derived))).await
    }

    /// Plans the batch; with `lock`, locks every input for the coordinator
    /// (re-planning when another session took an inventory VTXO first).
    async fn plan(
        &self,
        cid: &SessionId,
        d: &Derived,
        server: &ServerInfo,
        lock: Option<()>,
    ) -> Result<Result<BatchPlan, Rejection>, HandlerError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut vtxos = Vec::with_capacity(d.requests.len());
            for p in &d.requests {
                vtxos.push(
                    self.store
                        .unspent_vtxos(&p.author)
                        .await
                        .map_err(transient)?,
                );
            }
            let spread = u32::from(cid.as_bytes()[0]) * 8 + attempt * 37;
            let mut inventory = self
                .store
                .free_inventory(&self.relay, spread % 256, INVENTORY_WINDOW)
                .await
                .map_err(transient)?;
            if inventory.is_empty() {
                inventory = self
                    .store
                    .free_inventory(&self.relay, 0, INVENTORY_WINDOW)
                    .await
                    .map_err(transient)?;
            }
            let plan = match plan_batch(&d.requests, &vtxos, &inventory, &self.relay, server.dust())
            {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            let ins: Vec<(AssetId, u64)> = plan
                .inputs
                .iter()
                .filter_map(|v| v.colour)
                .map(|c| (c.asset, c.amount.get()))
                .collect();
            let outs: Vec<(AssetId, u64)> = plan
                .outputs
                .iter()
                .filter_map(|o| o.colour)
                .map(|c| (c.asset, c.amount.get()))
                .collect();
            if let Err(r) =
                check_conservation(&ins, &outs, &colours(&d.issued), &colours(&d.burned))
            {
                return Ok(Err(r));
            }
            if lock.is_none() {
                return Ok(Ok(plan));
            }
            let ids: Vec<VtxoId> = plan.inputs.iter().map(|v| v.id).collect();
            match self.store.lock_vtxos(&ids, cid, self.clock.now()).await {
                Ok(()) => return Ok(Ok(plan)),
                // Another session took (or spent) an inventory VTXO first: plan again.
                Err(ark_relay_core::StoreError::Ledger(
                    ark_relay_core::LedgerError::Locked { vtxo, .. }
                    | ark_relay_core::LedgerError::AlreadySpent(vtxo),
                )) if attempt < 16
                    && plan.inputs[plan.inputs.len() - plan.inventory..]
                        .iter()
                        .any(|v| v.id == vtxo) => {}
                Err(ark_relay_core::StoreError::Ledger(e)) => return Ok(Err(e.into())),
                Err(e) => return Err(transient(e)),
            }
        }
    }

    /// Locks, builds, creates the party sessions and sends every party its
    /// step-1 challenge, with the accepted 31501, in one transition. `derived`
    /// is what the submit job just checked (`None` on a redelivery: derive
    /// again, the intents may have expired meanwhile).
    async fn start_batch(
        &self,
        c: SessionRecord,
        derived: Option<(Vec<ValidIntent>, Derived)>,
    ) -> Result<JobOutcome, HandlerError> {
        let mut data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        let (valid, derived) = match derived {
            Some(d) => d,
            None => match self.derive(&data.intents).await? {
                Ok(d) => d,
                Err(r) => return self.fail_batch(c, r, false).await,
            },
        };
        let server = self.server_info().await?.clone();
        // A redelivered job may find its own locks: plan again from scratch.
        self.store.release_locks(&c.id).await.map_err(transient)?;
        let plan = match self.plan(&c.id, &derived, &server, Some(())).await? {
            Ok(p) => p,
            Err(r) => return self.fail_batch(c, r, false).await,
        };
        self.crash_at(CrashPoint::AfterLock)?;

        let inputs: Vec<VtxoInput> = plan
            .inputs
            .iter()
            .map(|v| VtxoInput::from_vtxo(v, &server))
            .collect::<Result<_, _>>()
            .map_err(fatal)?;
        let outputs: Vec<Output> = plan
            .outputs
            .iter()
            .map(|o| Output::Vtxo {
                owner: o.owner,
                sats: o.sats,
            })
            .collect();
        let mut tx = build_offchain_tx(&server, &inputs, &outputs).map_err(fatal)?;
        crate::audit::sign_psbt(&mut tx.ark_tx, &self.keypair, "ark_tx", &c.id, None)
            .map_err(fatal)?;
        let mut hints: Vec<ColourHint> = plan
            .outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.hint.map(|h| ColourHint {
                    psbt_index: 0,
                    output_index: u32::try_from(i).unwrap_or(u32::MAX),
                    owner: o.owner.to_string(),
                    asset: AssetRef::Id(h.asset),
                    amount: h.amount.get(),
                })
            })
            .collect();
        if let Some(tamper) = &self.tamper {
            tamper(&mut tx.ark_tx, &mut hints);
        }
        let ark_txid = tx.ark_tx.unsigned_tx.compute_txid();
        let batch_key = request_key(&data);

        // The party sessions (their ids are the intents' ids: unique forever).
        let now = self.clock.now();
        let mut parties = Vec::with_capacity(valid.len());
        for (v, span) in valid.iter().zip(&plan.spans) {
            let sid = SessionId::from(v.event_id);
            let s = SessionRecord {
                id: sid,
                user: v.author,
                intent: v.event_id,
                status: SessionStatus::Active,
                state: state::ARK_TX_PREPARED.into(),
                current_step: Some("sign_ark_tx".into()),
                steps_completed: vec![state::INTENT_RECEIVED.into()],
                created_at: now,
                updated_at: now,
                expires_at: c.expires_at.plus_secs(60),
                step_deadline: None,
                error_code: None,
                error_message: None,
                data: serde_json::to_string(&PartyData::default()).map_err(fatal)?,
                batch_id: Some(batch_key.clone()),
                ark_txid: Some(ark_txid),
                version: 0,
            };
            if self.store.create_session(&s).await.map_err(transient)? == Recorded::Duplicate {
                let existing = self.store.session(&sid).await.map_err(transient)?;
                let ours = existing.as_ref().and_then(|e| e.batch_id.as_deref())
                    == Some(batch_key.as_str());
                if !ours {
                    let r = Rejection::new(
                        ErrorCode::ReplayedAction,
                        format!("intent {} is already used by another session", v.event_id),
                    );
                    return self.fail_batch(c, r, false).await;
                }
                if let Some(mut e) = existing {
                    // Ours from a run that died before the challenges: reset it.
                    e.state = state::ARK_TX_PREPARED.into();
                    e.ark_txid = Some(ark_txid);
                    e.data = s.data.clone();
                    self.store
                        .update_session(&e, &[], now)
                        .await
                        .map_err(transient)?;
                }
            }
            parties.push(Party {
                author: v.author,
                intent: v.event_id,
                session: sid,
                span: *span,
            });
        }

        let deadline = now
            .plus_secs(self.config.step_timeout_secs)
            .min(c.expires_at);
        let psbts = vec![tx.ark_tx.to_string()];
        let mut outbox = Vec::with_capacity(parties.len() + 1);
        for (i, p) in parties.iter().enumerate() {
            let sign = sign_requests(std::slice::from_ref(&tx.ark_tx), &p.author).map_err(fatal)?;
            let context = format!(
                "Step 1/2: atomic batch {} ({} parties): {}",
                data.batch_id,
                parties.len(),
                describe_party(&plan, i, &p.author)
            );
            outbox.push(self.party_challenge(
                p,
                1,
                ChallengeType::SignArkTx,
                psbts.clone(),
                sign,
                hints.clone(),
                context,
                deadline.0,
            )?);
        }
        let sessions: Vec<serde_json::Value> = parties
            .iter()
            .map(|p| {
                serde_json::json!({"intent": p.intent, "session_id": p.session, "author": p.author})
            })
            .collect();
        let accepted = ServiceResponse::ok(
            data.request.to_string(),
            serde_json::json!({
                "batch_id": data.batch_id,
                "status": "signing",
                "ark_txid": ark_txid.to_string(),
                "sessions": sessions,
            }),
        );
        data.parties = parties;
        data.inventory = plan.inventory;
        data.inputs = plan.inputs;
        data.outputs = plan.outputs;
        data.issued = derived.issued;
        data.burned = derived.burned;
        data.ark_tx = tx.ark_tx.to_string();
        data.checkpoints = tx.checkpoints.iter().map(|p| p.to_string()).collect();
        outbox.push(self.batch_response(&data, &accepted)?);

        let mut c = c;
        c.steps_completed.push(c.state.clone());
        c.status = SessionStatus::Active;
        c.state = state::ARK_TX_PREPARED.into();
        c.current_step = Some("sign_ark_tx".into());
        c.step_deadline = Some(deadline);
        c.ark_txid = Some(ark_txid);
        c.data = serde_json::to_string(&data).map_err(fatal)?;
        if !self
            .store
            .update_session(&c, &outbox, now)
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        tracing::info!(batch = %c.id, %ark_txid, parties = data.parties.len(), "batch challenges sent");
        self.crash_at(CrashPoint::AfterChallenge)?;
        Ok(JobOutcome::default())
    }

    #[allow(clippy::too_many_arguments)]
    fn party_challenge(
        &self,
        p: &Party,
        step: u32,
        kind: ChallengeType,
        psbts: Vec<String>,
        sign: Vec<ark_relay_ark::SignRequest>,
        colour: Vec<ColourHint>,
        context: String,
        expires_at: i64,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let challenge = SigningChallenge {
            v: VERSION,
            session_id: p.session,
            step,
            challenge_type: kind,
            payload_to_sign: PayloadToSign {
                psbts,
                sign: sign
                    .into_iter()
                    .map(|r| WireSignRequest {
                        psbt_index: u32::try_from(r.psbt_index).unwrap_or(u32::MAX),
                        input_index: u32::try_from(r.input_index).unwrap_or(u32::MAX),
                        pubkey: r.pubkey.to_string(),
                        leaf_hash: r.leaf_hash.to_string(),
                        sighash: r.sighash.to_string(),
                    })
                    .collect(),
                colour,
            },
            human_readable_context: context,
            expires_at,
        };
        let ev = builders::signing_challenge(
            &self.keys,
            &p.author,
            &p.intent,
            &challenge,
            Scheme::Nip44,
        )
        .map_err(fatal)?;
        Ok(NewOutboxEvent {
            dedupe_key: format!("31511:{}:{step}", p.session),
            kind: ev.kind.as_u16(),
            recipient: Some(p.author),
            event_json: ev.as_json(),
        })
    }

    /// Routes a 31512 to the batch it belongs to; `None` if the session is
    /// not a batch party's (the transfer ceremony then handles it).
    pub(crate) async fn batch_signing_response(
        &self,
        inbound: &InboundJob,
    ) -> Result<Option<JobOutcome>, HandlerError> {
        let Some(plain) = inbound.plaintext.as_deref() else {
            return Ok(None);
        };
        let Ok(resp) = serde_json::from_str::<SigningResponse>(plain) else {
            return Ok(None);
        };
        let Some(party) = self
            .store
            .session(&resp.session_id)
            .await
            .map_err(transient)?
        else {
            return Ok(None);
        };
        let responder = pubkey_from_nostr(&inbound.event.pubkey);
        if party.batch_id.is_none() || responder != Some(party.user) {
            return Ok(None);
        }
        self.on_batch_response(inbound, resp, party).await.map(Some)
    }

    #[tracing::instrument(skip_all, fields(session = %party.id, step = resp.step))]
    async fn on_batch_response(
        &self,
        inbound: &InboundJob,
        resp: SigningResponse,
        mut party: SessionRecord,
    ) -> Result<JobOutcome, HandlerError> {
        let unknown = |msg: &str| {
            let r = Rejection::new(ErrorCode::UnknownSession, msg.to_owned());
            self.base
                .failure(inbound, &r, inbound.answer_scheme())
                .map(|o| JobOutcome { outbox: vec![o] })
        };
        let cid = coordinator_id(&party).ok_or_else(|| fatal("batch id"))?;
        let Some(c) = self.store.session(&cid).await.map_err(transient)? else {
            return unknown("the batch of this session does not exist");
        };
        let expected = match c.state.as_str() {
            state::ARK_TX_PREPARED => 1,
            state::CHECKPOINT_TXS_PREPARED => 2,
            state::ARK_TX_SIGNED | state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                return self.reconcile_if_stuck(c).await;
            }
            _ if c.status.is_final() || resp.step < 2 => return Ok(JobOutcome::default()),
            _ => return unknown("the batch is not waiting for this step"),
        };
        if resp.step != expected {
            if resp.step < expected {
                return Ok(JobOutcome::default());
            }
            return unknown("the batch is not at this step yet");
        }
        let data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        let Some((idx, p)) = data
            .parties
            .iter()
            .enumerate()
            .find(|(_, p)| p.session == party.id)
        else {
            return unknown("this session is not a party of its batch");
        };
        let signed_state = if expected == 1 {
            state::ARK_TX_SIGNED
        } else {
            state::SIGNATURES_COLLECTED
        };
        if party.state == signed_state {
            // A duplicate (or a redelivery after a crash): just try to advance.
            return self.advance(cid, expected).await;
        }
        let who = format!("party {idx} ({})", short(&p.author.to_string()));
        if let Some(reason) = &resp.reject {
            let r = Rejection::new(
                ErrorCode::BatchInconsistent,
                format!("{who} refused to sign: {reason}"),
            );
            return if expected == 1 {
                self.fail_batch(c, r, false).await
            } else {
                self.abandon_batch(c, r).await
            };
        }
        let bad = |msg: String| Rejection::new(ErrorCode::InvalidResponseSignature, msg);
        let mut sigs = Vec::with_capacity(resp.signatures.len());
        for e in &resp.signatures {
            match sig_hex(&e.sig) {
                Ok(sig) => sigs.push((e.psbt_index, e.input_index, sig)),
                Err(()) => {
                    let r = bad(format!("{who}: a signature is not 64 bytes of hex"));
                    return if expected == 1 {
                        self.fail_batch(c, r, false).await
                    } else {
                        self.abandon_batch(c, r).await
                    };
                }
            }
        }
        let author = *p.author.x_only();
        let span = p.span;
        let verdict = if expected == 1 {
            let mut tx = psbt(&data.ark_tx)?;
            let mut err = None;
            for (pi, ii, sig) in &sigs {
                let i = *ii as usize;
                let ours = *pi == 0 && i >= span.first_input && i < span.first_input + span.inputs;
                if !ours || add_signature(&mut tx, i, &author, *sig).is_err() {
                    err = Some(bad(format!(
                        "{who}: signature for input {i} does not verify"
                    )));
                    break;
                }
            }
            if err.is_none() {
                for i in span.first_input..span.first_input + span.inputs {
                    if missing_signers(&tx, i).map_err(fatal)?.contains(&author) {
                        err = Some(bad(format!("{who}: input {i} is not signed")));
                        break;
                    }
                }
            }
            err
        } else {
            let mut cps: Vec<Psbt> = data.checkpoints
                [span.first_input..span.first_input + span.inputs]
                .iter()
                .map(|c| psbt(c))
                .collect::<Result<_, _>>()?;
            let mut err = None;
            for (pi, ii, sig) in &sigs {
                let k = *pi as usize;
                let ok = k < cps.len()
                    && *ii == 0
                    && add_signature(&mut cps[k], 0, &author, *sig).is_ok();
                if !ok {
                    err = Some(bad(format!(
                        "{who}: checkpoint signature {pi} does not verify"
                    )));
                    break;
                }
            }
            if err.is_none() {
                for (k, cp) in cps.iter().enumerate() {
                    if missing_signers(cp, 0).map_err(fatal)?.contains(&author) {
                        err = Some(bad(format!("{who}: checkpoint {k} is not signed")));
                        break;
                    }
                }
            }
            err
        };
        if let Some(r) = verdict {
            return if expected == 1 {
                self.fail_batch(c, r, false).await
            } else {
                self.abandon_batch(c, r).await
            };
        }
        let mut pd: PartyData = serde_json::from_str(&party.data).unwrap_or_default();
        let wire: Vec<(u32, u32, String)> = sigs
            .iter()
            .map(|(p, i, s)| (*p, *i, s.to_string()))
            .collect();
        if expected == 1 {
            pd.step1 = wire;
        } else {
            pd.step2 = wire;
        }
        party.steps_completed.push(party.state.clone());
        party.state = signed_state.into();
        party.current_step = None;
        party.data = serde_json::to_string(&pd).map_err(fatal)?;
        if !self
            .store
            .update_session(&party, &[], self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        crate::metrics::step_since(crate::metrics::step::CHALLENGE_TO_RESPONSE, c.updated_at);
        self.crash_at(CrashPoint::BetweenPartySignatures)?;
        self.advance(cid, expected).await
    }

    /// Moves the batch past `step` once every party has signed it.
    async fn advance(&self, cid: SessionId, step: u32) -> Result<JobOutcome, HandlerError> {
        let Some(mut c) = self.store.session(&cid).await.map_err(transient)? else {
            return Ok(JobOutcome::default());
        };
        let waiting = if step == 1 {
            state::ARK_TX_PREPARED
        } else {
            state::CHECKPOINT_TXS_PREPARED
        };
        if c.state != waiting {
            return match c.state.as_str() {
                state::ARK_TX_SIGNED | state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                    self.reconcile_if_stuck(c).await
                }
                _ => Ok(JobOutcome::default()),
            };
        }
        let mut data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        let signed_state = if step == 1 {
            state::ARK_TX_SIGNED
        } else {
            state::SIGNATURES_COLLECTED
        };
        let mut all = Vec::with_capacity(data.parties.len());
        for p in &data.parties {
            match self.store.session(&p.session).await.map_err(transient)? {
                Some(s) if s.state == signed_state => {
                    all.push(serde_json::from_str::<PartyData>(&s.data).unwrap_or_default())
                }
                _ => return Ok(JobOutcome::default()), // someone has not signed yet
            }
        }
        let now = self.clock.now();
        if step == 1 {
            let mut tx = psbt(&data.ark_tx)?;
            for (p, pd) in data.parties.iter().zip(&all) {
                for (_, i, sig) in &pd.step1 {
                    let sig = sig_hex(sig).map_err(|()| fatal("stored signature"))?;
                    add_signature(&mut tx, *i as usize, p.author.x_only(), sig).map_err(fatal)?;
                }
            }
            let checkpoints: Vec<Psbt> = data
                .checkpoints
                .iter()
                .map(|c| psbt(c))
                .collect::<Result<_, _>>()?;
            let ark_txid = tx.unsigned_tx.compute_txid();
            data.ark_tx = tx.to_string();
            c.steps_completed.push(c.state.clone());
            c.state = state::ARK_TX_SIGNED.into();
            c.ark_txid = Some(ark_txid);
            c.current_step = None;
            c.step_deadline = Some(now.plus_secs(RECONCILE_AFTER_SECS));
            c.data = serde_json::to_string(&data).map_err(fatal)?;
            if !self
                .store
                .update_session(&c, &[], now)
                .await
                .map_err(transient)?
            {
                return Ok(JobOutcome::default());
            }
            c.version += 1;
            let t = std::time::Instant::now();
            let submitted = match self.ark.submit_tx(&tx, &checkpoints).await {
                Ok(sub) => {
                    crate::metrics::step(crate::metrics::step::SUBMIT, t.elapsed());
                    sub
                }
                Err(e) if e.is_transient() => return Err(transient(format!("arkd SubmitTx: {e}"))),
                Err(e) => return self.fail_batch(c, ark_rejection(&e), false).await,
            };
            self.crash_at(CrashPoint::AfterSubmit)?;
            self.after_batch_submit(c, data, checkpoints, submitted)
                .await
        } else {
            let mut checkpoints: Vec<Psbt> = data
                .checkpoints
                .iter()
                .map(|c| psbt(c))
                .collect::<Result<_, _>>()?;
            for (p, pd) in data.parties.iter().zip(&all) {
                for (k, _, sig) in &pd.step2 {
                    let sig = sig_hex(sig).map_err(|()| fatal("stored signature"))?;
                    let at = p.span.first_input + *k as usize;
                    let cp = checkpoints
                        .get_mut(at)
                        .ok_or_else(|| fatal("stored checkpoint index"))?;
                    add_signature(cp, 0, p.author.x_only(), sig).map_err(fatal)?;
                }
            }
            for (n, cp) in checkpoints.iter().enumerate() {
                if !is_fully_signed(cp).map_err(fatal)? {
                    let r = Rejection::new(
                        ErrorCode::InvalidResponseSignature,
                        format!("checkpoint {n} is not fully signed"),
                    );
                    return self.abandon_batch(c, r).await;
                }
            }
            data.checkpoints = checkpoints.iter().map(|p| p.to_string()).collect();
            c.steps_completed.push(c.state.clone());
            c.state = state::SIGNATURES_COLLECTED.into();
            c.current_step = None;
            c.step_deadline = Some(now.plus_secs(RECONCILE_AFTER_SECS));
            c.data = serde_json::to_string(&data).map_err(fatal)?;
            if !self
                .store
                .update_session(&c, &[], now)
                .await
                .map_err(transient)?
            {
                return Ok(JobOutcome::default());
            }
            c.version += 1;
            self.finalize_batch(c, data, checkpoints).await
        }
    }

    /// Verifies arkd's signatures, signs the relay's checkpoints and sends
    /// every party its step-2 challenge (its own checkpoints only).
    async fn after_batch_submit(
        &self,
        mut c: SessionRecord,
        mut data: BatchData,
        checkpoints: Vec<Psbt>,
        submitted: ark_relay_core::backends::ark::SubmittedTx,
    ) -> Result<JobOutcome, HandlerError> {
        let ark_txid = submitted.ark_txid;
        verify_signatures(&submitted.final_ark_tx)
            .map_err(|e| fatal(format!("server ark tx signature: {e}")))?;
        let mut signed = Vec::with_capacity(checkpoints.len());
        for cp in &checkpoints {
            let txid = cp.unsigned_tx.compute_txid();
            let mut s = submitted
                .signed_checkpoint_txs
                .iter()
                .find(|p| p.unsigned_tx.compute_txid() == txid)
                .cloned()
                .ok_or_else(|| fatal(format!("arkd returned no checkpoint {txid}")))?;
            verify_signatures(&s)
                .map_err(|e| fatal(format!("server checkpoint signature: {e}")))?;
            crate::audit::sign_psbt(&mut s, &self.keypair, "checkpoint", &c.id, Some(&ark_txid))
                .map_err(fatal)?;
            signed.push(s);
        }
        data.ark_tx = submitted.final_ark_tx.to_string();
        data.checkpoints = signed.iter().map(|p| p.to_string()).collect();
        let now = self.clock.now();
        let deadline = now
            .plus_secs(self.config.step_timeout_secs)
            .min(c.expires_at);
        let mut outbox = Vec::with_capacity(data.parties.len());
        for p in &data.parties {
            let mine = signed[p.span.first_input..p.span.first_input + p.span.inputs].to_vec();
            let sign = sign_requests(&mine, &p.author).map_err(fatal)?;
            let context = format!(
                "Step 2/2: confirm the checkpoints of batch {} (ark tx {})",
                data.batch_id,
                short(&ark_txid.to_string())
            );
            outbox.push(self.party_challenge(
                p,
                2,
                ChallengeType::SignCheckpointTxs,
                mine.iter().map(|p| p.to_string()).collect(),
                sign,
                vec![],
                context,
                deadline.0,
            )?);
        }
        c.steps_completed.push(c.state.clone());
        c.state = state::CHECKPOINT_TXS_PREPARED.into();
        c.current_step = Some("sign_checkpoint_txs".into());
        c.step_deadline = Some(deadline);
        c.ark_txid = Some(ark_txid);
        c.data = serde_json::to_string(&data).map_err(fatal)?;
        self.store
            .update_session(&c, &outbox, now)
            .await
            .map_err(transient)?;
        Ok(JobOutcome::default())
    }

    /// `FinalizeTx`, one ledger commit for the whole batch, one 31340.
    async fn finalize_batch(
        &self,
        mut c: SessionRecord,
        data: BatchData,
        checkpoints: Vec<Psbt>,
    ) -> Result<JobOutcome, HandlerError> {
        let ark_txid = c
            .ark_txid
            .ok_or_else(|| fatal("finalizing without an ark txid"))?;
        match self.ark.finalize_tx(ark_txid, &checkpoints).await {
            Ok(()) => self.crash_at(CrashPoint::AfterFinalize)?,
            Err(e) if e.is_transient() => return Err(transient(format!("arkd FinalizeTx: {e}"))),
            Err(e) => {
                tracing::error!(batch = %c.id, error = %e, "FinalizeTx rejected after SubmitTx");
                return self.abandon_batch(c, ark_rejection(&e)).await;
            }
        }
        let now = self.clock.now();
        let server = self.server_info().await?;
        let outputs = crate::server::new_vtxos(
            server,
            &self.relay,
            ark_txid,
            data.outputs.iter().map(|o| (o.owner, o.sats, o.colour)),
            &data.inputs,
        );
        let l2 = L2Transaction {
            ark_txid,
            kind: "batch".into(),
            session: Some(c.id),
            inputs: data.inputs.iter().map(|v| v.id).collect(),
            outputs: outputs.clone(),
            issued: data.issued.clone(),
            burned: data.burned.clone(),
            finalized_at: now,
        };
        match self.store.commit_transaction(&l2).await {
            Ok(CommitOutcome::Committed | CommitOutcome::AlreadyCommitted) => {}
            Err(e @ ark_relay_core::StoreError::Ledger(_)) => {
                return Err(fatal(format!(
                    "ledger refused a finalized batch ark tx {ark_txid}: {e}"
                )));
            }
            Err(e) => return Err(transient(e)),
        }
        self.crash_at(CrashPoint::BeforeConfirmation)?;
        let entry =
            |id: VtxoId, owner: PubKey, sats: ark_relay_core::Sats, colour: Option<Colour>| {
                VtxoEntry {
                    vtxo: id,
                    owner,
                    asset: colour.map(|c| AssetRef::Id(c.asset)),
                    amount: colour.map(|c| c.amount.get()).unwrap_or(0),
                    sats: sats.get(),
                }
            };
        let confirmation = Confirmation {
            v: VERSION,
            ark_txid: ark_txid.to_string(),
            intents: data.parties.iter().map(|p| p.intent).collect(),
            spent: data
                .inputs
                .iter()
                .map(|v| entry(v.id, v.owner, v.sats, v.colour))
                .collect(),
            created: outputs
                .iter()
                .map(|o| entry(o.id, o.owner, o.sats, o.colour))
                .collect(),
            preimage: None,
        };
        let mut tagged: Vec<PubKey> = data
            .outputs
            .iter()
            .map(|o| o.owner)
            .filter(|o| *o != self.relay)
            .collect();
        tagged.extend(data.parties.iter().map(|p| p.author));
        let ev = builders::confirmation(&self.keys, &confirmation, &tagged).map_err(fatal)?;
        let out = NewOutboxEvent {
            dedupe_key: format!("31340:{ark_txid}"),
            kind: ev.kind.as_u16(),
            recipient: None,
            event_json: ev.as_json(),
        };
        c.steps_completed.push(state::ARK_EXECUTED.into());
        c.status = SessionStatus::Completed;
        c.state = state::COMPLETED.into();
        c.current_step = None;
        c.step_deadline = None;
        self.store
            .update_session(&c, &[out], now)
            .await
            .map_err(transient)?;
        self.settle_parties(&data, SessionStatus::Completed, state::COMPLETED, None)
            .await?;
        tracing::info!(batch = %c.id, %ark_txid, parties = data.parties.len(), "batch completed");
        crate::metrics::intent_outcome("batch", None);
        crate::metrics::step_since(crate::metrics::step::END_TO_END, c.created_at);
        Ok(JobOutcome::default())
    }

    /// Brings every party session of the batch to the coordinator's end
    /// (no events: the coordinator's transition carried them).
    async fn settle_parties(
        &self,
        data: &BatchData,
        status: SessionStatus,
        st: &str,
        r: Option<&Rejection>,
    ) -> Result<(), HandlerError> {
        let key = request_key(data);
        for p in &data.parties {
            let Some(mut s) = self.store.session(&p.session).await.map_err(transient)? else {
                continue;
            };
            if s.status.is_final() || s.batch_id.as_deref() != Some(key.as_str()) {
                continue;
            }
            s.status = status;
            s.state = st.to_owned();
            s.current_step = None;
            s.step_deadline = None;
            if let Some(r) = r {
                s.error_code = Some(r.code);
                s.error_message = Some(r.message.clone());
            }
            // A lost race only means someone else settled it.
            let _ = self
                .store
                .update_session(&s, &[], self.clock.now())
                .await
                .map_err(transient)?;
        }
        Ok(())
    }

    /// Ends a batch before `SubmitTx`: every lock released, nothing moves.
    /// Before the challenges went out, only the submitter is answered (31501
    /// error); afterwards every party gets a 31341 for its intent and the
    /// submitter one for its request.
    async fn fail_batch(
        &self,
        mut c: SessionRecord,
        r: Rejection,
        expired: bool,
    ) -> Result<JobOutcome, HandlerError> {
        tracing::info!(batch = %c.id, code = r.code.code(), reason = %r.message, "batch failed");
        crate::metrics::intent_outcome("batch", Some(r.code));
        let data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        let mut outbox = Vec::new();
        if c.state == state::INTENT_RECEIVED {
            outbox.push(
                self.batch_response(&data, &ServiceResponse::err(data.request.to_string(), &r))?,
            );
        } else {
            for p in &data.parties {
                outbox.push(self.notice(&p.author, &p.intent, &r, Scheme::Nip44)?);
            }
            outbox.push(self.notice(&data.submitter, &data.request, &r, data.scheme())?);
        }
        c.status = if expired {
            SessionStatus::Expired
        } else {
            SessionStatus::Failed
        };
        c.state = (if expired {
            state::EXPIRED
        } else {
            state::FAILED
        })
        .to_owned();
        c.error_code = Some(r.code);
        c.error_message = Some(r.message.clone());
        c.step_deadline = None;
        c.current_step = None;
        if self
            .store
            .update_session(&c, &outbox, self.clock.now())
            .await
            .map_err(transient)?
        {
            self.store.release_locks(&c.id).await.map_err(transient)?;
        }
        let (status, st) = if expired {
            (SessionStatus::Expired, state::EXPIRED)
        } else {
            (SessionStatus::Failed, state::FAILED)
        };
        self.settle_parties(&data, status, st, Some(&r)).await?;
        Ok(JobOutcome::default())
    }

    /// After `SubmitTx` the inputs are spent at arkd whatever happens: the
    /// batch fails with its locks kept, and everyone is told.
    async fn abandon_batch(
        &self,
        mut c: SessionRecord,
        r: Rejection,
    ) -> Result<JobOutcome, HandlerError> {
        crate::metrics::intent_outcome("batch", Some(r.code));
        let data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        let mut outbox = Vec::new();
        for p in &data.parties {
            outbox.push(self.notice(&p.author, &p.intent, &r, Scheme::Nip44)?);
        }
        outbox.push(self.notice(&data.submitter, &data.request, &r, data.scheme())?);
        c.status = SessionStatus::Failed;
        c.state = state::FAILED.into();
        c.error_code = Some(r.code);
        c.error_message = Some(format!(
            "{} (after SubmitTx: inputs stay locked pending reconciliation)",
            r.message
        ));
        c.step_deadline = None;
        self.store
            .update_session(&c, &outbox, self.clock.now())
            .await
            .map_err(transient)?;
        self.settle_parties(&data, SessionStatus::Failed, state::FAILED, Some(&r))
            .await?;
        Ok(JobOutcome::default())
    }

    /// Another party's job may be inside `SubmitTx` or `FinalizeTx` for this
    /// batch right now (each party's answer runs as its own job): only a
    /// batch whose reconcile deadline has passed is driven forward here; a
    /// fresh one is left to the job that moved it (or to the expiry scan).
    async fn reconcile_if_stuck(&self, c: SessionRecord) -> Result<JobOutcome, HandlerError> {
        if c.step_deadline.is_some_and(|d| d <= self.clock.now()) {
            self.reconcile_batch(c).await
        } else {
            Ok(JobOutcome::default())
        }
    }

    /// Drives a batch stranded past `SubmitTx` forward (see the transfer's
    /// `reconcile`): the relay's recovery input proves ownership to
    /// `GetPendingTx`; `FinalizeTx` and the commit are idempotent.
    async fn reconcile_batch(&self, mut c: SessionRecord) -> Result<JobOutcome, HandlerError> {
        let data: BatchData = serde_json::from_str(&c.data).map_err(fatal)?;
        c.step_deadline = Some(self.clock.now().plus_secs(RECONCILE_AFTER_SECS * 3));
        if !self
            .store
            .update_session(&c, &[], self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        c.version += 1;
        let checkpoints: Vec<Psbt> = data
            .checkpoints
            .iter()
            .map(|c| psbt(c))
            .collect::<Result<_, _>>()?;
        match c.state.as_str() {
            state::ARK_TX_SIGNED => {
                let ark_tx = psbt(&data.ark_tx)?;
                let ark_txid = ark_tx.unsigned_tx.compute_txid();
                let own = &data.inputs[data.inputs.len().saturating_sub(data.inventory)..];
                if let Some(pending) = self.pending_tx(own, ark_txid).await? {
                    tracing::info!(%ark_txid, "recovered the pending batch ark tx from arkd");
                    return self.after_batch_submit(c, data, checkpoints, pending).await;
                }
                match self.ark.submit_tx(&ark_tx, &checkpoints).await {
                    Ok(sub) => self.after_batch_submit(c, data, checkpoints, sub).await,
                    Err(e) if e.is_transient() => Err(transient(format!("arkd SubmitTx: {e}"))),
                    Err(e) => self.abandon_batch(c, ark_rejection(&e)).await,
                }
            }
            state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                self.finalize_batch(c, data, checkpoints).await
            }
            _ => Ok(JobOutcome::default()),
        }
    }

    /// Handles a due batch session from the expiry scan; returns how many
    /// batches it failed.
    pub(crate) async fn expire_batch_session(
        &self,
        s: SessionRecord,
    ) -> Result<usize, HandlerError> {
        let Some(cid) = coordinator_id(&s) else {
            return Ok(0);
        };
        if s.id != cid {
            // A party: follow its coordinator (which may have ended before
            // listing it, e.g. when another party's intent was a replay).
            let c = self.store.session(&cid).await.map_err(transient)?;
            match c {
                Some(c) if !c.status.is_final() => {
                    if c.step_deadline.is_some_and(|d| d <= self.clock.now()) {
                        return Box::pin(self.expire_batch_session(c)).await;
                    }
                }
                c => {
                    let mut p = s;
                    let (status, st) = match &c {
                        Some(c) => (c.status, c.state.clone()),
                        None => (SessionStatus::Failed, state::FAILED.to_owned()),
                    };
                    p.status = status;
                    p.state = st;
                    p.current_step = None;
                    p.step_deadline = None;
                    if let Some(c) = c {
                        p.error_code = c.error_code;
                        p.error_message = c.error_message;
                    }
                    self.store
                        .update_session(&p, &[], self.clock.now())
                        .await
                        .map_err(transient)?;
                }
            }
            return Ok(0);
        }
        let now = self.clock.now();
        match s.state.as_str() {
            // Waiting for its own submit job (redelivered after a crash), not
            // for a party: give it until the session's expiry.
            state::INTENT_RECEIVED if s.expires_at > now => {
                let mut s = s;
                s.step_deadline = Some(now.plus_secs(self.config.step_timeout_secs));
                self.store
                    .update_session(&s, &[], now)
                    .await
                    .map_err(transient)?;
                Ok(0)
            }
            state::INTENT_RECEIVED | state::ARK_TX_PREPARED => {
                let data: BatchData = serde_json::from_str(&s.data).map_err(fatal)?;
                let mut silent = Vec::new();
                for (i, p) in data.parties.iter().enumerate() {
                    let signed = self
                        .store
                        .session(&p.session)
                        .await
                        .map_err(transient)?
                        .is_some_and(|ps| ps.state == state::ARK_TX_SIGNED);
                    if !signed {
                        silent.push(format!("party {i} ({})", short(&p.author.to_string())));
                    }
                }
                let r = if s.state == state::INTENT_RECEIVED {
                    Rejection::new(
                        ErrorCode::SessionExpired,
                        "the batch expired before its signing sessions started",
                    )
                } else {
                    Rejection::new(
                        ErrorCode::BatchPartyTimeout,
                        format!("{} did not sign in time", silent.join(", ")),
                    )
                };
                self.fail_batch(s, r, true).await?;
                Ok(1)
            }
            state::ARK_TX_SIGNED | state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                if let Err(e) = self.reconcile_batch(s).await {
                    tracing::warn!(error = %e, "batch reconcile failed; will retry");
                }
                Ok(0)
            }
            state::CHECKPOINT_TXS_PREPARED => {
                let r = Rejection::new(
                    ErrorCode::BatchPartyTimeout,
                    "a party did not sign its checkpoints in time",
                );
                self.abandon_batch(s, r).await?;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// The value of every batch session's `batch_id` column: the request's id.
fn request_key(data: &BatchData) -> String {
    data.request.to_string()
}

fn describe_party(plan: &BatchPlan, i: usize, me: &PubKey) -> String {
    let pays: Vec<String> = plan
        .outputs
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
    let gets: Vec<String> = plan
        .outputs
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

fn ark_rejection(e: &ark_relay_core::backends::ark::ArkServerError) -> Rejection {
    Rejection::new(
        e.code(),
        format!(
            "Ark server: {}",
            e.rejection().map(|r| r.name()).unwrap_or("rejected")
        ),
    )
}
