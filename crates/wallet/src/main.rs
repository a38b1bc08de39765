//! `ark-wallet`: the reference wallet CLI (in progress).

fn main() {}
