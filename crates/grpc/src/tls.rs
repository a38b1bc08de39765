//! TLS for lnd and tapd: trust exactly the daemon's own self-signed
//! certificate (`tls.cert`), which is a `CA:true` leaf that webpki refuses
//! (`CaUsedAsEndEntity`, lnd#5450). The verifier compares the presented leaf
//! with the pinned DER byte for byte and still checks the handshake signature
//! through the crypto provider, so only the holder of the daemon's key passes.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Why a pinned TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM holds no certificate.
    #[error("no certificate found in the PEM")]
    NoCertificate,
    /// The PEM is unreadable.
    #[error("invalid certificate PEM: {0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Trusts exactly one certificate.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl PinnedCertVerifier {
    /// Pins the first certificate of `pem` (the contents of `tls.cert`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let mut reader = std::io::BufReader::new(pem);
        let pinned = rustls_pemfile::certs(&mut reader)
            .next()
            .ok_or(TlsError::NoCertificate)?
            .map_err(|e| TlsError::Pem(e.to_string()))?;
        Ok(Self {
            pinned,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client config that trusts only `cert_pem` and speaks h2.
pub fn pinned_client_config(cert_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let verifier = PinnedCertVerifier::from_pem(cert_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
