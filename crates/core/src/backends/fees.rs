//! Fee estimation for on-chain decisions (inventory replenishment, PRD
//! §10.3.3): the [`FeeEstimator`] port and [`max_fee_rate`], which asks
//! several estimators and takes the highest answer (a pessimistic view: the
//! relay only calls fees "low" when every source agrees).
//!
//! Adapters over the existing ports live here because they only forward:
//! [`LightningFees`] (lnd `WalletKit.EstimateFee`) and [`ChainFees`] (the L1
//! wallet of settlement). Other sources (the chain simulator, a mempool API)
//! implement the trait in their adapter crates.

use std::sync::Arc;

use async_trait::async_trait;

use super::chain::L1Chain;
use super::lightning::Lightning;

/// A fee estimator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fee estimator {source_name}: {message}")]
pub struct FeeError {
    /// The estimator's name.
    pub source_name: String,
    /// What went wrong (for logs).
    pub message: String,
}

impl FeeError {
    /// An error of estimator `source_name`.
    pub fn new(source_name: &str, message: impl std::fmt::Display) -> Self {
        Self {
            source_name: source_name.to_owned(),
            message: message.to_string(),
        }
    }
}

/// One source of fee rates.
#[async_trait]
pub trait FeeEstimator: Send + Sync + 'static {
    /// A short name for logs and metrics (`lnd`, `chain`, …).
    fn name(&self) -> &str;
    /// The rate for confirmation within a few blocks, sat/vB (≥ 1).
    async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError>;
}

/// What [`max_fee_rate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeSurvey {
    /// The highest answer, `None` when no estimator answered.
    pub max_sat_vb: Option<u64>,
    /// Each estimator's answer, in the order given.
    pub answers: Vec<(String, Result<u64, FeeError>)>,
}

/// Asks every estimator (concurrently) and takes the maximum of the answers.
pub async fn max_fee_rate(estimators: &[Arc<dyn FeeEstimator>]) -> FeeSurvey {
    let answers: Vec<(String, Result<u64, FeeError>)> = futures_join(estimators.iter().map(|e| {
        let e = e.clone();
        async move { (e.name().to_owned(), e.fee_rate_sat_vb().await) }
    }))
    .await;
    let max_sat_vb = answers
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .max();
    FeeSurvey {
        max_sat_vb,
        answers,
    }
}

/// Runs the futures concurrently and collects their outputs in order,
/// without a runtime dependency.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Confirmation target the adapters ask for (blocks).
pub const DEFAULT_CONF_TARGET: u32 = 6;

/// lnd's estimate (`WalletKit.EstimateFee`) through the [`Lightning`] port.
pub struct LightningFees {
    node: Arc<dyn Lightning>,
    conf_target: u32,
}

impl LightningFees {
    /// Estimates through `node` for `conf_target` blocks.
    pub fn new(node: Arc<dyn Lightning>, conf_target: u32) -> Self {
        Self { node, conf_target }
    }
}

#[async_trait]
impl FeeEstimator for LightningFees {
    fn name(&self) -> &str {
        "lnd"
    }
    async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError> {
        self.node
            .estimate_fee_rate(self.conf_target)
            .await
            .map_err(|e| FeeError::new("lnd", e))
    }
}

/// The L1 wallet's estimate through the [`L1Chain`] port.
pub struct ChainFees {
    chain: Arc<dyn L1Chain>,
    conf_target: u32,
}

impl ChainFees {
    /// Estimates through `chain` for `conf_target` blocks.
    pub fn new(chain: Arc<dyn L1Chain>, conf_target: u32) -> Self {
        Self { chain, conf_target }
    }
}

#[async_trait]
impl FeeEstimator for ChainFees {
    fn name(&self) -> &str {
        "chain"
    }
    async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError> {
        self.chain
            .estimate_fee_rate(self.conf_target)
            .await
            .map_err(|e| FeeError::new("chain", e))
    }
}

/// A fixed rate (configuration override, tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedFee(pub u64);

#[async_trait]
impl FeeEstimator for FixedFee {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;

    #[async_trait]
    impl FeeEstimator for Failing {
        fn name(&self) -> &str {
            "down"
        }
        async fn fee_rate_sat_vb(&self) -> Result<u64, FeeError> {
            Err(FeeError::new("down", "unreachable"))
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The futures here never wait on I/O: poll to completion with a no-op waker.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = Box::pin(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn takes_the_max_and_ignores_failures() {
        let all: Vec<Arc<dyn FeeEstimator>> = vec![
            Arc::new(FixedFee(4)),
            Arc::new(Failing),
            Arc::new(FixedFee(12)),
        ];
        let s = block_on(max_fee_rate(&all));
        assert_eq!(s.max_sat_vb, Some(12));
        assert_eq!(s.answers.len(), 3);
        assert!(s.answers[1].1.is_err());
        let none: Vec<Arc<dyn FeeEstimator>> = vec![Arc::new(Failing)];
        assert_eq!(block_on(max_fee_rate(&none)).max_sat_vb, None);
        assert_eq!(block_on(max_fee_rate(&[])).max_sat_vb, None);
    }
}
