//! The process's stop signal: the first Ctrl-C (SIGINT) or SIGTERM.
//!
//! Long-running commands await [`signal`] and then shut their services down
//! gracefully. This module only observes signals; it never exits the process.

use anyhow::{Context, Result};

/// Which signal asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (service managers, `kill`).
    Terminate,
}

impl StopSignal {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// Installs the signal handlers now and returns a future that resolves on the
/// first stop signal. Install it early, so a signal that arrives during start-up
/// is not lost.
pub fn install() -> Result<impl std::future::Future<Output = StopSignal>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => StopSignal::Interrupt,
                _ = term.recv() => StopSignal::Terminate,
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            // If the handler cannot be installed, never resolve: the process
            // then stops only by being killed, which is what it did before.
            match tokio::signal::ctrl_c().await {
                Ok(()) => StopSignal::Interrupt,
                Err(_) => std::future::pending().await,
            }
        })
    }
}
