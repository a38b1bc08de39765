//! The regtest chain model shared by the simulators: blocks, height, a mempool
//! with a fee rate tests set, and a `sendrawtransaction`-like broadcast.
//!
//! Deterministic: blocks are mined only when a test (or the sim admin RPC)
//! asks. Listeners registered with [`Chain::on_block`] run synchronously inside
//! [`Chain::mine`], so a test that mines a block observes every consequence
//! (hold-invoice auto-cancel, mint confirmation) when `mine` returns.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{consensus, BlockHash, Transaction, Txid};

/// Why a broadcast was refused (bitcoind's reasons).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// Not a consensus-encoded transaction.
    #[error("TX decode failed")]
    Decode,
    /// No inputs or no outputs.
    #[error("bad-txns-vin-empty or bad-txns-vout-empty")]
    Empty,
    /// Already in the mempool or a block.
    #[error("txn-already-known")]
    AlreadyKnown,
    /// An input is already spent by a mempool or confirmed transaction.
    #[error("bad-txns-inputs-missingorspent")]
    InputSpent,
    /// The fee rate is below the mempool's minimum.
    #[error("mempool min fee not met, {paid} < {min} sat/vB")]
    FeeTooLow {
        /// What the transaction pays, sat/vB (rounded down).
        paid: u64,
        /// What the mempool asks.
        min: u64,
    },
}

type Listener = Box<dyn Fn(u32) + Send + Sync>;

struct State {
    height: u32,
    tip: BlockHash,
    fee_rate_sat_per_vb: u64,
    mempool_min_fee: u64,
    mempool: Vec<Transaction>,
    confirmed: BTreeMap<Txid, u32>,
    spent: HashSet<bitcoin::OutPoint>,
}

/// A shared regtest chain (cheap to clone).
#[derive(Clone)]
pub struct Chain {
    state: Arc<Mutex<State>>,
    listeners: Arc<Mutex<Vec<Listener>>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("height", &self.height())
            .finish()
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new(101)
    }
}

/// lnd's fallback fee rate on regtest (25 sat/vB).
pub const DEFAULT_FEE_RATE: u64 = 25;

impl Chain {
    /// A chain at `height` (101 = coinbase of block 1 spendable, as after
    /// `generatetoaddress 101`).
    pub fn new(height: u32) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                height,
                tip: block_hash(height, &[]),
                fee_rate_sat_per_vb: DEFAULT_FEE_RATE,
                mempool_min_fee: 1,
                mempool: Vec::new(),
                confirmed: BTreeMap::new(),
                spent: HashSet::new(),
            })),
            listeners: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The best height.
    pub fn height(&self) -> u32 {
        self.lock().height
    }

    /// The best block hash.
    pub fn tip(&self) -> BlockHash {
        self.lock().tip
    }

    /// The mempool fee rate, sat/vB.
    pub fn fee_rate(&self) -> u64 {
        self.lock().fee_rate_sat_per_vb
    }

    /// Sets the mempool fee rate (at least 1 sat/vB).
    pub fn set_fee_rate(&self, sat_per_vb: u64) {
        self.lock().fee_rate_sat_per_vb = sat_per_vb.max(1);
    }

    /// The mempool's minimum fee rate, sat/vB (what [`Chain::submit`] enforces).
    pub fn mempool_min_fee(&self) -> u64 {
        self.lock().mempool_min_fee
    }

    /// Sets the mempool's minimum fee rate (at least 1 sat/vB): a fee spike the
    /// estimator has not caught up with yet.
    pub fn set_mempool_min_fee(&self, sat_per_vb: u64) {
        self.lock().mempool_min_fee = sat_per_vb.max(1);
    }

    /// Broadcasts a wallet transaction that pays `fee` (the wallet knows its
    /// inputs' values; the chain model does not): refused below the mempool's
    /// minimum fee rate, otherwise like [`Chain::broadcast`].
    pub fn submit(&self, tx: Transaction, fee: bitcoin::Amount) -> Result<Txid, ChainError> {
        let vsize = tx.vsize().max(1) as u64;
        let paid = fee.to_sat() / vsize;
        let min = self.mempool_min_fee();
        if paid < min {
            return Err(ChainError::FeeTooLow { paid, min });
        }
        self.broadcast(tx)
    }

    /// The transaction `txid` if it is in the mempool.
    pub fn mempool_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.lock()
            .mempool
            .iter()
            .find(|t| t.compute_txid() == *txid)
            .cloned()
    }

    /// Transactions waiting for a block.
    pub fn mempool(&self) -> Vec<Txid> {
        self.lock()
            .mempool
            .iter()
            .map(Transaction::compute_txid)
            .collect()
    }

    /// The height that confirmed `txid`, if any.
    pub fn confirmed_at(&self, txid: &Txid) -> Option<u32> {
        self.lock().confirmed.get(txid).copied()
    }

    /// Confirmations of `txid` (0 = unconfirmed or unknown).
    pub fn confirmations(&self, txid: &Txid) -> u32 {
        let s = self.lock();
        s.confirmed
            .get(txid)
            .map_or(0, |h| s.height.saturating_sub(*h).saturating_add(1))
    }

    /// Broadcasts a consensus-encoded transaction (hex), like bitcoind's
    /// `sendrawtransaction`.
    pub fn send_raw_transaction(&self, tx_hex: &str) -> Result<Txid, ChainError> {
        let bytes = hex::decode(tx_hex).map_err(|_| ChainError::Decode)?;
        let tx: Transaction = consensus::deserialize(&bytes).map_err(|_| ChainError::Decode)?;
        self.broadcast(tx)
    }

    /// Broadcasts a transaction.
    pub fn broadcast(&self, tx: Transaction) -> Result<Txid, ChainError> {
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(ChainError::Empty);
        }
        let txid = tx.compute_txid();
        let mut s = self.lock();
        if s.confirmed.contains_key(&txid) || s.mempool.iter().any(|t| t.compute_txid() == txid) {
            return Err(ChainError::AlreadyKnown);
        }
        if tx
            .input
            .iter()
            .any(|i| s.spent.contains(&i.previous_output))
        {
            return Err(ChainError::InputSpent);
        }
        for i in &tx.input {
            s.spent.insert(i.previous_output);
        }
        s.mempool.push(tx);
        Ok(txid)
    }

    /// Mines `count` blocks (the first confirms the whole mempool) and runs
    /// the block listeners once per block. Returns the new height.
    pub fn mine(&self, count: u32) -> u32 {
        let mut height = self.height();
        for _ in 0..count {
            {
                let mut s = self.lock();
                s.height = s.height.saturating_add(1);
                let txs = std::mem::take(&mut s.mempool);
                let txids: Vec<Txid> = txs.iter().map(Transaction::compute_txid).collect();
                let h = s.height;
                for t in &txids {
                    s.confirmed.insert(*t, h);
                }
                s.tip = block_hash(h, &txids);
                height = h;
            }
            let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            for l in listeners.iter() {
                l(height);
            }
        }
        height
    }

    /// Registers a function called with the new height after every block.
    pub fn on_block(&self, f: impl Fn(u32) + Send + Sync + 'static) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(f));
    }
}

fn block_hash(height: u32, txids: &[Txid]) -> BlockHash {
    let mut data = height.to_le_bytes().to_vec();
    for t in txids {
        data.extend_from_slice(t.as_byte_array());
    }
    BlockHash::from_raw_hash(sha256d::Hash::hash(&data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    fn tx(prev: u8) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([prev; 32]), 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    #[test]
    fn broadcast_confirms_on_the_next_block_and_listeners_see_it() {
        let chain = Chain::new(200);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        chain.on_block(move |h| s2.lock().unwrap_or_else(|e| e.into_inner()).push(h));
        let hex = consensus::encode::serialize_hex(&tx(1));
        let txid = chain.send_raw_transaction(&hex).expect("broadcast");
        assert_eq!(chain.mempool(), vec![txid]);
        assert_eq!(chain.confirmations(&txid), 0);
        assert_eq!(chain.mine(2), 202);
        assert_eq!(chain.confirmed_at(&txid), Some(201));
        assert_eq!(chain.confirmations(&txid), 2);
        assert!(chain.mempool().is_empty());
        assert_eq!(
            *seen.lock().unwrap_or_else(|e| e.into_inner()),
            vec![201, 202]
        );
    }

    #[test]
    fn broadcast_rejects_garbage_duplicates_and_double_spends() {
        let chain = Chain::default();
        assert_eq!(chain.send_raw_transaction("zz"), Err(ChainError::Decode));
        assert_eq!(chain.send_raw_transaction("00"), Err(ChainError::Decode));
        chain.broadcast(tx(1)).expect("first");
        assert_eq!(chain.broadcast(tx(1)), Err(ChainError::AlreadyKnown));
        let mut other = tx(1);
        other.output[0].value = Amount::from_sat(900);
        assert_eq!(chain.broadcast(other), Err(ChainError::InputSpent));
        let mut empty = tx(2);
        empty.output.clear();
        assert_eq!(chain.broadcast(empty), Err(ChainError::Empty));
    }

    #[test]
    fn submit_enforces_the_mempool_minimum_fee() {
        let chain = Chain::default();
        let t = tx(9);
        let vsize = t.vsize() as u64;
        chain.set_mempool_min_fee(10);
        assert_eq!(
            chain.submit(t.clone(), Amount::from_sat(9 * vsize)),
            Err(ChainError::FeeTooLow { paid: 9, min: 10 })
        );
        assert!(chain.mempool().is_empty(), "a refused tx spends nothing");
        let txid = chain.submit(t, Amount::from_sat(10 * vsize)).expect("paid");
        assert!(chain.mempool_tx(&txid).is_some());
        chain.mine(1);
        assert!(chain.mempool_tx(&txid).is_none());
        assert_eq!(chain.confirmations(&txid), 1);
    }

    #[test]
    fn fee_rate_is_settable_with_a_floor() {
        let chain = Chain::default();
        assert_eq!(chain.fee_rate(), DEFAULT_FEE_RATE);
        chain.set_fee_rate(7);
        assert_eq!(chain.fee_rate(), 7);
        chain.set_fee_rate(0);
        assert_eq!(chain.fee_rate(), 1);
    }
}
