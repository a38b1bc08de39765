//! Decoding database rows into core types. Every column is read by name and
//! validated; a value the relay cannot parse is [`StoreError::Corrupt`], never a panic.

use std::str::FromStr;

use ark_relay_core::{
    ActionId, Asset, AssetAmount, AssetId, AssetType, Colour, ErrorCode, EventId, IntentRecord,
    ProcessedEvent, PubKey, Sats, SessionId, Tapscripts, UnixTime, Vtxo, VtxoId, VtxoStatus,
};
use bitcoin::Txid;
use sqlx::any::AnyRow;
use sqlx::Row;

use ark_relay_core::StoreError;

fn corrupt(col: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {detail}"))
}

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    opt_text(row, col)?.ok_or_else(|| corrupt(col, "unexpected NULL"))
}

/// Reads a text column. MariaDB reports `TEXT` columns as `BLOB` through the
/// `Any` driver, so bytes are accepted too and must be UTF-8.
pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(col) {
        Ok(v) => Ok(v),
        Err(sqlx::Error::ColumnDecode { .. }) => row
            .try_get::<Option<Vec<u8>>, _>(col)
            .map_err(|e| corrupt(col, e))?
            .map(|b| String::from_utf8(b).map_err(|e| corrupt(col, e)))
            .transpose(),
        Err(e) => Err(corrupt(col, e)),
    }
}

pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    row.try_get::<i64, _>(col).map_err(|e| corrupt(col, e))
}

pub(crate) fn opt_int(row: &AnyRow, col: &str) -> Result<Option<i64>, StoreError> {
    row.try_get::<Option<i64>, _>(col)
        .map_err(|e| corrupt(col, e))
}

pub(crate) fn parse<T: FromStr>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text(row, col)?.parse().map_err(|e| corrupt(col, e))
}

pub(crate) fn opt_parse<T: FromStr>(row: &AnyRow, col: &str) -> Result<Option<T>, StoreError>
where
    T::Err: std::fmt::Display,
{
    opt_text(row, col)?
        .map(|s| s.parse().map_err(|e| corrupt(col, e)))
        .transpose()
}

fn sats(row: &AnyRow, col: &str) -> Result<Sats, StoreError> {
    Sats::from_i64(int(row, col)?).ok_or_else(|| corrupt(col, "negative"))
}

fn amount(row: &AnyRow, col: &str) -> Result<AssetAmount, StoreError> {
    AssetAmount::from_i64(int(row, col)?).ok_or_else(|| corrupt(col, "negative"))
}

/// Columns selected for a VTXO.
pub(crate) const VTXO_COLUMNS: &str = "vtxo_id, owner_pubkey, asset_id, amount, sats, status, \
     tapscripts, locked_by, spent_by_txid, created_at, spent_at, expires_at";

pub(crate) fn vtxo(row: &AnyRow) -> Result<Vtxo, StoreError> {
    let colour = match opt_parse::<AssetId>(row, "asset_id")? {
        Some(asset) => Some(Colour {
            asset,
            amount: amount(row, "amount")?,
        }),
        None => None,
    };
    let tapscripts: Tapscripts =
        serde_json::from_str(&text(row, "tapscripts")?).map_err(|e| corrupt("tapscripts", e))?;
    Ok(Vtxo {
        id: parse::<VtxoId>(row, "vtxo_id")?,
        owner: parse::<PubKey>(row, "owner_pubkey")?,
        sats: sats(row, "sats")?,
        colour,
        status: parse::<VtxoStatus>(row, "status")?,
        tapscripts,
        locked_by: opt_parse::<SessionId>(row, "locked_by")?,
        spent_by: opt_parse::<Txid>(row, "spent_by_txid")?,
        created_at: UnixTime(int(row, "created_at")?),
        spent_at: opt_int(row, "spent_at")?.map(UnixTime),
        expires_at: opt_int(row, "expires_at")?.map(UnixTime),
    })
}

/// Columns selected for an asset.
pub(crate) const ASSET_COLUMNS: &str =
    "asset_id, name, ticker, asset_type, decimals, total_supply, reserve_amount, enabled, created_at";

pub(crate) fn asset(row: &AnyRow) -> Result<Asset, StoreError> {
    Ok(Asset {
        id: parse::<AssetId>(row, "asset_id")?,
        name: text(row, "name")?,
        ticker: text(row, "ticker")?,
        asset_type: parse::<AssetType>(row, "asset_type")?,
        decimals: u8::try_from(int(row, "decimals")?).map_err(|e| corrupt("decimals", e))?,
        total_supply: amount(row, "total_supply")?,
        reserve_amount: sats(row, "reserve_amount")?,
        enabled: int(row, "enabled")? != 0,
        created_at: UnixTime(int(row, "created_at")?),
    })
}

/// Columns selected for a processed event.
pub(crate) const EVENT_COLUMNS: &str =
    "event_id, author, kind, created_at, received_at, outcome_code";

pub(crate) fn processed_event(row: &AnyRow) -> Result<ProcessedEvent, StoreError> {
    let outcome = opt_int(row, "outcome_code")?
        .map(|c| {
            u16::try_from(c)
                .ok()
                .and_then(ErrorCode::from_code)
                .ok_or_else(|| corrupt("outcome_code", c))
        })
        .transpose()?;
    Ok(ProcessedEvent {
        id: parse::<EventId>(row, "event_id")?,
        author: parse::<PubKey>(row, "author")?,
        kind: u16::try_from(int(row, "kind")?).map_err(|e| corrupt("kind", e))?,
        created_at: UnixTime(int(row, "created_at")?),
        received_at: UnixTime(int(row, "received_at")?),
        outcome,
    })
}

/// Columns selected for an intent.
pub(crate) const INTENT_COLUMNS: &str =
    "event_id, author, action_id, intent_type, content, created_at, expires_at, received_at";

pub(crate) fn intent(row: &AnyRow) -> Result<IntentRecord, StoreError> {
    Ok(IntentRecord {
        event_id: parse::<EventId>(row, "event_id")?,
        author: parse::<PubKey>(row, "author")?,
        action_id: parse::<ActionId>(row, "action_id")?,
        intent_type: text(row, "intent_type")?,
        content: text(row, "content")?,
        created_at: UnixTime(int(row, "created_at")?),
        expires_at: UnixTime(int(row, "expires_at")?),
        received_at: UnixTime(int(row, "received_at")?),
    })
}
