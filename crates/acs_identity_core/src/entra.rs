//! Verifying Entra ID (Azure AD) access tokens from configured, trusted OpenID issuers.
//!
//! In production the issuer is Entra (`https://login.microsoftonline.com/{tenant}/v2.0`,
//! or the v1 `https://sts.windows.net/{tenant}/`) with its published keys; in tests, a
//! local issuer. Only RS256 and ES256 are accepted, and the algorithm always comes from
//! the key, never from the token header (RFC 8725 §3.1).

use std::collections::BTreeSet;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::jws::{Header, Jws};

/// How far `exp` and `nbf` may be off.
pub const LEEWAY: Duration = Duration::minutes(5);

/// Longest Entra token accepted.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Audiences Entra writes for tokens meant for the ACS Identity API (scope
/// `https://communication.azure.com//.default`): the resource URI with and without the
/// trailing slash, and the ACS first-party application id.
pub const IDENTITY_API_AUDIENCES: &[&str] = &[
    "https://communication.azure.com",
    "https://communication.azure.com/",
    "1fd5118e-2576-4263-8130-9503064c837a",
];

/// Audiences accepted by the Entra user access exchange: the Identity API's, and the resource of
/// the scopes the official SDKs request for it (`https://communication.azure.com/clients/.default`).
pub const ENTRA_EXCHANGE_AUDIENCES: &[&str] = &[
    "https://communication.azure.com",
    "https://communication.azure.com/",
    "1fd5118e-2576-4263-8130-9503064c837a",
    "https://communication.azure.com/clients",
    "https://communication.azure.com/clients/",
];

/// Audiences of the Teams scopes (`https://auth.msft.communication.azure.com/Teams.ManageCalls`…).
pub const TEAMS_AUDIENCES: &[&str] =
    &["https://auth.msft.communication.azure.com", "https://auth.msft.communication.azure.com/"];

/// The sovereign cloud an issuer belongs to; decides the Teams raw-id prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Public cloud: `8:orgid:`.
    #[default]
    Public,
    /// US DoD: `8:dod:`.
    Dod,
    /// US GCC High: `8:gcch:`.
    Gcch,
}

impl Cloud {
    /// The Teams user raw-id prefix without `8:`.
    pub fn teams_prefix(self) -> &'static str {
        match self {
            Cloud::Public => "orgid",
            Cloud::Dod => "dod",
            Cloud::Gcch => "gcch",
        }
    }
}

/// One public key of a JWKS.
#[derive(Clone, Debug)]
pub struct Jwk {
    kid: Option<String>,
    kind: JwkKind,
}

#[derive(Clone, Debug)]
enum JwkKind {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { point: Vec<u8> },
}

/// A JWKS document could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid JWKS: {0}")]
pub struct JwksError(String);

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

/// Parses a JWKS document; keys of unsupported types are skipped.
pub fn parse_jwks(bytes: &[u8]) -> Result<Vec<Jwk>, JwksError> {
    let raw: RawJwks = serde_json::from_slice(bytes).map_err(|e| JwksError(e.to_string()))?;
    let b64 = |v: &Value| -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(v.as_str()?.trim_end_matches('=')).ok()
    };
    let mut keys = Vec::new();
    for k in &raw.keys {
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        let kind = match k.get("kty").and_then(Value::as_str) {
            Some("RSA") => match (k.get("n").and_then(b64), k.get("e").and_then(b64)) {
                (Some(n), Some(e)) => JwkKind::Rsa { n, e },
                _ => continue,
            },
            Some("EC") if k.get("crv").and_then(Value::as_str) == Some("P-256") => {
                match (k.get("x").and_then(b64), k.get("y").and_then(b64)) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = Vec::with_capacity(65);
                        point.push(4);
                        point.extend_from_slice(&x);
                        point.extend_from_slice(&y);
                        JwkKind::Ec { point }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        keys.push(Jwk { kid, kind });
    }
    Ok(keys)
}

impl Jwk {
    fn alg(&self) -> &'static str {
        match self.kind {
            JwkKind::Rsa { .. } => "RS256",
            JwkKind::Ec { .. } => "ES256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.kind {
            JwkKind::Rsa { n, e } => RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            JwkKind::Ec { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// Why an Entra token was refused. Never carries the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    /// Not a JWS with JSON claims.
    #[error("malformed token")]
    Malformed,
    /// `iss` is not a trusted issuer.
    #[error("untrusted issuer")]
    UntrustedIssuer,
    /// The issuer has no key with the token's `kid` (the caller may refresh the JWKS once).
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature check failed, or the header's algorithm does not match the key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is past (beyond the leeway) or missing.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` is not one of the expected audiences.
    #[error("wrong audience")]
    WrongAudience,
}

/// The claims of a verified Entra token that the service uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraClaims {
    /// Issuer.
    pub iss: String,
    /// Audience matched.
    pub aud: String,
    /// Tenant id.
    pub tid: Option<String>,
    /// Object id of the user or service principal.
    pub oid: Option<String>,
    /// Client application id (`appid` in v1 tokens, `azp` in v2).
    pub app_id: Option<String>,
    /// Delegated scopes (`scp`, space-separated).
    pub scopes: BTreeSet<String>,
    /// Application roles.
    pub roles: BTreeSet<String>,
    /// Group object ids.
    pub groups: BTreeSet<String>,
    /// Expiry.
    pub exp: OffsetDateTime,
}

/// A trusted issuer and its keys.
#[derive(Clone, Debug)]
pub struct TrustedIssuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// Its signing keys.
    pub keys: Vec<Jwk>,
    /// Its cloud.
    pub cloud: Cloud,
}

/// A token split and decoded, not yet verified. `Debug` shows only the header.
pub struct UnverifiedToken<'a> {
    header: Header,
    signed: &'a [u8],
    signature: Vec<u8>,
    claims: Value,
}

impl std::fmt::Debug for UnverifiedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedToken").field("header", &self.header).finish_non_exhaustive()
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes `token`.
    pub fn parse(token: &'a str) -> Result<UnverifiedToken<'a>, EntraError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(EntraError::Malformed);
        }
        let jws = Jws::<Value>::parse(token).filter(|jws| jws.payload.is_object());
        let jws = jws.ok_or(EntraError::Malformed)?;
        Ok(UnverifiedToken {
            header: jws.header,
            signed: jws.signed,
            signature: jws.signature,
            claims: jws.payload,
        })
    }

    /// The `iss` claim, unverified: which issuer's keys to use.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The `kid` header.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// Verifies signature, time and audience against `issuer`.
    pub fn verify(
        &self,
        issuer: &TrustedIssuer,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<EntraClaims, EntraError> {
        if self.issuer() != Some(issuer.issuer.as_str()) {
            return Err(EntraError::UntrustedIssuer);
        }
        let candidates: Vec<&Jwk> = match self.kid() {
            Some(kid) => issuer.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None => issuer.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(EntraError::UnknownKey);
        }
        if !candidates
            .iter()
            .any(|k| k.alg() == self.header.alg && k.verify(self.signed, &self.signature))
        {
            return Err(EntraError::BadSignature);
        }
        let c = &self.claims;
        let time = |name: &str| {
            c.get(name)
                .and_then(Value::as_i64)
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        };
        let exp = time("exp").ok_or(EntraError::Expired)?;
        if is_expired(exp, now) {
            return Err(EntraError::Expired);
        }
        if time("nbf").is_some_and(|nbf| is_not_yet_valid(nbf, now)) {
            return Err(EntraError::NotYetValid);
        }
        let auds: Vec<&str> = match c.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let aud = auds.iter().find(|a| audiences.contains(a)).ok_or(EntraError::WrongAudience)?;
        let text = |name: &str| c.get(name).and_then(Value::as_str).map(str::to_owned);
        let set = |name: &str| -> BTreeSet<String> {
            match c.get(name) {
                Some(Value::String(s)) => {
                    s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
                }
                Some(Value::Array(a)) => {
                    a.iter().filter_map(Value::as_str).map(str::to_owned).collect()
                }
                _ => BTreeSet::new(),
            }
        };
        Ok(EntraClaims {
            iss: issuer.issuer.clone(),
            aud: (*aud).to_owned(),
            tid: text("tid"),
            oid: text("oid"),
            app_id: text("appid").or_else(|| text("azp")),
            scopes: set("scp"),
            roles: set("roles"),
            groups: set("groups"),
            exp,
        })
    }
}

/// Whether `now` is past `exp` by more than [`LEEWAY`]. The leeway is added to the
/// token's value with checked arithmetic: an `exp` so close to the largest representable
/// date that `exp + LEEWAY` does not exist is later than any `now`, so not expired.
fn is_expired(exp: OffsetDateTime, now: OffsetDateTime) -> bool {
    exp.checked_add(LEEWAY).is_some_and(|limit| now > limit)
}

/// Whether `nbf` is later than `now` by more than [`LEEWAY`]. An `nbf` so close to the
/// smallest representable date that `nbf - LEEWAY` does not exist is earlier than any
/// `now`, so already valid.
fn is_not_yet_valid(nbf: OffsetDateTime, now: OffsetDateTime) -> bool {
    nbf.checked_sub(LEEWAY).is_some_and(|start| now < start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
    const ISS: &str = "https://login.microsoftonline.com/c70d068c-2f32-484d-9455-73070cd5aadd/v2.0";

    struct Issuer {
        kp: EcdsaKeyPair,
    }

    impl Issuer {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap();
            Issuer {
                kp: EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8.as_ref(),
                )
                .unwrap(),
            }
        }

        fn jwks(&self) -> Vec<u8> {
            let p = self.kp.public_key().as_ref();
            serde_json::to_vec(
                &json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])}]}),
            )
            .unwrap()
        }

        fn mint(&self, claims: Value) -> String {
            let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
            let signed = format!("{h}.{p}");
            let sig = self.kp.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn trusted(&self) -> TrustedIssuer {
            TrustedIssuer {
                issuer: ISS.to_owned(),
                keys: parse_jwks(&self.jwks()).unwrap(),
                cloud: Cloud::Public,
            }
        }
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "https://communication.azure.com", "tid": "t", "oid": "o", "appid": "a",
               "scp": "Teams.ManageCalls Teams.ManageChats", "exp": (NOW + Duration::hours(1)).unix_timestamp(),
               "nbf": (NOW - Duration::minutes(1)).unix_timestamp()})
    }

    #[test]
    fn verifies_a_good_token() {
        let i = Issuer::new();
        let t = i.mint(claims());
        let c = UnverifiedToken::parse(&t)
            .unwrap()
            .verify(&i.trusted(), IDENTITY_API_AUDIENCES, NOW)
            .unwrap();
        assert_eq!(c.oid.as_deref(), Some("o"));
        assert_eq!(c.app_id.as_deref(), Some("a"));
        assert!(c.scopes.contains("Teams.ManageChats"));
    }

    #[test]
    fn refuses_what_it_must() {
        let i = Issuer::new();
        let other = Issuer::new();
        let trusted = i.trusted();
        let check = |t: &str| {
            UnverifiedToken::parse(t).and_then(|u| u.verify(&trusted, IDENTITY_API_AUDIENCES, NOW))
        };
        let mut c = claims();
        c["exp"] = (NOW - Duration::minutes(6)).unix_timestamp().into();
        assert_eq!(check(&i.mint(c)), Err(EntraError::Expired));
        let mut c = claims();
        c["nbf"] = (NOW + Duration::minutes(6)).unix_timestamp().into();
        assert_eq!(check(&i.mint(c)), Err(EntraError::NotYetValid));
        let mut c = claims();
        c["aud"] = "https://graph.microsoft.com".into();
        assert_eq!(check(&i.mint(c)), Err(EntraError::WrongAudience));
        let mut c = claims();
        c["iss"] = "https://evil.example/".into();
        assert_eq!(check(&i.mint(c)), Err(EntraError::UntrustedIssuer));
        assert_eq!(check(&other.mint(claims())), Err(EntraError::BadSignature));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(check(&i.mint(c)), Err(EntraError::Expired));
        for bad in ["", "a.b", "a.b.c", "e30.e30.", &"x".repeat(20_000)] {
            assert_eq!(check(bad), Err(EntraError::Malformed), "{bad}");
        }
        // alg "none" with the right kid is a bad signature, never accepted.
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        assert_eq!(check(&format!("{h}.{p}.")), Err(EntraError::BadSignature));
        // A far-future expiry (the end of time) is fine and must not overflow.
        let mut c = claims();
        c["exp"] = 253402300799_i64.into();
        assert!(check(&i.mint(c)).is_ok());
        // Within the leeway is fine.
        let mut c = claims();
        c["exp"] = (NOW - Duration::minutes(4)).unix_timestamp().into();
        c["aud"] = json!(["x", "https://communication.azure.com/"]);
        assert!(check(&i.mint(c)).is_ok());
    }

    #[test]
    fn times_at_the_ends_of_the_calendar_never_overflow() {
        let max = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX);
        let min = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
        // `exp` within the leeway of the largest date: `exp + LEEWAY` does not exist.
        for exp in [max, max - Duration::minutes(4), max - LEEWAY] {
            assert!(!is_expired(exp, NOW), "{exp}");
            assert!(!is_expired(exp, max), "{exp}");
        }
        assert!(is_expired(min, NOW));
        assert!(is_expired(NOW - Duration::minutes(6), NOW));
        assert!(!is_expired(NOW - Duration::minutes(5), NOW));
        // `nbf` within the leeway of the smallest date: `nbf - LEEWAY` does not exist.
        for nbf in [min, min + Duration::minutes(4), min + LEEWAY] {
            assert!(!is_not_yet_valid(nbf, NOW), "{nbf}");
            assert!(!is_not_yet_valid(nbf, min), "{nbf}");
        }
        assert!(is_not_yet_valid(max, NOW));
        assert!(is_not_yet_valid(NOW + Duration::minutes(6), NOW));
        assert!(!is_not_yet_valid(NOW + Duration::minutes(5), NOW));
    }

    #[test]
    fn signed_tokens_at_the_end_of_time_verify_without_panicking() {
        let i = Issuer::new();
        let trusted = i.trusted();
        let check = |c: Value| {
            UnverifiedToken::parse(&i.mint(c))
                .and_then(|u| u.verify(&trusted, IDENTITY_API_AUDIENCES, NOW))
        };
        // 9999-12-31T23:59:59Z and the seconds just before it, within the leeway.
        for exp in [253_402_300_799_i64, 253_402_300_799 - 60, 253_402_300_799 - 299] {
            let mut c = claims();
            c["exp"] = exp.into();
            assert!(check(c).is_ok(), "exp {exp}");
        }
        // nbf at the first representable second is in the past.
        let mut c = claims();
        c["nbf"] = (-377_705_116_800_i64).into();
        assert!(check(c).is_ok());
        // nbf at the end of time is in the future.
        let mut c = claims();
        c["nbf"] = 253_402_300_799_i64.into();
        assert_eq!(check(c).unwrap_err(), EntraError::NotYetValid);
        // Beyond the representable range: no usable time at all.
        let mut c = claims();
        c["exp"] = i64::MAX.into();
        assert_eq!(check(c).unwrap_err(), EntraError::Expired);
    }

    #[test]
    fn jwks_parsing_skips_unusable_keys() {
        let doc = br#"{"keys":[{"kty":"oct","k":"AA"},{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-384","x":"AA","y":"AA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}"#;
        let keys = parse_jwks(doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }
}
