//! A local, Entra-compatible OpenID authority (`serve --entra-listen ADDR`).
//!
//! It serves what the Azure identity libraries (azure-identity, `@azure/identity`, MSAL)
//! ask Entra for when instance discovery is off or the tenant is `adfs`: the tenant and
//! `adfs` OpenID configurations, the JWKS, the token endpoint (`client_credentials` and
//! `password` grants), `userrealm` and the instance-discovery document. Its directory
//! ([`directory`]) comes from the configuration, plus the well-known development tenant with
//! `--dev`. Tokens are shaped like Entra's v2 tokens and signed RS256 with a key kept in
//! `entra/signing-key.pem` of the data directory (the temporary directory with
//! `--in-memory`); its JWKS is written beside it (`entra/jwks.json`), and the service trusts
//! the authority's issuers with that file like any `--trust-issuer`.
//!
//! With `entra_proxy_listen`, [`proxy`] also answers for Entra's own host names through an
//! HTTP `CONNECT` proxy, so code that cannot turn instance discovery off reaches it too.

pub mod directory;
mod endpoints;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use acs_identity_core::token::{SigningAlgorithm, SigningKey};
use acs_identity_core::Clock;
use anyhow::Context as _;

pub use directory::{Directory, Secret};
pub use endpoints::router;

use crate::config::IssuerConfig;

/// Entra's host names in the public cloud (the aliases of its instance-discovery metadata):
/// the only hosts the proxy answers for.
pub const PUBLIC_CLOUD_HOSTS: &[&str] =
    &["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"];

/// The host of the public cloud's `iss`, whichever alias issued the token.
pub const PUBLIC_CLOUD_ISSUER_HOST: &str = "login.microsoftonline.com";

/// The running authority: where it is, whom it knows and the key it signs with.
pub struct Authority {
    base: String,
    directory: Directory,
    key: SigningKey,
    jwks: serde_json::Value,
    jwks_file: PathBuf,
    clock: Arc<dyn Clock>,
    /// `http://host:port` of the proxy, when `entra_proxy_listen` is set.
    proxy: Option<String>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("base", &self.base)
            .field("directory", &self.directory)
            .field("key", &self.key)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Opens the authority at `base` (`https://host:port`) with its key in `dir` (created on
    /// first start, kept after) and `directory`.
    pub fn open(
        dir: &Path,
        base: String,
        directory: Directory,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Authority> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key_path = dir.join("signing-key.pem");
        let key = if key_path.exists() {
            let text = std::fs::read_to_string(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?;
            let pem = pem::parse(text)
                .with_context(|| format!("{} is not a PEM key", key_path.display()))?;
            SigningKey::from_pkcs8(SigningAlgorithm::Rs256, pem.into_contents())
                .with_context(|| format!("{} is not an RSA PKCS#8 key", key_path.display()))?
        } else {
            let key = SigningKey::generate(SigningAlgorithm::Rs256)?;
            let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", key.pkcs8().to_vec()));
            crate::tls::write_secret(&key_path, pem.as_bytes())?;
            key
        };
        let jwks = serde_json::json!({ "keys": [key.public_key().jwk()] });
        let jwks_file = dir.join("jwks.json");
        std::fs::write(&jwks_file, serde_json::to_vec_pretty(&jwks)?)
            .with_context(|| format!("cannot write {}", jwks_file.display()))?;
        Ok(Authority { base, directory, key, jwks, jwks_file, clock, proxy: None })
    }

    /// `https://host:port`: the authority host (`AZURE_AUTHORITY_HOST`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Records that the proxy runs at `url` (`http://host:port`): the service then also trusts
    /// the public cloud's issuers (`https://login.microsoftonline.com/{tenant}/v2.0`) with
    /// this authority's keys.
    pub fn set_proxy(&mut self, url: String) {
        self.proxy = Some(url);
    }

    /// `http://host:port` of the proxy, when it runs.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// The tenants, applications and users it knows.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The `iss` of its access tokens for `tenant_id`.
    pub fn issuer(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/v2.0", self.base)
    }

    /// The issuers the service trusts, with the authority's JWKS file: one per tenant, and
    /// with the proxy also the public cloud's issuer of each tenant.
    pub fn trusted_issuers(&self) -> Vec<IssuerConfig> {
        let public = format!("https://{PUBLIC_CLOUD_ISSUER_HOST}");
        let bases = std::iter::once(self.base.as_str())
            .chain(self.proxy.is_some().then_some(public.as_str()));
        bases
            .flat_map(|base| {
                self.directory.tenants.iter().map(move |t| IssuerConfig {
                    issuer: format!("{base}/{}/v2.0", t.tenant_id),
                    jwks: self.jwks_file.display().to_string(),
                    cloud: Default::default(),
                })
            })
            .collect()
    }

    /// What the ready line shows: the authority host and the first tenant, application and
    /// user (the development ones with `--dev`). Holds secrets.
    pub fn ready_info(&self) -> serde_json::Value {
        let tenant = self.directory.tenants.first();
        let app = tenant.and_then(|t| t.applications.first());
        let user = tenant.and_then(|t| t.users.first());
        serde_json::json!({
            "authority": self.base,
            "tenantId": tenant.map(|t| &t.tenant_id),
            "clientId": app.map(|a| &a.client_id),
            "clientSecret": app.and_then(|a| a.client_secret.as_ref()).map(Secret::expose),
            "username": user.map(|u| &u.username),
            "password": user.map(|u| u.password.expose()),
            "proxy": self.proxy,
        })
    }
}
