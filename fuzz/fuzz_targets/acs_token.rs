//! ACS access tokens (`TokenVerifier::verify`).
//!
//! * Arbitrary text never panics the verifier and never verifies.
//! * Tokens signed with the resource's key over arbitrary claims never panic it; one for
//!   a user of the resource, unexpired, verifies with exactly the claims signed.
//! * Any single-byte change to a valid token makes it fail.
#![no_main]

use std::sync::OnceLock;

use acs_identity_core::id::{ResourceId, UserId};
use acs_identity_core::token::{AcsClaims, SigningAlgorithm, SigningKey, Subject, TokenVerifier};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-03-04 05:06:07 UTC);
const RESOURCE: &str = "2dee53b4-368b-45b4-ab52-8493fb117652";

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(SigningAlgorithm::Es256).expect("key"))
}

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    user: [u8; 16],
    skypeid: Option<String>,
    scp: u32,
    csi: String,
    exp_offset: i64,
    rgn: String,
    acs_scope: String,
    other_resource: bool,
    resource_location: String,
    iat: i64,
    gen: u64,
    akv: Option<String>,
    mutate_at: u16,
    mutate_to: u8,
}

fuzz_target!(|input: Input| {
    let resource: ResourceId = RESOURCE.parse().expect("resource");
    let verifier = TokenVerifier::new(vec![key().public_key().clone()]);
    assert!(verifier.verify(&input.text, resource, NOW).is_err(), "arbitrary text verified");

    let user = UserId::from_uuid(Uuid::from_bytes(input.user));
    let claims = AcsClaims {
        skypeid: input.skypeid.clone().unwrap_or_else(|| user.skype_id(resource)),
        scp: input.scp,
        csi: input.csi,
        exp: NOW.unix_timestamp().saturating_add(input.exp_offset),
        rgn: input.rgn,
        acs_scope: input.acs_scope,
        resource_id: if input.other_resource {
            Uuid::nil().to_string()
        } else {
            resource.to_string()
        },
        resource_location: input.resource_location,
        iat: input.iat,
        gen: input.gen,
        akv: input.akv,
    };
    let token = key().sign_claims(&claims).expect("sign");
    let outcome = verifier.verify(&token, resource, NOW);
    let expected_ok = input.skypeid.is_none()
        && !input.other_resource
        && claims.exp > NOW.unix_timestamp()
        && token.len() <= 8 * 1024;
    if expected_ok {
        let verified = outcome.expect("a valid token was refused");
        assert_eq!(verified.claims, claims);
        assert_eq!(verified.subject, Subject::User(user));
    } else if let Ok(verified) = &outcome {
        // Only a chosen subject (another user or an exchanged identity) of this resource.
        assert!(input.skypeid.is_some() && !input.other_resource, "{verified:?}");
        assert!(claims.exp > NOW.unix_timestamp(), "{verified:?}");
        assert_eq!(verified.claims, claims);
    }

    let mut bytes = token.into_bytes();
    let at = usize::from(input.mutate_at) % bytes.len();
    if bytes[at] != input.mutate_to {
        bytes[at] = input.mutate_to;
        if let Ok(mutated) = std::str::from_utf8(&bytes) {
            assert!(verifier.verify(mutated, resource, NOW).is_err(), "a mutated token verified");
        }
    }
});
