//! The one runner of every ceremony: load → step → persist the next state,
//! its outbox events, its party sessions and its lock release in **one**
//! database transaction → execute the remote effect through the ports →
//! feed the outcome back, until nothing remote is left.
//!
//! A lost race (another job moved the session first) reloads and steps
//! again; a transient failure of arkd or the database leaves the persisted
//! phase, whose retry time the recovery scan honours.
//!
//! Two remote effects are folded into the next write instead of a commit of
//! their own: the ledger commit (`Effect::Commit`) is applied in the same
//! transaction as the state that follows it, and the write that ends a
//! worker's job records the job `done` ([`crate::worker::JobInHand`]).

use std::sync::Arc;

use ark_relay_ark::{pending_tx_proof, ServerInfo, VtxoInput};
use ark_relay_ceremony::{
    self as machine, step, Ctx, Effect, Input, Phase, RelaySignature, Timing, Transition,
};
use ark_relay_core::backends::ark::{ArkServer, ArkServerError, IntentProof};
use ark_relay_core::{
    Clock, DynStore, EventId, L2Transaction, NewOutboxEvent, PubKey, SessionId, SessionRecord,
    SessionStatus, SessionWrite, StoreError,
};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::{builders, Rejection};
use bitcoin::secp256k1::{Keypair, Secp256k1};
use nostr::{JsonUtil, Keys};
use tokio::sync::OnceCell;

use super::data::SessionData;
use super::{fatal, transient, ChallengeTamper, CrashHook, CrashPoint};
use crate::handlers::HandlerError;
use crate::worker::JobInHand;

/// Sessions stuck in an arkd call are retried this long after it was due.
pub const RETRY_AFTER_SECS: i64 = 10;

/// A step ends this long after its deadline (see `Timing::grace_secs`):
/// longer than a dead worker's job takes to reach another worker.
pub const GRACE_SECS: i64 = 5;

/// Test-only hooks (crash points, a lying relay); empty in production.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) crash: Option<CrashHook>,
    pub(crate) tamper: Option<ChallengeTamper>,
}

/// What one persisted transition leads to.
enum Advance {
    /// Another writer was first: reload and step again.
    Conflict,
    /// Nothing remote to do.
    Done(Box<machine::Ceremony>),
    /// The remote effect's outcome, with the row and state it applies to.
    Outcome(Box<Outcome>),
}

/// A remote effect's outcome: the next input, the row and state it applies
/// to, and the ledger commit still to apply with the state that follows
/// (`Effect::Commit` is not run on its own: see the module docs).
struct Outcome {
    input: Input,
    row: SessionRecord,
    state: machine::Ceremony,
    ledger: Option<L2Transaction>,
}

/// Whether a write is the last of the job a worker holds, so that it
/// records the job `done` in its own transaction ([`JobInHand`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobEnd {
    /// More of the job follows the call.
    Later,
    /// The call's last write ends the job.
    Here,
}

/// See the module docs.
pub struct Runner {
    pub(crate) store: DynStore,
    pub(crate) ark: Arc<dyn ArkServer>,
    pub(crate) keys: Keys,
    pub(crate) keypair: Keypair,
    pub(crate) relay: PubKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) timing: Timing,
    server: OnceCell<ServerInfo>,
    pub(crate) hooks: Hooks,
    pub(crate) lands: Option<Arc<dyn super::LandDesk>>,
    /// The reconciliation's disputed set (inputs refused with 2006), if wired.
    pub(crate) disputes: Option<Arc<dyn ark_relay_core::reconcile::ReconcileStore>>,
}

impl Runner {
    /// A runner signing with `keys`.
    pub fn new(
        store: DynStore,
        ark: Arc<dyn ArkServer>,
        keys: Keys,
        clock: Arc<dyn Clock>,
        step_timeout_secs: i64,
    ) -> Self {
        let keypair = Keypair::from_secret_key(&Secp256k1::signing_only(), keys.secret_key());
        let relay = PubKey::from_x_only(keypair.x_only_public_key().0);
        Self {
            store,
            ark,
            keys,
            keypair,
            relay,
            clock,
            timing: Timing {
                step_timeout_secs,
                retry_after_secs: RETRY_AFTER_SECS,
                grace_secs: GRACE_SECS,
            },
            server: OnceCell::new(),
            hooks: Hooks::default(),
            lands: None,
            disputes: None,
        }
    }

    pub(crate) fn crash_at(&self, point: CrashPoint) -> Result<(), HandlerError> {
        match &self.hooks.crash {
            Some(hook) if hook(point) => Err(transient(format!("simulated crash at {point:?}"))),
            _ => Ok(()),
        }
    }

    /// The Ark server's parameters (fetched once).
    pub async fn server_info(&self) -> Result<&ServerInfo, HandlerError> {
        self.server
            .get_or_try_init(|| crate::server::fetch(self.ark.as_ref()))
            .await
    }

    /// The step context for now.
    pub(crate) fn ctx<'a>(&'a self, server: &'a ServerInfo) -> Ctx<'a> {
        Ctx {
            now: self.clock.now(),
            server,
            relay: &self.keypair,
            timing: self.timing,
        }
    }

    /// Persists a ceremony's first transition over its unstarted `row`
    /// (with `extra` events, e.g. a batch's accepted 31501) and runs it on.
    /// `false` if another writer changed the row first.
    pub(crate) async fn begin(
        &self,
        row: SessionRecord,
        t: Transition,
        extra: Vec<NewOutboxEvent>,
        run_on: bool,
        end: JobEnd,
    ) -> Result<bool, HandlerError> {
        match self.advance(row, &t, extra, run_on, end, None).await? {
            Advance::Conflict => Ok(false),
            Advance::Done(_) => Ok(true),
            Advance::Outcome(o) => {
                self.run_on(o.row, o.state, o.input, o.ledger, end).await?;
                Ok(true)
            }
        }
    }

    /// Steps the ceremony coordinated by `cid` with `input` and runs it on.
    /// Returns its state afterwards (`None`: no running ceremony there).
    pub(crate) async fn drive(
        &self,
        cid: &SessionId,
        input: Input,
    ) -> Result<Option<machine::Ceremony>, HandlerError> {
        self.drive_as(cid, input, JobEnd::Later).await
    }

    /// [`Runner::drive`] as the last thing the job in hand does: its last
    /// write records the job `done` ([`JobInHand`]).
    pub(crate) async fn drive_ending_job(
        &self,
        cid: &SessionId,
        input: Input,
    ) -> Result<Option<machine::Ceremony>, HandlerError> {
        self.drive_as(cid, input, JobEnd::Here).await
    }

    async fn drive_as(
        &self,
        cid: &SessionId,
        input: Input,
        end: JobEnd,
    ) -> Result<Option<machine::Ceremony>, HandlerError> {
        let Some((row, c)) = self.load(cid).await? else {
            return Ok(None);
        };
        self.run_on(row, c, input, None, end).await.map(Some)
    }

    /// Submits a ceremony whose first transition was persisted without its
    /// remote effect ([`Runner::start_persisted`]) by the same caller, and
    /// runs it on; anything else is resumed.
    pub(crate) async fn submit_now(
        &self,
        cid: &SessionId,
    ) -> Result<Option<machine::Ceremony>, HandlerError> {
        let Some((row, c)) = self.load(cid).await? else {
            return Ok(None);
        };
        if !matches!(
            c.phase,
            Phase::ArkTxSigned {
                resubmit: false,
                ..
            }
        ) {
            return self
                .run_on(row, c, Input::Resume, None, JobEnd::Later)
                .await
                .map(Some);
        }
        // Claim it first (a version-checked write of the same state), so a
        // concurrent caller never submits it a second time.
        let claim = SessionWrite {
            session: &row,
            mirrors: &[],
            outbox: &[],
            release_locks: false,
            ledger: None,
            finish_job: None,
        };
        if !self
            .store
            .write_session(&claim, self.clock.now())
            .await
            .map_err(transient)?
        {
            return Ok(Some(c));
        }
        let mut row = row;
        row.version += 1;
        let submit = Effect::Submit {
            ark_tx: c.ark_tx.clone(),
            checkpoints: c.checkpoints.clone(),
        };
        let outcome = self.execute(&c, &submit).await?;
        self.crash_at(CrashPoint::AfterSubmit)?;
        self.run_on(row, c, outcome, None, JobEnd::Later)
            .await
            .map(Some)
    }

    async fn load(
        &self,
        cid: &SessionId,
    ) -> Result<Option<(SessionRecord, machine::Ceremony)>, HandlerError> {
        let Some(row) = self.store.session(cid).await.map_err(transient)? else {
            return Ok(None);
        };
        match SessionData::parse(&row)? {
            SessionData::Running(c) => Ok(Some((row, *c))),
            _ => Ok(None),
        }
    }

    /// Steps `c` (persisted as `row`) with `input` until nothing remote is
    /// left. `ledger`: the commit to apply with the next state (the outcome
    /// of a deferred `Effect::Commit`).
    async fn run_on(
        &self,
        mut row: SessionRecord,
        mut c: machine::Ceremony,
        mut input: Input,
        mut ledger: Option<L2Transaction>,
        end: JobEnd,
    ) -> Result<machine::Ceremony, HandlerError> {
        let server = self.server_info().await?;
        let mut conflicts = 0u32;
        loop {
            let answer = matches!(input, Input::Answer { .. });
            let t = step(&c, input.clone(), &self.ctx(server)).map_err(fatal)?;
            if !t.changed(&c) {
                return Ok(c);
            }
            // Only the state that follows a commit carries it (a reloaded
            // state that does not take `Committed` stays and writes nothing).
            let with = ledger
                .as_ref()
                .filter(|_| matches!(input, Input::Committed));
            match self.advance(row, &t, vec![], true, end, with).await? {
                Advance::Conflict => {
                    conflicts += 1;
                    if conflicts > 16 {
                        return Err(transient("the session is contended; retry"));
                    }
                    match self.load(&c.id).await? {
                        Some((r, fresh)) => (row, c) = (r, fresh),
                        None => return Ok(c),
                    }
                }
                Advance::Done(next) => {
                    let next = *next;
                    let waiting = matches!(
                        next.phase,
                        Phase::ArkTxPrepared { .. } | Phase::CheckpointTxsPrepared { .. }
                    );
                    if answer && waiting && next.is_batch() {
                        self.crash_at(CrashPoint::BetweenPartySignatures)?;
                    }
                    return Ok(next);
                }
                Advance::Outcome(o) => {
                    let o = *o;
                    (input, row, c, ledger) = (o.input, o.row, o.state, o.ledger);
                    conflicts = 0;
                }
            }
        }
    }

    /// Persists `t` over `row` in one transaction (with `ledger` applied in
    /// it, and with `end`, the job in hand recorded `done` if nothing remote
    /// follows), then (with `remote`) executes its remote effect.
    async fn advance(
        &self,
        row: SessionRecord,
        t: &Transition,
        extra: Vec<NewOutboxEvent>,
        remote: bool,
        end: JobEnd,
        ledger: Option<&L2Transaction>,
    ) -> Result<Advance, HandlerError> {
        let now = self.clock.now();
        let next_row = row_for(&row, &t.next)?;
        let mut outbox = self.outbox(&t.next, &t.effects)?;
        outbox.extend(extra);
        let mirrors = if next_row.state != row.state {
            mirrors(&t.next, &next_row)?
        } else {
            vec![]
        };
        let remote = t.remote().filter(|_| remote);
        let job = (end == JobEnd::Here && remote.is_none())
            .then(JobInHand::current)
            .flatten();
        let write = SessionWrite {
            session: &next_row,
            mirrors: &mirrors,
            outbox: &outbox,
            release_locks: t.effects.iter().any(|e| matches!(e, Effect::ReleaseLocks)),
            ledger,
            finish_job: job.as_deref().map(JobInHand::key),
        };
        let written = self
            .store
            .write_session(&write, now)
            .await
            .map_err(|e| match e {
                e @ StoreError::Ledger(_) => fatal(format!(
                    "ledger refused a finalized ark tx {}: {e}",
                    t.next.ark_txid
                )),
                e => transient(e),
            })?;
        if !written {
            return Ok(Advance::Conflict);
        }
        if let Some(job) = job {
            job.recorded();
        }
        self.audit(&t.next, &t.signed);
        observe(&row, &t.next);
        let Some(remote) = remote else {
            return Ok(Advance::Done(Box::new(t.next.clone())));
        };
        let mut row = next_row;
        row.version += 1;
        // The ledger commit is applied with the state that follows it.
        if let Effect::Commit(l2) = remote {
            self.crash_at(CrashPoint::BeforeConfirmation)?;
            return Ok(Advance::Outcome(Box::new(Outcome {
                input: Input::Committed,
                row,
                state: t.next.clone(),
                ledger: Some(l2.clone()),
            })));
        }
        let outcome = self.execute(&t.next, remote).await?;
        match remote {
            Effect::Submit { .. } => self.crash_at(CrashPoint::AfterSubmit)?,
            Effect::Finalize { .. } => self.crash_at(CrashPoint::AfterFinalize)?,
            _ => {}
        }
        Ok(Advance::Outcome(Box::new(Outcome {
            input: outcome,
            row,
            state: t.next.clone(),
            ledger: None,
        })))
    }

    /// The outbox rows of the local effects.
    fn outbox(
        &self,
        c: &machine::Ceremony,
        effects: &[Effect],
    ) -> Result<Vec<NewOutboxEvent>, HandlerError> {
        let mut out = Vec::new();
        for e in effects {
            match e {
                Effect::Challenge {
                    party,
                    dedupe_key,
                    challenge,
                } => {
                    let p = c
                        .parties
                        .get(*party)
                        .ok_or_else(|| fatal("challenge for no party"))?;
                    let ev = builders::signing_challenge(
                        &self.keys,
                        &p.author,
                        &p.intent,
                        challenge,
                        Scheme::Nip44,
                    )
                    .map_err(fatal)?;
                    out.push(NewOutboxEvent {
                        dedupe_key: dedupe_key.clone(),
                        kind: ev.kind.as_u16(),
                        recipient: Some(p.author),
                        event_json: ev.as_json(),
                    });
                }
                Effect::Notify {
                    to,
                    answered,
                    rejection,
                    nip04,
                } => out.push(self.notice(to, answered, rejection, *nip04)?),
                Effect::Confirm {
                    confirmation,
                    tagged,
                } => {
                    let ev =
                        builders::confirmation(&self.keys, confirmation, tagged).map_err(fatal)?;
                    out.push(NewOutboxEvent {
                        dedupe_key: format!("31340:{}", c.ark_txid),
                        kind: ev.kind.as_u16(),
                        recipient: None,
                        event_json: ev.as_json(),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A 31341 to `to` answering `answered`.
    pub(crate) fn notice(
        &self,
        to: &PubKey,
        answered: &EventId,
        r: &Rejection,
        nip04: bool,
    ) -> Result<NewOutboxEvent, HandlerError> {
        let scheme = if nip04 { Scheme::Nip04 } else { Scheme::Nip44 };
        crate::failure_notice(&self.keys, to, answered, r, scheme).map_err(fatal)
    }

    fn audit(&self, c: &machine::Ceremony, signed: &[RelaySignature]) {
        for s in signed {
            tracing::info!(
                target: crate::audit::TARGET,
                op = "sign_input",
                what = s.what,
                session = %c.id,
                ark_txid = %c.ark_txid,
                txid = %s.txid,
                input_index = s.input_index,
                pubkey = %self.relay,
                "relay signed an Ark input"
            );
            crate::metrics::signed(s.what, 1);
        }
    }

    /// Executes a remote effect through the ports; its outcome is the next input.
    async fn execute(&self, c: &machine::Ceremony, effect: &Effect) -> Result<Input, HandlerError> {
        let t = std::time::Instant::now();
        match effect {
            Effect::Submit {
                ark_tx,
                checkpoints,
            } => match self.ark.submit_tx(ark_tx, checkpoints).await {
                Ok(sub) => {
                    crate::metrics::step(crate::metrics::step::SUBMIT, t.elapsed());
                    Ok(Input::Submitted(sub))
                }
                Err(e) if e.is_transient() => Err(transient(format!("arkd SubmitTx: {e}"))),
                Err(e) => Ok(Input::SubmitRefused(ark_rejection(&e))),
            },
            Effect::FindPending { ark_txid } => self.find_pending(c, ark_txid).await,
            Effect::Finalize {
                ark_txid,
                checkpoints,
            } => match self.ark.finalize_tx(*ark_txid, checkpoints).await {
                Ok(()) => {
                    crate::metrics::step(crate::metrics::step::FINALIZE, t.elapsed());
                    Ok(Input::Finalized)
                }
                Err(e) if e.is_transient() => Err(transient(format!("arkd FinalizeTx: {e}"))),
                Err(e) => {
                    tracing::warn!(session = %c.id, error = %e, "FinalizeTx refused after SubmitTx");
                    Ok(Input::FinalizeRefused(ark_rejection(&e)))
                }
            },
            Effect::HandOver(confirmation) => {
                let lands = self
                    .lands
                    .as_ref()
                    .ok_or_else(|| fatal("a land session without the ramps"))?;
                let intent = c
                    .parties
                    .first()
                    .ok_or_else(|| fatal("a land without its party"))?
                    .intent;
                lands
                    .land_moved(&intent, c.ark_txid, confirmation.clone())
                    .await?;
                Ok(Input::HandedOver)
            }
            // `Effect::Commit` is applied with the next write (`advance`).
            other => Err(fatal(format!("not an effect run on its own: {other:?}"))),
        }
    }

    /// The pending tx at arkd, found with a `get-pending-tx` proof over the
    /// relay's own inputs (`NotPending` without such an input or if arkd has none).
    async fn find_pending(
        &self,
        c: &machine::Ceremony,
        ark_txid: &bitcoin::Txid,
    ) -> Result<Input, HandlerError> {
        let server = self.server_info().await?;
        let own: Vec<VtxoInput> = c
            .relay_inputs()
            .iter()
            .map(|v| VtxoInput::from_vtxo(v, server))
            .collect::<Result<_, _>>()
            .map_err(fatal)?;
        if own.is_empty() {
            return Ok(Input::NotPending);
        }
        let expire = u64::try_from(self.clock.now().plus_secs(300).0).unwrap_or(u64::MAX);
        let (proof, message) = pending_tx_proof(&own, &self.keypair, expire).map_err(fatal)?;
        crate::audit::proof_signed("pending_tx_proof", ark_txid, &self.keypair, own.len());
        match self
            .ark
            .get_pending_tx(&IntentProof { proof, message })
            .await
        {
            Ok(all) => Ok(all
                .into_iter()
                .find(|p| &p.ark_txid == ark_txid)
                .map(Input::Submitted)
                .unwrap_or(Input::NotPending)),
            Err(e) if e.is_transient() => Err(transient(format!("arkd GetPendingTx: {e}"))),
            Err(e) => {
                tracing::warn!(error = %e, "GetPendingTx refused the relay's proof");
                Ok(Input::NotPending)
            }
        }
    }

    /// Ends a session whose ceremony never started (validation, planning or
    /// locking failed): failed, its locks released, `outbox` queued — one
    /// transaction, which also records the job in hand `done` (so this is
    /// the last write of a job that calls it). `false` if another writer
    /// changed it first.
    pub(crate) async fn end_unstarted(
        &self,
        row: &SessionRecord,
        r: &Rejection,
        outbox: &[NewOutboxEvent],
        expired: bool,
    ) -> Result<bool, HandlerError> {
        let mut s = row.clone();
        s.status = if expired {
            SessionStatus::Expired
        } else {
            SessionStatus::Failed
        };
        s.state = if expired { "expired" } else { "failed" }.into();
        s.error_code = Some(r.code);
        s.error_message = Some(r.message.clone());
        s.step_deadline = None;
        s.current_step = None;
        let job = JobInHand::current();
        let write = SessionWrite {
            session: &s,
            mirrors: &[],
            outbox,
            release_locks: true,
            ledger: None,
            finish_job: job.as_deref().map(JobInHand::key),
        };
        let done = self
            .store
            .write_session(&write, self.clock.now())
            .await
            .map_err(transient)?;
        if let (true, Some(job)) = (done, job) {
            job.recorded();
        }
        if done {
            tracing::info!(session = %row.id, code = r.code.code(), reason = %r.message, "session failed");
        }
        Ok(done)
    }
}

/// The row of the coordinating session after `c`'s transition.
fn row_for(prev: &SessionRecord, c: &machine::Ceremony) -> Result<SessionRecord, HandlerError> {
    let mut r = prev.clone();
    let name = c.phase.name();
    if r.state != name {
        r.steps_completed.push(std::mem::take(&mut r.state));
    }
    r.state = name.to_owned();
    r.status = c.phase.status();
    r.current_step = c.phase.current_step().map(str::to_owned);
    r.step_deadline = c.phase.wake_at();
    r.ark_txid = Some(c.ark_txid);
    if let Some(f) = c.phase.failure() {
        r.error_code = Some(f.code());
        r.error_message = Some(f.message.clone());
    }
    r.data = SessionData::Running(Box::new(c.clone())).json()?;
    Ok(r)
}

/// The party sessions of a batch, following the coordinator's row.
fn mirrors(c: &machine::Ceremony, row: &SessionRecord) -> Result<Vec<SessionRecord>, HandlerError> {
    let data = SessionData::Party.json()?;
    Ok(c.parties
        .iter()
        .filter(|p| p.session != c.id)
        .map(|p| SessionRecord {
            id: p.session,
            user: p.author,
            intent: p.intent,
            status: row.status,
            state: row.state.clone(),
            current_step: row.current_step.clone(),
            steps_completed: vec![],
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: c.expires_at.plus_secs(60),
            step_deadline: None,
            error_code: row.error_code,
            error_message: row.error_message.clone(),
            data: data.clone(),
            batch_id: row.batch_id.clone(),
            ark_txid: Some(c.ark_txid),
            version: 0,
        })
        .collect())
}

/// Logs and counts what a transition ended.
fn observe(prev: &SessionRecord, c: &machine::Ceremony) {
    if prev.state == c.phase.name() {
        return;
    }
    let kind = c.purpose.intent_kind();
    match &c.phase {
        Phase::Completed => {
            tracing::info!(session = %c.id, ark_txid = %c.ark_txid, kind, "ceremony completed");
            crate::metrics::intent_outcome(kind, None);
            crate::metrics::step_since(crate::metrics::step::END_TO_END, prev.created_at);
        }
        Phase::Failed { failure, .. } | Phase::Stranded { failure } => {
            tracing::info!(session = %c.id, code = failure.code, reason = %failure.message, state = c.phase.name(), "ceremony failed");
            crate::metrics::intent_outcome(kind, Some(failure.code()));
        }
        Phase::ArkTxPrepared { .. } => {
            crate::metrics::step_since(crate::metrics::step::INTENT_TO_CHALLENGE, prev.created_at);
        }
        _ => {}
    }
}

/// A refusal by arkd as a public rejection.
pub(crate) fn ark_rejection(e: &ArkServerError) -> Rejection {
    Rejection::new(
        e.code(),
        format!(
            "Ark server: {}",
            e.rejection().map(|r| r.name()).unwrap_or("rejected")
        ),
    )
}
