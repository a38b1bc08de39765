//! The heart of the product, end to end over the real parts: Alice publishes a
//! signed `p2p_transfer` intent on a websocket Nostr relay; the relay runs the
//! two-step signing ceremony with her wallet over encrypted DMs, submits and
//! finalizes the Ark transaction with the arkd simulator over gRPC, commits
//! the ledger on MariaDB and publishes the 31340.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ark_relay_ark::ServerInfo;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, DynStore, ErrorCode, PubKey, UnixTime, VtxoStatus,
};
use ark_relay_protocol::content::{
    AssetRef, Confirmation, IntentContent, SignatureEntry, SigningChallenge, SigningResponse,
    VERSION,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::{builders, event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_queue::MemoryQueue;
use ark_relay_sim::arkd::{ArkdSim, ArkdSimConfig};
use ark_relay_store::testing::TestDb;
use bitcoin::Psbt;
use nostr::Keys;
use tokio::sync::watch;

use common::{answers, spawn_signer, Wallet};

struct Setup {
    store: DynStore,
    sim: ArkdSim,
    relay_keys: Keys,
    relay_pk: PubKey,
    gbtc: AssetId,
    server: ServerInfo,
    stop: watch::Sender<bool>,
    engine: tokio::task::JoinHandle<()>,
    nostr_url: String,
    arkd_url: String,
    _db: TestDb,
    _nostr: ark_relay_nostr::DevRelay,
    _sim_server: ark_relay_sim::arkd::SimServer,
}

async fn setup() -> Setup {
    setup_with(None).await
}

async fn setup_with(tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>) -> Setup {
    let common::Parts {
        db,
        store,
        nostr,
        sim,
        sim_server,
        arkd_url,
        server,
        relay_keys,
        relay_pk,
        ..
    } = common::parts(TestDb::mariadb().await.expect("MariaDB"), 4).await;
    let gbtc = common::register(&store, "gBTC", AssetType::RelayIssued).await;
    let (stop, engine) = start_engine(
        &store,
        &relay_keys,
        &server,
        nostr.url(),
        &arkd_url,
        tamper,
        None,
    )
    .await;
    Setup {
        engine,
        arkd_url,
        store,
        sim,
        relay_keys,
        relay_pk,
        gbtc,
        server,
        stop,
        nostr_url: nostr.url().to_owned(),
        _db: db,
        _nostr: nostr,
        _sim_server: sim_server,
    }
}

/// Starts an engine with the transfer ceremony (a relay process) on the shared
/// store, Nostr relay and arkd, jobs in process; returns its stop switch and task.
async fn start_engine(
    store: &DynStore,
    relay_keys: &Keys,
    server: &ServerInfo,
    nostr_url: &str,
    arkd_url: &str,
    tamper: Option<ark_relay_engine::ceremony::ChallengeTamper>,
    crash: Option<ark_relay_engine::ceremony::CrashHook>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let queue = Arc::new(MemoryQueue::new(Default::default()));
    common::start_ceremony(
        store, relay_keys, server, nostr_url, arkd_url, tamper, crash, queue,
    )
    .await
}

/// Gives `owner` a VTXO at arkd and in the ledger, coloured with `amount` gBTC.
async fn fund(s: &Setup, owner: &PubKey, amount: u64) -> ark_relay_core::VtxoId {
    common::fund(&s.store, &s.sim, owner, s.gbtc, amount).await
}

fn gbtc_of(b: &ark_relay_core::Balances, asset: &AssetId) -> u64 {
    b.assets.get(asset).map(|a| a.get()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alice_sends_bob_1000_gbtc() {
    let s = setup().await;
    let alice = Arc::new(Wallet::connect(&s.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
    let bob_keys = Keys::generate();
    let bob_pk = pubkey_from_nostr(&bob_keys.public_key()).expect("key");
    let bob = Wallet::connect_as(&s.nostr_url, bob_keys).await;
    fund(&s, &alice_pk, 5_000).await;
    spawn_signer(alice.clone(), s.relay_pk);

    let content = IntentContent::transfer(
        "send-1",
        &bob_pk,
        AssetRef::gbtc(),
        1_000,
        &s.relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let intent = builders::intent(&alice.keys, &s.relay_pk, &content).expect("intent");
    alice.publish(&intent).await;

    // Bob's wallet sees the public 31340 that p-tags him and e-tags the intent.
    bob.wait_answer(
        "the 31340 for Bob",
        kinds::CONFIRMATION,
        &intent.id,
        Duration::from_secs(60),
    )
    .await;
    let conf_ev = bob
        .received()
        .await
        .into_iter()
        .find(|e| e.kind.as_u16() == kinds::CONFIRMATION)
        .expect("31340");
    let conf: Confirmation = serde_json::from_str(&conf_ev.content).expect("json");
    assert_eq!(conf.intents, vec![event_id_from_nostr(&intent.id)]);
    assert_eq!(
        s.store
            .intent_status(&event_id_from_nostr(&intent.id))
            .await
            .expect("status"),
        Some(ark_relay_core::SessionStatus::Completed),
        "intents.status follows the intent"
    );
    let bob_created: Vec<_> = conf.created.iter().filter(|c| c.owner == bob_pk).collect();
    assert_eq!(bob_created.len(), 1);
    assert_eq!(bob_created[0].amount, 1_000);

    // The ledger: Bob 1 000, Alice 3 990 change, the relay its 10-unit fee; colour conserved.
    let bal = |pk: PubKey| {
        let store = s.store.clone();
        async move { store.balances(&pk).await.expect("balances") }
    };
    assert_eq!(gbtc_of(&bal(bob_pk).await, &s.gbtc), 1_000);
    assert_eq!(gbtc_of(&bal(alice_pk).await, &s.gbtc), 3_990);
    assert_eq!(gbtc_of(&bal(s.relay_pk).await, &s.gbtc), 10);
    let supply = s
        .store
        .asset(&s.gbtc)
        .await
        .expect("asset")
        .expect("gbtc")
        .total_supply;
    assert_eq!(supply, AssetAmount::new(5_000), "colour conserved");

    // arkd agrees: every VTXO the ledger created exists at the server with the same sats.
    for c in &conf.created {
        let at_arkd = s.sim.vtxo(&c.vtxo.outpoint()).expect("created at arkd");
        assert_eq!(at_arkd.amount, c.sats);
    }
    for sp in &conf.spent {
        assert!(
            s.store
                .vtxo(&sp.vtxo)
                .await
                .expect("vtxo")
                .expect("exists")
                .status
                == VtxoStatus::Spent
        );
    }
    common::assert_reconciled(&s._db.store, &s.arkd_url).await;
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wallet_that_never_answers_times_out_and_frees_its_vtxo() {
    let s = setup().await;
    let alice = Arc::new(Wallet::connect(&s.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    let vtxo = fund(&s, &alice_pk, 2_000).await;

    let c = IntentContent::transfer(
        "silent-1",
        &bob,
        AssetRef::gbtc(),
        500,
        &s.relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let first = builders::intent(&alice.keys, &s.relay_pk, &c).expect("intent");
    alice.publish(&first).await;
    alice
        .wait_answer(
            "the 5001 notice",
            kinds::FAILURE,
            &first.id,
            Duration::from_secs(60),
        )
        .await;
    let notices = alice.failures().await;
    assert_eq!(notices[&first.id][0].code, ErrorCode::SessionExpired);
    assert_eq!(
        s.store
            .intent_status(&event_id_from_nostr(&first.id))
            .await
            .expect("status"),
        Some(ark_relay_core::SessionStatus::Expired),
        "intents.status follows an expired intent"
    );
    let v = s.store.vtxo(&vtxo).await.expect("vtxo").expect("exists");
    assert_eq!(
        (v.status, v.locked_by),
        (VtxoStatus::Assigned, None),
        "lock released, nothing spent"
    );

    // The same VTXO can be spent by a new intent once the wallet answers.
    spawn_signer(alice.clone(), s.relay_pk);
    let c = IntentContent::transfer(
        "silent-2",
        &bob,
        AssetRef::gbtc(),
        500,
        &s.relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let second = builders::intent(&alice.keys, &s.relay_pk, &c).expect("intent");
    alice.publish(&second).await;
    alice
        .wait_answer(
            "the 31340",
            kinds::CONFIRMATION,
            &second.id,
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        s.store
            .vtxo(&vtxo)
            .await
            .expect("vtxo")
            .expect("exists")
            .status,
        VtxoStatus::Spent
    );
    let _ = s.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_intents_racing_for_the_same_vtxo_complete_once() {
    let s = setup().await;
    let alice = Arc::new(Wallet::connect(&s.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
    fund(&s, &alice_pk, 1_010).await;
    spawn_signer(alice.clone(), s.relay_pk);
    let intents: Vec<_> = (0..2)
        .map(|i| {
            let c = IntentContent::transfer(
                format!("race-{i}"),
                &bob,
                AssetRef::gbtc(),
                1_000,
                &s.relay_pk,
                10,
                UnixTime::now().0 + 600,
            );
            builders::intent(&alice.keys, &s.relay_pk, &c).expect("intent")
        })
        .collect();
    let (a, b) = (intents[0].clone(), intents[1].clone());
    let (w1, w2) = (alice.clone(), alice.clone());
    tokio::join!(async move { w1.publish(&a).await }, async move {
        w2.publish(&b).await
    });
    let ids: Vec<_> = intents.iter().map(|e| e.id).collect();
    alice
        .wait_for(
            "an outcome for both intents",
            Duration::from_secs(60),
            |evs| {
                ids.iter().all(|id| {
                    evs.iter().any(|e| {
                        answers(e, kinds::CONFIRMATION, id) || answers(e, kinds::FAILURE, id)
                    })
                })
            },
        )
        .await;
    let evs = alice.received().await;
    let confirmed = ids
        .iter()
        .filter(|id| evs.iter().any(|e| answers(e, kinds::CONFIRMATION, id)))
        .count();
    assert_eq!(confirmed, 1, "exactly one completes");
    let failures = alice.failures().await;
    let failed: Vec<ErrorCode> = ids
        .iter()
        .filter_map(|id| failures.get(id))
        .flat_map(|n| n.iter().map(|n| n.code))
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        matches!(
            failed[0],
            ErrorCode::InputLocked | ErrorCode::InsufficientBalance | ErrorCode::InputAlreadySpent
        ),
        "{failed:?}"
    );
    let bal = s.store.balances(&bob).await.expect("b");
    assert_eq!(gbtc_of(&bal, &s.gbtc), 1_000, "paid once");
    let _ = (s.relay_keys.public_key(), Scheme::Nip44);
    let _ = s.stop.send(true);
}

async fn reference_wallet(s: &Setup, keys: Keys) -> ark_relay_wallet::Wallet {
    let opts = ark_relay_wallet::WalletOptions::default();
    ark_relay_wallet::Wallet::connect(keys, s.relay_pk, vec![s.nostr_url.clone()], opts)
        .await
        .expect("wallet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_wallet_sends_after_checking_both_challenges() {
    let s = setup().await;
    let alice_keys = Keys::generate();
    let alice_pk = pubkey_from_nostr(&alice_keys.public_key()).expect("key");
    let bob_keys = Keys::generate();
    let bob_pk = pubkey_from_nostr(&bob_keys.public_key()).expect("key");
    fund(&s, &alice_pk, 5_000).await;
    let alice = reference_wallet(&s, alice_keys).await;
    let bob = reference_wallet(&s, bob_keys).await;

    let conf = alice
        .send(bob_pk, 1_000, AssetRef::gbtc())
        .await
        .expect("send");
    assert!(conf
        .created
        .iter()
        .any(|c| c.owner == bob_pk && c.amount == 1_000));
    let gbtc = |b: &ark_relay_wallet::Balances| {
        b.assets
            .iter()
            .filter(|a| a.ticker.as_deref() == Some("gBTC"))
            .map(|a| a.amount)
            .sum::<u64>()
    };
    assert_eq!(gbtc(&alice.balance().await.expect("balance")), 3_990);
    assert_eq!(gbtc(&bob.balance().await.expect("balance")), 1_000);
    let _ = s.stop.send(true);
}

/// A relay that lies in the challenge (standing for a man in the middle with
/// the relay's keys): each lie is refused by the reference wallet, the session
/// fails with a 31341, and nothing is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampered_challenges_are_refused_and_nothing_moves() {
    type Lie = fn(&ServerInfo, &mut Psbt, &mut Vec<ark_relay_protocol::content::ColourHint>);
    let lies: [(&str, Lie); 3] = [
        ("amount", |_, _, hints| hints[0].amount += 1),
        ("asset", |_, _, hints| {
            hints[0].asset = AssetRef::Id(AssetId::from_bytes([9; 32]))
        }),
        ("recipient", |server, psbt, hints| {
            let mallory = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
            psbt.unsigned_tx.output[0].script_pubkey =
                server.default_vtxo(&mallory).script_pubkey();
            hints[0].owner = mallory.to_string();
        }),
    ];
    for (what, lie) in lies {
        let server = ServerInfo::clone(
            &ArkdSim::new(ArkdSimConfig::default())
                .expect("sim")
                .server_info()
                .clone(),
        );
        let tamper: ark_relay_engine::ceremony::ChallengeTamper =
            Arc::new(move |psbt, hints| lie(&server, psbt, hints));
        let s = setup_with(Some(tamper)).await;
        let alice_keys = Keys::generate();
        let alice_pk = pubkey_from_nostr(&alice_keys.public_key()).expect("key");
        let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
        let vtxo = fund(&s, &alice_pk, 5_000).await;
        let alice = reference_wallet(&s, alice_keys).await;
        let err = alice
            .send(bob, 1_000, AssetRef::gbtc())
            .await
            .expect_err(what);
        assert_eq!(err.code(), Some(ErrorCode::SigningRefused), "{what}: {err}");
        let v = s.store.vtxo(&vtxo).await.expect("vtxo").expect("exists");
        assert_eq!(
            (v.status, v.locked_by),
            (VtxoStatus::Assigned, None),
            "{what}: nothing spent, lock released"
        );
        assert!(
            s.sim
                .vtxo(&vtxo.outpoint())
                .expect("at arkd")
                .spent_by
                .is_none(),
            "{what}: never submitted"
        );
        assert_eq!(
            gbtc_of(&s.store.balances(&bob).await.expect("b"), &s.gbtc),
            0
        );
        let _ = s.stop.send(true);
    }
}

/// Kills the relay at every step of the ceremony and starts a new relay
/// process on the same database, Nostr relay and arkd: every transfer ends
/// completed exactly once, no VTXO is spent twice, and the ledger matches arkd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_at_any_step_finishes_the_transfer_exactly_once() {
    use ark_relay_engine::ceremony::CrashPoint;
    use std::sync::atomic::{AtomicBool, Ordering};
    for point in [
        CrashPoint::AfterLock,
        CrashPoint::AfterChallenge,
        CrashPoint::AfterSubmit,
        CrashPoint::AfterFinalize,
        CrashPoint::BeforeConfirmation,
    ] {
        let mut s = setup().await;
        // Replace the running relay with one that dies at `point`.
        let _ = s.stop.send(true);
        let _ = (&mut s.engine).await;
        let crashed = Arc::new(AtomicBool::new(false));
        let flag = crashed.clone();
        let hook: ark_relay_engine::ceremony::CrashHook =
            Arc::new(move |p| p == point && !flag.swap(true, Ordering::SeqCst));
        let (stop, engine) = start_engine(
            &s.store,
            &s.relay_keys,
            &s.server,
            &s.nostr_url,
            &s.arkd_url,
            None,
            Some(hook),
        )
        .await;

        let alice = Arc::new(Wallet::connect(&s.nostr_url).await);
        let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
        let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");
        let input = fund(&s, &alice_pk, 2_000).await;
        spawn_signer(alice.clone(), s.relay_pk);
        let c = IntentContent::transfer(
            "crash-1",
            &bob,
            AssetRef::gbtc(),
            1_000,
            &s.relay_pk,
            10,
            UnixTime::now().0 + 600,
        );
        let intent = builders::intent(&alice.keys, &s.relay_pk, &c).expect("intent");
        alice.publish(&intent).await;

        // Wait for the crash, then "kill" that process and start a fresh one.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !crashed.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{point:?}: never reached"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        let _ = engine.await;
        let (stop, _engine) = start_engine(
            &s.store,
            &s.relay_keys,
            &s.server,
            &s.nostr_url,
            &s.arkd_url,
            None,
            None,
        )
        .await;

        let what = format!("{point:?}: the 31340");
        alice
            .wait_answer(
                &what,
                kinds::CONFIRMATION,
                &intent.id,
                Duration::from_secs(90),
            )
            .await;
        let confirmations = alice
            .received()
            .await
            .into_iter()
            .filter(|e| e.kind.as_u16() == kinds::CONFIRMATION)
            .count();
        assert_eq!(confirmations, 1, "{point:?}: one 31340");
        assert_eq!(
            gbtc_of(&s.store.balances(&bob).await.expect("b"), &s.gbtc),
            1_000,
            "{point:?}: paid once"
        );
        assert_eq!(
            gbtc_of(&s.store.balances(&alice_pk).await.expect("b"), &s.gbtc),
            990,
            "{point:?}"
        );
        let spent = s.store.vtxo(&input).await.expect("vtxo").expect("exists");
        assert_eq!(spent.status, VtxoStatus::Spent, "{point:?}");
        // The ledger matches arkd: the input is spent there by the same tx, and
        // every unspent ledger VTXO of the parties exists unspent at arkd.
        let at_arkd = s.sim.vtxo(&input.outpoint()).expect("input at arkd");
        assert!(at_arkd.spent_by.is_some(), "{point:?}: spent at arkd");
        for owner in [alice_pk, bob, s.relay_pk] {
            for v in s.store.unspent_vtxos(&owner).await.expect("unspent") {
                let a = s
                    .sim
                    .vtxo(&v.id.outpoint())
                    .unwrap_or_else(|| panic!("{point:?}: {} missing at arkd", v.id));
                assert!(
                    a.spent_by.is_none(),
                    "{point:?}: {} unspent in the ledger but spent at arkd",
                    v.id
                );
                assert_eq!(a.amount, v.sats.get());
            }
        }
        common::assert_reconciled(&s._db.store, &s.arkd_url).await;
        let _ = stop.send(true);
    }
}

/// Answers that do not fit the session: a response to a session that does not
/// exist is 5003; a step-1 answer whose signature does not verify is 5002, and
/// the session fails with its locks released.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_signing_responses_get_5003_and_5002() {
    let s = setup().await;
    let alice = Arc::new(Wallet::connect(&s.nostr_url).await);
    let alice_pk = pubkey_from_nostr(&alice.keys.public_key()).expect("key");
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).expect("key");

    // 5003: no such session.
    let ghost = SigningResponse {
        v: VERSION,
        session_id: ark_relay_core::SessionId::from_bytes([7; 32]),
        step: 1,
        signatures: vec![SignatureEntry {
            psbt_index: 0,
            input_index: 0,
            sig: "00".repeat(64),
        }],
        reject: None,
    };
    let ghost_intent = ark_relay_core::EventId::from_bytes([7; 32]);
    let ev = builders::signing_response(
        &alice.keys,
        &s.relay_pk,
        &ghost_intent,
        &ghost,
        Scheme::Nip44,
    )
    .expect("response");
    alice.publish(&ev).await;
    alice
        .wait_answer("the 5003", kinds::FAILURE, &ev.id, Duration::from_secs(30))
        .await;
    assert_eq!(
        alice.failures().await[&ev.id][0].code,
        ErrorCode::UnknownSession
    );

    // 5002: a signature that does not verify.
    let vtxo = fund(&s, &alice_pk, 2_000).await;
    let c = IntentContent::transfer(
        "badsig-1",
        &bob,
        AssetRef::gbtc(),
        500,
        &s.relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let intent = builders::intent(&alice.keys, &s.relay_pk, &c).expect("intent");
    alice.publish(&intent).await;
    alice
        .wait_for("the step-1 challenge", Duration::from_secs(30), |evs| {
            evs.iter()
                .any(|e| e.kind.as_u16() == kinds::SIGNING_CHALLENGE)
        })
        .await;
    let challenge = alice
        .received()
        .await
        .into_iter()
        .find(|e| e.kind.as_u16() == kinds::SIGNING_CHALLENGE)
        .expect("31511");
    let (plain, _) = decrypt(
        alice.keys.secret_key(),
        &challenge.pubkey,
        &challenge.content,
        &challenge.tags,
    )
    .expect("decrypt");
    let ch: SigningChallenge = serde_json::from_str(&plain).expect("json");
    let forged = SigningResponse {
        v: VERSION,
        session_id: ch.session_id,
        step: 1,
        signatures: ch
            .payload_to_sign
            .sign
            .iter()
            .map(|r| SignatureEntry {
                psbt_index: r.psbt_index,
                input_index: r.input_index,
                sig: "11".repeat(64),
            })
            .collect(),
        reject: None,
    };
    let intent_id = event_id_from_nostr(&intent.id);
    let ev =
        builders::signing_response(&alice.keys, &s.relay_pk, &intent_id, &forged, Scheme::Nip44)
            .expect("response");
    alice.publish(&ev).await;
    alice
        .wait_answer(
            "the 5002",
            kinds::FAILURE,
            &intent.id,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        alice.failures().await[&intent.id][0].code,
        ErrorCode::InvalidResponseSignature
    );
    let v = s.store.vtxo(&vtxo).await.expect("vtxo").expect("exists");
    assert_eq!((v.status, v.locked_by), (VtxoStatus::Assigned, None));
    assert_eq!(
        s.store.intent_status(&intent_id).await.expect("status"),
        Some(ark_relay_core::SessionStatus::Failed),
        "intents.status follows a failed intent"
    );
    let _ = s.stop.send(true);
}
