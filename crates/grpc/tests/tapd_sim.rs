//! `TapdClient` against the tapd simulator (next to the lnd simulator) over
//! real TLS sockets: minting, listing, balances, proofs, asset invoices and
//! asset payments, with positive and negative cases.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ark_relay_core::backends::assets::{
    AssetInvoiceRequest, AssetPaymentUpdate, Assets, BatchState, MintRequest,
};
use ark_relay_core::backends::lightning::{
    BackendErrorKind, InvoiceState, Lightning, PaymentStatus, Preimage, SendPayment,
};
use ark_relay_core::{AssetAmount, AssetId};
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_grpc::resilience::{Backoff, BreakerConfig, HealthRegistry, Resilience};
use ark_relay_grpc::tapd::TapdClient;
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{MakeExternalInvoiceRequest, PayInvoiceRequest};
use ark_relay_proto::simrpc::tapd::tapd_sim_client::TapdSimClient;
use ark_relay_proto::simrpc::tapd::IssueProofRequest;
use ark_relay_sim::chain::Chain;
use ark_relay_sim::lnd::{LnServer, LndSim, LndSimConfig};
use ark_relay_sim::tapd::{TapdSim, TapdSimConfig};
use futures::StreamExt;
use tonic::service::interceptor::InterceptedService;

struct Fixture {
    lnd_sim: LndSim,
    tapd_sim: TapdSim,
    servers: Vec<LnServer>,
    lnd: LndClient,
    tapd: TapdClient,
    lnd_cfg: DaemonConfig,
    tapd_cfg: DaemonConfig,
}

fn fast(name: &str) -> Resilience {
    Resilience::with_config(
        name,
        &HealthRegistry::new(),
        BreakerConfig::default(),
        Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
    )
}

async fn start() -> Fixture {
    let lnd_sim = LndSim::new(Chain::new(300), LndSimConfig::default()).unwrap();
    let tapd_sim = TapdSim::new(lnd_sim.clone(), TapdSimConfig::default()).unwrap();
    let lnd_server = lnd_sim.clone().spawn(0).await.unwrap();
    let tapd_server = tapd_sim.clone().spawn(0).await.unwrap();
    let lnd_cfg = DaemonConfig::new(
        lnd_server.url(),
        lnd_sim.tls_cert_pem().map(|c| c.as_bytes().to_vec()),
        Some(lnd_sim.macaroon().to_vec()),
    );
    let tapd_cfg = DaemonConfig::new(
        tapd_server.url(),
        tapd_sim.tls_cert_pem().map(|c| c.as_bytes().to_vec()),
        Some(tapd_sim.macaroon().to_vec()),
    );
    Fixture {
        lnd: LndClient::with_resilience(&lnd_cfg, fast("lnd")).unwrap(),
        tapd: TapdClient::with_resilience(&tapd_cfg, fast("tapd")).unwrap(),
        lnd_sim,
        tapd_sim,
        servers: vec![lnd_server, tapd_server],
        lnd_cfg,
        tapd_cfg,
    }
}

impl Fixture {
    async fn stop(self) {
        for s in self.servers {
            s.stop().await;
        }
    }

    async fn mint(&self, name: &str, amount: u64) -> AssetId {
        self.tapd
            .mint_asset(MintRequest {
                name: name.into(),
                amount: AssetAmount::new(amount),
                meta: b"{}".to_vec(),
                decimal_display: 0,
            })
            .await
            .unwrap();
        self.tapd.finalize_batch(0).await.unwrap();
        self.lnd_sim.chain().mine(1);
        self.tapd
            .list_assets()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.name == name)
            .unwrap()
            .asset_id
    }
}

fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn mint_finalize_confirm_then_list_and_balance() {
    let f = start().await;
    let staged = f
        .tapd
        .mint_asset(MintRequest {
            name: "gBTC".into(),
            amount: AssetAmount::new(1_000_000),
            meta: vec![],
            decimal_display: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        (staged.state, staged.asset_names.as_slice()),
        (BatchState::Pending, &["gBTC".to_owned()][..])
    );
    assert!(f.tapd.list_assets().await.unwrap().is_empty());
    let dup = f
        .tapd
        .mint_asset(MintRequest {
            name: "gBTC".into(),
            amount: AssetAmount::new(1),
            meta: vec![],
            decimal_display: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(dup.kind, BackendErrorKind::AlreadyExists);
    let zero = f
        .tapd
        .mint_asset(MintRequest {
            name: "z".into(),
            amount: AssetAmount::ZERO,
            meta: vec![],
            decimal_display: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(zero.kind, BackendErrorKind::InvalidArgument);

    let batch = f.tapd.finalize_batch(0).await.unwrap();
    assert_eq!(batch.state, BatchState::Broadcast);
    let txid: bitcoin::Txid = batch.batch_txid.parse().unwrap();
    assert_eq!(f.lnd_sim.chain().mempool(), vec![txid]);
    assert!(
        f.tapd.list_assets().await.unwrap().is_empty(),
        "not before a block"
    );
    let none = f.tapd.finalize_batch(0).await.unwrap_err();
    assert_eq!(none.kind, BackendErrorKind::FailedPrecondition);

    f.lnd_sim.chain().mine(1);
    let assets = f.tapd.list_assets().await.unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(
        (assets[0].name.as_str(), assets[0].amount.get()),
        ("gBTC", 1_000_000)
    );
    let balances = f.tapd.list_balances().await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(
        (balances[0].asset_id, balances[0].balance.get()),
        (assets[0].asset_id, 1_000_000)
    );
    f.stop().await;
}

#[tokio::test]
async fn proofs_verify_insert_and_reject_tampering() {
    let f = start().await;
    let mut admin = TapdSimClient::new(InterceptedService::new(
        connect(&f.tapd_cfg).unwrap(),
        MacaroonInterceptor::new(f.tapd_cfg.macaroon.as_deref()),
    ));
    let id = AssetId::from_bytes([9; 32]);
    let proof = admin
        .issue_proof(IssueProofRequest {
            asset_id: id.as_bytes().to_vec(),
            amount: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .raw_proof_file;
    let v = f.tapd.verify_proof(&proof).await.unwrap();
    assert!(v.valid);
    assert_eq!((v.asset_id, v.amount.get()), (Some(id), 500));
    let mut tampered = proof.clone();
    tampered[45] ^= 1; // the amount
    let v = f.tapd.verify_proof(&tampered).await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.asset_id, None);

    let e = f.tapd.insert_proof(id, &tampered).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    let e = f
        .tapd
        .insert_proof(AssetId::from_bytes([8; 32]), &proof)
        .await
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);

    // Before insertion the asset is unknown to tapd: no invoice for it.
    let req = AssetInvoiceRequest {
        asset_id: id,
        asset_amount: AssetAmount::new(10),
        peer_pubkey: None,
        hodl_hash: None,
        memo: "lift".into(),
        expiry_secs: 0,
    };
    let e = f.tapd.add_invoice(req.clone()).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NotFound);
    assert_eq!(
        e.error_code(),
        ark_relay_core::ErrorCode::UnknownVtxoOrAsset
    );
    f.tapd.insert_proof(id, &proof).await.unwrap();
    f.tapd.add_invoice(req).await.unwrap();
    f.stop().await;
}

#[tokio::test]
async fn asset_hold_invoice_is_priced_by_a_300_second_quote_and_settles_through_lnd() {
    let f = start().await;
    let id = f.mint("gBTC", 1_000_000).await;
    let pre = Preimage([51; 32]);
    let before = unix();
    let inv = f
        .tapd
        .add_invoice(AssetInvoiceRequest {
            asset_id: id,
            asset_amount: AssetAmount::new(2_500),
            peer_pubkey: None,
            hodl_hash: Some(pre.hash()),
            memo: "lift 2500 gBTC".into(),
            expiry_secs: 3600,
        })
        .await
        .unwrap();
    assert_eq!(inv.hash, pre.hash());
    let q = &inv.quote;
    assert!(q.expiry_unix >= before + 300 && q.expiry_unix <= unix() + 300);
    assert_eq!(q.scid, u64::from_be_bytes(q.id[24..32].try_into().unwrap()));
    assert_eq!(
        (q.rate_coefficient.as_str(), q.rate_scale),
        ("100000000", 0)
    );
    assert_eq!(q.peer, f.tapd_sim.peer_pubkey());

    let bolt: lightning_invoice::Bolt11Invoice = inv.payment_request.parse().unwrap();
    assert_eq!(
        bolt.amount_milli_satoshis(),
        Some(2_500_000),
        "1 unit = 1 sat at 10^8 units/BTC"
    );
    assert_eq!(
        bolt.expiry_time(),
        Duration::from_secs(300),
        "capped at the quote's expiry"
    );
    let hint = &bolt.route_hints()[0].0[0];
    assert_eq!(
        (hint.short_channel_id, hint.src_node_id.to_string()),
        (q.scid, q.peer.clone())
    );

    // The hold invoice lives in lnd: paid by the external payer, settled with the preimage.
    let mut admin = LndSimClient::new(InterceptedService::new(
        connect(&f.lnd_cfg).unwrap(),
        MacaroonInterceptor::new(f.lnd_cfg.macaroon.as_deref()),
    ));
    admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: inv.payment_request.clone(),
            amt_msat: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        f.lnd.lookup_invoice(pre.hash()).await.unwrap().state,
        InvoiceState::Accepted
    );
    f.lnd.settle_invoice(pre).await.unwrap();
    assert_eq!(
        f.lnd.lookup_invoice(pre.hash()).await.unwrap().state,
        InvoiceState::Settled
    );

    // Unknown edge peer.
    let e = f
        .tapd
        .add_invoice(AssetInvoiceRequest {
            asset_id: id,
            asset_amount: AssetAmount::new(1),
            peer_pubkey: Some(vec![2; 33]),
            hodl_hash: None,
            memo: String::new(),
            expiry_secs: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::FailedPrecondition);
    f.stop().await;
}

#[tokio::test]
async fn asset_payment_streams_sell_quote_then_payment_and_debits_the_asset() {
    let f = start().await;
    let id = f.mint("USDx", 10_000).await;
    let mut admin = LndSimClient::new(InterceptedService::new(
        connect(&f.lnd_cfg).unwrap(),
        MacaroonInterceptor::new(f.lnd_cfg.macaroon.as_deref()),
    ));
    let ext = admin
        .make_external_invoice(MakeExternalInvoiceRequest {
            amt_msat: 4_000_000,
            memo: "land".into(),
            expiry_secs: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let send = SendPayment {
        payment_request: ext.payment_request.clone(),
        amt_msat: None,
        fee_limit_msat: 5_000,
        timeout_seconds: 60,
    };
    let mut s = f.tapd.send_payment(id, None, send.clone()).await.unwrap();
    match s.next().await.unwrap().unwrap() {
        AssetPaymentUpdate::Quote(q) => {
            assert_eq!(q.scid, u64::from_be_bytes(q.id[24..32].try_into().unwrap()))
        }
        other => panic!("expected the sell quote first, got {other:?}"),
    }
    let mut last = None;
    while let Some(u) = s.next().await {
        if let AssetPaymentUpdate::Payment(p) = u.unwrap() {
            last = Some(p);
        }
    }
    let p = last.unwrap();
    assert_eq!(p.status, PaymentStatus::Succeeded);
    assert_eq!(p.preimage.map(|x| x.0.to_vec()), Some(ext.preimage));
    let bal = f.tapd.list_balances().await.unwrap();
    assert_eq!(bal[0].balance.get(), 6_000);

    // One payment per hash, through tapd as through lnd.
    let e = f
        .tapd
        .send_payment(id, None, send.clone())
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, BackendErrorKind::AlreadyExists);
    // Not enough units.
    let big = admin
        .make_external_invoice(MakeExternalInvoiceRequest {
            amt_msat: 7_000_000,
            memo: "x".into(),
            expiry_secs: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let e = f
        .tapd
        .send_payment(
            id,
            None,
            SendPayment {
                payment_request: big.payment_request,
                ..send
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, BackendErrorKind::FailedPrecondition);
    f.stop().await;
}

#[tokio::test]
async fn tapd_requires_its_own_macaroon() {
    let f = start().await;
    let lnd_mac = DaemonConfig {
        macaroon: f.lnd_cfg.macaroon.clone(),
        ..f.tapd_cfg.clone()
    };
    let c = TapdClient::with_resilience(&lnd_mac, fast("tapd")).unwrap();
    assert_eq!(
        c.list_assets().await.unwrap_err().kind,
        BackendErrorKind::Unauthenticated
    );
    f.stop().await;
}

#[tokio::test]
async fn sim_stack_starts_lnd_and_tapd_with_daemon_style_credentials() {
    let stack = ark_relay_sim::SimStack::start(ark_relay_sim::SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    stack.write_credentials(dir.path()).unwrap();
    let ep = stack.endpoints();
    assert!(ep.lnd.url.starts_with("https://127.0.0.1:") && ep.tapd.url.starts_with("https://"));
    let lnd_cfg = DaemonConfig::from_files(
        ep.lnd.url.clone(),
        Some(&dir.path().join("lnd/tls.cert")),
        Some(&dir.path().join("lnd/admin.macaroon")),
    )
    .unwrap();
    let tapd_cfg = DaemonConfig::from_files(
        ep.tapd.url.clone(),
        Some(&dir.path().join("tapd/tls.cert")),
        Some(&dir.path().join("tapd/admin.macaroon")),
    )
    .unwrap();
    assert_eq!(
        hex::encode(lnd_cfg.macaroon.as_deref().unwrap()),
        ep.lnd.macaroon_hex
    );
    let health = HealthRegistry::new();
    let lnd = LndClient::new(&lnd_cfg, &health).unwrap();
    let tapd = TapdClient::new(&tapd_cfg, &health).unwrap();
    assert_eq!(
        lnd.get_info().await.unwrap().block_height,
        stack.chain.height()
    );
    assert!(tapd.list_assets().await.unwrap().is_empty());
    let names: Vec<String> = health.snapshot().into_iter().map(|v| v.backend).collect();
    assert_eq!(names, vec!["lnd".to_owned(), "tapd".to_owned()]);
    stack.stop().await;
}
