//! [`EngineBuilder`]: assembles an [`Engine`] from ports — the job router
//! (ceremony, ramps, base handler) with its guards (key-rotation addressing,
//! read-only mode), and the periodic tasks — so every
//! entry point (`ark-relay dev`, `run`, the single roles, the engines of
//! previous keys) runs the same handlers in the same order.
//!
//! Heartbeats: with [`EngineBuilder::with_heartbeat`] the outermost wrapper
//! ([`Heartbeats`]) renews the job's queue delivery
//! ([`JobQueue::renew`](ark_relay_core::JobQueue::renew)) on a timer while
//! the handler runs, so a live worker keeps a slow job however long it takes
//! and a killed worker's job goes to another worker `reclaim_after` after
//! its last heartbeat.
//!
//! It takes ports only (`DynStore`, `Arc<dyn ArkServer>`, `DynQueue`, …):
//! connecting to databases, Redis, Nostr relays or daemons is the binary's
//! job, and this module must never depend on an adapter crate.

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::backends::assets::DynAssets;
use ark_relay_core::backends::lightning::DynLightning;
use ark_relay_core::ramp::DynRampStore;
use ark_relay_core::{Clock, DynBus, DynQueue, DynStore, Job};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::transport::NostrTransport;
use nostr::Keys;

use crate::ceremony::{self, Ceremony, CeremonyConfig};
use crate::degrade::{Availability, Degrade};
use crate::handlers::{BaseHandler, HandlerError, JobHandler, JobOutcome, RelayInfo};
use crate::keyring::{ActiveKey, AddressedTo};
use crate::ramp::{Issuer, RampConfig, RampDriver, Ramps, ReserveMonitor};
use crate::reconcile::{ReconcileTask, Reconciler};
use crate::{Engine, EngineConfig, EngineParts, Periodic, Roles};
use ark_relay_core::reconcile::ReconcileStore;

/// Why an engine could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The relay's Nostr key is not a usable x-only key.
    #[error("the relay key is not a valid x-only key")]
    RelayKey,
}

/// The ports an engine runs on, already connected.
pub struct EnginePorts {
    /// Durable state.
    pub store: DynStore,
    /// Job distribution.
    pub queue: DynQueue,
    /// Notifications (ingest wake-ups, inventory updates).
    pub bus: Option<DynBus>,
    /// Nostr in and out.
    pub transport: Arc<dyn NostrTransport>,
    /// The Ark server.
    pub ark: Arc<dyn ArkServer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// What the Lightning ramps (lifts and lands) talk to.
pub struct RampPorts {
    /// lnd.
    pub lightning: DynLightning,
    /// tapd, for Taproot Asset lifts (and gBTC's genesis), if configured.
    pub assets: Option<DynAssets>,
    /// The lift and land sagas' rows.
    pub store: DynRampStore,
    /// Tuning of lifts and lands.
    pub config: RampConfig,
    /// How often the gBTC reserve is recorded.
    pub reserve_every: Duration,
}

/// The relay's identity and policy.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The relay's Nostr keys (sign, decrypt, own the inventory).
    pub keys: Keys,
    /// The Nostr relays it listens and publishes on (for `get_info`).
    pub relays: Vec<String>,
    /// Fee per L2 intent, gBTC base units.
    pub transfer_fee: u64,
    /// Land fee, parts per million.
    pub land_fee_ppm: u64,
    /// The Ark server's parameters (network, keys, delays).
    pub server: ServerInfo,
}

/// Ark batch rounds: the round runner (scheduler leader) and, with
/// `renewal`, users' delegated renewals (challenges, answers, `sync_state`).
pub struct RoundPorts {
    /// Round jobs and participations.
    pub rounds: ark_relay_core::rounds::DynRoundStore,
    /// The runner's settings.
    pub config: crate::rounds::RoundsConfig,
    /// Delegated renewals, when offered.
    pub renewal: Option<RenewalPorts>,
}

/// What the delegated renewals run on.
pub struct RenewalPorts {
    /// Delegations.
    pub store: ark_relay_core::renewals::DynRenewalStore,
    /// Pages of the ledger's unspent VTXOs.
    pub unspent: Arc<dyn ReconcileStore>,
    /// Policy and timing.
    pub config: crate::renewal::RenewalConfig,
}

/// Read-only mode: intents arriving while `availability` reports a back end
/// down are kept and retried every `retry_after` ([`Degrade`]).
pub struct ReadOnly {
    /// What is down right now.
    pub availability: Arc<dyn Availability>,
    /// How soon a kept job is tried again.
    pub retry_after: Duration,
}

/// See the module docs.
pub struct EngineBuilder {
    ports: EnginePorts,
    identity: Identity,
    ceremony: CeremonyConfig,
    engine: EngineConfig,
    ramps: Option<RampPorts>,
    extra_periodic: Vec<Arc<dyn Periodic>>,
    addressed: Option<(ActiveKey, Vec<ActiveKey>)>,
    read_only: Option<ReadOnly>,
    heartbeat: Option<Duration>,
    reconcile: Option<(Arc<dyn ReconcileStore>, Option<Duration>)>,
    conditional: crate::conditional::check::ConditionalConfig,
    ark_url: Option<String>,
    rounds: Option<RoundPorts>,
    issue_budget: crate::ceremony::IssueBudget,
}

impl EngineBuilder {
    /// A builder for the transfer ceremony (and service requests) on `ports`.
    pub fn new(
        ports: EnginePorts,
        identity: Identity,
        ceremony: CeremonyConfig,
        engine: EngineConfig,
    ) -> Self {
        Self {
            ports,
            identity,
            ceremony,
            engine,
            ramps: None,
            extra_periodic: Vec::new(),
            addressed: None,
            read_only: None,
            heartbeat: None,
            reconcile: None,
            conditional: Default::default(),
            ark_url: None,
            rounds: None,
            issue_budget: Default::default(),
        }
    }

    /// How many assets `issue_asset` may issue for wallets (the relay pays
    /// their carrier sats): `[inventory] issue_asset_per_key` / `_per_hour`.
    pub fn with_issue_budget(mut self, budget: crate::ceremony::IssueBudget) -> Self {
        self.issue_budget = budget;
        self
    }

    /// Runs the relay in Ark batch rounds ([`RoundPorts`]): the round runner
    /// first among the extra periodic tasks, then the renewal passes; the
    /// router takes the wallets' renewal answers.
    pub fn with_rounds(mut self, rounds: RoundPorts) -> Self {
        self.rounds = Some(rounds);
        self
    }

    /// Advertises `url` as the Ark server's endpoint in `get_info`'s `ark`
    /// object (`ark.url`), so wallets can check their inputs at its indexer.
    pub fn with_ark_url(mut self, url: impl Into<String>) -> Self {
        self.ark_url = Some(url.into());
        self
    }

    /// The `[conditional]` configuration (liquidations' price window).
    pub fn with_conditional(
        mut self,
        conditional: crate::conditional::check::ConditionalConfig,
    ) -> Self {
        self.conditional = conditional;
        self
    }

    /// Refuses inputs the reconciliation disputed (2006, see
    /// [`crate::reconcile`]) and, with `every`, runs the reconciliation on the
    /// scheduler leader at that interval, recording each run in `runs`.
    pub fn with_reconciliation(
        mut self,
        runs: Arc<dyn ReconcileStore>,
        every: Option<Duration>,
    ) -> Self {
        self.reconcile = Some((runs, every));
        self
    }

    /// Adds lifts and lands (and `land_lightning` intents) over `ramps`.
    pub fn with_ramps(mut self, ramps: RampPorts) -> Self {
        self.ramps = Some(ramps);
        self
    }

    /// Adds a periodic task that runs beside the ceremony's and the ramps'
    /// (e.g. gBTC's genesis).
    pub fn with_periodic(mut self, task: Arc<dyn Periodic>) -> Self {
        self.extra_periodic.push(task);
        self
    }

    /// Runs only the jobs addressed to `me`, leaving those addressed to
    /// `others` to their engines (key rotation, [`AddressedTo`]).
    pub fn addressed_to(mut self, me: ActiveKey, others: Vec<ActiveKey>) -> Self {
        self.addressed = Some((me, others));
        self
    }

    /// Wraps the handler (outermost) in read-only mode ([`Degrade`]).
    pub fn read_only(mut self, read_only: ReadOnly) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Renews the delivery of the job in hand every `every` while its
    /// handler runs ([`Heartbeats`]); `every` must be well within the
    /// queue's `reclaim_after` (a third of it, say).
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// The intent policy the engine will enforce.
    pub fn policy(&self) -> Result<IntentPolicy, BuildError> {
        let relay = ark_relay_protocol::pubkey_from_nostr(&self.identity.keys.public_key())
            .ok_or(BuildError::RelayKey)?;
        Ok(IntentPolicy {
            transfer_fee: self.identity.transfer_fee,
            land_fee_ppm: self.identity.land_fee_ppm,
            network: Some(self.identity.server.network()),
            ..IntentPolicy::new(relay)
        })
    }

    /// Assembles the engine, running every role (narrow them with
    /// [`Engine::with_roles`]).
    pub fn build(self) -> Result<Engine, BuildError> {
        let policy = self.policy()?;
        let Self {
            ports,
            identity,
            ceremony: ceremony_config,
            engine: engine_config,
            ramps,
            extra_periodic,
            addressed,
            read_only,
            heartbeat,
            reconcile,
            ark_url,
            conditional,
            rounds,
            issue_budget,
        } = self;
        let keys = identity.keys.clone();
        let info = RelayInfo {
            pubkey: keys.public_key().to_hex(),
            relays: identity.relays.clone(),
            kinds_consumed: ark_relay_protocol::kinds::CONSUMED.to_vec(),
            encryption: vec!["nip44_v2", "nip04"],
            transfer_fee: policy.transfer_fee,
            land_fee_ppm: policy.land_fee_ppm,
            ark: Some(ceremony::server_info_json_with_url(
                &identity.server,
                ark_url.as_deref(),
            )),
        };
        let mut base = BaseHandler::new(ports.store.clone(), keys.clone(), info);
        let mut round_tasks: Vec<Arc<dyn Periodic>> = Vec::new();
        let mut renewals = None;
        if let Some(r) = rounds {
            let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
                &bitcoin::secp256k1::Secp256k1::signing_only(),
                keys.secret_key(),
            );
            let runner = crate::rounds::RoundRunner::new(
                r.rounds,
                ports.store.clone(),
                ports.ark.clone(),
                ports.clock.clone(),
                identity.server.clone(),
                keypair,
                r.config,
            );
            if let Some(p) = r.renewal {
                base = base.with_renewals(p.store.clone(), p.config.policy.fee_sats);
                let flow = Arc::new(crate::renewal::Renewals::new(
                    p.store,
                    ports.store.clone(),
                    p.unspent,
                    runner.jobs(),
                    ports.ark.clone(),
                    ports.clock.clone(),
                    keys.clone(),
                    identity.server.clone(),
                    runner.cosigner_pk(),
                    p.config,
                ));
                renewals = Some(flow.clone());
                round_tasks.push(Arc::new(runner));
                round_tasks.push(flow);
            } else {
                round_tasks.push(Arc::new(runner));
            }
        }
        let mut ceremony = Ceremony::new(
            ports.store.clone(),
            ports.ark.clone(),
            keys.clone(),
            policy.clone(),
            base,
            ports.clock.clone(),
            ceremony_config,
        )
        .with_conditional(conditional)
        .with_issue_budget(issue_budget);
        let ramps = ramps.map(|r| {
            let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
                &bitcoin::secp256k1::Secp256k1::signing_only(),
                keys.secret_key(),
            );
            let issuer = Issuer::new(
                ports.store.clone(),
                ports.ark.clone(),
                keypair,
                ports.clock.clone(),
            );
            let mut ramps = Ramps::new(
                ports.store.clone(),
                r.store,
                r.lightning,
                issuer,
                keys.clone(),
                ports.clock.clone(),
                r.config,
            );
            if let Some(tapd) = r.assets {
                ramps = ramps.with_assets(tapd);
            }
            (Arc::new(ramps), r.reserve_every)
        });
        if let Some((r, _)) = &ramps {
            ceremony = ceremony.with_lands(r.clone());
        }
        let mut reconcile_task: Option<Arc<dyn Periodic>> = None;
        if let Some((runs, every)) = reconcile {
            ceremony = ceremony.with_disputes(runs.clone());
            if let Some(every) = every {
                let r = Reconciler::new(
                    ports.store.clone(),
                    runs,
                    ports.ark.clone(),
                    ports.clock.clone(),
                );
                reconcile_task = Some(Arc::new(ReconcileTask::new(r, every)));
            }
        }
        let ceremony = Arc::new(ceremony);
        let mut periodic: Vec<Arc<dyn Periodic>> = vec![ceremony.clone()];
        periodic.extend(reconcile_task);
        periodic.extend(round_tasks);
        periodic.extend(extra_periodic);
        let mut router = crate::router::Router::new(ceremony.clone());
        if let Some(r) = renewals {
            router = router.with_renewals(r);
        }
        if let Some((r, reserve_every)) = ramps {
            periodic.push(Arc::new(RampDriver(r.clone())));
            periodic.push(Arc::new(ReserveMonitor::new(r.clone(), reserve_every)));
            router = router.with_ramps(r);
        }
        if let Some((me, others)) = addressed {
            router = router.with_guard(Arc::new(AddressedTo::new(me, others, ports.clock.clone())));
        }
        if let Some(ro) = read_only {
            router = router.with_guard(Arc::new(Degrade::new(
                ro.availability,
                keys.clone(),
                policy.clone(),
                ports.clock.clone(),
                ro.retry_after,
            )));
        }
        let mut handler: Arc<dyn JobHandler> = Arc::new(router);
        if let Some(every) = heartbeat {
            handler = Arc::new(Heartbeats {
                inner: handler,
                queue: ports.queue.clone(),
                every,
            });
        }
        let parts = EngineParts {
            store: ports.store,
            queue: ports.queue,
            bus: ports.bus,
            transport: ports.transport,
            keys,
            policy,
            clock: ports.clock,
            handler,
            periodic,
        };
        Ok(Engine::new(parts, engine_config, Roles::ALL))
    }
}

/// Wraps a handler: while it runs a job, the job's queue delivery is renewed
/// every `every` (the worker's heartbeat). A failed renewal is logged and
/// retried at the next beat; the job itself is never interrupted.
pub struct Heartbeats {
    inner: Arc<dyn JobHandler>,
    queue: DynQueue,
    every: Duration,
}

#[async_trait::async_trait]
impl JobHandler for Heartbeats {
    async fn handle(&self, job: &Job, attempts: u32) -> Result<JobOutcome, HandlerError> {
        let beats = async {
            let mut tick = tokio::time::interval(self.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate: the delivery is fresh
            loop {
                tick.tick().await;
                match self.queue.renew(job).await {
                    Ok(0) => tracing::debug!(job = %job.key, "heartbeat: delivery no longer held"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(job = %job.key, error = %e, "heartbeat failed"),
                }
            }
        };
        tokio::select! {
            result = self.inner.handle(job, attempts) => result,
            never = beats => never,
        }
    }
}
