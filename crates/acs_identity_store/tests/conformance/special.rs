//! Cases outside the conformance table that need no PostgreSQL server: a SQLite file with
//! a newer schema, an unreachable PostgreSQL server, and what group commit reports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acs_identity_core::id::UserId;
use acs_identity_core::store::{IdentityStore, NewIdentity, StoreError};
use acs_identity_store::{PostgresOptions, PostgresStore, SqliteStore, StoreMetrics};
use time::OffsetDateTime;

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

/// Values a histogram handle was given.
#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Recorded {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

#[tokio::test]
async fn sqlite_group_commit_reports_batch_sizes_and_commit_times() {
    let (sizes, times) = (Arc::new(Recorded::default()), Arc::new(Recorded::default()));
    let metrics = StoreMetrics {
        commit_batch_size: metrics::Histogram::from_arc(sizes.clone()),
        commit_seconds: metrics::Histogram::from_arc(times.clone()),
    };
    let store = SqliteStore::in_memory_observed(metrics).await.unwrap();
    let mut creates = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        creates.spawn(async move {
            store
                .create_identity(NewIdentity {
                    user: UserId::generate(),
                    custom_id: None,
                    created_at: OffsetDateTime::UNIX_EPOCH,
                    token_issued_at: None,
                })
                .await
        });
    }
    while let Some(created) = creates.join_next().await {
        created.unwrap().unwrap();
    }
    let sizes = sizes.0.lock().unwrap().clone();
    let times = times.0.lock().unwrap().clone();
    // Every write is in exactly one reported batch, and each batch has its commit time.
    assert_eq!(sizes.iter().sum::<f64>(), 20.0, "{sizes:?}");
    assert!(sizes.iter().all(|&n| (1.0..=512.0).contains(&n)), "{sizes:?}");
    assert_eq!(times.len(), sizes.len());
    assert!(times.iter().all(|t| (0.0..60.0).contains(t)), "{times:?}");
    store.close().await;
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
