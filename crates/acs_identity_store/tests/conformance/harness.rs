//! Opening each SQLite backend for one case.

use std::future::Future;

use acs_identity_store::{AnyStore, SqliteStore, StoreLocation};

/// Runs `case` on a fresh in-memory SQLite store.
pub(crate) async fn sqlite_memory<F, Fut>(case: F)
where
    F: FnOnce(AnyStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = AnyStore::Sqlite(SqliteStore::in_memory().await.expect("in-memory store"));
    case(store.clone()).await;
    store.close().await;
}

/// Runs `case` on a fresh SQLite file in a temporary directory.
pub(crate) async fn sqlite_file<F, Fut>(case: F)
where
    F: FnOnce(AnyStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let location = StoreLocation::Sqlite(dir.path().join("data").join("acs-identity.db"));
    let store = AnyStore::open(&location).await.expect("open SQLite file");
    case(store.clone()).await;
    store.close().await;
    // The file is a valid database afterwards.
    let reopened =
        SqliteStore::open(&dir.path().join("data").join("acs-identity.db")).await.expect("reopen");
    reopened.integrity_check().await.expect("integrity check");
    reopened.close().await;
}
