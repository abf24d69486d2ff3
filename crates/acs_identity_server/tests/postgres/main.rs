//! Several service nodes on one PostgreSQL database, and the service through PostgreSQL
//! restarts.
//!
//! Each test uses a fresh database on the server named by `DATABASE_URL` (dropped
//! afterwards) or a private throwaway cluster. Every test here needs a PostgreSQL server:
//! without `DATABASE_URL` they fail (see `acs_identity_store::testing`); `cargo xtask test`
//! reports them as skipped when no server is reachable.

mod nodes;
mod restart;
mod support;
