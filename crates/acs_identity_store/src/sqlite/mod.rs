//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! All writes go through one connection (SQLite has one writer at a time anyway, and a
//! single connection avoids `SQLITE_BUSY` upgrades); reads use a small pool of their own.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    AccessKeyRecord, AssignmentStore, BoxError, CreatedIdentity, EntraAssignment, IdentityRecord,
    IdentityStore, KeysProbe, NewIdentity, ResourceState, ResourceStore, SecretBytes,
    SigningKeyRecord, StoreError, StoreResult, TeamsExtensionAssignment,
};
use async_trait::async_trait;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::convert::{
    access_key_from_row, columns_by_name, corrupt, entra_assignment_from_row, generation,
    identity_from_row, resource_from_row, signing_key_from_row, teams_assignment_from_row,
    to_nanos, Columns, ACCESS_KEYS_QUERY, ENTRA_COLUMNS, MAX_LOOKUP_IDS, RESOURCE_QUERY,
    SIGNING_KEYS_QUERY, TEAMS_COLUMNS,
};

mod probe;
mod writer;

use crate::transfer::{self, Transfer};
use probe::{SqliteProbe, KEYS_VERSION_QUERY};
use writer::{Done, Op, Writer};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    batch: Writer,
    probe: Arc<SqliteProbe>,
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(Box::new(e))
        }
        other => StoreError::Backend(Box::new(other)),
    }
}

pub(crate) const IDENTITY_COLUMNS: &str =
    "user_id, custom_id, created_at, deleted_at, generation, last_token_issued_at";

impl Columns for SqliteRow {
    columns_by_name!(backend);

    /// A 16-byte BLOB.
    fn user_id(&self) -> StoreResult<UserId> {
        let id: Vec<u8> = self.try_get("user_id").map_err(backend)?;
        let user = Uuid::from_slice(&id).map_err(|e| corrupt(format!("bad user id: {e}")))?;
        Ok(UserId::from_uuid(user))
    }
    /// A JSON array in TEXT.
    fn client_ids(&self) -> StoreResult<Option<Vec<String>>> {
        let text: Option<String> = self.try_get("client_ids").map_err(backend)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("bad client ids: {e}"))))
            .transpose()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        Self::with_options(options, 4, Some(path)).await
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<SqliteStore> {
        // A named shared-cache memory database, so the reader pool sees the writer's data.
        let name = format!("file:acsid-{}?mode=memory&cache=shared", Uuid::new_v4());
        let options = SqliteConnectOptions::from_str(&name).map_err(backend)?;
        Self::with_options(options, 1, None).await
    }

    /// Opens the pools (and, for a file, the keys probe's connection) and migrates.
    async fn with_options(
        options: SqliteConnectOptions,
        readers: u32,
        file: Option<&Path>,
    ) -> StoreResult<SqliteStore> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        match MIGRATOR.run(&writer).await {
            Ok(()) => {}
            Err(MigrateError::VersionMissing(v)) => {
                return Err(StoreError::SchemaTooNew(format!(
                    "migration {v} is applied in the database but unknown to this program"
                )))
            }
            Err(e) => return Err(StoreError::Backend(Box::new(e))),
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(readers)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(false))
            .await
            .map_err(backend)?;
        let batch = Writer::spawn(writer.clone());
        let probe = Arc::new(match file {
            Some(path) => SqliteProbe::file(path)?,
            None => SqliteProbe::memory(),
        });
        Ok(SqliteStore { writer, reader, batch, probe })
    }

    /// Runs SQLite's own integrity check; `Ok` when it reports `ok`.
    pub async fn integrity_check(&self) -> StoreResult<()> {
        let result: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        if result == "ok" {
            Ok(())
        } else {
            Err(corrupt(format!("integrity check: {result}")))
        }
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)
    }

    /// The version of the newest migration this program carries.
    pub fn known_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Closes both pools, waiting for in-flight statements.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn record(&self, op: Op) -> StoreResult<Option<IdentityRecord>> {
        match self.batch.submit(op).await? {
            Done::Record(r) => Ok(r),
            _ => Err(corrupt("writer answered an update with something else".to_owned())),
        }
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn create_identity(&self, new: NewIdentity) -> StoreResult<CreatedIdentity> {
        match self.batch.submit(Op::Create(new)).await? {
            Done::Created(c) => Ok(c),
            _ => Err(corrupt("writer answered a create with something else".to_owned())),
        }
    }

    async fn get_identity(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        let row =
            sqlx::query(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = ?"))
                .bind(user.as_uuid().as_bytes().as_slice())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn list_identities(
        &self,
        before: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>> {
        let before = before.map(|u| u.as_uuid().as_bytes().to_vec());
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities \
             WHERE ?1 IS NULL OR user_id < ?1 ORDER BY user_id DESC LIMIT ?2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn count_identities(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn record_tokens_issued(&self, marks: &[(UserId, OffsetDateTime)]) -> StoreResult<u64> {
        if marks.is_empty() {
            return Ok(0);
        }
        match self.batch.submit(Op::RecordTokensIssued(marks.to_vec())).await? {
            Done::Count(n) => Ok(n),
            _ => Err(corrupt("writer answered token times with a record".to_owned())),
        }
    }

    async fn revoke_tokens(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        self.record(Op::Revoke(user)).await
    }

    async fn delete_identity(
        &self,
        user: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<IdentityRecord>> {
        self.record(Op::Delete(user, at)).await
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn load_resource(&self) -> StoreResult<Option<ResourceState>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let Some(row) =
            sqlx::query(RESOURCE_QUERY).fetch_optional(&mut *conn).await.map_err(backend)?
        else {
            return Ok(None);
        };
        let resource = resource_from_row(&row)?;
        let access_keys = sqlx::query(ACCESS_KEYS_QUERY)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?
            .iter()
            .map(access_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let signing_keys = sqlx::query(SIGNING_KEYS_QUERY)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?
            .iter()
            .map(signing_key_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(ResourceState { resource, access_keys, signing_keys }))
    }

    async fn init_resource(&self, state: ResourceState) -> StoreResult<ResourceState> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let inserted = sqlx::query(
            "INSERT INTO resource (singleton, resource_id, data_location, created_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT (singleton) DO NOTHING",
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
                sqlx::query("INSERT INTO access_keys (name, key, version) VALUES (?, ?, ?)")
                    .bind(k.name.as_str())
                    .bind(k.key.0.as_slice())
                    .bind(i64::try_from(k.version).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            for k in &state.signing_keys {
                insert_signing_key(&mut tx, k).await?;
            }
        }
        tx.commit().await.map_err(backend)?;
        self.probe.changed();
        self.load_resource().await?.ok_or_else(|| {
            StoreError::Backend(BoxError::from("resource missing after initialisation"))
        })
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        insert_signing_key(&mut tx, &key).await?;
        tx.commit().await.map_err(backend)?;
        self.probe.changed();
        Ok(())
    }

    async fn regenerate_access_key(
        &self,
        name: KeyName,
        key: SecretBytes,
    ) -> StoreResult<AccessKeyRecord> {
        let version: i64 = sqlx::query_scalar(
            "UPDATE access_keys SET key = ?, version = version + 1 WHERE name = ? RETURNING version",
        )
        .bind(key.0.as_slice())
        .bind(name.as_str())
        .fetch_one(&self.writer)
        .await
        .map_err(backend)?;
        self.probe.changed();
        Ok(AccessKeyRecord { name, key, version: generation(version)? })
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(backend)?;
        Ok(())
    }

    async fn keys_version(&self) -> StoreResult<u64> {
        let v: i64 = sqlx::query_scalar(KEYS_VERSION_QUERY)
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        generation(v)
    }

    fn keys_probe(&self) -> Option<Arc<dyn KeysProbe>> {
        Some(self.probe.clone())
    }
}

async fn insert_signing_key(
    tx: &mut Transaction<'_, Sqlite>,
    k: &SigningKeyRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, pkcs8, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING",
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
impl Transfer for SqliteStore {
    async fn identities_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>> {
        let after = after.map(|u| u.as_uuid().as_bytes().to_vec());
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities \
             WHERE ?1 IS NULL OR user_id > ?1 ORDER BY user_id LIMIT ?2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
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
             WHERE (tenant_id, object_id) > (?, ?) ORDER BY tenant_id, object_id LIMIT ?"
        ))
        .bind(tenant)
        .bind(object)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(teams_assignment_from_row).collect()
    }

    async fn import_identities(&self, records: &[IdentityRecord]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        for r in records {
            // A deletion already in the target stays; the higher generation and the later
            // token time win (SQLite's two-argument max() is NULL when either is NULL).
            sqlx::query(
                "INSERT INTO identities \
                     (user_id, custom_id, created_at, deleted_at, generation, last_token_issued_at) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET \
                     generation = max(identities.generation, excluded.generation), \
                     deleted_at = coalesce(identities.deleted_at, excluded.deleted_at), \
                     last_token_issued_at = coalesce( \
                         max(identities.last_token_issued_at, excluded.last_token_issued_at), \
                         identities.last_token_issued_at, excluded.last_token_issued_at)",
            )
            .bind(r.user.as_uuid().as_bytes().as_slice())
            .bind(r.custom_id.as_deref())
            .bind(to_nanos(r.created_at))
            .bind(r.deleted_at.map(to_nanos))
            .bind(i64::try_from(r.generation).unwrap_or(i64::MAX))
            .bind(r.last_token_issued_at.map(to_nanos))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn import_resource(&self, state: &ResourceState) -> StoreResult<ResourceState> {
        transfer::import_resource(self, state).await
    }
}

fn client_ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

async fn upsert_entra(tx: &mut Transaction<'_, Sqlite>, a: &EntraAssignment) -> StoreResult<bool> {
    let existed = sqlx::query("SELECT 1 FROM entra_assignments WHERE object_id = ?")
        .bind(&a.object_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?
        .is_some();
    sqlx::query(
        "INSERT INTO entra_assignments (object_id, tenant_id, principal_type, client_ids) VALUES (?, ?, ?, ?) \
         ON CONFLICT (object_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
         principal_type = excluded.principal_type, client_ids = excluded.client_ids",
    )
    .bind(&a.object_id)
    .bind(&a.tenant_id)
    .bind(&a.principal_type)
    .bind(client_ids_json(&a.client_ids))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(!existed)
}

#[async_trait]
impl AssignmentStore for SqliteStore {
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<Option<TeamsExtensionAssignment>> {
        let row = sqlx::query(&format!(
            "SELECT {TEAMS_COLUMNS} FROM teams_extension_assignments \
             WHERE tenant_id = ? AND object_id = ?"
        ))
        .bind(tenant_id)
        .bind(object_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(teams_assignment_from_row).transpose()
    }

    async fn put_teams_extension_assignment(
        &self,
        a: TeamsExtensionAssignment,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let existed = sqlx::query(
            "SELECT 1 FROM teams_extension_assignments WHERE tenant_id = ? AND object_id = ?",
        )
        .bind(&a.tenant_id)
        .bind(&a.object_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .is_some();
        sqlx::query(
            "INSERT INTO teams_extension_assignments (tenant_id, object_id, principal_type, client_ids) \
             VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, object_id) DO UPDATE SET \
             principal_type = excluded.principal_type, client_ids = excluded.client_ids",
        )
        .bind(&a.tenant_id)
        .bind(&a.object_id)
        .bind(&a.principal_type)
        .bind(a.client_ids.as_deref().map(client_ids_json))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(!existed)
    }

    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM teams_extension_assignments WHERE tenant_id = ? AND object_id = ?",
        )
        .bind(tenant_id)
        .bind(object_id)
        .execute(&self.writer)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn get_entra_assignment(&self, object_id: &str) -> StoreResult<Option<EntraAssignment>> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id = ?"
        ))
        .bind(object_id)
        .fetch_optional(&self.reader)
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
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments WHERE object_id > ? ORDER BY object_id LIMIT ?"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(entra_assignment_from_row).collect()
    }

    async fn update_entra_assignments(
        &self,
        changes: Vec<(String, Option<EntraAssignment>)>,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let mut created = Vec::new();
        for (object_id, change) in &changes {
            match change {
                Some(a) => created.push(upsert_entra(&mut tx, a).await?),
                None => {
                    sqlx::query("DELETE FROM entra_assignments WHERE object_id = ?")
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
        let ids = &object_ids[..object_ids.len().min(MAX_LOOKUP_IDS)];
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One query, in the order of `ids`, as PostgreSQL's `= ANY($1)`.
        let rows = sqlx::query(&format!(
            "SELECT {ENTRA_COLUMNS} FROM entra_assignments \
             JOIN json_each(?) AS wanted ON wanted.value = entra_assignments.object_id \
             WHERE tenant_id = ? ORDER BY wanted.key"
        ))
        .bind(serde_json::to_string(ids).map_err(|e| corrupt(e.to_string()))?)
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(entra_assignment_from_row).collect()
    }
}
