//! Clients the VTXO inventory monitor uses besides the daemons' own ports:
//!
//! - [`ChainSimFees`]: a [`FeeEstimator`] over the chain simulator's
//!   `simrpc.chain.ChainSim/GetChainInfo` (served on the lnd simulator's port,
//!   TLS-pinned and macaroon-authenticated like lnd). In production the same
//!   slot is filled by lnd's `EstimateFee` and the settlement wallet's
//!   estimate (see `ark_relay_core::backends::fees`).
//! - [`ArkdSimProvisioner`]: a [`VtxoProvisioner`] over the arkd simulator's
//!   admin RPC `simrpc.arkd.ArkdSimAdmin/FundVtxo`. Real arkd has no such
//!   call: there new VTXOs come from a batch (round) registration funded by
//!   the relay's boarding outputs — see docs/backends.md.

use ark_relay_core::backends::fees::{FeeError, FeeEstimator};
use ark_relay_core::inventory::{ProvisionError, ProvisionedVtxo, VtxoProvisioner};
use ark_relay_core::{PubKey, Sats, Tapscripts, VtxoId};
use ark_relay_proto::simrpc::arkd::arkd_sim_admin_client::ArkdSimAdminClient;
use ark_relay_proto::simrpc::arkd::FundVtxoRequest;
use ark_relay_proto::simrpc::chain::chain_sim_client::ChainSimClient;
use ark_relay_proto::simrpc::chain::GetChainInfoRequest;
use async_trait::async_trait;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::daemon::{connect, ConnectError, DaemonConfig};
use crate::macaroon::MacaroonInterceptor;

/// Fee rates from the chain simulator.
#[derive(Debug, Clone)]
pub struct ChainSimFees {
    client: ChainSimClient<InterceptedService<Channel, MacaroonInterceptor>>,
}

impl ChainSimFees {
    /// A client for the chain service at `cfg` (the lnd simulator's endpoint).
    pub fn new(cfg: &DaemonConfig) -> Result<Self, ConnectError> {
        let channel = connect(cfg)?;
        let mac = MacaroonInterceptor::new(cfg.macaroon.as_deref());
        Ok(Self {
            client: ChainSimClient::new(InterceptedService::new(channel, mac)),
        })
    }
}

#[async_trait]
impl FeeEstimator for ChainSimFees {
    fn name(&self) -> &str {
        "chain_sim"
    }

    async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError> {
        let mut c = self.client.clone();
        let info = c
            .get_chain_info(GetChainInfoRequest {})
            .await
            .map_err(|s| FeeError::new("chain_sim", s.message()))?
            .into_inner();
        Ok(info.fee_rate_sat_per_vb.max(1))
    }
}

/// Creates relay VTXOs through the arkd simulator's admin service.
#[derive(Debug, Clone)]
pub struct ArkdSimProvisioner {
    client: ArkdSimAdminClient<Channel>,
}

impl ArkdSimProvisioner {
    /// A client for the arkd simulator at `url` (`http://…`).
    pub fn new(url: &str) -> Result<Self, ConnectError> {
        let channel = connect(&DaemonConfig::new(url.to_owned(), None, None))?;
        Ok(Self {
            client: ArkdSimAdminClient::new(channel),
        })
    }
}

#[async_trait]
impl VtxoProvisioner for ArkdSimProvisioner {
    async fn provision(
        &self,
        owner: &PubKey,
        count: u64,
        sats: Sats,
    ) -> Result<Vec<ProvisionedVtxo>, ProvisionError> {
        let mut out = Vec::new();
        for _ in 0..count {
            let mut c = self.client.clone();
            let r = c
                .fund_vtxo(FundVtxoRequest {
                    owner: owner.to_string(),
                    amount: sats.get(),
                })
                .await
                .map_err(|s| match s.code() {
                    tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
                        ProvisionError::Refused(s.message().to_owned())
                    }
                    _ => ProvisionError::Transient(s.message().to_owned()),
                })?
                .into_inner();
            let id: VtxoId = format!("{}:{}", r.txid, r.vout)
                .parse()
                .map_err(|e| ProvisionError::Refused(format!("bad outpoint from arkd: {e}")))?;
            let leaves = r
                .tapscripts
                .iter()
                .map(hex::decode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProvisionError::Refused(format!("bad tapscript from arkd: {e}")))?;
            out.push(ProvisionedVtxo {
                id,
                sats,
                tapscripts: Tapscripts(leaves),
                expires_at: None,
            });
        }
        Ok(out)
    }
}
