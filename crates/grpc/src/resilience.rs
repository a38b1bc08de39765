//! Resilience for every back-end call: exponential backoff (1 s → 30 s), a
//! circuit breaker (open after 5 consecutive transient failures, half-open
//! after 60 s) and a [`HealthView`] snapshot of every back end for `/health`.
//!
//! Generic over the client's error type: an error type implements
//! [`Transient`] (only transient errors count against the breaker and are
//! retried) and `From<BreakerOpen>` (what a call returns while the breaker is
//! open). Time is `tokio::time`, so tests run it on a paused clock.
//!
//! This module never retries on its own initiative: callers choose with
//! [`RetryPolicy`] whether a call is safe to repeat (idempotent reads, calls
//! keyed by payment hash) or must be tried once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Whether an error is transient (the back end may answer later) or final.
pub trait Transient {
    /// True when retrying later can succeed (unavailable, timeout, reset).
    fn is_transient(&self) -> bool;
}

/// Returned instead of calling the back end while its breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: circuit breaker open, next try in {retry_in:?}")]
pub struct BreakerOpen {
    /// The back end's name (`lnd`, `tapd`, `arkd`).
    pub backend: String,
    /// How long until the breaker lets one probe call through.
    pub retry_in: Duration,
}

/// Exponential backoff: `initial`, doubled after each failure, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (1 s).
    pub initial: Duration,
    /// The cap (30 s).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// How many times a call may be tried; retries wait [`Backoff::delay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, at least 1.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Try once: for calls that must not be repeated blindly.
    pub const ONCE: Self = Self { max_attempts: 1 };
    /// Idempotent calls: up to 4 attempts (waits 1 s, 2 s, 4 s).
    pub const IDEMPOTENT: Self = Self { max_attempts: 4 };
}

/// Circuit-breaker thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker (5).
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe is allowed (60 s).
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(60),
        }
    }
}

/// The breaker's state as shown in [`HealthView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// One probe call is allowed; success closes, failure re-opens.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// A point-in-time view of one back end's health, for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthView {
    /// The back end's name.
    pub backend: String,
    /// The breaker state.
    pub state: BreakerState,
    /// Transient failures since the last success.
    pub consecutive_failures: u32,
    /// The last transient error's text (for operators only; never matched on).
    pub last_error: Option<String>,
    /// Unix seconds of the last successful call.
    pub last_success_unix: Option<u64>,
    /// Unix seconds of the last failed call.
    pub last_failure_unix: Option<u64>,
}

impl HealthView {
    /// Healthy means the breaker is closed.
    pub fn is_healthy(&self) -> bool {
        self.state == BreakerState::Closed
    }
}

#[derive(Debug)]
struct BreakerInner {
    state: BreakerState,
    opened_at: Option<Instant>,
    consecutive_failures: u32,
    probe_in_flight: bool,
    last_error: Option<String>,
    last_success_unix: Option<u64>,
    last_failure_unix: Option<u64>,
}

/// One back end's circuit breaker. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    inner: Mutex<BreakerInner>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self {
            name: name.into(),
            config,
            inner: Mutex::new(BreakerInner {
                state: BreakerState::Closed,
                opened_at: None,
                consecutive_failures: 0,
                probe_in_flight: false,
                last_error: None,
                last_success_unix: None,
                last_failure_unix: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BreakerInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The back end's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks to make a call: `Ok` lets it through (as the half-open probe when
    /// the open period has passed), `Err` refuses it.
    pub fn acquire(&self) -> Result<(), BreakerOpen> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let opened = inner.opened_at.unwrap_or_else(Instant::now);
                let elapsed = opened.elapsed();
                if elapsed >= self.config.open_for {
                    inner.state = BreakerState::HalfOpen;
                    inner.probe_in_flight = true;
                    tracing::info!(backend = %self.name, "circuit breaker half-open: probing");
                    Ok(())
                } else {
                    Err(BreakerOpen {
                        backend: self.name.clone(),
                        retry_in: self.config.open_for.saturating_sub(elapsed),
                    })
                }
            }
            BreakerState::HalfOpen => {
                if inner.probe_in_flight {
                    Err(BreakerOpen {
                        backend: self.name.clone(),
                        retry_in: Duration::ZERO,
                    })
                } else {
                    inner.probe_in_flight = true;
                    Ok(())
                }
            }
        }
    }

    /// Records a call that reached the back end and got an answer (including
    /// final errors such as `NotFound`: the back end is up).
    pub fn record_success(&self) {
        let mut inner = self.lock();
        if inner.state != BreakerState::Closed {
            tracing::info!(backend = %self.name, "circuit breaker closed");
        }
        inner.state = BreakerState::Closed;
        inner.opened_at = None;
        inner.consecutive_failures = 0;
        inner.probe_in_flight = false;
        inner.last_success_unix = Some(unix_now());
    }

    /// Records a transient failure; opens the breaker at the threshold or when
    /// the half-open probe fails.
    pub fn record_failure(&self, error: &str) {
        let mut inner = self.lock();
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.last_error = Some(error.to_owned());
        inner.last_failure_unix = Some(unix_now());
        inner.probe_in_flight = false;
        let open = match inner.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => inner.consecutive_failures >= self.config.failure_threshold,
            BreakerState::Open => false,
        };
        if open {
            tracing::warn!(backend = %self.name, failures = inner.consecutive_failures, error, "circuit breaker open");
            inner.state = BreakerState::Open;
            inner.opened_at = Some(Instant::now());
        }
    }

    /// The current state (an open breaker whose period has passed reads as
    /// half-open, since the next call will probe).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) if at.elapsed() >= self.config.open_for => {
                BreakerState::HalfOpen
            }
            (state, _) => state,
        }
    }

    /// A snapshot for `/health`.
    pub fn view(&self) -> HealthView {
        let state = self.state();
        let inner = self.lock();
        HealthView {
            backend: self.name.clone(),
            state,
            consecutive_failures: inner.consecutive_failures,
            last_error: inner.last_error.clone(),
            last_success_unix: inner.last_success_unix,
            last_failure_unix: inner.last_failure_unix,
        }
    }
}

/// Every back end's breaker, by name, for the `/health` endpoint.
#[derive(Debug, Clone, Default)]
pub struct HealthRegistry {
    breakers: Arc<Mutex<BTreeMap<String, Arc<CircuitBreaker>>>>,
}

impl HealthRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or returns the existing) breaker of a back end.
    pub fn breaker(&self, name: &str, config: BreakerConfig) -> Arc<CircuitBreaker> {
        let mut map = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(name, config)))
            .clone()
    }

    /// One view per registered back end, sorted by name.
    pub fn snapshot(&self) -> Vec<HealthView> {
        let map = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        map.values().map(|b| b.view()).collect()
    }
}

/// Backoff plus breaker for one back end: wrap every call in [`Resilience::call`].
#[derive(Debug, Clone)]
pub struct Resilience {
    breaker: Arc<CircuitBreaker>,
    backoff: Backoff,
}

impl Resilience {
    /// A resilience layer for `name`, registered in `registry`.
    pub fn new(name: &str, registry: &HealthRegistry) -> Self {
        Self::with_config(name, registry, BreakerConfig::default(), Backoff::default())
    }

    /// As [`Resilience::new`] with explicit thresholds.
    pub fn with_config(
        name: &str,
        registry: &HealthRegistry,
        breaker: BreakerConfig,
        backoff: Backoff,
    ) -> Self {
        Self {
            breaker: registry.breaker(name, breaker),
            backoff,
        }
    }

    /// A layer with its own unregistered breaker (tests, one-off tools).
    pub fn standalone(name: &str) -> Self {
        Self {
            breaker: Arc::new(CircuitBreaker::new(name, BreakerConfig::default())),
            backoff: Backoff::default(),
        }
    }

    /// The breaker (for health views and tests).
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The backoff schedule.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Runs `op` through the breaker, retrying transient failures with
    /// backoff up to `policy.max_attempts`. Final errors return at once and
    /// count as a live back end.
    pub async fn call<T, E, F, Fut>(&self, policy: RetryPolicy, mut op: F) -> Result<T, E>
    where
        E: Transient + From<BreakerOpen> + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            self.breaker.acquire()?;
            match op().await {
                Ok(v) => {
                    self.breaker.record_success();
                    return Ok(v);
                }
                Err(e) if e.is_transient() => {
                    self.breaker.record_failure(&e.to_string());
                    attempt = attempt.saturating_add(1);
                    // No point waiting for a retry the open breaker will refuse.
                    if attempt >= attempts || self.breaker.state() == BreakerState::Open {
                        return Err(e);
                    }
                    let delay = self.backoff.delay(attempt.saturating_sub(1));
                    tracing::debug!(backend = %self.breaker.name(), ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    self.breaker.record_success();
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum E {
        #[error("down")]
        Down,
        #[error("final")]
        Final,
        #[error(transparent)]
        Open(#[from] BreakerOpen),
    }
    impl Transient for E {
        fn is_transient(&self) -> bool {
            matches!(self, E::Down)
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_to_thirty() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|i| b.delay(i).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_five_failures_then_half_opens_after_sixty_seconds() {
        let registry = HealthRegistry::new();
        let r = Resilience::new("lnd", &registry);
        for _ in 0..4 {
            let res: Result<(), E> = r.call(RetryPolicy::ONCE, || async { Err(E::Down) }).await;
            assert!(matches!(res, Err(E::Down)));
            assert_eq!(r.breaker().state(), BreakerState::Closed);
        }
        let _: Result<(), E> = r.call(RetryPolicy::ONCE, || async { Err(E::Down) }).await;
        assert_eq!(r.breaker().state(), BreakerState::Open);
        let refused: Result<(), E> = r.call(RetryPolicy::ONCE, || async { Ok(()) }).await;
        assert!(matches!(refused, Err(E::Open(_))));
        let view = &registry.snapshot()[0];
        assert_eq!(
            (view.backend.as_str(), view.state, view.consecutive_failures),
            ("lnd", BreakerState::Open, 5)
        );

        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(r.breaker().state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(r.breaker().state(), BreakerState::HalfOpen);
        // A failed probe re-opens for another 60 s.
        let _: Result<(), E> = r.call(RetryPolicy::ONCE, || async { Err(E::Down) }).await;
        assert_eq!(r.breaker().state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(60)).await;
        let ok: Result<u8, E> = r.call(RetryPolicy::ONCE, || async { Ok(7) }).await;
        assert_eq!(ok.ok(), Some(7));
        assert_eq!(r.breaker().state(), BreakerState::Closed);
        assert!(registry.snapshot()[0].is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff_and_final_errors_do_not_count() {
        let r = Resilience::standalone("tapd");
        let start = Instant::now();
        let mut n = 0;
        let res: Result<(), E> = r
            .call(RetryPolicy::IDEMPOTENT, || {
                n += 1;
                async { Err(E::Down) }
            })
            .await;
        assert!(matches!(res, Err(E::Down)));
        assert_eq!(n, 4);
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 4));
        let res: Result<(), E> = r
            .call(RetryPolicy::IDEMPOTENT, || async { Err(E::Final) })
            .await;
        assert!(matches!(res, Err(E::Final)));
        assert_eq!(r.breaker().view().consecutive_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_allows_a_single_probe() {
        let r = Resilience::with_config(
            "arkd",
            &HealthRegistry::new(),
            BreakerConfig {
                failure_threshold: 1,
                open_for: Duration::from_secs(60),
            },
            Backoff::default(),
        );
        r.breaker().record_failure("x");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(r.breaker().acquire().is_ok());
        assert!(r.breaker().acquire().is_err());
        r.breaker().record_success();
        assert!(r.breaker().acquire().is_ok());
    }
}
