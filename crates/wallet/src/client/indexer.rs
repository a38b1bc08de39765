//! The wallet's look-up of its own inputs at the Ark server's indexer before
//! it signs a step-1 challenge (issue 20 item 4): `GetVtxos` by outpoint, the
//! unspent ones with their asset denominations ([`IndexerView`]). The server
//! is the one `get_info` advertises (`ark.url`) or one given in
//! [`IndexerCheck::Server`]. When it cannot be reached the wallet says so in
//! a WARN and checks against its own history only.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::backends::ark::{ArkServer, VtxoQuery};
use ark_relay_core::VtxoId;

use super::*;
use crate::verify::IndexerView;

/// How long a look-up may take before the wallet falls back.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether and where the wallet checks its inputs before signing.
#[derive(Clone, Default)]
pub enum IndexerCheck {
    /// Only against the wallet's own history (`sync_state`).
    Off,
    /// At the Ark server `get_info` advertises (`ark.url`); falls back with
    /// a WARN when none is advertised or it cannot be reached. The default.
    #[default]
    Relay,
    /// At this server.
    Server(Arc<dyn ArkServer>),
}

impl std::fmt::Debug for IndexerCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IndexerCheck::Off => "Off",
            IndexerCheck::Relay => "Relay",
            IndexerCheck::Server(_) => "Server",
        })
    }
}

impl Wallet {
    /// The indexer to ask, connecting to `get_info`'s `ark.url` once.
    async fn indexer(&self) -> Result<Option<Arc<dyn ArkServer>>, String> {
        match &self.inner.opts.indexer {
            IndexerCheck::Off => Ok(None),
            IndexerCheck::Server(s) => Ok(Some(s.clone())),
            IndexerCheck::Relay => {
                if let Some(s) = self.lock().indexer.clone() {
                    return Ok(Some(s));
                }
                // A relay that does not answer get_info must not hold up
                // signing for a whole request timeout.
                let params = tokio::time::timeout(LOOKUP_TIMEOUT, self.params())
                    .await
                    .map_err(|_| "get_info did not answer in time".to_owned())?
                    .map_err(|e| e.to_string())?;
                let url = params
                    .info
                    .get("ark")
                    .and_then(|a| a.get("url"))
                    .and_then(|u| u.as_str())
                    .ok_or_else(|| "get_info advertises no Ark server (ark.url)".to_owned())?
                    .to_owned();
                let client = tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    ark_relay_grpc::arkd::ArkdClient::connect(url.clone()),
                )
                .await
                .map_err(|_| format!("connecting to {url} timed out"))?
                .map_err(|e| format!("connecting to {url}: {e}"))?;
                let client: Arc<dyn ArkServer> = Arc::new(client);
                self.lock().indexer = Some(client.clone());
                Ok(Some(client))
            }
        }
    }

    /// What the indexer lists for `vtxos`, or `None` (checked against my own
    /// history only) when no indexer is configured or it cannot answer.
    pub(super) async fn indexer_view(&self, vtxos: &[VtxoId]) -> Option<IndexerView> {
        if vtxos.is_empty() {
            return None;
        }
        let server = match self.indexer().await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the Ark server's indexer; checking my inputs against my own history only");
                return None;
            }
        };
        let query = VtxoQuery::Outpoints(vtxos.to_vec());
        let listed = match tokio::time::timeout(LOOKUP_TIMEOUT, server.get_vtxos(&query)).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the Ark server's indexer failed; checking my inputs against my own history only");
                return None;
            }
            Err(_) => {
                tracing::warn!("the Ark server's indexer did not answer in time; checking my inputs against my own history only");
                return None;
            }
        };
        let mut view = IndexerView::new();
        for v in listed {
            if v.is_spent || v.is_swept || v.is_unrolled {
                continue;
            }
            let mut assets = Vec::with_capacity(v.assets.len());
            for a in &v.assets {
                match a.asset_id.parse::<ark_relay_ark::asset::ArkadeAssetId>() {
                    Ok(id) => assets.push((id, a.amount)),
                    Err(_) => {
                        tracing::warn!(vtxo = %v.id, asset = %a.asset_id, "the indexer lists an unreadable asset id");
                    }
                }
            }
            view.insert(v.id, assets);
        }
        Some(view)
    }
}
