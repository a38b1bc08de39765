//! Ark transactions the relay makes alone (no wallet party): one of its own
//! inventory VTXOs pays a user a new VTXO carrying freshly issued colour (a
//! lift's gBTC, a failed land's refund), and the rest returns to the relay.
//!
//! It is the same ceremony on the same runner, with zero parties: the relay
//! signs the ark tx and its checkpoints itself, and recovers a lost
//! `SubmitTx` answer with a `GetPendingTx` proof over its own inputs. The
//! session is keyed by the caller's lock id, so calling [`Issuer::issue`]
//! again after a crash resumes the very same transaction.

use std::sync::{Arc, Mutex, PoisonError};

use ark_relay_ark::asset::{asset_metadata, control_ledger_id, IdMap};
use ark_relay_ceremony::{confirmation, genesis_colours, Control, Input, Payment, Phase, Purpose};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Clock, Colour, DynStore, ErrorCode, EventId, NewAsset, PubKey,
    SessionId, VtxoId,
};
use ark_relay_protocol::content::Confirmation;
use ark_relay_protocol::Rejection;
use bitcoin::secp256k1::Keypair;
use bitcoin::Txid;

use super::data::{unstarted, SessionData};
use super::runner::Runner;
use super::CrashPoint;
use crate::handlers::HandlerError;

impl Runner {
    /// The control VTXO a relay-issued payment must spend: for the asset the
    /// relay pays (a lift's, a refund's), the relay's VTXO holding that
    /// asset's control asset, if the asset was issued on Ark by a genesis.
    /// `None` for an asset without one (colour bridged from its Taproot Asset
    /// id). A control VTXO locked by another issue is transient: try later.
    pub(crate) async fn control_for(
        &self,
        relay_pays: &[Payment],
    ) -> Result<Option<Control>, HandlerError> {
        let Some(asset) = relay_pays.first().map(|p| p.colour.asset) else {
            return Ok(None);
        };
        let wanted = control_ledger_id(&asset);
        let held = self
            .store
            .unspent_vtxos(&self.relay)
            .await
            .map_err(|e| HandlerError::Transient(e.to_string()))?;
        let Some(vtxo) = held
            .into_iter()
            .find(|v| v.colour.is_some_and(|c| c.asset == wanted))
        else {
            // A registered control asset without its VTXO: the genesis has
            // not completed yet (issuing now would be refused by arkd).
            let registered = self
                .store
                .asset(&wanted)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string()))?;
            return match registered {
                Some(_) => Err(HandlerError::Transient(format!(
                    "the genesis of asset {asset} has not completed"
                ))),
                None => Ok(None),
            };
        };
        if vtxo.locked_by.is_some() {
            // Held by another issue or by its renewal round: a normal wait,
            // not a failure (see `IssueError::Busy`).
            return Err(HandlerError::Deferred {
                reason: format!(
                    "the control VTXO of asset {asset} is held by another issue or its renewal round"
                ),
                retry_after: BUSY_RETRY,
                outbox: Vec::new(),
            });
        }
        Ok(Some(Control { asset, vtxo }))
    }
}

/// Whether `asset` is the control asset of a registered asset (issued on
/// Ark by a genesis): such an asset is only ever held by the relay.
pub async fn is_control_asset(
    store: &DynStore,
    asset: &AssetId,
) -> Result<bool, ark_relay_core::StoreError> {
    let all = store.assets().await?;
    Ok(IdMap::for_assets(all.iter().map(|a| &a.id))
        .control(asset)
        .is_some())
}

/// Why an issuing transaction did not finish.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Try again later (a back end or the database is unavailable, or the
    /// transaction is still in flight).
    #[error("transient: {0}")]
    Transient(String),
    /// It can never succeed as asked (no inventory, arkd refused); nothing
    /// moved and nothing stays locked.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// A bug or corrupt stored state.
    #[error("fatal: {0}")]
    Fatal(String),
    /// Not now: the control VTXO is held by another issue or by its renewal
    /// round. Nothing moved; try again shortly (normal, not a failure).
    #[error("busy: {0}")]
    Busy(String),
}

/// When to try an issue again while its control VTXO is held.
pub(crate) const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl From<HandlerError> for IssueError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::Fatal(m) => IssueError::Fatal(m),
            HandlerError::Deferred { reason, .. } => IssueError::Busy(reason),
            other => IssueError::Transient(other.to_string()),
        }
    }
}

/// A finished issuing transaction.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Its ark txid.
    pub ark_txid: Txid,
    /// The user's new VTXO (output 0).
    pub vtxo: VtxoId,
    /// The 31340 content (spent and created VTXOs; the caller names the intents).
    pub confirmation: Confirmation,
}

/// A new asset to issue on Ark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisRequest {
    /// Human-readable name.
    pub name: String,
    /// Ticker.
    pub ticker: String,
    /// Display precision.
    pub decimals: u8,
    /// The same asset's Taproot Asset id on tapd, if it has one.
    pub taproot_asset_id: Option<AssetId>,
    /// Its kind in the ledger (gBTC: relay_issued).
    pub asset_type: AssetType,
}

/// A finished genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Genesis {
    /// Its ark txid.
    pub ark_txid: Txid,
    /// The new asset's ledger id (= the txid; Arkade id: txid, group 0).
    pub asset: AssetId,
    /// Its control asset's ledger id (Arkade id: txid, group 1).
    pub control: AssetId,
}

/// Where a test may stop an issue (the caller maps it to its own crash points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStage {
    /// The transaction is built, locked and persisted; not submitted.
    Prepared,
    /// arkd accepted `SubmitTx`; its answer is not persisted.
    Submitted,
}

/// Decides whether to "crash" an issue of `kind` at a stage (tests only).
pub type IssueCrashHook = Arc<dyn Fn(&str, IssueStage) -> bool + Send + Sync>;

/// Makes relay-signed issuing transactions against arkd.
pub struct Issuer {
    runner: Runner,
    crash: Option<IssueCrashHook>,
    /// The kind being issued now (for the runner's crash hook; one driver).
    current: Arc<Mutex<String>>,
}

fn fatal(e: impl std::fmt::Display) -> IssueError {
    IssueError::Fatal(e.to_string())
}

fn transient(e: impl std::fmt::Display) -> IssueError {
    IssueError::Transient(e.to_string())
}

impl Issuer {
    /// An issuer for the relay key `keypair`.
    pub fn new(
        store: DynStore,
        ark: Arc<dyn ArkServer>,
        keypair: Keypair,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let keys = nostr::Keys::new(nostr::SecretKey::from(keypair.secret_key()));
        Self {
            runner: Runner::new(store, ark, keys, clock, 60),
            crash: None,
            current: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Installs a crash hook (tests only).
    pub fn with_crash_hook(mut self, hook: IssueCrashHook) -> Self {
        let current = self.current.clone();
        let on_submit = hook.clone();
        self.runner.hooks.crash = Some(Arc::new(move |p| {
            let kind = current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            p == CrashPoint::AfterSubmit && on_submit(&kind, IssueStage::Submitted)
        }));
        self.crash = Some(hook);
        self
    }

    /// Whether an issue under `lock` has started (its transaction may be at arkd).
    pub async fn started(&self, lock: &SessionId) -> Result<bool, IssueError> {
        Ok(self
            .runner
            .store
            .session(lock)
            .await
            .map_err(transient)?
            .is_some_and(|s| matches!(SessionData::parse(&s), Ok(SessionData::Running(_)))))
    }

    /// Issues `colour` to `to` in a new VTXO from the relay's inventory, or
    /// resumes the issue under `lock`. `kind` names the operation for the
    /// ledger (`lift`, `refund`).
    pub async fn issue(
        &self,
        lock: &SessionId,
        to: PubKey,
        colour: Colour,
        kind: &str,
    ) -> Result<Issued, IssueError> {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = kind.to_owned();
        let c = if self.started(lock).await? {
            self.runner.drive(lock, Input::Resume).await?
        } else {
            self.start(lock, to, colour, kind).await?;
            if self
                .crash
                .as_ref()
                .is_some_and(|h| h(kind, IssueStage::Prepared))
            {
                return Err(transient("simulated crash after the issue was prepared"));
            }
            self.runner.submit_now(lock).await?
        };
        let c = finished(lock, c)?;
        Ok(Issued {
            ark_txid: c.ark_txid,
            vtxo: VtxoId::new(c.ark_txid, 0),
            confirmation: confirmation(&c),
        })
    }

    /// Issues a new asset on Ark (its genesis), or resumes the genesis under
    /// `lock`: one relay-signed ark tx from the relay's inventory whose
    /// packet issues 1 unit of the asset (output 0, to the relay) under a new
    /// control asset (output 1, to the relay: every later issue of the asset
    /// spends and re-creates it), with `asset`'s metadata linking it to its
    /// Taproot Asset. The asset's ledger id is the genesis txid (Arkade id:
    /// txid, group 0); both assets are registered before `SubmitTx`.
    pub async fn genesis(
        &self,
        lock: &SessionId,
        asset: &GenesisRequest,
    ) -> Result<Genesis, IssueError> {
        self.genesis_for(lock, asset, self.runner.relay).await
    }

    /// [`Issuer::genesis`] of an asset whose issuer is `holder`: the genesis
    /// unit and the control asset go to `holder` (the relay for gBTC and
    /// lifted Taproot Assets; a DEX for its LP token, which then mints by
    /// spending and re-creating its control VTXO in its batches). The relay
    /// pays the carrier sats from its inventory and signs alone: `holder`
    /// spends nothing, it only receives.
    pub async fn genesis_for(
        &self,
        lock: &SessionId,
        asset: &GenesisRequest,
        holder: PubKey,
    ) -> Result<Genesis, IssueError> {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = "genesis".to_owned();
        let c = if self.started(lock).await? {
            let c = self.ceremony(lock).await?;
            self.register(&c, asset).await?;
            self.runner.drive(lock, Input::Resume).await?
        } else {
            check_genesis_names(asset).map_err(IssueError::Rejected)?;
            let pays = [
                Payment::to(holder, PLACEHOLDER),
                Payment::to(holder, PLACEHOLDER),
            ];
            let mut plan = match self
                .runner
                .plan_and_lock(lock, &[], &pays, &|_| Ok(()))
                .await?
            {
                Ok(p) => p,
                Err(r) => return Err(IssueError::Rejected(r)),
            };
            plan.genesis = Some(asset_metadata(
                &asset.name,
                &asset.ticker,
                asset.decimals,
                asset.taproot_asset_id.as_ref(),
            ));
            self.persist(lock, "genesis", plan, vec![]).await?;
            let c = self.ceremony(lock).await?;
            self.register(&c, asset).await?;
            if self
                .crash
                .as_ref()
                .is_some_and(|h| h("genesis", IssueStage::Prepared))
            {
                return Err(transient("simulated crash after the genesis was prepared"));
            }
            self.runner.submit_now(lock).await?
        };
        let c = finished(lock, c)?;
        let [issued, control] = genesis_colours(c.ark_txid);
        Ok(Genesis {
            ark_txid: c.ark_txid,
            asset: issued.asset,
            control: control.asset,
        })
    }

    /// The persisted ceremony under `lock`.
    async fn ceremony(&self, lock: &SessionId) -> Result<ark_relay_ceremony::Ceremony, IssueError> {
        let row = self
            .runner
            .store
            .session(lock)
            .await
            .map_err(transient)?
            .ok_or_else(|| fatal(format!("genesis {lock} has no session")))?;
        match SessionData::parse(&row)? {
            SessionData::Running(c) => Ok(*c),
            _ => Err(fatal(format!("genesis {lock} has no ceremony"))),
        }
    }

    /// Registers a genesis' asset and control asset (idempotent).
    async fn register(
        &self,
        c: &ark_relay_ceremony::Ceremony,
        asset: &GenesisRequest,
    ) -> Result<(), IssueError> {
        let [issued, control] = genesis_colours(c.ark_txid);
        let now = self.runner.clock.now();
        let control_ticker: String = format!("{}.control", asset.ticker)
            .chars()
            .take(20)
            .collect();
        for new in [
            NewAsset {
                id: issued.asset,
                name: asset.name.clone(),
                ticker: asset.ticker.clone(),
                asset_type: asset.asset_type,
                decimals: asset.decimals,
            },
            NewAsset {
                id: control.asset,
                name: format!("{} control asset", asset.name),
                ticker: control_ticker,
                // Not relay_issued: the control asset is never lifted,
                // landed or priced, and `gBTC` lookups take relay_issued.
                asset_type: AssetType::Permissionless,
                decimals: 0,
            },
        ] {
            self.runner
                .store
                .register_asset(&new, now)
                .await
                .map_err(transient)?;
        }
        tracing::info!(asset = %issued.asset, control = %control.asset, ark_txid = %c.ark_txid, "asset issued on Ark (genesis)");
        Ok(())
    }

    /// Plans, locks and persists a new issuing ceremony under `lock`.
    async fn start(
        &self,
        lock: &SessionId,
        to: PubKey,
        colour: Colour,
        kind: &str,
    ) -> Result<(), IssueError> {
        if is_control_asset(&self.runner.store, &colour.asset)
            .await
            .map_err(transient)?
        {
            return Err(IssueError::Rejected(Rejection::new(
                ErrorCode::UnknownVtxoOrAsset,
                format!(
                    "asset {} is a control asset; it is never issued",
                    colour.asset
                ),
            )));
        }
        let pays = [Payment::to(to, colour)];
        let plan = match self
            .runner
            .plan_and_lock(lock, &[], &pays, &|_| Ok(()))
            .await?
        {
            Ok(p) => p,
            Err(r) => return Err(IssueError::Rejected(r)),
        };
        self.persist(lock, kind, plan, vec![colour]).await
    }

    /// Persists the 0-party ceremony of `plan` under `lock`.
    async fn persist(
        &self,
        lock: &SessionId,
        kind: &str,
        plan: ark_relay_ceremony::Plan,
        issued: Vec<Colour>,
    ) -> Result<(), IssueError> {
        let store = &self.runner.store;
        let now = self.runner.clock.now();
        let row = unstarted(
            *lock,
            self.runner.relay,
            EventId::from_bytes(*lock.as_bytes()),
            now,
            now.plus_secs(900),
            &SessionData::Received,
        )?;
        store.create_session(&row).await.map_err(transient)?;
        let row = store
            .session(lock)
            .await
            .map_err(transient)?
            .ok_or_else(|| transient("issue session vanished"))?;
        let purpose = Purpose::Issue {
            kind: kind.to_owned(),
        };
        self.runner
            .start_persisted(row, purpose, plan, issued)
            .await?;
        Ok(())
    }
}

/// The genesis' placeholder colour: its real colour derives from the txid.
const PLACEHOLDER: Colour = Colour {
    asset: AssetId::from_bytes([0; 32]),
    amount: AssetAmount::new(1),
};

/// The ceremony's end as the issue's result.
fn finished(
    lock: &SessionId,
    c: Option<ark_relay_ceremony::Ceremony>,
) -> Result<ark_relay_ceremony::Ceremony, IssueError> {
    let c = c.ok_or_else(|| fatal(format!("issue {lock} has no ceremony")))?;
    match &c.phase {
        Phase::Completed => Ok(c),
        Phase::Failed { failure, .. } => Err(IssueError::Rejected(failure.rejection())),
        Phase::Stranded { failure } => {
            tracing::warn!(session = %lock, reason = %failure.message, "issuing transaction stranded at arkd");
            Err(transient(format!("stranded: {}", failure.message)))
        }
        other => Err(transient(format!("issue in flight ({})", other.name()))),
    }
}

/// The longest asset name a genesis takes, in characters: a Taproot Asset's
/// own limit (64), so its control asset's name (`<name> control asset`)
/// fits the ledger's 100-character column too.
pub const MAX_ASSET_NAME_CHARS: usize = 64;

/// Refuses (1002) a genesis whose name the ledger could not register: one
/// checked only after arkd finalized the genesis would leave a finalized
/// ark tx the ledger refuses, retried forever.
fn check_genesis_names(asset: &GenesisRequest) -> Result<(), Rejection> {
    let chars = asset.name.chars().count();
    if chars == 0 || chars > MAX_ASSET_NAME_CHARS {
        return Err(Rejection::new(
            ark_relay_core::ErrorCode::Malformed,
            format!("an asset name must be 1-{MAX_ASSET_NAME_CHARS} characters (got {chars})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod name_tests {
    use super::*;

    fn request(name: &str) -> GenesisRequest {
        GenesisRequest {
            name: name.into(),
            ticker: "gLP".into(),
            decimals: 0,
            taproot_asset_id: None,
            asset_type: ark_relay_core::AssetType::Permissionless,
        }
    }

    #[test]
    fn a_name_the_ledger_cannot_hold_is_refused_before_the_genesis() {
        assert!(check_genesis_names(&request(&"é".repeat(64))).is_ok());
        for bad in [String::new(), "x".repeat(65), "é".repeat(87)] {
            let r = check_genesis_names(&request(&bad)).expect_err("refused");
            assert_eq!(r.code, ark_relay_core::ErrorCode::Malformed);
        }
    }
}
