//! An asset the relay issues on Ark (`Issuer::genesis`), then issued more of
//! by lifts (`Issuer::issue`): against the arkd simulator with arkd's strict
//! asset rules, the genesis registers the asset under its Arkade id with a
//! relay-held control asset and metadata, every lift spends and re-creates
//! the control VTXO (a valid reissuance), and the ledger's colour per VTXO is
//! what arkd's indexer reports (the reconciliation run finds no difference).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ark_relay_ark::asset::{
    arkade_id, control_arkade_id, control_ledger_id, decode_metadata, meta, ArkadeAssetId,
};
use ark_relay_ark::{RelativeLocktime, ServerInfo};
use ark_relay_core::backends::ark::{ArkServer, VtxoQuery};
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, PubKey, Sats, SessionId, SystemClock,
    UnixTime, VtxoStatus,
};
use ark_relay_engine::ceremony::issue::{GenesisRequest, Issuer};
use ark_relay_engine::reconcile::Reconciler;
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_sim::arkd::ArkdSimConfig;
use ark_relay_sim::{SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::seed::seed_inventory;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};

fn lock(n: u8) -> SessionId {
    SessionId::from_bytes([n; 32])
}

#[tokio::test]
async fn a_genesis_then_lifts_as_reissuances_under_arkds_rules() {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    let stack = SimStack::start(SimOptions {
        arkd: ArkdSimConfig {
            strict_assets: true,
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let ark = Arc::new(ArkdClient::connect(stack.endpoints().arkd).await.unwrap());
    let info = ark.get_info().await.unwrap();
    let _server = ServerInfo::from_get_info(
        info.signer_pubkey.x_only_public_key().0,
        info.forfeit_pubkey.x_only_public_key().0,
        info.checkpoint_tapscript,
        RelativeLocktime::from_server_value(info.unilateral_exit_delay).unwrap(),
        info.dust,
        info.network,
    )
    .unwrap();
    let secp = Secp256k1::new();
    let relay_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
    let relay = PubKey::from_x_only(relay_kp.x_only_public_key().0);
    let bob_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[8; 32]).unwrap());
    let bob = PubKey::from_x_only(bob_kp.x_only_public_key().0);
    seed_inventory(store.as_ref(), &stack.arkd, relay, 4, 5_000).await;
    let issuer = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock));

    // Genesis.
    let taproot = AssetId::from_bytes([0x42; 32]);
    let request = GenesisRequest {
        name: "Relay-issued BTC".into(),
        ticker: "gBTC".into(),
        decimals: 0,
        taproot_asset_id: Some(taproot),
        asset_type: AssetType::RelayIssued,
    };
    let g = issuer.genesis(&lock(1), &request).await.unwrap();
    let again = issuer.genesis(&lock(1), &request).await.unwrap();
    assert_eq!(again, g, "resuming a finished genesis changes nothing");
    let arkade = ArkadeAssetId {
        txid: g.ark_txid,
        group_index: 0,
    };
    assert_eq!(
        arkade_id(&g.asset),
        arkade,
        "the ledger id is the genesis txid"
    );
    assert_eq!(g.control, control_ledger_id(&g.asset));
    let registered = store.asset(&g.asset).await.unwrap().unwrap();
    assert_eq!(
        (registered.ticker.as_str(), registered.asset_type),
        ("gBTC", AssetType::RelayIssued)
    );
    assert!(store.asset(&g.control).await.unwrap().is_some());

    let at_arkd = ark.get_asset(&arkade.to_string()).await.unwrap();
    assert_eq!(at_arkd.supply, 1, "the genesis unit");
    assert_eq!(
        at_arkd.control_asset,
        Some(control_arkade_id(&g.asset).to_string())
    );
    let metadata = decode_metadata(&hex::decode(&at_arkd.metadata_hex).unwrap()).unwrap();
    assert!(metadata.contains(&(meta::TICKER.to_owned(), "gBTC".to_owned())));
    assert!(metadata.contains(&(meta::TAPROOT_ASSET_ID.to_owned(), taproot.to_string())));

    // Two lifts: each a reissuance that spends and re-creates the control VTXO.
    let gbtc = |n: u64| Colour {
        asset: g.asset,
        amount: AssetAmount::new(n),
    };
    for (n, amount) in [(2u8, 500u64), (3, 250)] {
        let issued = issuer
            .issue(&lock(n), bob, gbtc(amount), "lift")
            .await
            .unwrap();
        let bobs = ark
            .get_vtxos(&VtxoQuery::Outpoints(vec![issued.vtxo]))
            .await
            .unwrap();
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].assets.len(), 1);
        assert_eq!(bobs[0].assets[0].asset_id, arkade.to_string());
        assert_eq!(bobs[0].assets[0].amount, amount);
    }
    let at_arkd = ark.get_asset(&arkade.to_string()).await.unwrap();
    assert_eq!(at_arkd.supply, 751);
    // The control asset itself is never issued to anyone.
    let more_control = Colour {
        asset: g.control,
        amount: AssetAmount::new(1),
    };
    assert!(matches!(
        issuer.issue(&lock(4), bob, more_control, "lift").await,
        Err(ark_relay_engine::ceremony::issue::IssueError::Rejected(_))
    ));
    let control = ark
        .get_asset(&control_arkade_id(&g.asset).to_string())
        .await
        .unwrap();
    assert_eq!(control.supply, 1, "one control unit, re-created each time");

    // The ledger agrees with arkd's indexer, VTXO by VTXO.
    for owner in [relay, bob] {
        for v in store.unspent_vtxos(&owner).await.unwrap() {
            let at = ark
                .get_vtxos(&VtxoQuery::Outpoints(vec![v.id]))
                .await
                .unwrap();
            let want: Vec<(String, u64)> = v
                .colour
                .map(|c| {
                    let id = if c.asset == g.control {
                        control_arkade_id(&g.asset)
                    } else {
                        arkade_id(&c.asset)
                    };
                    (id.to_string(), c.amount.get())
                })
                .into_iter()
                .collect();
            let got: Vec<(String, u64)> = at[0]
                .assets
                .iter()
                .map(|a| (a.asset_id.clone(), a.amount))
                .collect();
            assert_eq!(got, want, "VTXO {}", v.id);
        }
    }
    // So does the reconciliation run (control asset under its own Arkade id).
    let outcome = Reconciler::new(
        store.clone(),
        Arc::new(db.store.clone()),
        ark.clone(),
        Arc::new(SystemClock),
    )
    .run(&|_| {})
    .await
    .unwrap();
    assert!(outcome.differences.is_empty(), "{:?}", outcome.differences);
    let supply = store.asset(&g.asset).await.unwrap().unwrap().total_supply;
    assert_eq!(supply.get(), 751, "the ledger's supply is arkd's");
    stack.stop().await;
    db.destroy().await;
}

#[tokio::test]
async fn a_genesis_interrupted_before_or_after_submit_resumes_to_one_asset() {
    use ark_relay_engine::ceremony::issue::IssueStage;
    use std::sync::atomic::{AtomicBool, Ordering};
    for stage in [IssueStage::Prepared, IssueStage::Submitted] {
        let db = TestDb::sqlite().await.unwrap();
        let store: DynStore = Arc::new(db.store.clone());
        let stack = SimStack::start(SimOptions {
            arkd: ArkdSimConfig {
                strict_assets: true,
                ..ArkdSimConfig::default()
            },
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let ark = Arc::new(ArkdClient::connect(stack.endpoints().arkd).await.unwrap());
        let _server = stack.arkd.server_info().clone();
        let secp = Secp256k1::new();
        let relay_kp = Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[7; 32]).unwrap());
        let relay = PubKey::from_x_only(relay_kp.x_only_public_key().0);
        seed_inventory(store.as_ref(), &stack.arkd, relay, 1, 5_000).await;
        let request = GenesisRequest {
            name: "Relay-issued BTC".into(),
            ticker: "gBTC".into(),
            decimals: 0,
            taproot_asset_id: None,
            asset_type: AssetType::RelayIssued,
        };
        let crashed = Arc::new(AtomicBool::new(false));
        let once = crashed.clone();
        let crashing = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock))
            .with_crash_hook(Arc::new(move |kind, at| {
                kind == "genesis" && at == stage && !once.swap(true, Ordering::SeqCst)
            }));
        assert!(
            crashing.genesis(&lock(1), &request).await.is_err(),
            "{stage:?}: the crash"
        );
        assert!(crashed.load(Ordering::SeqCst));
        // A new process resumes the same transaction.
        let issuer = Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock));
        let g = issuer.genesis(&lock(1), &request).await.unwrap();
        let assets = store.assets().await.unwrap();
        assert_eq!(
            assets.len(),
            2,
            "{stage:?}: the asset and its control, once"
        );
        let at_arkd = ark
            .get_asset(&arkade_id(&g.asset).to_string())
            .await
            .unwrap();
        assert_eq!(at_arkd.supply, 1, "{stage:?}");
        // And it can be issued more of at once.
        let bob = PubKey::from_x_only(
            Keypair::from_secret_key(&secp, &SecretKey::from_slice(&[8; 32]).unwrap())
                .x_only_public_key()
                .0,
        );
        let colour = Colour {
            asset: g.asset,
            amount: AssetAmount::new(42),
        };
        issuer.issue(&lock(2), bob, colour, "lift").await.unwrap();
        stack.stop().await;
        db.destroy().await;
    }
}

// ---- The control VTXO and the genesis unit renewed through rounds --------

mod common;

use ark_relay_ceremony::round::{JobInput, JobKind, JobOutput, RoundJob};
use ark_relay_core::rounds::{DynRoundStore, RoundJobStatus};
use ark_relay_engine::ceremony::issue::IssueError;
use ark_relay_engine::rounds::{
    InventoryRounds, InventoryRoundsConfig, RoundCrashHook, RoundRunner, RoundsConfig,
};
use ark_relay_sim::RoundConfig;
use std::time::Duration;

/// The chain simulator's clock (VTXO expiry is chain time in the simulator).
struct ChainClock(ark_relay_sim::Chain);

impl ark_relay_core::Clock for ChainClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.now())
    }
}

/// A relay that issued gBTC on Ark (strict asset rules) from inventory that
/// came out of rounds, so every VTXO of it — the control VTXO and the
/// genesis unit included — expires with a batch of `lifetime` seconds.
struct Issued {
    db: TestDb,
    store: DynStore,
    rounds: DynRoundStore,
    stack: SimStack,
    ark: Arc<dyn ArkServer>,
    relay_kp: Keypair,
    relay: PubKey,
    /// Chain time: when VTXOs fall due for renewal.
    clock: Arc<dyn ark_relay_core::Clock>,
    issuer: Issuer,
    asset: AssetId,
    control: AssetId,
    lifetime: i64,
}

async fn issued(db: TestDb, lifetime: i64) -> Issued {
    let stack = SimStack::start(SimOptions {
        arkd: ArkdSimConfig {
            strict_assets: true,
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                vtxo_tree_expiry: RelativeLocktime::seconds(u32::try_from(lifetime).unwrap())
                    .unwrap(),
                ..RoundConfig::default()
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let ark: Arc<dyn ArkServer> =
        Arc::new(ArkdClient::connect(stack.endpoints().arkd).await.unwrap());
    let server = stack.arkd.server_info().clone();
    let relay_kp = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let relay = PubKey::from_x_only(relay_kp.x_only_public_key().0);
    let store: DynStore = Arc::new(db.store.clone());
    let rounds: DynRoundStore = Arc::new(db.store.clone());
    let clock: Arc<dyn ark_relay_core::Clock> = Arc::new(ChainClock(stack.chain.clone()));
    let mut s = Issued {
        issuer: Issuer::new(store.clone(), ark.clone(), relay_kp, Arc::new(SystemClock)),
        db,
        store,
        rounds,
        stack,
        ark,
        relay_kp,
        relay,
        clock,
        asset: AssetId::from_bytes([0; 32]),
        control: AssetId::from_bytes([0; 32]),
        lifetime,
    };
    // Funded VTXOs, renewed once through a round: inventory of a batch.
    let runner = s.runner(None);
    for n in 0..3u64 {
        let id = seed_inventory(s.store.as_ref(), &s.stack.arkd, relay, 1, 20_000).await[0];
        let job = RoundJob {
            job_id: format!("seed-{n}"),
            kind: JobKind::InventoryRenew,
            inputs: vec![JobInput::RelayVtxo {
                vtxo: id,
                sats: Sats::new(20_000),
                tapscripts: server.default_vtxo(&relay).to_tapscripts(),
                swept: false,
                assets: vec![],
            }],
            outputs: vec![JobOutput {
                owner: relay,
                sats: Sats::new(20_000),
                assets: vec![],
            }],
            delegation: None,
            not_before: UnixTime(0),
        };
        runner.jobs().enqueue(&job).await.unwrap();
    }
    run(&runner).await;
    s.stack.chain.mine(1);
    let g = s
        .issuer
        .genesis(
            &lock(1),
            &GenesisRequest {
                name: "Relay-issued BTC".into(),
                ticker: "gBTC".into(),
                decimals: 0,
                taproot_asset_id: None,
                asset_type: AssetType::RelayIssued,
            },
        )
        .await
        .unwrap();
    s.asset = g.asset;
    s.control = g.control;
    assert!(s.held(s.control).await.expires_at.is_some());
    s
}

impl Issued {
    fn runner(&self, crash: Option<RoundCrashHook>) -> RoundRunner {
        let r = RoundRunner::new(
            self.rounds.clone(),
            self.store.clone(),
            self.ark.clone(),
            // arkd checks intents' validity against its own (wall) clock.
            Arc::new(SystemClock),
            self.stack.arkd.server_info().clone(),
            self.relay_kp,
            RoundsConfig {
                every: Duration::from_secs(1),
                tick: Duration::from_millis(200),
                ..RoundsConfig::default()
            },
        );
        match crash {
            Some(hook) => r.with_crash_hook(hook),
            None => r,
        }
    }

    fn inventory_rounds(&self) -> InventoryRounds {
        InventoryRounds::new(
            self.runner(None).jobs(),
            self.ark.clone(),
            None,
            self.store.clone(),
            self.stack.arkd.server_info().clone(),
            self.relay_kp,
            self.clock.clone(),
            InventoryRoundsConfig {
                vtxo_lifetime_secs: self.lifetime,
                renew_at_pct: 90,
                confirm_timeout: Duration::from_secs(30),
                confirm_poll: Duration::from_millis(100),
            },
        )
    }

    /// The relay's one unspent VTXO coloured `asset`.
    async fn held(&self, asset: AssetId) -> ark_relay_core::Vtxo {
        let held: Vec<_> = self
            .store
            .unspent_vtxos(&self.relay)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.colour.is_some_and(|c| c.asset == asset))
            .collect();
        assert_eq!(held.len(), 1, "one VTXO of {asset}: {held:?}");
        held[0].clone()
    }

    /// A lift of `amount` gBTC to a fresh key: a reissuance arkd accepts
    /// under its strict rules, spending the current control VTXO.
    async fn lift(&self, n: u8, amount: u64) -> Result<(), IssueError> {
        let bob = PubKey::from_x_only(
            Keypair::new(&Secp256k1::new(), &mut rand::thread_rng())
                .x_only_public_key()
                .0,
        );
        let colour = Colour {
            asset: self.asset,
            amount: AssetAmount::new(amount),
        };
        let control = self.held(self.control).await.id;
        self.issuer
            .issue(&lock(n), bob, colour, "lift")
            .await
            .map(|_| ())?;
        let spent = self.store.vtxo(&control).await.unwrap().unwrap();
        assert_eq!(
            spent.status,
            VtxoStatus::Spent,
            "the lift spent the control VTXO"
        );
        Ok(())
    }

    /// The ledger = arkd's indexer, and the relay's coloured VTXOs are
    /// those arkd shows with the same Arkade ids and amounts.
    async fn assert_assets_at_arkd(&self) {
        for (asset, arkade) in [
            (self.asset, arkade_id(&self.asset)),
            (self.control, control_arkade_id(&self.asset)),
        ] {
            let v = self.held(asset).await;
            let at = self
                .ark
                .get_vtxos(&VtxoQuery::Outpoints(vec![v.id]))
                .await
                .unwrap();
            assert_eq!(at.len(), 1, "{} at arkd", v.id);
            assert!(!at[0].is_spent, "{} unspent at arkd", v.id);
            let got: Vec<(String, u64)> = at[0]
                .assets
                .iter()
                .map(|a| (a.asset_id.clone(), a.amount))
                .collect();
            assert_eq!(got, vec![(arkade.to_string(), 1)], "{}", v.id);
        }
        common::assert_reconciled(&self.db.store, &self.stack.endpoints().arkd).await;
    }
}

async fn run(runner: &RoundRunner) -> Vec<ark_relay_ceremony::round::Participation> {
    tokio::time::timeout(Duration::from_secs(60), runner.run_once())
        .await
        .expect("a participation ends within a minute")
        .expect("run")
}

/// Two VTXO lifetimes of chain time in steps of 5 %: the control VTXO and
/// the genesis unit are renewed through rounds with their assets (never
/// swept), the ledger follows arkd, and a lift after every renewal is a
/// valid reissuance under arkd's strict rules.
async fn control_and_genesis_unit_renewed_for_two_lifetimes(db: TestDb) {
    let lifetime = 10_240;
    let s = issued(db, lifetime).await;
    let runner = s.runner(None);
    let rounds = s.inventory_rounds();
    let mut renewals = 0;
    let mut lifts = 0u8;
    let script = s
        .stack
        .arkd
        .server_info()
        .default_vtxo(&s.relay)
        .script_pubkey();
    for _ in 0..40 {
        s.stack.chain.advance_time(lifetime / 20);
        let control = s.held(s.control).await.id;
        let unit = s.held(s.asset).await.id;
        rounds.renew_due().await.unwrap();
        run(&runner).await;
        s.stack.chain.mine(1);
        let swept: Vec<_> = s
            .stack
            .arkd
            .vtxos()
            .into_iter()
            .filter(|v| v.swept && !v.assets.is_empty() && v.script == script)
            .collect();
        assert!(swept.is_empty(), "a coloured VTXO was swept: {swept:?}");
        let (c, u) = (s.held(s.control).await.id, s.held(s.asset).await.id);
        if c != control {
            assert_ne!(u, unit, "the genesis unit renewed with the control VTXO");
            renewals += 1;
            s.assert_assets_at_arkd().await;
            lifts += 1;
            s.lift(10 + lifts, 100).await.unwrap();
            s.assert_assets_at_arkd().await;
        }
    }
    assert!(renewals >= 2, "renewed {renewals} times in two lifetimes");
    let supply = s
        .ark
        .get_asset(&arkade_id(&s.asset).to_string())
        .await
        .unwrap();
    assert_eq!(supply.supply, 1 + 100 * u64::from(lifts));
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_and_genesis_unit_renewed_for_two_lifetimes_on_sqlite() {
    control_and_genesis_unit_renewed_for_two_lifetimes(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_and_genesis_unit_renewed_for_two_lifetimes_on_mariadb() {
    control_and_genesis_unit_renewed_for_two_lifetimes(TestDb::mariadb().await.unwrap()).await;
}

/// The relay dies after a persisted step of the round renewing the control
/// VTXO: meanwhile a lift finds the control VTXO locked by the round (it
/// waits); the next process resumes the round, the control VTXO and the
/// genesis unit are renewed with their assets, and the lift then completes,
/// spending the new control VTXO.
async fn a_lift_waits_for_the_control_vtxos_renewal(db: TestDb) {
    let lifetime = 10_240;
    let s = issued(db, lifetime).await;
    let rounds = s.inventory_rounds();
    let mut n = 20u8;
    // Two cycles (a third would let the first lift's VTXO, which its owner
    // does not renew, expire and be swept).
    for phase in ["registered", "forfeits_submitted"] {
        let control = s.held(s.control).await.id;
        let unit = s.held(s.asset).await.id;
        // Into the renewal window of every VTXO of the relay.
        s.stack.chain.advance_time(lifetime * 95 / 100);
        assert!(rounds.renew_due().await.unwrap() >= 2, "{phase}");
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hook: RoundCrashHook = {
            let fired = fired.clone();
            Arc::new(move |at: &str| {
                at == phase && !fired.swap(true, std::sync::atomic::Ordering::SeqCst)
            })
        };
        let err = tokio::time::timeout(Duration::from_secs(60), s.runner(Some(hook)).run_once())
            .await
            .expect("crash within a minute")
            .expect_err("the hook kills the run");
        assert!(err.to_string().contains(phase), "{err}");
        // The round holds the control VTXO: a lift now waits.
        n += 1;
        let during = s.lift(n, 7).await;
        assert!(
            matches!(during, Err(IssueError::Busy(_))),
            "{phase}: a lift during the renewal waits: {during:?} {:?}",
            s.held(s.control).await
        );
        // A new process resumes the round to its end.
        let runner = s.runner(None);
        let job = format!("renew:{control}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            run(&runner).await;
            let rec = runner.jobs().get(&job).await.unwrap().unwrap();
            match rec.status {
                RoundJobStatus::Done => break,
                RoundJobStatus::Pending | RoundJobStatus::InRound => {}
                other => panic!("{phase}: job {other:?}: {:?}", rec.error),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{phase}: renewed in time"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        s.stack.chain.mine(1);
        assert!(s.rounds.open_participations().await.unwrap().is_empty());
        let renewed = s.held(s.control).await;
        assert_ne!(renewed.id, control, "{phase}: the control VTXO renewed");
        assert_ne!(
            s.held(s.asset).await.id,
            unit,
            "{phase}: the genesis unit renewed"
        );
        assert_eq!(renewed.locked_by, None, "{phase}: the round released it");
        assert_eq!(
            s.store.vtxo(&control).await.unwrap().unwrap().status,
            VtxoStatus::Spent
        );
        s.assert_assets_at_arkd().await;
        // The waiting lift completes now, spending the renewed control VTXO.
        s.lift(n, 7).await.unwrap();
        assert_eq!(
            s.store.vtxo(&renewed.id).await.unwrap().unwrap().status,
            VtxoStatus::Spent,
            "{phase}"
        );
        s.assert_assets_at_arkd().await;
    }
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lift_waits_for_the_control_vtxos_renewal_on_sqlite() {
    a_lift_waits_for_the_control_vtxos_renewal(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lift_waits_for_the_control_vtxos_renewal_on_mariadb() {
    a_lift_waits_for_the_control_vtxos_renewal(TestDb::mariadb().await.unwrap()).await;
}
