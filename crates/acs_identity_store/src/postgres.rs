//! PostgreSQL, for several service nodes sharing one database.
//!
//! Every node connected to the same database is the same resource: the resource, its
//! access keys and signing keys live in the database, and the service reads identities
//! on every request, so a revoke or delete acknowledged by one node is seen by the next
//! request to any node.
//!
//! The pool fails fast while the server is unreachable (a short acquire timeout turns
//! into [`StoreError::Unavailable`], which the HTTP layer answers with 503) and recovers
//! by itself: idle connections are checked before use, and dead ones are replaced.

use std::str::FromStr;
use std::time::Duration;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    AccessKeyRecord, AssignmentStore, BoxError, CreatedIdentity, EntraAssignment, IdentityRecord,
    IdentityStore, NewIdentity, ResourceState, ResourceStore, SecretBytes, SigningKeyRecord,
    StoreError, StoreResult, TeamsExtensionAssignment,
};
use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::convert::{
    access_key_from_row, columns_by_name, corrupt, entra_assignment_from_row, identity_from_row,
    resource_from_row, signing_key_from_row, teams_assignment_from_row, to_nanos, Columns,
    ACCESS_KEYS_QUERY, ENTRA_COLUMNS, MAX_LOOKUP_IDS, RESOURCE_QUERY, SIGNING_KEYS_QUERY,
    TEAMS_COLUMNS,
};
use crate::transfer::{self, Transfer};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// The channel a change to the keys is announced on (`NOTIFY`, in the changing transaction).
pub const KEYS_CHANNEL: &str = "acsid_keys";

/// The keys' version, as `ResourceStore::keys_version` defines it.
const KEYS_VERSION_QUERY: &str = "SELECT ((SELECT COALESCE(SUM(version), 0) FROM access_keys) \
     + (SELECT COUNT(*) FROM signing_keys))::BIGINT";

/// How many times `create_identity` retries when racing creates with the same custom id
/// keep deleting and re-creating it underneath.
const CUSTOM_ID_ATTEMPTS: usize = 16;

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections per node.
    pub max_connections: u32,
    /// How long a request waits for a connection (including connecting) before the
    /// store answers `Unavailable`.
    pub acquire_timeout: Duration,
    /// Connections idle this long are closed.
    pub idle_timeout: Duration,
    /// Connections are replaced after this long.
    pub max_lifetime: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(1800),
        }
    }
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// `true` for errors that say "the database cannot be reached right now": lost or refused
/// connections, pool timeouts, a server shutting down or starting up, too many
/// connections, serialization failures and deadlocks. A retry later may succeed.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources; 57: operator
            // intervention (admin/crash shutdown, cannot connect now, query canceled);
            // 40001 serialization failure; 40P01 deadlock detected.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(v) => StoreError::SchemaTooNew(format!(
            "migration {v} is applied in the database but unknown to this program"
        )),
        MigrateError::Execute(e) => backend(e),
        other => StoreError::Backend(Box::new(other)),
    }
}

/// The identity columns, in the shape [`identity_from_row`] reads.
const IDENTITY_COLUMNS: &str =
    "user_id::text AS user_id, custom_id, created_at, deleted_at, generation, last_token_issued_at";

impl Columns for PgRow {
    columns_by_name!(backend);

    /// A UUID selected as text (`user_id::text AS user_id`).
    fn user_id(&self) -> StoreResult<UserId> {
        let id: String = self.try_get("user_id").map_err(backend)?;
        let user = Uuid::parse_str(&id).map_err(|e| corrupt(format!("bad user id: {e}")))?;
        Ok(UserId::from_uuid(user))
    }
    /// A `TEXT[]`.
    fn client_ids(&self) -> StoreResult<Option<Vec<String>>> {
        self.try_get("client_ids").map_err(backend)
    }
}

fn user_param(user: UserId) -> String {
    user.as_uuid().to_string()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with the default
    /// pool settings and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// As [`PostgresStore::connect`], with pool settings.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        // sqlx's message for a malformed URL may quote it; keep the password out of errors.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| corrupt("invalid PostgreSQL URL".to_owned()))?
            .application_name("acs-identity");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .idle_timeout(Some(options.idle_timeout))
            .max_lifetime(Some(options.max_lifetime))
            .connect_with(connect)
            .await
            .map_err(backend)?;
        // sqlx holds an advisory lock while migrating, so nodes starting together take
        // turns; the later ones find nothing to do.
        MIGRATOR.run(&pool).await.map_err(migrate_error)?;
        Ok(PostgresStore { pool })
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    /// The version of the newest migration this program carries.
    pub fn known_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for statements in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Subscribes to the announcements of key changes on [`KEYS_CHANNEL`], on a connection
    /// of the pool that it keeps (and reconnects when lost).
    pub async fn listen_keys(&self) -> StoreResult<KeyChanges> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(backend)?;
        listener.listen(KEYS_CHANNEL).await.map_err(backend)?;
        Ok(KeyChanges(listener))
    }

    /// Records that `node` is alive and holds the keys of `keys_version`.
    pub async fn report_node(&self, node: Uuid, keys_version: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO nodes (node_id, keys_version, seen_at) VALUES ($1::uuid, $2, now()) \
             ON CONFLICT (node_id) DO UPDATE SET keys_version = excluded.keys_version, \
             seen_at = excluded.seen_at",
        )
        .bind(node.to_string())
        .bind(to_i64(keys_version))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Removes `node`'s row (it stopped).
    pub async fn remove_node(&self, node: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1::uuid")
            .bind(node.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// The nodes whose row was written within `within` (by the database's clock), with the
    /// keys version each reported; rows older than a day are deleted on the way.
    pub async fn live_nodes(&self, within: Duration) -> StoreResult<Vec<(Uuid, u64)>> {
        sqlx::query("DELETE FROM nodes WHERE seen_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT node_id::text, keys_version FROM nodes \
             WHERE seen_at > now() - make_interval(secs => $1) ORDER BY node_id",
        )
        .bind(within.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(n, v)| {
                let node = Uuid::parse_str(&n).map_err(|e| corrupt(format!("bad node id: {e}")))?;
                Ok((node, u64::try_from(v).unwrap_or(0)))
            })
            .collect()
    }

    async fn fetch_identity<'e, E>(executor: E, user: UserId) -> StoreResult<Option<IdentityRecord>>
    where
        E: sqlx::Executor<'e, Database = Postgres>,
    {
        let row = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = $1::uuid"
        ))
        .bind(user_param(user))
        .fetch_optional(executor)
        .await
        .map_err(backend)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    /// Runs `UPDATE … WHERE user_id = $1 AND deleted_at IS NULL RETURNING …` with `$2` =
    /// `at`; when no live identity matched, reads the identity as it is (deleted or
    /// missing).
    async fn update_live(
        &self,
        user: UserId,
        set: &str,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<Option<IdentityRecord>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let statement = format!(
            "UPDATE identities SET {set} WHERE user_id = $1::uuid AND deleted_at IS NULL \
             RETURNING {IDENTITY_COLUMNS}"
        );
        let mut q = sqlx::query(&statement).bind(user_param(user));
        if let Some(at) = at {
            q = q.bind(to_nanos(at));
        }
        if let Some(row) = q.fetch_optional(&mut *conn).await.map_err(backend)? {
            return identity_from_row(&row).map(Some);
        }
        Self::fetch_identity(&mut *conn, user).await
    }
}

#[async_trait]
impl IdentityStore for PostgresStore {
    async fn create_identity(&self, new: NewIdentity) -> StoreResult<CreatedIdentity> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let issued = new.token_issued_at.map(to_nanos);
        for _ in 0..CUSTOM_ID_ATTEMPTS {
            if let Some(custom) = &new.custom_id {
                let existing = sqlx::query(&format!(
                    "UPDATE identities SET last_token_issued_at = COALESCE($2, last_token_issued_at) \
                     WHERE custom_id = $1 AND deleted_at IS NULL RETURNING {IDENTITY_COLUMNS}"
                ))
                .bind(custom)
                .bind(issued)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
                if let Some(row) = existing {
                    return Ok(CreatedIdentity {
                        record: identity_from_row(&row)?,
                        created: false,
                    });
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO identities (user_id, custom_id, created_at, generation, last_token_issued_at) \
                 VALUES ($1::uuid, $2, $3, 0, $4)",
            )
            .bind(user_param(new.user))
            .bind(new.custom_id.as_deref())
            .bind(to_nanos(new.created_at))
            .bind(issued)
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => {
                    return Ok(CreatedIdentity {
                        record: IdentityRecord {
                            user: new.user,
                            custom_id: new.custom_id,
                            created_at: new.created_at,
                            deleted_at: None,
                            generation: 0,
                            last_token_issued_at: new.token_issued_at,
                        },
                        created: true,
                    })
                }
                // Another node mapped the custom id first: return its identity.
                Err(sqlx::Error::Database(e))
                    if e.is_unique_violation()
                        && e.constraint() == Some("identities_live_custom_id") =>
                {
                    continue
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Err(StoreError::Unavailable(BoxError::from(
            "the custom id kept changing while creating an identity",
        )))
    }

    async fn get_identity(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        Self::fetch_identity(&self.pool, user).await
    }

    async fn record_tokens_issued(&self, marks: &[(UserId, OffsetDateTime)]) -> StoreResult<u64> {
        if marks.is_empty() {
            return Ok(0);
        }
        let users: Vec<String> = marks.iter().map(|(u, _)| user_param(*u)).collect();
        let times: Vec<i64> = marks.iter().map(|(_, at)| to_nanos(*at)).collect();
        // One statement for the whole batch; a user named twice counts with its latest time.
        let updated = sqlx::query(
            "UPDATE identities SET last_token_issued_at = \
               GREATEST(COALESCE(identities.last_token_issued_at, v.at), v.at) \
             FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::uuid[], $2::bigint[]) AS m(id, at) \
                   GROUP BY id) AS v \
             WHERE identities.user_id = v.id AND identities.deleted_at IS NULL",
        )
        .bind(users)
        .bind(times)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(updated)
    }

    async fn revoke_tokens(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        self.update_live(user, "generation = generation + 1", None).await
    }

    /// Always: other nodes may write the same database at any time, so nothing read from
    /// it may be cached.
    fn is_shared(&self) -> bool {
        true
    }

    async fn list_identities(
        &self,
        before: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities \
             WHERE $1::uuid IS NULL OR user_id < $1::uuid ORDER BY user_id DESC LIMIT $2"
        ))
        .bind(before.map(user_param))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn count_identities(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_identity(
        &self,
        user: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<IdentityRecord>> {
        self.update_live(user, "deleted_at = $2", Some(at)).await
    }
}

#[async_trait]
impl ResourceStore for PostgresStore {
    async fn load_resource(&self) -> StoreResult<Option<ResourceState>> {
        // One snapshot for the resource and its keys.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) =
            sqlx::query(RESOURCE_QUERY).fetch_optional(&mut *tx).await.map_err(backend)?
        else {
            return Ok(None);
        };
        let resource = resource_from_row(&row)?;
        let access_keys = sqlx::query(ACCESS_KEYS_QUERY)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(access_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let signing_keys = sqlx::query(SIGNING_KEYS_QUERY)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(signing_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(ResourceState { resource, access_keys, signing_keys }))
    }

    async fn init_resource(&self, state: ResourceState) -> StoreResult<ResourceState> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // A racing node's insert makes this one wait for its commit, then do nothing.
        let inserted = sqlx::query(
            "INSERT INTO resource (singleton, resource_id, data_location, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(state.resource.resource_id.to_string())
        .bind(&state.resource.data_location)
        .bind(to_nanos(state.resource.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if inserted == 1 {
            for k in &state.access_keys {
                sqlx::query("INSERT INTO access_keys (name, key, version) VALUES ($1, $2, $3)")
                    .bind(k.name.as_str())
                    .bind(k.key.0.as_slice())
                    .bind(to_i64(k.version))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            for k in &state.signing_keys {
                insert_signing_key(&mut tx, k).await?;
            }
        }
        tx.commit().await.map_err(backend)?;
        self.load_resource().await?.ok_or_else(|| {
            StoreError::Backend(BoxError::from("resource missing after initialisation"))
        })
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        insert_signing_key(&mut tx, &key).await?;
        announce_keys(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn regenerate_access_key(
        &self,
        name: KeyName,
        key: SecretBytes,
    ) -> StoreResult<AccessKeyRecord> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let version: i64 = sqlx::query_scalar(
            "UPDATE access_keys SET key = $1, version = version + 1 WHERE name = $2 RETURNING version",
        )
        .bind(key.0.as_slice())
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        announce_keys(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(AccessKeyRecord { name, key, version: u64::try_from(version).unwrap_or(0) })
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn keys_version(&self) -> StoreResult<u64> {
        let v: i64 =
            sqlx::query_scalar(KEYS_VERSION_QUERY).fetch_one(&self.pool).await.map_err(backend)?;
        Ok(u64::try_from(v).unwrap_or(0))
    }
}

/// `NOTIFY` the nodes listening on [`KEYS_CHANNEL`]; delivered when `tx` commits.
async fn announce_keys(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(KEYS_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Announcements of key changes ([`PostgresStore::listen_keys`]).
#[derive(Debug)]
pub struct KeyChanges(PgListener);

impl KeyChanges {
    /// Waits for the next announcement. An error means the connection was lost (it is
    /// re-established by the next call); announcements made meanwhile are lost, so the
    /// caller reads the keys' version again.
    pub async fn next(&mut self) -> StoreResult<()> {
        self.0.recv().await.map(|_| ()).map_err(backend)
    }
}

async fn insert_signing_key(
    tx: &mut Transaction<'_, Postgres>,
    k: &SigningKeyRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, pkcs8, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kid) DO NOTHING",
    )
    .bind(&k.kid)
    .bind(k.alg.as_str())
    .bind(k.pkcs8.0.as_slice())
    .bind(to_nanos(k.created_at))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl AssignmentStore for PostgresStore {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<Option<TeamsExtensionAssignment>> {
        let row = sqlx::query(&format!(
            "SELECT {TEAMS_COLUMNS} FROM teams_extension_assignments \
             WHERE tenant_id = $1 AND object_id = $2"
        ))
        .bind(tenant_id)
        .bind(object_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(teams_assignment_from_row).transpose()
    }

    async fn put_teams_extension_assignment(
        &self,
        a: TeamsExtensionAssignment,
    ) -> StoreResult<bool> {
        // `xmax = 0` only for a row this statement inserted (not one it updated).
        sqlx::query_scalar(
            "INSERT INTO teams_extension_assignments \
                 (tenant_id, object_id, principal_type, client_ids) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, object_id) DO UPDATE SET \
                 principal_type = EXCLUDED.principal_type, client_ids = EXCLUDED.client_ids \
             RETURNING (xmax = 0)",
        )
        .bind(&a.tenant_id)
        .bind(&a.object_id)
        .bind(&a.principal_type)
        .bind(&a.client_ids)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM teams_extension_assignments WHERE tenant_id = $1 AND object_id = $2",
        )
        .bind(tenant_id)
        .bind(object_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn get_entra_assignment(&self, object_id: &str) -> StoreResult<Option<EntraAssignment>> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = $1"
        ))
        .bind(object_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(entra_assignment_from_row).transpose()
    }

    async fn list_entra_assignments(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<EntraAssignment>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id > $1 \
             ORDER BY object_id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(entra_assignment_from_row).collect()
    }

    async fn update_entra_assignments(
        &self,
        changes: Vec<(String, Option<EntraAssignment>)>,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut created = Vec::new();
        for (object_id, change) in &changes {
            match change {
                Some(a) => created.push(
                    sqlx::query_scalar(
                        "INSERT INTO entra_assignments \
                             (object_id, tenant_id, principal_type, client_ids) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (object_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, \
                             principal_type = EXCLUDED.principal_type, \
                             client_ids = EXCLUDED.client_ids \
                         RETURNING (xmax = 0)",
                    )
                    .bind(&a.object_id)
                    .bind(&a.tenant_id)
                    .bind(&a.principal_type)
                    .bind(&a.client_ids)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?,
                ),
                None => {
                    sqlx::query("DELETE FROM entra_assignments WHERE object_id = $1")
                        .bind(object_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn find_entra_assignments(
        &self,
        tenant_id: &str,
        object_ids: &[String],
    ) -> StoreResult<Vec<EntraAssignment>> {
        let ids: Vec<&str> = object_ids.iter().take(MAX_LOOKUP_IDS).map(String::as_str).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments \
             WHERE object_id = ANY($1) AND tenant_id = $2 \
             ORDER BY array_position($1, object_id)"
        ))
        .bind(&ids)
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(entra_assignment_from_row).collect()
    }
}

#[async_trait]
impl Transfer for PostgresStore {
    async fn identities_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities \
             WHERE $1::uuid IS NULL OR user_id > $1::uuid ORDER BY user_id LIMIT $2"
        ))
        .bind(after.map(user_param))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn teams_extension_assignments_after(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> StoreResult<Vec<TeamsExtensionAssignment>> {
        let (tenant, object) = after.unwrap_or_default();
        let rows = sqlx::query(&format!(
            "SELECT {TEAMS_COLUMNS} FROM teams_extension_assignments \
             WHERE (tenant_id, object_id) > ($1, $2) ORDER BY tenant_id, object_id LIMIT $3"
        ))
        .bind(tenant)
        .bind(object)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(teams_assignment_from_row).collect()
    }

    async fn import_identities(&self, records: &[IdentityRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let users: Vec<String> = records.iter().map(|r| user_param(r.user)).collect();
        let custom: Vec<Option<String>> = records.iter().map(|r| r.custom_id.clone()).collect();
        let created: Vec<i64> = records.iter().map(|r| to_nanos(r.created_at)).collect();
        let deleted: Vec<Option<i64>> =
            records.iter().map(|r| r.deleted_at.map(to_nanos)).collect();
        let generations: Vec<i64> = records.iter().map(|r| to_i64(r.generation)).collect();
        let issued: Vec<Option<i64>> =
            records.iter().map(|r| r.last_token_issued_at.map(to_nanos)).collect();
        // GREATEST ignores NULLs; a deletion already in the target stays as it is.
        sqlx::query(
            "INSERT INTO identities \
                 (user_id, custom_id, created_at, deleted_at, generation, last_token_issued_at) \
             SELECT u::uuid, c, cr, d, g, i \
             FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) \
                 AS t(u, c, cr, d, g, i) \
             ON CONFLICT (user_id) DO UPDATE SET \
                 generation = GREATEST(identities.generation, EXCLUDED.generation), \
                 deleted_at = COALESCE(identities.deleted_at, EXCLUDED.deleted_at), \
                 last_token_issued_at = \
                     GREATEST(identities.last_token_issued_at, EXCLUDED.last_token_issued_at)",
        )
        .bind(users)
        .bind(custom)
        .bind(created)
        .bind(deleted)
        .bind(generations)
        .bind(issued)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn import_resource(&self, state: &ResourceState) -> StoreResult<ResourceState> {
        transfer::import_resource(self, state).await
    }
}
