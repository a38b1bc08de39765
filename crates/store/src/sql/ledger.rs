//! The ledger operations: assets, VTXO insertion, locking, release, and the
//! atomic commit of an L2 transaction with its conservation checks.

use std::collections::{BTreeMap, BTreeSet};

use ark_relay_core::{
    Asset, AssetAmount, AssetId, Balances, CommitOutcome, L2Transaction, LedgerError, NewAsset,
    NewVtxo, PubKey, Recorded, Sats, SessionId, StoreError, UnixTime, Vtxo, VtxoId, VtxoStatus,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::rows::{self, ASSET_COLUMNS, VTXO_COLUMNS};
use super::{is_unique_violation, map_err, placeholders, SqlStore};

fn out_of_range() -> StoreError {
    StoreError::Ledger(LedgerError::AmountOutOfRange)
}

fn to_i64<T: Copy>(v: T, f: impl Fn(T) -> Option<i64>) -> Result<i64, StoreError> {
    f(v).ok_or_else(out_of_range)
}

/// Rejects a list that names the same VTXO twice.
fn ensure_distinct<'a>(ids: impl IntoIterator<Item = &'a VtxoId>) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(*id) {
            return Err(LedgerError::RepeatedVtxo(*id).into());
        }
    }
    Ok(())
}

impl SqlStore {
    /// Selects VTXOs by id (row-locked on MariaDB), in id order.
    async fn select_vtxos_for_update(
        &self,
        conn: &mut AnyConnection,
        ids: &BTreeSet<VtxoId>,
    ) -> Result<BTreeMap<VtxoId, Vtxo>, StoreError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT {VTXO_COLUMNS} FROM vtxos WHERE vtxo_id IN ({}) ORDER BY vtxo_id{}",
            placeholders(ids.len()),
            self.backend.for_update()
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id.to_string());
        }
        let rows = q.fetch_all(&mut *conn).await.map_err(map_err)?;
        rows.iter()
            .map(|r| rows::vtxo(r).map(|v| (v.id, v)))
            .collect()
    }

    /// Fails unless every asset exists.
    async fn ensure_assets(
        &self,
        conn: &mut AnyConnection,
        assets: &BTreeSet<AssetId>,
    ) -> Result<(), StoreError> {
        if assets.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT asset_id FROM assets WHERE asset_id IN ({})",
            placeholders(assets.len())
        );
        let mut q = sqlx::query(&sql);
        for a in assets {
            q = q.bind(a.to_string());
        }
        let rows = q.fetch_all(&mut *conn).await.map_err(map_err)?;
        let found: BTreeSet<AssetId> = rows
            .iter()
            .map(|r| rows::parse::<AssetId>(r, "asset_id"))
            .collect::<Result<_, _>>()?;
        match assets.iter().find(|a| !found.contains(a)) {
            Some(missing) => Err(LedgerError::UnknownAsset(*missing).into()),
            None => Ok(()),
        }
    }

    /// Adds `delta` (may be negative) to the supply of each asset.
    async fn adjust_supply(
        &self,
        conn: &mut AnyConnection,
        deltas: &BTreeMap<AssetId, i128>,
    ) -> Result<(), StoreError> {
        for (asset, delta) in deltas.iter().filter(|(_, d)| **d != 0) {
            let sql = format!(
                "SELECT total_supply FROM assets WHERE asset_id = ?{}",
                self.backend.for_update()
            );
            let row = sqlx::query(&sql)
                .bind(asset.to_string())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err)?
                .ok_or(LedgerError::UnknownAsset(*asset))?;
            let current = i128::from(rows::int(&row, "total_supply")?);
            let next = current
                .checked_add(*delta)
                .filter(|n| *n >= 0)
                .and_then(|n| i64::try_from(n).ok())
                .ok_or_else(out_of_range)?;
            sqlx::query("UPDATE assets SET total_supply = ? WHERE asset_id = ?")
                .bind(next)
                .bind(asset.to_string())
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// Inserts one VTXO row; a duplicate id is `DuplicateVtxo`.
    async fn insert_vtxo_row(
        &self,
        conn: &mut AnyConnection,
        v: &NewVtxo,
        created_by: Option<String>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if !v.status.is_spendable() {
            return Err(StoreError::Corrupt(format!(
                "new VTXO {} must be available or assigned, not {}",
                v.id, v.status
            )));
        }
        let (asset, amount) = match &v.colour {
            Some(c) if c.amount == AssetAmount::ZERO => return Err(out_of_range()),
            Some(c) => (
                Some(c.asset.to_string()),
                to_i64(c.amount, AssetAmount::to_i64)?,
            ),
            None => (None, 0),
        };
        let tapscripts = serde_json::to_string(&v.tapscripts)
            .map_err(|e| StoreError::Corrupt(format!("tapscripts: {e}")))?;
        let assigned_at = (v.status == VtxoStatus::Assigned).then_some(now.0);
        let res = sqlx::query(
            "INSERT INTO vtxos (vtxo_id, owner_pubkey, asset_id, amount, sats, status, created_at, \
             assigned_at, expires_at, tx_id, tapscripts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.id.to_string())
        .bind(v.owner.to_string())
        .bind(asset)
        .bind(amount)
        .bind(to_i64(v.sats, Sats::to_i64)?)
        .bind(v.status.as_str())
        .bind(now.0)
        .bind(assigned_at)
        .bind(v.expires_at.map(|t| t.0))
        .bind(created_by)
        .bind(tapscripts)
        .execute(&mut *conn)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(LedgerError::DuplicateVtxo(v.id).into()),
            Err(e) => Err(map_err(e)),
        }
    }

    pub(super) async fn do_register_asset(
        &self,
        a: &NewAsset,
        now: UnixTime,
    ) -> Result<Recorded, StoreError> {
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let res = sqlx::query(
                "INSERT INTO assets (asset_id, name, ticker, asset_type, decimals, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(a.id.to_string())
            .bind(a.name.clone())
            .bind(a.ticker.clone())
            .bind(a.asset_type.as_str())
            .bind(i64::from(a.decimals))
            .bind(now.0)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(Recorded::Duplicate),
                Err(e) => return Err(map_err(e)),
            }
            sqlx::query("INSERT INTO asset_balances (asset_id, last_updated) VALUES (?, ?)")
                .bind(a.id.to_string())
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            Ok(Recorded::New)
        })
        .await
    }

    pub(super) async fn do_asset(&self, id: &AssetId) -> Result<Option<Asset>, StoreError> {
        let sql = format!("SELECT {ASSET_COLUMNS} FROM assets WHERE asset_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::asset).transpose()
    }

    pub(super) async fn do_assets(&self) -> Result<Vec<Asset>, StoreError> {
        let sql = format!("SELECT {ASSET_COLUMNS} FROM assets ORDER BY ticker, asset_id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::asset).collect()
    }

    pub(super) async fn do_insert_vtxos(
        &self,
        vtxos: &[NewVtxo],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        ensure_distinct(vtxos.iter().map(|v| &v.id))?;
        let mut supply: BTreeMap<AssetId, i128> = BTreeMap::new();
        for c in vtxos.iter().filter_map(|v| v.colour.as_ref()) {
            *supply.entry(c.asset).or_default() += i128::from(c.amount.get());
        }
        let assets: BTreeSet<AssetId> = supply.keys().copied().collect();
        let (assets, supply) = (&assets, &supply);
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            self.ensure_assets(&mut tx, assets).await?;
            for v in vtxos {
                self.insert_vtxo_row(&mut tx, v, None, now).await?;
            }
            self.adjust_supply(&mut tx, supply).await?;
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    pub(super) async fn do_vtxo(&self, id: &VtxoId) -> Result<Option<Vtxo>, StoreError> {
        let sql = format!("SELECT {VTXO_COLUMNS} FROM vtxos WHERE vtxo_id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::vtxo).transpose()
    }

    pub(super) async fn do_unspent_vtxos(&self, owner: &PubKey) -> Result<Vec<Vtxo>, StoreError> {
        let sql = format!(
            "SELECT {VTXO_COLUMNS} FROM vtxos WHERE owner_pubkey = ? \
             AND status IN ('available', 'assigned') ORDER BY vtxo_id"
        );
        let rows: Vec<AnyRow> = sqlx::query(&sql)
            .bind(owner.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::vtxo).collect()
    }

    pub(super) async fn do_free_inventory(
        &self,
        owner: &PubKey,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<Vtxo>, StoreError> {
        let sql = format!(
            "SELECT {VTXO_COLUMNS} FROM vtxos WHERE owner_pubkey = ? AND status = 'available' \
             AND asset_id IS NULL AND locked_by IS NULL ORDER BY id LIMIT ? OFFSET ?"
        );
        let rows: Vec<AnyRow> = sqlx::query(&sql)
            .bind(owner.to_string())
            .bind(i64::from(limit))
            .bind(i64::from(skip))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::vtxo).collect()
    }

    pub(super) async fn do_count_vtxos(
        &self,
        owner: &PubKey,
        status: VtxoStatus,
    ) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM vtxos WHERE owner_pubkey = ? AND status = ?")
                .bind(owner.to_string())
                .bind(status.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        let n = row.try_get::<i64, _>("n").map_err(map_err)?;
        u64::try_from(n).map_err(|e| StoreError::Corrupt(format!("count: {e}")))
    }

    pub(super) async fn do_balances(&self, owner: &PubKey) -> Result<Balances, StoreError> {
        let mut b = Balances::default();
        for v in self.do_unspent_vtxos(owner).await? {
            b.sats = b.sats.checked_add(v.sats).ok_or_else(out_of_range)?;
            b.vtxo_count = b.vtxo_count.saturating_add(1);
            if let Some(c) = v.colour {
                let slot = b.assets.entry(c.asset).or_default();
                *slot = slot.checked_add(c.amount).ok_or_else(out_of_range)?;
            }
        }
        Ok(b)
    }

    pub(super) async fn do_lock_vtxos(
        &self,
        ids: &[VtxoId],
        session: &SessionId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        ensure_distinct(ids)?;
        let wanted: BTreeSet<VtxoId> = ids.iter().copied().collect();
        let wanted = &wanted;
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let found = self.select_vtxos_for_update(&mut tx, wanted).await?;
            for id in wanted {
                let v = found.get(id).ok_or(LedgerError::UnknownVtxo(*id))?;
                check_spendable(v, Some(session))?;
            }
            if wanted.is_empty() {
                return Ok(());
            }
            let sql = format!(
                "UPDATE vtxos SET locked_by = ?, locked_at = ? WHERE vtxo_id IN ({})",
                placeholders(wanted.len())
            );
            let mut q = sqlx::query(&sql).bind(session.to_string()).bind(now.0);
            for id in wanted {
                q = q.bind(id.to_string());
            }
            q.execute(&mut *tx).await.map_err(map_err)?;
            tx.commit().await.map_err(map_err)
        })
        .await
    }

    pub(super) async fn do_release_locks(&self, session: &SessionId) -> Result<u64, StoreError> {
        self.write(|| async move {
            let res = sqlx::query(
                "UPDATE vtxos SET locked_by = NULL, locked_at = NULL WHERE locked_by = ?",
            )
            .bind(session.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
            Ok(res.rows_affected())
        })
        .await
    }

    pub(super) async fn do_commit_transaction(
        &self,
        t: &L2Transaction,
    ) -> Result<CommitOutcome, StoreError> {
        let c = LedgerCommit::of(t)?;
        let c = &c;
        self.write(|| async move {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            let outcome = self.commit_in(&mut tx, c).await?;
            if outcome == CommitOutcome::Committed {
                tx.commit().await.map_err(map_err)?;
            }
            Ok(outcome)
        })
        .await
    }

    /// Applies `c` inside the caller's transaction (its own, or a session
    /// write's). `AlreadyCommitted` writes nothing. A concurrent commit of
    /// the same ark txid is transient: the retried transaction sees it.
    pub(super) async fn commit_in(
        &self,
        tx: &mut AnyConnection,
        c: &LedgerCommit<'_>,
    ) -> Result<CommitOutcome, StoreError> {
        let t = c.t;
        let seen = sqlx::query("SELECT ark_txid FROM l2_transactions WHERE ark_txid = ?")
            .bind(c.txid.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if seen.is_some() {
            return Ok(CommitOutcome::AlreadyCommitted);
        }

        let found = self.select_vtxos_for_update(tx, &c.inputs).await?;
        let mut spent = Vec::with_capacity(c.inputs.len());
        for id in &c.inputs {
            let v = found.get(id).ok_or(LedgerError::UnknownVtxo(*id))?;
            check_spendable(v, t.session.as_ref())?;
            spent.push(v);
        }
        let existing = self.select_vtxos_for_update(tx, &c.outputs).await?;
        if let Some(dup) = existing.keys().next() {
            return Err(LedgerError::DuplicateVtxo(*dup).into());
        }

        let supply = check_conservation(&spent, t)?;
        let assets: BTreeSet<AssetId> = supply
            .keys()
            .copied()
            .chain(t.outputs.iter().filter_map(|o| o.colour.map(|c| c.asset)))
            .collect();
        self.ensure_assets(tx, &assets).await?;

        let sql = format!(
            "UPDATE vtxos SET status = 'spent', spent_at = ?, spent_by_txid = ?, \
             locked_by = NULL, locked_at = NULL \
             WHERE status IN ('available', 'assigned') AND vtxo_id IN ({})",
            placeholders(c.inputs.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(t.finalized_at.0)
            .bind(c.txid.clone());
        for id in &c.inputs {
            q = q.bind(id.to_string());
        }
        let updated = q.execute(&mut *tx).await.map_err(map_err)?.rows_affected();
        if updated != c.inputs.len() as u64 {
            // Another writer spent an input between our check and the update;
            // cannot happen under the row locks / writer mutex, but never apply half.
            return Err(StoreError::Transient("concurrent spend detected".into()));
        }
        for o in &t.outputs {
            self.insert_vtxo_row(tx, o, Some(c.txid.clone()), t.finalized_at)
                .await?;
        }
        self.adjust_supply(tx, &supply).await?;
        if let Some(session) = &t.session {
            sqlx::query("UPDATE vtxos SET locked_by = NULL, locked_at = NULL WHERE locked_by = ?")
                .bind(session.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let res = sqlx::query(
            "INSERT INTO l2_transactions (ark_txid, kind, session_id, inputs, outputs, \
             finalized_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(c.txid.clone())
        .bind(t.kind.clone())
        .bind(t.session.map(|s| s.to_string()))
        .bind(c.inputs_json.clone())
        .bind(c.outputs_json.clone())
        .bind(t.finalized_at.0)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => Ok(CommitOutcome::Committed),
            // A concurrent commit of the same ark txid won: this transaction
            // holds half of a second one, so it is retried whole (and then
            // finds the winner's row).
            Err(e) if is_unique_violation(&e) => Err(StoreError::Transient(Box::new(e))),
            Err(e) => Err(map_err(e)),
        }
    }
}

/// An L2 transaction checked for what needs no database (inputs present and
/// distinct, outputs distinct and not inputs), with its bound values.
pub(super) struct LedgerCommit<'a> {
    t: &'a L2Transaction,
    txid: String,
    inputs: BTreeSet<VtxoId>,
    outputs: BTreeSet<VtxoId>,
    inputs_json: String,
    outputs_json: String,
}

impl<'a> LedgerCommit<'a> {
    pub(super) fn of(t: &'a L2Transaction) -> Result<Self, StoreError> {
        if t.inputs.is_empty() {
            return Err(LedgerError::NoInputs.into());
        }
        ensure_distinct(&t.inputs)?;
        ensure_distinct(t.outputs.iter().map(|o| &o.id))?;
        let inputs: BTreeSet<VtxoId> = t.inputs.iter().copied().collect();
        let outputs: BTreeSet<VtxoId> = t.outputs.iter().map(|o| o.id).collect();
        if let Some(both) = inputs.intersection(&outputs).next() {
            return Err(LedgerError::RepeatedVtxo(*both).into());
        }
        let inputs_json = serde_json::to_string(&t.inputs)
            .map_err(|e| StoreError::Corrupt(format!("inputs: {e}")))?;
        let outputs_json = serde_json::to_string(&outputs)
            .map_err(|e| StoreError::Corrupt(format!("outputs: {e}")))?;
        Ok(Self {
            t,
            txid: t.ark_txid.to_string(),
            inputs,
            outputs,
            inputs_json,
            outputs_json,
        })
    }
}

/// A VTXO can be spent or locked by `session` only if it is spendable and not
/// held by another session.
fn check_spendable(v: &Vtxo, session: Option<&SessionId>) -> Result<(), LedgerError> {
    match v.status {
        VtxoStatus::Spent => return Err(LedgerError::AlreadySpent(v.id)),
        VtxoStatus::Expired => return Err(LedgerError::Expired(v.id)),
        VtxoStatus::Available | VtxoStatus::Assigned => {}
    }
    match (&v.locked_by, session) {
        (None, _) => Ok(()),
        (Some(holder), Some(s)) if holder == s => Ok(()),
        (Some(holder), _) => Err(LedgerError::Locked {
            vtxo: v.id,
            by: *holder,
        }),
    }
}

/// Checks sats and per-asset colour conservation; returns the supply change per
/// asset (issued − burned).
fn check_conservation(
    spent: &[&Vtxo],
    t: &L2Transaction,
) -> Result<BTreeMap<AssetId, i128>, StoreError> {
    let sats_in = Sats::checked_sum(spent.iter().map(|v| v.sats)).ok_or_else(out_of_range)?;
    let sats_out = Sats::checked_sum(t.outputs.iter().map(|o| o.sats))
        .and_then(|o| o.checked_add(t.fee))
        .ok_or_else(out_of_range)?;
    if sats_in != sats_out {
        return Err(LedgerError::SatsNotConserved {
            inputs: sats_in.get(),
            outputs: sats_out.get(),
        }
        .into());
    }
    // Per asset: (inputs + issued, outputs + burned), in i128 so sums cannot overflow.
    let mut flows: BTreeMap<AssetId, (i128, i128)> = BTreeMap::new();
    let mut supply: BTreeMap<AssetId, i128> = BTreeMap::new();
    for c in spent.iter().filter_map(|v| v.colour) {
        flows.entry(c.asset).or_default().0 += i128::from(c.amount.get());
    }
    for c in &t.issued {
        flows.entry(c.asset).or_default().0 += i128::from(c.amount.get());
        *supply.entry(c.asset).or_default() += i128::from(c.amount.get());
    }
    for c in t.outputs.iter().filter_map(|o| o.colour) {
        flows.entry(c.asset).or_default().1 += i128::from(c.amount.get());
    }
    for c in &t.burned {
        flows.entry(c.asset).or_default().1 += i128::from(c.amount.get());
        *supply.entry(c.asset).or_default() -= i128::from(c.amount.get());
    }
    for (asset, (inflow, outflow)) in &flows {
        if inflow != outflow {
            return Err(LedgerError::ColourNotConserved {
                asset: *asset,
                inputs: u64::try_from(*inflow).unwrap_or(u64::MAX),
                outputs: u64::try_from(*outflow).unwrap_or(u64::MAX),
            }
            .into());
        }
    }
    Ok(supply)
}
