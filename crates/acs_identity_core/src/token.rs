//! ACS access tokens: JWTs signed with the resource's signing key.
//!
//! Claims follow ACS (`skypeid`, `scp`, `csi`, `exp`, `rgn`, `acsScope`, `resourceId`,
//! `resourceLocation`, `iat`) plus one private claim, `gen`: the identity's revocation
//! generation when the token was issued. Revoking bumps the generation, so every token
//! issued before a revoke is rejected and every token issued after it is accepted, with
//! no dependence on clock resolution.
//!
//! The payload is plain ASCII JSON with no `>`, `?` or `~`, so its base64url text never
//! contains `-` or `_`: the Python SDK decodes it with the standard alphabet.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{ResourceId, UserId};
use crate::scope::{Scopes, TokenLifetime};

/// The `scp` value of every ACS user token.
pub const ACS_SCP: u32 = 1792;

/// A JWS algorithm the service signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (the default: fast to sign and small).
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key (what ACS itself uses).
    #[serde(rename = "RS256")]
    Rs256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ES256" => Ok(SigningAlgorithm::Es256),
            "RS256" => Ok(SigningAlgorithm::Rs256),
            "EDDSA" | "ED25519" => Ok(SigningAlgorithm::EdDsa),
            _ => Err(format!("unknown signing algorithm '{s}' (expected ES256, RS256 or EdDSA)")),
        }
    }
}

/// Failure to build or use a signing key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

enum KeyMaterial {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// A private signing key with its `kid`. `Debug` never shows key material.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    pkcs8: Vec<u8>,
    material: KeyMaterial,
    header_b64: String,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key.
    pub fn generate(alg: SigningAlgorithm) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            SigningAlgorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError("ECDSA key generation failed".to_owned()))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::Rs256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| KeyError("RSA key generation failed".to_owned()))?;
                kp.as_der()
                    .map_err(|_| KeyError("RSA key serialization failed".to_owned()))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError("Ed25519 key generation failed".to_owned()))?
                .as_ref()
                .to_vec(),
        };
        SigningKey::from_pkcs8(alg, pkcs8)
    }

    /// Loads a key from its PKCS#8 DER bytes.
    pub fn from_pkcs8(alg: SigningAlgorithm, pkcs8: Vec<u8>) -> Result<SigningKey, KeyError> {
        let rejected =
            |e: aws_lc_rs::error::KeyRejected| KeyError(format!("{alg} key rejected: {e}"));
        let (material, public) = match alg {
            SigningAlgorithm::Es256 => {
                let kp =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                        .map_err(rejected)?;
                let point = kp.public_key().as_ref().to_vec();
                (KeyMaterial::Es256(kp), PublicKey::new(alg, point))
            }
            SigningAlgorithm::Rs256 => {
                let kp = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let pk = kp.public_key();
                let n = pk.modulus().big_endian_without_leading_zero().to_vec();
                let e = pk.exponent().big_endian_without_leading_zero().to_vec();
                let der = pk.as_ref().to_vec();
                let mut public = PublicKey::new(alg, der);
                public.rsa = Some((n, e));
                (KeyMaterial::Rs256(kp), public)
            }
            SigningAlgorithm::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(rejected)?;
                let point = kp.public_key().as_ref().to_vec();
                (KeyMaterial::EdDsa(kp), PublicKey::new(alg, point))
            }
        };
        let kid = public.kid.clone();
        let header = format!(r#"{{"alg":"{}","kid":"{kid}","typ":"JWT"}}"#, alg.as_str());
        Ok(SigningKey {
            header_b64: URL_SAFE_NO_PAD.encode(header),
            kid,
            alg,
            pkcs8,
            material,
            public,
        })
    }

    /// The key id (`kid`): upper-case hex of the first 20 bytes of SHA-256 over the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The PKCS#8 DER bytes, for storage. Secret.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError("signing failed".to_owned());
        match &self.material {
            KeyMaterial::Es256(kp) => {
                Ok(kp.sign(&SystemRandom::new(), message).map_err(failed)?.as_ref().to_vec())
            }
            KeyMaterial::Rs256(kp) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            KeyMaterial::EdDsa(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign_claims(&self, claims: &AcsClaims) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError(e.to_string()))?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let sig = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        Ok(token)
    }
}

/// A public verification key, as listed in the JWKS.
#[derive(Clone, Debug)]
pub struct PublicKey {
    kid: String,
    alg: SigningAlgorithm,
    /// EC point / Ed25519 key / RSA public key DER.
    bytes: Vec<u8>,
    rsa: Option<(Vec<u8>, Vec<u8>)>,
}

impl PublicKey {
    fn new(alg: SigningAlgorithm, bytes: Vec<u8>) -> Self {
        let hash = digest::digest(&digest::SHA256, &bytes);
        let kid = hash.as_ref()[..20].iter().map(|b| format!("{b:02X}")).collect();
        PublicKey { kid, alg, bytes, rsa: None }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK (RFC 7517) of this key.
    pub fn jwk(&self) -> serde_json::Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = BTreeMap::new();
        jwk.insert("kid", serde_json::Value::from(self.kid.clone()));
        jwk.insert("use", "sig".into());
        jwk.insert("alg", self.alg.as_str().into());
        match self.alg {
            SigningAlgorithm::Es256 => {
                jwk.insert("kty", "EC".into());
                jwk.insert("crv", "P-256".into());
                jwk.insert("x", b64(&self.bytes[1..33]).into());
                jwk.insert("y", b64(&self.bytes[33..65]).into());
            }
            SigningAlgorithm::Rs256 => {
                let (n, e) = self
                    .rsa
                    .as_ref()
                    .map(|(n, e)| (n.as_slice(), e.as_slice()))
                    .unwrap_or_default();
                jwk.insert("kty", "RSA".into());
                jwk.insert("n", b64(n).into());
                jwk.insert("e", b64(e).into());
            }
            SigningAlgorithm::EdDsa => {
                jwk.insert("kty", "OKP".into());
                jwk.insert("crv", "Ed25519".into());
                jwk.insert("x", b64(&self.bytes).into());
            }
        }
        serde_json::to_value(jwk).unwrap_or_default()
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            SigningAlgorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            SigningAlgorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SigningAlgorithm::EdDsa => &signature::ED25519,
        };
        UnparsedPublicKey::new(alg, &self.bytes).verify(message, sig).is_ok()
    }
}

/// The claims of an ACS user access token, in ACS's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsClaims {
    /// The raw id without the leading `8:`.
    pub skypeid: String,
    /// Always 1792 for ACS user tokens.
    pub scp: u32,
    /// Issue time as a decimal string.
    pub csi: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Short region code.
    pub rgn: String,
    /// Comma-separated scopes in request order.
    #[serde(rename = "acsScope")]
    pub acs_scope: String,
    /// The resource's GUID.
    #[serde(rename = "resourceId")]
    pub resource_id: String,
    /// The resource's data location.
    #[serde(rename = "resourceLocation")]
    pub resource_location: String,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Revocation generation of the identity at issue time (private claim).
    pub gen: u64,
    /// The access key, `<name>.<version>`, that signed the request issuing the token
    /// (private claim); regenerating that key invalidates the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akv: Option<String>,
}

/// Where the resource keeps its data, and the short code used in `rgn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLocation {
    /// E.g. `unitedstates`.
    pub name: String,
    /// E.g. `us`.
    pub region: String,
}

impl DataLocation {
    /// Builds a location from its name; the short code follows ACS's tokens where known.
    pub fn new(name: &str) -> DataLocation {
        let name = name.trim().to_ascii_lowercase().replace([' ', '-', '_'], "");
        let region = match name.as_str() {
            "unitedstates" => "us",
            "europe" => "eu",
            "unitedkingdom" => "uk",
            "france" => "fr",
            "germany" => "de",
            "switzerland" => "ch",
            "norway" => "no",
            "india" => "in",
            "japan" => "jp",
            "korea" => "kr",
            "australia" => "au",
            "canada" => "ca",
            "brazil" => "br",
            "uae" => "ae",
            "asiapacific" => "ap",
            "africa" => "za",
            other => &other[..other.len().min(2)],
        }
        .to_owned();
        DataLocation { name, region }
    }
}

/// A freshly issued token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The compact JWS. Secret.
    pub token: String,
    /// Exact expiry (issue time + lifetime).
    pub expires_on: OffsetDateTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken").field("expires_on", &self.expires_on).finish_non_exhaustive()
    }
}

/// Issues ACS tokens for one resource.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    resource: ResourceId,
    location: DataLocation,
    key: Arc<SigningKey>,
}

impl TokenIssuer {
    /// An issuer signing with `key`.
    pub fn new(resource: ResourceId, location: DataLocation, key: Arc<SigningKey>) -> Self {
        TokenIssuer { resource, location, key }
    }

    /// The signing key in use.
    pub fn key(&self) -> &Arc<SigningKey> {
        &self.key
    }

    /// Issues a token for any subject: `skypeid` is the raw id without `8:`, and the
    /// token expires at `expires_on` exactly (used by the token exchanges).
    pub fn issue_subject(
        &self,
        skypeid: String,
        scp: u32,
        acs_scope: String,
        now: OffsetDateTime,
        expires_on: OffsetDateTime,
    ) -> Result<IssuedToken, KeyError> {
        let iat = now.unix_timestamp();
        let claims = AcsClaims {
            skypeid,
            scp,
            csi: iat.to_string(),
            exp: expires_on.unix_timestamp(),
            rgn: self.location.region.clone(),
            acs_scope,
            resource_id: self.resource.to_string(),
            resource_location: self.location.name.clone(),
            iat,
            gen: 0,
            akv: None,
        };
        Ok(IssuedToken { token: self.key.sign_claims(&claims)?, expires_on })
    }

    /// The resource.
    pub fn resource(&self) -> ResourceId {
        self.resource
    }

    /// Issues a token for `user`.
    pub fn issue(
        &self,
        user: UserId,
        scopes: &Scopes,
        lifetime: TokenLifetime,
        now: OffsetDateTime,
        generation: u64,
    ) -> Result<IssuedToken, KeyError> {
        self.issue_with_key(user, scopes, lifetime, now, generation, None)
    }

    /// Issues a token for `user`, recording the access key (`<name>.<version>`) that signed
    /// the request.
    pub fn issue_with_key(
        &self,
        user: UserId,
        scopes: &Scopes,
        lifetime: TokenLifetime,
        now: OffsetDateTime,
        generation: u64,
        access_key: Option<String>,
    ) -> Result<IssuedToken, KeyError> {
        let expires_on = now + lifetime.duration();
        let iat = now.unix_timestamp();
        let claims = AcsClaims {
            skypeid: user.skype_id(self.resource),
            scp: ACS_SCP,
            csi: iat.to_string(),
            exp: expires_on.unix_timestamp(),
            rgn: self.location.region.clone(),
            acs_scope: scopes.claim(),
            resource_id: self.resource.to_string(),
            resource_location: self.location.name.clone(),
            iat,
            gen: generation,
            akv: access_key,
        };
        Ok(IssuedToken { token: self.key.sign_claims(&claims)?, expires_on })
    }
}

/// Why a token failed verification (the `reason` of the validation endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    /// Not a well-formed JWS with ACS claims.
    Malformed,
    /// Signed by one of our keys, but the signature does not verify.
    Signature,
    /// Not issued by this resource (unknown `kid`, or another resource's id).
    Foreign,
    /// Past its `exp`.
    Expired,
    /// Issued before the identity's latest revoke.
    Revoked,
    /// The identity has been deleted.
    Deleted,
}

impl InvalidReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Malformed => "malformed",
            InvalidReason::Signature => "signature",
            InvalidReason::Foreign => "foreign",
            InvalidReason::Expired => "expired",
            InvalidReason::Revoked => "revoked",
            InvalidReason::Deleted => "deleted",
        }
    }
}

/// Whom a token was issued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user of this resource (revocation and deletion apply).
    User(UserId),
    /// An exchanged identity (Teams user, Teams extension user, Entra user): its raw id.
    Exchanged(String),
}

impl Subject {
    /// The raw id.
    pub fn raw_id(&self, resource: ResourceId) -> String {
        match self {
            Subject::User(u) => u.raw_id(resource),
            Subject::Exchanged(raw) => raw.clone(),
        }
    }
}

/// A token whose signature and claims checked out (revocation still to be checked).
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The token's subject.
    pub subject: Subject,
    /// The claims.
    pub claims: AcsClaims,
}

/// Longest token accepted for verification.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies tokens against the resource's public keys.
#[derive(Debug, Clone, Default)]
pub struct TokenVerifier {
    keys: Vec<PublicKey>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

impl TokenVerifier {
    /// A verifier trusting `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        TokenVerifier { keys }
    }

    /// The trusted keys.
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Checks structure, signature, resource and expiry.
    pub fn verify(
        &self,
        token: &str,
        resource: ResourceId,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, InvalidReason> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidReason::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidReason::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(InvalidReason::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| InvalidReason::Malformed)?;
        let claims: AcsClaims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(InvalidReason::Malformed)?;
        let kid = header.kid.ok_or(InvalidReason::Foreign)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(InvalidReason::Foreign)?;
        // The algorithm comes from our key, never from the header (RFC 8725 §3.1).
        if header.alg != key.alg.as_str() {
            return Err(InvalidReason::Signature);
        }
        let signed_len = h.len() + 1 + p.len();
        if !key.verify(&token.as_bytes()[..signed_len], &sig) {
            return Err(InvalidReason::Signature);
        }
        if claims.resource_id != resource.to_string() {
            return Err(InvalidReason::Foreign);
        }
        let raw = format!("8:{}", claims.skypeid);
        let subject = match crate::id::parse_identity(&raw, resource) {
            crate::id::ParsedIdentity::Ours(u) => Subject::User(u),
            crate::id::ParsedIdentity::NotOwned if is_exchanged_for(&raw, resource) => {
                Subject::Exchanged(raw)
            }
            crate::id::ParsedIdentity::NotOwned => return Err(InvalidReason::Foreign),
        };
        if now.unix_timestamp() >= claims.exp {
            return Err(InvalidReason::Expired);
        }
        Ok(VerifiedToken { subject, claims })
    }
}

/// Raw ids the exchanges issue tokens for: Teams users, and Teams extension or Entra
/// users of this resource.
fn is_exchanged_for(raw: &str, resource: ResourceId) -> bool {
    if ["8:orgid:", "8:dod:", "8:gcch:"]
        .iter()
        .any(|p| raw.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
    {
        return true;
    }
    raw.strip_prefix("8:acs:")
        .and_then(|rest| rest.strip_prefix(&resource.to_string()))
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.split('_').count() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use base64::engine::general_purpose::STANDARD;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-02 03:04:05.123456789 UTC);

    fn issuer(alg: SigningAlgorithm) -> (TokenIssuer, ResourceId) {
        let resource = ResourceId::generate();
        let key = Arc::new(SigningKey::generate(alg).unwrap());
        (TokenIssuer::new(resource, DataLocation::new("unitedstates"), key), resource)
    }

    fn scopes() -> Scopes {
        Scopes::new([Scope::Voip, Scope::Chat]).unwrap()
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for alg in [SigningAlgorithm::Es256, SigningAlgorithm::Rs256, SigningAlgorithm::EdDsa] {
            let (iss, resource) = issuer(alg);
            let user = UserId::generate();
            let t = iss.issue(user, &scopes(), TokenLifetime::DEFAULT, NOW, 3).unwrap();
            let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
            let v = verifier.verify(&t.token, resource, NOW).unwrap();
            assert_eq!(v.subject, Subject::User(user));
            assert_eq!(v.claims.acs_scope, "voip,chat");
            assert_eq!(v.claims.gen, 3);
            assert_eq!(v.claims.scp, 1792);
            assert_eq!(v.claims.exp - v.claims.iat, 86400);
            assert_eq!(v.claims.csi, v.claims.iat.to_string());
            assert_eq!(t.expires_on, NOW + time::Duration::minutes(1440));
            let header: serde_json::Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD.decode(t.token.split('.').next().unwrap()).unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["kid"], iss.key().kid());
            assert_eq!(iss.key().public_key().jwk()["kid"], iss.key().kid());
        }
    }

    proptest::proptest! {
        /// Any scope set, lifetime, generation, issue time and access-key stamp round-trips
        /// through an ES256 token: the verifier returns exactly what was signed, the token
        /// expires after its lifetime and not before, and another resource never accepts it.
        #[test]
        fn claims_round_trip(
            picked in proptest::sample::subsequence(
                vec![Scope::Chat, Scope::Voip, Scope::ChatJoin, Scope::ChatJoinLimited, Scope::VoipJoin],
                1..=5,
            ),
            minutes in 60i64..=1440,
            generation in 0u64..u64::from(u32::MAX),
            seconds in 0i64..=4_000_000_000,
            stamp in proptest::option::of("(primary|secondary)\\.[0-9]{1,6}"),
        ) {
            let (iss, resource) = issuer(SigningAlgorithm::Es256);
            let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
            let user = UserId::generate();
            let scopes = Scopes::new(picked.iter().copied()).unwrap();
            let lifetime = TokenLifetime::from_request(Some(minutes)).unwrap();
            let now = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
            let t = iss.issue_with_key(user, &scopes, lifetime, now, generation, stamp.clone()).unwrap();
            let v = verifier.verify(&t.token, resource, now).unwrap();
            proptest::prop_assert_eq!(v.subject, Subject::User(user));
            proptest::prop_assert_eq!(&v.claims.acs_scope, &scopes.claim());
            proptest::prop_assert_eq!(v.claims.gen, generation);
            proptest::prop_assert_eq!(&v.claims.akv, &stamp);
            proptest::prop_assert_eq!(v.claims.iat, seconds);
            proptest::prop_assert_eq!(v.claims.exp, seconds + minutes * 60);
            let last = now + time::Duration::minutes(minutes) - time::Duration::seconds(1);
            proptest::prop_assert!(verifier.verify(&t.token, resource, last).is_ok());
            let after = now + time::Duration::minutes(minutes) + time::Duration::seconds(1);
            proptest::prop_assert!(verifier.verify(&t.token, resource, after).is_err());
            proptest::prop_assert!(verifier.verify(&t.token, ResourceId::generate(), now).is_err());
        }
    }

    #[test]
    fn claims_are_in_acs_order() {
        let (iss, _) = issuer(SigningAlgorithm::Es256);
        let t = iss.issue(UserId::generate(), &scopes(), TokenLifetime::DEFAULT, NOW, 0).unwrap();
        let payload =
            String::from_utf8(URL_SAFE_NO_PAD.decode(t.token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        let order: Vec<usize> = [
            "skypeid",
            "scp",
            "csi",
            "exp",
            "rgn",
            "acsScope",
            "resourceId",
            "resourceLocation",
            "iat",
        ]
        .iter()
        .map(|k| payload.find(&format!("\"{k}\"")).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{payload}");
        assert!(payload.contains(r#""rgn":"us""#));
    }

    #[test]
    fn payload_decodes_with_the_standard_alphabet_like_python() {
        let (iss, _) = issuer(SigningAlgorithm::Es256);
        for minutes in [60, 61, 1439, 1440] {
            let t = iss
                .issue(
                    UserId::generate(),
                    &Scopes::new([Scope::ChatJoinLimited]).unwrap(),
                    TokenLifetime::from_request(Some(minutes)).unwrap(),
                    NOW,
                    12345,
                )
                .unwrap();
            let p = t.token.split('.').nth(1).unwrap();
            assert!(!p.contains('-') && !p.contains('_'), "{p}");
            // What the Python SDK does: standard alphabet, "==" appended.
            let mut padded = p.to_owned();
            while padded.len() % 4 != 0 {
                padded.push('=');
            }
            let claims: serde_json::Value =
                serde_json::from_slice(&STANDARD.decode(padded).unwrap()).unwrap();
            assert_eq!(claims["exp"], (NOW + time::Duration::minutes(minutes)).unix_timestamp());
        }
    }

    #[test]
    fn rejects_tampering_foreign_keys_and_expiry() {
        let (iss, resource) = issuer(SigningAlgorithm::Es256);
        let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
        let t = iss
            .issue(
                UserId::generate(),
                &scopes(),
                TokenLifetime::from_request(Some(60)).unwrap(),
                NOW,
                0,
            )
            .unwrap();
        let at_expiry = NOW + time::Duration::minutes(60);
        assert_eq!(
            verifier.verify(&t.token, resource, at_expiry).unwrap_err(),
            InvalidReason::Expired
        );
        assert!(verifier
            .verify(&t.token, resource, at_expiry - time::Duration::seconds(1))
            .is_ok());

        let mut parts: Vec<String> = t.token.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["gen"] = 99.into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(
            verifier.verify(&parts.join("."), resource, NOW).unwrap_err(),
            InvalidReason::Signature
        );

        let (other, other_resource) = issuer(SigningAlgorithm::Es256);
        let foreign =
            other.issue(UserId::generate(), &scopes(), TokenLifetime::DEFAULT, NOW, 0).unwrap();
        assert_eq!(
            verifier.verify(&foreign.token, resource, NOW).unwrap_err(),
            InvalidReason::Foreign
        );
        let both = TokenVerifier::new(vec![
            iss.key().public_key().clone(),
            other.key().public_key().clone(),
        ]);
        assert_eq!(both.verify(&foreign.token, resource, NOW).unwrap_err(), InvalidReason::Foreign);
        assert!(both.verify(&foreign.token, other_resource, NOW).is_ok());

        for bad in ["", "a.b", "a.b.c.d", "....", "eyJ.eyJ.sig", &"x".repeat(10_000)] {
            assert_eq!(
                verifier.verify(bad, resource, NOW).unwrap_err(),
                InvalidReason::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn exchanged_subjects_verify_with_their_raw_id() {
        let (iss, resource) = issuer(SigningAlgorithm::Es256);
        let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
        let exp = NOW + time::Duration::hours(1);
        for skypeid in [
            "orgid:b27b64b9-39d2-44a3-869d-67700b74e805".to_owned(),
            format!("acs:{resource}_c70d068c-2f32-484d-9455-73070cd5aadd_b27b64b9-39d2-44a3-869d-67700b74e805"),
            format!("acs:{resource}_wf_c70d068c-2f32-484d-9455-73070cd5aadd_b27b64b9-39d2-44a3-869d-67700b74e805"),
        ] {
            let t = iss.issue_subject(skypeid.clone(), 780, "voip,chat".to_owned(), NOW, exp).unwrap();
            let v = verifier.verify(&t.token, resource, NOW).unwrap();
            assert_eq!(v.subject, Subject::Exchanged(format!("8:{skypeid}")));
        }
        let other = ResourceId::generate();
        let t = iss
            .issue_subject(format!("acs:{other}_t_o"), 1792, "voip".to_owned(), NOW, exp)
            .unwrap();
        assert_eq!(verifier.verify(&t.token, resource, NOW).unwrap_err(), InvalidReason::Foreign);
    }

    #[test]
    fn keys_reload_from_pkcs8_with_the_same_kid() {
        for alg in [SigningAlgorithm::Es256, SigningAlgorithm::Rs256, SigningAlgorithm::EdDsa] {
            let k = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, k.pkcs8().to_vec()).unwrap();
            assert_eq!(k.kid(), again.kid());
            assert_eq!(k.kid().len(), 40);
            assert!(!format!("{k:?}").contains(&STANDARD.encode(k.pkcs8())));
        }
        assert!(SigningKey::from_pkcs8(SigningAlgorithm::Es256, vec![1, 2, 3]).is_err());
    }
}
