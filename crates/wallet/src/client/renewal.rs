//! The wallet's answer to a `sign_renewal` challenge (31511 of type
//! `sign_renewal`): checked by [`crate::verify::renewal`] against what the
//! wallet knows (its key, the Ark server's parameters, its VTXOs from
//! `sync_state`, the relay's published `renewal_fee_sats`) and answered
//! with a 31512 carrying the signatures or the refusal. Once answered, the
//! wallet may go offline: the relay renews the VTXO from the delegation.

use ark_relay_core::renewals::RenewalView;
use ark_relay_core::VtxoId;
use ark_relay_protocol::renewal::RenewalChallenge;

use super::*;
use crate::verify::renewal::{answer_renewal, RenewalContext};

impl Wallet {
    /// Each unspent VTXO's renewal as the relay reports it in `sync_state`
    /// (state, when it is scheduled, whether it is recoverable).
    pub async fn renewals(&self) -> Result<Vec<(VtxoId, RenewalView)>, WalletError> {
        let result = self.request(&ServiceRequest::SyncState {}).await?;
        let list = result
            .get("vtxos")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|v| {
                let id: VtxoId = serde_json::from_value(v.get("vtxo")?.clone()).ok()?;
                let view = v
                    .get("renewal")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                    .unwrap_or_else(|| RenewalView::of(&[]));
                Some((id, view))
            })
            .collect())
    }

    pub(super) async fn on_renewal(&self, ev: &Event, plain: &str, scheme: Scheme) {
        let ch: RenewalChallenge = match serde_json::from_str(plain) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id = %ev.id, error = %e, "malformed renewal challenge");
                return;
            }
        };
        let resp = {
            let st = self.lock();
            let Some(signer) = st.signer.as_ref() else {
                tracing::debug!(id = %ev.id, "renewal challenge before the server parameters are known; ignored");
                return;
            };
            let server = signer.server().clone();
            let max_fee = st
                .params
                .as_ref()
                .and_then(|p| p.info.get("renewal_fee_sats"))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let ctx = RenewalContext {
                owner: &self.inner.me,
                server: &server,
                vtxos: &st.vtxos,
                max_fee,
                now: now(),
            };
            answer_renewal(&ctx, &self.inner.keypair, &ch)
        };
        match &resp.reject {
            Some(why) => {
                tracing::warn!(renewal = %ch.renewal_id, reason = %why, "refusing a renewal")
            }
            None => {
                tracing::info!(renewal = %ch.renewal_id, valid_at = ch.valid_at, "renewal signed")
            }
        }
        match builders::renewal_response(&self.inner.keys, &self.inner.relay, &resp, scheme) {
            Ok(out) => {
                if let Err(e) = self.publish(&out).await {
                    tracing::warn!(error = %e, "cannot publish a renewal answer");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build a renewal answer"),
        }
        self.bump();
    }
}
