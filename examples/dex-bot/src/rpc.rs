//! The DEX's private request/answer protocol over Nostr, shared by every bot
//! of this example (the constant-product pool, the perpetuals bot): a user
//! sends an encrypted request of kind [`DEX_REQUEST`] p-tagged to the bot's
//! key; the bot answers with an encrypted [`DEX_RESPONSE`] in the request's
//! scheme, e-tagging the request. The relay never sees these events.
//!
//! [`serve`] is the bot's loop (one task per request, each answered through a
//! [`Service`]); the user's side, [`RpcClient`], and the wire pieces live in
//! the wallet library ([`ark_relay_wallet::dex`]) so that `ark-wallet` speaks
//! it too. Nothing here knows what a request means.

use std::collections::HashSet;
use std::sync::Arc;

use ark_relay_core::PubKey;
use ark_relay_nostr::PoolTransport;
use ark_relay_protocol::crypto::decrypt;
use ark_relay_protocol::pubkey_from_nostr;
use ark_relay_protocol::transport::{NostrTransport, TransportError};
pub use ark_relay_wallet::dex::{
    message, reader, DexResponse, RpcClient, DEX_REQUEST, DEX_RESPONSE,
};
use async_trait::async_trait;
use nostr::{Event, Keys};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// What a bot does with one decrypted request.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The request type (JSON, tagged by `action`).
    type Request: DeserializeOwned + Send;

    /// Answers `req` from `user`: a JSON result, or why it is refused.
    async fn handle(&self, user: &PubKey, req: Self::Request) -> Result<serde_json::Value, String>;
}

/// Serves [`DEX_REQUEST`]s addressed to `keys` with `service` until `stop`
/// turns `true`: one task per request; answers are encrypted in the
/// request's scheme.
pub async fn serve<S: Service>(
    service: Arc<S>,
    keys: Keys,
    relays: Vec<String>,
    stop: watch::Receiver<bool>,
) -> Result<(), TransportError> {
    let (transport, mut rx) = reader(&keys, relays, vec![DEX_REQUEST], stop.clone()).await?;
    let mut seen = HashSet::new();
    while let Some(ev) = rx.recv().await {
        if *stop.borrow() {
            break;
        }
        if !seen.insert(ev.id) || ev.verify().is_err() {
            continue;
        }
        let (service, transport, keys) = (service.clone(), transport.clone(), keys.clone());
        tokio::spawn(async move { answer(&*service, &keys, &transport, ev).await });
    }
    Ok(())
}

async fn answer<S: Service>(service: &S, keys: &Keys, transport: &PoolTransport, ev: Event) {
    let Some(user) = pubkey_from_nostr(&ev.pubkey) else {
        return;
    };
    let Ok((plain, scheme)) = decrypt(keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags) else {
        return;
    };
    let request_id = ev.id.to_hex();
    let outcome = match serde_json::from_str::<S::Request>(&plain) {
        Err(e) => Err(format!("bad request: {e}")),
        Ok(req) => service.handle(&user, req).await,
    };
    let response = match outcome {
        Ok(r) => DexResponse {
            request_id,
            result: Some(r),
            error: None,
        },
        Err(e) => DexResponse {
            request_id,
            result: None,
            error: Some(e),
        },
    };
    match message(keys, &user, DEX_RESPONSE, &response, Some(&ev.id), scheme) {
        Ok(out) => {
            if let Err(e) = transport.publish(&out).await {
                tracing::warn!(error = %e, "cannot publish a DEX response");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot build a DEX response"),
    }
}
