//! Arkade's own wallet library, `ark-client` 0.12, against the arkd simulator
//! over real gRPC: board on-chain coins into a batch, send off-chain to a
//! second wallet, renew a VTXO in a round, let its batch expire and be swept,
//! recover it. Every step checks the balances both wallets report.

use std::time::Duration;

use anyhow::Context;
use ark_client::Blockchain;
use ark_core::send::SendReceiver;
use ark_relay_ark::RelativeLocktime;
use ark_relay_proto::ark::v1 as pb;
use ark_relay_proto::ark::v1::indexer_service_client::IndexerServiceClient;
use ark_relay_sim::arkd::VtxoState;
use ark_relay_sim::{ArkdSim, ArkdSimConfig, Chain, RoundConfig, SimServer};
use ark_relay_sim_conformance::{wallet, SimChain};
use bitcoin::Amount;

/// Batch expiry of these tests: the smallest seconds-based value arkd allows.
const EXPIRY_SECS: u32 = 1024;

async fn start() -> anyhow::Result<(ArkdSim, SimServer, Chain)> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let chain = Chain::default();
    let config = ArkdSimConfig {
        round: RoundConfig {
            registration: Duration::from_millis(200),
            phase_timeout: Duration::from_secs(10),
            vtxo_tree_expiry: RelativeLocktime::seconds(EXPIRY_SECS)?,
            ..RoundConfig::default()
        },
        ..ArkdSimConfig::default()
    };
    let sim = ArkdSim::with_chain(config, chain.clone())?;
    let server = sim.clone().spawn(0).await?;
    Ok((sim, server, chain))
}

/// Runs `f` with a 60 s limit, naming what timed out.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .with_context(|| format!("timed out: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ark_client_boards_sends_receives_renews_and_recovers() -> anyhow::Result<()> {
    let (sim, server, chain) = start().await?;
    let url = server.url();
    let alice = wallet(&url, &chain, 0x11).await?;
    let bob = wallet(&url, &chain, 0x22).await?;
    let mut rng = rand::thread_rng();

    // 1. Board: fund Alice's boarding address on chain, confirm, settle.
    let boarding = alice.get_boarding_address().await?;
    chain.faucet(boarding.script_pubkey(), Amount::from_sat(100_000));
    chain.mine(1);
    let found = SimChain(chain.clone()).find_outpoints(&boarding).await?;
    assert_eq!(found.len(), 1, "the explorer sees the boarding UTXO");
    let commitment = within("boarding settle", alice.settle(&mut rng))
        .await??
        .context("settle found nothing to board")?;
    assert!(
        chain.mempool().contains(&commitment),
        "commitment tx broadcast"
    );
    chain.mine(1);
    assert_eq!(chain.confirmations(&commitment), 1);
    let balance = alice.offchain_balance().await?;
    assert_eq!(balance.confirmed(), Amount::from_sat(100_000));
    assert_eq!(balance.total(), Amount::from_sat(100_000));
    assert!(
        SimChain(chain.clone()).find_outpoints(&boarding).await?[0].is_spent,
        "the boarding UTXO is spent by the commitment tx"
    );

    // 2. Send off-chain to Bob, who sees it.
    let (bob_address, _) = bob.get_offchain_address().await?;
    within(
        "send",
        alice.send(vec![SendReceiver::bitcoin(
            bob_address,
            Amount::from_sat(30_000),
        )]),
    )
    .await??;
    let a = alice.offchain_balance().await?;
    let b = bob.offchain_balance().await?;
    assert_eq!(
        a.total(),
        Amount::from_sat(70_000),
        "Alice keeps the change"
    );
    assert_eq!(b.pre_confirmed(), Amount::from_sat(30_000), "Bob received");

    // 3. Renew: Bob settles his preconfirmed VTXO into a batch; the old one
    //    is forfeited, the new one expires later.
    let old = bob.list_vtxos().await?;
    let old_vtxo = old.all().next().context("bob has a vtxo")?.vtxo().clone();
    let old_expiry = old_vtxo.expires_at;
    let renewed = within("renew", bob.settle_all(&mut rng))
        .await??
        .context("nothing to renew")?;
    chain.mine(1);
    let forfeited = sim.vtxo(&old_vtxo.outpoint).context("old vtxo known")?;
    assert_eq!(
        forfeited.state,
        VtxoState::Settled(renewed),
        "old vtxo settled"
    );
    assert!(forfeited.spent_by.is_some(), "spent by its forfeit tx");
    let b = bob.offchain_balance().await?;
    assert_eq!(
        b.confirmed(),
        Amount::from_sat(30_000),
        "renewed into a batch"
    );
    assert_eq!(b.pre_confirmed(), Amount::ZERO);
    let new = bob.list_vtxos().await?;
    let fresh: Vec<_> = new.spendable_offchain().collect();
    assert_eq!(fresh.len(), 1);
    assert!(fresh[0].vtxo().expires_at >= old_expiry, "a later expiry");
    assert!(fresh[0].vtxo().commitment_txids.contains(&renewed));
    assert_eq!(
        alice.offchain_balance().await?.total(),
        Amount::from_sat(70_000)
    );

    // 4. Expire: move the chain's clock past the batch expiry and mine: the
    //    simulator sweeps the batch; Bob's VTXO is swept and recoverable, and
    //    a subscription to his script hears of it.
    let bob_script = fresh[0].vtxo().script.to_hex_string();
    let fresh_outpoint = fresh[0].vtxo().outpoint;
    let mut indexer = IndexerServiceClient::connect(url.clone()).await?;
    let sub = indexer
        .subscribe_for_scripts(pb::SubscribeForScriptsRequest {
            scripts: vec![bob_script.clone()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .subscription_id;
    let mut events = indexer
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: sub,
            ..Default::default()
        })
        .await?
        .into_inner();
    chain.advance_time(i64::from(EXPIRY_SECS) + 60);
    chain.mine(1);
    let swept = within("sweep event", async {
        while let Some(e) = events.message().await? {
            if let Some(pb::get_subscription_response::Data::Event(e)) = e.data {
                if !e.swept_vtxos.is_empty() {
                    return Ok(e);
                }
            }
        }
        anyhow::bail!("subscription closed")
    })
    .await??;
    assert_eq!(swept.scripts, vec![bob_script]);
    assert!(swept.swept_vtxos.iter().all(|v| v.is_swept));
    // The indexer: the batch is swept, the VTXO's chain leads to its commitment.
    let info = indexer
        .get_commitment_tx(pb::GetCommitmentTxRequest {
            txid: renewed.to_string(),
        })
        .await?
        .into_inner();
    assert!(info.batches.values().all(|b| b.swept));
    assert_eq!(info.total_output_amount, 30_000);
    let vtxo_chain = indexer
        .get_vtxo_chain(pb::GetVtxoChainRequest {
            outpoint: Some(pb::IndexerOutpoint {
                txid: fresh_outpoint.txid.to_string(),
                vout: fresh_outpoint.vout,
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .chain;
    assert!(vtxo_chain.iter().any(|c| c.txid == renewed.to_string()
        && c.r#type == pb::IndexerChainedTxType::Commitment as i32));
    // ark-client itself will not spend a swept VTXO off-chain (the simulator's
    // VTXO_RECOVERABLE refusal is exercised in tests/rounds.rs).
    let (alice_address, _) = alice.get_offchain_address().await?;
    assert!(bob
        .send_selection(
            &[fresh_outpoint],
            vec![SendReceiver::bitcoin(
                alice_address,
                Amount::from_sat(10_000)
            )],
        )
        .await
        .is_err());
    // An open stream would hold the server's graceful shutdown.
    drop(events);
    drop(indexer);
    let b = bob.offchain_balance().await?;
    assert_eq!(
        b.recoverable(),
        Amount::from_sat(30_000),
        "swept, recoverable"
    );
    assert_eq!(b.confirmed(), Amount::ZERO);
    assert_eq!(
        alice.offchain_balance().await?.total(),
        Amount::from_sat(70_000)
    );

    // 5. Recover: settle the swept VTXO into a new batch.
    let recovered = within("recover", bob.settle(&mut rng))
        .await??
        .context("nothing to recover")?;
    chain.mine(1);
    let b = bob.offchain_balance().await?;
    assert_eq!(b.recoverable(), Amount::ZERO);
    assert_eq!(b.confirmed(), Amount::from_sat(30_000), "recovered");
    assert!(sim.batches().contains(&recovered));
    assert_eq!(
        alice.offchain_balance().await?.total(),
        Amount::from_sat(70_000)
    );
    assert!(sim.failed_rounds().is_empty(), "{:?}", sim.failed_rounds());

    server.stop().await;
    Ok(())
}

/// Assets through the simulator (issue off-chain, send, carry through a
/// round). The arkd simulator does not read asset packets yet: the asset
/// issue (research/ark-assets.md) has not landed in `crates/sim`, whose seam
/// is the extension output an ark tx or intent proof carries (today passed
/// through unread) and the indexer's `assets` fields (today empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "assets are not simulated by the arkd simulator yet; run with --ignored once they are"]
async fn ark_client_issues_and_sends_an_asset() -> anyhow::Result<()> {
    let (_sim, server, chain) = start().await?;
    let url = server.url();
    let alice = wallet(&url, &chain, 0x33).await?;
    let bob = wallet(&url, &chain, 0x44).await?;
    let mut rng = rand::thread_rng();
    let boarding = alice.get_boarding_address().await?;
    chain.faucet(boarding.script_pubkey(), Amount::from_sat(50_000));
    chain.mine(1);
    within("board", alice.settle(&mut rng)).await??;
    let issued = within("issue", alice.issue_asset(1_000, None, None)).await??;
    let asset_id = *issued.asset_ids.last().context("an asset id")?;
    let a = alice.offchain_balance().await?;
    assert_eq!(a.asset_balances().get(&asset_id), Some(&1_000));
    let (bob_address, _) = bob.get_offchain_address().await?;
    let receiver = SendReceiver {
        address: bob_address,
        amount: Amount::from_sat(330),
        assets: vec![ark_core::server::Asset {
            asset_id,
            amount: 400,
        }],
    };
    within("send asset", alice.send(vec![receiver])).await??;
    let b = bob.offchain_balance().await?;
    assert_eq!(b.asset_balances().get(&asset_id), Some(&400));
    let a = alice.offchain_balance().await?;
    assert_eq!(a.asset_balances().get(&asset_id), Some(&600));
    server.stop().await;
    Ok(())
}
