//! PostgreSQL cases that need more than one fresh store: reopening, racing connects, a
//! server restart, and moving a resource from SQLite to PostgreSQL.

use std::time::{Duration, Instant};

use acs_identity_core::id::UserId;
use acs_identity_core::store::{IdentityStore, NewIdentity, ResourceStore, StoreError};
use acs_identity_store::testing::{admin_url, with_fresh_database, Cluster, TestDatabase};
use acs_identity_store::{
    AnyStore, DatabaseUrl, OpenOptions, PostgresStore, StoreLocation, Transfer,
};

use crate::fixtures::{at, resource, FUTURE_MIGRATION};

#[tokio::test]
async fn postgres_refuses_a_newer_schema() {
    with_fresh_database("postgres_refuses_a_newer_schema", |url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        sqlx::query(&FUTURE_MIGRATION.replace("x'00'", "'\\x00'::bytea"))
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let e = PostgresStore::connect(&url).await.expect_err("newer schema");
        assert!(matches!(e, StoreError::SchemaTooNew(_)), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn postgres_pool_size_follows_the_open_options() {
    with_fresh_database("postgres_pool_size_follows_the_open_options", |url| async move {
        let location = StoreLocation::Postgres(DatabaseUrl::new(url));
        let options = OpenOptions { max_connections: 3, ..OpenOptions::default() };
        match AnyStore::open_with(&location, options).await.unwrap() {
            AnyStore::Postgres(store) => {
                assert_eq!(store.pool().options().get_max_connections(), 3);
                store.close().await;
            }
            other => panic!("expected PostgreSQL, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_together_migrate_once() {
    with_fresh_database("postgres_nodes_starting_together_migrate_once", |url| async move {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let url = url.clone();
            tasks.push(tokio::spawn(async move { PostgresStore::connect(&url).await }));
        }
        let mut stores = Vec::new();
        for t in tasks {
            stores.push(t.await.unwrap().expect("every node starts"));
        }
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(stores[0].pool())
            .await
            .unwrap();
        let known = sqlx::migrate!("migrations/postgres").iter().count();
        assert_eq!(applied, i64::try_from(known).unwrap(), "each migration applied once");
        for s in stores {
            assert_eq!(s.schema_version().await.unwrap(), PostgresStore::known_schema_version());
            s.close().await;
        }
    })
    .await;
}

/// A store on a private cluster: unavailable (fast) while the server is down, and
/// working again by itself once it is back, with nothing acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_recovers_after_a_server_restart() {
    if admin_url("postgres_store_recovers_after_a_server_restart").is_none() {
        return;
    }
    let cluster = Cluster::start().await;
    let store = PostgresStore::connect(&cluster.url("postgres")).await.unwrap();
    let user = UserId::generate();
    store
        .create_identity(NewIdentity {
            user,
            custom_id: None,
            created_at: at(0),
            token_issued_at: None,
        })
        .await
        .unwrap();
    store.revoke_tokens(user).await.unwrap();

    for mode in ["fast", "immediate"] {
        cluster.stop(mode).await;
        let started = Instant::now();
        let e = store.ping().await.expect_err("server is down");
        assert!(matches!(e, StoreError::Unavailable(_)), "{mode}: {e:?}");
        let e = store.revoke_tokens(user).await.expect_err("server is down");
        assert!(matches!(e, StoreError::Unavailable(_)), "{mode}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(6), "{mode}: {:?}", started.elapsed());

        cluster.start_again().await;
        let back = Instant::now();
        loop {
            match store.ping().await {
                Ok(()) => break,
                Err(e) if back.elapsed() < Duration::from_secs(5) => {
                    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{mode}: not recovered within 5 s: {e:?}"),
            }
        }
        eprintln!("{mode}: recovered {:?} after the server accepted connections", back.elapsed());
    }
    let record = store.get_identity(user).await.unwrap().unwrap();
    assert_eq!(record.generation, 1, "the acknowledged revoke survived, the failed ones did not");
    store.close().await;
}

/// Export from a SQLite file, import into PostgreSQL: the same resource, keys and
/// identities (custom ids, generations, tombstones, times to the nanosecond).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_moves_everything() {
    with_fresh_database("sqlite_to_postgres_moves_everything", |url| async move {
        let dir = tempfile::tempdir().unwrap();
        let source = AnyStore::open(&StoreLocation::Sqlite(dir.path().join("a.db"))).await.unwrap();
        let state = resource(7);
        let src = source.shared();
        src.init_resource(state.clone()).await.unwrap();
        for i in 0..250 {
            let custom = format!("user-{i}");
            let r = src
                .create_identity(NewIdentity {
                    user: UserId::generate(),
                    custom_id: (i % 2 == 0).then_some(custom),
                    created_at: at(i),
                    token_issued_at: (i % 3 == 0).then(|| at(i + 1)),
                })
                .await
                .unwrap();
            for _ in 0..(i % 4) {
                src.revoke_tokens(r.record.user).await.unwrap();
            }
            if i % 7 == 0 {
                src.delete_identity(r.record.user, at(i + 2)).await.unwrap();
            }
        }

        let target = AnyStore::open(&StoreLocation::Postgres(url.into())).await.unwrap();
        let src_resource = src.load_resource().await.unwrap().unwrap();
        target.import_resource(&src_resource).await.unwrap();
        let mut after = None;
        let mut moved = Vec::new();
        loop {
            let page = source.identities_after(after, 64).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.user);
            target.import_identities(&page).await.unwrap();
            moved.extend(page);
        }
        assert_eq!(moved.len(), 250);

        let dst = target.shared();
        assert_eq!(dst.load_resource().await.unwrap(), Some(state));
        assert_eq!(dst.count_identities().await.unwrap(), 250);
        for r in &moved {
            assert_eq!(dst.get_identity(r.user).await.unwrap().as_ref(), Some(r));
        }
        // Custom ids of live identities map to the same users in the target.
        let live = moved.iter().find(|r| r.is_live() && r.custom_id.is_some()).unwrap();
        let found = dst
            .create_identity(NewIdentity {
                user: UserId::generate(),
                custom_id: live.custom_id.clone(),
                created_at: at(999),
                token_issued_at: None,
            })
            .await
            .unwrap();
        assert!(!found.created);
        assert_eq!(found.record.user, live.user);
        source.close().await;
        target.close().await;
    })
    .await;
}

/// The test databases really are fresh and separate.
#[tokio::test]
async fn postgres_test_databases_are_separate() {
    let Some(admin) = admin_url("postgres_test_databases_are_separate") else { return };
    let a = TestDatabase::create(&admin).await;
    let b = TestDatabase::create(&admin).await;
    assert_ne!(a.name(), b.name());
    let store = PostgresStore::connect(a.url()).await.unwrap();
    store.init_resource(resource(8)).await.unwrap();
    store.close().await;
    let other = PostgresStore::connect(b.url()).await.unwrap();
    assert_eq!(other.load_resource().await.unwrap(), None);
    other.close().await;
    a.drop_database().await;
    b.drop_database().await;
}
