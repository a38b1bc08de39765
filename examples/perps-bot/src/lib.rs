//! # ark-relay-perps-bot — perpetuals on Ark Relay (PRD §12 scenarios 6 and 7)
//!
//! WIP.

pub mod book;
