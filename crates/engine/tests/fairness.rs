//! Fairness and limits (issue #18, item 3) over a real websocket relay: one
//! key floods 200 intents; with a limit of 20 events per window it gets 20
//! ordinary answers and exactly one 9001, the rest are recorded as refused
//! (9001) without an answer, and another key's intent published after the
//! flood is answered at once, not behind the flood.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_core::{DynStore, ErrorCode, SystemClock, UnixTime};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::ingest::limit::RateLimit;
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{AssetRef, IntentContent};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_store::testing::TestDb;
use nostr::{Event, Keys};
use tokio::sync::watch;

use common::{dev_relay, Wallet};

const LIMIT: u32 = 20;
const FLOOD: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_key_gets_one_9001_per_window_and_does_not_hold_back_others() {
    let nostr = dev_relay().await;
    let db = TestDb::sqlite().await.expect("SQLite");
    let keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&keys.public_key()).expect("key");
    let store: DynStore = Arc::new(db.store.clone());
    let mut opts = PoolOptions::new(vec![nostr.url().to_owned()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(keys.public_key(), opts)
        .await
        .expect("transport");
    let info = RelayInfo {
        pubkey: keys.public_key().to_hex(),
        relays: vec![nostr.url().to_owned()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: None,
    };
    let parts = EngineParts {
        store: store.clone(),
        queue: Arc::new(MemoryQueue::new(Default::default())),
        bus: None,
        transport: Arc::new(transport),
        keys: keys.clone(),
        policy: IntentPolicy::new(relay_pk),
        clock: Arc::new(SystemClock),
        handler: Arc::new(BaseHandler::new(store.clone(), keys.clone(), info)),
        periodic: vec![],
    };
    let engine = Engine::new(
        parts,
        EngineConfig {
            workers: 2,
            ingest_rate_limit: Some(RateLimit {
                events: LIMIT,
                window: Duration::from_secs(600),
            }),
            ..Default::default()
        },
        Roles::ALL,
    );
    let (engine_stop, stop) = watch::channel(false);
    let engine = tokio::spawn(async move { engine.run(stop).await });

    let flooder = Wallet::connect(nostr.url()).await;
    let honest = Wallet::connect(nostr.url()).await;
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let expires = UnixTime::now().0 + 600;
    // A fee of 1 sat is refused at ingest (4001): cheap junk with an answer.
    let junk = |w: &Wallet, i: usize| -> Event {
        let c = IntentContent::transfer(
            format!("junk-{i}"),
            &bob,
            AssetRef::gbtc(),
            1_000,
            &relay_pk,
            1,
            expires,
        );
        builders::intent(&w.keys, &relay_pk, &c).expect("intent")
    };
    let flood: Vec<Event> = (0..FLOOD).map(|i| junk(&flooder, i)).collect();
    for ev in &flood {
        flooder.publish(ev).await;
    }
    let mine = junk(&honest, 0);
    let sent = Instant::now();
    honest.publish(&mine).await;
    honest
        .wait_answer(
            "the honest key's answer",
            kinds::FAILURE,
            &mine.id,
            Duration::from_secs(10),
        )
        .await;
    let honest_latency = sent.elapsed();

    // Every flood event is recorded (answered or refused) exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcomes = loop {
        let mut outcomes: HashMap<Option<Option<ErrorCode>>, usize> = HashMap::new();
        for ev in &flood {
            let rec = store
                .processed_event(&event_id_from_nostr(&ev.id))
                .await
                .expect("store");
            *outcomes.entry(rec.map(|r| r.outcome)).or_default() += 1;
            // `None` key: not recorded yet.
        }
        let recorded: usize = outcomes
            .iter()
            .filter(|(k, _)| k.is_some())
            .map(|(_, n)| n)
            .sum();
        if recorded == FLOOD {
            break outcomes;
        }
        assert!(
            Instant::now() < deadline,
            "flood not recorded: {outcomes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        outcomes.get(&Some(Some(ErrorCode::FeeOutput))).copied(),
        Some(LIMIT as usize),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.get(&Some(Some(ErrorCode::RateLimited))).copied(),
        Some(FLOOD - LIMIT as usize),
        "{outcomes:?}"
    );

    // The flooder hears LIMIT ordinary answers and one 9001 — also after
    // the engine's catch-up re-queries (every 3 s) have handed the flood back.
    flooder
        .wait_for("the flooder's answers", Duration::from_secs(20), |evs| {
            evs.iter()
                .filter(|e| e.kind.as_u16() == kinds::FAILURE)
                .count()
                > LIMIT as usize
        })
        .await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let failures = flooder.failures().await;
    let mut codes: HashMap<ErrorCode, usize> = HashMap::new();
    for notices in failures.values() {
        assert_eq!(notices.len(), 1, "one answer per event: {notices:?}");
        *codes.entry(notices[0].code).or_default() += 1;
    }
    assert_eq!(
        codes.get(&ErrorCode::FeeOutput).copied(),
        Some(LIMIT as usize),
        "{codes:?}"
    );
    assert_eq!(
        codes.get(&ErrorCode::RateLimited).copied(),
        Some(1),
        "{codes:?}"
    );
    println!("honest key answered {honest_latency:?} after a {FLOOD}-event flood");
    assert!(
        honest_latency < Duration::from_secs(5),
        "another key is not held back by the flood: {honest_latency:?}"
    );

    flooder.stop();
    honest.stop();
    let _ = engine_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), engine).await;
    nostr.shutdown();
    db.destroy().await;
}
