//! Where an idle transfer's time goes (issue #18, item 1): two observers on
//! the Nostr relay timestamp every event of one wallet's ceremony as it
//! passes the relay (intent →, 31511 ←, 31512 →, 31511 ←, 31512 →,
//! 31340 ←), so each transfer splits into the relay's three turns (event
//! received → its answer published) and the wallet's two (challenge received →
//! response published). Both observers see each event one echo after its
//! publish, so the differences are the turns themselves. With one-step
//! signing (`--one-step`) a transfer is intent →, 31511 ←, 31512 →, 31340 ←:
//! the relay's two turns and the wallet's one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ark_relay_core::UnixTime;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::kinds;
use ark_relay_protocol::transport::NostrTransport;
use nostr::PublicKey;
use tokio::sync::{mpsc, watch};

/// Events seen, in arrival order: (kind, when).
type Log = Arc<Mutex<Vec<(u16, Instant)>>>;

/// Two running observers (see the module docs).
pub struct Timeline {
    log: Log,
    stop: watch::Sender<bool>,
    pools: Vec<PoolTransport>,
}

impl Timeline {
    /// Starts observing the events addressed to `relay` (intents, 31512s) and
    /// to `wallet` (31511s, 31340s, 31341s) on the Nostr relay at `url`.
    pub async fn start(url: &str, relay: PublicKey, wallet: PublicKey) -> Result<Self, String> {
        let log: Log = Arc::default();
        let (stop, _) = watch::channel(false);
        let mut pools = Vec::new();
        for (listen, kinds) in [
            (relay, vec![kinds::INTENT, kinds::SIGNING_RESPONSE]),
            (
                wallet,
                vec![
                    kinds::SIGNING_CHALLENGE,
                    kinds::CONFIRMATION,
                    kinds::FAILURE,
                ],
            ),
        ] {
            let mut opts = PoolOptions::new(vec![url.to_owned()]);
            opts.kinds = kinds;
            let pool = PoolTransport::connect(listen, opts)
                .await
                .map_err(|e| e.to_string())?;
            let (tx, mut rx) = mpsc::channel::<nostr::Event>(256);
            let (_c, cursor) = watch::channel(Some(UnixTime::now()));
            let p = pool.clone();
            let stop_rx = stop.subscribe();
            tokio::spawn(async move { p.pump(tx, cursor, stop_rx).await });
            let log = log.clone();
            tokio::spawn(async move {
                let mut ids = std::collections::HashSet::new();
                while let Some(ev) = rx.recv().await {
                    if ids.insert(ev.id) {
                        log.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((ev.kind.as_u16(), Instant::now()));
                    }
                }
            });
            pools.push(pool);
        }
        Ok(Self { log, stop, pools })
    }

    /// Stops the observers and returns the turns of each complete transfer
    /// seen (intent, 31511, 31512, 31511, 31512, 31340 in this order; one
    /// 31511/31512 pair with `one_step`).
    pub async fn finish(self, one_step: bool) -> Vec<Vec<Duration>> {
        let _ = self.stop.send(true);
        for p in &self.pools {
            p.shutdown().await;
        }
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        log.sort_by_key(|(_, t)| *t);
        let order: &[u16] = if one_step {
            &[
                kinds::INTENT,
                kinds::SIGNING_CHALLENGE,
                kinds::SIGNING_RESPONSE,
                kinds::CONFIRMATION,
            ]
        } else {
            &[
                kinds::INTENT,
                kinds::SIGNING_CHALLENGE,
                kinds::SIGNING_RESPONSE,
                kinds::SIGNING_CHALLENGE,
                kinds::SIGNING_RESPONSE,
                kinds::CONFIRMATION,
            ]
        };
        let mut out = Vec::new();
        for w in log.windows(order.len()) {
            if w.iter().zip(order).all(|((k, _), want)| k == want) {
                out.push(
                    w.windows(2)
                        .map(|p| p[1].1.saturating_duration_since(p[0].1))
                        .collect(),
                );
            }
        }
        out
    }
}

/// Prints the median of each turn over `transfers`.
pub fn print(transfers: &[Vec<Duration>], one_step: bool) {
    if transfers.is_empty() {
        println!("\nidle transfer timeline: no complete transfer observed");
        return;
    }
    let names: &[&str] = if one_step {
        &[
            "relay: intent → 31511 (ark-tx and checkpoint challenge)",
            "wallet: 31511 → 31512 (ark-tx and checkpoint signatures)",
            "relay: 31512 → 31340 (SubmitTx, FinalizeTx, ledger)",
        ]
    } else {
        &[
            "relay: intent → 1st 31511 (ark-tx challenge)",
            "wallet: 1st 31511 → 31512 (ark-tx signatures)",
            "relay: 31512 → 2nd 31511 (SubmitTx, checkpoint challenge)",
            "wallet: 2nd 31511 → 31512 (checkpoint signatures)",
            "relay: 31512 → 31340 (FinalizeTx, ledger)",
        ]
    };
    println!(
        "\nidle transfer timeline ({} transfers, medians; each turn includes one Nostr hop):",
        transfers.len()
    );
    let mut total = Duration::ZERO;
    for (i, name) in names.iter().enumerate() {
        let mut v: Vec<Duration> = transfers.iter().map(|t| t[i]).collect();
        v.sort();
        let med = v[v.len() / 2];
        total += med;
        println!("  {name:<60} {:>7.1} ms", med.as_secs_f64() * 1e3);
    }
    println!(
        "  {:<60} {:>7.1} ms",
        "sum of medians",
        total.as_secs_f64() * 1e3
    );
}
