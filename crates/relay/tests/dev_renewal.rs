//! Delegated renewal through the real `ark-relay dev` binary (issue 15),
//! everything over Nostr: a fresh wallet (the reference wallet library)
//! receives gBTC from alice, answers the relay's `sign_renewal` challenge
//! and goes offline; the relay's round runner registers the delegation in
//! the embedded arkd simulator's next round and publishes a 31340 naming
//! the old and the new VTXO; `GET /vtxos/{pubkey}` shows the new one, the
//! wallet sees it in `sync_state` when it comes back, and `ark-relay
//! reconcile` finds the ledger equal to arkd's indexer. A second test has
//! `dev` replenish a critical inventory by boarding through a round.
//!
//! `[renewal] valid_at_percent = 0`: the simulator's VTXOs live 7 days and
//! `dev` has no chain time travel, so the renewal is made valid at once (the
//! 90 % default is covered by the engine's unit tests). Passes and rounds
//! run every second so the test waits seconds, not minutes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ark_relay_core::VtxoId;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::{AssetRef, Confirmation};
use ark_relay_protocol::kinds;
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_wallet::keys::load_keys;
use ark_relay_wallet::{Wallet, WalletOptions};
use common::{command, http_get, run, DevProcess};
use nostr::{Event, Keys};
use tokio::sync::{mpsc, watch};

const WAIT: Duration = Duration::from_secs(90);

/// Listens for the public 31340s addressed to `who` (the wallet stays
/// offline; this is only an observer).
struct Confirmations {
    rx: mpsc::Receiver<Event>,
    _stop: watch::Sender<bool>,
}

impl Confirmations {
    async fn start(url: &str, who: &Keys) -> Self {
        let mut opts = PoolOptions::new(vec![url.to_owned()]);
        opts.kinds = vec![kinds::CONFIRMATION];
        opts.catch_up_every = Duration::from_secs(1);
        opts.safety_window = Duration::from_secs(600);
        let transport = PoolTransport::connect(who.public_key(), opts)
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(256);
        let (stop, stop_rx) = watch::channel(false);
        let (_c, cursor) = watch::channel(None);
        tokio::spawn(async move {
            let _keep = _c;
            transport.pump(tx, cursor, stop_rx).await
        });
        Self { rx, _stop: stop }
    }

    /// The 31340 that spends `old` and creates something else.
    async fn renewal_of(&mut self, old: VtxoId, dev: &DevProcess) -> Confirmation {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let Ok(ev) = tokio::time::timeout_at(deadline, self.rx.recv()).await else {
                panic!("no 31340 renewing {old} in time\n{}", tail(dev));
            };
            let ev = ev.expect("observer open");
            if ev.kind.as_u16() != kinds::CONFIRMATION {
                continue;
            }
            let Ok(c) = serde_json::from_str::<Confirmation>(&ev.content) else {
                continue;
            };
            if c.spent.iter().any(|s| s.vtxo == old) && !c.created.is_empty() {
                return c;
            }
        }
    }
}

/// The end of dev's log, for failure messages.
fn tail(dev: &DevProcess) -> String {
    let log = dev.stderr();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// Polls `check` every 200 ms until it returns `Some`, failing after `WAIT`.
async fn until<T, F, Fut>(what: &str, dev: &DevProcess, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            tail(dev)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_wallets_vtxo_is_renewed_in_a_round() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut dev = DevProcess::spawn(
        &data,
        tmp.path(),
        &[
            ("ARK_RELAY_RENEWAL__VALID_AT_PERCENT", "0"),
            ("ARK_RELAY_RENEWAL__EVERY_SECS", "1"),
            ("ARK_RELAY_ROUNDS__EVERY_SECS", "1"),
        ],
    );
    let facts = dev.wait_ready();
    let relay = facts["relay_pubkey"].as_str().unwrap().parse().unwrap();
    let relays: Vec<String> = facts["nostr_relays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let http = facts["http_url"].as_str().unwrap().to_owned();
    assert_eq!(facts["rounds"]["renewal"], true, "dev.json: {facts}");
    assert_eq!(facts["rounds"]["renewal_valid_at_percent"], 0);
    let alice_key = facts["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "alice")
        .unwrap()["key_file"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = Wallet::connect(
        load_keys(Some(std::path::Path::new(&alice_key))).unwrap(),
        relay,
        relays.clone(),
        WalletOptions::default(),
    )
    .await
    .unwrap();

    // Carol, a fresh wallet, receives gBTC.
    let carol_keys = Keys::generate();
    let carol = Wallet::connect(
        carol_keys.clone(),
        relay,
        relays.clone(),
        WalletOptions::default(),
    )
    .await
    .unwrap();
    carol.params().await.unwrap();
    alice
        .send(carol.pubkey(), 2_000, AssetRef::gbtc())
        .await
        .unwrap();
    alice.shutdown().await;
    let mine = carol.sync().await.unwrap();
    let [received] = mine.as_slice() else {
        panic!("carol holds one VTXO: {mine:?}")
    };
    assert_eq!(received.amount, 2_000);
    let old = received.vtxo;

    let mut confirmations = Confirmations::start(&relays[0], &carol_keys).await;
    // The relay offers a renewal; carol's client signs it (the relay sends
    // a waiting challenge again on her sync_state).
    until("carol's renewal to be scheduled", &dev, || {
        let carol = carol.clone();
        async move {
            let views = carol.renewals().await.ok()?;
            let (_, view) = views.iter().find(|(id, _)| *id == old)?;
            (view.state == "scheduled").then_some(())
        }
    })
    .await;

    // Carol goes offline; only an observer (listening since before she
    // signed) watches for her 31340s.
    carol.shutdown().await;
    let c = confirmations.renewal_of(old, &dev).await;
    let [new] = c.created.as_slice() else {
        panic!("one new VTXO: {c:?}")
    };
    assert_eq!(new.owner, carol.pubkey());
    assert_eq!(new.amount, 2_000, "same gBTC, renewal fee 0");
    assert_ne!(new.vtxo, old);
    // Through a round: the runner logged its finalization with that
    // commitment.
    let log = dev.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("round finalized") && l.contains(&c.ark_txid)),
        "no finalized round with commitment {}\n{}",
        c.ark_txid,
        tail(&dev)
    );

    // GET /vtxos/{pubkey}: the new VTXO, not the old one.
    let path = format!("/vtxos/{}", carol.pubkey());
    let (status, body) = http_get(&http, &path);
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<String> = body["vtxos"]
        .as_array()
        .unwrap_or_else(|| panic!("vtxos list: {body}"))
        .iter()
        .map(|v| v["outpoint"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, vec![new.vtxo.to_string()], "{body}");

    // Back online, carol's sync_state shows the renewed VTXO.
    let carol = Wallet::connect(carol_keys, relay, relays, WalletOptions::default())
        .await
        .unwrap();
    let mine = carol.sync().await.unwrap();
    assert_eq!(
        mine.iter().map(|v| v.vtxo).collect::<Vec<_>>(),
        vec![new.vtxo]
    );
    assert_eq!(carol.balance().await.unwrap().amount("gBTC"), 2_000);
    carol.shutdown().await;

    // The ledger agrees with arkd's indexer.
    let mut reconcile = command(tmp.path());
    reconcile
        .arg("reconcile")
        .env(
            "ARK_RELAY_DATABASE_URL",
            facts["database"]["url"].as_str().unwrap(),
        )
        .env(
            "ARK_RELAY_ARK__URL",
            facts["simulators"]["arkd"].as_str().unwrap(),
        );
    let out = run(reconcile);
    assert!(
        out.status.success(),
        "reconcile: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(dev.terminate().success());
}

/// The value of the Prometheus series `name{labels…}` whose labels include
/// every `want` pair, if exposed.
fn metric(text: &str, name: &str, want: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| want.iter().all(|w| l.contains(w)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// `dev` replenishes a critical inventory by boarding, not `FundVtxo`: its
/// lnd simulator's wallet pays the relay's boarding address, dev's block
/// miner confirms it, a round turns it into VTXOs; the ledger agrees with
/// arkd afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_boards_a_critical_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The demo seed's 50 VTXOs are below `critical`: one batch of 5.
    let mut dev = DevProcess::spawn(
        &data,
        tmp.path(),
        &[
            ("ARK_RELAY_INVENTORY__CRITICAL", "100"),
            ("ARK_RELAY_INVENTORY__WARNING", "100"),
            ("ARK_RELAY_INVENTORY__TARGET", "105"),
            ("ARK_RELAY_INVENTORY__BATCH_SIZE", "5"),
            ("ARK_RELAY_INVENTORY__MAX_BATCHES_PER_RUN", "1"),
            ("ARK_RELAY_INVENTORY__EVERY_SECS", "2"),
            ("ARK_RELAY_ROUNDS__EVERY_SECS", "1"),
            ("ARK_RELAY_SETTLEMENT__DEV_BLOCK_SECS", "1"),
        ],
    );
    let facts = dev.wait_ready();
    let http = facts["http_url"].as_str().unwrap().to_owned();
    assert_eq!(facts["rounds"]["boarding"], true, "dev.json: {facts}");
    let boarded = until("a boarding round job done", &dev, || {
        let (status, body) = http_get(&http, "/metrics");
        async move {
            (status == 200).then_some(())?;
            metric(
                &body,
                "ark_relay_round_jobs_total",
                &["kind=\"inventory_board\"", "outcome=\"done\""],
            )
            .filter(|n| *n >= 1.0)
        }
    })
    .await;
    assert!(boarded >= 1.0);
    let log = dev.stderr();
    assert!(log.contains("replenishment by boarding"), "{}", tail(&dev));
    assert!(
        log.lines()
            .any(|l| l.contains("boarded VTXOs recorded in the ledger")),
        "{}",
        tail(&dev)
    );
    let mut reconcile = command(tmp.path());
    reconcile
        .arg("reconcile")
        .env(
            "ARK_RELAY_DATABASE_URL",
            facts["database"]["url"].as_str().unwrap(),
        )
        .env(
            "ARK_RELAY_ARK__URL",
            facts["simulators"]["arkd"].as_str().unwrap(),
        );
    let out = run(reconcile);
    assert!(
        out.status.success(),
        "reconcile: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(dev.terminate().success());
}
