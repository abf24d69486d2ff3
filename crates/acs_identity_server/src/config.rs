//! Service configuration: defaults < TOML file < `ACSID_*` environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use acs_identity_core::token::SigningAlgorithm;
use acs_identity_store::{DatabaseUrl, StoreLocation};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything `acs-identity serve` can be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database and TLS material live.
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user:password@host:port/db`) shared by every node
    /// of the resource, instead of the SQLite file in `data_dir`.
    pub database_url: Option<DatabaseUrl>,
    /// Connections each node keeps to PostgreSQL at most (ignored for SQLite).
    pub database_max_connections: u32,
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// Optional plain-HTTP listener.
    pub http_listen: Option<SocketAddr>,
    /// Keep Prometheus metrics and serve them at `GET /metrics` (on by default).
    pub metrics: bool,
    /// Serve `GET /metrics` on this plain-HTTP address only, instead of on the API listeners.
    pub metrics_listen: Option<SocketAddr>,
    /// A certificate chain (PEM) to serve instead of the development certificate.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Host names (with port if non-default) clients use to reach the service behind a
    /// proxy; accepted as the signed host besides the received `Host` header.
    pub public_hosts: Vec<String>,
    /// The resource's data location, fixed when the resource is created.
    pub data_location: String,
    /// Algorithm for new access tokens.
    pub signing_alg: SigningAlgorithm,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest request head (request line and header fields) accepted, in bytes; larger
    /// ones get 431. The HTTP parser itself refuses heads over twice this size.
    pub max_header_bytes: usize,
    /// How long a request may take from its complete head to its response, reading a
    /// slow body included; longer ones get 408.
    pub request_timeout_seconds: u64,
    /// How long a connection may stay without a request in flight (between keep-alive
    /// requests, or while a request head trickles in) before it is closed.
    pub idle_timeout_seconds: u64,
    /// Most requests handled at once; more get 503 with `Retry-After` at once, not a queue.
    pub max_in_flight_requests: usize,
    /// How often, in milliseconds, the times tokens were last issued (`lastTokenIssuedAt`)
    /// are written to the store; issuing a token does not wait for it. A crash loses at
    /// most this window of those times, and nothing else.
    pub last_token_flush_ms: u64,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// The audit log of state-changing requests: `"off"` (the default), `"stdout"`, or a
    /// file appended to.
    pub audit_log: crate::audit::AuditDestination,
    /// Entra ID: trusted issuers and who may call the API with a bearer token.
    pub entra: EntraConfig,
    /// HTTPS listener of the built-in Entra ID authority (`crate::authority`), which the
    /// service then trusts as an issuer; off when not set.
    pub entra_listen: Option<SocketAddr>,
    /// Plain-HTTP listener of the Entra proxy (`crate::authority::proxy`): a `CONNECT` proxy
    /// that answers for Entra's public-cloud host names with the built-in authority, for
    /// clients configured with `HTTPS_PROXY` only; needs `entra_listen`.
    pub entra_proxy_listen: Option<SocketAddr>,
    /// The built-in authority's tenants, applications and users (`[[entra_directory.tenants]]`);
    /// `dev` adds the well-known development tenant.
    pub entra_directory: crate::authority::Directory,
    /// Request throttling (`[throttle]`), off by default.
    pub throttle: crate::throttle::ThrottleConfig,
    /// Origins whose pages may call the service from a browser (CORS): `["*"]` (the
    /// default) any, a list only those, `[]` none. A comma-separated string also works.
    #[serde(deserialize_with = "crate::cors::deserialize_origins")]
    pub cors_allowed_origins: Vec<String>,
    /// Keep the store in memory and the development CA in a temporary directory removed
    /// at exit: nothing is written to `data_dir`.
    pub in_memory: bool,
    /// Serve the well-known development resource ([`crate::dev`]); only on loopback
    /// listeners.
    pub dev: bool,
    /// Serve an unknown `api-version` as the newest one the operation has.
    pub skip_api_version_check: bool,
    /// What `serve` prints on stdout: a banner (`text`) or one JSON line once ready (`json`).
    pub output: OutputFormat,
    /// A file to write the ready JSON object to (atomically) once the service is ready.
    pub ready_file: Option<PathBuf>,
}

/// What `serve` prints on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A banner for people.
    #[default]
    Text,
    /// Exactly one JSON object (`{"event":"ready",…}`) once the service accepts connections.
    Json,
}

/// Entra ID settings (`[entra]` in TOML).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EntraConfig {
    /// Trusted OpenID issuers (`[[entra.issuers]]`).
    pub issuers: Vec<IssuerConfig>,
    /// When not empty, only these client application ids may call the API with a bearer token.
    pub allowed_app_ids: Vec<String>,
    /// When not empty, only these object ids may call the API with a bearer token.
    pub allowed_object_ids: Vec<String>,
}

/// One trusted issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` claim, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`.
    pub issuer: String,
    /// Where its keys are: a JWKS file path or an `https://` URL (`http://` only for loopback).
    pub jwks: String,
    /// `public`, `dod` or `gcch`: decides the Teams raw-id prefix.
    #[serde(default)]
    pub cloud: acs_identity_core::entra::Cloud,
}

impl std::str::FromStr for IssuerConfig {
    type Err = String;

    /// Parses `ISSUER=JWKS` as given to `--trust-issuer`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The issuer is a URL and may contain '=' only in a query, which issuers do not have;
        // split at the '=' that follows the issuer's scheme and authority.
        let (issuer, jwks) = s
            .split_once('=')
            .filter(|(i, j)| !i.is_empty() && !j.is_empty())
            .ok_or_else(|| format!("expected ISSUER=JWKS, got '{s}'"))?;
        Ok(IssuerConfig {
            issuer: issuer.to_owned(),
            jwks: jwks.to_owned(),
            cloud: Default::default(),
        })
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./acs-identity-data"),
            database_url: None,
            database_max_connections: 16,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_listen: None,
            metrics: true,
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            public_hosts: Vec::new(),
            data_location: "unitedstates".to_owned(),
            signing_alg: SigningAlgorithm::Es256,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 32 * 1024,
            request_timeout_seconds: 30,
            idle_timeout_seconds: 30,
            max_in_flight_requests: 1024,
            last_token_flush_ms: 1000,
            log_format: LogFormat::Text,
            audit_log: crate::audit::AuditDestination::Off,
            entra: EntraConfig::default(),
            entra_listen: None,
            entra_proxy_listen: None,
            entra_directory: crate::authority::Directory::default(),
            throttle: crate::throttle::ThrottleConfig::default(),
            cors_allowed_origins: vec![crate::cors::ANY_ORIGIN.to_owned()],
            in_memory: false,
            dev: false,
            skip_api_version_check: false,
            output: OutputFormat::Text,
            ready_file: None,
        }
    }
}

/// Smallest `max_header_bytes`: the official SDKs send heads of about 1 KiB, and Entra
/// bearer tokens are several KiB.
pub const MIN_HEADER_BYTES: usize = 4 * 1024;
/// Largest `max_header_bytes` (the parser's buffer is twice the limit).
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Variables under `ACSID_` that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &["config", "log"];

impl Config {
    /// The layered configuration: defaults, then `file` (if any), then `ACSID_*` variables.
    /// Callers merge command-line flags on top with [`Figment::merge`].
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            f = f.merge(Toml::file_exact(file));
        }
        let known = config_keys();
        // Only variables naming a configuration key are read; others get a warning at
        // start-up (see `unknown_env_vars`) instead of failing the whole configuration.
        f.merge(
            Env::prefixed("ACSID_")
                .filter(move |k| {
                    let top = k.as_str().split("__").next().unwrap_or_default();
                    known.iter().any(|c| c.eq_ignore_ascii_case(top))
                })
                .split("__"),
        )
    }

    /// Extracts and checks a configuration.
    pub fn from_figment(f: &Figment) -> anyhow::Result<Config> {
        let config: Config =
            f.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("tls_cert and tls_key must be given together");
        }
        if self.max_body_bytes < 1024 {
            anyhow::bail!("max_body_bytes must be at least 1024");
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            anyhow::bail!("database_max_connections must be within [1, 1000]");
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            anyhow::bail!(
                "max_header_bytes must be within [{MIN_HEADER_BYTES}, {MAX_HEADER_BYTES}]"
            );
        }
        if self.request_timeout_seconds == 0 || self.idle_timeout_seconds == 0 {
            anyhow::bail!("request_timeout_seconds and idle_timeout_seconds must be at least 1");
        }
        if !(1..=1_000_000).contains(&self.max_in_flight_requests) {
            anyhow::bail!("max_in_flight_requests must be within [1, 1000000]");
        }
        if !(10..=60_000).contains(&self.last_token_flush_ms) {
            anyhow::bail!("last_token_flush_ms must be within [10, 60000]");
        }
        if self.metrics_listen.is_some() && !self.metrics {
            anyhow::bail!("metrics_listen needs metrics = true");
        }
        if self.data_location.trim().is_empty() {
            anyhow::bail!("data_location must not be empty");
        }
        for origin in &self.cors_allowed_origins {
            crate::cors::normalize_origin(origin)
                .map_err(|e| anyhow::anyhow!("cors_allowed_origins: {e}"))?;
        }
        if let Some(url) = &self.database_url {
            StoreLocation::parse(url.expose()).map_err(|e| anyhow::anyhow!("database_url: {e}"))?;
            if self.in_memory {
                anyhow::bail!("in_memory and database_url exclude each other");
            }
        }
        self.entra_directory.validate().map_err(anyhow::Error::msg)?;
        if self.entra_listen.is_some() && !self.dev && self.entra_directory.tenants.is_empty() {
            anyhow::bail!(
                "entra_listen: the Entra authority needs a directory: --dev, or tenants in \
                 [[entra_directory.tenants]]"
            );
        }
        if self.entra_proxy_listen.is_some() {
            if self.entra_listen.is_none() {
                anyhow::bail!(
                    "entra_proxy_listen: the Entra proxy serves the built-in authority; set \
                     entra_listen too"
                );
            }
            if self.tls_cert.is_some() {
                anyhow::bail!(
                    "entra_proxy_listen: the proxy's certificates come from the development CA, \
                     which tls_cert replaces"
                );
            }
        }
        if self.dev {
            for addr in std::iter::once(self.listen)
                .chain(self.http_listen)
                .chain(self.entra_listen)
                .chain(self.entra_proxy_listen)
            {
                if !addr.ip().is_loopback() {
                    anyhow::bail!(
                        "dev: the development key is public, so the service serves it only on \
                         loopback addresses; {addr} is not one (listen on 127.0.0.1 or [::1])"
                    );
                }
            }
        }
        if self.output == OutputFormat::Json
            && self.audit_log == crate::audit::AuditDestination::Stdout
        {
            anyhow::bail!("output = json and audit_log = stdout exclude each other: stdout carries only the ready line");
        }
        Ok(())
    }

    /// Where the store lives: `database_url` when set, else the SQLite file in `data_dir`.
    pub fn store_location(&self) -> anyhow::Result<StoreLocation> {
        match &self.database_url {
            Some(url) => {
                StoreLocation::parse(url.expose()).map_err(|e| anyhow::anyhow!("database_url: {e}"))
            }
            None => Ok(StoreLocation::Sqlite(self.database_path())),
        }
    }

    /// The SQLite database file used when `database_url` is not set.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("acs-identity.db")
    }

    /// The directory of TLS material.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
}

/// The top-level configuration keys.
fn config_keys() -> Vec<String> {
    serde_json::to_value(Config::default())
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default()
}

/// `ACSID_*` variables that are set but mean nothing; worth a warning at start-up.
pub fn unknown_env_vars() -> Vec<String> {
    let known = config_keys();
    std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("ACSID_").map(str::to_ascii_lowercase))
        .filter(|k| {
            let top = k.split("__").next().unwrap_or_default();
            !known.iter().any(|c| c == top) && !NON_CONFIG_ENV.contains(&top)
        })
        .map(|k| format!("ACSID_{}", k.to_ascii_uppercase()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn layers_apply_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:9000\"\ndata_location = \"europe\"\nmax_body_bytes = 2048",
            )?;
            jail.set_env("ACSID_DATA_LOCATION", "france");
            jail.set_env("ACSID_SOMETHING_ELSE", "ignored");
            let f = Config::figment(Some(Path::new("c.toml")))
                .merge(Serialized::default("max_body_bytes", 4096));
            let c = Config::from_figment(&f).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
            assert_eq!(c.data_location, "france");
            assert_eq!(c.max_body_bytes, 4096);
            assert_eq!(c.data_dir, PathBuf::from("./acs-identity-data"));
            Ok(())
        });
    }

    #[test]
    fn last_token_flush_ms_defaults_to_a_second_and_is_bounded() {
        Jail::expect_with(|jail| {
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.last_token_flush_ms, 1000);
            jail.set_env("ACSID_LAST_TOKEN_FLUSH_MS", "250");
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.last_token_flush_ms, 250);
            jail.clear_env();
            jail.create_file("c.toml", "last_token_flush_ms = 5")?;
            let e = Config::from_figment(&Config::figment(Some(Path::new("c.toml"))))
                .expect_err("too short");
            assert!(e.to_string().contains("last_token_flush_ms"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn database_url_selects_postgres_and_hides_its_password() {
        Jail::expect_with(|jail| {
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.store_location().unwrap(), StoreLocation::Sqlite(c.database_path()));

            jail.set_env("ACSID_DATABASE_URL", "postgres://acs:s3cret@db:5432/acs");
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            let url = DatabaseUrl::new("postgres://acs:s3cret@db:5432/acs");
            assert_eq!(c.store_location().unwrap(), StoreLocation::Postgres(url));
            assert!(!format!("{c:?}").contains("s3cret"));

            assert_eq!(c.database_max_connections, 16);
            jail.set_env("ACSID_DATABASE_MAX_CONNECTIONS", "64");
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.database_max_connections, 64);
            jail.set_env("ACSID_DATABASE_MAX_CONNECTIONS", "0");
            let e = Config::from_figment(&Config::figment(None)).unwrap_err().to_string();
            assert!(e.contains("database_max_connections"), "{e}");
            jail.set_env("ACSID_DATABASE_MAX_CONNECTIONS", "16");

            jail.set_env("ACSID_DATABASE_URL", "mysql://db/acs");
            assert!(Config::from_figment(&Config::figment(None)).is_err());
            Ok(())
        });
    }

    #[test]
    fn limits_have_defaults_and_bounds() {
        Jail::expect_with(|jail| {
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(
                (
                    c.max_header_bytes,
                    c.request_timeout_seconds,
                    c.idle_timeout_seconds,
                    c.max_in_flight_requests
                ),
                (32 * 1024, 30, 30, 1024)
            );
            jail.set_env("ACSID_REQUEST_TIMEOUT_SECONDS", "5");
            jail.set_env("ACSID_MAX_IN_FLIGHT_REQUESTS", "2");
            let c = Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!((c.request_timeout_seconds, c.max_in_flight_requests), (5, 2));
            for (key, bad) in [
                ("ACSID_MAX_HEADER_BYTES", "1000"),
                ("ACSID_MAX_HEADER_BYTES", "2000000"),
                ("ACSID_IDLE_TIMEOUT_SECONDS", "0"),
                ("ACSID_MAX_IN_FLIGHT_REQUESTS", "0"),
            ] {
                jail.set_env(key, bad);
                assert!(Config::from_figment(&Config::figment(None)).is_err(), "{key}={bad}");
                jail.clear_env();
            }
            Ok(())
        });
    }

    #[test]
    fn cors_origins_default_to_any_and_come_from_toml_env_or_a_string() {
        Jail::expect_with(|jail| {
            let load = |file: Option<&str>| {
                Config::from_figment(&Config::figment(file.map(Path::new)))
                    .map(|c| c.cors_allowed_origins)
                    .map_err(|e| e.to_string())
            };
            assert_eq!(load(None)?, ["*"]);
            jail.create_file("list.toml", "cors_allowed_origins = [\"http://localhost:3000\"]")?;
            assert_eq!(load(Some("list.toml"))?, ["http://localhost:3000"]);
            jail.create_file("off.toml", "cors_allowed_origins = []")?;
            assert!(load(Some("off.toml"))?.is_empty());
            jail.set_env("ACSID_CORS_ALLOWED_ORIGINS", "http://localhost:3000,http://[::1]:5173");
            assert_eq!(load(Some("off.toml"))?, ["http://localhost:3000", "http://[::1]:5173"]);
            jail.set_env("ACSID_CORS_ALLOWED_ORIGINS", "[\"https://app.example\"]");
            assert_eq!(load(None)?, ["https://app.example"]);
            jail.set_env("ACSID_CORS_ALLOWED_ORIGINS", "");
            assert!(load(None)?.is_empty());
            jail.set_env("ACSID_CORS_ALLOWED_ORIGINS", "http://localhost:3000/app");
            let e = load(None).unwrap_err();
            assert!(e.contains("cors_allowed_origins") && e.contains("not an origin"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn emulator_keys_come_from_the_environment_and_are_checked() {
        Jail::expect_with(|jail| {
            let load = || Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string());
            let c = load()?;
            assert!(!c.in_memory && !c.dev && !c.skip_api_version_check);
            assert_eq!((c.output, c.ready_file), (OutputFormat::Text, None));
            jail.set_env("ACSID_IN_MEMORY", "true");
            jail.set_env("ACSID_DEV", "true");
            jail.set_env("ACSID_SKIP_API_VERSION_CHECK", "true");
            jail.set_env("ACSID_OUTPUT", "json");
            jail.set_env("ACSID_READY_FILE", "/run/ready.json");
            let c = load()?;
            assert!(c.in_memory && c.dev && c.skip_api_version_check);
            assert_eq!(c.output, OutputFormat::Json);
            assert_eq!(c.ready_file, Some(PathBuf::from("/run/ready.json")));
            jail.set_env("ACSID_HTTP_LISTEN", "[::]:8080");
            assert!(load().unwrap_err().contains("loopback"));
            jail.set_env("ACSID_HTTP_LISTEN", "[::1]:8080");
            jail.set_env("ACSID_AUDIT_LOG", "stdout");
            assert!(load().unwrap_err().contains("audit_log"));
            jail.set_env("ACSID_AUDIT_LOG", "off");
            jail.set_env("ACSID_DATABASE_URL", "postgres://db/acs");
            assert!(load().unwrap_err().contains("in_memory"));
            Ok(())
        });
    }

    #[test]
    fn metrics_are_on_by_default_and_may_move_to_their_own_listener() {
        Jail::expect_with(|jail| {
            let load = || Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string());
            let c = load()?;
            assert!(c.metrics);
            assert_eq!(c.metrics_listen, None);
            jail.set_env("ACSID_METRICS_LISTEN", "127.0.0.1:9464");
            let c = load()?;
            assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
            jail.set_env("ACSID_METRICS", "false");
            assert!(load().unwrap_err().contains("metrics_listen"));
            jail.clear_env();
            jail.create_file("off.toml", "metrics = false")?;
            let c = Config::from_figment(&Config::figment(Some(Path::new("off.toml"))))
                .map_err(|e| e.to_string())?;
            assert!(!c.metrics);
            Ok(())
        });
    }

    #[test]
    fn the_entra_proxy_needs_the_authority_and_the_development_ca() {
        Jail::expect_with(|jail| {
            let load = || Config::from_figment(&Config::figment(None)).map_err(|e| e.to_string());
            jail.set_env("ACSID_DEV", "true");
            jail.set_env("ACSID_ENTRA_PROXY_LISTEN", "127.0.0.1:3128");
            assert!(load().unwrap_err().contains("set entra_listen too"));
            jail.set_env("ACSID_ENTRA_LISTEN", "127.0.0.1:8444");
            let c = load()?;
            assert_eq!(c.entra_proxy_listen, Some("127.0.0.1:3128".parse().unwrap()));
            jail.set_env("ACSID_ENTRA_PROXY_LISTEN", "0.0.0.0:3128");
            assert!(load().unwrap_err().contains("loopback"));
            jail.set_env("ACSID_ENTRA_PROXY_LISTEN", "[::1]:3128");
            jail.set_env("ACSID_TLS_CERT", "cert.pem");
            jail.set_env("ACSID_TLS_KEY", "key.pem");
            assert!(load().unwrap_err().contains("development CA"));
            Ok(())
        });
    }

    #[test]
    fn rejects_half_a_certificate_and_unknown_keys() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "tls_cert = \"a.pem\"")?;
            assert!(Config::from_figment(&Config::figment(Some(Path::new("c.toml")))).is_err());
            jail.create_file("d.toml", "lisen = \"127.0.0.1:1\"")?;
            assert!(Config::from_figment(&Config::figment(Some(Path::new("d.toml")))).is_err());
            Ok(())
        });
    }
}
