//! One-step signing end to end (docs/protocol.md, "Checkpoint signatures in
//! step 1"): over the real websocket Nostr relay, the arkd simulator and
//! MariaDB, a reference wallet that asks for it completes a transfer with
//! exactly one 31511 and one 31512; a wallet that does not still gets two of
//! each; and the ledger reconciles with arkd's indexer afterwards.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{AssetType, PubKey};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::WalletOptions;
use nostr::{Event, Keys, PublicKey};
use tokio::sync::{mpsc, watch, Mutex};

/// Every event of `kinds` authored by `authors`, as the Nostr relay carries them.
async fn observe(url: &str, authors: Vec<PublicKey>) -> Arc<Mutex<Vec<Event>>> {
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![
        kinds::SIGNING_CHALLENGE,
        kinds::SIGNING_RESPONSE,
        kinds::CONFIRMATION,
    ];
    opts.authors = Some(authors);
    opts.catch_up_every = Duration::from_secs(1);
    let transport = PoolTransport::connect(Keys::generate().public_key(), opts)
        .await
        .expect("observer");
    let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
    let (tx, mut rx) = mpsc::channel(1024);
    let (_cursor_tx, cursor) = watch::channel(None);
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _keep = _stop;
        transport.pump(tx, cursor, stop_rx).await
    });
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let mut all = sink.lock().await;
            if !all.iter().any(|e| e.id == ev.id) {
                all.push(ev);
            }
        }
    });
    seen
}

/// Waits until the observer has the 31340 of `ark_txid`, then counts the
/// 31511s the relay addressed to `user` and the 31512s `user` published.
async fn hops(seen: &Mutex<Vec<Event>>, user: &Keys, ark_txid: &str) -> (usize, usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        {
            let evs = seen.lock().await;
            if evs
                .iter()
                .any(|e| e.kind.as_u16() == kinds::CONFIRMATION && e.content.contains(ark_txid))
            {
                let to_user = |e: &&Event| e.tags.public_keys().any(|p| *p == user.public_key());
                let challenges = evs
                    .iter()
                    .filter(|e| e.kind.as_u16() == kinds::SIGNING_CHALLENGE)
                    .filter(to_user)
                    .count();
                let answers = evs
                    .iter()
                    .filter(|e| {
                        e.kind.as_u16() == kinds::SIGNING_RESPONSE && e.pubkey == user.public_key()
                    })
                    .count();
                return (challenges, answers);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the 31340 of {ark_txid} never reached the observer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_step_wallet_transfers_with_one_challenge_and_a_two_step_one_with_two() {
    let common::Parts {
        db,
        store,
        nostr,
        sim,
        sim_server,
        server,
        relay_keys,
        relay_pk,
        ..
    } = common::parts(TestDb::mariadb().await.expect("MariaDB"), 4).await;
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let (stop, _engine) = common::start_ceremony(
        &store,
        &relay_keys,
        &server,
        nostr.url(),
        &sim_server.url(),
        None,
        None,
        Arc::new(MemoryQueue::new(Default::default())),
    )
    .await;
    let bob: PubKey = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let (alice, carol) = (Keys::generate(), Keys::generate());
    let seen = observe(
        nostr.url(),
        vec![
            relay_keys.public_key(),
            alice.public_key(),
            carol.public_key(),
        ],
    )
    .await;

    for (keys, one_step, want) in [(&alice, true, 1), (&carol, false, 2)] {
        let me = pubkey_from_nostr(&keys.public_key()).expect("key");
        common::fund(&store, &sim, &me, gbtc, 2_000).await;
        let opts = WalletOptions {
            one_step,
            send_timeout: Duration::from_secs(60),
            ..WalletOptions::default()
        };
        let wallet = ark_relay_wallet::Wallet::connect(
            keys.clone(),
            relay_pk,
            vec![nostr.url().to_owned()],
            opts,
        )
        .await
        .expect("wallet");
        let confirmation = wallet
            .send(bob, 500, AssetRef::gbtc())
            .await
            .unwrap_or_else(|e| panic!("one_step={one_step}: {e}"));
        let (challenges, answers) = hops(&seen, keys, &confirmation.ark_txid).await;
        assert_eq!(
            (challenges, answers),
            (want, want),
            "one_step={one_step}: 31511s to the wallet and its 31512s"
        );
    }

    common::assert_reconciled(&db.store, &sim_server.url()).await;
    let _ = stop.send(true);
}

/// A relay killed after `SubmitTx` (its answer lost) or after `FinalizeTx`
/// (the ledger not committed) finishes a one-step transfer exactly once after
/// restart: the owner's checkpoint signature kept since step 1 survives in the
/// session's state, and the wallet is never asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_submit_and_finalize_finishes_a_one_step_transfer_once() {
    use ark_relay_engine::ceremony::{CrashHook, CrashPoint};
    use ark_relay_protocol::builders;
    use ark_relay_protocol::content::IntentContent;
    use std::sync::atomic::{AtomicBool, Ordering};

    let common::Parts {
        db,
        store,
        nostr,
        sim,
        sim_server,
        server,
        relay_keys,
        relay_pk,
        ..
    } = common::parts(TestDb::mariadb().await.expect("MariaDB"), 4).await;
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let arkd_url = sim_server.url();
    let relay_engine = |hook: Option<CrashHook>| {
        common::start_ceremony(
            &store,
            &relay_keys,
            &server,
            nostr.url(),
            &arkd_url,
            None,
            hook,
            Arc::new(MemoryQueue::new(Default::default())),
        )
    };
    for point in [CrashPoint::AfterSubmit, CrashPoint::AfterFinalize] {
        let crashed = Arc::new(AtomicBool::new(false));
        let flag = crashed.clone();
        let hook: CrashHook = Arc::new(move |p| p == point && !flag.swap(true, Ordering::SeqCst));
        let (stop, engine) = relay_engine(Some(hook)).await;

        let alice = Arc::new(common::Wallet::connect(nostr.url()).await);
        let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
        let bob: PubKey = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
        common::fund(&store, &sim, &alice_pk, gbtc, 2_000).await;
        common::spawn_signer(alice.clone(), relay_pk);
        let c = IntentContent::transfer(
            format!("one-step-{point:?}"),
            &bob,
            AssetRef::gbtc(),
            1_000,
            &relay_pk,
            10,
            ark_relay_core::UnixTime::now().0 + 600,
        )
        .with_one_step(true);
        let intent = builders::intent(&alice.keys, &relay_pk, &c).expect("intent");
        alice.publish(&intent).await;

        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !crashed.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{point:?}: never reached"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        let _ = engine.await;
        let (stop, engine) = relay_engine(None).await;

        alice
            .wait_answer(
                &format!("{point:?}: the 31340"),
                kinds::CONFIRMATION,
                &intent.id,
                Duration::from_secs(90),
            )
            .await;
        let received = alice.received().await;
        let count = |kind: u16| received.iter().filter(|e| e.kind.as_u16() == kind).count();
        assert_eq!(count(kinds::CONFIRMATION), 1, "{point:?}: one 31340");
        assert_eq!(count(kinds::SIGNING_CHALLENGE), 1, "{point:?}: one 31511");
        let bob_gbtc = store
            .balances(&bob)
            .await
            .expect("balances")
            .assets
            .get(&gbtc)
            .map(|a| a.get());
        assert_eq!(bob_gbtc, Some(1_000), "{point:?}: paid once");
        alice.stop();
        let _ = stop.send(true);
        let _ = engine.await;
    }
    common::assert_reconciled(&db.store, &arkd_url).await;
}
