//! The production topology as README.md ("Production topology") brings it
//! up, from a fresh database and data dir, with no SQL or RPC done by hand:
//! `ark-relay sim` as its own process, PyPI `nostr-relay` with
//! `deploy/nostr-relay.yaml`, MariaDB, Redis, and `ingest` + two `worker`s +
//! `scheduler` from one `relay.toml`. gBTC appears (minted through tapd, its
//! genesis block mined by the simulator on its own), the inventory fills
//! through the arkd simulator's admin API, and a lift, a transfer and a land
//! complete — the wallet library over Nostr, `sim-pay` and `sim-invoice`
//! (with `--sim-json`) as the outside Lightning world. Every wait has a
//! deadline.
//!
//! It then runs ring batches of 2 to 16 parties and reads the size of every
//! event the Nostr relay stored, per kind and per batch size, and prints the
//! largest (the figures in docs/operations.md; the default 4 096-byte limit
//! of `nostr-relay` would refuse the batches' challenges).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test harness; figures go to stderr

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ark_relay_protocol::content::AssetRef;
use ark_relay_wallet::{Wallet, WalletOptions};
use common::{command, http_get, mysql_server_url, run, TempMysqlDb};

const DEADLINE: Duration = Duration::from_secs(90);

/// A child process killed (and reaped) on drop.
struct Proc {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, logs: &Path) -> Self {
        let stderr = logs.join(format!("{name}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            stderr,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited with {status}\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` returns `Some`, checking that `procs` stay alive.
fn wait_for<T>(what: &str, procs: &mut [&mut Proc], mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        for p in procs.iter_mut() {
            p.check_alive();
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}\n{}",
            procs
                .iter()
                .map(|p| format!("--- {}\n{}", p.name, p.log()))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn py_relay_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ARK_RELAY_TEST_PY_RELAY") {
        return PathBuf::from(p);
    }
    let guess = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/py-nostr-relay/bin/nostr-relay");
    assert!(
        guess.exists(),
        "PyPI nostr-relay is not installed; run scripts/test (it installs it into target/py-nostr-relay)"
    );
    guess
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn get_json(base: &str, path: &str) -> serde_json::Value {
    let (status, body) = http_get(base, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_topology_lifts_transfers_and_lands_from_nothing() {
    let server = mysql_server_url().unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into());
    let redis = std::env::var("ARK_RELAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    // MariaDB: a fresh, empty database.
    let db = TempMysqlDb::create(&server, "topology").await;

    // 1. The simulators, as their own process (README: `ark-relay sim`).
    let sim_dir = root.join("sim");
    let mut sim_cmd = command(root);
    sim_cmd
        .args(["sim", "--block-secs", "1", "--data-dir"])
        .arg(&sim_dir);
    let mut sim = Proc::spawn("sim", sim_cmd, &logs);
    let sim_json = sim_dir.join("sim.json");
    let facts = wait_for("sim.json", &mut [&mut sim], || read_json(&sim_json));

    // 2. An independent Nostr relay with the deployed configuration.
    let nostr_port = free_port();
    let nostr_dir = root.join("nostr");
    std::fs::create_dir_all(&nostr_dir).unwrap();
    let yaml = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nostr-relay.yaml"),
    )
    .unwrap()
    .replace("6969", &nostr_port.to_string());
    std::fs::write(nostr_dir.join("nostr-relay.yaml"), yaml).unwrap();
    let mut py_cmd = Command::new(py_relay_binary());
    py_cmd
        .args(["-c", "nostr-relay.yaml", "serve", "--use-uvicorn"])
        .current_dir(&nostr_dir);
    let mut py = Proc::spawn("nostr-relay", py_cmd, &logs);
    wait_for("the Nostr relay listening", &mut [&mut py], || {
        std::net::TcpStream::connect(("127.0.0.1", nostr_port))
            .ok()
            .map(|_| ())
    });
    let nostr_url = format!("ws://127.0.0.1:{nostr_port}");

    // 3. One relay.toml for every role (README's, with this run's ports).
    // One addition: the batch-size measurement below funds 30 parties from
    // one key within seconds, which the default per-key rate limit (120
    // events per 10 s, docs/operations.md) would answer with 9001.
    let prefix = format!("ark-relay-topology-{}", common::unique_suffix());
    let config = root.join("relay.toml");
    let daemon = |name: &str| {
        let d = &facts[name];
        format!(
            "[{name}]\nurl = {:?}\ntls_cert = \"file:{}\"\nmacaroon = \"file:{}\"\n",
            d["url"].as_str().unwrap(),
            d["tls_cert"].as_str().unwrap(),
            d["macaroon"].as_str().unwrap(),
        )
    };
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ndatabase_url = {:?}\nredis_url = {redis:?}\nnostr_relays = [{nostr_url:?}]\n\
             [run]\nredis_prefix = {prefix:?}\nrate_limit_events = 0\n\
             [ark]\nurl = {:?}\nsimulator = true\n{}{}",
            root.join("data").display().to_string(),
            db.url(),
            facts["arkd"].as_str().unwrap(),
            daemon("lnd"),
            daemon("tapd"),
        ),
    )
    .unwrap();
    let mut migrate = command(root);
    migrate.arg("--config").arg(&config).arg("migrate");
    let migrated = run(migrate);
    assert!(migrated.status.success(), "migrate: {}", migrated.stderr);

    // 4. ingest (with the HTTP API), two workers, a scheduler.
    let mut procs = Vec::new();
    for (name, role, http) in [
        ("ingest", "ingest", true),
        ("worker-1", "worker", false),
        ("worker-2", "worker", false),
        ("scheduler", "scheduler", false),
    ] {
        let mut cmd = command(root);
        cmd.arg("--config")
            .arg(&config)
            .arg(role)
            .arg("--ready-file")
            .arg(root.join(format!("{name}.ready.json")));
        if http {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        procs.push(Proc::spawn(name, cmd, &logs));
    }
    let ready = {
        let mut all: Vec<&mut Proc> = procs.iter_mut().collect();
        all.push(&mut sim);
        all.push(&mut py);
        let names = ["ingest", "worker-1", "worker-2", "scheduler"];
        wait_for("every role ready", &mut all, || {
            let facts: Vec<_> = names
                .iter()
                .map(|n| read_json(&root.join(format!("{n}.ready.json"))))
                .collect::<Option<Vec<_>>>()?;
            Some(facts)
        })
    };
    let relay_hex = ready[0]["relay_pubkey"].as_str().unwrap().to_owned();
    assert!(
        ready
            .iter()
            .all(|r| r["relay_pubkey"] == relay_hex.as_str()),
        "one identity: {ready:?}"
    );
    let http = ready[0]["http_url"].as_str().unwrap().to_owned();

    // gBTC appears (tapd mint, genesis block mined by the simulator) and the
    // inventory fills (the arkd simulator's admin API), nothing by hand.
    let started = Instant::now();
    {
        let mut all: Vec<&mut Proc> = procs.iter_mut().collect();
        wait_for("gBTC registered", &mut all, || {
            let assets = get_json(&http, "/assets");
            assets["assets"]
                .as_array()?
                .iter()
                .any(|a| a["ticker"] == "gBTC")
                .then_some(())
        });
        eprintln!(
            "gBTC registered {:?} after the roles were up",
            started.elapsed()
        );
        wait_for("relay inventory", &mut all, || {
            let v = get_json(&http, &format!("/vtxos/{relay_hex}"));
            (!v["vtxos"].as_array()?.is_empty()).then_some(())
        });
        eprintln!(
            "inventory filled {:?} after the roles were up",
            started.elapsed()
        );
    }

    // A wallet over the same Nostr relay, and an observer of every event.
    let relay_pk = relay_hex.parse().unwrap();
    let alice = Wallet::connect(
        nostr::Keys::generate(),
        relay_pk,
        vec![nostr_url.clone()],
        WalletOptions::default(),
    )
    .await
    .unwrap();
    let bob_keys = nostr::Keys::generate();
    let bob = ark_relay_protocol::pubkey_from_nostr(&bob_keys.public_key()).unwrap();

    // Lift: the outside payer is `sim-pay --sim-json`.
    let ticket = alice.lift(100_000).await.unwrap();
    let mut pay = command(root);
    pay.args(["sim-pay", "--sim-json"])
        .arg(&sim_json)
        .arg(&ticket.invoice);
    let paid = run(pay);
    assert!(paid.status.success(), "sim-pay: {}", paid.stderr);
    let lifted = alice
        .lift_outcome(&ticket, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(lifted.created[0].amount, 100_000);

    // Transfer to bob.
    let sent = alice.send(bob, 1_000, AssetRef::gbtc()).await.unwrap();
    assert!(
        sent.created
            .iter()
            .any(|c| c.owner == bob && c.amount == 1_000),
        "{sent:?}"
    );

    // Land to an outside node's invoice from `sim-invoice --sim-json`.
    let mut inv = command(root);
    inv.args(["sim-invoice", "--sim-json"])
        .arg(&sim_json)
        .arg("50000");
    let invoice = run(inv);
    assert!(invoice.status.success(), "sim-invoice: {}", invoice.stderr);
    let landed = alice
        .land(invoice.stdout.trim(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(landed.preimage.as_deref().map(str::len), Some(64));
    let balance = alice.balance().await.unwrap().amount("gBTC");
    assert_eq!(
        balance,
        100_000 - 1_000 - 10 - 50_000 - 50,
        "lifted, sent 1 000 (+10 fee), landed 50 000 (+0.1 %)"
    );

    // Atomic batches of 2, 4, 8 and 16 parties (16 is the most a batch may
    // hold; a ring: each pays the next 100 gBTC), to measure how the relay's
    // challenges grow with the batch (docs/operations.md).
    let mut batch_sizes = Vec::new();
    for n in [2usize, 4, 8, 16] {
        let keys: Vec<nostr::Keys> = (0..n).map(|_| nostr::Keys::generate()).collect();
        let pks: Vec<_> = keys
            .iter()
            .map(|k| ark_relay_protocol::pubkey_from_nostr(&k.public_key()).unwrap())
            .collect();
        for pk in &pks {
            alice.send(*pk, 110, AssetRef::gbtc()).await.unwrap();
        }
        let mut parties = Vec::new();
        for k in keys {
            parties.push(
                Wallet::connect(
                    k,
                    relay_pk,
                    vec![nostr_url.clone()],
                    WalletOptions::default(),
                )
                .await
                .unwrap(),
            );
        }
        let mut intents = Vec::new();
        for (i, w) in parties.iter().enumerate() {
            let next = pks[(i + 1) % n];
            let prev = pks[(i + n - 1) % n];
            let content = ark_relay_protocol::content::IntentContent::batch_leg(
                ark_relay_protocol::content::IntentType::AtomicSwap,
                format!("ring-{n}-{i}"),
                &[(next, AssetRef::gbtc(), 100)],
                &[(prev, AssetRef::gbtc(), 100)],
                &w.relay(),
                10,
                w.intent_expiry(),
            );
            intents.push(w.sign_batch_intent(&content).await.unwrap());
        }
        parties[0]
            .submit_batch(&format!("ring-{n}"), intents.clone())
            .await
            .unwrap();
        for (w, ev) in parties.iter().zip(&intents) {
            let conf = w
                .outcome(
                    ark_relay_protocol::event_id_from_nostr(&ev.id),
                    Duration::from_secs(60),
                )
                .await
                .unwrap();
            assert_eq!(conf.intents.len(), n);
        }
        for w in &parties {
            w.shutdown().await;
        }
        batch_sizes.push((n, pks));
    }
    alice.shutdown().await;

    // Every process is still up; the event sizes seen on the Nostr relay.
    for p in procs.iter_mut().chain([&mut sim, &mut py]) {
        p.check_alive();
    }
    let sizes = event_sizes(&nostr_dir.join("nostr.sqlite3")).await;
    for (kind, (count, max)) in &sizes {
        eprintln!("kind {kind}: {count} events, largest content {max} bytes");
    }
    for kind in [31_511, 31_340] {
        assert!(sizes.contains_key(&kind), "no {kind} stored: {sizes:?}");
    }
    for (n, pks) in &batch_sizes {
        let (challenge, confirmation) =
            batch_event_sizes(&nostr_dir.join("nostr.sqlite3"), pks).await;
        eprintln!(
            "batch of {n}: largest 31511 content {challenge} bytes, 31340 content {confirmation} bytes"
        );
        assert!(challenge > 0 && confirmation > 0);
    }
    db.drop_db().await;
}

/// Per kind: how many events the Nostr relay stored and the largest content.
async fn event_sizes(sqlite: &Path) -> BTreeMap<i64, (i64, i64)> {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", sqlite.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT kind, COUNT(*) AS n, MAX(LENGTH(content)) AS biggest FROM events GROUP BY kind",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.get::<i64, _>("kind"),
                (r.get::<i64, _>("n"), r.get::<i64, _>("biggest")),
            )
        })
        .collect()
}

/// The largest 31511 content addressed to any of `parties`, and the largest
/// 31340 content naming one of them.
async fn batch_event_sizes(sqlite: &Path, parties: &[ark_relay_core::PubKey]) -> (i64, i64) {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}?mode=ro", sqlite.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let list = parties
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(",");
    let mut out = [0i64; 2];
    for (slot, kind) in [31_511, 31_340].into_iter().enumerate() {
        let row = sqlx::query(&format!(
            "SELECT COALESCE(MAX(LENGTH(e.content)), 0) AS biggest FROM events e \
             JOIN tags t ON t.id = e.id WHERE e.kind = {kind} AND t.name = 'p' AND t.value IN ({list})"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        out[slot] = row.get::<i64, _>("biggest");
    }
    (out[0], out[1])
}
