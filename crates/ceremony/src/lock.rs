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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use ark_relay_ark::RelativeLocktime;
    use ark_relay_core::Sats;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    use super::*;

    fn key(n: u8) -> Keypair {
        Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[n; 32]).unwrap())
    }

    fn pk(n: u8) -> PubKey {
        PubKey::from_x_only(key(n).x_only_public_key().0)
    }

    fn server() -> ServerInfo {
        ServerInfo::new(
            *pk(9).x_only(),
            *pk(9).x_only(),
            RelativeLocktime::blocks(144),
            RelativeLocktime::blocks(10),
            Sats::new(330),
            bitcoin::Network::Regtest,
        )
    }

    #[test]
    fn locks_give_the_position_tree_or_the_default() {
        let s = server();
        let open = EventId::from_bytes([5; 32]);
        let lock = OutputLock::Conditional {
            dex: pk(2),
            relay: pk(3),
            open_perp: open,
        };
        let expected = PositionScript {
            user: *pk(1).x_only(),
            dex: *pk(2).x_only(),
            relay: *pk(3).x_only(),
            server: *s.signer(),
            exit_delay: s.unilateral_exit_delay(),
            open_perp: open,
        }
        .vtxo_script()
        .unwrap();
        assert_eq!(
            lock.tapscripts(&pk(1), &s).unwrap(),
            expected.to_tapscripts()
        );
        assert_eq!(
            OutputLock::Default.tapscripts(&pk(1), &s).unwrap(),
            s.default_vtxo(&pk(1)).to_tapscripts()
        );
        let locks = [LockedOutput { output: 2, lock }];
        assert_eq!(lock_of(&locks, 2), lock);
        assert_eq!(lock_of(&locks, 0), OutputLock::Default);
        // The persisted form round-trips.
        let json = serde_json::to_string(&locks).unwrap();
        assert!(json.contains("\"type\":\"conditional\""));
        let back: Vec<LockedOutput> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, locks);
    }

    #[test]
    fn a_position_is_spent_through_its_conditional_leaf() {
        let s = server();
        let open = EventId::from_bytes([6; 32]);
        let tree = OutputLock::Conditional {
            dex: pk(2),
            relay: pk(3),
            open_perp: open,
        }
        .script(&pk(1), &s)
        .unwrap();
        let vtxo = Vtxo {
            id: format!("{}:0", "11".repeat(32)).parse().unwrap(),
            owner: pk(1),
            sats: Sats::new(330),
            colour: None,
            status: ark_relay_core::VtxoStatus::Assigned,
            tapscripts: tree.to_tapscripts(),
            locked_by: None,
            spent_by: None,
            created_at: ark_relay_core::UnixTime(0),
            spent_at: None,
            expires_at: None,
        };
        let input = conditional_input(&vtxo, &s).unwrap();
        let signers = input.signers();
        let cosigner = cosigner(
            &key(3),
            &CosignedInput {
                input: 0,
                open_perp: open,
            },
        )
        .unwrap();
        assert_eq!(
            signers,
            vec![*pk(2).x_only(), cosigner.x_only_public_key().0, *s.signer()]
        );
        // A default VTXO has no conditional leaf to spend.
        let plain = Vtxo {
            tapscripts: s.default_vtxo(&pk(1)).to_tapscripts(),
            ..vtxo
        };
        assert!(conditional_input(&plain, &s).is_err());
    }
}
