//! # ark-relay-api
//!
//! The relay's **read-only** HTTP API (PRD §9, DESIGN.md §2): an axum
//! [`Router`] over the [`RelayStore`](ark_relay_core::RelayStore) port.
//!
//! | path | what |
//! |---|---|
//! | `GET /health` | database ping, back-end (circuit-breaker) states and the last ledger ↔ arkd reconciliation; 503 when the database does not answer |
//! | `GET /info` | the relay's public facts, with the field names of the Nostr `get_info` result |
//! | `GET /assets` | registered assets |
//! | `GET /balances/{pubkey}` | sats and per-asset amounts of a key (hex or `npub1…`) |
//! | `GET /vtxos/{pubkey}` | the key's unspent VTXOs (expiry, lock, and `renewal`: state, `scheduled_at`, `recoverable`) |
//! | `GET /sessions/{id}` | a signing session's progress (never its raw data) |
//! | `GET /settlements` | hourly L1 settlements, newest first (`?before=<id>&limit=<1..100>`) |
//! | `GET /settlements/{id}` | one settlement |
//! | `GET /settlements/{id}/proof/{ark_txid}` | the Merkle inclusion proof of an ark transaction |
//! | `GET /errors` | the public error-code table |
//! | `GET /metrics` | Prometheus metrics (text exposition format) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of all of the above |
//!
//! [`web::web_router`] serves the built browser dApp under `/app/` (mounted by
//! `ark-relay dev` only; it is a page, not part of the API).
//!
//! Errors are `{"error":{"code","name","message"}}` with a code from
//! [`ErrorCode`]: 400/1002 for a malformed key or id, 404/5003 for an unknown
//! session, 503/7001 when the store fails, 404/1003 for an unknown path and
//! 405/1003 for any method other than GET.
//!
//! This crate owns only HTTP: it must not write to the store, spawn tasks or
//! know the concrete back ends (it depends on core only). The binary builds an
//! [`ApiState`] and serves [`router`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::{
    Asset, AssetId, DynStore, ErrorCode, PubKey, SessionId, SessionRecord, StoreError, Vtxo,
};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;

use assets::{amount_body, asset_bodies, asset_index, AssetAmountBody, AssetBody};

mod assets;
pub mod metrics;
mod reserves;
mod settlements;
mod supply;
#[cfg(test)]
mod tests;
pub mod web;

/// The OpenAPI 3.1 document served on `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// How long `/health` waits for the database before calling it unavailable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// The relay's public facts, as served on `GET /info`.
///
/// The fields are those of the Nostr `get_info` result (same names), plus
/// `name`, `version`, `relay_npub` and `database`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiInfo {
    /// Always `ark-relay`.
    pub name: String,
    /// The binary's version.
    pub version: String,
    /// The relay's Nostr public key, x-only hex (`get_info`'s `pubkey`).
    pub pubkey: String,
    /// The same key as `npub1…`.
    pub npub: String,
    /// Nostr relays the relay listens and publishes on.
    pub relays: Vec<String>,
    /// Nostr kinds it consumes.
    pub kinds_consumed: Vec<u16>,
    /// DM encryption schemes it accepts (`nip44_v2`, `nip04`).
    pub encryption: Vec<String>,
    /// Fee per L2 intent, in gBTC base units.
    pub transfer_fee: u64,
    /// Land fee in parts per million.
    pub land_fee_ppm: u64,
    /// The Ark server's parameters (`signer_pubkey`, `forfeit_pubkey`,
    /// `checkpoint_tapscript`, `unilateral_exit_delay`,
    /// `checkpoint_exit_delay`, `dust`, `network`), when known.
    pub ark: Option<serde_json::Value>,
    /// The store back end (`sqlite`, `mariadb`).
    pub database: String,
}

/// One back end's health as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendHealth {
    /// The back end (`arkd`, `lnd`, `tapd`, `redis`, a Nostr relay URL).
    pub name: String,
    /// Its state (a circuit-breaker state such as `closed`, `open`,
    /// `half_open`, or `connected` / `disconnected`).
    pub state: String,
    /// Whether calls to it currently go through.
    pub healthy: bool,
}

impl BackendHealth {
    /// A back end named `name` in `state`.
    pub fn new(name: impl Into<String>, state: impl Into<String>, healthy: bool) -> Self {
        Self {
            name: name.into(),
            state: state.into(),
            healthy,
        }
    }
}

/// A snapshot source of back-end health (circuit breakers, connections).
///
/// Implementors must answer quickly and without I/O: `/health` calls it on
/// every request. Any `Fn() -> Vec<BackendHealth>` closure is one.
pub trait HealthSource: Send + Sync + 'static {
    /// The current state of every back end, in a stable order.
    fn snapshot(&self) -> Vec<BackendHealth>;
}

impl<F> HealthSource for F
where
    F: Fn() -> Vec<BackendHealth> + Send + Sync + 'static,
{
    fn snapshot(&self) -> Vec<BackendHealth> {
        self()
    }
}

/// A health source with no back ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackends;

impl HealthSource for NoBackends {
    fn snapshot(&self) -> Vec<BackendHealth> {
        Vec::new()
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The relay's store (read only).
    pub store: DynStore,
    /// Static facts for `/info`.
    pub info: Arc<ApiInfo>,
    /// Back-end health for `/health`.
    pub health: Arc<dyn HealthSource>,
    /// Renders `GET /metrics` (Prometheus); `None` disables the endpoint.
    pub metrics: Option<Arc<dyn metrics::MetricsSource>>,
    /// Settlements for `/settlements` (none served when `None`).
    pub settlements: Option<ark_relay_core::settlement::DynSettlementStore>,
    /// The recorded BTC reserve for `/reserves` (circulating only when `None`).
    pub reserves: Option<ark_relay_core::ramp::DynRampStore>,
    /// The last ledger ↔ arkd indexer reconciliation for `/health` (no
    /// `reconciliation` detail when `None`).
    pub reconciliation: Option<Arc<dyn ark_relay_core::reconcile::ReconcileStore>>,
    /// Delegations for the `renewal` of each VTXO on `/vtxos` (`none` shown
    /// when `None`).
    pub renewals: Option<ark_relay_core::renewals::DynRenewalStore>,
    /// The published renewal fee (sats) on `/info`.
    pub renewal_fee_sats: u64,
}

impl ApiState {
    /// State over `store` with `info` and no back ends to report.
    pub fn new(store: DynStore, info: ApiInfo) -> Self {
        Self {
            store,
            info: Arc::new(info),
            health: Arc::new(NoBackends),
            metrics: None,
            settlements: None,
            reserves: None,
            reconciliation: None,
            renewals: None,
            renewal_fee_sats: 0,
        }
    }

    /// Shows each VTXO's renewal from `store` and the published renewal fee.
    pub fn with_renewals(
        mut self,
        store: ark_relay_core::renewals::DynRenewalStore,
        fee_sats: u64,
    ) -> Self {
        self.renewals = Some(store);
        self.renewal_fee_sats = fee_sats;
        self
    }

    /// Shows the last reconciliation recorded in `store` on `/health`.
    pub fn with_reconciliation(
        mut self,
        store: Arc<dyn ark_relay_core::reconcile::ReconcileStore>,
    ) -> Self {
        self.reconciliation = Some(store);
        self
    }

    /// Serves the reserve recorded in `store` on `/reserves`.
    pub fn with_reserves(mut self, store: ark_relay_core::ramp::DynRampStore) -> Self {
        self.reserves = Some(store);
        self
    }

    /// Serves `store`'s settlements and inclusion proofs.
    pub fn with_settlements(
        mut self,
        store: ark_relay_core::settlement::DynSettlementStore,
    ) -> Self {
        self.settlements = Some(store);
        self
    }

    /// Serves `GET /metrics` from `source`.
    pub fn with_metrics(mut self, source: Arc<dyn metrics::MetricsSource>) -> Self {
        self.metrics = Some(source);
        self
    }

    /// Reports `health` on `/health`.
    pub fn with_health(mut self, health: Arc<dyn HealthSource>) -> Self {
        self.health = health;
        self
    }
}

/// Every route of the API: its path (axum and OpenAPI syntax) and handler.
pub fn routes() -> Vec<(&'static str, MethodRouter<ApiState>)> {
    vec![
        ("/health", get(health)),
        ("/info", get(info)),
        ("/assets", get(assets::assets)),
        ("/balances/{pubkey}", get(balances)),
        ("/vtxos/{pubkey}", get(vtxos)),
        ("/sessions/{id}", get(session)),
        ("/reserves", get(reserves::reserves)),
        ("/settlements", get(settlements::list)),
        ("/settlements/{id}", get(settlements::one)),
        (
            "/settlements/{id}/proof/{ark_txid}",
            get(settlements::proof),
        ),
        ("/errors", get(errors)),
        ("/openapi.json", get(openapi)),
        ("/metrics", get(metrics::metrics)),
    ]
}

/// The read-only router over `state`.
pub fn router(state: ApiState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, method)| r.route(path, method))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---- errors ---------------------------------------------------------------

/// An error answer: an HTTP status and `{"error":{"code","name","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The public error code.
    pub code: ErrorCode,
    /// A precise description of this occurrence.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::Malformed, message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BackendUnavailable,
            message,
        )
    }
}

/// The body of an error code, as in error answers and `/errors`.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    code: u16,
    name: &'static str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": ErrorBody {
                code: self.code.code(),
                name: self.code.name(),
                message: &self.message,
            }
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The cause goes to the log only: it may name hosts or tables.
        tracing::warn!(error = %e, "HTTP API: store failed");
        Self::unavailable("the database is unavailable")
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnsupportedAction,
        "no such endpoint; see /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::UnsupportedAction,
        "the HTTP API is read-only: only GET is allowed; writes go through Nostr",
    )
}

// ---- parsing at the edge ----------------------------------------------------

/// Parses a Nostr public key given as 64 hex digits or as `npub1…` (NIP-19).
pub fn parse_pubkey(s: &str) -> Result<PubKey, ApiError> {
    let bad = || ApiError::malformed("public key must be 64 hex digits or npub1…");
    if s.len() > 4 && s[..4].eq_ignore_ascii_case("npub") {
        let (hrp, data) = bech32::decode(s).map_err(|_| bad())?;
        if !hrp.as_str().eq_ignore_ascii_case("npub") || data.len() != 32 {
            return Err(bad());
        }
        return PubKey::from_slice(&data).map_err(|_| bad());
    }
    s.parse().map_err(|_| bad())
}

fn npub(key: &PubKey) -> Option<String> {
    let hrp = bech32::Hrp::parse("npub").ok()?;
    bech32::encode::<bech32::Bech32>(hrp, &key.x_only().serialize()).ok()
}

// ---- handlers ---------------------------------------------------------------

#[derive(Debug, Serialize)]
struct HealthBody {
    status: &'static str,
    database: String,
    backends: Vec<BackendHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconciliation: Option<ReconciliationHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// The last reconciliation as `/health` shows it. `status`: `ok` (ledger =
/// arkd indexer), `degraded` (differences; disputed VTXOs are refused with
/// 2006), `failed` (the run did not complete), `never` (no run recorded yet).
/// It does not change the overall `status`: a difference is the operator's
/// to investigate (`ark-relay reconcile`), not an outage.
#[derive(Debug, Serialize)]
struct ReconciliationHealth {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run_at: Option<i64>,
    checked: u64,
    differences: u64,
    disputed: u64,
}

async fn reconciliation_health(state: &ApiState) -> Option<ReconciliationHealth> {
    let store = state.reconciliation.as_ref()?;
    let last = tokio::time::timeout(PING_TIMEOUT, store.last_reconciliation()).await;
    Some(match last {
        Ok(Ok(Some(run))) => ReconciliationHealth {
            status: run.status.as_str(),
            last_run_at: Some(run.finished_at.0),
            checked: run.checked,
            differences: run.differences,
            disputed: run.disputed,
        },
        Ok(Ok(None)) => ReconciliationHealth {
            status: "never",
            last_run_at: None,
            checked: 0,
            differences: 0,
            disputed: 0,
        },
        Ok(Err(_)) | Err(_) => ReconciliationHealth {
            status: "unknown",
            last_run_at: None,
            checked: 0,
            differences: 0,
            disputed: 0,
        },
    })
}

async fn health(State(state): State<ApiState>) -> Response {
    let backends = state.health.snapshot();
    let database = state.info.database.clone();
    let ping = tokio::time::timeout(PING_TIMEOUT, state.store.last_processed_at()).await;
    let failure = match ping {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {}s", PING_TIMEOUT.as_secs())),
    };
    match failure {
        None => {
            let status = if backends.iter().all(|b| b.healthy) {
                "ok"
            } else {
                "degraded"
            };
            let body = HealthBody {
                status,
                database,
                backends,
                reconciliation: reconciliation_health(&state).await,
                error: None,
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        Some(cause) => {
            tracing::warn!(error = %cause, "health check: database ping failed");
            let code = ErrorCode::BackendUnavailable;
            let body = HealthBody {
                status: "unavailable",
                database,
                backends,
                reconciliation: None,
                error: Some(serde_json::json!({
                    "code": code.code(),
                    "name": code.name(),
                    "message": "database unreachable",
                })),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `/info`: the `get_info` names plus the names the first `/info` used
/// (`relay_pubkey`, `relay_npub`, `nostr_relays`), and the asset list.
#[derive(Debug, Serialize)]
struct InfoBody<'a> {
    name: &'a str,
    version: &'a str,
    pubkey: &'a str,
    relay_pubkey: &'a str,
    relay_npub: &'a str,
    database: &'a str,
    relays: &'a [String],
    nostr_relays: &'a [String],
    kinds_consumed: &'a [u16],
    encryption: &'a [String],
    transfer_fee: u64,
    land_fee_ppm: u64,
    renewal_fee_sats: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ark: Option<&'a serde_json::Value>,
    /// `None` while the store does not answer: `/info` keeps serving.
    assets: Option<Vec<AssetBody>>,
}

async fn info(State(state): State<ApiState>) -> Response {
    let assets = match state.store.assets().await {
        Ok(list) => Some(asset_bodies(&state, &list).await),
        Err(e) => {
            tracing::warn!(error = %e, "/info: listing assets failed");
            None
        }
    };
    let i = &*state.info;
    Json(InfoBody {
        name: &i.name,
        version: &i.version,
        pubkey: &i.pubkey,
        relay_pubkey: &i.pubkey,
        relay_npub: &i.npub,
        database: &i.database,
        relays: &i.relays,
        nostr_relays: &i.relays,
        kinds_consumed: &i.kinds_consumed,
        encryption: &i.encryption,
        transfer_fee: i.transfer_fee,
        land_fee_ppm: i.land_fee_ppm,
        renewal_fee_sats: state.renewal_fee_sats,
        ark: i.ark.as_ref(),
        assets,
    })
    .into_response()
}

#[derive(Debug, Serialize)]
struct BalancesBody {
    pubkey: PubKey,
    npub: Option<String>,
    sats: u64,
    vtxo_count: u64,
    assets: Vec<AssetAmountBody>,
}

async fn balances(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let owner = parse_pubkey(&key)?;
    let balances = state.store.balances(&owner).await?;
    let index = asset_index(&state).await?;
    let body = BalancesBody {
        pubkey: owner,
        npub: npub(&owner),
        sats: balances.sats.get(),
        vtxo_count: balances.vtxo_count,
        assets: balances
            .assets
            .iter()
            .map(|(id, amount)| amount_body(&index, *id, amount.get()))
            .collect(),
    };
    Ok(Json(body).into_response())
}

#[derive(Debug, Serialize)]
struct VtxoBody {
    outpoint: String,
    sats: u64,
    colour: Option<AssetAmountBody>,
    status: &'static str,
    expires_at: Option<i64>,
    locked: bool,
    tapscripts: ark_relay_core::Tapscripts,
    renewal: ark_relay_core::renewals::RenewalView,
}

impl VtxoBody {
    fn new(v: &Vtxo, index: &BTreeMap<AssetId, Asset>) -> Self {
        Self {
            outpoint: v.id.to_string(),
            sats: v.sats.get(),
            colour: v
                .colour
                .map(|c| amount_body(index, c.asset, c.amount.get())),
            status: v.status.as_str(),
            expires_at: v.expires_at.map(|t| t.0),
            locked: v.locked_by.is_some(),
            tapscripts: v.tapscripts.clone(),
            renewal: ark_relay_core::renewals::RenewalView::of(&[]),
        }
    }
}

async fn vtxos(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let owner = parse_pubkey(&key)?;
    let list = state.store.unspent_vtxos(&owner).await?;
    let index = asset_index(&state).await?;
    let mut vtxos: Vec<VtxoBody> = list.iter().map(|v| VtxoBody::new(v, &index)).collect();
    if let Some(renewals) = &state.renewals {
        let rows = renewals
            .delegations_of_owner(&owner.to_string(), 10_000)
            .await?;
        for v in &mut vtxos {
            let mine: Vec<_> = rows.iter().filter(|r| r.vtxo == v.outpoint).collect();
            v.renewal = ark_relay_core::renewals::RenewalView::of(&mine);
        }
    }
    Ok(Json(serde_json::json!({
        "pubkey": owner,
        "npub": npub(&owner),
        "vtxos": vtxos,
    }))
    .into_response())
}

#[derive(Debug, Serialize)]
struct SessionBody {
    id: SessionId,
    intent: String,
    status: &'static str,
    state: String,
    current_step: Option<String>,
    steps_completed: Vec<String>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    step_deadline: Option<i64>,
    error_code: Option<u16>,
    error_name: Option<&'static str>,
    error_message: Option<String>,
    ark_txid: Option<String>,
    batch_id: Option<String>,
}

impl From<SessionRecord> for SessionBody {
    fn from(s: SessionRecord) -> Self {
        // `s.data` (PSBTs, signatures, the plan) is deliberately left out.
        Self {
            id: s.id,
            intent: s.intent.to_string(),
            status: s.status.as_str(),
            state: s.state,
            current_step: s.current_step,
            steps_completed: s.steps_completed,
            created_at: s.created_at.0,
            updated_at: s.updated_at.0,
            expires_at: s.expires_at.0,
            step_deadline: s.step_deadline.map(|t| t.0),
            error_code: s.error_code.map(ErrorCode::code),
            error_name: s.error_code.map(ErrorCode::name),
            error_message: s.error_message,
            ark_txid: s.ark_txid.map(|t| t.to_string()),
            batch_id: s.batch_id,
        }
    }
}

async fn session(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: SessionId = id
        .parse()
        .map_err(|_| ApiError::malformed("session id must be 64 hex digits"))?;
    match state.store.session(&id).await? {
        Some(s) => Ok(Json(SessionBody::from(s)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownSession,
            format!("no session {id}"),
        )),
    }
}

async fn errors() -> Json<serde_json::Value> {
    let table: Vec<ErrorBody<'static>> = ErrorCode::ALL
        .iter()
        .map(|c| ErrorBody {
            code: c.code(),
            name: c.name(),
            message: c.message(),
        })
        .collect();
    Json(serde_json::json!({ "errors": table }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
