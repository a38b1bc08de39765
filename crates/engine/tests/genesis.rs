//! An asset the relay issues on Ark (`Issuer::genesis`), then issued more of
//! by lifts (`Issuer::issue`): against the arkd simulator with arkd's strict
//! asset rules, the genesis registers the asset under its Arkade id with a
//! relay-held control asset and metadata, every lift spends and re-creates
//! the control VTXO (a valid reissuance), and the ledger's colour per VTXO is
//! what arkd's indexer reports (the reconciliation run finds no difference).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ark_relay_ark::asset::{
    arkade_id, control_arkade_id, control_ledger_id, decode_metadata, meta, ArkadeAssetId,
};
use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::backends::ark::{ArkServer, VtxoQuery};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, NewVtxo, PubKey, Sats, SessionId,
    SystemClock, UnixTime, VtxoStatus,
};
use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};
use ark_relay_engine::reconcile::Reconciler;
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_sim::arkd::ArkdSimConfig;
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

fn lock(n: u8) -> SessionId {
    SessionId::from_bytes([n; 32])
}

#[tokio::test]
async fn a_genesis_then_lifts_as_reissuances_under_arkds_rules() {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    let stack = SimStack::start(SimOptions {
        arkd: ArkdSimConfig {
            strict_assets: true,
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let ark = Arc::new(ArkdClient::connect(stack.endpoints().arkd).await.unwrap());
    let info = ark.get_info().await.unwrap();
    let server = ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript,
        RelativeLocktime::from_server_value(info.unilateral_exit_delay).unwrap(),
        info.dust,
        info.network,
    )
    .unwrap();
    let secp = Secp256k1::new();
    let relay_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
    let relay = PubKey::from_x_only(relay_kp.x_only_public_key().0);
    let bob_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[8; 32]).unwrap());
    let bob = PubKey::from_x_only(bob_kp.x_only_public_key().0);
    let mut inventory = Vec::new();
    for _ in 0..4 {
        let v = stack.arkd.fund(&relay, Sats::new(5_000));
        inventory.push(NewVtxo {
            id: v.outpoint.into(),
            owner: relay,
            sats: Sats::new(v.amount),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay).to_tapscripts(),
            expires_at: Some(UnixTime(v.expires_at)),
        });
    }
    store
        .insert_vtxos(&inventory, UnixTime::now())
        .await
        .unwrap();
    let issuer = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock));

    // Genesis.
    let taproot = AssetId::from_bytes([0x42; 32]);
    let request = GenesisRequest {
        name: "Relay-issued BTC".into(),
        ticker: "gBTC".into(),
        decimals: 0,
        taproot_asset_id: Some(taproot),
        asset_type: AssetType::RelayIssued,
    };
    let g = issuer.genesis(&lock(1), &request).await.unwrap();
    let again = issuer.genesis(&lock(1), &request).await.unwrap();
    assert_eq!(again, g, "resuming a finished genesis changes nothing");
    let arkade = ArkadeAssetId {
        txid: g.ark_txid,
        group_index: 0,
    };
    assert_eq!(
        arkade_id(&g.asset),
        arkade,
        "the ledger id is the genesis txid"
    );
    assert_eq!(g.control, control_ledger_id(&g.asset));
    let registered = store.asset(&g.asset).await.unwrap().unwrap();
    assert_eq!(
        (registered.ticker.as_str(), registered.asset_type),
        ("gBTC", AssetType::RelayIssued)
    );
    assert!(store.asset(&g.control).await.unwrap().is_some());

    let at_arkd = ark.get_asset(&arkade.to_string()).await.unwrap();
    assert_eq!(at_arkd.supply, 1, "the genesis unit");
    assert_eq!(
        at_arkd.control_asset,
        Some(control_arkade_id(&g.asset).to_string())
    );
    let metadata = decode_metadata(&hex::decode(&at_arkd.metadata_hex).unwrap()).unwrap();
    assert!(metadata.contains(&(meta::TICKER.to_owned(), "gBTC".to_owned())));
    assert!(metadata.contains(&(meta::TAPROOT_ASSET_ID.to_owned(), taproot.to_string())));

    // Two lifts: each a reissuance that spends and re-creates the control VTXO.
    let gbtc = |n: u64| Colour {
        asset: g.asset,
        amount: AssetAmount::new(n),
    };
    for (n, amount) in [(2u8, 500u64), (3, 250)] {
        let issued = issuer
            .issue(&lock(n), bob, gbtc(amount), "lift")
            .await
            .unwrap();
        let bobs = ark
            .get_vtxos(&VtxoQuery::Outpoints(vec![issued.vtxo]))
            .await
            .unwrap();
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].assets.len(), 1);
        assert_eq!(bobs[0].assets[0].asset_id, arkade.to_string());
        assert_eq!(bobs[0].assets[0].amount, amount);
    }
    let at_arkd = ark.get_asset(&arkade.to_string()).await.unwrap();
    assert_eq!(at_arkd.supply, 751);
    // The control asset itself is never issued to anyone.
    let more_control = Colour {
        asset: g.control,
        amount: AssetAmount::new(1),
    };
    assert!(matches!(
        issuer.issue(&lock(4), bob, more_control, "lift").await,
        Err(ark_relay_engine::ceremony::issue::IssueError::Rejected(_))
    ));
    let control = ark
        .get_asset(&control_arkade_id(&g.asset).to_string())
        .await
        .unwrap();
    assert_eq!(control.supply, 1, "one control unit, re-created each time");

    // The ledger agrees with arkd's indexer, VTXO by VTXO.
    for owner in [relay, bob] {
        for v in store.unspent_vtxos(&owner).await.unwrap() {
            let at = ark
                .get_vtxos(&VtxoQuery::Outpoints(vec![v.id]))
                .await
                .unwrap();
            let want: Vec<(String, u64)> = v
                .colour
                .map(|c| {
                    let id = if c.asset == g.control {
                        control_arkade_id(&g.asset)
                    } else {
                        arkade_id(&c.asset)
                    };
                    (id.to_string(), c.amount.get())
                })
                .into_iter()
                .collect();
            let got: Vec<(String, u64)> = at[0]
                .assets
                .iter()
                .map(|a| (a.asset_id.clone(), a.amount))
                .collect();
            assert_eq!(got, want, "VTXO {}", v.id);
        }
    }
    // So does the reconciliation run (control asset under its own Arkade id).
    let outcome = Reconciler::new(
        store.clone(),
        Arc::new(db.store.clone()),
        ark.clone(),
        Arc::new(SystemClock),
    )
    .run(&|_| {})
    .await
    .unwrap();
    assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);
    let supply = store.asset(&g.asset).await.unwrap().unwrap().total_supply;
    assert_eq!(supply.get(), 751, "the ledger's supply is arkd's");
    stack.stop().await;
    db.destroy().await;
}

#[tokio::test]
async fn a_genesis_interrupted_before_or_after_submit_resumes_to_one_asset() {
    use ark_relay_engine::ceremony::issue::IssueStage;
    use std::sync::atomic::{AtomicBool, Ordering};
    for stage in [IssueStage::Prepared, IssueStage::Submitted] {
        let db = TestDb::sqlite().await.unwrap();
        let store: DynStore = Arc::new(db.store.clone());
        let stack = SimStack::start(SimOptions {
            arkd: ArkdSimConfig {
                strict_assets: true,
                ..ArkdSimConfig::default()
            },
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let ark = Arc::new(ArkdClient::connect(stack.endpoints().arkd).await.unwrap());
        let server = stack.arkd.server_info().clone();
        let secp = Secp256k1::new();
        let relay_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
        let relay = PubKey::from_x_only(relay_kp.x_only_public_key().0);
        let v = stack.arkd.fund(&relay, Sats::new(5_000));
        store
            .insert_vtxos(
                &[NewVtxo {
                    id: v.outpoint.into(),
                    owner: relay,
                    sats: Sats::new(v.amount),
                    colour: None,
                    status: VtxoStatus::Available,
                    tapscripts: server.default_vtxo(&relay).to_tapscripts(),
                    expires_at: Some(UnixTime(v.expires_at)),
                }],
                UnixTime::now(),
            )
            .await
            .unwrap();
        let request = GenesisRequest {
            name: "Relay-issued BTC".into(),
            ticker: "gBTC".into(),
            decimals: 0,
            taproot_asset_id: None,
            asset_type: AssetType::RelayIssued,
        };
        let crashed = Arc::new(AtomicBool::new(false));
        let once = crashed.clone();
        let crashing = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock))
            .with_crash_hook(Arc::new(move |kind, at| {
                kind == "genesis" && at == stage && !once.swap(true, Ordering::SeqCst)
            }));
        assert!(
            crashing.genesis(&lock(1), &request).await.is_err(),
            "{stage:?}: the crash"
        );
        assert!(crashed.load(Ordering::SeqCst));
        // A new process resumes the same transaction.
        let issuer = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock));
        let g = issuer.genesis(&lock(1), &request).await.unwrap();
        let assets = store.assets().await.unwrap();
        assert_eq!(
            assets.len(),
            2,
            "{stage:?}: the asset and its control, once"
        );
        let at_arkd = ark
            .get_asset(&arkade_id(&g.asset).to_string())
            .await
            .unwrap();
        assert_eq!(at_arkd.supply, 1, "{stage:?}");
        // And it can be issued more of at once.
        let bob = PubKey::from_x_only(
            Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[8; 32]).unwrap())
                .x_only_public_key()
                .0,
        );
        let colour = Colour {
            asset: g.asset,
            amount: AssetAmount::new(42),
        };
        issuer.issue(&lock(2), bob, colour, "lift").await.unwrap();
        stack.stop().await;
        db.destroy().await;
    }
}
