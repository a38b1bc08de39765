//! `ark-relay dev` end to end: start it, find it through `dev.json`, ask
//! `/health` and `/info`, stop it with SIGTERM, restart it and check that the
//! relay keeps its key. No fixed sleeps: every wait polls against a deadline.
#![allow(clippy::unwrap_used)]

mod common;

use common::{http_get, mysql_server_url, DevProcess, TempMysqlDb};
use serde_json::Value;

fn check_running(facts: &Value, dev: &DevProcess, backend: &str) {
    let pubkey = facts["relay_pubkey"].as_str().unwrap();
    assert_eq!(pubkey.len(), 64);
    assert!(pubkey.chars().all(|c| c.is_ascii_hexdigit()));
    let npub = facts["relay_npub"].as_str().unwrap();
    assert!(npub.starts_with("npub1"), "{npub}");
    assert_eq!(facts["database"]["backend"], backend);
    let relays = facts["nostr_relays"].as_array().unwrap();
    assert_eq!(relays.len(), 1, "the in-process Nostr relay");
    assert!(
        relays[0].as_str().unwrap().starts_with("ws://127.0.0.1:"),
        "{relays:?}"
    );
    let arkd = facts["simulators"]["arkd"].as_str().unwrap();
    assert!(arkd.starts_with("http://127.0.0.1:"), "{arkd}");
    let data_dir = std::path::Path::new(facts["data_dir"].as_str().unwrap());
    assert_eq!(data_dir, dev.data_dir.canonicalize().unwrap());

    let wallets = facts["wallets"].as_array().unwrap();
    let names: Vec<&str> = wallets
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    for w in wallets {
        let key_file = std::path::Path::new(w["key_file"].as_str().unwrap());
        assert!(key_file.is_file(), "{}", key_file.display());
        assert!(w["npub"].as_str().unwrap().starts_with("npub1"));
        assert_eq!(w["pubkey"].as_str().unwrap().len(), 64);
    }
    let relay_key = data_dir.join("relay.key");
    assert!(relay_key.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&relay_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "relay.key must be private");
    }

    let http_url = facts["http_url"].as_str().unwrap();
    assert!(http_url.starts_with("http://127.0.0.1:"), "{http_url}");

    let (status, body) = http_get(http_url, "/health");
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], backend);

    let (status, body) = http_get(http_url, "/info");
    assert_eq!(status, 200, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["relay_pubkey"], pubkey);
    assert_eq!(info["relay_npub"], npub);
    assert_eq!(info["database"], backend);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    // The Nostr get_info names, served by the api crate.
    assert_eq!(info["pubkey"], pubkey);
    assert!(info["relays"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(info["kinds_consumed"]
        .as_array()
        .is_some_and(|k| !k.is_empty()));
    assert!(info["ark"]["network"].is_string(), "{info}");
    assert!(info["assets"].is_array(), "{info}");

    let (status, body) = http_get(http_url, &format!("/balances/{npub}"));
    assert_eq!(status, 200, "{body}");
    let balances: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(balances["pubkey"], pubkey);
    let (status, body) = http_get(http_url, &format!("/vtxos/{pubkey}"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(http_url, &format!("/sessions/{}", "00".repeat(32)));
    assert_eq!(status, 404, "{body}");
    let refusal: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"]["code"], 5003);
    let (status, body) = http_get(http_url, "/errors");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(http_url, "/openapi.json");
    assert_eq!(status, 200, "{body}");

    let (status, _) = http_get(http_url, "/no-such-route");
    assert_eq!(status, 404);

    let banner = dev.stdout();
    assert!(banner.contains(npub), "banner lacks the npub:\n{banner}");
    assert!(
        banner.contains(pubkey),
        "banner lacks the hex key:\n{banner}"
    );
    assert!(
        banner.contains(http_url),
        "banner lacks the HTTP URL:\n{banner}"
    );
    let nostr_url = facts["nostr_relays"][0].as_str().unwrap();
    assert!(
        banner.contains(nostr_url),
        "banner lacks the Nostr relay:\n{banner}"
    );
    let arkd = facts["simulators"]["arkd"].as_str().unwrap();
    assert!(
        banner.contains(arkd),
        "banner lacks the arkd simulator:\n{banner}"
    );
}

fn stop(dev: &mut DevProcess) {
    let status = dev.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "dev did not exit cleanly:\n{}",
        dev.stderr()
    );
    assert!(
        !dev.data_dir.join("dev.json").exists(),
        "dev.json must be removed on a graceful stop"
    );
}

#[test]
fn dev_starts_serves_stops_and_keeps_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let logs = tmp.path().join("logs");

    let mut first = DevProcess::spawn(&data_dir, &logs, &[]);
    let facts = first.wait_ready();
    check_running(&facts, &first, "sqlite");
    assert!(data_dir.join("relay.db").is_file(), "default SQLite file");
    let database_url = facts["database"]["url"].as_str().unwrap();
    assert!(database_url.starts_with("sqlite://"), "{database_url}");
    stop(&mut first);
    assert!(
        first.stderr().contains("stopped cleanly"),
        "{}",
        first.stderr()
    );

    let mut second = DevProcess::spawn(&data_dir, &logs, &[]);
    let again = second.wait_ready();
    check_running(&again, &second, "sqlite");
    assert_eq!(
        again["relay_pubkey"], facts["relay_pubkey"],
        "relay key must be reused"
    );
    assert_eq!(
        again["wallets"], facts["wallets"],
        "wallet keys must be reused"
    );
    stop(&mut second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_on_mariadb_when_configured() {
    let Some(server) = mysql_server_url() else {
        eprintln!("skipped: ARK_RELAY_TEST_MYSQL_URL is not set");
        return;
    };
    let db = TempMysqlDb::create(&server, "dev").await;
    let url = db.url();
    let result = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().unwrap();
        let mut dev = DevProcess::spawn(
            &tmp.path().join("data"),
            &tmp.path().join("logs"),
            &[("ARK_RELAY_DATABASE_URL", url.as_str())],
        );
        let facts = dev.wait_ready();
        check_running(&facts, &dev, "mariadb");
        assert!(
            !tmp.path().join("data/relay.db").exists(),
            "no SQLite file on MariaDB"
        );
        stop(&mut dev);
    })
    .await;
    let tables = db.table_count().await;
    db.drop_db().await;
    result.unwrap();
    assert!(tables > 0, "migrations created no tables");
}

/// The relay key sealed in GATEWAY_NOSTR_PRIVATE_KEY: dev uses it instead of a
/// key file, and the secret appears nowhere — not in stdout, stderr, dev.json
/// or the database.
#[test]
fn dev_runs_on_the_sealed_gateway_key_and_never_leaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "3c".repeat(32);
    let key_file = dir.path().join("k");
    std::fs::write(&key_file, &secret).unwrap();
    let sealed = common::run({
        let mut c = common::command(dir.path());
        c.args(["keys", "encrypt", "--key-file"])
            .arg(&key_file)
            .env("GATEWAY_ENCRYPTION_KEY", "dev pass");
        c
    });
    assert!(sealed.status.success(), "{}", sealed.stderr);
    let blob = sealed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("GATEWAY_NOSTR_PRIVATE_KEY="))
        .unwrap()
        .to_owned();
    let pubkey = sealed
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pubkey"))
        .unwrap()
        .trim()
        .to_owned();
    std::fs::remove_file(&key_file).unwrap();

    let data = dir.path().join("data");
    let mut dev = DevProcess::spawn(
        &data,
        &dir.path().join("logs"),
        &[
            ("GATEWAY_NOSTR_PRIVATE_KEY", blob.as_str()),
            ("GATEWAY_ENCRYPTION_KEY", "dev pass"),
            ("RUST_LOG", "debug"),
        ],
    );
    let facts = dev.wait_ready();
    assert_eq!(facts["relay_pubkey"], pubkey.as_str());
    assert!(!data.join("relay.key").exists(), "no key file is written");
    let dev_json = std::fs::read_to_string(data.join("dev.json")).unwrap();
    let status = dev.terminate();
    assert!(status.success());
    let mut haystack = format!("{}{}{dev_json}", dev.stdout(), dev.stderr());
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystack.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(!haystack.contains(&secret), "the secret key leaked");
}
