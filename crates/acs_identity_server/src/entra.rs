//! Trusted Entra issuers: their keys, loaded from files or fetched over HTTPS, cached,
//! and refreshed when a token names a key id the cache does not know.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use acs_identity_core::entra::{
    parse_jwks, Cloud, EntraClaims, EntraError, TrustedIssuer, UnverifiedToken,
};
use anyhow::Context as _;
use time::OffsetDateTime;

use crate::config::{EntraConfig, IssuerConfig};

/// Smallest interval between two fetches of one issuer's JWKS.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
struct Issuer {
    config: IssuerConfig,
    keys: RwLock<Arc<TrustedIssuer>>,
    last_fetch: Mutex<Option<Instant>>,
}

/// The trusted issuers and the bearer allow-lists.
#[derive(Debug)]
pub struct EntraTrust {
    issuers: Vec<Issuer>,
    allowed_app_ids: Vec<String>,
    allowed_object_ids: Vec<String>,
    http: reqwest::Client,
}

impl EntraTrust {
    /// Loads every issuer's keys. A file that cannot be read is a configuration error; a
    /// URL that cannot be fetched now is retried when a token arrives.
    pub async fn load(config: &EntraConfig) -> anyhow::Result<EntraTrust> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the JWKS HTTP client")?;
        let mut issuers = Vec::new();
        for c in &config.issuers {
            if !is_url(&c.jwks) {
                std::fs::metadata(&c.jwks)
                    .with_context(|| format!("JWKS file {} for issuer {}", c.jwks, c.issuer))?;
            } else if !allowed_url(&c.jwks) {
                anyhow::bail!(
                    "JWKS URL {} must use https (http is allowed only for loopback)",
                    c.jwks
                );
            }
            let empty =
                TrustedIssuer { issuer: c.issuer.clone(), keys: Vec::new(), cloud: c.cloud };
            let issuer = Issuer {
                config: c.clone(),
                keys: RwLock::new(Arc::new(empty)),
                last_fetch: Mutex::new(None),
            };
            match fetch(&http, &issuer, false).await {
                Ok(()) => {}
                Err(e) if is_url(&c.jwks) => {
                    tracing::warn!(issuer = %c.issuer, error = %e, "JWKS not loaded yet")
                }
                Err(e) => return Err(e),
            }
            issuers.push(issuer);
        }
        Ok(EntraTrust {
            issuers,
            allowed_app_ids: config
                .allowed_app_ids
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            allowed_object_ids: config
                .allowed_object_ids
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            http,
        })
    }

    /// No issuer is trusted: every bearer token is refused.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }
}

/// Loads `issuer`'s keys; on-demand refreshes happen at most once per
/// [`MIN_REFRESH_INTERVAL`], so tokens with made-up key ids cannot hammer the issuer.
async fn fetch(http: &reqwest::Client, issuer: &Issuer, on_demand: bool) -> anyhow::Result<()> {
    if on_demand {
        let mut last = issuer.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL) {
            return Ok(());
        }
        *last = Some(Instant::now());
    }
    let src = &issuer.config.jwks;
    let bytes = if is_url(src) {
        let res = http.get(src).send().await.with_context(|| format!("fetching {src}"))?;
        if !res.status().is_success() {
            anyhow::bail!("fetching {src}: status {}", res.status());
        }
        let body = res.bytes().await.with_context(|| format!("reading {src}"))?;
        if body.len() > MAX_JWKS_BYTES {
            anyhow::bail!("{src} is larger than {MAX_JWKS_BYTES} bytes");
        }
        body.to_vec()
    } else {
        tokio::fs::read(src).await.with_context(|| format!("reading {src}"))?
    };
    let keys = parse_jwks(&bytes).with_context(|| format!("JWKS of {}", issuer.config.issuer))?;
    let fresh =
        TrustedIssuer { issuer: issuer.config.issuer.clone(), keys, cloud: issuer.config.cloud };
    *issuer.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
    Ok(())
}

impl EntraTrust {
    /// Verifies `token` for one of `audiences`; refreshes the issuer's keys once when the
    /// token names an unknown key.
    pub async fn verify(
        &self,
        token: &str,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<(EntraClaims, Cloud), EntraError> {
        let parsed = UnverifiedToken::parse(token)?;
        let iss = parsed.issuer().ok_or(EntraError::UntrustedIssuer)?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or(EntraError::UntrustedIssuer)?;
        let keys = issuer.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        match parsed.verify(&keys, audiences, now) {
            Err(EntraError::UnknownKey) => {
                if let Err(e) = fetch(&self.http, issuer, true).await {
                    tracing::warn!(issuer = %iss, error = %e, "JWKS refresh failed");
                }
                let keys = issuer.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
                parsed.verify(&keys, audiences, now).map(|c| (c, keys.cloud))
            }
            other => other.map(|c| (c, keys.cloud)),
        }
    }

    /// Whether verified `claims` may use the Identity API (the optional allow-lists).
    pub fn allows(&self, claims: &EntraClaims) -> bool {
        let app_ok = self.allowed_app_ids.is_empty()
            || claims
                .app_id
                .as_ref()
                .is_some_and(|a| self.allowed_app_ids.contains(&a.to_ascii_lowercase()));
        let oid_ok = self.allowed_object_ids.is_empty()
            || claims
                .oid
                .as_ref()
                .is_some_and(|o| self.allowed_object_ids.contains(&o.to_ascii_lowercase()));
        app_ok && oid_ok
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

fn allowed_url(s: &str) -> bool {
    if s.starts_with("https://") {
        return true;
    }
    let Some(rest) = s.strip_prefix("http://") else { return false };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(allowed_url("https://login.microsoftonline.com/common/discovery/v2.0/keys"));
        assert!(allowed_url("http://127.0.0.1:8080/jwks"));
        assert!(allowed_url("http://localhost/jwks"));
        assert!(!allowed_url("http://example.com/jwks"));
        assert!(!allowed_url("ftp://x"));
    }
}
