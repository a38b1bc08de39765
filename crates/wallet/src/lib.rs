//! # ark-relay-wallet
//!
//! The Ark Relay reference wallet (PRD §11, issue 6 item 4), as a library and
//! the `ark-wallet` CLI. It manages a Nostr key (which is also the owner key of
//! its VTXOs), learns its VTXOs and their colour with `sync_state`, publishes
//! `p2p_transfer` intents with the relay's fee output, and answers the relay's
//! 31511 signing challenges **only** for its own authorised intents and only
//! after contextual verification (PRD §11.5, [`verify`]): every sighash is
//! recomputed from the PSBT, every input it signs must spend one of its own
//! VTXOs, and the outputs must pay exactly the recipients, assets and amounts
//! of its intent plus the agreed fee, with change only to itself. Anything
//! else is answered with a `reject` and never signed.
//!
//! - [`verify`]: the pure checks, returning every reason to refuse;
//! - [`packet`]: colour read from the ark tx's Arkade Asset packet, checked
//!   against the hints and the wallet's own inputs;
//! - [`signer`]: the signing oracle over authorised sessions ([`Signer`]);
//! - [`Wallet`]: the networked wallet over Nostr (sync, balance, send, history);
//! - [`testing`]: real challenges built with `ark-relay-ark`, for tests.

pub mod client;
pub mod dex;
pub mod keys;
pub mod packet;
pub mod ramp;
pub mod signer;
pub mod testing;
pub mod verify;

pub use client::{
    Balances, HistoryEntry, IndexerCheck, Outcome, Wallet, WalletError, WalletOptions,
};
pub use ramp::LiftTicket;
pub use signer::{Answer, SignPolicy, Signer};
pub use verify::{AssetBook, AuthorisedIntent, OwnedVtxo, Payment, Received, Refusal};
