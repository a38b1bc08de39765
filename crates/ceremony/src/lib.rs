//! # ark-relay-ceremony
//!
//! The Ark off-chain transaction ceremony of Ark Relay, written once for
//! every party count, with no I/O (no tokio, no sockets, no SQL):
//!
//! - [`plan`]: the one planner — coin selection per asset, change, fee,
//!   burns, and the relay's carrier sats from inventory — for 0 parties (a
//!   relay-issued lift or refund), 1 (a transfer or a land) or n (an atomic
//!   batch);
//! - [`state`]: the persisted, typed state ([`Ceremony`], [`Phase`]) with
//!   the PRD's state names;
//! - [`machine`]: `step(&state, input, &ctx) -> Transition { next, effects }`
//!   — inputs are what arrives (a party's 31512, arkd's answers, the ledger's
//!   commit, time), effects are what the engine's runner must do (queue
//!   31511/31341/31340, release locks, call `SubmitTx`/`GetPendingTx`/
//!   `FinalizeTx`, commit the ledger);
//! - one-step signing (a party whose intent says `one_step` signs its
//!   checkpoints in step 1: verified then, kept in [`Ceremony::kept`] apart
//!   from the PSBTs submitted to arkd, added after `SubmitTx`).
//!
//! The engine's runner persists each transition with its local effects in
//! one database transaction before it executes the remote one, so no crash
//! can leave a failed session holding its locks, and recovery is a
//! [`machine::Input::Tick`] on the persisted state.

mod build;
mod io;
pub mod lock;
pub mod machine;
mod one_step;
pub mod plan;
pub mod round;
pub mod state;

pub use build::{
    colour_balance, confirmation, genesis_colours, new_vtxos, prepare, start, Prepared, Start,
};
pub use io::{Answer, Ctx, Effect, Input, RelaySignature, StepError, Timing, Transition};
pub use lock::{CosignedInput, LockedOutput, OutputLock};
pub use machine::step;
pub use plan::{
    plan, select_coloured, Control, PartyRequest, PartySpan, Payment, Plan, PlanRequest,
    PlannedOutput,
};
pub use state::{Ceremony, Failure, KeptSignature, Party, Phase, Purpose};
