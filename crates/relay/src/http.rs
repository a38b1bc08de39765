//! The binary's read-only HTTP server: it mounts the `ark-relay-api` router
//! (`/health`, `/info`, `/assets`, `/balances/{pubkey}`, `/vtxos/{pubkey}`,
//! `/sessions/{id}`, `/errors`, `/openapi.json`) on a TCP listener.
//!
//! PRD §2: there are no state-changing HTTP endpoints; writes go through
//! Nostr. The endpoints themselves live in the `api` adapter crate; this
//! module only binds, builds the router and serves it.

use std::net::SocketAddr;

use anyhow::{Context, Result};
pub use ark_relay_api::{ApiInfo, ApiState};
use axum::Router;
use tokio::net::TcpListener;

/// The API router over `state`.
pub fn router(state: ApiState) -> Router {
    ark_relay_api::router(state)
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
    use std::sync::Arc;

    use ark_relay_core::DynStore;
    use ark_relay_store::SqlStore;

    use super::*;

    fn info() -> ApiInfo {
        ApiInfo {
            name: "ark-relay".into(),
            version: "0.0.0".into(),
            pubkey: "00".repeat(32),
            npub: "npub1test".into(),
            relays: Vec::new(),
            kinds_consumed: Vec::new(),
            encryption: vec!["nip44_v2".into()],
            transfer_fee: 10,
            land_fee_ppm: 1000,
            ark: None,
            database: "sqlite".into(),
        }
    }

    /// Serves the router on a free port, sends one GET, returns (status, body).
    async fn get(store: SqlStore, path: &'static str) -> (u16, String) {
        let (listener, addr) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let store: DynStore = Arc::new(store);
        let app = router(ApiState::new(store, info()));
        let server = tokio::spawn(serve(listener, app, async {
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
    async fn the_api_is_served_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let (status, body) = get(store.clone(), "/health").await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "ok", "database": "sqlite", "backends": []})
        );
        let (status, body) = get(store.clone(), "/info").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["relay_npub"], "npub1test");
        assert_eq!(json["relay_pubkey"], json["pubkey"]);
        let (status, body) = get(store, "/openapi.json").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(json["paths"]["/balances/{pubkey}"].is_object());
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
        assert_eq!(json["error"]["code"], 7001);
    }
}
