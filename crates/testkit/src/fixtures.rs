//! Deterministic fixtures: keys, asset ids, VTXOs and transactions.

use ark_relay_core::{
    ActionId, AssetAmount, AssetId, AssetType, Colour, EventId, IntentRecord, L2Transaction,
    NewAsset, NewVtxo, PubKey, Sats, SessionId, Tapscripts, UnixTime, VtxoId, VtxoStatus,
};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::Txid;

/// The secret key of test identity `n` (deterministic).
pub fn secret(n: u32) -> SecretKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 0x42;
    bytes[28..].copy_from_slice(&n.wrapping_add(1).to_be_bytes());
    SecretKey::from_slice(&bytes).expect("valid secret key")
}

/// The x-only public key of test identity `n`.
pub fn key(n: u32) -> PubKey {
    let secp = Secp256k1::signing_only();
    let (xonly, _) = Keypair::from_secret_key(&secp, &secret(n)).x_only_public_key();
    PubKey::from_x_only(xonly)
}

/// Test asset `n`.
pub fn asset_id(n: u8) -> AssetId {
    AssetId::from_bytes([n.wrapping_add(0xa0); 32])
}

/// An asset to register, `n` in its ticker.
pub fn new_asset(n: u8) -> NewAsset {
    NewAsset {
        id: asset_id(n),
        name: format!("Test asset {n}"),
        ticker: format!("T{n}"),
        asset_type: if n == 0 {
            AssetType::RelayIssued
        } else {
            AssetType::Permissionless
        },
        decimals: 0,
    }
}

/// A fresh random txid.
pub fn txid() -> Txid {
    Txid::from_byte_array(rand::random())
}

/// A fresh random VTXO id.
pub fn vtxo_id() -> VtxoId {
    VtxoId::new(txid(), rand::random::<u32>() % 8)
}

/// A fresh random event id.
pub fn event_id() -> EventId {
    EventId::from_bytes(rand::random())
}

/// A fresh random session id.
pub fn session() -> SessionId {
    SessionId::from_bytes(rand::random())
}

/// `Some(colour)` of `amount` units of test asset `asset`.
pub fn colour(asset: u8, amount: u64) -> Option<Colour> {
    Some(Colour {
        asset: asset_id(asset),
        amount: AssetAmount::new(amount),
    })
}

/// A sample two-leaf tapscript list (not a real script; stores do not interpret it).
pub fn tapscripts() -> Tapscripts {
    Tapscripts(vec![vec![0x20; 34], vec![0x03, 0x01, 0x02, 0xb2, 0x75]])
}

/// A user VTXO with a fresh id.
pub fn vtxo(owner: PubKey, sats: u64, colour: Option<Colour>) -> NewVtxo {
    NewVtxo {
        id: vtxo_id(),
        owner,
        sats: Sats::new(sats),
        colour,
        status: VtxoStatus::Assigned,
        tapscripts: tapscripts(),
        expires_at: Some(UnixTime(2_000_000_000)),
    }
}

/// A transaction spending `inputs` into `outputs` (ids taken from a fresh ark txid).
pub fn transaction(
    session: Option<SessionId>,
    inputs: Vec<VtxoId>,
    outputs: Vec<(PubKey, u64, Option<Colour>)>,
) -> L2Transaction {
    let ark_txid = txid();
    let outputs = outputs
        .into_iter()
        .enumerate()
        .map(|(i, (owner, sats, colour))| NewVtxo {
            id: VtxoId::new(ark_txid, u32::try_from(i).expect("few outputs")),
            ..vtxo(owner, sats, colour)
        })
        .collect();
    L2Transaction {
        ark_txid,
        kind: "p2p_transfer".into(),
        session,
        inputs,
        outputs,
        issued: vec![],
        burned: vec![],
        finalized_at: UnixTime(1_700_000_000),
        fee: ark_relay_core::Sats::ZERO,
    }
}

/// An intent record by `author` with `action_id`.
pub fn intent(author: PubKey, action_id: &str) -> IntentRecord {
    IntentRecord {
        event_id: event_id(),
        author,
        action_id: action_id.parse::<ActionId>().expect("valid action id"),
        intent_type: "p2p_transfer".into(),
        content: format!(r#"{{"v":1,"action_id":"{action_id}","type":"p2p_transfer"}}"#),
        created_at: UnixTime(1_700_000_000),
        expires_at: UnixTime(1_700_000_900),
        received_at: UnixTime(1_700_000_001),
    }
}
