//! Worker fairness (issue #18, item 3) over a real websocket relay: a busy
//! key exempt from the rate limit (a DEX bot) publishes a burst of 150 valid
//! service requests, each a job that takes a worker 20 ms; another key's
//! request published right after is answered long before the burst is done,
//! because ingest holds back while the job queue is at its mark and its
//! per-author round robin lets the other key's job in next
//! (`crates/engine/src/ingest/gate.rs`). Without the gate, the other key's
//! job would wait behind the whole burst in the FIFO job queue (~3 s).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ark_relay_core::{DynStore, Job, SystemClock, UnixTime};
use ark_relay_engine::handlers::{BaseHandler, HandlerError, JobHandler, JobOutcome, RelayInfo};
use ark_relay_engine::ingest::limit::RateLimit;
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::crypto::Scheme;
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::request::ServiceRequest;
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_store::testing::TestDb;
use async_trait::async_trait;
use nostr::{Event, Keys};
use tokio::sync::watch;

use common::{answers, dev_relay, Wallet};

const BURST: usize = 150;
const JOB_TIME: Duration = Duration::from_millis(20);

/// The base handler, 20 ms slower per job (a busy worker).
struct Slow(Arc<dyn JobHandler>);

#[async_trait]
impl JobHandler for Slow {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        tokio::time::sleep(JOB_TIME).await;
        self.0.handle(job, attempts).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_keys_burst_does_not_hold_back_another_keys_job() {
    let nostr = dev_relay().await;
    let db = TestDb::sqlite().await.expect("SQLite");
    let keys = Keys::generate();
    let relay_pk = pubkey_from_nostr(&keys.public_key()).expect("key");
    let store: DynStore = Arc::new(db.store.clone());
    let transport = PoolTransport::connect(
        keys.public_key(),
        PoolOptions::new(vec![nostr.url().to_owned()]),
    )
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
    let base: Arc<dyn JobHandler> = Arc::new(BaseHandler::new(store.clone(), keys.clone(), info));
    let bot = Wallet::connect(nostr.url()).await;
    let other = Wallet::connect(nostr.url()).await;
    let bot_pk = pubkey_from_nostr(&bot.keys.public_key()).expect("key");
    let parts = EngineParts {
        store: store.clone(),
        queue: Arc::new(MemoryQueue::new(Default::default())),
        bus: None,
        transport: Arc::new(transport),
        keys: keys.clone(),
        policy: IntentPolicy::new(relay_pk),
        clock: Arc::new(SystemClock),
        handler: Arc::new(Slow(base)),
        periodic: vec![],
    };
    let engine = Engine::new(
        parts,
        EngineConfig {
            workers: 2,
            ingest_rate_limit: Some(RateLimit {
                events: 20,
                window: Duration::from_secs(600),
            }),
            // The bot's key is exempt: its whole burst becomes jobs.
            ingest_rate_limit_per_key: HashMap::from([(bot_pk, 0)]),
            queue_high_water: 4,
            ..Default::default()
        },
        Roles::ALL,
    );
    let (engine_stop, stop) = watch::channel(false);
    let engine = tokio::spawn(async move { engine.run(stop).await });

    let request = |w: &Wallet, id: String| -> Event {
        builders::service_request(
            &w.keys,
            &relay_pk,
            &ServiceRequest::GetInfo {},
            &id,
            Scheme::Nip44,
        )
        .expect("request")
    };
    let burst: Vec<Event> = (0..BURST)
        .map(|i| request(&bot, format!("bot-{i}-{}", UnixTime::now().0)))
        .collect();
    futures::future::join_all(burst.iter().map(|ev| bot.publish(ev))).await;
    let mine = request(&other, format!("other-{}", UnixTime::now().0));
    let sent = Instant::now();
    other.publish(&mine).await;
    other
        .wait_answer(
            "the other key's answer",
            kinds::SERVICE_RESPONSE,
            &mine.id,
            Duration::from_secs(30),
        )
        .await;
    let latency = sent.elapsed();
    let bot_answered = bot
        .received()
        .await
        .iter()
        .filter(|e| {
            burst
                .iter()
                .any(|b| answers(e, kinds::SERVICE_RESPONSE, &b.id))
        })
        .count();
    println!(
        "other key answered after {latency:?}; the bot had {bot_answered}/{BURST} answers then"
    );
    assert!(
        bot_answered < BURST / 2,
        "the other key's job waited behind most of the burst ({bot_answered}/{BURST} done first)"
    );
    // Every one of the bot's requests is still answered (nothing dropped).
    bot.wait_for("the whole burst answered", Duration::from_secs(60), |evs| {
        burst.iter().all(|b| {
            evs.iter()
                .any(|e| answers(e, kinds::SERVICE_RESPONSE, &b.id))
        })
    })
    .await;

    bot.stop();
    other.stop();
    let _ = engine_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), engine).await;
    nostr.shutdown();
    db.destroy().await;
}
