//! A unilateral exit in the simulator (docs/exit.md): the off-chain ancestry
//! of a VTXO — every finalized ark tx and checkpoint tx from the last funded
//! or batch output down to the VTXO — broadcast to the chain simulator,
//! parents first, and mined. The chain model checks no scripts, so the
//! transactions go out as the server finalized them. arkd's own unroll
//! bookkeeping (`is_unrolled`) is not modelled.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction, Txid};

use super::ArkdSim;
use crate::chain::ChainError;

impl ArkdSim {
    /// The off-chain transactions a unilateral exit of `vtxo` puts on chain,
    /// parents before children (empty for a funded or batch VTXO).
    pub fn exit_path(&self, vtxo: &OutPoint) -> Vec<Transaction> {
        let state = self.state();
        let mut order: Vec<Transaction> = Vec::new();
        let mut seen: BTreeSet<Txid> = BTreeSet::new();
        // Depth-first from the VTXO's tx, emitting a tx after its parents.
        let mut stack: Vec<(Txid, bool)> = vec![(vtxo.txid, false)];
        while let Some((txid, parents_done)) = stack.pop() {
            let Some(tx) = state.virtual_txs.get(&txid) else {
                continue;
            };
            if parents_done {
                if seen.insert(txid) {
                    order.push(tx.clone());
                }
                continue;
            }
            if seen.contains(&txid) {
                continue;
            }
            stack.push((txid, true));
            for input in &tx.input {
                stack.push((input.previous_output.txid, false));
            }
        }
        order
    }

    /// Broadcasts [`Self::exit_path`] of `vtxo` and mines a block; returns
    /// the broadcast txids in order.
    pub fn unroll(&self, vtxo: &OutPoint) -> Result<Vec<Txid>, ChainError> {
        let mut txids = Vec::new();
        for tx in self.exit_path(vtxo) {
            match self.chain().broadcast(tx.clone()) {
                Ok(txid) => txids.push(txid),
                Err(ChainError::AlreadyKnown) => txids.push(tx.compute_txid()),
                Err(e) => return Err(e),
            }
        }
        self.chain().mine(1);
        Ok(txids)
    }
}
