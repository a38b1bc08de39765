//! The simulators' test controls over gRPC: the chain's faucet, clock and
//! blocks (`simrpc.chain.ChainSim`), and the arkd simulator's round trigger
//! (`simrpc.arkd.ArkdSimAdmin.StartRound`).

use ark_relay_proto::simrpc::arkd::arkd_sim_admin_client::ArkdSimAdminClient;
use ark_relay_proto::simrpc::arkd::StartRoundRequest;
use ark_relay_proto::simrpc::chain::chain_sim_client::ChainSimClient;
use ark_relay_proto::simrpc::chain::{
    AdvanceTimeRequest, FaucetRequest, GetChainInfoRequest, MineBlocksRequest,
};
use ark_relay_sim::{SimOptions, SimStack};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

#[tokio::test]
async fn faucet_clock_and_round_trigger_over_grpc() -> anyhow::Result<()> {
    let mut options = SimOptions::default();
    options.lnd.tls = false;
    let stack = SimStack::start(options).await?;
    let endpoints = stack.endpoints();
    let channel = tonic::transport::Endpoint::from_shared(endpoints.lnd.url.clone())?
        .connect()
        .await?;
    let mac: tonic::metadata::MetadataValue<_> = endpoints.lnd.macaroon_hex.parse()?;
    let mut chain = ChainSimClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("macaroon", mac.clone());
        Ok(r)
    });
    let secp = Secp256k1::new();
    let kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[3; 32])?);
    let address = bitcoin::Address::p2tr(
        &secp,
        kp.x_only_public_key().0,
        None,
        bitcoin::Network::Regtest,
    );
    let paid = chain
        .faucet(FaucetRequest {
            address: address.to_string(),
            amount_sat: 21_000,
        })
        .await?
        .into_inner();
    let before = chain
        .get_chain_info(GetChainInfoRequest {})
        .await?
        .into_inner();
    assert_eq!(before.mempool_size, 1, "the faucet tx waits for a block");
    let later = chain
        .advance_time(AdvanceTimeRequest { seconds: 7_200 })
        .await?
        .into_inner();
    assert!(later.time >= before.time + 7_200);
    let mined = chain
        .mine_blocks(MineBlocksRequest { count: 1 })
        .await?
        .into_inner();
    assert_eq!(mined.height, before.height + 1);
    let outs = stack.chain.outputs_of(&address.script_pubkey());
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].outpoint.txid.to_string(), paid.txid);
    assert_eq!(outs[0].confirmed_height, Some(mined.height));
    assert!(outs[0].confirmed_time.unwrap_or(0) >= later.time);
    assert!(chain
        .faucet(FaucetRequest {
            address: "not an address".into(),
            amount_sat: 1,
        })
        .await
        .is_err());

    let mut admin = ArkdSimAdminClient::connect(endpoints.arkd.clone()).await?;
    let started = admin.start_round(StartRoundRequest {}).await?.into_inner();
    assert_eq!(started.queued_intents, 0);
    stack.stop().await;
    Ok(())
}
