//! # ark-relay-sim
//!
//! Simulators of the relay's back ends, each a tonic server on 127.0.0.1 built
//! from this repo's own `.proto` files (field-compatible with the real daemons),
//! so that tests and `ark-relay dev` exercise the real gRPC clients over real
//! sockets. They behave like the daemons on the points the relay depends on and
//! are deterministic apart from what the daemons randomise themselves.
//!
//! This crate is test and development infrastructure: it may spawn its server
//! tasks ([`SimStack::start`]); it must never be a dependency of production
//! adapters.

pub mod arkd;
pub mod chain;
pub mod lnd;
pub mod tapd;

pub use arkd::{ArkdSim, ArkdSimConfig, SimServer};

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// arkd simulator parameters.
    pub arkd: ArkdSimConfig,
    /// Port of the arkd simulator (0 = any free port).
    pub arkd_port: u16,
}

/// Where the started simulators listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEndpoints {
    /// arkd (ArkService, IndexerService, ArkdSimAdmin): `http://127.0.0.1:<port>`.
    pub arkd: String,
}

/// Errors starting the simulators.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A bad configuration.
    #[error(transparent)]
    Config(#[from] arkd::ConfigError),
    /// Binding a socket failed.
    #[error("cannot bind simulator socket")]
    Io(#[from] std::io::Error),
}

/// The running simulators; dropping it stops them.
#[derive(Debug)]
pub struct SimStack {
    /// The arkd simulator (shared state with the server).
    pub arkd: ArkdSim,
    arkd_server: SimServer,
}

impl SimStack {
    /// Starts every simulator on 127.0.0.1.
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let arkd = ArkdSim::new(options.arkd)?;
        let arkd_server = arkd.clone().spawn(options.arkd_port).await?;
        Ok(Self { arkd, arkd_server })
    }

    /// The endpoints to point clients at.
    pub fn endpoints(&self) -> SimEndpoints {
        SimEndpoints {
            arkd: self.arkd_server.url(),
        }
    }

    /// Stops every simulator and waits for them to close.
    pub async fn stop(self) {
        self.arkd_server.stop().await;
    }
}
