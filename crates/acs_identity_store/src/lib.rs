//! Storage backends of the acs-identity service.
//!
//! Each backend implements the traits in [`acs_identity_core::store`]; the
//! conformance suite in `tests/` runs against every backend. [`AnyStore`] opens the one a
//! [`StoreLocation`] names; [`Transfer`] moves a resource between stores.

#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

#[cfg(feature = "postgres")]
pub mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};

mod convert;
mod location;
pub mod transfer;

pub use location::{AnyStore, DatabaseUrl, KeyChanges, OpenOptions, StoreLocation};
pub use transfer::{ImportConflict, Transfer};

#[cfg(feature = "test-support")]
pub mod testing;

/// What a store reports to the service's metrics: handles of the `metrics` facade, made by
/// whichever recorder the caller keeps (the service: its own Prometheus registry), so this
/// crate never touches a global recorder. The default records nothing.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Writes committed together by one SQLite group commit.
    pub commit_batch_size: metrics::Histogram,
    /// Seconds from a group commit's `BEGIN` to its `COMMIT`'s return.
    pub commit_seconds: metrics::Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            commit_batch_size: metrics::Histogram::noop(),
            commit_seconds: metrics::Histogram::noop(),
        }
    }
}
