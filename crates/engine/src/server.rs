//! The Ark server's parameters (signer and forfeit keys, checkpoint tapscript,
//! exit delay, dust, network) as the engine needs them, from arkd's `GetInfo`.

use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::backends::ark::ArkServer;

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
