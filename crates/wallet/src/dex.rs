//! The user's side of a DEX bot's private protocol over Nostr (the
//! reference DEX and perpetuals bots in `examples/`, and `ark-wallet perp`):
//! an encrypted request of kind [`DEX_REQUEST`] p-tagged to the bot's key,
//! answered by an encrypted [`DEX_RESPONSE`] in the same scheme, e-tagging the
//! request. The relay never sees these events. The bots' serving loop
//! (`ark_relay_dex_bot::rpc`) uses [`message`] and [`reader`] from here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ark_relay_core::PubKey;
use ark_relay_nostr::{PoolOptions, PoolTransport};
use ark_relay_protocol::crypto::{decrypt, encrypt, Scheme};
use ark_relay_protocol::pubkey_to_nostr;
use ark_relay_protocol::transport::{NostrTransport, TransportError};
use nostr::{Event, EventBuilder, Keys, Kind, Tag};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Mutex};

/// Kind of an encrypted request to a DEX bot (the example bots' own
/// protocol; the relay never sees it).
pub const DEX_REQUEST: u16 = 31530;
/// Kind of the bot's encrypted answer.
pub const DEX_RESPONSE: u16 = 31531;

/// The bot's answer (content of a [`DEX_RESPONSE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DexResponse {
    /// The request's event id (hex).
    pub request_id: String,
    /// On success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// On failure: why (the relay's code when it refused the batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An encrypted DEX message of `kind` from `keys` to `to`.
pub fn message<T: Serialize>(
    keys: &Keys,
    to: &PubKey,
    kind: u16,
    body: &T,
    answers: Option<&nostr::EventId>,
    scheme: Scheme,
) -> Result<Event, String> {
    let json = serde_json::to_string(body).map_err(|e| e.to_string())?;
    let content = encrypt(keys.secret_key(), &pubkey_to_nostr(to), &json, scheme)
        .map_err(|e| e.to_string())?;
    let mut tags = vec![
        Tag::public_key(pubkey_to_nostr(to)),
        Tag::identifier(uuid::Uuid::new_v4().simple().to_string()),
        scheme.tag(),
    ];
    if let Some(id) = answers {
        tags.push(Tag::event(*id));
    }
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .sign_with_keys(keys)
        .map_err(|e| e.to_string())
}

/// Reads `kinds` p-tagged to `keys` from `relays` into a channel until `stop`.
pub async fn reader(
    keys: &Keys,
    relays: Vec<String>,
    kinds: Vec<u16>,
    stop: watch::Receiver<bool>,
) -> Result<(PoolTransport, mpsc::Receiver<Event>), TransportError> {
    let mut opts = PoolOptions::new(relays);
    opts.kinds = kinds;
    opts.catch_up_every = Duration::from_secs(3);
    let transport = PoolTransport::connect(keys.public_key(), opts).await?;
    let (tx, rx) = mpsc::channel::<Event>(256);
    let (cursor_tx, cursor) = watch::channel(None);
    let t = transport.clone();
    tokio::spawn(async move {
        let _keep = cursor_tx;
        if let Err(e) = t.pump(tx, cursor, stop).await {
            tracing::warn!(error = %e, "dex reader stopped");
        }
    });
    Ok((transport, rx))
}

/// A user's side of a DEX bot: sends requests, waits for answers.
pub struct RpcClient {
    keys: Keys,
    server: PubKey,
    transport: PoolTransport,
    answers: Arc<Mutex<HashMap<String, DexResponse>>>,
    stop: watch::Sender<bool>,
}

impl RpcClient {
    /// Connects `keys` to the bot `server` over `relays`.
    pub async fn connect(keys: Keys, server: PubKey, relays: Vec<String>) -> Result<Self, String> {
        let (stop, stop_rx) = watch::channel(false);
        let (transport, mut rx) = reader(&keys, relays, vec![DEX_RESPONSE], stop_rx)
            .await
            .map_err(|e| e.to_string())?;
        let answers: Arc<Mutex<HashMap<String, DexResponse>>> = Arc::default();
        let (sink, secret, server_nostr) = (
            answers.clone(),
            keys.secret_key().clone(),
            pubkey_to_nostr(&server),
        );
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if ev.pubkey != server_nostr || ev.verify().is_err() {
                    continue;
                }
                if let Ok((plain, _)) = decrypt(&secret, &ev.pubkey, &ev.content, &ev.tags) {
                    if let Ok(r) = serde_json::from_str::<DexResponse>(&plain) {
                        sink.lock().await.insert(r.request_id.clone(), r);
                    }
                }
            }
        });
        Ok(Self {
            keys,
            server,
            transport,
            answers,
            stop,
        })
    }

    /// Sends `req` and waits up to `timeout` for the answer.
    pub async fn request<T: Serialize>(
        &self,
        req: &T,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let ev = message(
            &self.keys,
            &self.server,
            DEX_REQUEST,
            req,
            None,
            Scheme::Nip44,
        )?;
        let id = ev.id.to_hex();
        self.transport
            .publish(&ev)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.answers.lock().await.remove(&id) {
                return match (r.result, r.error) {
                    (Some(v), _) => Ok(v),
                    (None, e) => Err(e.unwrap_or_else(|| "empty answer".into())),
                };
            }
            if tokio::time::Instant::now() > deadline {
                return Err("no answer from the DEX".into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the reader.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.transport.shutdown().await;
    }
}
