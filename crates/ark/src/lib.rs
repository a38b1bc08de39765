//! # ark-relay-ark
//!
//! Everything about Ark off-chain transactions that both the relay and a wallet
//! must compute and check, with no I/O: no async runtime, no sockets, no gRPC, no
//! clock, no database. It owns
//!
//! - the server parameters transactions depend on ([`ServerInfo`], from arkd's GetInfo);
//! - BIP-68 relative locktimes as arkd encodes them ([`RelativeLocktime`]);
//! - tapscript leaves and VTXO Taproot trees in arkd's Go convention — a user's
//!   VTXO is locked to their **Nostr x-only key** with the collaborative leaf
//!   `<owner> CHECKSIGVERIFY <signer> CHECKSIG` and the exit leaf
//!   `<delay> CSV DROP <owner> CHECKSIG` over the NUMS internal key ([`script`]);
//! - Ark addresses ([`ArkAddress`]) and the `taptree` PSBT field ([`taptree`]);
//! - building the ark tx and its checkpoint txs as PSBTs, reading them back, and
//!   arkd's rebuild-and-compare integrity check ([`tx`]);
//! - BIP-341 sighashes, BIP-340 signatures and their verification ([`sign`]);
//! - Arkade Asset packets: encoding through ark-core, decoding as arkd does ([`asset`]);
//! - what a wallet recomputes before it signs a challenge ([`check`]).
//!
//! It must not talk to arkd, know about Nostr events or the ledger's state
//! (colour enters only as the plain values a packet states); callers pass
//! plain values in and get plain values out. It uses `ark-core` (the Arkade
//! Rust SDK) for GetInfo conversion and asset packet encoding; where ark-core
//! differs from arkd's Go implementation the code here follows arkd and says why.
//!
//! ```
//! use ark_relay_ark::{build_offchain_tx, sign_psbt, verify_offchain_tx, verify_signatures,
//!     Output, RelativeLocktime, ServerInfo, VtxoInput};
//! use ark_relay_core::{PubKey, Sats, VtxoId};
//! use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
//!
//! let secp = Secp256k1::new();
//! let key = |b: u8| Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[b; 32]).unwrap());
//! let (signer, alice, bob) = (key(1), key(2), key(3));
//! let server = ServerInfo::new(
//!     signer.x_only_public_key().0,
//!     signer.x_only_public_key().0,
//!     RelativeLocktime::blocks(144),
//!     RelativeLocktime::blocks(10),
//!     Sats::new(330),
//!     bitcoin::Network::Regtest,
//! );
//! let alice_pk = PubKey::from_x_only(alice.x_only_public_key().0);
//! let bob_pk = PubKey::from_x_only(bob.x_only_public_key().0);
//! let vtxo: VtxoId = format!("{}:0", "11".repeat(32)).parse().unwrap();
//! let input = VtxoInput::collaborative(
//!     vtxo, Sats::new(1_000), server.default_vtxo(&alice_pk), &alice_pk, server.signer(),
//! ).unwrap();
//! let outputs = [
//!     Output::Vtxo { owner: bob_pk, sats: Sats::new(600) },
//!     Output::Vtxo { owner: alice_pk, sats: Sats::new(400) },
//! ];
//! let mut tx = build_offchain_tx(&server, &[input], &outputs).unwrap();
//! assert_eq!(sign_psbt(&mut tx.ark_tx, &alice).unwrap(), 1);
//! verify_signatures(&tx.ark_tx).unwrap();
//! // What arkd does on SubmitTx: rebuild from the PSBTs, same txids.
//! let rebuilt = verify_offchain_tx(&server, &tx.ark_tx, &tx.checkpoints).unwrap();
//! assert_eq!(rebuilt.ark_txid(), tx.ark_txid());
//! ```

pub mod address;
pub mod asset;
pub mod check;
pub mod conditional;
mod error;
pub mod exit;
pub mod intent;
pub mod locktime;
pub mod script;
pub mod server;
pub mod sign;
pub mod taptree;
pub mod tx;

pub use address::ArkAddress;
pub use asset::{decode_packet, packet_for_colours, tx_packet, PacketError};
pub use check::{
    audit_ark_tx_challenge, audit_checkpoint_challenge, check_outputs, check_sign_requests, Audit,
    Mismatch, OutputPolicy,
};
pub use error::ArkError;

/// One secp256k1 context for the whole crate: creating one per call costs
/// more than the verification it serves (measured in the transfer benchmark).
pub(crate) static SECP: std::sync::LazyLock<
    bitcoin::secp256k1::Secp256k1<bitcoin::secp256k1::All>,
> = std::sync::LazyLock::new(bitcoin::secp256k1::Secp256k1::new);
pub use intent::pending_tx_proof;
pub use locktime::RelativeLocktime;
pub use script::{Closure, VtxoScript};
pub use server::{parse_network, ServerInfo};
pub use sign::{
    add_signature, input_leaf, input_sighash, is_fully_signed, is_signed_for_leaf, missing_signers,
    sign_input, sign_psbt, sign_requests, sign_sighash, verify_signatures, SignRequest,
};
pub use tx::{
    build_offchain_tx, parse_offchain_tx, verify_offchain_tx, OffchainTx, Output, ParsedOffchainTx,
    VtxoInput,
};
