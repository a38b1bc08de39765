//! The signing ceremony of a `p2p_transfer` intent (PRD §5.1, §10.1;
//! DESIGN.md §6), as a [`JobHandler`]:
//!
//! 1. **intent job** — plan inputs and outputs, lock the inputs, build the ark
//!    tx and its checkpoints, sign the relay's own inputs, send 31511 step 1
//!    (`sign_ark_tx`), all persisted in the session before anything is sent.
//! 2. **31512 step 1** — verify every signature against the sighash recomputed
//!    from the PSBT (5002), persist `ark_tx_signed`, `SubmitTx`, verify the
//!    server's signatures, sign the relay's checkpoints, send 31511 step 2.
//! 3. **31512 step 2** — verify, persist `signatures_collected`, `FinalizeTx`,
//!    commit the ledger (inputs spent, outputs with colour), complete the
//!    session and publish the 31340 — the last two in one transaction.
//!
//! Every transition is one optimistic `update_session` with its outgoing
//! events, so a redelivered job continues where the last one stopped. Failures
//! before `SubmitTx` release the locks and send a 31341; after it there is no
//! going back (see the reconciler note in the issue).

mod plan;

use std::str::FromStr;
use std::sync::Arc;

use ark_relay_ark::{
    add_signature, build_offchain_tx, is_fully_signed, sign_requests, verify_signatures, Output,
    ServerInfo, VtxoInput,
};
use ark_relay_core::backends::ark::{ArkServer, ArkServerError};
use ark_relay_core::{
    AssetId, Clock, Colour, CommitOutcome, DynStore, ErrorCode, EventId, Job, L2Transaction,
    NewOutboxEvent, PubKey, SessionId, SessionRecord, SessionStatus, Vtxo, VtxoId, VtxoStatus,
};
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, ColourHint, Confirmation, PayloadToSign,
    SignRequest as WireSignRequest, SigningChallenge, SigningResponse, VtxoEntry, VERSION,
};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::{validate_intent, IntentPolicy, ValidIntent};
use ark_relay_protocol::{builders, event_id_from_nostr, Rejection};
use async_trait::async_trait;
use bitcoin::secp256k1::{schnorr, Keypair, Secp256k1};
use bitcoin::Psbt;
use nostr::{JsonUtil, Keys};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

pub use plan::{plan_transfer, select_coloured, Payment, Plan, PlannedOutput, Request};

use crate::handlers::{BaseHandler, HandlerError, JobHandler, JobOutcome};
use crate::ingest::{job_kind, InboundJob};

/// Session states (the PRD's names, plus `ark_tx_signed`).
pub mod state {
    /// Session created.
    pub const INTENT_RECEIVED: &str = "intent_received";
    /// Step 1 challenge sent.
    pub const ARK_TX_PREPARED: &str = "ark_tx_prepared";
    /// Step 1 signatures verified; written just before `SubmitTx`.
    pub const ARK_TX_SIGNED: &str = "ark_tx_signed";
    /// Submitted; step 2 challenge sent.
    pub const CHECKPOINT_TXS_PREPARED: &str = "checkpoint_txs_prepared";
    /// Step 2 signatures verified; written just before `FinalizeTx`.
    pub const SIGNATURES_COLLECTED: &str = "signatures_collected";
    /// `FinalizeTx` succeeded.
    pub const ARK_EXECUTED: &str = "ark_executed";
    /// Ledger committed, 31340 queued.
    pub const COMPLETED: &str = "completed";
    /// Ended with an error.
    pub const FAILED: &str = "failed";
    /// Ran out of time.
    pub const EXPIRED: &str = "expired";
}

/// Timing of sessions.
#[derive(Debug, Clone, Copy)]
pub struct CeremonyConfig {
    /// A session must complete within this (PRD: 15 minutes).
    pub session_ttl_secs: i64,
    /// Each challenge must be answered within this (default 60 s).
    pub step_timeout_secs: i64,
}

impl Default for CeremonyConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 900,
            step_timeout_secs: 60,
        }
    }
}

/// What the session keeps between steps (JSON in `signing_sessions.session_data`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TransferData {
    author: PubKey,
    intent: EventId,
    /// Every input, the author's first.
    inputs: Vec<Vtxo>,
    author_inputs: usize,
    outputs: Vec<PlannedOutput>,
    /// Base64 PSBTs.
    ark_tx: String,
    checkpoints: Vec<String>,
    /// The payments, for the 31340 `p` tags.
    recipients: Vec<PubKey>,
    /// A `land_lightning`: the landed colour is burned and the 31340 waits
    /// for the Lightning payment.
    #[serde(default)]
    land: bool,
}

fn psbt(s: &str) -> Result<Psbt, HandlerError> {
    Psbt::from_str(s).map_err(|e| HandlerError::Fatal(format!("stored PSBT: {e}")))
}

fn fatal(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

/// The transfer ceremony; other job kinds go to the wrapped [`BaseHandler`].
pub struct Ceremony {
    pub(crate) store: DynStore,
    pub(crate) ark: Arc<dyn ArkServer>,
    pub(crate) keys: Keys,
    pub(crate) keypair: Keypair,
    pub(crate) relay: PubKey,
    pub(crate) policy: IntentPolicy,
    pub(crate) base: BaseHandler,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: CeremonyConfig,
    server: OnceCell<ServerInfo>,
    pub(crate) tamper: Option<ChallengeTamper>,
    crash: Option<CrashHook>,
    lands: Option<Arc<crate::ramp::Ramps>>,
}

/// Where a test may simulate the relay process dying (the job then stops
/// with a transient error, as if the process had been killed there, and is
/// redelivered to whoever runs next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The inputs are locked; nothing built or sent yet.
    AfterLock,
    /// The step-1 challenge is persisted and queued.
    AfterChallenge,
    /// `SubmitTx` succeeded; its answer is not persisted yet.
    AfterSubmit,
    /// `FinalizeTx` succeeded; the ledger is not committed yet.
    AfterFinalize,
    /// The ledger is committed; the session and its 31340 are not yet.
    BeforeConfirmation,
    /// Batch: one party's step signatures are persisted, the batch has not
    /// advanced (the other parties may not have signed yet).
    BetweenPartySignatures,
}

/// Decides whether to "crash" at a point (tests only).
pub type CrashHook = Arc<dyn Fn(CrashPoint) -> bool + Send + Sync>;

/// Free inventory VTXOs considered per plan.
const INVENTORY_WINDOW: u32 = 32;

/// Sessions stuck after `SubmitTx` are reconciled this long after their last step.
pub const RECONCILE_AFTER_SECS: i64 = 10;

/// A test seam standing for a compromised relay: changes the step-1 ark tx
/// and colour hints after they are built and before the sighashes are
/// computed, so only the wallet's contextual verification can catch it.
pub type ChallengeTamper = Arc<dyn Fn(&mut Psbt, &mut Vec<ColourHint>) + Send + Sync>;

impl Ceremony {
    /// A ceremony for the relay identity `keys` against `ark`.
    pub fn new(
        store: DynStore,
        ark: Arc<dyn ArkServer>,
        keys: Keys,
        policy: IntentPolicy,
        base: BaseHandler,
        clock: Arc<dyn Clock>,
        config: CeremonyConfig,
    ) -> Self {
        let keypair = Keypair::from_secret_key(&Secp256k1::signing_only(), keys.secret_key());
        let relay = policy.relay;
        Self {
            store,
            ark,
            keys,
            keypair,
            relay,
            policy,
            base,
            clock,
            config,
            server: OnceCell::new(),
            tamper: None,
            crash: None,
            lands: None,
        }
    }

    /// Executes `land_lightning` intents, handing them to `ramps` once the
    /// user's VTXO is final at the relay (without it they are refused, 1003).
    pub fn with_lands(mut self, ramps: Arc<crate::ramp::Ramps>) -> Self {
        self.lands = Some(ramps);
        self
    }

    /// Installs a [`CrashHook`] (tests only).
    pub fn with_crash_hook(mut self, hook: CrashHook) -> Self {
        self.crash = Some(hook);
        self
    }

    pub(crate) fn crash_at(&self, point: CrashPoint) -> Result<(), HandlerError> {
        match &self.crash {
            Some(hook) if hook(point) => Err(HandlerError::Transient(format!(
                "simulated crash at {point:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// Installs a [`ChallengeTamper`] (tests only: it makes the relay lie).
    pub fn with_tamper(mut self, tamper: ChallengeTamper) -> Self {
        self.tamper = Some(tamper);
        self
    }

    /// The Ark server's parameters (fetched once).
    pub async fn server_info(&self) -> Result<&ServerInfo, HandlerError> {
        self.server
            .get_or_try_init(|| crate::server::fetch(self.ark.as_ref()))
            .await
    }

    fn outbox_event(
        &self,
        ev: &nostr::Event,
        key: String,
        recipient: Option<PubKey>,
    ) -> NewOutboxEvent {
        NewOutboxEvent {
            dedupe_key: key,
            kind: ev.kind.as_u16(),
            recipient,
            event_json: ev.as_json(),
        }
    }

    pub(crate) fn notice(
        &self,
        to: &PubKey,
        answered: &EventId,
        r: &Rejection,
        scheme: Scheme,
    ) -> Result<NewOutboxEvent, HandlerError> {
        crate::failure_notice(&self.keys, to, answered, r, scheme).map_err(fatal)
    }

    /// Ends a session before `SubmitTx`: release the locks, record the failure
    /// and queue the 31341 to the author, answering the intent.
    async fn fail(
        &self,
        mut s: SessionRecord,
        r: Rejection,
        expired: bool,
    ) -> Result<JobOutcome, HandlerError> {
        tracing::info!(session = %s.id, code = r.code.code(), reason = %r.message, "session failed");
        crate::metrics::intent_outcome("p2p_transfer", Some(r.code));
        let notice = self.notice(&s.user, &s.intent, &r, Scheme::Nip44)?;
        s.status = if expired {
            SessionStatus::Expired
        } else {
            SessionStatus::Failed
        };
        s.state = (if expired {
            state::EXPIRED
        } else {
            state::FAILED
        })
        .to_owned();
        s.error_code = Some(r.code);
        s.error_message = Some(r.message.clone());
        s.step_deadline = None;
        let now = self.clock.now();
        if self
            .store
            .update_session(&s, std::slice::from_ref(&notice), now)
            .await
            .map_err(transient)?
        {
            self.store.release_locks(&s.id).await.map_err(transient)?;
        }
        Ok(JobOutcome::default())
    }

    async fn resolve(&self, asset: &AssetRef) -> Result<AssetId, Rejection> {
        let unknown = || {
            Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                format!("unknown asset {asset}"),
            )
        };
        match asset {
            AssetRef::Id(id) => match self.store.asset(id).await {
                Ok(Some(a)) if a.enabled => Ok(a.id),
                Ok(_) => Err(unknown()),
                Err(e) => Err(Rejection::new(e.code(), e.to_string())),
            },
            AssetRef::Ticker(t) => match self.store.assets().await {
                Ok(all) => all
                    .into_iter()
                    .find(|a| &a.ticker == t && a.enabled)
                    .map(|a| a.id)
                    .ok_or_else(unknown),
                Err(e) => Err(Rejection::new(e.code(), e.to_string())),
            },
        }
    }

    async fn payments(
        &self,
        intent: &ValidIntent,
    ) -> Result<(Vec<Payment>, Option<Colour>), Rejection> {
        let mut payments = Vec::new();
        let mut fee = None;
        for o in &intent.outputs {
            let colour = Colour {
                asset: self.resolve(&o.asset).await?,
                amount: ark_relay_core::AssetAmount::new(o.amount),
            };
            if o.fee {
                fee = Some(colour);
            } else {
                payments.push(Payment {
                    recipient: o.recipient,
                    colour,
                });
            }
        }
        Ok((payments, fee))
    }

    #[tracing::instrument(skip_all, fields(intent = %inbound.event.id))]
    async fn on_intent(&self, inbound: &InboundJob) -> Result<JobOutcome, HandlerError> {
        let started = std::time::Instant::now();
        let now = self.clock.now();
        let id = event_id_from_nostr(&inbound.event.id);
        let session_id = SessionId::from(id);
        let existing = self.store.session(&session_id).await.map_err(transient)?;
        let session = match existing {
            Some(s) if s.state != state::INTENT_RECEIVED => return Ok(JobOutcome::default()),
            Some(s) => s,
            None => {
                let author = ark_relay_protocol::pubkey_from_nostr(&inbound.event.pubkey)
                    .ok_or_else(|| fatal("author key"))?;
                let s = SessionRecord {
                    id: session_id,
                    user: author,
                    intent: id,
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
                    data: String::new(),
                    batch_id: None,
                    ark_txid: None,
                    version: 0,
                };
                self.store.create_session(&s).await.map_err(transient)?;
                match self.store.session(&session_id).await.map_err(transient)? {
                    Some(s) if s.state == state::INTENT_RECEIVED => s,
                    _ => return Ok(JobOutcome::default()),
                }
            }
        };
        let intent = match validate_intent(&inbound.event, &self.policy, now) {
            Ok(v) => v,
            Err(r) => return self.fail(session, r, false).await,
        };
        let is_land = intent.intent_type == ark_relay_protocol::content::IntentType::LandLightning;
        if is_land {
            if let Some(lands) = &self.lands {
                if let Err(r) = lands.open_land(&intent).await? {
                    return self.fail(session, r, false).await;
                }
            }
        }
        if intent.intent_type != ark_relay_protocol::content::IntentType::P2pTransfer
            && !(is_land && self.lands.is_some())
        {
            let r = Rejection::new(
                ErrorCode::UnsupportedAction,
                format!(
                    "{} intents are executed through submit_batch or are not enabled yet",
                    intent.intent_type.as_str()
                ),
            );
            return self.fail(session, r, false).await;
        }
        let server = self.server_info().await?.clone();
        match self.prepare(&session, &intent, &server).await? {
            Ok(outcome) => {
                crate::metrics::step(crate::metrics::step::INTENT_TO_CHALLENGE, started.elapsed());
                self.crash_at(CrashPoint::AfterChallenge)?;
                Ok(outcome)
            }
            Err(r) => self.fail(session, r, false).await,
        }
    }

    /// Plans, locks, builds, signs the relay's inputs and sends step 1.
    async fn prepare(
        &self,
        session: &SessionRecord,
        intent: &ValidIntent,
        server: &ServerInfo,
    ) -> Result<Result<JobOutcome, Rejection>, HandlerError> {
        let (payments, fee) = match self.payments(intent).await {
            Ok(p) => p,
            Err(r) => return Ok(Err(r)),
        };
        // A redelivered job may find its own locks from a run that died before
        // anything was sent: start the plan over.
        self.store
            .release_locks(&session.id)
            .await
            .map_err(transient)?;
        let mut attempt = 0;
        let plan = loop {
            attempt += 1;
            let vtxos = self
                .store
                .unspent_vtxos(&intent.author)
                .await
                .map_err(transient)?;
            // A window of free inventory, at a pseudo-random offset so that
            // concurrent sessions rarely race for the same VTXOs.
            let spread = u32::from(session.id.as_bytes()[0]) * 8 + attempt * 37;
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
            let req = plan::Request {
                author: &intent.author,
                relay: &self.relay,
                payments: &payments,
                fee,
                named: intent.inputs.as_deref(),
                dust: server.dust(),
                recovery_input: true,
            };
            let plan = match plan_transfer(&req, &vtxos, &inventory) {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            let ids: Vec<VtxoId> = plan.all_inputs().map(|v| v.id).collect();
            match self
                .store
                .lock_vtxos(&ids, &session.id, self.clock.now())
                .await
            {
                Ok(()) => {
                    self.crash_at(CrashPoint::AfterLock)?;
                    break plan;
                }
                // Another session took an inventory VTXO first: plan again.
                Err(ark_relay_core::StoreError::Ledger(ark_relay_core::LedgerError::Locked {
                    vtxo,
                    ..
                })) if attempt < 8 && plan.inventory.iter().any(|v| v.id == vtxo) => {}
                Err(ark_relay_core::StoreError::Ledger(e)) => return Ok(Err(e.into())),
                Err(e) => return Err(transient(e)),
            }
        };

        let inputs: Vec<VtxoInput> = plan
            .all_inputs()
            .map(|v| VtxoInput::from_vtxo(v, server))
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
        let mut tx = build_offchain_tx(server, &inputs, &outputs).map_err(fatal)?;
        if !plan.inventory.is_empty() {
            crate::audit::sign_psbt(&mut tx.ark_tx, &self.keypair, "ark_tx", &session.id, None)
                .map_err(fatal)?;
        }
        let mut data = TransferData {
            author: intent.author,
            intent: intent.event_id,
            author_inputs: plan.inputs.len(),
            inputs: plan.all_inputs().cloned().collect(),
            outputs: plan.outputs.clone(),
            ark_tx: tx.ark_tx.to_string(),
            checkpoints: tx.checkpoints.iter().map(|p| p.to_string()).collect(),
            recipients: payments.iter().map(|p| p.recipient).collect(),
            land: intent.intent_type == ark_relay_protocol::content::IntentType::LandLightning,
        };
        let mut colour: Vec<ColourHint> = plan
            .outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.colour.map(|c| ColourHint {
                    psbt_index: 0,
                    output_index: u32::try_from(i).unwrap_or(u32::MAX),
                    owner: o.owner.to_string(),
                    asset: AssetRef::Id(c.asset),
                    amount: c.amount.get(),
                })
            })
            .collect();
        if let Some(tamper) = &self.tamper {
            tamper(&mut tx.ark_tx, &mut colour);
            data.ark_tx = tx.ark_tx.to_string();
        }
        let sign =
            sign_requests(std::slice::from_ref(&tx.ark_tx), &intent.author).map_err(fatal)?;
        let summary: Vec<String> = payments
            .iter()
            .map(|p| {
                format!(
                    "{} of {} to {}",
                    p.colour.amount.get(),
                    short(&p.colour.asset.to_string()),
                    short(&p.recipient.to_string())
                )
            })
            .collect();
        let context = format!(
            "Step 1/2: send {} (fee {})",
            summary.join(", "),
            fee.map(|f| f.amount.get()).unwrap_or(0)
        );
        self.send_challenge(
            session.clone(),
            data,
            1,
            ChallengeType::SignArkTx,
            vec![tx.ark_tx],
            sign,
            colour,
            context,
            state::ARK_TX_PREPARED,
            None,
        )
        .await
        .map(Ok)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_challenge(
        &self,
        mut s: SessionRecord,
        data: TransferData,
        step: u32,
        kind: ChallengeType,
        psbts: Vec<Psbt>,
        sign: Vec<ark_relay_ark::SignRequest>,
        colour: Vec<ColourHint>,
        context: String,
        next_state: &str,
        ark_txid: Option<bitcoin::Txid>,
    ) -> Result<JobOutcome, HandlerError> {
        let now = self.clock.now();
        let deadline = now
            .plus_secs(self.config.step_timeout_secs)
            .min(s.expires_at);
        let challenge = SigningChallenge {
            v: VERSION,
            session_id: s.id,
            step,
            challenge_type: kind,
            payload_to_sign: PayloadToSign {
                psbts: psbts.iter().map(|p| p.to_string()).collect(),
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
            expires_at: deadline.0,
        };
        let ev = builders::signing_challenge(
            &self.keys,
            &data.author,
            &data.intent,
            &challenge,
            Scheme::Nip44,
        )
        .map_err(fatal)?;
        let out = self.outbox_event(&ev, format!("31511:{}:{step}", s.id), Some(data.author));
        s.steps_completed.push(s.state.clone());
        s.status = SessionStatus::Active;
        s.state = next_state.to_owned();
        s.current_step = Some(match kind {
            ChallengeType::SignArkTx => "sign_ark_tx".into(),
            ChallengeType::SignCheckpointTxs => "sign_checkpoint_txs".into(),
        });
        s.step_deadline = Some(deadline);
        s.data = serde_json::to_string(&data).map_err(fatal)?;
        if ark_txid.is_some() {
            s.ark_txid = ark_txid;
        }
        self.store
            .update_session(&s, &[out], now)
            .await
            .map_err(transient)?;
        Ok(JobOutcome::default())
    }

    #[tracing::instrument(skip_all, fields(response = %inbound.event.id))]
    async fn on_response(&self, inbound: &InboundJob) -> Result<JobOutcome, HandlerError> {
        let plain = inbound
            .plaintext
            .as_deref()
            .ok_or_else(|| fatal("response without plaintext"))?;
        let resp: SigningResponse = serde_json::from_str(plain).map_err(fatal)?;
        let responder = ark_relay_protocol::pubkey_from_nostr(&inbound.event.pubkey)
            .ok_or_else(|| fatal("author key"))?;
        let unknown = |msg: &str| {
            let r = Rejection::new(ErrorCode::UnknownSession, msg.to_owned());
            self.base
                .failure(inbound, &r, inbound.answer_scheme())
                .map(|o| JobOutcome { outbox: vec![o] })
        };
        let Some(s) = self
            .store
            .session(&resp.session_id)
            .await
            .map_err(transient)?
        else {
            return unknown("no signing session with this id");
        };
        if s.user != responder {
            return unknown("this session belongs to another key");
        }
        let expected = match s.state.as_str() {
            state::ARK_TX_PREPARED => 1,
            state::CHECKPOINT_TXS_PREPARED => 2,
            state::ARK_TX_SIGNED | state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                // A redelivery after a crash past SubmitTx: carry on from the record.
                return self.reconcile(s).await;
            }
            _ if s.status.is_final() || resp.step < 2 => return Ok(JobOutcome::default()),
            _ => return unknown("the session is not waiting for this step"),
        };
        if resp.step != expected {
            if resp.step < expected {
                return Ok(JobOutcome::default()); // a late duplicate of a step already done
            }
            return unknown("the session is not at this step yet");
        }
        crate::metrics::step_since(crate::metrics::step::CHALLENGE_TO_RESPONSE, s.updated_at);
        let data: TransferData = serde_json::from_str(&s.data).map_err(fatal)?;
        if let Some(reason) = &resp.reject {
            let r = Rejection::new(
                ErrorCode::BatchInconsistent,
                format!("the wallet refused to sign: {reason}"),
            );
            return if expected == 1 {
                self.fail(s, r, false).await
            } else {
                self.abandon_after_submit(s, r).await
            };
        }
        let sigs: Vec<(u32, u32, schnorr::Signature)> = match resp
            .signatures
            .iter()
            .map(|e| {
                let bytes = hex_decode(&e.sig)?;
                schnorr::Signature::from_slice(&bytes)
                    .map(|sig| (e.psbt_index, e.input_index, sig))
                    .map_err(|_| ())
            })
            .collect::<Result<_, ()>>()
        {
            Ok(s) => s,
            Err(()) => {
                let r = Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    "a signature is not 64 bytes of hex",
                );
                return if expected == 1 {
                    self.fail(s, r, false).await
                } else {
                    self.abandon_after_submit(s, r).await
                };
            }
        };
        if expected == 1 {
            self.after_step1(s, data, sigs).await
        } else {
            self.after_step2(s, data, sigs).await
        }
    }

    async fn after_step1(
        &self,
        mut s: SessionRecord,
        mut data: TransferData,
        sigs: Vec<(u32, u32, schnorr::Signature)>,
    ) -> Result<JobOutcome, HandlerError> {
        let mut ark_tx = psbt(&data.ark_tx)?;
        let author = *data.author.x_only();
        for (p, i, sig) in &sigs {
            if *p != 0 || add_signature(&mut ark_tx, *i as usize, &author, *sig).is_err() {
                let r = Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    format!("signature for input {i} does not verify"),
                );
                return self.fail(s, r, false).await;
            }
        }
        for i in 0..data.author_inputs {
            let missing = ark_relay_ark::missing_signers(&ark_tx, i).map_err(fatal)?;
            if missing.contains(&author) {
                let r = Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    format!("input {i} is not signed"),
                );
                return self.fail(s, r, false).await;
            }
        }
        let checkpoints: Vec<Psbt> = data
            .checkpoints
            .iter()
            .map(|c| psbt(c))
            .collect::<Result<_, _>>()?;
        let ark_txid = ark_tx.unsigned_tx.compute_txid();
        data.ark_tx = ark_tx.to_string();
        // Persist before the point of no return.
        s.steps_completed.push(s.state.clone());
        s.state = state::ARK_TX_SIGNED.into();
        s.ark_txid = Some(ark_txid);
        s.step_deadline = Some(self.clock.now().plus_secs(RECONCILE_AFTER_SECS));
        s.data = serde_json::to_string(&data).map_err(fatal)?;
        if !self
            .store
            .update_session(&s, &[], self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        s.version += 1;
        let t = std::time::Instant::now();
        let submitted = match self
            .ark
            .submit_tx(&ark_tx, &checkpoints)
            .await
            .inspect(|_| crate::metrics::step(crate::metrics::step::SUBMIT, t.elapsed()))
        {
            Ok(sub) => sub,
            Err(e) if e.is_transient() => return Err(transient(format!("arkd SubmitTx: {e}"))),
            Err(e) => return self.fail(s, ark_rejection(&e), false).await,
        };
        self.crash_at(CrashPoint::AfterSubmit)?;
        self.after_submit(s, data, checkpoints, submitted).await
    }

    /// Verifies arkd's signatures, signs the relay's checkpoints and sends step 2.
    async fn after_submit(
        &self,
        s: SessionRecord,
        mut data: TransferData,
        checkpoints: Vec<Psbt>,
        submitted: ark_relay_core::backends::ark::SubmittedTx,
    ) -> Result<JobOutcome, HandlerError> {
        let ark_txid = submitted.ark_txid;
        // The server's signatures must verify; match its checkpoints by txid.
        verify_signatures(&submitted.final_ark_tx)
            .map_err(|e| fatal(format!("server ark tx signature: {e}")))?;
        let mut signed_checkpoints = Vec::with_capacity(checkpoints.len());
        for c in &checkpoints {
            let txid = c.unsigned_tx.compute_txid();
            let mut signed = submitted
                .signed_checkpoint_txs
                .iter()
                .find(|p| p.unsigned_tx.compute_txid() == txid)
                .cloned()
                .ok_or_else(|| fatal(format!("arkd returned no checkpoint {txid}")))?;
            verify_signatures(&signed)
                .map_err(|e| fatal(format!("server checkpoint signature: {e}")))?;
            crate::audit::sign_psbt(
                &mut signed,
                &self.keypair,
                "checkpoint",
                &s.id,
                s.ark_txid.as_ref(),
            )
            .map_err(fatal)?; // the relay's own inputs
            signed_checkpoints.push(signed);
        }
        data.ark_tx = submitted.final_ark_tx.to_string();
        data.checkpoints = signed_checkpoints.iter().map(|p| p.to_string()).collect();
        let author_checkpoints: Vec<Psbt> = signed_checkpoints[..data.author_inputs].to_vec();
        let sign = sign_requests(&author_checkpoints, &data.author).map_err(fatal)?;
        let context = format!(
            "Step 2/2: confirm the checkpoints of ark tx {}",
            short(&ark_txid.to_string())
        );
        self.send_challenge(
            s,
            data,
            2,
            ChallengeType::SignCheckpointTxs,
            author_checkpoints,
            sign,
            vec![],
            context,
            state::CHECKPOINT_TXS_PREPARED,
            Some(ark_txid),
        )
        .await
    }

    /// Drives a session stranded past `SubmitTx` forward from its record:
    /// `ark_tx_signed` asks arkd for the pending tx (proving ownership of the
    /// relay's own input) or submits again; `signatures_collected` finalizes
    /// again (idempotent at arkd) and commits (idempotent by ark txid).
    #[tracing::instrument(skip_all, fields(session = %s.id, state = %s.state))]
    pub async fn reconcile(&self, mut s: SessionRecord) -> Result<JobOutcome, HandlerError> {
        let data: TransferData = serde_json::from_str(&s.data).map_err(fatal)?;
        // Push the deadline first, so a failing reconcile is retried calmly.
        s.step_deadline = Some(self.clock.now().plus_secs(RECONCILE_AFTER_SECS * 3));
        if !self
            .store
            .update_session(&s, &[], self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        s.version += 1;
        match s.state.as_str() {
            state::ARK_TX_SIGNED => {
                let ark_tx = psbt(&data.ark_tx)?;
                let checkpoints: Vec<Psbt> = data
                    .checkpoints
                    .iter()
                    .map(|c| psbt(c))
                    .collect::<Result<_, _>>()?;
                let ark_txid = ark_tx.unsigned_tx.compute_txid();
                if let Some(pending) = self.pending(&data, ark_txid).await? {
                    tracing::info!(%ark_txid, "recovered the pending ark tx from arkd");
                    return self.after_submit(s, data, checkpoints, pending).await;
                }
                match self.ark.submit_tx(&ark_tx, &checkpoints).await {
                    Ok(sub) => self.after_submit(s, data, checkpoints, sub).await,
                    Err(e) if e.is_transient() => Err(transient(format!("arkd SubmitTx: {e}"))),
                    Err(e) => self.abandon_after_submit(s, ark_rejection(&e)).await,
                }
            }
            state::SIGNATURES_COLLECTED | state::ARK_EXECUTED => {
                let checkpoints: Vec<Psbt> = data
                    .checkpoints
                    .iter()
                    .map(|c| psbt(c))
                    .collect::<Result<_, _>>()?;
                self.finalize(s, data, checkpoints).await
            }
            _ => Ok(JobOutcome::default()),
        }
    }

    /// The pending tx `ark_txid` at arkd, found with a `get-pending-tx` proof
    /// over the relay's own inputs (`None` without such an input or if arkd
    /// has none).
    async fn pending(
        &self,
        data: &TransferData,
        ark_txid: bitcoin::Txid,
    ) -> Result<Option<ark_relay_core::backends::ark::SubmittedTx>, HandlerError> {
        self.pending_tx(&data.inputs[data.author_inputs..], ark_txid)
            .await
    }

    /// The pending tx `ark_txid` at arkd, found with a `get-pending-tx` proof
    /// over `own` (the relay's inputs of it); shared with batches.
    pub(crate) async fn pending_tx(
        &self,
        own: &[Vtxo],
        ark_txid: bitcoin::Txid,
    ) -> Result<Option<ark_relay_core::backends::ark::SubmittedTx>, HandlerError> {
        let server = self.server_info().await?;
        let own: Vec<VtxoInput> = own
            .iter()
            .map(|v| VtxoInput::from_vtxo(v, server))
            .collect::<Result<_, _>>()
            .map_err(fatal)?;
        if own.is_empty() {
            return Ok(None);
        }
        let expire = u64::try_from(self.clock.now().plus_secs(300).0).unwrap_or(u64::MAX);
        let (proof, message) =
            ark_relay_ark::pending_tx_proof(&own, &self.keypair, expire).map_err(fatal)?;
        crate::audit::proof_signed("pending_tx_proof", &ark_txid, &self.keypair, own.len());
        let intent = ark_relay_core::backends::ark::IntentProof { proof, message };
        match self.ark.get_pending_tx(&intent).await {
            Ok(all) => Ok(all.into_iter().find(|p| p.ark_txid == ark_txid)),
            Err(e) if e.is_transient() => Err(transient(format!("arkd GetPendingTx: {e}"))),
            Err(e) => {
                tracing::warn!(error = %e, "GetPendingTx refused the relay's proof");
                Ok(None)
            }
        }
    }

    async fn after_step2(
        &self,
        mut s: SessionRecord,
        mut data: TransferData,
        sigs: Vec<(u32, u32, schnorr::Signature)>,
    ) -> Result<JobOutcome, HandlerError> {
        let mut checkpoints: Vec<Psbt> = data
            .checkpoints
            .iter()
            .map(|c| psbt(c))
            .collect::<Result<_, _>>()?;
        let author = *data.author.x_only();
        for (p, i, sig) in &sigs {
            let ok = (*p as usize) < data.author_inputs
                && add_signature(&mut checkpoints[*p as usize], *i as usize, &author, *sig).is_ok();
            if !ok {
                let r = Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    format!("checkpoint signature {p}/{i} does not verify"),
                );
                return self.abandon_after_submit(s, r).await;
            }
        }
        for (n, c) in checkpoints.iter().enumerate() {
            if !is_fully_signed(c).map_err(fatal)? {
                let r = Rejection::new(
                    ErrorCode::InvalidResponseSignature,
                    format!("checkpoint {n} is not fully signed"),
                );
                return self.abandon_after_submit(s, r).await;
            }
        }
        data.checkpoints = checkpoints.iter().map(|p| p.to_string()).collect();
        s.steps_completed.push(s.state.clone());
        s.state = state::SIGNATURES_COLLECTED.into();
        s.current_step = None;
        s.step_deadline = Some(self.clock.now().plus_secs(RECONCILE_AFTER_SECS));
        s.data = serde_json::to_string(&data).map_err(fatal)?;
        if !self
            .store
            .update_session(&s, &[], self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(JobOutcome::default());
        }
        s.version += 1;
        self.finalize(s, data, checkpoints).await
    }

    async fn finalize(
        &self,
        mut s: SessionRecord,
        data: TransferData,
        checkpoints: Vec<Psbt>,
    ) -> Result<JobOutcome, HandlerError> {
        let ark_txid = s
            .ark_txid
            .ok_or_else(|| fatal("finalizing without an ark txid"))?;
        let t = std::time::Instant::now();
        match self
            .ark
            .finalize_tx(ark_txid, &checkpoints)
            .await
            .inspect(|_| crate::metrics::step(crate::metrics::step::FINALIZE, t.elapsed()))
        {
            Ok(()) => self.crash_at(CrashPoint::AfterFinalize)?,
            Err(e) if e.is_transient() => return Err(transient(format!("arkd FinalizeTx: {e}"))),
            Err(e) => {
                tracing::error!(session = %s.id, error = %e, "FinalizeTx rejected after SubmitTx");
                return self.abandon_after_submit(s, ark_rejection(&e)).await;
            }
        }
        let now = self.clock.now();
        let server = self.server_info().await?;
        let mut outputs = crate::server::new_vtxos(
            server,
            &self.relay,
            ark_txid,
            data.outputs.iter().map(|o| (o.owner, o.sats, o.colour)),
            &data.inputs,
        );
        // A land burns the landed colour in the ark tx that moves it to the
        // relay; the carrier sats join the relay's inventory.
        let mut burned = Vec::new();
        if data.land {
            for (o, planned) in outputs.iter_mut().zip(&data.outputs) {
                if o.owner == self.relay && !planned.fee {
                    if let Some(c) = o.colour.take() {
                        burned.push(c);
                        o.status = VtxoStatus::Available;
                    }
                }
            }
        }
        let l2 = L2Transaction {
            ark_txid,
            kind: if data.land { "land" } else { "p2p_transfer" }.into(),
            session: Some(s.id),
            inputs: data.inputs.iter().map(|v| v.id).collect(),
            outputs: outputs.clone(),
            issued: vec![],
            burned,
            finalized_at: now,
        };
        match self.store.commit_transaction(&l2).await {
            Ok(CommitOutcome::Committed | CommitOutcome::AlreadyCommitted) => {}
            Err(e @ ark_relay_core::StoreError::Ledger(_)) => {
                // arkd accepted what the ledger refuses: a bug; stop and shout.
                return Err(fatal(format!(
                    "ledger refused a finalized ark tx {ark_txid}: {e}"
                )));
            }
            Err(e) => return Err(transient(e)),
        }
        self.crash_at(CrashPoint::BeforeConfirmation)?;
        let entry = |id: VtxoId,
                     owner: PubKey,
                     sats: ark_relay_core::Sats,
                     colour: Option<Colour>| VtxoEntry {
            vtxo: id,
            owner,
            asset: colour.map(|c| AssetRef::Id(c.asset)),
            amount: colour.map(|c| c.amount.get()).unwrap_or(0),
            sats: sats.get(),
        };
        let confirmation = Confirmation {
            v: VERSION,
            ark_txid: ark_txid.to_string(),
            intents: vec![data.intent],
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
        let mut tagged: Vec<PubKey> = data.recipients.clone();
        tagged.push(data.author);
        let mut out = Vec::new();
        if data.land {
            // A land is announced once paid, with the preimage (crate::ramp).
            let lands = self
                .lands
                .as_ref()
                .ok_or_else(|| fatal("a land session without the ramps"))?;
            lands
                .land_moved(&data.intent, ark_txid, confirmation)
                .await?;
        } else {
            let ev = builders::confirmation(&self.keys, &confirmation, &tagged).map_err(fatal)?;
            out.push(self.outbox_event(&ev, format!("31340:{ark_txid}"), None));
        }
        s.steps_completed.push(state::ARK_EXECUTED.into());
        s.status = SessionStatus::Completed;
        s.state = state::COMPLETED.into();
        s.current_step = None;
        s.step_deadline = None;
        self.store
            .update_session(&s, &out, now)
            .await
            .map_err(transient)?;
        tracing::info!(session = %s.id, %ark_txid, "transfer completed");
        let kind = if data.land {
            "land_lightning"
        } else {
            "p2p_transfer"
        };
        crate::metrics::intent_outcome(kind, None);
        crate::metrics::step_since(crate::metrics::step::END_TO_END, s.created_at);
        Ok(JobOutcome::default())
    }

    /// After `SubmitTx` the inputs are spent at arkd whatever happens: the
    /// session fails, its locks stay (so nothing else spends what arkd holds),
    /// and the author is told.
    async fn abandon_after_submit(
        &self,
        mut s: SessionRecord,
        r: Rejection,
    ) -> Result<JobOutcome, HandlerError> {
        crate::metrics::intent_outcome("p2p_transfer", Some(r.code));
        let notice = self.notice(&s.user, &s.intent, &r, Scheme::Nip44)?;
        s.status = SessionStatus::Failed;
        s.state = state::FAILED.into();
        s.error_code = Some(r.code);
        s.error_message = Some(format!(
            "{} (after SubmitTx: inputs stay locked pending reconciliation)",
            r.message
        ));
        s.step_deadline = None;
        self.store
            .update_session(&s, &[notice], self.clock.now())
            .await
            .map_err(transient)?;
        Ok(JobOutcome::default())
    }

    /// Fails or expires every session whose step deadline or expiry passed
    /// before `SubmitTx` (5001); returns how many.
    pub async fn expire_due(&self) -> Result<usize, HandlerError> {
        let now = self.clock.now();
        let due = self.store.due_sessions(now, 500).await.map_err(transient)?;
        let mut n = 0;
        for s in due {
            if s.batch_id.is_some() {
                match self.expire_batch_session(s).await {
                    Ok(k) => n += k,
                    Err(e) => tracing::warn!(error = %e, "batch expiry failed; will retry"),
                }
                continue;
            }
            if matches!(
                s.state.as_str(),
                state::ARK_TX_SIGNED | state::SIGNATURES_COLLECTED | state::ARK_EXECUTED
            ) {
                if let Err(e) = self.reconcile(s).await {
                    tracing::warn!(error = %e, "reconcile failed; will retry");
                }
                continue;
            }
            if matches!(
                s.state.as_str(),
                state::INTENT_RECEIVED | state::ARK_TX_PREPARED
            ) {
                let r = Rejection::new(
                    ErrorCode::SessionExpired,
                    "the signing session expired before the wallet answered",
                );
                self.fail(s, r, true).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The Ark server's parameters as `get_info` publishes them for wallets.
pub fn server_info_json(server: &ServerInfo) -> serde_json::Value {
    serde_json::json!({
        "signer_pubkey": server.signer().to_string(),
        "forfeit_pubkey": server.forfeit_key().to_string(),
        "checkpoint_tapscript": server.checkpoint_tapscript().to_hex_string(),
        "unilateral_exit_delay": server.unilateral_exit_delay().to_server_value(),
        "checkpoint_exit_delay": server.checkpoint_exit_delay().to_server_value(),
        "dust": server.dust().get(),
        "network": server.network().to_string(),
    })
}

fn ark_rejection(e: &ArkServerError) -> Rejection {
    Rejection::new(
        e.code(),
        format!(
            "Ark server: {}",
            e.rejection().map(|r| r.name()).unwrap_or("rejected")
        ),
    )
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

fn hex_decode(s: &str) -> Result<Vec<u8>, ()> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s).map_err(|_| ())
}

#[async_trait]
impl JobHandler for Ceremony {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        match job.kind.as_str() {
            job_kind::INTENT => {
                let inbound: InboundJob = serde_json::from_str(&job.payload).map_err(fatal)?;
                self.on_intent(&inbound).await
            }
            job_kind::SIGNING_RESPONSE => {
                let inbound: InboundJob = serde_json::from_str(&job.payload).map_err(fatal)?;
                if let Some(out) = self.batch_signing_response(&inbound).await? {
                    return Ok(out);
                }
                self.on_response(&inbound).await
            }
            job_kind::SERVICE_REQUEST
                if serde_json::from_str::<InboundJob>(&job.payload)
                    .is_ok_and(|i| crate::batch::is_submit_batch(&i)) =>
            {
                let inbound: InboundJob = serde_json::from_str(&job.payload).map_err(fatal)?;
                self.on_submit_batch(&inbound).await
            }
            _ => self.base.handle(job, attempts).await,
        }
    }
}

/// Session expiry as a scheduler task (every second).
#[async_trait]
impl crate::Periodic for Ceremony {
    fn name(&self) -> &'static str {
        "session-expiry"
    }

    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    async fn tick(&self) {
        match self.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "signing sessions expired"),
            Err(e) => tracing::warn!(error = %e, "session expiry scan failed"),
        }
    }
}
