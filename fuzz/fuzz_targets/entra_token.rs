//! Entra tokens (`UnverifiedToken::parse` and `verify`).
//!
//! * Arbitrary text never panics the parser or the verifier, and never verifies.
//! * Tokens signed by the trusted issuer's key over arbitrary JSON claims never panic
//!   the verifier; when they verify, the claims returned are the ones signed.
//! * Any single-byte change to a signed token makes it fail.
#![no_main]

use std::sync::OnceLock;

use acs_identity_core::entra::{parse_jwks, Cloud, TrustedIssuer, UnverifiedToken};
use arbitrary::Arbitrary;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-03-04 05:06:07 UTC);
const ISS: &str = "https://login.microsoftonline.com/c70d068c-2f32-484d-9455-73070cd5aadd/v2.0";
const AUDIENCES: &[&str] = &["https://communication.azure.com", "https://communication.azure.com/"];

struct Fixture {
    pair: EcdsaKeyPair,
    issuer: TrustedIssuer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .expect("key");
        let point = pair.public_key().as_ref().to_vec();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).expect("jwks");
        assert_eq!(keys.len(), 1);
        Fixture {
            pair,
            issuer: TrustedIssuer { issuer: ISS.to_owned(), keys, cloud: Cloud::default() },
        }
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    header: Option<String>,
    claims: String,
    exp: Option<i64>,
    mutate_at: u16,
    mutate_to: u8,
}

fn sign(f: &Fixture, header: &str, payload: &[u8]) -> String {
    let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let sig = f.pair.sign(&SystemRandom::new(), signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fuzz_target!(|input: Input| {
    let f = fixture();
    if let Ok(t) = UnverifiedToken::parse(&input.text) {
        let _ = t.issuer();
        let _ = t.kid();
        assert!(t.verify(&f.issuer, AUDIENCES, NOW).is_err(), "arbitrary text verified");
    }

    // Claims: the fuzzer's JSON when it is an object, else a well-formed set; either way
    // with an `exp` the fuzzer may choose outright, so the time checks see every value.
    let claims: Value = match serde_json::from_str::<Value>(&input.claims) {
        Ok(Value::Object(mut m)) => {
            if let Some(exp) = input.exp {
                m.insert("exp".into(), exp.into());
            }
            Value::Object(m)
        }
        _ => json!({
            "iss": ISS, "aud": AUDIENCES[0], "tid": "t", "oid": input.claims,
            "exp": input.exp.unwrap_or(NOW.unix_timestamp() + 3600),
        }),
    };
    let header = input
        .header
        .clone()
        .unwrap_or_else(|| r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#.to_owned());
    let token = sign(f, &header, claims.to_string().as_bytes());
    if let Ok(t) = UnverifiedToken::parse(&token) {
        if let Ok(verified) = t.verify(&f.issuer, AUDIENCES, NOW) {
            assert_eq!(verified.iss, ISS);
            assert!(AUDIENCES.contains(&verified.aud.as_str()));
            assert_eq!(verified.oid.as_deref(), claims.get("oid").and_then(Value::as_str));
            assert!(verified.exp.unix_timestamp() >= NOW.unix_timestamp() - 300);
        }
    }

    let mut bytes = token.into_bytes();
    let at = usize::from(input.mutate_at) % bytes.len();
    if bytes[at] != input.mutate_to {
        bytes[at] = input.mutate_to;
        if let Ok(mutated) = std::str::from_utf8(&bytes) {
            if let Ok(t) = UnverifiedToken::parse(mutated) {
                assert!(t.verify(&f.issuer, AUDIENCES, NOW).is_err(), "a mutated token verified");
            }
        }
    }
});
