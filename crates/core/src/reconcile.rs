//! Reconciliation of the ledger with the Ark server's indexer (issue 20 item 3).
//!
//! Colour is Ark state: the asset packet of the ark tx that created a VTXO
//! assigned its asset denominations, and arkd's indexer reports them
//! (`IndexerVtxo.assets`). The ledger records the same colour when it commits
//! the finalized tx. [`compare`] checks the two views VTXO by VTXO and returns
//! typed [`Difference`]s; it is pure (no I/O). The engine's runner
//! (`ark_relay_engine::reconcile`) reads both sides page by page, calls it, and
//! writes the outcome through [`ReconcileStore`]: the run's summary (shown by
//! `/health`) and the set of **disputed** VTXOs, on which the relay refuses to
//! start a session (error 2006 `COLOUR_MISMATCH`).
//!
//! Asset ids differ in form between the two sides (the ledger's [`AssetId`],
//! the indexer's Arkade id string); the caller passes the mapping from a
//! ledger id to the indexer's string, so this module does not know how ids
//! are derived.
//!
//! Must not: fetch anything, decide policy about what to do with a difference
//! beyond [`Difference::dispute`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backends::ark::{ServerAsset, ServerVtxo};
use crate::{AssetId, Sats, StoreError, UnixTime, Vtxo, VtxoId, VtxoStatus};

/// One asset denomination (an asset in the indexer's id form and base units).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Denomination {
    /// The asset id as the indexer spells it (Arkade id, 68 hex).
    pub asset_id: String,
    /// Base units.
    pub amount: u64,
}

impl From<&ServerAsset> for Denomination {
    fn from(a: &ServerAsset) -> Self {
        Denomination {
            asset_id: a.asset_id.clone(),
            amount: a.amount,
        }
    }
}

/// How a VTXO the ledger holds unspent is gone at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneHow {
    /// Spent by an ark tx (or forfeited in a batch).
    Spent,
    /// Swept by the operator after its batch expired.
    Swept,
    /// Unrolled on chain (unilateral exit).
    Unrolled,
}

/// One disagreement between the ledger and the indexer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Difference {
    /// Unspent in the ledger, unknown to the indexer.
    MissingAtServer {
        /// The VTXO.
        vtxo: VtxoId,
    },
    /// Unspent (and not locked by a session) in the ledger, gone at the server.
    SpentAtServer {
        /// The VTXO.
        vtxo: VtxoId,
        /// How it is gone.
        how: GoneHow,
        /// arkd's `ark_txid` (or `spent_by`) for it, if reported.
        spent_by: Option<String>,
    },
    /// Unspent at the server, spent or expired in the ledger.
    SpentInLedger {
        /// The VTXO.
        vtxo: VtxoId,
        /// The ledger's status.
        status: VtxoStatus,
    },
    /// Both know it unspent, with different carrier sats.
    SatsDiffer {
        /// The VTXO.
        vtxo: VtxoId,
        /// The ledger's sats.
        ledger: Sats,
        /// The server's amount.
        server: Sats,
    },
    /// Both know it unspent, with different asset denominations.
    ColourDiffers {
        /// The VTXO.
        vtxo: VtxoId,
        /// The ledger's colour, in the indexer's id form.
        ledger: Vec<Denomination>,
        /// What the indexer reports.
        server: Vec<Denomination>,
    },
    /// Unspent at the server under a script the ledger knows, but not in the ledger.
    UnknownAtLedger {
        /// The VTXO.
        vtxo: VtxoId,
        /// Its amount.
        sats: Sats,
        /// Its assets.
        assets: Vec<Denomination>,
    },
}

/// Why a VTXO is disputed (the relay refuses to spend it, error 2006).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    /// The asset or its amount differs.
    Colour,
    /// The carrier sats differ.
    Sats,
}

impl DisputeReason {
    /// The database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DisputeReason::Colour => "colour",
            DisputeReason::Sats => "sats",
        }
    }
}

impl FromStr for DisputeReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "colour" => Ok(DisputeReason::Colour),
            "sats" => Ok(DisputeReason::Sats),
            other => Err(format!("unknown dispute reason {other:?}")),
        }
    }
}

impl fmt::Display for DisputeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A VTXO the relay must not spend until a reconciliation clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    /// The VTXO.
    pub vtxo: VtxoId,
    /// Why.
    pub reason: DisputeReason,
}

impl Difference {
    /// The VTXO it is about.
    pub fn vtxo(&self) -> &VtxoId {
        match self {
            Difference::MissingAtServer { vtxo }
            | Difference::SpentAtServer { vtxo, .. }
            | Difference::SpentInLedger { vtxo, .. }
            | Difference::SatsDiffer { vtxo, .. }
            | Difference::ColourDiffers { vtxo, .. }
            | Difference::UnknownAtLedger { vtxo, .. } => vtxo,
        }
    }

    /// The dispute it raises on a ledger VTXO the relay could spend: a
    /// colour or sats mismatch of a VTXO both sides hold unspent. The other
    /// kinds are reported but block nothing (arkd itself refuses to spend a
    /// VTXO it does not hold unspent, with 2002/2003).
    pub fn dispute(&self) -> Option<Dispute> {
        match self {
            Difference::ColourDiffers { vtxo, .. } => Some(Dispute {
                vtxo: *vtxo,
                reason: DisputeReason::Colour,
            }),
            Difference::SatsDiffer { vtxo, .. } => Some(Dispute {
                vtxo: *vtxo,
                reason: DisputeReason::Sats,
            }),
            _ => None,
        }
    }

    /// The kind's name (`colour_differs`, …), for logs and counters.
    pub const fn kind(&self) -> &'static str {
        match self {
            Difference::MissingAtServer { .. } => "missing_at_server",
            Difference::SpentAtServer { .. } => "spent_at_server",
            Difference::SpentInLedger { .. } => "spent_in_ledger",
            Difference::SatsDiffer { .. } => "sats_differ",
            Difference::ColourDiffers { .. } => "colour_differs",
            Difference::UnknownAtLedger { .. } => "unknown_at_ledger",
        }
    }
}

/// The outcome of comparing one slice of both views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Ledger VTXOs compared.
    pub checked: u64,
    /// Ledger VTXOs locked by a session whose spend the server already
    /// reports (a ceremony between FinalizeTx and the ledger commit): skipped.
    pub in_flight: u64,
    /// What differs, in ledger order then server order.
    pub differences: Vec<Difference>,
}

/// The ledger's colour of `v` in the indexer's id form.
pub fn ledger_denominations(v: &Vtxo, asset_key: &dyn Fn(&AssetId) -> String) -> Vec<Denomination> {
    v.colour
        .iter()
        .map(|c| Denomination {
            asset_id: asset_key(&c.asset),
            amount: c.amount.get(),
        })
        .collect()
}

fn sorted(mut d: Vec<Denomination>) -> Vec<Denomination> {
    d.sort();
    d
}

fn gone(s: &ServerVtxo) -> Option<GoneHow> {
    if s.is_unrolled {
        Some(GoneHow::Unrolled)
    } else if s.is_spent {
        Some(GoneHow::Spent)
    } else if s.is_swept {
        Some(GoneHow::Swept)
    } else {
        None
    }
}

/// Compares the ledger with the indexer.
///
/// - `unspent`: ledger VTXOs in a spendable state (available/assigned);
/// - `other`: ledger rows of any other state that the server may also list
///   (so an unspent server VTXO the ledger spent is `SpentInLedger`, not
///   `UnknownAtLedger`);
/// - `server`: what the indexer returned for these outpoints and for the
///   scripts they pay to (any state);
/// - `asset_key`: a ledger asset id in the indexer's form.
pub fn compare(
    unspent: &[Vtxo],
    other: &[Vtxo],
    server: &[ServerVtxo],
    asset_key: &dyn Fn(&AssetId) -> String,
) -> Comparison {
    let by_id: BTreeMap<VtxoId, &ServerVtxo> = server.iter().rev().map(|s| (s.id, s)).collect();
    let mut out = Comparison::default();
    for v in unspent {
        out.checked += 1;
        let Some(s) = by_id.get(&v.id) else {
            out.differences
                .push(Difference::MissingAtServer { vtxo: v.id });
            continue;
        };
        if let Some(how) = gone(s) {
            if v.locked_by.is_some() && how == GoneHow::Spent {
                out.in_flight += 1;
            } else {
                out.differences.push(Difference::SpentAtServer {
                    vtxo: v.id,
                    how,
                    spent_by: s.ark_txid.or(s.spent_by).map(|t| t.to_string()),
                });
            }
            continue;
        }
        if v.sats != s.amount {
            out.differences.push(Difference::SatsDiffer {
                vtxo: v.id,
                ledger: v.sats,
                server: s.amount,
            });
        }
        let ledger = sorted(ledger_denominations(v, asset_key));
        let at_server = sorted(s.assets.iter().map(Denomination::from).collect());
        if ledger != at_server {
            out.differences.push(Difference::ColourDiffers {
                vtxo: v.id,
                ledger,
                server: at_server,
            });
        }
    }
    let unspent_ids: BTreeSet<VtxoId> = unspent.iter().map(|v| v.id).collect();
    let other_by_id: BTreeMap<VtxoId, &Vtxo> = other.iter().map(|v| (v.id, v)).collect();
    let mut seen = BTreeSet::new();
    for s in server {
        if unspent_ids.contains(&s.id) || gone(s).is_some() || !seen.insert(s.id) {
            continue;
        }
        match other_by_id.get(&s.id) {
            Some(v) => out.differences.push(Difference::SpentInLedger {
                vtxo: s.id,
                status: v.status,
            }),
            None => out.differences.push(Difference::UnknownAtLedger {
                vtxo: s.id,
                sats: s.amount,
                assets: sorted(s.assets.iter().map(Denomination::from).collect()),
            }),
        }
    }
    out
}

/// Whether the last run found the two views equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileStatus {
    /// Ledger = indexer.
    Ok,
    /// Differences were found (see the run's details).
    Degraded,
    /// The run did not complete (e.g. arkd unreachable); disputes unchanged.
    Failed,
}

impl ReconcileStatus {
    /// The database / wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReconcileStatus::Ok => "ok",
            ReconcileStatus::Degraded => "degraded",
            ReconcileStatus::Failed => "failed",
        }
    }
}

impl FromStr for ReconcileStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(ReconcileStatus::Ok),
            "degraded" => Ok(ReconcileStatus::Degraded),
            "failed" => Ok(ReconcileStatus::Failed),
            other => Err(format!("unknown reconciliation status {other:?}")),
        }
    }
}

/// The summary of one reconciliation run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRun {
    /// When it started.
    pub started_at: UnixTime,
    /// When it finished.
    pub finished_at: UnixTime,
    /// Ledger VTXOs compared.
    pub checked: u64,
    /// Ledger VTXOs skipped as in flight.
    pub in_flight: u64,
    /// Number of differences.
    pub differences: u64,
    /// Number of VTXOs now disputed.
    pub disputed: u64,
    /// Outcome.
    pub status: ReconcileStatus,
    /// The first differences (at most [`ReconciliationRun::DETAIL_LIMIT`]), or the error of a failed run.
    pub detail: String,
}

impl ReconciliationRun {
    /// How many differences a run keeps in `detail`.
    pub const DETAIL_LIMIT: usize = 100;
}

/// Storage of the reconciliation's inputs and outcome.
///
/// # Notes for implementors
/// - `record_reconciliation` is one transaction: with `disputes = Some(set)`
///   the stored disputed set becomes exactly `set` (a full run's view); with
///   `None` (a failed run) the disputed set is left as it was.
/// - `unspent_page` pages by `vtxo_id` (string order), so a run sees every
///   row that stays unspent while it runs exactly once.
#[async_trait]
pub trait ReconcileStore: Send + Sync + 'static {
    /// Up to `limit` spendable (available/assigned) ledger VTXOs of every
    /// owner whose id sorts after `after`, ordered by id.
    async fn unspent_page(
        &self,
        after: Option<&VtxoId>,
        limit: u32,
    ) -> Result<Vec<Vtxo>, StoreError>;

    /// Records a run and (unless `None`) replaces the disputed set.
    async fn record_reconciliation(
        &self,
        run: &ReconciliationRun,
        disputes: Option<&[Dispute]>,
    ) -> Result<(), StoreError>;

    /// The most recent run.
    async fn last_reconciliation(&self) -> Result<Option<ReconciliationRun>, StoreError>;

    /// The disputes among `ids` (empty when none is disputed).
    async fn disputes_among(&self, ids: &[VtxoId]) -> Result<Vec<Dispute>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AssetAmount, Colour, PubKey, Tapscripts};
    use bitcoin::hashes::Hash;
    use bitcoin::{OutPoint, ScriptBuf, Txid};

    fn id(n: u8) -> VtxoId {
        VtxoId::from(OutPoint::new(Txid::from_byte_array([n; 32]), 0))
    }

    fn key(a: &AssetId) -> String {
        format!("{a}0000")
    }

    fn owner() -> PubKey {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let sk = bitcoin::secp256k1::SecretKey::from_slice(&[3; 32]).expect("key");
        PubKey::from_x_only(sk.x_only_public_key(&secp).0)
    }

    fn ledger(n: u8, sats: u64, colour: Option<(u8, u64)>) -> Vtxo {
        Vtxo {
            id: id(n),
            owner: owner(),
            sats: Sats::new(sats),
            colour: colour.map(|(a, amount)| Colour {
                asset: AssetId::from_bytes([a; 32]),
                amount: AssetAmount::new(amount),
            }),
            status: VtxoStatus::Assigned,
            tapscripts: Tapscripts::default(),
            locked_by: None,
            spent_by: None,
            created_at: UnixTime(1),
            spent_at: None,
            expires_at: None,
        }
    }

    fn server(n: u8, sats: u64, colour: Option<(u8, u64)>) -> ServerVtxo {
        ServerVtxo {
            id: id(n),
            amount: Sats::new(sats),
            script: ScriptBuf::new(),
            created_at: 1,
            expires_at: 2,
            is_preconfirmed: true,
            is_swept: false,
            is_spent: false,
            is_unrolled: false,
            spent_by: None,
            ark_txid: None,
            depth: 1,
            assets: colour
                .map(|(a, amount)| ServerAsset {
                    asset_id: key(&AssetId::from_bytes([a; 32])),
                    amount,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn equal_views_have_no_difference() {
        let l = [ledger(1, 330, Some((9, 500))), ledger(2, 1_000, None)];
        let s = [server(2, 1_000, None), server(1, 330, Some((9, 500)))];
        let c = compare(&l, &[], &s, &key);
        assert_eq!(c.checked, 2);
        assert!(c.differences.is_empty(), "{:?}", c.differences);
    }

    #[test]
    fn every_kind_is_found() {
        let mut locked = ledger(6, 330, None);
        locked.locked_by = Some(crate::SessionId::from_bytes([1; 32]));
        let mut spent_ledger = ledger(7, 330, None);
        spent_ledger.status = VtxoStatus::Spent;
        let l = [
            ledger(1, 330, Some((9, 500))),
            ledger(2, 1_000, None),
            ledger(3, 330, Some((9, 5))),
            ledger(4, 330, None),
            locked,
        ];
        let mut spent = server(4, 330, None);
        spent.is_spent = true;
        let mut locked_spent = server(6, 330, None);
        locked_spent.is_spent = true;
        let s = [
            server(1, 330, Some((9, 499))),
            server(2, 999, None),
            spent,
            locked_spent,
            server(7, 330, None),
            server(8, 330, Some((9, 1))),
        ];
        let c = compare(&l, &[spent_ledger], &s, &key);
        assert_eq!(c.checked, 5);
        assert_eq!(c.in_flight, 1);
        let kinds: Vec<_> = c.differences.iter().map(Difference::kind).collect();
        assert_eq!(
            kinds,
            [
                "colour_differs",
                "sats_differ",
                "missing_at_server",
                "spent_at_server",
                "spent_in_ledger",
                "unknown_at_ledger"
            ]
        );
        let disputed: Vec<_> = c
            .differences
            .iter()
            .filter_map(Difference::dispute)
            .collect();
        assert_eq!(
            disputed,
            [
                Dispute {
                    vtxo: id(1),
                    reason: DisputeReason::Colour
                },
                Dispute {
                    vtxo: id(2),
                    reason: DisputeReason::Sats
                }
            ]
        );
    }

    #[test]
    fn an_asset_the_ledger_does_not_know_is_a_colour_difference() {
        let l = [ledger(1, 330, None)];
        let s = [server(1, 330, Some((9, 1)))];
        let c = compare(&l, &[], &s, &key);
        assert!(matches!(
            c.differences.as_slice(),
            [Difference::ColourDiffers { ledger, server, .. }] if ledger.is_empty() && server.len() == 1
        ));
        let json = serde_json::to_string(&c.differences).expect("json");
        assert!(json.contains("\"type\":\"colour_differs\""), "{json}");
    }
}
