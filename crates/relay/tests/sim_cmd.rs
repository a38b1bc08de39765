//! `ark-relay sim`: starts the three simulators, prints their endpoints, writes
//! lnd/tapd credentials like the daemons do, answers over gRPC, and stops on
//! SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use ark_relay_core::backends::ark::ArkServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_serves_arkd_lnd_and_tapd_until_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    let mut child = common::command(tmp.path())
        .arg("sim")
        .arg("--credentials-dir")
        .arg(&creds)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Press Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let lines = tokio::time::timeout(std::time::Duration::from_secs(60), lines)
        .await
        .expect("endpoints within 60 s")
        .unwrap();
    let url = |name: &str| {
        lines
            .iter()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|r| r.split_whitespace().next().unwrap().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
    };
    let arkd = url("arkd");
    assert!(url("lnd").starts_with("https://127.0.0.1:"));
    assert!(url("tapd").starts_with("https://127.0.0.1:"));
    for d in ["lnd", "tapd"] {
        assert!(creds.join(d).join("tls.cert").is_file(), "{d} tls.cert");
        assert!(
            creds.join(d).join("admin.macaroon").is_file(),
            "{d} macaroon"
        );
    }
    let client = ark_relay_grpc::arkd::ArkdClient::connect(arkd)
        .await
        .unwrap();
    let info = client.get_info().await.unwrap();
    assert_eq!(info.network, bitcoin::Network::Regtest);

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
