//! Read-only mode (PRD §10.5) with real processes, MariaDB and Redis:
//!
//! - **arkd down**: `ark-relay run` keeps serving; `/health` says
//!   `degraded`; intents are answered once with 7001 and kept; an intent
//!   that expires meanwhile is answered 1004; when arkd is back, the kept
//!   intents run their ceremonies and end in 31340.
//! - **database down** (the relay's MariaDB user loses its rights and its
//!   connections are killed): ingest cannot record events, nothing is lost —
//!   once the rights are back, the Nostr catch-up re-reads the missed intents
//!   and each is answered exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // figures go to stderr

mod common;
mod roles;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ark_relay_core::{ErrorCode, UnixTime};
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{Wallet, WalletOptions};
use nostr::Keys;
use roles::{eventually, Cluster};

async fn health(base: &str) -> serde_json::Value {
    let base = base.to_owned();
    let (status, body) = tokio::task::spawn_blocking(move || common::http_get(&base, "/health"))
        .await
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["http_status"] = status.into();
    v
}

async fn wait_health(base: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(base).await;
        if h["status"] == want {
            return h;
        }
        assert!(Instant::now() < deadline, "/health never said {want}: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sink() -> ark_relay_core::PubKey {
    pubkey_from_nostr(&Keys::generate().public_key()).unwrap()
}

fn action_id() -> String {
    Keys::generate().public_key().to_hex()[..32].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arkd_down_keeps_intents_answers_7001_and_completes_them_when_it_returns() {
    let mut cluster = Cluster::start(
        TestDb::mariadb().await.expect("MariaDB"),
        true,
        &[
            "probe_every_ms = 200",
            "probe_timeout_ms = 500",
            "deferred_retry_ms = 300",
        ],
    )
    .await;
    cluster.seed_inventory(8, 5_000).await;
    let url = cluster.nostr.url().to_owned();
    let mut relay = cluster.spawn("run", &["--http", "127.0.0.1:0"]);
    let ready = relay.wait_ready().await;
    let http = ready["http_url"].as_str().unwrap().to_owned();
    assert_eq!(wait_health(&http, "ok").await["http_status"], 200);

    // Three senders that will be kept, and one whose intent expires first.
    let mut wallets = Vec::new();
    for _ in 0..4 {
        let keys = Keys::generate();
        cluster
            .fund(&pubkey_from_nostr(&keys.public_key()).unwrap(), 1_000)
            .await;
        let w = Wallet::connect(
            keys,
            cluster.relay_pk,
            vec![url.clone()],
            WalletOptions {
                catch_up_every: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        w.params().await.expect("get_info answered");
        wallets.push(w);
    }

    // arkd goes away: the relay stays up and says so.
    cluster.stop_arkd().await;
    let h = wait_health(&http, "degraded").await;
    assert_eq!(h["http_status"], 200, "the HTTP API keeps serving: {h}");
    let arkd = h["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "arkd")
        .cloned()
        .unwrap_or_else(|| panic!("arkd in /health: {h}"));
    assert_eq!(arkd["healthy"], false, "{h}");
    let (status, _) = tokio::task::spawn_blocking({
        let http = http.clone();
        move || common::http_get(&http, "/assets")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "reads still work");

    let mut intents = Vec::new();
    for (i, w) in wallets.iter().enumerate() {
        let expires = if i == 3 {
            UnixTime::now().0 + 3
        } else {
            w.intent_expiry()
        };
        let content = IntentContent::transfer(
            action_id(),
            &sink(),
            AssetRef::gbtc(),
            100,
            &cluster.relay_pk,
            10,
            expires,
        );
        intents.push(w.publish_intent(&content).await.unwrap());
    }
    // Each is answered 7001, once, and kept (its job stays pending).
    for (w, id) in wallets.iter().zip(&intents) {
        eventually("a 7001 notice", Duration::from_secs(20), || async {
            w.failure(id)
                .filter(|n| n.code == ErrorCode::BackendUnavailable)
                .map(|_| ())
        })
        .await;
    }
    assert_eq!(
        cluster
            .count("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE '7001:%'")
            .await,
        4
    );
    // Deferred over and over (every 300 ms) without a second notice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cluster
            .count("SELECT COUNT(*) FROM outbox WHERE kind = 31341")
            .await,
        4,
        "one notice per intent while arkd is down"
    );
    assert!(
        cluster
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'intent' AND status = 'pending'")
            .await
            >= 3
    );
    // The short-lived one expires while arkd is still down: 1004, no ceremony.
    let expired = intents[3];
    eventually(
        "1004 for the expired intent",
        Duration::from_secs(20),
        || async {
            wallets[3]
                .failure(&expired)
                .filter(|n| n.code == ErrorCode::Expired)
                .map(|_| ())
        },
    )
    .await;

    // arkd is back: the kept intents run and complete.
    let back = Instant::now();
    cluster.start_arkd().await;
    wait_health(&http, "ok").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster
        .count("SELECT COUNT(*) FROM outbox WHERE kind = 31340 AND delivered_at IS NOT NULL")
        .await
        < 3
    {
        let logs = relay.logs();
        let tail: String = logs.lines().rev().take(60).collect::<Vec<_>>().join("\n");
        assert!(
            Instant::now() < deadline,
            "no three 31340 after arkd returned; relay log (newest first):\n{tail}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = back.elapsed();
    for (w, id) in wallets.iter().zip(&intents).take(3) {
        let c = eventually("the wallet's 31340", Duration::from_secs(20), || async {
            w.outcome(*id, Duration::from_millis(200)).await.ok()
        })
        .await;
        assert!(c.intents.contains(id), "the 31340 completes {id}");
        assert!(!c.ark_txid.is_empty());
    }
    assert_eq!(
        cluster
            .groups("SELECT status, COUNT(*) FROM signing_sessions GROUP BY status ORDER BY status")
            .await,
        vec![("completed".to_owned(), 3), ("failed".to_owned(), 1)],
        "three completed, the expired one failed with 1004"
    );
    assert_eq!(
        cluster
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'intent' AND status = 'done' AND attempts = 1")
            .await,
        4
    );
    eprintln!("readonly: kept intents completed {recovered:?} after arkd returned");
    assert!(relay.terminate().await.success(), "{}", relay.logs());
    for w in wallets {
        w.shutdown().await;
    }
    cluster.destroy().await;
}

/// Runs one statement as the MariaDB admin.
async fn admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(&ark_relay_store::testing::mysql_admin_url())
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.ok();
}

/// Kills every connection of `user`.
async fn kill_connections(user: &str) {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::MySqlConnection::connect(&ark_relay_store::testing::mysql_admin_url())
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = ?")
            .bind(user)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for r in rows {
        let id: i64 = r.try_get(0).unwrap();
        let _ = sqlx::query(&format!("KILL {id}")).execute(&mut conn).await;
    }
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_missed_while_the_database_is_down_are_ingested_when_it_returns() {
    let db = TestDb::mariadb().await.expect("MariaDB");
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("u{}", &name[name.len().saturating_sub(20)..]).replace('-', "_");
    let pass = "pw";
    for host in ["%", "localhost", "127.0.0.1"] {
        admin(&format!(
            "CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{pass}'"
        ))
        .await;
        admin(&format!("GRANT ALL ON `{name}`.* TO '{user}'@'{host}'")).await;
    }
    let server = ark_relay_store::testing::mysql_admin_url();
    let host = server
        .rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let relay_db_url = format!("mysql://{user}:{pass}@{host}/{name}");
    let cluster = Cluster::start(db, true, &["catch_up_every_ms = 1000"]).await;
    cluster.set_database_url(&relay_db_url);
    let url = cluster.nostr.url().to_owned();

    let mut ingest = cluster.spawn("ingest", &["--http", "127.0.0.1:0"]);
    let mut worker = cluster.spawn("worker", &[]);
    let http = ingest.wait_ready().await["http_url"]
        .as_str()
        .unwrap()
        .to_owned();
    worker.wait_ready().await;

    // An unfunded author: every intent of it is answered 2001.
    let keys = Keys::generate();
    let notices: roles::Notices = Default::default();
    let (stop_reader, reader_stop) = tokio::sync::watch::channel(false);
    roles::failure_reader(&url, keys.clone(), notices.clone(), reader_stop).await;
    let publisher = ark_relay_nostr::PoolTransport::connect(
        Keys::generate().public_key(),
        ark_relay_nostr::PoolOptions::new(vec![url.clone()]),
    )
    .await
    .unwrap();
    let publish = |keys: &Keys| {
        let content = IntentContent::transfer(
            action_id(),
            &sink(),
            AssetRef::gbtc(),
            100,
            &cluster.relay_pk,
            10,
            UnixTime::now().0 + 600,
        );
        let ev = ark_relay_protocol::builders::intent(keys, &cluster.relay_pk, &content).unwrap();
        let publisher = &publisher;
        async move {
            use ark_relay_protocol::transport::NostrTransport;
            publisher.publish(&ev).await.unwrap();
            ev.id
        }
    };
    // While the database is up: answered.
    let first = publish(&keys).await;
    eventually("the first answer", Duration::from_secs(30), || async {
        notices.lock().await.contains_key(&first).then_some(())
    })
    .await;

    // The database goes away for the relay.
    for host in ["%", "localhost", "127.0.0.1"] {
        admin(&format!(
            "REVOKE ALL PRIVILEGES ON `{name}`.* FROM '{user}'@'{host}'"
        ))
        .await;
    }
    kill_connections(&user).await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(publish(&keys).await);
    }
    // The HTTP API stays up and says what is wrong, as JSON.
    let h = health(&http).await;
    assert_eq!(h["http_status"], 503, "{h}");
    assert_eq!(h["status"], "unavailable", "{h}");
    assert_eq!(h["error"]["code"], 7001, "{h}");
    let (status, body) = tokio::task::spawn_blocking({
        let http = http.clone();
        move || common::http_get(&http, "/info")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "static facts are still served: {body}");
    // Give the relay time to try (and fail) to record them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        ingest.logs().contains("ingest failed"),
        "ingest saw the database fail\n{}",
        ingest.logs()
    );
    let recorded = cluster
        .count("SELECT COUNT(*) FROM processed_events WHERE kind = 31510")
        .await;
    assert_eq!(recorded, 1, "nothing recorded while the database is down");

    // The database returns: the catch-up re-reads and records them.
    let back = Instant::now();
    for host in ["%", "localhost", "127.0.0.1"] {
        admin(&format!("GRANT ALL ON `{name}`.* TO '{user}'@'{host}'")).await;
    }
    eventually(
        "the missed intents answered",
        Duration::from_secs(60),
        || async {
            let n = notices.lock().await;
            missed.iter().all(|id| n.contains_key(id)).then_some(())
        },
    )
    .await;
    let caught_up = back.elapsed();
    assert_eq!(wait_health(&http, "ok").await["http_status"], 200);
    let mut per_event: HashMap<String, i64> = HashMap::new();
    for (id, n) in cluster
        .groups(
            "SELECT event_id, COUNT(*) FROM processed_events WHERE kind = 31510 GROUP BY event_id",
        )
        .await
    {
        per_event.insert(id, n);
    }
    assert_eq!(per_event.len(), 4);
    for id in &missed {
        assert_eq!(per_event.get(&id.to_hex()), Some(&1), "{id} recorded once");
    }
    // One answer each (wait a publisher poll for a duplicate to show).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (id, seen) in notices.lock().await.iter() {
        assert_eq!(seen.len(), 1, "exactly one notice for {id}: {seen:?}");
        assert_eq!(seen[0].1, 2001);
    }
    let _ = stop_reader.send(true);
    assert_eq!(
        cluster
            .count("SELECT COUNT(*) FROM jobs WHERE status = 'done' AND kind = 'intent'")
            .await,
        4
    );
    eprintln!("readonly: events missed during the database outage ingested {caught_up:?} after it returned");
    assert!(ingest.terminate().await.success());
    assert!(worker.terminate().await.success());
    for host in ["%", "localhost", "127.0.0.1"] {
        admin(&format!("DROP USER IF EXISTS '{user}'@'{host}'")).await;
    }
    cluster.destroy().await;
}
