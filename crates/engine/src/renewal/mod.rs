//! Delegated renewal and recovery of users' VTXOs (issue 15 items 2–4): the
//! relay asks the owner of a VTXO, through a `sign_renewal` 31511 challenge
//! (`ark_relay_protocol::renewal`), to pre-sign a delegation that renews it
//! to the same owner, sats and assets from `valid_at` (default 90 % of its
//! lifetime) with the relay as the delegate cosigner; the signed delegation
//! becomes a round job (`crate::rounds::RoundJobs`, helper C's queue) that
//! the round runner registers once valid. A swept VTXO is recovered the same
//! way (`recovery: true`, no forfeit).
//!
//! [`build`] is the pure core (challenge from a VTXO, job from the answer).
//! Still to come (see the module's README in docs/protocol.md "Renewal
//! challenge"): the store of delegations (migrations 0045–0049), the hook
//! after a ceremony's 31340, the near-expiry notice and the metrics.

pub mod build;

pub use build::{accept, build, PendingDelegation, RenewalError, RenewalPolicy, RenewalSpec};
