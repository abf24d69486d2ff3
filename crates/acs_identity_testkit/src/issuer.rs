//! A local OpenID issuer that mints Entra-shaped tokens, with a JWKS served on
//! `127.0.0.1:0` and written to a file.

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use acs_identity_server::config::IssuerConfig;
use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use axum::routing::get;
use axum::{Json, Router};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use time::Duration;

/// The audience of tokens for the Identity API.
pub const API_AUDIENCE: &str = "https://communication.azure.com";
/// The audience of Teams tokens.
pub const TEAMS_AUDIENCE: &str = "https://auth.msft.communication.azure.com";

/// The scopes Entra gives a Teams user's token for the ACS Teams user exchange.
pub const TEAMS_USER_SCOPES: &str = "Teams.ManageCalls Teams.ManageChats";

struct Key {
    kid: String,
    pair: RsaKeyPair,
}

/// A running test issuer.
pub struct TestIssuer {
    issuer: String,
    tenant: String,
    keys: Arc<Mutex<Vec<Key>>>,
    url: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn new_key(n: usize) -> Key {
    Key {
        kid: format!("test-key-{n}"),
        pair: RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key"),
    }
}

fn jwks(keys: &[Key]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let pk = k.pair.public_key();
            json!({"kty": "RSA", "use": "sig", "kid": k.kid,
                   "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
                   "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero())})
        })
        .collect();
    json!({ "keys": keys })
}

impl TestIssuer {
    /// Starts an issuer with one RS256 key.
    pub async fn start() -> TestIssuer {
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant = uuid_like();
        let keys = Arc::new(Mutex::new(vec![new_key(1)]));
        let served = keys.clone();
        let app = Router::new().route(
            "/discovery/keys",
            get(move || {
                let doc = jwks(&served.lock().expect("keys"));
                async move { Json(doc) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let file = dir.path().join("jwks.json");
        std::fs::write(
            &file,
            serde_json::to_vec(&jwks(&keys.lock().expect("keys"))).expect("json"),
        )
        .expect("write jwks");
        TestIssuer {
            issuer: format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            tenant,
            keys,
            url: format!("http://{addr}/discovery/keys"),
            file,
            _dir: dir,
            task,
        }
    }

    /// The `iss` value.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The tenant id its tokens carry.
    pub fn tenant_id(&self) -> &str {
        &self.tenant
    }

    /// The JWKS URL (plain HTTP on loopback).
    pub fn jwks_url(&self) -> &str {
        &self.url
    }

    /// The JWKS file (the keys at start).
    pub fn jwks_file(&self) -> &Path {
        &self.file
    }

    /// Trust configuration using the URL.
    pub fn config_url(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            jwks: self.url.clone(),
            cloud: Default::default(),
        }
    }

    /// Trust configuration using the file.
    pub fn config_file(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            jwks: self.file.display().to_string(),
            cloud: Default::default(),
        }
    }

    /// Adds a new signing key, served at the URL (not in the file); later tokens use it.
    pub fn rotate(&self) {
        let mut keys = self.keys.lock().expect("keys");
        let n = keys.len() + 1;
        keys.push(new_key(n));
    }

    /// Signs `claims` with the newest key.
    pub fn mint(&self, claims: &Value) -> String {
        let keys = self.keys.lock().expect("keys");
        let key = keys.last().expect("a key");
        sign(key, &key.kid, claims)
    }

    /// Signs `claims` with a key the issuer does not publish, under a published `kid`.
    pub fn mint_forged(&self, claims: &Value) -> String {
        let kid = self.keys.lock().expect("keys").last().expect("a key").kid.clone();
        sign(&new_key(0), &kid, claims)
    }

    /// A token for the Teams APIs (`aud` [`TEAMS_AUDIENCE`]) of user `oid` in client
    /// application `app_id`, with `scp`.
    pub fn teams_token(&self, oid: &str, app_id: &str, scp: &str) -> String {
        self.mint(&self.claims(TEAMS_AUDIENCE, oid, app_id, scp))
    }

    /// Entra-shaped claims: this issuer, `aud`, tenant, a fresh `oid`, `appid`, 1 h life.
    pub fn claims(&self, aud: &str, oid: &str, app_id: &str, scp: &str) -> Value {
        let now = SystemClock.now();
        json!({
            "aud": aud, "iss": self.issuer, "iat": now.unix_timestamp(),
            "nbf": (now - Duration::minutes(1)).unix_timestamp(),
            "exp": (now + Duration::hours(1)).unix_timestamp(),
            "tid": self.tenant, "oid": oid, "appid": app_id, "azp": app_id, "scp": scp, "ver": "1.0",
        })
    }
}

/// An Entra credential of one user of a [`TestIssuer`], for clients on `azure_core`: mints the
/// issuer's tokens for the requested scope, with the audience and `scp` Entra would put in
/// them, and keeps the scopes it was asked for and the tokens it gave.
pub struct IssuerCredential {
    issuer: Arc<TestIssuer>,
    object_id: String,
    app_id: String,
    scopes: Mutex<Vec<String>>,
    tokens: Mutex<Vec<String>>,
}

impl fmt::Debug for IssuerCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerCredential").field("object_id", &self.object_id).finish()
    }
}

impl IssuerCredential {
    /// The credential of user `object_id` signed in to client application `app_id`.
    pub fn new(issuer: &Arc<TestIssuer>, object_id: &str, app_id: &str) -> Arc<Self> {
        Arc::new(Self {
            issuer: issuer.clone(),
            object_id: object_id.to_owned(),
            app_id: app_id.to_owned(),
            scopes: Mutex::new(Vec::new()),
            tokens: Mutex::new(Vec::new()),
        })
    }

    /// How many tokens it gave.
    pub fn calls(&self) -> usize {
        self.tokens.lock().expect("tokens").len()
    }

    /// Every scope it was asked for, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes.lock().expect("scopes").clone()
    }

    /// The token it gave last.
    pub fn last_token(&self) -> Option<String> {
        self.tokens.lock().expect("tokens").last().cloned()
    }
}

#[async_trait]
impl TokenCredential for IssuerCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes.lock().expect("scopes").extend(scopes.iter().map(|s| (*s).to_owned()));
        // `https://resource/path/.default` → aud `https://resource/path`, no scp;
        // `https://resource/Name` → aud `https://resource`, scp `Name`.
        let (resource, name) = scopes[0].rsplit_once('/').expect("a scope URI");
        let (aud, scp) = if name == ".default" {
            (resource.trim_end_matches('/'), "")
        } else {
            (resource, name)
        };
        let token = self.issuer.mint(&self.issuer.claims(aud, &self.object_id, &self.app_id, scp));
        self.tokens.lock().expect("tokens").push(token.clone());
        Ok(AccessToken::new(Secret::new(token), SystemClock.now() + Duration::hours(1)))
    }
}

fn sign(key: &Key, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("json"))
    );
    let mut sig = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut sig)
        .expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A random lower-case GUID.
pub fn uuid_like() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).expect("random");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
