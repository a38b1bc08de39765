//! A cluster for the role tests: the test process hosts a real websocket
//! Nostr relay and the arkd simulator (so it can stop and restart arkd),
//! creates a throw-away database (MariaDB unless told otherwise), a unique
//! Redis prefix and a config file, and spawns real `ark-relay run | ingest |
//! worker | scheduler` processes against them. Every wait has a deadline.
#![allow(dead_code)] // each test file uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_ark::ServerInfo;
use ark_relay_core::{AssetId, AssetType, DynStore, NewAsset, PubKey, UnixTime};
use ark_relay_nostr::{DevRelay, DevRelayOptions};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::FailureNotice;
use ark_relay_protocol::crypto::decrypt;
use ark_relay_protocol::kinds;
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig, SimServer};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::seed;
use nostr::{Event, EventId, Keys};
use std::collections::HashMap;
use tokio::sync::{mpsc, watch, Mutex};

use crate::common;

/// Redis for tests.
pub fn redis_url() -> String {
    std::env::var("ARK_RELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The parts the test process hosts.
pub struct Cluster {
    pub db: Option<TestDb>,
    pub store: DynStore,
    pub nostr: DevRelay,
    pub sim: ArkdSim,
    pub sim_server: Option<SimServer>,
    pub arkd_port: u16,
    pub server: ServerInfo,
    pub relay_keys: Keys,
    pub relay_pk: PubKey,
    pub gbtc: AssetId,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub prefix: String,
    /// Whether the processes use Redis (else the in-process queue: one `run`).
    pub redis: bool,
}

impl Cluster {
    /// Starts the hosted parts and writes the config; `run` holds extra
    /// `[run]` lines (e.g. `leader_ttl_ms = 1500`).
    pub async fn start(db: TestDb, redis: bool, run: &[&str]) -> Self {
        let store: DynStore = Arc::new(db.store.clone());
        let nostr = DevRelay::start(DevRelayOptions::default())
            .await
            .expect("Nostr relay");
        let sim = ArkdSim::new(ArkdSimConfig::default()).expect("arkd sim");
        let server = sim.server_info().clone();
        let sim_server = sim.clone().spawn(0).await.expect("arkd sim server");
        let arkd_port = sim_server.addr().port();
        let relay_keys = Keys::generate();
        let relay_pk = ark_relay_protocol::pubkey_from_nostr(&relay_keys.public_key()).unwrap();
        let gbtc = AssetId::from_bytes(Keys::generate().public_key().to_bytes());
        store
            .register_asset(
                &NewAsset {
                    id: gbtc,
                    name: "Relay BTC".into(),
                    ticker: "gBTC".into(),
                    asset_type: AssetType::RelayIssued,
                    decimals: 0,
                },
                UnixTime::now(),
            )
            .await
            .expect("register gBTC");
        let dir = tempfile::tempdir().unwrap();
        // Every process of the cluster shares the relay key.
        std::fs::write(
            dir.path().join("relay.key"),
            format!("{}\n", relay_keys.secret_key().to_secret_hex()),
        )
        .unwrap();
        let prefix = format!("ark-relay-test-{}", common::unique_suffix());
        let mut toml = format!(
            "data_dir = {:?}\ndatabase_url = {:?}\nnostr_relays = [{:?}]\n",
            dir.path().display().to_string(),
            db.url,
            nostr.url(),
        );
        if redis {
            toml.push_str(&format!("redis_url = {:?}\n", redis_url()));
        }
        toml.push_str(&format!(
            "[session]\nstep_timeout_secs = 20\n[ark]\nurl = \"http://127.0.0.1:{arkd_port}\"\n[run]\nredis_prefix = {prefix:?}\n"
        ));
        for line in run {
            toml.push_str(line);
            toml.push('\n');
        }
        let config = dir.path().join("relay.toml");
        std::fs::write(&config, toml).unwrap();
        Self {
            db: Some(db),
            store,
            nostr,
            sim,
            sim_server: Some(sim_server),
            arkd_port,
            server,
            relay_keys,
            relay_pk,
            gbtc,
            dir,
            config,
            prefix,
            redis,
        }
    }

    /// Points the processes spawned from now on at another database URL
    /// (same database, e.g. as a less privileged user).
    pub fn set_database_url(&self, url: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let old = &self.db.as_ref().unwrap().url;
        let text = text.replace(
            &format!("database_url = {old:?}"),
            &format!("database_url = {url:?}"),
        );
        assert!(text.contains(url));
        std::fs::write(&self.config, text).unwrap();
    }

    /// Spawns `ark-relay --config … <role> --ready-file … <args>`.
    pub fn spawn(&self, role: &str, args: &[&str]) -> RoleProcess {
        let n = common::unique_suffix();
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let ready = self.dir.path().join(format!("{role}-{n}.ready.json"));
        let stderr = logs.join(format!("{role}-{n}.stderr"));
        let mut cmd = common::command(self.dir.path());
        cmd.env(
            "RUST_LOG",
            "info,sqlx=warn,ark_relay_engine::worker=debug,nostr_relay_pool=warn,nostr_sdk=warn",
        )
        .arg("--config")
        .arg(&self.config)
        .arg(role)
        .arg("--ready-file")
        .arg(&ready)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().expect("spawning ark-relay");
        RoleProcess {
            role: role.to_owned(),
            child,
            ready,
            stderr,
        }
    }

    /// Funds the relay's inventory with `n` uncoloured VTXOs of `sats`.
    pub async fn seed_inventory(&self, n: usize, sats: u64) {
        seed::seed_inventory(self.store.as_ref(), &self.sim, self.relay_pk, n, sats).await;
    }

    /// Gives `owner` a VTXO at arkd and in the ledger, coloured with `amount` gBTC
    /// (at arkd too, so the scheduler's reconciliation finds them equal).
    pub async fn fund(&self, owner: &PubKey, amount: u64) {
        let colour = seed::coloured(self.gbtc, amount);
        seed::seed_vtxo(
            self.store.as_ref(),
            &self.sim,
            seed::Seed::user(*owner, 1_000, colour),
        )
        .await;
    }

    /// Stops the arkd simulator's server (its state is kept).
    pub async fn stop_arkd(&mut self) {
        if let Some(s) = self.sim_server.take() {
            s.stop().await;
        }
    }

    /// Serves the same arkd simulator again on the same port.
    pub async fn start_arkd(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.sim.clone().spawn(self.arkd_port).await {
                Ok(s) => {
                    self.sim_server = Some(s);
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot re-bind arkd on its port: {e}"),
            }
        }
    }

    /// A MariaDB/SQLite count (`SELECT COUNT(*) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::{Connection, Row};
        let url = &self.db.as_ref().unwrap().url;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
        let n: i64 = row.try_get(0).unwrap();
        conn.close().await.ok();
        n
    }

    /// Rows of `(text, count)` (`SELECT x, COUNT(*) … GROUP BY x`).
    pub async fn groups(&self, sql: &str) -> Vec<(String, i64)> {
        use sqlx::{Connection, Row};
        let url = &self.db.as_ref().unwrap().url;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
        conn.close().await.ok();
        rows.iter()
            .map(|r| (r.try_get::<String, _>(0).unwrap(), r.try_get(1).unwrap()))
            .collect()
    }

    pub async fn destroy(mut self) {
        self.nostr.shutdown();
        self.stop_arkd().await;
        if let Some(db) = self.db.take() {
            db.destroy().await;
        }
    }
}

/// A spawned role process; killed on drop if still running.
pub struct RoleProcess {
    pub role: String,
    pub child: Child,
    pub ready: PathBuf,
    pub stderr: PathBuf,
}

impl RoleProcess {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the ready file (the process is up); returns it parsed.
    pub async fn wait_ready(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + common::START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited early with {status}\n{}", self.role, self.logs());
            }
            if let Ok(text) = std::fs::read_to_string(&self.ready) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {:?}\n{}",
                self.role,
                common::START_DEADLINE,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit(common::STOP_DEADLINE).await
    }

    /// SIGKILL, then waits for the exit.
    pub async fn kill(&mut self) -> ExitStatus {
        self.signal("-KILL");
        self.wait_exit(common::STOP_DEADLINE).await
    }

    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}\n{}",
                self.role,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Notices seen, by the intent they answer: (notice id, code).
pub type Notices = Arc<Mutex<HashMap<EventId, Vec<(EventId, u16)>>>>;

/// Reads the 31341 notices addressed to `keys`.
pub async fn failure_reader(url: &str, keys: Keys, sink: Notices, stop: watch::Receiver<bool>) {
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![kinds::FAILURE];
    opts.catch_up_every = Duration::from_secs(10);
    let transport = PoolTransport::connect(keys.public_key(), opts)
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    let (_cursor_tx, cursor) = watch::channel(None);
    tokio::spawn(async move {
        let _keep = _cursor_tx;
        let _ = transport.pump(tx, cursor, stop).await;
    });
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let Some(answered) = ev.tags.event_ids().next().copied() else {
                continue;
            };
            let Ok((plain, _)) = decrypt(keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags)
            else {
                continue;
            };
            let Ok(n) = serde_json::from_str::<FailureNotice>(&plain) else {
                continue;
            };
            let mut all = sink.lock().await;
            let seen = all.entry(answered).or_default();
            if !seen.iter().any(|(id, _)| *id == ev.id) {
                seen.push((ev.id, n.code.code()));
            }
        }
    });
}

/// Path helper for logs in failure messages.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}
