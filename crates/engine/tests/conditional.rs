//! Conditional co-signing end to end (issue 17, PRD §12 scenario 7): over a
//! real websocket Nostr relay, the arkd simulator over gRPC and MariaDB,
//! Alice opens a 10× long with the DEX in an atomic batch (her position token
//! is locked with the conditional tree committed to her `open_perp`); the
//! price falls; the DEX liquidates with the witness while Alice is offline
//! (she signs nothing); every bad liquidation is refused with its code and
//! moves nothing; the same position cannot be liquidated twice.
//!
//! The position token is an Arkade asset the DEX key issued with
//! `issue_asset` (as the perps bot does): the open_perp batch pays Alice its
//! one genesis unit (nothing minted; the DEX keeps the control VTXO) and the
//! liquidation burns it. The arkd simulator applies arkd's strict asset rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::conditional::PositionScript;
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, DynStore, ErrorCode, PubKey, UnixTime, VtxoId,
};
use ark_relay_engine::ceremony::{CrashHook, CrashPoint};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_protocol::content::{
    AssetRef, Confirmation, IntentContent, IntentType, SigningChallenge, SupplyChange, WireAmount,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::perps::{
    price_event_builder, LiquidationOracle, MarginDeposit, OraclePriceContent, PerpTerms,
    PositionDetails, Side, Witness,
};
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{builders, event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_sim::arkd::ArkdSim;
use ark_relay_store::testing::TestDb;
use nostr::{Event, Keys};

use common::{answers, spawn_signer, Wallet};

const OUTCOME: Duration = Duration::from_secs(60);
const MARGIN: u64 = 1_000_000;
const FEE: u64 = 10;

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("key")
}

fn now() -> i64 {
    UnixTime::now().0
}

struct World {
    store: DynStore,
    sim: ArkdSim,
    server: ServerInfo,
    relay: Keys,
    gbtc: AssetId,
    alice: Keys,
    dex: Keys,
    oracle: Keys,
    fund: Keys,
    token: AssetId,
    nostr_url: String,
    arkd_url: String,
    db: TestDb,
    _nostr: ark_relay_nostr::DevRelay,
    _sim_server: ark_relay_sim::arkd::SimServer,
    engine: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
}

impl World {
    async fn start(db: TestDb) -> World {
        Self::start_with(db, None).await
    }

    /// A relay process on the shared store, Nostr relay and arkd.
    async fn relay_process(
        store: &DynStore,
        relay: &Keys,
        server: &ServerInfo,
        nostr_url: &str,
        arkd_url: &str,
        crash: Option<CrashHook>,
    ) -> (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        common::start_ceremony(
            store,
            relay,
            server,
            nostr_url,
            arkd_url,
            None,
            crash,
            Arc::new(ark_relay_queue::MemoryQueue::new(Default::default())),
        )
        .await
    }

    /// Kills the relay process and starts a fresh one (no crash hook).
    async fn restart(&mut self) {
        let _ = self.engine.0.send(true);
        let _ = (&mut self.engine.1).await;
        self.engine = Self::relay_process(
            &self.store,
            &self.relay,
            &self.server,
            &self.nostr_url,
            &self.arkd_url,
            None,
        )
        .await;
    }

    async fn start_with(db: TestDb, crash: Option<CrashHook>) -> World {
        let common::Parts {
            db,
            store,
            nostr,
            sim,
            sim_server,
            server,
            relay_keys: relay,
            ..
        } = common::parts(db, 8).await;
        let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
        let engine = Self::relay_process(
            &store,
            &relay,
            &server,
            nostr.url(),
            &sim_server.url(),
            crash,
        )
        .await;
        // The DEX issues the position token on Ark: it holds the token's one
        // unit (what the open_perp batch pays Alice) and its control VTXO.
        let dex = Keys::generate();
        let issuing = Wallet::connect_as(nostr.url(), dex.clone()).await;
        let token = common::issue_asset(&issuing, &pk(&relay), "PERP1").await;
        issuing.stop();
        World {
            store,
            sim,
            server,
            relay,
            gbtc,
            alice: Keys::generate(),
            dex,
            oracle: Keys::generate(),
            fund: Keys::generate(),
            token,
            nostr_url: nostr.url().to_owned(),
            arkd_url: sim_server.url(),
            db,
            _nostr: nostr,
            _sim_server: sim_server,
            engine,
        }
    }

    async fn fund_gbtc(&self, owner: &PubKey, amount: u64) {
        common::fund(&self.store, &self.sim, owner, self.gbtc, amount).await;
    }

    async fn balance(&self, who: &PubKey, asset: &AssetId) -> u64 {
        let b = self.store.balances(who).await.expect("balances");
        b.assets.get(asset).map(|a| a.get()).unwrap_or(0)
    }

    /// The position token's supply as arkd's indexer knows it (`GetAsset`).
    async fn supply_at_arkd(&self) -> u64 {
        let ark = ArkdClient::connect(self.arkd_url.clone())
            .await
            .expect("arkd client");
        let id = ark_relay_ark::asset::arkade_id(&self.token).to_string();
        ark.get_asset(&id).await.expect("GetAsset").supply
    }

    fn terms(&self) -> PerpTerms {
        PerpTerms {
            margin_deposit: MarginDeposit {
                asset: AssetRef::gbtc(),
                amount: WireAmount::new(MARGIN),
            },
            position_details: PositionDetails {
                side: Side::Long,
                leverage: 10,
                entry_price: WireAmount::new(6_543_210),
            },
            liquidation_oracle: LiquidationOracle {
                pubkey: pk(&self.oracle),
                pair: "BTC/USD".into(),
                decimals: 2,
            },
            maintenance_margin_bps: 50,
            dex: pk(&self.dex),
            insurance_fund: pk(&self.fund),
            position_token: AssetRef::Id(self.token),
        }
    }

    /// Alice's signed `open_perp` (`action` makes it another event).
    fn open_perp(&self, action: &str) -> Event {
        let relay = pk(&self.relay);
        let mut c = IntentContent::batch_leg(
            IntentType::OpenPerp,
            action,
            &[(pk(&self.dex), AssetRef::gbtc(), MARGIN)],
            &[(pk(&self.dex), AssetRef::Id(self.token), 1)],
            &relay,
            FEE,
            now() + 3_600,
        );
        c.perp = Some(self.terms());
        builders::intent(&self.alice, &relay, &c).expect("open_perp")
    }

    /// A price event signed by `signer`, `age` seconds old.
    fn price(&self, signer: &Keys, price: u64, age: i64) -> Event {
        price_event_builder(&OraclePriceContent {
            v: 1,
            pair: "BTC/USD".into(),
            price: WireAmount::new(price),
            decimals: 2,
            timestamp: now() - age,
            sources: vec!["binance".into(), "coinbase".into(), "kraken".into()],
        })
        .expect("price")
        .sign_with_keys(signer)
        .expect("sign")
    }

    /// A `liquidate` intent by `author` paying `payout` to `to`.
    fn liquidate(
        &self,
        author: &Keys,
        action: &str,
        position: VtxoId,
        witness: Witness,
        to: &PubKey,
        payout: u64,
    ) -> Event {
        let relay = pk(&self.relay);
        let mut c = IntentContent::transfer(
            action,
            to,
            AssetRef::gbtc(),
            payout,
            &relay,
            FEE,
            now() + 3_600,
        );
        c.intent_type = IntentType::Liquidate.as_str().into();
        c.inputs = Some(vec![position]);
        c.witness = Some(witness);
        builders::intent(author, &relay, &c).expect("liquidate")
    }
}

/// The code of the 31341 answering `intent` (waits for it).
async fn refusal(w: &Wallet, intent: &Event) -> ErrorCode {
    w.wait_answer("the 31341", kinds::FAILURE, &intent.id, OUTCOME)
        .await;
    let f = w.failures().await;
    f.get(&intent.id)
        .and_then(|n| n.first())
        .map(|n| n.code)
        .expect("notice")
}

/// The 31340 answering `intent`, from `w`'s view (waits for it).
async fn confirmation(w: &Wallet, intent: &Event) -> Confirmation {
    w.wait_answer("the 31340", kinds::CONFIRMATION, &intent.id, OUTCOME)
        .await;
    let ev = w
        .received()
        .await
        .into_iter()
        .find(|e| answers(e, kinds::CONFIRMATION, &intent.id))
        .expect("31340");
    serde_json::from_str(&ev.content).expect("confirmation")
}

/// Alice's `open_perp` and the DEX's counter-intent paying her the token's
/// genesis unit, in one batch the DEX submits; returns her `open_perp` and
/// her position VTXO.
async fn open_position(w: &World, alice: &Wallet, dex: &Wallet) -> (Event, VtxoId) {
    open_position_in(w, alice, dex, 1, false).await
}

/// [`open_position`] as the `round`th opening; with `mint` the DEX mints the
/// token's unit under its control VTXO (the token is reused once its last
/// position ended, supply 0) instead of paying the genesis unit.
async fn open_position_in(
    w: &World,
    alice: &Wallet,
    dex: &Wallet,
    round: u32,
    mint: bool,
) -> (Event, VtxoId) {
    let (alice_pk, relay_pk) = (pk(&w.alice), pk(&w.relay));
    let open = w.open_perp(&format!("perp-{round}"));
    let mut counter = IntentContent::batch_leg(
        IntentType::AtomicSwap,
        format!("perp-d{round}"),
        &[(alice_pk, AssetRef::Id(w.token), 1)],
        &[(alice_pk, AssetRef::gbtc(), MARGIN)],
        &relay_pk,
        FEE,
        now() + 3_600,
    );
    if mint {
        counter.mint = Some(vec![SupplyChange {
            asset: AssetRef::Id(w.token),
            ticker: "PERP1".into(),
            amount: WireAmount::new(1),
        }]);
    }
    let counter = builders::intent(&w.dex, &relay_pk, &counter).expect("counter");
    let batch = format!("open-{round}");
    let submit = builders::service_request(
        &w.dex,
        &relay_pk,
        &ServiceRequest::SubmitBatch {
            batch_id: batch.clone(),
            intents: vec![open.clone(), counter.clone()],
        },
        &batch,
        Scheme::Nip44,
    )
    .expect("submit");
    dex.publish(&submit).await;
    let opened = confirmation(alice, &open).await;
    let position = opened
        .created
        .iter()
        .find(|v| v.owner == alice_pk && v.asset == Some(AssetRef::Id(w.token)))
        .expect("Alice's position token")
        .vtxo;
    (open, position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_then_liquidate_with_the_witness_while_alice_is_offline() {
    let w = World::start(TestDb::mariadb().await.expect("MariaDB")).await;
    let (alice_pk, dex_pk, fund_pk) = (pk(&w.alice), pk(&w.dex), pk(&w.fund));
    let relay_pk = pk(&w.relay);
    w.fund_gbtc(&alice_pk, 5_000_000).await;
    w.fund_gbtc(&dex_pk, 2_000_000).await;
    let alice = Arc::new(Wallet::connect_as(&w.nostr_url, w.alice.clone()).await);
    let dex = Arc::new(Wallet::connect_as(&w.nostr_url, w.dex.clone()).await);
    spawn_signer(alice.clone(), relay_pk);
    spawn_signer(dex.clone(), relay_pk);

    let (open, position) = open_position(&w, &alice, &dex).await;

    // The ledger and arkd hold the position under the conditional tree.
    let expected = PositionScript {
        user: *alice_pk.x_only(),
        dex: *dex_pk.x_only(),
        relay: *relay_pk.x_only(),
        server: *w.server.signer(),
        exit_delay: w.server.unilateral_exit_delay(),
        open_perp: event_id_from_nostr(&open.id),
    }
    .vtxo_script()
    .expect("script");
    let row = w
        .store
        .vtxo(&position)
        .await
        .expect("read")
        .expect("ledger");
    assert_eq!(
        row.tapscripts,
        expected.to_tapscripts(),
        "conditional tree recorded"
    );
    let at_arkd = w.sim.vtxo(&position.outpoint()).expect("at arkd");
    assert_eq!(at_arkd.amount, row.sats.get());
    assert_eq!(w.balance(&alice_pk, &w.token).await, 1);
    assert_eq!(
        w.balance(&dex_pk, &w.token).await,
        0,
        "the genesis unit paid"
    );
    let control = ark_relay_ark::asset::control_ledger_id(&w.token);
    assert_eq!(
        w.balance(&dex_pk, &control).await,
        1,
        "the DEX keeps control"
    );
    assert_eq!(w.supply_at_arkd().await, 1, "arkd: nothing minted");
    assert_eq!(
        w.balance(&alice_pk, &w.gbtc).await,
        5_000_000 - MARGIN - FEE
    );
    assert_eq!(w.balance(&dex_pk, &w.gbtc).await, 2_000_000 + MARGIN - FEE);

    // Alice goes offline: from now on nothing of hers answers.
    alice.stop();

    let witness = |price: &Event| Witness::new(&open, price);
    let low = w.price(&w.oracle, 5_800_000, 5);

    // Each refusal with its code; nothing moves.
    let forged = {
        let mut wit = witness(&low);
        let edited = wit.open_perp["content"]
            .as_str()
            .expect("content")
            .replace("\"leverage\":10", "\"leverage\":50");
        wit.open_perp["content"] = edited.into();
        wit
    };
    let other_position = Witness::new(&w.open_perp("perp-2"), &low);
    let refusals: Vec<(&str, Event, ErrorCode)> = vec![
        (
            "stale price",
            w.liquidate(
                &w.dex,
                "liq-stale",
                position,
                witness(&w.price(&w.oracle, 5_800_000, 3_600)),
                &fund_pk,
                MARGIN,
            ),
            ErrorCode::StalePrice,
        ),
        (
            "price not beyond the threshold",
            w.liquidate(
                &w.dex,
                "liq-high",
                position,
                witness(&w.price(&w.oracle, 6_000_000, 5)),
                &fund_pk,
                MARGIN,
            ),
            ErrorCode::PriceNotBeyondThreshold,
        ),
        (
            "wrong oracle",
            w.liquidate(
                &w.dex,
                "liq-oracle",
                position,
                witness(&w.price(&Keys::generate(), 5_800_000, 5)),
                &fund_pk,
                MARGIN,
            ),
            ErrorCode::WrongOracle,
        ),
        (
            "witness from another position",
            w.liquidate(
                &w.dex,
                "liq-other",
                position,
                other_position,
                &fund_pk,
                MARGIN,
            ),
            ErrorCode::WitnessMismatch,
        ),
        (
            "forged open_perp",
            w.liquidate(&w.dex, "liq-forged", position, forged, &fund_pk, MARGIN),
            ErrorCode::InvalidWitnessSignature,
        ),
        (
            "margin paid elsewhere",
            w.liquidate(
                &w.dex,
                "liq-elsewhere",
                position,
                witness(&low),
                &dex_pk,
                MARGIN,
            ),
            ErrorCode::LiquidationPayoutMismatch,
        ),
        (
            "not the DEX",
            w.liquidate(
                &w.fund,
                "liq-fund",
                position,
                witness(&low),
                &fund_pk,
                MARGIN,
            ),
            ErrorCode::NotTheDex,
        ),
    ];
    for (_, ev, _) in &refusals {
        dex.publish(ev).await;
    }
    let fund_wallet = Wallet::connect_as(&w.nostr_url, w.fund.clone()).await;
    for (what, ev, code) in &refusals {
        let got = if ev.pubkey == w.fund.public_key() {
            refusal(&fund_wallet, ev).await
        } else {
            refusal(&dex, ev).await
        };
        assert_eq!(got, *code, "{what}");
    }
    assert_eq!(
        w.balance(&alice_pk, &w.token).await,
        1,
        "the position did not move"
    );
    assert_eq!(w.balance(&fund_pk, &w.gbtc).await, 0, "nothing paid");
    assert_eq!(w.balance(&dex_pk, &w.gbtc).await, 2_000_000 + MARGIN - FEE);
    let row = w.store.vtxo(&position).await.expect("read").expect("row");
    assert!(
        row.status.is_spendable() && row.locked_by.is_none(),
        "nothing locked"
    );

    // The valid liquidation: the DEX signs, the relay co-signs, Alice does not.
    let liq = w.liquidate(&w.dex, "liq-1", position, witness(&low), &fund_pk, MARGIN);
    dex.publish(&liq).await;
    let done = confirmation(&dex, &liq).await;
    assert!(
        done.spent
            .iter()
            .any(|v| v.vtxo == position && v.owner == alice_pk),
        "the position is spent"
    );
    assert_eq!(w.balance(&alice_pk, &w.token).await, 0, "token burned");
    assert_eq!(
        w.balance(&fund_pk, &w.gbtc).await,
        MARGIN,
        "margin to the insurance fund"
    );
    assert_eq!(w.balance(&dex_pk, &w.gbtc).await, 2_000_000 - 2 * FEE);
    assert_eq!(
        w.balance(&alice_pk, &w.gbtc).await,
        5_000_000 - MARGIN - FEE
    );
    let token = w
        .store
        .asset(&w.token)
        .await
        .expect("asset")
        .expect("known");
    assert_eq!(
        token.total_supply,
        AssetAmount::new(0),
        "no position token left"
    );
    assert_eq!(w.supply_at_arkd().await, 0, "burned at arkd");
    let row = w.store.vtxo(&position).await.expect("read").expect("row");
    assert!(!row.status.is_spendable(), "spent in the ledger");
    // The 31340 p-tags Alice (her VTXO is spent) and she never got a
    // challenge for it.
    let confs = dex.received().await;
    let conf = confs
        .iter()
        .find(|e| answers(e, kinds::CONFIRMATION, &liq.id))
        .expect("31340");
    assert!(conf.tags.public_keys().any(|p| *p == w.alice.public_key()));
    for ev in alice.received().await {
        if ev.kind.as_u16() != kinds::SIGNING_CHALLENGE {
            continue;
        }
        let (plain, _) =
            decrypt(w.alice.secret_key(), &ev.pubkey, &ev.content, &ev.tags).expect("decrypt");
        let ch: SigningChallenge = serde_json::from_str(&plain).expect("challenge");
        assert_eq!(
            ch.session_id.to_string(),
            open.id.to_hex(),
            "Alice is only ever asked about her own open_perp"
        );
    }

    // The same position again: 8006, nothing moves twice.
    let again = w.liquidate(&w.dex, "liq-2", position, witness(&low), &fund_pk, MARGIN);
    dex.publish(&again).await;
    assert_eq!(refusal(&dex, &again).await, ErrorCode::AlreadyLiquidated);
    assert_eq!(w.balance(&fund_pk, &w.gbtc).await, MARGIN);
    assert_eq!(w.balance(&dex_pk, &w.gbtc).await, 2_000_000 - 2 * FEE);

    // The token is reused for Alice's next position: its supply is 0, so the
    // DEX mints its unit under the control VTXO (spent and re-created).
    let alice = Arc::new(Wallet::connect_as(&w.nostr_url, w.alice.clone()).await);
    spawn_signer(alice.clone(), relay_pk);
    let (_, next) = open_position_in(&w, &alice, &dex, 3, true).await;
    assert_ne!(next, position);
    assert_eq!(w.balance(&alice_pk, &w.token).await, 1, "minted to Alice");
    assert_eq!(w.supply_at_arkd().await, 1, "reissued at arkd");
    assert_eq!(w.balance(&dex_pk, &control).await, 1, "control kept");
    // The ledger (scripts, colour, burned token) agrees with arkd's indexer.
    common::assert_reconciled(&w.db.store, &w.arkd_url).await;
}

/// Before any liquidation Alice closes her position herself (her
/// collaborative leaf: she returns the token to the DEX without the relay's
/// co-signer); a liquidation afterwards finds it spent (8006). SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alice_closes_her_position_herself_before_liquidation() {
    let w = World::start(TestDb::sqlite().await.expect("SQLite")).await;
    let (alice_pk, dex_pk, fund_pk) = (pk(&w.alice), pk(&w.dex), pk(&w.fund));
    let relay_pk = pk(&w.relay);
    w.fund_gbtc(&alice_pk, 5_000_000).await;
    w.fund_gbtc(&dex_pk, 2_000_000).await;
    let alice = Arc::new(Wallet::connect_as(&w.nostr_url, w.alice.clone()).await);
    let dex = Arc::new(Wallet::connect_as(&w.nostr_url, w.dex.clone()).await);
    spawn_signer(alice.clone(), relay_pk);
    spawn_signer(dex.clone(), relay_pk);
    let (open, position) = open_position(&w, &alice, &dex).await;

    let close = IntentContent::transfer(
        "close-1",
        &dex_pk,
        AssetRef::Id(w.token),
        1,
        &relay_pk,
        FEE,
        now() + 3_600,
    );
    let close = builders::intent(&w.alice, &relay_pk, &close).expect("close");
    alice.publish(&close).await;
    let closed = confirmation(&alice, &close).await;
    assert!(
        closed.spent.iter().any(|v| v.vtxo == position),
        "spent by Alice"
    );
    assert_eq!(w.balance(&alice_pk, &w.token).await, 0);
    assert_eq!(w.balance(&dex_pk, &w.token).await, 1);
    assert_eq!(w.supply_at_arkd().await, 1, "returned, not burned");

    let low = w.price(&w.oracle, 5_800_000, 5);
    let liq = w.liquidate(
        &w.dex,
        "liq-late",
        position,
        Witness::new(&open, &low),
        &fund_pk,
        MARGIN,
    );
    dex.publish(&liq).await;
    assert_eq!(refusal(&dex, &liq).await, ErrorCode::AlreadyLiquidated);
    assert_eq!(w.balance(&fund_pk, &w.gbtc).await, 0, "nothing paid");
    common::assert_reconciled(&w.db.store, &w.arkd_url).await;
}

/// A relay killed at any step of a liquidation (after locking, after the
/// challenge, after `SubmitTx`, after `FinalizeTx`, before the 31340) and
/// restarted completes it exactly once: margin paid once, token burned once,
/// ledger = arkd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_at_any_step_of_a_liquidation_completes_it_once() {
    for point in [
        CrashPoint::AfterLock,
        CrashPoint::AfterChallenge,
        CrashPoint::AfterSubmit,
        CrashPoint::AfterFinalize,
        CrashPoint::BeforeConfirmation,
    ] {
        liquidation_killed_at(point).await;
    }
}

async fn liquidation_killed_at(point: CrashPoint) {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Armed only once the position is open: the crash hits the liquidation.
    let armed = Arc::new(AtomicBool::new(false));
    let crashed = Arc::new(AtomicBool::new(false));
    let (a, c) = (armed.clone(), crashed.clone());
    let hook: CrashHook = Arc::new(move |p| {
        p == point && a.load(Ordering::SeqCst) && !c.swap(true, Ordering::SeqCst)
    });
    let mut w = World::start_with(TestDb::mariadb().await.expect("MariaDB"), Some(hook)).await;
    let (alice_pk, dex_pk, fund_pk) = (pk(&w.alice), pk(&w.dex), pk(&w.fund));
    let relay_pk = pk(&w.relay);
    w.fund_gbtc(&alice_pk, 5_000_000).await;
    w.fund_gbtc(&dex_pk, 2_000_000).await;
    let alice = Arc::new(Wallet::connect_as(&w.nostr_url, w.alice.clone()).await);
    let dex = Arc::new(Wallet::connect_as(&w.nostr_url, w.dex.clone()).await);
    spawn_signer(alice.clone(), relay_pk);
    spawn_signer(dex.clone(), relay_pk);
    let (open, position) = open_position(&w, &alice, &dex).await;
    alice.stop();
    armed.store(true, Ordering::SeqCst);

    let low = w.price(&w.oracle, 5_800_000, 5);
    let liq = w.liquidate(
        &w.dex,
        "liq-crash",
        position,
        Witness::new(&open, &low),
        &fund_pk,
        MARGIN,
    );
    dex.publish(&liq).await;
    let deadline = tokio::time::Instant::now() + OUTCOME;
    while !crashed.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{point:?}: never crashed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.restart().await;
    let done = confirmation(&dex, &liq).await;
    assert!(done.spent.iter().any(|v| v.vtxo == position), "{point:?}");
    assert_eq!(
        w.balance(&fund_pk, &w.gbtc).await,
        MARGIN,
        "{point:?}: paid once"
    );
    assert_eq!(w.balance(&alice_pk, &w.token).await, 0, "{point:?}: burned");
    assert_eq!(
        w.balance(&dex_pk, &w.gbtc).await,
        2_000_000 - 2 * FEE,
        "{point:?}"
    );
    let confs = dex
        .received()
        .await
        .into_iter()
        .filter(|e| answers(e, kinds::CONFIRMATION, &liq.id))
        .count();
    assert_eq!(confs, 1, "{point:?}: one 31340");
    common::assert_reconciled(&w.db.store, &w.arkd_url).await;
    let _ = w.engine.0.send(true);
}
