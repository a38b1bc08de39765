//! The arkd simulator: arkd's `ArkService` — the off-chain path (GetInfo,
//! SubmitTx, FinalizeTx, GetPendingTx, GetTransactionsStream) and batch rounds
//! (RegisterIntent … SubmitSignedForfeitTxs, GetEventStream; see [`round`]) —
//! and `IndexerService` ([`indexer`]), served from arkd's own protos so that
//! the official `ark-grpc`/`ark-client` talk to it unchanged, plus the
//! sim-only `ArkdSimAdmin` service. It shares a [`Chain`] with the other
//! simulators: boarding UTXOs, commitment and sweep txs live there.
//!
//! The rules live in [`state`] (no gRPC); this module maps messages and errors.
//! Errors are sent like arkd's: a gRPC status whose details are a
//! `google.rpc.Status` holding an `ark.v1.ErrorDetails` with the error name.

pub mod assets;
mod batch_rpc;
mod batch_view;
mod error;
mod events;
pub mod indexer;
pub mod round;
pub mod state;
mod unroll;
mod wire;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{CompressedPublicKey, Network, OutPoint, Txid};
use futures::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::{BroadcastStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::{PubKey, Sats};
use ark_relay_proto::ark::v1 as pb;
use ark_relay_proto::ark::v1::ark_service_server::{ArkService, ArkServiceServer};
use ark_relay_proto::ark::v1::indexer_service_server::IndexerServiceServer;
use ark_relay_proto::simrpc::arkd as admin;

use crate::chain::Chain;
use round::session::OperatorKeys;
pub use round::{Phase, RoundConfig, Rounds};
use state::{Finalized, State};
pub use state::{SimError, SimVtxo, VtxoState};
pub use wire::status;
pub(crate) use wire::{decode_psbt, encode_psbt, invalid, now, to_indexer_vtxo, to_vtxo};

/// Parameters of the simulated server.
#[derive(Debug, Clone)]
pub struct ArkdSimConfig {
    /// The signer's secret key (also the forfeit key).
    pub signer_secret: [u8; 32],
    /// Exit delay of new VTXOs.
    pub unilateral_exit_delay: RelativeLocktime,
    /// CSV delay of the checkpoint leaf.
    pub checkpoint_exit_delay: RelativeLocktime,
    /// Dust limit.
    pub dust: Sats,
    /// Batch rounds: timing and batch expiry.
    pub round: RoundConfig,
    /// SubmitTx applies arkd's asset supply rules to every asset
    /// ([`assets::Rules::Full`], the default: arkd's behaviour). Off, they
    /// apply to issuances and to every asset issued on Ark, and an asset id
    /// the simulator never saw issued (a *bridged* id: LP tokens and lifted
    /// permissionless Taproot Assets until they have an Arkade genesis) may be
    /// minted and listed on inputs that do not hold it
    /// ([`assets::Rules::Bridged`]). Colour seeded with
    /// [`ArkdSim::fund_with_assets`] is held at arkd, so strict rules accept
    /// spending it.
    pub strict_assets: bool,
}

impl Default for ArkdSimConfig {
    fn default() -> Self {
        let mut signer_secret = [0x5a; 32];
        signer_secret[0] = 0x01;
        Self {
            signer_secret,
            unilateral_exit_delay: RelativeLocktime::blocks(144),
            checkpoint_exit_delay: RelativeLocktime::blocks(10),
            dust: Sats::new(330),
            round: RoundConfig::default(),
            strict_assets: true,
        }
    }
}

struct Inner {
    server: ServerInfo,
    signer: Keypair,
    state: Mutex<State>,
    events: broadcast::Sender<pb::GetTransactionsStreamResponse>,
    /// Script subscriptions: id → scripts (hex).
    subscriptions: Mutex<std::collections::HashMap<String, std::collections::HashSet<String>>>,
    /// Every finalized tx as an indexer event, before per-subscription filtering.
    script_events: broadcast::Sender<pb::IndexerSubscriptionEvent>,
    /// The chain boarding UTXOs, commitment and sweep txs live on.
    chain: Chain,
    /// Intent queue, round in progress, finalized batches.
    rounds: Mutex<Rounds>,
    /// `GetEventStream` listeners.
    broker: events::Broker,
    /// Wakes the round loop when round state changed.
    wake: tokio::sync::Notify,
    /// Starts a round without waiting for the registration window.
    trigger: tokio::sync::Notify,
    /// The operator's keys.
    keys: OperatorKeys,
    /// Round parameters.
    round_config: RoundConfig,
}

/// The arkd simulator. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct ArkdSim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArkdSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArkdSim")
            .field("signer", self.inner.server.signer())
            .finish()
    }
}

/// A bad configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid arkd simulator configuration: {0}")]
pub struct ConfigError(String);

impl ArkdSim {
    /// A simulator with `config`, on a chain of its own.
    pub fn new(config: ArkdSimConfig) -> Result<Self, ConfigError> {
        Self::with_chain(config, Chain::default())
    }

    /// A simulator with `config` on `chain` (shared with the other
    /// simulators): boarding outputs are read from it, commitment and sweep
    /// txs broadcast to it, and every mined block runs the sweeper.
    pub fn with_chain(config: ArkdSimConfig, chain: Chain) -> Result<Self, ConfigError> {
        let secp = Secp256k1::new();
        let sk =
            SecretKey::from_slice(&config.signer_secret).map_err(|e| ConfigError(e.to_string()))?;
        let signer = Keypair::from_secret_key(&secp, &sk);
        config
            .round
            .fees
            .estimator()
            .map_err(|e| ConfigError(format!("intent fee programs: {e}")))?;
        let x = signer.x_only_public_key().0;
        let server = ServerInfo::new(
            x,
            x,
            config.unilateral_exit_delay,
            config.checkpoint_exit_delay,
            config.dust,
            Network::Regtest,
        );
        let (events, _) = broadcast::channel(1024);
        let mut state = State::default();
        state.asset_rules = if config.strict_assets {
            assets::Rules::Full
        } else {
            assets::Rules::Bridged
        };
        let tree_key = Keypair::new(&secp, &mut rand::thread_rng());
        let sim = Self {
            inner: Arc::new(Inner {
                server,
                signer,
                state: Mutex::new(state),
                events,
                subscriptions: Mutex::new(std::collections::HashMap::new()),
                script_events: broadcast::channel(1024).0,
                chain: chain.clone(),
                rounds: Mutex::new(Rounds::default()),
                broker: events::Broker::new(config.round.heartbeat),
                wake: tokio::sync::Notify::new(),
                trigger: tokio::sync::Notify::new(),
                keys: OperatorKeys { signer, tree_key },
                round_config: config.round,
            }),
        };
        let weak = Arc::downgrade(&sim.inner);
        chain.on_block(move |_| {
            if let Some(inner) = weak.upgrade() {
                ArkdSim { inner }.sweep_expired();
            }
        });
        Ok(sim)
    }

    /// The chain this simulator uses.
    pub fn chain(&self) -> &Chain {
        &self.inner.chain
    }

    /// The server parameters it advertises.
    pub fn server_info(&self) -> &ServerInfo {
        &self.inner.server
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        match self.inner.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn fault(&self, rpc: &str) -> Result<(), Status> {
        self.state().take_fault(rpc).map_err(|e| status(&e))
    }

    /// Creates a settled VTXO of `amount` locked to `owner`'s default VTXO script.
    pub fn fund(&self, owner: &PubKey, amount: Sats) -> SimVtxo {
        let script = self.inner.server.default_vtxo(owner).script_pubkey();
        self.state().fund(script, amount.get(), now())
    }

    /// Like [`Self::fund`], the VTXO holding `assets` (colour seeded outside
    /// Ark, as a test harness does; the indexer then reports it).
    pub fn fund_with_assets(
        &self,
        owner: &PubKey,
        amount: Sats,
        assets: assets::Denominations,
    ) -> SimVtxo {
        let script = self.inner.server.default_vtxo(owner).script_pubkey();
        let mut state = self.state();
        let mut v = state.fund(script, amount.get(), now());
        v.assets = assets;
        state.vtxos.insert(v.outpoint, v.clone());
        v
    }

    /// A copy of one VTXO.
    pub fn vtxo(&self, outpoint: &OutPoint) -> Option<SimVtxo> {
        self.state().vtxos.get(outpoint).cloned()
    }

    /// A copy of every VTXO.
    pub fn vtxos(&self) -> Vec<SimVtxo> {
        self.state().vtxos.values().cloned().collect()
    }

    /// Scripts the next `count` calls of `rpc` to fail with `error`.
    pub fn inject_fault(&self, rpc: &str, error: SimError, count: u32) {
        let mut state = self.state();
        let queue = state.faults.entry(rpc.to_owned()).or_default();
        for _ in 0..count {
            queue.push_back(error.clone());
        }
    }

    /// The three gRPC services, ready to add to a tonic router.
    pub fn router(&self) -> tonic::service::Routes {
        tonic::service::Routes::new(ArkServiceServer::new(self.clone()))
            .add_service(IndexerServiceServer::new(self.clone()))
            .add_service(admin::arkd_sim_admin_server::ArkdSimAdminServer::new(
                self.clone(),
            ))
    }

    /// Serves on `listener` until `shutdown` resolves. Every connection gets
    /// `TCP_NODELAY`, as Go's net package gives arkd's by default: with Nagle
    /// on, a response written in two parts waited for the client's delayed
    /// ACK (~40 ms per `SubmitTx`, measured by the transfer bench).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = TcpListenerStream::new(listener).map(|conn| {
            let conn = conn?;
            conn.set_nodelay(true)?;
            Ok::<_, std::io::Error>(conn)
        });
        tonic::transport::Server::builder()
            .add_routes(self.router())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }

    /// Binds 127.0.0.1 on `port` (0 = any) and serves in a background task.
    /// Returns the bound address and a handle that stops the server when dropped
    /// or when [`SimServer::stop`] is called.
    pub async fn spawn(self, port: u16) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rounds = tokio::spawn(self.clone().run_rounds());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = self.serve(listener, shutdown).await {
                tracing::warn!(error = %e, "arkd simulator stopped");
            }
        });
        Ok(SimServer {
            addr,
            stop: Some(tx),
            task: Some(task),
            rounds: Some(rounds),
        })
    }

    fn publish(&self, done: Finalized) {
        let mut checkpoint_txs = std::collections::HashMap::new();
        for (v, cp) in &done.spent {
            checkpoint_txs.insert(
                v.outpoint.to_string(),
                pb::TxData {
                    txid: cp.to_string(),
                    tx: String::new(),
                },
            );
        }
        let note = pb::TxNotification {
            txid: done.txid.to_string(),
            tx: encode_psbt(&done.ark_tx),
            spent_vtxos: done.spent.iter().map(|(v, _)| to_vtxo(v)).collect(),
            spendable_vtxos: done.created.iter().map(to_vtxo).collect(),
            checkpoint_txs,
            swept_vtxos: Vec::new(),
        };
        let indexed = pb::IndexerSubscriptionEvent {
            txid: done.txid.to_string(),
            scripts: Vec::new(),
            new_vtxos: done.created.iter().map(to_indexer_vtxo).collect(),
            spent_vtxos: done.spent.iter().map(|(v, _)| to_indexer_vtxo(v)).collect(),
            tx: note.tx.clone(),
            checkpoint_txs: done
                .spent
                .iter()
                .map(|(v, cp)| {
                    (
                        v.outpoint.to_string(),
                        pb::IndexerTxData {
                            txid: cp.to_string(),
                            tx: String::new(),
                        },
                    )
                })
                .collect(),
            swept_vtxos: Vec::new(),
        };
        let _ = self.inner.script_events.send(indexed);
        let _ = self.inner.events.send(pb::GetTransactionsStreamResponse {
            data: Some(pb::get_transactions_stream_response::Data::ArkTx(note)),
        });
    }
}

/// A running simulator server.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The round loop.
    rounds: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Stops the server and waits for it to close.
    pub async fn stop(mut self) {
        if let Some(r) = self.rounds.take() {
            r.abort();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(r) = self.rounds.take() {
            r.abort();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

type TxStream =
    Pin<Box<dyn Stream<Item = Result<pb::GetTransactionsStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ArkService for ArkdSim {
    async fn get_info(
        &self,
        _: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        self.fault("GetInfo")?;
        let s = &self.inner.server;
        let pk = self.inner.signer.public_key();
        let forfeit_address = bitcoin::Address::p2wpkh(&CompressedPublicKey(pk), Network::Regtest);
        Ok(Response::new(pb::GetInfoResponse {
            version: "ark-relay-sim-arkd/0.1".into(),
            signer_pubkey: pk.to_string(),
            forfeit_pubkey: pk.to_string(),
            forfeit_address: forfeit_address.to_string(),
            checkpoint_tapscript: s.checkpoint_tapscript().to_hex_string(),
            network: "regtest".into(),
            session_duration: 10,
            unilateral_exit_delay: s.unilateral_exit_delay().to_server_value(),
            boarding_exit_delay: s.unilateral_exit_delay().to_server_value(),
            utxo_min_amount: -1,
            utxo_max_amount: -1,
            vtxo_min_amount: -1,
            vtxo_max_amount: -1,
            dust: i64::try_from(s.dust().get()).unwrap_or(i64::MAX),
            fees: Some(pb::FeeInfo {
                intent_fee: Some(pb::IntentFeeInfo {
                    offchain_input: self.inner.round_config.fees.offchain_input.clone(),
                    offchain_output: self.inner.round_config.fees.offchain_output.clone(),
                    onchain_input: self.inner.round_config.fees.onchain_input.clone(),
                    onchain_output: self.inner.round_config.fees.onchain_output.clone(),
                }),
                tx_fee_rate: String::new(),
            }),
            scheduled_session: None,
            deprecated_signers: Vec::new(),
            service_status: Default::default(),
            digest: String::new(),
            max_tx_weight: 40_000,
            max_op_return_outputs: state::MAX_OP_RETURN_OUTPUTS as i64,
        }))
    }

    async fn submit_tx(
        &self,
        request: Request<pb::SubmitTxRequest>,
    ) -> Result<Response<pb::SubmitTxResponse>, Status> {
        self.fault("SubmitTx")?;
        let req = request.into_inner();
        let ark_tx = decode_psbt(&req.signed_ark_tx)?;
        let checkpoints = req
            .checkpoint_txs
            .iter()
            .map(|c| decode_psbt(c))
            .collect::<Result<Vec<_>, _>>()?;
        let (ark_txid, final_ark, cps) = self
            .state()
            .submit(
                &self.inner.server,
                &self.inner.signer,
                &ark_tx,
                &checkpoints,
            )
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::SubmitTxResponse {
            ark_txid: ark_txid.to_string(),
            final_ark_tx: encode_psbt(&final_ark),
            signed_checkpoint_txs: cps.iter().map(encode_psbt).collect(),
        }))
    }

    async fn finalize_tx(
        &self,
        request: Request<pb::FinalizeTxRequest>,
    ) -> Result<Response<pb::FinalizeTxResponse>, Status> {
        self.fault("FinalizeTx")?;
        let req = request.into_inner();
        let txid: Txid = req
            .ark_txid
            .parse()
            .map_err(|_| invalid("TX_NOT_FOUND", "malformed ark_txid"))?;
        let checkpoints = req
            .final_checkpoint_txs
            .iter()
            .map(|c| decode_psbt(c))
            .collect::<Result<Vec<_>, _>>()?;
        let done = self
            .state()
            .finalize(txid, &checkpoints, now())
            .map_err(|e| status(&e))?;
        if let Some(done) = done {
            self.publish(done);
        }
        Ok(Response::new(pb::FinalizeTxResponse {}))
    }

    async fn get_pending_tx(
        &self,
        request: Request<pb::GetPendingTxRequest>,
    ) -> Result<Response<pb::GetPendingTxResponse>, Status> {
        self.fault("GetPendingTx")?;
        let Some(pb::get_pending_tx_request::Identifier::Intent(intent)) =
            request.into_inner().identifier
        else {
            return Err(invalid("INVALID_INTENT_PROOF", "missing intent"));
        };
        let proof = decode_psbt(&intent.proof)?;
        let pending = self
            .state()
            .pending_for(&self.inner.server, &proof, &intent.message)
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::GetPendingTxResponse {
            pending_txs: pending
                .into_iter()
                .map(|(txid, p)| pb::PendingTx {
                    ark_txid: txid.to_string(),
                    final_ark_tx: encode_psbt(&p.final_ark_tx),
                    signed_checkpoint_txs: p.signed_checkpoints.iter().map(encode_psbt).collect(),
                })
                .collect(),
        }))
    }

    async fn register_intent(
        &self,
        request: Request<pb::RegisterIntentRequest>,
    ) -> Result<Response<pb::RegisterIntentResponse>, Status> {
        self.rpc_register_intent(request.into_inner()).await
    }

    async fn estimate_intent_fee(
        &self,
        request: Request<pb::EstimateIntentFeeRequest>,
    ) -> Result<Response<pb::EstimateIntentFeeResponse>, Status> {
        self.rpc_estimate_intent_fee(request.into_inner()).await
    }

    async fn delete_intent(
        &self,
        request: Request<pb::DeleteIntentRequest>,
    ) -> Result<Response<pb::DeleteIntentResponse>, Status> {
        self.rpc_delete_intent(request.into_inner()).await
    }

    async fn confirm_registration(
        &self,
        request: Request<pb::ConfirmRegistrationRequest>,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        self.rpc_confirm_registration(request.into_inner()).await
    }

    async fn submit_tree_nonces(
        &self,
        request: Request<pb::SubmitTreeNoncesRequest>,
    ) -> Result<Response<pb::SubmitTreeNoncesResponse>, Status> {
        self.rpc_submit_tree_nonces(request.into_inner()).await
    }

    async fn submit_tree_signatures(
        &self,
        request: Request<pb::SubmitTreeSignaturesRequest>,
    ) -> Result<Response<pb::SubmitTreeSignaturesResponse>, Status> {
        self.rpc_submit_tree_signatures(request.into_inner()).await
    }

    async fn submit_signed_forfeit_txs(
        &self,
        request: Request<pb::SubmitSignedForfeitTxsRequest>,
    ) -> Result<Response<pb::SubmitSignedForfeitTxsResponse>, Status> {
        self.rpc_submit_signed_forfeit_txs(request.into_inner())
            .await
    }

    type GetEventStreamStream = events::EventStream;

    async fn get_event_stream(
        &self,
        request: Request<pb::GetEventStreamRequest>,
    ) -> Result<Response<events::EventStream>, Status> {
        self.rpc_get_event_stream(request.into_inner()).await
    }

    async fn update_stream_topics(
        &self,
        request: Request<pb::UpdateStreamTopicsRequest>,
    ) -> Result<Response<pb::UpdateStreamTopicsResponse>, Status> {
        self.rpc_update_stream_topics(request.into_inner()).await
    }

    async fn get_intent(
        &self,
        _: Request<pb::GetIntentRequest>,
    ) -> Result<Response<pb::GetIntentResponse>, Status> {
        Err(Status::unimplemented(
            "GetIntent is not served by the simulator",
        ))
    }

    type GetTransactionsStreamStream = TxStream;

    async fn get_transactions_stream(
        &self,
        _: Request<pb::GetTransactionsStreamRequest>,
    ) -> Result<Response<TxStream>, Status> {
        self.fault("GetTransactionsStream")?;
        let stream = BroadcastStream::new(self.inner.events.subscribe())
            .filter_map(|item| item.ok().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl admin::arkd_sim_admin_server::ArkdSimAdmin for ArkdSim {
    async fn fund_vtxo(
        &self,
        request: Request<admin::FundVtxoRequest>,
    ) -> Result<Response<admin::FundVtxoResponse>, Status> {
        let req = request.into_inner();
        let owner: PubKey = req
            .owner
            .parse()
            .map_err(|_| Status::invalid_argument("owner must be an x-only key (hex)"))?;
        if req.amount == 0 {
            return Err(Status::invalid_argument("amount must be positive"));
        }
        let vtxo = self.fund(&owner, Sats::new(req.amount));
        let script = self.inner.server.default_vtxo(&owner);
        Ok(Response::new(admin::FundVtxoResponse {
            txid: vtxo.outpoint.txid.to_string(),
            vout: vtxo.outpoint.vout,
            script: vtxo.script.to_hex_string(),
            tapscripts: script.leaves().iter().map(|l| l.to_hex_string()).collect(),
        }))
    }

    async fn start_round(
        &self,
        _: Request<admin::StartRoundRequest>,
    ) -> Result<Response<admin::StartRoundResponse>, Status> {
        let queued = self.queued_intents().len();
        ArkdSim::start_round(self);
        Ok(Response::new(admin::StartRoundResponse {
            queued_intents: u32::try_from(queued).unwrap_or(u32::MAX),
        }))
    }

    async fn list_state(
        &self,
        _: Request<admin::ListStateRequest>,
    ) -> Result<Response<admin::ListStateResponse>, Status> {
        let state = self.state();
        Ok(Response::new(admin::ListStateResponse {
            vtxos: state
                .vtxos
                .values()
                .map(|v| {
                    let (kind, by) = match v.state {
                        VtxoState::Spendable => ("spendable", String::new()),
                        VtxoState::Pending(t) => ("pending", t.to_string()),
                        VtxoState::Spent(t) => ("spent", t.to_string()),
                        VtxoState::Settled(t) => ("settled", t.to_string()),
                    };
                    admin::SimVtxo {
                        outpoint: v.outpoint.to_string(),
                        amount: v.amount,
                        script: v.script.to_hex_string(),
                        state: kind.into(),
                        spent_by: by,
                    }
                })
                .collect(),
            pending_ark_txids: state.pending.keys().map(Txid::to_string).collect(),
        }))
    }

    async fn inject_fault(
        &self,
        request: Request<admin::InjectFaultRequest>,
    ) -> Result<Response<admin::InjectFaultResponse>, Status> {
        let req = request.into_inner();
        ArkdSim::inject_fault(
            self,
            &req.rpc,
            SimError::new(req.code, &req.name, "injected fault"),
            req.count,
        );
        Ok(Response::new(admin::InjectFaultResponse {}))
    }
}
