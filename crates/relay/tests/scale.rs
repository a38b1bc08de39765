//! Scale-out with real processes: one `ark-relay ingest` and two
//! `ark-relay worker` processes share one MariaDB and one Redis. 1 000
//! intents from 20 unfunded authors (each must end in one 2001 notice) and
//! four real p2p transfers through the arkd simulator (each must end in a
//! 31340 after a two-step signing ceremony whose steps may run on either
//! worker) are all answered exactly once: nothing lost, nothing doubled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // figures go to stderr

mod common;
mod roles;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_core::{JobQueue, QueueConfig};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{builders, pubkey_from_nostr};
use ark_relay_queue::RedisQueue;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{Wallet, WalletOptions};
use nostr::Keys;
use roles::{eventually, failure_reader, redis_url, Cluster};
use tokio::sync::{watch, Mutex};

const AUTHORS: usize = 20;
const PER_AUTHOR: usize = 50;
const TRANSFERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_answer_1000_intents_exactly_once() {
    let cluster = Cluster::start(
        TestDb::mariadb().await.expect("MariaDB"),
        true,
        &["workers = 4"],
    )
    .await;
    cluster.seed_inventory(16, 5_000).await;
    let url = cluster.nostr.url().to_owned();

    let mut ingest = cluster.spawn("ingest", &[]);
    let mut w1 = cluster.spawn("worker", &[]);
    let mut w2 = cluster.spawn("worker", &[]);
    ingest.wait_ready().await;
    w1.wait_ready().await;
    w2.wait_ready().await;

    // Readers first, so every notice is seen (catch-up covers the rest).
    let authors: Vec<Keys> = (0..AUTHORS).map(|_| Keys::generate()).collect();
    let notices = Arc::new(Mutex::new(HashMap::new()));
    let (stop_readers, readers_stop) = watch::channel(false);
    for keys in &authors {
        failure_reader(&url, keys.clone(), notices.clone(), readers_stop.clone()).await;
    }

    // Four real transfers, from funded wallets, concurrently with the flood.
    let mut transfers = tokio::task::JoinSet::new();
    for _ in 0..TRANSFERS {
        let keys = Keys::generate();
        let pk = pubkey_from_nostr(&keys.public_key()).unwrap();
        cluster.fund(&pk, 1_000).await;
        let wallet = Wallet::connect(
            keys,
            cluster.relay_pk,
            vec![url.clone()],
            WalletOptions {
                send_timeout: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let sink = pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
        transfers.spawn(async move {
            let c = wallet.send(sink, 100, AssetRef::gbtc()).await;
            wallet.shutdown().await;
            c
        });
    }

    // 1 000 intents from unfunded authors.
    let signing = Instant::now();
    let mut publishers = Vec::new();
    for _ in 0..8 {
        let p = PoolTransport::connect(
            Keys::generate().public_key(),
            PoolOptions::new(vec![url.clone()]),
        )
        .await
        .unwrap();
        publishers.push(Arc::new(p));
    }
    let expires = ark_relay_core::UnixTime::now().0 + 600;
    let mut intents = HashSet::new();
    let mut events = Vec::new();
    for keys in &authors {
        for _ in 0..PER_AUTHOR {
            let to = pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
            let content = IntentContent::transfer(
                uuid_like(),
                &to,
                AssetRef::gbtc(),
                100,
                &cluster.relay_pk,
                10,
                expires,
            );
            let ev = builders::intent(keys, &cluster.relay_pk, &content).unwrap();
            intents.insert(ev.id);
            events.push(ev);
        }
    }
    let signed = signing.elapsed();
    let started = Instant::now();
    let mut publishing = tokio::task::JoinSet::new();
    for (i, chunk) in events.chunks(events.len().div_ceil(32)).enumerate() {
        let chunk = chunk.to_vec();
        let publisher = publishers[i % publishers.len()].clone();
        publishing.spawn(async move {
            for ev in chunk {
                let mut tries = 0;
                while let Err(e) = publisher.publish(&ev).await {
                    tries += 1;
                    assert!(tries < 20, "cannot publish: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }
    while let Some(r) = publishing.join_next().await {
        r.unwrap();
    }
    let published = started.elapsed();

    // Every intent answered on Nostr, each by exactly one notice.
    let total = AUTHORS * PER_AUTHOR;
    eventually(
        "a notice for every intent",
        Duration::from_secs(120),
        || {
            let notices = notices.clone();
            async move { (notices.lock().await.len() >= total).then_some(()) }
        },
    )
    .await;
    let answered = started.elapsed();
    while let Some(r) = transfers.join_next().await {
        let confirmation = r
            .unwrap()
            .expect("a real transfer completes with its 31340");
        assert!(!confirmation.ark_txid.is_empty());
    }
    // Let a duplicate that would come, come: the relay's outbox publishers
    // poll every 500 ms.
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let notices = notices.lock().await;
        assert_eq!(
            notices.len(),
            total,
            "one answered intent per published intent"
        );
        for (intent, seen) in notices.iter() {
            assert!(intents.contains(intent), "a notice for an unknown event");
            assert_eq!(seen.len(), 1, "exactly one notice for {intent}: {seen:?}");
            assert_eq!(seen[0].1, 2001, "insufficient balance for {intent}");
        }
    }
    let _ = stop_readers.send(true);

    // The database agrees: each intent recorded, run and answered once.
    let n = |sql: &'static str| cluster.count(sql);
    let all = (total + TRANSFERS) as i64;
    assert_eq!(
        n("SELECT COUNT(*) FROM jobs WHERE kind = 'intent'").await,
        all
    );
    assert_eq!(
        cluster
            .groups("SELECT CONCAT(status, '/', CAST(attempts AS CHAR)), COUNT(*) FROM jobs WHERE kind = 'intent' GROUP BY 1")
            .await,
        vec![("done/1".to_owned(), all)],
        "every intent job done, finished exactly once"
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM jobs WHERE status <> 'done'").await,
        0
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM outbox WHERE kind = 31341 AND delivered_at IS NOT NULL").await,
        total as i64
    );
    assert_eq!(
        n("SELECT COUNT(*) FROM outbox WHERE kind = 31340 AND delivered_at IS NOT NULL").await,
        TRANSFERS as i64
    );
    assert_eq!(
        cluster
            .groups("SELECT status, COUNT(*) FROM signing_sessions GROUP BY status ORDER BY status")
            .await,
        vec![
            ("completed".to_owned(), TRANSFERS as i64),
            ("failed".to_owned(), total as i64)
        ]
    );
    // Redis: nothing left in flight, nothing dead-lettered.
    let queue = RedisQueue::connect(&redis_url(), &cluster.prefix, QueueConfig::default())
        .await
        .unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
    assert!(queue.dead_letters().await.unwrap().is_empty());

    // Both worker processes did a share of the work.
    for (name, stopped) in [
        ("ingest", &mut ingest),
        ("worker 1", &mut w1),
        ("worker 2", &mut w2),
    ] {
        let status = stopped.terminate().await;
        assert!(
            status.success(),
            "{name} exits 0 on SIGTERM\n{}",
            stopped.logs()
        );
    }
    let done1 = w1.logs().matches("job done").count();
    let done2 = w2.logs().matches("job done").count();
    eprintln!(
        "scale: {total} intents + {TRANSFERS} transfers; signed in {signed:?}, published in {published:?}, all answered after {answered:?}; jobs per worker process: {done1} / {done2}"
    );
    assert!(
        done1 > 0 && done2 > 0,
        "both workers took jobs ({done1}, {done2})"
    );
    assert!(done1 + done2 >= total + TRANSFERS);
    cluster.destroy().await;
}

/// A fresh action id (32 hex digits).
fn uuid_like() -> String {
    Keys::generate().public_key().to_hex()[..32].to_owned()
}
