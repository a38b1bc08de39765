//! `[lightning]`: tuning of lifts and lands (PRD §5.3–§5.4). The lnd
//! connection itself is `[lnd]`.

use serde::{Deserialize, Serialize};

/// `[lightning]`: lifts and lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LightningConfig {
    /// Seconds a lift's hold invoice stays payable.
    pub invoice_expiry_secs: u64,
    /// Final CLTV delta asked of lift payers (blocks; ≥ 80 leaves room to
    /// issue the VTXO before the HTLC must be settled).
    pub cltv_expiry: u64,
    /// Blocks of margin, beyond lnd's 18-block hold-expiry delta, that a held
    /// HTLC must still have for the relay to issue against it.
    pub htlc_safety_blocks: u32,
    /// Smallest lift, sats.
    pub min_lift_sats: u64,
    /// Largest lift, sats.
    pub max_lift_sats: u64,
    /// Seconds lnd gets to find a route for a land (`SendPaymentV2` timeout).
    pub payment_timeout_secs: u64,
    /// How often unfinished lifts and lands are driven (ms).
    pub drive_every_ms: u64,
    /// How often the gBTC reserve is read from lnd for `GET /reserves` (s).
    pub reserve_every_secs: u64,
}

impl Default for LightningConfig {
    fn default() -> Self {
        Self {
            invoice_expiry_secs: 3_600,
            cltv_expiry: 80,
            htlc_safety_blocks: 6,
            min_lift_sats: 1,
            max_lift_sats: 10_000_000_000,
            payment_timeout_secs: 60,
            drive_every_ms: 250,
            reserve_every_secs: 30,
        }
    }
}
