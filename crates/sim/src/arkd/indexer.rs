//! The arkd simulator's `IndexerService`: VTXO queries with arkd's filters
//! and paging (spent / swept / recoverable / expiry), script subscriptions,
//! the VTXO chain and commitment-tx lookups, and `GetAsset` (supply,
//! metadata and control asset of an asset issued on Ark).

use std::pin::Pin;
use std::sync::MutexGuard;

use bitcoin::{OutPoint, ScriptBuf};
use futures::Stream;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use ark_relay_ark::asset::encode_metadata;
use ark_relay_proto::ark::v1 as pb;
use ark_relay_proto::ark::v1::indexer_service_server::IndexerService;

use super::{invalid, to_indexer_vtxo, ArkdSim, VtxoState};

/// Indexer RPCs the simulator does not serve (listed in docs/backends.md).
fn unserved(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not served by the arkd simulator"))
}

type SubscriptionStream =
    Pin<Box<dyn Stream<Item = Result<pb::GetSubscriptionResponse, Status>> + Send>>;

impl ArkdSim {
    fn subscriptions(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<String, std::collections::HashSet<String>>> {
        match self.inner.subscriptions.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[tonic::async_trait]
impl IndexerService for ArkdSim {
    async fn subscribe_for_scripts(
        &self,
        request: Request<pb::SubscribeForScriptsRequest>,
    ) -> Result<Response<pb::SubscribeForScriptsResponse>, Status> {
        self.fault("SubscribeForScripts")?;
        let req = request.into_inner();
        for script in &req.scripts {
            ScriptBuf::from_hex(script)
                .map_err(|e| invalid("INVALID_REQUEST", format!("script {script}: {e}")))?;
        }
        let mut subs = self.subscriptions();
        let id = if req.subscription_id.is_empty() {
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        } else if subs.contains_key(&req.subscription_id) {
            req.subscription_id
        } else {
            return Err(Status::not_found("unknown subscription"));
        };
        subs.entry(id.clone()).or_default().extend(req.scripts);
        Ok(Response::new(pb::SubscribeForScriptsResponse {
            subscription_id: id,
        }))
    }

    async fn unsubscribe_for_scripts(
        &self,
        request: Request<pb::UnsubscribeForScriptsRequest>,
    ) -> Result<Response<pb::UnsubscribeForScriptsResponse>, Status> {
        let req = request.into_inner();
        let mut subs = self.subscriptions();
        let set = subs
            .get_mut(&req.subscription_id)
            .ok_or_else(|| Status::not_found("unknown subscription"))?;
        if req.scripts.is_empty() {
            set.clear();
        } else {
            for s in &req.scripts {
                set.remove(s);
            }
        }
        Ok(Response::new(pb::UnsubscribeForScriptsResponse {}))
    }

    type GetSubscriptionStream = SubscriptionStream;

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<SubscriptionStream>, Status> {
        self.fault("GetSubscription")?;
        let id = request.into_inner().subscription_id;
        if !self.subscriptions().contains_key(&id) {
            return Err(Status::not_found("unknown subscription"));
        }
        let sim = self.clone();
        let started = pb::GetSubscriptionResponse {
            data: Some(pb::get_subscription_response::Data::SubscriptionStarted(
                pb::SubscriptionStartedEvent {
                    subscription_id: id.clone(),
                },
            )),
        };
        let events =
            BroadcastStream::new(self.inner.script_events.subscribe()).filter_map(move |item| {
                let mut event = item.ok()?;
                let watched = sim.subscriptions().get(&id).cloned().unwrap_or_default();
                let mut scripts: Vec<String> = event
                    .new_vtxos
                    .iter()
                    .chain(&event.spent_vtxos)
                    .chain(&event.swept_vtxos)
                    .map(|v| v.script.clone())
                    .filter(|s| watched.contains(s))
                    .collect();
                scripts.sort();
                scripts.dedup();
                if scripts.is_empty() {
                    return None;
                }
                event.scripts = scripts;
                Some(Ok(pb::GetSubscriptionResponse {
                    data: Some(pb::get_subscription_response::Data::Event(event)),
                }))
            });
        let stream = tokio_stream::iter([Ok(started)]).chain(events);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_vtxos(
        &self,
        request: Request<pb::GetVtxosRequest>,
    ) -> Result<Response<pb::GetVtxosResponse>, Status> {
        self.fault("GetVtxos")?;
        let req = request.into_inner();
        if req.scripts.is_empty() == req.outpoints.is_empty() {
            return Err(invalid(
                "INVALID_REQUEST",
                "exactly one of scripts and outpoints is required",
            ));
        }
        let scripts = req
            .scripts
            .iter()
            .map(|s| ScriptBuf::from_hex(s).map_err(|e| invalid("INVALID_REQUEST", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let outpoints = req
            .outpoints
            .iter()
            .map(|o| {
                o.parse::<OutPoint>()
                    .map_err(|e| invalid("INVALID_REQUEST", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = self.state();
        let vtxos: Vec<pb::IndexerVtxo> = state
            .vtxos
            .values()
            .filter(|v| {
                if !outpoints.is_empty() {
                    return outpoints.contains(&v.outpoint);
                }
                let unspent = v.state == VtxoState::Spendable;
                // arkd: recoverable = unspent and swept (no forfeit needed).
                let recoverable = unspent && v.swept;
                scripts.contains(&v.script)
                    && match v.state {
                        VtxoState::Spendable => !req.spent_only && !req.pending_only,
                        VtxoState::Pending(_) => !req.spendable_only && !req.renewable_only,
                        VtxoState::Spent(_) | VtxoState::Settled(_) => {
                            !req.spendable_only && !req.pending_only && !req.renewable_only
                        }
                    }
                    && (!req.spendable_only || !v.swept)
                    && (!req.recoverable_only || recoverable)
            })
            .map(to_indexer_vtxo)
            .collect();
        drop(state);
        // arkd's paging: pages numbered from 1, `total` = number of pages.
        let (vtxos, page) = match req.page {
            Some(p) if p.size > 0 => {
                let size = usize::try_from(p.size).unwrap_or(usize::MAX);
                let index = usize::try_from(p.index.max(1)).unwrap_or(1);
                let total = vtxos.len().div_ceil(size).max(1);
                let page: Vec<_> = vtxos
                    .into_iter()
                    .skip((index - 1).saturating_mul(size))
                    .take(size)
                    .collect();
                let total = i32::try_from(total).unwrap_or(i32::MAX);
                let current = i32::try_from(index).unwrap_or(i32::MAX);
                (
                    page,
                    pb::IndexerPageResponse {
                        current,
                        next: current.saturating_add(1).min(total),
                        total,
                    },
                )
            }
            _ => {
                let total = i32::try_from(vtxos.len()).unwrap_or(i32::MAX);
                (
                    vtxos,
                    pb::IndexerPageResponse {
                        current: 0,
                        next: -1,
                        total,
                    },
                )
            }
        };
        Ok(Response::new(pb::GetVtxosResponse {
            vtxos,
            page: Some(page),
        }))
    }

    async fn get_commitment_tx(
        &self,
        request: Request<pb::GetCommitmentTxRequest>,
    ) -> Result<Response<pb::GetCommitmentTxResponse>, Status> {
        self.fault("GetCommitmentTx")?;
        let txid: bitcoin::Txid = request
            .into_inner()
            .txid
            .parse()
            .map_err(|_| invalid("INVALID_REQUEST", "malformed txid"))?;
        self.commitment_info(&txid)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("commitment tx {txid} not found")))
    }

    async fn get_vtxo_chain(
        &self,
        request: Request<pb::GetVtxoChainRequest>,
    ) -> Result<Response<pb::GetVtxoChainResponse>, Status> {
        self.fault("GetVtxoChain")?;
        let o = request
            .into_inner()
            .outpoint
            .ok_or_else(|| invalid("INVALID_REQUEST", "missing outpoint"))?;
        let outpoint = OutPoint {
            txid: o
                .txid
                .parse()
                .map_err(|_| invalid("INVALID_REQUEST", "malformed txid"))?,
            vout: o.vout,
        };
        let chain = self
            .vtxo_chain(&outpoint)
            .ok_or_else(|| Status::not_found(format!("vtxo {outpoint} not found")))?;
        Ok(Response::new(pb::GetVtxoChainResponse {
            chain,
            page: None,
            auth_token: String::new(),
            next_page_token: String::new(),
        }))
    }
    async fn get_forfeit_txs(
        &self,
        _: Request<pb::GetForfeitTxsRequest>,
    ) -> Result<Response<pb::GetForfeitTxsResponse>, Status> {
        Err(unserved("get_forfeit_txs"))
    }

    async fn get_connectors(
        &self,
        _: Request<pb::GetConnectorsRequest>,
    ) -> Result<Response<pb::GetConnectorsResponse>, Status> {
        Err(unserved("get_connectors"))
    }

    async fn get_vtxo_tree(
        &self,
        _: Request<pb::GetVtxoTreeRequest>,
    ) -> Result<Response<pb::GetVtxoTreeResponse>, Status> {
        Err(unserved("get_vtxo_tree"))
    }

    async fn get_vtxo_tree_leaves(
        &self,
        _: Request<pb::GetVtxoTreeLeavesRequest>,
    ) -> Result<Response<pb::GetVtxoTreeLeavesResponse>, Status> {
        Err(unserved("get_vtxo_tree_leaves"))
    }

    async fn get_virtual_txs(
        &self,
        _: Request<pb::GetVirtualTxsRequest>,
    ) -> Result<Response<pb::GetVirtualTxsResponse>, Status> {
        Err(unserved("get_virtual_txs"))
    }

    /// arkd's `GetAsset`: empty id → InvalidArgument; an id no finalized tx
    /// issued → Internal "asset … not found" (arkd's service errors before
    /// its handler's NotFound branch); metadata as the hex of its serialized
    /// list ("" when none), control asset as its id ("" when none).
    async fn get_asset(
        &self,
        request: Request<pb::GetAssetRequest>,
    ) -> Result<Response<pb::GetAssetResponse>, Status> {
        self.fault("GetAsset")?;
        let asset_id = request.into_inner().asset_id;
        if asset_id.is_empty() {
            return Err(Status::invalid_argument("missing asset id"));
        }
        let Some((record, supply)) = self.state().asset_info(&asset_id) else {
            return Err(Status::internal(format!("asset {asset_id} not found")));
        };
        let metadata = if record.metadata.is_empty() {
            String::new()
        } else {
            hex::encode(encode_metadata(&record.metadata))
        };
        Ok(Response::new(pb::GetAssetResponse {
            asset_id,
            supply: supply.to_string(),
            metadata,
            control_asset: record.control.map(|c| c.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_batch_sweep_transactions(
        &self,
        _: Request<pb::GetBatchSweepTransactionsRequest>,
    ) -> Result<Response<pb::GetBatchSweepTransactionsResponse>, Status> {
        Err(unserved("get_batch_sweep_transactions"))
    }

    async fn update_subscription(
        &self,
        _: Request<pb::UpdateSubscriptionRequest>,
    ) -> Result<Response<pb::UpdateSubscriptionResponse>, Status> {
        Err(unserved("update_subscription"))
    }
}
