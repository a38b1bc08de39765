//! The relay's participation in Ark batch rounds, pure: [`job`] says what to
//! register (round jobs); the participation saga that carries the jobs
//! through one round follows.

pub mod job;

pub use job::{Delegation, JobAsset, JobError, JobInput, JobKind, JobOutput, RoundJob};
