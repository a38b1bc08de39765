//! The malformed-input corpus (`tests/data/malformed.json`): every case is sent
//! to a running relay the way a wallet (or a non-verifying Nostr relay) would,
//! and must come back as a 31341 with its documented code, received by the
//! author over a real websocket relay — and change nothing else.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use ark_relay_core::{ErrorCode, UnixTime};
use ark_relay_engine::ingest::IngestOutcome;
use ark_relay_protocol::crypto::{encrypt, Scheme};
use ark_relay_protocol::{event_id_from_nostr, kinds, pubkey_from_nostr};
use ark_relay_store::testing::TestDb;
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, PublicKey, Tag, Timestamp};
use serde_json::Value;

use common::{dev_relay, start_relay, Wallet};

struct Env {
    relay: PublicKey,
    bob: PublicKey,
    now: i64,
}

fn substitute(v: &mut Value, env: &Env) {
    match v {
        Value::String(s) => {
            if s == "$relay" {
                *s = env.relay.to_hex();
            } else if s == "$bob" {
                *s = env.bob.to_hex();
            } else if let Some(n) = s.strip_prefix("$now+") {
                *v = Value::from(env.now + n.parse::<i64>().expect("offset"));
            } else if let Some(n) = s.strip_prefix("$now-") {
                *v = Value::from(env.now - n.parse::<i64>().expect("offset"));
            } else if let Some(n) = s.strip_prefix("$big:") {
                *s = "x".repeat(n.parse().expect("size"));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, env)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, env)),
        _ => {}
    }
}

/// Sets a JSON-pointer path; an index equal to an array's length appends.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    let target = if parent.is_empty() {
        Some(&mut *root)
    } else {
        root.pointer_mut(parent)
    };
    match target.expect("parent exists") {
        Value::Object(o) => {
            o.insert(last.to_owned(), value);
        }
        Value::Array(a) => {
            let i: usize = last.parse().expect("index");
            if i == a.len() {
                a.push(value);
            } else {
                a[i] = value;
            }
        }
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn remove(root: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    let target = if parent.is_empty() {
        Some(&mut *root)
    } else {
        root.pointer_mut(parent)
    };
    match target.expect("parent exists") {
        Value::Object(o) => {
            o.remove(last);
        }
        Value::Array(a) => {
            a.remove(last.parse::<usize>().expect("index"));
        }
        other => panic!("cannot remove {pointer} from {other}"),
    }
}

fn template(action_id: &str, env: &Env) -> Value {
    serde_json::json!({
        "v": 1, "action_id": action_id, "type": "p2p_transfer",
        "outputs": [
            {"recipient": env.bob.to_hex(), "asset": "gBTC", "amount": 1000},
            {"recipient": env.relay.to_hex(), "asset": "gBTC", "amount": 10, "role": "fee"}
        ],
        "expires_at": env.now + 600
    })
}

fn tamper(event: &Event, how: &str) -> Event {
    let mut json: Value = serde_json::from_str(&event.as_json()).expect("json");
    match how {
        "sig" => {
            let sig = json["sig"].as_str().expect("sig").to_owned();
            let flipped = if sig.starts_with('0') { "1" } else { "0" };
            json["sig"] = Value::String(format!("{flipped}{}", &sig[1..]));
        }
        "id" => {
            json["content"] = Value::String(format!("{} ", event.content));
        }
        other => panic!("unknown tamper {other}"),
    }
    Event::from_json(json.to_string()).expect("still parses")
}

/// Builds the intent of a case (content edits, tags, created_at).
fn intent_event(case: &Value, alice: &Keys, env: &Env, action_id: &str) -> Event {
    let content = match case.get("content") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            let mut c = template(action_id, env);
            if let Some(Value::Object(sets)) = case.get("set") {
                for (ptr, v) in sets {
                    let mut v = v.clone();
                    substitute(&mut v, env);
                    set(&mut c, ptr, v);
                }
            }
            if let Some(Value::Array(rm)) = case.get("remove") {
                for ptr in rm {
                    remove(&mut c, ptr.as_str().expect("pointer"));
                }
            }
            let mut s = c.to_string();
            if let Some(Value::Array(r)) = case.get("raw_replace") {
                s = s.replace(r[0].as_str().expect("from"), r[1].as_str().expect("to"));
            }
            s
        }
    };
    let tags = case.get("tags").cloned().unwrap_or(Value::Null);
    let p = match tags.get("p").and_then(Value::as_str) {
        Some("$bob") => env.bob,
        _ => env.relay,
    };
    let mut t = vec![Tag::public_key(p)];
    match tags.get("d") {
        Some(Value::Null) => {}
        Some(Value::String(d)) => t.push(Tag::identifier(d.clone())),
        _ => t.push(Tag::identifier(action_id)),
    }
    let mut b = EventBuilder::new(Kind::from(kinds::INTENT), content).tags(t);
    if let Some(Value::String(c)) = case.get("created_at") {
        let mut v = Value::String(c.clone());
        substitute(&mut v, env);
        b = b.custom_created_at(Timestamp::from(v.as_i64().expect("time") as u64));
    }
    b.sign_with_keys(alice).expect("sign")
}

fn dm(kind: u16, plaintext: &str, cipher: &str, alice: &Keys, env: &Env) -> Event {
    let content = match cipher {
        "raw" => plaintext.to_owned(),
        "nip04" => encrypt(alice.secret_key(), &env.relay, plaintext, Scheme::Nip04).expect("enc"),
        "wrong-key" => encrypt(
            alice.secret_key(),
            &Keys::generate().public_key(),
            plaintext,
            Scheme::Nip44,
        )
        .expect("enc"),
        _ => encrypt(alice.secret_key(), &env.relay, plaintext, Scheme::Nip44).expect("enc"),
    };
    let scheme = if cipher == "nip04" {
        Scheme::Nip04
    } else {
        Scheme::Nip44
    };
    let mut tags = vec![
        Tag::public_key(env.relay),
        Tag::identifier(format!("dm-{}", rand_id())),
    ];
    if cipher != "raw" {
        tags.push(scheme.tag());
    }
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .sign_with_keys(alice)
        .expect("sign")
}

fn rand_id() -> String {
    Keys::generate().public_key().to_hex()[..16].to_owned()
}

fn plaintext(case: &Value) -> String {
    match case.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => panic!("DM case needs content"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_malformed_input_gets_its_code_over_the_relay_and_changes_nothing() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("data/malformed.json")).expect("corpus parses");
    assert!(cases.len() >= 60, "the corpus has at least 60 cases");

    let db = TestDb::mariadb()
        .await
        .expect("MariaDB (scripts/test starts it)");
    let nostr = dev_relay().await;
    let relay = start_relay(db, nostr.clone()).await;
    let alice_wallet = Wallet::connect(nostr.url()).await;
    let alice = alice_wallet.keys.clone();
    let env = Env {
        relay: relay.keys.public_key(),
        bob: Keys::generate().public_key(),
        now: UnixTime::now().0,
    };

    // (answered event id, expected code, case name, inner intent ids that must leave no trace)
    let mut expected: Vec<(nostr::EventId, u16, String, Vec<nostr::EventId>)> = Vec::new();
    let mut ignored = 0;
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().expect("name").to_owned();
        let action_id = format!("case-{i}");
        let event = match case["event"].as_str().expect("event") {
            "intent" => {
                if case.get("replay").is_some() {
                    let first = intent_event(case, &alice, &env, &action_id);
                    alice_wallet.publish(&first).await;
                    let id = event_id_from_nostr(&first.id).to_string();
                    let store = relay.store.clone();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                    while store.job(&id).await.expect("job").is_none() {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "first intent not accepted"
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // Same action, new event id (different created_at/content order).
                    let mut c: Value = serde_json::from_str(&first.content).expect("json");
                    c["expires_at"] = Value::from(env.now + 601);
                    EventBuilder::new(Kind::from(kinds::INTENT), c.to_string())
                        .tags([
                            Tag::public_key(env.relay),
                            Tag::identifier(action_id.clone()),
                        ])
                        .sign_with_keys(&alice)
                        .expect("sign")
                } else {
                    let e = intent_event(case, &alice, &env, &action_id);
                    match case.get("tamper").and_then(Value::as_str) {
                        Some(how) => tamper(&e, how),
                        None => e,
                    }
                }
            }
            "request" => dm(
                kinds::SERVICE_REQUEST,
                &plaintext(case),
                case.get("cipher")
                    .and_then(Value::as_str)
                    .unwrap_or("nip44"),
                &alice,
                &env,
            ),
            "response" => dm(
                kinds::SIGNING_RESPONSE,
                &plaintext(case),
                "nip44",
                &alice,
                &env,
            ),
            "batch" => {
                let inner = intent_event(case, &alice, &env, &action_id);
                let inner = match case.get("tamper").and_then(Value::as_str) {
                    Some(how) => tamper(&inner, how),
                    None => inner,
                };
                let req = serde_json::json!({"action": "submit_batch", "batch_id": action_id, "intents": [serde_json::from_str::<Value>(&inner.as_json()).expect("json")]});
                let outer = dm(
                    kinds::SERVICE_REQUEST,
                    &req.to_string(),
                    "nip44",
                    &alice,
                    &env,
                );
                expected.push((
                    outer.id,
                    case["expect"].as_u64().expect("code") as u16,
                    name.clone(),
                    vec![inner.id],
                ));
                alice_wallet.publish(&outer).await;
                continue;
            }
            other => panic!("unknown event type {other}"),
        };
        let direct = case.get("deliver").and_then(Value::as_str) == Some("direct");
        match &case["expect"] {
            Value::String(s) if s == "ignored" => {
                let out = relay.ingestor.handle(event.clone()).await.expect("ingest");
                assert!(matches!(out, IngestOutcome::Ignored(_)), "{name}: {out:?}");
                let id = event_id_from_nostr(&event.id);
                assert!(
                    relay.store.processed_event(&id).await.expect("p").is_none(),
                    "{name}"
                );
                ignored += 1;
            }
            code => {
                let code = code.as_u64().expect("code") as u16;
                if direct {
                    // As delivered by a Nostr relay that does not verify events.
                    let out = relay.ingestor.handle(event.clone()).await.expect("ingest");
                    assert_eq!(
                        out,
                        IngestOutcome::Rejected(ErrorCode::from_code(code).expect("code")),
                        "{name}"
                    );
                } else {
                    alice_wallet.publish(&event).await;
                }
                expected.push((event.id, code, name, vec![]));
            }
        }
    }
    assert_eq!(ignored, 2);

    let want: HashMap<nostr::EventId, (u16, String)> = expected
        .iter()
        .map(|(id, code, name, _)| (*id, (*code, name.clone())))
        .collect();
    alice_wallet
        .wait_for(
            "a 31341 for every case",
            Duration::from_secs(120),
            |events| {
                let answered: std::collections::HashSet<_> = events
                    .iter()
                    .filter(|e| e.kind.as_u16() == kinds::FAILURE)
                    .filter_map(|e| e.tags.event_ids().next().copied())
                    .collect();
                want.keys().all(|id| answered.contains(id))
            },
        )
        .await;

    let failures = alice_wallet.failures().await;
    let mut wrong = Vec::new();
    for (id, code, name, inner) in &expected {
        let notices = &failures[id];
        if notices.len() != 1 || notices[0].code.code() != *code {
            wrong.push(format!(
                "{name}: expected {code}, got {:?}",
                notices
                    .iter()
                    .map(|n| (n.code.code(), n.message.clone()))
                    .collect::<Vec<_>>()
            ));
            continue;
        }
        let pid = event_id_from_nostr(id);
        let rec = relay
            .store
            .processed_event(&pid)
            .await
            .expect("p")
            .expect("recorded");
        assert_eq!(
            rec.outcome.map(|c| c.code()),
            Some(*code),
            "{name}: recorded outcome"
        );
        assert!(
            relay
                .store
                .job(&pid.to_string())
                .await
                .expect("job")
                .is_none(),
            "{name}: a rejected event has no job"
        );
        for inner in inner {
            let iid = event_id_from_nostr(inner);
            assert!(
                relay
                    .store
                    .processed_event(&iid)
                    .await
                    .expect("p")
                    .is_none(),
                "{name}: inner intent untouched"
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "cases with the wrong code:\n{}",
        wrong.join("\n")
    );

    // No intent of a rejected case was recorded (only the replay's original).
    let alice_pk = pubkey_from_nostr(&alice.public_key()).expect("key");
    for (i, case) in cases.iter().enumerate() {
        let stored = relay
            .store
            .intent_by_action(&alice_pk, &format!("case-{i}").parse().expect("action"))
            .await
            .expect("intent");
        assert_eq!(
            stored.is_some(),
            case.get("replay").is_some(),
            "{}",
            case["name"]
        );
    }
    alice_wallet.stop();
    relay.stop().await;
}
