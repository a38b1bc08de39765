//! The `[rounds]` and `[renewal]` sections of the configuration: the relay
//! in Ark batch rounds (inventory boarding and renewal, users' delegated
//! renewals; issue 15).

use serde::{Deserialize, Serialize};

/// `[rounds]`: the round runner (scheduler leader only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoundsSection {
    /// Take part in rounds at all (off: no boarding, no renewals).
    pub enabled: bool,
    /// How often the leader looks for due round jobs (seconds).
    pub every_secs: u64,
    /// Round jobs per participation (one round).
    pub max_jobs: u32,
    /// Renew the relay's inventory VTXOs once this share of their lifetime
    /// has passed (percent).
    pub inventory_renew_at_percent: u8,
    /// Overrides a VTXO's lifetime at the Ark server (seconds; arkd's
    /// `vtxo_tree_expiry`). Unset (the default): learned from the relay's
    /// rounds (`batch_started.batch_expiry`), and before its first round
    /// each VTXO's own `expires_at − created_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtxo_lifetime_secs: Option<i64>,
    /// How long a boarding payment may take to confirm (seconds).
    pub boarding_confirm_timeout_secs: u64,
}

impl Default for RoundsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            every_secs: 10,
            max_jobs: 64,
            inventory_renew_at_percent: 90,
            vtxo_lifetime_secs: None,
            boarding_confirm_timeout_secs: 3_600,
        }
    }
}

impl RoundsSection {
    /// The runner's settings.
    pub fn runner(&self) -> ark_relay_engine::rounds::RoundsConfig {
        ark_relay_engine::rounds::RoundsConfig {
            every: std::time::Duration::from_secs(self.every_secs.max(1)),
            max_jobs: self.max_jobs.max(1),
            ..Default::default()
        }
    }

    /// Inventory boarding and renewal settings.
    pub fn inventory(&self) -> ark_relay_engine::rounds::InventoryRoundsConfig {
        ark_relay_engine::rounds::InventoryRoundsConfig {
            vtxo_lifetime_secs: self.vtxo_lifetime_secs.unwrap_or(0).max(0),
            renew_at_pct: self.inventory_renew_at_percent.min(100),
            confirm_timeout: std::time::Duration::from_secs(
                self.boarding_confirm_timeout_secs.max(1),
            ),
            ..Default::default()
        }
    }
}

/// `[renewal]`: delegated renewals of users' VTXOs (docs/protocol.md,
/// "Renewal challenge"). Needs `[rounds]` enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenewalSection {
    /// Offer renewals (`sign_renewal` challenges) at all.
    pub enabled: bool,
    /// A renewal is registered from `created + lifetime × this / 100`.
    pub valid_at_percent: u8,
    /// The published renewal fee (sats, taken from the renewed VTXO).
    pub fee_sats: u64,
    /// How long a wallet has to answer a challenge (seconds).
    pub challenge_ttl_secs: i64,
    /// A recovery challenge's lifetime (seconds).
    pub recovery_ttl_secs: i64,
    /// Warn owners this long before an unrenewed VTXO expires (seconds).
    pub notice_before_secs: i64,
    /// How often a renewal pass runs (seconds).
    pub every_secs: u64,
}

impl Default for RenewalSection {
    fn default() -> Self {
        let d = ark_relay_engine::renewal::RenewalConfig::default();
        Self {
            enabled: true,
            valid_at_percent: d.policy.valid_at_percent,
            fee_sats: d.policy.fee_sats,
            challenge_ttl_secs: d.policy.challenge_ttl_secs,
            recovery_ttl_secs: d.recovery_ttl_secs,
            notice_before_secs: d.notice_before_secs,
            every_secs: d.every.as_secs(),
        }
    }
}

impl RenewalSection {
    /// The flow's settings.
    pub fn service(&self) -> ark_relay_engine::renewal::RenewalConfig {
        ark_relay_engine::renewal::RenewalConfig {
            policy: ark_relay_engine::renewal::RenewalPolicy {
                valid_at_percent: self.valid_at_percent.min(99),
                fee_sats: self.fee_sats,
                challenge_ttl_secs: self.challenge_ttl_secs.max(1),
            },
            recovery_ttl_secs: self.recovery_ttl_secs.max(1),
            notice_before_secs: self.notice_before_secs.max(0),
            every: std::time::Duration::from_secs(self.every_secs.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vtxo_lifetime_is_learned_unless_overridden() {
        let learned = RoundsSection::default();
        assert_eq!(learned.vtxo_lifetime_secs, None);
        assert_eq!(learned.inventory().vtxo_lifetime_secs, 0, "0 = learn it");
        let fixed = RoundsSection {
            vtxo_lifetime_secs: Some(10_240),
            ..RoundsSection::default()
        };
        assert_eq!(fixed.inventory().vtxo_lifetime_secs, 10_240);
    }
}
