//! Storage backends of the acs-identity service.
//!
//! Each backend implements the traits in [`acs_identity_core::store`]; the
//! conformance suite in `tests/` runs against every backend.

#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

mod convert;
