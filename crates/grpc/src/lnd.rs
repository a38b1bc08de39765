//! [`LndClient`]: the [`Lightning`] port over lnd's gRPC (lnrpc, invoicesrpc,
//! routerrpc, walletrpc), with the pinned `tls.cert`, the hex macaroon and the
//! resilience layer. Works unchanged against the lnd simulator.
//!
//! Errors are classified by gRPC status code only ([`kind_of`]).

use ark_relay_core::backends::lightning::{
    AddedInvoice, BackendErrorKind, BoxStream, ChannelBalance, DecodedInvoice, FailureReason,
    HoldInvoiceRequest, HtlcState, Invoice, InvoiceCursor, InvoiceHtlc, InvoiceState, Lightning,
    LightningError, NodeInfo, Payment, PaymentHash, PaymentStatus, Preimage, SendPayment,
    WalletBalance,
};
use ark_relay_core::Sats;
use ark_relay_proto::invoicesrpc::invoices_client::InvoicesClient;
use ark_relay_proto::lnrpc::lightning_client::LightningClient;
use ark_relay_proto::routerrpc::router_client::RouterClient;
use ark_relay_proto::walletrpc::wallet_kit_client::WalletKitClient;
use ark_relay_proto::{invoicesrpc, lnrpc, routerrpc, walletrpc};
use async_trait::async_trait;
use futures::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::daemon::{connect, ConnectError, DaemonConfig};
use crate::macaroon::MacaroonInterceptor;
use crate::resilience::{BreakerOpen, HealthRegistry, Resilience, RetryPolicy, Transient};

mod chain;

/// The authenticated transport every generated client uses.
pub type AuthChannel = InterceptedService<Channel, MacaroonInterceptor>;

/// Largest message accepted from the daemon (List* calls exceed tonic's 4 MiB).
pub const MAX_DECODE: usize = 64 * 1024 * 1024;

/// The error kind of a gRPC status, by code.
pub fn kind_of(code: Code) -> BackendErrorKind {
    match code {
        Code::Unavailable | Code::Cancelled | Code::Aborted | Code::ResourceExhausted => {
            BackendErrorKind::Unavailable
        }
        Code::DeadlineExceeded => BackendErrorKind::DeadlineExceeded,
        Code::Unauthenticated | Code::PermissionDenied => BackendErrorKind::Unauthenticated,
        Code::NotFound => BackendErrorKind::NotFound,
        Code::AlreadyExists => BackendErrorKind::AlreadyExists,
        Code::InvalidArgument | Code::OutOfRange => BackendErrorKind::InvalidArgument,
        Code::FailedPrecondition => BackendErrorKind::FailedPrecondition,
        Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
            BackendErrorKind::Internal
        }
    }
}

impl Transient for LightningError {
    fn is_transient(&self) -> bool {
        LightningError::is_transient(self)
    }
}

impl From<BreakerOpen> for LightningError {
    fn from(e: BreakerOpen) -> Self {
        LightningError::new(BackendErrorKind::Unavailable, e.to_string())
    }
}

fn err(s: Status) -> LightningError {
    LightningError::new(kind_of(s.code()), s.message())
}

fn bad(what: &str) -> LightningError {
    LightningError::new(
        BackendErrorKind::Internal,
        format!("lnd returned an invalid {what}"),
    )
}

fn u64c(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32c(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// Maps `lnrpc.Invoice`.
pub fn map_invoice(i: lnrpc::Invoice) -> Result<Invoice, LightningError> {
    use lnrpc::invoice::InvoiceState as S;
    let state = match S::try_from(i.state).map_err(|_| bad("invoice state"))? {
        S::Open => InvoiceState::Open,
        S::Accepted => InvoiceState::Accepted,
        S::Settled => InvoiceState::Settled,
        S::Canceled => InvoiceState::Canceled,
    };
    let htlcs = i
        .htlcs
        .iter()
        .map(|h| InvoiceHtlc {
            amt_msat: h.amt_msat,
            accept_height: u32c(h.accept_height),
            expiry_height: u32c(h.expiry_height),
            state: match h.state {
                0 => HtlcState::Accepted,
                1 => HtlcState::Settled,
                _ => HtlcState::Canceled,
            },
        })
        .collect();
    Ok(Invoice {
        hash: PaymentHash::from_slice(&i.r_hash).ok_or_else(|| bad("r_hash"))?,
        payment_request: i.payment_request,
        memo: i.memo,
        value_msat: u64c(i.value_msat),
        amt_paid_msat: u64c(i.amt_paid_msat),
        state,
        add_index: i.add_index,
        settle_index: i.settle_index,
        creation_date: i.creation_date,
        expiry_secs: i.expiry,
        cltv_expiry: i.cltv_expiry,
        htlcs,
    })
}

/// Maps `lnrpc.Payment`.
pub fn map_payment(p: lnrpc::Payment) -> Result<Payment, LightningError> {
    use lnrpc::payment::PaymentStatus as S;
    let status = match S::try_from(p.status).map_err(|_| bad("payment status"))? {
        S::Initiated => PaymentStatus::Initiated,
        #[allow(deprecated)]
        S::Unknown | S::InFlight => PaymentStatus::InFlight,
        S::Succeeded => PaymentStatus::Succeeded,
        S::Failed => PaymentStatus::Failed,
    };
    let failure_reason = match p.failure_reason {
        1 => FailureReason::Timeout,
        2 => FailureReason::NoRoute,
        3 => FailureReason::Error,
        4 => FailureReason::IncorrectPaymentDetails,
        5 => FailureReason::InsufficientBalance,
        6 => FailureReason::Canceled,
        _ => FailureReason::None,
    };
    let hash = hex::decode(&p.payment_hash)
        .ok()
        .and_then(|b| PaymentHash::from_slice(&b))
        .ok_or_else(|| bad("payment_hash"))?;
    let preimage = if p.payment_preimage.is_empty() {
        None
    } else {
        hex::decode(&p.payment_preimage)
            .ok()
            .and_then(|b| Preimage::from_slice(&b))
    };
    Ok(Payment {
        hash,
        status,
        preimage,
        value_msat: u64c(p.value_msat),
        fee_msat: u64c(p.fee_msat),
        failure_reason,
        payment_index: p.payment_index,
    })
}

/// A client of one lnd (or litd) node.
#[derive(Debug, Clone)]
pub struct LndClient {
    lightning: LightningClient<AuthChannel>,
    invoices: InvoicesClient<AuthChannel>,
    router: RouterClient<AuthChannel>,
    wallet: WalletKitClient<AuthChannel>,
    resilience: Resilience,
}

impl LndClient {
    /// A client for `cfg`, its breaker registered as `lnd` in `health`.
    pub fn new(cfg: &DaemonConfig, health: &HealthRegistry) -> Result<Self, ConnectError> {
        Self::with_resilience(cfg, Resilience::new("lnd", health))
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
            lightning: LightningClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            invoices: InvoicesClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            router: RouterClient::new(svc()).max_decoding_message_size(MAX_DECODE),
            wallet: WalletKitClient::new(svc()),
            resilience,
        })
    }

    /// The resilience layer (breaker state for `/health`).
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    async fn invoice_stream(
        &self,
        s: tonic::Streaming<lnrpc::Invoice>,
    ) -> BoxStream<Invoice, LightningError> {
        Box::pin(s.map(|r| r.map_err(err).and_then(map_invoice)))
    }
}

fn payment_stream(s: tonic::Streaming<lnrpc::Payment>) -> BoxStream<Payment, LightningError> {
    Box::pin(s.map(|r| r.map_err(err).and_then(map_payment)))
}

#[async_trait]
impl Lightning for LndClient {
    async fn get_info(&self) -> Result<NodeInfo, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                async move { c.get_info(lnrpc::GetInfoRequest {}).await.map_err(err) }
            })
            .await?
            .into_inner();
        Ok(NodeInfo {
            identity_pubkey: r.identity_pubkey,
            block_height: r.block_height,
            synced_to_chain: r.synced_to_chain,
            network: r
                .chains
                .first()
                .map(|c| c.network.clone())
                .unwrap_or_default(),
        })
    }

    async fn add_hold_invoice(
        &self,
        req: HoldInvoiceRequest,
    ) -> Result<AddedInvoice, LightningError> {
        let msg = invoicesrpc::AddHoldInvoiceRequest {
            memo: req.memo,
            hash: req.hash.0.to_vec(),
            value_msat: i64::try_from(req.value_msat).map_err(|_| {
                LightningError::new(BackendErrorKind::InvalidArgument, "amount too large")
            })?,
            expiry: i64::try_from(req.expiry_secs).unwrap_or(i64::MAX),
            cltv_expiry: req.cltv_expiry,
            ..Default::default()
        };
        let r = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.invoices.clone();
                let msg = msg.clone();
                async move { c.add_hold_invoice(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        Ok(AddedInvoice {
            payment_request: r.payment_request,
            add_index: r.add_index,
            payment_addr: r.payment_addr,
        })
    }

    async fn settle_invoice(&self, preimage: Preimage) -> Result<(), LightningError> {
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.invoices.clone();
                let msg = invoicesrpc::SettleInvoiceMsg {
                    preimage: preimage.0.to_vec(),
                };
                async move { c.settle_invoice(msg).await.map_err(err) }
            })
            .await
            .map(|_| ())
    }

    async fn cancel_invoice(&self, hash: PaymentHash) -> Result<(), LightningError> {
        self.resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.invoices.clone();
                let msg = invoicesrpc::CancelInvoiceMsg {
                    payment_hash: hash.0.to_vec(),
                };
                async move { c.cancel_invoice(msg).await.map_err(err) }
            })
            .await
            .map(|_| ())
    }

    async fn lookup_invoice(&self, hash: PaymentHash) -> Result<Invoice, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                let msg = lnrpc::PaymentHash {
                    r_hash: hash.0.to_vec(),
                    ..Default::default()
                };
                async move { c.lookup_invoice(msg).await.map_err(err) }
            })
            .await?;
        map_invoice(r.into_inner())
    }

    async fn subscribe_single_invoice(
        &self,
        hash: PaymentHash,
    ) -> Result<BoxStream<Invoice, LightningError>, LightningError> {
        let s = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.invoices.clone();
                let msg = invoicesrpc::SubscribeSingleInvoiceRequest {
                    r_hash: hash.0.to_vec(),
                };
                async move { c.subscribe_single_invoice(msg).await.map_err(err) }
            })
            .await?;
        Ok(self.invoice_stream(s.into_inner()).await)
    }

    async fn subscribe_invoices(
        &self,
        cursor: InvoiceCursor,
    ) -> Result<BoxStream<Invoice, LightningError>, LightningError> {
        let s = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.lightning.clone();
                let msg = lnrpc::InvoiceSubscription {
                    add_index: cursor.add_index,
                    settle_index: cursor.settle_index,
                };
                async move { c.subscribe_invoices(msg).await.map_err(err) }
            })
            .await?;
        Ok(self.invoice_stream(s.into_inner()).await)
    }

    async fn send_payment(
        &self,
        req: SendPayment,
    ) -> Result<BoxStream<Payment, LightningError>, LightningError> {
        let msg = routerrpc::SendPaymentRequest {
            payment_request: req.payment_request,
            amt_msat: req
                .amt_msat
                .map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX)),
            fee_limit_msat: i64::try_from(req.fee_limit_msat).unwrap_or(i64::MAX),
            timeout_seconds: req.timeout_seconds,
            ..Default::default()
        };
        let s = self
            .resilience
            .call(RetryPolicy::ONCE, || {
                let mut c = self.router.clone();
                let msg = msg.clone();
                async move { c.send_payment_v2(msg).await.map_err(err) }
            })
            .await?;
        Ok(payment_stream(s.into_inner()))
    }

    async fn track_payment(
        &self,
        hash: PaymentHash,
    ) -> Result<BoxStream<Payment, LightningError>, LightningError> {
        let s = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.router.clone();
                let msg = routerrpc::TrackPaymentRequest {
                    payment_hash: hash.0.to_vec(),
                    no_inflight_updates: false,
                };
                async move { c.track_payment_v2(msg).await.map_err(err) }
            })
            .await?;
        Ok(payment_stream(s.into_inner()))
    }

    async fn decode_pay_req(&self, pay_req: &str) -> Result<DecodedInvoice, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                let msg = lnrpc::PayReqString {
                    pay_req: pay_req.to_owned(),
                };
                async move { c.decode_pay_req(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        let hash = hex::decode(&r.payment_hash)
            .ok()
            .and_then(|b| PaymentHash::from_slice(&b))
            .ok_or_else(|| bad("payment_hash"))?;
        Ok(DecodedInvoice {
            destination: r.destination,
            hash,
            num_msat: u64c(r.num_msat),
            timestamp: r.timestamp,
            expiry: r.expiry,
            description: r.description,
            cltv_expiry: r.cltv_expiry,
        })
    }

    async fn channel_balance(&self) -> Result<ChannelBalance, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                async move {
                    c.channel_balance(lnrpc::ChannelBalanceRequest {})
                        .await
                        .map_err(err)
                }
            })
            .await?
            .into_inner();
        let msat = |a: Option<lnrpc::Amount>| a.map_or(0, |a| a.msat);
        Ok(ChannelBalance {
            local_msat: msat(r.local_balance),
            remote_msat: msat(r.remote_balance),
            unsettled_local_msat: msat(r.unsettled_local_balance),
            pending_open_local_msat: msat(r.pending_open_local_balance),
        })
    }

    async fn wallet_balance(&self) -> Result<WalletBalance, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.lightning.clone();
                async move {
                    c.wallet_balance(lnrpc::WalletBalanceRequest::default())
                        .await
                        .map_err(err)
                }
            })
            .await?
            .into_inner();
        let sats = |v: i64| Sats::new(u64c(v));
        Ok(WalletBalance {
            total: sats(r.total_balance),
            confirmed: sats(r.confirmed_balance),
            unconfirmed: sats(r.unconfirmed_balance),
            locked: sats(r.locked_balance),
        })
    }

    async fn estimate_fee_rate(&self, conf_target: u32) -> Result<u64, LightningError> {
        let r = self
            .resilience
            .call(RetryPolicy::IDEMPOTENT, || {
                let mut c = self.wallet.clone();
                let msg = walletrpc::EstimateFeeRequest {
                    conf_target: i32::try_from(conf_target).unwrap_or(i32::MAX),
                };
                async move { c.estimate_fee(msg).await.map_err(err) }
            })
            .await?
            .into_inner();
        // sat/kw → sat/vB (1 vB = 4 wu), rounded up.
        Ok(u64c(r.sat_per_kw).div_ceil(250))
    }
}
