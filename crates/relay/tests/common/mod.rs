//! Helpers for the binary's integration tests: run `ark-relay` in a clean
//! environment, wait for `dev.json`, talk HTTP/1.1, stop with SIGTERM, and
//! create throw-away MariaDB databases. Every wait is bounded by a deadline.
#![allow(dead_code)] // each test file uses a different subset
#![allow(clippy::unwrap_used)] // test harness: a failed step should panic

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a `dev` process may take to come up (a cold SQLite/MariaDB start
/// on a loaded 2-core CI machine included).
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a graceful stop may take.
pub const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ark-relay")
}

/// `ark-relay <args>` with no `ARK_RELAY_*` configuration inherited from the
/// caller's environment, run in `cwd`.
pub fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(bin());
    for (key, _) in std::env::vars_os() {
        let key_str = key.to_string_lossy();
        if key_str.starts_with("ARK_RELAY_") || key_str == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(cwd).env("RUST_LOG", "info,sqlx=warn");
    cmd
}

/// The output of a finished command, as text.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion.
pub fn run(mut cmd: Command) -> Output {
    let out = cmd.output().expect("running ark-relay");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `ark-relay dev` process; killed on drop if still running.
pub struct DevProcess {
    pub child: Child,
    pub data_dir: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl DevProcess {
    /// Starts `ark-relay dev --data-dir <data_dir> --http-port 0` with extra env.
    pub fn spawn(data_dir: &Path, log_dir: &Path, envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(data_dir, log_dir, envs, &[])
    }

    /// Like [`DevProcess::spawn`] with extra `dev` arguments.
    pub fn spawn_with(
        data_dir: &Path,
        log_dir: &Path,
        envs: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        std::fs::create_dir_all(log_dir).unwrap();
        let n = unique_suffix();
        let stdout_path = log_dir.join(format!("dev-{n}.stdout"));
        let stderr_path = log_dir.join(format!("dev-{n}.stderr"));
        let mut cmd = command(log_dir);
        cmd.arg("dev")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-port", "0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let child = cmd.spawn().expect("spawning ark-relay dev");
        Self {
            child,
            data_dir: data_dir.to_owned(),
            stdout_path,
            stderr_path,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits until `dev.json` exists and names this process; returns it parsed.
    pub fn wait_ready(&mut self) -> serde_json::Value {
        let path = self.data_dir.join("dev.json");
        let pid = u64::from(self.child.id());
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dev exited early with {status}\n{}", self.logs());
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                let facts: serde_json::Value =
                    serde_json::from_str(&text).expect("dev.json is written atomically");
                if facts["pid"].as_u64() == Some(pid) {
                    return facts;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dev.json did not appear within {START_DEADLINE:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dev did not stop within {STOP_DEADLINE:?} of SIGTERM\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET: returns the status code and the body.
pub fn http_get(base_url: &str, path: &str) -> (u16, String) {
    let authority = base_url
        .strip_prefix("http://")
        .expect("http:// URL")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connecting to the HTTP server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("HTTP response with headers");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this tiny client does not decode chunked bodies"
    );
    (status, body.to_owned())
}

/// A string unique within this machine for a while: pid + nanoseconds.
pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{nanos:08x}", std::process::id())
}

/// `ARK_RELAY_TEST_MYSQL_URL` (server URL without database), if set.
pub fn mysql_server_url() -> Option<String> {
    std::env::var("ARK_RELAY_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim().trim_end_matches('/').to_owned())
}

/// A throw-away MariaDB database, named
/// `${ARK_RELAY_TEST_DB_PREFIX:-arkrelay_test}_<tag>_<unique>`.
pub struct TempMysqlDb {
    pub server_url: String,
    pub name: String,
}

impl TempMysqlDb {
    pub async fn create(server_url: &str, tag: &str) -> Self {
        use sqlx::Connection;
        let prefix =
            std::env::var("ARK_RELAY_TEST_DB_PREFIX").unwrap_or_else(|_| "arkrelay_test".into());
        let name = format!("{prefix}_{tag}_{}", unique_suffix());
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 64,
            "bad database name {name}"
        );
        let mut conn = sqlx::MySqlConnection::connect(server_url)
            .await
            .expect("connecting to MariaDB (ARK_RELAY_TEST_MYSQL_URL)");
        sqlx::query(&format!("CREATE DATABASE `{name}`"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        Self {
            server_url: server_url.to_owned(),
            name,
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }

    /// Number of tables in this database.
    pub async fn table_count(&self) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&self.server_url)
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.tables WHERE table_schema = ?",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.ok();
        n
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        let mut conn = sqlx::MySqlConnection::connect(&self.server_url)
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
    }
}
