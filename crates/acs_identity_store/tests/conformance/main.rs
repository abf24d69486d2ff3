//! The store conformance suite on SQLite: every case in `cases` runs against SQLite in
//! memory and a SQLite file. The same cases run against PostgreSQL in the `postgres` test
//! binary (`tests/postgres/`), which needs a server.

mod fixtures;
#[macro_use]
mod cases;
mod harness;
mod special;

/// One `#[tokio::test]` per case and backend: `sqlite_memory::<case>`, `sqlite_file::<case>`.
macro_rules! on_sqlite {
    ($($case:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::sqlite_memory(crate::cases::$case).await;
                }
            )*
        }
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::sqlite_file(crate::cases::$case).await;
                }
            )*
        }
    };
}

every_case!(on_sqlite);
