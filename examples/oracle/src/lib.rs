//! # ark-relay-oracle — a reference price oracle for Ark Relay (PRD §12 scenario 6)
//!
//! Reads each configured pair's price from several [`PriceSource`]s, takes the
//! median ([`median`]) over those that answered (with a quorum), and publishes
//! it as a signed Nostr event of kind [`ORACLE_PRICE`] (30420, addressable,
//! `d` = pair: one oracle key serves every pair, relays keep the latest per
//! pair). The content is [`OraclePriceContent`] from `ark-relay-protocol`:
//! an integer price with explicit decimals — never a float — its timestamp
//! and the sources behind it.
//!
//! The relay and the wallets never read these events directly: a perpetuals
//! DEX marks its positions on them, and a liquidation carries one as the
//! witness that the price went beyond the user's signed threshold, which the
//! relay checks (see `docs/protocol.md`, "Conditional co-signing").
//!
//! This crate owns the sources, the medianiser and the publishing loop; it
//! never defines the wire format (that is `ark_relay_protocol::perps`).

pub mod median;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::UnixTime;
use ark_relay_protocol::content::WireAmount;
use ark_relay_protocol::perps::{price_event_builder, valid_pair};
pub use ark_relay_protocol::perps::{OraclePriceContent, ORACLE_PRICE};
use ark_relay_protocol::transport::NostrTransport;
use nostr::{Event, Keys};
use tokio::sync::watch;

pub use median::{medianise, Median, MedianError};
pub use source::{parse_price, FixedSource, PriceSource, ScriptedSource, SourceError};

/// Why the oracle could not publish a pair's price.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// Not a pair such as `BTC/USD`.
    #[error("not a pair: {0:?} (two upper-case symbols joined by '/')")]
    BadPair(String),
    /// Too few sources answered.
    #[error("{pair}: {source}")]
    NoPrice {
        /// The pair.
        pair: String,
        /// Why.
        #[source]
        source: MedianError,
    },
    /// The event could not be built or signed.
    #[error("signing the price event: {0}")]
    Sign(String),
    /// No Nostr relay accepted the event.
    #[error(transparent)]
    Publish(#[from] ark_relay_protocol::transport::TransportError),
}

/// What the oracle publishes and how.
#[derive(Debug, Clone)]
pub struct OracleConfig {
    /// Pairs to publish (`BTC/USD`, `ETH/USD`).
    pub pairs: Vec<String>,
    /// Decimals of every price.
    pub decimals: u8,
    /// How many sources must answer for a price to be published.
    pub min_sources: usize,
    /// Time between two rounds of prices.
    pub interval: Duration,
}

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            pairs: vec!["BTC/USD".into(), "ETH/USD".into()],
            decimals: 2,
            min_sources: 1,
            interval: Duration::from_secs(10),
        }
    }
}

/// The oracle: a key, its sources and what it publishes.
pub struct Oracle {
    keys: Keys,
    sources: Vec<Arc<dyn PriceSource>>,
    config: OracleConfig,
}

impl Oracle {
    /// An oracle signing with `keys`; the pairs are checked here.
    pub fn new(
        keys: Keys,
        sources: Vec<Arc<dyn PriceSource>>,
        config: OracleConfig,
    ) -> Result<Self, OracleError> {
        if let Some(bad) = config.pairs.iter().find(|p| !valid_pair(p)) {
            return Err(OracleError::BadPair(bad.clone()));
        }
        Ok(Self {
            keys,
            sources,
            config,
        })
    }

    /// The oracle's public key (what a user names as `liquidation_oracle`).
    pub fn public_key(&self) -> nostr::PublicKey {
        self.keys.public_key()
    }

    /// The configuration.
    pub fn config(&self) -> &OracleConfig {
        &self.config
    }

    /// Reads every source for `pair` and medianises; a failing source is
    /// skipped (logged) and counts against the quorum.
    pub async fn observe(
        &self,
        pair: &str,
        now: UnixTime,
    ) -> Result<OraclePriceContent, OracleError> {
        let mut readings = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            match s.price(pair).await {
                Ok(Some(p)) => readings.push((s.name().to_owned(), p)),
                Ok(None) => {}
                Err(e) => tracing::warn!(pair, source = s.name(), error = %e, "source skipped"),
            }
        }
        let m = medianise(&readings, self.config.min_sources).map_err(|source| {
            OracleError::NoPrice {
                pair: pair.to_owned(),
                source,
            }
        })?;
        Ok(OraclePriceContent {
            v: 1,
            pair: pair.to_owned(),
            price: WireAmount::new(m.price),
            decimals: self.config.decimals,
            timestamp: now.0,
            sources: m.sources,
        })
    }

    /// The signed 30420 event of `content`.
    pub fn sign(&self, content: &OraclePriceContent) -> Result<Event, OracleError> {
        price_event_builder(content)
            .map_err(|r| OracleError::Sign(r.message))?
            .sign_with_keys(&self.keys)
            .map_err(|e| OracleError::Sign(e.to_string()))
    }

    /// One round: observes, signs and publishes every pair; returns the
    /// events published (a pair without a price is logged and skipped).
    pub async fn tick(&self, transport: &dyn NostrTransport) -> Vec<Event> {
        let mut out = Vec::new();
        for pair in &self.config.pairs {
            let published = async {
                let content = self.observe(pair, UnixTime::now()).await?;
                let event = self.sign(&content)?;
                transport.publish(&event).await?;
                Ok::<_, OracleError>((content, event))
            }
            .await;
            match published {
                Ok((c, e)) => {
                    tracing::info!(pair = %c.pair, price = ?c.price, decimals = c.decimals,
                        sources = c.sources.len(), event = %e.id, "price published");
                    out.push(e);
                }
                Err(e) => tracing::warn!(pair, error = %e, "no price this round"),
            }
        }
        out
    }

    /// Publishes a round every `interval` until `stop` turns `true`.
    pub async fn run(&self, transport: &dyn NostrTransport, mut stop: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.config.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => { self.tick(transport).await; }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        tracing::info!("oracle stopping");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relay_protocol::perps::parse_price_event;

    #[tokio::test]
    async fn the_oracle_signs_the_median_of_its_sources_per_pair() {
        let (a, b, c) = (
            FixedSource::new("a")
                .with("BTC/USD", 6_500_000)
                .with("ETH/USD", 350_000),
            FixedSource::new("b").with("BTC/USD", 6_510_000),
            FixedSource::new("c")
                .with("BTC/USD", 1)
                .with("ETH/USD", 351_000),
        );
        let keys = Keys::generate();
        let oracle = Oracle::new(
            keys.clone(),
            vec![Arc::new(a), Arc::new(b), Arc::new(c)],
            OracleConfig {
                min_sources: 2,
                ..OracleConfig::default()
            },
        )
        .expect("oracle");
        let btc = oracle
            .observe("BTC/USD", UnixTime(1_700_000_000))
            .await
            .expect("btc");
        assert_eq!(btc.price, WireAmount::new(6_500_000));
        assert_eq!(btc.sources, ["a", "b", "c"]);
        let eth = oracle
            .observe("ETH/USD", UnixTime(1_700_000_000))
            .await
            .expect("eth");
        assert_eq!(
            eth.price,
            WireAmount::new(350_500),
            "mean of the two middles"
        );
        assert!(matches!(
            oracle.observe("SOL/USD", UnixTime(0)).await,
            Err(OracleError::NoPrice { .. })
        ));
        let ev = oracle.sign(&btc).expect("sign");
        assert_eq!(ev.kind.as_u16(), ORACLE_PRICE);
        let valid = parse_price_event(&ev).expect("valid");
        assert_eq!(
            (valid.pair.as_str(), valid.price, valid.decimals),
            ("BTC/USD", 6_500_000, 2)
        );
        assert_eq!(ev.pubkey, keys.public_key());
        assert!(matches!(
            Oracle::new(
                keys,
                vec![],
                OracleConfig {
                    pairs: vec!["btcusd".into()],
                    ..OracleConfig::default()
                }
            ),
            Err(OracleError::BadPair(_))
        ));
    }
}
