//! [`Renewals`]: the delegation flow driven from the database, a
//! [`Periodic`](crate::Periodic) of the scheduler leader plus the handler of
//! wallets' renewal answers.
//!
//! Each pass (idempotent, so a crash or a second leader repeats nothing;
//! arkd is asked only about VTXOs without a scheduled or finished renewal):
//! 1. **Offer**: every unspent user VTXO of the ledger without a delegation
//!    gets a `sign_renewal` challenge (a VTXO arkd reports swept gets one
//!    with `recovery: true`, and so does a swept VTXO whose renewal was
//!    refused or failed). One row per VTXO and kind (`delegations`), the
//!    31511 queued in the outbox with it.
//! 2. **Void**: a delegation whose VTXO the ledger shows spent is void.
//! 3. **Complete**: a queued delegation whose round job is `done`: the new
//!    VTXO (the owner's, same sats minus the fee, same assets, as arkd's
//!    indexer reports it) replaces the old one in the ledger, and a 31340
//!    names both. A job that `failed` fails the delegation.
//! 4. **Notice**: a VTXO without a queued delegation that expires within
//!    `notice_before_secs` gets one encrypted 31341 (5005) for its owner.
//!
//! [`Renewals::on_answer`] handles a 31512 to a `sign_renewal` challenge:
//! a refusal marks the VTXO "no renewal"; signatures are verified
//! ([`super::build::accept`]) and the delegation becomes a round job
//! (`rounds::RoundJobs::enqueue`), registered by the round runner from
//! `valid_at` on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::ArkadeAssetId;
use ark_relay_ark::ServerInfo;
use ark_relay_ceremony::round::{intent_fee, FeeInput};
use ark_relay_core::backends::ark::{ArkServer, ServerVtxo, VtxoQuery};
use ark_relay_core::backends::rounds::RoundTerms;
use ark_relay_core::reconcile::ReconcileStore;
use ark_relay_core::renewals::{DelegationRecord, DelegationStatus, DynRenewalStore};
use ark_relay_core::rounds::RoundJobStatus;
use ark_relay_core::{
    Clock, CommitOutcome, DynStore, ErrorCode, EventId, L2Transaction, NewOutboxEvent, NewVtxo,
    PubKey, Sats, StoreError, UnixTime, Vtxo, VtxoId, VtxoStatus,
};
use ark_relay_protocol::content::{AssetRef, Confirmation, VtxoEntry};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::renewal::{renewal_id, RenewalChallenge, RenewalResponse};
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr, Rejection};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use nostr::{JsonUtil, Keys};

use super::build::{accept, build, PendingDelegation, RenewalError, RenewalPolicy, RenewalSpec};
use crate::handlers::{HandlerError, JobOutcome};
use crate::ingest::InboundJob;
use crate::rounds::RoundJobs;

/// Renewal settings (config `[renewal]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalConfig {
    /// `valid_at`, the published fee, the challenge's lifetime.
    pub policy: RenewalPolicy,
    /// A recovery challenge's lifetime (the owner answers when it comes back).
    pub recovery_ttl_secs: i64,
    /// Warn owners this long before an unrenewed VTXO expires.
    pub notice_before_secs: i64,
    /// How often a pass runs.
    pub every: Duration,
}

impl Default for RenewalConfig {
    fn default() -> Self {
        Self {
            policy: RenewalPolicy::default(),
            recovery_ttl_secs: 30 * 24 * 3600,
            notice_before_secs: 24 * 3600,
            every: Duration::from_secs(30),
        }
    }
}

/// Why a pass or an answer could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RenewalServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// arkd failed.
    #[error("ark server: {0}")]
    Ark(String),
    /// Building or accepting a delegation failed.
    #[error(transparent)]
    Renewal(#[from] RenewalError),
    /// An event could not be built.
    #[error("event: {0}")]
    Event(String),
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Challenges sent.
    pub offered: u32,
    /// Delegations completed (new VTXO in the ledger, 31340 queued).
    pub renewed: u32,
    /// Delegations failed.
    pub failed: u32,
    /// Delegations void.
    pub voided: u32,
    /// Near-expiry notices queued.
    pub noticed: u32,
}

/// See the module docs.
pub struct Renewals {
    renewals: DynRenewalStore,
    ledger: DynStore,
    unspent: Arc<dyn ReconcileStore>,
    jobs: RoundJobs,
    ark: Arc<dyn ArkServer>,
    clock: Arc<dyn Clock>,
    keys: Keys,
    relay: Option<PubKey>,
    server: ServerInfo,
    cosigner: PublicKey,
    config: RenewalConfig,
    /// arkd's intent fee for the last renewal offered (sats).
    arkd_fee: AtomicU64,
    /// Whether the "published fee below arkd's" warning was logged.
    fee_warned: AtomicBool,
}

fn page_after(v: &[Vtxo]) -> Option<VtxoId> {
    v.last().map(|v| v.id)
}

/// Whether a renewal is scheduled, done or void (no recovery to offer for
/// it; a refused, unanswered or failed one may need one once swept).
fn scheduled_or_final(s: DelegationStatus) -> bool {
    matches!(
        s,
        DelegationStatus::Queued | DelegationStatus::Done | DelegationStatus::Void
    )
}

/// Whether a VTXO's next step needs arkd's view of it: no delegation yet, or
/// a renewal neither scheduled nor over without a recovery (swept?).
fn needs_ark(rows: &[DelegationRecord]) -> bool {
    let renew = rows.iter().find(|r| !r.recovery);
    let recover = rows.iter().find(|r| r.recovery);
    match (renew, recover) {
        (None, None) => true,
        (Some(r), None) => !scheduled_or_final(r.status),
        _ => false,
    }
}

impl Renewals {
    /// The flow for the relay key `keys` (whose VTXOs are the inventory's,
    /// never offered) and its round cosigner `cosigner`
    /// (`rounds::RoundRunner::cosigner_pk`). arkd's forfeit address and fee
    /// programs are read from its `GetInfo` once per pass that offers.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        renewals: DynRenewalStore,
        ledger: DynStore,
        unspent: Arc<dyn ReconcileStore>,
        jobs: RoundJobs,
        ark: Arc<dyn ArkServer>,
        clock: Arc<dyn Clock>,
        keys: Keys,
        server: ServerInfo,
        cosigner: PublicKey,
        config: RenewalConfig,
    ) -> Self {
        let relay = pubkey_from_nostr(&keys.public_key());
        Self {
            renewals,
            ledger,
            unspent,
            jobs,
            ark,
            clock,
            keys,
            relay,
            server,
            cosigner,
            config,
            arkd_fee: AtomicU64::new(0),
            fee_warned: AtomicBool::new(false),
        }
    }

    /// The published renewal fee (sats), for `get_info` and `/info`: the
    /// most a renewal costs its owner. Each challenge asks arkd's intent fee
    /// for that renewal ([`Self::arkd_fee_sats`]), never more than this.
    pub fn fee_sats(&self) -> u64 {
        self.config.policy.fee_sats
    }

    /// arkd's intent fee for the last renewal offered (sats; 0 before any).
    pub fn arkd_fee_sats(&self) -> u64 {
        self.arkd_fee.load(Ordering::Relaxed)
    }

    /// One pass (see the module docs).
    pub async fn pass(&self) -> Result<PassReport, RenewalServiceError> {
        let mut report = PassReport::default();
        let now = self.clock.now();
        let mut near_expiry = 0u64;
        let mut terms: Option<RoundTerms> = None;
        // 1 + 4: every unspent user VTXO.
        let mut after: Option<VtxoId> = None;
        loop {
            let page = self.unspent.unspent_page(after.as_ref(), 200).await?;
            if page.is_empty() {
                break;
            }
            after = page_after(&page);
            // Users' VTXOs at their default script: a delegation renews to
            // that script, so a VTXO with other leaves (a position token's
            // conditional leaf) is not offered (docs/protocol.md, known
            // deviations).
            let users: Vec<&Vtxo> = page
                .iter()
                .filter(|v| Some(v.owner) != self.relay)
                .filter(|v| v.tapscripts == self.server.default_vtxo(&v.owner).to_tapscripts())
                .collect();
            if users.is_empty() {
                continue;
            }
            // Only VTXOs whose next step depends on arkd (no delegation yet:
            // its times and assets; a renewal not scheduled: swept or not)
            // are looked up there; scheduled and done ones are not.
            let mut rows_of = Vec::with_capacity(users.len());
            for v in &users {
                rows_of.push(self.renewals.delegations_of_vtxo(&v.id.to_string()).await?);
            }
            let ask: Vec<VtxoId> = users
                .iter()
                .zip(&rows_of)
                .filter(|(_, rows)| needs_ark(rows))
                .map(|(v, _)| v.id)
                .collect();
            let at_ark = if ask.is_empty() {
                Vec::new()
            } else {
                self.ark
                    .get_vtxos(&VtxoQuery::Outpoints(ask))
                    .await
                    .map_err(|e| RenewalServiceError::Ark(e.to_string()))?
            };
            for (v, rows) in users.into_iter().zip(&rows_of) {
                let server = at_ark.iter().find(|s| s.id == v.id);
                let renew = rows.iter().find(|r| !r.recovery);
                let recover = rows.iter().find(|r| r.recovery);
                let swept = server.is_some_and(|s| s.is_swept);
                let wanted = match (renew, recover) {
                    (None, None) => Some(swept),
                    (Some(r), None) if swept && !scheduled_or_final(r.status) => Some(true),
                    _ => None,
                };
                if let (Some(recovery), Some(server)) = (wanted, server) {
                    if self.offer(v, server, recovery, now, &mut terms).await? {
                        report.offered += 1;
                    }
                }
                let scheduled = rows
                    .iter()
                    .any(|r| matches!(r.status, DelegationStatus::Queued | DelegationStatus::Done));
                let expires_at = v.expires_at.map(|t| t.0).or(server.map(|s| s.expires_at));
                let near = expires_at.is_some_and(|e| e - now.0 <= self.config.notice_before_secs);
                if !scheduled && !swept && near {
                    near_expiry += 1;
                    if let (Some(r), Some(e)) = (renew, expires_at) {
                        if self.notice(v, e, r, now).await? {
                            report.noticed += 1;
                        }
                    }
                }
            }
        }
        super::metrics::near_expiry(near_expiry);
        // 2 + 3.
        for status in [
            DelegationStatus::Asked,
            DelegationStatus::Refused,
            DelegationStatus::Queued,
        ] {
            for d in self.renewals.delegations_in(status, 500).await? {
                let Ok(vtxo) = d.vtxo.parse::<VtxoId>() else {
                    continue;
                };
                let spent = match self.ledger.vtxo(&vtxo).await? {
                    Some(v) => v.status == VtxoStatus::Spent,
                    None => true,
                };
                if status == DelegationStatus::Queued {
                    match self.complete(&d, now).await? {
                        Some(true) => {
                            report.renewed += 1;
                            continue;
                        }
                        Some(false) => {
                            report.failed += 1;
                            continue;
                        }
                        None => {}
                    }
                }
                if spent
                    && self
                        .renewals
                        .move_delegation(
                            &d.renewal_id,
                            status,
                            DelegationStatus::Void,
                            None,
                            None,
                            Some("the VTXO was spent"),
                            now,
                        )
                        .await?
                {
                    report.voided += 1;
                }
            }
        }
        if report != PassReport::default() {
            tracing::info!(?report, "renewal pass");
        }
        Ok(report)
    }

    /// Sends the owner of `v` its `sign_renewal` challenge (once per VTXO and
    /// kind). `false` if it already had one.
    /// arkd's round terms (fee programs, forfeit address) are read once per
    /// pass (`terms`).
    async fn offer(
        &self,
        v: &Vtxo,
        server: &ServerVtxo,
        recovery: bool,
        now: UnixTime,
        terms: &mut Option<RoundTerms>,
    ) -> Result<bool, RenewalServiceError> {
        let id = renewal_id(&v.id, recovery);
        if self.renewals.delegation(&id).await?.is_some() {
            return Ok(false);
        }
        let assets: Vec<(ArkadeAssetId, u64)> = server
            .assets
            .iter()
            .filter_map(|a| a.asset_id.parse().ok().map(|id| (id, a.amount)))
            .collect();
        let spec = RenewalSpec {
            vtxo: v.id,
            owner: v.owner,
            sats: v.sats.get(),
            assets,
            created_at: server.created_at,
            expires_at: server.expires_at,
            recovery,
        };
        let mut policy = self.config.policy;
        if recovery {
            policy.challenge_ttl_secs = self.config.recovery_ttl_secs;
        }
        let terms = match terms {
            Some(t) => t,
            None => terms.insert(
                self.ark
                    .round_terms()
                    .await
                    .map_err(|e| RenewalServiceError::Ark(e.to_string()))?,
            ),
        };
        // The owner pays arkd's intent fee for this renewal (evaluated on the
        // whole VTXO, an upper bound of the fee on its output), at most the
        // published fee; arkd keeps everything the output does not carry, so
        // the challenge asks exactly arkd's fee. Above the published fee
        // arkd's fee cannot be paid (the wallet refuses, arkd refuses less
        // with INTENT_INSUFFICIENT_FEE): not offered.
        let arkd_fee = intent_fee(
            &terms.intent_fees,
            &[FeeInput::Vtxo {
                sats: v.sats,
                created_at: server.created_at,
                expires_at: server.expires_at,
                recoverable: recovery,
            }],
            &[(v.sats, &self.server.default_vtxo(&v.owner).script_pubkey())],
        )
        .map_err(|e| RenewalServiceError::Ark(e.to_string()))?;
        self.arkd_fee.store(arkd_fee.get(), Ordering::Relaxed);
        if arkd_fee.get() > policy.fee_sats {
            if !self.fee_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    arkd_fee = arkd_fee.get(),
                    published = policy.fee_sats,
                    "the published renewal fee is below arkd's intent fee: no renewals offered (raise [renewal] fee_sats)"
                );
            }
            tracing::debug!(vtxo = %v.id, arkd_fee = arkd_fee.get(), "no renewal offered: fee below arkd's");
            return Ok(false);
        }
        policy.fee_sats = arkd_fee.get();
        let pending = match build(
            &self.server,
            &terms.forfeit_address,
            self.cosigner,
            &policy,
            &spec,
            now.0,
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(vtxo = %v.id, error = %e, "no renewal offered");
                return Ok(false);
            }
        };
        let ch = &pending.challenge;
        let record = DelegationRecord {
            renewal_id: ch.renewal_id.clone(),
            vtxo: v.id.to_string(),
            owner: v.owner.to_string(),
            recovery,
            status: DelegationStatus::Asked,
            challenge: serde_json::to_string(ch)
                .map_err(|e| RenewalServiceError::Event(e.to_string()))?,
            valid_at: UnixTime(ch.valid_at),
            vtxo_expires_at: UnixTime(ch.vtxo_expires_at),
            job_id: None,
            new_vtxo: None,
            reason: None,
            notified_at: None,
            created_at: now,
            updated_at: now,
        };
        let event = builders::renewal_challenge(&self.keys, &v.owner, ch, Scheme::Nip44)
            .map_err(|e| RenewalServiceError::Event(e.to_string()))?;
        let out = NewOutboxEvent {
            dedupe_key: format!("31511:{}", ch.renewal_id),
            kind: kinds::SIGNING_CHALLENGE,
            recipient: Some(v.owner),
            event_json: event.as_json(),
        };
        // The challenge first (deduped by renewal id), then the row: a crash
        // between the two makes the next pass build the same delegation
        // again (same PSBTs: the message and outputs do not depend on the
        // time of the pass), whose 31511 the outbox dedupes, and store it.
        self.ledger.push_outbox(&[out], now).await?;
        if !self.renewals.insert_delegation(&record).await? {
            return Ok(false);
        }
        tracing::info!(vtxo = %v.id, recovery, valid_at = ch.valid_at, "renewal offered");
        Ok(true)
    }

    /// The encrypted 5005 notice for the owner of `v` (once).
    async fn notice(
        &self,
        v: &Vtxo,
        expires_at: i64,
        d: &DelegationRecord,
        now: UnixTime,
    ) -> Result<bool, RenewalServiceError> {
        if d.notified_at.is_some() {
            return Ok(false);
        }
        let r = Rejection::new(
            ErrorCode::VtxoNearExpiry,
            format!(
                "VTXO {} expires at {} without a renewal: answer the sign_renewal challenge or spend it",
                v.id, expires_at
            ),
        );
        let about = notice_id(&d.renewal_id);
        let out = crate::failure_notice(&self.keys, &v.owner, &about, &r, Scheme::Nip44)
            .map_err(|e| RenewalServiceError::Event(e.to_string()))?;
        if !self.renewals.mark_notified(&d.renewal_id, now).await? {
            return Ok(false);
        }
        self.ledger.push_outbox(&[out], now).await?;
        super::metrics::renewal("near_expiry_notice");
        Ok(true)
    }

    /// A queued delegation whose job ended: `Some(true)` renewed,
    /// `Some(false)` failed, `None` still waiting.
    async fn complete(
        &self,
        d: &DelegationRecord,
        now: UnixTime,
    ) -> Result<Option<bool>, RenewalServiceError> {
        let Some(job_id) = &d.job_id else {
            return Ok(None);
        };
        let Some(job) = self
            .jobs
            .get(job_id)
            .await
            .map_err(|e| RenewalServiceError::Ark(e.to_string()))?
        else {
            return Ok(None);
        };
        match job.status {
            RoundJobStatus::Failed => {
                self.renewals
                    .move_delegation(
                        &d.renewal_id,
                        DelegationStatus::Queued,
                        DelegationStatus::Failed,
                        None,
                        None,
                        job.error.as_deref(),
                        now,
                    )
                    .await?;
                super::metrics::renewal("failed");
                return Ok(Some(false));
            }
            RoundJobStatus::Done => {}
            _ => return Ok(None),
        }
        let ch: RenewalChallenge = serde_json::from_str(&d.challenge)
            .map_err(|e| RenewalServiceError::Event(e.to_string()))?;
        let Ok(old_id) = d.vtxo.parse::<VtxoId>() else {
            return Ok(None);
        };
        let Some(old) = self.ledger.vtxo(&old_id).await? else {
            return Ok(None);
        };
        let commitment = job
            .commitment_txid
            .as_deref()
            .and_then(|t| t.parse::<bitcoin::Txid>().ok());
        // The owner's new VTXO: same script, sats − fee, same assets, not in
        // the ledger yet.
        let script = self.server.default_vtxo(&ch.owner).script_pubkey();
        let candidates = self
            .ark
            .get_vtxos(&VtxoQuery::Scripts {
                scripts: vec![script],
                filter: Default::default(),
            })
            .await
            .map_err(|e| RenewalServiceError::Ark(e.to_string()))?;
        let mut wanted: Vec<(String, u64)> = ch
            .assets
            .iter()
            .map(|a| (a.asset_id.clone(), a.amount))
            .collect();
        wanted.sort();
        // A batch leaf (never preconfirmed) created since the delegation.
        // One the ledger already has is ours only when resuming after a
        // crash between the ledger commit and the status change below (the
        // old VTXO is then spent and the new one the owner's).
        let mut new = None;
        for c in candidates.iter().filter(|c| {
            c.id != old_id
                && !c.is_spent
                && !c.is_preconfirmed
                && c.amount.get() == ch.sats - ch.fee
                && c.created_at >= d.created_at.0
        }) {
            let mut has: Vec<(String, u64)> = c
                .assets
                .iter()
                .map(|a| (a.asset_id.clone(), a.amount))
                .collect();
            has.sort();
            if has != wanted {
                continue;
            }
            let ours = match self.ledger.vtxo(&c.id).await? {
                None => true,
                Some(known) => old.status == VtxoStatus::Spent && known.owner == ch.owner,
            };
            if ours {
                new = Some(c.clone());
                break;
            }
        }
        let Some(new) = new else {
            tracing::warn!(renewal = %d.renewal_id, "round done but the renewed VTXO is not at arkd yet");
            return Ok(None);
        };
        let outcome = self
            .ledger
            .commit_transaction(&L2Transaction {
                // The leaf tx that created it: unique to this renewal (the
                // commitment is shared with the round's other jobs).
                ark_txid: new.id.outpoint().txid,
                kind: if ch.recovery { "recovery" } else { "renewal" }.into(),
                session: None,
                inputs: vec![old_id],
                outputs: vec![NewVtxo {
                    id: new.id,
                    owner: ch.owner,
                    sats: new.amount,
                    colour: old.colour,
                    status: VtxoStatus::Assigned,
                    tapscripts: old.tapscripts.clone(),
                    expires_at: Some(UnixTime(new.expires_at)),
                }],
                issued: Vec::new(),
                burned: Vec::new(),
                finalized_at: now,
                // arkd's intent fee, taken from the renewed VTXO.
                fee: Sats::new(ch.fee),
            })
            .await?;
        if outcome == CommitOutcome::Committed {
            tracing::info!(old = %old_id, new = %new.id, "VTXO renewed for its owner");
        }
        let entry = |id: VtxoId, sats: u64| VtxoEntry {
            vtxo: id,
            owner: ch.owner,
            asset: old.colour.map(|c| AssetRef::Id(c.asset)),
            amount: old.colour.map_or(0, |c| c.amount.get()),
            sats,
        };
        let confirmation = Confirmation {
            v: 1,
            ark_txid: commitment
                .map_or_else(|| new.id.outpoint().txid.to_string(), |t| t.to_string()),
            intents: Vec::new(),
            spent: vec![entry(old_id, ch.sats)],
            created: vec![entry(new.id, new.amount.get())],
            preimage: None,
        };
        let event = builders::confirmation(&self.keys, &confirmation, &[ch.owner])
            .map_err(|e| RenewalServiceError::Event(e.to_string()))?;
        self.ledger
            .push_outbox(
                &[NewOutboxEvent {
                    dedupe_key: format!("31340:{}", d.renewal_id),
                    kind: kinds::CONFIRMATION,
                    recipient: Some(ch.owner),
                    event_json: event.as_json(),
                }],
                now,
            )
            .await?;
        self.renewals
            .move_delegation(
                &d.renewal_id,
                DelegationStatus::Queued,
                DelegationStatus::Done,
                None,
                Some(&new.id.to_string()),
                None,
                now,
            )
            .await?;
        super::metrics::renewal(if ch.recovery { "recovered" } else { "renewed" });
        Ok(Some(true))
    }

    /// A 31512 answering a `sign_renewal` challenge.
    #[tracing::instrument(skip_all, fields(response = %inbound.event.id))]
    pub async fn on_answer(&self, inbound: &InboundJob) -> Result<JobOutcome, HandlerError> {
        let fatal = |e: String| HandlerError::Fatal(e);
        let transient = |e: String| HandlerError::Transient(e);
        let plain = inbound
            .plaintext
            .as_deref()
            .ok_or_else(|| fatal("answer without plaintext".into()))?;
        let author =
            pubkey_from_nostr(&inbound.event.pubkey).ok_or_else(|| fatal("author key".into()))?;
        let refuse = |msg: String| -> Result<JobOutcome, HandlerError> {
            let r = Rejection::new(ErrorCode::RenewalInvalid, msg);
            let answered = ark_relay_protocol::event_id_from_nostr(&inbound.event.id);
            let out =
                crate::failure_notice(&self.keys, &author, &answered, &r, inbound.answer_scheme())
                    .map_err(|e| fatal(e.to_string()))?;
            Ok(JobOutcome { outbox: vec![out] })
        };
        let resp: RenewalResponse = match serde_json::from_str(plain) {
            Ok(r) => r,
            Err(e) => return refuse(format!("renewal answer: {e}")),
        };
        let Some(d) = self
            .renewals
            .delegation(&resp.renewal_id)
            .await
            .map_err(|e| transient(e.to_string()))?
        else {
            return refuse(format!("no renewal {}", resp.renewal_id));
        };
        if d.owner != author.to_string() {
            return refuse("this renewal belongs to another key".into());
        }
        if d.status != DelegationStatus::Asked {
            // A redelivered answer after it was handled: nothing to do.
            return Ok(JobOutcome::default());
        }
        let now = self.clock.now();
        if let Some(why) = &resp.reject {
            self.renewals
                .move_delegation(
                    &d.renewal_id,
                    DelegationStatus::Asked,
                    DelegationStatus::Refused,
                    None,
                    None,
                    Some(why),
                    now,
                )
                .await
                .map_err(|e| transient(e.to_string()))?;
            tracing::info!(renewal = %d.renewal_id, reason = %why, "renewal refused by its owner");
            super::metrics::renewal("refused");
            return Ok(JobOutcome::default());
        }
        let ch: RenewalChallenge =
            serde_json::from_str(&d.challenge).map_err(|e| fatal(e.to_string()))?;
        let pending = PendingDelegation::from_challenge(ch).map_err(|e| fatal(e.to_string()))?;
        let job = match accept(&pending, &resp) {
            Ok(j) => j,
            Err(e) => return refuse(e.to_string()),
        };
        self.jobs
            .enqueue(&job)
            .await
            .map_err(|e| transient(e.to_string()))?;
        self.renewals
            .move_delegation(
                &d.renewal_id,
                DelegationStatus::Asked,
                DelegationStatus::Queued,
                Some(&job.job_id),
                None,
                None,
                now,
            )
            .await
            .map_err(|e| transient(e.to_string()))?;
        tracing::info!(renewal = %d.renewal_id, valid_at = d.valid_at.0, "delegation signed, renewal scheduled");
        Ok(JobOutcome::default())
    }

    /// Per VTXO of `owner`: (renewal scheduled at, recoverable) for
    /// `sync_state`, `/vtxos` and the wallet CLI.
    pub async fn status_of(
        &self,
        owner: &PubKey,
    ) -> Result<Vec<(String, Option<i64>, bool, DelegationStatus)>, StoreError> {
        let rows = self
            .renewals
            .delegations_of_owner(&owner.to_string(), 500)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let scheduled = (r.status == DelegationStatus::Queued).then_some(r.valid_at.0);
                (r.vtxo.clone(), scheduled, r.recovery, r.status)
            })
            .collect())
    }
}

/// The id a near-expiry notice answers (no event asked for it): the hash of
/// the renewal id, so the outbox dedupes it.
fn notice_id(renewal_id: &str) -> EventId {
    let mut data = b"ark-relay/near-expiry/".to_vec();
    data.extend_from_slice(renewal_id.as_bytes());
    EventId::from_bytes(sha256::Hash::hash(&data).to_byte_array())
}

#[async_trait::async_trait]
impl crate::Periodic for Renewals {
    fn name(&self) -> &'static str {
        "renewals"
    }

    fn every(&self) -> Duration {
        self.config.every
    }

    async fn tick(&self) {
        if let Err(e) = self.pass().await {
            tracing::warn!(error = %e, "renewal pass failed");
        }
    }
}
