//! `ArkdClient`: core's [`ArkServer`] port over the official `ark-grpc` client
//! (Arkade rust-sdk, tonic 0.14). It talks to real arkd and to the arkd
//! simulator alike; only the URL differs.
//!
//! Errors are classified by the gRPC status code and the `ark.v1.ErrorDetails`
//! name carried in the status details (a `google.rpc.Status`), never by
//! message text. Transport failures are transient; undecodable answers are
//! protocol errors. This module does not retry: `SubmitTx` must not be repeated
//! blindly (see the port's notes); callers wrap reads in the resilience layer.

use async_trait::async_trait;
use bitcoin::key::TweakedPublicKey;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Psbt, Txid};
use futures::StreamExt;
use prost::Message;

use ark_core::server::{GetVtxosRequest, GetVtxosRequestFilter, StreamTransactionData};
use ark_relay_ark::RelativeLocktime;
use ark_relay_core::backends::ark::RoundEventStream;
use ark_relay_core::backends::ark::{
    ArkInfo, ArkServer, ArkServerError, ArkTxEvent, ArkTxStream, IntentProof, ScriptEvent,
    ScriptEventStream, ServerAsset, ServerAssetInfo, ServerVtxo, SubmittedTx, VtxoFilter,
    VtxoQuery,
};
use ark_relay_core::backends::rounds::RoundTerms;
use ark_relay_core::{Sats, VtxoId};
use ark_relay_proto::ark::v1::ErrorDetails;
use bitcoin::secp256k1::PublicKey;
use std::collections::BTreeMap;

use crate::resilience::{BreakerOpen, Resilience, RetryPolicy, Transient};
use ark_relay_proto::google::rpc::Status as RpcStatus;

/// The arkd client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ArkdClient {
    inner: ark_grpc::Client,
    resilience: Resilience,
}

impl Transient for ArkServerError {
    fn is_transient(&self) -> bool {
        ArkServerError::is_transient(self)
    }
}

impl From<BreakerOpen> for ArkServerError {
    fn from(e: BreakerOpen) -> Self {
        ArkServerError::Unavailable {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl ArkdClient {
    /// Connects to arkd's gRPC endpoint (`http://host:7070`, or `https://…`
    /// with the system's web PKI roots).
    pub async fn connect(url: impl Into<String>) -> Result<Self, ArkServerError> {
        // Both rustls back ends end up in the graph (ark-grpc's tonic TLS and
        // ours); pick ring once per process, or rustls refuses to choose.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut inner = ark_grpc::Client::new(url.into());
        inner.connect().await.map_err(map_error)?;
        Ok(Self {
            inner,
            resilience: Resilience::standalone("arkd"),
        })
    }

    /// Uses `resilience` (backoff and circuit breaker, shared with `/health`)
    /// for every call.
    pub fn with_resilience(mut self, resilience: Resilience) -> Self {
        self.resilience = resilience;
        self
    }

    /// The resilience layer (breaker state for `/health`).
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// The underlying `ark-grpc` client, for RPCs the port does not cover.
    pub fn inner(&self) -> &ark_grpc::Client {
        &self.inner
    }
}

/// The arkd error name in a gRPC status's details, if any.
pub fn error_name(status: &tonic::Status) -> Option<String> {
    let details = status.details();
    if details.is_empty() {
        return None;
    }
    let rpc = RpcStatus::decode(details).ok()?;
    rpc.details
        .iter()
        .filter(|any| any.type_url.ends_with("ark.v1.ErrorDetails"))
        .find_map(|any| ErrorDetails::decode(any.value.as_slice()).ok())
        .map(|d| d.name)
        .filter(|n| !n.is_empty())
}

/// Classifies a gRPC status ([`ArkServerError::from_status`]).
pub fn map_status(status: &tonic::Status) -> ArkServerError {
    ArkServerError::from_status(
        status.code() as i32,
        error_name(status).as_deref(),
        status.message(),
    )
}

/// Classifies an `ark-grpc` error by its cause: a gRPC status by code and
/// arkd error name; a transport error (or no connection) as transient; any
/// other cause (a conversion of the answer) as a protocol error.
pub fn map_error(e: ark_grpc::Error) -> ArkServerError {
    let mut transport = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let has_source = cause.is_some();
    while let Some(err) = cause {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            return map_status(status);
        }
        transport |= err.downcast_ref::<tonic::transport::Error>().is_some();
        cause = err.source();
    }
    if transport || !has_source {
        ArkServerError::Unavailable {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    } else {
        ArkServerError::Protocol(e.to_string())
    }
}

fn protocol(e: impl std::fmt::Display) -> ArkServerError {
    ArkServerError::Protocol(e.to_string())
}

fn positive(amount: Option<bitcoin::Amount>) -> Option<Sats> {
    amount.map(|a| Sats::new(a.to_sat()))
}

fn to_server_vtxo(v: &ark_core::server::VirtualTxOutPoint) -> ServerVtxo {
    ServerVtxo {
        id: VtxoId::from(v.outpoint),
        amount: Sats::new(v.amount.to_sat()),
        script: v.script.clone(),
        created_at: v.created_at,
        expires_at: v.expires_at,
        is_preconfirmed: v.is_preconfirmed,
        is_swept: v.is_swept,
        is_spent: v.is_spent,
        is_unrolled: v.is_unrolled,
        spent_by: v.spent_by,
        ark_txid: v.ark_txid,
        depth: v.depth,
        assets: v
            .assets
            .iter()
            .map(|a| ServerAsset {
                asset_id: a.asset_id.to_string(),
                amount: a.amount,
            })
            .collect(),
    }
}

fn to_event(data: StreamTransactionData) -> ArkTxEvent {
    match data {
        StreamTransactionData::Ark(tx) => ArkTxEvent::Ark {
            txid: tx.txid,
            tx: tx.tx.map(Box::new),
            spent: tx.spent_vtxos.iter().map(to_server_vtxo).collect(),
            created: tx.unspent_vtxos.iter().map(to_server_vtxo).collect(),
            checkpoints: tx
                .checkpoint_txs
                .iter()
                .map(|(o, t)| (VtxoId::from(*o), *t))
                .collect(),
        },
        StreamTransactionData::Commitment(tx) => ArkTxEvent::Commitment {
            txid: tx.txid,
            spent: tx.spent_vtxos.iter().map(to_server_vtxo).collect(),
            created: tx.unspent_vtxos.iter().map(to_server_vtxo).collect(),
        },
        StreamTransactionData::Heartbeat => ArkTxEvent::Heartbeat,
    }
}

/// The output key of a P2TR script, as an address for `GetVtxos` (which
/// ark-grpc only accepts as Ark addresses; only the output key is sent).
fn script_address(script: &bitcoin::Script) -> Result<ark_core::ArkAddress, ArkServerError> {
    if !script.is_p2tr() {
        return Err(protocol(format!(
            "GetVtxos by script needs P2TR scripts, got {}",
            script.to_hex_string()
        )));
    }
    let key = XOnlyPublicKey::from_slice(&script.as_bytes()[2..34]).map_err(protocol)?;
    let tweaked = TweakedPublicKey::dangerous_assume_tweaked(key);
    Ok(ark_core::ArkAddress::new(
        bitcoin::Network::Regtest,
        key,
        tweaked,
    ))
}

#[async_trait]
impl ArkServer for ArkdClient {
    async fn get_info(&self) -> Result<ArkInfo, ArkServerError> {
        let info = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner.get_info().await.map_err(map_error)
            })
            .await?;
        let delay =
            RelativeLocktime::from_sequence(info.unilateral_exit_delay).map_err(protocol)?;
        Ok(ArkInfo {
            version: info.version,
            signer_pubkey: info.signer_pk,
            deprecated_signers: info.deprecated_signers.iter().map(|d| d.pk).collect(),
            forfeit_pubkey: info.forfeit_pk,
            checkpoint_tapscript: info.checkpoint_tapscript,
            network: info.network,
            unilateral_exit_delay: delay.to_server_value(),
            dust: Sats::new(info.dust.to_sat()),
            vtxo_min_amount: positive(info.vtxo_min_amount),
            vtxo_max_amount: positive(info.vtxo_max_amount),
            max_tx_weight: info.max_tx_weight,
            digest: info.digest,
        })
    }

    async fn submit_tx(
        &self,
        signed_ark_tx: &Psbt,
        checkpoint_txs: &[Psbt],
    ) -> Result<SubmittedTx, ArkServerError> {
        // Never retried blindly: the caller recovers a lost answer (GetPendingTx).
        let res = self
            .resilience
            .call(RetryPolicy::ONCE, || async {
                self.inner
                    .submit_offchain_transaction_request(
                        signed_ark_tx.clone(),
                        checkpoint_txs.to_vec(),
                    )
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(SubmittedTx {
            ark_txid: res.signed_ark_tx.unsigned_tx.compute_txid(),
            final_ark_tx: res.signed_ark_tx,
            signed_checkpoint_txs: res.signed_checkpoint_txs,
        })
    }

    async fn finalize_tx(
        &self,
        ark_txid: Txid,
        final_checkpoint_txs: &[Psbt],
    ) -> Result<(), ArkServerError> {
        // Finalizing the same transaction again is harmless at arkd.
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner
                    .finalize_offchain_transaction(ark_txid, final_checkpoint_txs.to_vec())
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(())
    }

    async fn get_pending_tx(
        &self,
        intent: &IntentProof,
    ) -> Result<Vec<SubmittedTx>, ArkServerError> {
        let message: ark_core::intent::IntentMessage =
            serde_json::from_str(&intent.message).map_err(protocol)?;
        let intent = ark_core::intent::Intent::new(intent.proof.clone(), message);
        let pending = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner
                    .get_pending_tx(intent.clone())
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(pending
            .into_iter()
            .map(|p| SubmittedTx {
                ark_txid: p.ark_txid,
                final_ark_tx: p.signed_ark_tx,
                signed_checkpoint_txs: p.signed_checkpoint_txs,
            })
            .collect())
    }

    async fn get_vtxos(&self, query: &VtxoQuery) -> Result<Vec<ServerVtxo>, ArkServerError> {
        let request = match query {
            VtxoQuery::Outpoints(ids) => {
                let outpoints: Vec<_> = ids.iter().map(VtxoId::outpoint).collect();
                GetVtxosRequest::new_for_outpoints(&outpoints)
            }
            VtxoQuery::Scripts { scripts, filter } => {
                let addresses = scripts
                    .iter()
                    .map(|s| script_address(s))
                    .collect::<Result<Vec<_>, _>>()?;
                let request = GetVtxosRequest::new_for_addresses(addresses.into_iter());
                let filter = match filter {
                    VtxoFilter::All => None,
                    VtxoFilter::Spendable => Some(GetVtxosRequestFilter::Spendable),
                    VtxoFilter::Spent => Some(GetVtxosRequestFilter::Spent),
                    VtxoFilter::Pending => Some(GetVtxosRequestFilter::PendingOnly),
                    VtxoFilter::Recoverable => Some(GetVtxosRequestFilter::Recoverable),
                };
                match filter {
                    Some(f) => request.with_filter(f).map_err(protocol)?,
                    None => request,
                }
            }
        };
        let res = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner
                    .list_vtxos(request.clone())
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(res.vtxos.iter().map(to_server_vtxo).collect())
    }

    async fn get_asset(&self, asset_id: &str) -> Result<ServerAssetInfo, ArkServerError> {
        let id: ark_core::asset::AssetId = asset_id
            .parse()
            .map_err(|e| protocol(format!("asset id {asset_id}: {e}")))?;
        let info = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner.get_asset(id).await.map_err(map_error)
            })
            .await?;
        Ok(ServerAssetInfo {
            asset_id: info.asset_id.to_string(),
            supply: info.supply,
            metadata_hex: info.metadata,
            control_asset: info.control_asset_id.map(|c| c.to_string()),
        })
    }

    async fn subscribe_transactions(&self) -> Result<ArkTxStream, ArkServerError> {
        let stream = self
            .resilience
            .call(RetryPolicy::ONCE, || async {
                self.inner.get_tx_stream().await.map_err(map_error)
            })
            .await?;
        // ark-grpc keeps yielding a disconnect error after the stream ends: stop
        // after the first error so that the subscriber reconnects.
        let stream = stream.scan(false, |failed, item| {
            let out = if *failed {
                None
            } else {
                *failed = item.is_err();
                Some(item.map(to_event).map_err(map_error))
            };
            futures::future::ready(out)
        });
        Ok(Box::pin(stream))
    }

    async fn subscribe_scripts(
        &self,
        scripts: &[bitcoin::ScriptBuf],
        subscription: Option<&str>,
    ) -> Result<String, ArkServerError> {
        let addresses = scripts
            .iter()
            .map(|s| script_address(s))
            .collect::<Result<Vec<_>, _>>()?;
        let id = subscription.map(str::to_owned);
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner
                    .subscribe_to_scripts(addresses.clone(), id.clone())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    async fn unsubscribe_scripts(
        &self,
        subscription: &str,
        scripts: &[bitcoin::ScriptBuf],
    ) -> Result<(), ArkServerError> {
        let addresses = scripts
            .iter()
            .map(|s| script_address(s))
            .collect::<Result<Vec<_>, _>>()?;
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || async {
                self.inner
                    .unsubscribe_from_scripts(addresses.clone(), subscription.to_owned())
                    .await
                    .map_err(map_error)
            })
            .await
    }

    async fn round_terms(&self) -> Result<RoundTerms, ArkServerError> {
        self.rounds_terms().await
    }

    async fn register_intent(&self, intent: &IntentProof) -> Result<String, ArkServerError> {
        self.rounds_register(intent).await
    }

    async fn delete_intent(&self, intent: &IntentProof) -> Result<(), ArkServerError> {
        self.rounds_delete(intent).await
    }

    async fn confirm_registration(&self, intent_id: &str) -> Result<(), ArkServerError> {
        self.rounds_confirm(intent_id).await
    }

    async fn round_events(&self, topics: &[String]) -> Result<RoundEventStream, ArkServerError> {
        self.rounds_events(topics).await
    }

    async fn submit_tree_nonces(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        nonces: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        self.rounds_nonces(round_id, cosigner, nonces).await
    }

    async fn submit_tree_signatures(
        &self,
        round_id: &str,
        cosigner: &PublicKey,
        signatures: &BTreeMap<Txid, Vec<u8>>,
    ) -> Result<(), ArkServerError> {
        self.rounds_signatures(round_id, cosigner, signatures).await
    }

    async fn submit_signed_forfeits(
        &self,
        forfeits: &[Psbt],
        commitment: Option<&Psbt>,
    ) -> Result<(), ArkServerError> {
        self.rounds_forfeits(forfeits, commitment).await
    }

    async fn script_events(&self, subscription: &str) -> Result<ScriptEventStream, ArkServerError> {
        let stream = self
            .resilience
            .call(RetryPolicy::ONCE, || async {
                self.inner
                    .get_subscription(subscription.to_owned(), None)
                    .await
                    .map_err(map_error)
            })
            .await?;
        let stream = stream.filter_map(|item| async move {
            match item {
                Ok(ark_core::server::SubscriptionResponse::Event(e)) => Some(Ok(ScriptEvent {
                    txid: e.txid,
                    scripts: e.scripts,
                    new_vtxos: e.new_vtxos.iter().map(to_server_vtxo).collect(),
                    spent_vtxos: e.spent_vtxos.iter().map(to_server_vtxo).collect(),
                })),
                Ok(_) => None,
                Err(e) => Some(Err(map_error(e))),
            }
        });
        Ok(Box::pin(stream))
    }
}
