//! Every endpoint and error path, through `oneshot` on a real SQLite store.

use std::sync::Arc;

use ark_relay_core::{
    AssetAmount, AssetId, AssetType, Colour, DynStore, ErrorCode, EventId, NewAsset, NewVtxo,
    PubKey, Sats, SessionId, SessionRecord, SessionStatus, Tapscripts, UnixTime, VtxoId,
    VtxoStatus,
};
use ark_relay_store::testing::TestDb;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

/// x-only keys of G and 2G: valid curve points.
const ALICE: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const BOB: &str = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
const TXID: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const NOW: UnixTime = UnixTime(1_700_000_000);

fn info() -> ApiInfo {
    ApiInfo {
        name: "ark-relay".into(),
        version: "9.9.9".into(),
        pubkey: BOB.into(),
        npub: npub(&key(BOB)).unwrap_or_default(),
        relays: vec!["ws://127.0.0.1:7777".into()],
        kinds_consumed: vec![31500, 31510, 31512],
        encryption: vec!["nip44_v2".into(), "nip04".into()],
        transfer_fee: 10,
        land_fee_ppm: 1000,
        ark: Some(json!({"dust": 330, "network": "regtest"})),
        database: "sqlite".into(),
    }
}

fn key(hex: &str) -> PubKey {
    hex.parse().unwrap()
}

fn gbtc() -> AssetId {
    AssetId::from_bytes([7; 32])
}

async fn db() -> (TestDb, DynStore) {
    let db = TestDb::sqlite().await.unwrap();
    let store: DynStore = Arc::new(db.store.clone());
    (db, store)
}

/// A store with gBTC registered and two VTXOs of alice's (one coloured and
/// locked by a session, one plain).
async fn funded() -> (TestDb, DynStore) {
    let (db, store) = db().await;
    store
        .register_asset(
            &NewAsset {
                id: gbtc(),
                name: "Gateway BTC".into(),
                ticker: "gBTC".into(),
                asset_type: AssetType::RelayIssued,
                decimals: 8,
            },
            NOW,
        )
        .await
        .unwrap();
    let vtxo = |vout: u32, colour: Option<Colour>| NewVtxo {
        id: format!("{TXID}:{vout}").parse::<VtxoId>().unwrap(),
        owner: key(ALICE),
        sats: Sats::new(1000),
        colour,
        status: VtxoStatus::Assigned,
        tapscripts: Tapscripts(vec![vec![0x51], vec![0xac, 0x00]]),
        expires_at: Some(UnixTime(1_800_000_000)),
    };
    store
        .insert_vtxos(
            &[
                vtxo(
                    0,
                    Some(Colour {
                        asset: gbtc(),
                        amount: AssetAmount::new(5000),
                    }),
                ),
                vtxo(1, None),
            ],
            NOW,
        )
        .await
        .unwrap();
    let locked: VtxoId = format!("{TXID}:0").parse().unwrap();
    store
        .lock_vtxos(&[locked], &SessionId::from_bytes([9; 32]), NOW)
        .await
        .unwrap();
    (db, store)
}

fn app(store: DynStore) -> Router {
    router(ApiState::new(store, info()))
}

async fn call(app: Router, method: Method, path: &str) -> (StatusCode, Value) {
    let response = app
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {bytes:?}"));
    (status, json)
}

async fn get(app: Router, path: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path).await
}

#[track_caller]
fn assert_error(status: StatusCode, body: &Value, want_status: u16, code: ErrorCode) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], code.code(), "{body}");
    assert_eq!(body["error"]["name"], code.name(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn health_reports_database_and_backends() {
    let (db, store) = db().await;
    let (status, body) = get(app(store.clone()), "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "database": "sqlite", "backends": []})
    );

    let health = || {
        vec![
            BackendHealth::new("arkd", "closed", true),
            BackendHealth::new("lnd", "open", false),
        ]
    };
    let state = ApiState::new(store, info()).with_health(Arc::new(health));
    let (status, body) = get(router(state), "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["backends"],
        json!([
            {"name": "arkd", "state": "closed", "healthy": true},
            {"name": "lnd", "state": "open", "healthy": false},
        ])
    );
    db.destroy().await;
}

#[tokio::test]
async fn health_shows_the_last_reconciliation() {
    use ark_relay_core::reconcile::{ReconcileStatus, ReconcileStore, ReconciliationRun};
    let (db, store) = db().await;
    let runs: Arc<dyn ReconcileStore> = Arc::new(db.store.clone());
    let app = || router(ApiState::new(store.clone(), info()).with_reconciliation(runs.clone()));
    let (status, body) = get(app(), "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["reconciliation"],
        json!({"status": "never", "checked": 0, "differences": 0, "disputed": 0})
    );
    let run = ReconciliationRun {
        started_at: ark_relay_core::UnixTime(100),
        finished_at: ark_relay_core::UnixTime(102),
        checked: 7,
        in_flight: 0,
        differences: 2,
        disputed: 1,
        status: ReconcileStatus::Degraded,
        detail: "[]".into(),
    };
    runs.record_reconciliation(&run, Some(&[])).await.unwrap();
    let (status, body) = get(app(), "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok", "differences are not an outage");
    assert_eq!(
        body["reconciliation"],
        json!({"status": "degraded", "last_run_at": 102, "checked": 7, "differences": 2, "disputed": 1})
    );
    db.destroy().await;
}

#[tokio::test]
async fn health_is_503_when_the_database_is_gone() {
    let (db, store) = db().await;
    db.store.close().await;
    let (status, body) = get(app(store), "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "sqlite");
    assert_eq!(body["error"]["code"], 7001);
}

#[tokio::test]
async fn info_has_get_info_names_and_legacy_names() {
    let (db, store) = funded().await;
    let (status, body) = get(app(store), "/info").await;
    assert_eq!(status, StatusCode::OK);
    let i = info();
    assert_eq!(body["name"], "ark-relay");
    assert_eq!(body["version"], "9.9.9");
    assert_eq!(body["database"], "sqlite");
    // get_info names
    assert_eq!(body["pubkey"], BOB);
    assert_eq!(body["relays"], json!(i.relays));
    assert_eq!(body["kinds_consumed"], json!([31500, 31510, 31512]));
    assert_eq!(body["encryption"], json!(["nip44_v2", "nip04"]));
    assert_eq!(body["transfer_fee"], 10);
    assert_eq!(body["land_fee_ppm"], 1000);
    assert_eq!(body["ark"]["dust"], 330);
    // the names dev_smoke and the first /info used
    assert_eq!(body["relay_pubkey"], BOB);
    assert_eq!(body["relay_npub"], i.npub);
    assert!(i.npub.starts_with("npub1"));
    assert_eq!(body["nostr_relays"], json!(i.relays));
    assert_eq!(body["assets"][0]["ticker"], "gBTC");
    db.destroy().await;
}

#[tokio::test]
async fn info_keeps_serving_without_the_database() {
    let (db, store) = db().await;
    db.store.close().await;
    let (status, body) = get(app(store), "/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["relay_pubkey"], BOB);
    assert_eq!(body["assets"], Value::Null);
}

#[tokio::test]
async fn assets_lists_registered_assets() {
    let (db, store) = funded().await;
    let (status, body) = get(app(store), "/assets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"assets": [{
            "id": gbtc().to_string(),
            "arkade_asset_id": format!("{}0000", gbtc()),
            "taproot_asset_id": gbtc().to_string(),
            "ticker": "gBTC",
            "name": "Gateway BTC",
            "type": "relay_issued",
            "total_supply": 5000,
            "circulating_supply": 5000,
            "decimals": 8,
            "enabled": true,
        }]})
    );
    db.destroy().await;
}

/// gBTC issued on Ark: its control asset registered and held (1 unit).
async fn with_genesis(store: &DynStore) -> AssetId {
    let control = ark_relay_ark::asset::control_ledger_id(&gbtc());
    store
        .register_asset(
            &NewAsset {
                id: control,
                name: "gBTC control".into(),
                ticker: "gBTC.control".into(),
                asset_type: AssetType::Permissionless,
                decimals: 0,
            },
            NOW,
        )
        .await
        .unwrap();
    store
        .insert_vtxos(
            &[NewVtxo {
                id: format!("{TXID}:7").parse::<VtxoId>().unwrap(),
                owner: key(BOB),
                sats: Sats::new(330),
                colour: Some(Colour {
                    asset: control,
                    amount: AssetAmount::new(1),
                }),
                status: VtxoStatus::Assigned,
                tapscripts: Tapscripts(vec![vec![0x51]]),
                expires_at: None,
            }],
            NOW,
        )
        .await
        .unwrap();
    control
}

#[tokio::test]
async fn the_genesis_unit_and_the_control_asset_do_not_circulate() {
    let (db, store) = funded().await;
    let control = with_genesis(&store).await;
    let (status, body) = get(app(store.clone()), "/assets").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let find = |id: AssetId| {
        body["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id.to_string())
            .cloned()
            .unwrap()
    };
    let g = find(gbtc());
    assert_eq!(
        (&g["total_supply"], &g["circulating_supply"]),
        (&json!(5000), &json!(4999))
    );
    assert!(g.get("control_of").is_none());
    let c = find(control);
    assert_eq!(
        (&c["total_supply"], &c["circulating_supply"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(c["control_of"], gbtc().to_string());
    assert_eq!(c["arkade_asset_id"], format!("{}0001", gbtc()));
    let (_, info) = get(app(store.clone()), "/info").await;
    assert_eq!(
        info["assets"], body["assets"],
        "/info lists the same figures"
    );
    // Issued on Ark: its Taproot Asset is the linked one (none yet); a
    // control asset stands for none.
    assert!(g["taproot_asset_id"].is_null(), "{g}");
    assert!(c["taproot_asset_id"].is_null(), "{c}");
    let ramp: ark_relay_core::ramp::DynRampStore = Arc::new(db.store.clone());
    let taproot = AssetId::from_bytes([0x7a; 32]);
    ramp.link_taproot_asset(&gbtc(), &taproot, NOW)
        .await
        .unwrap();
    let linked = router(ApiState::new(store.clone(), self::info()).with_reserves(ramp));
    let (_, body) = get(linked, "/assets").await;
    let g = body["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == gbtc().to_string())
        .cloned()
        .unwrap();
    assert_eq!(g["taproot_asset_id"], taproot.to_string(), "{g}");
    let (_, body) = get(app(store), "/reserves").await;
    let reserves = body["reserves"].as_array().unwrap();
    assert_eq!(reserves.len(), 1, "a control asset backs nothing: {body}");
    assert_eq!(
        reserves[0]["circulating"], 4999,
        "the genesis unit is not backed"
    );
    db.destroy().await;
}

#[tokio::test]
async fn balances_by_hex_and_by_npub() {
    let (db, store) = funded().await;
    let want = json!({
        "pubkey": ALICE,
        "npub": npub(&key(ALICE)),
        "sats": 2000,
        "vtxo_count": 2,
        "assets": [{"asset_id": gbtc().to_string(), "ticker": "gBTC", "decimals": 8, "amount": 5000}],
    });
    let (status, body) = get(app(store.clone()), &format!("/balances/{ALICE}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, want);

    let npub = npub(&key(ALICE)).unwrap();
    let (status, body) = get(app(store.clone()), &format!("/balances/{npub}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, want);

    // Upper-case hex is the same key; a key never seen has zero balances.
    let (status, body) = get(
        app(store.clone()),
        &format!("/balances/{}", ALICE.to_uppercase()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sats"], 2000);
    let (status, body) = get(app(store), &format!("/balances/{BOB}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sats"], 0);
    assert_eq!(body["assets"], json!([]));
    db.destroy().await;
}

#[tokio::test]
async fn bad_keys_are_400_malformed() {
    let (db, store) = db().await;
    let not_a_point = "00".repeat(32);
    let mut nsec_like = npub(&key(ALICE)).unwrap();
    nsec_like.replace_range(..4, "nsec");
    let mut bad_checksum = npub(&key(ALICE)).unwrap();
    bad_checksum.pop();
    bad_checksum.push('q');
    let short_npub = {
        let hrp = bech32::Hrp::parse("npub").unwrap();
        bech32::encode::<bech32::Bech32>(hrp, &[1u8; 20]).unwrap()
    };
    for bad in [
        "xyz",
        "abcd",
        &not_a_point,
        &ALICE[..62],
        &nsec_like,
        &bad_checksum,
        &short_npub,
    ] {
        for endpoint in ["balances", "vtxos"] {
            let (status, body) = get(app(store.clone()), &format!("/{endpoint}/{bad}")).await;
            assert_error(status, &body, 400, ErrorCode::Malformed);
        }
    }
    db.destroy().await;
}

#[tokio::test]
async fn store_failures_are_503_backend_unavailable() {
    let (db, store) = db().await;
    db.store.close().await;
    let session = "ab".repeat(32);
    for path in [
        "/assets".to_owned(),
        format!("/balances/{ALICE}"),
        format!("/vtxos/{ALICE}"),
        format!("/sessions/{session}"),
    ] {
        let (status, body) = get(app(store.clone()), &path).await;
        assert_error(status, &body, 503, ErrorCode::BackendUnavailable);
        assert_eq!(body["error"]["message"], "the database is unavailable");
    }
}

#[tokio::test]
async fn vtxos_show_colour_expiry_lock_and_tapscripts() {
    let (db, store) = funded().await;
    let (status, body) = get(app(store), &format!("/vtxos/{ALICE}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pubkey"], ALICE);
    assert_eq!(
        body["vtxos"],
        json!([
            {
                "outpoint": format!("{TXID}:0"),
                "sats": 1000,
                "colour": {"asset_id": gbtc().to_string(), "ticker": "gBTC", "decimals": 8, "amount": 5000},
                "status": "assigned",
                "expires_at": 1_800_000_000,
                "locked": true,
                "tapscripts": ["51", "ac00"],
                "renewal": {"state": "none", "scheduled_at": null, "recoverable": false},
            },
            {
                "outpoint": format!("{TXID}:1"),
                "sats": 1000,
                "colour": null,
                "status": "assigned",
                "expires_at": 1_800_000_000,
                "locked": false,
                "tapscripts": ["51", "ac00"],
                "renewal": {"state": "none", "scheduled_at": null, "recoverable": false},
            },
        ])
    );
    db.destroy().await;
}

/// `/vtxos` shows each VTXO's renewal from its delegations: scheduled (when),
/// refused ("no renewal"), recoverable; `/info` the published renewal fee.
#[tokio::test]
async fn vtxos_show_renewal_scheduled_refused_and_recoverable() {
    use ark_relay_core::renewals::{DelegationRecord, DelegationStatus, RenewalStore};
    let (db, store) = funded().await;
    let row = |vtxo: String, recovery: bool, status| DelegationRecord {
        renewal_id: format!("{}:{vtxo}", if recovery { "recover" } else { "renew" }),
        vtxo,
        owner: ALICE.into(),
        recovery,
        status,
        challenge: "{}".into(),
        valid_at: UnixTime(1_799_000_000),
        vtxo_expires_at: UnixTime(1_800_000_000),
        job_id: None,
        new_vtxo: None,
        reason: None,
        notified_at: None,
        created_at: NOW,
        updated_at: NOW,
    };
    for r in [
        row(format!("{TXID}:0"), false, DelegationStatus::Asked),
        row(format!("{TXID}:1"), false, DelegationStatus::Asked),
        row(format!("{TXID}:1"), true, DelegationStatus::Asked),
    ] {
        db.store.insert_delegation(&r).await.unwrap();
    }
    db.store
        .move_delegation(
            &format!("renew:{TXID}:0"),
            DelegationStatus::Asked,
            DelegationStatus::Queued,
            Some("job"),
            None,
            None,
            NOW,
        )
        .await
        .unwrap();
    let state = ApiState::new(store, info()).with_renewals(Arc::new(db.store.clone()), 7);
    let (status, body) = call(
        router(state.clone()),
        Method::GET,
        &format!("/vtxos/{ALICE}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["vtxos"][0]["renewal"],
        json!({"state": "scheduled", "scheduled_at": 1_799_000_000, "recoverable": false})
    );
    assert_eq!(
        body["vtxos"][1]["renewal"],
        json!({"state": "asked", "scheduled_at": null, "recoverable": true})
    );
    let (_, info) = call(router(state), Method::GET, "/info").await;
    assert_eq!(info["renewal_fee_sats"], 7);
    db.destroy().await;
}

fn session_record() -> SessionRecord {
    SessionRecord {
        id: SessionId::from_bytes([3; 32]),
        user: key(ALICE),
        intent: EventId::from_bytes([3; 32]),
        status: SessionStatus::Failed,
        state: "failed".into(),
        current_step: None,
        steps_completed: vec!["sign_ark_tx".into()],
        created_at: NOW,
        updated_at: UnixTime(NOW.0 + 5),
        expires_at: UnixTime(NOW.0 + 900),
        step_deadline: Some(UnixTime(NOW.0 + 60)),
        error_code: Some(ErrorCode::SessionExpired),
        error_message: Some("no answer to sign_checkpoint_txs".into()),
        data: r#"{"psbt":"SECRET-PSBT"}"#.into(),
        batch_id: None,
        ark_txid: Some(TXID.parse().unwrap()),
        version: 0,
    }
}

#[tokio::test]
async fn sessions_show_progress_but_never_data() {
    let (db, store) = db().await;
    let record = session_record();
    store.create_session(&record).await.unwrap();
    let (status, body) = get(app(store.clone()), &format!("/sessions/{}", record.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "id": record.id.to_string(),
            "intent": record.intent.to_string(),
            "status": "failed",
            "state": "failed",
            "current_step": null,
            "steps_completed": ["sign_ark_tx"],
            "created_at": NOW.0,
            "updated_at": NOW.0 + 5,
            "expires_at": NOW.0 + 900,
            "step_deadline": NOW.0 + 60,
            "error_code": 5001,
            "error_name": "SESSION_EXPIRED",
            "error_message": "no answer to sign_checkpoint_txs",
            "ark_txid": TXID,
            "batch_id": null,
        })
    );
    assert!(!body.to_string().contains("SECRET-PSBT"));

    let (status, body) = get(
        app(store.clone()),
        &format!("/sessions/{}", "cd".repeat(32)),
    )
    .await;
    assert_error(status, &body, 404, ErrorCode::UnknownSession);

    for bad in ["123", "zz", &"ab".repeat(33)] {
        let (status, body) = get(app(store.clone()), &format!("/sessions/{bad}")).await;
        assert_error(status, &body, 400, ErrorCode::Malformed);
    }
    db.destroy().await;
}

#[tokio::test]
async fn errors_is_the_whole_table() {
    let (db, store) = db().await;
    let (status, body) = get(app(store), "/errors").await;
    assert_eq!(status, StatusCode::OK);
    let table = body["errors"].as_array().unwrap();
    assert_eq!(table.len(), ErrorCode::ALL.len());
    for (row, code) in table.iter().zip(ErrorCode::ALL) {
        assert_eq!(
            row,
            &json!({"code": code.code(), "name": code.name(), "message": code.message()})
        );
    }
    db.destroy().await;
}

#[tokio::test]
async fn unknown_paths_and_other_methods_are_refused() {
    let (db, store) = db().await;
    let (status, body) = get(app(store.clone()), "/nope").await;
    assert_error(status, &body, 404, ErrorCode::UnsupportedAction);
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (status, body) = call(app(store.clone()), method, "/info").await;
        assert_error(status, &body, 405, ErrorCode::UnsupportedAction);
    }
    db.destroy().await;
}

#[tokio::test]
async fn openapi_documents_every_route_and_nothing_else() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let paths = doc["paths"].as_object().unwrap();
    let routes: Vec<&str> = routes().iter().map(|(p, _)| *p).collect();
    for route in &routes {
        let ops = paths
            .get(*route)
            .unwrap_or_else(|| panic!("{route} missing from openapi.json"));
        assert!(ops.get("get").is_some(), "{route}: no get operation");
    }
    for path in paths.keys() {
        assert!(routes.contains(&path.as_str()), "{path} is not a route");
    }
    // Every $ref resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = OPENAPI_JSON;
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }

    // Served as is, and every documented path answers (not the 404 fallback).
    let (db, store) = funded().await;
    let (status, served) = get(app(store.clone()), "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, doc);
    for path in paths.keys().filter(|p| *p != "/metrics") {
        // (/metrics is text, tested in metrics.rs)
        // (settlement ids are integers; this store has no settlements: 2003)
        let id = if path.starts_with("/settlements/") {
            "1".to_owned()
        } else {
            "ab".repeat(32)
        };
        let concrete = path
            .replace("{pubkey}", ALICE)
            .replace("{id}", &id)
            .replace("{ark_txid}", TXID);
        let (status, body) = get(app(store.clone()), &concrete).await;
        assert!(
            status == StatusCode::OK
                || body["error"]["code"] == 5003
                || body["error"]["code"] == 2003,
            "{path}: {status} {body}"
        );
    }
    db.destroy().await;
}

#[tokio::test]
async fn reserves_show_circulating_gbtc_against_the_recorded_reserve() {
    use ark_relay_core::ramp::ReserveRecord;
    let (db, store) = funded().await;
    // Before lnd was read: circulating only.
    let (status, body) = get(app(store.clone()), "/reserves").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reserves"][0]["circulating"], 5000);
    assert!(body["reserves"][0]["reserve"].is_null());
    let ramp: ark_relay_core::ramp::DynRampStore = Arc::new(db.store.clone());
    ramp.record_reserve(&ReserveRecord {
        asset: gbtc(),
        lightning_sats: 4_000,
        onchain_sats: 500,
        updated_at: NOW,
    })
    .await
    .unwrap();
    let with = |store: DynStore| router(ApiState::new(store, info()).with_reserves(ramp.clone()));
    let (status, body) = get(with(store.clone()), "/reserves").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["reserves"][0];
    assert_eq!(r["ticker"], "gBTC");
    assert_eq!(r["reserve"], 4_500);
    assert_eq!(r["fully_backed"], false, "5 000 circulating against 4 500");
    ramp.record_reserve(&ReserveRecord {
        asset: gbtc(),
        lightning_sats: 5_000,
        onchain_sats: 0,
        updated_at: NOW,
    })
    .await
    .unwrap();
    let (_, body) = get(with(store), "/reserves").await;
    assert_eq!(body["reserves"][0]["fully_backed"], true);
    assert_eq!(body["reserves"][0]["updated_at"], NOW.0);
}
