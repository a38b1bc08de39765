//! Lifted assets as Arkade assets, against the arkd simulator with arkd's
//! strict asset rules for every id (`strict_assets`): a permissionless
//! Taproot Asset's first lift runs its genesis on Ark (metadata linking the
//! Taproot Asset, control asset held by the relay), a second lift is a
//! reissuance under that control asset, tapd's invoices still name the
//! Taproot Asset, and a land burns what it lands. Ledger = arkd's indexer at
//! the end. Over the real parts: a websocket Nostr relay, SQLite, the arkd,
//! lnd and tapd simulators over gRPC, and a wallet that only speaks Nostr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::{arkade_id, control_arkade_id, decode_metadata, meta};
use ark_relay_core::backends::ark::{ArkServer, VtxoQuery};
use ark_relay_core::backends::assets::DynAssets;
use ark_relay_core::backends::lightning::DynLightning;
use ark_relay_core::ramp::DynRampStore;
use ark_relay_core::{AssetId, AssetType, DynStore, NewVtxo, PubKey, Sats, SystemClock, UnixTime};
use ark_relay_engine::ceremony::issue::GenesisRequest;
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::ramp::{Issuer, RampConfig, RampDriver, Ramps};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Periodic, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_grpc::tapd::TapdClient;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{MakeExternalInvoiceRequest, PayInvoiceRequest};
use ark_relay_proto::simrpc::tapd::tapd_sim_client::TapdSimClient;
use ark_relay_proto::simrpc::tapd::IssueProofRequest;
use ark_relay_protocol::content::{AssetRef, Confirmation, IntentContent, WireAmount};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::ArkdSimConfig;
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use bitcoin::secp256k1::{Keypair, Secp256k1};
use nostr::Keys;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;

use common::{answers, dev_relay, spawn_signer, Wallet};

const WAIT: Duration = Duration::from_secs(60);

fn rand_id() -> String {
    hex::encode(&Keys::generate().public_key().to_bytes()[..8])
}

async fn confirmation_of(w: &Wallet, answered: &nostr::EventId) -> Confirmation {
    w.wait_answer("the 31340", kinds::CONFIRMATION, answered, WAIT)
        .await;
    let ev = w
        .received()
        .await
        .into_iter()
        .find(|e| answers(e, kinds::CONFIRMATION, answered))
        .unwrap();
    serde_json::from_str(&ev.content).unwrap()
}

/// The assets arkd's indexer lists for `vtxo`.
async fn at_arkd(ark: &ArkdClient, vtxo: ark_relay_core::VtxoId) -> Vec<(String, u64)> {
    let v = ark
        .get_vtxos(&VtxoQuery::Outpoints(vec![vtxo]))
        .await
        .unwrap();
    v[0].assets
        .iter()
        .map(|a| (a.asset_id.clone(), a.amount))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lifted_taproot_asset_is_issued_on_ark_reissued_and_a_land_burns_on_sqlite() {
    a_lifted_taproot_asset_is_issued_on_ark_reissued_and_a_land_burns(
        TestDb::sqlite().await.unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lifted_taproot_asset_is_issued_on_ark_reissued_and_a_land_burns_on_mariadb() {
    a_lifted_taproot_asset_is_issued_on_ark_reissued_and_a_land_burns(
        TestDb::mariadb().await.expect("MariaDB"),
    )
    .await;
}

async fn a_lifted_taproot_asset_is_issued_on_ark_reissued_and_a_land_burns(db: TestDb) {
    let store: DynStore = Arc::new(db.store.clone());
    let ramp_store: DynRampStore = Arc::new(db.store.clone());
    let nostr = dev_relay().await;
    let sims = SimStack::start(SimOptions {
        arkd: ArkdSimConfig {
            strict_assets: true,
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let server = sims.arkd.server_info().clone();
    let ep = sims.endpoints();
    let daemon = |d: &ark_relay_sim::DaemonEndpoint| {
        DaemonConfig::new(
            d.url.clone(),
            d.tls_cert_pem.clone().map(String::into_bytes),
            Some(hex::decode(&d.macaroon_hex).unwrap()),
        )
    };
    let (lnd_cfg, tapd_cfg) = (daemon(&ep.lnd), daemon(&ep.tapd));
    let lnd: DynLightning = Arc::new(LndClient::new(&lnd_cfg, &HealthRegistry::new()).unwrap());
    let tapd: DynAssets = Arc::new(TapdClient::new(&tapd_cfg, &HealthRegistry::new()).unwrap());
    let mut lnd_admin = LndSimClient::new(InterceptedService::new(
        connect(&lnd_cfg).unwrap(),
        MacaroonInterceptor::new(lnd_cfg.macaroon.as_deref()),
    ));
    let mut tapd_admin = TapdSimClient::new(InterceptedService::new(
        connect(&tapd_cfg).unwrap(),
        MacaroonInterceptor::new(tapd_cfg.macaroon.as_deref()),
    ));
    let ark = Arc::new(ArkdClient::connect(ep.arkd).await.unwrap());
    let relay_keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).unwrap();
    let keypair = Keypair::from_secret_key(&Secp256k1::signing_only(), relay_keys.secret_key());
    let mut inventory = Vec::new();
    for _ in 0..10 {
        let v = sims.arkd.fund(&relay_pk, Sats::new(5_000));
        inventory.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay_pk,
            sats: Sats::new(v.amount),
            colour: None,
            status: ark_relay_core::VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay_pk).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&inventory, UnixTime::now())
        .await
        .unwrap();
    let issuer = || Issuer::new(store.clone(), ark.clone(), keypair, Arc::new(SystemClock));
    // gBTC issued on Ark first (lifts need the relay's asset; lands burn it).
    let gbtc = issuer()
        .genesis(
            &ark_relay_core::SessionId::from_bytes([1; 32]),
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

    // The relay process: engine, ceremony, ramps with tapd.
    let mut opts = PoolOptions::new(vec![nostr.url().to_owned()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(relay_keys.public_key(), opts)
        .await
        .unwrap();
    let mut policy = IntentPolicy::new(relay_pk);
    policy.network = Some(bitcoin::Network::Regtest);
    let info = RelayInfo {
        pubkey: relay_keys.public_key().to_hex(),
        relays: vec![nostr.url().to_owned()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: Some(ark_relay_engine::ceremony::server_info_json(&server)),
    };
    let base = BaseHandler::new(store.clone(), relay_keys.clone(), info);
    let ramps = Arc::new(
        Ramps::new(
            store.clone(),
            ramp_store.clone(),
            lnd.clone(),
            issuer(),
            relay_keys.clone(),
            Arc::new(SystemClock),
            RampConfig {
                every: Duration::from_millis(100),
                payment_watch: Duration::from_secs(5),
                ..Default::default()
            },
        )
        .with_assets(tapd.clone()),
    );
    let ceremony = Arc::new(
        Ceremony::new(
            store.clone(),
            ark.clone(),
            relay_keys.clone(),
            policy.clone(),
            base,
            Arc::new(SystemClock),
            CeremonyConfig {
                session_ttl_secs: 900,
                step_timeout_secs: 20,
            },
        )
        .with_lands(ramps.clone()),
    );
    let handler =
        Arc::new(ark_relay_engine::router::Router::new(ceremony.clone()).with_ramps(ramps.clone()));
    let periodic: Vec<Arc<dyn Periodic>> = vec![ceremony, Arc::new(RampDriver(ramps.clone()))];
    let engine = Engine::new(
        EngineParts {
            store: store.clone(),
            queue: Arc::new(MemoryQueue::new(Default::default())),
            bus: None,
            transport: Arc::new(transport),
            keys: relay_keys.clone(),
            policy,
            clock: Arc::new(SystemClock),
            handler,
            periodic,
        },
        EngineConfig {
            workers: 4,
            ..Default::default()
        },
        Roles::ALL,
    );
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move { engine.run(stop_rx).await.expect("engine") });

    let alice = Arc::new(Wallet::connect(nostr.url()).await);
    let alice_pk: PubKey = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), relay_pk);
    let request = |asset: AssetRef, amount: u64, proof: Option<String>| {
        let req = ServiceRequest::LiftLightning {
            asset_id: asset,
            amount: WireAmount::new(amount),
            proof,
        };
        builders::service_request(&alice.keys, &relay_pk, &req, &rand_id(), Scheme::Nip44).unwrap()
    };
    let pay = |invoice: String| {
        let mut admin = lnd_admin.clone();
        async move {
            admin
                .pay_invoice(PayInvoiceRequest {
                    payment_request: invoice,
                    amt_msat: 0,
                })
                .await
                .unwrap();
        }
    };

    // 1. The first lift of a Taproot Asset, with its proof: its genesis on Ark.
    let taproot = AssetId::from_bytes(Keys::generate().public_key().to_bytes());
    let raw = tapd_admin
        .issue_proof(IssueProofRequest {
            asset_id: taproot.as_bytes().to_vec(),
            amount: 10_000,
        })
        .await
        .unwrap()
        .into_inner()
        .raw_proof_file;
    let ev = request(AssetRef::Id(taproot), 500, Some(hex::encode(&raw)));
    alice.publish(&ev).await;
    let resp = common::response_to(&alice, &ev, WAIT).await;
    let result = resp.result.unwrap_or_else(|| panic!("{:?}", resp.error));
    let asset: AssetId = result["asset_id"].as_str().unwrap().parse().unwrap();
    assert_ne!(asset, taproot, "the ledger names it by its genesis on Ark");
    assert_eq!(
        ramp_store.asset_of_taproot(&taproot).await.unwrap(),
        Some(asset)
    );
    assert_eq!(
        ramp_store.taproot_of_asset(&asset).await.unwrap(),
        Some(taproot)
    );
    let registered = store.asset(&asset).await.unwrap().unwrap();
    assert_eq!(registered.asset_type, AssetType::Permissionless);
    assert!(store.asset(&taproot).await.unwrap().is_none());
    let arkade = arkade_id(&asset).to_string();
    let info = ark.get_asset(&arkade).await.unwrap();
    assert_eq!(info.supply, 1, "the genesis unit, before the lift is paid");
    assert_eq!(
        info.control_asset,
        Some(control_arkade_id(&asset).to_string()),
        "its control asset"
    );
    let metadata = decode_metadata(&hex::decode(&info.metadata_hex).unwrap()).unwrap();
    assert!(
        metadata.contains(&(meta::TAPROOT_ASSET_ID.to_owned(), taproot.to_string())),
        "GetAsset links the Taproot Asset: {metadata:?}"
    );
    pay(result["invoice"].as_str().unwrap().to_owned()).await;
    let c = confirmation_of(&alice, &ev.id).await;
    assert_eq!((c.created[0].owner, c.created[0].amount), (alice_pk, 500));
    assert_eq!(
        at_arkd(&ark, c.created[0].vtxo).await,
        vec![(arkade.clone(), 500)]
    );

    // 2. A second lift, named by its Taproot Asset id, no proof: a reissuance.
    let ev = request(AssetRef::Id(taproot), 300, None);
    alice.publish(&ev).await;
    let resp = common::response_to(&alice, &ev, WAIT).await;
    let result = resp.result.unwrap_or_else(|| panic!("{:?}", resp.error));
    assert_eq!(
        result["asset_id"].as_str(),
        Some(asset.to_string().as_str())
    );
    pay(result["invoice"].as_str().unwrap().to_owned()).await;
    let c = confirmation_of(&alice, &ev.id).await;
    assert_eq!(
        at_arkd(&ark, c.created[0].vtxo).await,
        vec![(arkade.clone(), 300)]
    );
    assert_eq!(ark.get_asset(&arkade).await.unwrap().supply, 801);
    let control = ark
        .get_asset(&control_arkade_id(&asset).to_string())
        .await
        .unwrap();
    assert_eq!(control.supply, 1, "one control unit, re-created each time");
    assert_eq!(
        store
            .asset(&asset)
            .await
            .unwrap()
            .unwrap()
            .total_supply
            .get(),
        801
    );

    // It may be named by its ledger id or its ticker too (an invoice each,
    // left unpaid).
    let ticker: String = taproot.to_string().chars().take(8).collect();
    for named in [AssetRef::Id(asset), AssetRef::Ticker(ticker)] {
        let ev = request(named.clone(), 10, None);
        alice.publish(&ev).await;
        let resp = common::response_to(&alice, &ev, WAIT).await;
        let result = resp
            .result
            .unwrap_or_else(|| panic!("{named}: {:?}", resp.error));
        assert_eq!(
            result["asset_id"].as_str(),
            Some(asset.to_string().as_str())
        );
    }

    // 3. gBTC lifted, then landed: the land burns what it lands.
    let ev = request(AssetRef::gbtc(), 20_000, None);
    alice.publish(&ev).await;
    let resp = common::response_to(&alice, &ev, WAIT).await;
    let result = resp.result.unwrap_or_else(|| panic!("{:?}", resp.error));
    pay(result["invoice"].as_str().unwrap().to_owned()).await;
    confirmation_of(&alice, &ev.id).await;
    let gbtc_arkade = arkade_id(&gbtc).to_string();
    assert_eq!(ark.get_asset(&gbtc_arkade).await.unwrap().supply, 20_001);
    let invoice = lnd_admin
        .make_external_invoice(MakeExternalInvoiceRequest {
            amt_msat: 10_000_000,
            memo: "coffee".into(),
            expiry_secs: 3_600,
        })
        .await
        .unwrap()
        .into_inner()
        .payment_request;
    let fee = ark_relay_protocol::intent::land_fee(10_000, 1_000).unwrap();
    let mut land = IntentContent::transfer(
        format!("land-{}", rand_id()),
        &relay_pk,
        AssetRef::gbtc(),
        10_000,
        &relay_pk,
        fee,
        UnixTime::now().0 + 600,
    );
    land.intent_type = "land_lightning".into();
    land.memo = Some(invoice);
    let intent = builders::intent(&alice.keys, &relay_pk, &land).unwrap();
    alice.publish(&intent).await;
    let c = confirmation_of(&alice, &intent.id).await;
    assert!(c.preimage.is_some(), "the land paid its invoice");
    assert_eq!(
        ark.get_asset(&gbtc_arkade).await.unwrap().supply,
        20_001 - 10_000,
        "arkd's supply fell by the landed amount: a burn in the packet"
    );

    common::assert_reconciled(&db.store, &sims.endpoints().arkd).await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    ramps.shutdown();
    sims.stop().await;
    db.destroy().await;
}
