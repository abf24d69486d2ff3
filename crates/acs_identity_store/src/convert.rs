//! Conversions between domain values and column values shared by the backends.

use std::str::FromStr;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::{ResourceId, UserId};
use acs_identity_core::store::{
    AccessKeyRecord, BoxError, EntraAssignment, IdentityRecord, ResourceRecord, SecretBytes,
    SigningKeyRecord, StoreError, StoreResult, TeamsExtensionAssignment,
};
use acs_identity_core::token::SigningAlgorithm;
use time::OffsetDateTime;

pub(crate) fn to_nanos(t: OffsetDateTime) -> i64 {
    // i64 nanoseconds cover 1677..2262; clamp rather than fail outside that.
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

pub(crate) fn from_nanos(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| corrupt(format!("bad timestamp: {e}")))
}

pub(crate) fn key_name(s: &str) -> Result<KeyName, StoreError> {
    match s {
        "primary" => Ok(KeyName::Primary),
        "secondary" => Ok(KeyName::Secondary),
        other => Err(corrupt(format!("unknown access key name {other:?}"))),
    }
}

pub(crate) fn alg(s: &str) -> Result<SigningAlgorithm, StoreError> {
    s.parse().map_err(corrupt)
}

pub(crate) fn corrupt(msg: String) -> StoreError {
    StoreError::Backend(BoxError::from(msg))
}

pub(crate) fn generation(g: i64) -> Result<u64, StoreError> {
    u64::try_from(g).map_err(|_| corrupt(format!("negative generation {g}")))
}

/// The resource row, for [`resource_from_row`].
/// The columns of a Teams extension assignment, in the order both backends select them.
pub(crate) const TEAMS_COLUMNS: &str = "tenant_id, object_id, principal_type, client_ids";
/// The columns of an Entra assignment, in the order both backends select them.
pub(crate) const ENTRA_COLUMNS: &str = "object_id, tenant_id, principal_type, client_ids";
/// At most this many object ids (the user, its tenant, its groups) are looked up for one
/// Entra token; a token naming more groups is looked up by the first ones.
pub(crate) const MAX_LOOKUP_IDS: usize = 256;

pub(crate) const RESOURCE_QUERY: &str =
    "SELECT resource_id, data_location, created_at FROM resource";
/// The access keys, for [`access_key_from_row`].
pub(crate) const ACCESS_KEYS_QUERY: &str =
    "SELECT name, key, version FROM access_keys ORDER BY name";
/// The signing keys, oldest first, for [`signing_key_from_row`].
pub(crate) const SIGNING_KEYS_QUERY: &str =
    "SELECT kid, alg, pkcs8, created_at FROM signing_keys ORDER BY created_at, kid";

/// The [`Columns`] methods that read a column by name with `sqlx::Row::try_get`, mapping
/// errors with the backend's `$backend` function.
macro_rules! columns_by_name {
    ($backend:path) => {
        fn text(&self, name: &str) -> StoreResult<String> {
            self.try_get(name).map_err($backend)
        }
        fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
            self.try_get(name).map_err($backend)
        }
        fn int(&self, name: &str) -> StoreResult<i64> {
            self.try_get(name).map_err($backend)
        }
        fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
            self.try_get(name).map_err($backend)
        }
        fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
            self.try_get(name).map_err($backend)
        }
    };
}
pub(crate) use columns_by_name;

/// The columns of a result row, read the same way on both backends; each backend maps its
/// own errors and stores `user_id` and `client_ids` its own way.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>>;
    /// The `user_id` column.
    fn user_id(&self) -> StoreResult<UserId>;
    /// The `client_ids` column; `None` when it is NULL.
    fn client_ids(&self) -> StoreResult<Option<Vec<String>>>;
}

/// An identity from the columns of `IDENTITY_COLUMNS`.
pub(crate) fn identity_from_row(row: &impl Columns) -> StoreResult<IdentityRecord> {
    Ok(IdentityRecord {
        user: row.user_id()?,
        custom_id: row.opt_text("custom_id")?,
        created_at: from_nanos(row.int("created_at")?)?,
        deleted_at: row.opt_int("deleted_at")?.map(from_nanos).transpose()?,
        generation: generation(row.int("generation")?)?,
        last_token_issued_at: row.opt_int("last_token_issued_at")?.map(from_nanos).transpose()?,
    })
}

/// `resource_id, data_location, created_at` of the `resource` row.
pub(crate) fn resource_from_row(row: &impl Columns) -> StoreResult<ResourceRecord> {
    let id = row.text("resource_id")?;
    Ok(ResourceRecord {
        resource_id: ResourceId::from_str(&id)
            .map_err(|e| corrupt(format!("bad resource id: {e}")))?,
        data_location: row.text("data_location")?,
        created_at: from_nanos(row.int("created_at")?)?,
    })
}

/// `name, key, version` of an `access_keys` row.
pub(crate) fn access_key_from_row(row: &impl Columns) -> StoreResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        name: key_name(&row.text("name")?)?,
        key: SecretBytes(row.bytes("key")?),
        version: generation(row.int("version")?)?,
    })
}

/// `kid, alg, pkcs8, created_at` of a `signing_keys` row.
pub(crate) fn signing_key_from_row(row: &impl Columns) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.text("kid")?,
        alg: alg(&row.text("alg")?)?,
        pkcs8: SecretBytes(row.bytes("pkcs8")?),
        created_at: from_nanos(row.int("created_at")?)?,
    })
}

/// A `teams_extension_assignments` row.
pub(crate) fn teams_assignment_from_row(
    row: &impl Columns,
) -> StoreResult<TeamsExtensionAssignment> {
    Ok(TeamsExtensionAssignment {
        tenant_id: row.text("tenant_id")?,
        object_id: row.text("object_id")?,
        principal_type: row.text("principal_type")?,
        client_ids: row.client_ids()?,
    })
}

/// An `entra_assignments` row.
pub(crate) fn entra_assignment_from_row(row: &impl Columns) -> StoreResult<EntraAssignment> {
    Ok(EntraAssignment {
        object_id: row.text("object_id")?,
        tenant_id: row.text("tenant_id")?,
        principal_type: row.text("principal_type")?,
        client_ids: row.client_ids()?.unwrap_or_default(),
    })
}
