//! [`TapdClient`]: the [`Assets`] port over tapd's gRPC (taprpc, mintrpc,
//! universerpc, tapchannelrpc), with the pinned `tls.cert`, the hex macaroon
//! and the resilience layer. Works unchanged against the tapd simulator.

use ark_relay_core::backends::assets::{
    AssetInvoice, AssetInvoiceRequest, AssetPaymentUpdate, Assets, AssetsError, BatchState,
    MintBatch, MintRequest, ProofVerdict, RfqQuote, TapAsset, TapBalance,
};
use ark_relay_core::backends::lightning::{BackendErrorKind, BoxStream, PaymentHash, SendPayment};
use ark_relay_core::{AssetAmount, AssetId};
use ark_relay_proto::mintrpc::mint_client::MintClient;
use ark_relay_proto::tapchannelrpc::taproot_asset_channels_client::TaprootAssetChannelsClient;
use ark_relay_proto::taprpc::taproot_assets_client::TaprootAssetsClient;
use ark_relay_proto::universerpc::universe_client::UniverseClient;
use ark_relay_proto::{lnrpc, mintrpc, rfqrpc, routerrpc, tapchannelrpc, taprpc, universerpc};
use async_trait::async_trait;
use futures::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::Status;

use crate::daemon::{connect, ConnectError, DaemonConfig};
use crate::lnd::{kind_of, map_payment, AuthChannel, MAX_DECODE};
use crate::macaroon::MacaroonInterceptor;
use crate::resilience::{BreakerOpen, HealthRegistry, Resilience, RetryPolicy, Transient};

impl Transient for AssetsError {
    fn is_transient(&self) -> bool {
        AssetsError::is_transient(self)
    }
}

impl From<BreakerOpen> for AssetsError {
    fn from(e: BreakerOpen) -> Self {
        AssetsError::new(BackendErrorKind::Unavailable, e.to_string())
    }
}

fn err(s: Status) -> AssetsError {
    AssetsError::new(kind_of(s.code()), s.message())
}

fn bad(what: &str) -> AssetsError {
    AssetsError::new(
        BackendErrorKind::Internal,
        format!("tapd returned an invalid {what}"),
    )
}

fn asset_id(bytes: &[u8]) -> Result<AssetId, AssetsError> {
    let b: [u8; 32] = bytes.try_into().map_err(|_| bad("asset id"))?;
    Ok(AssetId::from_bytes(b))
}

fn map_batch(b: Option<mintrpc::MintingBatch>) -> Result<MintBatch, AssetsError> {
    let b = b.ok_or_else(|| bad("batch"))?;
    let state = match mintrpc::BatchState::try_from(b.state) {
        Ok(mintrpc::BatchState::Pending) => BatchState::Pending,
        Ok(mintrpc::BatchState::Broadcast) => BatchState::Broadcast,
        Ok(mintrpc::BatchState::Confirmed | mintrpc::BatchState::Finalized) => {
            BatchState::Confirmed
        }
        _ => BatchState::Other,
    };
    Ok(MintBatch {
        batch_key: b.batch_key,
        batch_txid: b.batch_txid,
        state,
        asset_names: b.assets.into_iter().map(|a| a.name).collect(),
    })
}

fn rate(r: Option<rfqrpc::FixedPoint>) -> (String, u32) {
    r.map_or((String::new(), 0), |r| (r.coefficient, r.scale))
}

/// A client of one tapd (standalone or inside litd).
#[derive(Debug, Clone)]
pub struct TapdClient {
    assets: TaprootAssetsClient<AuthChannel>,
    mint: MintClient<AuthChannel>,
    universe: UniverseClient<AuthChannel>,
    channels: TaprootAssetChannelsClient<AuthChannel>,
    resilience: Resilience,
}

impl TapdClient {
    /// A client for `cfg`, its breaker registered as `tapd` in `health`.
    pub fn new(cfg: &DaemonConfig, health: &HealthRegistry) -> Result<Self, ConnectError> {
        Self::with_resilience(cfg, Resilience::new("tapd", health))
    }

    /// A client with an explicit resilience layer.
    pub fn with_resilience(
        cfg: &DaemonConfig,
        resilience: Resilience,
    ) -> Result<Self, ConnectError> {
        let channel = connect(cfg)?;
        let mac = MacaroonInterceptor::new(cfg.macaroon.as_deref());
        let svc = || InterceptedService::new(channel.clone(), mac.clone());
        Ok(Self {
            assets: TaprootAssetsClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            mint: MintClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            universe: UniverseClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            channels: TaprootAssetChannelsClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            resilience,
        })
    }

    /// The resilience layer (breaker state for `/health`).
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

#[async_trait]
impl Assets for TapdClient {
    async fn mint_asset(&self, req: MintRequest) -> Result<MintBatch, AssetsError> {
        let msg = mintrpc::MintAssetRequest {
            asset: Some(mintrpc::MintAsset {
                name: req.name,
                amount: req.amount.get(),
                asset_meta: Some(taprpc::AssetMeta {
                    data: req.meta,
                    ..Default::default()
                }),
                decimal_display: req.decimal_display,
                ..Default::default()
            }),
            short_response: true,
        };
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.mint.clone();
                let msg = msg.clone();
                async move { c.mint_asset(msg).await.map_err(err) }
            })
            .await?;
        map_batch(r.into_inner().pending_batch)
    }

    async fn finalize_batch(&self, fee_rate_sat_per_kw: u32) -> Result<MintBatch, AssetsError> {
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.mint.clone();
                let msg = mintrpc::FinalizeBatchRequest {
                    short_response: true,
                    fee_rate: fee_rate_sat_per_kw,
                };
                async move { c.finalize_batch(msg).await.map_err(err) }
            })
            .await?;
        map_batch(r.into_inner().batch)
    }

    async fn list_assets(&self) -> Result<Vec<TapAsset>, AssetsError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.assets.clone();
                async move {
                    c.list_assets(taprpc::ListAssetRequest::default())
                        .await
                        .map_err(err)
                }
            })
            .await?;
        r.into_inner()
            .assets
            .into_iter()
            .map(|a| {
                let g = a.asset_genesis.ok_or_else(|| bad("asset genesis"))?;
                Ok(TapAsset {
                    asset_id: asset_id(&g.asset_id)?,
                    name: g.name,
                    amount: AssetAmount::new(a.amount),
                    genesis_point: g.genesis_point,
                    is_spent: a.is_spent,
                })
            })
            .collect()
    }

    async fn list_balances(&self) -> Result<Vec<TapBalance>, AssetsError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.assets.clone();
                let msg = taprpc::ListBalancesRequest {
                    group_by: Some(taprpc::list_balances_request::GroupBy::AssetId(true)),
                    ..Default::default()
                };
                async move { c.list_balances(msg).await.map_err(err) }
            })
            .await?;
        let mut out: Vec<TapBalance> = r
            .into_inner()
            .asset_balances
            .into_values()
            .map(|b| {
                let g = b.asset_genesis.ok_or_else(|| bad("asset genesis"))?;
                Ok(TapBalance {
                    asset_id: asset_id(&g.asset_id)?,
                    name: g.name,
                    balance: AssetAmount::new(b.balance),
                })
            })
            .collect::<Result<_, AssetsError>>()?;
        out.sort_by_key(|b| b.asset_id);
        Ok(out)
    }

    async fn verify_proof(&self, raw_proof: &[u8]) -> Result<ProofVerdict, AssetsError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.assets.clone();
                let msg = taprpc::ProofFile {
                    raw_proof_file: raw_proof.to_vec(),
                    genesis_point: String::new(),
                };
                async move { c.verify_proof(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        let asset = r.decoded_proof.and_then(|d| d.asset);
        let id = asset
            .as_ref()
            .and_then(|a| a.asset_genesis.as_ref())
            .map(|g| asset_id(&g.asset_id))
            .transpose()?;
        Ok(ProofVerdict {
            valid: r.valid,
            asset_id: if r.valid { id } else { None },
            amount: AssetAmount::new(if r.valid {
                asset.map_or(0, |a| a.amount)
            } else {
                0
            }),
        })
    }

    async fn insert_proof(&self, asset: AssetId, raw_proof: &[u8]) -> Result<(), AssetsError> {
        let msg = universerpc::AssetProof {
            key: Some(universerpc::UniverseKey {
                id: Some(universerpc::Id {
                    id: Some(universerpc::id::Id::AssetId(asset.as_bytes().to_vec())),
                    proof_type: universerpc::ProofType::Issuance as i32,
                }),
                leaf_key: None,
            }),
            asset_leaf: Some(universerpc::AssetLeaf {
                asset: None,
                proof: raw_proof.to_vec(),
            }),
        };
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.universe.clone();
                let msg = msg.clone();
                async move { c.insert_proof(msg).await.map_err(err) }
            })
            .await
            .map(|_| ())
    }

    async fn add_invoice(&self, req: AssetInvoiceRequest) -> Result<AssetInvoice, AssetsError> {
        let msg = tapchannelrpc::AddInvoiceRequest {
            asset_id: req.asset_id.as_bytes().to_vec(),
            asset_amount: req.asset_amount.get(),
            peer_pubkey: req.peer_pubkey.unwrap_or_default(),
            invoice_request: Some(lnrpc::Invoice {
                memo: req.memo,
                expiry: i64::try_from(req.expiry_secs).unwrap_or(i64::MAX),
                ..Default::default()
            }),
            hodl_invoice: req.hodl_hash.map(|h| tapchannelrpc::HodlInvoice {
                payment_hash: h.0.to_vec(),
            }),
            ..Default::default()
        };
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.channels.clone();
                let msg = msg.clone();
                async move { c.add_invoice(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        let q = r.accepted_buy_quote.ok_or_else(|| bad("buy quote"))?;
        let inv = r.invoice_result.ok_or_else(|| bad("invoice result"))?;
        let (rate_coefficient, rate_scale) = rate(q.ask_asset_rate);
        Ok(AssetInvoice {
            quote: RfqQuote {
                peer: q.peer,
                id: q.id,
                scid: q.scid,
                rate_coefficient,
                rate_scale,
                expiry_unix: q.expiry,
            },
            hash: PaymentHash::from_slice(&inv.r_hash).ok_or_else(|| bad("r_hash"))?,
            payment_request: inv.payment_request,
            add_index: inv.add_index,
        })
    }

    async fn send_payment(
        &self,
        asset: AssetId,
        peer_pubkey: Option<Vec<u8>>,
        req: SendPayment,
    ) -> Result<BoxStream<AssetPaymentUpdate, AssetsError>, AssetsError> {
        let msg = tapchannelrpc::SendPaymentRequest {
            asset_id: asset.as_bytes().to_vec(),
            peer_pubkey: peer_pubkey.unwrap_or_default(),
            payment_request: Some(routerrpc::SendPaymentRequest {
                payment_request: req.payment_request,
                amt_msat: req
                    .amt_msat
                    .map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX)),
                fee_limit_msat: i64::try_from(req.fee_limit_msat).unwrap_or(i64::MAX),
                timeout_seconds: req.timeout_seconds,
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.channels.clone();
                let msg = msg.clone();
                async move { c.send_payment(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        use tapchannelrpc::send_payment_response::Result as R;
        Ok(Box::pin(s.map(|m| {
            let m = m.map_err(err)?;
            match m.result {
                Some(R::AcceptedSellOrder(q)) => {
                    let (rate_coefficient, rate_scale) = rate(q.bid_asset_rate);
                    Ok(AssetPaymentUpdate::Quote(RfqQuote {
                        peer: q.peer,
                        id: q.id,
                        scid: q.scid,
                        rate_coefficient,
                        rate_scale,
                        expiry_unix: q.expiry,
                    }))
                }
                Some(R::PaymentResult(p)) => map_payment(p)
                    .map(AssetPaymentUpdate::Payment)
                    .map_err(|e| AssetsError::new(e.kind, e.message)),
                None => Err(bad("payment update")),
            }
        })))
    }
}
