//! A random transfer workload with a model of what must stay true, for property
//! tests of a store: random sequences of transfers between random owners (some
//! deliberately invalid) never create or destroy asset amounts, never leave a
//! VTXO both spent and unspent, and invalid ones change nothing.

use std::collections::{BTreeMap, BTreeSet};

use ark_relay_core::{
    AssetAmount, AssetId, Colour, DynStore, PubKey, Recorded, StoreError, UnixTime, VtxoId,
    VtxoStatus,
};
use proptest::prelude::*;

use crate::fixtures::{asset_id, colour, key, new_asset, transaction, vtxo};
use crate::store_suite::snapshot;

/// Owners in the workload.
pub const OWNERS: u32 = 4;
/// Assets in the workload.
pub const ASSETS: u8 = 2;

/// How a transfer is deliberately broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// The recipient gets one unit more than was spent.
    InflateOutput,
    /// The change output is dropped (colour destroyed).
    DropChange,
    /// One extra carrier sat appears.
    ExtraSat,
    /// An already spent VTXO is added as input.
    SpentInput,
}

/// One step of the workload.
#[derive(Debug, Clone)]
pub struct TransferOp {
    /// Sender index.
    pub from: u32,
    /// Recipient index.
    pub to: u32,
    /// Asset index.
    pub asset: u8,
    /// Share of the sender's balance to send, in ‰ (1..=1000).
    pub permille: u64,
    /// Whether and how the transfer is broken.
    pub tamper: Option<Tamper>,
}

/// A strategy for workloads of up to `max_len` steps.
pub fn transfer_ops(max_len: usize) -> impl Strategy<Value = Vec<TransferOp>> {
    let tamper = prop_oneof![
        6 => Just(None),
        1 => Just(Some(Tamper::InflateOutput)),
        1 => Just(Some(Tamper::DropChange)),
        1 => Just(Some(Tamper::ExtraSat)),
        1 => Just(Some(Tamper::SpentInput)),
    ];
    let op = (0..OWNERS, 0..OWNERS, 0..ASSETS, 1u64..=1000, tamper).prop_map(
        |(from, to, asset, permille, tamper)| TransferOp {
            from,
            to,
            asset,
            permille,
            tamper,
        },
    );
    proptest::collection::vec(op, 1..=max_len)
}

const NOW: UnixTime = UnixTime(1_700_000_000);

/// Runs the workload against a fresh store, checking the invariants after every
/// step. Panics on a breach (inside proptest, that is a failing case).
pub async fn run_transfers(store: &DynStore, ops: &[TransferOp]) {
    for a in 0..ASSETS {
        let r = store
            .register_asset(&new_asset(a), NOW)
            .await
            .expect("register");
        assert_eq!(r, Recorded::New);
    }
    let owners: Vec<PubKey> = (0..OWNERS).map(key).collect();
    let mut known: BTreeSet<VtxoId> = BTreeSet::new();
    let mut initial = Vec::new();
    for o in &owners {
        for a in 0..ASSETS {
            for amount in [700u64, 300] {
                initial.push(vtxo(*o, 330, colour(a, amount)));
            }
        }
    }
    known.extend(initial.iter().map(|v| v.id));
    store.insert_vtxos(&initial, NOW).await.expect("fund");
    let minted: BTreeMap<AssetId, u64> = (0..ASSETS)
        .map(|a| (asset_id(a), 1_000 * u64::from(OWNERS)))
        .collect();
    let mut spent: Vec<VtxoId> = Vec::new();

    for (step, op) in ops.iter().enumerate() {
        let (from, to, asset) = (
            owners[op.from as usize],
            owners[op.to as usize],
            asset_id(op.asset),
        );
        let inputs: Vec<_> = store
            .unspent_vtxos(&from)
            .await
            .expect("unspent")
            .into_iter()
            .filter(|v| v.colour.map(|c| c.asset) == Some(asset))
            .collect();
        if inputs.is_empty() {
            continue;
        }
        let held: u64 = inputs
            .iter()
            .filter_map(|v| v.colour)
            .map(|c| c.amount.get())
            .sum();
        let sats: u64 = inputs.iter().map(|v| v.sats.get()).sum();
        let amount = (held * op.permille / 1000).max(1);
        let change = held - amount;
        let paint = |n: u64| {
            Some(Colour {
                asset,
                amount: AssetAmount::new(n),
            })
        };
        let mut outputs = vec![(to, sats / 2, paint(amount))];
        if change > 0 {
            outputs.push((from, sats - sats / 2, paint(change)));
        } else {
            outputs[0].1 = sats;
        }
        let mut ids: Vec<VtxoId> = inputs.iter().map(|v| v.id).collect();
        let mut tamper = op.tamper;
        match tamper {
            Some(Tamper::InflateOutput) => outputs[0].2 = paint(amount + 1),
            Some(Tamper::DropChange) if change > 0 => {
                outputs.pop();
                outputs[0].1 = sats;
            }
            Some(Tamper::ExtraSat) => outputs[0].1 += 1,
            Some(Tamper::SpentInput) if !spent.is_empty() => ids.push(spent[step % spent.len()]),
            Some(_) => tamper = None,
            None => {}
        }
        let tx = transaction(None, ids, outputs);
        let watched: Vec<VtxoId> = known.iter().copied().collect();
        let before = snapshot(store, &owners, &watched).await;
        let result = store.commit_transaction(&tx).await;
        match (tamper, result) {
            (None, Ok(_)) => {
                spent.extend(inputs.iter().map(|v| v.id));
                known.extend(tx.outputs.iter().map(|o| o.id));
            }
            (None, Err(e)) => panic!("step {step}: valid transfer failed: {e:?}"),
            (Some(t), Ok(_)) => panic!("step {step}: {t:?} transfer was accepted"),
            (Some(_), Err(StoreError::Ledger(_))) => {
                assert_eq!(
                    snapshot(store, &owners, &watched).await,
                    before,
                    "step {step}"
                );
            }
            (Some(_), Err(e)) => panic!("step {step}: store failure {e:?}"),
        }
        check_invariants(store, &owners, &known, &minted).await;
    }
}

async fn check_invariants(
    store: &DynStore,
    owners: &[PubKey],
    known: &BTreeSet<VtxoId>,
    minted: &BTreeMap<AssetId, u64>,
) {
    let mut held: BTreeMap<AssetId, u64> = BTreeMap::new();
    let mut unspent: BTreeSet<VtxoId> = BTreeSet::new();
    for o in owners {
        for v in store.unspent_vtxos(o).await.expect("unspent") {
            assert!(v.status.is_spendable());
            assert!(unspent.insert(v.id), "{} listed twice", v.id);
            if let Some(c) = v.colour {
                *held.entry(c.asset).or_default() += c.amount.get();
            }
        }
    }
    assert_eq!(&held, minted, "asset amounts created or destroyed");
    for (asset, amount) in minted {
        let supply = store
            .asset(asset)
            .await
            .expect("asset")
            .expect("exists")
            .total_supply;
        assert_eq!(supply.get(), *amount, "recorded supply drifted");
    }
    for id in known {
        let v = store
            .vtxo(id)
            .await
            .expect("vtxo")
            .expect("known VTXO exists");
        let is_spent = v.status == VtxoStatus::Spent;
        assert_ne!(
            is_spent,
            unspent.contains(id),
            "{id} both spent and unspent (or neither)"
        );
    }
}
