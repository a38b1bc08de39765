//! Delegated renewal of users' VTXOs over the real parts: the arkd
//! simulator's rounds over gRPC, the ledger, `delegations` and the round saga
//! on MariaDB and SQLite, the reference wallet's check of the challenge.
//!
//! - A user VTXO with an asset gets a `sign_renewal` 31511 (NIP-44, from the
//!   outbox); the wallet checks and signs it (ark-core `sign_delegate_psbts`
//!   semantics) and goes offline; the relay queues the delegation, the round
//!   runner renews it with the relay as delegate cosigner, and the next pass
//!   puts the new VTXO in the ledger (same owner, sats and colour; ledger =
//!   arkd indexer, assets included) and queues a 31340 naming old and new.
//! - A tampered challenge (renewal to another owner) is refused by the
//!   wallet: the VTXO shows "no renewal" and its owner gets one 5005 notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::asset::arkade_id;
use ark_relay_ark::ServerInfo;
use ark_relay_core::backends::ark::ArkServer;
use ark_relay_core::reconcile::ReconcileStore;
use ark_relay_core::renewals::{DelegationStatus, DynRenewalStore, RenewalStore};
use ark_relay_core::rounds::DynRoundStore;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, NewAsset, NewVtxo, PubKey, Sats,
    SystemClock, UnixTime, VtxoId, VtxoStatus,
};
use ark_relay_engine::handlers::JobOutcome;
use ark_relay_engine::ingest::InboundJob;
use ark_relay_engine::renewal::{RenewalConfig, RenewalPolicy, Renewals};
use ark_relay_engine::rounds::{RoundRunner, RoundsConfig};
use ark_relay_grpc::arkd::ArkdClient;
use ark_relay_protocol::content::Confirmation;
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::renewal::RenewalChallenge;
use ark_relay_protocol::{builders, kinds};
use ark_relay_sim::arkd::ArkdSimConfig;
use ark_relay_sim::{RoundConfig, SimOptions, SimStack};
use ark_relay_store::testing::TestDb;
use ark_relay_wallet::verify::renewal::{answer_renewal, RenewalContext};
use ark_relay_wallet::verify::OwnedVtxo;
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, Secp256k1};
use nostr::{Event, JsonUtil, Keys};

struct Setup {
    db: TestDb,
    store: DynStore,
    stack: SimStack,
    ark: Arc<dyn ArkServer>,
    relay: Keypair,
    runner: RoundRunner,
    renewals: Renewals,
    user: Keypair,
    asset: AssetId,
}

fn nostr_keys(kp: &Keypair) -> Keys {
    Keys::new(nostr::SecretKey::from_slice(&kp.secret_bytes()).unwrap())
}

fn pk(kp: &Keypair) -> PubKey {
    PubKey::from_x_only(kp.x_only_public_key().0)
}

async fn setup(db: TestDb, notice_before_secs: i64) -> Setup {
    let options = SimOptions {
        arkd: ArkdSimConfig {
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                ..RoundConfig::default()
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    };
    let stack = SimStack::start(options).await.expect("sims");
    let ark: Arc<dyn ArkServer> = Arc::new(
        ArkdClient::connect(stack.endpoints().arkd)
            .await
            .expect("arkd"),
    );
    let relay = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let user = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let store: DynStore = Arc::new(db.store.clone());
    let rounds: DynRoundStore = Arc::new(db.store.clone());
    let delegations: DynRenewalStore = Arc::new(db.store.clone());
    let unspent: Arc<dyn ReconcileStore> = Arc::new(db.store.clone());
    let server: ServerInfo = stack.arkd.server_info().clone();
    let runner = RoundRunner::new(
        rounds,
        store.clone(),
        ark.clone(),
        Arc::new(SystemClock),
        server.clone(),
        relay,
        RoundsConfig {
            every: Duration::from_secs(1),
            tick: Duration::from_millis(200),
            ..RoundsConfig::default()
        },
    );
    let renewals = Renewals::new(
        delegations,
        store.clone(),
        unspent,
        runner.jobs(),
        ark.clone(),
        Arc::new(SystemClock),
        nostr_keys(&relay),
        server,
        runner.cosigner_pk(),
        RenewalConfig {
            // Valid at once (the simulator's batches live 7 days; the 90 %
            // default is checked by the unit tests).
            policy: RenewalPolicy {
                valid_at_percent: 0,
                fee_sats: 0,
                challenge_ttl_secs: 600,
            },
            notice_before_secs,
            ..RenewalConfig::default()
        },
    );
    let asset = AssetId::from_bytes([0xA7; 32]);
    store
        .register_asset(
            &NewAsset {
                id: asset,
                name: "Test".into(),
                ticker: "TST".into(),
                asset_type: AssetType::RelayIssued,
                decimals: 0,
            },
            UnixTime::now(),
        )
        .await
        .unwrap();
    Setup {
        db,
        store,
        stack,
        ark,
        relay,
        runner,
        renewals,
        user,
        asset,
    }
}

impl Setup {
    /// A user VTXO carrying 400 of the asset, at arkd and in the ledger
    /// (as a transfer through the relay leaves it).
    async fn user_vtxo(&self, sats: u64) -> VtxoId {
        self.vtxo_of(&self.user, sats, 400).await
    }

    /// A VTXO of `user` carrying `colour` units of the asset (0: none).
    async fn vtxo_of(&self, user: &Keypair, sats: u64, colour: u64) -> VtxoId {
        use ark_relay_testkit::seed::{coloured, seed_vtxo, Seed};
        let colour = if colour > 0 {
            coloured(self.asset, colour)
        } else {
            None
        };
        seed_vtxo(
            self.store.as_ref(),
            &self.stack.arkd,
            Seed::user(pk(user), sats, colour),
        )
        .await
    }

    /// The outbox events of `kind` for the user, decrypted where they are.
    async fn outbox(&self, kind: u16) -> Vec<(Event, String)> {
        self.outbox_of(&self.user, kind).await
    }

    /// The outbox events of `kind` for `user` (those it can decrypt).
    async fn outbox_of(&self, user: &Keypair, kind: u16) -> Vec<(Event, String)> {
        let keys = nostr_keys(user);
        let relay = nostr_keys(&self.relay).public_key();
        let mut out = Vec::new();
        for item in self
            .store
            .due_outbox(UnixTime(i64::MAX / 2), 1000)
            .await
            .unwrap()
        {
            if item.kind != kind {
                continue;
            }
            let ev = Event::from_json(&item.event_json).unwrap();
            let plain = if kind == kinds::CONFIRMATION {
                ev.content.clone()
            } else {
                match decrypt(keys.secret_key(), &relay, &ev.content, &ev.tags) {
                    Ok((p, _)) => p,
                    Err(_) => continue, // another user's
                }
            };
            out.push((ev, plain));
        }
        out
    }

    /// The reference wallet answers `ch` (its own view: its VTXO with its
    /// colour) and the answer comes in as a 31512 job.
    async fn wallet_answers(&self, ch: &RenewalChallenge, id: VtxoId) -> JobOutcome {
        self.answer_as(&self.user, ch, id, 400).await
    }

    /// `user`'s reference wallet answers `ch` knowing its VTXO `id` holds
    /// `colour` units of the asset.
    async fn answer_as(
        &self,
        user: &Keypair,
        ch: &RenewalChallenge,
        id: VtxoId,
        colour: u64,
    ) -> JobOutcome {
        let owner = pk(user);
        let vtxos = vec![OwnedVtxo {
            vtxo: id,
            sats: ch.sats,
            asset_id: (colour > 0).then_some(self.asset),
            ticker: None,
            amount: colour,
            expires_at: Some(ch.vtxo_expires_at),
            tapscripts: Default::default(),
            locked: false,
        }];
        let server = self.stack.arkd.server_info().clone();
        let ctx = RenewalContext {
            owner: &owner,
            server: &server,
            vtxos: &vtxos,
            max_fee: self.renewals.fee_sats(),
            now: UnixTime::now().0,
        };
        let resp = answer_renewal(&ctx, user, ch);
        let relay_pk = pk(&self.relay);
        let ev =
            builders::renewal_response(&nostr_keys(user), &relay_pk, &resp, Scheme::Nip44).unwrap();
        let inbound = InboundJob {
            event: ev,
            scheme: Some("nip44_v2".into()),
            plaintext: Some(serde_json::to_string(&resp).unwrap()),
            received_at: Some(UnixTime::now()),
        };
        self.renewals.on_answer(&inbound).await.expect("handled")
    }
}

async fn renews_an_offline_users_asset_vtxo(db: TestDb) {
    let s = setup(db, 3600).await;
    let old = s.user_vtxo(20_000).await;

    // 1. The relay offers the renewal once.
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.offered, 1);
    assert_eq!(s.renewals.pass().await.unwrap().offered, 0, "once");
    let challenges = s.outbox(kinds::SIGNING_CHALLENGE).await;
    let [(_, plain)] = challenges.as_slice() else {
        panic!("one challenge: {challenges:?}")
    };
    let ch: RenewalChallenge = serde_json::from_str(plain).unwrap();
    assert_eq!(ch.vtxo, old);
    assert_eq!(ch.assets.len(), 1, "{:?}", ch.assets);
    assert_eq!(ch.assets[0].amount, 400);

    // 2. The wallet signs and goes offline; the delegation is queued.
    let out = s.wallet_answers(&ch, old).await;
    assert!(out.outbox.is_empty(), "{:?}", out.outbox);
    let d =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(d.status, DelegationStatus::Queued);
    let scheduled = s.renewals.status_of(&pk(&s.user)).await.unwrap();
    assert_eq!(scheduled[0].1, Some(ch.valid_at), "renewal scheduled");
    // sync_state shows it, get_info the fee.
    let state = s.sync_state().await;
    assert_eq!(state["vtxos"][0]["renewal"]["state"], "scheduled");
    assert_eq!(state["vtxos"][0]["renewal"]["scheduled_at"], ch.valid_at);
    assert_eq!(state["vtxos"][0]["expires_at"], ch.vtxo_expires_at);

    // 3. The round renews it with the relay as delegate cosigner.
    let ended = tokio::time::timeout(Duration::from_secs(60), s.runner.run_once())
        .await
        .expect("a round within a minute")
        .expect("run");
    assert_eq!(ended.len(), 1, "{ended:?}");
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.renewed, 1, "{r:?}");

    // 4. Ledger = arkd indexer: old spent, new the user's with the asset.
    let d =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(d.status, DelegationStatus::Done);
    let new: VtxoId = d.new_vtxo.unwrap().parse().unwrap();
    assert_eq!(
        s.store.vtxo(&old).await.unwrap().unwrap().status,
        VtxoStatus::Spent
    );
    let v = s.store.vtxo(&new).await.unwrap().unwrap();
    assert_eq!(v.owner, pk(&s.user));
    assert_eq!(v.sats, Sats::new(20_000));
    assert_eq!(
        v.colour.map(|c| (c.asset, c.amount.get())),
        Some((s.asset, 400))
    );
    let at_arkd = s.stack.arkd.vtxo(&new.outpoint()).unwrap();
    assert_eq!(at_arkd.assets, vec![(arkade_id(&s.asset), 400)]);
    assert_eq!(
        at_arkd.script,
        s.stack
            .arkd
            .server_info()
            .default_vtxo(&pk(&s.user))
            .script_pubkey()
    );
    let unspent: Vec<VtxoId> = s
        .store
        .unspent_vtxos(&pk(&s.user))
        .await
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(unspent, vec![new]);

    // 5. A 31340 names old and new.
    let confirmations = s.outbox(kinds::CONFIRMATION).await;
    let [(_, plain)] = confirmations.as_slice() else {
        panic!("one 31340: {confirmations:?}")
    };
    let c: Confirmation = serde_json::from_str(plain).unwrap();
    assert_eq!(c.spent[0].vtxo, old);
    assert_eq!(c.created[0].vtxo, new);
    let _ = s.ark.clone();
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_an_offline_users_asset_vtxo_on_sqlite() {
    renews_an_offline_users_asset_vtxo(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_an_offline_users_asset_vtxo_on_mariadb() {
    renews_an_offline_users_asset_vtxo(TestDb::mariadb().await.unwrap()).await;
}

impl Setup {
    /// The user's `sync_state` result, from the base handler with renewals.
    async fn sync_state(&self) -> serde_json::Value {
        self.contact().await.0
    }

    /// The user's `sync_state`: its result, and the renewal challenges still
    /// waiting for its answer, sent again with it.
    async fn contact(&self) -> (serde_json::Value, Vec<RenewalChallenge>) {
        use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
        let base = ark_relay_engine::handlers::BaseHandler::new(
            self.store.clone(),
            nostr_keys(&self.relay),
            ark_relay_engine::handlers::RelayInfo {
                pubkey: pk(&self.relay).to_string(),
                relays: Vec::new(),
                kinds_consumed: Vec::new(),
                encryption: Vec::new(),
                transfer_fee: 0,
                land_fee_ppm: 0,
                ark: None,
            },
        )
        .with_renewals(Arc::new(self.db.store.clone()), 0);
        let req = ServiceRequest::SyncState {};
        let ev = builders::service_request(
            &nostr_keys(&self.user),
            &pk(&self.relay),
            &req,
            "sync",
            Scheme::Nip44,
        )
        .unwrap();
        let inbound = InboundJob {
            event: ev,
            scheme: Some("nip44_v2".into()),
            plaintext: None,
            received_at: None,
        };
        let out = base.request(&inbound, &Ok(req)).await.unwrap();
        let relay = nostr_keys(&self.relay).public_key();
        let open = |json: &str| {
            let ev = Event::from_json(json).unwrap();
            decrypt(
                nostr_keys(&self.user).secret_key(),
                &relay,
                &ev.content,
                &ev.tags,
            )
            .unwrap()
            .0
        };
        let resp: ServiceResponse = serde_json::from_str(&open(&out.outbox[0].event_json)).unwrap();
        let waiting = out.outbox[1..]
            .iter()
            .map(|o| {
                assert_eq!(o.kind, kinds::SIGNING_CHALLENGE);
                serde_json::from_str(&open(&o.event_json)).unwrap()
            })
            .collect();
        (resp.result.expect("a result"), waiting)
    }

    /// The challenge sent for `id` (the newest 31511 naming it).
    async fn challenge_for(&self, id: VtxoId, recovery: bool) -> RenewalChallenge {
        self.outbox(kinds::SIGNING_CHALLENGE)
            .await
            .into_iter()
            .filter_map(|(_, p)| serde_json::from_str::<RenewalChallenge>(&p).ok())
            .find(|c| c.vtxo == id && c.recovery == recovery)
            .expect("a challenge for the VTXO")
    }

    /// Runs one round (a whole participation) and the pass after it.
    async fn round(&self) {
        let ended = tokio::time::timeout(Duration::from_secs(60), self.runner.run_once())
            .await
            .expect("a round within a minute")
            .expect("run");
        assert_eq!(ended.len(), 1, "{ended:?}");
        self.stack.chain.mine(1);
    }
}

/// A renewal to another owner is refused by the wallet: the VTXO shows "no
/// renewal" and its owner gets one near-expiry notice (5005); its batch is
/// swept; when the owner comes back it signs the recovery challenge and the
/// value (sats and asset) is reclaimed in a round.
async fn refused_then_warned_then_recovered(db: TestDb) {
    // Notice window longer than the simulator's 7-day batches.
    let s = setup(db, 30 * 24 * 3600).await;
    // The user's VTXO inside a batch (renewed once), so that it can be swept.
    let funded = s.user_vtxo(20_000).await;
    assert_eq!(s.renewals.pass().await.unwrap().offered, 1);
    let ch = s.challenge_for(funded, false).await;
    assert!(s.wallet_answers(&ch, funded).await.outbox.is_empty());
    s.round().await;
    assert_eq!(s.renewals.pass().await.unwrap().renewed, 1);
    let old: VtxoId =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap()
            .new_vtxo
            .unwrap()
            .parse()
            .unwrap();

    // Its renewal is offered; the relay (lying) renews to someone else.
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.offered, 1, "{r:?}");
    let mut ch = s.challenge_for(old, false).await;
    let thief = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let mut proof: bitcoin::Psbt = ch.intent_proof.parse().unwrap();
    proof.unsigned_tx.output[0].script_pubkey = s
        .stack
        .arkd
        .server_info()
        .default_vtxo(&pk(&thief))
        .script_pubkey();
    ch.intent_proof = proof.to_string();
    let out = s.wallet_answers(&ch, old).await;
    assert!(out.outbox.is_empty());
    let d =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(d.status, DelegationStatus::Refused);
    assert!(d.reason.unwrap().contains("not mine"));
    let status = s.renewals.status_of(&pk(&s.user)).await.unwrap();
    let mine = status.iter().find(|x| x.0 == old.to_string()).unwrap();
    assert_eq!(mine.1, None, "no renewal scheduled");

    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.noticed, 1, "{r:?}");
    assert_eq!(s.renewals.pass().await.unwrap().noticed, 0, "once");
    let notices = s.outbox(kinds::FAILURE).await;
    let [(_, plain)] = notices.as_slice() else {
        panic!("one notice: {notices:?}")
    };
    assert!(plain.contains("5005"), "{plain}");

    // The batch expires and is swept.
    s.stack.chain.advance_time(8 * 24 * 3600);
    s.stack.chain.mine(1);
    let swept = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if s.stack.arkd.vtxo(&old.outpoint()).is_some_and(|v| v.swept) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(swept.is_ok(), "the batch is swept");

    // The owner comes back: the recovery challenge, signed, reclaims it.
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.offered, 1, "{r:?}");
    let (state, waiting) = s.contact().await;
    let shown = state["vtxos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vtxo"] == old.to_string())
        .unwrap()
        .clone();
    assert_eq!(shown["renewal"]["recoverable"], true, "{shown}");
    let [rec] = waiting.as_slice() else {
        panic!("the recovery challenge comes again on contact: {waiting:?}")
    };
    assert!(rec.recovery && rec.vtxo == old);
    assert!(rec.forfeit_psbts.is_empty(), "no forfeit for a swept VTXO");
    let rec = rec.clone();
    assert!(s.wallet_answers(&rec, old).await.outbox.is_empty());
    s.round().await;
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.renewed, 1, "{r:?}");
    let d =
        s.db.store
            .delegation(&rec.renewal_id)
            .await
            .unwrap()
            .unwrap();
    let new: VtxoId = d.new_vtxo.unwrap().parse().unwrap();
    let v = s.store.vtxo(&new).await.unwrap().unwrap();
    assert_eq!(v.owner, pk(&s.user));
    assert_eq!(v.sats, Sats::new(20_000), "the value is back");
    assert_eq!(
        v.colour.map(|c| (c.asset, c.amount.get())),
        Some((s.asset, 400))
    );
    let at_arkd = s.stack.arkd.vtxo(&new.outpoint()).unwrap();
    assert!(!at_arkd.swept);
    assert_eq!(at_arkd.assets, vec![(arkade_id(&s.asset), 400)]);
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_then_warned_then_recovered_on_sqlite() {
    refused_then_warned_then_recovered(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_then_warned_then_recovered_on_mariadb() {
    refused_then_warned_then_recovered(TestDb::mariadb().await.unwrap()).await;
}

/// A delegation is void once its VTXO is spent otherwise (here: a transfer
/// recorded in the ledger before the renewal's `valid_at`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegation_is_void_once_its_vtxo_is_spent() {
    let s = setup(TestDb::sqlite().await.unwrap(), 3600).await;
    let old = s.user_vtxo(20_000).await;
    assert_eq!(s.renewals.pass().await.unwrap().offered, 1);
    let ch = s.challenge_for(old, false).await;
    assert!(s.wallet_answers(&ch, old).await.outbox.is_empty());
    let queued =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(queued.status, DelegationStatus::Queued);
    s.store
        .commit_transaction(&ark_relay_core::L2Transaction {
            ark_txid: bitcoin::Txid::from_byte_array([0x5a; 32]),
            kind: "transfer".into(),
            session: None,
            inputs: vec![old],
            outputs: vec![NewVtxo {
                id: VtxoId::new(bitcoin::Txid::from_byte_array([0x5a; 32]), 0),
                owner: pk(&s.relay),
                sats: Sats::new(20_000),
                colour: Some(Colour {
                    asset: s.asset,
                    amount: AssetAmount::new(400),
                }),
                status: VtxoStatus::Assigned,
                tapscripts: ark_relay_core::Tapscripts(vec![vec![0x51]]),
                expires_at: None,
            }],
            issued: Vec::new(),
            burned: Vec::new(),
            finalized_at: UnixTime::now(),
            fee: ark_relay_core::Sats::ZERO,
        })
        .await
        .unwrap();
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.voided, 1, "{r:?}");
    let d =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(d.status, DelegationStatus::Void);
    assert_eq!(
        s.renewals.pass().await.unwrap(),
        Default::default(),
        "nothing more"
    );
    s.stack.stop().await;
    s.db.destroy().await;
}

/// Over two VTXO lifetimes of simulated chain time, three users (two with the
/// asset) whose wallets answer once per lifetime and are offline otherwise:
/// every VTXO is renewed in a shared round before its batch expires, owners,
/// sats and assets unchanged, ledger = arkd indexer after each round, none
/// swept. (One signature renews one VTXO once: a renewed VTXO is a new
/// outpoint, so its owner signs again in its next lifetime.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_two_lifetimes_every_user_vtxo_is_renewed_and_none_swept() {
    let s = setup(TestDb::sqlite().await.unwrap(), 3600).await;
    let users: Vec<(Keypair, u64)> = vec![
        (
            Keypair::new(&Secp256k1::new(), &mut rand::thread_rng()),
            400,
        ),
        (Keypair::new(&Secp256k1::new(), &mut rand::thread_rng()), 0),
        (
            Keypair::new(&Secp256k1::new(), &mut rand::thread_rng()),
            250,
        ),
    ];
    let mut current = Vec::new();
    for (u, colour) in &users {
        current.push(s.vtxo_of(u, 15_000, *colour).await);
    }
    let lifetime = 7 * 24 * 3600 + 512; // the simulator's batch expiry (605 184 s)
    for round in 0..2 {
        // Each owner comes online once, answers its challenge, leaves.
        let r = s.renewals.pass().await.unwrap();
        assert_eq!(r.offered, 3, "round {round}: {r:?}");
        for ((u, colour), id) in users.iter().zip(&current) {
            let ch = s
                .outbox_of(u, kinds::SIGNING_CHALLENGE)
                .await
                .into_iter()
                .filter_map(|(_, p)| serde_json::from_str::<RenewalChallenge>(&p).ok())
                .find(|c| c.vtxo == *id)
                .expect("a challenge per VTXO");
            assert!(s.answer_as(u, &ch, *id, *colour).await.outbox.is_empty());
        }
        // One round renews all three (three delegated intents).
        s.round().await;
        let r = s.renewals.pass().await.unwrap();
        assert_eq!(r.renewed, 3, "round {round}: {r:?}");
        let mut next = Vec::new();
        for ((u, colour), old) in users.iter().zip(&current) {
            let owner = pk(u);
            let unspent = s.store.unspent_vtxos(&owner).await.unwrap();
            let [v] = unspent.as_slice() else {
                panic!("one VTXO per owner: {unspent:?}")
            };
            assert_ne!(v.id, *old, "renewed");
            assert_eq!(v.sats, Sats::new(15_000));
            assert_eq!(v.colour.map(|c| c.amount.get()).unwrap_or(0), *colour);
            // Ledger = arkd indexer: the owner's spendable VTXOs at arkd.
            let script = s
                .stack
                .arkd
                .server_info()
                .default_vtxo(&owner)
                .script_pubkey();
            let at_arkd: Vec<_> = s
                .stack
                .arkd
                .vtxos()
                .into_iter()
                .filter(|x| {
                    x.script == script
                        && matches!(x.state, ark_relay_sim::arkd::VtxoState::Spendable)
                })
                .collect();
            assert_eq!(at_arkd.len(), 1);
            assert_eq!(at_arkd[0].outpoint, v.id.outpoint());
            assert!(!at_arkd[0].swept);
            let expected: Vec<_> = if *colour > 0 {
                vec![(arkade_id(&s.asset), *colour)]
            } else {
                Vec::new()
            };
            assert_eq!(at_arkd[0].assets, expected);
            next.push(v.id);
        }
        current = next;
        // 90 % of a lifetime passes; the old batches expire and are swept,
        // the renewed VTXOs are not.
        s.stack.chain.advance_time(lifetime * 9 / 10);
        s.stack.chain.mine(1);
        for id in &current {
            assert!(
                !s.stack.arkd.vtxo(&id.outpoint()).unwrap().swept,
                "round {round}: renewed VTXO not swept"
            );
        }
    }
    s.stack.stop().await;
    s.db.destroy().await;
}

/// A VTXO with other leaves than its owner's default script (a position
/// token's conditional leaf) is not offered: a delegation would renew it to
/// the default script and drop the leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vtxo_with_other_leaves_is_not_offered() {
    let s = setup(TestDb::sqlite().await.unwrap(), 3600).await;
    let owner = pk(&s.user);
    let v = s.stack.arkd.fund(&owner, Sats::new(5_000));
    s.store
        .insert_vtxos(
            &[NewVtxo {
                id: VtxoId::new(v.outpoint.txid, v.outpoint.vout),
                owner,
                sats: Sats::new(5_000),
                colour: None,
                status: VtxoStatus::Assigned,
                tapscripts: ark_relay_core::Tapscripts(vec![vec![0x51], vec![0xac]]),
                expires_at: Some(UnixTime(v.expires_at)),
            }],
            UnixTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(s.renewals.pass().await.unwrap().offered, 0);
    s.user_vtxo(20_000).await;
    assert_eq!(
        s.renewals.pass().await.unwrap().offered,
        1,
        "the default one is"
    );
    s.stack.stop().await;
    s.db.destroy().await;
}

/// The chain simulator's clock (moved by time travel), as the relay's clock.
struct ChainClock(ark_relay_sim::Chain);

impl ark_relay_core::Clock for ChainClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.now())
    }
}

/// A setup on the chain clock with `valid_at` at the default 90 % of the
/// lifetime, arkd's fee programs charging 200 sats per VTXO input, and a
/// published renewal fee of 250 sats.
async fn setup_timed(db: TestDb) -> Setup {
    use ark_relay_sim::arkd::round::fees::FeePrograms;
    let options = SimOptions {
        arkd: ArkdSimConfig {
            round: RoundConfig {
                registration: Duration::from_millis(300),
                phase_timeout: Duration::from_secs(5),
                fees: FeePrograms::flat(200, 0, 0, 0),
                ..RoundConfig::default()
            },
            ..ArkdSimConfig::default()
        },
        ..SimOptions::default()
    };
    let stack = SimStack::start(options).await.expect("sims");
    let clock: Arc<dyn ark_relay_core::Clock> = Arc::new(ChainClock(stack.chain.clone()));
    let ark: Arc<dyn ArkServer> = Arc::new(
        ArkdClient::connect(stack.endpoints().arkd)
            .await
            .expect("arkd"),
    );
    let relay = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let user = Keypair::new(&Secp256k1::new(), &mut rand::thread_rng());
    let store: DynStore = Arc::new(db.store.clone());
    let server: ServerInfo = stack.arkd.server_info().clone();
    let runner = RoundRunner::new(
        Arc::new(db.store.clone()),
        store.clone(),
        ark.clone(),
        clock.clone(),
        server.clone(),
        relay,
        RoundsConfig {
            every: Duration::from_secs(1),
            tick: Duration::from_millis(200),
            ..RoundsConfig::default()
        },
    );
    let renewals = Renewals::new(
        Arc::new(db.store.clone()),
        store.clone(),
        Arc::new(db.store.clone()),
        runner.jobs(),
        ark.clone(),
        clock,
        nostr_keys(&relay),
        server,
        runner.cosigner_pk(),
        RenewalConfig {
            policy: RenewalPolicy {
                valid_at_percent: 90,
                fee_sats: 250,
                challenge_ttl_secs: 600,
            },
            notice_before_secs: 3600,
            ..RenewalConfig::default()
        },
    );
    let asset = AssetId::from_bytes([0xA7; 32]);
    store
        .register_asset(
            &NewAsset {
                id: asset,
                name: "Test".into(),
                ticker: "TST".into(),
                asset_type: AssetType::RelayIssued,
                decimals: 0,
            },
            UnixTime::now(),
        )
        .await
        .unwrap();
    Setup {
        db,
        store,
        stack,
        ark,
        relay,
        runner,
        renewals,
        user,
        asset,
    }
}

/// `valid_at` at 90 % of the lifetime, end to end on the chain clock, with
/// a non-zero arkd fee: the challenge asks arkd's 200 sats (under the
/// published 250), the wallet signs; before `valid_at` the relay does not
/// submit the delegation and arkd refuses it (`INVALID_INTENT_TIMERANGE`);
/// once the chain clock travels past it the round renews the VTXO to the
/// owner with input − fee sats and its asset (ledger = arkd indexer).
async fn renews_at_ninety_percent_paying_arkds_fee(db: TestDb) {
    let s = setup_timed(db).await;
    let old = s.user_vtxo(20_000).await;
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.offered, 1, "{r:?}");
    let challenges = s.outbox(kinds::SIGNING_CHALLENGE).await;
    let [(_, plain)] = challenges.as_slice() else {
        panic!("one challenge: {challenges:?}")
    };
    let ch: RenewalChallenge = serde_json::from_str(plain).unwrap();
    assert_eq!(ch.fee, 200, "arkd's fee, not the published 250");
    assert_eq!(s.renewals.arkd_fee_sats(), 200);
    let at_arkd = s.stack.arkd.vtxo(&old.outpoint()).unwrap();
    let life = at_arkd.expires_at - at_arkd.created_at;
    assert_eq!(ch.valid_at, at_arkd.created_at + life * 9 / 10);
    assert!(ch.valid_at > s.stack.chain.now() + 3600);
    assert!(s.wallet_answers(&ch, old).await.outbox.is_empty());

    // Before valid_at: the runner does not submit it …
    let ended = s.runner.run_once().await.unwrap();
    assert!(ended.is_empty(), "{ended:?}");
    assert!(s.stack.arkd.queued_intents().is_empty());
    // … and arkd refuses it.
    let job = s.runner.jobs().get(&ch.renewal_id).await.unwrap().unwrap();
    let job = ark_relay_engine::rounds::RoundJobs::decode(&job).unwrap();
    let delegation = job.delegation.clone().unwrap();
    let err = s
        .ark
        .register_intent(&ark_relay_core::backends::ark::IntentProof {
            proof: delegation.intent_proof,
            message: delegation.intent_message,
        })
        .await
        .expect_err("an early delegation accepted");
    assert!(
        err.to_string().contains("INVALID_INTENT_TIMERANGE"),
        "{err}"
    );

    // The chain clock passes valid_at: renewed, input − arkd's fee.
    s.stack
        .chain
        .advance_time(ch.valid_at - s.stack.chain.now() + 1);
    s.round().await;
    let r = s.renewals.pass().await.unwrap();
    assert_eq!(r.renewed, 1, "{r:?}");
    let d =
        s.db.store
            .delegation(&ch.renewal_id)
            .await
            .unwrap()
            .unwrap();
    let new: VtxoId = d.new_vtxo.unwrap().parse().unwrap();
    let v = s.store.vtxo(&new).await.unwrap().unwrap();
    assert_eq!((v.owner, v.sats), (pk(&s.user), Sats::new(19_800)));
    assert_eq!(v.colour.map(|c| c.amount.get()), Some(400));
    let at_arkd = s.stack.arkd.vtxo(&new.outpoint()).unwrap();
    assert_eq!(at_arkd.amount, 19_800);
    assert_eq!(at_arkd.assets, vec![(arkade_id(&s.asset), 400)]);
    assert_eq!(
        s.store.vtxo(&old).await.unwrap().unwrap().status,
        VtxoStatus::Spent
    );
    s.stack.stop().await;
    s.db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_at_ninety_percent_paying_arkds_fee_on_sqlite() {
    renews_at_ninety_percent_paying_arkds_fee(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_at_ninety_percent_paying_arkds_fee_on_mariadb() {
    renews_at_ninety_percent_paying_arkds_fee(TestDb::mariadb().await.unwrap()).await;
}
