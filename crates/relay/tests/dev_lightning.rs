//! PRD scenarios 1 and 2 against the real `ark-relay dev` binary, as a user
//! would try them: the reference wallet (library) lifts sats over Lightning
//! and lands them again, `ark-relay sim-pay` plays the outside payer and
//! `ark-relay sim-invoice` the outside payee, and `GET /reserves` shows the
//! backing. Everything goes through Nostr, gRPC and HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ark_relay_wallet::keys::load_keys;
use ark_relay_wallet::{Wallet, WalletOptions};
use common::{command, http_get, run, DevProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lift_and_land_through_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut dev = DevProcess::spawn(&data, tmp.path(), &[]);
    let facts = dev.wait_ready();
    let dev_json = data.join("dev.json");
    let relay = facts["relay_pubkey"].as_str().unwrap().parse().unwrap();
    let relays: Vec<String> = facts["nostr_relays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let alice_key = facts["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "alice")
        .unwrap()["key_file"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = load_keys(Some(std::path::Path::new(&alice_key))).unwrap();
    let alice = Wallet::connect(keys, relay, relays, WalletOptions::default())
        .await
        .unwrap();
    let before = alice.balance().await.unwrap().amount("gBTC");
    // Everything in circulation before (alice's demo gBTC, the DEX demo's).
    let circulating = |url: &str| {
        let (status, body) = http_get(url, "/reserves");
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        body["reserves"][0]["circulating"].as_u64().unwrap()
    };
    let circulating_before = circulating(facts["http_url"].as_str().unwrap());

    // Scenario 1: lift; the simulator's outside payer pays the hold invoice.
    let ticket = alice.lift(100_000).await.unwrap();
    assert!(ticket.invoice.starts_with("lnbcrt"), "{}", ticket.invoice);
    let mut pay = command(tmp.path());
    pay.args(["sim-pay", &ticket.invoice, "--dev-json"])
        .arg(&dev_json);
    let paid = run(pay);
    assert!(paid.status.success(), "sim-pay: {}", paid.stderr);
    assert!(paid.stdout.contains("ACCEPTED"), "{}", paid.stdout);
    let conf = alice
        .lift_outcome(&ticket, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(conf.created[0].amount, 100_000);

    // Scenario 2: land to an outside node's invoice.
    let mut inv = command(tmp.path());
    inv.args(["sim-invoice", "50000", "--dev-json"])
        .arg(&dev_json);
    let invoice = run(inv);
    assert!(invoice.status.success(), "sim-invoice: {}", invoice.stderr);
    let conf = alice
        .land(invoice.stdout.trim(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(conf.preimage.as_deref().map(str::len), Some(64));
    let after = alice.balance().await.unwrap().amount("gBTC");
    assert_eq!(
        after,
        before + 100_000 - 50_000 - 50,
        "landed 50 000 + 0.1 % fee"
    );

    // The backing is public.
    let url = facts["http_url"].as_str().unwrap();
    let (status, body) = http_get(url, "/reserves");
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let gbtc = &body["reserves"][0];
    assert_eq!(gbtc["ticker"], "gBTC");
    assert_eq!(
        gbtc["circulating"].as_u64().unwrap(),
        circulating_before + 100_000 - 50_000
    );

    // /health reports the queue and the Nostr relay connection next to the
    // daemons' circuit breakers.
    let (status, body) = http_get(url, "/health");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let backends = health["backends"].as_array().unwrap();
    let named = |prefix: &str| {
        backends
            .iter()
            .any(|b| b["name"].as_str().unwrap_or("").starts_with(prefix) && b["healthy"] == true)
    };
    assert!(named("in-process queue"), "{body}");
    assert!(named("nostr ws://127.0.0.1"), "{body}");
    assert!(named("lnd") && named("arkd"), "{body}");
    alice.shutdown().await;
    assert!(dev.terminate().success());
}
