//! The assets as the HTTP API shows them: `/assets` (and `/info`'s
//! `assets`) with each asset's Arkade id, supply split and Taproot Asset,
//! and the per-asset amounts of `/balances` and `/vtxos`.

use std::collections::BTreeMap;

use ark_relay_core::{Asset, AssetId};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::supply::{self, Supply};
use crate::{ApiError, ApiState};

#[derive(Debug, Serialize)]
pub(crate) struct AssetBody {
    id: AssetId,
    /// The asset's id on Ark (Arkade Assets, 68 hex): how ark txs' asset
    /// packets and arkd's indexer name it (`ark_relay_ark::asset::arkade_id`:
    /// the ledger id as genesis txid, group index 0; a control asset is
    /// group 1 of the genesis of the asset it controls).
    arkade_asset_id: String,
    /// The Taproot Asset (tapd) it stands for on the Lightning / L1 side:
    /// the linked one for an asset issued on Ark by its genesis (gBTC, a
    /// lifted Taproot Asset), its own id for a bridged asset, none for a
    /// control asset or a wallet's own asset (`issue_asset`).
    taproot_asset_id: Option<AssetId>,
    ticker: String,
    name: String,
    #[serde(rename = "type")]
    asset_type: &'static str,
    /// Every unit on unspent VTXOs (arkd's supply).
    total_supply: u64,
    /// What circulates: `total_supply` less the genesis unit of an asset
    /// issued on Ark; 0 for a control asset ([`supply`]).
    circulating_supply: u64,
    /// For a control asset: the asset whose issuance it controls.
    #[serde(skip_serializing_if = "Option::is_none")]
    control_of: Option<AssetId>,
    decimals: u8,
    enabled: bool,
}

/// The Taproot Asset linked to each asset issued on Ark by its genesis, from
/// the ramp store (none without one).
async fn taproot_links(
    state: &ApiState,
    supplies: &BTreeMap<AssetId, Supply>,
) -> BTreeMap<AssetId, AssetId> {
    let mut links = BTreeMap::new();
    let Some(ramp) = &state.reserves else {
        return links;
    };
    for (id, _) in supplies.iter().filter(|(_, s)| s.issued_on_ark) {
        match ramp.taproot_of_asset(id).await {
            Ok(Some(t)) => {
                links.insert(*id, t);
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(asset = %id, error = %e, "reading a Taproot Asset link"),
        }
    }
    links
}

/// `/assets` and `/info`'s `assets`: every registered asset (`list`) with
/// its supply split and its Taproot Asset.
pub(crate) async fn asset_bodies(state: &ApiState, list: &[Asset]) -> Vec<AssetBody> {
    let supplies = supply::supplies(list);
    let links = taproot_links(state, &supplies).await;
    list.iter()
        .map(|a| {
            let s = supplies.get(&a.id);
            let control_of = s.and_then(|s| s.control_of);
            AssetBody {
                id: a.id,
                arkade_asset_id: match control_of {
                    Some(issued) => format!("{issued}0001"),
                    None => format!("{}0000", a.id),
                },
                taproot_asset_id: if control_of.is_some() {
                    None
                } else if s.is_some_and(|s| s.issued_on_ark) {
                    links.get(&a.id).copied()
                } else {
                    Some(a.id)
                },
                ticker: a.ticker.clone(),
                name: a.name.clone(),
                asset_type: a.asset_type.as_str(),
                total_supply: a.total_supply.get(),
                circulating_supply: s.map_or(a.total_supply.get(), |s| s.circulating),
                control_of,
                decimals: a.decimals,
                enabled: a.enabled,
            }
        })
        .collect()
}

pub(crate) async fn assets(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let list = state.store.assets().await?;
    let bodies = asset_bodies(&state, &list).await;
    Ok(Json(serde_json::json!({ "assets": bodies })).into_response())
}

/// Registered assets by id, for tickers.
pub(crate) async fn asset_index(state: &ApiState) -> Result<BTreeMap<AssetId, Asset>, ApiError> {
    Ok(state
        .store
        .assets()
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect())
}

#[derive(Debug, Serialize)]
pub(crate) struct AssetAmountBody {
    asset_id: AssetId,
    ticker: Option<String>,
    decimals: Option<u8>,
    amount: u64,
}

pub(crate) fn amount_body(
    index: &BTreeMap<AssetId, Asset>,
    asset_id: AssetId,
    amount: u64,
) -> AssetAmountBody {
    let asset = index.get(&asset_id);
    AssetAmountBody {
        asset_id,
        ticker: asset.map(|a| a.ticker.clone()),
        decimals: asset.map(|a| a.decimals),
        amount,
    }
}
