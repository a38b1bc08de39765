//! `GET /reserves`: for every relay-issued asset (gBTC), the circulating
//! supply in the ledger (its genesis unit on Ark excluded, [`crate::supply`])
//! next to the BTC reserve behind it (lnd channel balance + confirmed on-chain
//! balance, as last read from lnd), so anyone can check the 1:1 backing of
//! PRD §7.

use ark_relay_core::AssetType;
use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::{ApiError, ApiState};

/// One asset's backing.
#[derive(Debug, Serialize)]
struct ReserveBody {
    asset_id: String,
    ticker: String,
    /// Units in circulation (sats for gBTC; the genesis unit excluded).
    circulating: u64,
    /// Spendable Lightning channel balance, sats (`null` before the first read).
    lightning_sats: Option<u64>,
    /// Confirmed on-chain balance, sats.
    onchain_sats: Option<u64>,
    /// `lightning_sats + onchain_sats`.
    reserve: Option<u64>,
    /// `circulating ≤ reserve`.
    fully_backed: Option<bool>,
    /// When lnd was last read (unix seconds).
    updated_at: Option<i64>,
}

pub(crate) async fn reserves(
    State(state): State<ApiState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let assets = state.store.assets().await?;
    let recorded = match &state.reserves {
        Some(r) => r.reserves().await?,
        None => Vec::new(),
    };
    let supplies = crate::supply::supplies(&assets);
    let body: Vec<ReserveBody> = assets
        .into_iter()
        .filter(|a| a.asset_type == AssetType::RelayIssued)
        .map(|a| {
            let r = recorded.iter().find(|r| r.asset == a.id);
            let circulating = supplies
                .get(&a.id)
                .map_or(a.total_supply.get(), |s| s.circulating);
            ReserveBody {
                asset_id: a.id.to_string(),
                ticker: a.ticker,
                circulating,
                lightning_sats: r.map(|r| r.lightning_sats),
                onchain_sats: r.map(|r| r.onchain_sats),
                reserve: r.map(|r| r.total()),
                fully_backed: r.map(|r| circulating <= r.total()),
                updated_at: r.map(|r| r.updated_at.0),
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "reserves": body })))
}
