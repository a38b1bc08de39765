//! [`SqlStore`]: connection handling, migrations, transactions with retry, and
//! the mapping of driver errors to [`StoreError`].
//!
//! Both dialects run the **same queries** through sqlx's `Any` driver; the
//! schema differs per dialect only where the DDL must (see `migrations/`).
//! Concurrency: on MariaDB every read-modify-write takes row locks with
//! `SELECT … FOR UPDATE` (rows are locked in index order, so concurrent
//! transactions do not deadlock on the same set; a deadlock that happens anyway
//! is retried). SQLite has one writer at a time by design, so the store
//! serialises its own write transactions behind an async mutex instead of
//! letting them collide on `SQLITE_BUSY`.

mod inventory;
mod ledger;
mod port;
mod ramp;
mod reconcile;
mod records;
mod renewals;
mod rounds;
mod rows;
mod sessions;
mod settlement;
mod work;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};
use tokio::sync::Mutex;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MARIADB_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mariadb");

/// How many times a transaction that failed transiently (deadlock, busy) is retried.
const MAX_ATTEMPTS: u32 = 6;

/// The SQL dialect behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// MariaDB / MySQL (production).
    MariaDb,
}

impl Backend {
    /// `sqlite` or `mariadb`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MariaDb => "mariadb",
        }
    }

    /// The back end a database URL selects, if any.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Some(Backend::MariaDb)
        } else {
            None
        }
    }

    /// `FOR UPDATE` where the dialect has row locks; SQLite writers are serialised instead.
    fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::MariaDb => " FOR UPDATE",
        }
    }
}

/// The SQL [`ark_relay_core::RelayStore`]. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    writer: Arc<Mutex<()>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `sqlite://…` or `mysql://…` (`mariadb://…` is accepted as an
    /// alias). Does not migrate: call [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Backend(format!("unsupported database URL scheme: {}", redact(url)).into())
        })?;
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        sqlx::any::install_default_drivers();
        let options: AnyConnectOptions = url.parse().map_err(backend_err)?;
        let pool = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(map_err)?,
            Backend::MariaDb => AnyPoolOptions::new()
                .max_connections(32)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(map_err)?,
        };
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
        })
    }

    /// Applies the embedded migrations of this dialect. Idempotent; refuses a
    /// database that has migrations this build does not know (a newer schema).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::MariaDb => &MARIADB_MIGRATIONS,
        };
        let _writer = self.writer.lock().await;
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The dialect.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs a write operation with the writer serialisation (SQLite) and retries
    /// transient failures (deadlocks, busy) with a short exponential backoff.
    /// `op` must open and commit its own transaction, so each attempt is whole.
    async fn write<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let _writer = match self.backend {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::MariaDb => None,
        };
        let mut attempt = 0u32;
        loop {
            match op().await {
                Err(StoreError::Transient(e)) if attempt + 1 < MAX_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "retrying transient store failure");
                    tokio::time::sleep(Duration::from_millis(5u64 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// A URL with any password replaced by `***`, for logs and banners.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn backend_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Maps a driver error: deadlocks, lock waits, busy databases and lost
/// connections are transient; everything else is a back-end failure.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    let transient = match &e {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // MariaDB: deadlock, lock wait timeout. SQLite: BUSY, LOCKED, BUSY_SNAPSHOT.
            Some("1213") | Some("1205") | Some("40001") | Some("5") | Some("6") | Some("517")
        ),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        _ => false,
    };
    if transient {
        StoreError::Transient(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// Whether a driver error is a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// The outcome of an insert that may meet its row already there: `true` if
/// it inserted, `false` on a unique-key violation (idempotent inserts).
pub(crate) fn inserted<T>(res: Result<T, sqlx::Error>) -> Result<bool, StoreError> {
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(map_err(e)),
    }
}

/// `?, ?, …` with `n` placeholders.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n.saturating_mul(3));
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("mysql://root:secret@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(redact("mysql://root@db/x"), "mysql://root@db/x");
        assert_eq!(
            redact("sqlite://data/relay.db?mode=rwc"),
            "sqlite://data/relay.db?mode=rwc"
        );
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("mariadb://h/db"), Some(Backend::MariaDb));
        assert_eq!(Backend::from_url("postgres://h/db"), None);
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
