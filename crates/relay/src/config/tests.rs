//! Unit tests of the configuration: defaults, file and env layering,
//! rejection of unknown keys, back-end selection, redaction, and the example file.
#![allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type

use figment::Jail;

use super::*;

fn load_in(jail: &Jail, file: Option<&str>) -> Result<Config> {
    match file {
        Some(contents) => {
            jail.create_file("relay.toml", contents).unwrap();
            Config::load(Some(&jail.directory().join("relay.toml")))
        }
        None => Config::load(None),
    }
}

#[test]
fn defaults_are_the_embedded_ones() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, None).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database_url(), "sqlite://./data/relay.db?mode=rwc");
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::Sqlite);
        assert_eq!(c.queue_kind(), QueueKind::InProcess);
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.fees.transfer_fee_sats, 10);
        assert_eq!(c.fees.land_fee_ppm, 1000);
        assert_eq!(c.session.expiry_secs, 900);
        assert_eq!(c.session.step_timeout_secs, 60);
        assert_eq!(c.log.filter, "info");
        assert_eq!(c.log.format, LogFormat::Pretty);
        assert!(c.nostr_relays.is_empty() && c.ark.is_none() && c.lnd.is_none());
        assert_eq!(c.validate(), Ok(()));
        Ok(())
    });
}

#[test]
fn toml_file_overrides_defaults() {
    Jail::expect_with(|jail| {
        let c = load_in(
            jail,
            Some(
                r#"
                data_dir = "/var/lib/ark-relay"
                nostr_relays = ["wss://relay.example"]
                [http]
                listen = "0.0.0.0:9090"
                [fees]
                transfer_fee_sats = 12
                [ark]
                url = "http://127.0.0.1:7070"
                "#,
            ),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/ark-relay"));
        assert_eq!(
            c.database_url(),
            "sqlite:///var/lib/ark-relay/relay.db?mode=rwc"
        );
        assert_eq!(c.http.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(c.fees.transfer_fee_sats, 12);
        assert_eq!(c.fees.land_fee_ppm, 1000, "untouched keys keep defaults");
        assert_eq!(c.ark.unwrap().url, "http://127.0.0.1:7070");
        assert_eq!(c.nostr_relays, vec!["wss://relay.example".to_owned()]);
        Ok(())
    });
}

#[test]
fn environment_overrides_file() {
    Jail::expect_with(|jail| {
        jail.set_env("ARK_RELAY_HTTP__LISTEN", "127.0.0.1:9999");
        jail.set_env("ARK_RELAY_FEES__LAND_FEE_PPM", "2000");
        jail.set_env("ARK_RELAY_REDIS_URL", "redis://127.0.0.1:6379");
        jail.set_env("ARK_RELAY_LOG__FORMAT", "json");
        // Not configuration keys: must be ignored, not rejected.
        jail.set_env("ARK_RELAY_CONFIG", "/nonexistent.toml");
        jail.set_env("ARK_RELAY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306");
        let c = load_in(jail, Some("[http]\nlisten = \"127.0.0.1:7000\"\n")).unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(c.fees.land_fee_ppm, 2000);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(
            c.queue_kind(),
            QueueKind::Redis("redis://127.0.0.1:6379".into())
        );
        Ok(())
    });
}

#[test]
fn unknown_fields_are_rejected() {
    Jail::expect_with(|jail| {
        let err = load_in(jail, Some("[http]\nlisen = \"127.0.0.1:1\"\n")).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = load_in(jail, Some("databse_url = \"x\"\n")).unwrap_err();
        assert!(err.to_string().contains("databse_url"), "{err}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("ARK_RELAY_HTTP__PORT", "1");
        assert!(
            load_in(jail, None).is_err(),
            "unknown env key must fail too"
        );
        Ok(())
    });
}

#[test]
fn missing_config_file_is_an_error() {
    Jail::expect_with(|jail| {
        let missing = jail.directory().join("nope.toml");
        assert!(Config::load(Some(&missing)).is_err());
        Ok(())
    });
}

#[test]
fn mysql_url_switches_back_end() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "ARK_RELAY_DATABASE_URL",
            "mysql://relay:s3cret@db.internal:3306/relay",
        );
        let c = load_in(jail, None).unwrap();
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::MariaDb);
        assert!(!c.uses_default_database());
        assert_eq!(
            c.database_url(),
            "mysql://relay:s3cret@db.internal:3306/relay"
        );
        let shown = c.to_redacted_toml().unwrap();
        assert!(
            shown.contains("mysql://relay:***@db.internal:3306/relay"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        Ok(())
    });
    assert!(database_kind("postgres://x").is_err());
}

#[test]
fn daemon_secrets_are_references() {
    Jail::expect_with(|jail| {
        jail.create_file("lnd.cert", "-----BEGIN CERTIFICATE-----")?;
        jail.set_env("LND_MACAROON_HEX", "0201");
        let c = load_in(
            jail,
            Some(
                r#"
                [lnd]
                url = "https://127.0.0.1:10009"
                macaroon = "env:LND_MACAROON_HEX"
                tls_cert = "file:lnd.cert"
                "#,
            ),
        )
        .unwrap();
        let lnd = c.lnd.clone().unwrap();
        assert_eq!(lnd.macaroon, SecretRef::Env("LND_MACAROON_HEX".into()));
        assert_eq!(c.validate(), Ok(()));
        let err = load_in(
            jail,
            Some("[tapd]\nurl = \"https://x\"\nmacaroon = \"0201abcd\"\ntls_cert = \"file:a\"\n"),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("0201abcd"), "{err}");
        Ok(())
    });
}

#[test]
fn validate_reports_every_problem() {
    let c = Config {
        database_url: "postgres://u:pw@h/db".into(),
        redis_url: "http://r".into(),
        nostr_relays: vec!["https://relay".into()],
        session: SessionConfig {
            expiry_secs: 10,
            step_timeout_secs: 60,
        },
        ..Config::default()
    };
    let problems = c.validate().unwrap_err();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(!problems.join(" ").contains("pw@"), "{problems:?}");
}

const EXAMPLE: &str = include_str!("../../../../relay.example.toml");

#[test]
fn example_file_shows_the_defaults() {
    Jail::expect_with(|jail| {
        assert_eq!(load_in(jail, Some(EXAMPLE)).unwrap(), Config::default());
        Ok(())
    });
}

#[test]
fn example_production_block_parses() {
    let block: String = EXAMPLE
        .split("# Production example")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(""))
        .skip_while(|l| !l.starts_with("data_dir"))
        .map(|l| format!("{l}\n"))
        .collect();
    Jail::expect_with(|jail| {
        let c = load_in(jail, Some(&block)).unwrap();
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::MariaDb);
        assert!(matches!(c.queue_kind(), QueueKind::Redis(_)));
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(c.ark.is_some() && c.lnd.is_some() && c.tapd.is_some());
        assert_eq!(c.nostr_relays.len(), 2);
        Ok(())
    });
}

#[test]
fn redacts_passwords_only() {
    assert_eq!(
        redact_url("mysql://root@127.0.0.1:3306"),
        "mysql://root@127.0.0.1:3306"
    );
    assert_eq!(
        redact_url("mysql://u:p%40ss@h:3306/db?ssl-mode=required"),
        "mysql://u:***@h:3306/db?ssl-mode=required"
    );
    assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
    assert_eq!(
        redact_url("sqlite:///a/b.db?mode=rwc"),
        "sqlite:///a/b.db?mode=rwc"
    );
    assert_eq!(redact_url("no scheme"), "no scheme");
    assert_eq!(redact_url(""), "");
}

#[test]
fn rate_limit_per_key_takes_hex_and_npub_and_refuses_other_text() {
    let keys = nostr::Keys::generate();
    let npub = nostr::ToBech32::to_bech32(&keys.public_key()).unwrap();
    let mut c = Config::default();
    c.run
        .rate_limit_per_key
        .insert(keys.public_key().to_hex(), 3000);
    c.run.rate_limit_per_key.insert(npub, 0);
    let parsed = c.run.rate_limit_keys().unwrap();
    assert_eq!(parsed.len(), 1, "hex and npub name the same key");
    c.run.rate_limit_per_key.insert("dexbot".into(), 1);
    let problems = c.run.rate_limit_keys().unwrap_err();
    assert!(problems.contains("\"dexbot\""), "{problems}");
}
