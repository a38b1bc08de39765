//! The relay's participation in Ark batch rounds, pure (no I/O):
//! - [`job`]: what to register (round jobs: the relay's VTXOs and boarding
//!   outputs, or a user's pre-signed delegation);
//! - [`state`]: the persisted saga ([`Participation`], [`Phase`]:
//!   `registering → registered → confirmed → tree_nonces → tree_signatures →
//!   forfeits_submitted → finalized | failed`) and the in-memory [`Scratch`];
//! - [`machine`]: `step(&participation, &mut scratch, input, &ctx)`;
//! - [`crypto`]: intents, tree checks, MuSig2, forfeits on ark-core 0.12;
//! - [`fees`]: arkd's intent fee programs, evaluated for the relay's intents.

mod b64;
pub mod crypto;
pub mod fees;
pub mod job;
pub mod machine;
pub mod state;

pub use crypto::{RoundCtx, RoundPolicy};
pub use fees::{intent_fee, FeeError, FeeInput};
pub use job::{Delegation, JobAsset, JobError, JobInput, JobKind, JobOutput, RoundJob};
pub use machine::{step, Effect, Input, Transition};
pub use state::{lifetime_secs, Created, Entry, EntryStatus, Participation, Phase, Scratch};
