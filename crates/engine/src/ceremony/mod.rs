//! The Ark off-chain ceremony as a job handler (PRD §5.1–§5.2, §10.1;
//! DESIGN.md §6): the thin async side of the pure machine in
//! `ark_relay_ceremony`.
//!
//! - **Intake** ([`intake`]): a `p2p_transfer` or `land_lightning` intent,
//!   or a `submit_batch` request ([`batch`]), is validated, planned by the
//!   one planner, its inputs locked by the one lock loop, its transaction
//!   built, and the machine started.
//! - **The runner** ([`runner::Runner`]): load → step → persist the next
//!   state with its outbox events and lock release in **one** transaction
//!   → execute the remote effect (`SubmitTx`, `GetPendingTx`, `FinalizeTx`,
//!   the ledger commit, a land's hand-over) → feed its outcome back. The
//!   relay's own issuing transactions ([`issue::Issuer`]: lifts, refunds)
//!   run on the same runner with no wallet party.
//! - **Recovery** ([`recovery`]): one scan ticks every due session (step
//!   deadlines, and in-flight arkd calls past their retry time).
//!
//! Test hooks (crashes at named points, a lying relay) live on the runner
//! only.

mod asset_issue;
pub mod batch;
mod data;
pub mod intake;
pub mod issue;
pub mod recovery;
pub mod runner;

use std::sync::Arc;

use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{Clock, DynStore};
use ark_relay_protocol::content::ColourHint;
use ark_relay_protocol::intent::IntentPolicy;
use async_trait::async_trait;
use bitcoin::Psbt;
use nostr::Keys;

pub use asset_issue::IssueBudget;
pub use issue::{IssueError, Issued, Issuer};
pub use runner::Runner;

use crate::handlers::{BaseHandler, HandlerError};

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

/// Where a test may simulate the relay process dying (the job then stops
/// with a transient error, as if the process had been killed there, and is
/// redelivered to whoever runs next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The inputs are locked; nothing built or sent yet.
    AfterLock,
    /// The step-1 challenges are persisted and queued.
    AfterChallenge,
    /// `SubmitTx` succeeded; its answer is not persisted yet.
    AfterSubmit,
    /// `FinalizeTx` succeeded; the ledger is not committed yet.
    AfterFinalize,
    /// `FinalizeTx` succeeded and is recorded; the ledger commit, written
    /// with the session's completion and its 31340, is not yet.
    BeforeConfirmation,
    /// Batch: one party's signatures are persisted, the batch has not
    /// advanced (the other parties may not have signed yet).
    BetweenPartySignatures,
}

/// Decides whether to "crash" at a point (tests only).
pub type CrashHook = Arc<dyn Fn(CrashPoint) -> bool + Send + Sync>;

/// A test seam standing for a compromised relay: changes the step-1 ark tx
/// and colour hints after they are built and before the sighashes are
/// computed, so only the wallet's contextual verification can catch it.
pub type ChallengeTamper = Arc<dyn Fn(&mut Psbt, &mut Vec<ColourHint>) + Send + Sync>;

fn fatal(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

/// The Lightning side of a land, as the ceremony needs it (implemented by
/// `ramp::Ramps`; the ceremony never depends on the ramps themselves).
#[async_trait]
pub trait LandDesk: Send + Sync + 'static {
    /// Opens the land of a validated `land_lightning` intent before its
    /// ceremony (`Ok(Err(r))`: refuse the intent with `r`). Idempotent.
    async fn open_land(
        &self,
        intent: &ark_relay_protocol::intent::ValidIntent,
    ) -> Result<Result<(), ark_relay_protocol::Rejection>, HandlerError>;

    /// The ceremony's hand-over: the user's VTXO is final at the relay and
    /// the landed colour burned; `confirmation` is published once paid.
    /// Idempotent.
    async fn land_moved(
        &self,
        intent: &ark_relay_core::EventId,
        ark_txid: bitcoin::Txid,
        confirmation: ark_relay_protocol::content::Confirmation,
    ) -> Result<(), HandlerError>;
}

/// The signing ceremonies (the [`crate::router::Router`] sends them their jobs).
pub struct Ceremony {
    pub(crate) runner: Runner,
    pub(crate) policy: IntentPolicy,
    pub(crate) base: BaseHandler,
    pub(crate) config: CeremonyConfig,
    pub(crate) conditional: crate::conditional::check::ConditionalConfig,
    pub(crate) issue_budget: IssueBudget,
}

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
        let runner = Runner::new(store, ark, keys, clock, config.step_timeout_secs);
        Self {
            runner,
            policy,
            base,
            config,
            conditional: Default::default(),
            issue_budget: Default::default(),
        }
    }

    /// Sets how many assets `issue_asset` may issue ([`IssueBudget`]).
    pub fn with_issue_budget(mut self, budget: IssueBudget) -> Self {
        self.issue_budget = budget;
        self
    }

    /// Sets the `[conditional]` configuration (liquidations' price window).
    pub fn with_conditional(
        mut self,
        conditional: crate::conditional::check::ConditionalConfig,
    ) -> Self {
        self.conditional = conditional;
        self
    }

    /// Executes `land_lightning` intents, handing them to `ramps` once the
    /// user's VTXO is final at the relay (without it they are refused, 1003).
    pub fn with_lands(mut self, lands: Arc<dyn LandDesk>) -> Self {
        self.runner.lands = Some(lands);
        self
    }

    /// Refuses intents whose inputs the last reconciliation disputed (2006
    /// `COLOUR_MISMATCH`) and keeps disputed inventory out of plans.
    pub fn with_disputes(
        mut self,
        disputes: Arc<dyn ark_relay_core::reconcile::ReconcileStore>,
    ) -> Self {
        self.runner.disputes = Some(disputes);
        self
    }

    /// Installs a [`CrashHook`] (tests only).
    pub fn with_crash_hook(mut self, hook: CrashHook) -> Self {
        self.runner.hooks.crash = Some(hook);
        self
    }

    /// Installs a [`ChallengeTamper`] (tests only: it makes the relay lie).
    pub fn with_tamper(mut self, tamper: ChallengeTamper) -> Self {
        self.runner.hooks.tamper = Some(tamper);
        self
    }

    /// The Ark server's parameters (fetched once).
    pub async fn server_info(&self) -> Result<&ServerInfo, HandlerError> {
        self.runner.server_info().await
    }
}

/// [`server_info_json`] plus the server's endpoint as `url`, when known
/// (wallets query its indexer for their inputs' assets).
pub fn server_info_json_with_url(server: &ServerInfo, url: Option<&str>) -> serde_json::Value {
    let mut v = server_info_json(server);
    if let (Some(url), Some(map)) = (url, v.as_object_mut()) {
        map.insert("url".to_owned(), serde_json::Value::String(url.to_owned()));
    }
    v
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
