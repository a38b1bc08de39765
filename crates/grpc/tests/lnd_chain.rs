//! The `L1Chain` port of `LndClient` against the lnd simulator over real TLS:
//! a commitment is a real transaction with `OP_RETURN <root>` that the chain
//! mines; fees follow the rate asked; a refusal below the mempool minimum is an
//! error that spends nothing; a lost bookkeeping step is recovered by
//! `find_commitment`.
#![allow(clippy::unwrap_used)]

use ark_relay_core::backends::chain::{commits_to, L1Chain};
use ark_relay_grpc::daemon::DaemonConfig;
use ark_relay_grpc::lnd::LndClient;
use ark_relay_grpc::resilience::HealthRegistry;
use ark_relay_sim::chain::Chain;
use ark_relay_sim::lnd::{LnServer, LndSim, LndSimConfig};
use bitcoin::hashes::Hash;

async fn start() -> (Chain, LnServer, LndClient) {
    let chain = Chain::new(300);
    let sim = LndSim::new(chain.clone(), LndSimConfig::default()).unwrap();
    let server = sim.clone().spawn(0).await.unwrap();
    let cfg = DaemonConfig {
        url: server.url(),
        tls_cert_pem: sim.tls_cert_pem().map(|p| p.as_bytes().to_vec()),
        macaroon: Some(sim.macaroon().to_vec()),
        timeout: None,
        connect_timeout: None,
    };
    let client = LndClient::new(&cfg, &HealthRegistry::new()).unwrap();
    (chain, server, client)
}

#[tokio::test]
async fn commitment_is_mined_with_its_root_and_fee() {
    let (chain, _server, lnd) = start().await;
    chain.set_fee_rate(12);
    assert_eq!(lnd.estimate_fee_rate(6).await.unwrap(), 12);
    assert_eq!(lnd.tip_height().await.unwrap(), 300);

    let root = [0xabu8; 32];
    assert_eq!(lnd.find_commitment(root).await.unwrap(), None);
    let c = lnd
        .broadcast_commitment(root, 12, "ark-relay settlement 1")
        .await
        .unwrap();
    assert_eq!(chain.mempool(), vec![c.txid]);
    let tx = chain.mempool_tx(&c.txid).unwrap();
    assert!(commits_to(&tx, &root));
    let vsize = tx.vsize() as u64;
    assert!(
        c.fee.get() >= 12 * vsize && c.fee.get() <= 12 * vsize + 12,
        "fee {} for {vsize} vB at 12 sat/vB",
        c.fee.get()
    );
    let st = lnd.tx_status(&c.txid).await.unwrap().unwrap();
    assert_eq!((st.confirmations, st.block_height), (0, None));

    chain.mine(1);
    let st = lnd.tx_status(&c.txid).await.unwrap().unwrap();
    assert_eq!((st.confirmations, st.block_height), (1, Some(301)));
    assert_eq!(lnd.find_commitment(root).await.unwrap(), Some(c.txid));
    assert_eq!(lnd.find_commitment([1u8; 32]).await.unwrap(), None);
    let unknown = bitcoin::Txid::from_byte_array([0x42; 32]);
    assert_eq!(lnd.tx_status(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn below_the_mempool_minimum_fails_and_a_higher_fee_goes_through() {
    let (chain, _server, lnd) = start().await;
    chain.set_mempool_min_fee(40);
    let root = [0x11u8; 32];
    let e = lnd.broadcast_commitment(root, 25, "s").await.unwrap_err();
    assert!(e.message.contains("min fee"), "{e}");
    assert!(chain.mempool().is_empty());
    assert_eq!(lnd.find_commitment(root).await.unwrap(), None);
    let c = lnd.broadcast_commitment(root, 50, "s").await.unwrap();
    assert_eq!(chain.mempool(), vec![c.txid]);
    // Catch-up: a second commitment chains on the unconfirmed change.
    let c2 = lnd
        .broadcast_commitment([0x22; 32], 50, "s2")
        .await
        .unwrap();
    assert_eq!(chain.mempool().len(), 2);
    chain.mine(1);
    assert_eq!(chain.confirmed_at(&c2.txid), Some(301));
}
