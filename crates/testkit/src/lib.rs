//! # ark-relay-testkit
//!
//! Test support shared by every crate: deterministic fixtures (keys, assets,
//! VTXOs), the **`RelayStore` conformance suite** that every store back end must
//! pass ([`relay_store_conformance!`]), a model-checked random transfer
//! workload for property tests ([`workload`]), and the one way end-to-end
//! tests seed VTXOs at the arkd simulator and in the ledger alike ([`seed`]).
//!
//! Depends on core, ark and the simulators; it never talks to a database
//! itself — callers hand it a store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod arkd;
pub mod fixtures;
pub mod rounds_suite;
pub mod seed;
pub mod store_suite;
pub mod work_suite;
pub mod workload;

use std::future::Future;
use std::pin::Pin;

use ark_relay_core::DynStore;

/// A store under test and how to tear it down.
pub struct Harness {
    /// The store.
    pub store: DynStore,
    teardown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Harness {
    /// A harness whose `teardown` future runs after the test.
    pub fn new(store: DynStore, teardown: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            store,
            teardown: Box::pin(teardown),
        }
    }

    /// Runs the teardown (drops throw-away databases).
    pub async fn teardown(self) {
        self.teardown.await;
    }
}

/// Generates one `#[tokio::test]` per conformance test, each on a fresh store
/// made by `$factory` (an `async fn() -> Harness`).
///
/// ```ignore
/// mod sqlite {
///     async fn harness() -> ark_relay_testkit::Harness { /* … */ }
///     ark_relay_testkit::relay_store_conformance!(harness);
/// }
/// ```
#[macro_export]
macro_rules! relay_store_conformance {
    ($factory:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                let harness = $factory().await;
                $crate::store_suite::$test(harness.store.clone()).await;
                harness.teardown().await;
            }
        )*
    };
    ($factory:path) => {
        $crate::relay_store_conformance!($factory;
            register_asset_is_idempotent,
            vtxos_round_trip_with_colour,
            insert_vtxos_is_all_or_nothing,
            lock_is_all_or_none_and_idempotent,
            release_frees_locks,
            commit_transfer_moves_colour,
            commit_is_idempotent_by_ark_txid,
            failed_commits_change_nothing,
            issuance_and_burn_adjust_supply,
            processed_events_are_unique,
            intents_are_unique_by_event_and_action,
            racing_spends_spend_once,
            events_are_accepted_or_rejected_once,
            jobs_finish_once_with_their_outbox,
            outbox_delivers_and_retries,
            sessions_update_optimistically,
            session_writes_are_atomic_with_their_locks,
        );
    };
}
