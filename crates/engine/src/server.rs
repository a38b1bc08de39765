//! The Ark server's parameters (signer and forfeit keys, checkpoint tapscript,
//! exit delay, dust, network) as the engine needs them, from arkd's `GetInfo`,
//! and the ledger rows of the default VTXOs a finalized ark tx creates.

use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{Colour, NewVtxo, PubKey, Sats, Vtxo, VtxoId, VtxoStatus};

use crate::handlers::HandlerError;

/// Asks arkd for its parameters: transient if arkd cannot answer, fatal if
/// its answer is not usable.
pub(crate) async fn fetch(ark: &dyn ArkServer) -> Result<ServerInfo, HandlerError> {
    let info = ark
        .get_info()
        .await
        .map_err(|e| HandlerError::Transient(format!("arkd GetInfo: {e}")))?;
    let delay = RelativeLocktime::from_server_value(info.unilateral_exit_delay)
        .map_err(|e| HandlerError::Fatal(e.to_string()))?;
    ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript.clone(),
        delay,
        info.dust,
        info.network,
    )
    .map_err(|e| HandlerError::Fatal(e.to_string()))
}

/// The ledger rows of the outputs `(owner, sats, colour)` of ark tx
/// `ark_txid`, in output order: default VTXO scripts of the server, the
/// earliest expiry of `inputs`, and status `Available` for the relay's own
/// uncoloured outputs (inventory), `Assigned` for every other.
pub(crate) fn new_vtxos(
    server: &ServerInfo,
    relay: &PubKey,
    ark_txid: bitcoin::Txid,
    outputs: impl IntoIterator<Item = (PubKey, Sats, Option<Colour>)>,
    inputs: &[Vtxo],
) -> Vec<NewVtxo> {
    let expires_at = inputs.iter().filter_map(|v| v.expires_at).min();
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, (owner, sats, colour))| NewVtxo {
            id: VtxoId::new(ark_txid, u32::try_from(i).unwrap_or(u32::MAX)),
            owner,
            sats,
            colour,
            status: if owner == *relay && colour.is_none() {
                VtxoStatus::Available
            } else {
                VtxoStatus::Assigned
            },
            tapscripts: server.default_vtxo(&owner).to_tapscripts(),
            expires_at,
        })
        .collect()
}
