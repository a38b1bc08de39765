//! # ark-relay-core
//!
//! The pure heart of Ark Relay: domain newtypes (ids, keys, amounts), the public
//! error-code table, the ledger's data model and the **port traits** through which
//! the engine reaches the outside world.
//!
//! This crate owns *what* the relay knows and promises. It must not do I/O: no
//! async runtime, no sockets, no SQL, no Nostr client. Adapters (store, queue,
//! Nostr transport, gRPC back ends, HTTP API) depend on this crate and implement
//! its ports; the engine depends on the ports only.
//!
//! ```
//! use ark_relay_core::{AssetAmount, ErrorCode, Sats};
//!
//! let fee = Sats::new(10);
//! assert_eq!(fee.checked_add(Sats::new(5)), Some(Sats::new(15)));
//! assert_eq!(AssetAmount::new(7).checked_sub(AssetAmount::new(8)), None);
//! assert_eq!(ErrorCode::InputAlreadySpent.code(), 2002);
//! ```

pub mod amount;
pub mod backends;
pub mod error_code;
pub mod ids;
pub mod inventory;
pub mod leader;
pub mod ledger;
pub mod merkle;
pub mod queue;
pub mod ramp;
pub mod reconcile;
pub mod renewals;
pub mod rounds;
pub mod session;
pub mod settlement;
pub mod store;
pub mod time;
pub mod work;

pub use amount::{AssetAmount, Sats};
pub use error_code::ErrorCode;
pub use ids::{ActionId, AssetId, EventId, IdError, PubKey, SessionId, VtxoId};
pub use leader::{DynLeaderLock, LeaderLock, Lease};
pub use ledger::{
    Asset, AssetType, Balances, Colour, CommitOutcome, IntentRecord, L2Transaction, NewAsset,
    NewVtxo, ProcessedEvent, Recorded, Tapscripts, Vtxo, VtxoStatus,
};
pub use queue::{Delivery, DynBus, DynQueue, EventBus, Job, JobQueue, QueueConfig, QueueError};
pub use session::{SessionRecord, SessionStatus};
pub use store::{DynStore, LedgerError, RelayStore, SessionWrite, StoreError};
pub use time::{Clock, SystemClock, UnixTime};
pub use work::{JobRecord, JobStatus, NewOutboxEvent, OutboxItem};
