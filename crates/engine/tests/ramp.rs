//! Lifts and lands end to end over the real parts: a websocket Nostr relay,
//! MariaDB or SQLite, the arkd and lnd simulators over gRPC (lnd over TLS with
//! a macaroon), and wallets that only speak Nostr. The lnd simulator's admin
//! RPCs play the outside world: the external payer of a lift invoice and the
//! external payee of a land invoice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::lightning::{
    BackendErrorKind, DynLightning, InvoiceState, Lightning, LightningError, PaymentHash,
};
use ark_relay_core::ramp::{DynRampStore, LandStatus, LiftStatus};
use ark_relay_core::{
    AssetId, AssetType, DynStore, ErrorCode, NewAsset, NewVtxo, PubKey, Sats, SystemClock,
    UnixTime, VtxoStatus,
};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::ramp::{
    Issuer, RampConfig, RampCrashHook, RampCrashPoint, RampDriver, Ramps,
};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Periodic, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_grpc::daemon::{connect, DaemonConfig};
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::macaroon::MacaroonInterceptor;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_proto::simrpc::lnd::lnd_sim_client::LndSimClient;
use ark_relay_proto::simrpc::lnd::{
    MakeExternalInvoiceRequest, PayInvoiceRequest, PaymentOutcome, ResolvePaymentRequest,
    ScriptPaymentRequest,
};
use ark_relay_protocol::content::{AssetRef, Confirmation, IntentContent};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Keypair, Secp256k1};
use nostr::{Event, Keys};
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use common::{answers, dev_relay, spawn_signer, Wallet};

type Admin = LndSimClient<InterceptedService<Channel, MacaroonInterceptor>>;

const WAIT: Duration = Duration::from_secs(60);

struct Env {
    store: DynStore,
    ramp: DynRampStore,
    sims: SimStack,
    lnd: DynLightning,
    tapd: Option<ark_relay_core::backends::assets::DynAssets>,
    /// Jobs on real Redis Streams under this prefix (else in-process).
    redis_prefix: Option<String>,
    admin: Admin,
    relay_keys: Keys,
    relay_pk: PubKey,
    gbtc: AssetId,
    server: ServerInfo,
    nostr_url: String,
    db: Option<TestDb>,
    _nostr: ark_relay_nostr::DevRelay,
}

/// One relay process: its engine task and its ramps.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    ramps: Arc<Ramps>,
}

impl Running {
    /// Stops the process as a kill would: the engine and every payment watcher.
    async fn kill(self) {
        self.ramps.shutdown();
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

async fn env(db: TestDb) -> Env {
    let store: DynStore = Arc::new(db.store.clone());
    let ramp: DynRampStore = Arc::new(db.store.clone());
    let nostr = dev_relay().await;
    let sims = SimStack::start(SimOptions::default()).await.expect("sims");
    let server = sims.arkd.server_info().clone();
    let ep = sims.endpoints();
    let cfg = DaemonConfig::new(
        ep.lnd.url.clone(),
        ep.lnd.tls_cert_pem.clone().map(String::into_bytes),
        Some(hex::decode(&ep.lnd.macaroon_hex).unwrap()),
    );
    let lnd: DynLightning = Arc::new(LndClient::new(&cfg, &HealthRegistry::new()).unwrap());
    let admin = LndSimClient::new(InterceptedService::new(
        connect(&cfg).unwrap(),
        MacaroonInterceptor::new(cfg.macaroon.as_deref()),
    ));
    let relay_keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).unwrap();
    let mut e = Env {
        store,
        ramp,
        sims,
        lnd,
        tapd: None,
        redis_prefix: None,
        admin,
        relay_keys,
        relay_pk,
        gbtc: AssetId::from_bytes([0; 32]),
        server,
        nostr_url: nostr.url().to_owned(),
        db: Some(db),
        _nostr: nostr,
    };
    e.add_inventory(8).await;
    e.gbtc = e.genesis().await;
    e
}

/// The unit gBTC's genesis on Ark gives the relay (not circulating).
const GENESIS_UNIT: u64 = 1;

impl Env {
    /// gBTC's genesis on Ark (as a relay's gBTC task runs it): lifts are then
    /// reissuances under its control asset, valid under arkd's rules.
    async fn genesis(&self) -> AssetId {
        let ark = Arc::new(
            ArkdClient::connect(self.sims.endpoints().arkd)
                .await
                .unwrap(),
        );
        let keypair =
            Keypair::from_secret_key(&Secp256k1::signing_only(), self.relay_keys.secret_key());
        let request = ark_relay_engine::ceremony::issue::GenesisRequest {
            name: "Relay-issued BTC".into(),
            ticker: "gBTC".into(),
            decimals: 0,
            taproot_asset_id: None,
            asset_type: AssetType::RelayIssued,
        };
        Issuer::new(self.store.clone(), ark, keypair, Arc::new(SystemClock))
            .genesis(&ark_relay_core::SessionId::from_bytes([0x6e; 32]), &request)
            .await
            .unwrap()
            .asset
    }

    async fn add_inventory(&self, n: usize) {
        let mut inventory = Vec::new();
        for _ in 0..n {
            let v = self.sims.arkd.fund(&self.relay_pk, Sats::new(5_000));
            inventory.push(NewVtxo {
                id: v.outpoint.into(),
                owner: self.relay_pk,
                sats: Sats::new(v.amount),
                colour: None,
                status: VtxoStatus::Available,
                tapscripts: self.server.default_vtxo(&self.relay_pk).to_tapscripts(),
                expires_at: Some(UnixTime(v.expires_at)),
            });
        }
        self.store
            .insert_vtxos(&inventory, UnixTime::now())
            .await
            .unwrap();
    }

    /// Starts a relay process with `config` (and a crash hook).
    async fn start(&self, config: RampConfig, crash: Option<RampCrashHook>) -> Running {
        let ark = Arc::new(
            ArkdClient::connect(self.sims.endpoints().arkd)
                .await
                .unwrap(),
        );
        let mut opts = PoolOptions::new(vec![self.nostr_url.clone()]);
        opts.catch_up_every = Duration::from_secs(3);
        let transport = PoolTransport::connect(self.relay_keys.public_key(), opts)
            .await
            .unwrap();
        let mut policy = IntentPolicy::new(self.relay_pk);
        policy.network = Some(bitcoin::Network::Regtest);
        let info = RelayInfo {
            pubkey: self.relay_keys.public_key().to_hex(),
            relays: vec![self.nostr_url.clone()],
            kinds_consumed: kinds::CONSUMED.to_vec(),
            encryption: vec!["nip44_v2", "nip04"],
            transfer_fee: 10,
            land_fee_ppm: 1000,
            ark: Some(ark_relay_engine::ceremony::server_info_json(&self.server)),
        };
        let base = BaseHandler::new(self.store.clone(), self.relay_keys.clone(), info);
        let keypair =
            Keypair::from_secret_key(&Secp256k1::signing_only(), self.relay_keys.secret_key());
        let issuer = Issuer::new(
            self.store.clone(),
            ark.clone(),
            keypair,
            Arc::new(SystemClock),
        );
        let mut ramps = Ramps::new(
            self.store.clone(),
            self.ramp.clone(),
            self.lnd.clone(),
            issuer,
            self.relay_keys.clone(),
            Arc::new(SystemClock),
            config,
        );
        if let Some(hook) = crash {
            ramps = ramps.with_crash_hook(hook);
        }
        if let Some(tapd) = &self.tapd {
            ramps = ramps.with_assets(tapd.clone());
        }
        let ramps = Arc::new(ramps);
        let ceremony = Arc::new(
            Ceremony::new(
                self.store.clone(),
                ark,
                self.relay_keys.clone(),
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
        let handler = Arc::new(
            ark_relay_engine::router::Router::new(ceremony.clone()).with_ramps(ramps.clone()),
        );
        let periodic: Vec<Arc<dyn Periodic>> = vec![ceremony, Arc::new(RampDriver(ramps.clone()))];
        let queue: ark_relay_core::DynQueue = match &self.redis_prefix {
            Some(prefix) => {
                let url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                Arc::new(
                    ark_relay_queue::RedisQueue::connect(&url, prefix, Default::default())
                        .await
                        .expect("Redis"),
                )
            }
            None => Arc::new(MemoryQueue::new(Default::default())),
        };
        let parts = EngineParts {
            store: self.store.clone(),
            queue,
            bus: None,
            transport: Arc::new(transport),
            keys: self.relay_keys.clone(),
            policy,
            clock: Arc::new(SystemClock),
            handler,
            periodic,
        };
        let engine = Engine::new(
            parts,
            EngineConfig {
                workers: 4,
                ..Default::default()
            },
            Roles::ALL,
        );
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move { engine.run(stop_rx).await.expect("engine") });
        Running { stop, task, ramps }
    }

    async fn gbtc_balance(&self, who: &PubKey) -> u64 {
        let b = self.store.balances(who).await.unwrap();
        b.assets.get(&self.gbtc).map(|a| a.get()).unwrap_or(0)
    }

    /// gBTC in circulation: the ledger's supply less the genesis unit.
    async fn circulating(&self) -> u64 {
        self.store
            .asset(&self.gbtc)
            .await
            .unwrap()
            .unwrap()
            .total_supply
            .get()
            - GENESIS_UNIT
    }

    async fn local_msat(&self) -> u64 {
        self.lnd.channel_balance().await.unwrap().local_msat
    }

    /// An invoice of an outside node for `sats`, whose preimage the lnd sim
    /// knows (so paying it can succeed).
    async fn external_invoice(&mut self, sats: u64, expiry_secs: u64) -> (String, [u8; 32]) {
        let r = self
            .admin
            .make_external_invoice(MakeExternalInvoiceRequest {
                amt_msat: sats * 1_000,
                memo: "coffee".into(),
                expiry_secs,
            })
            .await
            .unwrap()
            .into_inner();
        (
            r.payment_request,
            r.payment_hash.as_slice().try_into().unwrap(),
        )
    }

    async fn script(&mut self, hash: [u8; 32], outcome: PaymentOutcome) {
        self.admin
            .script_payment(ScriptPaymentRequest {
                payment_hash: hash.to_vec(),
                outcome: outcome as i32,
                fee_msat: 1_000,
            })
            .await
            .unwrap();
    }

    async fn pay(&mut self, invoice: &str, amt_msat: u64) {
        self.admin
            .pay_invoice(PayInvoiceRequest {
                payment_request: invoice.to_owned(),
                amt_msat,
            })
            .await
            .unwrap();
    }

    /// Ledger = arkd indexer (common::assert_reconciled).
    async fn assert_reconciled(&self) {
        let db = self.db.as_ref().expect("db");
        common::assert_reconciled(&db.store, &self.sims.endpoints().arkd).await;
    }

    async fn destroy(mut self) {
        self.sims.stop().await;
        if let Some(db) = self.db.take() {
            db.destroy().await;
        }
    }
}

/// The decrypted 31501 answering `request`.
/// The failure code answering `answered`, once it arrives.
async fn failure_code(w: &Wallet, answered: &nostr::EventId) -> ErrorCode {
    w.wait_answer("the 31341", kinds::FAILURE, answered, WAIT)
        .await;
    let f = w.failures().await;
    let list = f.get(answered).unwrap();
    assert_eq!(list.len(), 1, "exactly one notice: {list:?}");
    list[0].code
}

async fn confirmation_of(w: &Wallet, answered: &nostr::EventId) -> Confirmation {
    w.wait_answer("the 31340", kinds::CONFIRMATION, answered, WAIT)
        .await;
    let evs: Vec<Event> = w
        .received()
        .await
        .into_iter()
        .filter(|e| answers(e, kinds::CONFIRMATION, answered))
        .collect();
    assert_eq!(evs.len(), 1, "exactly one 31340");
    serde_json::from_str(&evs[0].content).unwrap()
}

/// Asks for a lift of `amount` gBTC; returns the request and the invoice.
async fn request_lift(e: &Env, w: &Wallet, amount: u64) -> (Event, String) {
    let req = ServiceRequest::LiftLightning {
        asset_id: AssetRef::gbtc(),
        amount: ark_relay_protocol::content::WireAmount::new(amount),
        proof: None,
    };
    let id = format!("lift-{}", rand_id());
    let ev = builders::service_request(&w.keys, &e.relay_pk, &req, &id, Scheme::Nip44).unwrap();
    w.publish(&ev).await;
    let resp = common::response_to(w, &ev, WAIT).await;
    let result = resp
        .result
        .unwrap_or_else(|| panic!("lift refused: {:?}", resp.error));
    let invoice = result["invoice"].as_str().unwrap().to_owned();
    (ev, invoice)
}

/// A `land_lightning` intent paying `invoice` for `amount` (+ 0.1 % fee).
fn land_intent(e: &Env, w: &Wallet, invoice: &str, amount: u64) -> Event {
    builders::intent(&w.keys, &e.relay_pk, &land_content(e, invoice, amount)).unwrap()
}

/// A land whose fee names gBTC by id (the landed output uses the ticker).
fn land_intent_fee_by_id(e: &Env, w: &Wallet, invoice: &str, amount: u64) -> Event {
    let mut c = land_content(e, invoice, amount);
    c.outputs[1].asset = AssetRef::Id(e.gbtc);
    builders::intent(&w.keys, &e.relay_pk, &c).unwrap()
}

fn land_content(e: &Env, invoice: &str, amount: u64) -> IntentContent {
    let fee = ark_relay_protocol::intent::land_fee(amount, 1_000).unwrap();
    let mut c = IntentContent::transfer(
        format!("land-{}", rand_id()),
        &e.relay_pk,
        AssetRef::gbtc(),
        amount,
        &e.relay_pk,
        fee,
        UnixTime::now().0 + 600,
    );
    c.intent_type = "land_lightning".into();
    c.memo = Some(invoice.to_owned());
    c
}

fn rand_id() -> String {
    hex::encode(&Keys::generate().public_key().to_bytes()[..8])
}

fn fast() -> RampConfig {
    RampConfig {
        every: Duration::from_millis(100),
        payment_watch: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PRD scenario 1 (lift 0.1 BTC) and scenario 2 (land 0.05 BTC), with
/// the fees, the reserve and a wallet restored by `sync_state`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenario_1_lift_and_scenario_2_land() {
    let mut e = env(TestDb::mariadb().await.expect("MariaDB")).await;
    e.redis_prefix = Some(format!("ark-relay-test-ramp-{}", rand_id()));
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), e.relay_pk);
    let local0 = e.local_msat().await;

    // Scenario 1: lift 0.1 BTC.
    let (req, invoice) = request_lift(&e, &alice, 10_000_000).await;
    let inv = lightning_invoice::Bolt11Invoice::from_str(&invoice).unwrap();
    assert_eq!(inv.amount_milli_satoshis(), Some(10_000_000_000));
    e.pay(&invoice, 0).await;
    let c = confirmation_of(&alice, &req.id).await;
    assert_eq!(c.created[0].owner, alice_pk);
    assert_eq!(c.created[0].amount, 10_000_000, "1:1 gBTC, no lift fee");
    assert_eq!(e.gbtc_balance(&alice_pk).await, 10_000_000);
    assert_eq!(e.circulating().await, 10_000_000);
    let hash = PaymentHash(*inv.payment_hash().as_byte_array());
    assert_eq!(
        e.lnd.lookup_invoice(hash).await.unwrap().state,
        InvoiceState::Settled
    );
    let local1 = e.local_msat().await;
    assert_eq!(
        local1,
        local0 + 10_000_000_000,
        "the reserve grew by the lift"
    );
    // The issued VTXO exists at arkd, owned by Alice's key.
    let vtxo = c.created[0].vtxo;
    let at_arkd = e.sims.arkd.vtxo(&vtxo.outpoint()).expect("at arkd");
    assert_eq!(at_arkd.amount, c.created[0].sats);

    // Scenario 2: land 0.05 BTC (fee 0.1 % = 5 000 sat).
    let (invoice, hash) = e.external_invoice(5_000_000, 3_600).await;
    // The fee names gBTC by its id, the landed output by its ticker.
    let intent = land_intent_fee_by_id(&e, &alice, &invoice, 5_000_000);
    alice.publish(&intent).await;
    let c = confirmation_of(&alice, &intent.id).await;
    let preimage = hex::decode(c.preimage.as_deref().expect("the preimage")).unwrap();
    assert_eq!(sha256::Hash::hash(&preimage).to_byte_array(), hash);
    assert_eq!(e.gbtc_balance(&alice_pk).await, 10_000_000 - 5_005_000);
    assert_eq!(
        e.gbtc_balance(&e.relay_pk).await,
        5_000 + GENESIS_UNIT,
        "the land fee (and the genesis unit)"
    );
    assert_eq!(
        e.circulating().await,
        5_000_000,
        "the landed gBTC is burned"
    );
    let local2 = e.local_msat().await;
    assert_eq!(
        local1 - local2,
        5_000_000_000 + 1_000,
        "paid once, plus routing"
    );
    let reserves = relay.ramps.reserves().await.unwrap();
    assert_eq!(
        reserves.circulating,
        e.circulating().await,
        "the genesis unit does not circulate"
    );
    assert!(reserves.circulating <= reserves.reserve());
    let land = e
        .ramp
        .land(&ark_relay_protocol::event_id_from_nostr(&intent.id))
        .await;
    assert_eq!(land.unwrap().unwrap().status, LandStatus::Succeeded);

    // A wiped wallet restores its exact balance with sync_state.
    let restored = Wallet::connect_as(&e.nostr_url, alice.keys.clone()).await;
    let req = builders::service_request(
        &restored.keys,
        &e.relay_pk,
        &ServiceRequest::SyncState {},
        "sync-1",
        Scheme::Nip44,
    )
    .unwrap();
    restored.publish(&req).await;
    let resp = common::response_to(&restored, &req, WAIT).await;
    let vtxos = resp.result.unwrap()["vtxos"].as_array().unwrap().clone();
    let total: u64 = vtxos
        .iter()
        .filter(|v| v["asset_id"].as_str() == Some(&e.gbtc.to_string()))
        .map(|v| v["amount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4_995_000);
    assert!(vtxos
        .iter()
        .all(|v| v["tapscripts"].as_array().map(|a| a.len()) == Some(2)));

    e.assert_reconciled().await;
    relay.kill().await;
    e.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lift_underpaid_expired_or_too_close_is_cancelled_and_refunded() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let relay = e
        .start(
            RampConfig {
                invoice_expiry_secs: 3,
                ..fast()
            },
            None,
        )
        .await;
    let alice = Wallet::connect(&e.nostr_url).await;
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();

    // Pays too little: Lightning itself refuses the HTLC (lnd never accepts
    // an HTLC set below the invoice amount), so nothing is held, nothing
    // issued, and the lift ends when its invoice expires.
    let (req, invoice) = request_lift(&e, &alice, 50_000).await;
    let local = e.local_msat().await;
    let underpaid = e
        .admin
        .pay_invoice(PayInvoiceRequest {
            payment_request: invoice.clone(),
            amt_msat: 40_000_000,
        })
        .await;
    assert_eq!(
        underpaid.unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        failure_code(&alice, &req.id).await,
        ErrorCode::InvoiceExpired
    );
    let hash = PaymentHash(
        *lightning_invoice::Bolt11Invoice::from_str(&invoice)
            .unwrap()
            .payment_hash()
            .as_byte_array(),
    );
    assert_eq!(
        e.lnd.lookup_invoice(hash).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(
        e.local_msat().await,
        local,
        "nothing was taken from the payer"
    );

    // Nobody pays: the invoice expires.
    let (req, _invoice) = request_lift(&e, &alice, 50_000).await;
    assert_eq!(
        failure_code(&alice, &req.id).await,
        ErrorCode::InvoiceExpired
    );
    assert_eq!(e.gbtc_balance(&alice_pk).await, 0);
    relay.kill().await;

    // The payer's HTLC expires too soon for the relay to settle safely.
    let relay = e
        .start(
            RampConfig {
                cltv_expiry: 20,
                ..fast()
            },
            None,
        )
        .await;
    let (req, invoice) = request_lift(&e, &alice, 50_000).await;
    e.pay(&invoice, 0).await;
    assert_eq!(
        failure_code(&alice, &req.id).await,
        ErrorCode::InvoiceExpired
    );
    assert_eq!(e.gbtc_balance(&alice_pk).await, 0);
    assert_eq!(e.circulating().await, 0);
    e.assert_reconciled().await;
    relay.kill().await;
    e.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lift_whose_vtxo_cannot_be_issued_cancels_the_invoice() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let relay = e.start(fast(), None).await;
    let alice = Wallet::connect(&e.nostr_url).await;
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    let (req, invoice) = request_lift(&e, &alice, 70_000).await;
    // arkd refuses the issuing transaction for good.
    e.sims.arkd.inject_fault(
        "SubmitTx",
        ark_relay_sim::arkd::SimError {
            code: 3,
            name: "INVALID_SIGNATURE".into(),
            message: "refused".into(),
        },
        1,
    );
    let local = e.local_msat().await;
    e.pay(&invoice, 0).await;
    let code = failure_code(&alice, &req.id).await;
    assert_ne!(code, ErrorCode::InvoiceAmountMismatch);
    let hash = PaymentHash(
        *lightning_invoice::Bolt11Invoice::from_str(&invoice)
            .unwrap()
            .payment_hash()
            .as_byte_array(),
    );
    assert_eq!(
        e.lnd.lookup_invoice(hash).await.unwrap().state,
        InvoiceState::Canceled
    );
    assert_eq!(e.local_msat().await, local, "the payer is refunded");
    assert_eq!(e.gbtc_balance(&alice_pk).await, 0, "no unpaid VTXO");
    // The relay's inventory VTXO is free again.
    let free = e.store.free_inventory(&e.relay_pk, 0, 100).await.unwrap();
    assert_eq!(free.len(), 8);
    relay.kill().await;
    e.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn land_refuses_bad_invoices_at_receipt() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), e.relay_pk);
    let (req, invoice) = request_lift(&e, &alice, 100_000).await;
    e.pay(&invoice, 0).await;
    confirmation_of(&alice, &req.id).await;

    // Not an invoice.
    let bad = land_intent(&e, &alice, "lnbcrt1notaninvoice", 1_000);
    alice.publish(&bad).await;
    assert_eq!(
        failure_code(&alice, &bad.id).await,
        ErrorCode::InvalidInvoice
    );
    // Expires in 30 s: less than the 60 s the relay needs.
    let (soon, _) = e.external_invoice(1_000, 30).await;
    let expired = land_intent(&e, &alice, &soon, 1_000);
    alice.publish(&expired).await;
    assert_eq!(
        failure_code(&alice, &expired.id).await,
        ErrorCode::InvoiceExpired
    );
    // A mainnet invoice on a regtest relay.
    let mainnet = mainnet_invoice(1_000);
    let wrong = land_intent(&e, &alice, &mainnet, 1_000);
    alice.publish(&wrong).await;
    assert_eq!(
        failure_code(&alice, &wrong.id).await,
        ErrorCode::InvalidInvoice
    );
    // Wrong amount.
    let (other, _) = e.external_invoice(2_000, 3_600).await;
    let mismatch = land_intent(&e, &alice, &other, 1_000);
    alice.publish(&mismatch).await;
    assert_eq!(
        failure_code(&alice, &mismatch.id).await,
        ErrorCode::InvoiceAmountMismatch
    );
    // A fee named by the id of another asset (the landed output names gBTC
    // by ticker): the names cannot be compared as written, the resolved
    // assets differ, 4001.
    let gusd = AssetId::from_bytes([0x55; 32]);
    e.store
        .register_asset(
            &NewAsset {
                id: gusd,
                name: "gUSD".into(),
                ticker: "gUSD".into(),
                asset_type: AssetType::Permissionless,
                decimals: 0,
            },
            UnixTime::now(),
        )
        .await
        .unwrap();
    let (fee_elsewhere, _) = e.external_invoice(1_000, 3_600).await;
    let mut c = land_content(&e, &fee_elsewhere, 1_000);
    c.outputs[1].asset = AssetRef::Id(gusd);
    let wrong_fee = builders::intent(&alice.keys, &e.relay_pk, &c).unwrap();
    alice.publish(&wrong_fee).await;
    assert_eq!(
        failure_code(&alice, &wrong_fee.id).await,
        ErrorCode::FeeOutput
    );

    // The same invoice twice: paid once, the second land refused.
    let (once, _) = e.external_invoice(1_000, 3_600).await;
    let first = land_intent(&e, &alice, &once, 1_000);
    alice.publish(&first).await;
    confirmation_of(&alice, &first.id).await;
    let second = land_intent(&e, &alice, &once, 1_000);
    alice.publish(&second).await;
    assert_eq!(
        failure_code(&alice, &second.id).await,
        ErrorCode::InvalidInvoice
    );
    assert_eq!(e.gbtc_balance(&alice_pk).await, 100_000 - 1_001);
    relay.kill().await;
    e.destroy().await;
}

fn mainnet_invoice(sats: u64) -> String {
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let secp = Secp256k1::new();
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[0x42; 32]).unwrap();
    InvoiceBuilder::new(Currency::Bitcoin)
        .description("mainnet".into())
        .payment_hash(sha256::Hash::hash(&rand_id().into_bytes()))
        .payment_secret(PaymentSecret([9; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(40)
        .amount_milli_satoshis(sats * 1_000)
        .build_signed(|h| secp.sign_ecdsa_recoverable(h, &key))
        .unwrap()
        .to_string()
}

/// A payment stuck in flight survives a relay restart: the new process
/// tracks it, never sends again and never refunds; it then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn land_in_flight_across_a_restart_then_succeeds_once() {
    let mut e = env(TestDb::mariadb().await.expect("MariaDB")).await;
    e.redis_prefix = Some(format!("ark-relay-test-ramp-{}", rand_id()));
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), e.relay_pk);
    let (req, invoice) = request_lift(&e, &alice, 100_000).await;
    e.pay(&invoice, 0).await;
    confirmation_of(&alice, &req.id).await;

    let (invoice, hash) = e.external_invoice(20_000, 3_600).await;
    e.script(hash, PaymentOutcome::StuckInFlight).await;
    let local = e.local_msat().await;
    let intent = land_intent(&e, &alice, &invoice, 20_000);
    alice.publish(&intent).await;
    let id = ark_relay_protocol::event_id_from_nostr(&intent.id);
    let ramp = e.ramp.clone();
    wait_until("the land is paying", || {
        let ramp = ramp.clone();
        async move { matches!(ramp.land(&id).await.unwrap(), Some(l) if l.status == LandStatus::Paying) }
    })
    .await;
    relay.kill().await;

    let relay = e.start(fast(), None).await;
    // In flight for a while: still paying, nothing refunded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let land = e.ramp.land(&id).await.unwrap().unwrap();
    assert_eq!(land.status, LandStatus::Paying);
    assert_eq!(e.gbtc_balance(&alice_pk).await, 100_000 - 20_020);
    e.admin
        .resolve_payment(ResolvePaymentRequest {
            payment_hash: hash.to_vec(),
            succeed: true,
            failure_reason: 0,
        })
        .await
        .unwrap();
    let c = confirmation_of(&alice, &intent.id).await;
    assert!(c.preimage.is_some());
    assert_eq!(
        local - e.local_msat().await,
        20_000_000 + 1_000,
        "paid exactly once"
    );
    assert!(
        !alice.failures().await.contains_key(&intent.id),
        "no refund notice"
    );
    relay.kill().await;
    e.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn land_that_fails_terminally_is_refunded_with_6003() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), e.relay_pk);
    let (req, invoice) = request_lift(&e, &alice, 100_000).await;
    e.pay(&invoice, 0).await;
    confirmation_of(&alice, &req.id).await;

    let (invoice, hash) = e.external_invoice(30_000, 3_600).await;
    e.script(hash, PaymentOutcome::FailNoRoute).await;
    let local = e.local_msat().await;
    let intent = land_intent(&e, &alice, &invoice, 30_000);
    alice.publish(&intent).await;
    assert_eq!(
        failure_code(&alice, &intent.id).await,
        ErrorCode::PaymentFailed
    );
    assert_eq!(
        e.gbtc_balance(&alice_pk).await,
        100_000 - 30,
        "the landed value is refunded; the fee paid the Ark transaction"
    );
    assert_eq!(e.local_msat().await, local, "nothing left the node");
    assert_eq!(e.circulating().await, 100_000);
    let land = e
        .ramp
        .land(&ark_relay_protocol::event_id_from_nostr(&intent.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(land.status, LandStatus::Refunded);
    let refund = land.refund_vtxo.unwrap();
    assert!(
        e.sims.arkd.vtxo(&refund.outpoint()).is_some(),
        "refund VTXO at arkd"
    );
    e.assert_reconciled().await;
    relay.kill().await;
    e.destroy().await;
}

/// lnd with faults a test switches on: once says "never heard of it" to
/// TrackPaymentV2 although the payment exists, as a racing restart can (the
/// relay then resends, gets `AlreadyExists`, and must track rather than pay
/// again); or is unreachable (`down`) for invoices and balances.
struct ForgetfulLnd {
    inner: DynLightning,
    lied: Arc<Mutex<bool>>,
    resend_refused: Arc<Mutex<bool>>,
    down: Arc<Mutex<bool>>,
}

impl ForgetfulLnd {
    fn check_up(&self) -> Result<(), LightningError> {
        if *self.down.lock().unwrap() {
            return Err(LightningError::new(
                BackendErrorKind::Unavailable,
                "connection refused",
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Lightning for ForgetfulLnd {
    async fn get_info(
        &self,
    ) -> Result<ark_relay_core::backends::lightning::NodeInfo, LightningError> {
        self.inner.get_info().await
    }
    async fn add_hold_invoice(
        &self,
        req: ark_relay_core::backends::lightning::HoldInvoiceRequest,
    ) -> Result<ark_relay_core::backends::lightning::AddedInvoice, LightningError> {
        self.check_up()?;
        self.inner.add_hold_invoice(req).await
    }
    async fn settle_invoice(
        &self,
        p: ark_relay_core::backends::lightning::Preimage,
    ) -> Result<(), LightningError> {
        self.inner.settle_invoice(p).await
    }
    async fn cancel_invoice(&self, h: PaymentHash) -> Result<(), LightningError> {
        self.inner.cancel_invoice(h).await
    }
    async fn lookup_invoice(
        &self,
        h: PaymentHash,
    ) -> Result<ark_relay_core::backends::lightning::Invoice, LightningError> {
        self.inner.lookup_invoice(h).await
    }
    async fn subscribe_single_invoice(
        &self,
        h: PaymentHash,
    ) -> Result<
        ark_relay_core::backends::lightning::BoxStream<
            ark_relay_core::backends::lightning::Invoice,
            LightningError,
        >,
        LightningError,
    > {
        self.inner.subscribe_single_invoice(h).await
    }
    async fn subscribe_invoices(
        &self,
        c: ark_relay_core::backends::lightning::InvoiceCursor,
    ) -> Result<
        ark_relay_core::backends::lightning::BoxStream<
            ark_relay_core::backends::lightning::Invoice,
            LightningError,
        >,
        LightningError,
    > {
        self.inner.subscribe_invoices(c).await
    }
    async fn send_payment(
        &self,
        req: ark_relay_core::backends::lightning::SendPayment,
    ) -> Result<
        ark_relay_core::backends::lightning::BoxStream<
            ark_relay_core::backends::lightning::Payment,
            LightningError,
        >,
        LightningError,
    > {
        let r = self.inner.send_payment(req).await;
        if matches!(&r, Err(e) if e.kind == BackendErrorKind::AlreadyExists) {
            *self.resend_refused.lock().unwrap() = true;
        }
        r
    }
    async fn track_payment(
        &self,
        h: PaymentHash,
    ) -> Result<
        ark_relay_core::backends::lightning::BoxStream<
            ark_relay_core::backends::lightning::Payment,
            LightningError,
        >,
        LightningError,
    > {
        let exists = self.inner.track_payment(h).await.is_ok();
        let lie = {
            let mut lied = self.lied.lock().unwrap();
            let lie = exists && !*lied;
            if lie {
                *lied = true;
            }
            lie
        };
        if lie {
            return Err(LightningError::new(
                BackendErrorKind::NotFound,
                "payment isn't initiated",
            ));
        }
        self.inner.track_payment(h).await
    }
    async fn decode_pay_req(
        &self,
        p: &str,
    ) -> Result<ark_relay_core::backends::lightning::DecodedInvoice, LightningError> {
        self.inner.decode_pay_req(p).await
    }
    async fn channel_balance(
        &self,
    ) -> Result<ark_relay_core::backends::lightning::ChannelBalance, LightningError> {
        self.check_up()?;
        self.inner.channel_balance().await
    }
    async fn wallet_balance(
        &self,
    ) -> Result<ark_relay_core::backends::lightning::WalletBalance, LightningError> {
        self.inner.wallet_balance().await
    }
    async fn estimate_fee_rate(&self, t: u32) -> Result<u64, LightningError> {
        self.inner.estimate_fee_rate(t).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn already_exists_on_resend_is_tracked_not_paid_twice() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    spawn_signer(alice.clone(), e.relay_pk);
    let (req, invoice) = request_lift(&e, &alice, 100_000).await;
    e.pay(&invoice, 0).await;
    confirmation_of(&alice, &req.id).await;

    // First process: sends, the payment sticks in flight, the process dies.
    let (invoice, hash) = e.external_invoice(10_000, 3_600).await;
    e.script(hash, PaymentOutcome::StuckInFlight).await;
    let local = e.local_msat().await;
    let intent = land_intent(&e, &alice, &invoice, 10_000);
    alice.publish(&intent).await;
    let id = ark_relay_protocol::event_id_from_nostr(&intent.id);
    let ramp = e.ramp.clone();
    wait_until("the land is paying", || {
        let ramp = ramp.clone();
        async move { matches!(ramp.land(&id).await.unwrap(), Some(l) if l.status == LandStatus::Paying) }
    })
    .await;
    relay.kill().await;

    // Second process on a forgetful lnd: resends, gets AlreadyExists, tracks.
    let real = e.lnd.clone();
    let lied = Arc::new(Mutex::new(false));
    let resend_refused = Arc::new(Mutex::new(false));
    e.lnd = Arc::new(ForgetfulLnd {
        inner: real.clone(),
        lied: lied.clone(),
        resend_refused: resend_refused.clone(),
        down: Arc::new(Mutex::new(false)),
    });
    let relay = e.start(fast(), None).await;
    wait_until("lnd refused the resend with AlreadyExists", || {
        let (lied, refused) = (lied.clone(), resend_refused.clone());
        async move { *lied.lock().unwrap() && *refused.lock().unwrap() }
    })
    .await;
    e.admin
        .resolve_payment(ResolvePaymentRequest {
            payment_hash: hash.to_vec(),
            succeed: true,
            failure_reason: 0,
        })
        .await
        .unwrap();
    confirmation_of(&alice, &intent.id).await;
    assert_eq!(
        local - real.channel_balance().await.unwrap().local_msat,
        10_001_000
    );
    relay.kill().await;
    e.lnd = real;
    e.destroy().await;
}

/// Kills the relay at every step of a lift, a land and a refund, restarting
/// a fresh process each time: no double payment, no unpaid VTXO, no lost
/// funds, and the ledger, arkd and lnd agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_at_every_step_of_lift_land_and_refund() {
    let mut e = env(TestDb::mariadb().await.expect("MariaDB")).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    spawn_signer(alice.clone(), e.relay_pk);

    // Runs `scenario` with a process that dies at `point`, then a fresh
    // process that must finish the job.
    let crashed = Arc::new(Mutex::new(false));
    let hook_for = |point: RampCrashPoint, crashed: Arc<Mutex<bool>>| -> RampCrashHook {
        Arc::new(move |p| {
            let mut c = crashed.lock().unwrap();
            if p == point && !*c {
                *c = true;
                return true;
            }
            false
        })
    };

    let lift_points = [
        RampCrashPoint::LiftRowWritten,
        RampCrashPoint::LiftInvoiceCreated,
        RampCrashPoint::LiftAccepted,
        RampCrashPoint::LiftIssuePrepared,
        RampCrashPoint::LiftSubmitted,
        RampCrashPoint::LiftFinalized,
        RampCrashPoint::LiftSettled,
    ];
    let mut expected = 0u64;
    let mut local = e.local_msat().await;
    for point in lift_points {
        *crashed.lock().unwrap() = false;
        let relay = e
            .start(fast(), Some(hook_for(point, crashed.clone())))
            .await;
        let req = ServiceRequest::LiftLightning {
            asset_id: AssetRef::gbtc(),
            amount: ark_relay_protocol::content::WireAmount::new(10_000),
            proof: None,
        };
        let ev =
            builders::service_request(&alice.keys, &e.relay_pk, &req, &rand_id(), Scheme::Nip44)
                .unwrap();
        alice.publish(&ev).await;
        let request = ark_relay_protocol::event_id_from_nostr(&ev.id);
        // Pay as soon as the invoice exists (whichever process made it).
        let ramp = e.ramp.clone();
        let flag = crashed.clone();
        wait_until("the crash or the invoice", || {
            let ramp = ramp.clone();
            let flag = flag.clone();
            async move {
                *flag.lock().unwrap()
                    || matches!(ramp.lift_by_request(&request).await.unwrap(), Some(l) if l.invoice.is_some())
            }
        })
        .await;
        if !*crashed.lock().unwrap() {
            let lift = e.ramp.lift_by_request(&request).await.unwrap().unwrap();
            e.pay(lift.invoice.as_deref().unwrap(), 0).await;
            let flag = crashed.clone();
            wait_until("the crash", || {
                let flag = flag.clone();
                async move { *flag.lock().unwrap() }
            })
            .await;
        }
        relay.kill().await;
        let relay = e.start(fast(), None).await;
        let ramp = e.ramp.clone();
        wait_until("the invoice after restart", || {
            let ramp = ramp.clone();
            async move {
                matches!(ramp.lift_by_request(&request).await.unwrap(), Some(l) if l.invoice.is_some())
            }
        })
        .await;
        let lift = e.ramp.lift_by_request(&request).await.unwrap().unwrap();
        if matches!(lift.status, LiftStatus::Invoiced) {
            let inv = e.lnd.lookup_invoice(lift.hash).await.unwrap();
            if inv.state == InvoiceState::Open {
                e.pay(lift.invoice.as_deref().unwrap(), 0).await;
            }
        }
        confirmation_of(&alice, &ev.id).await;
        expected += 10_000;
        assert_eq!(
            e.gbtc_balance(&alice_pk).await,
            expected,
            "after a crash at {point:?}"
        );
        assert_eq!(e.circulating().await, expected);
        let now_local = e.local_msat().await;
        assert_eq!(now_local - local, 10_000_000, "paid once at {point:?}");
        local = now_local;
        assert_eq!(
            e.lnd.lookup_invoice(lift.hash).await.unwrap().state,
            InvoiceState::Settled
        );
        let lift = e.ramp.lift_by_request(&request).await.unwrap().unwrap();
        assert_eq!(lift.status, LiftStatus::Announced);
        assert!(e.sims.arkd.vtxo(&lift.vtxo.unwrap().outpoint()).is_some());
        relay.kill().await;
    }

    // Lands that succeed, and one that fails and is refunded.
    for (point, fail) in [
        (RampCrashPoint::LandPaying, false),
        (RampCrashPoint::LandSent, false),
        (RampCrashPoint::LandResolved, false),
        (RampCrashPoint::LandResolved, true),
        (RampCrashPoint::RefundSubmitted, true),
    ] {
        *crashed.lock().unwrap() = false;
        let relay = e
            .start(fast(), Some(hook_for(point, crashed.clone())))
            .await;
        let (invoice, hash) = e.external_invoice(5_000, 3_600).await;
        if fail {
            e.script(hash, PaymentOutcome::FailNoRoute).await;
        }
        let intent = land_intent(&e, &alice, &invoice, 5_000);
        alice.publish(&intent).await;
        let flag = crashed.clone();
        wait_until("the crash", || {
            let flag = flag.clone();
            async move { *flag.lock().unwrap() }
        })
        .await;
        relay.kill().await;
        let relay = e.start(fast(), None).await;
        if fail {
            assert_eq!(
                failure_code(&alice, &intent.id).await,
                ErrorCode::PaymentFailed
            );
            assert_eq!(e.local_msat().await, local, "nothing paid at {point:?}");
            expected -= 5; // the fee of the executed Ark transaction
        } else {
            let c = confirmation_of(&alice, &intent.id).await;
            assert!(c.preimage.is_some());
            expected -= 5_005;
            let now_local = e.local_msat().await;
            assert_eq!(local - now_local, 5_001_000, "paid once at {point:?}");
            local = now_local;
        }
        assert_eq!(e.gbtc_balance(&alice_pk).await, expected, "at {point:?}");
        relay.kill().await;
    }
    // Every inventory VTXO is either free or spent by a committed tx.
    let locked: Vec<_> = e
        .store
        .unspent_vtxos(&e.relay_pk)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.locked_by.is_some())
        .collect();
    assert!(locked.is_empty(), "no stranded locks: {locked:?}");
    e.destroy().await;
}

/// A Taproot Asset new to the relay is lifted only with its proof: tapd
/// verifies and stores it, the relay registers the asset as permissionless,
/// and the payer pays an RFQ-priced asset hold invoice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_lift_of_a_new_taproot_asset_needs_its_proof() {
    use ark_relay_proto::simrpc::tapd::tapd_sim_client::TapdSimClient;
    use ark_relay_proto::simrpc::tapd::IssueProofRequest;
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let ep = e.sims.endpoints();
    let cfg = DaemonConfig::new(
        ep.tapd.url.clone(),
        ep.tapd.tls_cert_pem.clone().map(String::into_bytes),
        Some(hex::decode(&ep.tapd.macaroon_hex).unwrap()),
    );
    e.tapd = Some(Arc::new(
        ark_relay_grpc::tapd::TapdClient::new(&cfg, &HealthRegistry::new()).unwrap(),
    ));
    let mut tapd_admin = TapdSimClient::new(InterceptedService::new(
        connect(&cfg).unwrap(),
        MacaroonInterceptor::new(cfg.macaroon.as_deref()),
    ));
    let relay = e.start(fast(), None).await;
    let alice = Wallet::connect(&e.nostr_url).await;
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).unwrap();
    let asset = AssetId::from_bytes(Keys::generate().public_key().to_bytes());

    let ask = |proof: Option<String>| {
        let req = ServiceRequest::LiftLightning {
            asset_id: AssetRef::Id(asset),
            amount: ark_relay_protocol::content::WireAmount::new(500),
            proof,
        };
        builders::service_request(&alice.keys, &e.relay_pk, &req, &rand_id(), Scheme::Nip44)
            .unwrap()
    };
    // Without a proof, and with one that proves nothing: 2003, nothing registered.
    for proof in [None, Some("00ff".to_owned())] {
        let ev = ask(proof);
        alice.publish(&ev).await;
        let resp = common::response_to(&alice, &ev, WAIT).await;
        assert_eq!(
            resp.error.map(|e| e.code),
            Some(ErrorCode::UnknownVtxoOrAsset)
        );
    }
    assert!(e.store.asset(&asset).await.unwrap().is_none());

    // With its proof: registered, invoiced by tapd, paid, issued.
    let raw = tapd_admin
        .issue_proof(IssueProofRequest {
            asset_id: asset.as_bytes().to_vec(),
            amount: 1_000,
        })
        .await
        .unwrap()
        .into_inner()
        .raw_proof_file;
    let ev = ask(Some(hex::encode(&raw)));
    alice.publish(&ev).await;
    let resp = common::response_to(&alice, &ev, WAIT).await;
    let result = resp.result.unwrap();
    let invoice = result["invoice"].as_str().unwrap().to_owned();
    // Issued on Ark by its own genesis: the ledger id is the genesis txid,
    // linked to the Taproot Asset id (tests/arkade_lifts.rs has the rest).
    let ledger: AssetId = result["asset_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(e.ramp.asset_of_taproot(&asset).await.unwrap(), Some(ledger));
    let registered = e.store.asset(&ledger).await.unwrap().unwrap();
    assert_eq!(registered.asset_type, AssetType::Permissionless);
    e.pay(&invoice, 0).await;
    let c = confirmation_of(&alice, &ev.id).await;
    assert_eq!(c.created[0].owner, alice_pk);
    assert_eq!(c.created[0].amount, 500);
    let b = e.store.balances(&alice_pk).await.unwrap();
    assert_eq!(b.assets.get(&ledger).map(|a| a.get()), Some(500));
    relay.kill().await;
    e.destroy().await;
}

/// lnd unreachable when a lift is requested or a land arrives: the wallet
/// hears 7001 once, the request or intent is kept, and it runs when lnd
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifts_and_lands_during_an_lnd_outage_are_kept_and_run_when_it_returns() {
    let mut e = env(TestDb::sqlite().await.unwrap()).await;
    let down = Arc::new(Mutex::new(true));
    let real = e.lnd.clone();
    e.lnd = Arc::new(ForgetfulLnd {
        inner: real.clone(),
        lied: Arc::new(Mutex::new(true)), // no lie
        resend_refused: Arc::new(Mutex::new(false)),
        down: down.clone(),
    });
    let relay = e.start(fast(), None).await;
    let alice = Arc::new(Wallet::connect(&e.nostr_url).await);
    spawn_signer(alice.clone(), e.relay_pk);
    let req = ServiceRequest::LiftLightning {
        asset_id: AssetRef::gbtc(),
        amount: ark_relay_protocol::content::WireAmount::new(20_000),
        proof: None,
    };
    let ev = builders::service_request(&alice.keys, &e.relay_pk, &req, &rand_id(), Scheme::Nip44)
        .unwrap();
    alice.publish(&ev).await;
    assert_eq!(
        failure_code(&alice, &ev.id).await,
        ErrorCode::BackendUnavailable
    );
    *down.lock().unwrap() = false;
    let resp = common::response_to(&alice, &ev, WAIT).await;
    let invoice = resp.result.unwrap()["invoice"].as_str().unwrap().to_owned();
    e.pay(&invoice, 0).await;
    confirmation_of(&alice, &ev.id).await;
    assert_eq!(
        alice.failures().await.get(&ev.id).map(Vec::len),
        Some(1),
        "7001 was said once"
    );

    // A land while lnd is down: kept (7001), then paid when it returns.
    *down.lock().unwrap() = true;
    let (invoice, _) = e.external_invoice(5_000, 3_600).await;
    let intent = land_intent(&e, &alice, &invoice, 5_000);
    alice.publish(&intent).await;
    assert_eq!(
        failure_code(&alice, &intent.id).await,
        ErrorCode::BackendUnavailable
    );
    *down.lock().unwrap() = false;
    let c = confirmation_of(&alice, &intent.id).await;
    assert!(c.preimage.is_some());
    relay.kill().await;
    e.lnd = real;
    e.destroy().await;
}
