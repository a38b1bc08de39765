//! The relay and a wallet talking through an **independent Nostr relay
//! implementation**: PyPI's `nostr-relay` (Python, SQLite storage), which
//! `scripts/test` installs into `target/py-nostr-relay`, run with the tested
//! configuration in `deploy/nostr-relay.yaml`. Proves the engine depends on
//! NIP-01 behaviour only, not on rust-nostr's relay.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ark_relay_core::{ErrorCode, UnixTime};
use ark_relay_nostr::{DevRelay, DevRelayOptions};
use ark_relay_protocol::content::{AssetRef, FailureNotice, IntentContent};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use ark_relay_store::testing::TestDb;
use nostr::{EventBuilder, Keys, Kind, Tag};

use common::Wallet;

struct PyRelay {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for PyRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn py_relay_binary() -> PathBuf {
    if let Ok(p) = std::env::var("ARK_RELAY_TEST_PY_RELAY") {
        return PathBuf::from(p);
    }
    let guess = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/py-nostr-relay/bin/nostr-relay");
    assert!(
        guess.exists(),
        "PyPI nostr-relay is not installed; run scripts/test (it installs it into target/py-nostr-relay)"
    );
    guess
}

async fn start_py_relay() -> PyRelay {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("tmp");
    // The tested configuration operators deploy (docs/operations.md), on a
    // free port and with its database in the temporary dir.
    let deployed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nostr-relay.yaml"),
    )
    .expect("deploy/nostr-relay.yaml");
    let db = dir.path().join("relay.sqlite3");
    let text = deployed
        .replace("127.0.0.1:6969", &format!("127.0.0.1:{port}"))
        .replace("port: 6969", &format!("port: {port}"))
        .replace(
            "sqlite+aiosqlite:///nostr.sqlite3",
            &format!("sqlite+aiosqlite:///{}", db.display()),
        );
    assert!(text.contains(&port.to_string()) && text.contains("relay.sqlite3"));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, text).expect("config");
    let child = Command::new(py_relay_binary())
        .arg("-c")
        .arg(&config)
        .arg("serve")
        .arg("--use-uvicorn")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nostr-relay");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nostr-relay did not listen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    PyRelay {
        child,
        url: format!("ws://127.0.0.1:{port}"),
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intents_requests_and_rejections_through_an_independent_relay() {
    let py = start_py_relay().await;
    // The harness's in-process relay is started but unused; the engine and the
    // wallet both connect to the Python relay only.
    let unused = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("relay");
    let relay = start_relay_on(TestDb::mariadb().await.expect("MariaDB"), unused, &py.url).await;
    let wallet = Wallet::connect(&py.url).await;
    let relay_pk = pubkey_from_nostr(&relay.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let expires = UnixTime::now().0 + 600;

    let valid = builders::intent(
        &wallet.keys,
        &relay_pk,
        &IntentContent::transfer(
            "ind-1",
            &bob,
            AssetRef::gbtc(),
            1_000,
            &relay_pk,
            10,
            expires,
        ),
    )
    .expect("intent");
    let mut no_fee = IntentContent::transfer(
        "ind-2",
        &bob,
        AssetRef::gbtc(),
        1_000,
        &relay_pk,
        10,
        expires,
    );
    no_fee.outputs.pop();
    let no_fee = builders::intent(&wallet.keys, &relay_pk, &no_fee).expect("intent");
    let sync = builders::service_request(
        &wallet.keys,
        &relay_pk,
        &ServiceRequest::SyncState {},
        "ind-sync",
        Scheme::Nip04,
    )
    .expect("request");
    let garbage = EventBuilder::new(
        Kind::from(kinds::SERVICE_REQUEST),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .tags([
        Tag::public_key(relay.keys.public_key()),
        Tag::identifier("ind-garbage"),
    ])
    .sign_with_keys(&wallet.keys)
    .expect("sign");
    for ev in [&valid, &no_fee, &sync, &garbage] {
        wallet.publish(ev).await;
    }
    let ids = [valid.id, no_fee.id, sync.id, garbage.id];
    wallet
        .wait_for(
            "answers through the Python relay",
            Duration::from_secs(60),
            |events| {
                ids.iter()
                    .all(|id| events.iter().any(|e| e.tags.event_ids().next() == Some(id)))
            },
        )
        .await;

    let failures = wallet.failures().await;
    let code = |id: &nostr::EventId| {
        failures[id]
            .iter()
            .map(|n: &FailureNotice| n.code)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        code(&valid.id),
        vec![ErrorCode::UnsupportedAction],
        "accepted, then answered by the worker"
    );
    assert_eq!(code(&no_fee.id), vec![ErrorCode::FeeOutput]);
    assert_eq!(code(&garbage.id), vec![ErrorCode::CannotDecrypt]);
    let response = wallet
        .received()
        .await
        .into_iter()
        .find(|e| {
            e.kind.as_u16() == kinds::SERVICE_RESPONSE
                && e.tags.event_ids().next() == Some(&sync.id)
        })
        .expect("31501");
    let (plain, scheme) = decrypt(
        wallet.keys.secret_key(),
        &response.pubkey,
        &response.content,
        &response.tags,
    )
    .expect("decrypt");
    assert_eq!(
        scheme,
        Scheme::Nip04,
        "answered in the scheme the wallet used"
    );
    let resp: ServiceResponse = serde_json::from_str(&plain).expect("json");
    assert_eq!(resp.result.expect("result")["vtxos"], serde_json::json!([]));
    wallet.stop();
    relay.stop().await;
}

async fn start_relay_on(db: TestDb, unused: DevRelay, url: &str) -> common::Relay {
    common::start_relay_with_url(db, unused, url).await
}
