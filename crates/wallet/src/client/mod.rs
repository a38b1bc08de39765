//! [`Wallet`]: the reference wallet over Nostr.
//!
//! One background task reads the relay's answers addressed to the wallet
//! (31501, 31511, 31340, 31341, through [`PoolTransport`]), answers signing
//! challenges with the [`Signer`] and records outcomes; the async methods
//! publish requests and intents and wait for those outcomes.
//!
//! Only events signed by the relay's key are considered. A challenge for a
//! session the wallet did not start is refused, except that challenges older
//! than the wallet process (re-delivered by the catch-up query) are ignored,
//! so that a second process with the same key never refuses the first one's
//! live session.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ark_relay_ark::{parse_network, RelativeLocktime, ServerInfo};
use ark_relay_core::{ErrorCode, EventId, PubKey, Sats, SessionId, UnixTime};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::{
    AssetRef, Confirmation, FailureNotice, IntentContent, SigningChallenge,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{builders, event_id_from_nostr, kinds};
use bitcoin::secp256k1::{Keypair, Secp256k1, XOnlyPublicKey};
use nostr::{Event, Keys};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::signer::{Answer, SignPolicy, Signer};
use crate::verify::{AssetBook, AuthorisedIntent, OwnedVtxo};

mod batch;
mod events;
mod history;
mod indexer;
mod renewal;

use history::set_outcome;
pub use history::{HistoryEntry, Outcome};
pub use indexer::IndexerCheck;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The relay refused (31341 or a 31501 error), with its code.
    #[error("relay refused ({code}): {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The relay's message.
        message: String,
    },
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The intent cannot be built (unknown asset, paying oneself, …).
    #[error("invalid intent: {0}")]
    Invalid(String),
    /// Nostr transport failure.
    #[error("nostr: {0}")]
    Transport(String),
    /// The relay's answer does not parse.
    #[error("unexpected answer from the relay: {0}")]
    Protocol(String),
}

impl WalletError {
    /// The relay's error code, if the relay refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            WalletError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Whether a 31341 ends its intent: all do except 7001 (read-only mode),
/// which says the intent is kept and will still run.
fn is_final(n: &FailureNotice) -> bool {
    n.code != ErrorCode::BackendUnavailable
}

/// Options of [`Wallet::connect`].
#[derive(Debug, Clone)]
pub struct WalletOptions {
    /// DM scheme for requests and responses (default NIP-44 v2).
    pub scheme: Scheme,
    /// How challenges are answered.
    pub policy: SignPolicy,
    /// How long a service request may take.
    pub request_timeout: Duration,
    /// How long `send` waits for the 31340 or 31341.
    pub send_timeout: Duration,
    /// Intents expire this long after publication.
    pub intent_ttl: Duration,
    /// Server parameters to use instead of `get_info`'s `ark` field.
    pub server: Option<ServerInfo>,
    /// How often the reader re-queries the Nostr relays.
    pub catch_up_every: Duration,
    /// Where history is persisted (JSON); `None` keeps it in memory.
    pub history_file: Option<PathBuf>,
    /// Whether my inputs are also checked at the Ark server's indexer before
    /// I sign (default: at the server `get_info` advertises,
    /// [`IndexerCheck::Relay`]; [`IndexerCheck::Off`] trusts my own history
    /// only, as `ark-wallet --no-indexer-check` does).
    pub indexer: IndexerCheck,
    /// Whether `send` asks for one-step signing (`one_step` in the intent:
    /// one challenge instead of two; default off, `ark-wallet --one-step`).
    pub one_step: bool,
}

impl Default for WalletOptions {
    fn default() -> Self {
        Self {
            scheme: Scheme::Nip44,
            policy: SignPolicy::Honest,
            request_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(120),
            intent_ttl: Duration::from_secs(600),
            server: None,
            catch_up_every: Duration::from_secs(3),
            history_file: None,
            indexer: IndexerCheck::Relay,
            one_step: false,
        }
    }
}

/// Per-asset holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetBalance {
    /// The asset id (hex).
    pub asset_id: String,
    /// Its ticker, if known.
    pub ticker: Option<String>,
    /// Amount in base units (locked VTXOs included).
    pub amount: u64,
    /// Of which locked in a signing session.
    pub locked: u64,
}

/// What [`Wallet::balance`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Carrier sats over all VTXOs.
    pub sats: u64,
    /// Per asset.
    pub assets: Vec<AssetBalance>,
    /// Number of VTXOs.
    pub vtxos: usize,
}

impl Balances {
    /// Sums `vtxos`.
    pub fn of(vtxos: &[OwnedVtxo]) -> Self {
        let mut assets: Vec<AssetBalance> = Vec::new();
        let mut sats = 0u64;
        for v in vtxos {
            sats = sats.saturating_add(v.sats);
            let Some(id) = v.asset_id else { continue };
            let id = id.to_string();
            let idx = match assets.iter().position(|a| a.asset_id == id) {
                Some(i) => i,
                None => {
                    assets.push(AssetBalance {
                        asset_id: id,
                        ticker: v.ticker.clone(),
                        amount: 0,
                        locked: 0,
                    });
                    assets.len() - 1
                }
            };
            let a = &mut assets[idx];
            a.amount = a.amount.saturating_add(v.amount);
            if v.locked {
                a.locked = a.locked.saturating_add(v.amount);
            }
        }
        Self {
            sats,
            assets,
            vtxos: vtxos.len(),
        }
    }

    /// The amount of an asset by ticker or id.
    pub fn amount(&self, asset: &str) -> u64 {
        self.assets
            .iter()
            .filter(|a| a.asset_id == asset || a.ticker.as_deref() == Some(asset))
            .map(|a| a.amount)
            .sum()
    }
}

/// The relay's parameters from `get_info`.
#[derive(Debug, Clone)]
pub struct RelayParams {
    /// The raw `get_info` result.
    pub info: serde_json::Value,
    /// The Ark server parameters (`ark` field).
    pub server: ServerInfo,
    /// The transfer fee in gBTC base units.
    pub transfer_fee: u64,
}

/// Parses `get_info`'s `ark` object (see `docs/protocol.md`).
pub fn parse_ark_info(ark: &serde_json::Value) -> Result<ServerInfo, String> {
    let s = |k: &str| {
        ark.get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("ark.{k} missing"))
    };
    let n = |k: &str| {
        ark.get(k)
            .and_then(|v| v.as_i64())
            .ok_or_else(|| format!("ark.{k} missing"))
    };
    let key = |k: &str| -> Result<XOnlyPublicKey, String> {
        let bytes = hex::decode(s(k)?).map_err(|e| format!("ark.{k}: {e}"))?;
        let x = match bytes.len() {
            32 => &bytes[..],
            33 => &bytes[1..],
            _ => return Err(format!("ark.{k}: not a key")),
        };
        XOnlyPublicKey::from_slice(x).map_err(|e| format!("ark.{k}: {e}"))
    };
    let signer = key("signer_pubkey")?;
    let forfeit = key("forfeit_pubkey")?;
    let exit = RelativeLocktime::from_server_value(n("unilateral_exit_delay")?)
        .map_err(|e| format!("ark.unilateral_exit_delay: {e}"))?;
    let dust = Sats::new(u64::try_from(n("dust")?).map_err(|_| "ark.dust is negative".to_owned())?);
    let network = parse_network(s("network").unwrap_or("regtest")).map_err(|e| e.to_string())?;
    match s("checkpoint_tapscript") {
        Ok(hex_script) => {
            let script = bitcoin::ScriptBuf::from_hex(hex_script)
                .map_err(|e| format!("ark.checkpoint_tapscript: {e}"))?;
            ServerInfo::from_get_info(signer, forfeit, script, exit, dust, network)
                .map_err(|e| e.to_string())
        }
        Err(_) => {
            let cp = RelativeLocktime::from_server_value(n("checkpoint_exit_delay")?)
                .map_err(|e| format!("ark.checkpoint_exit_delay: {e}"))?;
            Ok(ServerInfo::new(signer, forfeit, exit, cp, dust, network))
        }
    }
}

/// Parses a `sync_state` result into VTXOs.
pub fn parse_sync_state(result: &serde_json::Value) -> Result<Vec<OwnedVtxo>, String> {
    let list = result
        .get("vtxos")
        .cloned()
        .ok_or_else(|| "sync_state result without vtxos".to_owned())?;
    serde_json::from_value(list).map_err(|e| format!("sync_state vtxos: {e}"))
}

#[derive(Default)]
struct State {
    params: Option<RelayParams>,
    signer: Option<Signer>,
    vtxos: Vec<OwnedVtxo>,
    seen: HashSet<nostr::EventId>,
    responses: HashMap<EventId, ServiceResponse>,
    failures: HashMap<EventId, FailureNotice>,
    confirmations: HashMap<EventId, Confirmation>,
    history: Vec<HistoryEntry>,
    /// The connected Ark server of [`IndexerCheck::Relay`].
    indexer: Option<std::sync::Arc<dyn ark_relay_core::backends::ark::ArkServer>>,
}

struct Inner {
    keys: Keys,
    keypair: Keypair,
    me: PubKey,
    relay: PubKey,
    transport: PoolTransport,
    opts: WalletOptions,
    started_at: i64,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

/// The reference wallet. Cheap to clone (shared state); dropping the last
/// clone does not stop the reader: call [`Wallet::shutdown`].
#[derive(Clone)]
pub struct Wallet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("pubkey", &self.inner.me)
            .field("relay", &self.inner.relay)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    UnixTime::now().0
}

fn first_e_tag(ev: &Event) -> Option<EventId> {
    ev.tags.event_ids().next().map(event_id_from_nostr)
}

/// The BIP-340 keypair of Nostr keys (the same secret).
pub fn keypair_of(keys: &Keys) -> Result<Keypair, String> {
    Keypair::from_seckey_slice(&Secp256k1::new(), keys.secret_key().as_secret_bytes())
        .map_err(|e| e.to_string())
}

impl Wallet {
    /// Connects to the Nostr relays and starts reading the relay's answers.
    pub async fn connect(
        keys: Keys,
        relay: PubKey,
        nostr_relays: Vec<String>,
        opts: WalletOptions,
    ) -> Result<Wallet, WalletError> {
        let keypair = keypair_of(&keys).map_err(WalletError::Invalid)?;
        let me = PubKey::from_x_only(keypair.x_only_public_key().0);
        let mut pool = PoolOptions::new(nostr_relays);
        pool.kinds = vec![
            kinds::SERVICE_RESPONSE,
            kinds::SIGNING_CHALLENGE,
            kinds::CONFIRMATION,
            kinds::FAILURE,
        ];
        pool.catch_up_every = opts.catch_up_every;
        pool.safety_window = Duration::from_secs(600);
        let transport = PoolTransport::connect(keys.public_key(), pool)
            .await
            .map_err(|e| WalletError::Transport(e.to_string()))?;
        let mut state = State::default();
        if let Some(path) = &opts.history_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                state.history = serde_json::from_str(&text).unwrap_or_default();
            }
        }
        if let Some(server) = opts.server.clone() {
            state.signer = Some(Signer::new(keypair, relay, server, opts.policy));
        }
        let (changed, _) = watch::channel(0);
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            keys,
            keypair,
            me,
            relay,
            transport,
            opts,
            started_at: now(),
            state: Mutex::new(state),
            changed,
            stop,
        });
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let (_cursor_tx, cursor) = watch::channel(None);
        let t = inner.transport.clone();
        let pump_stop = stop_rx.clone();
        tokio::spawn(async move {
            let _keep = _cursor_tx;
            if let Err(e) = t.pump(tx, cursor, pump_stop).await {
                tracing::warn!(error = %e, "wallet reader stopped");
            }
        });
        let wallet = Wallet { inner };
        let w = wallet.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                w.on_event(ev).await;
            }
        });
        Ok(wallet)
    }

    /// Stops the reader and disconnects.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        self.inner.transport.shutdown().await;
    }

    /// The wallet's key.
    pub fn pubkey(&self) -> PubKey {
        self.inner.me
    }

    /// The relay's key.
    pub fn relay(&self) -> PubKey {
        self.inner.relay
    }

    /// Changes how challenges are answered (tests).
    pub fn set_policy(&self, policy: SignPolicy) {
        if let Some(s) = self.lock().signer.as_mut() {
            s.set_policy(policy);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.inner.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    async fn wait<T>(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(t) = done(&mut self.lock()) {
                return Some(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    async fn publish(&self, ev: &Event) -> Result<(), WalletError> {
        let mut last = String::new();
        for _ in 0..5 {
            match self.inner.transport.publish(ev).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Err(WalletError::Transport(last))
    }

    /// Sends a 31500 service request and waits for its 31501 result (or the
    /// 31341 / 31501 error, as [`WalletError::Refused`]).
    pub async fn request(&self, req: &ServiceRequest) -> Result<serde_json::Value, WalletError> {
        self.request_with_id(req).await.map(|(_, r)| r)
    }

    /// [`Wallet::request`], also returning the request's event id (which a
    /// later 31340 lists, e.g. a lift's).
    pub async fn request_with_id(
        &self,
        req: &ServiceRequest,
    ) -> Result<(EventId, serde_json::Value), WalletError> {
        let d = uuid::Uuid::new_v4().simple().to_string();
        let ev = builders::service_request(
            &self.inner.keys,
            &self.inner.relay,
            req,
            &d,
            self.inner.opts.scheme,
        )
        .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let id = event_id_from_nostr(&ev.id);
        self.publish(&ev).await?;
        let answer = self
            .wait(self.inner.opts.request_timeout, |st| {
                if let Some(r) = st.responses.remove(&id) {
                    return Some(Ok(r));
                }
                // 7001: the relay keeps the request and answers it later.
                match st.failures.get(&id) {
                    Some(n) if is_final(n) => st.failures.remove(&id).map(Err),
                    _ => None,
                }
            })
            .await
            .ok_or_else(|| WalletError::Timeout(format!("the answer to request {id}")))?;
        match answer {
            Ok(ServiceResponse {
                result: Some(r), ..
            }) => Ok((id, r)),
            Ok(ServiceResponse { error: Some(e), .. }) => Err(WalletError::Refused {
                code: e.code,
                message: e.message,
            }),
            Ok(_) => Err(WalletError::Protocol("response without result".into())),
            Err(n) => Err(WalletError::Refused {
                code: n.code,
                message: n.message,
            }),
        }
    }

    /// The relay's parameters (`get_info`, cached after the first call).
    pub async fn params(&self) -> Result<RelayParams, WalletError> {
        if let Some(p) = self.lock().params.clone() {
            return Ok(p);
        }
        let info = self.request(&ServiceRequest::GetInfo {}).await?;
        let server = match &self.inner.opts.server {
            Some(s) => s.clone(),
            None => parse_ark_info(info.get("ark").unwrap_or(&serde_json::Value::Null))
                .map_err(|e| WalletError::Protocol(format!("get_info: {e}")))?,
        };
        let transfer_fee = info
            .get("transfer_fee")
            .and_then(|v| v.as_u64())
            .unwrap_or(10);
        let params = RelayParams {
            info,
            server: server.clone(),
            transfer_fee,
        };
        let mut st = self.lock();
        st.params = Some(params.clone());
        if st.signer.is_none() {
            st.signer = Some(Signer::new(
                self.inner.keypair,
                self.inner.relay,
                server,
                self.inner.opts.policy,
            ));
        }
        Ok(params)
    }

    /// Fetches the wallet's VTXOs with their colour (`sync_state`).
    pub async fn sync(&self) -> Result<Vec<OwnedVtxo>, WalletError> {
        let result = self.request(&ServiceRequest::SyncState {}).await?;
        let vtxos = parse_sync_state(&result).map_err(WalletError::Protocol)?;
        self.lock().vtxos = vtxos.clone();
        Ok(vtxos)
    }

    /// Balances over a fresh `sync_state`.
    pub async fn balance(&self) -> Result<Balances, WalletError> {
        Ok(Balances::of(&self.sync().await?))
    }

    /// Sends `amount` of `asset` to `recipient` (one `p2p_transfer` with the
    /// relay's fee), answers the challenges of its session, and returns the
    /// 31340. A 31341 is [`WalletError::Refused`] with its code.
    pub async fn send(
        &self,
        recipient: PubKey,
        amount: u64,
        asset: AssetRef,
    ) -> Result<Confirmation, WalletError> {
        let params = self.params().await?;
        let vtxos = self.sync().await?;
        let action_id = uuid::Uuid::new_v4().simple().to_string();
        let expires_at = now() + i64::try_from(self.inner.opts.intent_ttl.as_secs()).unwrap_or(600);
        let content = IntentContent::transfer(
            action_id,
            &recipient,
            asset.clone(),
            amount,
            &self.inner.relay,
            params.transfer_fee,
            expires_at,
        )
        .with_one_step(self.inner.opts.one_step);
        let ev = builders::intent(&self.inner.keys, &self.inner.relay, &content)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let intent_id = event_id_from_nostr(&ev.id);
        let authorised = AuthorisedIntent::from_intent(
            intent_id,
            &content,
            &self.inner.me,
            &AssetBook::from_vtxos(&vtxos),
        )
        .map_err(WalletError::Invalid)?;
        {
            let mut st = self.lock();
            if let Some(s) = st.signer.as_mut() {
                s.authorise(authorised, vtxos);
            }
            st.history.push(HistoryEntry {
                direction: "sent".into(),
                id: intent_id.to_string(),
                counterparty: Some(recipient.to_string()),
                asset: asset.to_string(),
                amount,
                fee: params.transfer_fee,
                at: now(),
                outcome: Outcome::Pending,
                challenges: vec![],
            });
            self.save_history(&st);
        }
        self.publish(&ev).await?;
        let outcome = self
            .wait(self.inner.opts.send_timeout, |st| {
                if let Some(c) = st.confirmations.get(&intent_id) {
                    return Some(Ok(c.clone()));
                }
                st.failures
                    .get(&intent_id)
                    .filter(|n| is_final(n))
                    .cloned()
                    .map(Err)
            })
            .await;
        let session = SessionId::from(intent_id);
        let mut st = self.lock();
        if let Some(s) = st.signer.as_mut() {
            s.end(&session);
        }
        let result = match outcome {
            Some(Ok(c)) => Ok(c),
            Some(Err(n)) => Err(WalletError::Refused {
                code: n.code,
                message: n.message,
            }),
            None => {
                set_outcome(&mut st, &intent_id, Outcome::TimedOut);
                Err(WalletError::Timeout(format!(
                    "the outcome of intent {intent_id}"
                )))
            }
        };
        self.save_history(&st);
        result
    }

    /// Publishes an already-built intent and authorises its session (for
    /// callers that build their own content). Returns the intent id.
    pub async fn publish_intent(&self, content: &IntentContent) -> Result<EventId, WalletError> {
        let (ev, intent_id) = self
            .sign_and_authorise(content, AuthorisedIntent::from_intent)
            .await?;
        self.publish(&ev).await?;
        Ok(intent_id)
    }

    /// Signs `content` as a 31510 and authorises its signing session (built
    /// by `authorise` from the intent and the wallet's current VTXOs).
    async fn sign_and_authorise(
        &self,
        content: &IntentContent,
        authorise: impl FnOnce(EventId, &IntentContent, &PubKey, &AssetBook) -> Result<AuthorisedIntent, String>
            + Send,
    ) -> Result<(Event, EventId), WalletError> {
        self.params().await?;
        let vtxos = self.sync().await?;
        let ev = builders::intent(&self.inner.keys, &self.inner.relay, content)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let intent_id = event_id_from_nostr(&ev.id);
        let authorised = authorise(
            intent_id,
            content,
            &self.inner.me,
            &AssetBook::from_vtxos(&vtxos),
        )
        .map_err(WalletError::Invalid)?;
        if let Some(s) = self.lock().signer.as_mut() {
            s.authorise(authorised, vtxos);
        }
        Ok((ev, intent_id))
    }

    /// Waits for the outcome of an intent the wallet signed: its 31340, or
    /// its 31341 as [`WalletError::Refused`].
    pub async fn outcome(
        &self,
        intent_id: EventId,
        timeout: Duration,
    ) -> Result<Confirmation, WalletError> {
        let outcome = self
            .wait(timeout, |st| {
                if let Some(c) = st.confirmations.get(&intent_id) {
                    return Some(Ok(c.clone()));
                }
                st.failures
                    .get(&intent_id)
                    .filter(|n| is_final(n))
                    .cloned()
                    .map(Err)
            })
            .await;
        let mut st = self.lock();
        if let Some(s) = st.signer.as_mut() {
            s.end(&SessionId::from(intent_id));
        }
        match outcome {
            Some(Ok(c)) => Ok(c),
            Some(Err(n)) => Err(WalletError::Refused {
                code: n.code,
                message: n.message,
            }),
            None => {
                set_outcome(&mut st, &intent_id, Outcome::TimedOut);
                self.save_history(&st);
                Err(WalletError::Timeout(format!(
                    "the outcome of intent {intent_id}"
                )))
            }
        }
    }

    /// The intent expiry to use for a new intent (unix seconds).
    pub fn intent_expiry(&self) -> i64 {
        now() + i64::try_from(self.inner.opts.intent_ttl.as_secs()).unwrap_or(600)
    }

    /// Authorises the session of an intent directly (tests that script the
    /// relay side; `send` does this itself).
    pub fn authorise(&self, intent: AuthorisedIntent, vtxos: Vec<OwnedVtxo>) -> bool {
        match self.lock().signer.as_mut() {
            Some(s) => {
                s.authorise(intent, vtxos);
                true
            }
            None => false,
        }
    }

    /// The 31341 received for `event` (an intent or request), if any.
    pub fn failure(&self, event: &EventId) -> Option<FailureNotice> {
        self.lock().failures.get(event).cloned()
    }

    /// The intents published by this wallet and payments received, with outcomes.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.lock().history.clone()
    }

    /// The VTXOs of the last `sync`.
    pub fn vtxos(&self) -> Vec<OwnedVtxo> {
        self.lock().vtxos.clone()
    }
}
