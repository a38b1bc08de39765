//! Crash stalls are bounded by the workers' heartbeats, not by a reclaim
//! constant: real `ingest`, two `worker` and a `scheduler` processes on
//! MariaDB + Redis, wallets sending transfers without pause, and a worker
//! SIGKILLed at the moment it holds a `signing_response` job (seen in the
//! Redis consumer group's pending list).
//!
//! - The dead worker's jobs go to the other worker within
//!   `reclaim_after_secs` (3 s) of its last heartbeat, plus one pop slice.
//! - Every intent completes exactly once, none with 5001; those in flight at
//!   a kill reach their 31340 within seconds (p50/p99/max printed; the
//!   target p99 < 5 s is its own test: a redelivered answer resumes its
//!   session's in-flight arkd call at once).
//! - With a step deadline shorter than the reclaim time, a wallet answer
//!   that arrived in time but sat in the dead worker's hands is honoured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // figures go to stderr

mod common;
mod roles;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::{Wallet, WalletOptions};
use nostr::Keys;
use roles::{redis_url, Cluster};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const WALLETS: usize = 6;
const KILLS: usize = 4;
/// How long one kill may wait for a worker to hold a signing response.
const CATCH: Duration = Duration::from_secs(30);

/// A RESP value, as much of it as XPENDING and XRANGE answer with.
#[derive(Debug, Clone)]
enum Resp {
    Bulk(Option<String>),
    Int,
    Array(Vec<Resp>),
}

impl Resp {
    fn text(&self) -> Option<&str> {
        match self {
            Resp::Bulk(Some(s)) => Some(s),
            _ => None,
        }
    }

    fn items(&self) -> &[Resp] {
        match self {
            Resp::Array(v) => v,
            _ => &[],
        }
    }
}

/// The smallest Redis client the test needs (a dependency-free RESP reader):
/// the relay's own queue crate has no call for "who holds what".
struct Redis(BufReader<TcpStream>);

impl Redis {
    async fn connect(url: &str) -> Self {
        let authority = url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        Self(BufReader::new(TcpStream::connect(authority).await.unwrap()))
    }

    async fn cmd(&mut self, args: &[&str]) -> Resp {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.0.get_mut().write_all(out.as_bytes()).await.unwrap();
        self.read().await
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.0.read_line(&mut l).await.unwrap();
        l.trim_end_matches("\r\n").to_owned()
    }

    fn read(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + '_>> {
        Box::pin(async move {
            let l = self.line().await;
            let (tag, rest) = l.split_at(1);
            match tag {
                "+" => Resp::Bulk(Some(rest.to_owned())),
                "-" => panic!("redis error: {rest}"),
                ":" => Resp::Int,
                "$" => {
                    let n: i64 = rest.parse().unwrap();
                    if n < 0 {
                        return Resp::Bulk(None);
                    }
                    let mut buf = vec![0u8; usize::try_from(n).unwrap() + 2];
                    tokio::io::AsyncReadExt::read_exact(&mut self.0, &mut buf)
                        .await
                        .unwrap();
                    buf.truncate(buf.len() - 2);
                    Resp::Bulk(Some(String::from_utf8(buf).unwrap()))
                }
                "*" => {
                    let n: i64 = rest.parse().unwrap();
                    let mut v = Vec::new();
                    for _ in 0..n.max(0) {
                        v.push(self.read().await);
                    }
                    Resp::Array(v)
                }
                other => panic!("unexpected RESP type {other:?}"),
            }
        })
    }

    /// The pending entries of `consumer_prefix`'s consumers whose job kind
    /// is `kind`.
    async fn held(&mut self, stream: &str, group: &str, consumer_prefix: &str, kind: &str) -> bool {
        let pending = self
            .cmd(&["XPENDING", stream, group, "-", "+", "100"])
            .await;
        for p in pending.items() {
            let it = p.items();
            let (Some(id), Some(consumer)) = (
                it.first().and_then(Resp::text),
                it.get(1).and_then(Resp::text),
            ) else {
                continue;
            };
            if !consumer.starts_with(consumer_prefix) {
                continue;
            }
            let entry = self.cmd(&["XRANGE", stream, id, id]).await;
            let Some(fields) = entry.items().first().and_then(|e| e.items().get(1)) else {
                continue;
            };
            let fields: Vec<&str> = fields.items().iter().filter_map(Resp::text).collect();
            if fields.chunks(2).any(|kv| kv == ["kind", kind]) {
                return true;
            }
        }
        false
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One finished send: when it started and how long it took.
#[derive(Debug, Clone, Copy)]
struct Sent {
    started: Instant,
    took: Duration,
}

/// The pending entries owned by consumers named `prefix…`.
async fn owned_by(redis: &mut Redis, stream: &str, group: &str, prefix: &str) -> usize {
    let pending = redis
        .cmd(&["XPENDING", stream, group, "-", "+", "100"])
        .await;
    pending
        .items()
        .iter()
        .filter(|p| {
            p.items()
                .get(1)
                .and_then(Resp::text)
                .is_some_and(|c| c.starts_with(prefix))
        })
        .count()
}

/// Waits until a worker of process `pid` holds a signing response.
async fn catch_holding(redis: &mut Redis, cluster: &Cluster, pid: u32) {
    let stream = format!("{}:jobs", cluster.prefix);
    let group = format!("{}:workers", cluster.prefix);
    let prefix = format!("relay-{pid}-");
    let deadline = Instant::now() + CATCH;
    while !redis
        .held(&stream, &group, &prefix, "signing_response")
        .await
    {
        assert!(
            Instant::now() < deadline,
            "worker {pid} never held a signing response within {CATCH:?}"
        );
    }
}

/// The kill scenario; `bound` is what p99 of the intents in flight at a
/// kill must stay under.
async fn kill_while_holding_signing_responses(bound: Duration) {
    let cluster = Cluster::start(
        TestDb::mariadb().await.expect("MariaDB"),
        true,
        &["workers = 2"],
    )
    .await;
    cluster.seed_inventory(400, 5_000).await;
    let mut ingest = cluster.spawn("ingest", &[]);
    let mut scheduler = cluster.spawn("scheduler", &[]);
    let mut stable = cluster.spawn("worker", &[]);
    let mut victim = cluster.spawn("worker", &[]);
    for p in [&mut ingest, &mut scheduler, &mut stable, &mut victim] {
        p.wait_ready().await;
    }

    // Wallets sending 1 gBTC to each other without pause.
    let keys: Vec<Keys> = (0..WALLETS).map(|_| Keys::generate()).collect();
    for k in &keys {
        cluster
            .fund(&pubkey_from_nostr(&k.public_key()).unwrap(), 1_000_000)
            .await;
    }
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut senders = tokio::task::JoinSet::new();
    for (i, k) in keys.iter().enumerate() {
        let wallet = wallet(&cluster, k.clone()).await;
        let to = pubkey_from_nostr(&keys[(i + 1) % WALLETS].public_key()).unwrap();
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop_rx.clone());
        senders.spawn(async move {
            while !*stop.borrow() {
                let started = Instant::now();
                match wallet.send(to, 1, AssetRef::gbtc()).await {
                    Ok(_) => sent.lock().await.push(Sent {
                        started,
                        took: started.elapsed(),
                    }),
                    Err(e) => failed.lock().await.push(format!("{e}")),
                }
            }
            wallet.shutdown().await;
        });
    }

    // Kill the victim each time it holds a signing response; start another.
    let stream = format!("{}:jobs", cluster.prefix);
    let group = format!("{}:workers", cluster.prefix);
    let mut redis = Redis::connect(&redis_url()).await;
    let mut kills = Vec::new();
    let mut reclaims = Vec::new();
    for _ in 0..KILLS {
        catch_holding(&mut redis, &cluster, victim.pid()).await;
        let at = Instant::now();
        let dead = format!("relay-{}-", victim.pid());
        victim.kill().await;
        kills.push(at);
        // The dead worker's deliveries move to the live one.
        let deadline = at + Duration::from_secs(30);
        while owned_by(&mut redis, &stream, &group, &dead).await > 0 {
            assert!(
                Instant::now() < deadline,
                "the dead worker's jobs were never reclaimed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        reclaims.push(at.elapsed());
        eprintln!(
            "killed a worker holding a signing response; its jobs reclaimed after {:?}",
            at.elapsed()
        );
        victim = cluster.spawn("worker", &[]);
        victim.wait_ready().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Everything sent before the last kill has had time to finish.
    tokio::time::sleep(Duration::from_secs(15)).await;
    stop_tx.send(true).unwrap();
    let wind_down = tokio::time::timeout(Duration::from_secs(90), async {
        while senders.join_next().await.is_some() {}
    })
    .await;
    assert!(wind_down.is_ok(), "senders did not finish");

    let failed = failed.lock().await.clone();
    assert!(failed.is_empty(), "refused or lost sends: {failed:?}");
    let sent = sent.lock().await.clone();
    let mut overlapping: Vec<Duration> = sent
        .iter()
        .filter(|s| {
            kills
                .iter()
                .any(|k| s.started <= *k && *k <= s.started + s.took)
        })
        .map(|s| s.took)
        .collect();
    overlapping.sort();
    let mut all: Vec<Duration> = sent.iter().map(|s| s.took).collect();
    all.sort();
    eprintln!(
        "{} transfers, {} kills, reclaimed after {reclaims:?}; overlapping a kill: {} — p50 {:?}, p99 {:?}, max {:?}; all: p50 {:?}, p99 {:?}",
        sent.len(),
        kills.len(),
        overlapping.len(),
        percentile(&overlapping, 50.0),
        percentile(&overlapping, 99.0),
        overlapping.last().copied().unwrap_or_default(),
        percentile(&all, 50.0),
        percentile(&all, 99.0),
    );
    eprintln!("overlapping a kill: {overlapping:?}");
    // reclaim_after (3 s) after the last heartbeat, plus one pop slice
    // (0.75 s), the poll, and slack for a loaded 2-core machine.
    for r in &reclaims {
        assert!(*r < Duration::from_secs(6), "reclaimed only after {r:?}");
    }
    assert!(
        overlapping.len() >= KILLS,
        "each kill overlapped at least the intent whose response it held"
    );
    assert!(
        percentile(&overlapping, 99.0) < bound,
        "p99 of intents overlapping a kill is not under {bound:?}: {overlapping:?}"
    );
    // Exactly once: one completed session per confirmed send, none failed.
    let sessions = cluster
        .groups("SELECT status, CAST(COUNT(*) AS SIGNED) FROM signing_sessions GROUP BY status")
        .await;
    eprintln!("sessions by status: {sessions:?}");
    assert!(
        sessions.iter().all(|(status, _)| status == "completed"),
        "a session did not complete: {sessions:?}"
    );
    let completed: i64 = sessions.iter().map(|(_, n)| n).sum();
    assert_eq!(completed, i64::try_from(sent.len()).unwrap());
    for mut p in [ingest, scheduler, stable, victim] {
        assert!(p.terminate().await.success(), "{}", p.logs());
    }
    cluster.destroy().await;
}

async fn wallet(cluster: &Cluster, keys: Keys) -> Wallet {
    Wallet::connect(
        keys,
        cluster.relay_pk,
        vec![cluster.nostr.url().to_owned()],
        WalletOptions {
            send_timeout: Duration::from_secs(60),
            ..WalletOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Kills cost seconds: the dead worker's jobs are reclaimed ~3 s after its
/// last heartbeat and every intent in flight at a kill completes, exactly
/// once, without 5001, within the current engine's bound (reclaim 3 s + the
/// ceremony's retry of an in-flight arkd call, `RETRY_AFTER_SECS` = 10 s, +
/// its 1 s tick; slack for a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_holding_a_signing_response_costs_seconds() {
    kill_while_holding_signing_responses(Duration::from_secs(20)).await;
}

/// The target: p99 < 5 s for intents overlapping a kill. A signing
/// response reclaimed after the dead worker persisted
/// `ArkTxSigned`/`SignaturesCollected` (and called arkd) resumes the
/// in-flight `SubmitTx`/`FinalizeTx` at once (`GetPendingTx` first), instead
/// of waiting for the recovery scan at its retry time.
///
/// A speed target, so a benchmark rather than a CI gate (timings move 2×
/// between machines): run it with `--ignored` on a quiet machine; the figures
/// are in BENCHMARKS.md ("Worker kills").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: p99 < 5 s on a quiet machine; run with --ignored (BENCHMARKS.md, Worker kills)"]
async fn intents_overlapping_a_worker_kill_complete_within_5_s_p99() {
    kill_while_holding_signing_responses(Duration::from_secs(5)).await;
}

/// A step deadline (2 s) shorter than the reclaim time (3 s): the wallet
/// answers at once, the only worker dies holding that answer, another worker
/// starts and takes it after the deadline. The answer arrived in time, so
/// the intent completes (no 5001): the step ends only a grace period after
/// its deadline, and answers are judged by their receipt time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_received_before_the_deadline_is_honoured_after_a_kill() {
    let cluster = Cluster::start(TestDb::mariadb().await.expect("MariaDB"), true, &[]).await;
    let text = std::fs::read_to_string(&cluster.config).unwrap();
    std::fs::write(
        &cluster.config,
        text.replace("step_timeout_secs = 20", "step_timeout_secs = 2"),
    )
    .unwrap();
    cluster.seed_inventory(16, 5_000).await;
    let mut ingest = cluster.spawn("ingest", &[]);
    let mut scheduler = cluster.spawn("scheduler", &[]);
    let mut only = cluster.spawn("worker", &[]);
    for p in [&mut ingest, &mut scheduler, &mut only] {
        p.wait_ready().await;
    }
    let alice_keys = Keys::generate();
    let alice_pk = pubkey_from_nostr(&alice_keys.public_key()).unwrap();
    cluster.fund(&alice_pk, 10_000).await;
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
    let alice = wallet(&cluster, alice_keys).await;
    let send = tokio::spawn(async move {
        let r = alice.send(bob, 100, AssetRef::gbtc()).await;
        alice.shutdown().await;
        r
    });
    let mut redis = Redis::connect(&redis_url()).await;
    catch_holding(&mut redis, &cluster, only.pid()).await;
    let killed = Instant::now();
    only.kill().await;
    let mut next = cluster.spawn("worker", &[]);
    next.wait_ready().await;
    let outcome = tokio::time::timeout(Duration::from_secs(60), send)
        .await
        .expect("the send finished")
        .unwrap();
    eprintln!(
        "completed {:?} after the kill: {outcome:?}",
        killed.elapsed()
    );
    let conf = outcome.expect("the answer that arrived in time was honoured (no 5001)");
    assert!(conf
        .created
        .iter()
        .any(|c| c.owner == bob && c.amount == 100));
    for mut p in [ingest, scheduler, next] {
        assert!(p.terminate().await.success(), "{}", p.logs());
    }
    cluster.destroy().await;
}
