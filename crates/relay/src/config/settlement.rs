//! The `[settlement]` section: hourly L1 settlement (PRD §10.4).

use std::time::Duration;

use ark_relay_engine::settlement::SettlementConfig;
use serde::{Deserialize, Serialize};

/// `[settlement]`: commit each period's Merkle root on L1 and publish 31342.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettlementSection {
    /// Run settlement (in the scheduler role; needs lnd or `dev`'s simulator).
    pub enabled: bool,
    /// Period length, seconds; periods are aligned to multiples of it
    /// (3600 = on the hour, cron `0 * * * *`).
    pub period_secs: u64,
    /// A period is closed this long after its end (lets in-flight commits land).
    pub settle_delay_secs: u64,
    /// How often the task looks for work, seconds.
    pub tick_secs: u64,
    /// Confirmation target of the fee estimate, blocks.
    pub conf_target: u32,
    /// Fee-rate increase per retry, percent.
    pub fee_bump_percent: u64,
    /// Fee-rate ceiling, sat/vB.
    pub max_fee_rate_sat_vb: u64,
    /// First retry delay after a failed broadcast, seconds (doubles each time).
    pub retry_base_secs: u64,
    /// Retry delay ceiling, seconds.
    pub retry_max_secs: u64,
    /// Failed broadcasts before a period is marked failed (operator action).
    pub max_attempts: u32,
    /// Confirmations before the 31342 is published.
    pub min_confirmations: u32,
    /// `dev` only: mine a simulator block this often when its mempool is not
    /// empty, so commitments confirm (0 = never; mine through the sim's admin RPC).
    pub dev_block_secs: u64,
}

impl Default for SettlementSection {
    fn default() -> Self {
        let c = SettlementConfig::default();
        Self {
            enabled: true,
            period_secs: u64::try_from(c.period_secs).unwrap_or(3600),
            settle_delay_secs: u64::try_from(c.settle_delay_secs).unwrap_or(60),
            tick_secs: c.tick.as_secs(),
            conf_target: c.conf_target,
            fee_bump_percent: c.fee_bump_percent,
            max_fee_rate_sat_vb: c.max_fee_rate,
            retry_base_secs: c.retry_base.as_secs(),
            retry_max_secs: c.retry_max.as_secs(),
            max_attempts: c.max_attempts,
            min_confirmations: c.min_confirmations,
            dev_block_secs: 10,
        }
    }
}

impl SettlementSection {
    /// The engine's settlement tuning.
    pub fn engine(&self) -> SettlementConfig {
        SettlementConfig {
            period_secs: i64::try_from(self.period_secs.max(1)).unwrap_or(3600),
            settle_delay_secs: i64::try_from(self.settle_delay_secs).unwrap_or(60),
            tick: Duration::from_secs(self.tick_secs.max(1)),
            conf_target: self.conf_target.max(1),
            fee_bump_percent: self.fee_bump_percent,
            max_fee_rate: self.max_fee_rate_sat_vb.max(1),
            retry_base: Duration::from_secs(self.retry_base_secs.max(1)),
            retry_max: Duration::from_secs(self.retry_max_secs.max(1)),
            max_attempts: self.max_attempts.max(1),
            min_confirmations: self.min_confirmations.max(1),
            ..SettlementConfig::default()
        }
    }

    /// Range problems, for `config --check`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.period_secs < 60 {
            out.push("settlement.period_secs must be at least 60".to_owned());
        }
        if self.tick_secs == 0 || self.max_attempts == 0 || self.conf_target == 0 {
            out.push("settlement.tick_secs, max_attempts and conf_target must be > 0".to_owned());
        }
        if self.max_fee_rate_sat_vb == 0 || self.fee_bump_percent == 0 {
            out.push("settlement.max_fee_rate_sat_vb and fee_bump_percent must be > 0".to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_hourly_and_convert() {
        let s = SettlementSection::default();
        assert!(s.problems().is_empty());
        let e = s.engine();
        assert_eq!(e.period_secs, 3600);
        assert_eq!(e, SettlementConfig::default());
        let bad = SettlementSection {
            period_secs: 5,
            ..SettlementSection::default()
        };
        assert_eq!(bad.problems().len(), 1);
    }
}
