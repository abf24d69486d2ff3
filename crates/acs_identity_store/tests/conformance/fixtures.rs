//! Fixtures shared by the cases.

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::ResourceId;
use acs_identity_core::store::{
    AccessKeyRecord, ResourceRecord, ResourceState, SecretBytes, SigningKeyRecord,
};
use acs_identity_core::token::SigningAlgorithm;
use time::OffsetDateTime;
use uuid::Uuid;

/// A row that makes the database's schema one this program does not know (SQLite syntax;
/// PostgreSQL wants the checksum as `'\x00'::bytea`).
pub(crate) const FUTURE_MIGRATION: &str = "INSERT INTO _sqlx_migrations \
     (version, description, success, checksum, execution_time) \
     VALUES (99990101000000, 'from a newer program', TRUE, x'00', 0)";

/// A time with every nanosecond digit set.
pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(1_700_000_000 + seconds) * 1_000_000_000 + 123_456_789,
    )
    .expect("time")
}

/// A resource with distinct keys derived from `seed` (the key bytes are not real keys:
/// stores keep them as opaque bytes).
pub(crate) fn resource(seed: u8) -> ResourceState {
    ResourceState {
        resource: ResourceRecord {
            resource_id: ResourceId::from_uuid(Uuid::new_v4()),
            data_location: format!("location{seed}"),
            created_at: at(i64::from(seed)),
        },
        access_keys: vec![
            AccessKeyRecord {
                name: KeyName::Primary,
                key: SecretBytes(vec![seed; 64]),
                version: 1,
            },
            AccessKeyRecord {
                name: KeyName::Secondary,
                key: SecretBytes(vec![seed.wrapping_add(1); 64]),
                version: 3,
            },
        ],
        signing_keys: vec![signing_key(&format!("kid-{seed}"), 0)],
    }
}

/// A signing key record.
pub(crate) fn signing_key(kid: &str, created: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: SigningAlgorithm::Es256,
        pkcs8: SecretBytes(kid.as_bytes().repeat(4)),
        created_at: at(created),
    }
}
