//! Conversions between domain values and column values shared by the backends.

#![allow(dead_code)] // each backend uses a subset

use acs_identity_core::hmac::KeyName;
use acs_identity_core::store::{BoxError, StoreError};
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
