//! JSON Web Signatures in compact form (RFC 7515 §7.1), read the same way for both kinds of
//! token this crate verifies: this service's access tokens (`token`) and Entra's (`entra`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The JOSE header fields read here.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub(crate) alg: String,
    pub(crate) kid: Option<String>,
}

/// A JWS split into its three parts and decoded; its signature is not checked yet.
pub(crate) struct Jws<'a, P> {
    pub(crate) header: Header,
    pub(crate) payload: P,
    /// `header.payload` as sent: the bytes the signature covers.
    pub(crate) signed: &'a [u8],
    pub(crate) signature: Vec<u8>,
}

impl<'a, P: DeserializeOwned> Jws<'a, P> {
    /// `None` unless `token` is three base64url parts (no padding) whose header and payload
    /// are JSON, the payload a `P`.
    pub(crate) fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Jws {
            header: json_part(h)?,
            payload: json_part(p)?,
            signed: &token.as_bytes()[..h.len() + 1 + p.len()],
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
        })
    }
}

fn json_part<T: DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn splits_and_decodes_the_three_parts() {
        let (h, p) = (b64(r#"{"alg":"ES256","kid":"k1"}"#), b64(r#"{"sub":"x"}"#));
        let token = format!("{h}.{p}.{}", b64("sig"));
        let jws = Jws::<Value>::parse(&token).expect("a JWS");
        assert_eq!((jws.header.alg.as_str(), jws.header.kid.as_deref()), ("ES256", Some("k1")));
        assert_eq!(jws.payload["sub"], "x");
        assert_eq!(jws.signed, format!("{h}.{p}").as_bytes());
        assert_eq!(jws.signature, b"sig");
    }

    #[test]
    fn anything_else_is_none() {
        let (h, p, s) = (b64(r#"{"alg":"ES256"}"#), b64("{}"), b64("sig"));
        for bad in [
            String::new(),
            format!("{h}.{p}"),
            format!("{h}.{p}.{s}.{s}"),
            format!("{h}=.{p}.{s}"),
            format!("{}.{p}.{s}", b64("not json")),
            format!("{}.{p}.{s}", b64(r#"{"kid":"no alg"}"#)),
            format!("{h}.{}.{s}", b64("[")),
            format!("{h}.{p}.s*g"),
        ] {
            assert!(Jws::<Value>::parse(&bad).is_none(), "{bad}");
        }
    }
}
