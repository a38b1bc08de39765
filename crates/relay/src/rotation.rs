//! Relay key rotation at run time (PRD §10.2; `ark-relay keys rotate` makes
//! the keys, see `keys.rs` and docs/protocol.md "Key rotation").
//!
//! The configuration lists earlier keys (`[[keys.previous]]`: a sealed blob
//! and `until`). For each one still in its grace period the relay runs a
//! **legacy engine**: ingest subscribed to events `p`-tagged to the old key,
//! decryption, answers and signatures with the old key, and its own job
//! stream (Redis prefix `<prefix>:key-<8 hex>`), so nothing mixes with the
//! current key's work. Both engines' handlers are wrapped in
//! [`ark_relay_engine::keyring::AddressedTo`], because the database's pending-job scan is shared. At
//! `until` the legacy engine stops: later events to the old key are ignored.
//!
//! At start the relay publishes a kind-13510 info event from its current
//! key (listing the old keys and their `until`) and one from every old key in
//! grace, whose `successor` names the current key — the old key's own
//! signature vouching for the new one.
//!
//! Secret keys are decrypted into zeroizing buffers and never logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::{Clock, NewOutboxEvent, PubKey, RelayStore, SystemClock, UnixTime};
use ark_relay_engine::builder::EngineBuilder;
use ark_relay_engine::keyring::ActiveKey;
use ark_relay_engine::{Engine, Roles};
use ark_relay_store::SqlStore;
use nostr::{EventBuilder, JsonUtil, Keys, Kind};
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::keys::{KeyFile, KeyOrigin};
use crate::services::Services;

/// An earlier relay key and the end of its grace period.
#[derive(Debug, Clone)]
pub(crate) struct PreviousKey {
    /// The key (secret in memory only).
    pub key: KeyFile,
    /// Unix seconds.
    pub until: UnixTime,
}

impl PreviousKey {
    fn active(&self) -> Result<ActiveKey> {
        Ok(ActiveKey {
            key: pubkey(&self.key.keys)?,
            until: Some(self.until),
        })
    }
}

fn pubkey(keys: &Keys) -> Result<PubKey> {
    ark_relay_protocol::pubkey_from_nostr(&keys.public_key()).context("not an x-only key")
}

/// Opens every `[[keys.previous]]` blob with `GATEWAY_ENCRYPTION_KEY`.
pub(crate) fn load_previous(config: &Config) -> Result<Vec<PreviousKey>> {
    if config.keys.previous.is_empty() {
        return Ok(Vec::new());
    }
    let pass = zeroize::Zeroizing::new(
        std::env::var("GATEWAY_ENCRYPTION_KEY")
            .context("keys.previous is set but GATEWAY_ENCRYPTION_KEY is not")?,
    );
    let mut out = Vec::new();
    for (i, p) in config.keys.previous.iter().enumerate() {
        let blob = p
            .sealed
            .resolve_bytes()
            .with_context(|| format!("keys.previous[{i}].sealed"))?;
        let blob = zeroize::Zeroizing::new(
            String::from_utf8(blob.expose().clone())
                .with_context(|| format!("keys.previous[{i}].sealed is not text"))?,
        );
        let secret = crate::keyvault::open(&blob, pass.as_bytes())
            .with_context(|| format!("keys.previous[{i}]"))?;
        let sk = nostr::SecretKey::from_slice(secret.as_ref())
            .with_context(|| format!("keys.previous[{i}] holds no valid key"))?;
        out.push(PreviousKey {
            key: KeyFile {
                keys: Keys::new(sk),
                path: format!("keys.previous[{i}]").into(),
                origin: KeyOrigin::Loaded,
            },
            until: UnixTime(p.until),
        });
    }
    Ok(out)
}

/// Addresses the current key's engine so it leaves old keys' jobs to their
/// engines (only when there are old keys).
pub(crate) fn address_current(
    builder: EngineBuilder,
    current: &KeyFile,
    previous: &[PreviousKey],
) -> Result<EngineBuilder> {
    if previous.is_empty() {
        return Ok(builder);
    }
    let me = ActiveKey {
        key: pubkey(&current.keys)?,
        until: None,
    };
    let others = previous
        .iter()
        .map(PreviousKey::active)
        .collect::<Result<Vec<_>>>()?;
    Ok(builder.addressed_to(me, others))
}

/// One engine per old key still in grace, and when each must stop.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn legacy_engines(
    config: &Config,
    store: &SqlStore,
    current: &KeyFile,
    previous: &[PreviousKey],
    nostr_relays: &[String],
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
    roles: Roles,
) -> Result<Vec<(Engine, UnixTime)>> {
    let now = SystemClock.now();
    let mut out = Vec::new();
    for p in previous.iter().filter(|p| p.until > now) {
        let pk = p.key.pubkey_hex();
        let mut cfg = config.clone();
        cfg.run.redis_prefix = format!("{}:key-{}", config.run.redis_prefix, &pk[..8]);
        let builder = crate::wiring::engine_builder(
            &cfg,
            store,
            &p.key,
            nostr_relays,
            ark.clone(),
            server,
            None,
        )
        .await
        .with_context(|| format!("the engine of the previous key {pk}"))?;
        let me = p.active()?;
        let mut others = vec![ActiveKey {
            key: pubkey(&current.keys)?,
            until: None,
        }];
        for o in previous.iter().filter(|o| o.key.pubkey_hex() != pk) {
            others.push(o.active()?);
        }
        let engine = builder.addressed_to(me, others).build()?.with_roles(Roles {
            scheduler: false,
            ..roles
        });
        info!(pubkey = %pk, until = p.until.0, "answering the previous relay key until its grace period ends");
        out.push((engine, p.until));
    }
    Ok(out)
}

/// Runs a legacy engine until `until` or `stop`, whichever is first; then
/// waits for `stop` (the service must not end on its own).
pub(crate) async fn run_legacy(
    engine: Engine,
    until: UnixTime,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let (tx, rx) = watch::channel(false);
    let mut task = tokio::spawn(engine.run(rx));
    let left = u64::try_from(until.0 - SystemClock.now().0).unwrap_or(0);
    tokio::pin!(stop);
    let stopped = tokio::select! {
        _ = &mut stop => true,
        _ = tokio::time::sleep(Duration::from_secs(left)) => {
            info!(until = until.0, "grace period of the previous relay key is over; events to it are ignored from now on");
            false
        }
        r = &mut task => {
            r.context("legacy engine task")??;
            anyhow::bail!("the previous key's engine stopped on its own");
        }
    };
    let _ = tx.send(true);
    task.await.context("legacy engine task")??;
    if !stopped {
        stop.await;
    }
    Ok(())
}

/// Queues the 13510 relay-info events: the current key's (listing old keys)
/// and, for each old key in grace, one signed by it naming its `successor`.
pub(crate) async fn announce(
    store: &SqlStore,
    current: &KeyFile,
    previous: &[PreviousKey],
    mut info: serde_json::Value,
) -> Result<()> {
    let now = SystemClock.now();
    let in_grace: Vec<&PreviousKey> = previous.iter().filter(|p| p.until > now).collect();
    info["previous_keys"] = serde_json::Value::Array(
        in_grace
            .iter()
            .map(|p| serde_json::json!({"pubkey": p.key.pubkey_hex(), "until": p.until.0}))
            .collect(),
    );
    let mut rows = vec![info_event(&current.keys, &info, now)?];
    for p in in_grace {
        let mut old = info.clone();
        old["pubkey"] = p.key.pubkey_hex().into();
        old["successor"] = current.pubkey_hex().into();
        old["until"] = p.until.0.into();
        if let Some(map) = old.as_object_mut() {
            map.remove("previous_keys");
        }
        rows.push(info_event(&p.key.keys, &old, now)?);
    }
    store
        .push_outbox(&rows, now)
        .await
        .context("queueing the relay info events")?;
    Ok(())
}

fn info_event(keys: &Keys, content: &serde_json::Value, now: UnixTime) -> Result<NewOutboxEvent> {
    let ev = EventBuilder::new(
        Kind::Custom(ark_relay_protocol::kinds::RELAY_INFO),
        content.to_string(),
    )
    .sign_with_keys(keys)
    .context("signing the relay info event")?;
    ark_relay_engine::audit::event_signed(&ev);
    Ok(NewOutboxEvent {
        dedupe_key: format!("13510:{}:{}", keys.public_key().to_hex(), now.0),
        kind: ark_relay_protocol::kinds::RELAY_INFO,
        recipient: None,
        event_json: ev.as_json(),
    })
}

/// The `get_info` facts as the 13510 content.
pub(crate) fn info_json(
    config: &Config,
    current: &KeyFile,
    nostr_relays: &[String],
    server: &ServerInfo,
) -> serde_json::Value {
    serde_json::json!({
        "pubkey": current.pubkey_hex(),
        "relays": nostr_relays,
        "kinds_consumed": ark_relay_protocol::kinds::CONSUMED,
        "encryption": ["nip44_v2", "nip04"],
        "transfer_fee": config.fees.transfer_fee_sats,
        "land_fee_ppm": config.fees.land_fee_ppm,
        "ark": ark_relay_engine::ceremony::server_info_json(server),
    })
}

/// Wires rotation into a starting `dev` stack: starts a legacy engine per
/// old key in grace (as services) and queues the 13510s. The current key's
/// engine is addressed by [`address_current`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn wire(
    config: &Config,
    store: &SqlStore,
    current: &KeyFile,
    previous: &[PreviousKey],
    nostr_relays: &[String],
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
    services: &mut Services,
) -> Result<()> {
    for (legacy, until) in legacy_engines(
        config,
        store,
        current,
        previous,
        nostr_relays,
        ark,
        server,
        Roles::ALL,
    )
    .await?
    {
        services.spawn("engine-previous-key", move |stop| {
            run_legacy(legacy, until, stop.stopped())
        });
    }
    announce(
        store,
        current,
        previous,
        info_json(config, current, nostr_relays, server),
    )
    .await
}

/// [`wire`] for `ark-relay run` and its single-role commands: the legacy
/// engines run the process's `roles` (never the scheduler) as tasks that stop
/// with `stop`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn wire_run(
    config: &Config,
    store: &SqlStore,
    current: &KeyFile,
    previous: &[PreviousKey],
    ark: Arc<dyn ArkServer>,
    server: &ServerInfo,
    roles: Roles,
    stop: &watch::Receiver<bool>,
) -> Result<()> {
    let relays = &config.nostr_relays;
    for (legacy, until) in
        legacy_engines(config, store, current, previous, relays, ark, server, roles).await?
    {
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = run_legacy(legacy, until, stopped).await {
                tracing::warn!(error = %format!("{e:#}"), "the previous key's engine failed");
            }
        });
    }
    if roles.publisher || roles.scheduler {
        announce(
            store,
            current,
            previous,
            info_json(config, current, relays, server),
        )
        .await?;
    }
    Ok(())
}
