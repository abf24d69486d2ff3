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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_probe_sees_a_key_change_made_through_another_connection_at_once() {
    use acs_identity_core::hmac::KeyName;
    use acs_identity_core::store::{ResourceStore as _, SecretBytes};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acs-identity.db");
    // Two stores on one file stand for the service and the `keys` command.
    let node = SqliteStore::open(&path).await.unwrap();
    node.init_resource(crate::fixtures::resource(5)).await.unwrap();
    let command = SqliteStore::open(&path).await.unwrap();
    let probe = node.keys_probe().expect("a probe");
    for round in 0..20u8 {
        let before = probe.keys_version().unwrap();
        let key = if round % 2 == 0 { KeyName::Primary } else { KeyName::Secondary };
        command.regenerate_access_key(key, SecretBytes(vec![round; 64])).await.unwrap();
        let after = probe.keys_version().unwrap();
        assert!(after > before, "round {round}: {after} after {before}");
        assert_eq!(after, command.keys_version().await.unwrap());
    }
    command.close().await;
    node.close().await;
}
