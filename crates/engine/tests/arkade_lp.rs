//! LP tokens as Arkade assets issued by the DEX, against the arkd simulator
//! with arkd's strict asset rules for every id (`strict_assets`): the DEX's
//! `issue_asset` is the token's genesis on Ark (the DEX holds its control
//! asset); an `add_liquidity` batch mints under that control asset (the
//! DEX's control VTXO is spent and re-created in the batch transaction, a
//! reissuance arkd accepts); another key cannot mint it — the relay refuses
//! the batch (3001), and arkd refuses a hand-made inflation. Ledger = arkd's
//! indexer at the end. Reference wallets (which check every packet they
//! sign) over a websocket Nostr relay, SQLite, the arkd simulator over gRPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::{arkade_id, control_arkade_id, packet_for_colours};
use ark_relay_ark::{build_offchain_tx, sign_psbt, Output, VtxoInput};
use ark_relay_core::backends::ark::{ArkServer, VtxoQuery};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, ErrorCode, NewVtxo, PubKey, Sats, SessionId,
    SystemClock, UnixTime, VtxoStatus,
};
use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType, SupplyChange, WireAmount};
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{event_id_from_nostr, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{Wallet as RefWallet, WalletOptions};
use bitcoin::secp256k1::{Keypair, Secp256k1};
use nostr::Keys;

use common::dev_relay;

const OUTCOME: Duration = Duration::from_secs(90);

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).unwrap()
}

fn leg(
    w: &RefWallet,
    kind: IntentType,
    action: &str,
    pays: &[(PubKey, AssetRef, u64)],
    expects: &[(PubKey, AssetRef, u64)],
) -> IntentContent {
    IntentContent::batch_leg(
        kind,
        action,
        pays,
        expects,
        &w.relay(),
        10,
        w.intent_expiry(),
    )
}

fn mint(asset: AssetId, amount: u64) -> Option<Vec<SupplyChange>> {
    Some(vec![SupplyChange {
        asset: AssetRef::Id(asset),
        ticker: "gLP".into(),
        amount: WireAmount::new(amount),
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_lp_token_is_issued_by_the_dex_and_minted_only_under_its_control_asset_on_sqlite() {
    an_lp_token_is_issued_by_the_dex_and_minted_only_under_its_control_asset(
        TestDb::sqlite().await.unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_lp_token_is_issued_by_the_dex_and_minted_only_under_its_control_asset_on_mariadb() {
    an_lp_token_is_issued_by_the_dex_and_minted_only_under_its_control_asset(
        TestDb::mariadb().await.expect("MariaDB"),
    )
    .await;
}

async fn an_lp_token_is_issued_by_the_dex_and_minted_only_under_its_control_asset(db: TestDb) {
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = dev_relay().await;
    let sim = ArkdSim::new(ArkdSimConfig {
        strict_assets: true,
        ..ArkdSimConfig::default()
    })
    .unwrap();
    let server = sim.server_info().clone();
    let sim_server = sim.clone().spawn(0).await.unwrap();
    let arkd_url = sim_server.url();
    let ark = Arc::new(ArkdClient::connect(arkd_url.clone()).await.unwrap());
    let relay_keys = Keys::generate();
    let relay_pk = pk(&relay_keys);
    let keypair = Keypair::from_secret_key(&Secp256k1::signing_only(), relay_keys.secret_key());
    let mut inventory = Vec::new();
    for _ in 0..12 {
        let v = sim.fund(&relay_pk, Sats::new(5_000));
        inventory.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay_pk,
            sats: Sats::new(v.amount),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay_pk).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&inventory, UnixTime::now())
        .await
        .unwrap();
    // gBTC issued on Ark by the relay, and lifted (reissued) to both parties.
    let issuer = Issuer::new(store.clone(), ark.clone(), keypair, Arc::new(SystemClock));
    let gbtc = issuer
        .genesis(
            &SessionId::from_bytes([1; 32]),
            &GenesisRequest {
                name: "Relay-issued BTC".into(),
                ticker: "gBTC".into(),
                decimals: 0,
                taproot_asset_id: None,
                asset_type: AssetType::RelayIssued,
            },
        )
        .await
        .unwrap()
        .asset;
    let (alice_keys, dex_keys, mallory_keys) =
        (Keys::generate(), Keys::generate(), Keys::generate());
    let (alice_pk, dex_pk, mallory_pk) = (pk(&alice_keys), pk(&dex_keys), pk(&mallory_keys));
    for (n, who, amount) in [
        (2u8, alice_pk, 2_000u64),
        (3, dex_pk, 500),
        (4, mallory_pk, 500),
    ] {
        let colour = Colour {
            asset: gbtc,
            amount: AssetAmount::new(amount),
        };
        issuer
            .issue(&SessionId::from_bytes([n; 32]), who, colour, "lift")
            .await
            .unwrap();
    }
    let (stop, engine) = common::start_ceremony(
        &store,
        &relay_keys,
        &server,
        nostr.url(),
        &arkd_url,
        None,
        None,
        Arc::new(MemoryQueue::new(Default::default())),
    )
    .await;
    let wallet = |keys: Keys| {
        let url = nostr.url().to_owned();
        async move {
            let opts = WalletOptions {
                send_timeout: OUTCOME,
                ..WalletOptions::default()
            };
            RefWallet::connect(keys, relay_pk, vec![url], opts)
                .await
                .unwrap()
        }
    };
    let alice = wallet(alice_keys.clone()).await;
    let dex = wallet(dex_keys).await;
    let mallory = wallet(mallory_keys).await;

    // 1. The DEX has its LP token issued on Ark: the genesis is its own step.
    let issued = dex
        .request(&ServiceRequest::IssueAsset {
            ticker: "gLP".into(),
            name: Some("gBTC/gBTC pool share".into()),
            decimals: None,
        })
        .await
        .unwrap();
    let lp: AssetId = issued["asset_id"].as_str().unwrap().parse().unwrap();
    let genesis_txid = issued["ark_txid"].as_str().unwrap();
    assert_eq!(
        issued["arkade_asset_id"].as_str().unwrap(),
        format!("{genesis_txid}0000"),
        "the id arkd computes: genesis txid + group 0"
    );
    let info = ark.get_asset(&arkade_id(&lp).to_string()).await.unwrap();
    assert_eq!(info.supply, 1, "the genesis unit");
    assert_eq!(info.control_asset, Some(control_arkade_id(&lp).to_string()));
    let control = issued["control_asset_id"]
        .as_str()
        .unwrap()
        .parse::<AssetId>()
        .unwrap();
    let held = |who: PubKey, asset: AssetId| {
        let store = store.clone();
        async move {
            store
                .unspent_vtxos(&who)
                .await
                .unwrap()
                .into_iter()
                .filter(|v| v.colour.is_some_and(|c| c.asset == asset))
                .collect::<Vec<_>>()
        }
    };
    let control_vtxo = held(dex_pk, control).await;
    assert_eq!(control_vtxo.len(), 1, "the DEX holds the control VTXO");
    // The same ticker again, by anyone: refused (a ticker names one asset).
    let again = mallory
        .request(&ServiceRequest::IssueAsset {
            ticker: "gLP".into(),
            name: None,
            decimals: None,
        })
        .await;
    assert!(again.is_err(), "gLP taken: {again:?}");

    // 2. add_liquidity: Alice pays 1 000 gBTC, the DEX mints 806 gLP to her.
    let a_add = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AddLiquidity,
            "add-a1",
            &[(dex_pk, AssetRef::gbtc(), 1_000)],
            &[(dex_pk, AssetRef::Id(lp), 806)],
        ))
        .await
        .unwrap();
    let mut d = leg(
        &dex,
        IntentType::AddLiquidity,
        "add-d1",
        &[(alice_pk, AssetRef::Id(lp), 806)],
        &[(alice_pk, AssetRef::gbtc(), 1_000)],
    );
    d.mint = mint(lp, 806);
    let d_add = dex.sign_batch_intent(&d).await.unwrap();
    dex.submit_batch("add-1", vec![a_add.clone(), d_add.clone()])
        .await
        .expect("accepted");
    let (ra, rd) = tokio::join!(
        alice.outcome(event_id_from_nostr(&a_add.id), OUTCOME),
        dex.outcome(event_id_from_nostr(&d_add.id), OUTCOME)
    );
    ra.expect("alice added");
    let confirmation = rd.expect("dex added");
    let mine = held(alice_pk, lp).await;
    assert_eq!(mine.len(), 1);
    let at = ark
        .get_vtxos(&VtxoQuery::Outpoints(vec![mine[0].id]))
        .await
        .unwrap();
    assert_eq!(at[0].assets.len(), 1);
    assert_eq!(at[0].assets[0].asset_id, arkade_id(&lp).to_string());
    assert_eq!(at[0].assets[0].amount, 806);
    assert_eq!(
        ark.get_asset(&arkade_id(&lp).to_string())
            .await
            .unwrap()
            .supply,
        807,
        "a reissuance of 806 at arkd"
    );
    let spent = store.vtxo(&control_vtxo[0].id).await.unwrap().unwrap();
    assert_eq!(
        spent.status,
        VtxoStatus::Spent,
        "the mint spent the control VTXO"
    );
    let renewed = held(dex_pk, control).await;
    assert_eq!(renewed.len(), 1, "and re-created it to the DEX");
    assert_eq!(Some(renewed[0].id.txid()), spent.spent_by);
    let _ = confirmation;

    // 3. Mallory cannot mint gLP: the relay refuses the batch, nothing moves.
    let m_add = mallory
        .sign_batch_intent(&{
            let mut c = leg(
                &mallory,
                IntentType::AddLiquidity,
                "forge-m1",
                &[(alice_pk, AssetRef::Id(lp), 5)],
                &[(alice_pk, AssetRef::gbtc(), 5)],
            );
            c.mint = mint(lp, 5);
            c
        })
        .await
        .unwrap();
    let a_forge = alice
        .sign_batch_intent(&leg(
            &alice,
            IntentType::AddLiquidity,
            "forge-a1",
            &[(mallory_pk, AssetRef::gbtc(), 5)],
            &[(mallory_pk, AssetRef::Id(lp), 5)],
        ))
        .await
        .unwrap();
    let refused = mallory
        .submit_batch("forge-1", vec![a_forge, m_add])
        .await
        .expect_err("refused");
    assert_eq!(
        refused.code(),
        Some(ErrorCode::BatchInconsistent),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("control asset"), "{refused}");

    // ... and arkd refuses a hand-made inflation of gLP without its control
    // asset: Alice's 806 become 900 in a transaction she signs herself.
    let input = VtxoInput::from_vtxo(&mine[0], &server).unwrap();
    let lp_colour = |n: u64| {
        Some(Colour {
            asset: lp,
            amount: AssetAmount::new(n),
        })
    };
    let packet = packet_for_colours(&[lp_colour(806)], &[lp_colour(900)])
        .unwrap()
        .unwrap();
    let mut tx = build_offchain_tx(
        &server,
        &[input],
        &[
            Output::Vtxo {
                owner: alice_pk,
                sats: mine[0].sats,
            },
            Output::Raw(packet.to_txout()),
        ],
    )
    .unwrap();
    let alice_kp = Keypair::from_secret_key(&Secp256k1::signing_only(), alice_keys.secret_key());
    sign_psbt(&mut tx.ark_tx, &alice_kp).unwrap();
    let refused = ark.submit_tx(&tx.ark_tx, &tx.checkpoints).await;
    let err = refused.expect_err("an inflation without the control asset");
    assert!(
        format!("{err:?}").contains("ASSET") || format!("{err:?}").contains("CONTROL"),
        "arkd's asset error: {err:?}"
    );

    // The relay pays the carrier sats of every `issue_asset`, so a key may
    // hold the control of at most 8 assets (`[inventory]
    // issue_asset_per_key`): Mallory's ninth request is refused with 9001
    // and nothing is issued for it.
    for n in 0..8 {
        mallory
            .request(&ServiceRequest::IssueAsset {
                ticker: format!("M{n}"),
                name: None,
                decimals: None,
            })
            .await
            .unwrap();
    }
    let before = store.assets().await.unwrap().len();
    let over = mallory
        .request(&ServiceRequest::IssueAsset {
            ticker: "M8".into(),
            name: None,
            decimals: None,
        })
        .await
        .expect_err("over the budget");
    assert_eq!(over.code(), Some(ErrorCode::RateLimited), "{over:?}");
    assert!(over.to_string().contains("limit 8"), "{over}");
    assert_eq!(
        store.assets().await.unwrap().len(),
        before,
        "nothing issued"
    );

    common::assert_reconciled(&db.store, &arkd_url).await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), engine).await;
    db.destroy().await;
}
