//! Moving a resource between stores (`acs-identity export` / `import`).
//!
//! Not part of the service's store traits: the service never lists identities, and never
//! writes an identity in a state other than the one its operations produce.

use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    BoxError, IdentityRecord, ResourceState, ResourceStore, StoreError, StoreResult,
    TeamsExtensionAssignment,
};
use async_trait::async_trait;

/// Bulk reads and writes for moving a resource from one store to another.
#[async_trait]
pub trait Transfer: Send + Sync {
    /// Up to `limit` identities, live and deleted, in the store's user-id order, starting
    /// after `after` (from the first when `None`).
    async fn identities_after(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<IdentityRecord>>;

    /// Up to `limit` Teams extension assignments ordered by tenant and object id (byte-wise),
    /// starting after `after` (`(tenant_id, object_id)`).
    async fn teams_extension_assignments_after(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> StoreResult<Vec<TeamsExtensionAssignment>>;

    /// Stores identities as given, in one transaction. An identity already present is
    /// merged so that importing twice changes nothing and nothing comes back: the higher
    /// generation wins, a deletion stays, and the later token time wins.
    async fn import_identities(&self, records: &[IdentityRecord]) -> StoreResult<()>;

    /// Stores the resource with its access and signing keys when the store has none.
    /// When the store already holds the same resource, adds the signing keys it lacks.
    /// Refuses ([`ImportConflict`]) a store holding a different resource, or the same
    /// resource with different access keys.
    async fn import_resource(&self, state: &ResourceState) -> StoreResult<ResourceState>;
}

/// The target store holds something an import must not overwrite.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImportConflict(pub String);

fn conflict(message: String) -> StoreError {
    StoreError::Backend(Box::new(ImportConflict(message)))
}

/// The backends' `import_resource`, on top of [`ResourceStore`].
pub(crate) async fn import_resource(
    store: &dyn ResourceStore,
    incoming: &ResourceState,
) -> StoreResult<ResourceState> {
    let stored = match store.load_resource().await? {
        Some(stored) => stored,
        None => store.init_resource(incoming.clone()).await?,
    };
    check_same_resource(&stored, incoming)?;
    let mut added = false;
    for key in &incoming.signing_keys {
        match stored.signing_keys.iter().find(|k| k.kid == key.kid) {
            Some(existing) if existing != key => {
                return Err(conflict(format!(
                "the target holds a different signing key with kid {}: refusing to import over it",
                key.kid
            )))
            }
            Some(_) => {}
            None => {
                store.add_signing_key(key.clone()).await?;
                added = true;
            }
        }
    }
    if !added {
        return Ok(stored);
    }
    store
        .load_resource()
        .await?
        .ok_or_else(|| StoreError::Backend(BoxError::from("resource missing after import")))
}

/// Checks that `stored` (already in the target) may receive `incoming`.
fn check_same_resource(stored: &ResourceState, incoming: &ResourceState) -> StoreResult<()> {
    if stored.resource.resource_id != incoming.resource.resource_id {
        return Err(conflict(format!(
            "the target already holds resource {}, not {}: refusing to import over it",
            stored.resource.resource_id, incoming.resource.resource_id
        )));
    }
    let mut a = stored.access_keys.clone();
    let mut b = incoming.access_keys.clone();
    a.sort_by_key(|k| k.name.as_str());
    b.sort_by_key(|k| k.name.as_str());
    if a != b {
        return Err(conflict(format!(
            "the target holds resource {} with different access keys: refusing to import over it",
            stored.resource.resource_id
        )));
    }
    Ok(())
}
