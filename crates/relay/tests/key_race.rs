//! One identity, always: four roles (`ingest`, two `worker`s, `scheduler`)
//! started at the same instant on a fresh data dir without
//! `GATEWAY_NOSTR_PRIVATE_KEY` all come up under one relay pubkey — the one
//! in `relay.key` — 20 times in a row. The processes are real `ark-relay`
//! processes; their database is unreachable on purpose, so each one loads its
//! key, logs `starting pubkey=…`, and then waits for the database until the
//! test kills it (nothing else is needed to decide the identity).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 20;
const ROLES: [&str; 4] = ["ingest", "worker", "worker", "scheduler"];
const DEADLINE: Duration = Duration::from_secs(30);

/// The pubkey a role logged at start (`starting pubkey=<hex>`), if yet.
fn logged_pubkey(stderr: &Path) -> Option<String> {
    let text = std::fs::read_to_string(stderr).ok()?;
    let line = text.lines().find(|l| l.contains("starting"))?;
    let at = line.find("pubkey=")? + "pubkey=".len();
    let hex = line.get(at..at + 64)?;
    hex.chars()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| hex.to_owned())
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn four_roles_started_together_on_a_fresh_data_dir_share_one_key() {
    for trial in 0..TRIALS {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data"); // does not exist yet
        let config = dir.path().join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n\
                 database_url = \"mysql://root@127.0.0.1:1/unreachable\"\n\
                 nostr_relays = [\"ws://127.0.0.1:1\"]\n\
                 [ark]\nurl = \"http://127.0.0.1:1\"\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        // Build every command first, then start them back to back.
        let mut commands = Vec::new();
        let mut logs = Vec::new();
        for (i, role) in ROLES.iter().enumerate() {
            let log = dir.path().join(format!("{i}-{role}.stderr"));
            let mut cmd = common::command(dir.path());
            cmd.env_remove("GATEWAY_NOSTR_PRIVATE_KEY")
                .env_remove("GATEWAY_ENCRYPTION_KEY")
                .arg("--config")
                .arg(&config)
                .arg(role)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            commands.push(cmd);
            logs.push(log);
        }
        let children = Killed(
            commands
                .iter_mut()
                .map(|c| c.spawn().expect("spawning ark-relay"))
                .collect(),
        );
        let start = Instant::now();
        let pubkeys = loop {
            let seen: Vec<Option<String>> = logs.iter().map(|l| logged_pubkey(l)).collect();
            if seen.iter().all(Option::is_some) {
                break seen.into_iter().flatten().collect::<Vec<_>>();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "trial {trial}: not every role logged its key within {DEADLINE:?}: {seen:?}\n{}",
                logs.iter()
                    .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(children);
        let file = std::fs::read_to_string(data.join("relay.key")).unwrap();
        let on_disk = nostr::Keys::parse(file.trim())
            .unwrap()
            .public_key()
            .to_hex();
        assert!(
            pubkeys.iter().all(|p| *p == on_disk),
            "trial {trial}: roles signed as {pubkeys:?}, relay.key holds {on_disk}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "relay.key")
            .collect();
        assert!(
            leftovers.iter().all(|n| !n.contains("tmp")),
            "trial {trial}: temporary key files left behind: {leftovers:?}"
        );
    }
}
