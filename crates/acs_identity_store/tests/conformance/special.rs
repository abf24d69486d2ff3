//! Cases outside the conformance table that need no PostgreSQL server: a SQLite file with
//! a newer schema, and an unreachable PostgreSQL server.

use std::time::{Duration, Instant};

use acs_identity_core::store::StoreError;
use acs_identity_store::{PostgresOptions, PostgresStore, SqliteStore};

use crate::fixtures::FUTURE_MIGRATION;

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acs-identity.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    {
        use sqlx::Connection as _;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query(FUTURE_MIGRATION).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let e = SqliteStore::open(&path).await.expect_err("newer schema");
    assert!(matches!(e, StoreError::SchemaTooNew(_)), "{e:?}");
}

#[tokio::test]
async fn postgres_unreachable_server_is_unavailable() {
    // Nothing listens on port 1: the pool gives up after its acquire timeout.
    let started = Instant::now();
    let options =
        PostgresOptions { acquire_timeout: Duration::from_millis(500), ..Default::default() };
    let e = PostgresStore::connect_with("postgres://postgres@127.0.0.1:1/none", options)
        .await
        .expect_err("no server");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "failed fast: {:?}", started.elapsed());
}
