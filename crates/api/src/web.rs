//! Static files of the browser dApp (`web/`, built with npm) under `/app/`.
//!
//! `ark-relay dev` mounts [`web_router`] beside the read-only API so that the
//! page and `GET /info` share one origin (no CORS). It serves files from one
//! directory only: paths with `..`, absolute parts or hidden segments are 404,
//! and nothing is ever written. It knows nothing of the relay: the page reads
//! everything else from `/info` and talks to the relay over Nostr.
//!
//! Written by hand rather than with `tower-http`'s `ServeDir` to avoid a new
//! dependency for a dozen lines of path checking and a content-type table.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::ApiError;
use ark_relay_core::ErrorCode;

/// The URL prefix the page is served under.
pub const WEB_PREFIX: &str = "/app/";

/// Whether `dir` holds a built page (`index.html`).
pub fn is_built(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

/// A router serving `dir` under `/app/` (`/app` redirects there; `/app/`
/// is `index.html`).
pub fn web_router(dir: PathBuf) -> Router {
    let dir = Arc::new(dir);
    Router::new()
        .route("/app", get(|| async { Redirect::permanent(WEB_PREFIX) }))
        .route("/app/", get(index))
        .route("/app/{*path}", get(file))
        .with_state(dir)
}

async fn index(State(dir): State<Arc<PathBuf>>) -> Response {
    serve(&dir, "index.html").await
}

async fn file(State(dir): State<Arc<PathBuf>>, UrlPath(path): UrlPath<String>) -> Response {
    serve(&dir, &path).await
}

/// The file at `rel` under `dir`, if `rel` is a plain relative path.
fn resolve(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let plain = rel.components().all(|c| match c {
        Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
        _ => false,
    });
    (plain && !rel.as_os_str().is_empty()).then(|| dir.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn serve(dir: &Path, rel: &str) -> Response {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnsupportedAction,
            "no such file in the dApp",
        )
        .into_response()
    };
    let Some(path) = resolve(dir, rel) else {
        return not_found();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_resolve() {
        let dir = Path::new("/srv/web");
        assert_eq!(
            resolve(dir, "assets/index.js"),
            Some(PathBuf::from("/srv/web/assets/index.js"))
        );
        for bad in [
            "../secret",
            "/etc/passwd",
            "a/../../b",
            ".env",
            "a/.git/x",
            "",
        ] {
            assert_eq!(resolve(dir, bad), None, "{bad}");
        }
        assert_eq!(
            content_type(Path::new("x/index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.wasm")),
            "application/octet-stream"
        );
    }
}
