//! The tapd simulator: `taprpc.TaprootAssets`, `mintrpc.Mint`,
//! `universerpc.Universe` and `tapchannelrpc.TaprootAssetChannels` (the
//! subsets in this repo's protos) plus the sim-only `simrpc.tapd.TapdSim`, on
//! its own TLS port with its own cert and macaroon, like a standalone tapd
//! next to an lnd.
//!
//! Real state and checks: MintAsset stages, FinalizeBatch broadcasts an anchor
//! transaction on the shared [`Chain`] and the assets exist once a block
//! confirms it; asset ids are derived like tapd's (genesis outpoint, tag, meta,
//! index, type). Proofs use a format of this sim (see [`proof`]) signed by the
//! sim's issuer key, so VerifyProof really verifies. Asset invoices are BOLT11
//! invoices of the lnd simulator priced by an RFQ buy quote that expires after
//! 300 s, with the quote's SCID as route hint.

pub mod proof;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ark_relay_proto::mintrpc::mint_server::{Mint, MintServer};
use ark_relay_proto::simrpc::tapd::tapd_sim_server::{TapdSim as TapdSimAdmin, TapdSimServer};
use ark_relay_proto::tapchannelrpc::taproot_asset_channels_server::{
    TaprootAssetChannels, TaprootAssetChannelsServer,
};
use ark_relay_proto::taprpc::taproot_assets_server::{TaprootAssets, TaprootAssetsServer};
use ark_relay_proto::universerpc::universe_server::{Universe, UniverseServer};
use ark_relay_proto::{lnrpc, mintrpc, rfqrpc, simrpc, tapchannelrpc, taprpc, universerpc};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Keypair, Secp256k1};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use futures::StreamExt;
use lightning_invoice::Bolt11Invoice;
use rand::RngCore;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::chain::Chain;
use crate::lnd::auth::{MacaroonCheck, TlsIdentity};
use crate::lnd::state::{NewInvoice, PayStatus};
use crate::lnd::{GrpcStream, LnServer, LndSim, StartError};

/// tapd's default asset-invoice and quote expiry (`rfq.DefaultInvoiceExpiry`).
pub const QUOTE_EXPIRY_SECS: u64 = 300;
const MSAT_PER_BTC: u128 = 100_000_000_000;

/// tapd simulator parameters.
#[derive(Debug, Clone)]
pub struct TapdSimConfig {
    /// The edge peer's price: asset units per BTC (10^8 = 1 unit per sat).
    pub units_per_btc: u64,
    /// Serve TLS (otherwise plaintext h2c).
    pub tls: bool,
}

impl Default for TapdSimConfig {
    fn default() -> Self {
        Self {
            units_per_btc: 100_000_000,
            tls: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Seedling {
    name: String,
    amount: u64,
    meta: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Batch {
    key: Vec<u8>,
    txid: Option<Txid>,
    seedlings: Vec<Seedling>,
    created_at: i64,
}

#[derive(Debug, Clone)]
struct OwnedAsset {
    name: String,
    genesis_point: String,
    meta_hash: [u8; 32],
    output_index: u32,
    amount: u64,
    batch_txid: Txid,
}

#[derive(Debug, Default)]
struct TapdState {
    pending: Option<Batch>,
    batches: Vec<Batch>,
    assets: BTreeMap<[u8; 32], OwnedAsset>,
    known: HashSet<[u8; 32]>,
    universe: BTreeMap<[u8; 32], Vec<Vec<u8>>>,
}

/// The tapd simulator (cheap to clone; clones share state).
#[derive(Clone)]
pub struct TapdSim {
    state: Arc<Mutex<TapdState>>,
    lnd: LndSim,
    issuer: Keypair,
    peer: String,
    config: TapdSimConfig,
    macaroon: Vec<u8>,
    tls: Option<TlsIdentity>,
}

impl std::fmt::Debug for TapdSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapdSim")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn id32(bytes: &[u8], what: &str) -> Result<[u8; 32], Status> {
    bytes
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("{what} must be 32 bytes")))
}

/// tapd's asset id: `sha256(genesis outpoint || sha256(tag) || meta hash || output index || type)`.
fn asset_id(genesis: &OutPoint, name: &str, meta_hash: &[u8; 32], index: u32) -> [u8; 32] {
    let mut d = Vec::with_capacity(32 + 4 + 32 + 32 + 4 + 1);
    d.extend_from_slice(genesis.txid.as_byte_array());
    d.extend_from_slice(&genesis.vout.to_be_bytes());
    d.extend_from_slice(sha256::Hash::hash(name.as_bytes()).as_byte_array());
    d.extend_from_slice(meta_hash);
    d.extend_from_slice(&index.to_be_bytes());
    d.push(0); // NORMAL
    sha256::Hash::hash(&d).to_byte_array()
}

impl TapdSim {
    /// A tapd next to `lnd`, anchoring on `lnd`'s chain.
    pub fn new(lnd: LndSim, config: TapdSimConfig) -> Result<Self, StartError> {
        let secp = Secp256k1::new();
        let tls = if config.tls {
            Some(TlsIdentity::generate("tapd autogenerated cert")?)
        } else {
            None
        };
        let peer = Keypair::new(&secp, &mut rand::thread_rng())
            .public_key()
            .to_string();
        Ok(Self {
            state: Arc::new(Mutex::new(TapdState::default())),
            lnd,
            issuer: Keypair::new(&secp, &mut rand::thread_rng()),
            peer,
            config,
            macaroon: crate::lnd::auth::random_macaroon(),
            tls,
        })
    }

    fn lock(&self) -> MutexGuard<'_, TapdState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn chain(&self) -> &Chain {
        self.lnd.chain()
    }

    /// The macaroon clients must send.
    pub fn macaroon(&self) -> &[u8] {
        &self.macaroon
    }

    /// The TLS certificate PEM, when serving TLS.
    pub fn tls_cert_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// The edge peer (asset channel counterparty) node key, hex.
    pub fn peer_pubkey(&self) -> &str {
        &self.peer
    }

    /// A proof of `amount` units of `asset_id` signed by the sim's issuer key.
    pub fn issue_proof(&self, asset_id: [u8; 32], amount: u64) -> Vec<u8> {
        proof::issue(&self.issuer, asset_id, amount)
    }

    /// Units of an owned, confirmed asset.
    pub fn balance(&self, asset_id: &[u8; 32]) -> u64 {
        let s = self.lock();
        s.assets
            .get(asset_id)
            .filter(|a| self.chain().confirmed_at(&a.batch_txid).is_some())
            .map_or(0, |a| a.amount)
    }

    fn confirmed_assets(&self) -> Vec<([u8; 32], OwnedAsset)> {
        let s = self.lock();
        s.assets
            .iter()
            .filter(|(_, a)| self.chain().confirmed_at(&a.batch_txid).is_some())
            .map(|(id, a)| (*id, a.clone()))
            .collect()
    }

    fn msat_for_units(&self, units: u64) -> u64 {
        let msat = u128::from(units).saturating_mul(MSAT_PER_BTC)
            / u128::from(self.config.units_per_btc.max(1));
        u64::try_from(msat).unwrap_or(u64::MAX)
    }

    fn units_for_msat(&self, msat: u64) -> u64 {
        let units = u128::from(msat)
            .saturating_mul(u128::from(self.config.units_per_btc))
            .div_ceil(MSAT_PER_BTC);
        u64::try_from(units).unwrap_or(u64::MAX)
    }

    fn quote_id() -> ([u8; 32], u64) {
        let id = random32();
        let mut scid = [0u8; 8];
        scid.copy_from_slice(&id[24..]);
        (id, u64::from_be_bytes(scid))
    }

    fn rate(&self) -> Option<rfqrpc::FixedPoint> {
        Some(rfqrpc::FixedPoint {
            coefficient: self.config.units_per_btc.to_string(),
            scale: 0,
        })
    }

    fn check_peer(&self, peer: &[u8]) -> Result<(), Status> {
        if !peer.is_empty() && hex::encode(peer) != self.peer {
            return Err(Status::failed_precondition("no asset channel with peer"));
        }
        Ok(())
    }

    /// Serves on `127.0.0.1:port` (0 = any free port) until stopped.
    pub async fn spawn(self, port: u16) -> Result<LnServer, StartError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let check = MacaroonCheck::new(self.macaroon.clone());
        let mut builder = Server::builder();
        if let Some(tls) = &self.tls {
            builder = builder
                .tls_config(
                    ServerTlsConfig::new()
                        .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)),
                )
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let router = builder
            .add_service(TaprootAssetsServer::with_interceptor(
                self.clone(),
                check.clone(),
            ))
            .add_service(MintServer::with_interceptor(self.clone(), check.clone()))
            .add_service(UniverseServer::with_interceptor(
                self.clone(),
                check.clone(),
            ))
            .add_service(TaprootAssetChannelsServer::with_interceptor(
                self.clone(),
                check.clone(),
            ))
            .add_service(TapdSimServer::with_interceptor(self.clone(), check));
        Ok(LnServer::spawn(
            addr,
            self.tls.is_some(),
            listener,
            move |(listener, shutdown)| {
                Box::pin(async move {
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                })
            },
        ))
    }
}

fn genesis(id: &[u8; 32], a: &OwnedAsset) -> taprpc::GenesisInfo {
    taprpc::GenesisInfo {
        genesis_point: a.genesis_point.clone(),
        name: a.name.clone(),
        meta_hash: a.meta_hash.to_vec(),
        asset_id: id.to_vec(),
        asset_type: taprpc::AssetType::Normal as i32,
        output_index: a.output_index,
    }
}

fn batch_msg(b: &Batch, state: mintrpc::BatchState) -> mintrpc::MintingBatch {
    mintrpc::MintingBatch {
        batch_key: b.key.clone(),
        batch_txid: b.txid.map(|t| t.to_string()).unwrap_or_default(),
        state: state as i32,
        assets: b
            .seedlings
            .iter()
            .map(|s| mintrpc::PendingAsset {
                name: s.name.clone(),
                amount: s.amount,
                asset_meta: Some(taprpc::AssetMeta {
                    data: s.meta.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        created_at: b.created_at,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl TaprootAssets for TapdSim {
    async fn list_assets(
        &self,
        _: Request<taprpc::ListAssetRequest>,
    ) -> Result<Response<taprpc::ListAssetResponse>, Status> {
        let assets = self
            .confirmed_assets()
            .iter()
            .map(|(id, a)| taprpc::Asset {
                asset_genesis: Some(genesis(id, a)),
                amount: a.amount,
                script_key_is_local: true,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(taprpc::ListAssetResponse { assets }))
    }

    async fn list_balances(
        &self,
        req: Request<taprpc::ListBalancesRequest>,
    ) -> Result<Response<taprpc::ListBalancesResponse>, Status> {
        let r = req.into_inner();
        match r.group_by {
            Some(taprpc::list_balances_request::GroupBy::AssetId(true)) => {}
            Some(taprpc::list_balances_request::GroupBy::GroupKey(true)) => {
                return Ok(Response::new(taprpc::ListBalancesResponse::default()))
            }
            _ => return Err(Status::invalid_argument("invalid group_by")),
        }
        let asset_balances = self
            .confirmed_assets()
            .iter()
            .filter(|(id, _)| r.asset_filter.is_empty() || r.asset_filter == id.to_vec())
            .map(|(id, a)| {
                (
                    hex::encode(id),
                    taprpc::AssetBalance {
                        asset_genesis: Some(genesis(id, a)),
                        balance: a.amount,
                        group_key: Vec::new(),
                    },
                )
            })
            .collect();
        Ok(Response::new(taprpc::ListBalancesResponse {
            asset_balances,
            ..Default::default()
        }))
    }

    async fn verify_proof(
        &self,
        req: Request<taprpc::ProofFile>,
    ) -> Result<Response<taprpc::VerifyProofResponse>, Status> {
        let raw = req.into_inner().raw_proof_file;
        let verdict = proof::verify(&self.issuer.x_only_public_key().0, &raw);
        Ok(Response::new(match verdict {
            Some(p) => taprpc::VerifyProofResponse {
                valid: true,
                decoded_proof: Some(taprpc::DecodedProof {
                    proof_at_depth: 0,
                    number_of_proofs: 1,
                    asset: Some(taprpc::Asset {
                        asset_genesis: Some(taprpc::GenesisInfo {
                            asset_id: p.asset_id.to_vec(),
                            ..Default::default()
                        }),
                        amount: p.amount,
                        ..Default::default()
                    }),
                }),
            },
            None => taprpc::VerifyProofResponse {
                valid: false,
                decoded_proof: None,
            },
        }))
    }

    async fn get_info(
        &self,
        _: Request<taprpc::GetInfoRequest>,
    ) -> Result<Response<taprpc::GetInfoResponse>, Status> {
        Ok(Response::new(taprpc::GetInfoResponse {
            version: "0.8.1 sim".into(),
            network: "regtest".into(),
            lnd_identity_pubkey: self.lnd.node_id(),
            block_height: self.chain().height(),
            block_hash: self.chain().tip().to_string(),
            sync_to_chain: true,
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl Mint for TapdSim {
    async fn mint_asset(
        &self,
        req: Request<mintrpc::MintAssetRequest>,
    ) -> Result<Response<mintrpc::MintAssetResponse>, Status> {
        let a = req
            .into_inner()
            .asset
            .ok_or_else(|| Status::invalid_argument("asset required"))?;
        if a.name.is_empty() || a.amount == 0 {
            return Err(Status::invalid_argument(
                "asset name and a non-zero amount are required",
            ));
        }
        let mut s = self.lock();
        let taken = s.assets.values().any(|x| x.name == a.name)
            || s.pending
                .iter()
                .flat_map(|b| &b.seedlings)
                .any(|x| x.name == a.name);
        if taken {
            return Err(Status::already_exists(format!(
                "asset with name {} already exists",
                a.name
            )));
        }
        let batch = s.pending.get_or_insert_with(|| Batch {
            key: {
                let mut k = vec![0x02];
                k.extend_from_slice(&random32());
                k
            },
            txid: None,
            seedlings: Vec::new(),
            created_at: i64::try_from(unix()).unwrap_or(i64::MAX),
        });
        batch.seedlings.push(Seedling {
            name: a.name,
            amount: a.amount,
            meta: a.asset_meta.map(|m| m.data).unwrap_or_default(),
        });
        Ok(Response::new(mintrpc::MintAssetResponse {
            pending_batch: Some(batch_msg(batch, mintrpc::BatchState::Pending)),
        }))
    }

    async fn finalize_batch(
        &self,
        _: Request<mintrpc::FinalizeBatchRequest>,
    ) -> Result<Response<mintrpc::FinalizeBatchResponse>, Status> {
        let mut s = self.lock();
        let mut batch = s
            .pending
            .take()
            .ok_or_else(|| Status::failed_precondition("no pending batch"))?;
        let genesis_point = OutPoint::new(Txid::from_byte_array(random32()), 0);
        let commitment = sha256::Hash::hash(&batch.key);
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: genesis_point,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(1000),
                script_pubkey: ScriptBuf::from_bytes(
                    [&[0x51, 0x20][..], commitment.as_byte_array()].concat(),
                ),
            }],
        };
        let txid = self
            .chain()
            .broadcast(tx)
            .map_err(|e| Status::internal(e.to_string()))?;
        batch.txid = Some(txid);
        for (i, seed) in batch.seedlings.iter().enumerate() {
            let meta_hash = sha256::Hash::hash(&seed.meta).to_byte_array();
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let id = asset_id(&genesis_point, &seed.name, &meta_hash, index);
            s.known.insert(id);
            s.assets.insert(
                id,
                OwnedAsset {
                    name: seed.name.clone(),
                    genesis_point: genesis_point.to_string(),
                    meta_hash,
                    output_index: index,
                    amount: seed.amount,
                    batch_txid: txid,
                },
            );
        }
        let msg = batch_msg(&batch, mintrpc::BatchState::Broadcast);
        s.batches.push(batch);
        Ok(Response::new(mintrpc::FinalizeBatchResponse {
            batch: Some(msg),
        }))
    }
}

#[tonic::async_trait]
impl Universe for TapdSim {
    async fn insert_proof(
        &self,
        req: Request<universerpc::AssetProof>,
    ) -> Result<Response<universerpc::AssetProofResponse>, Status> {
        let r = req.into_inner();
        let key = r
            .key
            .clone()
            .ok_or_else(|| Status::invalid_argument("key required"))?;
        let id = match key.id.as_ref().and_then(|i| i.id.clone()) {
            Some(universerpc::id::Id::AssetId(b)) => id32(&b, "asset_id")?,
            Some(universerpc::id::Id::AssetIdStr(s)) => id32(
                &hex::decode(s).map_err(|_| Status::invalid_argument("asset_id_str not hex"))?,
                "asset_id",
            )?,
            _ => return Err(Status::invalid_argument("asset id required")),
        };
        let leaf = r
            .asset_leaf
            .ok_or_else(|| Status::invalid_argument("asset_leaf required"))?;
        let p = proof::verify(&self.issuer.x_only_public_key().0, &leaf.proof)
            .ok_or_else(|| Status::invalid_argument("invalid proof"))?;
        if p.asset_id != id {
            return Err(Status::invalid_argument("proof is for a different asset"));
        }
        let mut s = self.lock();
        s.known.insert(id);
        s.universe.entry(id).or_default().push(leaf.proof.clone());
        Ok(Response::new(universerpc::AssetProofResponse {
            req: Some(key),
            asset_leaf: Some(leaf),
        }))
    }
}

#[tonic::async_trait]
impl TaprootAssetChannels for TapdSim {
    async fn add_invoice(
        &self,
        req: Request<tapchannelrpc::AddInvoiceRequest>,
    ) -> Result<Response<tapchannelrpc::AddInvoiceResponse>, Status> {
        let r = req.into_inner();
        let id = id32(&r.asset_id, "asset_id")?;
        if !self.lock().known.contains(&id) {
            return Err(Status::not_found("unknown asset"));
        }
        self.check_peer(&r.peer_pubkey)?;
        if r.asset_amount == 0 {
            return Err(Status::invalid_argument("asset_amount must be positive"));
        }
        let (quote_id, scid) = Self::quote_id();
        let expiry_unix = unix().saturating_add(QUOTE_EXPIRY_SECS);
        let inv_req = r.invoice_request.unwrap_or_default();
        let requested = u64::try_from(inv_req.expiry).unwrap_or(0);
        let expiry = if requested == 0 {
            QUOTE_EXPIRY_SECS
        } else {
            requested.min(QUOTE_EXPIRY_SECS)
        };
        let hold_hash = r
            .hodl_invoice
            .map(|h| id32(&h.payment_hash, "payment_hash"))
            .transpose()?;
        let inv = self
            .lnd
            .add_invoice_inner(NewInvoice {
                memo: inv_req.memo,
                hold_hash,
                value_msat: self.msat_for_units(r.asset_amount),
                expiry,
                cltv_expiry: inv_req.cltv_expiry,
                route_hint: Some((self.peer.clone(), scid)),
                ..NewInvoice::default()
            })
            .map_err(Status::from)?;
        Ok(Response::new(tapchannelrpc::AddInvoiceResponse {
            accepted_buy_quote: Some(rfqrpc::PeerAcceptedBuyQuote {
                peer: self.peer.clone(),
                id: quote_id.to_vec(),
                scid,
                asset_max_amount: r.asset_amount,
                ask_asset_rate: self.rate(),
                expiry: expiry_unix,
                min_transportable_units: 1,
            }),
            invoice_result: Some(lnrpc::AddInvoiceResponse {
                r_hash: inv.hash.to_vec(),
                payment_request: inv.payment_request,
                add_index: inv.add_index,
                payment_addr: inv.payment_addr.to_vec(),
            }),
        }))
    }

    type SendPaymentStream = GrpcStream<tapchannelrpc::SendPaymentResponse>;

    async fn send_payment(
        &self,
        req: Request<tapchannelrpc::SendPaymentRequest>,
    ) -> Result<Response<Self::SendPaymentStream>, Status> {
        use tapchannelrpc::send_payment_response::Result as R;
        let r = req.into_inner();
        let id = id32(&r.asset_id, "asset_id")?;
        self.check_peer(&r.peer_pubkey)?;
        let pay = r
            .payment_request
            .ok_or_else(|| Status::invalid_argument("payment_request required"))?;
        let inv: Bolt11Invoice = pay
            .payment_request
            .parse()
            .map_err(|e| Status::invalid_argument(format!("invalid payment request: {e}")))?;
        let msat = inv
            .amount_milli_satoshis()
            .ok_or_else(|| Status::invalid_argument("zero-amount invoice"))?;
        let units = self.units_for_msat(msat);
        if self.balance(&id) < units {
            return Err(Status::failed_precondition("insufficient asset balance"));
        }
        let fee_limit = if pay.fee_limit_msat > 0 {
            pay.fee_limit_msat
        } else {
            pay.fee_limit_sat.saturating_mul(1000)
        };
        let (quote_id, scid) = Self::quote_id();
        let quote = tapchannelrpc::SendPaymentResponse {
            result: Some(R::AcceptedSellOrder(rfqrpc::PeerAcceptedSellQuote {
                peer: self.peer.clone(),
                id: quote_id.to_vec(),
                scid,
                asset_amount: units,
                bid_asset_rate: self.rate(),
                expiry: unix().saturating_add(QUOTE_EXPIRY_SECS),
                min_transportable_msat: 1,
            })),
        };
        let payments = self.lnd.send_inner(
            &pay.payment_request,
            0,
            u64::try_from(fee_limit).unwrap_or(0),
            pay.no_inflight_updates,
        )?;
        let hash = inv.payment_hash().to_byte_array();
        if self.lnd.lock().payments.get(&hash).map(|p| p.status) == Some(PayStatus::Succeeded) {
            if let Some(a) = self.lock().assets.get_mut(&id) {
                a.amount = a.amount.saturating_sub(units);
            }
        }
        let updates = payments.map(|p| {
            p.map(|p| tapchannelrpc::SendPaymentResponse {
                result: Some(R::PaymentResult(p)),
            })
        });
        Ok(Response::new(Box::pin(
            futures::stream::iter([Ok(quote)]).chain(updates),
        )))
    }
}

#[tonic::async_trait]
impl TapdSimAdmin for TapdSim {
    async fn issue_proof(
        &self,
        req: Request<simrpc::tapd::IssueProofRequest>,
    ) -> Result<Response<simrpc::tapd::IssueProofResponse>, Status> {
        let r = req.into_inner();
        let id = id32(&r.asset_id, "asset_id")?;
        Ok(Response::new(simrpc::tapd::IssueProofResponse {
            raw_proof_file: self.issue_proof(id, r.amount),
        }))
    }
}
