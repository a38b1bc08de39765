//! Relay key rotation end to end (PRD §10.2), through the `ark-relay` binary:
//! `keys rotate` round trip and its refusal of a wrong passphrase; then `dev`
//! on the new key with the old one in `[[keys.previous]]`: during the grace
//! period a request sent to the old key is answered *by the old key*, both
//! keys' 13510 info events are queued (the old one naming its successor),
//! after the grace period a request to the old key is ignored, and the old
//! secret appears nowhere (logs, dev.json, database). `/metrics` is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{builders, kinds};
use common::DevProcess;
use nostr::{Event, JsonUtil, Keys};
use tokio::sync::{mpsc, watch};

const PASS: &str = "rotation pass";

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
        .trim()
}

fn keys_cmd(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> common::Output {
    let mut c = common::command(dir);
    c.arg("keys").args(args).envs(envs.iter().copied());
    common::run(c)
}

#[test]
fn rotate_round_trip_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let gen = keys_cmd(
        dir.path(),
        &["generate"],
        &[("GATEWAY_ENCRYPTION_KEY", PASS)],
    );
    assert!(gen.status.success(), "{}", gen.stderr);
    let old_blob = line(&gen.stdout, "GATEWAY_NOSTR_PRIVATE_KEY=").to_owned();
    let old_pk = line(&gen.stdout, "pubkey").to_owned();

    let t0 = now();
    let rot = keys_cmd(
        dir.path(),
        &["rotate", "--grace-secs", "3600"],
        &[
            ("GATEWAY_ENCRYPTION_KEY", PASS),
            ("GATEWAY_NOSTR_PRIVATE_KEY", &old_blob),
        ],
    );
    assert!(rot.status.success(), "{}", rot.stderr);
    assert_eq!(line(&rot.stdout, "old pubkey"), old_pk);
    let new_pk = line(&rot.stdout, "new pubkey").to_owned();
    assert_ne!(new_pk, old_pk);
    let new_blob = line(&rot.stdout, "GATEWAY_NOSTR_PRIVATE_KEY=").to_owned();
    assert_eq!(
        line(&rot.stdout, "GATEWAY_NOSTR_PRIVATE_KEY_PREVIOUS="),
        old_blob
    );
    let until: i64 = line(&rot.stdout, "until =").parse().unwrap();
    assert!((t0 + 3600..=now() + 3600).contains(&until), "{until}");
    assert!(rot.stdout.contains("[[keys.previous]]"));

    // The new blob opens to the new key; the old blob still to the old one.
    for (blob, pk) in [(&new_blob, &new_pk), (&old_blob, &old_pk)] {
        let show = keys_cmd(
            dir.path(),
            &["show"],
            &[
                ("GATEWAY_ENCRYPTION_KEY", PASS),
                ("GATEWAY_NOSTR_PRIVATE_KEY", blob),
            ],
        );
        assert!(show.status.success(), "{}", show.stderr);
        assert_eq!(line(&show.stdout, "pubkey"), pk.as_str());
    }

    // A wrong GATEWAY_ENCRYPTION_KEY: a clear error, nothing printed to install.
    let wrong = keys_cmd(
        dir.path(),
        &["rotate"],
        &[
            ("GATEWAY_ENCRYPTION_KEY", "not the pass"),
            ("GATEWAY_NOSTR_PRIVATE_KEY", &old_blob),
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        wrong.stderr.contains("wrong GATEWAY_ENCRYPTION_KEY"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stdout.contains("GATEWAY_NOSTR_PRIVATE_KEY="));
}

struct Wallet {
    keys: Keys,
    transport: PoolTransport,
    rx: mpsc::Receiver<Event>,
    _stop: watch::Sender<bool>,
}

async fn wallet(url: &str) -> Wallet {
    let keys = Keys::generate();
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![kinds::FAILURE, kinds::SERVICE_RESPONSE];
    opts.catch_up_every = Duration::from_secs(2);
    let transport = PoolTransport::connect(keys.public_key(), opts)
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(256);
    let (stop, stop_rx) = watch::channel(false);
    let (_c, cursor) = watch::channel(None);
    let t = transport.clone();
    tokio::spawn(async move { t.pump(tx, cursor, stop_rx).await });
    Wallet {
        keys,
        transport,
        rx,
        _stop: stop,
    }
}

impl Wallet {
    /// Sends `get_info` to `relay` and returns the answer (signer, result), or
    /// `None` if nothing answers within `wait`.
    async fn get_info(
        &mut self,
        relay: &str,
        id: &str,
        wait: Duration,
    ) -> Option<(String, serde_json::Value)> {
        let relay_pk: ark_relay_core::PubKey = relay.parse().unwrap();
        let req = builders::service_request(
            &self.keys,
            &relay_pk,
            &ServiceRequest::GetInfo {},
            id,
            Scheme::Nip44,
        )
        .unwrap();
        self.transport.publish(&req).await.unwrap();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => panic!("wallet transport closed"),
                Err(_) => return None,
            };
            if ev.kind.as_u16() != kinds::SERVICE_RESPONSE
                || ev.tags.event_ids().next() != Some(&req.id)
            {
                continue;
            }
            let (plain, _) =
                decrypt(self.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags).unwrap();
            let resp: ServiceResponse = serde_json::from_str(&plain).unwrap();
            return Some((ev.pubkey.to_hex(), resp.result.expect("a result")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_key_answers_during_its_grace_period_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    // The old key from a known secret (to grep for it), sealed.
    let old_secret = "4d".repeat(32);
    let key_file = dir.path().join("old.key");
    std::fs::write(&key_file, &old_secret).unwrap();
    let enc = keys_cmd(
        dir.path(),
        &["encrypt", "--key-file", key_file.to_str().unwrap()],
        &[("GATEWAY_ENCRYPTION_KEY", PASS)],
    );
    assert!(enc.status.success(), "{}", enc.stderr);
    std::fs::remove_file(&key_file).unwrap();
    let old_blob = line(&enc.stdout, "GATEWAY_NOSTR_PRIVATE_KEY=").to_owned();
    let old_pk = line(&enc.stdout, "pubkey").to_owned();
    let rot = keys_cmd(
        dir.path(),
        &["rotate"],
        &[
            ("GATEWAY_ENCRYPTION_KEY", PASS),
            ("GATEWAY_NOSTR_PRIVATE_KEY", &old_blob),
        ],
    );
    assert!(rot.status.success(), "{}", rot.stderr);
    let new_blob = line(&rot.stdout, "GATEWAY_NOSTR_PRIVATE_KEY=").to_owned();
    let new_pk = line(&rot.stdout, "new pubkey").to_owned();

    // dev on the new key; the old one in grace for 40 s more.
    let until = now() + 40;
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[[keys.previous]]\nsealed = \"env:GATEWAY_NOSTR_PRIVATE_KEY_PREVIOUS\"\nuntil = {until}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut dev = DevProcess::spawn(
        &data,
        &dir.path().join("logs"),
        &[
            ("ARK_RELAY_CONFIG", config.to_str().unwrap()),
            ("GATEWAY_NOSTR_PRIVATE_KEY", new_blob.as_str()),
            ("GATEWAY_NOSTR_PRIVATE_KEY_PREVIOUS", old_blob.as_str()),
            ("GATEWAY_ENCRYPTION_KEY", PASS),
            ("RUST_LOG", "debug,sqlx=warn"),
        ],
    );
    let facts = dev.wait_ready();
    assert_eq!(facts["relay_pubkey"], new_pk.as_str());
    let url = facts["nostr_relays"][0].as_str().unwrap().to_owned();
    let mut w = wallet(&url).await;

    // During the grace period: the old key answers, signed by the old key,
    // and names itself; the new key answers as itself.
    let (signer, info) = w
        .get_info(&old_pk, "old-1", Duration::from_secs(20))
        .await
        .expect("the old key answers during its grace period");
    assert_eq!(
        (signer.as_str(), &info["pubkey"]),
        (old_pk.as_str(), &serde_json::json!(old_pk))
    );
    let (signer, _) = w
        .get_info(&new_pk, "new-1", Duration::from_secs(20))
        .await
        .expect("the new key answers");
    assert_eq!(signer, new_pk);

    // The 13510 info events: the new key lists the old; the old key, signing
    // with itself, names its successor.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("relay.db").display()))
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT event_json FROM outbox WHERE kind = 13510")
        .fetch_all(&db)
        .await
        .unwrap();
    let events: Vec<Event> = rows
        .iter()
        .map(|(j,)| Event::from_json(j).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{rows:?}");
    for e in &events {
        e.verify().expect("signed");
    }
    let by = |pk: &str| events.iter().find(|e| e.pubkey.to_hex() == pk).unwrap();
    let new_info: serde_json::Value = serde_json::from_str(&by(&new_pk).content).unwrap();
    assert_eq!(new_info["previous_keys"][0]["pubkey"], old_pk.as_str());
    assert_eq!(new_info["previous_keys"][0]["until"], until);
    let old_info: serde_json::Value = serde_json::from_str(&by(&old_pk).content).unwrap();
    assert_eq!(old_info["successor"], new_pk.as_str());
    db.close().await;

    // /metrics is served with the engine's series.
    let (status, body) = common::http_get(facts["http_url"].as_str().unwrap(), "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ark_relay_inventory_vtxos"), "{body}");
    assert!(
        body.contains("ark_relay_backend_breaker_state{backend=\"arkd\"} 0"),
        "{body}"
    );

    // After the grace period: the old key is ignored, the new one answers.
    let wait = u64::try_from(until + 2 - now()).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert!(
        w.get_info(&old_pk, "old-2", Duration::from_secs(8))
            .await
            .is_none(),
        "the old key answered after its grace period"
    );
    let (signer, _) = w
        .get_info(&new_pk, "new-2", Duration::from_secs(20))
        .await
        .expect("the new key still answers");
    assert_eq!(signer, new_pk);

    // The old secret leaked nowhere.
    let dev_json = std::fs::read_to_string(data.join("dev.json")).unwrap();
    assert!(dev.terminate().success());
    let mut haystack = format!("{}{}{dev_json}", dev.stdout(), dev.stderr());
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystack.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(!haystack.contains(&old_secret), "the old secret key leaked");
    assert!(
        dev.stderr()
            .contains("grace period of the previous relay key is over"),
        "{}",
        dev.stderr()
    );
}
