//! # ark-relay-dex-bot — a reference DEX on Ark Relay
//!
//! A small DEX server a DeFi developer can copy. It holds a Nostr key (its
//! pool key, which owns the pool's VTXOs through the reference wallet) and:
//!
//! 1. **quotes over Nostr** — users send encrypted requests ([`DEX_REQUEST`],
//!    NIP-44) p-tagged to the pool key; it answers with [`DEX_RESPONSE`];
//! 2. **accepts a user's signed intent** (`atomic_swap`, `add_liquidity`,
//!    `remove_liquidity`), checks it against its constant-product pool
//!    ([`pool`]) — the relay knows no AMM maths, the DEX does;
//! 3. **creates its counter-intent** with the wallet library
//!    ([`ark_relay_wallet::Wallet::sign_batch_intent`]): for a swap it pays the
//!    quoted asset; for `add_liquidity` it pays LP tokens it **mints**; for
//!    `remove_liquidity` it pays out the reserves and **burns** the LP tokens
//!    it receives;
//! 4. **submits the batch** (`submit_batch`) and answers the user once the
//!    relay has settled both intents in one Ark transaction (or refused).
//!
//! ## LP tokens and who may issue them
//!
//! The LP token is an **Arkade asset issued by the pool key** ([`lp_token`]):
//! on its first start the DEX sends the relay an `issue_asset` request, and
//! the relay runs the token's genesis on Ark — 1 unit of gLP and gLP's
//! **control asset**, both to the pool key. The token's id is the genesis
//! txid (its Arkade id: that txid + group 0, what arkd's indexer shows).
//! Every `mint` of the pool spends and re-creates its control VTXO in the
//! batch transaction (the relay adds it to the pool's inputs), which is what
//! arkd requires of a reissuance; a key without the control asset is refused
//! (3001) by the relay and, were it to try at the Ark server, by arkd. A
//! mint must be paid out in the same batch (the minted units are outputs of
//! the pool's intent); a burn destroys units the pool receives in the same
//! batch. On a restart the DEX finds its token again from its own VTXOs
//! (the genesis unit and the control asset).
//!
//! ## Safety of the user
//!
//! The user's wallet signs only if the batch transaction pays exactly the
//! legs of *its own* intent (PRD §11.5), so a DEX that under-pays, or a relay
//! that lies, gets a refusal (3001) and nothing moves.
//!
//! ## Simplifications (it is an example)
//!
//! Trades are executed one at a time (the pool state is behind one lock while
//! a batch settles); the pool's state lives in memory, seeded from arguments;
//! the pool key also pays the relay's 10-unit gBTC fee per batch from a float
//! of gBTC outside the pool's reserves.

pub mod pool;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{AssetId, EventId, PubKey};
use ark_relay_protocol::content::{
    AssetRef, Confirmation, IntentContent, IntentType, SupplyChange, WireAmount,
};
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_wallet::Wallet;
use nostr::{Event, Keys};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

pub use pool::{Pool, PoolError, Side};
pub use rpc::{message, DexResponse, RpcClient, DEX_REQUEST, DEX_RESPONSE};

/// The LP token's ticker (a ticker names one asset on a relay).
pub const LP_TICKER: &str = "gLP";

/// The pool's LP token: the one it issued before (a `gLP` VTXO of the pool
/// whose control asset the pool also holds), or a new one issued now on Ark
/// with the pool key as its issuer (`issue_asset`).
pub async fn lp_token(wallet: &Wallet) -> Result<AssetId, ark_relay_wallet::WalletError> {
    let mine = wallet.sync().await?;
    let issued = issued_by_me(&mine)
        .into_iter()
        .find(|(_, ticker)| ticker == LP_TICKER);
    if let Some((lp, _)) = issued {
        return Ok(lp);
    }
    issue_asset(wallet, LP_TICKER, "Ark Relay DEX pool share").await
}

/// The assets I issued among my VTXOs `mine` (from [`Wallet::sync`]): those
/// I hold units of together with their control asset (id, ticker).
pub fn issued_by_me(mine: &[ark_relay_wallet::OwnedVtxo]) -> Vec<(AssetId, String)> {
    let ids: Vec<AssetId> = mine.iter().filter_map(|v| v.asset_id).collect();
    mine.iter()
        .filter_map(|v| Some((v.asset_id?, v.ticker.clone()?)))
        .filter(|(a, _)| ids.contains(&ark_relay_ark::asset::control_ledger_id(a)))
        .collect()
}

/// Has the relay issue a new asset on Ark with `wallet`'s key as its issuer
/// (`issue_asset`): its genesis pays the wallet 1 unit of it and its control
/// asset. Returns the asset's id (the genesis txid).
pub async fn issue_asset(
    wallet: &Wallet,
    ticker: &str,
    name: &str,
) -> Result<AssetId, ark_relay_wallet::WalletError> {
    let answer = wallet
        .request(&ServiceRequest::IssueAsset {
            ticker: ticker.into(),
            name: Some(name.into()),
            decimals: None,
        })
        .await?;
    answer["asset_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ark_relay_wallet::WalletError::Protocol(format!(
                "issue_asset answered without an asset id: {answer}"
            ))
        })
}

/// A request to the DEX (content of a [`DEX_REQUEST`], NIP-44 encrypted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DexRequest {
    /// The pool: asset ids, reserves, LP token, fee.
    Info {},
    /// How much of the other asset `amount` of `give` buys now.
    Quote {
        /// `gBTC` or `gUSD` (ticker or id).
        give: AssetRef,
        /// Amount in base units.
        amount: u64,
    },
    /// Execute this signed `atomic_swap` intent against the pool.
    Swap {
        /// The user's signed 31510 (not published).
        intent: Event,
    },
    /// Execute this signed `add_liquidity` intent (LP tokens minted to the user).
    AddLiquidity {
        /// The user's signed 31510.
        intent: Event,
    },
    /// Execute this signed `remove_liquidity` intent (LP tokens burnt).
    RemoveLiquidity {
        /// The user's signed 31510.
        intent: Event,
    },
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum DexError {
    /// The intent does not fit the pool (wrong shape, price worse than the pool's).
    #[error("{0}")]
    Rejected(String),
    /// The pool refuses the amounts.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The relay refused or the wallet failed.
    #[error("relay: {0}")]
    Relay(#[from] ark_relay_wallet::WalletError),
}

fn reject(msg: impl Into<String>) -> DexError {
    DexError::Rejected(msg.into())
}

/// The DEX: a pool and the wallet that holds it.
pub struct Dex {
    wallet: Wallet,
    keys: Keys,
    me: PubKey,
    btc: AssetId,
    usd: AssetId,
    lp: AssetId,
    fee: u64,
    pool: Mutex<Pool>,
    settle_timeout: Duration,
}

/// What a user intent asks of the pool, read from its content.
struct Ask {
    /// Non-fee outputs paying the pool: (asset, amount).
    pays: Vec<(AssetId, u64)>,
    /// What it expects back: (asset, amount).
    wants: Vec<(AssetId, u64)>,
}

impl Dex {
    /// A DEX on `wallet` (the pool key) for `btc`/`usd`, with `pool` state,
    /// minting `lp` (its LP token, [`lp_token`]); `fee` is the relay's
    /// per-intent fee in gBTC.
    pub fn new(
        wallet: Wallet,
        keys: Keys,
        btc: AssetId,
        usd: AssetId,
        lp: AssetId,
        pool: Pool,
        fee: u64,
    ) -> Self {
        let me = wallet.pubkey();
        Self {
            lp,
            wallet,
            keys,
            me,
            btc,
            usd,
            fee,
            pool: Mutex::new(pool),
            settle_timeout: Duration::from_secs(120),
        }
    }

    /// The LP token's asset id.
    pub fn lp_asset(&self) -> AssetId {
        self.lp
    }

    /// The pool's current state.
    pub async fn pool(&self) -> Pool {
        *self.pool.lock().await
    }

    fn side(&self, a: &AssetRef) -> Option<Side> {
        match a {
            AssetRef::Id(id) if *id == self.btc => Some(Side::Btc),
            AssetRef::Id(id) if *id == self.usd => Some(Side::Usd),
            AssetRef::Ticker(t) if t == "gBTC" => Some(Side::Btc),
            AssetRef::Ticker(t) if t == "gUSD" => Some(Side::Usd),
            _ => None,
        }
    }

    fn id_of(&self, a: &AssetRef) -> Option<AssetId> {
        match self.side(a) {
            Some(Side::Btc) => Some(self.btc),
            Some(Side::Usd) => Some(self.usd),
            None => match a {
                AssetRef::Id(id) if *id == self.lp => Some(self.lp),
                _ => None,
            },
        }
    }

    fn asset(&self, side: Side) -> AssetId {
        match side {
            Side::Btc => self.btc,
            Side::Usd => self.usd,
        }
    }

    /// Checks the user's signed intent: a valid event by `user`, of `kind`,
    /// paying the pool (and the relay's fee) and expecting assets back from it.
    fn read(&self, ev: &Event, user: &PubKey, kind: IntentType) -> Result<Ask, DexError> {
        let c = signed_intent(ev, user, kind).map_err(DexError::Rejected)?;
        let mut ask = Ask {
            pays: vec![],
            wants: vec![],
        };
        for o in c.outputs.iter().filter(|o| o.role.is_none()) {
            if o.recipient != self.me.to_string() {
                return Err(reject("every payment must go to the pool"));
            }
            let a = self
                .id_of(&o.asset)
                .ok_or_else(|| reject(format!("the pool does not trade {}", o.asset)))?;
            let n = o.amount.positive("amount").map_err(|r| reject(r.message))?;
            ask.pays.push((a, n));
        }
        for l in c.counterparty_leg.iter().flat_map(|l| l.as_slice()) {
            if l.recipient
                .as_deref()
                .is_some_and(|r| r != self.me.to_string())
            {
                return Err(reject("counterparty_leg must name the pool"));
            }
            let a = self
                .id_of(&l.asset)
                .ok_or_else(|| reject(format!("the pool does not pay {}", l.asset)))?;
            let n = l.amount.positive("amount").map_err(|r| reject(r.message))?;
            ask.wants.push((a, n));
        }
        Ok(ask)
    }

    /// Builds, signs and submits the counter-intent, waits for the batch.
    async fn settle(
        &self,
        user_intent: &Event,
        counter: IntentContent,
        batch: &str,
    ) -> Result<serde_json::Value, DexError> {
        let conf = settle_batch(
            &self.wallet,
            user_intent,
            counter,
            batch,
            self.settle_timeout,
        )
        .await?;
        Ok(serde_json::json!({"status": "completed", "ark_txid": conf.ark_txid}))
    }

    fn counter(
        &self,
        kind: IntentType,
        user: &PubKey,
        pays: &[(AssetId, u64)],
        expects: &[(AssetId, u64)],
    ) -> IntentContent {
        let to = |v: &[(AssetId, u64)]| -> Vec<(PubKey, AssetRef, u64)> {
            v.iter()
                .map(|(a, n)| (*user, AssetRef::Id(*a), *n))
                .collect()
        };
        IntentContent::batch_leg(
            kind,
            uuid::Uuid::new_v4().simple().to_string(),
            &to(pays),
            &to(expects),
            &self.wallet.relay(),
            self.fee,
            0,
        )
    }

    fn lp_change(&self, amount: u64) -> Option<Vec<SupplyChange>> {
        Some(vec![SupplyChange {
            asset: AssetRef::Id(self.lp),
            ticker: LP_TICKER.into(),
            amount: WireAmount::new(amount),
        }])
    }

    /// Handles one request from `user`.
    pub async fn handle(
        &self,
        user: &PubKey,
        req: DexRequest,
    ) -> Result<serde_json::Value, DexError> {
        match req {
            DexRequest::Info {} => {
                let p = self.pool().await;
                Ok(serde_json::json!({
                    "pool": self.me, "btc": self.btc, "usd": self.usd, "lp": self.lp,
                    "lp_ticker": LP_TICKER, "reserves": {"btc": p.btc, "usd": p.usd},
                    "lp_supply": p.lp_supply, "fee_bps": pool::FEE_BPS,
                }))
            }
            DexRequest::Quote { give, amount } => {
                let side = self
                    .side(&give)
                    .ok_or_else(|| reject(format!("the pool does not trade {give}")))?;
                let out = self.pool().await.quote(side, amount)?;
                Ok(serde_json::json!({
                    "give": self.asset(side), "amount": amount,
                    "receive": self.asset(side.other()), "receive_amount": out,
                }))
            }
            DexRequest::Swap { intent } => {
                let ask = self.read(&intent, user, IntentType::AtomicSwap)?;
                let ([(a_in, x)], [(a_out, y)]) = (ask.pays.as_slice(), ask.wants.as_slice())
                else {
                    return Err(reject("a swap pays one asset and receives the other"));
                };
                let side = if *a_in == self.btc {
                    Side::Btc
                } else {
                    Side::Usd
                };
                if *a_out != self.asset(side.other()) {
                    return Err(reject("a swap receives the other asset of the pool"));
                }
                // One trade at a time: the quote holds until the batch settles.
                let mut pool = self.pool.lock().await;
                let quoted = pool.quote(side, *x)?;
                if *y > quoted {
                    return Err(reject(format!(
                        "the pool pays {quoted} for {x}, the intent asks {y}"
                    )));
                }
                let counter = self.counter(
                    IntentType::AtomicSwap,
                    user,
                    &[(*a_out, *y)],
                    &[(*a_in, *x)],
                );
                let out = self.settle(&intent, counter, "swap").await?;
                pool.apply_swap(side, *x, *y);
                Ok(out)
            }
            DexRequest::AddLiquidity { intent } => {
                let ask = self.read(&intent, user, IntentType::AddLiquidity)?;
                let amount = |a: AssetId| -> u64 {
                    ask.pays
                        .iter()
                        .filter(|(x, _)| *x == a)
                        .map(|(_, n)| n)
                        .sum()
                };
                let (btc, usd) = (amount(self.btc), amount(self.usd));
                let [(lp_asset, lp)] = ask.wants.as_slice() else {
                    return Err(reject("add_liquidity expects one amount of LP tokens"));
                };
                if *lp_asset != self.lp || ask.pays.iter().any(|(a, _)| *a == self.lp) {
                    return Err(reject("add_liquidity deposits gBTC and gUSD for gLP"));
                }
                let mut pool = self.pool.lock().await;
                let due = pool.lp_for_deposit(btc, usd)?;
                if *lp > due {
                    return Err(reject(format!(
                        "the deposit is worth {due} LP, the intent asks {lp}"
                    )));
                }
                let mut counter = self.counter(
                    IntentType::AddLiquidity,
                    user,
                    &[(self.lp, *lp)],
                    &[(self.btc, btc), (self.usd, usd)],
                );
                counter.mint = self.lp_change(*lp);
                let out = self.settle(&intent, counter, "add_liquidity").await?;
                pool.apply_deposit(btc, usd, *lp);
                Ok(out)
            }
            DexRequest::RemoveLiquidity { intent } => {
                let ask = self.read(&intent, user, IntentType::RemoveLiquidity)?;
                let [(lp_asset, lp)] = ask.pays.as_slice() else {
                    return Err(reject("remove_liquidity returns one amount of LP tokens"));
                };
                if *lp_asset != self.lp {
                    return Err(reject("remove_liquidity returns gLP"));
                }
                let want = |a: AssetId| -> u64 {
                    ask.wants
                        .iter()
                        .filter(|(x, _)| *x == a)
                        .map(|(_, n)| n)
                        .sum()
                };
                let (btc, usd) = (want(self.btc), want(self.usd));
                let mut pool = self.pool.lock().await;
                let (max_btc, max_usd) = pool.withdrawal(*lp)?;
                if btc > max_btc || usd > max_usd {
                    return Err(reject(format!(
                        "{lp} LP are worth {max_btc} gBTC and {max_usd} gUSD, the intent asks {btc} and {usd}"
                    )));
                }
                let pays: Vec<(AssetId, u64)> = [(self.btc, btc), (self.usd, usd)]
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect();
                let mut counter =
                    self.counter(IntentType::RemoveLiquidity, user, &pays, &[(self.lp, *lp)]);
                counter.burn = self.lp_change(*lp);
                let out = self.settle(&intent, counter, "remove_liquidity").await?;
                pool.apply_withdrawal(btc, usd, *lp);
                Ok(out)
            }
        }
    }

    /// Serves requests from the Nostr relays until `stop` turns `true` (see
    /// [`rpc::serve`]).
    pub async fn serve(
        self: Arc<Self>,
        relays: Vec<String>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), DexError> {
        let keys = self.keys.clone();
        rpc::serve(self, keys, relays, stop)
            .await
            .map_err(|e| reject(format!("nostr: {e}")))
    }
}

#[async_trait::async_trait]
impl rpc::Service for Dex {
    type Request = DexRequest;

    async fn handle(&self, user: &PubKey, req: DexRequest) -> Result<serde_json::Value, String> {
        Dex::handle(self, user, req)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A user's side of the DEX protocol (the pool's requests over [`rpc`]).
pub type DexClient = RpcClient;

/// The content of `ev` if it is a valid 31510 intent of `kind` signed by
/// `user` (a DEX bot accepts only its requester's own intents).
pub fn signed_intent(ev: &Event, user: &PubKey, kind: IntentType) -> Result<IntentContent, String> {
    if ev.verify().is_err() || ev.kind.as_u16() != kinds::INTENT {
        return Err("not a signed 31510 intent".into());
    }
    if pubkey_from_nostr(&ev.pubkey).as_ref() != Some(user) {
        return Err("the intent must be signed by the requester".into());
    }
    let c: IntentContent = serde_json::from_str(&ev.content).map_err(|e| format!("intent: {e}"))?;
    if IntentType::parse(&c.intent_type) != Some(kind) {
        return Err(format!("expected a {} intent", kind.as_str()));
    }
    Ok(c)
}

/// Signs `counter` (the bot's own leg, expiring with the wallet's default),
/// submits it with `user_intent` as one batch and waits up to `timeout` for
/// the batch's 31340 (or the relay's refusal).
pub async fn settle_batch(
    wallet: &Wallet,
    user_intent: &Event,
    mut counter: IntentContent,
    batch: &str,
    timeout: Duration,
) -> Result<Confirmation, ark_relay_wallet::WalletError> {
    counter.expires_at = wallet.intent_expiry();
    let mine = wallet.sign_batch_intent(&counter).await?;
    submit_and_wait(wallet, user_intent, mine, batch, timeout).await
}

/// Submits the user's intent and the bot's signed counter-intent `mine` as
/// one batch and waits up to `timeout` for its 31340 (or the refusal).
pub async fn submit_and_wait(
    wallet: &Wallet,
    user_intent: &Event,
    mine: Event,
    batch: &str,
    timeout: Duration,
) -> Result<Confirmation, ark_relay_wallet::WalletError> {
    let mine_id = event_id_from_nostr(&mine.id);
    wallet
        .submit_batch(batch, vec![user_intent.clone(), mine])
        .await?;
    wallet.outcome(mine_id, timeout).await
}

/// The id of an intent event (for waiting on its outcome).
pub fn intent_id(ev: &Event) -> EventId {
    event_id_from_nostr(&ev.id)
}
