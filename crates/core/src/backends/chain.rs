//! The `chain` back-end port: what hourly settlement needs from an L1 wallet —
//! broadcast a commitment transaction carrying `OP_RETURN <32-byte root>` at a
//! fee rate, estimate fees, the tip height, and where a transaction confirmed.
//!
//! Implemented by `ark-relay-grpc`'s lnd client over `walletrpc.WalletKit`
//! (`SendOutputs`, `EstimateFee`, `GetTransaction`) and `lnrpc.Lightning`
//! (`GetInfo`, `GetTransactions`), and served by the lnd simulator, which
//! builds the transaction and puts it on the simulated chain.
//!
//! Notes for implementors:
//! - `broadcast_commitment` is **not** idempotent: a second call makes a second
//!   transaction. Callers persist the attempt first and, after a crash, call
//!   [`L1Chain::find_commitment`] before broadcasting again.
//! - Errors are classified by the daemon's status code, never message text.

use async_trait::async_trait;
use bitcoin::blockdata::opcodes::all::OP_RETURN;
use bitcoin::blockdata::script::{Builder, Instruction};
use bitcoin::{ScriptBuf, Transaction, Txid};

use super::lightning::BackendErrorKind;
use crate::Sats;

/// An error from the chain back end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {kind:?}: {message}")]
pub struct ChainError {
    /// The classification, from the gRPC status code.
    pub kind: BackendErrorKind,
    /// The daemon's message, for logs only.
    pub message: String,
}

impl ChainError {
    /// An error of `kind`.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// True when retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

/// A broadcast commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// Its txid.
    pub txid: Txid,
    /// The fee it pays.
    pub fee: Sats,
    /// The fee rate asked for, sat/vB.
    pub fee_rate_sat_vb: u64,
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxStatus {
    /// Confirmations (0 = in the mempool).
    pub confirmations: u32,
    /// The block that confirmed it.
    pub block_height: Option<u32>,
}

/// The L1 wallet settlement commits through.
#[async_trait]
pub trait L1Chain: Send + Sync {
    /// The fee rate for confirmation within `conf_target` blocks, sat/vB (≥ 1).
    async fn estimate_fee_rate(&self, conf_target: u32) -> Result<u64, ChainError>;

    /// The best block height.
    async fn tip_height(&self) -> Result<u32, ChainError>;

    /// Funds, signs and broadcasts a transaction with one `OP_RETURN <payload>`
    /// output (value 0) plus change, at `fee_rate_sat_vb`; `label` names it in
    /// the wallet.
    async fn broadcast_commitment(
        &self,
        payload: [u8; 32],
        fee_rate_sat_vb: u64,
        label: &str,
    ) -> Result<Commitment, ChainError>;

    /// A wallet transaction carrying `OP_RETURN <payload>`, if one was made
    /// (the recovery check after a crash between broadcast and bookkeeping).
    async fn find_commitment(&self, payload: [u8; 32]) -> Result<Option<Txid>, ChainError>;

    /// Where `txid` is; `None` when the wallet does not know it (dropped).
    async fn tx_status(&self, txid: &Txid) -> Result<Option<TxStatus>, ChainError>;

    /// Pays `sats` to `script` from the wallet (one output plus change, from
    /// confirmed coins) and returns the broadcast transaction. Not
    /// idempotent: callers record the payment's purpose first. Used to fund
    /// the relay's boarding address (inventory by boarding).
    async fn send_to(
        &self,
        script: &ScriptBuf,
        sats: Sats,
        fee_rate_sat_vb: u64,
        label: &str,
    ) -> Result<Transaction, ChainError> {
        let _ = (script, sats, fee_rate_sat_vb, label);
        Err(ChainError::new(
            BackendErrorKind::FailedPrecondition,
            "this wallet cannot pay to an address",
        ))
    }
}

/// `OP_RETURN <payload>` (a 34-byte script).
pub fn op_return_script(payload: &[u8; 32]) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_RETURN)
        .push_slice(payload)
        .into_script()
}

/// The 32-byte payload of `script` if it is exactly `OP_RETURN <32 bytes>`.
pub fn op_return_payload(script: &bitcoin::Script) -> Option<[u8; 32]> {
    let mut ins = script.instructions();
    match ins.next()? {
        Ok(Instruction::Op(op)) if op == OP_RETURN => {}
        _ => return None,
    }
    let payload = match ins.next()? {
        Ok(Instruction::PushBytes(b)) => <[u8; 32]>::try_from(b.as_bytes()).ok()?,
        _ => return None,
    };
    ins.next().is_none().then_some(payload)
}

/// True when `tx` has an output `OP_RETURN <payload>`.
pub fn commits_to(tx: &Transaction, payload: &[u8; 32]) -> bool {
    tx.output
        .iter()
        .any(|o| op_return_payload(&o.script_pubkey).as_ref() == Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_return_round_trips() {
        let p = [7u8; 32];
        let s = op_return_script(&p);
        assert_eq!(s.len(), 34);
        assert_eq!(s.as_bytes()[0], 0x6a);
        assert_eq!(s.as_bytes()[1], 32);
        assert_eq!(op_return_payload(&s), Some(p));
        assert_eq!(op_return_payload(&ScriptBuf::new()), None);
        let short = Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice([1u8; 20])
            .into_script();
        assert_eq!(op_return_payload(&short), None);
    }
}
