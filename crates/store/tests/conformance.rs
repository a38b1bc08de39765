//! The `RelayStore` conformance suite and the round ports' suite
//! (`RoundStore`, `RenewalStore`) against both back ends, plus the
//! property test of random transfer sequences. MariaDB tests use a throw-away
//! database on the server at `ARK_RELAY_TEST_MYSQL_URL` (scripts/test starts it).

use std::sync::Arc;

use ark_relay_store::testing::TestDb;
use ark_relay_store::Backend;
use ark_relay_testkit::rounds_suite::RoundsHarness;
use ark_relay_testkit::Harness;

async fn test_db(backend: Backend) -> TestDb {
    match TestDb::of(backend).await {
        Ok(db) => db,
        Err(e) => panic!(
            "cannot create a {} test database (is it running? scripts/test starts it): {e}",
            backend.as_str()
        ),
    }
}

async fn harness(backend: Backend) -> Harness {
    let db = test_db(backend).await;
    let store = Arc::new(db.store.clone());
    Harness::new(store, db.destroy())
}

/// The round ports' suite ([`ark_relay_testkit::rounds_suite`]) on the same store.
async fn rounds_harness(backend: Backend) -> RoundsHarness {
    let db = test_db(backend).await;
    RoundsHarness::new(
        Arc::new(db.store.clone()),
        Arc::new(db.store.clone()),
        db.destroy(),
    )
}

mod sqlite {
    async fn harness() -> ark_relay_testkit::Harness {
        super::harness(ark_relay_store::Backend::Sqlite).await
    }
    ark_relay_testkit::relay_store_conformance!(harness);

    async fn rounds() -> ark_relay_testkit::rounds_suite::RoundsHarness {
        super::rounds_harness(ark_relay_store::Backend::Sqlite).await
    }
    ark_relay_testkit::round_store_conformance!(rounds);
}

mod mariadb {
    async fn harness() -> ark_relay_testkit::Harness {
        super::harness(ark_relay_store::Backend::MariaDb).await
    }
    ark_relay_testkit::relay_store_conformance!(harness);

    async fn rounds() -> ark_relay_testkit::rounds_suite::RoundsHarness {
        super::rounds_harness(ark_relay_store::Backend::MariaDb).await
    }
    ark_relay_testkit::round_store_conformance!(rounds);
}

mod property {
    use ark_relay_testkit::workload::{run_transfers, transfer_ops};
    use proptest::prelude::*;

    fn run(backend: ark_relay_store::Backend, ops: &[ark_relay_testkit::workload::TransferOp]) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let h = super::harness(backend).await;
            run_transfers(&h.store, ops).await;
            h.teardown().await;
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn transfers_conserve_assets_on_sqlite(ops in transfer_ops(24)) {
            run(ark_relay_store::Backend::Sqlite, &ops);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn transfers_conserve_assets_on_mariadb(ops in transfer_ops(16)) {
            run(ark_relay_store::Backend::MariaDb, &ops);
        }
    }
}

mod migrations {
    use ark_relay_store::testing::TestDb;

    #[tokio::test]
    async fn migrations_are_idempotent_on_both_back_ends() {
        for db in [
            TestDb::sqlite().await.expect("sqlite"),
            TestDb::mariadb().await.expect("mariadb"),
        ] {
            db.store.migrate().await.expect("second migrate is a no-op");
            db.store.ping().await.expect("ping");
            db.destroy().await;
        }
    }
}
