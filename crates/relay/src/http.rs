//! The binary's tiny read-only HTTP server: `GET /health` and `GET /info`.
//!
//! PRD §2: there are no state-changing HTTP endpoints; writes go through
//! Nostr. The full read-only API (balances, VTXOs, sessions, settlements,
//! Merkle proofs, error codes, metrics) moves to the `api` adapter crate in a
//! later issue; this module then only mounts that router.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use ark_relay_store::SqlStore;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

/// Public facts served on `GET /info`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RelayInfo {
    /// Always `ark-relay`.
    pub name: &'static str,
    /// The binary's version.
    pub version: &'static str,
    /// The relay's Nostr public key, x-only hex.
    pub relay_pubkey: String,
    /// The same key as `npub1…`.
    pub relay_npub: String,
    /// `sqlite` or `mariadb`.
    pub database: &'static str,
    /// Nostr relays the service listens and publishes on (none wired yet).
    pub nostr_relays: Vec<String>,
}

#[derive(Clone)]
struct AppState {
    store: SqlStore,
    info: RelayInfo,
}

/// Body of `GET /health`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The router: `/health` pings the database, `/info` describes the relay.
pub fn router(store: SqlStore, info: RelayInfo) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/info", get(info_handler))
        .with_state(AppState { store, info })
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.info.database;
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database,
                error: None,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    database,
                    error: Some("database unreachable".to_owned()),
                }),
            )
        }
    }
}

async fn info_handler(State(state): State<AppState>) -> Json<RelayInfo> {
    Json(state.info)
}

/// Binds `addr` (port 0 picks a free port). Returns the listener and the
/// address actually bound.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP server to {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    Ok((listener, local))
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the
/// in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn info() -> RelayInfo {
        RelayInfo {
            name: "ark-relay",
            version: "0.0.0",
            relay_pubkey: "00".repeat(32),
            relay_npub: "npub1test".into(),
            database: "sqlite",
            nostr_relays: Vec::new(),
        }
    }

    /// Serves the router on a free port, sends one GET, returns (status, body).
    async fn get(store: SqlStore, path: &'static str) -> (u16, String) {
        let (listener, addr) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router(store, info()), async {
            let _ = stop_rx.await;
        }));
        let response = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        })
        .await
        .unwrap();
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }

    async fn sqlite_store(dir: &std::path::Path) -> SqlStore {
        let store = SqlStore::connect(&ark_relay_store::sqlite_url(&dir.join("t.db")))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    #[tokio::test]
    async fn health_is_ok_while_the_database_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let (status, body) = get(store.clone(), "/health").await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "ok", "database": "sqlite"})
        );
        let (status, body) = get(store, "/info").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["relay_npub"], "npub1test");
    }

    #[tokio::test]
    async fn health_is_503_when_the_database_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        store.close().await;
        let (status, body) = get(store, "/health").await;
        assert_eq!(status, 503, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "unavailable");
        assert_eq!(json["database"], "sqlite");
    }
}
