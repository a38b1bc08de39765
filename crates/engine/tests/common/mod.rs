//! A running relay for engine tests: a real websocket Nostr relay on loopback,
//! a real database, the in-process queue, and the engine with every role; plus
//! a wallet that publishes and reads the relay's answers over the same relay.
//! [`parts`] is the start of every ceremony test (database, Nostr relay, the
//! arkd simulator with arkd's asset rules, the relay's keys and inventory);
//! [`fund`] gives a user coloured VTXOs at arkd and in the ledger alike.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::str::FromStr;

use ark_relay_ark::ServerInfo;
use ark_relay_core::{
    AssetId, AssetType, DynStore, NewAsset, PubKey, SystemClock, UnixTime, VtxoId,
};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{
    FailureNotice, SignatureEntry, SigningChallenge, SigningResponse, VERSION,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::kinds;
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig, SimServer};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::seed::{coloured, seed_inventory, seed_vtxo, Seed};
use bitcoin::secp256k1::{Keypair, Secp256k1};
use bitcoin::Psbt;
use nostr::{Event, EventId, Keys};
use tokio::sync::{mpsc, watch, Mutex};

/// The relay side of a test.
pub struct Relay {
    pub nostr: DevRelay,
    pub keys: Keys,
    pub store: DynStore,
    pub db: Option<TestDb>,
    pub engine_stop: watch::Sender<bool>,
    pub engine: tokio::task::JoinHandle<()>,
    pub ingestor: ark_relay_engine::ingest::Ingestor,
}

pub async fn start_relay(db: TestDb, nostr: DevRelay) -> Relay {
    let url = nostr.url().to_owned();
    start_relay_with_url(db, nostr, &url).await
}

/// Like [`start_relay`], with the engine connected to `url` instead of `nostr`.
pub async fn start_relay_with_url(db: TestDb, nostr: DevRelay, url: &str) -> Relay {
    let keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&keys.public_key()).expect("key");
    let store: DynStore = Arc::new(db.store.clone());
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(keys.public_key(), opts)
        .await
        .expect("transport");
    let queue = Arc::new(MemoryQueue::new(Default::default()));
    let info = RelayInfo {
        pubkey: keys.public_key().to_hex(),
        relays: vec![url.to_owned()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: None,
    };
    let parts = EngineParts {
        store: store.clone(),
        queue,
        bus: None,
        transport: Arc::new(transport),
        keys: keys.clone(),
        policy: IntentPolicy::new(relay_pk),
        clock: Arc::new(SystemClock),
        handler: Arc::new(BaseHandler::new(store.clone(), keys.clone(), info)),
        periodic: vec![],
    };
    let engine = Engine::new(
        parts,
        EngineConfig {
            workers: 2,
            ..Default::default()
        },
        Roles::ALL,
    );
    let ingestor = engine.ingestor();
    let (engine_stop, stop) = watch::channel(false);
    let handle = tokio::spawn(async move {
        engine.run(stop).await.expect("engine");
    });
    Relay {
        nostr,
        keys,
        store,
        db: Some(db),
        engine_stop,
        engine: handle,
        ingestor,
    }
}

impl Relay {
    pub async fn stop(mut self) {
        let _ = self.engine_stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.engine).await;
        self.nostr.shutdown();
        if let Some(db) = self.db.take() {
            db.destroy().await;
        }
    }
}

/// A wallet: publishes through the Nostr relay and collects every event
/// addressed to it of the relay's answer kinds.
pub struct Wallet {
    pub keys: Keys,
    pub transport: PoolTransport,
    received: Arc<Mutex<Vec<Event>>>,
    stop: watch::Sender<bool>,
}

impl Wallet {
    pub async fn connect(url: &str) -> Wallet {
        Self::connect_as(url, Keys::generate()).await
    }

    /// A wallet with the given keys.
    pub async fn connect_as(url: &str, keys: Keys) -> Wallet {
        let mut opts = PoolOptions::new(vec![url.to_owned()]);
        opts.kinds = vec![
            kinds::FAILURE,
            kinds::SERVICE_RESPONSE,
            kinds::SIGNING_CHALLENGE,
            kinds::CONFIRMATION,
        ];
        opts.catch_up_every = Duration::from_secs(3);
        let transport = PoolTransport::connect(keys.public_key(), opts)
            .await
            .expect("wallet transport");
        let received = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::channel(4096);
        let (_cursor_tx, cursor) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let t = transport.clone();
        tokio::spawn(async move { t.pump(tx, cursor, stop_rx).await });
        let sink = received.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let mut all = sink.lock().await;
                if !all.iter().any(|e: &Event| e.id == ev.id) {
                    all.push(ev);
                }
            }
        });
        Wallet {
            keys,
            transport,
            received,
            stop,
        }
    }

    /// Publishes, retrying until a relay accepts it (the relay may be down).
    pub async fn publish(&self, event: &Event) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            match self.transport.publish(event).await {
                Ok(_) => return,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "wallet publish retry");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("wallet could not publish: {e}"),
            }
        }
    }

    /// Failure notices received, by the event they answer, decrypted.
    pub async fn failures(&self) -> HashMap<EventId, Vec<FailureNotice>> {
        let mut out: HashMap<EventId, Vec<FailureNotice>> = HashMap::new();
        for ev in self
            .received
            .lock()
            .await
            .iter()
            .filter(|e| e.kind.as_u16() == kinds::FAILURE)
        {
            let Some(answered) = ev.tags.event_ids().next().copied() else {
                continue;
            };
            let Ok((plain, _)) = decrypt(self.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags)
            else {
                continue;
            };
            if let Ok(n) = serde_json::from_str::<FailureNotice>(&plain) {
                out.entry(answered).or_default().push(n);
            }
        }
        out
    }

    /// All events received so far.
    pub async fn received(&self) -> Vec<Event> {
        self.received.lock().await.clone()
    }

    /// Waits until `done(received)` holds, polling the collected events.
    pub async fn wait_for<F>(&self, what: &str, timeout: Duration, mut done: F)
    where
        F: FnMut(&[Event]) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.received.lock().await) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an event of `kind` that `e`-tags `answered` has arrived.
    pub async fn wait_answer(&self, what: &str, kind: u16, answered: &EventId, timeout: Duration) {
        self.wait_for(what, timeout, |evs| {
            evs.iter().any(|e| answers(e, kind, answered))
        })
        .await
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

pub async fn dev_relay() -> DevRelay {
    DevRelay::start(DevRelayOptions::default())
        .await
        .expect("dev relay")
}

/// Whether `e` is of `kind` and `e`-tags `answered`.
pub fn answers(e: &Event, kind: u16, answered: &EventId) -> bool {
    e.kind.as_u16() == kind && e.tags.event_ids().any(|id| id == answered)
}

/// An honest signer for a test wallet: answers every 31511 addressed to it by
/// signing what is asked (the reference wallet adds the contextual checks).
pub fn spawn_signer(wallet: Arc<Wallet>, relay: PubKey) {
    tokio::spawn(async move {
        let keypair =
            Keypair::from_secret_key(&Secp256k1::signing_only(), wallet.keys.secret_key());
        let mut answered = std::collections::HashSet::new();
        loop {
            for ev in wallet.received().await {
                if ev.kind.as_u16() != kinds::SIGNING_CHALLENGE || !answered.insert(ev.id) {
                    continue;
                }
                let Ok((plain, scheme)) =
                    decrypt(wallet.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags)
                else {
                    continue;
                };
                let Ok(ch) = serde_json::from_str::<SigningChallenge>(&plain) else {
                    continue;
                };
                let mut psbts: Vec<Psbt> = ch
                    .payload_to_sign
                    .psbts
                    .iter()
                    .map(|p| Psbt::from_str(p).expect("psbt"))
                    .collect();
                let signatures = ch
                    .payload_to_sign
                    .sign
                    .iter()
                    .map(|r| {
                        let sig = ark_relay_ark::sign_input(
                            &mut psbts[r.psbt_index as usize],
                            r.input_index as usize,
                            &keypair,
                        )
                        .expect("sign");
                        SignatureEntry {
                            psbt_index: r.psbt_index,
                            input_index: r.input_index,
                            sig: hex::encode(sig.serialize()),
                        }
                    })
                    .collect();
                let resp = SigningResponse {
                    v: VERSION,
                    session_id: ch.session_id,
                    step: ch.step,
                    signatures,
                    reject: None,
                };
                let intent = ark_relay_core::EventId::from_bytes(*ch.session_id.as_bytes());
                let out = builders::signing_response(&wallet.keys, &relay, &intent, &resp, scheme)
                    .expect("response");
                wallet.publish(&out).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Starts a relay process running the transfer ceremony (which also runs
/// batches) on the shared store, Nostr relay and arkd, with its jobs on
/// `queue`; returns its stop switch and task.
#[allow(clippy::too_many_arguments)]
pub async fn start_ceremony(
    store: &DynStore,
    relay_keys: &Keys,
    server: &ServerInfo,
    nostr_url: &str,
    arkd_url: &str,
    tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>,
    crash: Option<ark_relay_engine::ceremony::CrashHook>,
    queue: ark_relay_core::DynQueue,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    start_ceremony_with(
        store, relay_keys, server, nostr_url, arkd_url, tamper, crash, queue, None,
    )
    .await
}

/// [`start_ceremony`] whose plan-and-lock loop refuses the VTXOs `disputes`
/// holds as disputed (2006), as a relay wired with reconciliation does.
#[allow(clippy::too_many_arguments)]
pub async fn start_ceremony_with(
    store: &DynStore,
    relay_keys: &Keys,
    server: &ServerInfo,
    nostr_url: &str,
    arkd_url: &str,
    tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>,
    crash: Option<ark_relay_engine::ceremony::CrashHook>,
    queue: ark_relay_core::DynQueue,
    disputes: Option<Arc<dyn ark_relay_core::reconcile::ReconcileStore>>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).expect("key");
    let ark = ArkdClient::connect(arkd_url.to_owned())
        .await
        .expect("arkd client");
    let mut opts = PoolOptions::new(vec![nostr_url.to_owned()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(relay_keys.public_key(), opts)
        .await
        .expect("transport");
    let policy = IntentPolicy::new(relay_pk);
    let info = RelayInfo {
        pubkey: relay_keys.public_key().to_hex(),
        relays: vec![nostr_url.to_owned()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: Some(ark_relay_engine::ceremony::server_info_json(server)),
    };
    let base = BaseHandler::new(store.clone(), relay_keys.clone(), info);
    let mut ceremony = Ceremony::new(
        store.clone(),
        Arc::new(ark),
        relay_keys.clone(),
        policy.clone(),
        base,
        Arc::new(SystemClock),
        CeremonyConfig {
            session_ttl_secs: 900,
            step_timeout_secs: 5,
        },
    );
    if let Some(t) = tamper {
        ceremony = ceremony.with_tamper(t);
    }
    if let Some(c) = crash {
        ceremony = ceremony.with_crash_hook(c);
    }
    if let Some(d) = disputes {
        ceremony = ceremony.with_disputes(d);
    }
    let ceremony = Arc::new(ceremony);
    let parts = EngineParts {
        store: store.clone(),
        queue,
        bus: None,
        transport: Arc::new(transport),
        keys: relay_keys.clone(),
        policy,
        clock: Arc::new(SystemClock),
        handler: Arc::new(ark_relay_engine::router::Router::new(ceremony.clone())),
        periodic: vec![ceremony],
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
    let handle = tokio::spawn(async move { engine.run(stop_rx).await.expect("engine") });
    (stop, handle)
}

/// Runs the reconciliation of `store`'s ledger against the arkd indexer at
/// `arkd_url` (recording the run and its disputed set) and returns it.
pub async fn reconcile(
    store: &ark_relay_store::SqlStore,
    arkd_url: &str,
) -> ark_relay_engine::reconcile::Outcome {
    let ark = ArkdClient::connect(arkd_url.to_owned())
        .await
        .expect("arkd client");
    let reconciler = ark_relay_engine::reconcile::Reconciler::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(ark),
        Arc::new(SystemClock),
    );
    reconciler
        .run_and_record(&|_| {})
        .await
        .expect("reconciliation")
}

/// Asserts that the ledger equals the arkd indexer VTXO by VTXO (sats,
/// asset and amount, spent or not), as `ark-relay reconcile` checks it.
pub async fn assert_reconciled(store: &ark_relay_store::SqlStore, arkd_url: &str) {
    let outcome = reconcile(store, arkd_url).await;
    assert!(
        outcome.differences.is_empty(),
        "ledger ≠ arkd indexer after {} VTXOs: {:#?}",
        outcome.run.checked,
        outcome.differences
    );
    assert!(
        outcome.run.checked > 0,
        "the reconciliation checked nothing"
    );
}

/// The parts a ceremony test starts from.
pub struct Parts {
    pub db: TestDb,
    pub store: DynStore,
    pub nostr: DevRelay,
    /// The arkd simulator (arkd's strict asset rules) and its gRPC server.
    pub sim: ArkdSim,
    pub sim_server: SimServer,
    pub arkd_url: String,
    pub server: ServerInfo,
    pub relay_keys: Keys,
    pub relay_pk: PubKey,
    /// The relay's uncoloured inventory VTXOs, 5 000 sats each.
    pub inventory: Vec<VtxoId>,
}

/// `db`, a websocket Nostr relay, the arkd simulator over gRPC, fresh relay
/// keys and `inventory` inventory VTXOs seeded at arkd and in the ledger.
pub async fn parts(db: TestDb, inventory: usize) -> Parts {
    parts_with(db, inventory, ArkdSimConfig::default()).await
}

/// [`parts`] with the arkd simulator configured by `arkd`.
pub async fn parts_with(db: TestDb, inventory: usize, arkd: ArkdSimConfig) -> Parts {
    let store: DynStore = Arc::new(db.store.clone());
    let nostr = dev_relay().await;
    let sim = ArkdSim::new(arkd).expect("sim");
    let server = sim.server_info().clone();
    let sim_server = sim.clone().spawn(0).await.expect("arkd sim");
    let relay_keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay_keys.public_key()).expect("key");
    let inventory = seed_inventory(store.as_ref(), &sim, relay_pk, inventory, 5_000).await;
    Parts {
        arkd_url: sim_server.url(),
        db,
        store,
        nostr,
        sim,
        sim_server,
        server,
        relay_keys,
        relay_pk,
        inventory,
    }
}

/// The decrypted 31501 answering `request`, once it arrives.
pub async fn response_to(w: &Wallet, request: &Event, timeout: Duration) -> ServiceResponse {
    w.wait_answer("the 31501", kinds::SERVICE_RESPONSE, &request.id, timeout)
        .await;
    let ev = w
        .received()
        .await
        .into_iter()
        .find(|e| answers(e, kinds::SERVICE_RESPONSE, &request.id))
        .expect("31501");
    let (plain, _) =
        decrypt(w.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags).expect("decrypt");
    serde_json::from_str(&plain).expect("service response")
}

/// Has `w`'s key issue `ticker` on Ark with `issue_asset` (docs/protocol.md,
/// "Assets issued by a wallet") and returns its id: the genesis pays `w`'s
/// key the asset's one unit and its control VTXO, under which it alone may
/// mint it later (as a DEX issues its LP and position tokens).
pub async fn issue_asset(w: &Wallet, relay: &PubKey, ticker: &str) -> AssetId {
    let request = builders::service_request(
        &w.keys,
        relay,
        &ServiceRequest::IssueAsset {
            ticker: ticker.into(),
            name: None,
            decimals: None,
        },
        &format!("issue-{ticker}"),
        Scheme::Nip44,
    )
    .expect("issue_asset");
    w.publish(&request).await;
    let answer = response_to(w, &request, Duration::from_secs(60)).await;
    let result = answer
        .result
        .unwrap_or_else(|| panic!("issue_asset {ticker} refused: {:?}", answer.error));
    result["asset_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("issue_asset answered without an asset id: {result}"))
}

/// A fresh random asset id.
pub fn rand_asset_id() -> AssetId {
    AssetId::from_bytes(Keys::generate().public_key().to_bytes())
}

/// Registers an asset with a fresh id, `ticker` as its name too.
pub async fn register(store: &DynStore, ticker: &str, kind: AssetType) -> AssetId {
    let id = rand_asset_id();
    store
        .register_asset(
            &NewAsset {
                id,
                name: ticker.into(),
                ticker: ticker.into(),
                asset_type: kind,
                decimals: 0,
            },
            UnixTime::now(),
        )
        .await
        .expect("register asset");
    id
}

/// Gives `owner` a 330-sat VTXO holding `amount` of `asset`, at arkd and in
/// the ledger.
pub async fn fund(
    store: &DynStore,
    sim: &ArkdSim,
    owner: &PubKey,
    asset: AssetId,
    amount: u64,
) -> VtxoId {
    seed_vtxo(
        store.as_ref(),
        sim,
        Seed::user(*owner, 330, coloured(asset, amount)),
    )
    .await
}
