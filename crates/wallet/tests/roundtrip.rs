//! The wallet over a real websocket Nostr relay ([`DevRelay`]) against a
//! scripted "relay" that plays the Ark Relay's side of the ceremony: it sends
//! 31511 challenges and checks the 31512 answers (signatures verified with
//! `ark_relay_ark::sign::verify_signatures`).

use std::time::Duration;

use ark_relay_ark::sign::{add_signature, verify_signatures};
use ark_relay_core::{EventId, PubKey};
use ark_relay_nostr::{DevRelay, DevRelayOptions, PoolOptions, PoolTransport};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{
    AssetRef, Confirmation, IntentContent, SigningChallenge, SigningResponse, VtxoEntry,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::request::{parse_request, ServiceRequest, ServiceResponse};
use ark_relay_protocol::transport::NostrTransport;
use ark_relay_protocol::{event_id_from_nostr, kinds};
use ark_relay_wallet::testing::Scenario;
use ark_relay_wallet::verify::decode_psbt;
use ark_relay_wallet::{Outcome, Wallet, WalletOptions};
use bitcoin::secp256k1::{schnorr, Keypair};
use nostr::{Event, Keys};
use tokio::sync::{mpsc, watch};

fn keys_of(k: &Keypair) -> Keys {
    Keys::parse(&hex::encode(k.secret_bytes())).expect("keys")
}

/// The relay side: reads what is p-tagged to the relay key, publishes as it.
struct ScriptedRelay {
    keys: Keys,
    transport: PoolTransport,
    rx: mpsc::Receiver<Event>,
    _stop: watch::Sender<bool>,
}

impl ScriptedRelay {
    async fn start(url: &str, keys: Keys) -> Self {
        let mut opts = PoolOptions::new(vec![url.to_owned()]);
        opts.catch_up_every = Duration::from_secs(2);
        let transport = PoolTransport::connect(keys.public_key(), opts)
            .await
            .expect("relay transport");
        let (tx, rx) = mpsc::channel(256);
        let (stop, stop_rx) = watch::channel(false);
        let (_c, cursor) = watch::channel(None);
        let t = transport.clone();
        tokio::spawn(async move {
            let _keep = _c;
            t.pump(tx, cursor, stop_rx).await
        });
        Self {
            keys,
            transport,
            rx,
            _stop: stop,
        }
    }

    /// The next event of `kind` (duplicates from catch-up skipped by the caller).
    async fn next(&mut self, kind: u16, seen: &mut Vec<nostr::EventId>) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .expect("timed out waiting for the wallet")
                .expect("reader open");
            if ev.kind.as_u16() == kind && !seen.contains(&ev.id) {
                seen.push(ev.id);
                return ev;
            }
        }
    }

    fn open(&self, ev: &Event) -> String {
        decrypt(self.keys.secret_key(), &ev.pubkey, &ev.content, &ev.tags)
            .expect("decrypt")
            .0
    }

    async fn challenge(&self, to: &PubKey, intent: &EventId, ch: &SigningChallenge) {
        let ev = builders::signing_challenge(&self.keys, to, intent, ch, Scheme::Nip44)
            .expect("challenge");
        self.transport
            .publish(&ev)
            .await
            .expect("publish challenge");
    }

    async fn response(&mut self, seen: &mut Vec<nostr::EventId>) -> SigningResponse {
        let ev = self.next(kinds::SIGNING_RESPONSE, seen).await;
        serde_json::from_str(&self.open(&ev)).expect("signing response")
    }
}

fn verify_response(ch: &SigningChallenge, resp: &SigningResponse, signer: &PubKey) {
    assert!(
        resp.reject.is_none(),
        "unexpected reject: {:?}",
        resp.reject
    );
    assert_eq!(resp.session_id, ch.session_id);
    assert_eq!(resp.step, ch.step);
    let mut psbts: Vec<_> = ch
        .payload_to_sign
        .psbts
        .iter()
        .map(|p| decode_psbt(p).expect("psbt"))
        .collect();
    assert_eq!(resp.signatures.len(), ch.payload_to_sign.sign.len());
    for s in &resp.signatures {
        let sig = schnorr::Signature::from_slice(&hex::decode(&s.sig).expect("hex")).expect("sig");
        add_signature(
            &mut psbts[s.psbt_index as usize],
            s.input_index as usize,
            signer.x_only(),
            sig,
        )
        .expect("valid signature");
    }
    for p in &psbts {
        verify_signatures(p).expect("signatures verify");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_round_trip_over_a_websocket_relay() {
    let nostr = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("dev relay");
    let s = Scenario::new();
    let opts = WalletOptions {
        server: Some(s.server.clone()),
        // The scripted relay answers no get_info: no indexer to look up.
        indexer: ark_relay_wallet::IndexerCheck::Off,
        ..Default::default()
    };
    let wallet = Wallet::connect(
        keys_of(&s.alice),
        s.relay_pk(),
        vec![nostr.url().to_owned()],
        opts,
    )
    .await
    .expect("wallet");
    assert!(wallet.authorise(s.authorised(), vec![s.alice_vtxo.clone()]));
    let mut relay = ScriptedRelay::start(nostr.url(), keys_of(&s.relay)).await;
    let mut seen = Vec::new();

    // Step 1 and step 2, honest: signed, and the signatures verify.
    let tx = s.honest_tx();
    let ch1 = s.step1_for(&tx, &s.outputs, &s.alice_pk());
    relay.challenge(&s.alice_pk(), &s.intent_id, &ch1).await;
    let r1 = relay.response(&mut seen).await;
    verify_response(&ch1, &r1, &s.alice_pk());
    let ch2 = s.step2_for(&tx);
    relay.challenge(&s.alice_pk(), &s.intent_id, &ch2).await;
    let r2 = relay.response(&mut seen).await;
    verify_response(&ch2, &r2, &s.alice_pk());

    // A man in the middle changes the amount: refused with a reason, no signature.
    let mut tampered = s.step1();
    tampered.payload_to_sign.colour[0].amount = 1;
    relay
        .challenge(&s.alice_pk(), &s.intent_id, &tampered)
        .await;
    let r = relay.response(&mut seen).await;
    assert!(r.signatures.is_empty());
    let reason = r.reject.expect("a reject");
    assert!(reason.contains("do not match my intent"), "{reason}");

    wallet.shutdown().await;
    nostr.shutdown();
}

/// `Wallet::send` end to end against the scripted relay: get_info (with the
/// `ark` field), sync_state, the 31510, both challenges, and the 31340.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_answers_the_ceremony_and_returns_the_confirmation() {
    let nostr = DevRelay::start(DevRelayOptions::default())
        .await
        .expect("dev relay");
    let base = Scenario::new();
    let wallet = Wallet::connect(
        keys_of(&base.alice),
        base.relay_pk(),
        vec![nostr.url().to_owned()],
        WalletOptions::default(),
    )
    .await
    .expect("wallet");
    let mut relay = ScriptedRelay::start(nostr.url(), keys_of(&base.relay)).await;

    let script = {
        let base = base.clone();
        async move {
            let mut seen = Vec::new();
            let mut pending: Vec<Event> = Vec::new();
            let alice = base.alice_pk();
            // Answer service requests until the intent arrives.
            let intent_ev = loop {
                let ev = tokio::time::timeout(Duration::from_secs(20), relay.rx.recv())
                    .await
                    .expect("wallet activity")
                    .expect("open");
                if seen.contains(&ev.id) {
                    continue;
                }
                seen.push(ev.id);
                match ev.kind.as_u16() {
                    kinds::SERVICE_REQUEST => {
                        let req = parse_request(&relay.open(&ev)).expect("request");
                        let result = match req {
                            ServiceRequest::GetInfo {} => serde_json::json!({
                                "pubkey": base.relay_pk().to_string(),
                                "transfer_fee": 10,
                                "ark": {
                                    "signer_pubkey": hex::encode(base.server.signer().serialize()),
                                    "forfeit_pubkey": hex::encode(base.server.forfeit_key().serialize()),
                                    "checkpoint_tapscript": base.server.checkpoint_tapscript().to_hex_string(),
                                    "unilateral_exit_delay": 144,
                                    "checkpoint_exit_delay": 10,
                                    "dust": 330,
                                    "network": "regtest"
                                }
                            }),
                            ServiceRequest::SyncState {} => serde_json::json!({
                                "owner": alice.to_string(),
                                "vtxos": [base.alice_vtxo],
                            }),
                            other => panic!("unexpected request {other:?}"),
                        };
                        let resp = ServiceResponse::ok(ev.id.to_hex(), result);
                        let out = builders::service_response(
                            &relay.keys,
                            &alice,
                            &event_id_from_nostr(&ev.id),
                            &resp,
                            Scheme::Nip44,
                        )
                        .expect("response");
                        relay.transport.publish(&out).await.expect("publish");
                    }
                    kinds::INTENT => break ev,
                    _ => pending.push(ev),
                }
            };
            // Build the honest tx for the wallet's own intent.
            let content: IntentContent = serde_json::from_str(&intent_ev.content).expect("intent");
            let mut s = base.clone();
            s.intent = content;
            s.intent_id = event_id_from_nostr(&intent_ev.id);
            let tx = s.honest_tx();
            let ch1 = s.step1_for(&tx, &s.outputs, &alice);
            relay.challenge(&alice, &s.intent_id, &ch1).await;
            let r1 = relay.response(&mut seen).await;
            verify_response(&ch1, &r1, &alice);
            let ch2 = s.step2_for(&tx);
            relay.challenge(&alice, &s.intent_id, &ch2).await;
            let r2 = relay.response(&mut seen).await;
            verify_response(&ch2, &r2, &alice);
            let txid = tx.ark_txid();
            let entry = |vout: u32, owner: PubKey, amount: u64, sats: u64| VtxoEntry {
                vtxo: format!("{txid}:{vout}").parse().expect("vtxo"),
                owner,
                asset: Some(AssetRef::gbtc()),
                amount,
                sats,
            };
            let conf = Confirmation {
                v: 1,
                ark_txid: txid.to_string(),
                intents: vec![s.intent_id],
                spent: vec![VtxoEntry {
                    vtxo: s.alice_vtxo.vtxo,
                    owner: alice,
                    asset: Some(AssetRef::gbtc()),
                    amount: 5_000,
                    sats: 1_000,
                }],
                created: vec![
                    entry(0, s.outputs[0].owner, 1_000, 330),
                    entry(2, alice, 3_990, 1_000),
                ],
                preimage: None,
            };
            let ev = builders::confirmation(&relay.keys, &conf, &[s.outputs[0].owner, alice])
                .expect("confirmation");
            relay.transport.publish(&ev).await.expect("publish");
            (s.intent_id, txid)
        }
    };
    let script = tokio::spawn(script);
    let bob = ark_relay_wallet::testing::pk(&base.bob);
    let conf = wallet
        .send(bob, 1_000, AssetRef::gbtc())
        .await
        .expect("send completes");
    let (intent_id, txid) = script.await.expect("script");
    assert_eq!(conf.ark_txid, txid.to_string());
    assert_eq!(conf.intents, vec![intent_id]);
    let history = wallet.history();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].outcome,
        Outcome::Completed {
            ark_txid: txid.to_string()
        }
    );
    assert_eq!(
        history[0].challenges,
        vec!["step 1 signed", "step 2 signed"]
    );
    wallet.shutdown().await;
    nostr.shutdown();
}
