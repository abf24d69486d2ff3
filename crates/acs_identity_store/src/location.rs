//! Where the data lives: a SQLite file or a PostgreSQL database, and opening either.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use acs_identity_core::id::UserId;
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
use acs_identity_core::store::BoxError;
use acs_identity_core::store::{
    IdentityRecord, ResourceState, Store, StoreError, StoreResult, TeamsExtensionAssignment,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::transfer::Transfer;
#[cfg(feature = "postgres")]
use crate::PostgresStore;
#[cfg(feature = "sqlite")]
use crate::SqliteStore;

/// A database URL as configured. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password. Secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// `true` for `postgres://` and `postgresql://`.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl(url.to_owned())
    }
}

/// Replaces the password of `scheme://user:password@host/...` and any `password=`
/// query parameter with `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..].find(['/', '?']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite database file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://user:password@host:port/database`.
    Postgres(DatabaseUrl),
}

impl StoreLocation {
    /// Reads `postgres://…`, `postgresql://…`, `sqlite://PATH` or `sqlite:PATH`.
    pub fn parse(url: &str) -> Result<StoreLocation, String> {
        let db = DatabaseUrl::new(url);
        if db.is_postgres() {
            return Ok(StoreLocation::Postgres(db));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("a sqlite: URL needs a file path".to_owned());
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "unsupported database URL {}: expected postgres://, postgresql:// or sqlite:",
            db.redacted()
        ))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "SQLite database {}", path.display()),
            StoreLocation::Postgres(url) => write!(f, "PostgreSQL database {url}"),
        }
    }
}

/// Settings for opening a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Connections kept to PostgreSQL at most; SQLite ignores it.
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { max_connections: 16 }
    }
}

/// An opened store of either backend.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// The embedded SQLite store.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    /// The PostgreSQL store.
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
}

impl AnyStore {
    /// Opens the store at `location`, applying pending migrations; refuses a database
    /// whose schema is newer than this program.
    pub async fn open(location: &StoreLocation) -> StoreResult<AnyStore> {
        Self::open_with(location, OpenOptions::default()).await
    }

    /// As [`AnyStore::open`], with settings.
    pub async fn open_with(
        location: &StoreLocation,
        options: OpenOptions,
    ) -> StoreResult<AnyStore> {
        #[cfg(not(feature = "postgres"))]
        let _ = options;
        match location {
            #[cfg(feature = "sqlite")]
            StoreLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(Box::new(e)))?;
                }
                Ok(AnyStore::Sqlite(SqliteStore::open(path).await?))
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => {
                let pool = crate::PostgresOptions {
                    max_connections: options.max_connections,
                    ..Default::default()
                };
                Ok(AnyStore::Postgres(PostgresStore::connect_with(url.expose(), pool).await?))
            }
            #[cfg(not(feature = "sqlite"))]
            StoreLocation::Sqlite(_) => Err(StoreError::Backend(BoxError::from(
                "this program was built without SQLite support (cargo feature `sqlite`)",
            ))),
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(_) => Err(StoreError::Backend(BoxError::from(
                "this program was built without PostgreSQL support (cargo feature `postgres`)",
            ))),
        }
    }

    /// The store as the service uses it.
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => Arc::new(s.clone()),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The version of the newest migration applied to the database.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.schema_version().await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.schema_version().await,
        }
    }

    /// The version of the newest migration this program knows for this backend.
    pub fn known_schema_version(&self) -> i64 {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => SqliteStore::known_schema_version(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => PostgresStore::known_schema_version(),
        }
    }

    /// Closes the connections, waiting for statements in flight.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.close().await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.close().await,
        }
    }

    /// Registers a node of the service that is about to load the keys (its row in `nodes`,
    /// holding no version yet), so a key change made meanwhile waits for it; `None` for a
    /// backend whose nodes read the keys' version before every request (SQLite).
    pub async fn register_node(&self) -> StoreResult<Option<uuid::Uuid>> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => {
                let node = uuid::Uuid::new_v4();
                s.report_node(node, 0).await?;
                Ok(Some(node))
            }
        }
    }

    /// Announcements of key changes (PostgreSQL `LISTEN`); `None` for SQLite.
    pub async fn listen_keys(&self) -> StoreResult<Option<KeyChanges>> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => Ok(None),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.listen_keys().await.map(|c| Some(KeyChanges(c))),
        }
    }

    /// Records that `node` is alive and holds the keys of `keys_version`.
    pub async fn report_node(&self, node: uuid::Uuid, keys_version: u64) -> StoreResult<()> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => {
                let _ = (node, keys_version);
                Ok(())
            }
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.report_node(node, keys_version).await,
        }
    }

    /// Removes `node`'s row.
    pub async fn remove_node(&self, node: uuid::Uuid) -> StoreResult<()> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => {
                let _ = node;
                Ok(())
            }
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.remove_node(node).await,
        }
    }

    /// The nodes seen within `within`, with the keys' version each holds (none for SQLite).
    pub async fn live_nodes(
        &self,
        within: std::time::Duration,
    ) -> StoreResult<Vec<(uuid::Uuid, u64)>> {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => {
                let _ = within;
                Ok(Vec::new())
            }
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.live_nodes(within).await,
        }
    }

    fn transfer(&self) -> &dyn Transfer {
        match self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s,
        }
    }
}

/// Announcements of key changes ([`AnyStore::listen_keys`]).
#[derive(Debug)]
pub struct KeyChanges(#[cfg(feature = "postgres")] crate::postgres::KeyChanges);

impl KeyChanges {
    /// Waits for the next announcement. An error means the connection was lost (the next
    /// call reconnects); announcements made meanwhile are lost, so the caller reads the
    /// keys' version again.
    pub async fn next(&mut self) -> StoreResult<()> {
        #[cfg(feature = "postgres")]
        return self.0.next().await;
        #[cfg(not(feature = "postgres"))]
        std::future::pending().await
    }
}

#[async_trait]
impl Transfer for AnyStore {
    async fn identities_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>> {
        self.transfer().identities_after(after, limit).await
    }

    async fn teams_extension_assignments_after(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> StoreResult<Vec<TeamsExtensionAssignment>> {
        self.transfer().teams_extension_assignments_after(after, limit).await
    }

    async fn import_identities(&self, records: &[IdentityRecord]) -> StoreResult<()> {
        self.transfer().import_identities(records).await
    }

    async fn import_resource(&self, state: &ResourceState) -> StoreResult<ResourceState> {
        self.transfer().import_resource(state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u:p@ss@h/db?x=1"), "postgres://u:***@h/db?x=1");
        assert_eq!(
            redact("postgres://h/db?user=u&password=secret&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        let url = DatabaseUrl::new("postgresql://a:b@c/d");
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains(":b@"), "{shown}");
        assert!(shown.contains("a:***@c"), "{shown}");
    }

    #[test]
    fn parses_locations() {
        assert!(matches!(StoreLocation::parse("postgres://x/y"), Ok(StoreLocation::Postgres(_))));
        assert!(matches!(StoreLocation::parse("postgresql://x/y"), Ok(StoreLocation::Postgres(_))));
        assert_eq!(
            StoreLocation::parse("sqlite:///var/lib/a.db").unwrap(),
            StoreLocation::Sqlite(PathBuf::from("/var/lib/a.db"))
        );
        assert_eq!(
            StoreLocation::parse("sqlite:a.db?mode=rwc").unwrap(),
            StoreLocation::Sqlite(PathBuf::from("a.db"))
        );
        assert!(StoreLocation::parse("mysql://x/y").is_err());
        assert!(StoreLocation::parse("sqlite:").is_err());
    }
}
