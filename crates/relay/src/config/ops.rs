//! The `[inventory]` and `[keys]` sections of the configuration.

use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

/// `[inventory]`: the hot VTXO inventory monitor (PRD §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// Run the monitor (in the scheduler role).
    pub enabled: bool,
    /// How often it checks the level (seconds).
    pub every_secs: u64,
    /// Below this, replenish whatever the fee.
    pub critical: u64,
    /// Below this, replenish when the fee rate is below `low_fee_sat_vb`.
    pub warning: u64,
    /// Replenishment refills up to this level.
    pub target: u64,
    /// VTXOs per batch (one Ark round each in production).
    pub batch_size: u64,
    /// At most this many batches per run.
    pub max_batches_per_run: u64,
    /// "Low fees": strictly below this rate, sat/vB.
    pub low_fee_sat_vb: u64,
    /// Carrier sats of each new inventory VTXO.
    pub vtxo_sats: u64,
    /// `issue_asset` (the relay pays the new asset's carrier sats): assets
    /// whose control one key may hold at a time (0 = no limit).
    pub issue_asset_per_key: u32,
    /// `issue_asset`: new assets the relay registers per hour, after which
    /// requests get 9001 (0 = no limit).
    pub issue_asset_per_hour: u32,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        let p = ark_relay_core::inventory::InventoryPolicy::default();
        Self {
            enabled: true,
            every_secs: 300,
            critical: p.critical,
            warning: p.warning,
            target: p.target,
            batch_size: p.batch_size,
            max_batches_per_run: p.max_batches_per_run,
            low_fee_sat_vb: p.low_fee_sat_vb,
            vtxo_sats: 10_000,
            issue_asset_per_key: ark_relay_engine::ceremony::IssueBudget::default().per_key,
            issue_asset_per_hour: ark_relay_engine::ceremony::IssueBudget::default().per_hour,
        }
    }
}

impl InventoryConfig {
    /// The thresholds as the decision table takes them.
    pub fn policy(&self) -> ark_relay_core::inventory::InventoryPolicy {
        ark_relay_core::inventory::InventoryPolicy {
            critical: self.critical,
            warning: self.warning,
            target: self.target,
            batch_size: self.batch_size,
            max_batches_per_run: self.max_batches_per_run,
            low_fee_sat_vb: self.low_fee_sat_vb,
        }
    }

    /// The `issue_asset` budget.
    pub fn issue_budget(&self) -> ark_relay_engine::ceremony::IssueBudget {
        ark_relay_engine::ceremony::IssueBudget {
            per_key: self.issue_asset_per_key,
            per_hour: self.issue_asset_per_hour,
        }
    }

    /// Range problems, for `config --check`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(self.critical <= self.warning && self.warning <= self.target) {
            out.push("inventory: need critical <= warning <= target".to_owned());
        }
        if self.batch_size == 0 || self.every_secs == 0 || self.max_batches_per_run == 0 {
            out.push(
                "inventory.batch_size, every_secs and max_batches_per_run must be > 0".to_owned(),
            );
        }
        if self.vtxo_sats < 330 {
            out.push("inventory.vtxo_sats must be at least the dust limit (330)".to_owned());
        }
        out
    }
}

/// `[keys]`: keys the relay rotated away from (PRD §10.2, `ark-relay keys rotate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Grace period `keys rotate` gives the old key (seconds; default 7 days).
    pub rotation_grace_secs: u64,
    /// Earlier identities still answered until their `until`.
    pub previous: Vec<PreviousKey>,
}

/// One earlier relay key: its sealed blob (same `GATEWAY_ENCRYPTION_KEY`) and
/// the end of its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    /// The `arkrelay-key-v1:…` blob, as a secret reference (`env:VAR` or
    /// `file:/path`).
    pub sealed: SecretRef,
    /// Unix seconds: events to this key are answered until then, ignored after.
    pub until: i64,
}

/// The default grace period of a rotation: 7 days.
pub const DEFAULT_GRACE_SECS: u64 = 7 * 24 * 3600;

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            rotation_grace_secs: DEFAULT_GRACE_SECS,
            previous: Vec::new(),
        }
    }
}

impl KeysConfig {
    /// The grace period `keys rotate` gives (the default when unset).
    pub fn grace_secs(&self) -> u64 {
        if self.rotation_grace_secs == 0 {
            DEFAULT_GRACE_SECS
        } else {
            self.rotation_grace_secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ranges_are_checked() {
        assert!(InventoryConfig::default().problems().is_empty());
        let bad = InventoryConfig {
            critical: 5_000,
            batch_size: 0,
            vtxo_sats: 100,
            ..InventoryConfig::default()
        };
        let p = bad.problems();
        assert_eq!(p.len(), 3, "{p:?}");
        let policy = InventoryConfig::default().policy();
        assert_eq!(
            policy,
            ark_relay_core::inventory::InventoryPolicy::default()
        );
    }

    #[test]
    fn previous_keys_parse_and_unresolvable_ones_are_reported() {
        let c: crate::config::Config = toml::from_str(
            "[keys]\n[[keys.previous]]\nsealed = \"env:ARK_RELAY_SURELY_UNSET_PREVIOUS_KEY\"\nuntil = 1767225600\n",
        )
        .unwrap();
        assert_eq!(c.keys.previous.len(), 1);
        assert_eq!(c.keys.previous[0].until, 1_767_225_600);
        assert_eq!(c.keys.grace_secs(), DEFAULT_GRACE_SECS);
        let problems = c.validate().unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("keys.previous[0].sealed")),
            "{problems:?}"
        );
        // A literal blob is refused: it must be a reference, never inline.
        assert!(toml::from_str::<crate::config::Config>(
            "[[keys.previous]]\nsealed = \"arkrelay-key-v1:abc:def:ghi\"\nuntil = 1\n"
        )
        .is_err());
    }
}
