//! Opening each backend for one case, and fixtures.

use std::future::Future;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::ResourceId;
use acs_identity_core::store::{
    AccessKeyRecord, ResourceRecord, ResourceState, SecretBytes, SigningKeyRecord,
};
use acs_identity_core::token::SigningAlgorithm;
use acs_identity_store::testing::with_fresh_database;
use acs_identity_store::{AnyStore, SqliteStore, StoreLocation};
use time::OffsetDateTime;
use uuid::Uuid;

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

/// Runs `case` on a fresh PostgreSQL database; a notice and nothing else when
/// `DATABASE_URL` is unset.
pub(crate) async fn postgres<F, Fut>(test: &str, case: F)
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

/// A time with every nanosecond digit set.
pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(1_700_000_000 + seconds) * 1_000_000_000 + 123_456_789,
    )
    .expect("time")
}

/// A resource with distinct keys derived from `seed` (the key bytes are not real keys:
/// stores keep them as opaque bytes).
pub(crate) fn resource(seed: u8) -> ResourceState {
    ResourceState {
        resource: ResourceRecord {
            resource_id: ResourceId::from_uuid(Uuid::new_v4()),
            data_location: format!("location{seed}"),
            created_at: at(i64::from(seed)),
        },
        access_keys: vec![
            AccessKeyRecord {
                name: KeyName::Primary,
                key: SecretBytes(vec![seed; 64]),
                version: 1,
            },
            AccessKeyRecord {
                name: KeyName::Secondary,
                key: SecretBytes(vec![seed.wrapping_add(1); 64]),
                version: 3,
            },
        ],
        signing_keys: vec![signing_key(&format!("kid-{seed}"), 0)],
    }
}

/// A signing key record.
pub(crate) fn signing_key(kid: &str, created: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: SigningAlgorithm::Es256,
        pkcs8: SecretBytes(kid.as_bytes().repeat(4)),
        created_at: at(created),
    }
}
