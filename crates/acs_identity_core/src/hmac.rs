//! HMAC-SHA256 request signatures, verified as the official SDKs send them (the Python and
//! JS SDKs run against the service in the test suite; the .NET and Java shapes are taken
//! from their sources).
//!
//! `stringToSign = VERB "\n" pathAndQuery "\n" date ";" host ";" contentHash`,
//! `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<b64>`.
//! The SDKs disagree on the host (with or without port, or the port twice) and on the path
//! (as sent or percent-decoded), so the verifier tries a small set of candidates for each.

use std::fmt;

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use time::{Duration, OffsetDateTime};

use crate::time_format::parse_http_date;

/// How far a request's date may be from the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);

/// Which of the resource's two access keys signed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyName {
    /// The primary key.
    Primary,
    /// The secondary key.
    Secondary,
}

impl KeyName {
    /// `primary` or `secondary`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyName::Primary => "primary",
            KeyName::Secondary => "secondary",
        }
    }
}

/// An access key ready for signing and verifying. `Debug` never shows the key.
#[derive(Clone)]
pub struct AccessKey {
    name: KeyName,
    key: hmac::Key,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl AccessKey {
    /// Builds a key from its raw bytes.
    pub fn new(name: KeyName, raw: &[u8]) -> Self {
        AccessKey { name, key: hmac::Key::new(hmac::HMAC_SHA256, raw) }
    }

    /// Which key this is.
    pub fn name(&self) -> KeyName {
        self.name
    }

    /// Signs a string-to-sign, giving the base64 signature.
    pub fn sign(&self, string_to_sign: &str) -> String {
        STANDARD.encode(hmac::sign(&self.key, string_to_sign.as_bytes()).as_ref())
    }
}

/// `base64(SHA-256(body))`, the `x-ms-content-sha256` value.
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(digest::digest(&digest::SHA256, body).as_ref())
}

/// The exact text that is signed.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) -> String {
    format!("{}\n{path_and_query}\n{date};{host};{content_hash}", method.to_ascii_uppercase())
}

/// The `Authorization` header value for a signature.
pub fn authorization_header(signature: &str) -> String {
    format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}")
}

/// Why a request's signature was not accepted. Never carries secret material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HmacError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    MissingAuthorization,
    /// The header is not `HMAC-SHA256 SignedHeaders=...&Signature=...`.
    #[error("malformed HMAC-SHA256 Authorization header")]
    Malformed,
    /// `SignedHeaders` is not `x-ms-date|date;host;x-ms-content-sha256`.
    #[error("unsupported SignedHeaders")]
    SignedHeaders,
    /// The signed date header is absent.
    #[error("missing date header")]
    MissingDate,
    /// The signed date header is not an HTTP date.
    #[error("unparsable date header")]
    BadDate,
    /// The date is more than 15 minutes away from the server's clock.
    #[error("request date outside the allowed clock skew")]
    ClockSkew,
    /// No `x-ms-content-sha256` header.
    #[error("missing x-ms-content-sha256 header")]
    MissingContentHash,
    /// `x-ms-content-sha256` is not the hash of the body received.
    #[error("x-ms-content-sha256 does not match the body")]
    ContentHashMismatch,
    /// No key and no host/path variant reproduces the signature.
    #[error("signature mismatch")]
    SignatureMismatch,
}

/// The parts of an `Authorization: HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The signed date header: `x-ms-date` or `date`.
    pub date_header: DateHeader,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

/// Which header carried the signed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateHeader {
    /// `x-ms-date` (every current SDK).
    XMsDate,
    /// `date` (older clients).
    Date,
}

/// Parses the `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, HmacError> {
    let (scheme, rest) = value.trim().split_once(' ').ok_or(HmacError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(HmacError::Malformed);
    }
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.trim().split('&') {
        let (k, v) = part.split_once('=').ok_or(HmacError::Malformed)?;
        match k.trim() {
            k if k.eq_ignore_ascii_case("SignedHeaders") => signed_headers = Some(v.trim()),
            // The signature is base64 and may itself end in '='; split_once kept them in `v`.
            k if k.eq_ignore_ascii_case("Signature") => signature = Some(v.trim()),
            _ => return Err(HmacError::Malformed),
        }
    }
    let signed_headers = signed_headers.ok_or(HmacError::Malformed)?;
    let signature = signature.ok_or(HmacError::Malformed)?;
    let names: Vec<String> =
        signed_headers.split(';').map(|s| s.trim().to_ascii_lowercase()).collect();
    let date_header = match names.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["x-ms-date", "host", "x-ms-content-sha256"] => DateHeader::XMsDate,
        ["date", "host", "x-ms-content-sha256"] => DateHeader::Date,
        _ => return Err(HmacError::SignedHeaders),
    };
    let signature = STANDARD.decode(signature).map_err(|_| HmacError::Malformed)?;
    if signature.len() != 32 {
        return Err(HmacError::Malformed);
    }
    Ok(ParsedAuthorization { date_header, signature })
}

/// Everything about a request that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request target's path and query, exactly as received.
    pub path_and_query: &'a str,
    /// Host values to try: the `Host` header, the URI authority, the configured public host...
    pub hosts: &'a [&'a str],
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The `x-ms-date` header, if any.
    pub x_ms_date: Option<&'a str>,
    /// The `date` header, if any.
    pub date: Option<&'a str>,
    /// The `x-ms-content-sha256` header, if any.
    pub content_hash: Option<&'a str>,
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// Verifies a request against the resource's keys; returns the key that matched.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &[AccessKey],
    now: OffsetDateTime,
) -> Result<KeyName, HmacError> {
    let auth = parse_authorization(request.authorization.ok_or(HmacError::MissingAuthorization)?)?;
    let date = match auth.date_header {
        // Prefer x-ms-date; fall back to `date` only when the client signed `date`.
        DateHeader::XMsDate => request.x_ms_date,
        DateHeader::Date => request.date.or(request.x_ms_date),
    }
    .ok_or(HmacError::MissingDate)?;
    let when = parse_http_date(date).ok_or(HmacError::BadDate)?;
    if !within_skew(when, now) {
        return Err(HmacError::ClockSkew);
    }
    let claimed_hash = request.content_hash.ok_or(HmacError::MissingContentHash)?;
    let actual_hash = content_hash(request.body);
    if claimed_hash.trim() != actual_hash {
        return Err(HmacError::ContentHashMismatch);
    }

    let decoded = percent_decode(request.path_and_query);
    let mut paths: Vec<&str> = vec![request.path_and_query];
    if let Some(d) = decoded.as_deref() {
        if d != request.path_and_query {
            paths.push(d);
        }
    }
    let hosts = candidate_hosts(request.hosts);

    for path in &paths {
        for host in &hosts {
            let sts = string_to_sign(request.method, path, date, host, &actual_hash);
            for key in keys {
                if hmac::verify(&key.key, sts.as_bytes(), &auth.signature).is_ok() {
                    return Ok(key.name);
                }
            }
        }
    }
    Err(HmacError::SignatureMismatch)
}

/// The host values a signature may have been made over, for the hosts a request reached:
/// each as received, without its port (Java), and with its port repeated (the JS SDK's
/// browser build of `@azure/communication-common` before 2.4.2 signs `host:port:port`
/// while the browser sends `Host: host:port`; in Node the same SDK also sends
/// `host:port:port`, which arrives as received). At most three per host.
fn candidate_hosts(received: &[&str]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::with_capacity(received.len() * 3);
    for h in received {
        push_unique(&mut hosts, (*h).to_owned());
        if let Some(bare) = strip_port(h) {
            push_unique(&mut hosts, bare.to_owned());
        }
        if let Some(port) = single_port(h) {
            push_unique(&mut hosts, format!("{h}:{port}"));
        }
    }
    hosts
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> Option<&str> {
    if let Some(end) = host.find(']') {
        return (end + 1 < host.len()).then(|| &host[..=end]);
    }
    host.split_once(':').map(|(h, _)| h)
}

/// The port of `host:port` (or `[v6]:port`) when there is exactly one, all digits.
fn single_port(host: &str) -> Option<&str> {
    let rest = match host.find(']') {
        Some(end) => &host[end + 1..],
        None => host.split_once(':').map_or("", |(h, _)| &host[h.len()..]),
    };
    let port = rest.strip_prefix(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

/// Percent-decodes `s`; `None` when nothing was encoded or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether the client's `when` is within [`MAX_CLOCK_SKEW`] of `now`. Only the server's
/// `now` enters the arithmetic, checked: a bound past the end of the calendar is no bound.
fn within_skew(when: OffsetDateTime, now: OffsetDateTime) -> bool {
    now.checked_sub(MAX_CLOCK_SKEW).is_none_or(|earliest| when >= earliest)
        && now.checked_add(MAX_CLOCK_SKEW).is_none_or(|latest| when <= latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const DATE: &str = "Wed, 07 Sep 2022 13:34:56 GMT";
    const HOST: &str = "contoso.communication.azure.com";

    fn key(name: KeyName, b64: &str) -> AccessKey {
        AccessKey::new(name, &STANDARD.decode(b64).unwrap())
    }

    #[test]
    fn wire_md_vectors() {
        let k = key(KeyName::Primary, KEY_B64);
        let body = br#"{"createTokenWithScopes":["chat"]}"#;
        let hash = content_hash(body);
        assert_eq!(hash, "WTRvgEjjVd+bvyKw3WgXgDkU81aV8FWq+4/BE+he0+A=");
        let sts = string_to_sign("POST", "/identities?api-version=2023-10-01", DATE, HOST, &hash);
        assert_eq!(k.sign(&sts), "9zMQcto7E8Tcs0VTRGaOmBs5Kh6QIkFLz6A6GdcIKfs=");
        let path = "/identities/8%3Aacs%3A00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001?api-version=2023-10-01";
        let sts = string_to_sign("DELETE", path, DATE, HOST, &content_hash(b""));
        assert_eq!(k.sign(&sts), "8vp0qffIiqG+kvgkcghzZcXjoVSh8H9vRLbMitLVujE=");
        assert_eq!(content_hash(b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn js_sdk_vectors() {
        let k = key(KeyName::Primary, "pw==");
        let date = "Wed, 13 Apr 2022 18:09:12 GMT";
        let h = content_hash(b"");
        let sts = string_to_sign("GET", "/testPath?testQuery=test", date, "example.com", &h);
        assert_eq!(k.sign(&sts), "DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU=");
        let sts = string_to_sign("GET", "/testPath", date, "example.com", &h);
        assert_eq!(k.sign(&sts), "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU=");
    }

    /// Signatures made by the browser build of `@azure/communication-common` 2.3.1 (WebCrypto
    /// HMAC over `url.host + ":" + url.port`, no `Host` header set), bundled with esbuild for
    /// the browser platform and run with the key above, the date above and `Date` fixed. What
    /// a browser sends with them is the `Host` of the URL: `host:port`, or the bare host on the
    /// default port (which the SDK leaves out of the URL, so nothing is repeated).
    #[test]
    fn js_browser_build_vectors() {
        let keys = [key(KeyName::Primary, KEY_B64)];
        let create = "/identities?api-version=2023-10-01";
        let delete = "/identities/8%3Aacs%3A00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001?api-version=2023-10-01";
        let chat = br#"{"createTokenWithScopes":["chat"]}"#.as_slice();
        let cases: [(&str, &str, &str, &[u8], &str); 4] = [
            (
                "POST",
                create,
                "127.0.0.1:8443",
                chat,
                "qlt512PKszhD3IUHdX+sM7rOsjgqJiNjres8LmU8Uwc=",
            ),
            (
                "DELETE",
                delete,
                "localhost:8443",
                b"",
                "G3+aaR38ZhcZXcgx3AQDuYV0ngjMq/S9HWRoNRrvlkE=",
            ),
            ("POST", create, "[::1]:8443", b"{}", "A2JGe2pV5J4CaajJcZ7Fszf4CRwM/fjT3CBDn0GemNo="),
            ("POST", create, HOST, b"{}", "Tm9M0yrGqKiQc8ygA0UvvZUqzNWZi9jyGC97cMIyTv8="),
        ];
        for (method, path, host, body, signature) in cases {
            let auth = authorization_header(signature);
            let hash = content_hash(body);
            let hosts = [host];
            let mut req = request(&auth, &hash, path, &hosts, body);
            req.method = method;
            assert_eq!(verify(&req, &keys, NOW), Ok(KeyName::Primary), "{method} {host}");
            // The signature is over the repeated port, not over what the browser sent.
            let sts = string_to_sign(method, path, DATE, host, &hash);
            assert_eq!(keys[0].sign(&sts) == signature, host == HOST, "{host}");
            // Another port or another host does not verify it.
            if let Some((name, _)) = host.rsplit_once(':') {
                let moved = format!("{name}:9443");
                let hosts = [moved.as_str()];
                let mut req = request(&auth, &hash, path, &hosts, body);
                req.method = method;
                assert_eq!(verify(&req, &keys, NOW), Err(HmacError::SignatureMismatch));
            }
        }
    }

    #[test]
    fn a_handful_of_candidate_hosts() {
        assert_eq!(
            candidate_hosts(&["localhost:8443"]),
            ["localhost:8443", "localhost", "localhost:8443:8443"]
        );
        // Node's JS SDK sends the doubled form: nothing is tripled.
        assert_eq!(candidate_hosts(&["localhost:8443:8443"]), ["localhost:8443:8443", "localhost"]);
        assert_eq!(candidate_hosts(&["[::1]:8443"]), ["[::1]:8443", "[::1]", "[::1]:8443:8443"]);
        assert_eq!(candidate_hosts(&["example.com", "example.com"]), ["example.com"]);
        assert_eq!(candidate_hosts(&["example.com:"]), ["example.com:", "example.com"]);
        // Host header and URI authority alike: still at most three candidates per host.
        assert_eq!(candidate_hosts(&["a:1", "a:1", "b:2"]).len(), 6);
    }

    fn signed(
        k: &AccessKey,
        method: &'static str,
        path: &'static str,
        host: &'static str,
        body: &'static [u8],
    ) -> (String, String) {
        let h = content_hash(body);
        (authorization_header(&k.sign(&string_to_sign(method, path, DATE, host, &h))), h)
    }

    fn request<'a>(
        auth: &'a str,
        hash: &'a str,
        path: &'a str,
        hosts: &'a [&'a str],
        body: &'a [u8],
    ) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path_and_query: path,
            hosts,
            authorization: Some(auth),
            x_ms_date: Some(DATE),
            date: None,
            content_hash: Some(hash),
            body,
        }
    }

    const SIGNED_AT: OffsetDateTime = datetime!(2022-09-07 13:34:56 UTC);
    const NOW: OffsetDateTime = datetime!(2022-09-07 13:40 UTC);

    #[test]
    fn accepts_primary_and_secondary() {
        let p = key(KeyName::Primary, KEY_B64);
        let s = key(KeyName::Secondary, "pw==");
        let keys = [p.clone(), s.clone()];
        for (k, name) in [(&p, KeyName::Primary), (&s, KeyName::Secondary)] {
            let (auth, hash) = signed(k, "POST", "/identities?api-version=2023-10-01", HOST, b"{}");
            let req = request(&auth, &hash, "/identities?api-version=2023-10-01", &[HOST], b"{}");
            assert_eq!(verify(&req, &keys, NOW), Ok(name));
        }
    }

    #[test]
    fn accepts_sdk_host_and_path_variants() {
        let k = key(KeyName::Primary, KEY_B64);
        let keys = [k.clone()];
        let sent = "/identities/8%3Aacs%3Ax_y/:issueAccessToken?api-version=2023-10-01";
        // Python async signs the decoded path.
        let (auth, hash) = signed(
            &k,
            "POST",
            "/identities/8:acs:x_y/:issueAccessToken?api-version=2023-10-01",
            "localhost:8443",
            b"{}",
        );
        assert!(
            verify(&request(&auth, &hash, sent, &["localhost:8443"], b"{}"), &keys, NOW).is_ok()
        );
        // Java signs the host without the port.
        let (auth, hash) = signed(&k, "POST", sent, "localhost", b"{}");
        assert!(
            verify(&request(&auth, &hash, sent, &["localhost:8443"], b"{}"), &keys, NOW).is_ok()
        );
        // JS in Node signs and sends "host:port:port".
        let (auth, hash) = signed(&k, "POST", sent, "localhost:8443:8443", b"{}");
        assert!(verify(&request(&auth, &hash, sent, &["localhost:8443:8443"], b"{}"), &keys, NOW)
            .is_ok());
        // JS in a browser signs "host:port:port" and the browser sends "host:port".
        assert!(
            verify(&request(&auth, &hash, sent, &["localhost:8443"], b"{}"), &keys, NOW).is_ok()
        );
        assert_eq!(
            verify(&request(&auth, &hash, sent, &["localhost:9443"], b"{}"), &keys, NOW),
            Err(HmacError::SignatureMismatch)
        );
    }

    #[test]
    fn rejects_tampering() {
        let k = key(KeyName::Primary, KEY_B64);
        let keys = [k.clone()];
        let path = "/identities?api-version=2023-10-01";
        let (auth, hash) = signed(&k, "POST", path, HOST, b"{}");
        let ok = request(&auth, &hash, path, &[HOST], b"{}");
        assert!(verify(&ok, &keys, NOW).is_ok());

        let other = [key(KeyName::Primary, "pw==")];
        assert_eq!(verify(&ok, &other, NOW), Err(HmacError::SignatureMismatch));
        let body = request(&auth, &hash, path, &[HOST], b"{ }");
        assert_eq!(verify(&body, &keys, NOW), Err(HmacError::ContentHashMismatch));
        let p = request(&auth, &hash, "/identities?api-version=2022-10-01", &[HOST], b"{}");
        assert_eq!(verify(&p, &keys, NOW), Err(HmacError::SignatureMismatch));
        let h = request(&auth, &hash, path, &["evil.example"], b"{}");
        assert_eq!(verify(&h, &keys, NOW), Err(HmacError::SignatureMismatch));
        let mut m = ok;
        m.method = "DELETE";
        assert_eq!(verify(&m, &keys, NOW), Err(HmacError::SignatureMismatch));
        for (at, expect) in [
            (SIGNED_AT + Duration::minutes(16), Err(HmacError::ClockSkew)),
            (SIGNED_AT - Duration::minutes(16), Err(HmacError::ClockSkew)),
            (SIGNED_AT + Duration::minutes(14), Ok(KeyName::Primary)),
            (SIGNED_AT - Duration::minutes(14), Ok(KeyName::Primary)),
        ] {
            assert_eq!(verify(&ok, &keys, at), expect);
        }
        // Dates at the ends of what an HTTP date can say, with extreme offsets: refused,
        // never an overflow, also when the server's clock is at the end of the calendar.
        let end = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT);
        for date in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Mon, 01 Jan 1900 00:00:00 +2359",
            "Mon, 01 Jan 1900 00:00:00 GMT",
        ] {
            let mut far = ok;
            far.x_ms_date = Some(date);
            assert_eq!(verify(&far, &keys, NOW), Err(HmacError::ClockSkew), "{date}");
            assert!(verify(&far, &keys, end).is_err(), "{date}");
        }
        assert!(within_skew(end, end) && !within_skew(NOW, end));
        let mut no_date = ok;
        no_date.x_ms_date = None;
        assert_eq!(verify(&no_date, &keys, NOW), Err(HmacError::MissingDate));
        let mut no_hash = ok;
        no_hash.content_hash = None;
        assert_eq!(verify(&no_hash, &keys, NOW), Err(HmacError::MissingContentHash));
        let mut no_auth = ok;
        no_auth.authorization = None;
        assert_eq!(verify(&no_auth, &keys, NOW), Err(HmacError::MissingAuthorization));
    }

    /// Signs like the SDKs do, written out here rather than through this module:
    /// `METHOD\npath?query\ndate;host;base64(sha256(body))`, HMAC-SHA256 with the key.
    fn reference_authorization(
        key: &[u8],
        method: &str,
        pq: &str,
        host: &str,
        body: &[u8],
    ) -> (String, String) {
        let hash = STANDARD.encode(digest::digest(&digest::SHA256, body));
        let to_sign = format!("{method}\n{pq}\n{DATE};{host};{hash}");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), to_sign.as_bytes());
        let signature = STANDARD.encode(tag.as_ref());
        (
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
            hash,
        )
    }

    proptest::proptest! {
        /// Any request signed as the SDKs sign it verifies with its key, and changing any
        /// signed part (method, path, query, host, body) or the key makes it fail.
        #[test]
        fn string_to_sign_covers_every_signed_part(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64),
            method in proptest::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
            path in "/[a-zA-Z0-9_.~:-]{0,40}(/[a-zA-Z0-9_.~:-]{1,20}){0,3}",
            query in "[a-z]{1,10}=[a-zA-Z0-9-]{0,20}",
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,10}){0,2}(:[1-9][0-9]{0,4})?",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            flip in 0usize..5,
        ) {
            let pq = format!("{path}?{query}");
            let (auth, hash) = reference_authorization(&key, method, &pq, &host, &body);
            let keys = [AccessKey::new(KeyName::Secondary, &key)];
            let hosts = [host.as_str()];
            let mut ok = request(&auth, &hash, &pq, &hosts, &body);
            ok.method = method;
            proptest::prop_assert_eq!(verify(&ok, &keys, NOW), Ok(KeyName::Secondary));

            let mut other_key = key.clone();
            other_key[0] ^= 1;
            proptest::prop_assert!(verify(&ok, &[AccessKey::new(KeyName::Primary, &other_key)], NOW).is_err());

            let (other_pq, other_host) = (format!("{path}x?{query}"), format!("x{host}"));
            let (query_pq, mut other_body) = (format!("{path}?{query}x"), body.clone());
            other_body.push(b'!');
            let other_hosts = [other_host.as_str()];
            let mut changed = ok;
            match flip {
                0 => changed.method = if method == "POST" { "PUT" } else { "POST" },
                1 => changed.path_and_query = &other_pq,
                2 => changed.path_and_query = &query_pq,
                3 => changed.hosts = &other_hosts,
                _ => changed.body = &other_body,
            }
            proptest::prop_assert!(verify(&changed, &keys, NOW).is_err(), "change {} verified", flip);
        }
    }

    #[test]
    fn accepts_date_as_signed_header() {
        let k = key(KeyName::Primary, KEY_B64);
        let path = "/identities?api-version=2023-10-01";
        let hash = content_hash(b"");
        let sig = k.sign(&string_to_sign("POST", path, DATE, HOST, &hash));
        let auth =
            format!("HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={sig}");
        let mut req = request(&auth, &hash, path, &[HOST], b"");
        req.x_ms_date = None;
        req.date = Some(DATE);
        assert_eq!(verify(&req, &[k], NOW), Ok(KeyName::Primary));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for bad in [
            "",
            "HMAC-SHA256",
            "Bearer abc",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256",
            "HMAC-SHA256 Signature=AAAA",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature=AAAA",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=not base64!",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA",
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=a&Extra=1",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%3Ab"), Some("/a:b".to_owned()));
        assert_eq!(percent_decode("/plain"), None);
        assert_eq!(percent_decode("/bad%zz%"), Some("/bad%zz%".to_owned()));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn strip_port_handles_ipv6_and_double_ports() {
        assert_eq!(strip_port("localhost:8443"), Some("localhost"));
        assert_eq!(strip_port("localhost:8443:8443"), Some("localhost"));
        assert_eq!(strip_port("[::1]:8443"), Some("[::1]"));
        assert_eq!(strip_port("[::1]"), None);
        assert_eq!(strip_port("example.com"), None);
        assert_eq!(single_port("localhost:8443"), Some("8443"));
        assert_eq!(single_port("[::1]:8443"), Some("8443"));
        for none in ["localhost", "localhost:8443:8443", "[::1]", "a:b", "a:", "[::1]:"] {
            assert_eq!(single_port(none), None, "{none}");
        }
    }
}
