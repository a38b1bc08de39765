//! What the transaction layer needs from arkd's `GetInfo`.

use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::{Network, ScriptBuf};

use ark_relay_core::{PubKey, Sats};

use crate::script::{checkpoint_script, Closure, VtxoScript};
use crate::{ArkAddress, ArkError, RelativeLocktime};

/// The Ark server parameters that shape off-chain transactions.
///
/// Built from GetInfo (`signer_pubkey`, `forfeit_pubkey`, `checkpoint_tapscript`,
/// `unilateral_exit_delay`, `dust`, `network`, `vtxo_min_amount`,
/// `vtxo_max_amount`, `deprecated_signers`); the fields are private so that the
/// checkpoint tapscript and its decoded delay always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    signer: XOnlyPublicKey,
    deprecated_signers: Vec<XOnlyPublicKey>,
    forfeit_key: XOnlyPublicKey,
    checkpoint_tapscript: ScriptBuf,
    checkpoint_exit_delay: RelativeLocktime,
    unilateral_exit_delay: RelativeLocktime,
    dust: Sats,
    network: Network,
    vtxo_min_amount: Option<Sats>,
    vtxo_max_amount: Option<Sats>,
}

impl ServerInfo {
    /// Parameters of a server whose checkpoint tapscript is arkd's
    /// `<checkpoint_exit_delay> CSV DROP <forfeit_key> CHECKSIG` (what a simulator serves).
    pub fn new(
        signer: XOnlyPublicKey,
        forfeit_key: XOnlyPublicKey,
        unilateral_exit_delay: RelativeLocktime,
        checkpoint_exit_delay: RelativeLocktime,
        dust: Sats,
        network: Network,
    ) -> Self {
        Self {
            signer,
            deprecated_signers: Vec::new(),
            forfeit_key,
            checkpoint_tapscript: checkpoint_script(&forfeit_key, checkpoint_exit_delay),
            checkpoint_exit_delay,
            unilateral_exit_delay,
            dust,
            network,
            vtxo_min_amount: None,
            vtxo_max_amount: None,
        }
    }

    /// Parameters from GetInfo's fields. The checkpoint tapscript must be a CSV
    /// multisig leaf, as arkd's `BuildTxs` requires.
    pub fn from_get_info(
        signer: XOnlyPublicKey,
        forfeit_key: XOnlyPublicKey,
        checkpoint_tapscript: ScriptBuf,
        unilateral_exit_delay: RelativeLocktime,
        dust: Sats,
        network: Network,
    ) -> Result<Self, ArkError> {
        let Some(Closure::CsvMultisig { locktime, .. }) = Closure::decode(&checkpoint_tapscript)
        else {
            return Err(ArkError::InvalidCheckpointTapscript {
                script: checkpoint_tapscript.to_hex_string(),
            });
        };
        Ok(Self {
            checkpoint_tapscript,
            checkpoint_exit_delay: locktime,
            ..Self::new(
                signer,
                forfeit_key,
                unilateral_exit_delay,
                locktime,
                dust,
                network,
            )
        })
    }

    /// Converts ark-core's GetInfo (as returned by the `ark-grpc` client).
    pub fn from_ark_core(info: &ark_core::server::Info) -> Result<Self, ArkError> {
        let dust = Sats::new(info.dust.to_sat());
        let this = Self::from_get_info(
            info.signer_pk.x_only_public_key().0,
            info.forfeit_pk.x_only_public_key().0,
            info.checkpoint_tapscript.clone(),
            RelativeLocktime::from_sequence(info.unilateral_exit_delay)?,
            dust,
            info.network,
        )?;
        Ok(this
            .with_vtxo_amount_limits(
                info.vtxo_min_amount.map(|a| Sats::new(a.to_sat())),
                info.vtxo_max_amount.map(|a| Sats::new(a.to_sat())),
            )
            .with_deprecated_signers(
                info.deprecated_signers
                    .iter()
                    .map(|d| d.pk.x_only_public_key().0)
                    .collect(),
            ))
    }

    /// Sets `vtxo_min_amount` / `vtxo_max_amount` (`None` = no limit).
    pub fn with_vtxo_amount_limits(mut self, min: Option<Sats>, max: Option<Sats>) -> Self {
        self.vtxo_min_amount = min;
        self.vtxo_max_amount = max;
        self
    }

    /// Sets the deprecated signer keys whose signatures are still accepted.
    pub fn with_deprecated_signers(mut self, keys: Vec<XOnlyPublicKey>) -> Self {
        self.deprecated_signers = keys;
        self
    }

    /// The server's signer key (x-only form of GetInfo `signer_pubkey`).
    pub fn signer(&self) -> &XOnlyPublicKey {
        &self.signer
    }
    /// Former signer keys still accepted in collaborative leaves.
    pub fn deprecated_signers(&self) -> &[XOnlyPublicKey] {
        &self.deprecated_signers
    }
    /// Whether `key` is the signer or a deprecated signer.
    pub fn is_signer(&self, key: &XOnlyPublicKey) -> bool {
        self.signer == *key || self.deprecated_signers.contains(key)
    }
    /// The forfeit key (x-only form of GetInfo `forfeit_pubkey`).
    pub fn forfeit_key(&self) -> &XOnlyPublicKey {
        &self.forfeit_key
    }
    /// The server's checkpoint leaf.
    pub fn checkpoint_tapscript(&self) -> &ScriptBuf {
        &self.checkpoint_tapscript
    }
    /// The CSV delay of the checkpoint leaf.
    pub fn checkpoint_exit_delay(&self) -> RelativeLocktime {
        self.checkpoint_exit_delay
    }
    /// The exit delay of new VTXOs.
    pub fn unilateral_exit_delay(&self) -> RelativeLocktime {
        self.unilateral_exit_delay
    }
    /// Outputs below this are written `OP_RETURN <key>`.
    pub fn dust(&self) -> Sats {
        self.dust
    }
    /// The Bitcoin network.
    pub fn network(&self) -> Network {
        self.network
    }
    /// The smallest VTXO output the server accepts, if limited.
    pub fn vtxo_min_amount(&self) -> Option<Sats> {
        self.vtxo_min_amount
    }
    /// The largest VTXO output the server accepts, if limited.
    pub fn vtxo_max_amount(&self) -> Option<Sats> {
        self.vtxo_max_amount
    }

    /// The default VTXO script of `owner` under this server.
    pub fn default_vtxo(&self, owner: &PubKey) -> VtxoScript {
        VtxoScript::default_vtxo(owner.x_only(), &self.signer, self.unilateral_exit_delay)
    }

    /// The Ark address of a VTXO script under this server.
    pub fn address(&self, vtxo: &VtxoScript) -> ArkAddress {
        ArkAddress::new(self.network, self.signer, vtxo.output_key())
    }
}

/// Maps GetInfo's `network` string to a [`Network`] (`mutinynet` is a signet).
pub fn parse_network(name: &str) -> Result<Network, ArkError> {
    match name {
        "bitcoin" | "mainnet" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" | "mutinynet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(ArkError::UnknownNetwork(other.to_owned())),
    }
}
