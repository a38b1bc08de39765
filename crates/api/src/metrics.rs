//! `GET /metrics`: the Prometheus text exposition of the relay's metrics.
//!
//! This crate does not know the recorder: the binary hands the API a
//! [`MetricsSource`] (in practice a closure that refreshes polled gauges and
//! renders the installed Prometheus recorder). Without one, `/metrics`
//! answers 404/1003 like an unknown path.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ApiState};
use ark_relay_core::ErrorCode;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the current metrics in the Prometheus text format.
///
/// Implementors must answer quickly and without blocking I/O. Any
/// `Fn() -> String` closure is one.
pub trait MetricsSource: Send + Sync + 'static {
    /// The exposition text.
    fn render(&self) -> String;
}

impl<F> MetricsSource for F
where
    F: Fn() -> String + Send + Sync + 'static,
{
    fn render(&self) -> String {
        self()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    match &state.metrics {
        Some(source) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            source.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnsupportedAction,
            "metrics are not enabled in this process",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::{router, ApiInfo, ApiState};

    async fn scrape(state: ApiState) -> (StatusCode, String, String) {
        let response = router(state)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let ctype = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn info() -> ApiInfo {
        ApiInfo {
            name: "ark-relay".into(),
            version: "0".into(),
            pubkey: String::new(),
            npub: String::new(),
            relays: vec![],
            kinds_consumed: vec![],
            encryption: vec![],
            transfer_fee: 0,
            land_fee_ppm: 0,
            ark: None,
            database: "sqlite".into(),
        }
    }

    #[tokio::test]
    async fn serves_the_source_as_prometheus_text_or_404() {
        let db = ark_relay_store::testing::TestDb::sqlite().await.unwrap();
        let store: ark_relay_core::DynStore = Arc::new(db.store.clone());
        let base = ApiState::new(store, info());
        let (status, _, body) = scrape(base.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("1003"), "{body}");
        let with = base.with_metrics(Arc::new(|| "ark_relay_queue_depth 3\n".to_owned()));
        let (status, ctype, body) = scrape(with).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        assert_eq!(body, "ark_relay_queue_depth 3\n");
    }
}
