//! The binary's command line: `--help` everywhere, and the `config` command.
#![allow(clippy::unwrap_used)]

mod common;

use common::{command, run};

const SUBCOMMANDS: &[&str] = &["dev", "sim", "keys", "migrate", "config"];

#[test]
fn help_works_for_the_binary_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let top = run({
        let mut c = command(dir.path());
        c.arg("--help");
        c
    });
    assert!(top.status.success(), "{}", top.stderr);
    assert!(top.stdout.contains("Nostr"), "{}", top.stdout);
    for sub in SUBCOMMANDS {
        assert!(top.stdout.contains(sub), "--help does not list {sub}");
        for flag in ["--help", "-h"] {
            let out = run({
                let mut c = command(dir.path());
                c.args([sub, flag]);
                c
            });
            assert!(out.status.success(), "{sub} {flag}: {}", out.stderr);
            assert!(
                out.stdout.contains("Usage:"),
                "{sub} {flag}: {}",
                out.stdout
            );
            if flag == "--help" {
                assert!(
                    out.stdout.contains("Examples:"),
                    "{sub} --help has no examples"
                );
            }
        }
        let out = run({
            let mut c = command(dir.path());
            c.args(["help", sub]);
            c
        });
        assert!(out.status.success(), "help {sub}: {}", out.stderr);
    }
    let version = run({
        let mut c = command(dir.path());
        c.arg("--version");
        c
    });
    assert!(version.status.success());
    assert!(
        version.stdout.starts_with("ark-relay "),
        "{}",
        version.stdout
    );
    // Nothing was created by asking for help.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unknown_subcommand_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.arg("frobnicate");
        c
    });
    assert!(!out.status.success());
}

#[test]
fn config_prints_effective_toml_with_redacted_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.arg("config")
            .env(
                "ARK_RELAY_DATABASE_URL",
                "mysql://relay:topsecret@db:3306/relay",
            )
            .env("ARK_RELAY_FEES__TRANSFER_FEE_SATS", "21");
        c
    });
    assert!(out.status.success(), "{}", out.stderr);
    assert!(!out.stdout.contains("topsecret"), "{}", out.stdout);
    let parsed: toml::Value = toml::from_str(&out.stdout).unwrap();
    assert_eq!(
        parsed["database_url"].as_str(),
        Some("mysql://relay:***@db:3306/relay")
    );
    assert_eq!(parsed["fees"]["transfer_fee_sats"].as_integer(), Some(21));
    assert_eq!(parsed["fees"]["land_fee_ppm"].as_integer(), Some(1000));
    assert_eq!(parsed["http"]["listen"].as_str(), Some("127.0.0.1:8080"));
    assert_eq!(parsed["session"]["expiry_secs"].as_integer(), Some(900));
}

#[test]
fn config_check_exits_zero_or_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "data_dir = \"/tmp/x\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.arg("--config").arg(&good).args(["config", "--check"]);
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[http]\nlisen = \"127.0.0.1:0\"\n").unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.arg("--config").arg(&typo).args(["config", "--check"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("lisen"), "{}", out.stderr);

    let bad_value = dir.path().join("bad.toml");
    std::fs::write(&bad_value, "database_url = \"postgres://u:pw@h/db\"\n").unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.env("ARK_RELAY_CONFIG", &bad_value)
            .args(["config", "--check"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("database_url"), "{}", out.stderr);
    assert!(!out.stderr.contains("pw@"), "{}", out.stderr);

    let out = run({
        let mut c = command(dir.path());
        c.args(["--config", "does-not-exist.toml", "config", "--check"]);
        c
    });
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn keys_generate_then_show_round_trips_and_never_prints_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("relay.key");
    let secret = "6b".repeat(32);
    std::fs::write(&key_file, &secret).unwrap();
    let out = run({
        let mut c = command(dir.path());
        c.args(["keys", "encrypt", "--key-file"])
            .arg(&key_file)
            .env("GATEWAY_ENCRYPTION_KEY", "pass phrase");
        c
    });
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        !out.stdout.contains(&secret) && !out.stderr.contains(&secret),
        "secret printed"
    );
    let blob = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("GATEWAY_NOSTR_PRIVATE_KEY="))
        .unwrap()
        .to_owned();
    let npub = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("npub"))
        .unwrap()
        .trim()
        .to_owned();
    let shown = run({
        let mut c = command(dir.path());
        c.args(["keys", "show"])
            .env("GATEWAY_ENCRYPTION_KEY", "pass phrase")
            .env("GATEWAY_NOSTR_PRIVATE_KEY", &blob);
        c
    });
    assert!(shown.status.success(), "{}", shown.stderr);
    assert!(shown.stdout.contains(&npub));
    let wrong = run({
        let mut c = command(dir.path());
        c.args(["keys", "show"])
            .env("GATEWAY_ENCRYPTION_KEY", "other")
            .env("GATEWAY_NOSTR_PRIVATE_KEY", &blob);
        c
    });
    assert!(!wrong.status.success());
    assert!(
        wrong.stderr.contains("wrong GATEWAY_ENCRYPTION_KEY"),
        "{}",
        wrong.stderr
    );
}
