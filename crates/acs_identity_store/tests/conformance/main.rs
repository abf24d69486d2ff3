//! The store conformance suite: every case in `cases` runs against SQLite in memory, a
//! SQLite file, and PostgreSQL when `DATABASE_URL` names a server (each PostgreSQL test
//! gets a fresh database, dropped afterwards).

mod cases;
mod harness;
mod special;

/// One `#[tokio::test]` per case and backend: `sqlite_memory::<case>`,
/// `sqlite_file::<case>`, `postgres::<case>`.
macro_rules! conformance {
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
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::harness::postgres(stringify!($case), crate::cases::$case).await;
                }
            )*
        }
    };
}

conformance!(
    create_and_get,
    timestamps_keep_nanoseconds,
    custom_id_maps_to_one_live_identity,
    custom_id_is_freed_by_delete,
    concurrent_creates_with_one_custom_id_agree,
    record_tokens_issued_on_live_deleted_and_missing,
    record_tokens_issued_in_a_large_batch,
    revoke_bumps_the_generation,
    concurrent_revokes_are_all_counted,
    concurrent_mixed_writes_each_get_their_answer,
    delete_is_idempotent_and_leaves_a_tombstone,
    count_includes_tombstones,
    list_pages_newest_first_with_tombstones,
    no_resource_before_init,
    racing_inits_agree_on_one_resource,
    signing_keys_are_added_once,
    ping_answers,
    only_a_database_of_several_nodes_is_shared,
    teams_extension_assignments,
    entra_assignments,
    export_pages_through_every_identity,
    import_is_idempotent_and_never_revives_or_unrevokes,
    import_resource_refuses_another_resource,
    schema_version_is_current,
);
