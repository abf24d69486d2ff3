//! The store on PostgreSQL: every conformance case (`tests/conformance/cases.rs`) as
//! `conformance::<case>`, and the PostgreSQL cases that need more than one store
//! (`special`). Each test gets a fresh database on the server named by `DATABASE_URL`,
//! dropped afterwards, or a private throwaway cluster.
//!
//! Every test here needs a PostgreSQL server: without `DATABASE_URL` they fail (see
//! `acs_identity_store::testing`); `cargo xtask test` reports them as skipped when no
//! server is reachable.

use std::future::Future;

use acs_identity_store::testing::with_fresh_database;
use acs_identity_store::{AnyStore, StoreLocation};

#[path = "../conformance/fixtures.rs"]
mod fixtures;
#[macro_use]
#[path = "../conformance/cases.rs"]
mod cases;
mod special;

/// Runs `case` on a fresh PostgreSQL database.
async fn on_fresh_database<F, Fut>(test: &str, case: F)
where
    F: FnOnce(AnyStore) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_fresh_database(test, |url| async move {
        let store = AnyStore::open(&StoreLocation::Postgres(url.into()))
            .await
            .expect("connect to the test database");
        case(store.clone()).await;
        store.close().await;
    })
    .await;
}

/// One `#[tokio::test]` per case: `conformance::<case>`.
macro_rules! on_postgres {
    ($($case:ident),* $(,)?) => {
        mod conformance {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::on_fresh_database(stringify!($case), crate::cases::$case).await;
                }
            )*
        }
    };
}

every_case!(on_postgres);
