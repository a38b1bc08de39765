//! Tracing initialisation for the binary: logs go to **stderr** (stdout is for
//! the banner and command output), filtered by a `RUST_LOG`-style directive, as
//! human-readable text or JSON lines.
//!
//! Only `main` calls this, once; libraries never install a subscriber.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax
/// (`info`, `warn,ark_relay=debug`, …).
pub fn init(filter: &str, format: LogFormat) -> Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
