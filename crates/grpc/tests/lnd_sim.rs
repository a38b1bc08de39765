//! `LndClient` against the lnd simulator over real TLS sockets: every RPC of
//! the `Lightning` port, every sim rule with a positive and a negative case,
//! authentication, certificate pinning and resilience.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ark_relay_core::backends::lightning::{
    BackendErrorKind, FailureReason, HoldInvoiceRequest, InvoiceCursor, InvoiceState, Lightning,
    PaymentHash, PaymentStatus, Preimage, SendPayment,
};
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_grpc::resilience::{
    Backoff, BreakerConfig, BreakerState, HealthRegistry, Resilience,
};
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{
    DropInvoiceStreamsRequest, MakeExternalInvoiceRequest, PayInvoiceRequest, PaymentOutcome,
    ResolvePaymentRequest, ScriptPaymentRequest, SetBalancesRequest,
};
use ark_relay_sim::chain::Chain;
use ark_relay_sim::lnd::auth::TlsIdentity;
use ark_relay_sim::lnd::{LnServer, LndSim, LndSimConfig};
use futures::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Admin = LndSimClient<InterceptedService<Channel, MacaroonInterceptor>>;

struct Fixture {
    sim: LndSim,
    server: LnServer,
    client: LndClient,
    admin: Admin,
    cfg: DaemonConfig,
    _dir: tempfile::TempDir,
}

fn fast(registry: &HealthRegistry, breaker: BreakerConfig) -> Resilience {
    Resilience::with_config(
        "lnd",
        registry,
        breaker,
        Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
    )
}

async fn start() -> Fixture {
    let chain = Chain::new(500);
    let sim = LndSim::new(chain, LndSimConfig::default()).unwrap();
    let server = sim.clone().spawn(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.cert");
    let mac = dir.path().join("admin.macaroon");
    std::fs::write(&cert, sim.tls_cert_pem().unwrap()).unwrap();
    std::fs::write(&mac, sim.macaroon()).unwrap();
    let cfg = DaemonConfig::from_files(server.url(), Some(&cert), Some(&mac)).unwrap();
    let client =
        LndClient::with_resilience(&cfg, fast(&HealthRegistry::new(), BreakerConfig::default()))
            .unwrap();
    let admin = LndSimClient::new(InterceptedService::new(
        connect(&cfg).unwrap(),
        MacaroonInterceptor::new(cfg.macaroon.as_deref()),
    ));
    Fixture {
        sim,
        server,
        client,
        admin,
        cfg,
        _dir: dir,
    }
}

fn hold(pre: Preimage, cltv: u64) -> HoldInvoiceRequest {
    HoldInvoiceRequest {
        hash: pre.hash(),
        value_msat: 150_000,
        memo: "lift 150 sat".into(),
        expiry_secs: 3600,
        cltv_expiry: cltv,
    }
}

#[tokio::test]
async fn hold_invoice_open_accepted_settled_over_grpc() {
    let mut f = start().await;
    let pre = Preimage([11; 32]);
    let added = f.client.add_hold_invoice(hold(pre, 80)).await.unwrap();
    assert_eq!(added.add_index, 1);
    let parsed: lightning_invoice::Bolt11Invoice = added.payment_request.parse().unwrap();
    assert_eq!(parsed.currency(), lightning_invoice::Currency::Regtest);
    assert_eq!(parsed.payment_hash().to_string(), pre.hash().to_string());
    assert_eq!(parsed.amount_milli_satoshis(), Some(150_000));

    let dup = f.client.add_hold_invoice(hold(pre, 80)).await.unwrap_err();
    assert_eq!(dup.kind, BackendErrorKind::AlreadyExists);

    let mut updates = f.client.subscribe_single_invoice(pre.hash()).await.unwrap();
    assert_eq!(
        updates.next().await.unwrap().unwrap().state,
        InvoiceState::Open
    );

    let open = f.client.settle_invoice(pre).await.unwrap_err();
    assert_eq!(open.kind, BackendErrorKind::FailedPrecondition);

    let paid = f
        .admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: added.payment_request.clone(),
            amt_msat: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.htlc_expiry_height, 580);
    let accepted = updates.next().await.unwrap().unwrap();
    assert_eq!(accepted.state, InvoiceState::Accepted);
    assert_eq!(accepted.amt_paid_msat, 150_000);
    assert_eq!(accepted.min_htlc_expiry(), Some(580));
    assert_eq!(
        f.client.lookup_invoice(pre.hash()).await.unwrap().state,
        InvoiceState::Accepted
    );
    assert_eq!(
        f.client
            .channel_balance()
            .await
            .unwrap()
            .unsettled_local_msat,
        150_000
    );

    f.client.settle_invoice(pre).await.unwrap();
    let settled = updates.next().await.unwrap().unwrap();
    assert_eq!(
        (settled.state, settled.settle_index),
        (InvoiceState::Settled, 1)
    );
    assert!(
        updates.next().await.is_none(),
        "stream ends after a final state"
    );
    f.client.settle_invoice(pre).await.unwrap();
    let cancel = f.client.cancel_invoice(pre.hash()).await.unwrap_err();
    assert_eq!(cancel.kind, BackendErrorKind::FailedPrecondition);
    assert_eq!(
        f.client
            .lookup_invoice(PaymentHash([1; 32]))
            .await
            .unwrap_err()
            .kind,
        BackendErrorKind::NotFound
    );
    f.server.stop().await;
}

#[tokio::test]
async fn hold_invoice_cancel_and_auto_cancel_eighteen_blocks_before_htlc_expiry() {
    let mut f = start().await;
    let pre = Preimage([12; 32]);
    let added = f.client.add_hold_invoice(hold(pre, 40)).await.unwrap();
    f.admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: added.payment_request,
            amt_msat: 0,
        })
        .await
        .unwrap();
    // HTLC expires at 540; lnd cancels at 540 - 18 = 522.
    f.sim.chain().mine(21);
    assert_eq!(
        f.client.lookup_invoice(pre.hash()).await.unwrap().state,
        InvoiceState::Accepted
    );
    f.sim.chain().mine(1);
    assert_eq!(f.client.block_height().await.unwrap(), 522);
    assert_eq!(
        f.client.lookup_invoice(pre.hash()).await.unwrap().state,
        InvoiceState::Canceled
    );
    let late = f.client.settle_invoice(pre).await.unwrap_err();
    assert_eq!(late.kind, BackendErrorKind::FailedPrecondition);
    f.client.cancel_invoice(pre.hash()).await.unwrap();

    // Explicit cancel of an accepted invoice.
    let pre2 = Preimage([13; 32]);
    let added = f.client.add_hold_invoice(hold(pre2, 80)).await.unwrap();
    f.admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: added.payment_request.clone(),
            amt_msat: 0,
        })
        .await
        .unwrap();
    f.client.cancel_invoice(pre2.hash()).await.unwrap();
    let inv = f.client.lookup_invoice(pre2.hash()).await.unwrap();
    assert_eq!(inv.state, InvoiceState::Canceled);
    assert!(inv.min_htlc_expiry().is_none());
    // A canceled invoice cannot be paid again.
    let again = f
        .admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: added.payment_request,
            amt_msat: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    f.server.stop().await;
}

#[tokio::test]
async fn subscribe_invoices_replays_from_add_and_settle_indexes_then_goes_live() {
    let mut f = start().await;
    let pres: Vec<Preimage> = (21u8..24).map(|b| Preimage([b; 32])).collect();
    for p in &pres {
        let added = f.client.add_hold_invoice(hold(*p, 80)).await.unwrap();
        f.admin
            .pay_invoice(PayInvoiceRequest {
                payment_request: added.payment_request,
                amt_msat: 0,
            })
            .await
            .unwrap();
    }
    f.client.settle_invoice(pres[0]).await.unwrap();
    f.client.settle_invoice(pres[2]).await.unwrap();

    let mut s = f
        .client
        .subscribe_invoices(InvoiceCursor {
            add_index: 1,
            settle_index: 1,
        })
        .await
        .unwrap();
    let a = s.next().await.unwrap().unwrap();
    let b = s.next().await.unwrap().unwrap();
    assert_eq!((a.add_index, b.add_index), (2, 3));
    let settle = s.next().await.unwrap().unwrap();
    assert_eq!(
        (settle.hash, settle.settle_index, settle.state),
        (pres[2].hash(), 2, InvoiceState::Settled)
    );
    // Live: a new add arrives.
    let p4 = Preimage([24; 32]);
    f.client.add_hold_invoice(hold(p4, 80)).await.unwrap();
    let live = s.next().await.unwrap().unwrap();
    assert_eq!((live.hash, live.add_index), (p4.hash(), 4));

    // The connection drops; what happened meanwhile is replayed from the cursor.
    f.admin
        .drop_invoice_streams(DropInvoiceStreamsRequest {
            payment_hash: p4.hash().0.to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    let p5 = Preimage([25; 32]);
    f.client.add_hold_invoice(hold(p5, 80)).await.unwrap();
    f.client.settle_invoice(pres[1]).await.unwrap();
    let mut s = f
        .client
        .subscribe_invoices(InvoiceCursor {
            add_index: 4,
            settle_index: 2,
        })
        .await
        .unwrap();
    let missed = s.next().await.unwrap().unwrap();
    assert_eq!((missed.hash, missed.add_index), (p5.hash(), 5));
    let settled = s.next().await.unwrap().unwrap();
    assert_eq!((settled.hash, settled.settle_index), (pres[1].hash(), 3));
    f.server.stop().await;
}

async fn external(admin: &mut Admin, msat: u64) -> (String, PaymentHash, Preimage) {
    let r = admin
        .make_external_invoice(MakeExternalInvoiceRequest {
            amt_msat: msat,
            memo: "land".into(),
            expiry_secs: 0,
        })
        .await
        .unwrap()
        .into_inner();
    (
        r.payment_request,
        PaymentHash::from_slice(&r.payment_hash).unwrap(),
        Preimage::from_slice(&r.preimage).unwrap(),
    )
}

fn pay(pr: &str) -> SendPayment {
    SendPayment {
        payment_request: pr.to_owned(),
        amt_msat: None,
        fee_limit_msat: 10_000,
        timeout_seconds: 60,
    }
}

#[tokio::test]
async fn control_tower_one_payment_per_hash_and_track() {
    let mut f = start().await;
    let (pr, hash, _) = external(&mut f.admin, 99_000).await;
    let unknown = f.client.track_payment(hash).await;
    assert_eq!(
        unknown.err().map(|e| e.kind),
        Some(BackendErrorKind::NotFound)
    );

    let mut s = f.client.send_payment(pay(&pr)).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap().status,
        PaymentStatus::InFlight
    );
    let done = s.next().await.unwrap().unwrap();
    assert_eq!(done.status, PaymentStatus::Succeeded);
    assert!(done.preimage.unwrap().proves(&hash));
    assert_eq!((done.value_msat, done.fee_msat), (99_000, 1_000));
    assert!(s.next().await.is_none());

    let second = f.client.send_payment(pay(&pr)).await.err().unwrap();
    assert_eq!(second.kind, BackendErrorKind::AlreadyExists);
    let mut t = f.client.track_payment(hash).await.unwrap();
    assert_eq!(
        t.next().await.unwrap().unwrap().status,
        PaymentStatus::Succeeded
    );

    // A foreign invoice with no route fails NO_ROUTE; a fee limit below the fee fails too.
    let (pr2, _, _) = external(&mut f.admin, 5_000).await;
    let mut s = f
        .client
        .send_payment(SendPayment {
            fee_limit_msat: 10,
            ..pay(&pr2)
        })
        .await
        .unwrap();
    s.next().await.unwrap().unwrap();
    let failed = s.next().await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.failure_reason),
        (PaymentStatus::Failed, FailureReason::NoRoute)
    );
    // A failed payment may be sent again.
    let mut s = f.client.send_payment(pay(&pr2)).await.unwrap();
    s.next().await.unwrap().unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap().status,
        PaymentStatus::Succeeded
    );
    f.server.stop().await;
}

#[tokio::test]
async fn scripted_payment_faults() {
    let mut f = start().await;
    let script = |hash: PaymentHash, outcome: PaymentOutcome| ScriptPaymentRequest {
        payment_hash: hash.0.to_vec(),
        outcome: outcome as i32,
        fee_msat: 500,
    };
    // NO_ROUTE vs INCORRECT_PAYMENT_DETAILS.
    for (outcome, reason) in [
        (PaymentOutcome::FailNoRoute, FailureReason::NoRoute),
        (
            PaymentOutcome::FailIncorrectPaymentDetails,
            FailureReason::IncorrectPaymentDetails,
        ),
    ] {
        let (pr, hash, _) = external(&mut f.admin, 1_000).await;
        f.admin.script_payment(script(hash, outcome)).await.unwrap();
        let mut s = f.client.send_payment(pay(&pr)).await.unwrap();
        s.next().await.unwrap().unwrap();
        let p = s.next().await.unwrap().unwrap();
        assert_eq!(
            (p.status, p.failure_reason),
            (PaymentStatus::Failed, reason)
        );
        assert_eq!(
            p.failure_reason.is_permanent(),
            reason == FailureReason::IncorrectPaymentDetails
        );
    }

    // Stuck in flight: second send refused, track waits, resolution arrives.
    let (pr, hash, _) = external(&mut f.admin, 2_000).await;
    f.admin
        .script_payment(script(hash, PaymentOutcome::StuckInFlight))
        .await
        .unwrap();
    let mut s = f.client.send_payment(pay(&pr)).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap().status,
        PaymentStatus::InFlight
    );
    let busy = f.client.send_payment(pay(&pr)).await.err().unwrap();
    assert_eq!(busy.kind, BackendErrorKind::AlreadyExists);
    let mut t = f.client.track_payment(hash).await.unwrap();
    assert_eq!(
        t.next().await.unwrap().unwrap().status,
        PaymentStatus::InFlight
    );
    let nothing = tokio::time::timeout(Duration::from_millis(100), t.next()).await;
    assert!(nothing.is_err(), "an in-flight payment stays in flight");
    f.admin
        .resolve_payment(ResolvePaymentRequest {
            payment_hash: hash.0.to_vec(),
            succeed: true,
            failure_reason: 0,
        })
        .await
        .unwrap();
    let done = t.next().await.unwrap().unwrap();
    assert_eq!(done.status, PaymentStatus::Succeeded);
    assert_eq!(
        s.next().await.unwrap().unwrap().status,
        PaymentStatus::Succeeded
    );

    // Stream drops mid-payment; the payment still succeeds (track it).
    let (pr, hash, pre) = external(&mut f.admin, 3_000).await;
    f.admin
        .script_payment(script(hash, PaymentOutcome::DropStreamThenSucceed))
        .await
        .unwrap();
    let mut s = f.client.send_payment(pay(&pr)).await.unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap().status,
        PaymentStatus::InFlight
    );
    let dropped = s.next().await.unwrap().unwrap_err();
    assert_eq!(dropped.kind, BackendErrorKind::Unavailable);
    let mut t = f.client.track_payment(hash).await.unwrap();
    let p = t.next().await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.preimage),
        (PaymentStatus::Succeeded, Some(pre))
    );

    // Insufficient balance.
    f.admin
        .set_balances(SetBalancesRequest {
            local_msat: 100,
            remote_msat: 0,
            wallet_confirmed_sat: 7,
            wallet_unconfirmed_sat: 3,
        })
        .await
        .unwrap();
    let (pr, _, _) = external(&mut f.admin, 3_000).await;
    let mut s = f.client.send_payment(pay(&pr)).await.unwrap();
    s.next().await.unwrap().unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap().failure_reason,
        FailureReason::InsufficientBalance
    );
    let w = f.client.wallet_balance().await.unwrap();
    assert_eq!(
        (w.total.get(), w.confirmed.get(), w.unconfirmed.get()),
        (10, 7, 3)
    );
    f.server.stop().await;
}

#[tokio::test]
async fn invoice_stream_drop_is_injected_per_hash() {
    let mut f = start().await;
    let pre = Preimage([31; 32]);
    let other = Preimage([32; 32]);
    f.client.add_hold_invoice(hold(pre, 80)).await.unwrap();
    f.client.add_hold_invoice(hold(other, 80)).await.unwrap();
    let mut s = f.client.subscribe_single_invoice(pre.hash()).await.unwrap();
    let mut o = f
        .client
        .subscribe_single_invoice(other.hash())
        .await
        .unwrap();
    s.next().await.unwrap().unwrap();
    o.next().await.unwrap().unwrap();
    f.admin
        .drop_invoice_streams(DropInvoiceStreamsRequest {
            payment_hash: pre.hash().0.to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(
        s.next().await.unwrap().unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    assert!(tokio::time::timeout(Duration::from_millis(100), o.next())
        .await
        .is_err());
    // Re-subscribing gives the current state first.
    let mut again = f.client.subscribe_single_invoice(pre.hash()).await.unwrap();
    assert_eq!(
        again.next().await.unwrap().unwrap().state,
        InvoiceState::Open
    );
    f.server.stop().await;
}

#[tokio::test]
async fn decode_pay_req_accepts_regtest_and_refuses_other_networks() {
    let f = start().await;
    let pre = Preimage([41; 32]);
    let added = f.client.add_hold_invoice(hold(pre, 90)).await.unwrap();
    let d = f
        .client
        .decode_pay_req(&added.payment_request)
        .await
        .unwrap();
    assert_eq!(
        (d.hash, d.num_msat, d.cltv_expiry, d.expiry),
        (pre.hash(), 150_000, 90, 3600)
    );
    assert_eq!(d.destination, f.sim.node_id());
    assert_eq!(d.description, "lift 150 sat");

    use bitcoin::hashes::{sha256, Hash};
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[3; 32]).unwrap();
    let mainnet = lightning_invoice::InvoiceBuilder::new(lightning_invoice::Currency::Bitcoin)
        .description("x".into())
        .payment_hash(sha256::Hash::hash(&[1]))
        .payment_secret(lightning_invoice::PaymentSecret([2; 32]))
        .amount_milli_satoshis(1000)
        .current_timestamp()
        .min_final_cltv_expiry_delta(40)
        .build_signed(|h| secp.sign_ecdsa_recoverable(h, &key))
        .unwrap()
        .to_string();
    let e = f.client.decode_pay_req(&mainnet).await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    assert_eq!(e.error_code(), ark_relay_core::ErrorCode::InvalidInvoice);
    let e = f.client.decode_pay_req("lnbcrt1garbage").await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    // Paying a mainnet invoice is refused before any attempt.
    let e = f.client.send_payment(pay(&mainnet)).await.err().unwrap();
    assert_eq!(e.kind, BackendErrorKind::InvalidArgument);
    f.server.stop().await;
}

#[tokio::test]
async fn info_balances_and_fee_estimate() {
    let f = start().await;
    let info = f.client.get_info().await.unwrap();
    assert_eq!(
        (
            info.network.as_str(),
            info.block_height,
            info.synced_to_chain
        ),
        ("regtest", 500, true)
    );
    assert_eq!(info.identity_pubkey, f.sim.node_id());
    assert_eq!(f.client.estimate_fee_rate(6).await.unwrap(), 25);
    f.sim.chain().set_fee_rate(7);
    assert_eq!(f.client.estimate_fee_rate(6).await.unwrap(), 7);
    assert_eq!(
        f.client.estimate_fee_rate(0).await.unwrap_err().kind,
        BackendErrorKind::InvalidArgument
    );
    let cb = f.client.channel_balance().await.unwrap();
    assert_eq!(
        (cb.local_msat, cb.remote_msat),
        (100_000_000_000, 100_000_000_000)
    );
    f.sim.chain().mine(3);
    assert_eq!(f.client.block_height().await.unwrap(), 503);
    f.server.stop().await;
}

#[tokio::test]
async fn macaroon_is_required_and_checked() {
    let f = start().await;
    for mac in [None, Some(b"not the macaroon".to_vec())] {
        let cfg = DaemonConfig {
            macaroon: mac,
            ..f.cfg.clone()
        };
        let c = LndClient::with_resilience(
            &cfg,
            fast(&HealthRegistry::new(), BreakerConfig::default()),
        )
        .unwrap();
        let e = c.get_info().await.unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Unauthenticated);
        assert_eq!(
            c.resilience().breaker().state(),
            BreakerState::Closed,
            "auth errors are final"
        );
    }
    f.server.stop().await;
}

#[tokio::test]
async fn only_the_pinned_certificate_is_trusted() {
    let f = start().await;
    let other = TlsIdentity::generate("someone else").unwrap();
    let cfg = DaemonConfig {
        tls_cert_pem: Some(other.cert_pem.into_bytes()),
        ..f.cfg.clone()
    };
    let c =
        LndClient::with_resilience(&cfg, fast(&HealthRegistry::new(), BreakerConfig::default()))
            .unwrap();
    assert_eq!(
        c.get_info().await.unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    // Plaintext to a TLS server fails as well; https without a cert is refused up front.
    let plain = DaemonConfig {
        url: f.cfg.url.replace("https", "http"),
        ..f.cfg.clone()
    };
    let c = LndClient::with_resilience(
        &plain,
        fast(&HealthRegistry::new(), BreakerConfig::default()),
    )
    .unwrap();
    assert!(c.get_info().await.is_err());
    let nocert = DaemonConfig {
        tls_cert_pem: None,
        ..f.cfg.clone()
    };
    assert!(LndClient::new(&nocert, &HealthRegistry::new()).is_err());
    f.server.stop().await;
}

#[tokio::test]
async fn plaintext_sim_for_simple_tests() {
    let sim = LndSim::new(
        Chain::default(),
        LndSimConfig {
            tls: false,
            ..LndSimConfig::default()
        },
    )
    .unwrap();
    let server = sim.clone().spawn(0).await.unwrap();
    assert!(server.url().starts_with("http://"));
    let cfg = DaemonConfig::new(server.url(), None, Some(sim.macaroon().to_vec()));
    let c = LndClient::new(&cfg, &HealthRegistry::new()).unwrap();
    assert_eq!(c.get_info().await.unwrap().block_height, 101);
    server.stop().await;
}

#[tokio::test]
async fn breaker_opens_when_lnd_is_down_and_closes_when_it_is_back() {
    let f = start().await;
    let registry = HealthRegistry::new();
    let open_for = Duration::from_millis(300);
    let client = LndClient::with_resilience(
        &f.cfg,
        fast(
            &registry,
            BreakerConfig {
                failure_threshold: 5,
                open_for,
            },
        ),
    )
    .unwrap();
    assert_eq!(client.block_height().await.unwrap(), 500);
    let port = f.server.addr().port();
    f.server.stop().await;

    // get_info retries with backoff (4 attempts); the second call's failures open the breaker at 5.
    let e = client.get_info().await.unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Unavailable);
    assert_eq!(client.resilience().breaker().state(), BreakerState::Closed);
    // The 5th failure opens the breaker and returns at once; the next call is refused.
    assert_eq!(
        client.get_info().await.unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    let e = client.get_info().await.unwrap_err();
    assert!(e.message.contains("circuit breaker open"), "{e}");
    let view = registry.snapshot();
    assert_eq!(
        (view[0].state, view[0].consecutive_failures),
        (BreakerState::Open, 5)
    );
    assert!(!view[0].is_healthy());

    // Back on the same port; after the open period one probe goes through and closes it.
    let server = f.sim.clone().spawn(port).await.unwrap();
    assert!(client.get_info().await.is_err(), "still open");
    tokio::time::sleep(open_for).await;
    assert_eq!(
        client.resilience().breaker().state(),
        BreakerState::HalfOpen
    );
    assert_eq!(client.block_height().await.unwrap(), 500);
    assert_eq!(client.resilience().breaker().state(), BreakerState::Closed);
    assert!(registry.snapshot()[0].is_healthy());
    server.stop().await;
}

/// The production schedule (backoff 1 s → 30 s, open after 5, half-open after
/// 60 s) on a paused clock: no real sleeping. Timeouts are off so that the
/// paused clock cannot fire them while real socket I/O is pending.
#[tokio::test(start_paused = true)]
async fn production_breaker_schedule_on_a_paused_clock() {
    let f = start().await;
    let cfg = DaemonConfig {
        timeout: None,
        connect_timeout: None,
        ..f.cfg.clone()
    };
    let registry = HealthRegistry::new();
    let client = LndClient::new(&cfg, &registry).unwrap();
    assert_eq!(client.block_height().await.unwrap(), 500);
    let port = f.server.addr().port();
    f.server.stop().await;

    let t0 = tokio::time::Instant::now();
    assert_eq!(
        client.get_info().await.unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    assert_eq!(
        t0.elapsed().as_secs(),
        1 + 2 + 4,
        "4 attempts, backoff 1 s, 2 s, 4 s"
    );
    assert_eq!(client.resilience().breaker().state(), BreakerState::Closed);
    assert_eq!(
        client.get_info().await.unwrap_err().kind,
        BackendErrorKind::Unavailable
    );
    assert_eq!(
        t0.elapsed().as_secs(),
        7,
        "the 5th failure opens the breaker: no more waiting"
    );
    assert_eq!(registry.snapshot()[0].state, BreakerState::Open);
    let e = client.get_info().await.unwrap_err();
    assert!(e.message.contains("circuit breaker open"), "{e}");

    let server = f.sim.clone().spawn(port).await.unwrap();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(client.resilience().breaker().state(), BreakerState::Open);
    assert!(
        client.get_info().await.is_err(),
        "refused without touching lnd"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        client.resilience().breaker().state(),
        BreakerState::HalfOpen
    );
    assert_eq!(client.block_height().await.unwrap(), 500);
    assert_eq!(registry.snapshot()[0].state, BreakerState::Closed);
    server.stop().await;
}
