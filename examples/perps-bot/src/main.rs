//! `perps-bot` (WIP).
fn main() {}
