//! Relay disconnect: the Nostr relay is killed while a wallet publishes 200
//! intents and restarted on the same port and storage; every intent is
//! processed exactly once (one processed record, one finished job, one answer).

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{JobStatus, UnixTime};
use ark_relay_nostr::{DevRelay, DevRelayOptions, KeepAllDatabase};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_store::testing::TestDb;
use nostr::Keys;

use common::{start_relay, Wallet};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intents_published_across_a_relay_restart_are_processed_exactly_once() {
    let storage = Arc::new(KeepAllDatabase::new(100_000));
    let opts = DevRelayOptions {
        database: Some(storage.clone()),
        ..Default::default()
    };
    let nostr = DevRelay::start(opts.clone()).await.expect("relay");
    let port = nostr.port().expect("port");
    let db = TestDb::mariadb().await.expect("MariaDB");
    let relay = start_relay(db, nostr.clone()).await;
    let wallet = Wallet::connect(nostr.url()).await;
    let relay_pk = pubkey_from_nostr(&relay.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let expires = UnixTime::now().0 + 900;

    let intents: Vec<nostr::Event> = (0..200)
        .map(|i| {
            let c = IntentContent::transfer(
                format!("dc-{i}"),
                &bob,
                AssetRef::gbtc(),
                1_000,
                &relay_pk,
                10,
                expires,
            );
            builders::intent(&wallet.keys, &relay_pk, &c).expect("intent")
        })
        .collect();

    let mut restarted = None;
    for (i, ev) in intents.iter().enumerate() {
        if i == 100 {
            nostr.shutdown();
            let opts = DevRelayOptions {
                port: Some(port),
                ..opts.clone()
            };
            restarted = Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                DevRelay::start(opts)
                    .await
                    .expect("restart on the same port")
            }));
        }
        wallet.publish(ev).await;
    }
    let restarted = restarted.expect("restarted").await.expect("join");

    let ids: Vec<nostr::EventId> = intents.iter().map(|e| e.id).collect();
    wallet
        .wait_for(
            "an answer to each of 200 intents",
            Duration::from_secs(180),
            |events| {
                let answered: std::collections::HashSet<_> = events
                    .iter()
                    .filter(|e| e.kind.as_u16() == kinds::FAILURE)
                    .filter_map(|e| e.tags.event_ids().next().copied())
                    .collect();
                ids.iter().all(|id| answered.contains(id))
            },
        )
        .await;

    let failures = wallet.failures().await;
    for ev in &intents {
        assert_eq!(failures[&ev.id].len(), 1, "exactly one answer per intent");
        let id = event_id_from_nostr(&ev.id);
        let rec = relay
            .store
            .processed_event(&id)
            .await
            .expect("p")
            .expect("processed");
        assert_eq!(rec.outcome, None, "accepted, not rejected");
        let job = relay
            .store
            .job(&id.to_string())
            .await
            .expect("job")
            .expect("job");
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Done, 1),
            "finished exactly once"
        );
    }
    wallet.stop();
    relay.stop().await;
    restarted.shutdown();
}
