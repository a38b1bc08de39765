//! # ark-relay-proto
//!
//! Client and server stubs generated at build time (tonic-prost-build + protox,
//! no system protoc) from the `.proto` files under `proto/`: subsets of the real
//! daemons' APIs, field-compatible with them, and the simulators' sim-only admin
//! services. One module per proto package.
//!
//! This crate owns only generated code; it must not contain logic.
#![allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]

/// arkd's `ark.v1` package (ArkService, IndexerService subsets).
pub mod ark {
    /// `ark.v1`.
    pub mod v1 {
        tonic::include_proto!("ark.v1");
    }
}

/// `google.rpc.Status`, the carrier of gRPC error details.
pub mod google {
    /// `google.rpc`.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

/// Simulator-only admin services.
pub mod simrpc {
    /// `simrpc.arkd`: the arkd simulator's admin service.
    pub mod arkd {
        tonic::include_proto!("simrpc.arkd");
    }
}
