//! The [`RampStore`] implementation: lifts and lands over the `lifts` and
//! `lands` tables, optimistic on `version`, outbox rows in the same
//! transaction as the state change.

use ark_relay_core::backends::lightning::{PaymentHash, Preimage};
use ark_relay_core::ramp::{
    LandInsert, LandRecord, LandStatus, LiftRecord, LiftStatus, RampStore, ReserveRecord,
};
use ark_relay_core::{
    AssetId, ErrorCode, EventId, NewOutboxEvent, PubKey, StoreError, UnixTime, VtxoId,
};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::Txid;
use sqlx::any::AnyRow;

use super::rows;
use super::{inserted, map_err, SqlStore};

const LIFT_COLUMNS: &str = "lift_id, user_pubkey, request_event_id, asset_id, amount, \
     payment_hash, preimage, invoice, status, vtxo_id, ark_txid, created_at, updated_at, \
     expires_at, error_code, issue_data, version";

const LAND_COLUMNS: &str = "intent_event_id, user_pubkey, asset_id, amount, fee, payment_hash, \
     invoice, fee_limit_sats, status, preimage, ark_txid, refund_vtxo_id, created_at, updated_at, \
     error_code, refund_data, version";

fn corrupt(col: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {detail}"))
}

fn bytes32(row: &AnyRow, col: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::from_hex(&rows::text(row, col)?).map_err(|e| corrupt(col, e))
}

fn opt_bytes32(row: &AnyRow, col: &str) -> Result<Option<[u8; 32]>, StoreError> {
    rows::opt_text(row, col)?
        .map(|s| <[u8; 32]>::from_hex(&s).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn error_code(row: &AnyRow) -> Result<Option<ErrorCode>, StoreError> {
    rows::opt_int(row, "error_code")?
        .map(|c| {
            u16::try_from(c)
                .ok()
                .and_then(ErrorCode::from_code)
                .ok_or_else(|| corrupt("error_code", c))
        })
        .transpose()
}

fn unsigned(row: &AnyRow, col: &str) -> Result<u64, StoreError> {
    u64::try_from(rows::int(row, col)?).map_err(|e| corrupt(col, e))
}

fn signed(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} exceeds BIGINT")))
}

fn lift(row: &AnyRow) -> Result<LiftRecord, StoreError> {
    Ok(LiftRecord {
        lift_id: rows::text(row, "lift_id")?,
        user: rows::parse::<PubKey>(row, "user_pubkey")?,
        request: rows::parse::<EventId>(row, "request_event_id")?,
        asset: rows::parse::<AssetId>(row, "asset_id")?,
        amount: unsigned(row, "amount")?,
        hash: PaymentHash(bytes32(row, "payment_hash")?),
        preimage: Preimage(bytes32(row, "preimage")?),
        invoice: rows::opt_text(row, "invoice")?,
        status: rows::parse::<LiftStatus>(row, "status")?,
        vtxo: rows::opt_parse::<VtxoId>(row, "vtxo_id")?,
        ark_txid: rows::opt_parse::<Txid>(row, "ark_txid")?,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
        expires_at: UnixTime(rows::int(row, "expires_at")?),
        error_code: error_code(row)?,
        data: rows::opt_text(row, "issue_data")?.unwrap_or_default(),
        version: rows::int(row, "version")?,
    })
}

fn land(row: &AnyRow) -> Result<LandRecord, StoreError> {
    Ok(LandRecord {
        intent: rows::parse::<EventId>(row, "intent_event_id")?,
        user: rows::parse::<PubKey>(row, "user_pubkey")?,
        asset: rows::parse::<AssetId>(row, "asset_id")?,
        amount: unsigned(row, "amount")?,
        fee: unsigned(row, "fee")?,
        hash: PaymentHash(bytes32(row, "payment_hash")?),
        invoice: rows::text(row, "invoice")?,
        fee_limit_sats: unsigned(row, "fee_limit_sats")?,
        status: rows::parse::<LandStatus>(row, "status")?,
        preimage: opt_bytes32(row, "preimage")?.map(Preimage),
        ark_txid: rows::opt_parse::<Txid>(row, "ark_txid")?,
        refund_vtxo: rows::opt_parse::<VtxoId>(row, "refund_vtxo_id")?,
        created_at: UnixTime(rows::int(row, "created_at")?),
        updated_at: UnixTime(rows::int(row, "updated_at")?),
        error_code: error_code(row)?,
        data: rows::opt_text(row, "refund_data")?.unwrap_or_default(),
        version: rows::int(row, "version")?,
    })
}

impl SqlStore {
    async fn one_lift(&self, col: &str, value: String) -> Result<Option<LiftRecord>, StoreError> {
        let sql = format!("SELECT {LIFT_COLUMNS} FROM lifts WHERE {col} = ?");
        sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(lift)
            .transpose()
    }
}

#[async_trait::async_trait]
impl RampStore for SqlStore {
    async fn create_lift(&self, l: &LiftRecord) -> Result<bool, StoreError> {
        let amount = signed(l.amount, "amount")?;
        self.write(|| async move {
            let res = sqlx::query(
                "INSERT INTO lifts (lift_id, user_pubkey, request_event_id, asset_id, amount, \
                 payment_hash, preimage, invoice, status, vtxo_id, ark_txid, created_at, \
                 updated_at, expires_at, error_code, issue_data, version) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            )
            .bind(l.lift_id.clone())
            .bind(l.user.to_string())
            .bind(l.request.to_string())
            .bind(l.asset.to_string())
            .bind(amount)
            .bind(l.hash.0.to_lower_hex_string())
            .bind(l.preimage.0.to_lower_hex_string())
            .bind(l.invoice.clone())
            .bind(l.status.as_str())
            .bind(l.vtxo.map(|v| v.to_string()))
            .bind(l.ark_txid.map(|t| t.to_string()))
            .bind(l.created_at.0)
            .bind(l.updated_at.0)
            .bind(l.expires_at.0)
            .bind(l.error_code.map(|c| i64::from(c.code())))
            .bind(l.data.clone())
            .execute(&self.pool)
            .await;
            inserted(res)
        })
        .await
    }

    async fn lift_by_request(&self, request: &EventId) -> Result<Option<LiftRecord>, StoreError> {
        self.one_lift("request_event_id", request.to_string()).await
    }

    async fn lift(&self, lift_id: &str) -> Result<Option<LiftRecord>, StoreError> {
        self.one_lift("lift_id", lift_id.to_owned()).await
    }

    async fn update_lift(
        &self,
        l: &LiftRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.update_with_outbox(
            || {
                sqlx::query(
                    "UPDATE lifts SET invoice = ?, status = ?, vtxo_id = ?, ark_txid = ?, \
                     updated_at = ?, expires_at = ?, error_code = ?, issue_data = ?, \
                     version = version + 1 WHERE lift_id = ? AND version = ?",
                )
                .bind(l.invoice.clone())
                .bind(l.status.as_str())
                .bind(l.vtxo.map(|v| v.to_string()))
                .bind(l.ark_txid.map(|t| t.to_string()))
                .bind(now.0)
                .bind(l.expires_at.0)
                .bind(l.error_code.map(|c| i64::from(c.code())))
                .bind(l.data.clone())
                .bind(l.lift_id.clone())
                .bind(l.version)
            },
            outbox,
            now,
        )
        .await
    }

    async fn active_lifts(&self, limit: u32) -> Result<Vec<LiftRecord>, StoreError> {
        let sql = format!(
            "SELECT {LIFT_COLUMNS} FROM lifts WHERE status NOT IN ('announced', 'cancelled', \
             'failed') ORDER BY CASE WHEN status = 'invoiced' THEN 1 ELSE 0 END, id LIMIT ?"
        );
        sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(lift)
            .collect()
    }

    async fn create_land(&self, l: &LandRecord) -> Result<LandInsert, StoreError> {
        let amount = signed(l.amount, "amount")?;
        let fee = signed(l.fee, "fee")?;
        let fee_limit = signed(l.fee_limit_sats, "fee_limit_sats")?;
        let inserted = self
            .write(|| async move {
                let res = sqlx::query(
                    "INSERT INTO lands (intent_event_id, user_pubkey, asset_id, amount, fee, \
                     payment_hash, invoice, fee_limit_sats, status, preimage, ark_txid, \
                     refund_vtxo_id, created_at, updated_at, error_code, refund_data, version) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                )
                .bind(l.intent.to_string())
                .bind(l.user.to_string())
                .bind(l.asset.to_string())
                .bind(amount)
                .bind(fee)
                .bind(l.hash.0.to_lower_hex_string())
                .bind(l.invoice.clone())
                .bind(fee_limit)
                .bind(l.status.as_str())
                .bind(l.preimage.map(|p| p.0.to_lower_hex_string()))
                .bind(l.ark_txid.map(|t| t.to_string()))
                .bind(l.refund_vtxo.map(|v| v.to_string()))
                .bind(l.created_at.0)
                .bind(l.updated_at.0)
                .bind(l.error_code.map(|c| i64::from(c.code())))
                .bind(l.data.clone())
                .execute(&self.pool)
                .await;
                inserted(res)
            })
            .await?;
        if inserted {
            return Ok(LandInsert::New);
        }
        // Which key collided: this intent's own row, or another land's hash?
        match self.land(&l.intent).await? {
            Some(existing) => Ok(LandInsert::Existing(Box::new(existing))),
            None => Ok(LandInsert::HashUsed),
        }
    }

    async fn land(&self, intent: &EventId) -> Result<Option<LandRecord>, StoreError> {
        let sql = format!("SELECT {LAND_COLUMNS} FROM lands WHERE intent_event_id = ?");
        sqlx::query(&sql)
            .bind(intent.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(land)
            .transpose()
    }

    async fn update_land(
        &self,
        l: &LandRecord,
        outbox: &[NewOutboxEvent],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.update_with_outbox(
            || {
                sqlx::query(
                    "UPDATE lands SET status = ?, preimage = ?, ark_txid = ?, refund_vtxo_id = ?, \
                     updated_at = ?, error_code = ?, refund_data = ?, version = version + 1 \
                     WHERE intent_event_id = ? AND version = ?",
                )
                .bind(l.status.as_str())
                .bind(l.preimage.map(|p| p.0.to_lower_hex_string()))
                .bind(l.ark_txid.map(|t| t.to_string()))
                .bind(l.refund_vtxo.map(|v| v.to_string()))
                .bind(now.0)
                .bind(l.error_code.map(|c| i64::from(c.code())))
                .bind(l.data.clone())
                .bind(l.intent.to_string())
                .bind(l.version)
            },
            outbox,
            now,
        )
        .await
    }

    async fn record_reserve(&self, r: &ReserveRecord) -> Result<(), StoreError> {
        let lightning = signed(r.lightning_sats, "lnd_balance")?;
        let onchain = signed(r.onchain_sats, "utxo_balance")?;
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let updated = sqlx::query(
                "UPDATE asset_balances SET lnd_balance = ?, utxo_balance = ?, last_updated = ? \
                 WHERE asset_id = ?",
            )
            .bind(lightning)
            .bind(onchain)
            .bind(r.updated_at.0)
            .bind(r.asset.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
            if updated == 0 {
                sqlx::query(
                    "INSERT INTO asset_balances (asset_id, lnd_balance, utxo_balance, \
                     last_updated) VALUES (?, ?, ?, ?)",
                )
                .bind(r.asset.to_string())
                .bind(lightning)
                .bind(onchain)
                .bind(r.updated_at.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
            sqlx::query("UPDATE assets SET reserve_amount = ? WHERE asset_id = ?")
                .bind(lightning.saturating_add(onchain))
                .bind(r.asset.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn reserves(&self) -> Result<Vec<ReserveRecord>, StoreError> {
        sqlx::query(
            "SELECT asset_id, lnd_balance, utxo_balance, last_updated FROM asset_balances \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(|row| {
            Ok(ReserveRecord {
                asset: rows::parse::<AssetId>(row, "asset_id")?,
                lightning_sats: unsigned(row, "lnd_balance")?,
                onchain_sats: unsigned(row, "utxo_balance")?,
                updated_at: UnixTime(rows::int(row, "last_updated")?),
            })
        })
        .collect()
    }

    async fn link_taproot_asset(
        &self,
        asset: &AssetId,
        taproot_asset_id: &AssetId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        inserted(
            sqlx::query(
                "INSERT INTO taproot_links (asset_id, taproot_asset_id, created_at) \
                 VALUES (?, ?, ?)",
            )
            .bind(asset.to_string())
            .bind(taproot_asset_id.to_string())
            .bind(now.0)
            .execute(&self.pool)
            .await,
        )
    }

    async fn asset_of_taproot(
        &self,
        taproot_asset_id: &AssetId,
    ) -> Result<Option<AssetId>, StoreError> {
        sqlx::query("SELECT asset_id FROM taproot_links WHERE taproot_asset_id = ?")
            .bind(taproot_asset_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .map(|row| rows::parse::<AssetId>(&row, "asset_id"))
            .transpose()
    }

    async fn taproot_of_asset(&self, asset: &AssetId) -> Result<Option<AssetId>, StoreError> {
        sqlx::query("SELECT taproot_asset_id FROM taproot_links WHERE asset_id = ?")
            .bind(asset.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .map(|row| rows::parse::<AssetId>(&row, "taproot_asset_id"))
            .transpose()
    }

    async fn active_lands(&self, limit: u32) -> Result<Vec<LandRecord>, StoreError> {
        let sql = format!(
            "SELECT {LAND_COLUMNS} FROM lands WHERE status NOT IN ('succeeded', 'refunded') \
             ORDER BY id LIMIT ?"
        );
        sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(land)
            .collect()
    }
}
