//! Daemon-style credentials for the lnd and tapd simulators: a self-signed
//! ECDSA P-256 `tls.cert` with `CA:true` exactly like lnd's (so clients must
//! pin it), and a macaroon every call must carry as hex `macaroon` metadata.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tonic::{Request, Status};

/// A PEM certificate and key.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate (what `tls.cert` holds).
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh self-signed cert for `localhost` and `127.0.0.1`, `CA:true`,
    /// key usage CertSign + DigitalSignature, extended usage ServerAuth (lnd's
    /// `cert/selfsigned.go`).
    pub fn generate(organization: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the certificate like lnd's `tls.cert`.
    pub fn write_cert(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.cert_pem)
    }
}

/// A random macaroon (opaque bytes, like the contents of `admin.macaroon`).
pub fn random_macaroon() -> Vec<u8> {
    let mut m = vec![0u8; 48];
    rand::thread_rng().fill_bytes(&mut m);
    m
}

/// A server interceptor requiring exactly one `macaroon` metadata value equal
/// to the hex of `macaroon` (lnd's rule); anything else is `Unauthenticated`.
#[derive(Clone)]
pub struct MacaroonCheck {
    expected: Vec<u8>,
}

impl MacaroonCheck {
    /// Checks against `macaroon`.
    pub fn new(macaroon: Vec<u8>) -> Self {
        Self { expected: macaroon }
    }
}

impl tonic::service::Interceptor for MacaroonCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let values: Vec<_> = req.metadata().get_all("macaroon").iter().collect();
        let [value] = values.as_slice() else {
            return Err(Status::unauthenticated(
                "expected 1 macaroon, got {}".replace("{}", &values.len().to_string()),
            ));
        };
        let bytes = value
            .to_str()
            .ok()
            .and_then(|s| hex::decode(s).ok())
            .ok_or_else(|| Status::unauthenticated("macaroon is not hex"))?;
        if bytes != self.expected {
            return Err(Status::unauthenticated(
                "verification failed: signature mismatch",
            ));
        }
        Ok(req)
    }
}
