//! Shared state of the service and the resource bootstrap.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use acs_identity_core::hmac::{AccessKey, KeyName};
use acs_identity_core::id::ResourceId;
use acs_identity_core::store::{
    AccessKeyRecord, ResourceRecord, ResourceState, SecretBytes, SigningKeyRecord, Store,
};
use acs_identity_core::token::{
    DataLocation, SigningAlgorithm, SigningKey, TokenIssuer, TokenVerifier,
};
use acs_identity_core::Clock;
use anyhow::Context as _;

use crate::audit::AuditSink;
use crate::cache::{Caches, Observed, Ticket};
use crate::entra::EntraTrust;
use crate::operation::Operation;
use crate::telemetry::Metrics;
use crate::throttle::{Throttle, ThrottleClass, ThrottleConfig};
use crate::token_marks::TokenMarks;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Verified tokens kept in memory.
const TOKEN_CACHE: usize = 100_000;
/// Identity states kept in memory (single-node stores only).
const IDENTITY_CACHE: usize = 200_000;

/// Length of generated access keys: 64 random bytes, like ACS's keys.
const ACCESS_KEY_BYTES: usize = 64;

/// What the HTTP layer needs beyond the store.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest body accepted.
    pub max_body_bytes: usize,
    /// Extra host values accepted in signatures.
    pub public_hosts: Vec<String>,
    /// Request limits per operation.
    pub throttle: ThrottleConfig,
    /// Largest request head (request line and header fields), in bytes.
    pub max_header_bytes: usize,
    /// Longest time from a request's head to its response.
    pub request_timeout: Duration,
    /// Most requests in flight at once.
    pub max_in_flight_requests: usize,
    /// Origins allowed by CORS (`*` for any; empty: CORS off).
    pub cors_allowed_origins: Vec<String>,
    /// Serve an unknown `api-version` as the newest one the operation has.
    pub skip_api_version_check: bool,
    /// Check the time of request credentials (`x-ms-date`, a bearer token's expiry) against
    /// the system clock instead of the service's clock: clients sign with the real time even
    /// when the service's clock is moved by hand (the emulator's manual clock).
    pub credentials_use_system_clock: bool,
    /// How often pending `lastTokenIssuedAt` times are written to the store.
    pub last_token_flush: Duration,
    /// Serve `GET /metrics` on the API listeners (metrics on, and no `metrics_listen`).
    pub metrics_on_api: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings::from_config(&crate::Config::default())
    }
}

impl HttpSettings {
    /// The HTTP settings of a configuration.
    pub fn from_config(config: &crate::Config) -> Self {
        HttpSettings {
            max_body_bytes: config.max_body_bytes,
            public_hosts: config.public_hosts.clone(),
            throttle: config.throttle.clone(),
            max_header_bytes: config.max_header_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            max_in_flight_requests: config.max_in_flight_requests,
            cors_allowed_origins: config.cors_allowed_origins.clone(),
            skip_api_version_check: config.skip_api_version_check,
            credentials_use_system_clock: false,
            last_token_flush: Duration::from_millis(config.last_token_flush_ms),
            metrics_on_api: config.metrics && config.metrics_listen.is_none(),
        }
    }
}

/// The resource's access keys in both forms. `Debug` never shows a key.
#[derive(Clone)]
pub struct AccessKeys {
    verifiers: Vec<AccessKey>,
    encoded: Vec<(KeyName, String)>,
    versions: Vec<(KeyName, u64)>,
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeys").field("keys", &self.verifiers).finish()
    }
}

impl AccessKeys {
    fn new(records: &[AccessKeyRecord]) -> Self {
        AccessKeys {
            verifiers: records.iter().map(|r| AccessKey::new(r.name, &r.key.0)).collect(),
            encoded: records.iter().map(|r| (r.name, STANDARD.encode(&r.key.0))).collect(),
            versions: records.iter().map(|r| (r.name, r.version)).collect(),
        }
    }

    /// `<name>.<version>` of a key, as tokens record it.
    pub fn stamp(&self, name: KeyName) -> Option<String> {
        self.versions.iter().find(|(n, _)| *n == name).map(|(n, v)| format!("{}.{v}", n.as_str()))
    }

    /// Whether a token's `akv` claim names a key version still in force.
    pub fn is_current(&self, stamp: &str) -> bool {
        self.versions.iter().any(|(n, v)| stamp == format!("{}.{v}", n.as_str()))
    }

    /// Keys for HMAC verification.
    pub fn verifiers(&self) -> &[AccessKey] {
        &self.verifiers
    }

    /// The base64 text of a key, as the connection string carries it. Secret.
    pub fn encoded(&self, name: KeyName) -> Option<&str> {
        self.encoded.iter().find(|(n, _)| *n == name).map(|(_, k)| k.as_str())
    }
}

/// Everything derived from the stored keys; replaced whole when they change.
#[derive(Debug)]
struct KeyMaterial {
    /// The keys' version read before the keys were (`ResourceStore::keys_version`, or the
    /// store's probe's reading): the keys held are this version or newer.
    version: u64,
    /// Key versions and signing key ids it was built from.
    fingerprint: String,
    keys: Arc<AccessKeys>,
    issuer: Arc<TokenIssuer>,
    verifier: Arc<TokenVerifier>,
}

impl KeyMaterial {
    fn build(
        state: &ResourceState,
        alg: SigningAlgorithm,
        version: u64,
    ) -> anyhow::Result<KeyMaterial> {
        let mut signing = Vec::new();
        for rec in &state.signing_keys {
            signing.push(Arc::new(
                SigningKey::from_pkcs8(rec.alg, rec.pkcs8.0.clone())
                    .with_context(|| format!("stored signing key {} is unusable", rec.kid))?,
            ));
        }
        let active = signing
            .iter()
            .rev()
            .find(|k| k.algorithm() == alg)
            .cloned()
            .context("no signing key for the configured algorithm")?;
        let location = DataLocation::new(&state.resource.data_location);
        Ok(KeyMaterial {
            version,
            fingerprint: fingerprint(state),
            keys: Arc::new(AccessKeys::new(&state.access_keys)),
            issuer: Arc::new(TokenIssuer::new(state.resource.resource_id, location, active)),
            verifier: Arc::new(TokenVerifier::new(
                signing.iter().map(|k| k.public_key().clone()).collect(),
            )),
        })
    }
}

/// Identifies a set of stored keys: access key versions and signing key ids.
fn fingerprint(state: &ResourceState) -> String {
    let mut f: Vec<String> =
        state.access_keys.iter().map(|k| format!("{}.{}", k.name.as_str(), k.version)).collect();
    f.extend(state.signing_keys.iter().map(|k| k.kid.clone()));
    f.join(",")
}

/// Shared, cheaply clonable state of the service.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What a node's [`AppState`] is made of, besides what [`AppState::bootstrap`] loads from the
/// store.
#[derive(Debug)]
pub struct StateParts {
    /// Where the resource, its keys and its identities live.
    pub store: Arc<dyn Store>,
    /// The source of "now" for tokens and throttling.
    pub clock: Arc<dyn Clock>,
    /// The data location of a resource created on first start.
    pub data_location: String,
    /// The algorithm new tokens are signed with.
    pub alg: SigningAlgorithm,
    /// Limits, hosts and throttling of the HTTP layer.
    pub http: HttpSettings,
    /// Trusted Entra issuers.
    pub entra: EntraTrust,
    /// Where audit lines go.
    pub audit: AuditSink,
    /// The node's Prometheus metrics (give the store its [`Metrics::store`] handles).
    pub metrics: Metrics,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    resource: ResourceId,
    alg: SigningAlgorithm,
    material: RwLock<Arc<KeyMaterial>>,
    /// How this node makes sure its keys are current before it authenticates a request.
    freshness: crate::key_sync::Freshness,
    /// Held while the keys are reloaded, so concurrent requests reload once.
    reloading: tokio::sync::Mutex<()>,
    http: HttpSettings,
    entra: EntraTrust,
    throttle: Throttle,
    caches: Caches,
    token_marks: TokenMarks,
    audit: AuditSink,
    activity: crate::activity::Activity,
    metrics: Metrics,
}

impl AppState {
    /// Loads the resource from `parts.store`, creating it on first start.
    pub async fn bootstrap(parts: StateParts) -> anyhow::Result<AppState> {
        let StateParts { store, clock, data_location, alg, http, entra, audit, metrics } = parts;
        let data_location = data_location.as_str();
        load_or_create_resource(store.as_ref(), clock.as_ref(), data_location, alg).await?;
        let freshness = crate::key_sync::Freshness::of(store.as_ref());
        let version = freshness.reading(store.as_ref()).await?;
        let state = store.load_resource().await?.context("resource vanished")?;
        let material = KeyMaterial::build(&state, alg, version)?;
        let shared = store.is_shared();
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                clock,
                resource: state.resource.resource_id,
                alg,
                material: RwLock::new(Arc::new(material)),
                freshness,
                reloading: tokio::sync::Mutex::new(()),
                throttle: Throttle::new(http.throttle.effective()),
                caches: Caches::new(TOKEN_CACHE, (!shared).then_some(IDENTITY_CACHE)),
                token_marks: TokenMarks::default(),
                http,
                entra,
                audit,
                activity: crate::activity::Activity::default(),
                metrics,
            }),
        })
    }

    /// Reads the keys from the store again if their version changed and switches to them
    /// (a key was regenerated or a signing key added, by this node or another). Returns
    /// whether the keys changed.
    pub async fn reload_keys(&self) -> anyhow::Result<bool> {
        let version = self.inner.freshness.reading(self.store()).await?;
        self.reload_keys_at(version).await
    }

    /// Makes sure the keys in force are the store's current ones; called before every
    /// request is authenticated. With a probe (SQLite) it reads the keys' version and
    /// reloads the keys when it changed; otherwise (PostgreSQL) the keys are kept current
    /// by [`crate::key_sync`]'s watcher, and this answers 503 once they have not been
    /// confirmed for [`crate::key_sync::KEY_LEASE`].
    pub async fn ensure_current_keys(&self) -> Result<(), crate::error::ApiError> {
        let Some(version) = self.inner.freshness.check()? else { return Ok(()) };
        if version == self.material().version {
            return Ok(());
        }
        self.reload_keys_at(version).await.map(|_| ()).map_err(|e| {
            tracing::warn!(error = %e, "cannot reload keys");
            crate::error::ApiError::unavailable()
        })
    }

    /// Switches to the stored keys unless the keys held are of `version` already;
    /// `version` was read before this call, so the keys loaded are of it or newer.
    async fn reload_keys_at(&self, version: u64) -> anyhow::Result<bool> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let held = self.material();
        if held.version == version {
            return Ok(false);
        }
        let Some(state) = self.inner.store.load_resource().await? else { return Ok(false) };
        let changed = fingerprint(&state) != held.fingerprint;
        let fresh = if changed {
            KeyMaterial::build(&state, self.inner.alg, version)?
        } else {
            KeyMaterial {
                version,
                fingerprint: held.fingerprint.clone(),
                keys: held.keys.clone(),
                issuer: held.issuer.clone(),
                verifier: held.verifier.clone(),
            }
        };
        *self.inner.material.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        if changed {
            tracing::info!("keys reloaded");
            self.inner.metrics.key_reloaded();
        }
        Ok(changed)
    }

    /// The keys' version this node holds (see [`ResourceStore::keys_version`]).
    ///
    /// [`ResourceStore::keys_version`]: acs_identity_core::store::ResourceStore::keys_version
    pub fn keys_version(&self) -> u64 {
        self.material().version
    }

    /// How this node keeps its keys current.
    pub(crate) fn freshness(&self) -> &crate::key_sync::Freshness {
        &self.inner.freshness
    }

    fn material(&self) -> Arc<KeyMaterial> {
        self.inner.material.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// This node's activity counters.
    pub fn activity(&self) -> &crate::activity::Activity {
        &self.inner.activity
    }

    /// This node's Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The time request credentials are checked against (see
    /// [`HttpSettings::credentials_use_system_clock`]).
    pub fn credentials_now(&self) -> time::OffsetDateTime {
        if self.inner.http.credentials_use_system_clock {
            acs_identity_core::clock::SystemClock.now()
        } else {
            self.inner.clock.now()
        }
    }

    /// The resource id.
    pub fn resource(&self) -> ResourceId {
        self.inner.resource
    }

    /// The access keys in force.
    pub fn keys(&self) -> Arc<AccessKeys> {
        self.material().keys.clone()
    }

    /// The token issuer in force.
    pub fn issuer(&self) -> Arc<TokenIssuer> {
        self.material().issuer.clone()
    }

    /// The token verifier in force.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        self.material().verifier.clone()
    }

    /// The validation caches.
    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    /// Take before a store call about `user` whose answer goes to [`AppState::observe`].
    pub fn ticket(&self, user: acs_identity_core::id::UserId) -> Ticket {
        self.inner.caches.ticket(user)
    }

    /// Records what a store call (begun after `ticket`) returned about an identity, for the
    /// caches.
    pub fn observe(
        &self,
        ticket: Ticket,
        record: &acs_identity_core::store::IdentityRecord,
        how: Observed,
    ) {
        self.inner.caches.observe(ticket, record.user, record.state(), how);
    }

    /// `lastTokenIssuedAt` times not yet written to the store.
    pub fn token_marks(&self) -> &TokenMarks {
        &self.inner.token_marks
    }

    /// When `record`'s user was last issued a token: the stored time, or a later one still
    /// waiting to be written behind.
    pub fn last_token_issued_at(
        &self,
        record: &acs_identity_core::store::IdentityRecord,
    ) -> Option<time::OffsetDateTime> {
        record.last_token_issued_at.max(self.inner.token_marks.pending(record.user))
    }

    /// Writes the pending `lastTokenIssuedAt` times every `last_token_flush` until
    /// `shutdown`; [`AppState::flush_token_marks`] writes the rest after requests drained.
    pub async fn run_token_flusher(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = self.inner.http.last_token_flush;
        self.inner.token_marks.run(self.store(), interval, shutdown).await;
    }

    /// Writes the pending `lastTokenIssuedAt` times now, trying a few times.
    pub async fn flush_token_marks(&self) {
        for attempt in 1..=3 {
            match self.inner.token_marks.flush(self.store()).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "writing token times failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Counts a request of `op` against its limit, if it has one; `Err` is the 429 to answer.
    pub fn throttle(&self, op: Operation) -> Result<(), crate::error::ApiError> {
        match op.spec().throttle {
            Some(class) => self.throttle_class(class),
            None => Ok(()),
        }
    }

    /// Counts a request against `class`; for a request whose limit depends on its body.
    pub fn throttle_class(&self, class: ThrottleClass) -> Result<(), crate::error::ApiError> {
        self.inner.throttle.check(class, self.inner.clock.now())
    }

    /// Trusted Entra issuers.
    pub fn entra(&self) -> &EntraTrust {
        &self.inner.entra
    }

    /// Where audit lines go.
    pub fn audit(&self) -> &AuditSink {
        &self.inner.audit
    }

    /// HTTP settings.
    pub fn http(&self) -> &HttpSettings {
        &self.inner.http
    }

    /// A connection string for `endpoint` with the given key. Secret.
    pub fn connection_string(&self, endpoint: &str, key: KeyName) -> String {
        connection_string(endpoint, self.keys().encoded(key).unwrap_or_default())
    }
}

/// The console's address with the access key in its fragment, `<endpoint>/console/#accesskey=<key>`:
/// browsers never send a fragment, so the key stays in the browser. Secret.
pub fn console_link(endpoint: &str, encoded_key: &str) -> String {
    let key = encoded_key.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    format!("{}/console/#accesskey={key}", endpoint.trim_end_matches('/'))
}

/// `endpoint=<endpoint>/;accesskey=<key>`.
pub fn connection_string(endpoint: &str, encoded_key: &str) -> String {
    format!("endpoint={}/;accesskey={encoded_key}", endpoint.trim_end_matches('/'))
}

/// Loads the resource, creating it (id, keys, a signing key) on first start, and adding a
/// signing key when the configured algorithm has none yet.
pub async fn load_or_create_resource(
    store: &dyn Store,
    clock: &dyn Clock,
    data_location: &str,
    alg: SigningAlgorithm,
) -> anyhow::Result<ResourceState> {
    let state = match store.load_resource().await? {
        Some(s) => s,
        None => {
            let now = clock.now();
            let fresh = ResourceState {
                resource: ResourceRecord {
                    resource_id: ResourceId::generate(),
                    data_location: DataLocation::new(data_location).name,
                    created_at: now,
                },
                access_keys: vec![
                    AccessKeyRecord { name: KeyName::Primary, key: random_key()?, version: 1 },
                    AccessKeyRecord { name: KeyName::Secondary, key: random_key()?, version: 1 },
                ],
                signing_keys: vec![new_signing_key(alg, now)?],
            };
            store.init_resource(fresh).await?
        }
    };
    if state.signing_keys.iter().any(|k| k.alg == alg) {
        return Ok(state);
    }
    store.add_signing_key(new_signing_key(alg, clock.now())?).await?;
    store.load_resource().await?.context("resource vanished")
}

/// A fresh random access key.
pub fn random_key() -> anyhow::Result<SecretBytes> {
    let mut key = vec![0u8; ACCESS_KEY_BYTES];
    SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("random generator failed"))?;
    Ok(SecretBytes(key))
}

/// A fresh signing key record of `alg`.
pub fn new_signing_key(
    alg: SigningAlgorithm,
    now: time::OffsetDateTime,
) -> anyhow::Result<SigningKeyRecord> {
    let key = SigningKey::generate(alg)?;
    Ok(SigningKeyRecord {
        kid: key.kid().to_owned(),
        alg,
        pkcs8: SecretBytes(key.pkcs8().to_vec()),
        created_at: now,
    })
}
