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

/// Assets through the simulator: issue off-chain, send, carry through a
/// round. A renewal of an asset-bearing VTXO without ark-core's asset
/// preservation packet is refused with arkd's error; with it (ark-client's
/// `settle_all`, and a delegate executing the owner's pre-signed intent) the
/// renewed VTXO holds the same assets, as the indexer reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ark_client_issues_and_sends_an_asset() -> anyhow::Result<()> {
    let (sim, server, chain) = start().await?;
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

    // 1. Without the preservation packet, Bob's renewal is refused.
    let delegate_kp = bitcoin::key::Keypair::new(&bitcoin::key::Secp256k1::new(), &mut rng);
    let mut bare = bob.generate_delegate(delegate_kp.public_key()).await?;
    let tx = &mut bare.intent.proof.unsigned_tx;
    let ext = tx
        .output
        .iter()
        .position(|o| o.script_pubkey.is_op_return())
        .context("ark-client adds the preservation packet")?;
    tx.output.remove(ext);
    bare.intent.proof.outputs.remove(ext);
    bob.sign_delegate_psbts(&mut bare.intent.proof, &mut bare.forfeit_psbts)?;
    let refused = bob
        .network_client()
        .register_intent(bare.intent)
        .await
        .err()
        .context("an asset VTXO without its packet is refused")?;
    assert!(
        refused.to_string().contains("ASSET_VALIDATION_FAILED")
            || refused.to_string().contains("asset packet not found"),
        "{refused}"
    );

    // 2. With it (ark-client's own renewal), the asset survives the round.
    let old_bob = bob
        .list_vtxos()
        .await?
        .all()
        .next()
        .context("bob's vtxo")?
        .vtxo()
        .clone();
    let renewed = within("renew asset", bob.settle_all(&mut rng))
        .await??
        .context("nothing to renew")?;
    chain.mine(1);
    assert_eq!(
        sim.vtxo(&old_bob.outpoint).map(|v| v.state),
        Some(VtxoState::Settled(renewed))
    );
    let b = bob.offchain_balance().await?;
    assert_eq!(
        b.asset_balances().get(&asset_id),
        Some(&400),
        "renewed with its asset"
    );
    assert_eq!(b.confirmed(), Amount::from_sat(330));
    let fresh = bob.list_vtxos().await?;
    let fresh: Vec<_> = fresh.spendable_offchain().collect();
    assert_eq!(fresh.len(), 1);
    let v = fresh[0].vtxo();
    assert!(v.commitment_txids.contains(&renewed));
    assert_eq!(
        v.assets.len(),
        1,
        "the indexer reports the renewed VTXO's asset"
    );
    assert_eq!((v.assets[0].asset_id, v.assets[0].amount), (asset_id, 400));

    // 3. A delegate (Bob) renews Alice's asset VTXOs from her pre-signed intent.
    let mut delegate = alice.generate_delegate(delegate_kp.public_key()).await?;
    alice.sign_delegate_psbts(&mut delegate.intent.proof, &mut delegate.forfeit_psbts)?;
    let by_delegate = within(
        "settle delegate",
        bob.settle_delegate(&mut rng, delegate, delegate_kp),
    )
    .await??;
    chain.mine(1);
    assert!(sim.batches().contains(&by_delegate));
    let a = alice.offchain_balance().await?;
    assert_eq!(
        a.asset_balances().get(&asset_id),
        Some(&600),
        "kept by the delegated renewal"
    );
    assert_eq!(
        a.pre_confirmed(),
        Amount::ZERO,
        "everything renewed into the batch"
    );
    let b = bob.offchain_balance().await?;
    assert_eq!(
        b.asset_balances().get(&asset_id),
        Some(&400),
        "the delegate gained nothing"
    );
    assert!(sim.failed_rounds().is_empty(), "{:?}", sim.failed_rounds());
    server.stop().await;
    Ok(())
}

/// A delegation pre-signed by the owner (ark-core's `prepare_delegate_psbts_at`
/// and `sign_delegate_psbts`: intent proof SIGHASH_DEFAULT, forfeits
/// SIGHASH_ALL|ANYONECANPAY) is refused before its `valid_at`
/// (`INVALID_INTENT_TIMERANGE`) and executed by another wallet after it
/// (ark-client `settle_delegate`), without the owner online: the forfeit in
/// the batch carries the owner's 0x81 signature, the new VTXO is the owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegate_settles_a_presigned_intent_only_from_valid_at() -> anyhow::Result<()> {
    use ark_core::batch::{prepare_delegate_psbts_at, sign_delegate_psbts};
    use ark_core::intent;
    use ark_relay_core::{PubKey, Sats};
    use bitcoin::key::{Keypair, Secp256k1};
    use bitcoin::secp256k1::SecretKey;
    use bitcoin::{Sequence, TapSighashType, TxOut};

    let (sim, server, chain) = start().await?;
    let url = server.url();
    let delegate_wallet = wallet(&url, &chain, 0x55).await?;
    let info = delegate_wallet.server_info().await?;
    let secp = Secp256k1::new();
    let owner = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[0x66; 32])?);
    let owner_pk = owner.x_only_public_key().0;
    let vtxo = sim.fund(&PubKey::from_x_only(owner_pk), Sats::new(20_000));
    let script = sim
        .server_info()
        .default_vtxo(&PubKey::from_x_only(owner_pk));
    let signer = info.signer_pk.x_only_public_key().0;
    let leaf = script
        .collaborative_leaf(&owner_pk, &signer)
        .context("forfeit leaf")?
        .clone();
    let control = script.control_block(&leaf)?;
    let prevout = TxOut {
        value: Amount::from_sat(vtxo.amount),
        script_pubkey: vtxo.script.clone(),
    };
    let input = intent::Input::new(
        vtxo.outpoint,
        Sequence::MAX,
        None,
        prevout.clone(),
        script.leaves().to_vec(),
        (leaf, control),
        false,
        false,
        Vec::new(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // Beyond the simulator's 5 s clock skew allowance.
    let valid_at = now + 8;
    let delegate_kp = Keypair::new(&secp, &mut rand::thread_rng());
    let mut delegate = prepare_delegate_psbts_at(
        vec![input],
        vec![intent::Output::Offchain(prevout)],
        delegate_kp.public_key(),
        &info.forfeit_address,
        info.dust,
        Some(valid_at),
    )?;
    sign_delegate_psbts(
        |_, msg| {
            Ok(vec![(
                secp.sign_schnorr_no_aux_rand(&msg, &owner),
                owner_pk,
            )])
        },
        &mut delegate.intent.proof,
        &mut delegate.forfeit_psbts,
    )?;
    assert_eq!(delegate.forfeit_psbts.len(), 1);

    // Before valid_at: arkd's refusal.
    let early = delegate_wallet
        .network_client()
        .register_intent(delegate.intent.clone())
        .await
        .err()
        .context("refused before valid_at")?;
    assert!(
        early.to_string().contains("INVALID_INTENT_TIMERANGE"),
        "{early}"
    );

    // After valid_at: the delegate executes it.
    let wait = valid_at.saturating_sub(5).saturating_sub(now) + 1;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let mut rng = rand::thread_rng();
    let commitment = within(
        "settle delegate",
        delegate_wallet.settle_delegate(&mut rng, delegate, delegate_kp),
    )
    .await??;
    let old = sim.vtxo(&vtxo.outpoint).context("old vtxo")?;
    assert_eq!(old.state, VtxoState::Settled(commitment));
    let forfeits = sim.batch_forfeits(&commitment);
    assert_eq!(forfeits.len(), 1);
    let f = &forfeits[0];
    let vtxo_in = f
        .unsigned_tx
        .input
        .iter()
        .position(|i| i.previous_output == vtxo.outpoint)
        .context("the forfeit spends the vtxo")?;
    let sigs: Vec<_> = f.inputs[vtxo_in].tap_script_sigs.iter().collect();
    assert!(
        sigs.iter()
            .any(|((pk, _), s)| *pk == owner_pk
                && s.sighash_type == TapSighashType::AllPlusAnyoneCanPay),
        "the owner's 0x81 signature is in the forfeit"
    );
    let created: Vec<_> = sim
        .vtxos()
        .into_iter()
        .filter(|v| v.commitment_txid == Some(commitment) && v.state == VtxoState::Spendable)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].script.clone(), created[0].amount),
        (vtxo.script.clone(), 20_000),
        "same owner, same sats"
    );
    server.stop().await;
    Ok(())
}
