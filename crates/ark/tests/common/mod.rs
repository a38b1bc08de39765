//! Shared fixtures for the integration tests.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use ark_relay_ark::{RelativeLocktime, ServerInfo, VtxoInput};
use ark_relay_core::{PubKey, Sats, VtxoId};
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

pub fn keypair(byte: u8) -> Keypair {
    Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[byte; 32]).unwrap(),
    )
}

pub fn pubkey(kp: &Keypair) -> PubKey {
    PubKey::from_x_only(kp.x_only_public_key().0)
}

pub struct Parties {
    pub signer: Keypair,
    pub forfeit: Keypair,
    pub alice: Keypair,
    pub bob: Keypair,
    pub carol: Keypair,
    pub eve: Keypair,
}

pub fn parties() -> Parties {
    Parties {
        signer: keypair(1),
        forfeit: keypair(2),
        alice: keypair(3),
        bob: keypair(4),
        carol: keypair(5),
        eve: keypair(6),
    }
}

/// A regtest server like arkd's CI stack (exit delay 512 s, checkpoint 10 blocks, dust 330).
pub fn server(p: &Parties) -> ServerInfo {
    ServerInfo::new(
        p.signer.x_only_public_key().0,
        p.forfeit.x_only_public_key().0,
        RelativeLocktime::seconds(512).unwrap(),
        RelativeLocktime::blocks(10),
        Sats::new(330),
        bitcoin::Network::Regtest,
    )
}

pub fn vtxo_id(n: u8, vout: u32) -> VtxoId {
    format!("{}:{vout}", format!("{n:02x}").repeat(32))
        .parse()
        .unwrap()
}

/// A default VTXO of `owner` worth `sats`, spent through its collaborative leaf.
pub fn input(server: &ServerInfo, owner: &Keypair, n: u8, sats: u64) -> VtxoInput {
    let owner = pubkey(owner);
    VtxoInput::collaborative(
        vtxo_id(n, u32::from(n % 3)),
        Sats::new(sats),
        server.default_vtxo(&owner),
        &owner,
        server.signer(),
    )
    .unwrap()
}
