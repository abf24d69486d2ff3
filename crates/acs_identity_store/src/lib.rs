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
