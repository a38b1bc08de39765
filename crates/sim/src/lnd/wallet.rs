//! The lnd simulator's on-chain wallet, as far as `WalletKit.SendOutputs`,
//! `WalletKit.GetTransaction` and `Lightning.GetTransactions` need it: a UTXO
//! set, coin selection, a real transaction (one key-path input, the requested
//! outputs, change) paying `sat_per_kw × weight / 1000`, broadcast through the
//! shared [`Chain`] (which enforces its mempool minimum fee and mines it), and
//! the wallet's transaction list with labels.

use std::collections::BTreeMap;

use ark_relay_proto::lnrpc;
use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::transaction::Version;
use bitcoin::{consensus, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid};
use bitcoin::{Witness, WitnessProgram, WitnessVersion};
use tonic::Status;

use crate::chain::{Chain, ChainError};

/// lnd's floor: 253 sat/kw (≈ 1.012 sat/vB).
pub const MIN_RELAY_SAT_PER_KW: i64 = 253;

/// The simulated wallet's opening balance (one confirmed UTXO).
pub const FUNDING_SAT: u64 = 10 * 100_000_000;

#[derive(Debug, Clone)]
struct Utxo {
    value: u64,
    /// The wallet tx that created it (`None` = the pre-funded coin, confirmed).
    created_by: Option<Txid>,
}

#[derive(Debug, Clone)]
struct WalletTx {
    tx: Transaction,
    fee: u64,
    label: String,
    time: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct SimWallet {
    utxos: BTreeMap<OutPoint, Utxo>,
    txs: BTreeMap<Txid, WalletTx>,
    order: Vec<Txid>,
    change_script: ScriptBuf,
}

impl Default for SimWallet {
    fn default() -> Self {
        Self::new()
    }
}

impl SimWallet {
    /// A wallet holding one confirmed coin of [`FUNDING_SAT`].
    pub fn new() -> Self {
        let funding = Txid::from_raw_hash(sha256d::Hash::hash(b"ark-relay-sim lnd wallet funding"));
        let mut utxos = BTreeMap::new();
        utxos.insert(
            OutPoint::new(funding, 0),
            Utxo {
                value: FUNDING_SAT,
                created_by: None,
            },
        );
        let key = sha256d::Hash::hash(b"ark-relay-sim lnd wallet change key").to_byte_array();
        let change_script = WitnessProgram::new(WitnessVersion::V1, &key)
            .map(|p| ScriptBuf::new_witness_program(&p))
            .unwrap_or_default();
        Self {
            utxos,
            txs: BTreeMap::new(),
            order: Vec::new(),
            change_script,
        }
    }

    /// Coins spent by a mempool tx are already out of the set; this checks depth.
    fn spendable(chain: &Chain, u: &Utxo, min_confs: u32) -> bool {
        let confs = match u.created_by {
            None => u32::MAX,
            Some(t) => chain.confirmations(&t),
        };
        confs >= min_confs
    }

    /// Builds, signs (a dummy 64-byte key-path signature: the chain model does
    /// not check scripts) and broadcasts a transaction paying `outputs` at
    /// `sat_per_kw`, like lnd's `SendOutputs`. Returns the transaction.
    pub fn send_outputs(
        &mut self,
        chain: &Chain,
        sat_per_kw: i64,
        outputs: Vec<TxOut>,
        label: &str,
        min_confs: u32,
        now: i64,
    ) -> Result<Transaction, Status> {
        if outputs.is_empty() {
            return Err(Status::invalid_argument(
                "must specify at least one output to create",
            ));
        }
        if sat_per_kw < MIN_RELAY_SAT_PER_KW {
            return Err(Status::invalid_argument(format!(
                "fee rate {sat_per_kw} sat/kw is below the relay floor of \
                 {MIN_RELAY_SAT_PER_KW} sat/kw"
            )));
        }
        let rate = u64::try_from(sat_per_kw).unwrap_or(0);
        let want: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        let (op, coin) = self
            .utxos
            .iter()
            .filter(|(_, u)| Self::spendable(chain, u, min_confs))
            .max_by_key(|(_, u)| u.value)
            .map(|(op, u)| (*op, u.clone()))
            .ok_or_else(|| {
                Status::unknown("insufficient funds available to construct transaction")
            })?;
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::from_height(chain.height()).unwrap_or(LockTime::ZERO),
            input: vec![TxIn {
                previous_output: op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::from_slice(&[[0x5au8; 64]]),
            }],
            output: outputs,
        };
        tx.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: self.change_script.clone(),
        });
        let weight = tx.weight().to_wu();
        let fee = rate.saturating_mul(weight).div_ceil(1000);
        let change = coin
            .value
            .checked_sub(want.saturating_add(fee))
            .ok_or_else(|| {
                Status::unknown("insufficient funds available to construct transaction")
            })?;
        let change_index = tx.output.len().saturating_sub(1);
        let kept = if change < 330 {
            tx.output.pop();
            0
        } else {
            if let Some(o) = tx.output.last_mut() {
                o.value = Amount::from_sat(change);
            }
            change
        };
        let paid = coin.value.saturating_sub(want).saturating_sub(kept);
        let txid = chain
            .submit(tx.clone(), Amount::from_sat(paid))
            // lnd returns the backend's refusal as a plain error (code Unknown).
            .map_err(|e: ChainError| Status::unknown(format!("unable to broadcast: {e}")))?;
        self.utxos.remove(&op);
        if kept > 0 {
            self.utxos.insert(
                OutPoint::new(txid, u32::try_from(change_index).unwrap_or(0)),
                Utxo {
                    value: kept,
                    created_by: Some(txid),
                },
            );
        }
        self.txs.insert(
            txid,
            WalletTx {
                tx: tx.clone(),
                fee: paid,
                label: label.to_owned(),
                time: now,
            },
        );
        self.order.push(txid);
        Ok(tx)
    }

    fn to_rpc(chain: &Chain, txid: &Txid, w: &WalletTx) -> lnrpc::Transaction {
        let height = chain.confirmed_at(txid);
        lnrpc::Transaction {
            tx_hash: txid.to_string(),
            amount: -i64::try_from(w.fee).unwrap_or(i64::MAX),
            num_confirmations: i32::try_from(chain.confirmations(txid)).unwrap_or(i32::MAX),
            block_hash: String::new(),
            block_height: height.map_or(0, |h| i32::try_from(h).unwrap_or(i32::MAX)),
            time_stamp: w.time,
            total_fees: i64::try_from(w.fee).unwrap_or(i64::MAX),
            raw_tx_hex: consensus::encode::serialize_hex(&w.tx),
            label: w.label.clone(),
        }
    }

    /// `WalletKit.GetTransaction`.
    pub fn get(&self, chain: &Chain, txid: &Txid) -> Option<lnrpc::Transaction> {
        self.txs.get(txid).map(|w| Self::to_rpc(chain, txid, w))
    }

    /// `Lightning.GetTransactions`, oldest first.
    pub fn list(&self, chain: &Chain) -> Vec<lnrpc::Transaction> {
        self.order
            .iter()
            .filter_map(|t| self.txs.get(t).map(|w| Self::to_rpc(chain, t, w)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_return() -> TxOut {
        let mut script = vec![0x6a, 32];
        script.extend_from_slice(&[7u8; 32]);
        TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(script),
        }
    }

    #[test]
    fn send_outputs_pays_the_asked_rate_and_tracks_change() {
        let chain = Chain::default();
        let mut w = SimWallet::new();
        let tx = w
            .send_outputs(&chain, 2_500, vec![op_return()], "t", 1, 1)
            .expect("sent");
        let txid = tx.compute_txid();
        assert_eq!(chain.mempool(), vec![txid]);
        let rpc = w.get(&chain, &txid).expect("known");
        let weight = tx.weight().to_wu();
        assert_eq!(rpc.total_fees as u64, (2_500 * weight).div_ceil(1000));
        assert_eq!(rpc.num_confirmations, 0);
        assert_eq!(rpc.label, "t");
        // The change is unconfirmed: a second send needs min_confs 0.
        assert!(w
            .send_outputs(&chain, 2_500, vec![op_return()], "t2", 1, 2)
            .is_err());
        let second = w
            .send_outputs(&chain, 2_500, vec![op_return()], "t2", 0, 2)
            .expect("chained");
        assert_eq!(second.input[0].previous_output.txid, txid);
        chain.mine(1);
        assert_eq!(w.get(&chain, &txid).map(|t| t.block_height), Some(102));
        assert_eq!(w.list(&chain).len(), 2);
    }

    #[test]
    fn refusals_spend_nothing() {
        let chain = Chain::default();
        let mut w = SimWallet::new();
        assert!(w
            .send_outputs(&chain, 100, vec![op_return()], "", 1, 0)
            .is_err());
        chain.set_mempool_min_fee(50);
        let e = w
            .send_outputs(&chain, 2_500, vec![op_return()], "", 1, 0)
            .expect_err("below the mempool minimum");
        assert_eq!(e.code(), tonic::Code::Unknown);
        assert!(w.list(&chain).is_empty());
        w.send_outputs(&chain, 12_500, vec![op_return()], "", 1, 0)
            .expect("50 sat/vB is enough");
    }
}
