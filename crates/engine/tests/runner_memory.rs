//! The ceremony's runner without sockets: the job router over SQLite and the
//! in-memory Ark server of `testkit` (`MemoryArkd`), jobs handed to it
//! directly as ingest would write them, challenges read from the outbox.
//! Fast and deterministic; the gRPC simulator and a websocket relay are the
//! end-to-end suites' business (`transfer.rs`, `batch.rs`, `ramp.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ark_relay_ark::sign_sighash;
use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, Job, NewAsset, NewVtxo, PubKey, Sats,
    SessionId, SessionStatus, SystemClock, UnixTime, VtxoId, VtxoStatus,
};
use ark_relay_engine::ceremony::{Ceremony, CeremonyConfig, CrashHook, CrashPoint};
use ark_relay_engine::handlers::{BaseHandler, JobHandler, RelayInfo};
use ark_relay_engine::ingest::InboundJob;
use ark_relay_engine::router::Router;
use ark_relay_protocol::content::{
    AssetRef, IntentContent, SignatureEntry, SigningChallenge, SigningResponse, VERSION,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::intent::IntentPolicy;
use ark_relay_protocol::{builders, event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_store::testing::TestDb;
use ark_relay_testkit::arkd::MemoryArkd;
use bitcoin::hashes::Hash;
use bitcoin::TapSighash;
use nostr::{Event, JsonUtil, Keys};

struct Relay {
    _db: TestDb,
    store: DynStore,
    arkd: Arc<MemoryArkd>,
    router: Router,
    pk: PubKey,
}

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).unwrap()
}

async fn relay(crash: Option<CrashHook>) -> Relay {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    let arkd = Arc::new(MemoryArkd::new());
    let server = arkd.server_info();
    let keys = Keys::generate();
    let relay_pk = pk(&keys);
    let info = RelayInfo {
        pubkey: keys.public_key().to_hex(),
        relays: vec![],
        kinds_consumed: kinds::CONSUMED.to_vec(),
        encryption: vec!["nip44_v2"],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: None,
    };
    let base = BaseHandler::new(store.clone(), keys.clone(), info);
    let mut ceremony = Ceremony::new(
        store.clone(),
        arkd.clone(),
        keys.clone(),
        IntentPolicy::new(relay_pk),
        base,
        Arc::new(SystemClock),
        CeremonyConfig::default(),
    );
    if let Some(hook) = crash {
        ceremony = ceremony.with_crash_hook(hook);
    }
    let inventory: Vec<NewVtxo> = (0..3u8)
        .map(|n| NewVtxo {
            id: VtxoId::new(bitcoin::Txid::from_byte_array([200 + n; 32]), 0),
            owner: relay_pk,
            sats: Sats::new(5_000),
            colour: None,
            status: VtxoStatus::Available,
            tapscripts: server.default_vtxo(&relay_pk).to_tapscripts(),
            expires_at: Some(UnixTime(2_000_000_000)),
        })
        .collect();
    store
        .insert_vtxos(&inventory, UnixTime::now())
        .await
        .unwrap();
    Relay {
        _db: db,
        store,
        router: Router::new(Arc::new(ceremony)),
        arkd,
        pk: relay_pk,
    }
}

/// Registers gBTC and gives `owner` one VTXO with `amount` of it.
async fn fund(r: &Relay, owner: &PubKey, amount: u64) -> VtxoId {
    let gbtc = AssetId::from_bytes([7; 32]);
    let asset = NewAsset {
        id: gbtc,
        name: "Relay BTC".into(),
        ticker: "gBTC".into(),
        asset_type: AssetType::RelayIssued,
        decimals: 0,
    };
    r.store
        .register_asset(&asset, UnixTime::now())
        .await
        .unwrap();
    let id = VtxoId::new(bitcoin::Txid::from_byte_array([1; 32]), 0);
    let v = NewVtxo {
        id,
        owner: *owner,
        sats: Sats::new(330),
        colour: Some(Colour {
            asset: gbtc,
            amount: AssetAmount::new(amount),
        }),
        status: VtxoStatus::Assigned,
        tapscripts: r.arkd.server_info().default_vtxo(owner).to_tapscripts(),
        expires_at: Some(UnixTime(2_000_000_000)),
    };
    r.store.insert_vtxos(&[v], UnixTime::now()).await.unwrap();
    id
}

fn job(kind: &str, event: &Event, plaintext: Option<String>) -> Job {
    let inbound = InboundJob {
        event: event.clone(),
        scheme: plaintext.as_ref().map(|_| "nip44_v2".to_owned()),
        plaintext,
        received_at: Some(UnixTime::now()),
    };
    Job {
        key: event.id.to_hex(),
        kind: kind.into(),
        payload: serde_json::to_string(&inbound).unwrap(),
    }
}

/// The latest 31511 for `wallet` in the outbox, step `step`.
async fn challenge(r: &Relay, wallet: &Keys, step: u32) -> SigningChallenge {
    let due = r
        .store
        .due_outbox(UnixTime::now().plus_secs(60), 500)
        .await
        .unwrap();
    due.iter()
        .filter(|o| o.kind == kinds::SIGNING_CHALLENGE)
        .filter_map(|o| Event::from_json(&o.event_json).ok())
        .filter_map(|ev| {
            let (plain, _) =
                decrypt(wallet.secret_key(), &ev.pubkey, &ev.content, &ev.tags).ok()?;
            serde_json::from_str::<SigningChallenge>(&plain).ok()
        })
        .rfind(|c| c.step == step)
        .unwrap_or_else(|| panic!("no step-{step} challenge in the outbox"))
}

/// Signs every sighash of `ch` as the wallet would (after its checks).
fn answer(r: &Relay, wallet: &Keys, ch: &SigningChallenge, intent: &Event) -> Job {
    let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        wallet.secret_key(),
    );
    let resp = SigningResponse {
        v: VERSION,
        session_id: ch.session_id,
        step: ch.step,
        signatures: ch
            .payload_to_sign
            .sign
            .iter()
            .map(|s| SignatureEntry {
                psbt_index: s.psbt_index,
                input_index: s.input_index,
                sig: sign_sighash(&TapSighash::from_str(&s.sighash).unwrap(), &keypair).to_string(),
            })
            .collect(),
        reject: None,
    };
    let ev = builders::signing_response(
        wallet,
        &r.pk,
        &event_id_from_nostr(&intent.id),
        &resp,
        Scheme::Nip44,
    )
    .unwrap();
    job(
        "signing_response",
        &ev,
        Some(serde_json::to_string(&resp).unwrap()),
    )
}

fn intent(r: &Relay, alice: &Keys, bob: &PubKey) -> Event {
    let content = IntentContent::transfer(
        "memory-1",
        bob,
        AssetRef::gbtc(),
        1_000,
        &r.pk,
        10,
        UnixTime::now().0 + 600,
    );
    builders::intent(alice, &r.pk, &content).unwrap()
}

#[tokio::test]
async fn a_transfer_runs_through_the_router_and_the_runner() {
    let r = relay(None).await;
    let alice = Keys::generate();
    let bob = pk(&Keys::generate());
    let input = fund(&r, &pk(&alice), 5_000).await;
    let ev = intent(&r, &alice, &bob);
    r.router.handle(&job("intent", &ev, None), 1).await.unwrap();
    let step1 = challenge(&r, &alice, 1).await;
    r.router
        .handle(&answer(&r, &alice, &step1, &ev), 1)
        .await
        .unwrap();
    let step2 = challenge(&r, &alice, 2).await;
    r.router
        .handle(&answer(&r, &alice, &step2, &ev), 1)
        .await
        .unwrap();

    let session = SessionId::from(event_id_from_nostr(&ev.id));
    let s = r.store.session(&session).await.unwrap().unwrap();
    assert_eq!(
        (s.status, s.state.as_str()),
        (SessionStatus::Completed, "completed")
    );
    let ark_txid = s.ark_txid.unwrap();
    assert_eq!(r.arkd.accepted(&ark_txid), 1);
    assert!(r.arkd.finalized(&ark_txid));
    let spent = r.store.vtxo(&input).await.unwrap().unwrap();
    assert_eq!(spent.status, VtxoStatus::Spent);
    let bob_gbtc = r.store.balances(&bob).await.unwrap();
    assert_eq!(
        bob_gbtc.assets.values().map(|a| a.get()).sum::<u64>(),
        1_000
    );
    let conf = r
        .store
        .due_outbox(UnixTime::now().plus_secs(60), 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == kinds::CONFIRMATION)
        .count();
    assert_eq!(conf, 1, "one 31340");
    assert_eq!(
        r.store
            .intent_status(&event_id_from_nostr(&ev.id))
            .await
            .unwrap(),
        None,
        "this test hands jobs over without ingest, so no intent row exists"
    );
}

#[tokio::test]
async fn a_crash_after_submit_is_resumed_by_the_redelivered_answer_without_a_second_submit() {
    let crashed = Arc::new(AtomicBool::new(false));
    let flag = crashed.clone();
    let hook: CrashHook =
        Arc::new(move |p| p == CrashPoint::AfterSubmit && !flag.swap(true, Ordering::SeqCst));
    let r = relay(Some(hook)).await;
    let alice = Keys::generate();
    let bob = pk(&Keys::generate());
    fund(&r, &pk(&alice), 5_000).await;
    let ev = intent(&r, &alice, &bob);
    r.router.handle(&job("intent", &ev, None), 1).await.unwrap();
    let step1 = challenge(&r, &alice, 1).await;
    let answer1 = answer(&r, &alice, &step1, &ev);
    let died = r.router.handle(&answer1, 1).await;
    assert!(died.is_err(), "the simulated crash after SubmitTx");
    assert!(crashed.load(Ordering::SeqCst));
    // The queue redelivers the answer: the runner finds the tx at arkd
    // (GetPendingTx) and goes on to step 2; arkd saw one submission.
    r.router.handle(&answer1, 2).await.unwrap();
    let step2 = challenge(&r, &alice, 2).await;
    r.router
        .handle(&answer(&r, &alice, &step2, &ev), 1)
        .await
        .unwrap();
    let session = SessionId::from(event_id_from_nostr(&ev.id));
    let s = r.store.session(&session).await.unwrap().unwrap();
    assert_eq!(s.status, SessionStatus::Completed);
    assert_eq!(
        r.arkd.accepted(&s.ark_txid.unwrap()),
        1,
        "never submitted twice"
    );
}
