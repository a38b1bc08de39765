//! Outputs with a non-default script and inputs the relay co-signs through
//! a conditional leaf (`docs/protocol.md`, "Conditional co-signing").
//!
//! The planner lays out every output as a default VTXO of its owner; a
//! [`LockedOutput`] in the [`crate::Plan`] (and then in the [`crate::Ceremony`])
//! gives one output another script — today the position token's
//! [`OutputLock::Conditional`] tree — which the built transaction pays and
//! the ledger records. A [`CosignedInput`] is spent through its conditional
//! leaf instead of its collaborative leaf, and the relay signs it (ark tx and
//! checkpoint) with its co-signer key tweaked by the `open_perp` id. Which
//! inputs may be co-signed is decided by the engine's checklist, never here.

use ark_relay_ark::conditional::{cosigner_keypair, decode_conditional, PositionScript};
use ark_relay_ark::{ArkError, ServerInfo, VtxoInput, VtxoScript};
use ark_relay_core::{EventId, PubKey, Tapscripts, Vtxo};
use bitcoin::secp256k1::Keypair;
use serde::{Deserialize, Serialize};

/// The script of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputLock {
    /// The owner's default VTXO (exit + collaborative leaf).
    Default,
    /// A position token: the owner's default leaves plus the conditional
    /// leaf `dex + relay co-signer (tweaked with open_perp) + server`.
    Conditional {
        /// The DEX named in the position terms.
        dex: PubKey,
        /// The relay's untweaked key.
        relay: PubKey,
        /// The `open_perp` intent that created the position.
        open_perp: EventId,
    },
}

impl OutputLock {
    /// The leaves of an output of `owner` with this lock.
    pub fn script(&self, owner: &PubKey, server: &ServerInfo) -> Result<VtxoScript, ArkError> {
        match self {
            OutputLock::Default => Ok(server.default_vtxo(owner)),
            OutputLock::Conditional {
                dex,
                relay,
                open_perp,
            } => PositionScript {
                user: *owner.x_only(),
                dex: *dex.x_only(),
                relay: *relay.x_only(),
                server: *server.signer(),
                exit_delay: server.unilateral_exit_delay(),
                open_perp: *open_perp,
            }
            .vtxo_script(),
        }
    }

    /// The ledger's leaf list of an output of `owner` with this lock.
    pub fn tapscripts(&self, owner: &PubKey, server: &ServerInfo) -> Result<Tapscripts, ArkError> {
        Ok(self.script(owner, server)?.to_tapscripts())
    }
}

/// Output `output` of the plan has `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedOutput {
    /// The output index.
    pub output: usize,
    /// Its script.
    pub lock: OutputLock,
}

/// Input `input` is spent through its conditional leaf; the relay co-signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignedInput {
    /// The input index.
    pub input: usize,
    /// The `open_perp` whose id tweaks the relay's co-signer key.
    pub open_perp: EventId,
}

/// The lock of output `i` (default when not listed).
pub fn lock_of(locks: &[LockedOutput], i: usize) -> OutputLock {
    locks
        .iter()
        .find(|l| l.output == i)
        .map_or(OutputLock::Default, |l| l.lock)
}

/// `vtxo` as an input spent through its conditional leaf.
pub fn conditional_input(vtxo: &Vtxo, server: &ServerInfo) -> Result<VtxoInput, ArkError> {
    let script = VtxoScript::from_tapscripts(&vtxo.tapscripts)?;
    let leaf = decode_conditional(&script, server.signer())
        .ok_or(ArkError::NoCollaborativeLeaf {
            outpoint: vtxo.id.outpoint(),
        })?
        .leaf;
    VtxoInput::new(vtxo.id, vtxo.sats, script, leaf)
}

/// The relay's co-signer keypair for `c`.
pub fn cosigner(relay: &Keypair, c: &CosignedInput) -> Result<Keypair, ArkError> {
    cosigner_keypair(relay, &c.open_perp)
}
