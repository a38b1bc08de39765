//! `ark-relay dev` driven only through Nostr, as a wallet would: find the relay
//! in `dev.json`, publish to its Nostr relay, read the answers from it. Once
//! against the in-process relay, once against an independent relay process
//! given with `--nostr-relay`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ark_relay_core::{ErrorCode, UnixTime};
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::content::{
    AssetRef, Confirmation, FailureNotice, IntentContent, SignatureEntry, SigningChallenge,
    SigningResponse, VERSION,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{builders, kinds, pubkey_from_nostr};
use common::DevProcess;
use nostr::{Event, Keys};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

struct Wallet {
    keys: Keys,
    transport: PoolTransport,
    rx: mpsc::Receiver<Event>,
    _stop: watch::Sender<bool>,
}

async fn wallet(url: &str, keys: Keys) -> Wallet {
    let mut opts = PoolOptions::new(vec![url.to_owned()]);
    opts.kinds = vec![
        kinds::FAILURE,
        kinds::SERVICE_RESPONSE,
        kinds::SIGNING_CHALLENGE,
        kinds::CONFIRMATION,
    ];
    opts.catch_up_every = Duration::from_secs(2);
    let transport = PoolTransport::connect(keys.public_key(), opts)
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(256);
    let (stop, stop_rx) = watch::channel(false);
    let (_c, cursor) = watch::channel(None);
    let t = transport.clone();
    tokio::spawn(async move { t.pump(tx, cursor, stop_rx).await });
    Wallet {
        keys,
        transport,
        rx,
        _stop: stop,
    }
}

impl Wallet {
    /// The 31340 confirming `intent` (public, not encrypted).
    async fn confirmation_of(&mut self, intent: &nostr::EventId) -> Confirmation {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .expect("a 31340 within 60 s")
                .expect("open");
            if ev.kind.as_u16() == kinds::CONFIRMATION && ev.tags.event_ids().any(|id| id == intent)
            {
                return serde_json::from_str(&ev.content).unwrap();
            }
        }
    }

    /// The next answer (31341, 31501 or 31511) to `answered`, decrypted.
    async fn answer_to(&mut self, answered: &nostr::EventId) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .expect("an answer within 60 s")
                .expect("open");
            if ev.kind.as_u16() == kinds::CONFIRMATION
                || ev.tags.event_ids().next() != Some(answered)
            {
                continue;
            }
            let (plain, _) =
                decrypt(self.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags).unwrap();
            return (ev.kind.as_u16(), plain);
        }
    }
}

async fn exercise(relay_url: &str, facts: &Value) {
    let relay_pk_hex = facts["relay_pubkey"].as_str().unwrap();
    let relay_pk: ark_relay_core::PubKey = relay_pk_hex.parse().unwrap();
    let alice_file = facts["wallets"][0]["key_file"].as_str().unwrap();
    let alice = Keys::parse(std::fs::read_to_string(alice_file).unwrap().trim()).unwrap();
    let mut w = wallet(relay_url, alice).await;

    // get_info over NIP-04 is answered with a 31501 in NIP-04.
    let req = builders::service_request(
        &w.keys,
        &relay_pk,
        &ServiceRequest::GetInfo {},
        "info-1",
        Scheme::Nip04,
    )
    .unwrap();
    w.transport.publish(&req).await.unwrap();
    let (kind, plain) = w.answer_to(&req.id).await;
    assert_eq!(kind, kinds::SERVICE_RESPONSE);
    let resp: ServiceResponse = serde_json::from_str(&plain).unwrap();
    let info = resp.result.unwrap();
    assert_eq!(info["pubkey"], relay_pk_hex);
    // get_info carries the Ark server's parameters a wallet checks against.
    assert_eq!(info["ark"]["network"], "regtest");

    // sync_state over NIP-44: alice starts with the demo's gBTC.
    let req = builders::service_request(
        &w.keys,
        &relay_pk,
        &ServiceRequest::SyncState {},
        "sync-1",
        Scheme::Nip44,
    )
    .unwrap();
    w.transport.publish(&req).await.unwrap();
    let (_, plain) = w.answer_to(&req.id).await;
    let resp: ServiceResponse = serde_json::from_str(&plain).unwrap();
    let vtxos = resp.result.unwrap()["vtxos"].clone();
    assert_eq!(vtxos.as_array().unwrap().len(), 1, "{vtxos}");
    assert_eq!(vtxos[0]["ticker"], "gBTC");
    assert_eq!(vtxos[0]["amount"], 100_000);

    // An intent without its fee is refused with 4001, as a 31341.
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
    let mut c = IntentContent::transfer(
        "no-fee-1",
        &bob,
        AssetRef::gbtc(),
        1_000,
        &relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    c.outputs.pop();
    let intent = builders::intent(&w.keys, &relay_pk, &c).unwrap();
    w.transport.publish(&intent).await.unwrap();
    let (kind, plain) = w.answer_to(&intent.id).await;
    assert_eq!(kind, kinds::FAILURE);
    let notice: FailureNotice = serde_json::from_str(&plain).unwrap();
    assert_eq!(notice.code, ErrorCode::FeeOutput);

    // A real transfer: the ceremony runs against the embedded arkd simulator;
    // this test answers the two challenges as an honest wallet would.
    let c = IntentContent::transfer(
        "dev-send-1",
        &bob,
        AssetRef::gbtc(),
        1_000,
        &relay_pk,
        10,
        UnixTime::now().0 + 600,
    );
    let intent = builders::intent(&w.keys, &relay_pk, &c).unwrap();
    w.transport.publish(&intent).await.unwrap();
    let keypair = bitcoin::secp256k1::Keypair::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::signing_only(),
        w.keys.secret_key(),
    );
    for step in 1..=2u32 {
        let (kind, plain) = w.answer_to(&intent.id).await;
        assert_eq!(kind, kinds::SIGNING_CHALLENGE, "step {step}: {plain}");
        let ch: SigningChallenge = serde_json::from_str(&plain).unwrap();
        assert_eq!(ch.step, step);
        let mut psbts: Vec<bitcoin::Psbt> = ch
            .payload_to_sign
            .psbts
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let signatures = ch
            .payload_to_sign
            .sign
            .iter()
            .map(|r| {
                let sig = ark_relay_ark::sign_input(
                    &mut psbts[r.psbt_index as usize],
                    r.input_index as usize,
                    &keypair,
                )
                .unwrap();
                SignatureEntry {
                    psbt_index: r.psbt_index,
                    input_index: r.input_index,
                    sig: hex_of(&sig.serialize()),
                }
            })
            .collect();
        let resp = SigningResponse {
            v: VERSION,
            session_id: ch.session_id,
            step,
            signatures,
            reject: None,
        };
        let intent_id = ark_relay_core::EventId::from_bytes(intent.id.to_bytes());
        let ev = builders::signing_response(&w.keys, &relay_pk, &intent_id, &resp, Scheme::Nip44)
            .unwrap();
        w.transport.publish(&ev).await.unwrap();
    }
    let conf = w.confirmation_of(&intent.id).await;
    assert!(
        conf.created
            .iter()
            .any(|c| c.owner == bob && c.amount == 1_000),
        "{conf:?}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_talks_to_dev_over_its_in_process_nostr_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dev = DevProcess::spawn(&tmp.path().join("data"), &tmp.path().join("logs"), &[]);
    let facts = tokio::task::block_in_place(|| dev.wait_ready());
    let url = facts["nostr_relays"][0].as_str().unwrap().to_owned();
    exercise(&url, &facts).await;
    assert!(tokio::task::block_in_place(|| dev.terminate()).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_uses_the_nostr_relay_it_is_given() {
    // A separate relay the dev stack did not start (any NIP-01 relay would do).
    let external = DevRelay::start(DevRelayOptions::default()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut dev = DevProcess::spawn_with(
        &tmp.path().join("data"),
        &tmp.path().join("logs"),
        &[],
        &["--nostr-relay", external.url()],
    );
    let facts = tokio::task::block_in_place(|| dev.wait_ready());
    assert_eq!(facts["nostr_relays"], serde_json::json!([external.url()]));
    exercise(external.url(), &facts).await;
    assert!(tokio::task::block_in_place(|| dev.terminate()).success());
    external.shutdown();
}
