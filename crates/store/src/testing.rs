//! Throw-away databases for tests: a fresh, migrated [`SqlStore`] on a temporary
//! SQLite file or on a new MariaDB database.
//!
//! MariaDB is reached at `ARK_RELAY_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306`); each database is named
//! `<ARK_RELAY_TEST_DB_PREFIX>_<unique>` (default prefix `arkrelay_test`), so a
//! test run can drop everything it created by prefix even if a test panicked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ark_relay_core::StoreError;
use sqlx::AnyConnection;
use sqlx::{Connection, Executor};

use crate::{sqlite_url, SqlStore};

/// Default admin URL of the test MariaDB.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    MariaDb { admin_url: String, name: String },
}

/// A migrated store on a database that exists only for one test.
pub struct TestDb {
    /// The store.
    pub store: SqlStore,
    /// Its connection URL (for other processes under test).
    pub url: String,
    cleanup: Cleanup,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("url", &crate::redact(&self.url))
            .finish_non_exhaustive()
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The MariaDB admin URL tests use.
pub fn mysql_admin_url() -> String {
    std::env::var("ARK_RELAY_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_owned())
}

/// The prefix of throw-away test database names.
pub fn db_prefix() -> String {
    std::env::var("ARK_RELAY_TEST_DB_PREFIX").unwrap_or_else(|_| "arkrelay_test".to_owned())
}

impl TestDb {
    /// A migrated SQLite store in a temporary directory.
    pub async fn sqlite() -> Result<Self, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(Box::new(e)))?;
        let url = sqlite_url(&dir.path().join("relay.db"));
        let store = SqlStore::connect(&url).await?;
        store.migrate().await?;
        Ok(Self {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        })
    }

    /// A migrated store on a new MariaDB database.
    pub async fn mariadb() -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let admin_url = mysql_admin_url().trim_end_matches('/').to_owned();
        let name = format!("{}_{}", db_prefix(), unique_suffix());
        let mut admin = AnyConnection::connect(&admin_url)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        admin
            .execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str())
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let _ = admin.close().await;
        let url = format!("{admin_url}/{name}");
        let store = SqlStore::connect(&url).await?;
        store.migrate().await?;
        Ok(Self {
            store,
            url,
            cleanup: Cleanup::MariaDb { admin_url, name },
        })
    }

    /// A store of the named back end (`sqlite` or `mariadb`).
    pub async fn of(backend: crate::Backend) -> Result<Self, StoreError> {
        match backend {
            crate::Backend::Sqlite => Self::sqlite().await,
            crate::Backend::MariaDb => Self::mariadb().await,
        }
    }

    /// Closes the store and deletes the database.
    pub async fn destroy(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Sqlite(_dir) => {}
            Cleanup::MariaDb { admin_url, name } => {
                if let Ok(mut admin) = AnyConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str())
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
    }
}
