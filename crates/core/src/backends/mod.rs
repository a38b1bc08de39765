//! Back-end ports: the Ark server (arkd), Lightning (lnd) and Taproot Assets
//! (tapd). Implemented by `ark-relay-grpc` against the real daemons and served
//! by `ark-relay-sim` for tests and `dev`. Errors map to the relay's public
//! error codes by gRPC status code and arkd error name, never by message text.

pub mod ark;
pub mod assets;
pub mod chain;
pub mod fees;
pub mod lightning;
pub mod rounds;
