//! [`RoundRunner`]: the one runner of the round-participation machine
//! (`ark_relay_ceremony::round`). A [`Periodic`](crate::Periodic) of the
//! scheduler leader: each tick first resumes any participation left open (a
//! previous process died, or this one lost its lease), then takes the due
//! round jobs into one new participation and drives it to its end.
//!
//! Every transition is persisted (`round_participations`, optimistic on
//! `version`) **before** its effects run; the last one ends the jobs in the
//! same transaction (done, back to the queue, or failed). A finalized round's
//! new VTXOs of relay-signed jobs are committed to the ledger first (one
//! `L2Transaction` keyed by the commitment txid: idempotent), so a crash
//! between the two repeats a harmless commit.
//!
//! While a relay-signed job is in a participation, its VTXO inputs are
//! locked in the ledger under the participation's lock session
//! ([`participation_lock`]), taken just before its intent is registered: a
//! ceremony (a lift spending the control VTXO of a relay-issued asset) finds
//! them locked and waits (transient), and a job whose input a ceremony holds
//! is not registered now but retried in a later round. The ledger commit of
//! a finalized round spends them under that session; the participation's end
//! releases the rest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::ServerInfo;
use ark_relay_ceremony::round::{
    crypto, step, Effect, EntryStatus, Input, JobInput, Participation, Phase, RoundCtx,
    RoundPolicy, Scratch, Transition,
};
use ark_relay_core::backends::ark::RoundEventStream;
use ark_relay_core::backends::ark::{
    ArkRejection, ArkServer, ArkServerError, IntentProof, VtxoQuery,
};
use ark_relay_core::backends::rounds::{RoundEvent, RoundTerms};
use ark_relay_core::rounds::{DynRoundStore, ParticipationRecord, RoundEnd};
use ark_relay_core::{Clock, DynStore, LedgerError, PubKey, SessionId, StoreError, VtxoId};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::key::{Keypair, Secp256k1};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use futures::StreamExt;
use rand::RngCore;

use super::RoundJobs;

#[path = "runner_ledger.rs"]
mod ledger;

/// Runner settings (`[rounds]` in the config).
#[derive(Debug, Clone)]
pub struct RoundsConfig {
    /// How often the leader looks for due jobs.
    pub every: Duration,
    /// How often a live participation re-checks its deadlines.
    pub tick: Duration,
    /// Timing and attempts.
    pub policy: RoundPolicy,
    /// Jobs per participation (one round).
    pub max_jobs: u32,
    /// How long to keep trying to delete a stale intent of ours that holds
    /// a job's inputs (about one round period).
    pub stale_intent_wait: Duration,
}

impl Default for RoundsConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            policy: RoundPolicy::default(),
            max_jobs: 64,
            stale_intent_wait: Duration::from_secs(30),
        }
    }
}

/// Decides whether to "crash" right after a transition to the named phase
/// was persisted, before its effects run (tests only).
pub type RoundCrashHook = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoundsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Ark server failed outside a participation's steps.
    #[error(transparent)]
    Ark(#[from] ArkServerError),
    /// The saga does not (de)serialise.
    #[error("participation state: {0}")]
    State(#[from] serde_json::Error),
    /// Another runner moved the participation.
    #[error("participation {0} was changed by another runner")]
    Conflict(String),
    /// A test crash hook fired.
    #[error("simulated crash after {0}")]
    Crashed(String),
    /// A finalized job's output carries an asset none of its inputs had.
    #[error("round output colour: {0}")]
    Colour(String),
}

/// The ledger lock session under which participation `id` holds the VTXO
/// inputs of its relay-signed jobs (derived, so a resumed run holds the same).
pub fn participation_lock(id: &str) -> SessionId {
    let mut data = b"ark-relay/round-participation/v1/".to_vec();
    data.extend_from_slice(id.as_bytes());
    SessionId::from_bytes(sha256::Hash::hash(&data).to_byte_array())
}

/// The relay's tree cosigner key: derived from the relay key, so it is the
/// same after a restart and users can name it in their delegations.
pub fn cosigner_key(relay: &Keypair) -> Keypair {
    let mut data = b"ark-relay/round-cosigner/v1".to_vec();
    data.extend_from_slice(&relay.secret_bytes());
    let digest = sha256::Hash::hash(&data).to_byte_array();
    let sk = SecretKey::from_slice(&digest).unwrap_or_else(|_| relay.secret_key());
    Keypair::from_secret_key(&Secp256k1::new(), &sk)
}

/// See the module docs.
pub struct RoundRunner {
    rounds: DynRoundStore,
    ledger: DynStore,
    ark: Arc<dyn ArkServer>,
    clock: Arc<dyn Clock>,
    server: ServerInfo,
    relay: Keypair,
    cosigner: Keypair,
    config: RoundsConfig,
    crash: Option<RoundCrashHook>,
}

impl RoundRunner {
    /// A runner for the relay key `relay` at the Ark server `ark`.
    pub fn new(
        rounds: DynRoundStore,
        ledger: DynStore,
        ark: Arc<dyn ArkServer>,
        clock: Arc<dyn Clock>,
        server: ServerInfo,
        relay: Keypair,
        config: RoundsConfig,
    ) -> Self {
        Self {
            cosigner: cosigner_key(&relay),
            rounds,
            ledger,
            ark,
            clock,
            server,
            relay,
            config,
            crash: None,
        }
    }

    /// Installs a [`RoundCrashHook`] (tests only).
    pub fn with_crash_hook(mut self, hook: RoundCrashHook) -> Self {
        self.crash = Some(hook);
        self
    }

    /// The job queue this runner takes from.
    pub fn jobs(&self) -> RoundJobs {
        RoundJobs::new(self.rounds.clone(), self.clock.clone())
    }

    /// The relay's cosigner key (the `delegate_cosigner_pk` of delegations).
    pub fn cosigner_pk(&self) -> PublicKey {
        self.cosigner.public_key()
    }

    fn relay_pubkey(&self) -> PubKey {
        PubKey::from_x_only(self.relay.x_only_public_key().0)
    }

    /// One run: resume open participations, then one new participation of
    /// the due jobs (if any). Returns the participations it ended.
    pub async fn run_once(&self) -> Result<Vec<Participation>, RoundsError> {
        let mut ended = Vec::new();
        for rec in self.rounds.open_participations().await? {
            let p: Participation = serde_json::from_str(&rec.state)?;
            tracing::info!(participation = %p.id, phase = p.phase.name(), "resuming round participation");
            ended.push(self.drive(p, rec.version, Input::Resumed).await?);
        }
        let now = self.clock.now();
        let due = self
            .rounds
            .due_round_jobs(now, self.config.max_jobs)
            .await?;
        if due.is_empty() {
            return Ok(ended);
        }
        let mut jobs = Vec::new();
        for rec in &due {
            match RoundJobs::decode(rec) {
                Ok(job) => jobs.push(job),
                Err(e) => tracing::warn!(job = %rec.job_id, error = %e, "round job skipped"),
            }
        }
        if jobs.is_empty() {
            return Ok(ended);
        }
        let p = Participation::new(format!("round-{}", random_id()), jobs, now);
        let ids: Vec<String> = p.entries.iter().map(|e| e.job.job_id.clone()).collect();
        let record = ParticipationRecord {
            participation_id: p.id.clone(),
            phase: p.phase.name().to_owned(),
            state: serde_json::to_string(&p)?,
            version: 0,
            done: false,
            created_at: now,
            updated_at: now,
        };
        if !self.rounds.start_participation(&record, &ids).await? {
            return Ok(ended);
        }
        tracing::info!(participation = %p.id, jobs = ids.len(), "joining the next round");
        ended.push(self.drive(p, 0, Input::Start).await?);
        Ok(ended)
    }

    /// Steps `p` from `first` until it ends (or a crash hook fires).
    async fn drive(
        &self,
        mut p: Participation,
        mut version: i64,
        first: Input,
    ) -> Result<Participation, RoundsError> {
        let terms = self.ark.round_terms().await?;
        let mut entropy = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut entropy);
        let mut scratch = Scratch::new(entropy);
        let mut stream: Option<RoundEventStream> = None;
        let mut queue = VecDeque::from([first]);
        loop {
            let input = match queue.pop_front() {
                Some(i) => i,
                None if p.phase.is_final() => return Ok(p),
                None => self.next_input(&mut stream).await,
            };
            let ctx = self.ctx(&terms);
            let Transition { next, effects } = step(&p, &mut scratch, input, &ctx);
            if next != p {
                self.persist(&next, version, &effects).await?;
                version += 1;
            }
            p = next;
            if let Some(hook) = &self.crash {
                if hook(p.phase.name()) {
                    return Err(RoundsError::Crashed(p.phase.name().to_owned()));
                }
            }
            for effect in effects {
                self.execute(effect, &p, &terms, &mut stream, &mut queue)
                    .await?;
            }
        }
    }

    fn ctx<'a>(&'a self, terms: &'a RoundTerms) -> RoundCtx<'a> {
        RoundCtx {
            server: &self.server,
            terms,
            relay: &self.relay,
            cosigner: &self.cosigner,
            now: self.clock.now(),
            policy: self.config.policy,
        }
    }

    /// Writes `next` (and, when it ends, the ledger and the jobs' ends).
    async fn persist(
        &self,
        next: &Participation,
        version: i64,
        effects: &[Effect],
    ) -> Result<(), RoundsError> {
        let state = serde_json::to_string(next)?;
        let now = self.clock.now();
        let ends = effects.iter().find_map(|e| match e {
            Effect::End { ends } => Some(ends),
            _ => None,
        });
        let ok = match ends {
            Some(ends) => {
                if let Phase::Finalized {
                    commitment_txid, ..
                } = &next.phase
                {
                    self.commit_ledger(next, *commitment_txid).await?;
                }
                self.ledger
                    .release_locks(&participation_lock(&next.id))
                    .await?;
                let ok = self
                    .rounds
                    .finish_participation(&next.id, version, next.phase.name(), &state, ends, now)
                    .await?;
                if ok {
                    self.record_ends(next, ends);
                }
                ok
            }
            None => {
                self.rounds
                    .save_participation(&next.id, version, next.phase.name(), &state, now)
                    .await?
            }
        };
        if ok {
            tracing::debug!(participation = %next.id, phase = next.phase.name(), "round participation saved");
            Ok(())
        } else {
            Err(RoundsError::Conflict(next.id.clone()))
        }
    }

    fn record_ends(&self, p: &Participation, ends: &[(String, RoundEnd)]) {
        let finalized = matches!(p.phase, Phase::Finalized { .. });
        crate::metrics::round(finalized);
        for (job_id, end) in ends {
            let kind = p
                .entries
                .iter()
                .find(|e| &e.job.job_id == job_id)
                .map_or("unknown", |e| e.job.kind.name());
            let outcome = match end {
                RoundEnd::Finalized { .. } => "done",
                RoundEnd::Retry { .. } | RoundEnd::Requeue { .. } => "retry",
                RoundEnd::Failed { .. } => "failed",
            };
            crate::metrics::round_job(kind, outcome);
        }
        match &p.phase {
            Phase::Finalized {
                commitment_txid, ..
            } => {
                tracing::info!(participation = %p.id, %commitment_txid, jobs = ends.len(), "round finalized")
            }
            Phase::Failed { reason } => {
                tracing::warn!(participation = %p.id, %reason, "round participation failed; its jobs are retried in a later round")
            }
            _ => {}
        }
    }

    async fn next_input(&self, stream: &mut Option<RoundEventStream>) -> Input {
        let Some(s) = stream.as_mut() else {
            tokio::time::sleep(self.config.tick).await;
            return Input::Tick;
        };
        tokio::select! {
            item = s.next() => match item {
                Some(Ok(RoundEvent::Heartbeat)) => Input::Tick,
                Some(Ok(event)) => Input::Event(event),
                Some(Err(e)) => {
                    tracing::info!(error = %e, "round event stream lost");
                    *stream = None;
                    Input::Resumed
                }
                None => {
                    *stream = None;
                    Input::Resumed
                }
            },
            () = tokio::time::sleep(self.config.tick) => Input::Tick,
        }
    }

    async fn execute(
        &self,
        effect: Effect,
        p: &Participation,
        terms: &RoundTerms,
        stream: &mut Option<RoundEventStream>,
        queue: &mut VecDeque<Input>,
    ) -> Result<(), RoundsError> {
        let failed = |what: &str, e: ArkServerError| Input::CallFailed {
            error: format!("{what}: {e}"),
        };
        match effect {
            Effect::Register {
                job_id,
                proof,
                message,
            } => {
                if let Some(refused) = self.lock_inputs(p, &job_id).await {
                    queue.push_back(refused);
                    return Ok(());
                }
                let intent = IntentProof { proof, message };
                let mut answer = self.ark.register_intent(&intent).await;
                if matches!(
                    answer.as_ref().err().and_then(ArkServerError::rejection),
                    Some(ArkRejection::VtxoAlreadyRegistered)
                ) {
                    // An intent of ours from an abandoned participation still
                    // holds the inputs (only the relay can have signed it).
                    // While a round holds it, it cannot be deleted: an
                    // unconfirmed one goes back to the queue when that round
                    // gives up on it (deletable until the next round takes
                    // it), a confirmed one is dropped when the round fails.
                    // Delete and register again until one works, for a while.
                    let deadline = tokio::time::Instant::now() + self.config.stale_intent_wait;
                    loop {
                        if let Err(e) = self.delete_intent(p, terms, &job_id).await {
                            tracing::debug!(job = %job_id, error = %e, "stale intent not deleted");
                        }
                        answer = self.ark.register_intent(&intent).await;
                        let held = matches!(
                            answer.as_ref().err().and_then(ArkServerError::rejection),
                            Some(ArkRejection::VtxoAlreadyRegistered)
                        );
                        if !held || tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                let input = match answer {
                    Ok(intent_id) => Input::Registered { job_id, intent_id },
                    Err(e) => Input::RegisterFailed {
                        job_id,
                        transient: retryable(&e),
                        error: e.to_string(),
                    },
                };
                queue.push_back(input);
            }
            Effect::Subscribe { topics } => match self.ark.round_events(&topics).await {
                Ok(s) => *stream = Some(s),
                Err(e) => queue.push_back(failed("event stream", e)),
            },
            Effect::Confirm { intent_ids } => {
                for id in intent_ids {
                    if let Err(e) = self.ark.confirm_registration(&id).await {
                        queue.push_back(failed("confirm", e));
                        break;
                    }
                }
            }
            Effect::SubmitNonces {
                round_id,
                cosigner,
                nonces,
            } => {
                if let Err(e) = self
                    .ark
                    .submit_tree_nonces(&round_id, &cosigner, &nonces)
                    .await
                {
                    queue.push_back(failed("tree nonces", e));
                }
            }
            Effect::SubmitSignatures {
                round_id,
                cosigner,
                signatures,
            } => {
                if let Err(e) = self
                    .ark
                    .submit_tree_signatures(&round_id, &cosigner, &signatures)
                    .await
                {
                    queue.push_back(failed("tree signatures", e));
                }
            }
            Effect::SubmitForfeits {
                forfeits,
                commitment,
                ..
            } => {
                tracing::info!(
                    target: "audit",
                    op = "sign_forfeits",
                    forfeits = forfeits.len(),
                    boarding = commitment.is_some(),
                    pubkey = %self.relay.x_only_public_key().0,
                    "relay signed round forfeits"
                );
                crate::metrics::signed("round_forfeit", u64::try_from(forfeits.len()).unwrap_or(0));
                if let Err(e) = self
                    .ark
                    .submit_signed_forfeits(&forfeits, commitment.as_ref())
                    .await
                {
                    queue.push_back(failed("forfeits", e));
                }
            }
            Effect::DeleteIntents { job_ids } => {
                for job_id in job_ids {
                    if let Err(e) = self.delete_intent(p, terms, &job_id).await {
                        tracing::debug!(job = %job_id, error = %e, "intent not deleted");
                    }
                }
            }
            Effect::CheckCommitment { commitment_txid } => {
                if let Some(created) = self.check(p).await {
                    tracing::info!(%commitment_txid, created, "round outcome checked at the indexer");
                    queue.push_back(Input::Outcome { created });
                }
            }
            Effect::End { .. } => {}
        }
        Ok(())
    }

    /// Locks the ledger VTXO inputs of relay-signed job `job_id` under the
    /// participation's lock session (idempotent). `Some(refusal)` when it
    /// must not be registered now: a ceremony holds an input (retried in a
    /// later round) or spent it (the job fails).
    async fn lock_inputs(&self, p: &Participation, job_id: &str) -> Option<Input> {
        let e = p.entries.iter().find(|e| e.job.job_id == job_id)?;
        if !e.job.relay_signed() {
            return None;
        }
        let mut ids: Vec<VtxoId> = Vec::new();
        for i in &e.job.inputs {
            if let JobInput::RelayVtxo { vtxo, .. } = i {
                match self.ledger.vtxo(vtxo).await {
                    Ok(Some(_)) => ids.push(*vtxo),
                    Ok(None) => {}
                    Err(err) => return Some(refused(job_id, true, &err)),
                }
            }
        }
        if ids.is_empty() {
            return None;
        }
        let lock = participation_lock(&p.id);
        match self.ledger.lock_vtxos(&ids, &lock, self.clock.now()).await {
            Ok(()) => None,
            Err(err @ StoreError::Ledger(LedgerError::Locked { .. })) => {
                tracing::info!(job = %job_id, error = %err, "round job waits: a signing session holds its input");
                Some(refused(job_id, true, &err))
            }
            Err(err @ StoreError::Ledger(_)) => Some(refused(job_id, false, &err)),
            Err(err) => Some(refused(job_id, true, &err)),
        }
    }

    /// Whether the participation's new VTXOs exist (`Some(true)`), or
    /// surely will not (`Some(false)`: none exists and our forfeited inputs
    /// are unspent), or it is too early to say (`None`).
    async fn check(&self, p: &Participation) -> Option<bool> {
        let created: Vec<_> = p.created.iter().map(|c| c.vtxo).collect();
        if !created.is_empty() {
            match self
                .ark
                .get_vtxos(&VtxoQuery::Outpoints(created.clone()))
                .await
            {
                Ok(found) if found.len() == created.len() => return Some(true),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        let inputs: Vec<_> = p
            .entries
            .iter()
            .filter(|e| e.in_round())
            .flat_map(|e| e.job.inputs.iter())
            .filter_map(|i| match i {
                JobInput::RelayVtxo { vtxo, .. } | JobInput::Delegated { vtxo, .. } => Some(*vtxo),
                JobInput::Boarding { .. } => None,
            })
            .collect();
        if inputs.is_empty() {
            return Some(false);
        }
        match self.ark.get_vtxos(&VtxoQuery::Outpoints(inputs)).await {
            Ok(found) if found.iter().any(|v| v.is_spent) => None,
            Ok(_) => Some(false),
            Err(_) => None,
        }
    }

    /// `DeleteIntent` for a relay-signed job (a delegated one cannot be
    /// re-signed; it expires at the server).
    async fn delete_intent(
        &self,
        p: &Participation,
        terms: &RoundTerms,
        job_id: &str,
    ) -> Result<(), String> {
        let Some(e) = p.entries.iter().find(|e| e.job.job_id == job_id) else {
            return Ok(());
        };
        if !e.job.relay_signed() || matches!(e.status, EntryStatus::Refused { .. }) {
            return Ok(());
        }
        let (proof, message) = crypto::relay_delete_intent(&e.job, &self.ctx(terms))?;
        self.ark
            .delete_intent(&IntentProof { proof, message })
            .await
            .map_err(|e| e.to_string())
    }
}

/// Whether a refused registration may succeed in a later round: an input
/// still held by an earlier intent or round, a time range not yet open, or
/// the server being unavailable.
fn retryable(e: &ArkServerError) -> bool {
    if e.is_transient() {
        return true;
    }
    match e.rejection() {
        Some(ArkRejection::VtxoAlreadyRegistered) => true,
        Some(ArkRejection::Other(name)) => name.contains("TIMERANGE"),
        _ => false,
    }
}

fn refused(job_id: &str, transient: bool, error: &StoreError) -> Input {
    Input::RegisterFailed {
        job_id: job_id.to_owned(),
        transient,
        error: format!("ledger lock: {error}"),
    }
}

fn random_id() -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[async_trait::async_trait]
impl crate::Periodic for RoundRunner {
    fn name(&self) -> &'static str {
        "rounds"
    }

    fn every(&self) -> Duration {
        self.config.every
    }

    async fn tick(&self) {
        if let Err(e) = self.run_once().await {
            tracing::warn!(error = %e, "round run stopped; resumed at the next tick");
        }
    }
}
