//! Raw identifiers: `CommunicationIdentifier::from_raw_id` never panics and round-trips
//! (`from_raw_id(s).raw_id() == s`, same kind when parsed again); the server's
//! `parse_identity` never panics, accepts only the canonical raw id of a user of its own
//! resource, and accepts every id it hands out.
#![no_main]

use acs_common::identifier::CommunicationIdentifier;
use acs_identity_core::id::{parse_identity, ParsedIdentity, ResourceId, UserId};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const RESOURCE: &str = "2dee53b4-368b-45b4-ab52-8493fb117652";

fuzz_target!(|data: &[u8]| {
    let resource: ResourceId = RESOURCE.parse().expect("resource id");

    // Every 16 bytes also make a user id, which must be recognised as ours.
    if data.len() >= 16 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&data[..16]);
        let user = UserId::from_uuid(Uuid::from_bytes(b));
        assert_eq!(parse_identity(&user.raw_id(resource), resource), ParsedIdentity::Ours(user));
    }

    let Ok(raw) = std::str::from_utf8(data) else { return };
    let id = CommunicationIdentifier::from_raw_id(raw);
    assert_eq!(id.raw_id(), raw, "raw id does not round-trip (kind {})", id.kind());
    let again = CommunicationIdentifier::from_raw_id(&id.raw_id());
    assert_eq!(again.kind(), id.kind());
    assert_eq!(raw.parse::<CommunicationIdentifier>().is_ok(), !raw.is_empty());

    match parse_identity(raw, resource) {
        ParsedIdentity::Ours(user) => {
            assert_eq!(user.raw_id(resource), raw, "a non-canonical id was accepted");
            assert_eq!(id.kind(), "communicationUser");
        }
        ParsedIdentity::NotOwned => {}
    }
});
