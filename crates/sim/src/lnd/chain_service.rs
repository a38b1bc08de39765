//! The chain simulator's own gRPC service (`ChainSim`): mine, advance time, faucet, chain facts.

use super::*;

/// The chain model's sim-only gRPC service.
#[derive(Debug, Clone)]
pub struct ChainService(pub Chain);

impl ChainService {
    fn info(&self) -> simrpc::chain::ChainInfo {
        simrpc::chain::ChainInfo {
            height: self.0.height(),
            tip_hash: self.0.tip().to_string(),
            fee_rate_sat_per_vb: self.0.fee_rate(),
            mempool_size: u32::try_from(self.0.mempool().len()).unwrap_or(u32::MAX),
            time: self.0.now(),
        }
    }
}

#[tonic::async_trait]
impl ChainSim for ChainService {
    async fn get_chain_info(
        &self,
        _: Request<simrpc::chain::GetChainInfoRequest>,
    ) -> Result<Response<simrpc::chain::ChainInfo>, Status> {
        Ok(Response::new(self.info()))
    }

    async fn mine_blocks(
        &self,
        req: Request<simrpc::chain::MineBlocksRequest>,
    ) -> Result<Response<simrpc::chain::ChainInfo>, Status> {
        let n = req.into_inner().count;
        if n == 0 || n > 1000 {
            return Err(Status::invalid_argument("count must be 1..=1000"));
        }
        self.0.mine(n);
        Ok(Response::new(self.info()))
    }

    async fn set_fee_rate(
        &self,
        req: Request<simrpc::chain::SetFeeRateRequest>,
    ) -> Result<Response<simrpc::chain::ChainInfo>, Status> {
        self.0.set_fee_rate(req.into_inner().sat_per_vb);
        Ok(Response::new(self.info()))
    }

    async fn send_raw_transaction(
        &self,
        req: Request<simrpc::chain::SendRawTransactionRequest>,
    ) -> Result<Response<simrpc::chain::SendRawTransactionResponse>, Status> {
        let txid = self
            .0
            .send_raw_transaction(&req.into_inner().tx_hex)
            .map_err(|e| match e {
                crate::chain::ChainError::AlreadyKnown => Status::already_exists(e.to_string()),
                _ => Status::invalid_argument(e.to_string()),
            })?;
        Ok(Response::new(simrpc::chain::SendRawTransactionResponse {
            txid: txid.to_string(),
        }))
    }

    async fn advance_time(
        &self,
        req: Request<simrpc::chain::AdvanceTimeRequest>,
    ) -> Result<Response<simrpc::chain::ChainInfo>, Status> {
        let secs = req.into_inner().seconds;
        if secs <= 0 {
            return Err(Status::invalid_argument("seconds must be positive"));
        }
        self.0.advance_time(secs);
        Ok(Response::new(self.info()))
    }

    async fn faucet(
        &self,
        req: Request<simrpc::chain::FaucetRequest>,
    ) -> Result<Response<simrpc::chain::FaucetResponse>, Status> {
        let req = req.into_inner();
        let address = req
            .address
            .parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>()
            .ok()
            .and_then(|a| a.require_network(bitcoin::Network::Regtest).ok())
            .ok_or_else(|| Status::invalid_argument("address must be a regtest address"))?;
        if req.amount_sat == 0 {
            return Err(Status::invalid_argument("amount_sat must be positive"));
        }
        let outpoint = self.0.faucet(
            address.script_pubkey(),
            bitcoin::Amount::from_sat(req.amount_sat),
        );
        Ok(Response::new(simrpc::chain::FaucetResponse {
            txid: outpoint.txid.to_string(),
            vout: outpoint.vout,
        }))
    }
}
