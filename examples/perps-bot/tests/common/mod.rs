//! The perps bot's test world (the DEX bot's harness, `examples/dex-bot/tests/dex.rs`):
//! a real websocket Nostr relay, the relay engine on MariaDB with the arkd
//! simulator over gRPC, funded keys, the oracle publishing through Nostr.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{AssetId, AssetType, DynStore, NewAsset, PubKey, SystemClock, UnixTime};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::seed::{coloured, seed_vtxo, Seed};
use nostr::Keys;
use tokio::sync::watch;

/// The relay's key type of a Nostr key.
pub fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("key")
}

/// The relay and its services.
pub struct World {
    /// The ledger.
    pub store: DynStore,
    /// The arkd simulator.
    pub sim: ArkdSim,
    /// The relay's key.
    pub relay: Keys,
    /// gBTC's id.
    pub gbtc: AssetId,
    /// The websocket Nostr relay.
    pub url: String,
    _db: TestDb,
    _nostr: DevRelay,
    _sim_server: ark_relay_sim::arkd::SimServer,
    stop: watch::Sender<bool>,
}

impl World {
    /// Starts everything (MariaDB from `ARK_RELAY_TEST_MYSQL_URL`).
    pub async fn start() -> World {
        let db = TestDb::mariadb().await.expect("MariaDB");
        let store: DynStore = Arc::new(db.store.clone());
        let nostr = DevRelay::start(DevRelayOptions::default())
            .await
            .expect("dev relay");
        let url = nostr.url().to_owned();
        let sim = ArkdSim::new(ArkdSimConfig::default()).expect("sim");
        let server = sim.server_info().clone();
        let sim_server = sim.clone().spawn(0).await.expect("arkd sim");
        let relay = Keys::generate();
        let relay_pk = pk(&relay);
        let gbtc = AssetId::from_bytes(Keys::generate().public_key().to_bytes());
        store
            .register_asset(
                &NewAsset {
                    id: gbtc,
                    name: "gBTC".into(),
                    ticker: "gBTC".into(),
                    asset_type: AssetType::RelayIssued,
                    decimals: 0,
                },
                UnixTime::now(),
            )
            .await
            .expect("asset");
        let w0 = World {
            store: store.clone(),
            sim: sim.clone(),
            relay: relay.clone(),
            gbtc,
            url: url.clone(),
            _db: db,
            _nostr: nostr,
            _sim_server: sim_server,
            stop: watch::channel(false).0,
        };
        for _ in 0..8 {
            w0.fund(&relay_pk, None, 5_000).await;
        }
        let ark = ArkdClient::connect(w0._sim_server.url())
            .await
            .expect("arkd");
        let mut opts = PoolOptions::new(vec![url.clone()]);
        opts.catch_up_every = Duration::from_secs(3);
        let transport = PoolTransport::connect(relay.public_key(), opts)
            .await
            .expect("transport");
        let policy = IntentPolicy::new(relay_pk);
        let info = RelayInfo {
            pubkey: relay.public_key().to_hex(),
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
            relay.clone(),
            policy.clone(),
            BaseHandler::new(store.clone(), relay.clone(), info),
            Arc::new(SystemClock),
            CeremonyConfig::default(),
        ));
        let engine = Engine::new(
            EngineParts {
                store: store.clone(),
                queue: Arc::new(MemoryQueue::new(Default::default())),
                bus: None,
                transport: Arc::new(transport),
                keys: relay.clone(),
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
        World { stop, ..w0 }
    }

    /// A VTXO of `sats` for `owner`, coloured with `colour` at arkd and in
    /// the ledger alike.
    pub async fn fund(&self, owner: &PubKey, colour: Option<(AssetId, u64)>, sats: u64) {
        let seed = match colour {
            Some((asset, n)) => Seed::user(*owner, sats, coloured(asset, n)),
            None => Seed::inventory(*owner, sats),
        };
        seed_vtxo(self.store.as_ref(), &self.sim, seed).await;
    }

    /// `who`'s ledger balance of `asset`.
    pub async fn balance(&self, who: &PubKey, asset: &AssetId) -> u64 {
        let b = self.store.balances(who).await.expect("balances");
        b.assets.get(asset).map(|a| a.get()).unwrap_or(0)
    }

    /// A gRPC client of the arkd simulator.
    pub async fn arkd(&self) -> ArkdClient {
        ArkdClient::connect(self._sim_server.url())
            .await
            .expect("arkd")
    }

    /// `asset` as arkd's indexer knows it (by its Arkade id).
    pub async fn asset_at_arkd(
        &self,
        asset: &AssetId,
    ) -> ark_relay_core::backends::ark::ServerAssetInfo {
        ark_relay_core::backends::ark::ArkServer::get_asset(
            &self.arkd().await,
            &ark_relay_ark::asset::arkade_id(asset).to_string(),
        )
        .await
        .expect("GetAsset")
    }

    /// Asserts that the ledger equals arkd's indexer, VTXO by VTXO.
    pub async fn assert_reconciled(&self) {
        let outcome = ark_relay_engine::reconcile::Reconciler::new(
            self.store.clone(),
            Arc::new(self._db.store.clone()),
            Arc::new(self.arkd().await),
            Arc::new(SystemClock),
        )
        .run(&|_| {})
        .await
        .expect("reconciliation");
        assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);
    }

    /// Stops the engine.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Polls `f` until it is `Some` or `timeout` passes (the book has no event
/// for "a price was stored"; each poll reads it once).
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
