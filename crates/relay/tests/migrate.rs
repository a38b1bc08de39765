//! `ark-relay migrate` on SQLite (always) and MariaDB (when
//! `ARK_RELAY_TEST_MYSQL_URL` is set, as `scripts/test` does): applies the
//! migrations, reports the back end with the password redacted, and is
//! idempotent.
#![allow(clippy::unwrap_used)]

mod common;

use common::{command, mysql_server_url, run, TempMysqlDb};

#[test]
fn migrate_sqlite_default_in_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("nested/data");
    for round in 0..2 {
        let out = run({
            let mut c = command(tmp.path());
            c.arg("migrate").env("ARK_RELAY_DATA_DIR", &data_dir);
            c
        });
        assert!(out.status.success(), "round {round}: {}", out.stderr);
        assert!(
            out.stdout.contains("migrated sqlite database"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("relay.db"), "{}", out.stdout);
    }
    assert!(data_dir.join("relay.db").is_file());
}

#[test]
fn migrate_sqlite_from_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("explicit.db");
    let config = tmp.path().join("relay.toml");
    std::fs::write(
        &config,
        format!("database_url = \"sqlite://{}?mode=rwc\"\n", db.display()),
    )
    .unwrap();
    let out = run({
        let mut c = command(tmp.path());
        c.arg("--config").arg(&config).arg("migrate");
        c
    });
    assert!(out.status.success(), "{}", out.stderr);
    assert!(db.is_file());
    assert!(
        !tmp.path().join("data").exists(),
        "explicit URL must not create ./data"
    );
}

#[test]
fn migrate_rejects_unknown_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run({
        let mut c = command(tmp.path());
        c.arg("migrate")
            .env("ARK_RELAY_DATABASE_URL", "postgres://u:hunter2@localhost/x");
        c
    });
    assert!(!out.status.success());
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_mariadb_twice() {
    let Some(server) = mysql_server_url() else {
        eprintln!("skipped: ARK_RELAY_TEST_MYSQL_URL is not set");
        return;
    };
    let db = TempMysqlDb::create(&server, "cli").await;
    let url = db.url();
    let outcome = tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().unwrap();
        let mut outs = Vec::new();
        for _ in 0..2 {
            outs.push(run({
                let mut c = command(tmp.path());
                c.arg("migrate").env("ARK_RELAY_DATABASE_URL", &url);
                c
            }));
        }
        outs
    })
    .await;
    let tables = db.table_count().await;
    let name = db.name.clone();
    db.drop_db().await;
    for (round, out) in outcome.unwrap().iter().enumerate() {
        assert!(out.status.success(), "round {round}: {}", out.stderr);
        assert!(
            out.stdout.contains("migrated mariadb database"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains(&name), "{}", out.stdout);
    }
    assert!(tables > 0, "migrations created no tables");
}
