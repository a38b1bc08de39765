//! The transfer bench's report: latency percentiles and the per-step table.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Args;

pub struct Results {
    /// Intent seen on the Nostr relay → 31340 received by the sender.
    pub soft: Vec<Duration>,
    /// Around `Wallet::send` (adds the wallet's `sync_state` round trip).
    pub send: Vec<Duration>,
    pub completed: usize,
    pub failed: BTreeMap<String, usize>,
    pub wall: Duration,
    pub timed_out: bool,
}

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

pub fn row(name: &str, samples: &[Duration]) -> String {
    let mut s = samples.to_vec();
    s.sort();
    let mean = if s.is_empty() {
        Duration::ZERO
    } else {
        s.iter().sum::<Duration>() / s.len() as u32
    };
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} |",
        s.len(),
        ms(mean),
        ms(pct(&s, 50.0)),
        ms(pct(&s, 95.0)),
        ms(pct(&s, 99.0)),
        ms(s.last().copied().unwrap_or_default()),
    )
}

pub fn report(
    args: &Args,
    res: &Results,
    warm: &[Duration],
    timings: &BTreeMap<String, Vec<Duration>>,
) {
    if args.mode == "swap" {
        let pairs = args.wallets / 2;
        let total = pairs * args.transfers;
        let bps = res.completed as f64 / res.wall.as_secs_f64().max(1e-9);
        println!();
        println!(
            "swap bench: {pairs} pairs × {} two-party batches, db={}, queue={}, workers={}",
            args.transfers, args.db, args.queue, args.workers
        );
        println!(
            "completed {}/{total} batches in {:.2} s wall → {bps:.1} batches/s = {:.1} intents/s",
            res.completed,
            res.wall.as_secs_f64(),
            bps * 2.0
        );
        for (k, v) in &res.failed {
            println!("failed: {v} × {k}");
        }
        println!();
        println!("| latency (ms) | n | mean | p50 | p95 | p99 | max |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        println!(
            "{}",
            row(
                "**batch finality** (`submit_batch` sent → 31340 at both parties)",
                &res.soft
            )
        );
        println!(
            "{}",
            row(
                "whole round (both sign intents + submit + outcome)",
                &res.send
            )
        );
        println!();
        println!("| relay-side step (ms) | n | mean | p50 | p95 | p99 | max |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (k, v) in timings {
            println!("{}", row(k, v));
        }
        let _ = warm;
        return;
    }
    let total = args.wallets * args.transfers;
    let tput = res.completed as f64 / res.wall.as_secs_f64().max(1e-9);
    println!();
    println!(
        "transfer bench: {} wallets × {} transfers, db={}, queue={}, workers={}, wallet catch-up every {:?}",
        args.wallets, args.transfers, args.db, args.queue, args.workers, args.catch_up
    );
    println!(
        "completed {}/{} in {:.2} s wall → {:.1} intents/s{}",
        res.completed,
        total,
        res.wall.as_secs_f64(),
        tput,
        if res.timed_out { " (timed out)" } else { "" }
    );
    for (k, v) in &res.failed {
        println!("failed: {v} × {k}");
    }
    println!();
    println!("| latency (ms) | n | mean | p50 | p95 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row(
            "**soft finality** (intent on relay → 31340 at sender)",
            &res.soft
        )
    );
    println!(
        "{}",
        row("`Wallet::send` (+ its `sync_state` round trip)", &res.send)
    );
    println!(
        "{}",
        row("warm-up `get_info` + `sync_state` (idle relay)", warm)
    );
    println!();
    println!("| relay-side step (ms) | n | mean | p50 | p95 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (k, v) in timings {
        println!("{}", row(k, v));
    }
    let per = res.completed.max(1) as f64;
    let busy: f64 = timings
        .iter()
        .filter(|(k, _)| k.starts_with("job "))
        .flat_map(|(_, v)| v.iter())
        .map(|d| d.as_secs_f64())
        .sum();
    println!(
        "\nhandler time per completed transfer: {:.1} ms (sum over its jobs); \
         workers busy {:.0} % of {} × wall",
        busy * 1e3 / per,
        100.0 * busy / (res.wall.as_secs_f64() * args.workers as f64),
        args.workers
    );
    println!(
        "targets (DESIGN.md §8): p50 < 300 ms, p99 < 1 000 ms, ≥ 500 intents/s — \
         measured p50 {} ms, p99 {} ms, {:.1} intents/s",
        ms(pct(&sorted(&res.soft), 50.0)),
        ms(pct(&sorted(&res.soft), 99.0)),
        tput
    );
}

pub fn sorted(v: &[Duration]) -> Vec<Duration> {
    let mut s = v.to_vec();
    s.sort();
    s
}

/// Prints a per-step table of `timings` under `title`.
pub fn steps(title: &str, timings: &BTreeMap<String, Vec<Duration>>) {
    println!();
    println!("| {title} | n | mean | p50 | p95 | p99 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (k, v) in timings {
        println!("{}", row(k, v));
    }
}
