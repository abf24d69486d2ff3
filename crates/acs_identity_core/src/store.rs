//! The storage traits the service is written against.
//!
//! Every method that returns `Ok` has made its change durable. Implementations live in
//! `acs_identity_store`; the same conformance suite runs against each of them.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::hmac::KeyName;
use crate::id::{ResourceId, UserId};
use crate::token::SigningAlgorithm;

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached right now; retrying later may work.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// The stored data is newer than this program understands.
    #[error("the database schema is newer than this program: {0}")]
    SchemaTooNew(String),
    /// Any other backend failure.
    #[error("storage error")]
    Backend(#[source] BoxError),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Bytes that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// One identity as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The user id.
    pub user: UserId,
    /// The caller's own id for this identity (2025-03-02-preview).
    pub custom_id: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was deleted; deleted identities are kept as tombstones.
    pub deleted_at: Option<OffsetDateTime>,
    /// Revocation generation: bumped by every revoke.
    pub generation: u64,
    /// When a token was last issued for it.
    pub last_token_issued_at: Option<OffsetDateTime>,
}

impl IdentityRecord {
    /// Not deleted.
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// What its tokens' validity depends on.
    pub fn state(&self) -> crate::token::IdentityState {
        crate::token::IdentityState { generation: self.generation, deleted: !self.is_live() }
    }
}

/// A request to create an identity.
#[derive(Clone, Debug)]
pub struct NewIdentity {
    /// The id to give a new identity.
    pub user: UserId,
    /// Map this custom id to the identity; an existing live mapping wins.
    pub custom_id: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Set when a token is issued in the same request.
    pub token_issued_at: Option<OffsetDateTime>,
}

/// Outcome of [`IdentityStore::create_identity`].
#[derive(Clone, Debug)]
pub struct CreatedIdentity {
    /// The identity (new, or the existing one for the custom id).
    pub record: IdentityRecord,
    /// `false` when an existing identity was returned for its custom id.
    pub created: bool,
}

/// Identity storage.
#[async_trait]
pub trait IdentityStore: Send + Sync + fmt::Debug {
    /// Creates an identity, or returns the live identity already mapped to `custom_id`
    /// (recording `token_issued_at` on whichever is returned).
    async fn create_identity(&self, new: NewIdentity) -> StoreResult<CreatedIdentity>;

    /// Reads an identity, live or deleted.
    async fn get_identity(&self, user: UserId) -> StoreResult<Option<IdentityRecord>>;

    /// Records when tokens were last issued, for many identities in one statement: each
    /// live identity named gets the later of its stored time and the given one (missing and
    /// deleted identities are skipped). Returns how many identities were updated.
    /// The service calls this behind the requests (`lastTokenIssuedAt` is informational),
    /// so the order of calls does not matter.
    async fn record_tokens_issued(&self, marks: &[(UserId, OffsetDateTime)]) -> StoreResult<u64>;

    /// Bumps the revocation generation of a live identity; returns it after the call.
    async fn revoke_tokens(&self, user: UserId) -> StoreResult<Option<IdentityRecord>>;

    /// Number of identities, live and deleted.
    async fn count_identities(&self) -> StoreResult<u64>;

    /// Up to `limit` identities, live and deleted, newest first: in descending user-id
    /// order (ids are UUID v7, so that is creation order), starting below `before` (from
    /// the newest when `None`).
    async fn list_identities(
        &self,
        before: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>>;

    /// Whether other processes may write this store too (several nodes on one database).
    /// A node may cache identity state only when this is `false`.
    fn is_shared(&self) -> bool {
        false
    }

    /// Marks an identity deleted (idempotent) and frees its custom id; returns it after the call.
    async fn delete_identity(
        &self,
        user: UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<IdentityRecord>>;
}

/// The resource: its id, location and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRecord {
    /// The resource id.
    pub resource_id: ResourceId,
    /// Data location name, e.g. `unitedstates`.
    pub data_location: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// One access key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    /// Primary or secondary.
    pub name: KeyName,
    /// The raw key bytes (the connection string carries them base64-encoded).
    pub key: SecretBytes,
    /// Bumped on each regeneration.
    pub version: u64,
}

/// One token signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlgorithm,
    /// PKCS#8 DER.
    pub pkcs8: SecretBytes,
    /// When it was created; the newest key of the configured algorithm signs.
    pub created_at: OffsetDateTime,
}

/// Everything that defines the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceState {
    /// Id and location.
    pub resource: ResourceRecord,
    /// Primary and secondary access keys.
    pub access_keys: Vec<AccessKeyRecord>,
    /// Signing keys, oldest first.
    pub signing_keys: Vec<SigningKeyRecord>,
}

/// A cheap, synchronous reading of [`ResourceStore::keys_version`], made before every
/// request a node authenticates, so a key changed by another process is noticed at once.
pub trait KeysProbe: Send + Sync + fmt::Debug {
    /// The current version of the resource's keys.
    fn keys_version(&self) -> StoreResult<u64>;
}

/// Resource storage.
#[async_trait]
pub trait ResourceStore: Send + Sync + fmt::Debug {
    /// Reads the resource, if it was created.
    async fn load_resource(&self) -> StoreResult<Option<ResourceState>>;

    /// Stores `state` unless a resource exists; returns the stored one either way
    /// (so nodes racing to initialise agree on one resource).
    async fn init_resource(&self, state: ResourceState) -> StoreResult<ResourceState>;

    /// Adds a signing key.
    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()>;

    /// Replaces an access key with `key` and bumps its version; returns the new record.
    async fn regenerate_access_key(
        &self,
        name: KeyName,
        key: SecretBytes,
    ) -> StoreResult<AccessKeyRecord>;

    /// Succeeds when the store can serve requests.
    async fn ping(&self) -> StoreResult<()>;

    /// The version of the resource's keys: the sum of the access keys' versions plus the
    /// number of signing keys. Every regeneration and every added signing key makes it
    /// grow (keys are never removed), so two equal readings mean the same keys.
    async fn keys_version(&self) -> StoreResult<u64>;

    /// A probe of [`ResourceStore::keys_version`] cheap enough for every request, when the
    /// backend has one (SQLite: a read on a connection of its own). `None`: the node learns
    /// of key changes otherwise (PostgreSQL: `LISTEN`/`NOTIFY` and a poll).
    fn keys_probe(&self) -> Option<Arc<dyn KeysProbe>> {
        None
    }
}

/// A Teams Phone extensibility assignment: which principal of which tenant may exchange
/// its Entra token for an ACS token, and with which client applications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamsExtensionAssignment {
    /// Entra tenant id (lower-case GUID).
    pub tenant_id: String,
    /// Object id of the user or resource account (lower-case GUID).
    pub object_id: String,
    /// `user` or `resourceAccount`.
    pub principal_type: String,
    /// Allowed client application ids; `None` allows any client.
    pub client_ids: Option<Vec<String>>,
}

/// An Entra user-access assignment (2025-03-02-preview).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraAssignment {
    /// Object id of the user, group or tenant (lower-case GUID); the key.
    pub object_id: String,
    /// Entra tenant id (lower-case GUID).
    pub tenant_id: String,
    /// `user`, `group` or `tenant`.
    pub principal_type: String,
    /// Allowed client application ids.
    pub client_ids: Vec<String>,
}

/// Storage of the exchange assignments.
#[async_trait]
pub trait AssignmentStore: Send + Sync + fmt::Debug {
    /// Reads one Teams extension assignment.
    async fn get_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<Option<TeamsExtensionAssignment>>;

    /// Creates or replaces one; `true` when it was created.
    async fn put_teams_extension_assignment(
        &self,
        a: TeamsExtensionAssignment,
    ) -> StoreResult<bool>;

    /// Deletes one; `true` when it existed.
    async fn delete_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> StoreResult<bool>;

    /// Reads one Entra assignment.
    async fn get_entra_assignment(&self, object_id: &str) -> StoreResult<Option<EntraAssignment>>;

    /// Entra assignments ordered by object id, after `after`, at most `limit`.
    async fn list_entra_assignments(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<EntraAssignment>>;

    /// Applies upserts (`Some`) and deletions (`None`) in one transaction; returns for each
    /// upsert whether it was created.
    async fn update_entra_assignments(
        &self,
        changes: Vec<(String, Option<EntraAssignment>)>,
    ) -> StoreResult<Vec<bool>>;

    /// Entra assignments that could apply to a token of `tenant_id` for `object_ids`
    /// (the user itself, its groups, and the tenant).
    async fn find_entra_assignments(
        &self,
        tenant_id: &str,
        object_ids: &[String],
    ) -> StoreResult<Vec<EntraAssignment>>;
}

/// A complete store.
pub trait Store: IdentityStore + ResourceStore + AssignmentStore {}

impl<T: IdentityStore + ResourceStore + AssignmentStore> Store for T {}
