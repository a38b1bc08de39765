//! Intake of single intents (`p2p_transfer`, `land_lightning`) and of
//! signing responses, and the one plan-and-lock loop every ceremony uses.

use std::collections::BTreeMap;

use ark_relay_ceremony::{
    plan, prepare, start, Answer, Input, Party, PartyRequest, Payment, Plan, PlanRequest, Purpose,
    Start, Transition,
};
use ark_relay_core::reconcile::DisputeReason;
use ark_relay_core::{
    AssetAmount, AssetId, Colour, ErrorCode, LedgerError, NewOutboxEvent, SessionId, SessionRecord,
    StoreError, Vtxo, VtxoId,
};
use ark_relay_protocol::content::{AssetRef, IntentType, SigningResponse};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::{validate_intent, ValidIntent};
use ark_relay_protocol::{event_id_from_nostr, pubkey_from_nostr, Rejection};

use super::data::{unstarted, SessionData};
use super::runner::{JobEnd, Runner};
use super::{fatal, transient, Ceremony, CrashPoint};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;

/// Free inventory VTXOs considered per plan.
const INVENTORY_WINDOW: u32 = 32;

/// Lock attempts before giving up on a contended inventory.
const LOCK_ATTEMPTS: u32 = 16;

/// 2006 if the plan spends a VTXO the last reconciliation disputed: nothing
/// is locked yet, so nothing needs releasing.
fn refuse_disputed(p: &Plan, disputed: &BTreeMap<VtxoId, DisputeReason>) -> Result<(), Rejection> {
    match p
        .inputs
        .iter()
        .find_map(|v| disputed.get(&v.id).map(|r| (v.id, *r)))
    {
        Some((vtxo, reason)) => Err(Rejection::new(
            ErrorCode::ColourMismatch,
            format!(
                "input {vtxo} is disputed: its {reason} in the relay's ledger differs from the Ark \
                 server's indexer (reconciliation); spend other VTXOs"
            ),
        )),
        None => Ok(()),
    }
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

impl Runner {
    /// Plans from the parties' VTXOs and a window of free inventory, checks
    /// the plan with `check`, and locks every input under `session`,
    /// planning again when another session took an inventory VTXO first.
    /// A redelivered job's own earlier locks are released first.
    pub(crate) async fn plan_and_lock(
        &self,
        session: &SessionId,
        parties: &[PartyRequest],
        relay_pays: &[Payment],
        check: &(dyn Fn(&Plan) -> Result<(), Rejection> + Send + Sync),
    ) -> Result<Result<Plan, Rejection>, HandlerError> {
        self.store.release_locks(session).await.map_err(transient)?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let p = match self
                .plan_once(session, parties, relay_pays, check, attempt)
                .await?
            {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            let ids: Vec<VtxoId> = p.inputs.iter().map(|v| v.id).collect();
            match self.store.lock_vtxos(&ids, session, self.clock.now()).await {
                Ok(()) => {
                    self.crash_at(CrashPoint::AfterLock)?;
                    return Ok(Ok(p));
                }
                // Another session took (or spent) an inventory VTXO first: plan again.
                Err(StoreError::Ledger(
                    LedgerError::Locked { vtxo, .. } | LedgerError::AlreadySpent(vtxo),
                )) if attempt < LOCK_ATTEMPTS && p.relay_inputs().iter().any(|v| v.id == vtxo) => {}
                Err(StoreError::Ledger(e)) => return Ok(Err(e.into())),
                Err(e) => return Err(transient(e)),
            }
        }
    }

    /// One plan, checked with `check`, locking nothing (a batch's dry run
    /// before it consumes its intents; each attempt of [`Self::plan_and_lock`]).
    pub(crate) async fn plan_once(
        &self,
        session: &SessionId,
        parties: &[PartyRequest],
        relay_pays: &[Payment],
        check: &(dyn Fn(&Plan) -> Result<(), Rejection> + Send + Sync),
        attempt: u32,
    ) -> Result<Result<Plan, Rejection>, HandlerError> {
        let server = self.server_info().await?;
        let control = self.control_for(relay_pays).await?;
        let req = PlanRequest {
            parties,
            relay_pays,
            relay: self.relay,
            dust: server.dust(),
            control: control.as_ref(),
        };
        let mut vtxos: Vec<Vec<Vtxo>> = Vec::with_capacity(parties.len());
        for p in parties {
            vtxos.push(
                self.store
                    .unspent_vtxos(&p.author)
                    .await
                    .map_err(transient)?,
            );
        }
        // A window of free inventory at a pseudo-random offset, so that
        // concurrent sessions rarely race for the same VTXOs.
        let spread = u32::from(session.as_bytes()[0]) * 8 + attempt * 37;
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
        let disputed = self.disputed(&vtxos, &inventory).await?;
        inventory.retain(|v| !disputed.contains_key(&v.id));
        Ok(plan(&req, &vtxos, &inventory).and_then(|p| {
            refuse_disputed(&p, &disputed)?;
            check(&p)?;
            Ok(p)
        }))
    }

    /// The disputed VTXOs (and why) among the parties' VTXOs and `inventory`.
    async fn disputed(
        &self,
        vtxos: &[Vec<Vtxo>],
        inventory: &[Vtxo],
    ) -> Result<BTreeMap<VtxoId, DisputeReason>, HandlerError> {
        let Some(disputes) = &self.disputes else {
            return Ok(BTreeMap::new());
        };
        let ids: Vec<VtxoId> = vtxos
            .iter()
            .flatten()
            .chain(inventory)
            .map(|v| v.id)
            .collect();
        let found = disputes.disputes_among(&ids).await.map_err(transient)?;
        Ok(found.into_iter().map(|d| (d.vtxo, d.reason)).collect())
    }

    /// The first transition of a ceremony over `plan`: builds the
    /// transaction, applies the test tamper hook, starts the machine.
    async fn first(
        &self,
        row: &SessionRecord,
        purpose: Purpose,
        parties: Vec<Party>,
        plan: Plan,
        issued: Vec<Colour>,
    ) -> Result<Transition, HandlerError> {
        let server = self.server_info().await?;
        let ctx = self.ctx(server);
        let mut prepared = prepare(&plan, &ctx).map_err(fatal)?;
        if let Some(tamper) = &self.hooks.tamper {
            tamper(&mut prepared.ark_tx, &mut prepared.hints);
        }
        let s = Start {
            id: row.id,
            purpose,
            parties,
            plan,
            prepared,
            issued,
            expires_at: row.expires_at,
        };
        start(s, &ctx).map_err(fatal)
    }

    /// Starts the ceremony of `plan` over its unstarted `row` (with the
    /// events `extra` makes from the ark txid queued alongside) and runs it
    /// on. `false` if another writer ended the row first (this run's locks
    /// are then released).
    pub(crate) async fn start_over(
        &self,
        row: SessionRecord,
        purpose: Purpose,
        parties: Vec<Party>,
        plan: Plan,
        issued: Vec<Colour>,
        extra: &(dyn Fn(bitcoin::Txid) -> Result<Vec<NewOutboxEvent>, HandlerError> + Send + Sync),
    ) -> Result<bool, HandlerError> {
        let t = self.first(&row, purpose, parties, plan, issued).await?;
        let id = row.id;
        let extra = extra(t.next.ark_txid)?;
        // Every caller ends its job here: the last write records it done.
        let begun = self.begin(row, t, extra, true, JobEnd::Here).await?;
        if !begun {
            self.release_if_ended(&id).await?;
        }
        Ok(begun)
    }

    /// Persists the first transition of a ceremony without running its
    /// remote effect (the caller resumes it).
    pub(crate) async fn start_persisted(
        &self,
        row: SessionRecord,
        purpose: Purpose,
        plan: Plan,
        issued: Vec<Colour>,
    ) -> Result<bool, HandlerError> {
        let t = self.first(&row, purpose, vec![], plan, issued).await?;
        let id = row.id;
        let begun = self.begin(row, t, vec![], false, JobEnd::Later).await?;
        if !begun {
            self.release_if_ended(&id).await?;
        }
        Ok(begun)
    }

    /// Another writer ended the session first (e.g. the expiry scan):
    /// whatever this run locked is not needed.
    async fn release_if_ended(&self, id: &SessionId) -> Result<(), HandlerError> {
        let ended = self
            .store
            .session(id)
            .await
            .map_err(transient)?
            .is_some_and(|s| s.status.is_final());
        if ended {
            self.store.release_locks(id).await.map_err(transient)?;
        }
        Ok(())
    }
}

impl Ceremony {
    /// Resolves an asset reference to an enabled asset.
    async fn resolve(&self, asset: &AssetRef) -> Result<AssetId, Rejection> {
        let all = self.assets().await?;
        ark_relay_protocol::names::resolve(&all, asset)
    }

    async fn assets(&self) -> Result<Vec<ark_relay_core::Asset>, Rejection> {
        self.runner
            .store
            .assets()
            .await
            .map_err(|e| Rejection::new(e.code(), e.to_string()))
    }

    /// The intent's payments with assets resolved; a land's payment to the
    /// relay is burned on arrival.
    pub(crate) async fn payments(
        &self,
        intent: &ValidIntent,
        land: bool,
    ) -> Result<Vec<Payment>, Rejection> {
        let mut payments = Vec::with_capacity(intent.outputs.len());
        if !land && intent.outputs.iter().any(|o| o.fee) {
            // A fee may name gBTC by ticker or by id (docs/protocol.md "Asset names").
            let all = self.assets().await?;
            if let Some(o) = intent
                .outputs
                .iter()
                .find(|o| o.fee && !ark_relay_protocol::names::is_gbtc(&all, &o.asset))
            {
                return Err(Rejection::new(
                    ErrorCode::FeeOutput,
                    format!("fee must be paid in gBTC, not {}", o.asset),
                ));
            }
        }
        for o in &intent.outputs {
            let colour = Colour {
                asset: self.resolve(&o.asset).await?,
                amount: AssetAmount::new(o.amount),
            };
            payments.push(Payment {
                recipient: o.recipient,
                colour,
                fee: o.fee,
                burn: land && !o.fee && o.recipient == self.runner.relay,
            });
        }
        Ok(payments)
    }

    /// The session row of an intent: read, or created (`intent_received`).
    pub(crate) async fn intent_row(
        &self,
        inbound: &InboundJob,
    ) -> Result<Option<SessionRecord>, HandlerError> {
        let store = &self.runner.store;
        let now = self.runner.clock.now();
        let id = event_id_from_nostr(&inbound.event.id);
        let sid = SessionId::from(id);
        if store.session(&sid).await.map_err(transient)?.is_none() {
            let author =
                pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author key"))?;
            let mut s = unstarted(
                sid,
                author,
                id,
                now,
                now.plus_secs(self.config.session_ttl_secs),
                &SessionData::Received,
            )?;
            s.step_deadline = Some(now.plus_secs(self.config.step_timeout_secs));
            store.create_session(&s).await.map_err(transient)?;
        }
        match store.session(&sid).await.map_err(transient)? {
            Some(s)
                if matches!(SessionData::parse(&s)?, SessionData::Received)
                    && !s.status.is_final() =>
            {
                Ok(Some(s))
            }
            _ => Ok(None), // started or ended by an earlier delivery
        }
    }

    /// Ends an intent's unstarted session with `r` (31341 to its author).
    pub(crate) async fn refuse_intent(
        &self,
        row: &SessionRecord,
        r: Rejection,
    ) -> Result<JobOutcome, HandlerError> {
        let notice = self.runner.notice(&row.user, &row.intent, &r, false)?;
        crate::metrics::intent_outcome("p2p_transfer", Some(r.code));
        self.runner
            .end_unstarted(row, &r, std::slice::from_ref(&notice), false)
            .await?;
        Ok(JobOutcome::default())
    }

    /// A `p2p_transfer` or `land_lightning` intent: validate, plan, lock,
    /// build, and send the step-1 challenge.
    #[tracing::instrument(skip_all, fields(intent = %inbound.event.id))]
    pub(crate) async fn on_intent(&self, inbound: &InboundJob) -> Result<JobOutcome, HandlerError> {
        let Some(row) = self.intent_row(inbound).await? else {
            return Ok(JobOutcome::default());
        };
        let intent = match validate_intent(&inbound.event, &self.policy, self.runner.clock.now()) {
            Ok(v) => v,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let land = intent.intent_type == IntentType::LandLightning;
        let purpose = match (&intent.intent_type, &self.runner.lands) {
            (IntentType::P2pTransfer, _) => Purpose::Transfer,
            (IntentType::LandLightning, Some(lands)) => {
                if let Err(r) = lands.open_land(&intent).await? {
                    return self.refuse_intent(&row, r).await;
                }
                Purpose::Land
            }
            (other, _) => {
                let r = Rejection::new(
                    ErrorCode::UnsupportedAction,
                    format!(
                        "{} intents are executed through submit_batch or are not enabled yet",
                        other.as_str()
                    ),
                );
                return self.refuse_intent(&row, r).await;
            }
        };
        let payments = match self.payments(&intent, land).await {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        // A land's fee is paid in the landed asset, however each is named.
        let landed: Vec<AssetId> = payments
            .iter()
            .filter(|p| !p.fee)
            .map(|p| p.colour.asset)
            .collect();
        if land
            && payments
                .iter()
                .any(|p| p.fee && !landed.contains(&p.colour.asset))
        {
            let r = Rejection::new(
                ErrorCode::FeeOutput,
                "land fee must be paid in the landed asset",
            );
            return self.refuse_intent(&row, r).await;
        }
        let summary = describe(&payments, &self.runner.relay);
        let party = match PartyRequest::paying(intent.author, payments, intent.inputs.clone()) {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let plan = match self
            .runner
            .plan_and_lock(&row.id, std::slice::from_ref(&party), &[], &|_| Ok(()))
            .await?
        {
            Ok(p) => p,
            Err(r) => return self.refuse_intent(&row, r).await,
        };
        let parties = vec![Party {
            author: intent.author,
            intent: intent.event_id,
            session: row.id,
            span: plan.spans[0],
            signed: false,
            summary,
            one_step: intent.one_step,
        }];
        if self
            .runner
            .start_over(row, purpose, parties, plan, vec![], &|_| Ok(vec![]))
            .await?
        {
            self.runner.crash_at(CrashPoint::AfterChallenge)?;
        }
        Ok(JobOutcome::default())
    }

    /// A 31512: routed to the ceremony its session belongs to.
    #[tracing::instrument(skip_all, fields(response = %inbound.event.id))]
    pub(crate) async fn on_response(
        &self,
        inbound: &InboundJob,
        attempts: u32,
    ) -> Result<JobOutcome, HandlerError> {
        let plain = inbound
            .plaintext
            .as_deref()
            .ok_or_else(|| fatal("response without plaintext"))?;
        let resp: SigningResponse = serde_json::from_str(plain).map_err(fatal)?;
        let responder =
            pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author key"))?;
        let unknown = |msg: &str| {
            let r = Rejection::new(ErrorCode::UnknownSession, msg.to_owned());
            self.base
                .failure(inbound, &r, inbound.answer_scheme())
                .map(|o| JobOutcome { outbox: vec![o] })
        };
        let Some(row) = self
            .runner
            .store
            .session(&resp.session_id)
            .await
            .map_err(transient)?
        else {
            return unknown("no signing session with this id");
        };
        if row.user != responder {
            return unknown("this session belongs to another key");
        }
        let coordinator = super::batch::coordinator_id(&row).unwrap_or(row.id);
        crate::metrics::step_since(crate::metrics::step::CHALLENGE_TO_RESPONSE, row.updated_at);
        let answer = match resp.reject {
            Some(reason) => Answer::Reject(reason),
            None => Answer::Signatures(resp.signatures),
        };
        let input = Input::Answer {
            session: row.id,
            step: resp.step,
            event: event_id_from_nostr(&inbound.event.id),
            received_at: inbound
                .received_at
                .unwrap_or_else(|| self.runner.clock.now()),
            nip04: inbound.answer_scheme() == Scheme::Nip04,
            answer,
        };
        // The answer's last write ends the job, unless a redelivery may
        // resume an arkd call after it (below).
        let driven = if attempts > 1 {
            self.runner.drive(&coordinator, input).await?
        } else {
            self.runner.drive_ending_job(&coordinator, input).await?
        };
        match driven {
            // A redelivered answer (its worker died or failed) may find the
            // ceremony inside an arkd call that worker never finished: with
            // one party nobody else can be making it, so resume it now
            // instead of at its retry time.
            Some(c) if attempts > 1 && !c.is_batch() && !c.phase.is_terminal() => {
                self.runner
                    .drive_ending_job(&coordinator, Input::Resume)
                    .await?;
                Ok(JobOutcome::default())
            }
            Some(_) => Ok(JobOutcome::default()),
            None if row.status.is_final() => Ok(JobOutcome::default()),
            None => unknown("the session is not waiting for this step"),
        }
    }
}

/// What a single party does, for its challenge's human-readable context.
fn describe(payments: &[Payment], relay: &ark_relay_core::PubKey) -> String {
    let fee: u64 = payments
        .iter()
        .filter(|p| p.fee)
        .map(|p| p.colour.amount.get())
        .sum();
    let pays: Vec<String> = payments
        .iter()
        .filter(|p| !p.fee)
        .map(|p| {
            let to = if &p.recipient == relay && p.burn {
                "the relay (landed)".to_owned()
            } else {
                short(&p.recipient.to_string())
            };
            format!(
                "{} of {} to {to}",
                p.colour.amount.get(),
                short(&p.colour.asset.to_string())
            )
        })
        .collect();
    format!("send {} (fee {fee})", pays.join(", "))
}
