//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! All writes go through one connection (SQLite has one writer at a time anyway, and a
//! single connection avoids `SQLITE_BUSY` upgrades); reads use a small pool of their own.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use acs_identity_core::id::{ResourceId, UserId};
use acs_identity_core::store::{
    AccessKeyRecord, BoxError, CreatedIdentity, IdentityRecord, IdentityStore, NewIdentity,
    ResourceRecord, ResourceState, ResourceStore, SecretBytes, SigningKeyRecord, StoreError,
    StoreResult,
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

use crate::convert::{alg, corrupt, from_nanos, generation, key_name, to_nanos};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn backend(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(Box::new(e))
        }
        other => StoreError::Backend(Box::new(other)),
    }
}

const IDENTITY_COLUMNS: &str =
    "user_id, custom_id, created_at, deleted_at, generation, last_token_issued_at";

fn identity_from_row(row: &SqliteRow) -> StoreResult<IdentityRecord> {
    let id: Vec<u8> = row.try_get("user_id").map_err(backend)?;
    let user = Uuid::from_slice(&id).map_err(|e| corrupt(format!("bad user id: {e}")))?;
    let deleted: Option<i64> = row.try_get("deleted_at").map_err(backend)?;
    let issued: Option<i64> = row.try_get("last_token_issued_at").map_err(backend)?;
    Ok(IdentityRecord {
        user: UserId::from_uuid(user),
        custom_id: row.try_get("custom_id").map_err(backend)?,
        created_at: from_nanos(row.try_get("created_at").map_err(backend)?)?,
        deleted_at: deleted.map(from_nanos).transpose()?,
        generation: generation(row.try_get("generation").map_err(backend)?)?,
        last_token_issued_at: issued.map(from_nanos).transpose()?,
    })
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
        Self::with_options(options, 4).await
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<SqliteStore> {
        // A named shared-cache memory database, so the reader pool sees the writer's data.
        let name = format!("file:acsid-{}?mode=memory&cache=shared", Uuid::new_v4());
        let options = SqliteConnectOptions::from_str(&name).map_err(backend)?;
        Self::with_options(options, 1).await
    }

    async fn with_options(options: SqliteConnectOptions, readers: u32) -> StoreResult<SqliteStore> {
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
        Ok(SqliteStore { writer, reader })
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

    /// Closes both pools, waiting for in-flight statements.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn fetch_identity(
        tx: &mut Transaction<'_, Sqlite>,
        user: UserId,
    ) -> StoreResult<Option<IdentityRecord>> {
        let row =
            sqlx::query(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = ?"))
                .bind(user.as_uuid().as_bytes().as_slice())
                .fetch_optional(&mut **tx)
                .await
                .map_err(backend)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn update_live(
        &self,
        user: UserId,
        statement: &str,
        at: Option<OffsetDateTime>,
    ) -> StoreResult<Option<IdentityRecord>> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let mut q = sqlx::query(statement);
        if let Some(at) = at {
            q = q.bind(to_nanos(at));
        }
        q.bind(user.as_uuid().as_bytes().as_slice()).execute(&mut *tx).await.map_err(backend)?;
        let record = Self::fetch_identity(&mut tx, user).await?;
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn create_identity(&self, new: NewIdentity) -> StoreResult<CreatedIdentity> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if let Some(custom) = &new.custom_id {
            let existing = sqlx::query(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM identities WHERE custom_id = ? AND deleted_at IS NULL"
            ))
            .bind(custom)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            if let Some(row) = existing {
                let mut record = identity_from_row(&row)?;
                if let Some(at) = new.token_issued_at {
                    sqlx::query("UPDATE identities SET last_token_issued_at = ? WHERE user_id = ?")
                        .bind(to_nanos(at))
                        .bind(record.user.as_uuid().as_bytes().as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    record.last_token_issued_at = Some(at);
                }
                tx.commit().await.map_err(backend)?;
                return Ok(CreatedIdentity { record, created: false });
            }
        }
        sqlx::query(
            "INSERT INTO identities (user_id, custom_id, created_at, generation, last_token_issued_at) \
             VALUES (?, ?, ?, 0, ?)",
        )
        .bind(new.user.as_uuid().as_bytes().as_slice())
        .bind(new.custom_id.as_deref())
        .bind(to_nanos(new.created_at))
        .bind(new.token_issued_at.map(to_nanos))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(CreatedIdentity {
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

    async fn get_identity(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        let row =
            sqlx::query(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = ?"))
                .bind(user.as_uuid().as_bytes().as_slice())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn count_identities(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn mark_token_issued(
        &self,
        user: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<IdentityRecord>> {
        self.update_live(
            user,
            "UPDATE identities SET last_token_issued_at = ? WHERE user_id = ? AND deleted_at IS NULL",
            Some(at),
        )
        .await
    }

    async fn revoke_tokens(&self, user: UserId) -> StoreResult<Option<IdentityRecord>> {
        self.update_live(
            user,
            "UPDATE identities SET generation = generation + 1 WHERE user_id = ? AND deleted_at IS NULL",
            None,
        )
        .await
    }

    async fn delete_identity(
        &self,
        user: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<IdentityRecord>> {
        self.update_live(
            user,
            "UPDATE identities SET deleted_at = ? WHERE user_id = ? AND deleted_at IS NULL",
            Some(at),
        )
        .await
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn load_resource(&self) -> StoreResult<Option<ResourceState>> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let Some(row) = sqlx::query("SELECT resource_id, data_location, created_at FROM resource")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let id: String = row.try_get("resource_id").map_err(backend)?;
        let resource = ResourceRecord {
            resource_id: ResourceId::from_str(&id)
                .map_err(|e| corrupt(format!("bad resource id: {e}")))?,
            data_location: row.try_get("data_location").map_err(backend)?,
            created_at: from_nanos(row.try_get("created_at").map_err(backend)?)?,
        };
        let mut access_keys = Vec::new();
        for row in sqlx::query("SELECT name, key, version FROM access_keys ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?
        {
            let name: String = row.try_get("name").map_err(backend)?;
            access_keys.push(AccessKeyRecord {
                name: key_name(&name)?,
                key: SecretBytes(row.try_get("key").map_err(backend)?),
                version: generation(row.try_get("version").map_err(backend)?)?,
            });
        }
        let mut signing_keys = Vec::new();
        for row in sqlx::query(
            "SELECT kid, alg, pkcs8, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?
        {
            let a: String = row.try_get("alg").map_err(backend)?;
            signing_keys.push(SigningKeyRecord {
                kid: row.try_get("kid").map_err(backend)?,
                alg: alg(&a)?,
                pkcs8: SecretBytes(row.try_get("pkcs8").map_err(backend)?),
                created_at: from_nanos(row.try_get("created_at").map_err(backend)?)?,
            });
        }
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
        self.load_resource().await?.ok_or_else(|| {
            StoreError::Backend(BoxError::from("resource missing after initialisation"))
        })
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        insert_signing_key(&mut tx, &key).await?;
        tx.commit().await.map_err(backend)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(backend)?;
        Ok(())
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
