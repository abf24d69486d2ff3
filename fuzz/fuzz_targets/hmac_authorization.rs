//! HMAC-SHA256 request authentication.
//!
//! * `parse_authorization` over arbitrary text never panics; what it accepts carries a
//!   32-byte signature and re-renders to a header that parses the same.
//! * `verify` over arbitrary requests (method, path, hosts, headers, body) never panics
//!   and never accepts an arbitrary signature.
//! * Differential: the same request signed the way the clients sign it verifies, with
//!   the key that signed it; one flipped signature bit, a changed body or a date outside
//!   the allowed skew make it fail.
#![no_main]

use acs_identity_core::hmac::{
    authorization_header, content_hash, parse_authorization, string_to_sign, verify, AccessKey,
    DateHeader, HmacError, KeyName, SignedRequest,
};
use acs_identity_core::time_format::http_date;
use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-03-04 05:06:07 UTC);

#[derive(Debug, Arbitrary)]
struct Input {
    header: String,
    method: String,
    path_and_query: String,
    hosts: Vec<String>,
    x_ms_date: Option<String>,
    date: Option<String>,
    content_hash: Option<String>,
    body: Vec<u8>,
    secondary: bool,
    skew_seconds: i16,
    flip: u16,
}

fn keys() -> [AccessKey; 2] {
    [AccessKey::new(KeyName::Primary, &[1u8; 32]), AccessKey::new(KeyName::Secondary, &[2u8; 32])]
}

fuzz_target!(|input: Input| {
    let keys = keys();

    // 1. The header parser alone.
    if let Ok(parsed) = parse_authorization(&input.header) {
        assert_eq!(parsed.signature.len(), 32);
        if parsed.date_header == DateHeader::XMsDate {
            let again =
                parse_authorization(&authorization_header(&STANDARD.encode(&parsed.signature)))
                    .expect("re-rendered header parses");
            assert_eq!(again, parsed);
        }
    }

    // 2. Arbitrary requests with the arbitrary header: no panic, and no forged acceptance.
    let hosts: Vec<&str> = input.hosts.iter().map(String::as_str).collect();
    let arbitrary_request = SignedRequest {
        method: &input.method,
        path_and_query: &input.path_and_query,
        hosts: &hosts,
        authorization: Some(&input.header),
        x_ms_date: input.x_ms_date.as_deref(),
        date: input.date.as_deref(),
        content_hash: input.content_hash.as_deref(),
        body: &input.body,
    };
    assert!(verify(&arbitrary_request, &keys, NOW).is_err(), "an arbitrary signature verified");

    // 3. Differential: sign as the clients do, then verify.
    let Some(host) = hosts.first().copied().filter(|h| !h.is_empty()) else { return };
    let signer = if input.secondary { &keys[1] } else { &keys[0] };
    let skew = Duration::seconds(i64::from(input.skew_seconds));
    let date = http_date(NOW + skew);
    let hash = content_hash(&input.body);
    let sts = string_to_sign(&input.method, &input.path_and_query, &date, host, &hash);
    let signature = signer.sign(&sts);
    let header = authorization_header(&signature);
    let request = SignedRequest {
        authorization: Some(&header),
        x_ms_date: Some(&date),
        date: None,
        content_hash: Some(&hash),
        ..arbitrary_request
    };
    let outcome = verify(&request, &keys, NOW);
    if skew.abs() > acs_identity_core::hmac::MAX_CLOCK_SKEW {
        assert_eq!(outcome, Err(HmacError::ClockSkew));
        return;
    }
    assert_eq!(outcome, Ok(signer.name()), "a correctly signed request was refused");

    let mut sig = STANDARD.decode(&signature).expect("base64");
    let bit = usize::from(input.flip) % (sig.len() * 8);
    sig[bit / 8] ^= 1 << (bit % 8);
    let flipped = authorization_header(&STANDARD.encode(&sig));
    let tampered = SignedRequest { authorization: Some(&flipped), ..request };
    assert_eq!(verify(&tampered, &keys, NOW), Err(HmacError::SignatureMismatch));

    let mut other_body = input.body.clone();
    other_body.push(b'x');
    let changed_body = SignedRequest { body: &other_body, ..request };
    assert_eq!(verify(&changed_body, &keys, NOW), Err(HmacError::ContentHashMismatch));
});
