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

use crate::id::{ExchangedIdentity, ResourceId, UserId};
use crate::jws::Jws;
use crate::scope::{Scopes, TokenLifetime};

/// The `scp` value of every ACS user token, and of the Teams extension and Entra users'.
pub const ACS_SCP: u32 = 1792;
/// The `scp` value of the tokens of Teams users (`8:orgid:…`).
pub const TEAMS_USER_SCP: u32 = 780;

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
        self.sign_json(claims)
    }

    /// Signs any serializable claims into a compact JWS with this key's header (the local
    /// Entra authority's tokens).
    pub fn sign_json<T: Serialize + ?Sized>(&self, claims: &T) -> Result<String, KeyError> {
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

    /// The resource.
    pub fn resource(&self) -> ResourceId {
        self.resource
    }

    /// Issues the token `request` describes.
    pub fn issue(&self, request: TokenRequest) -> Result<IssuedToken, KeyError> {
        let expires_on = request.expires_on;
        Ok(IssuedToken { token: self.key.sign_claims(&self.claims(request))?, expires_on })
    }

    /// The claims of a token, in ACS's order.
    fn claims(&self, request: TokenRequest) -> AcsClaims {
        let iat = request.now.unix_timestamp();
        let (skypeid, generation) = match &request.subject {
            TokenSubject::User { user, generation } => (user.skype_id(self.resource), *generation),
            TokenSubject::Exchanged(identity) => (identity.skype_id(self.resource), 0),
        };
        AcsClaims {
            skypeid,
            scp: request.scp,
            csi: iat.to_string(),
            exp: request.expires_on.unix_timestamp(),
            rgn: self.location.region.clone(),
            acs_scope: request.acs_scope,
            resource_id: self.resource.to_string(),
            resource_location: self.location.name.clone(),
            iat,
            gen: generation,
            akv: request.access_key,
        }
    }
}

/// Whom a token is issued to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSubject {
    /// A user of the resource, at its current revocation generation.
    User {
        /// The user.
        user: UserId,
        /// The identity's generation, recorded in `gen`.
        generation: u64,
    },
    /// An identity a token exchange issues for (no revocation generation).
    Exchanged(ExchangedIdentity),
}

/// A token to issue: [`TokenRequest::user`] or [`TokenRequest::exchanged`].
#[derive(Clone, Debug)]
pub struct TokenRequest {
    subject: TokenSubject,
    scp: u32,
    acs_scope: String,
    now: OffsetDateTime,
    expires_on: OffsetDateTime,
    access_key: Option<String>,
}

impl TokenRequest {
    /// A token for a user of the resource with `scopes`, valid for `lifetime` from `now`.
    pub fn user(
        user: UserId,
        generation: u64,
        scopes: &Scopes,
        lifetime: TokenLifetime,
        now: OffsetDateTime,
    ) -> Self {
        TokenRequest {
            subject: TokenSubject::User { user, generation },
            scp: ACS_SCP,
            acs_scope: scopes.claim(),
            now,
            expires_on: now + lifetime.duration(),
            access_key: None,
        }
    }

    /// A token for an exchanged identity, expiring at `expires_on` exactly (when the Entra
    /// token it was exchanged for does, at most 24 hours from `now`). Its `scp` and scopes
    /// are those ACS gives each kind: Teams users 780 with `voip,chat`, Teams extension users
    /// 1792 with `voip`, Entra users 1792 with `voip,chat`.
    pub fn exchanged(
        identity: ExchangedIdentity,
        now: OffsetDateTime,
        expires_on: OffsetDateTime,
    ) -> Self {
        let (scp, acs_scope) = match identity {
            ExchangedIdentity::TeamsUser { .. } => (TEAMS_USER_SCP, "voip,chat"),
            ExchangedIdentity::TeamsExtensionUser { .. } => (ACS_SCP, "voip"),
            ExchangedIdentity::EntraUser { .. } => (ACS_SCP, "voip,chat"),
        };
        let expires_on = expires_on.min(now + time::Duration::hours(24));
        TokenRequest {
            subject: TokenSubject::Exchanged(identity),
            scp,
            acs_scope: acs_scope.to_owned(),
            now,
            expires_on,
            access_key: None,
        }
    }

    /// Records the access key (`<name>.<version>`) that signed the request issuing the
    /// token: regenerating that key revokes it.
    pub fn with_access_key(mut self, stamp: Option<String>) -> Self {
        self.access_key = stamp;
        self
    }

    /// When the token will expire.
    pub fn expires_on(&self) -> OffsetDateTime {
        self.expires_on
    }
}

/// What the store holds of a user, as far as its tokens are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityState {
    /// Revocation generation: tokens with a lower `gen` are revoked.
    pub generation: u64,
    /// Deleted: every token is invalid.
    pub deleted: bool,
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

impl VerifiedToken {
    /// Whether the token was issued through an access key that is no longer in force
    /// (regenerated): then it is revoked. `is_current` tells whether a key stamp
    /// (`<name>.<version>`) is still in force; tokens issued through Entra carry none.
    pub fn key_revoked(&self, is_current: impl Fn(&str) -> bool) -> bool {
        self.claims.akv.as_deref().is_some_and(|stamp| !is_current(stamp))
    }

    /// The verdict on a user's token given what the store holds of the user (`None`: not
    /// found, a foreign token); exchanged identities are not revoked this way.
    pub fn standing(&self, identity: Option<IdentityState>) -> Result<(), InvalidReason> {
        if let Subject::Exchanged(_) = self.subject {
            return Ok(());
        }
        match identity {
            None => Err(InvalidReason::Foreign),
            Some(state) if state.deleted => Err(InvalidReason::Deleted),
            Some(state) if self.claims.gen < state.generation => Err(InvalidReason::Revoked),
            Some(_) => Ok(()),
        }
    }
}

/// Longest token accepted for verification.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies tokens against the resource's public keys.
#[derive(Debug, Clone, Default)]
pub struct TokenVerifier {
    keys: Vec<PublicKey>,
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
        let jws = Jws::<AcsClaims>::parse(token).ok_or(InvalidReason::Malformed)?;
        let (header, claims) = (jws.header, jws.payload);
        let kid = header.kid.ok_or(InvalidReason::Foreign)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(InvalidReason::Foreign)?;
        // The algorithm comes from our key, never from the header (RFC 8725 §3.1).
        if header.alg != key.alg.as_str() {
            return Err(InvalidReason::Signature);
        }
        if !key.verify(jws.signed, &jws.signature) {
            return Err(InvalidReason::Signature);
        }
        if claims.resource_id != resource.to_string() {
            return Err(InvalidReason::Foreign);
        }
        let raw = format!("8:{}", claims.skypeid);
        let subject = match crate::id::parse_identity(&raw, resource) {
            crate::id::ParsedIdentity::Ours(u) => Subject::User(u),
            crate::id::ParsedIdentity::NotOwned
                if ExchangedIdentity::is_exchanged(&raw, resource) =>
            {
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

    /// A day-long `voip,chat` token for a new user at `generation`, issued at `NOW`.
    fn user_token(iss: &TokenIssuer, generation: u64) -> IssuedToken {
        let request = TokenRequest::user(
            UserId::generate(),
            generation,
            &scopes(),
            TokenLifetime::DEFAULT,
            NOW,
        );
        iss.issue(request).unwrap()
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for alg in [SigningAlgorithm::Es256, SigningAlgorithm::Rs256, SigningAlgorithm::EdDsa] {
            let (iss, resource) = issuer(alg);
            let user = UserId::generate();
            let t = iss
                .issue(TokenRequest::user(user, 3, &scopes(), TokenLifetime::DEFAULT, NOW))
                .unwrap();
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
            let t = iss.issue(TokenRequest::user(user, generation, &scopes, lifetime, now).with_access_key(stamp.clone())).unwrap();
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
        let t = user_token(&iss, 0);
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
                .issue(TokenRequest::user(
                    UserId::generate(),
                    12345,
                    &Scopes::new([Scope::ChatJoinLimited]).unwrap(),
                    TokenLifetime::from_request(Some(minutes)).unwrap(),
                    NOW,
                ))
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
            .issue(TokenRequest::user(
                UserId::generate(),
                0,
                &scopes(),
                TokenLifetime::from_request(Some(60)).unwrap(),
                NOW,
            ))
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
        let foreign = user_token(&other, 0);
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
    fn exchanged_subjects_verify_with_their_raw_id_scp_and_scopes() {
        use crate::entra::Cloud;
        let (iss, resource) = issuer(SigningAlgorithm::Es256);
        let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
        let exp = NOW + time::Duration::hours(1);
        let (tid, oid) =
            ("c70d068c-2f32-484d-9455-73070cd5aadd", "b27b64b9-39d2-44a3-869d-67700b74e805");
        for (identity, scp, scope) in [
            (ExchangedIdentity::teams_user(Cloud::Public, oid), 780, "voip,chat"),
            (ExchangedIdentity::teams_extension_user(tid, oid), 1792, "voip"),
            (ExchangedIdentity::entra_user(tid, oid), 1792, "voip,chat"),
        ] {
            let t = iss.issue(TokenRequest::exchanged(identity.clone(), NOW, exp)).unwrap();
            let v = verifier.verify(&t.token, resource, NOW).unwrap();
            assert_eq!(v.subject, Subject::Exchanged(identity.raw_id(resource)));
            assert_eq!((v.claims.scp, v.claims.acs_scope.as_str()), (scp, scope));
            assert_eq!((v.claims.gen, v.claims.akv.as_deref()), (0, None));
            assert_eq!(t.expires_on, exp);
            // Exchanged tokens are not revoked through an identity.
            assert_eq!(v.standing(None), Ok(()));
        }
        // At most 24 hours, whatever the Entra token says.
        let long = iss
            .issue(TokenRequest::exchanged(
                ExchangedIdentity::teams_user(Cloud::Public, oid),
                NOW,
                NOW + time::Duration::days(3),
            ))
            .unwrap();
        assert_eq!(long.expires_on, NOW + time::Duration::hours(24));
        let other = ResourceId::generate();
        let foreign = iss.key().sign_claims(&AcsClaims {
            skypeid: format!("acs:{other}_t_o"),
            ..verifier.verify(&long.token, resource, NOW).unwrap().claims
        });
        assert_eq!(
            verifier.verify(&foreign.unwrap(), resource, NOW).unwrap_err(),
            InvalidReason::Foreign
        );
    }

    #[test]
    fn the_revocation_verdict_follows_generation_deletion_and_key() {
        let (iss, resource) = issuer(SigningAlgorithm::Es256);
        let verifier = TokenVerifier::new(vec![iss.key().public_key().clone()]);
        let request =
            TokenRequest::user(UserId::generate(), 2, &scopes(), TokenLifetime::DEFAULT, NOW);
        let t = iss.issue(request.with_access_key(Some("primary.3".to_owned()))).unwrap();
        let v = verifier.verify(&t.token, resource, NOW).unwrap();
        let live = |generation| Some(IdentityState { generation, deleted: false });
        assert_eq!(v.standing(live(2)), Ok(()));
        assert_eq!(v.standing(live(1)), Ok(()));
        assert_eq!(v.standing(live(3)), Err(InvalidReason::Revoked));
        assert_eq!(
            v.standing(Some(IdentityState { generation: 2, deleted: true })),
            Err(InvalidReason::Deleted)
        );
        assert_eq!(v.standing(None), Err(InvalidReason::Foreign));
        assert!(!v.key_revoked(|stamp| stamp == "primary.3"));
        assert!(v.key_revoked(|stamp| stamp == "primary.4"));
        let without_key = user_token(&iss, 0);
        let v = verifier.verify(&without_key.token, resource, NOW).unwrap();
        assert!(!v.key_revoked(|_| false));
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
