//! Communication Services connection strings.
//!
//! The Azure portal hands out connection strings of the form
//! `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>`.
//!
//! Parsing rules:
//! - settings are separated by `;`; empty settings (for example a trailing `;`) are ignored;
//! - each setting is `name=value`, split at the first `=` (access keys end in `=`);
//! - names are ASCII case-insensitive and may appear in any order; names and values are trimmed;
//! - exactly the two settings `endpoint` and `accesskey` are required, each once;
//! - the endpoint must be an `http` or `https` URL with a host and an empty path (a single `/` is
//!   fine), without query, fragment or credentials;
//! - the access key must be standard base64 (with padding).
//!
//! Error messages say what is wrong but never include the access key.
//!
//! ```
//! use acs_common::connection_string::ConnectionString;
//!
//! let cs: ConnectionString =
//!     "endpoint=https://contoso.communication.azure.com/;accesskey=AAECAwQ=".parse()?;
//! assert_eq!(cs.endpoint().as_str(), "https://contoso.communication.azure.com/");
//! assert_eq!(cs.access_key().secret(), "AAECAwQ=");
//! // The key never shows up in debug output.
//! assert!(!format!("{cs:?}").contains("AAECAwQ="));
//! # Ok::<(), azure_core::Error>(())
//! ```

use azure_core::{
    credentials::Secret,
    error::{Error, ErrorKind},
};
use base64::Engine as _;
use std::{fmt, str::FromStr};
use url::Url;

const ENDPOINT: &str = "endpoint";
const ACCESS_KEY: &str = "accesskey";

/// A parsed Communication Services connection string.
#[derive(Clone)]
pub struct ConnectionString {
    endpoint: Url,
    access_key: Secret,
}

impl ConnectionString {
    /// Parses a connection string. See the [module documentation](self) for the rules.
    ///
    /// # Errors
    ///
    /// Returns an [`ErrorKind::DataConversion`] error naming the problem (missing, duplicate or
    /// unknown setting, invalid endpoint, access key that is not base64). The access key is never
    /// part of the message.
    pub fn parse(connection_string: &str) -> azure_core::Result<Self> {
        let mut endpoint = None;
        let mut access_key = None;

        for (index, setting) in connection_string.split(';').enumerate() {
            if setting.trim().is_empty() {
                continue;
            }
            let Some((name, value)) = setting.split_once('=') else {
                return Err(invalid(format!(
                    "setting #{} has no '='; expected 'endpoint=<url>;accesskey=<key>'",
                    index + 1
                )));
            };
            let name = name.trim();
            let value = value.trim();
            let slot = if name.eq_ignore_ascii_case(ENDPOINT) {
                &mut endpoint
            } else if name.eq_ignore_ascii_case(ACCESS_KEY) {
                &mut access_key
            } else {
                // The name is not echoed: a malformed string may carry key material in it.
                return Err(invalid(format!(
                    "setting #{} has an unknown name; only 'endpoint' and 'accesskey' are allowed",
                    index + 1
                )));
            };
            if slot.is_some() {
                return Err(invalid(format!(
                    "'{}' is given more than once",
                    name.to_ascii_lowercase()
                )));
            }
            *slot = Some(value);
        }

        let endpoint = endpoint.ok_or_else(|| invalid("the 'endpoint' setting is missing"))?;
        let access_key = access_key.ok_or_else(|| invalid("the 'accesskey' setting is missing"))?;

        Ok(Self { endpoint: parse_endpoint(endpoint)?, access_key: parse_access_key(access_key)? })
    }

    /// The resource endpoint, e.g. `https://contoso.communication.azure.com/`.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The access key (base64), as given in the connection string.
    pub fn access_key(&self) -> &Secret {
        &self.access_key
    }

    /// Splits the connection string into its endpoint and access key.
    pub fn into_parts(self) -> (Url, Secret) {
        (self.endpoint, self.access_key)
    }
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key", &self.access_key)
            .finish()
    }
}

fn invalid(message: impl Into<String>) -> Error {
    let message: String = message.into();
    Error::with_message(ErrorKind::DataConversion, format!("invalid connection string: {message}"))
}

/// Checks that `endpoint` is an http(s) URL with a host and an empty path.
///
/// Messages do not echo the value: when a `;` is missing, the "endpoint" may contain the key.
fn parse_endpoint(endpoint: &str) -> azure_core::Result<Url> {
    if endpoint.is_empty() {
        return Err(invalid("the 'endpoint' setting is empty"));
    }
    let url = Url::parse(endpoint)
        .map_err(|e| invalid(format!("the endpoint is not a valid absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the endpoint must use http or https, not '{}'",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the endpoint has no host"));
    }
    // Host normalisation can turn a character into ';' (U+037E GREEK QUESTION MARK becomes
    // ';'), which would split the endpoint when the connection string is written back.
    if url.as_str().contains(';') {
        return Err(invalid("the endpoint's host must not contain ';'"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the endpoint must not contain user credentials"));
    }
    if url.path() != "/" {
        return Err(invalid("the endpoint must not have a path; use only scheme, host and port"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the endpoint must not have a query or fragment"));
    }
    Ok(url)
}

fn parse_access_key(access_key: &str) -> azure_core::Result<Secret> {
    if access_key.is_empty() {
        return Err(invalid("the 'accesskey' setting is empty"));
    }
    match base64::engine::general_purpose::STANDARD.decode(access_key) {
        Ok(bytes) if !bytes.is_empty() => Ok(Secret::new(access_key.to_owned())),
        _ => Err(invalid("the 'accesskey' value is not valid base64")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn ok(s: &str) -> ConnectionString {
        ConnectionString::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[track_caller]
    fn err(s: &str) -> String {
        let e = ConnectionString::parse(s).expect_err("should fail");
        assert!(matches!(e.kind(), ErrorKind::DataConversion));
        let message = e.to_string();
        assert!(!message.contains(KEY), "error leaks the key: {message}");
        assert!(!message.contains("AAECAwQF"), "error leaks part of the key: {message}");
        message
    }

    #[test]
    fn parses_portal_format() {
        let cs = ok(&format!("endpoint=https://contoso.communication.azure.com/;accesskey={KEY}"));
        assert_eq!(cs.endpoint().as_str(), "https://contoso.communication.azure.com/");
        assert_eq!(cs.access_key().secret(), KEY);
    }

    #[test]
    fn keys_are_case_insensitive_in_any_order_and_trimmed() {
        let cs = ok(&format!(
            "  AccessKey = {KEY} ;  ENDPOINT= https://contoso.communication.azure.com ;"
        ));
        assert_eq!(cs.endpoint().host_str(), Some("contoso.communication.azure.com"));
        assert_eq!(cs.access_key().secret(), KEY);
    }

    #[test]
    fn trailing_separators_and_http_with_port_are_accepted() {
        let cs = ok(&format!("endpoint=http://localhost:8080/;accesskey={KEY};;"));
        assert_eq!(cs.endpoint().as_str(), "http://localhost:8080/");
        assert_eq!(cs.endpoint().port(), Some(8080));
        let (endpoint, key) = cs.into_parts();
        assert_eq!(endpoint.scheme(), "http");
        assert_eq!(key.secret(), KEY);
    }

    #[test]
    fn missing_settings_are_named() {
        assert!(err(&format!("accesskey={KEY}")).contains("'endpoint' setting is missing"));
        assert!(err("endpoint=https://x.example").contains("'accesskey' setting is missing"));
        assert!(err("").contains("missing"));
    }

    #[test]
    fn empty_values_are_rejected() {
        assert!(err(&format!("endpoint=;accesskey={KEY}")).contains("'endpoint' setting is empty"));
        assert!(
            err("endpoint=https://x.example;accesskey=  ").contains("'accesskey' setting is empty")
        );
    }

    #[test]
    fn duplicate_and_unknown_settings_are_rejected() {
        let message =
            err(&format!("endpoint=https://a.example;Endpoint=https://b.example;accesskey={KEY}"));
        assert!(message.contains("'endpoint' is given more than once"), "{message}");
        let message = err(&format!("endpoint=https://a.example;accesskey={KEY};region=west"));
        assert!(message.contains("setting #3 has an unknown name"), "{message}");
    }

    #[test]
    fn setting_without_equals_does_not_echo_it() {
        let unpadded = KEY.trim_end_matches('=');
        let message = err(&format!("endpoint=https://a.example;{unpadded}"));
        assert!(message.contains("setting #2 has no '='"), "{message}");
        // With padding the key splits at its own '=' and looks like an unknown name.
        let message = err(&format!("endpoint=https://a.example;{KEY}"));
        assert!(message.contains("setting #2 has an unknown name"), "{message}");
        let message = err(&format!("endpoint=https://a.example;accesskey:{KEY}"));
        assert!(message.contains("setting #2"), "{message}");
    }

    #[test]
    fn key_must_be_base64() {
        let message = err("endpoint=https://a.example;accesskey=not base64!!");
        assert!(message.contains("not valid base64"), "{message}");
        assert!(!message.contains("not base64!!"));
        err("endpoint=https://a.example;accesskey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    }

    #[test]
    fn endpoint_rules() {
        let cases = [
            ("ftp://a.example", "must use http or https"),
            ("https://a.example/some/path", "must not have a path"),
            ("https://a.example/?x=1", "must not have a query or fragment"),
            ("https://a.example/#frag", "must not have a query or fragment"),
            ("https://user:pw@a.example/", "must not contain user credentials"),
            ("not a url", "is not a valid absolute URL"),
            ("contoso.communication.azure.com", "is not a valid absolute URL"),
        ];
        for (endpoint, expected) in cases {
            let message = err(&format!("endpoint={endpoint};accesskey={KEY}"));
            assert!(message.contains(expected), "{endpoint}: {message}");
        }
    }

    #[test]
    fn debug_hides_key() {
        let cs = ok(&format!("endpoint=https://a.example;accesskey={KEY}"));
        let debug = format!("{cs:?}");
        assert!(debug.contains("https://a.example/"));
        assert!(!debug.contains(KEY));
    }

    #[test]
    fn missing_separator_does_not_leak_the_key_through_the_endpoint() {
        err(&format!("endpoint=https://a.example/accesskey={KEY}"));
        err(&format!("endpoint=accesskey={KEY}"));
        err(&format!("endpoint=https://a.example accesskey={KEY}"));
    }

    #[test]
    fn a_host_that_normalises_to_a_semicolon_is_refused() {
        // The fuzz finding: U+037E in the host becomes ';' under IDNA mapping.
        let e = ConnectionString::parse(
            "endpoint=https:/nicaticcskey\u{dc}\u{37e}on.azure.com/;accesskey=AAECAwaGxwdHhh8=",
        )
        .unwrap_err();
        assert!(e.to_string().contains("must not contain ';'"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn errors_never_contain_the_key(
            before in "[a-zA-Z:/;=. ]{0,24}",
            after in "[a-zA-Z:/;=. ]{0,24}",
        ) {
            let input = format!("{before}accesskey={KEY}{after}");
            if let Err(e) = ConnectionString::parse(&input) {
                proptest::prop_assert!(!e.to_string().contains("AAECAwQF"), "{}", e);
                let debug = format!("{e:?}");
                proptest::prop_assert!(!debug.contains("AAECAwQF"), "{}", debug);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::prelude::any::<String>()) {
            let _ = ConnectionString::parse(&input);
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in
            ["=", ";", "==;==", "endpoint", "endpoint==", "\u{0}", "endpoint=https://[::1", "é=é"]
        {
            let _ = ConnectionString::parse(s);
        }
    }
}
