//! What the arkd simulator tells about batches: the `GetTransactionsStream`
//! notifications (`commitment_tx`, `sweep_tx`), the script-subscription
//! events (new, spent and swept VTXOs), and the indexer's views of a batch
//! (`GetCommitmentTx`) and of a VTXO's ancestry (`GetVtxoChain`).

use std::collections::HashMap;

use bitcoin::{OutPoint, Psbt, Txid};

use ark_relay_proto::ark::v1 as pb;

use super::{encode_psbt, to_indexer_vtxo, to_vtxo, ArkdSim, SimVtxo, VtxoState};

impl ArkdSim {
    /// Announces a finalized batch on the transaction stream and to script
    /// subscribers.
    pub(crate) fn publish_batch(
        &self,
        txid: Txid,
        commitment: &Psbt,
        spent: &[SimVtxo],
        created: &[SimVtxo],
    ) {
        let tx = encode_psbt(commitment);
        let _ = self.inner.script_events.send(pb::IndexerSubscriptionEvent {
            txid: txid.to_string(),
            scripts: Vec::new(),
            new_vtxos: created.iter().map(to_indexer_vtxo).collect(),
            spent_vtxos: spent.iter().map(to_indexer_vtxo).collect(),
            tx: tx.clone(),
            checkpoint_txs: HashMap::new(),
            swept_vtxos: Vec::new(),
        });
        let _ = self.inner.events.send(pb::GetTransactionsStreamResponse {
            data: Some(pb::get_transactions_stream_response::Data::CommitmentTx(
                pb::TxNotification {
                    txid: txid.to_string(),
                    tx,
                    spent_vtxos: spent.iter().map(to_vtxo).collect(),
                    spendable_vtxos: created.iter().map(to_vtxo).collect(),
                    checkpoint_txs: HashMap::new(),
                    swept_vtxos: Vec::new(),
                },
            )),
        });
    }

    /// Announces a sweep: `swept` VTXOs are now recoverable.
    pub(crate) fn publish_sweep(&self, txid: Txid, swept: &[SimVtxo]) {
        let _ = self.inner.script_events.send(pb::IndexerSubscriptionEvent {
            txid: txid.to_string(),
            scripts: Vec::new(),
            new_vtxos: Vec::new(),
            spent_vtxos: Vec::new(),
            tx: String::new(),
            checkpoint_txs: HashMap::new(),
            swept_vtxos: swept.iter().map(to_indexer_vtxo).collect(),
        });
        let _ = self.inner.events.send(pb::GetTransactionsStreamResponse {
            data: Some(pb::get_transactions_stream_response::Data::SweepTx(
                pb::TxNotification {
                    txid: txid.to_string(),
                    tx: String::new(),
                    spent_vtxos: Vec::new(),
                    spendable_vtxos: Vec::new(),
                    checkpoint_txs: HashMap::new(),
                    swept_vtxos: swept
                        .iter()
                        .map(|v| pb::Outpoint {
                            txid: v.outpoint.txid.to_string(),
                            vout: v.outpoint.vout,
                        })
                        .collect(),
                },
            )),
        });
    }

    /// `GetCommitmentTx` for a finalized batch.
    pub(crate) fn commitment_info(&self, txid: &Txid) -> Option<pb::GetCommitmentTxResponse> {
        let (expires_at, swept) = {
            let r = self.inner.rounds.lock().unwrap_or_else(|e| e.into_inner());
            let b = r.batches.get(txid)?;
            (b.expires_at, b.swept)
        };
        let state = self.state();
        let made: Vec<&SimVtxo> = state
            .vtxos
            .values()
            .filter(|v| v.commitment_txid == Some(*txid) && !v.preconfirmed)
            .collect();
        let settled: Vec<&SimVtxo> = state
            .vtxos
            .values()
            .filter(|v| v.state == VtxoState::Settled(*txid))
            .collect();
        let out_amount: u64 = made.iter().map(|v| v.amount).sum();
        let created_at = made.first().map_or(0, |v| v.created_at);
        Some(pb::GetCommitmentTxResponse {
            started_at: created_at,
            ended_at: created_at,
            batches: HashMap::from([(
                0,
                pb::IndexerBatch {
                    total_output_amount: out_amount,
                    total_output_vtxos: i32::try_from(made.len()).unwrap_or(i32::MAX),
                    expires_at,
                    swept,
                },
            )]),
            total_input_amount: settled.iter().map(|v| v.amount).sum(),
            total_input_vtxos: i32::try_from(settled.len()).unwrap_or(i32::MAX),
            total_output_amount: out_amount,
            total_output_vtxos: i32::try_from(made.len()).unwrap_or(i32::MAX),
        })
    }

    /// `GetVtxoChain`: the txs from `outpoint` back to the commitment txs of
    /// its batches — ark txs for preconfirmed VTXOs, then the VTXO-tree txs
    /// and the commitment tx of each batch.
    pub(crate) fn vtxo_chain(&self, outpoint: &OutPoint) -> Option<Vec<pb::IndexerChain>> {
        use pb::IndexerChainedTxType as T;
        let state = self.state();
        let start = state.vtxos.get(outpoint)?;
        let rounds = self.inner.rounds.lock().unwrap_or_else(|e| e.into_inner());
        let mut chain = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![start.clone()];
        while let Some(v) = todo.pop() {
            if !seen.insert(v.outpoint.txid) {
                continue;
            }
            if v.preconfirmed {
                // Inputs of the ark tx that created it.
                let inputs: Vec<SimVtxo> = state
                    .vtxos
                    .values()
                    .filter(|p| p.state == VtxoState::Spent(v.outpoint.txid))
                    .cloned()
                    .collect();
                chain.push(pb::IndexerChain {
                    txid: v.outpoint.txid.to_string(),
                    expires_at: v.expires_at,
                    r#type: T::Ark as i32,
                    spends: inputs
                        .iter()
                        .filter_map(|p| p.spent_by.map(|c| c.to_string()))
                        .collect(),
                });
                todo.extend(inputs);
                continue;
            }
            let Some(c) = v.commitment_txid else { continue };
            let Some(b) = rounds.batches.get(&c) else {
                continue;
            };
            // The path from the leaf up to the root.
            let mut txid = v.outpoint.txid;
            while let Some(node) = b.vtxo_tree.node(&txid) {
                let parent = node.psbt.unsigned_tx.input[0].previous_output.txid;
                chain.push(pb::IndexerChain {
                    txid: txid.to_string(),
                    expires_at: b.expires_at,
                    r#type: T::Tree as i32,
                    spends: vec![parent.to_string()],
                });
                txid = parent;
            }
            if seen.insert(c) || !chain.iter().any(|x| x.txid == c.to_string()) {
                chain.push(pb::IndexerChain {
                    txid: c.to_string(),
                    expires_at: b.expires_at,
                    r#type: T::Commitment as i32,
                    spends: Vec::new(),
                });
            }
        }
        Some(chain)
    }
}
