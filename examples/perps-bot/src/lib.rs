//! # ark-relay-perps-bot — perpetuals on Ark Relay (PRD §12 scenarios 6 and 7)
//!
//! A perpetuals DEX a DeFi developer can copy, built on the constant-product
//! DEX's pieces ([`ark_relay_dex_bot::rpc`] for the private request/answer
//! protocol over Nostr, [`ark_relay_dex_bot::settle_batch`] for batches) and
//! on the wire format of `ark_relay_protocol::perps`. It holds a Nostr key
//! (the DEX key: margin account, position-token issuer, first key of every
//! position's conditional leaf) and:
//!
//! 1. **quotes** ([`PerpsRequest::Quote`]): the full [`PerpTerms`] of a
//!    position at the oracle's current mark — entry price, maintenance
//!    margin, the oracle, the insurance fund and the position token's id —
//!    and the liquidation price they imply. The position token is an
//!    **Arkade asset the DEX key issued** ([`ark_relay_dex_bot::issue_asset`]:
//!    its genesis on Ark pays the DEX its one unit and its control asset), so
//!    arkd and every indexer see it. Tokens are reused before a new one is
//!    issued — a requester's unopened quote passes its token on to her next
//!    quote; expired quotes' tokens and those of ended positions (supply 0)
//!    serve later quotes — so the DEX holds one control VTXO per open
//!    position or quote, not per position ever (the relay bounds how many a
//!    key may hold, `issue_asset_per_key`);
//! 2. **opens** ([`PerpsRequest::Open`]): the user's signed `open_perp`
//!    (exactly the quoted terms) and the DEX's counter-intent (one unit of
//!    the token to her — the genesis unit it holds, or a unit minted under
//!    its control VTXO for a reused token — her margin to it) settle as one
//!    atomic batch; the relay gives her token VTXO the conditional tree. The
//!    position is the token's whole supply;
//! 3. **marks** every open position on each 30420 price of the configured
//!    oracle ([`Perps::follow_oracle`]; other keys' prices are ignored by the
//!    subscription and again by the [`book`]);
//! 4. **liquidates** a position whose signed threshold the price crossed: a
//!    `liquidate` intent naming the position VTXO, paying the margin to the
//!    insurance fund, with the witness (her `open_perp` + the price event);
//!    the relay co-signs the conditional leaf only if its checklist passes;
//! 5. **closes** ([`PerpsRequest::Close`]) a position at its owner's request:
//!    she returns the token, the DEX pays her equity at the current mark and
//!    burns the token, in one batch (a liquidation burns it too: its supply
//!    ends at 0).
//!
//! Simplifications (it is an example): the book lives in memory; the margin
//! account and the insurance fund are keys of the operator; the DEX pays
//! profits from its own gBTC float.

pub mod book;
mod quotes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{AssetId, EventId, PubKey, UnixTime, VtxoId};
use ark_relay_dex_bot::{rpc, settle_batch, signed_intent, submit_and_wait};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::{
    AssetRef, Confirmation, IntentContent, IntentType, SupplyChange, WireAmount,
};
use ark_relay_protocol::perps::{
    parse_price_event, LiquidationOracle, MarginDeposit, PerpTerms, PositionDetails, Side, Witness,
    ORACLE_PRICE,
};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{event_id_from_nostr, pubkey_from_nostr, pubkey_to_nostr};
use ark_relay_wallet::Wallet;
use nostr::{Event, Keys};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Mutex};

pub use book::{Book, BookRules, Effect, Input, Mark, Position, Status};
use quotes::{is_position_ticker, Quote, Quotes, Token, POSITION_TICKER_PREFIX};

/// The perpetuals DEX's configuration.
#[derive(Debug, Clone)]
pub struct PerpsConfig {
    /// The oracle whose 30420 prices mark and liquidate positions.
    pub oracle: PubKey,
    /// The margin asset (gBTC's id).
    pub margin_asset: AssetId,
    /// Maintenance margin, basis points of notional.
    pub maintenance_margin_bps: u32,
    /// Highest leverage offered.
    pub max_leverage: u32,
    /// Prices older than this (seconds) are not used (keep it below the
    /// relay's `[conditional] max_price_age_secs`).
    pub max_price_age: i64,
    /// Where liquidations send the margin.
    pub insurance_fund: PubKey,
    /// The relay's fee per intent, in gBTC.
    pub fee: u64,
    /// How long a quote stays valid.
    pub quote_ttl: Duration,
    /// How long to wait for a batch or a liquidation to settle.
    pub settle_timeout: Duration,
}

/// A request to the perpetuals DEX (content of a [`rpc::DEX_REQUEST`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PerpsRequest {
    /// The DEX: its keys, oracle, margin asset, marks.
    Info {},
    /// Terms for a position of `margin` at `leverage` on `pair` (they
    /// replace the requester's unopened quote, if any).
    Quote {
        /// `BTC/USD`.
        pair: String,
        /// Long or short.
        side: Side,
        /// Leverage.
        leverage: u32,
        /// Margin in the margin asset's base units.
        margin: u64,
    },
    /// Open: the user's signed `open_perp` (31510, not published) with the quoted terms.
    Open {
        /// The signed intent.
        intent: Event,
    },
    /// Close `position`: the user's signed `atomic_swap` returning its token
    /// for her equity (`counterparty_leg`) at the current mark.
    Close {
        /// The position (its `open_perp` id).
        position: EventId,
        /// The signed intent.
        intent: Event,
    },
    /// The requester's positions with their last marks.
    Positions {},
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum PerpsError {
    /// The request does not fit the DEX's terms.
    #[error("{0}")]
    Rejected(String),
    /// The relay refused or the wallet failed.
    #[error("relay: {0}")]
    Relay(#[from] ark_relay_wallet::WalletError),
    /// Nostr transport.
    #[error(transparent)]
    Transport(#[from] ark_relay_protocol::transport::TransportError),
}

fn reject(msg: impl Into<String>) -> PerpsError {
    PerpsError::Rejected(msg.into())
}

/// The perpetuals DEX: its wallet, book and open quotes.
pub struct Perps {
    wallet: Wallet,
    keys: Keys,
    me: PubKey,
    config: PerpsConfig,
    book: Mutex<Book>,
    quotes: Mutex<Quotes>,
    /// Sends every book effect (tests and logs watch it).
    effects: tokio::sync::broadcast::Sender<Effect>,
}

/// The position token VTXO a batch created for `user`.
fn token_vtxo(conf: &Confirmation, user: &PubKey, token: &AssetId) -> Option<VtxoId> {
    conf.created
        .iter()
        .find(|c| {
            c.owner == *user
                && c.amount == 1
                && matches!(&c.asset, Some(AssetRef::Id(a)) if a == token)
        })
        .map(|c| c.vtxo)
}

impl Perps {
    /// A DEX on `wallet` (its key `keys`).
    pub fn new(wallet: Wallet, keys: Keys, config: PerpsConfig) -> Self {
        let (effects, _) = tokio::sync::broadcast::channel(1024);
        Self {
            me: wallet.pubkey(),
            book: Mutex::new(Book::new(BookRules {
                oracle: config.oracle,
                max_price_age: config.max_price_age,
            })),
            wallet,
            keys,
            config,
            quotes: Mutex::default(),
            effects,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &PerpsConfig {
        &self.config
    }

    /// Finds the position tokens the DEX issued earlier and still holds the
    /// genesis unit of (quoted, never opened, before a restart) among its
    /// VTXOs and keeps them for the next quotes; returns how many. (Tokens of
    /// ended positions, supply 0, are not found again: the DEX holds only
    /// their control VTXO, which it cannot tell from an open position's.)
    pub async fn recover_tokens(&self) -> Result<usize, PerpsError> {
        let mine = self.wallet.sync().await?;
        let mut quotes = self.quotes.lock().await;
        let known: Vec<AssetId> = quotes
            .spare
            .iter()
            .map(|t| t.id)
            .chain(quotes.open.keys().copied())
            .collect();
        let found: Vec<Token> = ark_relay_dex_bot::issued_by_me(&mine)
            .into_iter()
            .filter(|(id, ticker)| is_position_ticker(ticker) && !known.contains(id))
            .map(|(id, ticker)| Token {
                id,
                ticker,
                unit_held: true,
            })
            .collect();
        let n = found.len();
        quotes.spare.extend(found);
        Ok(n)
    }

    /// Every effect of the book from now on.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<Effect> {
        self.effects.subscribe()
    }

    /// A snapshot of the book.
    pub async fn book(&self) -> Book {
        self.book.lock().await.clone()
    }

    async fn step(self: &Arc<Self>, input: Input) {
        let effects = self.book.lock().await.step(input);
        for e in effects {
            match &e {
                Effect::Liquidate { id, price_event } => {
                    let (dex, id, ev) = (self.clone(), *id, (**price_event).clone());
                    tokio::spawn(dex.liquidate(id, ev));
                }
                Effect::Marked { id, mark } => {
                    tracing::info!(position = %id, price = mark.price, pnl = %mark.pnl, equity = %mark.equity, "marked");
                }
                Effect::Ignored { event, reason } => {
                    tracing::info!(price_event = %event, reason, "price ignored");
                }
            }
            let _ = self.effects.send(e);
        }
    }

    /// Feeds one price event to the book (what [`Self::follow_oracle`] does
    /// for each event it reads).
    pub async fn on_price_event(self: &Arc<Self>, event: Event) {
        match parse_price_event(&event) {
            Ok(price) => {
                self.step(Input::Price {
                    price,
                    event: Box::new(event),
                    now: UnixTime::now(),
                })
                .await
            }
            Err(r) => tracing::info!(event = %event.id, reason = %r.message, "not a price"),
        }
    }

    /// Follows the oracle's 30420 prices on `relays` until `stop`.
    pub async fn follow_oracle(
        self: Arc<Self>,
        relays: Vec<String>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), PerpsError> {
        let mut opts = PoolOptions::new(relays);
        opts.kinds = vec![ORACLE_PRICE];
        opts.authors = Some(vec![pubkey_to_nostr(&self.config.oracle)]);
        opts.catch_up_every = Duration::from_secs(3);
        opts.safety_window =
            Duration::from_secs(u64::try_from(self.config.max_price_age.max(1)).unwrap_or(60));
        let transport = PoolTransport::connect(self.keys.public_key(), opts).await?;
        let (tx, mut rx) = mpsc::channel::<Event>(256);
        let (cursor_tx, cursor) = watch::channel(None);
        let t = transport.clone();
        tokio::spawn(async move {
            let _keep = cursor_tx;
            if let Err(e) = t.pump(tx, cursor, stop).await {
                tracing::warn!(error = %e, "oracle reader stopped");
            }
        });
        let mut seen = std::collections::HashSet::new();
        while let Some(ev) = rx.recv().await {
            if seen.insert(ev.id) {
                self.on_price_event(ev).await;
            }
        }
        transport.shutdown().await;
        Ok(())
    }

    /// Quotes terms at the current mark (see the module docs).
    async fn quote(
        &self,
        user: &PubKey,
        pair: &str,
        side: Side,
        leverage: u32,
        margin: u64,
    ) -> Result<serde_json::Value, PerpsError> {
        if leverage == 0 || leverage > self.config.max_leverage {
            return Err(reject(format!(
                "leverage must be 1 to {}",
                self.config.max_leverage
            )));
        }
        let mark = {
            let book = self.book.lock().await;
            book.mark_price(pair)
                .cloned()
                .ok_or_else(|| reject(format!("no price for {pair} from the oracle yet")))?
        };
        if UnixTime::now().0.saturating_sub(mark.timestamp.0) > self.config.max_price_age {
            return Err(reject(format!("the last {pair} price is stale")));
        }
        let reused = self
            .quotes
            .lock()
            .await
            .reusable(user, tokio::time::Instant::now());
        let issued = match reused {
            Some(t) => t,
            None => self.issue_token(pair).await?,
        };
        let (token, ticker) = (issued.id, issued.ticker.clone());
        let terms = PerpTerms {
            margin_deposit: MarginDeposit {
                asset: AssetRef::Id(self.config.margin_asset),
                amount: WireAmount::new(margin),
            },
            position_details: PositionDetails {
                side,
                leverage,
                entry_price: WireAmount::new(mark.price),
            },
            liquidation_oracle: LiquidationOracle {
                pubkey: self.config.oracle,
                pair: pair.to_owned(),
                decimals: mark.decimals,
            },
            maintenance_margin_bps: self.config.maintenance_margin_bps,
            dex: self.me,
            insurance_fund: self.config.insurance_fund,
            position_token: AssetRef::Id(token),
        };
        let valid = match terms.validate() {
            Ok(v) => v,
            Err(r) => {
                self.quotes.lock().await.spare.push(issued);
                return Err(reject(r.message));
            }
        };
        self.quotes.lock().await.open.insert(
            token,
            Quote {
                user: *user,
                terms: terms.clone(),
                token: issued,
                expires: tokio::time::Instant::now() + self.config.quote_ttl,
            },
        );
        Ok(serde_json::json!({
            "terms": terms, "ticker": ticker, "position_token": token,
            "liquidation_price": valid.liquidation_price(),
            "fee": self.config.fee,
        }))
    }

    /// A position ended and its token was burned (supply 0): the token is
    /// spare again, its next opening mints it under the DEX's control VTXO.
    async fn recycle(&self, id: AssetId, ticker: String) {
        self.quotes.lock().await.spare.push(Token {
            id,
            ticker,
            unit_held: false,
        });
    }

    /// Issues a new position token on Ark with the DEX key as its issuer.
    async fn issue_token(&self, pair: &str) -> Result<Token, PerpsError> {
        let ticker = format!(
            "{POSITION_TICKER_PREFIX}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let name = format!("{pair} perp position");
        let id = ark_relay_dex_bot::issue_asset(&self.wallet, &ticker, &name).await?;
        tracing::info!(token = %id, %ticker, "position token issued on Ark");
        Ok(Token {
            id,
            ticker,
            unit_held: true,
        })
    }

    /// Settles a user's `open_perp` against its quote.
    async fn open(
        self: &Arc<Self>,
        user: &PubKey,
        intent: Event,
    ) -> Result<serde_json::Value, PerpsError> {
        let c = signed_intent(&intent, user, IntentType::OpenPerp).map_err(PerpsError::Rejected)?;
        let terms = c
            .perp
            .clone()
            .ok_or_else(|| reject("open_perp without terms"))?;
        let valid = terms.validate().map_err(|r| reject(r.message))?;
        let AssetRef::Id(token) = valid.position_token else {
            return Err(reject("position_token must be an asset id"));
        };
        let quote = {
            let mut quotes = self.quotes.lock().await;
            if quotes.open.get(&token).is_none_or(|q| q.user != *user) {
                return Err(reject(
                    "no open quote of yours for this position token (ask for a quote)",
                ));
            }
            let quote = quotes
                .open
                .remove(&token)
                .ok_or_else(|| reject("no quote"))?;
            let expired = quote.expires < tokio::time::Instant::now();
            if expired || quote.terms != terms {
                quotes.spare.push(quote.token);
                return Err(reject(if expired {
                    "the quote expired"
                } else {
                    "the intent's terms are not the quoted terms"
                }));
            }
            quote
        };
        // One unit of the token goes to her: the genesis unit the DEX holds,
        // or minted under the DEX's control VTXO for a reused token.
        let mut counter = IntentContent::batch_leg(
            IntentType::AtomicSwap,
            uuid::Uuid::new_v4().simple().to_string(),
            &[(*user, AssetRef::Id(token), 1)],
            &[(*user, valid.margin_asset.clone(), valid.margin)],
            &self.wallet.relay(),
            self.config.fee,
            0,
        );
        if !quote.token.unit_held {
            counter.mint = Some(vec![SupplyChange {
                asset: AssetRef::Id(token),
                ticker: quote.token.ticker.clone(),
                amount: WireAmount::new(1),
            }]);
        }
        counter.expires_at = self.wallet.intent_expiry();
        // The DEX's wallet signs only if the token goes to her at the
        // position script (with the DEX's conditional leaf).
        let mine = self.wallet.sign_position_counter(&counter, &intent).await?;
        let conf = submit_and_wait(
            &self.wallet,
            &intent,
            mine,
            "open_perp",
            self.config.settle_timeout,
        )
        .await?;
        let id = event_id_from_nostr(&intent.id);
        let vtxo = token_vtxo(&conf, user, &token);
        let liq = valid.liquidation_price();
        self.step(Input::Opened(Box::new(Position {
            id,
            user: *user,
            terms: valid,
            ticker: quote.token.ticker.clone(),
            open_perp: intent,
            token_vtxo: vtxo,
            status: Status::Open,
            last_mark: None,
        })))
        .await;
        Ok(serde_json::json!({
            "status": "completed", "ark_txid": conf.ark_txid, "position": id,
            "position_vtxo": vtxo, "liquidation_price": liq,
        }))
    }

    /// Settles a user's close: her token back, her equity out, the token burned.
    async fn close(
        self: &Arc<Self>,
        user: &PubKey,
        position: EventId,
        intent: Event,
    ) -> Result<serde_json::Value, PerpsError> {
        let c =
            signed_intent(&intent, user, IntentType::AtomicSwap).map_err(PerpsError::Rejected)?;
        let (terms, ticker, equity) = {
            let book = self.book.lock().await;
            let p = book
                .position(&position)
                .filter(|p| p.user == *user)
                .ok_or_else(|| reject("no such position of yours"))?;
            if p.status != Status::Open {
                return Err(reject(format!("the position is {:?}", p.status)));
            }
            let price = book
                .mark_price(&p.terms.pair)
                .ok_or_else(|| reject("no price to close at"))?;
            let m = book::mark(&p.terms, price.price);
            (p.terms.clone(), p.ticker.clone(), m.equity)
        };
        let AssetRef::Id(token) = terms.position_token else {
            return Err(reject("position_token must be an asset id"));
        };
        let pays: Vec<_> = c.outputs.iter().filter(|o| o.role.is_none()).collect();
        let returns_token = matches!(pays.as_slice(), [o] if o.recipient == self.me.to_string()
            && o.asset == AssetRef::Id(token)
            && o.amount == WireAmount::new(1));
        if !returns_token {
            return Err(reject("a close pays exactly the position token to the DEX"));
        }
        let wants: Vec<_> = c
            .counterparty_leg
            .iter()
            .flat_map(|l| l.as_slice())
            .collect();
        let [want] = wants.as_slice() else {
            return Err(reject("a close expects one payout of the margin asset"));
        };
        let payout = want
            .amount
            .positive("amount")
            .map_err(|r| reject(r.message))?;
        if want.asset != terms.margin_asset && want.asset != AssetRef::Id(self.config.margin_asset)
        {
            return Err(reject("the payout is in the margin asset"));
        }
        if i128::from(payout) > equity {
            return Err(reject(format!(
                "the position's equity is {equity} at the current mark, the intent asks {payout}"
            )));
        }
        self.step(Input::Closing { id: position }).await;
        let mut counter = IntentContent::batch_leg(
            IntentType::AtomicSwap,
            uuid::Uuid::new_v4().simple().to_string(),
            &[(*user, AssetRef::Id(self.config.margin_asset), payout)],
            &[(*user, AssetRef::Id(token), 1)],
            &self.wallet.relay(),
            self.config.fee,
            0,
        );
        counter.burn = Some(vec![SupplyChange {
            asset: AssetRef::Id(token),
            ticker: ticker.clone(),
            amount: WireAmount::new(1),
        }]);
        let settled = settle_batch(
            &self.wallet,
            &intent,
            counter,
            "close_perp",
            self.config.settle_timeout,
        )
        .await;
        self.step(Input::CloseDone {
            id: position,
            settled: settled.is_ok(),
        })
        .await;
        let conf = settled?;
        self.recycle(token, ticker).await;
        Ok(serde_json::json!({"status": "completed", "ark_txid": conf.ark_txid, "payout": payout}))
    }

    /// The `liquidate` intent of `position` with `price_event` as witness
    /// (see `docs/protocol.md`, "The liquidation intent"): it names the
    /// position VTXO and pays the margin to the insurance fund.
    pub fn liquidation_intent(
        &self,
        position: &Position,
        price_event: &Event,
        action_id: &str,
    ) -> Result<IntentContent, PerpsError> {
        let vtxo = position
            .token_vtxo
            .ok_or_else(|| reject("the position's token VTXO is not known"))?;
        let mut c = IntentContent::batch_leg(
            IntentType::Liquidate,
            action_id,
            &[(
                position.terms.insurance_fund,
                position.terms.margin_asset.clone(),
                position.terms.margin,
            )],
            &[],
            &self.wallet.relay(),
            self.config.fee,
            self.wallet.intent_expiry(),
        );
        c.my_leg = None;
        c.inputs = Some(vec![vtxo]);
        c.witness = Some(Witness::new(&position.open_perp, price_event));
        Ok(c)
    }

    /// Publishes a liquidation of position `id` with `price_event` and waits
    /// for its outcome: the intent's id and the ark txid, or the relay's
    /// refusal. The book is not changed (the runner does that).
    pub async fn liquidate_with(
        &self,
        id: &EventId,
        price_event: &Event,
        action_id: &str,
    ) -> Result<(EventId, String), PerpsError> {
        let position = self
            .book
            .lock()
            .await
            .position(id)
            .cloned()
            .ok_or_else(|| reject("unknown position"))?;
        let content = self.liquidation_intent(&position, price_event, action_id)?;
        let intent = self.wallet.publish_intent(&content).await?;
        let conf = self
            .wallet
            .outcome(intent, self.config.settle_timeout)
            .await?;
        Ok((intent, conf.ark_txid))
    }

    /// Publishes the liquidation and feeds its outcome back to the book
    /// (boxed: the book's effects spawn it, and it steps the book).
    fn liquidate(
        self: Arc<Self>,
        id: EventId,
        price_event: Event,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let action = format!("liq-{}", uuid::Uuid::new_v4().simple());
            match self.liquidate_with(&id, &price_event, &action).await {
                Ok((intent, ark_txid)) => {
                    tracing::info!(position = %id, %ark_txid, "liquidated");
                    let ended = self.book.lock().await.position(&id).and_then(|p| {
                        match p.terms.position_token {
                            AssetRef::Id(t) => Some((t, p.ticker.clone())),
                            AssetRef::Ticker(_) => None,
                        }
                    });
                    if let Some((token, ticker)) = ended {
                        self.recycle(token, ticker).await;
                    }
                    self.step(Input::Liquidated {
                        id,
                        intent,
                        ark_txid,
                    })
                    .await;
                }
                Err(e) => {
                    let code = match &e {
                        PerpsError::Relay(w) => w.code().map(|c| c.code()),
                        _ => None,
                    };
                    tracing::warn!(position = %id, error = %e, "liquidation not settled");
                    self.step(Input::LiquidationRefused { id, code }).await;
                }
            }
        })
    }

    /// Serves requests until `stop` (see [`rpc::serve`]).
    pub async fn serve(
        self: Arc<Self>,
        relays: Vec<String>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), PerpsError> {
        let keys = self.keys.clone();
        Ok(rpc::serve(Arc::new(Service(self)), keys, relays, stop).await?)
    }

    async fn handle(
        self: &Arc<Self>,
        user: &PubKey,
        req: PerpsRequest,
    ) -> Result<serde_json::Value, PerpsError> {
        match req {
            PerpsRequest::Info {} => {
                let book = self.book.lock().await;
                let marks: HashMap<&str, u64> = ["BTC/USD", "ETH/USD"]
                    .into_iter()
                    .filter_map(|p| book.mark_price(p).map(|m| (p, m.price)))
                    .collect();
                Ok(serde_json::json!({
                    "dex": self.me, "oracle": self.config.oracle,
                    "margin_asset": self.config.margin_asset,
                    "maintenance_margin_bps": self.config.maintenance_margin_bps,
                    "max_leverage": self.config.max_leverage,
                    "insurance_fund": self.config.insurance_fund, "marks": marks,
                }))
            }
            PerpsRequest::Quote {
                pair,
                side,
                leverage,
                margin,
            } => self.quote(user, &pair, side, leverage, margin).await,
            PerpsRequest::Open { intent } => self.open(user, intent).await,
            PerpsRequest::Close { position, intent } => self.close(user, position, intent).await,
            PerpsRequest::Positions {} => {
                let book = self.book.lock().await;
                let mine: Vec<serde_json::Value> = book
                    .positions()
                    .filter(|p| p.user == *user)
                    .map(|p| {
                        serde_json::json!({
                            "position": p.id, "pair": p.terms.pair, "side": p.terms.side,
                            "leverage": p.terms.leverage, "margin": p.terms.margin,
                            "entry_price": p.terms.entry_price,
                            "liquidation_price": p.terms.liquidation_price(),
                            "status": status_json(&p.status),
                            "mark": p.last_mark.map(|m| serde_json::json!({
                                "price": m.price, "pnl": m.pnl.to_string(), "equity": m.equity.to_string(),
                            })),
                            "position_vtxo": p.token_vtxo,
                            "position_token": p.terms.position_token,
                            "margin_asset": p.terms.margin_asset,
                        })
                    })
                    .collect();
                Ok(serde_json::json!({ "positions": mine }))
            }
        }
    }
}

/// A position's status on the wire (`{"state": "open"}`, …).
fn status_json(s: &Status) -> serde_json::Value {
    match s {
        Status::Open => serde_json::json!({"state": "open"}),
        Status::Liquidating { price_event } => {
            serde_json::json!({"state": "liquidating", "price_event": price_event})
        }
        Status::Liquidated { intent, ark_txid } => {
            serde_json::json!({"state": "liquidated", "intent": intent, "ark_txid": ark_txid})
        }
        Status::Closing => serde_json::json!({"state": "closing"}),
        Status::Closed => serde_json::json!({"state": "closed"}),
    }
}

struct Service(Arc<Perps>);

#[async_trait::async_trait]
impl rpc::Service for Service {
    type Request = PerpsRequest;

    async fn handle(&self, user: &PubKey, req: PerpsRequest) -> Result<serde_json::Value, String> {
        self.0.handle(user, req).await.map_err(|e| e.to_string())
    }
}

/// The id of the user's nostr key as the relay writes it.
pub fn pubkey_of(keys: &Keys) -> Option<PubKey> {
    pubkey_from_nostr(&keys.public_key())
}
