//! The relay in Ark batch rounds (issue 15): [`RoundJobs`] queues what to
//! register (inventory boarding, renewals of the relay's own VTXOs, and —
//! from the delegation flow — users' delegated renewals and recoveries); the
//! runner (scheduler leader only) takes the due jobs into one participation
//! per round and drives the pure saga `ark_relay_ceremony::round` over the
//! `ArkServer` port, persisting every step (`round_participations`).

mod inventory;
mod jobs;
mod runner;

pub use inventory::{InventoryRounds, InventoryRoundsConfig, InventoryRoundsError};
pub use jobs::{RoundJobs, RoundJobsError};
pub use runner::{
    cosigner_key, participation_lock, RoundCrashHook, RoundRunner, RoundsConfig, RoundsError,
};
