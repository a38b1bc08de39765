//! The scheduler's leader lock, behind the core's
//! [`LeaderLock`](ark_relay_core::LeaderLock) port: [`RedisLeaderLock`] for
//! any number of schedulers on any hosts, [`MemoryLeaderLock`] for one
//! process (embedded mode, tests).
//!
//! # Redis layout (`<prefix>:leader:<name>`)
//! - `<key>` holds `<holder> <token>` with a `PX <ttl>` expiry: the lease.
//! - `<key>:token` is a counter; `INCR` on it mints each lease's fencing token.
//!
//! Taking the lease is one Lua script (so two schedulers can never both win
//! and no token is minted for a lost race): `SET <key> … NX PX <ttl>` and,
//! only if that succeeded, `INCR <key>:token` and rewrite the value with the
//! token. Renewal is a compare-and-`PEXPIRE` and release a compare-and-`DEL`
//! on the exact value, so a holder whose lease expired and was taken by
//! another can neither extend nor delete the new lease.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ark_relay_core::{LeaderLock, Lease, QueueError};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;
use tokio::time::Instant;

use crate::redis_queue::{client, join, map_err, open, COMMAND_TIMEOUT};

const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
  return token
end
return 0
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

fn value(lease: &Lease) -> String {
    format!("{} {}", lease.holder, lease.token)
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The [`LeaderLock`] on Redis. See the module docs.
pub struct RedisLeaderLock {
    conn: ConnectionManager,
    key: String,
    token_key: String,
    ttl: Duration,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl std::fmt::Debug for RedisLeaderLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLeaderLock")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisLeaderLock {
    /// The lock `<prefix>:leader:<name>` on the Redis at `url`, with leases
    /// of `ttl`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<Self, QueueError> {
        let client = client(url)?;
        // A renewal must fail well within the lease, not after it.
        let timeout = (ttl / 3).clamp(Duration::from_millis(100), COMMAND_TIMEOUT);
        let conn = open(&client, timeout).await?;
        let key = join(prefix, &format!("leader:{name}"));
        Ok(Self {
            conn,
            token_key: format!("{key}:token"),
            key,
            ttl,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        })
    }

    /// The key holding the lease.
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[async_trait]
impl LeaderLock for RedisLeaderLock {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }

    async fn acquire(&self, holder: &str) -> Result<Option<Lease>, QueueError> {
        let mut conn = self.conn.clone();
        let token: u64 = self
            .acquire
            .key(&self.key)
            .key(&self.token_key)
            .arg(holder)
            .arg(ttl_ms(self.ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok((token > 0).then(|| Lease {
            holder: holder.to_owned(),
            token,
        }))
    }

    async fn renew(&self, lease: &Lease) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .renew
            .key(&self.key)
            .arg(value(lease))
            .arg(ttl_ms(self.ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(&self.key)
            .arg(value(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn holder(&self) -> Result<Option<Lease>, QueueError> {
        let mut conn = self.conn.clone();
        let v: Option<String> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(v.and_then(|v| {
            let (holder, token) = v.rsplit_once(' ')?;
            Some(Lease {
                holder: holder.to_owned(),
                token: token.parse().ok()?,
            })
        }))
    }
}

/// The in-process [`LeaderLock`]: the same contract within one process
/// (clones share the lock). Time is [`tokio::time::Instant`].
#[derive(Debug, Clone)]
pub struct MemoryLeaderLock {
    state: Arc<Mutex<MemoryState>>,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct MemoryState {
    held: Option<(Lease, Instant)>,
    last_token: u64,
}

impl MemoryLeaderLock {
    /// A free lock with leases of `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(MemoryState::default())),
            ttl,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState, Instant) -> T) -> T {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if matches!(&st.held, Some((_, until)) if *until <= now) {
            st.held = None;
        }
        f(&mut st, now)
    }
}

#[async_trait]
impl LeaderLock for MemoryLeaderLock {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }

    async fn acquire(&self, holder: &str) -> Result<Option<Lease>, QueueError> {
        Ok(self.with(|st, now| {
            if st.held.is_some() {
                return None;
            }
            st.last_token += 1;
            let lease = Lease {
                holder: holder.to_owned(),
                token: st.last_token,
            };
            st.held = Some((lease.clone(), now + self.ttl));
            Some(lease)
        }))
    }

    async fn renew(&self, lease: &Lease) -> Result<bool, QueueError> {
        Ok(self.with(|st, now| match &mut st.held {
            Some((held, until)) if held == lease => {
                *until = now + self.ttl;
                true
            }
            _ => false,
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.with(|st, _| {
            if matches!(&st.held, Some((held, _)) if held == lease) {
                st.held = None;
            }
        });
        Ok(())
    }

    async fn holder(&self) -> Result<Option<Lease>, QueueError> {
        Ok(self.with(|st, _| st.held.as_ref().map(|(l, _)| l.clone())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn contract(a: &dyn LeaderLock, ttl: Duration) {
        let first = a.acquire("a").await.unwrap().expect("a free lock is taken");
        assert_eq!(a.acquire("b").await.unwrap(), None, "held: b must not win");
        assert_eq!(a.holder().await.unwrap(), Some(first.clone()));
        assert!(a.renew(&first).await.unwrap());
        a.release(&first).await.unwrap();
        assert_eq!(a.holder().await.unwrap(), None);
        let second = a.acquire("b").await.unwrap().expect("released: b wins");
        assert!(second.token > first.token, "fencing tokens grow");
        assert!(!a.renew(&first).await.unwrap(), "a's old lease is gone");
        a.release(&first).await.unwrap();
        assert_eq!(
            a.holder().await.unwrap(),
            Some(second.clone()),
            "a stale release frees nothing"
        );
        // Expiry: b stops renewing.
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert!(!a.renew(&second).await.unwrap(), "an expired lease is lost");
        let third = a.acquire("a").await.unwrap().expect("expired: a wins");
        assert!(third.token > second.token);
        a.release(&third).await.unwrap();
    }

    #[tokio::test]
    async fn memory_lock_keeps_the_contract() {
        let ttl = Duration::from_millis(200);
        contract(&MemoryLeaderLock::new(ttl), ttl).await;
    }

    #[tokio::test]
    async fn redis_lock_keeps_the_contract() {
        let url = std::env::var("ARK_RELAY_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("ark-relay-test-{}", uuid::Uuid::new_v4());
        let ttl = Duration::from_millis(300);
        let lock = RedisLeaderLock::connect(&url, &prefix, "scheduler", ttl)
            .await
            .unwrap();
        contract(&lock, ttl).await;
        let mut conn = lock.conn.clone();
        let _: () = redis::cmd("DEL")
            .arg(&lock.key)
            .arg(&lock.token_key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
