//! Connecting to a daemon (lnd, tapd): URL, pinned `tls.cert`, macaroon.
//!
//! `https://` URLs use TLS that trusts exactly the configured certificate
//! ([`crate::tls`]); `http://` is plaintext h2c (simulators, local tests).
//! Channels connect lazily, so a client can be built while the daemon is down
//! and the resilience layer sees the failures.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{pinned_client_config, TlsError};

/// Where and how to reach a daemon.
#[derive(Clone)]
pub struct DaemonConfig {
    /// `https://host:port` (TLS with the pinned cert) or `http://host:port`.
    pub url: String,
    /// The daemon's `tls.cert` (PEM); required for `https://`.
    pub tls_cert_pem: Option<Vec<u8>>,
    /// The macaroon's raw bytes (sent hex-encoded); `None` sends none.
    pub macaroon: Option<Vec<u8>>,
    /// Per-call timeout (unary calls; streams are not limited).
    pub timeout: Option<Duration>,
    /// Connection timeout (`None`: the OS's).
    pub connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for DaemonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonConfig")
            .field("url", &self.url)
            .field("tls_cert_pem", &self.tls_cert_pem.is_some())
            .field("macaroon", &self.macaroon.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl DaemonConfig {
    /// A config with default timeouts.
    pub fn new(
        url: impl Into<String>,
        tls_cert_pem: Option<Vec<u8>>,
        macaroon: Option<Vec<u8>>,
    ) -> Self {
        Self {
            url: url.into(),
            tls_cert_pem,
            macaroon,
            timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
        }
    }

    /// Reads `tls.cert` and the macaroon file, as lnd and tapd write them.
    pub fn from_files(
        url: impl Into<String>,
        tls_cert_path: Option<&Path>,
        macaroon_path: Option<&Path>,
    ) -> std::io::Result<Self> {
        let cert = tls_cert_path.map(std::fs::read).transpose()?;
        let mac = macaroon_path.map(std::fs::read).transpose()?;
        Ok(Self::new(url, cert, mac))
    }
}

/// Why a channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not `http(s)://host:port`.
    #[error("invalid daemon URL {0:?}")]
    Url(String),
    /// `https://` without a certificate to pin.
    #[error("https URL needs the daemon's tls.cert")]
    MissingCert,
    /// The certificate could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A lazily connecting channel to the daemon.
pub fn connect(cfg: &DaemonConfig) -> Result<Channel, ConnectError> {
    let uri: Uri = cfg
        .url
        .parse()
        .map_err(|_| ConnectError::Url(cfg.url.clone()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| ConnectError::Url(cfg.url.clone()))?
        .clone();
    let tls = match uri.scheme_str() {
        Some("https") => Some(pinned_client_config(
            cfg.tls_cert_pem
                .as_deref()
                .ok_or(ConnectError::MissingCert)?,
        )?),
        Some("http") => None,
        _ => return Err(ConnectError::Url(cfg.url.clone())),
    };
    let mut endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|_| ConnectError::Url(cfg.url.clone()))?
        .tcp_nodelay(true);
    if let Some(t) = cfg.connect_timeout {
        endpoint = endpoint.connect_timeout(t);
    }
    if let Some(t) = cfg.timeout {
        endpoint = endpoint.timeout(t);
    }
    let Some(tls) = tls else {
        return Ok(endpoint.connect_lazy());
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let service = tower::service_fn(move |uri: Uri| {
        let connector = connector.clone();
        async move {
            let host = uri
                .host()
                .unwrap_or("127.0.0.1")
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let stream = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(service))
}
