//! [`L1Chain`] for [`LndClient`]: settlement commitments through lnd's wallet.
//!
//! - `broadcast_commitment` = `WalletKit.SendOutputs` with one
//!   `OP_RETURN <root>` output of value 0 at `sat_per_kw = sat/vB × 250`,
//!   `spend_unconfirmed` (so the commitments of catch-up hours can chain on
//!   each other's change); called **once** (never retried by the resilience
//!   layer: a retry after a lost answer would pay for a second commitment).
//! - `estimate_fee_rate` = `WalletKit.EstimateFee`.
//! - `tip_height` = `Lightning.GetInfo`.
//! - `tx_status` = `WalletKit.GetTransaction` (lnd ≥ 0.18); NotFound = unknown.
//! - `send_to` = `WalletKit.SendOutputs` with one output to the address
//!   (the relay's boarding address), confirmed coins only, called once.
//! - `find_commitment` = `Lightning.GetTransactions`, scanning the raw
//!   transactions for the `OP_RETURN <root>` output.

use ark_relay_core::backends::chain::{
    commits_to, op_return_script, ChainError, Commitment, L1Chain, TxStatus,
};
use ark_relay_core::backends::lightning::{BackendErrorKind, Lightning, LightningError};
use ark_relay_core::Sats;
use ark_relay_proto::{lnrpc, walletrpc};
use async_trait::async_trait;
use bitcoin::{consensus, Transaction, Txid};

use super::{err, LndClient};
use crate::resilience::RetryPolicy;

fn chain_err(e: LightningError) -> ChainError {
    ChainError::new(e.kind, e.message)
}

fn bad(what: &str) -> ChainError {
    ChainError::new(
        BackendErrorKind::Internal,
        format!("lnd returned an invalid {what}"),
    )
}

#[async_trait]
impl L1Chain for LndClient {
    async fn estimate_fee_rate(&self, conf_target: u32) -> Result<u64, ChainError> {
        Lightning::estimate_fee_rate(self, conf_target)
            .await
            .map(|r| r.max(1))
            .map_err(chain_err)
    }

    async fn tip_height(&self) -> Result<u32, ChainError> {
        Lightning::get_info(self)
            .await
            .map(|i| i.block_height)
            .map_err(chain_err)
    }

    async fn broadcast_commitment(
        &self,
        payload: [u8; 32],
        fee_rate_sat_vb: u64,
        label: &str,
    ) -> Result<Commitment, ChainError> {
        let sat_per_kw = i64::try_from(fee_rate_sat_vb.saturating_mul(250))
            .map_err(|_| ChainError::new(BackendErrorKind::InvalidArgument, "fee rate too high"))?;
        let msg = walletrpc::SendOutputsRequest {
            sat_per_kw,
            outputs: vec![walletrpc::TxOut {
                value: 0,
                pk_script: op_return_script(&payload).into_bytes(),
            }],
            label: label.to_owned(),
            min_confs: 0,
            spend_unconfirmed: true,
        };
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.wallet.clone();
                let msg = msg.clone();
                async move { c.send_outputs(msg).await.map_err(err) }
            })
            .await
            .map_err(chain_err)?
            .into_inner();
        let tx: Transaction =
            consensus::deserialize(&r.raw_tx).map_err(|_| bad("raw transaction"))?;
        if !commits_to(&tx, &payload) {
            return Err(bad("commitment transaction (no OP_RETURN root)"));
        }
        let txid = tx.compute_txid();
        // SendOutputs does not report the fee; the wallet's record does.
        let fee = match self.wallet_tx(&txid).await {
            Ok(Some(t)) => Sats::new(u64::try_from(t.total_fees).unwrap_or(0)),
            _ => Sats::ZERO,
        };
        Ok(Commitment {
            txid,
            fee,
            fee_rate_sat_vb,
        })
    }

    async fn find_commitment(&self, payload: [u8; 32]) -> Result<Option<Txid>, ChainError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                let msg = lnrpc::GetTransactionsRequest {
                    start_height: 0,
                    end_height: -1,
                    account: String::new(),
                };
                async move { c.get_transactions(msg).await.map_err(err) }
            })
            .await
            .map_err(chain_err)?
            .into_inner();
        for t in r.transactions {
            let Ok(bytes) = hex::decode(&t.raw_tx_hex) else {
                continue;
            };
            let Ok(tx) = consensus::deserialize::<Transaction>(&bytes) else {
                continue;
            };
            if commits_to(&tx, &payload) {
                return Ok(Some(tx.compute_txid()));
            }
        }
        Ok(None)
    }

    async fn send_to(
        &self,
        script: &bitcoin::ScriptBuf,
        sats: Sats,
        fee_rate_sat_vb: u64,
        label: &str,
    ) -> Result<Transaction, ChainError> {
        let sat_per_kw = i64::try_from(fee_rate_sat_vb.saturating_mul(250))
            .map_err(|_| ChainError::new(BackendErrorKind::InvalidArgument, "fee rate too high"))?;
        let value = i64::try_from(sats.get())
            .map_err(|_| ChainError::new(BackendErrorKind::InvalidArgument, "amount too large"))?;
        let msg = walletrpc::SendOutputsRequest {
            sat_per_kw,
            outputs: vec![walletrpc::TxOut {
                value,
                pk_script: script.to_bytes(),
            }],
            label: label.to_owned(),
            min_confs: 1,
            spend_unconfirmed: false,
        };
        // Called once: a retry after a lost answer would pay twice.
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.wallet.clone();
                let msg = msg.clone();
                async move { c.send_outputs(msg).await.map_err(err) }
            })
            .await
            .map_err(chain_err)?
            .into_inner();
        let tx: Transaction =
            consensus::deserialize(&r.raw_tx).map_err(|_| bad("raw transaction"))?;
        if !tx
            .output
            .iter()
            .any(|o| o.script_pubkey == *script && o.value.to_sat() == sats.get())
        {
            return Err(bad("payment (no output to the address)"));
        }
        Ok(tx)
    }

    async fn tx_status(&self, txid: &Txid) -> Result<Option<TxStatus>, ChainError> {
        Ok(self.wallet_tx(txid).await?.map(|t| {
            let confirmations = u32::try_from(t.num_confirmations).unwrap_or(0);
            TxStatus {
                confirmations,
                block_height: (confirmations > 0)
                    .then(|| u32::try_from(t.block_height).ok())
                    .flatten(),
            }
        }))
    }
}

impl LndClient {
    async fn wallet_tx(&self, txid: &Txid) -> Result<Option<lnrpc::Transaction>, ChainError> {
        let res = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.wallet.clone();
                let msg = walletrpc::GetTransactionRequest {
                    txid: txid.to_string(),
                };
                async move { c.get_transaction(msg).await.map_err(err) }
            })
            .await;
        match res {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(e) if e.kind == BackendErrorKind::NotFound => Ok(None),
            Err(e) => Err(chain_err(e)),
        }
    }
}
