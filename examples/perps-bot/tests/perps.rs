//! PRD §12 scenarios 6 and 7 end to end: a real websocket Nostr relay, the
//! relay engine on MariaDB with the arkd simulator over gRPC, the oracle
//! publishing medianised BTC/USD and ETH/USD prices over Nostr, the perps bot
//! marking and liquidating, and Alice's reference wallet (which checks her
//! position token's script before signing and never signs the liquidation).

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{ErrorCode, EventId};
use ark_relay_dex_bot::RpcClient;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_oracle::{FixedSource, Oracle, OracleConfig, PriceSource};
use ark_relay_perps_bot::{Effect, Perps, PerpsConfig, PerpsError, PerpsRequest, Status};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType, SigningChallenge};
use ark_relay_protocol::crypto::decrypt;
use ark_relay_protocol::perps::{PerpTerms, Side};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{event_id_from_nostr, kinds};
use ark_relay_wallet::verify::perps::{check_position_vtxo, PositionView};
use ark_relay_wallet::{Wallet, WalletError, WalletOptions};
use common::{pk, until, World};
use nostr::{Event, Keys};
use tokio::sync::{mpsc, watch, Mutex};

const T: Duration = Duration::from_secs(90);
const MARGIN: u64 = 1_000_000;
const FEE: u64 = 10;

struct Market {
    w: World,
    oracle: Oracle,
    source: FixedSource,
    oracle_out: PoolTransport,
    perps: Arc<Perps>,
    dex: Keys,
    fund: Keys,
    alice_keys: Keys,
    alice: Wallet,
    client: RpcClient,
    stop: watch::Sender<bool>,
}

impl Market {
    /// The world, the oracle (three deterministic sources), the perps bot
    /// serving and following the oracle, Alice with gBTC.
    async fn open() -> Market {
        let w = World::start().await;
        let (dex, fund, alice_keys, oracle_keys) = (
            Keys::generate(),
            Keys::generate(),
            Keys::generate(),
            Keys::generate(),
        );
        w.fund(&pk(&dex), Some((w.gbtc, 2_000_000)), 330).await;
        w.fund(&pk(&alice_keys), Some((w.gbtc, 5_000_000)), 330)
            .await;
        let source = FixedSource::new("a")
            .with("BTC/USD", 6_543_210)
            .with("ETH/USD", 350_000);
        let sources: Vec<Arc<dyn PriceSource>> = vec![
            Arc::new(source.clone()),
            Arc::new(source.clone()),
            Arc::new(FixedSource::new("c").with("ETH/USD", 1)),
        ];
        let oracle = Oracle::new(
            oracle_keys.clone(),
            sources,
            OracleConfig {
                min_sources: 2,
                ..OracleConfig::default()
            },
        )
        .expect("oracle");
        let oracle_out = PoolTransport::connect(
            oracle_keys.public_key(),
            PoolOptions::new(vec![w.url.clone()]),
        )
        .await
        .expect("oracle transport");
        let wopts = WalletOptions {
            send_timeout: T,
            ..WalletOptions::default()
        };
        let relay_pk = pk(&w.relay);
        let dex_wallet = Wallet::connect(dex.clone(), relay_pk, vec![w.url.clone()], wopts.clone())
            .await
            .expect("dex wallet");
        let perps = Arc::new(Perps::new(
            dex_wallet,
            dex.clone(),
            PerpsConfig {
                oracle: pk(&oracle_keys),
                margin_asset: w.gbtc,
                maintenance_margin_bps: 50,
                max_leverage: 20,
                max_price_age: 60,
                insurance_fund: pk(&fund),
                fee: FEE,
                quote_ttl: T,
                settle_timeout: T,
            },
        ));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(perps.clone().serve(vec![w.url.clone()], stop_rx.clone()));
        tokio::spawn(perps.clone().follow_oracle(vec![w.url.clone()], stop_rx));
        let alice = Wallet::connect(alice_keys.clone(), relay_pk, vec![w.url.clone()], wopts)
            .await
            .expect("alice wallet");
        let client = RpcClient::connect(alice_keys.clone(), pk(&dex), vec![w.url.clone()])
            .await
            .expect("client");
        Market {
            w,
            oracle,
            source,
            oracle_out,
            perps,
            dex,
            fund,
            alice_keys,
            alice,
            client,
            stop,
        }
    }

    /// One oracle round; waits until the bot's mark of `pair` is `price`.
    async fn publish(&self, pair: &str, price: u64) {
        self.source.set(pair, price);
        let published = self.oracle.tick(&self.oracle_out).await;
        assert_eq!(published.len(), 2, "both pairs published");
        let perps = self.perps.clone();
        until(&format!("the {pair} mark {price}"), T, || {
            let perps = perps.clone();
            async move {
                let book = perps.book().await;
                (book.mark_price(pair).map(|p| p.price) == Some(price)).then_some(())
            }
        })
        .await;
    }

    /// A 10× BTC/USD long of [`MARGIN`].
    async fn open_long(&self, action: &str) -> (EventId, PerpTerms, serde_json::Value) {
        self.open_position(action, "BTC/USD", Side::Long).await
    }

    /// Quote, check the terms in the wallet's view, sign and open (10×, [`MARGIN`]).
    async fn open_position(
        &self,
        action: &str,
        pair: &str,
        side: Side,
    ) -> (EventId, PerpTerms, serde_json::Value) {
        let quote = self
            .client
            .request(
                &PerpsRequest::Quote {
                    pair: pair.into(),
                    side,
                    leverage: 10,
                    margin: MARGIN,
                },
                T,
            )
            .await
            .expect("quote");
        let terms: PerpTerms = serde_json::from_value(quote["terms"].clone()).expect("terms");
        // What Alice's wallet shows before she signs.
        let view = PositionView::new(&terms).expect("valid terms");
        assert_eq!(
            view.liquidation_price,
            quote["liquidation_price"].as_u64().expect("liq")
        );
        assert!(view.lines().iter().any(|l| l.contains("LIQUIDATION")));
        let token = terms.position_token.clone();
        let relay = pk(&self.w.relay);
        let mut c = IntentContent::batch_leg(
            IntentType::OpenPerp,
            action,
            &[(pk(&self.dex), terms.margin_deposit.asset.clone(), MARGIN)],
            &[(pk(&self.dex), token, 1)],
            &relay,
            FEE,
            self.alice.intent_expiry(),
        );
        c.perp = Some(terms.clone());
        let intent = self.alice.sign_batch_intent(&c).await.expect("sign");
        let id = event_id_from_nostr(&intent.id);
        let done = self
            .client
            .request(&PerpsRequest::Open { intent }, T)
            .await
            .expect("open");
        assert_eq!(done["status"], "completed", "{done}");
        (id, terms, done)
    }

    fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.w.stop();
    }
}

/// Every 31511 p-tagged to `keys` from now on (decrypted).
async fn challenges_to(keys: &Keys, url: &str) -> Arc<Mutex<Vec<SigningChallenge>>> {
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![kinds::SIGNING_CHALLENGE];
    let t = PoolTransport::connect(keys.public_key(), opts)
        .await
        .expect("transport");
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let (_keep, cursor) = watch::channel(None);
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let (_keep, _stop) = (_keep, _stop);
        let _ = t.pump(tx, cursor, stop_rx).await;
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (sink, secret) = (seen.clone(), keys.secret_key().clone());
    tokio::spawn(async move {
        let mut ids = std::collections::HashSet::new();
        while let Some(ev) = rx.recv().await {
            if !ids.insert(ev.id) {
                continue;
            }
            if let Ok((plain, _)) = decrypt(&secret, &ev.pubkey, &ev.content, &ev.tags) {
                if let Ok(ch) = serde_json::from_str::<SigningChallenge>(&plain) {
                    sink.lock().await.push(ch);
                }
            }
        }
    });
    seen
}

fn refused(r: Result<(EventId, String), PerpsError>) -> ErrorCode {
    match r {
        Err(PerpsError::Relay(WalletError::Refused { code, .. })) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_6_and_7_oracle_marks_then_alice_is_liquidated_without_signing() {
    let m = Market::open().await;
    let (alice_pk, dex_pk, fund_pk) = (pk(&m.alice_keys), pk(&m.dex), pk(&m.fund));
    let mut effects = m.perps.watch();

    // Scenario 6: BTC/USD and ETH/USD medianised (ETH's outlier source ignored).
    m.publish("BTC/USD", 6_543_210).await;
    let perps = m.perps.clone();
    let eth = until("the ETH/USD mark", T, || {
        let perps = perps.clone();
        async move { perps.book().await.mark_price("ETH/USD").cloned() }
    })
    .await;
    assert_eq!((eth.price, eth.sources.len()), (350_000, 3));

    // A price signed by another key: not delivered by the subscription, and
    // ignored by the book when fed directly.
    let mallory = Oracle::new(
        Keys::generate(),
        vec![Arc::new(FixedSource::new("m").with("BTC/USD", 100))],
        OracleConfig::default(),
    )
    .expect("mallory");
    let forged = mallory
        .sign(
            &mallory
                .observe("BTC/USD", ark_relay_core::UnixTime::now())
                .await
                .expect("obs"),
        )
        .expect("sign");
    m.oracle_out.publish(&forged).await.expect("published");
    m.perps.on_price_event(forged.clone()).await;
    let ignored = until("the forged price ignored", T, || {
        let e = effects.try_recv().ok();
        async move {
            match e {
                Some(Effect::Ignored { event, reason })
                    if event == event_id_from_nostr(&forged.id) =>
                {
                    Some(reason)
                }
                _ => None,
            }
        }
    })
    .await;
    assert!(ignored.contains("oracle"), "{ignored}");

    // Scenario 7: Alice opens a 10× long at the mark.
    let alice_challenges = challenges_to(&m.alice_keys, &m.w.url).await;
    let (position, terms, done) = m.open_long("perp-1").await;
    let liq_price = done["liquidation_price"].as_u64().expect("liq");
    assert_eq!(liq_price, 5_921_605, "10× long at 65 432.10, 50 bps");
    let AssetRef::Id(token) = terms.position_token.clone() else {
        panic!("token id")
    };
    assert_eq!(m.w.balance(&alice_pk, &token).await, 1);
    // The token is an Arkade asset the DEX issued with the quote: its one
    // unit is now hers; the DEX keeps only the control asset.
    assert_eq!(m.w.balance(&dex_pk, &token).await, 0);
    let control = ark_relay_ark::asset::control_ledger_id(&token);
    assert_eq!(m.w.balance(&dex_pk, &control).await, 1);
    let at_arkd = m.w.asset_at_arkd(&token).await;
    assert_eq!(at_arkd.supply, 1, "arkd: the position is the whole supply");
    assert_eq!(
        at_arkd.control_asset,
        Some(ark_relay_ark::asset::control_arkade_id(&token).to_string())
    );
    assert_eq!(
        m.w.balance(&alice_pk, &m.w.gbtc).await,
        5_000_000 - MARGIN - FEE
    );
    assert_eq!(
        m.w.balance(&dex_pk, &m.w.gbtc).await,
        2_000_000 + MARGIN - FEE
    );
    // Her wallet checks the token's script: exactly the implied conditional leaf.
    let params = m.alice.params().await.expect("params");
    let vtxos = m.alice.sync().await.expect("sync");
    let held = vtxos
        .iter()
        .find(|v| v.asset_id == Some(token))
        .expect("position token VTXO");
    let valid = terms.validate().expect("terms");
    check_position_vtxo(
        held,
        &alice_pk,
        &valid,
        &pk(&m.w.relay),
        &params.server,
        position,
    )
    .expect("the position's script is the one the terms imply");

    // The bot marks her position; a small dip does not liquidate.
    m.publish("BTC/USD", 6_000_000).await;
    let p = m
        .perps
        .book()
        .await
        .position(&position)
        .cloned()
        .expect("p");
    assert_eq!(p.status, Status::Open);
    assert!(p.last_mark.is_some_and(|mk| mk.pnl < 0));

    // An ETH/USD short is marked on ETH/USD prices (the BTC long is not).
    let (eth_short, _, _) = m.open_position("perp-eth", "ETH/USD", Side::Short).await;
    m.publish("ETH/USD", 340_000).await;
    let book = m.perps.book().await;
    let short = book.position(&eth_short).cloned().expect("short");
    assert_eq!(short.status, Status::Open);
    assert!(short
        .last_mark
        .is_some_and(|mk| mk.price == 340_000 && mk.pnl > 0));
    assert_eq!(
        book.position(&position)
            .and_then(|p| p.last_mark)
            .map(|mk| mk.price),
        Some(6_000_000)
    );

    // Refusals through the bot's own liquidation path, each with its code,
    // nothing moved: a stale price, a price by another oracle key.
    let stale = {
        let mut c = m
            .oracle
            .observe(
                "BTC/USD",
                ark_relay_core::UnixTime(ark_relay_core::UnixTime::now().0 - 3_600),
            )
            .await
            .expect("obs");
        c.price = ark_relay_protocol::content::WireAmount::new(5_000_000);
        m.oracle.sign(&c).expect("sign")
    };
    assert_eq!(
        refused(m.perps.liquidate_with(&position, &stale, "liq-stale").await),
        ErrorCode::StalePrice
    );
    let other_oracle = {
        let o = Oracle::new(
            Keys::generate(),
            vec![Arc::new(FixedSource::new("x").with("BTC/USD", 5_000_000))],
            OracleConfig::default(),
        )
        .expect("o");
        let c = o
            .observe("BTC/USD", ark_relay_core::UnixTime::now())
            .await
            .expect("obs");
        o.sign(&c).expect("sign")
    };
    assert_eq!(
        refused(
            m.perps
                .liquidate_with(&position, &other_oracle, "liq-other")
                .await
        ),
        ErrorCode::WrongOracle
    );
    assert_eq!(m.w.balance(&alice_pk, &token).await, 1, "nothing moved");
    assert_eq!(m.w.balance(&fund_pk, &m.w.gbtc).await, 0, "nothing paid");

    // The price falls below her liquidation price: the bot liquidates.
    m.publish("BTC/USD", 5_800_000).await;
    let perps = m.perps.clone();
    let (liq_intent, _txid) = until("the liquidation settled", T, || {
        let perps = perps.clone();
        async move {
            match perps
                .book()
                .await
                .position(&position)
                .map(|p| p.status.clone())
            {
                Some(Status::Liquidated { intent, ark_txid }) => Some((intent, ark_txid)),
                _ => None,
            }
        }
    })
    .await;
    // Alice's wallet sees her position token spent in the liquidation's 31340.
    let conf = m
        .alice
        .outcome(liq_intent, T)
        .await
        .expect("31340 seen by Alice");
    assert!(conf
        .spent
        .iter()
        .any(|v| v.owner == alice_pk && v.vtxo == held.vtxo));
    assert_eq!(m.w.balance(&alice_pk, &token).await, 0, "token burned");
    assert_eq!(m.w.asset_at_arkd(&token).await.supply, 0, "burned at arkd");
    assert_eq!(
        m.w.balance(&alice_pk, &m.w.gbtc).await,
        5_000_000 - 2 * (MARGIN + FEE),
        "her gBTC untouched (two margins paid)"
    );
    assert_eq!(
        m.w.balance(&fund_pk, &m.w.gbtc).await,
        MARGIN,
        "margin to the fund"
    );
    assert!(
        m.alice
            .balance()
            .await
            .expect("b")
            .amount(&token.to_string())
            == 0
    );
    // She never signed it: every challenge she got was for her open_perps.
    for ch in alice_challenges.lock().await.iter() {
        let session = ch.session_id.to_string();
        assert!(
            session == position.to_string() || session == eth_short.to_string(),
            "Alice is only asked about her own open_perps"
        );
    }
    assert_eq!(
        m.perps
            .book()
            .await
            .position(&eth_short)
            .map(|p| p.status.clone()),
        Some(Status::Open),
        "the ETH short stays open"
    );
    assert!(
        !alice_challenges.lock().await.is_empty(),
        "she signed the opening"
    );

    // The same liquidation again: 8006, nothing moves twice.
    let again = m
        .perps
        .liquidate_with(&position, &stale_free_low(&m).await, "liq-again")
        .await;
    assert_eq!(refused(again), ErrorCode::AlreadyLiquidated);
    assert_eq!(m.w.balance(&fund_pk, &m.w.gbtc).await, MARGIN);
    m.w.assert_reconciled().await;

    m.client.shutdown().await;
    m.shutdown();
}

/// A fresh oracle price below every threshold of the tests.
async fn stale_free_low(m: &Market) -> Event {
    let mut c = m
        .oracle
        .observe("BTC/USD", ark_relay_core::UnixTime::now())
        .await
        .expect("obs");
    c.price = ark_relay_protocol::content::WireAmount::new(5_000_000);
    m.oracle.sign(&c).expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alice_closes_her_position_herself_before_liquidation() {
    let m = Market::open().await;
    let (alice_pk, dex_pk) = (pk(&m.alice_keys), pk(&m.dex));
    m.publish("BTC/USD", 6_543_210).await;
    // A quote she does not take passes its token on to her next quote (one
    // genesis on Ark, not one per quote).
    let first = m
        .client
        .request(
            &PerpsRequest::Quote {
                pair: "BTC/USD".into(),
                side: Side::Short,
                leverage: 2,
                margin: MARGIN,
            },
            T,
        )
        .await
        .expect("quote");
    let (position, terms, _) = m.open_long("perp-close").await;
    let AssetRef::Id(token) = terms.position_token.clone() else {
        panic!("token id")
    };
    assert_eq!(
        first["position_token"],
        serde_json::json!(token),
        "the unopened quote's token is reused"
    );
    // The price rises 1 %: her equity is the margin plus about 10 %.
    m.publish("BTC/USD", 6_608_642).await;
    let mine = m
        .client
        .request(&PerpsRequest::Positions {}, T)
        .await
        .expect("positions");
    let equity: u64 = mine["positions"][0]["mark"]["equity"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("equity");
    assert!(equity > MARGIN && equity < MARGIN * 111 / 100, "{equity}");
    let before = m.w.balance(&alice_pk, &m.w.gbtc).await;
    // A greedy close is refused by the DEX.
    let close = |action: &str, payout: u64| {
        IntentContent::batch_leg(
            IntentType::AtomicSwap,
            action,
            &[(dex_pk, AssetRef::Id(token), 1)],
            &[(dex_pk, AssetRef::Id(m.w.gbtc), payout)],
            &pk(&m.w.relay),
            FEE,
            m.alice.intent_expiry(),
        )
    };
    let greedy = m
        .alice
        .sign_batch_intent(&close("close-greedy", equity + 1))
        .await
        .expect("sign");
    let err = m
        .client
        .request(
            &PerpsRequest::Close {
                position,
                intent: greedy,
            },
            T,
        )
        .await
        .expect_err("greedy");
    assert!(err.contains("equity"), "{err}");
    let intent = m
        .alice
        .sign_batch_intent(&close("close-1", equity))
        .await
        .expect("sign");
    let done = m
        .client
        .request(&PerpsRequest::Close { position, intent }, T)
        .await
        .expect("close");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        m.w.balance(&alice_pk, &token).await,
        0,
        "token returned and burned"
    );
    assert_eq!(m.w.balance(&dex_pk, &token).await, 0, "burned by the DEX");
    assert_eq!(m.w.asset_at_arkd(&token).await.supply, 0, "burned at arkd");
    assert_eq!(
        m.w.balance(&alice_pk, &m.w.gbtc).await,
        before + equity - FEE
    );
    let p = m
        .perps
        .book()
        .await
        .position(&position)
        .cloned()
        .expect("p");
    assert_eq!(p.status, Status::Closed);
    // A later crash of the price liquidates nothing.
    m.publish("BTC/USD", 5_000_000).await;
    assert_eq!(
        m.perps
            .book()
            .await
            .position(&position)
            .map(|p| p.status.clone()),
        Some(Status::Closed)
    );
    // The next position reuses the ended one's token: minted under the
    // DEX's control VTXO (spent and re-created), no new genesis.
    m.publish("BTC/USD", 6_543_210).await;
    let (next, terms, _) = m.open_long("perp-next").await;
    assert_ne!(next, position);
    assert_eq!(terms.position_token, AssetRef::Id(token), "token reused");
    assert_eq!(m.w.balance(&alice_pk, &token).await, 1);
    assert_eq!(m.w.asset_at_arkd(&token).await.supply, 1, "minted at arkd");
    let control = ark_relay_ark::asset::control_ledger_id(&token);
    assert_eq!(m.w.balance(&dex_pk, &control).await, 1, "control kept");
    // A quote never opened: a restarted bot finds its token (the genesis
    // unit and the control it holds) and quotes with it again.
    let unopened = m
        .client
        .request(
            &PerpsRequest::Quote {
                pair: "BTC/USD".into(),
                side: Side::Long,
                leverage: 3,
                margin: MARGIN,
            },
            T,
        )
        .await
        .expect("quote");
    let fresh: ark_relay_core::AssetId = unopened["position_token"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("token id");
    assert_ne!(
        fresh, token,
        "a new genesis: the only spare token is in use"
    );
    assert_eq!(m.w.balance(&dex_pk, &fresh).await, 1, "the genesis unit");
    let restarted = Perps::new(
        Wallet::connect(
            m.dex.clone(),
            pk(&m.w.relay),
            vec![m.w.url.clone()],
            WalletOptions::default(),
        )
        .await
        .expect("wallet"),
        m.dex.clone(),
        m.perps.config().clone(),
    );
    assert_eq!(restarted.recover_tokens().await.expect("recover"), 1);
    assert_eq!(restarted.recover_tokens().await.expect("again"), 0);
    m.w.assert_reconciled().await;
    m.client.shutdown().await;
    m.shutdown();
}
