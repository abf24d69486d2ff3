//! The well-known development resource (`--dev`): a fixed resource id and fixed access keys,
//! published in the README like Azurite's `devstoreaccount1`, so a test configuration can
//! hold its connection string. Served only on loopback listeners (see `Config::validate`).

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::ResourceId;
use acs_identity_core::store::{
    AccessKeyRecord, ResourceRecord, ResourceState, SecretBytes, Store,
};
use acs_identity_core::token::{DataLocation, SigningAlgorithm};
use acs_identity_core::Clock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::state::new_signing_key;

/// The development resource's id.
pub const DEV_RESOURCE_ID: uuid::Uuid = uuid::uuid!("ac5de7e1-0000-4000-8000-000000000001");

/// The development resource's primary access key (base64, as connection strings carry it).
/// Public: anyone may read it in the README.
pub const DEV_PRIMARY_KEY: &str =
    "+B5wj9INx4oQes2m3YV56IiEFBzXwu+BetpR8pKaFp6tiBd/e5Nr2AFQtjjrCAz0OtaLfEm1LFUei2RFKgD5rg==";

/// The development resource's secondary access key (base64).
pub const DEV_SECONDARY_KEY: &str =
    "Su7YMnpKCJ7tdYCjUlPf5qK80RJkCdosCyzSgqnEMMflAxPmEvwagNa8soiJvOChXcNXBlGxe9VB4Nk/NmvxpA==";

/// Creates the development resource in an empty store; a store that already holds it is
/// left as it is (keys regenerated since stay regenerated); a store holding another resource
/// is refused.
pub async fn ensure_dev_resource(
    store: &dyn Store,
    clock: &dyn Clock,
    data_location: &str,
    alg: SigningAlgorithm,
) -> anyhow::Result<()> {
    let dev = ResourceId::from_uuid(DEV_RESOURCE_ID);
    if let Some(state) = store.load_resource().await? {
        if state.resource.resource_id != dev {
            anyhow::bail!(
                "dev: the store already holds resource {}, not the development resource {dev}; \
                 use another data directory or --in-memory",
                state.resource.resource_id
            );
        }
        return Ok(());
    }
    let now = clock.now();
    let key = |name, text: &str| -> anyhow::Result<AccessKeyRecord> {
        Ok(AccessKeyRecord { name, key: SecretBytes(STANDARD.decode(text)?), version: 1 })
    };
    store
        .init_resource(ResourceState {
            resource: ResourceRecord {
                resource_id: dev,
                data_location: DataLocation::new(data_location).name,
                created_at: now,
            },
            access_keys: vec![
                key(KeyName::Primary, DEV_PRIMARY_KEY)?,
                key(KeyName::Secondary, DEV_SECONDARY_KEY)?,
            ],
            signing_keys: vec![new_signing_key(alg, now)?],
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_64_bytes_like_acs_keys() {
        for key in [DEV_PRIMARY_KEY, DEV_SECONDARY_KEY] {
            assert_eq!(STANDARD.decode(key).unwrap().len(), 64);
        }
        assert_ne!(DEV_PRIMARY_KEY, DEV_SECONDARY_KEY);
    }
}
