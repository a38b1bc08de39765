//! Delegated renewal and recovery of users' VTXOs (issue 15 items 2–4): the
//! relay asks the owner of a VTXO, through a `sign_renewal` 31511 challenge
//! (`ark_relay_protocol::renewal`), to pre-sign a delegation that renews it
//! to the same owner, sats and assets from `valid_at` (default 90 % of its
//! lifetime) with the relay as the delegate cosigner; the signed delegation
//! becomes a round job (`crate::rounds::RoundJobs`, helper C's queue) that
//! the round runner registers once valid. A swept VTXO is recovered the same
//! way (`recovery: true`, no forfeit).
//!
//! [`build`] is the pure core (challenge from a VTXO, job from the answer);
//! [`service`] drives it from the database (`delegations`, migration 0045):
//! offers, answers, completion with a 31340 naming old and new VTXO, void
//! on spend, the near-expiry notice (5005) and the metrics below.

pub mod build;
mod resend;
pub mod service;

pub use build::{accept, build, PendingDelegation, RenewalError, RenewalPolicy, RenewalSpec};
pub use resend::waiting_challenges;
pub use service::{PassReport, RenewalConfig, RenewalServiceError, Renewals};

/// The renewal metrics (docs/operations.md "Renewals").
///
/// | series | type | labels |
/// |---|---|---|
/// | `ark_relay_renewals_total` | counter | `outcome`: `renewed`, `recovered`, `refused`, `failed`, `near_expiry_notice` |
/// | `ark_relay_vtxos_near_expiry` | gauge | user VTXOs within the notice window without a renewal scheduled |
pub mod metrics {
    /// Counter `{outcome}`.
    pub const RENEWALS: &str = "ark_relay_renewals_total";
    /// Gauge.
    pub const NEAR_EXPIRY: &str = "ark_relay_vtxos_near_expiry";

    /// A renewal event (`outcome` from a fixed set).
    pub fn renewal(outcome: &'static str) {
        ::metrics::counter!(RENEWALS, "outcome" => outcome).increment(1);
    }

    /// User VTXOs near expiry without a renewal.
    pub fn near_expiry(n: u64) {
        ::metrics::gauge!(NEAR_EXPIRY).set(n as f64);
    }
}
