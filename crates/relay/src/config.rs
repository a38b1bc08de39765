//! The relay's configuration: one TOML file plus `ARK_RELAY_*` environment
//! overrides, layered over the embedded defaults.
//!
//! Precedence, lowest first: built-in defaults → the TOML file (`--config` /
//! `ARK_RELAY_CONFIG`) → environment variables `ARK_RELAY_<KEY>`, nested keys
//! joined by `__` (`ARK_RELAY_HTTP__LISTEN=0.0.0.0:8080`,
//! `ARK_RELAY_DATABASE_URL=mysql://…`). `ARK_RELAY_CONFIG` and the test
//! harness's `ARK_RELAY_TEST_*` variables are not configuration keys.
//!
//! Every section denies unknown fields, so a typo is an error, not a silently
//! ignored setting. Secrets are `env:`/`file:` references ([`SecretRef`]), and
//! passwords in URLs are redacted whenever a URL is shown ([`redact_url`]).
//!
//! This module only reads and validates; it must not open connections.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

mod settlement;
pub use settlement::SettlementSection;

mod lightning;
mod ops;
mod rounds;
pub use lightning::LightningConfig;
pub use ops::{InventoryConfig, KeysConfig};
pub use rounds::{RenewalSection, RoundsSection};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "ARK_RELAY_";

/// The whole configuration. See `relay.example.toml` for every key documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded defaults keep their files (SQLite database, keys).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `mysql://…`; empty means `sqlite://<data_dir>/relay.db`.
    pub database_url: String,
    /// `redis://…`; empty means the in-process queue.
    pub redis_url: String,
    /// Nostr relays (`wss://…`) to listen and publish on; empty means the
    /// in-process relay started by `dev`.
    pub nostr_relays: Vec<String>,
    /// The read-only HTTP API.
    pub http: HttpConfig,
    /// Logging defaults (the `--log` flag and `RUST_LOG` win over these).
    pub log: LogConfig,
    /// Fee policy (PRD §6).
    pub fees: FeesConfig,
    /// Signing-session timing (PRD §10.1).
    pub session: SessionConfig,
    /// arkd, the Ark server. Absent: not configured (dev uses the simulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ark: Option<ArkConfig>,
    /// lnd, the Lightning node. Absent: not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lnd: Option<DaemonConfig>,
    /// tapd, the Taproot Assets daemon. Absent: not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapd: Option<DaemonConfig>,
    /// Lifts and lands over Lightning (needs `[lnd]`, or `dev`'s simulator).
    pub lightning: LightningConfig,
    /// Roles and scale-out (`run`, `ingest`, `worker`, `scheduler`).
    pub run: RunConfig,
    /// Hourly L1 settlement.
    pub settlement: SettlementSection,
    /// The hot VTXO inventory monitor.
    pub inventory: InventoryConfig,
    /// Ark batch rounds (boarding, inventory renewal).
    pub rounds: RoundsSection,
    /// Delegated renewals of users' VTXOs.
    pub renewal: RenewalSection,
    /// Rotated-away relay keys and their grace periods.
    pub keys: KeysConfig,
    /// Conditional co-signing (liquidations of perpetual positions).
    pub conditional: ConditionalSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            redis_url: String::new(),
            nostr_relays: Vec::new(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            fees: FeesConfig::default(),
            session: SessionConfig::default(),
            ark: None,
            lnd: None,
            tapd: None,
            lightning: LightningConfig::default(),
            run: RunConfig::default(),
            settlement: SettlementSection::default(),
            inventory: InventoryConfig::default(),
            rounds: RoundsSection::default(),
            renewal: RenewalSection::default(),
            keys: KeysConfig::default(),
            conditional: ConditionalSection::default(),
        }
    }
}

/// `[conditional]`: conditional co-signing (docs/protocol.md, "Conditional co-signing").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionalSection {
    /// The oldest oracle price a liquidation may use, in seconds (8001 beyond).
    pub max_price_age_secs: u64,
}

impl Default for ConditionalSection {
    fn default() -> Self {
        Self {
            max_price_age_secs: 120,
        }
    }
}

/// `[run]`: roles, scale-out, leader election, shutdown and read-only mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Prefix of every Redis key (job stream, leader lock); processes that
    /// share work must share it.
    pub redis_prefix: String,
    /// Worker tasks per worker process.
    pub workers: usize,
    /// A worker renews the job in hand every third of this (a heartbeat); a
    /// job whose worker sent no heartbeat for this long (it died) is handed
    /// to another worker.
    pub reclaim_after_secs: u64,
    /// Deliveries of a failing job before it goes to the dead letters.
    pub max_attempts: u32,
    /// The scheduler's leader lease (ms): a dead leader is replaced within it.
    pub leader_ttl_ms: u64,
    /// On SIGTERM, how long in-flight jobs and ticks may still run (ms)
    /// before they are handed back.
    pub grace_ms: u64,
    /// How often arkd is probed (ms); while it does not answer, the relay is
    /// in read-only mode.
    pub probe_every_ms: u64,
    /// How long a probe waits for arkd (ms).
    pub probe_timeout_ms: u64,
    /// How often a kept intent is tried again in read-only mode (ms).
    pub deferred_retry_ms: u64,
    /// How often the Nostr relays are re-queried for missed events (ms).
    pub catch_up_every_ms: u64,
    /// Per-author rate limit at ingest: events handled per author key per
    /// window; beyond it one 9001 per window answers the author and the rest
    /// are refused silently (docs/operations.md). 0 turns the limit off.
    pub rate_limit_events: u32,
    /// The rate-limit window (seconds).
    pub rate_limit_window_secs: u64,
    /// Keys with their own event count per window instead of
    /// `rate_limit_events` (hex or npub → count; 0 exempts the key): a busy
    /// bot's key (docs/operations.md "Rate limits for busy keys").
    pub rate_limit_per_key: std::collections::BTreeMap<String, u32>,
    /// Jobs waiting or in flight in the queue before ingest holds back and
    /// lets its per-author fair order pick what goes next (0 = off).
    pub queue_high_water: u64,
    /// How often the scheduler leader reconciles the ledger with the arkd
    /// indexer (seconds; docs/operations.md "Reconciliation"). 0 turns the
    /// periodic run off (`ark-relay reconcile` still works, and disputed
    /// VTXOs are still refused).
    pub reconcile_every_secs: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            redis_prefix: "ark-relay".to_owned(),
            workers: 4,
            reclaim_after_secs: 3,
            max_attempts: 5,
            leader_ttl_ms: 10_000,
            grace_ms: 10_000,
            probe_every_ms: 5_000,
            probe_timeout_ms: 3_000,
            deferred_retry_ms: 5_000,
            catch_up_every_ms: 15_000,
            rate_limit_events: 120,
            rate_limit_window_secs: 10,
            rate_limit_per_key: std::collections::BTreeMap::new(),
            queue_high_water: 128,
            reconcile_every_secs: 600,
        }
    }
}

impl RunConfig {
    /// `rate_limit_per_key` with its keys parsed (hex or npub).
    pub fn rate_limit_keys(
        &self,
    ) -> std::result::Result<std::collections::HashMap<ark_relay_core::PubKey, u32>, String> {
        self.rate_limit_per_key
            .iter()
            .map(|(k, n)| {
                nostr::PublicKey::parse(k)
                    .ok()
                    .and_then(|pk| ark_relay_protocol::pubkey_from_nostr(&pk))
                    .map(|pk| (pk, *n))
                    .ok_or_else(|| {
                        format!("run.rate_limit_per_key: {k:?} is not a hex or npub public key")
                    })
            })
            .collect()
    }
}

/// `[http]`: the read-only HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// Output format of the logs (on stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable, coloured when stderr is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[log]`: logging defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`RUST_LOG` syntax), e.g. `info,ark_relay=debug`.
    pub filter: String,
    /// `pretty` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Pretty,
        }
    }
}

/// `[fees]`: what the relay charges (PRD §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeesConfig {
    /// Fixed fee per L2 intent, in gBTC base units (sats).
    pub transfer_fee_sats: u64,
    /// Land (off-ramp) fee in parts per million of the landed amount (1000 = 0.1 %).
    pub land_fee_ppm: u32,
}

impl Default for FeesConfig {
    fn default() -> Self {
        Self {
            transfer_fee_sats: 10,
            land_fee_ppm: 1000,
        }
    }
}

/// `[session]`: signing-session timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A whole signing session expires after this many seconds.
    pub expiry_secs: u64,
    /// Each signing step (one challenge → response) times out after this many seconds.
    pub step_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            expiry_secs: 900,
            step_timeout_secs: 60,
        }
    }
}

/// `[ark]`: the Ark server (arkd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArkConfig {
    /// arkd's gRPC URL, e.g. `http://127.0.0.1:7070`.
    pub url: String,
    /// The arkd at `url` is `ark-relay sim`'s simulator: the relay fills its
    /// VTXO inventory through the simulator's admin API (as `dev` does), and
    /// reads fee rates from the chain simulator behind `[lnd]`.
    #[serde(default)]
    pub simulator: bool,
}

/// `[lnd]` and `[tapd]`: a gRPC daemon with macaroon auth and a pinned TLS cert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// gRPC URL, e.g. `https://127.0.0.1:10009`.
    pub url: String,
    /// The macaroon, as `env:VAR` (hex) or `file:/path` (binary file).
    pub macaroon: SecretRef,
    /// The daemon's TLS certificate to pin, as `env:VAR` or `file:/path` (PEM).
    pub tls_cert: SecretRef,
}

/// Which database back end a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// MariaDB (or MySQL) server, for production.
    MariaDb,
}

impl DatabaseKind {
    /// `sqlite` or `mariadb`, as the store names its back ends.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::MariaDb => "mariadb",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which job queue the relay uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// In-process queue: one process, nothing to install (the default).
    InProcess,
    /// Redis Streams at this URL: workers on many hosts.
    Redis(String),
}

impl fmt::Display for QueueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueKind::InProcess => f.write_str("in-process"),
            QueueKind::Redis(url) => write!(f, "redis ({})", redact_url(url)),
        }
    }
}

impl Config {
    /// Loads the defaults, then `path` (which must exist if given), then the
    /// `ARK_RELAY_*` environment.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env_provider());
        let config: Config = figment.extract().map_err(|e| {
            // figment's errors can be several; show them all.
            let all: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", all.join("; "))
        })?;
        Ok(config)
    }

    /// The database URL in effect: `database_url`, or the SQLite file
    /// `<data_dir>/relay.db` when it is empty.
    pub fn database_url(&self) -> String {
        if self.database_url.trim().is_empty() {
            ark_relay_store::sqlite_url(&self.sqlite_path())
        } else {
            self.database_url.trim().to_owned()
        }
    }

    /// Where the default SQLite database lives.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("relay.db")
    }

    /// True when the database is the default SQLite file under `data_dir`.
    pub fn uses_default_database(&self) -> bool {
        self.database_url.trim().is_empty()
    }

    /// The back end the database URL selects.
    pub fn database_kind(&self) -> Result<DatabaseKind> {
        database_kind(&self.database_url())
    }

    /// The job queue in effect.
    pub fn queue_kind(&self) -> QueueKind {
        let url = self.redis_url.trim();
        if url.is_empty() {
            QueueKind::InProcess
        } else {
            QueueKind::Redis(url.to_owned())
        }
    }

    /// Checks everything that can be checked without connecting: URL schemes,
    /// that secret references resolve, and value ranges. Returns every problem.
    pub fn validate(&self) -> std::result::Result<(), Vec<String>> {
        let mut problems = self.settlement.problems();
        if let Err(e) = self.database_kind() {
            problems.push(e.to_string());
        }
        if let QueueKind::Redis(url) = self.queue_kind() {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                problems.push(format!(
                    "redis_url must start with redis:// or rediss://, got {}",
                    redact_url(&url)
                ));
            }
        }
        for relay in &self.nostr_relays {
            if !(relay.starts_with("ws://") || relay.starts_with("wss://")) {
                problems.push(format!(
                    "nostr_relays: {relay:?} is not a ws:// or wss:// URL"
                ));
            }
        }
        if self.session.expiry_secs == 0 || self.session.step_timeout_secs == 0 {
            problems.push("session.expiry_secs and session.step_timeout_secs must be > 0".into());
        }
        if self.session.step_timeout_secs > self.session.expiry_secs {
            problems.push("session.step_timeout_secs must not exceed session.expiry_secs".into());
        }
        let r = &self.run;
        if r.workers == 0 || r.leader_ttl_ms < 100 || r.probe_every_ms == 0 {
            problems.push(
                "run.workers must be > 0, run.leader_ttl_ms >= 100 and run.probe_every_ms > 0"
                    .into(),
            );
        }
        if let Err(e) = r.rate_limit_keys() {
            problems.push(e);
        }
        problems.extend(self.inventory.problems());
        for (i, k) in self.keys.previous.iter().enumerate() {
            if let Err(e) = k.sealed.check() {
                problems.push(format!("keys.previous[{i}].sealed: {e}"));
            }
        }
        if self.fees.land_fee_ppm > 1_000_000 {
            problems.push("fees.land_fee_ppm must be at most 1000000 (100 %)".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            problems.push(format!("log.filter {:?} is invalid: {e}", self.log.filter));
        }
        if let Some(ark) = &self.ark {
            check_grpc_url("ark.url", &ark.url, &mut problems);
        }
        for (name, daemon) in [("lnd", &self.lnd), ("tapd", &self.tapd)] {
            if let Some(d) = daemon {
                check_grpc_url(&format!("{name}.url"), &d.url, &mut problems);
                for (field, secret) in [("macaroon", &d.macaroon), ("tls_cert", &d.tls_cert)] {
                    if let Err(e) = secret.check() {
                        problems.push(format!("{name}.{field}: {e}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The configuration as TOML, safe to print: passwords in URLs are
    /// redacted (secrets are references and never inline values).
    pub fn to_redacted_toml(&self) -> Result<String> {
        let mut shown = self.clone();
        shown.database_url = redact_url(&shown.database_url);
        shown.redis_url = redact_url(&shown.redis_url);
        shown.nostr_relays = shown.nostr_relays.iter().map(|u| redact_url(u)).collect();
        toml::to_string_pretty(&shown).context("serialising configuration")
    }
}

fn check_grpc_url(field: &str, url: &str, problems: &mut Vec<String>) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        problems.push(format!(
            "{field} must be an http:// or https:// URL, got {url:?}"
        ));
    }
}

/// The environment provider: `ARK_RELAY_*`, `__` separates nested keys.
fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX)
        .ignore(&["config"])
        // The test harness's variables (ARK_RELAY_TEST_MYSQL_URL, …) are not config.
        .filter(|key| !key.as_str().to_ascii_lowercase().starts_with("test_"))
        .split("__")
}

/// The back end a database URL selects.
pub fn database_kind(url: &str) -> Result<DatabaseKind> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(DatabaseKind::Sqlite),
        "mysql" | "mariadb" => Ok(DatabaseKind::MariaDb),
        _ => bail!(
            "database_url must start with sqlite:// or mysql://, got {}",
            redact_url(url)
        ),
    }
}

/// Replaces the password in `scheme://user:password@host/…` with `***`.
/// URLs without a password are returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first '/', '?' or '#'; the userinfo at its last '@'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
