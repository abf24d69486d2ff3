//! Several service nodes on one PostgreSQL database, and the service through PostgreSQL
//! restarts.
//!
//! Each test uses a fresh database on the server named by `DATABASE_URL` (dropped
//! afterwards) or a private throwaway cluster; without `DATABASE_URL` the tests print a
//! notice and pass without running.

mod nodes;
mod restart;
mod support;
