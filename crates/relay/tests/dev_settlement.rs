//! `ark-relay dev` settles: with a one-minute period, L2 transactions finalized
//! in the current minute are committed on the simulated chain by the lnd
//! simulator's wallet once the minute is over, the block is mined by dev, and
//! `GET /settlements` and the inclusion proofs show it. The transactions are
//! written straight into dev's SQLite ledger (the transfer flow has its own
//! tests). Waits poll against deadlines.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ark_relay_core::merkle::{MerkleProof, Node};
use common::{http_get, DevProcess};
use serde_json::Value;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_commits_a_period_and_serves_proofs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut dev = DevProcess::spawn(
        &data,
        tmp.path(),
        &[
            ("ARK_RELAY_SETTLEMENT__PERIOD_SECS", "60"),
            ("ARK_RELAY_SETTLEMENT__SETTLE_DELAY_SECS", "1"),
            ("ARK_RELAY_SETTLEMENT__TICK_SECS", "1"),
            ("ARK_RELAY_SETTLEMENT__DEV_BLOCK_SECS", "1"),
        ],
    );
    let facts = dev.wait_ready();
    let http = facts["http_url"].as_str().unwrap().to_owned();
    let db_url = facts["database"]["url"].as_str().unwrap().to_owned();

    // Three ark transactions finalized now (each must get an inclusion proof).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let txids: Vec<String> = (1..=3u8)
        .map(|i| format!("{:02x}", 0xc0 + i).repeat(32))
        .collect();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db_url).await.unwrap();
    for t in &txids {
        sqlx::query(
            "INSERT INTO l2_transactions (ark_txid, kind, inputs, outputs, finalized_at) \
             VALUES (?, 'p2p_transfer', '[]', '[]', ?)",
        )
        .bind(t.clone())
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    // The minute closes, the commitment is broadcast, mined and announced.
    let deadline = Instant::now() + Duration::from_secs(100);
    let settlement = loop {
        let (status, body) = http_get(&http, "/settlements");
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).unwrap();
        if let Some(s) = list["settlements"]
            .as_array()
            .unwrap()
            .iter()
            // dev's own start-up (gBTC's genesis on Ark, alice's demo lift,
            // inventory rounds) may land in the same minute: at least ours.
            .find(|s| {
                s["status"] == "published"
                    && s["period"][0].as_i64() == Some(now / 60 * 60)
                    && s["l2_tx_count"].as_u64().is_some_and(|n| n >= 3)
            })
        {
            break s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no published settlement: {body}\n{}",
            dev.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(settlement["period"][0].as_i64().unwrap(), now / 60 * 60);
    assert!(settlement["block_height"].as_u64().unwrap() > 0);
    assert_eq!(settlement["l1_txid"].as_str().unwrap().len(), 64);
    assert!(settlement["notice_event_id"].is_string());
    let root: Node = settlement["merkle_root"].as_str().unwrap().parse().unwrap();
    let id = settlement["id"].as_i64().unwrap();
    for t in &txids {
        let (status, body) = http_get(&http, &format!("/settlements/{id}/proof/{t}"));
        assert_eq!(status, 200, "{body}");
        let p: Value = serde_json::from_str(&body).unwrap();
        let proof: MerkleProof = serde_json::from_value(serde_json::json!({
            "leaf": p["ark_txid"], "index": p["index"],
            "leaf_count": p["leaf_count"], "siblings": p["siblings"],
        }))
        .unwrap();
        assert!(proof.verify(&root), "{body}");
        assert_eq!(p["l1_txid"], settlement["l1_txid"]);
    }
    assert!(dev.stderr().contains("31342 queued") || dev.stdout().contains("31342 queued"));
    dev.terminate();
}
