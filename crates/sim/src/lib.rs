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

pub use arkd::{ArkdSim, ArkdSimConfig, RoundConfig, SimServer};
pub use chain::Chain;
pub use lnd::{LnServer, LndSim, LndSimConfig};
pub use tapd::{TapdSim, TapdSimConfig};

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// arkd simulator parameters.
    pub arkd: ArkdSimConfig,
    /// Port of the arkd simulator (0 = any free port).
    pub arkd_port: u16,
    /// lnd simulator parameters (TLS on by default, like lnd).
    pub lnd: LndSimConfig,
    /// Port of the lnd simulator (0 = any free port).
    pub lnd_port: u16,
    /// tapd simulator parameters.
    pub tapd: TapdSimConfig,
    /// Port of the tapd simulator (0 = any free port).
    pub tapd_port: u16,
}

/// How to reach an lnd-style daemon: URL, the cert to pin, the macaroon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonEndpoint {
    /// `https://127.0.0.1:<port>` (or `http://` without TLS).
    pub url: String,
    /// The PEM to pin (what `tls.cert` holds), when serving TLS.
    pub tls_cert_pem: Option<String>,
    /// The macaroon, hex (what goes in the `macaroon` metadata).
    pub macaroon_hex: String,
}

/// Where the started simulators listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEndpoints {
    /// arkd (ArkService, IndexerService, ArkdSimAdmin): `http://127.0.0.1:<port>`.
    pub arkd: String,
    /// lnd (Lightning, Invoices, Router, WalletKit, LndSim, ChainSim).
    pub lnd: DaemonEndpoint,
    /// tapd (TaprootAssets, Mint, Universe, TaprootAssetChannels, TapdSim).
    pub tapd: DaemonEndpoint,
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
    /// Starting the lnd or tapd simulator failed.
    #[error(transparent)]
    Ln(#[from] lnd::StartError),
}

/// The running simulators; dropping it stops them.
#[derive(Debug)]
pub struct SimStack {
    /// The arkd simulator (shared state with the server).
    pub arkd: ArkdSim,
    arkd_server: SimServer,
    /// The regtest chain shared by the arkd, lnd and tapd simulators.
    pub chain: Chain,
    /// The lnd simulator.
    pub lnd: LndSim,
    /// The tapd simulator (next to `lnd`).
    pub tapd: TapdSim,
    lnd_server: LnServer,
    tapd_server: LnServer,
}

impl SimStack {
    /// Starts every simulator on 127.0.0.1.
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let chain = Chain::default();
        let arkd = ArkdSim::with_chain(options.arkd, chain.clone())?;
        let arkd_server = arkd.clone().spawn(options.arkd_port).await?;
        let lnd = LndSim::new(chain.clone(), options.lnd)?;
        let lnd_server = lnd.clone().spawn(options.lnd_port).await?;
        let tapd = TapdSim::new(lnd.clone(), options.tapd)?;
        let tapd_server = tapd.clone().spawn(options.tapd_port).await?;
        Ok(Self {
            arkd,
            arkd_server,
            chain,
            lnd,
            tapd,
            lnd_server,
            tapd_server,
        })
    }

    /// The endpoints to point clients at.
    pub fn endpoints(&self) -> SimEndpoints {
        SimEndpoints {
            arkd: self.arkd_server.url(),
            lnd: DaemonEndpoint {
                url: self.lnd_server.url(),
                tls_cert_pem: self.lnd.tls_cert_pem().map(str::to_owned),
                macaroon_hex: hex::encode(self.lnd.macaroon()),
            },
            tapd: DaemonEndpoint {
                url: self.tapd_server.url(),
                tls_cert_pem: self.tapd.tls_cert_pem().map(str::to_owned),
                macaroon_hex: hex::encode(self.tapd.macaroon()),
            },
        }
    }

    /// Stops every simulator and waits for them to close.
    pub async fn stop(self) {
        self.arkd_server.stop().await;
        self.tapd_server.stop().await;
        self.lnd_server.stop().await;
    }

    /// Writes `lnd/tls.cert`, `lnd/admin.macaroon`, `tapd/tls.cert` and
    /// `tapd/admin.macaroon` under `dir`, laid out like the daemons' own files,
    /// so the relay's config can point at them exactly as at real daemons.
    pub fn write_credentials(&self, dir: &std::path::Path) -> std::io::Result<()> {
        for (name, cert, mac) in [
            ("lnd", self.lnd.tls_cert_pem(), self.lnd.macaroon()),
            ("tapd", self.tapd.tls_cert_pem(), self.tapd.macaroon()),
        ] {
            let d = dir.join(name);
            std::fs::create_dir_all(&d)?;
            if let Some(cert) = cert {
                std::fs::write(d.join("tls.cert"), cert)?;
            }
            std::fs::write(d.join("admin.macaroon"), mac)?;
        }
        Ok(())
    }
}
