//! The DEX bot end to end: a real websocket Nostr relay, the relay engine on
//! MariaDB with the arkd simulator over gRPC, the DEX serving over Nostr and
//! Alice's reference wallet. Alice asks for a quote, swaps, adds liquidity
//! (LP tokens the DEX issued on Ark, minted to her) and removes it (LP
//! tokens burnt) — each a batch of her intent and the DEX's counter-intent
//! in one Ark transaction, under arkd's supply rules for every asset.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{
    AssetAmount, AssetId, AssetType, DynStore, NewAsset, PubKey, SystemClock, UnixTime,
};
use ark_relay_dex_bot::{Dex, DexClient, DexRequest, Pool};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::seed::{coloured, seed_vtxo, Seed};
use ark_relay_wallet::{Wallet, WalletOptions};
use nostr::Keys;
use tokio::sync::watch;

const T: Duration = Duration::from_secs(90);

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("key")
}

fn rand_id() -> AssetId {
    AssetId::from_bytes(Keys::generate().public_key().to_bytes())
}

/// A VTXO of `sats` for `owner`, coloured with `colour` at arkd and in the
/// ledger alike.
async fn fund(
    store: &DynStore,
    sim: &ArkdSim,
    owner: &PubKey,
    colour: Option<(AssetId, u64)>,
    sats: u64,
) {
    let seed = match colour {
        Some((asset, n)) => Seed::user(*owner, sats, coloured(asset, n)),
        None => Seed::inventory(*owner, sats),
    };
    seed_vtxo(store.as_ref(), sim, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alice_trades_with_the_dex_bot_over_nostr() {
    // The relay.
    let db = TestDb::mariadb().await.expect("MariaDB");
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("dev relay");
    let url = nostr.url().to_owned();
    let sim = ArkdSim::new(ArkdSimConfig {
        // arkd's supply rules for every asset id: the LP token is an
        // Arkade asset the DEX issued, minted under its control asset.
        strict_assets: true,
        ..ArkdSimConfig::default()
    })
    .expect("sim");
    let server = sim.server_info().clone();
    let sim_server = sim.clone().spawn(0).await.expect("arkd sim");
    let relay_keys = Keys::generate();
    let relay_pk = pk(&relay_keys);
    let (gbtc, gusd) = (rand_id(), rand_id());
    // gBTC is the relay's own asset (only it may carry the reserved ticker).
    for (id, t, kind) in [
        (gbtc, "gBTC", AssetType::RelayIssued),
        (gusd, "gUSD", AssetType::Permissionless),
    ] {
        let asset = NewAsset {
            id,
            name: t.into(),
            ticker: t.into(),
            asset_type: kind,
            decimals: 0,
        };
        store
            .register_asset(&asset, UnixTime::now())
            .await
            .expect("asset");
    }
    for _ in 0..8 {
        fund(&store, &sim, &relay_pk, None, 5_000).await;
    }
    let ark = ArkdClient::connect(sim_server.url()).await.expect("arkd");
    let mut opts = PoolOptions::new(vec![url.clone()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(relay_keys.public_key(), opts)
        .await
        .expect("transport");
    let policy = IntentPolicy::new(relay_pk);
    let info = RelayInfo {
        pubkey: relay_keys.public_key().to_hex(),
        relays: vec![url.clone()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: Some(ark_relay_engine::ceremony::server_info_json(&server)),
    };
    let ceremony = Arc::new(Ceremony::new(
        store.clone(),
        Arc::new(ark),
        relay_keys.clone(),
        policy.clone(),
        BaseHandler::new(store.clone(), relay_keys.clone(), info),
        Arc::new(SystemClock),
        CeremonyConfig::default(),
    ));
    let engine = Engine::new(
        EngineParts {
            store: store.clone(),
            queue: Arc::new(MemoryQueue::new(Default::default())),
            bus: None,
            transport: Arc::new(transport),
            keys: relay_keys.clone(),
            policy,
            clock: Arc::new(SystemClock),
            handler: Arc::new(ark_relay_engine::router::Router::new(ceremony.clone())),
            periodic: vec![ceremony],
        },
        EngineConfig {
            workers: 4,
            ..Default::default()
        },
        Roles::ALL,
    );
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(async move { engine.run(stop_rx).await.expect("engine") });

    // The DEX: 10 000 gBTC / 6 500 000 gUSD of reserves, 1 000 gBTC for fees.
    let (dex_keys, alice_keys) = (Keys::generate(), Keys::generate());
    let (dex_pk, alice_pk) = (pk(&dex_keys), pk(&alice_keys));
    fund(&store, &sim, &dex_pk, Some((gbtc, 11_000)), 330).await;
    fund(&store, &sim, &dex_pk, Some((gusd, 6_500_000)), 330).await;
    fund(&store, &sim, &alice_pk, Some((gbtc, 5_000)), 330).await;
    let wopts = WalletOptions {
        send_timeout: T,
        ..WalletOptions::default()
    };
    let dex_wallet = Wallet::connect(dex_keys.clone(), relay_pk, vec![url.clone()], wopts.clone())
        .await
        .expect("dex wallet");
    // The LP token: issued on Ark with the pool key as its issuer, once.
    let lp_token = ark_relay_dex_bot::lp_token(&dex_wallet)
        .await
        .expect("issue_asset");
    assert_eq!(
        ark_relay_dex_bot::lp_token(&dex_wallet)
            .await
            .expect("again"),
        lp_token,
        "a restarted DEX finds its token from its own VTXOs"
    );
    let dex = Arc::new(Dex::new(
        dex_wallet,
        dex_keys,
        gbtc,
        gusd,
        lp_token,
        Pool::seeded(10_000, 6_500_000),
        10,
    ));
    let (dex_stop, dex_stop_rx) = watch::channel(false);
    tokio::spawn(dex.clone().serve(vec![url.clone()], dex_stop_rx));

    // Alice: her wallet for intents, a DEX client for quotes and trades.
    let alice = Wallet::connect(alice_keys.clone(), relay_pk, vec![url.clone()], wopts)
        .await
        .expect("alice wallet");
    let client = DexClient::connect(alice_keys, dex_pk, vec![url.clone()])
        .await
        .expect("client");
    let quote = client
        .request(
            &DexRequest::Quote {
                give: AssetRef::gbtc(),
                amount: 1_000,
            },
            T,
        )
        .await
        .expect("quote");
    let out = quote["receive_amount"].as_u64().expect("amount");
    assert_eq!(
        out,
        Pool::seeded(10_000, 6_500_000)
            .quote(ark_relay_dex_bot::Side::Btc, 1_000)
            .expect("q")
    );

    // A greedy intent (one unit more than the quote) is refused by the DEX.
    let swap = |action: &str, get: u64| {
        IntentContent::batch_leg(
            IntentType::AtomicSwap,
            action,
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, AssetRef::Id(gusd), get)],
            &relay_pk,
            10,
            alice.intent_expiry(),
        )
    };
    let greedy = alice
        .sign_batch_intent(&swap("greedy", out + 1))
        .await
        .expect("sign");
    let err = client
        .request(&DexRequest::Swap { intent: greedy }, T)
        .await
        .expect_err("greedy");
    assert!(err.contains("the pool pays"), "{err}");

    let intent = alice
        .sign_batch_intent(&swap("swap-1", out))
        .await
        .expect("sign");
    let done = client
        .request(&DexRequest::Swap { intent }, T)
        .await
        .expect("swap");
    assert_eq!(done["status"], "completed");
    let gusd_of =
        |b: &ark_relay_core::Balances, a: &AssetId| b.assets.get(a).map(|x| x.get()).unwrap_or(0);
    let b = store.balances(&alice_pk).await.expect("b");
    assert_eq!(gusd_of(&b, &gusd), out);
    assert_eq!(gusd_of(&b, &gbtc), 3_990);
    assert_eq!(dex.pool().await.btc, 11_000);

    // Add liquidity: 1 000 gBTC + the matching gUSD, for the LP the pool computes.
    let info = client.request(&DexRequest::Info {}, T).await.expect("info");
    let lp: AssetId = serde_json::from_value(info["lp"].clone()).expect("lp id");
    let pool = dex.pool().await;
    let supply_before = pool.lp_supply;
    let usd_in = u64::try_from(u128::from(pool.usd) * 1_000 / u128::from(pool.btc)).expect("fits");
    let lp_due = pool.lp_for_deposit(1_000, usd_in).expect("lp");
    let add = IntentContent::batch_leg(
        IntentType::AddLiquidity,
        "add-1",
        &[
            (dex_pk, AssetRef::gbtc(), 1_000),
            (dex_pk, AssetRef::Id(gusd), usd_in),
        ],
        &[(dex_pk, AssetRef::Id(lp), lp_due)],
        &relay_pk,
        10,
        alice.intent_expiry(),
    );
    let intent = alice.sign_batch_intent(&add).await.expect("sign");
    client
        .request(&DexRequest::AddLiquidity { intent }, T)
        .await
        .expect("add");
    let b = store.balances(&alice_pk).await.expect("b");
    assert_eq!(gusd_of(&b, &lp), lp_due, "LP tokens minted to Alice");

    // Remove it again: the LP tokens are burnt, the reserves paid out.
    let (btc_out, usd_out) = dex.pool().await.withdrawal(lp_due).expect("w");
    let rm = IntentContent::batch_leg(
        IntentType::RemoveLiquidity,
        "rm-1",
        &[(dex_pk, AssetRef::Id(lp), lp_due)],
        &[
            (dex_pk, AssetRef::gbtc(), btc_out),
            (dex_pk, AssetRef::Id(gusd), usd_out),
        ],
        &relay_pk,
        10,
        alice.intent_expiry(),
    );
    let intent = alice.sign_batch_intent(&rm).await.expect("sign");
    client
        .request(&DexRequest::RemoveLiquidity { intent }, T)
        .await
        .expect("remove");
    let b = store.balances(&alice_pk).await.expect("b");
    assert_eq!(gusd_of(&b, &lp), 0);
    let supply = store.asset(&lp).await.expect("a").expect("lp").total_supply;
    assert_eq!(
        supply,
        AssetAmount::new(1),
        "burnt: the genesis unit is left"
    );
    assert_eq!(lp, lp_token);
    let ark = ArkdClient::connect(sim_server.url()).await.expect("arkd");
    let at_arkd = ark_relay_core::backends::ark::ArkServer::get_asset(
        &ark,
        &ark_relay_ark::asset::arkade_id(&lp).to_string(),
    )
    .await
    .expect("GetAsset");
    assert_eq!(at_arkd.supply, 1, "arkd agrees");
    assert_eq!(
        at_arkd.control_asset,
        Some(ark_relay_ark::asset::control_arkade_id(&lp).to_string())
    );
    // The ledger = arkd's indexer, VTXO by VTXO.
    let outcome = ark_relay_engine::reconcile::Reconciler::new(
        store.clone(),
        Arc::new(db.store.clone()),
        Arc::new(ark),
        Arc::new(SystemClock),
    )
    .run(&|_| {})
    .await
    .expect("reconciliation");
    assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);

    assert_eq!(
        dex.pool().await.lp_supply,
        supply_before,
        "the pool's books agree"
    );

    let _ = dex_stop.send(true);
    let _ = stop.send(true);
    client.shutdown().await;
    drop(db);
}
