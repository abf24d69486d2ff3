//! `ConnectionString::parse` over arbitrary text: never panics; what it accepts is an
//! http(s) endpoint without path, query or credentials and a base64 key; printing the
//! parsed parts back as a connection string parses to the same parts.
#![no_main]

use acs_common::connection_string::ConnectionString;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = ConnectionString::parse(text) else { return };
    let endpoint = parsed.endpoint();
    assert!(matches!(endpoint.scheme(), "http" | "https"));
    assert!(endpoint.host_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(endpoint.path(), "/");
    assert!(endpoint.query().is_none() && endpoint.fragment().is_none());
    let key = parsed.access_key().secret();
    assert!(!base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("accepted key is base64")
        .is_empty());
    // Debug never shows the key. (A short key can be a substring of the field names or
    // of the endpoint, e.g. "cess" of "access_key"; real keys are 88 characters.)
    let debug = format!("{parsed:?}");
    assert!(!debug.contains(key) || key.len() < 16 || endpoint.as_str().contains(key));

    let printed = format!("endpoint={endpoint};accesskey={key}");
    let again = ConnectionString::parse(&printed).expect("printed connection string parses");
    assert_eq!(again.endpoint(), endpoint);
    assert_eq!(again.access_key().secret(), key);
});
