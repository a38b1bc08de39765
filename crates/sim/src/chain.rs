//! The regtest chain model shared by the simulators: blocks, height, a mempool
//! with a fee rate tests set, a `sendrawtransaction`-like broadcast, an index
//! of every output it has seen (what an esplora would answer: outputs of an
//! address, tx lookup, confirmation and spend status), a faucet that pays any
//! script from nowhere (regtest coinbase), and a clock tests can advance.
//!
//! It does not validate scripts or witnesses, nor that an input's prevout
//! exists: the simulators that broadcast check their own transactions.
//!
//! Deterministic: blocks are mined only when a test (or the sim admin RPC)
//! asks. Listeners registered with [`Chain::on_block`] run synchronously inside
//! [`Chain::mine`], so a test that mines a block observes every consequence
//! (hold-invoice auto-cancel, mint confirmation) when `mine` returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{consensus, Amount, BlockHash, OutPoint, ScriptBuf, Transaction, TxOut, Txid};

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
    /// Every transaction broadcast or mined (mempool and confirmed).
    txs: HashMap<Txid, Transaction>,
    /// Which transaction spends an outpoint.
    spenders: HashMap<OutPoint, Txid>,
    /// Block timestamps (unix seconds), by height.
    block_times: BTreeMap<u32, i64>,
    /// Seconds added to the host clock ([`Chain::advance_time`]).
    time_offset: i64,
    /// Faucet payments made so far (makes each faucet tx unique).
    faucet_count: u64,
}

/// One output of the chain, as an explorer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainUtxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Value and script.
    pub txout: TxOut,
    /// Height of the block that confirmed it.
    pub confirmed_height: Option<u32>,
    /// Timestamp of that block.
    pub confirmed_time: Option<i64>,
    /// The transaction spending it (mempool or confirmed).
    pub spent_by: Option<Txid>,
}

fn wall_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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
                txs: HashMap::new(),
                spenders: HashMap::new(),
                block_times: BTreeMap::new(),
                time_offset: 0,
                faucet_count: 0,
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
            s.spenders.insert(i.previous_output, txid);
        }
        s.txs.insert(txid, tx.clone());
        s.mempool.push(tx);
        Ok(txid)
    }

    /// The chain's clock, unix seconds: the host clock plus every
    /// [`Chain::advance_time`]. New blocks are stamped with it.
    pub fn now(&self) -> i64 {
        wall_clock().saturating_add(self.lock().time_offset)
    }

    /// Moves the chain's clock forward by `secs` (the next mined block carries
    /// the new time): how tests reach a batch's expiry without waiting.
    pub fn advance_time(&self, secs: i64) {
        let mut s = self.lock();
        s.time_offset = s.time_offset.saturating_add(secs.max(0));
    }

    /// The timestamp of the block at `height`, if it was mined by this model.
    pub fn block_time(&self, height: u32) -> Option<i64> {
        self.lock().block_times.get(&height).copied()
    }

    /// The timestamp of the best block (the chain's clock if none was mined).
    pub fn tip_time(&self) -> i64 {
        let s = self.lock();
        let h = s.height;
        let offset = s.time_offset;
        s.block_times
            .get(&h)
            .copied()
            .unwrap_or_else(|| wall_clock().saturating_add(offset))
    }

    /// Pays `amount` to `script` from nowhere (a regtest coinbase-like tx with
    /// a null prevout), into the mempool: mine a block to confirm it.
    pub fn faucet(&self, script: ScriptBuf, amount: Amount) -> OutPoint {
        let mut s = self.lock();
        s.faucet_count += 1;
        let mut tag = b"ark-relay-sim faucet".to_vec();
        tag.extend_from_slice(&s.faucet_count.to_be_bytes());
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(tag),
                sequence: bitcoin::Sequence::MAX,
                witness: bitcoin::Witness::new(),
            }],
            output: vec![TxOut {
                value: amount,
                script_pubkey: script,
            }],
        };
        let txid = tx.compute_txid();
        s.txs.insert(txid, tx.clone());
        s.mempool.push(tx);
        OutPoint { txid, vout: 0 }
    }

    /// A transaction the chain has seen (mempool or confirmed).
    pub fn tx(&self, txid: &Txid) -> Option<Transaction> {
        self.lock().txs.get(txid).cloned()
    }

    /// An output the chain has seen.
    pub fn output(&self, outpoint: &OutPoint) -> Option<ChainUtxo> {
        let s = self.lock();
        let tx = s.txs.get(&outpoint.txid)?;
        let txout = tx.output.get(usize::try_from(outpoint.vout).ok()?)?.clone();
        Some(utxo(&s, *outpoint, txout))
    }

    /// Every output paying `script` (spent or not), like an explorer's
    /// address query.
    pub fn outputs_of(&self, script: &ScriptBuf) -> Vec<ChainUtxo> {
        let s = self.lock();
        let mut found = Vec::new();
        for (txid, tx) in &s.txs {
            for (vout, out) in tx.output.iter().enumerate() {
                if out.script_pubkey != *script {
                    continue;
                }
                let Ok(vout) = u32::try_from(vout) else {
                    continue;
                };
                found.push(utxo(&s, OutPoint { txid: *txid, vout }, out.clone()));
            }
        }
        found.sort_by_key(|u| u.outpoint);
        found
    }

    /// The transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.lock().spenders.get(outpoint).copied()
    }

    /// Mines `count` blocks (the first confirms the whole mempool) and runs
    /// the block listeners once per block. Returns the new height.
    pub fn mine(&self, count: u32) -> u32 {
        let mut height = self.height();
        for _ in 0..count {
            {
                let mut s = self.lock();
                s.height = s.height.saturating_add(1);
                let time = wall_clock().saturating_add(s.time_offset);
                let time = s
                    .block_times
                    .values()
                    .next_back()
                    .map_or(time, |last| time.max(*last));
                let new_height = s.height;
                s.block_times.insert(new_height, time);
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

fn utxo(s: &State, outpoint: OutPoint, txout: TxOut) -> ChainUtxo {
    let confirmed_height = s.confirmed.get(&outpoint.txid).copied();
    ChainUtxo {
        outpoint,
        txout,
        confirmed_height,
        confirmed_time: confirmed_height.and_then(|h| s.block_times.get(&h).copied()),
        spent_by: s.spenders.get(&outpoint).copied(),
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

    #[test]
    fn faucet_outputs_are_indexed_with_confirmation_time_and_spender() {
        let chain = Chain::default();
        let script = ScriptBuf::new_op_return([1u8]);
        let paid = chain.faucet(script.clone(), Amount::from_sat(5_000));
        let seen = chain.outputs_of(&script);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].outpoint, paid);
        assert_eq!(seen[0].confirmed_height, None, "in the mempool");
        chain.advance_time(3_600);
        let before = chain.now();
        let h = chain.mine(1);
        let out = chain.output(&paid).expect("indexed");
        assert_eq!(out.confirmed_height, Some(h));
        assert!(out.confirmed_time.expect("block time") >= before);
        assert_eq!(chain.tip_time(), out.confirmed_time.expect("block time"));
        let mut spend = tx(0);
        spend.input[0].previous_output = paid;
        let spender = chain.broadcast(spend).expect("spend");
        assert_eq!(chain.spender(&paid), Some(spender));
        assert_eq!(
            chain.output(&paid).expect("indexed").spent_by,
            Some(spender)
        );
        assert!(chain.tx(&spender).is_some());
    }
}
