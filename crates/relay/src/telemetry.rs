//! Tracing initialisation for the binary: logs go to **stderr** (stdout is for
//! the banner and command output), filtered by a `RUST_LOG`-style directive, as
//! human-readable text or JSON lines.
//!
//! Only `main` calls this, once; libraries never install a subscriber.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use ark_relay_nostr::QuietResets;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax
/// (`info`, `warn,ark_relay=debug`, …). A peer dropping its websocket without
/// a closing handshake is not logged at ERROR ([`QuietResets`]).
pub fn init(filter: &str, format: LogFormat) -> Result<()> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?
        .and(QuietResets);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let installed = match format {
        LogFormat::Pretty => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
