//! What the per-request check of the keys' version costs a SQLite node
//! (`cargo bench -p acs_identity_store --bench keys_probe`; figures in BENCHMARKS.md).
//!
//! - `probe/unchanged`: the probe's read when nothing was written since the last one (the
//!   page is in the probe connection's cache).
//! - `probe/after a write`: the first read after another connection committed (an identity
//!   created through the group-commit writer): SQLite drops the connection's page cache and
//!   reads the pages again. The write is set up outside the measurement.
//! - `sqlx round trip`: the same query through the store's reader pool, which the probe
//!   avoids.

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::{ResourceId, UserId};
use acs_identity_core::store::{
    AccessKeyRecord, IdentityStore as _, NewIdentity, ResourceRecord, ResourceState,
    ResourceStore as _, SecretBytes,
};
use acs_identity_store::SqliteStore;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use time::OffsetDateTime;

fn resource() -> ResourceState {
    let key = |name, byte| AccessKeyRecord { name, key: SecretBytes(vec![byte; 64]), version: 1 };
    ResourceState {
        resource: ResourceRecord {
            resource_id: ResourceId::from_uuid(uuid::Uuid::new_v4()),
            data_location: "unitedstates".to_owned(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        },
        access_keys: vec![key(KeyName::Primary, 1), key(KeyName::Secondary, 2)],
        signing_keys: Vec::new(),
    }
}

fn keys_probe(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(async {
        let store = SqliteStore::open(&dir.path().join("acs-identity.db")).await.unwrap();
        store.init_resource(resource()).await.unwrap();
        store
    });
    let probe = store.keys_probe().expect("a SQLite file has a probe");
    c.bench_function("probe/unchanged", |b| b.iter(|| probe.keys_version().unwrap()));
    c.bench_function("probe/after a write", |b| {
        b.iter_batched(
            || {
                runtime.block_on(async {
                    let new = NewIdentity {
                        user: UserId::generate(),
                        custom_id: None,
                        created_at: OffsetDateTime::UNIX_EPOCH,
                        token_issued_at: None,
                    };
                    store.create_identity(new).await.unwrap();
                })
            },
            |()| probe.keys_version().unwrap(),
            BatchSize::PerIteration,
        )
    });
    c.bench_function("sqlx round trip", |b| {
        b.iter(|| runtime.block_on(store.keys_version()).unwrap())
    });
    runtime.block_on(store.close());
}

criterion_group!(benches, keys_probe);
criterion_main!(benches);
