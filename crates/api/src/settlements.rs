//! `GET /settlements`, `GET /settlements/{id}` and
//! `GET /settlements/{id}/proof/{ark_txid}`: the hourly L1 commitments and the
//! Merkle inclusion proof of one ark transaction, with everything a user needs
//! to check it without trusting the relay (the construction is specified in
//! `ark_relay_core::merkle` and docs/protocol.md):
//!
//! 1. `leaf_hash = TH("ArkRelay/leaf", bytes.fromhex(ark_txid))`;
//! 2. walk `siblings` up from `index` among `leaf_count` leaves (a node
//!    without a right neighbour is promoted unchanged);
//! 3. `merkle_root = TH("ArkRelay/root", leaf_count as u64 BE ‖ top)`;
//! 4. find `l1_txid` in block `block_height` and check its output
//!    `OP_RETURN <merkle_root>`.

use ark_relay_core::merkle::{MerkleTree, Node, LEAF_TAG, NODE_TAG, ROOT_TAG};
use ark_relay_core::settlement::SettlementRecord;
use ark_relay_core::ErrorCode;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitcoin::Txid;
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiState};

/// Largest page of `GET /settlements`.
pub const MAX_PAGE: u32 = 100;
/// Default page of `GET /settlements`.
pub const DEFAULT_PAGE: u32 = 20;

/// A settlement as served.
#[derive(Debug, Serialize)]
pub(crate) struct SettlementBody {
    id: i64,
    /// `[from, to)` unix seconds.
    period: [i64; 2],
    status: &'static str,
    merkle_root: Option<Node>,
    l2_tx_count: u64,
    l1_txid: Option<String>,
    block_height: Option<u32>,
    fee_rate_sat_vb: Option<u64>,
    attempts: u32,
    notice_event_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<SettlementRecord> for SettlementBody {
    fn from(r: SettlementRecord) -> Self {
        Self {
            id: r.id,
            period: [r.period_start.0, r.period_end.0],
            status: r.status.as_str(),
            merkle_root: r.merkle_root,
            l2_tx_count: r.l2_tx_count,
            l1_txid: r.l1_txid.map(|t| t.to_string()),
            block_height: r.block_height,
            fee_rate_sat_vb: r.fee_rate_sat_vb,
            attempts: r.attempts,
            notice_event_id: r.notice_event_id.map(|e| e.to_string()),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        }
    }
}

/// Query of `GET /settlements`.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    /// Only settlements with a smaller id (the previous page's `next_before`).
    before: Option<i64>,
    /// Page size, 1..=100 (default 20).
    limit: Option<u32>,
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownVtxoOrAsset,
        message,
    )
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::malformed("settlement id must be a positive integer"))
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::malformed(format!("limit must be 1..={MAX_PAGE}")));
    }
    let rows = match &state.settlements {
        Some(s) => s.settlements(page.before, limit).await?,
        None => Vec::new(),
    };
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let settlements: Vec<SettlementBody> = rows.into_iter().map(SettlementBody::from).collect();
    Ok(Json(serde_json::json!({
        "settlements": settlements,
        "next_before": next_before,
    }))
    .into_response())
}

async fn record(state: &ApiState, id: i64) -> Result<SettlementRecord, ApiError> {
    let found = match &state.settlements {
        Some(s) => s.settlement(id).await?,
        None => None,
    };
    found.ok_or_else(|| not_found(format!("no settlement {id}")))
}

pub(crate) async fn one(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(SettlementBody::from(record(&state, id).await?)).into_response())
}

/// The proof answer.
#[derive(Debug, Serialize)]
struct ProofBody {
    settlement_id: i64,
    ark_txid: String,
    leaf_hash: Node,
    index: u64,
    leaf_count: u64,
    /// Sibling hashes from the leaf level up.
    siblings: Vec<Node>,
    merkle_root: Node,
    l1_txid: Option<String>,
    block_height: Option<u32>,
    status: &'static str,
    period: [i64; 2],
    /// How to recompute the root.
    construction: Construction,
}

#[derive(Debug, Serialize)]
struct Construction {
    hash: &'static str,
    leaf_tag: &'static str,
    node_tag: &'static str,
    root_tag: &'static str,
    leaf: &'static str,
    odd: &'static str,
    root: &'static str,
}

const CONSTRUCTION: Construction = Construction {
    hash: "BIP-340 tagged SHA-256: TH(tag, m) = SHA256(SHA256(tag) || SHA256(tag) || m)",
    leaf_tag: LEAF_TAG,
    node_tag: NODE_TAG,
    root_tag: ROOT_TAG,
    leaf: "TH(leaf_tag, 32 bytes of ark_txid as displayed hex); leaves sorted ascending",
    odd: "a node without a right sibling is promoted unchanged; at each level an odd index hashes TH(node_tag, sibling || node), an even one TH(node_tag, node || sibling)",
    root: "TH(root_tag, leaf_count as 8-byte big-endian || top node)",
};

pub(crate) async fn proof(
    State(state): State<ApiState>,
    Path((id, ark_txid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let txid: Txid = ark_txid
        .parse()
        .map_err(|_| ApiError::malformed("ark_txid must be 64 hex digits"))?;
    let rec = record(&state, id).await?;
    let Some(store) = &state.settlements else {
        return Err(not_found(format!("no settlement {id}")));
    };
    let tree = MerkleTree::new(store.settlement_txids(id).await?);
    let root = tree.root();
    if rec.merkle_root != Some(root) {
        tracing::error!(
            settlement = id,
            "HTTP API: stored Merkle root differs from the recomputed one"
        );
        return Err(ApiError::unavailable(
            "settlement data is inconsistent; try again later",
        ));
    }
    let Some(p) = tree.proof(&txid) else {
        let hint = match store.settlement_of(&txid).await? {
            Some(other) => format!("; it is committed by settlement {other}"),
            None => String::new(),
        };
        return Err(not_found(format!(
            "ark txid {txid} is not committed by settlement {id}{hint}"
        )));
    };
    Ok(Json(ProofBody {
        settlement_id: id,
        ark_txid: txid.to_string(),
        leaf_hash: ark_relay_core::merkle::leaf_hash(&txid),
        index: p.index,
        leaf_count: p.leaf_count,
        siblings: p.siblings,
        merkle_root: root,
        l1_txid: rec.l1_txid.map(|t| t.to_string()),
        block_height: rec.block_height,
        status: rec.status.as_str(),
        period: [rec.period_start.0, rec.period_end.0],
        construction: CONSTRUCTION,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ark_relay_core::merkle::MerkleProof;
    use ark_relay_core::settlement::{OpenedPeriod, SettlementStore};
    use ark_relay_core::{
        DynStore, L2Transaction, NewVtxo, RelayStore, Sats, Tapscripts, UnixTime, VtxoId,
        VtxoStatus,
    };
    use ark_relay_store::testing::TestDb;
    use axum::body::Body;
    use axum::http::Request;
    use bitcoin::hashes::Hash;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, ApiInfo};

    const OWNER: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const T0: i64 = 1_700_002_800;

    fn info() -> ApiInfo {
        ApiInfo {
            name: "ark-relay".into(),
            version: "0".into(),
            pubkey: OWNER.into(),
            npub: String::new(),
            relays: vec![],
            kinds_consumed: vec![],
            encryption: vec![],
            transfer_fee: 0,
            land_fee_ppm: 0,
            ark: None,
            database: "sqlite".into(),
        }
    }

    fn vtxo(id: VtxoId) -> NewVtxo {
        NewVtxo {
            id,
            owner: OWNER.parse().unwrap(),
            sats: Sats::new(1_000),
            colour: None,
            status: VtxoStatus::Assigned,
            tapscripts: Tapscripts(vec![vec![0x51]]),
            expires_at: None,
        }
    }

    /// Commits `n` L2 transactions in the hour starting at `T0`.
    async fn commit(store: &ark_relay_store::SqlStore, n: u8) -> Vec<Txid> {
        let mut out = Vec::new();
        for i in 0..n {
            let input = VtxoId::new(Txid::from_byte_array([200 + i; 32]), 0);
            store
                .insert_vtxos(&[vtxo(input)], UnixTime(T0))
                .await
                .unwrap();
            let ark_txid = Txid::from_byte_array([i + 1; 32]);
            let tx = L2Transaction {
                ark_txid,
                kind: "p2p_transfer".into(),
                session: None,
                inputs: vec![input],
                outputs: vec![vtxo(VtxoId::new(ark_txid, 0))],
                issued: vec![],
                burned: vec![],
                finalized_at: UnixTime(T0 + i64::from(i)),
                fee: ark_relay_core::Sats::ZERO,
            };
            store.commit_transaction(&tx).await.unwrap();
            out.push(ark_txid);
        }
        out
    }

    async fn get(app: axum::Router, path: &str) -> (StatusCode, Value) {
        let r = app
            .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn proof_of(body: &Value) -> (MerkleProof, Node) {
        let p: MerkleProof = serde_json::from_value(serde_json::json!({
            "leaf": body["ark_txid"],
            "index": body["index"],
            "leaf_count": body["leaf_count"],
            "siblings": body["siblings"],
        }))
        .unwrap();
        (p, body["merkle_root"].as_str().unwrap().parse().unwrap())
    }

    #[tokio::test]
    async fn settlements_and_proofs() {
        let db = TestDb::sqlite().await.unwrap();
        let store: DynStore = Arc::new(db.store.clone());
        let txids = commit(&db.store, 5).await;
        let OpenedPeriod::New(rec) = db
            .store
            .open_period(UnixTime(T0), UnixTime(T0 + 3600), UnixTime(T0 + 3700))
            .await
            .unwrap()
        else {
            panic!("period existed")
        };
        db.store
            .open_period(
                UnixTime(T0 + 3600),
                UnixTime(T0 + 7200),
                UnixTime(T0 + 7300),
            )
            .await
            .unwrap();
        let app = || {
            router(
                ApiState::new(store.clone(), info()).with_settlements(Arc::new(db.store.clone())),
            )
        };

        let (status, list) = get(app(), "/settlements").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["settlements"].as_array().unwrap().len(), 2);
        assert_eq!(list["next_before"], Value::Null);
        assert_eq!(list["settlements"][1]["id"], rec.id);
        assert_eq!(list["settlements"][0]["status"], "published", "empty hour");
        let (_, page) = get(app(), "/settlements?limit=1").await;
        assert_eq!(page["settlements"].as_array().unwrap().len(), 1);
        let next = page["next_before"].as_i64().unwrap();
        let (_, page2) = get(app(), &format!("/settlements?limit=1&before={next}")).await;
        assert_eq!(page2["settlements"][0]["id"], rec.id);
        let (status, body) = get(app(), "/settlements?limit=0").await;
        assert_eq!(
            (status, body["error"]["code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(1002))
        );

        let (status, one) = get(app(), &format!("/settlements/{}", rec.id)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["l2_tx_count"], 5);
        assert_eq!(one["period"], serde_json::json!([T0, T0 + 3600]));
        assert_eq!(one["status"], "pending");
        let root: Node = one["merkle_root"].as_str().unwrap().parse().unwrap();
        assert_eq!(root, MerkleTree::new(txids.clone()).root());
        let (status, body) = get(app(), "/settlements/999").await;
        assert_eq!(
            (status, body["error"]["code"].as_u64()),
            (StatusCode::NOT_FOUND, Some(2003))
        );
        let (status, body) = get(app(), "/settlements/x1").await;
        assert_eq!(
            (status, body["error"]["code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(1002))
        );

        for t in &txids {
            let (status, body) = get(app(), &format!("/settlements/{}/proof/{t}", rec.id)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body["leaf_hash"],
                ark_relay_core::merkle::leaf_hash(t).to_string()
            );
            assert_eq!(body["construction"]["leaf_tag"], "ArkRelay/leaf");
            let (p, r) = proof_of(&body);
            assert_eq!(r, root);
            assert!(p.verify(&root), "{body}");
            let mut bad = p.clone();
            bad.index = (bad.index + 1) % bad.leaf_count;
            assert!(!bad.verify(&root));
            let mut bad = p.clone();
            bad.siblings[0].0[5] ^= 4;
            assert!(!bad.verify(&root));
        }
        let stranger = Txid::from_byte_array([0x99; 32]);
        let (status, body) = get(app(), &format!("/settlements/{}/proof/{stranger}", rec.id)).await;
        assert_eq!(
            (status, body["error"]["code"].as_u64()),
            (StatusCode::NOT_FOUND, Some(2003))
        );
        let (status, body) = get(
            app(),
            &format!("/settlements/{}/proof/{}", rec.id + 1, txids[0]),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("committed by settlement {}", rec.id)),
            "{body}"
        );
        let (status, body) = get(app(), &format!("/settlements/{}/proof/xyz", rec.id)).await;
        assert_eq!(
            (status, body["error"]["code"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(1002))
        );

        // A relay without settlement serves none.
        let bare = router(ApiState::new(store.clone(), info()));
        let (status, list) = get(bare.clone(), "/settlements").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["settlements"], serde_json::json!([]));
        let (status, _) = get(bare, "/settlements/1").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        db.destroy().await;
    }
}
