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

/// lnd's `lnrpc` package (Lightning service subset).
pub mod lnrpc {
    tonic::include_proto!("lnrpc");
}

/// lnd's `invoicesrpc` package (hold invoices).
pub mod invoicesrpc {
    tonic::include_proto!("invoicesrpc");
}

/// lnd's `routerrpc` package (SendPaymentV2, TrackPaymentV2).
pub mod routerrpc {
    tonic::include_proto!("routerrpc");
}

/// lnd's `walletrpc` package (WalletKit: EstimateFee, SendOutputs, GetTransaction).
pub mod walletrpc {
    tonic::include_proto!("walletrpc");
}

/// tapd's `taprpc` package (TaprootAssets service subset).
pub mod taprpc {
    tonic::include_proto!("taprpc");
}

/// tapd's `mintrpc` package.
pub mod mintrpc {
    tonic::include_proto!("mintrpc");
}

/// tapd's `universerpc` package (InsertProof).
pub mod universerpc {
    tonic::include_proto!("universerpc");
}

/// tapd's `rfqrpc` package (quote messages).
pub mod rfqrpc {
    tonic::include_proto!("rfqrpc");
}

/// tapd's `tapchannelrpc` package (asset invoices and payments).
pub mod tapchannelrpc {
    tonic::include_proto!("tapchannelrpc");
}

/// Simulator-only admin services.
pub mod simrpc {
    /// `simrpc.arkd`: the arkd simulator's admin service.
    pub mod arkd {
        tonic::include_proto!("simrpc.arkd");
    }
    /// `simrpc.lnd`: the lnd simulator's admin service.
    pub mod lnd {
        tonic::include_proto!("simrpc.lnd");
    }
    /// `simrpc.chain`: the regtest chain model's service.
    pub mod chain {
        tonic::include_proto!("simrpc.chain");
    }
    /// `simrpc.tapd`: the tapd simulator's admin service.
    pub mod tapd {
        tonic::include_proto!("simrpc.tapd");
    }
}
