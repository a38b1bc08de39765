//! # ark-relay-store
//!
//! The SQL implementation of core's [`RelayStore`] port, on **SQLite** (the
//! embedded default) and **MariaDB** (production), through sqlx.
//!
//! This crate owns the schema (one migration folder per dialect, see
//! [`schema`]) and the SQL that enforces the ledger's rules. It must not know
//! about Nostr, arkd or the engine: it stores and checks, nothing else.

pub mod schema;
mod sql;
pub mod testing;

pub use sql::{redact, Backend, SqlStore};

/// The URL of an SQLite database file, created if missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
