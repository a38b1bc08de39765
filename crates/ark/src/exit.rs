//! The asset of an exited VTXO, re-derived from packet history alone
//! (issue 20 item 6, docs/exit.md).
//!
//! A unilateral exit puts a VTXO's ancestor transactions on chain: the batch
//! branch, then for every off-chain hop its checkpoint tx and its ark tx. The
//! chain only sees carrier sats; the asset travels in the ark txs' asset
//! packets. [`asset_of_exited_output`] replays a history — the transactions
//! from the asset's genesis (the ark tx whose packet issued it) to the exited
//! output, parents before children — and returns the asset denominations the
//! output holds (`roots` stand for colour seeded outside any packet),
//! applying arkd's rules: an ark tx's packet must list every
//! asset of every input it spends with its exact amount (so a claim can only
//! come from a traced prevout), an asset's outputs may not exceed its inputs
//! unless the group issues it (or reissues it with the control asset its
//! issuance named spent in the same tx),
//! a transaction spending an asset without a packet is invalid, except a
//! checkpoint (one input, no packet), whose output 0 carries its input's
//! assets on. Prevouts outside the history hold no asset.
//!
//! Pure: no I/O. It does not check signatures or that the transactions are
//! confirmed; the verifier gets that from the chain.

use std::collections::{BTreeMap, HashMap};

use bitcoin::{OutPoint, Transaction};

use crate::asset::{
    group_asset_id, output_assets, tx_packet, ArkadeAssetId, AssetGroup, AssetRef, Packet,
    PacketError,
};

/// Asset denominations of one output.
pub type Holdings = Vec<(ArkadeAssetId, u64)>;

/// Why a history does not prove an output's asset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExitError {
    /// A packet does not decode.
    #[error("tx {txid}: {source}")]
    Packet {
        /// The transaction.
        txid: bitcoin::Txid,
        /// Why.
        #[source]
        source: PacketError,
    },
    /// A packet says an input holds something the history does not give it.
    #[error("tx {txid} input {vin}: the packet lists {claimed:?}, the history gives {traced:?}")]
    InputMismatch {
        /// The transaction.
        txid: bitcoin::Txid,
        /// The input.
        vin: u32,
        /// What the packet lists.
        claimed: Holdings,
        /// What the history gives the prevout.
        traced: Holdings,
    },
    /// An asset's outputs exceed its inputs without an issuance.
    #[error("tx {txid}: asset {asset} outputs {outputs} exceed inputs {inputs}")]
    Inflation {
        /// The transaction.
        txid: bitcoin::Txid,
        /// The asset.
        asset: ArkadeAssetId,
        /// Listed inputs.
        inputs: u64,
        /// Assigned outputs.
        outputs: u64,
    },
    /// A non-checkpoint transaction spends an asset without a packet.
    #[error("tx {txid} spends assets without an asset packet")]
    NoPacket {
        /// The transaction.
        txid: bitcoin::Txid,
    },
    /// The exited output is not created by any transaction of the history.
    #[error("output {0} is not in the history")]
    NotInHistory(OutPoint),
}

fn sorted(mut h: Holdings) -> Holdings {
    h.sort_by_key(|(id, amount)| (id.txid, id.group_index, *amount));
    h
}

/// What a wallet keeps to prove the asset of a VTXO it may exit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitHistory {
    /// Colour no packet of `txs` derives: outputs whose assets were seeded
    /// outside Ark (today's bridged ids, test fixtures). Empty for an asset
    /// issued on Ark, whose genesis packet is the first of `txs`; a verifier
    /// trusts a root only as far as it trusts whoever asserted it.
    pub roots: Vec<(OutPoint, Holdings)>,
    /// Ark txs and checkpoint txs from the asset's genesis (or the roots) to
    /// the exited output, parents before children.
    pub txs: Vec<Transaction>,
}

/// The asset denominations of `output` after replaying `history` (see the
/// module docs); empty when it holds no asset.
pub fn asset_of_exited_output(
    history: &ExitHistory,
    output: OutPoint,
) -> Result<Holdings, ExitError> {
    let mut holdings: BTreeMap<OutPoint, Holdings> = history
        .roots
        .iter()
        .map(|(o, h)| (*o, sorted(h.clone())))
        .collect();
    // Asset → its control asset, as the history's issuances named them.
    let mut controls: HashMap<ArkadeAssetId, ArkadeAssetId> = HashMap::new();
    let mut created = false;
    for tx in &history.txs {
        let txid = tx.compute_txid();
        created |= txid == output.txid && (output.vout as usize) < tx.output.len();
        let traced: Vec<Holdings> = tx
            .input
            .iter()
            .map(|i| holdings.remove(&i.previous_output).unwrap_or_default())
            .collect();
        let packet = tx_packet(tx)
            .map_err(|source| ExitError::Packet { txid, source })?
            .map(|(_, p)| p);
        let Some(packet) = packet else {
            let spends_assets = traced.iter().any(|h| !h.is_empty());
            match traced.as_slice() {
                _ if !spends_assets => {}
                // A checkpoint: its output 0 carries the VTXO's assets on.
                [only] if !tx.output.is_empty() => {
                    holdings.insert(OutPoint::new(txid, 0), only.clone());
                }
                _ => return Err(ExitError::NoPacket { txid }),
            }
            continue;
        };
        // Every input listed with exactly what the history gives it.
        let mut claimed: BTreeMap<u32, Holdings> = BTreeMap::new();
        for (i, g) in packet.groups.iter().enumerate() {
            let id = group_asset_id(txid, i, g);
            for input in &g.inputs {
                claimed
                    .entry(u32::from(input.input_index))
                    .or_default()
                    .push((id, input.amount));
            }
        }
        for (vin, traced) in traced.iter().enumerate() {
            let vin = u32::try_from(vin).unwrap_or(u32::MAX);
            let claim = sorted(claimed.remove(&vin).unwrap_or_default());
            if claim != sorted(traced.clone()) {
                return Err(ExitError::InputMismatch {
                    txid,
                    vin,
                    claimed: claim,
                    traced: sorted(traced.clone()),
                });
            }
        }
        if let Some((vin, claim)) = claimed.into_iter().next() {
            return Err(ExitError::InputMismatch {
                txid,
                vin,
                claimed: sorted(claim),
                traced: Vec::new(),
            });
        }
        // Supply: outputs ≤ inputs per asset, except issuance and a
        // reissuance whose control asset this tx spends.
        let mut spent: HashMap<ArkadeAssetId, u64> = HashMap::new();
        for (id, amount) in traced.iter().flatten() {
            let total = spent.entry(*id).or_default();
            *total = total.saturating_add(*amount);
        }
        for (i, g) in packet.groups.iter().enumerate() {
            let id = group_asset_id(txid, i, g);
            let Some(existing) = g.asset_id else {
                // Issuance: a fresh id (txid, group), with its control asset.
                if let Some(c) = control_of(&packet, txid, g) {
                    controls.insert(id, c);
                }
                continue;
            };
            let inputs: u64 = g.inputs.iter().map(|x| x.amount).sum();
            let outputs: u64 = g.outputs.iter().map(|x| x.amount).sum();
            let reissued = controls
                .get(&existing)
                .is_some_and(|c| spent.contains_key(c));
            if outputs > inputs && !reissued {
                return Err(ExitError::Inflation {
                    txid,
                    asset: id,
                    inputs,
                    outputs,
                });
            }
        }
        for (vout, h) in output_assets(txid, &packet) {
            holdings.insert(OutPoint::new(txid, vout), sorted(h));
        }
    }
    if !created {
        return Err(ExitError::NotInHistory(output));
    }
    Ok(holdings.remove(&output).unwrap_or_default())
}

/// The control asset an issuance group names, resolved to its id.
fn control_of(packet: &Packet, txid: bitcoin::Txid, group: &AssetGroup) -> Option<ArkadeAssetId> {
    match group.control_asset.as_ref()? {
        AssetRef::ById(id) => Some(*id),
        AssetRef::ByGroup(j) => packet
            .groups
            .get(usize::from(*j))
            .map(|cg| group_asset_id(txid, usize::from(*j), cg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::{AssetInput, AssetOutput};
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    fn tx(inputs: &[OutPoint], outputs: usize, packet: Option<&Packet>) -> Transaction {
        let mut output: Vec<TxOut> = (0..outputs)
            .map(|_| TxOut {
                value: Amount::from_sat(330),
                script_pubkey: ScriptBuf::from_bytes(
                    vec![0x51, 0x20].into_iter().chain([7; 32]).collect(),
                ),
            })
            .collect();
        if let Some(p) = packet {
            output.push(p.to_txout());
        }
        Transaction {
            version: Version(3),
            lock_time: LockTime::ZERO,
            input: inputs
                .iter()
                .map(|o| TxIn {
                    previous_output: *o,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        }
    }

    fn txs(txs: Vec<Transaction>) -> ExitHistory {
        ExitHistory { roots: vec![], txs }
    }

    fn funding(n: u8) -> OutPoint {
        OutPoint::new(bitcoin::hashes::Hash::from_byte_array([n; 32]), 0)
    }

    fn issue(amount: u64) -> (Transaction, ArkadeAssetId) {
        let p = Packet {
            groups: vec![AssetGroup {
                asset_id: None,
                control_asset: None,
                metadata: None,
                inputs: vec![],
                outputs: vec![AssetOutput {
                    output_index: 0,
                    amount,
                }],
            }],
        };
        let t = tx(&[funding(1)], 1, Some(&p));
        let id = ArkadeAssetId {
            txid: t.compute_txid(),
            group_index: 0,
        };
        (t, id)
    }

    fn transfer(from: OutPoint, id: ArkadeAssetId, amount: u64, out: &[u64]) -> Transaction {
        let p = Packet {
            groups: vec![AssetGroup {
                asset_id: Some(id),
                control_asset: None,
                metadata: None,
                inputs: vec![AssetInput {
                    input_index: 0,
                    amount,
                }],
                outputs: out
                    .iter()
                    .enumerate()
                    .map(|(i, a)| AssetOutput {
                        output_index: u16::try_from(i).expect("small"),
                        amount: *a,
                    })
                    .collect(),
            }],
        };
        tx(&[from], out.len(), Some(&p))
    }

    #[test]
    fn issuance_checkpoint_transfer_is_traced() {
        let (genesis, id) = issue(1_000);
        let g0 = OutPoint::new(genesis.compute_txid(), 0);
        let checkpoint = tx(&[g0], 1, None);
        let c0 = OutPoint::new(checkpoint.compute_txid(), 0);
        let send = transfer(c0, id, 1_000, &[600, 400]);
        let history = ExitHistory {
            roots: vec![],
            txs: vec![genesis, checkpoint, send.clone()],
        };
        let to = OutPoint::new(send.compute_txid(), 1);
        assert_eq!(asset_of_exited_output(&history, to), Ok(vec![(id, 400)]));
        let change = OutPoint::new(send.compute_txid(), 0);
        assert_eq!(
            asset_of_exited_output(&history, change),
            Ok(vec![(id, 600)])
        );
    }

    #[test]
    fn claims_without_history_and_inflation_are_refused() {
        let (genesis, id) = issue(1_000);
        let g0 = OutPoint::new(genesis.compute_txid(), 0);
        // A packet claiming an input the history does not give the asset.
        let forged = transfer(funding(9), id, 1_000, &[1_000]);
        let out = OutPoint::new(forged.compute_txid(), 0);
        assert!(matches!(
            asset_of_exited_output(&txs(vec![genesis.clone(), forged]), out),
            Err(ExitError::InputMismatch { .. })
        ));
        // Listing less than the input holds (an implicit burn) is refused too.
        let under = transfer(g0, id, 900, &[900]);
        assert!(matches!(
            asset_of_exited_output(
                &txs(vec![genesis.clone(), under.clone()]),
                OutPoint::new(under.compute_txid(), 0)
            ),
            Err(ExitError::InputMismatch { .. })
        ));
        // Outputs above inputs.
        let inflate = transfer(g0, id, 1_000, &[1_001]);
        assert!(matches!(
            asset_of_exited_output(
                &txs(vec![genesis.clone(), inflate.clone()]),
                OutPoint::new(inflate.compute_txid(), 0)
            ),
            Err(ExitError::Inflation { .. })
        ));
        // A root (seeded colour) stands for a genesis the history lacks.
        let rooted = ExitHistory {
            roots: vec![(funding(9), vec![(id, 1_000)])],
            txs: vec![transfer(funding(9), id, 1_000, &[700, 300])],
        };
        let out = OutPoint::new(rooted.txs[0].compute_txid(), 1);
        assert_eq!(asset_of_exited_output(&rooted, out), Ok(vec![(id, 300)]));
        // An ark tx of two inputs spending the asset without a packet.
        let dropped = tx(&[g0, funding(3)], 1, None);
        assert!(matches!(
            asset_of_exited_output(
                &txs(vec![genesis, dropped.clone()]),
                OutPoint::new(dropped.compute_txid(), 0)
            ),
            Err(ExitError::NoPacket { .. })
        ));
    }
}
