//! [`RedisBus`]: the event bus on Redis pub/sub, for observers in other
//! processes (dashboards, tests). Channels are named `<prefix>:<channel>`
//! (just `<channel>` with an empty prefix). Best effort, as the port says:
//! a message published while nobody subscribes is gone.

use ark_relay_core::{EventBus, QueueError};
use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use redis::Client;

use crate::redis_queue::{client, join, map_err, open, COMMAND_TIMEOUT};

/// The [`EventBus`] on Redis pub/sub: `PUBLISH <prefix>:<channel> <message>`.
pub struct RedisBus {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects to the Redis at `url`; channels are named `<prefix>:<channel>`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, QueueError> {
        let client = client(url)?;
        let conn = open(&client, COMMAND_TIMEOUT).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// The Redis channel name of `channel`.
    pub fn channel_name(&self, channel: &str) -> String {
        join(&self.prefix, channel)
    }

    /// Subscribes to `channel` on a connection of its own; messages published
    /// after this returns are received.
    pub async fn subscribe(&self, channel: &str) -> Result<RedisSubscription, QueueError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(map_err)?;
        pubsub
            .subscribe(self.channel_name(channel))
            .await
            .map_err(map_err)?;
        Ok(RedisSubscription {
            stream: pubsub.into_on_message(),
        })
    }
}

/// Messages of one [`RedisBus`] channel.
pub struct RedisSubscription {
    stream: PubSubStream,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription").finish_non_exhaustive()
    }
}

impl RedisSubscription {
    /// The next message; `None` once the connection is gone (subscribe again).
    /// Messages that are not UTF-8 are skipped.
    pub async fn recv(&mut self) -> Option<String> {
        loop {
            let msg = self.stream.next().await?;
            match msg.get_payload::<String>() {
                Ok(text) => return Some(text),
                Err(e) => tracing::debug!(error = %e, "non-text bus message skipped"),
            }
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, channel: &str, message: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.channel_name(channel))
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
