//! lnd's `walletrpc.WalletKit` service over the simulator's on-chain wallet
//! (what the relay's L1 settlement and inventory use).

use super::*;

impl LndSim {
    pub(super) fn wallet(&self) -> MutexGuard<'_, wallet::SimWallet> {
        self.wallet.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[tonic::async_trait]
impl WalletKit for LndSim {
    async fn send_outputs(
        &self,
        req: Request<walletrpc::SendOutputsRequest>,
    ) -> Result<Response<walletrpc::SendOutputsResponse>, Status> {
        let r = req.into_inner();
        let min_confs = if r.spend_unconfirmed {
            if r.min_confs != 0 {
                return Err(Status::invalid_argument(
                    "min_confs must be 0 when spend_unconfirmed is set",
                ));
            }
            0
        } else {
            u32::try_from(r.min_confs.max(1)).unwrap_or(1)
        };
        let mut outputs = Vec::with_capacity(r.outputs.len());
        for o in r.outputs {
            let value = u64::try_from(o.value)
                .map_err(|_| Status::invalid_argument("negative output value"))?;
            outputs.push(bitcoin::TxOut {
                value: bitcoin::Amount::from_sat(value),
                script_pubkey: bitcoin::ScriptBuf::from_bytes(o.pk_script),
            });
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let tx = self.wallet().send_outputs(
            &self.chain,
            r.sat_per_kw,
            outputs,
            &r.label,
            min_confs,
            now,
        )?;
        Ok(Response::new(walletrpc::SendOutputsResponse {
            raw_tx: bitcoin::consensus::serialize(&tx),
        }))
    }

    async fn get_transaction(
        &self,
        req: Request<walletrpc::GetTransactionRequest>,
    ) -> Result<Response<lnrpc::Transaction>, Status> {
        let txid: bitcoin::Txid = req
            .into_inner()
            .txid
            .parse()
            .map_err(|_| Status::invalid_argument("txid must be 64 hex digits"))?;
        self.wallet()
            .get(&self.chain, &txid)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("transaction {txid} not found")))
    }

    async fn estimate_fee(
        &self,
        req: Request<walletrpc::EstimateFeeRequest>,
    ) -> Result<Response<walletrpc::EstimateFeeResponse>, Status> {
        if req.into_inner().conf_target < 1 {
            return Err(Status::invalid_argument("conf_target must be at least 1"));
        }
        Ok(Response::new(walletrpc::EstimateFeeResponse {
            sat_per_kw: i64c(self.chain.fee_rate().saturating_mul(250)),
            min_relay_fee_sat_per_kw: 253,
        }))
    }
}
