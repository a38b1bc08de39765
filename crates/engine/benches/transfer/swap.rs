//! The transfer bench's swap mode (issue 7): two-party atomic batches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ark_relay_core::AssetId;
use ark_relay_protocol::content::{AssetRef, IntentContent, IntentType};
use ark_relay_protocol::event_id_from_nostr;
use ark_relay_wallet::Wallet;
use indicatif::ProgressBar;

use super::{AMOUNT, FEE};

pub fn swap_leg(
    w: &Wallet,
    action: String,
    pays: &[(ark_relay_core::PubKey, AssetRef, u64)],
    expects: &[(ark_relay_core::PubKey, AssetRef, u64)],
) -> IntentContent {
    IntentContent::batch_leg(
        IntentType::AtomicSwap,
        action,
        pays,
        expects,
        &w.relay(),
        FEE,
        w.intent_expiry(),
    )
}

/// One pair's swaps, one after the other: the user pays `AMOUNT` gBTC for
/// `AMOUNT` gUSD; both sign, the maker submits. Returns (submit → both
/// 31340s, whole round, failures).
pub async fn swap_pair(
    i: usize,
    user: &Wallet,
    maker: &Wallet,
    gusd: AssetId,
    n: usize,
    bar: &ProgressBar,
) -> (Vec<Duration>, Vec<Duration>, BTreeMap<String, usize>) {
    let (mut soft, mut round) = (Vec::new(), Vec::new());
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let (u, m) = (user.pubkey(), maker.pubkey());
    for k in 0..n {
        let t = Instant::now();
        let r = async {
            let a = user
                .sign_batch_intent(&swap_leg(
                    user,
                    format!("u{i}-{k}"),
                    &[(m, AssetRef::gbtc(), AMOUNT)],
                    &[(m, AssetRef::Id(gusd), AMOUNT)],
                ))
                .await?;
            let b = maker
                .sign_batch_intent(&swap_leg(
                    maker,
                    format!("m{i}-{k}"),
                    &[(u, AssetRef::Id(gusd), AMOUNT)],
                    &[(u, AssetRef::gbtc(), AMOUNT)],
                ))
                .await?;
            let (ia, ib) = (event_id_from_nostr(&a.id), event_id_from_nostr(&b.id));
            let s = Instant::now();
            maker.submit_batch(&format!("b{i}-{k}"), vec![a, b]).await?;
            let (ra, rb) = tokio::join!(
                user.outcome(ia, Duration::from_secs(120)),
                maker.outcome(ib, Duration::from_secs(120))
            );
            ra?;
            rb?;
            Ok::<Duration, ark_relay_wallet::WalletError>(s.elapsed())
        }
        .await;
        match r {
            Ok(d) => {
                soft.push(d);
                round.push(t.elapsed());
            }
            Err(err) => {
                let key = match err.code() {
                    Some(c) => format!("code {}", c.code()),
                    None => format!("{err}").chars().take(60).collect(),
                };
                *failed.entry(key).or_default() += 1;
            }
        }
        bar.inc(1);
    }
    (soft, round, failed)
}
