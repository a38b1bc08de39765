//! lnd/tapd macaroon authentication: the macaroon file's bytes, hex-encoded,
//! in the `macaroon` metadata of every call (lnd `macaroons/auth.go`).

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Adds the `macaroon` metadata to every request. Its `Debug` is redacted.
#[derive(Clone, Default)]
pub struct MacaroonInterceptor {
    value: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for MacaroonInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacaroonInterceptor(<redacted>)")
    }
}

impl MacaroonInterceptor {
    /// Sends `macaroon` (raw bytes, as read from `admin.macaroon`); `None` sends nothing.
    pub fn new(macaroon: Option<&[u8]>) -> Self {
        Self {
            value: macaroon.and_then(|m| MetadataValue::try_from(hex::encode(m)).ok()),
        }
    }
}

impl Interceptor for MacaroonInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert("macaroon", v.clone());
        }
        Ok(req)
    }
}
