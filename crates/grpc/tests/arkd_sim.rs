//! `ArkdClient` (official `ark-grpc` client) against the arkd simulator over a
//! real gRPC socket: the off-chain payment flow, recovery of a stranded
//! submission, and every SubmitTx / FinalizeTx rule with a negative case.

use std::error::Error;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{Amount, Psbt, Sequence, TxOut};
use futures::StreamExt;

use ark_relay_ark::{
    build_offchain_tx, is_fully_signed, missing_signers, sign_psbt, verify_signatures, OffchainTx,
    Output, RelativeLocktime, ServerInfo, VtxoInput,
};
use ark_relay_core::backends::ark::{
    ArkRejection, ArkServer, ArkServerError, ArkTxEvent, IntentProof, VtxoFilter, VtxoQuery,
};
use ark_relay_core::{ErrorCode, PubKey, Sats, VtxoId};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_grpc::resilience::{
    Backoff, BreakerConfig, BreakerState, HealthRegistry, Resilience,
};
use ark_relay_sim::{SimOptions, SimStack};

type R = Result<(), Box<dyn Error>>;

fn key(b: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[b; 32]).expect("valid key"),
    )
}

fn pk(k: &Keypair) -> PubKey {
    PubKey::from_x_only(k.x_only_public_key().0)
}

struct Env {
    stack: SimStack,
    client: ArkdClient,
    server: ServerInfo,
}

async fn env() -> Result<Env, Box<dyn Error>> {
    let stack = SimStack::start(SimOptions::default()).await?;
    let client = ArkdClient::connect(stack.endpoints().arkd).await?;
    let info = client.get_info().await?;
    let server = ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript,
        RelativeLocktime::from_server_value(info.unilateral_exit_delay)?,
        info.dust,
        info.network,
    )?;
    Ok(Env {
        stack,
        client,
        server,
    })
}

impl Env {
    fn fund(&self, owner: &Keypair, sats: u64) -> Result<VtxoInput, Box<dyn Error>> {
        let v = self.stack.arkd.fund(&pk(owner), Sats::new(sats));
        self.input(owner, VtxoId::from(v.outpoint), sats)
    }

    fn input(&self, owner: &Keypair, id: VtxoId, sats: u64) -> Result<VtxoInput, Box<dyn Error>> {
        let owner = pk(owner);
        Ok(VtxoInput::collaborative(
            id,
            Sats::new(sats),
            self.server.default_vtxo(&owner),
            &owner,
            self.server.signer(),
        )?)
    }

    /// alice's VTXO → 600 to bob, the rest back to alice; signed by alice.
    fn pay(
        &self,
        input: &VtxoInput,
        alice: &Keypair,
        bob: &Keypair,
    ) -> Result<OffchainTx, Box<dyn Error>> {
        let total = input.amount.get();
        let outputs = [
            Output::Vtxo {
                owner: pk(bob),
                sats: Sats::new(600),
            },
            Output::Vtxo {
                owner: pk(alice),
                sats: Sats::new(total - 600),
            },
        ];
        let mut tx = build_offchain_tx(&self.server, std::slice::from_ref(input), &outputs)?;
        assert_eq!(sign_psbt(&mut tx.ark_tx, alice)?, 1);
        Ok(tx)
    }
}

fn rejection(e: &ArkServerError) -> ArkRejection {
    e.rejection()
        .cloned()
        .unwrap_or(ArkRejection::Other(format!("not a rejection: {e}")))
}

/// The client's checks on SubmitTx's answer, then the owner's checkpoint signatures.
fn countersign(
    server: &ServerInfo,
    tx: &OffchainTx,
    final_ark: &Psbt,
    checkpoints: &[Psbt],
    owner: &Keypair,
) -> Result<Vec<Psbt>, Box<dyn Error>> {
    assert_eq!(final_ark.unsigned_tx.compute_txid(), tx.ark_txid());
    assert!(
        is_fully_signed(final_ark)?,
        "server co-signed every ark-tx input"
    );
    let mut ours = tx.checkpoint_txids();
    let mut theirs: Vec<_> = checkpoints
        .iter()
        .map(|c| c.unsigned_tx.compute_txid())
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "same checkpoints, any order");
    let mut signed = Vec::new();
    for cp in checkpoints {
        verify_signatures(cp)?;
        assert_eq!(missing_signers(cp, 0)?, vec![*pk(owner).x_only()]);
        assert!(!missing_signers(cp, 0)?.contains(server.signer()));
        let mut cp = cp.clone();
        sign_psbt(&mut cp, owner)?;
        assert!(is_fully_signed(&cp)?);
        signed.push(cp);
    }
    Ok(signed)
}

#[tokio::test]
async fn get_info_matches_the_simulator() -> R {
    let env = env().await?;
    assert_eq!(&env.server, env.stack.arkd.server_info());
    let info = env.client.get_info().await?;
    assert_eq!(info.network, bitcoin::Network::Regtest);
    assert_eq!(info.dust, Sats::new(330));
    assert_eq!(info.unilateral_exit_delay, 144);
    Ok(())
}

#[tokio::test]
async fn submit_finalize_creates_vtxos_only_at_finalize() -> R {
    let env = env().await?;
    let (alice, bob) = (key(2), key(3));
    let input = env.fund(&alice, 1_000)?;
    let tx = env.pay(&input, &alice, &bob)?;
    let new_ids = tx.new_vtxo_ids();
    let mut events = env.client.subscribe_transactions().await?;

    let submitted = env.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await?;
    assert_eq!(submitted.ark_txid, tx.ark_txid());
    let signed = countersign(
        &env.server,
        &tx,
        &submitted.final_ark_tx,
        &submitted.signed_checkpoint_txs,
        &alice,
    )?;

    // Before FinalizeTx: no outputs; the input is spent-pending.
    let none = env
        .client
        .get_vtxos(&VtxoQuery::Outpoints(new_ids.clone()))
        .await?;
    assert!(none.is_empty(), "outputs exist before FinalizeTx: {none:?}");
    let alice_script = env.server.default_vtxo(&pk(&alice)).script_pubkey();
    let pending = env
        .client
        .get_vtxos(&VtxoQuery::Scripts {
            scripts: vec![alice_script.clone()],
            filter: VtxoFilter::Pending,
        })
        .await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].ark_txid, Some(tx.ark_txid()));

    env.client.finalize_tx(submitted.ark_txid, &signed).await?;
    // Idempotent.
    env.client.finalize_tx(submitted.ark_txid, &signed).await?;

    let bob_script = env.server.default_vtxo(&pk(&bob)).script_pubkey();
    let bobs = env
        .client
        .get_vtxos(&VtxoQuery::Scripts {
            scripts: vec![bob_script],
            filter: VtxoFilter::Spendable,
        })
        .await?;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].amount, Sats::new(600));
    assert_eq!(bobs[0].id, new_ids[0]);
    assert!(bobs[0].is_preconfirmed);
    let created = env
        .client
        .get_vtxos(&VtxoQuery::Outpoints(new_ids.clone()))
        .await?;
    assert_eq!(created.len(), 2);

    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await?
        .ok_or("stream ended")??;
    let ArkTxEvent::Ark {
        txid,
        spent,
        created,
        checkpoints,
        ..
    } = event
    else {
        return Err("expected an ark tx event".into());
    };
    assert_eq!(txid, tx.ark_txid());
    assert_eq!(spent.len(), 1);
    assert_eq!(created.len(), 2);
    assert_eq!(checkpoints.get(&input.id), Some(&tx.checkpoint_txids()[0]));

    // Spending the spent VTXO again: VTXO_ALREADY_SPENT (2002).
    let again = env.pay(&input, &alice, &key(4))?;
    let err = env
        .client
        .submit_tx(&again.ark_tx, &again.checkpoints)
        .await
        .err()
        .ok_or("double spend accepted")?;
    assert_eq!(rejection(&err), ArkRejection::VtxoAlreadySpent);
    assert_eq!(err.code(), ErrorCode::InputAlreadySpent);
    Ok(())
}

#[tokio::test]
async fn stranded_submission_is_found_and_finalized() -> R {
    let env = env().await?;
    let (alice, bob) = (key(2), key(3));
    let input = env.fund(&alice, 5_000)?;
    let tx = env.pay(&input, &alice, &bob)?;
    // Submitted, then the answer is "lost".
    env.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await?;

    let owner = pk(&alice);
    let leaf = input.spend_leaf.clone();
    let control = input.script.control_block(&leaf)?;
    let ark_input = ark_core::intent::Input::new(
        input.id.outpoint(),
        Sequence::MAX,
        None,
        TxOut {
            value: Amount::from_sat(input.amount.get()),
            script_pubkey: input.script.script_pubkey(),
        },
        input.script.leaves().to_vec(),
        (leaf, control),
        false,
        false,
        Vec::new(),
    );
    let secp = Secp256k1::new();
    let intent = ark_core::intent::make_intent(
        |_, msg| Ok(vec![(secp.sign_schnorr(&msg, &alice), *owner.x_only())]),
        |_, _| Err(ark_core::Error::ad_hoc("no on-chain inputs")),
        vec![ark_input],
        Vec::new(),
        ark_core::intent::IntentMessage::GetPendingTx {
            expire_at: 4_000_000_000,
        },
    )?;
    let proof = IntentProof {
        proof: intent.proof.clone(),
        message: intent.serialize_message()?,
    };
    let pending = env.client.get_pending_tx(&proof).await?;
    assert_eq!(pending.len(), 1);
    let p = &pending[0];
    assert_eq!(p.ark_txid, tx.ark_txid());
    let signed = countersign(
        &env.server,
        &tx,
        &p.final_ark_tx,
        &p.signed_checkpoint_txs,
        &alice,
    )?;
    env.client.finalize_tx(p.ark_txid, &signed).await?;
    assert!(env.client.get_pending_tx(&proof).await?.is_empty());
    assert_eq!(
        env.client
            .get_vtxos(&VtxoQuery::Outpoints(tx.new_vtxo_ids()))
            .await?
            .len(),
        2
    );

    // A proof signed by someone else is refused.
    let mut forged = proof.clone();
    for input in &mut forged.proof.inputs {
        input.tap_script_sigs.clear();
    }
    assert!(env.client.get_pending_tx(&forged).await.is_err());
    Ok(())
}

async fn submit_err(env: &Env, tx: &OffchainTx) -> Result<ArkServerError, Box<dyn Error>> {
    match env.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await {
        Ok(_) => Err("tampered submission accepted".into()),
        Err(e) => Ok(e),
    }
}

#[tokio::test]
async fn tampered_submissions_are_rejected_with_arkd_names() -> R {
    let env = env().await?;
    let (alice, bob) = (key(2), key(3));
    let input = env.fund(&alice, 2_000)?;
    let good = env.pay(&input, &alice, &bob)?;

    // One byte of the ark tx (an input's sequence).
    let mut tx = good.clone();
    tx.ark_tx.unsigned_tx.input[0].sequence = Sequence(0xffff_fffd);
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::ArkTxMismatch
    );

    // One byte of a checkpoint tx (its locktime).
    let mut tx = good.clone();
    tx.checkpoints[0].unsigned_tx.lock_time = bitcoin::absolute::LockTime::from_consensus(1);
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::CheckpointMismatch
    );

    // One amount: an output changed after signing (inputs ≠ outputs).
    let mut tx = good.clone();
    tx.ark_tx.unsigned_tx.output[0].value += Amount::from_sat(1);
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::ArkTxMismatch
    );

    // One amount, consistently: the client claims 3 000 for a 2 000 VTXO
    // (witness_utxo, checkpoint and outputs agree); the store decides: rebuilt
    // with the stored 2 000, inputs no longer equal outputs.
    let inflated = env.input(&alice, input.id, 3_000)?;
    let tx = env.pay(&inflated, &alice, &bob)?;
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::ArkTxMismatch
    );
    // Same amounts as stored but outputs re-balanced to 3 000 cannot pass either;
    // and a claimed 2 000 VTXO whose checkpoint pays 2 001 is a checkpoint mismatch.
    let mut tx = good.clone();
    tx.checkpoints[0].unsigned_tx.output[0].value += Amount::from_sat(1);
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::CheckpointMismatch
    );

    // One signature byte.
    let mut tx = good.clone();
    for sig in tx.ark_tx.inputs[0].tap_script_sigs.values_mut() {
        let mut bytes = sig.signature.serialize();
        bytes[10] ^= 1;
        sig.signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&bytes)?;
    }
    let err = submit_err(&env, &tx).await?;
    assert_eq!(rejection(&err), ArkRejection::InvalidSignature);
    assert_eq!(err.code(), ErrorCode::ArkRejected);

    // No owner signature.
    let mut tx = good.clone();
    tx.ark_tx.inputs[0].tap_script_sigs.clear();
    assert_eq!(
        rejection(&submit_err(&env, &tx).await?),
        ArkRejection::InvalidSignature
    );

    // Unknown VTXO: VTXO_NOT_FOUND (2003).
    let ghost: VtxoId = format!("{}:0", "ab".repeat(32)).parse()?;
    let tx = env.pay(&env.input(&alice, ghost, 1_000)?, &alice, &bob)?;
    let err = submit_err(&env, &tx).await?;
    assert_eq!(rejection(&err), ArkRejection::VtxoNotFound);
    assert_eq!(err.code(), ErrorCode::UnknownVtxoOrAsset);

    // None of the rejections touched the input: the untampered tx goes through.
    let ok = env
        .client
        .submit_tx(&good.ark_tx, &good.checkpoints)
        .await?;
    assert_eq!(ok.ark_txid, good.ark_txid());

    // A second submission spending the pending input is refused.
    let other = env.pay(&input, &alice, &key(5))?;
    assert_ne!(other.ark_txid(), good.ark_txid());
    assert_eq!(
        rejection(&submit_err(&env, &other).await?),
        ArkRejection::VtxoAlreadySpent
    );
    Ok(())
}

#[tokio::test]
async fn finalize_requires_complete_checkpoint_signatures() -> R {
    let env = env().await?;
    let (alice, bob) = (key(2), key(3));
    let input = env.fund(&alice, 1_500)?;
    let tx = env.pay(&input, &alice, &bob)?;
    let submitted = env.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await?;

    // Server-signed only (owner signature missing).
    let err = env
        .client
        .finalize_tx(submitted.ark_txid, &submitted.signed_checkpoint_txs)
        .await
        .err()
        .ok_or("incomplete checkpoints accepted")?;
    assert_eq!(rejection(&err), ArkRejection::InvalidSignature);
    // No checkpoints at all.
    let err = env
        .client
        .finalize_tx(submitted.ark_txid, &[])
        .await
        .err()
        .ok_or("no checkpoints accepted")?;
    assert_eq!(rejection(&err), ArkRejection::CheckpointMismatch);
    // Unknown ark txid.
    let err = env
        .client
        .finalize_tx(input.id.outpoint().txid, &submitted.signed_checkpoint_txs)
        .await
        .err()
        .ok_or("unknown tx accepted")?;
    assert_eq!(rejection(&err), ArkRejection::TxNotFound);
    assert!(env
        .client
        .get_vtxos(&VtxoQuery::Outpoints(tx.new_vtxo_ids()))
        .await?
        .is_empty());

    let signed = countersign(
        &env.server,
        &tx,
        &submitted.final_ark_tx,
        &submitted.signed_checkpoint_txs,
        &alice,
    )?;
    env.client.finalize_tx(submitted.ark_txid, &signed).await?;
    assert_eq!(
        env.client
            .get_vtxos(&VtxoQuery::Outpoints(tx.new_vtxo_ids()))
            .await?
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn transport_failures_are_transient_and_injected_faults_keep_their_names() -> R {
    let env = env().await?;
    let down = || ark_relay_sim::arkd::SimError {
        code: 14,
        name: String::new(),
        message: "down".into(),
    };
    // The resilience layer retries a transient failure of an idempotent call.
    env.stack.arkd.inject_fault("GetInfo", down(), 1);
    env.client.get_info().await?;
    // A client with a fast backoff gives up after its attempts, transiently,
    // and its breaker opens after 5 consecutive failures.
    let fast = ArkdClient::connect(env.stack.endpoints().arkd)
        .await?
        .with_resilience(Resilience::with_config(
            "arkd-test",
            &HealthRegistry::new(),
            BreakerConfig {
                failure_threshold: 5,
                open_for: std::time::Duration::from_secs(60),
            },
            Backoff {
                initial: std::time::Duration::from_millis(5),
                max: std::time::Duration::from_millis(20),
            },
        ));
    env.stack.arkd.inject_fault("GetInfo", down(), 4);
    let err = fast.get_info().await.err().ok_or("fault not injected")?;
    assert!(err.is_transient());
    assert_eq!(err.code(), ErrorCode::BackendUnavailable);
    env.stack.arkd.inject_fault(
        "GetInfo",
        ark_relay_sim::arkd::SimError {
            code: 14,
            name: "VTXO_BANNED".into(),
            message: "x".into(),
        },
        1,
    );
    let err = env
        .client
        .get_info()
        .await
        .err()
        .ok_or("fault not injected")?;
    assert_eq!(rejection(&err), ArkRejection::VtxoBanned);
    env.client.get_info().await?;

    let url = env.stack.endpoints().arkd;
    env.stack.stop().await;
    // Sim gone: one more failure opens the fast client's breaker (4 + 1 = 5),
    // after which calls are refused without touching the network.
    let _ = fast.get_info().await;
    assert_eq!(fast.resilience().breaker().state(), BreakerState::Open);
    let refused = fast
        .get_info()
        .await
        .err()
        .ok_or("breaker let a call through")?;
    assert!(
        refused.to_string().contains("circuit breaker open"),
        "{refused}"
    );
    let err = env
        .client
        .get_info()
        .await
        .err()
        .ok_or("stopped sim answered")?;
    assert!(err.is_transient(), "{err:?}");
    let err = ArkdClient::connect(url)
        .await
        .err()
        .ok_or("connected to nothing")?;
    assert!(err.is_transient(), "{err:?}");
    Ok(())
}

/// Script subscriptions (arkd indexer SubscribeForScripts + GetSubscription)
/// through ark-grpc: a subscriber to Bob's script hears the finalized
/// transaction that pays him, with the new VTXO; unsubscribing all scripts
/// keeps the id valid; an unknown id is refused.
#[tokio::test]
async fn script_subscription_reports_transactions_touching_the_scripts() -> R {
    let env = env().await?;
    let (alice, bob) = (key(2), key(3));
    let bob_script = env.server.default_vtxo(&pk(&bob)).script_pubkey();
    let id = env
        .client
        .subscribe_scripts(std::slice::from_ref(&bob_script), None)
        .await?;
    let mut events = env.client.script_events(&id).await?;

    let input = env.fund(&alice, 1_000)?;
    let tx = env.pay(&input, &alice, &bob)?;
    let submitted = env.client.submit_tx(&tx.ark_tx, &tx.checkpoints).await?;
    let signed = countersign(
        &env.server,
        &tx,
        &submitted.final_ark_tx,
        &submitted.signed_checkpoint_txs,
        &alice,
    )?;
    env.client.finalize_tx(submitted.ark_txid, &signed).await?;

    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await?
        .ok_or("stream ended")??;
    assert_eq!(event.txid, tx.ark_txid());
    assert_eq!(event.scripts, vec![bob_script.clone()]);
    assert!(event.new_vtxos.iter().any(|v| v.script == bob_script));
    assert_eq!(event.spent_vtxos.len(), 1);

    // Adding to the same subscription keeps its id.
    let again = env
        .client
        .subscribe_scripts(std::slice::from_ref(&bob_script), Some(&id))
        .await?;
    assert_eq!(again, id);
    env.client.unsubscribe_scripts(&id, &[]).await?;
    assert!(env
        .client
        .script_events("no-such-subscription")
        .await
        .is_err());
    Ok(())
}
