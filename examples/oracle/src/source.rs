//! Price sources: where the oracle reads a pair's price. [`PriceSource`] is a
//! trait so a deployment can add exchange fetchers; the two shipped here do
//! no network I/O and are real back ends, not mocks:
//!
//! - [`FixedSource`]: prices set by code (tests, demos) — deterministic;
//! - [`ScriptedSource`]: a text file re-read on every tick, one line per pair
//!   (`BTC/USD 65432.10 64000 58000`): each tick takes the next price of the
//!   line and then stays on the last one, so editing the file moves the price.
//!
//! Prices are integers in fixed decimals (`price × 10^decimals`); text is
//! parsed by [`parse_price`], never through a float.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

/// Why a source has no price.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source could not be read (transient: the oracle skips it this tick).
    #[error("{source_name}: {message}")]
    Unavailable {
        /// The source's name.
        source_name: String,
        /// What went wrong.
        message: String,
        /// The cause, when there is one.
        #[source]
        cause: Option<std::io::Error>,
    },
    /// The source answered something that is not a price.
    #[error("{source_name}: bad price {text:?}: {reason}")]
    BadPrice {
        /// The source's name.
        source_name: String,
        /// The offending text.
        text: String,
        /// Why it is refused.
        reason: PriceParseError,
    },
}

/// Why a decimal text is not a price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceParseError {
    /// Not digits with at most one `.`.
    #[error("not a decimal number")]
    NotDecimal,
    /// More fractional digits than the oracle's decimals (no rounding).
    #[error("more than {0} decimals")]
    TooPrecise(u8),
    /// Zero is not a price.
    #[error("zero")]
    Zero,
    /// Does not fit in 64 bits.
    #[error("too large")]
    Overflow,
}

/// `text` (`"65432.1"`) in units of `10^-decimals` (`6543210` for 2 decimals).
pub fn parse_price(text: &str, decimals: u8) -> Result<u64, PriceParseError> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (text.contains('.') && frac.is_empty()) {
        return Err(PriceParseError::NotDecimal);
    }
    if frac.len() > usize::from(decimals) {
        return Err(PriceParseError::TooPrecise(decimals));
    }
    let padded = format!("{int}{frac:0<width$}", width = usize::from(decimals));
    let v: u64 = padded.parse().map_err(|_| PriceParseError::Overflow)?;
    if v == 0 {
        return Err(PriceParseError::Zero);
    }
    Ok(v)
}

/// Where the oracle reads prices.
#[async_trait]
pub trait PriceSource: Send + Sync {
    /// The source's name (published in the price event's `sources`).
    fn name(&self) -> &str;

    /// The price of `pair` (`"BTC/USD"`) in fixed decimals now, or `None`
    /// when this source does not quote the pair.
    async fn price(&self, pair: &str) -> Result<Option<u64>, SourceError>;
}

/// Prices set by code: the deterministic source of tests and demos. Clones
/// share the prices, so a test keeps a handle and moves the market.
#[derive(Debug, Clone)]
pub struct FixedSource {
    name: String,
    prices: Arc<Mutex<HashMap<String, u64>>>,
}

impl FixedSource {
    /// An empty source called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prices: Arc::default(),
        }
    }

    /// Sets `pair`'s price (fixed decimals).
    pub fn set(&self, pair: &str, price: u64) {
        if let Ok(mut m) = self.prices.lock() {
            m.insert(pair.to_owned(), price);
        }
    }

    /// `self` with `pair` at `price`.
    pub fn with(self, pair: &str, price: u64) -> Self {
        self.set(pair, price);
        self
    }
}

#[async_trait]
impl PriceSource for FixedSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn price(&self, pair: &str) -> Result<Option<u64>, SourceError> {
        let m = self.prices.lock().map_err(|_| SourceError::Unavailable {
            source_name: self.name.clone(),
            message: "poisoned".into(),
            cause: None,
        })?;
        Ok(m.get(pair).copied())
    }
}

/// A text file of prices, re-read on every tick (see the module docs). Lines
/// are `PAIR PRICE [PRICE …]`; `#` starts a comment.
#[derive(Debug)]
pub struct ScriptedSource {
    name: String,
    path: PathBuf,
    decimals: u8,
    /// How many prices of each pair's line were already served.
    steps: Mutex<HashMap<String, usize>>,
}

impl ScriptedSource {
    /// The file at `path`, prices with `decimals`.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, decimals: u8) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            decimals,
            steps: Mutex::default(),
        }
    }

    fn unavailable(&self, message: String, cause: Option<std::io::Error>) -> SourceError {
        SourceError::Unavailable {
            source_name: self.name.clone(),
            message,
            cause,
        }
    }
}

#[async_trait]
impl PriceSource for ScriptedSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn price(&self, pair: &str) -> Result<Option<u64>, SourceError> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| self.unavailable(format!("reading {}", self.path.display()), Some(e)))?;
        let Some(prices) = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").split_whitespace())
            .find_map(|mut words| (words.next() == Some(pair)).then(|| words.collect::<Vec<_>>()))
        else {
            return Ok(None);
        };
        let mut steps = self
            .steps
            .lock()
            .map_err(|_| self.unavailable("poisoned".into(), None))?;
        let step = steps.entry(pair.to_owned()).or_insert(0);
        let Some(word) = prices.get(*step).or(prices.last()) else {
            return Ok(None);
        };
        *step = step.saturating_add(1);
        parse_price(word, self.decimals)
            .map(Some)
            .map_err(|reason| SourceError::BadPrice {
                source_name: self.name.clone(),
                text: (*word).to_owned(),
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_without_floats() {
        assert_eq!(parse_price("65432.10", 2), Ok(6_543_210));
        assert_eq!(parse_price("65432.1", 2), Ok(6_543_210));
        assert_eq!(parse_price("58000", 2), Ok(5_800_000));
        assert_eq!(parse_price("0.07", 2), Ok(7));
        assert_eq!(parse_price("1.005", 2), Err(PriceParseError::TooPrecise(2)));
        assert_eq!(parse_price("0.00", 2), Err(PriceParseError::Zero));
        for bad in ["", ".5", "5.", "-1", "1e3", "1.2.3", " 1"] {
            assert_eq!(
                parse_price(bad, 2),
                Err(PriceParseError::NotDecimal),
                "{bad}"
            );
        }
        assert_eq!(
            parse_price("99999999999999999999", 0),
            Err(PriceParseError::Overflow)
        );
    }

    #[tokio::test]
    async fn a_scripted_file_steps_through_its_prices_and_follows_edits() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("prices.txt");
        std::fs::write(
            &path,
            "# demo\nBTC/USD 65000 64000.5 # falling\nETH/USD 3500\n",
        )
        .expect("write");
        let s = ScriptedSource::new("script", &path, 2);
        assert_eq!(s.price("BTC/USD").await.expect("p"), Some(6_500_000));
        assert_eq!(s.price("BTC/USD").await.expect("p"), Some(6_400_050));
        assert_eq!(s.price("BTC/USD").await.expect("p"), Some(6_400_050));
        assert_eq!(s.price("ETH/USD").await.expect("p"), Some(350_000));
        assert_eq!(s.price("SOL/USD").await.expect("p"), None);
        std::fs::write(&path, "BTC/USD 58000\n").expect("edit");
        assert_eq!(s.price("BTC/USD").await.expect("p"), Some(5_800_000));
        std::fs::write(&path, "BTC/USD lots\n").expect("edit");
        assert!(matches!(
            s.price("BTC/USD").await,
            Err(SourceError::BadPrice { .. })
        ));
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(
            s.price("BTC/USD").await,
            Err(SourceError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn a_fixed_source_is_shared_by_its_clones() {
        let s = FixedSource::new("a").with("BTC/USD", 1);
        let handle = s.clone();
        handle.set("BTC/USD", 2);
        assert_eq!(s.price("BTC/USD").await.expect("p"), Some(2));
        assert_eq!(s.price("ETH/USD").await.expect("p"), None);
    }
}
