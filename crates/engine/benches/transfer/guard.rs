//! The transfer bench's guards (issue #18, item 5): figures measured in the
//! same run as the transfers, so the targets are ratios that hold across
//! machines — the raw BIP-340 verify rate on one core, the Nostr echo floor
//! of the same websocket relay and idle soft finality against it, and a
//! flood from one key while 20 honest wallets transfer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ark_relay_core::{EventId, PubKey, UnixTime};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_wallet::Wallet;
use bitcoin::secp256k1::{schnorr, Message, SECP256K1};
use nostr::{EventBuilder, Keys, Kind, Tag};
use tokio::sync::{mpsc, watch};

/// Nostr hops of one transfer: intent →, 31511 ←, 31512 →, 31511 ←,
/// 31512 →, 31340 ←; with one-step signing (`--one-step`) the second
/// 31511/31512 pair is gone.
pub fn hops(one_step: bool) -> u32 {
    if one_step {
        4
    } else {
        6
    }
}

/// Intents seen by the observer, by id (the start of soft finality).
pub type Seen = Arc<Mutex<HashMap<EventId, Instant>>>;

/// Raw libsecp256k1 BIP-340 verifications per second on one thread (as
/// `cargo bench -p ark-relay-protocol --bench ingest` measures it).
pub async fn raw_verify_rate() -> f64 {
    tokio::task::spawn_blocking(|| {
        let keys: Vec<Keys> = (0..50).map(|_| Keys::generate()).collect();
        let raw: Vec<(
            schnorr::Signature,
            Message,
            bitcoin::secp256k1::XOnlyPublicKey,
        )> = (0..4_000)
            .filter_map(|i| {
                let k = &keys[i % keys.len()];
                let e = EventBuilder::new(Kind::from(31510u16), i.to_string())
                    .sign_with_keys(k)
                    .ok()?;
                let sig = schnorr::Signature::from_slice(e.sig.as_ref()).ok()?;
                let pk =
                    bitcoin::secp256k1::XOnlyPublicKey::from_slice(&e.pubkey.to_bytes()).ok()?;
                Some((sig, Message::from_digest(e.id.to_bytes()), pk))
            })
            .collect();
        let mut best = 0.0f64;
        for _ in 0..3 {
            let t = Instant::now();
            let mut ok = 0usize;
            for (sig, msg, pk) in &raw {
                ok += usize::from(SECP256K1.verify_schnorr(sig, msg, pk).is_ok());
            }
            std::hint::black_box(ok);
            best = best.max(raw.len() as f64 / t.elapsed().as_secs_f64());
        }
        best
    })
    .await
    .unwrap_or(0.0)
}

/// Median publish → receive time of one event through the relay at `url`
/// (a publisher and a subscribed reader, both rust-nostr pools like the
/// relay's and the wallets').
pub async fn echo_floor(url: &str) -> Result<Duration, String> {
    let reader_keys = Keys::generate();
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![1];
    let reader = PoolTransport::connect(reader_keys.public_key(), opts)
        .await
        .map_err(|e| e.to_string())?;
    let writer = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec![url.to_owned()]),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel(64);
    let (_c, cursor) = watch::channel(Some(UnixTime::now()));
    let (stop_tx, stop) = watch::channel(false);
    let r = reader.clone();
    tokio::spawn(async move { r.pump(tx, cursor, stop).await });
    let author = Keys::generate();
    let mut samples = Vec::new();
    for i in 0..25 {
        let ev = EventBuilder::new(Kind::from(1u16), format!("echo {i}"))
            .tag(Tag::public_key(reader_keys.public_key()))
            .sign_with_keys(&author)
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        writer.publish(&ev).await.map_err(|e| e.to_string())?;
        loop {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .map_err(|_| "echo not received within 10 s".to_owned())?
                .ok_or("reader stopped")?;
            if got.id == ev.id {
                break;
            }
        }
        if i >= 5 {
            samples.push(t.elapsed());
        }
    }
    let _ = stop_tx.send(true);
    reader.shutdown().await;
    writer.shutdown().await;
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// Soft finality of `n` transfers sent one after another by `wallet` on an
/// otherwise idle relay.
pub async fn idle_soft(wallet: &Wallet, seen: &Seen, n: usize) -> Vec<Duration> {
    let Some(sink) = ark_relay_protocol::pubkey_from_nostr(&Keys::generate().public_key()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for _ in 0..n {
        if let Some(d) = timed_send(wallet, seen, sink).await {
            out.push(d);
        }
    }
    out
}

async fn timed_send(wallet: &Wallet, seen: &Seen, sink: PubKey) -> Option<Duration> {
    let conf = wallet
        .send(sink, super::AMOUNT, AssetRef::gbtc())
        .await
        .ok()?;
    let done = Instant::now();
    let at = conf.intents.first().and_then(|id| {
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    })?;
    Some(done.saturating_duration_since(at))
}

/// What the flood scenario measured.
pub struct Flood {
    /// Junk events published.
    pub junk: usize,
    /// How long publishing them took.
    pub publish: Duration,
    /// Soft finality of the honest transfers made meanwhile.
    pub honest: Vec<Duration>,
    /// Honest transfers that failed.
    pub honest_failed: usize,
}

/// One key publishes `junk` intents (refused at ingest: a 1-sat fee, 4001)
/// as fast as the relay takes them while every wallet of `honest` sends
/// `per_wallet` transfers; returns the honest wallets' soft finality.
pub async fn flood(
    url: &str,
    relay: PubKey,
    honest: &[Wallet],
    seen: &Seen,
    junk: usize,
    per_wallet: usize,
) -> Result<Flood, String> {
    let flooder = Keys::generate();
    let pool = PoolTransport::connect(
        Keys::generate().public_key(),
        PoolOptions::new(vec![url.to_owned()]),
    )
    .await
    .map_err(|e| e.to_string())?;
    let bob = ark_relay_protocol::pubkey_from_nostr(&Keys::generate().public_key()).ok_or("key")?;
    let expires = UnixTime::now().0 + 600;
    let events: Vec<nostr::Event> = (0..junk)
        .filter_map(|i| {
            let c = IntentContent::transfer(
                format!("flood-{i}"),
                &bob,
                AssetRef::gbtc(),
                1_000,
                &relay,
                1,
                expires,
            );
            builders::intent(&flooder, &relay, &c).ok()
        })
        .collect();
    let publisher = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            futures::stream::iter(events)
                .for_each_concurrent(64, |ev| {
                    let pool = pool.clone();
                    async move {
                        let _ = pool.publish(&ev).await;
                    }
                })
                .await;
            t.elapsed()
        })
    };
    use futures::StreamExt;
    let sink =
        ark_relay_protocol::pubkey_from_nostr(&Keys::generate().public_key()).ok_or("key")?;
    let runs = futures::future::join_all(honest.iter().map(|w| async move {
        let mut soft = Vec::new();
        let mut failed = 0;
        for _ in 0..per_wallet {
            match timed_send(w, seen, sink).await {
                Some(d) => soft.push(d),
                None => failed += 1,
            }
        }
        (soft, failed)
    }))
    .await;
    let publish = publisher.await.map_err(|e| e.to_string())?;
    pool.shutdown().await;
    let mut out = Flood {
        junk,
        publish,
        honest: Vec::new(),
        honest_failed: 0,
    };
    for (soft, failed) in runs {
        out.honest.extend(soft);
        out.honest_failed += failed;
    }
    out.honest.sort();
    Ok(out)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Prints every guard with its target and whether it is met.
pub fn print(
    verify_rate: f64,
    transfers_per_s: f64,
    soft: &[Duration],
    echo: Option<Duration>,
    idle: &[Duration],
    flood: Option<&Flood>,
    hops: u32,
) {
    println!("\nGuards (issue #18; ratios measured in this run):");
    let ratio = if verify_rate > 0.0 {
        transfers_per_s / verify_rate
    } else {
        0.0
    };
    println!(
        "  raw BIP-340 verify {:.0}/s (one core); transfers {:.1}/s; ratio {:.3} % (target ≥ 2.4 %): {}",
        verify_rate,
        transfers_per_s,
        ratio * 100.0,
        verdict(ratio >= 0.024)
    );
    let (p50, p99) = (pct(soft, 0.5), pct(soft, 0.99));
    println!(
        "  soft finality p50 {} (target < 300 ms): {}; p99 {} (target < 1 s): {}",
        ms(p50),
        verdict(!soft.is_empty() && p50 < Duration::from_millis(300)),
        ms(p99),
        verdict(!soft.is_empty() && p99 < Duration::from_secs(1))
    );
    match echo {
        Some(echo) => {
            let mut idle = idle.to_vec();
            idle.sort();
            let floor = echo * hops;
            let idle_p50 = pct(&idle, 0.5);
            let r = idle_p50.as_secs_f64() / floor.as_secs_f64().max(1e-9);
            println!(
                "  Nostr echo {:.2} ms; floor {hops} hops = {:.1} ms; idle soft finality p50 {:.1} ms over {} transfers = {:.2} × floor (target ≤ 1.25): {}",
                echo.as_secs_f64() * 1000.0,
                floor.as_secs_f64() * 1000.0,
                idle_p50.as_secs_f64() * 1000.0,
                idle.len(),
                r,
                verdict(!idle.is_empty() && r <= 1.25)
            );
        }
        None => println!("  Nostr echo floor: not measured"),
    }
    match flood {
        Some(f) => println!(
            "  flood: {} junk intents from one key published in {:.1} s; {} honest transfers meanwhile ({} failed): p50 {}, p99 {} (target p99 < 1 s): {}",
            f.junk,
            f.publish.as_secs_f64(),
            f.honest.len(),
            f.honest_failed,
            ms(pct(&f.honest, 0.5)),
            ms(pct(&f.honest, 0.99)),
            verdict(!f.honest.is_empty() && f.honest_failed == 0 && pct(&f.honest, 0.99) < Duration::from_secs(1))
        ),
        None => println!("  flood: skipped (--flood 0)"),
    }
}
