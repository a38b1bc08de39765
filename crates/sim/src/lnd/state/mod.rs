//! The lnd simulator's state: the invoice registry (hold invoices, add and
//! settle indexes, HTLCs, auto-cancel) and the payment control tower (one
//! payment per hash). Pure and synchronous; the gRPC layer maps its errors to
//! status codes and its events to streams.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{self, PublicKey, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};
use rand::RngCore;

mod tower;

/// lnd's `holdexpirydelta`: accepted hold invoices are canceled this many
/// blocks before their HTLC expires.
pub const HOLD_EXPIRY_DELTA: u32 = 18;
/// lnd's default final CLTV delta.
pub const DEFAULT_CLTV_EXPIRY: u64 = 80;
/// lnd's default invoice expiry (24 h).
pub const DEFAULT_EXPIRY_SECS: u64 = 86_400;

/// A registry or control-tower refusal, by gRPC code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// `InvalidArgument`.
    #[error("{0}")]
    Invalid(String),
    /// `NotFound`.
    #[error("{0}")]
    NotFound(String),
    /// `AlreadyExists`.
    #[error("{0}")]
    AlreadyExists(String),
    /// `FailedPrecondition`.
    #[error("{0}")]
    Precondition(String),
}

/// Invoice state (lnrpc numbering: OPEN=0, SETTLED=1, CANCELED=2, ACCEPTED=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvState {
    /// Open.
    Open = 0,
    /// Settled.
    Settled = 1,
    /// Canceled.
    Canceled = 2,
    /// Accepted (held).
    Accepted = 3,
}

/// HTLC state (lnrpc numbering: ACCEPTED=0, SETTLED=1, CANCELED=2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtlcState {
    /// Held.
    Accepted = 0,
    /// Settled.
    Settled = 1,
    /// Failed back.
    Canceled = 2,
}

/// An HTLC paying an invoice.
#[derive(Debug, Clone)]
pub struct SimHtlc {
    /// Amount, msat.
    pub amt_msat: u64,
    /// Height when accepted.
    pub accept_height: u32,
    /// Absolute expiry height.
    pub expiry_height: u32,
    /// State.
    pub state: HtlcState,
}

/// An invoice of the sim's node.
#[derive(Debug, Clone)]
pub struct SimInvoice {
    /// Payment hash.
    pub hash: [u8; 32],
    /// Preimage (known for plain invoices and after settle).
    pub preimage: Option<[u8; 32]>,
    /// Hold invoice?
    pub hold: bool,
    /// Memo.
    pub memo: String,
    /// Amount, msat (0 = any).
    pub value_msat: u64,
    /// Paid, msat.
    pub amt_paid_msat: u64,
    /// BOLT11.
    pub payment_request: String,
    /// Payment address.
    pub payment_addr: [u8; 32],
    /// Creation time, unix s.
    pub creation_date: i64,
    /// Settle time, unix s.
    pub settle_date: i64,
    /// Expiry, seconds.
    pub expiry: u64,
    /// Final CLTV delta.
    pub cltv_expiry: u64,
    /// State.
    pub state: InvState,
    /// Add index.
    pub add_index: u64,
    /// Settle index.
    pub settle_index: u64,
    /// HTLCs.
    pub htlcs: Vec<SimHtlc>,
    /// Route hint `(node, scid)` (asset invoices).
    pub route_hint: Option<(String, u64)>,
}

/// Payment status (lnrpc numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayStatus {
    /// IN_FLIGHT.
    InFlight = 1,
    /// SUCCEEDED.
    Succeeded = 2,
    /// FAILED.
    Failed = 3,
}

/// lnrpc `PaymentFailureReason` values used by the sim.
pub mod reason {
    /// None.
    pub const NONE: i32 = 0;
    /// No route.
    pub const NO_ROUTE: i32 = 2;
    /// Incorrect payment details.
    pub const INCORRECT_PAYMENT_DETAILS: i32 = 4;
    /// Insufficient balance.
    pub const INSUFFICIENT_BALANCE: i32 = 5;
}

/// A payment in the control tower.
#[derive(Debug, Clone)]
pub struct SimPayment {
    /// Hash.
    pub hash: [u8; 32],
    /// Status.
    pub status: PayStatus,
    /// Preimage when succeeded.
    pub preimage: Option<[u8; 32]>,
    /// Amount, msat.
    pub value_msat: u64,
    /// Fee, msat.
    pub fee_msat: u64,
    /// Failure reason.
    pub failure_reason: i32,
    /// Payment index.
    pub payment_index: u64,
    /// BOLT11.
    pub payment_request: String,
    /// Creation time, ns.
    pub creation_time_ns: i64,
}

/// A scripted outcome for the next payment of a hash (simrpc.lnd numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeed (needs a known preimage).
    Succeed,
    /// Stay in flight until resolved.
    Stuck,
    /// Fail with NO_ROUTE.
    NoRoute,
    /// Fail with INCORRECT_PAYMENT_DETAILS.
    IncorrectDetails,
    /// End the stream after IN_FLIGHT; succeed in the background.
    DropStreamThenSucceed,
}

/// What `send_payment` decided.
#[derive(Debug, Clone)]
pub struct SendDecision {
    /// The payment after the decision.
    pub payment: SimPayment,
    /// End the client's stream with UNAVAILABLE after IN_FLIGHT.
    pub drop_stream: bool,
}

/// Registry events for streams.
#[derive(Debug, Clone)]
pub enum Event {
    /// An invoice changed (added, accepted, settled, canceled).
    Invoice(Box<SimInvoice>),
    /// A payment changed.
    Payment(Box<SimPayment>),
    /// Fault injection: drop streams watching this hash.
    DropStreams([u8; 32]),
}

/// The simulated node.
#[derive(Debug)]
pub struct LndState {
    secp: Secp256k1<secp256k1::All>,
    node_key: SecretKey,
    /// The node's public key.
    pub node_id: PublicKey,
    external_key: SecretKey,
    /// Invoices by hash.
    pub invoices: HashMap<[u8; 32], SimInvoice>,
    next_add_index: u64,
    next_settle_index: u64,
    /// Payments by hash.
    pub payments: HashMap<[u8; 32], SimPayment>,
    next_payment_index: u64,
    /// Preimages of invoices of "other nodes" (external payees).
    pub external_preimages: HashMap<[u8; 32], [u8; 32]>,
    /// Scripted payment outcomes by hash.
    pub scripts: HashMap<[u8; 32], (Outcome, u64)>,
    /// Outbound channel liquidity, msat.
    pub local_msat: u64,
    /// Inbound channel liquidity, msat.
    pub remote_msat: u64,
    /// Confirmed on-chain balance, sat.
    pub wallet_confirmed_sat: i64,
    /// Unconfirmed on-chain balance, sat.
    pub wallet_unconfirmed_sat: i64,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn unix() -> i64 {
    i64::try_from(now().as_secs()).unwrap_or(i64::MAX)
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// Parameters of a new invoice.
#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    /// Memo.
    pub memo: String,
    /// Hash for a hold invoice; `None` makes a plain invoice with a fresh preimage.
    pub hold_hash: Option<[u8; 32]>,
    /// Preimage for a plain invoice (`None` = random).
    pub preimage: Option<[u8; 32]>,
    /// Amount, msat.
    pub value_msat: u64,
    /// Expiry, seconds (0 = default).
    pub expiry: u64,
    /// Final CLTV delta (0 = default).
    pub cltv_expiry: u64,
    /// A route hint `(node, scid)`.
    pub route_hint: Option<(String, u64)>,
}

impl LndState {
    /// A node with a fresh key and the given channel liquidity.
    pub fn new(local_msat: u64, remote_msat: u64) -> Self {
        let secp = Secp256k1::new();
        let node_key = SecretKey::new(&mut rand::thread_rng());
        let external_key = SecretKey::new(&mut rand::thread_rng());
        let node_id = PublicKey::from_secret_key(&secp, &node_key);
        Self {
            secp,
            node_key,
            node_id,
            external_key,
            invoices: HashMap::new(),
            next_add_index: 0,
            next_settle_index: 0,
            payments: HashMap::new(),
            next_payment_index: 0,
            external_preimages: HashMap::new(),
            scripts: HashMap::new(),
            local_msat,
            remote_msat,
            wallet_confirmed_sat: 1_000_000,
            wallet_unconfirmed_sat: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_invoice(
        &self,
        key: &SecretKey,
        hash: [u8; 32],
        secret: [u8; 32],
        memo: &str,
        value_msat: u64,
        expiry: u64,
        cltv: u64,
        route_hint: Option<&(String, u64)>,
    ) -> Result<String, SimError> {
        let mut b = InvoiceBuilder::new(Currency::Regtest)
            .description(memo.to_owned())
            .payment_hash(sha256::Hash::from_byte_array(hash))
            .payment_secret(PaymentSecret(secret))
            .duration_since_epoch(now())
            .min_final_cltv_expiry_delta(cltv)
            .expiry_time(Duration::from_secs(expiry));
        if let Some((node, scid)) = route_hint {
            let node: PublicKey = node
                .parse()
                .map_err(|_| SimError::Invalid("bad route hint node".into()))?;
            b = b.private_route(lightning_invoice::RouteHint(vec![
                lightning_invoice::RouteHintHop {
                    src_node_id: node,
                    short_channel_id: *scid,
                    fees: lightning_invoice::RoutingFees {
                        base_msat: 0,
                        proportional_millionths: 0,
                    },
                    cltv_expiry_delta: 40,
                    htlc_minimum_msat: None,
                    htlc_maximum_msat: None,
                },
            ]));
        }
        let signed = if value_msat > 0 {
            b.amount_milli_satoshis(value_msat)
                .build_signed(|h| self.secp.sign_ecdsa_recoverable(h, key))
        } else {
            b.build_signed(|h| self.secp.sign_ecdsa_recoverable(h, key))
        };
        signed
            .map(|i| i.to_string())
            .map_err(|e| SimError::Invalid(format!("cannot build invoice: {e:?}")))
    }

    /// Adds an invoice (plain or hold). A second invoice for a hash is `AlreadyExists`.
    pub fn add_invoice(&mut self, req: NewInvoice) -> Result<SimInvoice, SimError> {
        let (hash, preimage) = match req.hold_hash {
            Some(h) => (h, None),
            None => {
                let p = req.preimage.unwrap_or_else(random32);
                (sha256::Hash::hash(&p).to_byte_array(), Some(p))
            }
        };
        if self.invoices.contains_key(&hash) {
            return Err(SimError::AlreadyExists(
                "invoice with payment hash already exists".into(),
            ));
        }
        let expiry = if req.expiry == 0 {
            DEFAULT_EXPIRY_SECS
        } else {
            req.expiry
        };
        let cltv = if req.cltv_expiry == 0 {
            DEFAULT_CLTV_EXPIRY
        } else {
            req.cltv_expiry
        };
        let addr = random32();
        let pr = self.sign_invoice(
            &self.node_key,
            hash,
            addr,
            &req.memo,
            req.value_msat,
            expiry,
            cltv,
            req.route_hint.as_ref(),
        )?;
        self.next_add_index = self.next_add_index.saturating_add(1);
        let inv = SimInvoice {
            hash,
            preimage,
            hold: req.hold_hash.is_some(),
            memo: req.memo,
            value_msat: req.value_msat,
            amt_paid_msat: 0,
            payment_request: pr,
            payment_addr: addr,
            creation_date: unix(),
            settle_date: 0,
            expiry,
            cltv_expiry: cltv,
            state: InvState::Open,
            add_index: self.next_add_index,
            settle_index: 0,
            htlcs: Vec::new(),
            route_hint: req.route_hint,
        };
        self.invoices.insert(hash, inv.clone());
        Ok(inv)
    }

    /// An invoice of another node whose preimage the sim keeps (an external payee).
    pub fn external_invoice(
        &mut self,
        amt_msat: u64,
        memo: &str,
        expiry: u64,
    ) -> Result<(String, [u8; 32], [u8; 32]), SimError> {
        let preimage = random32();
        let hash = sha256::Hash::hash(&preimage).to_byte_array();
        let expiry = if expiry == 0 { 3600 } else { expiry };
        let key = self.external_key;
        let pr = self.sign_invoice(&key, hash, random32(), memo, amt_msat, expiry, 40, None)?;
        self.external_preimages.insert(hash, preimage);
        Ok((pr, hash, preimage))
    }

    fn settle_locked(inv: &mut SimInvoice, settle_index: u64) {
        inv.state = InvState::Settled;
        inv.settle_index = settle_index;
        inv.settle_date = unix();
        for h in &mut inv.htlcs {
            h.state = HtlcState::Settled;
        }
    }

    fn cancel_locked(inv: &mut SimInvoice) {
        inv.state = InvState::Canceled;
        for h in &mut inv.htlcs {
            h.state = HtlcState::Canceled;
        }
    }

    /// The external payer pays an invoice of this node at chain height `height`.
    pub fn pay_own_invoice(
        &mut self,
        pay_req: &str,
        amt_msat: u64,
        height: u32,
    ) -> Result<SimInvoice, SimError> {
        let parsed: Bolt11Invoice = pay_req
            .parse()
            .map_err(|e| SimError::Invalid(format!("invalid invoice: {e}")))?;
        let hash = parsed.payment_hash().to_byte_array();
        let settle_index = self.next_settle_index.saturating_add(1);
        let inv = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| SimError::NotFound("unable to locate invoice".into()))?;
        if inv.state != InvState::Open {
            return Err(SimError::Precondition(format!(
                "invoice not open: {:?}",
                inv.state
            )));
        }
        let expires = inv
            .creation_date
            .saturating_add(i64::try_from(inv.expiry).unwrap_or(i64::MAX));
        if unix() > expires {
            return Err(SimError::Precondition("invoice expired".into()));
        }
        let amt = if amt_msat == 0 {
            inv.value_msat
        } else {
            amt_msat
        };
        if amt == 0 || amt < inv.value_msat {
            return Err(SimError::Precondition(
                "payment amount below invoice amount".into(),
            ));
        }
        let expiry_height =
            height.saturating_add(u32::try_from(inv.cltv_expiry).unwrap_or(u32::MAX));
        inv.amt_paid_msat = amt;
        inv.htlcs.push(SimHtlc {
            amt_msat: amt,
            accept_height: height,
            expiry_height,
            state: HtlcState::Accepted,
        });
        if inv.hold {
            inv.state = InvState::Accepted;
            if expiry_height <= height.saturating_add(HOLD_EXPIRY_DELTA) {
                Self::cancel_locked(inv);
            }
        } else {
            Self::settle_locked(inv, settle_index);
            self.next_settle_index = settle_index;
        }
        self.remote_msat = self.remote_msat.saturating_sub(amt);
        self.local_msat = self.local_msat.saturating_add(amt);
        Ok(inv.clone())
    }

    /// SettleInvoice: idempotent for settled invoices.
    pub fn settle(&mut self, preimage: [u8; 32]) -> Result<(SimInvoice, bool), SimError> {
        let hash = sha256::Hash::hash(&preimage).to_byte_array();
        let settle_index = self.next_settle_index.saturating_add(1);
        let inv = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| SimError::NotFound("unable to locate invoice".into()))?;
        match inv.state {
            InvState::Settled => Ok((inv.clone(), false)),
            InvState::Open => Err(SimError::Precondition("invoice still open".into())),
            InvState::Canceled => Err(SimError::Precondition("invoice already canceled".into())),
            InvState::Accepted => {
                inv.preimage = Some(preimage);
                Self::settle_locked(inv, settle_index);
                self.next_settle_index = settle_index;
                Ok((inv.clone(), true))
            }
        }
    }

    /// CancelInvoice: idempotent for canceled invoices.
    pub fn cancel(&mut self, hash: [u8; 32]) -> Result<(SimInvoice, bool), SimError> {
        let inv = self
            .invoices
            .get_mut(&hash)
            .ok_or_else(|| SimError::NotFound("unable to locate invoice".into()))?;
        match inv.state {
            InvState::Canceled => Ok((inv.clone(), false)),
            InvState::Settled => Err(SimError::Precondition("invoice already settled".into())),
            InvState::Open | InvState::Accepted => {
                if inv.state == InvState::Accepted {
                    self.local_msat = self.local_msat.saturating_sub(inv.amt_paid_msat);
                    self.remote_msat = self.remote_msat.saturating_add(inv.amt_paid_msat);
                }
                Self::cancel_locked(inv);
                Ok((inv.clone(), true))
            }
        }
    }

    /// Cancels accepted hold invoices whose HTLC expires within
    /// [`HOLD_EXPIRY_DELTA`] blocks of `height`. Returns the canceled invoices.
    pub fn on_block(&mut self, height: u32) -> Vec<SimInvoice> {
        let due: Vec<[u8; 32]> = self
            .invoices
            .values()
            .filter(|i| i.state == InvState::Accepted)
            .filter(|i| {
                i.htlcs
                    .iter()
                    .filter(|h| h.state == HtlcState::Accepted)
                    .any(|h| h.expiry_height <= height.saturating_add(HOLD_EXPIRY_DELTA))
            })
            .map(|i| i.hash)
            .collect();
        due.into_iter()
            .filter_map(|h| self.cancel(h).ok().map(|(i, _)| i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(s: &mut LndState, pre: [u8; 32], cltv: u64) -> SimInvoice {
        s.add_invoice(NewInvoice {
            memo: "lift".into(),
            hold_hash: Some(sha256::Hash::hash(&pre).to_byte_array()),
            value_msat: 50_000,
            cltv_expiry: cltv,
            ..NewInvoice::default()
        })
        .expect("add")
    }

    #[test]
    fn hold_invoice_lifecycle_and_idempotence() {
        let mut s = LndState::new(10_000_000, 10_000_000);
        let pre = [5u8; 32];
        let inv = hold(&mut s, pre, 80);
        assert_eq!(inv.add_index, 1);
        assert!(
            matches!(s.settle(pre), Err(SimError::Precondition(m)) if m == "invoice still open")
        );
        let paid = s
            .pay_own_invoice(&inv.payment_request, 0, 500)
            .expect("pay");
        assert_eq!(paid.state, InvState::Accepted);
        assert_eq!(paid.htlcs[0].expiry_height, 580);
        assert!(matches!(
            s.pay_own_invoice(&inv.payment_request, 0, 500),
            Err(SimError::Precondition(_))
        ));
        let (settled, changed) = s.settle(pre).expect("settle");
        assert!(changed);
        assert_eq!(
            (settled.state, settled.settle_index),
            (InvState::Settled, 1)
        );
        assert!(!s.settle(pre).expect("again").1);
        assert!(matches!(s.cancel(inv.hash), Err(SimError::Precondition(_))));
    }

    #[test]
    fn auto_cancel_eighteen_blocks_before_htlc_expiry() {
        let mut s = LndState::new(0, 10_000_000);
        let pre = [6u8; 32];
        let inv = hold(&mut s, pre, 40);
        s.pay_own_invoice(&inv.payment_request, 0, 100)
            .expect("pay");
        assert!(s.on_block(121).is_empty());
        let canceled = s.on_block(122);
        assert_eq!(canceled.len(), 1);
        assert_eq!(canceled[0].state, InvState::Canceled);
        assert!(
            matches!(s.settle(pre), Err(SimError::Precondition(m)) if m == "invoice already canceled")
        );
        assert!(!s.cancel(inv.hash).expect("idempotent").1);
    }

    #[test]
    fn expired_or_underpaid_invoices_are_refused_and_plain_invoices_settle_at_once() {
        let mut s = LndState::new(0, 10_000_000);
        let inv = hold(&mut s, [7u8; 32], 80);
        assert!(matches!(
            s.pay_own_invoice(&inv.payment_request, 49_999, 100),
            Err(SimError::Precondition(_))
        ));
        if let Some(i) = s.invoices.get_mut(&inv.hash) {
            i.creation_date -= 86_401;
        }
        assert!(matches!(
            s.pay_own_invoice(&inv.payment_request, 0, 100),
            Err(SimError::Precondition(m)) if m == "invoice expired"
        ));
        let plain = s
            .add_invoice(NewInvoice {
                value_msat: 1_000,
                ..NewInvoice::default()
            })
            .expect("plain");
        let paid = s
            .pay_own_invoice(&plain.payment_request, 0, 100)
            .expect("pay");
        assert_eq!((paid.state, paid.settle_index), (InvState::Settled, 1));
        assert!(paid.preimage.is_some());
        let (pr, _, _) = s.external_invoice(1_000, "x", 0).expect("ext");
        assert!(matches!(
            s.pay_own_invoice(&pr, 0, 100),
            Err(SimError::NotFound(_))
        ));
        let dup = NewInvoice {
            hold_hash: Some(inv.hash),
            ..NewInvoice::default()
        };
        assert!(matches!(
            s.add_invoice(dup),
            Err(SimError::AlreadyExists(_))
        ));
    }

    #[test]
    fn control_tower_allows_one_payment_per_hash() {
        let mut s = LndState::new(10_000_000, 0);
        let (pr, hash, pre) = s.external_invoice(20_000, "land", 0).expect("ext");
        let d = s.send_payment(&pr, 0, 5_000).expect("send");
        assert_eq!(d.payment.status, PayStatus::Succeeded);
        assert_eq!(d.payment.preimage, Some(pre));
        assert!(matches!(
            s.send_payment(&pr, 0, 5_000),
            Err(SimError::AlreadyExists(_))
        ));
        // A failed payment may be retried.
        let (pr2, hash2, _) = s.external_invoice(20_000, "land", 0).expect("ext");
        s.scripts.insert(hash2, (Outcome::NoRoute, 0));
        assert_eq!(
            s.send_payment(&pr2, 0, 5_000).expect("send").payment.status,
            PayStatus::Failed
        );
        assert_eq!(
            s.send_payment(&pr2, 0, 5_000)
                .expect("retry")
                .payment
                .status,
            PayStatus::Succeeded
        );
        assert_ne!(hash, hash2);
        assert!(matches!(
            s.resolve_payment([9; 32], true, 0),
            Err(SimError::NotFound(_))
        ));
    }
}
