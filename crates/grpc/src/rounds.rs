//! The batch-round half of [`ArkdClient`]'s [`ArkServer`](ark_relay_core::backends::ark::ArkServer)
//! port (research/ark-batches.md §3–§7): intents, the round event stream,
//! tree nonces and signatures, forfeits; conversions between `ark-grpc`'s
//! types and core's `backends::rounds`.
//!
//! Only `GetInfo`, the event stream and `DeleteIntent` are retried (reads,
//! or harmless to repeat); registrations, confirmations and submissions
//! happen once — their callers (the round runner) decide what a lost answer
//! means for the saga.

use std::collections::{BTreeMap, HashMap};

use ark_core::server::{BatchTreeEventType, NoncePks, PartialSigTree, StreamEvent};
use ark_relay_core::backends::ark::RoundEventStream;
use ark_relay_core::backends::ark::{ArkServerError, IntentProof};
use ark_relay_core::backends::rounds::{IntentFeePrograms, RoundEvent, RoundTerms, TreeChunk};
use ark_relay_core::Sats;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Psbt, Txid};
use futures::StreamExt;

use crate::arkd::{map_error, ArkdClient};
use crate::resilience::RetryPolicy;

fn protocol(e: impl std::fmt::Display) -> ArkServerError {
    ArkServerError::Protocol(e.to_string())
}

fn intent(proof: &IntentProof) -> Result<ark_core::intent::Intent, ArkServerError> {
    let message: ark_core::intent::IntentMessage =
        serde_json::from_str(&proof.message).map_err(protocol)?;
    Ok(ark_core::intent::Intent::new(proof.proof.clone(), message))
}

/// Converts one `ark-grpc` stream event (`None`: nothing the port carries).
pub fn to_round_event(e: StreamEvent) -> RoundEvent {
    match e {
        StreamEvent::BatchStarted(e) => RoundEvent::BatchStarted {
            round_id: e.id,
            intent_id_hashes: e.intent_id_hashes,
            batch_expiry: e.batch_expiry,
        },
        StreamEvent::TreeTx(e) => RoundEvent::TreeTx {
            round_id: e.id,
            connector: matches!(e.batch_tree_event_type, BatchTreeEventType::Connector),
            chunk: TreeChunk {
                tx: e.tx_graph_chunk.tx,
                children: e.tx_graph_chunk.children.into_iter().collect(),
            },
        },
        StreamEvent::TreeSigningStarted(e) => RoundEvent::TreeSigningStarted {
            round_id: e.id,
            cosigners: e.cosigners_pubkeys,
            unsigned_commitment_tx: e.unsigned_commitment_tx,
        },
        StreamEvent::TreeNonces(e) => RoundEvent::TreeNonces {
            round_id: e.id,
            txid: e.txid,
            nonces: e
                .nonces
                .0
                .into_iter()
                .map(|(k, n)| (k, n.serialize().to_vec()))
                .collect(),
        },
        StreamEvent::TreeSignature(e) => RoundEvent::TreeSignature {
            round_id: e.id,
            txid: e.txid,
            signature: e.signature,
        },
        StreamEvent::BatchFinalization(e) => RoundEvent::BatchFinalization {
            round_id: e.id,
            commitment_tx: e.commitment_tx,
        },
        StreamEvent::BatchFinalized(e) => RoundEvent::BatchFinalized {
            round_id: e.id,
            commitment_txid: e.commitment_txid,
        },
        StreamEvent::BatchFailed(e) => RoundEvent::BatchFailed {
            round_id: e.id,
            reason: e.reason,
        },
        StreamEvent::TreeNoncesAggregated(_)
        | StreamEvent::StreamStarted(_)
        | StreamEvent::Heartbeat => RoundEvent::Heartbeat,
    }
}

fn hex_map(map: &BTreeMap<Txid, Vec<u8>>) -> HashMap<String, String> {
    map.iter()
        .map(|(t, b)| (t.to_string(), hex::encode(b)))
        .collect()
}

impl ArkdClient {
    pub(crate) async fn rounds_terms(&self) -> Result<RoundTerms, ArkServerError> {
        let info = self
            .resilience()
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner().get_info().await.map_err(map_error)
            })
            .await?;
        let boarding = ark_relay_ark::RelativeLocktime::from_sequence(info.boarding_exit_delay)
            .map_err(protocol)?;
        Ok(RoundTerms {
            forfeit_address: info.forfeit_address,
            boarding_exit_delay: boarding.to_server_value(),
            utxo_min_amount: info.utxo_min_amount.map(|a| Sats::new(a.to_sat())),
            utxo_max_amount: info.utxo_max_amount.map(|a| Sats::new(a.to_sat())),
            session_duration: info.session_duration,
            intent_fees: info
                .fees
                .map(|f| IntentFeePrograms {
                    offchain_input: f.intent_fee.offchain_input.unwrap_or_default(),
                    onchain_input: f.intent_fee.onchain_input.unwrap_or_default(),
                    offchain_output: f.intent_fee.offchain_output.unwrap_or_default(),
                    onchain_output: f.intent_fee.onchain_output.unwrap_or_default(),
                })
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn rounds_register(
        &self,
        proof: &IntentProof,
    ) -> Result<String, ArkServerError> {
        let i = intent(proof)?;
        self.resilience()
            .call(RetryPolicy::ONCE, || async {
                self.inner()
                    .register_intent(i.clone())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    pub(crate) async fn rounds_delete(&self, proof: &IntentProof) -> Result<(), ArkServerError> {
        let i = intent(proof)?;
        self.resilience()
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner()
                    .delete_intent(i.clone())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    pub(crate) async fn rounds_confirm(&self, intent_id: &str) -> Result<(), ArkServerError> {
        self.resilience()
            .call(RetryPolicy::ONCE, || async {
                self.inner()
                    .confirm_registration(intent_id.to_owned())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    pub(crate) async fn rounds_events(
        &self,
        topics: &[String],
    ) -> Result<RoundEventStream, ArkServerError> {
        let stream = self
            .resilience()
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner()
                    .get_event_stream(topics.to_vec())
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(Box::pin(stream.map(|item| match item {
            Ok(e) => Ok(to_round_event(e)),
            Err(e) => Err(map_error(e)),
        })))
    }

    pub(crate) async fn rounds_nonces(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        nonces: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        let pks = NoncePks::decode(hex_map(nonces)).map_err(protocol)?;
        self.resilience()
            .call(RetryPolicy::ONCE, || async {
                self.inner()
                    .submit_tree_nonces(round_id, *cosigner, pks.clone())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    pub(crate) async fn rounds_signatures(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        signatures: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        let sigs = PartialSigTree::decode(hex_map(signatures)).map_err(protocol)?;
        self.resilience()
            .call(RetryPolicy::ONCE, || async {
                self.inner()
                    .submit_tree_signatures(round_id, *cosigner, sigs.clone())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    pub(crate) async fn rounds_forfeits(
        &self,
        forfeits: &[Psbt],
        commitment: Option<&Psbt>,
    ) -> Result<(), ArkServerError> {
        self.resilience()
            .call(RetryPolicy::ONCE, || async {
                self.inner()
                    .submit_signed_forfeit_txs(forfeits.to_vec(), commitment.cloned())
                    .await
                    .map_err(map_error)
            })
            .await
    }
}
