//! HMAC-SHA256 request signing with a Communication Services access key.
//!
//! Every request is signed as follows:
//!
//! 1. `content_hash = base64(SHA-256(body))` ([`content_hash`]); an empty body hashes to
//!    [`EMPTY_CONTENT_HASH`];
//! 2. `date` is the current time in RFC 1123 form, e.g. `Wed, 07 Sep 2022 13:34:56 GMT`
//!    ([`format_date`]);
//! 3. `string_to_sign = VERB + "\n" + path_and_query + "\n" + date + ";" + host + ";" + content_hash`
//!    ([`string_to_sign`]);
//! 4. `signature = base64(HMAC-SHA256(base64_decode(access_key), string_to_sign))`
//!    ([`compute_signature`]);
//! 5. the request carries `x-ms-date`, `x-ms-content-sha256` and
//!    `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<signature>`
//!    ([`authorization_header_value`]).
//!
//! [`HmacAuthenticationPolicy`] does all of this as an `azure_core` pipeline policy.
//!
//! ```
//! use acs_common::hmac::{compute_signature, content_hash, string_to_sign};
//!
//! let hash = content_hash(br#"{"createTokenWithScopes":["chat"]}"#);
//! assert_eq!(hash, "WTRvgEjjVd+bvyKw3WgXgDkU81aV8FWq+4/BE+he0+A=");
//! let to_sign = string_to_sign(
//!     "POST",
//!     "/identities?api-version=2023-10-01",
//!     "Wed, 07 Sep 2022 13:34:56 GMT",
//!     "contoso.communication.azure.com",
//!     &hash,
//! );
//! let key: Vec<u8> = (0u8..32).collect();
//! assert_eq!(compute_signature(&key, &to_sign), "9zMQcto7E8Tcs0VTRGaOmBs5Kh6QIkFLz6A6GdcIKfs=");
//! ```

use crate::clock::{Clock, SystemClock};
use async_trait::async_trait;
use azure_core::{
    credentials::{Secret, SecretBytes},
    error::{Error, ErrorKind},
    http::{
        headers::HeaderName,
        policies::{Policy, PolicyResult},
        Body, Context, Request, Url,
    },
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::{
    fmt::{self, Write as _},
    sync::{Arc, Mutex, PoisonError, RwLock},
};
use time::{Month, OffsetDateTime, UtcOffset, Weekday};

/// `x-ms-date`: the signed request time.
pub const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
/// `x-ms-content-sha256`: the base64 SHA-256 hash of the request body.
pub const X_MS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-ms-content-sha256");
/// `authorization`.
pub const AUTHORIZATION: HeaderName = HeaderName::from_static_standard("authorization");
/// The `SignedHeaders` list every request uses.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";
/// The content hash of an empty body: `base64(SHA-256(""))`.
pub const EMPTY_CONTENT_HASH: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/// Returns `base64(SHA-256(body))`, the value of `x-ms-content-sha256`.
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(body))
}

/// Builds the string to sign.
///
/// `method` is upper-cased; `path_and_query` must be exactly what the request line carries
/// (already percent-encoded); lines are separated by a bare `\n`.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) -> String {
    let mut out = String::new();
    write_string_to_sign(
        &mut out,
        method,
        (path_and_query, None),
        date,
        (host, None),
        content_hash,
    );
    out
}

/// Writes the string to sign into `out`: `target` is the path and the query (without `?`),
/// `authority` the host and the port when it is not the scheme's default.
fn write_string_to_sign(
    out: &mut String,
    method: &str,
    target: (&str, Option<&str>),
    date: &str,
    authority: (&str, Option<u16>),
    content_hash: &str,
) {
    /// Two `\n`, two `;`, and at most `:65535`.
    const FIXED: usize = 4 + 6;
    let (path, query) = target;
    let (host, port) = authority;
    out.reserve(
        FIXED
            + method.len()
            + path.len()
            + query.map_or(0, |q| q.len() + 1)
            + date.len()
            + host.len()
            + content_hash.len(),
    );
    for byte in method.bytes() {
        out.push(char::from(byte.to_ascii_uppercase()));
    }
    out.push('\n');
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out.push('\n');
    out.push_str(date);
    out.push(';');
    out.push_str(host);
    if let Some(port) = port {
        let _ = write!(out, ":{port}");
    }
    out.push(';');
    out.push_str(content_hash);
}

/// Returns `base64(HMAC-SHA256(key_bytes, string_to_sign))`.
///
/// `key_bytes` is the *decoded* access key.
pub fn compute_signature(key_bytes: &[u8], string_to_sign: &str) -> String {
    sign_with(keyed_mac(key_bytes), string_to_sign)
}

fn keyed_mac(key_bytes: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this constructor cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key_bytes)
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 accepts keys of any length"))
}

fn sign_with(mut mac: Hmac<Sha256>, string_to_sign: &str) -> String {
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Returns the `Authorization` header value for a signature.
pub fn authorization_header_value(signature: &str) -> String {
    const PREFIX: &str = "HMAC-SHA256 SignedHeaders=";
    const SIGNATURE: &str = "&Signature=";
    let mut value = String::with_capacity(
        PREFIX.len() + SIGNED_HEADERS.len() + SIGNATURE.len() + signature.len(),
    );
    value.push_str(PREFIX);
    value.push_str(SIGNED_HEADERS);
    value.push_str(SIGNATURE);
    value.push_str(signature);
    value
}

/// Formats a time as an RFC 1123 date in GMT, e.g. `Wed, 07 Sep 2022 13:34:56 GMT`.
///
/// The time is converted to UTC first; the day always has two digits.
pub fn format_date(date: OffsetDateTime) -> String {
    let d = date.to_offset(UtcOffset::UTC);
    let weekday = match d.weekday() {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    };
    let month = match d.month() {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    };
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        d.day(),
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// The host as it goes into the string to sign: the URL host, plus `:port` when the URL names a
/// port other than the scheme's default.
///
/// This matches the `Host` header HTTP clients send for the URL. Returns `None` for URLs without
/// a host.
pub fn host_for_signing(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The path and query of a URL exactly as they appear in the request line.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

struct KeyMaterial {
    key: Secret,
    /// HMAC-SHA256 keyed with the decoded key: each signature clones it rather than hashing
    /// the key into the inner and outer pads again.
    mac: Hmac<Sha256>,
}

impl KeyMaterial {
    fn new(key: Secret) -> azure_core::Result<Self> {
        match STANDARD.decode(key.secret()) {
            Ok(bytes) if !bytes.is_empty() => {
                let bytes = SecretBytes::new(bytes);
                let mac = keyed_mac(bytes.bytes());
                Ok(Self { key, mac })
            }
            _ => Err(Error::with_message(
                ErrorKind::Credential,
                "the access key is not valid base64; copy it unchanged from the Azure portal",
            )),
        }
    }
}

/// A Communication Services access key.
///
/// The key is the base64 string from the Azure portal. It is validated when the credential is
/// created, and neither `Debug` nor errors ever show it. Clones share the key, so
/// [`update`](Self::update) rotates it for every client using the credential.
///
/// ```
/// use acs_common::hmac::CommunicationKeyCredential;
///
/// let credential = CommunicationKeyCredential::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
/// assert_eq!(format!("{credential:?}"), "CommunicationKeyCredential { key: Secret }");
/// assert!(CommunicationKeyCredential::new("not base64").is_err());
/// # Ok::<(), azure_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CommunicationKeyCredential {
    inner: Arc<RwLock<KeyMaterial>>,
}

impl CommunicationKeyCredential {
    /// Creates a credential from a base64 access key.
    ///
    /// # Errors
    ///
    /// Returns an [`ErrorKind::Credential`] error when the key is empty or not standard base64.
    pub fn new(key: impl Into<Secret>) -> azure_core::Result<Self> {
        Ok(Self { inner: Arc::new(RwLock::new(KeyMaterial::new(key.into())?)) })
    }

    /// Replaces the key, for example after rotating it in the portal.
    ///
    /// # Errors
    ///
    /// Returns an error, and keeps the old key, when the new key is not valid base64.
    pub fn update(&self, key: impl Into<Secret>) -> azure_core::Result<()> {
        let material = KeyMaterial::new(key.into())?;
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = material;
        Ok(())
    }

    /// The base64 access key.
    pub fn key(&self) -> Secret {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).key.clone()
    }

    /// Signs `string_to_sign` with the key; see [`compute_signature`].
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mac = self.inner.read().unwrap_or_else(PoisonError::into_inner).mac.clone();
        sign_with(mac, string_to_sign)
    }
}

impl fmt::Debug for CommunicationKeyCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommunicationKeyCredential").field("key", &format_args!("Secret")).finish()
    }
}

/// A pipeline policy that signs each request with a [`CommunicationKeyCredential`].
///
/// Add it as a per-try policy so that every retry is signed again with a fresh date.
///
/// ```
/// use acs_common::hmac::{CommunicationKeyCredential, HmacAuthenticationPolicy};
/// use azure_core::http::policies::Policy;
/// use std::sync::Arc;
///
/// let credential = CommunicationKeyCredential::new("pw==")?;
/// let policy: Arc<dyn Policy> = Arc::new(HmacAuthenticationPolicy::new(credential));
/// # Ok::<(), azure_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HmacAuthenticationPolicy {
    credential: CommunicationKeyCredential,
    clock: Arc<dyn Clock>,
    /// The last `x-ms-date` formatted and the Unix second it is for: requests within one
    /// second share it.
    date: Arc<Mutex<(i64, String)>>,
}

impl HmacAuthenticationPolicy {
    /// Creates a policy that signs with `credential` using the system clock.
    pub fn new(credential: CommunicationKeyCredential) -> Self {
        Self::with_clock(credential, Arc::new(SystemClock))
    }

    /// Creates a policy that reads the request time from `clock`.
    pub fn with_clock(credential: CommunicationKeyCredential, clock: Arc<dyn Clock>) -> Self {
        Self { credential, clock, date: Arc::new(Mutex::new((i64::MIN, String::new()))) }
    }

    /// `x-ms-date` for the clock's current time.
    fn date(&self) -> String {
        let now = self.clock.now();
        let second = now.unix_timestamp();
        let mut cached = self.date.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.0 != second {
            *cached = (second, format_date(now));
        }
        cached.1.clone()
    }

    /// Adds `x-ms-date`, `x-ms-content-sha256` and `Authorization` to `request`.
    ///
    /// # Errors
    ///
    /// Fails when the URL has no host or the body is a stream (only buffered bodies can be hashed).
    pub fn sign(&self, request: &mut Request) -> azure_core::Result<()> {
        let hash = match request.body() {
            Body::Bytes(bytes) if bytes.is_empty() => EMPTY_CONTENT_HASH.to_owned(),
            Body::Bytes(bytes) => content_hash(bytes),
            Body::SeekableStream(_) => {
                return Err(Error::with_message(
                    ErrorKind::Other,
                    "HMAC signing needs a buffered request body, not a stream",
                ))
            }
        };
        let url = request.url();
        let host = url.host_str().ok_or_else(|| {
            Error::with_message(ErrorKind::Other, "cannot sign a request whose URL has no host")
        })?;
        let date = self.date();
        let mut to_sign = String::new();
        write_string_to_sign(
            &mut to_sign,
            request.method().as_str(),
            (url.path(), url.query()),
            &date,
            (host, url.port()),
            &hash,
        );
        let signature = self.credential.sign(&to_sign);

        request.insert_header(X_MS_DATE, date);
        request.insert_header(X_MS_CONTENT_SHA256, hash);
        request.insert_header(AUTHORIZATION, authorization_header_value(&signature));
        Ok(())
    }
}

// `Policy::send` is declared with an elided `Context` lifetime; spelling it out breaks the impl.
#[allow(elided_lifetimes_in_paths)]
#[async_trait]
impl Policy for HmacAuthenticationPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((first, rest)) = next.split_first() else {
            return Err(Error::with_message(
                ErrorKind::Other,
                "HmacAuthenticationPolicy must be followed by a transport policy",
            ));
        };
        self.sign(request)?;
        first.send(ctx, request, rest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::{headers::Headers, AsyncRawResponse, Method, StatusCode};
    use std::sync::Mutex;
    use time::macros::datetime;

    const KEY_0_31: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const WIRE_DATE: &str = "Wed, 07 Sep 2022 13:34:56 GMT";
    const WIRE_HOST: &str = "contoso.communication.azure.com";

    #[derive(Debug)]
    struct FixedClock(OffsetDateTime);

    impl Clock for FixedClock {
        fn now(&self) -> OffsetDateTime {
            self.0
        }
    }

    /// Terminal policy that records the request it receives.
    #[derive(Debug, Default)]
    struct Capture(Mutex<Option<Request>>);

    #[allow(elided_lifetimes_in_paths)]
    #[async_trait]
    impl Policy for Capture {
        async fn send(
            &self,
            _: &Context,
            request: &mut Request,
            _: &[Arc<dyn Policy>],
        ) -> PolicyResult {
            *self.0.lock().unwrap() = Some(request.clone());
            Ok(AsyncRawResponse::from_bytes(StatusCode::Ok, Headers::new(), Vec::new()))
        }
    }

    async fn sign_through_policy(key: &str, now: OffsetDateTime, mut request: Request) -> Request {
        let policy = HmacAuthenticationPolicy::with_clock(
            CommunicationKeyCredential::new(key.to_owned()).unwrap(),
            Arc::new(FixedClock(now)),
        );
        let capture = Arc::new(Capture::default());
        let next: Vec<Arc<dyn Policy>> = vec![capture.clone()];
        policy.send(&Context::new(), &mut request, &next).await.unwrap();
        let captured = capture.0.lock().unwrap().take();
        captured.expect("request reached the next policy")
    }

    fn header(request: &Request, name: &'static str) -> String {
        request.headers().get_str(&HeaderName::from_static(name)).unwrap().to_owned()
    }

    #[test]
    fn empty_body_hash() {
        assert_eq!(content_hash(b""), EMPTY_CONTENT_HASH);
    }

    #[test]
    fn recorded_body_hashes() {
        assert_eq!(
            content_hash(br#"{"createTokenWithScopes":["chat","voip"],"expiresInMinutes":60}"#),
            "jENEeifYNCidF9FcfXJ54WzhK3ED/2UrQyA4+oWOZKc="
        );
        assert_eq!(
            content_hash(br#"{"scopes":["chat"],"expiresInMinutes":59}"#),
            "6LjWRqhjoUIvVrmmwpKqqQwxW+wgfGWr4DiSv67puKk="
        );
        assert_eq!(
            content_hash(br#"{"scopes":["chat"],"expiresInMinutes":1441}"#),
            "ziPKEIOSpr7bTxKUMZz03S1PuMg2iw3ASqqVY9UTWBo="
        );
    }

    #[test]
    fn wire_vector_post_create_identity() {
        let hash = content_hash(br#"{"createTokenWithScopes":["chat"]}"#);
        assert_eq!(hash, "WTRvgEjjVd+bvyKw3WgXgDkU81aV8FWq+4/BE+he0+A=");
        let to_sign = string_to_sign(
            "post",
            "/identities?api-version=2023-10-01",
            WIRE_DATE,
            WIRE_HOST,
            &hash,
        );
        assert_eq!(
            to_sign,
            format!("POST\n/identities?api-version=2023-10-01\n{WIRE_DATE};{WIRE_HOST};{hash}")
        );
        let key = STANDARD.decode(KEY_0_31).unwrap();
        assert_eq!(key, (0u8..32).collect::<Vec<_>>());
        assert_eq!(
            compute_signature(&key, &to_sign),
            "9zMQcto7E8Tcs0VTRGaOmBs5Kh6QIkFLz6A6GdcIKfs="
        );
    }

    #[test]
    fn wire_vector_delete_identity() {
        let to_sign = string_to_sign(
            "DELETE",
            "/identities/8%3Aacs%3A00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001?api-version=2023-10-01",
            WIRE_DATE,
            WIRE_HOST,
            EMPTY_CONTENT_HASH,
        );
        let credential = CommunicationKeyCredential::new(KEY_0_31).unwrap();
        assert_eq!(credential.sign(&to_sign), "8vp0qffIiqG+kvgkcghzZcXjoVSh8H9vRLbMitLVujE=");
    }

    #[test]
    fn authorization_header_format() {
        assert_eq!(
            authorization_header_value("abc="),
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=abc="
        );
    }

    #[test]
    fn date_format_is_rfc1123_gmt_with_two_digit_day() {
        assert_eq!(format_date(datetime!(2022-09-07 13:34:56 UTC)), WIRE_DATE);
        assert_eq!(
            format_date(datetime!(2022-04-13 18:09:12 UTC)),
            "Wed, 13 Apr 2022 18:09:12 GMT"
        );
        // Converted to UTC first.
        assert_eq!(format_date(datetime!(2022-09-07 15:34:56 +02:00)), WIRE_DATE);
        assert_eq!(
            format_date(datetime!(2024-01-01 00:00:00 UTC)),
            "Mon, 01 Jan 2024 00:00:00 GMT"
        );
    }

    #[test]
    fn host_includes_only_non_default_ports() {
        let host = |u: &str| host_for_signing(&Url::parse(u).unwrap());
        assert_eq!(host("https://example.com/x").as_deref(), Some("example.com"));
        assert_eq!(host("https://example.com:443/x").as_deref(), Some("example.com"));
        assert_eq!(host("http://example.com:80/x").as_deref(), Some("example.com"));
        assert_eq!(host("https://localhost:8443/x").as_deref(), Some("localhost:8443"));
        assert_eq!(host("http://127.0.0.1:8080/").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(host("http://[::1]:8080/").as_deref(), Some("[::1]:8080"));
    }

    /// Vectors from the JavaScript communication-common tests.
    #[tokio::test]
    async fn js_vectors_through_policy() {
        let now = datetime!(2022-04-13 18:09:12 UTC);
        for (url, expected) in [
            (
                "https://example.com/testPath?testQuery=test",
                "DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU=",
            ),
            ("https://example.com/testPath", "+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU="),
        ] {
            let signed = sign_through_policy(
                "pw==",
                now,
                Request::new(Url::parse(url).unwrap(), Method::Get),
            )
            .await;
            assert_eq!(header(&signed, "x-ms-date"), "Wed, 13 Apr 2022 18:09:12 GMT");
            assert_eq!(header(&signed, "x-ms-content-sha256"), EMPTY_CONTENT_HASH);
            assert_eq!(
                header(&signed, "authorization"),
                authorization_header_value(expected),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn wire_vector_through_policy_with_body_and_encoded_path() {
        let now = datetime!(2022-09-07 13:34:56 UTC);
        let mut request = Request::new(
            Url::parse("https://contoso.communication.azure.com/identities?api-version=2023-10-01")
                .unwrap(),
            Method::Post,
        );
        request.set_body(br#"{"createTokenWithScopes":["chat"]}"#.to_vec());
        let signed = sign_through_policy(KEY_0_31, now, request).await;
        assert_eq!(
            header(&signed, "x-ms-content-sha256"),
            "WTRvgEjjVd+bvyKw3WgXgDkU81aV8FWq+4/BE+he0+A="
        );
        assert_eq!(
            header(&signed, "authorization"),
            authorization_header_value("9zMQcto7E8Tcs0VTRGaOmBs5Kh6QIkFLz6A6GdcIKfs=")
        );

        let request = Request::new(
            Url::parse("https://contoso.communication.azure.com/identities/8%3Aacs%3A00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001?api-version=2023-10-01").unwrap(),
            Method::Delete,
        );
        let signed = sign_through_policy(KEY_0_31, now, request).await;
        assert_eq!(
            header(&signed, "authorization"),
            authorization_header_value("8vp0qffIiqG+kvgkcghzZcXjoVSh8H9vRLbMitLVujE=")
        );
    }

    #[tokio::test]
    async fn non_default_port_is_signed_as_part_of_host() {
        let now = datetime!(2022-09-07 13:34:56 UTC);
        let url = Url::parse("http://localhost:8080/identities?api-version=2026-09-23").unwrap();
        let signed = sign_through_policy(KEY_0_31, now, Request::new(url, Method::Post)).await;
        let expected = compute_signature(
            &STANDARD.decode(KEY_0_31).unwrap(),
            &format!("POST\n/identities?api-version=2026-09-23\n{WIRE_DATE};localhost:8080;{EMPTY_CONTENT_HASH}"),
        );
        assert_eq!(header(&signed, "authorization"), authorization_header_value(&expected));
    }

    #[tokio::test]
    async fn policy_without_next_policy_errors_instead_of_panicking() {
        let policy =
            HmacAuthenticationPolicy::new(CommunicationKeyCredential::new(KEY_0_31).unwrap());
        let mut request = Request::new(Url::parse("https://example.com/").unwrap(), Method::Get);
        let err = policy.send(&Context::new(), &mut request, &[]).await.unwrap_err();
        assert!(err.to_string().contains("transport"));
    }

    #[test]
    fn streamed_bodies_cannot_be_signed() {
        let policy =
            HmacAuthenticationPolicy::new(CommunicationKeyCredential::new(KEY_0_31).unwrap());
        let mut request = Request::new(Url::parse("https://example.com/").unwrap(), Method::Post);
        request.set_body(Body::SeekableStream(Box::new(azure_core::stream::BytesStream::new(
            b"{}".to_vec(),
        ))));
        let err = policy.sign(&mut request).unwrap_err();
        assert!(err.to_string().contains("buffered request body"), "{err}");
        assert!(request.headers().get_optional_str(&AUTHORIZATION).is_none());
    }

    #[test]
    fn credential_validates_and_hides_key() {
        for bad in ["", "not base64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "==="] {
            let err = CommunicationKeyCredential::new(bad.to_owned()).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Credential));
            assert!(bad.is_empty() || !err.to_string().contains(bad));
        }
        let credential = CommunicationKeyCredential::new(KEY_0_31).unwrap();
        let debug = format!("{credential:?}");
        assert!(!debug.contains(KEY_0_31));
        assert!(!debug.contains("AAEC"));
        let policy = HmacAuthenticationPolicy::new(credential);
        assert!(!format!("{policy:?}").contains("AAEC"));
    }

    #[test]
    fn credential_update_rotates_key_for_clones() {
        let credential = CommunicationKeyCredential::new(KEY_0_31).unwrap();
        let clone = credential.clone();
        let before = clone.sign("x");
        credential.update("pw==").unwrap();
        assert_eq!(clone.key().secret(), "pw==");
        assert_ne!(clone.sign("x"), before);
        assert_eq!(clone.sign("x"), compute_signature(&STANDARD.decode("pw==").unwrap(), "x"));
        // An invalid key is rejected and the current key stays.
        assert!(credential.update("%%%").is_err());
        assert_eq!(clone.key().secret(), "pw==");
    }
}
