//! Metrics and the audit trail over a real transfer: the reference wallet
//! sends gBTC through the engine (websocket Nostr relay, arkd simulator over
//! gRPC, MariaDB); then `GET /metrics` (the API router over the installed
//! Prometheus recorder) shows the named series with sane values, and the
//! captured `audit` lines name every signature the relay made — and never
//! its secret key.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_relay_core::{AssetType, DynQueue, SystemClock};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig};
use ark_relay_engine::handlers::{BaseHandler, RelayInfo};
use ark_relay_engine::metrics::{name, Sampler, STEP_BUCKETS};
use ark_relay_engine::{Engine, EngineConfig, EngineParts, Roles};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::content::AssetRef;
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::client::{Wallet, WalletOptions};
use axum::body::Body;
use axum::http::Request;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use nostr::Keys;
use tower::ServiceExt;

/// A `MakeWriter` into a shared buffer: the captured log.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The value of the series `name{labels}` (labels as rendered, sorted by the
/// exporter), if present.
fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_shows_up_in_metrics_and_the_audit_log() {
    // Recorder and log capture, process-wide (this test binary is ours alone).
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(name::STEP_SECONDS.to_owned()), STEP_BUCKETS)
        .unwrap()
        .install_recorder()
        .expect("recorder");
    ark_relay_engine::metrics::describe();
    let log = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");

    // The relay: MariaDB, a websocket relay, the arkd simulator, the ceremony.
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
    } = common::parts(TestDb::mariadb().await.expect("MariaDB"), 2).await;
    let secret_hex = relay_keys.secret_key().to_secret_hex();
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let alice_keys = Keys::generate();
    let alice = pubkey_from_nostr(&alice_keys.public_key()).expect("key");
    common::fund(&store, &sim, &alice, gbtc, 5_000).await;

    let ark = ArkdClient::connect(sim_server.url()).await.expect("arkd");
    let mut opts = PoolOptions::new(vec![nostr.url().to_owned()]);
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(relay_keys.public_key(), opts)
        .await
        .expect("transport");
    let policy = IntentPolicy::new(relay_pk);
    let info = RelayInfo {
        pubkey: relay_keys.public_key().to_hex(),
        relays: vec![nostr.url().to_owned()],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2", "nip04"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: Some(ark_relay_engine::ceremony::server_info_json(&server)),
    };
    let base = BaseHandler::new(store.clone(), relay_keys.clone(), info);
    let ceremony = Arc::new(Ceremony::new(
        store.clone(),
        Arc::new(ark),
        relay_keys.clone(),
        policy.clone(),
        base,
        Arc::new(SystemClock),
        CeremonyConfig {
            session_ttl_secs: 900,
            step_timeout_secs: 30,
        },
    ));
    let queue: DynQueue = Arc::new(MemoryQueue::new(Default::default()));
    let sampler = Sampler::new(queue.clone(), Duration::from_secs(1));
    let parts = EngineParts {
        store: store.clone(),
        queue,
        bus: None,
        transport: Arc::new(transport),
        keys: relay_keys.clone(),
        policy,
        clock: Arc::new(SystemClock),
        handler: Arc::new(ark_relay_engine::router::Router::new(ceremony.clone())),
        periodic: vec![ceremony, sampler.clone()],
    };
    let engine = Engine::new(parts, EngineConfig::default(), Roles::ALL);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(async move { engine.run(stop_rx).await.expect("engine") });

    // Alice sends Bob 1 000 gBTC with the reference wallet.
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let wallet = Wallet::connect(
        alice_keys,
        relay_pk,
        vec![nostr.url().to_owned()],
        WalletOptions {
            server: Some(server.clone()),
            catch_up_every: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .expect("wallet");
    let confirmation = tokio::time::timeout(
        Duration::from_secs(60),
        wallet.send(bob, 1_000, AssetRef::gbtc()),
    )
    .await
    .expect("in time")
    .expect("sent");
    let ark_txid = confirmation.ark_txid.clone();

    // GET /metrics through the API router, over the installed recorder.
    sampler.sample().await;
    let render = handle.clone();
    let state = ark_relay_api::ApiState::new(store.clone(), api_info())
        .with_metrics(Arc::new(move || render.render()));
    let response = ark_relay_api::router(state)
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();

    let completed = series(
        &text,
        name::INTENTS,
        r#"type="p2p_transfer",outcome="completed""#,
    );
    assert_eq!(completed, Some(1.0), "{text}");
    for step in [
        "intent_to_challenge",
        "challenge_to_response",
        "submit",
        "finalize",
        "end_to_end",
    ] {
        let count = series(
            &text,
            &format!("{}_count", name::STEP_SECONDS),
            &format!(r#"step="{step}""#),
        );
        let sum = series(
            &text,
            &format!("{}_sum", name::STEP_SECONDS),
            &format!(r#"step="{step}""#),
        )
        .unwrap_or(f64::NAN);
        let n = count.unwrap_or(0.0);
        assert!(n >= 1.0, "step {step} not observed:\n{text}");
        assert!(
            (0.0..60.0 * n).contains(&sum),
            "step {step}: implausible total {sum}s for {n} observations"
        );
    }
    // The challenge → response step happens twice (sign_ark_tx, sign_checkpoint_txs).
    assert_eq!(
        series(
            &text,
            &format!("{}_count", name::STEP_SECONDS),
            r#"step="challenge_to_response""#
        ),
        Some(2.0)
    );
    assert_eq!(series(&text, name::QUEUE_DEPTH, ""), Some(0.0), "{text}");
    let accepted = series(
        &text,
        name::EVENTS_INGESTED,
        &format!(r#"kind="{}",outcome="accepted""#, kinds::INTENT),
    );
    assert_eq!(accepted, Some(1.0), "{text}");
    assert!(
        series(&text, name::SIGNATURES, r#"what="ark_tx""#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        series(&text, name::SIGNATURES, r#"what="checkpoint""#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        text.contains(&format!("# HELP {}", name::INTENTS)),
        "{text}"
    );

    // The audit trail: the relay's input signatures (ark tx and checkpoint)
    // name the session, the ark txid, the input and the relay's public key;
    // its Nostr signatures name kind and event; the secret never appears.
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), engine).await;
    let logged = log.text();
    let audit: Vec<&str> = logged.lines().filter(|l| l.contains(" audit:")).collect();
    let relay_hex = relay_keys.public_key().to_hex();
    let inputs: Vec<&&str> = audit
        .iter()
        .filter(|l| l.contains("op=\"sign_input\"") && l.contains(&relay_hex))
        .collect();
    for what in ["ark_tx", "checkpoint"] {
        assert!(
            inputs
                .iter()
                .any(|l| l.contains(&format!("what=\"{what}\""))
                    && l.contains(&format!("ark_txid={ark_txid}"))
                    && l.contains("session=")
                    && l.contains("input_index=")),
            "no audit line for the relay's {what} signature:\n{}",
            audit.join("\n")
        );
    }
    for kind in [kinds::SIGNING_CHALLENGE, kinds::CONFIRMATION] {
        assert!(
            audit.iter().any(|l| l.contains("op=\"sign_event\"")
                && l.contains(&format!("kind={kind}"))
                && l.contains(&relay_hex)),
            "no audit line for a {kind}:\n{}",
            audit.join("\n")
        );
    }
    assert!(
        !logged.contains(&secret_hex),
        "the relay's secret key appears in the log"
    );
    wallet.shutdown().await;
    db.destroy().await;
}

fn api_info() -> ark_relay_api::ApiInfo {
    ark_relay_api::ApiInfo {
        name: "ark-relay".into(),
        version: "test".into(),
        pubkey: String::new(),
        npub: String::new(),
        relays: vec![],
        kinds_consumed: vec![],
        encryption: vec![],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: None,
        database: "mariadb".into(),
    }
}
