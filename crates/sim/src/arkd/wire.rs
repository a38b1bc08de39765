//! The simulator's wire forms: VTXOs as arkd's `Vtxo` / `IndexerVtxo`
//! messages, PSBTs as base64, rejections as arkd's gRPC status (a
//! `google.rpc.Status` holding an `ark.v1.ErrorDetails`), and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use bitcoin::{Psbt, Txid};
use prost::Message;
use tonic::Status;

use ark_relay_proto::ark::v1 as pb;

use super::error::code;
use super::{SimError, SimVtxo, VtxoState};

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn encode_psbt(p: &Psbt) -> String {
    B64.encode(p.serialize())
}

pub(crate) fn decode_psbt(s: &str) -> Result<Psbt, Status> {
    let bytes = B64.decode(s).map_err(|e| {
        status(&SimError::new(
            code::INVALID_ARGUMENT,
            "INVALID_ARK_PSBT",
            e.to_string(),
        ))
    })?;
    Psbt::deserialize(&bytes).map_err(|e| {
        status(&SimError::new(
            code::INVALID_ARGUMENT,
            "INVALID_ARK_PSBT",
            e.to_string(),
        ))
    })
}

/// The gRPC status arkd would send for `e`.
pub fn status(e: &SimError) -> Status {
    let details = pb::ErrorDetails {
        code: e.code,
        name: e.name.clone(),
        message: e.message.clone(),
        metadata: Default::default(),
    };
    let rpc_status = ark_relay_proto::google::rpc::Status {
        code: e.code,
        message: e.message.clone(),
        details: vec![prost_types::Any {
            type_url: "type.googleapis.com/ark.v1.ErrorDetails".into(),
            value: details.encode_to_vec(),
        }],
    };
    Status::with_details(
        tonic::Code::from_i32(e.code),
        format!("{}: {}", e.name, e.message),
        rpc_status.encode_to_vec().into(),
    )
}

/// arkd's `(is_spent, spent_by, ark_txid)`: `spent_by` is the spending
/// checkpoint tx, `ark_txid` the spending ark tx (as ark-core documents them).
fn spent_by(v: &SimVtxo) -> (bool, String, String) {
    match v.state {
        VtxoState::Spendable => (false, String::new(), String::new()),
        VtxoState::Pending(t) | VtxoState::Spent(t) => (
            true,
            v.spent_by.map(|c| c.to_string()).unwrap_or_default(),
            t.to_string(),
        ),
        VtxoState::Settled(_) => (
            true,
            v.spent_by.map(|c| c.to_string()).unwrap_or_default(),
            String::new(),
        ),
    }
}

fn settled_by(v: &SimVtxo) -> String {
    match v.state {
        VtxoState::Settled(c) => c.to_string(),
        _ => String::new(),
    }
}

/// arkd's `commitment_txids`: the batch it was made in, or the batches its
/// preconfirmed ancestors come from.
fn commitment_txids(v: &SimVtxo) -> Vec<String> {
    match v.commitment_txid {
        Some(c) => vec![c.to_string()],
        None => v.batches.iter().map(Txid::to_string).collect(),
    }
}

pub(crate) fn to_vtxo(v: &SimVtxo) -> pb::Vtxo {
    let (is_spent, spent_by, ark_txid) = spent_by(v);
    pb::Vtxo {
        outpoint: Some(pb::Outpoint {
            txid: v.outpoint.txid.to_string(),
            vout: v.outpoint.vout,
        }),
        amount: v.amount,
        script: v.script.to_hex_string(),
        created_at: v.created_at,
        expires_at: v.expires_at,
        commitment_txids: commitment_txids(v),
        is_preconfirmed: v.preconfirmed,
        is_swept: v.swept,
        is_unrolled: false,
        is_spent,
        spent_by,
        settled_by: settled_by(v),
        ark_txid,
        assets: v
            .assets
            .iter()
            .map(|(id, amount)| pb::Asset {
                asset_id: id.to_string(),
                amount: *amount,
            })
            .collect(),
        depth: v.depth,
    }
}

pub(crate) fn to_indexer_vtxo(v: &SimVtxo) -> pb::IndexerVtxo {
    let (is_spent, spent_by, ark_txid) = spent_by(v);
    pb::IndexerVtxo {
        outpoint: Some(pb::IndexerOutpoint {
            txid: v.outpoint.txid.to_string(),
            vout: v.outpoint.vout,
        }),
        created_at: v.created_at,
        expires_at: v.expires_at,
        amount: v.amount,
        script: v.script.to_hex_string(),
        is_preconfirmed: v.preconfirmed,
        is_swept: v.swept,
        is_unrolled: false,
        is_spent,
        spent_by,
        commitment_txids: commitment_txids(v),
        settled_by: settled_by(v),
        ark_txid,
        assets: v
            .assets
            .iter()
            .map(|(id, amount)| pb::IndexerAsset {
                asset_id: id.to_string(),
                amount: *amount,
            })
            .collect(),
        depth: v.depth,
    }
}

pub(crate) fn invalid(name: &str, message: impl Into<String>) -> Status {
    status(&SimError::new(code::INVALID_ARGUMENT, name, message))
}
