//! Every builder signs a valid event with the tags the protocol requires, and
//! encrypted contents decrypt for the recipient in the scheme used.

use ark_relay_core::{ErrorCode, EventId, PubKey, SessionId};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{
    AssetRef, ChallengeType, Confirmation, FailureNotice, IntentContent, L1Commitment,
    PayloadToSign, SigningChallenge, SigningResponse, VERSION,
};
use ark_relay_protocol::crypto::{decrypt, Scheme};
use ark_relay_protocol::intent::verify;
use ark_relay_protocol::request::{ServiceRequest, ServiceResponse};
use ark_relay_protocol::{kinds, pubkey_from_nostr, Rejection};
use nostr::{Event, Keys};

fn pk(k: &Keys) -> PubKey {
    pubkey_from_nostr(&k.public_key()).expect("key")
}

fn tag_values(ev: &Event, name: &str) -> Vec<String> {
    ev.tags
        .iter()
        .filter_map(|t| match t.as_slice() {
            [k, v, ..] if k == name => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn open<T: serde::de::DeserializeOwned>(ev: &Event, reader: &Keys) -> (T, Scheme) {
    let (plain, scheme) =
        decrypt(reader.secret_key(), &ev.pubkey, &ev.content, &ev.tags).expect("decrypt");
    (serde_json::from_str(&plain).expect("json"), scheme)
}

#[test]
fn intent_and_requests_carry_p_d_and_expiration() {
    let (relay, alice) = (Keys::generate(), Keys::generate());
    let c = IntentContent::transfer(
        "act-9",
        &pk(&Keys::generate()),
        AssetRef::gbtc(),
        5,
        &pk(&relay),
        10,
        2_000_000_000,
    );
    let ev = builders::intent(&alice, &pk(&relay), &c).expect("intent");
    verify(&ev).expect("verifies");
    assert_eq!(ev.kind.as_u16(), kinds::INTENT);
    assert_eq!(tag_values(&ev, "p"), vec![relay.public_key().to_hex()]);
    assert_eq!(tag_values(&ev, "d"), vec!["act-9".to_owned()]);
    assert_eq!(tag_values(&ev, "expiration"), vec!["2000000000".to_owned()]);

    for scheme in [Scheme::Nip04, Scheme::Nip44] {
        let req = builders::service_request(
            &alice,
            &pk(&relay),
            &ServiceRequest::SyncState {},
            "req-1",
            scheme,
        )
        .expect("req");
        verify(&req).expect("verifies");
        assert_eq!(tag_values(&req, "d"), vec!["req-1".to_owned()]);
        let (got, used): (ServiceRequest, _) = open(&req, &relay);
        assert_eq!((got, used), (ServiceRequest::SyncState {}, scheme));
    }
}

#[test]
fn relay_events_tag_what_they_answer() {
    let (relay, alice) = (Keys::generate(), Keys::generate());
    let answered = EventId::from_bytes([3; 32]);
    let r = Rejection::new(ErrorCode::InputAlreadySpent, "spent");
    for scheme in [Scheme::Nip04, Scheme::Nip44] {
        let ev = builders::failure(&relay, &pk(&alice), &answered, &r, scheme).expect("failure");
        verify(&ev).expect("verifies");
        assert_eq!(ev.kind.as_u16(), kinds::FAILURE);
        assert_eq!(tag_values(&ev, "e"), vec![answered.to_string()]);
        assert_eq!(tag_values(&ev, "p"), vec![alice.public_key().to_hex()]);
        assert_eq!(
            tag_values(&ev, "d"),
            vec![builders::failure_d_tag(&answered)]
        );
        let (notice, used): (FailureNotice, _) = open(&ev, &alice);
        assert_eq!(
            (notice.code, notice.status.as_str(), used),
            (ErrorCode::InputAlreadySpent, "failure", scheme)
        );
    }

    let resp = ServiceResponse::ok(answered.to_string(), serde_json::json!({"vtxos": []}));
    let ev = builders::service_response(&relay, &pk(&alice), &answered, &resp, Scheme::Nip44)
        .expect("resp");
    let (got, _): (ServiceResponse, _) = open(&ev, &alice);
    assert_eq!(got, resp);

    let session = SessionId::from_bytes([4; 32]);
    let challenge = SigningChallenge {
        v: VERSION,
        session_id: session,
        step: 1,
        challenge_type: ChallengeType::SignArkTx,
        payload_to_sign: PayloadToSign {
            psbts: vec!["cHNidP8=".into()],
            sign: vec![],
            colour: vec![],
        },
        human_readable_context: "Step 1/2".into(),
        expires_at: 2_000_000_000,
    };
    let ev = builders::signing_challenge(&relay, &pk(&alice), &answered, &challenge, Scheme::Nip04)
        .expect("challenge");
    assert_eq!(tag_values(&ev, "d"), vec![format!("{session}:1")]);
    assert_eq!(tag_values(&ev, "e"), vec![answered.to_string()]);
    let (got, _): (SigningChallenge, _) = open(&ev, &alice);
    assert_eq!(got, challenge);

    let response = SigningResponse {
        v: VERSION,
        session_id: session,
        step: 1,
        signatures: vec![],
        reject: Some("no".into()),
    };
    let ev = builders::signing_response(&alice, &pk(&relay), &answered, &response, Scheme::Nip44)
        .expect("response");
    assert_eq!(tag_values(&ev, "d"), vec![format!("{session}:1:response")]);
    let (got, _): (SigningResponse, _) = open(&ev, &relay);
    assert_eq!(got, response);
}

#[test]
fn public_events() {
    let relay = Keys::generate();
    let (bob, carol) = (pk(&Keys::generate()), pk(&Keys::generate()));
    let conf = Confirmation {
        v: VERSION,
        ark_txid: "ab".repeat(32),
        intents: vec![EventId::from_bytes([1; 32]), EventId::from_bytes([2; 32])],
        spent: vec![],
        created: vec![],
        preimage: None,
    };
    let ev = builders::confirmation(&relay, &conf, &[bob, carol, bob]).expect("confirmation");
    verify(&ev).expect("verifies");
    assert_eq!(tag_values(&ev, "e").len(), 2);
    assert_eq!(tag_values(&ev, "p").len(), 2, "recipients deduplicated");
    assert_eq!(tag_values(&ev, "d"), vec!["ab".repeat(32)]);
    let parsed: Confirmation = serde_json::from_str(&ev.content).expect("json");
    assert_eq!(parsed, conf);

    let notice = L1Commitment {
        l1_txid: "cd".repeat(32),
        block_height: 101,
        merkle_root_of_l2_txs: "ef".repeat(32),
        l2_tx_count: 3,
        period: [0, 3600],
    };
    let ev = builders::l1_commitment(&relay, &notice, "settlement-1").expect("notice");
    assert_eq!(ev.kind.as_u16(), kinds::L1_COMMITMENT);
    assert_eq!(tag_values(&ev, "d"), vec!["settlement-1".to_owned()]);
}
