//! Ingest throughput on one core: what the relay does to every incoming event
//! before touching the database — verify (NIP-01 id + BIP-340 signature),
//! decrypt (NIP-44 v2 / NIP-04) and parse/validate — next to raw libsecp256k1
//! BIP-340 verification measured in the same run (DESIGN.md §8: ingest must
//! reach ≥ 50 % of the raw verify rate).
//!
//! Run: `cargo bench -p ark-relay-protocol --bench ingest` (optionally
//! `-- <events>`, default 4000). Single-threaded: the figures are per core.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use ark_relay_core::{SessionId, UnixTime};
use ark_relay_protocol::builders;
use ark_relay_protocol::content::{
    AssetRef, IntentContent, SignatureEntry, SigningResponse, VERSION,
};
use ark_relay_protocol::crypto::{DmCipher, Scheme};
use ark_relay_protocol::intent::{validate_intent, verify, IntentPolicy};
use ark_relay_protocol::pubkey_from_nostr;
use bitcoin::secp256k1::{schnorr, Message, Secp256k1};
use nostr::{Event, Keys};

const WALLETS: usize = 50;

fn rate(label: &str, n: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    let secs = start.elapsed().as_secs_f64();
    let per_s = n as f64 / secs;
    println!(
        "{label:<48} {per_s:>10.0} events/s  ({:.1} µs/event)",
        1e6 / per_s
    );
    per_s
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(4000);
    let relay = Keys::generate();
    let relay_pk = pubkey_from_nostr(&relay.public_key()).unwrap();
    let wallets: Vec<Keys> = (0..WALLETS).map(|_| Keys::generate()).collect();
    let bob = pubkey_from_nostr(&Keys::generate().public_key()).unwrap();
    let expires = UnixTime::now().0 + 600;
    let policy = IntentPolicy::new(relay_pk);

    let intents: Vec<Event> = (0..n)
        .map(|i| {
            let c = IntentContent::transfer(
                format!("b-{i}"),
                &bob,
                AssetRef::gbtc(),
                1_000,
                &relay_pk,
                10,
                expires,
            );
            builders::intent(&wallets[i % WALLETS], &relay_pk, &c).unwrap()
        })
        .collect();
    let response = |i: usize| SigningResponse {
        v: VERSION,
        session_id: SessionId::from_bytes([i as u8; 32]),
        step: 1,
        signatures: vec![SignatureEntry {
            psbt_index: 0,
            input_index: 0,
            sig: "ab".repeat(64),
        }],
        reject: None,
    };
    let dms = |scheme: Scheme, fresh: bool| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let k = if fresh {
                    Keys::generate()
                } else {
                    wallets[i % WALLETS].clone()
                };
                let intent = ark_relay_core::EventId::from_bytes([1; 32]);
                builders::signing_response(&k, &relay_pk, &intent, &response(i), scheme).unwrap()
            })
            .collect()
    };
    let nip44 = dms(Scheme::Nip44, false);
    let nip04 = dms(Scheme::Nip04, false);
    let nip44_fresh = dms(Scheme::Nip44, true);

    let secp = Secp256k1::verification_only();
    let raw: Vec<(
        schnorr::Signature,
        Message,
        bitcoin::secp256k1::XOnlyPublicKey,
    )> = intents
        .iter()
        .map(|e| {
            let sig = schnorr::Signature::from_slice(e.sig.as_ref()).unwrap();
            let msg = Message::from_digest(e.id.to_bytes());
            (sig, msg, e.pubkey.xonly().unwrap())
        })
        .collect();

    println!("ingest benchmark: {n} events per case, {WALLETS} wallets, one thread\n");
    let raw_rate = rate("raw libsecp256k1 BIP-340 verify", n, || {
        for (sig, msg, pk) in &raw {
            black_box(secp.verify_schnorr(sig, msg, pk).is_ok());
        }
    });
    rate("NIP-01 id + signature (Event::verify)", n, || {
        for e in &intents {
            black_box(verify(e).is_ok());
        }
    });
    let now = UnixTime::now();
    let intent_rate = rate("31510 intent: verify + validate", n, || {
        for e in &intents {
            verify(e).unwrap();
            black_box(validate_intent(e, &policy, now).unwrap());
        }
    });
    let dm_rate = |label: &str, events: &[Event]| {
        let cipher = DmCipher::new(relay.secret_key().clone());
        rate(label, n, || {
            for e in events {
                verify(e).unwrap();
                let (plain, _) = cipher.decrypt(&e.pubkey, &e.content, &e.tags).unwrap();
                black_box(serde_json::from_str::<SigningResponse>(&plain).unwrap());
            }
        })
    };
    let r44 = dm_rate("31512 NIP-44: verify + decrypt + parse", &nip44);
    let r04 = dm_rate("31512 NIP-04: verify + decrypt + parse", &nip04);
    let r44_fresh = dm_rate(
        "31512 NIP-44, new sender each event (no cache)",
        &nip44_fresh,
    );

    println!();
    for (label, r) in [
        ("intent", intent_rate),
        ("NIP-44 DM", r44),
        ("NIP-04 DM", r04),
        ("NIP-44 DM, uncached", r44_fresh),
    ] {
        println!(
            "ratio {label:<22} {:>5.1} % of raw verify",
            100.0 * r / raw_rate
        );
    }
}
